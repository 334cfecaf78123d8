"""Fault drills: every step of the rendered runbook x every way it can end,
each run against a fresh moto world with the scripted instance, and the
invariants of issue 12 checked on the final state.

    deploy/automation.sh drills [-v] [--only STEP]

Drills are derived from the runbook, not listed by hand: the happy path
gives the steps a plain run reaches; each of them gets every fault its
action can suffer; a step reached only on a failure or cancel path (the
clean-up steps) gets its faults on top of a first fault that leads there.
A step no drill reaches is itself a failure. Then the matrix (step x fault
-> outcome) is printed and the run closes with "N passed, M failed".

Faults (per action): api-error (one AWS call of the step fails with
ServiceUnavailable: a retry, maxAttempts, absorbs it), api-error-persistent
(every call of every attempt fails: the onFailure route is taken),
throttled (RequestLimitExceeded on every call), cancel-before (the
execution is cancelled before the step's call is made), wait-timeout (EBS
never reaches the state), error-state (the volume or snapshot goes to
"error"), command-failed (exit 1), command-timeout (execution timed out:
the agent kills the process group), undelivered (the agent never picks the
command up), cancel (StopAutomationExecution while the step runs: its call
was made, its outputs are not given). A failed capture (exit 1) leaves a
partial image, as docs/capture.md says it may. Plus drills with two faults
in one run (TWO_FAULTS).

Invariants, on moto's final state and the scripted instance:
  I1 every volume the run created is deleted, or holds evidence;
  I2 a volume holding evidence has a completed snapshot, or (snapshotting
     failed) is left attached and unmounted and the failure names it;
  I3 the instance's protections are as they were before the run;
  I4 the status says what happened (Success only when nothing failed for
     good; a disk snapshot's error or timeout in WaitDisks, after the
     memory evidence is in custody, does not fail the run, see I8), and
     the outputs name the volume and any evidence snapshot;
  I5 no command can still run after its step ended (H1);
  I6 a capture stopped early with Forensics-StopCapture ends as a
     finalized partial image and is snapshotted (drill "stop-capture");
  I7 a wait on a volume or snapshot in "error" stops there (H6);
  I8 every snapshot the run took that exists at the end is owned by the
     security account (a copy, tagged with its source), or it is a disk
     whose reason the custody records give (aws/ebs, error, still pending
     when WaitDisks ended; a later record's word counts), or the run did not
     succeed and says why: the custody record lists it with the reason it
     was not copied, or (no record) the outputs or failure name it
     (issue 13: custody of failure-path snapshots too).
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import accounts  # noqa: E402
import backend as backend_mod  # noqa: E402
import engine  # noqa: E402
import run as run_mod  # noqa: E402
import world as world_mod  # noqa: E402

FAULTS = {
    "aws:executeAwsApi": ["api-error", "api-error-persistent", "throttled", "cancel", "cancel-before"],
    "aws:waitForAwsResourceProperty": ["api-error", "wait-timeout", "error-state", "cancel"],
    "aws:assertAwsResourceProperty": ["api-error", "cancel"],
    "aws:executeScript": ["api-error", "api-error-persistent", "cancel", "cancel-before"],
    "aws:runCommand": ["api-error", "command-failed", "command-timeout", "undelivered", "cancel", "cancel-before"],
    "aws:branch": ["cancel"],
    "aws:sleep": ["cancel"],
    "aws:loop": [],
}
ERROR_SELECTORS = ("$.Volumes[0].State", "$.Snapshots[0].State")
COMMAND_OUTCOME = {"command-failed": "failed", "command-timeout": "timeout", "undelivered": "undelivered"}
PERSISTENT = ("api-error-persistent", "throttled")
# The copy-quota drill: the security account's 20 copies in progress end
# this long after Custody first runs (more than one round's QUOTA_BUDGET).
COPY_BUSY = 600
COPY_REFUSED = []  # per copy-quota drill: how many CopySnapshot calls the quota refused
# Two faults in one run: the failure route of a failure route.
TWO_FAULTS = [{"Capture": "command-failed", "SnapshotEvidence": "api-error-persistent"},
              {"Unmount": "command-failed", "SnapshotInUse": "api-error-persistent"},
              {"Capture": "command-failed", "RestoreInstance": "api-error-persistent"}]
WORLD = {"termination_protection": False, "shutdown_behavior": "terminate", "auto_scaling": True}


class Faults:
    """The faults of one drill: {step name: fault}."""

    def __init__(self, plan, world, scripted):
        self.plan = dict(plan)
        self.world = world
        self.scripted = scripted
        self.fired = set()
        self.bit = set()  # steps where an injected API error actually failed a call
        self._seen = 0

    def cancel_during(self, name):
        if self.plan.get(name) in ("cancel", "cancel-before") and name not in self.fired:
            self.fired.add(name)
            # "cancel": StopAutomationExecution while the step's call runs
            # (it happened, its outputs are not given); "cancel-before": it
            # arrives before the call is made.
            return "before" if self.plan[name] == "cancel-before" else "after"
        return False

    def enter(self, name, ex):
        if name == "WaitDisks" and self.plan.get("Custody") == "disks-pending":
            # The disks complete while WaitDisks waits (unless its fault says otherwise).
            self.world.snapshot_overlay.clear()
        self._seen = len(self.world.injected)
        kind = self.plan.get(name)
        if kind is None or kind in ("cancel", "cancel-before"):
            return
        first = name not in self.fired
        self.fired.add(name)
        step = next(s for s in all_steps(ex.runbook) if s["name"] == name)
        if kind == "api-error" and first:
            self.world.fail_calls = 1  # transient: a retry (maxAttempts) absorbs it
        elif kind == "api-error-persistent":
            self.world.fail_calls = 10 ** 6  # every call of every attempt
        elif kind == "throttled":
            # EC2 throttling (RequestLimitExceeded) on every call of every
            # attempt: executeAwsApi does not retry it (F12).
            self.world.fail_calls, self.world.fail_code = 10 ** 6, "RequestLimitExceeded"
        elif kind == "wait-timeout":
            self.world.stuck = step["inputs"]["PropertySelector"]
        elif kind == "error-state" and first:
            inputs = ex.resolve(step["inputs"])
            if "VolumeIds" in inputs:
                self.world.volume_overlay.setdefault(inputs["VolumeIds"][0], {})["State"] = "error"
            else:
                self.world.snapshot_overlay[inputs["SnapshotIds"][0]] = "error"
        elif kind == "disks-pending" and first:
            # Real disks take far longer than the memory evidence: still
            # pending when Custody first runs (SnapshotAllVolumes=yes).
            disks = ex.client("ec2").describe_snapshots(OwnerIds=["self"], Filters=[
                {"Name": "tag:forensics-volume:kind", "Values": ["disk"]}])["Snapshots"]
            self.world.snapshot_overlay.update({d["SnapshotId"]: "pending" for d in disks})
        elif kind in COMMAND_OUTCOME:
            self.scripted.force = backend_mod.Outcome(COMMAND_OUTCOME[kind], exit_code=1)
        elif kind == "copy-quota" and first:
            # The security account's region is at EBS's 20 concurrent copies
            # (a fleet's): world.py's quota model, on the execution's clock,
            # with 20 copies pending until COPY_BUSY seconds after Custody
            # starts: longer than one round's waits (custody.py QUOTA_WAITS),
            # so both the step's retry and CustodyRounds' are needed. The
            # step's sleeps advance the execution's virtual clock.
            world_mod.set_clock(lambda: ex.clock.now)
            busy = ex.clock.now + COPY_BUSY
            for i in range(world_mod.COPY_QUOTA):
                world_mod.QUOTAS.copies["snap-busy%012d" % i] = (accounts.SECURITY, self.world.region, busy)
            self.saved_sleep, time.sleep = time.sleep, ex.clock.advance
        elif kind == "stop-capture":
            # The responder runs Forensics-StopCapture: capture gets SIGTERM,
            # finalizes a labelled partial image and exits 20.
            self.scripted.force = backend_mod.Outcome("failed", exit_code=20)

    def close(self):
        """Undo what outlives a step (the copy-quota fault's clock and sleep)."""
        if getattr(self, "saved_sleep", None) is not None:
            time.sleep, self.saved_sleep = self.saved_sleep, None
            COPY_REFUSED.append(sum(1 for r in world_mod.QUOTAS.refused if r[0] == "CopySnapshot"
                                    and r[3] == "ResourceLimitExceeded"))
            world_mod.set_clock(None)

    def leave(self, name, ex):
        if name == "CustodyRounds":
            self.close()
        if len(self.world.injected) > self._seen:
            self.bit.add(name)
        self.world.fail_calls = 0
        self.world.fail_code = "ServiceUnavailable"
        self.world.stuck = None
        self.scripted.force = None


def all_steps(runbook):
    """The runbook's steps, with those nested in an aws:loop."""
    out = []
    for s in runbook["mainSteps"]:
        out.append(s)
        if s["action"] == "aws:loop":
            out += s["inputs"]["Steps"]
    return out


def applicable(step):
    faults = list(FAULTS[step["action"]])
    if "error-state" in faults and step["inputs"].get("PropertySelector") not in ERROR_SELECTORS:
        faults.remove("error-state")
    return faults


def drill(plan, execution_id, params=None, world_options=None, runbook=None):
    scripted = backend_mod.ScriptedBackend()
    world = accounts.SecurityWorld(**dict(WORLD, **(world_options or {}))).start()  # member + security (issue 13)
    faults = Faults(plan, world, scripted)
    try:
        before = world.protection()
        docs = run_mod.rendered_documents()
        world.create_documents(docs)
        commands = {k: v for k, v in docs.items() if k != run_mod.RUNBOOK}
        ex = engine.Execution(runbook or docs[run_mod.RUNBOOK], world.parameters(**(params or {})), world.session,
                              scripted,
                              commands,
                              world_mod.ACCOUNT, world.region, execution_id=execution_id, faults=faults)
        ex.world = world
        ex.run()
        if (params or {}).get("KeepProtection") == "yes":
            # KeepProtection=yes: the protections stay on after the run.
            violations = invariants(ex, world, scripted, None, plan)
        else:
            violations = invariants(ex, world, scripted, before, plan)
        if set(plan) - faults.fired:
            violations.append("fault not reached: %s" % sorted(set(plan) - faults.fired))
        return ex, violations, outcome(ex, world, scripted)
    finally:
        faults.close()
        world.stop()


def invariants(ex, world, scripted, before, plan):
    v = []
    remaining = {vol["VolumeId"]: vol for vol in world.volumes_of(ex.execution_id)}
    created = ex.values.get("CreateVolume.VolumeId")
    said = ex.failure_message + " " + " ".join(str(x) for x in ex.outputs.values())
    for vid, vol in remaining.items():
        if vid in scripted.evidence:
            continue
        if ex.status != "Success" and any(k in PERSISTENT and n.startswith("Cleanup") for n, k in plan.items()):
            continue  # every clean-up call failed: the volume stays, tagged with the execution
        if ex.status == "Cancelled" and vid in said and [s for s in world.snapshots_of(vid) if s["State"] == "completed"]:
            # Cancelled before Capture's call: the cancel path cannot tell
            # (no outputs), so it keeps and snapshots the volume, named.
            continue
        v.append("I1: %s left behind (%s) with no evidence on it" % (vid, vol["State"]))
    for vid in scripted.evidence:
        snaps = [s for s in world.snapshots_of(vid)
                 if world.snapshot_overlay.get(s["SnapshotId"], s["State"]) == "completed"]
        if snaps:
            for s in snaps:
                if s["SnapshotId"] not in said:
                    v.append("I4: evidence snapshot %s is not named in the outputs" % s["SnapshotId"])
            continue
        vol = remaining.get(vid)
        if vol is None:
            v.append("I2: %s held evidence and was deleted with no completed snapshot" % vid)
        elif not snapshot_failed(ex, world, vid):
            v.append("I2: %s holds evidence and no snapshot of it was even tried (or one is still running)" % vid)
        elif not (vol["State"] == "in-use" and ex.status != "Success" and vid in said
                  and (vid not in scripted.mounted or unmount_failed(ex))):
            # Attached and named is the floor; unmounted too, unless the
            # unmount is what failed (then nothing can unmount it).
            v.append("I2: %s holds evidence, has no completed snapshot, and is %s%s%s" % (
                vid, vol["State"], ", mounted on the suspect" if vid in scripted.mounted else "",
                "" if vid in said else ", and the execution does not name it"))
    if created and created not in said and created in remaining:
        v.append("I4: the execution does not name the volume %s it left" % created)
    after = world.protection()
    if after != before and before is not None and restore_failed(ex) and after[3] == "tagged":
        # Every restore call failed (a persistent fault): nothing can put
        # the protections back, the instance's tag says what they were.
        pass
    elif before is None:
        # KeepProtection=yes: protections stay on, and the tag says what they were.
        if after[:2] != (True, "stop") or after[3] != "tagged":
            v.append("I3: KeepProtection=yes left %s" % (after,))
    elif after != before:
        v.append("I3: instance protections %s, were %s" % (after, before))
    # Disks still pending at Custody are no fault, and what becomes of them
    # in WaitDisks (error, timeout) must not fail the memory evidence's run:
    # I8 holds the custody record to saying why a disk was not copied. Nor
    # is EBS's copy quota, which Custody waits out (issue 24).
    lenient = {x["name"] for x in all_steps(ex.runbook) if x.get("isCritical") is False}
    bit = ex.faults.bit if ex.faults is not None else set()
    if ex.status == "Success" and any(k not in ("api-error", "disks-pending", "copy-quota") and n != "WaitDisks"
                                      and n not in lenient
                                      and (k not in PERSISTENT or n in bit) for n, k in plan.items()):
        v.append("I4: status Success despite %s" % plan)
    if "copy-quota" in plan.values() and (ex.status != "Success" or not ex.outputs.get("Custody.SecuritySnapshotId")):
        # Issue 24: a quota that frees up is waited out, never a reason to
        # leave the evidence outside custody.
        v.append("I9: the security account's copy quota kept the evidence out of custody: %s %s"
                 % (ex.status, ex.failure_message[:200]))
    if ex.status != "Success" and not plan:
        v.append("I4: the fault-free run ended %s: %s" % (ex.status, ex.failure_message))
    if ex.status not in ("Success", "Cancelled") and not ex.failure_message:
        v.append("I4: status %s with no failure message" % ex.status)
    for p in ex.pending_commands:
        if p.get("cut_by_cancel") and p["document"] == "Forensics-UnmountVolume":
            continue  # a late unmount after the snapshot was taken endangers nothing
        v.append("I5: %s (%s) could still run after its step ended at t=%.0f (it ends at t=%.0f, %s)"
                 % (p["step"], p["document"], p["step_ended_at"], p["ends_at"], p["status"]))
    for name, kind in plan.items():
        if kind != "error-state":
            continue
        rec = [r for r in ex.steps if r["name"] == name]
        limit = next(s for s in all_steps(ex.runbook) if s["name"] == name).get("timeoutSeconds", 3600)
        if rec and rec[0]["end"] - rec[0]["start"] >= float(limit):
            v.append("I7: %s waited out its %s s on an error state (H6)" % (name, limit))
    v += custody_invariant(ex, world, said)
    if "stop-capture" in plan.values():
        vid = created
        if scripted.evidence.get(vid) != "partial":
            v.append("I6: stopped capture left %s, not a partial image" % scripted.evidence.get(vid))
        if not [s for s in world.snapshots_of(vid) if s["State"] == "completed"]:
            v.append("I6: the partial image was not snapshotted")
    return v


def custody_invariant(ex, world, said):
    ec2 = world.session.client("ec2")
    taken = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:forensics-volume:execution-id", "Values": [ex.execution_id]}])["Snapshots"]
    copies = {}
    for s in world.security_snapshots():
        tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        if tags.get("forensics-volume:execution-id") == ex.execution_id:
            copies.setdefault(tags.get("forensics-volume:source-snapshot-id"), []).append(s["SnapshotId"])
    # The execution's records, the first and then the disks' later rounds:
    # a later round's word on a snapshot replaces the earlier one's.
    s3 = world.security.client("s3")
    records = [json.loads(s3.get_object(Bucket=accounts.CUSTODY_BUCKET, Key=k)["Body"].read())
               for k in world.custody_records() if ex.execution_id in k]
    record = {}
    for r in sorted(records, key=lambda r: (bool(r.get("first_record")), r.get("written_utc", ""))):
        record.update({e["snapshot_id"]: e for e in r.get("snapshots", [])})
    v = []
    for snap in taken:
        sid = snap["SnapshotId"]
        if len(copies.get(sid, [])) == 1:
            continue
        if len(copies.get(sid, [])) > 1:
            v.append("I8: %s was copied %d times" % (sid, len(copies[sid])))
        elif ex.status == "Success" and not (record.get(sid, {}).get("holds", "").startswith("disk")
                                             and record[sid].get("why_not_copied")
                                             and not record[sid]["why_not_copied"].startswith(
                                                 ("pending when Custody ran:", "the snapshot is pending"))):
            # Success: the memory evidence is in custody; a disk may be left
            # only with the reason in the record (aws/ebs, error, timed out),
            # never merely because it was still pending when Custody ran.
            v.append("I8: %s is not in the security account, and the run says Success" % sid)
        elif record and not record.get(sid, {}).get("why_not_copied"):
            v.append("I8: %s is not in the security account and the custody record does not say why" % sid)
        elif not record and not (sid in said and (ex.status == "Cancelled" or custody_failed(ex))):
            # No record: only a cancel (whose clean-up has two minutes, no
            # time for a copy) or a Custody step that itself failed may leave
            # it, and the run must name the snapshot.
            v.append("I8: %s is not in the security account, no custody record says why%s" % (
                sid, "" if sid in said else ", and the run does not name it"))
    return v


def snapshot_failed(ex, world, vid):
    """Was a snapshot of VID tried and did it fail (the call, or the
    snapshot itself), or did the cancellation workflow's time run out?"""
    create = {s["name"] for s in all_steps(ex.runbook)
              if s["action"] == "aws:executeAwsApi" and s["inputs"].get("Api") == "CreateSnapshot"}
    tried = [r for r in ex.steps if r["name"] in create]
    waits = [r for r in ex.steps if r["name"].startswith(("WaitSnapshot", "AssertSnapshot"))]
    return (any(r["status"] != "Success" for r in tried + waits)
            or any(world.snapshot_overlay.get(s["SnapshotId"], s["State"]) == "error" for s in world.snapshots_of(vid))
            or any("two minutes ran out" in r["message"] for r in ex.steps))


def restore_failed(ex):
    return any(r["name"] in ("RestoreInstance", "CancelRestoreInstance") and r["status"] != "Success"
               for r in ex.steps)


def custody_failed(ex):
    return any(r["name"] == "Custody" and r["status"] != "Success" for r in ex.steps)


def unmount_failed(ex):
    return any(r["name"] == "Unmount" and r["status"] != "Success" for r in ex.steps)


def outcome(ex, world, scripted):
    vols = world.volumes_of(ex.execution_id)
    parts = [ex.status]
    ev = [e for e in scripted.evidence.values()]
    if ev:
        parts.append("image " + ev[0])
    snaps = [world.snapshot_overlay.get(s["SnapshotId"], s["State"])
             for vid in scripted.evidence for s in world.snapshots_of(vid)]
    if snaps:
        parts.append("snap" if "completed" in snaps else "snap " + snaps[0])
    ec2 = world.session.client("ec2")
    for vid in scripted.evidence:
        for snap in world.snapshots_of(vid):
            perms = ec2.describe_snapshot_attribute(SnapshotId=snap["SnapshotId"], Attribute="createVolumePermission")
            if any(p.get("UserId") == world_mod.SECURITY_ACCOUNT for p in perms["CreateVolumePermissions"]):
                parts.append("shared")
                break
    if vols:
        parts.append("vol kept %s" % vols[0]["State"])
    return ", ".join(parts)


def main(argv):
    verbose = "-v" in argv
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    t0 = time.time()
    import selftest
    self_passed, self_failed = selftest.run_all()
    import iam_selftest  # the IAM evaluator every drill's calls go through
    iam_passed, iam_failed = iam_selftest.run_all()
    self_passed, self_failed = self_passed + iam_passed, self_failed + iam_failed
    import fleet_selftest  # issue 24: scheduler, rate control, quotas (service.py, world.py)
    fleet_passed, fleet_failed = fleet_selftest.run_all()
    self_passed, self_failed = self_passed + fleet_passed, self_failed + fleet_failed
    docs = run_mod.rendered_documents()
    steps = {s["name"]: s for s in all_steps(docs[run_mod.RUNBOOK])}
    results = {}  # (step, fault) -> (outcome, violations, primary)
    counter = [0]

    def one(plan, params=None, label="", world_options=None):
        counter[0] += 1
        ex, violations, out = drill(plan, "00000000-0000-4000-8000-%012d" % counter[0], params, world_options)
        if verbose or violations:
            print("--- %s: %s" % (label, out))
            if verbose:
                print(engine.report(ex))
            for x in violations:
                print("    VIOLATION " + x)
        return ex, violations, out

    happy, violations, out = one({}, label="no fault")
    if "m=protect" not in happy.values.get("ProtectInstance.Summary", ""):
        # F2: at MinSize == desired, EnterStandby is refused: scale-in
        # protection and suspended processes instead.
        violations.append("F2: at MinSize == desired ProtectInstance did not protect the instance: %s"
                          % happy.values.get("ProtectInstance.Summary"))
    reached_by = {}  # step -> plan that reaches it
    for r in happy.steps:
        reached_by.setdefault(r["name"], {})
    results[("(none)", "none")] = (out, violations, None)
    todo = list(reached_by)
    _, keep_v, keep_out = one({}, {"KeepProtection": "yes"}, "no fault, KeepProtection=yes")
    results[("(none)", "keep-protection")] = (keep_out, keep_v, None)
    # F2: an Auto Scaling group above its minimum: the instance goes to Standby.
    above_ex, above_v, above_out = one({}, label="no fault, group desired above MinSize", world_options={"min_size": 0})
    if "m=standby" not in above_ex.values.get("ProtectInstance.Summary", ""):
        above_v.append("F2: ProtectInstance did not use Standby above the minimum: %s"
                       % above_ex.values.get("ProtectInstance.Summary"))
    results[("(none)", "above-min")] = (above_out, above_v, None)
    _, disks_v, disks_out = one({}, {"SnapshotAllVolumes": "yes"}, "no fault, SnapshotAllVolumes=yes")
    results[("(none)", "all-volumes")] = (disks_out, disks_v, None)
    stop_ex, stop_v, stop_out = one({"Capture": "stop-capture"}, label="Capture x stop-capture")
    results[("Capture", "stop-capture")] = (stop_out, stop_v, None)
    pending = ({"Custody": "disks-pending"}, {"SnapshotAllVolumes": "yes"})
    pend_ex, pend_v, pend_out = one(*pending, label="SnapshotAllVolumes=yes, disks pending at Custody")
    results[("(none)", "disks-pending")] = (pend_out, pend_v, None)
    params_of = {}  # step -> parameters of the run that reaches it
    for r in pend_ex.steps:
        if r["name"] not in reached_by or r["name"] == "WaitDisks":
            # WaitDisks' faults matter on a disk still pending (without one
            # it waits on the completed memory snapshot).
            reached_by[r["name"]], params_of[r["name"]] = pending
            todo.append(r["name"])
    done = set()
    while todo:
        name = todo.pop(0)
        if name in done:
            continue
        done.add(name)
        for fault in applicable(steps[name]):
            if only and name != only:
                continue
            plan = dict(reached_by[name])
            plan[name] = fault
            ex, violations, out = one(plan, params_of.get(name), "%s x %s%s" % (
                name, fault, " after %s" % reached_by[name] if reached_by[name] else ""))
            results[(name, fault)] = (out, violations, reached_by[name] or None)
            for r in ex.steps:
                if r["name"] not in reached_by and r["name"] != name:
                    reached_by[r["name"]] = plan
                    params_of[r["name"]] = params_of.get(name)
                    todo.append(r["name"])
    # Issue 24: the security account's region is at CopySnapshot's quota
    # when Custody runs; the evidence must still end in custody.
    quota_ex, quota_v, quota_out = one({"Custody": "copy-quota"}, label="Custody x copy-quota")
    if not (COPY_REFUSED and COPY_REFUSED[-1] > 0):
        quota_v.append("copy-quota: the quota never refused a copy: the drill proves nothing")
    results[("(none)", "copy-quota")] = (quota_out, quota_v, None)
    for plan in TWO_FAULTS:
        _, two_v, two_out = one(plan, label="two faults: %s" % plan)
        results[("(two)", " + ".join("%s:%s" % kv for kv in plan.items()))] = (two_out, two_v, None)
    unreached = sorted(set(steps) - set(reached_by))
    print_matrix(results, steps)
    failed = sum(1 for o, v, _ in results.values() if v) + len(unreached) + self_failed
    passed = len(results) - sum(1 for o, v, _ in results.values() if v) + self_passed
    for name in unreached:
        print("UNREACHED: no drill reaches step %s" % name)
    print("%d drills in %.1f s" % (len(results), time.time() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def print_matrix(results, steps):
    faults = ["api-error", "api-error-persistent", "throttled", "wait-timeout", "error-state", "command-failed",
              "command-timeout", "undelivered", "cancel", "cancel-before", "stop-capture"]
    width = max(len(s) for s in steps) + 1
    print("\nstep x fault -> outcome (status, image on the volume, snapshot, shared, volume kept); '!' = invariant broken")
    for name in steps:
        cells = []
        for f in faults:
            if (name, f) in results:
                o, v, primary = results[(name, f)]
                via = "" if not primary else " [after %s]" % ",".join("%s:%s" % kv for kv in primary.items())
                cells.append("  %-15s %s%s%s" % (f, "! " if v else "", o, via))
        print(name.ljust(width) + ("\n" + " " * width).join(cells) if cells else name.ljust(width) + "  (no drill)")
    for (name, f), (o, v, _) in sorted(results.items()):
        if name in ("(none)", "(two)"):
            print("%s %s%s: %s" % (name, "! " if v else "", f, o))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
