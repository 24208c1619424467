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
