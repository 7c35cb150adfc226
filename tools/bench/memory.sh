#!/bin/bash
# Section of `make bench`: memory (see progbench.py). Writes $BENCH_OUT/memory.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bpf_build.sh"
exec /usr/bin/python3 "$here/progbench.py" memory
