#!/usr/bin/env bash
# tests/setup/check.sh: checks setup's package decisions (build.sh setup --plan)
# against machine states where a toolchain is incomplete, without removing
# anything from this machine. Run by `./build.sh test`, after setup.
#
# Issue 11: gcc-aarch64-linux-gnu was installed without its target's headers
# (libc6-dev-arm64-cross is only a Recommends), and setup, which asked only
# whether the compiler's command existed, saw nothing missing. Here the
# compilers are wrapped so that they lose their headers and libc (--sysroot to
# an empty directory), which is what such a machine looks like to the build,
# and setup must name the packages that bring them back.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() {
	printf '  ok    %s\n' "$1"
	pass=$((pass + 1))
}
bad() {
	printf '  FAIL  %s\n' "$1"
	fail=$((fail + 1))
}
# expect NAME PATTERN TEXT: TEXT has a line matching PATTERN (grep -E).
expect() {
	if grep -qE "$2" <<<"$3"; then ok "$1"; else bad "$1 (wanted /$2/ in: $(tr '\n' '|' <<<"$3"))"; fi
}
expect_not() {
	if grep -qE "$2" <<<"$3"; then bad "$1 (did not want /$2/ in: $(tr '\n' '|' <<<"$3"))"; else ok "$1"; fi
}

# A compiler wrapper: the real compiler, minus its target's headers and libc.
headless() { # NAME: puts $work/NAME/bin/NAME first on PATH
	local name=$1 real
	real=$(command -v "$name")
	mkdir -p "$work/$name/bin" "$work/empty-sysroot"
	cat >"$work/$name/bin/$name" <<EOF
#!/bin/sh
exec "$real" --sysroot="$work/empty-sysroot" -nostdinc "\$@"
EOF
	chmod +x "$work/$name/bin/$name"
	echo "$work/$name/bin"
}

echo "setup decisions (build.sh setup --plan)"

plan=$("$TOP/build.sh" setup --plan 2>&1) || true
expect "complete machine: nothing to install" '^nothing to install$' "$plan"

dir=$(headless aarch64-linux-gnu-gcc)
plan=$(PATH="$dir:$PATH" "$TOP/build.sh" setup --plan 2>&1) || true
expect "aarch64 compiler without its C headers: libc6-dev-arm64-cross planned" '^missing:.* libc6-dev-arm64-cross' "$plan"
expect "... and planned as an apt-get install" '^install .*libc6-dev-arm64-cross' "$plan"
expect_not "... and not the x86_64 musl packages" 'musl-dev' "$plan"

# Machines without one tool.
without() { # TOOL: prints a PATH of links to every command on PATH but TOOL
	local d=$work/without-$1 dir f
	mkdir -p "$d"
	local IFS=:
	for dir in $PATH; do
		for f in "$dir"/*; do
			[[ -x $f && ! -d $f && ${f##*/} != "$1" && ! -e $d/${f##*/} ]] && ln -s "$f" "$d/${f##*/}"
		done
	done
	echo "$d"
}

plan=$(PATH=$(without musl-gcc) "$TOP/build.sh" setup --plan 2>&1) || true
expect "no musl-gcc: musl-tools and musl-dev planned" '^missing:.* musl-tools musl-dev' "$plan"
expect_not "... and not the aarch64 packages" 'arm64-cross' "$plan"

plan=$(PATH=$(without qemu-aarch64-static) "$TOP/build.sh" setup --plan 2>&1) || true
expect "no qemu-aarch64-static (the aarch64 probe cannot run): qemu-user-static planned" '^missing:.* qemu-user-static' "$plan"
expect_not "... and the aarch64 compiler is not blamed" 'arm64-cross' "$plan"

# Installing must never remove what the machine has. This machine kind carries
# a backported qemu-utils that bookworm's own qemu-system-common breaks; asking
# for that exact one must be refused, naming the package it would remove.
qu=$(dpkg-query -W -f '${Version}' qemu-utils 2>/dev/null || true)
if [[ $qu == *~bpo* ]] && apt-cache madison qemu-system-common | grep bookworm/main >/dev/null; then
	out=$(
		# shellcheck source=tests/setup/apt.sh
		. "$TOP/tests/setup/apt.sh"
		FV_APT_PLAN_ONLY=1 fv_apt_plan qemu-system-common/bookworm 2>&1
	) || true
	expect "a package whose install removes qemu-utils is refused, naming it" 'would remove packages this machine has: .*qemu-utils' "$out"
	expect_not "... and nothing is planned" '^install ' "$out"
	out=$(
		# shellcheck source=tests/setup/apt.sh
		. "$TOP/tests/setup/apt.sh"
		FV_APT_PLAN_ONLY=1 fv_apt_plan qemu-system-x86 2>&1
	) || true
	expect "qemu-system-x86 (installed, matching the backport) plans no removal" '^install qemu-system-x86$' "$out"
else
	bad "this machine has no backported qemu-utils ($qu): the removal guard cannot be exercised here; run on the Debian 12 image CI uses"
fi

echo "$pass passed, $fail failed"
((fail == 0))
