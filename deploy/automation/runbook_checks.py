"""Automation checks a runbook before it runs a step; these are them, as
a mixin of engine.Execution (moved out of engine.py for size, issue 25;
the doc labels ACTIONS, BRANCH, BRANCHING, LOOP, API, ... are the pages
engine.py's docstring lists). Also the constants they share with the
engine and the selector the engine reads outputs with."""

import re

import runcommand
from errors import EngineError

ACTIONS = ("aws:executeAwsApi", "aws:waitForAwsResourceProperty", "aws:assertAwsResourceProperty",
           "aws:branch", "aws:executeScript", "aws:runCommand", "aws:sleep", "aws:loop")
STEP_KEYS = {"name", "action", "inputs", "outputs", "onFailure", "onCancel", "isCritical", "isEnd",
             "nextStep", "maxAttempts", "timeoutSeconds", "description"}
OUTPUT_TYPES = {"String": str, "Integer": int, "Boolean": bool, "StringList": list, "MapList": list,
                "StringMap": dict}
# APIVALUE: an output value is at most 512 characters, an output at most 50 values.
VALUE_MAX = 512
VALUES_MAX = 50
# LOOP: "The maximum number of iterations is 100."
LOOP_MAX = 100
# ACTIONS: step names: letters, digits, hyphens, underscores; outputs the same.
NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The inputs each action takes (its page); any other is refused at start.
INPUTS = {
    "aws:executeAwsApi": None,  # Service, Api and the API's own parameters (botocore validates them)
    "aws:waitForAwsResourceProperty": None,
    "aws:assertAwsResourceProperty": None,
    "aws:branch": {"Choices", "Default"},
    "aws:executeScript": {"Runtime", "Handler", "Script", "InputPayload", "Attachment"},
    "aws:sleep": {"Duration", "Timestamp"},
    "aws:loop": {"Iterators", "IteratorDataType", "LoopCondition", "MaxIterations", "Steps"},
    "aws:runCommand": None,  # runcommand.INPUTS
}
REQUIRED = {
    "aws:executeAwsApi": {"Service", "Api"},
    "aws:waitForAwsResourceProperty": {"Service", "Api", "PropertySelector", "DesiredValues"},
    "aws:assertAwsResourceProperty": {"Service", "Api", "PropertySelector", "DesiredValues"},
    "aws:branch": {"Choices"},
    "aws:executeScript": {"Runtime", "Handler"},
    "aws:runCommand": {"DocumentName"},
    "aws:loop": {"Steps"},
    "aws:sleep": set(),
}


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


class RunbookChecks:
    """What Automation refuses before it runs a step (engine.py's docstring
    lists it). Uses self.runbook; sets self.nested."""

    def _validate(self):
        """What Automation refuses before it runs a step (the module
        docstring lists it), including steps nested in aws:loop."""
        top = self.runbook.get("mainSteps")
        if not isinstance(top, list) or not top:
            raise EngineError("the runbook has no mainSteps")
        self.nested = {}  # nested step name -> its aws:loop step name
        names = set()
        for step in self._all_steps():
            name = step.get("name")
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise EngineError("step name %r: ACTIONS allows letters, digits, - and _" % (name,))
            unknown = set(step) - STEP_KEYS
            if unknown:
                raise EngineError("step %s: properties %s are not implemented" % (name, sorted(unknown)))
            if step.get("action") not in ACTIONS:
                raise EngineError("step %s: action %s is not implemented" % (name, step.get("action")))
            if name in names:
                raise EngineError("duplicate step name %s" % name)
            names.add(name)
            self._validate_step(step)
        top_names = {s["name"] for s in top}
        for step in self._all_steps():
            nested = step["name"] in self.nested
            scope = {n for n, loop in self.nested.items() if loop == self.nested[step["name"]]} if nested else top_names
            for key in ("onFailure", "onCancel"):
                target = step.get(key, "Abort")
                if target in ("Abort", "Continue") and not (key == "onCancel" and target == "Continue"):
                    continue
                if nested:
                    # LOOP: a nested step's onFailure is inherited by the
                    # loop; where a step:NAME inside a loop leads is not
                    # documented, so only Abort and Continue are run here.
                    raise EngineError("step %s (in aws:loop %s): %s %r: only Abort%s is implemented inside a loop"
                                      % (step["name"], self.nested[step["name"]], key, target,
                                         " or Continue" if key == "onFailure" else ""))
                if not (target.startswith("step:") and target[5:] in scope):
                    raise EngineError("step %s: %s %r is not Abort%s or step:<existing step>"
                                      % (step["name"], key, target, ", Continue" if key == "onFailure" else ""))
            targets = [step["nextStep"]] if step.get("nextStep") else []
            if step["action"] == "aws:branch":
                targets += [c.get("NextStep") for c in step["inputs"]["Choices"]]
                targets += [step["inputs"]["Default"]] if "Default" in step["inputs"] else []
            for t in targets:
                if t not in scope:
                    raise EngineError("step %s: next step %s does not exist%s" % (
                        step["name"], t, " in its aws:loop" if nested else ""))
        self._refuse_cycles(top)
        for ref in self.runbook.get("outputs", []):
            step, _, out = str(ref).partition(".")
            if step not in names or not out:
                raise EngineError("runbook output %r names no step's output" % ref)

    def _all_steps(self):
        for step in self.runbook["mainSteps"]:
            yield step
            if step.get("action") == "aws:loop":
                for inner in step.get("inputs", {}).get("Steps", []):
                    self.nested[inner.get("name")] = step.get("name")
                    yield inner

    def _validate_step(self, step):
        name, action, inputs = step["name"], step["action"], step.get("inputs")
        if not isinstance(inputs, dict):
            raise EngineError("step %s: inputs missing" % name)
        missing = REQUIRED[action] - set(inputs)
        if missing:
            raise EngineError("step %s (%s): required inputs %s missing" % (name, action, sorted(missing)))
        allowed = INPUTS[action]
        if allowed is not None and set(inputs) - allowed:
            raise EngineError("step %s (%s): inputs %s are not the action's" % (name, action,
                                                                             sorted(set(inputs) - allowed)))
        for key in ("maxAttempts", "timeoutSeconds"):
            if key in step and (not isinstance(step[key], int) or isinstance(step[key], bool) or step[key] < 1):
                raise EngineError("step %s: %s %r is not a positive integer" % (name, key, step[key]))
        for key in ("isEnd", "isCritical"):
            if key in step and not isinstance(step[key], bool):
                raise EngineError("step %s: %s %r is not a boolean" % (name, key, step[key]))
        if step.get("isEnd") and step.get("nextStep"):
            raise EngineError("step %s: isEnd and nextStep together: which one ends it?" % name)
        if action == "aws:branch" and ("nextStep" in step or "isEnd" in step):
            # BRANCH: the choices and Default decide the next step.
            raise EngineError("step %s: aws:branch takes its next step from Choices/Default, not %s"
                              % (name, "nextStep" if "nextStep" in step else "isEnd"))
        if action == "aws:branch" and (not isinstance(inputs["Choices"], list) or not inputs["Choices"]):
            raise EngineError("step %s: aws:branch needs at least one choice" % name)
        if action == "aws:branch" and any("NextStep" not in c for c in inputs["Choices"]):
            raise EngineError("step %s: every branch choice names its NextStep" % name)
        if action == "aws:runCommand":
            if set(inputs) - runcommand.INPUTS:
                raise EngineError("step %s: runCommand inputs %s are not implemented"
                                  % (name, sorted(set(inputs) - runcommand.INPUTS)))
        if action == "aws:runCommand" and step.get("outputs"):
            raise EngineError("step %s: runCommand has fixed outputs; declared outputs are not implemented" % name)
        seen = set()
        for out in step.get("outputs", []):
            oname = out.get("Name")
            if not isinstance(oname, str) or not NAME.fullmatch(oname) or oname in seen:
                raise EngineError("step %s: output name %r (missing, malformed or twice)" % (name, oname))
            seen.add(oname)
            if out.get("Type", "String") not in OUTPUT_TYPES:
                raise EngineError("step %s output %s: type %s" % (name, oname, out.get("Type")))
            if not isinstance(out.get("Selector"), str):
                raise EngineError("step %s output %s: no Selector" % (name, oname))
            select({}, out["Selector"])  # refuses JSONPath beyond $.a.b[0]
        if action == "aws:loop":
            self._validate_loop(step)

    def _validate_loop(self, step):
        """LOOP: either Iterators (for each) or LoopCondition (do while);
        MaxIterations 1 to 100; Steps a non-empty list of steps; the loop
        itself takes no onCancel. Only the do-while form is implemented."""
        name, inputs = step["name"], step["inputs"]
        if "onCancel" in step:
            raise EngineError("step %s: LOOP: the onCancel property isn't supported for the aws:loop action" % name)
        if ("Iterators" in inputs) == ("LoopCondition" in inputs):
            raise EngineError("step %s: LOOP: only specify either the Iterators or LoopCondition input" % name)
        if "Iterators" in inputs:
            raise EngineError("step %s: aws:loop Iterators (for each) is not implemented" % name)
        if "IteratorDataType" in inputs:
            raise EngineError("step %s: LOOP: IteratorDataType goes with Iterators" % name)
        most = inputs.get("MaxIterations", LOOP_MAX)
        if not isinstance(most, int) or isinstance(most, bool) or not 1 <= most <= LOOP_MAX:
            raise EngineError("step %s: LOOP: MaxIterations %r (1 to %d)" % (name, most, LOOP_MAX))
        inner = inputs["Steps"]
        if not isinstance(inner, list) or not inner or not all(isinstance(x, dict) for x in inner):
            raise EngineError("step %s: LOOP: Steps is a non-empty list of steps" % name)
        for x in inner:
            if x.get("onFailure") == "Continue" and x.get("isCritical") is True:
                raise EngineError("step %s (in aws:loop %s): a critical step that continues is not implemented "
                                  "inside a loop" % (x.get("name"), name))
            if x.get("action") in ("aws:loop", "aws:branch") or "nextStep" in x or "isEnd" in x:
                # Where a branch or nextStep inside a loop may lead is not
                # documented: refused, not guessed.
                raise EngineError("step %s (in aws:loop %s): %s inside a loop is not implemented" % (
                    x.get("name"), name, x.get("action") if x.get("action") in ("aws:loop", "aws:branch")
                    else "nextStep" if "nextStep" in x else "isEnd"))
        self._choice_shape(inputs["LoopCondition"], name)

    def _choice_shape(self, choice, name):
        ops = {k: v for k, v in choice.items() if k not in ("NextStep", "Variable")}
        if len(ops) != 1:
            raise EngineError("step %s: condition %r: exactly one operator expected" % (name, choice))

    def graph(self, steps):
        """Every edge Automation can follow from each top-level step:
        nextStep or the next step in the runbook (unless isEnd), onFailure
        step:/Continue, onCancel step:, a branch's choices and Default (or,
        without Default, the next step: BRANCH)."""
        order = [s["name"] for s in steps]
        edges = {}
        for i, s in enumerate(steps):
            implicit = order[i + 1] if i + 1 < len(order) else None
            out = []
            if s["action"] == "aws:branch":
                out += [c["NextStep"] for c in s["inputs"]["Choices"]]
                out.append(s["inputs"].get("Default", implicit))
            elif not s.get("isEnd"):
                out.append(s.get("nextStep") or implicit)
            for key in ("onFailure", "onCancel"):
                target = s.get(key, "Abort")
                if target.startswith("step:"):
                    out.append(target[5:])
                elif target == "Continue" and not s.get("isEnd"):
                    out.append(implicit)
            edges[s["name"]] = [t for t in dict.fromkeys(out) if t is not None]
        return edges

    def _refuse_cycles(self, steps):
        """BRANCHING: a runbook whose steps can come back to a step is
        refused at start, with the circle."""
        edges = self.graph(steps)
        state = {}

        def walk(n, path):
            state[n] = "open"
            for t in edges[n]:
                if state.get(t) == "open":
                    circle = path[path.index(t):] + [t]
                    raise EngineError("the runbook creates an infinite loop (BRANCHING: refused before it runs): "
                                      "circle trace %s" % " -> ".join(circle))
                if t not in state:
                    walk(t, path + [t])
            state[n] = "done"

        for s in steps:
            if s["name"] not in state:
                walk(s["name"], [s["name"]])
