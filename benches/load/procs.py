"""Processes the benchmark starts, and what /proc says about them (CPU, memory, context switches).

Every process started here is remembered and stopped by `stop_all`, which the driver runs on any exit.
"""

import os
import random
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# How long a server may take to stop after SIGTERM before it is killed: Spawngate drains and stops its
# backends within its grace period, nginx and HAProxy stop at once.
STOP_GRACE_S = 15.0

_started = []


class Server:
    """A long-running process: a proxy or a backend."""

    def __init__(self, name, argv, log_path, env=None, count_children=False):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        # nginx does its work in worker processes; Spawngate's children are its backends, which are not
        # the proxy's cost.
        self.count_children = count_children
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env if env is not None else os.environ.copy(),
        )
        _started.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def pids(self):
        """The processes whose cost counts as this server's."""
        if not self.count_children:
            return [self.pid]
        return [self.pid] + children_of(self.pid)

    def stop(self):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()
        if self in _started:
            _started.remove(self)


def stop_all():
    """Stops every server still running, newest first (proxies before the backends they use)."""
    for server in reversed(list(_started)):
        try:
            server.stop()
        except OSError:
            pass


def children_of(pid):
    found = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            found = [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name is in parentheses and may contain spaces: split after its closing one.
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pids):
    """(user, system) CPU time of the processes (all their threads), in seconds."""
    user = system = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        # utime and stime are fields 14 and 15 of /proc/PID/stat, 12 and 13 after the name.
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


# The lines of /proc/PID/status that split resident memory (kB): anonymous pages (what the process
# allocated: heap, stacks), file-backed pages (its binary and libraries, mapped files) and shared memory.
_RSS_FIELDS = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}


def rss_split(pids):
    """Resident memory of the processes in bytes, in all and by kind (from /proc/PID/status):
    {"rss", "anon", "file", "shmem"}; rss = anon + file + shmem, the same total as rss_bytes."""
    total = dict.fromkeys(_RSS_FIELDS.values(), 0)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) >= 2 and fields[0] in _RSS_FIELDS:
                        total[_RSS_FIELDS[fields[0]]] += int(fields[1]) * 1024
        except OSError:
            continue
    return total


def context_switches(pids):
    """Voluntary + involuntary context switches of every thread of the processes, by thread name."""
    by_thread = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f"{f.read().strip()}[{pid}]"
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            by_thread[name] = by_thread.get(name, 0) + int(line.split()[1])
            except OSError:
                continue
    return by_thread


def free_ports(count):
    """Ports free on 127.0.0.1, below the ephemeral range so no outgoing connection can take one
    between now and the moment a backend started on demand binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    ports = []
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("not enough free ports below the ephemeral range")


def http_status(port, host, path="/", timeout=2.0):
    """Status of one GET over a fresh connection, or None if it could not be had."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                head += chunk
            return int(head.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def backend_accepts(port):
    """Connections the nginx backend has accepted so far (its stub_status counter), counting the one
    this reading uses."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /nginx_status HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    # "server accepts handled requests" is followed by a line with the three counters.
    lines = data.decode("ascii", "replace").splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("server accepts") and i + 1 < len(lines):
            return int(lines[i + 1].split()[0])
    raise RuntimeError(f"no accepts counter in the backend's status page: {data[:200]!r}")


def wait_until(check, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


def wait_http_ok(port, host, timeout_s, path="/"):
    wait_until(lambda: http_status(port, host, path) == 200, timeout_s, f"200 from {host} on :{port}")
