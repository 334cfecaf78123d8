"""Mutation test of the fault drills (issue 20): each mutant is a plausible
edit of the runbook source (Forensics-CaptureInstanceMemory) that would
lose evidence, leave it outside custody or leave the instance changed. The
drills alone, without deploy/check.sh's static graph checks, must kill
every one: a mutant is killed by the first drill that breaks an invariant
(or by the engine refusing the runbook at start, as Automation would).

    deploy/automation.sh mutants      (run by ./build.sh test after the drills)

Each mutant names the drill expected to kill it first, so the run stops
early; the other drills are tried after it. Prints "mutants: N/M killed"
and exits 1 below 100%.
"""

import copy
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import drills  # noqa: E402
import engine  # noqa: E402
import run as run_mod  # noqa: E402

# Drills a mutant may be killed by: (label, plan, parameters).
DRILLS = {
    "plain": ({}, None),
    "capture-failed": ({"Capture": "command-failed"}, None),
    "capture-cancel": ({"Capture": "cancel"}, None),
    "unmount-failed": ({"Unmount": "command-failed"}, None),
    "unmount-cancel": ({"Unmount": "cancel"}, None),
    "mount-failed": ({"Mount": "command-failed"}, None),
    "mount-cancel": ({"Mount": "cancel"}, None),
    "protect-cancel": ({"ProtectInstance": "cancel"}, None),
    "createvolume-cancel": ({"CreateVolume": "cancel"}, None),
    "snapshot-persistent": ({"SnapshotEvidence": "api-error-persistent"}, None),
    "snapshot-error": ({"WaitSnapshotCompleted": "error-state"}, None),
    "inuse-persistent": ({"Unmount": "command-failed", "SnapshotInUse": "api-error-persistent"}, None),
    "restore-persistent": ({"RestoreInstance": "api-error-persistent"}, None),
    "custody-persistent": ({"Custody": "api-error-persistent"}, None),
    "cancel-snapshot-persistent": ({"Capture": "cancel", "CancelSnapshotEvidence": "api-error-persistent"}, None),
    "wait-snapshot-timeout": ({"WaitSnapshotCompleted": "wait-timeout"}, None),
    "copy-quota": ({"Custody": "copy-quota"}, None),
}


def step(doc, name):
    for s in drills.all_steps(doc):
        if s["name"] == name:
            return s
    raise KeyError(name)


def setter(name, **props):
    def edit(doc):
        s = step(doc, name)
        for k, v in props.items():
            if v is None:
                s.pop(k, None)
            else:
                s[k] = v
    return edit


def exit_code_branch(doc):
    """Only exits 20-23 snapshot; any other capture failure cleans up."""
    steps = doc["mainSteps"]
    step(doc, "Capture")["onFailure"] = "step:CaptureExit"
    i = [s["name"] for s in steps].index("Unmount")
    steps.insert(i, {"name": "CaptureExit", "action": "aws:branch", "onFailure": "step:CleanupUnmount",
                     "onCancel": "step:CancelSnapshotEvidence",
                     "inputs": {"Choices": [{"NextStep": "Unmount", "Variable": "{{ Capture.ResponseCode }}",
                                             "NumericGreaterOrEquals": 20}], "Default": "CleanupUnmount"}})


def gate_on_capture(doc):
    step(doc, "EvidenceTaken")["inputs"]["Choices"][0]["Variable"] = "{{ Capture.Status }}"


def cancel_skips_snapshot(doc):
    step(doc, "Capture")["onCancel"] = "step:CancelRestoreInstance"


def cancel_chain_skips_restore(doc):
    s = step(doc, "CancelSnapshotEvidence")
    s["onFailure"], s["nextStep"] = "step:CancelUnmount", "CancelUnmount"


def custody_quota_not_retried(doc):
    """Custody's handover without its wait for EBS's copy quota: a
    ResourceLimitExceeded is a copy error like any other (issue 24)."""
    s = step(doc, "Custody")
    script = s["inputs"]["Script"]
    if "QUOTA = 'ResourceLimitExceeded'" not in script:
        raise KeyError("custody.py's QUOTA constant is not in the rendered script")
    s["inputs"]["Script"] = script.replace("QUOTA = 'ResourceLimitExceeded'", "QUOTA = 'not retried'")


# (name, what it does, edit, the drill expected to kill it)
MUTANTS = [
    ("capture-failure-cleans-up", "a failed Capture goes to the clean-up that force-detaches and deletes the volume",
     setter("Capture", onFailure="step:CleanupDetachVolume"), "capture-failed"),
    ("capture-failure-deletes", "a failed Capture goes straight to the volume's deletion",
     setter("Capture", onFailure="step:CleanupFindVolume"), "capture-failed"),
    ("capture-exit-not-20-23-deletes", "only exits 20-23 are snapshotted; any other capture failure cleans up",
     exit_code_branch, "capture-failed"),
    ("snapshot-failure-deletes", "SnapshotEvidence failing goes to force-detach and delete",
     setter("SnapshotEvidence", onFailure="step:CleanupDetachVolume"), "snapshot-persistent"),
    ("snapshot-failure-aborts", "SnapshotEvidence failing aborts: no custody, no restore",
     setter("SnapshotEvidence", onFailure="Abort"), "snapshot-persistent"),
    ("capture-oncancel-dropped", "Capture loses its onCancel: a cancel leaves the evidence mounted, unsnapshotted",
     setter("Capture", onCancel=None), "capture-cancel"),
    ("unmount-oncancel-dropped", "Unmount loses its onCancel", setter("Unmount", onCancel=None), "unmount-cancel"),
    ("mount-oncancel-dropped", "Mount loses its onCancel: the volume stays attached",
     setter("Mount", onCancel=None), "mount-cancel"),
    ("protect-oncancel-dropped", "ProtectInstance loses its onCancel: the protections stay on",
     setter("ProtectInstance", onCancel=None), "protect-cancel"),
    ("cancel-skips-snapshot", "a cancel during Capture restores and unmounts without snapshotting",
     cancel_skips_snapshot, "capture-cancel"),
    ("cancel-skips-restore", "the cancel chain unmounts without restoring the instance",
     cancel_chain_skips_restore, "capture-cancel"),
    ("restore-skipped", "DeleteVolume goes straight to custody: RestoreInstance skipped",
     setter("DeleteVolume", nextStep="EvidenceTaken"), "plain"),
    ("restore-skipped-inuse", "after a failed unmount, custody without RestoreInstance",
     setter("AssertSnapshotInUse", nextStep="EvidenceTaken"), "unmount-failed"),
    ("custody-skipped-failed-capture", "custody only when the capture succeeded",
     gate_on_capture, "capture-failed"),
    ("custody-skipped-restore-failure", "a failed RestoreInstance aborts before custody",
     setter("RestoreInstance", onFailure="Abort"), "restore-persistent"),
    ("custody-failure-not-critical", "a failed custody loop is not critical: the run succeeds outside custody",
     setter("CustodyRounds", onFailure="Continue", isCritical=False), "custody-persistent"),
    ("unmount-failure-cleans-up", "a failed unmount force-detaches and deletes the volume",
     setter("Unmount", onFailure="step:CleanupDetachVolume"), "unmount-failed"),
    ("inuse-failure-cleans-up", "the snapshot of a volume whose unmount failed, failing, deletes it",
     setter("SnapshotInUse", onFailure="step:CleanupDetachVolume"), "inuse-persistent"),
    ("error-snapshot-detaches", "a snapshot in error goes on to detach and delete",
     setter("AssertSnapshotCompleted", onFailure="step:DetachVolume"), "snapshot-error"),
    ("wait-ignores-error", "WaitSnapshotCompleted no longer stops at error: waits out its 24 h",
     lambda doc: step(doc, "WaitSnapshotCompleted")["inputs"].update(DesiredValues=["completed"]), "snapshot-error"),
    ("mount-failure-skips-cleanup", "a failed Mount restores without detaching and deleting the volume",
     setter("Mount", onFailure="step:RestoreInstance"), "mount-failed"),
    ("createvolume-cancel-leaks", "a cancelled CreateVolume's clean-up reads its (missing) outputs",
     setter("CreateVolume", onCancel="step:CleanupDeleteVolume"), "createvolume-cancel"),
    ("snapshot-not-waited", "the volume is detached and deleted without waiting for its snapshot",
     setter("SnapshotEvidence", nextStep="DetachVolume"), "wait-snapshot-timeout"),
    ("cancel-snapshot-failure-skips-restore", "the cancel path's failed snapshot goes straight to the unmount",
     setter("CancelSnapshotEvidence", onFailure="step:CancelUnmount"), "cancel-snapshot-persistent"),
    ("custody-quota-not-retried", "Custody treats CopySnapshot's ResourceLimitExceeded (EBS's 20 concurrent "
     "copies) as a failure: no wait, no retry", custody_quota_not_retried, "copy-quota"),
]


def main(argv):
    t0 = time.time()
    base = run_mod.rendered_documents()[run_mod.RUNBOOK]
    killed, lines = 0, []
    for i, (name, what, edit, first) in enumerate(MUTANTS):
        doc = copy.deepcopy(base)
        edit(doc)
        order = [first] + [d for d in DRILLS if d != first]
        verdict = "SURVIVED every drill"
        for label in order:
            plan, params = DRILLS[label]
            try:
                _, violations, _ = drills.drill(plan, "00000000-0000-4000-8000-9%011d" % i, params, runbook=doc)
            except engine.EngineError as e:
                verdict = "killed at start (the engine refuses it: %s)" % str(e)[:80]
                break
            if violations:
                verdict = "killed by %s: %s" % (label, violations[0][:100])
                break
        killed += verdict.startswith("killed")
        lines.append("%-34s %s" % (name, verdict))
        print(lines[-1], flush=True)
    print("mutants: %d/%d killed in %.1f s" % (killed, len(MUTANTS), time.time() - t0))
    return 0 if killed == len(MUTANTS) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
