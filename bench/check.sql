-- bench/check.sql
--
-- Sanity check before benchmarking (changes no data): every implementation
-- must do the same work.  For a fixed sample of customers of both profiles
-- (companies, individuals, a blank company, no billing address row, an
-- 'initialized' subscription, each kind of blocker, plus an unknown id),
-- each implementation runs in a subtransaction that is rolled back, and the
-- state it leaves (customer, billing address, row counts per table) and
-- what it returns are compared with the rules, written here once more as
-- plain SQL (bench.expected_state):
--
--   extension  anonymize.anonymize_customer  (skipped when not installed)
--   plpgsql    bench.anonymize_plpgsql
--   straight   bench.anonymize_straight
--   cte        bench.anonymize_cte  (no error when not eligible: must return
--              no row and change nothing instead)
--
-- Prints one row per mismatch, then a line
--   check: <customers> customers, <runs> runs, <n> mismatches
-- Usage: psql -X -d bench -f bench/check.sql   (after generate.sql and the
-- baselines)

\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- The state of a customer that anonymization may change.
CREATE OR REPLACE FUNCTION bench.snapshot(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS
$$
SELECT jsonb_build_object(
	'customer', (SELECT jsonb_build_object('name', c.name, 'email', c.email)
				   FROM billing.customers c WHERE c.id = p_id),
	'address', (SELECT to_jsonb(a) - 'customer_id'
				  FROM billing.billing_addresses a WHERE a.customer_id = p_id),
	'sent_emails', (SELECT count(*) FROM billing.sent_emails WHERE customer_id = p_id),
	'customer_activity', (SELECT count(*) FROM billing.customer_activity WHERE customer_id = p_id),
	'webhook_notifications', (SELECT count(*) FROM billing.webhook_notifications WHERE customer_id = p_id),
	'subscriptions', (SELECT count(*) FROM billing.subscriptions WHERE customer_id = p_id),
	'invoices', (SELECT count(*) FROM billing.invoices WHERE customer_id = p_id),
	'balance_entries', (SELECT count(*) FROM billing.balance_entries WHERE customer_id = p_id))
$$;

-- The rules, once more: the state an eligible customer must be left in.
CREATE OR REPLACE FUNCTION bench.expected_state(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS
$$
WITH a AS (
	SELECT *, coalesce(company ~ '[^[:space:]]', false) AS is_company
	  FROM billing.billing_addresses WHERE customer_id = p_id
), s AS (SELECT bench.snapshot(p_id) AS s)
SELECT s.s
	|| jsonb_build_object(
		'customer', jsonb_build_object(
			'name', (SELECT CASE WHEN a.is_company THEN a.company END FROM a),
			'email', NULL),
		'address', (SELECT (to_jsonb(a) - 'customer_id' - 'is_company')
						|| jsonb_build_object('first_name', NULL, 'last_name', NULL, 'phone', NULL)
						|| CASE WHEN a.is_company THEN '{}'::jsonb
								ELSE jsonb_build_object('address_line1', NULL, 'address_line2', NULL,
														'city', NULL, 'postal_code', NULL, 'region', NULL)
						   END
					  FROM a),
		'sent_emails', 0, 'customer_activity', 0, 'webhook_notifications', 0,
		'subscriptions', (SELECT count(*) FROM billing.subscriptions
						   WHERE customer_id = p_id AND state <> 'initialized'))
  FROM s
$$;

CREATE OR REPLACE FUNCTION bench.expected_result(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS
$$
SELECT jsonb_build_object(
	'anonymized', true,
	'customer_kind', CASE WHEN coalesce((SELECT company ~ '[^[:space:]]' FROM billing.billing_addresses
										   WHERE customer_id = p_id), false)
						  THEN 'company' ELSE 'individual' END,
	'rows_deleted', jsonb_build_object(
		'sent_emails', (SELECT count(*) FROM billing.sent_emails WHERE customer_id = p_id),
		'customer_activity', (SELECT count(*) FROM billing.customer_activity WHERE customer_id = p_id),
		'webhook_notifications', (SELECT count(*) FROM billing.webhook_notifications WHERE customer_id = p_id),
		'initialized_subscriptions', (SELECT count(*) FROM billing.subscriptions
									   WHERE customer_id = p_id AND state = 'initialized')))
$$;

-- Run one implementation on one customer and roll it back: returns
-- {"result": <first row as jsonb or null>, "state": <snapshot after>} or
-- {"error": <sqlstate>}.
CREATE OR REPLACE FUNCTION bench.try_rolled_back(p_function text, p_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS
$$
DECLARE
	v_result jsonb;
	v_state jsonb;
BEGIN
	BEGIN
		EXECUTE format('SELECT to_jsonb(r) FROM %s($1) AS r LIMIT 1', p_function)
		   INTO v_result USING p_id;
		v_state := bench.snapshot(p_id);
		RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZB001';
	EXCEPTION WHEN OTHERS THEN
		IF SQLSTATE = 'ZB001' THEN
			RETURN jsonb_build_object('result', v_result, 'state', v_state);
		END IF;
		RETURN jsonb_build_object('error', SQLSTATE, 'message', SQLERRM);
	END;
END
$$;

CREATE TEMP TABLE check_impl (impl text, fn text, errors_when_blocked boolean);
INSERT INTO check_impl VALUES
	('plpgsql', 'bench.anonymize_plpgsql', true),
	('straight', 'bench.anonymize_straight', true),
	('cte', 'bench.anonymize_cte', false);
INSERT INTO check_impl
SELECT 'extension', 'anonymize.anonymize_customer', true
 WHERE to_regprocedure('anonymize.anonymize_customer(uuid)') IS NOT NULL;

-- The sample: customer numbers 1..60 of 'history' cover every pattern
-- (i % 20 and the three blockers at i = 3/8, 23/28, 43/48), 1..20 of
-- 'nohistory', skipping any already anonymized; plus an unknown id.
CREATE TEMP TABLE check_sample AS
SELECT p.id, p.profile, p.i, p.eligible, true AS known
  FROM bench.population p JOIN billing.customers c ON c.id = p.id
 WHERE c.email IS NOT NULL
   AND ((p.profile = 'history' AND p.i <= 60) OR (p.profile = 'nohistory' AND p.i <= 20))
UNION ALL
SELECT md5('bench:unknown')::uuid, 'unknown', 0, false, false;

CREATE TEMP TABLE check_run AS
SELECT s.*, m.impl, m.errors_when_blocked,
	   bench.snapshot(s.id) AS before,
	   CASE WHEN s.eligible THEN bench.expected_state(s.id) END AS want_state,
	   CASE WHEN s.eligible THEN bench.expected_result(s.id) END AS want_result,
	   bench.try_rolled_back(m.fn, s.id) AS got
  FROM check_sample s CROSS JOIN check_impl m;

CREATE TEMP TABLE check_mismatch AS
SELECT impl, profile, i, id, problem, detail FROM (
	SELECT r.*,
		   CASE
			 WHEN r.eligible AND r.got ? 'error'
				THEN 'eligible customer refused'
			 WHEN r.eligible AND r.got -> 'state' <> r.want_state
				THEN 'wrong state after anonymization'
			 WHEN r.eligible AND r.got -> 'result' <> r.want_result
				THEN 'wrong result'
			 WHEN NOT r.eligible AND r.errors_when_blocked AND r.known
				  AND coalesce(r.got ->> 'error', '') <> '55000'
				THEN 'blocked customer not refused with 55000'
			 WHEN NOT r.known AND r.errors_when_blocked
				  AND coalesce(r.got ->> 'error', '') <> 'P0002'
				THEN 'unknown customer not refused with P0002'
			 WHEN NOT r.eligible AND NOT r.errors_when_blocked
				  AND (r.got ? 'error' OR r.got -> 'result' <> 'null'::jsonb
					   OR r.got -> 'state' <> r.before)
				THEN 'not eligible but something changed'
		   END AS problem,
		   jsonb_build_object('got', r.got, 'want_state', r.want_state,
							  'want_result', r.want_result)::text AS detail
	  FROM check_run r) x
 WHERE problem IS NOT NULL;

SELECT impl, profile, i, problem, left(detail, 2000) AS detail
  FROM check_mismatch ORDER BY impl, profile, i;

SELECT format('check: %s customers, %s runs (%s), %s mismatches',
			  (SELECT count(*) FROM check_sample),
			  (SELECT count(*) FROM check_run),
			  (SELECT string_agg(impl, ', ' ORDER BY impl) FROM check_impl),
			  (SELECT count(*) FROM check_mismatch)) AS summary \gset
\echo :summary
