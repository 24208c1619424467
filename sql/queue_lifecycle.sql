--
-- queue_lifecycle: the erasure-request queue (version 1.1, with the request
-- ids, outcomes and end-of-run errors of 1.3; queue_operations tests the
-- rest of 1.3).
--   anonymize.request()         records a request due one month later and
--                               returns its id; idempotent per pending
--                               customer; P0002 unknown, 22004 NULL
--   anonymize.cancel_request()  true when a pending request was cancelled
--   anonymize.pending_requests  overdue first, with the live blockers
--   CALL anonymize.process_requests(batch_size, max_batches, time_budget)
--                               anonymizes eligible customers batch by batch;
--                               blocked and failing ones stay pending with
--                               the reason; must run outside a transaction
--                               block; ends with an error while requests
--                               failed or are overdue; EXECUTE is not
--                               granted to PUBLIC
--
\ir sql/include/fresh_billing.sql
-- every run tries the blocked requests again (queue_operations tests the
-- interval)
SET anonymize.retry_interval = 0;
-- the NOTICEs of process_requests() are part of this test
SET client_min_messages = notice;
\set VERBOSITY default

\set sam  'dddddddd-0000-0000-0000-000000000001'
\set fay  'dddddddd-0000-0000-0000-000000000002'
\set gus  'dddddddd-0000-0000-0000-000000000003'
-- sam: blocked by an active subscription only, terminated later
-- fay: eligible, but deleting her sent emails fails (a trigger raises)
-- gus: no history; his row is deleted while his request is pending
INSERT INTO billing.customers (id, name, email) VALUES
	(:'sam', 'Sam Sub', 'sam@example.com'),
	(:'fay', 'Fay Fail', 'fay@example.com'),
	(:'gus', 'Gus Gone', 'gus@example.com');
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name,
		address_line1, city, country) VALUES
	(:'sam', 'Sam', 'Sub', '1 Queue Lane', 'Queuetown', 'NL'),
	(:'fay', 'Fay', 'Fail', '2 Queue Lane', 'Queuetown', 'NL');
INSERT INTO billing.subscriptions (customer_id, state) VALUES
	(:'sam', 'active'), (:'fay', 'terminated');
INSERT INTO billing.sent_emails (customer_id, recipient) VALUES
	(:'sam', 'sam@example.com'), (:'fay', 'fay@example.com'),
	(:'fay', 'fay@example.com');
INSERT INTO billing.customer_activity (customer_id, kind) VALUES
	(:'sam', 'login'), (:'fay', 'login');
CREATE FUNCTION billing.legal_hold() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
	IF OLD.customer_id = 'dddddddd-0000-0000-0000-000000000002' THEN
		RAISE EXCEPTION 'emails of customer % are on legal hold', OLD.customer_id;
	END IF;
	RETURN OLD;
END
$$;
CREATE TRIGGER legal_hold BEFORE DELETE ON billing.sent_emails
	FOR EACH ROW EXECUTE FUNCTION billing.legal_hold();

-- Names instead of uuids in the output.
CREATE TEMP VIEW requests AS
SELECT r.request_id, coalesce(n.who, r.customer_id::text) AS who,
       r.reference, r.state, r.outcome,
       anonymize.describe_outcome(r.details) AS blockers,
       r.last_attempt_at IS NOT NULL AS attempted,
       r.closed_at IS NOT NULL AS closed, r.closed_by
  FROM anonymize.requests r
  LEFT JOIN (VALUES (:'acme'::uuid, 'acme'), (:'jean', 'jean'),
                    (:'maria', 'maria'), (:'sam', 'sam'), (:'fay', 'fay'),
                    (:'gus', 'gus'), (:'unknown', 'unknown'))
       AS n (id, who) ON n.id = r.customer_id;

--
-- request()
--
SELECT anonymize.request(:'acme', 'ticket 1') AS acme_request \gset
SELECT request_id = :'acme_request' AS returned_id, customer_id, reference,
       requested_by = current_user AS requested_by_me,
       requested_at <= now() AS requested_before_now,
       due_at = requested_at + interval '1 month' AS due_in_a_month,
       state, last_attempt_at, details, outcome, closed_at, closed_by
  FROM anonymize.requests;

-- A second request of the customer returns the pending one and keeps its
-- reference.
SELECT anonymize.request(:'acme', 'ticket 2') = :'acme_request' AS same_request;
SELECT anonymize.request(:'acme') = :'acme_request' AS same_request;
SELECT count(*), min(reference) FROM anonymize.requests;

-- Unknown customer, NULL customer: errors, no row.
SELECT anonymize.request(:'unknown');
\echo :SQLSTATE
SELECT anonymize.request(NULL);
\echo :SQLSTATE
SELECT anonymize.request(NULL, 'ticket 3');
\echo :SQLSTATE
SELECT count(*) FROM anonymize.requests;

-- One request per customer, from a query; acme keeps its request.
SELECT count(*) AS returned, count(DISTINCT r) AS distinct_ids,
       count(*) FILTER (WHERE r = :'acme_request') AS acme_request
  FROM (SELECT anonymize.request(id) AS r FROM billing.customers ORDER BY id) s;
SELECT n.who, r.reference, r.state, r.requested_by = current_user AS by_me,
       r.due_at = r.requested_at + interval '1 month' AS due_in_a_month
  FROM requests n JOIN anonymize.requests r USING (request_id)
 ORDER BY who;
-- the same again adds nothing
SELECT count(*) FROM (SELECT anonymize.request(id) FROM billing.customers) s;
SELECT count(*) FROM anonymize.requests;

--
-- pending_requests: overdue first, then by due date; live blockers; days
-- left before the due date, rounded up (negative when overdue).  Hours, not
-- days, so that a change of daylight saving time changes nothing.
--
UPDATE anonymize.requests SET due_at = now() - interval '49 hours'
 WHERE customer_id = :'maria';
UPDATE anonymize.requests SET due_at = now() + interval '71 hours'
 WHERE customer_id = :'sam';
UPDATE anonymize.requests SET due_at = now() + interval '239 hours'
 WHERE customer_id = :'fay';
SELECT n.who, p.reference,
       CASE WHEN p.days_left <= 10 THEN p.days_left::text
            WHEN p.days_left BETWEEN 28 AND 32 THEN 'about a month'
            ELSE 'wrong: ' || p.days_left END AS days_left,
       p.requested_by = current_user AS by_me, p.blockers, p.last_attempt_at
  FROM anonymize.pending_requests p JOIN requests n USING (request_id)
 ORDER BY p.due_at, n.who;
-- the view's columns
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'anonymize.pending_requests'::regclass AND attnum > 0
 ORDER BY attnum;

--
-- cancel_request()
--
SELECT anonymize.cancel_request(:'gus');
SELECT anonymize.cancel_request(:'gus');
SELECT anonymize.cancel_request(:'unknown');
SELECT anonymize.cancel_request(NULL);
SELECT who, state, outcome, closed, closed_by = current_user AS closed_by_me
  FROM requests WHERE who = 'gus';
-- a new request after a cancelled one is a new request
SELECT anonymize.request(:'gus', 'ticket 4') AS gus_request \gset
SELECT request_id = :'gus_request' AS new_one, who, reference, state, closed
  FROM requests WHERE who = 'gus' ORDER BY state;
SELECT count(*) FROM anonymize.pending_requests;

-- gus disappears before his request is processed
DELETE FROM billing.customers WHERE id = :'gus';
SELECT n.who, p.blockers FROM anonymize.pending_requests p
  JOIN requests n USING (request_id) WHERE n.who = 'gus';

-- maria's request is due soon rather than overdue from here on, so that
-- only failures end the runs below with an error (queue_operations tests
-- overdue requests)
UPDATE anonymize.requests SET due_at = now() + interval '1 hour'
 WHERE customer_id = :'maria';

-- jean is anonymized directly, before the queue comes to him
SELECT anonymized, customer_kind FROM anonymize.anonymize_customer(:'jean');

--
-- process_requests() must be called on its own, with sane arguments.
--
BEGIN;
CALL anonymize.process_requests();
\echo :SQLSTATE
ROLLBACK;
CREATE FUNCTION pg_temp.process() RETURNS void LANGUAGE plpgsql AS
$$ BEGIN CALL anonymize.process_requests(); END $$;
\set SHOW_CONTEXT never
SELECT pg_temp.process();
\echo :SQLSTATE
\set SHOW_CONTEXT errors
CALL anonymize.process_requests(batch_size => 0);
\echo :SQLSTATE
CALL anonymize.process_requests(batch_size => -1);
\echo :SQLSTATE
CALL anonymize.process_requests(max_batches => -1);
\echo :SQLSTATE
-- nothing was attempted
SELECT count(*) FROM anonymize.requests WHERE last_attempt_at IS NOT NULL;

--
-- A run in batches of 2, in the order of the view:
--   batch 1: maria (blocked), sam (blocked)
--   batch 2: fay (fails), acme (anonymized all the same)
--   batch 3: jean (already anonymized), gus (does not exist)
-- A blocked or failed request is tried once per run.
--
CALL anonymize.process_requests(batch_size => 2);
SELECT who, reference, state, outcome, blockers, attempted, closed,
       closed_by = current_user AS closed_by_me
  FROM requests ORDER BY who;
-- what the view shows now: the live blockers and the last attempt
SELECT n.who, p.blockers, p.last_attempt_at IS NOT NULL AS attempted
  FROM anonymize.pending_requests p JOIN requests n USING (request_id)
 ORDER BY p.due_at, n.who;
-- acme is anonymized with an audit row; fay's failure left her untouched,
-- history included; maria and sam are untouched
SELECT * FROM customer_state WHERE id IN (:'acme', :'fay', :'maria', :'sam')
 ORDER BY id;
SELECT * FROM rows_per_customer ORDER BY id;
SELECT customer_id, anonymized_by = current_user AS by_me, customer_kind,
       rows_deleted
  FROM anonymize.audit_log ORDER BY customer_id;

--
-- sam's subscription ends: the next run anonymizes him; maria is still
-- blocked and fay still fails, with her error recorded again.
--
UPDATE billing.subscriptions SET state = 'terminated' WHERE customer_id = :'sam';
SELECT n.who, p.blockers FROM anonymize.pending_requests p
  JOIN requests n USING (request_id) ORDER BY p.due_at, n.who;
CALL anonymize.process_requests(batch_size => 2);
SELECT who, state, outcome, blockers, attempted, closed FROM requests
 WHERE who IN ('maria', 'sam', 'fay') ORDER BY who;
SELECT customer_id, customer_kind, rows_deleted FROM anonymize.audit_log
 WHERE customer_id = :'sam';
SELECT * FROM customer_state WHERE id = :'sam';

-- The legal hold is lifted: fay is anonymized, her error is gone.
DROP TRIGGER legal_hold ON billing.sent_emails;
CALL anonymize.process_requests();
SELECT who, state, outcome, blockers, attempted, closed FROM requests
 WHERE who IN ('maria', 'fay') ORDER BY who;
SELECT * FROM rows_per_customer WHERE id = :'fay';
-- only maria is left
SELECT n.who FROM anonymize.pending_requests p JOIN requests n USING (request_id)
 ORDER BY p.due_at, n.who;

--
-- max_batches and time_budget limit a run.
--
INSERT INTO billing.customers (id, name, email)
SELECT ('dddddddd-0000-0000-0000-00000000001' || i)::uuid, 'Batch ' || i,
       'batch' || i || '@example.com'
  FROM generate_series(1, 6) i;
SELECT count(anonymize.request(id)) FROM billing.customers
 WHERE id::text LIKE 'dddddddd-0000-0000-0000-00000000001_';
-- in the order of their ids (requests of one statement have the same due
-- date, and a run takes them in the order of their random ids)
UPDATE anonymize.requests
   SET due_at = due_at + right(customer_id::text, 1)::int * interval '1 second'
 WHERE customer_id::text LIKE 'dddddddd-0000-0000-0000-00000000001_';
-- one batch of 2: maria (due first, blocked) and the first new customer
CALL anonymize.process_requests(batch_size => 2, max_batches => 1);
SELECT customer_id, state, outcome, last_attempt_at IS NOT NULL AS attempted
  FROM anonymize.requests
 WHERE customer_id::text LIKE 'dddddddd-0000-0000-0000-00000000001_'
 ORDER BY customer_id;
-- a spent time budget stops the run after its first batch
CALL anonymize.process_requests(batch_size => 2, time_budget => '0 seconds');
SELECT count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state = 'pending') AS pending
  FROM anonymize.requests
 WHERE customer_id::text LIKE 'dddddddd-0000-0000-0000-00000000001_';
-- a generous one does not
CALL anonymize.process_requests(batch_size => 2, max_batches => 10,
                                time_budget => '1 hour');
SELECT count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state = 'pending') AS pending
  FROM anonymize.requests
 WHERE customer_id::text LIKE 'dddddddd-0000-0000-0000-00000000001_';
-- every anonymized request has its audit row, and nothing else has one
SELECT count(*) AS done_without_audit FROM anonymize.requests r
 WHERE r.outcome = 'anonymized'
   AND NOT EXISTS (SELECT FROM anonymize.audit_log a WHERE a.customer_id = r.customer_id);
SELECT count(*) AS audit_without_done FROM anonymize.audit_log a
 WHERE NOT EXISTS (SELECT FROM anonymize.requests r
                    WHERE r.customer_id = a.customer_id AND r.state = 'done')
   AND a.customer_id <> :'jean';
-- only maria is left: one batch, in which she is still blocked
CALL anonymize.process_requests();

--
-- Privileges: request(), cancel_request() and process_requests() are not
-- granted to PUBLIC, and the queue table belongs to the extension.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_queue_clerk;
DROP ROLE IF EXISTS regress_queue_operator;
RESET client_min_messages;
CREATE ROLE regress_queue_clerk;
CREATE ROLE regress_queue_operator;
GRANT USAGE ON SCHEMA anonymize, billing
	TO regress_queue_clerk, regress_queue_operator;
GRANT SELECT ON billing.customers TO regress_queue_clerk;
\set kim 'dddddddd-0000-0000-0000-000000000021'
\set lou 'dddddddd-0000-0000-0000-000000000022'
INSERT INTO billing.customers (id, name, email) VALUES
	(:'kim', 'Kim Clerk', 'kim@example.com'),
	(:'lou', 'Lou Operator', 'lou@example.com');
INSERT INTO billing.webhook_notifications (customer_id, event) VALUES
	(:'lou', 'customer.created');
SELECT anonymize.request(:'kim') AS kim_request \gset

SET ROLE regress_queue_clerk;
SELECT anonymize.request(:'kim');
\echo :SQLSTATE
SELECT anonymize.cancel_request(:'kim');
\echo :SQLSTATE
CALL anonymize.process_requests();
\echo :SQLSTATE
SELECT count(*) FROM anonymize.requests;
\echo :SQLSTATE
SELECT count(*) FROM anonymize.pending_requests;
\echo :SQLSTATE
INSERT INTO anonymize.requests (customer_id, requested_at, requested_by, due_at)
VALUES (:'kim', now(), current_user, now());
\echo :SQLSTATE
UPDATE anonymize.requests SET state = 'cancelled';
\echo :SQLSTATE
DELETE FROM anonymize.requests;
\echo :SQLSTATE
RESET ROLE;
SELECT state FROM anonymize.requests WHERE request_id = :'kim_request';

-- The operator may queue, cancel and process, with the table privileges that
-- anonymize_customer() needs, but still not touch the queue table itself.
GRANT EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz),
	anonymize.cancel_request(uuid) TO regress_queue_operator;
GRANT EXECUTE ON PROCEDURE anonymize.process_requests(integer, integer, interval, boolean, boolean)
	TO regress_queue_operator;
GRANT SELECT, UPDATE ON billing.customers, billing.billing_addresses,
	billing.subscriptions, billing.invoices, billing.balance_entries
	TO regress_queue_operator;
GRANT SELECT, DELETE ON billing.sent_emails, billing.customer_activity,
	billing.subscriptions TO regress_queue_operator;
SET ROLE regress_queue_operator;
SELECT anonymize.request(:'lou', 'by the operator') AS lou_request \gset
SELECT anonymize.cancel_request(:'kim');
SELECT count(*) FROM anonymize.requests;
\echo :SQLSTATE
-- the erasure runs with the operator's rights: without DELETE on
-- webhook_notifications, lou's request fails and stays pending
CALL anonymize.process_requests();
RESET ROLE;
SELECT reference, requested_by, state, outcome,
       anonymize.describe_outcome(details) AS blockers, closed_by
  FROM anonymize.requests WHERE request_id = :'lou_request';
SELECT state, closed_by FROM anonymize.requests WHERE request_id = :'kim_request';
GRANT SELECT, DELETE ON billing.webhook_notifications TO regress_queue_operator;
SET ROLE regress_queue_operator;
CALL anonymize.process_requests();
RESET ROLE;
SELECT reference, requested_by, state, outcome,
       anonymize.describe_outcome(details) AS blockers, closed_by
  FROM anonymize.requests WHERE request_id = :'lou_request';
SELECT anonymized_by, customer_kind, rows_deleted FROM anonymize.audit_log
 WHERE customer_id = :'lou';
SELECT * FROM customer_state WHERE id = :'lou';

-- An empty queue: a run of no batch.
SELECT anonymize.cancel_request(:'maria');
CALL anonymize.process_requests();
SELECT state, count(*) FROM anonymize.requests GROUP BY state ORDER BY state;

-- clean up the roles (they are global)
DROP OWNED BY regress_queue_clerk, regress_queue_operator;
DROP ROLE regress_queue_clerk;
DROP ROLE regress_queue_operator;
