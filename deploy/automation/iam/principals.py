"""Who calls: a role session, an account's admin, an AWS service."""


from .common import ORG_ID


class Principal:
    """Who makes a call: a role session (arn is the role's ARN), an account's
    administrator of the world (admin: not evaluated) or an AWS service."""

    def __init__(self, arn, session_name="drill", tags=None, org_id=ORG_ID, policies=(), service=None,
                 source_account=None, source_arn=None, admin=False, account=None):
        self.arn = arn
        self.session_name = session_name
        self.tags = dict(tags or {})
        self.org_id = org_id
        self.policies = list(policies)  # identity policies beyond the templates' (roles they do not make)
        self.service = service
        self.source_account = source_account
        self.source_arn = source_arn
        self.admin = admin
        self.account = account or (arn.split(":")[4] if arn and arn.startswith("arn:") else None)

    @classmethod
    def admin_of(cls, account):
        """The world's administrator of ACCOUNT (its set-up and inspection):
        not evaluated. Also spelled Principal.admin(account); on an instance,
        .admin is the flag."""
        return cls(None, admin=True, account=account)

    @classmethod
    def aws_service(cls, service, source_account=None, source_arn=None):
        return cls(None, service=service, source_account=source_account, source_arn=source_arn,
                   account=source_account)

    @property
    def role_name(self):
        return self.arn.rsplit("/", 1)[-1] if self.arn and ":role/" in self.arn else None

    @property
    def partition(self):
        return self.arn.split(":")[1] if self.arn else "aws"

    @property
    def session_arn(self):
        """What AWS names in its messages: the assumed-role session."""
        if self.service:
            return self.service
        if self.admin:
            return "arn:aws:iam::%s:root" % self.account
        if self.role_name:
            return "arn:%s:sts::%s:assumed-role/%s/%s" % (self.partition, self.account, self.role_name,
                                                         self.session_name)
        return self.arn

    def __repr__(self):
        return "Principal(%s)" % self.session_arn


Principal.admin = Principal.admin_of
