"""The simulated cluster command (tests/sim/cluster.py) reports and checks what it should:
with an agent that does the job (the harness's Python stand-in) every check passes, broker 0
comes back with its IP and data after its instance is replaced; with an agent that does
nothing the checks fail; either way nothing is left behind."""
import os
import sys

from harness import netns

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sim"))
import cluster  # noqa: E402


def world_namespaces():
    return [n for n in netns.netns_list() if n.startswith(f"kbw{os.getpid()}")]


def test_with_an_agent_that_does_the_job_every_check_passes(capsys):
    rc = cluster.main(["--binary", os.path.join(HERE, "stand_in_agent.py")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "FAIL" not in out
    assert "ok   the replacement is broker 0" in out
    assert "ok   and the same data on its volume" in out
    assert "ZooKeeper claims: 0 -> i-" in out
    assert out.count("SUCCESS accepted") == 3
    assert world_namespaces() == []


def test_with_an_agent_that_does_nothing_the_checks_fail(capsys):
    rc = cluster.main(["--binary", "/bin/true"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL brokers 0..2 claimed once each" in out
    assert "FAIL the replacement is broker 0" in out
    assert world_namespaces() == []
