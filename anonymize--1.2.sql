/* anonymize--1.2.sql: a new installation of version 1.2, written by
 * tools/fresh_install_script.py from the scripts of the update path */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION anonymize" to load this file. \quit

/* The audit log holds no personal data: who, when, which rule, how many rows. */
CREATE TABLE anonymize.audit_log (
	customer_id		uuid PRIMARY KEY,
	anonymized_at	timestamptz NOT NULL,
	anonymized_by	name NOT NULL,
	customer_kind	text NOT NULL CHECK (customer_kind IN ('company', 'individual')),
	rows_deleted	jsonb NOT NULL
);
COMMENT ON TABLE anonymize.audit_log IS
'One row per anonymized customer, written by anonymize.anonymize_customer().';

SELECT pg_catalog.pg_extension_config_dump('anonymize.audit_log', '');

CREATE FUNCTION anonymize.mapping_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'anonymize_mapping_changed' LANGUAGE C;
COMMENT ON FUNCTION anonymize.mapping_changed() IS
'Trigger: makes every backend rebuild its anonymization plans after the mapping changed.';

/*
 * The work: eligibility and erasure of one customer.  They run with the
 * caller's rights, so table privileges and row-level security apply.
 */
CREATE FUNCTION anonymize.can_anonymize(customer_id uuid) RETURNS boolean
AS 'MODULE_PATHNAME', 'anonymize_can_anonymize'
LANGUAGE C STRICT STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.can_anonymize(uuid) IS
'True when the customer exists, is not anonymized yet and nothing blocks its anonymization.  Takes no row locks.';

CREATE FUNCTION anonymize.blockers(customer_id uuid)
RETURNS TABLE (rule_name text, reason text, relation regclass, rows bigint, amount numeric)
AS 'MODULE_PATHNAME', 'anonymize_blockers'
LANGUAGE C STRICT STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.blockers(uuid) IS
'One row per reason why the customer cannot be anonymized now; empty when it can.';

CREATE FUNCTION anonymize.anonymize_customer(customer_id uuid,
	OUT anonymized boolean, OUT customer_kind text, OUT rows_deleted jsonb)
AS 'MODULE_PATHNAME', 'anonymize_anonymize_customer'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.anonymize_customer(uuid) IS
'Erases the personal data of an eligible customer in the current transaction; anonymized is false when it already was.';
REVOKE EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION anonymize.mapping_changed() FROM PUBLIC;

/*
 * Erasure requests of customers that may still be active.  GDPR gives a
 * month to answer; anonymize.process_requests() anonymizes them as soon as
 * nothing blocks them.  Written only through the functions below, as the
 * extension owner, like the audit log.
 */
CREATE TABLE anonymize.requests (
	request_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id		uuid NOT NULL,
	requested_at	timestamptz NOT NULL,
	requested_by	name NOT NULL,
	reference		text,
	due_at			timestamptz NOT NULL,
	state			text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'done', 'cancelled')),
	last_attempt_at	timestamptz,
	blockers		text,
	outcome			text,
	closed_at		timestamptz,
	closed_by		name
);
COMMENT ON TABLE anonymize.requests IS
'Erasure requests; pending ones are anonymized by anonymize.process_requests() once nothing blocks them.';
CREATE UNIQUE INDEX requests_one_pending_per_customer ON anonymize.requests (customer_id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';
CREATE INDEX requests_pending_by_due_date ON anonymize.requests (due_at, request_id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';
SELECT pg_catalog.pg_extension_config_dump('anonymize.requests', '');
SELECT pg_catalog.pg_extension_config_dump('anonymize.requests_request_id_seq', '');

CREATE FUNCTION anonymize.request(customer_id uuid, reference text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'anonymize_request'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.request(uuid, text) IS
'Records an erasure request for the customer, due one month later, and returns its id; a customer with a pending request keeps that one.';

CREATE FUNCTION anonymize.cancel_request(customer_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'anonymize_cancel_request'
LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.cancel_request(uuid) IS
'Cancels the pending erasure request of the customer; false when there was none.';

/* No SET clause: a procedure with one cannot commit.  It pins search_path itself. */
CREATE PROCEDURE anonymize.process_requests(batch_size integer DEFAULT 500,
	max_batches integer DEFAULT NULL, time_budget interval DEFAULT NULL)
AS 'MODULE_PATHNAME', 'anonymize_process_requests'
LANGUAGE C;
COMMENT ON PROCEDURE anonymize.process_requests(integer, integer, interval) IS
'Anonymizes the pending requests whose customers are eligible, batch after batch, committing each; blocked ones stay pending with their blockers.  Stops when none is left, after max_batches or when time_budget is spent.';

CREATE FUNCTION anonymize.current_blockers(customer_id uuid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	RETURN (SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', b.reason,
				COALESCE(b.amount::text, b.rows::text)), '; ' ORDER BY b.rule_name)
			  FROM anonymize.blockers(customer_id) b);
EXCEPTION WHEN no_data_found THEN
	RETURN 'customer does not exist';
END
$$;
COMMENT ON FUNCTION anonymize.current_blockers(uuid) IS
'What blocks the anonymization of the customer now, as one line; NULL when nothing does.';

CREATE VIEW anonymize.pending_requests AS
SELECT r.request_id, r.customer_id, r.reference, r.requested_at, r.requested_by,
	   r.due_at,
	   r.due_at OPERATOR(pg_catalog.<) pg_catalog.now() AS overdue,
	   pg_catalog.ceil(EXTRACT(epoch FROM r.due_at OPERATOR(pg_catalog.-) pg_catalog.now())
		   OPERATOR(pg_catalog./) 86400)::integer AS days_left,
	   anonymize.current_blockers(r.customer_id) AS blockers,
	   r.last_attempt_at, r.outcome AS last_outcome,
	   r.blockers AS last_blockers_or_error
  FROM anonymize.requests r
 WHERE r.state OPERATOR(pg_catalog.=) 'pending'
 ORDER BY r.due_at, r.request_id;
COMMENT ON VIEW anonymize.pending_requests IS
'Pending erasure requests, overdue first, with what blocks each now, whether it is overdue, the days left before its due date (rounded up; zero or less once overdue), and the outcome of the last attempt (blocked, or failed with its error).';

REVOKE EXECUTE ON FUNCTION anonymize.request(uuid, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.cancel_request(uuid) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE anonymize.process_requests(integer, integer, interval) FROM PUBLIC;

/*
 * The whole mapping is checked after every change, by the same C code that
 * builds the plans: a rule whose purge would cascade into a relation no
 * purge rule deletes as a whole (a paid invoice ON DELETE CASCADE from its
 * subscription), a condition that is not boolean, a replacement that does
 * not fit its column, is refused at once.
 */
CREATE FUNCTION anonymize.check_mapping() RETURNS void
AS 'MODULE_PATHNAME', 'anonymize_check_mapping'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.check_mapping() IS
'Raises an error unless the caller owns the extension and the whole mapping is valid, as the plans would be built from it.';
REVOKE EXECUTE ON FUNCTION anonymize.check_mapping() FROM PUBLIC;

/*
 * DROP EXTENSION anonymize would drop the audit log, the record of every
 * erasure, and the pending requests: refused while they hold rows, unless
 * anonymize.allow_drop_with_data is on; so are the other commands that
 * would drop the extension.
 */
CREATE FUNCTION anonymize.guard_drop() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'anonymize_guard_drop' LANGUAGE C;
COMMENT ON FUNCTION anonymize.guard_drop() IS
'Event trigger: refuses a command that would drop extension anonymize (DROP EXTENSION or DROP SCHEMA anonymize, DROP OWNED BY its owner, DROP EXTENSION or DROP LANGUAGE plpgsql CASCADE) while the audit log holds rows or requests are pending, unless anonymize.allow_drop_with_data is on.';
REVOKE EXECUTE ON FUNCTION anonymize.guard_drop() FROM PUBLIC;

CREATE EVENT TRIGGER anonymize_guard_drop ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED', 'DROP LANGUAGE')
	EXECUTE FUNCTION anonymize.guard_drop();
COMMENT ON EVENT TRIGGER anonymize_guard_drop IS
'Keeps commands that would drop extension anonymize from dropping its audit log and pending requests; see anonymize.guard_drop().';

/* The view of pending requests works whatever state the mapping is in. */
CREATE OR REPLACE FUNCTION anonymize.current_blockers(customer_id uuid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	RETURN (SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', b.reason,
				COALESCE(b.amount::text, b.rows::text)), '; ' ORDER BY b.rule_name)
			  FROM anonymize.blockers(customer_id) b);
EXCEPTION
	WHEN no_data_found THEN
		RETURN 'customer does not exist';
	WHEN OTHERS THEN
		RETURN pg_catalog.format('cannot check: %s', SQLERRM);
END
$$;
COMMENT ON FUNCTION anonymize.current_blockers(uuid) IS
'What blocks the anonymization of the customer now, as one line; NULL when nothing does; "cannot check: ..." when the mapping or the privileges do not allow to tell.';

/*
 * Every column documented: \d+ and the catalog say what each column of the
 * extension's tables and of its view holds, without reading the scripts.
 */
COMMENT ON COLUMN anonymize.audit_log.customer_id IS
'Id of the anonymized customer; its row marks the customer as anonymized.';
COMMENT ON COLUMN anonymize.audit_log.anonymized_at IS
'Start of the transaction that anonymized the customer.';
COMMENT ON COLUMN anonymize.audit_log.anonymized_by IS
'current_user of the caller of anonymize_customer() or process_requests().';
COMMENT ON COLUMN anonymize.audit_log.customer_kind IS
'company or individual: what the erasure treated the customer as.';
COMMENT ON COLUMN anonymize.audit_log.rows_deleted IS
'Rows deleted per purge rule, as a JSON object of rule name to count.';

COMMENT ON COLUMN anonymize.requests.request_id IS
'Id of the request, as anonymize.request() returns it.';
COMMENT ON COLUMN anonymize.requests.customer_id IS
'Id of the customer to anonymize; at most one pending request per customer.';
COMMENT ON COLUMN anonymize.requests.requested_at IS
'Start of the transaction that recorded the request.';
COMMENT ON COLUMN anonymize.requests.requested_by IS
'current_user of the caller of anonymize.request().';
COMMENT ON COLUMN anonymize.requests.reference IS
'Free text given to anonymize.request(), such as a ticket number; may be NULL.';
COMMENT ON COLUMN anonymize.requests.due_at IS
'When the answer is due: one month after requested_at.';
COMMENT ON COLUMN anonymize.requests.state IS
'pending, done (anonymized or closed without erasure) or cancelled.';
COMMENT ON COLUMN anonymize.requests.last_attempt_at IS
'When process_requests() last tried the request; NULL before the first attempt.';
COMMENT ON COLUMN anonymize.requests.blockers IS
'After the last attempt: the blockers of a blocked request, the error of a failed or busy one ("error SQLSTATE: message"), or why a busy one was skipped; NULL otherwise.';
COMMENT ON COLUMN anonymize.requests.outcome IS
'Result of the last attempt: anonymized, already anonymized, customer does not exist, blocked, busy or failed.';
COMMENT ON COLUMN anonymize.requests.closed_at IS
'Start of the transaction that marked the request done or cancelled; NULL while pending.';
COMMENT ON COLUMN anonymize.requests.closed_by IS
'current_user of whoever marked the request done (process_requests) or cancelled (cancel_request); NULL while pending.';

COMMENT ON COLUMN anonymize.pending_requests.request_id IS
'Id of the request.';
COMMENT ON COLUMN anonymize.pending_requests.customer_id IS
'Id of the customer to anonymize.';
COMMENT ON COLUMN anonymize.pending_requests.reference IS
'Free text given to anonymize.request(), such as a ticket number.';
COMMENT ON COLUMN anonymize.pending_requests.requested_at IS
'When the request was recorded.';
COMMENT ON COLUMN anonymize.pending_requests.requested_by IS
'current_user of the caller of anonymize.request().';
COMMENT ON COLUMN anonymize.pending_requests.due_at IS
'When the answer is due: one month after requested_at.';
COMMENT ON COLUMN anonymize.pending_requests.overdue IS
'True once due_at has passed.';
COMMENT ON COLUMN anonymize.pending_requests.days_left IS
'Days until due_at, rounded up; zero or less once overdue.';
COMMENT ON COLUMN anonymize.pending_requests.blockers IS
'What blocks the customer now (anonymize.current_blockers()); NULL when nothing does; "cannot check: ..." when the mapping or the privileges do not allow to tell.';
COMMENT ON COLUMN anonymize.pending_requests.last_attempt_at IS
'When process_requests() last tried the request; NULL before the first attempt.';
COMMENT ON COLUMN anonymize.pending_requests.last_outcome IS
'Result of the last attempt: blocked, busy or failed; NULL before the first attempt.';
COMMENT ON COLUMN anonymize.pending_requests.last_blockers_or_error IS
'What the last attempt recorded: the blockers, the error ("error SQLSTATE: message") of a failed or busy attempt, or why a busy one was skipped.';

/*
 * The mapping as scopes and rules.
 *
 * A scope is a set of rows that belong to a customer: the scope "customer"
 * is the customer relation; every other scope is a relation whose key
 * column matches a column of the rows of its parent scope, narrowed by an
 * optional condition, so that scopes form a tree rooted at the customer.
 * Rules act on scopes: purge (delete rows), erase (set columns), blocker
 * and balance (refuse the erasure).  The company test decides, once per
 * customer, company or individual.
 *
 * Relations and columns are stored by name and resolved when the plans are
 * built, so a mapping survives dump and restore and a stale entry is
 * reported by name.  The tables are dumped whole: there are no presets, and
 * CREATE EXTENSION installs no mapping (examples/billing_mapping.sql is the
 * one of examples/billing.sql).  Only the extension owner changes them,
 * through the functions below, which validate the whole mapping in C
 * (anonymize.check_mapping()) before they return.
 */
CREATE TABLE anonymize.customer_relation (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	relation_schema	name NOT NULL,
	relation_name	name NOT NULL,
	key_column		name NOT NULL,
	name_column		name NOT NULL,
	email_column	name NOT NULL,
	placeholder		text NOT NULL DEFAULT '',
	company_scope	text,
	company_condition text,
	company_name	text,
	CHECK ((company_scope IS NULL) = (company_condition IS NULL)
		   AND (company_scope IS NULL) = (company_name IS NULL))
);
COMMENT ON TABLE anonymize.customer_relation IS
'The customer relation (the scope "customer"), the placeholder and the company test; at most one row.  Set with anonymize.set_customer_relation(), set_placeholder() and set_company_test().';
COMMENT ON COLUMN anonymize.customer_relation.singleton IS
'Always true: the primary key that keeps this table to one row.';
COMMENT ON COLUMN anonymize.customer_relation.relation_schema IS
'Schema of the customer relation.';
COMMENT ON COLUMN anonymize.customer_relation.relation_name IS
'Name of the customer relation.';
COMMENT ON COLUMN anonymize.customer_relation.key_column IS
'The uuid key column of the customer relation: the customer id.';
COMMENT ON COLUMN anonymize.customer_relation.name_column IS
'Column of the customer name: the company name for a company, erased for an individual.';
COMMENT ON COLUMN anonymize.customer_relation.email_column IS
'Column of the customer email; erased, or set by a replacement of an erase rule on scope customer.';
COMMENT ON COLUMN anonymize.customer_relation.placeholder IS
'Value written instead of NULL into erased character columns that are NOT NULL; set with anonymize.set_placeholder().';
COMMENT ON COLUMN anonymize.customer_relation.company_scope IS
'Scope of the company test: customer, or a scope with at most one row per customer; NULL: every customer is an individual.';
COMMENT ON COLUMN anonymize.customer_relation.company_condition IS
'Boolean SQL expression on the row of company_scope: true for a company.';
COMMENT ON COLUMN anonymize.customer_relation.company_name IS
'SQL expression on the row of company_scope: the name a company keeps in the name column.';

CREATE TABLE anonymize.scopes (
	scope_name		text PRIMARY KEY CHECK (scope_name OPERATOR(pg_catalog.<>) 'customer'),
	relation_schema	name NOT NULL,
	relation_name	name NOT NULL,
	key_column		name NOT NULL,
	parent			text NOT NULL DEFAULT 'customer',
	parent_column	name,
	condition		text
);
COMMENT ON TABLE anonymize.scopes IS
'Sets of rows that belong to a customer: the rows of the relation whose key column equals the parent column of a row of the parent scope and that match the condition.  Set with anonymize.set_scope().';
COMMENT ON COLUMN anonymize.scopes.scope_name IS
'Name of the scope, as rules and other scopes refer to it; "customer" is the customer relation.';
COMMENT ON COLUMN anonymize.scopes.relation_schema IS
'Schema of the relation of the scope.';
COMMENT ON COLUMN anonymize.scopes.relation_name IS
'Name of the relation of the scope.';
COMMENT ON COLUMN anonymize.scopes.key_column IS
'Column of the relation (uuid, text, varchar or char) that holds the parent column''s value.';
COMMENT ON COLUMN anonymize.scopes.parent IS
'The parent scope; customer for rows that hold the customer id.';
COMMENT ON COLUMN anonymize.scopes.parent_column IS
'Column of the parent''s relation matched by key_column; NULL: the customer key, or the single-column primary key of the parent''s relation.';
COMMENT ON COLUMN anonymize.scopes.condition IS
'Boolean SQL expression on a row of the relation that narrows the scope; NULL for every row.';

CREATE TABLE anonymize.rules (
	rule_name		text PRIMARY KEY,
	kind			text NOT NULL
		CHECK (kind OPERATOR(pg_catalog.=) ANY ('{purge,erase,blocker,balance}')),
	scope			text NOT NULL,
	condition		text,
	amount			text,
	reason			text,
	columns			name[],
	applies_to		text
		CHECK (applies_to OPERATOR(pg_catalog.=) ANY ('{everyone,individual,company}')),
	replacements	jsonb,
	CHECK ((kind OPERATOR(pg_catalog.=) 'erase') = (columns IS NOT NULL)
		   AND (kind OPERATOR(pg_catalog.=) 'erase') = (applies_to IS NOT NULL)
		   AND (kind OPERATOR(pg_catalog.=) 'erase') = (replacements IS NOT NULL)),
	CHECK ((kind OPERATOR(pg_catalog.=) 'blocker') <= (condition IS NOT NULL)
		   AND (kind OPERATOR(pg_catalog.=) ANY ('{purge,blocker}')) >= (condition IS NOT NULL)),
	CHECK ((kind OPERATOR(pg_catalog.=) 'balance') = (amount IS NOT NULL)),
	CHECK ((kind OPERATOR(pg_catalog.=) ANY ('{blocker,balance}')) = (reason IS NOT NULL))
);
COMMENT ON TABLE anonymize.rules IS
'What an erasure does with the rows of a scope (purge, erase) and what refuses it (blocker, balance).  Set with the anonymize.set_*_rule() functions.';
COMMENT ON COLUMN anonymize.rules.rule_name IS
'Name of the rule, unique across all kinds; the key of rows_deleted and rows_updated in the audit log, and the name anonymize.blockers() reports.';
COMMENT ON COLUMN anonymize.rules.kind IS
'purge (delete the rows), erase (set columns of the rows), blocker (a matching row refuses the erasure) or balance (the amounts must sum to zero).';
COMMENT ON COLUMN anonymize.rules.scope IS
'The scope whose rows the rule acts on or checks.';
COMMENT ON COLUMN anonymize.rules.condition IS
'Boolean SQL expression on a row of the scope: the rows purged (NULL: all) or the rows that block.';
COMMENT ON COLUMN anonymize.rules.amount IS
'Numeric SQL expression on a row of the scope, for a balance rule: the customer is blocked unless the amounts sum to zero.';
COMMENT ON COLUMN anonymize.rules.reason IS
'Why a blocker or balance rule refuses the erasure, as anonymize.blockers() and the error DETAIL report it.';
COMMENT ON COLUMN anonymize.rules.columns IS
'Erase rule: the columns set to NULL (the placeholder for NOT NULL character columns).';
COMMENT ON COLUMN anonymize.rules.applies_to IS
'Erase rule: everyone, individual or company, as the company test decides.';
COMMENT ON COLUMN anonymize.rules.replacements IS
'Erase rule: a JSON object of column name to SQL expression on the row, the value the column gets.';

SELECT pg_catalog.pg_extension_config_dump('anonymize.customer_relation', '');
SELECT pg_catalog.pg_extension_config_dump('anonymize.scopes', '');
SELECT pg_catalog.pg_extension_config_dump('anonymize.rules', '');

/*
 * Plans are rebuilt after a change of the mapping from any source.  A
 * statement-level trigger does not fire in a logical replication apply
 * worker: row-level triggers (and the TRUNCATE trigger) enabled ALWAYS do.
 */
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.customer_relation FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.scopes FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.rules FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.customer_relation FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.scopes FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
ALTER TABLE anonymize.customer_relation ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.scopes ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.rules ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.customer_relation ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;
ALTER TABLE anonymize.scopes ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;
ALTER TABLE anonymize.rules ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;


/* The audit row records the rows each erase rule updated, too. */
ALTER TABLE anonymize.audit_log ADD COLUMN rows_updated jsonb NOT NULL DEFAULT '{}';
COMMENT ON COLUMN anonymize.audit_log.rows_updated IS
'Rows updated per erase rule, as a JSON object of rule name to count; {} for erasures recorded before version 1.2.';

/*
 * The invalidation triggers must stay enabled ALWAYS.  ALTER TABLE ...
 * ENABLE TRIGGER ALL, which pg_restore --disable-triggers runs after a
 * data-only restore, enables them for the origin only: a change applied by
 * logical replication would then leave the plans of open sessions stale.
 * This event trigger puts them back to ALWAYS after any ALTER TABLE of a
 * configuration table.
 */
CREATE FUNCTION anonymize.keep_invalidation_always() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	config oid[] := ARRAY[pg_catalog.to_regclass('anonymize.customer_relation'),
						  pg_catalog.to_regclass('anonymize.scopes'),
						  pg_catalog.to_regclass('anonymize.rules')];
	t record;
BEGIN
	FOR t IN SELECT g.tgrelid::regclass AS rel, g.tgname
			   FROM pg_catalog.pg_trigger g
			  WHERE g.tgrelid OPERATOR(pg_catalog.=) ANY (config)
				AND g.tgname OPERATOR(pg_catalog.=) ANY ('{invalidate_plans,invalidate_plans_on_truncate}')
				AND g.tgenabled OPERATOR(pg_catalog.=) 'O'
				AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
							 WHERE c.objid OPERATOR(pg_catalog.=) g.tgrelid)
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', t.rel, t.tgname);
	END LOOP;
END
$$;
COMMENT ON FUNCTION anonymize.keep_invalidation_always() IS
'Event trigger: after ALTER TABLE of a configuration table (such as ENABLE TRIGGER ALL by pg_restore --disable-triggers), enables its plan invalidation triggers ALWAYS again, so that changes applied by logical replication rebuild plans.';
REVOKE EXECUTE ON FUNCTION anonymize.keep_invalidation_always() FROM PUBLIC;

CREATE EVENT TRIGGER anonymize_keep_invalidation_always ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION anonymize.keep_invalidation_always();
COMMENT ON EVENT TRIGGER anonymize_keep_invalidation_always IS
'Keeps the plan invalidation triggers of the configuration tables enabled ALWAYS; see anonymize.keep_invalidation_always().';

/*
 * Before and after an erasure: what anonymize_customer() would do now, and
 * whether an erasure still holds.  They change nothing and take no row
 * locks; like blockers(), they run with the caller's rights.
 */
CREATE FUNCTION anonymize.preview(customer_id uuid)
RETURNS TABLE (step text, rule_name text, scope text, relation regclass,
			   rows bigint, columns name[], applies boolean, detail text)
AS 'MODULE_PATHNAME', 'anonymize_preview'
LANGUAGE C STRICT STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.preview(uuid) IS
'What anonymize_customer() would do now, changing nothing and taking no row locks: the customer''s kind and why (step kind), its blockers, and per purge and erase rule the rows it would delete or update, the columns it sets and whether it applies to the customer''s kind.';

CREATE FUNCTION anonymize.verify(customer_id uuid)
RETURNS TABLE (rule_name text, scope text, relation regclass,
			   column_name name, rows bigint)
AS 'MODULE_PATHNAME', 'anonymize_verify'
LANGUAGE C STRICT STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.verify(uuid) IS
'For an anonymized customer, every place the mapping covers that holds data again: rows of purged scopes (column_name NULL), erased columns holding something other than NULL or the placeholder, a name other than the company name (rule_name NULL for the built-in name and email).  Empty when the erasure still holds.  Columns set by a replacement are not checked.';

/*
 * A receipt of each erasure: the audit row records the transaction, the
 * request it answered (from the queue), and a fingerprint of the mapping
 * in force, so that what was erased can be told later from the mapping's
 * history.  No personal data in any of it.
 */
CREATE FUNCTION anonymize.mapping_fingerprint() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.concat_ws(E'\n',
	(SELECT (pg_catalog.to_jsonb(c) OPERATOR(pg_catalog.-) 'singleton'::text)::text
	   FROM anonymize.customer_relation c),
	(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.scope_name)::text
	   FROM anonymize.scopes s),
	(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.rule_name)::text
	   FROM anonymize.rules r)), 'UTF8')), 'hex')
$$;
COMMENT ON FUNCTION anonymize.mapping_fingerprint() IS
'A hash (SHA-256, hex) of the mapping: the customer relation, the scopes and the rules.  Recorded with every erasure; equal fingerprints mean the same mapping.';

ALTER TABLE anonymize.audit_log
	ADD COLUMN event_id bigint GENERATED ALWAYS AS IDENTITY,
	ADD COLUMN transaction_id xid8,
	ADD COLUMN request_id bigint,
	ADD COLUMN mapping_fingerprint text;
SELECT pg_catalog.pg_extension_config_dump('anonymize.audit_log_event_id_seq', '');
COMMENT ON COLUMN anonymize.audit_log.event_id IS
'Number of the erasure event.';
COMMENT ON COLUMN anonymize.audit_log.transaction_id IS
'Id of the transaction that anonymized the customer; NULL for erasures recorded before version 1.2.';
COMMENT ON COLUMN anonymize.audit_log.request_id IS
'The request of anonymize.requests the erasure answered; NULL when anonymize_customer() was called directly.';
COMMENT ON COLUMN anonymize.audit_log.mapping_fingerprint IS
'anonymize.mapping_fingerprint() of the mapping the erasure followed; NULL for erasures recorded before version 1.2.';

CREATE FUNCTION anonymize.receipt(customer_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	receipt jsonb;
BEGIN
	SELECT pg_catalog.jsonb_build_object(
			'customer_id', a.customer_id,
			'erased_at', a.anonymized_at,
			'erased_as', a.customer_kind,
			'event_id', a.event_id,
			'transaction_id', a.transaction_id::text,
			'request_id', a.request_id,
			'rows_deleted', a.rows_deleted,
			'rows_updated', a.rows_updated,
			'mapping_fingerprint', a.mapping_fingerprint,
			'statement', 'The personal data of this customer that the mapping covers was erased in the transaction above: deleted where listed under rows_deleted, overwritten where listed under rows_updated. Records that accounting law requires to keep, such as invoices, are kept.')
	  INTO receipt
	  FROM anonymize.audit_log a
	 WHERE a.customer_id OPERATOR(pg_catalog.=) receipt.customer_id;
	IF receipt IS NULL THEN
		RAISE EXCEPTION 'customer % has not been anonymized', customer_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	RETURN receipt;
END
$$;
COMMENT ON FUNCTION anonymize.receipt(uuid) IS
'A receipt of the customer''s erasure, as a JSON document without personal data: when, as what, the transaction, the request, the rows deleted and updated per rule and the fingerprint of the mapping.';
REVOKE EXECUTE ON FUNCTION anonymize.receipt(uuid) FROM PUBLIC;

/*
 * Changing the mapping.  Each function writes its row and then validates
 * the whole mapping (anonymize.check_mapping(), in C, as the plans would be
 * built): a wrong entry is refused with an error that names it, and nothing
 * is saved.  Only the extension owner may; the functions run with the
 * caller's rights, and the tables belong to the owner.
 */
CREATE FUNCTION anonymize.require_owner() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	IF NOT pg_catalog.pg_has_role(current_user,
			(SELECT e.extowner FROM pg_catalog.pg_extension e
			  WHERE e.extname OPERATOR(pg_catalog.=) 'anonymize'), 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of extension anonymize'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Only the owner of the extension can change its mapping.';
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.require_owner() IS
'Raises an error unless the caller has the privileges of the extension owner; called by every function that changes the mapping.';

CREATE FUNCTION anonymize.require_arguments(function_name text, names text[], present boolean[])
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	FOR i IN 1 .. pg_catalog.cardinality(names) LOOP
		IF NOT present[i] THEN
			RAISE EXCEPTION '% must not be null', names[i]
				USING ERRCODE = 'null_value_not_allowed',
					  HINT = pg_catalog.format('See anonymize.%s() in docs/mapping.md.', function_name);
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION anonymize.require_arguments(text, text[], boolean[]) IS
'Raises an error naming the first argument of a mapping function that is null.';

/* Without a customer relation, the error of anonymize.check_mapping(). */
CREATE FUNCTION anonymize.require_customer_relation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	IF NOT EXISTS (SELECT FROM anonymize.customer_relation) THEN
		PERFORM anonymize.check_mapping();
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.require_customer_relation() IS
'Raises the error of anonymize.check_mapping() (55000, with a hint how to start) while no customer relation is mapped.';

/* "schema", "name" of a relation. */
CREATE FUNCTION anonymize.relation_names(relation regclass, OUT relation_schema name, OUT relation_name name)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
SELECT n.nspname, c.relname
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.oid OPERATOR(pg_catalog.=) relation
$$;
COMMENT ON FUNCTION anonymize.relation_names(regclass) IS
'Schema and name of a relation, as the mapping stores it.';

CREATE OR REPLACE FUNCTION anonymize.set_customer_relation(relation regclass,
	key_column name, name_column name, email_column name)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_customer_relation',
		'{relation,key_column,name_column,email_column}',
		ARRAY[relation IS NOT NULL, key_column IS NOT NULL,
			  name_column IS NOT NULL, email_column IS NOT NULL]);
	INSERT INTO anonymize.customer_relation AS c
		(relation_schema, relation_name, key_column, name_column, email_column)
	SELECT r.relation_schema, r.relation_name, set_customer_relation.key_column,
		   set_customer_relation.name_column, set_customer_relation.email_column
	  FROM anonymize.relation_names(relation) r
	ON CONFLICT (singleton) DO UPDATE
	   SET relation_schema = EXCLUDED.relation_schema,
		   relation_name = EXCLUDED.relation_name,
		   key_column = EXCLUDED.key_column,
		   name_column = EXCLUDED.name_column,
		   email_column = EXCLUDED.email_column;
	PERFORM anonymize.check_mapping();
END
$$;
COMMENT ON FUNCTION anonymize.set_customer_relation(regclass, name, name, name) IS
'Maps the customer relation (the scope customer): its uuid key, the name column (the company name for a company, erased for an individual) and the email column (erased).';

CREATE FUNCTION anonymize.set_scope(scope_name text, relation regclass,
	key_column name, parent text DEFAULT 'customer',
	parent_column name DEFAULT NULL, condition text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_scope',
		'{scope_name,relation,key_column,parent}',
		ARRAY[scope_name IS NOT NULL, relation IS NOT NULL,
			  key_column IS NOT NULL, parent IS NOT NULL]);
	IF scope_name OPERATOR(pg_catalog.=) 'customer' THEN
		RAISE EXCEPTION 'scope "customer" is the customer relation'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Set it with anonymize.set_customer_relation().';
	END IF;
	INSERT INTO anonymize.scopes AS s
		(scope_name, relation_schema, relation_name, key_column, parent,
		 parent_column, condition)
	SELECT set_scope.scope_name, r.relation_schema, r.relation_name,
		   set_scope.key_column, set_scope.parent, set_scope.parent_column,
		   set_scope.condition
	  FROM anonymize.relation_names(relation) r
	ON CONFLICT ON CONSTRAINT scopes_pkey DO UPDATE
	   SET relation_schema = EXCLUDED.relation_schema,
		   relation_name = EXCLUDED.relation_name,
		   key_column = EXCLUDED.key_column,
		   parent = EXCLUDED.parent,
		   parent_column = EXCLUDED.parent_column,
		   condition = EXCLUDED.condition;
	PERFORM anonymize.check_mapping();
END
$$;
COMMENT ON FUNCTION anonymize.set_scope(text, regclass, name, text, name, text) IS
'Adds or replaces a scope: the rows of the relation whose key column equals the parent column (default: the parent''s key) of a row of the parent scope, and that match the optional condition.';

CREATE FUNCTION anonymize.drop_scope(scope_name text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	dependents text;
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('drop_scope', '{scope_name}',
										ARRAY[scope_name IS NOT NULL]);
	PERFORM anonymize.require_customer_relation();
	IF scope_name OPERATOR(pg_catalog.=) 'customer' THEN
		RAISE EXCEPTION 'cannot drop scope "customer"'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'anonymize.clear_mapping() removes the whole mapping.';
	END IF;
	SELECT pg_catalog.string_agg(d.what, ', ' ORDER BY d.what) INTO dependents
	  FROM (SELECT pg_catalog.format('rule "%s"', r.rule_name) AS what
			  FROM anonymize.rules r WHERE r.scope OPERATOR(pg_catalog.=) drop_scope.scope_name
			UNION ALL
			SELECT pg_catalog.format('scope "%s"', s.scope_name)
			  FROM anonymize.scopes s WHERE s.parent OPERATOR(pg_catalog.=) drop_scope.scope_name
			UNION ALL
			SELECT 'the company test'
			  FROM anonymize.customer_relation c
			 WHERE c.company_scope OPERATOR(pg_catalog.=) drop_scope.scope_name) d;
	IF dependents IS NOT NULL THEN
		RAISE EXCEPTION 'cannot drop scope "%" because other mapping entries depend on it', scope_name
			USING ERRCODE = 'dependent_objects_still_exist',
				  DETAIL = pg_catalog.format('Used by %s.', dependents),
				  HINT = 'Drop or change those first.';
	END IF;
	DELETE FROM anonymize.scopes s WHERE s.scope_name OPERATOR(pg_catalog.=) drop_scope.scope_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'scope "%" does not exist', scope_name
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.drop_scope(text) IS
'Removes a scope that no rule, scope or company test uses.';

CREATE FUNCTION anonymize.set_company_test(scope text, condition text, company_name text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_company_test',
		'{scope,condition,company_name}',
		ARRAY[scope IS NOT NULL, condition IS NOT NULL, company_name IS NOT NULL]);
	UPDATE anonymize.customer_relation
	   SET company_scope = set_company_test.scope,
		   company_condition = set_company_test.condition,
		   company_name = set_company_test.company_name;
	PERFORM anonymize.check_mapping();
END
$$;
COMMENT ON FUNCTION anonymize.set_company_test(text, text, text) IS
'Sets how a company is told from an individual: the condition and the company name, SQL expressions on the one row of the scope (customer, or a scope with at most one row per customer) that belongs to the customer.  No row: individual.';

/* Adds or replaces a rule of the given kind; a rule of another kind stays. */
CREATE FUNCTION anonymize.save_rule(rule anonymize.rules)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	old_kind text;
BEGIN
	SELECT r.kind INTO old_kind FROM anonymize.rules r
	 WHERE r.rule_name OPERATOR(pg_catalog.=) rule.rule_name FOR UPDATE;
	IF old_kind OPERATOR(pg_catalog.<>) rule.kind THEN
		RAISE EXCEPTION 'rule "%" is of kind %, not %', rule.rule_name, old_kind, rule.kind
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Rule names are unique across all kinds: drop it first with anonymize.drop_rule(), or choose another name.';
	END IF;
	DELETE FROM anonymize.rules r WHERE r.rule_name OPERATOR(pg_catalog.=) rule.rule_name;
	INSERT INTO anonymize.rules SELECT rule.*;
	PERFORM anonymize.check_mapping();
END
$$;
COMMENT ON FUNCTION anonymize.save_rule(anonymize.rules) IS
'Writes a rule for the set_*_rule() functions and validates the mapping.';

CREATE OR REPLACE FUNCTION anonymize.set_purge_rule(rule_name text, scope text, condition text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_purge_rule', '{rule_name,scope}',
		ARRAY[rule_name IS NOT NULL, scope IS NOT NULL]);
	PERFORM anonymize.save_rule(ROW(rule_name, 'purge', scope, condition,
		NULL, NULL, NULL, NULL, NULL)::anonymize.rules);
END
$$;
COMMENT ON FUNCTION anonymize.set_purge_rule(text, text, text) IS
'Adds or replaces a purge rule: the customer''s rows of the scope that match the optional condition are deleted.';

CREATE OR REPLACE FUNCTION anonymize.set_erase_rule(rule_name text, scope text,
	columns name[], applies_to text DEFAULT 'everyone', replacements jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_erase_rule',
		'{rule_name,scope,columns,applies_to,replacements}',
		ARRAY[rule_name IS NOT NULL, scope IS NOT NULL, columns IS NOT NULL,
			  applies_to IS NOT NULL, replacements IS NOT NULL]);
	IF pg_catalog.array_position(columns, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'columns of erase rule "%" must not be null', rule_name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF pg_catalog.jsonb_typeof(replacements) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'replacements of erase rule "%" must be a JSON object', rule_name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Map each column to an SQL expression, such as {"updated_at": "pg_catalog.now()"}.';
	END IF;
	IF applies_to OPERATOR(pg_catalog.<>) ALL ('{everyone,individual,company}') THEN
		RAISE EXCEPTION 'invalid value for applies_to: "%"', applies_to
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use everyone, individual or company.';
	END IF;
	PERFORM anonymize.save_rule(ROW(rule_name, 'erase', scope, NULL, NULL,
		NULL, columns, applies_to, replacements)::anonymize.rules);
END
$$;
COMMENT ON FUNCTION anonymize.set_erase_rule(text, text, name[], text, jsonb) IS
'Adds or replaces an erase rule: on the customer''s rows of the scope, the columns become NULL (the placeholder if NOT NULL) and each key of replacements (a column) the value of its SQL expression on the row; for everyone, individuals only or companies only.';

CREATE OR REPLACE FUNCTION anonymize.set_blocker_rule(rule_name text, scope text, condition text, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_blocker_rule',
		'{rule_name,scope,condition,reason}',
		ARRAY[rule_name IS NOT NULL, scope IS NOT NULL, condition IS NOT NULL,
			  reason IS NOT NULL]);
	PERFORM anonymize.save_rule(ROW(rule_name, 'blocker', scope, condition,
		NULL, reason, NULL, NULL, NULL)::anonymize.rules);
END
$$;
COMMENT ON FUNCTION anonymize.set_blocker_rule(text, text, text, text) IS
'Adds or replaces a blocker rule: a row of the scope matching the condition refuses the customer''s anonymization, for the given reason.';

CREATE OR REPLACE FUNCTION anonymize.set_balance_rule(rule_name text, scope text, amount text,
	reason text DEFAULT 'non-zero balance')
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_balance_rule',
		'{rule_name,scope,amount,reason}',
		ARRAY[rule_name IS NOT NULL, scope IS NOT NULL, amount IS NOT NULL,
			  reason IS NOT NULL]);
	PERFORM anonymize.save_rule(ROW(rule_name, 'balance', scope, NULL,
		amount, reason, NULL, NULL, NULL)::anonymize.rules);
END
$$;
COMMENT ON FUNCTION anonymize.set_balance_rule(text, text, text, text) IS
'Adds or replaces a balance rule: the customer''s amounts in the scope must sum to zero.';

CREATE OR REPLACE FUNCTION anonymize.drop_rule(rule_name text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
	dropped_kind text;
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('drop_rule', '{rule_name}',
										ARRAY[rule_name IS NOT NULL]);
	PERFORM anonymize.require_customer_relation();
	DELETE FROM anonymize.rules r WHERE r.rule_name OPERATOR(pg_catalog.=) drop_rule.rule_name
	RETURNING r.kind INTO dropped_kind;
	IF dropped_kind IS NULL THEN
		RAISE EXCEPTION 'rule "%" does not exist', rule_name
			USING ERRCODE = 'undefined_object';
	END IF;
	IF dropped_kind OPERATOR(pg_catalog.=) ANY ('{blocker,balance}') AND NOT EXISTS (
			SELECT FROM anonymize.rules r
			 WHERE r.kind OPERATOR(pg_catalog.=) ANY ('{blocker,balance}')) THEN
		RAISE WARNING 'the anonymize mapping has no blocker or balance rule left'
			USING DETAIL = 'Every customer can now be anonymized, active or not.',
				  HINT = 'Add one with anonymize.set_blocker_rule() or anonymize.set_balance_rule().';
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.drop_rule(text) IS
'Removes the purge, erase, blocker or balance rule of that name; warns when no blocker or balance rule is left.';

CREATE OR REPLACE FUNCTION anonymize.set_placeholder(placeholder text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	IF placeholder IS NULL THEN
		RAISE EXCEPTION 'placeholder cannot be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Use an empty string to write nothing into NOT NULL columns.';
	END IF;
	UPDATE anonymize.customer_relation SET placeholder = set_placeholder.placeholder;
	PERFORM anonymize.check_mapping();
END
$$;
COMMENT ON FUNCTION anonymize.set_placeholder(text) IS
'Sets the value written instead of NULL into erased character columns that are NOT NULL (default: empty string).';

CREATE FUNCTION anonymize.clear_mapping()
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	DELETE FROM anonymize.rules;
	DELETE FROM anonymize.scopes;
	DELETE FROM anonymize.customer_relation;
END
$$;
COMMENT ON FUNCTION anonymize.clear_mapping() IS
'Removes the whole mapping: the customer relation, every scope and rule, the company test and the placeholder.';

/* require_owner() only refuses: callable by all, so a non-owner learns why. */
REVOKE EXECUTE ON FUNCTION anonymize.require_arguments(text, text[], boolean[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.relation_names(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.require_customer_relation() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_scope(text, regclass, name, text, name, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.drop_scope(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_company_test(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.save_rule(anonymize.rules) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_purge_rule(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_erase_rule(text, text, name[], text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_blocker_rule(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_balance_rule(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.clear_mapping() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_customer_relation(regclass, name, name, name) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.set_placeholder(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.drop_rule(text) FROM PUBLIC;
