"""Checks of deploy/publish.sh, run without AWS (run by check.py).

--dry-run prints every coldsnap/aws call in order and touches nothing; a
missing tool, a bad key, account or region, a missing or empty image are
refused with a clear message; --help goes to stdout; --share-with-organization
shares with every member account once, in batches of 500, never with the
security account itself. Why: publish.sh shares the toolkit snapshot across
accounts and regions; a wrong call shares it with the wrong principals.
"""

import os
import shutil
import subprocess
import tempfile

from checklib import DEPLOY, check, expect


# ---- publish.sh ----------------------------------------------------------------------------

@check("publish.sh --dry-run: prints every call, in order, and touches nothing")
def check_publish_dry_run():
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "forensics-volume.img")
        with open(img, "wb") as f:
            f.truncate(4 * 1024 * 1024)
        key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        env = {"PATH": "/usr/bin:/bin"}  # neither aws nor coldsnap on PATH: dry runs need neither
        r = subprocess.run([os.path.join(DEPLOY, "publish.sh"), "--dry-run", "--image", img, "--region", "eu-west-1",
                            "--kms-key-id", key, "--copy-to", "us-east-1,ap-southeast-2",
                            "--share-with", "444455556666,777788889999", "--description", "fv test"],
                           capture_output=True, text=True, env=env)
        expect(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
        calls = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
        want_prefixes = [
            "+ coldsnap --region eu-west-1 upload --kms-key-id " + key + " --description 'fv test' --no-progress --wait " + img,
            "+ aws ec2 create-tags --region eu-west-1 --resources SNAPSHOT-eu-west-1",
            "+ aws ec2 modify-snapshot-attribute --region eu-west-1 --snapshot-id SNAPSHOT-eu-west-1 --attribute createVolumePermission --operation-type add --user-ids 444455556666 777788889999",
            "+ aws ssm put-parameter --region eu-west-1 --name /forensics-volume/snapshot-id --type String --overwrite --value SNAPSHOT-eu-west-1",
            "+ aws ec2 copy-snapshot --region us-east-1 --source-region eu-west-1 --source-snapshot-id SNAPSHOT-eu-west-1 --encrypted --kms-key-id arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
            "+ aws ec2 wait snapshot-completed --region us-east-1 --snapshot-ids SNAPSHOT-us-east-1",
        ]
        for w in want_prefixes:
            expect(any(c.startswith(w) for c in calls), "missing call %r in:\n%s" % (w, "\n".join(calls)))
        regions = [c for c in calls if c.startswith("+ aws ssm put-parameter")]
        expect(len(regions) == 3, "put-parameter in %d regions, expected 3" % len(regions))
        shares = [c for c in calls if "modify-snapshot-attribute" in c]
        expect(len(shares) == 3, "shared in %d regions, expected 3" % len(shares))
        order = [calls.index(next(c for c in calls if c.startswith(w))) for w in want_prefixes[:4]]
        expect(order == sorted(order), "calls out of order: upload, tag, share, then the parameter")


@check("publish.sh: clear errors for a missing tool, a bad key, a bad account, a missing image")
def check_publish_errors():
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "img")
        with open(img, "wb") as f:
            f.write(b"\0" * 4096)
        empty = os.path.join(tmp, "empty.img")
        open(empty, "wb").close()
        key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        base = [os.path.join(DEPLOY, "publish.sh"), "--image", img, "--region", "eu-west-1", "--kms-key-id", key]
        env = {"PATH": tmp + ":/usr/bin:/bin"}
        cases = [
            (base, "coldsnap is not installed"),
            (base[:2] + [empty] + base[3:], "is empty"),
            (base[:-1] + ["alias/foo"], "--kms-key-id"),
            (base + ["--share-with", "12345"], "--share-with"),
            ([os.path.join(DEPLOY, "publish.sh"), "--image", img + ".missing", "--region", "eu-west-1",
              "--kms-key-id", key], "no image"),
            (base + ["--copy-to", "eu-west-1;reboot"], "--copy-to"),
        ]
        for argv, needle in cases:
            r = subprocess.run(argv, capture_output=True, text=True, env=env)
            expect(r.returncode != 0 and needle in r.stderr, "%r: exit %d, stderr %r" % (argv[5:], r.returncode, r.stderr))
        fake_coldsnap = os.path.join(tmp, "coldsnap")
        with open(fake_coldsnap, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(fake_coldsnap, 0o755)
        r = subprocess.run(base, capture_output=True, text=True, env=env)
        if shutil.which("aws", path=env["PATH"]) is None:
            expect(r.returncode != 0 and "aws CLI is not installed" in r.stderr, "no aws: %r" % r.stderr)


@check("publish.sh: --help on stdout, exit 0; --share-with-organization shares in batches of 500 (B2)")
def check_publish_help_and_organization():
    publish = os.path.join(DEPLOY, "publish.sh")
    r = subprocess.run([publish, "--help"], capture_output=True, text=True)
    expect(r.returncode == 0 and "--share-with-organization" in r.stdout and not r.stderr,
           "--help: exit %d, stdout %r, stderr %r" % (r.returncode, r.stdout[:80], r.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "forensics-volume.img")
        with open(img, "wb") as f:
            f.truncate(4096)
        key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        # 1,203 accounts, the security account (the key's) among them, one also given by --share-with.
        org = ["%012d" % (400000000000 + i) for i in range(1202)] + ["111122223333"]
        env = {"PATH": "/usr/bin:/bin", "FV_PUBLISH_DRY_RUN_ACCOUNTS": " ".join(org)}
        r = subprocess.run([publish, "--dry-run", "--image", img, "--region", "eu-west-1", "--kms-key-id", key,
                            "--share-with", org[0], "--share-with-organization"],
                           capture_output=True, text=True, env=env)
        expect(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
        calls = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
        expect(any("organizations list-accounts" in c for c in calls), "ListAccounts not called:\n%s" % r.stdout)
        shares = [c.split("--user-ids ")[1].split() for c in calls if "modify-snapshot-attribute" in c]
        expect([len(b) for b in shares] == [500, 500, 202], "batches %s" % [len(b) for b in shares])
        flat = [a for b in shares for a in b]
        expect(sorted(flat) == sorted(org[:-1]), "not every member account exactly once")
        expect("111122223333" not in flat, "shared with the security account itself")
