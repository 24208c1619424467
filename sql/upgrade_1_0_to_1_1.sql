--
-- upgrade_1_0_to_1_1: ALTER EXTENSION anonymize UPDATE TO '1.1' on a 1.0
-- installation in use keeps its mapping changes and audit log, adds a
-- working request queue, and yields the same objects as a fresh
-- CREATE EXTENSION anonymize VERSION '1.1'.
--
\set ECHO none
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS crm CASCADE;
\ir examples/billing.sql
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

-- Mapping changes: a placeholder, a disabled preset, a new blocker rule.
SELECT anonymize.set_placeholder('n/a');
SELECT anonymize.drop_rule('webhook_notifications');
SELECT anonymize.set_blocker_rule('disputes', 'billing.customer_activity',
	'customer_id', $$kind = 'dispute'$$, 'open dispute');
-- An anonymization with its audit row.
SELECT * FROM anonymize.anonymize_customer(:'acme');

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

-- The queue works, with the mapping of 1.0: dan is blocked by the new rule,
-- jean keeps his webhook rows, acme was anonymized before.
SELECT count(anonymize.request(id, 'after the update')) FROM billing.customers;
SELECT c.name, p.blockers FROM anonymize.pending_requests p
  JOIN billing.customers c ON c.id = p.customer_id ORDER BY p.customer_id;
CALL anonymize.process_requests(batch_size => 2);
SELECT customer_id, state, outcome, blockers FROM anonymize.requests
 ORDER BY customer_id;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log
 ORDER BY customer_id;
SELECT c.id, c.name, c.email,
       (SELECT count(*) FROM billing.webhook_notifications w
         WHERE w.customer_id = c.id) AS webhooks,
       (SELECT count(*) FROM billing.sent_emails e
         WHERE e.customer_id = c.id) AS emails
  FROM billing.customers c ORDER BY c.id;

--
-- The updated extension has the same objects as a fresh 1.1: members,
-- function definitions (with privileges and comments), columns,
-- constraints, indexes, triggers, views, sequences, relation privileges
-- and comments, and the tables pg_dump saves.
--
CREATE FUNCTION pg_temp.extension_objects()
RETURNS TABLE (kind text, name text, definition text)
LANGUAGE sql AS
$$
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'anonymize'),
members AS (
	SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
	   AND d.deptype = 'e'),
rels AS (
	SELECT c.* FROM pg_class c JOIN members m
	    ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT 'extension', extname::text,
       concat_ws(' ', extversion, extrelocatable, extnamespace::regnamespace)
  FROM ext
UNION ALL
SELECT 'member', pg_describe_object(classid, objid, objsubid), NULL FROM members
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(E'\n', pg_get_functiondef(p.oid), p.proacl::text,
                 obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p JOIN members m
    ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT 'relation', c.oid::regclass::text,
       concat_ws(' ', c.relkind, c.relpersistence, c.relacl::text,
                 obj_description(c.oid, 'pg_class'))
  FROM rels c
UNION ALL
SELECT 'column', a.attrelid::regclass || '.' || a.attname,
       concat_ws(' ', a.attnum, format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                 'default:' || pg_get_expr(ad.adbin, ad.adrelid),
                 'identity:' || nullif(a.attidentity::text, ''),
                 'generated:' || nullif(a.attgenerated::text, ''),
                 a.attacl::text, col_description(a.attrelid, a.attnum))
  FROM pg_attribute a JOIN rels c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', co.conrelid::regclass || '.' || co.conname,
       pg_get_constraintdef(co.oid)
  FROM pg_constraint co JOIN rels c ON c.oid = co.conrelid
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN rels c ON c.oid = i.indrelid
UNION ALL
SELECT 'trigger', t.tgrelid::regclass || '.' || t.tgname,
       pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'view', c.oid::regclass::text, pg_get_viewdef(c.oid)
  FROM rels c WHERE c.relkind = 'v'
UNION ALL
SELECT 'sequence', s.seqrelid::regclass::text,
       concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                 s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
  FROM pg_sequence s JOIN rels c ON c.oid = s.seqrelid
UNION ALL
SELECT 'dumped', cfg.rel::regclass::text, cfg.cond
  FROM ext, unnest(ext.extconfig, ext.extcondition) AS cfg (rel, cond)
$$;

CREATE TEMP TABLE updated_objects AS SELECT * FROM pg_temp.extension_objects();
SELECT name FROM updated_objects WHERE kind = 'member' ORDER BY name;

DROP EXTENSION anonymize;
CREATE EXTENSION anonymize VERSION '1.1';
CREATE TEMP TABLE fresh_objects AS SELECT * FROM pg_temp.extension_objects();

-- not a vacuous comparison
SELECT kind, count(*) FROM fresh_objects GROUP BY kind ORDER BY kind;
-- only in the updated extension
SELECT * FROM updated_objects EXCEPT SELECT * FROM fresh_objects;
-- only in the fresh extension
SELECT * FROM fresh_objects EXCEPT SELECT * FROM updated_objects;

-- The default version is 1.1, which is what the fresh one is.
SELECT extversion = default_version AS is_default
  FROM pg_extension JOIN pg_available_extensions ON name = extname
 WHERE extname = 'anonymize';
