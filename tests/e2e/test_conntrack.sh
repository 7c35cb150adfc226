#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: connection tracking (issue 3). A real client in one namespace,
# xdpfwd in the router namespace with the kernel's forwarding off (so whatever
# arrives was carried by XDP, which the reason counters confirm), real servers
# in a third. Each case runs on a fresh topology; those whose packets'
# checksums matter run again with the client's and server's TX checksum
# offload off.
#
#   tests/e2e/test_conntrack.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-conntrack: 0 passed, 1 failed"
	exit 1
fi

EXT=$ROUTER_WAN_ADDR
SERVER2_ADDR=198.51.100.3	# a second backend, on the server's link
FLOOD_NET=203.0.113		# syn-flood sources: .100-.199, on no host
WEB_PORT=8080			# tcp "web" -> echo server :80
DNS_PORT=5353			# udp "dns" -> echo server :53
UP_PORT=8081			# tcp "up"  -> sink server :81
PEER=$TESTS_DIR/e2e/peer.py

# ---------------------------------------------------------------- setup

# start_fwd [LOAD-ARGS...]: GRO on at both ends (so their veths take XDP
# frames), xdpfwd on wan and lan, the kernel's forwarding off.
start_fwd() {
	check "kernel forwarding off in the router" router_forwarding 0 &&
	check "GRO on at client and server" gro on &&
	check "load wan lan $*" xdpfwd load wan lan "$@"
}

# echo_server ADDR: peer.py echo-tcp on ADDR:80, logging each line it gets
# to $SRV_LOG.
echo_server() {
	SRV_LOG="$WORK_DIR/echo-srv.$TOPO_SEQ"
	: >"$SRV_LOG"
	bg "$NS_S" "$PY" "$PEER" echo-tcp "$1" 80 "$SRV_LOG" >>"$WORK_DIR/echo.log" 2>&1
	check "TCP echo server on $1:80" wait_listen "$NS_S" tcp 80
}

udp_echo_server() {
	bg "$NS_S" "$PY" "$PEER" echo-udp "$SERVER_ADDR" 53 >>"$WORK_DIR/echo.log" 2>&1
	check "UDP echo server on $SERVER_ADDR:53" wait_listen "$NS_S" udp 53
}

web_rule() {
	check "add tcp $WEB_PORT -> $SERVER_ADDR:80" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web
}

dns_rule() {
	check "add udp $DNS_PORT -> $SERVER_ADDR:53" xdpfwd add udp "$DNS_PORT" "$SERVER_ADDR:53" --name dns
}

# udp_big SIZE: SIZE random bytes to the dns forward, echoed back intact;
# prints peer.py's "ok SIZE from ADDR:PORT".
udp_big() {
	nsx "$NS_C" timeout 10 "$PY" "$PEER" udp-big "$EXT" "$DNS_PORT" "$1"
}

# server_got MSG: the echo server received MSG (any connection).
server_got() {
	awk -v m="$1" '$3 == m' "$SRV_LOG" | grep -q .
}

# ---------------------------------------------------------------- conntrack

# ct_list: `xdpfwd -j conntrack list`.
ct_list() {
	xdpfwd -j conntrack list
}

# Python helpers over the list's entries (`xdpfwd conntrack help`): orig and
# reply are {"src","sport","dst","dport"} as the packets arrive; age and idle
# are whole seconds.
CT_PY='
def cport(c): return c["orig"]["sport"]
def backend(c): return c["reply"]["src"]
def age(c): return c["age"]
def flood(c): return c["orig"]["src"].startswith(FLOOD_NET + ".1")
'

# ct_py CODE ARGS...: Python CODE, after CT_PY, with the list on stdin.
ct_py() {
	local code=$1; shift
	ct_list | "$PY" -c "import json, sys
FLOOD_NET = '$FLOOD_NET'
$CT_PY
$code" "$@"
}

# ct_conn CLIENT-PORT EXPR: EXPR over the client's connection from
# CLIENT-PORT, as `c`; "none" when it is not listed.
ct_conn() {
	ct_py "m = [c for c in json.load(sys.stdin) if cport(c) == int(sys.argv[1])]
print(eval(sys.argv[2], globals(), {'c': m[0]}) if m else 'none')" "$1" "$2"
}

# ct_eval EXPR: EXPR over the whole list, as `d`.
ct_eval() {
	ct_py "d = json.load(sys.stdin)
print(eval(sys.argv[1]))" "$1"
}

# status_flows: connections in `xdpfwd -j status`.
status_flows() {
	xdpfwd -j status | jget "d['flows']"
}

# ---------------------------------------------------------------- cases

# 1. An established connection outlives an idle time longer than every other
# state's timeout: the same connection carries on, and is listed as it was.
case_idle_survives() {
	local st port
	start_fwd && web_rule && echo_server 0.0.0.0 || return 1
	for st in syn_sent syn_recv fin_wait last_ack time_wait close udp_unreplied udp_replied; do
		check "conntrack timeout $st 2" xdpfwd conntrack timeout "$st" 2 || return 1
	done
	assert_eq "timeouts (syn_sent, established, udp_replied)" \
		"$(xdpfwd -j conntrack timeout | jget "[d['syn_sent'], d['established'], d['udp_replied']]")" \
		"[2, 432000, 2]"
	sess_open a "$EXT" "$WEB_PORT" || { err "session a did not connect"; return 1; }
	port=${SESS_PORT[a]}
	sess_ok a "before-idle" "$SERVER_ADDR"
	sleep 4
	sess_ok a "after-idle" "$SERVER_ADDR"
	assert_eq "state of the connection after 4 s idle" "$(ct_conn "$port" 'c["state"]')" established
	assert_eq "assured after 4 s idle" "$(ct_conn "$port" 'c["assured"]')" True
	assert_eq "the connection is the one made before the idle time (age >= 4 s)" \
		"$(ct_conn "$port" 'age(c) >= 4')" True
	assert_eq "connections listed" "$(ct_eval 'len(d)')" 1
	assert_gt "reason fwd_redirect" "$(reason fwd_redirect)" 0
	assert_eq "reason pass_no_match" "$(reason pass_no_match)" 0
}

# 1'. With established set to 2 s, 4 s idle expire the connection; the next
# packet (client data, mid-stream) is picked up as a new connection of the
# rule, so the session carries on, as a young connection.
case_idle_expires() {
	local port
	start_fwd && web_rule && echo_server 0.0.0.0 || return 1
	check "conntrack timeout established 2" xdpfwd conntrack timeout established 2 || return 1
	sess_open a "$EXT" "$WEB_PORT" || { err "session a did not connect"; return 1; }
	port=${SESS_PORT[a]}
	sess_ok a "before-idle" "$SERVER_ADDR"
	assert_eq "the fresh connection is listed" "$(ct_conn "$port" 'c["state"]')" established
	sleep 4
	assert_eq "the expired connection is not listed after 4 s idle" "$(ct_conn "$port" 'c')" none
	sess_ok a "after-idle" "$SERVER_ADDR"
	assert_eq "state of the picked-up connection" "$(ct_conn "$port" 'c["state"]')" established
	assert_eq "picked-up connection is assured once answered" "$(ct_conn "$port" 'c["assured"]')" True
	assert_eq "picked-up connection is new (age < 2 s)" "$(ct_conn "$port" 'age(c) < 2')" True
	assert_eq "reason pass_no_match" "$(reason pass_no_match)" 0
}

# 2. Path MTU: the server's link has MTU 1280 and the server advertises MSS
# 1460, so the client's full-size segments (DF) do not fit; XDP answers them
# with frag-needed, the client learns 1280 and the upload arrives intact.
case_pmtu_tcp() {
	local out
	check "MTU 1280 on the router's lan" ip -n "$NS_R" link set lan mtu 1280 &&
	check "MTU 1280 on the server's eth0" ip -n "$NS_S" link set eth0 mtu 1280 &&
	check "server advertises MSS 1460" \
		ip -n "$NS_S" route replace default via "$ROUTER_LAN_ADDR" advmss 1460 || return 1
	start_fwd || return 1
	check "add tcp $UP_PORT -> $SERVER_ADDR:81" xdpfwd add tcp "$UP_PORT" "$SERVER_ADDR:81" --name up || return 1
	bg "$NS_S" "$PY" "$PEER" sink-tcp "$SERVER_ADDR" 81 >>"$WORK_DIR/sink.log" 2>&1
	check "sink server on :81" wait_listen "$NS_S" tcp 81 || return 1
	out=$(nsx "$NS_C" timeout 30 "$PY" "$PEER" upload "$EXT" "$UP_PORT" 200000 2>&1)
	assert_eq "200 kB upload through a 1280-byte path, byte-exact" "$out" "ok 200000"
	assert_gt "reason icmp_frag_needed (XDP told the client)" "$(reason icmp_frag_needed)" 0
	assert_eq "reason pass_too_big" "$(reason pass_too_big)" 0
	out=$(ip -n "$NS_C" route get "$EXT" 2>&1)
	grep -q 'mtu 1280' <<<"$out" ||
		err "client's route to $EXT has no learnt mtu 1280: $(tr '\n' ' ' <<<"$out")"
	assert_gt "up reply_packets" "$(rule_stat up reply_packets)" 0
}

# 2'. A DF datagram over the path MTU draws a frag-needed that speaks of the
# external address and port (what the client sent), not of the backend. It is
# XDP's (56 bytes: the header and 8 bytes of the datagram; the kernel's would
# be 576), and the client's kernel takes it (the resend fails locally).
case_pmtu_udp() {
	local out want
	check "MTU 1280 on the router's lan" ip -n "$NS_R" link set lan mtu 1280 &&
	check "MTU 1280 on the server's eth0" ip -n "$NS_S" link set eth0 mtu 1280 || return 1
	start_fwd && dns_rule || return 1
	out=$(nsx "$NS_C" timeout 10 "$PY" "$PEER" udp-df "$EXT" "$DNS_PORT" 1400 2>&1)
	want="icmp type=3 code=4 mtu=1280 src=$EXT dst=$CLIENT_ADDR tos=0xc0 ttl=64 len=56 csum=ok"
	want+=" inner=$CLIENT_ADDR:PORT->$EXT:$DNS_PORT proto=17 inner_csum=ok resend=EMSGSIZE"
	assert_eq "ICMP error at the client for a 1428-byte DF datagram" \
		"$(sed -E 's/(inner=[0-9.]+:)[0-9]+/\1PORT/' <<<"$out")" "$want"
	assert_eq "reason icmp_frag_needed" "$(reason icmp_frag_needed)" 1
	assert_eq "reason pass_too_big" "$(reason pass_too_big)" 0
}

# 3. A 4000-byte datagram each way travels in fragments (3 at MTU 1500): all
# of them are forwarded by XDP, the later ones by the record the first left.
case_frag_udp() {
	local r0 u0 o0 p0 out
	start_fwd && dns_rule && udp_echo_server || return 1
	# Warm up: neighbours resolved, so that every fragment below is redirected.
	check "small datagram through the forward" wait_until 5 udp_big 100 || return 1
	r0=$(reason fwd_redirect) u0=$(reason pass_frag_unmatched)
	o0=$(rule_stat dns orig_packets) p0=$(rule_stat dns reply_packets)
	out=$(udp_big 4000 2>&1)
	assert_eq "4000-byte datagram echoed byte-exact" "$out" "ok 4000 from $EXT:$DNS_PORT"
	assert_eq "fwd_redirect growth (3 fragments each way)" "$(( $(reason fwd_redirect) - r0 ))" 6
	assert_eq "reason pass_frag_unmatched" "$(( $(reason pass_frag_unmatched) - u0 ))" 0
	assert_eq "dns orig_packets growth" "$(( $(rule_stat dns orig_packets) - o0 ))" 3
	assert_eq "dns reply_packets growth" "$(( $(rule_stat dns reply_packets) - p0 ))" 3
}

# 4. Deleting the rule ends its open connections at once: the next segment is
# the router's own business, and its kernel (nothing listens on the port)
# resets the connection; nothing more reaches the server.
case_del_open() {
	local port got
	start_fwd && web_rule && echo_server 0.0.0.0 || return 1
	sess_open a "$EXT" "$WEB_PORT" || { err "session a did not connect"; return 1; }
	port=${SESS_PORT[a]}
	sess_ok a "before-del" "$SERVER_ADDR"
	assert_eq "listed before del" "$(ct_conn "$port" 'c["state"]')" established
	check "del --name web" xdpfwd del --name web || return 1
	got=$(sess_send a after-del)
	assert_eq "the client's next segment after del" "$got" "error after-del ConnectionResetError"
	check_fails "the server got nothing after del" server_got after-del
	assert_gt "reason pass_no_match (the segment went to the router's kernel)" "$(reason pass_no_match)" 0
	assert_eq "listed after del" "$(ct_conn "$port" 'c')" none
	assert_eq "connections in status after del" "$(status_flows)" 0
}

# 4'. replace points the rule at another backend: the open connection stays
# with the old one, a new connection goes to the new one.
case_replace() {
	local pa pb
	check "second backend address" ip -n "$NS_S" addr add "$SERVER2_ADDR/24" dev eth0 || return 1
	start_fwd && web_rule && echo_server 0.0.0.0 || return 1
	sess_open a "$EXT" "$WEB_PORT" || { err "session a did not connect"; return 1; }
	pa=${SESS_PORT[a]}
	sess_ok a "a-before" "$SERVER_ADDR"
	check "replace tcp $WEB_PORT -> $SERVER2_ADDR:80" \
		xdpfwd replace tcp "$WEB_PORT" "$SERVER2_ADDR:80" || return 1
	assert_eq "rule after replace" "$(xdpfwd -j list | jget "[(r['name'], r['int_addr']) for r in d]")" \
		"[[\"web\", \"$SERVER2_ADDR\"]]"
	[ -n "$(ip -n "$NS_R" neigh show "$SERVER_ADDR" dev lan)" ] ||
		err "the router no longer has a neighbour entry for the old backend $SERVER_ADDR, which session a still uses"
	sess_ok a "a-after" "$SERVER_ADDR"
	sess_open b "$EXT" "$WEB_PORT" || { err "session b did not connect"; return 1; }
	pb=${SESS_PORT[b]}
	sess_ok b "b-after" "$SERVER2_ADDR"
	sess_ok a "a-again" "$SERVER_ADDR"
	assert_eq "backend of the old connection" "$(ct_conn "$pa" 'backend(c)')" "$SERVER_ADDR"
	assert_eq "backend of the new connection" "$(ct_conn "$pb" 'backend(c)')" "$SERVER2_ADDR"
	assert_eq "reason pass_no_neigh" "$(reason pass_no_neigh)" 0
}

# 5. A SYN flood of twice the table's size (spoofed sources) leaves the
# established connections alone. ANSWERED=1: the server answers the flood
# with SYN-ACKs, which the router delivers towards the spoofed sources (static
# neighbours at the client's MAC; the client, not forwarding, drops them);
# else the server drops the flood unanswered.
flood() {
	local s i mac cmac out n_flood
	start_fwd --max-flows 1024 && web_rule && echo_server 0.0.0.0 || return 1
	if [ "$ANSWERED" = 1 ]; then
		cmac=$(ip -n "$NS_C" -o link show dev eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
		for i in $(seq 100 199); do
			echo "neigh replace $FLOOD_NET.$i lladdr $cmac dev wan nud permanent"
		done | check "router neighbours for the flood sources" ip -n "$NS_R" -batch - || return 1
		check "client does not forward" nsx "$NS_C" sysctl -qw net.ipv4.ip_forward=0 || return 1
	else
		check "server drops the flood" nsx "$NS_S" nft -f - <<-EOF || return 1
		table ip xdpfwd_ct_test {
			chain input {
				type filter hook input priority 0;
				ip saddr $FLOOD_NET.100-$FLOOD_NET.199 drop
			}
		}
		EOF
	fi
	for s in a b c; do
		sess_open "$s" "$EXT" "$WEB_PORT" || { err "session $s did not connect"; return 1; }
		sess_ok "$s" "$s-before" "$SERVER_ADDR"
	done
	for s in a b c; do
		assert_eq "session $s assured before the flood" "$(ct_conn "${SESS_PORT[$s]}" 'c["assured"]')" True
	done
	mac=$(ip -n "$NS_R" -o link show dev wan | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
	out=$(nsx "$NS_C" timeout 20 "$PY" "$PEER" syn-flood eth0 "$mac" "$EXT" "$WEB_PORT" 2500 "$FLOOD_NET" 2>&1)
	assert_eq "flood sent" "$out" "sent 2500"
	sleep 0.5
	for s in a b c; do
		sess_ok "$s" "$s-after" "$SERVER_ADDR"
		assert_eq "session $s after the flood: state" "$(ct_conn "${SESS_PORT[$s]}" 'c["state"]')" established
		assert_eq "session $s after the flood: assured" "$(ct_conn "${SESS_PORT[$s]}" 'c["assured"]')" True
	done
	sess_open d "$EXT" "$WEB_PORT" || err "a new connection after the flood did not connect"
	[ -n "${SESS_PORT[d]}" ] && sess_ok d "d-after" "$SERVER_ADDR"

	n_flood=$(ct_eval "len([c for c in d if flood(c)])")
	assert_gt "flood connections listed" "$n_flood" 0
	# Each connection is two entries in one table: a list longer than the
	# table holds counts connections that have lost an entry to the LRU.
	[ "${n_flood:-0}" -le 1024 ] 2>/dev/null ||
		err "flood connections listed: $n_flood, more than the unanswered table holds (1024 connections)"
	assert_eq "flood connections assured" "$(ct_eval "len([c for c in d if flood(c) and c['assured']])")" 0
	# Answered, a SYN-ACK may come after the flood evicted its connection:
	# then it matches nothing (pass_no_match), as it should.
	if [ "$ANSWERED" = 1 ]; then
		assert_eq "flood connections not in syn_recv (answered)" \
			"$(ct_eval "len([c for c in d if flood(c) and c['state'] != 'syn_recv'])")" 0
	else
		assert_eq "flood connections not in syn_sent (unanswered)" \
			"$(ct_eval "len([c for c in d if flood(c) and c['state'] != 'syn_sent'])")" 0
		assert_eq "reason pass_no_match" "$(reason pass_no_match)" 0
	fi
	assert_eq "reason pass_no_neigh" "$(reason pass_no_neigh)" 0
}

case_syn_flood() { ANSWERED=0 flood; }
case_syn_flood_answered() { ANSWERED=1 flood; }

# 6. flush --name ends one rule's connections, flush all of them; per-rule
# flows in stats follow. A flushed TCP connection is picked up again by its
# next segment.
case_flush() {
	local port out
	start_fwd && web_rule && dns_rule && echo_server 0.0.0.0 && udp_echo_server || return 1
	sess_open a "$EXT" "$WEB_PORT" || { err "session a did not connect"; return 1; }
	port=${SESS_PORT[a]}
	sess_ok a "before-flush" "$SERVER_ADDR"
	check "a datagram through dns" wait_until 5 udp_big 100 || return 1
	assert_eq "web flows in stats" "$(rule_stat web flows)" 1
	assert_ge "dns flows in stats" "$(rule_stat dns flows)" 1

	xdpfwd conntrack flush --name nosuchrule >/dev/null 2>&1
	assert_eq "flush --name of no rule: exit" "$?" 2
	assert_eq "flush --name of no rule: web flows kept" "$(rule_stat web flows)" 1

	out=$(xdpfwd -j conntrack flush --name dns)
	assert_ge "connections flush --name dns says it removed" "$(jget "d['removed']" <<<"$out")" 1
	assert_eq "dns flows after flush --name dns" "$(rule_stat dns flows)" 0
	assert_eq "web flows after flush --name dns" "$(rule_stat web flows)" 1
	assert_eq "connections listed after flush --name dns" "$(ct_eval '[c["rule"] for c in d]')" "['web']"

	out=$(xdpfwd -j conntrack flush)
	assert_eq "connections flush says it removed" "$(jget "d['removed']" <<<"$out")" 1
	assert_eq "connections listed after flush" "$(ct_eval 'len(d)')" 0
	assert_eq "web flows after flush" "$(rule_stat web flows)" 0
	assert_eq "connections in status after flush" "$(status_flows)" 0

	sess_ok a "after-flush" "$SERVER_ADDR"
	assert_eq "the session is picked up again" "$(ct_conn "$port" 'c["state"]')" established
	assert_eq "web flows after the pickup" "$(rule_stat web flows)" 1
}

# ---------------------------------------------------------------- main

# Cases whose packets' checksums matter run with TX checksum offload off too.
CASES_ON="idle_survives idle_expires pmtu_tcp pmtu_udp frag_udp del_open replace syn_flood syn_flood_answered flush"
CASES_OFF="pmtu_tcp pmtu_udp frag_udp replace syn_flood_answered"
FILTER=${1:-}
t_all=$SECONDS
for TX_CSUM in on off; do
	export TX_CSUM
	cases=$CASES_ON
	[ "$TX_CSUM" = off ] && cases=$CASES_OFF
	for c in $cases; do
		name="ct_${c}[tx=$TX_CSUM]"
		[ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]] && continue
		run_case "$name" "case_$c"
		sess_close_all
	done
done
log "(conntrack e2e: $((SECONDS - t_all))s)"
finish e2e-conntrack
