"""A process whose wall clock is off: tests/harness/skewed_clock.c, built here with the system
C compiler, preloaded into the program under test."""
import os

from . import preload

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skewed_clock.c")


def build(directory):
    """Compiles the shim into directory; returns the .so's path."""
    return preload.build(SOURCE, directory)


def env(shim, offset_s, base=None):
    """base (os.environ) with the shim preloaded and the wall clock moved by offset_s."""
    out = dict(os.environ if base is None else base)
    out["LD_PRELOAD"] = shim
    out["KB_TEST_CLOCK_OFFSET_S"] = str(int(offset_s))
    out["ASAN_OPTIONS"] = preload.asan_options(out)
    return out
