"""In force: the active policies, the credentials, the hook on every boto3 client, Automation's principals."""

import os
import sys

from botocore.exceptions import ClientError

from .common import ORG_ID, _STATE, _list
from .sar import arn_of
from .principals import Principal
from .evaluate import evaluate
from .calls import checks


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
        _STATE["region"] = client.meta.region_name  # the call's region (Facts.region: several-region worlds)
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
        _STATE["region"] = region
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
