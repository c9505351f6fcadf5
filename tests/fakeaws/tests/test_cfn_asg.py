"""CloudFormation SignalResource and the Auto Scaling calls, through botocore."""

import pytest
from botocore.exceptions import ClientError

from .conftest import ASG, BROKERS, STACK_ARN, client, load_fixture, send, signed

A, B, C = BROKERS["a"], BROKERS["b"], BROKERS["c"]


def error(call, **kw):
    with pytest.raises(ClientError) as err:
        call(**kw)
    r = err.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def signal(cfn, unique_id, status="SUCCESS", stack="kafka-test"):
    return cfn.signal_resource(StackName=stack, LogicalResourceId="BrokerGroup", UniqueId=unique_id,
                               Status=status)


def instance_key(fake):
    """Credentials of broker A as its IMDS serves them."""
    c = fake.instance_credentials(A)
    return c["access_key_id"], c["secret_access_key"], c["session_token"]


def test_signals_count_until_the_stack_settles(fake):
    cfn = client(fake, "cloudformation", instance_key(fake))
    signal(cfn, A)
    signal(cfn, A)  # the same UniqueId counts once
    signal(cfn, B, stack=STACK_ARN)
    assert fake.state()["stacks"]["kafka-test"]["status"] == "CREATE_IN_PROGRESS"
    signal(cfn, C)
    assert fake.state()["stacks"]["kafka-test"]["status"] == "CREATE_COMPLETE"
    assert error(signal, cfn=cfn, unique_id="i-0000000000000d001") == (
        400, "ValidationError", f"Stack {STACK_ARN} is in CREATE_COMPLETE state and cannot be signaled")
    log = fake.signals()
    assert [(s["unique_id"], s["error_code"]) for s in log] == [
        (A, None), (A, None), (B, None), (C, None), ("i-0000000000000d001", "ValidationError")]
    assert {s["instance_id"] for s in log} == {A}
    fake.set_stack_waiting("kafka-test", "BrokerGroup", True)
    signal(cfn, "i-0000000000000d001")


def test_signal_response_and_error_documents(fake):
    url = fake.endpoints["cloudformation"]
    params = {"Action": "SignalResource", "Version": "2010-05-15", "StackName": "kafka-test",
              "LogicalResourceId": "BrokerGroup", "UniqueId": A, "Status": "SUCCESS"}
    status, headers, body = send(url, *signed(url, "cloudformation", params))
    assert status == 200 and headers["Content-Type"] == "text/xml" and "x-amzn-RequestId" in headers
    assert body.startswith(b'<SignalResourceResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">\n'
                           b"  <ResponseMetadata>\n    <RequestId>")
    status, _, body = send(url, *signed(url, "cloudformation", dict(params, StackName="gone")))
    assert status == 400
    assert body.startswith(b'<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">\n'
                           b"  <Error>\n    <Type>Sender</Type>\n    <Code>ValidationError</Code>\n"
                           b"    <Message>Stack with id gone does not exist</Message>")


def test_signal_is_validated_as_botocores_model_says(fake):
    cfn = client(fake, "cloudformation", parameter_validation=False)
    status, code, message = error(cfn.signal_resource, StackName="1-bad", LogicalResourceId="BrokerGroup",
                                  UniqueId="x" * 65, Status="DONE")
    assert (status, code) == (400, "ValidationError")
    assert message.startswith("3 validation errors detected: Value '1-bad' at 'stackName' failed to "
                              "satisfy constraint: Member must satisfy regular expression pattern: ")
    assert "Value 'x" + "x" * 64 + "' at 'uniqueId' failed to satisfy constraint: Member must have length " \
        "less than or equal to 64" in message
    assert "Member must satisfy enum value set: [SUCCESS, FAILURE]" in message
    assert fake.signals() == []


def test_failure_signal_rolls_back(fake):
    cfn = client(fake, "cloudformation")
    signal(cfn, A, "FAILURE")
    assert fake.state()["stacks"]["kafka-test"]["status"] == "ROLLBACK_IN_PROGRESS"
    assert error(signal, cfn=cfn, unique_id=B)[2].endswith("is in ROLLBACK_IN_PROGRESS state and cannot be signaled")


def test_signal_needs_the_iam_action(make_fake):
    fx = load_fixture()
    fx["roles"]["kafka-broker"].remove("cloudformation:SignalResource")
    fake = make_fake(fx)
    status, code, message = error(signal, cfn=client(fake, "cloudformation", instance_key(fake)), unique_id=A)
    assert (status, code) == (403, "AccessDenied")
    assert message == (f"User: arn:aws:sts::123456789012:assumed-role/kafka-broker/{A} is not authorized "
                       f"to perform: cloudformation:SignalResource on resource: {STACK_ARN} because no "
                       "identity-based policy allows the cloudformation:SignalResource action")
    assert fake.signals()[0]["error_code"] == "AccessDenied"


def test_lifecycle_action_by_instance_and_by_token(fake):
    asg = client(fake, "autoscaling")
    states = lambda: {i["InstanceId"]: i["LifecycleState"]
                      for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]}
    assert states() == {A: "Pending:Wait", B: "Pending:Wait", C: "Pending:Wait"}
    asg.complete_lifecycle_action(AutoScalingGroupName=ASG, LifecycleHookName="kafka-test-launch",
                                  LifecycleActionResult="CONTINUE", InstanceId=A)
    token = fake.lifecycle_token(ASG, B, "kafka-test-launch")
    asg.complete_lifecycle_action(AutoScalingGroupName=ASG, LifecycleHookName="kafka-test-launch",
                                  LifecycleActionResult="CONTINUE", LifecycleActionToken=token)
    assert states() == {A: "InService", B: "InService", C: "Pending:Wait"}
    assert error(asg.complete_lifecycle_action, AutoScalingGroupName=ASG, LifecycleHookName="kafka-test-launch",
                 LifecycleActionResult="CONTINUE", InstanceId=A) == (
        400, "ValidationError", f"No active Lifecycle Action found with instance ID {A}")
    assert error(asg.complete_lifecycle_action, AutoScalingGroupName="nope", LifecycleHookName="kafka-test-launch",
                 LifecycleActionResult="CONTINUE", InstanceId=C)[:2] == (400, "ValidationError")
    assert error(asg.complete_lifecycle_action, AutoScalingGroupName=ASG, LifecycleHookName="other",
                 LifecycleActionResult="CONTINUE", InstanceId=C)[:2] == (400, "ValidationError")
    asg.complete_lifecycle_action(AutoScalingGroupName=ASG, LifecycleHookName="kafka-test-launch",
                                  LifecycleActionResult="ABANDON", InstanceId=C)
    assert fake.wait_idle()
    assert fake.state()["instances"][C]["state"] == "terminated"
    assert [(c["action"], c["params"].get("InstanceId"), c["error_code"]) for c in fake.autoscaling_calls()] == [
        ("CompleteLifecycleAction", A, None), ("CompleteLifecycleAction", None, None),
        ("CompleteLifecycleAction", A, "ValidationError"), ("CompleteLifecycleAction", C, "ValidationError"),
        ("CompleteLifecycleAction", C, "ValidationError"), ("CompleteLifecycleAction", C, None)]


def test_lifecycle_heartbeat_timeout_applies_the_default_result(fake):
    fake.advance_clock(3600)
    assert fake.wait_idle()
    assert {i["state"] for i in fake.state()["instances"].values()} == {"terminated"}


def test_set_instance_health(make_fake):
    fake = make_fake(load_fixture())
    asg = client(fake, "autoscaling")
    asg.set_instance_health(InstanceId=A, HealthStatus="Unhealthy")  # in grace: ignored
    assert fake.state()["instances"][A]["state"] == "running"
    asg.set_instance_health(InstanceId=A, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
    assert fake.wait_idle()
    assert fake.state()["instances"][A]["state"] == "terminated"
    assert error(asg.set_instance_health, InstanceId="i-0123456789abcdef0", HealthStatus="Healthy")[:2] == \
        (400, "ValidationError")
    assert error(asg.set_instance_health, InstanceId=B, HealthStatus="Sick")[:2] == (400, "ValidationError")
    assert [c["result"] for c in fake.autoscaling_calls()] == [
        "ignored: within the health check grace period", "unhealthy: terminating", None, None]


def test_describe_autoscaling_instances_pages(fake):
    asg = client(fake, "autoscaling")
    pages = list(asg.get_paginator("describe_auto_scaling_instances").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["AutoScalingInstances"]) for p in pages] == [2, 1]
    row = pages[0]["AutoScalingInstances"][0]
    assert (row["InstanceId"], row["AutoScalingGroupName"], row["AvailabilityZone"], row["HealthStatus"]) == \
        (A, ASG, "us-east-1a", "HEALTHY")
    got = asg.describe_auto_scaling_instances(InstanceIds=[B, "i-0123456789abcdef0"])["AutoScalingInstances"]
    assert [r["InstanceId"] for r in got] == [B]


def test_launched_instance_joins_its_group_with_the_groups_tags(fake):
    new = fake.launch_instance(asg=ASG, az="us-east-1b", role="kafka-broker", metadata_tags=True)
    assert new["tags"]["aws:autoscaling:groupName"] == ASG
    assert new["tags"]["aws:cloudformation:logical-id"] == "BrokerGroup"
    rows = client(fake, "autoscaling").describe_auto_scaling_instances(InstanceIds=[new["id"]])
    assert rows["AutoScalingInstances"][0]["LifecycleState"] == "Pending:Wait"
    assert len(fake.lifecycle_token(ASG, new["id"], "kafka-test-launch")) == 36
    assert (new["az"], new["subnet"], new["private_ip"], new["state"]) == (
        "us-east-1b", "subnet-0000000000000b000", "10.0.2.4", "running")
    assert new["mac"].startswith("0e:") and new["id"].startswith("i-") and len(new["id"]) == 19
    assert fake.instance_credentials(new["id"])["access_key_id"].startswith("ASIA")
