"""The CloudFormation template: valid against the current resource registry (the AWS CDK's
@aws-cdk/aws-service-spec, through cfn-validate/ here), and the invariants the registry cannot
know: ENI and volume pairs, retention, IMDSv2, one group per zone with signals, least privilege.
Invariants are checked on the template as CloudFormation expands it (AWS::LanguageExtensions),
for the example cluster and for a larger one made by parameters alone."""
import fnmatch
import functools
import json
import os
import re
import shutil

import pytest

from deploytools import KB_BINARY, SOURCE_DIR, TOOLS_DIR, config_keys, run
import cfn_template

TEMPLATE = cfn_template.TEMPLATE
EXAMPLE = SOURCE_DIR / "cloudformation" / "example-parameters.json"
VALIDATOR = SOURCE_DIR / "tests" / "deploy" / "cfn-validate"

# Exactly what kafka-bootstrap calls (the simulated cluster's test compares this list with the
# actions it recorded); Detach* only in the optional take-over policy. No ec2:DescribeTags: the
# signal stage reads the stack's names from config (userdata writes them), else from the tags
# in IMDS, and only then from DescribeTags.
BROKER_ACTIONS = [
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:SetInstanceHealth",
    "cloudformation:SignalResource",
    "ec2:AttachNetworkInterface",
    "ec2:AttachVolume",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVolumes",
]
TAKE_OVER_ACTIONS = ["ec2:DetachNetworkInterface", "ec2:DetachVolume"]
CLUSTER_TAG = "kafka-bootstrap:cluster"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/teststack/0f1e2d3c-1111-2222-3333-444455556666"
SEVEN_BROKERS = {
    "ZoneABrokerIds": "0,3,6", "ZoneBBrokerIds": "1,4", "ZoneCBrokerIds": "2,5",
    "BrokerIps": "10.0.1.10,10.0.2.11,10.0.3.12,10.0.1.13,10.0.2.14,10.0.3.15,10.0.1.16",
}


@functools.lru_cache(maxsize=None)
def validator_env():
    """The validator's npm packages: cfn-validate/node_modules when a developer ran `npm ci`
    there, else installed by `npm ci` from the committed lock file into the build
    directory once, and found through NODE_PATH."""
    if (VALIDATOR / "node_modules").is_dir():
        return dict(os.environ)
    target = TOOLS_DIR / "cfn-validate"
    lock = (VALIDATOR / "package-lock.json").read_text()
    if not (target / "node_modules").is_dir() or (target / "package-lock.json").read_text() != lock:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(VALIDATOR / "package.json", target)
        shutil.copy(VALIDATOR / "package-lock.json", target)
        run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", target])
    return dict(os.environ, NODE_PATH=str(target / "node_modules"))


def validate(template, *args):
    return run(["node", VALIDATOR / "validate.js", *args, template], check=False, env=validator_env())


def example_parameters(**overrides):
    params = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(EXAMPLE.read_text())}
    params.update(overrides)
    return params


def expand(tmp_path, params):
    args = []
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    out = tmp_path / "expanded.json"
    proc = validate(TEMPLATE, *args, "--expanded", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module", params=["example", "seven_brokers"])
def cluster(request, tmp_path_factory):
    params = example_parameters(**(SEVEN_BROKERS if request.param == "seven_brokers" else {}))
    return params, expand(tmp_path_factory.mktemp(request.param), params)


def of_type(template, type_name):
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_name}


def zone_ids(params, zone):
    return [s.strip() for s in params[f"Zone{zone}BrokerIds"].split(",")]


def tags(resource):
    return {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}


def fill(text, params):
    """Fn::Sub as CloudFormation would, with this cluster's values."""
    values = dict(params, **{"AWS::StackId": STACK_ID, "AWS::StackName": "teststack"})
    return re.sub(r"\$\{([^}!]+)\}", lambda m: values[m.group(1)], text)


def broken_copy(tmp_path, old, new, count=1):
    text = TEMPLATE.read_text()
    assert text.count(old) >= count, f"{old!r} is not in the template"
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(old, new, count))
    return path


# --- the registry check, and proof that it can fail -------------------------------------------

def test_template_passes_registry_check_with_example_parameters():
    proc = validate(TEMPLATE, "--parameters", EXAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok, 17 resources" in proc.stdout


def test_more_brokers_need_parameters_only(tmp_path):
    expanded = expand(tmp_path, example_parameters(**SEVEN_BROKERS))
    assert len(of_type(expanded, "AWS::EC2::NetworkInterface")) == 7
    assert len(of_type(expanded, "AWS::EC2::Volume")) == 7
    sizes = {k: r["Properties"]["DesiredCapacity"]
             for k, r in of_type(expanded, "AWS::AutoScaling::AutoScalingGroup").items()}
    assert sizes == {"ZoneAGroup": 3, "ZoneBGroup": 2, "ZoneCGroup": 2}


@pytest.mark.parametrize("old, new, finding", [
    ("PrivateIpAddress: !Select", "PrivateIpAdress: !Select",
     "Broker0Eni.Properties: unknown property 'PrivateIpAdress'"),
    ("HttpTokens: required", "HttpToken: required",
     "MetadataOptions: unknown property 'HttpToken'"),
    ("          SubnetId: !Ref ZoneBSubnet\n", "",
     "Broker1Eni.Properties: missing required property 'SubnetId'"),
    ("HealthCheckGracePeriod: 1200", "HealthCheckGracePeriod: soon",
     "HealthCheckGracePeriod: expects integer"),
], ids=["misspelt_property", "misspelt_nested_property", "missing_required_property",
        "value_of_wrong_type"])
def test_broken_template_fails_validation(tmp_path, old, new, finding):
    proc = validate(broken_copy(tmp_path, old, new))
    assert proc.returncode == 1
    assert finding in proc.stdout


def test_unknown_resource_type_and_dangling_reference_fail_validation(tmp_path):
    path = broken_copy(tmp_path, "Type: AWS::EC2::SecurityGroupIngress", "Type: AWS::EC2::SecurityGroupIngres")
    path.write_text(path.read_text().replace("Size: !Ref VolumeSize", "Size: !Ref VolumeSizeGiB", 1))
    proc = validate(path)
    assert proc.returncode == 1
    assert "'AWS::EC2::SecurityGroupIngres' is not a CloudFormation resource type" in proc.stdout
    assert "Ref to 'VolumeSizeGiB'" in proc.stdout


def test_parameter_constraints_are_enforced():
    proc = validate(TEMPLATE, "--parameters", EXAMPLE, "--param", "ZooKeeperConnect=zk1")
    assert proc.returncode == 1
    assert "parameter value ZooKeeperConnect: 'zk1' does not match" in proc.stdout


# --- invariants on what CloudFormation creates ------------------------------------------------

def test_every_eni_has_a_volume_in_its_zone_with_the_same_tags(cluster):
    params, t = cluster
    enis = of_type(t, "AWS::EC2::NetworkInterface")
    volumes = of_type(t, "AWS::EC2::Volume")
    all_ids = []
    for zone in "ABC":
        for broker in zone_ids(params, zone):
            all_ids.append(int(broker))
            eni, volume = enis.pop(f"Broker{broker}Eni"), volumes.pop(f"Broker{broker}Volume")
            assert eni["Properties"]["SubnetId"] == {"Ref": f"Zone{zone}Subnet"}
            assert volume["Properties"]["AvailabilityZone"] == {"Ref": f"Zone{zone}AvailabilityZone"}
            assert eni["Properties"]["PrivateIpAddress"] == {"Fn::Select": [broker, {"Ref": "BrokerIps"}]}
            expected = {"Name": f"KAFKA-{broker}", CLUSTER_TAG: {"Ref": "ClusterName"}}
            assert tags(eni) == expected and tags(volume) == expected
    assert not enis and not volumes, "an ENI or volume belongs to no zone"
    assert sorted(all_ids) == list(range(len(params["BrokerIps"].split(","))))
    rule = t["Rules"]["ZonesMatchSubnets"]["Assertions"]
    asserted = {tuple(a["Assert"]["Fn::Equals"][0]["Fn::ValueOf"]) for a in rule}
    assert asserted == {(f"Zone{z}Subnet", "AvailabilityZone") for z in "ABC"}


def test_enis_and_volumes_outlive_the_stack_and_volumes_are_encrypted(cluster):
    _, t = cluster
    kept = {**of_type(t, "AWS::EC2::NetworkInterface"), **of_type(t, "AWS::EC2::Volume")}
    for name, res in kept.items():
        assert res["DeletionPolicy"] == "Retain", name
        assert res["UpdateReplacePolicy"] == "Retain", name
    for name, res in of_type(t, "AWS::EC2::Volume").items():
        assert res["Properties"]["Encrypted"] is True, name


def test_instances_require_imdsv2_with_tags(cluster):
    _, t = cluster
    templates = of_type(t, "AWS::EC2::LaunchTemplate")
    assert len(templates) == 3
    for name, lt in templates.items():
        md = lt["Properties"]["LaunchTemplateData"]["MetadataOptions"]
        assert md["HttpTokens"] == "required", name
        assert md["HttpPutResponseHopLimit"] in (1, 2), name
        assert md["InstanceMetadataTags"] == "enabled", name
        assert md.get("HttpEndpoint", "enabled") == "enabled", name


def test_one_group_per_zone_waits_for_one_signal_per_broker(cluster):
    params, t = cluster
    keys = config_keys()
    groups = of_type(t, "AWS::AutoScaling::AutoScalingGroup")
    assert sorted(groups) == ["ZoneAGroup", "ZoneBGroup", "ZoneCGroup"]
    for zone in "ABC":
        g = groups[f"Zone{zone}Group"]
        props, count = g["Properties"], len(zone_ids(params, zone))
        assert props["VPCZoneIdentifier"] == [{"Ref": f"Zone{zone}Subnet"}]
        assert props["MinSize"] == props["MaxSize"] == props["DesiredCapacity"] == count
        assert g["CreationPolicy"]["ResourceSignal"]["Count"] == count
        rolling = g["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert rolling["WaitOnResourceSignals"] is True
        assert rolling["MaxBatchSize"] == 1
        # The replacement needs the ENI and volume of the instance it replaces.
        assert rolling["MinInstancesInService"] < count
        assert "AZRebalance" in rolling["SuspendProcesses"]
        assert props["NewInstancesProtectedFromScaleIn"] is True
        assert props["HealthCheckGracePeriod"] > int(keys["deadline_s"])
        hook, = props["LifecycleHookSpecificationList"]
        assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
        assert hook["DefaultResult"] == "ABANDON"
        # CONTINUE comes from `signal --wait-registered`, after run and Kafka's registration.
        assert hook["HeartbeatTimeout"] > int(keys["deadline_s"]) + int(keys["register_deadline_s"]) + \
            2 * int(keys["signal_deadline_s"])
        propagated = {x["Key"]: x["Value"] for x in props["Tags"] if x["PropagateAtLaunch"]}
        assert propagated[CLUSTER_TAG] == {"Ref": "ClusterName"}


def userdata(t, zone):
    data = t["Resources"][f"Zone{zone}LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    return data["Fn::Base64"]["Fn::Sub"]


def test_userdata_writes_only_the_stack_config_and_starts_the_unit(cluster, tmp_path):
    params, t = cluster
    for zone in "ABC":
        cloud_config = cfn_template.parse(fill(userdata(t, zone), params))
        assert userdata(t, zone).startswith("#cloud-config\n")
        assert sorted(cloud_config) == ["runcmd", "write_files"]
        assert cloud_config["runcmd"] == [["systemctl", "start", "--no-block", "kafka-bootstrap.service"]]
        written, = cloud_config["write_files"]
        assert written["path"] == "/etc/kafka-bootstrap/config.d/50-stack.json"
        stack = json.loads(written["content"])
        group = t["Resources"][f"Zone{zone}Group"]["Properties"]
        hook, = group["LifecycleHookSpecificationList"]
        assert stack["cluster"] == params["ClusterName"]
        assert stack["zookeeper_connect"] == params["ZooKeeperConnect"]
        assert stack["stack_name"] == STACK_ID
        assert stack["logical_resource_id"] == f"Zone{zone}Group"
        assert stack["autoscaling_group"] == fill(group["AutoScalingGroupName"]["Fn::Sub"], params)
        assert stack["lifecycle_hook"] == hook["LifecycleHookName"]
        assert stack["success_signal"] == "registered"
        # The tool itself accepts the file as its stack drop-in beside an AMI's config.json.
        (tmp_path / "config.json").write_text("{}")
        (tmp_path / "config.d").mkdir(exist_ok=True)
        (tmp_path / "config.d" / "50-stack.json").write_text(written["content"])
        effective = json.loads(run([KB_BINARY, "config", "--config", tmp_path / "config.json"]).stdout)
        assert {k: effective[k] for k in stack} == stack


def test_policy_grants_exactly_what_the_tool_calls():
    template = cfn_template.load(TEMPLATE)
    assert cfn_template.role_actions(template) == BROKER_ACTIONS
    assert cfn_template.take_over_actions(template) == TAKE_OVER_ACTIONS
    assert template["Resources"]["TakeOverPolicy"]["Condition"] == "TakeOverStoppedEnabled"
    assert template["Parameters"]["TakeOverStopped"]["Default"] == "false"


def all_statements(t):
    return [(logical_id, s) for logical_id in ("BrokerRole", "TakeOverPolicy")
            for s in cfn_template.statements(t, logical_id)]


def resources_of(statement):
    return [r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r else r
            for r in cfn_template._as_list(statement["Resource"])]


def test_policy_has_no_wildcard_actions_and_scopes_every_write(cluster):
    _, t = cluster
    for logical_id, s in all_statements(t):
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s
        actions = cfn_template._as_list(s["Action"])
        assert all("*" not in a for a in actions), (logical_id, s)
        if s["Resource"] == "*":
            assert all(a.split(":")[1].startswith("Describe") for a in actions), s
    attach = [s for _, s in all_statements(t)
              if any(re.match(r"ec2:(Attach|Detach)", a) for a in cfn_template._as_list(s["Action"]))]
    for s in attach:
        kinds = {r.rsplit(":", 1)[1].split("/")[0] for r in resources_of(s)}
        condition = s["Condition"]["StringEquals"]
        if kinds == {"instance"}:
            assert condition == {"ec2:ResourceTag/aws:cloudformation:stack-id": {"Ref": "AWS::StackId"}}
        else:
            assert kinds == {"network-interface", "volume"}, s
            assert condition == {f"aws:ResourceTag/{CLUSTER_TAG}": {"Ref": "ClusterName"}}
    assert len(attach) == 4


def test_signal_and_health_reach_only_this_stack(cluster):
    params, t = cluster
    by_action = {a: s for _, s in all_statements(t) for a in cfn_template._as_list(s["Action"])}
    assert by_action["cloudformation:SignalResource"]["Resource"] == {"Ref": "AWS::StackId"}
    for action in ("autoscaling:SetInstanceHealth", "autoscaling:CompleteLifecycleAction"):
        arn, = resources_of(by_action[action])
        pattern = fill(arn, {"AWS::Partition": "aws", "AWS::Region": "us-east-1",
                             "AWS::AccountId": "123456789012"})
        assert pattern.startswith("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:")
        groups = of_type(t, "AWS::AutoScaling::AutoScalingGroup").values()
        names = [fill(g["Properties"]["AutoScalingGroupName"]["Fn::Sub"], params) for g in groups]
        for name in names:
            assert fnmatch.fnmatchcase(f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:"
                                       f"0f1e:autoScalingGroupName/{name}", pattern)
        assert not fnmatch.fnmatchcase("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:"
                                       "0f1e:autoScalingGroupName/otherstack-kafka-zone-A", pattern)


def test_outputs_give_clients_the_bootstrap_servers(cluster):
    params, t = cluster
    listener_port = config_keys()["listeners"].rsplit(":", 1)[1]
    value = t["Outputs"]["BootstrapServers"]["Value"]["Fn::Sub"]
    addresses = ":9092,".join(params["BrokerIps"].split(","))
    assert fill(value[0], {"Addresses": addresses}) == ",".join(
        f"{ip}:{listener_port}" for ip in params["BrokerIps"].split(","))
    assert value[1]["Addresses"] == {"Fn::Join": [":9092,", {"Ref": "BrokerIps"}]}

