"""The measurements. Each load scenario runs one proxy at a time; the driver interleaves the proxies."""

import os
import time

import clients
import procs
from setup import BENCH_HOST, BIG_BYTES, BIG_PATH, HELD_PATH, WS_HOST

# After a burst, RSS is read every SETTLE_STEP_S until two readings agree, from SETTLE_MIN_S on and
# for at most SETTLE_MAX_S: what a proxy gives back takes it a moment (Spawngate's surplus backend
# connections go after a 2 s grace).
SETTLE_STEP_S = 0.5
SETTLE_MIN_S = 3
SETTLE_MAX_S = 15


class Settings:
    """Durations and sizes of one run. The full run is the reference; QUICK is a smoke test of the
    whole pipeline in about two minutes, with numbers too short-lived to quote. `only` = "https" runs
    the HTTPS rows (and the idle RSS) alone, for iterating on them."""

    def __init__(self, quick, only=None):
        self.quick = quick
        self.only = only
        self.rounds = 2 if quick else 3
        self.warm_up_s = 1 if quick else 3
        self.keepalive_s = 3 if quick else 10
        self.close_s = 2 if quick else 5
        self.big_s = 2 if quick else 5
        self.h2_s = 2 if quick else 5
        # The HTTPS rows, shorter than their cleartext twins so that they add about two minutes to
        # the full run: TLS costs are steady from the first second (no pool or cache to fill).
        self.https_keepalive_s = 3 if quick else 5
        self.handshake_s = 2 if quick else 4
        self.h2_tls_s = 2 if quick else 3
        # After the cleartext warm-up has filled the pools, TLS only needs its own buffers touched.
        self.tls_warm_up_s = 1
        # Processes of the new-handshake client, each one connection at a time. The client's own
        # handshake costs more CPU than the proxy's, so it is the limit either way; more processes
        # than this only queue on the two cores.
        self.handshake_workers = 4
        self.idle_s = 5 if quick else 10
        self.idle_connections = 1000 if quick else 5000
        self.burst_connections = 1000 if quick else 3000
        self.cold_trials = 8 if quick else 20
        # Connections of the keep-alive and new-connection runs (the figure) and of the
        # 1 MiB run, where fewer clients already saturate a 2-core machine.
        self.connections = 64
        self.big_connections = 16

    def describe(self):
        return {k: v for k, v in vars(self).items()}


def _url(port, path="/", scheme="http"):
    return f"{scheme}://127.0.0.1:{port}{path}"


def keepalive(proxy, settings):
    return _keepalive(proxy, settings, _url(proxy.port), settings.keepalive_s, None)


def keepalive_pinned(proxy, settings):
    """The keep-alive scenario with the load generator kept on one CPU (the first this process may use):
    where four busy threads share two cores, the scheduler moves a `wrk` thread onto whichever core the
    proxy is on, and the tail then says more about that than about the proxy (README, "Where Spawngate
    falls short")."""
    cpu = str(min(os.sched_getaffinity(0)))
    return _keepalive(proxy, settings, _url(proxy.port), settings.keepalive_s, None, cpu=cpu)


def https_keepalive(proxy, settings):
    return _keepalive(proxy, settings, _url(proxy.https_port, scheme="https"),
                      settings.https_keepalive_s, proxy.tls_env)


def _keepalive(proxy, settings, url, duration_s, env, cpu=None):
    accepts_before = procs.backend_accepts(proxy.backend_port)
    user_before, system_before = procs.cpu_seconds(proxy.pids())
    result = clients.wrk(url, BENCH_HOST, settings.connections, duration_s, env=env, cpu=cpu)
    user_after, system_after = procs.cpu_seconds(proxy.pids())
    # Less the connection that reads the counter.
    opened = procs.backend_accepts(proxy.backend_port) - accepts_before - 1
    user, system = user_after - user_before, system_after - system_before
    requests = result.get("requests", 0)
    result["cpu_s"] = user + system
    result["req_per_cpu_s"] = requests / (user + system) if user + system > 0 else None
    # Where the CPU goes: the proxy's own code (user) or the kernel's TCP work on its behalf (system).
    result["user_us_per_req"] = user / requests * 1e6 if requests else None
    result["system_us_per_req"] = system / requests * 1e6 if requests else None
    result["backend_connects_per_1k"] = opened / requests * 1000 if requests else None
    return result


def new_connection(proxy, settings):
    return clients.wrk(_url(proxy.port), BENCH_HOST, settings.connections, settings.close_s,
                       extra_headers=["Connection: close"])


def big_responses(proxy, settings):
    result = clients.wrk(_url(proxy.port, BIG_PATH), BENCH_HOST, settings.big_connections,
                         settings.big_s)
    result["mb_per_s"] = result["rps"] * BIG_BYTES / 1e6
    return result


def h2_one_by_100(proxy, settings):
    return clients.h2load(_url(proxy.h2_port), BENCH_HOST, 1, 100, settings.h2_s)


def h2_16_by_16(proxy, settings):
    return clients.h2load(_url(proxy.h2_port), BENCH_HOST, 16, 16, settings.h2_s)


def ws_echo(proxy, settings):
    user_before, system_before = procs.cpu_seconds(proxy.pids())
    result = clients.ws_echo(proxy.port, WS_HOST, settings.big_connections, settings.big_s)
    user_after, system_after = procs.cpu_seconds(proxy.pids())
    cpu = (user_after - user_before) + (system_after - system_before)
    megabytes = result["messages"] * clients.WS_MESSAGE / 1e6
    # Both directions cross the proxy: each echoed message is carried twice.
    result["cpu_ms_per_mb"] = cpu * 1e3 / megabytes if megabytes else None
    return result


def _cpu_of(proxy, measure):
    """Runs `measure()`; returns its result and the proxy's CPU seconds (user + system) meanwhile."""
    user_before, system_before = procs.cpu_seconds(proxy.pids())
    result = measure()
    user_after, system_after = procs.cpu_seconds(proxy.pids())
    return result, (user_after - user_before) + (system_after - system_before)


def https_handshakes(proxy, settings):
    """New TLS connections, each a full handshake (no resumption: tls_client.py checks) and one
    request: handshakes per second and per proxy CPU-second. The client, not the proxy, is the limit
    on two cores; `cpu_busy` says how much of one core the proxy used meanwhile."""
    result, cpu = _cpu_of(proxy, lambda: clients.tls_handshakes(
        proxy.https_port, BENCH_HOST, settings.handshake_workers, settings.handshake_s, proxy.tls_env))
    result["cpu_s"] = cpu
    result["handshakes_per_cpu_s"] = result["handshakes"] / cpu if cpu > 0 else None
    result["cpu_busy"] = cpu / result["seconds"]
    return result


def h2_tls_16_by_16(proxy, settings):
    """h2 over TLS (ALPN), 16 connections x 16 streams: requests/s and per proxy CPU-second."""
    result, cpu = _cpu_of(proxy, lambda: clients.h2load(
        _url(proxy.https_port, scheme="https"), BENCH_HOST, 16, 16, settings.h2_tls_s, env=proxy.tls_env))
    result["cpu_s"] = cpu
    result["req_per_cpu_s"] = result.get("requests", 0) / cpu if cpu > 0 else None
    return result


# (key, function) in the order each round runs them.
LOAD_SCENARIOS = [
    ("keepalive", keepalive),
    ("keepalive_pinned", keepalive_pinned),
    ("new_connection", new_connection),
    ("big", big_responses),
    ("h2_1x100", h2_one_by_100),
    ("h2_16x16", h2_16_by_16),
    ("ws_echo", ws_echo),
]

# Over TLS, against each proxy's HTTPS listener; run after LOAD_SCENARIOS in each round.
HTTPS_SCENARIOS = [
    ("https_keepalive", https_keepalive),
    ("https_handshake", https_handshakes),
    ("h2_tls_16x16", h2_tls_16_by_16),
]


def warm_up(proxy, settings):
    """Fills caches, pools and allocator arenas before anything is measured; results are dropped."""
    if settings.only != "https":
        clients.wrk(_url(proxy.port), BENCH_HOST, settings.connections, settings.warm_up_s)
        clients.wrk(_url(proxy.port, BIG_PATH), BENCH_HOST, settings.big_connections, settings.warm_up_s)
        clients.h2load(_url(proxy.h2_port), BENCH_HOST, 16, 16, settings.warm_up_s)
    if proxy.https_port is not None:
        https = _url(proxy.https_port, scheme="https")
        clients.wrk(https, BENCH_HOST, settings.connections, settings.tls_warm_up_s, env=proxy.tls_env)
        clients.h2load(https, BENCH_HOST, 16, 16, settings.tls_warm_up_s, env=proxy.tls_env)


def bytes_per_idle_connection(proxy, count):
    """RSS growth of the proxy per idle keep-alive connection, each having carried one request (total
    RSS; the growth of its anonymous part is kept beside it)."""
    before = procs.rss_split(proxy.pids())
    held = clients.hold_idle_connections(proxy.port, BENCH_HOST, count)
    try:
        after = procs.rss_split(proxy.pids())
    finally:
        clients.close_all(held)
    return {"rss_before": before["rss"], "rss_after": after["rss"], "connections": count,
            "bytes_per_connection": (after["rss"] - before["rss"]) / count,
            "anon_bytes_per_connection": (after["anon"] - before["anon"]) / count}


def _settled_rss(proxy):
    start = time.monotonic()
    last = procs.rss_bytes(proxy.pids())
    while True:
        time.sleep(SETTLE_STEP_S)
        now = procs.rss_bytes(proxy.pids())
        elapsed = time.monotonic() - start
        if (now == last and elapsed >= SETTLE_MIN_S) or elapsed >= SETTLE_MAX_S:
            return now, elapsed
        last = now


def bytes_per_connection_served_at_once(proxy, count):
    """RSS growth of the proxy per keep-alive connection, relative to before they connected: once
    connected (accept only), and settled after each sent one request at the same moment (the
    backend holds them, so all are in flight together), all were answered and left idle. Total RSS;
    the growth of its anonymous part is kept beside it."""
    before = procs.rss_split(proxy.pids())
    held = clients.connect_idle(proxy.port, count)
    try:
        time.sleep(SETTLE_STEP_S)
        connected = procs.rss_bytes(proxy.pids())
        clients.request_all_at_once(held, BENCH_HOST, HELD_PATH)
        answered = procs.rss_bytes(proxy.pids())
        settled, waited = _settled_rss(proxy)
        settled_anon = procs.rss_split(proxy.pids())["anon"]
    finally:
        clients.close_all(held)
    return {"rss_before": before["rss"], "rss_connected": connected, "rss_answered": answered,
            "rss_settled": settled, "settled_after_s": waited, "connections": count,
            "accept_only": (connected - before["rss"]) / count,
            "bytes_per_connection": (settled - before["rss"]) / count,
            "anon_bytes_per_connection": (settled_anon - before["anon"]) / count}


def idle_wakeups(groups, seconds):
    """Context switches per second of each group of processes over the same quiet `seconds`, and
    which threads had them."""
    before = {name: procs.context_switches(pids) for name, pids in groups.items()}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    rates, woken = {}, {}
    for name, pids in groups.items():
        after = procs.context_switches(pids)
        deltas = {thread: n - before[name].get(thread, 0) for thread, n in after.items()}
        rates[name] = sum(deltas.values()) / elapsed
        woken[name] = {thread: n for thread, n in deltas.items() if n}
    return rates, woken


def cold_start(cold_set, trials):
    """Per backend: its own exec-to-first-byte time run directly, then the first byte of a request
    through Spawngate while it is stopped (Spawngate starts it, probes it, forwards)."""
    direct, via = [], []
    for i in range(min(trials, len(cold_set.hosts))):
        host, port = cold_set.hosts[i], cold_set.backend_ports[i]
        proc = None
        try:
            seconds, proc = clients.time_direct_start(cold_set.direct_argv[i], port, host)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=procs.STOP_GRACE_S)
        direct.append(seconds * 1e3)
        via.append(clients.time_to_first_byte(cold_set.port, host) * 1e3)
    return {"direct_ms": direct, "via_ms": via, "added_ms": [v - d for v, d in zip(via, direct)]}
