#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: rule files (issue 6). `xdpfwd apply FILE` makes the rules
# those of FILE at once, checking the whole file first and keeping what
# stays the same (ids, counters, connections); `xdpfwd save` prints the
# rules as such a file. Real TCP from the client namespace through the
# router, whose kernel does not forward: what gets through, XDP carried.
#
#   tests/e2e/test_apply.sh [CASE-FILTER]    (as root, after make)
#   APPLY_BIG_RULES=N: rules of the large apply (default 10000)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-apply: 0 passed, 1 failed"
	exit 1
fi

EXT=$ROUTER_WAN_ADDR
SERVER2_ADDR=198.51.100.3	# a second backend, on the server's link
PEER=$TESTS_DIR/e2e/peer.py
BIG=${APPLY_BIG_RULES:-10000}

# ---------------------------------------------------------------- setup

# start_fwd: GRO on at both ends (so their veths take XDP frames), xdpfwd on
# wan and lan, the kernel's forwarding off.
start_fwd() {
	check "kernel forwarding off in the router" router_forwarding 0 &&
	check "GRO on at client and server" gro on &&
	check "load wan lan" xdpfwd load wan lan
}

# echo_servers PORT...: peer.py echo-tcp on the server, every address, one a
# port; each answers a line with "<its-address> <line>" and logs it to
# $SRV_LOG.
echo_servers() {
	local port
	SRV_LOG="$WORK_DIR/echo-srv.$TOPO_SEQ"
	: >"$SRV_LOG"
	for port in "$@"; do
		bg "$NS_S" "$PY" "$PEER" echo-tcp 0.0.0.0 "$port" "$SRV_LOG" >>"$WORK_DIR/echo.log" 2>&1
	done
	for port in "$@"; do
		check "TCP echo server on :$port" wait_listen "$NS_S" tcp "$port" || return 1
	done
}

# rules_file NAME: stdin into a file of this case; prints its path.
rules_file() {
	local f="$WORK_DIR/$1.$TOPO_SEQ.rules"
	cat >"$f" && echo "$f"
}

# tcp_ask PORT MSG: one new connection from the client to EXT:PORT carrying
# the line MSG; prints the answer line (the echo server's "<addr> MSG"), or
# nothing when the connection fails.
tcp_ask() {
	nsx "$NS_C" timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
printf "%s\n" "$2" >&3
IFS= read -r line <&3 && printf "%s\n" "$line"' "$EXT" "$1" "$2" 2>/dev/null
}

# forwards PORT BACKEND: a new connection to PORT reaches BACKEND's echo
# server and comes back.
forwards() {
	assert_eq "a new connection to $EXT:$1 answered by" "$(tcp_ask "$1" "to-$1-$CASE_NAME")" \
		"$2 to-$1-$CASE_NAME"
}

# ---------------------------------------------------------------- views

# rules_view: the rules of `-j stats`: what `list` shows, connections and
# counters.
rules_view() {
	xdpfwd -j stats | jget "d['rules']"
}

# ct_view: `-j conntrack`, without the times, in a fixed order.
ct_view() {
	xdpfwd -j conntrack | jget "sorted([{k: v for k, v in c.items() if k not in ('age', 'idle', 'expires')} for c in d], key=lambda c: (c['orig']['sport'], c['orig']['dport']))"
}

# ct_age CLIENT-PORT: the age of the client's connection from CLIENT-PORT,
# or "none".
ct_age() {
	xdpfwd -j conntrack | jget "([c['age'] for c in d if c['orig']['sport'] == $1] or ['none'])[0]"
}

# map_entries MAP: entries in the pinned MAP. Of rule_ports, both sets: once
# an apply is done, those of the live rules only.
map_entries() {
	nsx "$NS_R" bpftool -j map dump pinned "$PIN_DIR/$1" | jget 'len(d)'
}

port_entries() {
	map_entries rule_ports
}

# neigh_known ADDR: the router has a neighbour entry for ADDR on lan.
neigh_known() {
	[ -n "$(ip -n "$NS_R" neigh show "$1" dev lan)" ]
}

# summary FIELD: a field of the last `-j apply` output ($APPLIED).
summary() {
	jget "d['$1']" <<<"$APPLIED"
}

# ---------------------------------------------------------------- 1. refusals

# Before each refusal: LIST0, STATS0, SAVE0.
take_snapshot() {
	LIST0=$(xdpfwd -j list) STATS0=$(rules_view) SAVE0=$(xdpfwd save)
}

unchanged() {
	assert_eq "$1: -j list afterwards" "$(xdpfwd -j list)" "$LIST0"
	assert_eq "$1: -j stats rules afterwards" "$(rules_view)" "$STATS0"
	assert_eq "$1: save afterwards" "$(xdpfwd save)" "$SAVE0"
}

# refused WHAT LINE TEXT: `apply` of the file on stdin exits 2 with one
# line on stderr, "xdpfwd: error: FILE:LINE: ..." containing TEXT, and
# changes nothing.
refused() {
	local f out rc
	f=$(rules_file "bad-$2") || return 1
	out=$(xdpfwd apply "$f" 2>&1 >/dev/null)
	rc=$?
	assert_eq "$1: exit status" "$rc" 2
	assert_eq "$1: lines on stderr" "$(printf '%s\n' "$out" | wc -l)" 1
	[[ "$out" == "xdpfwd: error: $f:$2: "*"$3"* ]] ||
		err "$1: the error should name $f:$2 and say '$3'; it is: $out"
	unchanged "$1"
}

GOOD_RULES="# three rules; one with an allowlist
tcp 8080 $SERVER_ADDR:80 --name web   # trailing comment
tcp 8081 $SERVER_ADDR:81 --name other --allow 203.0.113.0/24
	udp   5353   $SERVER_ADDR:53   --name dns"

case_refused() {
	local f out
	start_fwd && echo_servers 80 || return 1
	f=$(rules_file good <<<"$GOOD_RULES") && check "apply of a good file" xdpfwd apply "$f" || return 1
	forwards 8080 "$SERVER_ADDR"
	take_snapshot
	assert_gt "web orig_packets before the refusals" "$(rule_stat web orig_packets)" 0

	refused "bad port on line 3" 3 "invalid port '70000'" <<-EOF
	# header
	tcp 8080 $SERVER_ADDR:80 --name web
	tcp 70000 $SERVER_ADDR:80 --name big
	udp 5353 $SERVER_ADDR:53 --name dns
	EOF
	refused "overlap of lines 2 and 5" 5 "tcp 8005 overlaps line 2 (tcp 8000-8010)" <<-EOF
	# ranges
	tcp 8000-8010 $SERVER_ADDR:80 --name range
	udp 8005 $SERVER_ADDR:53 --name other-proto
	tcp $EXT:8005 $SERVER_ADDR:80 --name other-addr
	tcp 8005 $SERVER_ADDR:81 --name inside
	EOF
	refused "unknown option on line 4" 4 "unknown option '--bogus'" <<-EOF
	tcp 8080 $SERVER_ADDR:80 --name web

	# blank line above
	tcp 8081 $SERVER_ADDR:81 --bogus x
	EOF
	refused "a name twice (lines 1 and 3)" 3 "the rule on line 1 is named 'web' already" <<-EOF
	tcp 8080 $SERVER_ADDR:80 --name web
	tcp 8081 $SERVER_ADDR:81
	tcp 8082 $SERVER_ADDR:82 --name web
	EOF
	refused "'add' left in on line 2" 2 "leave out 'add'" <<-EOF
	tcp 8080 $SERVER_ADDR:80 --name web
	add tcp 8081 $SERVER_ADDR:81
	EOF
	refused "a rule without its backend on line 2" 2 "a rule is PROTO" <<-EOF
	tcp 8080 $SERVER_ADDR:80
	tcp 8081
	EOF
	refused "host bits in an allowlist CIDR on line 1" 1 "address bits are set past /24" <<-EOF
	tcp 8080 $SERVER_ADDR:80 --allow 203.0.113.7/24
	EOF
	refused "the first of two bad lines (2 and 3)" 2 "unknown protocol 'sctp'" <<-EOF
	tcp 8080 $SERVER_ADDR:80
	sctp 8081 $SERVER_ADDR:81
	tcp 8082 $SERVER_ADDR:0
	EOF

	out=$(rules_file stdin <<<"tcp 8080 $SERVER_ADDR:80
udp x $SERVER_ADDR:53") || return 1
	out=$(xdpfwd apply - <"$out" 2>&1 >/dev/null)
	[[ "$out" == "xdpfwd: error: <stdin>:2: invalid port 'x'"* ]] ||
		err "apply - of a bad line 2 should name <stdin>:2; it says: $out"
	f=$(rules_file json <<<"tcp 8080 $SERVER_ADDR:80 --name 'bad name'") || return 1
	out=$(xdpfwd -j apply "$f" 2>/dev/null)
	assert_eq "-j apply of a bad line: the JSON error names the line" \
		"$(jget "d['error'].startswith('$f:1: invalid rule name')" <<<"$out")" True
	unchanged "apply - and -j apply"
	no_state_created "$f"
	too_big_undone
	forwards 8080 "$SERVER_ADDR"
}

# too_big_undone: a file each line of which is good, but whose allowlists
# together are more than the table holds (257 rules of 64 CIDRs): the
# kernel refuses an entry half-way, apply exits 1 and takes back what it
# entered.
too_big_undone() {
	local f ports0 allow0 out rc
	f="$WORK_DIR/too-big.$TOPO_SEQ.rules"
	awk -v b="$SERVER_ADDR" 'BEGIN {
		for (i = 0; i < 257; i++) {
			printf "tcp %d %s:80 --name many-%d", 30000 + i, b, i
			for (j = 0; j < 64; j++)
				printf " --allow 10.%d.%d.%d/32", int(i / 256), i % 256, j
			printf "\n"
		}
	}' >"$f"
	ports0=$(port_entries) allow0=$(map_entries allow)
	out=$(xdpfwd apply "$f" 2>&1 >/dev/null)
	rc=$?
	assert_eq "too many allowlist CIDRs in all: exit status" "$rc" 1
	[[ "$out" == *"the rule tables are full"* ]] ||
		err "too many allowlist CIDRs in all: the error should say the tables are full; it is: $out"
	unchanged "too many allowlist CIDRs in all"
	assert_eq "too many allowlist CIDRs in all: rule_ports entries afterwards" \
		"$(port_entries)" "$ports0"
	assert_eq "too many allowlist CIDRs in all: allow entries afterwards" \
		"$(map_entries allow)" "$allow0"
}

# no_state_created FILE: apply of the bad FILE where there is no state yet
# leaves none.
no_state_created() {
	local pin=$PIN_DIR
	PIN_DIR="$pin-fresh" xdpfwd apply "$1" >/dev/null 2>&1
	assert_eq "save where there is no state: output" "$(PIN_DIR="$pin-fresh" xdpfwd save)" ""
	if [ -e "$pin-fresh" ]; then
		err "apply of a bad file created the state $pin-fresh"
		PIN_DIR="$pin-fresh" xdpfwd unload --all >/dev/null 2>&1
		rm -rf "$pin-fresh"
	fi
}

# ---------------------------------------------------------------- 2. round trip

ROUND_RULES="tcp 8080 $SERVER_ADDR:80 --name web --allow 203.0.113.0/24 --allow 192.0.2.0/25 --allow 203.0.113.0/24
tcp $EXT:8100-8109 $SERVER_ADDR:9100 --snat auto --name range
udp 5353 $SERVER_ADDR:domain --name dns --snat $ROUTER_LAN_ADDR
tcp ssh $SERVER_ADDR
tcp 8443 $SERVER_ADDR:https"

# What save prints of ROUND_RULES: ports as numbers, every name, allowlists
# sorted and once each.
ROUND_SAVED="tcp 8080 $SERVER_ADDR:80 --name web --allow 192.0.2.0/25 --allow 203.0.113.0/24
tcp $EXT:8100-8109 $SERVER_ADDR:9100 --name range --snat auto
udp 5353 $SERVER_ADDR:53 --name dns --snat $ROUTER_LAN_ADDR
tcp 22 $SERVER_ADDR --name tcp-22
tcp 8443 $SERVER_ADDR:443 --name tcp-8443"

case_round_trip() {
	local f saved list0 stats0 ct0 save0
	start_fwd && echo_servers 80 || return 1
	f=$(rules_file round <<<"$ROUND_RULES") && check "apply" xdpfwd apply "$f" || return 1
	sess_open a "$EXT" 8080 || { err "session a did not connect"; return 1; }
	sess_ok a before "$SERVER_ADDR"
	save0=$(xdpfwd save)
	assert_eq "save (without its header line)" "$(grep -v '^#' <<<"$save0")" "$ROUND_SAVED"
	assert_eq "save's header line" "$(head -1 <<<"$save0")" \
		"# xdpfwd $("$XDPFWD_BIN" --version | cut -d' ' -f2) rules, as 'xdpfwd apply FILE' takes them"
	assert_eq "-j save: the lines" "$(xdpfwd -j save | jget "'\\n'.join(d)")" "$ROUND_SAVED"
	list0=$(xdpfwd -j list) stats0=$(rules_view) ct0=$(ct_view)
	assert_eq "connections before" "$(jget 'len(d)' <<<"$ct0")" 1
	assert_gt "web orig_packets before" "$(rule_stat web orig_packets)" 0

	saved=$(rules_file saved <<<"$save0") || return 1
	APPLIED=$(xdpfwd -j apply "$saved") || err "apply of what save printed failed"
	assert_eq "apply of the saved file: [added, changed, unchanged, removed]" \
		"$(jget "[d['added'], d['changed'], d['unchanged'], d['removed']]" <<<"$APPLIED")" "[0, 0, 5, 0]"
	assert_eq "-j list after save > f; apply f" "$(xdpfwd -j list)" "$list0"
	assert_eq "-j stats rules (counters) after save > f; apply f" "$(rules_view)" "$stats0"
	assert_eq "-j conntrack after save > f; apply f" "$(ct_view)" "$ct0"
	assert_eq "save after save > f; apply f" "$(xdpfwd save)" "$save0"
	assert_eq "rule_ports entries (the live set's 14 ports only)" "$(port_entries)" 14

	APPLIED=$(xdpfwd save | xdpfwd -j apply -) || err "save | apply - failed"
	assert_eq "save | apply -: unchanged of all" "$(summary unchanged) of $(summary rules)" "5 of 5"
	assert_eq "-j stats rules after save | apply -" "$(rules_view)" "$stats0"
	assert_eq "-j conntrack after save | apply -" "$(ct_view)" "$ct0"
	sess_ok a after "$SERVER_ADDR"
	assert_eq "the session is the connection it was" "$(jget 'len(d)' <<<"$(ct_view)")" 1
}

# ---------------------------------------------------------------- 3. connections

# Rules before and after: web stays as it is, gone goes, moved gets another
# backend, fresh is new.
BEFORE_RULES="tcp 8080 $SERVER_ADDR:80 --name web
tcp 8081 $SERVER_ADDR:81 --name gone
tcp 8082 $SERVER_ADDR:82 --name moved"
AFTER_RULES="# web unchanged, gone removed, moved to the second backend, fresh added
tcp 8083 $SERVER_ADDR:83 --name fresh
tcp 8082 $SERVER2_ADDR:82 --name moved
tcp 8080 $SERVER_ADDR:80 --name web"

case_connections() {
	local f pa age0 pkts0 moved0 got
	check "second backend address" ip -n "$NS_S" addr add "$SERVER2_ADDR/24" dev eth0 || return 1
	start_fwd && echo_servers 80 81 82 83 || return 1
	f=$(rules_file before <<<"$BEFORE_RULES") && check "apply before" xdpfwd apply "$f" || return 1
	sess_open a "$EXT" 8080 || { err "session a (web) did not connect"; return 1; }
	sess_open b "$EXT" 8082 || { err "session b (moved) did not connect"; return 1; }
	sess_open c "$EXT" 8081 || { err "session c (gone) did not connect"; return 1; }
	pa=${SESS_PORT[a]}
	sess_ok a a-before "$SERVER_ADDR"
	sess_ok b b-before "$SERVER_ADDR"
	sess_ok c c-before "$SERVER_ADDR"
	sleep 1.2
	age0=$(ct_age "$pa")
	pkts0=$(rule_stat web orig_packets)
	moved0=$(rule_stat moved orig_packets)
	assert_ge "web's connection age before" "$age0" 1

	f=$(rules_file after <<<"$AFTER_RULES") || return 1
	APPLIED=$(xdpfwd -j apply "$f") || err "apply after failed"
	assert_eq "apply: [added, changed, unchanged, removed]" \
		"$(jget "[d['added'], d['changed'], d['unchanged'], d['removed']]" <<<"$APPLIED")" "[1, 1, 1, 1]"
	assert_eq "rules after (by id, backend)" \
		"$(xdpfwd -j list | jget "[(r['name'], r['int_addr']) for r in d]")" \
		"[[\"web\", \"$SERVER_ADDR\"], [\"moved\", \"$SERVER2_ADDR\"], [\"fresh\", \"$SERVER_ADDR\"]]"

	wait_until 3 neigh_known "$SERVER2_ADDR" ||
		err "the router does not keep the new backend $SERVER2_ADDR resolved"
	assert_eq "connections of the removed rule listed" \
		"$(xdpfwd -j conntrack | jget "len([c for c in d if c['orig']['dport'] == 8081])")" 0
	assert_eq "flow table entries: two for each connection listed (the removed rule's are gone)" \
		"$(($(map_entries flows) + $(map_entries flows_new)))" \
		"$((2 * $(xdpfwd -j conntrack | jget 'len(d)')))"
	sess_ok a a-after "$SERVER_ADDR"
	assert_ge "web's connection is the one made before (age)" "$(ct_age "$pa")" "$age0"
	assert_ge "web's orig_packets kept and counting" "$(rule_stat web orig_packets)" "$((pkts0 + 1))"
	assert_eq "web's connections" "$(rule_stat web flows)" 1

	sess_ok b b-after "$SERVER_ADDR"
	forwards 8082 "$SERVER2_ADDR"
	assert_ge "moved's orig_packets kept and counting" "$(rule_stat moved orig_packets)" \
		"$((moved0 + 2))"
	assert_eq "rule_ports entries (the live set's 3 ports only)" "$(port_entries)" 3

	got=$(sess_send c c-after)
	assert_eq "the removed rule's open connection, next segment" "$got" \
		"error c-after ConnectionResetError"
	assert_eq "a new connection to the removed rule's port" "$(tcp_ask 8081 to-gone)" ""
	grep -q 'to-gone\|c-after' "$SRV_LOG" && err "the server got traffic of the removed rule"
	forwards 8083 "$SERVER_ADDR"

	# add and del work on whichever set is live now.
	check "add after apply" xdpfwd add tcp 8084 "$SERVER_ADDR:80" --name late || return 1
	forwards 8084 "$SERVER_ADDR"
	check "del after apply" xdpfwd del --name fresh
	assert_eq "a new connection to the deleted rule's port" "$(tcp_ask 8083 to-deleted)" ""
	sess_ok a a-last "$SERVER_ADDR"

	# A rule new to apply starts from zero, on whatever id it gets (fresh's,
	# which counted traffic).
	f=$(rules_file again <<<"$AFTER_RULES
tcp 8084 $SERVER_ADDR:80 --name late
tcp 8085 $SERVER_ADDR:81 --name again") || return 1
	APPLIED=$(xdpfwd -j apply "$f") || err "apply again failed"
	assert_eq "apply again: [added, changed, unchanged, removed]" \
		"$(jget "[d['added'], d['changed'], d['unchanged'], d['removed']]" <<<"$APPLIED")" "[2, 0, 3, 0]"
	assert_eq "orig_packets of a rule new to apply" "$(rule_stat again orig_packets)" 0
	assert_eq "orig_packets of another rule new to apply" "$(rule_stat fresh orig_packets)" 0
	forwards 8085 "$SERVER_ADDR"
	sess_ok a a-end "$SERVER_ADDR"
}

# ---------------------------------------------------------------- 4. many rules

# big_rules N FIRST-PORT BACKEND: N one-port TCP rules from FIRST-PORT on.
big_rules() {
	awk -v n="$1" -v p="$2" -v b="$3" 'BEGIN {
		print "# " n " rules"
		for (i = 0; i < n; i++)
			printf "tcp %d %s:80 --name big-%d\n", p + i, b, p + i
	}'
}

# ms CMD...: run CMD (its output dropped); print its wall time in ms, or
# "failed".
ms() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>"$WORK_DIR/ms.err" || { echo failed; return 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

case_many() {
	local f g t pkts mid=$((20000 + BIG / 2))
	start_fwd && echo_servers 80 || return 1
	check "add a rule that stays" xdpfwd add tcp 8080 "$SERVER_ADDR:80" --name web || return 1
	f="$WORK_DIR/big.$TOPO_SEQ.rules"
	{ echo "tcp 8080 $SERVER_ADDR:80 --name web"; big_rules "$BIG" 20000 "$SERVER_ADDR"; } >"$f"
	t=$(ms xdpfwd apply "$f") || { err "apply of $BIG rules: $(cat "$WORK_DIR/ms.err")"; return 1; }
	info "apply of $BIG new rules (+1 kept): $t ms"
	assert_eq "rules listed" "$(xdpfwd -j list | jget 'len(d)')" $((BIG + 1))
	assert_eq "rule_ports entries" "$(port_entries)" $((BIG + 1))
	forwards "$mid" "$SERVER_ADDR"
	pkts=$(rule_stat "big-$mid" orig_packets)
	assert_gt "the middle rule counted the connection" "$pkts" 0
	t=$(ms xdpfwd apply "$f") && info "apply of the same $BIG rules again: $t ms"
	t=$(ms xdpfwd save) && info "save of $BIG rules: $t ms"
	assert_eq "the middle rule's counters after a repeated apply" \
		"$(rule_stat "big-$mid" orig_packets)" "$pkts"
	# Half the rules stay, half go, as many come: the table holds the live
	# rules and the new ones at once.
	g="$WORK_DIR/big2.$TOPO_SEQ.rules"
	{ echo "tcp 8080 $SERVER_ADDR:80 --name web"; big_rules "$BIG" "$mid" "$SERVER_ADDR"; } >"$g"
	t=$(ms xdpfwd apply "$g") || err "apply of $BIG rules, half of them new: $(cat "$WORK_DIR/ms.err")"
	info "apply of $BIG rules, $((BIG / 2)) of them new ($((BIG / 2)) removed): $t ms"
	assert_eq "a kept rule's counters after the half-new apply" \
		"$(rule_stat "big-$mid" orig_packets)" "$pkts"
	forwards $((mid + BIG - 1)) "$SERVER_ADDR"
	assert_eq "a new connection to a removed rule's port" "$(tcp_ask 20000 to-removed)" ""
	t=$(ms xdpfwd apply /dev/null) && info "apply of an empty file ($((BIG + 1)) removed): $t ms"
	assert_eq "rules listed after an empty file" "$(xdpfwd -j list | jget 'len(d)')" 0
	assert_eq "rule_ports entries after an empty file" "$(port_entries)" 0
}

# ---------------------------------------------------------------- main

FILTER=${1:-}
t_all=$SECONDS
for c in refused round_trip connections many; do
	name="apply_$c"
	[ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]] && continue
	run_case "$name" "case_$c"
	sess_close_all
done
log "(apply e2e: $((SECONDS - t_all))s)"
finish e2e-apply
