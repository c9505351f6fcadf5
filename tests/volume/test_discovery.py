"""Finding the volume's block device: the by-id link udev makes on Nitro, the NVMe serial in
sysfs when the link is missing, the requested name and its Xen twin, and waiting for a device
that appears late. The /dev and /sys trees are the test's own; their nodes are links to real
loop devices."""
import os
import threading
import time

from harness.loopdev import make_ext4

VOL = "vol-0fedcba9876543210"
SERIAL = "vol0fedcba9876543210"
OTHER_SERIAL = "vol0aaaaaaaaaaaaaaaa"


def ready_volume(world):
    """A loop device holding ext4: found means mounted, no mkfs needed."""
    loop = world.loop()
    make_ext4(loop.path)
    return loop


def assert_found(world, proc, loop):
    assert proc.returncode == 0, proc.stderr
    assert proc.device == loop.path
    assert world.mounted_device() is not None


def run_while(world, udev):
    """Runs the stage for VOL (20 s deadline) while udev() changes the /dev tree."""
    thread = threading.Thread(target=udev)
    thread.start()
    try:
        return world.run(3, VOL, deadline_ms=20000)
    finally:
        thread.join()


def test_found_through_the_by_id_link(world):
    loop = ready_volume(world)
    world.link_by_id(VOL, loop)
    proc = world.run(3, VOL)
    assert_found(world, proc, loop)
    assert "by link" in proc.stderr


def test_found_through_the_nvme_serial_under_sys_block(world):
    """/sys/block/nvme1n1/device/serial, padded with spaces as the kernel prints it."""
    loop = ready_volume(world)
    world.link("nvme0n1", "/dev/null")  # the root disk: another serial, never looked at
    world.write_sys("block/nvme0n1/device/serial", "vol0999999999999999        \n")
    world.link("nvme1n1", loop.path)
    world.write_sys("block/nvme1n1/device/serial", SERIAL.ljust(20) + "\n")
    proc = world.run(3, VOL, "--device", "/dev/sdq")
    assert_found(world, proc, loop)
    assert "NVMe serial" in proc.stderr


def test_found_through_the_nvme_controller_serial_under_sys_class(world):
    loop = ready_volume(world)
    world.write_sys("class/nvme/nvme2/serial", SERIAL + "    \n")
    os.makedirs(os.path.join(world.sysfs_root, "class/nvme/nvme2/nvme2n1"))
    world.link("nvme2n1", loop.path)
    proc = world.run(3, VOL, "--device", "/dev/sdq")
    assert_found(world, proc, loop)
    assert "class/nvme/nvme2/serial" in proc.stderr


def test_found_through_the_requested_name(world):
    loop = ready_volume(world)
    world.link("sdg", loop.path)
    proc = world.run(3, VOL)  # volume_device defaults to /dev/sdg
    assert_found(world, proc, loop)
    assert "device name" in proc.stderr and "/sdg" in proc.stderr


def test_found_through_the_xen_twin_of_the_requested_name(world):
    loop = ready_volume(world)
    world.link("xvdh", loop.path)
    proc = world.run(3, VOL, "--device", "/dev/sdh")
    assert_found(world, proc, loop)
    assert "/xvdh" in proc.stderr


def test_requested_name_of_another_volumes_nvme_device_is_not_taken(world):
    """On Nitro udev links /dev/sdg to whichever volume asked for sdg: if its serial names
    another volume, the name proves nothing, and the wait ends at the deadline."""
    loop = ready_volume(world)
    world.link("nvme1n1", loop.path)
    world.link("sdg", "nvme1n1")
    world.write_sys(f"block/{os.path.basename(loop.path)}/device/serial", OTHER_SERIAL + "\n")
    proc = world.run(3, VOL, deadline_ms=300)
    assert proc.returncode == 75, proc.stderr
    assert world.mounted_device() is None


def test_a_stale_by_id_link_to_another_volumes_device_is_passed_over_until_ours_appears(world):
    """udev has not yet removed the by-id link of a volume that was detached, and another
    volume now has its device: the link resolves to a device whose serial names that other
    volume. It is not used; when udev points the link at our device (1 s later), it is."""
    theirs = ready_volume(world)
    ours = ready_volume(world)
    world.write_sys(f"block/{os.path.basename(theirs.path)}/device/serial",
                    OTHER_SERIAL.ljust(20) + "\n")
    world.write_sys(f"block/{os.path.basename(ours.path)}/device/serial",
                    SERIAL.ljust(20) + "\n")
    link = world.link_by_id(VOL, theirs)

    def udev():
        time.sleep(1.0)
        os.symlink(ours.path, link + ".new")
        os.rename(link + ".new", link)

    proc = run_while(world, udev)
    assert_found(world, proc, ours)
    assert f"{theirs.path}, an NVMe device whose serial is not {SERIAL}" in proc.stderr


def test_missing_device_ends_at_the_deadline_with_exit_75(world):
    started = time.monotonic()
    proc = world.run(3, VOL, deadline_ms=400)
    elapsed = time.monotonic() - started
    assert proc.returncode == 75, proc.stderr
    assert "no block device for " + VOL in proc.stderr
    assert 0.35 < elapsed < 5


def test_device_appearing_late_is_found_on_the_dev_tree_notification(world):
    """The link appears 1.6 s in, just after a poll (the poll interval grows to 1 s): found
    within a fraction of a second, it was inotify that woke the wait, not the next poll."""
    loop = ready_volume(world)
    linked_at = []

    def udev():
        time.sleep(1.6)
        world.link_by_id(VOL, loop)
        linked_at.append(time.monotonic())

    proc = run_while(world, udev)
    latency = time.monotonic() - linked_at[0]
    assert_found(world, proc, loop)
    assert latency < 0.6, latency


def test_link_to_something_that_is_not_a_block_device_is_refused(world):
    target = os.path.join(world.root, "not-a-device")
    with open(target, "w") as f:
        f.write("x")
    world.link(f"disk/by-id/nvme-Amazon_Elastic_Block_Store_{SERIAL}", target)
    proc = world.run(3, VOL)
    assert proc.returncode == 70
    assert "not a block device" in proc.stderr
    assert world.mkfs_calls() == []


def test_malformed_volume_id_is_refused_before_any_lookup(world):
    proc = world.run(3, "vol-../../etc")
    assert proc.returncode != 0
    assert "not an EBS volume id" in proc.stderr
