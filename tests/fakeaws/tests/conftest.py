"""Shared pieces of the fake's own tests: the example fixture, a started fake, clients."""

import copy
import http.client
import json
import os
import time
import urllib.parse

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from fakeaws import FakeAWS

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "three-brokers.json")
HOST_KEY = ("AKIAFAKEHOST00000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY", None)
READ_ONLY_KEY = ("ASIAFAKEHOST00000002", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
                 "IQoJb3JpZ2luX2VjEFAKE/session+token=")
ASG = "kafka-test-BrokerGroup-1ABCDEF2GHIJ"
STACK_ARN = ("arn:aws:cloudformation:us-east-1:123456789012:stack/kafka-test/"
             "0f4ae510-c386-11e7-b43f-503f23fb5536")
BROKERS = {"a": "i-0000000000000a001", "b": "i-0000000000000b001", "c": "i-0000000000000c001"}
ENIS = {"a": "eni-0000000000000a000", "b": "eni-0000000000000b001", "c": "eni-0000000000000c002"}
VOLUMES = {"a": "vol-0000000000000a000", "b": "vol-0000000000000b001", "c": "vol-0000000000000c002"}
LISTENERS = [{"service": s} for s in ("ec2", "cloudformation", "autoscaling", "control")] + [
    {"service": "imds", "instance_id": BROKERS["a"]}]


def load_fixture(**changes):
    """The example fixture with top-level keys replaced, and delays zeroed unless given."""
    with open(FIXTURE, encoding="utf-8") as f:
        data = json.load(f)
    data["delays"] = {k: 0 for k in data["delays"]}
    data["imds"]["mac_lag_s"] = 0
    data.update(copy.deepcopy(changes))
    return data


@pytest.fixture
def make_fake():
    """Start fakes on loopback with any listeners; all are stopped after the test."""
    started = []

    def make(fixture=None, hooks=None, seed=0, listeners=None):
        fake = FakeAWS(fixture or load_fixture(), hooks=hooks, seed=seed)
        fake.start(listeners or LISTENERS)
        started.append(fake)
        return fake
    yield make
    for fake in started:
        fake.stop()
    for fake in started:
        assert fake.errors() == [], "a hook or transition failed on the scheduler thread"


@pytest.fixture
def fake(make_fake):
    return make_fake()


_SESSION = botocore.session.get_session()  # one session: service models load once


def client(fake, service, key=HOST_KEY, attempts=1, verify=None, **config):
    """A botocore client of Debian's botocore, signing for real, pointed at the fake."""
    ak, secret, token = key
    return _SESSION.create_client(
        service, region_name="us-east-1", endpoint_url=fake.endpoints[service], verify=verify,
        aws_access_key_id=ak, aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"total_max_attempts": attempts}, **config))


def signed(url, service, params, key=HOST_KEY, region="us-east-1", when=None):
    """A Query POST signed by botocore, as (headers dict, body bytes): tests then tamper.

    `when` (epoch seconds) signs at that time instead of now: a client whose clock agrees
    with an advanced fake clock.
    """
    ak, secret, token = key
    parts = urllib.parse.urlsplit(url)
    body = urllib.parse.urlencode(params).encode()
    req = AWSRequest("POST", url + "/", data=body, headers={
        "Host": parts.netloc, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    auth = SigV4Auth(Credentials(ak, secret, token), service, region)
    if when is None:
        auth.add_auth(req)
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
        req.context["timestamp"] = stamp
        req.headers["X-Amz-Date"] = stamp
        if token:
            req.headers["X-Amz-Security-Token"] = token
        canonical = auth.canonical_request(req)
        signature = auth.signature(auth.string_to_sign(req, canonical), req)
        req.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={auth.scope(req)}, SignedHeaders="
            f"{auth.signed_headers(auth.headers_to_sign(req))}, Signature={signature}")
    return dict(req.headers.items()), body


def send(url, headers, body, method="POST", path="/"):
    """Send exactly these headers and body; return (status, headers, body bytes)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def imds_get(fake, path, token=None, method="GET", headers=None, listener="imds"):
    """A request to an IMDS listener; returns (status, headers, text)."""
    h = dict(headers or {})
    if token:
        h["X-aws-ec2-metadata-token"] = token
    parts = urllib.parse.urlsplit(fake.endpoints[listener])
    h["Host"] = parts.netloc
    status, rh, body = send(fake.endpoints[listener], h, b"", method, path)
    return status, rh, body.decode()


def imds_token(fake, ttl=21600, listener="imds"):
    status, _, token = imds_get(fake, "/latest/api/token", method="PUT", listener=listener,
                                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
    assert status == 200
    return token
