#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: the counters as they leave xdpfwd (issue 6). Real TCP and UDP
# traffic from a client namespace through xdpfwd in the router namespace;
# then the Prometheus exporter (run in the router namespace, scraped there
# with curl) must say what `xdpfwd -j stats` and `status` say, and
# `stats --watch` must turn a UDP stream of known rate into plausible rates.
#
#   tests/e2e/test_metrics.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-metrics: 0 passed, 1 failed"
	exit 1
fi

WEB_PORT=8080		# tcp "web"    -> http server :80
DNS_PORT=5353		# udp "dns"    -> udp answer server :53
IDLE_PORT=6000		# udp "idle"   -> :6000, never used
SHUT_PORT=8081		# tcp "shut"   -> :80, admits only 192.0.2.0/24: the client is denied
EXP_PORT=9435		# the exporter's default port (127.0.0.1 in the router namespace)
STREAM_PPS=200		# the UDP stream `watch` measures
STREAM_SIZE=100		# its payload: 128 IP bytes a packet

# ---------------------------------------------------------------- setup

# quiet_ipv6: no IPv6 in our namespaces, so that no router solicitation or
# neighbour discovery moves a counter between two readings.
quiet_ipv6() {
	local ns
	for ns in "$NS_C" "$NS_R" "$NS_S"; do
		nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
			>/dev/null || return 1
	done
}

# start_fwd: xdpfwd on wan and lan with the kernel's forwarding off, the
# four rules, and their servers.
start_fwd() {
	check "IPv6 off in the namespaces" quiet_ipv6 &&
	check "kernel forwarding off in the router" router_forwarding 0 &&
	check "GRO on at client and server" gro on &&
	check "load wan lan" xdpfwd load wan lan &&
	check "add web" xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web &&
	check "add dns" xdpfwd add udp "$DNS_PORT" "$SERVER_ADDR:53" --name dns &&
	check "add idle" xdpfwd add udp "$IDLE_PORT" "$SERVER_ADDR" --name idle &&
	check "add shut" xdpfwd add tcp "$SHUT_PORT" "$SERVER_ADDR:80" --name shut \
		--allow 192.0.2.0/24 &&
	check "http server up" start_http &&
	check "udp server up" udp_server "$NS_S" "$SERVER_ADDR" 53
}

# some_traffic: a file over web, a query over dns, a refused connection to
# shut; each rule's counters must then have moved.
some_traffic() {
	local out="$WORK_DIR/blob.$TOPO_SEQ"
	check "fetch through web" fetch "http://$ROUTER_WAN_ADDR:$WEB_PORT/blob.bin" "$out" &&
	check "query through dns" udp_query "$NS_C" "$ROUTER_WAN_ADDR" "$DNS_PORT" q1 || return 1
	check_fails "shut refuses the client" nsx "$NS_C" timeout 5 curl -s --connect-timeout 1 \
		-o /dev/null "http://$ROUTER_WAN_ADDR:$SHUT_PORT/"
	assert_gt "web orig_packets after the fetch" "$(rule_stat web orig_packets)" 0 &&
	assert_gt "dns reply_packets after the query" "$(rule_stat dns reply_packets)" 0 &&
	assert_gt "shut denied_packets after the refusal" "$(rule_stat shut denied_packets)" 0
}

# ---------------------------------------------------------------- exporter

# scrape PATH OUT [CURL-ARGS...]: GET http://127.0.0.1:EXP_PORT/PATH in the
# router namespace into OUT; prints the HTTP status.
scrape() {
	local path=$1 out=$2; shift 2
	nsx "$NS_R" timeout 10 curl -sS --max-time 5 -o "$out" -w '%{http_code}' "$@" \
		"http://127.0.0.1:$EXP_PORT/$path"
}

# start_exporter: the exporter on its default address, in the background;
# sets EXP_PID once it answers.
start_exporter() {
	bg "$NS_R" "$XDPFWD_BIN" --pin-dir "$PIN_DIR" exporter 2>>"$WORK_DIR/exporter.log"
	EXP_PID=$!
	wait_until 10 scrape metrics /dev/null
}

# port_free: nothing listens on EXP_PORT in the router namespace.
port_free() {
	[ -z "$(nsx "$NS_R" ss -ltnH "sport = :$EXP_PORT")" ]
}

# compare_metrics METRICS STATS STATUS: the exposition in METRICS must be
# well formed and carry exactly the numbers of `-j stats` (STATS) and `-j
# status` (STATUS). Prints each difference as a sentence; fails on any.
compare_metrics() {
	"$PY" - "$@" <<-'EOF'
	import json, re, sys
	text = open(sys.argv[1]).read()
	stats = json.load(open(sys.argv[2]))
	status = json.load(open(sys.argv[3]))
	bad = []
	types, samples = {}, {}
	sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([0-9]+)$')
	label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)')
	for n, line in enumerate(text.splitlines(), 1):
	    if line.startswith('# HELP '):
	        continue
	    if line.startswith('# TYPE '):
	        _, _, name, typ = line.split(' ')
	        if typ == 'counter' and not name.endswith('_total'):
	            bad.append('counter %s does not end in _total' % name)
	        types[name] = typ
	        continue
	    m = sample_re.match(line)
	    if not m:
	        bad.append('line %d is not a sample: %r' % (n, line))
	        continue
	    name, labels = m.group(1), ()
	    if m.group(2):
	        pairs = label_re.findall(m.group(2))
	        if ''.join('%s="%s",' % p for p in pairs)[:-1] != m.group(2):
	            bad.append('line %d has malformed labels: %r' % (n, line))
	        labels = tuple(sorted(pairs))
	    if name not in types:
	        bad.append('%s comes before its # TYPE line' % name)
	    if (name, labels) in samples:
	        bad.append('%s%s appears twice' % (name, dict(labels)))
	    samples[(name, labels)] = int(m.group(3))

	def want(name, value, **labels):
	    got = samples.pop((name, tuple(sorted(labels.items()))), None)
	    if got != value:
	        bad.append('%s%s is %s, stats says %s' % (name, labels or '', got, value))

	want('xdpfwd_up', 1)
	want('xdpfwd_build_info', 1, version=status['version'])
	want('xdpfwd_interfaces_loaded', len(status['interfaces']))
	want('xdpfwd_rules', status['rules'])
	want('xdpfwd_flows', status['flows'])
	want('xdpfwd_flow_table_capacity', status['max_flows'])
	want('xdpfwd_flow_table_bytes', status['flow_table_bytes'])
	for r in stats['rules']:
	    for d in ('orig', 'reply'):
	        want('xdpfwd_rule_packets_total', r[d + '_packets'], rule=r['name'], direction=d)
	        want('xdpfwd_rule_bytes_total', r[d + '_bytes'], rule=r['name'], direction=d)
	    want('xdpfwd_rule_denied_packets_total', r['denied_packets'], rule=r['name'])
	    want('xdpfwd_rule_flows', r['flows'], rule=r['name'])
	for reason, count in stats['reasons'].items():
	    want('xdpfwd_packets_total', count, reason=reason)
	for name, labels in samples:
	    bad.append('%s%s is not in stats' % (name, dict(labels)))
	print('\n'.join(bad))
	sys.exit(1 if bad else 0)
	EOF
}

# scrape_matches_stats: a scrape between two identical readings of stats
# and status must match them; the readings are retried while traffic of
# the kernel's own (ARP) moves a counter between them.
scrape_matches_stats() {
	local d=$WORK_DIR/cmp.$TOPO_SEQ out
	for _ in 1 2 3; do
		xdpfwd -j stats >"$d.stats0" && xdpfwd -j status >"$d.status0" || return 1
		[ "$(scrape metrics "$d.metrics")" = 200 ] || { err "GET /metrics did not answer 200"; return 1; }
		xdpfwd -j stats >"$d.stats1" && xdpfwd -j status >"$d.status1" || return 1
		if cmp -s "$d.stats0" "$d.stats1" && cmp -s "$d.status0" "$d.status1"; then
			out=$(compare_metrics "$d.metrics" "$d.stats0" "$d.status0" 2>&1) && return 0
			err "/metrics differs from 'xdpfwd -j stats' and 'status':"
			printf '%s\n' "$out" | head -20 | sed 's/^/        /'
			return 1
		fi
		sleep 0.5
	done
	err "the counters kept moving with no traffic: no quiet moment to compare in"
}

# exporter_pages: the landing page links /metrics, other paths are 404,
# only GET and HEAD are served, and /metrics says it is the text format.
exporter_pages() {
	local d=$WORK_DIR/page.$TOPO_SEQ type
	assert_eq "GET / status" "$(scrape '' "$d")" 200
	grep -q 'href="/metrics"' "$d" || err "the landing page does not link /metrics: $(head -c 200 "$d")"
	assert_eq "GET /nope status" "$(scrape nope "$d")" 404
	assert_eq "GET /metricsx status" "$(scrape metricsx "$d")" 404
	assert_eq "POST /metrics status" "$(scrape metrics "$d" -X POST -d x=1)" 405
	type=$(nsx "$NS_R" timeout 10 curl -sS --max-time 5 -o /dev/null -w '%{content_type}' \
		"http://127.0.0.1:$EXP_PORT/metrics")
	assert_eq "/metrics content type" "$type" "text/plain; version=0.0.4; charset=utf-8"
}

# not_loaded_metrics: with no state, only xdpfwd_up 0 and the build info.
not_loaded_metrics() {
	local d=$WORK_DIR/empty.$TOPO_SEQ samples
	assert_eq "GET /metrics before load" "$(scrape metrics "$d")" 200
	samples=$(grep -v '^#' "$d" | sort | tr '\n' ';')
	assert_eq "samples before load" "$samples" 'xdpfwd_build_info{version="1.0.0"} 1;xdpfwd_up 0;'
}

# second_exporter_refused: the port is taken: exit 1 with one error line.
second_exporter_refused() {
	local rc n
	XDPFWD_TIMEOUT=10 xdpfwd exporter >"$WORK_DIR/second.out" 2>"$WORK_DIR/second.err"
	rc=$?
	assert_eq "second exporter on the same port: exit" "$rc" 1
	n=$(wc -l <"$WORK_DIR/second.err")
	assert_eq "second exporter: stderr lines" "$n" 1
	grep -q "^xdpfwd: error: cannot listen on 127.0.0.1:$EXP_PORT: Address already in use" \
		"$WORK_DIR/second.err" || err "second exporter's error: $(cat "$WORK_DIR/second.err")"
}

# stop_exporter: SIGTERM ends it with exit 0 and frees the port.
stop_exporter() {
	local rc
	kill -TERM "$EXP_PID"
	wait "$EXP_PID"
	rc=$?
	assert_eq "exporter exit on SIGTERM" "$rc" 0
	check "the exporter's port is free after SIGTERM" port_free
}

# a. Started before load, the exporter follows: nothing, then everything.
case_exporter() {
	start_exporter || { err "the exporter does not answer on 127.0.0.1:$EXP_PORT"; return 1; }
	not_loaded_metrics
	start_fwd && some_traffic || return 1
	scrape_matches_stats
	# A rule changed after the first scrape is in the next one.
	check "del idle" xdpfwd del --name idle &&
	check "add late" xdpfwd add udp 6001 "$SERVER_ADDR" --name late || return 1
	scrape_matches_stats
	exporter_pages
	second_exporter_refused
	stop_exporter
}

# b. Bad --listen: exit 2, one error line, nothing listening; an address
# not of this host: exit 1.
BAD_LISTEN=(
	"2|--listen nonsense"
	"2|--listen 127.0.0.1"
	"2|--listen :9435"
	"2|--listen 127.0.0.1:"
	"2|--listen 127.0.0.1:0"
	"2|--listen 127.0.0.1:65536"
	"2|--listen 127.0.0.1:-1"
	"2|--listen 127.0.0.1:80x"
	"2|--listen 300.1.1.1:9435"
	"2|--listen"
	"2|--port 9435"
	"1|--listen 192.0.2.77:9435"
)
case_exporter_bad_listen() {
	local item want args rc n
	for item in "${BAD_LISTEN[@]}"; do
		want=${item%%|*} args=${item#*|}
		# shellcheck disable=SC2086
		XDPFWD_TIMEOUT=10 xdpfwd exporter $args >"$WORK_DIR/bad.out" 2>"$WORK_DIR/bad.err"
		rc=$?
		[ "$rc" = "$want" ] || err "'xdpfwd exporter $args': exit $rc, want $want"
		n=$(wc -l <"$WORK_DIR/bad.err")
		{ [ "$n" = 1 ] && grep -q '^xdpfwd: error: ' "$WORK_DIR/bad.err"; } ||
			err "'xdpfwd exporter $args': want one error line, got: $(head -c 300 "$WORK_DIR/bad.err")"
		[ -s "$WORK_DIR/bad.out" ] && err "'xdpfwd exporter $args' wrote to stdout"
		[ -z "$(nsx "$NS_R" ss -ltnH)" ] || err "'xdpfwd exporter $args' left something listening"
	done
}

# ---------------------------------------------------------------- watch

# udp_stream SECONDS: STREAM_PPS datagrams a second through dns, paced from
# the start so that the rate holds on average.
udp_stream() {
	nsx "$NS_C" timeout $(($1 + 5)) "$PY" -c '
import socket, sys, time
addr, port, pps, size, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.monotonic()
n = 0
while time.monotonic() - t0 < secs:
    s.sendto(b"x" * size, (addr, port))
    n += 1
    time.sleep(max(0.0, t0 + n / pps - time.monotonic()))
' "$ROUTER_WAN_ADDR" "$DNS_PORT" "$STREAM_PPS" "$STREAM_SIZE" "$1"
}

# check_watch_json FILE LINES PYTHON-CHECKS: FILE holds LINES JSON objects,
# one a line, of the documented shape; then the checks (Python statements
# over `lines`, a list of those objects, appending sentences to `bad`).
check_watch_json() {
	local out
	out=$("$PY" - "$1" "$2" "$3" <<-'EOF' 2>&1
	import json, math, sys
	raw = open(sys.argv[1]).read().split('\n')
	bad = []
	if raw[-1] != '':
	    bad.append('the output does not end with a newline')
	raw = raw[:-1]
	if len(raw) != int(sys.argv[2]):
	    bad.append('%d lines, want %s' % (len(raw), sys.argv[2]))
	lines = []
	for i, l in enumerate(raw):
	    try:
	        d = json.loads(l)
	    except ValueError as e:
	        bad.append('line %d is not JSON (%s): %r' % (i + 1, e, l[:100]))
	        continue
	    if sorted(d) != ['interval', 'reasons_per_sec', 'rules', 'time']:
	        bad.append('line %d has keys %s' % (i + 1, sorted(d)))
	        continue
	    for r in d['rules']:
	        if sorted(r) != sorted(['name', 'flows', 'orig_pps', 'orig_bps', 'reply_pps',
	                                'reply_bps', 'denied_pps']):
	            bad.append('line %d: rule %s has keys %s' % (i + 1, r.get('name'), sorted(r)))
	    lines.append(d)
	if not bad:
	    exec(sys.argv[3])
	print('\n'.join(bad))
	sys.exit(1 if bad else 0)
	EOF
	) && return 0
	err "stats --watch output ($1):"
	printf '%s\n' "$out" | head -20 | sed 's/^/        /'
	return 1
}

# The rates of three intervals of the stream: dns about STREAM_PPS each way
# (each interval's under ten times that, their mean within 0.6 to 1.5 times),
# 1024 bits a packet (128 IP bytes); idle none; every reason present.
WATCH_STREAM_CHECKS='
rule = lambda d, name: [r for r in d["rules"] if r["name"] == name][0]
names = ["fwd_redirect", "fwd_tx", "icmp_frag_needed", "icmp_time_exceeded", "pass_not_ip",
         "pass_no_match", "pass_malformed", "pass_frag_unmatched", "pass_ct_invalid",
         "pass_no_neigh", "pass_slow_egress", "pass_local", "pass_too_big", "pass_fib_other",
         "drop_ttl", "drop_fib", "drop_ct_full", "drop_no_room", "drop_denied",
         "drop_snat_no_addr", "drop_snat_no_port", "tc_translated", "tc_sent",
         "drop_tc_unroutable"]
pps = PPS
for i, d in enumerate(lines, 1):
    if not 0.4 <= d["interval"] <= 1.0:
        bad.append("line %d: interval %s, want about 0.5" % (i, d["interval"]))
    if sorted(r["name"] for r in d["rules"]) != ["dns", "idle", "shut", "web"]:
        bad.append("line %d: rules %s" % (i, [r["name"] for r in d["rules"]]))
        continue
    dns, idle = rule(d, "dns"), rule(d, "idle")
    for k in ("orig_pps", "reply_pps"):
        if not (isinstance(dns[k], float) and 0 < dns[k] < 10 * pps):
            bad.append("line %d: dns %s is %s while %d a second flow" % (i, k, dns[k], pps))
    if dns["orig_pps"] and abs(dns["orig_bps"] / dns["orig_pps"] - 1024) > 1:
        bad.append("line %d: dns orig_bps %s is not 1024 bits a packet of orig_pps %s"
                   % (i, dns["orig_bps"], dns["orig_pps"]))
    for k in ("orig_pps", "orig_bps", "reply_pps", "reply_bps", "denied_pps"):
        if idle[k] != 0:
            bad.append("line %d: idle %s is %s, want 0" % (i, k, idle[k]))
    if list(d["reasons_per_sec"]) != names:
        bad.append("line %d: reasons_per_sec has %s" % (i, list(d["reasons_per_sec"])))
    elif not d["reasons_per_sec"]["fwd_redirect"] > 0:
        bad.append("line %d: fwd_redirect rate %s while the stream flows"
                   % (i, d["reasons_per_sec"]["fwd_redirect"]))
mean = sum(rule(d, "dns")["orig_pps"] for d in lines) / len(lines)
if not 0.6 * pps <= mean <= 1.5 * pps:
    bad.append("dns orig_pps averages %.1f while %d a second flow" % (mean, pps))
'

# c. Rates of a stream of known rate, in JSON and in text.
case_watch_rates() {
	local f=$WORK_DIR/watch.$TOPO_SEQ rc
	start_fwd || return 1
	udp_stream 4 >/dev/null 2>&1 &
	BG_PIDS+=($!)
	sleep 0.7
	xdpfwd -j stats --watch 0.5 --count 3 >"$f.json" 2>"$f.err"
	rc=$?
	assert_eq "stats --watch 0.5 --count 3 -j: exit" "$rc" 0
	[ -s "$f.err" ] && err "stats --watch wrote to stderr: $(head -c 300 "$f.err")"
	check_watch_json "$f.json" 3 "PPS = $STREAM_PPS
$WATCH_STREAM_CHECKS"
	# Text, not on a terminal: a block an interval, a blank line between,
	# no escape sequences.
	xdpfwd stats --watch 0.2 --count 2 >"$f.txt" 2>&1
	rc=$?
	assert_eq "stats --watch 0.2 --count 2: exit" "$rc" 0
	assert_eq "text blocks (NAME headers)" "$(grep -c '^NAME ' "$f.txt")" 2
	assert_eq "blank lines between blocks" "$(grep -c '^$' "$f.txt")" 1
	assert_eq "rule lines" "$(grep -cE '^(web|dns|idle|shut) ' "$f.txt")" 8
	grep -q $'\033' "$f.txt" && err "text output not on a terminal has escape sequences"
	grep -qE '^packets/s: fwd [0-9.]+ icmp [0-9.]+ pass [0-9.]+ drop [0-9.]+ tc [0-9.]+$' "$f.txt" ||
		err "no packets/s line in the text: $(head -c 400 "$f.txt")"
}

# Rules come and go, the state goes and comes back: the watch carries on; a
# rule's first interval has no rates (null), its next ones do.
WATCH_CHANGE_CHECKS='
def rates(d, name):
    r = [r for r in d["rules"] if r["name"] == name]
    return r[0]["orig_pps"] if r else "absent"
late = [rates(d, "late") for d in lines if rates(d, "late") != "absent"]
if len(late) < 2 or late[0] is not None or not all(isinstance(v, float) for v in late[1:]):
    bad.append("late orig_pps, each line it is in: %s; want null, then numbers" % late)
if rates(lines[0], "idle") == "absent" or rates(lines[-1], "idle") != "absent":
    bad.append("idle should be there at the start and gone at the end")
empty = [i for i, d in enumerate(lines) if not d["rules"]]
if not empty:
    bad.append("no line without rules while nothing was loaded")
elif any(v is not None for v in lines[empty[0]]["reasons_per_sec"].values()):
    bad.append("reason rates while nothing is loaded: %s" % lines[empty[0]]["reasons_per_sec"])
again = [rates(d, "again") for d in lines if rates(d, "again") != "absent"]
if len(again) < 2 or again[0] is not None or again[-1] != 0:
    bad.append("again (added after a new load) orig_pps: %s; want null, then 0" % again)
'

# d. Rules added and deleted, the state unloaded and loaded again while
# watching: no crash, exit 0 after --count intervals.
case_watch_changes() {
	local f=$WORK_DIR/changes.$TOPO_SEQ pid rc
	start_fwd || return 1
	XDPFWD_TIMEOUT=20 xdpfwd -j stats --watch 0.25 --count 16 >"$f.json" 2>"$f.err" &
	pid=$!
	sleep 0.6
	check "add late while watching" xdpfwd add udp 6001 "$SERVER_ADDR" --name late
	sleep 0.6
	check "del idle while watching" xdpfwd del --name idle
	check "unload --all while watching" xdpfwd unload --all
	sleep 0.6
	check "load again while watching" xdpfwd load wan lan &&
	check "add again while watching" xdpfwd add udp 6002 "$SERVER_ADDR" --name again
	wait "$pid"
	rc=$?
	assert_eq "stats --watch through the changes: exit" "$rc" 0
	check_watch_json "$f.json" 16 "$WATCH_CHANGE_CHECKS"
}

# e. SIGINT and SIGTERM end an endless watch with exit 0; bad arguments are
# refused with exit 2.
case_watch_signals() {
	local sig pid rc f=$WORK_DIR/sig.$TOPO_SEQ
	start_fwd || return 1
	for sig in INT TERM; do
		nsenter --net="/run/netns/$NS_R" "$XDPFWD_BIN" --pin-dir "$PIN_DIR" stats --watch 0.2 \
			>"$f.$sig" 2>&1 &
		pid=$!
		BG_PIDS+=("$pid")
		wait_until 5 grep -q '^NAME ' "$f.$sig"
		kill -"$sig" "$pid"
		wait "$pid"
		rc=$?
		assert_eq "stats --watch ended by SIG$sig: exit" "$rc" 0
		assert_ge "blocks shown before SIG$sig" "$(grep -c '^NAME ' "$f.$sig")" 1
	done
	for args in "--watch 0.05" "--watch 3601" "--watch abc" "--watch 1 --count 0" \
		"--watch 1 --count x" "--count 3" "--watch 1 --count" "bogus"; do
		# shellcheck disable=SC2086
		XDPFWD_TIMEOUT=5 xdpfwd stats $args >/dev/null 2>"$f.err"
		rc=$?
		[ "$rc" = 2 ] || err "'xdpfwd stats $args': exit $rc, want 2"
		[ "$(wc -l <"$f.err")" = 1 ] || err "'xdpfwd stats $args': want one error line: $(head -c 300 "$f.err")"
	done
}

# ---------------------------------------------------------------- main

CASES="exporter exporter_bad_listen watch_rates watch_changes watch_signals"
FILTER=${1:-}
for c in $CASES; do
	[ -n "$FILTER" ] && [[ "$c" != *"$FILTER"* ]] && continue
	run_case "$c" "case_$c"
done
finish e2e-metrics
