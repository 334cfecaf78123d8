"""Checks of the Forensics-CaptureInstanceMemory runbook and its plan.py (run by check.py).

The runbook's steps have their inputs and the steps, outputs and documents
they name exist; every failure or cancel path before the capture reaches the
volume's clean-up, and no path after it deletes the volume before the
evidence snapshot is complete, then hands over to Custody; delivery timeouts,
the forced clean-up detach and fail-fast waits are set. plan.py's arithmetic
(volume size, gp3 limits, device names, timeout) and its executeScript
handler against boto3 responses shaped as the API reference documents them.
Why: the runbook decides, unattended, what is created and deleted in the
member account; a wrong edge loses evidence or leaves a volume behind.
"""

import contextlib
import io
import json
import re
import sys

import fvdeploy
import ssm_script
from checklib import CheckFailed, check, documents, expect

sys.path.insert(0, fvdeploy.SCRIPTS)
import plan  # noqa: E402  (deploy/scripts/plan.py, the runbook's executeScript)


# ---- the runbook ------------------------------------------------------------------

REQUIRED_INPUTS = {
    "aws:executeAwsApi": ["Service", "Api"],
    "aws:waitForAwsResourceProperty": ["Service", "Api", "PropertySelector", "DesiredValues"],
    "aws:assertAwsResourceProperty": ["Service", "Api", "PropertySelector", "DesiredValues"],
    "aws:executeScript": ["Runtime", "Handler", "Script"],
    "aws:runCommand": ["DocumentName", "InstanceIds"],
    "aws:branch": ["Choices"],
    "aws:loop": ["Steps", "LoopCondition", "MaxIterations"],
}
DELETE_APIS = {"DeleteVolume"}


def all_steps(doc):
    """Top-level steps and those nested in an aws:loop."""
    for s in doc["mainSteps"]:
        yield s
        if s["action"] == "aws:loop":
            yield from s["inputs"]["Steps"]


def runbook_graph(doc):
    """success and failure edges of each step (None = end of execution)."""
    steps = doc["mainSteps"]
    names = [s["name"] for s in steps]
    ok, fail = {}, {}
    for i, s in enumerate(steps):
        nxt = names[i + 1] if i + 1 < len(names) else None
        if s["action"] == "aws:branch":
            # No Default: the next step in the runbook (automation-action-branch.html).
            ok[s["name"]] = [c["NextStep"] for c in s["inputs"]["Choices"]] + [s["inputs"].get("Default", nxt)]
        elif s.get("isEnd"):
            ok[s["name"]] = [None]
        else:
            ok[s["name"]] = [s.get("nextStep", nxt)]
        fail[s["name"]] = []
        # A cancel follows onCancel as a failure follows onFailure.
        for key in ("onFailure", "onCancel"):
            target = s.get(key, "Abort")
            edge = target[len("step:"):] if target.startswith("step:") else nxt if target == "Continue" else None
            if edge not in fail[s["name"]]:
                fail[s["name"]].append(edge)
    return ok, fail


@check("runbook: steps have their inputs, referenced steps, outputs and documents exist")
def check_runbook_references():
    doc = documents()["Forensics-CaptureInstanceMemory"]
    steps = {s["name"]: s for s in all_steps(doc)}
    expect(len(steps) == len(list(all_steps(doc))), "duplicate step names")
    outputs = {(s["name"], o["Name"]) for s in all_steps(doc) for o in s.get("outputs", [])}
    outputs |= {(s["name"], "CurrentIteration") for s in all_steps(doc) if s["action"] == "aws:loop"}
    builtin = {"CommandId", "Status", "ResponseCode", "Output"}
    for s in all_steps(doc):
        for key in REQUIRED_INPUTS[s["action"]]:
            expect(key in s["inputs"], "%s (%s) lacks input %s" % (s["name"], s["action"], key))
        if s["action"] == "aws:runCommand":
            expect(s["inputs"]["DocumentName"] in fvdeploy.COMMAND_DOCUMENTS,
                   "%s runs unknown document %s" % (s["name"], s["inputs"]["DocumentName"]))
            target = documents()[s["inputs"]["DocumentName"]]
            given = s["inputs"].get("Parameters", {})
            for p in given:
                expect(p in target["parameters"], "%s passes %s, unknown to %s" % (s["name"], p, s["inputs"]["DocumentName"]))
            for p, spec in target["parameters"].items():
                expect(p in given or "default" in spec, "%s does not pass required %s" % (s["name"], p))
    ok, fail = runbook_graph(doc)
    for name in ok:
        for t in ok[name] + fail[name]:
            expect(t is None or t in steps, "%s jumps to unknown step %s" % (name, t))
    text = json.dumps(doc)
    for ref in re.findall(r"\{\{ ?([A-Za-z0-9_:]+)\.([A-Za-z0-9_]+) ?\}\}", text):
        if ref[0] in ("global", "automation"):
            continue
        expect(ref[0] in steps, "reference to unknown step %s.%s" % ref)
        runs = steps[ref[0]]["action"] == "aws:runCommand"
        expect(ref in outputs or (runs and ref[1] in builtin), "reference to undeclared output %s.%s" % ref)
    for ref in re.findall(r"\{\{ ?([A-Za-z0-9_]+) ?\}\}", text):
        expect(ref in doc["parameters"], "reference to undeclared parameter %s" % ref)
    for out in doc["outputs"]:
        step, _, field = out.partition(".")
        runs = steps.get(step, {}).get("action") == "aws:runCommand"
        expect((step, field) in outputs or (runs and field in builtin), "runbook output %s is not produced" % out)
    reachable, todo = set(), [doc["mainSteps"][0]["name"]]
    while todo:
        n = todo.pop()
        if n is None or n in reachable:
            continue
        reachable.add(n)
        todo += ok[n] + fail[n]
    expect(reachable == set(ok), "unreachable steps: %s" % sorted(set(ok) - reachable))


@check("runbook: every failure before the capture reaches volume clean-up; after it, nothing deletes evidence")
def check_runbook_failure_paths():
    doc = documents()["Forensics-CaptureInstanceMemory"]
    steps = {s["name"]: s for s in doc["mainSteps"]}
    ok, fail = runbook_graph(doc)

    def deletes(n):
        return steps[n]["action"] == "aws:executeAwsApi" and steps[n]["inputs"]["Api"] in DELETE_APIS

    def reaches_delete(start):
        """Following success edges (and failure edges of non-critical steps),
        does every path from start reach a DeleteVolume step?"""
        memo = {}

        def walk(n):
            if n is None:
                return False
            if deletes(n):
                return True
            if n in memo:
                return memo[n]  # False while n is being walked: a loop never reaches the delete
            memo[n] = False
            # A non-critical clean-up step goes on when it fails; a critical
            # one that fails (a detach that never completes) stops, reported.
            nexts = list(ok[n])
            if steps[n].get("isCritical") is False and n != "CleanupFindVolume":
                # (CleanupFindVolume fails only when there is no volume to delete.)
                nexts = nexts + fail[n]
            memo[n] = all(walk(t) for t in nexts)
            return memo[n]
        return walk(start)

    names = [s["name"] for s in doc["mainSteps"]]
    create = names.index("CreateVolume")
    capture = names.index("Capture")
    for n in names[create + 1:capture]:
        for edge in fail[n]:
            expect(edge is not None, "%s aborts (on failure or cancel) without cleaning up the volume" % n)
            expect(edge is None or reaches_delete(edge), "failure or cancel of %s does not reach DeleteVolume" % n)
    # After the capture: no path (success, failure or cancel) reaches a
    # delete except through the success of AssertSnapshotCompleted.
    seen, todo = set(), [names[capture]]
    while todo:
        n = todo.pop()
        if n is None or n in seen:
            continue
        seen.add(n)
        expect(not deletes(n), "%s can delete the volume before the evidence snapshot is complete" % n)
        nexts = fail[n] + ([] if n == "AssertSnapshotCompleted" else ok[n])
        todo += nexts
    expect("SnapshotEvidence" in seen and "AssertSnapshotCompleted" in seen, "capture does not lead to the snapshot")
    expect(fail["Capture"][0] == "Unmount", "a failed capture must still unmount and keep the evidence")
    # W1: a failed unmount still snapshots the (attached) volume.
    expect(fail["Unmount"][0] == "SnapshotInUse" and steps["SnapshotInUse"]["inputs"]["Api"] == "CreateSnapshot",
           "a failed unmount must snapshot the attached volume")
    # W1: the evidence snapshot is taken right after the unmount, before the detach.
    expect(names.index("SnapshotEvidence") < names.index("DetachVolume") and ok["Unmount"] == ["SnapshotEvidence"],
           "the snapshot must follow the unmount, before DetachVolume")
    delete_steps = [n for n in names if deletes(n)]
    for n in delete_steps:
        expect(steps[n].get("isEnd") is True or ok[n] == ["RestoreInstance"],
               "%s neither ends the execution nor goes to RestoreInstance" % n)
    # Issue 13: every path that took an evidence snapshot ends in Custody
    # (hand-over to the security account), after RestoreInstance: restore
    # (success or failure), then the gate, then the custody loop (issue 20:
    # no cycle in the step graph; Custody and WaitDisks repeat inside
    # aws:loop while disks are pending).
    for n in ("AssertSnapshotCompleted", "AssertSnapshotInUse", "DeleteVolume", "DetachVolume", "WaitDetached"):
        expect("RestoreInstance" in ok[n] + fail[n] or n == "AssertSnapshotCompleted",
               "%s (evidence snapshot taken) does not lead to RestoreInstance and Custody" % n)
    expect(ok["AssertSnapshotInUse"] == ["RestoreInstance"], "the snapshot of a volume whose unmount failed skips custody")
    expect(ok["RestoreInstance"] == ["EvidenceTaken"] and fail["RestoreInstance"] == ["EvidenceTaken", None]
           and steps["EvidenceTaken"]["inputs"]["Choices"][0]["NextStep"] == "CustodyRounds"
           and steps["EvidenceTaken"]["inputs"]["Choices"][0]["Variable"] == "{{ Mount.Status }}"
           and ok["EvidenceTaken"] == ["CustodyRounds", "CustodyRounds"],
           "RestoreInstance, whatever its end, must lead to the custody loop where Mount succeeded")
    loop = steps["CustodyRounds"]
    inner = [x["name"] for x in loop["inputs"]["Steps"]]
    wait = loop["inputs"]["Steps"][-1]
    expect(loop["action"] == "aws:loop" and inner == ["Custody", "WaitDisks"]
           and loop["inputs"]["LoopCondition"] == {"Variable": "{{ Custody.Pending }}", "StringEquals": "yes"}
           and wait.get("isCritical") is False and wait.get("onFailure") == "Continue"
           and loop["inputs"]["Steps"][0].get("onFailure", "Abort") == "Abort" and ok["CustodyRounds"] == [None],
           "CustodyRounds must run Custody, then WaitDisks (non-critical) while disks are pending, and end the run")


@check("runbook: onCancel from CreateVolume on, delivery timeouts, forced clean-up detach, fail-fast waits")
def check_runbook_hardening():
    doc = documents()["Forensics-CaptureInstanceMemory"]
    steps = doc["mainSteps"]
    names = [s["name"] for s in steps]
    by_name = {s["name"]: s for s in steps}
    # W4: every step that can run while the volume exists has somewhere to go on cancel
    # (the cancellation workflow's own steps and the final restore excepted).
    for s in steps[names.index("CreateVolume"):]:
        if s["name"].startswith("Cancel") or s["name"] in ("RestoreInstance", "EvidenceTaken", "CustodyRounds"):
            # After RestoreInstance every snapshot is taken and the instance
            # restored: a cancel in custody ends the run (aws:loop takes no
            # onCancel); the copies made so far and their record stay.
            continue
        expect(s.get("onCancel", "").startswith("step:"), "%s has no onCancel" % s["name"])
    # H1: delivery timeout set, and the step outlives delivery + execution.
    for s in steps:
        if s["action"] != "aws:runCommand":
            continue
        delivery = s["inputs"].get("TimeoutSeconds")
        expect(isinstance(delivery, int) and 30 <= delivery <= 600, "%s: delivery TimeoutSeconds %r" % (s["name"], delivery))
        target = documents()[s["inputs"]["DocumentName"]]
        execution = target["mainSteps"][0]["inputs"]["timeoutSeconds"]
        execution = 172800 if "{{" in execution else int(execution)
        expect(isinstance(delivery, int) and s.get("timeoutSeconds", 0) >= delivery + execution,
               "%s: timeoutSeconds %s < delivery %s + execution %s" % (s["name"], s.get("timeoutSeconds"), delivery, execution))
    # H5: the clean-up detach is forced (reachable only before the capture).
    expect(by_name["CleanupDetachVolume"]["inputs"].get("Force") is True, "CleanupDetachVolume is not forced")
    # H6: the waits for a new volume and for the snapshots also stop at
    # "error", and an assert of the same property follows each.
    for i, s in enumerate(steps):
        if s["name"] not in ("WaitVolumeAvailable", "WaitSnapshotCompleted", "WaitSnapshotInUse"):
            continue
        sel = s["inputs"]["PropertySelector"]
        expect("error" in s["inputs"]["DesiredValues"], "%s waits out its timeout on an error state" % s["name"])
        nxt = steps[i + 1] if i + 1 < len(steps) else {}
        expect(nxt.get("action") == "aws:assertAwsResourceProperty" and nxt["inputs"].get("PropertySelector") == sel,
                   "%s is not followed by an assert of %s" % (s["name"], sel))


@check("plan.py: volume size, gp3 limits, device names and timeout")
def check_plan():
    p = plan.make_plan(16384, 2, ["/dev/xvda", "/dev/sdf"], 6000, 1000, 110, 40)
    expect(p["VolumeSizeGiB"] == 2 + 18 + 1, "16 GiB RAM: size %d" % p["VolumeSizeGiB"])
    expect(p["DeviceName"] == "/dev/sdg", "device %s" % p["DeviceName"])
    expect(p["CaptureTimeout"] == str(900 + 16384 // 40 + 1), "timeout %s" % p["CaptureTimeout"])
    expect((p["VolumeIops"], p["VolumeThroughput"]) == (6000, 1000), "iops/throughput changed: %s" % p)
    small = plan.make_plan(1024, 2, ["/dev/xvda"], 6000, 1000, 110, 40)
    expect(small["VolumeSizeGiB"] == 5 and small["VolumeIops"] == 3000 and small["VolumeThroughput"] == 750,
           "small volume not held to gp3 limits: %s" % small)
    huge = plan.make_plan(24 * 1024 * 1024, 2, [], 6000, 1000, 110, 40)
    expect(huge["CaptureTimeout"] == "172800" and "capped" in huge["Notes"], "timeout not capped: %s" % huge)
    # W5: the volume's ext4 (no 64bit feature) stops at 16 TiB; the plan says how much it relies on compression.
    expect(huge["VolumeSizeGiB"] == 16384 and huge["ImageRoomPercentOfRam"] == 66
           and "must compress to 66% of RAM" in huge["Notes"], "24 TiB of RAM: %s" % huge)
    expect(p["ImageRoomPercentOfRam"] == 112 and "compress" not in p["Notes"], "16 GiB RAM: %s" % p)
    edge = plan.make_plan((16384 - 4) * 1024 * 100 // 110, 2, [], 6000, 1000, 110, 40)
    expect(edge["VolumeSizeGiB"] <= 16384, "just under the limit: %s" % edge)
    expect(plan.free_device(["/dev/sd%s" % c for c in "fghijklmno"] + ["/dev/xvda"]) == "/dev/sdp", "sdp not found")
    expect(plan.free_device(["xvdf"]) == "/dev/sdg", "xvdf does not block sdf")
    for bad in ([["/dev/sd%s" % c for c in "fghijklmnop"]], ):
        try:
            plan.free_device(*bad)
        except plan.PlanError:
            pass
        else:
            raise CheckFailed("all of sd[f-p] used but a device was chosen")
    for args in ((0, 2, [], 6000, 1000, 110, 40), (1024, 2, [], 2000, 1000, 110, 40),
                 (1024, 2, [], 6000, 100, 110, 40), (1024, 2, [], 6000, 1000, 99, 40)):
        try:
            plan.make_plan(*args)
        except plan.PlanError:
            continue
        raise CheckFailed("make_plan%r did not refuse" % (args,))
    expect(plan.resolve_snapshot_id("", "snap-0123456789abcdef0\n") == "snap-0123456789abcdef0", "parameter value")
    try:
        plan.resolve_snapshot_id("", "unpublished")
    except plan.PlanError as e:
        expect("publish" in str(e), "unhelpful message: %s" % e)
    else:
        raise CheckFailed("an unpublished parameter was accepted")
    for inst, word in (({"State": {"Name": "stopped"}, "Architecture": "x86_64"}, "stopped"),
                       ({"State": {"Name": "running"}, "Platform": "windows", "Architecture": "x86_64"}, "Windows"),
                       ({"State": {"Name": "running"}, "Architecture": "i386"}, "i386")):
        try:
            plan.check_instance(inst)
        except plan.PlanError as e:
            expect(word in str(e), "message %r lacks %r" % (str(e), word))
        else:
            raise CheckFailed("instance %r accepted" % inst)
    plan.check_instance({"State": {"Name": "running"}, "Architecture": "arm64"})


class FakeAws:
    """boto3 stand-in returning responses shaped as the EC2/SSM API reference
    documents them: checks plan.handler reads the right fields, offline."""

    def __init__(self, parameter="snap-0123456789abcdef0", state="completed"):
        self.calls = []
        self.parameter = parameter
        self.state = state

    def client(self, service):
        fake = self

        class Client:
            def __getattr__(self, api):
                def call(**kw):
                    fake.calls.append((service, api, kw))
                    return fake.respond(service, api, kw)
                return call
        return Client()

    def respond(self, service, api, kw):
        if api == "describe_instances":
            return {"Reservations": [{"Instances": [{
                "InstanceId": kw["InstanceIds"][0], "InstanceType": "r6i.large", "Architecture": "x86_64",
                "State": {"Code": 16, "Name": "running"}, "PlatformDetails": "Linux/UNIX",
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-0aaaaaaaaaaaaaaaa"}},
                                        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeId": "vol-0bbbbbbbbbbbbbbbb"}}]}]}]}
        if api == "describe_instance_types":
            return {"InstanceTypes": [{"InstanceType": "r6i.large", "MemoryInfo": {"SizeInMiB": 16384},
                                       "Hypervisor": "nitro"}]}
        if api == "get_parameter":
            return {"Parameter": {"Name": kw["Name"], "Type": "String", "Value": self.parameter}}
        if api == "describe_snapshots":
            return {"Snapshots": [{"SnapshotId": kw["SnapshotIds"][0], "State": self.state, "VolumeSize": 2}]}
        raise CheckFailed("plan.handler called unexpected API %s.%s" % (service, api))


@check("plan.py: the executeScript handler's AWS calls and outputs match the runbook's selectors")
def check_plan_handler():
    doc = documents()["Forensics-CaptureInstanceMemory"]
    step = [s for s in doc["mainSteps"] if s["name"] == "Plan"][0]
    events = {k: ssm_script.PLACEHOLDER.sub(lambda m: {"InstanceId": "i-0123456789abcdef0", "SnapshotId": "",
                                                        "SecurityAccountId": "222222222222"}.get(
        m.group(1), doc["parameters"][m.group(1)].get("default", "")), v) for k, v in step["inputs"]["InputPayload"].items()}
    fake = FakeAws()
    sys.modules["boto3"] = fake
    try:
        out = plan.handler(events, None)
        for o in step["outputs"]:
            key = o["Selector"][len("$.Payload."):]
            expect(key in out, "output %s (%s) not returned" % (o["Name"], o["Selector"]))
            want = int if o["Type"] == "Integer" else str
            expect(isinstance(out[key], want), "%s is %r, declared %s" % (key, out[key], o["Type"]))
        expect(out["SnapshotId"] == "snap-0123456789abcdef0" and out["DeviceName"] == "/dev/sdg"
               and out["VolumeSizeGiB"] == 21 and out["Share"] == "yes", "plan %r" % out)
        expect(("ssm", "get_parameter", {"Name": "/forensics-volume/snapshot-id"}) in fake.calls, "parameter not read")
        sys.modules["boto3"] = FakeAws(state="pending")
        try:
            plan.handler(events, None)
        except plan.PlanError as e:
            expect("not completed" in str(e), str(e))
        else:
            raise CheckFailed("a pending snapshot was accepted")
    finally:
        del sys.modules["boto3"]


@check("fleet.py and custody.py: the fleet's concurrency split, targets, capture status; the copy-quota waits")
def check_fleet():
    import custody
    import fleet

    starts = [{"account": a, "region": r, "count": n} for a, r, n in
              (("1", "eu-west-1", 10), ("2", "eu-west-1", 5), ("3", "us-east-1", 15))]
    fleet.rate_controls(starts, "10", "3")
    conc = [int(s["max_concurrency"]) for s in starts]
    expect(sum(conc) == 10 and all(c >= 1 for c in conc) and conc[2] >= conc[0] >= conc[1],
           "10 over 10/5/15 instances: %s" % conc)
    expect(sum(int(s["max_errors"]) for s in starts) == 3, "errors %s" % [s["max_errors"] for s in starts])
    big = [{"account": str(i), "region": "eu-west-1", "count": 40} for i in range(3)]
    fleet.rate_controls(big, "90", "0")
    expect(sum(int(s["max_concurrency"]) for s in big) <= fleet.COPY_QUOTA, "one region over the copy quota: %s"
           % [s["max_concurrency"] for s in big])
    fleet.rate_controls(big, "25%", "10%")
    expect({s["max_concurrency"] for s in big} == {"25%"} and {s["max_errors"] for s in big} == {"10%"},
           "percentages are passed as given")
    one = [{"account": "1", "region": "eu-west-1", "count": 300}]
    fleet.rate_controls(one, "500", "1")
    expect(one[0]["max_concurrency"] == str(fleet.COPY_QUOTA), "one start: %s" % one[0])
    args = fleet.parse_args(["--case", "C", "--examiner", "e", "--security-account", "2" * 12, "--accounts",
                             "1" * 12, "--regions", "eu-west-1", "--instances",
                             ",".join("i-%017x" % i for i in range(120))])
    planned = fleet.plan(args, None)
    expect([s["count"] for s in planned] == [50, 50, 20] and
           all(s["targets"][0]["Key"] == "ParameterValues" for s in planned), "120 IDs: %s"
           % [s["count"] for s in planned])
    for bad in (["--case", "C"], ["--case", "bad case", "--examiner", "e", "--security-account", "2" * 12,
                                  "--accounts", "1" * 12, "--regions", "r", "--tag", "K=V"]):
        with contextlib.redirect_stderr(io.StringIO()):
            expect(fleet.main(bad, session=object()) == 2, "%s accepted" % bad)
    line = "capture: complete: 2.0 GiB of RAM in 3 range(s) from kcore in 41s"
    expect(fleet.capture_of({"capture": {"final_line": line}}) == ("complete", 2 << 30), "capture_of")
    expect(fleet.capture_of({"capture": {"final_line": "capture: PARTIAL (stopped; ...): 1.5 GiB of RAM"}})[0]
           == "partial" and fleet.capture_of(None) == ("none", None), "partial / none")
    loop = next(s for s in documents()["Forensics-CaptureInstanceMemory"]["mainSteps"] if s["name"] == "CustodyRounds")
    expect(loop["inputs"]["MaxIterations"] == custody.LAST_ROUND, "custody.LAST_ROUND is not the loop's MaxIterations")
    custody_step = loop["inputs"]["Steps"][0]
    spent = 0
    for w in custody.QUOTA_WAITS:
        spent += w if spent + w <= custody.QUOTA_BUDGET else 0
    expect(spent <= custody.QUOTA_BUDGET <= int(custody_step["timeoutSeconds"]) - 120,
           "the copy-quota waits (%d s) leave the step's %s s no room" % (spent, custody_step["timeoutSeconds"]))
