#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bench section 1, forwarded pps: 64-byte UDP over 1 and 1,000 flows through
# four variants, alternated in rounds, medians quoted:
#
#   null      generator -> sink                      (no forwarder: the floor)
#   bare      generator -> [bare.bpf.c] -> sink      (MACs + devmap redirect: the ceiling)
#   xdpfwd    generator -> [xdpfwd, udp 5000 -> sink:6000] -> sink
#   nftables  generator -> [kernel forwarding, nft dnat + conntrack] -> sink
#
# Each variant has a forwarder namespace of its own (gen and sink are shared),
# so nothing is reconfigured between runs:
#
#   gen ns  gx/gb/gn/gz --veth-- wan [fwd ns x|b|n] lan --veth-- sx/sb/sn  sink ns
#           gz -----------------------------veth----------------------- sz
#
# The generator (gen.c + gen.bpf.c) runs BPF_PROG_RUN with live frames on a
# gen-side veth and sends by XDP_TX to its peer; the sink's XDP program drops
# and counts on every sink-side veth. pps = packets the sink counted as
# forwarded right (to SINK_ADDR:6000) / the generator's wall time. CPU: system +
# softirq ticks of /proc/stat over the run, all CPUs, per million packets
# counted (the generator's own work included: it is the same in every
# variant, and the null run shows it). cost_ns = 1e9/pps - 1e9/pps(null).
#
# Run:   make bench                (all sections; or, after it built the tools:)
#        tools/bench/pps.sh        (as root)
# Env:   BENCH_OUT (build/bench)   pps.json and pps.raw are written there
#        BENCH_TOOLS (build/bench-tools)  gen, gen/sink/bare .bpf.o (make bench)
#        XDPFWD_BIN (build/xdpfwd), BENCH_ROUNDS (3), BENCH_PACKETS (per run, 2000000)
# Everything lives in namespaces made here with names unique to the run
# (xbench-*-<pid>-<random>), and a pin dir /sys/fs/bpf/xdpfwd-test-<same>;
# all removed on exit, whatever happens.
# shellcheck disable=SC2046,SC2086,SC1091,SC2034  # words split on purpose; lib.sh reads the topology names
set -u

. "$(dirname "$0")/../../tests/lib.sh"

BENCH_OUT=${BENCH_OUT:-$ROOT_DIR/build/bench}
BENCH_TOOLS=${BENCH_TOOLS:-$ROOT_DIR/build/bench-tools}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_PACKETS=${BENCH_PACKETS:-2000000}
WARM_PACKETS=200000
FLOWS_SET="1 1000"
VARIANTS="null bare xdpfwd nftables"

GEN_ADDR=203.0.113.2
FWD_WAN_ADDR=203.0.113.1
FWD_LAN_ADDR=198.51.100.1
SINK_ADDR=198.51.100.2
EXT_PORT=5000
INT_PORT=6000
SPORT=10000
# Locally administered, fixed: every link is its own Ethernet.
GEN_MAC=02:b0:00:00:00:01
WAN_MAC=02:b0:00:00:00:02
LAN_MAC=02:b0:00:00:00:03
SINK_MAC=02:b0:00:00:00:04

die() { echo "pps.sh: $*" >&2; exit 1; }

# gen_if VARIANT / sink_if VARIANT / fwd_ns VARIANT: where a variant runs.
gen_if()  { case $1 in null) echo gz ;; bare) echo gb ;; xdpfwd) echo gx ;; nftables) echo gn ;; esac; }
sink_if() { case $1 in null) echo sz ;; bare) echo sb ;; xdpfwd) echo sx ;; nftables) echo sn ;; esac; }
fwd_ns()  { case $1 in bare) echo "$NS_FB" ;; xdpfwd) echo "$NS_R" ;; nftables) echo "$NS_FN" ;; esac; }

# ---------------------------------------------------------------- BPF plumbing

# xdp_prog_id NS IF: the id of the XDP program on IF.
xdp_prog_id() {
	ip -n "$1" -j link show dev "$2" |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])'
}

# prog_map PROG_ID NAME: the id of the program's map called NAME.
prog_map() {
	local m
	for m in $(bpftool -j prog show id "$1" |
		   "$PY" -c 'import json,sys; print(*json.load(sys.stdin)["map_ids"])'); do
		if [ "$(bpftool -j map show id "$m" | jget "d['name']")" = "$2" ]; then
			echo "$m"; return 0
		fi
	done
	return 1
}

# ip_hex / port_hex / mac_hex / u32_hex: values as the bytes of bpftool's "hex".
ip_hex()   { printf '%02x %02x %02x %02x' ${1//./ }; }
port_hex() { printf '%02x %02x' $(($1 >> 8)) $(($1 & 255)); }
mac_hex()  { echo "${1//:/ }"; }
u32_hex()  { printf '%02x %02x %02x %02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24)); }

# attach NS IF OBJ: OBJ's XDP program on IF in native mode; prints its prog id.
attach() {
	ip -n "$1" link set dev "$2" xdpdrv obj "$3" sec xdp || return 1
	xdp_prog_id "$1" "$2"
}

declare -A SINK_MAP

# sink_setup: the counting drop program on every sink-side veth, each told
# what a right packet looks like.
sink_setup() {
	local v ifn prog conf
	for v in $VARIANTS; do
		ifn=$(sink_if "$v")
		prog=$(attach "$NS_S" "$ifn" "$BENCH_TOOLS/sink.bpf.o") || return 1
		conf=$(prog_map "$prog" sink_conf) && SINK_MAP[$v]=$(prog_map "$prog" sink_count) || return 1
		bpftool map update id "$conf" key hex 00 00 00 00 \
			value hex $(ip_hex "$SINK_ADDR") $(port_hex "$INT_PORT") 00 00 || return 1
	done
}

# sink_counts VARIANT: "good other" packets its sink has counted so far.
sink_counts() {
	bpftool -j map dump id "${SINK_MAP[$1]}" | "$PY" -c 'import json,sys
n = {e["formatted"]["key"]: sum(c["value"] for c in e["formatted"]["values"])
     for e in json.load(sys.stdin)}
print(n[0], n[1])'
}

# ---------------------------------------------------------------- topology

# link_pair NS1 IF1 NS2 IF2 MAC1 MAC2: a veth pair between two namespaces, up.
link_pair() {
	ip -n "$1" link add "$2" address "$5" type veth peer name "$4" address "$6" netns "$3" &&
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

# fwd_base NS GEN_IF SINK_IF: a forwarder namespace between gen and sink, its
# next hop resolved for good (no ARP during a run).
fwd_base() {
	ip netns add "$1" && ip -n "$1" link set lo up || return 1
	link_pair "$NS_C" "$2" "$1" wan "$GEN_MAC" "$WAN_MAC" &&
	link_pair "$1" lan "$NS_S" "$3" "$LAN_MAC" "$SINK_MAC" || return 1
	ip -n "$1" addr add "$FWD_WAN_ADDR/24" dev wan &&
	ip -n "$1" addr add "$FWD_LAN_ADDR/24" dev lan &&
	ip -n "$1" neigh replace "$SINK_ADDR" lladdr "$SINK_MAC" dev lan nud permanent &&
	ip -n "$1" neigh replace "$GEN_ADDR" lladdr "$GEN_MAC" dev wan nud permanent &&
	nsx "$1" sysctl -qw net.ipv4.ip_forward=0 >/dev/null
}

# fwd_xdpfwd: xdpfwd on both veths, one rule. GRO on the generator's end of
# wan only so that xdpfwd finds wan a fit egress (replies would leave there).
fwd_xdpfwd() {
	nsx "$NS_C" ethtool -K gx gro on >/dev/null &&
	xdpfwd load wan lan >/dev/null && xdpfwd add udp "$EXT_PORT" "$SINK_ADDR:$INT_PORT" >/dev/null
}

# fwd_bare: bare.bpf.c on wan, redirecting to lan with the sink's MAC.
fwd_bare() {
	local prog lan
	prog=$(attach "$NS_FB" wan "$BENCH_TOOLS/bare.bpf.o") || return 1
	lan=$(ip -n "$NS_FB" -j link show dev lan | jget "d[0]['ifindex']") || return 1
	# A devmap resolves the ifindex in the namespace of whoever writes it:
	# written from anywhere else it would name another namespace's device.
	nsx "$NS_FB" bpftool map update id "$(prog_map "$prog" bare_tx)" key hex 00 00 00 00 \
		value hex $(u32_hex "$lan") &&
	bpftool map update id "$(prog_map "$prog" bare_conf)" key hex 00 00 00 00 \
		value hex $(mac_hex "$SINK_MAC") $(mac_hex "$LAN_MAC")
}

# fwd_nftables: the kernel forwards, nftables DNATs (conntrack with it); GRO
# on wan and lan lets the veths take the generators' XDP frames without an
# XDP program.
fwd_nftables() {
	nsx "$NS_FN" sysctl -qw net.ipv4.ip_forward=1 >/dev/null &&
	nsx "$NS_FN" ethtool -K wan gro on >/dev/null &&
	nsx "$NS_FN" ethtool -K lan gro on >/dev/null &&
	nsx "$NS_FN" nft -f - <<-EOF
	table ip xdpfwd_bench {
		chain prerouting {
			type nat hook prerouting priority dstnat; policy accept;
			ip daddr $FWD_WAN_ADDR udp dport $EXT_PORT dnat to $SINK_ADDR:$INT_PORT
		}
	}
	EOF
}

topo_bench() {
	local id="$RUN_ID"
	NS_C="xbench-g-$id" NS_S="xbench-s-$id" NS_R="xbench-x-$id"
	NS_FB="xbench-b-$id" NS_FN="xbench-n-$id"
	EXTRA_NS=("$NS_FB" "$NS_FN")
	PIN_DIR="/sys/fs/bpf/xdpfwd-test-bench-$id"
	ip netns add "$NS_C" && ip netns add "$NS_S" || return 1
	ip -n "$NS_C" link set lo up && ip -n "$NS_S" link set lo up || return 1
	link_pair "$NS_C" gz "$NS_S" sz "$GEN_MAC" "$SINK_MAC" || return 1
	fwd_base "$NS_R" gx sx && fwd_base "$NS_FB" gb sb && fwd_base "$NS_FN" gn sn || return 1
	sink_setup || return 1
	fwd_xdpfwd || { echo "pps.sh: xdpfwd load/add failed" >&2; return 1; }
	fwd_bare || { echo "pps.sh: the bare forwarder failed" >&2; return 1; }
	fwd_nftables || { echo "pps.sh: the nftables forwarder failed" >&2; return 1; }
	local v
	for v in $VARIANTS; do
		wait_until 10 link_up "$NS_C" "$(gen_if "$v")" || return 1
	done
}

# ---------------------------------------------------------------- runs

# sys_ticks: system + softirq ticks of all CPUs so far.
sys_ticks() {
	awk '$1 == "cpu" { print $4 + $8; exit }' /proc/stat
}

# generate VARIANT FLOWS PACKETS: one generator run; prints its nanoseconds.
generate() {
	local dst=$SINK_ADDR dport=$INT_PORT dmac=$SINK_MAC
	case $1 in
	bare) dmac=$WAN_MAC ;;
	xdpfwd|nftables) dst=$FWD_WAN_ADDR dport=$EXT_PORT dmac=$WAN_MAC ;;
	esac
	nsx "$NS_C" timeout 60 "$BENCH_TOOLS/gen" "$(gen_if "$1")" "$dmac" "$GEN_MAC" \
		"$GEN_ADDR" "$dst" "$SPORT" "$dport" "$2" "$3"
}

# answer VARIANT FLOWS: the sink answers each flow once (three times over),
# through the forwarder: its connections are established then, as those of
# traffic worth forwarding fast are (a UDP stream both ways, TCP).
answer() {
	nsx "$NS_S" timeout 60 "$BENCH_TOOLS/gen" "$(sink_if "$1")" "$LAN_MAC" "$SINK_MAC" \
		"$SINK_ADDR" "$GEN_ADDR" "$INT_PORT" "$SPORT" "$2" $((3 * $2)) reply >/dev/null
}

# measure VARIANT FLOWS PACKETS: prints "ns good other ticks" of one run.
measure() {
	local c0 c1 t0 t1 ns
	c0=$(sink_counts "$1") || return 1
	t0=$(sys_ticks)
	ns=$(generate "$1" "$2" "$3") || return 1
	sleep 0.05	# what is still in the veth rings reaches the sink
	t1=$(sys_ticks)
	c1=$(sink_counts "$1") || return 1
	set -- $c0 $c1
	echo "$ns $(($3 - $1)) $(($4 - $2)) $((t1 - t0))"
}

# ---------------------------------------------------------------- report

# write_json RAW: pps.json from the raw lines "round variant flows ns good other ticks".
write_json() {
	"$PY" - "$1" "$BENCH_OUT/pps.json" "$BENCH_ROUNDS" "$BENCH_PACKETS" \
		"$(getconf CLK_TCK)" "$VARIANTS" "$FLOWS_SET" <<-'EOF'
	import json, os, platform, statistics, sys
	raw, out, rounds, packets, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
	variants, flows_set = sys.argv[6].split(), [int(f) for f in sys.argv[7].split()]
	runs = {}
	for line in open(raw):
	    r, v, f, ns, good, other, ticks = line.split()
	    runs.setdefault((v, int(f)), []).append((int(ns), int(good), int(other), int(ticks)))
	def med(xs):
	    return statistics.median(xs) if xs else None
	res, by = [], {}
	for f in flows_set:
	    for v in variants:
	        rs = runs.get((v, f), [])
	        pps = [g * 1e9 / ns for ns, g, _, _ in rs if ns > 0]
	        cpu = [t / hz / (g / 1e6) for _, g, _, t in rs if g > 0]
	        e = {"variant": v, "flows": f, "pps_median": med(pps), "pps_rounds": pps,
	             "cpu_s_per_mpkt": med(cpu),
	             "misaddressed": sum(o for _, _, o, _ in rs),
	             "delivered_fraction": med([g / packets for _, g, _, _ in rs])}
	        by[(v, f)] = e
	        res.append(e)
	    null = by[("null", f)]["pps_median"]
	    for v in variants:
	        p = by[(v, f)]["pps_median"]
	        by[(v, f)]["cost_ns"] = 1e9 / p - 1e9 / null if p and null else None
	def div(a, b):
	    # A cost at or below the noise (<= 0) makes no ratio.
	    return a / b if a is not None and b is not None and b > 0 else None
	def ratios(f):
	    c = lambda v: by[(v, f)]["cost_ns"]
	    p = lambda v: by[(v, f)]["pps_median"]
	    return {"nft_over_xdpfwd_cost": div(c("nftables"), c("xdpfwd")),
	            "xdpfwd_over_bare_cost": div(c("xdpfwd"), c("bare")),
	            "xdpfwd_over_nft_pps": div(p("xdpfwd"), p("nftables")),
	            "xdpfwd_over_bare_pps": div(p("xdpfwd"), p("bare"))}
	main_flows = max(flows_set)
	r = ratios(main_flows)
	want = {"nft_over_xdpfwd_cost": (">= 8", lambda x: x >= 8),
	        "xdpfwd_over_bare_cost": ("<= 1.5", lambda x: x <= 1.5),
	        "xdpfwd_over_nft_pps": (">= 4", lambda x: x >= 4),
	        "xdpfwd_over_bare_pps": (">= 0.85", lambda x: x >= 0.85)}
	targets = {k: {"value": r[k], "target": t, "met": r[k] is not None and ok(r[k])}
	           for k, (t, ok) in want.items()}
	u = platform.uname()
	model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
	              if l.startswith("model name")), None)
	doc = {"section": "pps",
	       "machine": {"uname": " ".join(u), "kernel": u.release, "cpus": os.cpu_count(),
	                   "cpu_model": model},
	       "rounds": rounds, "packets": packets, "frame_bytes": 64,
	       "results": res, "ratio_flows": main_flows, "ratios": r,
	       "ratios_by_flows": {str(f): ratios(f) for f in flows_set},
	       "targets": targets}
	json.dump(doc, open(out, "w"), indent=1)
	for e in res:
	    print("  %-8s %4d flows  %6.2f Mpps  cost %7.1f ns  %.3f cpu-s/Mpkt" % (
	        e["variant"], e["flows"], (e["pps_median"] or 0) / 1e6, e["cost_ns"] or 0,
	        e["cpu_s_per_mpkt"] or 0))
	for k, t in targets.items():
	    print("  %-22s %s (target %s) %s" % (k, "%.2f" % t["value"] if t["value"] is not None
	          else "-", t["target"], "met" if t["met"] else "MISSED"))
	EOF
}

# ---------------------------------------------------------------- main

[ "$(id -u)" -eq 0 ] || die "needs root (make bench)"
[ -x "$XDPFWD_BIN" ] || die "$XDPFWD_BIN missing: run make first"
for f in gen gen.bpf.o sink.bpf.o bare.bpf.o; do
	[ -e "$BENCH_TOOLS/$f" ] || die "$BENCH_TOOLS/$f missing: make bench builds it"
done
mkdir -p "$BENCH_OUT" || die "cannot make $BENCH_OUT"
RAW="$BENCH_OUT/pps.raw"
: > "$RAW"

topo_bench || die "could not build the bench topology"
echo "pps: $BENCH_ROUNDS rounds of $BENCH_PACKETS packets, variants $VARIANTS"

# Warm-up: connections made and answered (both forwarders), caches and page
# pools filled.
for flows in $FLOWS_SET; do
	for v in $VARIANTS; do
		out=$(measure "$v" "$flows" "$WARM_PACKETS") || die "warm-up of $v failed"
		set -- $out
		[ "$2" -gt 0 ] || die "$v: nothing reached the sink in the warm-up ($3 misaddressed)"
		case $v in
		xdpfwd|nftables) answer "$v" "$flows" || die "$v: the sink's answers failed" ;;
		esac
	done
done

for round in $(seq "$BENCH_ROUNDS"); do
	for flows in $FLOWS_SET; do
		for v in $VARIANTS; do
			out=$(measure "$v" "$flows" "$BENCH_PACKETS") || die "$v run failed"
			echo "$round $v $flows $out" >> "$RAW"
			set -- $out
			printf '  round %d %-8s %4d flows: %6.2f Mpps (%d of %d arrived, %d misaddressed)\n' \
				"$round" "$v" "$flows" "$(echo "$2 * 1000 / $1" | bc -l)" "$2" \
				"$BENCH_PACKETS" "$3"
		done
	done
done

write_json "$RAW" || die "could not write $BENCH_OUT/pps.json"
