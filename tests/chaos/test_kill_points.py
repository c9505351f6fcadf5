"""An agent SIGKILLed at a point of each stage, then rerun on the same instance, completes
with the same id, ENI and volume, and nothing is done twice; an instance terminated in the
middle of its run is replaced by one that takes the id over only once the owner is gone,
and finds the data written before.

Kill points: after the Nth request the fake recorded for the instance (the fake's hook
runs before the answer is written, so the request took effect and the agent never heard),
at the Nth successful ZooKeeper write (a proxy in front of ZooKeeper swallows the reply),
around mkfs (a shim that kills the agent's process group before or after the real mkfs),
right after the agent's first rtnetlink request of a drawn type (RTM_NEWLINK, RTM_NEWADDR,
RTM_NEWROUTE, RTM_NEWRULE: an LD_PRELOAD shim, harness/netlink_kill.c, kills it as sendto()
returns, the change made and its acknowledgement never read; the kernel's state at the kill
proves it fell between two changes), and in the properties stage once inotify on the
instance's /etc/kafka sees the temporary file created, written and closed, or renamed over
server.properties (the agent does not wait for that watcher: the kill lands a moment after
the step, before or after the rename). Which point of each stage is drawn from
KB_CHAOS_SEED; a reference run in the same layout tells which requests and writes belong to
which stage (the network stage draws one request point and one netlink point). Each point
gets a fresh world of three ids in one AZ.

After every rerun, the ENI's address, route table and rule are exactly what they must be
(none twice), and no temporary file of server.properties or status.json is left. Killed in
the properties stage, server.properties at the moment of the kill is byte for byte the
AMI's or the rerun's, and Java's Properties reads it.

    ZooKeeper <── ZkTap (kill at the Nth write) <── agent ──> fake AWS (kill at request N)
                                                      ├──> mkfs shim (kill before/after)
                                                      ├──> rtnetlink (shim: kill after one)
                                                      └──> /etc/kafka (inotify: kill at one)
"""
import ctypes
import json
import os
import select
import signal
import struct
import threading

import pytest

import chaos
from harness import layout, netlink_kill
from harness.kafka import java_view
from harness.netns import addresses, routes, rules

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
        if stage == "properties":
            choices += [("file", step) for step in FileWatch.STEPS]
        if choices:
            rng = chaos.rng("kill", round_no, stage)
            points += [(stage,) + p for p in rng.sample(choices, min(POINTS_PER_STAGE,
                                                                     len(choices)))]
        if stage == "network":
            rng = chaos.rng("kill", round_no, stage, "netlink")
            points.append((stage, "netlink", rng.choice(list(netlink_kill.TYPES))))
    return points


class FileWatch:
    """inotify on the directory of server.properties: SIGKILLs the agent once its
    replacement reached `step`: the temporary file created, written and closed (the rename
    not yet done), or renamed over the target."""
    STEPS = ("created", "written", "renamed")
    # IN_CREATE, IN_CLOSE_WRITE, IN_MOVED_TO (sys/inotify.h)
    MASKS = {"created": 0x100, "written": 0x8, "renamed": 0x80}
    _libc = ctypes.CDLL(None, use_errno=True)

    def __init__(self, inst, step):
        self.step, self.agent = step, None
        self.target = os.path.basename(inst.properties_path)
        self.fd = self._libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if self.fd < 0 or self._libc.inotify_add_watch(
                self.fd, os.path.dirname(inst.properties_path).encode(), self.MASKS[step]) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _names(self):
        data = os.read(self.fd, 65536)
        while data:
            _, _, _, n = struct.unpack_from("iIII", data)
            yield data[16:16 + n].rstrip(b"\0").decode()
            data = data[16 + n:]

    def _read(self):
        while True:
            ready, _, _ = select.select([self.fd, self.stop_r], [], [])
            if self.stop_r in ready:
                return
            for name in self._names():
                ours = name == self.target if self.step == "renamed" else \
                    name.startswith(self.target + ".tmp.")
                agent = self.agent
                if agent and ours:
                    agent.kill(signal.SIGKILL, f"at server.properties {self.step} ({name})")
                    self.agent = None

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join(5)
        for fd in (self.fd, self.stop_r, self.stop_w):
            os.close(fd)


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


def killed_run(w, inst, kind, value, writes, shim):
    if kind == "request":
        return inst.run(kill_after_requests=value)
    if kind == "zk_write":
        writes.kill_at = value
        agent = inst.start()
        writes.agent = agent
        return agent.wait(120)
    if kind == "netlink":
        r = inst.run(env=netlink_kill.env(shim, value))
        r.killed = r.killed or f"by the netlink shim, right after the first {value}"
        return r
    if kind == "file":
        watch = FileWatch(inst, value)
        try:
            watch.agent = inst.start()
            return watch.agent.wait(120)
        finally:
            watch.close()
    restore = install_mkfs_killer(inst, value)
    try:
        r = inst.run()
    finally:
        restore()
    r.killed = r.killed or f"by the mkfs shim, {value} mkfs"
    return r


def eni_subnet(w, eni):
    """The CIDR of the ENI's subnet, as the world's layout made it."""
    subnet = next(e for e in w.fixture["network_interfaces"] if e["id"] == eni["id"])["subnet"]
    return next(s for s in w.fixture["subnets"] if s["id"] == subnet)["cidr"]


def eni_configured_once(w, inst, eni):
    """The ENI's link holds its address once, the rule from that address is the only one
    and looks up a table holding exactly the subnet's route and the default route."""
    ip, cidr = eni["private_ip"], eni_subnet(w, eni)
    link = inst.link_by_mac(eni["mac"])
    assert link is not None and "UP" in link["flags"], link
    ifname = link["ifname"]
    assert addresses(inst.netns, ifname) == [f"{ip}/{cidr.split('/')[1]}"], \
        inst.sh("ip", "addr", "show", "dev", ifname)
    mine = [r for r in rules(inst.netns) if r.get("src") == ip]
    assert len(mine) == 1, mine
    table = mine[0]["table"]
    assert [r for r in rules(inst.netns) if r.get("table") == table] == mine
    got = sorted((r["dst"], r.get("gateway"), r["dev"], r.get("prefsrc"))
                 for r in routes(inst.netns, table))
    assert got == sorted([(cidr, None, ifname, ip),
                          ("default", layout.router_ip(cidr), ifname, None)]), got


def netlink_done(inst, eni):
    """What of the ENI's configuration the kernel holds: (link up, its addresses, routes
    through it outside main and local, rules from its address)."""
    link = inst.link_by_mac(eni["mac"])
    if link is None:
        return (False, [], 0, 0)
    ifname = link["ifname"]
    through = [r for r in json.loads(inst.sh("ip", "-j", "-4", "route", "show", "table", "all",
                                              "dev", ifname) or "[]")
               if r.get("table") not in ("main", "local")]
    return ("UP" in link["flags"], addresses(inst.netns, ifname), len(through),
            len([r for r in rules(inst.netns) if r.get("src") == eni["private_ip"]]))


def netlink_expected(eni, request, prefix_len):
    """netlink_done() of an agent killed right after its first `request`: the changes come
    in the order link, address, two routes, rule (netcfg_diff)."""
    k = list(netlink_kill.TYPES).index(request)
    return (True, [f"{eni['private_ip']}/{prefix_len}"] if k >= 1 else [],
            [0, 0, 1, 2][k], int(k == 3))


def temporaries(inst):
    return sorted(n for d in (os.path.dirname(inst.properties_path),
                              os.path.dirname(inst.status_path))
                  for n in os.listdir(d) if ".tmp." in n)


def point_ids():
    return [f"round{r}" for r in range(chaos.rounds())]


@pytest.fixture(scope="module")
def netlink_shim(tmp_path_factory):
    return netlink_kill.build(str(tmp_path_factory.mktemp("netlink-kill")))


@pytest.mark.parametrize("round_no", range(chaos.rounds()), ids=point_ids())
def test_agent_killed_at_a_point_of_each_stage_completes_when_rerun(round_no, netlink_shim):
    points = kill_points(round_no)
    for stage, kind, value in points:
        writes = Writes()
        with boot_world(round_no) as w, chaos.ZkTap(w, writes) as tap:
            inst = w.instances[0]
            inst.configure(zookeeper_connect=tap.connect)
            what = f"seed {chaos.SEED} round {round_no}: {stage} stage, {kind} {value}"
            with open(inst.properties_path, "rb") as f:
                ami = f.read()
            first = killed_run(w, inst, kind, value, writes, netlink_shim)
            assert first.exit_code == -signal.SIGKILL, f"{what}: not killed\n{first}"
            chaos.no_crash(first)
            with open(inst.properties_path, "rb") as f:
                at_kill = f.read()
            left = temporaries(inst)
            held = {bid: iid for bid, iid in chaos.zk_owners(w).items() if iid == inst.id}
            before = chaos.attached(w.state(), "network_interfaces").get(inst.id, [])
            if kind == "netlink":
                assert len(held) == 1, f"{what}: claims before the kill {held}"
                eni = w.broker_resources(list(held)[0])[0]
                prefix_len = eni_subnet(w, eni).split("/")[1]
                assert netlink_done(inst, eni) == netlink_expected(eni, value, prefix_len), \
                    f"{what}: not killed between two changes"
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
            eni_configured_once(w, inst, w.broker_resources(again.broker_id)[0])
            assert temporaries(inst) == [], f"{what}: left after the kill {left}, now " \
                f"{temporaries(inst)}"
            with open(inst.properties_path, "rb") as f:
                final = f.read()
            assert at_kill in (ami, final), f"{what}: server.properties at the kill:\n" \
                f"{at_kill.decode(errors='replace')}"
            if stage == "properties":
                copy = os.path.join(inst.root, "server.properties.at-kill")
                with open(copy, "wb") as f:
                    f.write(at_kill)
                view = java_view(copy)
                assert view.get("broker.id") == (str(again.broker_id) if at_kill == final
                                                 else None), (what, view)
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
