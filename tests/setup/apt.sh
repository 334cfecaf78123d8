# shellcheck shell=bash
# Installs Debian packages for the build and the test bench without removing
# anything the machine already has. Sourced by build.sh and tests/vm/lib.sh.
#
#   fv_apt_install PKG...      install (as root); dies with the reason if it
#                              cannot be done without removing a package
#   fv_apt_plan PKG...         print what fv_apt_install would do, one line
#                              per apt-get call ("install [-t SUITE] PKG..."),
#                              or die naming the conflict; installs nothing
#
# Why: Debian 12 images often carry backported packages. This machine kind's
# image has qemu-utils 1:10.0.2~bpo12, which Breaks qemu-system-common
# (<< 1:8.0); bookworm's qemu-system-x86 (7.2) needs that qemu-system-common,
# so a plain `apt-get install qemu-system-x86` silently removes qemu-utils.
# Here every install is simulated first (apt-get -s); a package whose install
# would remove another is taken from the release's backports, the suite the
# removed package came from (enabled under /etc/apt/sources.list.d/ and said
# so; backports are NotAutomatic, so nothing else changes source), and if that
# does not resolve it either, nothing is installed and the conflict is named.

fv_apt_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fv_apt_die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 1
}

# The packages an apt-get install of "$@" (extra apt-get options first, then
# "--", then packages) would remove, one "name version" a line.
fv_apt_removals() {
	local opts=()
	while [[ $# -gt 0 && $1 != -- ]]; do
		opts+=("$1")
		shift
	done
	shift
	local out
	out=$(LC_ALL=C apt-get install -s --no-install-recommends "${opts[@]}" "$@" 2>&1) || {
		printf 'UNRESOLVABLE %s\n' "$(grep -E '^ |^E:' <<<"$out" | tr -s ' ' | head -n 4 | paste -sd ' ')"
		return 0
	}
	sed -n 's/^Remv \([^ ]*\) \[\([^]]*\)\].*/\1 \2/p' <<<"$out"
}

# The backports suite of this Debian release (bookworm-backports), or nothing.
fv_apt_backports_suite() {
	local codename=
	# shellcheck disable=SC1091
	[[ -r /etc/os-release ]] && codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[[ -n $codename ]] && echo "$codename-backports"
}

fv_apt_backports_enabled() {
	local suite=$1
	apt-cache policy 2>/dev/null | grep -q "n=$suite,"
}

# Adds the release's backports suite as a source of its own (deb822), from the
# same Debian mirror the machine's main source uses.
fv_apt_enable_backports() {
	local suite=$1 file=/etc/apt/sources.list.d/forensics-volume-backports.sources uri
	uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '$2 ~ /\/debian\/?$/ {print $2; exit}')
	[[ -n $uri ]] || uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[[ -n $uri ]] || uri=http://deb.debian.org/debian
	fv_apt_say "enabling $suite ($file): an installed package came from there, and bookworm's version of what the build needs would remove it"
	cat >"$file" <<EOF
# Added by the forensics volume's setup (build.sh): the machine carries
# packages from $suite, and their counterparts the build needs must come from
# the same suite so that installing them removes nothing. Backports are
# NotAutomatic: no other package changes source because of this file.
Types: deb
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	apt-get update -qq >&2 || fv_apt_die "apt-get update failed after enabling $suite"
}

# Prints the plan: one line per apt-get call. May enable backports (root only)
# when that is what avoids a removal; with FV_APT_PLAN_ONLY=1 it only says so.
fv_apt_plan() {
	(($#)) || return 0
	local removals
	removals=$(fv_apt_removals -- "$@")
	if [[ -z $removals ]]; then
		echo "install $*"
		return 0
	fi
	if [[ $removals == UNRESOLVABLE* ]]; then
		fv_apt_die "apt-get cannot install $*: ${removals#UNRESOLVABLE }"
	fi
	# Which of the packages cause a removal, each alone.
	local plain=() conflicting=() pkg
	for pkg in "$@"; do
		if [[ -n $(fv_apt_removals -- "$pkg") ]]; then conflicting+=("$pkg"); else plain+=("$pkg"); fi
	done
	local suite
	suite=$(fv_apt_backports_suite)
	local removed_bpo
	removed_bpo=$(awk '$2 ~ /~bpo/' <<<"$removals")
	if [[ -n $suite && -n $removed_bpo ]]; then
		if ! fv_apt_backports_enabled "$suite"; then
			if [[ ${FV_APT_PLAN_ONLY:-0} == 1 || $EUID -ne 0 ]]; then
				echo "enable $suite"
				((${#plain[@]})) && echo "install ${plain[*]}"
				echo "install -t $suite ${conflicting[*]}"
				return 0
			fi
			fv_apt_enable_backports "$suite"
		fi
		local again
		again=$(fv_apt_removals -t "$suite" -- "${conflicting[@]}")
		if [[ -z $again && -z $( ((${#plain[@]})) && fv_apt_removals -- "${plain[@]}") ]]; then
			((${#plain[@]})) && echo "install ${plain[*]}"
			echo "install -t $suite ${conflicting[*]}"
			return 0
		fi
		removals=$again
	fi
	fv_apt_die "installing ${conflicting[*]} would remove packages this machine has: $(paste -sd ',' <<<"$removals" | sed 's/,/, /g'). Nothing was installed. Resolve the conflict by hand (for example install ${conflicting[*]} from the suite those packages came from), then rerun."
}

fv_apt_install() {
	(($#)) || return 0
	if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		fv_apt_die "missing Debian packages: $*; as root: apt-get install --no-install-recommends $*"
	fi
	export DEBIAN_FRONTEND=noninteractive
	if [[ -z ${FV_APT_UPDATED:-} ]]; then
		apt-get update -qq >&2 || fv_apt_die "apt-get update failed"
		export FV_APT_UPDATED=1
	fi
	local plan line before after gone
	plan=$(fv_apt_plan "$@") || exit 1
	before=$(dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 == "ii" {print $2}' | sort)
	while IFS= read -r line; do
		[[ $line == install\ * ]] || fv_apt_die "unexpected install plan line: $line"
		# shellcheck disable=SC2086 # the plan's words are package names and apt options
		set -- ${line#install }
		fv_apt_say "installing Debian packages: $*"
		apt-get install -y -qq --no-install-recommends "$@" >&2 ||
			fv_apt_die "apt-get install --no-install-recommends $* failed"
	done <<<"$plan"
	# The simulation said nothing goes; make sure, and say so loudly if not.
	after=$(dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 == "ii" {print $2}' | sort)
	gone=$(comm -23 <(echo "$before") <(echo "$after") | paste -sd ' ')
	[[ -z $gone ]] || fv_apt_die "installing removed packages this machine had: $gone (apt did not say so in its simulation); reinstall them"
}
