#!/bin/bash
# bench/router_overhead.sh -- the per-call cost of the PL/Proxy router
# (examples/plproxy/): can_anonymize called on the shard directly and
# through the router, in the same run, alternating which goes first.
#
#   bash bench/router_overhead.sh        # as root; own throwaway cluster
#
# One cluster holds database "shard" (examples/billing.sql, the extension,
# its mapping, N eligible customers) and database "router", set up by
# examples/plproxy/setup_router.sh with one partition (1 is a power of two)
# that connects to "shard" over the unix socket: the overhead measured is
# PL/Proxy's (a libpq round trip on the same machine, no network).  pgbench
# -M prepared, one client, each call a random customer:
#   direct  SELECT anonymize.can_anonymize(id)          in database shard
#   router  SELECT anonymize_router.can_anonymize(id)   in database router
# anonymize_customer is not measured through the router in BEGIN/ROLLBACK:
# the shard commits each proxied call on its own, so the ROLLBACK would not
# undo the erasure.
# Environment: N customers (default 10000), SECONDS_PER_RUN (default 10),
# ROUNDS (default 3), PORT (default 55510).  Prints the median latency per
# call of each way, and the ratio router / direct.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
# shellcheck source=../test/lib.sh
. "$REPO/test/lib.sh"

N=${N:-10000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-55510}

anon_install_deps
anon_build_install "$REPO" >/dev/null
work=$(anon_tmpdir)
trap 'anon_stop_cluster; rm -rf "$work"' EXIT
anon_start_cluster "$work/cluster" "$PORT"

psql_q() { anon_as_postgres psql -X -q -v ON_ERROR_STOP=1 "$@"; }
anon_as_postgres createdb shard
anon_as_postgres createdb router
psql_q -d shard -f "$REPO/examples/billing.sql" >/dev/null
psql_q -d shard -c "CREATE EXTENSION anonymize" -f "$REPO/examples/billing_mapping.sql" >/dev/null
psql_q -d shard -c "
INSERT INTO billing.customers (id, name, email)
SELECT md5('customer ' || i)::uuid, 'Customer ' || i, 'c' || i || '@example.com'
  FROM generate_series(1, $N) i;
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name, address_line1, city, country)
SELECT id, 'First', 'Last', '1 Main St', 'Town', 'NL' FROM billing.customers;
INSERT INTO billing.sent_emails (customer_id, recipient) SELECT id, email FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state) SELECT id, 'terminated' FROM billing.customers;" -c 'VACUUM ANALYZE'
PGDATABASE=router anon_as_postgres bash "$REPO/examples/plproxy/setup_router.sh" \
	"dbname=shard host=$PGHOST port=$PGPORT" >/dev/null

cat >"$work/direct.pgbench" <<EOF
\set i random(1, $N)
SELECT anonymize.can_anonymize(md5('customer ' || :i)::uuid);
EOF
cat >"$work/router.pgbench" <<EOF
\set i random(1, $N)
SELECT anonymize_router.can_anonymize(md5('customer ' || :i)::uuid);
EOF
chown postgres "$work"/*.pgbench

# Latency per call in ms of one pgbench run.
run() {
	local way=$1 db=$2
	anon_as_postgres pgbench -n -M prepared -c 1 -T "$SECONDS_PER_RUN" \
		-f "$work/$way.pgbench" "$db" 2>&1 |
		sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: >"$work/direct.ms"
: >"$work/router.ms"
# Warm-up: the router's connection and both plan caches.
run direct shard >/dev/null
run router router >/dev/null
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then
		run direct shard >>"$work/direct.ms"
		run router router >>"$work/router.ms"
	else
		run router router >>"$work/router.ms"
		run direct shard >>"$work/direct.ms"
	fi
done
direct=$(median <"$work/direct.ms")
router=$(median <"$work/router.ms")
echo "can_anonymize, $N customers, pgbench -M prepared -c 1 -T $SECONDS_PER_RUN, median of $ROUNDS rounds"
echo "runs direct (ms): $(tr '\n' ' ' <"$work/direct.ms")"
echo "runs router (ms): $(tr '\n' ' ' <"$work/router.ms")"
awk -v d="$direct" -v r="$router" 'BEGIN {
	printf "direct %.3f ms/call, router %.3f ms/call, overhead %.3f ms/call, ratio router/direct %.2f\n",
	       d, r, r - d, r / d }'
echo "command: pgbench -n -M prepared -c 1 -T $SECONDS_PER_RUN -f {direct,router}.pgbench {shard,router}"
