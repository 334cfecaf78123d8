# shellcheck shell=sh
# Scenario "capture" (also "lime" and "aarch64"; the host picks the source):
# plant the tokens and what Volatility must find, then run the three rendered SSM documents' scripts
# unchanged, in order, recording the suspect disk's written sectors and the
# page cache around them.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_block iomem cat /proc/iomem
fv_plant_tokens || { fv_fail "cannot plant the memory tokens"; exit 1; }
fv_plant_analysis || { fv_fail "cannot plant the process, listener and bash for Volatility"; exit 1; }
fv_record_state before-mount
fv_ssm mount 300 || { fv_fail "the mount document failed"; fv_block dmesg dmesg; exit 1; }
fv_result mountpoint "$(fv_volume_mountpoint)"
fv_block mount-options grep " $(cat "/sys/block/$VOLUME_DEV/dev") " /proc/self/mountinfo
fv_record_state before-capture
fv_ssm capture 1200
crc=$?
fv_record_state after-capture
fv_ssm unmount 300
urc=$?
fv_result after-unmount-mountpoint "$(fv_volume_mountpoint)"
fv_record_state after-unmount
fv_block dmesg sh -c 'dmesg | tail -n 40'
[ "$crc" = 0 ] || fv_fail "the capture document failed (exit $crc)"
[ "$urc" = 0 ] || fv_fail "the unmount document failed (exit $urc)"
[ "$crc" = 0 ] && [ "$urc" = 0 ]
