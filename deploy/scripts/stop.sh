#!/bin/sh
# Forensics-StopCapture: stop a running Forensics-CaptureMemory early, so that
# it ends in a finalized, labelled partial image (docs/deploy.md, "Stopping a
# capture early").
#
# Cancelling the Capture command (or the Automation execution) makes the SSM
# agent SIGKILL the command's whole process group: capture cannot finish its
# seek table, hashes and manifest. This document instead sends SIGTERM to the
# capture process that Forensics-CaptureMemory recorded in logs/capture.pid on
# the volume, after checking that the process is that capture binary. capture
# then finalizes a partial image and exits 20-23; the Capture command reports
# PARTIAL and the runbook goes on to unmount and snapshot the volume.
#
# Parameters (assigned above this script by the SSM document; by hand, export):
#   FV_VOLUME_ID     vol-... of the forensics volume (required)
#   FV_MOUNT_POINT   its mount point (default /run/forensics-volume/<volume id>)
#   FV_WAIT_SECONDS  how long to wait for capture to finish finalizing (0..3600)
# Test-only environment: FV_PROC_ROOT (default /proc).
#
# Exit codes (40-47 are this script's): 0 SIGTERM sent (or no capture was
# running: nothing to stop); 40 bad parameter; 46 the pid file is malformed;
# 47 the signal could not be sent.
set -eu

NAME=Forensics-StopCapture
PROC=${FV_PROC_ROOT:-/proc}
VOLUME_ID=${FV_VOLUME_ID:-}
MOUNT_POINT=${FV_MOUNT_POINT:-}
WAIT=${FV_WAIT_SECONDS:-120}

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() {
    code=$1
    shift
    say "$NAME: FAILED (exit $code): $*"
    warn "ERROR: $*"
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
case $WAIT in
'' | *[!0-9]*) die 40 "wait '$WAIT' is not a number" ;;
esac
if [ "${#WAIT}" -gt 4 ] || [ "$WAIT" -gt 3600 ]; then
    die 40 "wait $WAIT is out of range 0..3600"
fi

PIDFILE=$MOUNT_POINT/logs/capture.pid
if ! { [ -f "$PIDFILE" ] && [ ! -L "$PIDFILE" ]; }; then
    say "$NAME: OK: no capture is running on $VOLUME_ID (no $PIDFILE): nothing to stop"
    exit 0
fi
pid=''
read -r pid <"$PIDFILE" || :
case $pid in
'' | *[!0-9]* | 0*) die 46 "$PIDFILE holds '$pid', not a process ID" ;;
esac
# Only the capture binary of this volume is signalled: a stale pid file
# (a capture killed by a cancel) may name an unrelated process by now.
CAPTURE=$MOUNT_POINT/bin/$(uname -m)/capture
exe=$(readlink "$PROC/$pid/exe" 2>/dev/null) || exe=''
if [ "$exe" != "$CAPTURE" ]; then
    say "$NAME: OK: no capture is running on $VOLUME_ID (process $pid from $PIDFILE is gone or is not $CAPTURE): nothing to stop"
    exit 0
fi
kill -TERM "$pid" 2>/dev/null || die 47 "could not send SIGTERM to capture (pid $pid)"
waited=0
while [ "$waited" -lt "$WAIT" ] && kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
done
if kill -0 "$pid" 2>/dev/null; then
    say "$NAME: OK: SIGTERM sent to capture (pid $pid) on $VOLUME_ID; still finalizing after ${WAIT}s: the Capture command reports PARTIAL when it is done"
else
    say "$NAME: OK: capture (pid $pid) on $VOLUME_ID stopped after SIGTERM in ${waited}s: the Capture command reports PARTIAL; the runbook goes on to unmount and snapshot"
fi
