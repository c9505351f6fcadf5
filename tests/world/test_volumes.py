"""EBS volumes in the simulated world: an attach through EC2 gives the volume's image a loop
device, shown in that instance's own /dev and sysfs roots in the chosen style; termination
detaches it (unmounting what the dead instance left mounted) and frees the loop device; the
image, and the data on it, outlive the instance and come back on the replacement."""
import os
import subprocess

import pytest

from harness import blockdev
from harness.world import World

EBS = "nvme-Amazon_Elastic_Block_Store_"


def attach(world, inst, volume_id, device="/dev/sdg"):
    world.aws("ec2").attach_volume(VolumeId=volume_id, InstanceId=inst.id, Device=device)
    world.wait_for(lambda: volume_id in inst.volumes, 10, f"{volume_id} on {inst.id}")
    return inst.volumes[volume_id]["loop"]


def back_file(loop):
    return subprocess.run(["losetup", "--noheadings", "--output", "BACK-FILE", loop],
                          capture_output=True, text=True, check=True).stdout.strip()


def devno(path):
    rdev = os.stat(path).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def read(path):
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize("style", ["nitro", "sysfs", "by-id", "xen", "name"])
def test_an_attached_volume_shows_in_that_instance_in_each_style(style):
    with World(brokers=3, azs=3, volume_style=style, zookeeper=False) as w:
        inst, other = w.instances[0], w.instances[1]
        _, vol = w.broker_resources(0)
        hexid = vol["id"].replace("-", "")
        loop = attach(w, inst, vol["id"])
        assert back_file(loop) == os.path.join(w.workdir, "volumes", vol["id"] + ".img")
        dev, sys = inst.dev_root, inst.sysfs_root
        by_id = f"{dev}/disk/by-id/{EBS}{hexid}"
        expected = {
            "nitro": [by_id, f"{dev}/nvme1n1"],
            "sysfs": [f"{dev}/nvme1n1"],
            "by-id": [by_id],
            "xen": [f"{dev}/xvdg"],
            "name": [f"{dev}/sdg"],
        }[style]
        for path in expected:
            assert os.path.realpath(path) == loop, path
        for path in {by_id, f"{dev}/nvme1n1", f"{dev}/xvdg", f"{dev}/sdg"} - set(expected):
            assert not os.path.lexists(path), path
        if style in ("nitro", "sysfs"):
            block = f"{sys}/block/nvme1n1"
            assert read(f"{block}/device/serial").strip() == hexid
            assert read(f"{block}/device/model").strip() == "Amazon Elastic Block Store"
            assert read(f"{block}/dev").strip() == devno(loop)
            assert read(f"{sys}/class/nvme/nvme1/serial").strip() == hexid
            # nvme0 is the root volume, with no device node: not the one to pick.
            root = w.state()["instances"][inst.id]["root_volume"].replace("-", "")
            assert read(f"{sys}/class/nvme/nvme0/serial").strip() == root
            assert not os.path.lexists(f"{dev}/nvme0n1")
        else:
            assert not os.path.exists(f"{sys}/block")
        assert not os.listdir(other.dev_root)


def test_termination_detaches_unmounts_and_frees_the_loop_and_the_data_comes_back():
    with World(brokers=3, azs=3, zookeeper=False,
               delays={"volume_attach_s": 0.1, "volume_detach_s": 0.1,
                       "shutting_down_s": 0.2}) as w:
        inst = w.instances[0]
        _, vol = w.broker_resources(0)
        loop = attach(w, inst, vol["id"])
        image = back_file(loop)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "kafka-0", loop], check=True)
        subprocess.run(["mount", loop, inst.mount_point], check=True)
        with open(os.path.join(inst.mount_point, "meta.properties"), "w") as f:
            f.write("broker.id=0\n")
        assert inst.mounted() == {vol["id"]: [inst.mount_point]}

        w.terminate(inst)
        assert w.state()["instances"][inst.id]["state"] == "terminated"
        assert blockdev.mounts_under(inst.mount_point) == []
        assert blockdev.loops_backed_by(image) == []
        assert not os.path.lexists(f"{inst.dev_root}/disk/by-id/{EBS}{vol['id'][4:]}")
        assert os.path.getsize(image) == 1 << 30
        assert inst.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                text=True).stdout

        new = w.launch(az=inst.az)
        assert new.id != inst.id and new.az == inst.az
        loop2 = attach(w, new, vol["id"])
        assert back_file(loop2) == image
        subprocess.run(["mount", loop2, new.mount_point], check=True)
        assert read(os.path.join(new.mount_point, "meta.properties")) == "broker.id=0\n"
