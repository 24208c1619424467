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
	 WHERE a.customer_id OPERATOR(pg_catalog.=) receipt.customer_id
	 ORDER BY a.event_id DESC LIMIT 1;
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
 * An erasure that stays true: the audit log holds one row per erasure
 * event, the first and every repeat (a repeat erases what came back: a
 * CRM sync rewrote the email, a re-activated customer got new emails).
 */
ALTER TABLE anonymize.audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE anonymize.audit_log ADD PRIMARY KEY (event_id);
CREATE INDEX audit_log_customer_id ON anonymize.audit_log (customer_id, event_id);
COMMENT ON TABLE anonymize.audit_log IS
'One row per erasure event (the first erasure of a customer and every repeat that erased data that came back), written by anonymize_customer() and process_requests(); no personal data.';
COMMENT ON COLUMN anonymize.audit_log.customer_id IS
'Id of the anonymized customer; a row marks the customer as anonymized.';

CREATE VIEW anonymize.anonymized_customers AS
SELECT a.customer_id,
	   pg_catalog.min(a.anonymized_at) AS first_erased_at,
	   pg_catalog.max(a.anonymized_at) AS last_erased_at,
	   pg_catalog.count(*) AS erasures,
	   (pg_catalog.array_agg(a.customer_kind ORDER BY a.event_id DESC))[1] AS customer_kind
  FROM anonymize.audit_log a
 GROUP BY a.customer_id;
COMMENT ON VIEW anonymize.anonymized_customers IS
'One row per anonymized customer: its first and last erasure, how many erasure events, and the kind of the last one.';
COMMENT ON COLUMN anonymize.anonymized_customers.customer_id IS 'Id of the anonymized customer.';
COMMENT ON COLUMN anonymize.anonymized_customers.first_erased_at IS 'When it was first anonymized.';
COMMENT ON COLUMN anonymize.anonymized_customers.last_erased_at IS 'When its last erasure event took place.';
COMMENT ON COLUMN anonymize.anonymized_customers.erasures IS 'Its erasure events: 1, plus one per repeat that erased data that came back.';
COMMENT ON COLUMN anonymize.anonymized_customers.customer_kind IS 'company or individual, as the last erasure treated it.';

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

/* Coverage of the mapping (issue 13) */
/*
 * What the mapping misses, for a DBA who has just mapped a schema:
 * anonymize.coverage() lists every relation that references a mapped
 * relation through foreign keys and is no scope, every column that can hold
 * personal data (character, json, jsonb, character arrays, inet, bytea) of
 * the customer relation and of every scope relation with what an erasure
 * does with it, scopes without rules, a mapping without blockers, and
 * cascades from purged relations.  Columns and relations reviewed and kept
 * on purpose are marked with anonymize.set_kept() and a reason, so that a
 * reviewed mapping reaches zero "NOT COVERED".  The marks are stored by
 * name, like the mapping, and dumped whole; the C code does not read them.
 */
CREATE TABLE anonymize.kept (
	relation_schema	name NOT NULL,
	relation_name	name NOT NULL,
	column_name		name,
	reason			text NOT NULL
);
CREATE UNIQUE INDEX kept_key ON anonymize.kept
	(relation_schema, relation_name, (COALESCE(column_name, '')));
COMMENT ON TABLE anonymize.kept IS
'Columns and relations kept on purpose, with the reason, as anonymize.coverage() reports them; one row per column, or per relation when column_name is NULL.  Set with anonymize.set_kept(), removed with anonymize.drop_kept().';
COMMENT ON COLUMN anonymize.kept.relation_schema IS
'Schema of the relation.';
COMMENT ON COLUMN anonymize.kept.relation_name IS
'Name of the relation.';
COMMENT ON COLUMN anonymize.kept.column_name IS
'The column kept on purpose; NULL: the whole relation (each of its columns, and the relation itself when it is no scope).';
COMMENT ON COLUMN anonymize.kept.reason IS
'Why the values stay after an erasure, as anonymize.coverage() reports it.';

SELECT pg_catalog.pg_extension_config_dump('anonymize.kept', '');

CREATE FUNCTION anonymize.set_kept(relation regclass, column_name name, reason text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('set_kept', '{relation,reason}',
		ARRAY[relation IS NOT NULL, reason IS NOT NULL]);
	IF reason OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN
		RAISE EXCEPTION 'reason must not be blank'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Say why the values stay after an erasure.';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
					WHERE c.oid OPERATOR(pg_catalog.=) relation
					  AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}')) THEN
		RAISE EXCEPTION '"%" is not a table', relation
			USING ERRCODE = 'wrong_object_type';
	END IF;
	IF set_kept.column_name IS NOT NULL AND NOT EXISTS (
			SELECT FROM pg_catalog.pg_attribute a
			 WHERE a.attrelid OPERATOR(pg_catalog.=) relation
			   AND a.attname OPERATOR(pg_catalog.=) set_kept.column_name
			   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
		RAISE EXCEPTION 'column "%" of relation "%" does not exist',
			set_kept.column_name, relation
			USING ERRCODE = 'undefined_column';
	END IF;
	UPDATE anonymize.kept k SET reason = set_kept.reason
	  FROM anonymize.relation_names(relation) r
	 WHERE k.relation_schema OPERATOR(pg_catalog.=) r.relation_schema
	   AND k.relation_name OPERATOR(pg_catalog.=) r.relation_name
	   AND k.column_name IS NOT DISTINCT FROM set_kept.column_name;
	IF NOT FOUND THEN
		INSERT INTO anonymize.kept (relation_schema, relation_name, column_name, reason)
		SELECT r.relation_schema, r.relation_name, set_kept.column_name, set_kept.reason
		  FROM anonymize.relation_names(relation) r;
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.set_kept(regclass, name, text) IS
'Marks a column (or, with column_name NULL, a whole relation) as kept on purpose, for the reason given, which anonymize.coverage() reports instead of NOT COVERED; marking it again replaces the reason.';

CREATE FUNCTION anonymize.drop_kept(relation regclass, column_name name DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	PERFORM anonymize.require_arguments('drop_kept', '{relation}',
		ARRAY[relation IS NOT NULL]);
	DELETE FROM anonymize.kept k
	 USING anonymize.relation_names(relation) r
	 WHERE k.relation_schema OPERATOR(pg_catalog.=) r.relation_schema
	   AND k.relation_name OPERATOR(pg_catalog.=) r.relation_name
	   AND k.column_name IS NOT DISTINCT FROM drop_kept.column_name;
	IF NOT FOUND THEN
		IF drop_kept.column_name IS NULL THEN
			RAISE EXCEPTION 'relation "%" is not marked kept', relation
				USING ERRCODE = 'undefined_object';
		ELSE
			RAISE EXCEPTION 'column "%" of relation "%" is not marked kept',
				drop_kept.column_name, relation
				USING ERRCODE = 'undefined_object';
		END IF;
	END IF;
END
$$;
COMMENT ON FUNCTION anonymize.drop_kept(regclass, name) IS
'Removes the kept-on-purpose mark of a column (or, with column_name NULL, of the whole relation).';

CREATE FUNCTION anonymize.coverage()
RETURNS TABLE (item text, relation regclass, column_name name, status text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
/* the catalog joins are estimated far above their cost: JIT took 0.4 s */
SET jit = off AS
$$
#variable_conflict use_column
BEGIN
	PERFORM anonymize.require_owner();
	/* A cascade from a purged relation is reported below, as the rest. */
	BEGIN
		PERFORM anonymize.check_mapping();
	EXCEPTION WHEN dependent_objects_still_exist THEN
		NULL;
	END;
	RETURN QUERY
	WITH RECURSIVE
	cr AS (
		SELECT c.*, pg_catalog.to_regclass(pg_catalog.format('%I.%I',
					c.relation_schema, c.relation_name)) AS rel
		  FROM anonymize.customer_relation c),
	sc AS (
		SELECT 'customer'::text AS scope_name, cr.rel, cr.key_column,
			   NULL::text AS parent, NULL::name AS parent_column
		  FROM cr
		UNION ALL
		SELECT s.scope_name, pg_catalog.to_regclass(pg_catalog.format('%I.%I',
					s.relation_schema, s.relation_name)),
			   s.key_column, s.parent, s.parent_column
		  FROM anonymize.scopes s),
	/* per scope: its purge rules without condition, and with one */
	scope_purge AS (
		SELECT sc.scope_name, sc.rel,
			   (SELECT pg_catalog.string_agg(r.rule_name, ', ' ORDER BY r.rule_name)
				  FROM anonymize.rules r
				 WHERE r.scope OPERATOR(pg_catalog.=) sc.scope_name
				   AND r.kind OPERATOR(pg_catalog.=) 'purge' AND r.condition IS NULL) AS whole,
			   (SELECT pg_catalog.string_agg(r.rule_name, ', ' ORDER BY r.rule_name)
				  FROM anonymize.rules r
				 WHERE r.scope OPERATOR(pg_catalog.=) sc.scope_name
				   AND r.kind OPERATOR(pg_catalog.=) 'purge' AND r.condition IS NOT NULL) AS partial
		  FROM sc WHERE sc.rel IS NOT NULL),
	/* every mapped relation: purged when each of its scopes is purged whole */
	mapped AS (
		SELECT sp.rel, pg_catalog.bool_and(sp.whole IS NOT NULL) AS purged,
			   pg_catalog.string_agg(sp.whole, ', ' ORDER BY sp.whole) AS whole,
			   pg_catalog.string_agg(sp.partial, ', ' ORDER BY sp.partial) AS partial
		  FROM scope_purge sp GROUP BY sp.rel),
	marks AS (
		SELECT k.*, pg_catalog.to_regclass(pg_catalog.format('%I.%I',
					k.relation_schema, k.relation_name)) AS rel
		  FROM anonymize.kept k),
	/* the columns that can hold personal data */
	cols AS (
		SELECT m.rel, a.attnum, a.attname, m.purged, m.whole, m.partial
		  FROM mapped m
		  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) m.rel
			   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
		  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
		  JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=)
			   CASE WHEN t.typbasetype OPERATOR(pg_catalog.=) 0 THEN t.oid ELSE t.typbasetype END
		  LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) b.typelem
			   AND b.typcategory OPERATOR(pg_catalog.=) 'A'
		 WHERE b.typcategory OPERATOR(pg_catalog.=) 'S'
			OR e.typcategory OPERATOR(pg_catalog.=) 'S'
			OR b.oid OPERATOR(pg_catalog.=) ANY (
				'{json,jsonb,inet,cidr,bytea}'::pg_catalog.regtype[]::pg_catalog.oid[])),
	/* per scope and column: the erase rules, for whom, how */
	erasures AS (
		SELECT r.scope AS scope_name, x.col, r.rule_name, r.applies_to, x.how
		  FROM anonymize.rules r,
			   LATERAL (SELECT c, 'erased' FROM pg_catalog.unnest(r.columns) c
						UNION ALL
						SELECT k::name, 'replaced'
						  FROM pg_catalog.jsonb_object_keys(r.replacements) k) x (col, how)
		 WHERE r.kind OPERATOR(pg_catalog.=) 'erase'),
	scope_erasures AS (
		SELECT e.scope_name, e.col,
			   CASE WHEN pg_catalog.bool_or(e.applies_to OPERATOR(pg_catalog.=) 'everyone')
						 OR (pg_catalog.bool_or(e.applies_to OPERATOR(pg_catalog.=) 'individual')
							 AND pg_catalog.bool_or(e.applies_to OPERATOR(pg_catalog.=) 'company'))
					THEN 'everyone'
					WHEN pg_catalog.bool_or(e.applies_to OPERATOR(pg_catalog.=) 'individual')
					THEN 'individuals'
					ELSE 'companies' END AS whom,
			   pg_catalog.bool_and(e.how OPERATOR(pg_catalog.=) 'erased') AS by_null,
			   pg_catalog.bool_and(e.how OPERATOR(pg_catalog.=) 'replaced') AS by_expression,
			   pg_catalog.string_agg(e.rule_name, ', ' ORDER BY e.rule_name) AS rules,
			   pg_catalog.count(*) AS n
		  FROM erasures e GROUP BY e.scope_name, e.col),
	/* per column: the erasures over the scopes of its relation that are not purged whole */
	column_erasures AS (
		SELECT c.rel, c.attname, pg_catalog.count(*) AS scopes,
			   pg_catalog.count(se.col) AS erased_in,
			   CASE WHEN pg_catalog.bool_and(se.whom OPERATOR(pg_catalog.=) 'everyone') THEN 'everyone'
					WHEN pg_catalog.bool_and(se.whom OPERATOR(pg_catalog.<>) 'companies') THEN 'individuals'
					WHEN pg_catalog.bool_and(se.whom OPERATOR(pg_catalog.<>) 'individuals') THEN 'companies'
					ELSE 'some customers' END AS whom,
			   CASE WHEN pg_catalog.bool_and(se.by_null) THEN 'erased'
					WHEN pg_catalog.bool_and(se.by_expression) THEN 'replaced'
					ELSE 'erased or replaced' END AS how,
			   pg_catalog.string_agg(se.rules, ', ' ORDER BY se.rules) AS rules,
			   pg_catalog.sum(se.n) AS n,
			   pg_catalog.string_agg(sp.scope_name, ', ' ORDER BY sp.scope_name)
				   FILTER (WHERE se.col IS NULL) AS missing_scopes
		  FROM cols c
		  JOIN scope_purge sp ON sp.rel OPERATOR(pg_catalog.=) c.rel AND sp.whole IS NULL
		  LEFT JOIN scope_erasures se ON se.scope_name OPERATOR(pg_catalog.=) sp.scope_name
			   AND se.col OPERATOR(pg_catalog.=) c.attname
		 GROUP BY c.rel, c.attname),
	links AS (
		SELECT cr.rel, cr.key_column AS col, 'the customer id' AS what FROM cr
		UNION ALL
		SELECT sc.rel, sc.key_column, pg_catalog.format('key of scope %s', sc.scope_name)
		  FROM sc WHERE sc.parent IS NOT NULL
		UNION ALL
		SELECT p.rel, s.parent_column, pg_catalog.format('parent column of scope %s', s.scope_name)
		  FROM sc s JOIN sc p ON p.scope_name OPERATOR(pg_catalog.=) s.parent
		 WHERE s.parent_column IS NOT NULL),
	column_links AS (
		SELECT l.rel, l.col, pg_catalog.string_agg(l.what, ', ' ORDER BY l.what) AS what
		  FROM links l GROUP BY l.rel, l.col),
	column_items AS (
		SELECT c.rel, c.attnum, c.attname, s.status, s.detail
		  FROM cols c
		  CROSS JOIN cr
		  LEFT JOIN column_erasures ce ON ce.rel OPERATOR(pg_catalog.=) c.rel
			   AND ce.attname OPERATOR(pg_catalog.=) c.attname
		  LEFT JOIN column_links cl ON cl.rel OPERATOR(pg_catalog.=) c.rel
			   AND cl.col OPERATOR(pg_catalog.=) c.attname
		  LEFT JOIN marks kc ON kc.rel OPERATOR(pg_catalog.=) c.rel
			   AND kc.column_name OPERATOR(pg_catalog.=) c.attname
		  LEFT JOIN marks kr ON kr.rel OPERATOR(pg_catalog.=) c.rel AND kr.column_name IS NULL,
		  LATERAL (SELECT CASE
			  WHEN c.rel OPERATOR(pg_catalog.=) cr.rel AND c.attname OPERATOR(pg_catalog.=) cr.name_column
			  THEN ARRAY['erased', CASE WHEN cr.company_scope IS NULL
					THEN 'erased for everyone (the name column; no company test: every customer is an individual)'
					ELSE pg_catalog.format('erased for individuals, company name for companies (the name column; company test on scope %s)',
										   cr.company_scope) END]
			  WHEN c.purged
			  THEN ARRAY['purged', pg_catalog.format('rows deleted by purge %s %s',
					CASE WHEN c.whole OPERATOR(pg_catalog.~) ',' THEN 'rules' ELSE 'rule' END, c.whole)]
			  WHEN ce.erased_in OPERATOR(pg_catalog.>) 0 AND ce.erased_in OPERATOR(pg_catalog.=) ce.scopes
			  THEN ARRAY['erased', pg_catalog.format('%s for %s (%s %s)', ce.how, ce.whom,
					CASE WHEN ce.n OPERATOR(pg_catalog.>) 1 THEN 'rules' ELSE 'rule' END, ce.rules)]
			  WHEN c.rel OPERATOR(pg_catalog.=) cr.rel AND c.attname OPERATOR(pg_catalog.=) cr.email_column
			  THEN ARRAY['erased', 'erased for everyone (the email column)']
			  WHEN COALESCE(kc.reason, kr.reason) IS NOT NULL
			  THEN ARRAY['kept', COALESCE(kc.reason, kr.reason)]
			  WHEN cl.what IS NOT NULL
			  THEN ARRAY['link', cl.what]
			  ELSE ARRAY['NOT COVERED', pg_catalog.concat_ws('; ',
					CASE WHEN ce.erased_in OPERATOR(pg_catalog.>) 0
						 THEN pg_catalog.format('%s by %s %s, not in scope %s', ce.how,
								CASE WHEN ce.n OPERATOR(pg_catalog.>) 1 THEN 'rules' ELSE 'rule' END,
								ce.rules, ce.missing_scopes)
						 ELSE 'not purged, erased or marked kept' END,
					CASE WHEN c.partial IS NOT NULL
						 THEN pg_catalog.format('purge %s %s %s only the rows matching its condition',
								CASE WHEN c.partial OPERATOR(pg_catalog.~) ',' THEN 'rules' ELSE 'rule' END,
								c.partial,
								CASE WHEN c.partial OPERATOR(pg_catalog.~) ',' THEN 'delete' ELSE 'deletes' END)
					END)]
			  END AS r) x,
		  LATERAL (SELECT x.r[1] AS status, x.r[2] AS detail) s),
	/* relations that reference a mapped relation, to any depth, and are no scope */
	refs (rel, via, conname) AS (
		SELECT con.conrelid, con.confrelid, con.conname
		  FROM pg_catalog.pg_constraint con
		 WHERE con.contype OPERATOR(pg_catalog.=) 'f'
		   AND con.conparentid OPERATOR(pg_catalog.=) 0
		   AND con.confrelid OPERATOR(pg_catalog.=) ANY (SELECT m.rel FROM mapped m)
		   AND con.conrelid OPERATOR(pg_catalog.<>) ALL (SELECT m.rel FROM mapped m)
		UNION
		SELECT con.conrelid, con.confrelid, con.conname
		  FROM pg_catalog.pg_constraint con JOIN refs ON con.confrelid OPERATOR(pg_catalog.=) refs.rel
		 WHERE con.contype OPERATOR(pg_catalog.=) 'f'
		   AND con.conparentid OPERATOR(pg_catalog.=) 0
		   AND con.conrelid OPERATOR(pg_catalog.<>) ALL (SELECT m.rel FROM mapped m)),
	relation_items AS (
		SELECT r.rel,
			   CASE WHEN k.reason IS NULL THEN 'NOT COVERED' ELSE 'kept' END AS status,
			   COALESCE(k.reason, pg_catalog.format('references %s; no scope covers its rows',
					pg_catalog.string_agg(pg_catalog.format('%s (foreign key %I)', r.via::regclass, r.conname),
										  ', ' ORDER BY r.via::regclass::text, r.conname))) AS detail
		  FROM refs r
		  LEFT JOIN marks k ON k.rel OPERATOR(pg_catalog.=) r.rel AND k.column_name IS NULL
		 GROUP BY r.rel, k.reason),
	/* purged relations referenced ON DELETE CASCADE, SET NULL or SET DEFAULT */
	purged AS (
		SELECT sp.rel, pg_catalog.string_agg(r.rule_name, ', ' ORDER BY r.rule_name) AS rules
		  FROM scope_purge sp
		  JOIN anonymize.rules r ON r.scope OPERATOR(pg_catalog.=) sp.scope_name
			   AND r.kind OPERATOR(pg_catalog.=) 'purge'
		 GROUP BY sp.rel),
	cascade_items AS (
		SELECT con.conrelid AS rel,
			   pg_catalog.format('foreign key %I is ON DELETE %s from %s, purged by %s %s: check_mapping() refuses the mapping (2BP01)%s',
					con.conname,
					CASE con.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END,
					con.confrelid::regclass,
					CASE WHEN p.rules OPERATOR(pg_catalog.~) ',' THEN 'rules' ELSE 'rule' END, p.rules,
					CASE WHEN con.conrelid OPERATOR(pg_catalog.=) ANY (SELECT m.rel FROM mapped m)
						 THEN '' ELSE '; the referencing relation is not covered' END) AS detail
		  FROM pg_catalog.pg_constraint con
		  JOIN purged p ON p.rel OPERATOR(pg_catalog.=) con.confrelid
		 WHERE con.contype OPERATOR(pg_catalog.=) 'f'
		   AND con.conparentid OPERATOR(pg_catalog.=) 0
		   AND con.confdeltype OPERATOR(pg_catalog.=) ANY ('{c,n,d}')),
	scope_items AS (
		SELECT s.rel, pg_catalog.format('scope %s has no rule%s', s.scope_name,
					COALESCE('; parent of scope ' OPERATOR(pg_catalog.||)
						(SELECT pg_catalog.string_agg(ch.scope_name, ', ' ORDER BY ch.scope_name)
						   FROM sc ch WHERE ch.parent OPERATOR(pg_catalog.=) s.scope_name),
						' and no child scope: it does nothing')) AS detail
		  FROM sc s
		 WHERE s.parent IS NOT NULL
		   AND NOT EXISTS (SELECT FROM anonymize.rules r
							WHERE r.scope OPERATOR(pg_catalog.=) s.scope_name)),
	stale_items AS (
		SELECT k.rel, k.column_name,
			   pg_catalog.format('marked kept (%s), but %s does not exist', k.reason,
					CASE WHEN k.rel IS NULL
						 THEN pg_catalog.format('relation %I.%I', k.relation_schema, k.relation_name)
						 ELSE pg_catalog.format('column %I', k.column_name) END) AS detail
		  FROM marks k
		 WHERE k.rel IS NULL
			OR (k.column_name IS NOT NULL AND NOT EXISTS (
					SELECT FROM pg_catalog.pg_attribute a
					 WHERE a.attrelid OPERATOR(pg_catalog.=) k.rel
					   AND a.attname OPERATOR(pg_catalog.=) k.column_name
					   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped))),
	items (ord, item, relation, column_name, attnum, status, detail) AS (
		SELECT 1, 'mapping', NULL::regclass, NULL::name, 0::smallint, 'no blocker',
			   'no blocker or balance rule: every customer can be anonymized, active or not'
		 WHERE NOT EXISTS (SELECT FROM anonymize.rules r
							WHERE r.kind OPERATOR(pg_catalog.=) ANY ('{blocker,balance}'))
		UNION ALL
		SELECT 2, 'cascade', ci.rel, NULL, 0, 'cascade', ci.detail FROM cascade_items ci
		UNION ALL
		SELECT 3, 'scope', si.rel, NULL, 0, 'no rule', si.detail FROM scope_items si
		UNION ALL
		SELECT 4, 'relation', ri.rel, NULL, 0, ri.status, ri.detail FROM relation_items ri
		UNION ALL
		SELECT 5, 'column', ci.rel, ci.attname, ci.attnum, ci.status, ci.detail FROM column_items ci
		UNION ALL
		SELECT 6, 'kept', st.rel, st.column_name, 0, 'stale', st.detail FROM stale_items st)
	SELECT i.item, i.relation, i.column_name, i.status, i.detail
	  FROM items i LEFT JOIN cr ON true
	 ORDER BY i.ord, i.relation IS DISTINCT FROM cr.rel, i.relation::text COLLATE "C",
			  i.attnum, i.detail COLLATE "C";
END
$$;
COMMENT ON FUNCTION anonymize.coverage() IS
'What the mapping covers and misses: relations that reference a mapped relation through foreign keys and are no scope (NOT COVERED, or kept), every character, json, jsonb, character array, inet and bytea column of the customer relation and of every scope relation (purged, erased, kept, link or NOT COVERED, with the rule or the reason), scopes without rule, a mapping without blocker, cascades from purged relations, and kept marks of relations or columns that no longer exist.';

/* The whole mapping includes the kept marks. */
CREATE OR REPLACE FUNCTION anonymize.clear_mapping()
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.require_owner();
	DELETE FROM anonymize.rules;
	DELETE FROM anonymize.scopes;
	DELETE FROM anonymize.customer_relation;
	DELETE FROM anonymize.kept;
END
$$;
COMMENT ON FUNCTION anonymize.clear_mapping() IS
'Removes the whole mapping: the customer relation, every scope and rule, the company test, the placeholder and the kept-on-purpose marks.';

REVOKE EXECUTE ON FUNCTION anonymize.set_kept(regclass, name, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.drop_kept(regclass, name) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.coverage() FROM PUBLIC;
