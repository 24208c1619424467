--
-- upgrade_1_1_to_1_2: ALTER EXTENSION anonymize UPDATE TO '1.2' on a 1.1
-- installation in use (reached from 1.0) keeps its mapping, audit log and
-- requests, brings the fault fixes of 1.2 (plan invalidation by row-level
-- triggers enabled ALWAYS, the DROP EXTENSION guard), converts the mapping
-- to scopes and rules (the preset rules, a changed placeholder, a rule of
-- the user's, a dropped preset), erases as before, and yields the same
-- objects, once updated to 1.3 as well, as a fresh CREATE EXTENSION
-- anonymize (1.3).
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS crm CASCADE;
\ir examples/billing.sql
\ir sql/include/sqlstate.sql
RESET client_min_messages;
RESET anonymize.allow_drop_with_data;
\set ECHO all

\set acme  'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'
\set jean  'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb'
\set maria 'cccccccc-cccc-cccc-cccc-cccccccccccc'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'acme', 'Anna Schmidt', 'anna@acme.example'),
	(:'jean', 'Jean Dupont', 'jean@example.fr'),
	(:'maria', 'Maria Rossi', 'maria@example.it');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, address_line1, city, country) VALUES
	(:'acme', 'Acme GmbH', 'Anna', 'Schmidt', 'Friedrichstr. 1', 'Berlin', 'DE'),
	(:'jean', NULL, 'Jean', 'Dupont', '12 rue de la Paix', 'Paris', 'FR'),
	(:'maria', NULL, 'Maria', 'Rossi', 'Via del Corso 45', 'Roma', 'IT');
-- A table of the user's, purged by a rule of the user's.
CREATE TABLE billing.support_tickets (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_ref uuid NOT NULL REFERENCES billing.customers (id),
	body text);
INSERT INTO billing.support_tickets (customer_ref, body) VALUES
	(:'jean', 'Please call me at +33 1 23 45 67 89'),
	(:'maria', 'Invoice question');
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'acme', 'terminated'), (:'maria', 'active');

-- 1.0, then 1.1, in use: mapping changes, an erasure, a pending request.
CREATE EXTENSION anonymize VERSION '1.0';
SELECT anonymize.set_placeholder('n/a');
-- (set_purge_rule() of 1.0 checks its rule in C, which the library of 1.2
-- refuses for a database at 1.0: the rule is written into the table.)
INSERT INTO anonymize.purge_rules
	(rule_name, relation_schema, relation_name, key_column, condition)
VALUES ('support_tickets', 'billing', 'support_tickets', 'customer_ref',
		$$body IS NOT NULL$$);
SELECT anonymize.drop_rule('customer_activity');
-- An anonymization of the past, with its audit row.
INSERT INTO anonymize.audit_log VALUES
	(:'acme', '2026-01-02 03:04:05+00', 'postgres', 'company',
	 '{"sent_emails": 1, "customer_activity": 0, "initialized_subscriptions": 0}');
ALTER EXTENSION anonymize UPDATE TO '1.1';
-- (request() is in C: recorded directly, as 1.1 did)
INSERT INTO anonymize.requests (customer_id, requested_at, requested_by,
		reference, due_at)
VALUES (:'maria', now(), current_user, 'TICKET-1', now() + interval '1 month');
-- the statement-level invalidation triggers of 1.1
SELECT tgrelid::regclass, tgname, tgenabled, (tgtype & 1) = 1 AS row_level
  FROM pg_trigger WHERE tgname LIKE 'invalidate_plans%' ORDER BY 1, 2;

ALTER EXTENSION anonymize UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'anonymize';

-- Kept: the audit row, the request; the mapping, converted: the preset
-- rules and the user's, the placeholder, the billing address as a scope
-- with the company test and two erase rules; not the dropped preset.
SELECT * FROM anonymize.customer_relation;
SELECT * FROM anonymize.scopes ORDER BY scope_name;
SELECT * FROM anonymize.rules ORDER BY rule_name;
SELECT to_regclass('anonymize.customer_mapping') AS old_table;
SELECT customer_id, customer_kind, rows_deleted, rows_updated FROM anonymize.audit_log;

-- (The library is that of 1.3, the default version: its functions need it.)
ALTER EXTENSION anonymize UPDATE TO '1.3';

-- It erases as 1.1 did, with the user's rule too.
SELECT * FROM anonymize.anonymize_customer(:'jean');
SELECT c.name, c.email, a.first_name, a.address_line1, a.city, a.country
  FROM billing.customers c JOIN billing.billing_addresses a ON a.customer_id = c.id
 WHERE c.id = :'jean';
SELECT customer_ref, body FROM billing.support_tickets ORDER BY id;
SELECT rows_updated FROM anonymize.audit_log WHERE customer_id = :'jean';
SELECT customer_id, reference, state FROM anonymize.requests;

-- Row-level invalidation triggers (and TRUNCATE ones), enabled ALWAYS
-- ('A'), so that changes applied by logical replication rebuild plans.
SELECT tgrelid::regclass, tgname, tgenabled, (tgtype & 1) = 1 AS row_level
  FROM pg_trigger WHERE tgname LIKE 'invalidate_plans%' ORDER BY 1, 2;

-- The DROP guard is there and refuses while the audit log holds rows.
SELECT evtname, evtevent, evttags FROM pg_event_trigger
 WHERE evtname = 'anonymize_guard_drop';
DROP EXTENSION anonymize;

--
-- The updated extension has the same objects as a fresh one.
--
\ir sql/include/extension_objects.sql
CREATE TEMP TABLE updated_objects AS SELECT * FROM pg_temp.extension_objects();

SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
RESET anonymize.allow_drop_with_data;
CREATE EXTENSION anonymize;
CREATE TEMP TABLE fresh_objects AS SELECT * FROM pg_temp.extension_objects();

-- not a vacuous comparison
SELECT kind, count(*) FROM fresh_objects GROUP BY kind ORDER BY kind;
-- A fresh one installs no mapping.
SELECT (SELECT count(*) FROM anonymize.customer_relation) AS customer_relation,
       (SELECT count(*) FROM anonymize.scopes) AS scopes,
       (SELECT count(*) FROM anonymize.rules) AS rules;
-- only in the updated extension
SELECT * FROM updated_objects EXCEPT SELECT * FROM fresh_objects;
-- only in the fresh extension
SELECT * FROM fresh_objects EXCEPT SELECT * FROM updated_objects;

-- The default version is 1.3, which is what the fresh one is.
SELECT extversion = default_version AS is_default, extversion
  FROM pg_extension JOIN pg_available_extensions ON name = extname
 WHERE extname = 'anonymize';
