#!/bin/bash
# bench/symbols-parity.sh CAPTURE_DIR
#
# The plugin-by-plugin parity bench of issue 26, on demand only (not part of
# CI: it needs the kernel's ~860 MB debug package and runs every plugin
# twice). For the kernel a capture was taken of, it runs EVERY Volatility 3
# Linux plugin of the pinned releases (2.11.0 and 2.28.2; the list comes
# from Volatility's own plugin registry, `framework.list_plugins()`, not
# from a hand-picked list) on the capture's memory, once with the table
# `capture symbols` makes from the capture and once with dwarf2json's table
# made from the kernel's debug package, and reports per plugin:
#
#   identical          same exit status and byte-identical stdout
#   differs            both succeed, stdout differs (the diff is kept)
#   fails-with-ours    dwarf2json's table works, ours does not
#   fails-with-theirs  ours works, dwarf2json's does not
#   fails-with-both    neither works (the reason is in the kept stderr)
#   refused-by-producer-check
#                      ours is refused only because dwarf2json did not make
#                      it: the plugin's check of the table's producer (see
#                      docs/analyst.md: the stock hidden-module carving's
#                      check is inverted), and a diagnostic copy of our
#                      table with only `metadata.producer` relabelled as
#                      dwarf2json's prints byte for byte what dwarf2json's
#                      table prints. That copy is made here, in
#                      $WORKDIR/tables/relabelled/, for this run only: it is
#                      never shipped, and `capture symbols` never names
#                      dwarf2json as its producer.
#   refused-by-producer-check, relabelled differs
#                      refused as above, but the relabelled copy's output is
#                      not dwarf2json's (a table defect to close)
#
# One more row per release, printed beside the stock hidden-module carving:
# fv.hidden_modules (volatility/fv/, on the volume), that carving with its
# inverted table check put right, run with our table as shipped.
#
# Left out, and listed as such: the deprecated aliases 2.2x keeps for renamed
# plugins (linux.check_syscall for linux.malware.check_syscall, ...: same
# code, run under the new name) and plugins with a required argument that
# has no default (linux.vmaregexscan's pattern, linux.module_extract's base):
# no capture-independent value exists for them.
#
# The two tables come from bench/symbols.sh (run first, same cache: it
# downloads the debug package with `apt-get download`, runs `capture
# symbols` and dwarf2json, and writes its comparison to
# $WORKDIR/symbols-report.md). dwarf2json is third-party code: give a built
# binary in DWARF2JSON, or its source tree (github.com/volatilityfoundation/
# dwarf2json, Go) in DWARF2JSON_SRC, which is built offline here with
# Debian's golang-go and golang-github-spf13-pflag-dev (GOPATH mode, no
# module download) into $FV_CACHE/bench/dwarf2json-<hash>/.
#
# Volatility comes from the VM bench's venvs ($FV_CACHE/vm/volatility3-<v>-venv,
# made by `tests/vm/bench.sh setup volatility`, PyPI releases with
# jsonschema). Each (release, table) pair has its own --cache-path and runs
# --offline with only that table on its symbol path; each plugin runs in an
# empty directory under `timeout $PLUGIN_TIMEOUT`.
#
# Environment:
#   DWARF2JSON / DWARF2JSON_SRC   see above (one of them is required)
#   CAPTURE     capture binary (default dist/volume/bin/x86_64/capture, else target/release/capture)
#   VERSIONS    Volatility releases (default "2.11.0 2.28.2")
#   PLUGINS     only these plugins (a space-separated list; for re-running a few)
#   PLUGIN_TIMEOUT  seconds per plugin run (default 900)
#   FV_CACHE    download cache (default /var/cache/forensics-volume)
#   WORKDIR     tables, memory image and runs (default $FV_CACHE/bench/out-<release>)
#   RESULTS     report file (default bench/RESULTS-parity-<release>.md)
#   NICE        prefix for the plugin runs (e.g. "nice -n 19")
#   REFRESH     1: make dwarf2json's table again too (default: reuse it)
#   OURS_TABLE  use this table as ours instead of running `capture symbols`
#               (e.g. one made by another build)
#   RESUME      1: skip the plugins that already ran with both tables (a run
#               stopped, or one whose tables have not changed since)
#   REPORT_ONLY 1: only write the report from the runs already there (of a
#               run still going, or stopped: plugins not run yet are left out)
#
# The plugin list is kept per release ($WORKDIR/plugins-<release>.txt), so a
# run with PLUGINS (or one release in VERSIONS) re-runs those and leaves the
# others' runs for the report.
#
# Exit codes: 0 done (whatever the verdicts), 2 usage or a missing
# prerequisite, 1 a step failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench/symbols-parity.sh: $2" >&2; exit "$1"; }
say() { echo "bench/symbols-parity.sh: $*" >&2; }

[ $# -eq 1 ] || die 2 "usage: bench/symbols-parity.sh CAPTURE_DIR (see the header)"
CAPDIR=$(cd "$1" && pwd) || die 2 "$1: not a directory"
[ -f "$CAPDIR/manifest.json" ] || die 2 "$CAPDIR: no manifest.json (not a capture directory)"
FV_CACHE=${FV_CACHE:-/var/cache/forensics-volume}
export FV_CACHE
VERSIONS=${VERSIONS:-2.11.0 2.28.2}
PLUGIN_TIMEOUT=${PLUGIN_TIMEOUT:-900}
NICE=${NICE:-}
if [ -z "${CAPTURE:-}" ]; then
    for c in "$ROOT/dist/volume/bin/x86_64/capture" "$ROOT/target/release/capture"; do
        [ -x "$c" ] && { CAPTURE=$c; break; }
    done
fi
{ [ -n "${CAPTURE:-}" ] && [ -x "$CAPTURE" ]; } || die 2 "no capture binary: set CAPTURE or run ./build.sh build"
export CAPTURE
for v in $VERSIONS; do
    [ -x "$FV_CACHE/vm/volatility3-$v-venv/bin/vol" ] ||
        die 2 "no Volatility $v venv in $FV_CACHE/vm (tests/vm/bench.sh setup volatility)"
done

# dwarf2json: a given binary, or built offline from a given source tree.
if [ "${REPORT_ONLY:-0}" = 1 ]; then
    DWARF2JSON=${DWARF2JSON:-none}
elif [ -z "${DWARF2JSON:-}" ]; then
    { [ -n "${DWARF2JSON_SRC:-}" ] && [ -f "$DWARF2JSON_SRC/main.go" ]; } ||
        die 2 "set DWARF2JSON (a binary) or DWARF2JSON_SRC (its source tree, with main.go)"
    { command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/spf13/pflag ]; } ||
        die 2 "building dwarf2json needs Debian's golang-go and golang-github-spf13-pflag-dev"
    key=$(cat "$DWARF2JSON_SRC"/*.go | sha256sum | cut -c1-12)
    DWARF2JSON=$FV_CACHE/bench/dwarf2json-$key/dwarf2json
    if [ ! -x "$DWARF2JSON" ]; then
        say "building dwarf2json from $DWARF2JSON_SRC (GOPATH mode, offline)"
        rm -rf "$FV_CACHE/bench/dwarf2json-$key" && mkdir -p "$FV_CACHE/bench/dwarf2json-$key/src"
        cp "$DWARF2JSON_SRC"/*.go "$FV_CACHE/bench/dwarf2json-$key/src/"
        (cd "$FV_CACHE/bench/dwarf2json-$key/src" && GO111MODULE=off GOPATH=/usr/share/gocode \
            GOCACHE=$FV_CACHE/bench/dwarf2json-$key/gocache GOPROXY=off \
            go build -o ../dwarf2json .) || die 1 "go build of dwarf2json failed"
    fi
fi
export DWARF2JSON

RELEASE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host"]["kernel_release"])' \
    "$CAPDIR/manifest.json") || die 1 "cannot read the kernel release from $CAPDIR/manifest.json"
WORKDIR=${WORKDIR:-$FV_CACHE/bench/out-$RELEASE}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS-parity-$RELEASE.md}
export WORKDIR
mkdir -p "$WORKDIR"

# The two tables (and the size/time comparison) from bench/symbols.sh; once
# dwarf2json's table is there (it depends on the kernel only), a re-run
# makes only ours again (REFRESH=1: both).
if [ "${REPORT_ONLY:-0}" != 1 ]; then
if [ -n "${OURS_TABLE:-}" ]; then
    [ -s "$OURS_TABLE" ] || die 2 "OURS_TABLE=$OURS_TABLE: no such table"
    [ -s "$WORKDIR/dwarf2json.json.xz" ] || die 2 "OURS_TABLE needs dwarf2json's table made first (a run without it)"
    cp "$OURS_TABLE" "$WORKDIR/capture.json.xz"
elif [ "${REFRESH:-0}" = 1 ] || [ ! -s "$WORKDIR/dwarf2json.json.xz" ]; then
    RESULTS=$WORKDIR/symbols-report.md "$ROOT/bench/symbols.sh" "$CAPDIR" >/dev/null ||
        die 1 "bench/symbols.sh failed"
else
    say "reusing $WORKDIR/dwarf2json.json.xz; making ours again"
    "$CAPTURE" symbols "$CAPDIR" -o "$WORKDIR/capture.json.xz" --force >"$WORKDIR/capture-symbols.txt" ||
        die 1 "capture symbols failed"
fi
mkdir -p "$WORKDIR/tables/ours" "$WORKDIR/tables/theirs"
cp "$WORKDIR/capture.json.xz" "$WORKDIR/tables/ours/capture.json.xz"
cp "$WORKDIR/dwarf2json.json.xz" "$WORKDIR/tables/theirs/dwarf2json.json.xz"
# The diagnostic copy (see refused-by-producer-check above): our table with
# dwarf2json's `metadata.producer`, nothing else changed. Scratch only.
mkdir -p "$WORKDIR/tables/relabelled"
python3 - "$WORKDIR/tables/ours/capture.json.xz" "$WORKDIR/tables/theirs/dwarf2json.json.xz" \
    "$WORKDIR/tables/relabelled/capture-relabelled.json.xz" <<'EOF' || die 1 "making the relabelled diagnostic copy failed"
import json, lzma, sys
ours, theirs, out = sys.argv[1:]
t = json.load(lzma.open(ours))
t["metadata"]["producer"] = json.load(lzma.open(theirs))["metadata"]["producer"]
with lzma.open(out, "wt") as f:
    json.dump(t, f)
EOF

IMAGE=$WORKDIR/memory.lime
if [ ! -s "$IMAGE" ] || [ "$IMAGE" -ot "$CAPDIR/manifest.json" ]; then
    say "extracting the capture's memory to $IMAGE"
    "$CAPTURE" extract "$CAPDIR/memory.lime.zst" -o "$IMAGE" --force >/dev/null || die 1 "capture extract failed"
fi

fi

# list_plugins VERSION: "name deprecated(yes|no) required-arguments(-|a,b)" per
# Linux plugin, from Volatility's own registry.
list_plugins() {
    "$FV_CACHE/vm/volatility3-$1-venv/bin/python3" - <<'EOF'
import volatility3.plugins, volatility3.framework as framework
from volatility3.framework import interfaces
from volatility3.framework.configuration import requirements as r
try:
    from volatility3.framework import deprecation
except ImportError:
    deprecation = None
framework.import_files(volatility3.plugins, True)
for name, cls in sorted(framework.list_plugins().items()):
    if not name.startswith("linux."):
        continue
    dep = deprecation is not None and hasattr(deprecation, "PluginRenameClass") \
        and issubclass(cls, deprecation.PluginRenameClass)
    needs = [q.name for q in cls.get_requirements()
             if not q.optional
             and isinstance(q, (interfaces.configuration.SimpleTypeRequirement,
                                r.ListRequirement, r.ChoiceRequirement))
             and getattr(q, "default", None) is None]
    print(name, "yes" if dep else "no", ",".join(needs) or "-")
EOF
}

# run_one VERSION TABLE PLUGIN: exit status, stdout and stderr under
# $WORKDIR/runs/VERSION/TABLE/PLUGIN.{rc,out,err,sec}.
run_one() {
    local v=$1 table=$2 p=$3 dir rc=0 t0
    dir=$WORKDIR/runs/$v/$table
    mkdir -p "$dir" "$WORKDIR/cache/$v-$table" "$WORKDIR/cwd"
    rm -rf "$WORKDIR/cwd" && mkdir -p "$WORKDIR/cwd"
    t0=$(date +%s)
    local extra=()
    [[ $p == fv.* ]] && extra=(-p "$ROOT/volatility")
    # shellcheck disable=SC2086 # NICE is a word list on purpose
    (cd "$WORKDIR/cwd" && $NICE timeout "$PLUGIN_TIMEOUT" "$FV_CACHE/vm/volatility3-$v-venv/bin/vol" -q --offline \
        --cache-path "$WORKDIR/cache/$v-$table" "${extra[@]}" -s "$WORKDIR/tables/$table" -f "$IMAGE" "$p" \
        >"$dir/$p.out" 2>"$dir/$p.err" </dev/null) || rc=$?
    echo "$rc" >"$dir/$p.rc"
    echo $(($(date +%s) - t0)) >"$dir/$p.sec"
}

if [ "${REPORT_ONLY:-0}" != 1 ]; then
for v in $VERSIONS; do
    list_plugins "$v" | sed "s/^/$v /" >"$WORKDIR/plugins-$v.txt" || die 1 "listing Volatility $v's plugins failed"
    # And the volume's fix of the hidden-module carving's table check.
    echo "$v fv.hidden_modules no -" >>"$WORKDIR/plugins-$v.txt"
done
for v in $VERSIONS; do
    while read -r v p dep needs; do
        { [ "$dep" = no ] && [ "$needs" = - ]; } || continue
        if [ -n "${PLUGINS:-}" ] && [[ " $PLUGINS " != *" $p "* ]]; then continue; fi
        if [ "${RESUME:-0}" = 1 ] && [ -f "$WORKDIR/runs/$v/ours/$p.rc" ] && [ -f "$WORKDIR/runs/$v/theirs/$p.rc" ]; then
            continue
        fi
        rm -f "$WORKDIR/runs/$v/relabelled/$p".*
        for table in ours theirs; do
            say "$v $p with $table table"
            run_one "$v" "$table" "$p"
        done
        # Refused for its producer only? Then the relabelled copy shows
        # whether the table itself is sufficient.
        if grep -q 'ISF table produced by dwarf2json' "$WORKDIR/runs/$v/ours/$p.err"; then
            say "$v $p refused our table for its producer: running the relabelled diagnostic copy"
            run_one "$v" relabelled "$p"
        fi
    done <"$WORKDIR/plugins-$v.txt"
done

fi

python3 - "$WORKDIR" "$RELEASE" "$VERSIONS" "$PLUGIN_TIMEOUT" "$(nproc)" <<'EOF' | tee "$RESULTS"
import os, sys
work, release, versions, tmo, ncpu = sys.argv[1:]
rows = [l.split() for v in versions.split()
        if os.path.exists(os.path.join(work, f"plugins-{v}.txt"))
        for l in open(os.path.join(work, f"plugins-{v}.txt"))]
def run(v, t, p):
    d = os.path.join(work, "runs", v, t)
    try:
        rc = int(open(os.path.join(d, p + ".rc")).read())
    except FileNotFoundError:
        return None
    out = open(os.path.join(d, p + ".out"), "rb").read()
    err = open(os.path.join(d, p + ".err"), "rb").read().decode(errors="replace")
    sec = int(open(os.path.join(d, p + ".sec")).read())
    return rc, out, err, sec
def why(err, rc):
    if rc == 124:
        return f"timed out ({tmo} s)"
    lines = [l.strip() for l in err.splitlines() if l.strip() and not l.startswith("Volatility 3")]
    return (lines[-1] if lines else f"exit {rc}, no output")[:160].replace("|", "\\|")
def ok(r):
    return r[0] == 0 and r[1].strip() != b""
def stock_hidden(p):
    return p.split(".")[-2] == "hidden_modules" and not p.startswith("fv.")
print(f"# Volatility plugins with `capture symbols`' table and with dwarf2json's\n")
print(f"Written by `bench/symbols-parity.sh` (see its header); on demand, not part of CI.")
print(f"Kernel {release}; every Linux plugin of Volatility {', '.join(versions.split())} "
      f"(from its plugin registry), each run with our table and with dwarf2json's on the same "
      f"memory image; {ncpu} CPUs shared with other jobs.\n")
totals = {}
for v in versions.split():
    print(f"## Volatility {v}\n")
    print("| plugin | verdict | ours | dwarf2json's | note |")
    print("|---|---|---|---|---|")
    skipped = []
    for rv, p, dep, needs in rows:
        if rv != v:
            continue
        if dep == "yes":
            skipped.append(f"`{p}` (deprecated alias)")
            continue
        if needs != "-":
            skipped.append(f"`{p}` (needs `{needs}`)")
            continue
        a, b = run(v, "ours", p), run(v, "theirs", p)
        if a is None or b is None:
            continue
        if p.startswith("fv.") and any(rv == v and stock_hidden(q) for rv, q, _, _ in rows):
            continue  # printed beside the stock carving
        note = ""
        c = run(v, "relabelled", p)
        if not ok(a) and c is not None and "ISF table produced by dwarf2json" in a[2] and ok(b):
            if ok(c) and c[1] == b[1]:
                verdict = "refused-by-producer-check"
                note = (f"ours refused for its producer only: with `metadata.producer` relabelled "
                        f"(scratch copy, never shipped) exit {c[0]}, {len(c[1].splitlines())} lines, "
                        f"byte-identical to dwarf2json's")
            else:
                verdict = "**refused-by-producer-check, relabelled differs**"
                note = f"relabelled copy: exit {c[0]}, {len(c[1].splitlines())} lines: " + why(c[2], c[0])
        elif ok(a) and ok(b):
            verdict = "identical" if a[1] == b[1] else "differs"
            if verdict == "differs":
                la, lb = a[1].splitlines(), b[1].splitlines()
                same = len(set(la) & set(lb))
                note = f"{len(la)} / {len(lb)} lines, {same} in both"
        elif ok(b):
            verdict, note = "**fails-with-ours**", why(a[2], a[0])
        elif ok(a):
            verdict, note = "fails-with-theirs", why(b[2], b[0])
        else:
            verdict = "fails-with-both"
            note = why(a[2], a[0])
            if why(b[2], b[0]) != note:
                note += " / theirs: " + why(b[2], b[0])
            if a[1] == b[1] and a[1].count(b"\n") > 2:
                note += " (the same output up to there)"
        totals.setdefault(v, {}).setdefault(verdict.strip("*"), 0)
        totals[v][verdict.strip("*")] += 1
        print(f"| `{p}` | {verdict} | exit {a[0]}, {len(a[1].splitlines())} lines, {a[3]} s "
              f"| exit {b[0]}, {len(b[1].splitlines())} lines, {b[3]} s | {note} |")
        if stock_hidden(p):
            f, g = run(v, "ours", "fv.hidden_modules"), run(v, "theirs", "fv.hidden_modules")
            if f is not None and g is not None:
                fv = "identical" if ok(f) and ok(g) and f[1] == g[1] else "**differs or fails**"
                fnote = "this carving as `fv.hidden_modules` (the volume's `volatility/`), our table as shipped"
                if fv == "identical" and ok(b) and f[1] == b[1]:
                    fnote += f"; the same output as `{p}` with dwarf2json's"
                totals.setdefault(v, {}).setdefault(fv.strip("*"), 0)
                totals[v][fv.strip("*")] += 1
                print(f"| `fv.hidden_modules` | {fv} | exit {f[0]}, {len(f[1].splitlines())} lines, {f[3]} s "
                      f"| exit {g[0]}, {len(g[1].splitlines())} lines, {g[3]} s | {fnote} |")
    print()
    print("Totals: " + ", ".join(f"{k} {n}" for k, n in sorted(totals.get(v, {}).items())))
    if skipped:
        print("\nNot run: " + ", ".join(skipped) + ".")
    print()
EOF
say "wrote $RESULTS; runs in $WORKDIR/runs"
