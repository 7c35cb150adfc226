#!/usr/bin/python3
"""Packet-level unit tests of xdpfwd's connection tracking (issue 3).

Run as root from the repository root:
    /usr/bin/python3 tests/unit/test_conntrack.py [TEST_NAME...]

Builds a private namespace (tests/unit/topo.py), loads xdpfwd there and runs
scapy-built frames through the pinned prog_native with BPF_PROG_TEST_RUN.
The connection tables are read (and, to age a connection, written) through
the pinned maps; every expected frame is built by scapy, checksums included,
and compared byte for byte. The spec is docs/CONTRACT.md, "Connection
tracking (issue 3)". Ends with "conntrack: N passed, M failed"; exit 1 on any
failure.
"""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpfsys  # noqa: E402
from bpfsys import XDP_DROP, XDP_PASS, XDP_REDIRECT  # noqa: E402
import topo  # noqa: E402
from topo import (Express, client_port, l4_layer, Link, Topo, check, concrete,  # noqa: E402
                  translated, expect_verdict, expect_bytes, scapy_checksums_ok,
                  header_define, flow_key)

from scapy.layers.l2 import Ether  # noqa: E402
from scapy.layers.inet import (IP, TCP, UDP, ICMP, IPOption_Router_Alert,  # noqa: E402
                               fragment, defragment)
from scapy.packet import Raw, Padding  # noqa: E402

# Addresses: TEST-NET-3 on the WAN side, TEST-NET-2 and -1 on the LAN sides.
WAN_IP = "203.0.113.1"
CLIENT_IP, CLIENT_MAC = "203.0.113.50", "02:00:00:00:71:50"
WAN_ROUTER = "203.0.113.254"        # a router on the client's side (ICMP source)
WAN_ROUTER_MAC = "02:00:00:00:71:fe"
LAN_IP, SMALL_IP = "198.51.100.1", "192.0.2.1"
LAN_ROUTER = "198.51.100.254"       # a router behind the backend (ICMP source)
BACKEND5, BACKEND5_MAC = "198.51.100.5", "02:00:00:00:64:05"
BACKEND6, BACKEND6_MAC = "198.51.100.6", "02:00:00:00:64:06"
BACKEND7, BACKEND7_MAC = "192.0.2.7", "02:00:00:00:c0:07"   # behind lan1
WAN0_MAC, LAN0_MAC, LAN1_MAC = "02:00:00:00:01:01", "02:00:00:00:02:01", "02:00:00:00:03:01"
SMALL_MTU = 1280                    # lan1's MTU

# backend address -> (its MAC, the interface it is on, that interface's MAC)
BACKENDS = {BACKEND5: (BACKEND5_MAC, "lan0", LAN0_MAC),
            BACKEND6: (BACKEND6_MAC, "lan0", LAN0_MAC),
            BACKEND7: (BACKEND7_MAC, "lan1", LAN1_MAC)}

PROTO = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
STATES = header_define("XDPFWD_CT_STATE_NAMES")
DEFAULT_TIMEOUTS = header_define("XDPFWD_CT_DEFAULT_TIMEOUTS")
ORIG, REPLY = 0, 1
# XDPFWD_CT_F_*
SEEN_REPLY, ASSURED, FIN_ORIG, FIN_REPLY = 0x01, 0x02, 0x04, 0x08
FRAG_TIMEOUT = 30
SEC = 1000 * 1000 * 1000


# struct xdpfwd_rule: 64 bytes, id and gen (host order) at 20 and 24
RULE_SIZE, RULE_ID_OFF = 64, 20
STATS_SIZE = 40     # struct xdpfwd_rule_stats: five u64 a CPU


class Rule:
    """A rule as the CLI takes it, and as the rules map holds it."""

    def __init__(self, proto, ext_port, int_addr, int_port):
        self.proto, self.ext_port = proto, ext_port
        self.int_addr, self.int_port = int_addr, int_port

    def args(self):
        return [self.proto, str(self.ext_port), "%s:%d" % (self.int_addr, self.int_port)]

    def key(self):
        """Its external port's key in rule_ports."""
        return socket.inet_aton("0.0.0.0") + struct.pack("!HBB", self.ext_port,
                                                         PROTO[self.proto], 0)

    def raw(self):
        """(id, struct xdpfwd_rule bytes) of the rule, or None: its id from
        rule_ports, the rule from rules by that id."""
        raw_id = bpfsys.map_lookup(T.map_fd("rule_ports"), self.key(), 4)
        if raw_id is None:
            return None
        rid = struct.unpack("=I", raw_id)[0]
        raw = bpfsys.map_lookup(T.map_fd("rules"), struct.pack("=I", rid), RULE_SIZE)
        check(raw is not None, "rule_ports maps %s %d to rule id %d, which the "
              "rules map does not hold" % (self.proto, self.ext_port, rid))
        return rid, raw

    def entry(self):
        """(id, gen) of the rule in the rules map, or None."""
        found = self.raw()
        if found is None:
            return None
        rid, raw = found
        got = struct.unpack_from("=II", raw, RULE_ID_OFF)
        check(got[0] == rid, "the rule under id %d in the rules map says its "
              "id is %d" % (rid, got[0]))
        return got

    def replace(self, int_addr, int_port):
        T.xdpfwd("replace", self.proto, str(self.ext_port),
                 "%s:%d" % (int_addr, int_port))
        self.int_addr, self.int_port = int_addr, int_port

    def delete(self):
        T.xdpfwd("del", self.proto, str(self.ext_port))

    def add(self, int_addr, int_port):
        self.int_addr, self.int_port = int_addr, int_port
        T.xdpfwd("add", *self.args())


R_TCP = Rule("tcp", 8080, BACKEND5, 80)
R_UDP = Rule("udp", 6000, BACKEND5, 600)
R_SM = Rule("tcp", 7001, BACKEND5, 71)          # the state machine walk only
R_EXP_TCP = Rule("tcp", 6080, BACKEND5, 68)     # replaced by the expiry tests
R_EXP_UDP = Rule("udp", 6053, BACKEND5, 58)
R_GEN = Rule("tcp", 6200, BACKEND5, 62)         # deleted and re-added
R_REP = Rule("tcp", 6400, BACKEND5, 64)         # replaced
R_STALE = Rule("tcp", 6500, BACKEND5, 66)       # its generation bumped by hand
R_SMALL_TCP = Rule("tcp", 8500, BACKEND7, 85)   # backend behind the small MTU
R_SMALL_UDP = Rule("udp", 8501, BACKEND7, 86)
RULES = [R_TCP, R_UDP, R_SM, R_EXP_TCP, R_EXP_UDP, R_GEN, R_REP, R_STALE, R_SMALL_TCP,
         R_SMALL_UDP]

T = Topo("xfc",
         links=[Link("wan0", WAN0_MAC, "wan0p", "02:00:00:00:01:02", [WAN_IP + "/24"]),
                Link("lan0", LAN0_MAC, "lan0p", "02:00:00:00:02:02", [LAN_IP + "/24"]),
                Link("lan1", LAN1_MAC, "lan1p", "02:00:00:00:03:02",
                     [SMALL_IP + "/24"], mtu=SMALL_MTU)],
         neighbours=[(CLIENT_IP, CLIENT_MAC, "wan0"),
                     (WAN_ROUTER, WAN_ROUTER_MAC, "wan0"),
                     (BACKEND5, BACKEND5_MAC, "lan0"),
                     (BACKEND6, BACKEND6_MAC, "lan0"),
                     (BACKEND7, BACKEND7_MAC, "lan1")],
         load=["wan0", "lan0", "lan1"],
         rules=[r.args() for r in RULES])


# --------------------------------------------------------------------------
# The connection tables, as the datapath keeps them.

def lookup(table, key):
    return T.flow(table, key)


def where(key):
    """The tables holding @key."""
    return T.flow_tables(key)


def state_name(n):
    return STATES[n] if 0 <= n < len(STATES) else str(n)


def flag_names(f):
    names = [n for bit, n in ((SEEN_REPLY, "SEEN_REPLY"), (ASSURED, "ASSURED"),
                              (FIN_ORIG, "FIN_ORIG"), (FIN_REPLY, "FIN_REPLY"))
             if f & bit]
    rest = f & ~0x0f
    return "|".join(names + (["0x%x" % rest] if rest else [])) or "none"


def config_raw():
    return T.config()


def timeout(state):
    """Seconds a connection in @state stays valid: config, else default."""
    i = STATES.index(state)
    cfg = struct.unpack_from("=10I", config_raw())[i]
    return cfg or DEFAULT_TIMEOUTS[i]


def rule_gen_now(rule_id):
    raw = bpfsys.map_lookup(T.map_fd("rule_gens"), struct.pack("=I", rule_id), 4)
    return struct.unpack("=I", raw)[0] if raw else None


def rule_stats(rule_id):
    """(orig packets, orig bytes, reply packets, reply bytes, denied
    packets) of a rule, summed over the CPUs."""
    ncpu = bpfsys.possible_cpus()
    raw = bpfsys.map_lookup(T.map_fd("rule_stats"), struct.pack("=I", rule_id),
                            STATS_SIZE * ncpu)
    total = [0] * 5
    for c in range(ncpu):
        for i, v in enumerate(struct.unpack_from("=5Q", raw, STATS_SIZE * c)):
            total[i] += v
    return total


CLOCK_MONOTONIC_COARSE = 6     # Linux's; the clock the datapath stamps with


def now():
    """The datapath's clock (bpf_ktime_get_coarse_ns()), so that a stamp
    lies between readings taken before and after its packet."""
    return time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE)


# --------------------------------------------------------------------------
# Packets.

def expect_reason(before, name, n=1, what=""):
    after = T.reasons()
    check(after.get(name, 0) - before.get(name, 0) == n,
          "%sthe %s counter should have gone up by %d but went from %d to %d" %
          (what + ": " if what else "", name, n, before.get(name, 0),
           after.get(name, 0)))


def expect_untouched(frame, dev, what, reason=None):
    """@frame must pass unchanged; with @reason, that counter must go up
    by exactly one."""
    before = T.reasons()
    v, out = T.run(frame, dev)
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, bytes(frame), what + " (should pass untouched)")
    if reason:
        expect_reason(before, reason, 1, what)


class Conn:
    """One client connection through @rule, from CLIENT_IP:@sport to
    WAN_IP:ext_port, and what its table entries should read."""

    def __init__(self, rule, sport=None):
        self.rule = rule
        self.proto = rule.proto
        self.sport = sport or client_port()
        self.fresh()

    def fresh(self):
        """Forget the counters: the next packet opens a new connection,
        to whatever backend the rule has now."""
        self.backend = (self.rule.int_addr, self.rule.int_port)
        self.packets, self.bytes = [0, 0], [0, 0]

    def orig_key(self):
        return flow_key(CLIENT_IP, WAN_IP, self.sport, self.rule.ext_port,
                        PROTO[self.proto])

    def reply_key(self, backend=None):
        addr, port = backend or self.backend
        return flow_key(addr, CLIENT_IP, port, self.sport, PROTO[self.proto])

    def orig(self, flags="S", payload=b"", ttl=64, csum=None, **ip_kw):
        return concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                        IP(src=CLIENT_IP, dst=WAN_IP, ttl=ttl, id=0x1234, **ip_kw) /
                        l4_layer(self.proto, self.sport, self.rule.ext_port,
                                 flags, payload, csum))

    def reply(self, flags="SA", payload=b"", ttl=64, csum=None, **ip_kw):
        addr, port = self.backend
        mac, _, dev_mac = BACKENDS[addr]
        return concrete(Ether(src=mac, dst=dev_mac) /
                        IP(src=addr, dst=CLIENT_IP, ttl=ttl, id=0x4321, **ip_kw) /
                        l4_layer(self.proto, port, self.sport, flags, payload, csum))

    def count(self, d, frame):
        self.packets[d] += 1
        self.bytes[d] += Ether(bytes(frame))[IP].len

    def send_orig(self, what, **kw):
        """Send a client packet; it must leave DNATed to the backend."""
        pkt = self.orig(**kw)
        addr, port = self.backend
        mac, dev, dev_mac = BACKENDS[addr]
        v, out = T.run(pkt, "wan0")
        expect_verdict(v, XDP_REDIRECT, what)
        keep = self.proto == "udp" and pkt[UDP].chksum == 0
        expect_bytes(out, translated(pkt, mac, dev_mac, keep_l4_csum=keep,
                                     dst=addr, dport=port),
                     what + " (should go to %s:%d)" % (addr, port))
        scapy_checksums_ok(out, what, udp_zero_ok=keep)
        self.count(ORIG, pkt)
        return pkt, out

    def send_reply(self, what, **kw):
        """Send a backend packet; it must leave with the external source."""
        pkt = self.reply(**kw)
        _, dev, _ = BACKENDS[self.backend[0]]
        v, out = T.run(pkt, dev)
        expect_verdict(v, XDP_REDIRECT, what)
        keep = self.proto == "udp" and pkt[UDP].chksum == 0
        expect_bytes(out, translated(pkt, CLIENT_MAC, WAN0_MAC, keep_l4_csum=keep,
                                     src=WAN_IP, sport=self.rule.ext_port), what)
        scapy_checksums_ok(out, what, udp_zero_ok=keep)
        self.count(REPLY, pkt)
        return pkt, out

    def entry(self, what):
        """The ORIG entry and its table; it must be in exactly one."""
        tables = where(self.orig_key())
        check(len(tables) == 1, "%s: the connection's original-direction entry "
              "should be in exactly one table, it is in %s" %
              (what, tables or "none"))
        return tables[0], lookup(tables[0], self.orig_key())

    def expect(self, what, table, state, flags, created=None, seen=None,
               counters=True):
        """Both entries in @table (and not the other), as the contract says.
        @created/@seen: (lo, hi) monotonic ns bounds."""
        other = "flows_new" if table == "flows" else "flows"
        addr, port = self.backend
        okey, rkey = self.orig_key(), self.reply_key()
        o, r = lookup(table, okey), lookup(table, rkey)
        check(o is not None, "%s: no original-direction entry in %s (it is in "
              "%s)" % (what, table, where(okey) or "no table"))
        check(r is not None, "%s: no reply-direction entry in %s (it is in %s)" %
              (what, table, where(rkey) or "no table"))
        check(lookup(other, okey) is None and lookup(other, rkey) is None,
              "%s: the connection should be only in %s but %s holds it too" %
              (what, table, other))
        rid, rgen = self.rule.entry()
        check(o.tuple() == (CLIENT_IP, addr, self.sport, port),
              "%s: the original entry should translate to %s:%d -> %s:%d, it "
              "holds %s:%d -> %s:%d" % ((what, CLIENT_IP, self.sport, addr, port) +
                                        (o.saddr, o.sport, o.daddr, o.dport)))
        check(r.tuple() == (WAN_IP, CLIENT_IP, self.rule.ext_port, self.sport),
              "%s: the reply entry should translate to %s:%d -> %s:%d, it holds "
              "%s:%d -> %s:%d" % ((what, WAN_IP, self.rule.ext_port, CLIENT_IP,
                                   self.sport) + (r.saddr, r.sport, r.daddr, r.dport)))
        check((o.dir, r.dir) == (ORIG, REPLY), "%s: the entries' dir should be "
              "0 (orig) and 1 (reply), they are %d and %d" % (what, o.dir, r.dir))
        check(o.rule_id == rid and r.rule_id == rid, "%s: rule_id should be %d, "
              "the entries hold %d and %d" % (what, rid, o.rule_id, r.rule_id))
        check(o.rule_gen == r.rule_gen == rule_gen_now(rid),
              "%s: rule_gen should be the rule's generation %s, the entries hold "
              "%d and %d" % (what, rule_gen_now(rid), o.rule_gen, r.rule_gen))
        check(o.state == STATES.index(state), "%s: the state should be %s but is "
              "%s" % (what, state, state_name(o.state)))
        check(o.flags == flags, "%s: the flags should be %s but are %s" %
              (what, flag_names(flags), flag_names(o.flags)))
        po, pr = T.pending(okey), T.pending(rkey)
        if counters:
            got = ([o.packets + po[0], r.packets + pr[0]], [o.bytes + po[1], r.bytes + pr[1]])
            check(got == (self.packets, self.bytes),
                  "%s: the counters should read packets %s bytes %s (orig, reply; "
                  "entries and express cache) but read packets %s bytes %s" %
                  ((what, self.packets, self.bytes) + got))
        for name, val, rng in (("created_ns", o.created_ns, created),
                               ("seen_ns of the later direction",
                                max(o.seen_ns, r.seen_ns, po[2], pr[2]), seen)):
            if rng:
                check(rng[0] <= val <= rng[1], "%s: %s should be between %d and "
                      "%d (the packet's send window) but is %d" %
                      (what, name, rng[0], rng[1], val))
        return o

    def expect_gone(self, what, backend=None):
        for name, key in (("original", self.orig_key()),
                          ("reply", self.reply_key(backend))):
            check(not where(key), "%s: the %s-direction entry should have been "
                  "deleted but is still in %s" % (what, name, where(key)))

    def age(self, seconds):
        """Make the connection last seen @seconds ago, both directions."""
        table, o = self.entry("aging the connection")
        check(now() > seconds * SEC, "test setup: the clock is younger than %d s"
              % seconds)
        r = lookup(table, self.reply_key())
        check(r is not None, "test setup: the connection has no reply entry in %s" % table)
        for key, e in ((self.orig_key(), o), (self.reply_key(), r)):
            bpfsys.map_update(T.map_fd(table), key, e.with_seen(now() - int(seconds * SEC)),
                              bpfsys.BPF_EXIST)
            age_next_hop(key, seconds, seen=True)

    def handshake(self, what=""):
        self.send_orig("the SYN" + what, flags="S")
        self.send_reply("the SYN-ACK" + what, flags="SA")
        self.send_orig("the ACK" + what, flags="A")


# --------------------------------------------------------------------------
# Layouts.

def test_map_layouts():
    want = {"flows": (16, 56), "flows_new": (16, 56), "express_cache": (4, 88), "frags": (12, 24),
            "config": (4, 48), "rule_gens": (4, 4), "rules": (4, RULE_SIZE),
            "rule_ports": (8, 4), "allow": (12, 4), "local_addrs": (4, 4),
            "rule_stats": (4, STATS_SIZE)}
    for name, (ks, vs) in want.items():
        _, k, v, _ = bpfsys.map_info(T.map_fd(name))
        check((k, v) == (ks, vs), "the pinned map %s should have %d-byte keys "
              "and %d-byte values (include/xdpfwd.h), it has %d and %d" %
              (name, ks, vs, k, v))


# --------------------------------------------------------------------------
# TCP.

def test_tcp_handshake_to_time_wait():
    c = Conn(R_SM)

    def step(what, send, table, state, ct_flags, **kw):
        t0 = now()
        send(what, **kw)
        t1 = now()
        return c.expect("after " + what, table, state, ct_flags, seen=(t0, t1))

    t0 = now()
    c.send_orig("the client's SYN", flags="S")
    t1 = now()
    o = c.expect("after the client's SYN", "flows_new", "syn_sent", 0,
                 created=(t0, t1), seen=(t0, t1))
    created = o.created_ns
    step("the backend's SYN-ACK", c.send_reply, "flows_new", "syn_recv",
         SEEN_REPLY, flags="SA")
    step("the client's ACK", c.send_orig, "flows", "established",
         SEEN_REPLY | ASSURED, flags="A")
    step("client data", c.send_orig, "flows", "established",
         SEEN_REPLY | ASSURED, flags="PA", payload=b"q" * 100)
    step("backend data", c.send_reply, "flows", "established",
         SEEN_REPLY | ASSURED, flags="PA", payload=b"r" * 1001)
    step("more client data", c.send_orig, "flows", "established",
         SEEN_REPLY | ASSURED, flags="PA", payload=b"s")
    step("the client's FIN", c.send_orig, "flows", "fin_wait",
         SEEN_REPLY | ASSURED | FIN_ORIG, flags="FA")
    step("the backend's FIN", c.send_reply, "flows", "last_ack",
         SEEN_REPLY | ASSURED | FIN_ORIG | FIN_REPLY, flags="FA")
    o = step("the client's last ACK", c.send_orig, "flows", "time_wait",
             SEEN_REPLY | ASSURED | FIN_ORIG | FIN_REPLY, flags="A")
    check(o.created_ns == created, "created_ns changed during the connection "
          "(%d, then %d)" % (created, o.created_ns))
    rid, _ = R_SM.entry()
    got = rule_stats(rid)
    want = [c.packets[0], c.bytes[0], c.packets[1], c.bytes[1], 0]
    check(got == want, "the rule's counters (orig packets, bytes, reply packets, "
          "bytes, denied packets) should be %s but are %s" % (want, got))

    c.fresh()
    t0 = now()
    c.send_orig("a new SYN on the tuple of a connection in time_wait", flags="S")
    t1 = now()
    o = c.expect("after a new SYN on a time_wait tuple (a fresh connection)",
                 "flows_new", "syn_sent", 0, created=(t0, t1), seen=(t0, t1))


def test_tcp_rst_closes():
    c = Conn(R_TCP)
    c.send_orig("a SYN", flags="S")
    c.send_orig("the client's RST", flags="R")
    c.expect("after the client's RST on a syn_sent connection", "flows_new",
             "close", 0)
    c.fresh()
    t0 = now()
    c.send_orig("a SYN on the tuple of a closed connection", flags="S")
    c.expect("after a SYN on a closed connection's tuple (a fresh connection)",
             "flows_new", "syn_sent", 0, created=(t0, now()))

    d = Conn(R_TCP)
    d.handshake()
    d.send_reply("the backend's RST", flags="RA")
    d.expect("after the backend's RST on an established connection", "flows",
             "close", SEEN_REPLY | ASSURED)
    d.fresh()
    t0 = now()
    d.send_orig("a SYN on the tuple of a connection reset by the backend",
                flags="S")
    d.expect("after a SYN on a reset assured connection's tuple", "flows_new",
             "syn_sent", 0, created=(t0, now()))


def test_rst_without_connection_passes():
    for flags in ("R", "RA"):
        c = Conn(R_TCP)
        expect_untouched(c.orig(flags=flags), "wan0", "a client %s to the rule "
                         "port with no connection" % flags, "pass_ct_invalid")
        check(not where(c.orig_key()) and not where(c.reply_key()),
              "a %s with no connection created table entries" % flags)
    c = Conn(R_TCP)
    expect_untouched(c.reply(flags="RA"), "lan0", "a backend RST of no connection")
    check(not where(c.orig_key()) and not where(c.reply_key()),
          "a backend RST with no connection created table entries")


def test_midstream_ack_picked_up():
    c = Conn(R_TCP)
    t0 = now()
    c.send_orig("a mid-stream ACK with no connection", flags="A")
    c.expect("after a mid-stream ACK (loose pickup)", "flows_new", "established",
             0, created=(t0, now()))
    c.send_reply("the backend's ACK", flags="A")
    c.expect("after the backend answers a picked-up connection", "flows",
             "established", SEEN_REPLY | ASSURED)
    d = Conn(R_TCP)
    d.send_orig("a mid-stream data segment with no connection", flags="PA",
                payload=b"mid" * 10)
    d.expect("after a mid-stream data segment", "flows_new", "established", 0)


def test_udp_unreplied_then_replied():
    c = Conn(R_UDP)
    t0 = now()
    c.send_orig("a first UDP datagram", payload=b"hello")
    c.expect("after a first datagram", "flows_new", "udp_unreplied", 0,
             created=(t0, now()))
    c.send_orig("a second client datagram", payload=b"again")
    c.expect("after a second client datagram", "flows_new", "udp_unreplied", 0)
    c.send_reply("the backend's answer", payload=b"answer")
    c.expect("after the backend's answer", "flows", "udp_replied",
             SEEN_REPLY | ASSURED)
    c.send_orig("a client datagram after the answer", payload=b"more")
    c.expect("after one more client datagram", "flows", "udp_replied",
             SEEN_REPLY | ASSURED)


# --------------------------------------------------------------------------
# Expiry.

# state -> (rule, how to get there, the client packet that then leaves the
# state as it is, the state a new connection made by that packet starts in)
EXPIRY_CASES = [
    ("udp_unreplied", R_EXP_UDP, [(ORIG, {})], {}, "udp_unreplied"),
    ("udp_replied", R_EXP_UDP, [(ORIG, {}), (REPLY, {})], {}, "udp_unreplied"),
    ("syn_sent", R_EXP_TCP, [(ORIG, {"flags": "S"})], {"flags": "S"}, "syn_sent"),
    ("syn_recv", R_EXP_TCP, [(ORIG, {"flags": "S"}), (REPLY, {"flags": "SA"})],
     {"flags": "S"}, "syn_sent"),
    ("fin_wait", R_EXP_TCP, [(ORIG, {"flags": "S"}), (REPLY, {"flags": "SA"}),
                             (ORIG, {"flags": "A"}), (ORIG, {"flags": "FA"})],
     {"flags": "A"}, "established"),
    ("last_ack", R_EXP_TCP, [(ORIG, {"flags": "S"}), (REPLY, {"flags": "SA"}),
                             (ORIG, {"flags": "A"}), (ORIG, {"flags": "FA"}),
                             (REPLY, {"flags": "FA"})],
     {"flags": "S"}, "syn_sent"),     # a SYN restarts only time_wait/close
    ("time_wait", R_EXP_TCP, [(ORIG, {"flags": "S"}), (REPLY, {"flags": "SA"}),
                              (ORIG, {"flags": "A"}), (ORIG, {"flags": "FA"}),
                              (REPLY, {"flags": "FA"}), (ORIG, {"flags": "A"})],
     {"flags": "A"}, "established"),
    ("close", R_EXP_TCP, [(ORIG, {"flags": "S"}), (ORIG, {"flags": "R"})],
     {"flags": "A"}, "established"),
]


def test_expiry_by_state():
    for state, rule, steps, probe, new_state in EXPIRY_CASES:
        rule.replace(BACKEND5, 500)
        c = Conn(rule)
        for d, kw in steps:
            (c.send_orig if d == ORIG else c.send_reply)(
                "a packet toward %s" % state, **kw)
        table, o = c.entry("in " + state)
        check(o.state == STATES.index(state), "test setup: the connection "
              "should be in %s but is in %s" % (state, state_name(o.state)))
        created, flags = o.created_ns, o.flags
        rule.replace(BACKEND6, 600)
        tmo = timeout(state)
        c.age(tmo - 2)
        c.send_orig("a client packet of a %s connection idle %d s (timeout %d s)"
                    % (state, tmo - 2, tmo), **probe)
        o = c.expect("a %s connection idle %d s" % (state, tmo - 2), table, state,
                     flags, counters=False)
        check(o.created_ns == created, "a %s connection idle %d s (timeout %d s) "
              "was made anew instead of being used" % (state, tmo - 2, tmo))
        c.age(tmo + 2)
        old = c.backend
        c.fresh()
        t0 = now()
        c.send_orig("a client packet of a %s connection idle %d s (timeout %d s)"
                    % (state, tmo + 2, tmo), **probe)
        c.expect("after a %s connection expired" % state, "flows_new", new_state,
                 0, created=(t0, now()))
        check(not where(c.reply_key(old)), "the reply entry of the expired %s "
              "connection is still in %s" % (state, where(c.reply_key(old))))
    R_EXP_TCP.replace(BACKEND5, 68)
    R_EXP_UDP.replace(BACKEND5, 58)


def test_expired_reply_passes_untranslated():
    c = Conn(R_UDP)
    c.send_orig("a datagram")
    c.send_reply("its answer")
    c.age(timeout("udp_replied") + 2)
    expect_untouched(c.reply(payload=b"late"), "lan0", "a backend datagram of a "
                     "udp_replied connection past its timeout", "pass_no_match")
    c.expect_gone("after a reply met an expired connection")
    d = Conn(R_TCP)
    d.send_orig("a SYN", flags="S")
    d.age(timeout("syn_sent") + 2)
    expect_untouched(d.reply(flags="SA"), "lan0", "a SYN-ACK of a syn_sent "
                     "connection past its timeout", "pass_no_match")
    d.expect_gone("after a SYN-ACK met an expired connection")


# state -> (rule, how to get there, a client packet that keeps the state,
# the state a new connection made by that packet starts in)
TIMEOUT_CASES = {
    "udp_replied": (R_UDP, lambda c: (c.send_orig("a datagram"),
                                      c.send_reply("its answer")),
                    {}, "udp_unreplied"),
    "established": (R_TCP, lambda c: c.handshake(),
                    {"flags": "PA", "payload": b"x"}, "established"),
}


def idle_probe(state, idle):
    """Send a client packet on a connection in @state idle @idle seconds.
    Returns the connection, whether it was kept (not made anew) and when
    the packet was sent."""
    rule, setup, probe, _ = TIMEOUT_CASES[state]
    c = Conn(rule)
    setup(c)
    created = c.entry(state)[1].created_ns
    c.age(idle)
    t0 = now()
    c.send_orig("a packet of a %s connection idle %d s" % (state, idle), **probe)
    return c, c.entry(state)[1].created_ns == created, t0


def test_timeout_command_changes_expiry():
    saved = config_raw()
    try:
        for state, other in (("udp_replied", "established"),
                             ("established", "udp_replied")):
            bpfsys.map_update(T.map_fd("config"), struct.pack("=I", 0), saved)
            T.xdpfwd("conntrack", "timeout", state, "5")
            i = STATES.index(state)
            cfg = struct.unpack_from("=10I", config_raw())
            check(cfg[i] == 5, "`xdpfwd conntrack timeout %s 5` should write 5 "
                  "into config.timeout[%d], it holds %d" % (state, i, cfg[i]))
            _, kept, _ = idle_probe(state, 3)
            check(kept, "a %s connection idle 3 s with timeout 5 s was made anew"
                  % state)
            c, kept, t0 = idle_probe(state, 8)
            check(not kept, "a %s connection idle 8 s with timeout 5 s (default "
                  "%d s) was still used" % (state, DEFAULT_TIMEOUTS[i]))
            c.expect("after a %s connection idle 8 s with timeout 5 s" % state,
                     "flows_new", TIMEOUT_CASES[state][3], 0, created=(t0, now()),
                     counters=False)
            _, kept, _ = idle_probe(other, 8)
            check(kept, "a %s connection idle 8 s was made anew after only %s's "
                  "timeout was set to 5 s" % (other, state))
    finally:
        bpfsys.map_update(T.map_fd("config"), struct.pack("=I", 0), saved)


# --------------------------------------------------------------------------
# Rule generations.

def test_deleted_rule_stops_connections():
    c1, c2, c3 = Conn(R_GEN), Conn(R_GEN), Conn(R_GEN)
    for i, c in enumerate((c1, c2, c3)):
        c.handshake(" of connection %d" % (i + 1))
    rid, _ = R_GEN.entry()
    gen = c1.entry("before del")[1].rule_gen
    R_GEN.delete()
    check(rule_gen_now(rid) != gen, "`xdpfwd del` left rule_gens[%d] at %d, the "
          "generation of its connections" % (rid, gen))
    expect_untouched(c1.orig(flags="PA", payload=b"after del"), "wan0",
                     "a client segment of a connection whose rule was deleted",
                     "pass_no_match")
    c1.expect_gone("after a packet met a connection of a deleted rule")
    expect_untouched(c2.reply(flags="PA", payload=b"after del"), "lan0",
                     "a backend segment of a connection whose rule was deleted")
    c2.expect_gone("after a reply met a connection of a deleted rule")
    R_GEN.add(BACKEND6, 63)
    c3.fresh()
    c3.send_orig("a client segment of a connection made before the rule was "
                 "deleted and added again", flags="PA", payload=b"re-added")
    c3.expect("after a segment of a pre-deletion connection", "flows_new",
              "established", 0)


def test_stale_generation_not_used():
    # What `del` then `add` under the same rule id leaves when the CLI's sweep
    # of the tables has not reached a connection: the rule with a new backend
    # and generation. Only the datapath's generation check stands between the
    # old connection and its old backend.
    c, d = Conn(R_STALE), Conn(R_STALE)
    c.handshake(" of connection 1")
    d.handshake(" of connection 2")
    rid, raw = R_STALE.raw()
    gen = struct.unpack_from("=I", raw, RULE_ID_OFF + 4)[0]
    bpfsys.map_update(T.map_fd("rule_gens"), struct.pack("=I", rid),
                      struct.pack("=I", gen + 1))
    # int_addr and int_port at 8, gen at 24
    new = bytearray(raw)
    new[8:14] = socket.inet_aton(BACKEND6) + struct.pack("!H", 67)
    struct.pack_into("=I", new, RULE_ID_OFF + 4, gen + 1)
    bpfsys.map_update(T.map_fd("rules"), struct.pack("=I", rid), bytes(new),
                      bpfsys.BPF_EXIST)
    R_STALE.int_addr, R_STALE.int_port = BACKEND6, 67
    old = c.backend
    c.fresh()
    c.send_orig("a client segment of a connection of an older rule generation",
                flags="PA", payload=b"stale")
    c.expect("after a segment of a connection of an older generation",
             "flows_new", "established", 0)
    check(not where(c.reply_key(old)), "the reply entry of the connection of "
          "the older generation is still in %s" % where(c.reply_key(old)))
    expect_untouched(d.reply(flags="PA", payload=b"stale"), "lan0", "a backend "
                     "segment of a connection of an older rule generation",
                     "pass_no_match")
    d.expect_gone("after a reply met a connection of an older generation")


def test_replace_keeps_existing_connections():
    d = Conn(R_REP)
    d.handshake()
    d2 = Conn(R_REP)
    d2.send_orig("a SYN", flags="S")
    R_REP.replace(BACKEND6, 65)
    d.send_orig("a client segment of an established connection after replace",
                flags="PA", payload=b"old")
    d.send_reply("the old backend's answer after replace", flags="PA",
                 payload=b"still here")
    d.expect("an established connection after replace", "flows", "established",
             SEEN_REPLY | ASSURED)
    d2.send_orig("a retransmitted SYN of a syn_sent connection after replace",
                 flags="S")
    d2.expect("a syn_sent connection after replace", "flows_new", "syn_sent", 0)
    e = Conn(R_REP)
    e.send_orig("a SYN of a new connection after replace", flags="S")
    e.send_reply("the new backend's SYN-ACK", flags="SA")
    e.expect("a new connection after replace", "flows_new", "syn_recv",
             SEEN_REPLY)
    R_REP.replace(BACKEND5, 64)


# --------------------------------------------------------------------------
# ICMP errors.

def icmp_frame(src_mac, dst_mac, src, dst, type_, code, quote, ttl=64,
               mtu=0, ip_id=0x5151, tos=0xc0, flags=0):
    icmp = ICMP(type=type_, code=code)
    if type_ == 3 and code == 4:
        icmp.nexthopmtu = mtu
    return concrete(Ether(src=src_mac, dst=dst_mac) /
                    IP(src=src, dst=dst, ttl=ttl, id=ip_id, tos=tos, flags=flags) /
                    icmp / Raw(quote))


def ip_packet(frame, **changes):
    """The IP packet of @frame with @changes, IP checksum recomputed."""
    ip = Ether(bytes(frame))[IP].copy()
    for k, v in changes.items():
        setattr(ip, k, v)
    del ip.chksum
    return bytes(IP(bytes(ip)))


def expect_icmp_forwarded(frame, dev, want, what):
    v, out = T.run(frame, dev)
    expect_verdict(v, XDP_REDIRECT, what)
    expect_bytes(out, bytes(want), what)


# (what, outer source is the backend (else a router), type, code, L4 bytes
# quoted (None: all)[, outer destination when not the quoted packet's source])
BACKSIDE = [
    ("the backend's port unreachable about a UDP datagram (all quoted)",
     "udp", True, 3, 3, None),
    ("the backend's port unreachable about a UDP datagram with checksum 0",
     "udp0", True, 3, 3, None),
    ("a router's host unreachable about a UDP datagram (8 bytes of UDP)",
     "udp", False, 3, 1, 8),
    ("a router's frag needed about a TCP segment (whole TCP header and 100 "
     "bytes quoted)", "tcp", False, 3, 4, 120),
    ("the backend's port unreachable about a TCP segment (8 bytes of TCP)",
     "tcp", True, 3, 3, 8),
    ("a router's time exceeded about a TCP segment (8 bytes of TCP)",
     "tcp", False, 11, 0, 8),
    ("a router's parameter problem about a TCP segment (the TCP header, "
     "checksum inside)", "tcp", False, 12, 0, 20),
    ("the backend's port unreachable about a UDP datagram, sent to a host "
     "other than the datagram's source (keeps that destination)",
     "udp", True, 3, 3, None, WAN_ROUTER),
]


def _conns_for_icmp():
    u = Conn(R_UDP)
    u.send_orig("a UDP datagram", payload=b"u" * 41)
    u0 = Conn(R_UDP)
    u0.send_orig("a UDP datagram with checksum 0", payload=b"z" * 33, csum=0)
    t = Conn(R_TCP)
    t.handshake()
    return {"udp": u, "udp0": u0, "tcp": t}


def test_icmp_errors_toward_client():
    conns = _conns_for_icmp()
    for what, kind, from_backend, type_, code, cut, *to in BACKSIDE:
        dst, dst_mac = (to[0], WAN_ROUTER_MAC) if to else (CLIENT_IP, CLIENT_MAC)
        c = conns[kind]
        kw = {"flags": "PA", "payload": bytes(range(256)) * 2} if c.proto == "tcp" \
            else {"payload": b"datagram" * 9, "csum": 0 if kind == "udp0" else None}
        pkt, out = c.send_orig("the packet the error is about", **kw)
        ihl = 20
        n = None if cut is None else ihl + cut
        seen_by_backend = bytes(Ether(out)[IP])[:n]
        as_client_sent = ip_packet(pkt, ttl=pkt[IP].ttl - 1)[:n]
        src = c.backend[0] if from_backend else LAN_ROUTER
        mac, dev, dev_mac = BACKENDS[c.backend[0]]
        err = icmp_frame(mac, dev_mac, src, dst, type_, code,
                         seen_by_backend, mtu=1400)
        want = icmp_frame(WAN0_MAC, dst_mac, WAN_IP if from_backend else src,
                          dst, type_, code, as_client_sent, ttl=63, mtu=1400)
        before = c.entry(what)[1]
        expect_icmp_forwarded(err, dev, want, what)
        after = c.entry("after " + what)[1]
        check((after.state, after.flags) == (before.state, before.flags),
              "%s changed the connection from %s/%s to %s/%s" %
              (what, state_name(before.state), flag_names(before.flags),
               state_name(after.state), flag_names(after.flags)))


CLIENTSIDE = [
    ("the client's port unreachable about a UDP reply (all quoted)",
     "udp", True, 3, 3, None),
    ("the client's port unreachable about a UDP reply with checksum 0",
     "udp0", True, 3, 3, None),
    ("a WAN router's frag needed about a TCP reply (whole TCP header and 64 "
     "bytes quoted)", "tcp", False, 3, 4, 84),
    ("the client's port unreachable about a TCP reply (8 bytes of TCP)",
     "tcp", True, 3, 3, 8),
    ("a WAN router's time exceeded about a UDP reply (8 bytes of UDP)",
     "udp", False, 11, 0, 8),
]


def test_icmp_errors_toward_backend():
    conns = _conns_for_icmp()
    for what, kind, from_client, type_, code, cut in CLIENTSIDE:
        c = conns[kind]
        kw = {"flags": "PA", "payload": bytes(range(200))} if c.proto == "tcp" \
            else {"payload": b"reply" * 13, "csum": 0 if kind == "udp0" else None}
        pkt, out = c.send_reply("the reply the error is about", **kw)
        n = None if cut is None else 20 + cut
        seen_by_client = bytes(Ether(out)[IP])[:n]
        as_backend_sent = ip_packet(pkt, ttl=pkt[IP].ttl - 1)[:n]
        addr, _ = c.backend
        mac, dev, dev_mac = BACKENDS[addr]
        src = CLIENT_IP if from_client else WAN_ROUTER
        err = icmp_frame(CLIENT_MAC, WAN0_MAC, src, WAN_IP, type_, code,
                         seen_by_client, mtu=1400)
        want = icmp_frame(dev_mac, mac, src, addr, type_, code, as_backend_sent,
                          ttl=63, mtu=1400)
        before = c.entry(what)[1]
        expect_icmp_forwarded(err, "wan0", want, what)
        after = c.entry("after " + what)[1]
        check((after.state, after.flags) == (before.state, before.flags),
              "%s changed the connection from %s/%s to %s/%s" %
              (what, state_name(before.state), flag_names(before.flags),
               state_name(after.state), flag_names(after.flags)))


def test_icmp_error_unknown_connection_passes():
    c = Conn(R_UDP)       # never sent: no connection
    reply = c.reply(payload=b"never")
    quote = ip_packet(translated(reply, CLIENT_MAC, WAN0_MAC, src=WAN_IP,
                                 sport=R_UDP.ext_port))
    expect_untouched(icmp_frame(CLIENT_MAC, WAN0_MAC, CLIENT_IP, WAN_IP, 3, 3, quote),
                     "wan0", "the client's port unreachable about an unknown "
                     "connection", "pass_no_match")
    orig = c.orig(payload=b"never")
    quote = ip_packet(translated(orig, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5,
                                 dport=R_UDP.int_port))
    expect_untouched(icmp_frame(BACKEND5_MAC, LAN0_MAC, BACKEND5, CLIENT_IP, 3, 3,
                                quote), "lan0", "the backend's port unreachable "
                     "about an unknown connection", "pass_no_match")
    k = Conn(R_UDP)
    pkt, out = k.send_orig("a datagram")
    expect_untouched(icmp_frame(BACKEND5_MAC, LAN0_MAC, BACKEND5, CLIENT_IP, 3, 3,
                                bytes(Ether(out)[IP])[:24]), "lan0",
                     "a port unreachable quoting only 4 bytes of UDP")


# --------------------------------------------------------------------------
# ICMP the datapath generates.

def generated(pkt, type_, code, mtu=0):
    """The error the contract says answers @pkt: MACs swapped, from its
    destination to its source, quoting its IP header and the first 8 bytes
    of its payload (RFC 792; no Ethernet padding)."""
    q = Ether(bytes(pkt))
    quote = bytes(q[IP])[:q[IP].len][:q[IP].ihl * 4 + 8]
    return bytes(icmp_frame(q.dst, q.src, q[IP].dst, q[IP].src, type_, code,
                            quote, ttl=64, mtu=mtu, ip_id=0, tos=0xc0))


def expect_generated(pkt, want, reason, what):
    before = T.reasons()
    v, out = T.run(pkt, "wan0")
    expect_verdict(v, XDP_REDIRECT, what)
    expect_bytes(out, want, what)
    expect_reason(before, reason, 1, what)


def test_generated_time_exceeded():
    for ttl in (1, 0):
        c = Conn(R_TCP)
        syn = c.orig(flags="S", ttl=ttl)
        expect_generated(syn, generated(syn, 11, 0), "icmp_time_exceeded",
                         "a SYN with TTL %d" % ttl)
    c = Conn(R_UDP)
    big = c.orig(payload=bytes(range(256)) * 4, ttl=1)
    expect_generated(big, generated(big, 11, 0), "icmp_time_exceeded",
                     "a 1052-byte datagram with TTL 1 (quote cut to its header and 8 bytes)")
    c = Conn(R_UDP)
    opt = c.orig(payload=b"o" * 30, ttl=1, options=[IPOption_Router_Alert()])
    expect_generated(opt, generated(opt, 11, 0), "icmp_time_exceeded",
                     "a datagram with an IP option and TTL 1")
    c = Conn(R_TCP)
    padded = concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                      IP(src=CLIENT_IP, dst=WAN_IP, ttl=1) /
                      TCP(sport=c.sport, dport=R_TCP.ext_port, flags="S") /
                      Padding(b"\x00\x00\xa5\x5a\x00\x01"))
    expect_generated(padded, generated(padded, 11, 0), "icmp_time_exceeded",
                     "a 60-byte SYN with Ethernet padding and TTL 1 (the "
                     "padding is not quoted)")


def test_generated_frag_needed():
    # IP length 1280 fits lan1's MTU exactly; 1281 does not
    c = Conn(R_SMALL_TCP)
    pkt = _df(c.orig(flags="PA", payload=b"m" * (SMALL_MTU - 40)))
    v, out = T.run(pkt, "wan0")
    expect_verdict(v, XDP_REDIRECT, "a DF segment of exactly lan1's MTU")
    expect_bytes(out, translated(pkt, BACKEND7_MAC, LAN1_MAC, dst=BACKEND7,
                                 dport=R_SMALL_TCP.int_port),
                 "a DF segment of exactly lan1's MTU")
    for what, conn, kw in (
            ("a DF segment one byte over lan1's MTU", Conn(R_SMALL_TCP),
             {"flags": "PA", "payload": b"m" * (SMALL_MTU - 39)}),
            ("a 1400-byte DF segment", Conn(R_SMALL_TCP),
             {"flags": "PA", "payload": b"n" * 1360}),
            ("a 1400-byte DF datagram", Conn(R_SMALL_UDP),
             {"payload": b"d" * 1372})):
        pkt = _df(conn.orig(**kw))
        expect_generated(pkt, generated(pkt, 3, 4, mtu=SMALL_MTU),
                         "icmp_frag_needed", what + " toward lan1 (MTU %d)" % SMALL_MTU)


def _df(frame):
    q = frame.copy()
    q[IP].flags = "DF"
    del q[IP].chksum
    return concrete(q)


def test_too_big_without_df_passes_translated():
    for generic, df in ((False, False), (True, True)):
        c = Conn(R_SMALL_TCP)
        pkt = c.orig(flags="PA", payload=b"b" * 1360)
        if df:
            pkt = _df(pkt)
        what = "a 1400-byte %s segment toward lan1 (MTU %d)%s" % (
            "DF" if df else "non-DF", SMALL_MTU, " via prog_generic" if generic else "")
        before = T.reasons()
        v, out = T.run(pkt, "wan0", generic=generic)
        expect_verdict(v, XDP_PASS, what)
        expect_bytes(out, translated(pkt, forwarded=False, dst=BACKEND7,
                                     dport=R_SMALL_TCP.int_port),
                     what + " (translated, left to the kernel to fragment)")
        expect_reason(before, "pass_too_big", 1, what)


def test_ttl_expiring_without_icmp():
    c = Conn(R_TCP)
    c.handshake()
    cases = [
        ("a backend segment with TTL 1", c.reply(flags="PA", payload=b"t", ttl=1),
         "lan0", False),
        ("a client SYN with TTL 1 through prog_generic",
         Conn(R_TCP).orig(flags="S", ttl=1), "wan0", True),
        ("the client's port unreachable with TTL 1 about a reply",
         icmp_frame(CLIENT_MAC, WAN0_MAC, CLIENT_IP, WAN_IP, 3, 3,
                    ip_packet(translated(c.reply(flags="PA", payload=b"q"),
                                         CLIENT_MAC, WAN0_MAC, src=WAN_IP,
                                         sport=R_TCP.ext_port))[:28], ttl=1),
         "wan0", False),
    ]
    for what, frame, dev, generic in cases:
        before = T.reasons()
        v, _ = T.run(frame, dev, generic=generic)
        expect_verdict(v, XDP_DROP, what)
        expect_reason(before, "drop_ttl", 1, what)


# --------------------------------------------------------------------------
# Fragments.

def datagram_fragments(c, direction, ip_id, size=3000, fragsize=1000):
    """A @size-byte UDP datagram of connection @c in @direction, whole and
    as scapy fragments it."""
    payload = bytes(random.Random(ip_id).getrandbits(8) for _ in range(size - 8))
    if direction == ORIG:
        eth = Ether(src=CLIENT_MAC, dst=WAN0_MAC)
        ip = IP(src=CLIENT_IP, dst=WAN_IP, id=ip_id, ttl=64)
        udp = UDP(sport=c.sport, dport=c.rule.ext_port)
    else:
        addr, port = c.backend
        mac, _, dev_mac = BACKENDS[addr]
        eth = Ether(src=mac, dst=dev_mac)
        ip = IP(src=addr, dst=CLIENT_IP, id=ip_id, ttl=64)
        udp = UDP(sport=port, dport=c.sport)
    whole = IP(bytes(ip / udp / Raw(payload)))
    frags = [concrete(eth / IP(bytes(f))) for f in fragment(whole, fragsize=fragsize)]
    check(len(frags) == 3 and frags[0][IP].frag == 0, "test setup: scapy made "
          "%d fragments" % len(frags))
    return whole, frags


def expected_fragment(frag, whole, direction, c):
    """@frag as the datapath should forward it."""
    addr, port = c.backend
    q = frag.copy()
    if direction == ORIG:
        mac, _, dev_mac = BACKENDS[addr]
        q[Ether].dst, q[Ether].src = mac, dev_mac
        q[IP].dst = addr
        new_whole = whole.copy()
        new_whole.dst, new_whole[UDP].dport = addr, port
    else:
        q[Ether].dst, q[Ether].src = CLIENT_MAC, WAN0_MAC
        q[IP].src = WAN_IP
        new_whole = whole.copy()
        new_whole.src, new_whole[UDP].sport = WAN_IP, c.rule.ext_port
    q[IP].ttl -= 1
    del q[IP].chksum
    if q[IP].frag == 0:
        del new_whole[UDP].chksum
        new_whole = IP(bytes(new_whole))
        q[UDP].chksum = new_whole[UDP].chksum
        if direction == ORIG:
            q[UDP].dport = port
        else:
            q[UDP].sport = c.rule.ext_port
    return bytes(q)


def ip_checksum_ok(out, what):
    """The IP header checksum of @out is right (a fragment's L4 checksum
    covers the whole datagram: check_reassembled() checks that)."""
    ip = Ether(out)[IP]
    q = ip.copy()
    del q.chksum
    good = IP(bytes(q))[IP].chksum
    check(good == ip.chksum, "%s: the IP header checksum 0x%04x of the output "
          "is wrong (scapy computes 0x%04x)" % (what, ip.chksum, good))


def send_fragments(c, direction, frags, whole, order, what):
    dev = "wan0" if direction == ORIG else BACKENDS[c.backend[0]][1]
    outs = []
    for i in order:
        v, out = T.run(frags[i], dev)
        w = "%s, fragment %d (offset %d)" % (what, i + 1, frags[i][IP].frag * 8)
        expect_verdict(v, XDP_REDIRECT, w)
        expect_bytes(out, expected_fragment(frags[i], whole, direction, c), w)
        ip_checksum_ok(out, w)
        outs.append(out)
    return outs


def check_reassembled(outs, whole, direction, c, what):
    """Reassemble the forwarded fragments and let scapy check the datagram
    on its own: translated tuple, valid UDP checksum, same payload."""
    d = defragment([Ether(o)[IP] for o in outs])
    check(len(d) == 1 and UDP in d[0], "%s: the forwarded fragments do not "
          "reassemble into one UDP datagram" % what)
    got = IP(bytes(d[0]))
    addr, port = c.backend
    want = (CLIENT_IP, addr, c.sport, port) if direction == ORIG else \
        (WAN_IP, CLIENT_IP, c.rule.ext_port, c.sport)
    tup = (got.src, got.dst, got[UDP].sport, got[UDP].dport)
    check(tup == want, "%s: the reassembled datagram is %s, expected %s" %
          (what, tup, want))
    q = got.copy()
    del q[UDP].chksum
    good = IP(bytes(q))[UDP].chksum
    check(good == got[UDP].chksum, "%s: the reassembled datagram's UDP checksum "
          "is 0x%04x, scapy computes 0x%04x" % (what, got[UDP].chksum, good))
    check(bytes(got[UDP].payload) == bytes(whole[UDP].payload),
          "%s: the reassembled payload differs from the one sent" % what)


def frag_key(src, dst, ip_id):
    return (socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack("!HBx", ip_id, socket.IPPROTO_UDP))


def test_fragments_in_order():
    c = Conn(R_UDP)
    ip_id = 0x1a01
    whole, frags = datagram_fragments(c, ORIG, ip_id)
    what = "a 3000-byte datagram in 3 fragments, in order"
    t0 = now()
    outs = send_fragments(c, ORIG, frags, whole, [0], what)
    t1 = now()
    raw = bpfsys.map_lookup(T.map_fd("frags"), frag_key(CLIENT_IP, WAN_IP, ip_id), 24)
    check(raw is not None, "the first fragment left no record in frags under "
          "(client, %s, id 0x%x, udp)" % (WAN_IP, ip_id))
    check(raw[:16] == c.orig_key(), "the frags record should name the flow key "
          "%s, it holds %s" % (c.orig_key().hex(), raw[:16].hex()))
    seen = struct.unpack_from("=Q", raw, 16)[0]
    check(t0 <= seen <= t1, "the frags record's seen_ns %d is outside the first "
          "fragment's send window %d..%d" % (seen, t0, t1))
    outs += send_fragments(c, ORIG, frags, whole, [1, 2], what)
    check_reassembled(outs, whole, ORIG, c, what)
    c.expect("after a fragmented first datagram", "flows_new", "udp_unreplied",
             0, counters=False)


def test_fragments_out_of_order():
    c = Conn(R_UDP)
    whole, frags = datagram_fragments(c, ORIG, 0x1a02)
    what = "a 3000-byte datagram sent first, third, second"
    outs = send_fragments(c, ORIG, frags, whole, [0, 2, 1], what)
    check_reassembled(outs, whole, ORIG, c, what)


def test_fragment_before_first_passes():
    c = Conn(R_UDP)
    whole, frags = datagram_fragments(c, ORIG, 0x1a03)
    what = "a datagram whose second fragment comes before its first"
    expect_untouched(frags[1], "wan0", what + ": the early second fragment",
                     "pass_frag_unmatched")
    outs = send_fragments(c, ORIG, frags, whole, [0, 2, 1], what)
    check_reassembled(outs, whole, ORIG, c, what)
    # a later fragment whose record is older than the kernel's ipfrag_time
    d = Conn(R_UDP)
    whole, frags = datagram_fragments(d, ORIG, 0x1a04)
    send_fragments(d, ORIG, frags, whole, [0], "a datagram")
    key = frag_key(CLIENT_IP, WAN_IP, 0x1a04)
    raw = bpfsys.map_lookup(T.map_fd("frags"), key, 24)
    check(raw is not None, "the first fragment left no record in frags")
    bpfsys.map_update(T.map_fd("frags"), key, raw[:16] + struct.pack(
        "=Q", now() - (FRAG_TIMEOUT + 1) * SEC), bpfsys.BPF_EXIST)
    expect_untouched(frags[1], "wan0", "a later fragment %d s after its first"
                     % (FRAG_TIMEOUT + 1), "pass_frag_unmatched")


def test_reply_fragments():
    c = Conn(R_UDP)
    c.send_orig("a query", payload=b"q")
    whole, frags = datagram_fragments(c, REPLY, 0x2b01)
    what = "a 3000-byte answer from the backend in 3 fragments"
    outs = send_fragments(c, REPLY, frags, whole, [0, 2, 1], what)
    check_reassembled(outs, whole, REPLY, c, what)
    d = Conn(R_UDP)
    d.send_orig("a query", payload=b"q")
    whole, frags = datagram_fragments(d, REPLY, 0x2b02)
    expect_untouched(frags[2], "lan0", "a backend's last fragment before its "
                     "first", "pass_frag_unmatched")


# --------------------------------------------------------------------------
# The express path: once a connection is in a state its packets cannot
# change, a packet the full path sent fills its CPU's express slot (the
# tuple, the next hop), which the direction's next packets use for a
# second; a state change empties the slots of both directions on its CPU.
# The tests run on one CPU (topo.run_tests).

EXPRESS_SECOND = 954     # EXPRESS_TTL_UNITS: a second in the stamp's 2^20 ns units


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def expect_no_slot(what, key):
    check(not T.express(key), "%s: no express slot should hold the key, %d do" %
          (what, len(T.express(key))))


def expect_next_hop(what, key, dev, dmac, smac, mtu):
    slots = T.express(key)
    check(len(slots) == 1, "%s: one express slot should hold the key, %d do" %
          (what, len(slots)))
    e = slots[0][2]
    check(e.stamp != 0 and (e.ifindex, e.dmac, e.smac, e.mtu) ==
          (T.ifindex[dev], mac_bytes(dmac), mac_bytes(smac), mtu),
          "%s: the slot should keep the next hop (ifindex %d, %s, %s, MTU %d), it "
          "keeps stamp %d, ifindex %d, %s, %s, MTU %d" %
          (what, T.ifindex[dev], dmac, smac, mtu, e.stamp, e.ifindex,
           e.dmac.hex(":"), e.smac.hex(":"), e.mtu))


def age_next_hop(key, seconds, seen=False):
    """Make the next hop the express slots of @key keep @seconds old (with
    @seen, their last packet too)."""
    ncpu = bpfsys.possible_cpus()
    for i, cpu, e in T.express(key):
        raw = bytearray(bpfsys.map_lookup(T.map_fd("express_cache"), struct.pack("=I", i),
                                          Express.SIZE * ncpu))
        stamp = (e.stamp - int(seconds * EXPRESS_SECOND)) & 0xffffffff or 1
        slot = e.with_stamp(stamp)
        if seen:
            slot = slot[:80] + struct.pack("=Q", max(e.seen_ns - int(seconds * SEC), 0))
        raw[Express.SIZE * cpu:Express.SIZE * (cpu + 1)] = slot
        bpfsys.map_update(T.map_fd("express_cache"), struct.pack("=I", i), bytes(raw))


def test_next_hop_kept_once_established():
    c = Conn(R_UDP)
    c.send_orig("the first datagram")
    c.send_reply("the answer")
    c.expect("after the answer", "flows", "udp_replied", SEEN_REPLY | ASSURED)
    for key in (c.orig_key(), c.reply_key()):
        expect_no_slot("after packets that changed the connection's state", key)
    for i in range(3):
        c.send_orig("client datagram %d once replied" % i)
        c.send_reply("backend datagram %d once replied" % i)
    c.expect("after three datagrams each way", "flows", "udp_replied", SEEN_REPLY | ASSURED)
    expect_next_hop("the original direction", c.orig_key(), "lan0", BACKEND5_MAC, LAN0_MAC,
                    1500)
    expect_next_hop("the reply direction", c.reply_key(), "wan0", CLIENT_MAC, WAN0_MAC, 1500)
    pending = T.pending(c.orig_key())
    check(pending[0] == 2, "two client datagrams should have gone the express way and "
          "wait in the slot's count, %d do" % pending[0])
    rid, _ = R_UDP.entry()
    check(rule_stats(rid)[:4] != [0, 0, 0, 0], "the rule's counters stayed at 0")


def test_next_hop_used_for_a_second():
    c = Conn(R_UDP)
    c.send_orig("the first datagram")
    c.send_reply("the answer")
    c.send_orig("a datagram once replied")
    other_mac = "02:00:00:00:64:99"
    try:
        T.in_ns("ip", "neigh", "replace", BACKEND5, "lladdr", other_mac, "dev", "lan0",
                "nud", "permanent")
        for what, want in (("within a second of its resolution", BACKEND5_MAC),
                           ("once the kept next hop is a second old", other_mac)):
            if want == other_mac:
                age_next_hop(c.orig_key(), 1.01)
            what = "a datagram after the backend's MAC changed, " + what
            v, out = T.run(c.orig(), "wan0")
            expect_verdict(v, XDP_REDIRECT, what)
            check(Ether(out).dst == want, "%s should go to %s, it went to %s" %
                  (what, want, Ether(out).dst))
            c.count(ORIG, c.orig())
        expect_next_hop("after the lookup anew", c.orig_key(), "lan0", other_mac, LAN0_MAC,
                        1500)
    finally:
        T.in_ns("ip", "neigh", "replace", BACKEND5, "lladdr", BACKEND5_MAC, "dev", "lan0",
                "nud", "permanent")
    age_next_hop(c.orig_key(), 2)
    c.send_orig("a datagram once the MAC is back")
    c.expect("after the MAC changed twice", "flows", "udp_replied", SEEN_REPLY | ASSURED)


def test_next_hop_dropped_on_state_change():
    c = Conn(R_TCP)
    c.handshake()
    for i in range(2):
        c.send_orig("client data %d" % i, flags="PA", payload=b"q")
        c.send_reply("backend data %d" % i, flags="PA", payload=b"r")
    expect_next_hop("established, the client's direction", c.orig_key(), "lan0",
                    BACKEND5_MAC, LAN0_MAC, 1500)
    expect_next_hop("established, the backend's direction", c.reply_key(), "wan0",
                    CLIENT_MAC, WAN0_MAC, 1500)
    c.send_orig("the client's FIN", flags="FA")
    for key in (c.orig_key(), c.reply_key()):
        expect_no_slot("after the client's FIN", key)
    c.send_reply("the backend's ACK", flags="A")
    c.send_reply("the backend's FIN", flags="FA")
    c.send_orig("the client's last ACK", flags="A")
    c.expect("after both FINs and the last ACK", "flows", "time_wait",
             SEEN_REPLY | ASSURED | FIN_ORIG | FIN_REPLY)


def test_next_hop_mtu_sends_big_packets_the_full_way():
    c = Conn(R_SMALL_UDP)
    c.send_orig("the first datagram")
    c.send_reply("the answer")
    c.send_orig("a datagram once replied")
    expect_next_hop("toward lan1", c.orig_key(), "lan1", BACKEND7_MAC, LAN1_MAC, SMALL_MTU)
    pkt = _df(c.orig(payload=b"d" * 1372))
    expect_generated(pkt, generated(pkt, 3, 4, mtu=SMALL_MTU), "icmp_frag_needed",
                     "a 1400-byte DF datagram of a connection whose next hop is kept "
                     "(lan1, MTU %d)" % SMALL_MTU)
    c.send_orig("a datagram of lan1's MTU", payload=b"m" * (SMALL_MTU - 28))


TESTS = [
    test_map_layouts,
    test_tcp_handshake_to_time_wait,
    test_tcp_rst_closes,
    test_rst_without_connection_passes,
    test_midstream_ack_picked_up,
    test_udp_unreplied_then_replied,
    test_expiry_by_state,
    test_expired_reply_passes_untranslated,
    test_timeout_command_changes_expiry,
    test_deleted_rule_stops_connections,
    test_stale_generation_not_used,
    test_replace_keeps_existing_connections,
    test_icmp_errors_toward_client,
    test_icmp_errors_toward_backend,
    test_icmp_error_unknown_connection_passes,
    test_generated_time_exceeded,
    test_generated_frag_needed,
    test_too_big_without_df_passes_translated,
    test_ttl_expiring_without_icmp,
    test_fragments_in_order,
    test_fragments_out_of_order,
    test_fragment_before_first_passes,
    test_reply_fragments,
    test_next_hop_kept_once_established,
    test_next_hop_used_for_a_second,
    test_next_hop_dropped_on_state_change,
    test_next_hop_mtu_sends_big_packets_the_full_way,
]


if __name__ == "__main__":
    sys.exit(topo.run_tests("conntrack", T, TESTS, only=sys.argv[1:]))
