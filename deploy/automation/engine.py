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
           aws:runCommand, aws:sleep
  options  onFailure, onCancel, isCritical, isEnd, nextStep, maxAttempts,
           timeoutSeconds; outputs with Selector/Type; runbook outputs
  values   {{ Parameter }}, {{ Step.Output }}, {{ global:ACCOUNT_ID }},
           {{ global:REGION }}, {{ global:DATE_TIME }}, {{ automation:EXECUTION_ID }}
Anything else (another action, an unknown step property, a selector beyond
$.a.b[0]) raises EngineError: the engine never skips what it does not know.

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
"""

import datetime
import json
import re
import types

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

ACTIONS = ("aws:executeAwsApi", "aws:waitForAwsResourceProperty", "aws:assertAwsResourceProperty",
           "aws:branch", "aws:executeScript", "aws:runCommand", "aws:sleep")
STEP_KEYS = {"name", "action", "inputs", "outputs", "onFailure", "onCancel", "isCritical", "isEnd",
             "nextStep", "maxAttempts", "timeoutSeconds", "description"}
OUTPUT_TYPES = {"String": str, "Integer": int, "Boolean": bool, "StringList": list, "MapList": list,
                "StringMap": dict}
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


class EngineError(Exception):
    """The runbook uses something this engine does not implement, or is
    malformed: the run is refused, never approximated."""


class StepFailed(Exception):
    """A step ended unsuccessfully. status: Failed, TimedOut or Cancelled."""

    def __init__(self, message, status="Failed"):
        super().__init__(message)
        self.status = status


class Clock:
    """Virtual seconds since the execution started."""

    def __init__(self):
        self.now = 0.0

    def advance(self, seconds):
        self.now += max(0.0, float(seconds))


def select(document, selector):
    """JSONPath as Automation uses it in Selector/PropertySelector: $ then
    .Name and [N] parts. Returns (found, value)."""
    if not selector.startswith("$"):
        raise EngineError("selector %r does not start with $" % selector)
    parts = re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]|(.)", selector[1:])
    node = document
    for name, index, other in parts:
        if other:
            raise EngineError("selector %r uses JSONPath this engine does not implement" % selector)
        if name:
            if not isinstance(node, dict) or name not in node:
                return False, None
            node = node[name]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                return False, None
            node = node[int(index)]
    return True, node


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


class Execution:
    """One execution of a runbook. run() returns self; then status, outputs,
    steps (a record per step run), failure_message."""

    def __init__(self, runbook, parameters, session, backend, documents, account_id, region,
                 execution_id="00000000-0000-4000-8000-000000000001", faults=None):
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
        self.clock = Clock()
        self.started = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        self.params = self._parameters(parameters)
        self.values = {}  # "Step.Output" -> value
        self.steps = []
        self.status = None
        self.failure_message = ""
        self.outputs = {}
        self.pending_commands = []  # commands still running or undelivered when their step ended
        self._clients = {}
        self._cancel_deadline = None
        self._validate()

    # ---- document and parameters ---------------------------------------------

    def _validate(self):
        names = set()
        for step in self.runbook.get("mainSteps", []):
            unknown = set(step) - STEP_KEYS
            if unknown:
                raise EngineError("step %s: properties %s are not implemented" % (step.get("name"), sorted(unknown)))
            if step.get("action") not in ACTIONS:
                raise EngineError("step %s: action %s is not implemented" % (step.get("name"), step.get("action")))
            if step["name"] in names:
                raise EngineError("duplicate step name %s" % step["name"])
            names.add(step["name"])
        for step in self.runbook["mainSteps"]:
            for key in ("onFailure", "onCancel"):
                target = step.get(key, "Abort")
                if target in ("Abort", "Continue") and not (key == "onCancel" and target == "Continue"):
                    continue
                if not (target.startswith("step:") and target[5:] in names):
                    raise EngineError("step %s: %s %r is not Abort%s or step:<existing step>"
                                      % (step["name"], key, target, ", Continue" if key == "onFailure" else ""))
            if step.get("nextStep") and step["nextStep"] not in names:
                raise EngineError("step %s: nextStep %s does not exist" % (step["name"], step["nextStep"]))

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
                # The step did not run or did not produce it: the step that
                # needs it fails (Automation cannot resolve the input).
                raise StepFailed("{{ %s }} has no value (the step did not produce it)" % name)
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
            self.steps.append(record)
            status = record["status"]
            if status == "Cancelled" and not cancelled:
                cancelled = True
                if self._cancel_deadline is not None and self.clock.now >= self._cancel_deadline:
                    break
                # ACTIONS onCancel: Abort (default) or step:NAME; the
                # cancellation workflow runs for at most two minutes.
                target = step.get("onCancel", "Abort")
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
        """One step with its retries and timeout; a record for the report."""
        record = {"name": step["name"], "action": step["action"], "status": None, "message": "",
                  "start": self.clock.now, "attempts": 0}
        # ACTIONS maxAttempts: the step is retried on failure up to this
        # many tries in all (default 1).
        attempts = int(step.get("maxAttempts", 1))
        if attempts < 1:
            raise EngineError("step %s: maxAttempts %r" % (step["name"], attempts))
        timeout = step.get("timeoutSeconds")
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

    def _attempt(self, step, record, timeout):
        cancel_now = self.faults is not None and self.faults.cancel_during(step["name"])
        if self._cancel_deadline is not None:
            # Already cancelling: a second StopAutomationExecution changes
            # nothing (the execution is no longer InProgress).
            cancel_now = False
        in_cancel_flow = self._cancel_deadline is not None
        deadline = None
        if timeout is not None:
            deadline = self.clock.now + float(timeout)
        if in_cancel_flow:
            deadline = self._cancel_deadline if deadline is None else min(deadline, self._cancel_deadline)
        if self.faults is not None:
            self.faults.enter(step["name"], self)
        try:
            handler = getattr(self, "_" + step["action"].split(":", 1)[1])
            inputs = self.resolve(step.get("inputs", {}))
            handler(step, inputs, record, deadline, cancel_now)
        except (StepFailed, ClientError, ParamValidationError, BotoCoreError) as e:
            if not cancel_now:
                raise
            # Cancelled while it ran: the cancel decides how the step ends.
            record["message"] = "%s: %s" % (type(e).__name__, e)
        finally:
            if self.faults is not None:
                self.faults.leave(step["name"], self)
        if cancel_now:
            raise StepFailed("the execution was cancelled while %s ran %s" % (step["name"], record["message"]),
                             "Cancelled")
        if deadline is not None and self.clock.now > deadline:
            if in_cancel_flow and self.clock.now >= self._cancel_deadline:
                for p in self.pending_commands:
                    if p["step"] == step["name"]:
                        p["cut_by_cancel"] = True
                raise StepFailed("the cancellation workflow's two minutes ran out in %s" % step["name"], "Cancelled")
            raise StepFailed("step timed out after %s s" % timeout, "TimedOut")

    def _outputs(self, step, response):
        """Declared outputs by Selector, checked against Type; all or none
        (a step whose outputs do not resolve fails, and records none)."""
        found_values = {}
        for out in step.get("outputs", []):
            if out.get("Type", "String") not in OUTPUT_TYPES:
                raise EngineError("step %s output %s: type %s" % (step["name"], out["Name"], out.get("Type")))
            found, value = select(response, out["Selector"])
            if not found:
                raise StepFailed("output %s: selector %s matched nothing" % (out["Name"], out["Selector"]))
            want = OUTPUT_TYPES[out.get("Type", "String")]
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise StepFailed("output %s is %r, not %s" % (out["Name"], value, out.get("Type", "String")))
            found_values["%s.%s" % (step["name"], out["Name"])] = value
        self.values.update(found_values)

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

    def _sleep(self, step, inputs, record, deadline, cancel_now):
        # SLEEP: Duration in ISO 8601 (PTnHnMnS); Timestamp is not implemented.
        if set(inputs) != {"Duration"}:
            raise EngineError("aws:sleep inputs %s: only Duration is implemented" % sorted(inputs))
        m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", inputs["Duration"])
        if not m:
            raise EngineError("aws:sleep Duration %r" % inputs["Duration"])
        h, mi, s = (int(x or 0) for x in m.groups())
        self.clock.advance(h * 3600 + mi * 60 + s)

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
        try:
            payload = handler(inputs.get("InputPayload", {}), None)
        except (ClientError, ParamValidationError, BotoCoreError):
            raise
        except Exception as e:  # noqa: BLE001  (any script error fails the step, as Automation does)
            raise StepFailed("%s: %s" % (type(e).__name__, e)) from e
        finally:
            boto3.DEFAULT_SESSION = saved
        self.clock.advance(1)
        self._outputs(step, {"Payload": plain(payload)})

    def _runCommand(self, step, inputs, record, deadline, cancel_now):
        import runcommand  # the SendCommand stand-in, kept apart for size
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
