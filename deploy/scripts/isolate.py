"""Isolate step of Forensics-CaptureInstanceMemory (aws:executeScript,
handler `isolate`): with IsolationSecurityGroupId set, every network
interface gets only that group (docs/deploy.md says what it does to the SSM
agent); otherwise nothing.
"""


def isolate(events, context):
    """aws:executeScript entry point."""
    group = events.get("SecurityGroupId", "")
    if not group:
        return {"Summary": "not isolated (IsolationSecurityGroupId empty)", "PriorGroups": ""}
    import boto3  # provided by the aws:executeScript runtime

    ec2 = boto3.client("ec2")
    inst = ec2.describe_instances(InstanceIds=[events["InstanceId"]])["Reservations"][0]["Instances"][0]
    prior = []
    for eni in inst.get("NetworkInterfaces", []):
        before = [g["GroupId"] for g in eni.get("Groups", [])]
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[group])
        prior.append("%s:%s" % (eni["NetworkInterfaceId"], ",".join(before)))
    return {"Summary": "isolated: %d interface(s) now in %s only; the SSM agent loses its connection"
                       % (len(prior), group), "PriorGroups": " ".join(prior)}
