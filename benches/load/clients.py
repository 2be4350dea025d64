"""Load generators (wrk, h2load) and the small raw-socket clients: held idle connections and
time-to-first-byte probes. Every target is 127.0.0.1."""

import json
import os
import re
import resource
import selectors
import shlex
import socket
import subprocess
import sys
import time

# Headroom over a tool's own duration before it is killed: it should stop by itself, this is a guard.
TOOL_SLACK_S = 30


def _command(argv, env):
    """The command as the report shows it: with the TLS clients' OpenSSL settings when they apply."""
    prefix = f"OPENSSL_CONF={shlex.quote(env['OPENSSL_CONF'])} " if env and "OPENSSL_CONF" in env else ""
    return prefix + shlex.join(argv)


def _run_tool(argv, duration_s, env=None):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + TOOL_SLACK_S,
                          env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _latency_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def wrk(url, host, connections, duration_s, extra_headers=(), env=None, cpu=None):
    """Runs wrk; returns requests/s, latency percentiles (ms) and error counts. `env`: the TLS
    clients' environment for an https URL (tls.client_env); `cpu`: the one CPU (a `taskset -c` list)
    its threads are kept on."""
    argv = ["taskset", "-c", cpu] if cpu is not None else []
    argv += ["wrk", "-t2", f"-c{connections}", f"-d{duration_s}s", "--latency", "-H", f"Host: {host}"]
    for header in extra_headers:
        argv += ["-H", header]
    argv.append(url)
    out = _run_tool(argv, duration_s, env)
    result = {"command": _command(argv, env), "errors": 0}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(line.split()[1])
        elif re.match(r"^\d+ requests in", line):
            result["requests"] = int(line.split()[0])
        elif line.startswith("50.000%") or line.startswith("50%"):
            result["p50_ms"] = _latency_ms(line.split()[1])
        elif line.startswith("99.000%") or line.startswith("99%"):
            result["p99_ms"] = _latency_ms(line.split()[1])
        elif line.startswith("Socket errors:"):
            result["errors"] += sum(int(n) for n in re.findall(r"\d+", line))
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["errors"] += int(line.split(":")[1])
    if "rps" not in result:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    return result


# What h2load says about a TLS session, and the result keys they are kept under.
_H2LOAD_TLS = {"TLS Protocol:": "tls_protocol", "Cipher:": "tls_cipher",
               "Server Temp Key:": "tls_group", "Application protocol:": "alpn"}


def h2load(url, host, clients, streams, duration_s, env=None):
    """Runs h2load over h2c (prior knowledge), or h2 over TLS (ALPN) for an https URL with the TLS
    clients' `env`; returns requests/s, failed requests, and what was negotiated over TLS."""
    argv = ["h2load", f"-c{clients}", f"-m{streams}", "-t1", f"-D{duration_s}",
            "-H", f":authority: {host}", url]
    out = _run_tool(argv, duration_s, env)
    result = {"command": _command(argv, env), "errors": 0}
    for line in out.splitlines():
        if line.startswith("finished in"):
            result["rps"] = float(re.search(r"([\d.]+) req/s", line).group(1))
        elif line.startswith("requests:"):
            counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\w+)", line))
            result["requests"] = counts.get("succeeded", 0)
            result["errors"] += counts.get("failed", 0) + counts.get("errored", 0) + counts.get("timeout", 0)
        elif line.startswith("status codes:"):
            counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\dxx)", line))
            result["errors"] += sum(n for k, n in counts.items() if k != "2xx")
        for prefix, key in _H2LOAD_TLS.items():
            if line.startswith(prefix):
                result[key] = line[len(prefix):].strip()
    if "rps" not in result:
        raise RuntimeError(f"no req/s in h2load output:\n{out}")
    if result.get("requests", 0) == 0:
        result["errors"] += 1
    return result


TLS_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls_client.py")


def _tls_client(args, duration_s, env):
    argv = [sys.executable, TLS_CLIENT, *[str(a) for a in args]]
    result = json.loads(_run_tool(argv, duration_s, env))
    result["command"] = _command(argv, env)
    return result


def tls_handshakes(port, host, workers, duration_s, env):
    """New TLS connections, each a full handshake and one request (tls_client.py): handshakes/s,
    latency of a whole connection, and errors (resumed sessions count as errors)."""
    result = _tls_client(["handshakes", port, host, workers, duration_s], duration_s, env)
    result["rps"] = result["per_s"]
    result["errors"] += result["resumed"]
    return result


def tls_probe(port, host, ca_file, env):
    """What one verified handshake negotiated (protocol, cipher), and the answer's status line."""
    return _tls_client(["probe", port, host, ca_file], 0, env)


def _read_response(sock):
    """Reads one response with a Content-Length body; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return status


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def hold_idle_connections(port, host, count):
    """Opens `count` keep-alive connections, each used for one request, and leaves them open.
    The caller closes the returned sockets."""
    raise_fd_limit(count + 256)
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    held = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(sock)
            sock.sendall(request)
            status = _read_response(sock)
            if status != 200:
                raise RuntimeError(f"status {status} while opening idle connections")
    except BaseException:
        close_all(held)
        raise
    return held


def connect_idle(port, count):
    """Opens `count` connections that send nothing yet. The caller closes them."""
    raise_fd_limit(count + 256)
    held = []
    try:
        for _ in range(count):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    except BaseException:
        close_all(held)
        raise
    return held


def _complete(data):
    """True once `data` holds a whole response with a Content-Length body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def request_all_at_once(sockets, host, path, timeout_s=60.0):
    """Sends one keep-alive request on every socket before reading any answer, then reads every
    answer; raises unless all are 200. The connections stay open."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for sock in sockets:
        sock.sendall(request)
    received = {sock: b"" for sock in sockets}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        left = len(sockets)
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} of {len(sockets)} requests unanswered after {timeout_s} s")
            for key, _ in selector.select(1.0):
                sock = key.fileobj
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed before the response was complete")
                received[sock] += chunk
                if _complete(received[sock]):
                    if not received[sock].startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"answered {received[sock][:40]!r}")
                    selector.unregister(sock)
                    left -= 1


def close_all(sockets):
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass


def time_to_first_byte(port, host, path="/", timeout_s=30.0):
    """Seconds from connecting to the first response byte of one GET."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        first = sock.recv(1)
        elapsed = time.perf_counter() - start
        if not first:
            raise ConnectionError("closed without a response")
        rest = first + sock.recv(64)
        if not rest.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"cold request answered {rest[:40]!r}")
    return elapsed


# How often the direct start measurement retries a refused connection: well under the effect measured.
CONNECT_RETRY_S = 0.0002


def time_direct_start(argv, port, host, timeout_s=30.0):
    """Starts a backend itself and returns (seconds from exec to its first response byte, Popen)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        return _first_answer(proc, argv, port, host, start, timeout_s), proc
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def _first_answer(proc, argv, port, host, start, timeout_s):
    deadline = start + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{shlex.join(argv)} exited with {proc.returncode} while starting")
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        except ConnectionRefusedError:
            time.sleep(CONNECT_RETRY_S)
            continue
        with sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            if sock.recv(1):
                return time.perf_counter() - start
    raise RuntimeError(f"{shlex.join(argv)} did not answer on :{port} within {timeout_s} s")


# WebSocket echo: binary messages of WS_MESSAGE bytes (under 64 KiB, so a 16-bit length), each client
# frame masked once up front; the echo comes back unmasked with a 4-byte header.
WS_MESSAGE = 32 * 1024
WS_WINDOW = 2


def _ws_frame(payload, key=b"\x5a\xa5\x3c\xc3"):
    length = len(payload)
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key * (length // 4), "big")).to_bytes(length, "big")
    return bytes([0x82, 0xFE]) + length.to_bytes(2, "big") + key + masked


def _ws_handshake(port, host):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the WebSocket handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"WebSocket handshake answered {data[:40]!r}")
    head, _, rest = data.partition(b"\r\n\r\n")
    return sock, rest


def ws_echo(port, host, connections, duration_s):
    """Echo throughput through a WebSocket tunnel: `connections` WebSockets, each keeping WS_WINDOW
    messages of WS_MESSAGE bytes in flight to an echo backend for `duration_s`; returns messages/s and
    MB/s of payload echoed back."""
    frame = _ws_frame(bytes(i % 251 for i in range(WS_MESSAGE)))
    echo_len = 4 + WS_MESSAGE
    sockets, pending = [], {}
    command = f"ws_echo(port={port}, host={host}, connections={connections}, message={WS_MESSAGE}, window={WS_WINDOW}, {duration_s}s)"
    try:
        for _ in range(connections):
            sock, rest = _ws_handshake(port, host)
            sockets.append(sock)
            pending[sock] = len(rest)
        echoed = 0
        with selectors.DefaultSelector() as selector:
            for sock in sockets:
                for _ in range(WS_WINDOW):
                    sock.sendall(frame)
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            start = time.monotonic()
            deadline = start + duration_s
            while time.monotonic() < deadline:
                for key, _ in selector.select(1.0):
                    sock = key.fileobj
                    try:
                        chunk = sock.recv(262144)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise ConnectionError("the WebSocket closed during the echo run")
                    pending[sock] += len(chunk)
                    complete, pending[sock] = divmod(pending[sock], echo_len)
                    echoed += complete
                    if complete:
                        sock.setblocking(True)
                        sock.sendall(frame * complete)
                        sock.setblocking(False)
            elapsed = time.monotonic() - start
    finally:
        close_all(sockets)
    return {"command": command, "errors": 0, "messages": echoed, "rps": echoed / elapsed,
            "mb_per_s": echoed * WS_MESSAGE / elapsed / 1e6}
