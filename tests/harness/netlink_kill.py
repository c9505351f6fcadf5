"""An agent killed between two netlink changes of one run: tests/harness/netlink_kill.c, built
here with the system C compiler, preloaded into the program under test."""
import os
import shutil
import subprocess

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netlink_kill.c")
# rtnetlink request types the network stage sends, in its order (linux/rtnetlink.h).
TYPES = {"RTM_NEWLINK": 16, "RTM_NEWADDR": 20, "RTM_NEWROUTE": 24, "RTM_NEWRULE": 32}


def build(directory):
    """Compiles the shim into directory; returns the .so's path."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise FileNotFoundError("no C compiler to build the netlink kill shim")
    out = os.path.join(directory, "netlink_kill.so")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", out, SOURCE,
                    "-ldl"], check=True, capture_output=True, text=True)
    return out


def env(shim, request):
    """The agent's extra environment: the shim preloaded, killing it right after its first
    `request` ("RTM_NEWADDR", ...)."""
    # Under AddressSanitizer the runtime insists on coming first in the library list; the
    # shim only wraps sendto, which ASan's interceptor passes through.
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": shim, "KB_TEST_KILL_NETLINK_TYPE": str(TYPES[request]),
            "ASAN_OPTIONS": f"{asan}:verify_asan_link_order=0" if asan else
            "verify_asan_link_order=0"}
