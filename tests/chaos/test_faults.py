"""Dependencies that misbehave: ZooKeeper stopped during the claim and restarted, AWS
throttling and failing calls, IMDS tokens that expire mid-run, an ENI attach that takes
20 s: every boot completes within its deadlines. ZooKeeper or EC2 gone for good: the run
fails cleanly by the deadline (exit 69, FAILURE and Unhealthy told), leaves nothing a rerun
cannot finish, and the rerun after the dependency is back completes."""
import threading

import pytest

import chaos
from harness.tcpproxy import OP_MULTI

def restart_zookeeper_after(w, seconds):
    timer = threading.Timer(seconds, w.zk.start)
    timer.daemon = True
    timer.start()
    return timer


def assert_completed(w, inst, r):
    chaos.no_crash(r)
    assert r.exit_code == 0, r
    owners = chaos.check_world(w, [r])
    assert [b for b, i in owners.items() if i == inst.id] == [r.broker_id]
    for key, n in chaos.successful_attaches(w.requests(inst)).items():
        assert n == 1, f"{key} carried out {n} times"


def test_zookeeper_stopped_as_the_claim_starts_and_restarted_the_claim_completes():
    with chaos.world(3, 1, 1) as w:
        inst = w.instances[0]
        timer = []

        def stop_at_the_end_of_discover(record):
            if record["action"] == "DescribeVolumes" and not timer:
                w.zk.stop()
                timer.append(restart_zookeeper_after(w, 2.0))
        r = inst.run(kill_when=chaos.on_request(stop_at_the_end_of_discover))
        timer[0].join()
        assert_completed(w, inst, r)
        assert r.stage("claim")["duration_ms"] >= 1500, r


def test_zookeeper_killed_as_it_commits_the_claim_and_restarted_the_claim_is_its_own():
    """The server dies right after committing the claim's multi, before the agent hears
    the answer; once it is back the agent must find the claim it made, not make another."""
    with chaos.world(3, 1, 1) as w:
        inst = w.instances[0]
        timer = []

        def die_after_the_multi(op):
            if op == OP_MULTI and not timer:
                w.zk.stop()
                timer.append(restart_zookeeper_after(w, 2.0))
                return True
            return False
        with chaos.ZkTap(w, die_after_the_multi) as tap:
            inst.configure(zookeeper_connect=tap.connect)
            r = inst.run()
            timer[0].join()
        assert timer, "the claim's multi never reached ZooKeeper"
        assert_completed(w, inst, r)
        claims = chaos.zk_claims(w)
        record, stat = claims[r.broker_id]
        assert stat.version == 0, f"the claim was written again: {stat}"


@pytest.mark.parametrize("round_no", range(chaos.rounds(1)))
def test_throttling_and_server_errors_every_boot_succeeds_within_its_deadlines(round_no):
    services = ["ec2", "cloudformation", "autoscaling"]
    config = {"deadline_s": 60, **{f"{s}_deadline_s": 30 for s in chaos.STAGES}}
    with chaos.world(3, 3, seed=chaos.SEED * 1000 + round_no, config=config,
                     faults={"throttle": {s: 0.3 for s in services},
                             "error_5xx": {s: 0.1 for s in services},
                             "drop": {"imds": 0.05, "ec2": 0.05}}) as w:
        results = w.boot(timeout=90)
        for r in results:
            chaos.no_crash(r)
            assert r.exit_code == 0, f"seed {chaos.SEED} round {round_no}\n{r}"
            assert r.wall_s < config["deadline_s"], r
        chaos.check_world(w, results)
        faults = [rec["fault"] for r in results for rec in r.records]
        assert faults.count("throttle") >= 3 and faults.count("error_5xx") >= 1, faults
        assert {s for s, _ in sum((chaos.signals_of(w, i.id) for i in w.instances), [])} \
            == {"SUCCESS"}


def test_imds_tokens_expiring_mid_run_are_renewed():
    """Tokens live one second whatever the agent asks for; the ENI takes two to attach, so
    the network and signal stages find their token expired."""
    with chaos.world(3, 1, 1, delays={"eni_attach_s": 2},
                     faults={"imds_token_ttl_cap_s": 1}) as w:
        inst = w.instances[0]
        r = inst.run()
        assert_completed(w, inst, r)
        imds = [rec for rec in r.records if rec["service"] == "imds"]
        expired = [k for k, rec in enumerate(imds) if rec["error_code"] == "InvalidToken"]
        assert expired, "no request met an expired token"
        for k in expired:
            assert imds[k + 1]["action"] == "PUT /latest/api/token", imds[k:k + 3]
            assert imds[k + 2]["action"] == imds[k]["action"], imds[k:k + 3]
            assert imds[k + 2]["http_status"] == 200


def test_an_eni_attach_taking_20_s_is_waited_for_within_the_eni_deadline():
    with chaos.world(3, 1, 1, delays={"eni_attach_s": 20}) as w:
        inst = w.instances[0]
        r = inst.run(timeout=90)
        assert_completed(w, inst, r)
        eni = r.stage("eni")
        # Noticed within about a second of the completion (polls grow to 1 s).
        assert 20000 <= eni["duration_ms"] <= 21500, eni
        attaches = [rec for rec in r.records if rec["action"] == "AttachNetworkInterface"]
        assert len(attaches) == 1, attaches


def test_zookeeper_gone_for_good_fails_by_the_deadline_and_a_rerun_completes_later():
    with chaos.world(3, 1, 1, config=chaos.SHORT_DEADLINES, terminate_unhealthy=False) as w:
        inst = w.instances[0]
        before = inst.properties()
        w.zk.stop()
        r = inst.run()
        chaos.no_crash(r)
        chaos.failed_by_the_deadline(r, "claim", "ZooKeeper")
        chaos.untouched(inst, before)
        chaos.failure_told(w, inst.id)

        w.zk.start()
        again = inst.run()
        assert_completed(w, inst, again)


# Where EC2 goes away: before the agent's first call, or right after an attach it made
# (the attach is carried out; the agent can no longer see it complete).
EC2_GONE = {"from_the_start": None, "after_the_eni_attach": "AttachNetworkInterface",
            "after_the_volume_attach": "AttachVolume"}


@pytest.mark.parametrize("when", sorted(EC2_GONE))
def test_ec2_gone_for_good_fails_by_the_deadline_and_a_rerun_completes_later(when):
    with chaos.world(3, 1, 1, config=chaos.SHORT_DEADLINES, terminate_unhealthy=False) as w:
        inst = w.instances[0]
        before = inst.properties()
        action = EC2_GONE[when]
        if action is None:
            w.fake.set_faults(down=["ec2"])

        def take_ec2_down(record):
            if record["action"] == action:
                w.fake.set_faults(down=["ec2"])
        r = inst.run(kill_when=chaos.on_request(take_ec2_down))
        chaos.no_crash(r)
        stage = {None: "discover", "AttachNetworkInterface": "eni", "AttachVolume": "volume"}
        chaos.failed_by_the_deadline(r, stage[action], "Couldn't connect to server")
        chaos.failure_told(w, inst.id)
        if action is None:
            chaos.untouched(inst, before)
            assert chaos.zk_owners(w) == {}

        w.fake.set_faults(down=[])
        again = inst.run()
        assert_completed(w, inst, again)
