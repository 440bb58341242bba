#!/usr/bin/env python3
"""Summarises bench/run's results.jsonl: medians over repetitions per target
and scenario, with ratios against nginx and against a direct connection."""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = defaultdict(list)
for r in rows:
    groups[(r["scenario"], r["target"])].append(r)
targets = list(dict.fromkeys(r["target"] for r in rows))


def med(scenario, target, key):
    values = [r[key] for r in groups.get((scenario, target), []) if key in r]
    return statistics.median(values) if values else None


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def fmt(v, digits=1):
    return "-" if v is None else f"{v:,.{digits}f}"


def split(scenario, target):
    """CPU per request in user space and in the kernel (syscalls, TCP)."""
    user, kernel = med(scenario, target, "user_us_per_req"), med(scenario, target, "sys_us_per_req")
    return "-" if user is None or kernel is None else f"{user:,.1f}+{kernel:,.1f}"


for scenario, title in [("small", "small JSON POST, 64 connections"), ("big", "1 MiB GET, 8 connections")]:
    if not any(s == scenario for s, _ in groups):
        continue
    print(f"\n== {title} ==")
    print(f"{'target':<15}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'CPU s/10k':>11}"
          f"{'CPU/req µs':>12}{'user+sys µs':>13}{'peak RSS MiB':>14}{'req/s÷nginx':>13}{'req/s÷direct':>14}{'CPU÷nginx':>11}{'p99÷nginx':>11}")
    for t in targets:
        if (scenario, t) not in groups:
            continue
        rps, cpu = med(scenario, t, "rps"), med(scenario, t, "cpu_us_per_req")
        p99 = med(scenario, t, "p99_ms")
        print(f"{t:<15}{fmt(rps, 0):>10}{fmt(med(scenario, t, 'p50_ms'), 3):>9}{fmt(p99, 3):>9}"
              f"{fmt(med(scenario, t, 'p999_ms'), 3):>10}{fmt(med(scenario, t, 'cpu_s_per_10k'), 3):>11}"
              f"{fmt(cpu, 1):>12}{split(scenario, t):>13}{fmt((med(scenario, t, 'peak_rss_kib') or 0) / 1024, 1):>14}"
              f"{ratio(rps, med(scenario, 'nginx', 'rps')):>13}{ratio(rps, med(scenario, 'direct', 'rps')):>14}"
              f"{ratio(cpu, med(scenario, 'nginx', 'cpu_us_per_req')):>11}{ratio(p99, med(scenario, 'nginx', 'p99_ms')):>11}")

if any(s == "stream" for s, _ in groups):
    print("\n== NDJSON stream (mock Ollama, 19 tokens, 20 ms apart) ==")
    print(f"{'target':<15}{'first byte ms':>15}{'total ms':>10}{'first byte - direct':>21}")
    for t in targets:
        first = med("stream", t, "ttfb_ms")
        if first is None:
            continue
        direct = med("stream", "direct", "ttfb_ms")
        delta = "-" if direct is None else f"{first - direct:+.2f} ms"
        print(f"{t:<15}{fmt(first, 2):>15}{fmt(med('stream', t, 'total_ms'), 1):>10}{delta:>21}")

if any(s in ("idle", "huge") for s, _ in groups):
    print("\n== memory ==")
    print(f"{'target':<15}{'RSS with 1,000 idle conns MiB':>31}{'RSS growth over 1 GiB body MiB':>32}")
    for t in targets:
        idle = med("idle", t, "rss_idle_kib")
        growth = med("huge", t, "growth_kib")
        if idle is None and growth is None:
            continue
        print(f"{t:<15}{fmt(idle and idle / 1024, 1):>31}{fmt(growth and growth / 1024, 1):>32}")
