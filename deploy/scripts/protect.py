"""ProtectInstance step of the Forensics-CaptureInstanceMemory runbook
(aws:executeScript, handler `protect`; restore.py undoes it).

A capture can take hours; the instance, and the memory being read, must not
disappear meanwhile (review W3). `protect` turns on termination protection,
sets the instance-initiated shutdown behaviour to `stop` (a shutdown from
the guest then keeps the instance and its volumes), and keeps its Auto
Scaling group from replacing or removing it:
- desired capacity above the group's minimum: EnterStandby, lowering the
  desired capacity, so no replacement is launched and no health check runs
  on it. EnterStandby with ShouldDecrementDesiredCapacity is refused when
  desired would drop below the minimum ("the instances can enter standby as
  long as the desired capacity ... after the instances are placed into
  standby is equal to or greater than the minimum capacity of the group",
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_EnterStandby.html),
  and standby without lowering it launches a replacement (same page);
- desired capacity at the minimum (the common case): scale-in protection on
  the instance (SetInstanceProtection; it "does not protect Auto Scaling
  instances from ... health check replacement", ec2-auto-scaling-instance-
  protection.html), and the group's HealthCheck, ReplaceUnhealthy,
  AZRebalance and InstanceRefresh processes suspended, those being what
  would still terminate it (as-suspend-resume-processes.html: "prevent
  Amazon EC2 Auto Scaling from marking instances unhealthy and replacing
  them"); processes already suspended are left alone.

What it found and what it changed is written first, as the instance tag
forensics-volume:protection, and restore.py reads it from there: a step that
is cancelled has no outputs in Automation even when its call was made, so
the state to restore must not live in step outputs. restore.py puts exactly
that back at the end of every path, unless KeepProtection is "yes" (the
responder isolates or keeps the instance next; the tag then says what to
restore by hand).

`protect` either applies everything or undoes what it applied and raises,
so a failure here leaves the instance as it was and nothing created.
"""

TAG = "forensics-volume:protection"
PROCESSES = ["HealthCheck", "ReplaceUnhealthy", "AZRebalance", "InstanceRefresh"]


def protect(events, context):
    """aws:executeScript entry point of ProtectInstance."""
    import boto3  # provided by the aws:executeScript runtime

    ec2, asg = boto3.client("ec2"), boto3.client("autoscaling")
    iid = events["InstanceId"]
    term = ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    prior_term = bool(term["DisableApiTermination"]["Value"])
    stop = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    prior_stop = stop["InstanceInitiatedShutdownBehavior"]["Value"]
    member = asg.describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"]
    group = member[0]["AutoScalingGroupName"] if member else ""
    mode, suspend = "", []
    if member and member[0]["LifecycleState"] == "InService":
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        if g["DesiredCapacity"] > g["MinSize"]:
            mode = "standby"
        else:
            mode = "" if member[0].get("ProtectedFromScaleIn") else "protect"
            held = {p["ProcessName"] for p in g.get("SuspendedProcesses", [])}
            suspend = [p for p in PROCESSES if p not in held]
    tag = [{"Key": TAG, "Value": "t=%d s=%s g=%s m=%s p=%s" % (prior_term, prior_stop, group, mode, ",".join(suspend))}]
    ec2.create_tags(Resources=[iid], Tags=tag)
    undo = [lambda: ec2.delete_tags(Resources=[iid], Tags=tag)]
    try:
        if not prior_term:
            ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
            undo.append(lambda: ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False}))
        if prior_stop != "stop":
            ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "stop"})
            undo.append(lambda: ec2.modify_instance_attribute(
                InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": prior_stop}))
        if mode == "standby":
            asg.enter_standby(InstanceIds=[iid], AutoScalingGroupName=group, ShouldDecrementDesiredCapacity=True)
        if mode == "protect":
            asg.set_instance_protection(InstanceIds=[iid], AutoScalingGroupName=group, ProtectedFromScaleIn=True)
            undo.append(lambda: asg.set_instance_protection(InstanceIds=[iid], AutoScalingGroupName=group,
                                                            ProtectedFromScaleIn=False))
        if suspend:
            asg.suspend_processes(AutoScalingGroupName=group, ScalingProcesses=suspend)
    except Exception:
        for step in reversed(undo):
            step()
        raise
    return {"Summary": "protected (before: %s)" % tag[0]["Value"]}
