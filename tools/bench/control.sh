#!/bin/bash
# Section of `make bench`: control (see progbench.py). Writes $BENCH_OUT/control.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bpf_build.sh"
exec /usr/bin/python3 "$here/progbench.py" control
