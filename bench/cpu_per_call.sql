-- bench/cpu_per_call.sql
--
-- Server CPU time per call, measured inside one backend, for each
-- implementation: calls it on :k targets of each profile (default 3000,
-- fewer when the pool of eligible customers is too small to give each run
-- customers of its own), each call in a transaction of its own that is
-- rolled back (so the data stays as it is), and reads the backend's own user+system CPU time from
-- /proc/self/stat (Linux, superuser; 10 ms ticks) before and after.  Unlike
-- TPS or latency, CPU time hardly grows when other processes compete for
-- the cores, so this is the number to compare on a busy machine.  The cost
-- of the loop itself (a call of a no-op SQL function the same way) is
-- measured too and subtracted.  Implementations alternate over :rounds
-- rounds (default 3); the result is the median per implementation.
--
-- ctestmt is measured through bench.anonymize_ctestmt(), a PL/pgSQL
-- wrapper that runs the statement of bench.anonymize_cte() as static SQL,
-- so its plan is cached like a prepared statement's.
--
-- Usage: psql -X -d bench -v k=3000 -v rounds=3 -f bench/cpu_per_call.sql
-- (not inside a transaction block: it commits and rolls back).  Keeps the
-- result in bench.cpu_per_call (profile, impl, cpu_us, wall_us).

\set ON_ERROR_STOP on
\if :{?k}
\else
\set k 3000
\endif
\if :{?rounds}
\else
\set rounds 3
\endif
SET client_min_messages = warning;
-- psql does not substitute variables inside the DO block below.
SELECT set_config('bench.k', :'k', false), set_config('bench.rounds', :'rounds', false) \gset

-- The backend's CPU time so far, in microseconds.
CREATE OR REPLACE FUNCTION bench.backend_cpu_us() RETURNS bigint
LANGUAGE sql VOLATILE AS
$$
SELECT (split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint)	-- utime, stime
	   * 1000000 / 100	-- USER_HZ
  FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x
$$;

CREATE OR REPLACE FUNCTION bench.noop(uuid) RETURNS int
LANGUAGE sql VOLATILE AS 'SELECT 1';

-- Calls p_function on p_k targets of p_targets (the last ones but
-- p_offset), each call in a transaction of its own that is rolled back, and
-- records CPU and wall-clock microseconds per call in bench.cpu_runs.
CREATE TABLE IF NOT EXISTS bench.cpu_runs (
	round int, profile text, impl text, calls int, cpu_us numeric, wall_us numeric);
TRUNCATE bench.cpu_runs;

CREATE OR REPLACE PROCEDURE bench.time_calls(p_round int, p_profile text,
	p_impl text, p_function text, p_targets text, p_k int, p_offset int)
LANGUAGE plpgsql AS
$$
DECLARE
	ids uuid[];
	c0 bigint;
	t0 timestamptz;
	c1 bigint;
	t1 timestamptz;
	x record;
BEGIN
	-- The last targets (commit runs consume them from the first one on),
	-- skipping p_offset: every run gets customers no other run touched, so
	-- none pays for pruning the rolled-back rows of another.
	EXECUTE format('SELECT array_agg(id) FROM (SELECT t.id FROM %s t
					JOIN billing.customers c ON c.id = t.id AND c.email IS NOT NULL
					ORDER BY t.n DESC OFFSET $2 LIMIT $1) x', p_targets)
	   INTO ids USING p_k, p_offset;
	IF ids IS NULL THEN		-- no such profile in this data set
		RETURN;
	END IF;
	COMMIT;
	c0 := bench.backend_cpu_us();
	t0 := clock_timestamp();
	FOR i IN 1 .. cardinality(ids) LOOP
		EXECUTE format('SELECT * FROM %s($1)', p_function) INTO x USING ids[i];
		ROLLBACK;
	END LOOP;
	c1 := bench.backend_cpu_us();
	t1 := clock_timestamp();
	INSERT INTO bench.cpu_runs
	VALUES (p_round, p_profile, p_impl, cardinality(ids),
			(c1 - c0)::numeric / cardinality(ids),
			extract(epoch FROM t1 - t0) * 1000000 / cardinality(ids));
	COMMIT;
END
$$;

-- The statement of bench.anonymize_cte() with a cached plan, through
-- PL/pgSQL; generated from the function body so that it cannot drift.
DO $do$
DECLARE
	body text;
BEGIN
	SELECT replace(prosrc, 'p_customer_id', 'anonymize_ctestmt.p_customer_id') INTO body
	  FROM pg_proc WHERE oid = 'bench.anonymize_cte(uuid)'::regprocedure;
	EXECUTE format($f$
		CREATE OR REPLACE FUNCTION bench.anonymize_ctestmt(p_customer_id uuid)
		RETURNS TABLE (anonymized boolean, customer_kind text, rows_deleted jsonb)
		LANGUAGE plpgsql AS $b$
		#variable_conflict use_column
		BEGIN
			RETURN QUERY %s;
		END
		$b$ $f$, body);
END
$do$;

-- Implementations alternate, each round starting with the next one; round
-- 0 is a warm-up (plans, caches) and does not count.
DO $$
DECLARE
	impls text[] := ARRAY['ext', 'straight', 'plpgsql', 'cte', 'ctestmt', 'loop'];
	fns text[] := ARRAY['anonymize.anonymize_customer', 'bench.anonymize_straight',
						'bench.anonymize_plpgsql', 'bench.anonymize_cte',
						'bench.anonymize_ctestmt', 'bench.noop'];
	n int := 6;
	rounds int := current_setting('bench.rounds')::int;
	pool bigint;
	k int;
	j int;
BEGIN
	-- Every (round, implementation) gets k customers of its own.
	SELECT least((SELECT count(*) FROM bench.targets),
				 coalesce(nullif((SELECT count(*) FROM bench.targets_nohist), 0), 1000000000))
	  INTO pool;
	k := least(current_setting('bench.k')::int, pool / ((rounds + 1) * n));
	RAISE NOTICE 'cpu_per_call: % calls per run', k;
	FOR r IN 0 .. rounds LOOP
		FOR i IN 0 .. n - 1 LOOP
			j := (i + r) % n + 1;
			CALL bench.time_calls(r, 'history', impls[j], fns[j], 'bench.targets',
								  CASE WHEN r = 0 THEN least(k, 50) ELSE k END, (r * n + j - 1) * k);
			CALL bench.time_calls(r, 'nohistory', impls[j], fns[j], 'bench.targets_nohist',
								  CASE WHEN r = 0 THEN least(k, 50) ELSE k END, (r * n + j - 1) * k);
		END LOOP;
	END LOOP;
END
$$;

DROP TABLE IF EXISTS bench.cpu_per_call;
CREATE TABLE bench.cpu_per_call AS
WITH med AS (
	SELECT profile, impl,
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu_us) AS cpu_us,
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY wall_us) AS wall_us
	  FROM bench.cpu_runs WHERE round > 0 GROUP BY profile, impl
)
SELECT m.profile, m.impl,
	   round((m.cpu_us - l.cpu_us)::numeric, 1) AS cpu_us,
	   round((m.wall_us - l.wall_us)::numeric, 1) AS wall_us
  FROM med m JOIN med l ON l.profile = m.profile AND l.impl = 'loop'
 WHERE m.impl <> 'loop';

SELECT c.profile, c.impl, c.cpu_us, c.wall_us,
	   round(e.cpu_us / nullif(c.cpu_us, 0), 2) AS "ext cpu / this cpu"
  FROM bench.cpu_per_call c
  JOIN bench.cpu_per_call e ON e.profile = c.profile AND e.impl = 'ext'
 ORDER BY c.profile, array_position(ARRAY['ext', 'straight', 'plpgsql', 'cte', 'ctestmt'], c.impl);
