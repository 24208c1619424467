--
-- mapping_targets: only tables of the application can be mapped, as the
-- customer relation or as a scope.  A temporary table belongs to one
-- session (every other session would fail on it); the extension's own
-- tables hold the mapping, the audit log and the erasure requests, and a
-- purge rule on anonymize.requests would delete the GDPR requests
-- themselves; a view is no table.  Before 1.2 all of these were accepted.
--
\ir sql/include/fresh_billing.sql

CREATE TEMP TABLE scratch (customer_id uuid, note text);
SELECT anonymize.set_scope('scratch', 'pg_temp.scratch', 'customer_id');

SELECT anonymize.set_scope('requests', 'anonymize.requests', 'customer_id');
SELECT anonymize.set_scope('audit', 'anonymize.audit_log', 'customer_id');
SELECT anonymize.set_scope('pending_requests', 'anonymize.pending_requests', 'customer_id',
	condition => $$true$$);
SELECT anonymize.set_customer_relation('anonymize.audit_log', 'customer_id',
	'anonymized_by', 'customer_kind');

-- Rows slipped into the configuration tables directly are refused when
-- the plans are built, and nothing is erased.
INSERT INTO anonymize.scopes (scope_name, relation_schema, relation_name, key_column)
VALUES ('requests', 'anonymize', 'requests', 'customer_id');
INSERT INTO anonymize.rules (rule_name, kind, scope) VALUES ('requests', 'purge', 'requests');
SELECT anonymize.request(:'maria', 'TICKET-1') IS NOT NULL AS requested;
SELECT * FROM anonymize.anonymize_customer(:'jean');
DELETE FROM anonymize.rules WHERE rule_name = 'requests';
DELETE FROM anonymize.scopes WHERE scope_name = 'requests';
SELECT count(*) AS requests FROM anonymize.requests;
SELECT scope_name FROM anonymize.scopes ORDER BY scope_name;
SELECT rule_name, kind, scope FROM anonymize.rules ORDER BY rule_name;
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
