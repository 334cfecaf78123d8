#!/usr/bin/env bash
# tests/vm/demo.sh: the whole flow, told as it goes (what `./build.sh demo`
# runs after building dist/). A qemu guest running Debian's kernel stands in
# for a breached EC2 instance; dist/forensics-volume.img is attached to it as
# an NVMe device whose serial is an EBS volume ID, exactly as on Nitro. The
# three SSM Command documents run in the guest, unchanged, in order; then the
# evidence is read back from the volume image and checked as an analyst would.
#
# Needs root on Debian (it installs qemu and the rest itself, and says so).
# Environment: FV_DIST (default dist/), FV_CACHE (downloads, default
# /var/cache/forensics-volume), FV_VM_WORK (default tests/vm/work).
# Exit status 0 only when every check passed.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/host/scenarios.sh
. "$FV_VM_DIR/host/scenarios.sh"

STEP=0
T_STEP=$(date +%s)
T_ALL=$T_STEP
bold() { if [ -t 2 ]; then printf '\033[1m%s\033[0m\n' "$*" >&2; else printf '%s\n' "$*" >&2; fi; }
step() {
	STEP=$((STEP + 1))
	T_STEP=$(date +%s)
	bold ""
	bold "== Step $STEP: $*"
}
said() { printf '   %s\n' "$@" >&2; }
took() { said "($(($(date +%s) - T_STEP)) s)"; }

need_root
bench_lock
bold "forensics-volume demo: mount -> capture -> unmount on a stand-in EC2 instance"
said "dist: $FV_DIST" "cache: $VMCACHE (downloads are kept; the next run is faster)"

step "Tools on this machine"
said "qemu (x86_64 guest, TCG or KVM where it really works), busybox-static, e2fsprogs, zstd, python3;" \
	"anything missing is installed now with apt-get --no-install-recommends."
host_packages
took

step "The stand-in instance: Debian's own kernel, a busybox userland"
fetch_kernel x86_64
said "kernel $KVER, from Debian's linux-image-amd64 (apt-get download + dpkg-deb -x: nothing installed here)"
build_base_initramfs x86_64
said "initramfs: busybox-static + the nvme and ext4 modules, /init = tests/vm/guest/init"
took

SCENARIO_T0=$(date +%s)
new_workdir demo
step "The disks: the suspect's root volume and the forensics volume"
make_suspect_image
said "suspect root disk: $WORK/suspect.img (ext4), NVMe serial ${FV_SUSPECT_VOLUME_ID/-/}, the EBS ID $FV_SUSPECT_VOLUME_ID;" \
	"the guest mounts it at /suspect with /tmp on it, keeps a file open there, and reads" \
	"/evidence/secret.txt into its page cache: that file holds $PAGE_TOKEN"
prepare_volume 1536
said "forensics volume: a copy of $FV_DIST/forensics-volume.img grown to 1.5 GiB (as the runbook creates it larger" \
	"than the image; mount-helper grows the filesystem online), NVMe serial ${FV_VOLUME_ID/-/} = $FV_VOLUME_ID"
took

step "The SSM documents, as the agent would run them"
render_all_ssm kcore
said "each document's runCommand lines, with {{ Parameters }} substituted exactly as SSM does, are the" \
	"scripts the guest runs with sh: Forensics-MountVolume, Forensics-CaptureMemory (Source=kcore," \
	"CompressionLevel=1), Forensics-UnmountVolume. The test-only override FV_TEST_ACCEPT_NVME_MODEL='$FV_QEMU_NVME_MODEL'" \
	"is set in the guest because qemu's NVMe model is not 'Amazon Elastic Block Store'."
took

step "Boot the instance and run the three documents (live output below)"
said "the guest also starts a process whose heap holds a random FVHEAP-... token, and records the suspect" \
	"disk's written sectors and the page cache before and after"
FV_VM_VERBOSE=story boot_guest x86_64 capture 1500 512
said "guest ran ${GUEST_SECONDS}s: mount $(res ssm-mount-seconds || echo '?') s (exit $(rc_of mount)), capture $(res ssm-capture-seconds || echo '?') s (exit $(rc_of capture)), unmount $(res ssm-unmount-seconds || echo '?') s (exit $(rc_of unmount))"
took

step "Did the flow leave the suspect alone?"
check_guest_flow
check_footprint
took

step "The evidence, read back from the volume image (debugfs, no mount) and checked"
check_evidence x86_64 kcore
took

step "Analysable as it is: capture symbols, then Volatility 3's linux.pslist with nothing else"
said "the guest planted a process with a random name before the capture: $(res analysis-process || echo '?') (name, PID)" \
	"capture symbols turns the kernel's own BTF and kallsyms, saved in context/, into a Volatility symbol table"
if [ -n "${CAPDIR:-}" ]; then
	symbols_for_capture
	sed 's/^/   │ /' "$WORK/symbols.txt" >&2
	ensure_volatility "$VOLATILITY_VERSION"
	vol_plugin "$VOLATILITY_VERSION" linux.pslist
	read -r demo_name demo_pid <<<"$(res analysis-process || echo '? ?')"
	said "vol -s $WORK/symbols -f $WORK/memory.lime linux.pslist   (Volatility $VOLATILITY_VERSION, only our table)"
	head -n 3 "$WORK/vol-$VOLATILITY_VERSION-linux.pslist.txt" | sed 's/^/   │ /' >&2
	grep -w -- "$demo_name" "$WORK/vol-$VOLATILITY_VERSION-linux.pslist.txt" | sed 's/^/   │ /' >&2 || true
	check vol-pslist-planted-process "$(ok_if line_has "$WORK/vol-$VOLATILITY_VERSION-linux.pslist.txt" "$demo_pid" "$demo_name")" \
		"$demo_name pid $demo_pid among $(grep -c . "$WORK/vol-$VOLATILITY_VERSION-linux.pslist.txt") lines"
	said "no extraction needed: the volume's Volatility layer (volatility/ in the repo and on the volume, with the" \
		"Python package zstandard) reads memory.lime.zst through its seek table, one 1 MiB frame at a time"
	vol_plugin "$VOLATILITY_VERSION" linux.pslist in-place
	said "vol -p volatility -s $WORK/symbols -f $CAPDIR/memory.lime.zst linux.pslist   ($VOL_SECONDS s)"
	grep -w -- "$demo_name" "$WORK/vol-$VOLATILITY_VERSION-linux.pslist-zst.txt" | sed 's/^/   │ /' >&2 || true
	check vol-pslist-in-place-planted-process "$(ok_if line_has "$WORK/vol-$VOLATILITY_VERSION-linux.pslist-zst.txt" "$demo_pid" "$demo_name")" \
		"memory.lime.zst read in place: $demo_name pid $demo_pid among $(grep -c . "$WORK/vol-$VOLATILITY_VERSION-linux.pslist-zst.txt") lines"
fi
took

bold ""
if [ "$CHECK_FAILS" -eq 0 ]; then
	bold "== All $(wc -l <"$WORK/checks") checks passed in $(($(date +%s) - T_ALL)) s"
else
	bold "== $CHECK_FAILS of $(wc -l <"$WORK/checks") checks FAILED (see above; work dir $WORK)"
fi
if [ -n "${CAPDIR:-}" ] && [ -f "$CAPDIR/manifest.json" ]; then
	said "evidence: $CAPDIR" \
		"  memory.lime.zst       $(stat -c %s "$CAPDIR/memory.lime.zst" 2>/dev/null || echo '?') bytes (seekable zstd of the LiME stream)" \
		"  memory.lime.zst.sha256, manifest.json (hashes, ranges, host, timing, status $(manifest_field status || echo '?'))" \
		"  decompressed here:    $WORK/memory.lime ($(stat -c %s "$WORK/memory.lime" 2>/dev/null || echo '?') bytes)"
	bold ""
	bold "What an analyst does next (on the evidence snapshot's volume, on an analysis host):"
	cap=$FV_DIST/volume/bin/x86_64/capture
	said "mount-helper mount --evidence --volume-id vol-...   # the evidence snapshot's volume, strictly read-only" \
		"$cap verify '$CAPDIR'        # every hash, the seek table, the manifest" \
		"$cap info '$CAPDIR'          # who, what, when, how much" \
		"$cap symbols '$CAPDIR' -o symbols/linux.json.xz   # the kernel's own symbol table (BTF + kallsyms)" \
		"vol -p volume/volatility -s symbols -f '$CAPDIR/memory.lime.zst' linux.pslist   # in place (pip install zstandard); or lsmod, sockstat, bash, ..." \
		"$cap extract '$CAPDIR' -o memory.lime   # plain LiME (same bytes as zstd -d), for tools other than Volatility 3" \
		"python3 -m json.tool '$CAPDIR/manifest.json' | less   # chain of custody: who, when, what, every hash" \
		"(docs/analyst.md has the rest)"
fi
finish_checks demo
