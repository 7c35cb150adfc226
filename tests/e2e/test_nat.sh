#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: the NAT modes (issue 4). Real clients and servers in namespaces
# of their own, which stay plain hosts: nothing of ours runs there but the
# peers. The router's kernel forwarding is off (and nftables drops whatever
# it would forward), so whatever arrives was sent by XDP or by xdpfwd's TC
# ingress program, and the reason counters say which.
#
#   onearm     client 192.0.2.2, router 192.0.2.1 (one NIC, eth0) and server
#              192.0.2.4 on one switch; the server's default route is
#              192.0.2.254, not the router. Source NAT or nothing works.
#   hairpin    lib.sh's client - wan [router] lan, the lan on a switch with
#              the server and a LAN client 198.51.100.3, which reaches the
#              server through the router's WAN address.
#   range      lib.sh's topology; port ranges, with and without backend port.
#   allow      the wan on a switch with two clients, .2 admitted, .3 refused.
#   services   lib.sh's topology; ports given as /etc/services names.
#
# A switch is a bridge in a namespace of its own; "the switch port peering
# the router" is the veth end whose GRO decides whether the router's XDP can
# send into it (GRO off: the packet takes the slow path).
#
#   tests/e2e/test_nat.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-nat: 0 passed, 1 failed"
	exit 1
fi

PEER=$TESTS_DIR/e2e/peer.py

OA_CLIENT=192.0.2.2
OA_ROUTER=192.0.2.1
OA_ROUTER2=192.0.2.3		# a second address of the router, for --snat ADDR
OA_SERVER=192.0.2.4
OA_GATEWAY=192.0.2.254		# the server's default route: on no host
LAN_CLIENT_ADDR=198.51.100.3
CLIENT2_ADDR=203.0.113.3
SNAT_PORT_MIN=1024		# XDPFWD_SNAT_PORT_MIN/MAX
SNAT_PORT_MAX=32767
UPLOAD_SIZE=1048576

# ---------------------------------------------------------------- topologies

# TOPO picks what run_case builds: std (lib.sh's), onearm, lanswitch,
# wanswitch. GRO_SW is the GRO of the switch port peering the router.
TOPO=std GRO_SW=on
NS_SW='' NS_L='' NS_C2=''

# nat_topo_create: the topology $TOPO names.
nat_topo_create() {
	NS_SW='' NS_L='' NS_C2=''
	if [ "$TOPO" = std ]; then
		topo_create
	else
		topo_switched
	fi
}
# shellcheck disable=SC2034  # run_case (lib.sh) reads it
TOPO_BUILDER=nat_topo_create

# sw_link NS IFNAME PORT ADDR/LEN: IFNAME in NS, addressed, on the switch as PORT.
sw_link() {
	ip -n "$NS_SW" link add "$3" type veth peer name "$2" netns "$1" &&
	ip -n "$NS_SW" link set "$3" master br0 up &&
	ip -n "$1" addr add "$4" dev "$2" &&
	ip -n "$1" link set "$2" up
}

# veth_link NS1 IF1 ADDR1/LEN NS2 IF2 ADDR2/LEN: a cable.
veth_link() {
	ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" &&
	ip -n "$1" addr add "$3" dev "$2" && ip -n "$4" addr add "$6" dev "$5" &&
	ip -n "$1" link set "$2" up && ip -n "$4" link set "$5" up
}

# topo_switched: the namespaces and links of $TOPO (not std); names as
# lib.sh's, so that its helpers (xdpfwd, nsx) apply, and the further ones in
# EXTRA_NS for topo_destroy.
topo_switched() {
	TOPO_SEQ=$((TOPO_SEQ + 1))
	local id="$RUN_ID-$TOPO_SEQ" ns links
	NS_C="xfwd-c-$id" NS_R="xfwd-r-$id" NS_S="xfwd-s-$id" NS_SW="xfwd-w-$id"
	PIN_DIR="/sys/fs/bpf/xdpfwd-test-$id"
	[ "$TOPO" = lanswitch ] && NS_L="xfwd-l-$id"
	[ "$TOPO" = wanswitch ] && NS_C2="xfwd-c2-$id"
	EXTRA_NS=("$NS_SW" $NS_L $NS_C2)
	for ns in "$NS_C" "$NS_R" "$NS_S" "$NS_SW" $NS_L $NS_C2; do
		ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
	done
	ip -n "$NS_SW" link add br0 type bridge && ip -n "$NS_SW" link set br0 up || return 1
	case "$TOPO" in
	onearm)
		sw_link "$NS_C" eth0 p-c "$OA_CLIENT/24" &&
		sw_link "$NS_R" eth0 p-r "$OA_ROUTER/24" &&
		sw_link "$NS_S" eth0 p-s "$OA_SERVER/24" &&
		ip -n "$NS_R" addr add "$OA_ROUTER2/24" dev eth0 &&
		ip -n "$NS_S" route add default via "$OA_GATEWAY" || return 1
		links="$NS_C:eth0 $NS_R:eth0 $NS_S:eth0 $NS_SW:p-r"
		;;
	lanswitch)
		veth_link "$NS_R" wan "$ROUTER_WAN_ADDR/24" "$NS_C" eth0 "$CLIENT_ADDR/24" &&
		sw_link "$NS_R" lan p-r "$ROUTER_LAN_ADDR/24" &&
		sw_link "$NS_S" eth0 p-s "$SERVER_ADDR/24" &&
		sw_link "$NS_L" eth0 p-l "$LAN_CLIENT_ADDR/24" &&
		ip -n "$NS_C" route add default via "$ROUTER_WAN_ADDR" &&
		ip -n "$NS_S" route add default via "$ROUTER_LAN_ADDR" &&
		ip -n "$NS_L" route add default via "$ROUTER_LAN_ADDR" || return 1
		links="$NS_C:eth0 $NS_R:wan $NS_R:lan $NS_S:eth0 $NS_L:eth0 $NS_SW:p-r"
		;;
	wanswitch)
		sw_link "$NS_R" wan p-r "$ROUTER_WAN_ADDR/24" &&
		sw_link "$NS_C" eth0 p-c "$CLIENT_ADDR/24" &&
		sw_link "$NS_C2" eth0 p-c2 "$CLIENT2_ADDR/24" &&
		veth_link "$NS_R" lan "$ROUTER_LAN_ADDR/24" "$NS_S" eth0 "$SERVER_ADDR/24" &&
		ip -n "$NS_C" route add default via "$ROUTER_WAN_ADDR" &&
		ip -n "$NS_C2" route add default via "$ROUTER_WAN_ADDR" &&
		ip -n "$NS_S" route add default via "$ROUTER_LAN_ADDR" || return 1
		links="$NS_C:eth0 $NS_C2:eth0 $NS_R:wan $NS_R:lan $NS_S:eth0 $NS_SW:p-r"
		;;
	*)
		echo "unknown topology $TOPO" >&2; return 1 ;;
	esac
	router_forwarding 0 || return 1
	if [ "${TX_CSUM:-on}" = off ]; then
		for ns in $(hosts); do
			set_offload "$ns" eth0 tx off || return 1
		done
	fi
	for ns in $links; do
		wait_until 10 link_up "${ns%%:*}" "${ns#*:}" || return 1
	done
}

# hosts: the namespaces of this topology that stand for other machines.
hosts() {
	local ns
	for ns in "$NS_C" "$NS_S" "$NS_L" "$NS_C2"; do
		if [ -n "$ns" ]; then echo "$ns"; fi
	done
}

# ---------------------------------------------------------------- router

# router_up IFACE...: kernel forwarding off, nftables dropping what it would
# forward anyway, GRO_SW on the switch port peering the router (before load,
# which asks which egresses take XDP frames), xdpfwd on IFACE...
router_up() {
	check "kernel forwarding off in the router" router_forwarding 0 &&
	check "nftables forward drop in the router" kernel_forward_drop || return 1
	if [ -n "$NS_SW" ]; then
		check "GRO $GRO_SW on the switch port peering the router" \
			set_offload "$NS_SW" p-r gro "$GRO_SW" || return 1
	fi
	check "load $*" xdpfwd load "$@"
}

# kernel_forwarded_nothing IFACE...: forwarding is still off at the end, so
# the traffic was not the kernel's doing.
kernel_forwarded_nothing() {
	local ifc
	assert_eq "net.ipv4.ip_forward in the router at the end" \
		"$(nsx "$NS_R" sysctl -n net.ipv4.ip_forward)" 0
	for ifc in "$@"; do
		assert_eq "net.ipv4.conf.$ifc.forwarding in the router at the end" \
			"$(nsx "$NS_R" sysctl -n "net.ipv4.conf.$ifc.forwarding")" 0
	done
}

# hosts_untouched: no XDP program and no TC filter on any host's interface.
hosts_untouched() {
	local ns
	for ns in $(hosts); do
		if ip -n "$ns" -d link show dev eth0 | grep -q 'prog/xdp'; then
			err "an XDP program is attached in host namespace $ns"
		fi
		if [ -n "$(tc -n "$ns" filter show dev eth0 ingress 2>/dev/null)$(tc -n "$ns" filter show dev eth0 egress 2>/dev/null)" ]; then
			err "a TC filter is attached in host namespace $ns"
		fi
	done
}

# no_nat_drops: nothing was dropped for want of a SNAT address, port or route.
no_nat_drops() {
	assert_eq "reason drop_snat_no_addr" "$(reason drop_snat_no_addr)" 0
	assert_eq "reason drop_snat_no_port" "$(reason drop_snat_no_port)" 0
	assert_eq "reason drop_tc_unroutable" "$(reason drop_tc_unroutable)" 0
}

# ---------------------------------------------------------------- peers

# backends NS ADDR: the servers the NAT cases use, on ADDR: :80 HTTP (the
# random blob; its log names each client), :81 TCP echo (logs each client's
# address and port), :82 TCP sink (answers the sha256 of what it got), :53
# UDP (answers "answer:" + the query).
backends() {
	HTTP_LOG="$WORK_DIR/http.$TOPO_SEQ.log" ECHO_LOG="$WORK_DIR/echo.$TOPO_SEQ.log"
	: >"$ECHO_LOG"
	make_blob || { err "could not make the test file"; return 1; }
	bg "$1" "$PY" "$PEER" http "$2" 80 "$WORK_DIR/www" >"$HTTP_LOG" 2>&1
	{
		bg "$1" "$PY" "$PEER" echo-tcp "$2" 81 "$ECHO_LOG"
		bg "$1" "$PY" "$PEER" sink-tcp "$2" 82
		bg "$1" "$PY" "$PEER" serve "$2" 53
	} >>"$WORK_DIR/peer.err" 2>&1
	check "HTTP server on $2:80" wait_listen "$1" tcp 80 &&
	check "TCP echo server on $2:81" wait_listen "$1" tcp 81 &&
	check "TCP sink server on $2:82" wait_listen "$1" tcp 82 &&
	check "UDP server on $2:53" wait_listen "$1" udp 53
}

# ask NS ADDR PORT MSG...: one TCP connection per MSG, all open at once; each
# sends its MSG and a newline, and prints the line that comes back, or
# "connect-error EXCEPTION" (TimeoutError: nothing came back in 3 s;
# ConnectionRefusedError: a reset) or "error EXCEPTION".
ASK_PY='
import socket, sys
addr, port, msgs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
conns = []
for m in msgs:
    try:
        conns.append((socket.create_connection((addr, port), timeout=3.0), m))
    except OSError as e:
        print("connect-error %s" % type(e).__name__)
        sys.exit(1)
try:
    for c, m in conns:
        c.sendall(m.encode() + b"\n")
    for c, m in conns:
        print(c.makefile("rb").readline().decode(errors="replace").rstrip("\n"))
        c.close()
except OSError as e:
    print("error %s" % type(e).__name__)
    sys.exit(1)
'
ask() {
	local ns=$1; shift
	nsx "$ns" timeout 15 "$PY" -c "$ASK_PY" "$@" 2>&1
}

# echo_peers MSG...: "<addr>:<port>" the echo server saw each MSG come from.
echo_peers() {
	local m
	for m in "$@"; do
		awk -v m="$m" '$3 == m { print $1 }' "$ECHO_LOG"
	done
}

# ---------------------------------------------------------------- conntrack

# ct_json [RULE]: `xdpfwd -j conntrack list [--name RULE]`.
ct_json() {
	if [ -n "${1:-}" ]; then
		xdpfwd -j conntrack list --name "$1"
	else
		xdpfwd -j conntrack list
	fi
}

# ct_verdict RULE CLIENT WANT-SRC: "ok" when RULE lists connections from
# CLIENT and each leaves with source WANT-SRC (reply.dst), on a port from
# the SNAT range when WANT-SRC is not CLIENT, else on the client's port;
# otherwise what is wrong.
CT_VERDICT_PY='
import json, sys
client, want, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mine = [c for c in json.load(sys.stdin) if c["orig"]["src"] == client]
bad = []
for c in mine:
    o, r = c["orig"], c["reply"]
    who = "%s:%d" % (o["src"], o["sport"])
    if r["dst"] != want:
        bad.append("%s goes to the backend from %s, want %s" % (who, r["dst"], want))
    elif want != client and not lo <= r["dport"] <= hi:
        bad.append("%s SNAT port %d is outside %d-%d" % (who, r["dport"], lo, hi))
    elif want == client and r["dport"] != o["sport"]:
        bad.append("%s port changed to %d without SNAT" % (who, r["dport"]))
print("; ".join(bad) if bad else "ok" if mine else "no connection from %s listed" % client)
'
ct_verdict() {
	ct_json "$1" | "$PY" -c "$CT_VERDICT_PY" "$2" "$3" "$SNAT_PORT_MIN" "$SNAT_PORT_MAX" 2>&1
}

# ct_snat_ports RULE CLIENT: "<addr>:<port>" each connection from CLIENT
# leaves with (reply.dst:reply.dport), one a line.
ct_snat_ports() {
	ct_json "$1" | jget "'\n'.join('%s:%d' % (c['reply']['dst'], c['reply']['dport'])
		for c in d if c['orig']['src'] == '$2')"
}

# ct_count_from ADDR RULE...: connections from ADDR of the RULEs.
ct_count_from() {
	local addr=$1; shift
	ct_json | "$PY" -c 'import json, sys
print(len([c for c in json.load(sys.stdin) if c["orig"]["src"] == sys.argv[1] and c["rule"] in sys.argv[2:]]))' \
		"$addr" "$@"
}

# stat_is RULE FIELD VALUE: for wait_until.
stat_is() {
	[ "$(rule_stat "$1" "$2")" = "$3" ]
}

# ---------------------------------------------------------------- rule sets

# A rule set PREFIX: PREFIX-web TCP -> :80, PREFIX-echo TCP+1 -> :81,
# PREFIX-up TCP+2 -> :82, PREFIX-dns UDP -> :53 of the backends.
declare -A SET_TCP SET_UDP SET_BACKEND

# rule_set PREFIX TCP-PORT UDP-PORT BACKEND [OPTION...]
rule_set() {
	local p=$1 t=$2 u=$3 b=$4; shift 4
	SET_TCP[$p]=$t SET_UDP[$p]=$u SET_BACKEND[$p]=$b
	check "add tcp $t $b:80 --name $p-web $*" xdpfwd add tcp "$t" "$b:80" --name "$p-web" "$@" &&
	check "add tcp $((t + 1)) $b:81 --name $p-echo $*" \
		xdpfwd add tcp "$((t + 1))" "$b:81" --name "$p-echo" "$@" &&
	check "add tcp $((t + 2)) $b:82 --name $p-up $*" \
		xdpfwd add tcp "$((t + 2))" "$b:82" --name "$p-up" "$@" &&
	check "add udp $u $b:53 --name $p-dns $*" xdpfwd add udp "$u" "$b:53" --name "$p-dns" "$@"
}

# set_download NS EXT PREFIX WANT-SRC TAG: the blob from the server to the
# client, byte-exact; the HTTP server saw the request come from WANT-SRC.
# Fails when nothing came at all.
set_download() {
	local url="http://$2:${SET_TCP[$3]}/blob.bin?$5" out="$WORK_DIR/got.$5" sha
	rm -f "$out"
	check "curl $url in $1" nsx "$1" timeout 30 curl -sS --connect-timeout 5 --max-time 25 -o "$out" "$url" ||
		return 1
	sha=$(sha256sum <"$out" | cut -d' ' -f1)
	rm -f "$out"
	assert_eq "sha256 of the $BLOB_SIZE bytes from $url" "$sha" "$BLOB_SHA"
	assert_eq "the client address the HTTP server logged for $url" \
		"$(grep -F "/blob.bin?$5 " "$HTTP_LOG" | cut -d' ' -f1)" "$4"
	return 0
}

# set_upload NS EXT PREFIX: random bytes from the client to the sink, which
# answers their sha256: byte-exact.
set_upload() {
	local port=$((${SET_TCP[$3]} + 2))
	assert_eq "upload of $UPLOAD_SIZE bytes to $2:$port" \
		"$(nsx "$1" timeout 20 "$PY" "$PEER" upload "$2" "$port" "$UPLOAD_SIZE" 2>&1)" "ok $UPLOAD_SIZE"
}

# set_echo NS CLIENT EXT PREFIX WANT-SRC TAG: two connections at once, a line
# each way on each; the server saw both come from WANT-SRC, from two ports,
# the very ports conntrack lists for them.
set_echo() {
	local port=$((${SET_TCP[$4]} + 1)) backend=${SET_BACKEND[$4]} peers addrs ports peer ct
	assert_eq "lines both ways over two connections to $3:$port" \
		"$(ask "$1" "$3" "$port" "$6-a" "$6-b")" "$backend $6-a"$'\n'"$backend $6-b" || return 1
	peers=$(echo_peers "$6-a" "$6-b")
	addrs=$(cut -d: -f1 <<<"$peers" | sort -u)
	ports=$(cut -d: -f2 <<<"$peers" | sort -u | grep -c .)
	assert_eq "source address of $6-a and $6-b at the echo server" "$addrs" "$5"
	assert_eq "distinct source ports of the two connections at the echo server" "$ports" 2
	ct=$(ct_snat_ports "$4-echo" "$2")
	for peer in $peers; do
		grep -qx "$peer" <<<"$ct" ||
			err "the echo server saw a connection from $peer, which conntrack does not list for $2 (it lists: $(tr '\n' ' ' <<<"$ct"))"
	done
}

# set_udp NS EXT PREFIX TAG: an answer, from the address and port asked.
set_udp() {
	local port=${SET_UDP[$3]}
	assert_eq "UDP answer through $2:$port" "$(udp_query "$1" "$2" "$port" "$4" 2>&1)" "$2:$port answer:$4"
}

# set_traffic NS CLIENT EXT PREFIX WANT-SRC: all of the above through the
# rule set PREFIX; every connection of the set from CLIENT leaves the router
# with source WANT-SRC.
set_traffic() {
	local tag="$4-${1##*-}-$RANDOM" r
	# When the download fails the rest would only wait for timeouts.
	if set_download "$1" "$3" "$4" "$5" "$tag"; then
		set_upload "$1" "$3" "$4"
		set_echo "$1" "$2" "$3" "$4" "$5" "$tag"
	fi
	set_udp "$1" "$3" "$4" "$tag"
	for r in web echo up dns; do
		assert_eq "connections of rule $4-$r from $2" "$(ct_verdict "$4-$r" "$2" "$5")" ok
	done
}

# ---------------------------------------------------------------- path

# sent_by_xdp: GRO on at the switch port peering the router: XDP sent the
# source-NATed packets back out their ingress.
sent_by_xdp() {
	assert_gt "reason fwd_tx" "$(reason fwd_tx)" 0
	assert_eq "reason pass_slow_egress" "$(reason pass_slow_egress)" 0
}

# sent_by_tc: GRO off there: XDP could not send them, the TC ingress program did.
sent_by_tc() {
	assert_eq "reason fwd_tx" "$(reason fwd_tx)" 0
	assert_gt "reason pass_slow_egress" "$(reason pass_slow_egress)" 0
	assert_gt "reason tc_sent" "$(reason tc_sent)" 0
}

# ---------------------------------------------------------------- cases

# 1. One arm: client, router and server share one segment and the server's
# default route is not the router. A plain rule (its backend is reached back
# out the ingress, so it is source-NATed anyway), a --snat auto rule, and a
# --snat ADDR rule: the server sees the router's address, never the client's.
case_onearm() {
	local got
	router_up eth0 && backends "$NS_S" "$OA_SERVER" || return 1
	rule_set oa 8080 5353 "$OA_SERVER" &&
	rule_set oaa 9080 9053 "$OA_SERVER" --snat auto &&
	check "add tcp 7081 $OA_SERVER:81 --snat $OA_ROUTER2" \
		xdpfwd add tcp 7081 "$OA_SERVER:81" --name fixed --snat "$OA_ROUTER2" || return 1
	assert_eq "snat of the rules in list" \
		"$(xdpfwd -j list | jget "sorted(set((r['name'].split('-')[0], r['snat']) for r in d))")" \
		"[[\"fixed\", \"$OA_ROUTER2\"], [\"oa\", null], [\"oaa\", \"auto\"]]"

	set_traffic "$NS_C" "$OA_CLIENT" "$OA_ROUTER" oa "$OA_ROUTER"
	set_traffic "$NS_C" "$OA_CLIENT" "$OA_ROUTER" oaa "$OA_ROUTER"
	got=$(ask "$NS_C" "$OA_ROUTER" 7081 fixed-1)
	assert_eq "line both ways through the --snat $OA_ROUTER2 rule" "$got" "$OA_SERVER fixed-1"
	assert_eq "source address of fixed-1 at the echo server" \
		"$(echo_peers fixed-1 | cut -d: -f1)" "$OA_ROUTER2"
	assert_eq "connections of rule fixed" "$(ct_verdict fixed "$OA_CLIENT" "$OA_ROUTER2")" ok

	if [ "$GRO_SW" = on ]; then
		sent_by_xdp
		assert_eq "reason fwd_redirect (one interface: all goes back out it)" "$(reason fwd_redirect)" 0
	else
		sent_by_tc
	fi
	no_nat_drops
	kernel_forwarded_nothing eth0
	hosts_untouched
}

# 2. Hairpin: a LAN client reaches the server through the router's WAN
# address (and its LAN address); the server sees the router's LAN address.
# A WAN client through the same rules keeps its own address (when the
# router's XDP can send into the LAN; the kernel may not forward).
case_hairpin() {
	check "GRO on at the WAN client" set_offload "$NS_C" eth0 gro on && router_up wan lan &&
	backends "$NS_S" "$SERVER_ADDR" && rule_set hp 8080 5353 "$SERVER_ADDR" || return 1

	set_traffic "$NS_L" "$LAN_CLIENT_ADDR" "$ROUTER_WAN_ADDR" hp "$ROUTER_LAN_ADDR"
	assert_eq "line both ways from the LAN client to the router's LAN address" \
		"$(ask "$NS_L" "$ROUTER_LAN_ADDR" 8081 hp-lan-addr)" "$SERVER_ADDR hp-lan-addr"
	assert_eq "source address of hp-lan-addr at the echo server" \
		"$(echo_peers hp-lan-addr | cut -d: -f1)" "$ROUTER_LAN_ADDR"
	if [ "$GRO_SW" = on ]; then
		set_traffic "$NS_C" "$CLIENT_ADDR" "$ROUTER_WAN_ADDR" hp "$CLIENT_ADDR"
		assert_gt "reason fwd_redirect (the WAN client)" "$(reason fwd_redirect)" 0
		sent_by_xdp
	else
		sent_by_tc
	fi
	no_nat_drops
	kernel_forwarded_nothing wan lan
	hosts_untouched
}

# 3. Ranges: 8000-8002 onto 9000-9002 and 7000-7002 onto the same ports;
# ports beside them are not forwarded; overlapping adds are refused and
# change nothing.
RANGE_PORTS="9000 9001 9002 7000 7001 7002"

range_log() {
	echo "$WORK_DIR/range.$TOPO_SEQ.$1"
}

range_servers() {
	local port
	for port in $RANGE_PORTS; do
		: >"$(range_log "$port")"
		bg "$NS_S" "$PY" "$PEER" echo-tcp "$SERVER_ADDR" "$port" "$(range_log "$port")" \
			>>"$WORK_DIR/peer.err" 2>&1
	done
	for port in $RANGE_PORTS; do
		check "TCP echo server on $SERVER_ADDR:$port" wait_listen "$NS_S" tcp "$port" || return 1
	done
}

# servers_that_got MSG: the ports of the echo servers that got MSG.
servers_that_got() {
	local port out=''
	for port in $RANGE_PORTS; do
		awk -v m="$1" '$3 == m' "$(range_log "$port")" | grep -q . && out+="$port "
	done
	echo "${out% }"
}

# range_hit EXT-PORT BACKEND-PORT: a line through EXT-PORT reaches the server
# on BACKEND-PORT, and only that one.
range_hit() {
	local msg="to-$1-$RANDOM"
	assert_eq "answer through $ROUTER_WAN_ADDR:$1" \
		"$(ask "$NS_C" "$ROUTER_WAN_ADDR" "$1" "$msg")" "$SERVER_ADDR $msg"
	assert_eq "the server port that got the line sent to $ROUTER_WAN_ADDR:$1" \
		"$(servers_that_got "$msg")" "$2"
}

# range_miss EXT-PORT: the router itself refuses it; no server gets it.
range_miss() {
	local msg="to-$1-$RANDOM"
	assert_eq "connecting to $ROUTER_WAN_ADDR:$1 (not forwarded)" \
		"$(ask "$NS_C" "$ROUTER_WAN_ADDR" "$1" "$msg")" "connect-error ConnectionRefusedError"
	assert_eq "servers that got a line sent to $ROUTER_WAN_ADDR:$1" "$(servers_that_got "$msg")" ""
}

# rule_ports NAME: "EXT-EXT_END -> INT-INT_END" of rule NAME in `-j list`.
rule_ports() {
	xdpfwd -j list | jget "['%d-%d -> %d-%d' % (r['ext_port'], r['ext_port_end'], r['int_port'],
		r['int_port_end']) for r in d if r['name'] == '$1'][0]"
}

# refused_add ARGS...: `xdpfwd add ARGS` exits 2 with one error line and
# leaves the rules as they were.
refused_add() {
	local before after rc n
	before=$(xdpfwd -j list)
	xdpfwd add "$@" >"$WORK_DIR/add.out" 2>"$WORK_DIR/add.err" </dev/null
	rc=$?
	after=$(xdpfwd -j list)
	assert_eq "exit status of 'xdpfwd add $*'" "$rc" 2
	n=$(wc -l <"$WORK_DIR/add.err")
	if [ "$n" != 1 ] || ! grep -q '^xdpfwd: error: ' "$WORK_DIR/add.err"; then
		err "'xdpfwd add $*' printed $n lines, want one 'xdpfwd: error: ' line: $(head -c 300 "$WORK_DIR/add.err")"
	fi
	assert_eq "rules after the refused 'xdpfwd add $*'" "$after" "$before"
}

case_range() {
	local p
	check "GRO on at client and server" gro on && router_up wan lan && range_servers || return 1
	check "add tcp 8000-8002 $SERVER_ADDR:9000" \
		xdpfwd add tcp 8000-8002 "$SERVER_ADDR:9000" --name r9 &&
	check "add tcp 7000-7002 $SERVER_ADDR (ports kept)" \
		xdpfwd add tcp 7000-7002 "$SERVER_ADDR" --name keep || return 1
	assert_eq "ports of rule r9 in list" "$(rule_ports r9)" "8000-8002 -> 9000-9002"
	assert_eq "ports of rule keep in list" "$(rule_ports keep)" "7000-7002 -> 7000-7002"

	for p in 0 1 2; do
		range_hit "800$p" "900$p"
		range_hit "700$p" "700$p"
	done
	range_miss 8003
	range_miss 7999
	range_miss 7003

	refused_add tcp 8002-8004 "$SERVER_ADDR:9500"
	refused_add tcp 8001 "$SERVER_ADDR:80"
	refused_add tcp 7990-8000 "$SERVER_ADDR:80"
	refused_add tcp 6990-7000 "$SERVER_ADDR"
	refused_add tcp 7000-8002 "$SERVER_ADDR"
	range_hit 8002 9002	# the datapath is as it was, too
	range_miss 8003

	# The same ports on the other protocol do not overlap.
	check "add udp 8000-8002 $SERVER_ADDR:9000" \
		xdpfwd add udp 8000-8002 "$SERVER_ADDR:9000" --name r9u
	assert_eq "rules after adding the UDP range" \
		"$(xdpfwd -j list | jget "sorted(r['name'] for r in d)")" '["keep", "r9", "r9u"]'

	assert_gt "reason fwd_redirect" "$(reason fwd_redirect)" 0
	assert_gt "orig_packets of r9" "$(rule_stat r9 orig_packets)" 0
	assert_gt "orig_packets of keep" "$(rule_stat keep orig_packets)" 0
	kernel_forwarded_nothing wan lan
}

# 4. Allowlist: client 203.0.113.2 is admitted, 203.0.113.3 is not, on the
# same switch. The refused client gets nothing back (no reset), its packets
# are counted, and no connection of it is tracked; a rule without allowlist
# serves it, so its path is fine.
case_allow() {
	local got denied_tcp denied_udp udp_log="$WORK_DIR/udp-listen.$TOPO_SEQ"
	check "GRO on at the server" set_offload "$NS_S" eth0 gro on && router_up wan lan || return 1
	ECHO_LOG="$WORK_DIR/echo.$TOPO_SEQ.log"
	: >"$ECHO_LOG" && : >"$udp_log"
	bg "$NS_S" "$PY" "$PEER" echo-tcp "$SERVER_ADDR" 81 "$ECHO_LOG" >>"$WORK_DIR/peer.err" 2>&1
	listener "$NS_S" udp "$SERVER_ADDR" 54 "$udp_log"
	check "TCP echo server on :81" wait_listen "$NS_S" tcp 81 &&
	check "UDP listener on :54" wait_listen "$NS_S" udp 54 || return 1
	check "add tcp 8081 --allow $CLIENT_ADDR/32" \
		xdpfwd add tcp 8081 "$SERVER_ADDR:81" --name guarded --allow "$CLIENT_ADDR/32" &&
	check "add udp 5454 --allow $CLIENT_ADDR/32" \
		xdpfwd add udp 5454 "$SERVER_ADDR:54" --name guarded-udp --allow "$CLIENT_ADDR/32" &&
	check "add tcp 8091 (no allowlist)" xdpfwd add tcp 8091 "$SERVER_ADDR:81" --name open || return 1
	assert_eq "allowlists in list" \
		"$(xdpfwd -j list | jget "sorted((r['name'], r['allow']) for r in d)")" \
		"[[\"guarded\", [\"$CLIENT_ADDR/32\"]], [\"guarded-udp\", [\"$CLIENT_ADDR/32\"]], [\"open\", []]]"

	# The admitted client.
	assert_eq "line both ways from $CLIENT_ADDR through the allowlist" \
		"$(ask "$NS_C" "$ROUTER_WAN_ADDR" 8081 c1-in)" "$SERVER_ADDR c1-in"
	assert_eq "source of c1-in at the echo server" "$(echo_peers c1-in | cut -d: -f1)" "$CLIENT_ADDR"
	nsx "$NS_C" timeout 5 "$PY" "$PEER" send-udp "$ROUTER_WAN_ADDR" 5454 c1-udp >/dev/null 2>&1
	wait_until 3 grep -q c1-udp "$udp_log"
	assert_eq "the UDP listener got c1-udp from" "$(awk '$2 == "c1-udp" { print $1 }' "$udp_log")" "$CLIENT_ADDR"
	assert_eq "denied_packets of guarded after the admitted client" "$(rule_stat guarded denied_packets)" 0
	assert_eq "denied_packets of guarded-udp after the admitted client" "$(rule_stat guarded-udp denied_packets)" 0

	# The other client: through the open rule, then the guarded ones.
	assert_eq "line both ways from $CLIENT2_ADDR through the rule without allowlist" \
		"$(ask "$NS_C2" "$ROUTER_WAN_ADDR" 8091 c2-open)" "$SERVER_ADDR c2-open"
	got=$(ask "$NS_C2" "$ROUTER_WAN_ADDR" 8081 c2-in)
	assert_eq "connecting from $CLIENT2_ADDR to the guarded port (no answer at all)" \
		"$got" "connect-error TimeoutError"
	assert_eq "lines from $CLIENT2_ADDR at the echo server" \
		"$(awk -v a="$CLIENT2_ADDR" 'index($1, a ":") == 1 { print $3 }' "$ECHO_LOG")" c2-open
	nsx "$NS_C2" timeout 5 "$PY" "$PEER" send-udp "$ROUTER_WAN_ADDR" 5454 c2-udp >/dev/null 2>&1
	wait_until 3 stat_is guarded-udp denied_packets 1
	sleep 0.5
	assert_eq "the UDP listener got c2-udp" "$(grep -c c2-udp "$udp_log")" 0

	denied_tcp=$(rule_stat guarded denied_packets)
	denied_udp=$(rule_stat guarded-udp denied_packets)
	assert_ge "denied_packets of guarded (the SYN and its retries)" "$denied_tcp" 1
	assert_eq "denied_packets of guarded-udp (one datagram)" "$denied_udp" 1
	assert_eq "denied_packets of open" "$(rule_stat open denied_packets)" 0
	assert_eq "reason drop_denied (the rules' denied_packets together)" \
		"$(reason drop_denied)" "$((denied_tcp + denied_udp))"
	assert_eq "connections of $CLIENT2_ADDR tracked for guarded rules" \
		"$(ct_count_from "$CLIENT2_ADDR" guarded guarded-udp)" 0
	assert_eq "connections of $CLIENT2_ADDR tracked for open" "$(ct_count_from "$CLIENT2_ADDR" open)" 1
	assert_eq "connections of $CLIENT_ADDR tracked for guarded rules" \
		"$(ct_count_from "$CLIENT_ADDR" guarded guarded-udp)" 2
	kernel_forwarded_nothing wan lan
}

# 5. Service names from /etc/services, both ends, also in a range; unknown
# names (or a name of the other protocol) are refused.
case_services() {
	local got
	if ! grep -qE '^http[[:space:]]+80/tcp' /etc/services ||
	   ! grep -qE '^domain[[:space:]]+53/udp' /etc/services ||
	   ! grep -qE '^ftp-data[[:space:]]+20/tcp' /etc/services; then
		info "/etc/services lacks http, domain or ftp-data"
		return $SKIP
	fi
	check "GRO on at client and server" gro on && router_up wan lan || return 1
	check "http server up" start_http &&
	check "udp server up" udp_server "$NS_S" "$SERVER_ADDR" 53 || return 1
	check "add tcp http $SERVER_ADDR:http" xdpfwd add tcp http "$SERVER_ADDR:http" --name web &&
	check "add tcp 8080 $SERVER_ADDR:www (an alias)" xdpfwd add tcp 8080 "$SERVER_ADDR:www" --name alias &&
	check "add udp domain $SERVER_ADDR:domain" xdpfwd add udp domain "$SERVER_ADDR:domain" --name dns &&
	check "add tcp ftp-data-ftp $SERVER_ADDR:8020" \
		xdpfwd add tcp ftp-data-ftp "$SERVER_ADDR:8020" --name ftp || return 1
	assert_eq "ports of rule web in list" "$(rule_ports web)" "80-80 -> 80-80"
	assert_eq "ports of rule alias in list" "$(rule_ports alias)" "8080-8080 -> 80-80"
	assert_eq "ports of rule dns in list" "$(rule_ports dns)" "53-53 -> 53-53"
	assert_eq "ports of rule ftp in list" "$(rule_ports ftp)" "20-21 -> 8020-8021"

	got=$(nsx "$NS_C" timeout 10 curl -sS --connect-timeout 3 --max-time 8 "http://$ROUTER_WAN_ADDR/index.html" 2>&1)
	assert_eq "page through tcp http" "$got" "hello from the server"
	got=$(nsx "$NS_C" timeout 10 curl -sS --connect-timeout 3 --max-time 8 "http://$ROUTER_WAN_ADDR:8080/index.html" 2>&1)
	assert_eq "page through tcp 8080 -> www" "$got" "hello from the server"
	assert_eq "UDP answer through udp domain" \
		"$(udp_query "$NS_C" "$ROUTER_WAN_ADDR" 53 svc 2>&1)" "$ROUTER_WAN_ADDR:53 answer:svc"
	assert_gt "orig_packets of web" "$(rule_stat web orig_packets)" 0
	assert_gt "orig_packets of dns" "$(rule_stat dns orig_packets)" 0

	refused_add tcp nosuchservice "$SERVER_ADDR:80"
	refused_add tcp 8081 "$SERVER_ADDR:nosuchservice"
	refused_add udp ftp "$SERVER_ADDR:21"		# ftp is tcp only
	refused_add tcp http-nosuchservice "$SERVER_ADDR:80"
	kernel_forwarded_nothing wan lan
}

# ---------------------------------------------------------------- main

FILTER=${1:-}
t_all=$SECONDS

# run NAME TOPO GRO_SW TX_CSUM FUNC
run() {
	[ -n "$FILTER" ] && [[ "$1" != *"$FILTER"* ]] && return 0
	TOPO=$2 GRO_SW=$3 TX_CSUM=$4
	export TX_CSUM
	run_case "$1" "$5"
}

for tx in on off; do
	for g in on off; do
		run "nat_onearm[gro=$g,tx=$tx]" onearm "$g" "$tx" case_onearm
		run "nat_hairpin[gro=$g,tx=$tx]" lanswitch "$g" "$tx" case_hairpin
	done
done
run "nat_range" std on on case_range
run "nat_allow" wanswitch on on case_allow
run "nat_services" std on on case_services

log "(nat e2e: $((SECONDS - t_all))s)"
finish e2e-nat
