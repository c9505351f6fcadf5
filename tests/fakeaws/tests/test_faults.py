"""Injected faults: rates honoured and replayable from the seed, transport failures."""

import http.client
import time
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from fakeaws import Hooks
from .conftest import BROKERS, VOLUMES, client, imds_get, imds_token, load_fixture, send, signed

DESCRIBE = {"Action": "DescribeVolumes", "Version": "2016-11-15"}


def statuses(fake, n, service="ec2", params=DESCRIBE):
    url = fake.endpoints[service]
    return [send(url, *signed(url, service, params))[0] for _ in range(n)]


def test_throttle_rate_is_honoured_and_replays_with_the_seed(make_fake):
    first = make_fake(seed=7)
    first.set_faults(throttle={"ec2": 0.3})
    got = statuses(first, 200)
    assert set(got) == {200, 503} and 40 <= got.count(503) <= 80
    assert {r["error_code"] for r in first.requests() if r["http_status"] == 503} == {"RequestLimitExceeded"}
    again = make_fake(seed=7)
    again.set_faults(throttle={"ec2": 0.3})
    assert statuses(again, 200) == got
    other = make_fake(seed=8)
    other.set_faults(throttle={"ec2": 0.3})
    assert statuses(other, 200) != got


def test_cloudformation_throttling_is_a_400(fake):
    fake.set_faults(throttle={"cloudformation": 1.0})
    cfn = client(fake, "cloudformation")
    with pytest.raises(ClientError) as err:
        cfn.signal_resource(StackName="kafka-test", LogicalResourceId="BrokerGroup",
                            UniqueId=BROKERS["a"], Status="SUCCESS")
    r = err.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]) == \
        (400, "Throttling", "Rate exceeded")
    assert fake.signals() == []  # a throttled call never reaches the stack


def test_server_errors_are_500_or_503(fake):
    previous = fake.set_faults(error_5xx={"ec2": 1.0})
    assert previous["error_5xx"] == {}
    assert set(statuses(fake, 20)) == {500, 503}
    assert {(r["http_status"], r["error_code"], r["fault"]) for r in fake.requests()} == {
        (500, "InternalError", "error_5xx"), (503, "Unavailable", "error_5xx")}
    with pytest.raises(ClientError) as err:
        client(fake, "ec2").describe_volumes()
    assert err.value.response["Error"]["Code"] in ("InternalError", "Unavailable")
    with pytest.raises(ValueError):
        fake.set_faults(error_5xx={"ec3": 1.0})
    with pytest.raises(ValueError):
        fake.set_faults(slowness=1)


def test_malformed_truncated_and_dropped_answers(fake):
    url = fake.endpoints["ec2"]
    fake.set_faults(malformed={"ec2": 1.0})
    status, _, body = send(url, *signed(url, "ec2", DESCRIBE))
    assert status == 200
    with pytest.raises(ET.ParseError):
        ET.fromstring(body)
    fake.set_faults(malformed={}, truncated={"ec2": 1.0})
    with pytest.raises(http.client.IncompleteRead):
        send(url, *signed(url, "ec2", DESCRIBE))
    fake.set_faults(truncated={}, drop={"ec2": 1.0})
    with pytest.raises(http.client.RemoteDisconnected):
        send(url, *signed(url, "ec2", DESCRIBE))
    fake.set_faults(drop={"imds": 1.0})
    with pytest.raises(http.client.RemoteDisconnected):
        imds_get(fake, "/latest/api/token", method="PUT",
                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert [(r["service"], r["fault"], r["http_status"]) for r in fake.requests()] == [
        ("ec2", "malformed", 200), ("ec2", "truncated", 200), ("ec2", "drop", None), ("imds", "drop", None)]


def test_latency(fake):
    fake.set_faults(latency_s={"ec2": 0.3})
    started = time.monotonic()
    assert statuses(fake, 1) == [200]
    assert time.monotonic() - started >= 0.3


def test_service_down_refuses_connections_then_comes_back(fake):
    url = fake.endpoints["ec2"]
    fake.set_faults(down=["ec2"])
    with pytest.raises(ConnectionRefusedError):
        send(url, *signed(url, "ec2", DESCRIBE))
    assert statuses(fake, 1, "cloudformation", {"Action": "SignalResource", "Version": "2010-05-15",
                                                "StackName": "kafka-test", "LogicalResourceId": "BrokerGroup",
                                                "UniqueId": "x", "Status": "SUCCESS"}) == [200]
    fake.set_faults(down=[])
    assert fake.endpoints["ec2"] == url
    assert statuses(fake, 1) == [200]


def test_fail_an_action_n_times(fake):
    fake.set_faults(fail_action=[{"action": "AttachVolume", "code": "VolumeInUse", "times": 2,
                                  "message": f"{VOLUMES['a']} is already attached to an instance"}])
    ec2 = client(fake, "ec2")
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=BROKERS["a"], Device="/dev/sdg")
        assert err.value.response["Error"]["Code"] == "VolumeInUse"
    assert ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=BROKERS["a"], Device="/dev/sdg")["State"] == "attaching"
    assert [r["fault"] for r in fake.requests()] == ["fail_action", "fail_action", None]


def test_an_action_carried_out_with_its_answer_spoilt(fake):
    url = fake.endpoints["ec2"]
    attach = {"Action": "AttachVolume", "Version": "2016-11-15", "VolumeId": VOLUMES["a"],
              "InstanceId": BROKERS["a"], "Device": "/dev/sdg"}
    fake.set_faults(fail_action=[{"action": "AttachVolume", "fault": "malformed"},
                                 {"action": "DescribeVolumes", "fault": "truncated"}])
    assert statuses(fake, 1, params={**DESCRIBE, "Action": "DescribeNetworkInterfaces"}) == [200]
    status, _, body = send(url, *signed(url, "ec2", attach))
    assert status == 200
    with pytest.raises(ET.ParseError):
        ET.fromstring(body)
    assert fake.state()["volumes"][VOLUMES["a"]]["status"] == "in-use"
    with pytest.raises(http.client.IncompleteRead):
        send(url, *signed(url, "ec2", DESCRIBE))
    assert statuses(fake, 1) == [200]
    assert [r["fault"] for r in fake.requests()] == [None, "malformed", "truncated", None]
    with pytest.raises(ValueError):
        fake.set_faults(fail_action=[{"action": "AttachVolume", "fault": "drop"}])
    with pytest.raises(ValueError):
        fake.set_faults(fail_action=[{"action": "AttachVolume", "code": "X", "fault": "malformed"}])


def test_imds_404_rules_answer_not_found_n_times(fake):
    token = imds_token(fake)
    fake.set_faults(imds_404=[{"path": "/latest/meta-data/placement/*", "times": 2}])
    path = "/latest/meta-data/placement/availability-zone"
    assert [imds_get(fake, path, token)[0] for _ in range(3)] == [404, 404, 200]
    assert imds_get(fake, "/latest/meta-data/instance-id", token)[0] == 200


def test_on_request_sees_each_request_before_its_answer_is_written(make_fake):
    seen = []

    class KillPoint(Hooks):
        def on_request(self, record):
            seen.append((record["seq"], record["action"], record["http_status"]))
            if len(seen) == 2:
                # The harness would kill the client here; the fake has acted already.
                assert fake.state()["volumes"][VOLUMES["a"]]["status"] == "in-use"

    fake = make_fake(load_fixture(), hooks=KillPoint())
    ec2 = client(fake, "ec2")
    ec2.describe_volumes()
    ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=BROKERS["a"], Device="/dev/sdg")
    assert seen == [(1, "DescribeVolumes", 200), (2, "AttachVolume", 200)]
