#!/usr/bin/python3
"""Packet-level unit tests of the xdpfwd XDP datapath.

Run as root from the repository root:
    /usr/bin/python3 tests/unit/test_datapath.py

Builds a private namespace (tests/unit/topo.py: two veth pairs, permanent
neighbours), loads xdpfwd into it with a private --pin-dir and runs
scapy-built frames through the pinned prog_native with BPF_PROG_TEST_RUN.
Every expected output frame is built by scapy, checksums included; outputs
are compared byte for byte. Ends with "unit: N passed, M failed"; exit 1 on
any failure. Everything is removed on exit.
"""
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpfsys import XDP_PASS, XDP_REDIRECT  # noqa: E402
import topo  # noqa: E402
from topo import (client_port, Link, Topo, check, concrete, translated,  # noqa: E402
                  pseudo_partial, expect_verdict, expect_bytes, scapy_checksums_ok)

from scapy.layers.l2 import Ether, ARP, Dot1Q  # noqa: E402
from scapy.layers.inet import (IP, TCP, UDP, ICMP, IPOption_Router_Alert,  # noqa: E402
                               IPOption_NOP, IPOption_EOL)
from scapy.packet import Raw, Padding  # noqa: E402

# Addresses: TEST-NET-3 on the WAN side, TEST-NET-2 on the LAN side.
WAN_IP, LAN_IP = "203.0.113.1", "198.51.100.1"
WAN_IP2 = "203.0.113.2"              # secondary address of wan0
CLIENT_IP, CLIENT_MAC = "203.0.113.50", "02:00:00:00:71:50"
OTHER_WAN_IP = "203.0.113.99"        # not an address of ours
TRANSIT_LAN_IP = "198.51.100.77"     # on lan0's subnet, not an address of ours
EXT_IP = "203.0.113.77"              # explicit external address of a rule
HAIRPIN_IP, HAIRPIN_MAC = "203.0.113.9", "02:00:00:00:71:09"
BACKEND5, BACKEND5_MAC = "198.51.100.5", "02:00:00:00:64:05"
BACKEND6, BACKEND6_MAC = "198.51.100.6", "02:00:00:00:64:06"
WAN0_MAC, LAN0_MAC = "02:00:00:00:01:01", "02:00:00:00:02:01"
WAN0P_MAC, LAN0P_MAC = "02:00:00:00:01:02", "02:00:00:00:02:02"

# Rules: (proto, ext_addr or None, ext_port, int_addr, int_port)
R_TCP = ("tcp", None, 8080, BACKEND5, 80)
R_UDP = ("udp", None, 5353, BACKEND5, 53)
R_EXT = ("tcp", EXT_IP, 9000, BACKEND6, 90)
R_HAIRPIN = ("tcp", None, 7070, HAIRPIN_IP, 70)
NONEIGH_IP = "198.51.100.8"          # on lan0's subnet, never answers ARP
R_NONEIGH = ("tcp", None, 8181, NONEIGH_IP, 81)
RULES = [R_TCP, R_UDP, R_EXT, R_HAIRPIN, R_NONEIGH]


def rule_args(rule):
    """@rule as the arguments of `xdpfwd add`."""
    proto, ext_addr, ext_port, int_addr, int_port = rule
    ext = "%s:%d" % (ext_addr, ext_port) if ext_addr else str(ext_port)
    return [proto, ext, "%s:%d" % (int_addr, int_port)]


T = Topo("xfu",
         links=[Link("wan0", WAN0_MAC, "wan0p", WAN0P_MAC,
                     [WAN_IP + "/24", WAN_IP2 + "/24"]),
                Link("lan0", LAN0_MAC, "lan0p", LAN0P_MAC, [LAN_IP + "/24"])],
         neighbours=[(CLIENT_IP, CLIENT_MAC, "wan0"),
                     (HAIRPIN_IP, HAIRPIN_MAC, "wan0"),
                     (BACKEND5, BACKEND5_MAC, "lan0"),
                     (BACKEND6, BACKEND6_MAC, "lan0")],
         load=["wan0", "lan0"],
         rules=[rule_args(r) for r in RULES])


# --------------------------------------------------------------------------
# Packet helpers.

def reasons():
    """Reason counters as `xdpfwd -j status` reports them: through the CLI,
    so that its JSON is checked too (Topo.reasons reads the map)."""
    return T.xdpfwd("status", json_out=True)["reasons"]


class Ledger:
    """What each rule's counters should read: translated packets that were
    not dropped, bytes = IP total length."""
    counts = {}

    @classmethod
    def add(cls, rule, direction, frame):
        c = cls.counts.setdefault(rule, {"orig_packets": 0, "orig_bytes": 0,
                                         "reply_packets": 0, "reply_bytes": 0})
        c[direction + "_packets"] += 1
        c[direction + "_bytes"] += Ether(bytes(frame))[IP].len


def client_tcp(dst, dport, sport=None, flags="S", payload=b"", ttl=64, **ip_kw):
    sport = sport or client_port()
    return concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                    IP(src=CLIENT_IP, dst=dst, ttl=ttl, id=0x1234, **ip_kw) /
                    TCP(sport=sport, dport=dport, flags=flags, seq=1000, ack=0 if
                        flags == "S" else 5000, window=64240,
                        options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None),
                                 ("WScale", 7)] if flags == "S" else []) /
                    (Raw(payload) if payload else b""))


def forward_orig(pkt, rule, what, dev="wan0", verdict=XDP_REDIRECT,
                 out_mac=LAN0_MAC, backend_mac=None, generic=False,
                 partial_out=False):
    """Send a client->external packet; expect it DNATed to the rule's
    backend and forwarded."""
    proto, _, _, int_addr, int_port = rule
    backend_mac = backend_mac or {BACKEND5: BACKEND5_MAC, BACKEND6: BACKEND6_MAC,
                                  HAIRPIN_IP: HAIRPIN_MAC}[int_addr]
    Ledger.add(rule, "orig", pkt)
    v, out = T.run(pkt, dev, generic=generic)
    expect_verdict(v, verdict, what)
    keep = proto == "udp" and pkt[UDP].chksum == 0
    want = translated(pkt, backend_mac, out_mac, keep_l4_csum=keep,
                      partial=partial_out, dst=int_addr, dport=int_port)
    expect_bytes(out, want, what)
    if not partial_out:
        scapy_checksums_ok(out, what, udp_zero_ok=keep)
    return out


def backend_reply(orig, rule, flags="SA", payload=b"", src_mac=BACKEND5_MAC):
    """The backend's answer to the client packet @orig (as sent by it)."""
    _, _, _, int_addr, int_port = rule
    if TCP in orig:
        l4 = TCP(sport=int_port, dport=orig[TCP].sport, flags=flags, seq=7000,
                 ack=orig[TCP].seq + 1, window=65160)
    else:
        l4 = UDP(sport=int_port, dport=orig[UDP].sport)
    return concrete(Ether(src=src_mac, dst=LAN0_MAC) /
                    IP(src=int_addr, dst=CLIENT_IP, ttl=64, id=0x4321) / l4 /
                    (Raw(payload) if payload else b""))


def forward_reply(pkt, rule, ext_addr, what):
    _, _, ext_port, _, _ = rule
    Ledger.add(rule, "reply", pkt)
    v, out = T.run(pkt, "lan0")
    expect_verdict(v, XDP_REDIRECT, what)
    keep = UDP in pkt and pkt[UDP].chksum == 0
    want = translated(pkt, CLIENT_MAC, WAN0_MAC, keep_l4_csum=keep,
                      src=ext_addr, sport=ext_port)
    expect_bytes(out, want, what)
    scapy_checksums_ok(out, what, udp_zero_ok=keep)
    return out


def expect_untouched(frame, dev, what, reason=None):
    """@frame must pass unchanged; with @reason, that counter must go up
    by exactly one."""
    before = reasons() if reason else None
    v, out = T.run(frame, dev)
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, bytes(frame), what)
    if reason:
        after = reasons()
        check(after.get(reason, 0) - before.get(reason, 0) == 1,
              "%s: the %s counter should have gone up by 1 but went from %d "
              "to %d" % (what, reason, before.get(reason, 0),
                         after.get(reason, 0)))


# --------------------------------------------------------------------------
# The cases.

def test_tcp_syn_dnat_redirect():
    syn = client_tcp(WAN_IP, 8080)
    forward_orig(syn, R_TCP, "a SYN to wan0's address on port 8080")
    ack = client_tcp(WAN_IP, 8080, sport=syn[TCP].sport, flags="PA",
                     payload=b"GET / HTTP/1.0\r\n\r\n")
    forward_orig(ack, R_TCP, "a data segment of the same connection")
    forward_orig(client_tcp(WAN_IP2, 8080), R_TCP,
                 "a SYN to wan0's secondary address 203.0.113.2 on port 8080")


def test_tcp_reply_snat_redirect():
    syn = client_tcp(WAN_IP, 8080)
    forward_orig(syn, R_TCP, "the SYN that opens the connection")
    forward_reply(backend_reply(syn, R_TCP), R_TCP, WAN_IP,
                  "the backend's SYN-ACK arriving on lan0")
    forward_reply(backend_reply(syn, R_TCP, flags="PA", payload=b"x" * 101),
                  R_TCP, WAN_IP, "a backend data segment with an odd length")


def udp_datagram(dport, payload, csum=None, sport=None):
    return concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                    IP(src=CLIENT_IP, dst=WAN_IP, ttl=64, id=7) /
                    UDP(sport=sport or client_port(), dport=dport, chksum=csum) /
                    Raw(payload))


def test_udp_zero_checksum_stays_zero():
    dgram = udp_datagram(5353, b"\x12\x34\x01\x00" + b"q" * 21, csum=0)
    out = forward_orig(dgram, R_UDP, "a UDP datagram without checksum (0)")
    check(Ether(out)[UDP].chksum == 0,
          "a UDP datagram without checksum should leave with checksum 0")
    reply = concrete(Ether(src=BACKEND5_MAC, dst=LAN0_MAC) /
                     IP(src=BACKEND5, dst=CLIENT_IP, ttl=64) /
                     UDP(sport=53, dport=dgram[UDP].sport, chksum=0) /
                     Raw(b"answer"))
    out = forward_reply(reply, R_UDP, WAN_IP, "a checksum-less UDP reply")
    check(Ether(out)[UDP].chksum == 0,
          "a checksum-less UDP reply should leave with checksum 0")


def test_udp_checksum_updated():
    dgram = udp_datagram(5353, b"\xab\xcd" + b"query" * 5)
    forward_orig(dgram, R_UDP, "a UDP datagram with a checksum")
    forward_reply(concrete(Ether(src=BACKEND5_MAC, dst=LAN0_MAC) /
                           IP(src=BACKEND5, dst=CLIENT_IP, ttl=64) /
                           UDP(sport=53, dport=dgram[UDP].sport) / Raw(b"ans")),
                  R_UDP, WAN_IP, "a UDP reply with a checksum")

    # A datagram whose translated checksum computes to 0 must carry 0xffff
    # (RFC 768). The first payload word is chosen so that it does: with
    # word 0 the sum is ~c, adding c makes it 0xffff.
    sport = client_port()
    probe = udp_datagram(5353, b"\x00\x00" + b"edge-case", sport=sport)
    c = Ether(translated(probe, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5,
                         dport=53))[UDP].chksum
    edge = udp_datagram(5353, struct.pack("!H", c) + b"edge-case", sport=sport)
    want = Ether(translated(edge, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5, dport=53))
    check(want[UDP].chksum == 0xffff, "test setup: the edge datagram was not "
          "crafted right (scapy gives 0x%04x)" % want[UDP].chksum)
    forward_orig(edge, R_UDP, "a UDP datagram whose new checksum computes to 0")

    # And the converse: an input checksum of 0xffff (computed 0).
    sport = client_port()
    probe = udp_datagram(5353, b"\x00\x00" + b"other-edge", sport=sport)
    edge = udp_datagram(5353, struct.pack("!H", probe[UDP].chksum) +
                        b"other-edge", sport=sport)
    check(edge[UDP].chksum == 0xffff, "test setup: the 0xffff datagram was "
          "not crafted right (scapy gives 0x%04x)" % edge[UDP].chksum)
    forward_orig(edge, R_UDP, "a UDP datagram with checksum 0xffff")


def test_explicit_external_address():
    syn = client_tcp(EXT_IP, 9000)
    forward_orig(syn, R_EXT, "a SYN to the rule's external address "
                 "203.0.113.77:9000")
    forward_reply(backend_reply(syn, R_EXT, src_mac=BACKEND6_MAC), R_EXT, EXT_IP,
                  "the SYN-ACK from 198.51.100.6:90")
    # A minimum-size frame: 54 bytes of headers plus Ethernet padding that
    # must come out untouched.
    sport = client_port()
    padded = concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                      IP(src=CLIENT_IP, dst=EXT_IP, ttl=64) /
                      TCP(sport=sport, dport=9000, flags="S") /
                      Padding(b"\x00\x00\xa5\x5a\x00\x01"))
    check(len(padded) == 60, "test setup: the padded frame is not 60 bytes")
    forward_orig(padded, R_EXT, "a 60-byte SYN with Ethernet padding")


def forward_snat(pkt, rule, snat_addr, what, out_mac, backend_mac, dev="wan0"):
    """Send a client packet that must leave DNATed to the rule's backend
    and source-NATed to @snat_addr, from a port of the config's SNAT range;
    returns that port."""
    _, _, _, int_addr, int_port = rule
    Ledger.add(rule, "orig", pkt)
    v, out = T.run(pkt, dev)
    expect_verdict(v, XDP_REDIRECT, what)
    got = Ether(out)
    check(TCP in got, "%s: the output is not a TCP segment: %r" % (what, got))
    sport = got[TCP].sport
    lo, hi = T.snat_range()
    check(lo <= sport <= hi, "%s: the source port %d should lie in the SNAT "
          "range %d-%d of the config" % (what, sport, lo, hi))
    want = translated(pkt, backend_mac, out_mac, src=snat_addr, sport=sport,
                      dst=int_addr, dport=int_port)
    expect_bytes(out, want, what + " (from %s:%d to %s:%d)" %
                 (snat_addr, sport, int_addr, int_port))
    scapy_checksums_ok(out, what)
    return sport


def test_hairpin_source_nated():
    # A backend reached back out the ingress would answer the client
    # directly; so it must see the router as the source, and its answer
    # must come back to the router to be translated.
    for ext in (WAN_IP, WAN_IP2):
        syn = client_tcp(ext, 7070)
        what = "a SYN to %s:7070 for a backend behind wan0 itself" % ext
        before = reasons().get("fwd_tx", 0)
        sport = forward_snat(syn, R_HAIRPIN, WAN_IP, what, WAN0_MAC, HAIRPIN_MAC)
        after = reasons().get("fwd_tx", 0)
        check(after == before + 1, "%s: sent back out wan0, it should count as "
              "fwd_tx, but fwd_tx went from %d to %d" % (what, before, after))
        reply = concrete(Ether(src=HAIRPIN_MAC, dst=WAN0_MAC) /
                         IP(src=HAIRPIN_IP, dst=WAN_IP, ttl=64, id=0x4321) /
                         TCP(sport=70, dport=sport, flags="SA", seq=7000,
                             ack=syn[TCP].seq + 1, window=65160))
        what = "the backend's SYN-ACK to %s:%d (the SNAT address and port)" % (
            WAN_IP, sport)
        Ledger.add(R_HAIRPIN, "reply", reply)
        v, out = T.run(reply, "wan0")
        expect_verdict(v, XDP_REDIRECT, what)
        expect_bytes(out, translated(reply, CLIENT_MAC, WAN0_MAC, src=ext,
                                     sport=7070, dst=CLIENT_IP,
                                     dport=syn[TCP].sport),
                     what + " (should go to the client from %s:7070)" % ext)
        scapy_checksums_ok(out, what)
    seg = as_partial(client_tcp(WAN_IP, 7070, flags="PA", payload=b"h" * 45))
    forward_snat(seg, R_HAIRPIN, WAN_IP, "a CHECKSUM_PARTIAL segment sent back "
                 "out wan0 (completed when sent back out wan0 too)", WAN0_MAC,
                 HAIRPIN_MAC)


def test_no_match_passes_untouched():
    expect_untouched(client_tcp(WAN_IP, 8081), "wan0",
                     "a SYN to a port without a rule", "pass_no_match")
    expect_untouched(client_tcp(OTHER_WAN_IP, 8080), "wan0",
                     "a SYN to 203.0.113.99:8080, passing through (not our "
                     "address)", "pass_no_match")
    expect_untouched(client_tcp(TRANSIT_LAN_IP, 8080), "wan0",
                     "a SYN to %s:8080 arriving on wan0, passing through to "
                     "lan0's subnet (not our address)" % TRANSIT_LAN_IP,
                     "pass_no_match")
    expect_untouched(client_tcp("127.0.0.1", 8080), "wan0",
                     "a SYN to 127.0.0.1:8080 arriving on wan0 (loopback "
                     "addresses are not served)", "pass_no_match")
    expect_untouched(client_tcp(WAN_IP, 9000), "wan0",
                     "a SYN to wan0's address on the port of a rule with "
                     "another external address", "pass_no_match")
    expect_untouched(udp_datagram(8080, b"not tcp"), "wan0",
                     "a UDP datagram to a TCP rule's port", "pass_no_match")
    expect_untouched(concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                              IP(src=CLIENT_IP, dst=WAN_IP) / ICMP()),
                     "wan0", "an ICMP echo request", "pass_no_match")


def test_wildcard_rule_serves_every_local_address():
    # A rule without an external address serves every address of this
    # host, whichever loaded interface the packet arrives on.
    syn = client_tcp(LAN_IP, 8080)
    forward_orig(syn, R_TCP, "a SYN to lan0's address %s:8080 arriving on wan0"
                 % LAN_IP)
    forward_reply(backend_reply(syn, R_TCP), R_TCP, LAN_IP,
                  "the backend's SYN-ACK to a client that came in to lan0's "
                  "address (should leave from %s:8080)" % LAN_IP)


def test_ttl_expiring_answered():
    for ttl in (1, 0):
        pkt = client_tcp(WAN_IP, 8080, ttl=ttl)
        before = reasons().get("icmp_time_exceeded", 0)
        v, out = T.run(pkt, "wan0")
        expect_verdict(v, XDP_REDIRECT, "a matching SYN with TTL %d" % ttl)
        err = Ether(out)
        check(ICMP in err and err[ICMP].type == 11 and err[IP].dst == CLIENT_IP and
              err[IP].src == WAN_IP,
              "a matching SYN with TTL %d should be answered with an ICMP time "
              "exceeded from %s to %s, got %r" % (ttl, WAN_IP, CLIENT_IP, err))
        after = reasons().get("icmp_time_exceeded", 0)
        check(after == before + 1, "the icmp_time_exceeded counter should have gone "
              "up by 1 for TTL %d but went from %d to %d" % (ttl, before, after))
    forward_orig(client_tcp(WAN_IP, 8080, ttl=2), R_TCP,
                 "a matching SYN with TTL 2 (leaves with TTL 1)")


def test_ip_options_translated():
    forward_orig(client_tcp(WAN_IP, 8080, options=[IPOption_Router_Alert()]),
                 R_TCP, "a SYN with a Router Alert IP option (ihl 6)")
    forward_orig(client_tcp(WAN_IP, 8080, flags="PA", payload=b"opt" * 7,
                            options=[IPOption_NOP(), IPOption_Router_Alert(),
                                     IPOption_NOP(), IPOption_NOP(),
                                     IPOption_EOL()]),
                 R_TCP, "a segment with NOP, Router Alert and EOL options (ihl 7)")
    forward_orig(concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                          IP(src=CLIENT_IP, dst=WAN_IP, ttl=30,
                             options=[IPOption_NOP()] * 3 + [IPOption_EOL()]) /
                          UDP(sport=client_port(), dport=5353) / Raw(b"u" * 9)),
                 R_UDP, "a UDP datagram with NOP/EOL options")


def _ip_frame(ip_bytes, ethertype=0x0800):
    return bytes(Ether(src=CLIENT_MAC, dst=WAN0_MAC, type=ethertype)) + ip_bytes


def test_malformed_frames_pass_untouched():
    good = bytes(client_tcp(WAN_IP, 8080, flags="PA", payload=b"p" * 20))[14:]
    good_udp = bytes(udp_datagram(5353, b"d" * 20))[14:]

    def patched(base, off, fmt, value):
        b = bytearray(base)
        struct.pack_into(fmt, b, off, value)
        return bytes(b)

    tcp_cut = IP(src=CLIENT_IP, dst=WAN_IP, proto=6, len=30)
    cases = [
        ("an Ethernet header alone (type IPv4)", _ip_frame(b""), "pass_malformed"),
        ("an IPv4 header cut at 12 bytes", _ip_frame(good[:12]), "pass_malformed"),
        ("an IPv4 header cut at 19 bytes", _ip_frame(good[:19]), "pass_malformed"),
        ("an IPv4 header with ihl 4", _ip_frame(patched(good, 0, "B", 0x44)),
         "pass_malformed"),
        ("an IPv4 header with ihl 0", _ip_frame(patched(good, 0, "B", 0x40)),
         "pass_malformed"),
        ("an IPv4 header with ihl 15 in a short packet",
         _ip_frame(patched(good, 0, "B", 0x4f)), "pass_malformed"),
        ("a version 6 header behind an IPv4 ethertype",
         _ip_frame(patched(good, 0, "B", 0x65)), "pass_malformed"),
        ("an IPv4 total length larger than the frame",
         _ip_frame(patched(good, 2, "!H", len(good) + 1)), "pass_malformed"),
        ("an IPv4 total length smaller than the header",
         _ip_frame(patched(good, 2, "!H", 16)), "pass_malformed"),
        ("a TCP header cut at 10 bytes",
         _ip_frame(bytes(tcp_cut)[:20] + good[20:30]), "pass_malformed"),
        ("a TCP header beyond the IP total length",
         _ip_frame(patched(good, 2, "!H", 30)), "pass_malformed"),
        ("a TCP data offset of 4", _ip_frame(patched(good, 32, "B", 0x40)),
         "pass_malformed"),
        ("a TCP data offset beyond the packet",
         _ip_frame(patched(good, 32, "B", 0xf0)), "pass_malformed"),
        ("a UDP length beyond the IP total length",
         _ip_frame(patched(good_udp, 24, "!H", len(good_udp) - 19)),
         "pass_malformed"),
        ("a UDP length below 8", _ip_frame(patched(good_udp, 24, "!H", 7)),
         "pass_malformed"),
        ("an ARP request", bytes(Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") /
                                 ARP(psrc=CLIENT_IP, pdst=WAN_IP)), "pass_not_ip"),
        ("an IPv6 ethertype frame", _ip_frame(good, 0x86dd), "pass_not_ip"),
        ("a VLAN-tagged IPv4 SYN to the rule port",
         bytes(Ether(src=CLIENT_MAC, dst=WAN0_MAC) / Dot1Q(vlan=5) /
               IP(src=CLIENT_IP, dst=WAN_IP) / TCP(dport=8080, flags="S")),
         "pass_not_ip"),
    ]
    for what, frame, reason in cases:
        expect_untouched(frame, "wan0", what, reason)
    rng = random.Random(0x5eed)
    for i in range(40):
        frame = bytes(rng.getrandbits(8) for _ in range(rng.randint(14, 200)))
        expect_untouched(frame, "wan0", "random frame #%d" % i)
        # random bytes behind a valid Ethernet header with type IPv4
        frame = _ip_frame(bytes(rng.getrandbits(8)
                                for _ in range(rng.randint(0, 120))))
        expect_untouched(frame, "lan0", "random IPv4-typed frame #%d" % i)


def test_checksum_partial_completed():
    rng = random.Random(9)
    for size in (0, 1, 33, 255, 511, 512, 600, 1111, 1400, 1460):
        payload = bytes(rng.getrandbits(8) for _ in range(size))
        full = client_tcp(WAN_IP, 8080, flags="PA", payload=payload)
        partial = full.copy()
        partial[TCP].chksum = pseudo_partial(full[IP], 6, full[IP].len - 20)
        partial = concrete(partial)
        out = forward_orig(partial, R_TCP, "a CHECKSUM_PARTIAL TCP segment with "
                           "%d payload bytes" % size)
        check(Ether(out)[TCP].chksum != partial[TCP].chksum,
              "the partial checksum was left as it was")
    forward_orig(as_partial(client_tcp(WAN_IP, 8080)), R_TCP,
                 "a CHECKSUM_PARTIAL SYN with TCP options")
    forward_orig(as_partial(client_tcp(WAN_IP, 8080, flags="PA", payload=b"o" * 31,
                                       options=[IPOption_Router_Alert()])),
                 R_TCP, "a CHECKSUM_PARTIAL segment with a Router Alert IP option")
    # the reply direction, from a backend that is a local socket
    syn = client_tcp(WAN_IP, 8080)
    forward_orig(syn, R_TCP, "the SYN of a connection")
    reply = backend_reply(syn, R_TCP, flags="PA", payload=b"r" * 77)
    reply[TCP].chksum = pseudo_partial(reply[IP], 6, reply[IP].len - 20)
    forward_reply(concrete(reply), R_TCP, WAN_IP,
                  "a CHECKSUM_PARTIAL reply segment from the backend")
    # UDP from a local socket
    forward_orig(as_partial(udp_datagram(5353, b"partial-udp-" * 3)), R_UDP,
                 "a CHECKSUM_PARTIAL UDP datagram")
    forward_orig(as_partial(udp_datagram(5353, b"odd" * 333)), R_UDP,
                 "a CHECKSUM_PARTIAL UDP datagram of odd length")


def as_partial(pkt):
    """@pkt with its L4 checksum in CHECKSUM_PARTIAL form."""
    q = pkt.copy()
    l4 = q[TCP] if TCP in q else q[UDP]
    l4.chksum = pseudo_partial(q[IP], q[IP].proto, q[IP].len - q[IP].ihl * 4)
    return concrete(q)


def lookalike_segment(dport, dst=WAN_IP):
    """A TCP segment whose full, valid checksum equals its pseudo-header
    sum, i.e. looks like CHECKSUM_PARTIAL by value. The first payload word
    is chosen to make it so; scapy confirms."""
    sport = client_port()
    probe = client_tcp(dst, dport, sport=sport, flags="PA",
                       payload=b"\x00\x00" + b"look-alike")
    target = pseudo_partial(probe[IP], 6, probe[IP].len - 20)
    s0 = (~probe[TCP].chksum) & 0xffff        # the sum with the word at 0
    w = (~target & 0xffff) + ((~s0) & 0xffff)  # makes ~(s0 + w) == target
    w = (w & 0xffff) + (w >> 16)
    pkt = client_tcp(dst, dport, sport=sport, flags="PA",
                     payload=struct.pack("!H", w & 0xffff) + b"look-alike")
    check(pkt[TCP].chksum == target, "test setup: the look-alike segment was "
          "not crafted right (0x%04x vs 0x%04x)" % (pkt[TCP].chksum, target))
    return pkt


def test_full_checksum_equal_to_pseudo_sum():
    # Treated as full (it verifies), it stays valid on every path; the
    # paths that do not finish partial checksums (no neighbour, generic)
    # are where a misreading would show.
    forward_orig(lookalike_segment(8080), R_TCP, "a full TCP checksum equal "
                 "to the pseudo-header sum (native, redirected)")
    forward_orig(lookalike_segment(8080), R_TCP, "a full TCP checksum equal "
                 "to the pseudo-header sum (generic program)", generic=True)
    pkt = lookalike_segment(8181)
    Ledger.add(R_NONEIGH, "orig", pkt)
    v, out = T.run(pkt, "wan0")
    what = "a full TCP checksum equal to the pseudo-header sum (no neighbour)"
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, translated(pkt, forwarded=False, dst=NONEIGH_IP, dport=81),
                 what)


def test_checksum_edge_values():
    # IP header checksum that must come out as 0x0000: the IP id is chosen
    # so that the translated header sums to 0xffff.
    sport = client_port()
    probe = client_tcp(WAN_IP, 8080, sport=sport)
    probe[IP].id = 0
    probe = concrete(probe)
    c = Ether(translated(probe, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5,
                         dport=80))[IP].chksum
    pkt = probe.copy()
    pkt[IP].id = c
    del pkt[IP].chksum
    pkt = concrete(pkt)
    want = Ether(translated(pkt, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5, dport=80))
    check(want[IP].chksum == 0, "test setup: the IP edge case was not crafted "
          "right (scapy gives 0x%04x)" % want[IP].chksum)
    forward_orig(pkt, R_TCP, "a SYN whose new IP checksum is 0x0000")
    # TCP checksum that must come out as 0x0000.
    sport = client_port()
    probe = client_tcp(WAN_IP, 8080, sport=sport, flags="PA",
                       payload=b"\x00\x00tcp-edge")
    c = Ether(translated(probe, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5,
                         dport=80))[TCP].chksum
    pkt = client_tcp(WAN_IP, 8080, sport=sport, flags="PA",
                     payload=struct.pack("!H", c) + b"tcp-edge")
    want = Ether(translated(pkt, BACKEND5_MAC, LAN0_MAC, dst=BACKEND5, dport=80))
    check(want[TCP].chksum == 0, "test setup: the TCP edge case was not "
          "crafted right (scapy gives 0x%04x)" % want[TCP].chksum)
    forward_orig(pkt, R_TCP, "a segment whose new TCP checksum is 0x0000")


def test_no_neighbour_passes_translated():
    before = reasons().get("pass_no_neigh", 0)
    syn = client_tcp(WAN_IP, 8181)
    Ledger.add(R_NONEIGH, "orig", syn)
    v, out = T.run(syn, "wan0")
    what = "a SYN to a backend without a neighbour entry"
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, translated(syn, forwarded=False, dst=NONEIGH_IP, dport=81),
                 what + " (translated, MACs and TTL left to the kernel)")
    scapy_checksums_ok(out, what)
    after = reasons().get("pass_no_neigh", 0)
    check(after == before + 1, "the pass_no_neigh counter should have gone up "
          "by 1 but went from %d to %d" % (before, after))
    seg = as_partial(client_tcp(WAN_IP, 8181, flags="PA", payload=b"n" * 51))
    Ledger.add(R_NONEIGH, "orig", seg)
    v, out = T.run(seg, "wan0")
    what = "a CHECKSUM_PARTIAL segment to a backend without a neighbour entry"
    expect_verdict(v, XDP_PASS, what)
    expect_bytes(out, translated(seg, forwarded=False, partial=True,
                                 dst=NONEIGH_IP, dport=81),
                 what + " (the field should hold the new pseudo-header sum)")


def test_generic_program_keeps_partial():
    forward_orig(client_tcp(WAN_IP, 8080), R_TCP, "a SYN through prog_generic",
                 generic=True)
    forward_orig(as_partial(client_tcp(WAN_IP, 8080, flags="PA",
                                       payload=b"g" * 99)),
                 R_TCP, "a CHECKSUM_PARTIAL segment through prog_generic (the "
                 "field should hold the new pseudo-header sum)", generic=True,
                 partial_out=True)
    forward_orig(as_partial(udp_datagram(5353, b"generic-udp")), R_UDP,
                 "a CHECKSUM_PARTIAL UDP datagram through prog_generic",
                 generic=True, partial_out=True)


def test_unknown_fragments_pass_untouched():
    mk = lambda **kw: concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /  # noqa: E731
                               IP(src=CLIENT_IP, dst=WAN_IP, ttl=64,
                                  id=random.randrange(1, 65536), proto=6, **kw) /
                               Raw(b"f" * 64))
    expect_untouched(mk(frag=100), "wan0", "a last TCP fragment (offset 100) of "
                     "a datagram whose first fragment was not seen",
                     "pass_frag_unmatched")
    expect_untouched(mk(flags="MF", frag=7), "wan0", "a middle TCP fragment of a "
                     "datagram whose first fragment was not seen",
                     "pass_frag_unmatched")
    # DF alone is not a fragment
    forward_orig(concrete(Ether(src=CLIENT_MAC, dst=WAN0_MAC) /
                          IP(src=CLIENT_IP, dst=WAN_IP, flags="DF") /
                          TCP(sport=client_port(), dport=8080)),
                 R_TCP, "a SYN with DF set (not a fragment)")


def test_rule_counters_match_traffic():
    stats = T.xdpfwd("stats", json_out=True)
    check(isinstance(stats, dict) and isinstance(stats.get("rules"), list),
          "xdpfwd -j stats should be an object with a rules array, got %r" % (stats,))
    stats = stats["rules"]
    check(len(stats) == len(RULES),
          "xdpfwd -j stats should list %d rules, got %r" % (len(RULES), stats))
    for rule in RULES:
        proto, ext_addr, ext_port, int_addr, int_port = rule
        rows = [r for r in stats if r.get("proto") == proto and
                r.get("ext_port") == ext_port and r.get("ext_addr") == ext_addr]
        check(len(rows) == 1, "xdpfwd -j stats should show one row for %s %s:%d,"
              " got %d" % (proto, ext_addr, ext_port, len(rows)))
        row = rows[0]
        check(row.get("int_addr") == int_addr and row.get("int_port") == int_port,
              "the stats row for %s %d should point at %s:%d, not %s:%s" %
              (proto, ext_port, int_addr, int_port, row.get("int_addr"),
               row.get("int_port")))
        one = {"ext_port_end": ext_port, "int_port_end": int_port, "snat": None,
               "allow": []}
        got = {k: row.get(k, "missing") for k in one}
        check(got == one, "the stats row for %s %d, a one-port rule without "
              "--snat or --allow, should read %s, it reads %s" %
              (proto, ext_port, one, got))
        want = Ledger.counts.get(rule, {})
        for key in ("orig_packets", "orig_bytes", "reply_packets", "reply_bytes",
                    "denied_packets"):
            check(row.get(key) == want.get(key, 0),
                  "the %s of rule %s %s%d should be %d but xdpfwd -j stats "
                  "shows %s" % (key, proto, ext_addr + ":" if ext_addr else "",
                                ext_port, want.get(key, 0), row.get(key)))


TESTS = [
    test_tcp_syn_dnat_redirect,
    test_tcp_reply_snat_redirect,
    test_udp_zero_checksum_stays_zero,
    test_udp_checksum_updated,
    test_explicit_external_address,
    test_hairpin_source_nated,
    test_no_match_passes_untouched,
    test_wildcard_rule_serves_every_local_address,
    test_ttl_expiring_answered,
    test_ip_options_translated,
    test_malformed_frames_pass_untouched,
    test_checksum_partial_completed,
    test_full_checksum_equal_to_pseudo_sum,
    test_checksum_edge_values,
    test_no_neighbour_passes_translated,
    test_generic_program_keeps_partial,
    test_unknown_fragments_pass_untouched,
    test_rule_counters_match_traffic,   # last: counts what the others sent
]


if __name__ == "__main__":
    sys.exit(topo.run_tests("unit", T, TESTS))
