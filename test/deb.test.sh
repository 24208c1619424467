#!/bin/bash
# test/deb.test.sh -- the Debian package postgresql-15-anonymize builds from a
# clean copy of the repository, installs, and passes the regression suite.
#
# Why: people install the extension as a .deb; debian/ must keep building as
# the sources change (file lists, out-of-tree build in build-15/, -Werror
# under Debian's hardening flags) and the package must carry every file the
# extension needs.
#
# Steps, as root:
#   1. copies the repository (without .git and build products) to a temp dir;
#   2. installs the build dependencies with apt-get if dpkg-checkbuilddeps
#      finds some missing (prints "SKIP: ..." and exits 0 if that fails, e.g.
#      no network);
#   3. dpkg-buildpackage -us -uc -b there, with DEB_BUILD_OPTIONS=nocheck:
#      the build-time test (debian/rules: override_dh_pgxs_test, pg_virtualenv
#      on localhost) is skipped, because step 6 runs the same suite against
#      the installed package.  ANON_DEB_BUILD_CHECK=1 runs it as well;
#   4. dpkg -i postgresql-15-anonymize_*.deb (it stays installed: the same
#      files as make install's);
#   5. asserts that dpkg -L lists anonymize.so, anonymize.control and every
#      install/upgrade script of the repository, that the installed control
#      file and scripts equal the repository's, and that dpkg -V finds the
#      installed files unmodified;
#   6. make installcheck (REGRESS only: ISOLATION= TAP_TESTS=) in the copy,
#      as user postgres, with PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config,
#      against the cluster in PGHOST/PGPORT/PGUSER (test/run.sh's); without
#      PGPORT it starts a throwaway one of its own with pg_virtualenv.
#
# Environment: ANON_REPO (default: the parent of this script's directory),
# PGHOST, PGPORT, PGUSER.  Takes about 20-50 s (2 cores).
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
PKG=postgresql-15-anonymize
repo=${ANON_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

die() { echo "deb.test.sh: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { echo "SKIP: deb.test.sh must run as root (dpkg -i)"; exit 0; }
[ -f "$repo/debian/control" ] || die "no $repo/debian/control"

work=$(mktemp -d "${TMPDIR:-/tmp}/anon_deb.XXXXXX")
chmod 755 "$work"
cleanup() {
	local rc=$?
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. A clean copy; dpkg-buildpackage writes the .debs next to it, in $work.
src=$work/anonymize
mkdir "$src"
tar -C "$repo" --exclude=./.git --exclude=./results --exclude=./output_iso \
	--exclude=./tmp_check --exclude=./tmp_check_iso --exclude='./build-*' \
	--exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./debian/.debhelper --exclude="./debian/$PKG" \
	-cf - . | tar -C "$src" -xf -

# 2. Build dependencies.
apt_install() {
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } \
		>"$work/apt.log" 2>&1
}
if ! command -v dpkg-checkbuilddeps >/dev/null; then
	apt_install dpkg-dev || { echo "SKIP: cannot install dpkg-dev with apt-get"; exit 0; }
fi
if ! (cd "$src" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
	echo "installing the build dependencies"
	if ! { apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q "$src"; } >"$work/apt.log" 2>&1 ||
		! (cd "$src" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
		tail -n 5 "$work/apt.log"
		echo "SKIP: the build dependencies cannot be installed with apt-get"
		exit 0
	fi
fi

# 3. Build.
opts=nocheck
[ "${ANON_DEB_BUILD_CHECK:-0}" = 0 ] || opts=
start=$SECONDS
if ! (cd "$src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log" >&2
	die "dpkg-buildpackage -us -uc -b failed"
fi
if [ -z "$opts" ]; then
	grep -q 'All [0-9]* tests passed' "$work/build.log" ||
		die "the build-time regression suite did not report its tests passed"
fi
shopt -s nullglob
debs=("$work/${PKG}"_*.deb)
shopt -u nullglob
[ ${#debs[@]} = 1 ] || die "expected one ${PKG}_*.deb in $work, found ${#debs[@]}: ${debs[*]:-}"
echo "ok: dpkg-buildpackage -us -uc -b${opts:+ (DEB_BUILD_OPTIONS=$opts)} built ${debs[0]##*/} in $((SECONDS - start))s"

# 4. Install.
dpkg -i "${debs[0]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg -i failed"; }
[ "$(dpkg-query -W -f='${Status} ${Version}' "$PKG")" = \
	"install ok installed $(cd "$src" && dpkg-parsechangelog -S Version)" ] ||
	die "$PKG is not installed in the version of debian/changelog"
echo "ok: dpkg -i installed $PKG $(dpkg-query -W -f='${Version}' "$PKG")"

# 5. Contents.
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
files=$(dpkg -L "$PKG")
want=("$libdir/anonymize.so" "$extdir/anonymize.control")
for f in "$src"/anonymize--*.sql; do want+=("$extdir/${f##*/}"); done
for f in "${want[@]}"; do
	grep -qxF "$f" <<<"$files" || die "dpkg -L $PKG does not list $f"
	[ -f "$f" ] || die "$f is listed but not installed"
done
for f in "$src"/anonymize.control "$src"/anonymize--*.sql; do
	cmp -s "$f" "$extdir/${f##*/}" || die "installed $extdir/${f##*/} differs from the repository's"
done
# Every SQL script the package ships is one of the repository's.
extra=$(grep -E "^$extdir/anonymize.*\.sql$" <<<"$files" | while read -r f; do
	[ -f "$src/${f##*/}" ] || echo "$f"
done)
[ -z "$extra" ] || die "the package ships scripts not in the repository: $extra"
out=$(dpkg -V "$PKG" 2>&1) || die "dpkg -V $PKG: $out"
[ -z "$out" ] || die "dpkg -V $PKG: $out"
echo "ok: dpkg -L lists ${#want[@]} files (anonymize.so, anonymize.control, $((${#want[@]} - 2)) SQL scripts), equal to the repository's; dpkg -V clean"

# 6. The regression suite against the installed package.
chown -R postgres:postgres "$src"
regress=(make -C "$src" installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= TAP_TESTS=)
start=$SECONDS
if [ -n "${PGPORT:-}" ]; then
	where="the cluster at ${PGHOST:-localhost}:$PGPORT"
	cmd=(env PATH="$PG_BIN:$PATH" PGHOST="${PGHOST:-}" PGPORT="$PGPORT"
		PGUSER="${PGUSER:-postgres}" "${regress[@]}")
else
	where="a pg_virtualenv cluster"
	cmd=(env PATH="$PG_BIN:$PATH" pg_virtualenv -v 15 "${regress[@]}")
fi
if ! (cd / && runuser -u postgres -- "${cmd[@]}") >"$work/regress.log" 2>&1; then
	cat "$work/regress.log" >&2
	[ ! -f "$src/regression.diffs" ] || cat "$src/regression.diffs" >&2
	die "make installcheck against the installed package failed"
fi
summary=$(grep -E 'All [0-9]+ tests passed' "$work/regress.log") ||
	{ cat "$work/regress.log" >&2; die "make installcheck did not report its tests passed"; }
n=$(grep -o '[0-9]\+' <<<"$summary")
want_n=$(compgen -G "$src/sql/*.sql" | wc -l)
[ "$n" = "$want_n" ] || die "pg_regress ran $n tests, the repository has $want_n in sql/"
echo "ok: make installcheck (REGRESS) against the installed package on $where: all $n tests passed in $((SECONDS - start))s"
