"""CloudFormation Query API (Version 2010-05-15): SignalResource, the one call the agent makes.

Validation follows botocore's model of SignalResource (StackName pattern, UniqueId 1..64
characters, Status SUCCESS|FAILURE) in CloudFormation's wording. A resource that is not
waiting for signals answers the ValidationError every replacement instance gets once its
stack has settled. Every call that reaches the action is kept for fake.signals().
"""

from .api import AwsQueryProtocol, QueryService, coral_check
from .errors import ApiError

SIGNAL_RULES = [
    ("StackName", True, {"min": 1, "pattern": r"([a-zA-Z][-a-zA-Z0-9]*)|(arn:\b(aws|aws-us-gov|aws-cn)\b:[-a-zA-Z0-9:/._+]*)"}),
    ("LogicalResourceId", True, {}),
    ("UniqueId", True, {"min": 1, "max": 64}),
    ("Status", True, {"enum": ["SUCCESS", "FAILURE"]}),
]


class CloudFormation(AwsQueryProtocol, QueryService):
    """The CloudFormation endpoint."""

    service = "cloudformation"
    version = "2010-05-15"
    namespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
    mutating = frozenset({"SignalResource"})

    def signal_resource(self, params, principal, record):
        coral_check(params, SIGNAL_RULES)
        name = params["StackName"]
        stack = self.world.find_stack(name)
        w = self.world
        resource = stack["id"] if stack else f"arn:aws:cloudformation:{w.region}:{w.account}:stack/{name}/*"
        entry = {"time": w.clock.now(), "stack": name, "logical_id": params["LogicalResourceId"],
                 "unique_id": params["UniqueId"], "status": params["Status"],
                 "instance_id": principal["instance_id"], "access_key_id": principal["access_key_id"],
                 "error_code": None}
        try:
            self.authorize(principal, "SignalResource", resource)
            if stack is None:
                # DescribeStacks' wording; SignalResource's for an unknown stack (unconfirmed).
                raise ApiError("ValidationError", f"Stack with id {name} does not exist")
            w.signal(stack, params["LogicalResourceId"], params["UniqueId"], params["Status"])
        except ApiError as err:
            entry["error_code"] = err.code
            raise
        finally:
            self.fake.record_signal(entry)
        return []

    actions = {"SignalResource": signal_resource}
