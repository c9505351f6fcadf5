"""LD_PRELOAD shims of the tests (skewed_clock.c, netlink_kill.c): built with the system C
compiler, preloaded into the program under test."""
import os
import shutil
import subprocess


def build(source, directory):
    """Compiles source into directory as <name>.so; returns its path."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise FileNotFoundError(f"no C compiler to build {source}")
    name = os.path.splitext(os.path.basename(source))[0]
    out = os.path.join(directory, f"{name}.so")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", out, source,
                    "-ldl"], check=True, capture_output=True, text=True)
    return out


def asan_options(base):
    """ASAN_OPTIONS of base that let a shim come before the runtime: AddressSanitizer insists
    on coming first in the library list, and the shims only wrap libc calls its interceptors
    pass through."""
    asan = base.get("ASAN_OPTIONS", "")
    return f"{asan}:verify_asan_link_order=0" if asan else "verify_asan_link_order=0"
