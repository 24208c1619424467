-- bench/eligibility.sql
--
-- Times "which customers could be anonymized now" over ALL customers, two
-- ways, alternating, :reps times each (default 3), in one backend:
--
--   can_anonymize  SELECT count(*) FILTER (WHERE anonymize.can_anonymize(id))
--                    FROM billing.customers
--                  (one function call, i.e. a few SPI queries, per customer)
--   set_based      one query of the same rules: customers not in
--                  anonymize.audit_log and not among the blocked ones (a
--                  blocking subscription or invoice, or balance lines not
--                  summing to 0), as two anti-joins.  (A NOT IN over the
--                  unbalanced customers is planned quadratic once it
--                  outgrows work_mem; a LEFT JOIN to the balances per
--                  customer made the planner aggregate them once per
--                  parallel worker: 20 s at 1,000,000 customers.)
--
-- Both must count the same customers.  Prints one row per method (best and
-- median milliseconds, the count) and keeps it in bench.eligibility_times
-- (replaced at each run; bench/run.sh reads it).
-- Usage: psql -X -d bench -v reps=3 -f bench/eligibility.sql

\set ON_ERROR_STOP on
\if :{?reps}
\else
\set reps 3
\endif
SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION bench.time_eligibility(p_reps int)
RETURNS TABLE (method text, reps int, best_ms numeric, median_ms numeric, eligible bigint)
LANGUAGE plpgsql AS
$$
DECLARE
	q_can constant text :=
		'SELECT count(*) FILTER (WHERE anonymize.can_anonymize(id)) FROM billing.customers';
	q_set constant text := $q$
		SELECT count(*)
		  FROM billing.customers c
		 WHERE NOT EXISTS (SELECT FROM anonymize.audit_log a WHERE a.customer_id = c.id)
		   AND NOT EXISTS (
				SELECT FROM (SELECT s.customer_id FROM billing.subscriptions s
							  WHERE s.state NOT IN ('initialized', 'terminated')
							 UNION ALL
							 SELECT i.customer_id FROM billing.invoices i
							  WHERE i.status NOT IN ('paid', 'cancelled')
							 UNION ALL
							 SELECT b.customer_id FROM billing.balance_entries b
							  GROUP BY b.customer_id HAVING sum(b.amount) <> 0) blocked
				 WHERE blocked.customer_id = c.id)$q$;
	t0 timestamptz;
	n bigint;
	ms numeric;
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS elig_times (method text, ms numeric, n bigint);
	TRUNCATE elig_times;
	FOR r IN 1 .. p_reps LOOP
		t0 := clock_timestamp();
		EXECUTE q_can INTO n;
		ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
		INSERT INTO elig_times VALUES ('can_anonymize', ms, n);

		t0 := clock_timestamp();
		EXECUTE q_set INTO n;
		ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
		INSERT INTO elig_times VALUES ('set_based', ms, n);
	END LOOP;
	RETURN QUERY
	SELECT t.method, p_reps, round(min(t.ms), 1),
		   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms)::numeric, 1),
		   max(t.n)
	  FROM elig_times t GROUP BY t.method ORDER BY t.method;
END
$$;

DROP TABLE IF EXISTS bench.eligibility_times;
CREATE TABLE bench.eligibility_times AS SELECT * FROM bench.time_eligibility(:reps);
SELECT * FROM bench.eligibility_times;
