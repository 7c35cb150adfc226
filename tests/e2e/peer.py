#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Tiny network peers for the xdpfwd end-to-end tests. Every wait is bounded.

    peer.py serve ADDR PORT             UDP: answer each datagram with b"answer:" + it
    peer.py query ADDR PORT MSG         UDP: ask, print "<from-addr>:<port> <answer>"
    peer.py listen-udp ADDR PORT FILE   append "<peer-addr> <data>" per datagram
    peer.py listen-tcp ADDR PORT FILE   append "<peer-addr> <data>" per connection
    peer.py send-udp ADDR PORT MSG      one datagram
    peer.py send-tcp ADDR PORT MSG      one connection carrying MSG
    peer.py http ADDR PORT DIR          python's http.server serving DIR, without
                                        its reverse DNS lookup of ADDR at start
    peer.py echo-tcp ADDR PORT FILE     TCP: answer each line with "<local-addr> <line>",
                                        append "<peer-addr>:<port> <local-addr> <line>"
                                        to FILE
    peer.py echo-udp ADDR PORT          UDP: send each datagram back unchanged
    peer.py sink-tcp ADDR PORT          TCP: read a connection to its end, answer
                                        "<sha256-hex> <length>"
    peer.py session ADDR PORT CTL OUT   one TCP connection driven by lines from the fifo
                                        CTL; what happens, as lines in OUT (session())
    peer.py udp-big ADDR PORT SIZE      UDP: SIZE random bytes once; the answer must be
                                        the same bytes; prints "ok SIZE from A:P"
    peer.py upload ADDR PORT SIZE       TCP: SIZE random bytes to a sink-tcp, which must
                                        answer their sha256; prints "ok SIZE"
    peer.py udp-df ADDR PORT SIZE       UDP: one datagram of SIZE bytes with DF; prints
                                        the ICMP error it draws (udp_df())
    peer.py syn-flood IFACE DSTMAC ADDR PORT COUNT SRCNET
                                        COUNT TCP SYNs, raw frames out of IFACE, to
                                        ADDR:PORT from SRCNET.100-199, distinct ports
"""
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time


def serve(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(b"answer:" + data, peer)


def query(addr, port, msg):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    for _ in range(5):
        s.sendto(msg.encode(), (addr, port))
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            continue
        print("%s:%d %s" % (peer[0], peer[1], data.decode(errors="replace")))
        return 0
    print("no answer from %s:%d" % (addr, port), file=sys.stderr)
    return 1


def record(path, peer, data):
    with open(path, "a") as f:
        f.write("%s %s\n" % (peer[0], data.decode(errors="replace")))


def listen_udp(addr, port, path):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        record(path, peer, data)


def listen_tcp(addr, port, path):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        c, peer = s.accept()
        c.settimeout(5.0)
        data = b""
        try:
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        c.close()
        record(path, peer, data)


def send_udp(addr, port, msg):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), (addr, port))
    return 0


def send_tcp(addr, port, msg):
    s = socket.create_connection((addr, port), timeout=5.0)
    s.sendall(msg.encode())
    s.close()
    return 0


def http(addr, port, directory):
    import functools
    import http.server
    import socketserver

    class Server(http.server.ThreadingHTTPServer):
        def server_bind(self):
            # HTTPServer.server_bind() resolves the name of ADDR, which in a
            # namespace without a resolver stalls the start for seconds.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = addr, port

    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=directory)
    with Server((addr, port), handler) as httpd:
        httpd.serve_forever()


def serve_tcp(addr, port, handle):
    """Accept on ADDR:PORT for ever, each connection handled in a thread by
    HANDLE(conn, peer)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


def echo_tcp(addr, port, path):
    lock = threading.Lock()

    def handle(c, peer):
        local = c.getsockname()[0]
        try:
            for line in c.makefile("rb"):
                text = line.rstrip(b"\n").decode(errors="replace")
                with lock, open(path, "a") as f:
                    f.write("%s:%d %s %s\n" % (peer[0], peer[1], local, text))
                c.sendall(("%s %s\n" % (local, text)).encode())
        except OSError:
            pass
        c.close()

    serve_tcp(addr, port, handle)


def echo_udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def sink_tcp(addr, port):
    def handle(c):
        c.settimeout(10.0)
        h, n = hashlib.sha256(), 0
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            c.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())
        except OSError:
            pass
        c.close()

    serve_tcp(addr, port, lambda c, _peer: handle(c))


def session(addr, port, ctl, out, wait=3.0):
    """Lines written to OUT: "connected LOCAL-PORT" (or "connect-error EXC"),
    then per "send MSG" read from CTL one of "reply MSG <answer line>",
    "timeout MSG" (no answer in WAIT s), "eof MSG" (the peer closed),
    "error MSG EXC" (e.g. ConnectionResetError); "close" ends it."""
    def say(line):
        with open(out, "a") as f:
            f.write(line + "\n")

    try:
        s = socket.create_connection((addr, port), timeout=5.0)
    except OSError as e:
        say("connect-error %s" % type(e).__name__)
        return 1
    say("connected %d" % s.getsockname()[1])
    buf = b""
    with open(ctl) as cf:
        while True:
            cmd = cf.readline()
            if not cmd or cmd.strip() == "close":
                break
            if not cmd.startswith("send "):
                continue
            msg = cmd[5:].strip()
            try:
                s.settimeout(wait)
                s.sendall((msg + "\n").encode())
                while b"\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise EOFError
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                say("reply %s %s" % (msg, line.decode(errors="replace")))
            except socket.timeout:
                say("timeout %s" % msg)
            except EOFError:
                say("eof %s" % msg)
            except OSError as e:
                say("error %s %s" % (msg, type(e).__name__))
    s.close()
    say("closed")
    return 0


def udp_big(addr, port, size):
    data = os.urandom(size)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3.0)
    s.sendto(data, (addr, port))
    try:
        got, peer = s.recvfrom(65535)
    except socket.timeout:
        print("no answer from %s:%d in 3 s" % (addr, port), file=sys.stderr)
        return 1
    if got != data:
        diff = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b),
                    min(len(got), len(data)))
        print("answer differs: %d bytes, want %d; first difference at byte %d"
              % (len(got), len(data), diff), file=sys.stderr)
        return 1
    print("ok %d from %s:%d" % (len(got), peer[0], peer[1]))
    return 0


def upload(addr, port, size):
    data = os.urandom(size)
    s = socket.create_connection((addr, port), timeout=5.0)
    s.settimeout(8.0)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    want = "%s %d" % (hashlib.sha256(data).hexdigest(), size)
    if answer.decode(errors="replace").strip() != want:
        print("server got '%s', want '%s'" % (answer.decode(errors="replace").strip(), want),
              file=sys.stderr)
        return 1
    print("ok %d" % size)
    return 0


def inet_csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def udp_df(addr, port, size):
    """Prints one line describing the first ICMP destination-unreachable the
    client gets: "icmp type=T code=C mtu=M src=A dst=A tos=0xNN ttl=N len=N
    csum=ok|bad inner=SRC:SPORT->DST:DPORT proto=P inner_csum=ok|bad
    resend=ok|ERRNO" (resend: the same datagram again, once the kernel knows
    the path MTU)."""
    import errno
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, 10, 2)	# IP_MTU_DISCOVER, IP_PMTUDISC_DO
    s.connect((addr, port))
    data = os.urandom(size)
    s.send(data)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        icmp.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            pkt = icmp.recv(65535)
        except socket.timeout:
            break
        ihl = (pkt[0] & 15) * 4
        if len(pkt) < ihl + 8 + 28 or pkt[ihl] != 3:
            continue
        inner = pkt[ihl + 8:]
        iihl = (inner[0] & 15) * 4
        sport, dport = struct.unpack("!HH", inner[iihl:iihl + 4])
        try:
            s.send(data)
            resend = "ok"
        except OSError as e:
            resend = errno.errorcode.get(e.errno, str(e.errno))
        print("icmp type=%d code=%d mtu=%d src=%s dst=%s tos=0x%02x ttl=%d len=%d "
              "csum=%s inner=%s:%d->%s:%d proto=%d inner_csum=%s resend=%s" % (
                  pkt[ihl], pkt[ihl + 1], struct.unpack("!H", pkt[ihl + 6:ihl + 8])[0],
                  socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20]),
                  pkt[1], pkt[8], struct.unpack("!H", pkt[2:4])[0],
                  "ok" if inet_csum(pkt[ihl:]) == 0 else "bad",
                  socket.inet_ntoa(inner[12:16]), sport,
                  socket.inet_ntoa(inner[16:20]), dport, inner[9],
                  "ok" if inet_csum(inner[:iihl]) == 0 else "bad", resend))
        return 0
    print("no ICMP destination unreachable in 3 s", file=sys.stderr)
    return 1


def syn_flood(iface, dstmac, addr, port, count, srcnet):
    """Raw frames, so that the sources need not exist: (SRCNET.100-199,
    a distinct port each) -> ADDR:PORT, TCP SYN."""
    count = min(count, 100000)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    eth = bytes.fromhex(dstmac.replace(":", "")) + s.getsockname()[4] + b"\x08\x00"
    daddr = socket.inet_aton(addr)
    base = random.randrange(1024, 65535 - count // 100 - 1)
    for i in range(count):
        saddr = socket.inet_aton("%s.%d" % (srcnet, 100 + i % 100))
        tcp = struct.pack("!HHIIBBHHH", base + i // 100, port, random.getrandbits(32),
                          0, 5 << 4, 0x02, 64240, 0, 0)
        pseudo = saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", inet_csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16),
                         0x4000, 64, 6, 0, saddr, daddr)
        ip = ip[:10] + struct.pack("!H", inet_csum(ip)) + ip[12:]
        s.send(eth + ip + tcp)
    print("sent %d" % count)
    return 0


def main(argv):
    if len(argv) == 7 and argv[0] == "syn-flood":
        return syn_flood(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6])
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, addr, port = argv[0], argv[1], int(argv[2])
    rest = argv[3:]
    if cmd == "serve":
        serve(addr, port)
    elif cmd == "query":
        return query(addr, port, rest[0])
    elif cmd == "listen-udp":
        listen_udp(addr, port, rest[0])
    elif cmd == "listen-tcp":
        listen_tcp(addr, port, rest[0])
    elif cmd == "send-udp":
        return send_udp(addr, port, rest[0])
    elif cmd == "http":
        http(addr, port, rest[0])
    elif cmd == "send-tcp":
        return send_tcp(addr, port, rest[0])
    elif cmd == "echo-tcp":
        echo_tcp(addr, port, rest[0])
    elif cmd == "echo-udp":
        echo_udp(addr, port)
    elif cmd == "sink-tcp":
        sink_tcp(addr, port)
    elif cmd == "session":
        return session(addr, port, rest[0], rest[1])
    elif cmd == "udp-big":
        return udp_big(addr, port, int(rest[0]))
    elif cmd == "upload":
        return upload(addr, port, int(rest[0]))
    elif cmd == "udp-df":
        return udp_df(addr, port, int(rest[0]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        print("peer.py: %s" % e, file=sys.stderr)
        sys.exit(1)
