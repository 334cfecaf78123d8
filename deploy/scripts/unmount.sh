#!/bin/sh
# Forensics-UnmountVolume: run `unmount-helper` from the forensics volume.
#
# unmount-helper moves itself off the volume, syncs, refuses while any process
# holds the filesystem (and lists them), unmounts, flushes the device and
# reports "safe to detach". This script only finds it and reports.
#
# Parameters (assigned above this script by the SSM document; by hand, export):
#   FV_VOLUME_ID     vol-... of the forensics volume (required)
#   FV_MOUNT_POINT   its mount point (default /run/forensics-volume/<volume id>);
#                    unmount-helper refuses it unless the volume is what is mounted there
# Test-only environment: FV_PROC_ROOT (default /proc).
#
# Exit codes (40-45 are this script's): 0 unmounted, or nothing was mounted
# there; 40 bad parameter; 44 no unmount-helper; 45 the mount point does not
# hold the forensics volume, or is still mounted; otherwise unmount-helper's
# own exit code (docs/unmount-helper.md). On any failure: do not detach.
set -eu

NAME=Forensics-UnmountVolume
PROC=${FV_PROC_ROOT:-/proc}
VOLUME_ID=${FV_VOLUME_ID:-}
MOUNT_POINT=${FV_MOUNT_POINT:-}

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() {
    code=$1
    shift
    warn "ERROR: $*"
    say "$NAME: FAILED (exit $code): $*"
    exit "$code"
}

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

mounted=''
while read -r _id _parent _majmin _root mp _rest; do
    [ "$mp" != "$MOUNT_POINT" ] || mounted=1
done <"$PROC/self/mountinfo"
if [ -z "$mounted" ]; then
    # Clean-up paths call this after a failed mount: nothing to do is success.
    if [ -d "$MOUNT_POINT" ] && [ ! -L "$MOUNT_POINT" ]; then
        rmdir "$MOUNT_POINT" 2>/dev/null || :
    fi
    say "$NAME: OK: nothing is mounted at $MOUNT_POINT; $VOLUME_ID can be detached if it is attached"
    exit 0
fi
if ! { [ -f "$MOUNT_POINT/forensics-volume.json" ] && [ ! -L "$MOUNT_POINT/forensics-volume.json" ]; }; then
    die 45 "$MOUNT_POINT has no forensics-volume.json marker: not the forensics volume; left mounted"
fi
ARCH=$(uname -m)
HELPER=$MOUNT_POINT/bin/$ARCH/unmount-helper
if ! { [ -f "$HELPER" ] && [ ! -L "$HELPER" ] && [ -x "$HELPER" ]; }; then
    die 44 "no unmount-helper for $ARCH on the volume ($HELPER); left mounted"
fi

# Keep the shell's own working directory off the volume: a process whose cwd
# is on it would hold the filesystem busy.
cd /
rc=0
# Its JSON report goes to stderr: stdout holds only the verdict line, which
# the SSM console must show whole (it keeps the first 2,400 characters of
# each stream).
"$HELPER" --volume-id "$VOLUME_ID" --mountpoint "$MOUNT_POINT" --json </dev/null >&2 || rc=$?
if [ "$rc" != 0 ]; then
    die "$rc" "unmount-helper refused or failed (see above); $VOLUME_ID is still mounted at $MOUNT_POINT: do NOT detach it"
fi
still=''
while read -r _id _parent _majmin _root mp _rest; do
    [ "$mp" != "$MOUNT_POINT" ] || still=1
done <"$PROC/self/mountinfo"
[ -z "$still" ] || die 45 "unmount-helper reported success but $MOUNT_POINT is still mounted: do NOT detach"
if [ -d "$MOUNT_POINT" ] && [ ! -L "$MOUNT_POINT" ]; then
    rmdir "$MOUNT_POINT" 2>/dev/null || :
fi
say "$NAME: OK: $VOLUME_ID unmounted from $MOUNT_POINT; safe to detach"
