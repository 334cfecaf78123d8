# shellcheck shell=sh
# The bench's stand-in for the SSM agent (busybox ash), sourced by a guest
# scenario. It serves one request at a time from a serial port the host's
# tests/vm/host/vm_instance.py talks to (qemu's second UART, ttyS1, on a Unix
# socket on the host). It runs what the host sends -- the rendered Command
# document's script, built on the host by ssm_extract.py -- the way the agent
# runs an aws:runShellScript step: written to a file in the orchestration
# directory (/var/lib/amazon/ssm/<id>; FV_AGENT_DIR for host/agent_test.py),
# run by sh with stdin from /dev/null and stdout and stderr to files, killed
# with its whole process group (SIGKILL) when the execution timeout passes or
# SSM cancels it. The full stdout and stderr go back; the console cut is the
# engine's business.
#
# Protocol, one request at a time (ASCII lines; payloads base64):
#   host:  @@RUN <id> <label> <timeout-s> <cancel-s> <bytes> <sha256>
#          then <bytes> of base64 script; cancel-s 0: never cancelled, else
#          SSM cancels the command that many seconds into it
#   guest: @@ACK <id>                                         (delivered)
#   guest: @@RESULT <id> rc=<n> ended=<exit|timeout|cancel> seconds=<s>
#          <base64 stdout lines> @@ERR <base64 stderr lines> @@DONE <id>
#   host:  @@MOUNTED <serial>       guest: @@MOUNTED <mountpoint, or nothing>
#   host:  @@OBS <label> [serial]   guest: runs fv_agent_observe (the scenario's hook), @@OK <label>
#   host:  @@QUIT                   guest: @@BYE, the loop returns
#   guest: @@READY                  once, when it starts serving
#   guest: @@BAD <text>             a request it could not parse (the host fails)
#
# The script runs with the test-only FV_TEST_ACCEPT_NVME_MODEL='QEMU NVMe Ctrl'
# in its environment, as every other scenario's documents do; its environment
# is otherwise only PATH and HOME. On the console, each run is also framed as
# the @@FV-BEGIN ssm-<label> block and ssm-<label>-rc/-seconds/-ended results
# that host/scenarios.sh checks.

# fv_agent_serve TTY: serve requests on TTY until @@QUIT; non-zero if the
# port cannot be opened.
fv_agent_serve() {
	tty=$1
	[ -c "$tty" ] || {
		fv_fail "agent: no serial port $tty"
		return 1
	}
	stty -F "$tty" 115200 raw -echo -echoe -echok -echoctl -echoke 2>/dev/null ||
		stty -F "$tty" raw -echo || {
		fv_fail "agent: cannot set $tty raw"
		return 1
	}
	exec 4<>"$tty"
	echo "@@READY" >&4
	while IFS=' ' read -r verb a1 a2 a3 a4 a5 a6 _rest <&4; do
		case $verb in
		@@RUN) fv_agent_run "$a1" "$a2" "$a3" "$a4" "$a5" "$a6" ;;
		@@MOUNTED) echo "@@MOUNTED $(fv_agent_mountpoint "$a1")" >&4 ;;
		@@OBS)
			if command -v fv_agent_observe >/dev/null 2>&1; then
				fv_agent_observe "$a1" "$a2" </dev/null 4>&-
			fi
			echo "@@OK $a1" >&4
			;;
		@@QUIT)
			echo "@@BYE" >&4
			break
			;;
		'') ;;
		*) echo "@@BAD unknown request '$verb'" >&4 ;;
		esac
	done
	exec 4>&-
	return 0
}

# fv_agent_mountpoint SERIAL: where the NVMe namespace with that serial is
# mounted (first mountpoint; empty when not present or not mounted), by
# major:minor (lib.sh fv_mountpoint_of: mount-helper mounts through an fd).
fv_agent_mountpoint() {
	for d in /sys/block/nvme*n*; do
		case ${d##*/} in nvme*c*n*) continue ;; esac # hidden multipath path node
		[ -e "$d/device/serial" ] || continue
		[ "$(sed 's/[[:space:]]*$//' "$d/device/serial")" = "$1" ] || continue
		fv_mountpoint_of "${d##*/}"
		return 0
	done
}

# fv_agent_run ID LABEL TIMEOUT CANCEL BYTES SHA256: read and run one script.
fv_agent_run() {
	id=$1 label=$2 tmo=$3 cancel=$4 bytes=$5 sum=$6
	case "$id$label" in *[!A-Za-z0-9_-]* | '') echo "@@BAD id/label '$id' '$label'" >&4 && return ;; esac
	case "$tmo$bytes" in *[!0-9]* | '') echo "@@BAD timeout/bytes '$tmo' '$bytes'" >&4 && return ;; esac
	case "$cancel" in *[!0-9.]* | '') echo "@@BAD cancel '$cancel'" >&4 && return ;; esac
	d=${FV_AGENT_DIR:-/var/lib/amazon/ssm}/$id
	mkdir -p "$d"
	head -c "$bytes" <&4 >"$d/script.b64"
	if ! base64 -d "$d/script.b64" >"$d/_script.sh" 2>/dev/null ||
		[ "$(sha256sum "$d/_script.sh" | cut -d' ' -f1)" != "$sum" ]; then
		echo "@@BAD $id: script payload corrupt ($(wc -c <"$d/script.b64") of $bytes bytes)" >&4
		return
	fi
	rm -f "$d/script.b64"
	chmod 0700 "$d/_script.sh"
	echo "@@ACK $id" >&4
	t0=$(date +%s)
	# Its own session and process group, as the agent starts commands, so a
	# timeout or a cancel can kill everything it started (the agent:
	# kill(-pid, SIGKILL), amazon-ssm-agent executers_unix.go).
	# The environment is the agent's, not the bench's: a PATH, HOME, and the
	# one test-only override (nothing from run.env).
	(
		cd "$d" || exit 127
		exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			FV_TEST_ACCEPT_NVME_MODEL='QEMU NVMe Ctrl' setsid sh "$d/_script.sh" </dev/null >"$d/stdout" 2>"$d/stderr" 4>&-
	) &
	pid=$!
	# The watchdogs, each in a process group of its own, so that killing the
	# group after a normal end takes its sleep with it.
	# shellcheck disable=SC2016 # the watchdogs' own positional parameters
	setsid sh -c 'sleep "$1"; echo timeout >"$3"; kill -KILL -- "-$2"' fv-timeout "$tmo" "$pid" "$d/ended" </dev/null >/dev/null 2>&1 4>&- &
	wd=$!
	cw=''
	if [ "$cancel" != 0 ]; then
		# shellcheck disable=SC2016
		setsid sh -c 'sleep "$1"; echo cancel >"$3"; kill -KILL -- "-$2"' fv-cancel "$cancel" "$pid" "$d/ended" </dev/null >/dev/null 2>&1 4>&- &
		cw=$!
	fi
	wait "$pid"
	rc=$?
	for w in $wd $cw; do
		# The group, and the process itself in case it has not called
		# setsid yet (then there is no group to kill and it would live on).
		kill -KILL -- "-$w" "$w" 2>/dev/null
		wait "$w" 2>/dev/null
	done
	ended='exit'
	[ -s "$d/ended" ] && read -r ended <"$d/ended"
	secs=$(($(date +%s) - t0))
	echo "@@FV-BEGIN ssm-$label"
	cat "$d/stdout" "$d/stderr"
	echo "@@FV-END ssm-$label rc=$rc"
	fv_result "ssm-$label-rc" "$rc"
	fv_result "ssm-$label-seconds" "$secs"
	fv_result "ssm-$label-ended" "$ended"
	{
		echo "@@RESULT $id rc=$rc ended=$ended seconds=$secs"
		base64 "$d/stdout"
		echo "@@ERR"
		base64 "$d/stderr"
		echo "@@DONE $id"
	} >&4
}
