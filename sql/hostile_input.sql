--
-- hostile_input: NULLs, uuids of nobody, text that is no uuid, a customer
-- with 100,000 sent emails, customers without billing address or with blank
-- companies, duplicate rows, a remapped address table without a primary key
-- holding two rows for one customer, a read-only transaction, a batch that
-- stops at its first blocked customer.
-- Self-contained: builds its own fixture, cleans up at the end.
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS hostile_input CASCADE;
\ir examples/billing.sql
CREATE EXTENSION anonymize;
\o /dev/null
\ir examples/billing_mapping.sql
\o
RESET client_min_messages;
\set big       'c3000000-0000-0000-0000-000000000001'
\set noaddr    'c3000000-0000-0000-0000-000000000002'
\set blank     'c3000000-0000-0000-0000-000000000003'
\set tabs      'c3000000-0000-0000-0000-000000000004'
\set empty     'c3000000-0000-0000-0000-000000000005'
\set twoaddr   'c3000000-0000-0000-0000-000000000006'
\set blocked   'c3000000-0000-0000-0000-000000000007'
\set ro        'c3000000-0000-0000-0000-000000000008'
\set longname  'c3000000-0000-0000-0000-000000000009'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'big', 'Bea Big', 'bea@example.com'),
	(:'noaddr', 'Nina Noaddress', 'nina@example.com'),
	(:'blank', 'Bob Blank', 'bob@example.com'),
	(:'tabs', 'Tom Tabs', 'tom@example.com'),
	(:'empty', 'Dora Dup', 'dora@example.com'),
	(:'twoaddr', 'Tim Two', 'tim@example.com'),
	(:'blocked', 'Maria Rossi', 'maria@example.it'),
	(:'ro', 'Rolf Readonly', 'rolf@example.com'),
	(:'longname', repeat('Long Name ', 100000), repeat('x', 1000000) || '@example.com');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, phone, address_line1, city, country) VALUES
	(:'big', 'Big Corp', 'Bea', 'Big', '+1 555', 'Main St 1', 'Springfield', 'US'),
	(:'blank', '   ', 'Bob', 'Blank', '+1 556', 'Main St 2', 'Springfield', 'US'),
	(:'tabs', E'\t\n\r ', 'Tom', 'Tabs', '+1 557', 'Main St 3', 'Springfield', 'US'),
	(:'empty', '', 'Dora', 'Dup', '+1 558', 'Main St 4', 'Springfield', 'US'),
	(:'blocked', NULL, 'Maria', 'Rossi', '+39 06', 'Via 4', 'Roma', 'IT'),
	(:'ro', NULL, 'Rolf', 'Readonly', '+49 1', 'Weg 5', 'Bonn', 'DE'),
	(:'longname', E' \u00a0Ünïcødé GmbH', 'L', 'N', '+1', repeat('Street ', 10000), 'C', 'US');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'blocked', 'active');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	(:'blocked', 'due', 12.50);
\ir sql/include/sqlstate.sql
\set ECHO all

-- NULL: can_anonymize and blockers are STRICT; anonymize_customer refuses.
SELECT anonymize.can_anonymize(NULL) IS NULL AS is_null;
SELECT count(*) FROM anonymize.blockers(NULL);
SELECT * FROM anonymize.anonymize_customer(NULL);
SELECT * FROM anonymize.anonymize_customer(NULL::uuid);
SELECT anonymize.can_anonymize(id) IS NULL AS is_null
  FROM (VALUES (NULL::uuid)) v(id);

-- A uuid of nobody: P0002 from all three, naming the uuid.
SELECT * FROM anonymize.anonymize_customer('00000000-0000-0000-0000-000000000000');
SELECT anonymize.can_anonymize('ffffffff-ffff-ffff-ffff-ffffffffffff');
SELECT * FROM anonymize.blockers('12345678-1234-1234-1234-123456789abc');
-- random ones, 100 of them; the message names each
SELECT count(*) AS calls,
	   count(*) FILTER (WHERE r = 'P0002: customer ' || id || ' does not exist') AS p0002
  FROM (SELECT id, pg_temp.sqlstate(format('SELECT anonymize.anonymize_customer(%L)', id)) AS r
		  FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 100)) g) t;
SELECT count(*) AS calls,
	   count(*) FILTER (WHERE r = 'P0002: customer ' || id || ' does not exist') AS p0002
  FROM (SELECT id, pg_temp.sqlstate(format('SELECT anonymize.can_anonymize(%L)', id)) AS r
		  FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 100)) g) t;
-- Other spellings of an existing uuid are the same customer.
SELECT anonymize.can_anonymize('{C3000000-0000-0000-0000-000000000007}');
SELECT anonymize.can_anonymize('C3000000000000000000000000000007');

-- Text that is not a uuid: 22P02 before anything runs.
SELECT 'abc'::uuid;
SELECT * FROM anonymize.anonymize_customer('abc');
SELECT anonymize.can_anonymize('');
SELECT anonymize.can_anonymize('c30000000000000000000000000000 07');
SELECT * FROM anonymize.blockers('c3000000-0000-0000-0000-00000000000');
SELECT * FROM anonymize.anonymize_customer($$c3000000-0000-0000-0000-000000000001'; DROP TABLE billing.invoices; --$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.anonymize_customer(1)$$);
SELECT pg_temp.sqlstate($$SELECT anonymize.anonymize_customer('c3000000-0000-0000-0000-000000000001'::text)$$);

-- A customer with 100,000 sent emails (and two identical ones more), a
-- company.
INSERT INTO billing.sent_emails (customer_id, recipient, subject, body)
SELECT :'big', 'bea@example.com', 'Newsletter ' || i, repeat('b', 100)
  FROM generate_series(1, 100000) i;
INSERT INTO billing.sent_emails (customer_id, recipient, subject, body, sent_at)
SELECT :'big', 'bea@example.com', 'same', 'same', '2024-01-01' FROM generate_series(1, 2);
INSERT INTO billing.customer_activity (customer_id, kind)
SELECT :'big', 'login' FROM generate_series(1, 5000);
SELECT anonymize.can_anonymize(:'big');
SELECT * FROM anonymize.anonymize_customer(:'big');
SELECT (SELECT count(*) FROM billing.sent_emails WHERE customer_id = :'big') AS emails,
	   (SELECT count(*) FROM billing.customer_activity WHERE customer_id = :'big') AS activity;
SELECT c.name, c.email, a.company, a.first_name, a.last_name, a.phone,
	   a.address_line1, a.city, a.country
  FROM billing.customers c JOIN billing.billing_addresses a ON a.customer_id = c.id
 WHERE c.id = :'big';

-- No billing address row: an individual.
SELECT * FROM anonymize.anonymize_customer(:'noaddr');
SELECT name, email FROM billing.customers WHERE id = :'noaddr';
SELECT count(*) FROM billing.billing_addresses WHERE customer_id = :'noaddr';

-- Blank companies (spaces; tab, newline and carriage return; empty): individuals.
SELECT * FROM anonymize.anonymize_customer(:'blank');
SELECT * FROM anonymize.anonymize_customer(:'tabs');
SELECT * FROM anonymize.anonymize_customer(:'empty');
SELECT c.id, c.name, c.email, a.company = '' AS empty_company, length(a.company) AS company_length,
	   a.first_name, a.last_name, a.phone, a.address_line1, a.city, a.country
  FROM billing.customers c JOIN billing.billing_addresses a ON a.customer_id = c.id
 WHERE c.id IN (:'blank', :'tabs', :'empty') ORDER BY c.id;

-- A megabyte name and email, a company name that starts with a no-break
-- space and holds non-ASCII letters: a company.
SELECT * FROM anonymize.anonymize_customer(:'longname');
SELECT c.name, c.email, a.company = c.name AS name_is_company, a.first_name,
	   length(a.address_line1) AS street_length, a.country
  FROM billing.customers c JOIN billing.billing_addresses a ON a.customer_id = c.id
 WHERE c.id = :'longname';

-- Duplicate rows where the schema allows them: identical history rows of
-- one customer (but their id) all go.
INSERT INTO billing.sent_emails (customer_id, recipient, subject, body, sent_at)
SELECT :'twoaddr', 'tim@example.com', 'same', 'same', '2024-01-01' FROM generate_series(1, 3);
INSERT INTO billing.webhook_notifications (customer_id, event, payload, sent_at)
SELECT :'twoaddr', 'same', '{"a": 1}', '2024-01-01' FROM generate_series(1, 2);

-- A remapped billing address table without a primary key, with two rows
-- for one customer (one of them a company), one twice: all rows are
-- erased, the home address of a company too, the customer is a company and
-- takes the company name.  Mapped as three scopes of the same relation:
-- every address row (the contact), the row with a company (the company
-- test, at most one per customer) and the home rows (the street, for
-- everyone).
CREATE SCHEMA hostile_input;
CREATE TABLE hostile_input.addresses (LIKE billing.billing_addresses);
INSERT INTO hostile_input.addresses (customer_id, company, first_name, last_name,
		phone, address_line1, city, country) VALUES
	(:'twoaddr', NULL, 'Tim', 'Two', '+1 1', 'Home St 1', 'Hometown', 'US'),
	(:'twoaddr', 'Tim''s Shop', 'Tim', 'Two', '+1 2', 'Shop St 2', 'Shoptown', 'US'),
	(:'twoaddr', NULL, 'Tim', 'Two', '+1 1', 'Home St 1', 'Hometown', 'US');
SELECT anonymize.set_scope('billing_address', 'hostile_input.addresses', 'customer_id');
SELECT anonymize.set_scope('company_address', 'hostile_input.addresses', 'customer_id',
	condition => $$company ~ '[^[:space:]]'$$);
SELECT anonymize.set_company_test('company_address', 'true', 'company');
SELECT anonymize.drop_rule('billing_address_street');
SELECT anonymize.set_scope('home_address', 'hostile_input.addresses', 'customer_id',
	condition => $$coalesce(company, '') !~ '[^[:space:]]'$$);
SELECT anonymize.set_erase_rule('home_street', 'home_address',
	'{address_line1,address_line2,city,postal_code,region}');
-- (a new session, so that the plans are built from the new mapping;
-- hostile_identifiers covers a mapping change within one session)
\c
SELECT * FROM anonymize.anonymize_customer(:'twoaddr');
SELECT name, email FROM billing.customers WHERE id = :'twoaddr';
SELECT company, first_name, last_name, phone, address_line1, city, country
  FROM hostile_input.addresses ORDER BY company NULLS FIRST, address_line1;
SELECT (SELECT count(*) FROM billing.sent_emails WHERE customer_id = :'twoaddr') AS emails,
	   (SELECT count(*) FROM billing.webhook_notifications WHERE customer_id = :'twoaddr') AS webhooks;

-- A read-only transaction: refused, nothing changes.
BEGIN TRANSACTION READ ONLY;
SELECT anonymize.can_anonymize(:'ro');
\set VERBOSITY terse
SELECT * FROM anonymize.anonymize_customer(:'ro');
\set VERBOSITY default
ROLLBACK;
SELECT name, email FROM billing.customers WHERE id = :'ro';

-- One statement over many customers stops at the first blocked one, and
-- the whole statement is undone.
SELECT id, anonymize.can_anonymize(id) FROM billing.customers
 WHERE id IN (:'ro', :'blocked') ORDER BY id;
SELECT count(*) FROM (
	SELECT anonymize.anonymize_customer(id)
	  FROM billing.customers WHERE id IN (:'ro', :'blocked')) s;
SELECT id, name, email FROM billing.customers WHERE id IN (:'ro', :'blocked') ORDER BY id;
SELECT count(*) AS audit_rows FROM anonymize.audit_log
 WHERE customer_id IN (:'ro', :'blocked');

-- The audit log: one row per anonymized customer.
SELECT customer_id, customer_kind, rows_deleted, rows_updated
  FROM anonymize.audit_log ORDER BY 1;

-- Clean up.
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
DROP SCHEMA hostile_input CASCADE;
DROP SCHEMA billing CASCADE;
RESET client_min_messages;
\set ECHO all
