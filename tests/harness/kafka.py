"""A stand-in for Kafka in the simulated world: what a broker writes to ZooKeeper once it
joined the cluster, and nothing else.

Kafka 3.9 in ZooKeeper mode registers itself as the ephemeral node /brokers/ids/<id> (the
parents persistent), with JSON whose "endpoints" are its advertised.listeners; that node is
what `kafka-bootstrap signal --wait-registered` waits for. The stand-in writes the same node
with kazoo, from a client whose connection lives in the world's vpc namespace (the only place
ZooKeeper's address is reachable): kazoo's connection thread is started from a thread inside
that namespace and inherits it.

    with StandInKafka(world) as kafka:
        kafka.register(0, "PLAINTEXT://10.0.1.10:9092", rack="use1-az6")
        ...                                   # the node lives as long as the session

The broker's reading of server.properties is Java's own: `java_view(path)` loads it with
java.util.Properties, as Kafka does (tests/properties/LoadProperties.java).
"""
import json
import os
import subprocess
import time

from kazoo.client import KazooClient


LOAD_PROPERTIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "properties",
                               "LoadProperties.java")


def unescape_java(text):
    """Java's \\uXXXX output back to a Python string (surrogate pairs joined)."""
    decoded = text.encode().decode("unicode_escape")
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16")


def java_view(path):
    """{key: value} of a properties file as java.util.Properties loads it."""
    out = subprocess.run(["java", LOAD_PROPERTIES, str(path)],
                         capture_output=True, text=True, check=True, timeout=120)
    view = {}
    for line in out.stdout.splitlines():
        key, value = line.split("\t")
        view[unescape_java(key)] = unescape_java(value)
    return view


def endpoints_of(listeners):
    """advertised.listeners as the list Kafka puts in "endpoints"."""
    return [e.strip() for e in listeners.split(",") if e.strip()]


def registration_json(broker_id, listeners, rack=None):
    """The node's content as Kafka 3.9's BrokerInfo writes it (version 5)."""
    endpoints = endpoints_of(listeners)
    first = endpoints[0].split("://", 1)[1]
    host, port = first.rsplit(":", 1)
    body = {"features": {}, "listener_security_protocol_map": {
                e.split("://", 1)[0]: "PLAINTEXT" for e in endpoints},
            "endpoints": endpoints, "jmx_port": -1, "port": int(port), "host": host.strip("[]"),
            "version": 5, "timestamp": str(int(time.time() * 1000))}
    if rack:
        body["rack"] = rack
    return json.dumps(body)


def vpc_client(world, timeout=10):
    """A started KazooClient whose connection lives in the world's vpc namespace."""
    def start():
        zk = KazooClient(hosts=world.zookeeper_connect, timeout=timeout)
        zk.start(timeout=timeout)
        return zk
    return world.in_vpc(start)


class StandInKafka:
    """Registers brokers as Kafka does; one ZooKeeper session for all of them, so close()
    (or losing the session) unregisters every one, as brokers that died would be."""

    def __init__(self, world):
        self.world = world
        self.zk = vpc_client(world)
        self.registered_at = {}   # broker id -> time.time() of the registration

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def register(self, broker_id, listeners, rack=None):
        self.zk.create(f"/brokers/ids/{broker_id}",
                       registration_json(broker_id, listeners, rack).encode(),
                       ephemeral=True, makepath=True)
        self.registered_at[broker_id] = time.time()

    def unregister(self, broker_id):
        self.zk.delete(f"/brokers/ids/{broker_id}")
        self.registered_at.pop(broker_id, None)

    def close(self):
        if self.zk is not None:
            self.zk.stop()
            self.zk.close()
            self.zk = None
