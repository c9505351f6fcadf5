"""Which IAM actions a role may call, and how AWS words the refusal.

Roles in the fixture list allowed actions ("ec2:AttachVolume", "ec2:Describe*"); IAM
matches action names case-insensitively with `*` and `?` wildcards. Resource-level
conditions (the cluster tag) are not modelled: the fixture grants an action or not.
"""

import fnmatch


def allowed(patterns, action):
    """True when any of the role's action patterns matches `action` ("ec2:AttachVolume")."""
    action = action.lower()
    return any(fnmatch.fnmatchcase(action, p.lower()) for p in patterns)


def denial(principal_arn, action, resource=None):
    """The sentence AWS uses for an identity-policy denial (current wording, 2023 on).

    EC2 prefixes it with "You are not authorized to perform this operation." and, for
    mutating actions, appends an encoded authorization message; CloudFormation and Auto
    Scaling send it alone under AccessDenied.
    """
    on = f" on resource: {resource}" if resource else ""
    return (f"User: {principal_arn} is not authorized to perform: {action}{on} "
            f"because no identity-based policy allows the {action} action")
