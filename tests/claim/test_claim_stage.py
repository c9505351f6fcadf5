"""The discover and claim stages and the release command, through the real kafka-bootstrap
binary: IMDS and EC2 from the fake AWS (tests/fakeaws), the claim in a real ZooKeeper,
kazoo reading the result.

Topology: everything on 127.0.0.1. The fake's IMDS answers as instance "me" in us-east-1a.
ENIs and volumes tagged KAFKA-0..3 (cluster "test") are in us-east-1a; KAFKA-4 is in
us-east-1b, KAFKA-5 belongs to cluster "other", KAFKA-06 is mis-tagged: none of those three
may ever be claimed. i-...a2 to a5 are other brokers of the cluster, running.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import reader_for
from fakeaws import FakeAWS
from harness.claimers import Claimers
from harness.zookeeper import free_port
from kazoo.client import KazooClient

ME = "i-00000000000000a01"
OTHERS = [f"i-00000000000000a0{n}" for n in range(2, 6)]
BINARY = os.environ.get("KB_BINARY") or os.path.join(
    os.environ.get("KB_BINARY_DIR", "build"), "kafka-bootstrap")


def hexid(prefix, az, n):
    return f"{prefix}-0000000000000{az}{n:03x}"


def fixture():
    subnets = {"a": ("us-east-1a", "use1-az6", "10.0.1.0/24"),
               "b": ("us-east-1b", "use1-az1", "10.0.2.0/24")}
    tagged = [(n, "a", "test", f"KAFKA-{n}") for n in range(4)] + [
        (4, "b", "test", "KAFKA-4"), (5, "a", "other", "KAFKA-5"), (6, "a", "test", "KAFKA-06")]
    return {
        "region": "us-east-1",
        "account": "123456789012",
        "vpc": {"id": "vpc-0000000000000f000", "cidr": "10.0.0.0/16"},
        "subnets": [{"id": hexid("subnet", s, 0), "az": az, "az_id": azid, "cidr": cidr}
                    for s, (az, azid, cidr) in subnets.items()],
        "roles": {"kafka-broker": ["ec2:Describe*", "ec2:Attach*"]},
        "instances": [{"id": i, "subnet": hexid("subnet", "a", 0), "role": "kafka-broker"}
                      for i in [ME] + OTHERS],
        "network_interfaces": [
            {"id": hexid("eni", s, n), "subnet": hexid("subnet", s, 0),
             "tags": {"Name": name, "kafka-bootstrap:cluster": cluster}}
            for n, s, cluster, name in tagged],
        "volumes": [
            {"id": hexid("vol", s, n), "az": subnets[s][0],
             "tags": {"Name": name, "kafka-bootstrap:cluster": cluster}}
            for n, s, cluster, name in tagged],
    }


@pytest.fixture
def fake():
    fake = FakeAWS(fixture()).start([{"service": "ec2"},
                                     {"service": "imds", "instance_id": ME}])
    yield fake
    fake.stop()


def make_tool(fake, zookeeper, chroot, tmp_path):
    """run(*args, imds=...): the binary as the instance the named IMDS listener answers for."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "cluster": "test", "zookeeper_connect": f"{zookeeper.connect}{chroot}",
        "status_file": str(tmp_path / "status.json"), "console": "",
        "claim_deadline_s": 20}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ENDPOINT_URL_EC2"] = fake.endpoints["ec2"]

    def run(*args, extra_env=None, imds="imds"):
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = fake.endpoints[imds]
        proc = subprocess.run([BINARY, *args, "--config", str(config)], capture_output=True,
                              text=True, timeout=120, env={**env, **(extra_env or {})})
        status = tmp_path / "status.json"
        proc.status = json.loads(status.read_text()) if status.exists() else None
        if status.exists():
            status.unlink()
        return proc
    return run


@pytest.fixture
def tool(fake, zookeeper, chroot, tmp_path):
    return make_tool(fake, zookeeper, chroot, tmp_path)


@pytest.fixture
def held(zookeeper, chroot):
    """Ids 0-3 held by the four other instances, as the cluster's first boot left them."""
    with Claimers(f"{zookeeper.connect}{chroot}", "0-3", ["--cluster", "test"]) as c:
        c.hold(dict(enumerate(OTHERS)))
    return dict(enumerate(OTHERS))


def ec2_calls(fake, action):
    return [r for r in fake.requests() if r["service"] == "ec2" and r["action"] == action]


def claim_stage(proc):
    return next(s for s in proc.status["stages"] if s["name"] == "claim")


def test_claim_stage_claims_an_id_of_this_az_and_cluster_after_one_describe_each(
        tool, fake, zookeeper, chroot):
    proc = tool("run", "--stage", "claim")
    assert proc.returncode == 0, proc.stderr
    with reader_for(zookeeper, chroot, cluster="test") as r:
        owners = r.check_consistent()
        assert list(owners.values()) == [ME]
        bid = next(iter(owners))
        record = r.claims()[bid][0]
    assert bid in range(4)
    assert record["eni_id"] == hexid("eni", "a", bid)
    assert record["volume_id"] == hexid("vol", "a", bid)
    assert (record["az"], record["az_id"]) == ("us-east-1a", "use1-az6")
    assert proc.status["broker_id"] == bid
    assert claim_stage(proc)["outcome"] == "changed"
    assert claim_stage(proc)["changes"] == [f"claim broker id {bid} (free)"]

    enis, vols = ec2_calls(fake, "DescribeNetworkInterfaces"), ec2_calls(fake, "DescribeVolumes")
    assert len(enis) == 1 and len(vols) == 1
    for call in enis + vols:
        filters = {call["params"][k]: call["params"][k.replace(".Name", ".Value.1")]
                   for k in call["params"] if k.endswith(".Name")}
        assert filters == {"tag:Name": "KAFKA-*", "availability-zone": "us-east-1a",
                           "tag:kafka-bootstrap:cluster": "test"}
    assert ec2_calls(fake, "DescribeInstances") == []


def test_ids_of_another_az_or_cluster_or_mis_tagged_are_never_claimed(tool, fake, zookeeper,
                                                                     chroot, held):
    proc = tool("run", "--stage", "claim")
    assert proc.returncode == 10, proc.stderr
    assert "all 4 candidates are held" in proc.stderr
    with reader_for(zookeeper, chroot, cluster="test") as r:
        assert r.check_consistent() == held
    # One question to EC2 for all four owners.
    calls = ec2_calls(fake, "DescribeInstances")
    assert len(calls) == 1
    assert sorted(v for k, v in calls[0]["params"].items()
                  if k.startswith("Filter.1.Value.")) == sorted(OTHERS)


def test_a_terminated_owner_is_taken_over_with_one_describe_instances(tool, fake, zookeeper,
                                                                     chroot, held):
    fake.terminate_instance(OTHERS[2])
    fake.wait_idle()
    proc = tool("run", "--stage", "claim")
    assert proc.returncode == 0, proc.stderr
    assert claim_stage(proc)["changes"][0].startswith(
        f"take over broker id 2 from {OTHERS[2]} (owner terminated")
    with reader_for(zookeeper, chroot, cluster="test") as r:
        assert r.check_consistent() == {**held, 2: ME}
    assert len(ec2_calls(fake, "DescribeInstances")) == 1


def test_a_stopped_owner_is_taken_over_only_with_take_over_stopped(tool, fake, zookeeper,
                                                                  chroot, held):
    fake.stop_instance(OTHERS[1])
    fake.wait_idle()
    proc = tool("run", "--stage", "claim")
    assert proc.returncode == 10, proc.stderr
    assert "--take-over-stopped" in proc.stderr
    proc = tool("run", "--stage", "claim", "--take-over-stopped")
    assert proc.returncode == 0, proc.stderr
    with reader_for(zookeeper, chroot, cluster="test") as r:
        assert r.check_consistent() == {**held, 1: ME}


def test_a_rerun_keeps_the_id_without_writing_or_asking_ec2_for_owners(tool, fake, zookeeper,
                                                                      chroot):
    first = tool("run", "--stage", "claim")
    assert first.returncode == 0, first.stderr
    with reader_for(zookeeper, chroot, cluster="test") as r:
        stats = {b: s.mzxid for b, (_, s) in r.claims().items()}
    again = tool("run", "--stage", "claim")
    assert again.returncode == 0, again.stderr
    assert again.status["broker_id"] == first.status["broker_id"]
    assert claim_stage(again)["outcome"] == "ok"
    with reader_for(zookeeper, chroot, cluster="test") as r:
        assert {b: s.mzxid for b, (_, s) in r.claims().items()} == stats
    assert ec2_calls(fake, "DescribeInstances") == []


def test_plan_says_which_id_it_would_claim_and_writes_nothing(tool, zookeeper, chroot):
    proc = tool("plan", "--stage", "claim")
    assert proc.returncode == 0, proc.stderr
    assert "claim: would: claim broker id" in proc.stderr
    client = KazooClient(hosts=zookeeper.connect)
    client.start()
    try:
        assert not client.exists(chroot)
    finally:
        client.stop()
        client.close()


def test_a_later_stage_without_a_claim_says_to_run_the_claim_stage_first(tool, zookeeper,
                                                                        chroot):
    proc = tool("run", "--stage", "eni")
    # An operator's --stage with an earlier stage missing is a usage mistake, not a lost claim.
    assert proc.returncode == 64, proc.stderr
    assert "run the claim stage first" in proc.stderr
    with reader_for(zookeeper, chroot, cluster="test") as r:
        assert r.check_consistent() == {}


def test_release_gives_the_id_up_but_not_while_kafka_is_registered(tool, zookeeper, chroot):
    assert tool("run", "--stage", "claim").returncode == 0
    with reader_for(zookeeper, chroot, cluster="test") as r:
        bid = r.instances()[ME][0]
        r.client.create(f"/brokers/ids/{bid}", b"{}", ephemeral=True, makepath=True)
        proc = tool("release")
        assert proc.returncode == 13, proc.stderr
        assert "registered in /brokers/ids" in proc.stderr
        assert r.check_consistent() == {bid: ME}
    proc = tool("release")  # the registration ended with the kazoo session
    assert proc.returncode == 0, proc.stderr
    assert f"gave up broker id {bid}" in proc.stderr
    with reader_for(zookeeper, chroot, cluster="test") as r:
        assert r.check_consistent() == {}
    proc = tool("release")
    assert proc.returncode == 0 and "nothing to release" in proc.stderr


def test_the_zookeeper_password_never_reaches_the_output_or_the_status_file(tool, zookeeper,
                                                                           chroot):
    password = "Zk-Pa55word-9"
    proc = tool("run", "--stage", "claim", "--log-level", "debug",
                extra_env={"KAFKA_BOOTSTRAP_ZOOKEEPER_AUTH": f"kafka:{password}"})
    assert proc.returncode == 0, proc.stderr
    assert "zookeeper client:" in proc.stderr
    assert password not in proc.stdout + proc.stderr + json.dumps(proc.status)


def doubled_fixture(doubled):
    """Ids 0, 1 and 5 in us-east-1a; id 5's ENI or volume exists twice (a snapshot of broker
    5's volume restored with its tags, an ENI copied with its tags)."""
    fix = fixture()
    fix["network_interfaces"] = [e for e in fix["network_interfaces"]
                                 if e["tags"]["Name"] in ("KAFKA-0", "KAFKA-1")]
    fix["volumes"] = [v for v in fix["volumes"] if v["tags"]["Name"] in ("KAFKA-0", "KAFKA-1")]
    tags = {"Name": "KAFKA-5", "kafka-bootstrap:cluster": "test"}
    for n in range(2 if doubled == "eni" else 1):
        fix["network_interfaces"].append({"id": hexid("eni", "a", 0x50 + n),
                                          "subnet": hexid("subnet", "a", 0), "tags": tags})
    for n in range(2 if doubled == "volume" else 1):
        fix["volumes"].append({"id": hexid("vol", "a", 0x50 + n), "az": "us-east-1a",
                               "tags": tags})
    return fix


@pytest.mark.parametrize("doubled", ["eni", "volume"])
def test_an_id_tagged_twice_stops_only_its_holder_with_13_and_is_offered_to_no_newcomer(
        doubled, zookeeper, chroot, tmp_path):
    holder0, holder5 = OTHERS[0], OTHERS[1]
    twins = [hexid(doubled[:3], "a", 0x50), hexid(doubled[:3], "a", 0x51)]
    fake = FakeAWS(doubled_fixture(doubled)).start([
        {"service": "ec2"}, {"service": "imds", "instance_id": ME},
        {"service": "imds", "instance_id": holder0, "name": "imds-0"},
        {"service": "imds", "instance_id": holder5, "name": "imds-5"}])
    try:
        tool = make_tool(fake, zookeeper, chroot, tmp_path)
        with Claimers(f"{zookeeper.connect}{chroot}", "0", ["--cluster", "test"]) as c:
            c.hold({0: holder0})
        # Broker 0 reboots, a replacement boots: both get through discover, claim and eni.
        proc = tool("run", "--stage", "eni", imds="imds-0")
        assert proc.returncode == 0, proc.stderr
        assert all(t in proc.stderr for t in twins), proc.stderr  # the warning names both
        proc = tool("run", "--stage", "claim")
        assert proc.returncode == 0, proc.stderr
        assert proc.status["broker_id"] == 1
        proc = tool("run", "--stage", "eni")
        assert proc.returncode == 0, proc.stderr
        # Id 5 is free, but a newcomer is not given it.
        proc = tool("run", "--stage", "claim", imds="imds-5")
        assert proc.returncode == 10, proc.stderr
        with reader_for(zookeeper, chroot, cluster="test") as r:
            assert r.check_consistent() == {0: holder0, 1: ME}

        # The instance that held 5 before the copy appeared stops, naming both copies.
        with Claimers(f"{zookeeper.connect}{chroot}", "5", ["--cluster", "test"]) as c:
            c.hold({5: holder5})
        if doubled == "volume":
            proc = tool("run", "--stage", "eni", imds="imds-5")
            assert proc.returncode == 0, proc.stderr
        proc = tool("run", "--stage", doubled, imds="imds-5")
        assert proc.returncode == 13, proc.stderr
        stage = next(s for s in proc.status["stages"] if s["name"] == doubled)
        assert all(t in stage["error"] for t in twins), stage["error"]
        attached = [r["params"].get("NetworkInterfaceId") or r["params"].get("VolumeId")
                    for r in ec2_calls(fake, "AttachNetworkInterface") +
                    ec2_calls(fake, "AttachVolume")]
        assert not set(attached) & set(twins), attached
    finally:
        fake.stop()


@pytest.mark.parametrize("connect_timeout_ms", [1000, None])
def test_zookeeper_that_never_answers_fails_the_claim_after_the_connect_timeout(
        fake, tmp_path, connect_timeout_ms):
    """Nothing listens: the claim stage gives the session zookeeper_connect_timeout_ms, not
    its whole 20 s deadline. Without the key, the 15 s default is longer than a 3 s claim
    deadline: that deadline ends it. (`--stage claim` is not retried.)"""
    class Nowhere:
        connect = f"127.0.0.1:{free_port()}"
    tool = make_tool(fake, Nowhere, "", tmp_path)
    if connect_timeout_ms:
        args = ["--set", f"zookeeper_connect_timeout_ms={connect_timeout_ms}"]
    else:
        args = ["--set", "claim_deadline_s=3"]
    started = time.monotonic()
    proc = tool("run", "--stage", "claim", *args)
    elapsed = time.monotonic() - started
    assert proc.returncode == 69, proc.stderr
    error = claim_stage(proc)["error"]
    assert Nowhere.connect in error and "unreachable" in error, error
    if connect_timeout_ms:
        assert "zookeeper_connect_timeout_ms" in error and elapsed < 2.5, (elapsed, error)
    else:
        assert "until the deadline" in error and elapsed >= 2.9, (elapsed, error)
