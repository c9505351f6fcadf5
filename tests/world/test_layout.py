"""The fixture generator lays a cluster out as DECISIONS.md says, and the fake accepts it."""
import ipaddress

from harness import layout
from fakeaws.fixture import normalize


def by_tag(items, value):
    return [i for i in items if i["tags"].get("Name") == value]


def test_every_broker_has_one_eni_and_one_volume_tagged_for_it_in_its_az():
    fx = layout.cluster_fixture(brokers=7, azs=3, cluster="blue")
    subnet_az = {s["id"]: s["az"] for s in fx["subnets"]}
    for n in range(7):
        enis, vols = by_tag(fx["network_interfaces"], f"KAFKA-{n}"), by_tag(fx["volumes"],
                                                                              f"KAFKA-{n}")
        assert len(enis) == 1 and len(vols) == 1
        want_az = layout.US_EAST_1_AZS[n % 3][0]
        assert subnet_az[enis[0]["subnet"]] == want_az
        assert vols[0]["az"] == want_az
        for item in enis + vols:
            assert item["tags"]["kafka-bootstrap:cluster"] == "blue"
    assert not by_tag(fx["network_interfaces"], "KAFKA-7")


def test_static_ips_are_unique_inside_their_subnets_and_clear_of_aws_reserved_ones():
    fx = layout.cluster_fixture(brokers=12, azs=3, instances=16)
    cidr = {s["id"]: ipaddress.ip_network(s["cidr"]) for s in fx["subnets"]}
    ips = [(e["subnet"], e["private_ip"]) for e in fx["network_interfaces"]]
    ips += [(i["subnet"], i["private_ip"]) for i in fx["instances"]]
    assert len({ip for _, ip in ips}) == len(ips)
    for subnet, ip in ips:
        net, addr = cidr[subnet], ipaddress.ip_address(ip)
        assert addr in net
        assert net.network_address + 4 <= addr < net.broadcast_address
    assert not any(ipaddress.ip_address(ip) in ipaddress.ip_network(layout.SERVICES_CIDR)
                   for _, ip in ips)


def test_instances_carry_the_tags_cloudformation_and_auto_scaling_put_on_them():
    fx = layout.cluster_fixture(brokers=3, azs=3)
    groups = {g["name"]: g for g in fx["autoscaling_groups"]}
    stack = fx["stacks"][0]
    for inst in fx["instances"]:
        tags = inst["tags"]
        assert tags["aws:cloudformation:stack-name"] == stack["name"]
        assert tags["aws:cloudformation:stack-id"] == stack["id"]
        assert tags["aws:cloudformation:logical-id"] in stack["resources"]
        assert inst["id"] in groups[tags["aws:autoscaling:groupName"]]["instances"]
        assert inst["role"] == layout.BROKER_ROLE


def test_the_stack_waits_for_one_signal_per_initial_instance_of_each_az():
    fx = layout.cluster_fixture(brokers=4, azs=3, instances=4)
    resources = fx["stacks"][0]["resources"]
    assert {k: (r["waiting"], r["count"]) for k, r in resources.items()} == {
        "BrokersA": (True, 2), "BrokersB": (True, 1), "BrokersC": (True, 1)}


def test_the_broker_role_is_the_project_iam_set_and_the_fake_accepts_the_fixture():
    fx = layout.cluster_fixture(brokers=5, azs=2, instances=6)
    assert fx["roles"][layout.BROKER_ROLE] == layout.BROKER_ROLE_ACTIONS
    n = normalize(fx)
    assert len(n["instances"]) == 6 and len(n["volumes"]) == 5


def test_a_group_is_found_for_an_az_even_without_initial_instances():
    fx = layout.cluster_fixture(brokers=3, azs=3, instances=1)
    assert layout.group_for_az(fx, "us-east-1a") == fx["autoscaling_groups"][0]["name"]
    group_c = layout.group_for_az(fx, "us-east-1c")
    assert group_c == fx["autoscaling_groups"][2]["name"]
    assert fx["autoscaling_groups"][2]["instances"] == []


def test_the_same_seed_gives_the_same_layout_and_another_seed_other_ids():
    assert layout.cluster_fixture(seed=1) == layout.cluster_fixture(seed=1)
    a, b = layout.cluster_fixture(seed=1), layout.cluster_fixture(seed=2)
    assert a["volumes"][0]["id"] != b["volumes"][0]["id"]
