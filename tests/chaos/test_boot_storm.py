"""Sixteen instances boot at the same moment for twelve broker ids over three AZs (six, five
and five instances for four ids each): twelve get an id, the other four fail cleanly (exit
10, the error lists every id of their AZ and its holder, FAILURE to the stack, Unhealthy to
Auto Scaling, nothing attached, mounted, formatted or written); no id is held twice
(ZooKeeper read with kazoo), no ENI or volume is attached twice (EC2's state and the
record of every attach call). A round is a new layout (its instance ids, so the claim
order, come from the seed); CI runs three, KB_CHAOS_ROUNDS more."""
import re

import pytest

import chaos

BROKERS, AZS, INSTANCES = 12, 3, 16
CI_ROUNDS = 3


@pytest.mark.parametrize("round_no", range(chaos.rounds(CI_ROUNDS)))
def test_sixteen_instances_for_twelve_ids_twelve_win_four_fail_cleanly(round_no):
    seed = chaos.SEED * 1000 + round_no
    with chaos.world(BROKERS, AZS, INSTANCES, seed=seed) as w:
        properties = {i.id: i.properties() for i in w.instances}
        results = w.boot(timeout=120)
        what = f"seed {chaos.SEED} round {round_no}\n{chaos.dump(results)}"
        for r in results:
            chaos.no_crash(r)
        winners = [r for r in results if r.exit_code == 0]
        losers = [r for r in results if r.exit_code != 0]
        assert len(winners) == BROKERS, what
        assert [r.exit_code for r in losers] == [10] * (INSTANCES - BROKERS), what
        owners = chaos.check_world(w, results)
        assert sorted(owners) == list(range(BROKERS)), what
        assert sorted(r.broker_id for r in winners) == list(range(BROKERS)), what

        state = w.state()
        enis = chaos.attached(state, "network_interfaces")
        vols = chaos.attached(state, "volumes")
        for r in winners:
            assert [b for b, _, _ in enis[r.instance_id]] == [r.broker_id], what
            assert [b for b, _, _ in vols[r.instance_id]] == [r.broker_id], what
            assert ("SUCCESS", None) in chaos.signals_of(w, r.instance_id) or \
                ("SUCCESS", "ValidationError") in chaos.signals_of(w, r.instance_id), what
        attaches = chaos.successful_attaches(w.requests())
        assert sorted(attaches.values()) == [1] * (2 * BROKERS), attaches
        assert len({rid for _, rid, _ in attaches}) == 2 * BROKERS, attaches

        for r in losers:
            inst = w.instance(r.instance_id)
            # The error names every id of its AZ and who holds it.
            ids_here = [b for b in range(BROKERS) if b % AZS == w.fixture["subnets"].index(
                w.subnets[inst.subnet_id])]
            assert "no broker id available" in r.stderr, r
            for b in ids_here:
                assert re.search(rf"\b{b}: {owners[b]}, owner running", r.stderr), \
                    f"holder of {b} not named\n{r}"
            assert r.status["exit_code"] == 10 and r.status["broker_id"] is None
            assert not enis.get(r.instance_id) and not vols.get(r.instance_id), what
            chaos.untouched(inst, properties[inst.id])
            chaos.failure_told(w, r.instance_id)
        assert not [c for c in w.fake.autoscaling_calls()
                    if c["params"].get("InstanceId") in {r.instance_id for r in winners}]
