/* anonymize--1.2--1.3.sql: the request queue as a DBA runs it at night */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION anonymize UPDATE TO '1.3'" to load this file. \quit

/*
 * request() and process_requests() get new parameters, and so new
 * signatures: the old functions are dropped with their grants, and so is
 * the view pending_requests, made anew with new columns.  Grants made
 * here would count as the extension's initial privileges, which pg_dump
 * leaves out, so they are not copied: each is named, to be run again.
 */
DO $$
DECLARE
	lost record;
BEGIN
	FOR lost IN
		SELECT a.grantee::pg_catalog.regrole AS grantee, n.new_signature
		  FROM (VALUES ('anonymize.request(uuid,text)'::pg_catalog.regprocedure,
						'FUNCTION anonymize.request(uuid, text, timestamptz)'),
					   ('anonymize.process_requests(integer,integer,interval)',
						'PROCEDURE anonymize.process_requests(integer, integer, interval, boolean, boolean)'))
			   AS n (old, new_signature)
		  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) n.old,
			   pg_catalog.aclexplode(p.proacl) a
		 WHERE a.grantee OPERATOR(pg_catalog.<>) 0
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		RAISE WARNING 'the grant of EXECUTE on % to % is dropped with its old signature',
			lost.new_signature, lost.grantee
			USING HINT = pg_catalog.format('After the update, run: GRANT EXECUTE ON %s TO %s;',
										   lost.new_signature, lost.grantee);
	END LOOP;
	-- the view pending_requests is made anew, with new columns
	FOR lost IN
		SELECT a.grantee::pg_catalog.regrole AS grantee, a.privilege_type
		  FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
		 WHERE c.oid OPERATOR(pg_catalog.=) 'anonymize.pending_requests'::pg_catalog.regclass
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
		   AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
	LOOP
		RAISE WARNING 'the grant of % on view anonymize.pending_requests to % is dropped with the view',
			lost.privilege_type, lost.grantee
			USING HINT = pg_catalog.format('After the update, run: GRANT %s ON anonymize.pending_requests TO %s;',
										   lost.privilege_type, lost.grantee);
	END LOOP;
END
$$;

/*
 * Request ids that stay unique across databases: the queues of several
 * shards can be merged and reported together.  The ids of existing
 * requests are replaced, in the audit log too.
 */
DROP VIEW anonymize.pending_requests;
ALTER TABLE anonymize.requests ADD COLUMN new_request_id uuid;
UPDATE anonymize.requests SET new_request_id = pg_catalog.gen_random_uuid();
ALTER TABLE anonymize.audit_log ADD COLUMN new_request_id uuid;
UPDATE anonymize.audit_log a SET new_request_id = r.new_request_id
  FROM anonymize.requests r
 WHERE r.request_id OPERATOR(pg_catalog.=) a.request_id;
-- the old ids stay, so that tickets and receipts that quote them still match
ALTER TABLE anonymize.requests ADD COLUMN legacy_request_id bigint;
UPDATE anonymize.requests SET legacy_request_id = request_id;
ALTER TABLE anonymize.audit_log ADD COLUMN legacy_request_id bigint;
UPDATE anonymize.audit_log SET legacy_request_id = request_id;
COMMENT ON COLUMN anonymize.requests.legacy_request_id IS
'The bigint id of a request recorded before version 1.3 (as request() returned it then); NULL for later ones.';
COMMENT ON COLUMN anonymize.audit_log.legacy_request_id IS
'The bigint request id of an erasure recorded before version 1.3; NULL otherwise.';
ALTER TABLE anonymize.audit_log DROP COLUMN request_id;
ALTER TABLE anonymize.audit_log RENAME COLUMN new_request_id TO request_id;
-- (out of the extension first, which also takes it off the list of its
-- configuration to dump; dropping the column drops the sequence)
ALTER EXTENSION anonymize DROP SEQUENCE anonymize.requests_request_id_seq;
ALTER TABLE anonymize.requests DROP COLUMN request_id;
ALTER TABLE anonymize.requests RENAME COLUMN new_request_id TO request_id;
ALTER TABLE anonymize.requests
	ALTER COLUMN request_id SET DEFAULT pg_catalog.gen_random_uuid(),
	ALTER COLUMN request_id SET NOT NULL,
	ADD PRIMARY KEY (request_id);
CREATE INDEX requests_pending_by_due_date ON anonymize.requests (due_at, request_id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';
COMMENT ON COLUMN anonymize.audit_log.request_id IS
'The request of anonymize.requests the erasure answered; NULL when anonymize_customer() was called directly.';
COMMENT ON COLUMN anonymize.requests.request_id IS
'Id of the request, as anonymize.request() returns it; a uuid, unique across databases.';

/*
 * Structured outcomes and retries: the last attempt's blockers or error as
 * jsonb, the attempts, and when a blocked request is tried again.
 */
ALTER TABLE anonymize.requests
	ADD COLUMN attempts integer NOT NULL DEFAULT 0,
	ADD COLUMN next_attempt_at timestamptz,
	ADD COLUMN details jsonb;
UPDATE anonymize.requests
   SET attempts = CASE WHEN last_attempt_at IS NULL THEN 0 ELSE 1 END,
	   details = CASE WHEN blockers IS NOT NULL
				 THEN pg_catalog.jsonb_build_object('message', blockers) END;
ALTER TABLE anonymize.requests DROP COLUMN blockers;
COMMENT ON COLUMN anonymize.requests.attempts IS
'How many times process_requests() or process_request_batch() tried the request.';
COMMENT ON COLUMN anonymize.requests.next_attempt_at IS
'For a blocked request: the earliest start of a run that tries it again (the attempt''s run start plus anonymize.retry_interval); NULL otherwise.';
COMMENT ON COLUMN anonymize.requests.details IS
'What the last attempt found, as jsonb: {"blockers": [{"rule", "reason", "relation", "rows" or "amount"}, ...]} for a blocked request, {"sqlstate", "message"} for a failed or busy one; NULL otherwise.  Requests tried before version 1.3 have {"message": text}.';
COMMENT ON COLUMN anonymize.requests.due_at IS
'When the answer is due: anonymize.request_deadline after the first request, or the due_at given to request(); later when extended with extend_request().';
COMMENT ON COLUMN anonymize.requests.reference IS
'Free text given to the first anonymize.request(), such as a ticket number; may be NULL.  anonymize.request_history holds every request''s.';

/*
 * Every request counts: each call of request() and extend_request() is
 * kept, with its reference or reason.
 */
CREATE TABLE anonymize.request_history (
	request_id		uuid NOT NULL,
	event			text NOT NULL
		CHECK (event OPERATOR(pg_catalog.=) ANY ('{requested,extended}')),
	event_at		timestamptz NOT NULL,
	event_by		name NOT NULL,
	reference		text,
	due_at			timestamptz NOT NULL,
	reason			text,
	CHECK ((event OPERATOR(pg_catalog.=) 'extended') = (reason IS NOT NULL))
);
CREATE INDEX request_history_request_id ON anonymize.request_history (request_id, event_at);
SELECT pg_catalog.pg_extension_config_dump('anonymize.request_history', '');
INSERT INTO anonymize.request_history
	(request_id, event, event_at, event_by, reference, due_at)
SELECT request_id, 'requested', requested_at, requested_by, reference, due_at
  FROM anonymize.requests;
COMMENT ON TABLE anonymize.request_history IS
'Every call of anonymize.request() (a customer may ask again while a request is pending) and of anonymize.extend_request(), per request.';
COMMENT ON COLUMN anonymize.request_history.request_id IS
'The request of anonymize.requests.';
COMMENT ON COLUMN anonymize.request_history.event IS
'requested (anonymize.request()) or extended (anonymize.extend_request()).';
COMMENT ON COLUMN anonymize.request_history.event_at IS
'Start of the transaction that recorded the event.';
COMMENT ON COLUMN anonymize.request_history.event_by IS
'current_user of the caller.';
COMMENT ON COLUMN anonymize.request_history.reference IS
'For requested: the reference given, such as a ticket number; may be NULL.';
COMMENT ON COLUMN anonymize.request_history.due_at IS
'The due date of the request after the event: the due date a first request set, the one a repeated request left, or the one an extension set.';
COMMENT ON COLUMN anonymize.request_history.reason IS
'For extended: why (GDPR Art. 12(3) requires the data subject to be told why).';

DROP FUNCTION anonymize.request(uuid, text);
CREATE FUNCTION anonymize.request(customer_id uuid, reference text DEFAULT NULL,
	due_at timestamptz DEFAULT NULL)
RETURNS uuid
AS 'MODULE_PATHNAME', 'anonymize_request'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.request(uuid, text, timestamptz) IS
'Records an erasure request for the customer, due at due_at (default: anonymize.request_deadline from now), and returns its id; a customer with a pending request keeps that one and its due date, and the new reference is added to its history.';
REVOKE EXECUTE ON FUNCTION anonymize.request(uuid, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION anonymize.extend_request(customer_id uuid, until timestamptz, reason text)
RETURNS uuid
AS 'MODULE_PATHNAME', 'anonymize_extend_request'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.extend_request(uuid, timestamptz, text) IS
'Moves the due date of the customer''s pending request to until, at most two months after its first due date (GDPR Art. 12(3)), records the reason and returns the request''s id.';
REVOKE EXECUTE ON FUNCTION anonymize.extend_request(uuid, timestamptz, text) FROM PUBLIC;

/*
 * Runs: one row per call of process_requests() or process_request_batch(),
 * written as the run goes, so that an interrupted run shows what it did.
 */
CREATE TABLE anonymize.runs (
	run_id			uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	procedure		text NOT NULL
		CHECK (procedure OPERATOR(pg_catalog.=) ANY ('{process_requests,process_request_batch}')),
	started_at		timestamptz NOT NULL,
	ended_at		timestamptz,
	run_by			name NOT NULL,
	backend_pid		integer NOT NULL,
	batches			integer NOT NULL DEFAULT 0,
	anonymized		bigint NOT NULL DEFAULT 0,
	already_erased	bigint NOT NULL DEFAULT 0,
	unknown_customers bigint NOT NULL DEFAULT 0,
	blocked			bigint NOT NULL DEFAULT 0,
	busy			bigint NOT NULL DEFAULT 0,
	failed			bigint NOT NULL DEFAULT 0,
	pending			bigint,
	overdue			bigint
);
CREATE INDEX runs_started_at ON anonymize.runs (started_at);
SELECT pg_catalog.pg_extension_config_dump('anonymize.runs', '');
COMMENT ON TABLE anonymize.runs IS
'One row per call of process_requests() or process_request_batch(), updated at every batch commit; rows older than anonymize.run_retention are deleted when a run starts.';
COMMENT ON COLUMN anonymize.runs.run_id IS 'Id of the run.';
COMMENT ON COLUMN anonymize.runs.procedure IS 'process_requests or process_request_batch.';
COMMENT ON COLUMN anonymize.runs.started_at IS 'When the run started.';
COMMENT ON COLUMN anonymize.runs.ended_at IS 'When the run ended; NULL while it runs, or if it was interrupted (cancelled, crashed).';
COMMENT ON COLUMN anonymize.runs.run_by IS 'current_user of the caller.';
COMMENT ON COLUMN anonymize.runs.backend_pid IS 'Process id of the backend that ran it.';
COMMENT ON COLUMN anonymize.runs.batches IS 'Batches it committed (process_request_batch: 1, or 0 when it found no request to try).';
COMMENT ON COLUMN anonymize.runs.anonymized IS 'Requests whose customer it anonymized.';
COMMENT ON COLUMN anonymize.runs.already_erased IS 'Requests it closed because the customer had already been anonymized.';
COMMENT ON COLUMN anonymize.runs.unknown_customers IS 'Requests it closed because the customer does not exist.';
COMMENT ON COLUMN anonymize.runs.blocked IS 'Requests it left pending because something blocks the customer.';
COMMENT ON COLUMN anonymize.runs.busy IS 'Requests it left pending because another transaction held the customer''s rows.';
COMMENT ON COLUMN anonymize.runs.failed IS 'Requests whose erasure failed with an error.';
COMMENT ON COLUMN anonymize.runs.pending IS 'Pending requests when it ended.';
COMMENT ON COLUMN anonymize.runs.overdue IS 'Pending requests past their due date when it ended.';

DROP PROCEDURE anonymize.process_requests(integer, integer, interval);
/* No SET clause: a procedure with one cannot commit.  It pins search_path itself. */
CREATE PROCEDURE anonymize.process_requests(batch_size integer DEFAULT 500,
	max_batches integer DEFAULT NULL, time_budget interval DEFAULT NULL,
	fail_on_error boolean DEFAULT true, quiet boolean DEFAULT false)
AS 'MODULE_PATHNAME', 'anonymize_process_requests'
LANGUAGE C;
COMMENT ON PROCEDURE anonymize.process_requests(integer, integer, interval, boolean, boolean) IS
'Anonymizes the pending requests whose customers are eligible, batch after batch, committing each; blocked ones stay pending with their blockers and are tried again after anonymize.retry_interval.  Stops when none is left, after max_batches or when time_budget is spent.  Ends with an error when requests failed or are overdue, unless fail_on_error is false; quiet drops the NOTICE per batch.';
REVOKE EXECUTE ON PROCEDURE anonymize.process_requests(integer, integer, interval, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION anonymize.process_request_batch(batch_size integer,
	not_tried_since timestamptz DEFAULT NULL,
	OUT run_id uuid, OUT claimed integer, OUT anonymized integer,
	OUT already_erased integer, OUT unknown_customers integer,
	OUT blocked integer, OUT busy integer, OUT failed integer,
	OUT pending bigint, OUT overdue bigint)
AS 'MODULE_PATHNAME', 'anonymize_process_request_batch'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.process_request_batch(integer, timestamptz) IS
'Runs one batch of the queue in the caller''s transaction and returns its counts, for tools that can only issue SELECT; requests tried at or after not_tried_since (default: the start of the transaction) are left for later, so that a loop of calls passing its start time tries each request once.';
REVOKE EXECUTE ON FUNCTION anonymize.process_request_batch(integer, timestamptz) FROM PUBLIC;

/* The last attempt's outcome, readable. */
CREATE FUNCTION anonymize.describe_outcome(details jsonb) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
SELECT CASE
	WHEN details OPERATOR(pg_catalog.?) 'blockers' THEN
		(SELECT pg_catalog.string_agg(CASE
				WHEN b OPERATOR(pg_catalog.?) 'amount' THEN pg_catalog.format(
					'%s: a balance of %s in %s (rule %s)', b OPERATOR(pg_catalog.->>) 'reason',
					b OPERATOR(pg_catalog.->>) 'amount', b OPERATOR(pg_catalog.->>) 'relation',
					b OPERATOR(pg_catalog.->>) 'rule')
				ELSE pg_catalog.format('%s: %s %s of %s (rule %s)',
					b OPERATOR(pg_catalog.->>) 'reason', b OPERATOR(pg_catalog.->>) 'rows',
					CASE WHEN (b OPERATOR(pg_catalog.->>) 'rows') OPERATOR(pg_catalog.=) '1'
						 THEN 'row' ELSE 'rows' END,
					b OPERATOR(pg_catalog.->>) 'relation', b OPERATOR(pg_catalog.->>) 'rule')
				END, '; ')
		   FROM pg_catalog.jsonb_array_elements(details OPERATOR(pg_catalog.->) 'blockers') b)
	WHEN details OPERATOR(pg_catalog.?) 'sqlstate' THEN
		pg_catalog.format('error %s: %s', details OPERATOR(pg_catalog.->>) 'sqlstate',
						  details OPERATOR(pg_catalog.->>) 'message')
	ELSE details OPERATOR(pg_catalog.->>) 'message'
END
$$;
COMMENT ON FUNCTION anonymize.describe_outcome(jsonb) IS
'The details of a request''s last attempt (anonymize.requests.details) as one line: each blocker with its reason, rows or amount, relation and rule; or the error with its SQLSTATE.';

CREATE VIEW anonymize.pending_requests AS
SELECT r.request_id, r.customer_id, r.reference,
	   ARRAY(SELECT h.reference FROM anonymize.request_history h
			  WHERE h.request_id OPERATOR(pg_catalog.=) r.request_id
				AND h.event OPERATOR(pg_catalog.=) 'requested'
				AND h.reference IS NOT NULL
			  ORDER BY h.event_at) AS "references",
	   r.requested_at, r.requested_by, r.due_at,
	   (SELECT pg_catalog.count(*) FROM anonymize.request_history h
		 WHERE h.request_id OPERATOR(pg_catalog.=) r.request_id
		   AND h.event OPERATOR(pg_catalog.=) 'extended') AS extensions,
	   r.due_at OPERATOR(pg_catalog.<) pg_catalog.now() AS overdue,
	   pg_catalog.ceil(EXTRACT(epoch FROM r.due_at OPERATOR(pg_catalog.-) pg_catalog.now())
		   OPERATOR(pg_catalog./) 86400)::integer AS days_left,
	   anonymize.current_blockers(r.customer_id) AS blockers,
	   r.attempts, r.last_attempt_at, r.next_attempt_at, r.outcome AS last_outcome,
	   anonymize.describe_outcome(r.details) AS last_blockers_or_error,
	   r.details AS last_details
  FROM anonymize.requests r
 WHERE r.state OPERATOR(pg_catalog.=) 'pending'
 ORDER BY r.due_at, r.request_id;
COMMENT ON VIEW anonymize.pending_requests IS
'Pending erasure requests, overdue first, with every reference, what blocks each now, whether it is overdue, the days left before its due date (rounded up; zero or less once overdue), and the attempts and outcome of the last one.';
COMMENT ON COLUMN anonymize.pending_requests.request_id IS 'Id of the request.';
COMMENT ON COLUMN anonymize.pending_requests.customer_id IS 'Id of the customer to anonymize.';
COMMENT ON COLUMN anonymize.pending_requests.reference IS 'The reference of the first request, such as a ticket number.';
COMMENT ON COLUMN anonymize.pending_requests."references" IS 'The references of every request of the customer while this one was pending, oldest first (NULL ones left out).';
COMMENT ON COLUMN anonymize.pending_requests.requested_at IS 'When the first request was recorded.';
COMMENT ON COLUMN anonymize.pending_requests.requested_by IS 'current_user of the caller of the first anonymize.request().';
COMMENT ON COLUMN anonymize.pending_requests.due_at IS 'When the answer is due, extensions included.';
COMMENT ON COLUMN anonymize.pending_requests.extensions IS 'How many times the due date was extended with anonymize.extend_request().';
COMMENT ON COLUMN anonymize.pending_requests.overdue IS 'True once due_at has passed.';
COMMENT ON COLUMN anonymize.pending_requests.days_left IS 'Days until due_at, rounded up; zero or less once overdue.';
COMMENT ON COLUMN anonymize.pending_requests.blockers IS 'What blocks the customer now (anonymize.current_blockers()); NULL when nothing does; "cannot check: ..." when the mapping or the privileges do not allow to tell.';
COMMENT ON COLUMN anonymize.pending_requests.attempts IS 'How many times a run tried the request.';
COMMENT ON COLUMN anonymize.pending_requests.last_attempt_at IS 'When a run last tried the request; NULL before the first attempt.';
COMMENT ON COLUMN anonymize.pending_requests.next_attempt_at IS 'For a blocked request: the earliest start of a run that tries it again; NULL when the next run does.';
COMMENT ON COLUMN anonymize.pending_requests.last_outcome IS 'Result of the last attempt: blocked, busy or failed; NULL before the first attempt.';
COMMENT ON COLUMN anonymize.pending_requests.last_blockers_or_error IS 'What the last attempt found, readable (anonymize.describe_outcome() of last_details).';
COMMENT ON COLUMN anonymize.pending_requests.last_details IS 'What the last attempt found, as jsonb (anonymize.requests.details).';

/*
 * Monitoring: the state of the queue and the last run in one row, for a
 * check that alerts (see the README).
 */
CREATE FUNCTION anonymize.queue_status(
	OUT pending bigint, OUT overdue bigint, OUT oldest_due_at timestamptz,
	OUT blocked bigint, OUT failed bigint, OUT busy bigint, OUT not_tried bigint,
	OUT last_run_id uuid, OUT last_run_started_at timestamptz,
	OUT last_run_ended_at timestamptz, OUT last_run_by name,
	OUT last_run_batches integer, OUT last_run_anonymized bigint,
	OUT last_run_blocked bigint, OUT last_run_failed bigint,
	OUT last_run_busy bigint, OUT last_run_already_erased bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
SELECT q.pending, q.overdue, q.oldest_due_at, q.blocked, q.failed, q.busy, q.not_tried,
	   l.run_id, l.started_at, l.ended_at, l.run_by, l.batches, l.anonymized,
	   l.blocked, l.failed, l.busy, l.already_erased
  FROM (SELECT pg_catalog.count(*) AS pending,
			   pg_catalog.count(*) FILTER (WHERE r.due_at OPERATOR(pg_catalog.<) pg_catalog.now()) AS overdue,
			   pg_catalog.min(r.due_at) AS oldest_due_at,
			   pg_catalog.count(*) FILTER (WHERE r.outcome OPERATOR(pg_catalog.=) 'blocked') AS blocked,
			   pg_catalog.count(*) FILTER (WHERE r.outcome OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE r.outcome OPERATOR(pg_catalog.=) 'busy') AS busy,
			   pg_catalog.count(*) FILTER (WHERE r.outcome IS NULL) AS not_tried
		  FROM anonymize.requests r
		 WHERE r.state OPERATOR(pg_catalog.=) 'pending') q
  LEFT JOIN LATERAL (SELECT * FROM anonymize.runs ORDER BY started_at DESC LIMIT 1) l ON true
$$;
COMMENT ON FUNCTION anonymize.queue_status() IS
'The queue in one row: pending requests, overdue ones, the oldest due date, how many the last attempt left blocked, failed or busy and how many were never tried; and the last run (start, end, by whom, counts).';
REVOKE EXECUTE ON FUNCTION anonymize.queue_status() FROM PUBLIC;

/*
 * Vacuum after erasure: the erased values stay in dead tuples, of the
 * tables and of their indexes, until VACUUM removes them, and in the
 * planner's statistics until ANALYZE.  INDEX_CLEANUP ON, because VACUUM
 * may otherwise skip the indexes when few rows are dead.
 */
CREATE FUNCTION anonymize.vacuum_statements(one_statement boolean DEFAULT false)
RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
WITH changed AS (
	SELECT c.relation_schema, c.relation_name FROM anonymize.customer_relation c
	UNION
	SELECT s.relation_schema, s.relation_name FROM anonymize.scopes s
	 WHERE EXISTS (SELECT FROM anonymize.rules r
					WHERE r.scope OPERATOR(pg_catalog.=) s.scope_name
					  AND r.kind OPERATOR(pg_catalog.=) ANY ('{purge,erase}'))),
relations AS (
	SELECT pg_catalog.format('%I.%I', relation_schema, relation_name) AS relation
	  FROM changed)
SELECT 'VACUUM (INDEX_CLEANUP ON, ANALYZE) ' OPERATOR(pg_catalog.||) relation
  FROM relations WHERE NOT one_statement
UNION ALL
SELECT 'VACUUM (INDEX_CLEANUP ON, ANALYZE) ' OPERATOR(pg_catalog.||)
	   pg_catalog.string_agg(relation, ', ' ORDER BY relation)
  FROM relations WHERE one_statement HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0
ORDER BY 1
$$;
COMMENT ON FUNCTION anonymize.vacuum_statements(boolean) IS
'One VACUUM (INDEX_CLEANUP ON, ANALYZE) statement per relation that erasures change (the customer relation and the relations of scopes with purge or erase rules), or with one_statement a single VACUUM of them all (for a pg_cron job), to remove the erased values from dead tuples, indexes and statistics; run them with psql''s \gexec or from a scheduled job.';
