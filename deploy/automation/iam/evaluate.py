"""Policy evaluation: matching, conditions, statements, the decision (the IAM User Guide's evaluation logic)."""

import datetime
import functools
import ipaddress
import re

from .common import _list


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
        return "key", policies.key_policy(key_id, res.split(":")[4], res.split(":")[1], res.split(":")[3])
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
