--
-- hostile_identifiers: a mapping whose schema, tables, columns, rule names,
-- reasons and placeholder hold spaces, double and single quotes, upper case,
-- semicolons, comment markers, "$1" and "%s".  Everything the extension
-- builds from them must quote them: anonymization works on those tables and
-- nothing else executes (a table named like an injected DROP TABLE drops
-- nothing).  Self-contained: builds its own fixture, cleans up at the end.
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS "Bill ing;" CASCADE;
\ir examples/billing.sql
CREATE EXTENSION anonymize;
RESET client_min_messages;
-- one row in every billing table, to see that they all survive
INSERT INTO billing.customers (id, name, email) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'Bystander', 'by@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, country) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'By', 'DE');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'active');
INSERT INTO billing.invoices (customer_id, status, amount) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'due', 1);
INSERT INTO billing.balance_entries (customer_id, amount) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 1);
INSERT INTO billing.sent_emails (customer_id, recipient) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'by@example.com');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'login');
INSERT INTO billing.webhook_notifications (customer_id, event) VALUES
	('dddddddd-dddd-dddd-dddd-dddddddddddd', 'customer.created');
\set ECHO all

-- The hostile schema.  Customers and their billing addresses (no primary
-- key), a history table to purge, an order table and a ledger that block.
CREATE SCHEMA "Bill ing;";
CREATE TABLE "Bill ing;"."Cust""omers" (
	"I""d"			uuid PRIMARY KEY,
	"Na;me"			text,
	"E mail"		text NOT NULL,
	"NOTE"			text
);
CREATE TABLE "Bill ing;"."x; DROP TABLE billing.invoices; --" (
	"Cust'omer"		uuid NOT NULL REFERENCES "Bill ing;"."Cust""omers",
	"COMPANY"		text,
	"First Name"	text NOT NULL,
	"last""name"	text,
	"Phone; --"		text,
	"Line $1"		text,
	"City)"			text,
	"Zip' OR '1'='1" text,
	"Coun try"		text NOT NULL
);
CREATE TABLE "Bill ing;"."Sent E-Mails" (
	"Cust omer ID"	uuid NOT NULL,
	"Sub;ject"		text,
	"Bo""dy"		text
);
CREATE TABLE "Bill ing;"."Or""ders" (
	"Cust omer ID"	uuid NOT NULL,
	"St;ate"		text NOT NULL
);
CREATE TABLE "Bill ing;"."Ledger" (
	"Cust omer ID"	uuid NOT NULL,
	"Amo""unt"		numeric NOT NULL
);

-- Map it; the arguments are the names themselves, not quoted SQL.
SELECT anonymize.set_customer_relation('"Bill ing;"."Cust""omers"', 'I"d',
	'Na;me', 'E mail');
SELECT anonymize.set_billing_address('"Bill ing;"."x; DROP TABLE billing.invoices; --"',
	'Cust''omer', 'COMPANY', 'First Name', 'last"name', 'Phone; --',
	ARRAY['Line $1', 'City)', 'Zip'' OR ''1''=''1']::name[], 'Coun try');
SELECT rule_name, anonymize.drop_rule(rule_name) IS NULL AS dropped
  FROM (SELECT rule_name FROM anonymize.purge_rules
		UNION ALL SELECT rule_name FROM anonymize.blocker_rules
		UNION ALL SELECT rule_name FROM anonymize.balance_rules) r
 ORDER BY 1;
SELECT anonymize.set_purge_rule($$mails "all"; DROP TABLE billing.invoices; --$$,
	'"Bill ing;"."Sent E-Mails"', 'Cust omer ID');
SELECT anonymize.set_purge_rule($$mails 'some' \n %s$$,
	'"Bill ing;"."Sent E-Mails"', 'Cust omer ID',
	$$"Sub;ject" IS DISTINCT FROM 'keep; DROP TABLE billing.invoices; --' -- a comment$$);
SELECT anonymize.set_blocker_rule($$open "orders"$$, '"Bill ing;"."Or""ders"',
	'Cust omer ID', $$"St;ate" = 'open'$$, $$100% "open"; DROP TABLE billing.invoices; --$$);
SELECT anonymize.set_balance_rule('Ledger %s%s%n', '"Bill ing;"."Ledger"',
	'Cust omer ID', $$"Amo""unt" * 1$$, $$balance 'due' %d$$);
SELECT anonymize.set_placeholder($$'); DROP TABLE billing.invoices; --$$);

-- What the mapping holds now: names as given, unquoted.
SELECT customer_schema, customer_table, key_column, name_column, email_column,
	   address_schema, address_table, address_key_column, company_column,
	   first_name_column, last_name_column, phone_column, address_columns,
	   country_column, placeholder
  FROM anonymize.customer_mapping;
SELECT rule_name, relation_schema, relation_name, key_column, condition
  FROM anonymize.purge_rules WHERE enabled ORDER BY 1;
SELECT rule_name, relation_schema, relation_name, key_column, condition, reason
  FROM anonymize.blocker_rules WHERE enabled ORDER BY 1;
SELECT rule_name, relation_schema, relation_name, key_column,
	   amount_expression, reason
  FROM anonymize.balance_rules WHERE enabled ORDER BY 1;

-- Conditions that try to break out of their parentheses are refused, and
-- refusing them runs nothing.
SELECT anonymize.set_purge_rule('evil', '"Bill ing;"."Sent E-Mails"', 'Cust omer ID',
	$$true; DROP TABLE billing.invoices$$);
SELECT anonymize.set_purge_rule('evil', '"Bill ing;"."Sent E-Mails"', 'Cust omer ID',
	$$true) OR (true$$);
SELECT anonymize.set_purge_rule('evil', '"Bill ing;"."Sent E-Mails"', 'Cust omer ID',
	$$true)); DROP TABLE billing.invoices; --$$);
SELECT anonymize.set_purge_rule('evil', '"Bill ing;"."Sent E-Mails"', 'Cust omer ID',
	$$true /* $$);
SELECT anonymize.set_blocker_rule('evil', '"Bill ing;"."Or""ders"', 'Cust omer ID',
	$$true UNION SELECT true$$, 'evil');
SELECT anonymize.set_balance_rule('evil', '"Bill ing;"."Ledger"', 'Cust omer ID',
	$$1 FROM billing.invoices; DROP TABLE billing.invoices; SELECT 1$$);
-- Names that do not exist (the quoted spelling is not the name).
SELECT anonymize.set_customer_relation('"Bill ing;"."Cust""omers"', '"I""d"',
	'Na;me', 'E mail');
SELECT anonymize.set_purge_rule('evil', '"Bill ing;"."Sent E-Mails"',
	'Cust omer ID; DROP TABLE billing.invoices; --');
SELECT rule_name FROM anonymize.purge_rules WHERE rule_name = 'evil';

-- Customers: a company, an individual with two address rows, one without
-- an address, one blocked.
INSERT INTO "Bill ing;"."Cust""omers" VALUES
	('11111111-1111-1111-1111-111111111111', 'Anna; DROP', 'anna@acme.example', 'n1'),
	('22222222-2222-2222-2222-222222222222', 'Jean "J" Dupont', 'jean@example.fr', 'n2'),
	('33333333-3333-3333-3333-333333333333', 'Nemo', 'nemo@example.com', 'n3'),
	('44444444-4444-4444-4444-444444444444', 'Maria', 'maria@example.it', 'n4');
INSERT INTO "Bill ing;"."x; DROP TABLE billing.invoices; --" VALUES
	('11111111-1111-1111-1111-111111111111', 'Acme; GmbH', 'Anna', 'Schmidt',
		'+49 30', 'Str. 1', 'Berlin', '10117', 'DE'),
	('22222222-2222-2222-2222-222222222222', NULL, 'Jean', 'Dupont',
		'+33 1', 'Rue 2', 'Paris', '75002', 'FR'),
	('22222222-2222-2222-2222-222222222222', ' ', 'J.', 'D.',
		'+33 2', 'Rue 3', 'Lyon', '69001', 'FR'),
	('44444444-4444-4444-4444-444444444444', NULL, 'Maria', 'Rossi',
		'+39 06', 'Via 4', 'Roma', '00186', 'IT');
INSERT INTO "Bill ing;"."Sent E-Mails" VALUES
	('11111111-1111-1111-1111-111111111111', 'hello', 'b'),
	('11111111-1111-1111-1111-111111111111', 'keep; DROP TABLE billing.invoices; --', 'b'),
	('22222222-2222-2222-2222-222222222222', 'hello', 'b'),
	('22222222-2222-2222-2222-222222222222', 'hello', 'b'),
	('44444444-4444-4444-4444-444444444444', 'hello', 'b');
INSERT INTO "Bill ing;"."Or""ders" VALUES
	('11111111-1111-1111-1111-111111111111', 'closed'),
	('44444444-4444-4444-4444-444444444444', 'open');
INSERT INTO "Bill ing;"."Ledger" VALUES
	('11111111-1111-1111-1111-111111111111', 5), ('11111111-1111-1111-1111-111111111111', -5),
	('44444444-4444-4444-4444-444444444444', -7.5);

SELECT anonymize.can_anonymize('11111111-1111-1111-1111-111111111111'),
	   anonymize.can_anonymize('44444444-4444-4444-4444-444444444444');
SELECT * FROM anonymize.blockers('44444444-4444-4444-4444-444444444444');
SELECT * FROM anonymize.anonymize_customer('44444444-4444-4444-4444-444444444444');
SELECT * FROM anonymize.anonymize_customer('11111111-1111-1111-1111-111111111111');
SELECT * FROM anonymize.anonymize_customer('22222222-2222-2222-2222-222222222222');
SELECT * FROM anonymize.anonymize_customer('33333333-3333-3333-3333-333333333333');
SELECT * FROM anonymize.anonymize_customer('33333333-3333-3333-3333-333333333333');

SELECT * FROM "Bill ing;"."Cust""omers" ORDER BY 1;
SELECT * FROM "Bill ing;"."x; DROP TABLE billing.invoices; --" ORDER BY 1, 3;
SELECT * FROM "Bill ing;"."Sent E-Mails" ORDER BY 1, 2;
SELECT * FROM "Bill ing;"."Or""ders" ORDER BY 1;
SELECT * FROM "Bill ing;"."Ledger" ORDER BY 1, 2;
SELECT customer_id, anonymized_by = current_user AS by_me, customer_kind,
	   rows_deleted
  FROM anonymize.audit_log ORDER BY 1;
-- The JSON keys are the rule names, escaped, not broken JSON.
SELECT jsonb_object_keys(rows_deleted) AS rule
  FROM anonymize.audit_log
 WHERE customer_id = '11111111-1111-1111-1111-111111111111' ORDER BY 1;

-- The billing address on the customer relation itself, with hostile names.
-- This session built its plans with the other mapping above: they must be
-- rebuilt after this change.
ALTER TABLE "Bill ing;"."Cust""omers"
	ADD COLUMN "Comp;any" text,
	ADD COLUMN "Fir""st" text,
	ADD COLUMN "LAST name" text,
	ADD COLUMN "ph)one" text,
	ADD COLUMN "Street; --" text,
	ADD COLUMN "Coun""try" text NOT NULL DEFAULT 'XX';
SELECT anonymize.set_billing_address('"Bill ing;"."Cust""omers"', 'I"d',
	'Comp;any', 'Fir"st', 'LAST name', 'ph)one', '{"Street; --"}', 'Coun"try');
INSERT INTO "Bill ing;"."Cust""omers" VALUES
	('55555555-5555-5555-5555-555555555555', 'Carl', 'carl@firm.example', 'n5',
		'Firm "AG"; --', 'Carl', 'C', '+41', 'Bahnhofstr. 1', 'CH'),
	('66666666-6666-6666-6666-666666666666', 'Petra', 'petra@example.com', 'n6',
		NULL, 'Petra', 'P', '+43', 'Ring 2', 'AT');
SELECT * FROM anonymize.anonymize_customer('55555555-5555-5555-5555-555555555555');
SELECT * FROM anonymize.anonymize_customer('66666666-6666-6666-6666-666666666666');
SELECT * FROM "Bill ing;"."Cust""omers" WHERE "I""d" IN
	('55555555-5555-5555-5555-555555555555', '66666666-6666-6666-6666-666666666666')
 ORDER BY 1;

-- Nothing else ran: every billing table is there with its row.
SELECT c.relname,
	   (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I',
			n.nspname, c.relname), false, true, '')))[1]::text::int AS rows
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'billing' AND c.relkind = 'r'
 ORDER BY 1;
SELECT to_regclass('billing.invoices') IS NOT NULL AS invoices_exists;

-- Clean up.
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
DROP SCHEMA "Bill ing;" CASCADE;
DROP SCHEMA billing CASCADE;
RESET client_min_messages;
\set ECHO all
