"""The rendered CloudFormation templates, resolved as CloudFormation would, and the policies they put in force."""

import functools
import json
import re

from .common import DEPLOYER_ROLE, ORG_ID
from .evaluate import Check, evaluate


class Deployment:
    """The drill world's stacks: the security stack in SECURITY and the
    member stack in MEMBER, both in REGION (their GlobalResourcesRegion), with
    PHYSICAL IDs for what CloudFormation would generate ({logical: id}, e.g.
    the KMS key's ID) and PARAMETERS overriding the defaults per template.
    A fleet's world (issue 24) names more MEMBERS (MEMBER first; the member
    stack set's IAM resources are created in REGION only, InGlobalRegion)
    and more REGIONS (REGION first): the security stack is then also
    resolved in every other region, as deploy/docs say it is deployed there
    (PrimaryKeyArn: the home key, its ForensicsReplicaKey keeping the home
    key's ID, as a multi-Region replica does)."""

    def __init__(self, member, security, region, partition="aws", org_id=ORG_ID, physical=None,
                 parameters=None, members=None, regions=None):
        self.member = member
        self.security = security
        self.region = region
        self.members = [member] + [m for m in (members or []) if m != member]
        self.regions = [region] + [r for r in (regions or []) if r != region]
        self.partition = partition
        self.org_id = org_id
        self.physical = dict(physical or {})
        self.parameters = parameters or {}


class TemplateError(Exception):
    pass


class Stack:
    """One rendered template resolved as CloudFormation would for one
    account and region: parameters (defaults, then the given values),
    pseudo parameters, conditions, Ref, Fn::Sub, Fn::GetAtt, Fn::If,
    Fn::Join, Fn::Equals/And/Or/Not; resources whose Condition is false are
    left out."""

    def __init__(self, template, account, region, partition, parameters, physical, name):
        self.t = template
        self.account, self.region, self.partition, self.name = account, region, partition, name
        self.params = {}
        for pname, spec in template.get("Parameters", {}).items():
            if pname in parameters:
                self.params[pname] = str(parameters[pname])
            elif "Default" in spec:
                self.params[pname] = str(spec["Default"])
            else:
                raise TemplateError("%s: parameter %s has no value" % (name, pname))
        self.pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": partition,
                       "AWS::StackName": name, "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
        self.physical = physical
        self._conditions = {}
        self.resources = {k: v for k, v in template["Resources"].items()
                          if "Condition" not in v or self.condition(v["Condition"])}

    def condition(self, name):
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.t["Conditions"][name]))
        return self._conditions[name]

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        if name in self.pseudo:
            return self.pseudo[name]
        res = self.t["Resources"].get(name)
        if res is None:
            raise TemplateError("%s: Ref to unknown %s" % (self.name, name))
        return self.physical_id(name, res)

    def physical_id(self, logical, res):
        if logical in self.physical:
            return self.physical[logical]
        props = res.get("Properties", {})
        kind = res["Type"]
        named = {"AWS::IAM::Role": "RoleName", "AWS::S3::Bucket": "BucketName", "AWS::SSM::Document": "Name",
                 "AWS::SSM::Parameter": "Name", "AWS::IAM::ManagedPolicy": "ManagedPolicyName"}
        value = self.resolve(props[named[kind]]) if kind in named and named[kind] in props else \
            "%s-%s-GENERATED" % (self.name, logical)  # CloudFormation's generated name: stack-logical-suffix
        if kind == "AWS::IAM::ManagedPolicy":
            return "arn:%s:iam::%s:policy/%s" % (self.partition, self.account, value)
        return value

    def getatt(self, logical, attr):
        res = self.t["Resources"][logical]
        pid = self.physical_id(logical, res)
        if res["Type"] == "AWS::IAM::Role" and attr == "Arn":
            return "arn:%s:iam::%s:role/%s" % (self.partition, self.account, pid)
        if res["Type"] == "AWS::S3::Bucket" and attr == "Arn":
            return "arn:%s:s3:::%s" % (self.partition, pid)
        if res["Type"] in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey") and attr == "Arn":
            return "arn:%s:kms:%s:%s:key/%s" % (self.partition, self.region, self.account, pid)
        raise TemplateError("%s: Fn::GetAtt %s.%s is not modelled" % (self.name, logical, attr))

    def sub(self, text, extra=None):
        def one(m):
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if extra and inner in extra:
                return str(extra[inner])
            if "." in inner and not inner.startswith("AWS::"):
                logical, attr = inner.split(".", 1)
                return self.getatt(logical, attr)
            return str(self.ref(inner))
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            return [x for x in (self.resolve(v) for v in node) if x is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return self.ref(v)
            if k == "Fn::Sub":
                if isinstance(v, list):
                    return self.sub(v[0], {kk: self.resolve(vv) for kk, vv in v[1].items()})
                return self.sub(v)
            if k == "Fn::GetAtt":
                return self.getatt(*(v if isinstance(v, list) else v.split(".", 1)))
            if k == "Fn::If":
                return self.resolve(v[1] if self.condition(v[0]) else v[2])
            if k == "Fn::Join":
                return v[0].join(str(x) for x in self.resolve(v[1]))
            if k == "Fn::Equals":
                a, b = self.resolve(v[0]), self.resolve(v[1])
                return str(a) == str(b)
            if k == "Fn::And":
                return all(self.resolve(x) for x in v)
            if k == "Fn::Or":
                return any(self.resolve(x) for x in v)
            if k == "Fn::Not":
                return not self.resolve(v[0])
            if k == "Condition":
                return self.condition(v)
            if k.startswith("Fn::"):
                raise TemplateError("%s: %s is not modelled" % (self.name, k))
        return {k: self.resolve(v) for k, v in node.items()}


class Role:
    def __init__(self, arn, trust, policies, managed, tags):
        self.arn, self.trust, self.policies, self.managed, self.tags = arn, trust, policies, managed, tags




def default_key_policy(account, partition="aws"):
    """KMS's default key policy (key-policy-default.html): the account."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": "arn:%s:iam::%s:root" % (partition, account)}, "Action": "kms:*", "Resource": "*"}]}


class Policies:
    """Every policy of the deployment: roles (trust, inline and managed
    policies), bucket policies, key policies."""

    def __init__(self):
        self.roles = {}  # role ARN -> Role
        self.managed = {}  # policy ARN -> document
        self.unevaluated = set()  # AWS managed policy ARNs attached but not modelled
        self.buckets = {}  # bucket name -> policy document
        self.keys = {}  # key ID -> key policy document
        self.key_accounts = {}  # key ID -> account
        self.bucket_accounts = {}  # bucket name -> account (S3 ARNs have no account field)
        self.stacks = {}

    @classmethod
    def from_templates(cls, deployment, rendered=None):
        """Resolve the rendered templates (fvdeploy.render_all(), the bytes
        deploy/render.sh writes) for DEPLOYMENT."""
        if rendered is None:
            rendered = _rendered_templates()
        d = deployment
        pol = cls()
        sec_params = {"OrganizationId": d.org_id, "GlobalResourcesRegion": d.region,
                      "StackDeployerRoleName": DEPLOYER_ROLE}
        sec_params.update(d.parameters.get("security", {}))
        sec = Stack(rendered["cloudformation/forensics-security.json"], d.security, d.region, d.partition,
                    sec_params, d.physical.get("security", {}), "forensics-security")
        mem_params = {"SecurityAccountId": d.security, "GlobalResourcesRegion": d.region,
                      "KmsKeyId": sec.ref("ForensicsKey"), "OutputBucketName": sec.ref("OutputBucket"),
                      "CreateInstanceProfile": "true"}
        mem_params.update(d.parameters.get("member", {}))
        mem = Stack(rendered["cloudformation/forensics-member.json"], d.member, d.region, d.partition,
                    mem_params, d.physical.get("member", {}), "forensics-member")
        pol.stacks = {"security": sec, "member": mem}
        for region in d.regions[1:]:
            params = dict(sec_params, PrimaryKeyArn=sec.getatt("ForensicsKey", "Arn"))
            physical = dict(d.physical.get("security", {}))
            physical.setdefault("ForensicsReplicaKey", sec.ref("ForensicsKey"))
            pol.stacks["security:%s" % region] = Stack(
                rendered["cloudformation/forensics-security.json"], d.security, region, d.partition, params,
                physical, "forensics-security")
        for member in d.members[1:]:
            pol.stacks["member:%s" % member] = Stack(
                rendered["cloudformation/forensics-member.json"], member, d.region, d.partition, mem_params,
                d.physical.get("member", {}), "forensics-member")
        for stack in pol.stacks.values():
            pol._add_stack(stack)
        return pol

    def _add_stack(self, stack):
        for logical, res in stack.resources.items():
            if res["Type"] == "AWS::IAM::ManagedPolicy":
                self.managed[stack.ref(logical)] = stack.resolve(res["Properties"]["PolicyDocument"])
        for logical, res in stack.resources.items():
            kind, props = res["Type"], res.get("Properties", {})
            if kind == "AWS::IAM::Role":
                arn = stack.getatt(logical, "Arn")
                inline = [stack.resolve(p["PolicyDocument"]) for p in props.get("Policies", [])]
                managed = stack.resolve(props.get("ManagedPolicyArns", []))
                tags = {t["Key"]: t["Value"] for t in stack.resolve(props.get("Tags", []))}
                self.roles[arn] = Role(arn, stack.resolve(props["AssumeRolePolicyDocument"]), inline, managed, tags)
            elif kind == "AWS::S3::BucketPolicy":
                self.buckets[stack.resolve(props["Bucket"])] = stack.resolve(props["PolicyDocument"])
            elif kind == "AWS::S3::Bucket":
                self.bucket_accounts[stack.ref(logical)] = stack.account
            elif kind in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
                key_id = stack.ref(logical)
                policy = stack.resolve(props["KeyPolicy"])
                self.keys.setdefault(key_id, policy)  # the home region's (the first stack's)
                self.keys[(key_id, stack.region)] = policy  # a replica's: ViaService names its region
                self.key_accounts[key_id] = stack.account

    def add_role(self, arn, trust, policies=(), managed=(), tags=None):
        """A role the templates do not make (the customer's own, e.g. the responder)."""
        self.roles[arn] = Role(arn, trust, list(policies), list(managed), dict(tags or {}))

    def identity_policies(self, principal):
        docs = list(principal.policies)
        role = self.roles.get(principal.arn)
        if role is not None:
            docs += role.policies
            for m in role.managed:
                if m in self.managed:
                    docs.append(self.managed[m])
                else:
                    self.unevaluated.add(m)
        return docs

    def key_policy(self, key_id, account, partition="aws", region=None):
        return self.keys.get((key_id, region)) or self.keys.get(key_id) or default_key_policy(account, partition)

    def authorize(self, principal, action, resource, context=None, resource_account=None, resource_policy=None,
                  kind=None):
        """One request: ACTION on RESOURCE (an ARN or "*") by PRINCIPAL with
        CONTEXT (condition keys). The resource's policy is looked up (bucket,
        key, role trust) unless RESOURCE_POLICY is given; its account is the
        ARN's unless RESOURCE_ACCOUNT is given. Returns a Decision."""
        if resource_account is None and resource.startswith("arn:") and ":s3:::" in resource:
            resource_account = self.bucket_accounts.get(resource.split(":::", 1)[1].split("/", 1)[0])
        check = Check(action, resource, None, resource_account, context or {}, resource_policy)
        check.kind = kind
        return evaluate(self, principal, check)


@functools.lru_cache(maxsize=1)
def _rendered_templates():
    """Rendered once per process (a second each): resolution copies, never changes them."""
    import fvdeploy

    files = fvdeploy.render_all()
    return {k: json.loads(v[0]) for k, v in files.items() if k.startswith("cloudformation/")}
