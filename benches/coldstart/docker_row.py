"""The Docker row of the cold-start benchmark: the same `spawngate-echo`, built static into an image
FROM scratch, started as a container directly (Docker Engine API: create, start, then its published port
polled every 1 ms, an answer required: Docker's proxy accepts before the program listens) and through
Spawngate (a `type = "docker"` backend). Socket activation does not apply to containers.

The container's echo writes the moment it listens (`ECHO_LISTEN_LOG=/dev/stderr`, microseconds since the
epoch: the container shares the host's clock) to its log, read back through the Engine API, so each start
through the proxy is also measured from that moment to the answer's first byte, without the jitter of
creating and starting a container (tens of ms between two starts of the same image)."""

import http.client
import json
import os
import socket
import subprocess
import tarfile
import io
import time

SOCKET = "/var/run/docker.sock"
IMAGE = "spawngate-coldstart-echo:latest"
POLL_S = 0.001


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def call(method, path, body=None, content_type="application/json"):
    conn = _UnixConnection(SOCKET)
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def available():
    try:
        return call("GET", "/_ping")[0] == 200
    except OSError:
        return False


def build_image(repo, scratch):
    """Compiles the echo as one static std-only file (as the Docker tests do) and builds the image."""
    binary = os.path.join(scratch, "spawngate-echo-static")
    subprocess.run(
        ["rustc", "--edition", "2021", "-O", "-C", "strip=symbols", "-C", "target-feature=+crt-static",
         "--target", "x86_64-unknown-linux-gnu", "-o", binary,
         os.path.join(repo, "src/bin/spawngate_echo.rs")],
        check=True, stdout=subprocess.DEVNULL)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = b'FROM scratch\nCOPY spawngate-echo /spawngate-echo\nENTRYPOINT ["/spawngate-echo"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(binary, arcname="spawngate-echo")
    status, body = call("POST", f"/build?t={IMAGE}&rm=1", context.getvalue(), "application/x-tar")
    if status != 200 or b'"error"' in body:
        raise RuntimeError(f"image build failed: {status} {body[-300:]!r}")


def backend_toml(name, port, start_ms):
    return "\n".join([
        f'[backends."{name}"]',
        'type = "docker"',
        f'image = "{IMAGE}"',
        'pull_policy = "never"',
        f'container_name = "spawngate-coldstart-{port}"',
        f"port = {port}",
        "idle_timeout_secs = 1",
        # The echo, PID 1 in its container, has no SIGTERM handler and would hold each stop for the
        # whole grace period: the daemon busy stopping one trial's container while the next starts
        # would slow that start, which the direct starts (removed at once) do not pay.
        "shutdown_grace_period_secs = 0",
        f'[backends."{name}".env]',
        'ECHO_BIND = "0.0.0.0"',
        f'ECHO_START_DELAY_MS = "{start_ms}"',
        'ECHO_LISTEN_LOG = "/dev/stderr"',
    ]) + "\n"


def listened_epoch(port):
    """Wall-clock seconds at which the proxy's container on `port` began to listen, from its log."""
    status, body = call("GET", f"/containers/spawngate-coldstart-{port}/logs?stderr=1&stdout=1")
    if status != 200:
        raise RuntimeError(f"logs failed: {status} {body!r}")
    # Without a TTY the log is multiplexed: frames of an 8-byte header (stream, 0, 0, 0, length u32
    # big-endian) and then the bytes.
    text, at = b"", 0
    while at + 8 <= len(body):
        length = int.from_bytes(body[at + 4:at + 8], "big")
        text += body[at + 8:at + 8 + length]
        at += 8 + length
    # The stamp is the one long number (the "listening on" line also carries a pid and a port).
    stamps = [word for word in text.decode(errors="replace").split() if word.isdigit() and len(word) >= 13]
    if not stamps:
        raise RuntimeError(f"no listen time in the log of the container on :{port}: {text!r}")
    return int(stamps[0]) / 1e6


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: direct\r\nConnection: close\r\n\r\n")
            return bool(sock.recv(1))
    except OSError:
        return False


def direct_start(port, start_ms, timeout_s=60.0):
    """Seconds from the create call to the container's first answer on its published port."""
    name = f"spawngate-coldstart-direct-{port}"
    spec = {
        "Image": IMAGE,
        "Env": [f"PORT={port}", "ECHO_BIND=0.0.0.0", f"ECHO_START_DELAY_MS={start_ms}"],
        "ExposedPorts": {f"{port}/tcp": {}},
        "HostConfig": {"PortBindings": {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}},
    }
    start = time.perf_counter()
    status, body = call("POST", f"/containers/create?name={name}", json.dumps(spec).encode())
    if status != 201:
        raise RuntimeError(f"create failed: {status} {body!r}")
    try:
        status, body = call("POST", f"/containers/{name}/start")
        if status not in (204, 304):
            raise RuntimeError(f"start failed: {status} {body!r}")
        while time.perf_counter() - start < timeout_s:
            if _answers(port):
                return time.perf_counter() - start
            time.sleep(POLL_S)
        raise RuntimeError(f"container on :{port} did not answer")
    finally:
        call("DELETE", f"/containers/{name}?force=1")


def wait_gone(port, timeout_s=60.0):
    """Waits until the proxy has stopped and removed its container on `port` (idle after 1 s), so the
    next start does not share the daemon with a stop and a removal: a direct start removes its
    container before the next begins, and a start through the proxy is given the same quiet daemon.
    The Engine API's wait answers when the container is removed (404: it is gone already)."""
    conn = _UnixConnection(SOCKET, timeout=timeout_s)
    try:
        conn.request("POST", f"/containers/spawngate-coldstart-{port}/wait?condition=removed")
        reply = conn.getresponse()
        reply.read()
        if reply.status not in (200, 404):
            raise RuntimeError(f"waiting for the removal of the container on :{port}: {reply.status}")
    finally:
        conn.close()


def remove_leftovers(ports):
    for port in ports:
        call("DELETE", f"/containers/spawngate-coldstart-{port}?force=1")
