#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: `xdpfwd check` against real layouts in the test topology (see
# tests/lib.sh): a local socket on a forwarded port, backends with no route or
# that do not answer ARP, a rule that has carried real traffic, --name, generic
# mode, and the kernel-path layouts that need net.ipv4.ip_forward.
#
#   tests/e2e/test_check.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-check: 0 passed, 1 failed"
	exit 1
fi

WEB_PORT=8080
WEB_URL="http://$ROUTER_WAN_ADDR:$WEB_PORT"
NOROUTE_ADDR=192.0.2.99		# the router has no route there, and no default
GHOST_ADDR=198.51.100.77	# on the LAN, but nobody has it

# ---------------------------------------------------------------- steps

# findings RULE WHAT [FIELD]: FIELD (default severity) of each finding of RULE
# (None: the host's) about WHAT in `xdpfwd -j check`, as a JSON list.
findings() {
	local rule=$1 what=$2 field=${3:-severity}
	[ "$rule" = None ] || rule="'$rule'"
	xdpfwd -j check 2>/dev/null |
		jget "[f['$field'] for f in d['findings'] if f['rule'] == $rule and f['what'] == '$what']"
}

# check_rc ARGS...: the exit status of `xdpfwd check ARGS`, output to files.
check_rc() {
	xdpfwd check "$@" >"$WORK_DIR/check.out" 2>"$WORK_DIR/check.err"
	echo $?
}

# show_check: the last check's output, for a failing assert.
show_check() {
	sed 's/^/        /' "$WORK_DIR/check.out" "$WORK_DIR/check.err" | head -30
}

# neighbour_is ADDR STATE...: the router's entry for ADDR on lan is in one of STATEs.
neighbour_is() {
	local addr=$1 state s; shift
	state=$(ip -n "$NS_R" neigh show "$addr" dev lan | awk '{print $NF}')
	for s in "$@"; do
		[ "$state" = "$s" ] && return 0
	done
	return 1
}

# server_resolved: the router has the server's MAC, so its rules check clean.
server_resolved() {
	nsx "$NS_R" timeout 5 "$PY" "$TESTS_DIR/e2e/peer.py" send-udp "$SERVER_ADDR" 9 arp >/dev/null 2>&1
	wait_until 5 neighbour_is "$SERVER_ADDR" REACHABLE STALE DELAY PROBE PERMANENT
}

# listen6 ADDR PORT: a TCP listener on an IPv6 address in the router, as a
# dual-stack service (IPV6_V6ONLY off) would have it.
listen6() {
	bg "$NS_R" "$PY" -c 'import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
time.sleep(120)' "$1" "$2" >/dev/null 2>&1
}

# load_gro ARGS...: GRO on at client and server (XDP can send to both), then load ARGS.
load_gro() {
	check "GRO on at client and server" gro on &&
	check "load $*" xdpfwd load "$@"
}

# ---------------------------------------------------------------- cases

# Not loaded at all: one error finding, exit 1.
case_not_loaded() {
	local rc
	rc=$(check_rc)
	assert_eq "exit status of check before load" "$rc" 1 || show_check
	assert_eq "findings before load" \
		"$(xdpfwd -j check | jget "[(f['severity'], f['what']) for f in d['findings']]")" \
		'[["error", "loaded"]]'
	assert_eq "errors before load" "$(xdpfwd -j check | jget "d['errors']")" 1
	[ -e "$PIN_DIR" ] && err "check created $PIN_DIR"
	return 0
}

# 1. A local socket on a forwarded port is reported, with its process; one on
# a loopback address, or on another port, is not.
case_shadowed() {
	local pid_tcp line
	load_gro wan lan || return 1
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add other" xdpfwd add tcp 8090 "$SERVER_ADDR:80" --name other &&
	check "add dns" xdpfwd add udp 5353 "$SERVER_ADDR:53" --name dns &&
	check "add range" xdpfwd add tcp 9100-9109 "$SERVER_ADDR:80" --name range || return 1
	listener "$NS_R" tcp 0.0.0.0 "$WEB_PORT" /dev/null
	pid_tcp=${BG_PIDS[-1]}
	listener "$NS_R" udp "$ROUTER_WAN_ADDR" 5353 /dev/null	# a local address, not 0.0.0.0
	listener "$NS_R" tcp 127.0.0.1 8090 /dev/null		# nothing from outside reaches it
	listener "$NS_R" tcp 0.0.0.0 9107 /dev/null		# inside the range
	check "tcp listener on $WEB_PORT" wait_listen "$NS_R" tcp "$WEB_PORT" &&
	check "udp socket on 5353" wait_listen "$NS_R" udp 5353 &&
	check "tcp listener on 127.0.0.1:8090" wait_listen "$NS_R" tcp 8090 &&
	check "tcp listener on 9107" wait_listen "$NS_R" tcp 9107 || return 1

	check_rc >/dev/null
	line=$(grep '^web: warn: port 8080/tcp is also a listening socket here' "$WORK_DIR/check.out")
	[ -n "$line" ] || { err "no shadowed line for web in the text output:"; show_check; }
	case "$line" in
	*"(pid $pid_tcp python3)"*) ;;
	*) err "the shadowed line does not name the listener (pid $pid_tcp python3): $line" ;;
	esac
	assert_eq "web shadowed (JSON)" "$(findings web shadowed)" '["warn"]'
	assert_eq "dns shadowed by a socket on $ROUTER_WAN_ADDR (JSON)" "$(findings dns shadowed)" '["warn"]'
	assert_eq "range shadowed at 9107 (JSON)" \
		"$(findings range shadowed message | jget "len(d) == 1 and 'port 9107/tcp' in d[0]")" True
	assert_eq "other (listener on 127.0.0.1 only) not shadowed" "$(findings other shadowed)" '[]'

	# IPv6: a socket on [::] takes IPv4 too; one on ::1 takes nothing from outside.
	if [ ! -e /proc/net/tcp6 ]; then
		info "no IPv6 on this host: its sockets are not tested"
		return 0
	fi
	check "add dual" xdpfwd add tcp 8070 "$SERVER_ADDR:80" --name dual &&
	check "add v6lo" xdpfwd add tcp 8071 "$SERVER_ADDR:80" --name v6lo || return 1
	listen6 :: 8070
	listen6 ::1 8071
	check "tcp listener on [::]:8070" wait_listen "$NS_R" tcp 8070 &&
	check "tcp listener on [::1]:8071" wait_listen "$NS_R" tcp 8071 || return 1
	assert_eq "dual (listener on [::]) shadowed" \
		"$(findings dual shadowed message | jget "len(d) == 1 and 'on [::]' in d[0]")" True
	assert_eq "v6lo (listener on ::1 only) not shadowed" "$(findings v6lo shadowed)" '[]'
}

# 2. Backends that cannot be reached: no route, and a LAN address nobody
# answers ARP for. Each is an error of its rule, and makes check exit 1; a
# healthy rule beside them checks clean.
case_unreachable() {
	local rc
	load_gro wan lan || return 1
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web || return 1
	check "server resolved" server_resolved || return 1
	rc=$(check_rc)
	assert_eq "check exit with a healthy rule only" "$rc" 0 || show_check

	xdpfwd add udp 5353 "$NOROUTE_ADDR:53" --name noroute >/dev/null 2>&1 ||
		{ err "add noroute failed"; return 1; }
	rc=$(check_rc)
	assert_eq "check exit with a backend without route" "$rc" 1 || show_check
	grep -q "^noroute: error: backend $NOROUTE_ADDR has no route from this host" "$WORK_DIR/check.out" ||
		{ err "no 'no route' error line for noroute:"; show_check; }
	assert_eq "noroute route finding" "$(findings noroute route)" '["error"]'
	check "del noroute" xdpfwd del --name noroute || return 1
	assert_eq "check exit once that rule is gone" "$(check_rc)" 0 || show_check

	check "add ghost" xdpfwd add tcp 9000 "$GHOST_ADDR:80" --name ghost || return 1
	# Ask for it from the router; nobody answers.
	nsx "$NS_R" timeout 5 "$PY" "$TESTS_DIR/e2e/peer.py" send-udp "$GHOST_ADDR" 9 arp >/dev/null 2>&1
	check "ghost unresolved (FAILED or INCOMPLETE)" wait_until 10 neighbour_is "$GHOST_ADDR" FAILED INCOMPLETE
	rc=$(check_rc)
	assert_eq "check exit with a backend that does not answer ARP" "$rc" 1 || show_check
	assert_eq "ghost route finding (it has one)" "$(findings ghost route)" '["info"]'
	assert_eq "ghost neighbour finding" "$(findings ghost neighbour)" '["error"]'
	assert_eq "web neighbour finding" "$(findings web neighbour)" '["ok"]'
	assert_eq "errors in JSON" "$(xdpfwd -j check | jget "d['errors']")" 1
	assert_eq "check --name web exit (only ghost is broken)" "$(check_rc --name web)" 0 || show_check
	assert_eq "check --name ghost exit" "$(check_rc --name ghost)" 1 || show_check
}

# 3. A rule that has carried a real connection checks clean and says so; one
# whose backend never answers is warned about.
case_traffic() {
	local rc f_silent="$WORK_DIR/silent.$CASE_NAME"
	load_gro wan lan || return 1
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add silent" xdpfwd add udp 5354 "$SERVER_ADDR:5354" --name silent || return 1
	check "http server up" start_http || return 1
	listener "$NS_S" udp "$SERVER_ADDR" 5354 "$f_silent"	# records, never answers
	check "silent listener" wait_listen "$NS_S" udp 5354 || return 1
	assert_eq "web traffic before any" "$(findings web traffic)" '["info"]'

	check "curl $WEB_URL/index.html through the forward" fetch "$WEB_URL/index.html" "$WORK_DIR/index.$CASE_NAME" || return 1
	check "a datagram to the silent backend arrives" \
		wait_until 5 send_to_silent "$f_silent"
	rc=$(check_rc)
	assert_eq "check exit after traffic" "$rc" 0 || show_check
	assert_eq "web traffic after a connection" "$(findings web traffic)" '["ok"]'
	grep -q '^web: ok: [0-9]* packets forwarded, [1-9][0-9]* answered' "$WORK_DIR/check.out" ||
		{ err "no traffic line for web:"; show_check; }
	assert_eq "silent traffic" "$(findings silent traffic)" '["warn"]'
	assert_eq "silent warning names its port" \
		"$(findings silent traffic message | jget "'listens on 5354/udp' in d[0]")" True
	assert_eq "mode findings in native mode" "$(findings None mode)" '["ok", "ok"]'
	assert_eq "netfilter finding" "$(findings None netfilter)" '["info"]'
}

# send_to_silent FILE: one datagram from the client through the forward; true
# once FILE shows it.
send_to_silent() {
	nsx "$NS_C" timeout 5 "$PY" "$TESTS_DIR/e2e/peer.py" send-udp "$ROUTER_WAN_ADDR" 5354 hush >/dev/null 2>&1
	sleep 0.2
	grep -q hush "$1" 2>/dev/null
}

# 4. --name: an unknown rule is bad usage; a known one limits the rules shown.
case_name() {
	local rc rules
	load_gro wan lan || return 1
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add dns" xdpfwd add udp 5353 "$SERVER_ADDR:53" --name dns || return 1
	rc=$(check_rc --name nosuch)
	assert_eq "check --name nosuch exit" "$rc" 2
	assert_eq "check --name nosuch stderr" "$(cat "$WORK_DIR/check.err")" \
		"xdpfwd: error: no rule named 'nosuch' (see 'xdpfwd list')"
	assert_eq "check --name nosuch -j stdout" \
		"$(xdpfwd -j check --name nosuch 2>/dev/null | jget "list(d)")" '["error"]'
	assert_eq "check with a stray argument exit" "$(check_rc --bogus)" 2
	rules=$(xdpfwd -j check | jget "sorted({f['rule'] for f in d['findings'] if f['rule']})")
	assert_eq "rules in check" "$rules" '["dns", "web"]'
	rules=$(xdpfwd -j check --name web | jget "sorted({f['rule'] for f in d['findings'] if f['rule']})")
	assert_eq "rules in check --name web" "$rules" '["web"]'
	check_rc --name web >/dev/null
	grep -q '^dns: ' "$WORK_DIR/check.out" && err "check --name web printed dns findings"
	grep -q '^web: ' "$WORK_DIR/check.out" || err "check --name web printed no web findings"
	return 0
}

# 5. Generic mode is warned about, per interface.
case_generic() {
	load_gro wan lan --mode generic || return 1
	assert_eq "mode findings" "$(findings None mode)" '["warn", "warn"]'
	xdpfwd check >"$WORK_DIR/check.out" 2>&1
	grep -q '^warn: wan runs XDP in generic mode' "$WORK_DIR/check.out" ||
		{ err "no generic-mode line for wan:"; show_check; }
}

# 6. The kernel path. lan not loaded and unable to take XDP frames (GRO off
# on the server's end): a rule without SNAT needs ip_forward=1 both ways; a
# SNAT rule needs lan loaded, whatever ip_forward says.
case_kernel_path() {
	check "GRO on at client" set_offload "$NS_C" eth0 gro on &&
	check "GRO off at server" set_offload "$NS_S" eth0 gro off || return 1
	check "load wan" xdpfwd load wan || return 1
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add nat" xdpfwd add tcp 8081 "$SERVER_ADDR:80" --name nat --snat auto || return 1
	check "server resolved" server_resolved || return 1

	router_forwarding 0
	assert_eq "web iface, ip_forward 0" "$(findings web iface)" '["error"]'
	assert_eq "web forwarding, ip_forward 0" "$(findings web forwarding)" '["error"]'
	assert_eq "nat iface, lan not loaded" "$(findings nat iface)" '["error"]'
	assert_eq "nat forwarding (TC sends it)" "$(findings nat forwarding)" '["info"]'
	assert_eq "check exit, ip_forward 0" "$(check_rc)" 1 || show_check
	grep -q "^web: error: packets to lan take the kernel path but net.ipv4.ip_forward is 0: sysctl -w net.ipv4.ip_forward=1" \
		"$WORK_DIR/check.out" || { err "no ip_forward advice for web:"; show_check; }

	router_forwarding 1
	assert_eq "web iface, ip_forward 1" "$(findings web iface)" '["info"]'
	assert_eq "web forwarding, ip_forward 1" "$(findings web forwarding)" '["info"]'
	assert_eq "check --name web exit, ip_forward 1" "$(check_rc --name web)" 0 || show_check
	assert_eq "check --name nat exit, lan not loaded" "$(check_rc --name nat)" 1 || show_check

	check "load lan" xdpfwd load lan || return 1
	assert_eq "nat iface, lan loaded" "$(findings nat iface)" '["ok"]'
	assert_eq "lan egress finding" "$(findings None egress)" '["warn"]'
	assert_eq "check exit, lan loaded" "$(check_rc)" 0 || show_check
}

# ---------------------------------------------------------------- main

CASES="not_loaded shadowed unreachable traffic name generic kernel_path"
FILTER=${1:-}
for c in $CASES; do
	[ -n "$FILTER" ] && [[ "$c" != *"$FILTER"* ]] && continue
	run_case "$c" "case_$c"
done
finish e2e-check
