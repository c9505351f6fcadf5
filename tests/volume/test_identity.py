"""A volume whose meta.properties names another broker is refused with exit 11, and nothing on
it changes: Kafka must not start on another broker's data."""
import os

import pytest

from harness.loopdev import make_ext4, run

VOL = "vol-0c0ffee0c0ffee000"


def volume_with_meta(world, text, owner=1234):
    """An ext4 volume whose logs/meta.properties holds text, its files owned by owner."""
    loop = world.loop()
    make_ext4(loop.path)
    with world.opened(loop) as prep:
        logs = os.path.join(prep, "logs")
        os.makedirs(os.path.join(logs, "orders-0"))
        with open(os.path.join(logs, "meta.properties"), "w") as f:
            f.write(text)
        for path in (logs, os.path.join(logs, "orders-0"), os.path.join(logs, "meta.properties")):
            os.lchown(path, owner, owner)
    world.link_by_id(VOL, loop)
    return loop


def snapshot_volume(world, loop):
    """Owners and contents of every file on the volume, read by the test's own mount."""
    with world.opened(loop, "-o", "ro") as prep:
        seen = {}
        for dirpath, dirnames, filenames in os.walk(prep):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                content = open(path, "rb").read() if os.path.isfile(path) else None
                seen[os.path.relpath(path, prep)] = (st.st_uid, st.st_gid, content)
        return seen


KAFKA_ZK_META = "#\n#Tue Nov 24 09:12:44 UTC 2026\ncluster.id=Qx1\nversion=0\nbroker.id=%s\n"
KAFKA_KRAFT_META = "#\nnode.id=%s\nversion=1\ncluster.id=Qx1\ndirectory.id=abc\n"


@pytest.mark.parametrize("text", [KAFKA_ZK_META % 5, KAFKA_KRAFT_META % 5],
                         ids=["broker.id", "node.id"])
def test_meta_properties_of_another_broker_is_refused_and_nothing_changes(world, text):
    loop = volume_with_meta(world, text)
    before = snapshot_volume(world, loop)
    proc = world.run(3, VOL)
    assert proc.returncode == 11, proc.stderr
    assert "belongs to broker 5, not 3" in proc.stderr
    assert world.mounted_device() is None, "another broker's volume left mounted"
    assert snapshot_volume(world, loop) == before
    assert world.mkfs_calls() == []


def test_meta_properties_of_this_broker_goes_on(world):
    loop = volume_with_meta(world, "broker.id   :   3\n", owner=4242)
    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    assert proc.device == loop.path


def test_unreadable_broker_id_is_refused(world):
    volume_with_meta(world, "broker.id=three\n")
    proc = world.run(3, VOL)
    assert proc.returncode == 11, proc.stderr
    assert "cannot tell which broker" in proc.stderr


def test_volume_an_operator_mounted_stays_mounted_when_refused(world):
    loop = volume_with_meta(world, KAFKA_ZK_META % 7)
    os.makedirs(world.mount_point)
    run("mount", loop.path, world.mount_point)
    proc = world.run(3, VOL)
    assert proc.returncode == 11, proc.stderr
    assert world.mounted_device() is not None


def test_plan_on_a_mounted_foreign_volume_says_so(world):
    loop = volume_with_meta(world, KAFKA_ZK_META % 7)
    os.makedirs(world.mount_point)
    run("mount", loop.path, world.mount_point)
    proc = world.run(3, VOL, "--plan")
    assert proc.returncode == 11, proc.stderr
