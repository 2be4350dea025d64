"""Runs the whole load comparison and writes the report. Started by run.sh, which installs the tools
and builds Spawngate first:

    python3 driver.py SCRATCH_DIR SPAWNGATE_BINARY RESULTS_DIR     (QUICK=1 for the smoke version,
                                                                    ONLY=https for the HTTPS rows alone)
"""

import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time

import clients
import procs
import report
import scenarios
import setup
import tls

# Descriptors for the held idle connections plus the load tools' sockets.
FD_LIMIT = 20000
# Backends of each cold-start Spawngate: the idle figure is for 20 configured backends.
COLD_BACKENDS = 20
# Probe intervals measured for cold start: the fastest the config allows, and the default.
COLD_PROBES_MS = [10, 100]
# Pause between starting the idle Spawngate instances and counting their wakeups.
IDLE_SETTLE_S = 2
STOPPED_GROUP = "Spawngate with 20 stopped backends"


def first_line(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": f"{mem_kib / 2**20:.0f} GiB",
            "kernel": platform.release(), "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def versions(binary):
    return {
        "Spawngate": first_line([binary, "--version"]) + " @ " + first_line(
            ["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe", "--always", "--dirty"]),
        "nginx": first_line(["nginx", "-v"]),
        "HAProxy": first_line(["haproxy", "-v"]),
        "wrk": first_line(["wrk", "--version"]),
        "h2load": first_line(["h2load", "--version"]),
        "python": platform.python_version(),
    }


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def probe_tls(proxies, certificate, results):
    """One verified handshake per proxy: the same certificate, TLS version and cipher for all three,
    or the HTTPS rows would not compare like with like."""
    for p in proxies:
        seen = clients.tls_probe(p.https_port, setup.BENCH_HOST, certificate.ca, p.tls_env)
        results["tls"][p.name] = seen
        expected = (tls.TLS_VERSION, tls.CIPHER)
        if (seen["protocol"], seen["cipher"]) != expected or " 200" not in seen["status"]:
            raise RuntimeError(f"{p.name} over HTTPS: {seen}, expected {expected} and a 200")
    log("HTTPS: " + "; ".join(f"{name} {s['protocol']} {s['cipher']} CN={s['subject'].get('commonName')}"
                              for name, s in results["tls"].items()))


def run(scratch, binary, settings, results):
    ports = procs.free_ports(11 + len(COLD_PROBES_MS) * (2 + COLD_BACKENDS))
    backend_port, ws_port, sg_port, sg_admin, ng_port, ng_h2, ha_port, ha_h2 = ports[:8]
    sg_https, ng_https, ha_https = ports[8:11]
    cold_ports = ports[11:]
    setup.make_www(scratch)
    certificate = tls.make_certificate(scratch)
    https = setup.has_tls(binary)
    if not https:
        if settings.only == "https":
            raise RuntimeError(f"{binary} is built without the tls feature: no HTTPS rows to run")
        results["notes"].append("Spawngate built without the tls feature: the HTTPS rows were not run")

    log("starting Spawngate, which starts the nginx backend on the first request")
    sg = setup.start_spawngate(scratch, binary, backend_port, ws_port, sg_port, sg_admin,
                               sg_https if https else None, certificate)
    setup.start_backend_through(sg)
    log("starting nginx and HAProxy in front of the same backend")
    ng = setup.start_nginx_proxy(scratch, backend_port, ws_port, ng_port, ng_h2, ng_https, certificate)
    ha = setup.start_haproxy(scratch, backend_port, ws_port, ha_port, ha_h2, ha_https, certificate)
    proxies = [sg, ng, ha]
    # Resident memory once each has answered its first request, in all and split: anonymous pages are
    # what the proxy allocated, file-backed ones mostly its binary and libraries (shared with any
    # other process running them, and varying with the page cache from run to run).
    split = {p.name: procs.rss_split(p.pids()) for p in proxies}
    for kind in ("rss", "anon", "file", "shmem"):
        key = "idle_rss" if kind == "rss" else f"idle_rss_{kind}"
        results["single"][key] = {name: memory[kind] for name, memory in split.items()}
    for name, memory in split.items():
        if memory["shmem"]:
            results["notes"].append(f"idle RSS of {name} includes {memory['shmem'] / 2**20:.2f} MiB of "
                                    "shared memory (RssShmem), neither anonymous nor file-backed")
    results["commands"] += [f"# {p.name}: {shlex.join(p.server.argv)}" for p in proxies]
    if https:
        probe_tls(proxies, certificate, results)
        results["commands"].append(f"# TLS clients' {certificate.client_conf} (OPENSSL_CONF):\n"
                                   + "\n".join(f"#   {line}" for line in tls.CLIENT_CONF.splitlines()[1:]))
    scenario_list = ([] if settings.only == "https" else scenarios.LOAD_SCENARIOS) + (
        scenarios.HTTPS_SCENARIOS if https else [])

    if settings.only == "https":
        log("ONLY=https: HTTPS rows alone (no memory, cleartext, idle or cold-start measurements)")
        measure_load(proxies, settings, scenario_list, results)
        return

    log(f"memory: {settings.idle_connections} idle keep-alive connections per proxy")
    per_connection = {}
    for p in proxies:
        measured = scenarios.bytes_per_idle_connection(p, settings.idle_connections)
        per_connection[p.name] = measured["bytes_per_connection"]
        results["memory"][p.name] = measured
    results["single"]["bytes_per_connection"] = per_connection

    log(f"memory: {settings.burst_connections} keep-alive connections served at once, then idle")
    at_once, accept_only = {}, {}
    for p in proxies:
        measured = scenarios.bytes_per_connection_served_at_once(p, settings.burst_connections)
        at_once[p.name] = measured["bytes_per_connection"]
        accept_only[p.name] = measured["accept_only"]
        results["memory_at_once"][p.name] = measured
    results["single"]["bytes_per_connection_at_once"] = at_once
    results["single"]["bytes_per_connection_accept_only"] = accept_only

    measure_load(proxies, settings, scenario_list, results)

    log("idle: starting Spawngate instances with 20 stopped backends each")
    cold_sets = {}
    for i, probe in enumerate(COLD_PROBES_MS):
        chunk = cold_ports[i * (2 + COLD_BACKENDS):(i + 1) * (2 + COLD_BACKENDS)]
        cold_sets[probe] = setup.start_cold_set(scratch, binary, COLD_BACKENDS, probe, chunk)
    # Starting up is not idling: threads and the first timers settle before the count begins.
    time.sleep(IDLE_SETTLE_S)
    default_set = cold_sets[max(COLD_PROBES_MS)]
    results["commands"].append(f"# idle / cold start: {shlex.join(default_set.server.argv)}")
    log(f"idle: counting context switches for {settings.idle_s} s with no traffic")
    groups = {p.name: p.pids() for p in proxies}
    groups[STOPPED_GROUP] = default_set.server.pids()
    wakeups, woken = scenarios.idle_wakeups(groups, settings.idle_s)
    for name, threads in woken.items():
        if threads:
            listed = ", ".join(f"{thread} {n}" for thread, n in sorted(threads.items()))
            results["notes"].append(f"idle {settings.idle_s} s, {name}: context switches by thread: {listed}")
    results["single"]["wakeups_after_load"] = {p.name: wakeups[p.name] for p in proxies}
    results["single"]["wakeups_stopped"] = {"Spawngate": wakeups[STOPPED_GROUP]}

    for probe, cold_set in cold_sets.items():
        log(f"cold start: {settings.cold_trials} trials, probe every {probe} ms")
        results["cold"][str(probe)] = scenarios.cold_start(cold_set, settings.cold_trials)


def measure_load(proxies, settings, scenario_list, results):
    log("warm-up")
    for p in proxies:
        scenarios.warm_up(p, settings)

    for round_index in range(settings.rounds):
        for key, scenario in scenario_list:
            for p in proxies:
                log(f"round {round_index + 1}/{settings.rounds}: {key} via {p.name}")
                result = scenario(p, settings)
                results["rounds"].setdefault(key, {}).setdefault(p.name, []).append(result)
                if round_index == 0:
                    results["commands"].append(f"# {key}, {p.name}: {result['command']}")


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    scratch, binary, out_dir = sys.argv[1:]
    only = os.environ.get("ONLY") or None
    if only not in (None, "https"):
        sys.exit(f"ONLY={only}: the only subset is ONLY=https")
    settings = scenarios.Settings(quick=os.environ.get("QUICK", "") not in ("", "0"), only=only)
    # SIGTERM (from run.sh's trap) unwinds like Ctrl-C so every server is stopped.
    # A process group of its own: run.sh's trap kills the group if this process ever hangs.
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _interrupt)
    clients.raise_fd_limit(FD_LIMIT)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = {
        "started": started, "machine": machine(), "versions": versions(binary),
        "settings": settings.describe(), "rounds": {}, "single": {}, "memory": {}, "memory_at_once": {},
        "cold": {}, "tls": {},
        "commands": [], "notes": [],
    }
    try:
        run(scratch, binary, settings, results)
    except KeyboardInterrupt:
        procs.stop_all()
        log("interrupted; every server started has been stopped")
        sys.exit(130)
    finally:
        procs.stop_all()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, time.strftime("%Y%m%d-%H%M%S", time.strptime(started, "%Y-%m-%d %H:%M:%S")))
    with open(stem + ".json", "w") as f:
        json.dump(results, f, indent=1)
    text = report.render(results)
    with open(stem + ".md", "w") as f:
        f.write(text)
    print(text)
    log(f"report written to {stem}.md (raw figures in {stem}.json)")


if __name__ == "__main__":
    main()
