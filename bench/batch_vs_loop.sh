#!/bin/bash
# bench/batch_vs_loop.sh -- the request queue's set-based batch against the
# per-customer loop, measured in the same run on disjoint customers of the
# same profile, alternating which goes first each round.
#
#   bash bench/batch_vs_loop.sh          # as root; own throwaway cluster
#
#   set-based  CALL anonymize.process_requests(batch_size => 500): one
#              statement per rule for each batch (the default)
#   loop       the same with SET anonymize.set_based_batches = off: one
#              customer at a time, each in a subtransaction
#   statement  the best hand-written set-based statement
#              (bench/baseline_batch_cte.sql), batches of 500 committed
#              one by one, on the same kind of customers (no requests)
#
# Environment: SCALE customers of the 'history' profile (default 30000),
# ROUNDS (default 4), PER_ROUND requests per way and round (default 1500),
# PORT (default 54332), SHARED_BUFFERS (default 2GB: the data is cached,
# prewarmed after it is generated, as in bench/run.sh; with a smaller one a
# batch's rows outgrow shared_buffers and the run measures the disk).
# Prints customers per second, median over rounds, and the ratios
# set-based / loop and set-based / statement.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
# shellcheck source=../test/lib.sh
. "$REPO/test/lib.sh"

SCALE=${SCALE:-30000}
ROUNDS=${ROUNDS:-4}
PER_ROUND=${PER_ROUND:-1500}
PORT=${PORT:-54332}
SHARED_BUFFERS=${SHARED_BUFFERS:-2GB}

psql_q() { anon_as_postgres psql -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }

anon_install_deps
anon_build_install "$REPO" >/dev/null
work=$(anon_tmpdir)
trap 'anon_stop_cluster; rm -rf "$work"' EXIT
anon_start_cluster "$work/cluster" "$PORT" "shared_buffers = '$SHARED_BUFFERS'"
anon_as_postgres createdb bench
psql_q -f "$REPO/examples/billing.sql" >/dev/null
psql_q -c "CREATE EXTENSION anonymize" -f "$REPO/examples/billing_mapping.sql" >/dev/null
psql_q -f "$BENCH/baseline_cte.sql" -f "$BENCH/baseline_batch_cte.sql" >/dev/null
psql_q -v profile=history -v first=1 -v n="$SCALE" \
	-f "$BENCH/generate.sql" >/dev/null
psql_q -c "VACUUM ANALYZE"
psql_q -c "CREATE EXTENSION pg_prewarm" -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname IN ('billing', 'bench', 'anonymize') AND c.relkind IN ('r', 'i')" >/dev/null
available=$(psql_q -Atc "SELECT count(*) FROM bench.targets")
[ "$available" -ge $((3 * ROUNDS * PER_ROUND)) ] ||
	anon_die "only $available eligible customers for $((3 * ROUNDS * PER_ROUND)) runs: raise SCALE"

results=$work/results.tsv
next=1
run_way() {
	local round=$1 way=$2 setting=$3 first=$next last=$((next + PER_ROUND - 1))
	local start end
	next=$((last + 1))
	if [ "$way" = statement ]; then
		start=$(date +%s.%N)
		psql_q -c "CALL bench.process_with_statement($first, $last, 500)"
		end=$(date +%s.%N)
		echo -e "$round\t$way\t$PER_ROUND\t$(awk "BEGIN { print $end - $start }")" >>"$results"
		return
	fi
	psql_q -c "SELECT count(anonymize.request(id)) FROM bench.targets
	            WHERE n BETWEEN $first AND $last" >/dev/null
	start=$(date +%s.%N)
	psql_q -c "SET anonymize.set_based_batches = $setting" \
		-c "SET client_min_messages = warning" \
		-c "CALL anonymize.process_requests(batch_size => 500, fail_on_error => false)"
	end=$(date +%s.%N)
	echo -e "$round\t$way\t$PER_ROUND\t$(awk "BEGIN { print $end - $start }")" >>"$results"
}

for round in $(seq 1 "$ROUNDS"); do
	case $((round % 3)) in
	1) run_way "$round" set-based on; run_way "$round" loop off; run_way "$round" statement - ;;
	2) run_way "$round" loop off; run_way "$round" statement -; run_way "$round" set-based on ;;
	0) run_way "$round" statement -; run_way "$round" set-based on; run_way "$round" loop off ;;
	esac
done
psql_q -c "SELECT count(*) FILTER (WHERE state = 'done') AS done,
                  count(*) FILTER (WHERE state <> 'done') AS not_done
             FROM anonymize.requests"

psql_q -c "CREATE TABLE runs (round int, way text, customers int, seconds numeric)"
anon_as_postgres psql -X -q -d bench -c "\copy runs FROM '$results'"
psql_q <<'SQL'
WITH rate AS (
	SELECT round, way, customers / seconds AS per_second FROM runs
), ratio AS (
	SELECT s.round, l.way, s.per_second / l.per_second AS ratio
	  FROM rate s JOIN rate l USING (round)
	 WHERE s.way = 'set-based' AND l.way <> 'set-based'
)
SELECT way, count(*) AS rounds,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY per_second)::numeric, 0)
		   AS customers_per_second,
	   (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ratio)::numeric, 2)
		  FROM ratio r WHERE r.way = rate.way) AS "set-based / this way (median of rounds)"
  FROM rate GROUP BY way ORDER BY way;
SQL
