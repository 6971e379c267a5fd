#!/usr/bin/env python3
"""Turn ``pytest benches/bench_exi.py --benchmark-json=FILE`` output into a README table.

    python tools/bench_exi_table.py FILE [--stat median]

Per vector: our encode and decode (median, µs), msgpack packb/unpackb of the same dict, the
ratios ours/msgpack (target ≤ 1.0), ns per EXI byte, the drop-in exi.josev.JosevCodec (JSON text)
over the native codec of the same grammar variant (target ≤ 2.0), and EXIficient (via the
iso15118 package) when it was measured. Several files: each cell is the best of them (the
minimum of that statistic over the runs), as the README's table.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="+")
    ap.add_argument("--stat", default="median", choices=("median", "mean", "min"))
    args = ap.parse_args(argv)
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    sizes: dict[str, int] = {}
    for fname in args.file:
        data = json.load(open(fname, encoding="utf-8"))
        for b in data["benchmarks"]:
            impl = b["params"].get("impl")
            t = b["stats"][args.stat]
            groups[b["group"]][impl] = min(t, groups[b["group"]].get(impl, t))
            if "exi_bytes" in b.get("extra_info", {}):
                sizes[b["group"]] = b["extra_info"]["exi_bytes"]
    has_jar = any("exificient-encode" in g for g in groups.values())
    has_josev = any("josev-encode" in g for g in groups.values())
    head = ["vector", "enc µs", "packb µs", "enc/packb", "dec µs", "unpackb µs", "dec/unpackb", "enc ns/B", "dec ns/B"]
    if has_josev:
        head += ["drop-in enc/native", "drop-in dec/native"]
    if has_jar:
        head += ["EXIficient enc µs", "EXIficient dec µs"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|")
    worst = worst_josev = 0.0
    for g in sorted(groups, key=lambda k: sizes.get(k, 0)):
        r = groups[g]
        if not {"exi-encode", "exi-decode", "msgpack-packb", "msgpack-unpackb"} <= set(r):
            continue
        n = max(sizes.get(g, 1), 1)
        er, dr = r["exi-encode"] / r["msgpack-packb"], r["exi-decode"] / r["msgpack-unpackb"]
        worst = max(worst, er, dr)
        row = [g, f"{r['exi-encode'] * 1e6:.2f}", f"{r['msgpack-packb'] * 1e6:.2f}", f"{er:.2f}×",
               f"{r['exi-decode'] * 1e6:.2f}", f"{r['msgpack-unpackb'] * 1e6:.2f}", f"{dr:.2f}×",
               f"{r['exi-encode'] * 1e9 / n:.1f}", f"{r['exi-decode'] * 1e9 / n:.1f}"]
        if has_josev:
            if {"josev-encode", "jarvariant-encode"} <= set(r):
                je, jd = r["josev-encode"] / r["jarvariant-encode"], r["josev-decode"] / r["jarvariant-decode"]
                worst_josev = max(worst_josev, je, jd)
                row += [f"{je:.2f}×", f"{jd:.2f}×"]
            else:
                row += ["–", "–"]
        if has_jar:
            row += [f"{r['exificient-encode'] * 1e6:.0f}" if "exificient-encode" in r else "–",
                    f"{r['exificient-decode'] * 1e6:.0f}" if "exificient-decode" in r else "–"]
        print("| " + " | ".join(row) + " |")
    print(f"\nworst ratio ours/msgpack: {worst:.2f}× (target ≤ 1.0×)", file=sys.stderr)
    if has_josev:
        print(f"worst ratio drop-in/native: {worst_josev:.2f}× (target ≤ 2.0×)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
