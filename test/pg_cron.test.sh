#!/bin/bash
# test/pg_cron.test.sh -- the erasure-request queue run by pg_cron, for real.
#
# Starts its own throwaway cluster (port 54350, private socket directory,
# no TCP) with shared_preload_libraries = 'pg_cron' and
# cron.database_name = 'crontest'; pg_cron runs each job through libpq in a
# connection of its own, so cron.host points at the socket directory and
# local connections are trusted.  Loads examples/billing.sql, creates the
# anonymize and pg_cron extensions, queues erasure requests (eligible
# customers, one blocked) and schedules
#   CALL anonymize.process_requests(batch_size => 100)
# every minute.  Passes when cron.job_run_details shows a succeeded run of
# the job (the procedure commits per batch, which works in pg_cron's own
# connection) and every eligible request is done, with its audit row.
#
# Run as root (or as postgres).  Environment: ANON_REPO (the repository;
# default: the parent of this script's directory).  The extension must be
# installed (make install).  Exits 0 with "SKIP: pg_cron not available" when
# postgresql-15-cron is missing and cannot be installed.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PORT=54350
DB=crontest
JOB=anonymize-requests
N_ELIGIBLE=250
WAIT_SECONDS=150
repo=${ANON_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

die() { echo "pg_cron.test.sh: FAIL: $*" >&2; exit 1; }

# pg_cron, installed if need be.
cron_installed() {
	[ -f "$("$PG_BIN/pg_config" --pkglibdir)/pg_cron.so" ]
}
if ! cron_installed; then
	if [ "$(id -u)" != 0 ] ||
		! { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q postgresql-15-cron; } >/dev/null 2>&1 ||
		! cron_installed; then
		echo "SKIP: pg_cron not available"
		exit 0
	fi
fi
[ -f "$("$PG_BIN/pg_config" --sharedir)/extension/anonymize.control" ] ||
	die "the anonymize extension is not installed (run make install)"
[ -r "$repo/examples/billing.sql" ] || die "no $repo/examples/billing.sql"

# Commands as the postgres user (or as ourselves if we are postgres).
as_postgres() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
	else
		runuser -u postgres -- "$@"
	fi
}

work=$(mktemp -d /tmp/anon_pg_cron.XXXXXX)
chmod 755 "$work"
[ "$(id -un)" = postgres ] || chown postgres:postgres "$work"
pgdata=$work/data
sock=$work/socket

cleanup() {
	local rc=$?
	if [ -f "$pgdata/postmaster.pid" ]; then
		as_postgres "$PG_BIN/pg_ctl" -D "$pgdata" -m immediate -w -s stop \
			>/dev/null 2>&1 || echo "warning: could not stop the cluster in $pgdata" >&2
	fi
	if [ $rc != 0 ] && [ -f "$work/server.log" ]; then
		echo "--- server log" >&2
		tail -n 60 "$work/server.log" >&2
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_postgres install -d -m 700 "$sock"
as_postgres "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust \
	--encoding=UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log" >&2; die "initdb failed"; }
cat >>"$pgdata/postgresql.conf" <<EOF

# added by test/pg_cron.test.sh
listen_addresses = ''
port = $PORT
unix_socket_directories = '$sock'
fsync = off
shared_preload_libraries = 'pg_cron'
cron.database_name = '$DB'
cron.host = '$sock'
EOF
# initdb --auth=trust already trusts local connections; say it for pg_cron.
grep -Eq '^local[[:space:]]+all[[:space:]]+all[[:space:]]+trust' "$pgdata/pg_hba.conf" ||
	die "pg_hba.conf does not trust local connections"

as_postgres "$PG_BIN/pg_ctl" -D "$pgdata" -l "$work/server.log" -w -s start ||
	die "the cluster did not start"

psql() {
	as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PORT" "$@"
}

# The pg_cron launcher exits until this database exists, and is restarted.
psql -d postgres -c "CREATE DATABASE $DB" >/dev/null
# billing.sql is read by this shell, so postgres needs no access to the repo.
psql -d "$DB" <"$repo/examples/billing.sql" >/dev/null
psql -d "$DB" >/dev/null <<EOF
CREATE EXTENSION anonymize;
CREATE EXTENSION pg_cron;

INSERT INTO billing.customers (id, name, email)
SELECT format('00000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid,
       'Customer ' || i, 'customer' || i || '@example.com'
  FROM generate_series(1, $N_ELIGIBLE) i;
INSERT INTO billing.billing_addresses (customer_id, first_name, last_name,
       address_line1, city, country)
SELECT id, 'First', 'Last', '1 Main St', 'Town', 'NL' FROM billing.customers;
INSERT INTO billing.sent_emails (customer_id, recipient)
SELECT id, email FROM billing.customers;
INSERT INTO billing.subscriptions (customer_id, state)
SELECT id, 'terminated' FROM billing.customers;

-- one blocked customer: its request stays pending
INSERT INTO billing.customers (id, name, email)
VALUES ('ffffffff-ffff-ffff-ffff-ffffffffffff', 'Active Customer', 'active@example.com');
INSERT INTO billing.subscriptions (customer_id, state)
VALUES ('ffffffff-ffff-ffff-ffff-ffffffffffff', 'active');

SELECT count(anonymize.request(id, 'pg_cron test')) FROM billing.customers;
SELECT cron.schedule('$JOB', '* * * * *',
                     'CALL anonymize.process_requests(batch_size => 100)');
EOF
echo "scheduled $JOB; waiting for pg_cron (at most ${WAIT_SECONDS}s)"

status=
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
	status=$(psql -d "$DB" -At -F ' ' <<'EOF'
SELECT (SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = 'anonymize-requests' AND d.status = 'succeeded'),
       (SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = 'anonymize-requests' AND d.status = 'failed'),
       (SELECT count(*) FROM anonymize.requests WHERE state = 'done'),
       (SELECT count(*) FROM anonymize.requests WHERE state = 'pending')
EOF
	)
	read -r succeeded failed n_done pending <<<"$status"
	if [ "$failed" != 0 ]; then
		psql -d "$DB" -c "SELECT status, return_message FROM cron.job_run_details" >&2
		die "the pg_cron job failed"
	fi
	if [ "$succeeded" -gt 0 ] && [ "$n_done" = "$N_ELIGIBLE" ] && [ "$pending" = 1 ]; then
		break
	fi
	[ $SECONDS -lt $deadline ] ||
		{
			psql -d "$DB" -c "SELECT * FROM cron.job_run_details" >&2 || true
			die "after ${WAIT_SECONDS}s: $succeeded succeeded runs, $n_done requests done, $pending pending (expected a succeeded run, $N_ELIGIBLE done, 1 pending)"
		}
	sleep 5
done

# What the run did.
check=$(psql -d "$DB" -At -F ' ' <<'EOF'
SELECT (SELECT count(*) FROM anonymize.requests
         WHERE state = 'done' AND outcome = 'anonymized'),
       (SELECT count(*) FROM anonymize.audit_log),
       (SELECT count(*) FROM billing.sent_emails),
       (SELECT outcome FROM anonymize.requests
         WHERE customer_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'),
       (SELECT count(*) FROM billing.customers WHERE name IS NULL AND email IS NULL)
EOF
)
read -r anonymized audit emails blocked_outcome erased <<<"$check"
[ "$anonymized" = "$N_ELIGIBLE" ] || die "$anonymized requests anonymized, expected $N_ELIGIBLE"
[ "$audit" = "$N_ELIGIBLE" ] || die "$audit audit rows, expected $N_ELIGIBLE"
[ "$emails" = 0 ] || die "$emails sent emails left"
[ "$erased" = "$N_ELIGIBLE" ] || die "$erased customers erased, expected $N_ELIGIBLE"
[ "$blocked_outcome" = blocked ] || die "the blocked request has outcome '$blocked_outcome'"
grep -q "anonymize: processed erasure requests in 3 batches: $N_ELIGIBLE anonymized, 0 closed without erasure, 1 blocked, 0 busy, 0 failed" \
	"$work/server.log" || die "no LOG line of the first run in the server log"

echo "ok: pg_cron ran CALL anonymize.process_requests(); $anonymized requests done, 1 blocked"
