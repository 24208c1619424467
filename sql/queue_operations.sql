--
-- queue_operations: the request queue as a DBA runs it at night (1.3).
--   request(customer_id, reference, due_at)  due at due_at, or
--       anonymize.request_deadline from now; a repeated request keeps the
--       pending one and its due date, and adds its reference to the history
--   extend_request(customer_id, until, reason)  later, within two months
--       of the first due date, with a reason
--   process_requests(..., fail_on_error, quiet)  a WARNING per overdue
--       request; an ERROR after the commits while requests failed or are
--       overdue; outcomes as jsonb; blocked requests retried after
--       anonymize.retry_interval; one row per run in anonymize.runs, kept
--       anonymize.run_retention
--   process_request_batch(batch_size, not_tried_since)  one batch in the
--       caller's transaction, with its counts
--   queue_status()  the queue and the last run in one row
--   vacuum_statements()  VACUUM of the relations erasures change
--
\ir sql/include/fresh_billing.sql
SET client_min_messages = notice;
SET TimeZone = 'UTC';
\set VERBOSITY default

-- Names instead of uuids in the output.
CREATE TEMP VIEW requests AS
SELECT coalesce(n.who, r.customer_id::text) AS who, r.*
  FROM anonymize.requests r
  LEFT JOIN (VALUES (:'acme'::uuid, 'acme'), (:'jean', 'jean'),
                    (:'maria', 'maria')) AS n (id, who) ON n.id = r.customer_id;

--
-- Deadlines.
--
SHOW anonymize.request_deadline;
SELECT anonymize.request(:'jean', 'T-jean') IS NOT NULL AS requested;
SELECT due_at = requested_at + interval '1 month' AS due_in_a_month FROM requests
 WHERE who = 'jean';
SET anonymize.request_deadline = '30 days';
SELECT anonymize.request(:'acme', 'T-acme') IS NOT NULL AS requested;
SELECT due_at = requested_at + interval '30 days' AS due_in_30_days FROM requests
 WHERE who = 'acme';
RESET anonymize.request_deadline;
-- not an interval, not positive
SET anonymize.request_deadline = 'soon';
SET anonymize.request_deadline = '-1 day';
SET anonymize.request_deadline = '0';
SHOW anonymize.request_deadline;
-- an explicit due date: maria's request came by letter last January
SELECT anonymize.request(:'maria', 'T-1', due_at => '2026-01-01 00:00+00')
       AS maria_request \gset
SELECT pg_temp.sqlstate($$SELECT anonymize.request('cccccccc-cccc-cccc-cccc-cccccccccccc', 'x', 'infinity')$$);
-- A second request keeps the request and its due date; its reference is
-- kept in the history.
SELECT anonymize.request(:'maria', 'T-2', due_at => '2026-06-01 00:00+00')
       = :'maria_request' AS same_request;
SELECT anonymize.request(:'maria') = :'maria_request' AS same_request;
SELECT reference, due_at FROM requests WHERE who = 'maria';
SELECT event, reference, due_at, reason, event_by = current_user AS by_me
  FROM anonymize.request_history WHERE request_id = :'maria_request'
 ORDER BY event_at, reference NULLS LAST;
SELECT p."references", p.extensions FROM anonymize.pending_requests p
 WHERE p.request_id = :'maria_request';

--
-- extend_request()
--
SELECT anonymize.extend_request(:'maria', '2026-02-15 00:00+00',
                                'the customer disputes an invoice')
       = :'maria_request' AS same_request;
SELECT due_at FROM requests WHERE who = 'maria';
SELECT event, reference, due_at, reason FROM anonymize.request_history
 WHERE request_id = :'maria_request' AND event = 'extended';
SELECT p.due_at, p.extensions FROM anonymize.pending_requests p
 WHERE p.request_id = :'maria_request';
-- not earlier, not beyond two months after the first due date, with a reason
SELECT anonymize.extend_request(:'maria', '2026-02-01 00:00+00', 'earlier');
\echo :SQLSTATE
SELECT anonymize.extend_request(:'maria', '2026-03-01 00:00:01+00', 'too late');
\echo :SQLSTATE
SELECT anonymize.extend_request(:'maria', '2026-03-01 00:00+00', NULL);
\echo :SQLSTATE
SELECT anonymize.extend_request(:'maria', '2026-03-01 00:00+00', '  ');
\echo :SQLSTATE
SELECT anonymize.extend_request(:'maria', 'infinity', 'for ever');
\echo :SQLSTATE
SELECT anonymize.extend_request(:'unknown', '2026-03-01 00:00+00', 'no request');
\echo :SQLSTATE
-- the longest extension is allowed
SELECT anonymize.extend_request(:'maria', '2026-03-01 00:00+00',
                                'the dispute goes to court') IS NOT NULL AS extended;
SELECT count(*) AS extensions, max(due_at) AS due_at
  FROM anonymize.request_history
 WHERE request_id = :'maria_request' AND event = 'extended';

--
-- A failing night: maria is overdue and blocked; jean's erasure fails (a
-- trigger raises); acme is anonymized.  The run commits its work, warns of
-- each overdue request, and ends with an error that names the counts.
--
CREATE FUNCTION billing.legal_hold() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	RAISE EXCEPTION 'emails of customer % are on legal hold', OLD.customer_id;
END
$$;
CREATE TRIGGER legal_hold BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW WHEN (OLD.customer_id = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb')
	EXECUTE FUNCTION billing.legal_hold();
CALL anonymize.process_requests();
\echo :SQLSTATE
-- what the run committed: structured outcomes, attempts
SELECT who, state, outcome, attempts, details FROM requests ORDER BY who;
SELECT who, last_outcome, last_blockers_or_error, last_details IS NOT NULL AS has_details
  FROM anonymize.pending_requests p JOIN requests USING (request_id) ORDER BY who;
-- the run's row
SELECT procedure, run_by = current_user AS by_me, backend_pid = pg_backend_pid() AS this_backend,
       ended_at >= started_at AS ended, batches, anonymized, already_erased,
       unknown_customers, blocked, busy, failed, pending, overdue
  FROM anonymize.runs;

--
-- retry_interval: maria was blocked, she is tried again after a day; jean
-- failed, he is tried at every run.  fail_on_error => false ends without an
-- error (the WARNING stays); quiet drops the NOTICEs.
--
SHOW anonymize.retry_interval;
SELECT who, next_attempt_at >= now() + interval '1 day' - interval '1 minute'
       AS next_attempt_in_a_day
  FROM requests WHERE state = 'pending' ORDER BY who;
CALL anonymize.process_requests(fail_on_error => false, quiet => true);
SELECT who, attempts FROM requests WHERE state = 'pending' ORDER BY who;
-- a lower retry_interval takes effect at once
SET anonymize.retry_interval = 0;
CALL anonymize.process_requests(fail_on_error => false);
SELECT who, attempts, next_attempt_at <= now() + interval '1 minute' AS due_again
  FROM requests WHERE state = 'pending' ORDER BY who;
RESET anonymize.retry_interval;
SET anonymize.retry_interval = '-1';

--
-- queue_status(): the queue and the last run.
--
SELECT pending, overdue, oldest_due_at, blocked, failed, busy, not_tried,
       last_run_started_at <= last_run_ended_at AS last_run_ended,
       last_run_by = current_user AS by_me, last_run_batches,
       last_run_anonymized, last_run_blocked, last_run_failed, last_run_busy,
       last_run_already_erased
  FROM anonymize.queue_status();
SELECT count(*) AS runs FROM anonymize.runs;

--
-- process_request_batch(): one batch in the caller's transaction.
--
DROP TRIGGER legal_hold ON billing.sent_emails;
SET anonymize.retry_interval = 0;
BEGIN;
SELECT claimed, anonymized, already_erased, unknown_customers, blocked, busy,
       failed, pending, overdue
  FROM anonymize.process_request_batch(10);
-- tried in this transaction: not again
SELECT claimed FROM anonymize.process_request_batch(10);
SELECT who, state, outcome FROM requests ORDER BY who;
ROLLBACK;
-- rolled back with the caller's transaction
SELECT who, state, outcome FROM requests ORDER BY who;
-- a loop of calls, each in its own transaction, passing its start time
SELECT now() AS loop_started \gset
SELECT claimed, anonymized, blocked FROM anonymize.process_request_batch(1, :'loop_started');
SELECT claimed, anonymized, blocked FROM anonymize.process_request_batch(1, :'loop_started');
SELECT claimed, anonymized, blocked FROM anonymize.process_request_batch(1, :'loop_started');
SELECT who, state, outcome FROM requests ORDER BY who;
SELECT procedure, batches, anonymized, blocked, ended_at IS NOT NULL AS ended
  FROM anonymize.runs WHERE procedure = 'process_request_batch' ORDER BY started_at;
SELECT pg_temp.sqlstate('SELECT anonymize.process_request_batch(NULL)');
SELECT pg_temp.sqlstate('SELECT anonymize.process_request_batch(0)');
SELECT pg_temp.sqlstate('SELECT anonymize.process_request_batch(10001)');
RESET anonymize.retry_interval;

--
-- run_retention: a run older than the retention is deleted when a run starts.
--
SHOW anonymize.run_retention;
INSERT INTO anonymize.runs (procedure, started_at, ended_at, run_by, backend_pid)
VALUES ('process_requests', now() - interval '91 days', now() - interval '91 days',
        'nightly', 1),
       ('process_requests', now() - interval '89 days', now() - interval '89 days',
        'nightly', 1);
CALL anonymize.process_requests(fail_on_error => false, quiet => true);
SELECT count(*) FILTER (WHERE started_at < now() - interval '90 days') AS older,
       count(*) FILTER (WHERE started_at < now() - interval '88 days') AS old
  FROM anonymize.runs;
SET anonymize.run_retention = '1d';
CALL anonymize.process_requests(fail_on_error => false, quiet => true);
SELECT count(*) FILTER (WHERE started_at < now() - interval '1 day') AS old
  FROM anonymize.runs;
RESET anonymize.run_retention;

--
-- vacuum_statements(): the dead tuples of erased rows are gone after them.
--
SELECT * FROM anonymize.vacuum_statements();
SELECT * FROM anonymize.vacuum_statements(one_statement => true);
CREATE EXTENSION pgstattuple;
SELECT r AS relation, (pgstattuple(r)).dead_tuple_count > 0 AS dead_tuples
  FROM unnest('{billing.customers,billing.sent_emails}'::regclass[]) r;
SELECT anonymize.vacuum_statements() \gexec
SELECT r AS relation, (pgstattuple(r)).dead_tuple_count > 0 AS dead_tuples
  FROM unnest('{billing.customers,billing.sent_emails}'::regclass[]) r;
DROP EXTENSION pgstattuple;

--
-- Privileges: the new functions that write are not granted to PUBLIC.
--
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'anonymize'::regnamespace
   AND p.proname IN ('request', 'extend_request', 'process_requests',
                     'process_request_batch', 'queue_status',
                     'vacuum_statements', 'describe_outcome')
 ORDER BY p.oid::regprocedure::text;
