"""A blank volume gets a filesystem and is mounted; a volume with a filesystem is mounted as
it is, its data intact; reruns change nothing; plan changes nothing."""
import hashlib
import os

from conftest import dev_numbers
from harness.loopdev import blkid_probe, make_ext4, make_xfs, run

VOL = "vol-0a1b2c3d4e5f60718"


def write_data(world, loop):
    """Writes Kafka-like data onto the volume; returns the sha256 of the segment."""
    with world.opened(loop) as mount_dir:
        os.makedirs(os.path.join(mount_dir, "logs", "topic-0"))
        data = os.urandom(3 << 20)
        with open(os.path.join(mount_dir, "logs", "topic-0", "00000000.log"), "wb") as f:
            f.write(data)
        with open(os.path.join(mount_dir, "logs", "meta.properties"), "w") as f:
            f.write("#Mon Nov 23 10:00:00 UTC 2026\nversion=0\nbroker.id=3\n")
        return hashlib.sha256(data).hexdigest()


def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_blank_volume_is_formatted_xfs_labelled_and_mounted(world):
    loop = world.xfs_loop()
    world.link_by_id(VOL, loop)
    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    assert world.mkfs_calls() == [f"mkfs.xfs -L kafka-3 -- {loop.path}"]
    probe = blkid_probe(loop.path)
    assert (probe["TYPE"], probe["LABEL"]) == ("xfs", "kafka-3")
    assert world.mounted_device() == dev_numbers(loop.path)
    options = run("findmnt", "-n", "-o", "OPTIONS", world.mount_point)
    assert "noatime" in options.split(",") or "noatime" in options
    st = os.stat(world.log_dir)
    assert (st.st_uid, st.st_gid) == (4242, 4242)
    assert proc.device == loop.path
    assert any("formatted" in c for c in proc.changes)
    assert any("mounted" in c for c in proc.changes)


def test_rerun_after_success_changes_nothing_and_never_calls_mkfs(world):
    loop = world.xfs_loop()
    world.link_by_id(VOL, loop)
    assert world.run(3, VOL).returncode == 0
    calls = world.mkfs_calls()
    with open("/proc/self/mountinfo") as f:
        mounts_before = f.read()
    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    assert proc.changes == []
    assert world.mkfs_calls() == calls
    with open("/proc/self/mountinfo") as f:
        assert f.read() == mounts_before


def test_rerun_after_unmount_mounts_again_without_mkfs(world):
    loop = world.xfs_loop()
    world.link_by_id(VOL, loop)
    assert world.run(3, VOL).returncode == 0
    run("umount", world.mount_point)
    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    assert len(world.mkfs_calls()) == 1
    assert world.mounted_device() == dev_numbers(loop.path)
    assert [c for c in proc.changes if "formatted" in c] == []


def test_ext4_configured_blank_volume_gets_ext4(world):
    loop = world.loop()
    world.link_by_id(VOL, loop)
    proc = world.run(12, VOL, config={"FILESYSTEM": "ext4"})
    assert proc.returncode == 0, proc.stderr
    assert world.mkfs_calls() == [f"mkfs.ext4 -L kafka-12 -- {loop.path}"]
    probe = blkid_probe(loop.path)
    assert (probe["TYPE"], probe["LABEL"]) == ("ext4", "kafka-12")


def test_plan_on_blank_volume_says_it_would_format_and_changes_nothing(world):
    loop = world.xfs_loop()
    world.link_by_id(VOL, loop)
    before = loop.image.sha256()
    proc = world.run(3, VOL, "--plan")
    assert proc.returncode == 0, proc.stderr
    assert any(c.startswith("would: format") and loop.path in c and "xfs" in c
               for c in proc.changes), proc.changes
    assert any(c.startswith("would: mount") for c in proc.changes)
    assert world.mkfs_calls() == []
    assert world.mounted_device() is None
    assert loop.image.sha256() == before


def test_xfs_volume_with_data_is_mounted_as_it_is_and_data_intact(world):
    loop = world.xfs_loop()
    make_xfs(loop.path, label="old-label")
    digest = write_data(world, loop)
    world.link_by_id(VOL, loop)
    proc = world.run(3, VOL, config={"FILESYSTEM": "ext4"})
    assert proc.returncode == 0, proc.stderr
    assert world.mkfs_calls() == []
    assert world.mounted_device() == dev_numbers(loop.path)
    assert file_sha(os.path.join(world.log_dir, "topic-0", "00000000.log")) == digest
    assert blkid_probe(loop.path)["LABEL"] == "old-label"


def test_ext4_volume_with_data_is_mounted_as_it_is_and_data_intact(world):
    loop = world.loop()
    make_ext4(loop.path)
    digest = write_data(world, loop)
    world.link_by_id(VOL, loop)
    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    assert world.mkfs_calls() == []
    assert run("findmnt", "-n", "-o", "FSTYPE", world.mount_point).strip() == "ext4"
    assert file_sha(os.path.join(world.log_dir, "topic-0", "00000000.log")) == digest


def test_plan_on_volume_with_filesystem_would_mount_without_formatting(world):
    loop = world.loop()
    make_ext4(loop.path)
    world.link_by_id(VOL, loop)
    proc = world.run(3, VOL, "--plan")
    assert proc.returncode == 0, proc.stderr
    assert [c for c in proc.changes if "format" in c] == []
    assert any(c.startswith("would: mount") and "ext4" in c for c in proc.changes)
    assert world.mounted_device() is None


def test_broker_id_too_long_for_an_xfs_label_is_a_config_error_before_mkfs(world):
    loop = world.xfs_loop()
    world.link_by_id(VOL, loop)
    proc = world.run(1234567, VOL)
    assert proc.returncode == 78, proc.stderr
    assert "12 characters" in proc.stderr
    assert world.mkfs_calls() == []


def test_mkfs_failure_is_reported_with_its_message(world):
    loop = world.loop(64 << 20)  # too small for mkfs.xfs
    world.link_by_id(VOL, loop)
    proc = world.run(3, VOL)
    assert proc.returncode == 70
    assert "mkfs.xfs" in proc.stderr and "failed" in proc.stderr
    assert world.mounted_device() is None


def test_mkfs_that_exits_0_but_makes_nothing_fails_the_stage_unmounted(world):
    """The device is checked after mkfs: mkfs's exit status alone is not believed."""
    loop = world.xfs_loop()
    world.link_by_id(VOL, loop)
    with open(os.path.join(world.bin, "mkfs.xfs"), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    proc = world.run(3, VOL)
    assert proc.returncode != 0, proc.stderr
    assert "does not read as xfs" in proc.stderr, proc.stderr
    assert world.mounted_device() is None
    assert blkid_probe(loop.path).get("TYPE") is None
