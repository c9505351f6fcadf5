"""Fixtures of the claim tests: one real ZooKeeper per test file, a latency proxy in front of
it, and a fresh chroot per test (tests share the server, never their nodes)."""
import pytest

from harness.claimers import Chroots, Claimers, Reader
from harness.tcpproxy import TcpProxy
from harness.zookeeper import ZooKeeper


@pytest.fixture(scope="module")
def zookeeper():
    with ZooKeeper() as zk:
        yield zk


@pytest.fixture
def proxy(zookeeper):
    """5 ms each way: a ZooKeeper round trip as between hosts, so racing claimers overlap."""
    with TcpProxy(zookeeper.host, zookeeper.port, latency_ms=5) as p:
        yield p


@pytest.fixture
def chroot():
    return Chroots.new()


def reader_for(zookeeper, chroot, auth=None, cluster="default"):
    return Reader(f"{zookeeper.connect}{chroot}", cluster=cluster, auth=auth)


def claimers_for(connect, chroot, candidates="0-3", args=()):
    return Claimers(f"{connect}{chroot}", candidates, args)


def make_parents(zookeeper, chroot, cluster="default"):
    """The claim's parent nodes, as a cluster's first boot leaves them."""
    from kazoo.client import KazooClient
    client = KazooClient(hosts=zookeeper.connect, timeout=10)
    client.start(timeout=15)
    try:
        for leaf in ("claims", "instances"):
            client.ensure_path(f"{chroot}/kafka-bootstrap/{cluster}/{leaf}")
    finally:
        client.stop()
        client.close()
