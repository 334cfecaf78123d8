# shellcheck shell=bash
# Host side of the bench's scenarios: prepare the disks and the guest's
# overlay, boot, read the evidence back from the volume image, check it.

FV_VM_WORK=${FV_VM_WORK:-$FV_ROOT/tests/vm/work}
RESULTS=$FV_VM_DIR/host/results.py

list_scenarios() {
	cat <<'LIST'
boot               bench smoke test: guest boots, both NVMe disks, real /proc/kcore
capture            mount, capture (source kcore), unmount documents; full evidence checks
lime               the same with capture --source lime-module (LiME built for the guest kernel)
aarch64            the capture scenario on an aarch64 guest with the aarch64 binaries
fail-wrong-id      mount document given another volume ID: fails clearly, nothing mounted
fail-bad-marker    volume whose marker is wrong: refused and left unmounted
fail-too-small     forensics volume too small for the capture: partial image that verifies
fail-busy-unmount  unmount refused while a process holds a file on the volume, then succeeds
LIST
}

# --- bookkeeping -----------------------------------------------------------

# new_workdir NAME: a fresh work directory for the scenario; sets WORK.
new_workdir() {
	WORK=$FV_VM_WORK/$1
	rm -rf "$WORK"
	mkdir -p "$WORK/overlay/fv/ssm"
	: >"$WORK/checks"
	CHECK_FAILS=0
}

# check NAME OK-CONDITION-STATUS DETAIL: record one check.
check() {
	local name=$1 ok=$2 detail=${3:-}
	if [ "$ok" = 0 ]; then
		printf 'PASS  %-34s %s\n' "$name" "$detail" | tee -a "$WORK/checks" >&2
	else
		printf 'FAIL  %-34s %s\n' "$name" "$detail" | tee -a "$WORK/checks" >&2
		CHECK_FAILS=$((CHECK_FAILS + 1))
	fi
}

# expect NAME CMD...: check that CMD succeeds.
expect() {
	local name=$1
	shift
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	check "$name" "$rc" "$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ' | cut -c1-160)"
}

finish_checks() {
	local n
	n=$(wc -l <"$WORK/checks")
	[ "$n" -gt 0 ] || die "scenario $1 made no checks"
	if [ "$CHECK_FAILS" -ne 0 ]; then
		die "scenario $1: $CHECK_FAILS of $n checks failed (details above; work dir $WORK)"
	fi
	log "scenario $1: all $n checks passed ($(($(date +%s) - SCENARIO_T0)) s; work dir $WORK)"
}

res() { python3 "$RESULTS" "$WORK/console.log" get "$1"; }
res_block() { python3 "$RESULTS" "$WORK/console.log" block "$1"; }

# --- disks -------------------------------------------------------------------

# make_suspect_image: the suspect's root disk, with the page-cache token in
# /evidence/secret.txt; sets PAGE_TOKEN. Made without lazy init so that the
# kernel does not write to it by itself after mounting.
make_suspect_image() {
	local tree=$WORK/suspect-tree
	PAGE_TOKEN=FVPAGE-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$tree/evidence" "$tree/tmp" "$tree/etc" "$tree/home/admin"
	chmod 1777 "$tree/tmp"
	printf '%s\n' "$PAGE_TOKEN" >"$tree/evidence/secret.txt"
	echo suspect-instance >"$tree/etc/hostname"
	head -c 1048576 /dev/urandom >"$tree/home/admin/data.bin"
	rm -f "$WORK/suspect.img"
	mkfs.ext4 -q -F -L suspect-root -E lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0 \
		-d "$tree" "$WORK/suspect.img" 64M || die "mkfs.ext4 of the suspect disk failed"
	rm -rf "$tree"
}

# prepare_volume SIZE_MIB: copy the forensics volume image (never modify
# dist's) and extend it as the runbook does (a volume larger than the image).
prepare_volume() {
	local size=$1 img=${FV_VOLUME_IMG:-$FV_DIST/forensics-volume.img}
	[ -s "$img" ] || die "no forensics volume image at $img: run ./build.sh first (or set FV_VOLUME_IMG)"
	cp --sparse=always "$img" "$WORK/volume.img"
	if [ "$size" -gt 0 ]; then
		truncate -s "${size}M" "$WORK/volume.img"
	fi
}

write_run_env() {
	cat >"$WORK/overlay/fv/run.env" <<ENV
FV_SUSPECT_SERIAL=${FV_SUSPECT_VOLUME_ID/-/}
FV_VOLUME_SERIAL=${FV_VOLUME_ID/-/}
FV_VOLUME_ID=$FV_VOLUME_ID
ENV
}

boot_guest() {
	local arch=$1 scenario=$2 tmo=$3 mem=${4:-512}
	build_base_initramfs "$arch"
	write_run_env
	pack_overlay "$WORK/overlay" "$WORK/overlay.cpio.gz"
	cat "$BASE_INITRAMFS" "$WORK/overlay.cpio.gz" >"$WORK/initramfs.cpio.gz"
	local t0
	t0=$(date +%s)
	run_vm "$arch" "$WORK/initramfs.cpio.gz" "$WORK/volume.img" "$WORK/suspect.img" "$scenario" \
		"$WORK/console.log" "$tmo" "$mem"
	GUEST_SECONDS=$(($(date +%s) - t0))
	log "guest finished in ${GUEST_SECONDS}s"
	local fails
	fails=$(python3 "$RESULTS" "$WORK/console.log" fails)
	[ -z "$fails" ] || log "guest reported: $fails"
}

# --- scenarios ---------------------------------------------------------------

scenario_boot() {
	make_suspect_image
	rm -f "$WORK/volume.img"
	mkfs.ext4 -q -F -L FORENSICS "$WORK/volume.img" 32M
	boot_guest x86_64 boot 120 256
	local rc
	rc=$(python3 "$RESULTS" "$WORK/console.log" fails)
	check guest-ran-clean "$([ -z "$rc" ] && echo 0 || echo 1)" "$rc"
	check kcore-present "$([ -n "$(res kcore-size)" ] && echo 0 || echo 1)" "kcore size $(res kcore-size || true)"
	check volume-model "$([ "$(res volume-model)" = "$FV_QEMU_NVME_MODEL" ] && echo 0 || echo 1)" "$(res volume-model || true)"
}

run_scenario() {
	local name=$1 fn
	fn=scenario_${name//-/_}
	declare -F "$fn" >/dev/null || die "unknown scenario '$name' (bench.sh list)"
	SCENARIO_T0=$(date +%s)
	new_workdir "$name"
	log "scenario $name: start (work dir $WORK)"
	"$fn"
	finish_checks "$name"
}
