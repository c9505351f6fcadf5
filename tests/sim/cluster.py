"""The simulated cluster: what the README's main command shows (tests/sim/cluster installs,
builds, then runs this).

It starts ZooKeeper and the fake AWS endpoint in a simulated VPC, boots N instances at the
same moment, each running `kafka-bootstrap run` as shipped, and prints what each got: broker
id, ENI and IP, device and mount, the time of each stage. `run` sends no SUCCESS: healthy
means Kafka registered. So, as kafka-bootstrap-signal.service does after kafka.service,
every instance then runs `kafka-bootstrap signal --wait-registered`, and a stand-in for
Kafka (harness.kafka) registers each broker in ZooKeeper, one after the other: the timeline
shows each SUCCESS reaching CloudFormation after its broker registered. Then it replaces
broker 0: writes a file to its volume, terminates its instance (its Kafka registration goes
with it), boots a new one in the same AZ, and checks that it came back as broker 0 with the
same IP and the same data, and signalled once Kafka registered again.

Every fact printed is read from the system or the fake, not from the agent's own report
(except the stage timings): the ENI's attachment from EC2's state, the address from the
instance's namespace, the mount from the mount table, the claim from ZooKeeper.

Exit status: 0 when every check passed, 1 when one failed, 130 when interrupted. The world
is torn down in every case (harness.world).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.kafka import StandInKafka  # noqa: E402
from harness.netns import addresses  # noqa: E402
from harness.world import World, default_binary  # noqa: E402

STAGES = ["identity", "discover", "claim", "eni", "volume", "network", "properties", "signal"]
OUTCOME = {"ok": "", "changed": "", "skipped": " skip", "failed": " FAIL"}
PROOF = "kafka-bootstrap-sim.txt"
REGISTER_EVERY_S = 0.3   # the stand-in Kafka registers one broker after the other
# As shipped (SUCCESS from `signal --wait-registered`), but a registration that never comes
# fails the demo in seconds, not in the default 10 minutes.
CONFIG = {"success_signal": None, "register_deadline_s": 20}


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, ok, what, why=""):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}{'' if ok or not why else ': ' + why}")
        self.failed += not ok
        return ok


def short(s, n=12):
    return s if s is None or len(s) <= n else s[:n] + "…"


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def attached(state, inst):
    """(ENI, volume) EC2 says are attached to the instance, apart from its own root ones."""
    eni = next((e for e in state["network_interfaces"].values()
                if (e.get("attachment") or {}).get("instance_id") == inst.id
                and not e.get("primary")), None)
    vol = next((v for v in state["volumes"].values()
                if (v.get("attachment") or {}).get("instance_id") == inst.id
                and not v.get("root")), None)
    return eni, vol


def facts(world, inst):
    """What is true on and for an instance, read from the system and the fake."""
    state = world.state()
    eni, vol = attached(state, inst)
    out = {"eni": eni, "volume": vol, "ip": None, "device": None, "mount": None, "fstype": None}
    if eni and not inst.gone:
        link = inst.link_by_mac(eni["mac"])
        if link:
            addrs = addresses(inst.netns, link["ifname"])
            out["ip"] = f"{link['ifname']} {addrs[0] if addrs else '(no address)'}"
    entry = vol and inst.volumes.get(vol["id"])
    if entry:
        out["device"] = entry["loop"]
        found = subprocess.run(["findmnt", "-n", "-r", "-o", "TARGET,FSTYPE", "-S",
                                entry["loop"]], capture_output=True, text=True).stdout.split()
        if found:
            out["mount"] = found[0]
            out["fstype"] = found[1]
    return out


def in_instance(inst, path):
    """A host path inside an instance's root, as the instance sees it."""
    return "/" + os.path.relpath(path, inst.root) if path and path.startswith(inst.root) else path


def zookeeper_claims(world):
    """{broker id: instance id} from ZooKeeper itself (kazoo, from inside the VPC)."""
    try:
        from kazoo.client import KazooClient
    except ImportError:
        return None

    def read():
        zk = KazooClient(hosts=world.zookeeper_connect, timeout=5)
        zk.start(timeout=5)
        try:
            base = f"/kafka-bootstrap/{world.cluster}/claims"
            if not zk.exists(base):
                return {}
            claims = {}
            for child in zk.get_children(base):
                data, _ = zk.get(f"{base}/{child}")
                try:
                    claims[child] = json.loads(data).get("instance_id")
                except ValueError:
                    claims[child] = "(unreadable)"
            return claims
        finally:
            zk.stop()
            zk.close()
    try:
        return world.in_vpc(read)
    except Exception as exc:  # noqa: BLE001 - a report, not a check
        return f"unreadable: {exc}"


def report_boot(world, results):
    rows, timing_rows = [], []
    for inst, r in zip(world.instances, results):
        f = facts(world, inst)
        rows.append([inst.id, inst.az, r.exit_code, "-" if r.broker_id is None else r.broker_id,
                     f["eni"]["id"] if f["eni"] else "-", f["ip"] or "-",
                     f"{f['device']} ({short(f['volume']['id'])})" if f["device"] else "-",
                     f"{in_instance(inst, f['mount'])} {f['fstype']}" if f["mount"] else "-"])
        stages = {s["name"]: s for s in (r.status or {}).get("stages", [])}
        cells = []
        for name in STAGES:
            s = stages.get(name)
            cells.append("-" if s is None else
                         f"{s.get('duration_ms', 0)}{OUTCOME.get(s.get('outcome'), '?')}")
        timing_rows.append([inst.id] + cells + [f"{r.wall_s * 1000:.0f}",
                                                f"{r.cpu_s * 1000:.0f}",
                                                f"{r.maxrss_kb / 1024:.1f}",
                                                r.calls("imds"), r.calls("ec2")])
    print("\nWhat each instance got (EC2's state, the instance's own links and mounts):")
    table(rows, ["instance", "az", "exit", "broker", "eni", "address", "device", "mount"])
    print("\nStage times in ms (as the agent reports them), then the whole run as measured here:")
    table(timing_rows, ["instance"] + STAGES + ["wall", "cpu", "rss MB", "imds", "ec2"])
    for inst, r in zip(world.instances, results):
        if r.exit_code != 0:
            last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"  {inst.id} exit {r.exit_code}: {last}")
    claims = zookeeper_claims(world)
    if claims is not None:
        print("\nZooKeeper claims:", ", ".join(f"{k} -> {v}" for k, v in sorted(claims.items()))
              if isinstance(claims, dict) and claims else f"{claims or 'none'}")


def print_signals(world):
    print("\nCloudFormation signals received:")
    sigs = world.signals()
    for s in sigs:
        print(f"  {s['logical_id']:<10} {s['unique_id']}  {s['status']:<7} "
              f"{s['error_code'] or 'accepted'}")
    if not sigs:
        print("  none")


def boot_checks(world, results, checks):
    print("\nChecks after the boot:")
    ids = [r.broker_id for r in results]
    checks.check(all(r.exit_code == 0 for r in results), "every agent exited 0",
                 ", ".join(f"{r.instance_id}: {r.exit_code}" for r in results if r.exit_code))
    checks.check(sorted(i for i in ids if i is not None) == list(range(world.brokers)),
                 f"brokers 0..{world.brokers - 1} claimed once each", f"claimed: {ids}")
    state = world.state()
    for inst in world.instances:
        eni, vol = attached(state, inst)
        checks.check(eni is not None and vol is not None and
                     eni["tags"]["Name"] == vol["tags"]["Name"],
                     f"{inst.id} holds the ENI and volume of one broker",
                     f"ENI {eni and eni['tags'].get('Name')}, volume "
                     f"{vol and vol['tags'].get('Name')}")
    early = [s["unique_id"] for s in world.signals() if s["status"] == "SUCCESS"]
    checks.check(not early, "no SUCCESS yet: Kafka has not registered",
                 f"sent by {', '.join(early)}")


def advertised(inst):
    """(broker id, advertised endpoints) as Kafka would read them from server.properties
    (advertised.listeners, else listeners); (None, None) before a broker id is written."""
    props = inst.properties() or {}
    try:
        broker_id = int(props.get("broker.id", ""))
    except ValueError:
        return None, None
    return broker_id, props.get("advertised.listeners") or props.get("listeners")


def register_brokers(kafka, instances):
    """The stand-in Kafka registers each instance's broker, one after the other; returns
    the timeline entries [(time, text)]."""
    events = []
    for inst in instances:
        broker_id, listeners = advertised(inst)
        if broker_id is None or not listeners:
            print(f"  {inst.id}: no broker.id and listeners in server.properties: Kafka "
                  "would not start, nothing registers")
            continue
        time.sleep(REGISTER_EVERY_S)
        kafka.register(broker_id, listeners, rack=(inst.properties() or {}).get("broker.rack"))
        events.append((kafka.registered_at[broker_id],
                       f"Kafka registered broker {broker_id} ({listeners}) on {inst.id}"))
    return events


def wait_registered_and_signal(world, kafka, instances, timeout):
    """`signal --wait-registered` on each instance, started before Kafka registers, as the
    shipped unit is once kafka.service started; prints the registrations and the signals in
    the order they happened. Returns (results, {instance id: its SUCCESS signal})."""
    who = "1 instance runs" if len(instances) == 1 else f"{len(instances)} instances run"
    print(f"\nSUCCESS waits for Kafka: {who} `kafka-bootstrap signal --wait-registered`; a "
          f"stand-in Kafka registers one broker every {REGISTER_EVERY_S} s:")
    already = len(world.signals())  # the fake appends them in arrival order
    gate, agents = world.start_agents(instances, args=("signal", "--wait-registered"))
    t0 = time.time()
    gate.open()
    try:
        events = register_brokers(kafka, instances)
        results = [a.wait(timeout) for a in agents]
    finally:
        gate.close()
    signals = world.signals()[already:]
    by_instance = {s["unique_id"]: s for s in signals if s["status"] == "SUCCESS"}
    for s in signals:
        events.append((s["time"], f"{s['status']} from {s['unique_id']} reached "
                                  f"{s['logical_id']}: {s['error_code'] or 'accepted'}"))
    for when, text in sorted(events):
        print(f"  +{when - t0:5.2f} s  {text}")
    for inst, r in zip(instances, results):
        if r.exit_code != 0:
            print(f"  {inst.id}: signal exit {r.exit_code}: "
                  f"{(r.stderr.strip().splitlines() or ['(no output)'])[-1]}")
    return results, by_instance


def signal_checks(kafka, instances, results, by_instance, checks):
    print("\nChecks after Kafka registered:")
    checks.check(all(r.exit_code == 0 for r in results), "every signal agent exited 0",
                 ", ".join(f"{r.instance_id}: {r.exit_code}" for r in results if r.exit_code))
    checks.check(set(by_instance) == {i.id for i in instances},
                 "every instance signalled SUCCESS", f"{len(by_instance)} of {len(instances)}")
    early = []
    for inst in instances:
        broker_id, _ = advertised(inst)
        sent = by_instance.get(inst.id)
        registered = kafka.registered_at.get(broker_id)
        if sent and (registered is None or sent["time"] < registered):
            early.append(inst.id)
    checks.check(not early, "each SUCCESS after its broker's registration",
                 f"before it: {', '.join(early)}")


def holder_of(world, broker_id):
    eni, _ = world.broker_resources(broker_id)
    att = (eni or {}).get("attachment") or {}
    return next((i for i in world.live_instances() if i.id == att.get("instance_id")), None), eni


def replace(world, kafka, broker_id, checks, timeout):
    print(f"\nReplacing broker {broker_id}:")
    old, eni = holder_of(world, broker_id)
    if old is None:
        old = next(i for i in world.live_instances() if i.az == eni["az"])
        print(f"  no instance holds broker {broker_id}'s ENI; terminating {old.id} of its AZ "
              "anyway")
    before = facts(world, old)
    proof = None
    if before["mount"]:
        proof = f"broker {broker_id} data written through {old.id} at {time.ctime()}\n"
        with open(os.path.join(before["mount"], PROOF), "w") as f:
            f.write(proof)
            f.flush()
            os.fsync(f.fileno())
        print(f"  wrote {in_instance(old, before['mount'])}/{PROOF} on {old.id}")
    else:
        print(f"  {old.id} has no volume mounted: no file written")
    t0 = time.monotonic()
    world.terminate(old)
    if broker_id in kafka.registered_at:
        kafka.unregister(broker_id)  # its Kafka died with it: the session, the ephemeral node
    print(f"  terminated {old.id} in {time.monotonic() - t0:.1f} s (agent killed, ENI and volume "
          "detached by EC2, Kafka's registration gone)")
    new = world.launch(az=old.az)
    print(f"  launched {new.id} in {new.az}; running kafka-bootstrap")
    r = new.run(timeout=timeout)
    after = facts(world, new)
    print(f"  {new.id}: exit {r.exit_code}, broker {r.broker_id}, "
          f"eni {after['eni'] and after['eni']['id']}, address {after['ip']}, "
          f"mount {in_instance(new, after['mount'])} in {r.wall_s * 1000:.0f} ms")
    stages = (r.status or {}).get("stages", [])
    if stages:
        print("  stages: " + ", ".join(f"{s['name']} {s.get('duration_ms', 0)}"
                                       f"{OUTCOME.get(s.get('outcome'), '?')}" for s in stages))
    if r.exit_code != 0:
        print("  " + (r.stderr.strip().splitlines() or ["(no output)"])[-1])
    checks.check(r.broker_id == broker_id, f"the replacement is broker {broker_id}",
                 f"it is {r.broker_id}")
    checks.check(before["ip"] is not None and after["ip"] == before["ip"],
                 "with the same ENI address", f"before {before['ip']}, after {after['ip']}")
    data = None
    if after["mount"]:
        try:
            with open(os.path.join(after["mount"], PROOF)) as f:
                data = f.read()
        except OSError:
            pass
    checks.check(proof is not None and data == proof, "and the same data on its volume",
                 "no file was written before" if proof is None else f"read back {data!r}")
    if r.exit_code != 0:
        return
    results, by_instance = wait_registered_and_signal(world, kafka, [new], timeout)
    checks.check(results[0].exit_code == 0 and new.id in by_instance,
                 "the replacement signalled SUCCESS once Kafka registered again "
                 "(the stack no longer waits: not a failure)",
                 f"signal exit {results[0].exit_code}")


def main(argv=None):
    p = argparse.ArgumentParser(description="Boot a simulated kafka-bootstrap cluster.")
    p.add_argument("--brokers", type=int, default=3)
    p.add_argument("--azs", type=int, default=3)
    p.add_argument("--binary", default=default_binary())
    p.add_argument("--filesystem", default="xfs", choices=["xfs", "ext4"])
    p.add_argument("--volume-style", default="nitro")
    p.add_argument("--timeout", type=float, default=120, help="seconds per boot")
    p.add_argument("--no-replace", action="store_true", help="stop after the first boot")
    a = p.parse_args(argv)
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"no kafka-bootstrap at {a.binary} (build it first, or pass --binary)")
    checks = Checks()
    t0 = time.monotonic()
    try:
        with World(brokers=a.brokers, azs=a.azs, binary=a.binary, filesystem=a.filesystem,
                   volume_style=a.volume_style, config=CONFIG) as world, \
                StandInKafka(world) as kafka:
            azs = sorted({s["az"] for s in world.fixture["subnets"]})
            print(f"Simulated cluster: {a.brokers} brokers over {a.azs} AZs ({' '.join(azs)}), "
                  f"cluster '{world.cluster}', up in {world.timings['start_s']:.1f} s")
            print(f"  VPC namespace {world.vpc}: ZooKeeper {world.zookeeper_connect}, "
                  f"EC2 {world.endpoints['ec2']}, IMDS {world.endpoints['imds']}")
            print(f"\nBooting {len(world.instances)} instances at the same moment: "
                  "kafka-bootstrap run")
            results = world.boot(timeout=a.timeout)
            report_boot(world, results)
            boot_checks(world, results, checks)
            booted = [i for i, r in zip(world.instances, results) if r.exit_code == 0]
            signalled, by_instance = wait_registered_and_signal(world, kafka, booted, a.timeout)
            signal_checks(kafka, world.instances, signalled, by_instance, checks)
            if not a.no_replace:
                replace(world, kafka, 0, checks, a.timeout)
            print_signals(world)
            print("\nTearing down (namespaces, loop devices, mounts, processes)...")
    except KeyboardInterrupt:
        print("\ninterrupted: the simulated world was torn down", file=sys.stderr)
        return 130
    print(f"Done in {time.monotonic() - t0:.1f} s: "
          f"{'all checks passed' if not checks.failed else f'{checks.failed} check(s) failed'}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
