# shellcheck shell=sh
# Scenario "reference-lime": the bench's oracle checked against the reference
# tool. LiME itself (built for this kernel) dumps memory straight onto the
# second NVMe disk; the host then applies the same checks as to a capture
# (ranges = iomem System RAM, tokens found, Volatility banner), so a failure
# of those checks on our capture cannot be blamed on the checks.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_block iomem cat /proc/iomem
fv_plant_tokens || { fv_fail "cannot plant the memory tokens"; exit 1; }
t0=$(date +%s)
fv_block insmod-lime insmod /fv/lime.ko "path=/dev/$VOLUME_DEV" format=lime || fv_fail "insmod lime.ko failed"
fv_result lime-seconds "$(($(date +%s) - t0))"
sync
