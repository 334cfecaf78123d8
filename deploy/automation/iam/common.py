"""What every part of the evaluator shares: the drill world's constants, the state in force, small helpers."""

import os
import sys

# deploy/tools (fvdeploy renders the templates).
AUTOMATION = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(AUTOMATION), "tools"))

ORG_ID = "o-forensics01"
# The role the drill world's security stack is created as (StackDeployerRoleName).
DEPLOYER_ROLE = "Forensics-SecurityDeployer"
ADMINISTRATOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


# The policies and world facts in force, the credentials issued, the denials seen (hook.py).
# "region": the region of the call being authorized (Facts.region).
_STATE = {"policies": None, "facts": None, "keys": {}, "denials": [], "region": None}
