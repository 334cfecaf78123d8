# shellcheck shell=sh
# Drill "fail-wrong-id": the mount document given a volume ID that is not
# attached, then the suspect's own root volume ID. Both must fail clearly and
# leave nothing mounted and no mountpoint behind.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_record_state before
fv_ssm mount-absent 120 && fv_fail "mount document succeeded for a volume that is not attached"
fv_ssm mount-suspect 120 && fv_fail "mount document mounted the suspect's root volume"
fv_result volume-mountpoint "$(fv_volume_mountpoint)"
fv_block run-forensics-volume sh -c 'ls -la /run/forensics-volume 2>&1; true'
fv_block mounts cat /proc/mounts
fv_record_state after
fv_result volume-written "$(fv_written_sectors "$VOLUME_DEV")"
true
