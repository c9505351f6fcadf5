"""A failing stage is told everywhere it must be (issue 12, "Signals that tell the truth"):
FAILURE to the instance's stack resource, SetInstanceHealth Unhealthy to its Auto Scaling
group, the reason on the console (what `aws ec2 get-console-output` shows), the exit code of
DECISIONS.md and the failure in status.json.

One AZ per case, each with one broker whose ENI or volume the case spoils before a new
instance of that AZ's group runs `kafka-bootstrap run`."""
import os
import subprocess
import tempfile

import pytest

from harness import layout
from harness.loopdev import blkid_probe, make_gpt
from observe import e2e_world, health_calls_of, mount_at, signals_of

NO_ATTACH_VOLUME = "kafka-broker-without-attach-volume"
AZS = [az for az, _ in layout.US_EAST_1_AZS[:5]]


@pytest.fixture(scope="module")
def world():
    role = [a for a in layout.BROKER_ROLE_ACTIONS if a != "ec2:AttachVolume"]
    with e2e_world(5, 5, 0, {NO_ATTACH_VOLUME: role}) as w:
        yield w


def no_id(world):
    """Broker 0, the only id of AZ a, is held by a live instance that booted first."""
    first = world.launch(az=AZS[0])
    r = first.run()
    assert r.exit_code == 0, r
    return world.launch(az=AZS[0])


def eni_held_by_a_running_instance(world):
    """Broker 1's id is free, but its ENI is attached to another running instance."""
    other = world.launch(az=AZS[1], group=False)
    eni, _ = world.broker_resources(1)
    world.aws("ec2").attach_network_interface(NetworkInterfaceId=eni["id"],
                                              InstanceId=other.id, DeviceIndex=1)
    world.wait_for(lambda: eni["id"] in other.enis, 10, "the ENI plugged into the other")
    return world.launch(az=AZS[1])


def volume_with_a_partition_table(world):
    _, vol = world.broker_resources(2)
    make_gpt(world.volume_image(vol))
    return world.launch(az=AZS[2])


def volume_of_another_broker(world):
    """Broker 3's volume holds an ext4 filesystem whose Kafka meta.properties says 5."""
    _, vol = world.broker_resources(3)
    image = world.volume_image(vol)
    with tempfile.TemporaryDirectory(prefix=f"kb-e2e-{os.getpid()}-") as src:
        os.makedirs(os.path.join(src, "logs", "orders-0"))
        with open(os.path.join(src, "logs", "meta.properties"), "w") as f:
            f.write("#\ncluster.id=Qx1\nversion=0\nbroker.id=5\n")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "kafka-5", "-d", src, image],
                       check=True, capture_output=True)
    return world.launch(az=AZS[3])


def iam_denies_attach_volume(world):
    return world.launch(az=AZS[4], role=NO_ATTACH_VOLUME)


CASES = {
    # name: (setup, failed stage, exit code, words the console line must carry)
    "no_id": (no_id, "claim", 10, ["no broker id available", "owner running"]),
    "eni_held": (eni_held_by_a_running_instance, "eni", 13, ["running"]),
    "partition_table": (volume_with_a_partition_table, "volume", 12, ["partition table"]),
    "foreign_meta_properties": (volume_of_another_broker, "volume", 11,
                                ["belongs to broker 5"]),
    "iam_denied": (iam_denies_attach_volume, "volume", 77, ["UnauthorizedOperation",
                                                            "ec2:AttachVolume"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_failing_stage_is_told_to_the_stack_the_group_the_console_and_the_status(
        world, case):
    setup, stage, code, words = CASES[case]
    inst = setup(world)
    r = inst.run()
    assert r.exit_code == code, r

    failed = [s for s in r.status["stages"] if s["outcome"] == "failed"]
    assert [s["name"] for s in failed] == [stage]
    assert r.status["exit_code"] == code
    assert r.status["error"].startswith(f"stage {stage}: ")
    assert all(w in failed[0]["error"] for w in words), failed[0]["error"]
    assert r.stage("signal")["outcome"] == "changed"

    assert signals_of(world, inst) == ["FAILURE"]
    assert health_calls_of(world, inst) == [("SetInstanceHealth", "Unhealthy")]
    sent = [s for s in world.signals() if s["unique_id"] == inst.id]
    assert sent[0]["error_code"] is None, "the stack refused the FAILURE signal"

    console = inst.console()
    assert f"stage {stage} failed (exit {code} " in console, console
    assert all(w in console for w in words), console


def test_nothing_was_formatted_or_left_mounted_by_the_refusals(world):
    refused = [i for i in world.instances if i.az in (AZS[2], AZS[3])]
    assert len(refused) == 2
    for inst in refused:
        assert inst.mkfs_calls() == []
        assert mount_at(inst, inst.mount_point) is None
    _, vol = world.broker_resources(2)
    assert blkid_probe(world.volume_image(vol)).get("PTTYPE") == "gpt"
