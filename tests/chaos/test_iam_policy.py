"""The brokers' IAM role in cloudformation/kafka-brokers.yaml grants exactly the actions
kafka-bootstrap calls: a simulated cluster configured as the stack's userdata configures it
(its 50-stack.json, read from the template) goes through everything the tool does in a
stack's life, and the set of actions the fake recorded equals the role's, nothing missing,
nothing extra. The fake's role is the template's, so a call outside it is refused (and the
run fails) as AWS would refuse it. Taking over a stopped broker's id adds exactly the
actions of the template's TakeOverPolicy.

The life: three brokers boot (run, then Kafka registers, then `signal --wait-registered`:
SUCCESS and CONTINUE to the launch hook); broker 0's instance is terminated and a replacement
is planned (`plan`: DryRun attaches), then boots and takes the id over; an instance too many
fails (exit 10: FAILURE, Unhealthy, ABANDON); broker 2's instance is stopped and an operator
takes its id over on a new instance (`run --take-over-stopped`)."""
import json
import os
import re
import time

import yaml
from kazoo.client import KazooClient

import chaos
from deploy.cfn_template import load, role_actions, take_over_actions
from harness import layout
from harness.world import World, default_binary

STACK = "kafka-sim"
TAKE_OVER_ROLE = "kafka-broker-take-over"


def resources_for_each(template, loop):
    """(loop variable, values, body) of a Fn::ForEach::<loop> in Resources."""
    variable, values, body = template["Resources"][f"Fn::ForEach::{loop}"]
    return variable, values, body


def stack_dropin(template, zone, values):
    """The JSON the launch template's userdata writes to config.d/50-stack.json for a zone,
    with the stack's parameters and pseudo parameters filled in."""
    _, zones, body = resources_for_each(template, "Zones")
    assert zone in zones
    text = body["Zone${Zone}LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"][
        "Fn::Base64"]["Fn::Sub"]
    filled = re.sub(r"\$\{([^}!]+)\}", lambda m: dict(values, Zone=zone)[m.group(1)], text)
    written, = [f for f in yaml.safe_load(filled)["write_files"]
                if f["path"] == "/etc/kafka-bootstrap/config.d/50-stack.json"]
    return json.loads(written["content"])


def stack_fixture(template, actions):
    """harness.layout's three brokers over three AZs, named as the template names them:
    group <stack>-kafka-zone-<Z> with the launch hook, stack resource Zone<Z>Group."""
    fx = chaos.fixture(3, 3, 3, role_actions=actions, delays={"shutting_down_s": 1},
                       terminate_unhealthy=False)
    _, zones, body = resources_for_each(template, "Zones")
    hook, = body["Zone${Zone}Group"]["Properties"]["LifecycleHookSpecificationList"]
    stack = fx["stacks"][0]
    stack["resources"] = {}
    renamed = {}
    for zone, group in zip(zones, fx["autoscaling_groups"]):
        name, logical = f"{STACK}-kafka-zone-{zone}", f"Zone{zone}Group"
        renamed[group["name"]] = (name, logical)
        group["name"] = name
        group["tags"]["aws:cloudformation:logical-id"] = logical
        group["lifecycle_hooks"] = [{
            "name": hook["LifecycleHookName"], "transition": hook["LifecycleTransition"],
            "heartbeat_timeout_s": hook["HeartbeatTimeout"],
            "default_result": hook["DefaultResult"]}]
        group["instances"] = [{"id": i, "lifecycle_state": "Pending:Wait"}
                              for i in group["instances"]]
        stack["resources"][logical] = {"type": "AWS::AutoScaling::AutoScalingGroup",
                                       "waiting": True, "count": len(group["instances"])}
    for inst in fx["instances"]:
        name, logical = renamed[inst["tags"]["aws:autoscaling:groupName"]]
        inst["tags"].update({"aws:autoscaling:groupName": name,
                             "aws:cloudformation:logical-id": logical})
    fx["roles"][TAKE_OVER_ROLE] = actions + take_over_actions(template)
    return fx


class Cluster:
    """The world plus what the stack adds: the userdata's drop-in on every instance, and a
    stand-in Kafka that registers a broker in ZooKeeper."""

    def __init__(self, w, template):
        self.w = w
        self.template = template
        stack = w.fixture["stacks"][0]
        self.values = {"ClusterName": w.cluster, "ZooKeeperConnect": w.zookeeper_connect,
                       "AWS::StackId": stack["id"], "AWS::StackName": stack["name"]}
        self.zones = {s["az"]: layout.group_letter(k) for k, s in enumerate(w.fixture["subnets"])}
        self.kafka = {}

    def prepare(self, inst):
        dropin = stack_dropin(self.template, self.zones[inst.az], self.values)
        path = os.path.join(os.path.dirname(inst.config_path), "config.d", "50-stack.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(dropin, f)
        return inst

    def launch(self, az, **kw):
        return self.prepare(self.w.launch(az=az, metadata_tags=True, **kw))

    def kafka_starts(self, inst):
        """Kafka on inst registers its broker id with server.properties' endpoints."""
        props = inst.properties()
        bid = int(props["broker.id"])

        def register():
            client = KazooClient(hosts=self.w.zookeeper_connect, timeout=10)
            client.start(timeout=15)
            client.create(f"/brokers/ids/{bid}", json.dumps({
                "version": 5, "host": inst.ip, "port": 9092, "jmx_port": -1,
                "endpoints": props["advertised.listeners"].split(","),
                "timestamp": str(int(time.time() * 1000)), "rack": inst.az_id}).encode(),
                ephemeral=True, makepath=True)
            return client
        self.kafka[inst.id] = self.w.in_vpc(register)

    def kafka_stops(self, inst):
        client = self.kafka.pop(inst.id)
        client.stop()
        client.close()

    def close(self):
        for client in self.kafka.values():
            client.stop()
            client.close()


def boot(cluster, inst, args=("run",)):
    r = inst.run(args)
    chaos.no_crash(r)
    assert r.exit_code == 0, r
    cluster.kafka_starts(inst)
    s = inst.run(["signal", "--wait-registered"])
    chaos.no_crash(s)
    assert s.exit_code == 0, s
    return r.records + s.records


def actions_of(records):
    return {f"{r['service']}:{r['action']}" for r in records
            if r.get("authenticated") and r["service"] != "imds"}


def test_the_role_grants_exactly_what_a_stack_s_life_calls():
    template = load()
    granted = role_actions(template)
    with World(brokers=3, fixture=stack_fixture(template, granted),
               binary=default_binary()) as w:
        cluster = Cluster(w, template)
        try:
            first = [cluster.prepare(i) for i in w.instances]
            for inst in first:
                boot(cluster, inst)
            calls = w.fake.autoscaling_calls()
            assert sorted((c["action"], c["params"]["LifecycleActionResult"]) for c in calls) \
                == [("CompleteLifecycleAction", "CONTINUE")] * 3, calls
            assert sorted(s["status"] for s in w.signals()) == ["SUCCESS"] * 3

            # Broker 0's instance dies; its replacement is planned, then boots.
            old = next(i for i in first if i.properties()["broker.id"] == "0")
            cluster.kafka_stops(old)
            w.terminate(old)
            new = cluster.launch(old.az)
            p = new.run(["plan"])
            chaos.no_crash(p)
            assert p.exit_code == 0, p
            assert {r["action"] for r in p.records if r["dry_run"]} == \
                {"AttachNetworkInterface", "AttachVolume"}, p
            records = boot(cluster, new)
            assert "ec2:DescribeInstances" in actions_of(records)

            # One instance too many in AZ b.
            extra = cluster.launch(w.fixture["subnets"][1]["az"])
            r = extra.run()
            chaos.no_crash(r)
            # ABANDON terminates the instance (AWS does it too): its agent may die with it
            # right after that last call.
            assert r.exit_code == 10 or r.killed == "instance shutting-down", r
            assert "claim: broker id 1: held by " in r.stderr, r
            chaos.failure_told(w, extra.id)
            assert [c["params"]["LifecycleActionResult"] for c in w.fake.autoscaling_calls()
                    if c["action"] == "CompleteLifecycleAction"
                    and c["params"].get("InstanceId") == extra.id] == ["ABANDON"]

            recorded = w.fake.iam_actions()
            assert recorded == granted, \
                f"missing from the calls: {sorted(set(granted) - set(recorded))}; " \
                f"called but not granted: {sorted(set(recorded) - set(granted))}"
            assert not [r for r in w.requests() if r["error_code"] in
                        ("UnauthorizedOperation", "AccessDenied")]

            # Broker 2's instance is stopped; an operator takes its id over on a new one.
            stopped = next(i for i in first if i.properties()["broker.id"] == "2")
            cluster.kafka_stops(stopped)
            w.stop(stopped)
            taker = cluster.launch(stopped.az, role=TAKE_OVER_ROLE)
            records = boot(cluster, taker, ["run", "--take-over-stopped"])
            assert sorted(actions_of(records) - set(granted)) == take_over_actions(template)
            assert sorted(set(w.fake.iam_actions()) - set(granted)) == \
                take_over_actions(template)
            chaos.check_world(w)
        finally:
            cluster.close()
