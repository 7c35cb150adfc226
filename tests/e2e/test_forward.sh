#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: real TCP (curl <-> python http.server) and UDP traffic from a
# client namespace through xdpfwd in a router namespace to a server namespace.
# Every case runs on a fresh topology; the whole set runs twice, with the
# client's and server's veth TX checksum offload on (default) and off.
#
#   tests/e2e/test_forward.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e: 0 passed, 1 failed"
	exit 1
fi

WEB_PORT=8080
DNS_PORT=5353
WEB_URL="http://$ROUTER_WAN_ADDR:$WEB_PORT"

# ---------------------------------------------------------------- steps

# rules: the two forwards every traffic case uses.
add_rules() {
	check "add tcp rule" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add udp rule" xdpfwd add udp "$DNS_PORT" "$SERVER_ADDR:53" --name dns
}

servers() {
	make_blob || { err "could not make the test file"; return 1; }
	check "http server up" start_http &&
	check "udp server up" udp_server "$NS_S" "$SERVER_ADDR" 53
}

# http_blob: the client fetches the random file through the forward, intact.
http_blob() {
	local out="$WORK_DIR/got.$CASE_NAME.bin" sha
	rm -f "$out"
	check "curl $WEB_URL/blob.bin from the client" fetch "$WEB_URL/blob.bin" "$out" || return 1
	sha=$(sha256sum < "$out" | cut -d' ' -f1)
	assert_eq "sha256 of the fetched file" "$sha" "$BLOB_SHA"
	rm -f "$out"
}

# udp_exchange: a request through the forward gets its answer, and the answer
# comes from the address and port the client asked (the reply is translated).
udp_exchange() {
	local got
	got=$(udp_query "$NS_C" "$ROUTER_WAN_ADDR" "$DNS_PORT" "q-$CASE_NAME" 2>&1)
	assert_eq "UDP answer through the forward" "$got" \
		"$ROUTER_WAN_ADDR:$DNS_PORT answer:q-$CASE_NAME"
}

# traffic_counters: per-rule counters account for the HTTP and UDP traffic.
traffic_counters() {
	assert_gt "web orig_packets" "$(rule_stat web orig_packets)" 0
	assert_gt "web orig_bytes" "$(rule_stat web orig_bytes)" 0
	assert_gt "web reply_packets" "$(rule_stat web reply_packets)" 0
	assert_ge "web reply_bytes (file is $BLOB_SIZE bytes)" "$(rule_stat web reply_bytes)" "$BLOB_SIZE"
	assert_ge "dns orig_packets" "$(rule_stat dns orig_packets)" 1
	assert_ge "dns reply_packets" "$(rule_stat dns reply_packets)" 1
	assert_ge "flows" "$(xdpfwd -j status | jget "d['flows']")" 2
}

# send_seen NS PROTO ADDR PORT MSG FILE: send MSG, true once FILE shows it.
send_seen() {
	nsx "$1" timeout 5 "$PY" "$TESTS_DIR/e2e/peer.py" send-"$2" "$3" "$4" "$5" >/dev/null 2>&1
	sleep 0.2
	grep -q -- "$5" "$6" 2>/dev/null
}

# ---------------------------------------------------------------- cases

# a. The router's kernel may not forward (nftables drops everything in its
# forward hook), so only XDP can carry the traffic.
case_xdp_forward() {
	router_forwarding 1
	check "nftables forward drop in the router" kernel_forward_drop || return 1
	check "GRO on at client and server" gro on || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	add_rules && servers || return 1
	http_blob
	udp_exchange
	traffic_counters
	assert_gt "reason fwd_redirect" "$(reason fwd_redirect)" 0
	assert_eq "wan xdp_egress" "$(iface_field wan xdp_egress)" True
	assert_eq "lan xdp_egress" "$(iface_field lan xdp_egress)" True
	assert_eq "rules in status" "$(xdpfwd -j status | jget "d['rules']")" 2
}

# a''. As the brief has it: net.ipv4.ip_forward=0 in the router.
case_xdp_forward_ip_forward_off() {
	router_forwarding 0
	check "GRO on at client and server" gro on || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	add_rules && servers || return 1
	http_blob
	udp_exchange
	traffic_counters
	assert_gt "reason fwd_redirect" "$(reason fwd_redirect)" 0
}

# a'. Generic (skb) mode. The kernel may forward here: a GSO packet is
# larger than the MTU, so XDP translates it and leaves it to the kernel.
case_xdp_forward_generic() {
	router_forwarding 1
	check "GRO on at client and server" gro on || return 1
	check "load wan lan --mode generic" xdpfwd load wan lan --mode generic || return 1
	assert_eq "wan mode" "$(iface_field wan mode)" generic
	add_rules && servers || return 1
	http_blob
	udp_exchange
	traffic_counters
	assert_gt "reason fwd_redirect" "$(reason fwd_redirect)" 0
}

# b. Kernel forwards, only the WAN side is loaded: TC egress translates replies.
case_wan_only_tc() {
	router_forwarding 1
	check "GRO on at client and server" gro on || return 1
	check "load wan" xdpfwd load wan || return 1
	add_rules && servers || return 1
	http_blob
	udp_exchange
	traffic_counters
	assert_gt "reason tc_translated" "$(reason tc_translated)" 0
	assert_eq "lan not loaded" \
		"$(xdpfwd -j status | jget "[i['ifname'] for i in d['interfaces']]")" '["wan"]'
}

# c. The backend's host talking to the client on the rules' ports is not
# translated: it arrives from the server's own address.
case_no_hijack() {
	local f_tcp="$WORK_DIR/seen-tcp.$CASE_NAME" f_udp="$WORK_DIR/seen-udp.$CASE_NAME"
	local f_srv="$WORK_DIR/seen-srv.$CASE_NAME"
	router_forwarding 1
	check "GRO on at client and server" gro on || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	add_rules || return 1
	listener "$NS_C" tcp "$CLIENT_ADDR" "$WEB_PORT" "$f_tcp"
	listener "$NS_C" udp "$CLIENT_ADDR" "$DNS_PORT" "$f_udp"
	listener "$NS_S" tcp "$SERVER_ADDR" "$WEB_PORT" "$f_srv"
	check "client tcp listener" wait_listen "$NS_C" tcp "$WEB_PORT" &&
	check "client udp listener" wait_listen "$NS_C" udp "$DNS_PORT" &&
	check "server tcp listener" wait_listen "$NS_S" tcp "$WEB_PORT" || return 1

	# server -> client:8080 (TCP) and client:5353 (UDP)
	check "server connects to $CLIENT_ADDR:$WEB_PORT" \
		nsx "$NS_S" timeout 10 "$PY" "$TESTS_DIR/e2e/peer.py" send-tcp "$CLIENT_ADDR" "$WEB_PORT" srv-tcp
	wait_until 5 send_seen "$NS_S" udp "$CLIENT_ADDR" "$DNS_PORT" srv-udp "$f_udp"
	wait_until 5 grep -q srv-tcp "$f_tcp"
	assert_eq "TCP from the server, as the client sees it" "$(cat "$f_tcp" 2>/dev/null)" "$SERVER_ADDR srv-tcp"
	assert_eq "UDP from the server, as the client sees it" "$(sort -u "$f_udp" 2>/dev/null)" "$SERVER_ADDR srv-udp"

	# client -> server:8080 directly (not the router's address): untouched too
	check "client connects to $SERVER_ADDR:$WEB_PORT" \
		nsx "$NS_C" timeout 10 "$PY" "$TESTS_DIR/e2e/peer.py" send-tcp "$SERVER_ADDR" "$WEB_PORT" cli-tcp
	wait_until 5 grep -q cli-tcp "$f_srv"
	assert_eq "TCP from the client, as the server sees it" "$(cat "$f_srv" 2>/dev/null)" "$CLIENT_ADDR cli-tcp"

	assert_eq "web orig_packets" "$(rule_stat web orig_packets)" 0
	assert_eq "dns orig_packets" "$(rule_stat dns orig_packets)" 0
	assert_eq "reason fwd_redirect" "$(reason fwd_redirect)" 0
	assert_eq "flows" "$(xdpfwd -j status | jget "d['flows']")" 0
}

# d. A deleted rule forwards no new connection; unload --all leaves nothing.
case_del_unload() {
	local ifc out
	router_forwarding 1
	check "GRO on at client and server" gro on || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	add_rules && servers || return 1
	check "fetch before del" fetch "$WEB_URL/index.html" /dev/null || return 1

	check "del tcp $WEB_PORT" xdpfwd del tcp "$WEB_PORT"
	assert_eq "rules after del" "$(xdpfwd -j list | jget "[r['name'] for r in d]")" '["dns"]'
	check_fails "a new connection to the router's :$WEB_PORT after del" \
		nsx "$NS_C" timeout 10 curl -sS --connect-timeout 3 --max-time 5 -o /dev/null "$WEB_URL/index.html"
	udp_exchange	# the other rule still works

	check "del --name dns" xdpfwd del --name dns
	assert_eq "rules after del --name" "$(xdpfwd -j list | jget 'len(d)')" 0
	check_fails "UDP after del --name dns" udp_query "$NS_C" "$ROUTER_WAN_ADDR" "$DNS_PORT" gone

	# Before unload our programs are visible, so the checks below mean something.
	for ifc in wan lan; do
		ip -n "$NS_R" -d link show dev "$ifc" | grep -q 'xdp' ||
			err "no XDP program on $ifc while loaded"
		[ -n "$(tc -n "$NS_R" filter show dev "$ifc" egress 2>/dev/null)" ] ||
			err "no TC egress filter on $ifc while loaded"
	done
	check "unload --all" xdpfwd unload --all
	for ifc in wan lan; do
		out=$(ip -n "$NS_R" -d link show dev "$ifc")
		if grep -q xdp <<<"$out"; then
			err "XDP still attached to $ifc after unload --all: $(grep xdp <<<"$out" | head -1)"
		fi
		out=$(tc -n "$NS_R" filter show dev "$ifc" egress 2>/dev/null)
		assert_eq "tc egress filters on $ifc after unload --all" "$out" ""
	done
	[ -e "$PIN_DIR" ] && err "pin dir $PIN_DIR still exists after unload --all"
	out=$(xdpfwd -j status 2>/dev/null | jget "len(d['interfaces'])" 2>/dev/null)
	[ -z "$out" ] || assert_eq "interfaces in status after unload" "$out" 0
	[ -e "$PIN_DIR" ] && err "status recreated $PIN_DIR"
	return 0
}

# e. The server's veth end cannot take XDP frames (GRO off, no XDP): the
# kernel forwards what XDP translated, and status says so.
case_fallback_no_gro() {
	router_forwarding 1
	check "GRO on at client" set_offload "$NS_C" eth0 gro on &&
	check "GRO off at server" set_offload "$NS_S" eth0 gro off || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	assert_eq "lan xdp_egress" "$(iface_field lan xdp_egress)" False
	assert_eq "wan xdp_egress" "$(iface_field wan xdp_egress)" True
	add_rules && servers || return 1
	http_blob
	udp_exchange
	traffic_counters
	assert_gt "reason pass_slow_egress" "$(reason pass_slow_egress)" 0
}

# e''. The same with the client's veth end unable to take XDP frames: the
# replies take the kernel path.
case_fallback_no_gro_client() {
	router_forwarding 1
	check "GRO off at client" set_offload "$NS_C" eth0 gro off &&
	check "GRO on at server" set_offload "$NS_S" eth0 gro on || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	assert_eq "wan xdp_egress" "$(iface_field wan xdp_egress)" False
	assert_eq "lan xdp_egress" "$(iface_field lan xdp_egress)" True
	add_rules && servers || return 1
	http_blob
	udp_exchange
	traffic_counters
}

# e'. GRO switched off on the server's end after load: status notices, and
# running load again (idempotent) puts the forward back on the kernel path.
case_gro_off_after_load() {
	router_forwarding 1
	check "GRO on at client and server" gro on || return 1
	check "load wan lan" xdpfwd load wan lan || return 1
	add_rules && servers || return 1
	udp_exchange
	check "GRO off at server" set_offload "$NS_S" eth0 gro off || return 1
	assert_eq "lan xdp_egress after GRO off" "$(iface_field lan xdp_egress)" False
	check "load wan lan again" xdpfwd load wan lan || return 1
	http_blob
	udp_exchange
}

# Loading again is harmless and quiet: same programs, rules kept, no library
# noise on stderr.
case_load_idempotent() {
	local ids0 ids1
	check "load wan lan" xdpfwd load wan lan || return 1
	add_rules || return 1
	ids0=$(xdpfwd -j status | jget "[(i['ifname'], i['prog_id']) for i in d['interfaces']]")
	xdpfwd load wan lan >/dev/null 2>"$WORK_DIR/load2.err"
	assert_eq "second load exit" "$?" 0
	if grep -v '^xdpfwd: warning: ' "$WORK_DIR/load2.err" | grep -q .; then
		err "second load printed: $(head -3 "$WORK_DIR/load2.err" | tr '\n' '|')"
	fi
	ids1=$(xdpfwd -j status | jget "[(i['ifname'], i['prog_id']) for i in d['interfaces']]")
	assert_eq "interfaces and programs after second load" "$ids1" "$ids0"
	assert_eq "rules after second load" "$(xdpfwd -j list | jget 'len(d)')" 2
}

# f. Bad input: right exit code, one error line, nothing changed.
BAD_CASES=(
	# exit	args
	"2|add tcp 0 $SERVER_ADDR:80"
	"2|add tcp 65536 $SERVER_ADDR:80"
	"2|add tcp 80x $SERVER_ADDR:80"
	"2|add tcp 8081 $SERVER_ADDR:0"
	"2|add tcp 8081 $SERVER_ADDR:70000"
	"2|add tcp 8081 $SERVER_ADDR:"
	"2|add tcp 8090-8081 $SERVER_ADDR:80"
	"2|add tcp 8081-8082 $SERVER_ADDR:80-81"
	"2|add tcp 8081-8099 $SERVER_ADDR:65530"
	"2|add tcp no-such-service $SERVER_ADDR:80"
	"2|add tcp $((WEB_PORT - 5))-$((WEB_PORT + 5)) $SERVER_ADDR"
	"2|add tcp 8081 $SERVER_ADDR:80 --allow 203.0.113.1/24"
	"2|add tcp 8081 $SERVER_ADDR:80 --allow 203.0.113.0/33"
	"2|add tcp 8081 $SERVER_ADDR:80 --allow"
	"2|add tcp 8081 $SERVER_ADDR:80 --snat banana"
	"2|add tcp 8081 $SERVER_ADDR:80 --snat auto --snat auto"
	"2|add tcp 8081 $SERVER_ADDR:80 --frob 1"
	"2|add tcp 8081 198.51.100.256:80"
	"2|add tcp 8081 198.51.100:80"
	"2|add tcp 8081 server.example:80"
	"2|add tcp 203.0.113.300:8081 $SERVER_ADDR:80"
	"2|add sctp 8081 $SERVER_ADDR:80"
	"2|add icmp 8081 $SERVER_ADDR:80"
	"2|add tcp 8081 $SERVER_ADDR:80 --name this-name-is-far-too-long-for-a-rule-0123456789"
	"2|add tcp 8081"
	"2|del tcp"
	"2|del sctp $WEB_PORT"
	"2|del tcp 0"
	"2|frobnicate"
	"2|lo wan"
	"2|unl wan"
	"2|load"
	"2|load wan --mode turbo"
	"2|load nosuchif0"
	"2|unload nosuchif0"
	"2|add tcp $WEB_PORT $SERVER_ADDR:80"
	"2|add tcp $WEB_PORT 198.51.100.9:81"
	"2|del tcp 9999"
	"2|del udp $WEB_PORT"
	"2|del --name nosuchrule"
)

case_bad_input() {
	local item want args rc list0 list1 status0 status1 n out
	check "load wan" xdpfwd load wan || return 1
	check "add tcp rule" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web || return 1
	list0=$(xdpfwd -j list) || { err "list failed"; return 1; }
	status0=$(xdpfwd -j status | jget "[d['interfaces'], d['rules']]")
	for item in "${BAD_CASES[@]}"; do
		want=${item%%|*} args=${item#*|}
		# shellcheck disable=SC2086
		xdpfwd $args >"$WORK_DIR/bad.out" 2>"$WORK_DIR/bad.err" </dev/null
		rc=$?
		[ "$rc" = "$want" ] || err "'xdpfwd $args': exit $rc, want $want"
		n=$(wc -l < "$WORK_DIR/bad.err")
		[ "$n" = 1 ] || err "'xdpfwd $args': $n lines on stderr, want 1: $(head -c 300 "$WORK_DIR/bad.err")"
		grep -q '^xdpfwd: error: ' "$WORK_DIR/bad.err" ||
			err "'xdpfwd $args': stderr does not start with 'xdpfwd: error: ': $(head -c 200 "$WORK_DIR/bad.err")"
		list1=$(xdpfwd -j list)
		[ "$list1" = "$list0" ] || err "'xdpfwd $args' changed the rules: $list1"
	done
	# JSON mode: the error is also on stdout as {"error": ...}
	out=$(xdpfwd -j add tcp 0 "$SERVER_ADDR:80" 2>/dev/null)
	rc=$?
	assert_eq "-j bad add exit" "$rc" 2
	assert_eq "-j bad add stdout has error" "$(jget "sorted(d.keys()) == ['error'] and bool(d['error'])" <<<"$out" 2>&1)" True
	out=$(xdpfwd -j del tcp 9999 2>/dev/null)
	rc=$?
	assert_eq "-j del missing exit" "$rc" 2
	assert_eq "-j del missing stdout has error" "$(jget "'error' in d" <<<"$out" 2>&1)" True
	status1=$(xdpfwd -j status | jget "[d['interfaces'], d['rules']]")
	assert_eq "status after bad input" "$status1" "$status0"
	assert_eq "list after bad input" "$(xdpfwd -j list)" "$list0"
}

# ---------------------------------------------------------------- main

CASES="xdp_forward xdp_forward_ip_forward_off xdp_forward_generic wan_only_tc no_hijack del_unload fallback_no_gro fallback_no_gro_client gro_off_after_load load_idempotent bad_input"
FILTER=${1:-}
for TX_CSUM in on off; do
	export TX_CSUM
	for c in $CASES; do
		name="${c}[tx=$TX_CSUM]"
		[ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]] && continue
		run_case "$name" "case_$c"
	done
done
finish e2e
