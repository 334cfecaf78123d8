#!/bin/bash
# bench/symbols.sh CAPTURE_DIR
#
# The symbol-table benchmark of issue 16, on demand only (not part of CI):
# for the kernel a capture was taken of, it compares
#
#   capture    `capture symbols CAPTURE_DIR -o capture.json.xz`: the ISF made
#              from the capture's own BTF + kallsyms (its normal output, xz)
#   dwarf2json `dwarf2json linux --elf vmlinux --system-map System.map`: the
#              ISF made the usual way, from the same kernel's debug package
#              (Debian's linux-image-<release>-dbg), then `xz -T1` of it
#
# and prints, side by side, wall time, CPU time (user+sys) and peak RSS
# (/usr/bin/time, Debian's `time` package), the .json and .json.xz sizes, and
# a comparison of the two tables: how many user_types, enums, base_types and
# symbols each has, and whether the typed symbols Volatility's Linux plugins
# read (init_task, tk_core, modules, ...) have the same type in both. The
# Markdown report goes to stdout and to $RESULTS.
#
# The debug package (~860 MB) is fetched with `apt-get download` (nothing is
# installed) into $FV_CACHE/bench, and only its vmlinux and System.map are
# extracted (dpkg-deb --fsys-tarfile | tar -x of those two paths); both stay
# cached for the next run. The machine's apt sources must carry that package
# version (Debian's security archive for a current Debian 12 kernel).
#
# dwarf2json is third-party code and is not part of this project: this script
# does not build it. Pass a built binary in DWARF2JSON (upstream:
# github.com/volatilityfoundation/dwarf2json, Go; it needs only
# github.com/spf13/pflag, which Debian ships as golang-github-spf13-pflag-dev).
#
# Environment:
#   DWARF2JSON  a dwarf2json binary (required)
#   CAPTURE     a capture binary (default: dist/volume/bin/x86_64/capture,
#               else target/release/capture of this workspace)
#   FV_CACHE    download cache (default /var/cache/forensics-volume)
#   WORKDIR     where the two tables are written (default $FV_CACHE/bench/out-<release>)
#   RESULTS     report file (default bench/RESULTS-symbols.md)
#   NICE        prefix for the timed commands (e.g. "nice -n 19 ionice -c3"
#               on a shared machine: the figures then are upper bounds)
#
# Exit codes: 0 done, 2 usage or a missing prerequisite, 1 a step failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench/symbols.sh: $2" >&2; exit "$1"; }
say() { echo "bench/symbols.sh: $*" >&2; }

[ $# -eq 1 ] || die 2 "usage: bench/symbols.sh CAPTURE_DIR (see the header)"
CAPDIR=$1
[ -f "$CAPDIR/manifest.json" ] || die 2 "$CAPDIR: no manifest.json (not a capture directory)"
if [ -z "${DWARF2JSON:-}" ] || [ ! -x "$DWARF2JSON" ]; then
    die 2 "DWARF2JSON must name a dwarf2json binary (this script does not build it)"
fi
if [ -z "${CAPTURE:-}" ]; then
    for c in "$ROOT/dist/volume/bin/x86_64/capture" "$ROOT/target/release/capture"; do
        [ -x "$c" ] && { CAPTURE=$c; break; }
    done
fi
if [ -z "${CAPTURE:-}" ] || [ ! -x "$CAPTURE" ]; then
    die 2 "no capture binary: set CAPTURE or run ./build.sh build (or cargo build --release -p capture)"
fi
[ -x /usr/bin/time ] || die 2 "/usr/bin/time is missing (Debian package \`time\`)"
for t in apt-get dpkg-deb xz python3; do
    command -v "$t" >/dev/null || die 2 "$t is missing"
done

RELEASE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host"]["kernel_release"])' \
    "$CAPDIR/manifest.json" 2>/dev/null) || RELEASE=$(awk '{print $3}' "$CAPDIR/context/uname")
[ -n "$RELEASE" ] || die 1 "cannot read the kernel release from $CAPDIR"
FV_CACHE=${FV_CACHE:-/var/cache/forensics-volume}
CACHE=$FV_CACHE/bench
WORKDIR=${WORKDIR:-$CACHE/out-$RELEASE}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS-symbols.md}
NICE=${NICE:-}
mkdir -p "$CACHE" "$WORKDIR"

# The debug package: download once, extract the two files once.
PKG=linux-image-$RELEASE-dbg
DBG=$CACHE/dbg-$RELEASE
VMLINUX=$DBG/usr/lib/debug/boot/vmlinux-$RELEASE
SYSMAP=$DBG/usr/lib/debug/boot/System.map-$RELEASE
if [ ! -s "$VMLINUX" ] || [ ! -s "$SYSMAP" ]; then
    DEB=
    for f in "$CACHE/${PKG}"_*.deb; do [ -s "$f" ] && DEB=$f; done
    if [ -z "$DEB" ]; then
        say "downloading $PKG (about 860 MB) into $CACHE"
        # stdin from /dev/null: apt-get download can otherwise wait on a terminal.
        (cd "$CACHE" && apt-get download "$PKG" </dev/null) \
            || die 1 "apt-get download $PKG failed (is that kernel version in the apt sources?)"
        for f in "$CACHE/${PKG}"_*.deb; do [ -s "$f" ] && DEB=$f; done
        [ -n "$DEB" ] || die 1 "apt-get download left no ${PKG}_*.deb in $CACHE"
    fi
    say "extracting vmlinux and System.map from $(basename "$DEB")"
    rm -rf "$DBG.tmp" && mkdir -p "$DBG.tmp"
    dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$DBG.tmp" \
        "./usr/lib/debug/boot/vmlinux-$RELEASE" "./usr/lib/debug/boot/System.map-$RELEASE" \
        || die 1 "$DEB has no usr/lib/debug/boot/vmlinux-$RELEASE"
    rm -rf "$DBG" && mv "$DBG.tmp" "$DBG"
fi

# measure NAME CMD...: runs CMD under /usr/bin/time, keeps "wall user sys maxrss_kb".
measure() {
    local name=$1; shift
    say "running $name: $*"
    # shellcheck disable=SC2086 # NICE is a word list on purpose
    $NICE /usr/bin/time -f '%e %U %S %M' -o "$WORKDIR/$name.time" "$@" >"$WORKDIR/$name.out" \
        || die 1 "$name failed (see above and $WORKDIR/$name.out)"
}

CAP_XZ=$WORKDIR/capture.json.xz
D2J=$WORKDIR/dwarf2json.json
measure capture "$CAPTURE" symbols "$CAPDIR" -o "$CAP_XZ" --force
# shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
measure dwarf2json sh -c '"$0" linux --elf "$1" --system-map "$2" >"$3"' \
    "$DWARF2JSON" "$VMLINUX" "$SYSMAP" "$D2J"
rm -f "$D2J.xz"
measure dwarf2json-xz xz -T1 -k "$D2J"
xz -dc "$CAP_XZ" >"$WORKDIR/capture.json"

python3 - "$WORKDIR" "$RELEASE" "$CAPDIR" "$("$DWARF2JSON" --version | head -n1)" \
    "$(nproc)" "$(uname -r)" "$VMLINUX" <<'EOF' | tee "$RESULTS"
import json, os, sys

work, release, capdir, d2j_version, ncpu, host, vmlinux = sys.argv[1:]

def times(name):
    wall, user, sys_, rss = open(os.path.join(work, name + ".time")).read().split()
    return float(wall), float(user) + float(sys_), int(rss) // 1024

def size(name):
    return os.path.getsize(os.path.join(work, name))

def mib(n):
    return f"{n / 1048576:.1f} MiB"

cap_t, d2j_t, xz_t = times("capture"), times("dwarf2json"), times("dwarf2json-xz")
print(f"# `capture symbols` against dwarf2json\n")
print(f"Written by `bench/symbols.sh` (see its header); on demand, not part of CI.\n")
print(f"- Kernel: {release} (capture `{os.path.basename(os.path.normpath(capdir))}`), "
      f"debug package `linux-image-{release}-dbg`")
print(f"- dwarf2json: {d2j_version}")
print(f"- Machine: {ncpu} CPUs, shared with other jobs while it ran, Linux {host}: "
      f"times are single runs, upper bounds\n")
print("| | capture symbols (BTF + kallsyms) | dwarf2json (DWARF vmlinux) |")
print("|---|---|---|")
print(f"| input | the capture's context/ (BTF, kallsyms) | vmlinux, {mib(os.path.getsize(vmlinux))} (from the ~860 MB .deb) |")
print(f"| wall time | {cap_t[0]:.1f} s (writes .json.xz) | {d2j_t[0]:.1f} s (+ {xz_t[0]:.1f} s for xz -T1) |")
print(f"| CPU time (user+sys) | {cap_t[1]:.1f} s | {d2j_t[1]:.1f} s (+ {xz_t[1]:.1f} s) |")
print(f"| peak RSS | {cap_t[2]} MiB | {d2j_t[2]} MiB (xz: {xz_t[2]} MiB) |")
print(f"| .json | {mib(size('capture.json'))} | {mib(size('dwarf2json.json'))} |")
print(f"| .json.xz | {mib(size('capture.json.xz'))} | {mib(size('dwarf2json.json.xz'))} |")

cap = json.load(open(os.path.join(work, "capture.json")))
d2j = json.load(open(os.path.join(work, "dwarf2json.json")))
print("\n| table | capture symbols | dwarf2json | in both |")
print("|---|---|---|---|")
for key in ("user_types", "enums", "base_types", "symbols"):
    a, b = cap.get(key, {}), d2j.get(key, {})
    print(f"| {key} | {len(a)} | {len(b)} | {len(set(a) & set(b))} |")
def typed(t):
    return sum(1 for s in t["symbols"].values()
               if s.get("type") and s["type"] != {"kind": "base", "name": "void"})
print(f"| symbols with a type other than void | {typed(cap)} | {typed(d2j)} | |")

# The typed symbols Volatility 3's Linux plugins and stackers read.
WANTED = ["init_task", "tk_core", "modules", "init_pid_ns", "init_mm", "init_files",
          "linux_banner", "mod_tree", "net_namespace_list", "idt_table", "sys_call_table",
          "prb", "log_buf", "socket_file_ops", "sockfs_dentry_operations",
          "init_uts_ns", "jiffies", "nr_cpu_ids"]
def describe(t):
    if not t:
        return "(no type)"
    k = t.get("kind")
    if k == "pointer":
        return describe(t.get("subtype")) + " *"
    if k == "array":
        return f"{describe(t.get('subtype'))}[{t.get('count')}]"
    return f"{k} {t.get('name', '')}".strip()
print("\n| symbol | capture symbols | dwarf2json | same |")
print("|---|---|---|---|")
def bitaddr(f):
    return f.get("offset", 0) * 8 + f.get("type", {}).get("bit_position", 0) \
        if f.get("type", {}).get("kind") == "bitfield" else f.get("offset", 0) * 8
def layout(table, t):
    """An anonymous struct's size and fields (name, bit address), for comparing
    types each tool names its own way (unnamed_...)."""
    ut = table["user_types"].get(t.get("name", ""), {})
    return ut.get("size"), sorted((k, bitaddr(v)) for k, v in ut.get("fields", {}).items())
same = 0
for name in WANTED:
    a = cap["symbols"].get(name); b = d2j["symbols"].get(name)
    da = describe(a.get("type")) if a else "absent"
    db = describe(b.get("type")) if b else "absent"
    verdict = "yes" if a and b and da == db else "no"
    if verdict == "no" and a and b and da.startswith("struct unnamed_") and db.startswith("struct unnamed_") \
            and layout(cap, a["type"]) == layout(d2j, b["type"]):
        verdict = "yes (anonymous, same fields and offsets)"
    same += verdict.startswith("yes")
    print(f"| {name} | {da} | {db} | {verdict} |")
print(f"\n{same} of {len(WANTED)} have the same type.")

# Layout agreement on the structures the plugins walk. Fields are compared by
# bit address (bitaddr above: offset * 8 + bit_position): for a bitfield the two tools pick a
# different storage byte (capture: the unit's start, dwarf2json: the byte
# holding the bits), which Volatility reads the same. Unnamed members are left
# out: each tool numbers them its own way (unnamed_field_N).
STRUCTS = ["task_struct", "mm_struct", "module", "list_head", "file", "dentry", "cred",
           "vm_area_struct", "timekeeper", "tk_read_base", "net", "sock", "pid_namespace"]
print("\n| struct | size (capture / dwarf2json) | named fields (capture / dwarf2json) | at the same place in both |")
print("|---|---|---|---|")
for s in STRUCTS:
    a = cap["user_types"].get(s); b = d2j["user_types"].get(s)
    if not a or not b:
        print(f"| {s} | {'absent' if not a else a['size']} / {'absent' if not b else b['size']} | | |")
        continue
    named = lambda t: {k: v for k, v in t.get("fields", {}).items() if not k.startswith("unnamed_field_")}
    fa, fb = named(a), named(b)
    same_off = sum(1 for f in fa if f in fb and bitaddr(fa[f]) == bitaddr(fb[f]))
    print(f"| {s} | {a['size']} / {b['size']} | {len(fa)} / {len(fb)} | {same_off} |")
EOF
say "wrote $RESULTS; tables in $WORKDIR"
