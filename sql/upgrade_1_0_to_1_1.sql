--
-- upgrade_1_0_to_1_1: ALTER EXTENSION anonymize UPDATE TO '1.1' on a 1.0
-- installation in use keeps its mapping changes and audit log, adds the
-- request queue, and yields the same objects as a fresh CREATE EXTENSION
-- anonymize VERSION '1.1'.  The library installed is that of 1.2: until
-- the database is updated to 1.2, the functions written in C refuse with
-- a clear error (their mapping tables are those of the old version);
-- after the update to 1.2, the mapping of 1.0 erases and the queue works.
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
\set ECHO all

\set acme  'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'
\set jean  'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb'
\set maria 'cccccccc-cccc-cccc-cccc-cccccccccccc'
\set dan   'dddddddd-dddd-dddd-dddd-dddddddddddd'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'acme', 'Anna Schmidt', 'anna@acme.example'),
	(:'jean', 'Jean Dupont', 'jean@example.fr'),
	(:'maria', 'Maria Rossi', 'maria@example.it'),
	(:'dan', 'Dan Dispute', 'dan@example.com');
INSERT INTO billing.billing_addresses (customer_id, company, first_name,
		last_name, address_line1, city, country) VALUES
	(:'acme', 'Acme GmbH', 'Anna', 'Schmidt', 'Friedrichstr. 1', 'Berlin', 'DE'),
	(:'jean', NULL, 'Jean', 'Dupont', '12 rue de la Paix', 'Paris', 'FR'),
	(:'maria', NULL, 'Maria', 'Rossi', 'Via del Corso 45', 'Roma', 'IT'),
	(:'dan', NULL, 'Dan', 'Dispute', '1 Main St', 'Dover', 'GB');
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
INSERT INTO billing.webhook_notifications (customer_id, event)
SELECT id, 'customer.created' FROM billing.customers;
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	(:'acme', 'login'), (:'jean', 'login'), (:'dan', 'dispute');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'acme', 'terminated'), (:'jean', 'terminated'), (:'maria', 'active');

--
-- Version 1.0, in use.
--
CREATE EXTENSION anonymize VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'anonymize';
-- no queue yet
SELECT to_regprocedure('anonymize.request(uuid,text)') AS request,
       to_regclass('anonymize.requests') AS requests,
       to_regclass('anonymize.pending_requests') AS pending_requests;
-- the update path
SELECT source, target, path FROM pg_extension_update_paths('anonymize')
 WHERE path IS NOT NULL ORDER BY source, target;

-- Mapping changes: a placeholder, a disabled preset, a new blocker rule
-- (written into the table: set_blocker_rule() of 1.0 checks its rule in C,
-- which the library of 1.2 refuses for a database at 1.0).
SELECT anonymize.set_placeholder('n/a');
SELECT anonymize.drop_rule('webhook_notifications');
SELECT pg_temp.sqlstate($$SELECT anonymize.set_blocker_rule('disputes',
	'billing.customer_activity', 'customer_id', $c$kind = 'dispute'$c$,
	'open dispute')$$);
INSERT INTO anonymize.blocker_rules
	(rule_name, relation_schema, relation_name, key_column, condition, reason)
VALUES ('disputes', 'billing', 'customer_activity', 'customer_id',
		$$kind = 'dispute'$$, 'open dispute');
-- The functions in C refuse until the update, changing nothing.
SELECT * FROM anonymize.anonymize_customer(:'acme');
-- An anonymization of the past, with its audit row.
INSERT INTO anonymize.audit_log VALUES
	(:'acme', '2026-01-02 03:04:05+00', 'postgres', 'company',
	 '{"sent_emails": 1, "customer_activity": 1, "initialized_subscriptions": 0}');
UPDATE billing.customers SET name = 'Acme GmbH', email = NULL WHERE id = :'acme';

CREATE TEMP TABLE config_before AS
SELECT 'customer_mapping' AS tab, to_jsonb(m) AS r FROM anonymize.customer_mapping m
UNION ALL SELECT 'purge_rules', to_jsonb(p) FROM anonymize.purge_rules p
UNION ALL SELECT 'blocker_rules', to_jsonb(b) FROM anonymize.blocker_rules b
UNION ALL SELECT 'balance_rules', to_jsonb(b) FROM anonymize.balance_rules b
UNION ALL SELECT 'audit_log', to_jsonb(a) FROM anonymize.audit_log a;
SELECT tab, count(*) FROM config_before GROUP BY tab ORDER BY tab;

--
-- The update.
--
ALTER EXTENSION anonymize UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'anonymize';
ALTER EXTENSION anonymize UPDATE TO '1.1';

-- The mapping and the audit log survived unchanged.
CREATE TEMP TABLE config_after AS
SELECT 'customer_mapping' AS tab, to_jsonb(m) AS r FROM anonymize.customer_mapping m
UNION ALL SELECT 'purge_rules', to_jsonb(p) FROM anonymize.purge_rules p
UNION ALL SELECT 'blocker_rules', to_jsonb(b) FROM anonymize.blocker_rules b
UNION ALL SELECT 'balance_rules', to_jsonb(b) FROM anonymize.balance_rules b
UNION ALL SELECT 'audit_log', to_jsonb(a) FROM anonymize.audit_log a;
SELECT * FROM config_before EXCEPT SELECT * FROM config_after;
SELECT * FROM config_after EXCEPT SELECT * FROM config_before;
SELECT placeholder, preset FROM anonymize.customer_mapping;
SELECT rule_name, enabled, preset FROM anonymize.purge_rules ORDER BY rule_name;
SELECT rule_name, condition, reason, enabled, preset FROM anonymize.blocker_rules
 ORDER BY rule_name;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log;

-- The queue is there; its functions in C wait for the update to 1.2.
SELECT pg_temp.sqlstate(format('SELECT anonymize.request(%L)', :'jean'));
--
-- The updated extension has the same objects as a fresh 1.1: members,
-- function definitions (with privileges and comments), columns,
-- constraints, indexes, triggers, views, sequences, relation privileges
-- and comments, and the tables pg_dump saves.
--
\ir sql/include/extension_objects.sql

CREATE TEMP TABLE updated_objects AS SELECT * FROM pg_temp.extension_objects();
SELECT name FROM updated_objects WHERE kind = 'member' ORDER BY name;

SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
CREATE EXTENSION anonymize VERSION '1.1';
CREATE TEMP TABLE fresh_objects AS SELECT * FROM pg_temp.extension_objects();

-- not a vacuous comparison
SELECT kind, count(*) FROM fresh_objects GROUP BY kind ORDER BY kind;
-- only in the updated extension
SELECT * FROM updated_objects EXCEPT SELECT * FROM fresh_objects;
-- only in the fresh extension
SELECT * FROM fresh_objects EXCEPT SELECT * FROM updated_objects;

-- The fresh one is 1.1 (the default is a later version).
SELECT extversion FROM pg_extension WHERE extname = 'anonymize';

--
-- Updated to 1.2, the mapping of 1.0 (converted) erases and the queue
-- works: dan is blocked by the new rule, jean keeps his webhook rows, and
-- acme, whose recorded erasure left its sent email, is erased again.
--
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
RESET anonymize.allow_drop_with_data;
\set ECHO none
\o /dev/null
CREATE EXTENSION anonymize VERSION '1.0';
SELECT anonymize.set_placeholder('n/a');
SELECT anonymize.drop_rule('webhook_notifications');
INSERT INTO anonymize.blocker_rules
	(rule_name, relation_schema, relation_name, key_column, condition, reason)
VALUES ('disputes', 'billing', 'customer_activity', 'customer_id',
		$$kind = 'dispute'$$, 'open dispute');
INSERT INTO anonymize.audit_log VALUES
	(:'acme', '2026-01-02 03:04:05+00', 'postgres', 'company',
	 '{"sent_emails": 1, "customer_activity": 1, "initialized_subscriptions": 0}');
\o
\set ECHO all
-- (to the default version: the library works with that one only)
ALTER EXTENSION anonymize UPDATE;
SELECT count(anonymize.request(id, 'after the update')) FROM billing.customers;
SELECT c.name, p.blockers FROM anonymize.pending_requests p
  JOIN billing.customers c ON c.id = p.customer_id ORDER BY p.customer_id;
-- (quiet: the requests of one statement are due at the same time, and
-- batches take them in the random order of their ids)
CALL anonymize.process_requests(batch_size => 2, fail_on_error => false,
                                quiet => true);
SELECT customer_id, state, outcome, anonymize.describe_outcome(details) AS blockers
  FROM anonymize.requests
 ORDER BY customer_id;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log
 ORDER BY customer_id;
SELECT c.id, c.name, c.email,
       (SELECT count(*) FROM billing.webhook_notifications w
         WHERE w.customer_id = c.id) AS webhooks,
       (SELECT count(*) FROM billing.sent_emails e
         WHERE e.customer_id = c.id) AS emails
  FROM billing.customers c ORDER BY c.id;

