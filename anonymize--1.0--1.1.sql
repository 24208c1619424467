/* anonymize--1.0--1.1.sql: the erasure-request queue */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION anonymize UPDATE TO '1.1'" to load this file. \quit

/*
 * Erasure requests of customers that may still be active.  GDPR gives a
 * month to answer; anonymize.process_requests() anonymizes them as soon as
 * nothing blocks them.  Written only through the functions below, as the
 * extension owner, like the audit log.
 */
CREATE TABLE anonymize.requests (
	request_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id		uuid NOT NULL,
	requested_at	timestamptz NOT NULL,
	requested_by	name NOT NULL,
	reference		text,
	due_at			timestamptz NOT NULL,
	state			text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'done', 'cancelled')),
	last_attempt_at	timestamptz,
	blockers		text,
	outcome			text,
	closed_at		timestamptz,
	closed_by		name
);
COMMENT ON TABLE anonymize.requests IS
'Erasure requests; pending ones are anonymized by anonymize.process_requests() once nothing blocks them.';
CREATE UNIQUE INDEX requests_one_pending_per_customer ON anonymize.requests (customer_id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';
CREATE INDEX requests_pending_by_due_date ON anonymize.requests (due_at, request_id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';
SELECT pg_catalog.pg_extension_config_dump('anonymize.requests', '');
SELECT pg_catalog.pg_extension_config_dump('anonymize.requests_request_id_seq', '');

CREATE FUNCTION anonymize.request(customer_id uuid, reference text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'anonymize_request'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.request(uuid, text) IS
'Records an erasure request for the customer, due one month later, and returns its id; a customer with a pending request keeps that one.';

CREATE FUNCTION anonymize.cancel_request(customer_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'anonymize_cancel_request'
LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION anonymize.cancel_request(uuid) IS
'Cancels the pending erasure request of the customer; false when there was none.';

/* No SET clause: a procedure with one cannot commit.  It pins search_path itself. */
CREATE PROCEDURE anonymize.process_requests(batch_size integer DEFAULT 500,
	max_batches integer DEFAULT NULL, time_budget interval DEFAULT NULL)
AS 'MODULE_PATHNAME', 'anonymize_process_requests'
LANGUAGE C;
COMMENT ON PROCEDURE anonymize.process_requests(integer, integer, interval) IS
'Anonymizes the pending requests whose customers are eligible, batch after batch, committing each; blocked ones stay pending with their blockers.  Stops when none is left, after max_batches or when time_budget is spent.';

CREATE FUNCTION anonymize.current_blockers(customer_id uuid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
	RETURN (SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', b.reason,
				COALESCE(b.amount::text, b.rows::text)), '; ' ORDER BY b.rule_name)
			  FROM anonymize.blockers(customer_id) b);
EXCEPTION WHEN no_data_found THEN
	RETURN 'customer does not exist';
END
$$;
COMMENT ON FUNCTION anonymize.current_blockers(uuid) IS
'What blocks the anonymization of the customer now, as one line; NULL when nothing does.';

CREATE VIEW anonymize.pending_requests AS
SELECT r.request_id, r.customer_id, r.reference, r.requested_at, r.requested_by,
	   r.due_at,
	   r.due_at OPERATOR(pg_catalog.<) pg_catalog.now() AS overdue,
	   pg_catalog.ceil(EXTRACT(epoch FROM r.due_at OPERATOR(pg_catalog.-) pg_catalog.now())
		   OPERATOR(pg_catalog./) 86400)::integer AS days_left,
	   anonymize.current_blockers(r.customer_id) AS blockers,
	   r.last_attempt_at, r.outcome AS last_outcome,
	   r.blockers AS last_blockers_or_error
  FROM anonymize.requests r
 WHERE r.state OPERATOR(pg_catalog.=) 'pending'
 ORDER BY r.due_at, r.request_id;
COMMENT ON VIEW anonymize.pending_requests IS
'Pending erasure requests, overdue first, with what blocks each now, whether it is overdue, the days left before its due date (rounded up; zero or less once overdue), and the outcome of the last attempt (blocked, or failed with its error).';

REVOKE EXECUTE ON FUNCTION anonymize.request(uuid, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION anonymize.cancel_request(uuid) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE anonymize.process_requests(integer, integer, interval) FROM PUBLIC;
