# shellcheck shell=bash
# Host side of the bench's scenarios: prepare the disks and the guest's
# overlay, boot, read the evidence back from the volume image, check it.

FV_VM_WORK=${FV_VM_WORK:-$FV_ROOT/tests/vm/work}
RESULTS=$FV_VM_DIR/host/results.py
# shellcheck source=SCRIPTDIR/analysis.sh
. "$FV_VM_DIR/host/analysis.sh"

list_scenarios() {
	cat <<'LIST'
boot               bench smoke test: guest boots, both NVMe disks, real /proc/kcore
boot-aarch64       the same on the aarch64 guest
reference-lime     the checks' oracle against LiME itself (insmod lime.ko onto a raw disk)
capture            mount, capture (source kcore), unmount documents; full evidence checks
lime               the same with capture --source lime-module (LiME built for the guest kernel)
aarch64            the capture scenario on an aarch64 guest with the aarch64 binaries
fail-wrong-id      mount document given another volume ID: fails clearly, nothing mounted
fail-bad-marker    volume whose marker is wrong: refused and left unmounted
fail-too-small     forensics volume too small for the capture: partial image that verifies
fail-busy-unmount  unmount refused while a process holds a file on the volume, then succeeds
runbook            the whole runbook (local Automation engine over moto), the guest as the instance, volume hot-plugged
stop-capture       Forensics-StopCapture during a capture: a finalized partial image, then a clean unmount
hotplug            the three documents with the volume hot-plugged and unplugged over QMP (no engine)
break-glass        docs/break-glass.md's commands as written, no SSM; verify --expect-… ANCHORED on the host
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
	local n secs
	n=$(wc -l <"$WORK/checks")
	secs=$(($(date +%s) - SCENARIO_T0))
	[ "$n" -gt 0 ] || die "scenario $1 made no checks"
	printf '%s %s %ss (guest %ss) %s checks, %s failed %s\n' "$(date -u +%FT%TZ)" "$1" "$secs" \
		"${GUEST_SECONDS:-?}" "$n" "$CHECK_FAILS" "${IMAGE_SUMMARY:-}" >>"$FV_VM_WORK/timings.txt"
	if [ "$CHECK_FAILS" -ne 0 ]; then
		die "scenario $1: $CHECK_FAILS of $n checks failed (details above; work dir $WORK)"
	fi
	log "scenario $1: all $n checks passed ($(($(date +%s) - SCENARIO_T0)) s; work dir $WORK)"
}

res() { python3 "$RESULTS" "$WORK/console.log" get "$1"; }
# res_empty KEY: the guest reported KEY, with an empty value (e.g. "no mountpoint").
res_empty() {
	local v
	v=$(res "$1") || return 1
	[ -z "$v" ]
}
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

# --- SSM documents -----------------------------------------------------------

# ssm_doc NAME: the rendered Command document whose file name holds NAME
# (MountVolume, CaptureMemory, UnmountVolume) under $FV_SSM_DIR.
ssm_doc() {
	local dir=${FV_SSM_DIR:-$FV_DIST/deploy/ssm} f
	[ -d "$dir" ] || die "no rendered SSM documents at $dir (deploy/render.sh via ./build.sh; or set FV_SSM_DIR)"
	f=$(find "$dir" -maxdepth 1 -type f \( -name "Forensics-$1.json" -o -name "Forensics-$1.yaml" -o -name "Forensics-$1.yml" \) | LC_ALL=C sort | head -n1)
	[ -n "$f" ] || die "no rendered SSM document Forensics-$1.{json,yaml} in $dir"
	echo "$f"
}

# render_ssm NAME DOC-KEYWORD Param=value...: extract the document's script,
# substituting parameters as SSM does, into the guest overlay as /fv/ssm/NAME.sh.
# Values are offered by name; those the document does not have are not passed
# (SSM would reject them), and the document's defaults fill in the rest.
render_ssm() {
	local name=$1 doc pass=() kv known
	doc=$(ssm_doc "$2")
	shift 2
	known=$(python3 "$FV_VM_DIR/host/ssm_extract.py" --params "$doc" | awk '{print $1}') ||
		die "cannot read the parameters of $doc"
	for kv in "$@"; do
		if grep -qx "${kv%%=*}" <<<"$known"; then pass+=("$kv"); fi
	done
	python3 "$FV_VM_DIR/host/ssm_extract.py" "$doc" "${pass[@]}" >"$WORK/overlay/fv/ssm/$name.sh" ||
		die "cannot extract the script of $doc"
	log "SSM $name: $(basename "$doc") with ${pass[*]:-defaults only}"
}

# The parameters the bench offers to every document (by name; see render_ssm).
ssm_params() {
	local source=$1
	echo "VolumeId=$FV_VOLUME_ID"
	echo "CaseId=VM-BENCH-$(date -u +%Y%m%d)"
	echo "Examiner=fv-vm-bench"
	echo "Note=qemu guest standing in for an EC2 instance"
	echo "Source=$source"
	echo "Level=1"
	echo "CompressionLevel=1"
	echo "Imds=false"
	echo "UseImds=false"
	echo "ExecutionTimeout=1200"
}

render_all_ssm() {
	local source=$1 params=()
	mapfile -t params < <(ssm_params "$source")
	render_ssm mount MountVolume "${params[@]}"
	render_ssm capture CaptureMemory "${params[@]}"
	render_ssm unmount UnmountVolume "${params[@]}"
}

# --- evidence checks ---------------------------------------------------------

host_capture_bin() {
	local b=$FV_DIST/volume/bin/x86_64/capture
	[ -x "$b" ] || die "no host capture binary at $b (./build.sh)"
	echo "$b"
}

# read_back: copy captures/ out of the volume image without mounting it;
# sets CAPDIR to the one capture directory.
read_back() {
	rm -rf "$WORK/evidence"
	mkdir -p "$WORK/evidence"
	debugfs -R "rdump /captures $WORK/evidence" "$WORK/volume.img" >"$WORK/debugfs.log" 2>&1 ||
		die "debugfs rdump of /captures failed (see $WORK/debugfs.log)"
	local dirs
	dirs=$(find "$WORK/evidence/captures" -mindepth 1 -maxdepth 1 -type d | LC_ALL=C sort)
	check one-capture-directory "$([ "$(printf '%s\n' "$dirs" | grep -c .)" = 1 ] && echo 0 || echo 1)" \
		"$(printf '%s' "$dirs" | sed "s|$WORK/evidence/||" | tr '\n' ' ')"
	CAPDIR=$(printf '%s\n' "$dirs" | head -n1)
	[ -n "$CAPDIR" ] || return 1
}

manifest_field() {
	python3 -c 'import json,sys
m=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    m=m.get(k) if isinstance(m, dict) else None
print(m if not isinstance(m,(dict,list)) else json.dumps(m))' "$CAPDIR/manifest.json" "$1"
}

# check_guest_flow: the three documents ran and succeeded, nothing left mounted.
check_guest_flow() {
	local fails
	fails=$(python3 "$RESULTS" "$WORK/console.log" fails)
	check guest-scenario-clean "$([ -z "$fails" ] && echo 0 || echo 1)" "$fails"
	local d
	for d in mount capture unmount; do
		check "ssm-$d-exit-0" "$([ "$(res "ssm-$d-rc" || echo missing)" = 0 ] && echo 0 || echo 1)" \
			"exit $(res "ssm-$d-rc" || echo missing), $(res "ssm-$d-seconds" || echo '?') s; $(res_block "ssm-$d" 2>/dev/null | tail -n1 | cut -c1-120)"
	done
	# The console and ListCommandInvocations keep only the first 2,500
	# characters of a command's output: the summary printed last must fit.
	local n
	for d in mount capture unmount; do
		n=$(res_block "ssm-$d" | wc -c)
		check "ssm-$d-output-under-2500-chars" "$(ok_if [ "$n" -le 2500 ])" "$n characters"
	done
	check volume-unmounted-at-end "$(ok_if res_empty after-unmount-mountpoint)" \
		"mounted at '$(res after-unmount-mountpoint || true)'"
}

# check_footprint: suspect disk untouched; page cache did not flood.
check_footprint() {
	local w0 w1 c0 c1 grow
	w0=$(res before-mount-suspect-written || echo x)
	w1=$(res after-unmount-suspect-written || echo y)
	check suspect-written-sectors-unchanged "$(ok_if same_number "$w0" "$w1")" "before mount $w0, after unmount $w1"
	c0=$(res before-capture-cached-kib || echo 0)
	c1=$(res after-capture-cached-kib || echo 999999999)
	grow=$((c1 - c0))
	check page-cache-growth-under-64MiB "$([ "$grow" -lt 65536 ] && echo 0 || echo 1)" \
		"Cached $c0 KiB -> $c1 KiB (+$((grow / 1024)) MiB)"
}

# check_evidence ARCH EXPECTED-SOURCE: the capture on the volume image.
check_evidence() {
	local arch=$1 want_source=$2 cap
	expect volume-e2fsck-clean e2fsck -fn "$WORK/volume.img"
	read_back || return 0
	cap=$(host_capture_bin)
	expect capture-verify "$cap" verify "$CAPDIR"
	expect sha256-sidecar sh -c "cd '$CAPDIR' && sha256sum -c memory.lime.zst.sha256"
	local status source
	status=$(manifest_field status || true)
	source=$(manifest_field source.kind || true)
	check manifest-status-complete "$([ "$status" = complete ] && echo 0 || echo 1)" "status '$status'"
	check "manifest-source-$want_source" "$(printf '%s' "$source" | grep -q "$want_source" && echo 0 || echo 1)" "source '$(printf '%s' "$source" | cut -c1-100)'"
	if [ "$want_source" = lime-module ]; then
		# H2: the module wrote into a root-only FIFO under /run, never a TCP
		# port another local process could connect to first.
		local detail
		detail=$(manifest_field source.detail || true)
		check lime-module-through-a-fifo "$(printf '%s' "$detail" | grep -q 'path=/run/fv-lime\.[0-9.]*/lime\.fifo format=lime' && ! printf '%s' "$detail" | grep -q 'tcp:' && echo 0 || echo 1)" "$(printf '%s' "$detail" | cut -c1-140)"
	fi
	# S12: capture.sh passed the run's volume ID, and capture accepted the
	# output only on that NVMe device (qemu's model through the test
	# override, which capture reports).
	local cmdline
	cmdline=$(manifest_field command_line || true)
	check capture-tied-to-volume-id "$(printf '%s' "$cmdline" | grep -qF "\"--volume-id\", \"$FV_VOLUME_ID\"" && echo 0 || echo 1)" \
		"$(printf '%s' "$cmdline" | grep -o '"--volume-id", "[^"]*"' || echo 'no --volume-id')"
	check capture-says-test-model-override "$(manifest_field warnings | grep -q 'TEST OVERRIDE' && echo 0 || echo 1)" \
		"$(manifest_field warnings | grep -o 'TEST OVERRIDE[^"]*' | cut -c1-100 || true)"
	# Every byte of RAM accounted for: a complete capture leaves nothing out.
	check manifest-nothing-omitted "$(ok_if [ "$(manifest_field omitted)" = '[]' ])" "omitted $(manifest_field omitted | cut -c1-80)"
	rm -f "$WORK/memory.lime"
	expect zstd-decompress zstd -q -d "$CAPDIR/memory.lime.zst" -o "$WORK/memory.lime"
	local lime_sha
	lime_sha=$(sha256sum "$WORK/memory.lime" | cut -d' ' -f1)
	check lime-sha256-matches-manifest "$(ok_if [ "$lime_sha" = "$(manifest_field image.lime_sha256)" ])" "${lime_sha:0:16}..."
	# The analyst's own extract gives the same stream as plain zstd -d.
	rm -f "$WORK/extracted.lime"
	expect capture-extract "$cap" extract "$CAPDIR" -o "$WORK/extracted.lime"
	expect extract-equals-zstd-d cmp "$WORK/extracted.lime" "$WORK/memory.lime"
	rm -f "$WORK/extracted.lime"
	check_lime_content
	IMAGE_SUMMARY="$(stat -c %s "$WORK/memory.lime") bytes LiME -> $(stat -c %s "$CAPDIR/memory.lime.zst") bytes zst"
	log "image: $IMAGE_SUMMARY"
	echo "image $IMAGE_SUMMARY" >>"$WORK/summary"
}

# ensure_volatility [VERSION]: Volatility 3 from PyPI in a venv in the cache
# (tests/volatility/venv.sh: with jsonschema, so Volatility validates every
# symbol table it loads, and zstandard for the volume's layer that reads
# memory.lime.zst in place); sets VOL and VOL_PY.
ensure_volatility() {
	local version=${1:-$VOLATILITY_VERSION} venv
	ensure_packages python3:python3
	if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
		apt_update_once
		log "installing python3-venv (python3 -m venv for Volatility 3)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >&2 ||
			die "apt-get install python3-venv failed"
	fi
	venv=$(FV_CACHE=$FV_CACHE "$FV_ROOT/tests/volatility/venv.sh" "$version") ||
		die "Volatility 3 $version: tests/volatility/venv.sh failed"
	VOL=$venv/bin/vol
	VOL_PY=$venv/bin/python3
}
# VOLATILITY_VERSION (newest) and VOLATILITY_OLDEST.
# shellcheck source=tests/volatility/versions.sh
. "$FV_ROOT/tests/volatility/versions.sh"

# --- scenarios ---------------------------------------------------------------

scenario_boot() { boot_flow x86_64; }
scenario_boot_aarch64() { boot_flow aarch64; }

boot_flow() {
	make_suspect_image
	rm -f "$WORK/volume.img"
	mkfs.ext4 -q -F -L FORENSICS "$WORK/volume.img" 32M
	boot_guest "$1" boot 180 256
	local rc
	rc=$(python3 "$RESULTS" "$WORK/console.log" fails)
	check guest-ran-clean "$([ -z "$rc" ] && echo 0 || echo 1)" "$rc"
	check kcore-present "$([ -n "$(res kcore-size)" ] && echo 0 || echo 1)" "kcore size $(res kcore-size || true)"
	check volume-model "$([ "$(res volume-model)" = "$FV_QEMU_NVME_MODEL" ] && echo 0 || echo 1)" "$(res volume-model || true)"
}

# capture_flow ARCH SOURCE MEM_MB VOLUME_MIB: the capture scenario's body.
capture_flow() {
	local arch=$1 source=$2 mem=$3 volsize=$4
	make_suspect_image
	prepare_volume "$volsize"
	[ "${LIME_ON_VOLUME:-0}" = 1 ] && place_lime "$WORK/volume.img"
	render_all_ssm "$source"
	boot_guest "$arch" capture 1500 "$mem"
	check_guest_flow
	check_footprint
	check_evidence "$arch" "$source"
}

scenario_capture() {
	# The self-hiding module linux.hidden_modules must find (issue 26).
	build_fvhide x86_64
	cp "$FVHIDE_KO" "$WORK/overlay/fv/fvhide.ko"
	capture_flow x86_64 kcore 512 1536
	check_analysis
}

scenario_lime() {
	build_lime x86_64
	LIME_ON_VOLUME=1 capture_flow x86_64 lime-module 512 1536
	# Another boot of the same kernel: its table must equal the capture
	# scenario's (issue 16), whichever of the two ran first.
	if [ -n "${CAPDIR:-}" ]; then
		symbols_for_capture
		[ -s "$ISF" ] && same_table_across_boots
	fi
}

scenario_aarch64() {
	capture_flow aarch64 kcore 512 1536
	check_symbols_aarch64
}

# check_lime_content: the checks of a LiME stream at $WORK/memory.lime that do
# not depend on our tool (ranges, tokens, Volatility's banner).
check_lime_content() {
	local out rc heap banner
	res_block iomem >"$WORK/iomem.txt"
	out=$(python3 "$FV_VM_DIR/host/lime_check.py" "$WORK/memory.lime" "$WORK/iomem.txt" 2>&1) && rc=0 || rc=$?
	printf '%s\n' "$out" >"$WORK/lime-ranges.txt"
	check lime-ranges-equal-iomem-ram "$rc" "$(printf '%s' "$out" | tail -n1)"
	check page-cache-token-in-image "$(grep -a -q -F "$PAGE_TOKEN" "$WORK/memory.lime" && echo 0 || echo 1)" "$PAGE_TOKEN"
	heap="FVHEAP-$(res heap-suffix || echo missing)"
	local where='' pfn
	if ! grep -a -q -F "$heap" "$WORK/memory.lime"; then
		# What the image holds where the guest saw the token (its heap page's frame).
		for pfn in $(res heap-token-pfns || true); do
			where="$where; $(python3 "$FV_VM_DIR/host/lime_check.py" --page "$WORK/memory.lime" "$pfn" 2>&1 | cut -c1-200)"
		done
	fi
	check heap-token-in-image "$(grep -a -q -F "$heap" "$WORK/memory.lime" && echo 0 || echo 1)" "$heap (heap page frames $(res heap-token-pfns || echo '?'))$where"
	# Negative control: a token of the same shape that never entered the guest.
	local control
	control=FVHEAP-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	check control-token-absent "$(grep -a -q -F "$control" "$WORK/memory.lime" && echo 1 || echo 0)" "$control"
	banner=$(res_block version | head -n1)
	ensure_volatility "$VOLATILITY_VERSION"
	"$VOL" -q -f "$WORK/memory.lime" banners.Banners >"$WORK/volatility-banners.txt" 2>"$WORK/volatility.err" || true
	check volatility-banner-found "$(grep -q -F "${banner:0:60}" "$WORK/volatility-banners.txt" && echo 0 || echo 1)" \
		"$(grep -F -m1 'Linux version' "$WORK/volatility-banners.txt" | cut -c1-110)"
}

scenario_reference_lime() {
	build_lime x86_64
	make_suspect_image
	rm -f "$WORK/volume.img"
	truncate -s 640M "$WORK/volume.img"
	cp "$LIME_KO" "$WORK/overlay/fv/lime.ko"
	boot_guest x86_64 reference-lime 900 512
	local fails
	fails=$(python3 "$RESULTS" "$WORK/console.log" fails)
	check guest-scenario-clean "$(ok_if [ -z "$fails" ])" "$fails; LiME took $(res lime-seconds || echo '?') s"
	expect cut-lime-stream python3 "$FV_VM_DIR/host/lime_check.py" --cut "$WORK/volume.img" "$WORK/memory.lime"
	rm -f "$WORK/volume.img"
	check_lime_content
}

# block_has NAME EXTENDED-REGEX: the guest block NAME's output matches.
block_has() {
	local out
	out=$(res_block "$1") || return 1
	grep -q -i -E -- "$2" <<<"$out"
}
not() { ! "$@"; }
# same_number A B: both are numbers (a result was reported) and equal.
same_number() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" = "$2" ]; }
ok_if() { if "$@"; then echo 0; else echo 1; fi; }
rc_of() { res "ssm-$1-rc" || echo missing; }
nonzero() { [ "$1" != missing ] && [ "$1" != 0 ]; }

scenario_fail_wrong_id() {
	local absent=vol-0fffffffffffffff0 params=()
	make_suspect_image
	prepare_volume 0
	mapfile -t params < <(ssm_params kcore | grep -v '^VolumeId=')
	render_ssm mount-absent MountVolume "VolumeId=$absent" WaitSeconds=5 "${params[@]}"
	render_ssm mount-suspect MountVolume "VolumeId=$FV_SUSPECT_VOLUME_ID" WaitSeconds=5 "${params[@]}"
	boot_guest x86_64 fail-wrong-id 600 256
	local r
	r=$(rc_of mount-absent)
	# Exit codes: deploy/scripts/mount.sh (stage-0) and docs/mount-helper.md.
	check absent-volume-not-found-exit-41 "$(ok_if [ "$r" = 41 ])" "exit $r"
	check absent-volume-message "$(ok_if block_has ssm-mount-absent "$absent.*not found|not found.*$absent")" \
		"$(res_block ssm-mount-absent | grep -i -m1 'not found' | cut -c1-120)"
	r=$(rc_of mount-suspect)
	check suspect-volume-refused-exit-42 "$(ok_if [ "$r" = 42 ])" "exit $r"
	check suspect-volume-message "$(ok_if block_has ssm-mount-suspect 'refus')" \
		"$(res_block ssm-mount-suspect | grep -i -m1 'refus' | cut -c1-120)"
	check nothing-mounted "$(ok_if res_empty volume-mountpoint)" "volume mountpoint '$(res volume-mountpoint || true)'"
	check no-mountpoint-left "$(ok_if not block_has run-forensics-volume 'vol-')" "$(res_block run-forensics-volume | tr '\n' ' ' | cut -c1-120)"
	check suspect-disk-mounted-once "$(ok_if [ "$(res_block mounts | grep -c "^/dev/$(res suspect-dev) ")" = 2 ])" "still at /suspect and /tmp only"
	check volume-not-written "$(ok_if same_number "$(res volume-written)" 0)" "$(res volume-written || true) sectors"
	check suspect-written-sectors-unchanged "$(ok_if same_number "$(res before-suspect-written)" "$(res after-suspect-written)")" \
		"$(res before-suspect-written || true) -> $(res after-suspect-written || true)"
}

scenario_fail_bad_marker() {
	local bad_marker=vol-0bad0000000000001 bad_label=vol-0bad0000000000002 params=() m h0 h1
	make_suspect_image
	prepare_volume 0
	# An altered marker: same file, "toolkit" no longer forensics-volume.
	cp --sparse=always "$WORK/volume.img" "$WORK/bad-marker.img"
	debugfs -R "cat /forensics-volume.json" "$WORK/bad-marker.img" 2>/dev/null |
		sed 's/"toolkit": *"forensics-volume"/"toolkit": "not-the-forensics-volume"/' >"$WORK/marker.json"
	grep -q not-the-forensics-volume "$WORK/marker.json" || die "cannot alter the marker (is forensics-volume.json on the image?)"
	debugfs -w -R "rm /forensics-volume.json" "$WORK/bad-marker.img" >/dev/null 2>&1
	debugfs -w -R "write $WORK/marker.json /forensics-volume.json" "$WORK/bad-marker.img" >/dev/null 2>&1
	# A wrong label.
	cp --sparse=always "$WORK/volume.img" "$WORK/bad-label.img"
	tune2fs -L NOT-FORENSICS "$WORK/bad-label.img" >/dev/null
	for m in bad-marker bad-label; do sha256sum "$WORK/$m.img" | cut -d' ' -f1 >"$WORK/$m.sha256"; done
	mapfile -t params < <(ssm_params kcore | grep -v '^VolumeId=')
	render_ssm mount-bad-marker MountVolume "VolumeId=$bad_marker" WaitSeconds=10 "${params[@]}"
	render_ssm mount-bad-label MountVolume "VolumeId=$bad_label" WaitSeconds=10 "${params[@]}"
	printf 'FV_BAD_MARKER_ID=%s\nFV_BAD_LABEL_ID=%s\n' "$bad_marker" "$bad_label" >"$WORK/overlay/fv/drill.env"
	FV_EXTRA_DISKS="$bad_marker=$WORK/bad-marker.img $bad_label=$WORK/bad-label.img" boot_guest x86_64 fail-bad-marker 600 256
	local r
	local -A want=([bad-marker]=9 [bad-label]=8) # toolkit_unverified, filesystem_mismatch
	for m in bad-marker bad-label; do
		r=$(rc_of "mount-$m")
		check "$m-refused-exit-${want[$m]}" "$(ok_if [ "$r" = "${want[$m]}" ])" \
			"exit $r: $(res_block "ssm-mount-$m" | grep -E -m1 '^ERROR' | cut -c1-110)"
		check "$m-left-unmounted" "$(ok_if res_empty "$m-mounted")" "mounted at '$(res "$m-mounted" || true)'"
		check "$m-not-written" "$(ok_if same_number "$(res "$m-written-before")" "$(res "$m-written-after")")" \
			"$(res "$m-written-before" || true) -> $(res "$m-written-after" || true) sectors"
		h0=$(cat "$WORK/$m.sha256")
		h1=$(sha256sum "$WORK/$m.img" | cut -d' ' -f1)
		check "$m-image-unchanged" "$(ok_if [ "$h0" = "$h1" ])" "sha256 ${h1:0:16}"
	done
	check bad-marker-message "$(ok_if block_has ssm-mount-bad-marker 'toolkit_unverified|marker.*(mismatch|invalid|wrong|not)')" ""
	check bad-label-message "$(ok_if block_has ssm-mount-bad-label 'filesystem_mismatch|label.*(mismatch|wrong|expected|not)')" ""
	check no-mountpoint-left "$(ok_if not block_has run-forensics-volume 'vol-')" "$(res_block run-forensics-volume | tr '\n' ' ' | cut -c1-120)"
}

scenario_fail_too_small() {
	local min_blocks bs
	make_suspect_image
	prepare_volume 0
	# Shrink a copy to its minimum, then leave it FV_SMALL_FREE_MIB of room.
	e2fsck -fy "$WORK/volume.img" >/dev/null 2>&1 || true
	resize2fs -M "$WORK/volume.img" >"$WORK/resize.log" 2>&1 || die "resize2fs -M failed (see $WORK/resize.log)"
	bs=$(dumpe2fs -h "$WORK/volume.img" 2>/dev/null | awk -F: '/^Block size/ {print $2+0}')
	min_blocks=$(dumpe2fs -h "$WORK/volume.img" 2>/dev/null | awk -F: '/^Block count/ {print $2+0}')
	truncate -s $((min_blocks * bs + ${FV_SMALL_FREE_MIB:-96} * 1048576)) "$WORK/volume.img"
	render_all_ssm kcore
	printf 'FV_FILL_MIB=%s\n' "${FV_FILL_MIB:-288}" >"$WORK/overlay/fv/drill.env"
	boot_guest x86_64 fail-too-small 1500 512
	local r
	r=$(rc_of capture)
	# docs/capture.md: 21 = partial, the output file system filled up.
	check capture-partial-exit-21 "$(ok_if [ "$r" = 21 ])" "exit $r: $(res_block ssm-capture | tail -n1 | cut -c1-110)"
	check ssm-unmount-exit-0 "$(ok_if [ "$(rc_of unmount)" = 0 ])" "exit $(rc_of unmount)"
	check volume-unmounted-at-end "$(ok_if res_empty after-unmount-mountpoint)" ""
	check suspect-written-sectors-unchanged "$(ok_if same_number "$(res before-mount-suspect-written)" "$(res after-unmount-suspect-written)")" \
		"$(res before-mount-suspect-written || true) -> $(res after-unmount-suspect-written || true)"
	check_partial_image no_space
}

# check_partial_image CAUSE: the volume image holds one finalized partial
# capture whose manifest names CAUSE (docs/manifest.md partial_reason.cause).
check_partial_image() {
	local cause=$1 status
	expect volume-e2fsck-clean e2fsck -fn "$WORK/volume.img"
	read_back || return 0
	status=$(manifest_field status || true)
	check manifest-status-partial "$(ok_if [ "$status" = partial ])" "status '$status'"
	check "manifest-partial-cause-${cause//_/-}" "$(ok_if [ "$(manifest_field partial_reason.cause)" = "$cause" ])" \
		"cause '$(manifest_field partial_reason.cause || true)': $(manifest_field partial_reason.detail 2>/dev/null | cut -c1-90 || true)"
	check manifest-lists-not-captured "$(ok_if [ "$(manifest_field not_captured)" != "[]" ])" \
		"$(manifest_field not_captured | cut -c1-100)"
	expect partial-capture-verifies "$(host_capture_bin)" verify "$CAPDIR"
	# Still a complete LiME stream: every RAM range, the missing part zero-filled.
	rm -f "$WORK/memory.lime"
	expect zstd-decompress zstd -q -d "$CAPDIR/memory.lime.zst" -o "$WORK/memory.lime"
	res_block iomem >"$WORK/iomem.txt"
	expect partial-lime-ranges-equal-iomem-ram python3 "$FV_VM_DIR/host/lime_check.py" "$WORK/memory.lime" "$WORK/iomem.txt"
	IMAGE_SUMMARY="partial ($cause): $(stat -c %s "$WORK/memory.lime") bytes LiME -> $(stat -c %s "$CAPDIR/memory.lime.zst") bytes zst"
	rm -f "$WORK/memory.lime"
}

scenario_fail_busy_unmount() {
	make_suspect_image
	prepare_volume 1024
	render_all_ssm kcore
	cp "$WORK/overlay/fv/ssm/unmount.sh" "$WORK/overlay/fv/ssm/unmount-busy.sh"
	boot_guest x86_64 fail-busy-unmount 600 256
	local r pid
	pid=$(res holder-pid || echo missing)
	check ssm-mount-exit-0 "$(ok_if [ "$(rc_of mount)" = 0 ])" "exit $(rc_of mount)"
	r=$(rc_of unmount-busy)
	check busy-unmount-refused-exit-5 "$(ok_if [ "$r" = 5 ])" "exit $r (docs/unmount-helper.md: busy)"
	check busy-unmount-names-process "$(ok_if block_has ssm-unmount-busy "(pid[ =:]*)?\\b$pid\\b")" \
		"$(res_block ssm-unmount-busy | grep -m1 -w "$pid" | cut -c1-120)"
	check still-mounted-while-busy "$(ok_if [ -n "$(res busy-mountpoint)" ])" "at '$(res busy-mountpoint || true)'"
	check unmount-after-exit-succeeds "$(ok_if [ "$(rc_of unmount)" = 0 ])" "exit $(rc_of unmount)"
	check volume-unmounted-at-end "$(ok_if res_empty after-unmount-mountpoint)" ""
	expect volume-e2fsck-clean e2fsck -fn "$WORK/volume.img"
}

# --- hot-plug: the guest as the instance behind the engine's backend ----------

# hotplug_boot_args SCENARIO MEM_MB: the base initramfs plus this run's
# overlay, and the qemu command line without the forensics volume (the
# driver hot-plugs it), NUL-separated in $WORK/qemu.args.
hotplug_boot_args() {
	local scenario=$1 mem=$2
	build_base_initramfs x86_64
	write_run_env
	# No forensics volume at boot: init does not wait for one.
	sed -i 's/^FV_VOLUME_SERIAL=.*/FV_VOLUME_SERIAL=/' "$WORK/overlay/fv/run.env"
	pack_overlay "$WORK/overlay" "$WORK/overlay.cpio.gz"
	cat "$BASE_INITRAMFS" "$WORK/overlay.cpio.gz" >"$WORK/initramfs.cpio.gz"
	vm_args x86_64 "$WORK/initramfs.cpio.gz" - "$WORK/suspect.img" "$scenario" "$mem"
	printf '%s\0' "$QEMU" "${QEMU_ARGS[@]}" >"$WORK/qemu.args"
	log "guest: $ACCEL, $mem MiB, no forensics volume at boot (hot-plugged), two PCIe root ports"
}

# driver_field EXPR: a value from the driver's report ($WORK/driver.json).
driver_field() {
	python3 -c 'import json,sys
r=json.load(open(sys.argv[1]))
v=eval(sys.argv[2], {}, {"r": r})
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$WORK/driver.json" "$1"
}

# check_hotplug: the guest saw the volume appear on attach and go on detach.
check_hotplug() {
	local serial
	serial=$(driver_field 'r.get("volume_id") or ""' | tr -d -)
	check hotplug-volume-appeared "$(ok_if [ -n "$(res after-attach-dev)" ])" \
		"serial $serial as /dev/$(res after-attach-dev || true) after $(res after-attach-seconds || echo '?') s, model '$(res after-attach-model || true)'"
	check hotplug-volume-gone-after-detach "$(ok_if res_empty after-detach-still-present)" \
		"after $(res after-detach-seconds || echo '?') s; NVMe left: $(res after-detach-nvme || true)"
	check not-mounted-at-detach "$(ok_if res_empty before-detach-mountpoint)" "'$(res before-detach-mountpoint || true)'"
	if [ "$(driver_field 'r["mode"]')" = runbook ]; then
		check volume-unwritten-between-snapshot-and-detach \
			"$(ok_if same_number "$(res at-snapshot-volume-written)" "$(res before-detach-volume-written)")" \
			"sectors written at the snapshot $(res at-snapshot-volume-written || echo none), at the detach $(res before-detach-volume-written || echo none)"
	fi
}

# check_driver: the driver's own checks (moto's final state, the execution).
check_driver() {
	local name ok detail
	while IFS=$'\t' read -r name ok detail; do
		check "$name" "$(ok_if [ "$ok" = True ])" "$detail"
	done < <(python3 -c 'import json,sys
for n, ok, d in json.load(open(sys.argv[1])).get("checks", []):
    print(n, ok, d.replace("\t", " ").replace("\n", " "), sep="\t")' "$WORK/driver.json")
}

# hotplug_flow MODE: boot the guest without the forensics volume, run the
# driver (runbook: the engine over moto; documents: the three documents by
# hand), then the capture scenario's checks on the volume image.
hotplug_flow() {
	local mode=$1 t0 rc=0 py=(python3)
	make_suspect_image
	hotplug_boot_args runbook 512
	# The engine needs moto: deploy/automation.sh makes its pinned venv.
	local extra=()
	if [ "$mode" = runbook ]; then
		py=("$FV_ROOT/deploy/automation.sh" python)
		extra=(--cancel-drill --fleet-drill)
	fi
	t0=$(date +%s)
	timeout --kill-after=10 1500 "${py[@]}" "$FV_VM_DIR/host/runbook_vm.py" "$mode" --work "$WORK" \
		--qemu-args "$WORK/qemu.args" --volume-image "${FV_VOLUME_IMG:-$FV_DIST/forensics-volume.img}" \
		--ssm-dir "${FV_SSM_DIR:-$FV_DIST/deploy/ssm}" --volume-mib 1536 "${extra[@]}" || rc=$?
	GUEST_SECONDS=$(($(date +%s) - t0))
	[ "$rc" = 0 ] || die "the $mode driver failed (exit $rc); see $WORK/console.log and $WORK/driver.json"
	check_driver
	if [ "$mode" = runbook ]; then
		local root serial ok=1
		root=$(driver_field 'r.get("root_volume_id") or ""')
		serial=$(res suspect-serial || true)
		[ -n "$root" ] && [ "$serial" = "${root/-/}" ] && ok=0
		check guest-root-disk-is-the-instance-root-volume "$ok" \
			"moto root volume $root, guest root disk serial $(res suspect-serial || true) (/dev/$(res suspect-dev || true))"
	fi
	local img
	img=$(driver_field 'r.get("volume_image") or ""')
	if [ -z "$img" ] || [ ! -f "$img" ]; then die "the driver reports no volume image (see $WORK/driver.json)"; fi
	ln -sf "$img" "$WORK/volume.img"
	check_hotplug
	check_guest_flow
	check_footprint
	# The volume is the one the driver created (moto's ID), not the bench's
	# fixed one: capture must have been tied to it (S12).
	local vid
	vid=$(driver_field 'r.get("volume_id") or ""')
	[ -z "$vid" ] || FV_VOLUME_ID=$vid
	check_evidence x86_64 kcore
	[ "$mode" = runbook ] && check_custody && check_cancel_drill && check_fleet
	return 0
}

# check_custody: the custody record the runbook wrote into the security
# account (runbook_vm.py custody, saved as $WORK/custody.json) anchors the
# image on the volume: verify against its digests must say ANCHORED, and a
# record with one digest changed must make verify fail.
check_custody() {
	local cap rec=$WORK/custody.json out rc=0
	cap=$(host_capture_bin)
	if [ ! -f "$rec" ] || [ -z "${CAPDIR:-}" ]; then
		check custody-record-anchors-the-image 1 "no custody record ($rec) or no capture read back"
		return 0
	fi
	out=$("$cap" verify "$CAPDIR" --custody-record "$rec" --custody-versions "$WORK/custody-versions.json" 2>&1) ||
		rc=$?
	local anchored=1
	[ "$rc" = 0 ] && grep -q 'ANCHORED' <<<"$out" && grep -q 'the custody record is the first and only version' <<<"$out" &&
		anchored=0
	check custody-record-anchors-the-image "$anchored" \
		"exit $rc: $(grep -o 'ANCHORED[^;]*' <<<"$out" | head -n1 | cut -c1-120)"
	# issue 21: a second version of the record's key (replaced by someone
	# holding the member's execution role) must make verify fail.
	python3 -c 'import json,sys
l=json.load(open(sys.argv[1])); v=[x for x in l["Versions"] if x["Key"].endswith(".json") and ".disks-" not in x["Key"]]
l["Versions"].append(dict(v[0], VersionId="replaced", IsLatest=True))
json.dump(l,open(sys.argv[2],"w"))' "$WORK/custody-versions.json" "$WORK/custody-versions-replaced.json"
	rc=0
	out=$("$cap" verify "$CAPDIR" --custody-record "$rec" --custody-versions "$WORK/custody-versions-replaced.json" 2>&1) ||
		rc=$?
	local replaced=1
	[ "$rc" = 1 ] && grep -q 'has 2 versions' <<<"$out" && replaced=0
	check custody-record-replaced-fails-verify "$replaced" \
		"exit $rc: $(tail -n1 <<<"$out" | cut -c1-120)"
	python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); d=r["capture"]["image_sha256"]
r["capture"]["image_sha256"]=("0" if d[0]!="0" else "1")+d[1:]
json.dump(r,open(sys.argv[2],"w"))' "$rec" "$WORK/custody-altered.json"
	rc=0
	out=$("$cap" verify "$CAPDIR" --custody-record "$WORK/custody-altered.json" 2>&1) || rc=$?
	check custody-record-with-another-digest-fails-verify "$(ok_if [ "$rc" != 0 ])" \
		"exit $rc: $(tail -n1 <<<"$out" | cut -c1-120)"
	return 0
}

# check_cancel_drill: the guest's side of the runbook scenario's second
# execution, cancelled during Capture (runbook_vm.py cancel_drill).
check_cancel_drill() {
	local img
	img=$(driver_field '(r.get("cancel") or {}).get("volume_image") or ""')
	check cancel-capture-killed-by-the-agent "$(ok_if [ "$(res ssm-cancel-capture-ended)" = cancel ])" \
		"ended '$(res ssm-cancel-capture-ended || true)', exit $(res ssm-cancel-capture-rc || true) after $(res ssm-cancel-capture-seconds || echo '?') s"
	check cancel-unmount-exit-0 "$(ok_if [ "$(res ssm-cancel-unmount-rc)" = 0 ])" \
		"exit $(res ssm-cancel-unmount-rc || true): $(res_block ssm-cancel-unmount 2>/dev/null | head -n1 | cut -c1-100)"
	check cancel-suspect-written-sectors-unchanged \
		"$(ok_if same_number "$(res before-cancel-mount-suspect-written)" "$(res after-cancel-unmount-suspect-written)")" \
		"$(res before-cancel-mount-suspect-written || true) -> $(res after-cancel-unmount-suspect-written || true)"
	if [ -n "$img" ] && [ -f "$img" ]; then
		expect cancel-volume-e2fsck-clean e2fsck -fn "$img"
	else
		check cancel-volume-e2fsck-clean 1 "the driver reports no volume image for the cancelled execution"
	fi
}

# check_fleet: issue 24's VM proof, the host's side (runbook_vm.py
# fleet_drill ran two more instances, both the guest, through fleet.py on
# the same boot). Each instance's capture, read back from its own volume
# image, must verify against the fleet record alone, found by its
# manifest's digest, both keys their only versions: VERIFIED and ANCHORED.
# And the first capture checked against the second's entry must fail.
check_fleet() {
	local cap rec n img dir out rc firstdir="" secondid=""
	cap=$(host_capture_bin)
	rec=$(driver_field '(r.get("fleet") or {}).get("record") or ""')
	n=$(driver_field 'len((r.get("fleet") or {}).get("entries") or [])')
	if [ -z "$rec" ] || [ ! -f "$rec" ] || [ "$n" != 2 ]; then
		check fleet-captures-verify-against-the-fleet-record 1 "no fleet record ($rec) or not 2 entries ($n)"
		return 0
	fi
	for i in 0 1; do
		img=$(driver_field "r['fleet']['entries'][$i].get('volume_image') or ''")
		rm -rf "$WORK/fleet-evidence-$i"
		mkdir -p "$WORK/fleet-evidence-$i"
		dir=""
		if [ -f "$img" ] && debugfs -R "rdump /captures $WORK/fleet-evidence-$i" "$img" >"$WORK/fleet-debugfs-$i.log" 2>&1; then
			dir=$(find "$WORK/fleet-evidence-$i/captures" -mindepth 1 -maxdepth 1 -type d | LC_ALL=C sort | head -n1)
		fi
		rc=0
		out=$("$cap" verify "${dir:-$WORK/fleet-evidence-$i/none}" --custody-record "$rec" \
			--custody-versions "$(driver_field "r['fleet']['entries'][$i].get('custody_versions') or ''")" \
			--fleet-versions "$(driver_field 'r["fleet"]["versions"]')" 2>&1) || rc=$?
		local ok=1
		[ "$rc" = 0 ] && grep -q '^VERIFIED .*ANCHORED.*the custody record is the first and only version.*taken from fleet .*the fleet record is the first and only version' <<<"$out" &&
			ok=0
		check "fleet-instance-$((i + 1))-verifies-against-the-fleet-record" "$ok" \
			"$(driver_field "r['fleet']['entries'][$i]['instance_id']"), exit $rc: $(grep -o 'taken from fleet [^;]*' <<<"$out" | head -n1)$(grep -m1 -v '^VERIFIED' <<<"$out" | cut -c1-100)"
		[ "$i" = 0 ] && firstdir=$dir
		[ "$i" = 1 ] && secondid=$(driver_field "r['fleet']['entries'][$i]['instance_id']")
	done
	rc=0
	out=$("$cap" verify "${firstdir:-$WORK/none}" --custody-record "$rec" --fleet-entry "$secondid" 2>&1) || rc=$?
	local other=1
	[ "$rc" = 1 ] && grep -q 'FAILED anchor:' <<<"$out" && other=0
	check fleet-capture-against-another-entry-fails "$other" \
		"exit $rc: $(tail -n1 <<<"$out" | cut -c1-120)"
}

scenario_hotplug() { hotplug_flow documents; }
scenario_runbook() { hotplug_flow runbook; }

# stop-capture: Forensics-StopCapture during a running capture gives a
# finalized partial image (cause interrupted), not a killed one. The capture
# runs at zstd level 19 so that it is still running when the stop comes.
scenario_stop_capture() {
	local params=()
	make_suspect_image
	prepare_volume 1536
	mapfile -t params < <(ssm_params kcore | grep -v '^CompressionLevel=')
	render_ssm mount MountVolume "${params[@]}"
	render_ssm capture CaptureMemory CompressionLevel=19 "${params[@]}"
	render_ssm stop StopCapture "${params[@]}"
	render_ssm unmount UnmountVolume "${params[@]}"
	boot_guest x86_64 stop-capture 1500 512
	check guest-scenario-clean "$(ok_if res_empty_fails)" "$(python3 "$RESULTS" "$WORK/console.log" fails)"
	check ssm-mount-exit-0 "$(ok_if [ "$(rc_of mount)" = 0 ])" "exit $(rc_of mount)"
	check capture-recorded-its-pid "$(ok_if [ -n "$(res capture-pid-file)" ])" "pid $(res capture-pid-file || true)"
	check capture-running-when-stopped "$(ok_if [ "$(res capture-running-before-stop)" = yes ])" ""
	check ssm-stop-exit-0 "$(ok_if [ "$(rc_of stop)" = 0 ])" "exit $(rc_of stop): $(res_block ssm-stop | head -n1 | cut -c1-120)"
	# docs/capture.md: 20 = partial, interrupted by SIGINT/SIGTERM/SIGHUP.
	check capture-partial-exit-20 "$(ok_if [ "$(rc_of capture)" = 20 ])" \
		"exit $(rc_of capture)"
	check capture-document-says-partial "$(ok_if block_has ssm-capture '^Forensics-CaptureMemory: PARTIAL')" \
		"$(res_block ssm-capture | grep -m1 '^Forensics-CaptureMemory' | cut -c1-120)"
	check pid-file-removed "$(ok_if res_empty pid-file-after)" "'$(res pid-file-after || true)'"
	check ssm-unmount-exit-0 "$(ok_if [ "$(rc_of unmount)" = 0 ])" "exit $(rc_of unmount)"
	check volume-unmounted-at-end "$(ok_if res_empty after-unmount-mountpoint)" ""
	check suspect-written-sectors-unchanged "$(ok_if same_number "$(res before-mount-suspect-written)" "$(res after-unmount-suspect-written)")" \
		"$(res before-mount-suspect-written || true) -> $(res after-unmount-suspect-written || true)"
	check_partial_image interrupted
}
# break-glass (issue 23): the responder's procedure of docs/break-glass.md,
# its commands as written (tests/vm/host/break_glass.py extracts them: only
# the page's "# <-" fill-ins are set), in a guest with only the forensics
# volume attached and no SSM documents. The digests leave the guest the way
# the page says: capture's last line on the terminal (the console). The
# analyst's command of the same page, with those digests, must say ANCHORED.
scenario_break_glass() {
	local doc=$FV_ROOT/docs/break-glass.md
	make_suspect_image
	prepare_volume 1536
	python3 "$FV_VM_DIR/host/break_glass.py" guest "$doc" "$FV_VOLUME_ID" >"$WORK/overlay/fv/break-glass.sh" ||
		die "cannot extract the procedure from $doc"
	log "break-glass: $(grep -c . "$WORK/overlay/fv/break-glass.sh") lines from $doc"
	boot_guest x86_64 break-glass 900 256
	check guest-scenario-clean "$(ok_if res_empty_fails)" "$(python3 "$RESULTS" "$WORK/console.log" fails)"
	check no-ssm-document-in-the-guest "$(ok_if res_empty ssm-files)" "'$(res ssm-files || true)'"
	check procedure-exit-0 "$(ok_if [ "$(res break-glass-rc)" = 0 ])" \
		"exit $(res break-glass-rc || echo missing): $(res_block break-glass | tail -n1 | cut -c1-120)"
	local dev
	dev=$(res volume-dev || true)
	check page-grep-finds-the-volume "$(ok_if block_has break-glass "^/sys/block/$dev/device/serial\$")" "/dev/$dev"
	check mount-helper-mounted-read-write "$(ok_if block_has break-glass "^OK: $FV_VOLUME_ID \(/dev/$dev\) mounted read-write at /run/forensics-volume/$FV_VOLUME_ID ")" \
		"$(res_block break-glass | grep -m1 'mounted read-write' | cut -c1-120)"
	check unmount-safe-to-detach "$(ok_if block_has break-glass "OK: $FV_VOLUME_ID .*safe to detach")" \
		"$(res_block break-glass | grep -m1 'safe to detach' | cut -c1-120)"
	check volume-unmounted-at-end "$(ok_if res_empty after-unmount-mountpoint)" "'$(res after-unmount-mountpoint || true)'"
	check mountpoint-removed "$(ok_if not block_has run-forensics-volume "$FV_VOLUME_ID")" ""
	check suspect-written-sectors-unchanged "$(ok_if same_number "$(res before-mount-suspect-written)" "$(res after-unmount-suspect-written)")" \
		"$(res before-mount-suspect-written || true) -> $(res after-unmount-suspect-written || true)"
	# The digests, off the volume: capture's last line as the terminal showed it.
	local line m z l
	line=$(res_block break-glass | grep -E '^capture: complete' | tail -n1)
	m=$(sed -n 's/.*sha256 manifest\.json=\([0-9a-f]\{64\}\) .*/\1/p' <<<"$line")
	z=$(sed -n 's/.* memory\.lime\.zst=\([0-9a-f]\{64\}\) .*/\1/p' <<<"$line")
	l=$(sed -n 's/.* lime=\([0-9a-f]\{64\}\).*/\1/p' <<<"$line")
	check digests-on-the-terminal "$(ok_if [ ${#m} = 64 ] && [ ${#z} = 64 ] && [ ${#l} = 64 ])" "${line:0:60}..."
	check final-line-says-take-them-off "$(ok_if grep -q 'copy these three digests off this host now' <<<"$line")" ""
	expect volume-e2fsck-clean e2fsck -fn "$WORK/volume.img"
	read_back || return 0
	check manifest-status-complete "$(ok_if [ "$(manifest_field status)" = complete ])" "status '$(manifest_field status || true)'"
	local cap args=() out rc=0
	cap=$(host_capture_bin)
	mapfile -t args < <(python3 "$FV_VM_DIR/host/break_glass.py" analyst "$doc" "$CAPDIR" "$m" "$z" "$l") ||
		die "cannot extract the analyst's command from $doc"
	[ "${args[0]:-}" = capture ] || die "the analyst's command does not start with capture: ${args[*]}"
	out=$("$cap" "${args[@]:1}" 2>&1) || rc=$?
	check analyst-verify-anchored "$(ok_if [ "$rc" = 0 ] && grep -q 'ANCHORED: manifest.json, the image file, the LiME stream match' <<<"$out")" \
		"exit $rc: $(grep -o 'ANCHORED[^;]*' <<<"$out" | head -n1 | cut -c1-100)"
	# One digest wrong (as a forged copy would have it): verification fails.
	local wrong
	wrong=$([ "${l:0:1}" = 0 ] && echo 1 || echo 0)${l:1}
	mapfile -t args < <(python3 "$FV_VM_DIR/host/break_glass.py" analyst "$doc" "$CAPDIR" "$m" "$z" "$wrong")
	rc=0
	out=$("$cap" "${args[@]:1}" 2>&1) || rc=$?
	check analyst-verify-another-digest-fails "$(ok_if [ "$rc" != 0 ])" "exit $rc: $(tail -n1 <<<"$out" | cut -c1-100)"
	IMAGE_SUMMARY="break-glass: $(stat -c %s "$CAPDIR/memory.lime.zst") bytes zst"
}

res_empty_fails() { [ -z "$(python3 "$RESULTS" "$WORK/console.log" fails)" ]; }

run_scenario() {
	local name=$1 fn
	fn=scenario_${name//-/_}
	declare -F "$fn" >/dev/null || die "unknown scenario '$name' (bench.sh list)"
	SCENARIO_T0=$(date +%s)
	SCENARIO_NAME=$name
	new_workdir "$name"
	log "scenario $name: start (work dir $WORK)"
	"$fn"
	finish_checks "$name"
}
