#!/usr/bin/env python3
"""Summarises bench/streams' results.jsonl: per target, RSS per open stream
and CPU per relayed chunk for each scenario, with ratios against nginx."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
targets = list(dict.fromkeys(r["target"] for r in rows))


def find(target, scenario, streams=None, fmt=None):
    for r in rows:
        if r["target"] == target and r["scenario"] == scenario \
                and (streams is None or r.get("streams") == streams) \
                and (fmt is None or r.get("format") == fmt):
            return r
    return None


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


holds = list(dict.fromkeys((r["streams"], r["format"]) for r in rows if r["scenario"] == "hold"))
client = {r.get("client_protocol", "h1") for r in rows if r["scenario"] == "hold"}
over = " over HTTP/2 (100 per connection)" if client == {"h2"} else ""
for streams, fmt in holds:
    print(f"\n== {streams:,} concurrent {fmt} streams{over}, 10 chunks 1 s apart ==")
    print(f"{'target':<16}{'KiB/stream':>11}{'÷nginx':>8}{'CPU µs/chunk':>14}{'user+sys':>13}{'÷nginx':>8}"
          f"{'lost':>6}{'merged':>8}{'errors':>8}{'peak MiB':>10}")
    base = find("nginx", "hold", streams, fmt)
    for t in targets:
        r = find(t, "hold", streams, fmt)
        if not r:
            continue
        print(f"{t:<16}{r['kib_per_stream']:>11.1f}{ratio(r['kib_per_stream'], base and base['kib_per_stream']):>8}"
              f"{r['cpu_us_per_chunk']:>14.1f}{r['user_us_per_chunk']:>7.1f}+{r['sys_us_per_chunk']:<5.1f}"
              f"{ratio(r['cpu_us_per_chunk'], base and base['cpu_us_per_chunk']):>8}"
              f"{r['chunks_lost']:>6}{r['frames_merged']:>8}{r['errors']:>8}{r['rss_peak_kib'] / 1024:>10.1f}")

print("\n== pace: 100 NDJSON streams, 400 chunks 20 ms apart ==")
print(f"{'target':<16}{'CPU µs/chunk':>14}{'user+sys':>13}{'÷nginx':>8}{'lost':>6}")
base = find("nginx", "pace")
for t in targets:
    r = find(t, "pace")
    if r:
        print(f"{t:<16}{r['cpu_us_per_chunk']:>14.1f}{r['user_us_per_chunk']:>7.1f}+{r['sys_us_per_chunk']:<5.1f}"
              f"{ratio(r['cpu_us_per_chunk'], base and base['cpu_us_per_chunk']):>8}{r['chunks_lost']:>6}")

print("\n== memory return: RSS after the load and the settle time, against before it ==")
print(f"{'target':<16}{'before MiB':>11}{'after MiB':>11}{'after÷before':>14}")
for t in targets:
    r = find(t, "return")
    if r:
        print(f"{t:<16}{r['rss_before_kib'] / 1024:>11.1f}{r['rss_after_kib'] / 1024:>11.1f}"
              f"{ratio(r['rss_after_kib'], r['rss_before_kib']):>14}")
