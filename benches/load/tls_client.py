"""The benchmark's own TLS client, run as a tool (like wrk) with the client OpenSSL settings of the run
in OPENSSL_CONF, so it offers exactly what wrk and h2load offer (TLS 1.3, one cipher suite, X25519):

    python3 tls_client.py probe PORT HOST CA_FILE
        one verified handshake and request; prints what was negotiated (JSON)
    python3 tls_client.py handshakes PORT HOST WORKERS SECONDS
        WORKERS processes, each opening a connection, doing a full handshake and one request, reading
        the answer to the close, over and over for SECONDS; prints the counts (JSON)

Why not wrk or h2load for new handshakes: both keep the session of a closed connection and resume it on
the next one (wrk with `Connection: close`, h2load when the server closes), so nearly every handshake
they make is abbreviated, and h2load --h1 with -D never stops when the server closes. Python's ssl offers
no session unless given one, so every handshake here is full; each connection checks it
(`session_reused`), and one that resumed counts as an error.

Certificates are not verified in the handshake loop (the probe verifies the chain and the name once per
proxy): verification is client work, and the client shares the two cores with the proxy. The loop sends
SNI (the certificate's name, as a browser would), so each proxy looks its certificate up by name.
"""

# The name in the certificate the run makes (tls.py).
SNI = "localhost"

import json
import multiprocessing
import socket
import ssl
import sys
import time

READ_CHUNK = 65536


def _request(host):
    return f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def _read_to_close(tls):
    data = b""
    while True:
        chunk = tls.recv(READ_CHUNK)
        if not chunk:
            return data
        data += chunk


def _one(context, port, request):
    """One connection: handshake, request, answer to the close. Returns (ok, resumed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_hostname=SNI) as tls:
            tls.sendall(request)
            answer = _read_to_close(tls)
            resumed = tls.session_reused
    return answer.startswith(b"HTTP/1.1 200"), resumed


def _worker(port, host, deadline, out):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = _request(host)
    done = errors = resumed = 0
    latencies = []
    try:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                ok, was_resumed = _one(context, port, request)
            except (OSError, ssl.SSLError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            if not ok:
                errors += 1
            elif was_resumed:
                resumed += 1
            else:
                done += 1
    finally:
        # Whatever ends the loop, the parent gets this worker's counts (and sees its exit status).
        out.put({"done": done, "errors": errors, "resumed": resumed, "latencies": latencies})


def _percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def handshakes(port, host, workers, seconds):
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start = time.monotonic()
    deadline = start + seconds
    procs = [context.Process(target=_worker, args=(port, host, deadline, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    # Read before joining: a child does not exit until what it put on the queue is taken. Within the
    # driver's limit for the tool (its duration + 30 s), so a stuck worker is reported from here.
    parts = [out.get(timeout=seconds + 20) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a handshake worker exited with {p.exitcode}")
    elapsed = time.monotonic() - start
    latencies = sorted(x for part in parts for x in part["latencies"])
    done = sum(part["done"] for part in parts)
    return {
        "handshakes": done, "seconds": elapsed, "per_s": done / elapsed,
        "errors": sum(part["errors"] for part in parts), "resumed": sum(part["resumed"] for part in parts),
        "p50_ms": _percentile(latencies, 0.5) * 1e3 if latencies else None,
        "p99_ms": _percentile(latencies, 0.99) * 1e3 if latencies else None,
    }


def probe(port, host, ca_file):
    """A verified handshake (chain to the run's CA, name 127.0.0.1) and one request."""
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(_request(host))
            answer = _read_to_close(tls)
            cipher, _, bits = tls.cipher()
            return {"protocol": tls.version(), "cipher": cipher, "bits": bits,
                    "status": answer.split(b"\r\n", 1)[0].decode("latin-1"),
                    "subject": dict(x[0] for x in tls.getpeercert()["subject"])}


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "probe":
        result = probe(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 6 and sys.argv[1] == "handshakes":
        result = handshakes(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
