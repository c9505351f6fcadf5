"""What the end-to-end modules share: each builds its own `world` (a module fixture); `inst`
is that world's instance 0 after a successful first `run`."""
import pytest


@pytest.fixture(scope="module")
def inst(world):
    i = world.instances[0]
    r = i.run()
    assert r.exit_code == 0, r
    return i
