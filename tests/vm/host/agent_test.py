#!/usr/bin/env python3
"""The guest's SSM agent stand-in (guest/agent.sh), tested without qemu.

    agent_test.py

Runs agent.sh under the host's busybox (the guest's shell and applets) on a
pty, and drives it through agent_link.py exactly as VmInstance does in the VM.
Checks what the runbook scenario relies on: exit codes and the status the
agent reports, stdout and stderr apart and whole, the agent's environment
(no bench variables, only the one test-only override), the orchestration
directory as working directory, stdin at EOF, a timeout and a cancel that kill
the command's whole process group, framing on the console for the bench's
checks, and a clean quit. Exit 0 when every check passed; each is printed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "..", "guest")
sys.path.insert(0, HERE)
from agent_link import STOPPED_EXIT_CODE, AgentError, AgentLink, ssm_status  # noqa: E402

FAILS = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}  {name:44} {str(detail)[:150]}")
    if not ok:
        FAILS.append(name)


def gone(pid, timeout=5.0):
    """True once PID no longer exists (or is a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def main():
    busybox = shutil.which("busybox")
    if not busybox:
        print("agent_test: busybox is needed (Debian: busybox-static)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="fv-agent-test.")
    proc = None
    try:
        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        subprocess.run([busybox, "--install", "-s", bindir], check=True)
        ssmdir = os.path.join(tmp, "ssm")
        master, slave = os.openpty()
        tty = os.ttyname(slave)
        console = open(os.path.join(tmp, "console.log"), "wb")
        env = {"PATH": bindir, "FV_AGENT_DIR": ssmdir, "FV_VOLUME_ID": "vol-0bench0variable0",
               "HOME": tmp}
        proc = subprocess.Popen(
            [os.path.join(bindir, "sh"), "-c", '. "$1"; . "$2"; fv_agent_serve "$3"', "agent",
             os.path.join(GUEST, "scenarios", "lib.sh"), os.path.join(GUEST, "agent.sh"), tty],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        link = AgentLink(master, "pty " + tty)
        link.wait_ready(20)

        r = link.run("first", "echo out\necho err >&2\nexit 3\n", 30)
        check("exit-code-and-streams-apart", r["rc"] == 3 and r["stdout"] == "out\n" and r["stderr"] == "err\n",
              r)
        check("nonzero-exit-is-Failed", ssm_status(r) == "Failed", ssm_status(r))
        r = link.run("ok", "true\n", 30)
        check("zero-exit-is-Success", ssm_status(r) == "Success" and r["ended"] == "exit", r)

        r = link.run("env", "env | sort; pwd; cat _script.sh | wc -c; cat; echo stdin-eof\n", 30)
        lines = r["stdout"].splitlines()
        check("env-has-only-the-test-override",
              "FV_TEST_ACCEPT_NVME_MODEL=QEMU NVMe Ctrl" in lines
              and not any(x.startswith("FV_") and not x.startswith("FV_TEST_ACCEPT_NVME_MODEL=") for x in lines),
              [x for x in lines if x.startswith("FV_")])
        check("cwd-is-the-orchestration-dir", os.path.join(ssmdir, r["id"]) in lines, lines[-3:])
        check("script-file-is-the-script-sent", str(len("env | sort; pwd; cat _script.sh | wc -c; cat; echo stdin-eof\n"))
              in [x.strip() for x in lines], lines[-2:])
        check("stdin-at-eof", lines[-1:] == ["stdin-eof"], lines[-1:])

        text = "".join(f"line {i} é\n" for i in range(2000))
        r = link.run("long", "i=0\nwhile [ $i -lt 2000 ]; do echo \"line $i é\"; i=$((i+1)); done\n"
                     "head -c 3000 /dev/zero | tr '\\0' x >&2\n", 60)
        check("long-output-kept-whole", r["stdout"] == text and r["stderr"] == "x" * 3000,
              f"{len(r['stdout'])} + {len(r['stderr'])} characters")

        t0 = time.monotonic()
        r = link.run("slow", "sleep 60 &\necho $! >bg.pid\necho started\nsleep 60\necho never\n", 1)
        secs = time.monotonic() - t0
        bg = open(os.path.join(ssmdir, r["id"], "bg.pid")).read().strip()
        check("timeout-is-TimedOut", ssm_status(r) == "TimedOut" and r["ended"] == "timeout"
              and r["stdout"] == "started\n", r)
        check("timeout-after-execution-timeout", 1 <= secs < 10, f"{secs:.1f} s")
        check("timeout-kills-the-process-group", gone(int(bg)), f"background child {bg}")

        r = link.run("cancelled", "sleep 60 &\necho $! >bg.pid\nsleep 60\n", 30, cancel_after=0.5)
        bg = open(os.path.join(ssmdir, r["id"], "bg.pid")).read().strip()
        check("cancel-is-Cancelled", ssm_status(r) == "Cancelled" and r["ended"] == "cancel", r)
        check("cancel-kills-the-process-group", gone(int(bg)), f"background child {bg}")
        r = link.run("own137", "exit 137\n", 30)
        check("exit-137-reads-as-TimedOut-as-the-agent-maps-it",
              ssm_status(r) == "TimedOut" and r["rc"] == STOPPED_EXIT_CODE, r)

        try:
            link.send(b"@@RUN c99 bad label 1 0 10 00\n")
            link.expect("@@NEVER", time.monotonic() + 10, "bad request")
            check("malformed-request-refused", False, "no @@BAD")
        except AgentError as e:
            check("malformed-request-refused", "@@BAD" in str(e), e)

        link.quit()
        proc.wait(timeout=10)
        check("quit-ends-the-loop", proc.returncode == 0, f"exit {proc.returncode}")
        console.close()
        log = open(os.path.join(tmp, "console.log"), encoding="utf-8", errors="replace").read()
        check("console-framing-for-the-bench",
              "@@FV-BEGIN ssm-first\nout\nerr\n@@FV-END ssm-first rc=3\n" in log
              and "@@FV ssm-first-rc 3\n" in log and "@@FV ssm-slow-ended timeout\n" in log,
              log[:120].replace("\n", " | "))
        os.close(slave)
        os.close(master)
    except (AgentError, OSError, subprocess.SubprocessError) as e:
        check("agent-protocol", False, e)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"agent_test: {len(FAILS)} failed" + (f": {', '.join(FAILS)}" if FAILS else ""))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
