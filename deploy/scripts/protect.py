"""ProtectInstance step of the Forensics-CaptureInstanceMemory runbook
(aws:executeScript, handler `protect`; restore.py undoes it).

A capture can take hours; the instance, and the memory being read, must not
disappear meanwhile (review W3). `protect` turns on termination protection,
sets the instance-initiated shutdown behaviour to `stop` (a shutdown from
the guest then keeps the instance and its volumes), and moves the instance
to Standby in its Auto Scaling group, so failed health checks under the
capture's load do not replace it (EnterStandby with the desired capacity
lowered: the group launches no replacement). What was there before is
returned and becomes step outputs; restore.py puts exactly that back at the
end of every path, unless KeepProtection is "yes" (the responder isolates or
keeps the instance next).

`protect` either applies everything or undoes what it applied and raises,
so a failure here leaves the instance as it was and nothing created.
"""


def _clients():
    import boto3  # provided by the aws:executeScript runtime

    return boto3.client("ec2"), boto3.client("autoscaling")


def _set_termination(ec2, instance_id, value):
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": value})


def _set_shutdown(ec2, instance_id, value):
    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": value})


def protect(events, context):
    """aws:executeScript entry point of ProtectInstance."""
    ec2, asg = _clients()
    iid = events["InstanceId"]
    term = ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    prior_term = bool(term["DisableApiTermination"]["Value"])
    stop = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    prior_stop = stop["InstanceInitiatedShutdownBehavior"]["Value"]
    member = asg.describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"]
    group = member[0]["AutoScalingGroupName"] if member else ""
    in_service = bool(member) and member[0]["LifecycleState"] == "InService"
    undo = []
    try:
        if not prior_term:
            _set_termination(ec2, iid, True)
            undo.append(lambda: _set_termination(ec2, iid, False))
        if prior_stop != "stop":
            _set_shutdown(ec2, iid, "stop")
            undo.append(lambda: _set_shutdown(ec2, iid, prior_stop))
        if in_service:
            asg.enter_standby(InstanceIds=[iid], AutoScalingGroupName=group, ShouldDecrementDesiredCapacity=True)
    except Exception:
        for step in reversed(undo):
            step()
        raise
    standby = "yes" if in_service else "no"
    return {
        "PriorDisableApiTermination": "true" if prior_term else "false",
        "PriorShutdownBehavior": prior_stop,
        "AutoScalingGroup": group,
        "EnteredStandby": standby,
        "Summary": "termination protection on (was %s), shutdown behaviour stop (was %s)%s"
                   % ("on" if prior_term else "off", prior_stop,
                      ", Standby in Auto Scaling group %s" % group if in_service else
                      (", in group %s but not InService: left as is" % group if group else "")),
    }
