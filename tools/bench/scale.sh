#!/bin/bash
# Section 3 of `make bench`: the established-flow cost with 1 rule and 1
# connection next to the most rules the build allows and 1,000,000
# connections. Writes $BENCH_OUT/scale.json; see progbench.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bpf_build.sh"
bench_bpf prog_harness
exec /usr/bin/python3 "$here/progbench.py" scale
