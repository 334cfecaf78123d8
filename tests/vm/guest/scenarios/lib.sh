# shellcheck shell=sh
# Helpers for the guest's scenarios (busybox ash). Output protocol, parsed by
# tests/vm/host/results.py:
#   @@FV <key> <value>             one result
#   @@FV-BEGIN <name> / @@FV-END <name> rc=<n>   a block of command output
#   @@FV-FAIL <message>            the guest-side scenario failed
#   @@FV-DONE rc=<n>               end of the scenario (from /init)

fv_result() {
	k=$1
	shift
	echo "@@FV $k $*"
}

fv_fail() {
	echo "@@FV-FAIL $*"
}

# fv_block NAME CMD...: run CMD, its output (stdout and stderr) framed for the host.
fv_block() {
	n=$1
	shift
	echo "@@FV-BEGIN $n"
	"$@" 2>&1
	r=$?
	echo "@@FV-END $n rc=$r"
	return $r
}

# fv_wait_serial SERIAL: the NVMe namespace (nvmeXnY) whose controller serial is SERIAL.
fv_wait_serial() {
	i=0
	while [ $i -lt 100 ]; do
		for d in /sys/block/nvme*n*; do
			# qemu 8+ gives its NVMe controllers multipath capability, so
			# the kernel adds hidden per-path nodes (nvme0c0n1) beside the
			# head node (nvme0n1) that has the /dev entry; skip them as
			# crates/ebs and stage-0 do.
			case ${d##*/} in nvme*c*n*) continue ;; esac
			[ -e "$d/device/serial" ] || continue
			s=$(sed 's/[[:space:]]*$//' "$d/device/serial")
			if [ "$s" = "$1" ]; then
				basename "$d"
				return 0
			fi
		done
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# Sectors written to a block device so far (field 7 of /sys/block/X/stat).
# An NVMe multipath head (nvmeSnN; qemu >= 8's NVMe model has one) counts
# nothing itself: its I/O is counted on its hidden path nodes nvmeScCnN
# (seen on Debian's 6.1 kernel), which are added in. Without them every
# written-sector check read 0 -> 0 whatever was written.
fv_written_sectors() {
	n=$(awk '{print $7}' "/sys/block/$1/stat")
	case $1 in
	nvme*n*)
		h=${1#nvme}
		for p in /sys/block/nvme"${h%%n*}"c*n"${h#*n}"; do
			[ -e "$p/stat" ] || continue
			n=$((n + $(awk '{print $7}' "$p/stat")))
		done
		;;
	esac
	echo "$n"
}

# Page cache in KiB ("Cached" in /proc/meminfo).
fv_cached_kib() {
	awk '$1 == "Cached:" {print $2}' /proc/meminfo
}

# fv_ssm NAME: run the rendered SSM document's script /fv/ssm/NAME.sh the way
# the SSM agent does (sh, from the agent's orchestration directory, with a
# timeout), with the test-only NVMe model override in its environment.
fv_ssm() {
	name=$1
	tmo=${2:-600}
	d=/var/lib/amazon/ssm/$name
	mkdir -p "$d"
	cp "/fv/ssm/$name.sh" "$d/_script.sh"
	chmod 0700 "$d/_script.sh"
	t0=$(date +%s)
	echo "@@FV-BEGIN ssm-$name"
	# As under the agent: no terminal (output goes through a pipe, as the
	# agent's goes to files), stdin from /dev/null.
	(
		# shellcheck disable=SC3040 # busybox ash has pipefail
		set -o pipefail
		(cd "$d" && FV_TEST_ACCEPT_NVME_MODEL='QEMU NVMe Ctrl' timeout "$tmo" sh "$d/_script.sh" </dev/null) 2>&1 | cat
	)
	r=$?
	echo "@@FV-END ssm-$name rc=$r"
	fv_result "ssm-$name-rc" "$r"
	fv_result "ssm-$name-seconds" "$(($(date +%s) - t0))"
	return $r
}

# Where block device DEV (a name under /sys/block) is mounted, from
# /proc/self/mountinfo by major:minor: mount-helper mounts through the
# checked device's fd, so the source column of /proc/mounts reads
# /proc/self/fd/N, not /dev/DEV. Empty when not mounted.
fv_mountpoint_of() {
	[ -r "/sys/block/$1/dev" ] || return 0
	awk -v d="$(cat "/sys/block/$1/dev")" '$3 == d {print $5; exit}' /proc/self/mountinfo
}

# The forensics volume's mountpoint, empty when unmounted.
fv_volume_mountpoint() {
	fv_mountpoint_of "$VOLUME_DEV"
}

# Plant the memory tokens: the suspect file read into the page cache, and a
# process whose heap holds FVHEAP-<random>. Only the random suffix is printed
# (on the console, and as argv); the full token exists only in the shell's heap.
fv_plant_tokens() {
	cat /suspect/evidence/secret.txt >/dev/null || return 1
	r=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	# The holder blocks opening a FIFO nobody writes to: it never forks, so its
	# heap page never moves (a fork-and-write would copy it elsewhere during
	# the capture, and a live capture can miss a page that moves under it).
	mkfifo /run/fv-heap.fifo
	sh -c 'T="FVHEAP-$1"; read -r _ <"$2"; echo "$T"' fv-heap "$r" /run/fv-heap.fifo &
	hp=$!
	fv_result heap-suffix "$r"
	fv_result heap-pid "$hp"
	sleep 1
	fv_heap_pfns "$hp" "FVHEAP-$r"
	# A process with a file open and its cwd on the suspect disk: it is busy.
	(cd /suspect/evidence && exec sh -c 'exec 3<secret.txt; while :; do sleep 5; done') &
	fv_result busy-pid "$!"
}

fv_record_state() {
	sync
	fv_result "$1-suspect-written" "$(fv_written_sectors "$SUSPECT_DEV")"
	fv_result "$1-cached-kib" "$(fv_cached_kib)"
}

# fv_heap_pfns PID TOKEN: report the physical frames of PID's heap pages that
# hold TOKEN (from /proc/PID/mem and /proc/PID/pagemap), so that the host can
# say what the image holds at that address if the token is missing.
fv_heap_pfns() {
	range=$(awk '$NF == "[heap]" {print $1; exit}' "/proc/$1/maps")
	[ -n "$range" ] || return 0
	s=$((0x${range%-*} / 4096))
	e=$((0x${range#*-} / 4096))
	pfns=''
	while [ "$s" -lt "$e" ]; do
		# (busybox grep -F and -q miss matches in binary data; a regex with -o does not)
		found=$(dd if="/proc/$1/mem" bs=4096 skip="$s" count=1 2>/dev/null | grep -a -o 'FVHEAP-[0-9a-f]*')
		if printf '%s\n' "$found" | grep -q -x -- "$2"; then
			ent=$(dd if="/proc/$1/pagemap" bs=8 skip="$s" count=1 2>/dev/null | od -An -tx8 | tr -d ' ')
			# bits 0-54: page frame number; bit 63: present.
			pfns="$pfns $(printf '%x' $((0x$ent & 0x7fffffffffffff)))"
		fi
		s=$((s + 1))
	done
	fv_result heap-token-pfns "${pfns# }"
}

# fv_plant_analysis: what the host's Volatility run on the capture must find
# (issue 16): a process with a random name (a copy of bash, since busybox
# dispatches on argv[0]; the comm is the file's name), a TCP listener on a
# random port, and an interactive bash holding a command in its history. The
# loaded module is `loop` (modprobe'd by /init). Everything lives in /run
# (tmpfs): nothing touches the suspect disk.
fv_plant_analysis() {
	[ -x /bin/bash ] || return 1
	r=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
	name=fvp$r
	cp /bin/bash "/run/$name" || return 1
	"/run/$name" --norc --noprofile -c 'while :; do sleep 3600; done' </dev/null >/dev/null 2>&1 &
	fv_result analysis-process "$name $!"
	port=$((20000 + 0x${r%????} % 10000))
	nc -l -p "$port" </dev/null >/dev/null 2>&1 &
	fv_result analysis-port "$port $!"
	# An interactive bash reading commands from a FIFO whose writer stays
	# open (no EOF, so it never exits); the command is remembered in its
	# history, with the timestamp linux.bash looks for.
	mkfifo /run/fv-bash.fifo || return 1
	HISTFILE=/run/fv-bash-history /bin/bash --norc --noprofile -i </run/fv-bash.fifo >/dev/null 2>&1 &
	bp=$!
	sleep 86400 >/run/fv-bash.fifo &
	cmd="echo fvbash-$r"
	echo "$cmd >/dev/null" >/run/fv-bash.fifo
	fv_result analysis-bash "$bp $cmd >/dev/null"
	sleep 1
	grep -q '^State:' "/proc/$bp/status" || return 1
	# A module that hides itself as a rootkit does (issue 26; the host put
	# it in the overlay): loaded with a token and a number as parameters,
	# then absent from /proc/modules; linux.hidden_modules must carve it.
	if [ -f /fv/fvhide.ko ]; then
		insmod /fv/fvhide.ko "token=fvhide-$r" "number=$((0x${r#????}))" || return 1
		fv_result analysis-hidden-module "fvhide fvhide-$r $((0x${r#????}))"
		fv_result analysis-hidden-in-proc-modules "$(grep -c '^fvhide ' /proc/modules)"
	fi
	fv_block analysis-modules cat /proc/modules
}
