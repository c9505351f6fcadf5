"""Fixtures for the fake AWS endpoint: a Kafka cluster laid out as the project expects it.

`cluster_fixture()` builds, for N brokers spread over A availability zones: one subnet per
AZ, per broker an ENI with a static IP and a volume, both tagged `Name=KAFKA-<n>` and
`kafka-bootstrap:cluster=<cluster>` (DECISIONS.md "Tags"), the initial instances with the
tags CloudFormation and Auto Scaling put on an ASG's instances, one Auto Scaling group and
one stack resource per AZ waiting for its instances' signals, the broker role allowed
exactly BROKER_ROLE_ACTIONS, and a static credential (`HARNESS_CREDENTIALS`, allowed
everything) for tests that call the fake's APIs themselves.

Identifiers are derived from the seed by hashing, so a layout reads the same run after
run; everything is plain JSON (`python3 -m harness.layout --brokers 3` prints it).

Addresses (10.0.0.0/16 VPC):
    10.0.0.0/24      services: ZooKeeper and the fake's API listeners (SERVICES_IP)
    10.0.<a+1>.0/24  subnet of AZ a; .1 its router; broker ENIs from .10; instances from .100
"""
import argparse
import hashlib
import ipaddress
import json
import sys

# (name, id) of us-east-1's zones in a real account: names differ per account, ids do not.
US_EAST_1_AZS = [("us-east-1a", "use1-az6"), ("us-east-1b", "use1-az1"),
                 ("us-east-1c", "use1-az2"), ("us-east-1d", "use1-az4"),
                 ("us-east-1e", "use1-az3"), ("us-east-1f", "use1-az5")]

VPC_CIDR = "10.0.0.0/16"
SERVICES_CIDR = "10.0.0.0/24"
SERVICES_IP = "10.0.0.2"
IMDS_IP = "169.254.169.254"
BROKER_ROLE = "kafka-broker"

# What the broker's instance role may do: the IAM policy of the CloudFormation template must
# list exactly these (a test compares them with the actions the fake recorded in a run).
BROKER_ROLE_ACTIONS = sorted([
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVolumes",
    "ec2:DescribeTags",
    "ec2:AttachNetworkInterface",
    "ec2:AttachVolume",
    "ec2:DetachNetworkInterface",   # take_over_stopped only
    "ec2:DetachVolume",             # take_over_stopped only
    "cloudformation:SignalResource",
    "autoscaling:SetInstanceHealth",
    "autoscaling:CompleteLifecycleAction",
])

HARNESS_CREDENTIALS = {
    "access_key_id": "AKIAHARNESSEXAMPLE01",
    "secret_access_key": "harness/Secret+Key~with:odd chars",
    "role": "harness",
}


def _hex(seed, *parts, n=16):
    return hashlib.sha256(":".join(map(str, (seed,) + parts)).encode()).hexdigest()[:n]


def _mac(seed, *parts):
    h = _hex(seed, "mac", *parts, n=10)
    return "0e:" + ":".join(h[i:i + 2] for i in range(0, 10, 2))


def subnet_cidr(az_index):
    return f"10.0.{az_index + 1}.0/24"


def router_ip(cidr):
    """AWS's VPC router is the subnet's base address + 1."""
    return str(ipaddress.ip_network(cidr).network_address + 1)


def group_letter(az_index):
    return chr(ord("A") + az_index)


def cluster_fixture(brokers=3, azs=3, instances=None, cluster="sim", stack="kafka-sim",
                    region="us-east-1", account="123456789012", volume_size_gib=1,
                    delays=None, imds=None, seed=0, role_actions=None):
    """The fake's fixture for `brokers` brokers over `azs` AZs, broker n in AZ n % azs.

    `instances` initial instances (default: one per broker) go round-robin over the AZs,
    members of their AZ's group; the stack's resource for an AZ waits for as many SUCCESS
    signals as the AZ has initial instances."""
    if not 1 <= azs <= len(US_EAST_1_AZS):
        raise ValueError(f"azs must be 1..{len(US_EAST_1_AZS)}")
    if region != "us-east-1":
        raise ValueError("only us-east-1's zones are laid out")
    instances = brokers if instances is None else instances
    stack_uuid = "-".join(_hex(seed, "stack", n=32)[a:b]
                          for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))
    stack_id = f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/{stack_uuid}"
    fx = {
        "comment": f"{brokers} brokers over {azs} AZs, cluster {cluster} (harness.layout)",
        "region": region,
        "account": account,
        "vpc": {"id": f"vpc-0{_hex(seed, 'vpc')}", "cidr": VPC_CIDR},
        "subnets": [],
        "roles": {BROKER_ROLE: list(role_actions or BROKER_ROLE_ACTIONS),
                  HARNESS_CREDENTIALS["role"]: ["*"]},
        "credentials": [dict(HARNESS_CREDENTIALS, session_name="harness")],
        "instances": [],
        "network_interfaces": [],
        "volumes": [],
        "stacks": [{"name": stack, "id": stack_id, "status": "CREATE_COMPLETE",
                    "resources": {}}],
        "autoscaling_groups": [],
    }
    if delays:
        fx["delays"] = dict(delays)
    if imds:
        fx["imds"] = dict(imds)
    for a in range(azs):
        az, az_id = US_EAST_1_AZS[a]
        fx["subnets"].append({"id": f"subnet-0{_hex(seed, 'subnet', a)}", "az": az,
                              "az_id": az_id, "cidr": subnet_cidr(a)})
    for n in range(brokers):
        a = n % azs
        net = ipaddress.ip_network(subnet_cidr(a))
        tags = {"Name": f"KAFKA-{n}", "kafka-bootstrap:cluster": cluster}
        fx["network_interfaces"].append({
            "id": f"eni-0{_hex(seed, 'eni', n)}", "subnet": fx["subnets"][a]["id"],
            "private_ip": str(net.network_address + 10 + n // azs), "mac": _mac(seed, "eni", n),
            "description": f"kafka broker {n}", "tags": dict(tags)})
        fx["volumes"].append({"id": f"vol-0{_hex(seed, 'vol', n)}",
                              "az": US_EAST_1_AZS[a][0], "size": volume_size_gib,
                              "type": "gp3", "tags": dict(tags)})
    placed = []
    for a in range(azs):
        logical = f"Brokers{group_letter(a)}"
        group = f"{stack}-{logical}-{_hex(seed, 'asg', a, n=12).upper()}"
        members = []
        for k in range(a, instances, azs):
            net = ipaddress.ip_network(subnet_cidr(a))
            iid = f"i-0{_hex(seed, 'instance', k)}"
            members.append(iid)
            placed.append((k, {
                "id": iid, "subnet": fx["subnets"][a]["id"],
                "private_ip": str(net.network_address + 100 + k // azs),
                "mac": _mac(seed, "instance", k), "role": BROKER_ROLE,
                "tags": {"aws:cloudformation:stack-name": stack,
                         "aws:cloudformation:stack-id": stack_id,
                         "aws:cloudformation:logical-id": logical,
                         "aws:autoscaling:groupName": group}}))
        fx["autoscaling_groups"].append({
            "name": group, "instances": members,
            "tags": {"aws:cloudformation:stack-name": stack,
                     "aws:cloudformation:stack-id": stack_id,
                     "aws:cloudformation:logical-id": logical}})
        fx["stacks"][0]["resources"][logical] = {
            "type": "AWS::AutoScaling::AutoScalingGroup",
            "waiting": bool(members), "count": len(members) or None}
    fx["instances"] = [inst for _, inst in sorted(placed, key=lambda p: p[0])]
    return fx


def group_for_az(fixture, az):
    """The Auto Scaling group launching into `az`: the group of an instance there, else the
    group this module made for the AZ (logical id Brokers<letter>); None if neither."""
    subnets = {s["id"]: s["az"] for s in fixture["subnets"]}
    by_id = {i["id"]: i for i in fixture.get("instances", [])}
    groups = fixture.get("autoscaling_groups", [])
    for g in groups:
        for m in g.get("instances", []):
            mid = m if isinstance(m, str) else m["id"]
            if mid in by_id and subnets[by_id[mid]["subnet"]] == az:
                return g["name"]
    azs = list(dict.fromkeys(s["az"] for s in fixture["subnets"]))
    logical = f"Brokers{group_letter(azs.index(az))}" if az in azs else None
    for g in groups:
        if g.get("tags", {}).get("aws:cloudformation:logical-id") == logical:
            return g["name"]
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description="Print a fixture for the fake AWS endpoint.")
    p.add_argument("--brokers", type=int, default=3)
    p.add_argument("--azs", type=int, default=3)
    p.add_argument("--instances", type=int)
    p.add_argument("--cluster", default="sim")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    json.dump(cluster_fixture(a.brokers, a.azs, a.instances, a.cluster, seed=a.seed),
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
