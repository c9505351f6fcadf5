"""The simulated world every integration test, the README's main command and the benchmark
stand on: a VPC with ZooKeeper and the fake AWS endpoint, instances as network namespaces,
ENIs as hot-plugged veths, EBS volumes as loop devices (DECISIONS.md "Tests: the world they
build").

                      host namespace: only processes, files, loop devices
   .................................................................................
   vpc namespace <P>vpc
      bridge <P>br  10.0.0.2/24   ZooKeeper :2181, fake EC2 :8001, CloudFormation :8002,
                                  Auto Scaling :8003, control :8004
                    169.254.169.254/32  fake IMDS :80 (knows callers by source address)
                    10.0.<a+1>.1/24     router of AZ a's subnet, one per AZ
        |           |                    |
      <P><i>00    <P><i>01             <P><j>00         (bridge ends of the veths)
   ...|...........|.................   ...|..........
   instance <P>i<i>                     instance <P>i<j>
      eth0  primary IP/MAC, default     eth0 ...
            via its subnet's router
      ens6  an attached ENI: its MAC, down and unconfigured until kafka-bootstrap runs
   ..................................   ..............

   <P> = kbw<pid><letter>: every name carries the test process's pid; <i> = instance index
   (base 36, 2 characters); a bridge end is <P><i><card><device index>.

Nothing is put in the host's namespace: the machine running the tests may itself be an EC2
instance with a real 169.254.169.254.

How the test process talks to the fake: the fake runs in this process, but its listeners are
bound from a thread that entered the vpc namespace (`NetnsThread`), so its server threads
and its scheduler live there. Calls that (re)bind sockets must run there too, so `world.fake`
is a proxy running every method on that thread. Hooks from the fake arrive on its scheduler
thread and build the veths and loop devices at once (an ENI reads `attached` only after its
hook returned). Tests reach the fake's HTTP APIs from inside a namespace: `world.in_vpc(fn)`
or `instance.call(fn)` run a function on a thread in that namespace (botocore, urllib).

An agent runs as `nsenter --net=/run/netns/<ns> kafka-bootstrap ...` (not `ip netns exec`,
which unshares the mount namespace so the agent's mounts would vanish with it), in a clean
environment pointing at the fake, with the instance's own root for everything it writes.

Cleanup (close(), also on an exception, SIGINT, SIGTERM, SIGHUP): agents killed, fake and
ZooKeeper stopped, mounts under the world's directory unmounted, loop devices detached,
veths, bridge and namespaces deleted, the directory removed. Leftovers of a dead process
(same naming scheme, pid no longer alive) are swept when a world starts.
"""
import atexit
import ctypes
import dataclasses
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import blockdev, layout
from .netns import (NetnsThread, ip, ip_batch, link_del, links, netns_add, netns_del,
                    netns_inode, netns_list, netns_path, netns_pids, tasks_in_netns)
from .zookeeper import ZooKeeper, four_letter_word

PORTS = {"imds": 80, "ec2": 8001, "cloudformation": 8002, "autoscaling": 8003, "control": 8004}
ZOOKEEPER_PORT = 2181
BRIDGE_MAC = "02:00:0a:00:00:01"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NAME_RE = re.compile(r"^kbw(\d+)([a-z])")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_serial = itertools.count()
_live_prefixes = set()


def _b36(n, width=1):
    digits = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        digits = _B36[r] + digits
    if n:
        raise ValueError("index too large for its name")
    return digits


def default_binary():
    """$KB_BINARY (set by ctest), else build/kafka-bootstrap of this source tree."""
    if os.environ.get("KB_BINARY"):
        return os.environ["KB_BINARY"]
    src = os.environ.get("KB_SOURCE_DIR") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(src, "build", "kafka-bootstrap")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name):
    m = NAME_RE.match(name)
    if not m:
        return False
    pid = int(m.group(1))
    if pid == os.getpid():
        return m.group(0) not in _live_prefixes
    return not _pid_alive(pid)


def sweep_stale():
    """Removes what a world of a dead process (or an unclosed one of ours) left behind."""
    tmp = tempfile.gettempdir()
    dirs = [os.path.join(tmp, d) for d in os.listdir(tmp) if _stale(d)]
    for d in dirs:
        blockdev.unmount_all(blockdev.mounts_under(d))
        for loop, _ in blockdev.loops_backed_by(d):
            blockdev.loop_detach(loop)
    for name in netns_list():
        if _stale(name):
            for pid in netns_pids(name):
                _kill(pid, signal.SIGKILL)
            netns_del(name)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def _group_members(pgid):
    """[(pid, state, ppid)] of the processes in process group pgid, read from /proc."""
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append((int(pid), fields[0], int(fields[1])))
    return members


def _reap_group(pgid, timeout=2.0):
    """Waits until a killed agent's process group is empty, reaping what was orphaned to us
    (an agent's mkfs): a zombie would still count as a member. Returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        members = _group_members(pgid)
        for pid, state, ppid in members:
            if state == "Z" and ppid == os.getpid():
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.02)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@dataclasses.dataclass
class Result:
    """One finished agent run."""
    instance_id: str
    args: list
    exit_code: int          # negative: killed by that signal
    stdout: str
    stderr: str
    status: dict            # status.json after the run, None if absent or unreadable
    wall_s: float           # from release (barrier) to exit
    cpu_s: float            # user + system, the agent and every child it waited for
    maxrss_kb: int          # peak RSS of the agent or its largest child
    killed: str             # why the harness killed it (None: it exited by itself)
    records: list           # the fake's records of this instance's requests during the run

    @property
    def ok(self):
        return self.exit_code == 0

    @property
    def broker_id(self):
        return (self.status or {}).get("broker_id")

    def stage(self, name):
        for s in (self.status or {}).get("stages", []):
            if s.get("name") == name:
                return s
        return None

    def calls(self, service=None):
        """Number of requests to a service ('ec2', 'imds', ...) or to all, this run."""
        return sum(1 for r in self.records if service in (None, r.get("service")))

    def __str__(self):
        return (f"{self.instance_id} {' '.join(self.args)}: exit {self.exit_code}"
                f"{' (killed: ' + self.killed + ')' if self.killed else ''}, "
                f"{self.wall_s * 1000:.0f} ms\n--- stderr\n{self.stderr}--- stdout\n{self.stdout}")


class Gate:
    """A barrier for agents: each waits on a pipe until open() closes its write end, so all
    of them start at the same moment."""

    def __init__(self):
        self.read_fd, self._write_fd = os.pipe()
        self.opened_at = None       # time.monotonic()
        self.opened_at_wall = None  # time.time()
        self._agents = []

    def add(self, agent):
        self._agents.append(agent)

    def open(self):
        if self._write_fd is not None:
            # The time first: an agent may be done before close() returns.
            self.opened_at_wall = time.time()
            self.opened_at = time.monotonic()
            os.close(self._write_fd)
            self._write_fd = None
            for a in self._agents:
                a.released(self.opened_at)

    def close(self):
        self.open()
        if self.read_fd is not None:
            os.close(self.read_fd)
            self.read_fd = None


# The agent is started by a small shell that forks it and exits: ru_maxrss of a process
# exec'd straight from Python starts at Python's own peak (exec records the old memory's
# high-water mark, and a vfork child's old memory is Python's), while a child forked by sh
# starts from sh's ~1 MB. The shell prints the forked child's pid and exits; the child,
# orphaned, is reparented to this process (a child subreaper), which reaps it with wait4 for
# its rusage. The child first waits on the gate (the shell's stdin, kept as fd 3): it cannot
# run, let alone exit and be reaped by the shell, before the harness saw the shell exit and
# opened the gate. `env --default-signal` undoes the SIGINT/SIGQUIT ignore sh applies to
# background jobs.
_AGENT_SH = ('out=$1 err=$2; shift 2; exec 3<&0; '
             '( read _ <&3; exec 3<&-; exec env --default-signal "$@" </dev/null >"$out" '
             '2>>"$err" ) & echo $!')
_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class Agent:
    """One kafka-bootstrap process inside an instance."""

    def __init__(self, instance, args, gate=None, env=None, binary=None,
                 kill_after_requests=None, kill_after_s=None, kill_when=None,
                 kill_signal=signal.SIGKILL):
        self.instance = instance
        self.args = [str(a) for a in args]
        self.kill_after_requests = kill_after_requests
        self.kill_after_s = kill_after_s
        self.kill_when = kill_when
        self.kill_signal = kill_signal
        self.killed = None
        self.records = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._timer = None
        self._wait = None
        self.t0 = None
        world = instance.world
        seq = next(instance._runs)
        stem = os.path.join(instance.log_dir, f"{seq:03d}-{self.args[0] if self.args else 'x'}")
        self.stdout_path, self.stderr_path = stem + ".out", stem + ".err"
        program = binary or world.binary
        if os.sep in program:
            program = os.path.abspath(program)  # the agent runs in the instance's root
        cmd = ["nsenter", f"--net={netns_path(instance.netns)}", program] + self.args
        own_gate = gate is None
        gate = gate or Gate()
        with open(self.stdout_path, "wb"), open(self.stderr_path, "wb") as err:
            shell = subprocess.Popen(
                ["/bin/sh", "-c", _AGENT_SH, "kb-agent", self.stdout_path, self.stderr_path]
                + cmd, stdin=gate.read_fd, stdout=subprocess.PIPE, stderr=err,
                env=instance.agent_env(env), cwd=instance.root, start_new_session=True)
        with shell.stdout:
            line = shell.stdout.readline()
        shell.wait()
        if not line.strip().isdigit():
            raise RuntimeError(f"agent shell failed (exit {shell.returncode}); see "
                               f"{self.stderr_path}")
        self.pid = int(line)
        # The shell led a new process group; the agent and its children (mkfs) stay in it.
        self.pgid = shell.pid
        self._waiter = threading.Thread(target=self._reap, name=f"agent-{self.pid}",
                                        daemon=True)
        self._waiter.start()
        gate.add(self)
        if own_gate:
            gate.close()

    def released(self, t0):
        self.t0 = t0
        if self.kill_after_s is not None:
            self._timer = threading.Timer(self.kill_after_s, self.kill,
                                          (None, f"after {self.kill_after_s} s"))
            self._timer.daemon = True
            self._timer.start()

    def _reap(self):
        try:
            _, status, usage = os.wait4(self.pid, 0)
            self._wait = (time.monotonic(), os.waitstatus_to_exitcode(status), usage)
        except ChildProcessError:  # reaped elsewhere: the exit status is lost
            self._wait = (time.monotonic(), None, None)
        if self._timer:
            self._timer.cancel()
        self._done.set()

    def running(self):
        return not self._done.is_set()

    def on_request(self, record):
        """The fake recorded a request of this agent's instance: count it, maybe kill."""
        with self._lock:
            if not self.running() or self.t0 is None:
                return
            self.records.append(record)
            n = len(self.records)
        if self.kill_after_requests is not None and n == self.kill_after_requests:
            self.kill(None, f"after request {n} ({record.get('service')} "
                            f"{record.get('action')})")
        elif self.kill_when is not None and self.kill_when(record):
            self.kill(None, f"at {record.get('service')} {record.get('action')}")

    def kill(self, sig=None, reason="killed"):
        with self._lock:
            if not self.running():
                return
            if self.killed is None:
                self.killed = reason
            try:
                os.killpg(self.pgid, sig or self.kill_signal)
            except ProcessLookupError:
                pass

    def wait(self, timeout=120):
        if not self._done.wait(timeout):
            self.kill(signal.SIGKILL, f"timeout after {timeout} s")
            self._done.wait()
        end, code, usage = self._wait
        with open(self.stdout_path, errors="replace") as f:
            stdout = f.read()
        with open(self.stderr_path, errors="replace") as f:
            stderr = f.read()
        with self._lock:
            records = list(self.records)
        cpu = usage.ru_utime + usage.ru_stime if usage else 0.0
        return Result(self.instance.id, self.args, code, stdout, stderr, self.instance.status(),
                      end - (self.t0 or end), cpu, usage.ru_maxrss if usage else 0,
                      self.killed, records)


class Instance:
    """One simulated EC2 instance: a network namespace, a root directory, its devices."""

    def __init__(self, world, index, info, subnet):
        self.world = world
        self.index = index
        self.tag = _b36(index, 2)
        self.id = info["id"]
        self.az = info["az"]
        self.az_id = info["az_id"]
        self.subnet_id = subnet["id"]
        self.cidr = subnet["cidr"]
        self.prefixlen = ipaddress.ip_network(self.cidr).prefixlen
        self.router = layout.router_ip(self.cidr)
        self.ip = info["private_ip"]
        self.mac = info["mac"]
        self.state = info["state"]
        self.root_volume = info.get("root_volume")
        self.netns = f"{world.prefix}i{self.tag}"
        self.root = os.path.join(world.workdir, f"i{self.tag}-{self.id}")
        self.etc = os.path.join(self.root, "etc")
        self.config_path = os.path.join(self.etc, "kafka-bootstrap", "config.json")
        self.properties_path = os.path.join(self.etc, "kafka", "server.properties")
        self.mount_point = os.path.join(self.root, "var", "lib", "kafka")
        self.status_path = os.path.join(self.root, "run", "kafka-bootstrap", "status.json")
        self.console_path = os.path.join(self.root, "console")
        self.run_root = os.path.join(self.root, "run")  # networkd and udev state: none here
        self.dev_root = os.path.join(self.root, "dev")
        self.sysfs_root = os.path.join(self.root, "sys")
        self.shims = os.path.join(self.root, "shims")
        self.mkfs_log = os.path.join(self.root, "mkfs.log")
        self.log_dir = os.path.join(self.root, "log")
        self.enis = {}      # eni id -> {"port", "ifname", "mac", "ip", "device_index"}
        self.volumes = {}   # volume id -> {"loop", "image", "device", "paths"}
        self.agents = []
        self.netns_inode = None
        self.gone = False   # terminated and torn down
        self._runs = itertools.count(1)
        self.devices = None
        self.config = {}
        self._overrides = {}

    # ---- building --------------------------------------------------------------------------

    def build(self):
        w = self.world
        for d in (self.mount_point, os.path.dirname(self.status_path), self.log_dir, self.shims,
                  os.path.dirname(self.config_path), os.path.dirname(self.properties_path)):
            os.makedirs(d, exist_ok=True)
        open(self.console_path, "a").close()
        self.devices = blockdev.DeviceTree(self.dev_root, self.sysfs_root, w.volume_style)
        self.devices.add_root_volume(self.root_volume)
        if w.mkfs_shim:
            self._write_mkfs_shims()
        with open(self.properties_path, "w") as f:
            f.write("# server.properties as baked into the AMI (simulated)\n"
                    "num.network.threads=3\nnum.io.threads=8\nlog.retention.hours=168\n"
                    f"zookeeper.connect={w.zookeeper_connect}\n")
        self.configure(**w.config)
        netns_add(self.netns)
        self.netns_inode = netns_inode(self.netns)
        port = self.port_name(0, 0)
        ip_batch(w.vpc, [
            f"link add {port} type veth peer name eth0 address {self.mac} netns {self.netns}",
            f"link set {port} master {w.bridge} up"])
        ip_batch(self.netns, [
            f"addr add {self.ip}/{self.prefixlen} dev eth0",
            "link set eth0 up",
            f"route add default via {self.router} dev eth0"])

    def _write_mkfs_shims(self):
        for prog in ("mkfs.xfs", "mkfs.ext4"):
            real = shutil.which(prog, path="/usr/sbin:/sbin:/usr/bin:/bin")
            path = os.path.join(self.shims, prog)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n# Records this call for the test, then runs the real "
                        "program.\n"
                        "{ printf '%s' \"${0##*/}\"; for a in \"$@\"; do printf '\\t%s' \"$a\";"
                        f" done; printf '\\n'; }} >> '{self.mkfs_log}'\n"
                        + (f"exec '{real}' \"$@\"\n" if real else "exit 127\n"))
            os.chmod(path, 0o755)

    def port_name(self, card, device_index):
        return f"{self.world.prefix}{self.tag}{_b36(card)}{_b36(device_index)}"

    def default_config(self):
        w = self.world
        return {
            "cluster": w.cluster,
            "zookeeper_connect": w.zookeeper_connect,
            "broker_count": w.brokers,
            "mount_point": self.mount_point,
            "log_dir": os.path.join(self.mount_point, "logs"),
            "properties_path": self.properties_path,
            "status_file": self.status_path,
            "console": self.console_path,
            "sysfs_root": self.sysfs_root,
            "dev_root": self.dev_root,
            "run_root": self.run_root,
            "kafka_user": "root",
            "filesystem": w.filesystem,
            "success_signal": "run",
        }

    def configure(self, **overrides):
        """(Re)writes config.json: the defaults, then every override given so far (a value of
        None removes the key, so the binary's own default applies)."""
        self._overrides.update(overrides)
        merged = {**self.default_config(), **self._overrides}
        self.config = {k: v for k, v in merged.items() if v is not None}
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
            f.write("\n")

    def agent_env(self, extra=None):
        ep = self.world.endpoints
        env = {
            "PATH": (self.shims + ":" if self.world.mkfs_shim else "")
            + "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": self.root,
            "LANG": "C.UTF-8",
            "AWS_ENDPOINT_URL_EC2": ep["ec2"],
            "AWS_ENDPOINT_URL_CLOUDFORMATION": ep["cloudformation"],
            "AWS_ENDPOINT_URL_AUTO_SCALING": ep["autoscaling"],
            "AWS_CA_BUNDLE": self.world.ca_bundle,
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(self.world.agent_env)
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    # ---- agents ----------------------------------------------------------------------------

    def start(self, args=("run",), gate=None, env=None, config=True, binary=None, **kill):
        """Starts `kafka-bootstrap ARGS` (with `--config <this instance's file>` after the
        command unless config=False; `binary` runs another program the same way); returns
        the Agent. kill: kill_after_requests, kill_after_s, kill_when(record) -> bool,
        kill_signal."""
        args = [str(a) for a in args]
        if config and args:
            args[1:1] = ["--config", self.config_path]
        if self.gone:
            raise RuntimeError(f"{self.id} is terminated")
        agent = Agent(self, args, gate=gate, env=env, binary=binary, **kill)
        with self.world._lock:
            self.agents.append(agent)
        return agent

    def run(self, args=("run",), timeout=120, env=None, config=True, binary=None, **kill):
        """Runs kafka-bootstrap to the end; returns its Result."""
        return self.start(args, env=env, config=config, binary=binary, **kill).wait(timeout)

    def kill_agents(self, reason="instance killed"):
        for a in list(self.agents):
            a.kill(signal.SIGKILL, reason)
        for a in list(self.agents):
            a._done.wait(30)
            _reap_group(a.pgid)

    # ---- reading the instance's state --------------------------------------------------------

    def status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def properties(self):
        """server.properties as a dict (None if missing)."""
        try:
            with open(self.properties_path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return dict(line.split("=", 1) for line in lines
                    if "=" in line and not line.lstrip().startswith(("#", "!")))

    def mkfs_calls(self):
        """Every mkfs the agent ran: [[program, arg, ...]]."""
        try:
            with open(self.mkfs_log) as f:
                return [line.rstrip("\n").split("\t") for line in f]
        except OSError:
            return []

    def console(self):
        with open(self.console_path, errors="replace") as f:
            return f.read()

    def sh(self, *cmd, check=True):
        """Runs a command in the instance's network namespace (host mounts visible)."""
        p = subprocess.run(["nsenter", f"--net={netns_path(self.netns)}"] + list(cmd),
                           capture_output=True, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"{self.id}: {' '.join(cmd)}: exit {p.returncode}: {p.stderr}")
        return p.stdout

    def links(self):
        return links(self.netns)

    def link_by_mac(self, mac):
        return next((l for l in self.links() if l.get("address") == mac.lower()), None)

    def call(self, fn, *args, **kwargs):
        """Runs fn on a thread inside this instance's namespace (its sockets come from eth0)."""
        worker = NetnsThread(self.netns)
        try:
            return worker.call(fn, *args, **kwargs)
        finally:
            worker.close()

    def mounted(self):
        """Mount points of this instance's attached volumes: {volume id: [mount points]}."""
        return {v: blockdev.mounts_of(e["loop"]) for v, e in self.volumes.items()}

    def __repr__(self):
        return f"<Instance {self.id} {self.az} {self.ip} {self.state}>"

    # ---- hooks (scheduler thread) -------------------------------------------------------------

    def plug_eni(self, eni):
        w = self.world
        port = self.port_name(eni["network_card"], eni["device_index"])
        ifname = w.eni_ifname.format(index=eni["device_index"], card=eni["network_card"],
                                     ens=5 + eni["device_index"])
        ip_batch(w.vpc, [
            f"link add {port} type veth peer name {ifname} address {eni['mac']} "
            f"netns {self.netns}",
            f"link set {port} master {w.bridge} up"])
        return {"port": port, "ifname": ifname, "mac": eni["mac"], "ip": eni["private_ip"],
                "device_index": eni["device_index"]}

    def plug_volume(self, volume, device):
        w = self.world
        image = w.volume_image(volume)
        loop = blockdev.loop_attach(image)
        entry = self.devices.add(volume["id"], loop, device, os.path.getsize(image))
        return {"loop": loop, "image": image, "device": device, "paths": entry["paths"]}

    def unplug_volume(self, volume_id, entry):
        blockdev.unmount_all(blockdev.mounts_of(entry["loop"]))
        self.devices.remove(volume_id)
        blockdev.loop_detach(entry["loop"])

    def teardown_network(self):
        """Deletes the instance's veths (their bridge ends with them) and its namespace."""
        if self.netns not in netns_list():
            return
        for pid in netns_pids(self.netns):
            _kill(pid, signal.SIGKILL)
        for link in links(self.netns):
            if link.get("linkinfo", {}).get("info_kind") == "veth":
                link_del(self.netns, link["ifname"])
        netns_del(self.netns)


class _OnThread:
    """An object whose methods all run on one NetnsThread (the fake, botocore clients)."""

    def __init__(self, obj, thread):
        self._obj = obj
        self._thread = thread

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr
        return lambda *a, **kw: self._thread.call(attr, *a, **kw)


def _fakeaws():
    try:
        from fakeaws import FakeAWS, Hooks
    except ImportError as exc:
        raise ImportError("the fake AWS endpoint (tests/fakeaws) is needed: " + str(exc)) from exc
    return FakeAWS, Hooks


class World:
    """The whole simulated account and network; use as a context manager.

        with World(brokers=3, azs=3) as w:
            results = w.boot()                 # every instance runs `kafka-bootstrap run`
            w.terminate(w.instances[0])
            new = w.launch(az="us-east-1a")
            print(new.run())

    Parameters: brokers, azs, instances (initial instances; default one per broker);
    fixture (a complete fixture instead of harness.layout's); cluster; delays and imds
    (fixture sections: attach delays, staleness...); faults (FakeAWS.set_faults at start);
    seed; volume_style (blockdev.STYLES); filesystem; config (config.json keys for every
    instance); agent_env (extra environment); binary; eni_ifname (name of a hot-plugged ENI
    inside the instance: format keys index, card, ens=5+index); mkfs_shim (record mkfs calls);
    zookeeper (False: no server); tls (EC2, CloudFormation and Auto Scaling over HTTPS with a
    throwaway CA, which agents trust through AWS_CA_BUNDLE: the system's bundle plus that CA,
    so an agent loads a trust store of the system's size); keep (leave the directory for a
    post-mortem).
    """

    def __init__(self, brokers=3, azs=3, instances=None, *, fixture=None, cluster="sim",
                 delays=None, imds=None, faults=None, seed=0, volume_style="nitro",
                 filesystem="xfs", config=None, agent_env=None, binary=None,
                 eni_ifname="ens{ens}", mkfs_shim=True, zookeeper=True, tls=False, keep=False):
        self.brokers = brokers
        self.cluster = cluster
        self.fixture = fixture or layout.cluster_fixture(
            brokers, azs, instances, cluster=cluster, delays=delays, imds=imds, seed=seed)
        self.faults = faults
        self.seed = seed
        if volume_style not in blockdev.STYLES:
            raise ValueError(f"volume_style must be one of {blockdev.STYLES}")
        self.volume_style = volume_style
        self.filesystem = filesystem
        self.config = dict(config or {})
        self.agent_env = dict(agent_env or {})
        self.binary = binary or default_binary()
        self.eni_ifname = eni_ifname
        self.mkfs_shim = mkfs_shim
        self.with_zookeeper = zookeeper
        self.tls = tls
        self.ca_bundle = None
        self.keep = keep or os.environ.get("KB_WORLD_KEEP") == "1"
        self.prefix = f"kbw{os.getpid()}{_LETTERS[next(_serial) % len(_LETTERS)]}"
        self.vpc = self.prefix + "vpc"
        self.bridge = self.prefix + "br"
        self.services_ip = layout.SERVICES_IP
        self.zookeeper_connect = f"{self.services_ip}:{ZOOKEEPER_PORT}"
        self.subnets = {s["id"]: s for s in self.fixture["subnets"]}
        self.workdir = None
        self.instances = []
        self.zk = None
        self.fake = None
        self._fake = None
        self.endpoints = {}
        self.errors = []                 # exceptions raised in hooks
        self._by_id = {}
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._vpc_thread = None
        self._vpc_inode = None
        self._started = False
        self._closed = False
        self._signals = {}
        self._clients = {}
        self.timings = {}

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.close(raising=exc is None)

    def start(self):
        if self._started:
            return self
        self._started = True
        t0 = time.monotonic()
        _live_prefixes.add(self.prefix)
        _become_subreaper()
        self._install_signal_handlers()
        atexit.register(self.close)
        try:
            sweep_stale()
            self.workdir = tempfile.mkdtemp(prefix=self.prefix + "-")
            os.makedirs(os.path.join(self.workdir, "volumes"))
            self._build_vpc()
            if self.with_zookeeper:
                self.zk = _VpcZooKeeper(self, os.path.join(self.workdir, "zookeeper"))
                self.zk.start(wait=False)
            self._start_fake()
            t1 = time.monotonic()
            state = self.fake.state()
            for iid in [i["id"] for i in self.fixture.get("instances", [])]:
                info = state["instances"].get(iid)
                if info and info["state"] not in ("terminated", "shutting-down"):
                    self._add_instance(info, state)
            self.timings["instances_s"] = time.monotonic() - t1
            if self.zk:
                t2 = time.monotonic()
                self.zk.wait_ready()
                self.timings["zookeeper_wait_s"] = time.monotonic() - t2
        except BaseException:
            self.close(raising=False)
            raise
        self.timings["start_s"] = time.monotonic() - t0
        return self

    def _build_vpc(self):
        netns_add(self.vpc)
        self._vpc_inode = netns_inode(self.vpc)
        # A bridge takes the lowest MAC of its ports unless given one: every hot-plugged ENI
        # with a lower MAC would change the router's MAC under the instances' ARP caches, and
        # their connections would stall until the entries expired.
        lines = [f"link add {self.bridge} address {BRIDGE_MAC} type bridge",
                 f"addr add {self.services_ip}/24 dev {self.bridge}",
                 f"addr add {layout.IMDS_IP}/32 dev {self.bridge}"]
        for s in self.fixture["subnets"]:
            net = ipaddress.ip_network(s["cidr"])
            lines.append(f"addr add {layout.router_ip(s['cidr'])}/{net.prefixlen} "
                         f"dev {self.bridge}")
        lines.append(f"link set {self.bridge} up")
        ip_batch(self.vpc, lines)
        self._vpc_thread = NetnsThread(self.vpc)

        def forward():
            # Routes between the AZs' subnets, as the VPC router does. /proc/sys/net is the
            # namespace of the thread that opens it.
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write("1\n")
        self._vpc_thread.call(forward)

    def _start_fake(self):
        FakeAWS, Hooks = _fakeaws()
        world = self

        class WorldHooks(Hooks):
            def eni_attached(self, instance_id, eni):
                world._hook(world._eni_attached, instance_id, eni)

            def eni_detached(self, instance_id, eni):
                world._hook(world._eni_detached, instance_id, eni)

            def volume_attached(self, instance_id, volume, device):
                world._hook(world._volume_attached, instance_id, volume, device)

            def volume_detached(self, instance_id, volume):
                world._hook(world._volume_detached, instance_id, volume)

            def instance_state_changed(self, instance_id, state):
                world._hook(world._instance_state_changed, instance_id, state)

            def on_request(self, record):
                world._hook(world._on_request, record)

        self._fake = FakeAWS(self.fixture, WorldHooks(), seed=self.seed)
        tls = self._make_tls() if self.tls else None
        listeners = [{"service": "imds", "host": layout.IMDS_IP, "port": PORTS["imds"]}]
        listeners += [dict({"service": s, "host": self.services_ip, "port": PORTS[s]},
                           **({"tls": tls} if tls and s != "control" else {}))
                      for s in ("ec2", "cloudformation", "autoscaling", "control")]
        self._vpc_thread.call(self._fake.start, listeners)
        self.fake = _OnThread(self._fake, self._vpc_thread)
        self.endpoints = dict(self._fake.endpoints)
        if self.faults:
            self.fake.set_faults(**self.faults)

    def _make_tls(self):
        from fakeaws.tls import make_ca_and_cert
        paths = make_ca_and_cert(os.path.join(self.workdir, "tls"), [self.services_ip])
        self.ca_bundle = os.path.join(self.workdir, "tls", "bundle.pem")
        with open(self.ca_bundle, "w") as out:
            for src in (SYSTEM_CA_BUNDLE, paths["ca_cert"]):
                with open(src) as f:
                    out.write(f.read())
        return {"cert": paths["cert"], "key": paths["key"]}

    def close(self, raising=True):
        """Tears everything down; safe to call twice and after a failed start."""
        if self._closed or not self._started:
            return
        self._closed = True
        atexit.unregister(self.close)
        deferred = self._defer_signals()
        errors = []

        def attempt(fn, *args):
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - keep cleaning, report at the end
                errors.append(f"{getattr(fn, '__qualname__', fn)}{args!r}: {exc!r}")

        for inst in self.instances:
            attempt(inst.kill_agents, "world closed")
        for client in self._clients.values():
            attempt(self._vpc_thread.call, client.close)
        if self._fake is not None:
            attempt(self._fake.stop)
        if self._vpc_thread is not None:
            attempt(self._vpc_thread.close)
        if self.zk is not None:
            attempt(self.zk.close)
        if self.workdir:
            attempt(lambda: blockdev.unmount_all(blockdev.mounts_under(self.workdir)))
            for inst in self.instances:
                for entry in inst.volumes.values():
                    attempt(blockdev.loop_detach, entry["loop"])
                inst.volumes.clear()
            for loop, _ in (blockdev.loops_backed_by(self.workdir) if self.workdir else []):
                attempt(blockdev.loop_detach, loop)
        for inst in self.instances:
            attempt(inst.teardown_network)
        attempt(self._teardown_vpc)
        if self.workdir and not self.keep:
            attempt(self._remove_workdir)
        self._restore_signal_handlers()
        _live_prefixes.discard(self.prefix)
        for sig in deferred:
            signal.raise_signal(sig)  # now that nothing is half torn down
        if raising and (errors or self.errors):
            raise RuntimeError(f"world {self.prefix}: cleanup or hook errors: "
                               f"{errors + self.errors}")

    def _teardown_vpc(self):
        if self.vpc not in netns_list():
            return
        for pid in netns_pids(self.vpc):
            _kill(pid, signal.SIGKILL)
        for link in links(self.vpc):
            if link.get("linkinfo", {}).get("info_kind") in ("veth", "bridge"):
                link_del(self.vpc, link["ifname"])
        netns_del(self.vpc)

    def _remove_workdir(self):
        if blockdev.mounts_under(self.workdir):
            raise RuntimeError(f"still mounted under {self.workdir}; not removing it")
        shutil.rmtree(self.workdir)

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return

        def exit_on(signum, frame):
            raise SystemExit(128 + signum)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                self._signals[sig] = signal.signal(sig, exit_on)

    def _defer_signals(self):
        """Holds SIGINT, SIGTERM and SIGHUP while tearing down (a second Ctrl-C must not
        leave half a world); returns the list they are recorded in, raised again after."""
        deferred = []
        if threading.current_thread() is not threading.main_thread():
            return deferred
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous = signal.signal(sig, lambda signum, frame: deferred.append(signum))
            self._signals.setdefault(sig, previous)
        return deferred

    def _restore_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._signals.items():
            signal.signal(sig, previous)
        self._signals.clear()

    def leftovers(self):
        """What of this world still exists; [] once it closed cleanly."""
        found = []
        names = set(netns_list())
        found += [f"netns {n}" for n in names if n.startswith(self.prefix)]
        inodes = [self._vpc_inode] + [i.netns_inode for i in self.instances]
        for inode in filter(None, inodes):
            found += [f"task {t} in a network namespace of the world"
                      for t in tasks_in_netns(inode)]
        if self.workdir:
            found += [f"mount {m}" for m in blockdev.mounts_under(self.workdir)]
            found += [f"loop {l} ({b})" for l, b in blockdev.loops_backed_by(self.workdir)]
            if os.path.exists(self.workdir):
                found.append(f"directory {self.workdir}")
        for inst in self.instances:
            for a in inst.agents:
                found += [f"process {pid} ({state}) of agent group {a.pgid}"
                          for pid, state, _ in _group_members(a.pgid)]
        if self.zk and self.zk.proc and self.zk.proc.poll() is None:
            found.append(f"zookeeper pid {self.zk.proc.pid}")
        host_links = json.loads(ip("-j", "link", "show") or "[]")
        found += [f"host link {l['ifname']}" for l in host_links
                  if l["ifname"].startswith(self.prefix)]
        return found

    # ---- instances ---------------------------------------------------------------------------

    def _add_instance(self, info, state=None):
        # The fake's state names an instance's subnet "subnet" (earlier drafts: "subnet_id").
        subnet = self.subnets[info.get("subnet") or info["subnet_id"]]
        inst = Instance(self, len(self.instances), info, subnet)
        with self._lock:
            self.instances.append(inst)
            self._by_id[inst.id] = inst
        inst.build()
        state = state or self.fake.state()
        # Attachments the fixture starts with get their devices now: no hook fires for them.
        for eni in state["network_interfaces"].values():
            att = eni.get("attachment")
            if att and att["instance_id"] == inst.id and not eni.get("primary"):
                self._eni_attached(inst.id, {
                    "id": eni["id"], "mac": eni["mac"], "private_ip": eni["private_ip"],
                    "device_index": att["device_index"], "network_card": att["network_card"]})
        for vol in state["volumes"].values():
            att = vol.get("attachment")
            if att and att["instance_id"] == inst.id and not vol.get("root"):
                self._volume_attached(inst.id, vol, att["device"])
        return inst

    def instance(self, key):
        """An instance by index or instance id."""
        if isinstance(key, int):
            return self.instances[key]
        return self._by_id[key]

    def live_instances(self):
        return [i for i in self.instances if not i.gone]

    def launch(self, az=None, subnet=None, group=True, role=layout.BROKER_ROLE, **kw):
        """Launches an instance in `az` (or `subnet`; default the first AZ), as that AZ's
        Auto Scaling group would (group=False: no group; a name: that group), and builds its
        namespace; returns the Instance. Other kwargs go to FakeAWS.launch_instance."""
        if subnet is None:
            az = az or self.fixture["subnets"][0]["az"]
        else:
            az = self.subnets[subnet]["az"]
        if group is True:
            group = layout.group_for_az(self.fixture, az)
        info = self.fake.launch_instance(subnet=subnet, az=None if subnet else az, role=role,
                                         asg=group or None, **kw)
        state = self.fake.state()
        return self._add_instance(state["instances"][info["id"]], state)

    def terminate(self, inst, wait=True, timeout=30):
        """Terminates an instance: its agents die at once (the machine is gone), then EC2's
        shutting-down -> terminated detaches its ENIs and volumes."""
        inst.kill_agents("instance terminated")
        self.fake.terminate_instance(inst.id)
        if wait:
            self.wait_for(lambda: inst.gone and not inst.enis and not inst.volumes, timeout,
                          f"{inst.id} terminated and detached")

    def stop(self, inst, wait=True, timeout=30):
        inst.kill_agents("instance stopped")
        self.fake.stop_instance(inst.id)
        if wait:
            self.wait_for(lambda: inst.state == "stopped", timeout, f"{inst.id} stopped")

    def wait_for(self, predicate, timeout=30, what="condition"):
        """Waits until predicate() holds (re-checked whenever a hook ran)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self._cond.wait(min(left, 0.2))

    # ---- agents -------------------------------------------------------------------------------

    def start_agents(self, instances=None, args=("run",), env=None, per_instance=None,
                     **kill):
        """Starts agents on `instances` (default: every live one) behind one gate; returns
        (gate, agents). Open the gate to let them all go at once."""
        instances = self.live_instances() if instances is None else instances
        gate = Gate()
        agents = []
        try:
            for inst in instances:
                opts = dict(kill, **(per_instance or {}).get(inst.id, {}))
                agents.append(inst.start(args, gate=gate, env=env, **opts))
        except BaseException:
            gate.close()
            for a in agents:
                a.kill(signal.SIGKILL, "start failed")
            raise
        return gate, agents

    def boot(self, instances=None, args=("run",), timeout=120, env=None,
             per_instance=None, **kill):
        """Runs the agent on every given instance at the same moment; returns their Results
        in the instances' order. per_instance: {instance id: kill options}."""
        gate, agents = self.start_agents(instances, args, env, per_instance, **kill)
        gate.open()
        try:
            deadline = time.monotonic() + timeout
            return [a.wait(max(0.0, deadline - time.monotonic())) for a in agents]
        finally:
            gate.close()

    # ---- queries ---------------------------------------------------------------------------------

    def state(self):
        return self.fake.state()

    def signals(self):
        return self.fake.signals()

    def requests(self, instance=None):
        recs = self.fake.requests()
        if instance is None:
            return recs
        iid = instance if isinstance(instance, str) else instance.id
        return [r for r in recs if r.get("instance_id") == iid]

    def broker_resources(self, broker_id):
        """(ENI, volume) tagged KAFKA-<broker_id> in the fake's state, as dicts."""
        name = f"KAFKA-{broker_id}"
        state = self.fake.state()
        eni = next((e for e in state["network_interfaces"].values()
                    if e["tags"].get("Name") == name), None)
        vol = next((v for v in state["volumes"].values() if v["tags"].get("Name") == name), None)
        return eni, vol

    def aws(self, service):
        """botocore client of the fake's `service` ("ec2", "cloudformation", "autoscaling")
        with the harness's static credentials (allowed everything), its calls run from the
        vpc namespace: world.aws("ec2").attach_volume(VolumeId=..., ...)."""
        if service not in self._clients:
            import botocore.config
            import botocore.session
            self._clients[service] = botocore.session.get_session().create_client(
                service, region_name=self.fixture["region"], endpoint_url=self.endpoints[service],
                aws_access_key_id=layout.HARNESS_CREDENTIALS["access_key_id"],
                aws_secret_access_key=layout.HARNESS_CREDENTIALS["secret_access_key"],
                verify=self.ca_bundle if self.tls else None,
                config=botocore.config.Config(retries={"max_attempts": 1}))
        return _OnThread(self._clients[service], self._vpc_thread)

    def in_vpc(self, fn, *args, **kwargs):
        """Runs fn on the vpc namespace's thread (where the fake's addresses are local)."""
        return self._vpc_thread.call(fn, *args, **kwargs)

    def volume_image(self, volume):
        """The image of a volume: created once, reused by every later attach."""
        path = os.path.join(self.workdir, "volumes", volume["id"] + ".img")
        return blockdev.create_image(path, int(volume.get("size") or 1) << 30)

    # ---- hooks -------------------------------------------------------------------------------

    def _hook(self, fn, *args):
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a test reads world.errors; close() raises
            self.errors.append(exc)
            print(f"harness.world: hook {fn.__name__}{args!r} failed: {exc!r}", file=sys.stderr)
        finally:
            with self._cond:
                self._cond.notify_all()

    def _live(self, instance_id):
        with self._lock:
            inst = self._by_id.get(instance_id)
        return inst if inst and not inst.gone and not self._closed else None

    def _eni_attached(self, instance_id, eni):
        inst = self._live(instance_id)
        if inst:
            entry = inst.plug_eni(eni)
            with self._lock:
                inst.enis[eni["id"]] = entry

    def _eni_detached(self, instance_id, eni):
        # State changes after the device work, so a waiter never sees it half done.
        inst = self._by_id.get(instance_id)
        entry = inst and inst.enis.get(eni["id"])
        if entry:
            link_del(self.vpc, entry["port"])
            with self._lock:
                inst.enis.pop(eni["id"], None)

    def _volume_attached(self, instance_id, volume, device):
        inst = self._live(instance_id)
        if inst:
            entry = inst.plug_volume(volume, device)
            with self._lock:
                inst.volumes[volume["id"]] = entry

    def _volume_detached(self, instance_id, volume):
        inst = self._by_id.get(instance_id)
        entry = inst and inst.volumes.get(volume["id"])
        if entry:
            inst.unplug_volume(volume["id"], entry)
            with self._lock:
                inst.volumes.pop(volume["id"], None)

    def _instance_state_changed(self, instance_id, state):
        with self._lock:
            inst = self._by_id.get(instance_id)
            if inst is None:
                return
            inst.state = state
        if state in ("stopping", "shutting-down"):
            inst.kill_agents(f"instance {state}")
        elif state == "terminated":
            inst.teardown_network()
            with self._lock:
                inst.gone = True

    def _on_request(self, record):
        iid = record.get("instance_id")
        with self._lock:
            inst = self._by_id.get(iid) if iid else None
            if inst is None:
                src = record.get("source_ip")
                inst = next((i for i in self.instances if i.ip == src
                             or any(e["ip"] == src for e in i.enis.values())), None)
            agents = [a for a in inst.agents if a.running()] if inst else []
        for a in agents:
            a.on_request(record)


class _VpcZooKeeper(ZooKeeper):
    """ZooKeeper inside the vpc namespace, probed from the vpc thread instead of a process."""

    def __init__(self, world, workdir):
        super().__init__(host=world.services_ip, port=ZOOKEEPER_PORT, netns=world.vpc,
                         workdir=workdir)
        self._world = world

    def _srvr(self):
        return self._world.in_vpc(four_letter_word, self.host, self.port, "srvr", 0.5)

    def close(self):
        super().close()
        shutil.rmtree(self.workdir, ignore_errors=True)
