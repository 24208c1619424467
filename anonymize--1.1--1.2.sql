/* anonymize--1.1--1.2.sql: fault fixes of an outside review */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION anonymize UPDATE TO '1.2'" to load this file. \quit

/*
 * Plans are rebuilt after a change of the mapping from any source.  A
 * statement-level trigger does not fire in a logical replication apply
 * worker: row-level triggers (and the TRUNCATE trigger) enabled ALWAYS do.
 */
DROP TRIGGER invalidate_plans ON anonymize.customer_mapping;
DROP TRIGGER invalidate_plans ON anonymize.purge_rules;
DROP TRIGGER invalidate_plans ON anonymize.blocker_rules;
DROP TRIGGER invalidate_plans ON anonymize.balance_rules;

CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.customer_mapping FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.purge_rules FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.blocker_rules FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans AFTER INSERT OR UPDATE OR DELETE
	ON anonymize.balance_rules FOR EACH ROW EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.customer_mapping FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.purge_rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.blocker_rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();
CREATE TRIGGER invalidate_plans_on_truncate AFTER TRUNCATE
	ON anonymize.balance_rules FOR EACH STATEMENT EXECUTE FUNCTION anonymize.mapping_changed();

ALTER TABLE anonymize.customer_mapping ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.purge_rules ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.blocker_rules ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.balance_rules ENABLE ALWAYS TRIGGER invalidate_plans;
ALTER TABLE anonymize.customer_mapping ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;
ALTER TABLE anonymize.purge_rules ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;
ALTER TABLE anonymize.blocker_rules ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;
ALTER TABLE anonymize.balance_rules ENABLE ALWAYS TRIGGER invalidate_plans_on_truncate;

/*
 * The whole mapping is checked after a purge rule changes: a purge that
 * would cascade into a relation no purge rule deletes as a whole (a paid
 * invoice ON DELETE CASCADE from its subscription) is refused at once.
 */
CREATE FUNCTION anonymize.check_mapping() RETURNS void
AS 'MODULE_PATHNAME', 'anonymize_check_mapping'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.check_mapping() IS
'Raises an error unless the caller owns the extension and the whole mapping is valid, as the plans would be built from it.';
REVOKE EXECUTE ON FUNCTION anonymize.check_mapping() FROM PUBLIC;

CREATE OR REPLACE FUNCTION anonymize.set_purge_rule(rule_name text, relation regclass,
	key_column name, condition text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	PERFORM anonymize.check_relation(relation, key_column, '{}', condition, 'condition');
	INSERT INTO anonymize.purge_rules AS r
		(rule_name, relation_schema, relation_name, key_column, condition)
	SELECT set_purge_rule.rule_name, n.nspname, c.relname,
		   set_purge_rule.key_column, set_purge_rule.condition
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = relation
	ON CONFLICT ON CONSTRAINT purge_rules_pkey DO UPDATE
	   SET relation_schema = EXCLUDED.relation_schema,
		   relation_name = EXCLUDED.relation_name,
		   key_column = EXCLUDED.key_column,
		   condition = EXCLUDED.condition,
		   enabled = true;
	PERFORM anonymize.check_mapping();
END
$$;

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
COMMENT ON COLUMN anonymize.customer_mapping.singleton IS
'Always true: the primary key that keeps the mapping to one row.';
COMMENT ON COLUMN anonymize.customer_mapping.customer_schema IS
'Schema of the customer relation.';
COMMENT ON COLUMN anonymize.customer_mapping.customer_table IS
'Name of the customer relation.';
COMMENT ON COLUMN anonymize.customer_mapping.key_column IS
'The uuid key column of the customer relation: the customer id.';
COMMENT ON COLUMN anonymize.customer_mapping.name_column IS
'Column of the customer name: the company name for a company, erased for an individual.';
COMMENT ON COLUMN anonymize.customer_mapping.email_column IS
'Column of the customer email; erased.';
COMMENT ON COLUMN anonymize.customer_mapping.address_schema IS
'Schema of the billing address relation.';
COMMENT ON COLUMN anonymize.customer_mapping.address_table IS
'Name of the billing address relation; may be the customer relation.';
COMMENT ON COLUMN anonymize.customer_mapping.address_key_column IS
'The uuid column of the billing address relation that holds the customer id.';
COMMENT ON COLUMN anonymize.customer_mapping.company_column IS
'Column of the company of the billing address: a non-blank value makes the customer a company.';
COMMENT ON COLUMN anonymize.customer_mapping.first_name_column IS
'Column of the first name of the billing address; erased.';
COMMENT ON COLUMN anonymize.customer_mapping.last_name_column IS
'Column of the last name of the billing address; erased.';
COMMENT ON COLUMN anonymize.customer_mapping.phone_column IS
'Column of the phone number of the billing address; erased.';
COMMENT ON COLUMN anonymize.customer_mapping.address_columns IS
'Columns of the billing address erased for an individual (street, city, postal code...); kept for a company.';
COMMENT ON COLUMN anonymize.customer_mapping.country_column IS
'Column of the country of the billing address; never erased (accounting).';
COMMENT ON COLUMN anonymize.customer_mapping.placeholder IS
'Value written instead of NULL into erased columns that are NOT NULL; set with anonymize.set_placeholder().';
COMMENT ON COLUMN anonymize.customer_mapping.preset IS
'True for the row installed by the extension, left out of dumps; cleared when the row is changed.';

COMMENT ON COLUMN anonymize.purge_rules.rule_name IS
'Name of the rule; the key of anonymize.audit_log.rows_deleted.';
COMMENT ON COLUMN anonymize.purge_rules.relation_schema IS
'Schema of the relation whose rows are deleted.';
COMMENT ON COLUMN anonymize.purge_rules.relation_name IS
'Name of the relation whose rows are deleted.';
COMMENT ON COLUMN anonymize.purge_rules.key_column IS
'The uuid column of the relation that holds the customer id.';
COMMENT ON COLUMN anonymize.purge_rules.condition IS
'Boolean SQL expression over a row of the relation: only matching rows are deleted; NULL deletes all rows of the customer.';
COMMENT ON COLUMN anonymize.purge_rules.enabled IS
'False once anonymize.drop_rule() disabled the rule; set_purge_rule() enables it again.';
COMMENT ON COLUMN anonymize.purge_rules.preset IS
'True for a rule installed by the extension, left out of dumps; cleared when the row is changed.';

COMMENT ON COLUMN anonymize.blocker_rules.rule_name IS
'Name of the rule, as anonymize.blockers() reports it.';
COMMENT ON COLUMN anonymize.blocker_rules.relation_schema IS
'Schema of the relation checked.';
COMMENT ON COLUMN anonymize.blocker_rules.relation_name IS
'Name of the relation checked.';
COMMENT ON COLUMN anonymize.blocker_rules.key_column IS
'The uuid column of the relation that holds the customer id.';
COMMENT ON COLUMN anonymize.blocker_rules.condition IS
'Boolean SQL expression over a row of the relation: a matching row of the customer blocks its anonymization.';
COMMENT ON COLUMN anonymize.blocker_rules.reason IS
'Why a matching row blocks, as anonymize.blockers() and the error DETAIL report it.';
COMMENT ON COLUMN anonymize.blocker_rules.enabled IS
'False once anonymize.drop_rule() disabled the rule; set_blocker_rule() enables it again.';
COMMENT ON COLUMN anonymize.blocker_rules.preset IS
'True for a rule installed by the extension, left out of dumps; cleared when the row is changed.';

COMMENT ON COLUMN anonymize.balance_rules.rule_name IS
'Name of the rule, as anonymize.blockers() reports it.';
COMMENT ON COLUMN anonymize.balance_rules.relation_schema IS
'Schema of the relation summed.';
COMMENT ON COLUMN anonymize.balance_rules.relation_name IS
'Name of the relation summed.';
COMMENT ON COLUMN anonymize.balance_rules.key_column IS
'The uuid column of the relation that holds the customer id.';
COMMENT ON COLUMN anonymize.balance_rules.amount_expression IS
'Numeric SQL expression over a row of the relation; the customer is blocked unless its rows sum to zero.';
COMMENT ON COLUMN anonymize.balance_rules.reason IS
'Why a non-zero sum blocks, as anonymize.blockers() and the error DETAIL report it.';
COMMENT ON COLUMN anonymize.balance_rules.enabled IS
'False once anonymize.drop_rule() disabled the rule; set_balance_rule() enables it again.';
COMMENT ON COLUMN anonymize.balance_rules.preset IS
'True for a rule installed by the extension, left out of dumps; cleared when the row is changed.';

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
