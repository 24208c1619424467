--
-- upgrade_1_2_to_1_3: ALTER EXTENSION anonymize UPDATE TO '1.3' on a 1.2
-- installation in use keeps every request and audit row: request ids become
-- uuids (unique across databases), in the audit log too; each request gets
-- its history (the first request), its attempts and its last outcome as
-- jsonb; the old ids stay as legacy_request_id; request() and
-- process_requests() get their new parameters, and the grants of the old
-- signatures and of the view pending_requests (made anew) are named in a
-- WARNING with the GRANT to run again (a grant made by the script would
-- count as the extension's own, which pg_dump leaves out).
--
\set ECHO none
SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION IF EXISTS anonymize CASCADE;
DROP SCHEMA IF EXISTS billing CASCADE;
DROP SCHEMA IF EXISTS crm CASCADE;
DROP ROLE IF EXISTS regress_night_operator;
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

CREATE EXTENSION anonymize VERSION '1.2';
CREATE ROLE regress_night_operator;
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text) TO regress_night_operator;
GRANT EXECUTE ON PROCEDURE anonymize.process_requests(integer, integer, interval)
	TO regress_night_operator;
GRANT SELECT ON anonymize.pending_requests TO regress_night_operator;
-- The queue of 1.2 in use (written directly: the library is that of 1.3):
-- acme's request answered with an audit row, jean's failed, maria's
-- blocked, and an audit row of a direct erasure.
INSERT INTO anonymize.requests (customer_id, requested_at, requested_by,
		reference, due_at, state, last_attempt_at, blockers, outcome,
		closed_at, closed_by)
VALUES (:'acme', '2026-03-01 10:00+00', 'clerk', 'T-1', '2026-04-01 10:00+00',
		'done', '2026-03-02 01:00+00', NULL, 'anonymized', '2026-03-02 01:00+00',
		'night'),
	   (:'jean', '2026-03-01 11:00+00', 'clerk', 'T-2', '2026-04-01 11:00+00',
		'pending', '2026-03-02 01:00+00', 'error P0001: on legal hold', 'failed',
		NULL, NULL),
	   (:'maria', '2026-03-01 12:00+00', 'clerk', NULL, '2026-04-01 12:00+00',
		'pending', '2026-03-02 01:00+00',
		'1 row of relation "billing.subscriptions" (subscription not terminated)',
		'blocked', NULL, NULL);
INSERT INTO anonymize.audit_log (customer_id, anonymized_at, anonymized_by,
		customer_kind, rows_deleted, rows_updated, request_id)
SELECT customer_id, closed_at, closed_by, 'company', '{}', '{}', request_id
  FROM anonymize.requests WHERE customer_id = :'acme';
INSERT INTO anonymize.audit_log (customer_id, anonymized_at, anonymized_by,
		customer_kind, rows_deleted, rows_updated)
VALUES ('dddddddd-dddd-dddd-dddd-dddddddddddd', '2026-02-01 00:00+00', 'dba',
		'individual', '{}', '{}');

SET TimeZone = 'UTC';
ALTER EXTENSION anonymize UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'anonymize';

-- Every request is kept, with a uuid; the audit row still points at its
-- request; the direct erasure has none.
SELECT customer_id, reference, state, outcome, attempts, details, closed_by
  FROM anonymize.requests ORDER BY customer_id;
SELECT pg_typeof(request_id) AS request_id_type, count(*) AS requests,
       count(DISTINCT request_id) AS distinct_ids
  FROM anonymize.requests GROUP BY 1;
SELECT a.customer_id, a.request_id IS NOT NULL AS from_request,
       r.customer_id = a.customer_id AS request_of_the_customer
  FROM anonymize.audit_log a LEFT JOIN anonymize.requests r USING (request_id)
 ORDER BY a.customer_id;
-- the old ids stay, so that a ticket quoting one still finds its request
SELECT r.customer_id, r.legacy_request_id IS NOT NULL AS has_old_id,
       a.legacy_request_id = r.legacy_request_id AS audit_has_the_same
  FROM anonymize.requests r
  LEFT JOIN anonymize.audit_log a USING (request_id)
 ORDER BY r.customer_id;
SELECT count(DISTINCT legacy_request_id) AS distinct_old_ids FROM anonymize.requests;
-- the first request of each is its history
SELECT r.customer_id, h.event, h.event_at, h.event_by, h.reference, h.due_at
  FROM anonymize.request_history h JOIN anonymize.requests r USING (request_id)
 ORDER BY r.customer_id;
-- the view shows the old notes readably
SELECT customer_id, "references", attempts, last_outcome, last_blockers_or_error
  FROM anonymize.pending_requests ORDER BY customer_id;

-- The grants of the old signatures are gone, as the WARNINGs said; granted
-- again, the operator may call the new ones.
SELECT has_function_privilege('regress_night_operator',
		'anonymize.request(uuid, text, timestamptz)', 'EXECUTE') AS may_request;
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz)
	TO regress_night_operator;
SELECT has_function_privilege('regress_night_operator',
		'anonymize.request(uuid, text, timestamptz)', 'EXECUTE') AS may_request;

-- The old sequence of request ids is gone, from the dumped configuration
-- too; the new tables are dumped.
SELECT to_regclass('anonymize.requests_request_id_seq') AS old_sequence;
SELECT c::regclass AS dumped
  FROM pg_extension e, unnest(e.extconfig) c
 WHERE e.extname = 'anonymize' ORDER BY c::regclass::text;

SET client_min_messages = warning;
SET anonymize.allow_drop_with_data = on;
DROP EXTENSION anonymize;
DROP SCHEMA billing CASCADE;
DROP ROLE regress_night_operator;
