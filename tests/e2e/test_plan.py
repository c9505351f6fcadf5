"""`plan` reads everything and changes nothing (issue 12, "The whole run"): ZooKeeper (every
node and its zxids), EC2's attachments, the namespace's links, addresses, routes and rules
(and not one rtnetlink notification), the mounts, server.properties and status.json are the
same before and after; its output says what `run` would claim, attach, mount, route and
write; its attach calls go out with DryRun=true, which proves the role may make them."""
import pytest

from observe import NetlinkWatch, e2e_world, mutations, snapshot


@pytest.fixture(scope="module")
def world():
    with e2e_world(1, 1, 1) as w:
        yield w


def would(result):
    """What plan says it would do, one entry per change, by stage (status is not written)."""
    out = {}
    for line in result.stderr.splitlines():
        if "would: " in line:
            stage = line.split("info  ", 1)[1].split(":", 1)[0]
            out.setdefault(stage, []).append(line.split("would: ", 1)[1])
    return out


def plan(world, inst):
    before = snapshot(world, inst)
    mkfs = inst.mkfs_calls()
    with NetlinkWatch(inst) as watch:
        r = inst.run(["plan"])
    assert r.exit_code == 0, r
    assert snapshot(world, inst) == before
    assert watch.events == []
    assert mutations(r.records) == []
    assert inst.mkfs_calls() == mkfs
    return r, before


def test_plan_on_a_new_instance_changes_nothing_and_says_what_run_would_do(world):
    inst = world.instances[0]
    eni, vol = world.broker_resources(0)
    r, before = plan(world, inst)
    assert before["status.json"] is None and before["zookeeper"] == {}
    dry = [(x["action"], x["http_status"], x["error_code"]) for x in r.records if x["dry_run"]]
    assert dry == [("AttachNetworkInterface", 412, "DryRunOperation"),
                   ("AttachVolume", 412, "DryRunOperation")]
    said = would(r)
    assert said["claim"] == ["claim broker id 0 (free)"]
    assert said["eni"][0].startswith(f"attach {eni['id']} to {inst.id} at device index 1")
    assert said["volume"][0] == f"attach {vol['id']} to {inst.id} as /dev/sdg"
    assert any(f"mount {vol['id']}" in c and f"at {inst.mount_point}" in c
               for c in said["volume"]), said["volume"]
    assert any(eni["private_ip"] in c and "table 10001" in c and "rule" in c
               for c in said["network"]), said["network"]
    assert [c.split(": ", 1)[1] for c in said["properties"]] == [
        "set broker.id=0 (was unset)", f"set broker.rack={inst.az_id} (was unset)",
        f"set listeners=PLAINTEXT://{eni['private_ip']}:9092 (was unset)",
        f"set advertised.listeners=PLAINTEXT://{eni['private_ip']}:9092 (was unset)",
        f"set log.dirs={inst.mount_point}/logs (was unset)"]


def test_plan_after_run_changes_nothing_and_would_change_nothing(world):
    inst = world.instances[0]
    r = inst.run()
    assert r.exit_code == 0, r
    p, _ = plan(world, inst)
    assert would(p) == {}
    assert [x for x in p.records if x["dry_run"]] == []


def test_plan_names_a_broken_rule_and_leaves_it_broken(world):
    inst = world.instances[0]
    inst.sh("ip", "rule", "del", "priority", "10001")
    p, before = plan(world, inst)
    assert [c.split(":", 1)[0] for c in would(p)["network"]] == [
        "RTM_NEWRULE create exclusive priority 10001"]
    assert not any(r.get("priority") == 10001 for r in before["network"]["rules"])
    assert inst.run().exit_code == 0
