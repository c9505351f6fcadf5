"""The packages CPack makes: the .deb declares what the binary links, ships the units, drop-in,
man page and example configuration where an operator looks, and installs into a clean Debian 12
root made by debootstrap (from the Debian mirror, like apt) where the tool then runs and purges
cleanly. The .rpm, when rpmbuild exists, carries the same files with the same config marks.
Packages come from plain builds: a sanitizer build is skipped."""
import os
import re
import shutil
from pathlib import Path

import pytest

from deploytools import BINARY_DIR, KB_BINARY, run

MIRROR = os.environ.get("KB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CONFFILES = ["/etc/kafka-bootstrap/config.example.json"]
FILES = [
    "/etc/kafka-bootstrap/config.d/",
    "/etc/kafka-bootstrap/config.example.json",
    "/lib/systemd/networkd.conf.d/80-kafka-bootstrap.conf",
    "/lib/systemd/system/kafka-bootstrap-signal.service",
    "/lib/systemd/system/kafka-bootstrap.service",
    "/lib/systemd/system/kafka.service.d/10-kafka-bootstrap.conf",
    "/usr/bin/kafka-bootstrap",
    "/usr/share/doc/kafka-bootstrap/copyright",
    "/usr/share/man/man8/kafka-bootstrap.8.gz",
]

pytestmark = pytest.mark.skipif(
    "KB_SANITIZE:BOOL=ON" in (BINARY_DIR / "CMakeCache.txt").read_text(),
    reason="packages are made from plain builds, not sanitizer builds")


def cpack(generator, out):
    run(["cpack", "-G", generator, "-B", out, "--config", BINARY_DIR / "CPackConfig.cmake"])
    found = [p for p in out.iterdir() if p.suffix == "." + generator.lower()]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    return cpack("DEB", tmp_path_factory.mktemp("deb"))


def field(deb_path, name):
    return run(["dpkg-deb", "--field", deb_path, name]).stdout.strip()


def owner(path):
    """The package owning a library; dpkg knows it under /lib or /usr/lib (merged /usr)."""
    candidates = []
    for p in (path, os.path.realpath(path)):
        candidates += [p, re.sub(r"^/usr/lib/", "/lib/", p), re.sub(r"^/lib/", "/usr/lib/", p)]
    for p in candidates:
        proc = run(["dpkg", "-S", p], check=False)
        if proc.returncode == 0:
            return proc.stdout.split(":")[0]
    raise AssertionError(f"no package owns {path}")


def needed_libraries():
    """{soname: path} of the shared libraries the binary links directly (its NEEDED entries;
    ldd would add their own dependencies)."""
    needed = re.findall(r"^\s*NEEDED\s+(\S+)$", run(["objdump", "-p", KB_BINARY]).stdout, re.M)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", KB_BINARY]).stdout, re.M))
    return {soname: paths[soname] for soname in needed}


def needed_packages():
    """Debian packages of the shared libraries the binary links."""
    return {owner(path) for path in needed_libraries().values()}


def test_deb_depends_on_every_library_the_binary_links(deb):
    depends = {re.split(r"[ (]", d.strip())[0] for d in field(deb, "Depends").split(",")}
    needed = needed_packages()
    assert "libc6" in needed
    assert needed <= depends, f"missing from Depends: {needed - depends}"


def test_deb_ships_units_drop_in_man_page_and_example_config(deb, tmp_path):
    listing = run(["dpkg-deb", "--contents", deb]).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    shipped = sorted(p for p in paths if not p.endswith("/") or p.rstrip("/") == "/etc/kafka-bootstrap/config.d")
    assert shipped == FILES
    run(["dpkg-deb", "--control", deb, tmp_path / "control"])
    assert (tmp_path / "control" / "conffiles").read_text().split() == CONFFILES
    for script in ("postinst", "postrm"):
        text = (tmp_path / "control" / script).read_text()
        assert os.access(tmp_path / "control" / script, os.X_OK)
        # Restarting kafka-bootstrap.service would restart Kafka: never on install or upgrade.
        assert not re.search(r"systemctl\s+(start|restart|stop|enable|try-restart)|deb-systemd-invoke", text)
    assert field(deb, "Section") == "admin"


@pytest.fixture(scope="module")
def debian_root(deb):
    """A clean Debian 12 (minbase) with the .deb installed by apt, resolving its Depends."""
    root = Path(f"/var/tmp/kb-bookworm-{os.getpid()}")
    shutil.rmtree(root, ignore_errors=True)
    try:
        run(["debootstrap", "--variant=minbase", "bookworm", root, MIRROR])
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        shutil.copy(deb, root / "tmp" / deb.name)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
        run(["chroot", root, "apt-get", "update"], env=env)
        run(["chroot", root, "apt-get", "install", "-y", "--no-install-recommends", f"/tmp/{deb.name}"],
            env=env)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_deb_installs_into_clean_debian_12_and_runs(debian_root):
    version = run([KB_BINARY, "--version"]).stdout
    assert run(["chroot", debian_root, "kafka-bootstrap", "--version"]).stdout == version
    assert run(["chroot", debian_root, "kafka-bootstrap", "config", "--keys"]).stdout == \
        run([KB_BINARY, "config", "--keys"]).stdout
    conffiles = run(["chroot", debian_root, "dpkg-query", "-W", "-f", "${Conffiles}", "kafka-bootstrap"]).stdout
    assert [line.split()[0] for line in conffiles.strip().splitlines()] == CONFFILES
    for path in FILES:
        assert (debian_root / path.lstrip("/")).exists(), path


def test_deb_purges_cleanly(debian_root):
    run(["chroot", debian_root, "dpkg", "--purge", "kafka-bootstrap"])
    for path in FILES + ["/etc/kafka-bootstrap/"]:
        assert not (debian_root / path.lstrip("/")).exists(), path


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed")
def test_rpm_ships_the_same_files_with_only_the_example_as_config(tmp_path):
    rpm = cpack("RPM", tmp_path)
    listed = run(["rpm", "-qlp", rpm]).stdout.split()
    assert sorted(p for p in listed if not p.startswith("/usr/lib/.build-id")) == sorted(
        [p.rstrip("/") for p in FILES] + ["/etc/kafka-bootstrap", "/lib/systemd/system/kafka.service.d",
                                          "/usr/share/doc/kafka-bootstrap"])
    assert run(["rpm", "-qp", "--configfiles", rpm]).stdout.split() == CONFFILES
    requires = run(["rpm", "-qp", "--requires", rpm]).stdout.split()
    for soname in needed_libraries():
        assert soname + "()(64bit)" in requires
    scripts = run(["rpm", "-qp", "--scripts", rpm]).stdout
    assert "systemctl daemon-reload" in scripts and "postuninstall" in scripts
