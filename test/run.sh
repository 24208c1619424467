#!/bin/bash
# test/run.sh -- run every test of the anonymize extension:  bash test/run.sh
#
# As root, from any directory, on a fresh Debian 12: installs the packages,
# builds and installs the extension, copies the repository to a temporary
# directory owned by postgres, starts a throwaway cluster (port 54329, private
# socket) and runs, each even if an earlier one failed:
#   - regression tests  sql/*.sql vs expected/   (make installcheck, REGRESS)
#   - isolation tests   specs/*.spec             (make installcheck, ISOLATION)
#   - TAP tests         t/*.pl, one prove run per file; they start own nodes
#   - shell tests       executable test/*.test.sh, run as root with PGHOST,
#                       PGPORT, PGUSER of the cluster and ANON_REPO (this repo)
# Counting: one per regression test, one per isolation spec, one per TAP file
# and one per shell test; a suite that fails without a failing test (e.g.
# pg_regress could not connect) counts as one failure, and so does an abort
# (e.g. the build failed).  On failure the diffs and logs are printed.  The
# last line is always "N passed, N failed"; exit status is non-zero if any
# test failed or none ran.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib.sh"

passed=0 failed=0 finished=0 work=
finish() {
	local rc=$?
	anon_stop_cluster
	[ -z "$work" ] || rm -rf "$work"
	if [ $finished = 0 ]; then echo "test/run.sh: aborted" >&2; failed=$((failed + 1)); fi
	[ $rc = 0 ] && [ $failed = 0 ] && [ $passed -gt 0 ] || rc=1
	echo "$passed passed, $failed failed"
	exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

anon_install_deps
anon_build_install "$repo"
work=$(anon_tmpdir)
copy=$work/repo
install -d -o postgres -g postgres "$copy"
tar -C "$repo" --exclude=./.git --exclude=./results --exclude=./output_iso \
	--exclude=./tmp_check -cf - . | runuser -u postgres -- tar -C "$copy" -xf -
# pg_regress stops the whole suite at a test without expected output: give
# such a test an empty one, so that it fails alone and shows its output.
runuser -u postgres -- mkdir -p "$copy/expected"
for t in "$copy"/sql/*.sql "$copy"/specs/*.spec; do
	[ -e "$t" ] || continue
	t=${t##*/} t=${t%.*}
	[ -e "$copy/expected/$t.out" ] ||
		compgen -G "$copy/expected/${t}_[0-9].out" >/dev/null ||
		runuser -u postgres -- touch "$copy/expected/$t.out"
done
anon_start_cluster "$work/cluster" 54329

installcheck() {
	anon_as_postgres make -C "$copy" -s installcheck PG_CONFIG="$ANON_PG_CONFIG" "$@"
}

# run_pg_regress <name> <diffs file> <make args...>: count the "... ok" and
# "... FAILED" lines pg_regress / pg_isolation_regress print per test.
run_pg_regress() {
	local name=$1 diffs=$2 log=$work/$1.log rc=0 ok bad
	shift 2
	installcheck "$@" 2>&1 | tee "$log" || rc=$?
	ok=$(grep -cE '^(test | {4}) *[^ ]+ +\.\.\. ok' "$log" || true)
	bad=$(grep -cE '^(test | {4}) *[^ ]+ +\.\.\. (FAILED|failed)' "$log" || true)
	if [ $rc != 0 ] && [ "$bad" = 0 ]; then
		echo "$name suite failed without a failing test" >&2
		bad=1
	fi
	if [ "$bad" != 0 ] && [ -f "$diffs" ]; then cat "$diffs"; fi
	passed=$((passed + ok)) failed=$((failed + bad))
}

if compgen -G "$copy/sql/*.sql" >/dev/null; then
	run_pg_regress regress "$copy/regression.diffs" ISOLATION= TAP_TESTS=
fi
if compgen -G "$copy/specs/*.spec" >/dev/null; then
	run_pg_regress isolation "$copy/output_iso/regression.diffs" REGRESS= TAP_TESTS=
fi

for t in "$copy"/t/*.pl; do
	[ -e "$t" ] || continue
	if installcheck REGRESS= ISOLATION= TAP_TESTS=1 PROVE_TESTS="t/${t##*/}" 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		for f in "$copy"/tmp_check/log/*; do
			if [ -f "$f" ]; then echo "=== $f"; cat "$f"; fi
		done
	fi
done

for t in "$repo"/test/*.test.sh; do
	[ -x "$t" ] || continue
	if out=$(ANON_REPO=$repo PATH=$ANON_PG_BIN:$PATH "$t" 2>&1); then
		echo "shell test ${t##*/} ... ok"
		passed=$((passed + 1))
	else
		echo "shell test ${t##*/} ... FAILED"
		echo "$out"
		failed=$((failed + 1))
	fi
done

finished=1
