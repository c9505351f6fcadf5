"""Claimers started together, and an independent reader of what they left in ZooKeeper.

The claimers are tests/tools/claimer.c (the product's claim module with candidates and owner
states from the command line). Each connects, prints "ready" and blocks opening a FIFO for
reading; once every one is ready the FIFO is opened for writing, which releases them all at
once (open(2) of a FIFO returns in every reader when a writer appears). The write end stays
open until they are done, so a claimer that reaches open() late is not left behind.

The reader is kazoo (Debian's python3-kazoo), a different client from a different project:
it sees the nodes as ZooKeeper stores them, not as our C code thinks it wrote them.
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import warnings

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError


def claimer_path():
    build = os.environ.get("KB_BINARY_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")
    path = os.path.join(build, "tools", "claimer")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path}: build the project first (cmake --build)")
    return path


class Claimers:
    """Runs claimers and collects their JSON results; cleans up its temporary directory."""

    def __init__(self, connect, candidates, common_args=(), timeout=120.0):
        self.connect = connect
        self.candidates = candidates  # "0-31"
        self.common_args = list(common_args)
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix=f"kb-claimers-{os.getpid()}-")
        self.fifo = os.path.join(self.dir, "barrier")
        os.mkfifo(self.fifo)
        self.barrier_released_at = None  # time.monotonic(), same clock as done_mono_ms

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, instance, extra=(), candidates=None):
        return [claimer_path(), "--connect", self.connect, "--instance", instance,
                "--candidates", candidates or self.candidates, *self.common_args, *extra]

    def run_one(self, instance, extra=(), candidates=None, env=None):
        """One claimer, no barrier, in env (default: ours). Returns (result dict,
        stdout+stderr text)."""
        proc = subprocess.run(self.command(instance, extra, candidates), capture_output=True,
                              text=True, timeout=self.timeout, env=env)
        return _result(proc.returncode, proc.stdout, proc.stderr)

    def start_one(self, instance, extra=(), candidates=None):
        """One claimer in the background; finish it with finish()."""
        return subprocess.Popen(self.command(instance, extra, candidates),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc):
        out, err = proc.communicate(timeout=self.timeout)
        return _result(proc.returncode, out, err)[0]

    def hold(self, owners):
        """Makes each instance of {broker id: instance} claim exactly that id."""
        for bid, inst in owners.items():
            result, text = self.run_one(inst, candidates=str(bid))
            assert result["returncode"] == 0 and result["broker_id"] == bid, text

    def run_together(self, instances, extra=(), per_instance=None, before_release=None):
        """Starts one claimer per instance behind the barrier, releases them together and
        returns their results in the order of instances. before_release() runs once all
        are connected."""
        procs = []
        logs = []
        writer = None
        try:
            for inst in instances:
                args = list(extra) + list((per_instance or {}).get(inst, ()))
                log = open(os.path.join(self.dir, f"{inst}.log"), "w+")
                logs.append(log)
                procs.append(subprocess.Popen(
                    self.command(inst, ["--barrier", self.fifo] + args),
                    stdout=subprocess.PIPE, stderr=log, text=True))
            early = {}
            for i, p in enumerate(procs):
                line = p.stdout.readline()
                if line.strip() != "ready":
                    early[i] = line  # failed before the barrier: its result line
            if before_release:
                before_release()
            self.barrier_released_at = time.monotonic()
            writer = os.open(self.fifo, os.O_WRONLY)
            results = []
            for i, p in enumerate(procs):
                out, _ = p.communicate(timeout=self.timeout)
                logs[i].seek(0)
                results.append(_result(p.returncode, early.get(i, "") + out,
                                       logs[i].read())[0])
            return results
        finally:
            if writer is not None:
                os.close(writer)
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()


def _result(returncode, stdout, stderr):
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    result = json.loads(lines[-1]) if lines else {"error": "no result line"}
    result["returncode"] = returncode
    result["stderr"] = stderr
    return result, stdout + stderr


class Reader:
    """kazoo, chrooted like the claimers, for the checks after each test."""

    def __init__(self, connect, cluster="default", auth=None):
        self.client = KazooClient(hosts=connect, timeout=10,
                                  auth_data=[("digest", auth)] if auth else None)
        self.base = f"/kafka-bootstrap/{cluster}"

    def __enter__(self):
        with warnings.catch_warnings():
            # A chroot nobody created yet is a fine answer here ("no claims").
            warnings.filterwarnings("ignore", "No chroot path exists")
            self.client.start(timeout=15)
        return self

    def __exit__(self, *exc):
        self.client.stop()
        self.client.close()

    def claims(self):
        """{broker id: (record dict, ZnodeStat)}"""
        out = {}
        try:
            names = self.client.get_children(f"{self.base}/claims")
        except NoNodeError:
            return out
        for name in names:
            data, stat = self.client.get(f"{self.base}/claims/{name}")
            out[int(name)] = (json.loads(data), stat)
        return out

    def instances(self):
        """{instance id: (broker id, ZnodeStat)}"""
        out = {}
        try:
            names = self.client.get_children(f"{self.base}/instances")
        except NoNodeError:
            return out
        for name in names:
            data, stat = self.client.get(f"{self.base}/instances/{name}")
            out[name] = (int(data), stat)
        return out

    def check_consistent(self):
        """Every claim has its owner's index and every index its claim; returns
        {broker id: instance id}."""
        claims = self.claims()
        instances = self.instances()
        owners = {}
        for bid, (record, _) in claims.items():
            assert record["version"] == 1 and record["broker_id"] == bid, record
            inst = record["instance_id"]
            assert inst in instances, f"claim {bid} names {inst}, which has no index"
            assert instances[inst][0] == bid, \
                f"claim {bid} names {inst}, whose index says {instances[inst][0]}"
            owners[bid] = inst
        for inst, (bid, _) in instances.items():
            assert bid in claims and claims[bid][0]["instance_id"] == inst, \
                f"index of {inst} says {bid}, but the claim says otherwise"
        return owners


def check_race(results, ids, claimers):
    """What a race of `claimers` claimers for `ids` ids must end with: min(ids, claimers)
    distinct ids, each reported by exactly one claimer, the rest exit 10 (no id)."""
    winners = [r for r in results if r["returncode"] == 0]
    losers = [r for r in results if r["returncode"] != 0]
    got = [r["broker_id"] for r in winners]
    dupes = sorted({b for b in got if got.count(b) > 1})
    assert not dupes, f"ids claimed by more than one instance: {dupes}"
    assert len(winners) == min(ids, claimers), \
        f"{len(winners)} claimers got an id, expected {min(ids, claimers)}: " \
        f"{[r.get('error') for r in losers][:3]}"
    assert all(r["returncode"] == 10 for r in losers), \
        [(r["returncode"], r.get("error")) for r in losers if r["returncode"] != 10]
    return {r["broker_id"]: r["instance"] for r in winners}


class Chroots:
    """A fresh chroot per test or round, so tests sharing one server never see each other."""

    _n = 0
    _lock = threading.Lock()

    @classmethod
    def new(cls, tag="t"):
        with cls._lock:
            cls._n += 1
            return f"/kbtest-{os.getpid()}-{tag}-{cls._n}"
