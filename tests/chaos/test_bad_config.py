"""A configuration with one mistake of each kind: `run` exits 78 (CONFIG) with a message
naming the key (or the file), and touches nothing: not one request to IMDS, EC2,
CloudFormation or Auto Scaling (so no FAILURE, no Unhealthy that would have the group
replace the node for a mistake the replacement shares), no ZooKeeper claim, no ENI, volume,
mkfs, mount or server.properties, no status file. Mistakes come from config.json, a
config.d drop-in and the environment; one in --set is a usage error (64, README).

The mistakes a stage would meet only later (no ZooKeeper connect string, a cluster name
that cannot name a ZooKeeper node) count too: met late, they used to make the agent tell
CloudFormation FAILURE and Auto Scaling Unhealthy for a mistake the replacement shares."""
import json
import os

import pytest

import chaos

# (name, config.json keys to merge, what the message must contain)
IN_CONFIG_JSON = [
    ("unknown_key", {"zookeeper_conect": "10.0.0.2:2181"}, "unknown key 'zookeeper_conect'"),
    ("wrong_type", {"broker_count": "three"}, "key 'broker_count': expected an integer"),
    ("out_of_range", {"eni_device_index": 0}, "key 'eni_device_index'"),
    ("unknown_choice", {"filesystem": "btrfs"}, "key 'filesystem'"),
    ("unknown_flag", {"on_failure": ["signal", "page"]}, "key 'on_failure'"),
    ("flags_not_a_list", {"on_failure": "signal"}, "key 'on_failure'"),
    ("relative_path", {"mount_point": "var/lib/kafka"}, "key 'mount_point'"),
    ("unknown_placeholder", {"listeners": "PLAINTEXT://{host}:9092"}, "key 'listeners'"),
    ("unclosed_placeholder", {"advertised_listeners": "PLAINTEXT://{ip:9092"},
     "key 'advertised_listeners'"),
    ("bad_connect_string", {"zookeeper_connect": "zk1"}, "key 'zookeeper_connect'"),
    ("no_connect_string", {"zookeeper_connect": None}, "key 'zookeeper_connect'"),
    ("auth_without_password", {"zookeeper_auth": "kafka"}, "key 'zookeeper_auth'"),
    ("cluster_not_a_node_name", {"cluster": "blue/green"}, "key 'cluster'"),
    ("log_dir_outside_the_volume", {"log_dir": "/var/log/kafka"}, "key 'log_dir'"),
    ("device_not_in_dev", {"volume_device": "sdg"}, "key 'volume_device'"),
    ("empty_tag_prefix", {"tag_prefix": ""}, "'tag_prefix'"),
    ("stage_longer_than_the_run", {"deadline_s": 200}, "key 'volume_deadline_s'"),
    ("lifecycle_without_hook", {"on_failure": ["signal", "lifecycle"]}, "'lifecycle_hook'"),
    ("boolean_as_string", {"manage_volume": "yes please"}, "key 'manage_volume'"),
]


def write_config(inst, merged):
    cfg = dict(chaos.config_json(inst))
    for key, value in merged.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    with open(inst.config_path, "w") as f:
        json.dump(cfg, f)


@pytest.fixture(scope="module")
def world():
    with chaos.world(3, 1, 1, terminate_unhealthy=False) as w:
        yield w


def told(world):
    """How many signals and Auto Scaling calls reached the fake so far."""
    return len(world.signals()), len(world.fake.autoscaling_calls())


@pytest.fixture
def inst(world):
    """The instance, its config.json restored after each test."""
    inst = world.instances[0]
    inst.told_before = told(world)
    good = chaos.config_json(inst)
    dropins = os.path.join(os.path.dirname(inst.config_path), "config.d")
    yield inst
    with open(inst.config_path, "w") as f:
        json.dump(good, f)
    if os.path.isdir(dropins):
        for name in os.listdir(dropins):
            os.unlink(os.path.join(dropins, name))
    if os.path.exists(inst.status_path):
        os.unlink(inst.status_path)


def assert_refused(world, inst, r, words, code=78):
    chaos.no_crash(r)
    assert r.exit_code == code, r
    for word in words:
        assert word in r.stderr, f"{word!r} not in:\n{r.stderr}"
    assert r.records == [], [rec["action"] for rec in r.records]
    assert not os.path.exists(inst.status_path), "a status file was written"
    assert chaos.zk_owners(world) == {}
    assert told(world) == inst.told_before, "CloudFormation or Auto Scaling was told"
    chaos.untouched(inst)


@pytest.mark.parametrize("name, merged, words", IN_CONFIG_JSON,
                         ids=[c[0] for c in IN_CONFIG_JSON])
def test_a_mistake_in_config_json_is_refused_naming_the_key(world, inst, name, merged, words):
    write_config(inst, merged)
    assert_refused(world, inst, inst.run(), [words])


def test_a_file_that_is_not_json_is_refused_naming_the_file_and_line(world, inst):
    with open(inst.config_path, "w") as f:
        f.write('{\n  "cluster": "sim",\n  "broker_count": 3,,\n}\n')
    assert_refused(world, inst, inst.run(), [inst.config_path, "line 3"])


def test_a_nul_byte_in_a_string_is_refused_naming_the_file(world, inst):
    with open(inst.config_path) as f:
        text = f.read()
    with open(inst.config_path, "w") as f:
        f.write(text.replace("{", '{\n  "tag_key": "Na\\u0000me",', 1))
    assert_refused(world, inst, inst.run(), [inst.config_path, "line 2", "NUL"])


def test_a_key_given_twice_is_refused(world, inst):
    with open(inst.config_path) as f:
        text = f.read()
    with open(inst.config_path, "w") as f:
        f.write(text.replace("{", '{\n  "broker_count": 2,', 1))
    assert_refused(world, inst, inst.run(), ["broker_count"])


def test_a_mistake_in_a_drop_in_is_refused_naming_the_drop_in(world, inst):
    dropins = os.path.join(os.path.dirname(inst.config_path), "config.d")
    os.makedirs(dropins, exist_ok=True)
    path = os.path.join(dropins, "50-stack.json")
    with open(path, "w") as f:
        json.dump({"success_signal": "registred"}, f)
    assert_refused(world, inst, inst.run(), [path, "key 'success_signal'"])


def test_a_mistake_in_the_environment_is_refused_naming_the_variable(world, inst):
    r = inst.run(env={"KAFKA_BOOTSTRAP_CLAIM_DEADLINE_S": "2m"})
    assert_refused(world, inst, r, ["KAFKA_BOOTSTRAP_CLAIM_DEADLINE_S", "claim_deadline_s"])


def test_a_mistake_in_a_set_flag_is_a_usage_error_naming_the_key(world, inst):
    r = inst.run(["run", "--set", "network_card_index=sixteen"])
    assert_refused(world, inst, r, ["network_card_index"], code=64)
