# shellcheck shell=sh
# Drill "fail-bad-marker": two look-alike volumes, one whose marker file was
# altered (volume ID $FV_BAD_MARKER_ID) and one whose ext4 label is wrong
# ($FV_BAD_LABEL_ID). The mount document must refuse both, leave them
# unmounted, and write nothing to them.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
marker_dev=$(fv_wait_serial "vol${FV_BAD_MARKER_ID#vol-}") || { fv_fail "bad-marker volume missing"; exit 1; }
label_dev=$(fv_wait_serial "vol${FV_BAD_LABEL_ID#vol-}") || { fv_fail "bad-label volume missing"; exit 1; }
fv_result bad-marker-written-before "$(fv_written_sectors "$marker_dev")"
fv_result bad-label-written-before "$(fv_written_sectors "$label_dev")"
fv_ssm mount-bad-marker 120 && fv_fail "mount document accepted a volume with an altered marker"
fv_ssm mount-bad-label 120 && fv_fail "mount document accepted a volume with the wrong label"
sync
fv_result bad-marker-written-after "$(fv_written_sectors "$marker_dev")"
fv_result bad-label-written-after "$(fv_written_sectors "$label_dev")"
fv_result bad-marker-mounted "$(fv_mountpoint_of "$marker_dev")"
fv_result bad-label-mounted "$(fv_mountpoint_of "$label_dev")"
fv_block run-forensics-volume sh -c 'ls -la /run/forensics-volume 2>&1; true'
true
