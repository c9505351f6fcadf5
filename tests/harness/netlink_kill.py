"""An agent killed between two netlink changes of one run: tests/harness/netlink_kill.c, built
here with the system C compiler, preloaded into the program under test."""
import os

from . import preload

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netlink_kill.c")
# rtnetlink request types the network stage sends, in its order (linux/rtnetlink.h).
TYPES = {"RTM_NEWLINK": 16, "RTM_NEWADDR": 20, "RTM_NEWROUTE": 24, "RTM_NEWRULE": 32}


def build(directory):
    """Compiles the shim into directory; returns the .so's path."""
    return preload.build(SOURCE, directory)


def env(shim, request):
    """The agent's extra environment: the shim preloaded, killing it right after its first
    `request` ("RTM_NEWADDR", ...)."""
    return {"LD_PRELOAD": shim, "KB_TEST_KILL_NETLINK_TYPE": str(TYPES[request]),
            "ASAN_OPTIONS": preload.asan_options(os.environ)}
