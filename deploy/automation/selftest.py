"""Tests of the engine itself, on small runbooks: what it implements behaves
as the Automation documentation says, and what it does not implement is
refused. Run by drills.py before the drills (they count in its total)."""

import backend as backend_mod
import engine
import world as world_mod


class Fail(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


def runbook(*steps, params=None, outputs=None):
    doc = {"schemaVersion": "0.3", "parameters": params or {}, "mainSteps": list(steps)}
    if outputs:
        doc["outputs"] = outputs
    return doc


def api(name, api_name="DescribeVolumes", inputs=None, **extra):
    step = {"name": name, "action": "aws:executeAwsApi",
            "inputs": dict({"Service": "ec2", "Api": api_name}, **(inputs or {}))}
    step.update(extra)
    return step


def execute(w, doc, params=None, backend=None, faults=None):
    ex = engine.Execution(doc, params or {}, w.session, backend or backend_mod.ScriptedBackend(), {},
                          world_mod.ACCOUNT, w.region, faults=faults)
    ex.world = w
    return ex.run()


def refused(w, doc, params=None, word=""):
    try:
        execute(w, doc, params)
    except engine.EngineError as e:
        expect(word in str(e), "refused for another reason: %s" % e)
        return
    raise Fail("the engine ran what it should refuse: %s" % word)


def t_unimplemented(w):
    refused(w, runbook({"name": "A", "action": "aws:createImage", "inputs": {}}), word="aws:createImage")
    refused(w, runbook(api("A", onSuccess="B")), word="onSuccess")
    refused(w, runbook(api("A", onFailure="step:Nowhere")), word="step:Nowhere")
    sel = api("A", outputs=[{"Name": "X", "Selector": "$.Volumes[?(@.Size > 1)]", "Type": "String"}])
    refused(w, runbook(sel), word="JSONPath")
    refused(w, runbook(api("A"), params={"P": {"type": "StringList"}}), {"P": "x"}, word="StringList")
    refused(w, runbook(api("A"), params={"P": {"type": "String", "allowedPattern": "^a$"}}), {"P": "b"},
            word="does not match")
    refused(w, runbook({"name": "A", "action": "aws:sleep", "inputs": {"Timestamp": "2026-01-01T00:00:00Z"}}),
            word="Duration")


def t_model_validation(w):
    # botocore's model refuses a parameter EC2 does not have: the step fails.
    ex = execute(w, runbook(api("A", inputs={"VolumeIdz": ["vol-1"]})))
    expect(ex.status == "Failed" and "ParamValidationError" in ex.failure_message, ex.failure_message)
    ex = execute(w, runbook(api("A", "CreateVolume", {"AvailabilityZone": "eu-west-1a", "Size": "8"})))
    expect(ex.status == "Failed" and "Size" in ex.failure_message, "a string Size passed: %s" % ex.failure_message)


def t_typed_values_and_outputs(w):
    doc = runbook(
        {"name": "Size", "action": "aws:executeScript",
         "inputs": {"Runtime": "python3.11", "Handler": "h", "Script": "def h(e, c):\n    return {'n': 2}\n"},
         "outputs": [{"Name": "N", "Selector": "$.Payload.n", "Type": "Integer"}]},
        api("Create", "CreateVolume", {"AvailabilityZone": "eu-west-1a", "Size": "{{ Size.N }}"},
            outputs=[{"Name": "Id", "Selector": "$.VolumeId", "Type": "String"},
                     {"Name": "Bad", "Selector": "$.Size", "Type": "String"}]),
        outputs=["Create.Id", "Size.N"])
    ex = execute(w, doc)
    # An Integer output substitutes as a number; a declared type that does not match fails the step.
    expect(ex.steps[1]["status"] == "Failed" and "not String" in ex.steps[1]["message"], ex.steps[1])
    expect(ex.outputs == {"Size.N": 2}, ex.outputs)


def t_retries_and_criticality(w):
    ex = execute(w, runbook(api("A", maxAttempts=2), api("B")), faults=OneFailure(w, "A"))
    expect(ex.status == "Success" and ex.steps[0]["attempts"] == 2, "maxAttempts did not retry: %s" % ex.steps[0])
    ex = execute(w, runbook(api("A", isCritical=False, onFailure="step:B"), api("B")), faults=OneFailure(w, "A"))
    expect(ex.status == "Success" and [r["name"] for r in ex.steps] == ["A", "B"], "isCritical false: %s" % ex.status)
    ex = execute(w, runbook(api("A", onFailure="Continue"), api("B")), faults=OneFailure(w, "A"))
    expect(ex.status == "Success" and len(ex.steps) == 2, "Continue: %s %s" % (ex.status, ex.steps))
    ex = execute(w, runbook(api("A", onFailure="step:C"), api("B"), api("C")), faults=OneFailure(w, "A"))
    expect(ex.status == "Failed" and [r["name"] for r in ex.steps] == ["A", "C"], "step:C: %s" % ex.steps)


def t_wait_timeout_and_branch(w):
    wait = {"name": "W", "action": "aws:waitForAwsResourceProperty", "timeoutSeconds": 60,
            "inputs": {"Service": "ec2", "Api": "DescribeSnapshots", "SnapshotIds": [w.forensics_snapshot],
                       "PropertySelector": "$.Snapshots[0].State", "DesiredValues": ["pending"]}}
    ex = execute(w, runbook(wait))
    expect(ex.status == "TimedOut" and 60 <= ex.clock.now < 70, "wait: %s at %.0f" % (ex.status, ex.clock.now))
    branch = {"name": "B", "action": "aws:branch",
              "inputs": {"Choices": [{"NextStep": "Z", "Variable": "{{ P }}", "StringEquals": "y"}]}}
    doc = runbook(branch, {"name": "Y", "action": "aws:sleep", "isEnd": True, "inputs": {"Duration": "PT1M"}},
                  {"name": "Z", "action": "aws:sleep", "isEnd": True, "inputs": {"Duration": "PT2M"}},
                  params={"P": {"type": "String"}})
    ex = execute(w, doc, {"P": "y"})
    expect(ex.status == "Success" and [r["name"] for r in ex.steps] == ["B", "Z"], "branch: %s" % ex.steps)
    # BRANCH: no match and no Default: the next step in the runbook; after
    # the last step, the execution ends.
    ex = execute(w, doc, {"P": "n"})
    expect(ex.status == "Success" and [r["name"] for r in ex.steps] == ["B", "Y"] and 60 <= ex.clock.now < 120,
           "no Default: %s %s" % (ex.status, ex.steps))
    last = dict(branch, inputs={"Choices": [{"NextStep": "E", "Variable": "{{ P }}", "StringEquals": "y"}]})
    ex = execute(w, runbook({"name": "Y", "action": "aws:sleep", "nextStep": "B", "inputs": {"Duration": "PT1M"}},
                            {"name": "E", "action": "aws:sleep", "isEnd": True, "inputs": {"Duration": "PT1M"}},
                            last, params={"P": {"type": "String"}}), {"P": "n"})
    expect(ex.status == "Success" and [r["name"] for r in ex.steps] == ["Y", "B"], "last: %s" % ex.steps)


def t_cancel(w):
    doc = runbook(api("A", onCancel="step:Clean"), api("B"),
                  {"name": "Clean", "action": "aws:sleep", "nextStep": "Late", "inputs": {"Duration": "PT1M"}},
                  {"name": "Late", "action": "aws:sleep", "inputs": {"Duration": "PT5M"}}, api("After"))
    ex = execute(w, doc, faults=CancelAt("A"))
    names = [(r["name"], r["status"]) for r in ex.steps]
    # onCancel runs its step; the cancellation workflow is cut at two minutes.
    expect(ex.status == "Cancelled" and names == [("A", "Cancelled"), ("Clean", "Success"), ("Late", "Cancelled")],
           "cancel: %s %s" % (ex.status, names))
    ex = execute(w, runbook(api("A"), api("B")), faults=CancelAt("A"))
    expect(ex.status == "Cancelled" and len(ex.steps) == 1, "onCancel Abort: %s" % ex.steps)


def t_console_cut(w):
    doc = {"schemaVersion": "2.2", "parameters": {"VolumeId": {"type": "String"}}, "mainSteps": [
        {"action": "aws:runShellScript", "name": "S", "inputs": {"timeoutSeconds": "60", "runCommand": ["true"]}}]}
    w.session.client("ssm").create_document(Name="Forensics-MountVolume", Content=__import__("json").dumps(doc),
                                            DocumentType="Command", DocumentFormat="JSON")
    step = {"name": "M", "action": "aws:runCommand", "timeoutSeconds": 200,
            "inputs": {"DocumentName": "Forensics-MountVolume", "InstanceIds": [w.instance_id], "TimeoutSeconds": 60,
                       "Parameters": {"VolumeId": "vol-0123456789abcdef0"}}}
    scripted = backend_mod.ScriptedBackend({"Forensics-MountVolume": backend_mod.Outcome("long-output")})
    ex = engine.Execution(runbook(step, outputs=["M.Output"]), {}, w.session, scripted,
                          {"Forensics-MountVolume": doc}, world_mod.ACCOUNT, w.region)
    ex.run()
    out = ex.outputs.get("M.Output", "")
    # The agent keeps 2,400 characters; an Automation output value holds 512.
    expect(ex.status == "Success" and len(out) == 512
           and out.startswith("Forensics-MountVolume: OK"), "cut: %s %d" % (ex.status, len(out)))
    inv = w.session.client("ssm").get_command_invocation(CommandId=ex.values["M.CommandId"], InstanceId=w.instance_id)
    expect(inv["Status"] == "Success" and len(inv["StandardOutputContent"]) == backend_mod.CONSOLE_CUT,
           "the invocation keeps the agent's 2,400 characters: %s %d" % (inv["Status"],
                                                                        len(inv["StandardOutputContent"])))
    scripted = backend_mod.ScriptedBackend({"Forensics-MountVolume": backend_mod.Outcome("failed", exit_code=3)})
    ex = engine.Execution(runbook(dict(step, onFailure="Continue"), api("After", "DescribeVolumes",
                                                                         {"VolumeIds": ["{{ M.CommandId }}"]}),
                                  outputs=["M.Output", "M.Status"]), {}, w.session, scripted,
                          {"Forensics-MountVolume": doc}, world_mod.ACCOUNT, w.region)
    ex.run()
    # EXECSTATUS: a failed step has no outputs; its command's end is read
    # from GetCommandInvocation.
    expect(ex.outputs == {} and "cannot be resolved" in ex.steps[1]["message"], "failed step's outputs: %s %s"
           % (ex.outputs, ex.steps[1]))
    inv = w.session.client("ssm").list_commands()["Commands"][-1]
    inv = w.session.client("ssm").get_command_invocation(CommandId=inv["CommandId"], InstanceId=w.instance_id)
    expect(inv["Status"] == "Failed" and inv["ResponseCode"] == 3, "invocation: %s" % inv)
    scripted = backend_mod.ScriptedBackend({"Forensics-MountVolume": backend_mod.Outcome("undelivered")})
    ex = engine.Execution(runbook(step), {}, w.session, scripted, {"Forensics-MountVolume": doc},
                          world_mod.ACCOUNT, w.region)
    ex.run()
    expect(ex.status == "Failed" and "DeliveryTimedOut" in ex.failure_message and not ex.pending_commands,
           "undelivered within the step: %s" % ex.failure_message)


def t_cycles(w):
    """BRANCHING: any step graph with a circle is refused before it runs."""
    sleep = {"action": "aws:sleep", "inputs": {"Duration": "PT1S"}}
    refused(w, runbook(dict(sleep, name="A", nextStep="B"), dict(sleep, name="B", nextStep="A")),
            word="circle trace A -> B -> A")
    refused(w, runbook(api("A"), api("B", onFailure="step:A")), word="circle trace A -> B -> A")
    refused(w, runbook(api("A"), api("B", onCancel="step:A")), word="circle trace")
    refused(w, runbook(api("A"), {"name": "B", "action": "aws:branch", "inputs": {
        "Choices": [{"NextStep": "C", "Variable": "x", "StringEquals": "y"}], "Default": "A"}},
        dict(sleep, name="C", isEnd=True)), word="circle trace A -> B -> A")
    # The implicit next step counts: C falls through to D, D jumps back.
    refused(w, runbook(dict(sleep, name="C"), dict(sleep, name="D", nextStep="C")), word="C -> D -> C")
    # Validated at start: combinations and outputs AWS refuses.
    refused(w, runbook(dict(sleep, name="A", isEnd=True, nextStep="A")), word="isEnd and nextStep")
    refused(w, runbook(api("A", outputs=[{"Name": "X", "Selector": "$.A"}, {"Name": "X", "Selector": "$.B"}])),
            word="output name")
    refused(w, runbook(api("A", maxAttempts=0)), word="maxAttempts")
    refused(w, runbook(api("A"), outputs=["Nope.X"]), word="runbook output")


def t_step_outputs(w):
    """EXECSTATUS and APIVALUE: outputs of a step that did not succeed, and
    values over 512 characters."""
    def script(name, body, **extra):
        return dict({"name": name, "action": "aws:executeScript",
                     "inputs": {"Runtime": "python3.11", "Handler": "h", "Script": "def h(e, c):\n" + body},
                     "outputs": [{"Name": "V", "Selector": "$.Payload.v", "Type": "String"},
                                 {"Name": "L", "Selector": "$.Payload.l", "Type": "StringList"}]}, **extra)
    ok = script("A", "    return {'v': 'x' * 512, 'l': ['y'] * 50}\n")
    ex = execute(w, runbook(ok, outputs=["A.V"]))
    expect(ex.status == "Success" and len(ex.outputs["A.V"]) == 512, "512 characters: %s" % ex.failure_message)
    long = script("A", "    return {'v': 'x' * 513, 'l': []}\n")
    ex = execute(w, runbook(long, outputs=["A.V"]))
    expect(ex.status == "Failed" and "512" in ex.failure_message and not ex.outputs, "513: %s" % ex.failure_message)
    many = script("A", "    return {'v': 'x', 'l': ['y'] * 51}\n")
    ex = execute(w, runbook(many))
    expect(ex.status == "Failed" and "at most 50" in ex.failure_message, "51 values: %s" % ex.failure_message)
    # A step whose outputs resolved but which then failed has none.
    bad = script("A", "    return {'v': 'x', 'l': 'not a list'}\n", onFailure="step:B", isCritical=False)
    reader = api("B", "DescribeVolumes", {"VolumeIds": ["{{ A.V }}"]})
    ex = execute(w, runbook(bad, reader))
    expect(not any(k.startswith("A.") for k in ex.values) and "cannot be resolved" in ex.steps[1]["message"],
           "a failed step's outputs: %s %s" % (ex.values, ex.steps[1]))
    # Cancelled after its call: the volume exists, its ID is no output.
    create = api("A", "CreateVolume", {"AvailabilityZone": "eu-west-1a", "Size": 1},
                 outputs=[{"Name": "Id", "Selector": "$.VolumeId", "Type": "String"}], onCancel="step:B")
    clean = api("B", "DeleteVolume", {"VolumeId": "{{ A.Id }}"})
    before = len(w.session.client("ec2").describe_volumes()["Volumes"])
    ex = execute(w, runbook(create, clean), faults=CancelAt("A", "after"))
    after = len(w.session.client("ec2").describe_volumes()["Volumes"])
    expect(ex.status == "Cancelled" and after == before + 1 and "cannot be resolved" in ex.steps[1]["message"],
           "cancel after the call: %s, %d -> %d volumes, %s" % (ex.status, before, after, ex.steps))
    ex = execute(w, runbook(create, clean), faults=CancelAt("A", "before"))
    expect(ex.status == "Cancelled" and len(w.session.client("ec2").describe_volumes()["Volumes"]) == after,
           "cancel before the call made a volume: %s" % ex.steps)


def t_loop(w):
    """LOOP: do while, MaxIterations, what the loop refuses."""
    count = {"name": "Count", "action": "aws:executeScript",
             "inputs": {"Runtime": "python3.11", "Handler": "h", "InputPayload": {"i": "{{ L.CurrentIteration }}"},
                        "Script": "def h(e, c):\n    return {'more': 'yes' if e['i'] < 3 else 'no'}\n"},
             "outputs": [{"Name": "More", "Selector": "$.Payload.more", "Type": "String"}]}
    loop = {"name": "L", "action": "aws:loop", "inputs": {
        "Steps": [count], "MaxIterations": 10,
        "LoopCondition": {"Variable": "{{ Count.More }}", "StringEquals": "yes"}}}
    ex = execute(w, runbook(loop, api("After")))
    expect(ex.status == "Success" and [r["name"] for r in ex.steps] == ["L", "Count", "Count", "Count", "After"],
           "do while: %s" % [(r["name"], r["status"]) for r in ex.steps])
    capped = dict(loop, inputs=dict(loop["inputs"], MaxIterations=2))
    ex = execute(w, runbook(capped))
    expect([r["name"] for r in ex.steps] == ["L", "Count", "Count"], "MaxIterations: %s" % ex.steps)
    refused(w, runbook(dict(loop, inputs=dict(loop["inputs"], MaxIterations=101))), word="MaxIterations")
    refused(w, runbook(dict(loop, onCancel="step:L")), word="onCancel")
    refused(w, runbook(dict(loop, inputs=dict(loop["inputs"], Iterators=["a"]))), word="either")
    nested = dict(count, onFailure="step:L")
    refused(w, runbook(dict(loop, inputs=dict(loop["inputs"], Steps=[nested]))), word="inside a loop")
    # A nested failure that aborts fails the loop, which then follows its own onFailure.
    failing = dict(count, inputs=dict(count["inputs"], Script="def h(e, c):\n    raise ValueError('no')\n"))
    ex = execute(w, runbook(dict(loop, onFailure="step:After", inputs=dict(loop["inputs"], Steps=[failing])),
                            api("After")))
    expect(ex.status == "Failed" and [r["name"] for r in ex.steps] == ["L", "Count", "After"],
           "nested failure: %s %s" % (ex.status, ex.steps))


class OneFailure:
    def __init__(self, w, step):
        self.w, self.step, self.done = w, step, False

    def cancel_during(self, name):
        return False

    def enter(self, name, ex):
        if name == self.step and not self.done:
            self.done = True
            self.w.fail_calls = 1

    def leave(self, name, ex):
        self.w.fail_calls = 0


class CancelAt(OneFailure):
    def __init__(self, step, when=True):
        super().__init__(None, step)
        self.when = when

    def cancel_during(self, name):
        if name == self.step and not self.done:
            self.done = True
            return self.when
        return False

    def enter(self, name, ex):
        pass

    def leave(self, name, ex):
        pass


TESTS = [t_unimplemented, t_model_validation, t_typed_values_and_outputs, t_retries_and_criticality,
         t_wait_timeout_and_branch, t_cancel, t_console_cut, t_cycles, t_step_outputs, t_loop]


def run_all():
    """(passed, failed) after printing one line per test."""
    passed = failed = 0
    for t in TESTS:
        w = world_mod.World().start()
        try:
            t(w)
            print("PASS engine: %s" % t.__name__[2:].replace("_", " "))
            passed += 1
        except (Fail, engine.EngineError, KeyError, ValueError) as e:
            print("FAIL engine: %s: %s" % (t.__name__[2:].replace("_", " "), e))
            failed += 1
        finally:
            w.stop()
    return passed, failed
