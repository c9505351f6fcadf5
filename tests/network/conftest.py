"""Namespaces for the network stage's tests, in the manner of WireGuard's netns.sh.

Each test gets its own world, named with the pid and a counter so leftovers never collide;
every namespace (and with it every veth) is deleted in a finally, after killing what runs
there. Readiness is polled, never slept for.

    ┌─ kbn-PID-N-vpc ───────────┐
    │ p0   192.168.77.1/24      │    the primary ENI's side: eth0's default gateway
    └──────┬────────────────────┘
           │ veth
    ┌──────┴─ kbn-PID-N-inst ───────────────────────────────┐
    │ eth0 192.168.77.10/24, default via 192.168.77.1 (main) │  the instance; IPv6 off
    │ eth1 MAC 02:00:00:77:00:05, no address                 │  the broker ENI, hot-plugged
    └──────┬─────────────────────────────────────────────────┘  from rtr by plug_eni()
           │ veth
    ┌──────┴─ kbn-PID-N-rtr ────┐
    │ gw   10.77.1.1/24         │    the ENI subnet's router (base + 1)
    └───────────────────────────┘
"""
import concurrent.futures
import ctypes
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

DRIVER = os.path.join(os.environ.get("KB_BINARY_DIR", "build"), "tools", "kb-network")
ENI_MAC = "02:00:00:77:00:05"
ENI_IP = "10.77.1.5"
SUBNET = "10.77.1.0/24"
ROUTER = "10.77.1.1"
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def run(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


class NetnsThread:
    """One worker thread inside a network namespace (setns moves only the calling thread), for
    servers that must listen there, such as the fake AWS endpoint."""

    def __init__(self, ns):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, initializer=self._enter, initargs=(f"/run/netns/{ns}",))
        self.call(lambda: None)

    @staticmethod
    def _enter(path):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {path}")
        finally:
            os.close(fd)

    def call(self, fn, *args, **kwargs):
        return self._executor.submit(fn, *args, **kwargs).result()

    def close(self):
        self._executor.shutdown(wait=True)


class World:
    def __init__(self):
        n = next(_counter)
        self.prefix = f"kbn-{os.getpid()}-{n}"
        self.inst, self.vpc, self.rtr = (f"{self.prefix}-{x}" for x in ("inst", "vpc", "rtr"))
        self.eni_name = f"kbe{os.getpid()}{n}"[:15]
        self.run_root = tempfile.mkdtemp(prefix=f"{self.prefix}-run-")
        self.namespaces = []

    def ip(self, ns, *args, check=True):
        return run("ip", "-n", ns, *args, check=check)

    def ipj(self, ns, *args):
        return json.loads(self.ip(ns, "-j", *args).stdout or "[]")

    def add_ns(self, name):
        run("ip", "netns", "del", name, check=False)
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")

    def build(self):
        for ns in (self.inst, self.vpc, self.rtr):
            self.add_ns(ns)
        run("ip", "netns", "exec", self.inst, "sysctl", "-qw",
            "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self.ip(self.inst, "link", "add", "eth0", "type", "veth", "peer", "name", "p0",
                "netns", self.vpc)
        self.ip(self.inst, "addr", "add", "192.168.77.10/24", "dev", "eth0")
        self.ip(self.inst, "link", "set", "eth0", "up")
        self.ip(self.vpc, "addr", "add", "192.168.77.1/24", "dev", "p0")
        self.ip(self.vpc, "link", "set", "p0", "up")
        self.wait_operstate(self.inst, "eth0", "UP")
        self.ip(self.inst, "route", "add", "default", "via", "192.168.77.1")
        self.ip(self.rtr, "link", "add", "gw", "type", "veth", "peer", "name", self.eni_name,
                "address", ENI_MAC)
        self.ip(self.rtr, "addr", "add", f"{ROUTER}/24", "dev", "gw")
        self.ip(self.rtr, "link", "set", "gw", "up")
        return self

    def plug_eni(self):
        """The fake's attach hook, by hand: the ENI's veth end moves into the instance."""
        self.ip(self.rtr, "link", "set", self.eni_name, "netns", self.inst, "name", "eth1")

    def wait_operstate(self, ns, dev, state, timeout=5.0):
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            links = self.ipj(ns, "link", "show", "dev", dev)
            if links and links[0].get("operstate") == state:
                return
            time.sleep(0.01)
        raise AssertionError(f"{dev} in {ns} never reached {state}")

    def snapshot(self):
        """What an independent reader sees in the instance: addresses, routes, rules."""
        return (self.ipj(self.inst, "addr"), self.ipj(self.inst, "route", "show", "table", "all"),
                self.ipj(self.inst, "rule"))

    def primary(self):
        """eth0, its addresses and the main table: never to be touched."""
        return (self.ipj(self.inst, "addr", "show", "dev", "eth0"),
                self.ipj(self.inst, "route", "show", "table", "main"))

    def driver_argv(self, *extra, mac=ENI_MAC, cidr=SUBNET, deadline_ms=10000):
        argv = ["nsenter", f"--net=/run/netns/{self.inst}", DRIVER, "--mac", mac, "--ip",
                ENI_IP, "--primary-mac", self.eth0_mac(), "--deadline-ms", str(deadline_ms)]
        if cidr:
            argv += ["--cidr", cidr]
        return argv + list(extra)

    def env(self, **extra):
        env = dict(os.environ, KAFKA_BOOTSTRAP_RUN_ROOT=self.run_root)
        env.update(extra)
        return env

    def start(self, *extra, env=None, **kw):
        return subprocess.Popen(self.driver_argv(*extra, **kw), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env or self.env())

    def configure(self, *extra, env=None, **kw):
        """Runs the driver to the end: (exit code, its JSON result, its log)."""
        proc = self.start(*extra, env=env, **kw)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, json.loads(out), err

    def eth0_mac(self):
        return self.ipj(self.inst, "link", "show", "dev", "eth0")[0]["address"]

    def destroy(self):
        for ns in self.namespaces:
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.run_root, ignore_errors=True)
        left = [ns for ns in self.namespaces if os.path.exists(f"/run/netns/{ns}")]
        assert not left, f"namespaces left behind: {left}"


@pytest.fixture
def world():
    w = World()
    try:
        yield w.build()
    finally:
        w.destroy()
