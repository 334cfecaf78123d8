"""Tests of the IAM evaluator (deploy/automation/iam/) on the rendered templates and on
small policies: the evaluation rules, each condition operator the templates
use, the Service Authorization Reference's ARN formats, and the hook that
refuses a call as AWS would. Run by drills.py before the drills (they count
in its total); seconds."""

import copy

import iam
import world as world_mod

MEMBER, SECURITY, REGION = world_mod.ACCOUNT, world_mod.SECURITY_ACCOUNT, "eu-west-1"
EXEC = "arn:aws:iam::%s:role/Forensics-AutomationExecutionRole" % MEMBER
INTAKE = "arn:aws:iam::%s:role/Forensics-CustodyIntake" % SECURITY
STARTER = "arn:aws:iam::%s:role/Forensics-AutomationStarter" % MEMBER
KEY = "0123456789abcdef0123456789abcdef"


class Fail(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


def policies(rendered=None):
    return iam.Policies.from_templates(iam.Deployment(member=MEMBER, security=SECURITY, region=REGION, physical={
        "security": {"ForensicsKey": KEY}}), rendered)


def allowed(pol, who, action, resource, ctx=None, **kw):
    return pol.authorize(who, action, resource, dict({"aws:RequestedRegion": REGION}, **(ctx or {})), **kw)


def t_snapshot_arn_has_no_account_f1(pol):
    # The reference's snapshot ARN: arn:${Partition}:ec2:${Region}::snapshot/${SnapshotId}.
    arn = iam.arn_of("ec2", "snapshot", "aws", REGION, SECURITY, "snap-0123456789abcdef0")
    expect(arn == "arn:aws:ec2:eu-west-1::snapshot/snap-0123456789abcdef0", arn)
    # An intake session is tagged with its caller's account, and labels its copy with it (issue 21).
    ctx = {"ec2:CreateAction": "CopySnapshot", "aws:RequestTag/forensics-volume:role": "evidence",
           "aws:RequestTag/forensics-volume:account": MEMBER}
    intake = iam.Principal(INTAKE, tags={"forensics-account": MEMBER})
    expect(allowed(pol, intake, "ec2:CreateTags", arn, ctx), "the fixed intake role cannot tag its copy")
    # main's statement (F1): the account field never matches a snapshot ARN.
    old = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "arn:aws:ec2:*:%s:snapshot/*" % SECURITY,
        "Condition": {"StringEquals": {"ec2:CreateAction": "CopySnapshot"}}}]}
    bare = iam.Policies()
    who = iam.Principal(INTAKE, policies=[old])
    expect(not allowed(bare, who, "ec2:CreateTags", arn, ctx), "arn:...:ec2:*:ACCOUNT:snapshot/* matched a snapshot")


def t_explicit_deny_beats_allow(pol):
    key = "arn:aws:kms:%s:%s:key/%s" % (REGION, SECURITY, KEY)
    admin = iam.Principal("arn:aws:iam::%s:role/SomeAdmin" % SECURITY, policies=[iam.ADMINISTRATOR])
    # The key policy delegates kms:* to the account and the identity allows *; the Deny wins.
    expect(allowed(pol, admin, "kms:DescribeKey", key), "the account's administrator cannot describe its key")
    d = allowed(pol, admin, "kms:ScheduleKeyDeletion", key)
    expect(not d and "explicit deny" in d.reason, d)
    glass = iam.Principal("arn:aws:iam::%s:role/Forensics-KeyBreakGlass" % SECURITY, policies=[iam.ADMINISTRATOR])
    expect(allowed(pol, glass, "kms:ScheduleKeyDeletion", key), "break-glass refused")
    deny_own = {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                              {"Effect": "Deny", "NotAction": "ec2:Describe*", "Resource": "*"}]}
    who = iam.Principal("arn:aws:iam::%s:role/X" % MEMBER, policies=[deny_own])
    expect(allowed(iam.Policies(), who, "ec2:DescribeVolumes", "*"), "NotAction deny hit a Describe")
    expect(not allowed(iam.Policies(), who, "ec2:DeleteVolume", "*"), "NotAction deny missed DeleteVolume")


def t_cross_account_needs_both_sides(pol):
    bucket = "arn:aws:s3:::%s" % pol.stacks["member"].params["OutputBucketName"]
    ctx = {"s3:prefix": "run-command/%s/eu-west-1/case/x/" % MEMBER}
    ex = iam.Principal(EXEC)
    expect(allowed(pol, ex, "s3:ListBucket", bucket, ctx), "the execution role cannot list its own prefix")
    # identity allows, the bucket policy does not (another prefix): denied
    other = {"s3:prefix": "run-command/%s/" % "333333333333"}
    loose = iam.Principal(EXEC, policies=[{"Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                         "Resource": "*"}]}])
    d = allowed(pol, loose, "s3:ListBucket", bucket, other)
    expect(not d and "resource-based" in d.reason, d)
    # the bucket policy allows (its own prefix), the identity does not: denied
    stranger = iam.Principal("arn:aws:iam::%s:role/Other" % MEMBER)
    d = allowed(pol, stranger, "s3:ListBucket", bucket, ctx)
    expect(not d and "identity-based" in d.reason, d)
    # a volume of another account: no resource policy, never
    vol = "arn:aws:ec2:%s:%s:volume/vol-1" % (REGION, SECURITY)
    expect(not allowed(pol, iam.Principal(EXEC, policies=[iam.ADMINISTRATOR]), "ec2:DeleteVolume", vol),
           "a member role deleted the security account's volume")


def t_trust_refuses(pol):
    # The intake role is assumed only with the session tag forensics-account = the caller's account (issue 21).
    def own(account):
        return {"aws:RequestTag/forensics-account": account, "aws:TagKeys": ["forensics-account"]}

    ex = iam.Principal(EXEC)
    expect(allowed(pol, ex, "sts:AssumeRole", INTAKE, own(MEMBER)), "the execution role cannot assume the intake role")
    expect(not allowed(pol, ex, "sts:AssumeRole", INTAKE), "the execution role assumed the intake role untagged")
    outsider = iam.Principal(EXEC, org_id="o-otherorg001", policies=[iam.ADMINISTRATOR])
    d = allowed(pol, outsider, "sts:AssumeRole", INTAKE, own(MEMBER))
    expect(not d and "trust" in d.reason, "aws:PrincipalOrgID: %s" % d)
    # the trust allows it, but across accounts the caller's own policies must too
    bare = iam.Principal("arn:aws:iam::333333333333:role/Forensics-AutomationExecutionRole")
    d = allowed(pol, bare, "sts:AssumeRole", INTAKE, own("333333333333"))
    expect(not d and "identity-based" in d.reason, "cross-account trust alone: %s" % d)
    other_role = iam.Principal("arn:aws:iam::%s:role/Admin" % MEMBER, policies=[iam.ADMINISTRATOR])
    expect(not allowed(pol, other_role, "sts:AssumeRole", INTAKE, own(MEMBER)),
           "ArnLike aws:PrincipalArn let another role in")
    # the execution role trusts ssm.amazonaws.com for this account's executions only
    ok = iam.Principal.aws_service("ssm.amazonaws.com", MEMBER, "arn:aws:ssm:%s:%s:automation-execution/e-1"
                                   % (REGION, MEMBER))
    bad = iam.Principal.aws_service("ssm.amazonaws.com", "333333333333", "arn:aws:ssm:%s:333333333333:"
                                    "automation-execution/e-1" % REGION)
    expect(allowed(pol, ok, "sts:AssumeRole", EXEC), "Automation cannot assume the execution role")
    expect(not allowed(pol, bad, "sts:AssumeRole", EXEC), "another account's Automation assumed the execution role")
    responder = iam.Principal("arn:aws:iam::%s:role/Forensics-Responder" % SECURITY, policies=[iam.ADMINISTRATOR])
    expect(allowed(pol, responder, "sts:AssumeRole", STARTER), "the responder cannot assume the starter")
    expect(not allowed(pol, iam.Principal("arn:aws:iam::%s:role/Other" % SECURITY, policies=[iam.ADMINISTRATOR]),
                       "sts:AssumeRole", STARTER), "any security-account role assumed the starter")


def t_condition_operators(pol):
    h = iam.condition_holds
    ctx = {"s": "abc", "n": "5", "d": "2026-01-02T00:00:00Z", "b": "true", "a": "arn:aws:iam::1:role/x",
           "m": ["k1", "k2"]}
    cases = [
        ("StringEquals", "s", "abc", True), ("StringNotEquals", "s", "abc", False),
        ("StringEqualsIgnoreCase", "s", "ABC", True), ("StringLike", "s", "a*", True),
        ("StringNotLike", "s", "x*", True), ("StringNotEquals", "absent", "x", True),
        ("StringEquals", "absent", "x", False), ("StringEqualsIfExists", "absent", "x", True),
        ("StringEqualsIfExists", "s", "x", False), ("NumericLessThanEquals", "n", "5", True),
        ("NumericLessThan", "n", "5", False), ("NumericGreaterThan", "n", "4", True),
        ("DateGreaterThan", "d", "2026-01-01T00:00:00Z", True), ("DateLessThan", "d", "2026-01-01T00:00:00Z", False),
        ("Bool", "b", "true", True), ("Bool", "absent", "true", False), ("Null", "absent", "true", True),
        ("Null", "s", "false", True), ("Null", "s", "true", False), ("ArnLike", "a", "arn:aws:iam::*:role/x", True),
        ("ArnNotLike", "a", "arn:aws:iam::*:role/y", True), ("ArnEquals", "a", "arn:aws:iam::1:role/x", True),
        ("ForAllValues:StringEquals", "m", ["k1", "k2", "k3"], True), ("ForAllValues:StringEquals", "m", ["k1"], False),
        ("ForAllValues:StringEquals", "absent", ["k1"], True), ("ForAnyValue:StringEquals", "m", ["k2"], True),
        ("ForAnyValue:StringEquals", "absent", ["k2"], False),
        ("StringLike", "s", "${aws:PrincipalAccount}", False),
    ]
    for op, key, values, want in cases:
        got = h(op, key, values, dict(ctx, **{"aws:PrincipalAccount": "123"}))
        expect(got == want, "%s %s %r: %s, want %s" % (op, key, values, got, want))
    # policy variables: ${aws:PrincipalAccount} in a Resource, ${*} literal
    expect(iam.substitute("run-command/${aws:PrincipalAccount}/*", {"aws:PrincipalAccount": "1"}) == "run-command/1/*",
           "variable")
    st = {"Effect": "Allow", "Action": "s3:PutObject",
          "Resource": "arn:aws:s3:::b/run-command/${aws:PrincipalAccount}/*"}
    expect(iam.statement_applies(st, "s3:PutObject", "arn:aws:s3:::b/run-command/1/x", {"aws:PrincipalAccount": "1"}),
           "variable in Resource")
    expect(not iam.statement_applies(st, "s3:PutObject", "arn:aws:s3:::b/run-command/2/x",
                                     {"aws:PrincipalAccount": "1"}), "variable in Resource matched another account")
    expect(not iam.statement_applies(st, "s3:PutObject", "arn:aws:s3:::b/run-command/1/x", {}),
           "an unresolved variable matched")
    # NotResource and NotPrincipal
    nr = {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:s3:::b/*"}
    expect(iam.statement_applies(nr, "s3:GetObject", "arn:aws:s3:::c/k", {}) and
           not iam.statement_applies(nr, "s3:GetObject", "arn:aws:s3:::b/k", {}), "NotResource")
    np = {"Effect": "Deny", "NotPrincipal": {"AWS": EXEC}, "Action": "*", "Resource": "*"}
    expect(iam.statement_applies(np, "s3:GetObject", "*", {}, iam.Principal(STARTER), True) and
           not iam.statement_applies(np, "s3:GetObject", "*", {}, iam.Principal(EXEC), True), "NotPrincipal")


def t_reference_keys(pol):
    # aws:ResourceTag does not reach CreateVolume's new volume (the
    # reference lists aws:RequestTag there, not aws:ResourceTag).
    keys = iam.supported_keys("ec2:CreateVolume", "volume", {"aws:ResourceTag/a", "aws:RequestTag/a",
                                                              "ec2:CreateAction", "aws:PrincipalArn"})
    expect(keys == {"aws:RequestTag/a", "aws:PrincipalArn"}, keys)
    expect("ec2:CreateAction" in iam.supported_keys("ec2:CreateTags", "snapshot", {"ec2:CreateAction"}), "CreateAction")


def t_key_policy_lockout_f4(pol):
    creator = iam.Principal("arn:aws:iam::%s:role/%s" % (SECURITY, iam.DEPLOYER_ROLE), policies=[iam.ADMINISTRATOR])
    iam.create_key_check(pol, KEY, creator)
    rendered = copy.deepcopy(iam._rendered_templates())
    key = rendered["cloudformation/forensics-security.json"]["Resources"]["ForensicsKey"]["Properties"]["KeyPolicy"]
    # main's key policy (F4): PutKeyPolicy denied to all but the break-glass role
    for st in key["Statement"]:
        if st["Effect"] == "Deny" and "kms:PutKeyPolicy" in iam._list(st["Action"]):
            st["Condition"]["ArnNotLike"]["aws:PrincipalArn"] = {
                "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${BreakGlassRoleName}"}
    try:
        iam.create_key_check(policies(rendered), KEY, creator)
    except iam.ClientError as e:
        expect(e.response["Error"]["Code"] == "MalformedPolicyDocumentException", e)
    else:
        raise Fail("a key policy that locks out its creator was accepted")


def t_hook_refuses_as_aws(pol):
    w = world_mod.World().start()
    try:
        ec2 = w.session.client("ec2")
        role = iam.Principal(EXEC)
        with iam.acting_as(w.session, role):
            try:
                ec2.modify_instance_attribute(InstanceId=w.instance_id, UserData={"Value": b"IyEvYmluL3NoCg=="})
            except iam.ClientError as e:
                expect(e.response["Error"]["Code"] == "UnauthorizedOperation" and
                       "is not authorized to perform: ec2:ModifyInstanceAttribute" in e.response["Error"]["Message"],
                       e)
            else:
                raise Fail("the execution role changed an instance's userData")
            ec2.modify_instance_attribute(InstanceId=w.instance_id, DisableApiTermination={"Value": True})
            try:
                ec2.delete_volume(VolumeId=ec2.describe_volumes()["Volumes"][0]["VolumeId"])
            except iam.ClientError as e:
                expect(e.response["Error"]["Code"] == "UnauthorizedOperation", e)
            else:
                raise Fail("the execution role deleted an untagged volume")
        s3 = w.session.client("s3")
        with iam.acting_as(w.session, iam.Principal(STARTER)):
            try:
                s3.list_objects_v2(Bucket=world_mod.BUCKET)
            except iam.ClientError as e:
                expect(e.response["Error"]["Code"] == "AccessDenied", e)
            else:
                raise Fail("the starter role listed the output bucket")
    finally:
        w.stop()


def t_implicit_checks(pol):
    w = world_mod.World().start()
    try:
        ex = iam.Principal(EXEC)
        facts = w.iam_facts

        def asked(service, op, params):
            return [(c.action, c.rtype, c.context) for c in iam.checks(service, op, params, ex, facts)]

        got = asked("ec2", "CopySnapshot", {"SourceSnapshotId": w.forensics_snapshot, "SourceRegion": REGION,
                                            "Encrypted": True, "KmsKeyId": w.key_arn, "TagSpecifications": [{
                                                "ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}]})
        expect(any(a == "ec2:CreateTags" and c.get("ec2:CreateAction") == "CopySnapshot" for a, _, c in got),
               "CopySnapshot with TagSpecifications does not ask ec2:CreateTags: %s" % got)
        expect(any(a == "kms:CreateGrant" and c.get("kms:ViaService") == "ec2.%s.amazonaws.com" % REGION and
                   c.get("kms:GrantIsForAWSResource") == "true" for a, _, c in got), "no KMS grant via EC2: %s" % got)
        got = asked("ec2", "CreateVolume", {"AvailabilityZone": REGION + "a", "SnapshotId": w.forensics_snapshot,
                                            "Encrypted": True, "KmsKeyId": w.key_arn})
        snap = [c for a, t, c in got if a == "ec2:CreateVolume" and t == "snapshot"]
        # the world's forensics snapshot is the security account's, shared (STAND-IN in world.py)
        expect(snap and snap[0].get("ec2:Owner") == SECURITY, got)
        expect(any(a == "kms:Decrypt" for a, _, _ in got), "CreateVolume from an encrypted snapshot: %s" % got)
        got = asked("ssm", "SendCommand", {"DocumentName": "Forensics-MountVolume", "InstanceIds": [w.instance_id]})
        expect(sorted(t for _, t, _ in got) == ["document", "instance"], got)
        got = asked("s3", "PutObject", {"Bucket": world_mod.BUCKET, "Key": "k", "ACL": "bucket-owner-full-control"})
        expect([a for a, _, _ in got] == ["s3:PutObject", "s3:PutObjectAcl"], got)
        got = asked("s3", "PutObject", {"Bucket": world_mod.BUCKET, "Key": "k", "ObjectLockMode": "COMPLIANCE"})
        expect(got[0][2].get("s3:object-lock-mode") == "COMPLIANCE", got)
        # a key the reference does not list for the action never reaches a condition
        got = asked("ec2", "DescribeVolumes", {})
        expect(got == [("ec2:DescribeVolumes", "", {"aws:RequestedRegion": REGION, "ec2:Region": REGION})], got)
        got = asked("autoscaling", "DescribeAutoScalingInstances", {})
        expect(got == [("autoscaling:DescribeAutoScalingInstances", "", {"aws:RequestedRegion": REGION})], got)
        try:
            iam.checks("ec2", "TerminateInstances", {"InstanceIds": [w.instance_id]}, ex, facts)
        except ValueError:
            pass
        else:
            raise Fail("an operation with resource types but no mapping was let through")
    finally:
        w.stop()


def t_runbook_calls_are_evaluated(pol):
    """End to end: the rendered runbook in a drill world, with one statement
    of the execution role taken out, fails where AWS would refuse it."""
    import accounts
    import backend as backend_mod
    import engine
    import run as run_mod

    w = accounts.SecurityWorld().start()
    try:
        role = w.iam.roles[EXEC]
        for doc in role.policies:
            doc["Statement"] = [st for st in doc["Statement"] if st.get("Sid") != "CreateTaggedForensicsVolume"]
        docs = run_mod.rendered_documents()
        w.create_documents(docs)
        ex = engine.Execution(docs[run_mod.RUNBOOK], w.parameters(), w.session, backend_mod.ScriptedBackend(),
                              {k: v for k, v in docs.items() if k != run_mod.RUNBOOK}, MEMBER, w.region)
        ex.world = w
        ex.run()
        failed = [r for r in ex.steps if r["status"] == "Failed"]
        expect(ex.status == "Failed" and failed and failed[0]["name"] == "CreateVolume" and
               "UnauthorizedOperation" in failed[0]["message"], "%s %s" % (ex.status, failed[:1]))
        expect(not w.volumes_of(ex.execution_id), "a volume was created despite the refusal")
    finally:
        w.stop()


TESTS = [t_snapshot_arn_has_no_account_f1, t_explicit_deny_beats_allow, t_cross_account_needs_both_sides,
         t_trust_refuses, t_condition_operators, t_reference_keys, t_key_policy_lockout_f4, t_hook_refuses_as_aws,
         t_implicit_checks, t_runbook_calls_are_evaluated]


def run_all():
    """(passed, failed) after printing one line per test."""
    passed = failed = 0
    pol = policies()
    for t in TESTS:
        try:
            t(pol)
            print("PASS iam: %s" % t.__name__[2:].replace("_", " "))
            passed += 1
        except (Fail, KeyError, ValueError, iam.ClientError) as e:
            print("FAIL iam: %s: %s" % (t.__name__[2:].replace("_", " "), e))
            failed += 1
    return passed, failed


if __name__ == "__main__":
    import sys

    p, f = run_all()
    print("%d passed, %d failed" % (p, f))
    sys.exit(1 if f else 0)
