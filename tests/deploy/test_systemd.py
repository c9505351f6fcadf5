"""The systemd units and the kafka.service drop-in, as the package installs them, with the
image's kafka.service (packer/files/kafka.service).

`systemd-analyze verify` runs in a mount namespace of its own where overlays put the install
tree (DESTDIR) over /usr/bin and /lib/systemd/system, the image's kafka.service beside it, and
a tmpfs on /opt holds a stand-in for Kafka's start script: the units are checked as a booting
broker would load them, with the binary they run and the man page they name, and the drop-in
is seen reaching kafka.service. The host's directories are never written."""
import os
import re

import pytest

from deploytools import BINARY_DIR, SOURCE_DIR, config_keys, run

UNIT_DIR = "lib/systemd/system"
IMAGE_KAFKA_UNIT = SOURCE_DIR / "packer" / "files" / "kafka.service"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("destdir")
    run(["cmake", "--install", BINARY_DIR], env=dict(os.environ, DESTDIR=str(root)))
    image_units = tmp_path_factory.mktemp("image-units")
    (image_units / "kafka.service").write_text(IMAGE_KAFKA_UNIT.read_text())
    return root, image_units


def unit(tree_root, name):
    """{section: {key: [values]}} of an installed unit file."""
    sections, current = {}, None
    for line in (tree_root / UNIT_DIR / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key, []).extend(value.split() if key in ("After", "Before", "Wants", "Requires") else [value])
    return sections


def verify(tree_root, image_units, units, debug=False):
    """systemd-analyze verify with the install tree over the host's directories."""
    script = (
        "set -e\n"
        "mount -t tmpfs kb-opt /opt\n"
        "mkdir -p /opt/kafka/bin\n"
        "printf '#!/bin/sh\\n' > /opt/kafka/bin/kafka-server-start.sh\n"
        "chmod 755 /opt/kafka/bin/kafka-server-start.sh\n"
        f"mount -t overlay kb-usr-bin -o lowerdir={tree_root}/usr/bin:/usr/bin /usr/bin\n"
        f"mount -t overlay kb-units -o lowerdir={tree_root}/{UNIT_DIR}:{image_units}:/{UNIT_DIR} /{UNIT_DIR}\n"
        'exec systemd-analyze verify "$@"\n')
    env = dict(os.environ, MANPATH=f"{tree_root}/usr/share/man")
    if debug:
        env["SYSTEMD_LOG_LEVEL"] = "debug"
    return run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "verify", *units],
               check=False, env=env)


def test_units_pass_systemd_analyze_verify_as_installed(tree):
    proc = verify(*tree, ["kafka-bootstrap.service", "kafka-bootstrap-signal.service", "kafka.service"])
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_verify_fails_on_a_unit_whose_program_is_missing(tree):
    root, image_units = tree
    path = root / UNIT_DIR / "kafka-bootstrap.service"
    good = path.read_text()
    try:
        path.write_text(good.replace("/usr/bin/kafka-bootstrap run", "/usr/bin/kafka-bootstrapp run"))
        proc = verify(root, image_units, ["kafka-bootstrap.service"])
    finally:
        path.write_text(good)
    assert proc.returncode != 0
    assert "kafka-bootstrapp" in proc.stderr


def test_drop_in_makes_kafka_require_and_follow_kafka_bootstrap(tree):
    proc = verify(*tree, ["kafka.service"], debug=True)
    assert proc.returncode == 0, proc.stderr
    dump = (proc.stdout + proc.stderr).split("-> Unit kafka.service:")[1].split("-> Unit ")[0]
    assert re.search(r"^\s+Requires: kafka-bootstrap\.service \(origin-file\)$", dump, re.M)
    assert re.search(r"^\s+After: kafka-bootstrap\.service \(origin-file", dump, re.M)
    drop_in = unit(tree[0], "kafka.service.d/10-kafka-bootstrap.conf")
    assert drop_in == {"Unit": {"Requires": ["kafka-bootstrap.service"], "After": ["kafka-bootstrap.service"]}}


def test_bootstrap_unit_runs_once_before_kafka_within_the_tools_deadline(tree):
    u = unit(tree[0], "kafka-bootstrap.service")
    keys = config_keys()
    assert u["Service"]["Type"] == ["oneshot"]
    assert u["Service"]["RemainAfterExit"] == ["yes"]
    assert u["Service"]["ExecStart"] == ["/usr/bin/kafka-bootstrap run"]
    assert {"network-online.target", "time-sync.target"} <= set(u["Unit"]["After"])
    assert u["Unit"]["Wants"] == ["network-online.target"]  # time-sync.target is never pulled in
    assert u["Unit"]["Before"] == ["kafka.service"]
    timeout = int(u["Service"]["TimeoutStartSec"][0])
    assert timeout > int(keys["deadline_s"]) + int(keys["signal_deadline_s"])
    # A mount namespace of its own would hide the volume it mounts from Kafka.
    private = {"PrivateTmp", "ProtectSystem", "ProtectHome", "PrivateDevices", "PrivateMounts",
               "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "TemporaryFileSystem"}
    assert not private & set(u["Service"])
    assert os.path.dirname(keys["status_file"]) == "/run/" + u["Service"]["RuntimeDirectory"][0]
    assert u["Install"]["WantedBy"] == ["multi-user.target"]


def test_signal_unit_waits_for_registration_after_kafka(tree):
    u = unit(tree[0], "kafka-bootstrap-signal.service")
    keys = config_keys()
    assert u["Service"]["Type"] == ["oneshot"]
    assert u["Service"]["ExecStart"] == ["/usr/bin/kafka-bootstrap signal --wait-registered"]
    assert u["Unit"]["After"] == ["kafka.service"] and u["Unit"]["Requires"] == ["kafka.service"]
    timeout = int(u["Service"]["TimeoutStartSec"][0])
    assert timeout > int(keys["register_deadline_s"]) + int(keys["signal_deadline_s"])
    assert u["Install"]["WantedBy"] == ["multi-user.target"]
