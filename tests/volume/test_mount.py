"""Mounting: never over something else, never a second time elsewhere; options as configured;
log_dir given to the Kafka user, ownership repaired when the volume comes from an AMI whose
Kafka user had another uid, without following symlinks or entering other mounts."""
import os
import pwd

from conftest import dev_numbers
from harness.loopdev import make_ext4, run

VOL = "vol-01234567890abcdef"


def ext4_volume(world):
    loop = world.loop()
    make_ext4(loop.path)
    world.link_by_id(VOL, loop)
    return loop


def test_something_else_mounted_at_the_mount_point_is_refused(world):
    ext4_volume(world)
    os.makedirs(world.mount_point)
    run("mount", "-t", "tmpfs", "kb-test-tmpfs", world.mount_point)
    proc = world.run(3, VOL)
    assert proc.returncode == 70
    assert "refusing to mount" in proc.stderr and "kb-test-tmpfs" in proc.stderr
    assert run("findmnt", "-n", "-o", "SOURCE", world.mount_point).strip() == "kb-test-tmpfs"
    assert world.mkfs_calls() == []


def test_a_subdirectory_of_the_same_volume_bound_at_the_mount_point_is_refused(world):
    loop = ext4_volume(world)
    whole = os.path.join(world.root, "whole")
    os.makedirs(whole)
    run("mount", loop.path, whole)
    os.makedirs(os.path.join(whole, "sub"))
    os.makedirs(world.mount_point)
    run("mount", "--bind", os.path.join(whole, "sub"), world.mount_point)
    proc = world.run(3, VOL)
    assert proc.returncode == 70
    assert "directory /sub" in proc.stderr


def test_volume_mounted_elsewhere_is_not_mounted_a_second_time(world):
    loop = ext4_volume(world)
    elsewhere = os.path.join(world.root, "elsewhere")
    os.makedirs(elsewhere)
    run("mount", loop.path, elsewhere)
    proc = world.run(3, VOL)
    assert proc.returncode == 70
    assert "already mounted at " + elsewhere in proc.stderr
    assert world.mounted_device() is None


def test_mount_options_become_flags_and_data(world):
    loop = ext4_volume(world)
    proc = world.run(3, VOL, config={"MOUNT_OPTIONS": "noatime,nodev,nosuid,nofail,"
                                                     "commit=30"})
    assert proc.returncode == 0, proc.stderr
    options = run("findmnt", "-n", "-o", "OPTIONS", world.mount_point).strip().split(",")
    for word in ("noatime", "nodev", "nosuid", "commit=30"):
        assert word in options, options
    assert world.mounted_device() == dev_numbers(loop.path)


def test_operation_in_mount_options_is_a_config_error(world):
    ext4_volume(world)
    proc = world.run(3, VOL, config={"MOUNT_OPTIONS": "noatime,bind"})
    assert proc.returncode == 78
    assert world.mounted_device() is None


def populate_foreign_owned(world, loop, outside):
    """Kafka data owned by uid 1234 (the old AMI's kafka), a symlink pointing out of the
    volume, and another filesystem mounted inside log_dir."""
    with world.opened(loop) as prep:
        logs = os.path.join(prep, "logs")
        os.makedirs(os.path.join(logs, "orders-0"))
        for name in ("orders-0/00000000.log", "orders-0/00000000.index", "meta.properties"):
            with open(os.path.join(logs, name), "w") as f:
                f.write("broker.id=3\n" if name == "meta.properties" else "data")
        os.symlink(outside, os.path.join(logs, "escape"))
        os.makedirs(os.path.join(logs, "nested"))
        for dirpath, dirnames, filenames in os.walk(prep):
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), 1234, 1234)


def test_files_of_another_uid_are_given_to_the_kafka_user(world):
    loop = ext4_volume(world)
    outside = os.path.join(world.root, "outside-file")
    with open(outside, "w") as f:
        f.write("not Kafka's")
    os.chown(outside, 1234, 1234)
    populate_foreign_owned(world, loop, outside)

    proc = world.run(3, VOL, "--plan")
    assert proc.returncode == 0, proc.stderr
    # plan mounts nothing, so it cannot see the owners yet
    assert world.mounted_device() is None

    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    logs = world.log_dir
    for dirpath, dirnames, filenames in os.walk(logs):
        for name in dirnames + filenames + ["."]:
            st = os.lstat(os.path.join(dirpath, name))
            assert (st.st_uid, st.st_gid) == (4242, 4242), os.path.join(dirpath, name)
    assert os.stat(outside).st_uid == 1234, "followed a symlink out of the volume"
    assert [c for c in proc.changes if c.startswith("chowned 7 files")], proc.changes

    rerun = world.run(3, VOL)
    assert rerun.returncode == 0 and rerun.changes == []


def test_ownership_repair_does_not_enter_another_filesystem_mounted_inside(world):
    loop = ext4_volume(world)
    populate_foreign_owned(world, loop, "/nonexistent")
    assert world.run(3, VOL, config={"KAFKA_USER": "1234"}).returncode == 0
    nested = os.path.join(world.log_dir, "nested")
    run("mount", "-t", "tmpfs", "kb-test-nested", nested)
    with open(os.path.join(nested, "file"), "w") as f:
        f.write("x")
    os.chown(os.path.join(nested, "file"), 1234, 1234)
    proc = world.run(3, VOL)
    assert proc.returncode == 0, proc.stderr
    assert os.stat(os.path.join(nested, "file")).st_uid == 1234
    assert os.stat(world.log_dir).st_uid == 4242


def test_plan_on_a_mounted_volume_with_foreign_owners_says_it_would_chown(world):
    loop = ext4_volume(world)
    populate_foreign_owned(world, loop, "/nonexistent")
    assert world.run(3, VOL, config={"KAFKA_USER": "1234"}).returncode == 0
    proc = world.run(3, VOL, "--plan")
    assert proc.returncode == 0, proc.stderr
    assert any(c.startswith("would: give") for c in proc.changes), proc.changes
    assert os.stat(world.log_dir).st_uid == 1234


def test_kafka_user_by_name(world):
    ext4_volume(world)
    proc = world.run(3, VOL, config={"KAFKA_USER": "nobody"})
    assert proc.returncode == 0, proc.stderr
    st = os.stat(world.log_dir)
    nobody = pwd.getpwnam("nobody")
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)


def test_unknown_kafka_user_is_a_config_error(world):
    ext4_volume(world)
    proc = world.run(3, VOL, config={"KAFKA_USER": "no-such-user-kb"})
    assert proc.returncode == 78
    assert "no-such-user-kb" in proc.stderr
    assert world.mounted_device() is None, "changed something before the config error"


def test_prerequisite_requires_the_volume_mounted_and_changes_nothing(world):
    loop = ext4_volume(world)
    proc = world.run(3, VOL, "--prerequisite")
    assert proc.returncode != 0
    assert "not mounted" in proc.stderr
    assert world.mounted_device() is None
    assert world.run(3, VOL).returncode == 0
    proc = world.run(3, VOL, "--prerequisite")
    assert proc.returncode == 0, proc.stderr
    assert proc.changes == [] and proc.device == loop.path
