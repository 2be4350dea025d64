"""Turns a run's results (JSON written by driver.py) into the Markdown report.

    python3 report.py bench-results/<timestamp>.json [LEVEL]   # prints the report again; LEVEL 2
                                                               # nests its headings one level down
"""

import json
import statistics
import sys

PROXIES = ["Spawngate", "nginx", "HAProxy"]
PEERS = ["nginx", "HAProxy"]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def round_values(results, scenario, field, proxy):
    return [r.get(field) for r in results["rounds"].get(scenario, {}).get(proxy, [])]


def round_errors(results, scenario, proxy):
    return sum(r.get("errors", 0) for r in results["rounds"].get(scenario, {}).get(proxy, []))


def fmt_count(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_fixed(v):
    return "—" if v is None else f"{v:.2f}"


def fmt_mib(v):
    return "—" if v is None else f"{v / 2**20:.2f}"


def fmt_rate(v):
    return "—" if v is None else f"{v:.1f}"


# Each figure: label, how to read it per proxy, format, and the target as (text, check) where
# check(spawngate, nginx, haproxy) says whether Spawngate meets it. Lower-is-better figures say so.
def figures(results):
    def per_round(scenario, field):
        return lambda proxy: (median(round_values(results, scenario, field, proxy)),
                              round_errors(results, scenario, proxy))

    def single(key):
        return lambda proxy: (results["single"].get(key, {}).get(proxy), 0)

    def cold(probe, field, pick):
        def read(proxy):
            data = results.get("cold", {}).get(str(probe))
            if proxy != "Spawngate" or not data:
                return (None, 0)
            return (pick(data[field]), 0)
        return read

    figs = [
        ("HTTP/1.1 keep-alive, 64 conns: req/s", per_round("keepalive", "rps"), fmt_count,
         ("≥ the better peer", lambda sg, ng, ha: sg >= max(ng, ha))),
        ("HTTP/1.1 keep-alive: req per proxy CPU-second", per_round("keepalive", "req_per_cpu_s"),
         fmt_count, ("≥ 1.3× each peer", lambda sg, ng, ha: sg >= 1.3 * max(ng, ha))),
        ("HTTP/1.1 keep-alive: proxy user CPU, µs/request (lower is better)",
         per_round("keepalive", "user_us_per_req"), fmt_fixed, None),
        ("HTTP/1.1 keep-alive: proxy system CPU, µs/request (lower is better)",
         per_round("keepalive", "system_us_per_req"), fmt_fixed, None),
        ("HTTP/1.1 keep-alive: new backend connections per 1,000 requests (lower is better)",
         per_round("keepalive", "backend_connects_per_1k"), fmt_fixed, None),
        ("HTTP/1.1 keep-alive: p50 latency, ms (lower is better)", per_round("keepalive", "p50_ms"),
         fmt_fixed, None),
        ("HTTP/1.1 keep-alive: p99 latency, ms (lower is better)", per_round("keepalive", "p99_ms"),
         fmt_fixed, ("≤ each peer", lambda sg, ng, ha: sg <= min(ng, ha))),
    ] + [
        # The same scenario with wrk kept on one CPU: figures only, the goals are judged above.
        (f"HTTP/1.1 keep-alive, wrk kept on one CPU: {label}", per_round("keepalive_pinned", field), fmt,
         None)
        for label, field, fmt in [("req/s", "rps", fmt_count),
                                  ("req per proxy CPU-second", "req_per_cpu_s", fmt_count),
                                  ("p50 latency, ms (lower is better)", "p50_ms", fmt_fixed),
                                  ("p99 latency, ms (lower is better)", "p99_ms", fmt_fixed)]
    ] + [
        ("New connection per request: req/s", per_round("new_connection", "rps"), fmt_count, None),
        ("1 MiB responses, 16 conns: MB/s", per_round("big", "mb_per_s"), fmt_count, None),
        ("h2c, 1 conn x 100 streams: req/s", per_round("h2_1x100", "rps"), fmt_count,
         ("≥ HAProxy", lambda sg, ng, ha: sg >= ha)),
        ("h2c, 16 conns x 16 streams: req/s", per_round("h2_16x16", "rps"), fmt_count,
         ("≥ HAProxy", lambda sg, ng, ha: sg >= ha)),
        ("WebSocket echo, 16 conns x 2 messages of 32 KiB: MB/s echoed",
         per_round("ws_echo", "mb_per_s"), fmt_count, None),
        ("WebSocket echo: proxy CPU ms per MB echoed (lower is better)",
         per_round("ws_echo", "cpu_ms_per_mb"), fmt_fixed, None),
        ("HTTPS keep-alive, 64 conns: req/s", per_round("https_keepalive", "rps"), fmt_count, None),
        ("HTTPS keep-alive: req per proxy CPU-second", per_round("https_keepalive", "req_per_cpu_s"),
         fmt_count, None),
        ("HTTPS keep-alive: proxy user CPU, µs/request (lower is better)",
         per_round("https_keepalive", "user_us_per_req"), fmt_fixed, None),
        ("HTTPS keep-alive: proxy system CPU, µs/request (lower is better)",
         per_round("https_keepalive", "system_us_per_req"), fmt_fixed, None),
        ("HTTPS keep-alive: p99 latency, ms (lower is better)", per_round("https_keepalive", "p99_ms"),
         fmt_fixed, None),
        ("HTTPS new connections, full handshake + 1 request each: handshakes/s",
         per_round("https_handshake", "per_s"), fmt_count, None),
        ("HTTPS new connections: handshakes per proxy CPU-second",
         per_round("https_handshake", "handshakes_per_cpu_s"), fmt_count, None),
        ("HTTPS new connections: proxy CPU busy, share of one core",
         per_round("https_handshake", "cpu_busy"), fmt_fixed, None),
        ("HTTPS new connections: p99 connection time, ms (lower is better)",
         per_round("https_handshake", "p99_ms"), fmt_fixed, None),
        ("h2 over TLS, 16 conns x 16 streams: req/s", per_round("h2_tls_16x16", "rps"), fmt_count, None),
        ("h2 over TLS: req per proxy CPU-second", per_round("h2_tls_16x16", "req_per_cpu_s"), fmt_count,
         None),
        ("Idle RSS, MiB (lower is better)", single("idle_rss"), fmt_mib, None),
        ("Idle RSS, anonymous (RssAnon: allocated), MiB (lower is better)", single("idle_rss_anon"),
         fmt_mib, ("< 5 MiB", lambda sg, ng, ha: sg < 5 * 2**20)),
        ("Idle RSS, file-backed (RssFile: binary, libraries), MiB", single("idle_rss_file"), fmt_mib,
         None),
        ("Bytes per idle keep-alive connection (lower is better)", single("bytes_per_connection"),
         fmt_count, ("≤ nginx", lambda sg, ng, ha: sg <= ng)),
        ("Bytes per connection that only connected (lower is better)",
         single("bytes_per_connection_accept_only"), fmt_count, None),
        ("Bytes per idle keep-alive connection, requests served at once, settled (lower is better)",
         single("bytes_per_connection_at_once"), fmt_count,
         ("≤ 1 KiB", lambda sg, ng, ha: sg <= 1024)),
        ("Idle wakeups/s, after load, 2 backends running (lower is better)",
         single("wakeups_after_load"), fmt_rate, None),
        ("Idle wakeups/s, 20 backends all stopped (lower is better)", single("wakeups_stopped"),
         fmt_rate, ("0", lambda sg, ng, ha: sg == 0)),
    ]
    for probe in results.get("cold", {}):
        label = f"cold start, probe every {probe} ms"
        figs += [
            (f"{label}: backend alone, exec to first byte p50, ms", cold(probe, "direct_ms", median),
             fmt_fixed, None),
            (f"{label}: through Spawngate p50, ms", cold(probe, "via_ms", median), fmt_fixed, None),
            (f"{label}: added p50, ms", cold(probe, "added_ms", median), fmt_fixed,
             ("< 5 ms", lambda sg, ng, ha: sg < 5)),
            (f"{label}: added max, ms", cold(probe, "added_ms", max), fmt_fixed, None),
        ]
    return figs


def ratio(sg, peer):
    if sg is None or peer is None:
        return "—"
    if peer == 0:
        return "=" if sg == 0 else "∞"
    return f"{sg / peer:.2f}×"


def summary_table(results):
    lines = ["| Figure | Spawngate | nginx | HAProxy | vs nginx | vs HAProxy | Target | Met |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    flagged = []
    for label, read, fmt, target in figures(results):
        readings = {proxy: read(proxy) for proxy in PROXIES}
        if all(value is None and not errors for value, errors in readings.values()):
            # Not measured in this run (ONLY=https, or a build without TLS).
            continue
        values, cells = {}, []
        for proxy in PROXIES:
            value, errors = readings[proxy]
            values[proxy] = value
            mark = ""
            if errors:
                mark = " †"
                flagged.append(f"{label}: {proxy} had {errors} failed requests or socket errors")
            cells.append(fmt(value) + mark)
        sg = values["Spawngate"]
        ratios = [ratio(sg, values[p]) for p in PEERS]
        target_text, met = "", ""
        if target is not None:
            target_text = target[0]
            try:
                met = "yes" if target[1](sg, values["nginx"], values["HAProxy"]) else "**no**"
            except TypeError:
                # A figure it needs is missing (a failed measurement): nothing to judge.
                met = "—"
        lines.append(f"| {label} | {' | '.join(cells)} | {' | '.join(ratios)} | {target_text} | {met} |")
    return lines, flagged


def rounds_table(results):
    lines = ["| Scenario | Proxy | " + " | ".join(f"round {i + 1}" for i in range(results["settings"]["rounds"]))
             + " |", "|---|---|" + "---:|" * results["settings"]["rounds"]]
    # The keep-alive row's CPU and tail figures too: the goals judged on them move between runs more than
    # within one, and the rounds show by how much.
    fields = [("keepalive", "rps", fmt_count), ("keepalive", "req_per_cpu_s", fmt_count),
              ("keepalive", "p99_ms", fmt_fixed), ("keepalive_pinned", "req_per_cpu_s", fmt_count),
              ("keepalive_pinned", "p99_ms", fmt_fixed), ("new_connection", "rps", fmt_count),
              ("big", "mb_per_s", fmt_count), ("h2_1x100", "rps", fmt_count), ("h2_16x16", "rps", fmt_count),
              ("ws_echo", "mb_per_s", fmt_count), ("https_keepalive", "rps", fmt_count),
              ("https_handshake", "per_s", fmt_count), ("h2_tls_16x16", "rps", fmt_count)]
    for scenario, field, fmt in fields:
        if scenario not in results["rounds"]:
            continue
        for proxy in PROXIES:
            values = round_values(results, scenario, field, proxy)
            lines.append(f"| {scenario} ({field}) | {proxy} | " + " | ".join(fmt(v) for v in values) + " |")
    return lines


def render(results, level=1):
    """The report; `level` is the Markdown level of its title (2 to nest it in another document)."""
    h1, h2 = "#" * level, "#" * (level + 1)
    machine, settings = results["machine"], results["settings"]
    kind = "QUICK smoke run, too short to quote" if settings["quick"] else "full run"
    if settings.get("only"):
        kind += f", ONLY={settings['only']} rows"
    out = [f"{h1} Spawngate vs nginx vs HAProxy — {results['started']} ({kind})", ""]
    out += [f"- Machine: {machine['nproc']} CPUs, {machine['cpu']}, {machine['memory']}, "
            f"kernel {machine['kernel']}",
            f"- Load: {machine['load_before']} (1/5/15-minute load average before the run)"]
    out += [f"- {name}: {version}" for name, version in results["versions"].items()]
    out += ["- Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), ""]
    out += ["Medians over the rounds; ratios are Spawngate ÷ peer. Proxy CPU is utime+stime of the",
            "proxy's processes (all threads; nginx master and worker), from /proc. RSS is VmRSS summed",
            "over them, split into RssAnon and RssFile (/proc/PID/status); the per-connection figures",
            "are growth of the total. † = errors, see notes.", ""]
    for name, seen in results.get("tls", {}).items():
        # The key exchange group as h2load saw it (Python's ssl does not tell).
        groups = {r.get("tls_group") for r in results["rounds"].get("h2_tls_16x16", {}).get(name, [])}
        group = ", key exchange " + "/".join(sorted(g for g in groups if g)) if any(groups) else ""
        out.append(f"- HTTPS, {name}: {seen['protocol']} {seen['cipher']}{group}, certificate "
                   f"CN={seen['subject'].get('commonName')} (verified against the run's CA)")
    if results.get("tls"):
        out.append("")
    table, flagged = summary_table(results)
    out += table + [""]
    out += [f"{h2} Per round", ""] + rounds_table(results) + [""]
    notes = flagged + results.get("notes", [])
    if notes:
        out += [f"{h2} Notes", ""] + [f"- {n}" for n in notes] + [""]
    out += [f"{h2} Commands", "",
            "Configs are benches/load/templates/*, rendered with these ports into the scratch directory.",
            "", "```"] + results["commands"] + ["```", ""]
    return "\n".join(out)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: report.py RESULTS.json [HEADING_LEVEL]")
    level = int(sys.argv[2]) if len(sys.argv) == 3 else 1
    with open(sys.argv[1]) as f:
        print(render(json.load(f), level))


if __name__ == "__main__":
    main()
