#!/usr/bin/env python3
"""Turns bench/run.sh's logs into bench/RESULTS.md (Markdown on stdout).

usage: report.py LOGDIR INPUT RUNS CAPTURE AVML
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys

TOOLS = [
    ("capture", "capture --source lime:FILE (seekable zstd + 2x SHA-256 + manifest + fsync)"),
    ("avml", "avml convert --format lime_compressed (no hashing)"),
    ("manual", "tee | zstd -1 -T0 | tee, two sha256sum via named pipes"),
    ("zstd", "zstd -1 -T0 alone (no hashing)"),
]
MIB = 1 << 20


def parse_time(path):
    text = open(path).read()

    def field(name):
        m = re.search(re.escape(name) + r":\s*(\S+)", text)
        if not m:
            raise SystemExit(f"{path}: no '{name}'")
        return m.group(1)

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    status = int(field("Exit status"))
    return {
        "wall": secs,
        "cpu": float(field("User time (seconds)")) + float(field("System time (seconds)")),
        "rss_kib": int(field("Maximum resident set size (kbytes)")),
        "status": status,
    }


def main():
    logdir, input_path, runs, capture, avml = sys.argv[1:6]
    runs = int(runs)
    input_len = os.path.getsize(input_path)
    rows = {}
    for tool, _ in TOOLS:
        samples = []
        for rep in range(1, runs + 1):
            base = os.path.join(logdir, f"{tool}.{rep}")
            t = parse_time(base + ".time")
            if t["status"] != 0:
                err = open(base + ".err").read()[-2000:]
                raise SystemExit(f"{tool} run {rep} failed (exit {t['status']}):\n{err}")
            t["size"] = int(open(base + ".size").read())
            t["sync"] = float(open(base + ".sync").read())
            samples.append(t)
        med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
        med["walls"] = [s["wall"] for s in samples]
        med["rss_max"] = max(s["rss_kib"] for s in samples)
        med["mibs"] = input_len / MIB / med["wall"]
        rows[tool] = med

    c = rows["capture"]
    out = []
    w = out.append
    w("# Capture benchmark results")
    w("")
    w("Written by `bench/run.sh` (see its header for what each tool does); do not edit by hand.")
    w("")
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    w(f"- Machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}")
    w(f"- Input: `{os.path.basename(input_path)}`, {input_len} bytes "
      f"({input_len / MIB:.0f} MiB) of LiME from `bench/gen` (fixed seed), warm page cache")
    w(f"- Runs: {runs} per tool, interleaved; medians shown; every command at niceness "
      f"{os.environ.get('NICE', '-20')}")
    try:
        la = [open(os.path.join(logdir, f"loadavg.{x}")).read().split()[:3] for x in ("start", "end")]
        w(f"- Load average (1/5/15 min) at start {' '.join(la[0])}, at end {' '.join(la[1])} "
          "(anything above 0 is other work sharing the CPUs)")
    except OSError:
        pass
    ver = subprocess.run([capture, "--version"], capture_output=True, text=True).stdout.strip()
    w(f"- capture: `{ver.splitlines()[0] if ver else capture}`")
    zv = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout.strip()
    av = subprocess.run([avml, "--version"], capture_output=True, text=True).stdout.strip()
    w(f"- zstd: `{zv}`; AVML: `{av or avml}`")
    man = os.path.join(logdir, "manifest.json")
    if os.path.exists(man):
        m = json.load(open(man))
        comp = m.get("compression") or m.get("image", {}).get("compression") or {}
        if comp:
            w(f"- capture's compression (manifest): `{json.dumps(comp, sort_keys=True)}`")
    w("")
    w("| tool | wall s | MiB/s | CPU s | peak RSS MiB | output MiB | output % of input | then `sync` s |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for tool, desc in TOOLS:
        r = rows[tool]
        w(f"| {tool}: {desc} | {r['wall']:.2f} | {r['mibs']:.0f} | {r['cpu']:.2f} | "
          f"{r['rss_max'] / 1024:.1f} | {r['size'] / MIB:.0f} | {100 * r['size'] / input_len:.1f} | "
          f"{r['sync']:.2f} |")
    w("")
    w("Wall times of every run (s): " + "; ".join(
        f"{t} " + ", ".join(f"{x:.2f}" for x in rows[t]["walls"]) for t, _ in TOOLS))
    w("")
    w("## Ratios (capture against each)")
    w("")
    w("| against | throughput (x) | CPU time (x) | output size (x) | peak RSS (x) |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for tool, _ in TOOLS[1:]:
        r = rows[tool]
        w(f"| {tool} | {c['mibs'] / r['mibs']:.2f} | {c['cpu'] / r['cpu']:.2f} | "
          f"{c['size'] / r['size']:.2f} | {c['rss_max'] / r['rss_max']:.2f} |")
    w("")
    w("## Targets (acquisition issue)")
    w("")
    checks = [
        ("throughput >= 1.4x AVML", c["mibs"] / rows["avml"]["mibs"], 1.4, True),
        ("throughput >= 3x manual pipeline", c["mibs"] / rows["manual"]["mibs"], 3.0, True),
        ("output <= 0.8x AVML", c["size"] / rows["avml"]["size"], 0.8, False),
        ("peak RSS < 64 MiB", c["rss_max"] / 1024, 64.0, False),
        ("throughput >= 0.85x zstd -1 -T0", c["mibs"] / rows["zstd"]["mibs"], 0.85, True),
    ]
    w("| target | measured | met |")
    w("| --- | ---: | --- |")
    for name, value, bound, at_least in checks:
        ok = value >= bound if at_least else value <= bound if "RSS" not in name else value < bound
        w(f"| {name} | {value:.2f} | {'yes' if ok else 'NO'} |")
    w("")
    w("Both SHA-256 digests are computed by capture (manifest); its image was checked: "
      "`zstd -d` holds the input's memory (the same payload bytes and ranges; capture splits "
      "records at every 1 GiB boundary, so its stream differs from the input by those headers), "
      "the sidecar passes `sha256sum -c`"
      + ", the manifest's LiME digest equals sha256sum of the decompressed image"
      + (" and of the input." if lime_digest_matches(logdir) else " (not the input's: a record was split)."))
    w("")
    w("`capture symbols` against dwarf2json (time, memory, table size and content): "
      "[RESULTS-symbols.md](RESULTS-symbols.md), made by `bench/symbols.sh` (on demand).")
    print("\n".join(out))


def lime_digest_matches(logdir):
    """The manifest's LiME digest must be that of the decompressed image;
    returns whether it is also the input's (no record split at 1 GiB)."""
    try:
        image = open(os.path.join(logdir, "image.sha256")).read().split()[0]
        want = open(os.path.join(logdir, "input.sha256")).read().split()[0]
        text = open(os.path.join(logdir, "manifest.json")).read()
    except OSError:
        return False
    if image not in text:
        raise SystemExit(f"manifest.json does not contain the image's LiME SHA-256 {image}")
    return want in text


if __name__ == "__main__":
    main()
