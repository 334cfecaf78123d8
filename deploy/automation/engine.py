"""A local AWS Systems Manager Automation engine for the rendered runbook.

It executes an Automation document (schemaVersion 0.3) as JSON, unchanged,
against boto3 clients (moto in the tests, so botocore's API models validate
every call), with an InstanceBackend (backend.py) standing in for the inside
of the instance. Time is virtual: waits, sleeps and commands advance a clock
instead of sleeping, so a 48-hour capture timeout costs nothing.

What it implements, each as the Automation documentation states it (the
page is cited where the behaviour is coded):
  actions  aws:executeAwsApi, aws:waitForAwsResourceProperty,
           aws:assertAwsResourceProperty, aws:branch, aws:executeScript,
           aws:runCommand, aws:sleep, aws:loop (do-while, LoopCondition)
  options  onFailure, onCancel, isCritical, isEnd, nextStep, maxAttempts,
           timeoutSeconds; outputs with Selector/Type; runbook outputs
  values   {{ Parameter }}, {{ Step.Output }}, {{ global:ACCOUNT_ID }},
           {{ global:REGION }}, {{ global:DATE_TIME }}, {{ automation:EXECUTION_ID }}
Anything else (another action, an unknown step property, a selector beyond
$.a.b[0]) raises EngineError: the engine never skips what it does not know.

Checked at start, before any step runs, as Automation does before it
processes a runbook (each check names its page): no cycle in the step graph
(BRANCHING), step names, actions, properties and their combinations,
targets of nextStep/onFailure/onCancel/Choices/Default, output names, types
and selectors, aws:loop's inputs (runbook_checks.py, a mixin of Execution).

Many executions at once (a fleet): under a scheduler (scheduler.py) every
advance of an execution's clock gives the turn to the others, so they
interleave in one virtual time and share the world's quotas; service.py
serves StartAutomationExecution (rate control, parents and children) with
it. A StopAutomationExecution (Execution.request_stop) lands in a wait or a
sleep at once, in a command when the backend supports CommandRequest.wait,
else before the next step.

Step outputs, as Automation gives them (API, EXECSTATUS):
- a step that did not succeed has none: reading one fails the step that
  reads it, whatever the failed step had computed (the value cannot be
  resolved);
- a cancelled step has none, whether its call was made (cancel "after")
  or not (cancel "before": StopAutomationExecution arrived first);
- an output value is at most 512 characters (AutomationParameterValue):
  a declared output (Selector) over that fails its step; aws:runCommand's
  own Output is cut to 512 (see runcommand.py).

Doc pages (https://docs.aws.amazon.com/systems-manager/latest/userguide/...):
  ACTIONS   automation-actions.html (properties shared by all actions)
  TIMEOUTS  automation-handling-timeouts.html
  API       automation-action-executeAwsApi.html
  WAIT      automation-action-waitForAwsResourceProperty.html
  ASSERT    automation-action-assertAwsResourceProperty.html
  BRANCH    automation-action-branch.html
  SCRIPT    automation-action-executeScript.html
  RUNCMD    automation-action-runcommand.html
  SLEEP     automation-action-sleep.html
  VARS      automation-variables.html (system variables)
  CMDSTATUS monitor-commands.html (command statuses and timeouts)
  LOOP      automation-action-loop.html
  BRANCHING automation-branch-condition.html ("Before processing a runbook,
            the system verifies that the runbook doesn't create an infinite
            loop. If an infinite loop is detected, Automation returns an error
            and a circle trace showing which steps create the loop.")
  EXECSTATUS automation-statuses.html ("Cancelled: The step was stopped by
            a requester before it completed") and the get-automation-execution
            example of the AWS CLI reference (cli/latest/reference/ssm/
            get-automation-execution.html), where a failed step's outputs
            read "No output available yet because the step is not
            successfully executed"
  APIVALUE  https://docs.aws.amazon.com/systems-manager/latest/APIReference/
            API_StepExecution.html (Outputs: AutomationParameterMap) and
            botocore's ssm model: AutomationParameterValue 1 to 512
            characters, at most 50 values per output
"""

import datetime
import json
import re
import types

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

import runcommand  # the SendCommand stand-in, kept apart for size
import scheduler
from errors import EngineError, StepFailed  # noqa: F401  (engine.EngineError, engine.StepFailed: the API)
from runbook_checks import (  # noqa: F401  (engine.X as before)
    ACTIONS, INPUTS, LOOP_MAX, NAME, OUTPUT_TYPES, REQUIRED, STEP_KEYS, VALUE_MAX, VALUES_MAX, RunbookChecks, select)

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_:.]+)\s*\}\}")
# ACTIONS (onCancel): the cancellation workflow runs for at most two minutes.
# The deploy review marks this limit UNVERIFIED; the engine applies it, the
# stricter reading, so the cancel paths must fit in it.
CANCEL_WORKFLOW_SECONDS = 120
# WAIT: the action polls; AWS does not document the interval. 5 s is an
# assumption: it only changes how many polls a timeout takes.
POLL_SECONDS = 5
# WAIT: "The default timeout value for this action is 3600 seconds".
WAIT_DEFAULT_TIMEOUT = 3600
# SCRIPT: a script step may run at most 600 seconds.
SCRIPT_MAX_TIMEOUT = 600


def check_value(what, value):
    """APIVALUE: an output value is at most 512 characters, and an output
    at most 50 values. A value over that is refused: the step fails (what
    AWS does with one is not documented; the runbook must not depend on it,
    so its scripts keep their outputs short)."""
    values = value if isinstance(value, list) else [value]
    if len(values) > VALUES_MAX:
        raise StepFailed("%s has %d values; an Automation output holds at most %d (AutomationParameterValueList)"
                         % (what, len(values), VALUES_MAX))
    for v in values:
        text = v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
        if len(text) > VALUE_MAX:
            raise StepFailed("%s is %d characters; an Automation output value is at most %d "
                             "(AutomationParameterValue): %s..." % (what, len(text), VALUE_MAX, text[:60]))


class Clock:
    """Virtual seconds since the execution started. Alone, an execution's
    clock just adds; under a scheduler (scheduler.py: many executions
    interleaved in one virtual time) every advance gives the turn to the
    others until the shared time has caught up. Setting `now` advances to
    that time (never back)."""

    def __init__(self, scheduler=None, on_advance=None):
        self.scheduler = scheduler
        self._now = 0.0
        self.origin = scheduler.time if scheduler is not None else 0.0
        self.on_advance = on_advance  # called after each advance (a stop request lands there)

    @property
    def now(self):
        return self._now

    @now.setter
    def now(self, value):
        self.advance(float(value) - self._now)

    def sync(self):
        """Catch up with the shared time (a script slept in it directly)."""
        if self.scheduler is not None:
            self._now = max(self._now, self.scheduler.time - self.origin)

    def advance(self, seconds):
        seconds = max(0.0, float(seconds))
        if self.scheduler is not None and self.scheduler.current is not None:
            self.scheduler.sleep(seconds)
            self._now = max(self._now + seconds, self.scheduler.time - self.origin)
        else:
            self._now += seconds
        if self.on_advance is not None:
            self.on_advance()


def plain(value):
    """A boto3 response as JSON-like data (datetimes become ISO strings), as
    Automation sees the API's JSON response."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class Execution(RunbookChecks):
    """One execution of a runbook. run() returns self; then status, outputs,
    steps (a record per step run), failure_message."""

    def __init__(self, runbook, parameters, session, backend, documents, account_id, region,
                 execution_id="00000000-0000-4000-8000-000000000001", faults=None, scheduler=None):
        if runbook.get("schemaVersion") != "0.3":
            raise EngineError("not an Automation runbook (schemaVersion %r)" % runbook.get("schemaVersion"))
        self.runbook = runbook
        self.session = session
        self.backend = backend
        self.documents = documents  # {name: rendered Command document}
        self.account_id = account_id
        self.region = region
        self.execution_id = execution_id
        self.faults = faults
        # SCHEDULER: many executions in one virtual time (scheduler.py);
        # None: this execution alone.
        self.clock = Clock(scheduler, on_advance=self._stop_lands)
        self.stop_requested = False  # StopAutomationExecution (service.py)
        self._interruptible = False  # the running step is a wait or a sleep
        self.started = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        self.values = {}  # "Step.Output" -> value
        self.steps = []
        self.status = None
        self.failure_message = ""
        self.outputs = {}
        self.pending_commands = []  # commands still running or undelivered when their step ended
        self._clients = {}
        self._cancel_deadline = None
        self._staged = {}
        # The document first (Automation refuses a malformed one whatever
        # the parameters), then StartAutomationExecution's parameter checks.
        self._validate()
        self.params = self._parameters(parameters)

    # ---- document and parameters ---------------------------------------------

    def _parameters(self, given):
        """StartAutomationExecution's checks: declared, required, allowedPattern."""
        declared = self.runbook.get("parameters", {})
        values = {}
        for name in given:
            if name not in declared:
                raise EngineError("parameter %s is not declared by the runbook" % name)
        for name, spec in declared.items():
            if spec.get("type", "String") != "String":
                raise EngineError("parameter %s: type %s is not implemented" % (name, spec.get("type")))
            if name in given:
                value = given[name]
            elif "default" in spec:
                value = spec["default"]
            else:
                raise EngineError("required parameter %s is missing" % name)
            if "allowedPattern" in spec and not re.search(spec["allowedPattern"], value):
                raise EngineError("parameter %s=%r does not match %s" % (name, value, spec["allowedPattern"]))
            if "allowedValues" in spec and value not in spec["allowedValues"]:
                raise EngineError("parameter %s=%r is not one of %s" % (name, value, spec["allowedValues"]))
            values[name] = value
        return values

    # ---- values ------------------------------------------------------------------

    def lookup(self, name):
        if name == "global:ACCOUNT_ID":
            return self.account_id
        if name == "global:REGION":
            return self.region
        if name == "global:DATE_TIME":
            return (self.started + datetime.timedelta(seconds=self.clock.now)).strftime("%Y-%m-%d_%H.%M.%S")
        if name == "automation:EXECUTION_ID":
            return self.execution_id
        if ":" in name:
            raise EngineError("variable {{ %s }} is not implemented" % name)
        if "." in name:
            if name not in self.values:
                # The step did not run, or did not succeed (EXECSTATUS: no
                # outputs then): the step that needs it fails, Automation
                # cannot resolve the input.
                raise StepFailed("{{ %s }} cannot be resolved: its step did not run or did not succeed" % name)
            return self.values[name]
        if name not in self.params:
            raise EngineError("{{ %s }} is not a parameter" % name)
        return self.params[name]

    def resolve(self, node):
        """Substitute {{ }} everywhere. A string that is exactly one
        placeholder takes the value's own type (an Integer output stays an
        integer: executeAwsApi then passes a number, as the API model wants)."""
        if isinstance(node, dict):
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if isinstance(node, str):
            whole = PLACEHOLDER.fullmatch(node.strip())
            if whole:
                return self.lookup(whole.group(1))
            return PLACEHOLDER.sub(lambda m: str(self.lookup(m.group(1))), node)
        return node

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    # ---- the run ----------------------------------------------------------------

    def request_stop(self):
        """StopAutomationExecution (type Cancel) from outside the execution
        (service.py: the caller, or a cancelled parent). It lands as the
        drills' cancel does: a wait or a sleep in progress is cancelled at
        once; any other running step (an API call, a command) ends first and
        the next step is cancelled "before" its call; then onCancel and the
        two-minute cancellation workflow (EXECSTATUS, ACTIONS)."""
        self.stop_requested = True

    def _stop_lands(self):
        if self.stop_requested and self._interruptible and self._cancel_deadline is None:
            self._interruptible = False
            raise StepFailed("the execution was stopped (StopAutomationExecution) while the step waited",
                             "Cancelled")

    def run(self):
        # IAM (iam.py): the start is the caller's (StartAutomationExecution,
        # iam:PassRole), the steps run as AutomationAssumeRole, assumed by
        # ssm.amazonaws.com through its trust policy.
        import iam
        with iam.automation(self):
            return self._run()

    def _run(self):
        steps = {s["name"]: s for s in self.runbook["mainSteps"]}
        order = [s["name"] for s in self.runbook["mainSteps"]]
        current = order[0]
        first_failure = None
        cancelled = False
        while current is not None:
            step = steps[current]
            record = self._run_step(step)
            status = record["status"]
            if status == "Cancelled" and not cancelled:
                cancelled = True
                if self._cancel_deadline is not None and self.clock.now >= self._cancel_deadline:
                    break
                # ACTIONS onCancel: Abort (default) or step:NAME; the
                # cancellation workflow runs for at most two minutes.
                target = step.get("onCancel", "Abort")
                if step["action"] == "aws:loop":
                    target = record.get("on_cancel", "Abort")  # the nested step's (LOOP)
                self._cancel_deadline = self.clock.now + CANCEL_WORKFLOW_SECONDS
                if target == "Abort":
                    break
                current = target[len("step:"):]
                continue
            if status == "Cancelled":
                break  # the cancellation workflow itself ran out of time
            if status == "Success":
                current = self._next_on_success(step, record, order)
                continue
            # ACTIONS isCritical: a failed critical step makes the execution
            # Failed whatever comes after; defaults to true, and to false
            # when onFailure is Continue.
            critical = step.get("isCritical", step.get("onFailure") != "Continue")
            if critical and first_failure is None:
                first_failure = (step["name"], status, record["message"])
            on_failure = step.get("onFailure", "Abort")
            if step.get("isEnd"):
                break  # ACTIONS isEnd: the execution stops after this step, success or not
            if on_failure == "Abort":
                if first_failure is None:
                    first_failure = (step["name"], status, record["message"])
                break
            if on_failure == "Continue":
                current = self._next_in_order(step, order)
            else:
                current = on_failure[len("step:"):]
        if cancelled:
            self.status = "Cancelled"
        elif first_failure:
            # TIMEOUTS: a step that timed out and aborts leaves the execution TimedOut.
            self.status = "TimedOut" if first_failure[1] == "TimedOut" else "Failed"
        else:
            self.status = "Success"
        if first_failure:
            self.failure_message = "Step %s %s: %s" % first_failure
        for ref in self.runbook.get("outputs", []):
            if ref in self.values:
                self.outputs[ref] = self.values[ref]
        return self

    def _next_in_order(self, step, order):
        i = order.index(step["name"])
        return order[i + 1] if i + 1 < len(order) else None

    def _next_on_success(self, step, record, order):
        if step.get("isEnd"):
            return None
        if step["action"] == "aws:branch":
            return record["branch"]
        return step.get("nextStep") or self._next_in_order(step, order)

    def _run_step(self, step):
        """One step with its retries and timeout; a record for the report
        (appended to self.steps before any nested step's)."""
        record = {"name": step["name"], "action": step["action"], "status": None, "message": "",
                  "start": self.clock.now, "attempts": 0}
        self.steps.append(record)
        # ACTIONS maxAttempts: the step is retried on failure up to this
        # many tries in all (default 1).
        attempts = int(step.get("maxAttempts", 1))
        timeout = step.get("timeoutSeconds")
        if timeout is None and step["action"] == "aws:executeScript":
            timeout = SCRIPT_MAX_TIMEOUT  # SCRIPT: a script step runs at most 600 s
        for attempt in range(attempts):
            record["attempts"] = attempt + 1
            try:
                self._attempt(step, record, timeout)
                record["status"] = "Success"
                break
            except StepFailed as e:
                record["status"], record["message"] = e.status, str(e)
                if e.status == "Cancelled":
                    break
            except (ClientError, ParamValidationError, BotoCoreError) as e:
                record["status"], record["message"] = "Failed", "%s: %s" % (type(e).__name__, e)
        record["end"] = self.clock.now
        return record

    def stage(self, name, value):
        """An output of the running step; it becomes a value only if the
        step succeeds (EXECSTATUS)."""
        self._staged[name] = value

    def _attempt(self, step, record, timeout):
        cancel = self.faults.cancel_during(step["name"]) if self.faults is not None else False
        if self.stop_requested and not cancel and self._cancel_deadline is None:
            cancel = "before"  # request_stop: the step had not made its call yet
        if self._cancel_deadline is not None or step["action"] == "aws:loop":
            # Already cancelling: a second StopAutomationExecution changes
            # nothing (the execution is no longer InProgress). A loop is
            # cancelled through its nested steps.
            cancel = False
        if cancel not in (False, True, "before", "after"):
            raise EngineError("cancel %r: before or after the step's call" % cancel)
        in_cancel_flow = self._cancel_deadline is not None
        deadline = None
        if timeout is not None:
            deadline = self.clock.now + float(timeout)
        if in_cancel_flow:
            deadline = self._cancel_deadline if deadline is None else min(deadline, self._cancel_deadline)
        self._staged = {}
        if self.faults is not None:
            self.faults.enter(step["name"], self)
        try:
            if cancel == "before":
                # StopAutomationExecution arrived before the step made its
                # call: nothing of it happened.
                record["message"] = "(before its call)"
            else:
                try:
                    handler = getattr(self, "_" + step["action"].split(":", 1)[1])
                    inputs = self.resolve(step.get("inputs", {})) if step["action"] != "aws:loop" else step["inputs"]
                    handler(step, inputs, record, deadline, bool(cancel))
                except (StepFailed, ClientError, ParamValidationError, BotoCoreError) as e:
                    if not cancel:
                        raise
                    # Cancelled while it ran: the cancel decides how the step ends.
                    record["message"] = "%s: %s" % (type(e).__name__, e)
            if cancel:
                # EXECSTATUS: a cancelled step has no outputs, whether its
                # call was made or not.
                raise StepFailed("the execution was cancelled while %s ran %s" % (step["name"], record["message"]),
                                 "Cancelled")
            if deadline is not None and self.clock.now > deadline:
                if in_cancel_flow and self.clock.now >= self._cancel_deadline:
                    for p in self.pending_commands:
                        if p["step"] == step["name"]:
                            p["cut_by_cancel"] = True
                    raise StepFailed("the cancellation workflow's two minutes ran out in %s" % step["name"],
                                     "Cancelled")
                raise StepFailed("step timed out after %s s" % timeout, "TimedOut")
            self.values.update(self._staged)
        finally:
            self._staged = {}
            if self.faults is not None:
                self.faults.leave(step["name"], self)

    def _outputs(self, step, response):
        """Declared outputs by Selector, checked against Type and the API's
        value limits; all or none (a step whose outputs do not resolve
        fails, and has none)."""
        found_values = {}
        for out in step.get("outputs", []):
            found, value = select(response, out["Selector"])
            if not found:
                raise StepFailed("output %s: selector %s matched nothing" % (out["Name"], out["Selector"]))
            want = OUTPUT_TYPES[out.get("Type", "String")]
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise StepFailed("output %s is %r, not %s" % (out["Name"], value, out.get("Type", "String")))
            check_value("output %s" % out["Name"], value)
            found_values["%s.%s" % (step["name"], out["Name"])] = value
        self._staged.update(found_values)

    def _call(self, inputs):
        """API: Service and Api name a boto3 client call; the other inputs
        are its parameters (validated by botocore's model)."""
        rest = {k: v for k, v in inputs.items() if k not in ("Service", "Api", "PropertySelector", "DesiredValues")}
        client = self.client(inputs["Service"])
        api = inputs["Api"]
        names = {v: k for k, v in client.meta.method_to_api_mapping.items()}
        if api not in names:
            raise StepFailed("%s has no API %s" % (inputs["Service"], api))
        # API: each call is limited to 25 seconds; moto answers at once.
        self.clock.advance(0.2)
        return plain(getattr(client, names[api])(**rest))

    # ---- actions ------------------------------------------------------------------

    def _executeAwsApi(self, step, inputs, record, deadline, cancel_now):
        response = self._call(inputs)
        if inputs["Service"] == "ec2" and inputs["Api"] in ("AttachVolume", "DetachVolume"):
            self._instance_side(inputs)
        self._outputs(step, response)

    def _instance_side(self, inputs):
        """Tell the backend the disk came or went. A non-forced detach the
        guest refuses stays "busy" (EC2 user guide, ebs-detaching-volume:
        a volume mounted in the OS can stay in the busy state): moto's
        attachment is put back and reported busy until a forced detach."""
        vol, inst = inputs["VolumeId"], inputs.get("InstanceId")
        world = getattr(self, "world", None)
        if inputs["Api"] == "AttachVolume":
            if world is not None:
                world._devices[vol] = inputs["Device"]
            self.backend.on_attach(vol, inst, inputs["Device"])
            return
        force = bool(inputs.get("Force", False))
        if self.backend.on_detach(vol, inst, force) == "busy":
            if world is None:
                raise EngineError("a busy detach needs the world's EBS stand-in")
            world.hold_attached(vol, inst)
        elif world is not None:
            world.volume_overlay.pop(vol, None)

    def _assertAwsResourceProperty(self, step, inputs, record, deadline, cancel_now):
        # ASSERT: one call; the step fails unless the property is one of DesiredValues.
        response = self._call(inputs)
        found, value = select(response, inputs["PropertySelector"])
        if not found or str(value) not in [str(v) for v in inputs["DesiredValues"]]:
            raise StepFailed("%s is %r, not one of %s" % (inputs["PropertySelector"], value if found else None,
                                                         inputs["DesiredValues"]))

    def _waitForAwsResourceProperty(self, step, inputs, record, deadline, cancel_now):
        self._interruptible = True  # a stop lands in the wait (request_stop)
        try:
            self._wait(inputs, deadline, cancel_now)
        finally:
            self._interruptible = False

    def _wait(self, inputs, deadline, cancel_now):
        # WAIT: poll until the property is one of DesiredValues or the step
        # times out (then onFailure applies, TIMEOUTS).
        if deadline is None:
            deadline = self.clock.now + WAIT_DEFAULT_TIMEOUT
        start = self.clock.now
        while True:
            response = self._call(inputs)
            found, value = select(response, inputs["PropertySelector"])
            if found and str(value) in [str(v) for v in inputs["DesiredValues"]]:
                return
            if cancel_now:
                return
            # Polls spread out as the wait grows (at most 1/20 of the time
            # waited so far), so a day-long wait costs a few hundred calls.
            interval = max(POLL_SECONDS, (self.clock.now - start) / 20)
            if self.clock.now + interval > deadline:
                self.clock.now = deadline + 0.001
                return
            self.clock.advance(interval)

    def _branch(self, step, inputs, record, deadline, cancel_now):
        # BRANCH: the first choice that matches names the next step; else
        # Default; "If no default value is specified for the step, then the
        # automation processes the next step in the runbook" (none after the
        # last step: the execution ends).
        for choice in inputs["Choices"]:
            if self._choice(choice):
                record["branch"] = choice["NextStep"]
                return
        record["branch"] = inputs.get("Default") or self._next_in_order(step, [s["name"] for s in
                                                                             self.runbook["mainSteps"]])

    def _choice(self, choice):
        ops = {k: v for k, v in choice.items() if k not in ("NextStep", "Variable")}
        if len(ops) != 1:
            raise EngineError("branch choice %r: exactly one operator expected" % choice)
        (op, want), = ops.items()
        if op == "And":
            return all(self._choice(c) for c in want)
        if op == "Or":
            return any(self._choice(c) for c in want)
        if op == "Not":
            return not self._choice(want)
        value = choice["Variable"]
        tests = {
            "StringEquals": lambda: str(value) == str(want),
            "EqualsIgnoreCase": lambda: str(value).lower() == str(want).lower(),
            "StartsWith": lambda: str(value).startswith(str(want)),
            "EndsWith": lambda: str(value).endswith(str(want)),
            "Contains": lambda: str(want) in value if isinstance(value, list) else str(want) in str(value),
            "NumericEquals": lambda: float(value) == float(want),
            "NumericGreater": lambda: float(value) > float(want),
            "NumericLesser": lambda: float(value) < float(want),
            "NumericGreaterOrEquals": lambda: float(value) >= float(want),
            "NumericLesserOrEquals": lambda: float(value) <= float(want),
            "BooleanEquals": lambda: bool(value) == bool(want),
        }
        if op not in tests:
            raise EngineError("branch operator %s is not implemented" % op)
        return tests[op]()

    def _loop(self, step, inputs, record, deadline, cancel_now):
        """LOOP, do while: the nested Steps run in order; "The condition is
        evaluated after the steps in the loop complete. If the condition is
        true and the MaxIterations value has not been reached, the steps"
        run again. A nested step's onFailure is inherited by the loop
        (Abort: the loop fails, then the loop's own onFailure applies;
        Continue: the next nested step). The loop's output CurrentIteration
        (Integer) is readable by its steps."""
        most = inputs.get("MaxIterations", LOOP_MAX)
        iteration = 0
        while True:
            iteration += 1
            self.values["%s.CurrentIteration" % step["name"]] = iteration
            for inner in inputs["Steps"]:
                rec = self._run_step(inner)
                rec["loop"], rec["iteration"] = step["name"], iteration
                if rec["status"] == "Success":
                    continue
                if rec["status"] == "Cancelled":
                    record["on_cancel"] = inner.get("onCancel", "Abort")
                    raise StepFailed("%s was cancelled in iteration %d" % (inner["name"], iteration), "Cancelled")
                if inner.get("onFailure", "Abort") == "Continue" and not inner.get("isCritical", False):
                    continue
                raise StepFailed("%s %s in iteration %d: %s" % (inner["name"], rec["status"], iteration,
                                                                rec["message"]), rec["status"])
            record["iterations"] = iteration
            if iteration >= most or not self._choice(self.resolve(inputs["LoopCondition"])):
                return

    def _sleep(self, step, inputs, record, deadline, cancel_now):
        # SLEEP: Duration in ISO 8601 (PTnHnMnS); Timestamp is not implemented.
        if set(inputs) != {"Duration"}:
            raise EngineError("aws:sleep inputs %s: only Duration is implemented" % sorted(inputs))
        m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", inputs["Duration"])
        if not m:
            raise EngineError("aws:sleep Duration %r" % inputs["Duration"])
        h, mi, s = (int(x or 0) for x in m.groups())
        self._interruptible = True  # a stop lands in the sleep (request_stop)
        try:
            self.clock.advance(h * 3600 + mi * 60 + s)
        finally:
            self._interruptible = False

    def _executeScript(self, step, inputs, record, deadline, cancel_now):
        # SCRIPT: Runtime python3.x, Handler, Script; InputPayload is the
        # handler's `events`; its return value is the step's Payload; an
        # exception fails the step. At most 600 s.
        if float(step.get("timeoutSeconds", SCRIPT_MAX_TIMEOUT)) > SCRIPT_MAX_TIMEOUT:
            raise EngineError("step %s: executeScript timeoutSeconds over %d" % (step["name"], SCRIPT_MAX_TIMEOUT))
        if not re.fullmatch(r"python3\.\d+", inputs.get("Runtime", "")):
            raise EngineError("executeScript Runtime %r is not implemented" % inputs.get("Runtime"))
        if "Attachment" in inputs:
            raise EngineError("executeScript Attachment is not implemented")
        module = types.ModuleType("automation_script")
        exec(compile(inputs["Script"], "<%s script>" % step["name"], "exec"), module.__dict__)  # noqa: S102
        handler = getattr(module, inputs["Handler"], None)
        if handler is None:
            raise EngineError("step %s: handler %s not defined by its script" % (step["name"], inputs["Handler"]))
        import boto3  # the script's boto3 is the session's (moto in the drills)
        saved = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = self.session
        # SCRIPT: at most 600 s. Under a scheduler a script that sleeps in
        # virtual time (the drills route its time.sleep there) is stopped at
        # its deadline, mid-sleep, as Automation stops it.
        task = self.clock.scheduler.current if self.clock.scheduler is not None else None
        if task is not None and deadline is not None:
            task.deadline = self.clock.origin + deadline
        try:
            payload = handler(inputs.get("InputPayload", {}), None)
        except (ClientError, ParamValidationError, BotoCoreError):
            raise
        except scheduler.Deadline as e:
            raise StepFailed("the script ran past its %s s and was stopped" % step.get(
                "timeoutSeconds", SCRIPT_MAX_TIMEOUT), "TimedOut") from e
        except Exception as e:  # noqa: BLE001  (any script error fails the step, as Automation does)
            raise StepFailed("%s: %s" % (type(e).__name__, e)) from e
        finally:
            boto3.DEFAULT_SESSION = saved
            if task is not None:
                task.deadline = None
                self.clock.sync()
        self.clock.advance(1)
        self._outputs(step, {"Payload": plain(payload)})

    def _runCommand(self, step, inputs, record, deadline, cancel_now):
        runcommand.run(self, step, inputs, record, deadline, cancel_now)


def report(execution):
    """A short text report of one execution."""
    lines = ["execution %s: %s" % (execution.execution_id, execution.status)]
    if execution.failure_message:
        lines.append("  failure: " + execution.failure_message)
    for r in execution.steps:
        lines.append("  %-24s %-9s t=%8.1f..%8.1f %s" % (r["name"], r["status"], r["start"], r["end"],
                                                         r["message"][:120]))
    for k, v in execution.outputs.items():
        lines.append("  output %s = %s" % (k, json.dumps(v)[:200]))
    return "\n".join(lines)
