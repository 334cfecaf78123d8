# shellcheck shell=sh
# Drill "fail-too-small": memory filled with incompressible data, and a
# forensics volume without room for it. The capture must end in a partial,
# clearly labelled image that still verifies, and the volume must unmount.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_block iomem cat /proc/iomem
mkdir -p /fill
mount -t tmpfs -o size="${FV_FILL_MIB}m" tmpfs /fill
dd if=/dev/urandom of=/fill/random bs=1M count="$((FV_FILL_MIB - 8))" 2>/dev/null || { fv_fail "cannot fill memory"; exit 1; }
fv_result filled-mib "$((FV_FILL_MIB - 8))"
fv_record_state before-mount
fv_ssm mount 300 || { fv_fail "the mount document failed"; exit 1; }
fv_block df sh -c "df -k $(fv_volume_mountpoint)"
fv_ssm capture 1200
fv_ssm unmount 300 || fv_fail "the unmount document failed after a partial capture"
fv_result after-unmount-mountpoint "$(fv_volume_mountpoint)"
fv_record_state after-unmount
true
