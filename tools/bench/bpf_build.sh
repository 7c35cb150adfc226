# shellcheck shell=bash
# Sourced by the bench's section scripts: BENCH_OUT set up and
# bench_bpf NAME, which compiles tools/bench/NAME.bpf.c into
# $BENCH_OUT/NAME.bpf.o with the Makefile's BPF_CFLAGS (nothing of the
# bench is built by `make`).
: "${BENCH_OUT:?BENCH_OUT must name the results folder}"
: "${XDPFWD_BIN:?XDPFWD_BIN must name the xdpfwd binary}"
export BENCH_OUT XDPFWD_BIN
mkdir -p "$BENCH_OUT"
bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

bench_bpf() {
	local multiarch
	multiarch=$(${CC:-gcc} -print-multiarch 2>/dev/null || true)
	${CLANG:-clang} -O2 -g -target bpf -Wall -Wextra -Werror -I"$bench_repo/include" \
		-I"/usr/include/$multiarch" -c "$bench_repo/tools/bench/$1.bpf.c" \
		-o "$BENCH_OUT/$1.bpf.o"
}
