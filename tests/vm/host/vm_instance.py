"""The qemu guest as the EC2 instance of a runbook run (issue 12, backend (b)).

`VmInstance` boots the bench's guest (tests/vm/lib.sh builds its kernel,
initramfs and qemu arguments) and stands behind the Automation engine's
instance backend:

- `on_attach` / `on_detach`: what EBS does to a Nitro instance when
  AttachVolume / DetachVolume succeed. The volume's disk is hot-plugged as an
  NVMe controller whose serial is the volume ID without the dash (as EBS
  shows it, FACTS.md "EBS devices") on a free PCIe root port, over QMP
  (`blockdev-add` + `device_add`), and unplugged (`device_del`, wait for
  DEVICE_DELETED, `blockdev-del`). The guest kernel's pciehp sees the slot
  change (FACTS.md "NVMe hot-plug in the qemu guest").
- `run_command`: what the SSM agent does with a Command document: the
  document's script, rendered by ssm_extract.py exactly as every other VM
  scenario renders it (parameters checked, `{{ }}` replaced), runs in the
  guest under sh through the agent stand-in (guest/agent.sh) on the guest's
  second UART; the real exit code, stdout and stderr come back, in full.

Each volume's bytes live in an image file under `volumes_dir`, made on first
attach from what `volume_source(volume_id)` names (a copy of
dist/forensics-volume.img for a volume created from the forensics snapshot)
and sized as the volume is. The file outlives DeleteVolume, so that the bench
can read the evidence back from it.

Everything is bounded: qemu runs under timeout(1), every socket read and QMP
wait has a deadline, and `close()` kills qemu whatever happened.
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "deploy", "automation"))
import qmp  # noqa: E402
from agent_link import STOPPED_EXIT_CODE, AgentError, AgentLink, ssm_status  # noqa: E402
import ssm_extract  # noqa: E402
from backend import CommandResult, InstanceBackend  # noqa: E402

# Labels of the console blocks (ssm-<label>) that host/scenarios.sh checks.
DOCUMENT_LABELS = {
    "Forensics-MountVolume": "mount",
    "Forensics-CaptureMemory": "capture",
    "Forensics-UnmountVolume": "unmount",
}
# The PCIe root ports VmInstance boots the guest with: one per disk attached at once.
ROOT_PORTS = ("fvrp1", "fvrp2")
VOLUME_ID_RE = re.compile(r"^vol-([0-9a-f]{8}|[0-9a-f]{17})$")


class VmError(Exception):
    """The bench itself failed (guest hung, qemu died, QMP refused): not an
    outcome an instance could have, so never turned into a command status."""


def serial_of(volume_id):
    """The NVMe serial EBS gives a volume: its ID without the dash."""
    if not VOLUME_ID_RE.match(volume_id):
        raise VmError(f"{volume_id!r} is not an EBS volume ID")
    return volume_id.replace("-", "")


def with_root_volume(args, serial):
    """ARGS with the guest's root disk (drive "suspect") given SERIAL, and
    the kernel command line telling the guest so (fv.suspect=)."""
    out, done = [], set()
    for a in args:
        if a.startswith("nvme,") and a.endswith(",drive=suspect"):
            a = re.sub(r"serial=[^,]*", f"serial={serial}", a)
            done.add("device")
        elif out and out[-1] == "-append":
            a = f"{a} fv.suspect={serial}"
            done.add("append")
        out.append(a)
    if done != {"device", "append"}:
        raise VmError("the qemu arguments have no root disk (drive=suspect) or no -append")
    return out


class VmInstance(InstanceBackend):
    """One booted guest standing in for instance `instance_id`: the engine's
    InstanceBackend (deploy/automation/backend.py)."""

    def __init__(self, *, instance_id, qemu, qemu_args, workdir, volume_source,
                 boot_timeout=240, total_timeout=1800, observe=True, root_volume_id=None):
        self.instance_id = instance_id
        self.workdir = workdir
        self.volumes_dir = os.path.join(workdir, "volumes")
        self.volume_source = volume_source
        self.observe_enabled = observe
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.agent_path = os.path.join(workdir, "agent.sock")
        self.console_path = os.path.join(workdir, "console.log")
        self.attached = {}  # volume_id -> root port
        self.images = {}  # volume_id -> image path
        self.history = []  # what happened, in order, for the scenario's report
        # Prefixed to the labels of the guest's console blocks and
        # observations, so that a second execution on the same boot keeps
        # its results apart from the first's.
        self.label_prefix = ""
        self._proc = None
        self._qmp = None
        self._agent = None
        os.makedirs(self.volumes_dir, exist_ok=True)
        for p in (self.qmp_path, self.agent_path):
            if os.path.exists(p):
                os.unlink(p)
        args = list(qemu_args)
        if root_volume_id:
            args = with_root_volume(args, serial_of(root_volume_id))
        args += [
            "-device", f"pcie-root-port,id={ROOT_PORTS[0]},slot=1,chassis=1",
            "-device", f"pcie-root-port,id={ROOT_PORTS[1]},slot=2,chassis=2",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            # wait=on: qemu starts the guest only once the host is connected,
            # so the agent's first words are never lost.
            "-chardev", f"socket,id=fvagent,path={self.agent_path},server=on,wait=on",
            "-serial", "chardev:fvagent",
        ]
        with open(os.path.join(workdir, "console.log.cmd"), "w") as f:
            f.write(" ".join([qemu] + args) + "\n")
        self._console = open(self.console_path, "wb")
        self._proc = subprocess.Popen(
            ["timeout", "--kill-after=5", str(total_timeout), qemu] + args,
            stdin=subprocess.DEVNULL, stdout=self._console, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(self.agent_path):
                self._check_alive("starting")
                if time.monotonic() > deadline:
                    raise VmError(f"qemu did not create {self.agent_path} within 30 s")
                time.sleep(0.05)
            self._agent = AgentLink.connect_unix(self.agent_path, 10)
            self._qmp = qmp.Qmp(self.qmp_path, timeout=30)
            t0 = time.monotonic()
            self._agent.wait_ready(boot_timeout)
            self.boot_seconds = time.monotonic() - t0
            self._log("boot", f"agent ready after {self.boot_seconds:.1f} s")
        except (VmError, AgentError, qmp.QmpError) as e:
            self.close()
            raise VmError(f"the guest did not come up: {e}; console log {self.console_path}") from e

    # ---- bookkeeping ------------------------------------------------------

    def _log(self, what, detail):
        self.history.append({"t": round(time.time(), 3), "what": what, "detail": detail})
        print(f"[vm-instance] {what}: {detail}", file=sys.stderr, flush=True)

    def _check_alive(self, what):
        if self._proc is not None and self._proc.poll() is not None:
            raise VmError(f"qemu exited with status {self._proc.returncode} while {what}; "
                          f"console log {self.console_path}")

    def _check_instance(self, instance_id):
        if instance_id != self.instance_id:
            raise VmError(f"instance {instance_id} is not the guest ({self.instance_id})")

    def _observe(self, label, serial=""):
        if self.observe_enabled:
            self._agent.observe(label, serial)

    # ---- the backend interface ---------------------------------------------

    def image_of(self, volume_id):
        """The image file holding VOLUME_ID's bytes (made on first attach)."""
        return self.images.get(volume_id)

    def _image_for(self, volume_id):
        if volume_id in self.images:
            return self.images[volume_id]
        src, size = self.volume_source(volume_id)
        path = os.path.join(self.volumes_dir, f"{volume_id}.img")
        if src:
            subprocess.run(["cp", "--sparse=always", src, path], check=True)
            if os.path.getsize(path) > size:
                raise VmError(f"{src} is larger than volume {volume_id} ({size} bytes)")
        else:
            open(path, "wb").close()
        os.truncate(path, size)
        self.images[volume_id] = path
        self._log("volume", f"{volume_id}: {size} bytes from {src or 'nothing (blank)'} -> {path}")
        return path

    def on_attach(self, volume_id, instance_id, device):
        """AttachVolume succeeded: hot-plug the volume's NVMe disk."""
        self._check_instance(instance_id)
        self._check_alive("attaching")
        serial = serial_of(volume_id)
        if volume_id in self.attached:
            raise VmError(f"{volume_id} is already attached to the guest")
        free = [p for p in ROOT_PORTS if p not in self.attached.values()]
        if not free:
            raise VmError(f"no free PCIe root port for {volume_id} (the guest has {len(ROOT_PORTS)})")
        image = self._image_for(volume_id)
        node, dev = f"n{serial}", f"d{serial}"
        try:
            self._qmp.command("blockdev-add", {
                "driver": "raw", "node-name": node,
                "file": {"driver": "file", "filename": image}})
            self._qmp.command("device_add", {
                "driver": "nvme", "id": dev, "serial": serial, "drive": node, "bus": free[0]})
        except qmp.QmpError as e:
            raise VmError(f"hot-plug of {volume_id}: {e}") from e
        self.attached[volume_id] = free[0]
        self._log("attach", f"{volume_id} as NVMe serial {serial} on {free[0]} (requested {device})")
        self._observe(f"{self.label_prefix}after-attach", serial)

    def on_detach(self, volume_id, instance_id, force):
        """DetachVolume succeeded: unplug the volume's NVMe disk (the guest's
        pciehp removes it), then close its image."""
        self._check_instance(instance_id)
        self._check_alive("detaching")
        serial = serial_of(volume_id)
        if volume_id not in self.attached:
            raise VmError(f"{volume_id} is not attached to the guest")
        self._observe(f"{self.label_prefix}before-detach", serial)
        mountpoint = self._agent.mountpoint(serial)
        if mountpoint and not force:
            # EC2 asks the guest to let go; a volume still mounted stays
            # "busy" (Amazon EBS user guide, "Detach an Amazon EBS volume";
            # the engine's model). Linux's pciehp would pull it regardless, so
            # the bench does not unplug it.
            self._log("detach", f"{volume_id}: still mounted at {mountpoint}, not forced: busy, not unplugged")
            return "busy"
        node, dev = f"n{serial}", f"d{serial}"
        t0 = time.monotonic()
        try:
            self._qmp.command("device_del", {"id": dev})
            self._qmp.wait_event("DEVICE_DELETED", {"device": dev}, timeout=60)
            self._qmp.command("blockdev-del", {"node-name": node})
        except qmp.QmpError as e:
            raise VmError(f"unplug of {volume_id}: {e}") from e
        del self.attached[volume_id]
        self._log("detach", f"{volume_id} unplugged in {time.monotonic() - t0:.1f} s (force={bool(force)}"
                  f"{', was mounted at ' + mountpoint if mountpoint else ''})")
        self._observe(f"{self.label_prefix}after-detach", serial)
        return None

    def run_command(self, request):
        """Run the Command document's script in the guest; its real outcome
        (a CommandRequest in, a CommandResult out: deploy/automation/backend.py)."""
        self._check_instance(request.instance_id)
        self._check_alive("running a command")
        name, parameters = request.document_name, dict(request.parameters or {})
        try:
            script = ssm_extract.render_doc(request.document, parameters, name)
        except ssm_extract.DocError as e:
            # SendCommand validates parameters before anything is delivered.
            raise VmError(f"{name}: {e}") from e
        label = self.label_prefix + (DOCUMENT_LABELS.get(name) or re.sub(r"[^A-Za-z0-9_-]", "-", name))
        serial = ""
        vid = parameters.get("VolumeId")
        if isinstance(vid, str) and VOLUME_ID_RE.match(vid):
            serial = serial_of(vid)
        self._observe(f"before-{label}", serial)
        r = self._agent.run(label, script, request.execution_timeout, request.cancel_after,
                            request.delivery_timeout)
        if r is None:
            self._check_alive("delivering a command")
            self._log("command", f"{name}: not delivered within {request.delivery_timeout} s")
            return CommandResult("DeliveryTimedOut", -1, "", "", float(request.delivery_timeout))
        status, rc, ended = ssm_status(r), r["rc"], r["ended"]
        if status in ("TimedOut", "Cancelled"):
            rc = STOPPED_EXIT_CODE
        stdout, stderr, secs, cid = r["stdout"], r["stderr"], r["seconds"], r["id"]
        self._log("command", f"{name} ({cid}, label {label}): {status}, exit {rc} ({ended}), {secs:.1f} s, "
                  f"{len(stdout)} + {len(stderr)} characters of output")
        self._observe(f"after-{label}", serial)
        return CommandResult(status, rc, stdout, stderr, secs)

    def observe_volume(self, label, volume_id):
        """Record the guest's view of VOLUME_ID now (its written sectors,
        where it is mounted) under LABEL, if it is attached."""
        if volume_id in self.attached:
            self._observe(self.label_prefix + label, serial_of(volume_id))

    def mountpoint_of(self, volume_id):
        """Where the guest has VOLUME_ID's disk mounted now ('' if nowhere)."""
        return self._agent.mountpoint(serial_of(volume_id))

    # ---- the end ----------------------------------------------------------

    def close(self, timeout=60):
        """Tell the guest to finish (it powers off), wait for qemu, kill it if
        it does not go. Returns qemu's exit status."""
        try:
            said_bye = False
            if self._agent is not None and self._proc is not None and self._proc.poll() is None:
                try:
                    self._agent.quit()
                    said_bye = True
                except AgentError as e:
                    self._log("close", f"the agent did not say goodbye: {e}")
            if self._proc is not None:
                try:
                    # A guest that said goodbye powers off; one that did not
                    # is not waited for.
                    self._proc.wait(timeout=timeout if said_bye else 0.1)
                except subprocess.TimeoutExpired:
                    self._log("close", "qemu killed" + (f" (still running {timeout} s after quit)" if said_bye else ""))
                    os.killpg(self._proc.pid, 9)
                    self._proc.wait(timeout=10)
                return self._proc.returncode
            return None
        finally:
            if self._proc is not None and self._proc.poll() is None:
                try:
                    os.killpg(self._proc.pid, 9)
                except OSError:
                    pass
            for c in (self._agent, self._qmp):
                if c is not None:
                    c.close()
            if not self._console.closed:
                self._console.close()
            for p in (self.qmp_path, self.agent_path):
                if os.path.exists(p):
                    os.unlink(p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
