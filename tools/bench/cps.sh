#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bench section 4: connections per second. Short TCP connections (connect,
# small request, response, the server closes, the client closes) from a client
# namespace through the router namespace to a server namespace (tests/lib.sh's
# topology), through xdpfwd (XDP on wan and lan, the kernel's forwarding off)
# and through nftables DNAT (no XDP, forwarding on, conntrack), and a "direct"
# reference with the client in the router namespace talking to the server over
# the lan link (no forwarding at all: the ceiling of client plus server).
# Variants alternate in each of BENCH_ROUNDS rounds; medians are quoted.
#
#   BENCH_OUT=DIR XDPFWD_BIN=... tools/bench/cps.sh     (as root)
#
# Writes $BENCH_OUT/cps.json. The client and server (tools/bench/cps_peer.c)
# are compiled into $BENCH_OUT. Tunables: CPS_SECONDS (per round, 3),
# CPS_PROCS / CPS_CONC (client processes / connections in flight each),
# CPS_WORKERS (server processes), CPS_QUEUES (queues of every veth).

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../tests/lib.sh
. "$BENCH_DIR/../../tests/lib.sh"

BENCH_OUT=${BENCH_OUT:-$WORK_DIR}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
CPS_SECONDS=${CPS_SECONDS:-3}
CPS_PROCS=${CPS_PROCS:-2}
CPS_CONC=${CPS_CONC:-64}
CPS_WORKERS=${CPS_WORKERS:-2}
CPS_QUEUES=${CPS_QUEUES:-1}
PORT=8080
PEER_BIN=$BENCH_OUT/cps_peer
NFT_TABLE=xdpfwd_bench_cps
# Several source addresses, each with the whole port range, so that no
# client port comes round again while the server or conntrack still holds
# the last connection on it in TIME_WAIT.
CLIENT_SRCS=("$CLIENT_ADDR" 203.0.113.3 203.0.113.4 203.0.113.5)
DIRECT_SRCS=("$ROUTER_LAN_ADDR" 198.51.100.11 198.51.100.12 198.51.100.13)

die() { echo "cps: $*" >&2; exit 1; }

build_peer() {
	mkdir -p "$BENCH_OUT" &&
	cc -O2 -Wall -Wextra -Werror -o "$PEER_BIN" "$BENCH_DIR/cps_peer.c"
}

# sysctls NS K=V...
sysctls() {
	local ns=$1; shift
	nsx "$ns" sysctl -qw "$@" >/dev/null
}

# topo_mq: tests/lib.sh's topology, but with CPS_QUEUES queues on every veth
# (1 by default, as the other sections' topology; with XDP attached a veth
# receives in one NAPI context per queue, so more queues may spread the router
# over the CPUs: whether it pays on this VM was not settled, see the report).
topo_mq() {
	TOPO_SEQ=$((TOPO_SEQ + 1))
	local id="$RUN_ID-$TOPO_SEQ" q="numtxqueues $CPS_QUEUES numrxqueues $CPS_QUEUES" ns
	NS_C="xfwd-c-$id" NS_R="xfwd-r-$id" NS_S="xfwd-s-$id"
	# shellcheck disable=SC2034  # lib.sh's topo_destroy reads it
	PIN_DIR="/sys/fs/bpf/xdpfwd-test-$id"
	for ns in "$NS_C" "$NS_R" "$NS_S"; do
		ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
	done
	# shellcheck disable=SC2086  # $q is words
	ip -n "$NS_R" link add name wan $q type veth peer name eth0 $q netns "$NS_C" &&
	ip -n "$NS_R" link add name lan $q type veth peer name eth0 $q netns "$NS_S" &&
	ip -n "$NS_C" addr add "$CLIENT_ADDR/24" dev eth0 &&
	ip -n "$NS_R" addr add "$ROUTER_WAN_ADDR/24" dev wan &&
	ip -n "$NS_R" addr add "$ROUTER_LAN_ADDR/24" dev lan &&
	ip -n "$NS_S" addr add "$SERVER_ADDR/24" dev eth0 &&
	ip -n "$NS_C" link set eth0 up && ip -n "$NS_S" link set eth0 up &&
	ip -n "$NS_R" link set wan up && ip -n "$NS_R" link set lan up &&
	ip -n "$NS_C" route add default via "$ROUTER_WAN_ADDR" &&
	ip -n "$NS_S" route add default via "$ROUTER_LAN_ADDR" &&
	router_forwarding 0 &&
	wait_until 10 link_up "$NS_C" eth0 && wait_until 10 link_up "$NS_S" eth0 &&
	wait_until 10 link_up "$NS_R" wan && wait_until 10 link_up "$NS_R" lan
}

# setup_topo: the topology, extra source addresses, tuned stacks, the server,
# and every neighbour the datapath will need resolved.
setup_topo() {
	local a ns
	topo_mq || return 1
	# GRO on the client's and server's veths in every variant: XDP can
	# redirect into them only so, and the variants must share one setup.
	gro on || return 1
	for a in "${CLIENT_SRCS[@]:1}"; do
		ip -n "$NS_C" addr add "$a/24" dev eth0 || return 1
	done
	for a in "${DIRECT_SRCS[@]:1}"; do
		ip -n "$NS_R" addr add "$a/24" dev lan || return 1
	done
	for ns in "$NS_C" "$NS_R"; do
		sysctls "$ns" net.ipv4.ip_local_port_range="1024 65535" \
			net.ipv4.tcp_tw_reuse=1 || return 1
	done
	sysctls "$NS_S" net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 || return 1
	bg "$NS_S" "$PEER_BIN" server "$SERVER_ADDR" "$PORT" "$CPS_WORKERS"
	wait_listen "$NS_S" tcp "$PORT" || return 1
	# XDP forwards only to resolved neighbours: have the router resolve
	# the server and every client address (a refused connection will do).
	for a in "$SERVER_ADDR" "${CLIENT_SRCS[@]}"; do
		nsx "$NS_R" timeout 2 bash -c "exec 3<>/dev/tcp/$a/9" 2>/dev/null
	done
	return 0
}

variant_up() {
	case $1 in
	direct) ;;
	nftables)
		router_forwarding 1 &&
		nsx "$NS_R" nft -f - <<-EOF
		table ip $NFT_TABLE {
			chain pre {
				type nat hook prerouting priority dstnat;
				tcp dport $PORT dnat to $SERVER_ADDR:$PORT
			}
		}
		EOF
		;;
	xdpfwd)
		router_forwarding 0 &&
		xdpfwd load wan lan --max-flows 262144 >/dev/null &&
		xdpfwd add tcp "$PORT" "$SERVER_ADDR:$PORT" >/dev/null
		;;
	esac
}

variant_down() {
	case $1 in
	nftables)
		nsx "$NS_R" nft delete table ip "$NFT_TABLE"
		router_forwarding 0
		;;
	xdpfwd)
		xdpfwd unload --all >/dev/null
		;;
	esac
}

# client VARIANT SECONDS: prints "completed errors elapsed".
client() {
	if [ "$1" = direct ]; then
		nsx "$NS_R" timeout 30 "$PEER_BIN" client "$SERVER_ADDR" "$PORT" "$2" \
			"$CPS_PROCS" "$CPS_CONC" "${DIRECT_SRCS[@]}"
	else
		nsx "$NS_C" timeout 30 "$PEER_BIN" client "$ROUTER_WAN_ADDR" "$PORT" "$2" \
			"$CPS_PROCS" "$CPS_CONC" "${CLIENT_SRCS[@]}"
	fi
}

# measure VARIANT: one round of it; appends "VARIANT cps errors" to $RAW.
measure() {
	local v=$1 warm out n errs
	variant_up "$v" || die "could not set up the $v variant"
	# A short warm-up proves the path carries connections at all.
	warm=$(client "$v" 0.3)
	if [ "${warm%% *}" -lt 1 ] 2>/dev/null || [ -z "$warm" ]; then
		variant_down "$v"
		die "$v: no connection completed in the warm-up ($warm)"
	fi
	out=$(client "$v" "$CPS_SECONDS") || die "$v: the client failed"
	read -r n errs _ <<<"$out"
	variant_down "$v"
	echo "$v $(( n / CPS_SECONDS )) $errs" >>"$RAW"
	log "cps: round $r $v: $(( n / CPS_SECONDS )) conn/s ($errs errors)"
}

write_json() {
	"$PY" - "$RAW" "$BENCH_OUT/cps.json" "$BENCH_ROUNDS" "$CPS_SECONDS" \
		"$CPS_PROCS" "$CPS_CONC" "$CPS_WORKERS" <<-'EOF'
	import json, os, statistics, sys
	raw, out, rounds, secs, procs, conc, workers = sys.argv[1:]
	rows = {}
	errors = {}
	for line in open(raw):
	    v, cps, errs = line.split()
	    rows.setdefault(v, []).append(int(cps))
	    errors[v] = errors.get(v, 0) + int(errs)
	med = {v: statistics.median(c) for v, c in rows.items()}
	ratio = med["xdpfwd"] / med["nftables"] if med.get("nftables") else 0.0
	d = {
	    "section": "cps",
	    "machine": {"kernel": os.uname().release, "cpus": os.cpu_count()},
	    "rounds": int(rounds),
	    "setup": {"seconds_per_round": float(secs), "client_procs": int(procs),
	              "client_concurrency": int(conc), "server_workers": int(workers),
	              "request": "18-byte request, 41-byte response, server closes first"},
	    "results": [{"variant": v, "cps_median": med[v], "cps_rounds": rows[v],
	                 "errors": errors[v]}
	                for v in ("xdpfwd", "nftables", "direct") if v in rows],
	    "ratios": {"xdpfwd_over_nft_cps": round(ratio, 3),
	               "xdpfwd_over_direct_cps": round(med["xdpfwd"] / med["direct"], 3)},
	    "targets": {"cps": {"value": round(ratio, 3), "target": ">= 1.5",
	                        "met": ratio >= 1.5}},
	}
	json.dump(d, open(out, "w"), indent=1)
	print("cps: xdpfwd %d, nftables %d, direct %d conn/s; xdpfwd/nft %.2f"
	      % (med["xdpfwd"], med["nftables"], med["direct"], ratio))
	EOF
}

main() {
	need_root_and_binary || exit 1
	build_peer || die "could not build $PEER_BIN"
	RAW=$WORK_DIR/cps.raw
	: >"$RAW"
	setup_topo || die "could not build the topology"
	for r in $(seq 1 "$BENCH_ROUNDS"); do
		for v in direct nftables xdpfwd; do
			measure "$v"
		done
	done
	write_json
}

main "$@"
