"""Checks that run stage-0 (mount.sh, as Forensics-MountVolume renders it) (run by check.py).

Under dash and busybox ash, against fixture /sys and /proc trees: it finds
the requested volume among root, instance store, other EBS volumes and
multipath nodes (Nitro serials, Xen names), and refuses mounted, held,
swapped, ambiguous or wrong-sized devices with its documented exit codes.
As root, on loop devices: it mounts read-only on a fresh /run directory,
hands over to the mount helper, honours the toolkit pin, and refuses
planted or busy mount points, leaving nothing behind. Also: SSM refuses
injection in every parameter, and the script re-validates values by hand.
Why: stage-0 runs on the suspect instance before any of our binaries is
trusted; picking the wrong disk, or writing to one, spoils the evidence.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

import fvdeploy
import ssm_script
from checklib import SHELLS, CheckFailed, check, documents, expect


# ---- stage-0 against fixture sysfs trees -----------------------------------------------

class Fixture:
    """A fake /sys and /proc for stage-0's find mode."""

    def __init__(self, root):
        self.root = root
        self.sys = os.path.join(root, "sys")
        self.proc = os.path.join(root, "proc")
        os.makedirs(os.path.join(self.sys, "block"))
        os.makedirs(os.path.join(self.proc, "self"))
        self.mounts = []
        self.swaps = []
        self._minor = 0

    def _write(self, path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def disk(self, name, serial=None, model=None, gib=8, partitions=0, holders=()):
        d = os.path.join(self.sys, "block", name)
        os.makedirs(os.path.join(d, "holders"))
        major = 259 if name.startswith("nvme") else 202
        self._minor += 1
        self._write(os.path.join(d, "dev"), "%d:%d\n" % (major, self._minor))
        self._write(os.path.join(d, "size"), "%d\n" % (gib * 2097152))
        if serial is not None:
            # sysfs pads the fields: serial to 20 bytes, model to 40.
            self._write(os.path.join(d, "device", "serial"), "%-20s\n" % serial)
            self._write(os.path.join(d, "device", "model"), "%-40s\n" % model)
        for h in holders:
            self._write(os.path.join(d, "holders", h), "")
        for i in range(1, partitions + 1):
            pname = name + ("p%d" % i if name[-1].isdigit() else "%d" % i)
            p = os.path.join(d, pname)
            os.makedirs(os.path.join(p, "holders"))
            self._write(os.path.join(p, "partition"), "%d\n" % i)
            self._minor += 1
            self._write(os.path.join(p, "dev"), "%d:%d\n" % (major, self._minor))
        return self

    def devnum(self, name):
        """major:minor of a disk or partition in the fixture."""
        block = os.path.join(self.sys, "block")
        for path in [os.path.join(block, name)] + [os.path.join(block, d, name) for d in sorted(os.listdir(block))]:
            if os.path.isfile(os.path.join(path, "dev")):
                with open(os.path.join(path, "dev")) as f:
                    return f.read().strip()
        raise KeyError(name)

    def holder(self, disk, partition, holder):
        self._write(os.path.join(self.sys, "block", disk, partition, "holders", holder), "")
        return self

    def mount(self, name, mountpoint, fstype="ext4"):
        self.mounts.append("%d 1 %s / %s rw,relatime shared:1 - %s /dev/%s rw"
                           % (20 + len(self.mounts), self.devnum(name), mountpoint, fstype, name))
        return self

    def swap(self, name):
        self.swaps.append("/dev/%s partition 1048572 0 -2" % name)
        return self

    def finish(self):
        self._write(os.path.join(self.proc, "self", "mountinfo"), "\n".join(self.mounts) + "\n")
        self._write(os.path.join(self.proc, "swaps"),
                    "Filename\tType\tSize\tUsed\tPriority\n" + "".join(s + "\n" for s in self.swaps))
        return self


EBS = "Amazon Elastic Block Store"
STORE = "Amazon EC2 NVMe Instance Storage"
TARGET = "vol-0123456789abcdef0"
ROOTVOL = "vol-0aaaaaaaaaaaaaaaa"


def nitro(fx, target_model=EBS):
    fx.disk("nvme0n1", "vol0aaaaaaaaaaaaaaaa", EBS, partitions=2).mount("nvme0n1p1", "/")
    fx.disk("nvme1n1", "AWS1F2E3D4C5B6A7980", STORE)
    fx.disk("nvme2n1", "AWS1F2E3D4C5B6A7981", STORE)
    fx.disk("nvme3n1", "vol0123456789abcdef0", target_model, gib=21)
    fx.disk("nvme3c3n1", "vol0123456789abcdef0", target_model, gib=21)  # hidden multipath path
    fx.disk("nvme4n1", "vol0bbbbbbbbbbbbbbbb", EBS).mount("nvme4n1", "/data")
    return fx


# (name, builder, document parameters, extra environment, exit code, text expected in the output)
STAGE0_CASES = [
    ("nitro: the target among root, instance store, another EBS and a multipath node",
     nitro, {"VolumeId": TARGET}, {}, 0, "found nvme3n1 by NVMe serial vol0123456789abcdef0"),
    ("nitro: matching expected size", nitro, {"VolumeId": TARGET, "ExpectedSizeGiB": "21"}, {}, 0, "found nvme3n1"),
    ("nitro: wrong expected size refused", nitro, {"VolumeId": TARGET, "ExpectedSizeGiB": "20"}, {}, 42,
     "not 20 GiB"),
    ("nitro: the root volume's ID is refused", nitro, {"VolumeId": ROOTVOL}, {}, 42, "root device"),
    ("nitro: a mounted volume is refused", nitro, {"VolumeId": "vol-0bbbbbbbbbbbbbbbb"}, {}, 42, "mounted at /data"),
    ("nitro: a volume with holders (LVM/dm) is refused",
     lambda fx: fx.disk("nvme0n1", "vol0123456789abcdef0", EBS, holders=["dm-0"]),
     {"VolumeId": TARGET}, {}, 42, "holder dm-0"),
    ("nitro: a partition with holders is refused",
     lambda fx: fx.disk("nvme0n1", "vol0123456789abcdef0", EBS, partitions=1).holder("nvme0n1", "nvme0n1p1", "dm-1"),
     {"VolumeId": TARGET}, {}, 42, "partition nvme0n1p1 has holder dm-1"),
    ("nitro: a volume in use as swap is refused",
     lambda fx: fx.disk("nvme5n1", "vol0123456789abcdef0", EBS).swap("nvme5n1"),
     {"VolumeId": TARGET}, {}, 42, "swap"),
    ("nitro: two devices with the volume's serial are both refused",
     lambda fx: fx.disk("nvme1n1", "vol0123456789abcdef0", EBS).disk("nvme2n1", "vol0123456789abcdef0", EBS),
     {"VolumeId": TARGET}, {}, 42, "two NVMe devices"),
    ("nitro: instance store with the volume's serial is not taken",
     lambda fx: fx.disk("nvme1n1", "vol0123456789abcdef0", STORE),
     {"VolumeId": TARGET, "WaitSeconds": "0"}, {}, 41, "nvme1n1: model 'Amazon EC2 NVMe Instance Storage' is not EBS"),
    ("nitro: legacy 8-hex volume ID", lambda fx: fx.disk("nvme1n1", "vol1a2b3c4d", EBS),
     {"VolumeId": "vol-1a2b3c4d"}, {}, 0, "found nvme1n1"),
    ("nitro: qemu's model is refused without the test override",
     lambda fx: nitro(fx, "QEMU NVMe Ctrl"), {"VolumeId": TARGET, "WaitSeconds": "0"}, {}, 41,
     "nvme3n1: model 'QEMU NVMe Ctrl' is not EBS"),
    ("nitro: qemu's model is accepted with FV_TEST_ACCEPT_NVME_MODEL, loudly",
     lambda fx: nitro(fx, "QEMU NVMe Ctrl"), {"VolumeId": TARGET},
     {"FV_TEST_ACCEPT_NVME_MODEL": "QEMU NVMe Ctrl"}, 0, "TEST OVERRIDE NVMe model 'QEMU NVMe Ctrl' accepted"),
    ("nitro: the test override admits qemu's model only, whatever it names",
     lambda fx: nitro(fx, "Other NVMe Ctrl"), {"VolumeId": TARGET, "WaitSeconds": "0"},
     {"FV_TEST_ACCEPT_NVME_MODEL": "Other NVMe Ctrl"}, 41, "nvme3n1: model 'Other NVMe Ctrl' is not EBS"),
    ("nitro: not attached yet: waits WaitSeconds, then lists what it saw",
     nitro, {"VolumeId": "vol-0cccccccccccccccc", "WaitSeconds": "1"}, {}, 41,
     "nvme4n1: serial 'vol0bbbbbbbbbbbbbbbb' is another volume"),
    ("nitro: a disk named like the requested device is not taken for the volume",
     lambda fx: nitro(fx).disk("sdf", gib=21), {"VolumeId": "vol-0cccccccccccccccc", "RequestedDevice": "sdf",
                                              "ExpectedSizeGiB": "21", "WaitSeconds": "0"}, {}, 41, "not found"),
    ("xen: requested sdf is xvdf",
     lambda fx: fx.disk("xvda", partitions=1).mount("xvda1", "/").disk("xvdf", gib=21).disk("xvdg"),
     {"VolumeId": TARGET, "RequestedDevice": "/dev/sdf", "ExpectedSizeGiB": "21"}, {}, 0, "found xvdf by Xen name"),
    ("xen: letters shifted by four: sdf is xvdj",
     lambda fx: fx.disk("xvde", partitions=1).mount("xvde1", "/").disk("xvdf").disk("xvdj", gib=21),
     {"VolumeId": TARGET, "RequestedDevice": "sdf", "ExpectedSizeGiB": "21"}, {}, 0, "found xvdj"),
    ("xen: no expected size is refused", lambda fx: fx.disk("xvda").disk("xvdf", gib=21),
     {"VolumeId": TARGET, "RequestedDevice": "sdf"}, {}, 40, "ExpectedSizeGiB"),
    ("xen: wrong size is refused", lambda fx: fx.disk("xvda").disk("xvdf", gib=8),
     {"VolumeId": TARGET, "RequestedDevice": "sdf", "ExpectedSizeGiB": "21"}, {}, 42, "not 21 GiB"),
    ("xen: both xvdf and sdf exist: ambiguous, refused", lambda fx: fx.disk("xvda").disk("xvdf", gib=21).disk("sdf", gib=21),
     {"VolumeId": TARGET, "RequestedDevice": "sdf", "ExpectedSizeGiB": "21"}, {}, 42, "ambiguous"),
    ("xen: the requested device is the mounted root disk", lambda fx: fx.disk("xvdf", gib=21).mount("xvdf", "/"),
     {"VolumeId": TARGET, "RequestedDevice": "xvdf", "ExpectedSizeGiB": "21"}, {}, 42, "root device"),
]


def run_stage0(shell, fx, params, env_extra):
    doc = documents()["Forensics-MountVolume"]
    text, _ = ssm_script.script(doc, params)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FV_SYSFS_ROOT": fx.sys, "FV_PROC_ROOT": fx.proc,
           "FV_STAGE0_MODE": "find"}
    env.update(env_extra)
    return subprocess.run(SHELLS[shell] + ["-c", text, "stage0"], capture_output=True, text=True, env=env, timeout=60)


def make_stage0_check(shell, case):
    title, build, params, env_extra, code, needle = case

    @check("stage-0 (%s): %s" % (shell, title))
    def run():
        with tempfile.TemporaryDirectory() as tmp:
            fx = Fixture(tmp)
            build(fx)
            fx.finish()
            r = run_stage0(shell, fx, params, env_extra)
            out = r.stdout + r.stderr
            expect(r.returncode == code, "exit %d, expected %d; output:\n%s" % (r.returncode, code, out))
            expect(needle in out, "output lacks %r:\n%s" % (needle, out))
            first = r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
            if code != 0:
                # P1: the console keeps the head of stdout: the verdict comes first.
                expect(first.startswith("Forensics-MountVolume: FAILED (exit %d)" % code),
                       "first stdout line is not the verdict: %r" % first)
            expect(len(r.stdout) < 2500, "stdout is %d characters" % len(r.stdout))
    return run


FAKE_MOUNT_HELPER = """#!/bin/sh
# Test double standing in for mount-helper's adoption (tested for real in
# crates/mount and the VM tests): records its arguments, exits as told.
printf '%s\\n' "$@" > "$FV_TEST_ARGS"
exit "${FV_TEST_RC:-0}"
"""


def mountinfo_line(mountpoint):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == mountpoint:
                return line
    return None


def make_root_stage0_check(shell):
    @check("stage-0 (%s, root, loop device): mounts ro,noload,nosuid,nodev on a fresh /run dir, hands over, "
           "cleans up after a refusal, refuses planted or busy mountpoints" % shell)
    def run():
        expect(os.geteuid() == 0, "needs root (loop devices and mount): run deploy/check.sh as root")
        expect(shutil.which("mkfs.ext4") and shutil.which("losetup"), "needs e2fsprogs and util-linux (mkfs.ext4, losetup)")
        with tempfile.TemporaryDirectory() as tmp:
            loops = []
            try:
                pin_good = make_stage0_volumes(tmp, loops)
                fx = Fixture(os.path.join(tmp, "fx"))
                devdir = os.path.join(tmp, "dev")
                os.makedirs(devdir)
                for i, loop in enumerate(loops):
                    nvme = "nvme%dn1" % (7 + i)
                    serial = "vol0123456789abcde%02d" % i
                    fx.disk(nvme, serial[:20], EBS, gib=0)
                    base = os.path.basename(loop)
                    for attr in ("dev", "size"):
                        shutil.copy(os.path.join("/sys/block", base, attr), os.path.join(fx.sys, "block", nvme, attr))
                    os.symlink(loop, os.path.join(devdir, nvme))
                args = os.path.join(tmp, "args")
                doc = documents()["Forensics-MountVolume"]

                def stage0(vol, mp, rc, document=None):
                    text, _ = ssm_script.script(document or doc, {"VolumeId": vol, "MountPoint": mp, "ExpectedSizeGiB": ""})
                    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "FV_SYSFS_ROOT": fx.sys,
                           "FV_DEV_ROOT": devdir, "FV_TEST_ARGS": args, "FV_TEST_RC": str(rc)}
                    return subprocess.run(SHELLS[shell] + ["-c", text, "stage0"], capture_output=True, text=True,
                                          env=env, timeout=120)

                mp = "/run/fv-check-stage0-%d" % os.getpid()
                stage0_hands_over(stage0, mp, args)
                stage0_honours_toolkit_pin(stage0, mp, args, pin_good)
                stage0_refuses_and_cleans_up(stage0, mp)
            finally:
                for loop in loops:
                    subprocess.run(["losetup", "-d", loop], check=False)
    return run


def make_stage0_volumes(tmp, loops):
    """Two ext4 images on loop devices (appended to loops as they are set
    up, for the caller to detach): "good", with the marker, and "nomarker";
    each holds the fake mount-helper and a SHA256SUMS of it. Returns the
    SHA256SUMS file's own digest (the toolkit pin)."""
    arch = os.uname().machine
    for name, marker in (("good", True), ("nomarker", False)):
        tree = os.path.join(tmp, name)
        os.makedirs(os.path.join(tree, "bin", arch))
        if marker:
            with open(os.path.join(tree, "forensics-volume.json"), "w") as f:
                f.write('{"toolkit":"forensics-volume"}\n')
        helper = os.path.join(tree, "bin", arch, "mount-helper")
        with open(helper, "w") as f:
            f.write(FAKE_MOUNT_HELPER)
        os.chmod(helper, 0o755)
        with open(helper, "rb") as f:
            helper_sha = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(tree, "SHA256SUMS"), "w") as f:
            f.write("%s  bin/%s/mount-helper\n" % (helper_sha, arch))
        with open(os.path.join(tree, "SHA256SUMS"), "rb") as f:
            pin_good = hashlib.sha256(f.read()).hexdigest()
        img = os.path.join(tmp, name + ".img")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "FORENSICS", "-d", tree, img, "64M"], check=True,
                       capture_output=True)
        loop = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True,
                              text=True).stdout.strip()
        loops.append(loop)
    return pin_good


def unmount_and_remove(mp):
    if mountinfo_line(mp):
        subprocess.run(["umount", mp], check=False)
    if os.path.isdir(mp):
        os.rmdir(mp)


def stage0_hands_over(stage0, mp, args):
    """A marked volume is mounted ro,nosuid,nodev and handed to mount-helper."""
    r = stage0("vol-0123456789abcde00", mp, 0)
    try:
        expect(r.returncode == 0, "exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
        line = mountinfo_line(mp)
        expect(line, "nothing mounted at %s after success" % mp)
        opts = set(line.split()[5].split(","))
        expect({"ro", "nosuid", "nodev"} <= opts, "mount options %s" % opts)
        with open(args) as f:
            got = f.read().split()
        expect(got == ["mount", "--volume-id", "vol-0123456789abcde00", "--mountpoint", mp, "--json"],
               "mount-helper got %r" % got)
        expect(r.stdout.strip().splitlines()[0].startswith("Forensics-MountVolume: OK"), r.stdout)
    finally:
        unmount_and_remove(mp)


def stage0_honours_toolkit_pin(stage0, mp, args, pin_good):
    """The toolkit pin (L11): a document built for this SHA256SUMS runs the
    helper; one built for another toolkit refuses it and leaves nothing
    mounted."""
    for pin_value, want in ((pin_good, 0), ("e" * 64, 44)):
        fvdeploy.set_toolkit_sums(pin_value)
        try:
            pinned_doc = documents()["Forensics-MountVolume"]
        finally:
            fvdeploy.set_toolkit_sums("")
        if os.path.exists(args):
            os.unlink(args)
        r = stage0("vol-0123456789abcde00", mp, 0, pinned_doc)
        try:
            expect(r.returncode == want, "pin %s: exit %d, expected %d:\n%s%s"
                   % (pin_value[:8], r.returncode, want, r.stdout, r.stderr))
            if want == 0:
                expect("toolkit matches this document's pin" in r.stdout, r.stdout)
            else:
                expect("not the one this document was built for" in r.stderr and not os.path.exists(args)
                       and not mountinfo_line(mp), "pin refusal: %s" % r.stderr)
        finally:
            unmount_and_remove(mp)


def stage0_refuses_and_cleans_up(stage0, mp):
    """A helper's refusal passes through and cleans up; no marker, a
    non-empty or planted mountpoint, a second mount are refused; an empty
    directory left by an earlier run is reused."""
    r = stage0("vol-0123456789abcde00", mp, 9)
    expect(r.returncode == 9, "helper refusal: exit %d, expected 9 passed through" % r.returncode)
    expect(not mountinfo_line(mp) and not os.path.exists(mp), "left mounted or left %s behind" % mp)
    r = stage0("vol-0123456789abcde01", mp, 0)
    expect(r.returncode == 44 and "marker" in r.stderr, "no marker: exit %d %s" % (r.returncode, r.stderr))
    expect(not mountinfo_line(mp) and not os.path.exists(mp), "left mounted or left %s behind" % mp)
    os.makedirs(os.path.join(mp, "x"))
    r = stage0("vol-0123456789abcde00", mp, 0)
    expect(r.returncode == 43 and "not an empty directory" in r.stderr and os.path.isdir(mp + "/x"),
           "non-empty dir: exit %d %s" % (r.returncode, r.stderr))
    os.rmdir(os.path.join(mp, "x"))
    r = stage0("vol-0123456789abcde00", mp, 0)
    try:
        expect(r.returncode == 0 and "removed the empty directory" in r.stderr,
               "empty dir left by an earlier run: exit %d %s" % (r.returncode, r.stderr))
        r = stage0("vol-0123456789abcde00", mp, 0)
        expect(r.returncode == 42 and ("mounted at " + mp) in r.stderr,
               "second mount of a mounted volume: exit %d %s" % (r.returncode, r.stderr))
    finally:
        if mountinfo_line(mp):
            subprocess.run(["umount", mp], check=False)
        os.rmdir(mp)
    os.symlink("/etc", mp)
    r = stage0("vol-0123456789abcde00", mp, 0)
    expect(r.returncode == 43 and os.path.islink(mp) and not mountinfo_line("/etc"),
           "planted symlink: exit %d %s" % (r.returncode, r.stderr))
    os.unlink(mp)


@check("stage-0: SSM refuses injection in every parameter before the script runs")
def check_stage0_injection():
    doc = documents()["Forensics-MountVolume"]
    for pname in doc["parameters"]:
        for evil in ("$(reboot)", "'; reboot; '", "`reboot`", "x\nreboot"):
            params = {"VolumeId": TARGET, pname: evil}
            try:
                ssm_script.script(doc, params)
            except ssm_script.ParameterError:
                continue
            raise CheckFailed("%s=%r accepted" % (pname, evil))


@check("stage-0: the script itself refuses malformed values given by hand (dash)")
def check_stage0_self_validation():
    src = os.path.join(fvdeploy.SCRIPTS, "mount.sh")
    for env, code in (({"FV_VOLUME_ID": "vol-12;reboot"}, 40), ({"FV_VOLUME_ID": ""}, 40),
                      ({"FV_VOLUME_ID": TARGET, "FV_MOUNT_POINT": "/run/../etc"}, 40),
                      ({"FV_VOLUME_ID": TARGET, "FV_MOUNT_POINT": "/etc/x"}, 40),
                      ({"FV_VOLUME_ID": TARGET, "FV_REQUESTED_DEVICE": "sda1"}, 40),
                      ({"FV_VOLUME_ID": TARGET, "FV_WAIT_SECONDS": "99999999999999999999"}, 40),
                      ({"FV_VOLUME_ID": TARGET, "FV_STAGE0_MODE": "nope"}, 40)):
        r = subprocess.run(["dash", src], capture_output=True, text=True, env=dict(env, PATH=os.environ["PATH"]))
        expect(r.returncode == code, "%r: exit %d, expected %d: %s" % (env, r.returncode, code, r.stderr))
