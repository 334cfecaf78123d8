#!/bin/sh
# Forensics-CaptureMemory: run `capture` from the mounted forensics volume.
#
# The image, its hashes, the kernel context and manifest.json are written by
# capture into a new directory under the volume's captures/ folder; this
# script only checks the volume is the one mounted by Forensics-MountVolume,
# keeps capture inside the SSM time limit and prints a one-line verdict first
# (capture's own output is kept in logs/ on the volume; its tail follows).
#
# The SSM agent kills a command that outruns its executionTimeout outright,
# which would leave no finalized image. So capture gets SIGTERM (it then ends
# in a valid, labelled partial image) when the time budget runs out, leaving
# a margin for it to finish its seek table, hashes and manifest.
#
# Parameters (assigned above this script by the SSM document; by hand, export):
#   FV_VOLUME_ID           vol-... of the forensics volume (required)
#   FV_MOUNT_POINT         its mount point (default /run/forensics-volume/<volume id>)
#   FV_CASE_ID, FV_EXAMINER, FV_NOTE   recorded in the manifest
#   FV_SOURCE              auto, kcore, crash, mem or lime-module
#   FV_LEVEL, FV_THREADS   zstd level and threads (empty: capture's defaults)
#   FV_IMDS                true: ask IMDSv2 for the instance identity; false: --no-imds
#   FV_EXECUTION_TIMEOUT   the document's executionTimeout in seconds, 5..172800
# Test-only environment: FV_PROC_ROOT (default /proc).
#
# Exit codes (40-45 are this script's): 40 bad parameter; 43 forensics volume
# not mounted read-write; 44 no capture binary or LiME module, or the binary
# or SHA256SUMS does not match the toolkit pin in this document; otherwise
# capture's own exit code (docs/capture.md: 0 complete, 20-23 a labelled
# partial image exists, others no image).
set -eu

NAME=Forensics-CaptureMemory
PROC=${FV_PROC_ROOT:-/proc}
VOLUME_ID=${FV_VOLUME_ID:-}
MOUNT_POINT=${FV_MOUNT_POINT:-}
CASE_ID=${FV_CASE_ID:-}
EXAMINER=${FV_EXAMINER:-}
NOTE=${FV_NOTE:-}
SOURCE=${FV_SOURCE:-auto}
LEVEL=${FV_LEVEL:-}
THREADS=${FV_THREADS:-}
IMDS=${FV_IMDS:-true}
TIMEOUT=${FV_EXECUTION_TIMEOUT:-}

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() {
    code=$1
    shift
    warn "ERROR: $*"
    say "$NAME: FAILED (exit $code): $*"
    exit "$code"
}

# number NAME VALUE MIN MAX: VALUE is a decimal integer in [MIN, MAX].
number() {
    case $2 in
    '' | *[!0-9]*) die 40 "$1 '$2' is not a number" ;;
    esac
    if [ "${#2}" -gt 6 ] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
        die 40 "$1 $2 is out of range $3..$4"
    fi
}

# ---- the toolkit pin (security review L11) ----------------------------------
# FV_TOOLKIT_SUMS_SHA256 is rendered into this document at build time (not an
# SSM parameter): the SHA-256 of the volume's SHA256SUMS. pinned ROOT REL
# checks, just before REL runs, that ROOT/SHA256SUMS has that digest and that
# REL has the digest SHA256SUMS lists for it. Returns 0 when both match, 1
# with PIN_WHY set when not, 2 when the document carries no pin (rendered by
# hand: the volume is then checked only against itself, by mount-helper).
# sha256sum is the host's (coreutils or busybox), like the shell running this.
PIN=${FV_TOOLKIT_SUMS_SHA256:-}
PIN_WHY=''
pinned() {
    [ -n "$PIN" ] || return 2
    case $PIN in
    *[!0-9a-f]*) PIN_WHY="the document's toolkit pin '$PIN' is not a SHA-256" && return 1 ;;
    esac
    [ "${#PIN}" -eq 64 ] || { PIN_WHY="the document's toolkit pin '$PIN' is not a SHA-256" && return 1; }
    command -v sha256sum >/dev/null 2>&1 || { PIN_WHY="no sha256sum on this host to check the toolkit with" && return 1; }
    if [ -L "$1/SHA256SUMS" ] || ! sums=$(sha256sum <"$1/SHA256SUMS" 2>/dev/null); then
        PIN_WHY="cannot read $1/SHA256SUMS"
        return 1
    fi
    sums=${sums%% *}
    if [ "$sums" != "$PIN" ]; then
        PIN_WHY="$1/SHA256SUMS has SHA-256 $sums, but this document was built for the toolkit whose SHA256SUMS is $PIN"
        return 1
    fi
    listed=''
    while read -r hash path; do
        [ "$path" = "$2" ] && listed=$hash
    done <"$1/SHA256SUMS"
    [ -n "$listed" ] || { PIN_WHY="SHA256SUMS does not list $2" && return 1; }
    if [ -L "$1/$2" ] || ! actual=$(sha256sum <"$1/$2" 2>/dev/null); then
        PIN_WHY="cannot read $1/$2"
        return 1
    fi
    actual=${actual%% *}
    [ "$actual" = "$listed" ] || { PIN_WHY="$2 has SHA-256 $actual, SHA256SUMS lists $listed: the toolkit was altered" && return 1; }
    return 0
}

# ---- parameters -------------------------------------------------------------
case $VOLUME_ID in
vol-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
vol-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
*) die 40 "malformed or missing volume ID '$VOLUME_ID'" ;;
esac
[ -n "$MOUNT_POINT" ] || MOUNT_POINT=/run/forensics-volume/$VOLUME_ID
case $MOUNT_POINT in
/run/*[!A-Za-z0-9._/-]* | */. | */./* | */.. | */../* | *//*) die 40 "mount point '$MOUNT_POINT' is not a plain path" ;;
/run/*) ;;
*) die 40 "mount point '$MOUNT_POINT' is not under /run" ;;
esac
case $CASE_ID in
'') die 40 "no case ID given" ;;
*[!A-Za-z0-9._-]* | [._-]*) die 40 "case ID '$CASE_ID' may hold only letters, digits, '.', '_' and '-'" ;;
esac
case $EXAMINER in
'') die 40 "no examiner given" ;;
*[!A-Za-z0-9\ ._@+-]*) die 40 "examiner '$EXAMINER' has characters other than letters, digits, space and ._@+-" ;;
esac
case $NOTE in
*[!A-Za-z0-9\ ,.:\;_/@#+=\(\)-]*) die 40 "note has characters outside letters, digits, space and ,.:;_/@#+=()-" ;;
esac
# Exactly the document's allowedValues (deploy/tools/check_scripts.py
# compares them, and crates/acquire that capture takes each). No LiME over
# TCP (security review S1): any local user can take the port first and
# serve a fabricated dump, or connect first and receive the real one.
case $SOURCE in
auto | kcore | crash | mem | lime-module) ;;
*) die 40 "source '$SOURCE' (expected auto, kcore, crash, mem or lime-module)" ;;
esac
[ -z "$LEVEL" ] || number 'compression level' "$LEVEL" 1 19
[ -z "$THREADS" ] || number threads "$THREADS" 1 256
case $IMDS in
true | false) ;;
*) die 40 "IMDS '$IMDS' (expected true or false)" ;;
esac
# The agent silently runs an out-of-range executionTimeout for 3600 s.
number 'execution timeout' "$TIMEOUT" 5 172800

# ---- the forensics volume ---------------------------------------------------
mount_options=''
while read -r _id _parent _majmin _root mp opts _rest; do
    [ "$mp" = "$MOUNT_POINT" ] && mount_options=$opts
done <"$PROC/self/mountinfo"
[ -n "$mount_options" ] || die 43 "nothing is mounted at $MOUNT_POINT: run Forensics-MountVolume first"
case ,$mount_options, in
*,rw,*) ;;
*) die 43 "$MOUNT_POINT is mounted read-only ($mount_options): Forensics-MountVolume did not finish; run it again" ;;
esac
if ! { [ -f "$MOUNT_POINT/forensics-volume.json" ] && [ ! -L "$MOUNT_POINT/forensics-volume.json" ]; }; then
    die 43 "$MOUNT_POINT has no forensics-volume.json marker: not the forensics volume"
fi
ARCH=$(uname -m)
CAPTURE=$MOUNT_POINT/bin/$ARCH/capture
if ! { [ -f "$CAPTURE" ] && [ ! -L "$CAPTURE" ] && [ -x "$CAPTURE" ]; }; then
    die 44 "no capture binary for $ARCH on the volume ($CAPTURE)"
fi

if [ "$SOURCE" = lime-module ]; then
    RELEASE=$(uname -r)
    MODULE=$MOUNT_POINT/modules/$RELEASE/lime.ko
    if ! { [ -f "$MODULE" ] && [ ! -L "$MODULE" ]; }; then
        die 44 "no LiME module for kernel $RELEASE on the volume (modules/$RELEASE/lime.ko); build one for this exact kernel and publish a new volume, or use Source=auto"
    fi
    SOURCE=lime-module:$MODULE
fi

# ---- time budget ------------------------------------------------------------
MEM_KIB=''
while read -r key value _unit; do
    [ "$key" = MemTotal: ] && MEM_KIB=$value
done <"$PROC/meminfo"
# Leave capture a margin to finalize after SIGTERM: stopped early, it still
# writes and hashes the zero-filled rest of RAM (measured 0.6-1.3 GiB/s), so
# the margin is 30 s + 2 s per GiB of RAM, and at least 1/10 of the timeout;
# never more than half the timeout (short timeouts keep at least 5 s).
margin=$((TIMEOUT / 10))
if [ -n "$MEM_KIB" ]; then
    by_ram=$((30 + MEM_KIB * 2 / 1048576))
    [ "$margin" -ge "$by_ram" ] || margin=$by_ram
fi
[ "$margin" -ge 30 ] || margin=30
[ "$margin" -le $((TIMEOUT / 2)) ] || margin=$((TIMEOUT / 2))
budget=$((TIMEOUT - margin))
[ "$budget" -ge 5 ] || budget=5

if [ -n "$MEM_KIB" ]; then
    # 40 MiB/s is a slow, small gp3 volume: below that the budget is tight.
    need=$((MEM_KIB / 1024 / 40 + 120))
    if [ "$need" -gt "$budget" ]; then
        warn "WARNING: $((MEM_KIB / 1024)) MiB of RAM may need about ${need}s at 40 MiB/s, but the budget is ${budget}s (ExecutionTimeout $TIMEOUT s): the capture may end partial. Raise ExecutionTimeout (up to 172800)."
    fi
fi

# The binary is checked against the pinned toolkit last, just before it runs.
rc=0
pinned "$MOUNT_POINT" "bin/$ARCH/capture" || rc=$?
case $rc in
0) ;;
2) warn "WARNING: this document carries no toolkit pin (rendered by hand): capture is checked only against the volume's own SHA256SUMS" ;;
*) die 44 "the toolkit on $MOUNT_POINT is not the one this document was built for: $PIN_WHY" ;;
esac

# --volume-id: capture refuses an output that is not on this EBS volume
# (security review S12), not just any file system labelled FORENSICS.
set -- --case-id "$CASE_ID" --examiner "$EXAMINER" --source "$SOURCE" --output "$MOUNT_POINT/captures" --volume-id "$VOLUME_ID"
[ -z "$NOTE" ] || set -- "$@" --note "$NOTE"
[ -z "$LEVEL" ] || set -- "$@" --level "$LEVEL"
[ -z "$THREADS" ] || set -- "$@" --threads "$THREADS"
[ "$IMDS" = true ] || set -- "$@" --no-imds

# capture's own output goes to a log on the volume, beside the evidence; the
# verdict line is printed first when it ends, then the log's tail: the SSM
# console keeps only the first 2,400 characters of stdout.
LOG=''
LOGS=$MOUNT_POINT/logs
if [ ! -L "$LOGS" ] && { [ -d "$LOGS" ] || mkdir -m 0700 "$LOGS" 2>/dev/null; }; then
    n=0
    while :; do
        LOG=$LOGS/capture-$VOLUME_ID.$n.log
        (set -C && : >"$LOG") 2>/dev/null && break
        n=$((n + 1))
        [ "$n" -lt 100 ] || { LOG=''; break; }
    done
fi
[ -n "$LOG" ] || warn "WARNING: no log file under $LOGS: capture's output goes to stderr"
header="capture: $VOLUME_ID at $MOUNT_POINT, source $SOURCE, time budget ${budget}s of ${TIMEOUT}s"

# ---- capture, with a watchdog that sends SIGTERM when the budget is spent ---
if [ -n "$LOG" ]; then
    printf '%s\n' "$header" >>"$LOG"
    "$CAPTURE" "$@" </dev/null >>"$LOG" 2>&1 &
else
    warn "$header"
    "$CAPTURE" "$@" </dev/null >&2 &
fi
cpid=$!
# Forensics-StopCapture finds the capture here and sends it SIGTERM (an SSM
# cancel would SIGKILL the whole process group: no finalized image).
PIDFILE=$LOGS/capture.pid
if [ -n "$LOG" ]; then
    rm -f "$PIDFILE"
    (set -C && printf '%s\n' "$cpid" >"$PIDFILE") 2>/dev/null ||
        warn "WARNING: cannot write $PIDFILE: Forensics-StopCapture will not find this capture"
fi
(
    # The sleep holds none of the command's output pipes: a TERM that lands
    # between its start and spid=$! (a capture that ends at once) leaves it
    # running until the budget, and it must not keep SSM's output open.
    spid=''
    trap '[ -z "$spid" ] || kill "$spid" 2>/dev/null; exit 0' TERM
    sleep "$budget" >/dev/null 2>&1 &
    spid=$!
    wait "$spid"
    warn "WARNING: time budget of ${budget}s spent: sending SIGTERM to capture to finalize a partial image"
    kill -TERM "$cpid" 2>/dev/null || :
) &
wpid=$!
trap 'kill -TERM "$cpid" 2>/dev/null || :' TERM INT HUP
while :; do
    rc=0
    wait "$cpid" || rc=$?
    # wait returns early (status > 128) when a trapped signal arrives; wait
    # again until capture itself has ended.
    kill -0 "$cpid" 2>/dev/null || break
done
trap - TERM INT HUP
kill -TERM "$wpid" 2>/dev/null || :
wait "$wpid" 2>/dev/null || :
[ -z "$LOG" ] || rm -f "$PIDFILE"

case $rc in
0) say "$NAME: OK: capture complete on $VOLUME_ID under $MOUNT_POINT/captures (manifest.json there has every hash); next: Forensics-UnmountVolume" ;;
20 | 21 | 22 | 23) say "$NAME: PARTIAL (capture exit $rc): a labelled partial image and its manifest are under $MOUNT_POINT/captures; keep it: unmount with Forensics-UnmountVolume and snapshot the volume" ;;
*) say "$NAME: FAILED (capture exit $rc, see its messages below; docs/capture.md); unmount with Forensics-UnmountVolume" ;;
esac
if [ -n "$LOG" ]; then
    # capture's final line, with the SHA-256 of manifest.json, the image and
    # the LiME stream, second: SSM keeps the head of the output, and the
    # runbook copies the digests into the custody record (docs/deploy.md).
    final=$(grep -E '^capture: (complete|PARTIAL)' "$LOG" 2>/dev/null | tail -n 1) || final=''
    [ -z "$final" ] || say "$final"
    say "capture's output: ${LOG#"$MOUNT_POINT"/} on the volume; its end:"
    # The log's end fills what is left of the 2,400 characters SSM keeps
    # after the verdict (at most ~300) and the final line (~650).
    keep=$((2000 - ${#final}))
    [ "$keep" -ge 600 ] || keep=600
    tail -c "$keep" "$LOG" 2>/dev/null || :
fi
exit "$rc"
