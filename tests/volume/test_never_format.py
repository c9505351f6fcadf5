"""Never format a volume that holds anything: each signature below is refused with exit 12,
nothing is mounted, mkfs is never called, and the whole image is unchanged byte for byte.

Signatures at the end of the device (md metadata 1.0, the GPT backup header) are what a probe
of the first sectors alone would miss; unknown data without any signature is refused too."""
import os
import random
import tempfile

import pytest

from harness.loopdev import (MIB, XFS_MIN_BYTES, blkid_probe, make_ext4, make_gpt, make_luks,
                             make_lvm_pv, make_mbr, make_md_1_0, make_swap, make_xfs, run,
                             wipe_gpt_primary)

VOL = "vol-0123456789abcdef0"


def gpt_backup_only(device):
    make_gpt(device)
    wipe_gpt_primary(device)


def random_data(device):
    """Data no libblkid prober knows: a filesystem it cannot name, an encrypted blob."""
    rng = random.Random(42)
    with open(device, "r+b") as f:
        f.seek(64 * 1024)
        f.write(bytes(rng.getrandbits(8) for _ in range(4096)))


def wiped_xfs(device):
    """`wipefs -a` erases the magic only: the rest of the filesystem, its data, remains."""
    make_xfs(device)
    run("wipefs", "--all", "--quiet", device)


def data_at_the_end_only(device):
    with open(device, "r+b") as f:
        f.seek(-64 * 1024, os.SEEK_END)
        f.write(b"\xa5" * 4096)


def ext4_under_xfs(device):
    """Two filesystems at once (an XFS superblock over an ext4 one): libblkid calls it
    ambivalent, and mounting either would be a guess."""
    make_ext4(device)
    with tempfile.NamedTemporaryFile(dir="/tmp", prefix=f"kb-xfs-{os.getpid()}-") as other:
        other.truncate(XFS_MIN_BYTES)
        make_xfs(other.name)
        other.seek(0)
        sector = other.read(512)
    with open(device, "r+b") as f:
        f.write(sector)


SMALL = 64 * MIB
CASES = {
    # name: (writer, image size, what blkid(8) must see, words the refusal must name)
    "gpt": (make_gpt, SMALL, {"PTTYPE": "gpt"}, ["partition table", "gpt"]),
    "gpt_backup_header_only": (gpt_backup_only, SMALL, {}, ["partition table", "gpt"]),
    "mbr": (make_mbr, SMALL, {"PTTYPE": "dos"}, ["partition table", "dos"]),
    "lvm2_pv": (make_lvm_pv, SMALL, {"TYPE": "LVM2_member"}, ["LVM2_member"]),
    "luks": (make_luks, SMALL, {"TYPE": "crypto_LUKS"}, ["crypto_LUKS"]),
    "swap": (make_swap, SMALL, {"TYPE": "swap"}, ["swap"]),
    "md_raid_1_0_at_end": (make_md_1_0, SMALL, {"TYPE": "linux_raid_member"},
                           ["linux_raid_member"]),
    "unknown_data": (random_data, SMALL, {"TYPE": None}, ["first MiB"]),
    "wiped_xfs": (wiped_xfs, XFS_MIN_BYTES, {"TYPE": None}, ["first MiB"]),
    "data_in_last_mib_only": (data_at_the_end_only, SMALL, {"TYPE": None}, ["last MiB"]),
    "ambivalent_xfs_over_ext4": (ext4_under_xfs, XFS_MIN_BYTES, {"TYPE": None},
                                 ["several signatures", "ext4", "xfs"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_volume_with_signature_is_refused_and_left_unchanged(world, name):
    writer, size, seen, words = CASES[name]
    loop = world.loop(size)
    writer(loop.path)
    probe = blkid_probe(loop.path)
    for key, value in seen.items():
        assert probe.get(key) == value, probe  # the image carries what the case claims
    world.link_by_id(VOL, loop)
    before = loop.image.sha256()

    proc = world.run(3, VOL)

    assert proc.returncode == 12, (proc.returncode, proc.stderr)
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert world.mkfs_calls() == []
    assert world.mounted_device() is None
    assert not os.path.exists(world.log_dir)
    assert loop.image.sha256() == before


@pytest.mark.parametrize("name", ["gpt", "md_raid_1_0_at_end", "lvm2_pv"])
def test_plan_refuses_the_same_signatures(world, name):
    writer, size = CASES[name][:2]
    loop = world.loop(size)
    writer(loop.path)
    world.link_by_id(VOL, loop)
    before = loop.image.sha256()
    proc = world.run(3, VOL, "--plan")
    assert proc.returncode == 12, proc.stderr
    assert world.mkfs_calls() == []
    assert loop.image.sha256() == before


def test_gpt_backup_case_has_no_primary_header_left(world):
    """The backup-only case really is one: blkid(8) in its default mode (no forced GPT) finds
    no partition table, so only a probe that reads the end of the device catches it."""
    loop = world.loop()
    gpt_backup_only(loop.path)
    with open(loop.path, "rb") as f:
        start = f.read(34 * 512)
        f.seek(-512, os.SEEK_END)
        last = f.read(512)
    assert start == b"\0" * len(start)
    assert last.startswith(b"EFI PART")


@pytest.mark.parametrize("writer", [make_xfs, make_ext4], ids=["xfs", "ext4"])
def test_filesystem_is_never_reformatted_even_when_another_type_is_configured(world, writer):
    loop = world.xfs_loop()
    writer(loop.path)
    world.link_by_id(VOL, loop)
    other = "ext4" if writer is make_xfs else "xfs"
    proc = world.run(3, VOL, config={"FILESYSTEM": other})
    assert proc.returncode == 0, proc.stderr
    assert world.mkfs_calls() == []


def held_exclusively(loop):
    """Another program's exclusive open (as an md array or device-mapper holds its members)."""
    return os.open(loop.path, os.O_RDONLY | os.O_EXCL)


def test_blank_volume_someone_holds_is_refused_as_in_use_and_left_unchanged(world):
    loop = world.loop()
    world.link_by_id(VOL, loop)
    before = loop.image.sha256()
    fd = held_exclusively(loop)
    try:
        proc = world.run(3, VOL)
    finally:
        os.close(fd)
    assert proc.returncode not in (0, 12), (proc.returncode, proc.stderr)
    assert "in use" in proc.stderr, proc.stderr
    assert world.mkfs_calls() == []
    assert world.mounted_device() is None
    assert loop.image.sha256() == before


def test_volume_someone_holds_is_still_refused_for_what_it_holds(world):
    """Being held does not hide a signature: the refusal names it, with its own exit code."""
    loop = world.loop()
    make_gpt(loop.path)
    world.link_by_id(VOL, loop)
    fd = held_exclusively(loop)
    try:
        proc = world.run(3, VOL)
    finally:
        os.close(fd)
    assert proc.returncode == 12, (proc.returncode, proc.stderr)
    assert "partition table" in proc.stderr, proc.stderr
    assert world.mkfs_calls() == []
