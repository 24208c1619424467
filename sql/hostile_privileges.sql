--
-- hostile_privileges: the functions run with the caller's rights.  An
-- operator missing one table privilege gets 42501 and nothing changes; a
-- role without grants cannot use anything that writes; the audit log, the
-- mapping tables and the request queue are out of an operator's reach
-- although anonymize_customer() writes the audit row for it (anonymized_by
-- is the operator); row-level security that hides rows of a mapped table
-- from the operator makes every function refuse with 42501 rather than
-- work on part of a customer (a hidden blocker would not block, a hidden
-- row would survive); a role that bypasses row-level security works.
-- Self-contained: builds its own fixture, cleans up at the end.
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['hostile_op', 'hostile_nobody'] LOOP
		IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;
\ir examples/billing.sql
CREATE EXTENSION anonymize;
\o /dev/null
\ir examples/billing_mapping.sql
\o
RESET client_min_messages;
\set acme       'a2000000-0000-0000-0000-000000000001'
\set jean       'a2000000-0000-0000-0000-000000000002'
\set hidden     'a2000000-0000-0000-0000-000000000003'
\set readonly   'a2000000-0000-0000-0000-000000000004'
\set addr_hidden 'a2000000-0000-0000-0000-000000000005'
\set due_hidden 'a2000000-0000-0000-0000-000000000006'
\set mail_hidden 'a2000000-0000-0000-0000-000000000007'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'acme', 'Anna Schmidt', 'anna@acme.example'),
	(:'jean', 'Jean Dupont', 'jean@example.fr'),
	(:'hidden', 'Hanna Hidden', 'hanna@example.com'),
	(:'readonly', 'Rita Readonly', 'rita@example.com'),
	(:'addr_hidden', 'Otto Firm', 'otto@firm.example'),
	(:'due_hidden', 'Doris Due', 'doris@example.com'),
	(:'mail_hidden', 'Max Mail', 'max@example.com');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, city, country) VALUES
	(:'acme', 'Acme GmbH', 'Anna', 'Schmidt', '+49 30', 'Str. 1', 'Berlin', 'DE'),
	(:'jean', NULL, 'Jean', 'Dupont', '+33 1', 'Rue 2', 'Paris', 'FR'),
	(:'addr_hidden', 'Firm AG', 'Otto', 'Firm', '+41 44', 'Bahnhofstr. 1', 'Zurich', 'CH');
INSERT INTO billing.sent_emails (customer_id, recipient, subject) VALUES
	(:'acme', 'anna@acme.example', 'Welcome'),
	(:'acme', 'anna@acme.example', 'Invoice'),
	(:'jean', 'jean@example.fr', 'Welcome'),
	(:'mail_hidden', 'max@example.com', 'Welcome'),
	(:'mail_hidden', 'max@example.com', 'secret: Your password reset');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	(:'acme', 'login'), (:'jean', 'login');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'acme', 'terminated'), (:'acme', 'initialized');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	(:'acme', 'paid', 50), (:'due_hidden', 'due', 99);
INSERT INTO billing.balance_entries (customer_id, amount) VALUES
	(:'acme', 50), (:'acme', -50);
CREATE TEMP VIEW state AS
SELECT c.id, c.name, c.email, a.company, a.first_name, a.phone, a.address_line1,
	   (SELECT count(*) FROM billing.sent_emails x WHERE x.customer_id = c.id) AS emails,
	   (SELECT count(*) FROM billing.customer_activity x WHERE x.customer_id = c.id) AS activity,
	   (SELECT count(*) FROM billing.subscriptions x WHERE x.customer_id = c.id) AS subs,
	   (SELECT count(*) FROM anonymize.audit_log x WHERE x.customer_id = c.id) AS audit
  FROM billing.customers c LEFT JOIN billing.billing_addresses a ON a.customer_id = c.id;
GRANT SELECT ON state TO PUBLIC;
\ir sql/include/sqlstate.sql
\set ECHO all

-- The operator of the README, but without DELETE on billing.sent_emails.
CREATE ROLE hostile_op NOLOGIN;
CREATE ROLE hostile_nobody NOLOGIN;
GRANT USAGE ON SCHEMA anonymize, billing TO hostile_op;
GRANT EXECUTE ON FUNCTION anonymize.anonymize_customer(uuid) TO hostile_op;
GRANT SELECT, UPDATE ON billing.customers, billing.billing_addresses TO hostile_op;
GRANT SELECT, UPDATE (id) ON billing.subscriptions, billing.invoices,
	billing.balance_entries TO hostile_op;
GRANT SELECT, DELETE ON billing.customer_activity, billing.webhook_notifications,
	billing.subscriptions TO hostile_op;
GRANT SELECT ON billing.sent_emails TO hostile_op;

SET ROLE hostile_op;
SELECT anonymize.can_anonymize(:'acme');
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000001')$$);
RESET ROLE;
-- Nothing changed.
SELECT * FROM state WHERE id = :'acme';

-- With DELETE it works, and the audit row names the operator.
GRANT DELETE ON billing.sent_emails TO hostile_op;
SET ROLE hostile_op;
SELECT * FROM anonymize.anonymize_customer(:'acme');
SELECT * FROM anonymize.anonymize_customer(:'acme');
RESET ROLE;
SELECT * FROM state WHERE id = :'acme';
SELECT customer_id, anonymized_by, customer_kind, rows_deleted
  FROM anonymize.audit_log;

-- The operator can neither read nor write the audit log, the mapping or
-- the request queue, nor change the mapping through the functions.
SET ROLE hostile_op;
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.audit_log$$);
SELECT pg_temp.sqlstate($$INSERT INTO anonymize.audit_log VALUES ('a2000000-0000-0000-0000-000000000002', now(), 'x', 'individual', '{}')$$);
SELECT pg_temp.sqlstate($$UPDATE anonymize.audit_log SET anonymized_by = 'someone else'$$);
SELECT pg_temp.sqlstate($$DELETE FROM anonymize.audit_log$$);
SELECT pg_temp.sqlstate($$TRUNCATE anonymize.audit_log$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.customer_relation$$);
SELECT pg_temp.sqlstate($$UPDATE anonymize.customer_relation SET email_column = 'name'$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.scopes$$);
SELECT pg_temp.sqlstate($$UPDATE anonymize.scopes SET condition = 'false'$$);
SELECT pg_temp.sqlstate($$DELETE FROM anonymize.scopes$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.rules$$);
SELECT pg_temp.sqlstate($$UPDATE anonymize.rules SET condition = 'false' WHERE kind = 'blocker'$$);
SELECT pg_temp.sqlstate($$DELETE FROM anonymize.rules WHERE kind = 'blocker'$$);
SELECT pg_temp.sqlstate($$INSERT INTO anonymize.rules (rule_name, kind, scope, amount, reason) VALUES ('x', 'balance', 'invoices', '0', 'x')$$);
SELECT pg_temp.sqlstate($$TRUNCATE anonymize.rules$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.requests$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.pending_requests$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_placeholder('x')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_rule('unsettled_invoices')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_purge_rule('x', 'invoices')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_erase_rule('x', 'invoices', '{status}')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_blocker_rule('x', 'invoices', 'true', 'x')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_balance_rule('x', 'invoices', '0')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_customer_relation('billing.customers', 'id', 'name', 'email')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_scope('x', 'billing.invoices', 'customer_id')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_scope('invoices')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_company_test('customer', 'true', 'name')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.clear_mapping()$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.check_mapping()$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.request('a2000000-0000-0000-0000-000000000002')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.cancel_request('a2000000-0000-0000-0000-000000000002')$$);
SELECT pg_temp.sqlstate($$CALL anonymize.process_requests()$$);
RESET ROLE;
-- EXECUTE granted by mistake still does not let it change the mapping.
GRANT EXECUTE ON FUNCTION anonymize.set_placeholder(text),
	anonymize.drop_rule(text), anonymize.check_mapping(),
	anonymize.set_scope(text, regclass, name, text, name, text),
	anonymize.drop_scope(text), anonymize.clear_mapping(),
	anonymize.set_blocker_rule(text, text, text, text)
	TO hostile_op;
SET ROLE hostile_op;
SELECT pg_temp.sqlstate($$SELECT anonymize.set_placeholder('x')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_rule('unsettled_invoices')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.check_mapping()$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_scope('invoices', 'billing.invoices', 'customer_id', condition => 'false')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.drop_scope('invoices')$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.clear_mapping()$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.set_blocker_rule('unsettled_invoices', 'invoices', 'false', 'x')$$);
RESET ROLE;
SELECT placeholder FROM anonymize.customer_relation;
SELECT scope_name, condition FROM anonymize.scopes WHERE scope_name = 'invoices';
SELECT rule_name, kind, scope, condition FROM anonymize.rules
 WHERE kind IN ('blocker', 'balance') ORDER BY 1;
SELECT count(*) AS audit_rows FROM anonymize.audit_log;

-- A role without any grant: can_anonymize and blockers are executable by
-- PUBLIC but need SELECT on the tables; the rest needs EXECUTE.
SET ROLE hostile_nobody;
SELECT pg_temp.sqlstate($$SELECT anonymize.can_anonymize('a2000000-0000-0000-0000-000000000002')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.blockers('a2000000-0000-0000-0000-000000000002')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000002')$$);
RESET ROLE;
GRANT USAGE ON SCHEMA anonymize TO hostile_nobody;
SET ROLE hostile_nobody;
SELECT pg_temp.sqlstate($$SELECT anonymize.can_anonymize('a2000000-0000-0000-0000-000000000002')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000002')$$);
RESET ROLE;
SELECT * FROM state WHERE id = :'jean';

-- Row-level security of the operator applies to every statement the
-- functions run.  Policies for hostile_op only (the superuser bypasses them):
--   customers: "hidden" is invisible; "readonly" is visible but not updatable
--   billing_addresses: the address of "addr_hidden" is invisible
--   invoices: the due invoice of "due_hidden" is invisible
--   sent_emails: subjects starting with 'secret' are invisible
ALTER TABLE billing.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY op_read ON billing.customers FOR SELECT TO hostile_op
	USING (id <> 'a2000000-0000-0000-0000-000000000003');
CREATE POLICY op_write ON billing.customers FOR UPDATE TO hostile_op
	USING (id NOT IN ('a2000000-0000-0000-0000-000000000003',
					  'a2000000-0000-0000-0000-000000000004'));
ALTER TABLE billing.billing_addresses ENABLE ROW LEVEL SECURITY;
CREATE POLICY op_all ON billing.billing_addresses TO hostile_op
	USING (customer_id <> 'a2000000-0000-0000-0000-000000000005');
ALTER TABLE billing.invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY op_all ON billing.invoices TO hostile_op
	USING (customer_id <> 'a2000000-0000-0000-0000-000000000006');
ALTER TABLE billing.sent_emails ENABLE ROW LEVEL SECURITY;
CREATE POLICY op_all ON billing.sent_emails TO hostile_op
	USING (subject NOT LIKE 'secret%');

SET ROLE hostile_op;
-- Row-level security applies to the operator on mapped tables: all three
-- functions refuse (42501), whatever the customer, and nothing changes.
SELECT pg_temp.sqlstate($$SELECT anonymize.can_anonymize('a2000000-0000-0000-0000-000000000003')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.blockers('a2000000-0000-0000-0000-000000000006')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000004')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000005')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000006')$$);
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000007')$$);
RESET ROLE;
-- The same role with BYPASSRLS sees whole customers: the due invoice blocks,
-- the hidden address makes a company, the secret email is deleted too.
ALTER ROLE hostile_op BYPASSRLS;
SET ROLE hostile_op;
SELECT pg_temp.sqlstate($$SELECT * FROM anonymize.anonymize_customer('a2000000-0000-0000-0000-000000000006')$$);
SELECT * FROM anonymize.anonymize_customer(:'addr_hidden');
SELECT * FROM anonymize.anonymize_customer(:'mail_hidden');
RESET ROLE;
SELECT * FROM state WHERE id IN (:'hidden', :'readonly', :'addr_hidden', :'due_hidden', :'mail_hidden')
 ORDER BY id;
SELECT customer_id, status FROM billing.invoices WHERE customer_id = :'due_hidden';
SELECT subject FROM billing.sent_emails WHERE customer_id = :'mail_hidden';
SELECT customer_id, anonymized_by, customer_kind, rows_deleted
  FROM anonymize.audit_log ORDER BY anonymized_at, customer_id;

-- Clean up.
\set ECHO none
SET client_min_messages = warning;
DROP VIEW state;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
DROP SCHEMA billing CASCADE;
DROP OWNED BY hostile_op, hostile_nobody CASCADE;
DROP ROLE hostile_op;
DROP ROLE hostile_nobody;
RESET client_min_messages;
\set ECHO all
