"""The whole run on one simulated instance (issue 12, "The whole run"): `kafka-bootstrap run`
in a namespace with a loop device for its volume, the fake AWS and a real ZooKeeper; then a
stand-in for Kafka registers the broker and `signal --wait-registered` sends SUCCESS. Every
effect is read back with another tool than kafka-bootstrap: iproute2 in the namespace,
findmnt, java.util.Properties, kazoo, the fake's records."""
import time

import pytest

from harness.kafka import StandInKafka, endpoints_of
from observe import (STAGES, actions, claim_nodes, e2e_world, health_calls_of, ip_json,
                     java_properties, link_of_mac, mount_at, network, signals_of,
                     stage_outcomes)


@pytest.fixture(scope="module")
def world():
    # Two AZs, one broker and one instance each.
    with e2e_world(2, 2, 2) as w:
        yield w


@pytest.fixture(scope="module")
def booted(world):
    """Instance 0 before and after `run`: (instance, result, network before)."""
    inst = world.instances[0]
    before = network(inst)
    result = inst.run()
    assert result.exit_code == 0, result
    return inst, result, before


def broker_of(world, broker_id):
    eni, vol = world.broker_resources(broker_id)
    return eni, vol


def test_run_goes_through_every_stage_and_sends_no_success_itself(world, booted):
    inst, r, _ = booted
    assert [s["name"] for s in r.status["stages"]] == STAGES
    assert stage_outcomes(r) == {
        "identity": "ok", "discover": "ok", "claim": "changed", "eni": "changed",
        "volume": "changed", "network": "changed", "properties": "changed",
        "signal": "skipped"}
    assert r.status["exit_code"] == 0 and r.status["broker_id"] == 0
    assert "signal --wait-registered" in r.stage("signal")["detail"]
    assert signals_of(world, inst) == []
    assert health_calls_of(world, inst) == []
    assert inst.console() == ""


def test_the_claim_is_in_zookeeper_with_its_owner_index(world, booted):
    inst, _, _ = booted
    eni, vol = broker_of(world, 0)
    claim, index = claim_nodes(world, inst)
    assert index == "0"
    claimed_at = claim.pop("claimed_at")
    assert isinstance(claimed_at, str) and claimed_at
    assert claim == {"version": 1, "broker_id": 0, "instance_id": inst.id, "az": inst.az,
                     "az_id": inst.az_id, "eni_id": eni["id"], "volume_id": vol["id"]}


def test_ec2_got_one_attach_of_the_eni_and_one_of_the_volume(world, booted):
    inst, r, _ = booted
    eni, vol = broker_of(world, 0)
    attaches = [x for x in r.records if x["action"] in ("AttachNetworkInterface", "AttachVolume")]
    assert [(a["action"], a["http_status"], a["dry_run"]) for a in attaches] == [
        ("AttachNetworkInterface", 200, False), ("AttachVolume", 200, False)]
    assert attaches[0]["params"]["NetworkInterfaceId"] == eni["id"]
    assert attaches[0]["params"]["InstanceId"] == inst.id
    assert attaches[0]["params"]["DeviceIndex"] == "1"
    assert attaches[1]["params"]["VolumeId"] == vol["id"]
    assert attaches[1]["params"]["Device"] == "/dev/sdg"
    assert eni["attachment"]["instance_id"] == inst.id
    assert vol["attachment"]["instance_id"] == inst.id
    assert {"DescribeNetworkInterfaces", "DescribeVolumes"} <= set(actions(r.records, "ec2"))


def test_the_eni_is_configured_with_policy_routing_and_eth0_is_untouched(world, booted):
    inst, _, before = booted
    eni, _ = broker_of(world, 0)
    link = link_of_mac(inst, eni["mac"])
    assert link is not None and "UP" in link["flags"]
    dev = link["ifname"]
    addrs = ip_json(inst, "-4", "addr", "show", "dev", dev)[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs] == [(eni["private_ip"], inst.prefixlen)]
    table = ip_json(inst, "-4", "route", "show", "table", "10001")
    assert {"dst": "default", "gateway": inst.router, "dev": dev} in [
        {k: r.get(k) for k in ("dst", "gateway", "dev")} for r in table]
    assert {"dst": inst.cidr, "dev": dev, "prefsrc": eni["private_ip"]} in [
        {k: r.get(k) for k in ("dst", "dev", "prefsrc")} for r in table]
    rules = [r for r in ip_json(inst, "-4", "rule", "show") if r.get("src") == eni["private_ip"]]
    assert [(r["table"], r["priority"]) for r in rules] == [("10001", 10001)]
    after = network(inst)
    eth0 = [a for a in after["addresses"] if a["ifname"] == "eth0"]
    assert eth0 == [a for a in before["addresses"] if a["ifname"] == "eth0"]
    main = [r for r in after["routes"] if r.get("table") is None or r.get("table") == "main"]
    assert main == [r for r in before["routes"] if r.get("table") is None
                    or r.get("table") == "main"]


def test_the_volume_is_mounted_from_its_device_with_noatime(world, booted):
    inst, _, _ = booted
    _, vol = broker_of(world, 0)
    m = mount_at(inst, inst.mount_point)
    assert m is not None, "nothing mounted at the mount point"
    assert m["source"] == inst.volumes[vol["id"]]["loop"]
    assert m["fstype"] == "xfs"
    assert "noatime" in m["options"].split(",")


def test_java_reads_every_managed_key_and_the_operator_keys(world, booted):
    inst, _, _ = booted
    eni, _ = broker_of(world, 0)
    view = java_properties(inst.properties_path)
    assert {k: view.get(k) for k in ("broker.id", "broker.rack", "listeners",
                                     "advertised.listeners", "log.dirs", "zookeeper.connect")} \
        == {"broker.id": "0", "broker.rack": inst.az_id,
            "listeners": f"PLAINTEXT://{eni['private_ip']}:9092",
            "advertised.listeners": f"PLAINTEXT://{eni['private_ip']}:9092",
            "log.dirs": f"{inst.mount_point}/logs",
            "zookeeper.connect": world.zookeeper_connect}
    # The AMI's own keys and comment survive.
    assert view["num.network.threads"] == "3" and view["log.retention.hours"] == "168"
    with open(inst.properties_path) as f:
        assert f.readline().startswith("# server.properties as baked into the AMI")


def test_success_is_sent_only_once_kafka_registered_the_advertised_endpoint(world, booted):
    inst, _, _ = booted
    listeners = java_properties(inst.properties_path)["advertised.listeners"]
    with StandInKafka(world) as kafka:
        waiter = inst.start(["signal", "--wait-registered"])
        time.sleep(1.5)
        assert waiter.running(), "SUCCESS must wait for Kafka's registration"
        assert signals_of(world, inst) == []
        kafka.register(0, listeners, rack=inst.az_id)
        r = waiter.wait(30)
        assert r.exit_code == 0, r
        sent = [s for s in world.signals() if s["unique_id"] == inst.id]
        assert [(s["status"], s["error_code"], s["logical_id"]) for s in sent] == [
            ("SUCCESS", None, "BrokersA")]
        assert sent[0]["time"] >= kafka.registered_at[0]
        assert health_calls_of(world, inst) == []
        reg = inst.run(["status", "--json"])
        assert reg.exit_code == 0, reg
    assert endpoints_of(listeners) == [f"PLAINTEXT://{broker_of(world, 0)[0]['private_ip']}:9092"]


def test_with_success_signal_run_the_run_itself_sends_success(world):
    inst = world.instances[1]
    inst.configure(success_signal="run")
    r = inst.run()
    assert r.exit_code == 0, r
    assert stage_outcomes(r)["signal"] == "changed"
    assert signals_of(world, inst) == ["SUCCESS"]


def test_no_secret_reaches_the_log_the_status_file_or_the_console_at_debug(world, booted):
    """A rerun at debug signs every Describe and the signal's calls with the role's
    credentials and reads IMDS with its session tokens: none of them, nor the ZooKeeper
    password when one is set, is in anything the run printed or wrote."""
    inst, _, _ = booted
    r = inst.run(["run", "--log-level", "debug"])
    assert r.exit_code == 0, r
    fw = world.fake.world
    with fw.lock:
        secrets = [t for t, v in fw.tokens.items() if v["instance_id"] == inst.id]
        for c in fw.creds.values():
            if c["instance_id"] == inst.id:
                secrets += [c["secret_access_key"], c["session_token"]]
    assert len(secrets) >= 3, "the run used no token or credentials: nothing was checked"
    with open(inst.status_path) as f:
        written = f.read()
    outputs = {"stderr": r.stderr, "stdout": r.stdout, "status.json": written,
               "console": inst.console()}
    assert "debug" in r.stderr and "Authorization" not in r.stderr
    for name, text in outputs.items():
        for secret in secrets:
            for part in (secret, secret[:16], secret[-16:]):
                assert part not in text, f"a secret ({part[:4]}...) is in {name}"
