"""Agents in the simulated world: many start at one moment behind a gate, each in its
instance's namespace with a clean environment pointing at the fake; the harness collects
exit code, output, status.json, CPU time and a peak RSS that is the agent's own (not the
test process's), and kills an agent at a deterministic point: after the Nth request the
fake recorded for its instance, or after a wall-clock time; terminating an instance kills
its agents."""
import os
import resource
import signal
import subprocess
import time

import pytest

from harness.world import World

TOKEN = ("curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
         "http://169.254.169.254/latest/api/token; echo")


@pytest.fixture(scope="module")
def world():
    with World(brokers=4, azs=2, instances=4) as w:
        yield w


def sh(inst, script, **kw):
    return inst.start(["-c", script], binary="/bin/sh", config=False, **kw)


def test_gated_agents_all_start_after_the_gate_opens(world):
    gate, agents = world.start_agents(args=["-c", "date +%s.%N"], binary="/bin/sh",
                                      config=False)
    time.sleep(0.3)
    assert all(a.running() for a in agents), "an agent went before the gate opened"
    gate.open()
    stamps = [float(a.wait(10).stdout) for a in agents]
    gate.close()
    assert len(stamps) == 4
    assert min(stamps) >= gate.opened_at_wall - 0.01
    assert max(stamps) - min(stamps) < 0.5


def test_peak_rss_is_the_agent_s_own_not_the_test_process_s(world):
    ballast = bytearray(96 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 96 << 10
    r = world.instances[0].run([], binary="/bin/true", config=False)
    assert r.exit_code == 0
    assert 0 < r.maxrss_kb < 8 << 10
    del ballast


def test_cpu_time_counts_the_agent_and_its_children(world):
    r = world.instances[0].run(["-c", "sh -c 'i=0; while [ $i -lt 100000 ]; do "
                                "i=$((i+1)); done'"], binary="/bin/sh", config=False)
    assert r.exit_code == 0
    assert 0.02 < r.cpu_s <= r.wall_s + 0.05


def test_kill_after_the_nth_request_lands_before_the_client_hears_the_answer(world):
    inst = world.instances[1]
    before = len(world.requests(inst))
    r = sh(inst, f"for i in 1 2 3 4 5; do {TOKEN}; done", kill_after_requests=3).wait(20)
    assert r.exit_code == -signal.SIGKILL
    assert r.killed.startswith("after request 3 (imds PUT /latest/api/token")
    assert len(r.records) == 3
    assert len(world.requests(inst)) - before == 3
    assert len([line for line in r.stdout.splitlines() if line]) == 2


def test_kill_when_a_request_matches(world):
    r = sh(world.instances[1], f"{TOKEN}; {TOKEN}; sleep 5",
           kill_when=lambda rec: rec["service"] == "imds").wait(20)
    assert r.exit_code == -signal.SIGKILL and len(r.records) == 1


def test_kill_at_a_wall_clock_point(world):
    r = world.instances[2].run(["5"], binary="/bin/sleep", config=False, kill_after_s=0.3)
    assert r.exit_code == -signal.SIGKILL
    assert r.killed == "after 0.3 s"
    assert 0.25 < r.wall_s < 2


def test_the_agent_environment_points_at_the_fake_and_carries_no_host_credentials(
        world, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOSTLEAK")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    env = dict(line.split("=", 1) for line in
               world.instances[0].run([], binary="/usr/bin/env", config=False).stdout.split("\n")
               if "=" in line)
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_PROFILE" not in env
    assert env["AWS_ENDPOINT_URL_EC2"] == world.endpoints["ec2"] == "http://10.0.0.2:8001"
    assert env["AWS_ENDPOINT_URL_CLOUDFORMATION"] == world.endpoints["cloudformation"]
    assert env["AWS_ENDPOINT_URL_AUTO_SCALING"] == world.endpoints["autoscaling"]
    assert env["PATH"].split(":")[0] == world.instances[0].shims


def test_mkfs_calls_are_recorded_and_still_run(world):
    inst = world.instances[0]
    image = os.path.join(inst.root, "scratch.img")
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    r = sh(inst, f"mkfs.ext4 -q -F -L 'a b' {image}").wait(30)
    assert r.exit_code == 0, r
    assert inst.mkfs_calls() == [["mkfs.ext4", "-q", "-F", "-L", "a b", image]]
    assert subprocess.run(["blkid", "-o", "value", "-s", "TYPE", image], capture_output=True,
                          text=True).stdout.strip() == "ext4"
    os.unlink(image)


def test_the_harness_config_is_valid_for_the_real_binary(world):
    inst = world.instances[0]
    r = inst.run(["config"])
    assert r.exit_code == 0, r
    assert f'"mount_point": "{inst.mount_point}"' in r.stdout
    assert f'"zookeeper_connect": "{world.zookeeper_connect}"' in r.stdout


def test_a_boot_collects_every_instance_s_exit_and_status_file(world):
    results = world.boot(timeout=120)
    assert [r.instance_id for r in results] == [i.id for i in world.instances]
    for r in results:
        assert r.status is not None, r
        assert r.status["schema"] == 1 and r.status["command"] == "run"
        assert r.status["exit_code"] == r.exit_code
        assert [s["name"] for s in r.status["stages"]][:1] == ["identity"]


def test_terminating_an_instance_kills_its_agents():
    with World(brokers=2, azs=2, zookeeper=False) as w:
        agent = w.instances[0].start(["30"], binary="/bin/sleep", config=False)
        other = w.instances[1].start(["30"], binary="/bin/sleep", config=False)
        w.terminate(w.instances[0])
        r = agent.wait(5)
        assert r.exit_code == -signal.SIGKILL and r.killed == "instance terminated"
        assert other.running()
        with pytest.raises(RuntimeError):
            w.instances[0].start(["1"], binary="/bin/sleep", config=False)
