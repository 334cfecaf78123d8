"""Checks of the rendering and of the SSM documents (run by check.py).

Rendering: two renders are byte-identical and render.sh writes exactly them;
every rendered script is its source unchanged (plus the parameter prologue);
every document stays under SSM's 64 KB limit; the volume's ssm/ copy equals a
fresh render pinned to its SHA256SUMS. Documents: schema versions, every
parameter constrained by a pattern that refuses shell metacharacters and
accepts the good values, Command steps well formed. Why: the documents are
what SSM runs on the suspect instance, so a parameter that escapes its quotes
or a script that drifts from its reviewed source is a remote command.
"""

import ast
import hashlib
import json
import os
import re
import subprocess
import tempfile

import fvdeploy
import ssm_script
from checklib import DEPLOY, MAX_DOCUMENT_BYTES, check, documents, expect, rendered


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
    "Source": ["auto", "kcore", "crash", "mem", "lime-module"],
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
    "Source": ["lime:/etc/shadow", "lime-tcp:10.0.0.1:4444", "auto ", "lime-tcp:127.0.0.1:4444",
               "lime-tcp:localhost:4444", "lime:-", "lime-module:auto"],
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
