"""The AWS side of a local runbook execution: moto (in process, mock_aws)
holding one member account's resources, the stand-ins moto lacks, and the
fault injection the drills use.

A fleet's world (accounts.MultiWorld) holds several member accounts and
regions: the stand-ins below answer for the account and region of the
client that calls (World._location).

Resources made by World.start(): a multi-Region KMS key, the published
forensics volume snapshot and its SSM parameter, the Run Command output
bucket, the suspect instance (optionally in an Auto Scaling group), and the
Command documents (CreateDocument with the rendered content).

STAND-INS (each labelled where it is coded; docs/deploy.md lists them):
- ssm DescribeInstanceInformation: moto 5.2.5 does not implement it; the
  world answers for its instance (PingStatus Online, or ConnectionLost).
- EBS state timing: moto finishes volumes, attachments, detaches and
  snapshots at once. An overlay on DescribeVolumes/DescribeSnapshots reports
  a resource as still transitioning ("creating", "attaching", "busy",
  "pending") or failed ("error"), as EBS would, while moto's model holds the
  final state.
- ec2 DescribeInstances: moto leaves out PlatformDetails; the world adds it.
- ec2 ModifyInstanceAttribute InstanceInitiatedShutdownBehavior: moto
  accepts it and drops it; the world stores it in moto's model.
- EBS Snapshot Lock (ec2 LockSnapshot, DescribeLockedSnapshots): not in
  moto 5.2.5. Requests are made by botocore's own client from its ec2
  model (botocore validates them against it; the stand-in adds the model's
  maximums, LockDuration 1-36500 days, CoolOffPeriod 1-72 hours, which
  botocore does not check); moto's EC2 responder
  gets the two actions, which keep the lock on moto's snapshot, and
  DeleteSnapshot refuses a snapshot whose lock has not expired, whoever
  asks (see snapshot_lock.py for the documented semantics it keeps).
- ec2 CreateSnapshots: moto 5.2.5 ignores InstanceSpecification
  ExcludeDataVolumeIds (it snapshots every attached volume); the world
  leaves the excluded volumes out, as EC2 does, and gives each snapshot of
  an encrypted volume the volume's KmsKeyId (moto leaves it out).
- kms DescribeKey: moto reports its aws/ebs key (alias/aws/ebs) as
  KeyManager CUSTOMER; keys the world lists in aws_managed_keys are
  reported as AWS managed, as KMS does for aws/ebs. (EBS's refusal to share
  a snapshot under an AWS managed key is not modelled: the runbook does not
  try; it reads KeyManager first.)
- autoscaling EnterStandby: moto 5.2.5 lowers the desired capacity below
  the group's minimum; EC2 Auto Scaling refuses that ("the instances can
  enter standby as long as the desired capacity ... after the instances
  are placed into standby is equal to or greater than the minimum capacity
  of the group", API_EnterStandby). The stand-in refuses it with a
  ValidationError (the code botocore's model gives for a request Auto
  Scaling rejects; the message is the stand-in's).
- SendCommand invocations: runcommand.py.

IAM (iam.py) is evaluated on every call once the world is set up
(activate_iam): the world's own set-up and inspection are each account's
administrator's (not evaluated); an execution's calls are its
AutomationAssumeRole's. Two resources are given to IAM as AWS has them, not
as moto holds them (STAND-IN, see activate_iam).
"""

import json
import os
import weakref

# moto loads thousands of public AMIs per region by default, which makes
# every world start take seconds; the runbook needs one Linux image.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

import boto3  # noqa: E402
import iam  # noqa: E402  (before the first client: every client carries its hook)
from botocore.awsrequest import AWSResponse  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402
from snapshot_lock import lock_stand_in  # noqa: E402

ACCOUNT = "123456789012"
SECURITY_ACCOUNT = "222222222222"
PARAMETER = "/forensics-volume/snapshot-id"
BUCKET = "forensics-output-123456789012"
ROLE = "arn:aws:iam::%s:role/Forensics-AutomationExecutionRole" % ACCOUNT
# What a wait sees while EBS is still working on the resource.
TRANSITIONAL = {
    "$.Volumes[0].State": "creating",
    "$.Volumes[0].Attachments[0].State": "attaching",
    "$.Snapshots[0].State": "pending",
}


_ALL_CLIENTS = weakref.WeakSet()
# Virtual time for the stand-ins whose state changes with time (CopySnapshot
# pending, request-rate buckets): set by service.AutomationService (its
# scheduler's time); None: no clock (a lone execution: copies complete at
# once, as before).
_CLOCK = {"now": None}


def all_clients():
    """Every Clients of the process (the scheduler carries their principal
    across switches)."""
    return list(_ALL_CLIENTS)


def set_clock(clock):
    """CLOCK: a callable giving virtual seconds (service.py), or None. A new
    clock starts the quotas afresh."""
    _CLOCK["now"] = clock
    QUOTAS.reset()


def now():
    """The shared virtual time in seconds, or None."""
    return _CLOCK["now"]() if _CLOCK["now"] is not None else None


# ---- Quotas that bite at fleet size (while a clock runs: service.py) -------------------
#
# Each holds while its cause does (not a one-shot fault); each is checked in
# a botocore hook on every client of the process (the engine's, custody.py's
# assumed-role sessions, the fleet tool's), before the call reaches moto, so
# botocore's own retries do not hide it (the stricter reading: Automation
# retries a throttled step only when its throttling-retry setting is on,
# UG automation-throttling-retry.html, and never an aws:executeScript).
#
# - COPY: "Concurrent snapshot copies per destination Region: 20", not
#   adjustable (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-resource-quotas.html).
#   A copy counts while it is pending in the destination account and
#   Region; the 21st CopySnapshot fails with ResourceLimitExceeded (the EC2
#   error code for an exceeded resource limit, API reference
#   errors-overview.html). STAND-IN (EBS timing): moto completes a copy at
#   once; here a copy stays "pending" (DescribeSnapshots, State and
#   Progress) for Quotas.copy_seconds of virtual time. How long a copy
#   takes is not documented (size, changed blocks, distance): 900 s is an
#   assumption; drills set it.
# - RATE: EC2 throttles each API per account and Region with a token bucket
#   and answers RequestLimitExceeded
#   (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html:
#   "Each request that you make removes one token from the API's bucket",
#   refilled every second up to the bucket's size). The per-API sizes for
#   CreateVolume, CreateSnapshot, CreateSnapshots and CopySnapshot were not
#   retrieved (design/FACTS.md): UNVERIFIED assumption, Quotas.buckets,
#   20 tokens refilled at 2 per second, smaller than the page's example
#   bucket for a non-mutating API (100, refilling 20/s).
# - GRANTS: "Grants per KMS key: 50,000", customer managed keys, adjustable
#   (https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html;
#   the page's current table has no per-grantee-principal quota, earlier
#   versions had "Grants for a given principal per CMK: 500"); past it "requests
#   to create an additional resource of that type generate an
#   LimitExceededException". Each quota is per account and Region, so a
#   multi-Region key's replica has its own count (Quotas.grant_key: Region
#   and key ID). EBS makes a grant for every encrypted volume (the page's
#   example: "Amazon EBS creates a grant for each volume") and, as the
#   runbook's kms:CreateGrant says, for every CopySnapshot under a key:
#   here one grant per CreateVolume or CopySnapshot under a customer key
#   (the call's KmsKeyId, else an encrypted source snapshot's key), on that
#   key, counted from the call on. A volume's grant is retired when the
#   volume is deleted (grants.md: a service "retires the grant as soon as
#   its task is complete"; the page's example ties the count to volumes in
#   use); a copy's grant is never retired here (UNVERIFIED when EBS retires
#   it: kept, the stricter reading). UNVERIFIED how EC2 surfaces KMS's
#   refusal: here the CreateVolume or CopySnapshot call itself is refused,
#   code LimitExceededException, a message naming the quota (EC2 may as
#   well accept the call and fail the volume or copy later: the runbook
#   fails either way, see docs/deploy.md "Fleet"). Keys the world reports
#   as AWS managed are counted too (the quota exempts them: stricter).
COPY_QUOTA = 20
GRANT_QUOTA = 50000
THROTTLED = ("CreateVolume", "CreateSnapshot", "CreateSnapshots", "CopySnapshot")


class Quotas:
    def __init__(self):
        self.copy_seconds = 900.0
        self.copy_quota = COPY_QUOTA
        self.buckets = {api: (20.0, 2.0) for api in THROTTLED}  # api -> (size, refill per second)
        self.grant_quota = GRANT_QUOTA
        self.reset()

    def reset(self):
        self.copies = {}  # snapshot_id -> (account, region, done_at)
        self.tokens = {}  # (account, region, api) -> (tokens, at)
        self.refused = []  # (api, account, region, code) of every call a quota refused
        self.grants = {}  # grant_key -> grants held on the key (a drill may seed it)
        self.grants_made = {}  # grant_key -> grants made by calls since the clock started
        self.volume_grants = {}  # volume_id -> grant_key of its grant (retired with the volume)

    @staticmethod
    def grant_key(key_id, region):
        """Whose quota a grant counts against: (Region, key ID) of a key ARN,
        else (REGION, KEY_ID as given)."""
        if key_id.startswith("arn:"):
            return key_id.split(":")[3], key_id.rsplit("/", 1)[1]
        return region, key_id

    def pending_copies(self, account, region, t):
        return [sid for sid, (a, r, done) in self.copies.items() if (a, r) == (account, region) and t < done]

    def before(self, client, model, params, context):
        t = now()
        if t is None or model.service_model.service_name != "ec2" or model.name not in THROTTLED:
            return
        account = _caller_account(client)
        region = client.meta.region_name
        size, refill = self.buckets[model.name]
        key = (account, region, model.name)
        tokens, at = self.tokens.get(key, (size, t))
        tokens = min(size, tokens + (t - at) * refill)
        if tokens < 1:
            self.tokens[key] = (tokens, t)
            self._refuse(model.name, account, region, "RequestLimitExceeded", "Request limit exceeded.")
        self.tokens[key] = (tokens - 1, t)
        if model.name == "CopySnapshot":
            pending = self.pending_copies(account, region, t)
            if len(pending) >= self.copy_quota:
                self._refuse(model.name, account, region, "ResourceLimitExceeded",
                             "You have reached the limit of %d concurrent snapshot copies in %s (%d pending)"
                             % (self.copy_quota, region, len(pending)))
        key = self._grant_for(model.name, account, region, params)
        if key is not None:
            if self.grants.get(key, 0) >= self.grant_quota:
                self._refuse(model.name, account, region, "LimitExceededException",
                             "KMS LimitExceededException: the KMS key %s in %s holds %d grants, its quota "
                             "(Grants per KMS key: %d); EBS cannot create the grant this %s needs"
                             % (key[1], key[0], self.grants[key], self.grant_quota, model.name))
            context["fv_grant"] = key

    def _grant_for(self, api, account, region, params):
        """The key a CreateVolume or CopySnapshot makes a grant on, or None."""
        if api not in ("CreateVolume", "CopySnapshot"):
            return None
        body = params.get("body") if isinstance(params, dict) else None
        body = body if isinstance(body, dict) else {}
        key_id = body.get("KmsKeyId")
        if not key_id and api == "CreateVolume" and body.get("SnapshotId"):
            from moto.ec2.models import ec2_backends
            snap = ec2_backends[account][region].snapshots.get(body["SnapshotId"])
            key_id = snap.kms_key_id if snap is not None else None
        return self.grant_key(key_id, region) if key_id else None

    def after_grant(self, parsed, context):
        key = context.get("fv_grant")
        if now() is None or key is None or parsed.get("Error"):
            return
        self.grants[key] = self.grants.get(key, 0) + 1
        self.grants_made[key] = self.grants_made.get(key, 0) + 1
        if parsed.get("VolumeId"):
            self.volume_grants[parsed["VolumeId"]] = key

    @staticmethod
    def deleting(params, context):
        body = params.get("body") if isinstance(params, dict) else None
        context["fv_deleting"] = body.get("VolumeId") if isinstance(body, dict) else None

    def retire_volume_grant(self, parsed, context):
        key = self.volume_grants.pop(context.get("fv_deleting"), None) if not parsed.get("Error") else None
        if key is not None:
            self.grants[key] -= 1

    def _refuse(self, api, account, region, code, message):
        self.refused.append((api, account, region, code))
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": 400 if code != "RequestLimitExceeded" else 503}},
                          api)

    def after_copy(self, client, parsed):
        t = now()
        if t is None or "SnapshotId" not in parsed:
            return
        self.copies[parsed["SnapshotId"]] = (_caller_account(client), client.meta.region_name,
                                             t + self.copy_seconds)

    def overlay(self, parsed):
        t = now()
        if t is None:
            return
        for snap in parsed.get("Snapshots", []):
            copy = self.copies.get(snap["SnapshotId"])
            if copy and t < copy[2]:
                snap["State"] = "pending"
                done = 1 - (copy[2] - t) / self.copy_seconds if self.copy_seconds else 1
                snap["Progress"] = "%d%%" % max(0, min(99, int(done * 100)))


QUOTAS = Quotas()


def _caller_account(client):
    try:
        p = iam._client_principal(client)
    except ClientError:
        return ACCOUNT
    return p.account if p is not None and p.account else ACCOUNT


def _quota_hooks(client):
    events = client.meta.events
    events.register("before-call.ec2.*", lambda model, params, context, **kw: QUOTAS.before(
        client, model, params, context), unique_id="fv-quota-before-%d" % id(client))
    for api in ("CreateVolume", "CopySnapshot"):
        events.register("after-call.ec2." + api, lambda parsed, context, **kw: QUOTAS.after_grant(parsed, context),
                        unique_id="fv-quota-grant-%s-%d" % (api, id(client)))
    events.register("before-call.ec2.DeleteVolume", lambda params, context, **kw: QUOTAS.deleting(params, context),
                    unique_id="fv-quota-deleting-%d" % id(client))
    events.register("after-call.ec2.DeleteVolume", lambda parsed, context, **kw: QUOTAS.retire_volume_grant(
        parsed, context), unique_id="fv-quota-retire-%d" % id(client))
    events.register("after-call.ec2.CopySnapshot", lambda parsed, **kw: QUOTAS.after_copy(client, parsed),
                    unique_id="fv-quota-copy-%d" % id(client))
    events.register("after-call.ec2.DescribeSnapshots", lambda parsed, **kw: QUOTAS.overlay(parsed),
                    unique_id="fv-quota-overlay-%d" % id(client))


def _wrap_create_client():
    import botocore.session

    original = botocore.session.Session.create_client
    if getattr(original, "_fv_quota", False):
        return

    def create_client(self, service_name, *args, **kwargs):
        client = original(self, service_name, *args, **kwargs)
        if service_name == "ec2":
            _quota_hooks(client)
        return client

    create_client._fv_quota = True
    botocore.session.Session.create_client = create_client


_wrap_create_client()


def _share_data_loader():
    """Every botocore session of the process reads botocore's data files
    (service models, endpoints: a JSON decode of megabytes each) through one
    Loader, whose instance cache then serves them all. Within one session
    botocore already hands the same loaded data to every client; the fleet
    tool and custody.py make a boto3 Session per assumed role, and a fleet
    of several accounts and regions makes hundreds (the fleet drill spent
    half its time decoding the same files again)."""
    import botocore.loaders
    import botocore.session

    if getattr(botocore.session.create_loader, "_fv_shared", False):
        return
    original = botocore.loaders.create_loader
    loaders = {}

    def create_loader(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = original(search_path_string)
        return loaders[search_path_string]

    create_loader._fv_shared = True
    botocore.session.create_loader = create_loader


_share_data_loader()


class Clients:
    """boto3 clients shared by every world of a process: loading botocore's
    service models is what costs (a quarter second per client), so each
    service's client is made once and routed to the current world's hooks.
    Quacks like a boto3 Session for the engine and for executeScript."""

    def __init__(self, region, session=None):
        self.session = session or boto3.Session(region_name=region, aws_access_key_id="testing",
                                                aws_secret_access_key="testing")
        self.region_name = region
        self.world = None
        self._clients = {}
        # IAM (iam.py): whose calls these clients make. None: the one the
        # credentials belong to (the world's administrator for World's own).
        self.principal = None
        _ALL_CLIENTS.add(self)
        events = self.session.events
        events.register_first("before-call.*.*", lambda **kw: self.world._inject(**kw))
        events.register("before-call.ssm.DescribeInstanceInformation",
                        lambda **kw: self.world._describe_instance_information(clients=self, **kw))
        events.register("after-call.ec2.DescribeInstances", lambda **kw: self.world._platform_details(**kw))
        events.register("before-call.ec2.ModifyInstanceAttribute",
                        lambda **kw: self.world._shutdown_behaviour(clients=self, **kw))
        events.register("after-call.ec2.DescribeVolumes", lambda **kw: self.world._overlay_volumes(**kw))
        events.register("after-call.ec2.DescribeSnapshots", lambda **kw: self.world._overlay_snapshots(**kw))
        events.register("after-call.kms.DescribeKey", lambda **kw: self.world._key_manager(**kw))

    def client(self, service, *args, **kwargs):
        if args or kwargs:
            raise ValueError("only client(service) is implemented here")
        if service not in self._clients:
            self._clients[service] = iam.install(self.session.client(service), lambda: self.principal)
        return self._clients[service]


_CLIENTS = {}


class World:
    """moto with the member account's resources; use as a context manager."""

    def __init__(self, region="eu-west-1", instance_type="r6i.large", managed=True, auto_scaling=False,
                 termination_protection=False, shutdown_behavior="terminate", min_size=1):
        self.region = region
        self.instance_type = instance_type
        self.managed = managed
        self.auto_scaling = auto_scaling
        # The group's MinSize once the instance is in it (desired is 1):
        # 1, minimum == desired, is the common setup (issue 20, F2).
        self.min_size = min_size
        self.initial_protection = (termination_protection, shutdown_behavior)
        self.volume_overlay = {}  # volume_id -> {"State": s} and/or {"Attachment": s}
        self.snapshot_overlay = {}  # snapshot_id -> state
        self.stuck = None  # (operation, selector) while a wait step is held
        self.fail_calls = 0  # the next N API calls fail (transient API error)
        self.fail_code = "ServiceUnavailable"  # the error code they fail with
        self.injected = []  # the calls that were failed on purpose
        self._devices = {}
        self._mock = None
        self.fail_lock = None  # an error code: the next LockSnapshot fails with it
        self.aws_managed_keys = set()  # key IDs KMS reports as AWS managed (aws/ebs)
        self.unmanaged = set()  # further instances whose agent is not connected (ConnectionLost)
        self.service = None  # service.AutomationService while one runs
        # A fleet's world (accounts.MultiWorld) holds more member accounts
        # and regions; IAM is resolved for all of them (activate_iam).
        self.members = [ACCOUNT]
        self.regions = [region]
        # Forensics volume snapshots of the other locations: id -> (member,
        # the security account's key ARN in its region); see activate_iam.
        self.located_snapshots = {}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._mock = mock_aws()
        self._mock.start()
        lock_stand_in(self)
        if self.region not in _CLIENTS:
            _CLIENTS[self.region] = Clients(self.region)
        self.session = _CLIENTS[self.region]
        self.session.world = self
        self.session.principal = None
        # The world's own set-up and inspection are its administrator's; the
        # runbook's calls are the execution role's (iam.automation).
        iam.deactivate()
        iam.register_credentials("testing", iam.Principal.admin(ACCOUNT))
        ec2 = self.session.client("ec2")
        kms = self.session.client("kms")
        # Single-Region key: moto writes multi-Region key IDs as mrk-<uuid>,
        # where AWS writes mrk-<32 hex> (the runbook's pattern knows AWS's).
        self.key_arn = kms.create_key(Description="forensics")["KeyMetadata"]["Arn"]
        az = self.region + "a"
        vol = ec2.create_volume(AvailabilityZone=az, Size=1, VolumeType="gp3", Encrypted=True,
                                KmsKeyId=self.key_arn)["VolumeId"]
        self.forensics_snapshot = ec2.create_snapshot(VolumeId=vol, Description="forensics volume")["SnapshotId"]
        ec2.delete_volume(VolumeId=vol)
        self.session.client("ssm").put_parameter(Name=PARAMETER, Type="String", Value=self.forensics_snapshot)
        self.session.client("s3").create_bucket(Bucket=BUCKET,
                                                CreateBucketConfiguration={"LocationConstraint": self.region})
        image = "ami-0123456789abcdef0"  # moto runs any image ID as x86_64 Linux
        inst = ec2.run_instances(ImageId=image, InstanceType=self.instance_type, MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": az})["Instances"][0]
        self.instance_id = inst["InstanceId"]
        protect, behaviour = self.initial_protection
        ec2.modify_instance_attribute(InstanceId=self.instance_id, DisableApiTermination={"Value": protect})
        ec2.modify_instance_attribute(InstanceId=self.instance_id,
                                      InstanceInitiatedShutdownBehavior={"Value": behaviour})
        if self.auto_scaling:
            asg = self.session.client("autoscaling")
            asg.create_launch_configuration(LaunchConfigurationName="web", ImageId=image,
                                            InstanceType=self.instance_type)
            asg.create_auto_scaling_group(AutoScalingGroupName="web", LaunchConfigurationName="web",
                                          MinSize=0, MaxSize=3, DesiredCapacity=0, AvailabilityZones=[az])
            asg.attach_instances(InstanceIds=[self.instance_id], AutoScalingGroupName="web")
            asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=self.min_size)
        self.activate_iam()
        return self

    def activate_iam(self, security_key_arn=None):
        """IAM evaluated from here on (iam.py): the rendered templates
        resolved for this world's accounts, region and key."""
        key = (security_key_arn or self.key_arn).rsplit("/", 1)[1]
        deployment = iam.Deployment(member=ACCOUNT, security=SECURITY_ACCOUNT, region=self.region, physical={
            "security": {"ForensicsKey": key, "OutputBucket": BUCKET,
                         "CustodyBucket": "forensics-custody-%s" % SECURITY_ACCOUNT}},
            members=self.members, regions=self.regions)
        self.iam = iam.Policies.from_templates(deployment)
        # The security account's responder (CentralResponderRoleName): the
        # customer's own role, not the templates'; here an administrator of
        # that account, so what it may do in the member account is the
        # starter role's trust and policies.
        self.iam.add_role("arn:aws:iam::%s:role/Forensics-Responder" % SECURITY_ACCOUNT, {"Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % SECURITY_ACCOUNT},
            "Action": "sts:AssumeRole"}]}, policies=[iam.ADMINISTRATOR])
        facts = iam.Facts(self.region, accounts=self.members + [SECURITY_ACCOUNT], regions=self.regions)
        # STAND-IN (IAM only): the published forensics volume snapshot and the
        # Run Command output bucket live in moto's member account (moto
        # cannot create a volume from another account's snapshot); on AWS both
        # are the security account's (security.json, deploy/publish.sh), the
        # snapshot shared with the member and encrypted under the forensics
        # key. IAM sees them as AWS has them.
        facts.overrides[self.forensics_snapshot] = {"account": SECURITY_ACCOUNT, "shared_with": {ACCOUNT},
                                                    "kms_key_id": security_key_arn or self.key_arn}
        for sid, (member, key_arn) in self.located_snapshots.items():
            facts.overrides[sid] = {"account": SECURITY_ACCOUNT, "shared_with": {member}, "kms_key_id": key_arn}
        facts.overrides["s3:" + BUCKET] = {"account": SECURITY_ACCOUNT}
        self.iam_facts = facts
        # The security stack's creation: KMS refuses a key policy that locks
        # out its creator (iam.create_key_check, F4).
        iam.create_key_check(self.iam, key, iam.Principal(
            "arn:aws:iam::%s:role/%s" % (SECURITY_ACCOUNT, iam.DEPLOYER_ROLE), policies=[iam.ADMINISTRATOR]))
        iam.activate(self.iam, facts)

    def locations(self):
        """(member account, region) of every location of the world."""
        return [(m, r) for m in self.members for r in self.regions]

    def admin(self, account, region):
        """The administrator's session of ACCOUNT in REGION (set-up and
        inspection: not evaluated)."""
        if (account, region) != (ACCOUNT, self.region):
            raise ValueError("this world holds %s in %s only" % (ACCOUNT, self.region))
        return self.session

    def key_in(self, region):
        """The forensics key's ARN in REGION (a multi-Region key: its replica)."""
        return self.key_arn

    def create_documents(self, documents):
        ssm = self.session.client("ssm")
        for name, doc in documents.items():
            kind = "Automation" if doc.get("schemaVersion") == "0.3" else "Command"
            ssm.create_document(Name=name, Content=json.dumps(doc), DocumentType=kind, DocumentFormat="JSON")

    def stop(self):
        if self.service is not None:
            self.service.stop()
            self.service = None
        if self._mock is not None:
            iam.deactivate()
            lock_stand_in(None)
            self._mock.stop()
            self._mock = None

    def parameters(self, **extra):
        """The runbook parameters a responder would pass in this account."""
        p = {"InstanceId": self.instance_id, "CaseId": "IR-2026-042", "Examiner": "jdoe",
             "KmsKeyId": self.key_arn, "SecurityAccountId": SECURITY_ACCOUNT,
             "OutputS3BucketName": BUCKET, "AutomationAssumeRole": ROLE}
        p.update(extra)
        return p

    # ---- hooks --------------------------------------------------------------------

    def _inject(self, model, **_kw):
        """Fault: the next N calls fail as a throttled or failing AWS would."""
        if self.fail_calls > 0:
            self.fail_calls -= 1
            self.injected.append(model.name)
            raise ClientError({"Error": {"Code": self.fail_code, "Message": "injected by the drill"}},
                              model.name)

    def _location(self, clients):
        """(account, region) of CLIENTS' calls: the account of whom they act
        as now (a fleet's world has several members), else the member's."""
        if clients is None:
            return ACCOUNT, self.region
        p = iam.session_principal(clients)
        return (p.account if p is not None and p.account else ACCOUNT), clients.region_name

    def _describe_instance_information(self, params, clients=None, **_kw):
        # STAND-IN: moto lacks ssm:DescribeInstanceInformation. Request
        # validated by botocore before this hook; answer shaped as the API
        # reference documents InstanceInformation.
        # before-call hands the serialized request: its JSON body carries
        # the filter.
        body = params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body) if isinstance(body, (bytes, str)) \
            else params
        ids = []
        for f in request.get("InstanceInformationFilterList", []):
            if f["key"] == "InstanceIds":
                ids += f["valueSet"]
        items = []
        from moto.ec2.models import ec2_backends
        account, region = self._location(clients)
        known = [i.id for r in ec2_backends[account][region].reservations.values() for i in r.instances
                 if i.state != "terminated"]
        for iid in sorted(known):
            if ids and iid not in ids:
                continue
            online = self.managed if iid == self.instance_id else iid not in self.unmanaged
            items.append({"InstanceId": iid, "PingStatus": "Online" if online else "ConnectionLost",
                          "PlatformType": "Linux", "PlatformName": "Amazon Linux", "AgentVersion": "3.3.1142.0",
                          "ResourceType": "EC2Instance"})
        return AWSResponse("https://ssm.%s.amazonaws.com/" % region, 200, {}, None), \
            {"InstanceInformationList": items}

    def hold_attached(self, volume_id, instance_id):
        """STAND-IN (EBS timing): the guest did not release the disk; EC2
        keeps the attachment, reported "busy", until a forced detach."""
        ec2 = self.session.client("ec2")
        device = self._devices.get(volume_id, "/dev/sdf")
        self.fail_calls = 0
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
        self.volume_overlay.setdefault(volume_id, {})["Attachment"] = "busy"

    def _shutdown_behaviour(self, params, clients=None, **_kw):
        # STAND-IN: moto 5.2.5 answers ModifyInstanceAttribute with
        # InstanceInitiatedShutdownBehavior but does not store it (its
        # handler list lacks the attribute); the world stores it in moto's
        # instance model, which DescribeInstanceAttribute reads.
        body = params.get("body", {})
        value = body.get("InstanceInitiatedShutdownBehavior.Value") if isinstance(body, dict) else None
        if value is not None:
            from moto.ec2.models import ec2_backends
            account, region = self._location(clients)
            instance = ec2_backends[account][region].get_instance(body["InstanceId"])
            instance.instance_initiated_shutdown_behavior = value

    def _key_manager(self, parsed, **_kw):
        # STAND-IN: aws/ebs is an AWS managed key (see the module docstring).
        meta = parsed.get("KeyMetadata", {})
        if meta.get("KeyId") in self.aws_managed_keys:
            meta["KeyManager"] = "AWS"

    def _platform_details(self, parsed, **_kw):
        # STAND-IN: moto leaves out Instance.PlatformDetails, which EC2
        # always returns ("Linux/UNIX" for this AMI).
        for r in parsed.get("Reservations", []):
            for i in r.get("Instances", []):
                i.setdefault("PlatformDetails", "Linux/UNIX")

    def _overlay_volumes(self, parsed, **_kw):
        # STAND-IN: EBS timing (see the module docstring).
        for v in parsed.get("Volumes", []):
            over = self.volume_overlay.get(v["VolumeId"], {})
            if "State" in over:
                v["State"] = over["State"]
            if "Attachment" in over:
                if v.get("Attachments"):
                    v["Attachments"][0]["State"] = over["Attachment"]
                else:
                    v["State"] = "in-use"
                    v["Attachments"] = [{"VolumeId": v["VolumeId"], "InstanceId": self.instance_id,
                                         "Device": "/dev/sdf", "State": over["Attachment"]}]
            if self.stuck == "$.Volumes[0].State":
                v["State"] = TRANSITIONAL[self.stuck]
            elif self.stuck == "$.Volumes[0].Attachments[0].State" and v.get("Attachments"):
                v["Attachments"][0]["State"] = TRANSITIONAL[self.stuck]

    def _overlay_snapshots(self, parsed, **_kw):
        for s in parsed.get("Snapshots", []):
            if s["SnapshotId"] in self.snapshot_overlay:
                s["State"] = self.snapshot_overlay[s["SnapshotId"]]
            if self.stuck == "$.Snapshots[0].State":
                s["State"] = TRANSITIONAL[self.stuck]

    # ---- final state, for the invariants -----------------------------------------------

    def volumes_of(self, execution_id):
        ec2 = self.session.client("ec2")
        vols = ec2.describe_volumes(Filters=[{"Name": "tag:forensics-volume:execution-id",
                                              "Values": [execution_id]}])["Volumes"]
        return vols

    def snapshots_of(self, volume_id):
        ec2 = self.session.client("ec2")
        snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [volume_id]}])
        return [s for s in snaps["Snapshots"] if s["SnapshotId"] != self.forensics_snapshot]

    def protection(self):
        ec2 = self.session.client("ec2")
        term = ec2.describe_instance_attribute(InstanceId=self.instance_id, Attribute="disableApiTermination")
        stop = ec2.describe_instance_attribute(InstanceId=self.instance_id,
                                               Attribute="instanceInitiatedShutdownBehavior")
        state = None
        if self.auto_scaling:
            asg = self.session.client("autoscaling")
            inst = asg.describe_auto_scaling_instances(InstanceIds=[self.instance_id])["AutoScalingInstances"]
            group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
            state = (inst[0]["LifecycleState"] if inst else "none",
                     "scale-in protected" if inst and inst[0].get("ProtectedFromScaleIn") else "unprotected",
                     "desired %d min %d" % (group["DesiredCapacity"], group["MinSize"]),
                     "suspended " + ",".join(sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", []))))
        tags = self.session.client("ec2").describe_tags(Filters=[
            {"Name": "resource-id", "Values": [self.instance_id]},
            {"Name": "key", "Values": ["forensics-volume:protection"]}])["Tags"]
        return (term["DisableApiTermination"]["Value"], stop["InstanceInitiatedShutdownBehavior"]["Value"], state,
                "tagged" if tags else "untagged")
