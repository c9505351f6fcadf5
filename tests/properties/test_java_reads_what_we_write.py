"""server.properties as Kafka reads it: java.util.Properties loads the file kafka-bootstrap
wrote, and sees every managed key with the value set, the operator's keys unchanged, and the
comments still in the file."""
import os
import subprocess

import pytest

from harness.kafka import java_view

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.environ.get("KB_BINARY_DIR", os.path.join(HERE, "..", "..", "build")),
                    "tools", "kb-properties")

BASE = """\
# Licensed to the Apache Software Foundation (ASF) ...
############################# Server Basics #############################
broker.id=0
num.network.threads=3
socket.send.buffer.bytes=102400
log.dirs=/tmp/kafka-logs
# operator's override, must survive
log.retention.hours=168
zookeeper.connect=localhost:2181
log.dirs=/tmp/also-stale
message.max.bytes = 2000000
"""

MANAGED = {
    "broker.id": "7",
    "broker.rack": "use1-az6",
    "listeners": "PLAINTEXT://10.0.1.23:9092,INTERNAL://10.0.1.23:9093",
    "advertised.listeners": "PLAINTEXT://10.0.1.23:9092",
    "log.dirs": "/var/lib/kafka/logs",
    "zookeeper.connect": "10.0.1.10:2181,10.0.2.10:2181/kafka",
    # Values Java mangles unless escaped: leading blank, backslash, non-Latin-1 text.
    "x.leading": "  two spaces",
    "x.backslash": "C:\\kafka\\logs",
    "x.unicode": "caf\u00e9 \u20ac \U0001F600",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("props")
    (d / "base.properties").write_text(BASE)
    subprocess.run([TOOL, d / "base.properties", d / "server.properties"] +
                   [f"{k}={v}" for k, v in MANAGED.items()], check=True)
    return d / "server.properties"


def test_java_reads_every_managed_key_as_set(written):
    view = java_view(written)
    for key, value in MANAGED.items():
        assert view[key] == value, key


def test_operator_keys_keep_their_values(written):
    view = java_view(written)
    assert view["num.network.threads"] == "3"
    assert view["log.retention.hours"] == "168"
    assert view["message.max.bytes"] == "2000000"


def test_comments_and_order_survive(written):
    text = written.read_text(encoding="latin-1")
    assert text.startswith("# Licensed to the Apache Software Foundation (ASF) ...\n"
                           "############################# Server Basics")
    assert "# operator's override, must survive\nlog.retention.hours=168\n" in text
    assert text.index("broker.id=7") < text.index("num.network.threads=3")
    # The stale duplicate of log.dirs is gone: otherwise Java would read it.
    assert "/tmp/also-stale" not in text and "/tmp/kafka-logs" not in text


def test_written_file_is_mode_0640(written):
    assert oct(os.stat(written).st_mode & 0o7777) == "0o640"


@pytest.mark.parametrize("base", ["a=x\\\n", "a=x\\", "a=x\\\\\n", "a=x\\\n\n", "a=x\\\r"])
def test_key_appended_after_a_dangling_continuation_stays_a_key(base, tmp_path):
    (tmp_path / "base").write_bytes(base.encode())
    subprocess.run([TOOL, tmp_path / "base", tmp_path / "out", "broker.id=7"], check=True)
    view = java_view(tmp_path / "out")
    assert view["broker.id"] == "7"
    assert view["a"] == ("x\\" if base.startswith("a=x\\\\") else "x")
