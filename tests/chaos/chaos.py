"""What the chaos tests share: how long and with which seed they run, the world they build,
the independent readers (kazoo for ZooKeeper, the fake's own state and records for EC2, the
kernel's mount table) and the checks every scenario ends with.

Rounds and seed come from the environment, so CI runs a short, reproducible round and a
person can run a long one (tests/chaos/README.md):
    KB_CHAOS_ROUNDS   rounds per scenario (default 1; some scenarios run more, see each file)
    KB_CHAOS_SEED     the base seed (default 1): layouts, instance ids and kill points derive
                      from it, and every failure message names it
"""
import json
import os
import random
import re

from harness import blockdev, layout
from harness.claimers import Reader
from harness.tcpproxy import TcpProxy
from harness.world import World, default_binary

SEED = int(os.environ.get("KB_CHAOS_SEED", "1"))
ROUNDS = max(1, int(os.environ.get("KB_CHAOS_ROUNDS", "1")))
STAGES = ["identity", "discover", "claim", "eni", "volume", "network", "properties", "signal"]
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                       r"runtime error:|ThreadSanitizer")

# Short deadlines for the scenarios that wait for something that never comes: a stage gives
# up after a few seconds, run retries it (a dependency that did not answer may come back)
# and tells the failure once deadline_s is near.
SHORT_DEADLINES = {"deadline_s": 8, **{f"{s}_deadline_s": 3 for s in STAGES}}
SLACK_S = 3  # start-up, the signal stage, a loaded CI machine


def failed_by_the_deadline(r, stage, words):
    """Exit 69 once the run's deadline came, the stage retried until then, each attempt
    within the stage's own deadline."""
    assert r.exit_code == 69, r
    failed = r.stage(stage)
    assert failed and failed["outcome"] == "failed", r
    assert words in failed["error"], failed
    assert failed["duration_ms"] <= SHORT_DEADLINES[f"{stage}_deadline_s"] * 1000 + 500
    assert f"stage {stage} failed (exit 69 UNAVAILABLE)" in r.stderr and "retrying it" in \
        r.stderr, r
    assert r.wall_s < SHORT_DEADLINES["deadline_s"] + SLACK_S, r


def rounds(ci_default=1):
    """Rounds of a scenario: KB_CHAOS_ROUNDS when set, else the scenario's CI default."""
    return ROUNDS if "KB_CHAOS_ROUNDS" in os.environ else ci_default


def rng(*parts):
    """A random generator for one decision of one scenario, derived from the base seed."""
    return random.Random(":".join(map(str, (SEED,) + parts)))


def fixture(brokers, azs, instances=None, seed=0, terminate_unhealthy=True, **kw):
    """harness.layout's cluster with IMDS tags on (as the stack's launch template has them:
    the agent finds its stack and group without ec2:DescribeTags)."""
    fx = layout.cluster_fixture(brokers, azs, instances, seed=seed, **kw)
    for inst in fx["instances"]:
        inst["metadata_tags"] = True
    for group in fx["autoscaling_groups"]:
        group["terminate_unhealthy"] = terminate_unhealthy
    return fx


def world(brokers=3, azs=3, instances=None, seed=0, config=None, terminate_unhealthy=True,
          delays=None, imds=None, **kw):
    """A World over fixture() (delays and imds: its sections); other kwargs go to World."""
    fx = fixture(brokers, azs, instances, seed=seed, terminate_unhealthy=terminate_unhealthy,
                 delays=delays, imds=imds)
    return World(brokers=brokers, fixture=fx, seed=seed, config=config,
                 binary=default_binary(), **kw)


def launch(w, az):
    """A replacement instance in `az`, as its Auto Scaling group launches one."""
    return w.launch(az=az, metadata_tags=True)


# ---- readers ---------------------------------------------------------------------------

def zk_owners(w):
    """{broker id: instance id} as ZooKeeper holds it, read by kazoo from inside the VPC;
    asserts that every claim and owner index agree (harness.claimers.Reader)."""
    def read():
        with Reader(w.zookeeper_connect, cluster=w.cluster) as r:
            return r.check_consistent()
    return w.in_vpc(read)


def zk_claims(w):
    """{broker id: (claim record, ZnodeStat)}."""
    def read():
        with Reader(w.zookeeper_connect, cluster=w.cluster) as r:
            return r.claims()
    return w.in_vpc(read)


def broker_tag(resource):
    name = (resource.get("tags") or {}).get("Name", "")
    return int(name[len("KAFKA-"):]) if re.fullmatch(r"KAFKA-\d+", name) else None


def attached(state, kind):
    """{instance id: [(broker id, resource id, attachment status)]} of tagged ENIs or volumes
    ("network_interfaces", "volumes") EC2 says are attached."""
    out = {}
    for res in state[kind].values():
        att = res.get("attachment")
        bid = broker_tag(res)
        if att and bid is not None:
            out.setdefault(att["instance_id"], []).append((bid, res["id"], att["status"]))
    return out


def successful_attaches(records):
    """{(action, resource id, instance id): count} of attaches EC2 carried out (not DryRun)."""
    out = {}
    for r in records:
        if r["action"] in ("AttachNetworkInterface", "AttachVolume") and r["http_status"] == 200 \
                and not r["dry_run"]:
            rid = r["params"].get("NetworkInterfaceId") or r["params"].get("VolumeId")
            key = (r["action"], rid, r["params"].get("InstanceId"))
            out[key] = out.get(key, 0) + 1
    return out


def requests_by_stage(result):
    """{stage: [request numbers, 1-based, in the agent's order]} of a run made with
    log_level debug: every request it sends logs one "attempt" line after "stage X:
    start" (its records in the fake come in the same order)."""
    stage, n, out = None, 0, {}
    for line in result.stderr.splitlines():
        m = re.search(r" debug (?:stage (\w+): start|(?:imds|aws): .* attempt \d)", line)
        if m and m.group(1):
            stage = m.group(1)
        elif m:
            n += 1
            out.setdefault(stage, []).append(n)
    assert n == len(result.records), \
        f"{n} requests in the log, {len(result.records)} recorded by the fake\n{result}"
    return out


# ---- checks ------------------------------------------------------------------------------

def no_crash(result):
    """The agent ended by itself with an exit code (no signal death) and no sanitizer
    report; a run the harness killed on purpose is exempt from the first."""
    assert not SANITIZER.search(result.stderr), f"sanitizer report:\n{result}"
    if not result.killed:
        assert result.exit_code is not None and result.exit_code >= 0, f"died: {result}"


def check_world(w, results=()):
    """What must hold after any scenario, read from ZooKeeper, EC2's state, the instances'
    mount tables and status files:
    - claims and owner indexes agree, and every agent that exited 0 is the owner of the id
      it reports; no two of them report one id;
    - every tagged ENI or volume attached to an instance belongs to the id that instance
      holds; no instance has two, and its ENI and volume carry one id;
    - no volume is mounted twice.
    Returns {broker id: instance id}."""
    owners = zk_owners(w)
    by_instance = {iid: bid for bid, iid in owners.items()}
    ok = [r for r in results if r.exit_code == 0]
    reported = [r.broker_id for r in ok]
    assert len(reported) == len(set(reported)), f"one id reported twice: {sorted(reported)}"
    for r in ok:
        assert owners.get(r.broker_id) == r.instance_id, \
            f"{r.instance_id} reports broker {r.broker_id}; ZooKeeper says {owners}"
    state = w.state()
    for kind in ("network_interfaces", "volumes"):
        for iid, held in attached(state, kind).items():
            assert len(held) == 1, f"{iid} has two tagged {kind}: {held}"
            bid = held[0][0]
            live = state["instances"].get(iid, {}).get("state") not in ("terminated", None)
            if live:
                assert by_instance.get(iid) == bid, \
                    f"{iid} holds {kind} of broker {bid} but its claim is {by_instance.get(iid)}"
    enis, vols = attached(state, "network_interfaces"), attached(state, "volumes")
    for iid in set(enis) & set(vols):
        assert enis[iid][0][0] == vols[iid][0][0], f"{iid}: ENI and volume of two ids"
    for inst in w.live_instances():
        assert len(inst.enis) <= 1, f"{inst.id} has {len(inst.enis)} ENIs plugged"
        for vid, entry in list(inst.volumes.items()):
            mounts = blockdev.mounts_of(entry["loop"])
            assert len(mounts) <= 1, f"{vid} mounted {len(mounts)} times: {mounts}"
    assert w.fake.errors() == [], w.fake.errors()
    assert w.errors == [], w.errors
    return owners


def untouched(inst, before_properties=None):
    """Nothing of the broker reached the instance: no ENI or volume plugged, nothing
    mounted, no mkfs, server.properties as the AMI had it."""
    assert inst.enis == {}, f"{inst.id}: ENI plugged: {inst.enis}"
    assert inst.volumes == {}, f"{inst.id}: volume plugged: {inst.volumes}"
    assert not blockdev.mounts_under(inst.root), f"{inst.id}: something is mounted"
    assert inst.mkfs_calls() == [], f"{inst.id}: mkfs ran: {inst.mkfs_calls()}"
    props = inst.properties()
    assert props is not None and "broker.id" not in props, f"{inst.id}: properties {props}"
    if before_properties is not None:
        assert props == before_properties


def signals_of(w, iid):
    """[(status, error code)] of every SignalResource of an instance that reached the API."""
    return [(s["status"], s["error_code"]) for s in w.signals() if s["unique_id"] == iid]


def health_calls(w, iid):
    return [c["params"].get("HealthStatus") for c in w.fake.autoscaling_calls()
            if c["action"] == "SetInstanceHealth" and c["params"].get("InstanceId") == iid]


def failure_told(w, iid):
    """The failure path of the signal stage reached CloudFormation and Auto Scaling."""
    assert "FAILURE" in [s for s, _ in signals_of(w, iid)], \
        f"no FAILURE from {iid}: {signals_of(w, iid)}"
    assert "Unhealthy" in health_calls(w, iid), f"no Unhealthy from {iid}"
    assert "SUCCESS" not in [s for s, _ in signals_of(w, iid)]


def on_request(fn):
    """A kill_when for Instance.start that never kills: fn(record) sees every request of
    the agent's instance on the fake's thread, before its answer is written (to change the
    fake's faults at an exact point of the agent's sequence)."""
    def watch(record):
        fn(record)
        return False
    return watch


def write_proof(inst, name="chaos-proof.bin", size=1 << 20, seed=0):
    """Writes seeded random bytes to the instance's mounted volume, synced; returns the
    file's SHA-256."""
    import hashlib
    data = random.Random(f"{SEED}:{seed}:proof").randbytes(size)
    path = os.path.join(inst.mount_point, name)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def read_proof(inst, name="chaos-proof.bin"):
    import hashlib
    with open(os.path.join(inst.mount_point, name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class ZkTap(TcpProxy):
    """A proxy in front of the world's ZooKeeper, listening in the VPC: on_write(op) runs
    on every successful create, set or multi reply before it is forwarded (op: ZooKeeper's
    request type, 14 for multi); returning True swallows the reply and closes the
    connection, as if the server had died right after committing."""

    def __init__(self, w, on_write=None):
        super().__init__(w.services_ip, 2181, listen_host=w.services_ip, on_write=on_write)
        self.world = w

    def __enter__(self):
        # The proxy's thread inherits the namespace of the thread that starts it.
        self.world.in_vpc(self.start)
        return self

    @property
    def connect(self):
        return f"{self.world.services_ip}:{self.port}"


def dump(results):
    return "\n".join(str(r) for r in results)


def failure_text(result):
    """The run's error and every failed stage's, as status.json has them."""
    status = result.status or {}
    return "\n".join([status.get("error") or ""] + [
        s.get("error") or "" for s in status.get("stages", []) if s["outcome"] == "failed"])


def config_json(inst):
    with open(inst.config_path) as f:
        return json.load(f)
