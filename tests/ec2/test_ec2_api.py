"""ec2.c, cfn.c and autoscaling.c end to end: the test-only driver kb-ec2 calls them through
the real aws_query against the fake AWS (tests/fakeaws), which verifies every signature with
botocore. What the C clients read is compared with what botocore reads from the same fake;
what they change is checked in the fake's own state and records."""
import json
import os
import subprocess

import botocore.session
import pytest
from botocore.config import Config

from fakeaws import FakeAWS

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(os.environ.get("KB_BINARY_DIR", os.path.join(HERE, "..", "..", "build")),
                     "tools")
FIXTURE = os.path.join(HERE, "..", "fakeaws", "fixtures", "three-brokers.json")
STACK_ARN = ("arn:aws:cloudformation:us-east-1:123456789012:stack/kafka-test/"
             "0f4ae510-c386-11e7-b43f-503f23fb5536")
ASG = "kafka-test-BrokerGroup-1ABCDEF2GHIJ"
HOOK = "kafka-test-launch"
BROKER_A, BROKER_B = "i-0000000000000a001", "i-0000000000000b001"
ENI_A, ENI_B = "eni-0000000000000a000", "eni-0000000000000b001"
VOL_A, VOL_B = "vol-0000000000000a000", "vol-0000000000000b001"
OPERATOR = ("AKIAFAKEHOST00000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY", None)
READ_ONLY = ("ASIAFAKEHOST00000002", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
             "IQoJb3JpZ2luX2VjEFAKE/session+token=")
# Volumes beyond DescribeVolumes' page of 500, so a tag+AZ query takes two pages.
EXTRA_VOLUMES = 520


def fixture(extra_volumes=0):
    with open(FIXTURE, encoding="utf-8") as f:
        data = json.load(f)
    data["delays"] = {k: 0 for k in data["delays"]}
    data["imds"]["mac_lag_s"] = 0
    for n in range(extra_volumes):
        data["volumes"].append({"id": "vol-%017x" % (0x1000 + n), "az": "us-east-1a",
                                "size": 10, "tags": {"Name": "KAFKA-%d" % (100 + n),
                                                     "kafka-bootstrap:cluster": "test"}})
    return data


@pytest.fixture
def fake():
    f = FakeAWS(fixture(), seed=7).start(
        [{"service": s} for s in ("ec2", "cloudformation", "autoscaling")])
    yield f
    f.stop()
    assert f.errors() == []


def broker_key(fake, instance=BROKER_A):
    c = fake.instance_credentials(instance)
    return (c["access_key_id"], c["secret_access_key"], c["session_token"])


def kb(fake, *args, key=None):
    """Runs kb-ec2 with the fake's endpoints and a key (the broker's role by default)."""
    ak, secret, token = key or broker_key(fake)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": ak,
                "AWS_SECRET_ACCESS_KEY": secret, "AWS_MAX_ATTEMPTS": "1",
                "AWS_EC2_METADATA_DISABLED": "true"})
    for service, var in (("ec2", "EC2"), ("cloudformation", "CLOUDFORMATION"),
                         ("autoscaling", "AUTO_SCALING")):
        if service in fake.endpoints:
            env["AWS_ENDPOINT_URL_" + var] = fake.endpoints[service]
    if token:
        env["AWS_SESSION_TOKEN"] = token
    out = subprocess.run([os.path.join(TOOLS, "kb-ec2"), *args], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def boto(fake, service, key=OPERATOR):
    ak, secret, token = key
    return botocore.session.get_session().create_client(
        service, region_name="us-east-1", endpoint_url=fake.endpoints[service],
        aws_access_key_id=ak, aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}))


def requests_for(fake, action):
    return [r for r in fake.requests() if r["action"] == action]


def test_describe_by_tag_and_zone_reads_what_botocore_reads(fake):
    filters = ["tag:Name=KAFKA-*", "availability-zone=us-east-1a",
               "tag:kafka-bootstrap:cluster=test"]
    got = kb(fake, "describe-enis", *filters)
    assert got["code"] == "OK", got
    want = boto(fake, "ec2").describe_network_interfaces(Filters=[
        {"Name": "tag:Name", "Values": ["KAFKA-*"]},
        {"Name": "availability-zone", "Values": ["us-east-1a"]},
        {"Name": "tag:kafka-bootstrap:cluster", "Values": ["test"]}])["NetworkInterfaces"]
    assert [e["id"] for e in got["result"]] == [e["NetworkInterfaceId"] for e in want] == [ENI_A]
    eni, ref = got["result"][0], want[0]
    assert (eni["mac"], eni["private_ip"], eni["subnet_id"], eni["vpc_id"], eni["az"],
            eni["status"]) == (ref["MacAddress"], ref["PrivateIpAddress"], ref["SubnetId"],
                               ref["VpcId"], ref["AvailabilityZone"], ref["Status"])
    assert eni["tags"] == {t["Key"]: t["Value"] for t in ref["TagSet"]}
    assert eni["attachment_id"] is None and eni["attachment_device_index"] == -1
    params = requests_for(fake, "DescribeNetworkInterfaces")[0]["params"]
    assert params["Filter.1.Name"] == "tag:Name" and params["Filter.1.Value.1"] == "KAFKA-*"
    assert params["MaxResults"] == "1000"


def test_describe_volumes_follows_the_fakes_pages():
    with FakeAWS(fixture(EXTRA_VOLUMES), seed=7).start([{"service": "ec2"}]) as big:
        got = kb(big, "describe-volumes", "tag:Name=KAFKA-*", "availability-zone=us-east-1a",
                 key=OPERATOR)
        assert got["code"] == "OK", got["error"]
        pages = requests_for(big, "DescribeVolumes")
        assert len(pages) == 2
        assert "NextToken" not in pages[0]["params"] and pages[1]["params"]["NextToken"]
        paginator = boto(big, "ec2").get_paginator("describe_volumes")
        want = [v["VolumeId"] for page in paginator.paginate(Filters=[
            {"Name": "tag:Name", "Values": ["KAFKA-*"]},
            {"Name": "availability-zone", "Values": ["us-east-1a"]}]) for v in page["Volumes"]]
        assert [v["id"] for v in got["result"]] == want
        assert len(want) == EXTRA_VOLUMES + 1


def test_attach_eni_then_in_use_then_other_zone(fake):
    got = kb(fake, "attach-eni", ENI_A, BROKER_A, "1", "0")
    assert got["code"] == "OK", got["error"]
    eni = kb(fake, "describe-eni", ENI_A)["result"][0]
    assert eni["attachment_id"] == got["result"]
    assert eni["attachment_instance_id"] == BROKER_A
    assert (eni["attachment_device_index"], eni["attachment_network_card_index"]) == (1, 0)
    assert eni["attachment_status"] in ("attaching", "attached")
    again = kb(fake, "attach-eni", ENI_A, BROKER_B, "1", "0")
    assert again["code"] == "EBUSY"
    assert "InvalidNetworkInterface.InUse: Interface: [%s] in use." % ENI_A in again["error"]
    other_zone = kb(fake, "attach-eni", ENI_B, BROKER_A, "2", "0")
    assert other_zone["code"] == "KB_EHELD"
    assert "same availability zone" in other_zone["error"]
    unknown = kb(fake, "describe-eni", "eni-00000000000000bad")
    assert unknown["code"] == "ENOENT" and "InvalidNetworkInterfaceID.NotFound" in unknown["error"]


def test_attach_volume_then_in_use_then_zone_mismatch(fake):
    assert kb(fake, "attach-volume", VOL_A, BROKER_A, "/dev/sdg")["code"] == "OK"
    vol = kb(fake, "describe-volume", VOL_A)["result"][0]
    assert (vol["attachment_instance_id"], vol["attachment_device"]) == (BROKER_A, "/dev/sdg")
    in_use = kb(fake, "attach-volume", VOL_A, BROKER_A, "/dev/sdh")
    assert in_use["code"] == "EBUSY" and "VolumeInUse" in in_use["error"]
    mismatch = kb(fake, "attach-volume", VOL_B, BROKER_A, "/dev/sdh")
    assert mismatch["code"] == "KB_EHELD"
    assert "InvalidVolume.ZoneMismatch" in mismatch["error"]


def test_dry_run_proves_the_policy_and_changes_nothing(fake):
    allowed = kb(fake, "attach-eni", ENI_A, BROKER_A, "1", "0", "dry-run")
    assert (allowed["code"], allowed["result"], allowed["error"]) == ("OK", None, "")
    assert kb(fake, "attach-volume", VOL_A, BROKER_A, "/dev/sdg", "dry-run")["code"] == "OK"
    denied = kb(fake, "attach-eni", ENI_A, BROKER_A, "1", "0", "dry-run", key=READ_ONLY)
    assert denied["code"] == "KB_EDENIED" and "UnauthorizedOperation" in denied["error"]
    codes = [(r["action"], r["http_status"], r["error_code"], r["dry_run"])
             for r in fake.requests() if r["action"] in ("AttachNetworkInterface", "AttachVolume")]
    assert codes == [("AttachNetworkInterface", 412, "DryRunOperation", True),
                     ("AttachVolume", 412, "DryRunOperation", True),
                     ("AttachNetworkInterface", 403, "UnauthorizedOperation", True)]
    state = fake.state()
    assert state["network_interfaces"][ENI_A]["attachment"] is None
    assert state["volumes"][VOL_A]["attachment"] is None
    assert kb(fake, "describe-eni", ENI_A)["result"][0]["status"] == "available"


def test_instances_unknown_to_ec2_are_simply_absent(fake):
    got = kb(fake, "describe-instances", BROKER_A, "i-00000000000000dead", BROKER_B)
    assert got["code"] == "OK", got["error"]
    assert sorted(i["id"] for i in got["result"]) == [BROKER_A, BROKER_B]
    assert {(i["state_name"], i["state_code"]) for i in got["result"]} == {("running", 16)}
    assert {i["az"] for i in got["result"]} == {"us-east-1a", "us-east-1b"}
    assert len(requests_for(fake, "DescribeInstances")) == 1


def test_tags_of_the_instance_name_its_stack(fake):
    got = kb(fake, "describe-tags", BROKER_A)
    assert got["code"] == "OK", got["error"]
    assert got["result"]["aws:cloudformation:stack-id"] == STACK_ARN
    assert got["result"]["aws:cloudformation:logical-id"] == "BrokerGroup"
    assert got["result"]["aws:autoscaling:groupName"] == ASG


def test_signal_accepted_then_not_waiting_then_failure_recorded(fake):
    ok = kb(fake, "signal", STACK_ARN, "BrokerGroup", BROKER_A, "success")
    assert ok["code"] == "OK", ok["error"]
    fake.set_stack_waiting("kafka-test", "BrokerGroup", False)
    late = kb(fake, "signal", STACK_ARN, "BrokerGroup", BROKER_B, "success")
    assert late["code"] == "EALREADY"
    assert "cannot be signaled" in late["error"]
    fake.set_stack_waiting("kafka-test", "BrokerGroup", True)
    failed = kb(fake, "signal", "kafka-test", "BrokerGroup", BROKER_B, "failure")
    assert failed["code"] == "OK", failed["error"]
    seen = [(s["unique_id"], s["status"], s["error_code"]) for s in fake.signals()]
    assert seen == [(BROKER_A, "SUCCESS", None), (BROKER_B, "SUCCESS", "ValidationError"),
                    (BROKER_B, "FAILURE", None)]
    assert fake.state()["stacks"]["kafka-test"]["status"] == "ROLLBACK_IN_PROGRESS"


def test_health_and_lifecycle_actions_are_recorded(fake):
    done = kb(fake, "complete-lifecycle", ASG, HOOK, BROKER_A, "continue")
    assert done["code"] == "OK", done["error"]
    sick = kb(fake, "set-health", BROKER_B, "unhealthy", "no-grace")
    assert sick["code"] == "OK", sick["error"]
    twice = kb(fake, "complete-lifecycle", ASG, HOOK, BROKER_A, "abandon")
    # Completed before (a reboot, a rerun): nothing pending any more, which is not a failure.
    assert twice["code"] == "EALREADY" and "No active Lifecycle Action" in twice["error"]
    calls = [(c["action"], c["params"]["InstanceId"], c["params"].get("LifecycleActionResult"),
              c["params"].get("HealthStatus"), c["params"].get("ShouldRespectGracePeriod"),
              c["error_code"]) for c in fake.autoscaling_calls()]
    assert calls == [("CompleteLifecycleAction", BROKER_A, "CONTINUE", None, None, None),
                     ("SetInstanceHealth", BROKER_B, None, "Unhealthy", "false", None),
                     ("CompleteLifecycleAction", BROKER_A, "ABANDON", None, None,
                      "ValidationError")]


def test_every_call_was_signed_as_botocore_signs_and_within_the_role(fake):
    kb(fake, "describe-enis", "tag:Name=KAFKA-*")
    kb(fake, "describe-volumes", "tag:Name=KAFKA-*")
    kb(fake, "describe-instances", BROKER_A)
    kb(fake, "describe-tags", BROKER_A)
    kb(fake, "attach-eni", ENI_A, BROKER_A, "1", "0", "dry-run")
    kb(fake, "attach-volume", VOL_A, BROKER_A, "/dev/sdg", "dry-run")
    kb(fake, "signal", STACK_ARN, "BrokerGroup", BROKER_A, "success")
    kb(fake, "set-health", BROKER_A, "healthy")
    kb(fake, "complete-lifecycle", ASG, HOOK, BROKER_A, "continue")
    records = fake.requests()
    assert len(records) == 9
    assert all(r["authenticated"] for r in records), [r for r in records if not r["authenticated"]]
    assert {r["instance_id"] for r in records} == {BROKER_A}
    assert fake.iam_actions() == sorted([
        "autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth",
        "cloudformation:SignalResource", "ec2:AttachNetworkInterface", "ec2:AttachVolume",
        "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags",
        "ec2:DescribeVolumes"])
