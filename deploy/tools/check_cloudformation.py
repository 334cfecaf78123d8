"""Checks of the two CloudFormation templates (run by check.py).

cfn-lint on both; least privilege of the execution, starter and intake roles,
the key policy, the Recycle Bin rule and the custody bucket (deploy review
H2, H3, H4, W2, B1; issue 13); no hard-coded account IDs, regions or
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
    # Issue 21: a member admin controls their own execution role, so every
    # session of the intake role is bound to the account that assumed it
    # (session tag forensics-account = aws:PrincipalAccount, enforced by
    # the trust policy) and every write is scoped by that tag.
    expect(all(s.get("Condition", {}).get("StringEquals", {}).get("aws:RequestTag/forensics-account")
               == "${aws:PrincipalAccount}" for s in itrust),
           "issue 21: the intake role's sessions are not bound to the caller's account: %s" % json.dumps(itrust))
    # EC2 snapshot ARNs have no account field (Service Authorization
    # Reference, Amazon EC2, resource type snapshot:
    # arn:${Partition}:ec2:${Region}::snapshot/${SnapshotId}); a statement
    # naming one never matches (aws-fidelity-review F1).
    for s in st:
        arns = json.dumps(s.get("Resource"))
        expect(":snapshot/" not in arns or "::snapshot/" in arns,
               "F1: a snapshot ARN with an account field never matches: %s" % arns)
    lock = [s for s in st if "ec2:LockSnapshot" in _actions(s)]
    expect(lock and all("::snapshot/" in json.dumps(s["Resource"]) and s.get("Condition", {}).get(
        "StringEquals", {}).get("ec2:Owner") == {"Ref": "AWS::AccountId"}
                        and s.get("Condition", {}).get("StringEquals", {}).get("aws:ResourceTag/forensics-volume:role")
                        == "evidence" and s["Condition"]["StringEquals"].get("aws:ResourceTag/forensics-volume:account")
                        == "${aws:PrincipalTag/forensics-account}"
                        and "ec2:SnapshotLockDuration" in s["Condition"].get("NumericLessThanEquals", {})
                        for s in lock),
           "the intake role may not lock, or may lock more than the caller's evidence, or for longer than the "
           "cap: %s" % json.dumps(lock))
    puts = [s for s in st if "s3:PutObject" in _actions(s)]
    expect(puts and all("${!aws:PrincipalTag/forensics-account}" in json.dumps(s["Resource"]) and
                        s.get("Condition", {}).get("StringEquals", {}).get("s3:if-none-match") == "*"
                        for s in puts),
           "issue 21: the intake role may write records outside the caller's prefix or replace one: %s"
           % json.dumps(puts))
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
    policy = _statements(security["CustodyBucketPolicy"]["Properties"]["PolicyDocument"])
    expect(any(s["Effect"] == "Deny" and s.get("Condition", {}).get("StringNotEquals", {}).get("s3:if-none-match")
               == "*" for s in policy), "issue 21: the custody bucket lets a key get a second version")
    out = _statements(security["OutputBucketPolicy"]["Properties"]["PolicyDocument"])
    expect(any("s3:ListBucket" in _actions(s) and s["Effect"] == "Allow" for s in out),
           "F5: the output bucket policy grants the organization no s3:ListBucket (Custody's check is denied)")


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
