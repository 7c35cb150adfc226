#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end: upgrades (issue 6). `load` by a rebuilt xdpfwd over a running
# one swaps the programs in place (bpf_link_update, TC filter replace) on the
# same maps, so a TCP transfer in flight completes, byte-exact and without a
# reset; a state whose maps another layout made is refused, untouched; the
# same build loaded again changes nothing.
#
# "A rebuilt one" is this tree built again with BPF_EXTRA_CFLAGS=-mcpu=v2:
# other instructions (the verifier sees other programs), the same maps. The
# kernel's forwarding is off in the router, so only XDP carries the traffic.
#
#   tests/e2e/test_upgrade.sh [CASE-FILTER]    (as root, after make)

. "$(dirname "$0")/../lib.sh"

if ! need_root_and_binary; then
	echo "e2e-upgrade: 0 passed, 1 failed"
	exit 1
fi

WEB_PORT=8080
WEB_URL="http://$ROUTER_WAN_ADDR:$WEB_PORT/blob.bin"
REBUILT=$WORK_DIR/rebuilt/xdpfwd
# shellcheck disable=SC2034  # make_blob's size (lib.sh)
BLOB_MB=20
RATE=2000K			# curl's pace: 20 MB take 10 s, the upgrade ~2 s

# ---------------------------------------------------------------- setup

# build_rebuilt: this tree again, with other BPF code generation.
build_rebuilt() {
	make -C "$ROOT_DIR" --no-print-directory BUILD="$WORK_DIR/rebuilt" \
		BPF_EXTRA_CFLAGS=-mcpu=v2 >"$WORK_DIR/make.log" 2>&1
}

# new ARGS...: the rebuilt xdpfwd, as `xdpfwd` runs the one under test.
new() {
	XDPFWD_BIN=$REBUILT xdpfwd "$@"
}

# new_load: `load wan lan` by the rebuilt xdpfwd, which must take over.
new_load() {
	new load wan lan >"$WORK_DIR/load.out" 2>&1 && return 0
	err "load wan lan by the rebuilt xdpfwd failed: $(head -c 400 "$WORK_DIR/load.out")"
	grep -q "cannot take over" "$WORK_DIR/load.out" &&
		info "(the tree's maps differ from those of $XDPFWD_BIN: is it built from $ROOT_DIR as it is now? run make)"
	return 1
}

start_fwd() {
	check "kernel forwarding off in the router" router_forwarding 0 &&
	check "GRO on at client and server" gro on &&
	check "load wan lan $*" xdpfwd load wan lan "$@" &&
	check "add tcp $WEB_PORT -> $SERVER_ADDR:80" \
		xdpfwd add tcp "$WEB_PORT" "$SERVER_ADDR:80" --name web
}

# ---------------------------------------------------------------- state

# st EXPR: EXPR over `xdpfwd -j status`, as `d`.
st() {
	xdpfwd -j status | jget "$1"
}

# ifaces FIELD: "wan=V lan=V" of an interface field of status.
ifaces() {
	st "' '.join('%s=%s' % (i['ifname'], i['$1']) for i in sorted(d['interfaces'], key=lambda i: i['ifname']))"
}

# build_of XDPFWD_BIN: the build that binary reports for itself.
build_of() {
	XDPFWD_BIN=$1 xdpfwd -j status | jget "d['build']"
}

# tc_prog IFACE DIR: the id of the program of our TC filter on IFACE's
# ingress or egress.
tc_prog() {
	nsx "$NS_R" tc filter show dev "$1" "$2" | sed -n 's/.* handle 0x58444657 .* id \([0-9]*\) .*/\1/p'
}

# pinned_prog NAME: the id of the program pinned as NAME.
pinned_prog() {
	nsx "$NS_R" bpftool -j prog show pinned "$PIN_DIR/$1" | jget "d['id']"
}

# pins: every pin with its inode: a pin replaced is another inode.
pins() {
	ls -i1 "$PIN_DIR" | sort -k2
}

# tcp_stat NS FIELD: a counter of NS's /proc/net/snmp "Tcp:" lines.
tcp_stat() {
	nsx "$1" awk -v f="$2" '$1 == "Tcp:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == f) c = i; n = 1 } else print $c }' /proc/net/snmp
}

# resets: RSTs sent and connections reset, in the three namespaces.
resets() {
	local ns
	for ns in "$NS_C" "$NS_R" "$NS_S"; do
		printf '%s/%s ' "$(tcp_stat "$ns" OutRsts)" "$(tcp_stat "$ns" EstabResets)"
	done
}

# web_conn EXPR: EXPR over the web rule's one connection (`xdpfwd -j
# conntrack list`), as `c`; "none" without exactly one.
web_conn() {
	xdpfwd -j conntrack list | "$PY" -c 'import json, sys
m = [c for c in json.load(sys.stdin) if c["rule"] == "web"]
print(eval(sys.argv[1], {"c": m[0]}) if len(m) == 1 else "none")' "$1"
}

# ---------------------------------------------------------------- transfer

# transfer_start: the client fetches the 20 MB file through the forward at
# RATE in the background; transfer_rc is its exit status once it ends.
transfer_start() {
	rm -f "$WORK_DIR/got.bin" "$WORK_DIR/curl.rc"
	(
		nsx "$NS_C" timeout 60 curl -sS --limit-rate "$RATE" --connect-timeout 5 \
			-o "$WORK_DIR/got.bin" "$WEB_URL" 2>"$WORK_DIR/curl.err"
		echo $? >"$WORK_DIR/curl.rc"
	) &
	BG_PIDS+=($!)
}

transfer_running() {
	[ ! -e "$WORK_DIR/curl.rc" ]
}

transfer_rc() {
	cat "$WORK_DIR/curl.rc" 2>/dev/null
}

# received_at_least BYTES: the client has that much of the file.
received_at_least() {
	[ "$(stat -c %s "$WORK_DIR/got.bin" 2>/dev/null || echo 0)" -ge "$1" ]
}

# ---------------------------------------------------------------- cases

# 1. The rebuilt xdpfwd's `load` while 20 MB are on their way: new programs
# on both interfaces through the same XDP links, new TC programs, the record
# says the new build; the connection is the same one, its counters kept (age
# and bytes only grew), the size of the tables kept; the file arrives whole
# and nobody sent or got a reset.
case_upgrade_mid_transfer() {
	local old_build new_build prog0 link0 tc0 port age0 bytes0 rst0 sha
	start_fwd --max-flows 4096 || return 1
	make_blob || { err "could not make the 20 MB file"; return 1; }
	check "http server up" start_http || return 1
	old_build=$(build_of "$XDPFWD_BIN") new_build=$(build_of "$REBUILT")
	[ "$old_build" != "$new_build" ] ||
		{ err "the rebuilt xdpfwd has the build of $XDPFWD_BIN ($old_build): BPF_EXTRA_CFLAGS changed nothing"; return 1; }
	assert_eq "running build before the upgrade" "$(st "d['program_build']")" "$old_build"
	prog0=$(ifaces prog_id) link0=$(ifaces link_id) tc0="$(tc_prog wan egress) $(tc_prog wan ingress)"
	rst0=$(resets)

	transfer_start
	check "the transfer is under way (3 MB in)" wait_until 20 received_at_least 3000000 || return 1
	port=$(web_conn 'c["orig"]["sport"]') age0=$(web_conn 'c["age"]') bytes0=$(web_conn 'c["reply_bytes"]')
	assert_eq "the transfer's connection is tracked, established" "$(web_conn 'c["state"]')" established
	sleep 1.2
	new_load || return 1
	info "programs replaced with $(stat -c %s "$WORK_DIR/got.bin") of $BLOB_SIZE bytes received"
	check "the transfer was still running after the upgrade" transfer_running

	assert_eq "running build after the upgrade" "$(st "d['program_build']")" "$new_build"
	assert_eq "running version after the upgrade" "$(st "d['running_version']")" "$(st "d['version']")"
	[ "$(ifaces prog_id)" != "$prog0" ] || err "the XDP programs are the old ones after the upgrade: $prog0"
	assert_eq "the XDP program of each interface is the pinned prog_native" \
		"$(ifaces prog_id)" "$(p=$(pinned_prog prog_native); echo "lan=$p wan=$p")"
	assert_eq "XDP links (updated in place, not made anew)" "$(ifaces link_id)" "$link0"
	[ "$(tc_prog wan egress) $(tc_prog wan ingress)" != "$tc0" ] ||
		err "the TC programs are the old ones after the upgrade: $tc0"
	assert_eq "TC egress program of wan is the pinned prog_tc" "$(tc_prog wan egress)" "$(pinned_prog prog_tc)"
	assert_eq "TC ingress program of lan is the pinned prog_tc_ingress" \
		"$(tc_prog lan ingress)" "$(pinned_prog prog_tc_ingress)"
	assert_eq "connection table size kept" "$(st "d['max_flows']")" 4096
	assert_eq "rules kept" "$(st "d['rules']")" 1

	sleep 1.2
	assert_eq "the same connection after the upgrade" "$(web_conn 'c["orig"]["sport"]')" "$port"
	assert_eq "its age went on (was $age0 s)" "$(web_conn "c['age'] >= $age0 + 2")" True
	assert_eq "its bytes went on (were $bytes0)" "$(web_conn "c['reply_bytes'] > $bytes0")" True

	check "the transfer ends" wait_until 40 test -e "$WORK_DIR/curl.rc" || return 1
	assert_eq "curl's exit status ($(head -c 200 "$WORK_DIR/curl.err"))" "$(transfer_rc)" 0
	sha=$(sha256sum <"$WORK_DIR/got.bin" | cut -d' ' -f1)
	assert_eq "sha256 of the 20 MB file" "$sha" "$BLOB_SHA"
	assert_eq "resets sent/suffered in client, router, server" "$(resets)" "$rst0"
	assert_eq "the connection's reply bytes cover the file" \
		"$(web_conn "c['reply_bytes'] >= $BLOB_SIZE")" True
}

# refused LOG: the rebuilt xdpfwd's `load` was refused as a layout change of
# flows should be, naming the map and the sizes ($V0 pinned, $V1 its own).
refused() {
	grep -q "map flows: value size $V0 -> $V1: this version" "$1" &&
	grep -q "run 'xdpfwd unload --all' to start afresh" "$1"
}

# 2. A state whose flows map another layout made (simulated: a flows map 8
# bytes wider pinned in place of the real one): load by the rebuilt xdpfwd
# exits 1 naming the map and what changed; pins, programs and links are as
# they were; commands that would read it refuse too; status still reports
# it; unload --all, which the message names, removes it.
case_layout_refused() {
	local info key max status0 pins0 rc
	start_fwd || return 1
	info=$(nsx "$NS_R" bpftool -j map show pinned "$PIN_DIR/flows")
	key=$(jget "d['bytes_key']" <<<"$info") V1=$(jget "d['bytes_value']" <<<"$info")
	max=$(jget "d['max_entries']" <<<"$info")
	V0=$((V1 + 8))
	check "pin a flows map of value size $V0 in place of flows" rm "$PIN_DIR/flows" &&
	check "bpftool map create" nsx "$NS_R" bpftool map create "$PIN_DIR/flows" type lru_hash \
		key "$key" value "$V0" entries "$max" name flows || return 1
	status0=$(xdpfwd -j status) pins0=$(pins)

	new load wan lan >"$WORK_DIR/load.out" 2>&1
	rc=$?
	assert_eq "exit status of load over the other layout" "$rc" 1
	refused "$WORK_DIR/load.out" ||
		err "load's error does not name 'map flows: value size $V0 -> $V1': $(head -c 300 "$WORK_DIR/load.out")"
	assert_eq "status after the refused load" "$(xdpfwd -j status)" "$status0"
	assert_eq "pins after the refused load" "$(pins)" "$pins0"
	assert_eq "status says why" "$(st "d['incompatible']")" "map flows: value size $V0 -> $V1"
	assert_eq "status counts the interfaces still" "$(st "len(d['interfaces'])")" 2

	new list >"$WORK_DIR/list.out" 2>&1
	assert_eq "exit status of list over the other layout" "$?" 1
	refused "$WORK_DIR/list.out" || err "list's error does not name the map: $(head -c 300 "$WORK_DIR/list.out")"
	check_fails "add over the other layout" new add tcp 9090 "$SERVER_ADDR:90"
	assert_eq "pins after list and add" "$(pins)" "$pins0"

	check "unload --all removes the state" new unload --all
	check_fails "the pin folder is gone" test -e "$PIN_DIR"
}

# 3. `load` by the same build changes nothing, each way of an upgrade and a
# downgrade: the programs stay (the same ids, the same pins).
case_same_build() {
	local prog0 pins0
	start_fwd || return 1
	prog0=$(ifaces prog_id) pins0=$(pins)
	check "load wan lan again" xdpfwd load wan lan
	assert_eq "XDP programs after the same build's load" "$(ifaces prog_id)" "$prog0"
	assert_eq "pins after the same build's load" "$(pins)" "$pins0"

	new_load || return 1
	prog0=$(ifaces prog_id) pins0=$(pins)
	check "load wan lan by the rebuilt xdpfwd again" new load wan lan
	assert_eq "XDP programs after the rebuilt one's second load" "$(ifaces prog_id)" "$prog0"
	assert_eq "pins after the rebuilt one's second load" "$(pins)" "$pins0"

	check "load wan lan by the first xdpfwd (a downgrade)" xdpfwd load wan lan
	[ "$(ifaces prog_id)" != "$prog0" ] || err "the downgrade left the rebuilt programs running"
	assert_eq "running build after the downgrade" "$(st "d['program_build']")" "$(build_of "$XDPFWD_BIN")"
}

# 3'. In generic mode the links move to the new generic program, the mode
# stays, and traffic goes on through the new programs. (The kernel forwards
# here: generic XDP leaves it the GSO packets, larger than the MTU.)
case_generic() {
	local link0 sha
	start_fwd --mode generic && check "kernel forwarding on" router_forwarding 1 || return 1
	make_blob || { err "could not make the 20 MB file"; return 1; }
	check "http server up" start_http || return 1
	link0=$(ifaces link_id)
	new_load || return 1
	assert_eq "modes after the upgrade" "$(ifaces mode)" "lan=generic wan=generic"
	assert_eq "the XDP program of each interface is the pinned prog_generic" \
		"$(ifaces prog_id)" "$(p=$(pinned_prog prog_generic); echo "lan=$p wan=$p")"
	assert_eq "XDP links (updated in place)" "$(ifaces link_id)" "$link0"
	check "the 20 MB file through the new programs" \
		nsx "$NS_C" timeout 30 curl -sS --max-time 25 -o "$WORK_DIR/got.bin" "$WEB_URL" || return 1
	sha=$(sha256sum <"$WORK_DIR/got.bin" | cut -d' ' -f1)
	assert_eq "sha256 of the 20 MB file" "$sha" "$BLOB_SHA"
	assert_gt "web reply packets" "$(rule_stat web reply_packets)" 0
}

# 4. A state no record speaks for (made before there was one): status says
# so, and load takes it over as another build's.
case_unrecorded() {
	local prog0
	start_fwd || return 1
	prog0=$(ifaces prog_id)
	check "remove the record" rm "$PIN_DIR/meta" || return 1
	assert_eq "running version of an unrecorded state" "$(st "d['running_version']")" None
	check "load wan lan" xdpfwd load wan lan
	[ "$(ifaces prog_id)" != "$prog0" ] || err "load left the unrecorded programs running"
	assert_eq "running build after load" "$(st "d['program_build']")" "$(build_of "$XDPFWD_BIN")"
	assert_eq "rules kept" "$(st "d['rules']")" 1
}

# ---------------------------------------------------------------- main

t_all=$SECONDS
if ! build_rebuilt; then
	log "could not build the rebuilt xdpfwd (make BPF_EXTRA_CFLAGS=-mcpu=v2):"
	tail -5 "$WORK_DIR/make.log" | sed 's/^/    /'
	# shellcheck disable=SC2034  # finish reads it
	N_FAIL=1
	finish e2e-upgrade
	exit 1
fi
FILTER=${1:-}
for c in upgrade_mid_transfer layout_refused same_build generic unrecorded; do
	[ -n "$FILTER" ] && [[ "$c" != *"$FILTER"* ]] && continue
	run_case "upgrade_$c" "case_$c"
done
log "(upgrade e2e: $((SECONDS - t_all))s)"
finish e2e-upgrade
