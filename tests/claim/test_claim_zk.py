"""The claim against a real ZooKeeper: reruns, lost connections, takeover rules, outages,
digest ACLs, plan and release. The claimer is tests/tools/claimer.c (the product's claim
module, owner states from the command line instead of EC2); kazoo reads what it left.

Ids 0-3 are the candidates; "held" sets up i-old<N> holding id N, as a cluster's first boot
would have.
"""
import json
import os
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from conftest import claimers_for, make_parents, reader_for
from harness import skewed_clock
from harness.claimers import Chroots
from harness.zookeeper import ZooKeeper, free_port

HELD = {n: f"i-old{n}" for n in range(4)}


@pytest.fixture
def claimers(zookeeper, chroot):
    with claimers_for(zookeeper.connect, chroot) as c:
        yield c


@pytest.fixture
def held(claimers):
    claimers.hold(HELD)
    return claimers


def kazoo(zookeeper, chroot="", auth=None):
    client = KazooClient(hosts=f"{zookeeper.connect}{chroot}", timeout=10,
                         auth_data=[("digest", auth)] if auth else None)
    client.start(timeout=15)
    return client


def test_claim_writes_claim_and_index_and_a_rerun_reads_one_node_and_writes_nothing(
        zookeeper, chroot, claimers):
    first, text = claimers.run_one("i-0a1")
    assert first["returncode"] == 0 and first["outcome"] == "claimed", text
    bid = first["broker_id"]
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {bid: "i-0a1"}
        record, claim_stat = r.claims()[bid]
        _, index_stat = r.instances()["i-0a1"]
    assert record["eni_id"] == f"eni-{bid:04d}" and record["volume_id"] == f"vol-{bid:04d}"
    assert record["az"] == "us-east-1a" and record["az_id"] == "use1-az1"
    assert record["claimed_at"].endswith("Z")
    # Created by one multi: same transaction.
    assert claim_stat.czxid == index_stat.czxid

    again, text = claimers.run_one("i-0a1")
    assert again["returncode"] == 0 and again["outcome"] == "held", text
    assert again["broker_id"] == bid
    assert again["ops"] == 1
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {bid: "i-0a1"}
        assert r.claims()[bid][1].mzxid == claim_stat.mzxid
        assert r.instances()["i-0a1"][1].mzxid == index_stat.mzxid


def test_connection_dropped_after_a_successful_claim_ends_with_one_claim_its_own(
        zookeeper, proxy, chroot):
    make_parents(zookeeper, chroot)
    proxy.drop_after_successful_writes(1)
    with claimers_for(f"127.0.0.1:{proxy.port}", chroot) as c:
        result, text = c.run_one("i-0d1", ["--log-level", "debug"])
    assert proxy.dropped == 1
    assert result["returncode"] == 0, text
    assert "sending the request again" in text
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {result["broker_id"]: "i-0d1"}


def test_connection_dropped_after_a_successful_takeover_ends_with_the_takeover(
        zookeeper, proxy, chroot, held):
    proxy.drop_after_successful_writes(1)
    with claimers_for(f"127.0.0.1:{proxy.port}", chroot) as c:
        result, text = c.run_one("i-new", ["--owner", "i-old2=terminated",
                                           "--log-level", "debug"])
    assert proxy.dropped == 1
    assert result["returncode"] == 0 and result["broker_id"] == 2, text
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {**HELD, 2: "i-new"}


def test_terminated_owner_is_taken_over_exactly_once_when_two_replacements_race(
        zookeeper, proxy):
    for _ in range(3):
        chroot = Chroots.new("takeover")
        with claimers_for(zookeeper.connect, chroot) as setup:
            setup.hold(HELD)
        with claimers_for(f"127.0.0.1:{proxy.port}", chroot) as c:
            results = c.run_together(["i-new1", "i-new2"], ["--owner", "i-old2=terminated"])
        winners = [r for r in results if r["returncode"] == 0]
        assert len(winners) == 1, results
        assert winners[0]["outcome"] == "taken_over" and winners[0]["broker_id"] == 2
        assert winners[0]["previous_owner"] == "i-old2"
        assert winners[0]["previous_state"] == "terminated"
        loser = next(r for r in results if r["returncode"] != 0)
        assert loser["returncode"] == 10, loser
        # Its error describes the claim as it is after the race, not before.
        assert f"2: {winners[0]['instance']}, owner running" in loser["error"]
        with reader_for(zookeeper, chroot) as r:
            assert r.check_consistent() == {**HELD, 2: winners[0]["instance"]}
            assert "i-old2" not in r.instances()


def test_live_registration_in_brokers_ids_blocks_the_takeover(zookeeper, chroot, held):
    kafka = kazoo(zookeeper, chroot)
    try:
        kafka.create("/brokers/ids/2", b"{}", ephemeral=True, makepath=True)
        started = time.monotonic()
        result, text = held.run_one("i-new", ["--owner", "i-old2=terminated",
                                              "--deadline-ms", "3000"])
        assert result["returncode"] == 10, text
        assert time.monotonic() - started < 10
        assert "registered in /brokers/ids" in result["error"]
        with reader_for(zookeeper, chroot) as r:
            assert r.check_consistent() == HELD
    finally:
        kafka.stop()
        kafka.close()


def test_stopped_owner_is_not_taken_over_without_the_flag_and_is_with_it(held, zookeeper,
                                                                        chroot):
    result, text = held.run_one("i-new", ["--owner", "i-old1=stopped"])
    assert result["returncode"] == 10, text
    assert "1: i-old1, owner stopped" in result["error"]
    assert "--take-over-stopped" in result["error"]
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == HELD

    result, text = held.run_one("i-new", ["--owner", "i-old1=stopped", "--take-over-stopped"])
    assert result["returncode"] == 0, text
    assert (result["broker_id"], result["outcome"]) == (1, "taken_over")
    # The later stages detach the ENI and volume from the stopped owner: they must know.
    assert result["previous_state"] == "stopped" and result["previous_owner"] == "i-old1"
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {**HELD, 1: "i-new"}


def test_unknown_owner_is_taken_over_only_after_the_grace_period(held, zookeeper, chroot):
    result, text = held.run_one("i-new", ["--owner", "i-old3=unknown", "--grace", "600"])
    assert result["returncode"] == 10, text
    assert "3: i-old3, owner unknown to EC2, but the claim is only" in result["error"]
    with reader_for(zookeeper, chroot) as r:
        age = time.time() - r.claims()[3][1].mtime / 1000
    time.sleep(max(0.0, 2.2 - age))
    result, text = held.run_one("i-new", ["--owner", "i-old3=unknown", "--grace", "2"])
    assert result["returncode"] == 0 and result["broker_id"] == 3, text
    assert result["previous_state"] == "unknown"
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {**HELD, 3: "i-new"}


@pytest.fixture(scope="module")
def clock_shim(tmp_path_factory):
    return skewed_clock.build(str(tmp_path_factory.mktemp("clock")))


def test_a_claimer_whose_clock_is_11_minutes_fast_does_not_take_a_young_claim(
        held, zookeeper, chroot, clock_shim):
    """A booting instance's clock may be minutes off: the age of an unknown owner's claim is
    measured on ZooKeeper's clock, not ours."""
    with reader_for(zookeeper, chroot) as r:
        # The claims of the cluster's first boot were free ids: no clock was needed.
        assert not r.client.exists("/kafka-bootstrap/default/clock")
    result, text = held.run_one("i-new", ["--owner", "i-old3=unknown", "--grace", "600"],
                                env=skewed_clock.env(clock_shim, +660))
    assert result["returncode"] == 10, text
    assert "3: i-old3, owner unknown to EC2, but the claim is only" in result["error"]
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == HELD
        assert r.client.exists("/kafka-bootstrap/default/clock")


def test_a_claimer_whose_clock_is_11_minutes_slow_still_takes_an_old_claim(
        held, zookeeper, chroot, clock_shim):
    with reader_for(zookeeper, chroot) as r:
        age = time.time() - r.claims()[3][1].mtime / 1000
    time.sleep(max(0.0, 2.2 - age))
    result, text = held.run_one("i-new", ["--owner", "i-old3=unknown", "--grace", "2"],
                                env=skewed_clock.env(clock_shim, -660))
    assert result["returncode"] == 0 and result["broker_id"] == 3, text
    assert "owner unknown to EC2 and the claim is 2s old" in result["reason"]
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {**HELD, 3: "i-new"}


def test_shutting_down_owner_is_waited_for_and_taken_over_once_terminated(held, zookeeper,
                                                                          chroot):
    owners = os.path.join(held.dir, "owners.json")
    with open(owners, "w") as f:
        json.dump({"i-old0": "shutting-down"}, f)
    started = time.monotonic()
    proc = held.start_one("i-new", ["--owners-file", owners, "--deadline-ms", "30000"])
    time.sleep(3)
    assert proc.poll() is None, "gave up on a shutting-down owner instead of waiting"
    with open(owners + ".tmp", "w") as f:
        json.dump({"i-old0": "terminated"}, f)
    os.rename(owners + ".tmp", owners)
    result = held.finish(proc)
    assert result["returncode"] == 0 and result["broker_id"] == 0, result
    assert result["previous_state"] == "terminated"
    assert result["owner_calls"] >= 2
    assert time.monotonic() - started >= 3
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {**HELD, 0: "i-new"}


def test_a_node_that_is_not_a_claim_record_is_never_taken(zookeeper, chroot, held):
    client = kazoo(zookeeper, chroot)
    try:
        client.delete("/kafka-bootstrap/default/instances/i-old0")
        client.set("/kafka-bootstrap/default/claims/0", b"not json")
    finally:
        client.stop()
        client.close()
    result, text = held.run_one("i-new", ["--default-state", "terminated"])
    # 1-3 are takeable (terminated owners); 0 never is.
    assert result["returncode"] == 0 and result["broker_id"] in (1, 2, 3), text
    result, text = held.run_one("i-new2", candidates="0")
    assert result["returncode"] == 10 and "not a kafka-bootstrap claim" in result["error"]


def test_zookeeper_down_at_start_and_up_5_s_later_the_claim_succeeds():
    port = free_port()
    zk = ZooKeeper(port=port)
    try:
        chroot = Chroots.new("late")
        with claimers_for(zk.connect, chroot) as c:
            started = time.monotonic()
            proc = c.start_one("i-late", ["--deadline-ms", "40000",
                                          "--session-timeout-ms", "6000"])
            time.sleep(5)
            assert proc.poll() is None
            zk.start()
            result = c.finish(proc)
        assert result["returncode"] == 0, result
        assert time.monotonic() - started >= 5
        with reader_for(zk, chroot) as r:
            assert r.check_consistent() == {result["broker_id"]: "i-late"}
    finally:
        zk.close()


def test_zookeeper_never_up_exits_69_by_the_deadline_naming_the_servers():
    port = free_port()
    with claimers_for(f"127.0.0.1:{port}", "/never") as c:
        started = time.monotonic()
        result, text = c.run_one("i-alone", ["--deadline-ms", "3000"])
        elapsed = time.monotonic() - started
    assert result["returncode"] == 69, text
    assert 2.9 <= elapsed < 4.5, elapsed
    assert f"127.0.0.1:{port}" in result["error"] and "unreachable" in result["error"]


def test_a_server_that_stops_answering_ends_the_claim_with_69_by_the_deadline(proxy, chroot):
    """Connected, then silence: the request is abandoned at the deadline, not waited for
    until the client gives the connection up (2/3 of the 10 s session timeout)."""
    with claimers_for(f"127.0.0.1:{proxy.port}", chroot) as c:
        results = c.run_together(["i-mute"], ["--deadline-ms", "2500"],
                                 before_release=lambda: proxy.set_latency(20000))
    assert results[0]["returncode"] == 69, results[0]
    assert "no answer before the deadline" in results[0]["error"]
    assert results[0]["elapsed_ms"] < 4000, results[0]


def test_an_expired_session_is_replaced_and_the_claim_completes(zookeeper, proxy, chroot):
    """3 s of silence against a 2 s session: the server expires it; the claimer opens a new
    session (its nodes are persistent) and claims once the network is back."""
    def stall():
        proxy.set_latency(3000)
        threading.Timer(4, lambda: proxy.set_latency(5)).start()

    with claimers_for(f"127.0.0.1:{proxy.port}", chroot) as c:
        results = c.run_together(["i-exp"], ["--deadline-ms", "30000",
                                             "--session-timeout-ms", "2000"],
                                 before_release=stall)
    assert results[0]["returncode"] == 0, results[0]
    assert "session expired, opening a new one" in results[0]["stderr"]
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {results[0]["broker_id"]: "i-exp"}


def test_with_digest_auth_claim_nodes_are_not_writable_without_the_credentials(
        zookeeper, chroot):
    password = "S3cr3t-pw-42"
    with claimers_for(zookeeper.connect, chroot,
                      args=["--auth", f"kb-claim:{password}"]) as c:
        result, text = c.run_one("i-auth", ["--log-level", "debug"])
    assert result["returncode"] == 0, text
    assert "zookeeper client:" in text  # the C client's lines were there to leak it
    assert password not in text
    bid = result["broker_id"]
    claim = f"/kafka-bootstrap/default/claims/{bid}"

    stranger = kazoo(zookeeper, chroot)
    try:
        assert json.loads(stranger.get(claim)[0])["instance_id"] == "i-auth"  # world-readable
        with pytest.raises(NoAuthError):
            stranger.set(claim, b'{"version":1,"broker_id":0,"instance_id":"i-evil"}')
        with pytest.raises(NoAuthError):
            stranger.delete(claim)
        with pytest.raises(NoAuthError):
            stranger.delete("/kafka-bootstrap/default/instances/i-auth")
        with pytest.raises(NoAuthError):
            stranger.create("/kafka-bootstrap/default/claims/99", b"{}")
        # The chroot stays open: Kafka, without our credentials, creates /brokers there.
        stranger.create("/brokers/ids", b"", makepath=True)
    finally:
        stranger.stop()
        stranger.close()
    owner = kazoo(zookeeper, chroot, auth=f"kb-claim:{password}")
    try:
        acl, _ = owner.get_acls(claim)
        assert make_digest_acl("kb-claim", password, all=True) in acl
        owner.create("/kafka-bootstrap/default/claims/99", b"{}")  # the credentials can
        owner.delete("/kafka-bootstrap/default/claims/99")
    finally:
        owner.stop()
        owner.close()
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {bid: "i-auth"}


def test_plan_says_which_id_and_why_and_writes_nothing(zookeeper, chroot, claimers):
    result, text = claimers.run_one("i-plan", ["--plan"])
    assert result["returncode"] == 0 and result["outcome"] == "planned", text
    assert result["broker_id"] in range(4)
    client = kazoo(zookeeper)
    try:
        assert not client.exists(f"{chroot}/kafka-bootstrap")
    finally:
        client.stop()
        client.close()

    claimers.hold(HELD)
    with reader_for(zookeeper, chroot) as r:
        before = {b: s.mzxid for b, (_, s) in r.claims().items()}
    result, text = claimers.run_one("i-plan", ["--plan", "--owner", "i-old1=terminated"])
    assert result["returncode"] == 0, text
    assert (result["outcome"], result["broker_id"]) == ("planned", 1)
    assert result["previous_owner"] == "i-old1" and "terminated" in result["reason"]
    with reader_for(zookeeper, chroot) as r:
        assert {b: s.mzxid for b, (_, s) in r.claims().items()} == before
        assert "i-plan" not in r.instances()


def test_existing_only_finds_the_claim_and_never_makes_one(zookeeper, chroot, claimers):
    result, text = claimers.run_one("i-pre", ["--existing-only"])
    assert result["returncode"] != 0, text
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {}
    claimers.hold({2: "i-pre"})
    result, text = claimers.run_one("i-pre", ["--existing-only"])
    assert (result["returncode"], result["outcome"], result["broker_id"]) == (0, "held", 2)


def test_release_removes_claim_and_index_but_not_while_kafka_is_registered(
        zookeeper, chroot, held):
    kafka = kazoo(zookeeper, chroot)
    try:
        kafka.create("/brokers/ids/1", b"{}", ephemeral=True, makepath=True)
        result, text = held.run_one("i-old1", ["--release"])
        assert result["returncode"] == 13, text
        assert "registered in /brokers/ids" in result["error"]
        with reader_for(zookeeper, chroot) as r:
            assert r.check_consistent() == HELD

        result, text = held.run_one("i-old1", ["--release", "--force"])
        assert (result["returncode"], result["outcome"]) == (0, "released"), text
    finally:
        kafka.stop()
        kafka.close()
    result, text = held.run_one("i-old2", ["--release"])
    assert (result["returncode"], result["outcome"], result["broker_id"]) == \
        (0, "released", 2), text
    with reader_for(zookeeper, chroot) as r:
        assert r.check_consistent() == {0: "i-old0", 3: "i-old3"}
    result, text = held.run_one("i-old2", ["--release"])
    assert (result["returncode"], result["outcome"]) == (0, "nothing"), text
    # A released id is free again: the next claimer gets one of them.
    result, text = held.run_one("i-next")
    assert result["returncode"] == 0 and result["broker_id"] in (1, 2), text
