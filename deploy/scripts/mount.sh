#!/bin/sh
# Forensics-MountVolume, stage-0.
#
# mount-helper lives on the forensics volume, so it cannot find and mount that
# volume itself. This script does the least it can with the instance's own
# shell: find the block device of the EBS volume (NVMe serial in sysfs, or the
# Xen name derived from the requested device), refuse anything protected, mount
# it read-only (ro,noload,nosuid,nodev) on a fresh directory under /run (tmpfs),
# and run mount-helper from the volume. mount-helper re-identifies the device
# with its full checks, verifies the marker and SHA256SUMS, remounts read-write
# and grows the filesystem (it "adopts" this mount). See docs/deploy.md.
#
# Parameters. The SSM document assigns them on the lines above this script
# (values already constrained by the document's allowedPattern); run by hand,
# export them:
#   FV_VOLUME_ID         vol-0123456789abcdef0 (required)
#   FV_REQUESTED_DEVICE  sdf, /dev/sdf or xvdf (optional; needed on Xen)
#   FV_MOUNT_POINT       directory under /run (default /run/forensics-volume/<volume id>)
#   FV_WAIT_SECONDS      how long to wait for the device to appear (default 120)
#   FV_EXPECT_SIZE_GIB   the volume's size in GiB (optional on Nitro; required on
#                        Xen, where no volume ID is visible in the guest)
# Test-only environment, never set by the documents (each is reported loudly):
#   FV_SYSFS_ROOT (default /sys), FV_PROC_ROOT (default /proc), FV_DEV_ROOT (default /dev)
#   FV_STAGE0_MODE=find           print the device found and stop before mounting
#   FV_TEST_ACCEPT_NVME_MODEL     also accept qemu's NVMe model "QEMU NVMe Ctrl" (that value only)
#
# Exit codes (40-45 are this script's; the helpers and capture use 0-30):
# 0 mounted and adopted; 40 bad parameter; 41 device not found; 42 device
# refused (protected, ambiguous, wrong size); 43 mount point or mount failed;
# 44 not a forensics volume (marker or helper missing), or its SHA256SUMS or
# mount-helper does not match the toolkit pin in this document; any other code is
# mount-helper's own (docs/mount-helper.md), passed through.
set -eu

NAME=Forensics-MountVolume
SYS=${FV_SYSFS_ROOT:-/sys}
PROC=${FV_PROC_ROOT:-/proc}
DEV=${FV_DEV_ROOT:-/dev}
MODE=${FV_STAGE0_MODE:-mount}
EBS_MODEL='Amazon Elastic Block Store'
TEST_MODEL=${FV_TEST_ACCEPT_NVME_MODEL:-}
VOLUME_ID=${FV_VOLUME_ID:-}
REQUESTED=${FV_REQUESTED_DEVICE:-}
MOUNT_POINT=${FV_MOUNT_POINT:-}
WAIT=${FV_WAIT_SECONDS:-120}
SIZE_GIB=${FV_EXPECT_SIZE_GIB:-}
NOTES=''

NL='
'
# The verdict is the first line of stdout, the progress lines after it: the
# SSM console keeps only the first 2,400 characters of each stream.
LATER=''
say() { LATER="$LATER$*$NL"; }
verdict() { printf '%s\n%s' "$*" "$LATER"; }
warn() { printf '%s\n' "$*" >&2; }
note() { NOTES="$NOTES $*"; }

# die CODE MESSAGE: the reason on stderr, and the one-line verdict first on
# stdout. The verdict is the first line of the message; the rest (the
# devices seen) goes to stderr only.
die() {
    code=$1
    shift
    warn "ERROR: $*"
    msg=$*
    verdict "$NAME: FAILED (exit $code): ${msg%%"$NL"*}"
    exit "$code"
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


# trim VALUE: strip trailing spaces (sysfs pads NVMe serial and model fields).
trim() {
    t=$1
    while :; do
        case $t in
        *' ') t=${t% } ;;
        *) break ;;
        esac
    done
    printf '%s' "$t"
}

# attr FILE: first line of a sysfs attribute, trimmed; empty when missing.
attr() {
    a=''
    if [ -f "$1" ]; then
        IFS= read -r a <"$1" || :
    fi
    trim "$a"
}

# ---- parameters -------------------------------------------------------------
case $VOLUME_ID in
vol-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
vol-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
'') die 40 "no volume ID given (FV_VOLUME_ID)" ;;
*) die 40 "malformed volume ID '$VOLUME_ID' (expected vol- and 8 or 17 hex digits)" ;;
esac
SERIAL=vol${VOLUME_ID#vol-}

LETTER=''
case $REQUESTED in
'') ;;
/dev/sd[b-z] | /dev/xvd[b-z] | sd[b-z] | xvd[b-z]) LETTER=${REQUESTED#"${REQUESTED%?}"} ;;
*) die 40 "malformed requested device '$REQUESTED' (expected sdX, /dev/sdX or xvdX)" ;;
esac

case $WAIT in
'' | *[!0-9]*) die 40 "wait seconds '$WAIT' is not a number" ;;
esac
if ! { [ "${#WAIT}" -le 4 ] && [ "$WAIT" -le 3600 ]; }; then
    die 40 "wait seconds $WAIT out of range 0..3600"
fi

case $SIZE_GIB in
'') ;;
*[!0-9]* | 0*) die 40 "expected size '$SIZE_GIB' is not a whole number of GiB" ;;
*) [ "${#SIZE_GIB}" -le 5 ] || die 40 "expected size $SIZE_GIB GiB is out of range" ;;
esac

if [ -z "$MOUNT_POINT" ]; then
    MOUNT_BASE=/run/forensics-volume
    MOUNT_POINT=$MOUNT_BASE/$VOLUME_ID
else
    case $MOUNT_POINT in
    /run/*) ;;
    *) die 40 "mount point '$MOUNT_POINT' is not under /run" ;;
    esac
    case $MOUNT_POINT in
    *//* | */ | */. | */./* | */.. | */../* | *[!A-Za-z0-9._/-]*) die 40 "mount point '$MOUNT_POINT' is not a plain path" ;;
    esac
    MOUNT_BASE=${MOUNT_POINT%/*}
fi

case $MODE in
mount | find) ;;
*) die 40 "FV_STAGE0_MODE='$MODE' (expected mount or find)" ;;
esac

# Overrides exist for the fixture and VM tests; say so every time one is on.
if [ "$SYS" != /sys ] || [ "$PROC" != /proc ] || [ "$DEV" != /dev ]; then
    warn "WARNING: TEST OVERRIDE: sysfs=$SYS proc=$PROC dev=$DEV"
    note "[TEST OVERRIDE roots sys=$SYS proc=$PROC dev=$DEV]"
fi
# The override admits qemu's emulated NVMe (the VM bench) and nothing else,
# so it cannot widen what a real instance accepts.
if [ -n "$TEST_MODEL" ] && [ "$TEST_MODEL" != "QEMU NVMe Ctrl" ]; then
    warn "FV_TEST_ACCEPT_NVME_MODEL='$TEST_MODEL' ignored: the override admits qemu's model 'QEMU NVMe Ctrl' only"
    TEST_MODEL=
fi
if [ -n "$TEST_MODEL" ]; then
    warn "WARNING: TEST OVERRIDE FV_TEST_ACCEPT_NVME_MODEL is set: NVMe model '$TEST_MODEL' is accepted as well as '$EBS_MODEL'. Never set this on a real instance."
    note "[TEST OVERRIDE NVMe model '$TEST_MODEL' accepted]"
fi

# ---- protected devices ------------------------------------------------------
# protect DISK: refuse (exit 4) if DISK or a partition of it backs /, is
# mounted anywhere, is swap, or has holders (LVM, md, dm, multipath).
protect() {
    disk=$1
    names=" $disk "
    nums=" $(attr "$SYS/block/$disk/dev") "
    for p in "$SYS/block/$disk/$disk"*; do
        [ -f "$p/partition" ] || continue
        names="$names${p##*/} "
        nums="$nums$(attr "$p/dev") "
        for h in "$p/holders/"*; do
            [ -e "$h" ] || continue
            die 42 "refusing $disk: partition ${p##*/} has holder ${h##*/} (LVM/md/dm)"
        done
    done
    for h in "$SYS/block/$disk/holders/"*; do
        [ -e "$h" ] || continue
        die 42 "refusing $disk: it has holder ${h##*/} (LVM/md/dm)"
    done
    [ -r "$PROC/self/mountinfo" ] || die 42 "refusing $disk: cannot read $PROC/self/mountinfo to prove it is not mounted"
    # mountinfo: id parent major:minor root mountpoint options... - fstype source superoptions
    while read -r _id _parent majmin _root mp rest; do
        src=${rest#* - }
        src=${src#* }
        src=${src%% *}
        src=${src##*/}
        case "$nums" in *" $majmin "*) hit=1 ;; *) hit=0 ;; esac
        case "$names" in *" $src "*) hit=1 ;; esac
        [ "$hit" = 1 ] || continue
        if [ "$mp" = / ]; then
            die 42 "refusing $disk: it is the root device (/ is on $majmin)"
        fi
        die 42 "refusing $disk: it or a partition is mounted at $mp (device $majmin)"
    done <"$PROC/self/mountinfo"
    if [ -r "$PROC/swaps" ]; then
        while read -r swdev _rest; do
            case "$names" in *" ${swdev##*/} "*) die 42 "refusing $disk: $swdev is in use as swap" ;; esac
        done <"$PROC/swaps"
    fi
}

# ---- finding the device -----------------------------------------------------
# find_nvme: set FOUND to the NVMe namespace whose controller serial is the
# volume ID; SEEN lists every NVMe disk looked at and why it was not taken.
find_nvme() {
    FOUND=''
    SEEN=''
    NITRO=''
    for b in "$SYS/block/nvme"*; do
        [ -e "$b" ] || continue
        n=${b##*/}
        case $n in
        nvme*c*n*) continue ;; # hidden multipath path node
        esac
        serial=$(attr "$b/device/serial")
        model=$(attr "$b/device/model")
        if [ "$model" != "$EBS_MODEL" ] && { [ -z "$TEST_MODEL" ] || [ "$model" != "$TEST_MODEL" ]; }; then
            SEEN="$SEEN
  $n: model '$model' is not EBS (serial '$serial')"
            continue
        fi
        NITRO=1
        if [ "$serial" != "$SERIAL" ]; then
            SEEN="$SEEN
  $n: serial '$serial' is another volume"
            continue
        fi
        if ! size_ok "$n"; then
            die 42 "refusing $n: serial $SERIAL matches but its size is $(attr "$b/size") sectors, not $SIZE_GIB GiB"
        fi
        if [ -n "$FOUND" ]; then
            die 42 "two NVMe devices carry serial $SERIAL: $FOUND and $n; refusing both"
        fi
        if [ "$model" != "$EBS_MODEL" ]; then
            warn "WARNING: TEST OVERRIDE: accepting $n with model '$model'"
        fi
        FOUND=$n
    done
    HOW="NVMe serial $SERIAL"
}

# shift4 LETTER: the letter four places on (old Xen kernels: sdf -> xvdj).
shift4() {
    rest=${1#[a-v]}
    [ -z "$rest" ] || return 0
    alphabet=abcdefghijklmnopqrstuvwxyz
    after=${alphabet#*"$1"}
    after=${after#???}
    printf '%s' "${after%"${after#?}"}"
}

# size_ok DISK: true when no size is expected or DISK has exactly that size.
size_ok() {
    [ -n "$SIZE_GIB" ] || return 0
    sectors=$(attr "$SYS/block/$1/size")
    case $sectors in '' | *[!0-9]*) return 1 ;; esac
    [ "$sectors" -eq $((SIZE_GIB * 2097152)) ]
}

# find_xen: set FOUND from the requested device name. Xen shows /dev/sdX as
# xvdX (or sdX); kernels that shift letters by four show it as xvd(X+4), and
# their first disk is xvde instead of xvda. More than one candidate: refuse.
find_xen() {
    FOUND=''
    [ -n "$LETTER" ] || return 0
    shifted=$(shift4 "$LETTER")
    if [ ! -e "$SYS/block/xvda" ] && [ -e "$SYS/block/xvde" ] && [ -n "$shifted" ]; then
        cands="xvd$shifted sd$LETTER"
    else
        cands="xvd$LETTER sd$LETTER"
    fi
    present=''
    for c in $cands; do
        [ -e "$SYS/block/$c" ] || continue
        present="$present $c"
        SEEN="$SEEN
  $c: Xen candidate for $REQUESTED"
    done
    case $present in
    '') return 0 ;;
    ' '*' '*) die 42 "ambiguous Xen devices for $REQUESTED:$present; refusing both" ;;
    esac
    FOUND=${present# }
    [ -n "$SIZE_GIB" ] || die 40 "$FOUND may be $REQUESTED, but on Xen no volume ID is visible: pass ExpectedSizeGiB (FV_EXPECT_SIZE_GIB) too"
    size_ok "$FOUND" || die 42 "refusing $FOUND: its size is $(attr "$SYS/block/$FOUND/size") sectors, not $SIZE_GIB GiB"
    HOW="Xen name $FOUND for requested $REQUESTED (no volume ID is visible on Xen: the marker and mount-helper confirm it)"
}

locate() {
    waited=0
    while :; do
        find_nvme
        # An instance with EBS NVMe devices is Nitro: the volume will appear
        # as NVMe; a disk named like the requested device is something else.
        [ -n "$FOUND" ] || [ -n "$NITRO" ] || find_xen
        [ -z "$FOUND" ] || return 0
        [ "$waited" -lt "$WAIT" ] || break
        sleep 1
        waited=$((waited + 1))
    done
    [ -n "$SEEN" ] || SEEN="
  (no NVMe or Xen block devices at all under $SYS/block)"
    hint=''
    [ -n "$REQUESTED" ] || hint=' (on Xen instances pass RequestedDevice)'
    die 41 "volume $VOLUME_ID not found after ${WAIT}s$hint; every device seen is listed on stderr$SEEN"
}

locate
protect "$FOUND"
if [ "$MODE" = find ]; then
    verdict "found $FOUND by $HOW${NOTES}"
    exit 0
fi

# ---- mounting read-only on a fresh directory under /run ---------------------
MOUNTED=''
CREATED=''
ADOPTED=''
is_mounted() {
    while read -r _id _parent _majmin _root mp _rest; do
        [ "$mp" != "$1" ] || return 0
    done <"$PROC/self/mountinfo"
    return 1
}
cleanup() {
    rc=$?
    trap - EXIT
    if [ -z "$ADOPTED" ] && [ -n "$MOUNTED" ] && is_mounted "$MOUNT_POINT"; then
        umount "$MOUNT_POINT" || warn "ERROR: could not unmount $MOUNT_POINT: unmount it by hand before detaching"
    fi
    if [ -z "$ADOPTED" ] && [ -n "$CREATED" ] && [ -d "$MOUNT_POINT" ] && ! is_mounted "$MOUNT_POINT"; then
        rmdir "$MOUNT_POINT" || :
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || die 43 "must run as root"
[ -b "$DEV/$FOUND" ] || die 41 "$DEV/$FOUND is not a block device"
[ ! -L "$MOUNT_BASE" ] || die 43 "$MOUNT_BASE is a symlink: refusing (planted?)"
if [ ! -e "$MOUNT_BASE" ] && [ "$MOUNT_BASE" = /run/forensics-volume ]; then
    mkdir -m 0700 "$MOUNT_BASE" || die 43 "cannot create $MOUNT_BASE"
fi
if ! { [ -d "$MOUNT_BASE" ] && [ ! -L "$MOUNT_BASE" ] && [ -O "$MOUNT_BASE" ]; }; then
    die 43 "$MOUNT_BASE is not a directory owned by root"
fi
if [ -e "$MOUNT_POINT" ] || [ -L "$MOUNT_POINT" ]; then
    if is_mounted "$MOUNT_POINT"; then
        die 43 "something is already mounted at $MOUNT_POINT (an earlier Forensics-MountVolume?): run Forensics-UnmountVolume first"
    fi
    # An empty directory left by an earlier, interrupted run: rmdir removes
    # nothing else (not a symlink, not a file, not a directory with entries).
    if [ -d "$MOUNT_POINT" ] && [ ! -L "$MOUNT_POINT" ] && rmdir "$MOUNT_POINT" 2>/dev/null; then
        warn "note: removed the empty directory $MOUNT_POINT left by an earlier run"
    else
        die 43 "$MOUNT_POINT already exists and is not an empty directory: refusing (planted?)"
    fi
fi
mkdir -m 0700 "$MOUNT_POINT" || die 43 "cannot create $MOUNT_POINT"
CREATED=1
if ! { [ -d "$MOUNT_POINT" ] && [ ! -L "$MOUNT_POINT" ]; }; then
    die 43 "$MOUNT_POINT changed under us"
fi

MOUNTED=1
mount -t ext4 -o ro,noload,nosuid,nodev "$DEV/$FOUND" "$MOUNT_POINT" ||
    die 43 "mount -t ext4 -o ro,noload,nosuid,nodev $DEV/$FOUND $MOUNT_POINT failed"

if ! { [ -f "$MOUNT_POINT/forensics-volume.json" ] && [ ! -L "$MOUNT_POINT/forensics-volume.json" ]; }; then
    die 44 "$DEV/$FOUND has no forensics-volume.json marker: not a forensics volume; unmounted"
fi
ARCH=$(uname -m)
HELPER=$MOUNT_POINT/bin/$ARCH/mount-helper
if ! { [ -f "$HELPER" ] && [ ! -L "$HELPER" ] && [ -x "$HELPER" ]; }; then
    die 44 "the volume has no mount-helper for $ARCH ($HELPER); unmounted"
fi

rc=0
pinned "$MOUNT_POINT" "bin/$ARCH/mount-helper" || rc=$?
case $rc in
0) PINNED="toolkit matches this document's pin" ;;
2) PINNED="no toolkit pin in this document (rendered by hand): mount-helper checks the volume against itself" ;;
*) die 44 "the toolkit on $DEV/$FOUND is not the one this document was built for: $PIN_WHY; unmounted" ;;
esac
say "stage-0: $VOLUME_ID is $DEV/$FOUND ($HOW), mounted read-only at $MOUNT_POINT; $PINNED; running mount-helper"
set -- mount --volume-id "$VOLUME_ID" --mountpoint "$MOUNT_POINT" --json
[ -z "$REQUESTED" ] || set -- "$@" --requested-device "$REQUESTED"
[ -z "$SIZE_GIB" ] || set -- "$@" --expect-size-gib "$SIZE_GIB"
# mount-helper's JSON report (every candidate device and check) is longer than
# the 2,500 characters the console shows: it goes to a file on tmpfs, then onto
# the volume once it is ours; on failure, to stderr.
REPORT=$MOUNT_BASE/.mount-helper.$$.json
rm -f "$REPORT"
rc=0
(set -C && "$HELPER" "$@" >"$REPORT") || rc=$?
if [ "$rc" != 0 ]; then
    [ ! -f "$REPORT" ] || {
        warn "mount-helper report:"
        while IFS= read -r line; do warn "$line"; done <"$REPORT"
        rm -f "$REPORT"
    }
    die "$rc" "mount-helper refused or failed (exit $rc, docs/mount-helper.md), see its message above; the volume is not left mounted"
fi
ADOPTED=1
# Keep the report on the volume, beside the evidence it prepares.
DETAILS=''
LOGS=$MOUNT_POINT/logs
if [ ! -L "$LOGS" ] && { [ -d "$LOGS" ] || mkdir -m 0700 "$LOGS" 2>/dev/null; }; then
    n=0
    while :; do
        DETAILS=$LOGS/mount-$VOLUME_ID.$n.json
        (set -C && while IFS= read -r line; do printf '%s\n' "$line"; done <"$REPORT" >"$DETAILS") 2>/dev/null && break
        n=$((n + 1))
        [ "$n" -lt 100 ] || { DETAILS=''; break; }
    done
fi
rm -f "$REPORT"
[ -z "$DETAILS" ] || note "(details: $DETAILS)"
verdict "$NAME: OK: $VOLUME_ID ($DEV/$FOUND, by $HOW) mounted read-write at $MOUNT_POINT${NOTES}"
