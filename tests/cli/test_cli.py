"""The command line as an operator meets it: help, usage errors (exit 64, one line naming the
problem and the hint), configuration errors (exit 78, naming the key), `status`, and that no
secret handed to the program ever comes out of it."""
import json
import os
import re
import subprocess

import pytest

BINARY = os.environ.get("KB_BINARY", os.path.join(os.path.dirname(__file__), "..", "..",
                                                  "build", "kafka-bootstrap"))
SOURCE_DIR = os.environ.get("KB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def kb(*args, env=None, config=None):
    full_env = {"PATH": "/usr/bin:/bin"}
    full_env.update(env or {})
    argv = [BINARY]
    if config:
        argv += ["--config", str(config)]
    return subprocess.run(argv + list(args), capture_output=True, text=True, env=full_env,
                          timeout=60)


def test_help_lists_every_command_and_exits_zero():
    r = kb("--help")
    assert r.returncode == 0
    for command in ("run", "plan", "status", "signal", "release", "config"):
        assert re.search(rf"^  {command} ", r.stdout, re.M), command
    assert "Exit codes:" in r.stdout


def test_version_prints_the_project_version():
    r = kb("--version")
    assert r.returncode == 0
    assert re.fullmatch(r"kafka-bootstrap \d+\.\d+\.\d+\n", r.stdout)


@pytest.mark.parametrize("args, problem", [
    ([], "no command given"),
    (["launch"], "unknown command 'launch'"),
    (["run", "--frobnicate"], "unknown option '--frobnicate'"),
    (["run", "--config"], "option '--config' needs a value"),
    (["run", "--stage", "dns"], "unknown stage 'dns'"),
    (["run", "extra"], "unexpected argument 'extra'"),
    (["status", "--dry-run"], "option --dry-run is not valid for status"),
    (["signal", "--success", "--failure"], "--success and --failure exclude each other"),
    (["run", "--set", "cluster"], "--set needs KEY=VALUE"),
    (["run", "--set", "broker_count=many"], "'broker_count': invalid value 'many'"),
    (["run", "--log-level", "verbose"], "'log_level': invalid value 'verbose'"),
])
def test_usage_error_is_one_line_with_the_hint_and_exit_64(args, problem, tmp_path):
    r = kb(*args)
    assert r.returncode == 64, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert problem in lines[0]
    assert "kafka-bootstrap --help" in lines[0]


@pytest.mark.parametrize("content, expected", [
    ('{"cluster": "a",', "line 1"),
    ('{"brokers": 3}', "unknown key 'brokers'"),
    ('{"broker_count": "3"}', "key 'broker_count': expected an integer, got a string"),
    ('{"broker_count": -1}', "key 'broker_count': invalid value '-1': an integer from 0 to 65536"),
    ('{"filesystem": "zfs"}', "key 'filesystem': invalid value 'zfs': one of xfs or ext4"),
    ('{"log_dir": "/elsewhere/logs"}', "key 'log_dir': '/elsewhere/logs' must be a directory inside"),
    ('{"listeners": "PLAINTEXT://{hostname}:9092"}', "unknown placeholder '{hostname}'"),
])
def test_plan_with_a_bad_config_exits_78_naming_the_key(content, expected, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(content)
    r = kb("plan", config=config)
    assert r.returncode == 78, r.stderr
    assert expected in r.stderr
    assert str(config) in r.stderr or "key '" in r.stderr


def test_unreadable_config_exits_78(tmp_path):
    r = kb("plan", config=tmp_path / "missing.json")
    assert r.returncode == 78
    assert "cannot read config" in r.stderr and "missing.json" in r.stderr


def test_bad_drop_in_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.d" / "50-stack.json").write_text('{"mount_point": 3}')
    r = kb("plan", config=tmp_path / "config.json")
    assert r.returncode == 78
    assert "50-stack.json: key 'mount_point': expected a string, got an integer" in r.stderr


def test_bad_environment_value_exits_78_naming_the_variable(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = kb("plan", config=tmp_path / "config.json",
           env={"KAFKA_BOOTSTRAP_CLAIM_GRACE_PERIOD_S": "ten minutes"})
    assert r.returncode == 78
    assert "KAFKA_BOOTSTRAP_CLAIM_GRACE_PERIOD_S" in r.stderr


OFFLINE = {"AWS_EC2_METADATA_DISABLED": "true"}


def test_status_before_any_run_says_so_and_succeeds(tmp_path):
    r = kb("status", "--set", f"status_file={tmp_path}/status.json", env=OFFLINE)
    assert r.returncode == 0, r.stderr
    assert "no run recorded" in r.stdout
    r = kb("status", "--json", "--set", f"status_file={tmp_path}/status.json", env=OFFLINE)
    report = json.loads(r.stdout)
    assert report["schema"] == 1 and report["last_run"] is None


def test_status_without_instance_metadata_says_where_the_live_check_stopped(tmp_path):
    r = kb("status", "--json", "--set", f"status_file={tmp_path}/status.json", env=OFFLINE)
    stages = {s["name"]: s for s in json.loads(r.stdout)["stages"]}
    assert stages["identity"]["state"] == "failed"
    assert "disabled" in stages["identity"]["detail"]
    assert stages["claim"]["state"] == "not checked"


def test_status_reports_the_last_run_stage_by_stage(tmp_path):
    status = {
        "schema": 1, "command": "run", "started_at": "2026-11-25T10:00:00.000Z",
        "exit_code": 10, "exit_name": "NO_ID", "broker_id": None, "instance_id": "i-0abc",
        "error": "stage claim: no broker id available", "hint": "...",
        "stages": [
            {"name": "identity", "started_at": "2026-11-25T10:00:00.000Z", "duration_ms": 12,
             "outcome": "ok", "changes": []},
            {"name": "claim", "started_at": "2026-11-25T10:00:00.100Z", "duration_ms": 40,
             "outcome": "failed", "changes": [], "error": "no broker id available"},
        ],
    }
    (tmp_path / "status.json").write_text(json.dumps(status))
    r = kb("status", "--set", f"status_file={tmp_path}/status.json", env=OFFLINE)
    assert r.returncode == 0
    assert "exit 10 (NO_ID): stage claim: no broker id available" in r.stdout
    r = kb("status", "--json", "--set", f"status_file={tmp_path}/status.json", env=OFFLINE)
    assert json.loads(r.stdout)["last_run"] == status


def test_readme_documents_every_configuration_key():
    r = kb("config", "--keys")
    assert r.returncode == 0
    keys = [line.split()[0] for line in r.stdout.splitlines()]
    assert len(keys) > 40
    readme = open(os.path.join(SOURCE_DIR, "README.md")).read()
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"README.md does not document: {missing}"


SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLE+session/token=",
}


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug"])
def test_no_secret_reaches_any_output_at_any_level(level, tmp_path):
    zk_password = "zk-pa55word-EXAMPLE"
    (tmp_path / "config.json").write_text(json.dumps({
        "zookeeper_auth": f"kafka:{zk_password}",
        "status_file": str(tmp_path / "status.json"),
        "console": "",
    }))
    env = dict(SECRETS, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
               # Nothing listens there: whatever the stages try fails fast, offline.
               AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:9",
               AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_REGION="us-east-1",
               KAFKA_BOOTSTRAP_DEADLINE_S="5", KAFKA_BOOTSTRAP_IDENTITY_DEADLINE_S="2",
               KAFKA_BOOTSTRAP_DISCOVER_DEADLINE_S="2", KAFKA_BOOTSTRAP_CLAIM_DEADLINE_S="2",
               KAFKA_BOOTSTRAP_ENI_DEADLINE_S="2", KAFKA_BOOTSTRAP_VOLUME_DEADLINE_S="2",
               KAFKA_BOOTSTRAP_NETWORK_DEADLINE_S="2",
               KAFKA_BOOTSTRAP_PROPERTIES_DEADLINE_S="2", KAFKA_BOOTSTRAP_SIGNAL_DEADLINE_S="2")
    outputs = []
    for args in (["config"], ["plan", "--log-level", level], ["status", "--json"]):
        r = kb(*args, config=tmp_path / "config.json", env=env)
        outputs.append(r.stdout + r.stderr)
    status = tmp_path / "status.json"
    if status.exists():
        outputs.append(status.read_text())
    everything = "\n".join(outputs)
    for secret in list(SECRETS.values()) + [zk_password]:
        assert secret not in everything
