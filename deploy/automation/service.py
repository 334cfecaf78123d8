"""STAND-IN: Systems Manager Automation, the service, for the drill worlds.

moto 5.2.5 implements no Automation API. While an AutomationService runs,
every boto3 ssm client of the process (the fleet tool's, a responder's
assumed-role session, a World's) has StartAutomationExecution,
GetAutomationExecution, DescribeAutomationExecutions,
DescribeAutomationStepExecutions and StopAutomationExecution answered here,
after botocore validated the request against its model and iam.py
authorized it (its hook runs first, on every call). The runbook is the one
created in moto's SSM documents of the caller's account and Region; each
execution is an engine.Execution run as a task of one Scheduler (virtual
time shared by every execution: scheduler.py), as the caller (iam.automation
checks StartAutomationExecution and iam:PassRole of its
AutomationAssumeRole, then acts as that role).

Interface (stable; deploy/scripts/fleet.py and the fleet drills use it):

    svc = service.AutomationService(world, backend=None, seed=0).start()
        world: a running World/SecurityWorld (its documents created);
        backend: the InstanceBackend of every execution (default: a
        ScriptedBackend), or a callable(instance_id) -> backend.
    ... boto3 calls, e.g. through an assumed Forensics-AutomationStarter:
        ssm.start_automation_execution(DocumentName=..., TargetParameterName="InstanceId",
            Targets=[{"Key": "tag:Incident", "Values": ["IR-2026-042"]}],
            MaxConcurrency="10", MaxErrors="2", Parameters={...})
        ssm.get_automation_execution(AutomationExecutionId=parent_id)
        ssm.describe_automation_executions(Filters=[{"Key": "ParentExecutionId", "Values": [parent_id]}])
        ssm.stop_automation_execution(AutomationExecutionId=parent_id)
    svc.sleep(seconds)   the driver's time.sleep: runs every execution for
                         that many virtual seconds (pass it to the fleet tool)
    svc.run()            runs until every execution has ended; returns the
                         virtual seconds elapsed
    svc.executions       {id: Record}: .status, .ex (engine.Execution), .parent_id, .target
    svc.stop()           uninstalls (World.stop does it too)

What it keeps, each from its page (UG = https://docs.aws.amazon.com/systems-manager/latest/userguide/,
API = https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
- RATE: API_StartAutomationExecution and UG running-automations-map-targets,
  running-automations-scale-controls:
  * Targets need TargetParameterName ("Required if you specify targets"),
    a parameter the runbook declares; Targets and TargetMaps not together;
    one Targets entry: tag:<key>, ParameterValues (at most 50 values),
    AWS::EC2::Instance with * , or ResourceGroup ("Only one resource group
    or tag can be specified at a time", InvalidAutomationExecutionParameters,
    aws/aws-cli discussion 8627); TargetParameterName also given in
    Parameters is refused (not documented: stricter);
  * MaxConcurrency default 10, MaxErrors as the API's patterns; both only
    with Targets (stricter: AWS's handling without Targets is not documented);
  * a child execution per target, with the parent's parameters plus the
    target; "The parent automation is complete when all child automations
    reach a final state"; the children are listed by DescribeAutomationExecutions
    with ParentExecutionId and carry ParentAutomationExecutionId;
    each is a parent step (aws:executeAutomation, StepName = the target);
  * ramp-up: "sends the automation to a single resource and waits for the
    initial invocation to complete before sending to two more resources.
    The system exponentially sends the automation to more resources until
    the concurrency value is met" (scale-controls): 1, then 2 once it has
    ended, then doubling at each end (when it doubles is not documented);
  * MaxErrors N: no more children are started once N+1 have failed ("If
    you specify 3 ... stops ... when the fourth error is received"; 0:
    after the first). A percentage of the target set: the API reference
    (sixth error for 10% of 50) and the user guide (fifth) disagree; the
    stand-in takes the user guide's, the earlier stop: floor(N*p/100)
    errors allowed less one (0% and any percentage rounding to 0: the
    first error stops). Running children are "allowed to complete";
  * targets never started (error budget spent, parent cancelled) stay
    parent steps with StepStatus Pending and no child (AWS's report is
    not documented); the parent is then Failed (Cancelled when stopped);
    the parent is Success only when every target's child is Success (the
    parent-status rule is not documented: any other child status makes it
    Failed, the stricter reading; TimedOut children count as errors too);
  * MaxConcurrency as a percentage: floor(targets*p/100), at least 1
    (rounding not documented).
- QUOTA: UG adaptive-concurrency.html ("By default, Automation lets you
  run up to 100 concurrent automations") and systems-manager-automation
  quotas [awsdocs gh 2023]: the 100 include child and rate-control
  automations; beyond them executions wait in a queue (status Pending,
  CloudWatch's QueuedAutomationUsage "not started ... Pending") of 1,000;
  at most 25 rate-control parents run at once, queue 1,000; a start beyond
  the queue fails with AutomationExecutionLimitExceededException. Per
  account and Region. Configurable (AutomationService(concurrent=...)).
- STOP: API_StopAutomationExecution (Type Cancel, the default): the
  execution cancels (engine.Execution.request_stop); a parent's running
  children are stopped with it and no more start (the effect on children
  is not documented; this is the issue's requirement); a Pending one
  never starts and ends Cancelled. Type Complete: not implemented (refused).
- IAM (UNVERIFIED, stricter): resolving tag targets is done as the caller,
  which must be allowed tag:GetResources (the page that would say what
  Automation needs for it was not found); ResourceGroup targets: moto 5.2.5
  has no ListGroupResources, so they are refused as not implemented.
- TargetMaps, TargetLocations, Mode Interactive, AlarmConfiguration,
  ClientToken reuse: refused (engine.EngineError): not implemented, never
  approximated.
"""

import datetime
import json
import math
import re
import uuid

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

import backend as backend_mod
import engine
import iam
import scheduler as scheduler_mod
import world as world_mod

OPERATIONS = ("StartAutomationExecution", "GetAutomationExecution", "DescribeAutomationExecutions",
              "DescribeAutomationStepExecutions", "StopAutomationExecution")
CONCURRENT = 100  # QUOTA: concurrently running automations per account and Region
QUEUE = 1000  # QUOTA: the queue behind them
RATE_CONTROL = 25  # QUOTA: rate-control automations running at once
PARENT_POLL = 5  # s: how often a parent looks at its children (not documented; only changes timing)
MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")  # API MaxConcurrency
MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")  # API MaxErrors
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
_ACTIVE = {"service": None}


def _error(code, message, operation):
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def _invalid(message):
    return _error("InvalidAutomationExecutionParametersException", message, "StartAutomationExecution")


def rate(value, total, errors=False):
    """RATE: MaxConcurrency / MaxErrors as a number of targets."""
    if value.endswith("%"):
        share = math.floor(total * int(value[:-1]) / 100)
        if errors:
            return max(0, share - 1)  # the user guide's reading (module docstring)
        return max(1, share)
    return int(value)


class Record:
    """One execution as the service keeps it: a standalone one, a parent
    (rate control) or a child."""

    def __init__(self, service, eid, account, region, document, parameters, caller):
        self.service = service
        self.id = eid
        self.account, self.region = account, region
        self.document = document
        self.parameters = parameters  # {name: [values]} as given
        self.caller = caller
        self.status = "Pending"
        self.parent_id = None
        self.target = None
        self.start = None  # virtual seconds
        self.end = None
        self.ex = None  # engine.Execution (children and standalone)
        self.failure = ""
        self.rate = None  # a parent's: dict(TargetParameterName, Targets, MaxConcurrency, MaxErrors, values)
        self.steps = []  # a parent's: one per target
        self.stop = False
        service.queued += 1
        self.queued_at = (service.scheduler.time, service.queued)  # the queue's order

    def time(self, t):
        return None if t is None else EPOCH + datetime.timedelta(seconds=t)

    def metadata(self, full=False):
        out = {"AutomationExecutionId": self.id, "DocumentName": self.document, "DocumentVersion": "1",
               "AutomationExecutionStatus": self.status, "Mode": "Auto", "ExecutedBy": self.caller,
               "AutomationType": "Local"}
        if self.start is not None:
            out["ExecutionStartTime"] = self.time(self.start)
        if self.end is not None:
            out["ExecutionEndTime"] = self.time(self.end)
        if self.parent_id:
            out["ParentAutomationExecutionId"] = self.parent_id
            out["Target"] = self.target
        if self.failure:
            out["FailureMessage"] = self.failure[:2000]
        if self.ex is not None and self.status in TERMINAL:
            out["Outputs"] = {k: (v if isinstance(v, list) else [v if isinstance(v, str) else json.dumps(v)])
                              for k, v in self.ex.outputs.items()}
        if self.rate:
            out.update(TargetParameterName=self.rate["TargetParameterName"], Targets=self.rate["Targets"],
                       MaxConcurrency=self.rate["MaxConcurrency"], MaxErrors=self.rate["MaxErrors"],
                       ResolvedTargets={"ParameterValues": self.rate["values"][:50],
                                        "Truncated": len(self.rate["values"]) > 50})
        if full:
            out["Parameters"] = self.parameters
            out["StepExecutions"] = self.step_executions()
            if self.rate:
                out["ProgressCounters"] = self.progress()
        return out

    def step_executions(self):
        if self.rate:
            return [dict(s) for s in self.steps]
        if self.ex is None:
            return []
        steps = []
        for r in self.ex.steps:
            s = {"StepName": r["name"], "Action": r["action"], "StepStatus": r["status"] or "InProgress",
                 "ExecutionStartTime": self.time(self.start + r["start"])}
            if r.get("end") is not None:
                s["ExecutionEndTime"] = self.time(self.start + r["end"])
            if r["message"] and r["status"] != "Success":
                s["FailureMessage"] = r["message"][:2000]
            steps.append(s)
        return steps

    def progress(self):
        counts = {"TotalSteps": len(self.steps), "SuccessSteps": 0, "FailedSteps": 0, "CancelledSteps": 0,
                  "TimedOutSteps": 0}
        for s in self.steps:
            key = {"Success": "SuccessSteps", "Failed": "FailedSteps", "Cancelled": "CancelledSteps",
                   "TimedOut": "TimedOutSteps"}.get(s["StepStatus"])
            if key:
                counts[key] += 1
        return counts


class CallerClients(world_mod.Clients):
    """The World's client routing (stand-ins, faults) on the caller's own
    credentials: the executions run as who started them (then as their
    AutomationAssumeRole, iam.automation)."""

    def __init__(self, world, credentials, region):
        import boto3

        super().__init__(region, boto3.Session(
            region_name=region, aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key, aws_session_token=credentials.token))
        self.world = world


class AutomationService:
    def __init__(self, world, backend=None, seed=0, concurrent=CONCURRENT, queue=QUEUE, rate_control=RATE_CONTROL):
        self.world = world
        self.backend = backend
        self.scheduler = scheduler_mod.Scheduler(seed)
        self.rng = self.scheduler.rng
        self.quota = {"concurrent": concurrent, "queue": queue, "rate_control": rate_control}
        self.executions = {}
        self.queued = 0
        self._sessions = {}
        self._tokens = set()

    # ---- installation -------------------------------------------------------------

    def start(self):
        _ACTIVE["service"] = self
        self.world.service = self
        world_mod.set_clock(lambda: self.scheduler.time)
        for clients in world_mod.all_clients():
            ssm = clients._clients.get("ssm")
            if ssm is not None:
                install(ssm)
        return self

    def stop(self):
        if _ACTIVE["service"] is self:
            _ACTIVE["service"] = None
            world_mod.set_clock(None)

    def sleep(self, seconds):
        """The driver's time.sleep: every execution runs SECONDS of virtual time."""
        self.scheduler.advance(seconds)

    def run(self, limit=30 * 24 * 3600):
        """Until every execution has ended (at most LIMIT virtual seconds)."""
        start = self.scheduler.time
        self.scheduler.run(until=start + limit, idle_stops=True)
        if not self.scheduler.idle():
            raise engine.EngineError("executions still running after %d virtual seconds" % limit)
        return self.scheduler.time - start

    # ---- the API --------------------------------------------------------------------

    def handle(self, client, operation, params):
        caller = _principal(client)
        account = caller.account if caller is not None and caller.account else world_mod.ACCOUNT
        region = client.meta.region_name
        if operation == "StartAutomationExecution":
            return {"AutomationExecutionId": self.start_execution(client, caller, account, region, params)}
        if operation == "DescribeAutomationExecutions":
            return self.describe(account, region, params)
        record = self.executions.get(params["AutomationExecutionId"])
        if record is None or (record.account, record.region) != (account, region):
            raise _error("AutomationExecutionNotFoundException", "Automation execution %s not found"
                         % params["AutomationExecutionId"], operation)
        if operation == "GetAutomationExecution":
            return {"AutomationExecution": record.metadata(full=True)}
        if operation == "DescribeAutomationStepExecutions":
            return self.describe_steps(record, params)
        if params.get("Type", "Cancel") != "Cancel":
            raise engine.EngineError("StopAutomationExecution Type %s is not implemented" % params["Type"])
        self.cancel(record)
        return {}

    def describe(self, account, region, params):
        found = [r for r in self.executions.values() if (r.account, r.region) == (account, region)]
        for f in params.get("Filters", []):
            key, values = f["Key"], f["Values"]
            test = {"ParentExecutionId": lambda r: r.parent_id in values,
                    "ExecutionId": lambda r: r.id in values,
                    "ExecutionStatus": lambda r: r.status in values,
                    "DocumentNamePrefix": lambda r: any(r.document.startswith(v) for v in values)}.get(key)
            if test is None:
                raise engine.EngineError("DescribeAutomationExecutions filter %s is not implemented" % key)
            found = [r for r in found if test(r)]
        # MaxResults 1-50 (botocore checks the range); NextToken: the index.
        first = int(params.get("NextToken") or 0)
        most = int(params.get("MaxResults", 50))
        page = found[first:first + most]
        out = {"AutomationExecutionMetadataList": [r.metadata() for r in page]}
        if first + most < len(found):
            out["NextToken"] = str(first + most)
        return out

    @staticmethod
    def describe_steps(record, params):
        """DescribeAutomationStepExecutions: Filters StepName and
        StepExecutionStatus, ReverseOrder, MaxResults/NextToken; any other
        filter is refused (not implemented), never ignored."""
        steps = record.step_executions()
        for f in params.get("Filters", []):
            field = {"StepName": "StepName", "StepExecutionStatus": "StepStatus"}.get(f["Key"])
            if field is None:
                raise engine.EngineError("DescribeAutomationStepExecutions filter %s is not implemented" % f["Key"])
            steps = [x for x in steps if x.get(field) in f["Values"]]
        if params.get("ReverseOrder"):
            steps.reverse()
        first = int(params.get("NextToken") or 0)
        most = int(params.get("MaxResults", 50))
        out = {"StepExecutions": steps[first:first + most]}
        if first + most < len(steps):
            out["NextToken"] = str(first + most)
        return out

    def start_execution(self, client, caller, account, region, params):
        self._refuse_unimplemented(params)
        runbook, commands = self._documents(account, region, params["DocumentName"])
        given = params.get("Parameters", {})
        targets = params.get("Targets")
        rate_control = targets is not None or "TargetParameterName" in params
        record = Record(self, self._new_id(), account, region, params["DocumentName"], given,
                        caller.session_arn if caller is not None else "arn:aws:iam::%s:root" % account)
        if rate_control:
            values = self._resolve(client, caller, account, region, runbook, params)
            record.rate = {"TargetParameterName": params["TargetParameterName"], "Targets": targets,
                           "MaxConcurrency": params.get("MaxConcurrency", "10"),
                           "MaxErrors": params.get("MaxErrors", "0"), "values": values}
            record.steps = [{"StepName": v, "Action": "aws:executeAutomation", "StepStatus": "Pending"}
                            for v in values]
        else:
            if "MaxConcurrency" in params or "MaxErrors" in params:
                raise _invalid("MaxConcurrency and MaxErrors go with Targets and TargetParameterName")
            # The engine checks the parameters against the runbook now, as
            # StartAutomationExecution does before it answers.
            record.ex = self._execution(record, runbook, commands, self._single(given), client)
        self._admit(record, account, region)
        self.executions[record.id] = record
        task = self._parent if rate_control else self._child
        self.scheduler.spawn(lambda: task(record, runbook, commands, client), record.id)
        return record.id

    def _refuse_unimplemented(self, params):
        for key in ("TargetMaps", "TargetLocations", "TargetLocationsURL", "AlarmConfiguration"):
            if key in params:
                if key == "TargetMaps" and "Targets" in params:
                    raise _invalid("Both Targets and TargetMaps can't be specified together")
                raise engine.EngineError("StartAutomationExecution %s is not implemented by the stand-in" % key)
        if params.get("Mode", "Auto") != "Auto":
            raise engine.EngineError("StartAutomationExecution Mode %s is not implemented" % params["Mode"])
        token = params.get("ClientToken")
        if token is not None:
            if token.lower() in self._tokens:
                raise _error("IdempotentParameterMismatch", "ClientToken %s was used before" % token,
                             "StartAutomationExecution")
            self._tokens.add(token.lower())

    def _documents(self, account, region, name):
        from moto.ssm.models import ssm_backends

        backend = ssm_backends[account][region]
        docs = getattr(backend, "_documents", {})
        if name not in docs:
            raise _error("InvalidDocument", "Document %s does not exist in account %s, %s" % (name, account, region),
                         "StartAutomationExecution")
        runbook = json.loads(docs[name].get_default_version().content)
        commands = {}
        for other, versions in docs.items():
            doc = versions.get_default_version()
            if doc.document_type == "Command":
                commands[other] = json.loads(doc.content)
        return runbook, commands

    @staticmethod
    def _single(given):
        out = {}
        for name, values in given.items():
            if len(values) != 1:
                raise engine.EngineError("parameter %s: %d values; only String parameters (one value) are "
                                         "implemented" % (name, len(values)))
            out[name] = values[0]
        return out

    def _resolve(self, client, caller, account, region, runbook, params):
        """RATE: what the Targets name, as parameter values."""
        name = params.get("TargetParameterName")
        targets = params.get("Targets")
        if not name or targets is None:
            raise _invalid("TargetParameterName and Targets go together (TargetParameterName is required if "
                           "you specify targets)")
        if name not in runbook.get("parameters", {}):
            raise _invalid("TargetParameterName %s is not a parameter of %s" % (name, params["DocumentName"]))
        if name in params.get("Parameters", {}):
            raise _invalid("parameter %s is given in Parameters and as TargetParameterName" % name)
        if len(targets) != 1:
            raise _invalid("Only one resource group or tag can be specified at a time (%d Targets)" % len(targets))
        for key in ("MaxConcurrency", "MaxErrors"):
            value = params.get(key)
            pattern = MAX_CONCURRENCY if key == "MaxConcurrency" else MAX_ERRORS
            if value is not None and not pattern.match(value):
                raise _error("ValidationException", "%s %r does not match %s" % (key, value, pattern.pattern),
                             "StartAutomationExecution")
        key, values = targets[0]["Key"], targets[0]["Values"]
        if not values:
            raise _invalid("Target %s has no values" % key)
        if len(values) > 50:
            # API_Target: Values, at most 50 (botocore's model says so and
            # does not check maximums; the service does).
            raise _error("ValidationException", "Target %s: %d values; at most 50" % (key, len(values)),
                         "StartAutomationExecution")
        if key == "ParameterValues":
            return list(dict.fromkeys(values))
        if key == "ResourceGroup":
            raise engine.EngineError("ResourceGroup targets are not implemented: moto 5.2.5 has no "
                                     "resource-groups ListGroupResources")
        if key.startswith("tag:") or key == "AWS::EC2::Instance":
            if key == "AWS::EC2::Instance" and values != ["*"]:
                raise _invalid("AWS::EC2::Instance takes the value *")
            iam.enforce("tag", "GetResources", {}, caller)  # IAM (UNVERIFIED, module docstring)
            return self._instances(account, region, key[4:] if key.startswith("tag:") else None, values)
        raise _invalid("Target key %s is not one of tag:<key>, ResourceGroup, ParameterValues, "
                       "AWS::EC2::Instance" % key)

    @staticmethod
    def _instances(account, region, tag, values):
        from moto.ec2.models import ec2_backends

        found = []
        for reservation in ec2_backends[account][region].reservations.values():
            for inst in reservation.instances:
                if inst.state == "terminated":
                    continue
                tags = {t["key"]: t["value"] for t in inst.get_tags()} if hasattr(inst, "get_tags") else \
                    dict(getattr(inst, "tags", {}) or {})
                if tag is None or tags.get(tag) in values:
                    found.append(inst.id)
        return sorted(found)

    def _new_id(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _execution(self, record, runbook, commands, parameters, client):
        session = self._session(client, record.region)
        backend = self.backend
        if callable(backend) and not isinstance(backend, backend_mod.InstanceBackend):
            backend = backend(parameters.get("InstanceId"))
        ex = engine.Execution(runbook, parameters, session, backend or backend_mod.ScriptedBackend(), commands,
                              record.account, record.region, execution_id=record.id,
                              scheduler=self.scheduler)
        ex.world = self.world
        return ex

    def _session(self, client, region):
        creds = client._request_signer._credentials
        key = (creds.access_key, region)
        if key not in self._sessions:
            self._sessions[key] = CallerClients(self.world, creds, region)
        return self._sessions[key]

    # ---- quotas and the running of executions --------------------------------------

    def _running(self, account, region, parents=None):
        return [r for r in self.executions.values() if (r.account, r.region) == (account, region)
                and r.status in ("InProgress", "Cancelling") and (parents is None or bool(r.rate) == parents)]

    def _admit(self, record, account, region):
        """QUOTA: beyond the running ones and the queue a start fails."""
        kind = [r for r in self.executions.values() if (r.account, r.region) == (account, region)
                and r.status in ("Pending", "InProgress", "Cancelling") and bool(r.rate) == bool(record.rate)]
        room = self.quota["rate_control"] if record.rate else self.quota["concurrent"]
        queued = [r for r in kind if r.status == "Pending"]
        if len(kind) >= room + self.quota["queue"]:
            raise _error("AutomationExecutionLimitExceededException",
                         "The number of simultaneously running Automation executions exceeded the allowable "
                         "limit (%d running, %d queued)" % (len(self._running(account, region)), len(queued)),
                         "StartAutomationExecution")

    def _wait_turn(self, record):
        """QUOTA: Pending until the account-Region has room (in order of the queue)."""
        while True:
            if record.stop:
                return False
            ahead = [r for r in self.executions.values() if (r.account, r.region) == (record.account, record.region)
                     and r.status == "Pending" and bool(r.rate) == bool(record.rate) and r.queued_at < record.queued_at]
            running = len(self._running(record.account, record.region))
            parents = len(self._running(record.account, record.region, parents=True))
            room = running + len(ahead) < self.quota["concurrent"] and \
                (not record.rate or parents + len(ahead) < self.quota["rate_control"])
            if room:
                record.status, record.start = "InProgress", self.scheduler.time
                return True
            self.scheduler.sleep(1)

    def _child(self, record, runbook, commands, client):
        if not self._wait_turn(record):
            record.status, record.end = "Cancelled", self.scheduler.time
            return
        ex = record.ex
        ex.clock.origin = self.scheduler.time
        if record.stop:
            ex.request_stop()
        try:
            ex.run()
            record.status = ex.status
            record.failure = ex.failure_message
        except ClientError as e:  # iam.automation refused the start or the role
            record.status, record.failure = "Failed", "%s: %s" % (e.response["Error"]["Code"], e)
        except engine.EngineError as e:
            record.status, record.failure = "Failed", "EngineError: %s" % e
        record.end = self.scheduler.time

    def _parent(self, record, runbook, commands, client):
        """RATE: the rate-controlled parent (module docstring)."""
        if not self._wait_turn(record):
            record.status, record.end = "Cancelled", self.scheduler.time
            return
        values = record.rate["values"]
        most = rate(record.rate["MaxConcurrency"], len(values))
        budget = rate(record.rate["MaxErrors"], len(values), errors=True)
        ramp, errors, pending, running = 1, 0, list(range(len(values))), {}
        while pending or running:
            for i, child in list(running.items()):
                if child.status in TERMINAL:
                    del running[i]
                    record.steps[i].update(StepStatus=child.status, ExecutionEndTime=child.time(child.end))
                    if child.status != "Success":
                        errors += 1
                        record.steps[i]["FailureMessage"] = child.failure[:2000]
                    ramp *= 2  # RATE: 1, then two more (after the first ended: 2), then exponentially
            spent = errors > budget
            while pending and not record.stop and not spent and len(running) < min(most, ramp):
                i = pending.pop(0)
                running[i] = self._start_child(record, i, values[i], runbook, commands, client)
            if record.stop:
                for child in running.values():
                    self.cancel(child)
            if not running and (record.stop or spent):
                break
            self.scheduler.sleep(PARENT_POLL)
        record.end = self.scheduler.time
        self._parent_status(record, errors, budget, pending)

    def _start_child(self, record, i, value, runbook, commands, client):
        parameters = self._single(record.parameters)
        parameters[record.rate["TargetParameterName"]] = value
        child = Record(self, self._new_id(), record.account, record.region, record.document,
                       dict(record.parameters, **{record.rate["TargetParameterName"]: [value]}), record.caller)
        child.parent_id, child.target = record.id, value
        self.executions[child.id] = child
        step = record.steps[i]
        step.update(StepStatus="InProgress", ExecutionStartTime=child.time(self.scheduler.time),
                    Outputs={"ExecutionId": [child.id]})
        try:
            child.ex = self._execution(child, runbook, commands, parameters, client)
        except engine.EngineError as e:  # StartAutomationExecution's parameter checks, per child
            child.status, child.failure, child.start = "Failed", "EngineError: %s" % e, self.scheduler.time
            child.end = child.start
            return child
        self.scheduler.spawn(lambda: self._child(child, runbook, commands, client), child.id)
        return child

    def _parent_status(self, record, errors, budget, pending):
        if record.stop:
            record.status = "Cancelled"
        elif errors or pending or not record.steps:
            record.status = "Failed"
        else:
            record.status = "Success"
        parts = []
        if not record.steps:
            parts.append("the targets resolved to no resources")
        if errors:
            parts.append("%d of %d targets failed" % (errors, len(record.steps)))
        if pending:
            why = "the parent was cancelled" if record.stop else \
                "the error budget (MaxErrors %s: %d allowed) was exceeded" % (record.rate["MaxErrors"], budget)
            parts.append("%d targets not started: %s" % (len(pending), why))
        record.failure = "; ".join(parts)

    def cancel(self, record):
        """STOP (module docstring)."""
        if record.status in TERMINAL:
            return
        record.stop = True
        if record.status == "InProgress":
            record.status = "Cancelling"  # EXECSTATUS (automation-statuses.html) until it has ended
        if record.ex is not None:
            record.ex.request_stop()


def _principal(client):
    try:
        return iam._client_principal(client)
    except ClientError:
        return None


def _hook(client):
    def before_call(model, params, **_kw):
        service = _ACTIVE["service"]
        if service is None or model.name not in OPERATIONS:
            return None
        body = params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        parsed = service.handle(client, model.name, request)
        return AWSResponse("https://ssm.%s.amazonaws.com/" % client.meta.region_name, 200, {}, None), parsed

    return before_call


def install(client):
    """The stand-in on CLIENT (an ssm client); every ssm client made after
    this module is imported has it already."""
    if getattr(client, "_fv_automation", False):
        return client
    client.meta.events.register("before-call.ssm.*", _hook(client), unique_id="fv-automation-%d" % id(client))
    client._fv_automation = True
    return client


def _wrap_create_client():
    import botocore.session

    original = botocore.session.Session.create_client
    if getattr(original, "_fv_automation", False):
        return

    def create_client(self, service_name, *args, **kwargs):
        client = original(self, service_name, *args, **kwargs)
        if service_name == "ssm":
            install(client)
        return client

    create_client._fv_automation = True
    botocore.session.Session.create_client = create_client


_wrap_create_client()
