"""The README's main command, with the real kafka-bootstrap: three instances boot at once and
claim brokers 0..2 with their ENIs and volumes, `run` sends no SUCCESS, every one signals
SUCCESS once a stand-in Kafka registered its broker, and broker 0's replacement comes back
with the same IP and the same data; nothing of the world remains."""
import os
import sys

from harness import netns
from harness.world import default_binary

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402


def test_the_simulated_cluster_passes_every_check(capsys):
    rc = cluster.main(["--binary", default_binary()])
    out = capsys.readouterr().out
    print(out)
    assert rc == 0, out
    assert "Done in" in out and "all checks passed" in out
    assert "ok   no SUCCESS yet: Kafka has not registered" in out
    assert "ok   each SUCCESS after its broker's registration" in out
    assert not [n for n in netns.netns_list() if n.startswith(f"kbw{os.getpid()}")]
