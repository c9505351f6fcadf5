"""Block devices for tests: sparse image files behind loop devices, and the signatures that
real volumes carry (filesystems, partition tables, LVM, LUKS, swap, md RAID), written by the
real tools that make them.

Everything is cleaned up by the context managers, also on failure: mounts of the device,
any md array assembled from it, the loop device itself. Images live in the caller's temporary
directory; XFS needs at least 300 MB (sparse, so it costs nothing on disk).

    with Image(tmp / "vol.img", 64 << 20) as img, LoopDevice(img.path) as loop:
        make_swap(loop.path)
"""
import hashlib
import os
import struct
import subprocess
import uuid

MIB = 1 << 20
XFS_MIN_BYTES = 320 * MIB


def run(*argv, check=True, input=None):
    """Runs a tool; returns its stdout. Raises with its stderr on failure."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def blkid_probe(device):
    """What libblkid sees, through blkid(8) as an independent reader: {'TYPE': ..., ...}."""
    proc = subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True,
                          text=True)
    values = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


class Image:
    """A sparse image file of `size` bytes, deleted on exit."""

    def __init__(self, path, size):
        self.path = str(path)
        self.size = size

    def __enter__(self):
        with open(self.path, "wb") as f:
            f.truncate(self.size)
        return self

    def __exit__(self, *exc):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def sha256(self):
        return sha256_file(self.path)


def mounts_of(device):
    """Mount points of device, from /proc/self/mountinfo (by major:minor)."""
    rdev = os.stat(device).st_rdev
    wanted = f"{os.major(rdev)}:{os.minor(rdev)}"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[2] == wanted:
                points.append(fields[4].encode().decode("unicode_escape"))
    return points


def stop_md_arrays_holding(device):
    """Stops any md array the host assembled from device (udev incremental assembly)."""
    name = os.path.basename(os.path.realpath(device))
    holders = f"/sys/block/{name}/holders"
    if not os.path.isdir(holders):
        return
    for holder in os.listdir(holders):
        if holder.startswith("md"):
            run("mdadm", "--stop", f"/dev/{holder}", check=False)


class LoopDevice:
    """A loop device over an image file; on exit everything on it is unmounted, arrays on it
    stopped, and it is detached."""

    def __init__(self, image_path):
        self.image_path = str(image_path)
        self.path = None

    def __enter__(self):
        self.path = run("losetup", "--find", "--show", self.image_path).strip()
        return self

    def __exit__(self, *exc):
        if not self.path:
            return
        for point in reversed(mounts_of(self.path)):
            run("umount", "-l", point, check=False)
        stop_md_arrays_holding(self.path)
        run("losetup", "-d", self.path, check=False)

    @property
    def size(self):
        return int(run("blockdev", "--getsize64", self.path))


# Signatures, each written by the tool that makes it in real life.

def make_xfs(device, label="data"):
    run("mkfs.xfs", "-q", "-L", label, device)


def make_ext4(device, label="data"):
    run("mkfs.ext4", "-q", "-F", "-L", label, device)


def make_gpt(device):
    run("sgdisk", "--clear", "--new=1:2048:+16M", "--typecode=1:8300", device)


def wipe_gpt_primary(device):
    """Zeros the protective MBR, the primary GPT header and its entries (LBA 0-33): only the
    backup header and entries at the end of the device remain."""
    with open(device, "r+b") as f:
        f.write(b"\0" * (34 * 512))
        f.flush()
        os.fsync(f.fileno())


def make_mbr(device):
    run("sfdisk", "--quiet", device, input="label: dos\nstart=2048, size=32768, type=83\n")


def make_lvm_pv(device):
    # No volume group: nothing for the host to activate, nothing to remove afterwards.
    run("pvcreate", "--quiet", "--yes", "--force", device)


def make_luks(device):
    # Fast key derivation: the header is what matters, not its strength.
    run("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
        "--pbkdf-force-iterations", "1000", device, "-", input="test-passphrase")


def make_swap(device):
    run("mkswap", device)


def md_superblock_1_0(size_bytes):
    """An md RAID1 superblock, metadata 1.0, as mdadm writes it: 8-16 sectors before the end
    of the device, checksummed (super1.c calc_sb_1_csum). Returns (offset, bytes)."""
    sectors = size_bytes // 512
    sb_offset = (sectors - 16) & ~7
    max_dev = 2
    sb = bytearray(256 + 2 * max_dev)
    struct.pack_into("<IIII", sb, 0, 0xA92B4EFC, 1, 0, 0)
    sb[16:32] = uuid.uuid4().bytes
    sb[32:64] = b"kb-test:0".ljust(32, b"\0")
    struct.pack_into("<QIIQIII", sb, 64, 0, 1, 0, sb_offset - 16, 0, 2, 0)  # level 1, 2 disks
    struct.pack_into("<QQQQ", sb, 128, 0, sb_offset - 16, sb_offset, 0)  # data, size, super
    sb[168:184] = uuid.uuid4().bytes
    struct.pack_into("<QQQ", sb, 192, 0, 1, 0xFFFFFFFFFFFFFFFF)  # utime, events, resync
    struct.pack_into("<I", sb, 220, max_dev)
    struct.pack_into("<HH", sb, 256, 0, 0xFFFF)  # this device role 0, the other missing
    csum = sum(struct.unpack_from(f"<{len(sb) // 4}I", sb))
    csum = ((csum & 0xFFFFFFFF) + (csum >> 32)) & 0xFFFFFFFF
    struct.pack_into("<I", sb, 216, csum)
    return sb_offset * 512, bytes(sb)


def make_md_1_0(device):
    """An md RAID1 member with metadata 1.0 (superblock at the end, data from sector 0).

    With the md driver, mdadm creates the array and it is stopped again at once. Without it
    (no /proc/mdstat, as in this project's containers) mdadm cannot create anything, so the
    superblock is written as mdadm lays it out, and `mdadm --examine` (userspace, no driver)
    must accept it: the test then rests on mdadm's reading, not on ours."""
    if os.path.exists("/proc/mdstat"):
        name = f"/dev/md/kbtest{os.getpid()}"
        run("mdadm", "--create", name, "--run", "--metadata=1.0", "--level=1",
            "--raid-devices=2", device, "missing")
        run("mdadm", "--stop", name)
        stop_md_arrays_holding(device)
    else:
        size = int(run("blockdev", "--getsize64", device))
        offset, sb = md_superblock_1_0(size)
        with open(device, "r+b") as f:
            f.seek(offset)
            f.write(sb)
            f.flush()
            os.fsync(f.fileno())
    examined = run("mdadm", "--examine", device)
    assert "Version : 1.0" in examined, examined
