"""A private network namespace with xdpfwd loaded in it, for packet tests.

A test program describes its links, neighbours and rules; Topo builds them
in a namespace of its own, loads xdpfwd there with a private --pin-dir,
moves the calling process into the namespace (bpf_fib_lookup in
BPF_PROG_TEST_RUN resolves in the caller's netns) and runs frames through
the pinned programs. run_tests() runs named test functions, prints one
"PASS name" / "FAIL name: why" line each and ends with the
"LABEL: N passed, M failed" line tests/run.sh counts. Everything is
removed on exit, signals included.
"""
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bpfsys  # noqa: E402
from bpfsys import VERDICT_NAMES  # noqa: E402

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP, in4_pseudoheader  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import checksum  # noqa: E402

XDPFWD = os.environ.get("XDPFWD_BIN") or os.path.join(REPO, "build", "xdpfwd")
HEADER = os.path.join(REPO, "include", "xdpfwd.h")


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


class Link:
    """A veth pair: @name (xdpfwd loads on it) and its idle peer. With
    @gro False the peer keeps GRO off, so @name cannot take XDP-redirected
    frames (xdpfwd leaves it out of tx_ports: a slow egress)."""

    def __init__(self, name, mac, peer, peer_mac, addrs, mtu=None, gro=True):
        self.name, self.mac, self.peer, self.peer_mac = name, mac, peer, peer_mac
        self.addrs, self.mtu, self.gro = addrs, mtu, gro


def sh(*cmd, check_rc=True, timeout=60):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise RuntimeError("command %r failed (exit %d): %s" %
                           (" ".join(cmd), r.returncode,
                            (r.stderr or r.stdout).strip()))
    return r


def header_define(name):
    """The brace list of `#define NAME {...}` in include/xdpfwd.h, as a
    list of str (quoted items) or int; the one source of names and
    defaults shared with the datapath."""
    with open(HEADER) as f:
        text = f.read()
    m = re.search(r"#define\s+%s\s*\{(.*?)\}" % re.escape(name), text, re.S)
    if not m:
        raise RuntimeError("%s defines no %s" % (HEADER, name))
    body = m.group(1).replace("\\\n", " ")
    items = [s.strip() for s in body.split(",") if s.strip()]
    return [s.strip('"') if s.startswith('"') else int(s, 0) for s in items]


def header_value(name):
    """The number of `#define NAME number` in include/xdpfwd.h."""
    with open(HEADER) as f:
        text = f.read()
    m = re.search(r"^#define\s+%s\s+(\w+)" % re.escape(name), text, re.M)
    if not m:
        raise RuntimeError("%s defines no number %s" % (HEADER, name))
    return int(m.group(1), 0)


def flow_key(saddr, daddr, sport, dport, proto):
    """A struct xdpfwd_flow_key: a direction's tuple as it arrives."""
    return (socket.inet_aton(saddr) + socket.inet_aton(daddr) +
            struct.pack("!HHB3x", sport, dport, proto))


_next_port = [40000]


def client_port():
    """A client source port no earlier packet of this run used."""
    _next_port[0] += 1
    return _next_port[0]


def l4_layer(proto, sport, dport, flags, payload, csum=None):
    """A TCP segment with @flags or a UDP datagram (checksum @csum, None:
    computed) carrying @payload."""
    if proto == "tcp":
        return TCP(sport=sport, dport=dport, flags=flags, seq=1000,
                   ack=0 if flags == "S" else 5000, window=64240) / \
            (Raw(payload) if payload else b"")
    return UDP(sport=sport, dport=dport, chksum=csum) / Raw(payload or b"udp-data")


class Flow:
    """A decoded struct xdpfwd_flow: one direction's entry."""
    SIZE = 56

    def __init__(self, raw):
        self.raw = raw
        self.saddr = socket.inet_ntoa(raw[0:4])
        self.daddr = socket.inet_ntoa(raw[4:8])
        self.sport, self.dport = struct.unpack_from("!HH", raw, 8)
        (self.rule_id, self.rule_gen, self.dir, self.state,
         self.flags) = struct.unpack_from("=IIBBB", raw, 12)
        (self.created_ns, self.seen_ns, self.packets,
         self.bytes) = struct.unpack_from("=4Q", raw, 24)

    def tuple(self):
        return (self.saddr, self.daddr, self.sport, self.dport)

    def with_seen(self, ns):
        return self.raw[:32] + struct.pack("=Q", ns) + self.raw[40:]

    def with_created(self, ns):
        return self.raw[:24] + struct.pack("=Q", ns) + self.raw[32:]


class Express:
    """A decoded struct xdpfwd_express: an express slot of one CPU."""
    SIZE = 88

    def __init__(self, raw):
        self.raw = raw
        self.key = raw[0:16]
        (self.stamp, self.ifindex, self.mtu) = struct.unpack_from("=IIH", raw, 36)
        self.dmac, self.smac = raw[46:52], raw[52:58]
        self.packets, self.bytes, self.seen_ns = struct.unpack_from("=3Q", raw, 64)

    def with_stamp(self, stamp):
        return self.raw[:36] + struct.pack("=I", stamp) + self.raw[40:]


def express_slot(key):
    """xdpfwd_express_slot() of include/xdpfwd.h: the first of @key's two
    slots in each CPU's express cache."""
    saddr, daddr, sport, dport, proto = struct.unpack_from("=IIHHB", key)
    m = 0xffffffff
    h = (saddr * 0x9e3779b1) & m
    h ^= (daddr * 0x85ebca77) & m
    h ^= (((sport << 16) | dport) * 0xc2b2ae3d) & m
    h ^= proto
    h ^= h >> 15
    h = (h * 0x2c1b3c6d) & m
    h ^= h >> 12
    return h & (header_value("XDPFWD_EXPRESS_SLOTS") - 1)


# struct xdpfwd_config: 48 bytes, the SNAT port range (host order u16s)
# after the ten timeouts
CONFIG_SIZE, CONFIG_SNAT_OFF = 48, 40


class Topo:
    def __init__(self, tag, links, neighbours, load, rules):
        """@links: Link list; @neighbours: (ip, mac, dev) list, made
        permanent; @load: the links xdpfwd loads on; @rules: the `add`
        argument lists."""
        unique = "%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.ns = "%s-%s" % (tag, unique)
        self.ns_path = "/run/netns/" + self.ns
        self.pin_dir = "/sys/fs/bpf/xdpfwd-test-" + unique
        self.links, self.neighbours = links, neighbours
        self.load, self.rules = load, rules
        self.orig_ns_fd = None
        self.joined = self.ns_created = self.cleaned = False
        self.prog_fds = {}
        self.map_fds = {}
        self.ifindex = {}
        self.reason_names = header_define("XDPFWD_REASON_NAMES")

    # -- commands in the namespace ------------------------------------

    def in_ns(self, *cmd, check_rc=True, timeout=60):
        return sh("nsenter", "--net=" + self.ns_path, *cmd, check_rc=check_rc,
                  timeout=timeout)

    def xdpfwd(self, *args, json_out=False, check_rc=True, timeout=60):
        cmd = [XDPFWD, "--pin-dir", self.pin_dir] + (["-j"] if json_out else [])
        r = self.in_ns(*cmd, *args, check_rc=check_rc, timeout=timeout)
        return json.loads(r.stdout) if json_out else r

    # -- building and removing ----------------------------------------

    def setup(self):
        if os.geteuid() != 0:
            raise RuntimeError("the unit tests must run as root")
        if not os.access(XDPFWD, os.X_OK):
            raise RuntimeError("%s is missing; run make first" % XDPFWD)
        self.orig_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        sh("ip", "netns", "add", self.ns)
        self.ns_created = True
        for key in ("net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                    "net.ipv4.ip_forward=1"):
            self.in_ns("sysctl", "-q", "-w", key)
        ipn = ("ip", "-n", self.ns)
        sh(*ipn, "link", "set", "lo", "up")
        for ln in self.links:
            sh(*ipn, "link", "add", ln.name, "address", ln.mac, "type", "veth",
               "peer", "name", ln.peer, "address", ln.peer_mac)
            for addr in ln.addrs:
                sh(*ipn, "addr", "add", addr, "dev", ln.name)
            for dev in (ln.name, ln.peer):
                if ln.mtu:
                    sh(*ipn, "link", "set", dev, "mtu", str(ln.mtu))
                sh(*ipn, "link", "set", dev, "up")
            # GRO on the peer lets the veth take XDP-redirected frames
            self.in_ns("ethtool", "-K", ln.peer, "gro", "on" if ln.gro else "off")
        for ip, mac, dev in self.neighbours:
            sh(*ipn, "neigh", "replace", ip, "lladdr", mac, "dev", dev,
               "nud", "permanent")
        self.xdpfwd("load", *self.load)
        for rule in self.rules:
            self.xdpfwd("add", *rule)
        bpfsys.setns_path(self.ns_path)
        self.joined = True
        for ln in self.links:
            self.ifindex[ln.name] = socket.if_nametoindex(ln.name)
        for name in ("prog_native", "prog_generic"):
            self.prog_fds[name] = bpfsys.obj_get(os.path.join(self.pin_dir, name))

    def cleanup(self):
        """Undo setup; every step runs even when an earlier one fails."""
        if self.cleaned:
            return
        self.cleaned = True
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        errors = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (what, e))

        def leave_ns():
            if self.joined:
                bpfsys.setns_fd(self.orig_ns_fd)
                self.joined = False

        def unload():
            if self.ns_created and os.path.exists(self.ns_path) and \
                    os.access(XDPFWD, os.X_OK):
                self.xdpfwd("unload", "--all", timeout=30)

        def del_ns():
            if self.ns_created:
                sh("ip", "netns", "del", self.ns)

        def rm_pins():
            if os.path.lexists(self.pin_dir):
                shutil.rmtree(self.pin_dir, ignore_errors=True)
                if os.path.lexists(self.pin_dir):
                    raise RuntimeError("could not remove " + self.pin_dir)

        for fd in list(self.prog_fds.values()) + list(self.map_fds.values()):
            step("closing an fd", lambda fd=fd: os.close(fd))
        step("leaving the namespace", leave_ns)
        step("xdpfwd unload --all", unload)
        step("ip netns del", del_ns)
        step("removing the pin dir", rm_pins)
        for e in errors:
            print("cleanup: " + e, file=sys.stderr)

    # -- packets and maps ----------------------------------------------

    def run(self, frame, dev, generic=False):
        """Run @frame as received on @dev through prog_native (or
        prog_generic); returns (verdict, output bytes). An output that
        carries XDP metadata fails the test: only run_meta() expects it."""
        v, meta, out = self.run_meta(frame, dev, generic)
        check(not meta, "the output of a frame received on %s carries %d bytes "
              "of XDP metadata (%s) in front of it, which only a source-NATed "
              "packet handed to TC should" % (dev, len(meta), meta.hex()))
        return v, out

    def run_meta(self, frame, dev, generic=False):
        """As run(); returns (verdict, XDP metadata bytes, output frame)."""
        fd = self.prog_fds["prog_generic" if generic else "prog_native"]
        v, out, meta_len = bpfsys.xdp_test_run(fd, bytes(frame), self.ifindex[dev])
        return v, out[:meta_len], out[meta_len:]

    def run_tc(self, prog, frame, dev):
        """Run @frame as an skb on @dev through the pinned TC program
        @prog; returns (return code, output bytes)."""
        if prog not in self.prog_fds:
            self.prog_fds[prog] = bpfsys.obj_get(os.path.join(self.pin_dir, prog))
        return bpfsys.skb_test_run(self.prog_fds[prog], bytes(frame), self.ifindex[dev])

    def map_fd(self, name):
        if name not in self.map_fds:
            self.map_fds[name] = bpfsys.obj_get(os.path.join(self.pin_dir, name))
        return self.map_fds[name]

    def flow(self, table, key):
        """The Flow under @key in the connection table @table, or None."""
        raw = bpfsys.map_lookup(self.map_fd(table), key, Flow.SIZE)
        return Flow(raw) if raw is not None else None

    def flow_tables(self, key):
        """The connection tables holding @key."""
        return [t for t in ("flows", "flows_new") if self.flow(t, key) is not None]

    def config(self):
        """The config map's one entry, as bytes."""
        return bpfsys.map_lookup(self.map_fd("config"), struct.pack("=I", 0),
                                 CONFIG_SIZE)

    def snat_range(self):
        """(first, last) source port SNAT picks from, as the datapath reads
        the config: 0, or a last port below the first, means the built-in
        range."""
        lo, hi = struct.unpack_from("=HH", self.config(), CONFIG_SNAT_OFF)
        if not lo or hi < lo:
            return (header_value("XDPFWD_SNAT_PORT_MIN"),
                    header_value("XDPFWD_SNAT_PORT_MAX"))
        return lo, hi

    def set_snat_range(self, lo, hi):
        """Write @lo..@hi into the config's SNAT port range."""
        raw = bytearray(self.config())
        struct.pack_into("=HH", raw, CONFIG_SNAT_OFF, lo, hi)
        bpfsys.map_update(self.map_fd("config"), struct.pack("=I", 0), bytes(raw))

    def express(self, key):
        """[(slot index, cpu, Express)] of every CPU's express slot holding
        the flow key @key."""
        ncpu = bpfsys.possible_cpus()
        found = []
        for way in (0, 1):
            i = express_slot(key) ^ way
            raw = bpfsys.map_lookup(self.map_fd("express_cache"), struct.pack("=I", i),
                                    Express.SIZE * ncpu)
            for cpu in range(ncpu):
                e = Express(raw[Express.SIZE * cpu:Express.SIZE * (cpu + 1)])
                if e.key == key:
                    found.append((i, cpu, e))
        return found

    def pending(self, key):
        """(packets, bytes, seen_ns) the express cache holds for @key and
        has not added to its entry."""
        got = [e for _, _, e in self.express(key)]
        return (sum(e.packets for e in got), sum(e.bytes for e in got),
                max([e.seen_ns for e in got] or [0]))

    def reasons(self):
        """Reason counters by name, summed over CPUs, read from the map."""
        fd = self.map_fd("reasons")
        ncpu = bpfsys.possible_cpus()
        out = {}
        for i, name in enumerate(self.reason_names):
            raw = bpfsys.map_lookup(fd, struct.pack("=I", i), 8 * ncpu)
            out[name] = sum(struct.unpack("=%dQ" % ncpu, raw)) if raw else 0
        return out


# --------------------------------------------------------------------------
# Comparing frames.

def concrete(pkt):
    """The packet as a parsed frame: every field explicit, nothing left
    for scapy to compute on a later build."""
    raw = bytes(pkt)
    p = Ether(raw)
    assert bytes(p) == raw, "scapy does not rebuild this frame byte-exactly"
    return p


def translated(pkt, eth_dst=None, eth_src=None, keep_l4_csum=False,
               forwarded=True, partial=False, **fields):
    """The frame the datapath should emit for @pkt: the given IP/L4 fields;
    when @forwarded, new MACs and TTL - 1. Checksums are recomputed by
    scapy; with @partial the L4 field is the CHECKSUM_PARTIAL value of the
    new header, with @keep_l4_csum it is left as it was."""
    q = pkt.copy()
    ip = q[IP]
    if forwarded:
        q[Ether].dst, q[Ether].src = eth_dst, eth_src
        ip.ttl -= 1
    for k in ("src", "dst"):
        if k in fields:
            setattr(ip, k, fields[k])
    l4 = q[TCP] if TCP in q else q[UDP]
    for k in ("sport", "dport"):
        if k in fields:
            setattr(l4, k, fields[k])
    del ip.chksum
    if partial:
        l4.chksum = pseudo_partial(ip, ip.proto, ip.len - ip.ihl * 4)
    elif not keep_l4_csum:
        del l4.chksum
    return bytes(q)


def pseudo_partial(ip, proto, l4_len):
    """The CHECKSUM_PARTIAL field value: the folded, uncomplemented
    pseudo-header sum (scapy's checksum() returns its complement)."""
    return (~checksum(in4_pseudoheader(proto, ip, l4_len))) & 0xffff


def vname(v):
    return VERDICT_NAMES.get(v, str(v))


def expect_verdict(got, want, what):
    check(got == want, "%s: the verdict should be %s but was %s" %
          (what, vname(want), vname(got)))


def _layer_fields(frame):
    """(layer name, field, value) of each field scapy parses in @frame."""
    out, layer, depth = [], Ether(frame), {}
    while layer is not None and layer.name not in ("Raw", "Padding", "NoPayload"):
        n = depth[layer.name] = depth.get(layer.name, 0) + 1
        tag = layer.name + ("#%d" % n if n > 1 else "")
        for f in layer.fields_desc:
            out.append((tag, f.name, layer.getfieldval(f.name)))
        layer = layer.payload if layer.payload else None
    return out


def field_diff(got, want):
    """Fields that differ between two frames, as scapy reads them."""
    try:
        g, w = _layer_fields(got), _layer_fields(want)
    except Exception:  # noqa: BLE001
        return ""

    def fmt(v):
        return "0x%x" % v if isinstance(v, int) and not isinstance(v, bool) else repr(v)
    diffs = ["%s.%s is %s, expected %s" % (lg, fg, fmt(vg), fmt(vw))
             for (lg, fg, vg), (lw, fw, vw) in zip(g, w)
             if (lg, fg) == (lw, fw) and vg != vw]
    return "; fields: " + ", ".join(diffs[:8]) if diffs else ""


def expect_bytes(got, want, what):
    if got == want:
        return
    if len(got) != len(want):
        raise TestFailure("%s: the output frame is %d bytes long, expected %d%s"
                          "\n  got  %s\n  want %s" %
                          (what, len(got), len(want), field_diff(got, want),
                           got[:96].hex(), want[:96].hex()))
    diffs = [i for i in range(len(got)) if got[i] != want[i]]
    shown = ", ".join("byte %d is 0x%02x, expected 0x%02x" % (i, got[i], want[i])
                      for i in diffs[:6])
    raise TestFailure("%s: the output differs from the expected frame in %d "
                      "byte(s): %s%s" % (what, len(diffs), shown,
                                         field_diff(got, want)))


def scapy_checksums_ok(out, what, udp_zero_ok=False):
    """Let scapy recompute the IP and L4 checksums of the output frame."""
    p = Ether(out)
    q = p.copy()
    check(IP in q, "%s: the output is not an IPv4 frame" % what)
    del q[IP].chksum
    ok_ip = bytes(q[IP])[:q[IP].ihl * 4] == bytes(p[IP])[:p[IP].ihl * 4]
    check(ok_ip, "%s: the IP header checksum 0x%04x of the output is wrong "
          "(scapy computes 0x%04x)" % (what, p[IP].chksum,
                                       Ether(bytes(q))[IP].chksum))
    for l4 in (TCP, UDP):
        if l4 in p:
            if l4 is UDP and udp_zero_ok and p[UDP].chksum == 0:
                return
            del q[l4].chksum
            good = Ether(bytes(q))[l4].chksum
            check(good == p[l4].chksum,
                  "%s: the %s checksum 0x%04x of the output is wrong (scapy "
                  "computes 0x%04x)" % (what, l4.__name__, p[l4].chksum, good))


# --------------------------------------------------------------------------
# Running.

class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__("interrupted by signal %d" % signum)
        self.signum = signum


def _on_signal(signum, _frame):
    raise Interrupted(signum)


def run_tests(label, topo, tests, only=None):
    """Set @topo up, run @tests (those named in @only, when given), clean
    up; returns the exit status (0 only when all passed)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    passed = failed = 0
    status = None
    # One CPU: BPF_PROG_TEST_RUN runs where the caller does, and the express
    # cache is per CPU, so that what one run leaves there the next finds.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    try:
        topo.setup()
        for t in tests:
            name = t.__name__[len("test_"):]
            if only and name not in only and t.__name__ not in only:
                continue
            try:
                t()
            except TestFailure as e:
                print("FAIL %s: %s" % (name, e))
                failed += 1
            except Exception as e:  # noqa: BLE001
                print("FAIL %s: the test raised %s: %s" %
                      (name, type(e).__name__, e))
                traceback.print_exc(file=sys.stderr)
                failed += 1
            else:
                print("PASS %s" % name)
                passed += 1
            sys.stdout.flush()
    except Interrupted as e:
        print("FAIL run: %s; cleaning up" % e)
        failed += 1
        status = 128 + e.signum
    except Exception as e:  # noqa: BLE001
        print("FAIL setup: %s" % e)
        traceback.print_exc(file=sys.stderr)
        failed += 1
    finally:
        topo.cleanup()
    print("%s: %d passed, %d failed" % (label, passed, failed))
    if status is not None:
        return status
    return 1 if failed or passed == 0 else 0
