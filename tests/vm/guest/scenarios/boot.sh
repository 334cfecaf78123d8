# shellcheck shell=sh
# Scenario "boot": the bench's own smoke test (devices, modules, kcore).
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_block iomem cat /proc/iomem
fv_result kcore-size "$(stat -c %s /proc/kcore)"
fv_block mounts cat /proc/mounts
fv_plant_tokens || fv_fail "cannot plant tokens"
fv_record_state before
