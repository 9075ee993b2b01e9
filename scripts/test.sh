#!/usr/bin/env bash
# Run every streamagg test suite: the command of the README and of CI.
#
#   1. install missing dependencies (scripts/install-deps.sh)
#   2. build with assertions (-DUSE_ASSERT_CHECKING -Werror), install, and run
#      pg_regress on that build: every Assert of the code is checked
#   3. make, then make install (with sudo when not root): the build users get
#   4. make installcheck, one suite at a time so that a failing suite does not
#      hide the others: pg_regress (sql/, expected/), pg_isolation_regress
#      (test/specs/) and the TAP tests (test/t/*.pl). Each suite starts its own
#      temporary cluster with streamagg preloaded; no running server is used.
#
# initdb refuses to run as root, so as root the tests run as the `postgres`
# OS user (created by the postgresql package) in a copy of the tree.
#
# Exits non-zero on any failure, after printing the regression diffs and the
# server/TAP log tails. The last line is always "N passed, M failed".
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config),
# KEEP_TESTDIR=1 keeps the temporary copy used when running as root.
set -uo pipefail

# runuser lives in /usr/sbin, which a non-login root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

passed=0
failed=0
failed_suites=()
workdir=
logdir=$(mktemp -d "${TMPDIR:-/tmp}/streamagg-logs.XXXXXX")

finish() {
	local rc=$?
	rm -rf "$logdir"
	if [[ -n $workdir && $workdir != "$repo" ]]; then
		if ((rc == 0)) && [[ ${KEEP_TESTDIR:-0} != 1 ]]; then
			rm -rf "$workdir"
		else
			echo "test directory kept: $workdir"
		fi
	fi
	echo "$passed passed, $failed failed"
	exit "$rc"
}
trap finish EXIT

step() { printf '\n=== %s ===\n' "$*"; }

# A step that must succeed for anything else to make sense.
must() {
	if ! "$@"; then
		echo "FAILED: $*" >&2
		failed=$((failed + 1))
		exit 1
	fi
}

step "dependencies"
must "$repo/scripts/install-deps.sh"

if [[ -z ${PG_CONFIG:-} ]]; then
	if [[ -x /usr/lib/postgresql/15/bin/pg_config ]]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=$(command -v pg_config) || PG_CONFIG=pg_config
	fi
fi
echo "using $PG_CONFIG ($("$PG_CONFIG" --version))"

if ((EUID == 0)); then
	sudo=()
else
	sudo=(sudo)
fi

# build_and_install LABEL [COPT]: a clean build of the extension, installed.
build_and_install() {
	step "build ($1)"
	must make clean PG_CONFIG="$PG_CONFIG" >/dev/null
	must make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" COPT="${2:-}"
	must "${sudo[@]}" make install PG_CONFIG="$PG_CONFIG"
}

build_and_install "with assertions" "-DUSE_ASSERT_CHECKING -Werror"

# Where the tests run, and as whom.
if ((EUID == 0)); then
	must id -u postgres >/dev/null
	workdir=$(mktemp -d "${TMPDIR:-/tmp}/streamagg-test.XXXXXX")
	tar -C "$repo" --exclude=./.git --exclude='./tmp_check*' \
		--exclude=./output_iso --exclude=./results --exclude=./log \
		--exclude=./regression.diffs --exclude=./regression.out -cf - . |
		tar -C "$workdir" -xf - || must false
	must chown -R postgres: "$workdir"
	as_tester=(runuser -u postgres -- env HOME="$workdir")
	echo "tests run as postgres in $workdir"
else
	workdir=$repo
	as_tester=()
fi

# run_suite NAME MAKE-VARIABLES...: make installcheck restricted to one suite;
# adds its results to the totals.
run_suite() {
	local name=$1 out="$logdir/$1.out" rc p f
	shift
	step "$name"
	(cd "$workdir" && "${as_tester[@]}" make installcheck \
		PG_CONFIG="$PG_CONFIG" "$@") 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}

	if [[ $name == tap ]]; then
		read -r p f < <(count_prove "$out")
	else
		read -r p f < <(count_pg_regress "$out")
	fi
	# A suite that failed without reporting a failed test (it could not start
	# its instance, or died) counts as one failure.
	if ((rc != 0 && f == 0)); then
		f=1
	fi
	echo "--- $name: $p passed, $f failed"
	if ((f > 0)); then
		failed_suites+=("$name")
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

# pg_regress and pg_isolation_regress end with one of:
#   All N tests passed.
#   F of N tests failed.
#   F of N tests failed, I of these failures ignored.
#   P of N tests passed, I failed test(s) ignored.
# If it stopped before its summary, the per-test lines ("test x ... ok",
# "     x ... FAILED") are counted instead.
count_pg_regress() {
	perl -ne '
		if (/^\s*All (\d+) tests passed\./) { $p += $1; $sum = 1 }
		elsif (/^\s*(\d+) of (\d+) tests failed/) { $f += $1; $p += $2 - $1; $sum = 1 }
		elsif (/^\s*(\d+) of (\d+) tests passed/) { $p += $1; $f += $2 - $1; $sum = 1 }
		elsif (/^(?:test |\s+)\S+\s+\.\.\. ok\b/) { $lp++ }
		elsif (/^(?:test |\s+)\S+\s+\.\.\. FAILED\b/) { $lf++ }
		END {
			($p, $f) = ($lp, $lf) unless $sum;
			printf "%d %d\n", $p, $f;
		}' "$1"
}

# prove: "Files=F, Tests=N, ..." and, on failure, a summary line per file:
#   test/t/003_x.pl (Wstat: 256 (exited 1) Tests: 7 Failed: 2)
# Counted per TAP test (ok / not ok line). A file that died without a failed
# test (Wstat not 0, Failed: 0) counts as one failure.
count_prove() {
	perl -ne '
		if (/^Files=\d+, Tests=(\d+)/) { $n += $1 }
		elsif (/\(Wstat: (\d+).*Tests: \d+ Failed: (\d+)\)/) {
			$f += $2;
			$died++ if $1 != 0 && $2 == 0;
		}
		elsif (/^Result: FAIL/) { $fail = 1 }
		END {
			$f_total = $f + $died;
			$f_total = 1 if $fail && $f_total == 0;
			printf "%d %d\n", $n - $f, $f_total;
		}' "$1"
}

run_suite regress-assert ISOLATION= TAP_TESTS=
# the next pg_regress run overwrites its diffs: keep them for the diagnostics
[[ -f $workdir/regression.diffs ]] &&
	mv "$workdir/regression.diffs" "$workdir/regression-assert.diffs"

build_and_install "as shipped"
run_suite regress ISOLATION= TAP_TESTS=
run_suite isolation REGRESS= TAP_TESTS=
run_suite tap REGRESS= ISOLATION=

# Why it failed, for CI logs.
show() {
	local f
	for f in "$@"; do
		[[ -f $f && -s $f ]] || continue
		echo "----- $f (last 80 lines)"
		tail -n 80 "$f"
	done
}
if ((failed > 0)); then
	step "diagnostics"
	shopt -s nullglob
	for suite in "${failed_suites[@]}"; do
		case $suite in
		regress-assert)
			show "$workdir/regression-assert.diffs"
			;;
		regress)
			show "$workdir/regression.diffs" "$workdir"/tmp_check_regress/log/*
			;;
		isolation)
			show "$workdir/output_iso/regression.diffs" "$workdir"/tmp_check_iso/log/*
			;;
		tap)
			show "$workdir"/tmp_check/log/*
			;;
		esac
	done
	exit 1
fi
exit 0
