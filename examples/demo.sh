#!/bin/bash
# examples/demo.sh -- show the anonymize extension at work:  bash examples/demo.sh
#
# As root, from any directory: installs the packages, builds and installs the
# extension, starts a throwaway cluster (port 54330, private socket, as user
# postgres, autovacuum off), loads examples/billing.sql and
# examples/sample_customers.sql, and then shows, in this order:
#
#   (here)              CREATE EXTENSION anonymize, which installs no mapping
#                       (a call fails until one is loaded), and the mapping
#                       of examples/billing.sql: examples/billing_mapping.sql
#   examples/demo.sql   the mapping, read back from its tables as a tree of
#                       scopes and rules; the customers before; who may be erased
#                       and what blocks the others; the erasure of a company
#                       and of an individual; the refusal for the customer
#                       that still has an active subscription, a due invoice
#                       and an open balance; the customers after; erasure
#                       requests for the active customer and a former one
#   (here)              CALL anonymize.process_requests() in a connection of
#                       its own, as a scheduled job (cron, pg_cron) runs it
#   examples/demo_after_job.sql
#                       the requests' outcome, the audit log, and the dead
#                       tuples of the mapped tables before and after VACUUM
#
# The cluster is stopped and removed at the end.  Takes a few seconds once
# the packages are installed and the extension is built.
#
# Environment (optional):
#   ANON_PG_BIN      PostgreSQL bin directory (default /usr/lib/postgresql/15/bin)
#   ANON_SKIP_BUILD=1  do not build and install the extension; use the one
#                    installed for ANON_PG_BIN (e.g. a private relocated copy
#                    of PostgreSQL)
#   ANON_DEMO_PORT   port of the throwaway cluster (default 54330)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pg_bin=${ANON_PG_BIN:-/usr/lib/postgresql/15/bin}
# shellcheck source=../test/lib.sh
. "$repo/test/lib.sh"
# test/lib.sh sets the system's bin directory; use ours.
ANON_PG_BIN=$pg_bin
# shellcheck disable=SC2034  # read by anon_build_install (test/lib.sh)
ANON_PG_CONFIG=$pg_bin/pg_config

work=
cleanup() { anon_stop_cluster; [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

anon_install_deps
if [ "${ANON_SKIP_BUILD:-0}" != 1 ]; then
	anon_build_install "$repo"
fi
work=$(anon_tmpdir)
# autovacuum off: the dead tuples of the erasures wait for the VACUUM of the demo.
anon_start_cluster "$work/cluster" "${ANON_DEMO_PORT:-54330}" "autovacuum = off"
export PGDATABASE=demo

# psql reads the scripts on stdin: the repository may not be readable by
# postgres, and without -f psql does not prefix messages with file:line.
psql_script() { anon_as_postgres psql -X -q -v ON_ERROR_STOP=1 "$@"; }

anon_as_postgres createdb demo
cat "$repo/examples/billing.sql" "$repo/examples/sample_customers.sql" | psql_script

echo
echo '== 0. CREATE EXTENSION anonymize installs no mapping: until one is loaded, calls fail'
echo '   psql -c "CREATE EXTENSION anonymize"'
psql_script -c 'CREATE EXTENSION anonymize'
echo "   psql -c \"SELECT anonymize.can_anonymize('11111111-1111-1111-1111-111111111111')\"   (this ERROR is expected)"
psql_script -c "SELECT anonymize.can_anonymize('11111111-1111-1111-1111-111111111111')" 2>&1 || true
echo '   The mapping of examples/billing.sql, loaded by the extension owner:'
echo '   psql -f examples/billing_mapping.sql'
# Each line of it is a SELECT of a void function: only errors are of interest.
psql_script <"$repo/examples/billing_mapping.sql" >/dev/null
psql_script <"$repo/examples/demo.sql" 2>&1

echo
echo '== 9. The scheduled job, in a connection of its own:'
echo '   psql -c "CALL anonymize.process_requests()"'
psql_script -c 'CALL anonymize.process_requests()' 2>&1

psql_script <"$repo/examples/demo_after_job.sql" 2>&1
