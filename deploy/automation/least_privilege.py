"""Least privilege of the rendered templates, proven by the IAM evaluator
(deploy/automation/iam/) instead of by the statements' spelling: for each role and resource
policy, what the runbook needs is allowed and the broader call next to it
is denied (deploy review H2, H3, W2, B1; issue 13; issue 20 F1, F4, S13).

    deploy/automation.sh python deploy/automation/least_privilege.py

Run by deploy/check.sh ("least privilege"). Prints PASS/FAIL per assertion
and "N passed, M failed"; exit 1 on a failure.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iam  # noqa: E402

MEMBER, SECURITY, OTHER, REGION = "123456789012", "222222222222", "333333333333", "eu-west-1"
KEY = "mrk-0123456789abcdef0123456789abcdef"


def role(account, name, **kw):
    return iam.Principal("arn:aws:iam::%s:role/%s" % (account, name), **kw)


EXEC = role(MEMBER, "Forensics-AutomationExecutionRole")
STARTER = role(MEMBER, "Forensics-AutomationStarter")
# An intake session as the trust policy lets one be made: tagged with the
# caller's own account (issue 21).
INTAKE = role(SECURITY, "Forensics-CustodyIntake", tags={"forensics-account": MEMBER})
ADMIN = role(SECURITY, "SecurityAdmin", policies=[iam.ADMINISTRATOR])
GLASS = role(SECURITY, "Forensics-KeyBreakGlass", policies=[iam.ADMINISTRATOR])
DEPLOYER = role(SECURITY, iam.DEPLOYER_ROLE, policies=[iam.ADMINISTRATOR])
RESPONDER = role(SECURITY, "Forensics-Responder", policies=[iam.ADMINISTRATOR])
MEMBER_ADMIN = role(MEMBER, "Admin", policies=[iam.ADMINISTRATOR])


def arn(service, rtype, account, *ids):
    return iam.arn_of(service, rtype, "aws", REGION, account, *ids)


def tag(key, value, kind="Request"):
    return {"aws:%sTag/%s" % (kind, key): value, "aws:TagKeys": [key]} if kind == "Request" else \
        {"aws:ResourceTag/%s" % key: value, "ec2:ResourceTag/%s" % key: value}


def snapshot_ctx(owner, **extra):
    return dict({"ec2:Owner": owner}, **extra)


VIA_EC2 = {"kms:ViaService": "ec2.%s.amazonaws.com" % REGION, "kms:CallerAccount": MEMBER}
SNAP = arn("ec2", "snapshot", "", "snap-0123456789abcdef0")
VOL = arn("ec2", "volume", MEMBER, "vol-0123456789abcdef0")
INST = arn("ec2", "instance", MEMBER, "i-0123456789abcdef0")
KEY_ARN = "arn:aws:kms:%s:%s:key/%s" % (REGION, SECURITY, KEY)
EVIDENCE = tag("forensics-volume:role", "evidence", "Resource")
FVOL = tag("forensics-volume:role", "forensics-volume", "Resource")
# The copy's tags at creation, and the evidence copy the caller may lock (issue 21).
COPY_TAGS = {"aws:RequestTag/forensics-volume:role": "evidence", "aws:RequestTag/forensics-volume:account": MEMBER,
             "aws:TagKeys": ["forensics-volume:role", "forensics-volume:account"]}
OWN_EVIDENCE = dict(EVIDENCE, **{"aws:ResourceTag/forensics-volume:account": MEMBER,
                                 "ec2:ResourceTag/forensics-volume:account": MEMBER})

# A trust policy that allows anyone: the assertion is about the caller's own policies.
ANY_TRUST = {"resource_policy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*",
                                                "Resource": "*"}]}, "kind": "trust"}

# (what, principal, action, resource, context, allowed? [, keyword arguments of Policies.authorize])
ASSERTIONS = [
    # execution role (H2, S13)
    ("execution role creates a tagged forensics volume", EXEC, "ec2:CreateVolume", arn("ec2", "volume", MEMBER, "*"),
     tag("forensics-volume:role", "forensics-volume"), True),
    ("execution role cannot create an untagged volume", EXEC, "ec2:CreateVolume", arn("ec2", "volume", MEMBER, "*"),
     {}, False),
    ("execution role creates a volume from the security account's snapshot", EXEC, "ec2:CreateVolume", SNAP,
     snapshot_ctx(SECURITY), True),
    ("H2: execution role cannot create a volume from another account's snapshot", EXEC, "ec2:CreateVolume", SNAP,
     snapshot_ctx(OTHER), False),
    ("execution role attaches a forensics volume", EXEC, "ec2:AttachVolume", VOL, FVOL, True),
    ("H2: execution role cannot attach, detach or delete an untagged volume", EXEC, "ec2:DeleteVolume", VOL, {},
     False),
    ("execution role cannot detach the instance's own (untagged) disk", EXEC, "ec2:DetachVolume", VOL, {}, False),
    ("execution role sets termination protection", EXEC, "ec2:ModifyInstanceAttribute", INST,
     {"ec2:Attribute": "disableApiTermination"}, True),
    ("S13: execution role cannot change an instance's userData", EXEC, "ec2:ModifyInstanceAttribute", INST,
     {"ec2:Attribute": "userData"}, False),
    ("S13: execution role cannot change an instance's type", EXEC, "ec2:ModifyInstanceAttribute", INST,
     {"ec2:Attribute": "instanceType"}, False),
    ("execution role cannot modify another account's instance", EXEC, "ec2:ModifyInstanceAttribute",
     arn("ec2", "instance", OTHER, "i-0123456789abcdef0"), {"ec2:Attribute": "disableApiTermination"}, False),
    ("isolation moves an interface into a tagged isolation group", EXEC, "ec2:ModifyNetworkInterfaceAttribute",
     arn("ec2", "security-group", MEMBER, "sg-0123456789abcdef0"), tag("forensics-volume:role", "isolation",
                                                                     "Resource"), True),
    ("isolation cannot move an interface into any other group", EXEC, "ec2:ModifyNetworkInterfaceAttribute",
     arn("ec2", "security-group", MEMBER, "sg-0123456789abcdef0"), {}, False),
    ("execution role cannot pass any role", EXEC, "iam:PassRole", "arn:aws:iam::%s:role/Admin" % MEMBER,
     {"iam:PassedToService": "ec2.amazonaws.com"}, False),
    ("execution role runs the forensics documents", EXEC, "ssm:SendCommand",
     arn("ssm", "document", MEMBER, "Forensics-CaptureMemory"), {}, True),
    ("execution role cannot run AWS-RunShellScript", EXEC, "ssm:SendCommand",
     "arn:aws:ssm:%s::document/AWS-RunShellScript" % REGION, {}, False),
    ("execution role cannot snapshot another account's instance", EXEC, "ec2:CreateSnapshots",
     arn("ec2", "instance", OTHER, "i-0123456789abcdef0"), {}, False),
    ("disk snapshots are made labelled as disks", EXEC, "ec2:CreateSnapshots", arn("ec2", "snapshot", "", "*"),
     {"aws:RequestTag/forensics-volume:role": "evidence", "aws:RequestTag/forensics-volume:kind": "disk",
      "aws:TagKeys": ["forensics-volume:role", "forensics-volume:kind"]}, True),
    ("CreateSnapshots cannot make snapshots that pass for the memory evidence (no kind=disk)", EXEC,
     "ec2:CreateSnapshots", arn("ec2", "snapshot", "", "*"), tag("forensics-volume:role", "evidence"), False),
    ("disk snapshots are tagged evidence on creation", EXEC, "ec2:CreateTags", arn("ec2", "snapshot", "", "*"),
     dict(tag("forensics-volume:role", "evidence"), **{"ec2:CreateAction": "CreateSnapshots"}), True),
    ("execution role cannot tag another snapshot outside creation", EXEC, "ec2:CreateTags", SNAP,
     tag("forensics-volume:role", "evidence"), False),
    ("execution role shares evidence with the security account only", EXEC, "ec2:ModifySnapshotAttribute", SNAP,
     dict(EVIDENCE, **{"ec2:Add/userId": [SECURITY]}), True),
    ("execution role cannot share evidence with another account", EXEC, "ec2:ModifySnapshotAttribute", SNAP,
     dict(EVIDENCE, **{"ec2:Add/userId": [OTHER]}), False),
    ("execution role uses the forensics key through EC2", EXEC, "kms:CreateGrant", KEY_ARN,
     dict(VIA_EC2, **{"kms:GrantIsForAWSResource": "true"}), True),
    ("H3: execution role cannot decrypt with the key outside EC2", EXEC, "kms:Decrypt", KEY_ARN,
     {"kms:CallerAccount": MEMBER}, False),
    ("execution role may assume the intake role (tagged with its own account)", EXEC, "sts:AssumeRole",
     INTAKE.arn, tag("forensics-account", MEMBER), True),
    # the identity side of a tagged intake session (the intake trust decides the other side)
    ("execution role may tag the intake session with its own account", EXEC, "sts:TagSession", INTAKE.arn,
     tag("forensics-account", MEMBER), True, ANY_TRUST),
    ("execution role cannot tag the intake session with another account", EXEC, "sts:TagSession", INTAKE.arn,
     tag("forensics-account", OTHER), False, ANY_TRUST),
    # trust of the execution role
    ("this account's Automation assumes the execution role",
     iam.Principal.aws_service("ssm.amazonaws.com", MEMBER, arn("ssm", "automation-execution", MEMBER, "e-1")),
     "sts:AssumeRole", EXEC.arn, {}, True),
    ("another account's Automation cannot assume the execution role",
     iam.Principal.aws_service("ssm.amazonaws.com", OTHER, arn("ssm", "automation-execution", OTHER, "e-1")),
     "sts:AssumeRole", EXEC.arn, {}, False),
    # starter role (B1, S13)
    ("the responder assumes the starter role", RESPONDER, "sts:AssumeRole", STARTER.arn, {}, True),
    ("B1: another security-account role cannot assume the starter", ADMIN, "sts:AssumeRole", STARTER.arn, {}, False),
    ("issue 24: starter resolves tag targets (tag:GetResources)", STARTER, "tag:GetResources", "*", {}, True),
    ("issue 24: starter resolves its own account's resource groups", STARTER, "resource-groups:ListGroupResources",
     arn("resource-groups", "group", MEMBER, "IR-2026-042"), {}, True),
    ("issue 24: starter cannot read another account's resource groups", STARTER,
     "resource-groups:ListGroupResources", arn("resource-groups", "group", OTHER, "IR-2026-042"), {}, False),
    ("starter starts Forensics-CaptureInstanceMemory", STARTER, "ssm:StartAutomationExecution",
     arn("ssm", "document", MEMBER, "Forensics-CaptureInstanceMemory"), {}, True),
    ("B1: starter cannot start another runbook", STARTER, "ssm:StartAutomationExecution",
     arn("ssm", "document", MEMBER, "AWS-RunShellScript"), {}, False),
    ("starter passes the execution role to SSM", STARTER, "iam:PassRole", EXEC.arn,
     {"iam:PassedToService": "ssm.amazonaws.com"}, True),
    ("B1: starter cannot pass the execution role to EC2", STARTER, "iam:PassRole", EXEC.arn,
     {"iam:PassedToService": "ec2.amazonaws.com"}, False),
    ("B1: starter cannot pass another role", STARTER, "iam:PassRole", "arn:aws:iam::%s:role/Admin" % MEMBER,
     {"iam:PassedToService": "ssm.amazonaws.com"}, False),
    ("starter stops this account's executions", STARTER, "ssm:StopAutomationExecution",
     arn("ssm", "automation-execution", MEMBER, "e-1"), {}, True),
    ("S13: starter cannot stop another account's executions", STARTER, "ssm:StopAutomationExecution",
     arn("ssm", "automation-execution", OTHER, "e-1"), {}, False),
    # key policy (H3, F4)
    ("H3: the security account's administrator cannot schedule the key's deletion", ADMIN, "kms:ScheduleKeyDeletion",
     KEY_ARN, {}, False),
    ("H3: ... nor disable it", ADMIN, "kms:DisableKey", KEY_ARN, {}, False),
    ("H3: ... nor rewrite its policy", ADMIN, "kms:PutKeyPolicy", KEY_ARN, {}, False),
    ("the break-glass role may", GLASS, "kms:ScheduleKeyDeletion", KEY_ARN, {}, True),
    ("F4: the stack's deployer keeps PutKeyPolicy (CreateKey's lockout check)", DEPLOYER, "kms:PutKeyPolicy",
     KEY_ARN, {}, True),
    ("F4: ... but cannot delete the key", DEPLOYER, "kms:ScheduleKeyDeletion", KEY_ARN, {}, False),
    ("H3: another member role cannot use the key, even through EC2", MEMBER_ADMIN, "kms:Decrypt", KEY_ARN, VIA_EC2,
     False),
    ("H3: an account outside the organization cannot use the key",
     role(OTHER, "Forensics-AutomationExecutionRole", org_id="o-otherorg001", policies=[iam.ADMINISTRATOR]),
     "kms:Decrypt", KEY_ARN, dict(VIA_EC2, **{"kms:CallerAccount": OTHER}), False),
    # intake role (W2, F1, issue 21): bound to the caller's account by its session tag
    ("F1: the intake role copies a shared snapshot, labelled with the caller's account", INTAKE,
     "ec2:CopySnapshot", SNAP, snapshot_ctx(MEMBER, **dict(COPY_TAGS, **{"ec2:VolumeSize": "64"})), True),
    ("issue 21: ... never labelled with another account", INTAKE, "ec2:CopySnapshot", SNAP,
     snapshot_ctx(MEMBER, **dict(COPY_TAGS, **{"aws:RequestTag/forensics-volume:account": OTHER})), False),
    ("issue 21: ... nor a snapshot larger than EvidenceMaxVolumeGiB", INTAKE, "ec2:CopySnapshot", SNAP,
     snapshot_ctx(MEMBER, **dict(COPY_TAGS, **{"ec2:VolumeSize": "65536"})), False),
    ("F1: the intake role tags its copy on creation (snapshot ARN without account)", INTAKE, "ec2:CreateTags",
     arn("ec2", "snapshot", "", "*"), dict(COPY_TAGS, **{"ec2:CreateAction": "CopySnapshot"}), True),
    ("the intake role locks its own evidence copy", INTAKE, "ec2:LockSnapshot", SNAP,
     snapshot_ctx(SECURITY, **dict(OWN_EVIDENCE, **{"ec2:SnapshotLockDuration": "7"})), True),
    ("issue 21: ... not for 100 years", INTAKE, "ec2:LockSnapshot", SNAP,
     snapshot_ctx(SECURITY, **dict(OWN_EVIDENCE, **{"ec2:SnapshotLockDuration": "36500"})), False),
    ("issue 21: ... not by expiration date (no duration to cap)", INTAKE, "ec2:LockSnapshot", SNAP,
     snapshot_ctx(SECURITY, **OWN_EVIDENCE), False),
    ("issue 21: ... not another account's copy", INTAKE, "ec2:LockSnapshot", SNAP,
     snapshot_ctx(SECURITY, **dict(EVIDENCE, **{"aws:ResourceTag/forensics-volume:account": OTHER,
                                                 "ec2:SnapshotLockDuration": "7"})), False),
    ("the intake role cannot lock an untagged snapshot", INTAKE, "ec2:LockSnapshot", SNAP,
     snapshot_ctx(SECURITY, **{"ec2:SnapshotLockDuration": "7"}), False),
    ("W2: the intake role cannot delete a snapshot", INTAKE, "ec2:DeleteSnapshot", SNAP, snapshot_ctx(SECURITY),
     False),
    ("W2: ... unlock one", INTAKE, "ec2:UnlockSnapshot", SNAP, snapshot_ctx(SECURITY, **EVIDENCE), False),
    ("W2: ... nor share one", INTAKE, "ec2:ModifySnapshotAttribute", SNAP,
     snapshot_ctx(SECURITY, **dict(EVIDENCE, **{"ec2:Add/userId": [OTHER]})), False),
    ("W2: another role of a member account cannot assume the intake role", MEMBER_ADMIN, "sts:AssumeRole",
     INTAKE.arn, {}, False),
    # the intake role's trust (issue 21): only with the caller's own account as the session tag
    ("issue 21: the execution role assumes the intake role tagged with its own account", EXEC, "sts:TagSession",
     INTAKE.arn, tag("forensics-account", MEMBER), True, {"kind": "trust"}),
    ("issue 21: ... never tagged with another account", EXEC, "sts:TagSession", INTAKE.arn,
     tag("forensics-account", OTHER), False, {"kind": "trust"}),
    ("issue 21: ... never untagged", EXEC, "sts:AssumeRole", INTAKE.arn, {}, False, {"kind": "trust"}),
]


WRITE_ONCE = {"s3:object-lock-mode": "COMPLIANCE", "s3:object-lock-remaining-retention-days": "3650",
              "s3:if-none-match": "*"}


def bucket_assertions(pol):
    custody = "arn:aws:s3:::forensics-custody-%s/custody/%s/x.json" % (SECURITY, MEMBER)
    fleet = "arn:aws:s3:::forensics-custody-%s/fleet/IR-2026-042/20260101T000000Z-0123abcd.json" % SECURITY
    output = pol.stacks["security"].ref("OutputBucket")
    instance = iam.Principal(next(a for a in pol.roles if a.split(":")[4] == MEMBER and "InstanceRole" in a))
    return [
        ("H4: the intake role writes a new custody record locked in compliance mode", INTAKE, "s3:PutObject",
         custody, WRITE_ONCE, True),
        ("H4: no custody record without the compliance lock", INTAKE, "s3:PutObject", custody,
         {"s3:if-none-match": "*"}, False),
        ("issue 21: no custody record without If-None-Match (a second version)", INTAKE, "s3:PutObject", custody,
         {k: v for k, v in WRITE_ONCE.items() if k != "s3:if-none-match"}, False),
        ("issue 21: no custody record under another account's prefix", INTAKE, "s3:PutObject",
         custody.replace("/custody/%s/" % MEMBER, "/custody/%s/" % OTHER), WRITE_ONCE, False),
        ("issue 21: no custody record retained 100 years", INTAKE, "s3:PutObject", custody,
         dict(WRITE_ONCE, **{"s3:object-lock-remaining-retention-days": "36500"}), False),
        ("issue 21: no multipart upload (CreateMultipartUpload and UploadPart carry no If-None-Match)", INTAKE,
         "s3:PutObject", custody, {"s3:object-lock-mode": "COMPLIANCE",
                                   "s3:object-lock-remaining-retention-days": "3650"}, False),
        ("issue 21: not even the security account replaces a record", ADMIN, "s3:PutObject", custody,
         {"s3:object-lock-mode": "COMPLIANCE"}, False),
        ("H4: the intake role cannot delete a custody record", INTAKE, "s3:DeleteObject", custody, {}, False),
        ("issue 24: the responder writes a fleet record, once, locked", RESPONDER, "s3:PutObject", fleet,
         WRITE_ONCE, True),
        ("issue 24: no other security-account principal writes a fleet record", ADMIN, "s3:PutObject", fleet,
         WRITE_ONCE, False),
        ("issue 24: the intake role (a member's session) cannot write a fleet record", INTAKE, "s3:PutObject",
         fleet, WRITE_ONCE, False),
        ("issue 24: not even the responder replaces a fleet record (no If-None-Match)", RESPONDER,
         "s3:PutObject", fleet, {k: v for k, v in WRITE_ONCE.items() if k != "s3:if-none-match"}, False),
        ("instances write Run Command output under their account's prefix", instance, "s3:PutObject",
         "arn:aws:s3:::%s/run-command/%s/eu-west-1/c/e/x/stdout" % (output, MEMBER), {}, True),
        ("instances give the bucket owner full control of their output", instance, "s3:PutObjectAcl",
         "arn:aws:s3:::%s/run-command/%s/eu-west-1/c/e/x/stdout" % (output, MEMBER),
         {"s3:x-amz-acl": "bucket-owner-full-control"}, True),
        ("instances cannot make their output public", instance, "s3:PutObjectAcl",
         "arn:aws:s3:::%s/run-command/%s/eu-west-1/c/e/x/stdout" % (output, MEMBER),
         {"s3:x-amz-acl": "public-read"}, False),
        ("instances cannot write under another account's prefix", instance, "s3:PutObject",
         "arn:aws:s3:::%s/run-command/%s/eu-west-1/c/e/x/stdout" % (output, OTHER), {}, False),
        ("F5: the execution role lists its own account's output", EXEC, "s3:ListBucket", "arn:aws:s3:::%s" % output,
         {"s3:prefix": "run-command/%s/eu-west-1/c/e/" % MEMBER}, True),
        ("the execution role cannot list another account's output", EXEC, "s3:ListBucket",
         "arn:aws:s3:::%s" % output, {"s3:prefix": "run-command/%s/" % OTHER}, False),
    ]


def main():
    pol = iam.Policies.from_templates(iam.Deployment(member=MEMBER, security=SECURITY, region=REGION, physical={
        "security": {"ForensicsKey": KEY}}))
    passed = failed = 0
    for what, who, action, resource, ctx, want, *kw in ASSERTIONS + bucket_assertions(pol):
        d = pol.authorize(who, action, resource, dict({"aws:RequestedRegion": REGION}, **ctx), **(kw[0] if kw else {}))
        ok = bool(d) == want
        print("%s %s%s" % ("PASS" if ok else "FAIL", what, "" if ok else ": %s %s on %s: %s" % (
            who.session_arn, action, resource, d)))
        passed, failed = passed + ok, failed + (not ok)
    try:
        iam.create_key_check(pol, KEY, DEPLOYER)
        print("PASS F4: KMS CreateKey's lockout check accepts the key policy for the stack's deployer")
        passed += 1
    except iam.ClientError as e:
        print("FAIL F4: KMS CreateKey would refuse the key policy: %s" % e)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
