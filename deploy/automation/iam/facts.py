"""The world's facts a decision needs: resource owners, tags, keys."""


from .common import _STATE, ORG_ID


class Facts:
    """What an authorization needs to know about the world's resources,
    read from moto's models (no API call, so nothing recursive): owners,
    tags, snapshot sharing, encryption keys. OVERRIDES: {resource id:
    {attribute: value}} for what the world models differently from AWS
    (each labelled STAND-IN where it is set). REGIONS: a fleet's world
    (issue 24) spans several; each call is then mapped and its resources
    looked up in the region of the client that makes it (hook.py sets it);
    a one-region world keeps REGION throughout."""

    def __init__(self, region, partition="aws", accounts=(), org_id=ORG_ID, regions=None):
        self.home, self.partition, self.accounts, self.org_id = region, partition, list(accounts), org_id
        self.regions = [region] + [r for r in (regions or []) if r != region]
        self.overrides = {}

    @property
    def region(self):
        """The region of the call being authorized (one-region worlds: theirs)."""
        calling = _STATE.get("region")
        return calling if len(self.regions) > 1 and calling in self.regions else self.home

    def _ec2(self, account):
        from moto.ec2.models import ec2_backends

        return ec2_backends[account][self.region]

    def _find(self, collection, rid):
        for account in self.accounts:
            backend = self._ec2(account)
            obj = getattr(backend, collection).get(rid)
            if obj is not None:
                return account, backend, obj
        return None, None, None

    def _over(self, rid, attr, value):
        return self.overrides.get(rid, {}).get(attr, value)

    def volume(self, vid):
        account, backend, vol = self._find("volumes", vid)
        if vol is None:
            return None
        return {"account": self._over(vid, "account", account), "tags": dict(backend.tags.get(vid, {})),
                "encrypted": bool(vol.encrypted), "kms_key_id": self._over(vid, "kms_key_id", vol.kms_key_id),
                "snapshot_id": vol.snapshot_id, "size": vol.size}

    def snapshot(self, sid):
        account, backend, snap = self._find("snapshots", sid)
        if snap is None:
            return None
        owner = self._over(sid, "account", snap.owner_id or account)
        shared = set(snap.create_volume_permission_userids) | set(snap.create_volume_permission_groups)
        shared |= set(self._over(sid, "shared_with", set()))
        return {"account": owner, "tags": dict(backend.tags.get(sid, {})), "encrypted": bool(snap.encrypted),
                "kms_key_id": self._over(sid, "kms_key_id", getattr(snap, "kms_key_id", None)),
                "shared_with": shared, "volume_size": getattr(snap.volume, "size", None) if snap.volume else None}

    def instance(self, iid):
        for account in self.accounts:
            backend = self._ec2(account)
            for reservation in backend.reservations.values():
                for inst in reservation.instances:
                    if inst.id == iid:
                        return {"account": account, "tags": dict(backend.tags.get(iid, {})),
                                "enis": [e.id for e in inst.nics.values()] if hasattr(inst, "nics") else []}
        return None

    def owner_of(self, rid, fallback):
        for look in (self.volume, self.snapshot, self.instance):
            got = look(rid)
            if got:
                return got["account"]
        return fallback

    def auto_scaling_group(self, name, account):
        from moto.autoscaling.models import autoscaling_backends

        group = autoscaling_backends[account][self.region].autoscaling_groups.get(name)
        if group is None:
            return None
        return {"arn": group.arn, "tags": {t["Key"]: t["Value"] for t in group.tags}}

    def key(self, key_id):
        from moto.kms.models import kms_backends

        ref = key_id
        region = ref.split(":")[3] if ref.startswith("arn:") and ref.split(":")[3] in self.regions else self.region
        for account in self.accounts:
            if ref.startswith("arn:") and ref.split(":")[4] != account:
                continue
            backend = kms_backends[account][region]
            key_id = ref.rsplit("/", 1)[-1]
            if "alias/" in ref:
                key_id = backend.get_key_id_from_alias(ref[ref.index("alias/"):]) or ""
            if key_id in backend.keys:
                return {"account": account, "id": key_id,
                        "arn": backend.keys[key_id].arn}
        return None

    def bucket_account(self, bucket, fallback):
        over = self.overrides.get("s3:" + bucket, {}).get("account")
        if over:
            return over
        from moto.s3.models import s3_backends

        got = s3_backends.bucket_accounts.get(bucket)
        return got[1] if got else fallback
