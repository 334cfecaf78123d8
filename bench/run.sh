#!/bin/sh
# bench/run.sh [WORKDIR]
#
# The capture benchmark of the acquisition issue. On one machine, in one run,
# on the same generated LiME input (bench/gen: 2.25 GiB, a realistic mix of
# zero, free, code, text, kernel-structure, page-table and high-entropy
# pages, fixed seed), warm page cache, each tool RUNS times, interleaved:
#
#   capture   capture --source lime:INPUT (the real binary): seekable zstd,
#             SHA-256 of the LiME stream and of the image, manifest, fsync
#   avml      AVML's `avml convert` to its compressed LiME format (no hashing)
#   manual    zstd -1 -T0 with tee into two sha256sum through named pipes,
#             waiting for both hashers (what a responder would type)
#   zstd      zstd -1 -T0 alone (no hashing): the CPU's ceiling
#
# and reports the median wall time, CPU time (user+sys), peak RSS
# (/usr/bin/time -v) and output size of each, with ratios to capture, in
# bench/RESULTS.md (or $RESULTS). The time each tool's output then takes to
# reach the disk (`sync` right after it) is reported too: capture's figure
# already includes it (it flushes as it goes and fsyncs), the others leave
# their output dirty in the page cache.
#
# It also checks capture's result: `zstd -d` of the image is the input's
# memory (the same payload and ranges; capture splits records at 1 GiB),
# the manifest's LiME digest equals sha256sum of the decompressed image (and
# of the input when no record was split), and the sidecar
# passes `sha256sum -c`.
#
# Not a timed test. Environment: CAPTURE (a capture binary; default: build
# the workspace's, release), AVML (an `avml` binary with the convert
# command; default: cargo install avml with only its convert feature into
# WORKDIR), RUNS (default 3), SCALE (generator
# scale, default 1), LEVEL (pass --level to capture; default: capture's own
# default), NICE (niceness of every measured command and of the benchmark's
# own scheduler autogroup, default -20: the benchmark runs in a session of its
# own, and with autogroup scheduling a niceness only counts within a session,
# so on a shared machine other sessions' work would otherwise get an equal
# share of the CPUs), RESULTS (output file).
set -eu

# A session of our own, so the autogroup priority below covers just the
# benchmark.
if [ -z "${FV_BENCH_SESSION:-}" ] && command -v setsid >/dev/null 2>&1; then
    FV_BENCH_SESSION=1 exec setsid -w "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-${TMPDIR:-/var/tmp}/fv-bench}
RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
NICE=${NICE:--20}
if [ -w /proc/self/autogroup ]; then
    echo "$NICE" >/proc/self/autogroup 2>/dev/null || true
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

say() { printf '%s\n' "$*" >&2; }

for tool in zstd sha256sum tee mkfifo cmp /usr/bin/time cargo python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        say "bench/run.sh: needs $tool (Debian: apt-get install zstd coreutils diffutils time python3)"
        exit 2
    }
done
[ "$(id -u)" = 0 ] || { say "bench/run.sh: capture needs root; run as root"; exit 2; }

say "building the generator (bench/gen, release)"
CARGO_TARGET_DIR="$WORK/target-gen" cargo build --quiet --release \
    --manifest-path "$ROOT/bench/gen/Cargo.toml" --bin fv-bench-gen
GEN="$WORK/target-gen/release/fv-bench-gen"

if [ -z "${CAPTURE:-}" ]; then
    say "building capture (release)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$WORK/target" cargo build --quiet --locked --release -p capture)
    CAPTURE="$WORK/target/release/capture"
fi
if [ -z "${AVML:-}" ]; then
    AVML="$WORK/avml/bin/avml"
    if [ ! -x "$AVML" ]; then
        say "installing AVML's converter (cargo install avml --no-default-features --features convert)"
        CARGO_TARGET_DIR="$WORK/target-avml" cargo install --quiet avml \
            --no-default-features --features convert --root "$WORK/avml"
    fi
fi

INPUT="$WORK/input.lime"
if [ ! -s "$INPUT" ]; then
    say "generating $INPUT (scale $SCALE)"
    "$GEN" "$INPUT" --scale "$SCALE" >&2
fi

OUT="$WORK/out"
LOG="$WORK/log"
rm -rf "$OUT" "$LOG"
mkdir -p "$OUT" "$LOG"
LEVEL_ARG=""
[ -n "${LEVEL:-}" ] && LEVEL_ARG="--level $LEVEL"

# Warm cache for every run: capture drops the file it reads from the page
# cache (the page cache is evidence), so each run re-reads it first.
warm() { cat "$INPUT" >/dev/null; sync; }

run_tool() { # name rep
    name=$1 rep=$2
    rm -rf "${OUT:?}"/*
    warm
    case $name in
    capture)
        mkdir "$OUT/captures"
        # shellcheck disable=SC2086
        nice -n "$NICE" /usr/bin/time -v -o "$LOG/$name.$rep.time" \
            "$CAPTURE" --source "lime:$INPUT" --output "$OUT/captures" \
            --allow-any-output --no-imds --quiet $LEVEL_ARG \
            >"$LOG/$name.$rep.out" 2>"$LOG/$name.$rep.err"
        ;;
    avml)
        nice -n "$NICE" /usr/bin/time -v -o "$LOG/$name.$rep.time" \
            "$AVML" convert --source-format lime --format lime_compressed \
            "$INPUT" "$OUT/avml.lime" >"$LOG/$name.$rep.out" 2>"$LOG/$name.$rep.err"
        ;;
    manual)
        # shellcheck disable=SC2016 # expanded by the inner sh
        nice -n "$NICE" /usr/bin/time -v -o "$LOG/$name.$rep.time" sh -c '
            set -e
            mkfifo "$2/lime.fifo" "$2/zst.fifo"
            sha256sum <"$2/lime.fifo" >"$2/manual.lime.sha256" & a=$!
            sha256sum <"$2/zst.fifo" >"$2/manual.zst.sha256" & b=$!
            tee "$2/lime.fifo" <"$1" | zstd -1 -T0 -q -c | tee "$2/zst.fifo" >"$2/manual.zst"
            wait $a
            wait $b
        ' sh "$INPUT" "$OUT" >"$LOG/$name.$rep.out" 2>"$LOG/$name.$rep.err"
        cp "$OUT/manual.lime.sha256" "$LOG/input.sha256"
        ;;
    zstd)
        nice -n "$NICE" /usr/bin/time -v -o "$LOG/$name.$rep.time" \
            zstd -1 -T0 -q "$INPUT" -o "$OUT/zstd.zst" \
            >"$LOG/$name.$rep.out" 2>"$LOG/$name.$rep.err"
        ;;
    esac
    # Time for what the tool left dirty to reach the disk.
    s0=$(date +%s.%N)
    sync
    s1=$(date +%s.%N)
    echo "$s0 $s1" | awk '{printf "%.3f\n", $2 - $1}' >"$LOG/$name.$rep.sync"
    case $name in
    capture) f=$(find "$OUT/captures" -name memory.lime.zst) ;;
    avml) f="$OUT/avml.lime" ;;
    manual) f="$OUT/manual.zst" ;;
    zstd) f="$OUT/zstd.zst" ;;
    esac
    size=$(stat -c %s "$f")
    echo "$size" >"$LOG/$name.$rep.size"
}

check_capture() {
    img=$(find "$OUT/captures" -name memory.lime.zst)
    dir=$(dirname "$img")
    say "checking capture's image $img"
    # The same memory as the input: capture splits records at every 1 GiB
    # boundary (the input's are whole ranges), so payloads and joined ranges
    # are compared.
    zstd -dc "$img" | sha256sum >"$LOG/image.sha256"
    a=$(zstd -dc "$img" | python3 "$ROOT/bench/lime_norm.py" "$LOG/image.ranges" | sha256sum)
    b=$(python3 "$ROOT/bench/lime_norm.py" "$LOG/input.ranges" <"$INPUT" | sha256sum)
    [ "$a" = "$b" ] || { say "capture's image holds other memory than the input"; exit 1; }
    cmp "$LOG/image.ranges" "$LOG/input.ranges"
    (cd "$dir" && sha256sum -c --quiet memory.lime.zst.sha256)
    cp "$dir/manifest.json" "$LOG/manifest.json"
}

cat /proc/loadavg >"$LOG/loadavg.start"
TOOLS="capture avml manual zstd"
rep=1
while [ "$rep" -le "$RUNS" ]; do
    for t in $TOOLS; do
        say "run $rep/$RUNS: $t"
        run_tool "$t" "$rep"
        [ "$t" = capture ] && [ "$rep" = 1 ] && check_capture
    done
    rep=$((rep + 1))
done

cat /proc/loadavg >"$LOG/loadavg.end"
NICE=$NICE python3 "$ROOT/bench/report.py" "$LOG" "$INPUT" "$RUNS" "$CAPTURE" "$AVML" >"$RESULTS"
say "wrote $RESULTS"
cat "$RESULTS"
