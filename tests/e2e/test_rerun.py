"""Reruns (issue 12, "The whole run"): after a success a rerun looks at the live system and
changes nothing; after something was broken by hand it repairs exactly that, and `status`
names the broken stage first; after a failure at a stage it completes the rest.

"Changed nothing" is read independently: every ZooKeeper node with its zxids, EC2's
attachments and the calls the run made, `ip -j` in the namespace plus every rtnetlink
notification while the run ran, findmnt (with mount IDs), server.properties' bytes, inode and
mtime."""
import subprocess

import pytest

from observe import (NetlinkWatch, actions, claim_nodes, e2e_world, java_properties, mount_at,
                     mutations, network, snapshot, stage_outcomes, status_json,
                     without_status)

ALL_OK = {"identity": "ok", "discover": "ok", "claim": "ok", "eni": "ok", "volume": "ok",
          "network": "ok", "properties": "ok", "signal": "skipped"}


@pytest.fixture(scope="module")
def world():
    with e2e_world(3, 3, 3) as w:
        yield w


def live_states(inst):
    """`status --json`'s live check: {stage: state} of the stages not in place."""
    return {s["name"]: s["state"] for s in status_json(inst)["stages"]
            if s["state"] != "in place"}


def rerun(world, inst):
    """Runs `run` again under a netlink watch; returns (result, netlink events)."""
    with NetlinkWatch(inst) as watch:
        r = inst.run()
    assert r.exit_code == 0, r
    assert mutations(r.records) == [], "a rerun attached or detached something"
    return r, watch.events


def test_rerun_after_success_changes_nothing_and_checks_the_live_system(world, inst):
    before = snapshot(world, inst)
    r, events = rerun(world, inst)
    after = snapshot(world, inst)
    assert without_status(after) == without_status(before)
    assert events == []
    assert stage_outcomes(r) == ALL_OK
    assert all(s["changes"] == [] for s in r.status["stages"])
    # It asked IMDS and EC2 (not its own status file) what is true.
    assert {"DescribeNetworkInterfaces", "DescribeVolumes"} <= set(actions(r.records, "ec2"))
    assert any(a.startswith("GET /latest/meta-data/") for a in actions(r.records, "imds"))
    assert after["status.json"] != before["status.json"]
    assert r.status["exit_code"] == 0 and r.status["broker_id"] == 0


def break_and_repair(world, inst, breakage, stage):
    """Breaks something, checks that `status` and the rerun name `stage` alone, and
    returns (snapshot before breaking, after the rerun, rerun result, netlink events)."""
    good = snapshot(world, inst)
    breakage()
    assert live_states(inst) == {stage: "needs change"}
    r, events = rerun(world, inst)
    assert stage_outcomes(r) == dict(ALL_OK, **{stage: "changed"})
    after = snapshot(world, inst)
    assert after["zookeeper"] == good["zookeeper"], "a repair wrote to ZooKeeper"
    assert after["ec2"] == good["ec2"]
    assert live_states(inst) == {}
    return good, after, r, events


def test_rerun_mounts_an_unmounted_volume_again_and_nothing_else(world, inst):
    good, after, r, events = break_and_repair(
        world, inst, lambda: subprocess.run(["umount", inst.mount_point], check=True), "volume")
    assert [c.split(" (")[0] for c in r.stage("volume")["changes"]] == [
        f"mounted {mount_at(inst, inst.mount_point)['source']}"]
    assert [dict(m, id=None) for m in after["mounts"]] == \
        [dict(m, id=None) for m in good["mounts"]]
    assert events == []
    assert {k: after[k] for k in ("network", "server.properties")} == \
        {k: good[k] for k in ("network", "server.properties")}


def test_rerun_adds_a_deleted_rule_and_nothing_else(world, inst):
    good, after, r, events = break_and_repair(
        world, inst, lambda: inst.sh("ip", "rule", "del", "priority", "10001"), "network")
    assert without_status(after) == without_status(good)
    assert len(r.stage("network")["changes"]) == 1
    assert r.stage("network")["changes"][0].startswith("RTM_NEWRULE")
    assert len(events) == 1 and "lookup 10001" in events[0]


def test_rerun_adds_a_deleted_route_and_nothing_else(world, inst):
    good, after, r, events = break_and_repair(
        world, inst, lambda: inst.sh("ip", "route", "del", "default", "table", "10001"),
        "network")
    assert without_status(after) == without_status(good)
    assert len(r.stage("network")["changes"]) == 1
    assert r.stage("network")["changes"][0].startswith("RTM_NEWROUTE replace default via")
    assert len(events) == 1 and events[0].startswith(f"default via {inst.router}")


def test_rerun_puts_back_a_removed_address_and_the_routes_the_kernel_dropped_with_it(
        world, inst):
    eni, _ = world.broker_resources(0)
    dev = inst.enis[eni["id"]]["ifname"]
    removed = {}

    def remove_address():
        before = network(inst)
        inst.sh("ip", "addr", "del", f"{eni['private_ip']}/{inst.prefixlen}", "dev", dev)
        gone = network(inst)
        removed["routes"] = [r for r in before["routes"] if r not in gone["routes"]
                             and r.get("table") == "10001"]
    good, after, r, events = break_and_repair(world, inst, remove_address, "network")
    assert without_status(after) == without_status(good)
    changes = r.stage("network")["changes"]
    assert changes[0].startswith(f"RTM_NEWADDR replace {eni['private_ip']}/{inst.prefixlen}")
    assert len(changes) == 1 + len(removed["routes"]), (changes, removed)
    assert all(c.startswith("RTM_NEWROUTE") for c in changes[1:])


def test_rerun_repairs_an_edited_managed_key_and_keeps_the_operator_s_key(world, inst):
    path = inst.properties_path

    def edit():
        with open(path) as f:
            text = f.read()
        assert f"broker.rack={inst.az_id}\n" in text
        text = text.replace(f"broker.rack={inst.az_id}\n", "broker.rack=somewhere-else\n")
        with open(path, "w") as f:
            f.write(text + "# added by an operator\nmy.operator.key=kept\n")
    good, after, r, events = break_and_repair(world, inst, edit, "properties")
    assert {k: after[k] for k in ("network", "mounts")} == \
        {k: good[k] for k in ("network", "mounts")}
    assert events == []
    assert [c.split(": ", 1)[1] for c in r.stage("properties")["changes"]] == [
        f"set broker.rack={inst.az_id} (was somewhere-else)"]
    view = java_properties(path)
    assert view["broker.rack"] == inst.az_id
    assert view["my.operator.key"] == "kept"
    with open(path) as f:
        assert "# added by an operator\n" in f.read()


def test_rerun_after_an_iam_denial_completes_the_rest(world):
    inst = world.instances[1]
    world.fake.set_faults(fail_action=[{
        "action": "AttachVolume", "code": "UnauthorizedOperation", "status": 403, "times": 1,
        "service": "ec2", "message": "You are not authorized to perform this operation."}])
    try:
        first = inst.run()
    finally:
        world.fake.set_faults(fail_action=[])
    assert first.exit_code == 77, first
    assert {k: v for k, v in stage_outcomes(first).items() if k != "signal"} == {
        "identity": "ok", "discover": "ok", "claim": "changed", "eni": "changed",
        "volume": "failed"}
    claim, _ = claim_nodes(world, inst)
    second = inst.run()
    assert second.exit_code == 0, second
    assert stage_outcomes(second) == dict(ALL_OK, volume="changed", network="changed",
                                          properties="changed")
    assert claim_nodes(world, inst)[0] == claim
    assert [a for a in actions(second.records, "ec2") if a.startswith("Attach")] == [
        "AttachVolume"]
    assert mount_at(inst, inst.mount_point) is not None
    assert java_properties(inst.properties_path)["broker.id"] == str(claim["broker_id"])


def test_rerun_after_a_kill_at_the_volume_attach_completes_the_rest(world):
    """Killed as EC2 accepts AttachVolume, before the agent hears the answer: the rerun finds
    the volume attached (or attaching) to this instance and goes on from there."""
    inst = world.instances[2]
    first = inst.run(kill_when=lambda rec: rec.get("action") == "AttachVolume")
    assert first.killed and first.killed.startswith("at ec2 AttachVolume"), first
    second = inst.run()
    assert second.exit_code == 0, second
    assert stage_outcomes(second) == dict(ALL_OK, volume="changed", network="changed",
                                          properties="changed")
    assert mutations(second.records) == [], "the volume was attached a second time"
    assert mount_at(inst, inst.mount_point) is not None
    assert len(inst.mkfs_calls()) == 1
