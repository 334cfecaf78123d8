"""shellcheck, and the checks that run capture.sh, unmount.sh and stop.sh (run by check.py).

shellcheck on deploy/'s shell tools, the sources and the scripts extracted
from the rendered documents. Then, under dash and busybox ash, the rendered
Forensics-CaptureMemory, -UnmountVolume and -StopCapture scripts against a
fixture forensics volume under /run with test doubles for the binaries:
capture's arguments and the time-budget watchdog (SIGTERM, a partial image),
refusals of read-only or missing mounts, the Source values it takes against
the documents' (S10), the toolkit pin (L11), the unmount
helper's refusal passed through and the mount proven gone, StopCapture ending
a capture and leaving a stale pid alone. Why: these scripts run on the
suspect instance as root; their verdicts and exit codes are what the runbook
and the responder act on.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time

import fvdeploy
import ssm_script
from check_stage0 import TARGET
from checklib import DEPLOY, SHELLS, check, documents, expect


# ---- shellcheck -------------------------------------------------------------------------

@check("shellcheck: sources, tools and the scripts extracted from the rendered documents")
def check_shellcheck():
    files = [os.path.join(DEPLOY, f) for f in ("render.sh", "check.sh", "publish.sh", "automation.sh")]
    files += [os.path.join(fvdeploy.SCRIPTS, f) for f in fvdeploy.SHELL_SCRIPTS]
    with tempfile.TemporaryDirectory() as tmp:
        for name in fvdeploy.COMMAND_DOCUMENTS:
            doc = documents()[name]
            raw = "\n".join(doc["mainSteps"][0]["inputs"]["runCommand"]) + "\n"
            path = os.path.join(tmp, name + ".rendered.sh")
            with open(path, "w") as f:
                f.write(raw)
            files.append(path)
        r = subprocess.run(["shellcheck", "--shell=sh", "--severity=style"] + files, capture_output=True, text=True)
        expect(r.returncode == 0, "shellcheck found problems:\n%s" % r.stdout[-4000:])

# ---- capture.sh and unmount.sh -------------------------------------------------------------

FAKE_CAPTURE = """#!/bin/sh
# Test double for capture's process behaviour only (arguments; SIGTERM ends in
# exit 20, a labelled partial image, per docs/capture.md): the real binary is
# tested in crates/capture and in the VM tests.
printf '%s\\n' "$@" > "$FV_TEST_ARGS"
trap 'echo "capture: SIGTERM: finalizing partial image"; exit 20' TERM
while :; do sleep 1; done
"""

FAKE_UNMOUNT = """#!/bin/sh
printf '%s\\n' "$@" > "$FV_TEST_ARGS"
printf '{"mountpoint": "%s", "holders": []}\\n' "$2"
exit "$FV_TEST_RC"
"""


class VolumeFixture:
    """A directory under /run that stands for the mounted forensics volume
    (the scripts refuse mount points outside /run), and a mountinfo."""

    def __init__(self, options="rw,nosuid,nodev,noatime"):
        os.makedirs("/run", exist_ok=True)
        self.mp = tempfile.mkdtemp(prefix="fv-check-", dir="/run")
        self.tmp = tempfile.mkdtemp(prefix="fv-check-")
        self.proc = os.path.join(self.tmp, "proc")
        os.makedirs(os.path.join(self.proc, "self"))
        arch = os.uname().machine
        self.bin = os.path.join(self.mp, "bin", arch)
        os.makedirs(self.bin)
        os.makedirs(os.path.join(self.mp, "captures"))
        with open(os.path.join(self.mp, "forensics-volume.json"), "w") as f:
            f.write('{"toolkit":"forensics-volume"}\n')
        self.mountinfo(options)
        with open(os.path.join(self.proc, "meminfo"), "w") as f:
            f.write("MemTotal:       16384000 kB\nMemFree:  1000 kB\n")
        self.args = os.path.join(self.tmp, "args")

    def mountinfo(self, options):
        with open(os.path.join(self.proc, "self", "mountinfo"), "w") as f:
            f.write("25 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n")
            if options:
                f.write("90 25 259:7 / %s %s shared:9 - ext4 /dev/nvme3n1 rw\n" % (self.mp, options))

    def tool(self, name, text):
        path = os.path.join(self.bin, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)

    def close(self):
        shutil.rmtree(self.mp, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, shell, document, params, env_extra=None, timeout=120):
        text, _ = ssm_script.script(documents()[document], dict(params, MountPoint=self.mp))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FV_PROC_ROOT": self.proc, "FV_TEST_ARGS": self.args}
        env.update(env_extra or {})
        return subprocess.run(SHELLS[shell] + ["-c", text, "fv"], capture_output=True, text=True, env=env,
                              timeout=timeout)


CAPTURE_PARAMS = {"VolumeId": TARGET, "CaseId": "IR-42", "Examiner": "A. Responder", "Note": "beacon (P1)",
                  "UseImds": "false", "Threads": "2"}


FAKE_QUICK_CAPTURE = """#!/bin/sh
# Test double: a capture that completes at once and prints its final line.
printf '%s\\n' "$@" > "$FV_TEST_ARGS"
echo "capture: progress 50 %"
echo "capture: complete: 2.0 GiB of RAM in 3 range(s) from kcore in 1s -> x (1 MiB, 1.0 %); sha256 manifest.json=$(printf '1%.0s' $(seq 64)) memory.lime.zst=$(printf '2%.0s' $(seq 64)) lime=$(printf '3%.0s' $(seq 64))"
exit 0
"""


def make_pin_checks(shell):
    @check("capture.sh (%s): the toolkit pin: runs only a capture that matches SHA256SUMS and the document's pin (L11); capture's final line second" % shell)
    def pin():
        v = VolumeFixture()
        try:
            v.tool("capture", FAKE_QUICK_CAPTURE)
            rel = "bin/%s/capture" % os.uname().machine
            with open(os.path.join(v.mp, rel), "rb") as f:
                good = hashlib.sha256(f.read()).hexdigest()
            sums = os.path.join(v.mp, "SHA256SUMS")
            with open(sums, "w") as f:
                f.write("%s  forensics-volume.json\n%s  %s\n" % ("0" * 64, good, rel))
            with open(sums, "rb") as f:
                pin_value = hashlib.sha256(f.read()).hexdigest()
            params = dict(CAPTURE_PARAMS, ExecutionTimeout="600")
            fvdeploy.set_toolkit_sums(pin_value)
            try:
                r = v.run(shell, "Forensics-CaptureMemory", params)
                lines = r.stdout.splitlines()
                expect(r.returncode == 0 and lines[0].startswith("Forensics-CaptureMemory: OK"),
                       "pinned, matching: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
                expect(lines[1].startswith("capture: complete") and "sha256 manifest.json=" in lines[1],
                       "capture's final line is not second:\n%s" % r.stdout)
                # The binary altered after the volume was built (e.g. on the read-write mount).
                with open(os.path.join(v.mp, rel), "a") as f:
                    f.write("# altered\n")
                os.unlink(v.args)
                r = v.run(shell, "Forensics-CaptureMemory", params)
                expect(r.returncode == 44 and "the toolkit was altered" in r.stderr and not os.path.exists(v.args),
                       "altered binary: exit %d %s" % (r.returncode, r.stderr))
                # SHA256SUMS rewritten to match the altered binary: the pin catches it.
                with open(os.path.join(v.mp, rel), "rb") as f:
                    bad = hashlib.sha256(f.read()).hexdigest()
                with open(sums, "w") as f:
                    f.write("%s  forensics-volume.json\n%s  %s\n" % ("0" * 64, bad, rel))
                r = v.run(shell, "Forensics-CaptureMemory", params)
                expect(r.returncode == 44 and "this document was built for" in r.stderr and not os.path.exists(v.args),
                       "re-hashed SHA256SUMS: exit %d %s" % (r.returncode, r.stderr))
            finally:
                fvdeploy.set_toolkit_sums("")
            # No pin (rendered by hand): runs, and says what it did not check.
            r = v.run(shell, "Forensics-CaptureMemory", params)
            expect(r.returncode == 0 and "carries no toolkit pin" in r.stderr, "unpinned: exit %d %s"
                   % (r.returncode, r.stderr))
        finally:
            v.close()

    # The console keeps the first 2,400 characters of stdout: a capture
    # with a full log (a dozen progress lines) and the longest final line
    # (PARTIAL, with the digests and the advice to take them off the host,
    # issue 23) must still show the verdict and the whole final line first,
    # and stay under it.
    @check("capture.sh (%s): with a full log and a long final line, stdout stays under SSM's 2,400 characters" % shell)
    def console_budget():
        v = VolumeFixture()
        try:
            final = ("capture: PARTIAL (interrupted by SIGTERM; 1.2 GiB zero-filled, 3.4 GiB not reached and left out, "
                     "of 16.0 GiB; the source's remainder is unknown): 16.0 GiB of RAM in 17 range(s) from kcore in "
                     "4m02s (67.7 MiB/s) -> /run/forensics-volume/%s/captures/i-0123456789abcdef0_20261207T101500Z "
                     "(2.1 GiB, 13.1 %%); 4.0 KiB unreadable in 1 span(s), zero-filled; sha256 manifest.json=%s "
                     "memory.lime.zst=%s lime=%s; copy these three digests off this host now (e.g. into the case "
                     "ticket): the analyst gives them to capture verify --expect-manifest-sha256 --expect-sha256 "
                     "--expect-lime-sha256 (docs/break-glass.md)" % (TARGET, "1" * 64, "2" * 64, "3" * 64))
            progress = "".join("echo 'capture: %d %%: %d.0 GiB of 16.0 GiB at 67.7 MiB/s, ETA 3m40s'\n"
                               % (10 * i, i) for i in range(1, 13))
            with open(os.path.join(v.bin, "final.txt"), "w") as f:
                f.write(final + "\n")
            v.tool("capture", "#!/bin/sh\nprintf '%%s\\n' \"$@\" > \"$FV_TEST_ARGS\"\n%scat \"${0%%/*}/final.txt\"\nexit 20\n"
                   % progress)
            r = v.run(shell, "Forensics-CaptureMemory", dict(CAPTURE_PARAMS, ExecutionTimeout="600"))
            lines = r.stdout.splitlines()
            expect(r.returncode == 20 and lines and lines[0].startswith("Forensics-CaptureMemory: PARTIAL"),
                   "exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
            expect(len(lines) > 1 and lines[1] == final, "the final line is not second and whole:\n%s" % r.stdout)
            expect(len(r.stdout) <= 2400, "stdout is %d characters (SSM keeps 2,400):\n%s" % (len(r.stdout), r.stdout))
        finally:
            v.close()

    return [pin, console_budget]


def _watchdog_check(shell):
    @check("capture.sh (%s): arguments, and SIGTERM to capture when the time budget is spent" % shell)
    def watchdog():
        v = VolumeFixture()
        try:
            v.tool("capture", FAKE_CAPTURE)
            start = time.monotonic()
            r = v.run(shell, "Forensics-CaptureMemory", dict(CAPTURE_PARAMS, ExecutionTimeout="35"))
            took = time.monotonic() - start
            out = r.stdout + r.stderr
            expect(r.returncode == 20, "exit %d, expected capture's 20 (partial, interrupted):\n%s" % (r.returncode, out))
            # 16000 MiB of RAM: margin 30 s + 2 s/GiB = 61 s, capped at half
            # the 35 s timeout, so the budget is 18 s.
            expect(17 <= took < 32, "took %.1fs; the budget was 18s" % took)
            expect("time budget of 18s spent" in out and "SIGTERM: finalizing" in out, "no watchdog message:\n%s" % out)
            expect(r.stdout.strip().splitlines()[0].startswith("Forensics-CaptureMemory: PARTIAL (capture exit 20)"),
                   "the verdict is not the first line:\n%s" % r.stdout)
            expect("SIGTERM: finalizing" in r.stdout and "logs/capture-" in r.stdout,
                   "capture's log tail does not follow the verdict:\n%s" % r.stdout)
            expect(not os.path.exists(os.path.join(v.mp, "logs", "capture.pid")), "capture.pid left behind")
            with open(v.args) as f:
                args = f.read().split("\n")[:-1]
            want = ["--case-id", "IR-42", "--examiner", "A. Responder", "--source", "auto", "--output",
                    v.mp + "/captures", "--volume-id", TARGET, "--note", "beacon (P1)", "--threads", "2", "--no-imds"]
            expect(args == want, "capture got %r, expected %r" % (args, want))
            expect("may end partial" in out, "no warning for a timeout too short for 15 GiB of RAM:\n%s" % out)
        finally:
            v.close()

    return watchdog


def _refusals_check(shell):
    @check("capture.sh (%s): refuses a read-only or missing mount, and a missing LiME module" % shell)
    def refusals():
        v = VolumeFixture(options="ro,nosuid,nodev")
        try:
            v.tool("capture", FAKE_CAPTURE)
            r = v.run(shell, "Forensics-CaptureMemory", dict(CAPTURE_PARAMS, ExecutionTimeout="600"))
            expect(r.returncode == 43 and "read-only" in r.stderr, "ro mount: exit %d %s" % (r.returncode, r.stderr))
            v.mountinfo(None)
            r = v.run(shell, "Forensics-CaptureMemory", dict(CAPTURE_PARAMS, ExecutionTimeout="600"))
            expect(r.returncode == 43 and "run Forensics-MountVolume first" in r.stderr, "no mount: exit %d" % r.returncode)
            v.mountinfo("rw")
            r = v.run(shell, "Forensics-CaptureMemory", dict(CAPTURE_PARAMS, ExecutionTimeout="600", Source="lime-module"))
            expect(r.returncode == 44 and "no LiME module for kernel" in r.stderr, "module: exit %d %s"
                   % (r.returncode, r.stderr))
            expect(not os.path.exists(v.args), "capture ran although it was refused")
        finally:
            v.close()

    return refusals


def _sources_check(shell):
    @check("capture.sh (%s): takes exactly the Source values both capture documents allow (S10); "
           "lime-tcp is in none (S1)" % shell)
    def sources():
        allowed = {}
        for name in ("Forensics-CaptureMemory", "Forensics-CaptureInstanceMemory"):
            spec = documents()[name]["parameters"]["Source"]
            expect("allowedValues" in spec and "allowedPattern" not in spec,
                   "%s.Source is not a closed list of allowedValues: capture.sh and capture (crates/acquire "
                   "spec.rs) can only be compared with a list" % name)
            allowed[name] = spec.get("allowedValues", [])
        values = allowed["Forensics-CaptureMemory"]
        expect(sorted(values) == sorted(allowed["Forensics-CaptureInstanceMemory"]),
               "the two documents allow different sources: %r" % allowed)
        expect(not [x for x in values if x.startswith("lime-tcp")], "lime-tcp is offered: %r" % values)
        near = ["lime-tcp:127.0.0.1:4444", "lime-tcp:localhost:4444", "lime-tcp:[::1]:4444", "lime:-",
                "lime:/run/lime/fifo", "lime-module:auto", "lime-module:/tmp/lime.ko", "Auto", "auto "]
        # (An empty Source is capture.sh's default, auto, for runs by hand;
        # the documents always pass one of their values.)
        v = VolumeFixture()
        try:
            v.tool("capture", FAKE_QUICK_CAPTURE)
            release = os.uname().release
            os.makedirs(os.path.join(v.mp, "modules", release))
            with open(os.path.join(v.mp, "modules", release, "lime.ko"), "w") as f:
                f.write("not a module: capture is a test double here\n")
            step = ssm_script.shell_step(documents()["Forensics-CaptureMemory"])
            base = ssm_script.resolve(documents()["Forensics-CaptureMemory"],
                                      dict(CAPTURE_PARAMS, ExecutionTimeout="600", MountPoint=v.mp))
            for value in values + near:
                # Substituted as the agent would, past the document's own
                # check: what capture.sh alone accepts.
                text = ssm_script.substitute("\n".join(step["inputs"]["runCommand"]) + "\n",
                                             dict(base, Source=value))
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FV_PROC_ROOT": v.proc,
                       "FV_TEST_ARGS": v.args}
                r = subprocess.run(SHELLS[shell] + ["-c", text, "fv"], capture_output=True, text=True, env=env,
                                   timeout=60)
                took = r.returncode == 0
                expect(took == (value in values),
                       "capture.sh %s Source=%r, the documents %s it (exit %d: %s)"
                       % ("takes" if took else "refuses", value, "allow" if value in values else "refuse",
                          r.returncode, r.stderr.strip()[-300:]))
                if not took:
                    expect(r.returncode == 40 and "source '" in r.stderr, "Source=%r: exit %d %s"
                           % (value, r.returncode, r.stderr))
        finally:
            v.close()

    return sources


def _unmount_check(shell):
    @check("unmount.sh (%s): passes the helper's refusal through, and proves the mount is gone" % shell)
    def unmount():
        v = VolumeFixture()
        try:
            v.tool("unmount-helper", FAKE_UNMOUNT)
            r = v.run(shell, "Forensics-UnmountVolume", {"VolumeId": TARGET}, {"FV_TEST_RC": "5"})
            expect(r.returncode == 5 and "do NOT detach" in r.stdout, "busy: exit %d %s" % (r.returncode, r.stdout))
            # P1: unmount-helper's JSON goes to stderr; stdout is the verdict alone.
            expect(r.stdout.startswith("Forensics-UnmountVolume: FAILED (exit 5)") and len(r.stdout.splitlines()) == 1,
                   "stdout is not the verdict alone: %r" % r.stdout)
            with open(v.args) as f:
                expect(f.read().split() == ["--volume-id", TARGET, "--mountpoint", v.mp, "--json"], "unmount-helper arguments")
            r = v.run(shell, "Forensics-UnmountVolume", {"VolumeId": TARGET}, {"FV_TEST_RC": "0"})
            expect(r.returncode == 45 and "still mounted" in r.stdout, "fake success: exit %d %s" % (r.returncode, r.stdout))
            v.mountinfo(None)
            r = v.run(shell, "Forensics-UnmountVolume", {"VolumeId": TARGET}, {"FV_TEST_RC": "0"})
            expect(r.returncode == 0 and "nothing is mounted" in r.stdout, "not mounted: exit %d %s" % (r.returncode, r.stdout))
        finally:
            v.close()

    return unmount


def _stop_check(shell):
    @check("stop.sh (%s): Forensics-StopCapture ends a running capture with SIGTERM (a partial image), "
           "and leaves a stale pid alone" % shell)
    def stop():
        v = VolumeFixture()
        try:
            v.tool("capture", FAKE_CAPTURE)
            text, _ = ssm_script.script(documents()["Forensics-CaptureMemory"],
                                        dict(CAPTURE_PARAMS, ExecutionTimeout="3600", MountPoint=v.mp))
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FV_PROC_ROOT": v.proc, "FV_TEST_ARGS": v.args}
            cap = subprocess.Popen(SHELLS[shell] + ["-c", text, "fv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=env)
            pidfile = os.path.join(v.mp, "logs", "capture.pid")
            deadline = time.monotonic() + 20
            while not os.path.exists(pidfile) and time.monotonic() < deadline:
                time.sleep(0.1)
            expect(os.path.exists(pidfile), "capture.sh wrote no logs/capture.pid")
            with open(pidfile) as f:
                pid = f.read().strip()
            # The fixture's /proc names the process as the volume's capture binary.
            os.makedirs(os.path.join(v.proc, pid))
            os.symlink(os.path.join(v.bin, "capture"), os.path.join(v.proc, pid, "exe"))
            r = v.run(shell, "Forensics-StopCapture", {"VolumeId": TARGET, "WaitSeconds": "20"})
            out, err = cap.communicate(timeout=60)
            expect(r.returncode == 0 and r.stdout.startswith("Forensics-StopCapture: OK: capture (pid %s)" % pid)
                   and "stopped after SIGTERM" in r.stdout, "stop: exit %d %r %r" % (r.returncode, r.stdout, r.stderr))
            expect(cap.returncode == 20 and out.startswith("Forensics-CaptureMemory: PARTIAL (capture exit 20)"),
                   "capture after stop: exit %s %r" % (cap.returncode, out))
            expect(not os.path.exists(pidfile), "capture.pid left behind")
            # A stale pid file (a capture killed by a cancel): not signalled.
            with open(pidfile, "w") as f:
                f.write("%d\n" % os.getpid())
            r = v.run(shell, "Forensics-StopCapture", {"VolumeId": TARGET, "WaitSeconds": "0"})
            expect(r.returncode == 0 and "nothing to stop" in r.stdout, "stale: exit %d %r" % (r.returncode, r.stdout))
            with open(pidfile, "w") as f:
                f.write("12x\n")
            r = v.run(shell, "Forensics-StopCapture", {"VolumeId": TARGET})
            expect(r.returncode == 46 and r.stdout.startswith("Forensics-StopCapture: FAILED (exit 46)"),
                   "malformed pid file: exit %d %r" % (r.returncode, r.stdout))
        finally:
            v.close()

    return stop


def make_capture_checks(shell):
    """The Command documents' scripts under SHELL: capture.sh, unmount.sh, stop.sh."""
    return [make(shell) for make in (_watchdog_check, _refusals_check, _sources_check, _unmount_check, _stop_check)]
