"""`status` and `run --stage NAME` on a simulated instance (issue 12, "The whole run";
DECISIONS.md "Stages"): status reports the node from the live system, not from the last
run's file; each stage run alone after a success reads its prerequisites from the live
system and changes nothing; a stage whose prerequisites are not in place fails and says
which one and what to run."""
import hashlib
import os

import pytest

from harness.kafka import StandInKafka
from observe import (STAGES, NetlinkWatch, e2e_world, java_properties, link_of_mac, mount_at,
                     mutations, network, signals_of, snapshot, stage_outcomes, status_json,
                     without_status)


@pytest.fixture(scope="module")
def world():
    with e2e_world(2, 2, 2) as w:
        yield w


def test_status_reports_the_node_as_the_system_has_it(world, inst):
    eni, vol = world.broker_resources(0)
    report = status_json(inst)
    assert {s["name"]: s["state"] for s in report["stages"]} == {
        s: "in place" for s in STAGES[:-1]}
    node = report["node"]
    mount = mount_at(inst, inst.mount_point)
    with open(inst.properties_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert {k: node[k] for k in ("instance_id", "az", "az_id", "broker_id", "eni_id", "ip",
                                 "eni_attachment", "interface", "volume_id",
                                 "volume_attachment", "device", "mount_point",
                                 "properties_sha256")} == {
        "instance_id": inst.id, "az": inst.az, "az_id": inst.az_id, "broker_id": 0,
        "eni_id": eni["id"], "ip": eni["private_ip"], "eni_attachment": "attached",
        "interface": link_of_mac(inst, eni["mac"])["ifname"], "volume_id": vol["id"],
        "volume_attachment": "attached", "device": mount["source"],
        "mount_point": mount["target"], "properties_sha256": digest}
    assert f"from {eni['private_ip']} lookup 10001" in node["network"]
    assert f"default via {inst.router}" in node["network"]
    assert report["kafka_registration"] is None
    assert report["last_run"]["exit_code"] == 0


def test_status_shows_kafka_s_registration_once_the_broker_registered(world, inst):
    listeners = java_properties(inst.properties_path)["advertised.listeners"]
    with StandInKafka(world) as kafka:
        kafka.register(0, listeners, rack=inst.az_id)
        reg = status_json(inst)["kafka_registration"]
        assert reg["endpoints"] == [listeners]
        r = inst.run(["signal", "--wait-registered"])
        assert r.exit_code == 0, r
        assert signals_of(world, inst) == ["SUCCESS"]
    assert status_json(inst)["kafka_registration"] is None


def test_status_reads_the_live_system_not_the_last_run_s_file(world, inst):
    with open(inst.status_path) as f:
        saved = f.read()
    os.unlink(inst.status_path)
    try:
        report = status_json(inst)
        assert report["last_run"] is None
        assert report["node"]["broker_id"] == 0
        assert all(s["state"] == "in place" for s in report["stages"])
        inst.sh("ip", "route", "del", "default", "table", "10001")
        report = status_json(inst)
        assert {s["name"]: s["state"] for s in report["stages"]
                if s["state"] != "in place"} == {"network": "needs change"}
    finally:
        with open(inst.status_path, "w") as f:
            f.write(saved)
    assert inst.run().exit_code == 0


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_alone_after_success_reads_the_live_system_and_changes_nothing(
        world, inst, stage):
    before = snapshot(world, inst)
    with NetlinkWatch(inst) as watch:
        r = inst.run(["run", "--stage", stage])
    assert r.exit_code == 0, r
    after = snapshot(world, inst)
    assert without_status(after) == without_status(before)
    assert watch.events == []
    assert mutations(r.records) == []
    upto = STAGES[:STAGES.index(stage) + 1]
    assert stage_outcomes(r) == {s: "skipped" if s == "signal" else "ok" for s in upto}
    assert all(s["changes"] == [] for s in r.status["stages"])


def failed_prerequisite(inst, stage):
    """Runs `--stage stage`; returns (result, the failed stage's entry)."""
    r = inst.run(["run", "--stage", stage])
    assert r.exit_code == 64, r
    failed = [s for s in r.status["stages"] if s["outcome"] == "failed"]
    assert len(failed) == 1, r
    return r, failed[0]


# A new instance brought up one stage at a time: at each step `stage` is asked for while
# `missing`, the first stage not in place, was not run yet.
BRING_UP = [
    ("claim", "network", ["holds no broker id", "run the claim stage first"]),
    ("eni", "network", ["is not attached to this instance", "run the eni stage"]),
    ("volume", "network", ["is not attached to this instance", "run the volume stage"]),
    ("network", "properties", ["is not configured yet", "run the network stage"]),
]


def test_a_stage_whose_prerequisite_is_missing_fails_naming_it_and_what_to_run(world):
    inst = world.instances[1]
    node = status_json(inst)["node"]
    # Nothing held yet: status says so, not which id, ENI and volume a run would claim.
    assert [node.get(k) for k in ("broker_id", "eni_id", "volume_id")] == [None] * 3, node
    for missing, stage, words in BRING_UP:
        before = snapshot(world, inst)
        r, failed = failed_prerequisite(inst, stage)
        assert failed["name"] == missing, r
        assert all(w in failed["error"] for w in words), failed["error"]
        hint = r.status["hint"]
        assert f"--stage {stage}" in hint and f"stage {missing} is not in place" in hint, hint
        assert "kafka-bootstrap run" in hint
        assert hint in inst.console()
        after = snapshot(world, inst)
        assert without_status(after) == without_status(before), \
            f"--stage {stage} changed something"
        assert signals_of(world, inst) == [], "a repair of one stage is not a boot: no signal"
        done = inst.run(["run", "--stage", missing])
        assert done.exit_code == 0, done
        assert stage_outcomes(done)[missing] == "changed"
        if missing == "claim":
            assert status_json(inst)["node"]["broker_id"] == done.status["broker_id"] == 1


def test_signal_alone_refuses_a_server_properties_that_is_not_written_yet(world, inst):
    path = inst.properties_path
    with open(path) as f:
        good = f.read()
    with open(path, "w") as f:
        f.write(good.replace("broker.id=0\n", "broker.id=7\n"))
    before = os.stat(path)
    r, failed = failed_prerequisite(inst, "signal")
    assert failed["name"] == "properties"
    assert "broker.id is 7, not 0" in failed["error"], failed["error"]
    assert "differs from what the properties stage writes" in failed["error"]
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert inst.run().exit_code == 0
    with open(path) as f:
        assert f.read() == good


def test_a_stage_alone_reads_its_prerequisites_live_not_from_the_last_run(world, inst):
    """status.json says every stage is in place; the rule is gone all the same."""
    assert inst.run().exit_code == 0
    inst.sh("ip", "rule", "del", "priority", "10001")
    r, failed = failed_prerequisite(inst, "properties")
    assert failed["name"] == "network"
    assert "is not configured yet" in failed["error"] and "RTM_NEWRULE" in failed["error"]
    assert not any(rule.get("priority") == 10001
                   for rule in network(inst)["rules"]), "a prerequisite was repaired"
    assert inst.run().exit_code == 0
