#!/bin/bash
# bench/symbols-memory.sh [CAPTURE_BINARY...]
#
# Peak memory and time of `capture symbols` on a real kernel, on demand (not
# part of CI). The input is Debian 12's 6.1.0-57-amd64 as `capture` took it
# under the VM bench: its BTF with 13 modules' split BTF, kallsyms and
# VMCOREINFO, kept in crates/symbols/tests/data/. A capture directory holding
# them (manifest, a small image with the banner, context/ files with their
# hashes) is built by the test crates/analyze/tests/symbols_memory.rs with
# FV_SYMBOLS_CAPTURE=DIR; no VM or download is needed.
#
# Each binary given (default: the workspace's x86_64 musl release build, as
# ./build.sh makes it, else dist/volume/bin/x86_64/capture) runs
# `capture symbols DIR -o OUT.json.xz` RUNS times under /usr/bin/time
# (Debian's `time` package): wall time, CPU time (user+sys) and peak RSS are
# reported for every run, and the tables the binaries wrote are compared
# (they must be byte-identical: the same kernel gives the same table). The
# Markdown report goes to stdout and to $RESULTS.
#
# Environment: RUNS (default 2), WORKDIR (default ${TMPDIR:-/var/tmp}/fv-bench-symbols),
# RESULTS (default bench/RESULTS-symbols-memory.md), NICE (prefix for the
# timed commands, e.g. "nice -n 19").
#
# Exit codes: 0 done, 2 usage or a missing prerequisite, 1 a step failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench/symbols-memory.sh: $2" >&2; exit "$1"; }
say() { echo "bench/symbols-memory.sh: $*" >&2; }

RUNS=${RUNS:-2}
WORKDIR=${WORKDIR:-${TMPDIR:-/var/tmp}/fv-bench-symbols}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS-symbols-memory.md}
NICE=${NICE:-}
[ -x /usr/bin/time ] || die 2 "/usr/bin/time is missing (Debian package \`time\`)"
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
    for c in "$ROOT/target/x86_64-unknown-linux-musl/release/capture" "$ROOT/dist/volume/bin/x86_64/capture"; do
        [ -x "$c" ] && { BINS=("$c"); break; }
    done
fi
[ ${#BINS[@]} -gt 0 ] || die 2 "no capture binary: give one, or run ./build.sh build"
for b in "${BINS[@]}"; do [ -x "$b" ] || die 2 "$b: not an executable"; done

rm -rf "$WORKDIR" && mkdir -p "$WORKDIR"
CAPDIR=$WORKDIR/debian-6.1.0-57-amd64
say "building the capture directory $CAPDIR (cargo test -p fv-analyze --test symbols_memory)"
(cd "$ROOT" && FV_SYMBOLS_CAPTURE=$CAPDIR cargo test --locked -q -p fv-analyze \
    --test symbols_memory >&2) || die 1 "building the capture directory failed"
[ -f "$CAPDIR/manifest.json" ] || die 1 "$CAPDIR: no manifest.json"

{
    echo "# \`capture symbols\` on a real kernel: memory and time"
    echo
    echo "Written by \`bench/symbols-memory.sh\` (see its header); on demand, not part of CI."
    echo
    echo "- Input: Debian 12's 6.1.0-57-amd64 (vmlinux BTF $(stat -c %s "$CAPDIR/context/btf/vmlinux") bytes," \
        "$(find "$CAPDIR/context/btf" -type f ! -name vmlinux | wc -l) modules' split BTF," \
        "kallsyms $(stat -c %s "$CAPDIR/context/kallsyms") bytes), from crates/symbols/tests/data/"
    echo "- Machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) when it started," \
        "Linux $(uname -r); each run once: wall times on a shared machine are upper bounds, CPU time and peak RSS are the figures to keep"
    echo
    echo "| binary | run | wall | CPU (user+sys) | peak RSS |"
    echo "|---|---|---|---|---|"
} >"$WORKDIR/report.md"

i=0
for b in "${BINS[@]}"; do
    i=$((i + 1))
    version="$("$b" --version 2>/dev/null | head -n1) ($b)"
    for r in $(seq 1 "$RUNS"); do
        say "run $r of $version"
        # shellcheck disable=SC2086 # NICE is a word list on purpose
        $NICE /usr/bin/time -f '%e %U %S %M' -o "$WORKDIR/time" \
            "$b" symbols "$CAPDIR" -o "$WORKDIR/table-$i.json.xz" --force >"$WORKDIR/out-$i" \
            || die 1 "$b symbols failed (see $WORKDIR/out-$i)"
        read -r wall user sys rss <"$WORKDIR/time"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
        echo "| $version | $r | $wall s | $cpu s | $((rss / 1024)) MiB |" >>"$WORKDIR/report.md"
    done
done
if [ ${#BINS[@]} -gt 1 ]; then
    same=yes
    for j in $(seq 2 ${#BINS[@]}); do
        cmp -s "$WORKDIR/table-1.json.xz" "$WORKDIR/table-$j.json.xz" || same=no
    done
    echo >>"$WORKDIR/report.md"
    echo "Tables byte-identical across the binaries: $same." >>"$WORKDIR/report.md"
fi
tee "$RESULTS" <"$WORKDIR/report.md"
say "wrote $RESULTS"
