"""`kafka-bootstrap signal --wait-registered`: SUCCESS only once Kafka registered this broker
with the endpoints server.properties advertises; FAILURE (and Unhealthy) when it never does,
or when another endpoint holds the id. A real ZooKeeper; kazoo plays Kafka."""
import json
import os
import subprocess
import time

import pytest
from kazoo.client import KazooClient

from harness.zookeeper import ZooKeeper
from signal_common import INSTANCE, kb_signal, start_fake

ENDPOINTS = ["PLAINTEXT://10.0.1.100:9092", "INTERNAL://10.0.1.100:9093"]


@pytest.fixture(scope="module")
def zk():
    with ZooKeeper() as server:
        yield server


@pytest.fixture
def fake():
    f = start_fake()
    yield f
    f.stop()
    assert f.errors() == []


@pytest.fixture
def kafka(zk):
    client = KazooClient(hosts=zk.connect)
    client.start()
    yield client
    client.stop()
    client.close()


def write_properties(tmp_path, broker_id=3, listeners=",".join(ENDPOINTS)):
    path = tmp_path / "server.properties"
    path.write_text(f"# operator\nbroker.id={broker_id}\nadvertised.listeners={listeners}\n")
    return path


def register(kafka, broker_id, endpoints):
    kafka.create(f"/brokers/ids/{broker_id}", json.dumps({
        "version": 5, "host": "10.0.1.100", "port": 9092, "jmx_port": -1,
        "endpoints": endpoints, "timestamp": str(int(time.time() * 1000)),
        "rack": "use1-az1"}).encode(), ephemeral=True, makepath=True)


def config(zk, tmp_path, **extra):
    cfg = {"zookeeper_connect": zk.connect, "properties_path": str(tmp_path / "server.properties"),
           "register_deadline_s": 10}
    cfg.update(extra)
    return cfg


def test_success_is_sent_once_kafka_registered_with_our_endpoints(fake, zk, kafka, tmp_path):
    write_properties(tmp_path)
    proc = kb_signal(fake, tmp_path, "--wait-registered", config=config(zk, tmp_path), wait=False)
    time.sleep(1.5)
    assert proc.poll() is None, "SUCCESS must wait for the registration"
    assert fake.signals() == []
    register(kafka, 3, list(reversed(ENDPOINTS)))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [(s["status"], s["unique_id"]) for s in fake.signals()] == [("SUCCESS", INSTANCE)]
    assert fake.autoscaling_calls() == []
    kafka.delete("/brokers/ids/3")


def test_no_registration_by_the_deadline_is_a_failure(fake, zk, tmp_path):
    write_properties(tmp_path, broker_id=4)
    r = kb_signal(fake, tmp_path, "--wait-registered",
                  config=config(zk, tmp_path, register_deadline_s=2))
    assert r.returncode == 75, r.stderr
    assert "did not register broker 4" in r.stderr
    assert [s["status"] for s in fake.signals()] == ["FAILURE"]
    assert [(c["action"], c["params"]["HealthStatus"]) for c in fake.autoscaling_calls()] == [
        ("SetInstanceHealth", "Unhealthy")]
    assert "Kafka is not healthy" in (tmp_path / "console").read_text()


def test_id_registered_by_another_endpoint_is_a_failure_naming_it(fake, zk, kafka, tmp_path):
    write_properties(tmp_path, broker_id=5)
    register(kafka, 5, ["PLAINTEXT://10.0.9.9:9092"])
    r = kb_signal(fake, tmp_path, "--wait-registered",
                  config=config(zk, tmp_path, register_deadline_s=2))
    assert r.returncode == 75, r.stderr
    assert "10.0.9.9" in r.stderr and "another broker holds this id" in r.stderr
    assert [s["status"] for s in fake.signals()] == ["FAILURE"]
    kafka.delete("/brokers/ids/5")


def test_without_server_properties_nothing_is_awaited(fake, zk, tmp_path):
    r = kb_signal(fake, tmp_path, "--wait-registered", config=config(zk, tmp_path))
    assert r.returncode == 70, r.stderr
    assert "server.properties" in r.stderr
    assert [s["status"] for s in fake.signals()] == ["FAILURE"]
