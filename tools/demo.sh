#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# See xdpfwd working: three throw-away network namespaces,
#
#   client 203.0.113.2 --- 203.0.113.1 [router: xdpfwd] 198.51.100.1 --- 198.51.100.2 server
#
# a web server on the server, `xdpfwd add tcp 8080 198.51.100.2:80` in the
# router, and the client fetching http://203.0.113.1:8080/ through it. The
# router's kernel forwarding is off, so XDP carries every packet. Everything
# is removed on exit, whatever happens. Needs root (sudo make demo).

. "$(dirname "$0")/../tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: needs root (try: sudo make demo)" >&2
	exit 1
fi
if [ ! -x "$XDPFWD_BIN" ]; then
	echo "demo.sh: $XDPFWD_BIN missing: run make first" >&2
	exit 1
fi

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B='' N=''; fi
step() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; }
die() { echo "demo.sh: $*" >&2; exit 1; }

echo "Building namespaces (client, router, server)..."
topo_create || die "could not build the namespaces"
router_forwarding 0
gro on || die "could not turn on GRO on the veth ends"
echo "  client $NS_C  router $NS_R  server $NS_S  pins $PIN_DIR"

mkdir -p "$WORK_DIR/www"
cat > "$WORK_DIR/www/index.html" <<EOF
<html><body><h1>Hello from the server, 198.51.100.2</h1>
<p>This page went through xdpfwd on the router, forwarding off.</p></body></html>
EOF
bg "$NS_S" "$PY" "$TESTS_DIR/e2e/peer.py" http "$SERVER_ADDR" 80 "$WORK_DIR/www" \
	>"$WORK_DIR/http.log" 2>&1
wait_until 10 nsx "$NS_S" curl -sf --max-time 1 -o /dev/null "http://$SERVER_ADDR/" ||
	die "the web server did not start"

step "xdpfwd load wan lan"
xdpfwd load wan lan || die "load failed"
step "xdpfwd add tcp 8080 $SERVER_ADDR:80 --name web"
xdpfwd add tcp 8080 "$SERVER_ADDR:80" --name web || die "add failed"
step "xdpfwd list"
xdpfwd list

step "curl http://$ROUTER_WAN_ADDR:8080/    (in the client namespace)"
nsx "$NS_C" timeout 15 curl -sS --max-time 10 -D - "http://$ROUTER_WAN_ADDR:8080/" ||
	die "the fetch through the forward failed"

step "xdpfwd stats"
xdpfwd stats
step "xdpfwd status"
xdpfwd status

step "xdpfwd unload --all"
xdpfwd unload --all
echo
echo "Tearing down the namespaces. Done."
