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
# and one per shell test.  A regression or isolation test passes when its
# result file (results/<t>.out, output_iso/results/<t>.out) is identical to
# expected/<t>.out or to one of the alternatives expected/<t>_[0-9].out, as
# pg_regress decides on Unix; the console output of pg_regress, whose format
# changes between PostgreSQL versions, is not parsed.  A suite counts as one
# more failure when some of its tests left no result file, or when it failed
# without a failing test (e.g. pg_regress could not connect); so does an
# abort (e.g. the build failed).  On failure the diffs and logs are printed.
# TAP assertions (the "ok N" / "not ok N" lines of prove --verbose; a "not ok"
# with a TODO directive is not a failure) are counted too and reported, on the
# line before the last, as
#   TAP: N assertions in M files: N passed, N failed
# The last line is always "N passed, N failed"; exit status is non-zero if any
# test failed or none ran.
#
# Environment (the defaults are the behaviour described above):
#   ANON_PG_BIN        bin directory of the PostgreSQL 15 to build against,
#                      install into and test with (default
#                      /usr/lib/postgresql/15/bin; a relocated copy of the
#                      PostgreSQL tree keeps the system install untouched)
#   ANON_SKIP_INSTALL  1: build the extension but do not make install it
#                      (it must already be installed for ANON_PG_BIN)
#   ANON_TEST_PORT     port of the throwaway cluster (default 54329)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib.sh"
port=${ANON_TEST_PORT:-54329}

passed=0 failed=0 finished=0 work=
tap_files=0 tap_passed=0 tap_failed=0
finish() {
	local rc=$?
	anon_stop_cluster
	[ -z "$work" ] || rm -rf "$work"
	if [ $finished = 0 ]; then echo "test/run.sh: aborted" >&2; failed=$((failed + 1)); fi
	[ $rc = 0 ] && [ $failed = 0 ] && [ $passed -gt 0 ] || rc=1
	echo "TAP: $((tap_passed + tap_failed)) assertions in $tap_files files:" \
		"$tap_passed passed, $tap_failed failed"
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
# pg_regress stops the whole suite at a test without expected/<t>.out (even
# if alternatives expected/<t>_N.out exist): give such a test an empty one,
# so that it fails alone and shows its output (or matches an alternative).
runuser -u postgres -- mkdir -p "$copy/expected"
for t in "$copy"/sql/*.sql "$copy"/specs/*.spec; do
	[ -e "$t" ] || continue
	t=${t##*/} t=${t%.*}
	[ -e "$copy/expected/$t.out" ] ||
		runuser -u postgres -- touch "$copy/expected/$t.out"
done
anon_start_cluster "$work/cluster" "$port"

installcheck() {
	anon_as_postgres make -C "$copy" -s installcheck PG_CONFIG="$ANON_PG_CONFIG" "$@"
}

# result_matches <result file> <test>: the result is byte for byte one of the
# test's expected files (pg_regress on Unix runs diff without options).
result_matches() {
	local result=$1 t=$2 e
	for e in "$copy/expected/$t.out" "$copy/expected/$t"_[0-9].out; do
		[ -f "$e" ] && cmp -s "$result" "$e" && return 0
	done
	return 1
}

# run_suite <name> <output dir> <source dir> <extension> <make args...>:
# runs the suite, then counts each test <source dir>/*.<extension> from
# <output dir>/results/<test>.out.
run_suite() {
	local name=$1 outdir=$2 srcdir=$3 ext=$4 log=$work/$1.log rc=0 ok=0 bad=0
	local src t result e missing=() failing=()
	shift 4
	rm -rf "$outdir/results"
	installcheck "$@" 2>&1 | tee "$log" || rc=$?
	for src in "$srcdir"/*."$ext"; do
		t=${src##*/} t=${t%.*}
		result=$outdir/results/$t.out
		if [ ! -f "$result" ]; then
			missing+=("$t")
		elif result_matches "$result" "$t"; then
			ok=$((ok + 1))
		else
			failing+=("$t")
		fi
	done
	bad=${#failing[@]}
	echo "$name: $ok passed, $bad failed${failing[*]:+ (${failing[*]})}"
	if [ $bad != 0 ]; then
		[ $rc != 0 ] || echo "$name: pg_regress reported success, but results differ" >&2
		if [ -f "$outdir/regression.diffs" ]; then
			cat "$outdir/regression.diffs"
		else
			for t in "${failing[@]}"; do
				for e in "$copy/expected/$t.out" "$copy/expected/$t"_[0-9].out; do
					[ ! -f "$e" ] || diff -U3 "$e" "$outdir/results/$t.out" || true
				done
			done
		fi
	fi
	if [ ${#missing[@]} != 0 ]; then
		echo "$name suite failed: no result of ${missing[*]}" >&2
		bad=$((bad + 1))
	elif [ $rc != 0 ] && [ $bad = 0 ]; then
		echo "$name suite failed without a failing test" >&2
		bad=1
	fi
	passed=$((passed + ok)) failed=$((failed + bad))
}

if compgen -G "$copy/sql/*.sql" >/dev/null; then
	run_suite regress "$copy" "$copy/sql" sql ISOLATION= TAP_TESTS=
fi
if compgen -G "$copy/specs/*.spec" >/dev/null; then
	run_suite isolation "$copy/output_iso" "$copy/specs" spec REGRESS= TAP_TESTS=
fi

# One prove run per TAP file, verbose so that its TAP stream can be counted.
for t in "$copy"/t/*.pl; do
	[ -e "$t" ] || continue
	name=t/${t##*/} log=$work/tap.log rc=0
	installcheck REGRESS= ISOLATION= TAP_TESTS=1 PROVE_TESTS="$name" \
		PROVE_FLAGS=--verbose >"$log" 2>&1 || rc=$?
	a_all=$(grep -cE '^(not )?ok [0-9]+' "$log" || true)
	a_bad=$(grep -E '^not ok [0-9]+' "$log" | grep -cvE '#[[:space:]]*TODO' || true)
	a_ok=$((a_all - a_bad))
	tap_files=$((tap_files + 1))
	tap_passed=$((tap_passed + a_ok)) tap_failed=$((tap_failed + a_bad))
	note="$a_ok of $a_all assertions passed"
	if [ "$a_all" = 0 ]; then
		note="no assertions$(sed -nE 's/.* (skipped: .*)/, \1/p' "$log" | head -n 1)"
	fi
	if [ $rc = 0 ]; then
		echo "TAP $name ... ok ($note)"
		passed=$((passed + 1))
	else
		echo "TAP $name ... FAILED ($note)"
		cat "$log"
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
