"""deploytools.py: what the deployment tests share: where things are, running commands, the
tool's own configuration keys, and HCL tools built from Debian's Go sources."""
import json
import os
import re
import subprocess
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("KB_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BINARY_DIR = Path(os.environ.get("KB_BINARY_DIR", SOURCE_DIR / "build"))
KB_BINARY = Path(os.environ.get("KB_BINARY", BINARY_DIR / "kafka-bootstrap"))
TOOLS_DIR = BINARY_DIR / "deploy-tools"
# Debian's golang-github-hashicorp-hcl-v2-dev and its dependencies, in GOPATH layout.
DEBIAN_GOPATH = "/usr/share/gocode"


def run(cmd, check=True, **kwargs):
    """Runs cmd (a list), capturing text output; on an unexpected exit shows it all."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def config_keys():
    """{key: default} from `kafka-bootstrap config --keys`, the tool's own key table."""
    out = run([KB_BINARY, "config", "--keys"]).stdout
    keys = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+(\S+)\s", line)
        assert m, f"unexpected line in config --keys: {line!r}"
        keys[m.group(1)] = "" if m.group(2) == '""' else m.group(2)
    return keys


def go_tool(name, package):
    """Builds a Go command in GOPATH mode against Debian's packaged sources, once per build
    directory. package is an import path, or a source file of this repository."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    out = TOOLS_DIR / name
    source = SOURCE_DIR / package
    if out.exists() and (not source.exists() or out.stat().st_mtime >= source.stat().st_mtime):
        return out
    env = dict(os.environ, GOPATH=DEBIAN_GOPATH, GO111MODULE="off", CGO_ENABLED="0",
               GOCACHE=str(TOOLS_DIR / "go-cache"), GOFLAGS="")
    target = str(source) if source.exists() else package
    run(["go", "build", "-o", out, target], env=env)
    return out


PACKER_TEMPLATE = SOURCE_DIR / "packer" / "kafka-broker.pkr.hcl"


def hcl_json(path=PACKER_TEMPLATE):
    """An HCL file as tests/deploy/hcl2json prints it."""
    return json.loads(run([go_tool("hcl2json", "tests/deploy/hcl2json/main.go"), path]).stdout)


def blocks(body, block_type, *labels):
    return [b for b in body["blocks"] if b["type"] == block_type and b["labels"][:len(labels)] == list(labels)]


def packer_variable_default(name):
    variable, = blocks(hcl_json(), "variable", name)
    return variable["body"]["attributes"]["default"]["value"]
