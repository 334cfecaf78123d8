# shellcheck shell=bash
# Shared functions of the VM test bench (sourced by bench.sh and demo.sh).
#
# The bench is the project's stand-in for a breached EC2 instance: a qemu guest
# running Debian's own kernel (a real /proc/kcore and /proc/iomem), with the
# suspect's root disk and the forensics volume as NVMe devices whose serials
# are EBS volume IDs. Everything it downloads is cached under
# ${FV_CACHE:-/var/cache/forensics-volume}/vm so that repeated runs are fast.

set -euo pipefail

FV_VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FV_ROOT=$(cd "$FV_VM_DIR/../.." && pwd)
FV_CACHE=${FV_CACHE:-/var/cache/forensics-volume}
VMCACHE=$FV_CACHE/vm
FV_DIST=${FV_DIST:-$FV_ROOT/dist}
# Volume ID of the forensics volume and of the suspect's root disk, as the
# NVMe serials EBS gives them (volume ID without the dash).
FV_VOLUME_ID='vol-0123456789abcdef0'
FV_SUSPECT_VOLUME_ID='vol-0badc0ffee0000001'
# qemu's NVMe model; the tools accept it only with this test-only override.
export FV_QEMU_NVME_MODEL='QEMU NVMe Ctrl'
# shellcheck source=tests/setup/apt.sh
. "$FV_ROOT/tests/setup/apt.sh"

log() { printf '[vm %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	printf '[vm %s] FAIL: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
	exit 1
}

# bench_lock: one bench run at a time on this machine (the cache is shared by
# every checkout, and two TCG guests on two cores only slow each other down).
bench_lock() {
	mkdir -p "$VMCACHE"
	exec 9>"$VMCACHE/bench.lock"
	if ! flock -n 9; then
		log "another VM bench run holds $VMCACHE/bench.lock; waiting for it"
		flock 9
	fi
}

need_root() {
	[ "$(id -u)" = 0 ] || die "the VM bench needs root (apt-get for qemu, kernels and LiME headers; loop-free image handling); run it as root"
}

# Debian architecture name for a qemu/uname architecture.
deb_arch() {
	case $1 in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "unsupported guest architecture '$1'" ;;
	esac
}

# apt-get update at most once an hour (a stamp in the cache: apt_download
# runs in command substitutions, so a shell variable would not stick).
apt_update_once() {
	local stamp=$VMCACHE/apt-updated
	mkdir -p "$VMCACHE"
	if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
		log "apt-get update (package lists for the kernel, busybox and LiME downloads)"
		apt-get update -qq >&2 || die "apt-get update failed"
		touch "$stamp"
	fi
}

# ensure_packages CMD:PACKAGE ... : install the Debian packages whose command
# (or file) is missing, through the project's one installer
# (tests/setup/apt.sh: --no-install-recommends, simulated first, never removing
# a package the machine has).
ensure_packages() {
	local missing=() spec cmd pkg
	for spec in "$@"; do
		cmd=${spec%%:*}
		pkg=${spec#*:}
		if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -e "$cmd" ]; then
			missing+=("$pkg")
		fi
	done
	if [ ${#missing[@]} -gt 0 ]; then
		need_root
		apt_update_once
		log "installing host packages: ${missing[*]}"
		FV_APT_UPDATED=1 fv_apt_install "${missing[@]}"
	fi
}

host_packages() {
	ensure_packages qemu-system-x86_64:qemu-system-x86 qemu-system-aarch64:qemu-system-arm \
		busybox:busybox-static mkfs.ext4:e2fsprogs debugfs:e2fsprogs e2fsck:e2fsprogs \
		zstd:zstd cpio:cpio depmod:kmod python3:python3 timeout:coreutils
}

# apt_download DIR PACKAGE... : fetch .debs into DIR (cached), print their paths.
apt_download() {
	local dir=$1
	shift
	mkdir -p "$dir"
	local p f name arch
	for p in "$@"; do
		name=${p%%:*}
		arch=$(dpkg --print-architecture)
		case $p in *:*) arch=${p#*:} ;; esac
		# The file name carries the architecture (or "all"): one cache for all arches.
		f=$(find "$dir" -maxdepth 1 \( -name "${name}_*_$arch.deb" -o -name "${name}_*_all.deb" \) | head -n1)
		if [ -z "$f" ]; then
			apt_update_once
			log "apt-get download $p -> $dir"
			(cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$p" >&2) || die "apt-get download $p failed"
			f=$(find "$dir" -maxdepth 1 \( -name "${name}_*_$arch.deb" -o -name "${name}_*_all.deb" \) | head -n1)
			[ -n "$f" ] || die "apt-get download $p produced no .deb in $dir"
		fi
		echo "$f"
	done
}

# Resolve linux-image-<arch>'s real kernel package (linux-image-6.1.0-N-<arch>).
# FV_VM_KERNEL_SUITE=bookworm-backports takes that suite's linux-image-<arch>
# instead (a newer kernel, 6.12 in 2026: bench/symbols-parity.sh's second
# kernel); the apt sources must carry the suite.
kernel_package() {
	local arch=$1 da flavour dep want
	da=$(deb_arch "$arch")
	flavour=$da
	want=linux-image-$flavour:$da${FV_VM_KERNEL_SUITE:+/$FV_VM_KERNEL_SUITE}
	dep=$(apt-cache depends "$want" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$dep" ]; then
		apt_update_once
		dep=$(apt-cache depends "$want" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$dep" ] || die "cannot resolve $want's kernel package (apt-cache depends)"
	echo "${dep%%:*}"
}

ensure_foreign_arch() {
	local da=$1
	[ "$da" = "$(dpkg --print-architecture)" ] && return 0
	if ! dpkg --print-foreign-architectures | grep -qx "$da"; then
		log "dpkg --add-architecture $da (to download the $da kernel and busybox-static; nothing is installed)"
		dpkg --add-architecture "$da"
		rm -f "$VMCACHE/apt-updated"
	fi
}

# fetch_kernel ARCH: download and extract Debian's kernel for ARCH; sets
# KVER (uname -r), KROOT (extracted package root) and KIMAGE (bootable image).
fetch_kernel() {
	local arch=$1 da pkg deb
	da=$(deb_arch "$arch")
	ensure_foreign_arch "$da"
	pkg=$(kernel_package "$arch")
	KVER=${pkg#linux-image-}
	deb=$(apt_download "$VMCACHE/debs" "$pkg:$da")
	KROOT=$VMCACHE/$arch/kernel-$KVER
	if [ ! -e "$KROOT/.done" ]; then
		log "extracting $(basename "$deb") (dpkg-deb -x, nothing installed)"
		rm -rf "$KROOT"
		mkdir -p "$KROOT"
		dpkg-deb -x "$deb" "$KROOT"
		touch "$KROOT/.done"
	fi
	KIMAGE=$KROOT/boot/vmlinuz-$KVER
	[ -f "$KIMAGE" ] || die "no kernel image $KIMAGE in $deb"
}

# fetch_busybox ARCH: Debian's busybox-static for the guest (always the
# package's binary, even when the host has a dynamic busybox); sets BUSYBOX.
fetch_busybox() {
	local arch=$1 da deb dir
	da=$(deb_arch "$arch")
	ensure_foreign_arch "$da"
	deb=$(apt_download "$VMCACHE/debs" "busybox-static:$da")
	dir=$VMCACHE/$arch/busybox
	if [ ! -x "$dir/bin/busybox" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
	fi
	BUSYBOX=$dir/bin/busybox
}

# fetch_bash ARCH: Debian's bash-static for the guest (statically linked, so
# it needs nothing else in the initramfs); it becomes /bin/bash there, the
# shell whose remembered command Volatility's linux.bash must find (issue
# 16). Sets BASH_STATIC.
fetch_bash() {
	local arch=$1 da deb dir
	da=$(deb_arch "$arch")
	ensure_foreign_arch "$da"
	deb=$(apt_download "$VMCACHE/debs" "bash-static:$da")
	dir=$VMCACHE/$arch/bash-static
	if [ ! -x "$dir/bin/bash-static" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
	fi
	BASH_STATIC=$dir/bin/bash-static
	[ -x "$BASH_STATIC" ] || die "bash-static:$da has no bin/bash-static"
}

# Modules the guest loads: NVMe (both disks are NVMe, as on Nitro), ext4 and
# the crc32c implementation ext4 asks for at mount time. Dependencies come
# from modules.dep (depmod run on the extracted package).
GUEST_MODULES="nvme ext4 crc32c_generic loop"

# build_base_initramfs ARCH: busybox + modules + guest init, cached per kernel
# and per content of tests/vm/guest; sets BASE_INITRAMFS.
build_base_initramfs() {
	local arch=$1 key tree mods m dep deps
	fetch_kernel "$arch"
	fetch_busybox "$arch"
	fetch_bash "$arch"
	key=$( (
		echo "$KVER $GUEST_MODULES"
		sha256sum "$BUSYBOX" "$BASH_STATIC"
		find "$FV_VM_DIR/guest" -type f -print0 | sort -z | xargs -0 sha256sum
	) | sha256sum | cut -c1-16)
	BASE_INITRAMFS=$VMCACHE/$arch/initramfs-$KVER-$key.cpio.gz
	[ -s "$BASE_INITRAMFS" ] && return 0
	# Old builds (another checkout may still use a recent one).
	find "$VMCACHE/$arch" -maxdepth 1 -name 'initramfs-*.cpio.gz' -mtime +1 -delete 2>/dev/null || true
	log "building the $arch guest initramfs (busybox-static, modules: $GUEST_MODULES + deps)"
	tree=$(mktemp -d "$VMCACHE/$arch/initramfs-tree.XXXXXX")
	mkdir -p "$tree"/{bin,sbin,proc,sys,dev,run,tmp,etc,suspect,root,var/lib/amazon/ssm,fv} "$tree/lib/modules/$KVER"
	cp "$BUSYBOX" "$tree/bin/busybox"
	ln -s busybox "$tree/bin/sh"
	cp "$BASH_STATIC" "$tree/bin/bash"
	# The guest's modules.dep, from the package's own module tree.
	if [ ! -s "$KROOT/lib/modules/$KVER/modules.dep" ]; then
		depmod -b "$KROOT" "$KVER" || die "depmod on $KROOT failed"
	fi
	mods=()
	for m in $GUEST_MODULES; do
		dep=$(awk -v m="$m" '{ n = $1; sub(/:$/, "", n); sub(/.*\//, "", n); sub(/\.ko.*$/, "", n)
			gsub(/-/, "_", n); gsub(/-/, "_", m); if (n == m) { print; exit } }' "$KROOT/lib/modules/$KVER/modules.dep")
		[ -n "$dep" ] || die "module $m not found in $KROOT/lib/modules/$KVER/modules.dep"
		read -r -a deps <<<"$(echo "$dep" | tr -d ':')"
		mods+=("${deps[@]}")
	done
	for m in $(printf '%s\n' "${mods[@]}" | sort -u); do
		mkdir -p "$tree/lib/modules/$KVER/$(dirname "$m")"
		cp "$KROOT/lib/modules/$KVER/$m" "$tree/lib/modules/$KVER/$m"
	done
	cp "$KROOT/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$tree/lib/modules/$KVER/"
	depmod -b "$tree" "$KVER" || die "depmod on the initramfs tree failed"
	cp "$FV_VM_DIR/guest/init" "$tree/init"
	chmod 0755 "$tree/init"
	cp -r "$FV_VM_DIR/guest/scenarios" "$tree/fv/scenarios"
	cp "$FV_VM_DIR/guest/agent.sh" "$tree/fv/agent.sh"
	(cd "$tree" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0 | gzip -1) >"$BASE_INITRAMFS.tmp"
	mv "$BASE_INITRAMFS.tmp" "$BASE_INITRAMFS"
	rm -rf "$tree"
}

# pack_overlay DIR OUT: a second cpio archive (the kernel unpacks concatenated
# archives in order) carrying the per-run files under /fv.
pack_overlay() {
	local dir=$1 out=$2
	(cd "$dir" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0 | gzip -1) >"$out"
}

# kvm_works: /dev/kvm can exist without running guests (nested virtualisation
# off, as on the development machine), so probe by booting the kernel for a
# few seconds; the answer is cached per host boot. FV_VM_KVM=0/1 forces it.
kvm_works() {
	case ${FV_VM_KVM:-} in 0) return 1 ;; 1) return 0 ;; esac
	[ -c /dev/kvm ] || return 1
	local probe
	probe=$VMCACHE/kvm-probe.$(cat /proc/sys/kernel/random/boot_id)
	if [ ! -f "$probe" ]; then
		log "probing KVM (a short boot of the guest kernel with -accel kvm)"
		local out
		out=$(timeout --kill-after=2 8 qemu-system-x86_64 -accel kvm -cpu host -machine q35 -m 128M \
			-display none -monitor none -nodefaults -serial stdio -no-reboot \
			-kernel "$KIMAGE" -append "console=ttyS0 panic=-1" </dev/null 2>&1 || true)
		if printf '%s' "$out" | grep -q 'Linux version'; then echo yes >"$probe"; else echo no >"$probe"; fi
	fi
	[ "$(cat "$probe")" = yes ]
}

# kill_qemu: the bench never leaves a guest running, whatever ends it.
kill_qemu() {
	local pid
	[ -n "${QEMU_PIDFILE:-}" ] && [ -s "$QEMU_PIDFILE" ] || return 0
	pid=$(cat "$QEMU_PIDFILE")
	if [ -n "$pid" ] && grep -q qemu-system "/proc/$pid/cmdline" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$QEMU_PIDFILE"
}

# vm_args ARCH INITRAMFS VOLUME_IMG SUSPECT_IMG SCENARIO [MEM_MB]: the qemu
# program and arguments of a guest, in QEMU and QEMU_ARGS. VOLUME_IMG "-"
# boots without the forensics volume (the runbook scenario hot-plugs it).
vm_args() {
	local arch=$1 initrd=$2 vol=$3 suspect=$4 scenario=$5 mem=${6:-512}
	local accel cpu machine console extra=
	local serial_v=${FV_VOLUME_ID/-/} serial_s=${FV_SUSPECT_VOLUME_ID/-/}
	case $arch in
	x86_64)
		QEMU=qemu-system-x86_64 machine=q35 console=ttyS0 cpu=max
		# 4-level page tables, as on EC2's usual instances: qemu's "max"
		# CPU offers LA57, Debian's kernel then uses 5 levels, and Volatility
		# 3 (through 2.28) translates only 4 (its Intel32e layer).
		# no_timer_check: under TCG on a loaded host the kernel's check that
		# the IO-APIC timer ticks can miss its window and panic ("IO-APIC +
		# timer doesn't work!"), as it did here with 2 cores shared by 6
		# jobs; the guest's timer works, only the check is timing-bound.
		extra="no5lvl no_timer_check"
		accel=tcg
		if kvm_works; then accel=kvm cpu=host; fi
		;;
	aarch64)
		QEMU=qemu-system-aarch64 machine=virt console=ttyAMA0 accel=tcg
		# pauth-impdef: TCG emulates pointer authentication much faster.
		cpu=max,pauth-impdef=on
		;;
	esac
	QEMU_ARGS=(
		-machine "$machine" -accel "$accel" -cpu "$cpu" -smp 2 -m "${mem}M"
		-display none -monitor none -serial stdio -no-reboot -nodefaults
		-kernel "$KIMAGE" -initrd "$initrd"
		-append "console=$console panic=-1 quiet loglevel=3 $extra fv.scenario=$scenario"
		-drive "file=$suspect,if=none,id=suspect,format=raw"
		-device "nvme,serial=$serial_s,drive=suspect"
	)
	if [ "$vol" != - ]; then
		QEMU_ARGS+=(-drive "file=$vol,if=none,id=fv,format=raw" -device "nvme,serial=$serial_v,drive=fv")
	fi
	# More disks: FV_EXTRA_DISKS="VOLUME_ID=PATH ..." (NVMe, serial from the ID).
	local x
	for x in ${FV_EXTRA_DISKS:-}; do
		QEMU_ARGS+=(-drive "file=${x#*=},if=none,id=x${#QEMU_ARGS[@]},format=raw"
			-device "nvme,serial=$(echo "${x%%=*}" | tr -d -),drive=x${#QEMU_ARGS[@]}")
	done
	ACCEL=$accel
}

# run_vm ARCH INITRAMFS VOLUME_IMG SUSPECT_IMG SCENARIO LOG TIMEOUT [MEM_MB]
# Boots the guest; its serial console goes to LOG (and stderr with FV_VM_VERBOSE=1).
# qemu is always killed: by timeout(1) after TIMEOUT seconds, and by the trap.
run_vm() {
	local arch=$1 initrd=$2 vol=$3 suspect=$4 scenario=$5 logf=$6 tmo=$7 mem=${8:-512}
	vm_args "$arch" "$initrd" "$vol" "$suspect" "$scenario" "$mem"
	local qemu=$QEMU accel=$ACCEL args=("${QEMU_ARGS[@]}")
	log "booting $arch guest ($accel, ${mem} MiB, scenario $scenario, timeout ${tmo}s; console log $logf)"
	printf '%q ' "$qemu" "${args[@]}" >"$logf.cmd"
	echo >>"$logf.cmd"
	QEMU_PIDFILE=$logf.qemu-pid
	args+=(-pidfile "$QEMU_PIDFILE")
	trap kill_qemu EXIT
	trap 'kill_qemu; exit 130' INT
	trap 'kill_qemu; exit 143' TERM
	local rc=0
	if [ "${FV_VM_VERBOSE:-0}" = 1 ]; then
		timeout --kill-after=5 "$tmo" "$qemu" "${args[@]}" </dev/null 2>&1 | tee "$logf" >&2 || rc=$?
	elif [ "${FV_VM_VERBOSE:-0}" = story ]; then
		# The demo: the documents' own output, live, without the bench's protocol.
		timeout --kill-after=5 "$tmo" "$qemu" "${args[@]}" </dev/null 2>&1 | tee "$logf" |
			awk '/^@@FV-BEGIN ssm-/ { sub(/^@@FV-BEGIN ssm-/, ""); printf "   ┌─ guest: SSM document %s (its script, unchanged, run by sh as the agent does)\n", $0; show = 1; fflush(); next }
			     /^@@FV-END ssm-/ { printf "   └─ %s\n", $NF; show = 0; fflush(); next }
			     show { print "   │ " $0; fflush() }' >&2 || rc=$?
	else
		timeout --kill-after=5 "$tmo" "$qemu" "${args[@]}" </dev/null >"$logf" 2>&1 || rc=$?
	fi
	kill_qemu
	[ "$rc" = 124 ] && die "the $arch guest did not finish scenario $scenario within ${tmo}s (qemu killed); see $logf"
	[ "$rc" = 0 ] || die "qemu exited with status $rc; see $logf"
	grep -q '^@@FV-DONE' "$logf" || die "the guest never reported the end of scenario $scenario; see $logf"
}

# kernel_headers ARCH: the guest kernel's headers from Debian's packages
# (downloaded and extracted, not installed), for building out-of-tree
# modules against; sets KHDR (the linux-headers-<KVER> tree, cached). The
# headers' Makefile includes the -common tree by absolute path: the
# extracted copy's line is rewritten to point at it.
kernel_headers() {
	local arch=$1 da root common kbuild_pkg debs d
	[ "$arch" = x86_64 ] || die "the bench builds kernel modules for the x86_64 guest only"
	fetch_kernel "$arch"
	da=$(deb_arch "$arch")
	root=$VMCACHE/$arch/headers-$KVER
	KHDR=$root/usr/src/linux-headers-$KVER
	# The headers' own .kernelvariables pick the gcc Debian built the kernel
	# with (gcc-12 for bookworm's kernels); the extracted kbuild tools need
	# libelf1 and libssl3; from 6.12 (CONFIG_DEBUG_INFO_BTF_MODULES with the
	# headers' vmlinux) kbuild runs pahole on every module it links.
	ensure_packages gcc-12:gcc-12 make:make /usr/include/stdio.h:libc6-dev \
		/usr/lib/x86_64-linux-gnu/libelf.so.1:libelf1 /usr/lib/x86_64-linux-gnu/libssl.so.3:libssl3 \
		pahole:dwarves
	[ -e "$root/.done" ] && return 0
	# linux-kbuild-6.1 for 6.1.0-N, linux-kbuild-6.12.95+deb12 for 6.12: as
	# the headers package says.
	kbuild_pkg=$(apt-cache depends "linux-headers-$KVER:$da" 2>/dev/null | awk '/Depends: linux-kbuild-/ {print $2; exit}')
	kbuild_pkg=${kbuild_pkg%%:*}
	[ -n "$kbuild_pkg" ] || kbuild_pkg=linux-kbuild-$(echo "$KVER" | cut -d. -f1,2)
	mapfile -t debs < <(apt_download "$VMCACHE/debs" "linux-headers-$KVER:$da" \
		"linux-headers-${KVER%-"$da"}-common" "$kbuild_pkg:$da")
	rm -rf "$root"
	mkdir -p "$root"
	for d in "${debs[@]}"; do dpkg-deb -x "$d" "$root"; done
	common=$root/usr/src/linux-headers-${KVER%-"$da"}-common
	{ [ -f "$KHDR/Makefile" ] && [ -d "$common" ]; } || die "unexpected layout of the kernel headers packages in $root"
	sed -i "s|^include /usr/src/linux-headers-${KVER%-"$da"}-common/Makefile|include $common/Makefile|" "$KHDR/Makefile"
	touch "$root/.done"
}

# build_kmod ARCH NAME SRCDIR: an out-of-tree module built from SRCDIR
# against the guest kernel's headers (make -C <headers> M=<copy> modules),
# cached per kernel and per content of SRCDIR; sets KMOD_KO.
build_kmod() {
	local arch=$1 name=$2 src=$3 key out
	kernel_headers "$arch"
	key=$(find "$src" -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-12)
	KMOD_KO=$VMCACHE/$arch/$name-$KVER-$key/$name.ko
	[ -s "$KMOD_KO" ] && return 0
	out=$VMCACHE/$arch/$name-build
	rm -rf "$out"
	cp -r "$src" "$out"
	log "building $name for $KVER (make -C <headers> M=<source> modules)"
	make -C "$KHDR" M="$out" modules >"$out/make.log" 2>&1 ||
		die "building $name failed (see $out/make.log)"
	mkdir -p "$(dirname "$KMOD_KO")"
	cp "$out/$name.ko" "$KMOD_KO"
}

# build_lime ARCH: LiME from Debian's lime-forensics-dkms source, built
# against the guest kernel's headers; sets LIME_KO.
build_lime() {
	local arch=$1 deb src
	kernel_headers "$arch"
	LIME_KO=$VMCACHE/$arch/lime-$KVER/lime.ko
	[ -s "$LIME_KO" ] && return 0
	deb=$(apt_download "$VMCACHE/debs" lime-forensics-dkms)
	src=$VMCACHE/$arch/lime-src
	rm -rf "$src"
	mkdir -p "$src"
	dpkg-deb -x "$deb" "$src/root"
	mv "$(find "$src/root/usr/src" -maxdepth 1 -name 'lime-forensics-*' | head -n1)" "$src/lime" ||
		die "no LiME source in lime-forensics-dkms"
	rm -rf "$src/root"
	build_kmod "$arch" lime "$src/lime"
	mkdir -p "$(dirname "$LIME_KO")"
	cp "$KMOD_KO" "$LIME_KO"
}

# build_fvhide ARCH: the bench's self-hiding module (host/fvhide, issue 26);
# sets FVHIDE_KO.
build_fvhide() {
	build_kmod "$1" fvhide "$FV_VM_DIR/host/fvhide"
	# shellcheck disable=SC2034 # read by host/scenarios.sh
	FVHIDE_KO=$KMOD_KO
}

# place_lime IMG: put LIME_KO at modules/<KVER>/lime.ko on the volume image
# (debugfs -w; the image is never mounted), root-owned, mode 0644.
place_lime() {
	local img=$1
	debugfs -w -f - "$img" >"$WORK/debugfs-lime.log" 2>&1 <<CMDS || die "debugfs write of lime.ko failed"
mkdir modules/$KVER
write $LIME_KO modules/$KVER/lime.ko
sif modules/$KVER uid 0
sif modules/$KVER gid 0
sif modules/$KVER mode 040755
sif modules/$KVER/lime.ko uid 0
sif modules/$KVER/lime.ko gid 0
sif modules/$KVER/lime.ko mode 0100644
CMDS
	debugfs -R "stat modules/$KVER/lime.ko" "$img" 2>/dev/null | grep -q "Size: $(stat -c %s "$LIME_KO")" ||
		die "lime.ko is not on the volume image after debugfs write (see $WORK/debugfs-lime.log)"
}
