"""What metrics and the access log cost in requests per CPU-second of the proxy. Started by log_cost.sh,
which installs the tools and builds Spawngate first:

    python3 log_cost.py SCRATCH_DIR SPAWNGATE_BINARY ECHO_BINARY [BASE_BINARY]

One proxy per configuration, all started up front, each with its own spawngate-echo backend (started
on demand by the first request): metrics with the log off (the reference), metrics with a JSON log to a
file, metrics with a combined log to a file, and, when BASE_BINARY is given, that build with the log off
(a build without metrics, to show what metrics alone cost). Every round runs each load against each
proxy in turn, the order rotated from round to round, and reads the proxy's CPU time (all its threads,
user and system, from /proc) around each run. The cost of a configuration is taken per round against the
reference run of the same round, so drift of the machine between rounds cancels; the report gives the
median over the rounds.
"""

import os
import statistics
import sys
import threading
import urllib.request

import clients
import procs

ROUNDS = int(os.environ.get("ROUNDS", "5"))
DURATION_S = int(os.environ.get("DURATION", "3"))
# Each configuration's run at the same time as a run of the reference, rather than one after the other:
# on a machine shared with other work, both then see the same load.
TOGETHER = os.environ.get("TOGETHER", "") not in ("", "0")
WARMUP_S = 1

REFERENCE = "metrics, log off"
BASE = "base build, log off"


def task_cpu_seconds(pid):
    """CPU time of every thread of `pid` in seconds, from each thread's schedstat (nanoseconds, so a
    3 s run is not rounded to clock ticks); /proc/PID/stat's utime + stime when schedstat is missing."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        user, system = procs.cpu_seconds([pid])
        return user + system


def write_config(path, port, admin_port, backend_port, echo, log):
    log_lines = ""
    if log is not None:
        fmt, file = log
        log_lines = f'access_log = "{file}"\naccess_log_format = "{fmt}"\n'
    with open(path, "w") as f:
        f.write(f"""[server]
port = {port}
bind = "127.0.0.1"
admin_port = {admin_port}
pool_max_idle_per_host = 256
{log_lines}
[backends."bench.localhost"]
command = "{echo}"
port = {backend_port}
idle_timeout_secs = 3600
""")


def loads(port):
    url = f"http://127.0.0.1:{port}/"
    return {
        "HTTP/1.1": lambda d: clients.wrk(url, "bench.localhost", 32, d),
        "h2c": lambda d: clients.h2load(url, "bench.localhost", 16, 16, d),
    }


def main():
    scratch, binary, echo = sys.argv[1:4]
    base = sys.argv[4] if len(sys.argv) > 4 else None
    configs = [(REFERENCE, binary, None), ("metrics + JSON log", binary, "json"),
               ("metrics + combined log", binary, "combined")]
    if base:
        configs.append((BASE, base, None))
    ports = procs.free_ports(3 * len(configs))
    proxies = {}
    for i, (name, exe, fmt) in enumerate(configs):
        port, admin_port, backend_port = ports[3 * i:3 * i + 3]
        directory = os.path.join(scratch, f"proxy{i}")
        os.makedirs(directory)
        log_file = os.path.join(directory, "access.log")
        config = os.path.join(directory, "spawngate.toml")
        write_config(config, port, admin_port, backend_port, echo, fmt and (fmt, log_file))
        server = procs.Server(name, [exe, config], os.path.join(directory, "proxy.log"))
        proxies[name] = {"server": server, "port": port, "admin": admin_port,
                         "log": log_file if fmt else None}
    for name, proxy in proxies.items():
        procs.wait_http_ok(proxy["admin"], "admin", 30, "/health")
        procs.wait_http_ok(proxy["port"], "bench.localhost", 30)
        for run in loads(proxy["port"]).values():
            run(WARMUP_S)
        if proxy["log"]:
            os.truncate(proxy["log"], 0)

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    names = [name for name, _, _ in configs]
    # per[load][config] = list of (requests, cpu seconds), one per round
    per = {load: {name: [] for name in names} for load in ("HTTP/1.1", "h2c")}
    line_bytes = {}
    # TOGETHER: the reference's run paired with this configuration's, at the same time.
    paired = {load: {name: [] for name in names} for load in per}

    def measure(name, load, result_to):
        proxy = proxies[name]
        pid = proxy["server"].pid
        before = task_cpu_seconds(pid)
        result = loads(proxy["port"])[load](DURATION_S)
        result_to.append((result, task_cpu_seconds(pid) - before))

    def keep(name, load, result, cpu, into):
        if result["errors"]:
            raise RuntimeError(f"{name}, {load}: {result['errors']} failed requests")
        into.append((result["requests"], cpu))
        proxy = proxies[name]
        if proxy["log"]:
            # Bounded disk use: the file is emptied after each run (the proxy appends).
            size = os.path.getsize(proxy["log"])
            line_bytes.setdefault(name, []).append(size / max(1, result["requests"]))
            os.truncate(proxy["log"], 0)

    for r in range(ROUNDS):
        order = names[r % len(names):] + names[:r % len(names)]
        for load in per:
            if TOGETHER:
                for name in (n for n in order if n != REFERENCE):
                    runs = {REFERENCE: [], name: []}
                    threads = [threading.Thread(target=measure, args=(n, load, runs[n])) for n in runs]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    for n, [(result, cpu)] in runs.items():
                        keep(n, load, result, cpu, per[load][n] if n == name else paired[load][name])
                continue
            for name in order:
                runs = []
                measure(name, load, runs)
                [(result, cpu)] = runs
                keep(name, load, result, cpu, per[load][name])
        print(f"round {r + 1}/{ROUNDS} done", file=sys.stderr)

    if TOGETHER:
        for load in per:
            per[load][REFERENCE] = [run for name in names for run in paired[load][name]]

    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    how = "each run beside a run of the reference" if TOGETHER else "runs one after the other"
    print(f"\nrequests per proxy CPU-second, median of {ROUNDS} rounds of {DURATION_S} s ({how}) "
          f"(wrk -t2 -c32 keep-alive; h2load -c16 -m16 -t1); load average {load_before} before, "
          f"{load_after} after\n")
    print("| load | configuration | req/CPU-s | CPU us/req | cost vs log off: median (range) of rounds |"
          " req/CPU-s by round |")
    print("|---|---|---:|---:|---:|---|")
    for load, by_config in per.items():
        for name in names:
            rates = [req / cpu for req, cpu in by_config[name]]
            runs = paired[load][name] if TOGETHER else by_config[REFERENCE]
            reference = [req / cpu for req, cpu in runs]
            median = statistics.median(rates)
            if name == REFERENCE:
                cost = "—"
            elif name == BASE:
                # What the reference build costs over this one: metrics, when it is a build without.
                costs = [100 * (1 - ref / rate) for rate, ref in zip(rates, reference)]
                cost = (f"reference costs {statistics.median(costs):+.1f}% "
                        f"({min(costs):+.1f} .. {max(costs):+.1f}) over it")
            else:
                costs = [100 * (1 - rate / ref) for rate, ref in zip(rates, reference)]
                cost = f"{statistics.median(costs):+.1f}% ({min(costs):+.1f} .. {max(costs):+.1f})"
            listed = " ".join(f"{rate:,.0f}" for rate in rates)
            print(f"| {load} | {name} | {median:,.0f} | {1e6 / median:.2f} | {cost} | {listed} |")
    print()
    for name, sizes in line_bytes.items():
        print(f"{name}: {statistics.median(sizes):.0f} bytes of log per request")
    for name, proxy in proxies.items():
        if proxy["log"]:
            dropped = metric(proxy["admin"], "spawngate_access_log_dropped_total")
            print(f"{name}: {dropped} lines dropped")


def metric(admin_port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return line.split()[1]
    return "?"


if __name__ == "__main__":
    try:
        main()
    finally:
        procs.stop_all()
