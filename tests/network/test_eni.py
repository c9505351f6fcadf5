"""The eni stage against the fake AWS endpoint, end to end: the attach, EC2's delays and
stale Describe, owners that are running, stopped or shutting down, another AZ, DryRun in plan,
then the network stage on the veth the fake's attach hook plugs, with IMDS lagging.

    ┌─ kbn-PID-N-vpc ────────────────────────────────────────────────┐
    │ p0  10.0.1.1/24 (router of subnet a1), 169.254.169.254/32       │ fake EC2 :8001, IMDS :80
    │ r1  10.0.2.1/24 (router of subnet a2, made by the attach hook)  │
    └──┬───────────────────────┬──────────────────────────────────────┘
       │ veth                  │ veth, plugged when EC2 completes the attach
    ┌──┴── kbn-PID-N-inst ─────┴──────────────────────────────────────┐
    │ eth0 10.0.1.10/24 (i-…a001's primary), default via 10.0.1.1      │
    │ ens6 the ENI's MAC, appears on attach                            │
    └──────────────────────────────────────────────────────────────────┘
Instances a002 (running), a003 and a004 live only in the fake: nothing runs on them.
"""
import copy
import json
import os
import subprocess
import time

import pytest

from conftest import NetnsThread, World, run
from fakeaws import FakeAWS, Hooks

KB_ENI = os.path.join(os.environ.get("KB_BINARY_DIR", "build"), "tools", "kb-eni")
ME, RUNNING, DOOMED, STOPPED = (f"i-0000000000000a00{n}" for n in (1, 2, 3, 4))
FREE_ENI, HELD_ENI, DOOMED_ENI, STOPPED_ENI, FAR_ENI = (
    f"eni-0000000000000a0{n}0" for n in (1, 2, 3, 4, 5))
FREE_MAC, FREE_IP = "0e:00:00:02:01:00", "10.0.2.100"

FIXTURE = {
    "region": "us-east-1",
    "account": "123456789012",
    "vpc": {"id": "vpc-0000000000000f000", "cidr": "10.0.0.0/16"},
    "subnets": [
        {"id": "subnet-0000000000000a100", "az": "us-east-1a", "az_id": "use1-az6",
         "cidr": "10.0.1.0/24"},
        {"id": "subnet-0000000000000a200", "az": "us-east-1a", "az_id": "use1-az6",
         "cidr": "10.0.2.0/24"},
        {"id": "subnet-0000000000000b100", "az": "us-east-1b", "az_id": "use1-az1",
         "cidr": "10.0.3.0/24"},
    ],
    "roles": {"broker": ["ec2:Describe*", "ec2:AttachNetworkInterface",
                         "ec2:DetachNetworkInterface"],
              "read-only": ["ec2:Describe*"]},
    "instances": [
        {"id": ME, "subnet": "subnet-0000000000000a100", "private_ip": "10.0.1.10",
         "mac": "0e:00:00:01:00:0a", "role": "broker"},
        {"id": RUNNING, "subnet": "subnet-0000000000000a100", "private_ip": "10.0.1.11"},
        {"id": DOOMED, "subnet": "subnet-0000000000000a100", "private_ip": "10.0.1.12"},
        {"id": STOPPED, "subnet": "subnet-0000000000000a100", "private_ip": "10.0.1.13"},
    ],
    "network_interfaces": [
        {"id": FREE_ENI, "subnet": "subnet-0000000000000a200", "private_ip": FREE_IP,
         "mac": FREE_MAC, "tags": {"Name": "KAFKA-0"}},
        {"id": HELD_ENI, "subnet": "subnet-0000000000000a200", "private_ip": "10.0.2.101",
         "tags": {"Name": "KAFKA-1"}, "attachment": {"instance": RUNNING, "device_index": 1}},
        {"id": DOOMED_ENI, "subnet": "subnet-0000000000000a200", "private_ip": "10.0.2.102",
         "mac": "0e:00:00:02:01:02", "tags": {"Name": "KAFKA-2"},
         "attachment": {"instance": DOOMED, "device_index": 1}},
        {"id": STOPPED_ENI, "subnet": "subnet-0000000000000a200", "private_ip": "10.0.2.103",
         "mac": "0e:00:00:02:01:03", "tags": {"Name": "KAFKA-3"},
         "attachment": {"instance": STOPPED, "device_index": 1}},
        {"id": FAR_ENI, "subnet": "subnet-0000000000000b100", "private_ip": "10.0.3.104",
         "tags": {"Name": "KAFKA-4"}},
    ],
    "delays": {"eni_attach_s": 2.0, "eni_detach_s": 0.3, "shutting_down_s": 1.0,
               "stopping_s": 0.2},
}


class EniWorld(World):
    """conftest's instance namespace, with eth0 as i-…a001's primary ENI in a VPC
    namespace where the fake serves EC2 and IMDS; ENI attaches plug a veth into it."""

    def __init__(self, fixture):
        super().__init__()
        self.fixture = fixture
        self.fake = None
        self.vpc_thread = None
        self.plugged = []

    def build(self):
        for ns in (self.inst, self.vpc):
            self.add_ns(ns)
        run("ip", "netns", "exec", self.inst, "sysctl", "-qw",
            "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self.ip(self.inst, "link", "add", "eth0", "address", "0e:00:00:01:00:0a", "type",
                "veth", "peer", "name", "p0", "netns", self.vpc)
        self.ip(self.inst, "addr", "add", "10.0.1.10/24", "dev", "eth0")
        self.ip(self.inst, "link", "set", "eth0", "up")
        self.ip(self.vpc, "addr", "add", "10.0.1.1/24", "dev", "p0")
        self.ip(self.vpc, "addr", "add", "169.254.169.254/32", "dev", "p0")
        self.ip(self.vpc, "link", "set", "p0", "up")
        self.wait_operstate(self.inst, "eth0", "UP")
        self.ip(self.inst, "route", "add", "default", "via", "10.0.1.1")
        world = self

        class PlugHooks(Hooks):
            def eni_attached(self, instance_id, eni):
                if instance_id == ME:
                    world.plug(eni)

        self.fake = FakeAWS(self.fixture, PlugHooks())
        self.vpc_thread = NetnsThread(self.vpc)
        self.vpc_thread.call(self.fake.start, [
            {"service": "imds", "host": "169.254.169.254", "port": 80},
            {"service": "ec2", "host": "10.0.1.1", "port": 8001}])
        return self

    def plug(self, eni):
        """The attach, as the guest sees it: a NIC with the ENI's MAC appears (ens6)."""
        router = eni["subnet_cidr"].rsplit(".", 1)[0] + ".1/" + eni["subnet_cidr"].split("/")[1]
        peer = f"r{len(self.plugged) + 1}"
        self.ip(self.vpc, "link", "add", peer, "type", "veth", "peer", "name",
                f"ens{5 + eni['device_index']}", "address", eni["mac"], "netns", self.inst)
        self.ip(self.vpc, "addr", "add", router, "dev", peer)
        self.ip(self.vpc, "link", "set", peer, "up")
        self.plugged.append((time.time(), eni["id"]))

    def agent_env(self, **extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://169.254.169.254",
               "AWS_ENDPOINT_URL_EC2": "http://10.0.1.1:8001",
               "KAFKA_BOOTSTRAP_RUN_ROOT": self.run_root}
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(extra)
        return env

    def kb_eni(self, eni_id, *extra, env=None, deadline_ms=10000):
        """Runs kb-eni in the instance: (exit code, {stage: result}, log)."""
        argv = ["nsenter", f"--net=/run/netns/{self.inst}", KB_ENI, "--eni-id", eni_id,
                "--deadline-ms", str(deadline_ms), *extra]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env=self.agent_env(**(env or {})))
        stages = {}
        for line in proc.stdout.splitlines():
            result = json.loads(line)
            stages[result["stage"]] = result
        return proc.returncode, stages, proc.stderr

    def calls(self, action):
        return [r for r in self.fake.requests() if r["action"] == action]

    def eni(self, eni_id):
        return self.fake.state()["network_interfaces"][eni_id]

    def destroy(self):
        try:
            if self.fake:
                self.vpc_thread.call(self.fake.stop)
                assert self.fake.errors() == []
        finally:
            if self.vpc_thread:
                self.vpc_thread.close()
            super().destroy()


@pytest.fixture
def make_world():
    worlds = []

    def make(role="broker", **delays):
        fixture = copy.deepcopy(FIXTURE)
        fixture["instances"][0]["role"] = role
        fixture["delays"].update(delays)
        w = EniWorld(fixture)
        worlds.append(w)
        return w.build()

    try:
        yield make
    finally:
        for w in worlds:
            w.destroy()


def test_a_2s_attach_is_seen_before_the_next_poll_and_its_link_configured_despite_imds_lag(make_world):
    world = make_world()
    world.fake.set_faults(imds_mac_lag_s=1.0)
    code, stages, log = world.kb_eni(FREE_ENI, "--then-network")
    assert code == 0, log
    eni = stages["eni"]
    # The poll after the one at 2.08 s comes at 3.2 s.
    assert 2000 <= eni["ms"] <= 2600, f"attach seen after {eni['ms']} ms"
    assert len(eni["changes"]) == 1
    assert eni["changes"][0].startswith(
        f"attached {FREE_ENI} to {ME} at device index 1, network card 0 (eni-attach-")
    assert len(world.calls("AttachNetworkInterface")) == 1
    # The subnet came from IMDS, which 404ed for a second after the attach: waited, not
    # taken for "nothing configured".
    net = stages["network"]
    assert net["changes"][-1] == \
        "RTM_NEWRULE create exclusive priority 10001: from 10.0.2.100 lookup 10001"
    assert "RTM_NEWADDR replace 10.0.2.100/24 dev ens6 noprefixroute" in net["changes"]
    assert any(r["action"].endswith("/subnet-ipv4-cidr-block") and r["http_status"] == 404
               for r in world.fake.requests())
    world.wait_operstate(world.inst, "ens6", "UP")
    ping = run("ip", "netns", "exec", world.inst, "ping", "-n", "-q", "-c", "1", "-W", "1",
               "-I", FREE_IP, "10.0.2.1", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    code, stages, log = world.kb_eni(FREE_ENI, "--then-network")
    assert code == 0, log
    assert stages["eni"]["changes"] == [] and stages["network"]["changes"] == []
    assert len(world.calls("AttachNetworkInterface")) == 1


def test_an_attach_is_noticed_when_its_interface_appears_not_at_the_next_poll(make_world):
    """The polls after an attach come at 0.1, 0.25, 0.48, 0.81, 1.32 and 2.08 s: a 1.4 s
    attach would be seen 0.68 s late. The interface appearing (the attach done) makes the
    stage look at once."""
    world = make_world(eni_attach_s=1.4)
    code, stages, log = world.kb_eni(FREE_ENI)
    assert code == 0, log
    done = next(e["time"] for e in world.fake.events() if e["event"] == "eni_attached")
    after = [r["time"] - done for r in world.calls("DescribeNetworkInterfaces")
             if r["time"] >= done]
    assert after and after[0] < 0.45, f"attach noticed {after} s after it completed"
    assert len(world.calls("DescribeNetworkInterfaces")) <= 8


def test_our_own_attach_is_trusted_while_describe_is_stale(make_world):
    world = make_world(eni_attach_s=0.3, describe_stale_s=1.0)
    code, stages, log = world.kb_eni(FREE_ENI)
    assert code == 0, log
    assert len(world.calls("AttachNetworkInterface")) == 1
    assert stages["eni"]["ms"] >= 1000
    assert world.eni(FREE_ENI)["attachment"]["instance_id"] == ME


@pytest.mark.parametrize("eni, error", [
    (HELD_ENI, f"{HELD_ENI} is attached to {RUNNING}, which is running: an ENI is never taken "
               "from a running instance"),
    (FAR_ENI, f"{FAR_ENI} is in us-east-1b, this instance in us-east-1a: an ENI attaches only "
              "within its availability zone"),
], ids=["attached-to-a-running-instance", "in-another-az"])
def test_an_eni_held_by_a_running_instance_or_in_another_az_is_refused_with_exit_13(
        make_world, eni, error):
    world = make_world()
    code, stages, _ = world.kb_eni(eni)
    assert code == 13
    assert stages["eni"]["error"] == error
    assert world.calls("AttachNetworkInterface") == []
    assert world.calls("DetachNetworkInterface") == []


def test_an_owner_shutting_down_is_waited_for_then_the_eni_attached(make_world):
    world = make_world(eni_attach_s=0.2)
    world.fake.terminate_instance(DOOMED)
    code, stages, log = world.kb_eni(DOOMED_ENI)
    assert code == 0, log
    assert f"{DOOMED_ENI} is attached to {DOOMED} (shutting-down): waiting" in log
    attaches = world.calls("AttachNetworkInterface")
    assert len(attaches) == 1 and attaches[0]["http_status"] == 200
    # shutting-down 1 s, then the detach 0.3 s: attached only after both.
    assert stages["eni"]["ms"] >= 1300
    assert world.eni(DOOMED_ENI)["attachment"]["instance_id"] == ME


def test_a_shutting_down_owner_is_waited_for_only_until_the_deadline(make_world):
    world = make_world(shutting_down_s=30)
    world.fake.terminate_instance(DOOMED)
    code, stages, _ = world.kb_eni(DOOMED_ENI, deadline_ms=1500)
    assert code == 75
    assert stages["eni"]["error"].startswith(f"{DOOMED_ENI} still in-use (attachment attached "
                                             f"to {DOOMED})")
    assert world.calls("AttachNetworkInterface") == []


def test_a_stopped_owner_keeps_its_eni_unless_take_over_stopped(make_world):
    world = make_world(eni_attach_s=0.2)
    world.fake.stop_instance(STOPPED)
    time.sleep(0.3)
    code, stages, _ = world.kb_eni(STOPPED_ENI)
    assert code == 13
    assert "which is stopped: an ENI is never taken from a stopped instance without " \
        "take_over_stopped" in stages["eni"]["error"]
    assert world.calls("DetachNetworkInterface") == []

    code, stages, log = world.kb_eni(STOPPED_ENI, "--taken-over-from", STOPPED,
                                     env={"KAFKA_BOOTSTRAP_TAKE_OVER_STOPPED": "true"})
    assert code == 0, log
    assert stages["eni"]["changes"][0] == \
        f"detach {STOPPED_ENI} from stopped {STOPPED} (take_over_stopped)"
    assert len(world.calls("DetachNetworkInterface")) == 1
    assert world.eni(STOPPED_ENI)["attachment"]["instance_id"] == ME


@pytest.mark.parametrize("claim", [[], ["--taken-over-from", DOOMED]],
                         ids=["held-already", "taken-over-from-another"])
def test_take_over_stopped_never_detaches_from_a_stopped_instance_the_claim_was_not_taken_from(
        make_world, claim):
    """take_over_stopped may sit in config.d for good: it lets the stage detach only from the
    stopped instance this run took the broker id from."""
    world = make_world(eni_attach_s=0.2)
    world.fake.stop_instance(STOPPED)
    time.sleep(0.3)
    for plan in ([], ["--plan"]):
        code, stages, log = world.kb_eni(STOPPED_ENI, *claim, *plan,
                                         env={"KAFKA_BOOTSTRAP_TAKE_OVER_STOPPED": "true"})
        assert code == 13, log
        assert stages["eni"]["error"] == (
            f"{STOPPED_ENI} is attached to {STOPPED}, which is stopped: an ENI is never taken "
            "from a stopped instance other than the one this run took the broker id from "
            "(take_over_stopped)")
    assert world.calls("DetachNetworkInterface") == []
    assert world.calls("AttachNetworkInterface") == []
    assert world.eni(STOPPED_ENI)["attachment"]["instance_id"] == STOPPED


def test_an_in_use_race_is_described_again_and_decided_by_the_same_rules(make_world):
    world = make_world(eni_attach_s=0.2)
    world.fake.set_faults(fail_action=[{"action": "AttachNetworkInterface",
                                        "code": "InvalidNetworkInterface.InUse",
                                        "message": f"Interface: [{FREE_ENI}] in use.",
                                        "times": 1, "status": 400, "service": "ec2"}])
    code, stages, log = world.kb_eni(FREE_ENI)
    assert code == 0, log
    assert "InvalidNetworkInterface.InUse" in log
    assert [r["http_status"] for r in world.calls("AttachNetworkInterface")] == [400, 200]


def test_an_in_use_answer_while_describe_is_stale_is_looked_at_again_after_a_pause(make_world):
    """Describe lags 1 s behind another instance's attach: it reads available, the attach
    says InUse. Each answer is followed by a poll interval and a new Describe, not by the
    next attach at once; once Describe catches up the owner reads running: 13, not 70."""
    world = make_world(describe_stale_s=1.0)
    world.fake.world.attach_eni(FREE_ENI, RUNNING, 2, 0)
    code, stages, log = world.kb_eni(FREE_ENI)
    assert code == 13, log
    assert stages["eni"]["error"].startswith(f"{FREE_ENI} is attached to {RUNNING}, which is "
                                             "running"), stages["eni"]["error"]
    attaches = world.calls("AttachNetworkInterface")
    assert attaches and all(a["error_code"] == "InvalidNetworkInterface.InUse"
                            for a in attaches), attaches
    gaps = [b["time"] - a["time"] for a, b in zip(attaches, attaches[1:])]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert world.calls("DetachNetworkInterface") == []
    assert world.eni(FREE_ENI)["attachment"]["instance_id"] == RUNNING


def test_plan_proves_the_attach_with_dry_run_and_attaches_nothing(make_world):
    world = make_world()
    code, stages, log = world.kb_eni(FREE_ENI, "--plan", "--then-network")
    assert code == 0, log
    assert stages["eni"]["changes"] == [
        f"would: attach {FREE_ENI} to {ME} at device index 1, network card 0 (DryRun: the "
        "role may)"]
    attaches = world.calls("AttachNetworkInterface")
    assert [(a["dry_run"], a["error_code"]) for a in attaches] == [(True, "DryRunOperation")]
    assert world.eni(FREE_ENI).get("attachment") is None
    assert stages["network"]["changes"][0] == \
        f"would: wait for the interface with MAC {FREE_MAC} (the ENI is not attached yet)"


def test_plan_reports_a_role_that_may_not_attach_with_exit_77(make_world):
    world = make_world(role="read-only")
    code, stages, _ = world.kb_eni(FREE_ENI, "--plan")
    assert code == 77
    assert "UnauthorizedOperation" in stages["eni"]["error"]
