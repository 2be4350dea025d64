"""Cold-start latency added by Spawngate, measured from outside on 127.0.0.1 only.

For each start time T (the backend sleeps T before it listens, or, socket activated, before it takes its
inherited listener and accepts) the same `spawngate-echo` is timed two ways:

* direct: started by this script and polled every 1 ms (connect, GET, first byte), from exec to its first
  answer: what a client that knew when to knock would see;
* via Spawngate: one request to a stopped backend (a backend of its own per trial, so each is a real cold
  start), from sending it to the first byte of the answer, over HTTP/1 and over h2c (prior knowledge).

Added = via - the median direct time for that T. Since start times themselves vary by a millisecond or
two between runs of the same program, each trial is also measured against the backend's own clock:
"after listen" = the wall-clock time the answer's first byte arrived - the time the program logged it
began serving (`ECHO_LISTEN_LOG`), which is what the proxy adds once the backend can answer, with the
start's own jitter taken out. Then the proxy's CPU seconds while one backend takes 10 s to start, with
and without socket activation. Prints a markdown table.

With a reachable Docker daemon (and DOCKER not 0) the same is measured for a container: DOCKER_TRIALS
starts per start time (default 3), over HTTP/1.

usage: coldstart.py SPAWNGATE ECHO SCRATCH_DIR REPO   (TRIALS=n: trials per cell, default 5)
"""

import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
import procs  # noqa: E402  (benches/load/procs.py: process handling and /proc readings)
import docker_row  # noqa: E402

START_TIMES_MS = [50, 300, 1000, 3000]
MODES = ["plain", "activated"]
PROTOCOLS = ["http1", "h2c"]
TRIALS = int(os.environ.get("TRIALS", "5"))
DOCKER_TRIALS = int(os.environ.get("DOCKER_TRIALS", "3"))
POLL_S = 0.001
CPU_START_MS = 10_000
TIMEOUT_S = 30.0
# Wall-clock seconds (time.time) at the first byte of the last answer timed: compared with the backend's
# own listen time (microseconds since the epoch, ECHO_LISTEN_LOG).
LAST_FIRST_BYTE = [0.0]


def log(message):
    print(message, file=sys.stderr, flush=True)


def host(mode, proto, start_ms, trial):
    return f"{mode}-{proto}-{start_ms}-{trial}.test"


def listen_log(scratch, name):
    return os.path.join(scratch, f"{name}.listen")


def after_listen_ms(scratch, name, first_byte_epoch):
    """Milliseconds from the backend's first listen (its own log) to the answer's first byte."""
    with open(listen_log(scratch, name)) as f:
        listened_us = int(f.readline().strip())
    return (first_byte_epoch - listened_us / 1e6) * 1000


def backend_toml(name, port, echo, start_ms, activated, scratch):
    lines = [
        f'[backends."{name}"]',
        f'command = "{echo}"',
        f"port = {port}",
        "idle_timeout_secs = 1",
        f"socket_activation = {'true' if activated else 'false'}",
        f'[backends."{name}".env]',
        f'ECHO_START_DELAY_MS = "{start_ms}"',
        f'ECHO_LISTEN_LOG = "{listen_log(scratch, name)}"',
    ]
    return "\n".join(lines) + "\n"


def http1_first_byte(port, name, path="/"):
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        head = sock.recv(64)
        elapsed = time.perf_counter() - start
        LAST_FIRST_BYTE[0] = time.time()
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{name}: answered {head[:40]!r}")
    return elapsed


def _frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise ConnectionError("closed mid-frame")
        data += more
    return data


def h2c_first_byte(port, name, path="/"):
    """One GET over h2c with prior knowledge: a minimal client (literal HPACK, no Huffman), timed from
    the connect to the response's HEADERS frame; a 200 is the static-table entry 0x88."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        authority = name.encode()
        path_bytes = path.encode()
        block = (b"\x82\x86"  # :method GET, :scheme http
                 + b"\x04" + bytes([len(path_bytes)]) + path_bytes  # :path, literal, name index 4
                 + b"\x01" + bytes([len(authority)]) + authority)  # :authority, name index 1
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0)
                     + _frame(1, 0x5, 1, block))  # HEADERS, END_STREAM | END_HEADERS
        while True:
            header = _read_exact(sock, 9)
            length = int.from_bytes(header[:3], "big")
            kind, flags = header[3], header[4]
            stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
            payload = _read_exact(sock, length)
            if kind == 4 and not flags & 1:
                sock.sendall(_frame(4, 1, 0))  # SETTINGS ACK
            elif kind == 1 and stream == 1:
                elapsed = time.perf_counter() - start
                LAST_FIRST_BYTE[0] = time.time()
                if payload[:1] != b"\x88":
                    raise RuntimeError(f"{name}: h2c answer is not a 200 ({payload[:8].hex()})")
                return elapsed
            elif kind == 7:
                raise RuntimeError(f"{name}: GOAWAY {payload.hex()}")


def direct_start(echo, port, start_ms):
    """Seconds from exec to the first answer of the echo started here, polled every 1 ms."""
    env = dict(os.environ, PORT=str(port), ECHO_START_DELAY_MS=str(start_ms))
    start = time.perf_counter()
    proc = subprocess.Popen([echo], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < TIMEOUT_S:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: direct\r\nConnection: close\r\n\r\n")
                    if sock.recv(1):
                        return time.perf_counter() - start
            except ConnectionRefusedError:
                time.sleep(POLL_S)
        raise RuntimeError(f"direct echo on :{port} did not answer")
    finally:
        proc.kill()
        proc.wait()


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_proxy(binary, scratch, name, backends, port, admin):
    """`port` and `admin` come from the same draw as the backends' ports, so none can collide."""
    path = os.path.join(scratch, f"{name}.toml")
    with open(path, "w") as f:
        f.write(f'[server]\nport = {port}\nadmin_port = {admin}\nbind = "127.0.0.1"\n\n{backends}')
    env = dict(os.environ, RUST_LOG="warn")
    server = procs.Server(name, [binary, path], os.path.join(scratch, f"{name}.log"), env=env)
    procs.wait_until(lambda: procs.http_status(admin, "localhost", "/health") == 200, 10, "the proxy")
    return server, port


def main():
    binary, echo, scratch, repo = sys.argv[1:5]
    # A TERM (run.sh's time limit, or Ctrl-C there) unwinds through the `finally`s, which stop everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cells = [(m, p, t) for m in MODES for p in PROTOCOLS for t in START_TIMES_MS]
    docker = os.environ.get("DOCKER", "1") != "0" and docker_row.available()
    docker_count = len(START_TIMES_MS) * DOCKER_TRIALS + 1 if docker else 0
    # One draw for every port of the run, so no two (the proxy's included) can be the same.
    ports = procs.free_ports(len(cells) * TRIALS + 5 + docker_count)
    proxy_ports = (ports.pop(), ports.pop())
    docker_ports = [ports.pop() for _ in range(docker_count)]
    backends = ""
    for (mode, proto, start_ms), i in ((c, i) for c in cells for i in range(TRIALS)):
        backends += backend_toml(host(mode, proto, start_ms, i), ports.pop(), echo, start_ms,
                                 mode == "activated", scratch)
    cpu_hosts = {m: f"cpu-{m}.test" for m in MODES}
    for mode, name in cpu_hosts.items():
        backends += backend_toml(name, ports.pop(), echo, CPU_START_MS, mode == "activated", scratch)
    docker_cells = [("docker", "http1", t) for t in START_TIMES_MS] if docker else []
    docker_port_of = {}
    if docker:
        log("building the echo image for the Docker row")
        docker_row.build_image(repo, scratch)
        for (_, proto, start_ms), i in ((c, i) for c in docker_cells for i in range(DOCKER_TRIALS)):
            name, port = host("docker", proto, start_ms, i), docker_ports.pop()
            docker_port_of[name] = port
            backends += docker_row.backend_toml(name, port, start_ms)
    try:
        server, proxy_port = start_proxy(binary, scratch, "spawngate", backends, *proxy_ports)
        direct = {}
        for start_ms in START_TIMES_MS:
            direct[start_ms] = [direct_start(echo, ports[0], start_ms) * 1000 for _ in range(TRIALS)]
            log(f"direct {start_ms} ms: {[round(x, 1) for x in direct[start_ms]]}")
        via = {}
        after = {}
        ask = {"http1": http1_first_byte, "h2c": h2c_first_byte}
        for mode, proto, start_ms in cells:
            times, since_listen = [], []
            for i in range(TRIALS):
                name = host(mode, proto, start_ms, i)
                times.append(ask[proto](proxy_port, name) * 1000)
                since_listen.append(after_listen_ms(scratch, name, LAST_FIRST_BYTE[0]))
            via[(mode, proto, start_ms)] = times
            after[(mode, proto, start_ms)] = since_listen
            log(f"via {mode} {proto} {start_ms} ms: {[round(x, 1) for x in times]}, "
                f"after listen {[round(x, 2) for x in since_listen]}")
        for cell in docker_cells:
            start_ms = cell[2]
            direct[cell] = [docker_row.direct_start(docker_ports[0], start_ms) * 1000
                            for _ in range(DOCKER_TRIALS)]
            log(f"direct docker {start_ms} ms: {[round(x, 1) for x in direct[cell]]}")
            times, since_listen = [], []
            for i in range(DOCKER_TRIALS):
                times.append(http1_first_byte(proxy_port, host(*cell, i)) * 1000)
                port = docker_port_of[host(*cell, i)]
                since_listen.append((LAST_FIRST_BYTE[0] - docker_row.listened_epoch(port)) * 1000)
                docker_row.wait_gone(port)
            via[cell] = times
            after[cell] = since_listen
            log(f"via docker {start_ms} ms: {[round(x, 1) for x in times]}, "
                f"after listen {[round(x, 2) for x in since_listen]}")
        cpu = {}
        for mode, name in cpu_hosts.items():
            before = sum(procs.cpu_seconds([server.pid]))
            took = http1_first_byte(proxy_port, name)
            cpu[mode] = (sum(procs.cpu_seconds([server.pid])) - before, took)
            log(f"cpu {mode}: {cpu[mode][0]:.2f} s during a {took:.1f} s start")
    finally:
        procs.stop_all()
        if docker:
            docker_row.remove_leftovers(docker_ports + list(docker_port_of.values()))
    print(report(direct, via, after, cpu, docker_cells))


def report(direct, via, after, cpu, docker_cells):
    out = ["| backend start | mode | protocol | direct p50 | via p50 | via p99 | added p50 | added p99 "
           "| after listen p50 | after listen max |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode in MODES:
        for proto in PROTOCOLS:
            for start_ms in START_TIMES_MS:
                base = statistics.median(direct[start_ms])
                times = via[(mode, proto, start_ms)]
                added = [t - base for t in times]
                label = "socket activation" if mode == "activated" else "port polling"
                since = after[(mode, proto, start_ms)]
                out.append(
                    f"| {start_ms} ms | {label} | {proto} | {base:.1f} ms | "
                    f"{statistics.median(times):.1f} ms | {percentile(times, 99):.1f} ms | "
                    f"{statistics.median(added):.1f} ms | {percentile(added, 99):.1f} ms | "
                    f"{statistics.median(since):.2f} ms | {max(since):.2f} ms |")
    for cell in docker_cells:
        base = statistics.median(direct[cell])
        times = via[cell]
        added = [t - base for t in times]
        out.append(
            f"| {cell[2]} ms | Docker container | http1 | {base:.1f} ms | "
            f"{statistics.median(times):.1f} ms | {percentile(times, 99):.1f} ms | "
            f"{statistics.median(added):.1f} ms | {percentile(added, 99):.1f} ms | "
            f"{statistics.median(after[cell]):.2f} ms | {max(after[cell]):.2f} ms |")
    out.append("")
    if docker_cells:
        out.append(f"Docker rows: {DOCKER_TRIALS} starts each; direct = create, start and poll the "
                   "published port every 1 ms through the Engine API.")
    out.append(f"{TRIALS} cold starts per row; p99 of {TRIALS} is their maximum. Direct: the same "
               "`spawngate-echo` started by the script and polled every 1 ms.")
    out.append("")
    out.append("| proxy CPU during a 10 s start | CPU seconds |")
    out.append("|---|---:|")
    for mode in MODES:
        label = "socket activation" if mode == "activated" else "port polling"
        out.append(f"| {label} | {cpu[mode][0]:.2f} s |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
