"""What the signal tests share: the fake AWS on loopback, its IMDS bound to one broker
instance, and the binary run against it with a config of the test's own."""
import copy
import json
import os
import subprocess

from fakeaws import FakeAWS

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.environ.get("KB_BINARY", os.path.join(HERE, "..", "..", "build", "kafka-bootstrap"))
with open(os.path.join(HERE, "..", "fakeaws", "fixtures", "three-brokers.json")) as f:
    FIXTURE = json.load(f)
INSTANCE = "i-0000000000000a001"
STACK_ARN = FIXTURE["stacks"][0]["id"]
GROUP = FIXTURE["autoscaling_groups"][0]["name"]
HOOK = FIXTURE["autoscaling_groups"][0]["lifecycle_hooks"][0]["name"]


def start_fake(mutate=None):
    fixture = copy.deepcopy(FIXTURE)
    if mutate:
        mutate(fixture)
    return FakeAWS(fixture, seed=1).start(
        [{"service": "imds", "instance_id": INSTANCE}] +
        [{"service": s} for s in ("ec2", "cloudformation", "autoscaling")])


def kb_signal(fake, tmp_path, *args, config=None, wait=True):
    """Runs `kafka-bootstrap signal ARGS`; wait=False returns the running process."""
    (tmp_path / "console").touch()
    cfg = {"status_file": str(tmp_path / "status.json"), "console": str(tmp_path / "console")}
    cfg.update(config or {})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    env = {"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.endpoints["imds"],
           "AWS_ENDPOINT_URL_EC2": fake.endpoints["ec2"],
           "AWS_ENDPOINT_URL_CLOUDFORMATION": fake.endpoints["cloudformation"],
           "AWS_ENDPOINT_URL_AUTO_SCALING": fake.endpoints["autoscaling"]}
    argv = [BINARY, "signal", "--config", str(tmp_path / "config.json"), *args]
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


