#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: `xdpfwd monitor` (issue 6). Real TCP connections from a client
# namespace through xdpfwd in the router namespace; the monitor, run in the
# router namespace, must tell each connection's start and end, and each
# packet an allowlist refuses, with the right tuple, rule and reason.
#
#   tests/e2e/test_monitor.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-monitor: 0 passed, 1 failed"
	exit 1
fi

WEB_PORT=8080		# tcp "web"  -> http server :80, any source
SHUT_PORT=8081		# tcp "shut" -> :80, admits CLIENT_ADDR only
CLIENT2_ADDR=203.0.113.3	# a second client address, which shut refuses
WEB_URL="http://$ROUTER_WAN_ADDR:$WEB_PORT"

# ---------------------------------------------------------------- steps

# start_fwd: xdpfwd on wan and lan with the kernel's forwarding off, the two
# rules, and the http server.
start_fwd() {
	check "GRO on at client and server" gro on &&
	check "second client address" ip -n "$NS_C" addr add "$CLIENT2_ADDR/24" dev eth0 &&
	check "load wan lan" xdpfwd load wan lan &&
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add shut" xdpfwd add tcp "$SHUT_PORT" "$SERVER_ADDR:80" --name shut \
		--allow "$CLIENT_ADDR/32" &&
	check "http server up" start_http
}

# get FROM PORT URL: one HTTP request from the client's address FROM and
# source port PORT, so that the test knows the connection's tuple.
get() {
	nsx "$NS_C" timeout 20 curl -sS --connect-timeout "${CONNECT_TIMEOUT:-5}" --max-time 15 \
		--interface "$1" --local-port "$2" -o /dev/null "$3"
}

# monitor_start OUT ARGS...: `xdpfwd ARGS` (a monitor) in the router
# namespace in the background, stdout to OUT, stderr to OUT.err; sets MON_PID
# once the monitor has opened the events ring, from when on it reports.
monitor_start() {
	local out=$1; shift
	nsenter --net="/run/netns/$NS_R" "$XDPFWD_BIN" --pin-dir "$PIN_DIR" "$@" \
		>"$out" 2>"$out.err" &
	MON_PID=$!
	BG_PIDS+=("$MON_PID")
	wait_until 5 monitor_reading "$MON_PID" || { err "the monitor did not start: $(cat "$out.err")"; return 1; }
}

# monitor_reading PID: the process holds a BPF map, so it has passed the
# moment from which it reports events (it notes that before opening any);
# or it has ended already, and what it wrote tells the rest.
monitor_reading() {
	local fd
	kill -0 "$1" 2>/dev/null || return 0
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = anon_inode:bpf-map ] && return 0
	done
	return 1
}

# monitor_wait SECONDS: wait for the monitor MON_PID to end by itself; sets
# MON_RC to its exit status, or "running" after killing it when it did not.
# (Not in a subshell: only this shell can wait for it.)
monitor_wait() {
	if ! wait_until "$1" sh -c "! kill -0 $MON_PID"; then
		kill -9 "$MON_PID" 2>/dev/null
		wait "$MON_PID" 2>/dev/null
		MON_RC=running
		return
	fi
	wait "$MON_PID"
	MON_RC=$?
}

# check_events FILE CHECKS: FILE holds JSON objects, one a line, each with
# exactly the keys its type has; then CHECKS (Python statements over `ev`,
# the list of those objects, appending sentences to `bad`).
check_events() {
	local out
	out=$("$PY" - "$1" "$2" <<-'EOF' 2>&1
	import json, sys
	raw = open(sys.argv[1]).read()
	bad = []
	if raw and not raw.endswith('\n'):
	    bad.append('the output does not end with a newline')
	common = ['dport', 'dst', 'ifname', 'monotonic_ns', 'proto', 'rule', 'sport', 'src',
	          'time', 'type']
	keys = {'new': common, 'closed': sorted(common + ['state']),
	        'drop': sorted(common + ['reason'])}
	ev = []
	for i, l in enumerate(raw.splitlines(), 1):
	    try:
	        d = json.loads(l)
	    except ValueError as e:
	        bad.append('line %d is not JSON (%s): %r' % (i, e, l[:100]))
	        continue
	    if sorted(d) != keys.get(d.get('type'), []):
	        bad.append('line %d (type %s) has keys %s' % (i, d.get('type'), sorted(d)))
	        continue
	    ev.append(d)
	if not bad:
	    exec(sys.argv[2])
	print('\n'.join(bad))
	sys.exit(1 if bad else 0)
	EOF
	) && return 0
	err "monitor output ($1):"
	printf '%s\n' "$out" | head -20 | sed 's/^/        /'
	printf '%s\n' "--- output:" "$(head -c 1500 "$1")" | sed 's/^/        /'
	return 1
}

# ---------------------------------------------------------------- cases

# One connection through web, in the words of the JSON output: its new event
# (on wan) and its closed one, both of web and the client's tuple.
CONN_CHECKS='
tuple = lambda d: (d["proto"], d["src"], d["sport"], d["dst"], d["dport"])
want = ("tcp", CLIENT, SPORT, ROUTER, WEB)
if [d["type"] for d in ev] != ["new", "closed"]:
    bad.append("events %s, want new then closed" % [d["type"] for d in ev])
for d in ev:
    if tuple(d) != want:
        bad.append("%s event has tuple %s, want the client'"'"'s %s" % (d["type"], tuple(d), want))
    if d["rule"] != "web":
        bad.append("%s event has rule %r, want web" % (d["type"], d["rule"]))
    if not (isinstance(d["monotonic_ns"], int) and d["monotonic_ns"] > 0):
        bad.append("%s event has monotonic_ns %r" % (d["type"], d["monotonic_ns"]))
    if abs(d["time"] - NOW) > 60:
        bad.append("%s event has time %s, not about now (%s)" % (d["type"], d["time"], NOW))
if not bad:
    new, closed = ev
    if new["ifname"] != "wan":
        bad.append("new event arrived on %r, want wan" % new["ifname"])
    if closed["state"] not in ("time_wait", "close"):
        bad.append("closed event has state %r" % closed["state"])
    if closed["monotonic_ns"] < new["monotonic_ns"]:
        bad.append("closed event is older than the new one")
'

# a. A real connection: exactly its new and its closed event, in JSON; then
# in text, one line, of a connection after the monitor started, not of one
# before, whose events wait in the ring.
case_connection() {
	local f=$WORK_DIR/conn.$TOPO_SEQ line
	start_fwd || return 1
	monitor_start "$f.json" -j monitor --count 2 --type new --type closed || return 1
	check "GET through web from port 40000" get "$CLIENT_ADDR" 40000 "$WEB_URL/index.html"
	monitor_wait 10
	assert_eq "monitor --count 2 after one connection: exit" "$MON_RC" 0
	[ -s "$f.json.err" ] && err "the monitor wrote to stderr: $(head -c 300 "$f.json.err")"
	check_events "$f.json" "CLIENT, SPORT, ROUTER, WEB = '$CLIENT_ADDR', 40000, '$ROUTER_WAN_ADDR', $WEB_PORT
NOW = $(date +%s)
$CONN_CHECKS"

	check "GET through web from port 40005, unmonitored" get "$CLIENT_ADDR" 40005 "$WEB_URL/index.html"
	monitor_start "$f.txt" monitor --count 1 --type new || return 1
	check "GET through web from port 40001" get "$CLIENT_ADDR" 40001 "$WEB_URL/index.html"
	monitor_wait 10
	assert_eq "monitor --count 1 --type new in text: exit" "$MON_RC" 0
	line=$(cat "$f.txt")
	[[ "$line" =~ ^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\ (.*)$ ]] ||
		err "text line does not start with the time of day: '$line'"
	assert_eq "text line after the time" "${BASH_REMATCH[1]}" \
		"new tcp $CLIENT_ADDR:40001 -> $ROUTER_WAN_ADDR:$WEB_PORT rule web iface wan"
}

# The refused client's SYNs are drops of shut with drop_denied; the admitted
# client's connection to shut is a new and a closed event; web's connection,
# filtered out by --name, shows nowhere.
DENIED_CHECKS='
types = sorted(d["type"] for d in ev)
if types != ["closed", "drop", "new"]:
    bad.append("events %s, want a new, a closed and a drop" % [d["type"] for d in ev])
for d in ev:
    if d["rule"] != "shut":
        bad.append("%s event of rule %r with --name shut" % (d["type"], d["rule"]))
    if d["dport"] != SHUT:
        bad.append("%s event to port %s: not shut'"'"'s" % (d["type"], d["dport"]))
    if d["type"] == "drop":
        if (d["src"], d["sport"], d["reason"], d["ifname"]) != (CLIENT2, 40003, "drop_denied", "wan"):
            bad.append("drop event %s, want from %s:40003, drop_denied, on wan" % (d, CLIENT2))
    elif (d["src"], d["sport"]) != (CLIENT, 40002):
        bad.append("%s event from %s:%s, want the admitted client %s:40002"
                   % (d["type"], d["src"], d["sport"], CLIENT))
'

# b. An allowlist refuses the second client: drop events with the reason,
# its address and the rule; --name leaves out other rules' events.
case_denied() {
	local f=$WORK_DIR/denied.$TOPO_SEQ
	start_fwd || return 1
	monitor_start "$f.json" -j monitor --name shut --count 3 || return 1
	check "GET through web (not shown)" get "$CLIENT_ADDR" 40004 "$WEB_URL/index.html"
	check "GET through shut from the admitted client" \
		get "$CLIENT_ADDR" 40002 "http://$ROUTER_WAN_ADDR:$SHUT_PORT/index.html"
	CONNECT_TIMEOUT=2 check_fails "shut refuses the second client" \
		get "$CLIENT2_ADDR" 40003 "http://$ROUTER_WAN_ADDR:$SHUT_PORT/index.html"
	monitor_wait 10
	assert_eq "monitor --name shut --count 3: exit" "$MON_RC" 0
	check_events "$f.json" "CLIENT, CLIENT2, SHUT = '$CLIENT_ADDR', '$CLIENT2_ADDR', $SHUT_PORT
$DENIED_CHECKS"
	assert_gt "shut denied_packets" "$(rule_stat shut denied_packets)" 0
}

# c. Not loaded: exit 2, one error line (and -j: the error as JSON); bad
# arguments: exit 2; SIGTERM and SIGINT end an endless monitor with exit 0.
BAD_ARGS=("--count 0" "--count x" "--count" "--type bogus" "--type" "--name nosuch" "bogus")
case_lifecycle() {
	local f=$WORK_DIR/life.$TOPO_SEQ rc sig args port=40010
	XDPFWD_TIMEOUT=10 xdpfwd monitor >"$f.out" 2>"$f.err"
	rc=$?
	assert_eq "monitor when not loaded: exit" "$rc" 2
	assert_eq "monitor when not loaded: stderr" "$(cat "$f.err")" \
		"xdpfwd: error: xdpfwd is not loaded; run 'xdpfwd load IFACE' first"
	[ -s "$f.out" ] && err "monitor when not loaded wrote to stdout: $(head -c 300 "$f.out")"
	XDPFWD_TIMEOUT=10 xdpfwd -j monitor >"$f.out" 2>/dev/null
	assert_eq "-j monitor when not loaded: stdout" "$(cat "$f.out")" \
		'{"error":"xdpfwd is not loaded; run '"'"'xdpfwd load IFACE'"'"' first"}'
	start_fwd || return 1
	for args in "${BAD_ARGS[@]}"; do
		# shellcheck disable=SC2086
		XDPFWD_TIMEOUT=10 xdpfwd monitor $args >/dev/null 2>"$f.err"
		rc=$?
		[ "$rc" = 2 ] || err "'xdpfwd monitor $args': exit $rc, want 2"
		[ "$(wc -l <"$f.err")" = 1 ] || err "'xdpfwd monitor $args': want one error line: $(head -c 300 "$f.err")"
	done
	for sig in TERM INT; do
		monitor_start "$f.$sig" monitor || return 1
		port=$((port + 1))
		check "GET through web while monitoring" get "$CLIENT_ADDR" "$port" "$WEB_URL/index.html"
		wait_until 5 grep -q ' closed tcp ' "$f.$sig" ||
			err "the endless monitor did not show the connection: $(head -c 300 "$f.$sig")"
		kill -"$sig" "$MON_PID"
		monitor_wait 5
		assert_eq "endless monitor ended by SIG$sig: exit" "$MON_RC" 0
	done
}

# d. The state unloaded and loaded again under a running monitor: it reads
# the new state's events.
case_reload() {
	local f=$WORK_DIR/reload.$TOPO_SEQ
	start_fwd || return 1
	monitor_start "$f.json" -j monitor --count 1 --type new || return 1
	check "unload --all while monitoring" xdpfwd unload --all &&
	check "load again while monitoring" xdpfwd load wan lan &&
	check "add again while monitoring" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name again &&
	check "GET through the new state" get "$CLIENT_ADDR" 40020 "$WEB_URL/index.html"
	monitor_wait 10
	assert_eq "monitor across unload and load: exit" "$MON_RC" 0
	check_events "$f.json" '
if [(d["type"], d["sport"], d["rule"]) for d in ev] != [("new", 40020, "again")]:
    bad.append("events %s, want the new connection from port 40020 of rule again"
               % [(d["type"], d["sport"], d["rule"]) for d in ev])
'
}

# ---------------------------------------------------------------- main

CASES="connection denied lifecycle reload"
FILTER=${1:-}
for c in $CASES; do
	[ -n "$FILTER" ] && [[ "$c" != *"$FILTER"* ]] && continue
	run_case "$c" "case_$c"
done
finish e2e-monitor
