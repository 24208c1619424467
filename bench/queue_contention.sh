#!/bin/bash
# bench/queue_contention.sh -- the request queue under a concurrent billing
# load: deadlocks, and customers the queue skipped ("busy").
#
#   bash bench/queue_contention.sh            # as root; ~1.5 minutes on 2 cores
#   bash bench/queue_contention.sh --check    # exit 1 if any deadlock or crash
#
# In a throwaway cluster (own port and socket, as user postgres, removed at
# exit) it loads examples/billing.sql, the extension and its mapping
# (examples/billing_mapping.sql), generates CUSTOMERS customers with a
# history (bench/generate.sql), all of them eligible
# (bench/queue_contention_setup.sql), and then, once per isolation level in
# LEVELS, in a fresh copy of that database:
#
#   1. records an erasure request for every customer
#      (SELECT anonymize.request(id) FROM billing.customers);
#   2. for DURATION seconds, at once:
#      billing  pgbench, CLIENTS clients, bench/queue_contention_billing.pgbench:
#               a payment for one customer -- UPDATE one of its paid
#               invoices, INSERT a balance line and its reversal (the foreign
#               key check locks the customer FOR KEY SHARE), one time in four
#               touch the billing address; the customer is, in HOT_PERCENT
#               percent of the transactions, one of the next 2 * BATCH_SIZE
#               pending requests (those the queue is about to lock), else a
#               random one; with --max-tries, so that deadlock and
#               serialization failures are retried and counted, not fatal;
#      queue    a loop of CALL anonymize.process_requests(batch_size =>
#               BATCH_SIZE) until the time is up (one psql per call), which
#               locks each customer FOR UPDATE and then its invoices,
#               subscriptions and balance lines FOR SHARE -- the opposite
#               order of the billing transaction (since 1.2 without waiting:
#               customers SKIP LOCKED, the other rows NOWAIT, and a customer
#               whose rows are locked is left pending as 'busy');
#   3. reports server crashes (server log), deadlocks
#      (pg_stat_database.deadlocks of the database, and
#      the server log: with log_lock_waits = on the victim of a deadlock logs
#      "detected deadlock while waiting", even when the error is caught, as
#      the queue does per batch; application_name tells queue from billing),
#      lock waits longer than deadlock_timeout, billing transactions, tps
#      (also while the queue had requests pending, and after), retries and
#      failures, the queue's attempts left 'busy' (skipped because billing
#      held a lock; retried by the next call) by cause (skip locked, or the
#      SQLSTATE of the lock error) or failed, summed over the calls, the same
#      two sums from the "N busy, N failed" of the queue's summary NOTICEs,
#      and the requests at the end: done, pending with last outcome 'busy',
#      'failed' or other.
#
# With the defaults a queue that waits for row locks (1.1) stays at work for
# most of the 30 s (it waits deadlock_timeout at every deadlock); the queue
# of 1.2, which never waits, drains in a few seconds.  Raw results: per
# level, pgbench.txt, queue.txt (the NOTICEs of every call), queue.tsv (per
# call: second, batches, exit code, pending, busy, failed), busy.txt and
# failed.txt (per busy or failed attempt: request id and the error),
# pending.txt, and the server log of the run.
#
# Billing transactions of different customers share no row and each touches
# one customer, so every deadlock involves the queue.
#
# The benchmark reports; it does not assert.  It exits 0 after printing
# the table, 1 only when the script itself failed -- or, with --check, when
# some isolation level had a deadlock or the server crashed.
#
# Environment (all optional):
#   ANON_PG_BIN      PostgreSQL bin directory (default /usr/lib/postgresql/15/bin)
#   ANON_SKIP_BUILD=1  do not build and install the extension, use the one
#                    installed for ANON_PG_BIN (e.g. a private relocated copy
#                    of PostgreSQL); else it is built and installed with
#                    ANON_PG_BIN/pg_config, as bench/run.sh does
#   CUSTOMERS        customers (default 10000), all with an erasure request
#   HOT_PERCENT      share of billing transactions on the queue's next
#                    customers (default 50; 0: all random)
#   DURATION         seconds of load per isolation level (default 30)
#   CLIENTS          pgbench clients (default 2)
#   BATCH_SIZE       batch_size of process_requests (default 50)
#   MAX_TRIES        pgbench --max-tries (default 10)
#   LEVELS           isolation levels, comma-separated
#                    (default "read committed,repeatable read")
#   QUEUE_ISOLATION  isolation level of the queue: "same" (default: the level
#                    of the billing load) or a level, e.g. "read committed"
#   DEADLOCK_TIMEOUT deadlock_timeout of the cluster (default 1s)
#   PORT             (default 55390)
#   RESULTS          raw results (default bench/results/queue_contention-<date-time>)
#   KEEP=1           keep the cluster running at the end
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
PG_BIN=${ANON_PG_BIN:-/usr/lib/postgresql/15/bin}
# shellcheck source=../test/lib.sh
. "$REPO/test/lib.sh"
# test/lib.sh sets the system's bin directory; use ours.
ANON_PG_BIN=$PG_BIN
ANON_PG_CONFIG=$PG_BIN/pg_config

CHECK=0
for arg in "$@"; do
	case $arg in
	--check) CHECK=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) anon_die "unknown argument: $arg (try --help)" ;;
	esac
done

CUSTOMERS=${CUSTOMERS:-10000}
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-2}
BATCH_SIZE=${BATCH_SIZE:-50}
HOT_PERCENT=${HOT_PERCENT:-50}
MAX_TRIES=${MAX_TRIES:-10}
LEVELS=${LEVELS:-read committed,repeatable read}
QUEUE_ISOLATION=${QUEUE_ISOLATION:-same}
DEADLOCK_TIMEOUT=${DEADLOCK_TIMEOUT:-1s}
PORT=${PORT:-55390}
RESULTS=${RESULTS:-$BENCH/results/queue_contention-$(date +%Y%m%d-%H%M%S)}
IFS=, read -r -a LEVEL_LIST <<<"$LEVELS"

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -x "$PG_BIN/pgbench" ] || anon_die "no pgbench in $PG_BIN (set ANON_PG_BIN)"
[[ $HOT_PERCENT =~ ^[0-9]+$ ]] && [ "$HOT_PERCENT" -le 100 ] ||
	anon_die "HOT_PERCENT must be 0..100, not '$HOT_PERCENT'"
for v in CUSTOMERS DURATION CLIENTS BATCH_SIZE MAX_TRIES; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || anon_die "$v must be a positive integer, not '${!v}'"
done

# ---------------------------------------------------------------- setup
anon_install_deps
if [ "${ANON_SKIP_BUILD:-0}" = 1 ]; then
	log "ANON_SKIP_BUILD=1: using the extension installed for $PG_BIN"
else
	log "building and installing the extension for $PG_BIN"
	anon_build_install "$REPO"
fi

mkdir -p "$RESULTS"
chown postgres:postgres "$RESULTS"
CLUSTER=$(anon_tmpdir)
QUEUE_PID=
cleanup() {
	[ -z "$QUEUE_PID" ] || kill "$QUEUE_PID" 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then
		log "KEEP=1: cluster left running in $CLUSTER (PGHOST=$CLUSTER/socket PGPORT=$PORT)"
		return
	fi
	[ -f "$CLUSTER/server.log" ] && cp "$CLUSTER/server.log" "$RESULTS/" 2>/dev/null
	anon_stop_cluster
	rm -rf "$CLUSTER"
}
trap cleanup EXIT

log "starting a throwaway cluster on port $PORT in $CLUSTER"
anon_start_cluster "$CLUSTER" "$PORT" "$(printf '%s\n' \
	"max_connections = 20" \
	"log_lock_waits = on" \
	"deadlock_timeout = '$DEADLOCK_TIMEOUT'" \
	"log_line_prefix = '%m [%p] app=%a '" \
	"jit = off")"
SERVER_LOG=$CLUSTER/server.log

psql_q() {	# [psql args]: quiet, stops at the first error
	anon_as_postgres env PGOPTIONS='-c client_min_messages=warning' \
		psql -X -q -v ON_ERROR_STOP=1 "$@"
}
psql_val() {	# database query: one value
	anon_as_postgres psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

log "generating $CUSTOMERS eligible customers with history"
anon_as_postgres createdb qc_template
psql_q -d qc_template -f "$REPO/examples/billing.sql" >/dev/null
psql_q -d qc_template -c "CREATE EXTENSION anonymize" \
	-f "$REPO/examples/billing_mapping.sql" >/dev/null
psql_q -d qc_template -v profile=history -v first=1 -v n="$CUSTOMERS" \
	-f "$BENCH/generate.sql" >/dev/null
not_eligible=$(psql_q -d qc_template -At -f "$BENCH/queue_contention_setup.sql")
[ "$not_eligible" = 0 ] ||
	anon_die "queue_contention_setup.sql left $not_eligible customers ineligible"

isolation_option() {	# level -> PGOPTIONS value
	printf -- '-c default_transaction_isolation=%s' "${1// /\\ }"
}

# One isolation level: fresh database, requests, load, numbers.
run_level() {
	local level=$1 tag db billing_opts queue_level queue_opts
	local start end log_from dl_before dl_after pgb_rc=0 out
	tag=$(echo "$level" | tr -cd 'a-z ' | awk '{ for (i = 1; i <= NF; i++) printf "%s", substr($i, 1, 1) }')
	db=qc_$tag
	out=$RESULTS/$tag
	mkdir -p "$out"
	chown postgres:postgres "$out"
	queue_level=$level
	[ "$QUEUE_ISOLATION" = same ] || queue_level=$QUEUE_ISOLATION
	billing_opts=$(isolation_option "$level")
	queue_opts="$(isolation_option "$queue_level") -c client_min_messages=notice"

	log "$level: database $db, $CUSTOMERS erasure requests"
	anon_as_postgres createdb -T qc_template "$db"
	psql_q -d "$db" -c "SELECT count(anonymize.request(id)) FROM billing.customers" >/dev/null

	dl_before=$(psql_val "$db" "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
	log_from=$(stat -c %s "$SERVER_LOG")
	start=$(date +%s)
	end=$((start + DURATION))

	log "$level: billing ($CLIENTS clients) and queue (batch_size => $BATCH_SIZE) for ${DURATION}s"
	anon_as_postgres env PGAPPNAME="qc_billing_$tag" PGOPTIONS="$billing_opts" \
		timeout $((DURATION + 120)) \
		pgbench -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" -P 1 \
		--max-tries="$MAX_TRIES" --failures-detailed \
		-D ncust="$CUSTOMERS" -D hot="$HOT_PERCENT" -D window=$((2 * BATCH_SIZE)) \
		-f "$BENCH/queue_contention_billing.pgbench" "$db" \
		>"$out/pgbench.txt" 2>&1 &
	local pgb_pid=$!

	queue_loop "$db" "$tag" "$queue_opts" "$start" "$end" "$out" &
	QUEUE_PID=$!

	wait "$pgb_pid" || pgb_rc=$?
	wait "$QUEUE_PID" || anon_die "$level: the queue loop failed (see $out/queue.txt)"
	QUEUE_PID=
	# pgbench: 1 = bad options or script, 2 = clients aborted by errors
	# other than the retried ones (reported, not fatal)
	[ "$pgb_rc" != 1 ] || { cat "$out/pgbench.txt" >&2; anon_die "$level: pgbench failed"; }
	[ "$pgb_rc" = 0 ] || log "$level: pgbench exited with $pgb_rc (see $out/pgbench.txt)"

	# Backends flush their statistics at exit; give the last ones a moment.
	sleep 1
	dl_after=$(psql_val "$db" "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
	tail -c +$((log_from + 1)) "$SERVER_LOG" >"$out/server.log"

	collect "$level" "$tag" "$db" "$out" $((dl_after - dl_before)) "$pgb_rc"
}

# CALL process_requests until the end; writes $out/queue.txt (psql
# output) and $out/queue.tsv, one line per call: seconds since the start,
# batches, exit code, then requests pending after the call, and of the
# requests this call tried, how many it left 'busy' and how many 'failed'.
queue_loop() {
	local db=$1 tag=$2 opts=$3 start=$4 end=$5 out=$6 now left rc batches counts since
	: >"$out/queue.tsv"
	: >"$out/failed.txt"
	: >"$out/busy.txt"
	while now=$(date +%s) && [ "$now" -lt "$end" ]; do
		left=$((end - now))
		since=$(date +%s.%N)
		rc=0
		anon_as_postgres env PGAPPNAME="qc_queue_$tag" PGOPTIONS="$opts" \
			timeout $((left + 120)) psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
			-c "CALL anonymize.process_requests(batch_size => $BATCH_SIZE, time_budget => '$left seconds')" \
			>"$out/queue.last" 2>&1 || rc=$?
		cat "$out/queue.last" >>"$out/queue.txt"
		batches=$(sed -n 's/.*processed erasure requests in \([0-9]*\) batches.*/\1/p' "$out/queue.last" | tail -n 1)
		counts=$(psql_val "$db" "SELECT format(E'%s\t%s\t%s',
				count(*) FILTER (WHERE state = 'pending'),
				count(*) FILTER (WHERE state = 'pending' AND outcome = 'busy' AND tried),
				count(*) FILTER (WHERE state = 'pending' AND outcome = 'failed' AND tried))
			FROM (SELECT *, last_attempt_at >= to_timestamp($since) AS tried
					FROM anonymize.requests) r") || counts=$'\t\t'
		printf '%s\t%s\t%s\t%s\n' $(($(date +%s) - start)) "${batches:-}" "$rc" "$counts" >>"$out/queue.tsv"
		psql_val "$db" "SELECT request_id || ': ' || blockers FROM anonymize.requests
			WHERE state = 'pending' AND outcome = 'failed'
			  AND last_attempt_at >= to_timestamp($since)" >>"$out/failed.txt" || true
		# why the attempts were busy: the lock error, or (customer skipped
		# by SKIP LOCKED) "the customer is locked by another transaction"
		psql_val "$db" "SELECT request_id || ': ' || coalesce(blockers, '') FROM anonymize.requests
			WHERE state = 'pending' AND outcome = 'busy'
			  AND last_attempt_at >= to_timestamp($since)" >>"$out/busy.txt" || true
		# nothing to do (or an error): do not spin
		if [ "${batches:-0}" = 0 ]; then sleep 0.5; fi
	done
}

# Numbers of one level, appended as "tag<TAB>metric<TAB>value" to
# $RESULTS/metrics.tsv.
collect() {
	local level=$1 tag=$2 db=$3 out=$4 deadlocks=$5 pgb_rc=$6 m=$RESULTS/metrics.tsv
	local slog=$out/server.log p=$out/pgbench.txt q=$out/queue.tsv
	put() { printf '%s\t%s\t%s\n' "$tag" "$1" "$2" >>"$m"; }
	logcount() {	# app pattern -> lines of that application matching it
		grep -c "app=qc_$1_$tag .*$2" "$slog" || true
	}
	by_kind() {	# lines of kinds -> " (kind: n, kind: n)", most frequent first
		sort | uniq -c | sort -rn | awk '{ n = $1; $1 = ""; printf "%s%s: %s", NR == 1 ? " (" : ", ", substr($0, 2), n }
			END { if (NR) printf ")" }'
	}
	pgb() {	# pgbench output line -> first number after it
		sed -n "s/^$1: *\([0-9.]*\).*/\1/p" "$p" | head -n 1
	}
	put level "$level"
	# a crash restarts every backend and discards the statistics: the other
	# numbers of the level are then not to be trusted
	put "server crashes (server log)" "$(grep -c 'terminated by signal' "$slog" || true)"
	put "deadlocks (pg_stat_database)" "$deadlocks"
	put "  victim queue (server log)" "$(logcount queue 'detected deadlock while waiting')"
	put "  victim billing (server log)" "$(logcount billing 'detected deadlock while waiting')"
	put "lock waits > deadlock_timeout: queue" "$(logcount queue 'still waiting for')"
	put "lock waits > deadlock_timeout: billing" "$(logcount billing 'still waiting for')"
	put "billing transactions" "$(pgb 'number of transactions actually processed')"
	put "billing tps" "$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$p" | head -n 1)"
	# pgbench -P 1: tps per second, averaged while the queue had requests
	# pending (up to the second it drained) and after
	put "billing tps while the queue worked / after" "$(awk -v d="$(awk -F'\t' '$4 == "0" { print $1; exit }' "$q")" '
		$1 == "progress:" { t = $2 + 0; if (d == "" || t <= d) { w += $4; nw++ } else { a += $4; na++ } }
		END { printf "%s / %s", nw ? int(w / nw) : "-", na ? int(a / na) : "-" }' "$p")"
	put "billing retried (deadlock, serialization)" "$(pgb 'number of transactions retried')"
	put "billing failed after $MAX_TRIES tries (deadlock/serial.)" \
		"$(pgb 'number of failed transactions') ($(pgb 'number of deadlock failures')/$(pgb 'number of serialization failures'))"
	put "billing other errors (pgbench exit code)" "$(grep -c 'aborted in command' "$p" || true) ($pgb_rc)"
	put "queue calls (with error)" "$(wc -l <"$q") ($(awk -F'\t' '$3 != 0' "$q" | wc -l))"
	put "queue drained after (s)" "$(awk -F'\t' '$4 == "0" { print $1; found = 1; exit }
		END { if (!found) print "not drained" }' "$q")"
	put "queue attempts left busy (by cause)" "$(awk -F'\t' '{ s += $5 } END { print s + 0 }' "$q")$(
		sed -n 's/^[0-9]*: error \([0-9A-Z]*\):.*/\1/p; s/^[0-9]*: the customer is locked.*/skip locked/p' "$out/busy.txt" |
			by_kind)"
	put "queue attempts failed (by SQLSTATE)" "$(awk -F'\t' '{ s += $6 } END { print s + 0 }' "$q")$(
		sed -n 's/^[0-9]*: error \([0-9A-Z]*\):.*/\1/p' "$out/failed.txt" | by_kind)"
	# the same two sums from the queue's own summaries ("... N busy, N failed"
	# of each call), as a check of the table-based ones above
	put "queue busy / failed (its NOTICEs)" "$(sed -n 's/.*processed erasure requests in .* \([0-9]*\) busy, \([0-9]*\) failed.*/\1 \2/p' "$out/queue.txt" |
		awk '{ b += $1; f += $2 } END { print NR ? b " / " f : "n/a" }')"
	psql_val "$db" "
		SELECT format(E'%s\t%s\t%s', '$tag', k, v) FROM (
		SELECT 1, 'requests', count(*) FROM anonymize.requests
		UNION ALL SELECT 2, 'done', count(*) FILTER (WHERE state = 'done') FROM anonymize.requests
		UNION ALL SELECT 3, '  anonymized', count(*) FILTER (WHERE state = 'done' AND outcome = 'anonymized') FROM anonymize.requests
		UNION ALL SELECT 4, 'pending', count(*) FILTER (WHERE state = 'pending') FROM anonymize.requests
		UNION ALL SELECT 5, '  last outcome busy', count(*) FILTER (WHERE state = 'pending' AND outcome = 'busy') FROM anonymize.requests
		UNION ALL SELECT 6, '  last outcome failed', count(*) FILTER (WHERE state = 'pending' AND outcome = 'failed') FROM anonymize.requests
		UNION ALL SELECT 7, '  other (not tried yet, blocked)', count(*) FILTER (WHERE state = 'pending' AND outcome IS DISTINCT FROM 'busy' AND outcome IS DISTINCT FROM 'failed') FROM anonymize.requests
		) AS t (o, k, v) ORDER BY o" >>"$m"
	# the requests left pending, and the errors of failed attempts
	psql_val "$db" "SELECT request_id, outcome, blockers FROM anonymize.requests
		WHERE state = 'pending' ORDER BY request_id" >"$out/pending.txt"
	log "$level: $deadlocks deadlocks; details in $out"
}

report() {
	echo
	echo "anonymize: request queue under billing load ($(date '+%Y-%m-%d %H:%M'), $(nproc) cores," \
		"PostgreSQL $(psql_val qc_template 'SHOW server_version' | cut -d' ' -f1)," \
		"commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
	echo "$CUSTOMERS customers, ${DURATION}s per level, $CLIENTS billing clients," \
		"batch_size => $BATCH_SIZE, queue isolation: $QUEUE_ISOLATION, deadlock_timeout $DEADLOCK_TIMEOUT"
	echo
	awk -F'\t' '
		!($1 in seen_tag) { seen_tag[$1] = 1; tag[++nt] = $1 }
		!($2 in seen_key) { seen_key[$2] = 1; key[++nk] = $2; if (length($2) > w) w = length($2) }
		{ val[$1, $2] = $3 }
		END {
			for (i = 1; i <= nk; i++) {
				k = key[i]
				line = sprintf("%-*s", w, k == "level" ? "" : k)
				for (j = 1; j <= nt; j++) line = line sprintf(" | %-16s", val[tag[j], k])
				sub(/ +$/, "", line)
				print line
				if (k == "level") {
					line = sprintf("%*s", w, ""); gsub(/ /, "-", line)
					for (j = 1; j <= nt; j++) line = line "-+-----------------"
					print line
				}
			}
		}' "$RESULTS/metrics.tsv"
	echo
	echo "raw results: $RESULTS"
}

# ---------------------------------------------------------------- main
: >"$RESULTS/metrics.tsv"
for level in "${LEVEL_LIST[@]}"; do
	level=$(echo "$level" | sed 's/^ *//; s/ *$//')
	run_level "$level"
done
report | tee "$RESULTS/report.txt"

if [ "$CHECK" = 1 ]; then
	total=$(awk -F'\t' '$2 == "deadlocks (pg_stat_database)" { s += $3 } END { print s + 0 }' "$RESULTS/metrics.tsv")
	crashes=$(awk -F'\t' '$2 == "server crashes (server log)" { s += $3 } END { print s + 0 }' "$RESULTS/metrics.tsv")
	if [ "$crashes" -gt 0 ]; then
		echo "--check: $crashes server crashes (see server.log); deadlock counts are not reliable" >&2
		exit 1
	fi
	if [ "$total" -gt 0 ]; then
		echo "--check: $total deadlocks" >&2
		exit 1
	fi
	echo "--check: no deadlock"
fi
exit 0
