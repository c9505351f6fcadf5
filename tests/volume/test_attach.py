"""The whole volume stage against the fake EC2: attach when available, wait for a dying owner,
refuse a live one (exit 13), refuse another AZ and two volumes with one tag, plan with DryRun.
The driver runs the real discover stage first (the fixture tags an ENI for every volume's id),
then plays the claim of id 3.

The fake's attach hook plays udev: when a volume reads attached to our instance, its by-id
link appears in the test's /dev tree, pointing at the loop device that is "the volume"."""
import hashlib
import os

import pytest

from fakeaws import FakeAWS, Hooks
from harness.loopdev import blkid_probe, make_ext4, run

ME = "i-0000000000000a001"
OTHER = "i-0000000000000a002"
VOL = "vol-0000000000000a003"
COPY = "vol-0000000000000a004"
KEY = ("AKIAVOLUMETEST000001", "VolumeTestSecretKey/with+chars/000000000")
AZ = "us-east-1a"

# What the CloudFormation template grants a broker (the actions discover and this stage use).
BROKER_ACTIONS = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeVolumes",
                  "ec2:DescribeInstances", "ec2:AttachVolume"]


def enis_for(volumes):
    """One ENI in us-east-1a tagged like each volume, as discover needs for a candidate."""
    names = sorted({v["tags"]["Name"] for v in volumes})
    return [{"id": f"eni-0000000000000e{n:03x}", "subnet": "subnet-0000000000000a000",
             "tags": {"Name": name, "kafka-bootstrap:cluster": "test"}}
            for n, name in enumerate(names)]


def fixture(volumes, instances=(), delays=None):
    return {
        "region": "us-east-1", "account": "123456789012",
        "vpc": {"id": "vpc-0000000000000f000", "cidr": "10.0.0.0/16"},
        "subnets": [
            {"id": "subnet-0000000000000a000", "az": AZ, "az_id": "use1-az6",
             "cidr": "10.0.1.0/24"},
            {"id": "subnet-0000000000000b000", "az": "us-east-1b", "az_id": "use1-az1",
             "cidr": "10.0.2.0/24"}],
        "roles": {"kafka-broker": BROKER_ACTIONS, "operator": ["ec2:*"]},
        "credentials": [{"access_key_id": KEY[0], "secret_access_key": KEY[1],
                         "role": "kafka-broker", "session_name": "volume-tests"}],
        "instances": [{"id": ME, "subnet": "subnet-0000000000000a000", "role": "kafka-broker"},
                      *instances],
        "network_interfaces": enis_for(volumes),
        "volumes": volumes,
        "delays": {"volume_attach_s": 0.3, "volume_detach_s": 0.3, "shutting_down_s": 0.5,
                   **(delays or {})},
    }


def volume(vol_id=VOL, name="KAFKA-3", az=AZ, **more):
    return {"id": vol_id, "az": az, "size": 100, "type": "gp3",
            "tags": {"Name": name, "kafka-bootstrap:cluster": "test"}, **more}


class Udev(Hooks):
    """Links a volume's by-id name to its loop device while it is attached to one of the
    instances the test runs (they take turns on this machine)."""

    def __init__(self, world, loops, local=(ME,)):
        self.world = world
        self.loops = loops
        self.local = local

    def volume_attached(self, instance_id, volume, device):
        if instance_id in self.local and volume["id"] in self.loops:
            self.world.link_by_id(volume["id"], self.loops[volume["id"]])

    def volume_detached(self, instance_id, volume):
        if instance_id in self.local and volume["id"] in self.loops:
            serial = volume["id"].replace("-", "")
            os.unlink(os.path.join(self.world.dev_root, "disk", "by-id",
                                   f"nvme-Amazon_Elastic_Block_Store_{serial}"))


@pytest.fixture
def cloud(world):
    """Starts fakes on loopback; each has world.loop() devices standing for its volumes."""
    started = []

    def start(fix, loops=None, local=(ME,)):
        fake = FakeAWS(fix, hooks=Udev(world, loops or {}, local))
        fake.start([{"service": "ec2"}])
        started.append(fake)
        return fake
    yield start
    for fake in started:
        fake.stop()
    for fake in started:
        assert fake.errors() == []


def run_stage(world, fake, *args, deadline_ms=15000, config=None, instance=ME):
    env = {"AWS_ENDPOINT_URL_EC2": fake.endpoints["ec2"], "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": KEY[0], "AWS_SECRET_ACCESS_KEY": KEY[1],
           "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_SESSION_TOKEN", None)
    return world.run(3, None, "--instance-id", instance, "--az", AZ, *args, env=env,
                     config={"CLUSTER": "test", **(config or {})}, deadline_ms=deadline_ms)


def calls(fake, action):
    return [r for r in fake.requests() if r["action"] == action]


def attachment(fake, vol_id=VOL):
    return fake.state()["volumes"][vol_id]["attachment"]


def test_available_volume_is_attached_formatted_and_mounted(world, cloud):
    loop = world.loop()
    fake = cloud(fixture([volume()]), {VOL: loop})
    proc = run_stage(world, fake, config={"FILESYSTEM": "ext4"})
    assert proc.returncode == 0, proc.stderr
    assert attachment(fake)["instance_id"] == ME
    assert attachment(fake)["device"] == "/dev/sdg"
    assert any(c.startswith(f"attached {VOL} to {ME} as /dev/sdg") for c in proc.changes)
    assert blkid_probe(loop.path)["LABEL"] == "kafka-3"
    assert world.mounted_device() is not None
    assert {f"ec2:{r['action']}" for r in fake.requests()} <= set(BROKER_ACTIONS)
    assert all(r["error_code"] in (None, "") for r in calls(fake, "AttachVolume"))

    rerun = run_stage(world, fake, config={"FILESYSTEM": "ext4"})
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.changes == []
    assert len(calls(fake, "AttachVolume")) == 1


def test_plan_proves_the_attach_with_dry_run_and_attaches_nothing(world, cloud):
    loop = world.loop()
    fake = cloud(fixture([volume()]), {VOL: loop})
    proc = run_stage(world, fake, "--plan")
    assert proc.returncode == 0, proc.stderr
    attaches = calls(fake, "AttachVolume")
    assert [(a["dry_run"], a["error_code"]) for a in attaches] == [(True, "DryRunOperation")]
    assert attachment(fake) is None
    assert any(c.startswith(f"would: attach {VOL}") for c in proc.changes)
    assert world.mkfs_calls() == []


def test_plan_without_attach_permission_fails_with_exit_77(world, cloud):
    fix = fixture([volume()])
    fix["roles"]["kafka-broker"] = ["ec2:DescribeVolumes", "ec2:DescribeInstances"]
    fake = cloud(fix)
    proc = run_stage(world, fake, "--plan")
    assert proc.returncode == 77, proc.stderr
    assert "UnauthorizedOperation" in proc.stderr


def test_volume_attached_to_a_running_instance_is_refused_with_exit_13(world, cloud):
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000"}
    fake = cloud(fixture([volume(attachment={"instance": OTHER, "device": "/dev/sdg"})],
                         instances=[other]))
    proc = run_stage(world, fake)
    assert proc.returncode == 13, proc.stderr
    assert OTHER in proc.stderr and "running" in proc.stderr
    assert attachment(fake)["instance_id"] == OTHER
    assert calls(fake, "AttachVolume") == [] and calls(fake, "DetachVolume") == []


def test_volume_of_a_stopped_instance_is_refused_without_take_over(world, cloud):
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000", "state": "stopped"}
    fake = cloud(fixture([volume(attachment={"instance": OTHER, "device": "/dev/sdg"})],
                         instances=[other]))
    proc = run_stage(world, fake)
    assert proc.returncode == 13, proc.stderr
    assert "stopped" in proc.stderr and "take_over_stopped" in proc.stderr
    assert calls(fake, "DetachVolume") == []


def test_volume_of_a_terminating_instance_is_waited_for_then_attached(world, cloud):
    loop = world.loop()
    make_ext4(loop.path)
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000"}
    fake = cloud(fixture([volume(attachment={"instance": OTHER, "device": "/dev/sdh"})],
                         instances=[other], delays={"shutting_down_s": 1.0}),
                 {VOL: loop})
    fake.terminate_instance(OTHER)
    proc = run_stage(world, fake)
    assert proc.returncode == 0, proc.stderr
    assert attachment(fake)["instance_id"] == ME
    assert "waiting for" in proc.stderr
    assert calls(fake, "DetachVolume") == []
    assert world.mkfs_calls() == []


def test_dying_owner_that_outlives_the_deadline_ends_in_exit_75(world, cloud):
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000"}
    fake = cloud(fixture([volume(attachment={"instance": OTHER, "device": "/dev/sdh"})],
                         instances=[other], delays={"shutting_down_s": 60}))
    fake.terminate_instance(OTHER)
    proc = run_stage(world, fake, deadline_ms=1500)
    assert proc.returncode == 75, proc.stderr
    assert OTHER in proc.stderr


def test_volume_in_another_az_is_refused_naming_the_snapshot_feature(world, cloud):
    fake = cloud(fixture([volume(az="us-east-1b")]))
    proc = run_stage(world, fake)
    assert proc.returncode == 13, proc.stderr
    assert "us-east-1b" in proc.stderr and "snapshot" in proc.stderr
    assert calls(fake, "AttachVolume") == []


def test_two_volumes_with_one_tag_are_refused_and_both_listed(world, cloud):
    fake = cloud(fixture([volume(), volume(COPY)]))
    proc = run_stage(world, fake)
    assert proc.returncode == 13, proc.stderr
    assert VOL in proc.stderr and COPY in proc.stderr
    assert calls(fake, "AttachVolume") == []


def test_volume_still_creating_is_waited_for(world, cloud):
    loop = world.loop()
    fake = cloud(fixture([volume(state="creating", available_after_s=0.8)]), {VOL: loop})
    proc = run_stage(world, fake, config={"FILESYSTEM": "ext4"})
    assert proc.returncode == 0, proc.stderr
    assert attachment(fake)["instance_id"] == ME


def test_lost_attach_race_is_looked_at_again_not_retried_blindly(world, cloud):
    """Describe lags 1 s: the volume still reads available after another instance attached
    it. AttachVolume answers VolumeInUse; once Describe catches up the owner reads running,
    and the stage stops with 13 instead of taking it."""
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000"}
    fake = cloud(fixture([volume()], instances=[other], delays={"describe_stale_s": 1.0}))
    fake.world.attach_volume(VOL, OTHER, "/dev/sdg")
    proc = run_stage(world, fake)
    assert proc.returncode == 13, proc.stderr
    assert attachment(fake)["instance_id"] == OTHER
    attaches = calls(fake, "AttachVolume")
    assert attaches and all(a["error_code"] == "VolumeInUse" for a in attaches)
    assert calls(fake, "DetachVolume") == []


def test_prerequisite_mode_requires_the_attachment_and_attaches_nothing(world, cloud):
    fake = cloud(fixture([volume()]))
    proc = run_stage(world, fake, "--prerequisite")
    assert proc.returncode != 0
    assert "not attached to this instance" in proc.stderr
    assert calls(fake, "AttachVolume") == []


def test_replacement_instance_finds_the_same_data(world, cloud):
    """Instance A attaches the blank volume, formats it, Kafka writes; A is terminated (its
    mounts vanish with it, EC2 detaches the volume); replacement B, claiming the same id, gets
    the same volume and reads the same bytes, with no mkfs the second time."""
    loop = world.xfs_loop()
    replacement = {"id": OTHER, "subnet": "subnet-0000000000000a000"}
    fake = cloud(fixture([volume()], instances=[replacement]), {VOL: loop}, local=(ME, OTHER))

    first = run_stage(world, fake)
    assert first.returncode == 0, first.stderr
    data = os.urandom(1 << 20)
    with open(os.path.join(world.log_dir, "00000000.log"), "wb") as f:
        f.write(data)
    with open(os.path.join(world.log_dir, "meta.properties"), "w") as f:
        f.write("version=0\nbroker.id=3\n")
    run("umount", world.mount_point)
    fake.terminate_instance(ME)

    second = run_stage(world, fake, instance=OTHER)
    assert second.returncode == 0, second.stderr
    assert attachment(fake)["instance_id"] == OTHER
    with open(os.path.join(world.log_dir, "00000000.log"), "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    assert len(world.mkfs_calls()) == 1


def test_take_over_stopped_detaches_from_the_stopped_owner_then_attaches(world, cloud):
    loop = world.loop()
    make_ext4(loop.path)
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000", "state": "stopped"}
    fix = fixture([volume(attachment={"instance": OTHER, "device": "/dev/sdg"})],
                  instances=[other])
    fix["roles"]["kafka-broker"] = BROKER_ACTIONS + ["ec2:DetachVolume"]
    fake = cloud(fix, {VOL: loop})

    plan = run_stage(world, fake, "--plan", "--taken-over-from", OTHER,
                     config={"TAKE_OVER_STOPPED": "true"})
    assert plan.returncode == 0, plan.stderr
    assert [(r["dry_run"], r["error_code"]) for r in calls(fake, "DetachVolume")] == [
        (True, "DryRunOperation")]
    assert attachment(fake)["instance_id"] == OTHER

    proc = run_stage(world, fake, "--taken-over-from", OTHER,
                     config={"TAKE_OVER_STOPPED": "true"})
    assert proc.returncode == 0, proc.stderr
    assert attachment(fake)["instance_id"] == ME
    assert any(c.startswith(f"detached {VOL} from stopped instance {OTHER}")
               for c in proc.changes), proc.changes
    detaches = [r for r in calls(fake, "DetachVolume") if not r["dry_run"]]
    assert len(detaches) == 1


@pytest.mark.parametrize("claim", [[], ["--taken-over-from", "i-0000000000000a00f"]],
                         ids=["held-already", "taken-over-from-another"])
def test_take_over_stopped_never_detaches_from_a_stopped_instance_the_claim_was_not_taken_from(
        world, cloud, claim):
    """take_over_stopped may sit in config.d for good: it lets the stage detach only from the
    stopped instance this run took the broker id from."""
    other = {"id": OTHER, "subnet": "subnet-0000000000000a000", "state": "stopped"}
    fix = fixture([volume(attachment={"instance": OTHER, "device": "/dev/sdg"})],
                  instances=[other])
    fix["roles"]["kafka-broker"] = BROKER_ACTIONS + ["ec2:DetachVolume"]
    fake = cloud(fix)
    for plan in ([], ["--plan"]):
        proc = run_stage(world, fake, *claim, *plan, config={"TAKE_OVER_STOPPED": "true"})
        assert proc.returncode == 13, proc.stderr
        assert f"{VOL} is attached to {OTHER}, which is stopped" in proc.stderr
        assert "detaches only from the instance this run took the broker id from" in \
            proc.stderr
    assert calls(fake, "DetachVolume") == [] and calls(fake, "AttachVolume") == []
    assert attachment(fake)["instance_id"] == OTHER


def test_missing_volume_is_named_in_the_error(world, cloud):
    fake = cloud(fixture([volume(name="KAFKA-4")]))
    proc = run_stage(world, fake)
    assert proc.returncode == 70, proc.stderr
    assert "no EBS volume carries Name=KAFKA-3 in cluster test" in proc.stderr
    assert calls(fake, "AttachVolume") == []
