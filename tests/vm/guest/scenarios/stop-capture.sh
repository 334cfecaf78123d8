# shellcheck shell=sh
# Scenario "stop-capture" (issue 12): stopping a capture early the documented
# way. The capture document runs (in the background, as the agent would run
# it while the responder acts); once the capture has recorded its PID on the
# volume, Forensics-StopCapture runs, then the capture document must end with
# a finalized partial image (exit 20), and the volume unmounts cleanly.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_block iomem cat /proc/iomem
fv_record_state before-mount
fv_ssm mount 300 || { fv_fail "the mount document failed"; exit 1; }
mp=$(fv_volume_mountpoint)
fv_result mountpoint "$mp"
# The capture document's output goes to a file until it ends, so that its
# console block does not interleave with the stop document's.
# (Not $d: fv_ssm sets that.)
cd_=/var/lib/amazon/ssm/capture
mkdir -p "$cd_"
cp /fv/ssm/capture.sh "$cd_/_script.sh"
t0=$(date +%s)
(cd "$cd_" && FV_TEST_ACCEPT_NVME_MODEL='QEMU NVMe Ctrl' exec timeout 1200 sh "$cd_/_script.sh" </dev/null >"$cd_/out" 2>&1) &
cap=$!
i=0
until [ -s "$mp/logs/capture.pid" ]; do
	i=$((i + 1))
	[ $i -ge 300 ] && break
	sleep 0.1
done
fv_result capture-pid-file "$(cat "$mp/logs/capture.pid" 2>/dev/null)"
# Let it write some frames first.
sleep 2
fv_result capture-running-before-stop "$(kill -0 "$cap" 2>/dev/null && echo yes || echo no)"
fv_ssm stop 300
wait "$cap"
crc=$?
echo "@@FV-BEGIN ssm-capture"
cat "$cd_/out"
echo "@@FV-END ssm-capture rc=$crc"
fv_result ssm-capture-rc "$crc"
fv_result ssm-capture-seconds "$(($(date +%s) - t0))"
fv_result pid-file-after "$(ls "$mp/logs/capture.pid" 2>/dev/null)"
fv_ssm unmount 300
fv_result after-unmount-mountpoint "$(fv_volume_mountpoint)"
fv_record_state after-unmount
