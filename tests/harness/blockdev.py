"""EBS volumes of the simulated world: sparse image files, loop devices, and the /dev and
sysfs entries an instance's kernel and udev would show for them.

An image is created once per volume id and outlives every instance it is attached to, so
data written by a broker is there for its replacement. An attach gives the image a loop
device and exposes it in the instance's own roots (config keys dev_root, sysfs_root) in one
of these styles, so every discovery path of the volume stage gets exercised:

    nitro   sysfs: an NVMe controller nvmeK whose serial is vol<hex> and model "Amazon
            Elastic Block Store", namespace nvmeKn1 with the loop's major:minor;
            dev: nvmeKn1 -> /dev/loopN and udev's
            disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<hex> -> ../../nvmeKn1
    sysfs   the same without the by-id link (an AMI without the udev rules)
    by-id   only disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<hex> -> /dev/loopN
    xen     only the Xen name of the requested device: /dev/sdg shows as xvdg
    name    only the requested name itself: sdg

Controller nvme0 is the root volume in the nitro and sysfs styles (no device node behind
it), so discovery must pick the right controller, not the first one.

Detach undoes it: unmounts what a dead instance left mounted, removes the entries, frees
the loop device. Nothing is ever written to an image here.
"""
import errno
import os
import shutil
import subprocess
import time

STYLES = ("nitro", "sysfs", "by-id", "xen", "name")
EBS_MODEL = "Amazon Elastic Block Store"


class BlockError(RuntimeError):
    pass


def _run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BlockError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def create_image(path, size_bytes):
    """A sparse file of `size_bytes`, unless it exists already (a volume keeps its data)."""
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.truncate(size_bytes)
    return path


def loop_attach(image):
    return _run("losetup", "--find", "--show", image).strip()


def _backing_file(device):
    try:
        with open(f"/sys/block/{os.path.basename(device)}/loop/backing_file") as f:
            return f.read()
    except OSError as exc:
        # No longer a loop with a backing file: the read races the detach (ENODEV, ENXIO).
        if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return None
        raise


def loop_detach(device, timeout=10.0):
    """Detaches and waits until it is done: the kernel defers the detach while anything
    (udev probing the device, a filesystem being released) still holds it open. Done means
    our image is gone from the device: once free, the device may at once back another
    image (another test process on the machine attached one)."""
    ours = _backing_file(device)
    _run("losetup", "--detach", device)
    deadline = time.monotonic() + timeout
    while ours is not None and _backing_file(device) == ours:
        if time.monotonic() > deadline:
            raise BlockError(f"{device} still attached {timeout} s after losetup --detach")
        time.sleep(0.02)


def loops_backed_by(prefix):
    """[(loop device, backing file)] for every loop whose backing file is under prefix."""
    out = _run("losetup", "--list", "--noheadings", "--raw", "--output", "NAME,BACK-FILE")
    found = []
    for line in out.splitlines():
        name, _, back = line.partition(" ")
        back = back.replace(" (deleted)", "")
        if back == prefix or back.startswith(prefix.rstrip("/") + "/"):
            found.append((name, back))
    return found


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts():
    """[(major:minor, mount point)] of this mount namespace, in mount order."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            found.append((fields[2], _unescape(fields[4])))
    return found


def mounts_of(device):
    """Mount points of a block device (by its major:minor, however it was named)."""
    rdev = os.stat(device).st_rdev
    key = f"{os.major(rdev)}:{os.minor(rdev)}"
    return [mp for devno, mp in mounts() if devno == key]


def mounts_under(prefix):
    prefix = prefix.rstrip("/")
    return [mp for _, mp in mounts() if mp == prefix or mp.startswith(prefix + "/")]


def unmount(mount_point):
    """Unmounts; a mount still busy is detached lazily (gone from the tree at once)."""
    if subprocess.run(["umount", mount_point], capture_output=True).returncode != 0:
        _run("umount", "--lazy", mount_point)


def unmount_all(mount_points):
    for mp in sorted(set(mount_points), key=len, reverse=True):
        unmount(mp)


def xen_name(device):
    """/dev/sdg -> xvdg, as the Xen block front end names it."""
    name = os.path.basename(device)
    return "xv" + name[1:] if name.startswith("sd") else name


def by_id_name(volume_id):
    return "nvme-Amazon_Elastic_Block_Store_" + volume_id.replace("-", "")


def _symlink(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class DeviceTree:
    """One instance's dev_root and sysfs_root: what its kernel and udev show."""

    def __init__(self, dev_root, sysfs_root, style="nitro"):
        if style not in STYLES:
            raise ValueError(f"volume style must be one of {STYLES}")
        self.dev_root = dev_root
        self.sysfs_root = sysfs_root
        self.style = style
        self._next_ctrl = 1
        self.entries = {}   # volume id -> {"loop", "paths", "controller"}
        os.makedirs(dev_root, exist_ok=True)
        os.makedirs(sysfs_root, exist_ok=True)

    def _controller(self, k, serial, devno, size_bytes):
        """sysfs of NVMe controller nvmeK with one namespace, laid out as on a Nitro host."""
        pci = f"devices/pci0000:00/0000:00:{4 + k:02x}.0"
        ctrl = f"{pci}/nvme/nvme{k}"
        ns = f"{ctrl}/nvme{k}n1"
        root = self.sysfs_root
        _write(f"{root}/{ctrl}/serial", f"{serial:<20}\n")
        _write(f"{root}/{ctrl}/model", f"{EBS_MODEL:<40}\n")
        _write(f"{root}/{ctrl}/firmware_rev", "1.0     \n")
        _write(f"{root}/{ns}/dev", f"{devno}\n")
        _write(f"{root}/{ns}/size", f"{size_bytes // 512}\n")
        _symlink("../../nvme" + str(k), f"{root}/{ns}/device")
        _symlink(f"../../{ctrl}", f"{root}/class/nvme/nvme{k}")
        _symlink(f"../{ns}", f"{root}/block/nvme{k}n1")
        _symlink(f"../../{ns}", f"{root}/class/block/nvme{k}n1")
        return [f"{root}/{pci}", f"{root}/class/nvme/nvme{k}", f"{root}/block/nvme{k}n1",
                f"{root}/class/block/nvme{k}n1"]

    def add_root_volume(self, volume_id):
        """Controller nvme0: the root volume, with no device node (a decoy for discovery)."""
        if self.style in ("nitro", "sysfs") and volume_id:
            self._controller(0, volume_id.replace("-", ""), "259:0", 8 << 30)

    def add(self, volume_id, loop, requested_device, size_bytes):
        """Exposes `loop` as volume `volume_id` attached under `requested_device`."""
        rdev = os.stat(loop).st_rdev
        devno = f"{os.major(rdev)}:{os.minor(rdev)}"
        paths, ctrl = [], None
        by_id = f"{self.dev_root}/disk/by-id/{by_id_name(volume_id)}"
        if self.style in ("nitro", "sysfs"):
            ctrl = self._next_ctrl
            self._next_ctrl += 1
            paths += self._controller(ctrl, volume_id.replace("-", ""), devno, size_bytes)
            node = f"{self.dev_root}/nvme{ctrl}n1"
            _symlink(loop, node)
            paths.append(node)
            if self.style == "nitro":
                _symlink(f"../../nvme{ctrl}n1", by_id)
                paths.append(by_id)
        elif self.style == "by-id":
            _symlink(loop, by_id)
            paths.append(by_id)
        else:
            name = xen_name(requested_device) if self.style == "xen" else \
                os.path.basename(requested_device)
            node = f"{self.dev_root}/{name}"
            _symlink(loop, node)
            paths.append(node)
        self.entries[volume_id] = {"loop": loop, "paths": paths, "controller": ctrl,
                                   "device": requested_device}
        return self.entries[volume_id]

    def remove(self, volume_id):
        entry = self.entries.pop(volume_id, None)
        if entry is None:
            return None
        for path in entry["paths"]:
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
            elif os.path.isdir(path):
                shutil.rmtree(path)
        return entry
