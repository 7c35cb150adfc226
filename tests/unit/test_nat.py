#!/usr/bin/python3
"""Packet-level unit tests of xdpfwd's NAT modes (issue 4): source NAT and
its port choice, hairpin/one-arm, port ranges, allowlists and the handover
of source-NATed packets to TC.

Run as root from the repository root:
    /usr/bin/python3 tests/unit/test_nat.py [TEST_NAME...]

Builds a private namespace (tests/unit/topo.py), loads xdpfwd there and runs
scapy-built frames through the pinned prog_native with BPF_PROG_TEST_RUN.
Every expected frame is built by scapy, checksums included, and compared
byte for byte; a port the datapath chooses is read from its output, checked
against the config's SNAT range and the connection tables, then put into
the expected frame. Ends with "nat: N passed, M failed"; exit 1 on any
failure.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpfsys  # noqa: E402
from bpfsys import XDP_DROP, XDP_PASS, XDP_REDIRECT  # noqa: E402
import topo  # noqa: E402
from topo import (client_port, l4_layer, Link, Topo, check, concrete, translated, flow_key,  # noqa: E402
                  header_define, expect_verdict, expect_bytes, scapy_checksums_ok)

from scapy.layers.l2 import Ether  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402

# WAN side (TEST-NET-3): this host, clients.
WAN_IP, WAN0_MAC = "203.0.113.1", "02:00:00:00:01:01"
CLIENT_IP, CLIENT_MAC = "203.0.113.50", "02:00:00:00:71:50"
# LAN side (TEST-NET-2): this host's two addresses, backends, a LAN client.
LAN_IP, LAN_IP2, LAN0_MAC = "198.51.100.1", "198.51.100.2", "02:00:00:00:02:01"
BACKEND5, BACKEND5_MAC = "198.51.100.5", "02:00:00:00:64:05"
BACKEND6, BACKEND6_MAC = "198.51.100.6", "02:00:00:00:64:06"
NONEIGH_IP = "198.51.100.8"          # on lan0's subnet, never answers ARP
LAN_CLIENT, LAN_CLIENT_MAC = "198.51.100.50", "02:00:00:00:64:32"
# A slow egress (TEST-NET-1): its veth peer has no GRO, so it takes no
# XDP-redirected frames.
SLOW_IP, SLOW0_MAC = "192.0.2.1", "02:00:00:00:03:01"
SLOW_BACKEND, SLOW_BACKEND_MAC = "192.0.2.7", "02:00:00:00:c0:07"
NOROUTE_IP = "10.254.0.1"            # no route in the namespace

# backend address -> (its MAC, the interface it is on, that interface's MAC)
BACKENDS = {BACKEND5: (BACKEND5_MAC, "lan0", LAN0_MAC),
            BACKEND6: (BACKEND6_MAC, "lan0", LAN0_MAC),
            SLOW_BACKEND: (SLOW_BACKEND_MAC, "slow0", SLOW0_MAC)}
# client address -> (its MAC, the interface it is on, that interface's MAC)
SLOW_CLIENT, SLOW_CLIENT_MAC = "192.0.2.50", "02:00:00:00:c0:32"
CLIENTS = {LAN_CLIENT: (LAN_CLIENT_MAC, "lan0", LAN0_MAC),
           SLOW_CLIENT: (SLOW_CLIENT_MAC, "slow0", SLOW0_MAC)}
WAN_CLIENT_MAC = CLIENT_MAC          # every other client is behind wan0

PROTO = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
STATES = header_define("XDPFWD_CT_STATE_NAMES")
ORIG, REPLY = 0, 1
SEEN_REPLY, ASSURED, CT_SNAT = 0x01, 0x02, 0x10      # XDPFWD_CT_F_*
TC_HANDOVER = 0x78646677             # the XDP metadata TC ingress looks for
STATS_SIZE = 40                      # struct xdpfwd_rule_stats


class Rule:
    """A rule as `xdpfwd add` takes it."""

    def __init__(self, name, proto, ext_port, int_addr, int_port=None, nports=1,
                 snat=None, allow=()):
        self.name, self.proto, self.ext_port = name, proto, ext_port
        self.int_addr, self.int_port, self.nports = int_addr, int_port, nports
        self.snat, self.allow = snat, list(allow)

    def args(self):
        ext = str(self.ext_port) if self.nports == 1 else \
            "%d-%d" % (self.ext_port, self.ext_port + self.nports - 1)
        back = self.int_addr + (":%d" % self.int_port if self.int_port else "")
        out = [self.proto, ext, back, "--name", self.name]
        if self.snat:
            out += ["--snat", self.snat]
        for cidr in self.allow:
            out += ["--allow", cidr]
        return out

    def backend_port(self, dport):
        """The backend port of external port @dport: the offset into the
        range kept, the port itself without a backend port."""
        return self.int_port + dport - self.ext_port if self.int_port else dport

    def rule_id(self):
        raw = bpfsys.map_lookup(T.map_fd("rule_ports"), socket.inet_aton("0.0.0.0") +
                                struct.pack("!HBB", self.ext_port, PROTO[self.proto], 0), 4)
        check(raw is not None, "rule_ports holds no entry for %s %d, the first "
              "port of rule %s" % (self.proto, self.ext_port, self.name))
        return struct.unpack("=I", raw)[0]


R_SNAT = Rule("snat-fixed", "tcp", 8443, BACKEND5, 443, snat=LAN_IP2)
R_SNAT_UDP = Rule("snat-auto-udp", "udp", 5300, BACKEND6, 53, snat="auto")
R_PLAIN = Rule("plain", "tcp", 8180, BACKEND5, 80)
R_RANGE = Rule("range", "tcp", 8000, BACKEND5, 9000, nports=100)
R_RANGE_SAME = Rule("range-same", "udp", 7000, BACKEND6, nports=10)
R_ALLOW = Rule("allow", "tcp", 8600, BACKEND5, 86,
               allow=["203.0.113.0/28", "10.20.0.0/16"])
R_ALLOW2 = Rule("allow2", "tcp", 8601, BACKEND5, 87, allow=["203.0.113.48/28"])
R_SLOW = Rule("slow-snat", "tcp", 8700, SLOW_BACKEND, 87, snat="auto")
R_SLOW_PLAIN = Rule("slow-plain", "tcp", 8701, SLOW_BACKEND, 88)
R_NONEIGH = Rule("noneigh-snat", "tcp", 8181, NONEIGH_IP, 81, snat=LAN_IP2)
R_NOROUTE = Rule("noroute-snat", "tcp", 8900, NOROUTE_IP, 89, snat="auto")
RULES = [R_SNAT, R_SNAT_UDP, R_PLAIN, R_RANGE, R_RANGE_SAME, R_ALLOW, R_ALLOW2,
         R_SLOW, R_SLOW_PLAIN, R_NONEIGH, R_NOROUTE]

T = Topo("xfn",
         links=[Link("wan0", WAN0_MAC, "wan0p", "02:00:00:00:01:02", [WAN_IP + "/24"]),
                Link("lan0", LAN0_MAC, "lan0p", "02:00:00:00:02:02",
                     [LAN_IP + "/24", LAN_IP2 + "/24"]),
                Link("slow0", SLOW0_MAC, "slow0p", "02:00:00:00:03:02",
                     [SLOW_IP + "/24"], gro=False)],
         neighbours=[(CLIENT_IP, CLIENT_MAC, "wan0"),
                     ("203.0.113.5", CLIENT_MAC, "wan0"),
                     (BACKEND5, BACKEND5_MAC, "lan0"),
                     (BACKEND6, BACKEND6_MAC, "lan0"),
                     (LAN_CLIENT, LAN_CLIENT_MAC, "lan0"),
                     (SLOW_BACKEND, SLOW_BACKEND_MAC, "slow0"),
                     (SLOW_CLIENT, SLOW_CLIENT_MAC, "slow0")],
         load=["wan0", "lan0", "slow0"],
         rules=[r.args() for r in RULES])


# --------------------------------------------------------------------------
# Packets.

class Conn:
    """A connection from @client:@sport to @ext:@dport through @rule; what
    it leaves as (the backend's view) is learnt from its first packet."""

    def __init__(self, rule, client=CLIENT_IP, ext=WAN_IP, dport=None, sport=None):
        self.rule, self.proto = rule, rule.proto
        self.client, self.ext = client, ext
        self.dport = dport or rule.ext_port
        self.sport = sport or client_port()
        self.client_mac, self.client_dev, self.client_dev_mac = CLIENTS.get(
            client, (WAN_CLIENT_MAC, "wan0", WAN0_MAC))
        self.out = None         # (saddr, daddr, sport, dport) toward the backend

    def orig(self, flags="S", payload=b"", ttl=64, csum=None):
        return concrete(Ether(src=self.client_mac, dst=self.client_dev_mac) /
                        IP(src=self.client, dst=self.ext, ttl=ttl, id=0x1234) /
                        l4_layer(self.proto, self.sport, self.dport, flags,
                                 payload, csum))

    def reply(self, flags="SA", payload=b"", csum=None, to=None):
        """The backend's answer to (its view of) the client; @to: another
        (address, port) to send it to."""
        saddr, daddr, sport, dport = self.out
        mac, _, dev_mac = BACKENDS[daddr]
        to_addr, to_port = to or (saddr, sport)
        return concrete(Ether(src=mac, dst=dev_mac) /
                        IP(src=daddr, dst=to_addr, ttl=64, id=0x4321) /
                        l4_layer(self.proto, dport, to_port, flags, payload, csum))

    def orig_key(self):
        return flow_key(self.client, self.ext, self.sport, self.dport,
                        PROTO[self.proto])

    def reply_key(self):
        saddr, daddr, sport, dport = self.out
        return flow_key(daddr, saddr, dport, sport, PROTO[self.proto])

    def send_orig(self, what, snat_addr=None, dev=None, **kw):
        """Send a client packet; it must leave DNATed to the backend and,
        with @snat_addr, source-NATed to it from a port of the config's
        SNAT range (the first packet's choice, kept afterwards)."""
        pkt = self.orig(**kw)
        backend, bport = self.rule.int_addr, self.rule.backend_port(self.dport)
        mac, _, dev_mac = BACKENDS[backend]
        v, out = T.run(pkt, dev or self.client_dev)
        expect_verdict(v, XDP_REDIRECT, what)
        src, sport = self.client, self.sport
        if snat_addr:
            sport = snat_port_of(out, what) if self.out is None else self.out[2]
            src = snat_addr
        keep = self.proto == "udp" and pkt[UDP].chksum == 0
        expect_bytes(out, translated(pkt, mac, dev_mac, keep_l4_csum=keep, src=src,
                                     sport=sport, dst=backend, dport=bport),
                     what + " (should leave as %s:%d -> %s:%d)" %
                     (src, sport, backend, bport))
        scapy_checksums_ok(out, what, udp_zero_ok=keep)
        self.out = (src, backend, sport, bport)
        return pkt, out

    def send_reply(self, what, **kw):
        """Send a backend packet; it must reach the client from the address
        and port the client sent to."""
        pkt = self.reply(**kw)
        _, dev, _ = BACKENDS[self.out[1]]
        v, out = T.run(pkt, dev)
        expect_verdict(v, XDP_REDIRECT, what)
        keep = self.proto == "udp" and pkt[UDP].chksum == 0
        expect_bytes(out, translated(pkt, self.client_mac, self.client_dev_mac,
                                     keep_l4_csum=keep, src=self.ext, sport=self.dport,
                                     dst=self.client, dport=self.sport),
                     what + " (should reach the client as %s:%d -> %s:%d)" %
                     (self.ext, self.dport, self.client, self.sport))
        scapy_checksums_ok(out, what, udp_zero_ok=keep)
        return pkt, out

    def expect_entries(self, what, snat, table="flows_new", flags=None):
        """Both entries in @table, each translating to the other's key: the
        original one to self.out, the reply one back to what the client
        sent; the SNAT flag as @snat says."""
        o = T.flow(table, self.orig_key())
        check(o is not None, "%s: no original-direction entry for %s:%d -> "
              "%s:%d in %s (it is in %s)" % (what, self.client, self.sport,
                                              self.ext, self.dport, table,
                                              T.flow_tables(self.orig_key()) or
                                              "no table"))
        check(o.tuple() == self.out, "%s: the original entry should translate to "
              "%s, it holds %s" % (what, self.out, o.tuple()))
        check(o.dir == ORIG and bool(o.flags & CT_SNAT) == snat,
              "%s: the original entry should have dir 0, %s the SNAT flag; it has "
              "dir %d, flags 0x%x" % (what, "with" if snat else "without", o.dir,
                                      o.flags))
        if flags is not None:
            check(o.flags == flags, "%s: the connection's flags should be 0x%x, "
                  "they are 0x%x" % (what, flags, o.flags))
        r = T.flow(table, self.reply_key())
        check(r is not None, "%s: no reply-direction entry under %s:%d -> %s:%d "
              "in %s (it is in %s)" % (what, self.out[1], self.out[3], self.out[0],
                                       self.out[2], table,
                                       T.flow_tables(self.reply_key()) or "no table"))
        want = (self.ext, self.client, self.dport, self.sport)
        check(r.tuple() == want and r.dir == REPLY,
              "%s: the reply entry should translate to %s with dir 1, it holds "
              "%s with dir %d" % (what, want, r.tuple(), r.dir))
        return o

    def expect_no_entries(self, what):
        keys = [("original", self.orig_key())]
        if self.out:
            keys.append(("reply", self.reply_key()))
        for name, key in keys:
            check(not T.flow_tables(key), "%s: the %s-direction entry should not "
                  "exist, it is in %s" % (what, name, T.flow_tables(key)))


def snat_port_of(out, what):
    """The source port of the output frame @out, which must lie in the
    config's SNAT range."""
    p = Ether(out)
    check(TCP in p or UDP in p, "%s: the output is neither TCP nor UDP" % what)
    sport = (p[TCP] if TCP in p else p[UDP]).sport
    lo, hi = T.snat_range()
    check(lo <= sport <= hi, "%s: the source port %d should lie in the SNAT range "
          "%d-%d of the config" % (what, sport, lo, hi))
    return sport


def expect_reason(before, name, n, what):
    after = T.reasons()
    check(after.get(name, 0) - before.get(name, 0) == n,
          "%s: the %s counter should have gone up by %d but went from %d to %d" %
          (what, name, n, before.get(name, 0), after.get(name, 0)))


def expect_untouched(frame, dev, what, reason=None):
    before = T.reasons()
    v, out = T.run(frame, dev)
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, bytes(frame), what + " (should pass untouched)")
    if reason:
        expect_reason(before, reason, 1, what)


def expect_dropped(frame, dev, reason, what):
    before = T.reasons()
    v, _, _ = T.run_meta(frame, dev)
    expect_verdict(v, XDP_DROP, what)
    expect_reason(before, reason, 1, what)


def cli_rule(rule, command="list"):
    """The row of `xdpfwd -j list` (or stats) for @rule."""
    out = T.xdpfwd(command, json_out=True)
    rows = out["rules"] if command == "stats" else out
    rows = [r for r in rows if r.get("name") == rule.name]
    check(len(rows) == 1, "xdpfwd -j %s should show one rule named %s, it shows %d"
          % (command, rule.name, len(rows)))
    return rows[0]


def denied(rule):
    """rule_stats.denied_packets of @rule, summed over the CPUs."""
    ncpu = bpfsys.possible_cpus()
    raw = bpfsys.map_lookup(T.map_fd("rule_stats"), struct.pack("=I", rule.rule_id()),
                            STATS_SIZE * ncpu)
    return sum(struct.unpack_from("=Q", raw, STATS_SIZE * c + 32)[0]
               for c in range(ncpu))


# --------------------------------------------------------------------------
# Source NAT: the port it chooses.

def test_snat_range_outside_ephemeral_ports():
    # As the CLI writes it at creation: the larger stretch of unprivileged
    # ports below or above the namespace's ephemeral ports.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        elo, ehi = (int(x) for x in f.read().split())
    below, above = (1024, elo - 1), (ehi + 1, 65535)
    want = below if below[1] - below[0] >= above[1] - above[0] else above
    check(want[1] - want[0] >= 1023, "test setup: the namespace's ephemeral ports "
          "%d-%d leave no stretch of 1024 ports for SNAT" % (elo, ehi))
    got = struct.unpack_from("=HH", T.config(), topo.CONFIG_SNAT_OFF)
    check(got == want, "the config's SNAT range should be %d-%d, the larger "
          "stretch outside the namespace's ephemeral ports %d-%d, it is %d-%d" %
          (want + (elo, ehi) + got))


def test_snat_ports_distinct():
    # Many connections to one backend port from one SNAT address: each must
    # get a source port of its own, else replies would reach the wrong client.
    clients = ["203.0.113.%d" % i for i in (50, 100, 101, 102, 103)]
    seen = {}
    for i in range(2000):
        c = Conn(R_SNAT, client=clients[i % len(clients)], sport=30000 + i // 5)
        c.send_orig("SYN #%d from %s:%d" % (i, c.client, c.sport), snat_addr=LAN_IP2)
        port = c.out[2]
        holder = seen.setdefault(port, (c.client, c.sport))
        check(holder == (c.client, c.sport), "SYN #%d from %s:%d got SNAT port %d, "
              "which %s:%d already holds toward %s:443" %
              ((i, c.client, c.sport, port) + holder + (BACKEND5,)))
        c.expect_entries("after SYN #%d" % i, True, flags=CT_SNAT)


def fill_range(ports, what, bound=3000):
    """Open connections through R_SNAT until every port of @ports is taken;
    each must get a free port of @ports or be dropped (drop_snat_no_port)
    leaving no entry. Returns {port: Conn}."""
    held = {}
    refused = 0
    before = T.reasons()
    for i in range(bound):
        if len(held) == len(ports):
            break
        c = Conn(R_SNAT)
        pkt = c.orig(flags="S")
        v, out = T.run(pkt, "wan0")
        if v == XDP_DROP:
            refused += 1
            c.expect_no_entries("%s: a refused SYN" % what)
            continue
        expect_verdict(v, XDP_REDIRECT, "%s: SYN #%d" % (what, i))
        port = Ether(out)[TCP].sport
        check(port in ports and port not in held,
              "%s: SYN #%d got SNAT port %d, %s" %
              (what, i, port, "already held by another connection" if port in held
               else "outside the range %d-%d" % (min(ports), max(ports))))
        expect_bytes(out, translated(pkt, BACKEND5_MAC, LAN0_MAC, src=LAN_IP2,
                                     sport=port, dst=BACKEND5, dport=443),
                     "%s: SYN #%d" % (what, i))
        c.out = (LAN_IP2, BACKEND5, port, 443)
        c.expect_entries("%s: after SYN #%d" % (what, i), True)
        held[port] = c
    check(len(held) == len(ports), "%s: %d SYNs took only %d of the %d ports" %
          (what, bound, len(held), len(ports)))
    expect_reason(before, "drop_snat_no_port", refused,
                  "%s (%d SYNs refused on the way)" % (what, refused))
    return held


def test_snat_narrow_range_exhausted():
    saved = T.config()
    lo, hi = 50000, 50039
    try:
        T.set_snat_range(lo, hi)
        ports = set(range(lo, hi + 1))
        held = fill_range(ports, "40 SNAT ports %d-%d" % (lo, hi))
        before = T.reasons()
        for i in range(20):
            c = Conn(R_SNAT)
            what = "SYN #%d once all 40 ports are held" % (i + 1)
            v, _ = T.run(c.orig(flags="S"), "wan0")
            expect_verdict(v, XDP_DROP, what)
            c.expect_no_entries(what)
        expect_reason(before, "drop_snat_no_port", 20, "20 SYNs with every port held")
        for port, c in held.items():
            c.expect_entries("a connection holding port %d after the refusals" % port,
                             True)
        flushed = T.xdpfwd("conntrack", "flush", json_out=True)
        check(flushed.get("removed", 0) >= 40, "`xdpfwd conntrack flush` should "
              "remove at least the 40 connections holding ports, it says %r" %
              (flushed,))
        for port, c in held.items():
            c.expect_no_entries("after the flush, the connection that held port %d"
                                % port)
        fill_range(ports, "40 SNAT ports after a flush")
    finally:
        bpfsys.map_update(T.map_fd("config"), struct.pack("=I", 0), saved)


def test_snat_port_of_expired_connection_reused():
    # One port: each SYN's tries can only pick it, so the outcome is certain.
    saved = T.config()
    try:
        T.set_snat_range(50100, 50100)
        old = fill_range({50100}, "1 SNAT port")[50100]
        c = Conn(R_SNAT)
        what = "a SYN while port 50100 is held by a live connection"
        v, _ = T.run(c.orig(flags="S"), "wan0")
        expect_verdict(v, XDP_DROP, what)
        c.expect_no_entries(what)
        i = STATES.index("syn_sent")
        tmo = struct.unpack_from("=10I", T.config())[i] or \
            header_define("XDPFWD_CT_DEFAULT_TIMEOUTS")[i]
        o = T.flow("flows_new", old.orig_key())
        bpfsys.map_update(T.map_fd("flows_new"), old.orig_key(),
                          o.with_seen(time.monotonic_ns() - (tmo + 2) * 10**9),
                          bpfsys.BPF_EXIST)
        c = Conn(R_SNAT)
        c.send_orig("a SYN once the connection holding port 50100 has been idle "
                    "%d s (timeout %d s)" % (tmo + 2, tmo), snat_addr=LAN_IP2)
        check(c.out[2] == 50100, "a new connection should take port 50100 of the "
              "expired connection, it got %d" % c.out[2])
        c.expect_entries("the connection that took an expired one's port", True)
        check(not T.flow_tables(old.orig_key()), "the expired connection's original "
              "entry is still in %s" % T.flow_tables(old.orig_key()))
    finally:
        bpfsys.map_update(T.map_fd("config"), struct.pack("=I", 0), saved)


def test_snat_port_of_orphaned_reply_reused():
    # The LRU may evict a connection's original entry and leave its reply
    # entry: once that is older than a connection takes to be made, its port
    # is free again; a younger one may be a connection being made.
    saved = T.config()
    try:
        T.set_snat_range(50150, 50150)
        old = fill_range({50150}, "1 SNAT port")[50150]
        bpfsys.map_delete(T.map_fd("flows_new"), old.orig_key())
        c = Conn(R_SNAT)
        what = "a SYN while port 50150 is held by a reply entry made just now, " \
               "its original entry gone"
        v, _ = T.run(c.orig(flags="S"), "wan0")
        expect_verdict(v, XDP_DROP, what)
        c.expect_no_entries(what)
        r = T.flow("flows_new", old.reply_key())
        check(r is not None, "%s: the young reply entry should be left alone" % what)
        bpfsys.map_update(T.map_fd("flows_new"), old.reply_key(),
                          r.with_created(time.monotonic_ns() - 2 * 10**9),
                          bpfsys.BPF_EXIST)
        c = Conn(R_SNAT)
        c.send_orig("a SYN once the orphaned reply entry holding port 50150 is 2 s old",
                    snat_addr=LAN_IP2)
        check(c.out[2] == 50150, "a new connection should take port 50150 of the "
              "orphaned reply entry, it got %d" % c.out[2])
        c.expect_entries("the connection that took an orphaned entry's port", True)
    finally:
        bpfsys.map_update(T.map_fd("config"), struct.pack("=I", 0), saved)


def test_snat_default_range_when_config_says_zero():
    saved = T.config()
    try:
        T.set_snat_range(0, 0)
        lo, hi = (topo.header_value(n) for n in ("XDPFWD_SNAT_PORT_MIN",
                                                 "XDPFWD_SNAT_PORT_MAX"))
        for i in range(50):
            c = Conn(R_SNAT)
            c.send_orig("SYN #%d with the config's range 0-0" % i, snat_addr=LAN_IP2)
            check(lo <= c.out[2] <= hi, "with the config's SNAT range 0-0, SYN #%d "
                  "should get a port of the built-in range %d-%d, it got %d" %
                  (i, lo, hi, c.out[2]))
    finally:
        bpfsys.map_update(T.map_fd("config"), struct.pack("=I", 0), saved)


# --------------------------------------------------------------------------
# Source NAT: both directions of a connection.

def test_snat_reply_translated():
    c = Conn(R_SNAT)
    c.send_orig("a SYN through a --snat %s rule" % LAN_IP2, snat_addr=LAN_IP2)
    c.expect_entries("after the SYN", True, flags=CT_SNAT)
    c.send_reply("the backend's SYN-ACK to %s:%d" % (LAN_IP2, c.out[2]), flags="SA")
    c.send_orig("the client's ACK", snat_addr=LAN_IP2, flags="A")
    c.expect_entries("after the handshake", True, table="flows",
                     flags=CT_SNAT | SEEN_REPLY | ASSURED)
    c.send_reply("backend data", flags="PA", payload=b"r" * 333)
    c.send_orig("client data", snat_addr=LAN_IP2, flags="PA", payload=b"q" * 77)
    # the backend's answer to the client's own tuple is no reply of ours
    expect_untouched(c.reply(flags="PA", payload=b"x", to=(CLIENT_IP, c.sport)),
                     "lan0", "a backend segment to the client's own address and "
                     "port (not the SNAT tuple)", "pass_no_match")
    free = c.out[2] + 1 if c.out[2] < T.snat_range()[1] else c.out[2] - 1
    expect_untouched(c.reply(flags="PA", payload=b"x", to=(LAN_IP2, free)),
                     "lan0", "a backend segment to %s:%d, a port no connection "
                     "holds" % (LAN_IP2, free), "pass_no_match")


def test_snat_auto_udp():
    for csum in (None, 0):
        c = Conn(R_SNAT_UDP)
        kind = "with checksum 0" if csum == 0 else "with a checksum"
        c.send_orig("a datagram %s through a --snat auto rule (the route to "
                    "%s prefers %s)" % (kind, BACKEND6, LAN_IP), snat_addr=LAN_IP,
                    payload=b"query" * 7, csum=csum)
        c.expect_entries("after a datagram %s" % kind, True, flags=CT_SNAT)
        c.send_reply("the backend's answer %s" % kind, payload=b"answer" * 9, csum=csum)
        c.expect_entries("after the answer %s" % kind, True, table="flows",
                         flags=CT_SNAT | SEEN_REPLY | ASSURED)


def test_one_arm_source_nated():
    # A LAN client reaching a LAN backend through this host: without SNAT
    # the backend would answer the client directly, past the translation.
    c = Conn(R_PLAIN, client=LAN_CLIENT, ext=LAN_IP)
    before = T.reasons()
    c.send_orig("a LAN client's SYN to %s:8180, backend on lan0 too (a rule "
                "without --snat)" % LAN_IP, snat_addr=LAN_IP)
    expect_reason(before, "fwd_tx", 1, "a SYN sent back out lan0")
    c.expect_entries("after a one-arm SYN", True, flags=CT_SNAT)
    c.send_reply("the backend's SYN-ACK to %s:%d" % (LAN_IP, c.out[2]))
    w = Conn(R_PLAIN)
    w.send_orig("a WAN client's SYN through the same rule (not source-NATed)")
    w.expect_entries("after a WAN client's SYN", False, flags=0)
    w.send_reply("the backend's SYN-ACK to the WAN client")


def test_snat_auto_without_route_dropped():
    c = Conn(R_NOROUTE)
    expect_dropped(c.orig(flags="S"), "wan0", "drop_snat_no_addr",
                   "a SYN through a --snat auto rule to %s, which has no route"
                   % NOROUTE_IP)
    c.expect_no_entries("after a SYN with no SNAT address")


# --------------------------------------------------------------------------
# Port ranges.

def test_port_range_offset_kept():
    for port in (8000, 8042, 8099):
        c = Conn(R_RANGE, dport=port)
        c.send_orig("a SYN to port %d of the range 8000-8099 (-> 9000)" % port)
        c.send_reply("the SYN-ACK from backend port %d" % R_RANGE.backend_port(port))
    for port in (7999, 8100):
        expect_untouched(Conn(R_RANGE, dport=port).orig(flags="S"), "wan0",
                         "a SYN to port %d, just outside the range 8000-8099" % port,
                         "pass_no_match")
    for port in (7000, 7005, 7009):
        c = Conn(R_RANGE_SAME, dport=port)
        c.send_orig("a datagram to port %d of a range without a backend port" % port)
        c.send_reply("the answer from backend port %d" % port)
    for port in (6999, 7010):
        expect_untouched(Conn(R_RANGE_SAME, dport=port).orig(), "wan0",
                         "a datagram to port %d, just outside the range 7000-7009"
                         % port, "pass_no_match")


def test_port_range_listed():
    for rule, want in ((R_RANGE, (8000, 8099, 9000, 9099)),
                       (R_RANGE_SAME, (7000, 7009, 7000, 7009)),
                       (R_SNAT, (8443, 8443, 443, 443))):
        row = cli_rule(rule)
        got = tuple(row.get(k) for k in ("ext_port", "ext_port_end", "int_port",
                                         "int_port_end"))
        check(got == want, "xdpfwd -j list should show rule %s with ext_port, "
              "ext_port_end, int_port, int_port_end %s, it shows %s" %
              (rule.name, want, got))
    rid = R_RANGE.rule_id()
    fd = T.map_fd("rule_ports")
    for port in range(7990, 8110):
        raw = bpfsys.map_lookup(fd, socket.inet_aton("0.0.0.0") +
                                struct.pack("!HBB", port, socket.IPPROTO_TCP, 0), 4)
        inside = 8000 <= port <= 8099
        check((raw is not None) == inside and (not inside or
                                               struct.unpack("=I", raw)[0] == rid),
              "rule_ports should %s tcp port %d%s, it holds %s" %
              ("map" if inside else "not hold", port,
               " to rule id %d" % rid if inside else "",
               struct.unpack("=I", raw)[0] if raw else "nothing"))


# --------------------------------------------------------------------------
# Allowlists.

def test_allowlist():
    row = cli_rule(R_ALLOW)
    check(sorted(row.get("allow") or []) == sorted(R_ALLOW.allow),
          "xdpfwd -j list should show rule %s's allowlist %s, it shows %r" %
          (R_ALLOW.name, R_ALLOW.allow, row.get("allow")))
    for src in ("203.0.113.5", "203.0.113.0", "203.0.113.15", "10.20.3.4"):
        c = Conn(R_ALLOW, client=src)
        c.send_orig("a SYN from %s, inside the allowlist %s" % (src, R_ALLOW.allow))
        c.expect_entries("after an admitted SYN from %s" % src, False)
    c = Conn(R_ALLOW, client="203.0.113.5")
    c.send_orig("a SYN from 203.0.113.5", flags="S")
    c.send_reply("the backend's SYN-ACK to an admitted client")
    c.send_orig("the admitted client's ACK", flags="A")
    stats0 = cli_rule(R_ALLOW, "stats")
    other0 = denied(R_ALLOW2)
    n = 0
    for src in ("203.0.113.16", CLIENT_IP, "10.21.0.1", "198.51.100.50"):
        for flags in ("S", "A"):
            c = Conn(R_ALLOW, client=src)
            what = "a TCP %s from %s, outside the allowlist %s" % (
                "SYN" if flags == "S" else "ACK", src, R_ALLOW.allow)
            before = denied(R_ALLOW)
            expect_dropped(c.orig(flags=flags), "wan0", "drop_denied", what)
            check(denied(R_ALLOW) == before + 1, "%s: the rule's denied_packets "
                  "should have gone up by 1, from %d, it reads %d" %
                  (what, before, denied(R_ALLOW)))
            c.expect_no_entries(what)
            n += 1
    stats = cli_rule(R_ALLOW, "stats")
    check(stats.get("denied_packets") == stats0.get("denied_packets", 0) + n,
          "xdpfwd -j stats should show %d more denied_packets for rule %s, it went "
          "from %s to %s" % (n, R_ALLOW.name, stats0.get("denied_packets"),
                             stats.get("denied_packets")))
    for k in ("orig_packets", "orig_bytes", "reply_packets", "reply_bytes"):
        check(stats.get(k) == stats0.get(k), "the %s of rule %s changed from %s to "
              "%s for refused packets alone" % (k, R_ALLOW.name, stats0.get(k),
                                                stats.get(k)))
    check(denied(R_ALLOW2) == other0, "rule %s's denied_packets changed from %d to "
          "%d for packets to another rule" % (R_ALLOW2.name, other0, denied(R_ALLOW2)))
    # each rule its own allowlist
    Conn(R_ALLOW2).send_orig("a SYN from %s, inside rule %s's allowlist %s" %
                             (CLIENT_IP, R_ALLOW2.name, R_ALLOW2.allow))
    expect_dropped(Conn(R_ALLOW2, client="203.0.113.5").orig(), "wan0",
                   "drop_denied", "a SYN from 203.0.113.5 (admitted by rule %s) "
                   "to rule %s, whose allowlist is %s" %
                   (R_ALLOW.name, R_ALLOW2.name, R_ALLOW2.allow))
    check(denied(R_ALLOW2) == other0 + 1, "rule %s's denied_packets should have "
          "gone up by 1 from %d, it reads %d" % (R_ALLOW2.name, other0,
                                                 denied(R_ALLOW2)))


# --------------------------------------------------------------------------
# Handing source-NATed packets to TC.

def expect_marked(pkt, dev, want_tuple, what, reason, generic=False):
    """@pkt, of a source-NATed connection, which XDP cannot send: XDP_PASS,
    translated to @want_tuple (a None port: one of the SNAT range), TTL - 1,
    MACs as they came, the handover mark in the metadata. Returns the
    tuple it left with."""
    before = T.reasons()
    v, meta, out = T.run_meta(pkt, dev, generic=generic)
    expect_verdict(v, XDP_PASS, what)
    check(meta == struct.pack("=I", TC_HANDOVER), "%s: the frame should carry the "
          "4-byte metadata 0x%08x for TC ingress, it carries %s" %
          (what, TC_HANDOVER, meta.hex() or "none"))
    src, dst, sport, dport = want_tuple
    if sport is None:
        sport = snat_port_of(out, what)
    expect_bytes(out, translated(pkt, pkt[Ether].dst, pkt[Ether].src, src=src,
                                 sport=sport, dst=dst, dport=dport),
                 what + " (translated to %s:%d -> %s:%d, TTL - 1, MACs as they came)"
                 % (src, sport, dst, dport))
    scapy_checksums_ok(out, what)
    expect_reason(before, reason, 1, what)
    return src, dst, sport, dport


def expect_handed_over(c, what, snat_addr, reason, generic=False, **kw):
    """A client packet of the source-NATed connection @c that XDP cannot
    send: see expect_marked()."""
    backend, bport = c.rule.int_addr, c.rule.backend_port(c.dport)
    sport = c.out[2] if c.out else None
    c.out = expect_marked(c.orig(**kw), c.client_dev, (snat_addr, backend, sport, bport),
                          what, reason, generic)


def test_slow_egress_handed_to_tc():
    status = T.xdpfwd("status", json_out=True)
    slow = [i for i in status.get("interfaces", []) if i.get("ifname") == "slow0"]
    check(len(slow) == 1 and slow[0].get("xdp_egress") is False,
          "test setup: slow0 (its peer without GRO) should be loaded with "
          "xdp_egress false, xdpfwd -j status shows %r" % (slow,))
    c = Conn(R_SLOW)
    expect_handed_over(c, "a SYN through a --snat auto rule to a backend behind "
                       "slow0", SLOW_IP, "pass_slow_egress", flags="S")
    c.expect_entries("after a SYN handed to TC", True, flags=CT_SNAT)
    expect_handed_over(c, "the next segment of that connection", SLOW_IP,
                       "pass_slow_egress", flags="PA", payload=b"s" * 99)
    c.send_reply("the slow backend's SYN-ACK (wan0 takes XDP frames)")
    d = Conn(R_SLOW)
    expect_handed_over(d, "a SYN behind slow0 through prog_generic", SLOW_IP,
                       "pass_slow_egress", generic=True, flags="S")
    # not source-NATed: the kernel forwards it; no metadata, TTL untouched
    p = Conn(R_SLOW_PLAIN)
    pkt = p.orig(flags="S")
    v, out = T.run(pkt, "wan0")
    what = "a SYN behind slow0 through a rule without --snat"
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, translated(pkt, forwarded=False, dst=SLOW_BACKEND, dport=88),
                 what + " (translated, TTL and MACs left to the kernel)")
    # the reply direction: a client behind slow0
    s = Conn(R_SNAT, client=SLOW_CLIENT, ext=SLOW_IP)
    s.send_orig("a SYN from %s, behind slow0, to %s:%d" % (SLOW_CLIENT, SLOW_IP,
                                                            R_SNAT.ext_port),
                snat_addr=LAN_IP2)
    expect_marked(s.reply(flags="SA"), "lan0", (SLOW_IP, SLOW_CLIENT, s.dport, s.sport),
                  "the backend's SYN-ACK to a source-NATed client behind slow0",
                  "pass_slow_egress")
    s.expect_entries("after a SYN-ACK handed to TC", True, flags=CT_SNAT | SEEN_REPLY)
    # ... while a reply of a connection not source-NATed is left to the
    # kernel as it came (TC egress translates it)
    n = Conn(R_PLAIN, client=SLOW_CLIENT, ext=SLOW_IP)
    n.send_orig("a SYN from %s, behind slow0, through a rule without --snat" %
                SLOW_CLIENT)
    expect_untouched(n.reply(flags="SA"), "lan0", "the backend's SYN-ACK to a "
                     "client behind slow0, not source-NATed", "pass_slow_egress")


def test_no_neighbour_handed_to_tc():
    c = Conn(R_NONEIGH)
    expect_handed_over(c, "a SYN through a --snat %s rule to a backend without a "
                       "neighbour entry" % LAN_IP2, LAN_IP2, "pass_no_neigh", flags="S")
    c.expect_entries("after a SYN handed to TC", True, flags=CT_SNAT)
    d = Conn(R_NONEIGH)
    expect_dropped(d.orig(flags="S", ttl=1), "wan0", "drop_ttl",
                   "a source-NATed SYN with TTL 1 to a backend without a neighbour")


def test_tc_ingress_leaves_unmarked_frames():
    # What TC ingress does with a marked frame cannot be run here: the
    # kernel's test run takes no XDP metadata in front of an skb (the e2e
    # tests send such frames). What it does with every other frame can.
    p = Conn(R_SLOW_PLAIN)
    v, out = T.run(p.orig(flags="S"), "wan0")
    expect_verdict(v, XDP_PASS, "a SYN behind slow0 through a rule without --snat")
    c = Conn(R_SLOW)
    cases = [("the translated SYN XDP passed without a mark", out, "wan0"),
             ("a client SYN through a --snat rule, as it arrived", c.orig(flags="S"),
              "wan0"),
             ("a backend's SYN-ACK", concrete(Ether(src=BACKEND5_MAC, dst=LAN0_MAC) /
                                              IP(src=BACKEND5, dst=LAN_IP2) /
                                              TCP(sport=443, dport=1234, flags="SA")),
              "lan0")]
    for what, frame, dev in cases:
        before = T.reasons()
        rc, got = T.run_tc("prog_tc_ingress", frame, dev)
        check(rc == bpfsys.TC_ACT_OK, "TC ingress should let %s through (TC_ACT_OK), "
              "it returned %d" % (what, rc))
        expect_bytes(got, bytes(frame), "TC ingress given %s (should leave it "
                     "as it is)" % what)
        for reason in ("tc_sent", "drop_tc_unroutable"):
            expect_reason(before, reason, 0, "TC ingress given %s" % what)


TESTS = [
    test_snat_range_outside_ephemeral_ports,
    test_snat_ports_distinct,
    test_snat_narrow_range_exhausted,
    test_snat_port_of_expired_connection_reused,
    test_snat_port_of_orphaned_reply_reused,
    test_snat_default_range_when_config_says_zero,
    test_snat_reply_translated,
    test_snat_auto_udp,
    test_one_arm_source_nated,
    test_snat_auto_without_route_dropped,
    test_port_range_offset_kept,
    test_port_range_listed,
    test_allowlist,
    test_slow_egress_handed_to_tc,
    test_no_neighbour_handed_to_tc,
    test_tc_ingress_leaves_unmarked_frames,
]


if __name__ == "__main__":
    sys.exit(topo.run_tests("nat", T, TESTS, only=sys.argv[1:]))
