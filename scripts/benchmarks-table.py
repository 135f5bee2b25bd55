#!/usr/bin/env python3
"""Prints the results table of BENCHMARKS.md from a run's results.json:
    python3 scripts/benchmarks-table.py target/braid-bench/<run>/results.json
"""
import json, sys, collections
recs = json.load(open(sys.argv[1]))
# Units whose larger values are better (throughput, speedup, efficiency).
higher_units = {"req/s", "x", "fraction"}
targets = {("yield_switch","time per switch"):10, ("spawn_join","time per task"):50,
           ("channel_ping_pong","time per hand-off"):25, ("event_round_trip","time per round trip"):20,
           ("parked_memory","resident memory per parked task"):2048,
           ("latency_under_load","p99 wake delay"):1000}
# Targets stated as a braid ratio against a peer: (peer, least ratio, label).
relative_targets = {("skynet", "time for the whole tree"): ("go", 10, "10x faster than Go"),
                    ("echo_server", "round trips per second"): ("tokio", 1.2, ">= 1.2x tokio")}
groups = collections.OrderedDict()
for r in recs:
    groups.setdefault((r["workload"], r["metric"], r["cores"]), []).append(r)
print("| workload | metric | cores | braid (median) | peers (median; braid ratio, > 1 = braid better) | target |")
print("| --- | --- | --- | --- | --- | --- |")
for (w, m, c), rs in groups.items():
    if m == "efficiency":
        continue
    b = next((r for r in rs if r["runtime"] == "braid"), None)
    if b is None:
        continue
    hb = b["unit"] in higher_units
    peers = []
    ratios = {}
    for r in rs:
        if r["runtime"] == "braid":
            continue
        ratio = (b["median"] / r["median"]) if hb else (r["median"] / b["median"])
        ratios[r["runtime"]] = ratio
        peers.append(f'{r["runtime"]} {r["median"]:.4g} ({ratio:.2f}x)')
    relative = relative_targets.get((w, m))
    if relative is not None and relative[0] in ratios:
        peer, factor, label = relative
        x = ratios[peer]
        tgt = f'{label}: {"met" if x >= factor else "**missed**"} ({x:.2f}x)'
        print(f'| {w} | {m} | {c} | {b["median"]:.4g} {b["unit"]} | {"; ".join(peers)} | {tgt} |')
        continue
    t = targets.get((w, m))
    if m == "speedup" and c == 2:
        t = 1.95
    tgt = ""
    if t is not None:
        met = b["median"] >= t if hb else b["median"] <= t
        op = ">=" if hb else "<="
        tgt = f'{op} {t}: {"met" if met else "**missed**"}'
    print(f'| {w} | {m} | {c} | {b["median"]:.4g} {b["unit"]} | {"; ".join(peers)} | {tgt} |')
