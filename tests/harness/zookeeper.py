"""A real ZooKeeper server for tests: Debian's `zookeeper` package, started without its init
scripts, on an address the caller picks (127.0.0.1 by default, or a bridge address inside a
network namespace the test built).

Why a real server: the claim's correctness rests on ZooKeeper's semantics (zoo_multi atomicity,
versioned set, session expiry), which no mock reproduces faithfully.

    with ZooKeeper() as zk:
        run_tool(f"--set zookeeper_connect={zk.connect}")
        zk.stop(); zk.start()          # outage in the middle of a test
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

JAVA_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def free_port(host="127.0.0.1"):
    """A port nobody listens on right now (the kernel's choice, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def four_letter_word(host, port, word, timeout=1.0):
    """Sends one of ZooKeeper's four-letter commands and returns the answer ('' on failure)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class ZooKeeper:
    """One standalone server. Data survives stop()/start() (same dataDir), as a restarted
    production server's would; it is deleted by close()."""

    def __init__(self, host="127.0.0.1", port=None, netns=None, workdir=None,
                 tick_ms=500, heap="128m"):
        self.host = host
        self.netns = netns
        # Inside a namespace the port cannot be probed from here; any fixed choice is free.
        self.port = port or (2181 if netns else free_port(host))
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"kb-zk-{os.getpid()}-")
        self.tick_ms = tick_ms
        self.heap = heap
        self.proc = None
        self._write_config()

    @property
    def connect(self):
        return f"{self.host}:{self.port}"

    def _write_config(self):
        os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
        # tickTime bounds session timeouts (2..20 ticks): 500 ms allows 1..10 s sessions,
        # so expiry tests do not wait long.
        cfg = "\n".join([
            f"tickTime={self.tick_ms}",
            f"dataDir={self.workdir}/data",
            f"clientPort={self.port}",
            f"clientPortAddress={self.host}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,mntr,cons,stat",
            "maxClientCnxns=0",
            # Claims are small; the default 60 s snapshot/purge settings are irrelevant here.
            "autopurge.purgeInterval=0",
            "",
        ])
        with open(os.path.join(self.workdir, "zoo.cfg"), "w") as f:
            f.write(cfg)

    def _command(self):
        cmd = ["java", f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               f"-Dzookeeper.log.dir={self.workdir}",
               "-cp", JAVA_CLASSPATH, MAIN_CLASS, os.path.join(self.workdir, "zoo.cfg")]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return cmd

    def _srvr(self):
        if self.netns:
            out = subprocess.run(
                ["ip", "netns", "exec", self.netns, "/usr/bin/python3", "-c",
                 "import sys; sys.path.insert(0, sys.argv[1]);"
                 "from harness.zookeeper import four_letter_word as f;"
                 "print(f(sys.argv[2], int(sys.argv[3]), 'srvr'))",
                 os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 self.host, str(self.port)],
                capture_output=True, text=True)
            return out.stdout
        return four_letter_word(self.host, self.port, "srvr")

    def start(self, wait=True, timeout=30.0):
        if self.proc and self.proc.poll() is None:
            return
        log = open(os.path.join(self.workdir, "server.log"), "ab")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode}; see "
                                   f"{self.workdir}/server.log")
            if "Mode: standalone" in self._srvr():
                return
            time.sleep(0.1)
        raise TimeoutError(f"ZooKeeper at {self.connect} not ready after {timeout} s; see "
                           f"{self.workdir}/server.log")

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def close(self):
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
