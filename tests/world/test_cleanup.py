"""A world leaves nothing behind: namespaces, veths, bridge, loop devices, mounts, processes
(agents, ZooKeeper, threads inside its namespaces) and its directory are gone once it
closes, also after an exception in the with-block and on SIGINT or SIGTERM; what a dead
process left is swept by the next world; and a world of three instances is up in seconds.

Every check reads the system independently (`ip netns`, `losetup`, /proc), not the world's
own bookkeeping."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from harness import blockdev, netns
from harness.world import World


def busy_world(w):
    """Puts one of everything in the world; returns what a leak would leave, by name."""
    inst = w.instances[0]
    eni, vol = w.broker_resources(0)
    w.aws("ec2").attach_network_interface(NetworkInterfaceId=eni["id"], InstanceId=inst.id,
                                          DeviceIndex=1)
    w.aws("ec2").attach_volume(VolumeId=vol["id"], InstanceId=inst.id, Device="/dev/sdg")
    w.wait_for(lambda: eni["id"] in inst.enis and vol["id"] in inst.volumes, 10, "attached")
    loop = inst.volumes[vol["id"]]["loop"]
    subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True)
    subprocess.run(["mount", loop, inst.mount_point], check=True)
    agent = inst.start(["30"], binary="/bin/sleep", config=False)
    return {"prefix": w.prefix, "workdir": w.workdir, "loop": loop,
            "pgids": [agent.pgid], "zookeeper": w.zk.proc.pid,
            "inodes": [w._vpc_inode] + [i.netns_inode for i in w.instances]}


def assert_nothing_left(t):
    assert not [n for n in netns.netns_list() if n.startswith(t["prefix"])]
    host_links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True,
                                           text=True, check=True).stdout)
    assert not [l["ifname"] for l in host_links if l["ifname"].startswith(t["prefix"])]
    assert blockdev.loops_backed_by(t["workdir"]) == []
    # The device number may already serve someone else: it must not serve our image.
    back = subprocess.run(["losetup", "--noheadings", "-O", "BACK-FILE", t["loop"]],
                          capture_output=True, text=True).stdout.strip()
    assert not back.startswith(t["workdir"])
    assert blockdev.mounts_under(t["workdir"]) == []
    assert not os.path.exists(t["workdir"])
    for pgid in t["pgids"]:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    assert not os.path.exists(f"/proc/{t['zookeeper']}") or \
        open(f"/proc/{t['zookeeper']}/stat").read().split()[2] == "Z"
    deadline = time.monotonic() + 5
    while any(netns.tasks_in_netns(i) for i in t["inodes"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [netns.tasks_in_netns(i) for i in t["inodes"]] == [[]] * len(t["inodes"])


def test_a_closed_world_leaves_nothing_behind():
    with World(brokers=3, azs=3) as w:
        traces = busy_world(w)
        assert w.leftovers() != []
    assert w.leftovers() == []
    assert_nothing_left(traces)


def test_an_exception_in_the_with_block_still_cleans_up():
    with pytest.raises(ZeroDivisionError):
        with World(brokers=3, azs=3) as w:
            traces = busy_world(w)
            1 / 0
    assert w.leftovers() == []
    assert_nothing_left(traces)


CHILD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from harness.world import World
    from test_cleanup import busy_world
    with World(brokers=3, azs=3) as w:
        print(json.dumps(busy_world(w)), flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_test_process_cleans_up(sig):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, os.path.dirname(os.path.abspath(__file__))],
        stdout=subprocess.PIPE, text=True)
    try:
        traces = json.loads(child.stdout.readline())
        child.send_signal(sig)
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert_nothing_left(traces)


def test_leftovers_of_a_dead_test_process_are_swept_by_the_next_world():
    dead = subprocess.Popen(["true"])
    dead.wait()
    prefix = f"kbw{dead.pid}q"
    workdir = tempfile.mkdtemp(prefix=prefix + "-")
    image = blockdev.create_image(os.path.join(workdir, "v.img"), 16 << 20)
    loop = blockdev.loop_attach(image)
    subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True)
    os.mkdir(os.path.join(workdir, "mnt"))
    subprocess.run(["mount", loop, os.path.join(workdir, "mnt")], check=True)
    netns.netns_add(prefix + "vpc")
    with World(brokers=1, azs=1, zookeeper=False):
        pass
    assert_nothing_left({"prefix": prefix, "workdir": workdir, "loop": loop, "pgids": [],
                         "zookeeper": dead.pid, "inodes": []})


def test_a_world_of_three_instances_is_up_within_seconds():
    t0 = time.monotonic()
    with World(brokers=3, azs=3) as w:
        up = time.monotonic() - t0
        print(f"world up in {up:.2f} s: {w.timings}")
        t1 = time.monotonic()
    print(f"world closed in {time.monotonic() - t1:.2f} s")
    assert up < 10
