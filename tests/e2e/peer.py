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
"""
import socket
import sys


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


def main(argv):
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
