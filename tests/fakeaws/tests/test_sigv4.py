"""Signatures: the fake must refuse anything botocore would not have signed so."""

import hashlib
import shutil
import subprocess

import pytest
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError

from fakeaws.sigv4 import expected_signature
from .conftest import HOST_KEY, READ_ONLY_KEY, client, send, signed

DESCRIBE = {"Action": "DescribeVolumes", "Version": "2016-11-15"}
SIGNAL = {"Action": "SignalResource", "Version": "2010-05-15", "StackName": "kafka-test",
          "LogicalResourceId": "BrokerGroup", "UniqueId": "i-0000000000000a001", "Status": "SUCCESS"}


def error_code(body):
    return body.split(b"<Code>")[1].split(b"</Code>")[0].decode()


def test_verifier_reproduces_the_worked_example_of_aws_protocol_md():
    headers = HTTPHeaders()
    for k, v in (("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                 ("Host", "ec2.us-east-1.amazonaws.com"), ("X-Amz-Date", "20250115T120000Z"),
                 ("X-Amz-Security-Token", "IQoJb3JpZ2luX2VjEXAMPLETOKEN")):
        headers[k] = v
    body = (b"Action=DescribeNetworkInterfaces&Version=2016-11-15"
            b"&Filter.1.Name=tag%3Akafka-broker-id&Filter.1.Value.1=3")
    cred = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "session_token": "IQoJb3JpZ2luX2VjEXAMPLETOKEN"}
    canonical, sts, sig = expected_signature(
        cred, "ec2", "us-east-1", "POST", "/", headers,
        ["content-type", "host", "x-amz-date", "x-amz-security-token"], body, "20250115T120000Z")
    assert hashlib.sha256(canonical.encode()).hexdigest() == \
        "373636d2694bca6695f887b32c40fd7ee70c030bc7a4b169eeb5fb544ffb6e10"
    assert sts.endswith("373636d2694bca6695f887b32c40fd7ee70c030bc7a4b169eeb5fb544ffb6e10")
    assert sig == "4aa71e18ed7673ed71b81a8c6a835de06766a87ee818f289c0a126a16f7a538c"


def test_awkward_characters_in_signed_values_verify(fake):
    # Space, ':', '/', '+', '~' and UTF-8 in values the client must percent-encode and sign.
    ec2 = client(fake, "ec2")
    odd = "a b:c/d+e~f=ü€"
    got = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": [odd]},
                                                   {"Name": "description", "Values": [odd]}])
    assert got["NetworkInterfaces"] == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_another_signer_libcurls_is_accepted(fake):
    # A signer that is not botocore's: the check must not depend on botocore's quirks.
    ak, secret, _ = HOST_KEY
    done = subprocess.run(
        ["curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:ec2", "--user", f"{ak}:{secret}",
         "-H", "Content-Type: application/x-www-form-urlencoded; charset=utf-8",
         "--data", "Action=DescribeVolumes&Version=2016-11-15&Filter.1.Name=tag%3AName"
                   "&Filter.1.Value.1=KAFKA-%2A", fake.endpoints["ec2"] + "/"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert fake.requests()[-1]["http_status"] == 200
    assert done.stdout.count("<volumeId>") == 3


def test_session_credentials_sign_with_their_token(fake):
    got = client(fake, "ec2", READ_ONLY_KEY).describe_volumes(VolumeIds=["vol-0000000000000a000"])
    assert got["Volumes"][0]["VolumeId"] == "vol-0000000000000a000"


@pytest.mark.parametrize("where", ["signature", "body", "signed header"])
def test_one_flipped_byte_is_refused(fake, where):
    url = fake.endpoints["ec2"]
    headers, body = signed(url, "ec2", DESCRIBE)
    assert send(url, headers, body)[0] == 200
    if where == "signature":
        sig = headers["Authorization"]
        headers["Authorization"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    elif where == "body":
        body = body.replace(b"2016", b"2017")
    else:
        headers["Content-Type"] = headers["Content-Type"].replace("utf-8", "utf-9")
    status, rheaders, rbody = send(url, headers, body)
    assert (status, error_code(rbody)) == (403, "SignatureDoesNotMatch")
    assert rbody.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>')
    record = fake.requests()[-1]
    assert record["error_code"] == "SignatureDoesNotMatch"
    assert record["expected_canonical_request"].startswith("POST\n/\n\n")


def test_the_same_flip_is_refused_by_cloudformation(fake):
    url = fake.endpoints["cloudformation"]
    headers, body = signed(url, "cloudformation", SIGNAL)
    status, _, rbody = send(url, headers, body.replace(b"SUCCESS", b"FAILURE"))
    assert (status, error_code(rbody)) == (403, "SignatureDoesNotMatch")
    assert b"<Type>Sender</Type>" in rbody and b"ErrorResponse xmlns" in rbody
    assert fake.signals() == []


@pytest.mark.parametrize("service,expect", [
    ("ec2", (401, "AuthFailure", "AWS was not able to validate the provided access credentials")),
    ("cloudformation", (403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region, not 'us-west-2'. "))])
def test_wrong_region_in_scope_is_refused(fake, service, expect):
    url = fake.endpoints[service]
    headers, body = signed(url, service, DESCRIBE if service == "ec2" else SIGNAL, region="us-west-2")
    status, _, rbody = send(url, headers, body)
    assert (status, error_code(rbody)) == expect[:2]
    assert expect[2].encode() in rbody


def test_request_signed_for_another_service_is_refused_by_the_listener(fake):
    url = fake.endpoints["cloudformation"]
    headers, body = signed(url, "ec2", SIGNAL)
    status, _, rbody = send(url, headers, body)
    assert (status, error_code(rbody)) == (403, "SignatureDoesNotMatch")
    assert b"Credential should be scoped to correct service: 'cloudformation'. " in rbody
    headers, body = signed(fake.endpoints["ec2"], "cloudformation", DESCRIBE)
    assert send(fake.endpoints["ec2"], headers, body)[0] == 401


def test_skewed_client_clock_gets_request_expired_from_ec2(fake):
    fake.set_clock_offset(16 * 60)  # the fake is 16 minutes ahead: the client is behind
    with pytest.raises(ClientError) as err:
        client(fake, "ec2").describe_volumes()
    assert err.value.response["Error"]["Code"] == "RequestExpired"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    fake.set_clock_offset(14 * 60)
    client(fake, "ec2").describe_volumes()


def test_skewed_client_clock_gets_signature_expired_from_cloudformation(fake):
    fake.set_clock_offset(6 * 60)  # CloudFormation allows 5 minutes
    with pytest.raises(ClientError) as err:
        client(fake, "cloudformation").signal_resource(
            StackName="kafka-test", LogicalResourceId="BrokerGroup", UniqueId="i-0000000000000a001",
            Status="SUCCESS")
    e = err.value.response
    assert (e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"]) == (403, "SignatureDoesNotMatch")
    assert e["Error"]["Message"].startswith("Signature expired: ")
    assert e["Error"]["Message"].endswith(" - 5 min.)")
    fake.set_clock_offset(-6 * 60)
    with pytest.raises(ClientError) as err:
        client(fake, "autoscaling").describe_auto_scaling_instances()
    assert err.value.response["Error"]["Message"].startswith("Signature not yet current: ")


def test_date_header_carries_the_fakes_clock(fake):
    fake.set_clock_offset(3600)
    url = fake.endpoints["ec2"]
    headers, body = signed(url, "ec2", DESCRIBE)
    status, rheaders, _ = send(url, headers, body)
    assert status == 400
    import email.utils
    server_time = email.utils.parsedate_to_datetime(rheaders["Date"]).timestamp()
    assert abs(server_time - fake.clock.now()) < 5


@pytest.mark.parametrize("service,expect", [
    ("ec2", (401, "AuthFailure")), ("cloudformation", (403, "InvalidClientTokenId")),
    ("autoscaling", (403, "InvalidClientTokenId"))])
def test_unknown_access_key_is_refused(fake, service, expect):
    params = {"ec2": DESCRIBE, "cloudformation": SIGNAL,
              "autoscaling": {"Action": "DescribeAutoScalingInstances", "Version": "2011-01-01"}}[service]
    url = fake.endpoints[service]
    headers, body = signed(url, service, params, key=("AKIAUNKNOWN000000000", "x" * 40, None))
    status, _, rbody = send(url, headers, body)
    assert (status, error_code(rbody)) == expect
    assert fake.requests()[-1]["access_key_id"] == "AKIAUNKNOWN000000000"


@pytest.mark.parametrize("service,expect", [
    ("ec2", (400, "MissingParameter")), ("cloudformation", (403, "MissingAuthenticationToken"))])
def test_unsigned_request_is_refused(fake, service, expect):
    url = fake.endpoints[service]
    headers, body = signed(url, service, DESCRIBE if service == "ec2" else SIGNAL)
    del headers["Authorization"]
    status, _, rbody = send(url, headers, body)
    assert (status, error_code(rbody)) == expect


@pytest.mark.parametrize("garble", [
    lambda a: a.split(", Signature=")[0],
    lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
    lambda a: a.replace("content-type;host;x-amz-date", "content-type;x-amz-date"),
    lambda a: a.replace("content-type;host;x-amz-date", "content-type;host")])
def test_garbled_authorization_is_incomplete(fake, garble):
    url = fake.endpoints["ec2"]
    headers, body = signed(url, "ec2", DESCRIBE)
    assert "SignedHeaders=content-type;host;x-amz-date," in headers["Authorization"]
    headers["Authorization"] = garble(headers["Authorization"])
    status, _, rbody = send(url, headers, body)
    assert (status, error_code(rbody)) == (400, "IncompleteSignature")


def test_session_key_without_its_token_is_refused(fake):
    ak, secret, _ = READ_ONLY_KEY
    with pytest.raises(ClientError) as err:
        client(fake, "ec2", (ak, secret, None)).describe_volumes()
    assert err.value.response["Error"]["Code"] == "AuthFailure"
    with pytest.raises(ClientError) as err:
        client(fake, "ec2", (ak, secret, "IQoJb3JpZ2luX2VjEFAKE/session+token!")).describe_volumes()
    assert err.value.response["Error"]["Code"] == "AuthFailure"


def test_expired_session_credentials(fake):
    fake.advance_clock(43200 + 1)  # the read-only key expires after 12 hours
    now = fake.clock.now()         # and the client's clock agrees with AWS's
    url = fake.endpoints["ec2"]
    status, _, body = send(url, *signed(url, "ec2", DESCRIBE, READ_ONLY_KEY, when=now))
    assert (status, error_code(body)) == (400, "RequestExpired")
    url = fake.endpoints["autoscaling"]
    params = {"Action": "DescribeAutoScalingInstances", "Version": "2011-01-01"}
    status, _, body = send(url, *signed(url, "autoscaling", params, READ_ONLY_KEY, when=now))
    assert (status, error_code(body)) == (403, "ExpiredToken")
    url = fake.endpoints["ec2"]
    assert send(url, *signed(url, "ec2", DESCRIBE, HOST_KEY, when=now))[0] == 200
