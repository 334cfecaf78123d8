"""Several accounts in one moto: the member account the runbook runs in
(world.ACCOUNT), the security account (world.SECURITY_ACCOUNT) that takes
custody of the evidence, and the role chains between them.

moto keeps a separate set of resources per account; a caller's account is
the one its credentials belong to, and sts:AssumeRole into
arn:aws:iam::ACCOUNT:role/NAME returns credentials of ACCOUNT (moto's
multi-account support). So the runbook's calls made with the member's
credentials land in the member account, and custody.py's calls made after
assuming the intake role land in the security account: the same split AWS
makes.

STAND-IN (labelled where coded): moto 5.2.5 does not model snapshots shared
across accounts: a snapshot shared with createVolumePermission is not
visible to the other account, so CopySnapshot from it fails there with
InvalidSnapshot.NotFound. While a SecurityWorld runs, CopySnapshot looks for
the source in the other accounts of the region too, and copies it only when
its createVolumePermission names the caller's account (or "all"), as EC2
does; otherwise it fails as before. moto does not evaluate IAM or key
policies: iam.py does, on every call, from the rendered templates
(World.activate_iam); the world's own set-up and inspection run as each
account's administrator, which it does not evaluate.
"""

import copy
import datetime
import json

import boto3
from botocore.awsrequest import AWSResponse  # noqa: F401  (re-exported for drivers)

import world as world_mod

SECURITY = world_mod.SECURITY_ACCOUNT
MEMBER = world_mod.ACCOUNT
CUSTODY_BUCKET = "forensics-custody-%s" % SECURITY
INTAKE_ROLE = "Forensics-CustodyIntake"
STARTER_ROLE = "Forensics-AutomationStarter"
RESPONDER_ROLE = "Forensics-Responder"


def assume(session_or_clients, role_arn, name, region=None):
    """A boto3 Session with the credentials of role_arn, assumed from the
    given session (a World's Clients or a boto3 Session), in its region or
    REGION."""
    sts = session_or_clients.client("sts")
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    region = region or getattr(session_or_clients, "region_name", None)
    return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                 aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"], region_name=region)


def _shared_copy_snapshot(original):
    """STAND-IN for cross-account CopySnapshot (see the module docstring)."""

    def copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id):
        from moto.ec2.models import ec2_backends
        from moto.ec2.exceptions import InvalidSnapshotIdError

        try:
            return original(self, source_snapshot_id, source_region, description, kms_key_id)
        except InvalidSnapshotIdError:
            pass
        for account, regions in ec2_backends.items():
            if account == self.account_id or source_region not in regions:
                continue
            source = regions[source_region].snapshots.get(source_snapshot_id)
            if source is None:
                continue
            if self.account_id in source.create_volume_permission_userids or \
                    "all" in source.create_volume_permission_groups:
                from moto.ec2.models.elastic_block_store import Snapshot
                from moto.ec2.utils import random_snapshot_id

                snapshot_id = random_snapshot_id()
                copy = Snapshot(self, snapshot_id, volume=source.volume, description=description,
                                encrypted=True, kms_key_id=kms_key_id)
                self.snapshots[snapshot_id] = copy
                return copy
        raise InvalidSnapshotIdError()

    return copy_snapshot


# S3 takes at most 5 GB in one PUT ("Uploading and copying objects using
# multipart upload", https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html:
# "With a single PUT operation, you can upload a single object up to 5 GB in
# size"); a larger one is refused with EntityTooLarge (Error responses,
# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
# moto does not check it; the drills declare a ContentLength instead of
# sending the bytes.
SINGLE_PUT_MAX = 5 * 1024 ** 3


def _refuse_too_large(params, **_kw):
    from botocore.exceptions import ClientError

    if int(params.get("ContentLength") or 0) > SINGLE_PUT_MAX:
        raise ClientError({"Error": {"Code": "EntityTooLarge", "Message": "Your proposed upload exceeds the "
                                     "maximum allowed size"}}, "PutObject")


def s3_limits(session):
    """STAND-IN: S3's single-PUT size limit on SESSION's clients (a boto3
    Session or a World's Clients)."""
    inner = getattr(session, "session", session)
    if not getattr(inner, "fv_s3_limits", False):
        inner.events.register("before-parameter-build.s3.PutObject", _refuse_too_large)
        inner.fv_s3_limits = True


class SecurityWorld(world_mod.World):
    """The member World plus the security account: its forensics key, its
    custody bucket (Object Lock, compliance mode by default) and the
    cross-account snapshot copy stand-in."""

    def __init__(self, retention_days=3650, **kw):
        super().__init__(**kw)
        self.retention_days = retention_days
        self._saved_copy = None

    def start(self):
        super().start()
        from moto.ec2.models.elastic_block_store import EBSBackend

        self._saved_copy = EBSBackend.copy_snapshot
        EBSBackend.copy_snapshot = _shared_copy_snapshot(self._saved_copy)
        s3_limits(self.session)
        self.security = assume(self.session, "arn:aws:iam::%s:role/%s" % (SECURITY, RESPONDER_ROLE), "setup")
        kms = self.security.client("kms")
        self.security_key_arn = kms.create_key(Description="forensics (security account)")["KeyMetadata"]["Arn"]
        s3 = self.security.client("s3")
        s3.create_bucket(Bucket=CUSTODY_BUCKET, ObjectLockEnabledForBucket=True,
                         CreateBucketConfiguration={"LocationConstraint": self.region})
        s3.put_object_lock_configuration(Bucket=CUSTODY_BUCKET, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": self.retention_days}}})
        self.activate_iam(self.security_key_arn)
        return self

    def stop(self):
        if self._saved_copy is not None:
            from moto.ec2.models.elastic_block_store import EBSBackend

            EBSBackend.copy_snapshot = self._saved_copy
            self._saved_copy = None
        super().stop()

    def key_in(self, region):
        return self.security_key_arn

    def security_in(self, region):
        """The security account's responder session in REGION."""
        return self.security

    def parameters(self, **extra):
        # The forensics key is the security account's (key-policy.json
        # lets members use it through EC2); the copy is made under it too.
        p = super().parameters(KmsKeyId=self.security_key_arn)
        p.update(extra)
        return p

    # ---- what the drills look at ---------------------------------------------------

    def security_snapshots(self):
        ec2 = self.security.client("ec2")
        return ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]

    def custody_records(self):
        s3 = self.security.client("s3")
        return [o["Key"] for o in s3.list_objects_v2(Bucket=CUSTODY_BUCKET).get("Contents", [])]

    def retain_until(self, key):
        head = self.security.client("s3").head_object(Bucket=CUSTODY_BUCKET, Key=key)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    @staticmethod
    def days_from_now(when):
        return (when - datetime.datetime.now(datetime.timezone.utc)).days


# Organizations' role in an account it created (the world's set-up in the
# other member accounts assumes it as the administrator: not evaluated).
SETUP_ROLE = "OrganizationAccountAccessRole"


class MultiWorld(SecurityWorld):
    """A fleet's world (issue 24): the security account and MEMBERS (the
    first is world.ACCOUNT) in REGIONS (the first is the stacks'
    GlobalResourcesRegion and holds the custody bucket). Each member's stack
    is in IAM (its starter, execution and instance roles: Deployment
    members), the security stack in every region (its key's replica); in
    every member account and region: the published forensics volume snapshot
    and its SSM parameter (World's STAND-IN: in moto's member account, to
    IAM the security account's, shared with the member, under the security
    key's replica of that region), the Run Command output bucket (one, the
    security account's). create_documents creates the documents in every
    location. STAND-IN: moto 5.2.5 makes a multi-Region key's ID mrk-<uuid>
    where AWS writes mrk-<32 hex> (the runbook's pattern); the security key
    is a single-Region key of moto's, copied into every other region by
    moto's ReplicateKey (same key ID, the region's ARN), as a replica is."""

    def __init__(self, members, regions, **kw):
        super().__init__(region=regions[0], **kw)
        if members[0] != MEMBER:
            raise ValueError("the first member is world.ACCOUNT (%s)" % MEMBER)
        self.members, self.regions = list(members), list(regions)
        self._admins = {}
        self._keys = {}
        self._security = {}
        self.snapshots = {}  # (member, region) -> the forensics volume snapshot there

    def start(self):
        super().start()
        from moto.kms.models import kms_backends

        key_id = self.security_key_arn.rsplit("/", 1)[1]
        self._keys[self.region] = self.security_key_arn
        self._security[self.region] = self.security
        self.snapshots[(MEMBER, self.region)] = self.forensics_snapshot
        for region in self.regions[1:]:
            home = kms_backends[SECURITY][self.region].keys[key_id]
            replica = copy.copy(home)  # STAND-IN: the replica (class docstring)
            replica.region, replica.arn = region, home.arn.replace(":%s:" % self.region, ":%s:" % region)
            kms_backends[SECURITY][region].keys[key_id] = replica
            self._keys[region] = replica.arn
            self._security[region] = assume(self.session, "arn:aws:iam::%s:role/%s" % (SECURITY, RESPONDER_ROLE),
                                            "setup", region=region)
        for member, region in self.locations():
            if (member, region) == (MEMBER, self.region):
                continue
            s = self.admin(member, region)
            ec2, kms = s.client("ec2"), s.client("kms")
            # As World.start: a volume of its own key in moto's member
            # account; IAM sees it as AWS has it (located_snapshots).
            key = kms.create_key(Description="forensics")["KeyMetadata"]["Arn"]
            vol = ec2.create_volume(AvailabilityZone=region + "a", Size=1, VolumeType="gp3", Encrypted=True,
                                    KmsKeyId=key)["VolumeId"]
            sid = ec2.create_snapshot(VolumeId=vol, Description="forensics volume")["SnapshotId"]
            ec2.delete_volume(VolumeId=vol)
            s.client("ssm").put_parameter(Name=world_mod.PARAMETER, Type="String", Value=sid)
            self.snapshots[(member, region)] = sid
            self.located_snapshots[sid] = (member, self._keys[region])
        self.activate_iam(self.security_key_arn)
        return self

    def admin(self, account, region):
        if (account, region) == (MEMBER, self.region):
            return self.session
        if (account, region) not in self._admins:
            if account == MEMBER:
                s = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                          region_name=region)
            else:
                s = assume(self.session, "arn:aws:iam::%s:role/%s" % (account, SETUP_ROLE), "setup", region=region)
            self._admins[(account, region)] = s
        return self._admins[(account, region)]

    def key_in(self, region):
        return self._keys[region]

    def security_in(self, region):
        return self._security[region]

    def create_documents(self, documents, per_location=None):
        """DOCUMENTS in every member account and region; PER_LOCATION(account,
        region, documents) -> the documents for that location (e.g. the
        runbook's fv:defaults as that location's member stack fills them)."""
        for member, region in self.locations():
            docs = per_location(member, region, documents) if per_location else documents
            ssm = self.admin(member, region).client("ssm")
            for name, doc in docs.items():
                kind = "Automation" if doc.get("schemaVersion") == "0.3" else "Command"
                ssm.create_document(Name=name, Content=json.dumps(doc), DocumentType=kind, DocumentFormat="JSON")

    def security_snapshots(self):
        return [dict(s, Region=region) for region in self.regions
                for s in self._security[region].client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]]
