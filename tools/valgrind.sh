#!/bin/bash
# tools/valgrind.sh -- manual check, not part of the test suite (test/run.sh
# does not run it): the regression tests (sql/*.sql) against a throwaway cluster whose
# postmaster, and so every backend, runs under valgrind memcheck; then counts
# the errors valgrind reported, and those whose stack passes through the
# extension.  See docs/memory-and-valgrind.md.
#
# As root, with the extension built and installed:
#   bash tools/valgrind.sh                 # every sql/*.sql test
#   REGRESS="hostile_input purge" bash tools/valgrind.sh
# Environment:
#   VALGRIND_SUPP  PostgreSQL's src/tools/valgrind.supp (Debian does not ship
#                  it; take it from the PostgreSQL 15 source).  Without it the
#                  run goes on without suppressions.
#   PORT           port of the cluster (default 54345; private socket dir)
#   PGBIN          bin directory of the PostgreSQL 15 to use (default
#                  /usr/lib/postgresql/15/bin; a relocated copy of the tree
#                  lets a private build of the extension be checked)
#   KEEP=1         keep the work directory (logs) at the end
#   ERROR_EXITCODE exit code of a process with a valgrind error (default 128,
#                  which the postmaster takes for a crash; 0 to go on)
# Prints the counts last; the valgrind logs are in <work>/valgrind/.
# Exit status: 0 when no error passes through the extension.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${PGBIN:-/usr/lib/postgresql/15/bin}
port=${PORT:-54345}
supp=${VALGRIND_SUPP:-}

[ "$(id -u)" = 0 ] || { echo "tools/valgrind.sh: run as root" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "tools/valgrind.sh: apt-get install valgrind" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/anonymize-valgrind.XXXXXX")
chmod 755 "$work"
chown postgres:postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
stop() {
	if [ -f "$work/data/postmaster.pid" ]; then
		as_pg "$bin/pg_ctl" -D "$work/data" -m fast -t 600 -w stop >/dev/null 2>&1 || true
	fi
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap stop EXIT

# A copy of the repository that postgres may write its results into.
as_pg mkdir "$work/repo" "$work/valgrind" "$work/socket"
chmod 700 "$work/socket"
tar -C "$repo" --exclude=./.git --exclude=./results --exclude=./tmp_check \
	--exclude=./output_iso -cf - . | as_pg tar -C "$work/repo" -xf -

as_pg "$bin/initdb" -D "$work/data" -U postgres -A trust --encoding=UTF8 \
	--locale=C.UTF-8 >"$work/initdb.log" 2>&1
cat >>"$work/data/postgresql.conf" <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$work/socket'
fsync = off
jit = off
max_connections = 20
autovacuum = off
EOF

# Debian's postgres binary is stripped: the static functions that
# valgrind.supp names (XLogWrite, ...) show as "???", so its suppressions of
# padding bytes written to files and sockets do not match.  These do, for
# any such write by the server (the point here is the extension's memory
# errors, but a server error would stop the run).
cat >"$work/debian.supp" <<'SUPP'
{
	postgres_padding_pwrite
	Memcheck:Param
	pwrite64(buf)
	...
	obj:*/bin/postgres
}
{
	postgres_padding_write
	Memcheck:Param
	write(buf)
	...
	obj:*/bin/postgres
}
{
	postgres_padding_sendto
	Memcheck:Param
	sendto(msg)
	...
	obj:*/bin/postgres
}
{
	postgres_padding_socketcall_sendto
	Memcheck:Param
	socketcall.sendto(msg)
	...
	obj:*/bin/postgres
}
{
	postgres_padding_crc
	Memcheck:Value8
	fun:pg_comp_crc32c*
}
{
	postgres_padding_crc_cond
	Memcheck:Cond
	fun:pg_comp_crc32c*
}
SUPP
supp_opt=(--suppressions="$work/debian.supp")
if [ -n "$supp" ]; then
	cp "$supp" "$work/valgrind.supp"
	supp_opt+=(--suppressions="$work/valgrind.supp")
else
	echo "tools/valgrind.sh: no VALGRIND_SUPP given, using only the Debian suppressions" >&2
fi
chmod 644 "$work"/*.supp

# The postmaster under valgrind; its children (the backends) are forked, so
# valgrind follows them; --trace-children follows exec'd ones too.  A
# backend with an error exits with 128, which the postmaster treats as a
# crash: loud on purpose.
as_pg valgrind --quiet --trace-children=yes --track-origins=yes \
	--read-var-info=yes --num-callers=40 --leak-check=no \
	--error-exitcode="${ERROR_EXITCODE:-128}" "${supp_opt[@]}" \
	--log-file="$work/valgrind/%p.log" \
	"$bin/postgres" -D "$work/data" >"$work/server.log" 2>&1 &

for _ in $(seq 1 600); do
	as_pg "$bin/pg_isready" -q -h "$work/socket" -p "$port" && break
	sleep 1
done
as_pg "$bin/pg_isready" -h "$work/socket" -p "$port"

if [ -z "${REGRESS:-}" ]; then
	REGRESS=$(cd "$repo" && ls sql/*.sql | sed 's|sql/||; s|\.sql$||' | tr '\n' ' ')
fi
rc=0
(cd "$work/repo" && as_pg make -s installcheck PG_CONFIG="$bin/pg_config" \
	PGHOST="$work/socket" PGPORT="$port" PGUSER=postgres \
	REGRESS="$REGRESS" ISOLATION= TAP_TESTS=) || rc=$?
[ -f "$work/repo/regression.diffs" ] && cp "$work/repo/regression.diffs" "$work/"
as_pg "$bin/pg_ctl" -D "$work/data" -m fast -t 600 -w stop >/dev/null 2>&1 || true

# One valgrind error is a block of lines "==pid== ..." ended by "==pid== ".
# It comes from the extension when one of its frames is in anonymize.so or
# in one of its source files.
files=$(cd "$repo/src" && ls *.c | sed 's/\./\\./' | paste -sd'|')
summary=$(cat "$work"/valgrind/*.log 2>/dev/null | awk -v files="$files" '
	function flush() {
		if (kind != "") {
			total++; kinds[kind]++
			if (ours) { mine++; mykinds[kind]++ }
		}
		kind = ""; ours = 0
	}
	/^==[0-9]+== Warning:/ { next }
	/^==[0-9]+== [A-Z]/ && kind == "" { kind = $0; sub(/^==[0-9]+== /, "", kind);
		sub(/ of size [0-9]+/, "", kind); sub(/ at 0x.*/, "", kind); next }
	/^==[0-9]+== *$/ { flush(); next }
	kind != "" && ($0 ~ /anonymize\.so/ || $0 ~ ("\\((" files "):[0-9]+\\)")) { ours = 1 }
	END {
		flush()
		printf "valgrind errors: %d in all, %d through the extension\n", total, mine
		for (k in kinds) printf "  %5d  %s\n", kinds[k], k
		for (k in mykinds) printf "  extension: %5d  %s\n", mykinds[k], k
	}')
echo "regression tests: exit status $rc (diffs, if any: $work/regression.diffs)"
echo "$summary"
echo "logs: $(ls "$work"/valgrind | wc -l) files in $work/valgrind"
mine=$(echo "$summary" | sed -n 's/.* \([0-9]*\) through the extension/\1/p')
[ "${mine:-0}" = 0 ]
