"""Independent readers for the end-to-end tests: what is true on and for one simulated
instance, read with other tools than the one under test (iproute2, findmnt, java.util.
Properties, kazoo, the fake's own records), and a snapshot of all of it to prove that a
command changed nothing, or exactly one thing.

The effects are never taken from kafka-bootstrap's own account: status.json and
`status --json` are read only where they are what a test checks.
"""
import hashlib
import json
import os
import queue
import subprocess
import threading
import time

from harness import layout
from harness.kafka import vpc_client
from harness.netns import netns_path
from harness.world import World

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOAD_PROPERTIES = os.path.join(TESTS, "properties", "LoadProperties.java")
STAGES = ["identity", "discover", "claim", "eni", "volume", "network", "properties", "signal"]
EC2_MUTATIONS = {"AttachNetworkInterface", "AttachVolume", "DetachNetworkInterface",
                 "DetachVolume"}


def e2e_fixture(brokers, azs, instances=0, extra_roles=None):
    """harness.layout's cluster with two changes. The groups record an Unhealthy instance but
    do not terminate it on the spot (a real group replaces it a while later; the fake would
    kill the agent before it wrote its status file, the very thing a test reads). Every
    stack resource waits for signals, so a FAILURE or SUCCESS is accepted, not refused as
    'not waiting'."""
    fx = layout.cluster_fixture(brokers, azs, instances)
    for group in fx["autoscaling_groups"]:
        group["terminate_unhealthy"] = False
    for resource in fx["stacks"][0]["resources"].values():
        resource["waiting"] = True
        resource["count"] = None
    fx["roles"].update(extra_roles or {})
    return fx


def e2e_world(brokers, azs, instances, extra_roles=None):
    """A World on e2e_fixture whose agents are configured as shipped: SUCCESS comes from
    `signal --wait-registered` (the harness's own default is success_signal=run)."""
    return World(brokers=brokers, azs=azs,
                 fixture=e2e_fixture(brokers, azs, instances, extra_roles),
                 config={"success_signal": None})


# ---- the network, through iproute2 ---------------------------------------------------------

def ip_json(inst, *args):
    return json.loads(inst.sh("ip", "-j", *args) or "[]")


def network(inst):
    """Links, IPv4 addresses, IPv4 routes of every table and the rules, as `ip -j` prints
    them inside the instance's namespace. IPv6 is left out: the kernel's own link-local
    addresses change state (DAD) on their own, and kafka-bootstrap manages IPv4 only."""
    return {"links": ip_json(inst, "link", "show"),
            "addresses": ip_json(inst, "-4", "addr", "show"),
            "routes": ip_json(inst, "-4", "route", "show", "table", "all"),
            "rules": ip_json(inst, "-4", "rule", "show")}


def link_of_mac(inst, mac):
    return next((link for link in ip_json(inst, "link", "show")
                 if link.get("address") == mac.lower()), None)


class NetlinkWatch:
    """Every rtnetlink notification (links, addresses, routes, rules) in the instance's
    namespace while the block runs, read by `ip monitor`: a command that 'replaces' a route
    with an identical one leaves no trace in a snapshot, but it does here. The monitor is
    known to listen once it reported a marker change (an address added to and removed from
    lo, again until it shows: the monitor subscribes some time after it started); a second
    marker closes the window."""

    MARKER = "127.0.0.77/32"

    def __init__(self, inst):
        self.inst = inst
        self.events = []
        self._lines = queue.Queue()

    def _marker(self, timeout=10):
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for verb in ("add", "del"):
                self.inst.sh("ip", "addr", verb, self.MARKER, "dev", "lo")
            retry_at = min(deadline, time.monotonic() + 0.5)
            while (left := retry_at - time.monotonic()) > 0:
                try:
                    line = self._lines.get(timeout=left)
                except queue.Empty:
                    break
                if line is None:
                    raise RuntimeError("ip monitor ended: " + "".join(got))
                got.append(line)
                if line.startswith("Deleted") and self.MARKER in line:
                    return got
        raise RuntimeError(f"ip monitor did not report a change within {timeout} s")

    def __enter__(self):
        self._proc = subprocess.Popen(
            ["nsenter", f"--net={netns_path(self.inst.netns)}", "ip", "-4", "-o", "monitor", "link",
             "address", "route", "rule"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self._marker()
        return self

    def _read(self):
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                got = self._marker()
                self.events = [line.rstrip() for line in got
                               if self.MARKER not in line and "dev lo" not in line]
        finally:
            self._proc.kill()
            self._proc.wait()


# ---- mounts, through findmnt ---------------------------------------------------------------

def mounts(inst):
    """Every mount under the instance's root: findmnt -J, with the mount's ID (a remount
    is a new ID)."""
    out = subprocess.run(["findmnt", "-J", "--list", "-o", "ID,TARGET,SOURCE,FSTYPE,OPTIONS"],
                         capture_output=True, text=True, check=True).stdout
    return [m for m in json.loads(out)["filesystems"]
            if m["target"] == inst.root or m["target"].startswith(inst.root + "/")]


def mount_at(inst, target):
    return next((m for m in mounts(inst) if m["target"] == target), None)


# ---- server.properties, through java.util.Properties ----------------------------------------

def java_properties(path):
    """The file as Kafka loads it: java.util.Properties (tests/properties/LoadProperties.java
    prints each key and value, non-ASCII escaped)."""
    out = subprocess.run(["java", LOAD_PROPERTIES, path], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    view = {}
    for line in out.splitlines():
        key, value = line.split("\t")
        view[key.encode().decode("unicode_escape")] = value.encode().decode("unicode_escape")
    return view


def file_facts(path):
    """Bytes, inode and mtime of a file, or None when it does not exist."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return {"sha256": hashlib.sha256(data).hexdigest(), "inode": st.st_ino,
            "mtime_ns": st.st_mtime_ns, "size": st.st_size}


# ---- ZooKeeper, through kazoo --------------------------------------------------------------

def zk_tree(world, roots=("/kafka-bootstrap", "/brokers")):
    """{path: (data, czxid, mzxid, pzxid, version, cversion, ephemeral owner)} of every node
    under the roots: any create, set or delete shows as a changed entry."""
    zk = vpc_client(world)
    try:
        tree = {}

        def walk(path):
            if zk.exists(path) is None:
                return
            data, st = zk.get(path)
            tree[path] = ((data or b"").decode(errors="replace"), st.czxid, st.mzxid, st.pzxid,
                          st.version, st.cversion, st.ephemeralOwner)
            for child in sorted(zk.get_children(path)):
                walk(f"{path}/{child}")
        for root in roots:
            walk(root)
        return tree
    finally:
        zk.stop()
        zk.close()


def claim_nodes(world, inst):
    """(claim JSON, index node text) of the instance, read from ZooKeeper; None for absent."""
    tree = zk_tree(world, (f"/kafka-bootstrap/{world.cluster}",))
    index = tree.get(f"/kafka-bootstrap/{world.cluster}/instances/{inst.id}")
    claim = None
    if index is not None:
        node = tree.get(f"/kafka-bootstrap/{world.cluster}/claims/{index[0].strip()}")
        claim = json.loads(node[0]) if node else None
    return claim, index[0] if index else None


# ---- the fake's state and records ----------------------------------------------------------

def attachments(world):
    """Who holds each ENI and volume, as EC2 (the fake) says."""
    state = world.state()
    return {
        "enis": {e["id"]: e.get("attachment") for e in state["network_interfaces"].values()},
        "volumes": {v["id"]: v.get("attachment") for v in state["volumes"].values()},
        "instances": {i["id"]: i["state"] for i in state["instances"].values()},
    }


def actions(records, service=None):
    return [r["action"] for r in records if service in (None, r["service"])]


def mutations(records):
    """The EC2 calls of a run that would change something (dry runs excluded)."""
    return [r for r in records if r["service"] == "ec2" and r["action"] in EC2_MUTATIONS
            and not r.get("dry_run")]


def signals_of(world, inst):
    return [s["status"] for s in world.signals() if s["unique_id"] == inst.id]


def health_calls_of(world, inst):
    return [(c["action"], c["params"].get("HealthStatus"))
            for c in world.fake.autoscaling_calls() if c["params"].get("InstanceId") == inst.id]


# ---- all of it ------------------------------------------------------------------------------

def snapshot(world, inst):
    """Everything a command could change on or for the instance, read independently."""
    return {"zookeeper": zk_tree(world), "ec2": attachments(world), "network": network(inst),
            "mounts": mounts(inst), "server.properties": file_facts(inst.properties_path),
            "status.json": file_facts(inst.status_path)}


def status_json(inst):
    """`kafka-bootstrap status --json`, run in the instance with its configuration."""
    r = inst.run(["status", "--json"])
    assert r.exit_code == 0, r
    return json.loads(r.stdout)


def without_status(snap):
    """A snapshot less status.json, which every run rewrites (it is that run's report)."""
    return {k: v for k, v in snap.items() if k != "status.json"}


def stage_outcomes(result):
    return {s["name"]: s["outcome"] for s in (result.status or {}).get("stages", [])}
