"""aws:runCommand for the local engine: SendCommand through boto3 (moto
validates the request against the SSM model and records the command), then
the invocation itself from the InstanceBackend.

STAND-IN (moto's SendCommand marks every command Success at once and runs
nothing): the invocation's status, exit code, output and duration come from
the backend; the agent's S3 upload of stdout/stderr is written to moto's S3
as the agent lays it out. Semantics, from
https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-action-runcommand.html (RUNCMD)
and monitor-commands.html (CMDSTATUS):
- TimeoutSeconds is the *delivery* timeout (default 3600): a command not
  picked up by then ends DeliveryTimedOut, ResponseCode -1;
- the execution timeout is the Command document's own timeoutSeconds;
- the step's outputs are CommandId, Status, ResponseCode and Output (the
  heads of stdout and stderr, 2,400 characters each, backend.CONSOLE_CUT,
  then cut to 512 characters, the most an Automation output value holds:
  API_StepExecution Outputs, AutomationParameterValue; whether AWS cuts or
  drops a longer Output is not documented, so nothing may rely on more);
- a status other than Success fails the step, and then, like any step that
  did not succeed, it has no outputs at all (engine.py, EXECSTATUS): what
  the command did is read from the invocation (GetCommandInvocation);
- STAND-IN: moto's GetCommandInvocation answers Success, exit 0, no output,
  for every command; the invocation's status, response code and the heads
  of stdout (24,000 characters) and stderr (8,000), as the API reference's
  GetCommandInvocation documents them, are written into moto's record of
  the command when it ends (InProgress until then);
- when the step's timeoutSeconds runs out first, the step times out but the
  invocation goes on: it may still be delivered and run (recorded in
  Execution.pending_commands; the drills treat that as a defect, H1);
- cancelling the execution cancels the command (the agent SIGKILLs its
  process group); the backend is told when through CommandRequest.cancel_after.
"""

import os
import sys

from errors import EngineError, StepFailed
from backend import CONSOLE_CUT, CommandRequest, console_output

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import ssm_script  # noqa: E402  (deploy/tools: parameters and script exactly as the agent gets them)

OUTPUT_MAX = 512  # AutomationParameterValue (engine.VALUE_MAX)
STDOUT_MAX, STDERR_MAX = 24000, 8000  # GetCommandInvocation StandardOutputContent / StandardErrorContent
INPUTS = {"DocumentName", "InstanceIds", "Parameters", "TimeoutSeconds", "OutputS3BucketName",
          "OutputS3KeyPrefix", "Comment"}


def run(ex, step, inputs, record, deadline, cancel_now):
    unknown = set(inputs) - INPUTS
    if unknown:
        raise EngineError("step %s: runCommand inputs %s are not implemented" % (step["name"], sorted(unknown)))
    if step.get("outputs"):
        raise EngineError("step %s: runCommand has fixed outputs; declared outputs are not implemented" % step["name"])
    name = inputs["DocumentName"]
    if name not in ex.documents:
        raise StepFailed("InvalidDocument: %s does not exist in this account" % name)
    document = ex.documents[name]
    instance_ids = inputs["InstanceIds"]
    if len(instance_ids) != 1:
        raise EngineError("step %s: exactly one instance is implemented" % step["name"])
    given = {k: str(v) for k, v in inputs.get("Parameters", {}).items()}
    try:
        params = ssm_script.resolve(document, given)
        _, execution_timeout = ssm_script.script(document, params)
    except (ssm_script.ParameterError, KeyError) as e:
        raise StepFailed("InvalidParameters: %s" % e) from e
    delivery = int(inputs.get("TimeoutSeconds", 3600))  # RUNCMD: SendCommand's default
    request = {"DocumentName": name, "InstanceIds": instance_ids, "TimeoutSeconds": delivery,
               "Parameters": {k: [v] for k, v in given.items()}}
    for key in ("OutputS3BucketName", "OutputS3KeyPrefix", "Comment"):
        if key in inputs:
            request[key] = inputs[key]
    response = ex.client("ssm").send_command(**request)
    command_id = response["Command"]["CommandId"]
    ex.stage("%s.CommandId" % step["name"], command_id)
    record["command_id"] = command_id
    _invocation(ex, command_id, instance_ids[0], document, None)

    start = ex.clock.now
    result = ex.backend.run_command(CommandRequest(
        document_name=name, document=document, parameters=params, instance_id=instance_ids[0],
        execution_timeout=int(execution_timeout), delivery_timeout=delivery,
        cancel_after=1.0 if cancel_now else None,
        wait=_waiter(ex, deadline) if ex.clock.scheduler is not None and not cancel_now else None))
    end = start + result.duration
    if deadline is not None and end > deadline:
        # RUNCMD/TIMEOUTS: the step times out; nothing cancels the invocation.
        ex.pending_commands.append({"step": step["name"], "document": name, "command_id": command_id,
                                    "status": result.status, "ends_at": end, "step_ended_at": deadline})
        ex.clock.now = deadline + 0.001
        return
    ex.clock.now = end
    _upload(ex, inputs, command_id, instance_ids[0], document, result)
    _invocation(ex, command_id, instance_ids[0], document, result)
    output = console_output(result)
    ex.stage("%s.Status" % step["name"], result.status)
    ex.stage("%s.ResponseCode" % step["name"], result.response_code)
    ex.stage("%s.Output" % step["name"], output[:OUTPUT_MAX])
    record["command_status"] = result.status
    record["response_code"] = result.response_code
    record["first_line"] = (result.stdout.split("\n", 1)[0])[:200]
    if result.status == "Cancelled" and ex.stop_requested and not cancel_now:
        # StopAutomationExecution cancelled the command (engine.request_stop).
        raise StepFailed("the execution was stopped while %s ran: command %s Cancelled" % (step["name"], name),
                         "Cancelled")
    if result.status != "Success" and not cancel_now:
        raise StepFailed("command %s %s (exit %s): %s" % (name, result.status, result.response_code,
                                                          record["first_line"]))


def _waiter(ex, deadline):
    """CommandRequest.wait under a scheduler: the invocation's virtual time
    passes in slices, so a StopAutomationExecution landing meanwhile is seen
    when it lands (then: seconds into the invocation); never past the
    step's deadline (what is left then is the pending command's)."""

    def wait(seconds):
        t0 = ex.clock.now
        limit = seconds if deadline is None else min(seconds, max(0.0, deadline - t0))
        while limit - (ex.clock.now - t0) > 1e-6:
            if ex.stop_requested and ex._cancel_deadline is None:
                return ex.clock.now - t0
            ex.clock.advance(min(5.0, limit - (ex.clock.now - t0)))
        if ex.stop_requested and ex._cancel_deadline is None and ex.clock.now - t0 < seconds:
            return ex.clock.now - t0
        return None

    return wait


def _invocation(ex, command_id, instance_id, document, result):
    """STAND-IN: the invocation as GetCommandInvocation reports it (module
    docstring). RESULT None: delivered to the agent, still running."""
    from moto.ssm.models import ssm_backends

    command = ssm_backends[ex.account_id][ex.region].get_command_by_id(command_id)
    plugin = document["mainSteps"][0]["name"]
    for inv in command.invocations:
        if inv["InstanceId"] != instance_id:
            continue
        if result is None:
            inv.update(PluginName=plugin, Status="InProgress", StatusDetails="InProgress", ResponseCode=-1,
                       StandardOutputContent="", StandardErrorContent="")
            command.status = "InProgress"
            continue
        # The agent reports the heads it kept (backend.CONSOLE_CUT); the API
        # shows at most 24,000/8,000 characters of them.
        inv.update(PluginName=plugin, Status=result.status, StatusDetails=result.status,
                   ResponseCode=result.response_code,
                   StandardOutputContent=result.stdout[:CONSOLE_CUT][:STDOUT_MAX],
                   StandardErrorContent=result.stderr[:CONSOLE_CUT][:STDERR_MAX])
        command.status = result.status


def _upload(ex, inputs, command_id, instance_id, document, result):
    """The agent's upload: PREFIX/COMMAND/INSTANCE/awsrunShellScript/PLUGIN/stdout|stderr."""
    bucket = inputs.get("OutputS3BucketName")
    if not bucket or result.status == "DeliveryTimedOut":
        return
    plugin = document["mainSteps"][0]["name"]
    prefix = inputs.get("OutputS3KeyPrefix", "").strip("/")
    base = "/".join(p for p in (prefix, command_id, instance_id, "awsrunShellScript", plugin) if p)
    s3 = ex.client("s3")
    import iam
    # The agent uploads with the instance's role (its instance profile), not
    # the execution role: member.json's InstanceRole and its output policy.
    with iam.acting_as(ex.session, iam.instance_role(ex.account_id)):
        # The agent's canned ACL, so the bucket owner owns the output
        # (run-command-setting-up.html, cross-account output buckets).
        s3.put_object(Bucket=bucket, Key=base + "/stdout", Body=result.stdout.encode(),
                      ACL="bucket-owner-full-control")
        if result.stderr:
            s3.put_object(Bucket=bucket, Key=base + "/stderr", Body=result.stderr.encode(),
                          ACL="bucket-owner-full-control")
