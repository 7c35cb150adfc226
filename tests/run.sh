#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Every xdpfwd test: the datapath unit tests, then each tests/e2e/*.sh.
# Needs root and a built build/xdpfwd (`make test` does both: sudo make test).
# Each part ends its output with a "LABEL: N passed, M failed" line; this sums
# them and ends with exactly "N passed, M failed". Exit 1 on any failure.

cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
PASS=0 FAIL=0

# tally NAME LOG RC: add the "…: N passed, M failed" line of LOG; a part that
# printed none, or exited non-zero while reporting no failure, counts as one
# failure.
tally() {
	local name=$1 logf=$2 rc=$3 line p f
	line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed$' "$logf" | tail -1)
	if [ -z "$line" ]; then
		echo "run.sh: $name printed no result line (exit $rc): counted as 1 failure"
		FAIL=$((FAIL + 1))
		return
	fi
	p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$line")
	f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$line")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run.sh: $name exited $rc with no failure reported: counted as 1 failure"
		f=1
	fi
	PASS=$((PASS + p)) FAIL=$((FAIL + f))
}

# part NAME CMD...: run one test program, its output shown as it goes.
part() {
	local name=$1 logf rc t0=$SECONDS; shift
	logf=$(mktemp "${TMPDIR:-/tmp}/xdpfwd-run.XXXXXX")
	echo "=== $name"
	"$@" </dev/null 2>&1 | tee "$logf"
	rc=${PIPESTATUS[0]}
	echo "=== $name: exit $rc, $((SECONDS - t0))s"
	tally "$name" "$logf" "$rc"
	rm -f "$logf"
}

if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: the tests need root (try: sudo make test)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

t_start=$SECONDS
for t in tests/unit/test_datapath.py tests/unit/test_conntrack.py tests/unit/test_nat.py; do
	if [ -f "$t" ]; then
		part "$t" "$PY" "$t"
	else
		echo "run.sh: $t is missing: counted as 1 failure"
		FAIL=$((FAIL + 1))
	fi
done
for t in tests/e2e/*.sh; do
	[ -e "$t" ] || continue
	part "$t" bash "$t"
done

echo "=== all tests: $((SECONDS - t_start))s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
