"""Offline validation of everything under deploy/ (run by deploy/check.sh).

    python3 deploy/tools/check.py [--cfn-lint PATH] [--volume-ssm DIR]

Checks, each reported as PASS or FAIL with the reason, closing with
"N passed, M failed" (exit 1 on any failure):
  - rendering is deterministic and every rendered script equals its source;
  - SSM documents: schema, size, every parameter constrained, the patterns
    refuse shell metacharacters and accept good values, step inputs present;
  - the runbook: steps and documents it names exist, every failure path before
    the capture reaches clean-up, no path after the capture deletes the
    volume before the evidence snapshot is complete; plan.py's arithmetic;
  - shellcheck on every script, including those extracted from the documents;
  - stage-0 against fixture sysfs trees under dash and busybox ash;
  - capture.sh's parameter checks and time-budget watchdog, unmount.sh;
  - publish.sh --dry-run output, and its refusals;
  - cfn-lint on both CloudFormation templates.
"""

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import fvdeploy
import ssm_script

sys.path.insert(0, fvdeploy.SCRIPTS)
import plan  # noqa: E402  (deploy/scripts/plan.py, the runbook's executeScript)

DEPLOY = fvdeploy.DEPLOY
SHELLS = {"dash": ["dash"], "busybox-ash": ["busybox", "sh"]}
MAX_DOCUMENT_BYTES = fvdeploy.SSM_DOCUMENT_LIMIT
RESULTS = []


class CheckFailed(Exception):
    pass


def check(name):
    def wrap(fn):
        def run(*a, **k):
            try:
                fn(*a, **k)
            except CheckFailed as e:
                RESULTS.append((name, str(e)))
                print("FAIL %s: %s" % (name, e))
                return
            except Exception:  # a crash in a check is a failure, with its trace
                RESULTS.append((name, "crashed"))
                print("FAIL %s: crashed\n%s" % (name, traceback.format_exc()))
                return
            RESULTS.append((name, None))
            print("PASS %s" % name)
        return run
    return wrap


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def rendered():
    return fvdeploy.render_all()


def documents():
    return {name: json.loads(rendered()["ssm/%s.json" % name][0]) for name in fvdeploy.DOCUMENTS_ALL}


# ---- rendering ---------------------------------------------------------------

@check("render: two renders are byte-identical, and render.sh writes exactly render_all()")
def check_deterministic():
    a, b = rendered(), rendered()
    expect(a == b, "two renders differ")
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([os.path.join(DEPLOY, "render.sh"), out], capture_output=True, text=True)
        expect(r.returncode == 0, "render.sh failed: %s" % r.stderr)
        for rel, (text, mode) in a.items():
            path = os.path.join(out, rel)
            with open(path, encoding="utf-8") as f:
                expect(f.read() == text, "%s differs from render_all()" % rel)
            expect(os.stat(path).st_mode & 0o777 == mode, "%s has mode %o" % (rel, os.stat(path).st_mode & 0o777))


@check("render: every runCommand is its source script plus the parameter prologue, and nothing else")
def check_matches_source():
    for name in fvdeploy.COMMAND_DOCUMENTS:
        doc = documents()[name]
        template = fvdeploy.load_json(os.path.join(fvdeploy.DOCUMENTS, name + ".json"))
        for step, tstep in zip(doc["mainSteps"], template["mainSteps"]):
            source_name = tstep["inputs"]["runCommand"]["fv:script"]
            lines = step["inputs"]["runCommand"]
            source = fvdeploy.read_text(os.path.join(fvdeploy.SCRIPTS, source_name))
            expect(fvdeploy.source_of_lines(lines) == source, "%s does not carry %s unchanged" % (name, source_name))
            params = set(re.findall(r"\{\{ ([A-Za-z0-9]+) \}\}", "\n".join(lines)))
            expect(params == set(doc["parameters"]),
                   "%s: script uses %s, document declares %s" % (name, sorted(params), sorted(doc["parameters"])))
    for name in fvdeploy.AUTOMATION_DOCUMENTS:
        doc = documents()[name]
        template = fvdeploy.load_json(os.path.join(fvdeploy.DOCUMENTS, name + ".json"))
        for step, tstep in zip(doc["mainSteps"], template["mainSteps"]):
            if step["action"] != "aws:executeScript":
                continue
            source = fvdeploy.read_text(os.path.join(fvdeploy.SCRIPTS, tstep["inputs"]["Script"]["fv:python"]))
            script = step["inputs"]["Script"]
            # The inlined handler is its source minus comments and docstrings:
            # the same syntax tree, so the same program (render.py strips them
            # for size; this re-checks it independently of the render).
            expect(ast.dump(ast.parse(script)) == ast.dump(fvdeploy.without_docstrings(ast.parse(source))),
                   "%s %s: the script is not %s's program" % (name, step["name"], tstep["inputs"]["Script"]))
            expect(not any(ln.lstrip().startswith("#") for ln in script.splitlines()),
                   "%s %s: comment lines were not stripped" % (name, step["name"]))


@check("render: every SSM document stays under SSM's 64 KB document limit, with a 4 KB margin")
def check_document_size():
    # CreateDocument Content: "must not exceed 64KB", including the values
    # of the runtime parameters (fvdeploy.SSM_DOCUMENT_LIMIT). Measured on the
    # file as written to ssm/, which is what create-document --content
    # file://... sends; CloudFormation sends the same JSON, compacted.
    limit = fvdeploy.SSM_DOCUMENT_LIMIT - fvdeploy.SIZE_MARGIN
    for rel, (text, _) in rendered().items():
        if rel.startswith("ssm/") and rel.endswith(".json"):
            size = len(text.encode("utf-8"))
            expect(size <= limit, "%s is %d bytes, over %d (64 KB less the %d-byte margin)"
                   % (rel, size, limit, fvdeploy.SIZE_MARGIN))
            if "CaptureInstanceMemory" in rel:
                print("    %s: %d bytes of %d allowed" % (rel, size, limit))


@check("render: the volume's ssm/ folder equals a fresh render")
def check_volume_copy(volume_ssm):
    expect(os.path.isdir(volume_ssm), "%s is not a directory" % volume_ssm)
    # build.sh pins the volume's documents to its SHA256SUMS (L11).
    with open(os.path.join(os.path.dirname(os.path.abspath(volume_ssm)), "SHA256SUMS"), "rb") as f:
        pin = hashlib.sha256(f.read()).hexdigest()
    fvdeploy.set_toolkit_sums(pin)
    try:
        want = {rel[len("ssm/"):]: text for rel, (text, _) in fvdeploy.render_all().items() if rel.startswith("ssm/")}
    finally:
        fvdeploy.set_toolkit_sums("")
    expect(all(("FV_TOOLKIT_SUMS_SHA256='%s'" % pin) in want[d + ".json"]
               for d in ("Forensics-MountVolume", "Forensics-CaptureMemory")), "the documents carry no pin")
    have = sorted(os.listdir(volume_ssm))
    expect(have == sorted(want), "%s holds %s, expected %s" % (volume_ssm, have, sorted(want)))
    for entry, text in want.items():
        with open(os.path.join(volume_ssm, entry), encoding="utf-8") as f:
            expect(f.read() == text, "%s/%s is stale: rebuild" % (volume_ssm, entry))


# ---- SSM documents -------------------------------------------------------------

# Values are assigned inside single quotes: these could leave the quotes, or be
# read by SSM as another parameter ({{ }}). Forbidden in every parameter.
QUOTE_BREAKERS = ["'", '"', "`", "$", "\\", "\n", "\r", "{", "}"]
# Harmless inside quotes, but no parameter but the free-text Note needs them.
SHELL_META = QUOTE_BREAKERS + [";", "|", "&", "<", ">", "*", "?", "[", "!", "~", "#", "(", ")"]


@check("documents: schema versions, size under 64 KB, descriptions, every parameter constrained")
def check_document_shape():
    for name, doc in documents().items():
        size = len(rendered()["ssm/%s.json" % name][0].encode())
        expect(size < MAX_DOCUMENT_BYTES, "%s is %d bytes" % (name, size))
        want = "2.2" if name in fvdeploy.COMMAND_DOCUMENTS else "0.3"
        expect(doc.get("schemaVersion") == want, "%s: schemaVersion %r" % (name, doc.get("schemaVersion")))
        expect(doc.get("description"), "%s has no description" % name)
        for pname, spec in doc["parameters"].items():
            expect(spec.get("type") == "String", "%s.%s is not a String" % (name, pname))
            expect(spec.get("description"), "%s.%s has no description" % (name, pname))
            expect("allowedPattern" in spec or "allowedValues" in spec, "%s.%s is unconstrained" % (name, pname))
            pattern = spec.get("allowedPattern")
            if pattern:
                expect(pattern.startswith("^") and pattern.endswith("$"), "%s.%s pattern is not anchored" % (name, pname))
            bases = [v for v in GOOD.get(pname, []) + [spec.get("default", "")] if v]
            expect(bases, "%s.%s: no good value known to probe it with (add one to GOOD)" % (name, pname))
            for meta in (QUOTE_BREAKERS if pname == "Note" else SHELL_META):
                for v in bases:
                    half = len(v) // 2
                    for probe in (v + meta, meta + v, v[:half] + meta + v[half:], meta):
                        expect(not ssm_ok(spec, probe), "%s.%s accepts %r" % (name, pname, probe))
            if "default" in spec:
                expect(ssm_ok(spec, spec["default"]), "%s.%s default %r is refused by its own pattern"
                       % (name, pname, spec["default"]))


def ssm_ok(spec, value):
    if "allowedValues" in spec and value not in spec["allowedValues"]:
        return False
    if "allowedPattern" in spec and not re.fullmatch(spec["allowedPattern"][1:-1], value):
        return False
    return True


GOOD = {
    "VolumeId": ["vol-0123456789abcdef0", "vol-1a2b3c4d"],
    "RequestedDevice": ["", "sdf", "/dev/sdp", "xvdf"],
    "ExpectedSizeGiB": ["", "1", "16384"],
    "MountPoint": ["", "/run/fv", "/run/forensics-volume/vol-0123456789abcdef0"],
    "WaitSeconds": ["0", "120", "3600"],
    "CaseId": ["IR-2026-042", "case_7.b"],
    "Examiner": ["A. Responder", "soc-team@example.org"],
    "Note": ["", "host beaconing to 203.0.113.7; see ticket #42 (P1)"],
    "Source": ["auto", "kcore", "lime-module", "lime-tcp:127.0.0.1:4444"],
    "ExecutionTimeout": ["5", "3600", "172800"],
    "InstanceId": ["i-0123456789abcdef0", "i-1a2b3c4d"],
    "SnapshotId": ["", "snap-0123456789abcdef0"],
    "Threads": ["", "1", "8", "256"],
    "CompressionLevel": ["", "1", "19"],
    "UseImds": ["true", "false"],
    "SnapshotParameter": ["/forensics-volume/snapshot-id",
                          "arn:aws:ssm:eu-west-1:111122223333:parameter/forensics-volume/snapshot-id"],
    "KmsKeyId": ["arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
                 "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/12345678-1234-1234-1234-123456789012"],
    "SecurityAccountId": ["", "111122223333"],
    "OutputS3BucketName": ["forensics-output-111122223333-eu-west-1"],
    "CustodyS3BucketName": ["", "forensics-custody-111122223333"],
    "CustodyRoleName": ["Forensics-CustodyIntake"],
    "CustodyRetentionDays": ["1", "3650", "36500"],
    "EvidenceLockDays": ["0", "1", "365", "3650", "29999", "36499", "36500"],
    "IsolationSecurityGroupId": ["", "sg-0123456789abcdef0", "sg-01234567"],
    "AutomationAssumeRole": ["arn:aws:iam::444455556666:role/Forensics-AutomationExecutionRole"],
    "VolumeIops": ["3000", "80000"],
    "VolumeThroughput": ["125", "2000"],
    "VolumeSizePercentOfRam": ["100", "400"],
    "MinCaptureRateMiBps": ["1", "40", "9999"],
}
BAD = {
    "VolumeId": ["vol-0123456789ABCDEF0", "vol-123", "vol-0123456789abcdef0\n", "vol-0123456789abcdef0 x"],
    "RequestedDevice": ["sda1", "/dev/nvme1n1", "sd", "../sdf"],
    "MountPoint": ["/run/../etc", "/run/.x", "/tmp/x", "/run", "/run/a//b", "/run/a/"],
    "WaitSeconds": ["3601", "-1", "01x"],
    "CaseId": ["-rf", ".hidden", "a b"],
    "Source": ["lime:/etc/shadow", "lime-tcp:10.0.0.1:4444", "auto "],
    "EvidenceLockDays": ["36501", "40000", "00", "-1", "1 ", "99999"],
    "ExecutionTimeout": ["0", "4", "172801", "999999", "03600"],
    "Threads": ["0", "257"],
    "CompressionLevel": ["0", "20"],
}


@check("documents: patterns accept good values and refuse bad ones; ExecutionTimeout is exactly 5..172800")
def check_patterns():
    for name, doc in documents().items():
        for pname, spec in doc["parameters"].items():
            for v in GOOD.get(pname, []):
                expect(ssm_ok(spec, v), "%s.%s refuses good value %r" % (name, pname, v))
            for v in BAD.get(pname, []):
                expect(not ssm_ok(spec, v), "%s.%s accepts bad value %r" % (name, pname, v))
    spec = documents()["Forensics-CaptureMemory"]["parameters"]["ExecutionTimeout"]
    accepted = [n for n in range(0, 200001) if ssm_ok(spec, str(n))]
    expect(accepted == list(range(5, 172801)), "ExecutionTimeout accepts %d..%d (%d values)"
           % (accepted[0], accepted[-1], len(accepted)))
    spec = documents()["Forensics-MountVolume"]["parameters"]["WaitSeconds"]
    accepted = [n for n in range(0, 10000) if ssm_ok(spec, str(n))]
    expect(accepted == list(range(0, 3601)), "WaitSeconds accepts the wrong range")


@check("documents: Command steps are Linux runShellScript with runCommand and a valid timeout")
def check_command_steps():
    for name in fvdeploy.COMMAND_DOCUMENTS:
        doc = documents()[name]
        expect(len(doc["mainSteps"]) == 1, "%s has %d steps" % (name, len(doc["mainSteps"])))
        step = doc["mainSteps"][0]
        expect(step["action"] == "aws:runShellScript", "%s: action %s" % (name, step["action"]))
        expect(step.get("precondition") == {"StringEquals": ["platformType", "Linux"]}, "%s: no Linux precondition" % name)
        inputs = step["inputs"]
        expect(isinstance(inputs.get("runCommand"), list) and inputs["runCommand"], "%s: no runCommand" % name)
        timeout = inputs.get("timeoutSeconds")
        if timeout == "{{ ExecutionTimeout }}":
            expect("ExecutionTimeout" in doc["parameters"], "%s: timeout parameter missing" % name)
        else:
            expect(timeout.isdigit() and 5 <= int(timeout) <= 172800, "%s: timeoutSeconds %r" % (name, timeout))
        unknown = set(ssm_script.PLACEHOLDER.findall(json.dumps(doc))) - set(doc["parameters"])
        expect(not unknown, "%s uses undeclared parameters %s" % (name, unknown))


# ---- the runbook ------------------------------------------------------------------

REQUIRED_INPUTS = {
    "aws:executeAwsApi": ["Service", "Api"],
    "aws:waitForAwsResourceProperty": ["Service", "Api", "PropertySelector", "DesiredValues"],
    "aws:assertAwsResourceProperty": ["Service", "Api", "PropertySelector", "DesiredValues"],
    "aws:executeScript": ["Runtime", "Handler", "Script"],
    "aws:runCommand": ["DocumentName", "InstanceIds"],
    "aws:branch": ["Choices"],
}
DELETE_APIS = {"DeleteVolume"}


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
    steps = {s["name"]: s for s in doc["mainSteps"]}
    expect(len(steps) == len(doc["mainSteps"]), "duplicate step names")
    outputs = {(s["name"], o["Name"]) for s in doc["mainSteps"] for o in s.get("outputs", [])}
    builtin = {"CommandId", "Status", "ResponseCode", "Output"}
    for s in doc["mainSteps"]:
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
    for name in steps:
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
    expect(reachable == set(steps), "unreachable steps: %s" % sorted(set(steps) - reachable))


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
            if steps[n].get("isCritical") is False:
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
        expect(steps[n].get("isEnd") is True or ok[n] in (["RestoreInstance"], ["Custody"]),
               "%s neither ends the execution nor goes to Custody or RestoreInstance" % n)
    # Issue 13: every path that took an evidence snapshot ends in Custody
    # (hand-over to the security account), which then restores the instance.
    expect(steps["Custody"]["action"] == "aws:executeScript" and ok["Custody"] == ["AfterCustody"]
           and fail["Custody"] == ["RestoreInstance"] and ok["AfterCustody"] == ["DisksPending", "RestoreInstance"]
           and fail["AfterCustody"] == [None, "RestoreInstance"],
           "Custody must go to RestoreInstance, whatever happens (a later round for the disks excepted)")
    for n in ("AssertSnapshotCompleted", "AssertSnapshotInUse", "DeleteVolume", "DetachVolume", "WaitDetached"):
        expect("Custody" in ok[n] + fail[n] or n == "AssertSnapshotCompleted",
               "%s (evidence snapshot taken) does not lead to Custody" % n)
    expect(ok["AssertSnapshotInUse"] == ["Custody"], "the snapshot of a volume whose unmount failed skips custody")
    # Disks Custody left pending: only after RestoreInstance, DisksPending
    # (the last step: without a match the run ends) waits for them in
    # WaitDisks, whatever its end, and goes back to Custody for them.
    expect(ok["RestoreInstance"] == ["DisksPending"] and fail["RestoreInstance"] == [None]
           and ok["DisksPending"] == ["WaitDisks", None] and fail["DisksPending"] == [None]
           and ok["WaitDisks"] == ["Custody"] and fail["WaitDisks"] == ["Custody", None]
           and steps["WaitDisks"].get("isCritical") is False,
           "RestoreInstance must end the execution, or wait for pending disks and hand them over")


@check("runbook: onCancel from CreateVolume on, delivery timeouts, forced clean-up detach, fail-fast waits")
def check_runbook_hardening():
    doc = documents()["Forensics-CaptureInstanceMemory"]
    steps = doc["mainSteps"]
    names = [s["name"] for s in steps]
    by_name = {s["name"]: s for s in steps}
    # W4: every step that can run while the volume exists has somewhere to go on cancel
    # (the cancellation workflow's own steps and the final restore excepted).
    for s in steps[names.index("CreateVolume"):]:
        if s["name"].startswith("Cancel") or s["name"] in ("RestoreInstance", "WaitDisks", "DisksPending"):
            # The disks' wait runs after the volume is gone and the instance
            # restored: a cancel there ends the run, the memory evidence in custody.
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
        arch = os.uname().machine
        with tempfile.TemporaryDirectory() as tmp:
            loops = []
            try:
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
                    if mountinfo_line(mp):
                        subprocess.run(["umount", mp], check=False)
                    if os.path.isdir(mp):
                        os.rmdir(mp)
                # The toolkit pin (L11): a document built for this SHA256SUMS
                # runs the helper; one built for another toolkit refuses it
                # and leaves nothing mounted.
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
                        if mountinfo_line(mp):
                            subprocess.run(["umount", mp], check=False)
                        if os.path.isdir(mp):
                            os.rmdir(mp)
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
            finally:
                for loop in loops:
                    subprocess.run(["losetup", "-d", loop], check=False)
    return run


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

    return [pin]


def make_capture_checks(shell):
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
                    v.mp + "/captures", "--note", "beacon (P1)", "--threads", "2", "--no-imds"]
            expect(args == want, "capture got %r, expected %r" % (args, want))
            expect("may end partial" in out, "no warning for a timeout too short for 15 GiB of RAM:\n%s" % out)
        finally:
            v.close()

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

    return [watchdog, refusals, unmount, stop]


# ---- publish.sh ----------------------------------------------------------------------------

@check("publish.sh --dry-run: prints every call, in order, and touches nothing")
def check_publish_dry_run():
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "forensics-volume.img")
        with open(img, "wb") as f:
            f.truncate(4 * 1024 * 1024)
        key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        env = {"PATH": "/usr/bin:/bin"}  # neither aws nor coldsnap on PATH: dry runs need neither
        r = subprocess.run([os.path.join(DEPLOY, "publish.sh"), "--dry-run", "--image", img, "--region", "eu-west-1",
                            "--kms-key-id", key, "--copy-to", "us-east-1,ap-southeast-2",
                            "--share-with", "444455556666,777788889999", "--description", "fv test"],
                           capture_output=True, text=True, env=env)
        expect(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
        calls = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
        want_prefixes = [
            "+ coldsnap --region eu-west-1 upload --kms-key-id " + key + " --description 'fv test' --no-progress --wait " + img,
            "+ aws ec2 create-tags --region eu-west-1 --resources SNAPSHOT-eu-west-1",
            "+ aws ec2 modify-snapshot-attribute --region eu-west-1 --snapshot-id SNAPSHOT-eu-west-1 --attribute createVolumePermission --operation-type add --user-ids 444455556666 777788889999",
            "+ aws ssm put-parameter --region eu-west-1 --name /forensics-volume/snapshot-id --type String --overwrite --value SNAPSHOT-eu-west-1",
            "+ aws ec2 copy-snapshot --region us-east-1 --source-region eu-west-1 --source-snapshot-id SNAPSHOT-eu-west-1 --encrypted --kms-key-id arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
            "+ aws ec2 wait snapshot-completed --region us-east-1 --snapshot-ids SNAPSHOT-us-east-1",
        ]
        for w in want_prefixes:
            expect(any(c.startswith(w) for c in calls), "missing call %r in:\n%s" % (w, "\n".join(calls)))
        regions = [c for c in calls if c.startswith("+ aws ssm put-parameter")]
        expect(len(regions) == 3, "put-parameter in %d regions, expected 3" % len(regions))
        shares = [c for c in calls if "modify-snapshot-attribute" in c]
        expect(len(shares) == 3, "shared in %d regions, expected 3" % len(shares))
        order = [calls.index(next(c for c in calls if c.startswith(w))) for w in want_prefixes[:4]]
        expect(order == sorted(order), "calls out of order: upload, tag, share, then the parameter")


@check("publish.sh: clear errors for a missing tool, a bad key, a bad account, a missing image")
def check_publish_errors():
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "img")
        with open(img, "wb") as f:
            f.write(b"\0" * 4096)
        empty = os.path.join(tmp, "empty.img")
        open(empty, "wb").close()
        key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        base = [os.path.join(DEPLOY, "publish.sh"), "--image", img, "--region", "eu-west-1", "--kms-key-id", key]
        env = {"PATH": tmp + ":/usr/bin:/bin"}
        cases = [
            (base, "coldsnap is not installed"),
            (base[:2] + [empty] + base[3:], "is empty"),
            (base[:-1] + ["alias/foo"], "--kms-key-id"),
            (base + ["--share-with", "12345"], "--share-with"),
            ([os.path.join(DEPLOY, "publish.sh"), "--image", img + ".missing", "--region", "eu-west-1",
              "--kms-key-id", key], "no image"),
            (base + ["--copy-to", "eu-west-1;reboot"], "--copy-to"),
        ]
        for argv, needle in cases:
            r = subprocess.run(argv, capture_output=True, text=True, env=env)
            expect(r.returncode != 0 and needle in r.stderr, "%r: exit %d, stderr %r" % (argv[5:], r.returncode, r.stderr))
        fake_coldsnap = os.path.join(tmp, "coldsnap")
        with open(fake_coldsnap, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(fake_coldsnap, 0o755)
        r = subprocess.run(base, capture_output=True, text=True, env=env)
        if shutil.which("aws", path=env["PATH"]) is None:
            expect(r.returncode != 0 and "aws CLI is not installed" in r.stderr, "no aws: %r" % r.stderr)


@check("publish.sh: --help on stdout, exit 0; --share-with-organization shares in batches of 500 (B2)")
def check_publish_help_and_organization():
    publish = os.path.join(DEPLOY, "publish.sh")
    r = subprocess.run([publish, "--help"], capture_output=True, text=True)
    expect(r.returncode == 0 and "--share-with-organization" in r.stdout and not r.stderr,
           "--help: exit %d, stdout %r, stderr %r" % (r.returncode, r.stdout[:80], r.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "forensics-volume.img")
        with open(img, "wb") as f:
            f.truncate(4096)
        key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        # 1,203 accounts, the security account (the key's) among them, one also given by --share-with.
        org = ["%012d" % (400000000000 + i) for i in range(1202)] + ["111122223333"]
        env = {"PATH": "/usr/bin:/bin", "FV_PUBLISH_DRY_RUN_ACCOUNTS": " ".join(org)}
        r = subprocess.run([publish, "--dry-run", "--image", img, "--region", "eu-west-1", "--kms-key-id", key,
                            "--share-with", org[0], "--share-with-organization"],
                           capture_output=True, text=True, env=env)
        expect(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
        calls = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
        expect(any("organizations list-accounts" in c for c in calls), "ListAccounts not called:\n%s" % r.stdout)
        shares = [c.split("--user-ids ")[1].split() for c in calls if "modify-snapshot-attribute" in c]
        expect([len(b) for b in shares] == [500, 500, 202], "batches %s" % [len(b) for b in shares])
        flat = [a for b in shares for a in b]
        expect(sorted(flat) == sorted(org[:-1]), "not every member account exactly once")
        expect("111122223333" not in flat, "shared with the security account itself")


# ---- cfn-lint -------------------------------------------------------------------------------

@check("cfn-lint: both CloudFormation templates")
def check_cfn_lint(cfn_lint):
    expect(cfn_lint, "no cfn-lint given (deploy/check.sh installs it)")
    with tempfile.TemporaryDirectory() as out:
        files = []
        for rel, (text, _) in rendered().items():
            if rel.startswith("cloudformation/"):
                path = os.path.join(out, os.path.basename(rel))
                with open(path, "w") as f:
                    f.write(text)
                files.append(path)
        r = subprocess.run([cfn_lint, "--"] + files, capture_output=True, text=True)
        expect(r.returncode == 0, "cfn-lint exit %d:\n%s%s" % (r.returncode, r.stdout[-4000:], r.stderr[-2000:]))


# ---- least privilege (deploy review H2, H3; issue 13) ----------------------------------------

def _statements(policy):
    st = policy.get("Statement", [])
    return st if isinstance(st, list) else [st]


def _actions(st):
    a = st.get("Action", [])
    return a if isinstance(a, list) else [a]


def _inline(role):
    return [s for p in role["Properties"].get("Policies", []) for s in _statements(p["PolicyDocument"])]


@check("least privilege: execution, starter and intake roles, key policy and custody bucket (H2, H3, W2)")
def check_least_privilege():
    files = fvdeploy.render_all()
    member = json.loads(files["cloudformation/forensics-member.json"][0])["Resources"]
    security = json.loads(files["cloudformation/forensics-security.json"][0])["Resources"]

    role = member["ExecutionRole"]
    allows = [s for s in _inline(role) if s["Effect"] == "Allow"]
    on_snapshots = [s for s in allows if "ec2:CreateVolume" in _actions(s) and "snapshot/" in json.dumps(s["Resource"])]
    expect(on_snapshots, "no CreateVolume-from-snapshot statement")
    for s in on_snapshots:
        expect(s.get("Condition", {}).get("StringEquals", {}).get("ec2:Owner") == {"Ref": "SecurityAccountId"},
               "H2: CreateVolume from any snapshot: %s" % json.dumps(s))
    for s in allows:
        if set(_actions(s)) & {"ec2:AttachVolume", "ec2:DetachVolume"} and "volume/" in json.dumps(s["Resource"]):
            expect(s.get("Condition", {}).get("StringEquals", {}).get("aws:ResourceTag/forensics-volume:role")
                   == "forensics-volume", "H2: attach of untagged volumes: %s" % json.dumps(s))
    trust = _statements(role["Properties"]["AssumeRolePolicyDocument"])
    ssm_trust = [s for s in trust if s.get("Principal", {}).get("Service") == "ssm.amazonaws.com"]
    expect(ssm_trust and all("automation-execution/*" in json.dumps(s.get("Condition", {}).get("ArnLike", {})
                                                                   .get("aws:SourceArn")) for s in ssm_trust),
           "H2: the ssm.amazonaws.com trust does not name the automation execution ARN")
    for s in allows:
        expect(not any(a in ("ec2:*", "*", "iam:PassRole") for a in _actions(s)), "over-broad: %s" % json.dumps(s))

    snaps = [s for s in allows if "ec2:CreateSnapshots" in _actions(s)]
    on_new = [s for s in snaps if "::snapshot/" in json.dumps(s["Resource"])]
    expect(on_new and all(s.get("Condition", {}).get("StringEquals", {}).get("aws:RequestTag/forensics-volume:role")
                          == "evidence" for s in on_new) and all(
        "${AWS::AccountId}" in json.dumps(s["Resource"]) for s in snaps if s not in on_new),
        "CreateSnapshots of untagged snapshots or of other accounts' instances: %s" % json.dumps(snaps))
    tagging = [s for s in allows if "ec2:CreateTags" in _actions(s)]
    expect(any("CreateSnapshots" in s.get("Condition", {}).get("StringEquals", {}).get("ec2:CreateAction", [])
               for s in tagging), "the disk snapshots cannot be tagged on creation")

    starter = member["StarterRole"]
    st = _inline(starter)
    actions = sorted(a for s in st for a in _actions(s))
    expect("ssm:StartAutomationExecution" in actions, "starter cannot start")
    start = [s for s in st if "ssm:StartAutomationExecution" in _actions(s)]
    expect(all("automation-definition/Forensics-CaptureInstanceMemory:" in json.dumps(s["Resource"]) for s in start),
           "B1: starter may start other runbooks: %s" % json.dumps(start))
    passes = [s for s in st if "iam:PassRole" in _actions(s)]
    expect(passes and all(s["Resource"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]} and
                          s["Condition"]["StringEquals"]["iam:PassedToService"] == "ssm.amazonaws.com" for s in passes),
           "B1: starter may pass other roles: %s" % json.dumps(passes))
    strust = _statements(starter["Properties"]["AssumeRolePolicyDocument"])
    expect(all("aws:PrincipalArn" in s.get("Condition", {}).get("ArnLike", {}) for s in strust),
           "B1: starter trust does not name the security account's responder role")

    key = security["ForensicsKey"]["Properties"]["KeyPolicy"]
    org = [s for s in _statements(key) if s["Effect"] == "Allow" and s.get("Principal") == {"AWS": "*"}]
    expect(len(org) == 2, "expected the two organization statements, got %d" % len(org))
    for s in org:
        arns = json.dumps(s.get("Condition", {}).get("ArnLike", {}).get("aws:PrincipalArn"))
        expect("${MemberExecutionRoleName}" in arns and "${BreakGlassRoleName}" in arns,
               "H3: %s does not name the roles that may use the key" % s.get("Sid"))
    deny = [s for s in _statements(key) if s["Effect"] == "Deny"]
    expect(any({"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"} <= set(_actions(s)) and
               "${BreakGlassRoleName}" in json.dumps(s.get("Condition", {}).get("ArnNotLike")) for s in deny),
           "H3: no deny on ScheduleKeyDeletion/DisableKey/PutKeyPolicy except the break-glass role")

    intake = security["IntakeRole"]
    st = _inline(intake)
    actions = {a for s in st for a in _actions(s)}
    expect(not any(a.startswith(("ec2:Delete", "ec2:Modify", "s3:Delete", "s3:PutBucket", "s3:PutLifecycle"))
                   or a.endswith("*") for a in actions), "W2: the intake role may delete or share: %s" % sorted(actions))
    itrust = _statements(intake["Properties"]["AssumeRolePolicyDocument"])
    expect(all(s.get("Condition", {}).get("StringEquals", {}).get("aws:PrincipalOrgID") and
               "${MemberExecutionRoleName}" in json.dumps(s.get("Condition", {}).get("ArnLike")) for s in itrust),
           "W2: the intake role trusts more than the organization's execution roles")
    lock = [s for s in st if "ec2:LockSnapshot" in _actions(s)]
    expect(lock and all(":snapshot/" in json.dumps(s["Resource"]) and "${AWS::AccountId}" in json.dumps(s["Resource"])
                        and s.get("Condition", {}).get("StringEquals", {}).get("aws:ResourceTag/forensics-volume:role")
                        == "evidence" for s in lock),
           "the intake role may not lock, or may lock more than this account's evidence: %s" % json.dumps(lock))
    expect(not actions & {"ec2:UnlockSnapshot", "ec2:DeleteSnapshot"}, "the intake role may unlock or delete")
    rbin = [r["Properties"] for r in security.values() if r["Type"] == "AWS::Rbin::Rule"]
    expect(len(rbin) == 1 and rbin[0]["ResourceType"] == "EBS_SNAPSHOT" and rbin[0]["ResourceTags"] ==
           [{"ResourceTagKey": "forensics-volume:role", "ResourceTagValue": "evidence"}] and
           rbin[0]["RetentionPeriod"]["RetentionPeriodValue"] == {"Ref": "EvidenceRecycleBinDays"},
           "no Recycle Bin rule for the evidence snapshots: %s" % json.dumps(rbin))
    bucket = security["CustodyBucket"]["Properties"]
    expect(bucket.get("ObjectLockEnabled") is True and
           bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE",
           "H4: the custody bucket is not Object Lock compliance mode")
    expect("LifecycleConfiguration" not in bucket, "H4: custody records must not expire")


@check("cloudformation: no hard-coded account IDs, regions or partitions; documents embedded unchanged")
def check_cfn_portable():
    docs = documents()
    for rel, (text, _) in rendered().items():
        if not rel.startswith("cloudformation/"):
            continue
        t = json.loads(text)
        raw = json.dumps(t)
        expect(not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", raw), "%s has a 12-digit number" % rel)
        expect(not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-(north|south|east|west|central|northeast|southeast|southwest|northwest)-[0-9]\b", raw),
               "%s names a region" % rel)
        expect("arn:aws:" not in raw, "%s hard-codes the aws partition" % rel)
        for res in t["Resources"].values():
            if res["Type"] == "AWS::SSM::Document":
                name = res["Properties"]["Name"]
                content = res["Properties"]["Content"]
                expect(content["mainSteps"] == docs[name]["mainSteps"], "%s: %s steps differ" % (rel, name))
                expect(res["Properties"].get("UpdateMethod") == "NewVersion", "%s: %s would be replaced" % (rel, name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfn-lint")
    ap.add_argument("--volume-ssm")
    args = ap.parse_args()
    missing = [t for t in ("shellcheck", "dash", "busybox") if shutil.which(t) is None]
    if missing:
        print("FAIL tools: %s not installed (apt-get install shellcheck dash busybox-static)" % ", ".join(missing))
        RESULTS.append(("tools", "missing"))
    checks = [check_deterministic, check_matches_source, check_document_size]
    if args.volume_ssm:
        checks.append(lambda: check_volume_copy(args.volume_ssm))
    else:
        print("note: no --volume-ssm DIR given: the volume's copy of the documents is not compared")
    checks += [check_document_shape, check_patterns, check_command_steps, check_runbook_references,
              check_runbook_failure_paths, check_runbook_hardening, check_plan, check_plan_handler, check_shellcheck, check_stage0_injection,
              check_stage0_self_validation]
    for shell in SHELLS:
        checks += [make_stage0_check(shell, case) for case in STAGE0_CASES]
        checks.append(make_root_stage0_check(shell))
        checks += make_capture_checks(shell)
        checks += make_pin_checks(shell)
    checks += [check_publish_dry_run, check_publish_errors, check_publish_help_and_organization, lambda: check_cfn_lint(args.cfn_lint), check_cfn_portable,
               check_least_privilege]
    for c in checks:
        c()
    failed = sum(1 for _, e in RESULTS if e)
    print("%d passed, %d failed" % (len(RESULTS) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
