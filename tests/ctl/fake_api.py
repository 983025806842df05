#!/usr/bin/env python3
"""fake_api.py - a deliberately plain HTTP/1.1 server standing in for secretsd in secretsctl's
transport tests: it answers GET .../envs/<MODE>/values with {"FAKE": "from fake"} framed the way
MODE says, so a test can show what secretsctl's HTTP/1.1 client accepts and refuses.

    fake_api.py PORTFILE LOGFILE [CERT KEY]

It listens on 127.0.0.1 (an ephemeral port, written to PORTFILE followed by a newline once
listening), with TLS offering only http/1.1 over ALPN when CERT and KEY are given, and serves one
connection at a time until killed. LOGFILE gets one line per request: the request line and whether
an Authorization header came (never its value). Modes:

    plain      Content-Length
    chunked    chunked coding: chunks of 3 bytes, a chunk extension, a trailer
    close      neither: the body ends with the connection
    bighead    a header line of 40000 bytes
    bigbody    Content-Length of 64 MiB + 1 (nothing more is sent)
    bigchunk   a chunk of 64 MiB + 1 announced
"""
import os
import socket
import ssl
import sys

BODY = b'{"FAKE": "from fake"}'


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(65536)
        if not got:
            return None
        data += got
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    auth = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"authorization":
            auth = True
    while len(rest) < length:
        got = conn.recv(65536)
        if not got:
            return None
        rest += got
    return lines[0].decode("latin-1"), auth


def answer(conn, mode):
    """Send the answer; False when the connection must end after it."""
    base = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"fake-1\"\r\n"
    if mode == "chunked":
        out = base + b"Transfer-Encoding: chunked\r\n\r\n"
        for i in range(0, len(BODY), 3):
            piece = BODY[i:i + 3]
            ext = b";note=x" if i == 3 else b""
            out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
        out += b"0\r\nX-Trailer: t\r\n\r\n"
        conn.sendall(out)
        return True
    if mode == "close":
        conn.sendall(base + b"Connection: close\r\n\r\n" + BODY)
        return False
    if mode == "bighead":
        conn.sendall(base + b"X-Big: " + b"a" * 40000 + b"\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        return True
    if mode == "bigbody":
        conn.sendall(base + b"Content-Length: %d\r\n\r\n" % ((64 << 20) + 1))
        return False
    if mode == "bigchunk":
        conn.sendall(base + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % ((64 << 20) + 1))
        return False
    conn.sendall(base + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
    return True


def main():
    port_file, log_file = sys.argv[1], sys.argv[2]
    ctx = None
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        ctx.set_alpn_protocols(["http/1.1"])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    log = open(log_file, "a", buffering=1)
    while True:
        conn, _ = srv.accept()
        try:
            if ctx:
                conn = ctx.wrap_socket(conn, server_side=True)
            while True:
                req = read_request(conn)
                if req is None:
                    break
                line, auth = req
                log.write("%s auth=%s\n" % (line, "yes" if auth else "no"))
                parts = line.split("/")
                mode = parts[4] if len(parts) > 4 else "plain"
                if not answer(conn, mode):
                    break
        except (OSError, ssl.SSLError) as e:
            log.write("connection failed: %s\n" % type(e).__name__)
        finally:
            try:
                conn.close()
            except OSError:
                pass


if __name__ == "__main__":
    main()
