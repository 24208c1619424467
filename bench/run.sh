#!/bin/bash
# bench/run.sh -- benchmark of the anonymize extension against two baselines.
#
#   bash bench/run.sh                 # main benchmark, a few minutes on 2 cores
#   SCALE_TEST=1 bash bench/run.sh    # per-call latency at 100,000 vs 1,000,000
#                                     # customers (longer: ~20-30 minutes)
#
# Run as root from anywhere.  It sources test/lib.sh to install packages,
# build and install the extension and start a throwaway PostgreSQL 15
# cluster on port 54331 (as user postgres; removed at exit), then loads
# examples/billing.sql, the extension and its mapping
# (examples/billing_mapping.sql), bench/baseline_straight.sql,
# bench/baseline_plpgsql.sql, bench/baseline_cte.sql and data from
# bench/generate.sql, checks that the implementations do the same work
# (bench/check.sql), times
# can_anonymize() over all customers (bench/eligibility.sql), measures the
# server CPU time per call in one backend (bench/cpu_per_call.sql) and
# measures with pgbench:
#
#   ext      SELECT * FROM anonymize.anonymize_customer(:id)
#   straight SELECT * FROM bench.anonymize_straight(:id)   (fewer guarantees)
#   plpgsql  SELECT * FROM bench.anonymize_plpgsql(:id)    (same guarantees)
#   cte      SELECT * FROM bench.anonymize_cte(:id)
#   ctestmt  the statement of bench.anonymize_cte() itself, prepared by
#            pgbench (a SQL function is planned anew at every call)
#
# with the pgbench scripts bench/<impl>_{commit,rollback}.pgbench
# (-M prepared), for the 'history' and 'nohistory' profiles, 2 clients and
# 1 client, in ROUNDS rounds; within a round the implementations run back to
# back (starting with a different one each round) so that their ratio holds
# on a noisy machine.  Rollback rounds come first (the data set stays as
# generated), then the commit rounds, each transaction of which anonymizes
# a customer never touched before.  Prints the tables of bench/report.sql.
#
# Environment (all optional):
#   SCALE      'history' customers (default 50000; 90% eligible)
#   NOHIST     'nohistory' customers (default: SCALE)
#   DURATION   seconds per rollback run (default 4)
#   ROUNDS     rounds (default 4; within a round the first implementation
#              rotates)
#   IMPLS      implementations (default "ext straight plpgsql cte ctestmt")
#   COMMIT_TX  transactions per commit run (default: as many as the pool of
#              eligible customers allows, at most 4000)
#   SCALE_FROM, SCALE_TO   data set sizes of SCALE_TEST=1 (100000, 1000000)
#   SCALE_TX   transactions per commit run in SCALE_TEST=1 (default 2000)
#   SHARED_BUFFERS  of the cluster (default 2GB; 12GB with SCALE_TEST=1)
#   CPU_CALLS, CPU_ROUNDS  calls per implementation and profile, and rounds,
#              of bench/cpu_per_call.sql (default 2000, 3)
#   CALLGRIND=1  also count instructions per call with valgrind (needs the
#              valgrind package; a few minutes more); CG_CALLS calls (300).
#              The most reliable comparison on a busy machine.
#              CG_SETTINGS: one more setting for those runs, e.g.
#              CG_SETTINGS=anonymize.residue_check=off
#   PORT       port of the throwaway cluster (default 54331)
#   RESULTS    where raw results go (default bench/results/<date-time>)
#   KEEP=1     keep the cluster running and its directory at the end
#
# Raw results (pgbench outputs and per-transaction logs, runs.tsv, tx.tsv,
# elig.tsv, report.txt) stay in $RESULTS; bench/results/ is git-ignored.

set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
# shellcheck source=../test/lib.sh
. "$REPO/test/lib.sh"

PORT=${PORT:-54331}
SCALE=${SCALE:-50000}
NOHIST=${NOHIST:-$SCALE}
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-4}
COMMIT_TX=${COMMIT_TX:-}
SCALE_TEST=${SCALE_TEST:-0}
SCALE_FROM=${SCALE_FROM:-100000}
SCALE_TO=${SCALE_TO:-1000000}
SCALE_TX=${SCALE_TX:-2000}
# The scale mode keeps its 1,000,000 customers (about 10 GB) in shared
# buffers too, so that it measures how a call grows with the tables, not
# the misses of a cache smaller than the data.
if [ "$SCALE_TEST" = 1 ]; then
	SHARED_BUFFERS=${SHARED_BUFFERS:-12GB}
else
	SHARED_BUFFERS=${SHARED_BUFFERS:-2GB}
fi
SUFFIX=''
[ "$SCALE_TEST" = 1 ] && SUFFIX=-scale
RESULTS=${RESULTS:-$BENCH/results/$(date +%Y%m%d-%H%M%S)$SUFFIX}
read -r -a IMPLS <<<"${IMPLS:-ext straight plpgsql cte ctestmt}"

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- setup
log "installing dependencies, building and installing the extension"
anon_install_deps
anon_build_install "$REPO"

mkdir -p "$RESULTS/pgbench"
chown -R postgres:postgres "$RESULTS"
: >"$RESULTS/runs.tsv"
: >"$RESULTS/tx.tsv"
: >"$RESULTS/elig.tsv"
: >"$RESULTS/cpu.tsv"
: >"$RESULTS/callgrind.tsv"

CLUSTER=$(anon_tmpdir)
cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then
		log "KEEP=1: cluster left running in $CLUSTER (PGHOST=$CLUSTER/socket PGPORT=$PORT)"
		return
	fi
	anon_stop_cluster
	rm -rf "$CLUSTER"
}
trap cleanup EXIT

# Benchmark settings on top of test/lib.sh's (fsync, synchronous_commit and
# full_page_writes off): the whole data set in shared buffers, no checkpoint and no autovacuum during the runs (run.sh vacuums
# between rounds), no JIT.
log "starting a throwaway cluster on port $PORT in $CLUSTER"
anon_start_cluster "$CLUSTER" "$PORT" "$(printf '%s\n' \
	"shared_buffers = '$SHARED_BUFFERS'" \
	"max_wal_size = '50GB'" \
	"checkpoint_timeout = '1d'" \
	"autovacuum = off" \
	"jit = off" \
	"max_connections = 20")"

psql_q() {
	anon_as_postgres env PGOPTIONS='-c client_min_messages=warning' \
		psql -X -q -v ON_ERROR_STOP=1 "$@"
}
# One value from one query on the bench database.
psql_val() { anon_as_postgres psql -X -qAt -v ON_ERROR_STOP=1 -d bench -c "$1"; }

generate() {	# profile first n
	log "generating $3 '$1' customers (from number $2)"
	psql_q -d bench -v profile="$1" -v first="$2" -v n="$3" \
		-f "$BENCH/generate.sql" >/dev/null
}

vacuum() {	# [options]
	psql_q -d bench -c "VACUUM${1:+ ($1)}" >/dev/null
}

# bench/ctestmt_*.pgbench must hold the statement of bench.anonymize_cte().
check_ctestmt_sync() {
	local body stmt v
	body=$(awk '/^LANGUAGE sql VOLATILE AS/ { f = 1; next }
		f && /^\$\$/ { if (started) exit; started = 1; next }
		f && started' "$BENCH/baseline_cte.sql" | sed 's/p_customer_id/:id/g')
	for v in commit rollback; do
		stmt=$(awk '/^WITH cust AS MATERIALIZED/ { p = 1 } p { print } p && /;$/ { exit }' \
			"$BENCH/ctestmt_$v.pgbench" | sed '$ s/;$//')
		[ "$stmt" = "$body" ] ||
			log "WARNING: bench/ctestmt_$v.pgbench differs from the statement in bench/baseline_cte.sql"
	done
}

load() {
	log "loading schema, extension and baselines"
	anon_as_postgres createdb bench
	anon_as_postgres createdb bench_results
	psql_q -d bench -f "$REPO/examples/billing.sql" >/dev/null
	# CREATE EXTENSION installs no mapping: the one of examples/billing.sql
	# is examples/billing_mapping.sql, the rules the baselines implement.
	psql_q -d bench -c "CREATE EXTENSION anonymize" \
		-f "$REPO/examples/billing_mapping.sql" \
		-c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null
	psql_q -d bench -f "$BENCH/baseline_plpgsql.sql" \
		-f "$BENCH/baseline_straight.sql" -f "$BENCH/baseline_cte.sql" >/dev/null
	check_ctestmt_sync
}

prepare_data() {	# after generating: freeze, analyze, check, cache
	log "vacuum (freeze, analyze)"
	vacuum "FREEZE, ANALYZE"
	psql_q -d bench -c "CHECKPOINT" >/dev/null
	log "checking that the implementations do the same work (bench/check.sql)"
	psql_q -d bench -f "$BENCH/check.sql" >"$RESULTS/check.txt"
	CHECK_SUMMARY=$(tail -n 1 "$RESULTS/check.txt")
	log "$CHECK_SUMMARY"
	case $CHECK_SUMMARY in
	*", 0 mismatches") ;;
	*) cat "$RESULTS/check.txt" >&2
		log "WARNING: the implementations differ; the numbers below compare different work" ;;
	esac
	prewarm
}

prewarm() {
	psql_q -d bench -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('billing', 'bench', 'anonymize') AND c.relkind IN ('r', 'i')" >/dev/null
}

time_eligibility() {
	log "timing can_anonymize over all customers vs the set-based query"
	psql_q -d bench -v reps="${ELIG_REPS:-3}" \
		-f "$BENCH/eligibility.sql" >>"$RESULTS/eligibility.txt"
	anon_as_postgres psql -X -qAt -F $'\t' -d bench -c "SELECT
		(SELECT count(*) FROM billing.customers), * FROM bench.eligibility_times" \
		>>"$RESULTS/elig.tsv"
}

cpu_per_call() {
	log "measuring server CPU per call in one backend (bench/cpu_per_call.sql)"
	psql_q -d bench -v k="${CPU_CALLS:-2000}" -v rounds="${CPU_ROUNDS:-3}" \
		-f "$BENCH/cpu_per_call.sql" >>"$RESULTS/cpu_per_call.txt"
	anon_as_postgres psql -X -qAt -F $'\t' -d bench -c "SELECT
		(SELECT count(*) FROM billing.customers), * FROM bench.cpu_per_call" \
		>>"$RESULTS/cpu.tsv"
}

# CALLGRIND=1: instructions per call, counted by valgrind's callgrind in a
# single-user backend (the cluster is stopped meanwhile): deterministic, so
# immune to other load.  Each implementation runs CG_CALLS calls (default
# 300) and 20 calls, each in BEGIN ... ROLLBACK, on customers that no other
# run touched; the difference divided by CG_CALLS - 20 leaves out the first
# calls, which build plans and caches.
callgrind_per_call() {
	local n=${CG_CALLS:-300} total profile targets impl fn k out ir20 irn i=0 need
	if ! command -v valgrind >/dev/null; then
		log "CALLGRIND=1: valgrind is not installed (apt-get install valgrind); skipped"
		return
	fi
	log "counting instructions per call with callgrind ($n calls each)"
	total=$(psql_val "SELECT count(*) FROM billing.customers")
	need=$(((n + 20) * ${#IMPLS[@]}))
	mkdir -p "$RESULTS/callgrind"
	for profile in history nohistory; do
		targets=bench.targets
		[ $profile = nohistory ] && targets=bench.targets_nohist
		psql_val "SELECT t.id FROM $targets t JOIN billing.customers c
			ON c.id = t.id AND c.email IS NOT NULL ORDER BY t.n DESC LIMIT $need" \
			>"$RESULTS/callgrind/ids.$profile"
	done
	chown -R postgres:postgres "$RESULTS/callgrind"
	anon_stop_cluster
	for impl in "${IMPLS[@]}"; do
		case $impl in
		ext) fn=anonymize.anonymize_customer ;;
		plpgsql) fn=bench.anonymize_plpgsql ;;
		straight) fn=bench.anonymize_straight ;;
		cte) fn=bench.anonymize_cte ;;
		ctestmt) fn=bench.anonymize_ctestmt ;;	# made by cpu_per_call.sql
		esac
		for profile in history nohistory; do
			[ -s "$RESULTS/callgrind/ids.$profile" ] || continue
			for k in 20 "$n"; do
				out="$RESULTS/callgrind/$profile.$impl.$k"
				# this implementation's own slice of customers: 20, then n
				tail -n +$((i * (n + 20) + 1 + (k == 20 ? 0 : 20))) \
					"$RESULTS/callgrind/ids.$profile" | head -n "$k" |
					sed "s/.*/BEGIN; SELECT * FROM $fn('&'); ROLLBACK;/" |
					anon_as_postgres valgrind --tool=callgrind \
						--toggle-collect=ExecMakeTableFunctionResult \
						--callgrind-out-file="$out.out" \
						postgres --single -D "$ANON_PGDATA" -c shared_buffers=256MB \
						${CG_SETTINGS:+-c "$CG_SETTINGS"} bench \
						>"$out.log" 2>&1 || log "WARNING: callgrind run $out failed"
			done
			ir20=$(awk '/Collected/ { print $4 }' "$RESULTS/callgrind/$profile.$impl.20.log")
			irn=$(awk '/Collected/ { print $4 }' "$RESULTS/callgrind/$profile.$impl.$n.log")
			printf '%s\t%s\t%s\t%s\n' "$total" "$profile" "$impl" \
				"$(((irn - ir20) / (n - 20)))" >>"$RESULTS/callgrind.tsv"
			printf '    %-30s %10d instructions per call\n' "$profile $impl" \
				"$(((irn - ir20) / (n - 20)))" >&2
		done
		i=$((i + 1))
	done
	anon_as_postgres pg_ctl -D "$ANON_PGDATA" -l "$CLUSTER/server.log" -w -s start
	prewarm
}

# Run one pgbench and append a line to runs.tsv and its transactions to
# tx.tsv.  Arguments: scale variant round profile impl clients amount, where
# amount is seconds (rollback) or transactions (commit).
run_one() {
	local scale=$1 variant=$2 round=$3 profile=$4 impl=$5 clients=$6 amount=$7
	local label="$scale-$variant-$profile-$impl-c$clients-r$round"
	local out="$RESULTS/pgbench/$label.out" prefix="$RESULTS/pgbench/$label"
	local nohist=0 pool lsn0 lsn1 wal='' args status=0
	[ "$profile" = nohistory ] && nohist=1
	if [ $nohist = 1 ]; then
		pool=$(psql_val "SELECT count(*) FROM bench.targets_nohist")
	else
		pool=$(psql_val "SELECT count(*) FROM bench.targets")
	fi
	args=(-n -M prepared -c "$clients" -j "$clients" -r
		--log --log-prefix="$prefix" -D "nohist=$nohist" -D pool="$pool"
		-f "$BENCH/${impl}_${variant}.pgbench")
	if [ "$variant" = commit ]; then
		args+=(-t $((amount / clients)))
	else
		args+=(-T "$amount")
	fi
	vacuum	# every run starts without the dead rows of the previous one
	lsn0=$(psql_val "SELECT pg_current_wal_lsn()")
	anon_as_postgres pgbench "${args[@]}" bench >"$out" 2>&1 || status=$?
	lsn1=$(psql_val "SELECT pg_current_wal_lsn()")
	[ "$variant" = commit ] &&
		wal=$(psql_val "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
	if [ $status != 0 ]; then
		log "WARNING: pgbench $label exited with $status (see $out)"
		tail -n 5 "$out" >&2
	fi
	# Per-statement latency of the anonymize call (pgbench -r).
	awk -v scale="$scale" -v variant="$variant" -v round="$round" \
		-v profile="$profile" -v impl="$impl" -v clients="$clients" \
		-v wal="$wal" -v label="$label" '
		/number of transactions actually processed:/ { split($6, a, "/"); tx = a[1] }
		/number of failed transactions:/ { failed = $5 }
		/^latency average =/ { lat = $4 }
		/^tps = / { tps = $3 }
		/anonymize_customer\(|anonymize_plpgsql\(|anonymize_straight\(|anonymize_cte\(|WITH cust AS/ { call = $1 }
		END {
			printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				scale, variant, round, profile, impl, clients, tx + 0,
				failed + 0, tps + 0, lat + 0, call, wal, label
		}' "$out" >>"$RESULTS/runs.tsv"
	# pgbench --log: client, transaction, latency (us), script, epoch, us
	cat "$prefix".[0-9]* 2>/dev/null |
		awk -v label="$label" '{ print label "\t" $3 }' >>"$RESULTS/tx.tsv"
	rm -f "$prefix".[0-9]*
	printf '    %-45s %s\n' "$label" \
		"$(tail -n 1 "$RESULTS/runs.tsv" | awk -F'\t' '{ printf "%8.1f tps  %7.3f ms  call %s ms", $9, $10, $11 }')" >&2
}

# The implementations in round r, starting with a different one each round.
rotated() {
	local r=$1 i n=${#IMPLS[@]}
	for ((i = 0; i < n; i++)); do
		echo "${IMPLS[$(((i + r) % n))]}"
	done
}

# Transactions per commit run: what the pool allows for all commit runs.
commit_tx() {	# runs_per_profile
	local pool tx
	pool=$(psql_val "SELECT least(count(*), (SELECT count(*) FROM bench.targets_nohist))
		FROM bench.targets")
	tx=$((pool * 95 / 100 / $1))
	[ "$tx" -gt 4000 ] && tx=4000
	[ -n "$COMMIT_TX" ] && tx=$COMMIT_TX
	[ $((tx % 2)) = 0 ] || tx=$((tx - 1))
	echo "$tx"
}

report() {	# mode
	psql_q -d bench_results -v dir="$RESULTS" -v mode="$1" \
		-f "$BENCH/report.sql" >"$RESULTS/report.txt"
	echo
	echo "anonymize benchmark ($(date '+%Y-%m-%d %H:%M'), $(nproc) cores," \
		"PostgreSQL $(psql_val 'SHOW server_version'), rounds $ROUNDS," \
		"rollback runs ${DURATION}s)"
	echo "$CHECK_SUMMARY"
	cat "$RESULTS/report.txt"
	echo
	echo "raw results: $RESULTS"
}

# ---------------------------------------------------------------- main
main_benchmark() {
	local r profile variant clients impl tx
	load
	generate history 1 "$SCALE"
	generate nohistory 1 "$NOHIST"
	prepare_data
	time_eligibility
	cpu_per_call

	log "warm-up"
	for impl in "${IMPLS[@]}"; do
		anon_as_postgres pgbench -n -M prepared -c 2 -j 2 -T 2 -D nohist=0 \
			-D pool="$(psql_val 'SELECT count(*) FROM bench.targets')" \
			-f "$BENCH/${impl}_rollback.pgbench" bench >/dev/null 2>&1
	done

	for ((r = 1; r <= ROUNDS; r++)); do
		log "rollback round $r of $ROUNDS (${DURATION}s per run)"
		vacuum ANALYZE
		for profile in history nohistory; do
			for clients in 2 1; do
				for impl in $(rotated "$r"); do
					run_one "$SCALE" rollback "$r" "$profile" "$impl" "$clients" "$DURATION"
				done
			done
		done
	done

	[ "${CALLGRIND:-0}" = 1 ] && callgrind_per_call

	tx=$(commit_tx $((ROUNDS * ${#IMPLS[@]} * 2)))
	for ((r = 1; r <= ROUNDS; r++)); do
		log "commit round $r of $ROUNDS ($tx customers per run)"
		vacuum ANALYZE
		for profile in history nohistory; do
			for clients in 2 1; do
				for impl in $(rotated "$r"); do
					run_one "$SCALE" commit "$r" "$profile" "$impl" "$clients" "$tx"
				done
			done
		done
	done
	report main
}

scale_benchmark() {
	local size r variant impl pool
	load
	generate history 1 "$SCALE_FROM"
	# a few no-history customers for cpu_per_call.sql and CALLGRIND=1 only
	generate nohistory 1 "${SCALE_NOHIST:-20000}"
	for size in "$SCALE_FROM" "$SCALE_TO"; do
		if [ "$size" != "$SCALE_FROM" ]; then
			generate history $((SCALE_FROM + 1)) $((size - SCALE_FROM))
		fi
		prepare_data
		ELIG_REPS=${ELIG_REPS:-2} time_eligibility
		cpu_per_call
		[ "${CALLGRIND:-0}" = 1 ] && callgrind_per_call
		log "warm-up"
		pool=$(psql_val 'SELECT count(*) FROM bench.targets')
		for impl in "${IMPLS[@]}"; do
			anon_as_postgres pgbench -n -M prepared -c 1 -T 2 -D nohist=0 \
				-D pool="$pool" -f "$BENCH/${impl}_rollback.pgbench" bench >/dev/null 2>&1
		done
		for variant in rollback commit; do
			for ((r = 1; r <= ROUNDS; r++)); do
				log "$size customers: $variant round $r of $ROUNDS"
				vacuum ANALYZE
				for impl in $(rotated "$r"); do
					if [ "$variant" = commit ]; then
						run_one "$size" commit "$r" history "$impl" 1 "$SCALE_TX"
					else
						run_one "$size" rollback "$r" history "$impl" 1 "$DURATION"
					fi
				done
			done
		done
	done
	report scale
}

if [ "$SCALE_TEST" = 1 ]; then
	scale_benchmark
else
	main_benchmark
fi
