"""Forensics-ShareForensicsSnapshot (security account, aws:executeScript,
handler `share`): share the current forensics volume snapshot with every
ACTIVE account of the organization, so that accounts added since the last
publish (StackSets auto-deployment gives them the documents and roles, but
EBS snapshots cannot be shared with an organization or OU) can create the
forensics volume (deploy review B2).

The security stack runs it every hour (an EventBridge schedule; Organizations
delivers CreateAccountResult only to the management account, so a rule in
the security account would never see it), and it can be started by hand
right after adding an account. Only the accounts not yet listed in the
snapshot's createVolumePermission are added, at most 500 per
ModifySnapshotAttribute call (the API's limit). The security account must be
able to call organizations:ListAccounts: the management account, or the
Organizations delegated administrator.
"""

BATCH = 500


def missing_accounts(organization, already, own):
    """The ACTIVE accounts to add, sorted: not the owner, not already shared."""
    return sorted(a for a in organization if a != own and a not in already)


def batches(accounts, size=BATCH):
    return [accounts[i:i + size] for i in range(0, len(accounts), size)]


def share(events, context):
    """aws:executeScript entry point."""
    import boto3  # provided by the aws:executeScript runtime

    ssm = boto3.client("ssm")
    snapshot_id = ssm.get_parameter(Name=events["SnapshotParameter"])["Parameter"]["Value"].strip()
    if not snapshot_id.startswith("snap-"):
        return {"SnapshotId": snapshot_id, "Added": 0, "Summary": "nothing published yet (%s)" % snapshot_id}
    ec2 = boto3.client("ec2")
    own = boto3.client("sts").get_caller_identity()["Account"]
    organization = []
    for page in boto3.client("organizations").get_paginator("list_accounts").paginate():
        organization += [a["Id"] for a in page["Accounts"] if a["Status"] == "ACTIVE"]
    attr = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    already = {p["UserId"] for p in attr.get("CreateVolumePermissions", []) if "UserId" in p}
    todo = missing_accounts(organization, already, own)
    for batch in batches(todo):
        ec2.modify_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission",
                                      OperationType="add", UserIds=batch)
    return {"SnapshotId": snapshot_id, "Added": len(todo),
            "Summary": "%s shared with %d more account(s); %d active account(s) in the organization"
                       % (snapshot_id, len(todo), len(organization))}
