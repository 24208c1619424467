--
-- hostile_identifiers: a mapping whose schema, tables, columns, scope and
-- rule names, reasons, conditions, replacements and placeholder hold spaces,
-- double and single quotes, upper case, semicolons, comment markers, "$1"
-- and "%s".  Everything the extension builds from them must quote them:
-- anonymization works on those tables and nothing else executes (a table
-- named like an injected DROP TABLE drops nothing), and an expression that
-- tries to break out of its parentheses is refused.  Self-contained: builds
-- its own fixture, cleans up at the end.
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

-- Map it; the arguments are the names themselves, not quoted SQL.  Scope
-- and rule names are hostile too.  CREATE EXTENSION installed no mapping:
-- these are its only entries.
SELECT (SELECT count(*) FROM anonymize.customer_relation) AS customer_relations,
	   (SELECT count(*) FROM anonymize.scopes) AS scopes,
	   (SELECT count(*) FROM anonymize.rules) AS rules;
SELECT anonymize.set_customer_relation('"Bill ing;"."Cust""omers"', 'I"d',
	'Na;me', 'E mail');
SELECT anonymize.set_scope($$address "a"; DROP TABLE billing.invoices; --$$,
	'"Bill ing;"."x; DROP TABLE billing.invoices; --"', 'Cust''omer');
-- The company test on the address rows with a non-blank company: an
-- individual may have several address rows, a company one such row.
SELECT anonymize.set_scope($$company 'c' %s$$,
	'"Bill ing;"."x; DROP TABLE billing.invoices; --"', 'Cust''omer',
	condition => $$"COMPANY" ~ '[^[:space:]]' -- a comment$$);
SELECT anonymize.set_company_test($$company 'c' %s$$, 'true', '"COMPANY"');
SELECT anonymize.set_erase_rule($$contact "c"; --$$,
	$$address "a"; DROP TABLE billing.invoices; --$$,
	ARRAY['First Name', 'last"name', 'Phone; --']::name[]);
SELECT anonymize.set_erase_rule('street %s $1',
	$$address "a"; DROP TABLE billing.invoices; --$$,
	ARRAY['Line $1', 'City)', 'Zip'' OR ''1''=''1']::name[], 'individual');
SELECT anonymize.set_scope($$mails "m"; --$$, '"Bill ing;"."Sent E-Mails"',
	'Cust omer ID');
SELECT anonymize.set_purge_rule($$mails "all"; DROP TABLE billing.invoices; --$$,
	$$mails "m"; --$$);
SELECT anonymize.set_purge_rule($$mails 'some' \n %s$$, $$mails "m"; --$$,
	$$"Sub;ject" IS DISTINCT FROM 'keep; DROP TABLE billing.invoices; --' -- a comment$$);
SELECT anonymize.set_scope($$orders "o"$$, '"Bill ing;"."Or""ders"', 'Cust omer ID');
SELECT anonymize.set_blocker_rule($$open "orders"$$, $$orders "o"$$,
	$$"St;ate" = 'open'$$, $$100% "open"; DROP TABLE billing.invoices; --$$);
SELECT anonymize.set_scope('Ledger %n', '"Bill ing;"."Ledger"', 'Cust omer ID');
SELECT anonymize.set_balance_rule('Ledger %s%s%n', 'Ledger %n',
	$$"Amo""unt" * 1$$, $$balance 'due' %d$$);
SELECT anonymize.set_placeholder($$'); DROP TABLE billing.invoices; --$$);

-- What the mapping holds now: names as given, unquoted.
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.scopes ORDER BY 1;
SELECT * FROM anonymize.rules ORDER BY 1;

-- Conditions, amounts and replacements that try to break out of their
-- parentheses are refused, and refusing them runs nothing.
SELECT anonymize.set_purge_rule('evil', $$mails "m"; --$$,
	$$true; DROP TABLE billing.invoices$$);
SELECT anonymize.set_purge_rule('evil', $$mails "m"; --$$,
	$$true) OR (true$$);
SELECT anonymize.set_purge_rule('evil', $$mails "m"; --$$,
	$$true)); DROP TABLE billing.invoices; --$$);
SELECT anonymize.set_purge_rule('evil', $$mails "m"; --$$,
	$$true /* $$);
SELECT anonymize.set_blocker_rule('evil', $$orders "o"$$,
	$$true UNION SELECT true$$, 'evil');
SELECT anonymize.set_balance_rule('evil', 'Ledger %n',
	$$1 FROM billing.invoices; DROP TABLE billing.invoices; SELECT 1$$);
SELECT anonymize.set_scope('evil', '"Bill ing;"."Sent E-Mails"', 'Cust omer ID',
	condition => $$true) OR (true$$);
SELECT anonymize.set_company_test($$company 'c' %s$$, 'true',
	$$"COMPANY" FROM billing.invoices; DROP TABLE billing.invoices; SELECT 1$$);
SELECT anonymize.set_erase_rule('evil', $$address "a"; DROP TABLE billing.invoices; --$$,
	'{}', replacements => jsonb_build_object('Coun try',
	$$'X') WHERE false; DROP TABLE billing.invoices; --$$));
-- Names that do not exist (the quoted spelling is not the name).
SELECT anonymize.set_customer_relation('"Bill ing;"."Cust""omers"', '"I""d"',
	'Na;me', 'E mail');
SELECT anonymize.set_scope('evil', '"Bill ing;"."Sent E-Mails"',
	'Cust omer ID; DROP TABLE billing.invoices; --');
SELECT anonymize.set_erase_rule('evil', $$address "a"; DROP TABLE billing.invoices; --$$,
	'{"\"Phone; --\""}');
SELECT anonymize.set_purge_rule('evil', $$mails "m"; DROP TABLE billing.invoices; --$$);
SELECT (SELECT count(*) FROM anonymize.rules WHERE rule_name = 'evil') AS evil_rules,
	   (SELECT count(*) FROM anonymize.scopes WHERE scope_name = 'evil') AS evil_scopes,
	   (SELECT company_name FROM anonymize.customer_relation) AS company_name;

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
	   rows_deleted, rows_updated
  FROM anonymize.audit_log ORDER BY 1;
-- The JSON keys are the rule names, escaped, not broken JSON.
SELECT jsonb_object_keys(rows_deleted) AS rule
  FROM anonymize.audit_log
 WHERE customer_id = '11111111-1111-1111-1111-111111111111'
UNION ALL
SELECT jsonb_object_keys(rows_updated)
  FROM anonymize.audit_log
 WHERE customer_id = '22222222-2222-2222-2222-222222222222' ORDER BY 1;

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
SELECT anonymize.set_company_test('customer', $$"Comp;any" ~ '[^[:space:]]'$$,
	$$"Comp;any" || ''$$);
SELECT anonymize.drop_rule($$contact "c"; --$$);
SELECT anonymize.drop_rule('street %s $1');
SELECT anonymize.drop_scope($$company 'c' %s$$);
SELECT anonymize.drop_scope($$address "a"; DROP TABLE billing.invoices; --$$);
SELECT anonymize.set_erase_rule($$contact "c"; --$$, 'customer',
	ARRAY['Fir"st', 'LAST name', 'ph)one']::name[],
	replacements => jsonb_build_object('NOTE',
		$$'erased; --' || pg_catalog.length("Na;me")::text$$));
SELECT anonymize.set_erase_rule('street %s $1', 'customer', '{"Street; --"}',
	'individual');
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
