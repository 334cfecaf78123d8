#!/bin/sh
# bench/verify.sh [WORKDIR]
#
# `capture verify` against what a responder would otherwise run,
# `zstd -dc IMAGE | sha256sum`, on the same realistic image (>= 2 GiB of
# LiME stream from bench/gen's generator, compressed by the toolkit's own
# writer), same machine, same run, warm page cache. Not a timed test: it
# prints wall time, CPU time, peak RSS and throughput, and the ratio.
#
# verify does strictly more than the pipeline: it also hashes the compressed
# file, checks every frame against the seek table, walks the LiME records
# and reads the seek table; the pipeline only hashes the decompressed stream.
#
# Environment: CAPTURE=path to a `capture` binary that has the `verify`
# subcommand (default: build fv-analyze's example driver, which runs the same
# library code); RUNS (default 3); SCALE (generator scale, default 1 = 2.25 GiB).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-${TMPDIR:-/tmp}/fv-bench-verify}
RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
mkdir -p "$WORK"

say() { printf '%s\n' "$*" >&2; }

for tool in zstd sha256sum /usr/bin/time cargo; do
    command -v "$tool" >/dev/null 2>&1 || { say "bench/verify.sh: needs $tool"; exit 2; }
done

say "building the generator and writer driver (bench/gen, release)"
CARGO_TARGET_DIR="$WORK/target-gen" cargo build --quiet --release \
    --manifest-path "$ROOT/bench/gen/Cargo.toml" --bins
GEN="$WORK/target-gen/release/fv-bench-gen"
WRITE="$WORK/target-gen/release/fv-bench-write"

if [ -n "${CAPTURE:-}" ]; then
    VERIFY="$CAPTURE"
else
    say "building fv-analyze's driver (release)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$WORK/target" cargo build --quiet --release \
        -p fv-analyze --example fv-analyze)
    VERIFY="$WORK/target/release/examples/fv-analyze"
fi

LIME="$WORK/memory.lime"
IMAGE="$WORK/memory.lime.zst"
if [ ! -s "$LIME" ]; then
    say "generating $LIME (scale $SCALE)"
    "$GEN" "$LIME" --scale "$SCALE"
fi
if [ ! -s "$IMAGE" ]; then
    say "compressing with the toolkit's writer (defaults)"
    "$WRITE" "$LIME" "$IMAGE"
fi
LIME_BYTES=$(stat -c %s "$LIME")
ZST_BYTES=$(stat -c %s "$IMAGE")
WANT=$(sha256sum "$LIME" | cut -d' ' -f1)
# The uncompressed input is not needed any more; drop it from the cache so
# both contenders read the same (cached) compressed file.
cat "$IMAGE" >/dev/null

# measure NAME CMD...: one line "NAME wall user sys maxrss_kib"
measure() {
    name=$1
    shift
    /usr/bin/time -f "$name %e %U %S %M" -o "$WORK/time.out" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" || {
        say "$name failed:"
        cat "$WORK/cmd.err" >&2
        exit 1
    }
    cat "$WORK/time.out"
}

say "image: $LIME_BYTES bytes of LiME stream, $ZST_BYTES bytes compressed; $(nproc) CPUs; $RUNS runs each"
: >"$WORK/results"
i=0
while [ "$i" -lt "$RUNS" ]; do
    measure pipeline sh -c "zstd -dc -q '$IMAGE' | sha256sum" >>"$WORK/results"
    got=$(cut -d' ' -f1 "$WORK/cmd.out")
    [ "$got" = "$WANT" ] || { say "pipeline digest $got != $WANT"; exit 1; }
    measure verify "$VERIFY" verify "$IMAGE" --json >>"$WORK/results"
    got=$(sed -n 's/.*"lime_sha256": "\([0-9a-f]*\)".*/\1/p' "$WORK/cmd.out")
    [ "$got" = "$WANT" ] || { say "verify digest $got != $WANT"; exit 1; }
    grep -q '"verified": true' "$WORK/cmd.out" || { say "verify did not verify"; exit 1; }
    i=$((i + 1))
done

# Best wall time of each (least disturbed by other load), with its CPU and RSS.
awk -v bytes="$LIME_BYTES" '
    { if (!($1 in best) || $2 < best[$1]) { best[$1] = $2; cpu[$1] = $3 + $4; rss[$1] = $5 } }
    END {
        printf "%-10s %9s %9s %10s %12s\n", "", "wall s", "cpu s", "rss MiB", "MiB/s";
        for (n in best)
            printf "%-10s %9.2f %9.2f %10.1f %12.0f\n", n, best[n], cpu[n], rss[n] / 1024, bytes / 1048576 / best[n];
        printf "verify speed / pipeline speed: %.2fx (target >= 1.0)\n", best["pipeline"] / best["verify"];
    }' "$WORK/results"
