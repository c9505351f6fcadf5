"""The command line, the control listener and TLS listeners."""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, SSLError

from fakeaws.tls import make_ca_and_cert
from .conftest import BROKERS, FIXTURE, LISTENERS, client

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def control(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def cli():
    proc = subprocess.Popen(
        ["/usr/bin/python3", "-m", "fakeaws", "--fixture", FIXTURE, "--seed", "3",
         "--listen", "service=ec2,host=127.0.0.1,port=0",
         "--listen", f"service=imds,port=0,instance_id={BROKERS['a']}",
         "--listen", "service=control,host=127.0.0.1,port=0,name=ctl"],
        cwd=TESTS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoints = json.loads(proc.stdout.readline())
        yield proc, endpoints
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


class _Endpoints:
    """Just enough of FakeAWS for conftest.client()."""

    def __init__(self, endpoints):
        self.endpoints = endpoints


def test_cli_prints_endpoints_and_is_driven_through_control(cli):
    proc, endpoints = cli
    assert set(endpoints) == {"ec2", "imds", "ctl"}
    ctl = endpoints["ctl"]
    status, launched = control(ctl, "POST", "/_fake/instances", {"az": "us-east-1b", "role": "kafka-broker"})
    assert status == 200 and launched["az"] == "us-east-1b"
    ec2 = client(_Endpoints(endpoints), "ec2")
    got = ec2.describe_instances(InstanceIds=[launched["id"]])["Reservations"][0]["Instances"][0]
    assert got["State"]["Name"] == "running"
    assert control(ctl, "POST", f"/_fake/instances/{launched['id']}/terminate")[0] == 200
    status, events = control(ctl, "GET", "/_fake/events?since=0&wait=2")
    assert [e["state"] for e in events] == ["pending", "running", "shutting-down"]
    status, answer = control(ctl, "POST", "/_fake/faults", {"throttle": {"ec2": 1.0}})
    assert status == 200 and answer["previous"]["throttle"] == {}
    with pytest.raises(ClientError) as err:
        ec2.describe_volumes()
    assert err.value.response["Error"]["Code"] == "RequestLimitExceeded"
    records = control(ctl, "GET", "/_fake/requests")[1]
    assert [r["action"] for r in records] == ["DescribeInstances", "DescribeVolumes"]
    assert records[-1]["fault"] == "throttle"
    assert control(ctl, "GET", "/_fake/requests?since=1")[1] == records[1:]
    assert control(ctl, "POST", "/_fake/clock", {"advance": 5})[1]["offset"] == 5
    assert control(ctl, "POST", "/_fake/stacks/kafka-test/resources/BrokerGroup/waiting",
                   {"waiting": False})[0] == 200
    assert control(ctl, "GET", "/_fake/state")[1]["stacks"]["kafka-test"]["status"] == "CREATE_COMPLETE"
    assert control(ctl, "GET", f"/_fake/instances/{BROKERS['a']}/credentials")[1]["access_key_id"].startswith("ASIA")
    assert control(ctl, "GET", "/_fake/nothing")[0] == 404
    assert control(ctl, "POST", "/_fake/faults", {"nonsense": 1})[0] == 400
    assert control(ctl, "POST", "/_fake/instances/i-0123456789abcdef0/stop")[0] == 404
    assert control(ctl, "POST", f"/_fake/instances/{BROKERS['b']}/start")[0] == 400  # it is running
    assert control(ctl, "GET", "/_fake/iam-actions")[1] == ["ec2:DescribeInstances", "ec2:DescribeVolumes"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_cli_rejects_a_bad_listen_spec():
    done = subprocess.run(["/usr/bin/python3", "-m", "fakeaws", "--fixture", FIXTURE,
                           "--listen", "service=ec2,colour=blue"],
                          cwd=TESTS_DIR, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "bad --listen item 'colour=blue'" in done.stderr


def test_tls_listener_verifies_against_the_generated_ca(make_fake, tmp_path):
    paths = make_ca_and_cert(str(tmp_path), ["127.0.0.1", "localhost"])
    listeners = [dict(listener) for listener in LISTENERS]
    listeners[0]["tls"] = {"cert": paths["cert"], "key": paths["key"]}
    fake = make_fake(listeners=listeners)
    assert fake.endpoints["ec2"].startswith("https://127.0.0.1:")
    assert len(client(fake, "ec2", verify=paths["ca_cert"]).describe_volumes()["Volumes"]) == 6
    with pytest.raises(SSLError):
        client(fake, "ec2").describe_volumes()  # the system trust store does not know the CA
