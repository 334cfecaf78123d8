#!/usr/bin/env bash
# The VM test bench (issue 7): boots Debian's kernel under qemu as a stand-in
# for a breached EC2 instance and runs the forensics volume's rendered SSM
# documents in it, then checks the evidence on the host.
#
#   tests/vm/bench.sh setup [x86_64|aarch64|lime|volatility]...
#   tests/vm/bench.sh run SCENARIO        (see `scenarios` below)
#   tests/vm/bench.sh list
#
# Inputs: $FV_DIST (default dist/) with forensics-volume.img, volume/ and
# deploy/; or FV_VOLUME_IMG / FV_SSM_DIR to point elsewhere.
# Output: $FV_VM_WORK/<scenario>/ (default tests/vm/work), with the console
# log, the evidence read back from the volume image and a summary.
# Exit status 0 only when every check of the scenario passed.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/host/scenarios.sh
. "$FV_VM_DIR/host/scenarios.sh"

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
setup)
	need_root
	bench_lock
	host_packages
	[ $# -gt 0 ] || set -- x86_64
	for what in "$@"; do
		case $what in
		x86_64 | aarch64) build_base_initramfs "$what" ;;
		lime) build_lime x86_64 ;;
		volatility) ensure_volatility "$VOLATILITY_VERSION" && ensure_volatility "$VOLATILITY_OLDEST" ;;
		*) die "unknown setup item '$what'" ;;
		esac
	done
	;;
run)
	[ $# -eq 1 ] || usage
	need_root
	bench_lock
	host_packages
	run_scenario "$1"
	;;
list) list_scenarios ;;
*) usage ;;
esac
