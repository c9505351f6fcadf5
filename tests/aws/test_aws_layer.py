"""The AWS layer (http, sigv4, imds, aws, identity) against the fake AWS.

Every Query call is verified by the fake with botocore's SigV4 implementation, so a call
that succeeds here was signed as AWS requires. The C side is driven by the test-only
program kb-aws-probe (tests/tools), which prints JSON on stdout and logs on stderr.

Topology: everything on 127.0.0.1, one fake per test (IMDS bound to instance a of the
three-brokers fixture; EC2, CloudFormation and Auto Scaling listeners), the probe as a
child process with a clean AWS_* environment pointing at them.
"""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from fakeaws import FakeAWS
from fakeaws.tls import make_ca_and_cert

PROBE = os.path.join(os.environ.get("KB_BINARY_DIR", "build"), "tools", "kb-aws-probe")
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fakeaws", "fixtures",
                       "three-brokers.json")
INSTANCE = "i-0000000000000a001"
SERVICES = ("ec2", "cloudformation", "autoscaling")
ENDPOINT_ENV = {"ec2": "AWS_ENDPOINT_URL_EC2",
                "cloudformation": "AWS_ENDPOINT_URL_CLOUDFORMATION",
                "autoscaling": "AWS_ENDPOINT_URL_AUTO_SCALING"}
SIGNAL = ["--param", "StackName=kafka-test", "--param", "LogicalResourceId=BrokerGroup",
          "--param", f"UniqueId={INSTANCE}", "--param", "Status=SUCCESS"]
# Space, ':', '/', '+', '~' and UTF-8 (2, 3 and 4 bytes), as DECISIONS.md asks.
SPECIAL = "a b:c/d+e~f \u00e9\u20ac \U0001F642"


def fixture_data(**imds):
    with open(FIXTURE, encoding="utf-8") as f:
        data = json.load(f)
    data["delays"] = {k: 0 for k in data["delays"]}
    data["imds"]["mac_lag_s"] = 0
    data["imds"].update(imds)
    return data


@pytest.fixture
def make_fake():
    started = []

    def make(data=None, tls=None):
        listeners = [{"service": s, **({"tls": tls} if tls and s in ("ec2", "cloudformation")
                                       else {})} for s in SERVICES]
        listeners.append({"service": "imds", "instance_id": INSTANCE})
        fake = FakeAWS(data or fixture_data()).start(listeners)
        started.append(fake)
        return fake
    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake(make_fake):
    return make_fake()


class Result:
    def __init__(self, proc, elapsed):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.json = json.loads(proc.stdout) if proc.stdout.strip() else None

    @property
    def steps(self):
        return self.json["steps"]


def probe_env(fake, endpoints=None, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and "proxy" not in k.lower()}
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = fake.endpoints["imds"]
    for service in SERVICES:
        env[ENDPOINT_ENV[service]] = (endpoints or {}).get(service, fake.endpoints[service])
    env.update(extra)
    return env


def run_probe(env, *args, level="debug", timeout=60):
    started = time.monotonic()
    proc = subprocess.run([PROBE, "--log-level", level, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode in (0, 1), proc.stderr
    return Result(proc, time.monotonic() - started)


def probe(fake, *args, level="debug", endpoints=None, env=None, timeout=60):
    return run_probe(probe_env(fake, endpoints, **(env or {})), *args, level=level,
                     timeout=timeout)


def records(fake, service, action=None):
    return [r for r in fake.requests()
            if r["service"] == service and (action is None or r["action"] == action)]


def test_identity_reads_the_instance_in_four_imds_calls(fake):
    r = probe(fake, "--identity")
    assert r.returncode == 0, r.stderr
    assert r.json["identity"] == {
        "instance_id": INSTANCE, "az": "us-east-1a", "az_id": "use1-az6",
        "region": "us-east-1", "mac": "0e:00:00:01:00:0a", "private_ip": "10.0.1.10",
        "account_id": "123456789012"}
    imds = [r["action"] for r in records(fake, "imds")]
    assert imds == ["PUT /latest/api/token",
                    "GET /latest/dynamic/instance-identity/document",
                    "GET /latest/meta-data/placement/availability-zone-id",
                    "GET /latest/meta-data/mac"]
    assert r.json["imds_calls"] == 4


def test_instance_credentials_sign_calls_that_botocore_verifies(fake):
    r = probe(fake, "--identity", "--call", "ec2:DescribeInstances",
              "--call", "cloudformation:SignalResource", *SIGNAL,
              "--call", "autoscaling:SetInstanceHealth", "--param", f"InstanceId={INSTANCE}",
              "--param", "HealthStatus=Healthy")
    assert r.returncode == 0, r.stderr
    key = fake.instance_credentials(INSTANCE)["access_key_id"]
    for service in SERVICES:
        (rec,) = records(fake, service)
        assert (rec["http_status"], rec["access_key_id"], rec.get("authenticated")) == \
            (200, key, True)
    # Identity's 4, then the role listing and the role's credentials, fetched once.
    assert r.json["imds_calls"] == 6
    assert len(records(fake, "imds")) == 6


def test_values_with_reserved_and_utf8_characters_arrive_intact(fake):
    r = probe(fake, "--identity", "--call", "ec2:DescribeTags",
              "--param", "Filter.1.Name=tag:kafka broker/id", "--param",
              f"Filter.1.Value.1={SPECIAL}")
    assert r.returncode == 0, r.stderr
    (rec,) = records(fake, "ec2", "DescribeTags")
    assert rec["http_status"] == 200
    assert rec["params"]["Filter.1.Name"] == "tag:kafka broker/id"
    assert rec["params"]["Filter.1.Value.1"] == SPECIAL


def test_a_wrong_secret_is_refused_by_the_fake(fake):
    """The counterpart of the test above: the fake's verification can fail."""
    env = {"AWS_ACCESS_KEY_ID": "AKIAFAKEHOST00000001",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEZ",
           "AWS_REGION": "us-east-1"}
    call = ["--call", "ec2:DescribeTags", "--param", "Filter.1.Name=key",
            "--param", f"Filter.1.Value.1={SPECIAL}"]
    r = probe(fake, *call, env=env)
    assert r.returncode == 1
    assert r.steps[0]["error_code"] == "SignatureDoesNotMatch"
    assert r.steps[0]["exit"] == 70
    env["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"
    r = probe(fake, *call, env=env)
    assert r.returncode == 0, r.stderr


def test_an_expired_imds_token_is_replaced(fake):
    fake.set_faults(imds_token_ttl_cap_s=1)
    r = probe(fake, "--identity", "--sleep-ms", "1500", "--imds", "meta-data/instance-id")
    assert r.returncode == 0, r.stderr
    assert r.steps[-1]["value"] == INSTANCE
    seen = [(x["action"], x["http_status"]) for x in records(fake, "imds")][-3:]
    assert seen == [("GET /latest/meta-data/instance-id", 401),
                    ("PUT /latest/api/token", 200),
                    ("GET /latest/meta-data/instance-id", 200)]


def test_throttling_is_retried_to_success_within_the_deadline(fake):
    fake.set_faults(fail_action=[
        {"action": "DescribeInstances", "code": "RequestLimitExceeded", "status": 503,
         "times": 2},
        {"action": "SignalResource", "code": "Throttling", "status": 400, "times": 1,
         "service": "cloudformation"}])
    r = probe(fake, "--deadline-ms", "20000", "--identity", "--call", "ec2:DescribeInstances",
              "--call", "cloudformation:SignalResource", *SIGNAL)
    assert r.returncode == 0, r.stderr
    assert [x["error_code"] for x in records(fake, "ec2")] == \
        ["RequestLimitExceeded", "RequestLimitExceeded", None]
    assert [x["error_code"] for x in records(fake, "cloudformation")] == ["Throttling", None]
    assert "ec2 DescribeInstances attempt 2/10: HTTP 503 RequestLimitExceeded" in r.stderr


def test_endless_throttling_fails_with_awss_code_before_the_deadline(fake):
    fake.set_faults(throttle={"ec2": 1.0})
    r = probe(fake, "--deadline-ms", "4000", "--identity", "--call", "ec2:DescribeInstances")
    assert r.returncode == 1
    step = r.steps[-1]
    assert step["error_code"] == "RequestLimitExceeded"
    assert step["exit"] == 69
    assert "DescribeInstances: RequestLimitExceeded: Request limit exceeded." in step["error"]
    assert "gave up after" in step["error"]
    assert step["ms"] < 4000
    assert len(records(fake, "ec2")) >= 2


@pytest.mark.parametrize("service,offset,code", [
    ("ec2", 3600, "RequestExpired"),
    ("cloudformation", -3600, "SignatureDoesNotMatch"),
])
def test_clock_skew_is_corrected_from_the_date_header(fake, service, offset, code):
    fake.set_clock_offset(offset)
    call = ["ec2:DescribeInstances"] if service == "ec2" else \
        ["cloudformation:SignalResource", *SIGNAL]
    r = probe(fake, "--identity", "--call", *call)
    assert r.returncode == 0, r.stderr
    assert [x["error_code"] for x in records(fake, service)] == [code, None]
    assert abs(r.json["clock_offset_ms"] - offset * 1000) < 3000
    assert "signing with AWS's time" in r.stderr


def test_instance_credentials_expired_at_aws_are_refreshed_once(make_fake):
    # Credentials that live 200 s: the client uses them (botocore pushes the refresh of
    # short-lived instance credentials 2-10 minutes out), AWS's clock then passes their
    # Expiration by less than the 4 minutes the client would take for skew.
    fake = make_fake(fixture_data(credential_lifetime_s=200, credential_rotate_before_s=30))
    proc = subprocess.Popen([PROBE, "--log-level", "debug", "--identity",
                             "--call", "ec2:DescribeInstances", "--sleep-ms", "1500",
                             "--call", "ec2:DescribeInstances"],
                            env=probe_env(fake), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not records(fake, "ec2") and time.monotonic() < deadline:
            time.sleep(0.02)
        fake.advance_clock(210)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    ec2 = records(fake, "ec2")
    assert [x["error_code"] for x in ec2] == [None, "RequestExpired", None]
    assert ec2[1]["access_key_id"] == ec2[0]["access_key_id"]
    assert ec2[2]["access_key_id"] != ec2[0]["access_key_id"]
    creds = [x for x in records(fake, "imds")
             if x["action"].endswith("security-credentials/kafka-broker")]
    assert len(creds) == 2
    assert json.loads(out)["clock_offset_ms"] == 0


@pytest.fixture
def tls_material(tmp_path):
    return make_ca_and_cert(str(tmp_path / "tls"), ["127.0.0.1"])


def test_tls_is_verified_by_default_and_aws_ca_bundle_is_honoured(make_fake, tls_material,
                                                                  tmp_path):
    fake = make_fake(tls={"cert": tls_material["cert"], "key": tls_material["key"]})
    assert fake.endpoints["ec2"].startswith("https://127.0.0.1:")
    r = probe(fake, "--identity", "--call", "ec2:DescribeInstances")
    assert r.returncode == 1
    assert r.steps[-1]["exit"] == 69
    assert "certificate" in r.steps[-1]["error"]
    assert r.steps[-1]["http_status"] is None
    assert records(fake, "ec2") == []
    r = probe(fake, "--identity", "--call", "ec2:DescribeInstances",
              env={"AWS_CA_BUNDLE": tls_material["ca_cert"]})
    assert r.returncode == 0, r.stderr
    assert len(records(fake, "ec2")) == 1
    # A certificate for another name, from the same trusted CA, is refused too.
    other = make_ca_and_cert(str(tmp_path / "other"), ["kafka.invalid"])
    fake2 = make_fake(tls={"cert": other["cert"], "key": other["key"]})
    r = probe(fake2, "--identity", "--call", "ec2:DescribeInstances",
              env={"AWS_CA_BUNDLE": other["ca_cert"]})
    assert r.returncode == 1
    assert "127.0.0.1" in r.steps[-1]["error"] or "certificate" in r.steps[-1]["error"]
    assert records(fake2, "ec2") == []


class CountingProxy:
    """A TCP relay that counts the connections made through it: TLS passes untouched, so
    each connection is one handshake, counted by something other than the client."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stopped = True
        self.sock.close()


def test_one_tls_handshake_per_endpoint_per_run(make_fake, tls_material):
    fake = make_fake(tls={"cert": tls_material["cert"], "key": tls_material["key"]})
    proxies = {s: CountingProxy(int(fake.endpoints[s].rsplit(":", 1)[1]))
               for s in ("ec2", "cloudformation")}
    try:
        endpoints = {s: f"https://127.0.0.1:{p.port}" for s, p in proxies.items()}
        calls = ["--call", "ec2:DescribeInstances"] * 3 + \
                ["--call", "cloudformation:SignalResource", *SIGNAL] * 2 + \
                ["--call", "ec2:DescribeTags"]
        r = probe(fake, "--identity", *calls, endpoints=endpoints,
                  env={"AWS_CA_BUNDLE": tls_material["ca_cert"]})
        assert r.returncode == 0, r.stderr
        assert len(records(fake, "ec2")) == 4
        assert len(records(fake, "cloudformation")) == 2
        assert proxies["ec2"].connections == 1
        assert proxies["cloudformation"].connections == 1
        assert r.json["connects"]["ec2"] == 1
        assert r.json["connects"]["cloudformation"] == 1
    finally:
        for p in proxies.values():
            p.close()


def secrets_of(fake):
    """Every secret the fake handed out: role credentials and IMDS session tokens (read from
    the fake's world: the tokens are not exposed otherwise)."""
    with fake.world.lock:
        creds = [c for c in fake.world.creds.values() if c.get("instance_id") == INSTANCE]
        tokens = list(fake.world.tokens)
    found = tokens + [c["secret_access_key"] for c in creds] + \
        [c["session_token"] for c in creds if c["session_token"]]
    assert len(found) >= 3
    return found


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug"])
def test_no_secret_in_any_output_at_any_level(make_fake, level):
    fake = make_fake()
    # Every path that handles a secret: the IMDS token, instance credentials, a retry, a
    # skew correction, a signature AWS refuses (its canonical request goes to the debug
    # log), and a refresh of refused credentials.
    fake.set_faults(fail_action=[
        {"action": "DescribeInstances", "code": "RequestLimitExceeded", "status": 503},
        {"action": "DescribeTags", "code": "SignatureDoesNotMatch", "status": 403},
        {"action": "DescribeVolumes", "code": "AuthFailure", "status": 401}])
    fake.set_clock_offset(1800)
    r = probe(fake, "--identity", "--call", "ec2:DescribeInstances", "--call", "ec2:DescribeTags",
              "--call", "ec2:DescribeVolumes", level=level)
    output = r.stdout + r.stderr
    assert r.json["identity"]["instance_id"] == INSTANCE
    for secret in secrets_of(fake):
        assert secret not in output
    if level == "debug":
        assert "SignatureDoesNotMatch; canonical request:" in output
        assert "x-amz-security-token:[REDACTED]" in output
        assert "signing with AWS's time" in output


def test_no_environment_secret_in_any_output(fake):
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"
    token = "IQoJb3JpZ2luX2VjEFAKE/session+token="
    fake.set_faults(fail_action=[
        {"action": "DescribeTags", "code": "SignatureDoesNotMatch", "status": 403}])
    env = {"AWS_ACCESS_KEY_ID": "ASIAFAKEHOST00000002",
           "AWS_SECRET_ACCESS_KEY": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
           "AWS_SESSION_TOKEN": token, "AWS_REGION": "us-east-1"}
    r = probe(fake, "--call", "ec2:DescribeVolumes", "--call", "ec2:DescribeTags", env=env)
    output = r.stdout + r.stderr
    assert r.steps[0]["ret"] == 0, r.stderr
    for s in (env["AWS_SECRET_ACCESS_KEY"], token, secret):
        assert s not in output
    assert "x-amz-security-token:[REDACTED]" in output
