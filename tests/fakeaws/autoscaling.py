"""Auto Scaling Query API (Version 2011-01-01): health, lifecycle actions, membership.

SetInstanceHealth and CompleteLifecycleAction change the group as AWS would (an Unhealthy
instance outside its grace period is terminated; ABANDON terminates a launching instance);
the fake does not launch replacements: the harness does, with fake.launch_instance.
Every mutating call that reaches the action is kept for fake.autoscaling_calls().
"""

import base64

from .api import AwsQueryProtocol, QueryService, coral_check, numbered
from .errors import ApiError

_FREE_TEXT = r"[\u0020-\uD7FF\uE000-\uFFFD\r\n\t]*"


class AutoScaling(AwsQueryProtocol, QueryService):
    """The Auto Scaling endpoint."""

    service = "autoscaling"
    version = "2011-01-01"
    namespace = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
    mutating = frozenset({"SetInstanceHealth", "CompleteLifecycleAction"})

    def _group_arn(self, name):
        return (f"arn:aws:autoscaling:{self.world.region}:{self.world.account}:"
                f"autoScalingGroup:*:autoScalingGroupName/{name}")

    def _logged(self, action, params, principal, work):
        entry = {"time": self.world.clock.now(), "action": action,
                 "params": {k: v for k, v in params.items() if k not in ("Action", "Version")},
                 "instance_id": principal["instance_id"], "result": None, "error_code": None}
        try:
            entry["result"] = work()
        except ApiError as err:
            entry["error_code"] = err.code
            raise
        finally:
            self.fake.record_autoscaling_call(entry)

    def set_instance_health(self, params, principal, record):
        coral_check(params, [("InstanceId", True, {"min": 1, "max": 19, "pattern": _FREE_TEXT}),
                             ("HealthStatus", True, {"min": 1, "max": 32, "pattern": _FREE_TEXT})])
        iid, health = params["InstanceId"], params["HealthStatus"]
        raw = params.get("ShouldRespectGracePeriod")
        respect = raw is None or raw.lower() == "true"
        asg, _ = self.world.asg_member(iid)

        def work():
            self.authorize(principal, "SetInstanceHealth", self._group_arn(asg["name"]) if asg else None)
            if asg is None:
                # (unconfirmed) wording.
                raise ApiError("ValidationError",
                               f"Instance Id not found - No managed instance found for instance ID: {iid}")
            if health not in ("Healthy", "Unhealthy"):
                raise ApiError("ValidationError", "Valid instance health states are: [Healthy, Unhealthy].")
            return self.world.set_instance_health(asg, iid, health, respect)

        self._logged("SetInstanceHealth", params, principal, work)
        return []

    def complete_lifecycle_action(self, params, principal, record):
        coral_check(params, [
            ("LifecycleHookName", True, {"min": 1, "max": 255, "pattern": r"[A-Za-z0-9\-_\/]+"}),
            ("AutoScalingGroupName", True, {"min": 1, "max": 1600, "pattern": _FREE_TEXT}),
            ("LifecycleActionToken", False, {"min": 36, "max": 36}),
            ("LifecycleActionResult", True, {}),
            ("InstanceId", False, {"min": 1, "max": 19, "pattern": _FREE_TEXT})])
        group, hook = params["AutoScalingGroupName"], params["LifecycleHookName"]
        result = params["LifecycleActionResult"]
        iid, token = params.get("InstanceId"), params.get("LifecycleActionToken")

        def work():
            self.authorize(principal, "CompleteLifecycleAction", self._group_arn(group))
            asg = self.world.asgs.get(group)
            # The three sentences below are (unconfirmed) wording.
            if asg is None:
                raise ApiError("ValidationError", f"No Auto Scaling group found with name: {group}")
            if not any(h["name"] == hook for h in asg["lifecycle_hooks"]):
                raise ApiError("ValidationError", f"No Lifecycle Hook found with name: {hook} for group: {group}")
            if result not in ("CONTINUE", "ABANDON"):
                raise ApiError("ValidationError", "Valid values for LifecycleActionResult are CONTINUE and ABANDON.")
            if not iid and not token:
                raise ApiError("ValidationError", "Either the instance ID or the lifecycle action token must be specified.")
            self.world.complete_lifecycle_action(asg, hook, iid, token, result)
            return result

        self._logged("CompleteLifecycleAction", params, principal, work)
        return [("CompleteLifecycleActionResult", [])]

    def describe_autoscaling_instances(self, params, principal, record):
        ids = numbered(params, "InstanceIds.member")
        max_raw = params.get("MaxRecords", "50")
        if not max_raw.isdigit() or not 1 <= int(max_raw) <= 50:
            raise ApiError("ValidationError", f"1 validation error detected: Value '{max_raw}' at "
                           "'maxRecords' failed to satisfy constraint: Member must have value "
                           "less than or equal to 50")
        self.authorize(principal, "DescribeAutoScalingInstances")
        rows = []
        with self.world.lock:
            for asg in self.world.asgs.values():
                for iid, m in asg["members"].items():
                    if not ids or iid in ids:
                        inst = self.world.instances[iid]
                        rows.append((iid, asg["name"], inst, dict(m)))
        rows.sort(key=lambda r: r[0])
        start = 0
        if params.get("NextToken"):
            try:
                start = int(base64.b64decode(params["NextToken"], validate=True).decode())
            except ValueError:
                raise ApiError("InvalidNextToken", "The token is invalid.") from None
        end = start + int(max_raw)
        token = base64.b64encode(str(end).encode()).decode() if end < len(rows) else None
        members = [("member", [
            ("InstanceId", iid), ("InstanceType", inst["instance_type"]),
            ("AutoScalingGroupName", group), ("AvailabilityZone", inst["az"]),
            ("LifecycleState", m["lifecycle_state"]), ("HealthStatus", m["health"]),
            ("ProtectedFromScaleIn", False)]) for iid, group, inst, m in rows[start:end]]
        return [("DescribeAutoScalingInstancesResult",
                 [("AutoScalingInstances", members), ("NextToken", token)])]

    actions = {"SetInstanceHealth": set_instance_health,
               "CompleteLifecycleAction": complete_lifecycle_action,
               "DescribeAutoScalingInstances": describe_autoscaling_instances}
