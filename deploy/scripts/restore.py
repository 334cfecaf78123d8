"""RestoreInstance steps of the Forensics-CaptureInstanceMemory runbook
(aws:executeScript, handler `restore`): put back the termination
protection, shutdown behaviour and Auto Scaling state that ProtectInstance
(protect.py) found, unless KeepProtection is "yes". Kept apart from
protect.py so the runbook embeds only what each step runs.
"""


def restore(events, context):
    """aws:executeScript entry point of RestoreInstance."""
    iid = events["InstanceId"]
    if events.get("KeepProtection") == "yes":
        return {"Summary": "protections kept on %s (KeepProtection=yes): restore them by hand" % iid}
    import boto3  # provided by the aws:executeScript runtime

    ec2 = boto3.client("ec2")
    done = []
    if events["PriorDisableApiTermination"] == "false":
        ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
        done.append("termination protection off")
    if events["PriorShutdownBehavior"] != "stop":
        ec2.modify_instance_attribute(InstanceId=iid,
                                      InstanceInitiatedShutdownBehavior={"Value": events["PriorShutdownBehavior"]})
        done.append("shutdown behaviour %s" % events["PriorShutdownBehavior"])
    if events["EnteredStandby"] == "yes":
        boto3.client("autoscaling").exit_standby(InstanceIds=[iid], AutoScalingGroupName=events["AutoScalingGroup"])
        done.append("back InService in %s" % events["AutoScalingGroup"])
    return {"Summary": "%s restored: %s" % (iid, ", ".join(done) if done else "nothing had changed")}
