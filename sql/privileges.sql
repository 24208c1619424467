--
-- privileges: anonymize_customer() runs with the caller's rights.  A role
-- without grants is refused (42501); an operator with EXECUTE and its own
-- table privileges succeeds and is named in the audit log, which it cannot
-- read or write itself; a non-owner cannot change the mapping, even with
-- EXECUTE on the mapping functions.
--
\ir sql/include/fresh_billing.sql
\pset null '(null)'

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_anon_nobody;
DROP ROLE IF EXISTS regress_anon_operator;
RESET client_min_messages;
CREATE ROLE regress_anon_nobody;
CREATE ROLE regress_anon_operator;

CREATE TEMP TABLE state_before AS
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
CREATE TEMP VIEW config AS
SELECT to_jsonb(c) AS entry FROM anonymize.customer_relation c
UNION ALL SELECT to_jsonb(s) FROM anonymize.scopes s
UNION ALL SELECT to_jsonb(r) FROM anonymize.rules r;
CREATE TEMP TABLE config_before AS SELECT * FROM config;
CREATE TEMP VIEW config_changes AS
SELECT count(*) AS config_changes FROM (
	(SELECT entry FROM config EXCEPT ALL SELECT entry FROM config_before)
	UNION ALL
	(SELECT entry FROM config_before EXCEPT ALL SELECT entry FROM config)) d;

-- A role without any grant.
SET ROLE regress_anon_nobody;
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT anonymize.can_anonymize(:'acme');
RESET ROLE;

-- With USAGE on the schema: no EXECUTE on anonymize_customer().
GRANT USAGE ON SCHEMA anonymize TO regress_anon_nobody;
SET ROLE regress_anon_nobody;
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));
-- can_anonymize() is executable by PUBLIC but reads billing as the caller
SELECT pg_temp.sqlstate(format('SELECT anonymize.can_anonymize(%L)', :'acme'));
-- and EXECUTE alone does not give the table privileges either
RESET ROLE;
GRANT EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) TO regress_anon_nobody;
SET ROLE regress_anon_nobody;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'acme'));
RESET ROLE;

-- The operator: the grants of README.md, but for DELETE on the webhook
-- notifications and UPDATE on the billing addresses ...
GRANT USAGE ON SCHEMA anonymize TO regress_anon_operator;
GRANT EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) TO regress_anon_operator;
GRANT USAGE ON SCHEMA billing TO regress_anon_operator;
GRANT SELECT, UPDATE ON billing.customers TO regress_anon_operator;
GRANT SELECT ON billing.billing_addresses TO regress_anon_operator;
GRANT SELECT ON billing.subscriptions, billing.invoices, billing.balance_entries
	TO regress_anon_operator;
GRANT SELECT, DELETE ON billing.sent_emails, billing.customer_activity,
	billing.subscriptions
	TO regress_anon_operator;
GRANT SELECT ON billing.webhook_notifications TO regress_anon_operator;
SET ROLE regress_anon_operator;
SELECT anonymize.can_anonymize(:'acme');
-- ... the operator runs the statements with its own rights (it does not
-- have the privileges of the tables' owner), so locking the blocker rows
-- FOR SHARE needs an UPDATE privilege on them, as README.md grants:
SELECT * FROM anonymize.anonymize_customer(:'acme');
RESET ROLE;
GRANT UPDATE (id) ON billing.subscriptions, billing.invoices,
	billing.balance_entries TO regress_anon_operator;
SET ROLE regress_anon_operator;
-- ... are refused before anything changes: the statements run as the table
-- owner, so the caller's privileges are checked first, as the executor
-- would check them.
SELECT * FROM anonymize.anonymize_customer(:'acme');
RESET ROLE;
GRANT UPDATE (first_name, last_name, phone) ON billing.billing_addresses
	TO regress_anon_operator;
SET ROLE regress_anon_operator;
-- a column privilege is enough, but every erased column needs one
SELECT * FROM anonymize.anonymize_customer(:'acme');
RESET ROLE;
GRANT UPDATE ON billing.billing_addresses TO regress_anon_operator;
SET ROLE regress_anon_operator;
SELECT * FROM anonymize.anonymize_customer(:'acme');
RESET ROLE;
GRANT DELETE ON billing.webhook_notifications TO regress_anon_operator;

-- Nothing changed so far.
SELECT * FROM state_before
EXCEPT ALL
SELECT * FROM customer_state JOIN rows_per_customer USING (id);
SELECT * FROM customer_state JOIN rows_per_customer USING (id)
EXCEPT ALL
SELECT * FROM state_before;

-- Now the operator can.
SET ROLE regress_anon_operator;
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT * FROM anonymize.anonymize_customer(:'maria');
SELECT * FROM anonymize.blockers(:'maria');
SELECT * FROM anonymize.anonymize_customer(:'acme');
-- The audit log is not the operator's to read or write.
SELECT * FROM anonymize.audit_log;
DELETE FROM anonymize.audit_log;
-- Nor is the mapping.
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.scopes;
SELECT * FROM anonymize.rules;
SELECT anonymize.set_placeholder('x');
SELECT current_user;
RESET ROLE;

SELECT customer_id, anonymized_by, customer_kind FROM anonymize.audit_log
 ORDER BY customer_id;
SELECT id, name, email FROM billing.customers ORDER BY id;
SELECT * FROM rows_per_customer ORDER BY id;

-- A non-owner cannot change the mapping even with EXECUTE on the functions
-- (they check the extension owner, and need the configuration tables).
GRANT EXECUTE ON FUNCTION
	anonymize.check_mapping(),
	anonymize.set_customer_relation(regclass, name, name, name),
	anonymize.set_scope(text, regclass, name, text, name, text),
	anonymize.drop_scope(text),
	anonymize.set_company_test(text, text, text),
	anonymize.set_placeholder(text),
	anonymize.set_purge_rule(text, text, text),
	anonymize.set_erase_rule(text, text, name[], text, jsonb),
	anonymize.set_blocker_rule(text, text, text, text),
	anonymize.set_balance_rule(text, text, text, text),
	anonymize.drop_rule(text),
	anonymize.clear_mapping()
	TO regress_anon_operator;
SET ROLE regress_anon_operator;
SELECT anonymize.set_scope('mine', 'billing.invoices', 'customer_id');
SELECT anonymize.set_scope('invoices', 'billing.invoices', 'customer_id', condition => 'false');
SELECT anonymize.drop_scope('invoices');
SELECT anonymize.set_purge_rule('mine', 'invoices');
SELECT anonymize.set_erase_rule('mine', 'invoices', '{status}');
SELECT anonymize.set_blocker_rule('mine', 'invoices', 'false', 'never');
SELECT anonymize.set_balance_rule('mine', 'invoices', '0');
SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email');
SELECT anonymize.set_company_test('customer', 'true', 'name');
SELECT anonymize.set_placeholder('x');
SELECT anonymize.drop_rule('balance');
SELECT anonymize.clear_mapping();
SELECT anonymize.check_mapping();
SELECT pg_temp.sqlstate(sql) FROM (VALUES
	($$SELECT anonymize.set_purge_rule('mine', 'invoices')$$),
	($$SELECT anonymize.set_placeholder('x')$$),
	($$SELECT anonymize.drop_rule('balance')$$),
	($$SELECT anonymize.clear_mapping()$$),
	($$SELECT anonymize.check_mapping()$$)) v(sql);
RESET ROLE;
SELECT * FROM config_changes;
-- Nor with EXECUTE on every function of the schema (require_owner()
-- included): every change is refused as the non-owner's.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA anonymize TO regress_anon_operator;
SET ROLE regress_anon_operator;
SELECT pg_temp.sqlstate(sql) FROM (VALUES
	($$SELECT anonymize.set_scope('invoices', 'billing.invoices', 'customer_id', condition => 'false')$$),
	($$SELECT anonymize.drop_scope('invoices')$$),
	($$SELECT anonymize.set_purge_rule('mine', 'invoices')$$),
	($$SELECT anonymize.set_erase_rule('mine', 'invoices', '{status}')$$),
	($$SELECT anonymize.set_blocker_rule('mine', 'invoices', 'false', 'never')$$),
	($$SELECT anonymize.set_balance_rule('mine', 'invoices', '0')$$),
	($$SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email')$$),
	($$SELECT anonymize.set_company_test('customer', 'true', 'name')$$),
	($$SELECT anonymize.set_placeholder('x')$$),
	($$SELECT anonymize.drop_rule('balance')$$),
	($$SELECT anonymize.clear_mapping()$$),
	($$SELECT anonymize.check_mapping()$$),
	($$SELECT anonymize.save_rule(ROW('mine', 'purge', 'invoices', NULL, NULL, NULL, NULL, NULL, NULL)::anonymize.rules)$$)) v(sql);
RESET ROLE;
SELECT * FROM config_changes;

-- An error while the audit row is written (as the extension owner) leaves
-- the operator the operator.
CREATE FUNCTION public.regress_refuse_audit() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
	RAISE EXCEPTION 'audit refused; trigger runs as the extension owner: %',
		current_user = (SELECT extowner::regrole::name FROM pg_extension
						 WHERE extname = 'anonymize');
END
$$;
CREATE TRIGGER refuse BEFORE INSERT ON anonymize.audit_log
	FOR EACH ROW EXECUTE FUNCTION public.regress_refuse_audit();
\set firm 'a1000000-0000-0000-0000-000000000001'
INSERT INTO billing.customers (id, name, email) VALUES (:'firm', 'Olga Op', 'olga@example.com');
SET ROLE regress_anon_operator;
SELECT pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', :'firm'));
SELECT current_user;
SELECT * FROM anonymize.audit_log;
RESET ROLE;
DROP TRIGGER refuse ON anonymize.audit_log;
DROP FUNCTION public.regress_refuse_audit();
SELECT id, name, email FROM billing.customers WHERE id = :'firm';

-- Roles are global: drop them.
DROP OWNED BY regress_anon_nobody, regress_anon_operator;
DROP ROLE regress_anon_nobody;
DROP ROLE regress_anon_operator;
