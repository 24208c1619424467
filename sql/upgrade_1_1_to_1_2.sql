--
-- upgrade_1_1_to_1_2: ALTER EXTENSION anonymize UPDATE TO '1.2' on a 1.1
-- installation in use (reached from 1.0) keeps its mapping, audit log and
-- requests, brings the fault fixes of 1.2 (plan invalidation by row-level
-- triggers enabled ALWAYS, the DROP EXTENSION guard, the whole-mapping
-- check of set_purge_rule) and yields the same objects as a fresh
-- CREATE EXTENSION anonymize, which is 1.2.
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS crm CASCADE;
\ir examples/billing.sql
RESET client_min_messages;
RESET anonymize.allow_drop_with_data;
\set ECHO all

\set acme  'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'
\set maria 'cccccccc-cccc-cccc-cccc-cccccccccccc'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'acme', 'Anna Schmidt', 'anna@acme.example'),
	(:'maria', 'Maria Rossi', 'maria@example.it');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, address_line1, city, country) VALUES
	(:'acme', 'Acme GmbH', 'Anna', 'Schmidt', 'Friedrichstr. 1', 'Berlin', 'DE'),
	(:'maria', NULL, 'Maria', 'Rossi', 'Via del Corso 45', 'Roma', 'IT');
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'acme', 'terminated'), (:'maria', 'active');

-- 1.0, then 1.1, in use: a mapping change, an erasure, a pending request.
CREATE EXTENSION anonymize VERSION '1.0';
SELECT anonymize.set_placeholder('n/a');
SELECT anonymized FROM anonymize.anonymize_customer(:'acme');
ALTER EXTENSION anonymize UPDATE TO '1.1';
SELECT anonymize.request(:'maria', 'TICKET-1') IS NOT NULL AS requested;
-- the statement-level invalidation triggers of 1.1
SELECT tgrelid::regclass, tgname, tgenabled, (tgtype & 1) = 1 AS row_level
  FROM pg_trigger WHERE tgname LIKE 'invalidate_plans%' ORDER BY 1, 2;

ALTER EXTENSION anonymize UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'anonymize';

-- Kept: the mapping change, the audit row, the request.
SELECT placeholder FROM anonymize.customer_mapping;
SELECT customer_id, customer_kind FROM anonymize.audit_log;
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
-- only in the updated extension
SELECT * FROM updated_objects EXCEPT SELECT * FROM fresh_objects;
-- only in the fresh extension
SELECT * FROM fresh_objects EXCEPT SELECT * FROM updated_objects;

-- The default version is 1.2, which is what the fresh one is.
SELECT extversion = default_version AS is_default, extversion
  FROM pg_extension JOIN pg_available_extensions ON name = extname
 WHERE extname = 'anonymize';
