# shellcheck shell=sh
# Scenario "break-glass" (issue 23): the responder's procedure of
# docs/break-glass.md, its commands as written (extracted by the host into
# /fv/break-glass.sh), run in a shell on an instance with only the forensics
# volume attached: no SSM agent, no documents. Capture's last line, with the
# digests, leaves the guest on the console, as it would on the responder's
# terminal; the host then verifies the capture against them.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
[ -s /fv/break-glass.sh ] || { fv_fail "no /fv/break-glass.sh from the host"; exit 1; }
fv_record_state before-mount
# What the responder has: a root shell and the volume. No SSM document's
# script is in the guest, and the agent's directory holds nothing.
fv_result ssm-files "$(find /fv/ssm /var/lib/amazon/ssm -type f 2>/dev/null | tr '\n' ' ')"
cd / || exit 1
fv_block break-glass sh /fv/break-glass.sh
rc=$?
fv_result break-glass-rc "$rc"
fv_result after-unmount-mountpoint "$(fv_volume_mountpoint)"
fv_block run-forensics-volume ls -la /run/forensics-volume
fv_record_state after-unmount
[ "$rc" = 0 ] || fv_fail "the break-glass procedure failed (exit $rc)"
[ "$rc" = 0 ]
