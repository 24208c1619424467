\set ECHO none
-- sql/include/fresh_billing.sql -- shared fixture of the regression tests.
--
-- Included by every sql/*.sql test with  \ir sql/include/fresh_billing.sql
-- (pg_regress feeds the test on stdin, so that path is relative to the
-- directory make runs in; paths in this file are relative to this file).
-- Not a test itself: REGRESS only lists sql/*.sql.
--
-- The first line silences psql's echo of this file (every test's expected
-- output would repeat it); the last line turns it on again.
--
-- Starts from a clean state: a new billing schema (examples/billing.sql) with
-- three customers, and a new extension with the mapping of the example
-- (examples/billing_mapping.sql).  Creates
-- session helpers (temporary, gone when the test's session ends):
--   customer_state      every column of customers + billing_addresses but
--                       created_at, one row per customer
--   rows_per_customer   how many rows each customer has in each table
--   pg_temp.sqlstate(sql)  runs sql, returns 'ok' or '<SQLSTATE>: <message>'
-- and the psql variables of the customers:
--   :acme   aaaaaaaa-...  company "Acme GmbH" (contact Anna Schmidt), eligible:
--           2 sent emails, 3 activity rows, 1 webhook, subscriptions
--           terminated + initialized, invoices paid + cancelled, balance
--           lines +50.00 / -50.00
--   :jean   bbbbbbbb-...  individual Jean Dupont (company NULL), eligible:
--           1 sent email, 2 activity rows, 2 webhooks, a terminated
--           subscription, a paid invoice, no balance line
--   :maria  cccccccc-...  individual Maria Rossi, blocked (the bystander):
--           1 row in each history table, subscriptions active + initialized,
--           a due invoice, a balance of -12.50
--   :unknown 00000000-... no such customer
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS crm CASCADE;
\ir ../../examples/billing.sql
CREATE EXTENSION anonymize;
\o /dev/null
\ir ../../examples/billing_mapping.sql
\o
RESET client_min_messages;

\set acme    'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'
\set jean    'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb'
\set maria   'cccccccc-cccc-cccc-cccc-cccccccccccc'
\set unknown '00000000-0000-0000-0000-000000000000'

INSERT INTO billing.customers (id, name, email) VALUES
	(:'acme', 'Anna Schmidt', 'anna.schmidt@acme.example'),
	(:'jean', 'Jean Dupont', 'jean.dupont@example.fr'),
	(:'maria', 'Maria Rossi', 'maria.rossi@example.it');

INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, address_line2, city, postal_code,
		region, country) VALUES
	(:'acme', 'Acme GmbH', 'Anna', 'Schmidt', '+49 30 1234567',
		'Friedrichstrasse 123', '3. OG', 'Berlin', '10117', 'Berlin', 'DE'),
	(:'jean', NULL, 'Jean', 'Dupont', '+33 1 23 45 67 89',
		'12 rue de la Paix', 'Bat. A', 'Paris', '75002', 'Ile-de-France', 'FR'),
	(:'maria', NULL, 'Maria', 'Rossi', '+39 06 1234 5678',
		'Via del Corso 45', 'Scala B', 'Roma', '00186', 'Lazio', 'IT');

INSERT INTO billing.sent_emails (customer_id, recipient, subject) VALUES
	(:'acme', 'anna.schmidt@acme.example', 'Welcome'),
	(:'acme', 'anna.schmidt@acme.example', 'Your invoice'),
	(:'jean', 'jean.dupont@example.fr', 'Welcome'),
	(:'maria', 'maria.rossi@example.it', 'Welcome');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	(:'acme', 'login'), (:'acme', 'login'), (:'acme', 'plan_change'),
	(:'jean', 'login'), (:'jean', 'logout'),
	(:'maria', 'login');
INSERT INTO billing.webhook_notifications (customer_id, event) VALUES
	(:'acme', 'customer.created'),
	(:'jean', 'customer.created'), (:'jean', 'invoice.paid'),
	(:'maria', 'customer.created');
INSERT INTO billing.subscriptions (customer_id, plan, state) VALUES
	(:'acme', 'business', 'terminated'), (:'acme', 'business', 'initialized'),
	(:'jean', 'standard', 'terminated'),
	(:'maria', 'standard', 'active'), (:'maria', 'standard', 'initialized');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	(:'acme', 'paid', 50.00), (:'acme', 'cancelled', 20.00),
	(:'jean', 'paid', 9.90),
	(:'maria', 'due', 12.50);
INSERT INTO billing.balance_entries (customer_id, amount, description) VALUES
	(:'acme', 50.00, 'payment received'), (:'acme', -50.00, 'invoice 1'),
	(:'maria', -12.50, 'invoice 1');

CREATE TEMP VIEW customer_state AS
SELECT c.id, c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
       a.address_line1, a.address_line2, a.city, a.postal_code, a.region,
       a.country
  FROM billing.customers c
  LEFT JOIN billing.billing_addresses a ON a.customer_id = c.id;

CREATE TEMP VIEW rows_per_customer AS
SELECT c.id,
       (SELECT count(*) FROM billing.sent_emails x WHERE x.customer_id = c.id) AS emails,
       (SELECT count(*) FROM billing.customer_activity x WHERE x.customer_id = c.id) AS activity,
       (SELECT count(*) FROM billing.webhook_notifications x WHERE x.customer_id = c.id) AS webhooks,
       (SELECT string_agg(x.state, ',' ORDER BY x.state) FROM billing.subscriptions x WHERE x.customer_id = c.id) AS subscriptions,
       (SELECT string_agg(x.status, ',' ORDER BY x.status) FROM billing.invoices x WHERE x.customer_id = c.id) AS invoices,
       (SELECT count(*) FROM billing.balance_entries x WHERE x.customer_id = c.id) AS balance_lines,
       (SELECT count(*) FROM anonymize.audit_log x WHERE x.customer_id = c.id) AS audit
  FROM billing.customers c;

\ir sqlstate.sql
\set ECHO all
