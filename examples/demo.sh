#!/bin/bash
# examples/demo.sh -- show the anonymize extension at work:  bash examples/demo.sh
#
# As root, from any directory: installs the packages, builds and installs the
# extension, starts a throwaway cluster (port 54330, private socket, as user
# postgres, autovacuum off), loads examples/billing.sql and
# examples/sample_customers.sql, and then shows, in this order:
#
#   examples/demo.sql   the mapping; the customers before; who may be erased
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
psql_script <"$repo/examples/demo.sql" 2>&1

echo
echo '== 9. The scheduled job, in a connection of its own:'
echo '   psql -c "CALL anonymize.process_requests()"'
psql_script -c 'CALL anonymize.process_requests()' 2>&1

psql_script <"$repo/examples/demo_after_job.sql" 2>&1
