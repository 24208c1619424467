--
-- mapping_targets: only tables of the application can be mapped.  A
-- temporary table belongs to one session (every other session would fail
-- on it); the extension's own tables hold the mapping, the audit log and
-- the erasure requests, and a purge rule on anonymize.requests would delete
-- the GDPR requests themselves.  Before 1.2 all of these were accepted.
--
\ir sql/include/fresh_billing.sql

CREATE TEMP TABLE scratch (customer_id uuid, note text);
SELECT anonymize.set_purge_rule('scratch', 'pg_temp.scratch', 'customer_id');
SELECT anonymize.set_blocker_rule('scratch', 'pg_temp.scratch', 'customer_id',
	'true', 'scratch');

SELECT anonymize.set_purge_rule('requests', 'anonymize.requests', 'customer_id');
SELECT anonymize.set_purge_rule('audit', 'anonymize.audit_log', 'customer_id');
SELECT anonymize.set_blocker_rule('requests', 'anonymize.requests', 'customer_id',
	$$state = 'pending'$$, 'pending request');
SELECT anonymize.set_customer_relation('anonymize.audit_log', 'customer_id',
	'anonymized_by', 'customer_kind');

-- A row slipped into the configuration table directly is refused when the
-- plans are built, and nothing is erased.
INSERT INTO anonymize.purge_rules (rule_name, relation_schema, relation_name, key_column)
VALUES ('requests', 'anonymize', 'requests', 'customer_id');
SELECT anonymize.request(:'maria', 'TICKET-1') > 0 AS requested;
SELECT * FROM anonymize.anonymize_customer(:'jean');
DELETE FROM anonymize.purge_rules WHERE rule_name = 'requests';
SELECT count(*) AS requests FROM anonymize.requests;
SELECT rule_name FROM anonymize.purge_rules ORDER BY rule_name;
SELECT rule_name FROM anonymize.blocker_rules ORDER BY rule_name;
SELECT anonymized FROM anonymize.anonymize_customer(:'jean');
