"""RestoreInstance steps of the Forensics-CaptureInstanceMemory runbook
(aws:executeScript, handler `restore`): put back the termination
protection, shutdown behaviour and Auto Scaling state that ProtectInstance
(protect.py) found, as its instance tag forensics-volume:protection says,
unless KeepProtection is "yes". Only what protect changed is undone, and
only if it is still so (ExitStandby only from Standby), so a run cancelled
at any point restores the same. No tag: protect changed nothing. Kept apart
from protect.py so the runbook embeds only what each step runs.
"""

TAG = "forensics-volume:protection"


def restore(events, context):
    """aws:executeScript entry point of RestoreInstance."""
    iid = events["InstanceId"]
    if events.get("KeepProtection") == "yes":
        return {"Summary": "kept (KeepProtection=yes); tag %s has the prior state" % TAG}
    import boto3  # provided by the aws:executeScript runtime

    ec2, asg = boto3.client("ec2"), boto3.client("autoscaling")
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]},
                                       {"Name": "key", "Values": [TAG]}])["Tags"]
    if not found:
        return {"Summary": "nothing to restore"}
    f = dict(x.split("=", 1) for x in found[0]["Value"].split(" "))
    if f["t"] == "0":
        ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    if f["s"] != "stop":
        ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": f["s"]})
    now = asg.describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"]
    if f["m"] == "standby" and now and now[0]["LifecycleState"] == "Standby":
        asg.exit_standby(InstanceIds=[iid], AutoScalingGroupName=f["g"])
    if f["m"] == "protect":
        asg.set_instance_protection(InstanceIds=[iid], AutoScalingGroupName=f["g"], ProtectedFromScaleIn=False)
    if f["p"]:
        asg.resume_processes(AutoScalingGroupName=f["g"], ScalingProcesses=f["p"].split(","))
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": TAG}])
    return {"Summary": "restored to %s" % found[0]["Value"]}
