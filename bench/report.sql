-- bench/report.sql
--
-- Turns the raw results of bench/run.sh into the printed tables.  Run by
-- run.sh in a scratch database (bench_results) of the throwaway cluster:
--
--   psql -X -d bench_results -v dir=<results dir> -v mode=main|scale -f bench/report.sql
--
-- Reads from <dir>:
--   runs.tsv  one line per pgbench run: scale, variant (commit|rollback),
--             round, profile (history|nohistory), impl (ext|straight|plpgsql|cte|ctestmt),
--             clients, transactions, failed, tps, latency avg ms, call avg ms
--             (the anonymize statement alone, from pgbench -r), WAL bytes
--             (pg_current_wal_lsn() difference; commit runs only), label
--   tx.tsv    one line per transaction: label, latency in microseconds
--             (pgbench --log)
--   elig.tsv  scale, method, reps, best ms, median ms, eligible count
--   cpu.tsv   scale, profile, impl, CPU us per call, wall us per call
--             (bench/cpu_per_call.sql)
--   callgrind.tsv  scale, profile, impl, instructions per call (CALLGRIND=1)
--
-- TPS is the median over rounds; a ratio is the median of the per-round
-- ratios (the implementations of one round run back to back, so a slow
-- phase of the machine hits all of them); latency percentiles pool every
-- transaction of every round.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
\pset footer off
\pset null '-'

DROP TABLE IF EXISTS runs, tx, elig, cpu, cg;
CREATE TABLE runs (
	scale bigint, variant text, round int, profile text, impl text,
	clients int, transactions bigint, failed bigint, tps numeric,
	lat_ms numeric, call_ms numeric, wal_bytes numeric, label text);
CREATE TABLE tx (label text, us bigint);
CREATE TABLE elig (scale bigint, method text, reps int, best_ms numeric,
				   median_ms numeric, eligible bigint);
CREATE TABLE cpu (scale bigint, profile text, impl text, cpu_us numeric, wall_us numeric);
CREATE TABLE cg (scale bigint, profile text, impl text, instructions bigint);

-- Server-side COPY (the files belong to postgres, who runs the server).
\set runs_file :dir/runs.tsv
\set tx_file :dir/tx.tsv
\set elig_file :dir/elig.tsv
\set cpu_file :dir/cpu.tsv
\set cg_file :dir/callgrind.tsv
COPY runs FROM :'runs_file' WITH (FORMAT text, NULL '');
COPY tx FROM :'tx_file';
COPY elig FROM :'elig_file' WITH (FORMAT text, NULL '');
COPY cpu FROM :'cpu_file' WITH (FORMAT text, NULL '');
SELECT (pg_stat_file(:'cg_file', true)).size IS NOT NULL AS have_cg_file \gset
\if :have_cg_file
COPY cg FROM :'cg_file' WITH (FORMAT text, NULL '');
\endif
CREATE INDEX ON tx (label);
ANALYZE runs, tx, elig;

CREATE FUNCTION pg_temp.impl_order(text) RETURNS int LANGUAGE sql IMMUTABLE
AS $$ SELECT array_position(ARRAY['ext', 'straight', 'plpgsql', 'cte', 'ctestmt'], $1) $$;

-- Percentiles per (scale, variant, profile, clients, impl).
CREATE TEMP TABLE lat AS
SELECT r.scale, r.variant, r.profile, r.clients, r.impl,
	   round(avg(t.us) / 1000.0, 3) AS avg_ms,
	   round((percentile_cont(0.50) WITHIN GROUP (ORDER BY t.us) / 1000.0)::numeric, 3) AS p50_ms,
	   round((percentile_cont(0.95) WITHIN GROUP (ORDER BY t.us) / 1000.0)::numeric, 3) AS p95_ms,
	   round((percentile_cont(0.99) WITHIN GROUP (ORDER BY t.us) / 1000.0)::numeric, 3) AS p99_ms,
	   count(*) AS n
  FROM runs r JOIN tx t USING (label)
 GROUP BY 1, 2, 3, 4, 5;

CREATE TEMP TABLE per_impl AS
SELECT r.scale, r.variant, r.profile, r.clients, r.impl,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.tps) AS tps,
	   round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.call_ms))::numeric, 3) AS call_ms,
	   sum(r.transactions) AS transactions, sum(r.failed) AS failed,
	   sum(r.wal_bytes) AS wal_bytes
  FROM runs r GROUP BY 1, 2, 3, 4, 5;

-- Ratio of implementation a over b in the same round, median over rounds.
CREATE FUNCTION pg_temp.ratio(p_scale bigint, p_variant text, p_profile text,
							  p_clients int, a text, b text) RETURNS numeric
LANGUAGE sql STABLE AS $$
SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x.tps / y.tps))::numeric, 2)
  FROM runs x JOIN runs y USING (scale, variant, round, profile, clients)
 WHERE x.scale = p_scale AND x.variant = p_variant AND x.profile = p_profile
   AND x.clients = p_clients AND x.impl = a AND y.impl = b AND y.tps > 0
$$;

\if :{?mode}
\else
\set mode main
\endif
SELECT :'mode' = 'scale' AS scale_mode \gset

\if :scale_mode
-------------------------------------------------------------------------------
\echo
\echo '== Per-call latency at two data set sizes (1 client; ms per transaction) =='
\echo 'ratio = large / small; 1.00 means the cost of a call does not grow with the data set.'
WITH s AS (SELECT min(scale) AS small, max(scale) AS large FROM runs)
SELECT a.variant, a.impl,
	   a.avg_ms AS small_avg, b.avg_ms AS large_avg,
	   round(b.avg_ms / nullif(a.avg_ms, 0), 2) AS ratio_avg,
	   a.p50_ms AS small_p50, b.p50_ms AS large_p50,
	   round(b.p50_ms / nullif(a.p50_ms, 0), 2) AS ratio_p50,
	   a.p99_ms AS small_p99, b.p99_ms AS large_p99,
	   ca.call_ms AS small_call, cb.call_ms AS large_call,
	   round(cb.call_ms / nullif(ca.call_ms, 0), 2) AS ratio_call
  FROM s
  JOIN lat a ON a.scale = s.small
  JOIN lat b ON b.scale = s.large AND (b.variant, b.profile, b.clients, b.impl)
										= (a.variant, a.profile, a.clients, a.impl)
  JOIN per_impl ca ON (ca.scale, ca.variant, ca.profile, ca.clients, ca.impl)
					  = (a.scale, a.variant, a.profile, a.clients, a.impl)
  JOIN per_impl cb ON (cb.scale, cb.variant, cb.profile, cb.clients, cb.impl)
					  = (b.scale, b.variant, b.profile, b.clients, b.impl)
 ORDER BY a.variant, pg_temp.impl_order(a.impl);

\echo
\echo '== WAL bytes per anonymized customer (commit runs) =='
SELECT scale, impl, sum(transactions) AS customers,
	   round(sum(wal_bytes) / nullif(sum(transactions), 0)) AS wal_bytes_per_customer
  FROM per_impl WHERE variant = 'commit'
 GROUP BY scale, impl ORDER BY scale, pg_temp.impl_order(impl);

\else
-------------------------------------------------------------------------------
\echo
\echo '== Throughput (TPS, median over rounds) and ratios (median of per-round ratios) =='
\echo 'history = typical customer (43 history rows); nohistory = customer + address only.'
\echo 'commit = each transaction anonymizes a new customer; rollback = BEGIN ... ROLLBACK.'
\echo 'ext = anonymize.anonymize_customer(); straight = bench.anonymize_straight() (hand-written, fewer guarantees);'
\echo 'plpgsql = bench.anonymize_plpgsql() (same guarantees); cte = bench.anonymize_cte()'
\echo '(SQL function, planned at every call); ctestmt = the same CTE statement prepared by pgbench.'
SELECT p.profile, p.variant, p.clients,
	   round(max(p.tps) FILTER (WHERE impl = 'ext')) AS ext_tps,
	   round(max(p.tps) FILTER (WHERE impl = 'straight')) AS straight_tps,
	   round(max(p.tps) FILTER (WHERE impl = 'plpgsql')) AS plpgsql_tps,
	   round(max(p.tps) FILTER (WHERE impl = 'cte')) AS cte_tps,
	   round(max(p.tps) FILTER (WHERE impl = 'ctestmt')) AS ctestmt_tps,
	   pg_temp.ratio(p.scale, p.variant, p.profile, p.clients, 'ext', 'straight') AS "ext/straight",
	   pg_temp.ratio(p.scale, p.variant, p.profile, p.clients, 'ext', 'plpgsql') AS "ext/plpgsql",
	   pg_temp.ratio(p.scale, p.variant, p.profile, p.clients, 'ext', 'cte') AS "ext/cte",
	   pg_temp.ratio(p.scale, p.variant, p.profile, p.clients, 'ext', 'ctestmt') AS "ext/ctestmt",
	   sum(p.failed) AS failed
  FROM per_impl p
 GROUP BY p.scale, p.profile, p.variant, p.clients
 ORDER BY p.profile, p.variant, p.clients DESC;

\echo
\echo '== Latency per transaction (ms, every transaction of every round, pgbench --log) =='
\echo 'call = average of the anonymize statement alone (pgbench -r), without the target pick.'
SELECT l.profile, l.variant, l.clients, l.impl, l.n AS transactions,
	   l.avg_ms AS avg, l.p50_ms AS p50, l.p95_ms AS p95, l.p99_ms AS p99,
	   p.call_ms AS call
  FROM lat l JOIN per_impl p USING (scale, variant, profile, clients, impl)
 ORDER BY l.profile, l.variant, l.clients DESC, pg_temp.impl_order(l.impl);

\echo
\echo '== WAL bytes per anonymized customer (commit runs, pg_current_wal_lsn() difference / transactions) =='
SELECT profile, impl, sum(transactions) AS customers,
	   round(sum(wal_bytes) / nullif(sum(transactions), 0)) AS wal_bytes_per_customer
  FROM per_impl WHERE variant = 'commit'
 GROUP BY profile, impl ORDER BY profile, pg_temp.impl_order(impl);

\echo
\echo '== Scaling: 2 clients vs 1 client (TPS ratio, median of per-round ratios; 2.00 = perfect on 2 cores) =='
SELECT r.profile, r.variant, r.impl,
	   round(max(p1.tps)) AS tps_1_client, round(max(p2.tps)) AS tps_2_clients,
	   round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.tps / r1.tps))::numeric, 2) AS "2c/1c"
  FROM runs r
  JOIN runs r1 ON (r1.scale, r1.variant, r1.round, r1.profile, r1.impl)
				  = (r.scale, r.variant, r.round, r.profile, r.impl) AND r1.clients = 1
  JOIN per_impl p1 ON (p1.scale, p1.variant, p1.profile, p1.impl)
					  = (r.scale, r.variant, r.profile, r.impl) AND p1.clients = 1
  JOIN per_impl p2 ON (p2.scale, p2.variant, p2.profile, p2.impl)
					  = (r.scale, r.variant, r.profile, r.impl) AND p2.clients = 2
 WHERE r.clients = 2 AND r1.tps > 0
 GROUP BY r.profile, r.variant, r.impl
 ORDER BY r.profile, r.variant, pg_temp.impl_order(r.impl);
\endif

\echo
\echo '== Server CPU per call (us; one backend, each call in its own rolled-back transaction, median of rounds) =='
\echo 'Read from /proc/self/stat, minus the cost of the loop: far less sensitive to other load than TPS.'
\echo 'cpu ext/x above 1: the extension costs more CPU per call than x.  wall = elapsed time per call in the same loop.'
SELECT c.scale AS customers, c.profile,
	   max(c.cpu_us) FILTER (WHERE c.impl = 'ext') AS ext,
	   max(c.cpu_us) FILTER (WHERE c.impl = 'straight') AS straight,
	   max(c.cpu_us) FILTER (WHERE c.impl = 'plpgsql') AS plpgsql,
	   max(c.cpu_us) FILTER (WHERE c.impl = 'cte') AS cte,
	   max(c.cpu_us) FILTER (WHERE c.impl = 'ctestmt') AS ctestmt,
	   round(max(c.cpu_us) FILTER (WHERE c.impl = 'ext')
			 / nullif(max(c.cpu_us) FILTER (WHERE c.impl = 'straight'), 0), 2) AS "cpu ext/straight",
	   round(max(c.cpu_us) FILTER (WHERE c.impl = 'ext')
			 / nullif(max(c.cpu_us) FILTER (WHERE c.impl = 'plpgsql'), 0), 2) AS "cpu ext/plpgsql",
	   round(max(c.cpu_us) FILTER (WHERE c.impl = 'ext')
			 / nullif(max(c.cpu_us) FILTER (WHERE c.impl = 'cte'), 0), 2) AS "cpu ext/cte",
	   round(max(c.cpu_us) FILTER (WHERE c.impl = 'ext')
			 / nullif(max(c.cpu_us) FILTER (WHERE c.impl = 'ctestmt'), 0), 2) AS "cpu ext/ctestmt",
	   max(c.wall_us) FILTER (WHERE c.impl = 'ext') AS ext_wall,
	   max(c.wall_us) FILTER (WHERE c.impl = 'plpgsql') AS plpgsql_wall
  FROM cpu c GROUP BY c.scale, c.profile ORDER BY c.scale, c.profile;

SELECT count(*) > 0 AS have_callgrind FROM cg \gset
\if :have_callgrind
\echo
\echo '== Instructions per call (callgrind, single-user backend, BEGIN ... ROLLBACK; deterministic) =='
SELECT c.scale AS customers, c.profile,
	   max(c.instructions) FILTER (WHERE c.impl = 'ext') AS ext,
	   max(c.instructions) FILTER (WHERE c.impl = 'straight') AS straight,
	   max(c.instructions) FILTER (WHERE c.impl = 'plpgsql') AS plpgsql,
	   max(c.instructions) FILTER (WHERE c.impl = 'cte') AS cte,
	   max(c.instructions) FILTER (WHERE c.impl = 'ctestmt') AS ctestmt,
	   round(max(c.instructions) FILTER (WHERE c.impl = 'ext')::numeric
			 / nullif(max(c.instructions) FILTER (WHERE c.impl = 'straight'), 0), 2) AS "instr ext/straight",
	   round(max(c.instructions) FILTER (WHERE c.impl = 'ext')::numeric
			 / nullif(max(c.instructions) FILTER (WHERE c.impl = 'plpgsql'), 0), 2) AS "instr ext/plpgsql",
	   round(max(c.instructions) FILTER (WHERE c.impl = 'ext')::numeric
			 / nullif(max(c.instructions) FILTER (WHERE c.impl = 'cte'), 0), 2) AS "instr ext/cte",
	   round(max(c.instructions) FILTER (WHERE c.impl = 'ext')::numeric
			 / nullif(max(c.instructions) FILTER (WHERE c.impl = 'ctestmt'), 0), 2) AS "instr ext/ctestmt"
  FROM cg c GROUP BY c.scale, c.profile ORDER BY c.scale, c.profile;
\endif

\echo
\echo '== Eligibility of every customer: anonymize.can_anonymize(id) per row vs one set-based query =='
SELECT e.scale AS customers, e.method, e.reps, e.best_ms, e.median_ms,
	   round(e.best_ms * 1000 / nullif(e.scale, 0), 2) AS best_us_per_customer,
	   e.eligible,
	   round(e.best_ms / nullif(s.best_ms, 0), 1) AS "x set_based"
  FROM elig e
  LEFT JOIN elig s ON s.scale = e.scale AND s.method = 'set_based'
 ORDER BY e.scale, e.method;
SELECT CASE WHEN count(DISTINCT eligible) = 1 THEN 'eligibility counts agree'
			ELSE 'MISMATCH: can_anonymize and the set-based query count differently' END
		   AS eligibility_check
  FROM elig GROUP BY scale ORDER BY scale;
