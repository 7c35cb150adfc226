#!/bin/bash
# Section 2 of `make bench`: what one packet costs xdpfwd's XDP program, by
# BPF_PROG_TEST_RUN (established flow, new flow, no match) next to a bare
# redirect program. Writes $BENCH_OUT/prog.json; see progbench.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bpf_build.sh"
bench_bpf prog_harness
bench_bpf bare		# the pps bench's bare redirect program
exec /usr/bin/python3 "$here/progbench.py" prog
