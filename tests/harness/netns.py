"""Network namespaces, veth pairs and a bridge for the simulated VPC, built with `ip`.

Every command names its namespace explicitly (`ip -n NS`), so the result never depends on
which namespace the calling thread happens to be in: hooks run on the fake's scheduler
thread, which lives in the VPC namespace. Nothing here touches the host's own namespace.

Deleting a namespace only unmounts its name; the kernel destroys its links later, on a work
queue. Callers that must see links gone at once delete the veth first (one end takes its
peer with it), then the namespace.

A thread can enter a namespace (setns on that thread only): `NetnsThread` is one worker
thread living in a namespace, so sockets it opens, and threads it starts, belong there.
Python 3.11 has no os.setns, hence ctypes.
"""
import concurrent.futures
import ctypes
import json
import os
import subprocess
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetError(RuntimeError):
    pass


def ip(*args, netns=None, check=True, stdin=None):
    """Runs `ip [-n NETNS] ARGS...`; returns stdout. `stdin` feeds `-batch -`."""
    cmd = ["ip"] + (["-n", netns] if netns else []) + [str(a) for a in args]
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and p.returncode != 0:
        what = " ".join(cmd) if stdin is None else f"{' '.join(cmd)} <<< {stdin!r}"
        raise NetError(f"{what}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def ip_batch(netns, lines):
    """Several `ip` commands in one process (one fork instead of many)."""
    if lines:
        ip("-batch", "-", netns=netns, stdin="\n".join(lines) + "\n")


def netns_list():
    out = ip("-j", "netns", "list", check=False)
    return [n["name"] for n in json.loads(out or "[]")]


def netns_path(name):
    return f"/run/netns/{name}"


def netns_add(name):
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def netns_inode(name):
    """The namespace's identity, to find tasks still inside it after its name is gone."""
    return os.stat(netns_path(name)).st_ino


def netns_pids(name):
    out = ip("netns", "pids", name, check=False)
    return [int(p) for p in out.split()]


def netns_del(name):
    if name in netns_list():
        ip("netns", "del", name)


def links(netns):
    """`ip -j -d link` of the namespace: a list of dicts (ifname, address, linkinfo...)."""
    return json.loads(ip("-j", "-d", "link", "show", netns=netns) or "[]")


def link_exists(netns, name):
    return subprocess.run(["ip", "-n", netns, "link", "show", "dev", name],
                          capture_output=True).returncode == 0


def link_del(netns, name):
    """Deletes a link if it exists (a veth takes its peer, wherever that is, with it)."""
    if link_exists(netns, name):
        ip("link", "del", "dev", name, netns=netns, check=False)


def addresses(netns, ifname):
    out = json.loads(ip("-j", "addr", "show", "dev", ifname, netns=netns) or "[]")
    return [f"{a['local']}/{a['prefixlen']}" for i in out for a in i.get("addr_info", [])
            if a.get("family") == "inet"]


def routes(netns, table="main"):
    return json.loads(ip("-j", "route", "show", "table", str(table), netns=netns) or "[]")


def rules(netns):
    return json.loads(ip("-j", "rule", "show", netns=netns) or "[]")


def tasks_in_netns(inode):
    """Pids of tasks (threads included) whose network namespace is `inode`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                if os.stat(f"/proc/{pid}/task/{tid}/ns/net").st_ino == inode:
                    found.append(int(tid))
            except OSError:
                continue
    return found


def setns_net(path):
    """Moves the calling thread (only it) into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsThread:
    """One worker thread inside a network namespace; `call` runs a function there.

    A call made from the worker itself runs inline, so code running in the namespace may
    use the same object without deadlocking.
    """

    def __init__(self, name):
        self.name = name
        self._ident = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"netns-{name}",
            initializer=self._enter, initargs=(netns_path(name),))
        self.call(lambda: None)  # fail here, not at first use, if the namespace is missing

    def _enter(self, path):
        setns_net(path)
        self._ident = threading.get_ident()

    def call(self, fn, *args, **kwargs):
        if threading.get_ident() == self._ident:
            return fn(*args, **kwargs)
        return self._executor.submit(fn, *args, **kwargs).result()

    def close(self):
        self._executor.shutdown(wait=True)


def in_netns(name, fn, *args, **kwargs):
    """Runs fn(*args, **kwargs) on a short-lived thread inside namespace `name`."""
    worker = NetnsThread(name)
    try:
        return worker.call(fn, *args, **kwargs)
    finally:
        worker.close()
