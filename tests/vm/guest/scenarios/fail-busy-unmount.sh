# shellcheck shell=sh
# Drill "fail-busy-unmount": a process holds a file on the mounted forensics
# volume. The unmount document must refuse and name the process, leave the
# volume mounted, and succeed once the process has exited.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
fv_ssm mount 300 || { fv_fail "the mount document failed"; exit 1; }
mp=$(fv_volume_mountpoint)
fv_result mountpoint "$mp"
# The holder never forks (a child would inherit fd 3 and outlive it): it
# blocks opening a FIFO that nobody writes to.
mkfifo /run/fv-holder.fifo
sh -c 'exec 3<"$1"; read -r _ <"$2"' fv-holder "$mp/forensics-volume.json" /run/fv-holder.fifo &
holder=$!
sleep 1
fv_result holder-pid "$holder"
fv_ssm unmount-busy 120 && fv_fail "the unmount document unmounted a volume in use"
fv_result busy-mountpoint "$(fv_volume_mountpoint)"
kill "$holder"
wait "$holder" 2>/dev/null
fv_ssm unmount 120 || fv_fail "the unmount document failed once the volume was free"
fv_result after-unmount-mountpoint "$(fv_volume_mountpoint)"
true
