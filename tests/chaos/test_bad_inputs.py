"""Bad answers and a broken account: malformed XML from EC2 and CloudFormation, malformed
JSON from IMDS (identity document, role credentials), truncated answers, a wrong-AZ ENI, a
volume tag that names an id twice or an id with no ENI. Each time: a clear error naming
the problem, a documented exit code, no crash (no signal death, no sanitizer report under
the ASan build), and nothing written that should not be: no claim when the failure came
before the claim stage, no ENI or volume attached, no mkfs, no mount, no server.properties.
Where the failure leaves something half done (an attach whose answer was unreadable), a
rerun once the fault is gone completes it, with nothing done twice.

A fault hits exactly one answer: it is switched on by the fake's hook for the agent's
request before it (the agent sends one request at a time) and off again by the hook of
the request it hits."""
import copy

import pytest

import chaos
from harness.world import World, default_binary


class OneBadAnswer:
    """After the agent's request matching `after`, the next request to `service` gets
    fault `kind` ("malformed", "truncated"); the fault is off again right after."""

    def __init__(self, w, after, service, kind):
        self.world, self.after, self.service, self.kind = w, after, service, kind
        self.state = "waiting"
        self.hit = None

    def __call__(self, record):
        if self.state == "armed" and record["service"] == self.service:
            self.world.fake.set_faults(**{self.kind: {}})
            self.state, self.hit = "done", record
        elif self.state == "waiting" and self.after(record):
            self.world.fake.set_faults(**{self.kind: {self.service: 1.0}})
            self.state = "armed"


def action_is(name):
    return lambda rec: rec["action"] == name


def action_endswith(suffix):
    return lambda rec: rec["action"].endswith(suffix)


# target: (how the answer is spoilt, request hit, exit code, words of the error, claim made).
# IMDS answers are spoilt by arming after the request before them; API answers by a
# fail_action rule (the action is carried out, its answer is not readable).
MALFORMED = {
    "identity_document": (("imds", action_is("PUT /latest/api/token")),
                          "GET /latest/dynamic/instance-identity/document", 70,
                          ["instance identity document", "JSON"], False),
    "role_credentials": (("imds", action_endswith("/iam/security-credentials/")),
                         "GET /latest/meta-data/iam/security-credentials/kafka-broker", 70,
                         ["instance credentials", "not JSON"], False),
    "describe_network_interfaces": (("api",), "DescribeNetworkInterfaces", 70,
                                    ["DescribeNetworkInterfaces", "malformed XML"], False),
    "describe_volumes": (("api",), "DescribeVolumes", 70,
                         ["DescribeVolumes", "malformed XML"], False),
    "attach_network_interface": (("api",), "AttachNetworkInterface", 70,
                                 ["attach eni-", "malformed XML"], True),
    "attach_volume": (("api",), "AttachVolume", 70, ["attach vol-", "malformed XML"], True),
    "signal_resource": (("api",), "SignalResource", 14, ["signal SUCCESS", "malformed XML"],
                        True),
}


@pytest.mark.parametrize("target", sorted(MALFORMED))
def test_one_malformed_answer_is_a_clear_error_and_a_rerun_completes(target):
    how, hit, code, words, claimed = MALFORMED[target]
    with chaos.world(3, 1, 1, config=chaos.SHORT_DEADLINES, terminate_unhealthy=False) as w:
        inst = w.instances[0]
        before = inst.properties()
        if how[0] == "imds":
            fault = OneBadAnswer(w, how[1], "imds", "malformed")
            r = inst.run(kill_when=chaos.on_request(fault))
            spoilt = [fault.hit]
        else:
            w.fake.set_faults(fail_action=[{"action": hit, "fault": "malformed", "times": 1}])
            r = inst.run()
            spoilt = [rec for rec in r.records if rec["fault"] == "malformed"]
        chaos.no_crash(r)
        assert [rec and rec["action"] for rec in spoilt] == [hit], r
        assert r.exit_code == code, r
        error = chaos.failure_text(r)
        for word in words:
            assert word in error, f"{word!r} not in the error: {error}"
        owners = chaos.zk_owners(w)
        assert bool(owners) == claimed, (owners, r)
        if not claimed:
            chaos.untouched(inst, before)
        if target != "identity_document":
            # Without an identity the agent cannot know whom to tell; otherwise it tells.
            assert ("FAILURE" in [s for s, _ in chaos.signals_of(w, inst.id)]) == (code != 14)

        again = inst.run()
        chaos.no_crash(again)
        assert again.exit_code == 0, again
        chaos.check_world(w, [again])
        for key, n in chaos.successful_attaches(w.requests(inst)).items():
            assert n == 1, f"{key} carried out {n} times"
        assert len(inst.mkfs_calls()) == 1


@pytest.mark.parametrize("service, stage", [("ec2", "discover"), ("imds", "identity")])
def test_answers_truncated_for_good_fail_by_the_deadline(service, stage):
    with chaos.world(3, 1, 1, config=chaos.SHORT_DEADLINES, terminate_unhealthy=False,
                     faults={"truncated": {service: 1.0}}) as w:
        inst = w.instances[0]
        before = inst.properties()
        r = inst.run()
        chaos.no_crash(r)
        chaos.failed_by_the_deadline(r, stage, "transfer closed with")
        assert chaos.zk_owners(w) == {}
        chaos.untouched(inst, before)
        w.fake.set_faults(truncated={})
        again = inst.run()
        assert again.exit_code == 0, again
        chaos.check_world(w, [again])


class NthBadAnswer:
    """The agent's Nth request (to any service) gets fault `kind`, and only that one."""

    SERVICES = ("imds", "ec2", "cloudformation", "autoscaling")

    def __init__(self, w, n, kind):
        self.world, self.n, self.kind = w, n, kind
        self.seen = 0
        self.hit = None
        if n == 1:
            self._set(True)

    def _set(self, on):
        self.world.fake.set_faults(**{self.kind: {s: 1.0 for s in self.SERVICES} if on else {}})

    def __call__(self, record):
        self.seen += 1
        if self.seen == self.n:
            self._set(False)
            self.hit = record
        elif self.seen == self.n - 1:
            self._set(True)


def truncation_points():
    return sorted({chaos.rng("truncate", k).randint(1, 17) for k in range(chaos.rounds(3))})


@pytest.mark.parametrize("n", truncation_points())
def test_one_truncated_answer_anywhere_is_retried(n):
    """The Nth request's answer stops halfway (N drawn from the seed): the agent retries it,
    whether it was a read or an attach that EC2 carried out."""
    with chaos.world(3, 1, 1) as w:
        inst = w.instances[0]
        fault = NthBadAnswer(w, n, "truncated")
        r = inst.run(kill_when=chaos.on_request(fault))
        chaos.no_crash(r)
        what = f"seed {chaos.SEED}, request {n} truncated: {fault.hit and fault.hit['action']}"
        assert [rec["fault"] for rec in r.records].count("truncated") == 1, what
        assert r.exit_code == 0, f"{what}\n{r}"
        chaos.check_world(w, [r])
        for key, k in chaos.successful_attaches(w.requests(inst)).items():
            assert k == 1, f"{what}: {key} carried out {k} times"


@pytest.mark.parametrize("action", ["AttachNetworkInterface", "AttachVolume"])
def test_an_attach_carried_out_whose_answer_was_cut_is_not_done_twice(action):
    """EC2 attached, the answer stopped halfway: the agent's retry meets the attachment it
    made (InUse, to this very instance) and goes on with it."""
    with chaos.world(3, 1, 1) as w:
        inst = w.instances[0]
        w.fake.set_faults(fail_action=[{"action": action, "fault": "truncated", "times": 1}])
        r = inst.run()
        chaos.no_crash(r)
        cut = [rec for rec in r.records if rec["fault"] == "truncated"]
        assert [rec["action"] for rec in cut] == [action], r
        assert r.exit_code == 0, r
        chaos.check_world(w, [r])
        for key, k in chaos.successful_attaches(w.requests(inst)).items():
            assert k == 1, f"{key} carried out {k} times"


def test_wrong_az_eni_is_never_used_and_its_az_says_which_id_lacks_an_eni():
    """KAFKA-1's ENI lives in AZ a, its volume in AZ b: the instance in AZ b has no id to
    claim and says that the volume tagged KAFKA-1 has no ENI there; the instance in AZ a
    is broker 0 and leaves the stray ENI alone."""
    fx = chaos.fixture(2, 2, 2, terminate_unhealthy=False)
    stray = next(e for e in fx["network_interfaces"] if e["tags"]["Name"] == "KAFKA-1")
    stray["subnet"] = fx["subnets"][0]["id"]
    stray.pop("private_ip")
    with World(brokers=2, fixture=fx, binary=default_binary(),
               config=chaos.SHORT_DEADLINES) as w:
        a, b = w.instances  # in AZ a and AZ b (harness.layout: round-robin)
        before = b.properties()
        results = w.boot()
        for r in results:
            chaos.no_crash(r)
        ok, bad = results
        assert ok.exit_code == 0 and ok.broker_id == 0, ok
        assert "ENI " + stray["id"] + " is tagged KAFKA-1, but no volume in us-east-1a" \
            in ok.stderr, ok
        assert bad.exit_code == 10, bad
        assert bad.stage("discover")["outcome"] == "failed" and bad.stage("claim") is None
        _, vol1 = w.broker_resources(1)
        error = chaos.failure_text(bad)
        assert f"volume {vol1['id']} is tagged KAFKA-1, but no ENI in us-east-1b is" in error, \
            bad
        assert chaos.zk_owners(w) == {0: ok.instance_id}
        chaos.untouched(b, before)
        chaos.failure_told(w, b.id)
        eni1, _ = w.broker_resources(1)
        assert eni1["attachment"] is None and eni1["az"] == "us-east-1a"
        chaos.check_world(w, results)


def boot_broker_0_alone_wins(w):
    """Boots every instance at once: exactly one becomes broker 0, the other finds no id it
    may claim (exit 10). Returns (results, [the winner], [the other])."""
    results = w.boot()
    for r in results:
        chaos.no_crash(r)
    ok = [r for r in results if r.exit_code == 0]
    bad = [r for r in results if r.exit_code != 0]
    assert len(ok) == 1 and ok[0].broker_id == 0, chaos.dump(results)
    assert [r.exit_code for r in bad] == [10], chaos.dump(results)
    return results, ok, bad


def test_two_volumes_tagged_for_one_id_make_that_id_unclaimable_naming_both():
    """Two volumes tagged KAFKA-1: the first instance boots as broker 0, the second finds
    no id it may claim (exit 10); both logs name the two volumes; nothing of KAFKA-1 is
    attached or claimed."""
    fx = chaos.fixture(2, 1, 2, terminate_unhealthy=False)
    twin = copy.deepcopy(next(v for v in fx["volumes"] if v["tags"]["Name"] == "KAFKA-1"))
    twin["id"] = "vol-0123456789abcdef0"
    fx["volumes"].append(twin)
    with World(brokers=2, fixture=fx, binary=default_binary(),
               config=chaos.SHORT_DEADLINES) as w:
        results, ok, bad = boot_broker_0_alone_wins(w)
        eni1, vol1 = w.broker_resources(1)
        ids = sorted([vol1["id"], twin["id"]])
        for r in results:
            assert f"volumes {ids[0]} and {ids[1]} are both tagged Name=KAFKA-1" in r.stderr, r
        assert chaos.zk_owners(w) == {0: ok[0].instance_id}
        state = w.state()
        assert all(state["volumes"][v]["attachment"] is None for v in ids)
        assert state["network_interfaces"][eni1["id"]]["attachment"] is None
        chaos.untouched(w.instance(bad[0].instance_id))
        chaos.failure_told(w, bad[0].instance_id)
        chaos.check_world(w, results)


def test_a_volume_tagged_for_an_id_without_eni_is_named_and_never_attached():
    """KAFKA-1 has a volume and no ENI: broker 0's instance boots, the second instance
    fails with exit 10 (broker 0 is held) and its log names the volume that cannot be
    used; the volume stays unattached."""
    fx = chaos.fixture(2, 1, 2, terminate_unhealthy=False)
    fx["network_interfaces"] = [e for e in fx["network_interfaces"]
                                if e["tags"]["Name"] != "KAFKA-1"]
    with World(brokers=2, fixture=fx, binary=default_binary(),
               config=chaos.SHORT_DEADLINES) as w:
        results, ok, bad = boot_broker_0_alone_wins(w)
        _, vol1 = w.broker_resources(1)
        for r in results:
            assert f"volume {vol1['id']} is tagged KAFKA-1, but no ENI in us-east-1a is" \
                in r.stderr, r
        assert f"0: {ok[0].instance_id}, owner running" in chaos.failure_text(bad[0])
        assert vol1["attachment"] is None
        chaos.untouched(w.instance(bad[0].instance_id))
        chaos.failure_told(w, bad[0].instance_id)
        chaos.check_world(w, results)
