# test/lib.sh -- shared bash functions for the anonymize extension's scripts.
#
# Sourced (never run) by test/run.sh, examples/demo.sh and bench/run.sh; this
# is the one place that installs packages, builds the extension and starts or
# stops throwaway PostgreSQL 15 clusters.  Everything runs as root; server
# processes and clients run as the OS user "postgres".
#
#   anon_install_deps                  apt-get install what is missing
#   anon_build_install <repo>          make && make install (the install
#                                      is skipped if ANON_SKIP_INSTALL=1)
#   anon_tmpdir                        print a new temp dir usable by postgres
#   anon_start_cluster <dir> <port> [extra postgresql.conf lines]
#                                      initdb + start; exports PGHOST/PGPORT/PGUSER
#   anon_stop_cluster                  stop it (quiet, idempotent, trap-safe)
#   anon_as_postgres <cmd...>          run a command as postgres with PG* env
#
# Environment: ANON_PG_CONF  extra postgresql.conf lines for every cluster
#              (e.g. "shared_preload_libraries = 'pg_cron'").
#              ANON_PG_BIN  bin directory of the PostgreSQL 15 to use (default
#              /usr/lib/postgresql/15/bin, the system one); a relocated copy
#              of the tree (cp -a /usr/lib/postgresql /usr/share/postgresql
#              under one prefix) lets the tests run without touching it.
#              ANON_SKIP_INSTALL=1  anon_build_install builds but does not
#              make install (default: it installs, into ANON_PG_BIN's tree).

ANON_PG_BIN=${ANON_PG_BIN:-/usr/lib/postgresql/15/bin}
ANON_PG_CONFIG=$ANON_PG_BIN/pg_config
ANON_DEPS=(postgresql-15 postgresql-server-dev-15 postgresql-contrib
	libipc-run-perl postgresql-15-cron postgresql-15-dirtyread postgresql-15-plproxy
	build-essential gcc make)

anon_die() { echo "$(basename "$0"): $*" >&2; exit 1; }

anon_install_deps() {
	[ "$(id -u)" = 0 ] || anon_die "must run as root"
	local pkg missing=() log
	for pkg in "${ANON_DEPS[@]}"; do
		[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = \
			"install ok installed" ] || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	log=$(mktemp)
	if ! { apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
	} >"$log" 2>&1; then
		cat "$log" >&2
		anon_die "apt-get install failed: ${missing[*]}"
	fi
	rm -f "$log"
}

anon_build_install() {
	local repo=$1 log install=install
	if [ "${ANON_SKIP_INSTALL:-0}" = 1 ]; then
		echo "ANON_SKIP_INSTALL=1: building the extension, not installing it"
		install=
	fi
	log=$(mktemp)
	if ! { make -C "$repo" PG_CONFIG="$ANON_PG_CONFIG" &&
		{ [ -z "$install" ] ||
			make -C "$repo" PG_CONFIG="$ANON_PG_CONFIG" install; }; } >"$log" 2>&1; then
		cat "$log" >&2
		anon_die "build of the extension failed (see above)"
	fi
	rm -f "$log"
}

anon_tmpdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/anonymize.XXXXXX")
	chmod 755 "$d"
	chown postgres:postgres "$d"
	echo "$d"
}

anon_as_postgres() {
	local v vars=(PATH="$ANON_PG_BIN:$PATH")
	for v in PGHOST PGPORT PGUSER PGDATABASE; do
		[ -z "${!v:-}" ] || vars+=("$v=${!v}")
	done
	# Run in the caller's directory if postgres may enter it, else in /.
	runuser -u postgres -- env "${vars[@]}" \
		sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" "$@"
}

# Layout under <dir>: data/ (PGDATA), socket/ (mode 700), server.log.
anon_start_cluster() {
	local dir=$1 port=$2 extra=${3:-}
	mkdir -p "$dir"
	[ -z "$(ls -A "$dir")" ] || anon_die "cluster dir $dir is not empty"
	chown postgres:postgres "$dir"
	chmod 755 "$dir"
	runuser -u postgres -- install -d -m 700 "$dir/socket"
	ANON_PGDATA=$dir/data
	anon_as_postgres initdb -D "$ANON_PGDATA" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; anon_die "initdb failed"; }
	cat >>"$ANON_PGDATA/postgresql.conf" <<-EOF

		# added by test/lib.sh
		listen_addresses = ''
		port = $port
		unix_socket_directories = '$dir/socket'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		${ANON_PG_CONF:-}
		$extra
	EOF
	export PGHOST=$dir/socket PGPORT=$port PGUSER=postgres
	anon_as_postgres pg_ctl -D "$ANON_PGDATA" -l "$dir/server.log" -w -s start ||
		{ cat "$dir/server.log" >&2; anon_die "cluster did not start"; }
}

anon_stop_cluster() {
	[ -n "${ANON_PGDATA:-}" ] && [ -f "$ANON_PGDATA/postmaster.pid" ] || return 0
	anon_as_postgres pg_ctl -D "$ANON_PGDATA" -m fast -w -s stop >/dev/null 2>&1 ||
		echo "warning: could not stop the cluster in $ANON_PGDATA" >&2
	return 0
}
