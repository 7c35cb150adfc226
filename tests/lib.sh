# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
# shellcheck disable=SC2034  # variables used by the files that source this
# Shared helpers for the xdpfwd end-to-end tests and the demo. Source it:
#     . "$(dirname "$0")/../lib.sh"
#
# Topology (every name unique to this run, all in TEST-NET ranges):
#
#   client ns                router ns                      server ns
#   eth0 203.0.113.2/24 <-> wan 203.0.113.1/24
#                            lan 198.51.100.1/24 <-> eth0 198.51.100.2/24
#
# The veth pairs are created directly inside the namespaces, so nothing of
# ours ever appears in the root namespace. xdpfwd runs in the router through
# `nsenter --net` (not `ip netns exec`, which hides /sys/fs/bpf), with a pin
# dir of its own under /sys/fs/bpf/xdpfwd-test-<unique>.

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$TESTS_DIR/.." && pwd)
XDPFWD_BIN=${XDPFWD_BIN:-$ROOT_DIR/build/xdpfwd}
PY=/usr/bin/python3		# Debian's, with python3-scapy
SKIP=77				# a case returning this is skipped, not failed

CLIENT_ADDR=203.0.113.2
ROUTER_WAN_ADDR=203.0.113.1
ROUTER_LAN_ADDR=198.51.100.1
SERVER_ADDR=198.51.100.2

# Unique to this run; a topology adds its own sequence number.
RUN_ID="$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
TOPO_SEQ=0
NS_C='' NS_R='' NS_S='' PIN_DIR=''
EXTRA_NS=()			# further namespaces a test file's topology made
TOPO_BUILDER=topo_create	# what run_case builds a case's topology with
BG_PIDS=()
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/xdpfwd-test.$RUN_ID.XXXXXX")

# ---------------------------------------------------------------- logging

CASE_NAME='' CASE_FAILED=0
N_PASS=0 N_FAIL=0 N_SKIP=0

log()  { printf '%s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
err()  { printf '    FAIL: %s\n' "$*"; CASE_FAILED=1; }

# ---------------------------------------------------------------- topology

# nsx NS CMD...: run CMD in namespace NS (no fork: $! of `nsx ... &` is CMD).
nsx() {
	local ns=$1; shift
	nsenter --net="/run/netns/$ns" "$@"
}

# xdpfwd ARGS...: the CLI in the router namespace, with this topology's pins.
# A leading -j/--json is kept in front of --pin-dir.
xdpfwd() {
	local pre=()
	while [ $# -gt 0 ] && { [ "$1" = -j ] || [ "$1" = --json ]; }; do
		pre+=("$1"); shift
	done
	timeout -k 5 "${XDPFWD_TIMEOUT:-30}" \
		nsenter --net="/run/netns/$NS_R" "$XDPFWD_BIN" "${pre[@]}" --pin-dir "$PIN_DIR" "$@"
}

# topo_create: three namespaces on two veth pairs; the router forwards or not
# as the case sets it (ip_forward is set to 0 here; new namespaces may
# otherwise inherit the host's value).
topo_create() {
	TOPO_SEQ=$((TOPO_SEQ + 1))
	local id="$RUN_ID-$TOPO_SEQ"
	NS_C="xfwd-c-$id" NS_R="xfwd-r-$id" NS_S="xfwd-s-$id"
	PIN_DIR="/sys/fs/bpf/xdpfwd-test-$id"
	local ns
	for ns in "$NS_C" "$NS_R" "$NS_S"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip -n "$NS_R" link add wan type veth peer name eth0 netns "$NS_C" || return 1
	ip -n "$NS_R" link add lan type veth peer name eth0 netns "$NS_S" || return 1
	ip -n "$NS_C" addr add "$CLIENT_ADDR/24" dev eth0 &&
	ip -n "$NS_R" addr add "$ROUTER_WAN_ADDR/24" dev wan &&
	ip -n "$NS_R" addr add "$ROUTER_LAN_ADDR/24" dev lan &&
	ip -n "$NS_S" addr add "$SERVER_ADDR/24" dev eth0 || return 1
	ip -n "$NS_C" link set eth0 up && ip -n "$NS_S" link set eth0 up &&
	ip -n "$NS_R" link set wan up && ip -n "$NS_R" link set lan up || return 1
	ip -n "$NS_C" route add default via "$ROUTER_WAN_ADDR" &&
	ip -n "$NS_S" route add default via "$ROUTER_LAN_ADDR" || return 1
	router_forwarding 0 || return 1
	# The default TX checksum offload of the run (TX_CSUM=on|off).
	if [ "${TX_CSUM:-on}" = off ]; then
		set_offload "$NS_C" eth0 tx off && set_offload "$NS_S" eth0 tx off || return 1
	fi
	# veth carrier comes up asynchronously; wait for all four ends.
	wait_until 10 link_up "$NS_C" eth0 && wait_until 10 link_up "$NS_S" eth0 &&
	wait_until 10 link_up "$NS_R" wan && wait_until 10 link_up "$NS_R" lan
}

link_up() {
	ip -n "$1" link show dev "$2" 2>/dev/null | grep -q 'state UP'
}

# topo_destroy: everything of the current topology, whatever state it is in.
topo_destroy() {
	local pid ns
	for pid in "${BG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	BG_PIDS=()
	if [ -n "$NS_R" ] && [ -e "/run/netns/$NS_R" ] && [ -n "$PIN_DIR" ] && [ -x "$XDPFWD_BIN" ]; then
		xdpfwd unload --all >/dev/null 2>&1
	fi
	for ns in "$NS_C" "$NS_R" "$NS_S" "${EXTRA_NS[@]}"; do
		if [ -z "$ns" ] || [ ! -e "/run/netns/$ns" ]; then continue; fi
		# Anything still running in our namespaces is ours.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	case "$PIN_DIR" in
	/sys/fs/bpf/xdpfwd-test-?*) rm -rf "$PIN_DIR" ;;
	esac
	NS_C='' NS_R='' NS_S='' PIN_DIR='' EXTRA_NS=()
}

cleanup_all() {
	topo_destroy
	case "$WORK_DIR" in
	*/xdpfwd-test.*) rm -rf "$WORK_DIR" ;;
	esac
}

trap 'cleanup_all' EXIT
trap 'cleanup_all; trap - EXIT; exit 130' INT
trap 'cleanup_all; trap - EXIT; exit 143' TERM

router_forwarding() {
	nsx "$NS_R" sysctl -qw "net.ipv4.ip_forward=$1" >/dev/null
}

# kernel_forward_drop: the router's kernel drops whatever it would forward
# (its nftables forward hook, in the router namespace only). Packets XDP
# redirects never reach that hook.
kernel_forward_drop() {
	nsx "$NS_R" nft -f - <<-EOF
	table ip xdpfwd_test {
		chain forward {
			type filter hook forward priority 0; policy drop;
		}
	}
	EOF
}

# set_offload NS IF FEATURE on|off
set_offload() {
	nsx "$1" ethtool -K "$2" "$3" "$4" >/dev/null 2>&1
}

# gro_on / gro_off: on the client's and server's veth ends, so that they can
# take frames the router redirects with XDP.
gro() {
	set_offload "$NS_C" eth0 gro "$1" && set_offload "$NS_S" eth0 gro "$1"
}

# ---------------------------------------------------------------- waiting

# wait_until SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_until() {
	local limit=$(( $1 * 10 )) i=0; shift
	while [ $i -lt $limit ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# bg NS CMD...: start CMD in the background in NS, remember its pid.
bg() {
	local ns=$1; shift
	nsenter --net="/run/netns/$ns" "$@" &
	BG_PIDS+=($!)
}

# ---------------------------------------------------------------- servers

# A file of random bytes the HTTP server serves; sets BLOB_SIZE/BLOB_SHA.
BLOB_MB=${BLOB_MB:-4}
make_blob() {
	mkdir -p "$WORK_DIR/www"
	if [ ! -s "$WORK_DIR/www/blob.bin" ]; then
		head -c $((BLOB_MB * 1024 * 1024)) /dev/urandom > "$WORK_DIR/www/blob.bin" || return 1
		echo "hello from the server" > "$WORK_DIR/www/index.html"
	fi
	BLOB_SIZE=$(stat -c %s "$WORK_DIR/www/blob.bin")
	BLOB_SHA=$(sha256sum < "$WORK_DIR/www/blob.bin" | cut -d' ' -f1)
}

# start_http: a real HTTP server (python's http.server) on SERVER_ADDR:80.
start_http() {
	make_blob || return 1
	bg "$NS_S" "$PY" "$TESTS_DIR/e2e/peer.py" http "$SERVER_ADDR" 80 "$WORK_DIR/www" \
		>"$WORK_DIR/http.log" 2>&1
	wait_until 10 nsx "$NS_S" curl -sf --max-time 1 -o /dev/null "http://$SERVER_ADDR:80/index.html"
}

# udp_server NS ADDR PORT: answers each datagram with "answer:" + it.
udp_server() {
	bg "$1" "$PY" "$TESTS_DIR/e2e/peer.py" serve "$2" "$3" >>"$WORK_DIR/udp.log" 2>&1
	wait_until 10 udp_query "$1" "$2" "$3" ping
}

# udp_query NS ADDR PORT MSG: prints the answer ("<from-addr>:<port> <data>").
udp_query() {
	nsx "$1" timeout 10 "$PY" "$TESTS_DIR/e2e/peer.py" query "$2" "$3" "$4"
}

# listener NS PROTO ADDR PORT FILE: records "<peer-addr> <data>" of what arrives.
listener() {
	bg "$1" "$PY" "$TESTS_DIR/e2e/peer.py" listen-"$2" "$3" "$4" "$5" >>"$WORK_DIR/listen.log" 2>&1
}

# wait_listen NS tcp|udp PORT: until something listens on PORT in NS.
wait_listen() {
	local opt=-ltnH
	[ "$2" = udp ] && opt=-lunH
	wait_until 10 sh -c "nsenter --net=/run/netns/$1 ss $opt 'sport = :$3' | grep -q ."
}

# fetch URL OUT: curl from the client namespace, bounded.
fetch() {
	nsx "$NS_C" timeout 30 curl -sS --connect-timeout 5 --max-time 25 -o "$2" "$1"
}

# ---------------------------------------------------------------- JSON

# jget EXPR: evaluate a Python expression over the JSON on stdin (as `d`).
jget() {
	"$PY" -c 'import json,sys
try:
    d = json.load(sys.stdin)
    v = eval(sys.argv[1])
except Exception as e:
    sys.exit("jget %s: %s: %s" % (sys.argv[1], type(e).__name__, e))
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}

# rule_stat NAME FIELD: a per-rule counter from `xdpfwd -j stats`.
rule_stat() {
	xdpfwd -j stats | jget "[r for r in d['rules'] if r['name'] == '$1'][0]['$2']"
}

# reason NAME: a reason counter from `xdpfwd -j status`.
reason() {
	xdpfwd -j status | jget "d['reasons']['$1']"
}

# iface_field IFNAME FIELD: a field of an interface in `xdpfwd -j status`.
iface_field() {
	xdpfwd -j status | jget "[i for i in d['interfaces'] if i['ifname'] == '$1'][0]['$2']"
}

# ---------------------------------------------------------------- asserts

# check DESC CMD...: CMD must succeed.
check() {
	local desc=$1 out; shift
	if out=$("$@" 2>&1); then
		return 0
	fi
	err "$desc (command: $*)"
	[ -n "$out" ] && printf '%s\n' "$out" | head -5 | sed 's/^/        /'
	return 1
}

# check_fails DESC CMD...: CMD must fail.
check_fails() {
	local desc=$1; shift
	if "$@" >/dev/null 2>&1; then
		err "$desc (succeeded: $*)"
		return 1
	fi
	return 0
}

# assert_eq DESC GOT WANT
assert_eq() {
	[ "$2" = "$3" ] && return 0
	err "$1: got '$2', want '$3'"
	return 1
}

# assert_ge DESC GOT MIN: integers.
assert_ge() {
	if [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ]; then
		return 0
	fi
	err "$1: got '$2', want >= $3"
	return 1
}

# assert_gt DESC GOT MIN
assert_gt() {
	if [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt "$3" ]; then
		return 0
	fi
	err "$1: got '$2', want > $3"
	return 1
}

# ---------------------------------------------------------------- cases

# ---------------------------------------------------------------- sessions

# A session is one TCP connection from the client, kept open by a peer.py
# process that takes its orders from a fifo. The caller sets PEER (peer.py).
declare -A SESS_FD SESS_OUT SESS_PORT

# sess_open NAME ADDR PORT: connect to ADDR:PORT; SESS_PORT[NAME] is the
# client's port. Call it directly, not through check (a subshell would lose
# the session).
sess_open() {
	local ctl="$WORK_DIR/sess.$TOPO_SEQ.$1.ctl" out="$WORK_DIR/sess.$TOPO_SEQ.$1.out" fd
	rm -f "$ctl" "$out"
	mkfifo "$ctl" || return 1
	exec {fd}<>"$ctl"
	SESS_FD[$1]=$fd SESS_OUT[$1]=$out
	bg "$NS_C" "$PY" "$PEER" session "$2" "$3" "$ctl" "$out" \
		>/dev/null 2>>"$WORK_DIR/session.log"
	wait_until 8 grep -q '^connect' "$out"
	SESS_PORT[$1]=$(sed -n 's/^connected //p' "$out" 2>/dev/null)
	[ -n "${SESS_PORT[$1]}" ]
}

# sess_send NAME MSG: prints what came of it, one of "reply MSG <server-addr>
# MSG", "timeout MSG", "eof MSG", "error MSG <exception>" (peer.py session).
sess_send() {
	local out=${SESS_OUT[$1]}
	printf 'send %s\n' "$2" >&"${SESS_FD[$1]}"
	wait_until 8 sess_answered "$out" "$2"
	sess_result "$out" "$2"
}

# sess_result OUT MSG: the line of session output file OUT about MSG.
sess_result() {
	awk -v m="$2" '$2 == m' "$1" | head -1
}

sess_answered() {
	[ -n "$(sess_result "$1" "$2")" ]
}

# sess_ok NAME MSG BACKEND: MSG goes over session NAME and comes back from
# BACKEND.
sess_ok() {
	assert_eq "session $1 ($CASE_NAME) sends '$2'" "$(sess_send "$1" "$2")" "reply $2 $3 $2"
}

# sess_close_all: close the fifos of this case's sessions (their processes
# go with the topology).
sess_close_all() {
	local fd
	for fd in "${SESS_FD[@]}"; do
		exec {fd}>&-
	done
	SESS_FD=() SESS_OUT=() SESS_PORT=()
}

# run_case NAME FUNC: a fresh topology, FUNC, teardown; counts the result.
# FUNC returns 0 (its asserts decide), SKIP, or non-zero on a fatal error.
run_case() {
	local name=$1 func=$2 rc t0=$SECONDS
	CASE_NAME=$name CASE_FAILED=0
	log "--- $name"
	if ! "$TOPO_BUILDER"; then
		err "could not build the test topology"
		rc=1
	else
		"$func"
		rc=$?
	fi
	if [ $rc -ne 0 ] && [ $rc -ne $SKIP ] && [ $CASE_FAILED -eq 0 ]; then
		err "case aborted (rc $rc)"
	fi
	if [ $CASE_FAILED -ne 0 ]; then
		dump_state
	fi
	topo_destroy
	if [ $CASE_FAILED -ne 0 ]; then
		N_FAIL=$((N_FAIL + 1)); log "FAIL $name ($((SECONDS - t0))s)"
	elif [ $rc -eq $SKIP ]; then
		N_SKIP=$((N_SKIP + 1)); log "SKIP $name"
	else
		N_PASS=$((N_PASS + 1)); log "PASS $name ($((SECONDS - t0))s)"
	fi
}

# dump_state: what a failing case leaves, for the log.
dump_state() {
	[ -n "$NS_R" ] && [ -e "/run/netns/$NS_R" ] || return 0
	{
		echo "xdpfwd status:"; xdpfwd status 2>&1
		echo "xdpfwd stats:"; xdpfwd stats 2>&1
	} | head -60 | sed 's/^/        /'
}

# finish LABEL: the summary line run.sh reads; the exit status.
finish() {
	[ $N_SKIP -gt 0 ] && log "($N_SKIP skipped)"
	log "$1: $N_PASS passed, $N_FAIL failed"
	[ $N_FAIL -eq 0 ]
}

# need_root_and_binary: common preconditions of an e2e file.
need_root_and_binary() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "e2e tests need root" >&2; return 1
	fi
	if [ ! -x "$XDPFWD_BIN" ]; then
		echo "missing $XDPFWD_BIN: run make first" >&2; return 1
	fi
	if ! stat -f -c %T /sys/fs/bpf 2>/dev/null | grep -q bpf; then
		echo "/sys/fs/bpf is not a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)" >&2; return 1
	fi
}
