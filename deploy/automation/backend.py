"""The instance behind the local Automation engine: what `aws:runCommand`
runs on, and what sees the forensics volume come and go.

The engine (engine.py) keeps every AWS resource in moto. The *instance's
inside* is not AWS: whether a Command document succeeds, how long it runs,
what it prints. A backend answers that. Two exist:

- ScriptedBackend (this file): each Command document's outcome is chosen by
  the test (Success, Failed with an exit code, TimedOut, Cancelled, never
  delivered, output longer than the console keeps). The fault drills use it.
- the VM backend (tests/vm, branch h12-vm): the qemu guest is the instance;
  attach and detach hot-plug the volume's NVMe disk, run_command runs the
  rendered document's script in the guest.

Interface (stable: the VM backend implements it; add fields, never rename):

    class InstanceBackend:
        def on_attach(self, volume_id, instance_id, device): ...
            # called after moto's AttachVolume succeeded
        def on_detach(self, volume_id, instance_id, force): ...
            # called after moto's DetachVolume succeeded; return "busy" when
            # the guest does not let go (a non-forced detach of a mounted
            # disk), None when the disk is gone
        def run_command(self, request: CommandRequest) -> CommandResult: ...

`run_command` is synchronous: it returns when the invocation has reached a
terminal state. The engine keeps virtual time; `CommandResult.duration` is
how many seconds of it the invocation took (the VM backend reports wall
time). A request carries `cancel_after`: when set, the execution is
cancelled that many seconds into the invocation and SSM cancels the command,
which the agent does by SIGKILLing the command's process group
(amazon-ssm-agent agent/executers/executers_unix.go, Kill(-pid, SIGKILL)):
the backend must do the same to the running script and report Cancelled.

Statuses are those of GetCommandInvocation
(https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html):
Success, Failed, TimedOut (execution timed out: the agent kills the process
group), Cancelled, DeliveryTimedOut (the agent never picked the command up
within the delivery timeout; ResponseCode -1).
"""

import dataclasses

STATUSES = ("Success", "Failed", "TimedOut", "Cancelled", "DeliveryTimedOut")
# The agent keeps this many characters from the head of stdout and of stderr
# (amazon-ssm-agent agent/contracts/plugin.go: MaximumPluginOutputSize = 2400,
# TruncateOutput); the rest only reaches S3.
CONSOLE_CUT = 2400


@dataclasses.dataclass
class CommandRequest:
    """One aws:runCommand invocation, as SendCommand would carry it."""

    document_name: str
    document: dict  # the rendered Command document (JSON object)
    parameters: dict  # {name: str}: resolved values, every declared parameter
    instance_id: str
    execution_timeout: int  # seconds: the document's timeoutSeconds after substitution
    delivery_timeout: int  # seconds: the step's TimeoutSeconds input (SendCommand default 3600)
    cancel_after: float = None  # seconds into the invocation when SSM cancels it, or None
    # Under a scheduler (many executions in one virtual time), the engine
    # lets the backend spend the invocation's virtual time itself:
    # wait(seconds) advances it (others run meanwhile) and returns how many
    # seconds in the execution was stopped (StopAutomationExecution: the
    # backend then ends the invocation as cancelled then, as cancel_after
    # does), or None. A backend that ignores it is told of a stop only
    # after the invocation ended (the VM backend: real time).
    wait: object = None


@dataclasses.dataclass
class CommandResult:
    """A terminal invocation. response_code is the script's exit code, -1
    when it never ran; stdout/stderr are whole (the engine applies the
    console cut)."""

    status: str
    response_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 1.0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError("command status %r is not one of %s" % (self.status, STATUSES))


def console_output(result):
    """What Automation's Output (and the console) shows: the heads of the
    streams, as the agent's TruncateOutput builds it."""
    out = result.stdout[:CONSOLE_CUT]
    if result.stderr:
        out += "\n----------ERROR-------\n" + result.stderr[:CONSOLE_CUT]
    return out


class InstanceBackend:
    """Base class: the engine calls these three. A backend that does not
    implement run_command refuses, it never pretends."""

    def on_attach(self, volume_id, instance_id, device):
        pass

    def on_detach(self, volume_id, instance_id, force):
        return None

    def run_command(self, request):
        raise NotImplementedError("this backend runs no commands (%s)" % request.document_name)


# ---- the scripted backend ---------------------------------------------------------

VERDICT = {
    "Forensics-MountVolume": "Forensics-MountVolume: OK: {vol} mounted read-write at /run/forensics-volume/{vol}",
    "Forensics-CaptureMemory": "Forensics-CaptureMemory: OK: capture complete on {vol}",
    "Forensics-UnmountVolume": "Forensics-UnmountVolume: OK: {vol} unmounted; safe to detach",
    "Forensics-StopCapture": "Forensics-StopCapture: OK: SIGTERM sent to capture on {vol}",
}


@dataclasses.dataclass
class Outcome:
    """What one scripted invocation does. kind: success, failed (exit code),
    timeout (execution timed out), undelivered, cancelled (cancelled by SSM
    at once), long-output (success with output over the console cut)."""

    kind: str = "success"
    exit_code: int = 1
    duration: float = 5.0


class ScriptedBackend(InstanceBackend):
    """The instance as a script of outcomes, per document name (a list is
    consumed one per invocation, the last one repeats). Also tracks what a
    real instance would: which volumes are attached, mounted, and whether a
    capture wrote evidence, so the drills can check invariants the AWS side
    cannot show (a volume mounted on the suspect, evidence on it)."""

    def __init__(self, outcomes=None):
        self.outcomes = {k: (list(v) if isinstance(v, list) else [v]) for k, v in (outcomes or {}).items()}
        self.attached = {}  # volume_id -> device
        self.mounted = set()
        self.evidence = {}  # volume_id -> "complete" | "partial" | "killed"
        self.calls = []  # (document_name, parameters, status)
        self.force = None  # an Outcome for every invocation until cleared (the drills set it per step)

    def _next(self, name):
        if self.force is not None:
            return self.force
        queue = self.outcomes.get(name)
        if not queue:
            return Outcome()
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def on_attach(self, volume_id, instance_id, device):
        self.attached[volume_id] = device

    def on_detach(self, volume_id, instance_id, force):
        # EC2 asks the guest to release the disk; a mounted one is not let
        # go and the attachment stays "busy" until a forced detach, which
        # pulls the disk from under the mount (ext4 journals; the dead mount
        # stays on the suspect until rebooted or unmounted).
        if volume_id in self.mounted and not force:
            return "busy"
        self.attached.pop(volume_id, None)
        self.mounted.discard(volume_id)

    def run_command(self, request):
        o = self._next(request.document_name)
        if request.wait is not None and request.cancel_after is None:
            natural = float(request.delivery_timeout) if o.kind == "undelivered" else \
                float(request.execution_timeout) if o.kind == "timeout" else min(o.duration, request.execution_timeout)
            stopped = request.wait(natural)
            if stopped is not None:
                # Stopped mid-invocation: SSM cancels the command, the agent
                # SIGKILLs it (a command never picked up did nothing).
                if o.kind != "undelivered":
                    self._effect(request.document_name, request.parameters.get("VolumeId", ""), "killed")
                result = CommandResult("Cancelled", -1, "", "", float(stopped))
                self.calls.append((request.document_name, dict(request.parameters), result.status))
                return result
        vol = request.parameters.get("VolumeId", "")
        verdict = VERDICT.get(request.document_name, request.document_name + ": OK").format(vol=vol)
        if o.kind == "undelivered":
            result = CommandResult("DeliveryTimedOut", -1, "", "", float(request.delivery_timeout))
        elif request.cancel_after is not None and request.cancel_after < min(o.duration, request.execution_timeout):
            # Cancelled mid-run: the agent SIGKILLs the process group.
            self._effect(request.document_name, vol, "killed")
            result = CommandResult("Cancelled", -1, "", "", float(request.cancel_after))
        elif o.kind == "cancelled":
            result = CommandResult("Cancelled", -1, "", "", o.duration)
        elif o.kind == "timeout":
            self._effect(request.document_name, vol, "killed")
            result = CommandResult("TimedOut", -1, "", "", float(request.execution_timeout))
        elif o.kind == "failed":
            if request.document_name == "Forensics-CaptureMemory" and o.exit_code not in range(10, 18):
                # docs/capture.md: 20-23 end in a labelled partial image; 1
                # (unexpected error) and 30 (not finalized) may leave a
                # partial one too; 10-17 write nothing.
                self._effect(request.document_name, vol, "partial")
            result = CommandResult("Failed", o.exit_code,
                                   "%s: FAILED (exit %d): scripted failure\n" % (request.document_name, o.exit_code),
                                   "ERROR: scripted failure\n", o.duration)
        else:
            self._effect(request.document_name, vol, "complete")
            details = "detail line\n" * (400 if o.kind == "long-output" else 3)
            result = CommandResult("Success", 0, verdict + "\n" + details, "", o.duration)
        self.calls.append((request.document_name, dict(request.parameters), result.status))
        return result

    def _effect(self, name, vol, how):
        if name == "Forensics-MountVolume" and how == "complete" and vol in self.attached:
            self.mounted.add(vol)
        elif name == "Forensics-CaptureMemory" and vol in self.mounted:
            # Anything a capture started writes is evidence, killed or not.
            self.evidence[vol] = how
        elif name == "Forensics-UnmountVolume" and how == "complete":
            self.mounted.discard(vol)
        elif name == "Forensics-StopCapture" and how == "complete" and self.evidence.get(vol) == "killed":
            self.evidence[vol] = "partial"
