"""Selftests of the fleet side of the engine (issue 24): the scheduler,
rate-controlled executions served by service.py, and the quotas of
world.py, each against what its AWS page says (cited in those modules).
Run by drills.py (so by `deploy/automation.sh drills` and ./build.sh test);
alone:

    deploy/automation.sh python deploy/automation/fleet_selftest.py

Most tests run a tiny runbook (one API call, one sleep, one assertion that
fails on instances of type t3.nano) as the world's administrator, so that
rate control is what is measured; one runs the real runbook through the
member's starter role, IAM evaluated.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import accounts  # noqa: E402
import engine  # noqa: E402
import run as run_mod  # noqa: E402
import scheduler as scheduler_mod  # noqa: E402
import service as service_mod  # noqa: E402
import world as world_mod  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

RESULTS = []
TINY = "Fleet-Tiny"
TINY_RUNBOOK = {
    "schemaVersion": "0.3",
    "parameters": {"InstanceId": {"type": "String", "allowedPattern": "^i-[a-z0-9]{8,17}$"},
                   "CaseId": {"type": "String", "default": "IR-1"}},
    "mainSteps": [
        {"name": "Look", "action": "aws:executeAwsApi",
         "inputs": {"Service": "ec2", "Api": "DescribeInstances", "InstanceIds": ["{{ InstanceId }}"]},
         "outputs": [{"Name": "Type", "Selector": "$.Reservations[0].Instances[0].InstanceType"}]},
        {"name": "Work", "action": "aws:sleep", "inputs": {"Duration": "PT60S"}},
        {"name": "Verdict", "action": "aws:assertAwsResourceProperty",
         "inputs": {"Service": "ec2", "Api": "DescribeInstances", "InstanceIds": ["{{ InstanceId }}"],
                    "PropertySelector": "$.Reservations[0].Instances[0].InstanceType",
                    "DesiredValues": ["t3.micro", "r6i.large"]}},
    ],
}


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok)))
    print("%s fleet: %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + str(detail)[:400]))


def refused(fn, code=None):
    """The error code FN's call fails with ('EngineError' for a refusal of
    the stand-in), or None."""
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    except engine.EngineError:
        return "EngineError"
    return None


class Fleet:
    """A world with N extra instances (the first `failing` of type t3.nano,
    which the tiny runbook fails on), tagged Incident=IR-9, and a service."""

    def __init__(self, n=0, failing=0, seed=0, security=False, **quota):
        self.w = (accounts.SecurityWorld() if security else world_mod.World()).start()
        ssm = self.w.session.client("ssm")
        ssm.create_document(Name=TINY, Content=json.dumps(TINY_RUNBOOK), DocumentType="Automation",
                            DocumentFormat="JSON")
        ec2 = self.w.session.client("ec2")
        self.ids = []
        for i in range(n):
            inst = ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1,
                                     InstanceType="t3.nano" if i < failing else "t3.micro",
                                     TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                         {"Key": "Incident", "Value": "IR-9"}, {"Key": "Order", "Value": "%03d" % i}]}]
                                     )["Instances"][0]
            self.ids.append(inst["InstanceId"])
        self.svc = service_mod.AutomationService(self.w, seed=seed, **quota).start()
        self.ssm = ssm

    def start(self, **kw):
        kw.setdefault("DocumentName", TINY)
        return self.ssm.start_automation_execution(**kw)["AutomationExecutionId"]

    def children(self, parent):
        out, token = [], None
        while True:
            kw = {"Filters": [{"Key": "ParentExecutionId", "Values": [parent]}], "MaxResults": 50}
            if token:
                kw["NextToken"] = token
            page = self.ssm.describe_automation_executions(**kw)
            out += page["AutomationExecutionMetadataList"]
            token = page.get("NextToken")
            if not token:
                return out

    def overlap(self, parent):
        """The most children of PARENT in progress at one virtual instant."""
        spans = [(r.start, r.end) for r in self.svc.executions.values() if r.parent_id == parent
                 and r.start is not None]
        return max((sum(1 for a, b in spans if a <= t < b) for t, _ in spans), default=0)

    def stop(self):
        self.w.stop()


def test_scheduler():
    """Interleaving in virtual time, deterministic for a seed."""
    def trace(seed):
        s = scheduler_mod.Scheduler(seed)
        log = []
        for name in "abc":
            s.spawn(lambda name=name: [log.append((name, s.time)) or s.sleep(10) for _ in range(3)], name)
        end = s.run()
        return log, end
    a, end = trace(1)
    check("scheduler: three tasks of 3 x 10 s overlap (30 virtual s, not 90)", end == 30, end)
    check("scheduler: the same seed interleaves the same way, another seed differently",
          trace(1) == trace(1) and any(trace(k)[0] != a for k in range(2, 6)), a)


def test_rate_control():
    f = Fleet(n=12, failing=0)
    try:
        parent = f.start(TargetParameterName="InstanceId", Targets=[{"Key": "tag:Incident", "Values": ["IR-9"]}],
                         MaxConcurrency="4", MaxErrors="0")
        took = f.svc.run()
        got = f.ssm.get_automation_execution(AutomationExecutionId=parent)["AutomationExecution"]
        kids = f.children(parent)
        check("rate: tag:Incident resolves to the 12 tagged instances, one child each, all Success",
              sorted(k["Target"] for k in kids) == sorted(f.ids) and len(f.ids) == 12
              and all(k["AutomationExecutionStatus"] == "Success" for k in kids)
              and got["AutomationExecutionStatus"] == "Success", got.get("FailureMessage"))
        check("rate: children carry ParentAutomationExecutionId; the parent's steps name them",
              all(k["ParentAutomationExecutionId"] == parent for k in kids)
              and {s["Outputs"]["ExecutionId"][0] for s in got["StepExecutions"]} ==
              {k["AutomationExecutionId"] for k in kids}
              and got["ProgressCounters"]["SuccessSteps"] == 12, got["StepExecutions"][:1])
        page = f.ssm.describe_automation_step_executions(AutomationExecutionId=parent, MaxResults=5, Filters=[
            {"Key": "StepExecutionStatus", "Values": ["Success"]}])
        rest = f.ssm.describe_automation_step_executions(AutomationExecutionId=parent, MaxResults=50,
                                                         NextToken=page["NextToken"])
        check("rate: the parent's steps page (MaxResults, NextToken) and filter by status; an unimplemented "
              "filter is refused", len(page["StepExecutions"]) == 5 and len(rest["StepExecutions"]) == 7
              and refused(lambda: f.ssm.describe_automation_step_executions(
                  AutomationExecutionId=parent, Filters=[{"Key": "StartTimeBefore", "Values": ["x"]}]))
              == "EngineError", (len(page["StepExecutions"]), len(rest["StepExecutions"])))
        spans = sorted((r.start, r.end) for r in f.svc.executions.values() if r.parent_id == parent)
        check("rate: the first child runs alone, two start once it has ended (RATE's ramp-up)",
              spans[1][0] >= spans[0][1] and spans[2][0] >= spans[0][1] and spans[3][0] > spans[2][0] - 1e-9
              and sum(1 for a, b in spans if a < spans[1][1]) <= 3, spans[:4])
        most = f.overlap(parent)
        check("rate: MaxConcurrency 4 is reached and never exceeded (ramp 1, 2, 4)", most == 4, most)
        check("rate: the 12 children overlap in virtual time (%d s < 12 x 60 s)" % took, took < 12 * 60 / 2, took)
    finally:
        f.stop()


def test_determinism():
    """The same seed gives the same fleet run (IDs, order, virtual times);
    another seed interleaves differently."""
    def one(seed):
        f = Fleet(n=6, failing=2, seed=seed)
        try:
            f.start(TargetParameterName="InstanceId", Targets=[{"Key": "ParameterValues", "Values": f.ids}],
                    MaxConcurrency="3", MaxErrors="5")
            f.svc.run()
            # moto draws instance IDs at random: targets by their index
            return [(r.id, f.ids.index(r.target) if r.target else None, r.start, r.end, r.status)
                    for r in f.svc.executions.values()]
        finally:
            f.stop()
    a, b, c = one(7), one(7), one(8)
    check("determinism: seed 7 twice gives the same executions, targets, times and statuses; seed 8 other IDs",
          a == b and [x[0] for x in a] != [x[0] for x in c] and len(a) == 7, (a[:2], b[:2], c[:2]))


def test_error_budget():
    f = Fleet(n=10, failing=4)
    try:
        parent = f.start(TargetParameterName="InstanceId",
                         Targets=[{"Key": "ParameterValues", "Values": f.ids}], MaxConcurrency="1", MaxErrors="1")
        f.svc.run()
        got = f.ssm.get_automation_execution(AutomationExecutionId=parent)["AutomationExecution"]
        kids = f.children(parent)
        pending = [s for s in got["StepExecutions"] if s["StepStatus"] == "Pending"]
        check("budget: MaxErrors 1 stops new starts at the second error; the rest are never started",
              len(kids) == 2 and len(pending) == 8 and got["AutomationExecutionStatus"] == "Failed"
              and "8 targets not started" in got.get("FailureMessage", ""),
              (len(kids), len(pending), got.get("FailureMessage")))
    finally:
        f.stop()
    f = Fleet(n=10, failing=10)
    try:
        parent = f.start(TargetParameterName="InstanceId",
                         Targets=[{"Key": "ParameterValues", "Values": f.ids}], MaxConcurrency="10%",
                         MaxErrors="30%")
        f.svc.run()
        kids = f.children(parent)
        # 30% of 10 = 3 errors by the API reference's reading, 2 by the user
        # guide's (the earlier stop): the third error stops.
        check("budget: percentages: MaxConcurrency 10%% of 10 = 1 at a time, MaxErrors 30%% stops at the "
              "third error", len(kids) == 3 and f.overlap(parent) == 1, (len(kids), f.overlap(parent)))
    finally:
        f.stop()


def test_cancel():
    f = Fleet(n=9)
    try:
        parent = f.start(TargetParameterName="InstanceId", Targets=[{"Key": "tag:Incident", "Values": ["IR-9"]}],
                         MaxConcurrency="3")
        f.svc.sleep(100)
        before = len(f.children(parent))
        f.ssm.stop_automation_execution(AutomationExecutionId=parent)
        cancelling = f.ssm.get_automation_execution(AutomationExecutionId=parent)["AutomationExecution"][
            "AutomationExecutionStatus"]
        f.svc.run()
        got = f.ssm.get_automation_execution(AutomationExecutionId=parent)["AutomationExecution"]
        kids = f.children(parent)
        running = [k for k in kids if k["AutomationExecutionStatus"] == "Cancelled"]
        check("cancel: the parent reads Cancelling until its children have ended", cancelling == "Cancelling",
              cancelling)
        check("cancel: stopping the parent cancels its running children and starts no more",
              got["AutomationExecutionStatus"] == "Cancelled" and len(kids) == before and running
              and all(k["AutomationExecutionStatus"] in ("Success", "Cancelled") for k in kids)
              and sum(s["StepStatus"] == "Pending" for s in got["StepExecutions"]) == 9 - before,
              (got["AutomationExecutionStatus"], before, [k["AutomationExecutionStatus"] for k in kids]))
    finally:
        f.stop()


def test_validation():
    f = Fleet(n=2)
    try:
        tags = [{"Key": "tag:Incident", "Values": ["IR-9"]}]
        cases = [
            ("Targets without TargetParameterName", dict(Targets=tags), "InvalidAutomationExecutionParametersException"),
            ("TargetParameterName not a runbook parameter", dict(Targets=tags, TargetParameterName="Nope"),
             "InvalidAutomationExecutionParametersException"),
            ("the target parameter also in Parameters", dict(Targets=tags, TargetParameterName="InstanceId",
                                                              Parameters={"InstanceId": [f.ids[0]]}),
             "InvalidAutomationExecutionParametersException"),
            ("a tag and ParameterValues together", dict(TargetParameterName="InstanceId", Targets=tags + [
                {"Key": "ParameterValues", "Values": f.ids}]), "InvalidAutomationExecutionParametersException"),
            ("51 ParameterValues", dict(TargetParameterName="InstanceId", Targets=[
                {"Key": "ParameterValues", "Values": ["i-%017x" % i for i in range(51)]}]), "ValidationException"),
            ("MaxConcurrency 0", dict(Targets=tags, TargetParameterName="InstanceId", MaxConcurrency="0"),
             "ValidationException"),
            ("MaxErrors 101%", dict(Targets=tags, TargetParameterName="InstanceId", MaxErrors="101%"),
             "ValidationException"),
            ("MaxErrors without Targets", dict(Parameters={"InstanceId": [f.ids[0]]}, MaxErrors="1"),
             "InvalidAutomationExecutionParametersException"),
            ("Targets and TargetMaps", dict(Targets=tags, TargetParameterName="InstanceId",
                                            TargetMaps=[{"InstanceId": [f.ids[0]]}]),
             "InvalidAutomationExecutionParametersException"),
            ("a ResourceGroup (moto has no ListGroupResources)", dict(TargetParameterName="InstanceId", Targets=[
                {"Key": "ResourceGroup", "Values": ["ir"]}]), "EngineError"),
            ("a runbook the account does not have", dict(DocumentName="Nope", Parameters={}), "InvalidDocument"),
        ]
        for name, kw, want in cases:
            try:
                got = refused(lambda kw=kw: f.start(**kw))
            except Exception as e:  # noqa: BLE001  (botocore's own validation)
                got = type(e).__name__
            check("validation: %s is refused (%s)" % (name, want), got == want, got)
        check("validation: nothing was started by a refused request", not f.svc.executions, len(f.svc.executions))
    finally:
        f.stop()


def test_automation_quota():
    f = Fleet(n=5, concurrent=3, queue=2)
    try:
        ids = [f.start(Parameters={"InstanceId": [i]}) for i in f.ids[:5]]
        code = refused(lambda: f.start(Parameters={"InstanceId": [f.ids[0]]}))
        f.svc.sleep(2)
        states = [f.ssm.get_automation_execution(AutomationExecutionId=i)["AutomationExecution"]
                  ["AutomationExecutionStatus"] for i in ids]
        check("quota: beyond the concurrent automations the rest wait Pending, not failed",
              states.count("InProgress") == 3 and states.count("Pending") == 2, states)
        check("quota: beyond the queue StartAutomationExecution fails (AutomationExecutionLimitExceededException)",
              code == "AutomationExecutionLimitExceededException", code)
        f.svc.run()
        states = [f.svc.executions[i].status for i in ids]
        check("quota: the queued ones run when room frees up", states == ["Success"] * 5, states)
    finally:
        f.stop()


def test_copy_quota_and_rates():
    f = Fleet(security=True)
    try:
        world_mod.QUOTAS.copy_seconds = 600
        sec = f.w.security.client("ec2")
        vol = sec.create_volume(AvailabilityZone=f.w.region + "a", Size=1)["VolumeId"]
        snap = sec.create_snapshot(VolumeId=vol)["SnapshotId"]
        copies, code = [], None
        for i in range(21):
            try:
                copies.append(sec.copy_snapshot(SourceSnapshotId=snap, SourceRegion=f.w.region)["SnapshotId"])
            except ClientError as e:
                code = e.response["Error"]["Code"]
            f.svc.sleep(1)  # below the CopySnapshot request bucket
        states = {s["SnapshotId"]: s["State"] for s in sec.describe_snapshots(SnapshotIds=copies)["Snapshots"]}
        check("copy: 20 copies pending in the destination Region; the 21st fails with ResourceLimitExceeded",
              len(copies) == 20 and code == "ResourceLimitExceeded" and set(states.values()) == {"pending"},
              (len(copies), code, set(states.values())))
        f.svc.sleep(700)
        again = refused(lambda: sec.copy_snapshot(SourceSnapshotId=snap, SourceRegion=f.w.region))
        states = {s["State"] for s in sec.describe_snapshots(SnapshotIds=copies)["Snapshots"]}
        check("copy: once the copies complete, a copy is accepted again", again is None and states == {"completed"},
              (again, states))
        ec2 = f.w.session.client("ec2")
        az = f.w.region + "a"
        v1, v2 = (ec2.create_volume(AvailabilityZone=az, Size=1)["VolumeId"] for _ in range(2))
        ec2.attach_volume(VolumeId=v1, InstanceId=f.w.instance_id, Device="/dev/sdf")
        same_device = refused(lambda: ec2.attach_volume(VolumeId=v2, InstanceId=f.w.instance_id, Device="/dev/sdf"))
        again = refused(lambda: ec2.attach_volume(VolumeId=v1, InstanceId=f.w.instance_id, Device="/dev/sdg"))
        check("devices: a device name in use is refused (InvalidParameterValue), an attached volume too "
              "(VolumeInUse)", (same_device, again) == ("InvalidParameterValue", "VolumeInUse"), (same_device, again))
        f.svc.sleep(60)  # the CreateVolume bucket full again
        codes = [refused(lambda: ec2.create_volume(AvailabilityZone=f.w.region + "a", Size=1)) for _ in range(22)]
        check("rate: CreateVolume beyond its bucket fails with RequestLimitExceeded (20 at once, then refused)",
              codes[:20] == [None] * 20 and codes[20:] == ["RequestLimitExceeded"] * 2, codes)
        f.svc.sleep(1)
        check("rate: the bucket refills (2 per second)",
              refused(lambda: ec2.create_volume(AvailabilityZone=f.w.region + "a", Size=1)) is None)
    finally:
        world_mod.QUOTAS.copy_seconds = 900.0
        f.stop()


def test_real_runbook_central():
    """The real runbook, started for three instances through the member's
    starter role (IAM evaluated): ParameterValues work with the templates'
    permissions; tag targets need tag:GetResources, which the starter role
    lacks (reported to deploy/cloudformation's owner)."""
    f = Fleet(n=3, security=True)
    try:
        docs = run_mod.rendered_documents()
        f.w.create_documents(docs)
        starter = accounts.assume(f.w.security, "arn:aws:iam::%s:role/%s" % (world_mod.ACCOUNT,
                                                                           accounts.STARTER_ROLE), "fleet")
        ssm = starter.client("ssm")
        params = {k: [v] for k, v in f.w.parameters(SecurityAccountId=accounts.SECURITY).items() if k != "InstanceId"}
        # IAM (service.py, UNVERIFIED, stricter): tag targets are resolved
        # as the caller, who needs tag:GetResources. Whether the starter
        # role has it is the templates' business (deploy/cloudformation);
        # the start must follow what they grant, either way.
        import iam
        granted = bool(iam.authorize(iam._client_principal(ssm), "tag:GetResources", "*"))
        started = []
        code = refused(lambda: started.append(ssm.start_automation_execution(
            DocumentName=run_mod.RUNBOOK, TargetParameterName="InstanceId", Parameters=params,
            Targets=[{"Key": "tag:Incident", "Values": ["IR-9"]}], MaxConcurrency="3")["AutomationExecutionId"]))
        check("iam: tag targets are resolved as the caller: the start %s as the templates %s tag:GetResources"
              % ("succeeds" if granted else "is refused", "grant" if granted else "do not grant"),
              code is None if granted else code in ("AccessDenied", "AccessDeniedException"), (granted, code))
        for eid in started:  # stopped before it starts a child: the instances are captured below
            ssm.stop_automation_execution(AutomationExecutionId=eid)
            f.svc.run()
        parent = ssm.start_automation_execution(
            DocumentName=run_mod.RUNBOOK, TargetParameterName="InstanceId", Parameters=params,
            Targets=[{"Key": "ParameterValues", "Values": f.ids}], MaxConcurrency="2", MaxErrors="0")[
            "AutomationExecutionId"]
        f.svc.run()
        got = ssm.get_automation_execution(AutomationExecutionId=parent)["AutomationExecution"]
        kids = ssm.describe_automation_executions(Filters=[{"Key": "ParentExecutionId", "Values": [parent]}])[
            "AutomationExecutionMetadataList"]
        copies = {s["SnapshotId"] for s in f.w.security_snapshots()}
        check("central: three instances through the starter role, each child Success with its copy in the "
              "security account", got["AutomationExecutionStatus"] == "Success" and len(kids) == 3
              and all(k["Outputs"].get("Custody.SecuritySnapshotId", [""])[0] in copies for k in kids),
              [(k["AutomationExecutionStatus"], f.svc.executions[k["AutomationExecutionId"]].failure[:200])
               for k in kids] or got.get("FailureMessage"))
    finally:
        f.stop()


def test_stop_mid_command():
    """StopAutomationExecution while the capture command runs: SSM cancels
    the command (the scripted instance is SIGKILLed mid-capture), the step
    ends Cancelled and the runbook's onCancel path hands the partial image
    over; a stop during a wait lands in the wait (test_cancel)."""
    import backend as backend_mod
    f = Fleet(security=True)
    try:
        docs = run_mod.rendered_documents()
        f.w.create_documents(docs)
        instance = backend_mod.ScriptedBackend({"Forensics-CaptureMemory": backend_mod.Outcome(duration=3600)})
        f.svc.backend = instance
        params = {k: [v] for k, v in f.w.parameters(SecurityAccountId=accounts.SECURITY).items()}
        eid = f.ssm.start_automation_execution(DocumentName=run_mod.RUNBOOK, Parameters=params)[
            "AutomationExecutionId"]
        ex = f.svc.executions[eid].ex
        while not any(r["name"] == "Capture" for r in ex.steps) and f.svc.scheduler.time < 7200:
            f.svc.sleep(10)
        f.svc.sleep(100)
        at = f.svc.scheduler.time
        f.ssm.stop_automation_execution(AutomationExecutionId=eid)
        f.svc.run()
        capture = next((r for r in ex.steps if r["name"] == "Capture"), {})
        landed = capture.get("end", 1e9) - (at - ex.clock.origin)
        check("stop: a stop during the capture command cancels it when it lands (not after its hour); the "
              "killed capture's partial image is what the onCancel path handles",
              ex.status == "Cancelled" and capture.get("status") == "Cancelled" and landed < 10
              and set(instance.evidence.values()) & {"killed", "partial"},
              (ex.status, capture.get("status"), landed, instance.evidence))
    finally:
        f.stop()


SLOW_SCRIPT = {
    "schemaVersion": "0.3",
    "parameters": {"InstanceId": {"type": "String"}},
    "mainSteps": [{"name": "Slow", "action": "aws:executeScript", "inputs": {
        "Runtime": "python3.11", "Handler": "handler", "InputPayload": {"Id": "{{ InstanceId }}"},
        "Script": "import time\nimport boto3\n\ndef handler(events, context):\n    time.sleep(700)\n"
                  "    boto3.client('ssm').put_parameter(Name='/late/' + events['Id'], Value='x', Type='String')\n"}}],
}


def test_script_600():
    """SCRIPT: an aws:executeScript step runs at most 600 s: one that
    sleeps 700 s (in virtual time) is stopped at 600 s, mid-sleep, and what
    it would have done after never happens."""
    import time
    f = Fleet(n=1)
    real = time.sleep
    try:
        f.ssm.create_document(Name="Fleet-Slow", Content=json.dumps(SLOW_SCRIPT), DocumentType="Automation",
                              DocumentFormat="JSON")
        time.sleep = lambda s: f.svc.scheduler.sleep(s) if f.svc.scheduler.current is not None else real(s)
        eid = f.start(DocumentName="Fleet-Slow", Parameters={"InstanceId": [f.ids[0]]})
        f.svc.run()
        rec = f.svc.executions[eid]
        step = rec.ex.steps[0]
        late = refused(lambda: f.ssm.get_parameter(Name="/late/" + f.ids[0]))
        check("script: a script past 600 s is stopped then (TimedOut), its later calls never made",
              rec.status == "TimedOut" and step["status"] == "TimedOut" and 599 <= step["end"] - step["start"] <= 601
              and late == "ParameterNotFound", (rec.status, step, late))
    finally:
        time.sleep = real
        f.stop()


def run_all():
    for t in (test_scheduler, test_rate_control, test_determinism, test_error_budget, test_cancel, test_validation,
              test_automation_quota, test_copy_quota_and_rates, test_real_runbook_central, test_stop_mid_command,
              test_script_600):
        try:
            t()
        except Exception as e:  # noqa: BLE001  (a crash is a failure, reported)
            import traceback
            traceback.print_exc()
            check("%s ran to its end" % t.__name__, False, "%s: %s" % (type(e).__name__, e))
    passed = sum(1 for _, ok in RESULTS if ok)
    return passed, len(RESULTS) - passed


if __name__ == "__main__":
    p, fl = run_all()
    print("%d passed, %d failed" % (p, fl))
    sys.exit(1 if fl else 0)
