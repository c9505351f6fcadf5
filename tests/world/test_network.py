"""The simulated VPC: from inside its namespace an instance reaches IMDS as itself, and
ZooKeeper and the fake's APIs through eth0; an ENI attached through the EC2 API appears in
that instance, with its MAC, once the attach delay passed, and goes away on detach; none of
it lives in the host's namespace."""
import json
import subprocess
import time
import urllib.error
import urllib.request

import botocore.config
import botocore.session
import pytest

from harness import layout, netns
from harness.world import SYSTEM_CA_BUNDLE, World
from harness.zookeeper import four_letter_word

IMDS = "http://169.254.169.254/latest/"
ATTACH_DELAY_S = 0.5


@pytest.fixture(scope="module")
def world():
    with World(brokers=3, azs=3, delays={"eni_attach_s": ATTACH_DELAY_S,
                                         "eni_detach_s": 0.2}) as w:
        yield w


def imds_read(paths):
    """IMDSv2 with urllib, run inside an instance's namespace: token, then each path."""
    req = urllib.request.Request(IMDS + "api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    token = urllib.request.urlopen(req, timeout=2).read().decode()
    out = {}
    for path in paths:
        req = urllib.request.Request(IMDS + path, headers={"X-aws-ec2-metadata-token": token})
        out[path] = urllib.request.urlopen(req, timeout=2).read().decode()
    return out


def role_credentials():
    role = imds_read(["meta-data/iam/security-credentials/"])[
        "meta-data/iam/security-credentials/"].split()[0]
    return json.loads(imds_read([f"meta-data/iam/security-credentials/{role}"])[
        f"meta-data/iam/security-credentials/{role}"])


def ec2_client(world, creds):
    return botocore.session.get_session().create_client(
        "ec2", region_name="us-east-1", endpoint_url=world.endpoints["ec2"],
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("Token"),
        config=botocore.config.Config(retries={"max_attempts": 1}))


def test_imds_answers_every_instance_with_its_own_identity(world):
    seen = set()
    for inst in world.instances:
        got = inst.call(imds_read, ["meta-data/instance-id", "meta-data/local-ipv4",
                                    "meta-data/mac", "meta-data/placement/availability-zone"])
        assert got == {"meta-data/instance-id": inst.id, "meta-data/local-ipv4": inst.ip,
                       "meta-data/mac": inst.mac,
                       "meta-data/placement/availability-zone": inst.az}
        seen.add(got["meta-data/instance-id"])
    assert len(seen) == 3


def test_imds_needs_a_token_and_curl_as_a_second_client_gets_the_same_answer(world):
    inst = world.instances[1]
    code = inst.sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   IMDS + "meta-data/instance-id")
    assert code == "401"
    token = inst.sh("curl", "-sf", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 30",
                    IMDS + "api/token")
    assert inst.sh("curl", "-sf", "-H", f"X-aws-ec2-metadata-token: {token}",
                   IMDS + "meta-data/instance-id") == inst.id


def test_eth0_is_the_primary_eni_routed_via_its_subnet_router(world):
    for inst in world.instances:
        eth0 = next(l for l in inst.links() if l["ifname"] == "eth0")
        assert eth0["address"] == inst.mac
        assert netns.addresses(inst.netns, "eth0") == [f"{inst.ip}/24"]
        default = [r for r in netns.routes(inst.netns) if r["dst"] == "default"]
        assert [(r["gateway"], r["dev"]) for r in default] == [(layout.router_ip(inst.cidr),
                                                                "eth0")]


def test_instances_reach_zookeeper_on_the_bridge(world):
    for inst in world.instances:
        assert "Mode: standalone" in inst.call(four_letter_word, world.services_ip, 2181, "srvr")


def test_nothing_of_the_world_is_in_the_host_namespace(world):
    host = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True,
                                     check=True).stdout)
    addrs = {a["local"] for i in host for a in i.get("addr_info", [])}
    assert layout.IMDS_IP not in addrs and world.services_ip not in addrs
    assert not [i["ifname"] for i in host if i["ifname"].startswith(world.prefix)]
    bridge = netns.addresses(world.vpc, world.bridge)
    assert f"{layout.IMDS_IP}/32" in bridge and f"{world.services_ip}/24" in bridge


def test_an_eni_attached_through_ec2_appears_after_the_delay_and_goes_on_detach(world):
    inst, other = world.instances[0], world.instances[1]
    eni, _ = world.broker_resources(0)
    assert eni["az"] == inst.az

    def attach():
        ec2 = ec2_client(world, role_credentials())
        return ec2.attach_network_interface(NetworkInterfaceId=eni["id"], InstanceId=inst.id,
                                            DeviceIndex=1)["AttachmentId"]
    t0 = time.monotonic()
    attachment = inst.call(attach)
    assert inst.link_by_mac(eni["mac"]) is None, "plugged before the attach delay"
    world.wait_for(lambda: eni["id"] in inst.enis, 5, "the ENI's veth")
    assert time.monotonic() - t0 >= ATTACH_DELAY_S
    link = inst.link_by_mac(eni["mac"])
    assert link["ifname"] == "ens6" and "UP" not in link["flags"]
    assert netns.addresses(inst.netns, "ens6") == []
    assert other.link_by_mac(eni["mac"]) is None
    port = inst.enis[eni["id"]]["port"]
    assert any(l["ifname"] == port and l.get("master") == world.bridge
               for l in netns.links(world.vpc))

    att = world.aws("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni["id"]])[
        "NetworkInterfaces"][0]["Attachment"]
    assert (att["InstanceId"], att["Status"], att["DeviceIndex"]) == (inst.id, "attached", 1)

    world.aws("ec2").detach_network_interface(AttachmentId=attachment)
    world.wait_for(lambda: eni["id"] not in inst.enis, 5, "the ENI's veth to go")
    assert inst.link_by_mac(eni["mac"]) is None
    assert not any(l["ifname"] == port for l in netns.links(world.vpc))


def test_an_eni_in_another_az_is_refused_and_nothing_is_plugged(world):
    inst = world.instances[0]
    eni, _ = world.broker_resources(1)
    assert eni["az"] != inst.az
    with pytest.raises(botocore.exceptions.ClientError):
        inst.call(lambda: ec2_client(world, role_credentials()).attach_network_interface(
            NetworkInterfaceId=eni["id"], InstanceId=inst.id, DeviceIndex=1))
    time.sleep(ATTACH_DELAY_S + 0.2)
    assert inst.link_by_mac(eni["mac"]) is None


def test_the_router_mac_stays_when_a_port_with_a_lower_mac_joins_the_bridge(world):
    # A bridge otherwise takes its lowest port MAC: a hot-plugged ENI would move the
    # router's MAC under the instances' ARP caches and stall their connections.
    def bridge_mac():
        return next(l["address"] for l in netns.links(world.vpc)
                    if l["ifname"] == world.bridge)
    before = bridge_mac()
    port = world.prefix + "zz"
    netns.ip_batch(world.vpc, [
        f"link add {port} address 00:00:00:00:00:01 type veth peer name {port}p",
        f"link set {port} master {world.bridge} up"])
    try:
        assert bridge_mac() == before
    finally:
        netns.link_del(world.vpc, port)


def test_with_tls_the_apis_answer_over_https_to_clients_trusting_the_agent_bundle():
    with World(brokers=1, azs=1, tls=True, zookeeper=False) as w:
        inst = w.instances[0]
        url = w.endpoints["ec2"]
        assert url.startswith("https://") and w.endpoints["imds"].startswith("http://")
        assert inst.agent_env()["AWS_CA_BUNDLE"] == w.ca_bundle
        with open(w.ca_bundle) as f:
            assert f.read().count("BEGIN CERTIFICATE") > 1  # the system's roots and ours
        code = inst.sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                       w.ca_bundle, "-d", "Action=DescribeVolumes&Version=2016-11-15", url + "/")
        assert code in ("400", "401", "403")  # an AWS error for an unsigned call, over TLS
        refused = subprocess.run(["nsenter", f"--net=/run/netns/{inst.netns}", "curl", "-s",
                                  "--cacert", SYSTEM_CA_BUNDLE, url + "/"],
                                 capture_output=True)
        assert refused.returncode == 60  # CURLE_PEER_FAILED_VERIFICATION: the CA matters
        assert len(w.aws("ec2").describe_volumes()["Volumes"]) == 2  # root and broker 0
