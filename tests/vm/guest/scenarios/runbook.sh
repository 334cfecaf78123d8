# shellcheck shell=sh
# Scenario "runbook": the guest is the instance of a whole runbook run. The
# forensics volume is not attached at boot: the host hot-plugs it (QMP
# device_add on a PCIe root port) when the engine runs AttachVolume, and
# unplugs it on DetachVolume. The guest plants the memory tokens, then serves
# the host's aws:runCommand requests through the agent stand-in (agent.sh)
# on ttyS1 until the host says it is done; the host asks for observations
# (written sectors, page cache, where the volume is mounted) around each
# command, attach and detach.
# shellcheck source=SCRIPTDIR/lib.sh
. /fv/scenarios/lib.sh
# shellcheck source=SCRIPTDIR/../agent.sh
. /fv/agent.sh

# fv_find_serial SERIAL: the NVMe namespace with that serial, now (no wait).
fv_find_serial() {
	for d in /sys/block/nvme*n*; do
		case ${d##*/} in nvme*c*n*) continue ;; esac # hidden multipath path node
		[ -e "$d/device/serial" ] || continue
		[ "$(sed 's/[[:space:]]*$//' "$d/device/serial")" = "$1" ] && basename "$d" && return 0
	done
	return 1
}

# fv_agent_observe LABEL [SERIAL]: the bench's observation hook (agent.sh).
# [PREFIX]after-attach waits for the hot-plugged namespace to appear,
# [PREFIX]after-detach for it to go (each at most 20 s), and reports how long
# that took.
fv_agent_observe() {
	label=$1 serial=$2
	if [ -n "$serial" ]; then
		t0=$(date +%s)
		i=0
		case $label in
		*after-attach)
			until VOLUME_DEV=$(fv_find_serial "$serial"); do
				i=$((i + 1))
				[ $i -ge 100 ] && break
				sleep 0.2
			done
			fv_result "$label-dev" "${VOLUME_DEV:-}"
			fv_result "$label-seconds" "$(($(date +%s) - t0))"
			[ -n "$VOLUME_DEV" ] && fv_result "$label-model" "$(sed "s/[[:space:]]*$//" "/sys/block/$VOLUME_DEV/device/model")"
			;;
		*after-detach)
			while fv_find_serial "$serial" >/dev/null; do
				i=$((i + 1))
				[ $i -ge 100 ] && break
				sleep 0.2
			done
			fv_result "$label-still-present" "$(fv_find_serial "$serial" || true)"
			fv_result "$label-seconds" "$(($(date +%s) - t0))"
			;;
		*) VOLUME_DEV=$(fv_find_serial "$serial") || VOLUME_DEV='' ;;
		esac
	fi
	fv_record_state "$label"
	mp=''
	if [ -n "${VOLUME_DEV:-}" ] && [ -e "/sys/block/$VOLUME_DEV" ]; then
		mp=$(fv_volume_mountpoint)
		fv_result "$label-volume-written" "$(fv_written_sectors "$VOLUME_DEV")"
	fi
	fv_result "$label-mountpoint" "$mp"
	fv_result "$label-nvme" "$(cd /sys/block && echo nvme*)"
}

fv_block iomem cat /proc/iomem
fv_plant_tokens || { fv_fail "cannot plant the memory tokens"; exit 1; }
fv_block pci-before cat /proc/bus/pci/devices
fv_agent_serve /dev/ttyS1 || exit 1
fv_block dmesg sh -c 'dmesg | tail -n 60'
