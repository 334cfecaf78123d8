#!/usr/bin/env python3
"""fleet.py: one start for a fleet of instances (issue 24; docs/deploy.md "Fleet").

Run in the security account as the responder role (Python 3 and boto3, as
in AWS CloudShell). For each member account and region it assumes the
member's Forensics-AutomationStarter role and starts ONE rate-controlled
execution of the member's own Forensics-CaptureInstanceMemory
(TargetParameterName InstanceId, Targets, MaxConcurrency, MaxErrors:
Automation's own rate control, which makes a child execution per instance,
https://docs.aws.amazon.com/systems-manager/latest/userguide/running-automations-scale.html);
follows the parents and their children to the end; then writes ONE fleet
record into the custody bucket (fleet/CASE/FLEET_ID.json, If-None-Match: *,
Object Lock in compliance mode) and prints a table.

    fleet.py --case IR-2026-042 --examiner jdoe --security-account 222222222222 \\
        --accounts 333333333333,444444444444 --regions eu-west-1,us-east-1 \\
        --tag Incident=IR-2026-042 --max-concurrency 10 --max-errors 3
    fleet.py --resume FLEET_ID          follow a fleet started earlier, then write its record
    fleet.py --report-only FLEET_ID     print where it stands; write nothing

Exit codes: 0 every targeted instance's memory evidence is in custody;
1 the fleet ended and some instance is not in custody (the table says why);
2 bad usage; 3 nothing could be started or the fleet record could not be
written; 4 interrupted (the fleet goes on in AWS: --resume FLEET_ID).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import time
import uuid

RUNBOOK = "Forensics-CaptureInstanceMemory"
STARTER_ROLE = "Forensics-AutomationStarter"
# "You can target a maximum of 50 parameter values" (Mapping targets for an
# automation, running-automations-map-targets.html): more IDs in one
# location are started as several parents.
PARAMETER_VALUES_MAX = 50
# EBS: "a limit of 20 concurrent snapshot copy requests per destination
# Region" (ebs-copy-snapshot.html). Every member account and region copies
# its evidence into the security account's region, so the fleet's
# concurrency in one region is kept at most this; the runbook's Custody
# waits out ResourceLimitExceeded when other copies fill it anyway.
COPY_QUOTA = 20
# Automation: "Each AWS account can run 100 automations simultaneously.
# This includes child automations ... and rate control automations";
# more are queued (1,000) (Systems Manager quotas; systems-manager-automation.html).
# One location's parent counts itself: at most 99 children at a time.
AUTOMATION_QUOTA = 100
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut", "CompletedWithSuccess", "CompletedWithFailure",
            "Rejected", "Exited"}
# The starter role's sessions last an hour at most (member.json MaxSessionDuration):
# renewed before that while a fleet is followed.
SESSION_RENEW = 2700
UNREADABLE_LOOKS = 20
# A custody record is 5 to 20 KiB; capture verify reads an entry's copy of
# at most 4 MiB (FLEET-FORMAT).
RECORD_MAX = 4 << 20
SIZES = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}


class FleetError(Exception):
    """A fleet-level failure; the message says what to do."""


def utc(now=None):
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="fleet.py", description="Capture the memory of many instances at once "
                                "(docs/deploy.md \"Fleet\").")
    p.add_argument("--case", help="case ID (CaseId of every execution)")
    p.add_argument("--examiner", help="who runs the capture (Examiner)")
    p.add_argument("--security-account", help="this (the security) account's ID")
    p.add_argument("--accounts", help="member account IDs, comma-separated")
    p.add_argument("--regions", help="regions, comma-separated")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--instances", help="instance IDs, comma-separated; ACCOUNT:REGION:i-... when there is "
                      "more than one account or region")
    what.add_argument("--tag", help="KEY=VALUE: every instance with that tag in each account and region")
    what.add_argument("--resource-group", help="a resource group of that name in each account and region")
    p.add_argument("--max-concurrency", default="10", help="instances captured at once, the whole fleet (N or "
                   "N%%; default 10); split over the locations, see docs")
    p.add_argument("--max-errors", default="0", help="failed instances before the rest are not started (N or "
                   "N%%; default 0: stop queueing at the first failure); split over the locations")
    p.add_argument("--starter-role", default=STARTER_ROLE, help="the member starter role's name")
    p.add_argument("--custody-bucket", help="default forensics-custody-SECURITY_ACCOUNT")
    p.add_argument("--retention-days", type=int, default=3650, help="Object Lock days of the fleet record "
                   "(at most the security stack's CustodyMaxRetentionDays; default 3650)")
    p.add_argument("--state-dir", default=".", help="where fleet-FLEET_ID.json is kept for --resume (default .)")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between looks at the executions")
    p.add_argument("--resume", metavar="FLEET_ID", help="follow a fleet started earlier, then write its record")
    p.add_argument("--report-only", metavar="FLEET_ID", help="print the fleet's table now; write nothing")
    a = p.parse_args(argv)
    if not (a.resume or a.report_only):
        missing = [n for n in ("case", "examiner", "security_account", "accounts", "regions") if not getattr(a, n)]
        if missing or not (a.instances or a.tag or a.resource_group):
            p.error("a new fleet needs --case, --examiner, --security-account, --accounts, --regions and one of "
                    "--instances, --tag, --resource-group (missing: %s)" %
                    ", ".join(["--" + m.replace("_", "-") for m in missing] or ["the targets"]))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", a.case):
            p.error("--case %r: letters, digits, '.', '_', '-', at most 64 (the runbook's CaseId)" % a.case)
        for v, name in ((a.max_concurrency, "--max-concurrency"), (a.max_errors, "--max-errors")):
            if not re.fullmatch(r"[0-9]{1,6}%?", v) or (name == "--max-concurrency" and int(v.rstrip("%")) < 1):
                p.error("%s %r: a number or a percentage (N%%)" % (name, v))
        if a.tag and "=" not in a.tag:
            p.error("--tag %r: KEY=VALUE" % a.tag)
    return a


# ---- planning ------------------------------------------------------------------------------


def split(total, weights, floor):
    """TOTAL shared out in proportion to WEIGHTS (largest remainder), each
    share at least FLOOR."""
    whole = sum(weights) or 1
    exact = [total * w / whole for w in weights]
    shares = [max(floor, int(x)) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in order[:max(0, total - sum(shares))]:
        shares[i] += 1
    return shares


def rate_controls(starts, max_concurrency, max_errors):
    """Each start's MaxConcurrency and MaxErrors. A percentage is passed to
    every start as is (Automation takes it of that start's targets). A
    number is split in proportion to each start's instance count (largest
    remainder; concurrency at least 1 and at most its instances, and at most
    AUTOMATION_QUOTA - 1); then, per region, the starts' concurrency is
    scaled down to COPY_QUOTA in all (every account's copies of one region
    go to the security account's same region)."""
    weights = [s["count"] if s["count"] is not None else 1 for s in starts]
    if max_concurrency.endswith("%"):
        conc = [max_concurrency] * len(starts)
    else:
        conc = split(int(max_concurrency), weights, 1)
        conc = [min(c, w if s["count"] is not None else c, AUTOMATION_QUOTA - 1) or 1
                for c, w, s in zip(conc, weights, starts)]
        for region in {s["region"] for s in starts}:
            idx = [i for i, s in enumerate(starts) if s["region"] == region]
            if sum(conc[i] for i in idx) > COPY_QUOTA:
                scaled = split(COPY_QUOTA, [conc[i] for i in idx], 1)
                for i, c in zip(idx, scaled):
                    conc[i] = min(conc[i], c)
        conc = [str(c) for c in conc]
    errs = [max_errors] * len(starts) if max_errors.endswith("%") else \
        [str(e) for e in split(int(max_errors), weights, 0)]
    for s, c, e in zip(starts, conc, errs):
        s["max_concurrency"], s["max_errors"] = c, e


def plan(args, sessions):
    """The starts: one per account and region (several when more than 50
    instance IDs), each with its Targets and the instances it is known to
    hold (None: resolved by Automation; counted for the split when the
    starter role can)."""
    accounts = [x for x in args.accounts.split(",") if x]
    regions = [x for x in args.regions.split(",") if x]
    for acct in accounts:
        if not re.fullmatch(r"[0-9]{12}", acct):
            raise FleetError("--accounts: %r is not an account ID" % acct)
    starts = []
    if args.instances:
        by_loc = {}
        for item in [x for x in args.instances.split(",") if x]:
            parts = item.split(":")
            if len(parts) == 1 and len(accounts) == 1 and len(regions) == 1:
                parts = [accounts[0], regions[0], item]
            if len(parts) != 3 or parts[0] not in accounts or parts[1] not in regions or \
                    not re.fullmatch(r"i-([0-9a-f]{8}|[0-9a-f]{17})", parts[2]):
                raise FleetError("--instances: %r must be ACCOUNT:REGION:i-... of the given --accounts and "
                                 "--regions (a bare i-... only with one account and one region)" % item)
            by_loc.setdefault((parts[0], parts[1]), [])
            if parts[2] not in by_loc[(parts[0], parts[1])]:
                by_loc[(parts[0], parts[1])].append(parts[2])
        for (acct, region), ids in sorted(by_loc.items()):
            for i in range(0, len(ids), PARAMETER_VALUES_MAX):
                chunk = ids[i:i + PARAMETER_VALUES_MAX]
                starts.append({"account": acct, "region": region, "count": len(chunk), "instances": chunk,
                               "targets": [{"Key": "ParameterValues", "Values": chunk}]})
        return starts
    for acct in accounts:
        for region in regions:
            if args.tag:
                key, value = args.tag.split("=", 1)
                targets = [{"Key": "tag:" + key, "Values": [value]}]
            else:
                targets = [{"Key": "ResourceGroup", "Values": [args.resource_group]}]
            starts.append({"account": acct, "region": region, "targets": targets, "instances": None,
                           "count": count_targets(sessions, acct, region, args)})
    return starts


def count_targets(sessions, account, region, args):
    """How many instances a tag or resource group names in one location,
    for the concurrency split only (Automation resolves the targets
    itself); None when the starter role cannot say."""
    try:
        session = sessions.get(account, region)
        if args.tag:
            key, value = args.tag.split("=", 1)
            pages = session.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
                TagFilters=[{"Key": key, "Values": [value]}], ResourceTypeFilters=["ec2:instance"])
            return sum(len(p.get("ResourceTagMappingList", [])) for p in pages)
        pages = session.client("resource-groups").get_paginator("list_group_resources").paginate(
            Group=args.resource_group)
        return sum(1 for p in pages for r in p.get("Resources", [])
                   if r.get("Identifier", {}).get("ResourceType") == "AWS::EC2::Instance")
    except Exception:  # noqa: BLE001  (only the split is less even; the start says what is wrong)
        return None


class Starters:
    """Sessions as each member's starter role, renewed before they expire."""

    def __init__(self, session, role_name, now=time.monotonic):
        self.session, self.role_name, self.now = session, role_name, now
        self.cache, self.failed = {}, {}
        self.partition = None

    def get(self, account, region):
        import boto3

        if account in self.failed:
            raise FleetError(self.failed[account])
        got = self.cache.get(account)
        if got is None or self.now() - got[0] > SESSION_RENEW:
            if self.partition is None:
                self.partition = self.session.client("sts").get_caller_identity()["Arn"].split(":")[1]
            arn = "arn:%s:iam::%s:role/%s" % (self.partition, account, self.role_name)
            try:
                creds = self.session.client("sts").assume_role(RoleArn=arn, RoleSessionName="forensics-fleet",
                                                               DurationSeconds=3600)["Credentials"]
            except Exception as e:  # noqa: BLE001
                self.failed[account] = ("could not assume %s (%s): is the member stack deployed in account %s, "
                                        "and are you the security account's responder role?" % (arn, e, account))
                raise FleetError(self.failed[account]) from e
            got = (self.now(), creds)
            self.cache[account] = got
        creds = got[1]
        return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"], region_name=region)


# ---- state ---------------------------------------------------------------------------------


def state_path(state_dir, fleet_id):
    if not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}", fleet_id or ""):
        raise FleetError("%r is not a fleet ID (YYYYMMDDTHHMMSSZ-xxxxxxxx, printed when the fleet started)"
                         % fleet_id)
    return os.path.join(state_dir, "fleet-%s.json" % fleet_id)


def save(state):
    """The state file, replaced atomically after every start."""
    path = state["path"]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in state.items() if k != "path"}, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def load(state_dir, fleet_id):
    path = state_path(state_dir, fleet_id)
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError) as e:
        raise FleetError("cannot read %s (%s): run from the directory the fleet was started in, or give "
                         "--state-dir" % (path, e)) from e
    state["path"] = path
    return state


# ---- start and follow ----------------------------------------------------------------------


def start_all(state, starters, out):
    for s in state["starts"]:
        if s.get("parent") or s.get("failure"):
            continue  # a resume: started (or refused) before
        try:
            ssm = starters.get(s["account"], s["region"]).client("ssm")
            s["parent"] = ssm.start_automation_execution(
                DocumentName=RUNBOOK, TargetParameterName="InstanceId", Targets=s["targets"],
                MaxConcurrency=s["max_concurrency"], MaxErrors=s["max_errors"],
                Parameters={"CaseId": [state["case_id"]], "Examiner": [state["examiner"]]},
            )["AutomationExecutionId"]
            out.write("started %s %s: %s (MaxConcurrency %s, MaxErrors %s, %s)\n" % (
                s["account"], s["region"], s["parent"], s["max_concurrency"], s["max_errors"],
                "%d instance(s)" % s["count"] if s["count"] is not None else "targets resolved by Automation"))
        except Exception as e:  # noqa: BLE001  (one location's refusal does not stop the others)
            s["failure"] = "not started: %s" % e
            out.write("NOT started %s %s: %s\n" % (s["account"], s["region"], e))
        save(state)


def follow(state, starters, out, sleep, poll):
    """Until every parent is in a final state; a line per change."""
    last, unreadable = None, {}
    while True:
        line, running = [], 0
        for s in state["starts"]:
            if not s.get("parent"):
                continue
            try:
                ex = starters.get(s["account"], s["region"]).client("ssm").get_automation_execution(
                    AutomationExecutionId=s["parent"])["AutomationExecution"]
                status = ex["AutomationExecutionStatus"]
                # ProgressCounters: a rate-controlled parent's children so far
                # (API_AutomationExecution).
                p = ex.get("ProgressCounters") or {}
                done = sum(p.get(k, 0) for k in ("SuccessSteps", "FailedSteps", "CancelledSteps", "TimedOutSteps"))
                if p.get("TotalSteps"):
                    status += " %d/%d done, %d failed" % (done, p["TotalSteps"], done - p.get("SuccessSteps", 0))
                unreadable[s["parent"]] = 0
            except Exception as e:  # noqa: BLE001  (said, and tried again at the next look)
                status = "unreadable (%s)" % str(e)[:80]
                unreadable[s["parent"]] = unreadable.get(s["parent"], 0) + 1
            # A parent unreadable UNREADABLE_LOOKS times in a row is given up
            # here (the report says it could not be read; --resume tries again).
            if status.split(" ")[0] not in TERMINAL and unreadable.get(s["parent"], 0) < UNREADABLE_LOOKS:
                running += 1
            line.append("%s/%s %s" % (s["account"], s["region"], status))
        if line != last:
            out.write("%s  %s\n" % (utc(), "; ".join(line) or "nothing started"))
            out.flush()
            last = line
        if not running:
            return
        sleep(poll)


# ---- the record ----------------------------------------------------------------------------


def children(ssm, parent):
    found, kw = [], {"Filters": [{"Key": "ParentExecutionId", "Values": [parent]}]}
    while True:
        resp = ssm.describe_automation_executions(**kw)
        found += [x["AutomationExecutionId"] for x in resp.get("AutomationExecutionMetadataList", [])]
        if not resp.get("NextToken"):
            return found
        kw["NextToken"] = resp["NextToken"]


def capture_of(record):
    """(capture_status, bytes) from the record's capture final line."""
    line = ((record or {}).get("capture") or {}).get("final_line") or ""
    m = re.search(r": ([0-9.]+) (B|KiB|MiB|GiB|TiB) of RAM", line)
    size = int(float(m.group(1)) * SIZES[m.group(2)]) if m else None
    if line.startswith("capture: complete"):
        return "complete", size
    if line.startswith("capture: PARTIAL"):
        return "partial", size
    return "none", None


def custody_record(s3, bucket, account, region, case_id, execution_id):
    """The execution's custody record as written (bucket, key, version,
    sha256 of its bytes, the object), and a note when its key has more than
    one version or a contested sibling; (None, why) when there is none."""
    key = "custody/%s/%s/%s/%s.json" % (account, region, case_id, execution_id)
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
        body = obj["Body"].read()
        record = json.loads(body)
        text = body.decode("utf-8")
    except Exception as e:  # noqa: BLE001
        return None, "no custody record s3://%s/%s, or not JSON in UTF-8 (%s)" % (bucket, key, str(e)[:200])
    if len(body) > RECORD_MAX:
        return None, "the custody record s3://%s/%s is %d bytes, over %d: not copied" % (bucket, key, len(body),
                                                                                          RECORD_MAX)
    note = None
    try:
        listing = s3.list_object_versions(Bucket=bucket, Prefix=key[:-5] + ".")
        versions = [v for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []) if v["Key"] == key]
        others = sorted({v["Key"] for v in listing.get("Versions", []) if v["Key"] != key and ".contested-" in v["Key"]})
        if len(versions) != 1 or others:
            note = ("custody record CONTESTED: %d version(s) of the key%s; capture verify --custody-versions "
                    "refuses it" % (len(versions), ", " + " ".join(others) if others else ""))
    except Exception as e:  # noqa: BLE001
        note = "custody record versions not listed (%s)" % str(e)[:200]
    # record_json: the object's exact bytes (custody.py writes ASCII JSON),
    # which sha256 is of; record: the same parsed, for reading.
    return {"bucket": bucket, "key": key, "version_id": obj.get("VersionId"),
            "sha256": hashlib.sha256(body).hexdigest(), "record_json": text, "record": record}, note


def entries_of(state, starters, s3):
    entries = []
    for s in state["starts"]:
        loc = {"account": s["account"], "region": s["region"]}
        if not s.get("parent"):
            for iid in s.get("instances") or [None]:
                entries.append(dict(loc, instance_id=iid, execution_id=None, status="NotStarted",
                                    capture_status="none", bytes=None, custody_copy=None, custody_record=None,
                                    failure=s.get("failure") or "not started"))
            continue
        try:
            ssm = starters.get(s["account"], s["region"]).client("ssm")
            parent = ssm.get_automation_execution(AutomationExecutionId=s["parent"])["AutomationExecution"]
            kids = [ssm.get_automation_execution(AutomationExecutionId=c)["AutomationExecution"]
                    for c in children(ssm, s["parent"])]
        except Exception as e:  # noqa: BLE001
            entries.append(dict(loc, instance_id=None, execution_id=s["parent"], status="Unknown",
                                capture_status="none", bytes=None, custody_copy=None, custody_record=None,
                                failure="the parent %s could not be read: %s" % (s["parent"], e)))
            continue
        seen = set()
        for k in sorted(kids, key=lambda k: (k.get("Parameters", {}).get("InstanceId") or [""])[0]):
            iid = (k.get("Parameters", {}).get("InstanceId") or [None])[0]
            seen.add(iid)
            status = k["AutomationExecutionStatus"]
            got, note = custody_record(s3, state["custody_bucket"], s["account"], s["region"], state["case_id"],
                                       k["AutomationExecutionId"])
            record = got["record"] if got else None
            copy = (record or {}).get("security_snapshot_id") or None
            cap, size = capture_of(record)
            failure = None if status == "Success" else (k.get("FailureMessage") or status)[:1000]
            if note and (not got or status == "Success" or "CONTESTED" in note):
                failure = "; ".join(x for x in (failure, note) if x)
            entries.append(dict(loc, instance_id=iid, execution_id=k["AutomationExecutionId"], status=status,
                                capture_status=cap, bytes=size, custody_copy=copy, custody_record=got,
                                failure=failure))
        resolved = (parent.get("ResolvedTargets") or {}).get("ParameterValues") or s.get("instances") or []
        why = ("queued when the parent ended (%s, MaxErrors %s reached or the parent stopped): never started"
               % (parent["AutomationExecutionStatus"], s["max_errors"]))
        for iid in resolved:
            if iid not in seen:
                entries.append(dict(loc, instance_id=iid, execution_id=None, status="NotStarted",
                                    capture_status="none", bytes=None, custody_copy=None, custody_record=None,
                                    failure=why))
        if (parent.get("ResolvedTargets") or {}).get("Truncated"):
            entries.append(dict(loc, instance_id=None, execution_id=s["parent"], status="Unknown",
                                capture_status="none", bytes=None, custody_copy=None, custody_record=None,
                                failure="Automation's list of resolved targets is truncated: instances beyond it "
                                "that never started are not listed here"))
    return entries


def in_custody(e):
    return bool(e["custody_copy"] and e["custody_record"] and "CONTESTED" not in (e["failure"] or ""))


def fleet_record(state, entries, finished):
    done = [e for e in entries if e["instance_id"]]
    return {
        "schema": "forensics-volume/fleet-record", "schema_version": 1,
        "fleet_id": state["fleet_id"], "case_id": state["case_id"], "examiner": state["examiner"],
        "security_account": state["security_account"], "started": state["started"], "finished": finished,
        "request": state["request"],
        "totals": {
            "instances": len(done),
            "in_custody": sum(1 for e in done if in_custody(e)),
            "failed": sum(1 for e in done if e["status"] not in ("Success", "NotStarted")),
            "complete": sum(1 for e in done if in_custody(e) and e["capture_status"] == "complete"),
            "partial": sum(1 for e in done if in_custody(e) and e["capture_status"] == "partial"),
            "not_started": sum(1 for e in done if e["status"] == "NotStarted"),
        },
        "entries": entries,
    }


def table(record, out):
    rows = [("ACCOUNT", "REGION", "INSTANCE", "STATUS", "CAPTURE", "COPY", "WHY")]
    for e in record["entries"]:
        rows.append((e["account"], e["region"], e["instance_id"] or "-", e["status"], e["capture_status"],
                     e["custody_copy"] or "-", (e["failure"] or "")[:100]))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[6] + "\n")
    t = record["totals"]
    out.write("fleet %s case %s: %d instance(s), %d in custody (%d complete, %d partial), %d failed, "
              "%d not started\n" % (record["fleet_id"], record["case_id"], t["instances"], t["in_custody"],
                                    t["complete"], t["partial"], t["failed"], t["not_started"]))


def write_record(session, state, record, out):
    """fleet/CASE/FLEET_ID.json, once (If-None-Match: *), locked in
    compliance mode for --retention-days. A resume after it was written
    finds it there and leaves it."""
    key = "fleet/%s/%s.json" % (state["case_id"], state["fleet_id"])
    body = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=state["retention_days"])
    try:
        put = session.client("s3").put_object(
            Bucket=state["custody_bucket"], Key=key, Body=body, ContentType="application/json",
            ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until, ChecksumAlgorithm="SHA256",
            IfNoneMatch="*")
    except Exception as e:  # noqa: BLE001
        if "PreconditionFailed" in str(e):
            out.write("the fleet record s3://%s/%s was already written (left as it is)\n"
                      % (state["custody_bucket"], key))
            return True
        out.write("fleet: error: writing the fleet record s3://%s/%s failed: %s\n" % (state["custody_bucket"], key, e))
        return False
    out.write("fleet record s3://%s/%s version %s sha256 %s, locked until %s\n" % (
        state["custody_bucket"], key, put.get("VersionId"), hashlib.sha256(body).hexdigest(), until.date()))
    return True


def requested(args, starts):
    """The request's targets as given: the tag or resource group, or the
    instance IDs, each ACCOUNT:REGION:ID."""
    if args.instances:
        return [{"Key": "ParameterValues", "Values": ["%s:%s:%s" % (s["account"], s["region"], i)
                                                      for s in starts for i in s["instances"]]}]
    return starts[0]["targets"] if starts else []


def main(argv, session=None, sleep=time.sleep, out=sys.stdout, now=time.monotonic):
    try:
        args = parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if session is None:
        import boto3

        session = boto3.session.Session()
    state = {"fleet_id": args.resume or args.report_only or "FLEET_ID"}
    try:
        if args.resume or args.report_only:
            state = load(args.state_dir, args.resume or args.report_only)
            starters = Starters(session, state["starter_role"], now)
        else:
            stamp = datetime.datetime.now(datetime.timezone.utc)
            fleet_id = "%s-%s" % (stamp.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:8])
            starters = Starters(session, args.starter_role, now)
            starts = plan(args, starters)
            rate_controls(starts, args.max_concurrency, args.max_errors)
            state = {"fleet_id": fleet_id, "case_id": args.case, "examiner": args.examiner,
                     "security_account": args.security_account, "started": utc(stamp),
                     "custody_bucket": args.custody_bucket or "forensics-custody-%s" % args.security_account,
                     "retention_days": args.retention_days, "starter_role": args.starter_role,
                     "request": {"targets": requested(args, starts),
                                 "locations": [{"account": a, "region": r} for a in args.accounts.split(",") if a
                                               for r in args.regions.split(",") if r],
                                 "max_concurrency": args.max_concurrency, "max_errors": args.max_errors},
                     "starts": starts, "path": state_path(args.state_dir, fleet_id)}
            save(state)
            out.write("fleet %s: case %s, %d start(s); resume with: fleet.py --resume %s (state %s)\n" % (
                fleet_id, args.case, len(starts), fleet_id, state["path"]))
            start_all(state, starters, out)
            if not any(s.get("parent") for s in state["starts"]):
                out.write("fleet: error: nothing was started\n")
        if not args.report_only:
            follow(state, starters, out, sleep, args.poll)
        entries = entries_of(state, starters, session.client("s3"))
        record = fleet_record(state, entries, None if args.report_only else utc())
        table(record, out)
        if args.report_only:
            return 0
        if not write_record(session, state, record, out):
            return 3
        if not any(s.get("parent") for s in state["starts"]):
            return 3
        return 0 if all(in_custody(e) for e in entries) else 1
    except FleetError as e:
        out.write("fleet: error: %s\n" % e)
        return 3
    except KeyboardInterrupt:
        out.write("\nfleet: interrupted; the executions go on in AWS. Follow them again with: fleet.py --resume "
                  "%s\n" % state["fleet_id"])
        return 4


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
