"""A process whose wall clock is off: tests/harness/skewed_clock.c, built here with the system
C compiler, preloaded into the program under test."""
import os
import shutil
import subprocess

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skewed_clock.c")


def build(directory):
    """Compiles the shim into directory; returns the .so's path."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise FileNotFoundError("no C compiler to build the clock shim")
    out = os.path.join(directory, "skewed_clock.so")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", out, SOURCE,
                    "-ldl"], check=True, capture_output=True, text=True)
    return out


def env(shim, offset_s, base=None):
    """base (os.environ) with the shim preloaded and the wall clock moved by offset_s."""
    out = dict(os.environ if base is None else base)
    out["LD_PRELOAD"] = shim
    out["KB_TEST_CLOCK_OFFSET_S"] = str(int(offset_s))
    # Under AddressSanitizer the runtime insists on coming first in the library list; the
    # shim only wraps libc's clocks, which ASan's own interceptors pass through.
    asan = out.get("ASAN_OPTIONS", "")
    out["ASAN_OPTIONS"] = f"{asan}:verify_asan_link_order=0" if asan else \
        "verify_asan_link_order=0"
    return out
