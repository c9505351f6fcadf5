"""An agent SIGKILLed at a point of each stage, then rerun on the same instance, completes
with the same id, ENI and volume, and nothing is done twice; an instance terminated in the
middle of its run is replaced by one that takes the id over only once the owner is gone,
and finds the data written before.

Kill points are deterministic: after the Nth request the fake recorded for the instance
(the fake's hook runs before the answer is written, so the request took effect and the
agent never heard), at the Nth successful ZooKeeper write (a proxy in front of ZooKeeper
swallows the reply), and around mkfs (a shim that kills the agent's process group before
or after the real mkfs). Which point of each stage is drawn from KB_CHAOS_SEED; a
reference run in the same layout tells which requests and writes belong to which stage.
Stages without a point of their own (the netlink part of network, properties) are covered
by the points on either side of them: the network stage's IMDS request and the signal
stage's first request. Each point gets a fresh world of three ids in one AZ.

    ZooKeeper <── ZkTap (kill at the Nth write) <── agent ──> fake AWS (kill at request N)
                                                      └──> mkfs shim (kill before/after)
"""
import os
import signal

import pytest

import chaos

BROKERS, AZS = 3, 1
POINTS_PER_STAGE = 1  # per round; KB_CHAOS_ROUNDS draws new ones


def layout_seed(round_no):
    return chaos.SEED * 1000 + round_no


class Writes:
    """Counts the agent's successful ZooKeeper writes; kills the agent at the chosen one."""

    def __init__(self, kill_at=None):
        self.count = 0
        self.kill_at = kill_at
        self.agent = None

    def __call__(self, op):
        self.count += 1
        if self.kill_at is not None and self.count == self.kill_at and self.agent:
            self.agent.kill(signal.SIGKILL, f"at ZooKeeper write {self.count} (op {op})")
            return True
        return False


def boot_world(round_no, **kw):
    return chaos.world(BROKERS, AZS, instances=1, seed=layout_seed(round_no), **kw)


def reference(round_no):
    """One uninterrupted run: {stage: [request numbers]} and the ZooKeeper writes made."""
    writes = Writes()
    with boot_world(round_no) as w, chaos.ZkTap(w, writes) as tap:
        inst = w.instances[0]
        inst.configure(zookeeper_connect=tap.connect, log_level="debug")
        r = inst.run()
        assert r.exit_code == 0, r
    return chaos.requests_by_stage(r), writes.count, r


def kill_points(round_no):
    """[(stage, kind, value)]: one point per stage, drawn from the seed."""
    stages, writes, ref = reference(round_no)
    assert set(stages) >= {"identity", "discover", "eni", "volume", "network", "signal"}, \
        f"reference run's requests by stage: {stages}\n{ref}"
    assert writes >= 1, "the claim wrote nothing to ZooKeeper"
    points = []
    for stage in chaos.STAGES:
        choices = [("request", n) for n in stages.get(stage, [])]
        if stage == "claim":
            choices += [("zk_write", k) for k in range(1, writes + 1)]
        if stage == "volume":
            choices += [("mkfs", "before"), ("mkfs", "after")]
        if choices:
            rng = chaos.rng("kill", round_no, stage)
            points += [(stage,) + p for p in rng.sample(choices, min(POINTS_PER_STAGE,
                                                                     len(choices)))]
    return points


def install_mkfs_killer(inst, when):
    """Wraps the world's recording mkfs shims: 'before' kills the agent (the shim's parent:
    the agent spawns mkfs in a process group of its own) before mkfs runs, 'after' once it
    finished. Returns a function restoring them."""
    saved = {}
    for prog in ("mkfs.xfs", "mkfs.ext4"):
        path = os.path.join(inst.shims, prog)
        os.rename(path, path + ".recording")
        saved[prog] = path
        run = f"'{path}.recording' \"$@\"\n" if when == "after" else ""
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\n# chaos: the agent dies {when} mkfs\n{run}kill -KILL $PPID\n")
        os.chmod(path, 0o755)

    def restore():
        for path in saved.values():
            os.replace(path + ".recording", path)
    return restore


def killed_run(w, inst, kind, value, writes):
    if kind == "request":
        return inst.run(kill_after_requests=value)
    if kind == "zk_write":
        writes.kill_at = value
        agent = inst.start()
        writes.agent = agent
        return agent.wait(120)
    restore = install_mkfs_killer(inst, value)
    try:
        r = inst.run()
    finally:
        restore()
    r.killed = r.killed or f"by the mkfs shim, {value} mkfs"
    return r


def point_ids():
    return [f"round{r}" for r in range(chaos.rounds())]


@pytest.mark.parametrize("round_no", range(chaos.rounds()), ids=point_ids())
def test_agent_killed_at_a_point_of_each_stage_completes_when_rerun(round_no):
    points = kill_points(round_no)
    for stage, kind, value in points:
        writes = Writes()
        with boot_world(round_no) as w, chaos.ZkTap(w, writes) as tap:
            inst = w.instances[0]
            inst.configure(zookeeper_connect=tap.connect)
            what = f"seed {chaos.SEED} round {round_no}: {stage} stage, {kind} {value}"
            first = killed_run(w, inst, kind, value, writes)
            assert first.exit_code == -signal.SIGKILL, f"{what}: not killed\n{first}"
            chaos.no_crash(first)
            held = {bid: iid for bid, iid in chaos.zk_owners(w).items() if iid == inst.id}
            before = chaos.attached(w.state(), "network_interfaces").get(inst.id, [])
            writes.kill_at = None
            again = inst.run()
            chaos.no_crash(again)
            assert again.exit_code == 0, f"{what}: rerun failed\n{first}\n{again}"
            owners = chaos.check_world(w, [again])
            mine = [bid for bid, iid in owners.items() if iid == inst.id]
            assert mine == [again.broker_id], f"{what}: claims {owners}"
            if held:
                assert list(held) == mine, f"{what}: claimed {held} before, {mine} after"
            state = w.state()
            eni = chaos.attached(state, "network_interfaces")[inst.id]
            vol = chaos.attached(state, "volumes")[inst.id]
            assert eni[0][0] == vol[0][0] == again.broker_id, (what, eni, vol)
            if before:
                assert before[0][1] == eni[0][1], f"{what}: ENI {before} before, {eni} after"
            for key, n in chaos.successful_attaches(w.requests(inst)).items():
                assert n == 1, f"{what}: {key} carried out {n} times"
            assert len(inst.mkfs_calls()) == 1, f"{what}: mkfs calls {inst.mkfs_calls()}"
            assert inst.mounted()[vol[0][1]] == [inst.mount_point], what
            assert inst.properties()["broker.id"] == str(again.broker_id), what
            sigs = chaos.signals_of(w, inst.id)
            assert ("SUCCESS", None) in sigs and not [s for s in sigs if s[0] == "FAILURE"], \
                f"{what}: signals {sigs}"
            assert chaos.health_calls(w, inst.id) == [], what


def terminated_at(w, iid):
    times = [e["time"] for e in w.fake.events() if e["event"] == "instance_state_changed"
             and e.get("instance_id") == iid and e.get("state") == "terminated"]
    return times[0] if times else None


@pytest.mark.parametrize("round_no", range(chaos.rounds()), ids=point_ids())
def test_instance_killed_mid_run_is_replaced_after_it_is_gone_with_the_data_intact(round_no):
    rng = chaos.rng("terminate", round_no)
    # Two brokers, both running: the only id a replacement can get is the one it replaces.
    with chaos.world(2, 1, instances=2, seed=layout_seed(round_no),
                     delays={"shutting_down_s": 2}) as w:
        results = w.boot()
        assert [r.exit_code for r in results] == [0, 0], chaos.dump(results)
        first = rng.choice(w.instances)
        bystander = next(i for i in w.instances if i is not first)
        bid = next(r.broker_id for r in results if r.instance_id == first.id)
        eni = w.broker_resources(bid)[0]
        proof = chaos.write_proof(first, seed=round_no)
        owners_in_turn = [first.id]

        # The owner is terminated; a replacement boots at once and dies (its instance is
        # terminated) at a drawn request; a third one boots and must end up as the broker.
        w.terminate(first, wait=False)
        second = chaos.launch(w, first.az)
        n = rng.randint(1, 24)
        r2 = second.run(kill_after_requests=n)
        chaos.no_crash(r2)
        what = f"seed {chaos.SEED} round {round_no}, second killed after request {n}"
        record, stat = chaos.zk_claims(w)[bid]
        if record["instance_id"] == second.id:
            gone = terminated_at(w, first.id)
            assert gone is not None and stat.mtime / 1000 >= gone - 0.01, \
                f"{what}: {second.id} took broker {bid} over at {stat.mtime / 1000}, before " \
                f"its owner was terminated at {gone}"
            owners_in_turn.append(second.id)
        w.terminate(second, wait=False)
        third = chaos.launch(w, first.az)
        r3 = third.run()
        chaos.no_crash(r3)
        assert r3.exit_code == 0, f"{what}\n{r2}\n{r3}"
        assert r3.broker_id == bid, what
        record, stat = chaos.zk_claims(w)[bid]
        assert record["instance_id"] == third.id
        for previous in owners_in_turn:
            gone = terminated_at(w, previous)
            assert gone is not None and stat.mtime / 1000 >= gone - 0.01, \
                f"{what}: took the id over at {stat.mtime / 1000}, {previous} gone at {gone}"
        owners = chaos.check_world(w, [r3])
        assert owners == {bid: third.id, 1 - bid: bystander.id}, what
        assert chaos.read_proof(third) == proof, f"{what}: the data changed"
        assert third.mkfs_calls() == [] and second.mkfs_calls() == [], what
        link = third.link_by_mac(eni["mac"])
        assert link is not None, what
        assert eni["private_ip"] + "/" in third.sh("ip", "-4", "-o", "addr", "show", "dev",
                                                   link["ifname"])
