"""Fixtures for the volume stage's tests: a private /dev and /sys tree, a mount point, and a
recording mkfs shim first on PATH, all under one temporary directory named with the pid.

The block-device half runs through tests/tools/kb-volume (volume_prepare() without IMDS,
EC2 or ZooKeeper); the /dev tree points at real loop devices by symlink, as udev's by-id links
point at real nodes."""
import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile

import pytest

from harness.loopdev import Image, LoopDevice, MIB, XFS_MIN_BYTES, run

SHIM = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "{log}"
exec {real} "$@"
"""


def driver_path():
    binary_dir = os.environ.get("KB_BINARY_DIR") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build")
    return os.path.join(binary_dir, "tools", "kb-volume")


class VolumeWorld:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix=f"kb-volume-{os.getpid()}-")
        self.dev_root = os.path.join(self.root, "dev")
        self.sysfs_root = os.path.join(self.root, "sys")
        self.mount_point = os.path.join(self.root, "mnt", "kafka")
        self.log_dir = os.path.join(self.mount_point, "logs")
        self.bin = os.path.join(self.root, "bin")
        self.mkfs_log = os.path.join(self.root, "mkfs.log")
        for d in (self.dev_root, self.sysfs_root, self.bin):
            os.makedirs(d)
        for tool in ("mkfs.xfs", "mkfs.ext4"):
            real = shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
            path = os.path.join(self.bin, tool)
            with open(path, "w") as f:
                f.write(SHIM.format(log=self.mkfs_log, real=real))
            os.chmod(path, 0o755)
        self.config = {
            "DEV_ROOT": self.dev_root,
            "SYSFS_ROOT": self.sysfs_root,
            "MOUNT_POINT": self.mount_point,
            "LOG_DIR": self.log_dir,
            "KAFKA_USER": "4242",
        }
        self._stack = []
        self._prep = itertools.count()

    # devices

    def loop(self, size=64 * MIB):
        """A fresh loop device over a sparse image; released with the world."""
        n = len(self._stack)
        image = Image(os.path.join(self.root, f"vol{n}.img"), size).__enter__()
        self._stack.append(image)
        loop = LoopDevice(image.path).__enter__()
        self._stack.append(loop)
        loop.image = image
        return loop

    def xfs_loop(self):
        return self.loop(XFS_MIN_BYTES)

    def link(self, relative, target):
        """dev_root/relative -> target, as udev or devtmpfs would make it."""
        path = os.path.join(self.dev_root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)
        return path

    def link_by_id(self, volume_id, loop):
        serial = volume_id.replace("-", "")
        return self.link(f"disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}", loop.path)

    def write_sys(self, relative, text):
        path = os.path.join(self.sysfs_root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    # running

    def run(self, broker_id, volume_id, *args, config=None, env=None, deadline_ms=10000):
        """Runs kb-volume: the local half for volume_id, or the whole stage (volume_id None,
        args naming the instance) against the endpoints in env."""
        env = {**os.environ, **(env or {})}
        env["PATH"] = self.bin + ":" + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        for key, value in {**self.config, **(config or {})}.items():
            env["KAFKA_BOOTSTRAP_" + key] = value
        argv = [driver_path(), "--broker-id", str(broker_id), "--deadline-ms", str(deadline_ms),
                *(["--volume-id", volume_id] if volume_id else []), *args]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        proc.changes = [l[len("change: "):] for l in proc.stdout.splitlines()
                        if l.startswith("change: ")]
        proc.device = next((l[len("device: "):] for l in proc.stdout.splitlines()
                            if l.startswith("device: ")), None)
        return proc

    @contextlib.contextmanager
    def opened(self, loop, *options):
        """The volume mounted by the test itself (to prepare or inspect it), then unmounted."""
        path = os.path.join(self.root, f"prep{next(self._prep)}")
        os.makedirs(path)
        run("mount", *options, loop.path, path)
        try:
            yield path
        finally:
            run("umount", path)

    def mkfs_calls(self):
        if not os.path.exists(self.mkfs_log):
            return []
        with open(self.mkfs_log) as f:
            return f.read().splitlines()

    def mounted_device(self):
        """major:minor mounted at the mount point, from mountinfo (None when nothing)."""
        found = None
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == self.mount_point:
                    found = fields[2]
        return found

    def close(self):
        for mount in self.mounts_below():
            run("umount", "-l", mount, check=False)
        while self._stack:
            self._stack.pop().__exit__(None, None, None)
        if not self.mounts_below():
            shutil.rmtree(self.root, ignore_errors=True)

    def mounts_below(self):
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return sorted((p for p in points if p.startswith(self.root + "/")), reverse=True)


def dev_numbers(path):
    rdev = os.stat(path).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


@pytest.fixture
def world():
    w = VolumeWorld()
    try:
        yield w
    finally:
        w.close()
