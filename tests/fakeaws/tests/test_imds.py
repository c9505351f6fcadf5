"""IMDSv2: tokens, paths, hot-attach lag, role credentials that sign EC2 calls."""

import http.client
import json
import socket
import struct

import pytest
from botocore.exceptions import ClientError

from .conftest import BROKERS, ENIS, LISTENERS, client, imds_get, imds_token, load_fixture, send, signed

A, B = BROKERS["a"], BROKERS["b"]
TTL = "X-aws-ec2-metadata-token-ttl-seconds"


def meta(fake, path, token, listener="imds"):
    return imds_get(fake, "/latest/meta-data/" + path, token, listener=listener)


def test_token_then_get(fake):
    status, headers, token = imds_get(fake, "/latest/api/token", method="PUT", headers={TTL: "300"})
    assert status == 200 and headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] == "300"
    assert headers["Server"] == "EC2ws" and headers["Content-Type"] == "text/plain"
    assert meta(fake, "instance-id", token)[::2] == (200, A)
    assert meta(fake, "placement/availability-zone", token)[2] == "us-east-1a"
    assert meta(fake, "placement/availability-zone-id", token)[2] == "use1-az6"
    assert meta(fake, "placement/region", token)[2] == "us-east-1"
    assert meta(fake, "local-ipv4", token)[2] == "10.0.1.10"
    assert meta(fake, "mac", token)[2] == "0e:00:00:01:00:0a"
    listing = meta(fake, "", token)[2].split("\n")
    assert {"instance-id", "mac", "iam/", "network/", "placement/", "tags/"} <= set(listing)
    assert meta(fake, "no-such-key", token)[0] == 404
    status, headers, body = meta(fake, "placement/nope", token)
    assert status == 404 and "<title>404 - Not Found</title>" in body
    assert imds_get(fake, "/latest/meta-data/instance-id", token, method="HEAD")[::2] == (200, "")
    assert imds_get(fake, "/latest/meta-data/instance-id", token, method="POST")[0] == 405


def test_token_request_is_checked(fake):
    put = lambda headers, path="/latest/api/token": imds_get(fake, path, method="PUT", headers=headers)[0]
    assert put({}) == 400
    assert put({TTL: "0"}) == 400
    assert put({TTL: "21601"}) == 400
    assert put({TTL: "ten"}) == 400
    assert put({TTL: "60", "X-Forwarded-For": "10.0.0.1"}) == 403
    assert put({TTL: "60"}, "/2021-03-23/api/token") == 403
    assert put({TTL: "21600"}) == 200


def test_gets_need_a_valid_unexpired_token_of_this_instance(make_fake):
    fake = make_fake(listeners=LISTENERS + [{"service": "imds", "instance_id": B, "name": "imds-b"}])
    assert meta(fake, "instance-id", None)[0] == 401  # IMDSv1 on an HttpTokens=required instance
    assert meta(fake, "instance-id", "AQAEAbogus==")[0] == 401
    token_b = imds_token(fake, listener="imds-b")
    assert meta(fake, "instance-id", token_b, "imds-b")[2] == B
    assert meta(fake, "instance-id", token_b)[0] == 401
    short = imds_token(fake, ttl=5)
    fake.advance_clock(4)
    assert meta(fake, "instance-id", short)[0] == 200
    fake.advance_clock(1)
    assert meta(fake, "instance-id", short)[0] == 401
    assert [r["error_code"] for r in fake.requests() if r["http_status"] == 401] == \
        ["MissingToken", "InvalidToken", "InvalidToken", "InvalidToken"]


def test_token_ttl_cap_fault_expires_tokens_early(fake):
    fake.set_faults(imds_token_ttl_cap_s=10)
    status, headers, token = imds_get(fake, "/latest/api/token", method="PUT", headers={TTL: "21600"})
    assert headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] == "21600"
    fake.advance_clock(10)
    assert meta(fake, "instance-id", token)[0] == 401


def test_hot_attached_eni_lags_in_imds(make_fake):
    fx = load_fixture(imds={"mac_lag_s": 10})
    fx["instances"][0]["network_cards"] = 2
    fake = make_fake(fx)
    token = imds_token(fake)
    assert meta(fake, "network/interfaces/macs/", token)[2] == "0e:00:00:01:00:0a/"
    client(fake, "ec2").attach_network_interface(NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=1)
    assert fake.wait_idle()
    mac = "0e:00:00:01:01:00"
    assert meta(fake, "network/interfaces/macs/", token)[2] == f"0e:00:00:01:00:0a/\n{mac}/"
    base = f"network/interfaces/macs/{mac}/"
    assert meta(fake, base + "subnet-ipv4-cidr-block", token)[0] == 404
    assert meta(fake, base + "device-number", token)[2] == "0"
    assert meta(fake, base + "network-card", token)[::2] == (200, "")
    assert meta(fake, base + "interface-id", token)[2] == ENIS["a"]
    fake.advance_clock(10)
    assert meta(fake, base + "subnet-ipv4-cidr-block", token)[2] == "10.0.1.0/24"
    assert meta(fake, base + "device-number", token)[2] == "1"
    assert meta(fake, base + "network-card", token)[2] == "0"
    assert meta(fake, base + "local-ipv4s", token)[2] == "10.0.1.100"
    assert meta(fake, base + "vpc-id", token)[2] == "vpc-0000000000000f000"
    primary = "network/interfaces/macs/0e:00:00:01:00:0a/"
    assert meta(fake, primary + "device-number", token)[2] == "0"


def test_network_card_key_is_absent_on_single_card_instances(fake):
    token = imds_token(fake)
    assert meta(fake, "network/interfaces/macs/0e:00:00:01:00:0a/network-card", token)[0] == 404


def test_role_credentials_sign_ec2_calls_as_the_instance(fake):
    token = imds_token(fake)
    assert meta(fake, "iam/security-credentials/", token)[2] == "kafka-broker"
    doc = json.loads(meta(fake, "iam/security-credentials/kafka-broker", token)[2])
    assert list(doc) == ["Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
    assert doc["Code"] == "Success" and doc["Type"] == "AWS-HMAC" and doc["AccessKeyId"].startswith("ASIA")
    assert doc["Expiration"].endswith("Z") and len(doc["Expiration"]) == 20
    assert meta(fake, "iam/security-credentials/other-role", token)[0] == 404
    key = (doc["AccessKeyId"], doc["SecretAccessKey"], doc["Token"])
    client(fake, "ec2", key).describe_network_interfaces()
    assert fake.requests()[-1]["instance_id"] == A
    with pytest.raises(ClientError) as err:
        client(fake, "ec2", key[:2] + (None,)).describe_network_interfaces()
    assert err.value.response["Error"]["Code"] == "AuthFailure"


def test_credentials_rotate_before_expiry_and_old_ones_expire(make_fake):
    fake = make_fake(load_fixture(imds={"credential_lifetime_s": 3600, "credential_rotate_before_s": 300}))
    token = imds_token(fake, ttl=21600)
    first = json.loads(meta(fake, "iam/security-credentials/kafka-broker", token)[2])
    fake.advance_clock(3299)
    assert json.loads(meta(fake, "iam/security-credentials/kafka-broker", token)[2]) == first
    fake.advance_clock(1)
    second = json.loads(meta(fake, "iam/security-credentials/kafka-broker", token)[2])
    assert second["AccessKeyId"] != first["AccessKeyId"] and second["Expiration"] > first["Expiration"]
    url = fake.endpoints["ec2"]
    params = {"Action": "DescribeVolumes", "Version": "2016-11-15"}
    old = (first["AccessKeyId"], first["SecretAccessKey"], first["Token"])
    assert send(url, *signed(url, "ec2", params, old, when=fake.clock.now()))[0] == 200
    fake.advance_clock(300)
    status, _, body = send(url, *signed(url, "ec2", params, old, when=fake.clock.now()))
    assert (status, b"<Code>RequestExpired</Code>" in body) == (400, True)
    new = (second["AccessKeyId"], second["SecretAccessKey"], second["Token"])
    assert send(url, *signed(url, "ec2", params, new, when=fake.clock.now()))[0] == 200


def test_identity_document_and_tags(make_fake):
    fx = load_fixture()
    fx["instances"][1]["metadata_tags"] = False
    fake = make_fake(fx, listeners=LISTENERS + [{"service": "imds", "instance_id": B, "name": "imds-b"}])
    token = imds_token(fake)
    status, _, text = imds_get(fake, "/latest/dynamic/instance-identity/document", token)
    doc = json.loads(text)
    assert '"accountId" : "123456789012"' in text
    assert (doc["instanceId"], doc["availabilityZone"], doc["region"], doc["privateIp"], doc["version"]) == \
        (A, "us-east-1a", "us-east-1", "10.0.1.10", "2017-09-30")
    keys = meta(fake, "tags/instance/", token)[2].split("\n")
    assert "aws:cloudformation:logical-id" in keys
    assert meta(fake, "tags/instance/aws:cloudformation:stack-name", token)[2] == "kafka-test"
    token_b = imds_token(fake, listener="imds-b")
    assert meta(fake, "tags/instance/", token_b, "imds-b")[0] == 404


def test_the_caller_is_the_instance_whose_primary_ip_is_the_source(make_fake):
    fx = load_fixture(vpc={"id": "vpc-0000000000000f000", "cidr": "127.0.0.0/16"},
                      subnets=[{"id": "subnet-0000000000000a000", "az": "us-east-1a", "az_id": "use1-az6",
                                "cidr": "127.0.0.0/24"}],
                      network_interfaces=[], volumes=[], autoscaling_groups=[])
    fx["instances"] = [dict(fx["instances"][0], private_ip="127.0.0.5")]
    fake = make_fake(fx, listeners=[{"service": "imds"}])
    port = int(fake.endpoints["imds"].rsplit(":", 1)[1])

    def get(source, method, path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", port, source_address=(source, 0), timeout=5)
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        out = resp.status, resp.read().decode()
        conn.close()
        return out

    status, token = get("127.0.0.5", "PUT", "/latest/api/token", {TTL: "60"})
    assert status == 200
    assert get("127.0.0.5", "GET", "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": token}) == (200, A)
    assert get("127.0.0.1", "PUT", "/latest/api/token", {TTL: "60"})[0] == 403


def test_token_reply_leaves_with_the_hop_limit_as_ip_ttl(fake):
    # Linux reports no TTL of received TCP segments to the socket (IP_PKTOPTIONS gives the
    # multicast TTL), so read the reply's IP header from a raw socket: root only.
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    except PermissionError:
        pytest.skip("raw sockets need root")
    raw.settimeout(5)
    host, port = fake.endpoints["imds"].split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n" + TTL.encode() + b": 60\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")
    mine = s.getsockname()[1]
    ttls = set()
    while not ttls:
        packet = raw.recv(65535)
        ihl = (packet[0] & 0x0F) * 4
        src, dst = struct.unpack("!HH", packet[ihl:ihl + 4])
        offset = ihl + (packet[ihl + 12] >> 4) * 4
        if (src, dst) == (int(port), mine) and packet[offset:].startswith(b"HTTP/1.1 200"):
            ttls.add(packet[8])
    s.close()
    raw.close()
    assert ttls == {2}  # the fixture's default HttpPutResponseHopLimit
