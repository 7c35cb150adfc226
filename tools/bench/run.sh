#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The bench driver: every section, then the report.
#
#   make bench                 (as root: builds xdpfwd and the bench tools, runs this)
#   tools/bench/run.sh         (as root, once `make bench` has built the tools)
#
# Sections, in order, each only when present and executable, each bounded by
# `timeout` (pps 240 s, the others 120 s), a failure logged and the run going
# on: pps.sh, prog.sh, scale.sh, cps.sh, control.sh, memory.sh. Each writes
# $BENCH_OUT/<section>.json; then report.py turns them into docs/BENCHMARKS.md.
# Env (exported to the sections):
#   BENCH_OUT    where the results go (build/bench)
#   XDPFWD_BIN   the xdpfwd under test (build/xdpfwd)
#   BENCH_TOOLS  gen, sink.bpf.o, bare.bpf.o built by `make bench` (build/bench-tools)
#   BENCH_ROUNDS rounds the variants alternate in, medians quoted (3)
# The whole run stays under 10 minutes. Exit status: 1 when a section or the
# report failed (all that could run has run).
set -u

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/../.." && pwd)
cd "$ROOT_DIR" || exit 1

BENCH_OUT=${BENCH_OUT:-$(pwd)/build/bench}
XDPFWD_BIN=${XDPFWD_BIN:-$(pwd)/build/xdpfwd}
BENCH_TOOLS=${BENCH_TOOLS:-$(pwd)/build/bench-tools}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_OUT XDPFWD_BIN BENCH_TOOLS BENCH_ROUNDS

if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: needs root (try: sudo make bench)" >&2
	exit 1
fi
mkdir -p "$BENCH_OUT" || exit 1

failed=()
t_start=$SECONDS
for section in pps prog scale cps control memory; do
	script="$BENCH_DIR/$section.sh"
	[ -x "$script" ] || { echo "== $section: not present, skipped"; continue; }
	limit=120
	[ "$section" = pps ] && limit=240
	echo "== $section (at most ${limit}s)"
	t0=$SECONDS
	timeout -k 10 "$limit" "$script"
	rc=$?
	if [ $rc -ne 0 ]; then
		[ $rc -eq 124 ] && echo "== $section: timed out after ${limit}s"
		echo "== $section: FAILED (exit $rc, $((SECONDS - t0))s)"
		failed+=("$section")
	else
		echo "== $section: done ($((SECONDS - t0))s)"
	fi
done

if [ -e "$BENCH_DIR/report.py" ]; then
	echo "== report"
	/usr/bin/python3 "$BENCH_DIR/report.py" "$BENCH_OUT" docs/BENCHMARKS.md || failed+=(report)
fi

echo "bench: $((SECONDS - t_start))s; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
