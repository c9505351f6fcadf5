"""EC2: every action through botocore, filters, pagination, IAM, and the state machine."""

import threading

import pytest
from botocore.exceptions import ClientError

from fakeaws import FakeAWS, Hooks
from .conftest import (BROKERS, ENIS, HOST_KEY, LISTENERS, READ_ONLY_KEY, VOLUMES, client, load_fixture,
                       send, signed)

A, B, C = BROKERS["a"], BROKERS["b"], BROKERS["c"]


def code_of(call, *args, **kw):
    with pytest.raises(ClientError) as err:
        call(*args, **kw)
    r = err.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


class Recorder(Hooks):
    """Hooks that remember each call and the thread it ran on."""

    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()

    def _add(self, *call):
        with self.cond:
            self.calls.append(call + (threading.current_thread().name,))
            self.cond.notify_all()

    def eni_attached(self, instance_id, eni):
        self._add("eni_attached", instance_id, eni["id"], eni["device_index"])

    def eni_detached(self, instance_id, eni):
        self._add("eni_detached", instance_id, eni["id"])

    def volume_attached(self, instance_id, volume, device):
        self._add("volume_attached", instance_id, volume["id"], device)

    def volume_detached(self, instance_id, volume):
        self._add("volume_detached", instance_id, volume["id"])

    def instance_state_changed(self, instance_id, state):
        self._add("state", instance_id, state)

    def names(self):
        with self.cond:
            return [c[:-1] for c in self.calls]


def eni_of(ec2, eni_id):
    return ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]


def volume_of(ec2, vol_id):
    return ec2.describe_volumes(VolumeIds=[vol_id])["Volumes"][0]


def instance_of(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def test_every_action_parses_with_botocore(fake):
    ec2 = client(fake, "ec2")
    att = ec2.attach_network_interface(NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=1)
    assert att["AttachmentId"].startswith("eni-attach-") and att["NetworkCardIndex"] == 0
    vol = ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=A, Device="/dev/sdg")
    assert (vol["State"], vol["Device"], vol["InstanceId"]) == ("attaching", "/dev/sdg", A)
    assert fake.wait_idle()
    eni = eni_of(ec2, ENIS["a"])
    assert eni["Status"] == "in-use" and eni["Attachment"]["Status"] == "attached"
    assert eni["Attachment"]["DeviceIndex"] == 1 and eni["MacAddress"] == "0e:00:00:01:01:00"
    assert eni["TagSet"] == [{"Key": "Name", "Value": "KAFKA-0"},
                             {"Key": "kafka-bootstrap:cluster", "Value": "test"}]
    v = volume_of(ec2, VOLUMES["a"])
    assert v["State"] == "in-use" and v["Attachments"][0]["State"] == "attached"
    assert (v["Size"], v["VolumeType"], v["AvailabilityZone"]) == (100, "gp3", "us-east-1a")
    inst = instance_of(ec2, A)
    assert inst["State"] == {"Code": 16, "Name": "running"}
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert [n["Attachment"]["DeviceIndex"] for n in inst["NetworkInterfaces"]] == [0, 1]
    assert [d["DeviceName"] for d in inst["BlockDeviceMappings"]] == ["/dev/sdg", "/dev/xvda"]
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [A]}])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["aws:cloudformation:logical-id"] == "BrokerGroup"
    assert all(t["ResourceType"] == "instance" for t in tags)
    assert ec2.detach_volume(VolumeId=VOLUMES["a"])["State"] == "detaching"
    ec2.detach_network_interface(AttachmentId=att["AttachmentId"])
    assert fake.wait_idle()
    assert eni_of(ec2, ENIS["a"])["Status"] == "available"
    assert volume_of(ec2, VOLUMES["a"])["State"] == "available"
    assert {r["action"] for r in fake.requests()} == {
        "AttachNetworkInterface", "AttachVolume", "DescribeNetworkInterfaces", "DescribeVolumes",
        "DescribeInstances", "DescribeTags", "DetachVolume", "DetachNetworkInterface"}
    assert {r["instance_id"] for r in fake.requests()} == {None}  # the host key has no instance
    assert fake.iam_actions() == [
        "ec2:AttachNetworkInterface", "ec2:AttachVolume", "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeVolumes",
        "ec2:DetachNetworkInterface", "ec2:DetachVolume"]


def test_responses_use_awss_namespace_and_error_document(fake):
    url = fake.endpoints["ec2"]
    status, headers, body = send(url, *signed(url, "ec2", {"Action": "DescribeVolumes",
                                                          "Version": "2016-11-15"}))
    assert status == 200 and headers["Content-Type"] == "text/xml;charset=UTF-8"
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeVolumesResponse '
                           b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">\n    <requestId>')
    status, _, body = send(url, *signed(url, "ec2", {"Action": "DescribeVolumes", "Version": "2016-11-15",
                                                    "VolumeId.1": "vol-0123456789abcdef0"}))
    assert status == 400
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                           b"<Code>InvalidVolume.NotFound</Code><Message>The volume "
                           b"'vol-0123456789abcdef0' does not exist.</Message></Error></Errors><RequestID>")
    status, _, body = send(url, *signed(url, "ec2", {"Action": "DescribeVolume", "Version": "2016-11-15"}))
    assert (status, b"<Code>InvalidAction</Code>" in body) == (400, True)


def test_filters_and_across_or_within_with_wildcards(fake):
    ec2 = client(fake, "ec2")

    def enis(*filters):
        got = ec2.describe_network_interfaces(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return sorted(e["NetworkInterfaceId"] for e in got["NetworkInterfaces"])

    assert enis(("tag:Name", ["KAFKA-*"])) == sorted(ENIS.values())
    assert enis(("tag:Name", ["KAFKA-*"]), ("availability-zone", ["us-east-1b"])) == [ENIS["b"]]
    assert enis(("tag:Name", ["KAFKA-0", "KAFKA-2"])) == [ENIS["a"], ENIS["c"]]
    assert enis(("tag:Name", ["KAFKA-?"]), ("tag:kafka-bootstrap:cluster", ["test"])) == sorted(ENIS.values())
    assert enis(("tag:Name", [r"KAFKA-\*"])) == []
    assert enis(("tag:Name", ["kafka-*"])) == []  # values are case-sensitive
    assert enis(("tag-key", ["kafka-bootstrap:cluster"]), ("status", ["available"])) == sorted(ENIS.values())
    assert len(enis(("attachment.instance-id", [A]))) == 1  # the primary ENI
    assert enis(("mac-address", ["0e:00:00:03:01:02"]), ("subnet-id", ["subnet-0000000000000c000"]),
                ("vpc-id", ["vpc-0000000000000f000"])) == [ENIS["c"]]
    assert code_of(ec2.describe_network_interfaces, Filters=[{"Name": "colour", "Values": ["x"]}])[:2] == \
        (400, "InvalidParameterValue")

    ec2.attach_volume(VolumeId=VOLUMES["b"], InstanceId=B, Device="/dev/sdg")
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.device", "Values": ["/dev/sd?"]},
                                         {"Name": "attachment.instance-id", "Values": [B]}])["Volumes"]
    assert [v["VolumeId"] for v in vols] == [VOLUMES["b"]]
    running = ec2.describe_instances(Filters=[
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "tag:aws:autoscaling:groupName", "Values": ["kafka-test-*"]},
        {"Name": "availability-zone", "Values": ["us-east-1a", "us-east-1c"]}])
    assert sorted(r["Instances"][0]["InstanceId"] for r in running["Reservations"]) == [A, C]
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["volume"]},
                                      {"Name": "key", "Values": ["Name"]},
                                      {"Name": "value", "Values": ["KAFKA-1"]}])["Tags"]
    assert tags == [{"Key": "Name", "ResourceId": VOLUMES["b"], "ResourceType": "volume", "Value": "KAFKA-1"}]


def test_unknown_and_malformed_ids(fake):
    ec2 = client(fake, "ec2")
    assert code_of(ec2.describe_network_interfaces, NetworkInterfaceIds=["eni-0123456789abcdef0"]) == \
        (400, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID 'eni-0123456789abcdef0' does not exist")
    assert code_of(ec2.describe_instances, InstanceIds=[A, "i-0123456789abcdef0", "i-0123456789abcdef1"]) == \
        (400, "InvalidInstanceID.NotFound", "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist")
    assert code_of(ec2.describe_volumes, VolumeIds=["vol-12"])[:2] == (400, "InvalidVolumeID.Malformed")
    assert code_of(ec2.attach_volume, VolumeId=VOLUMES["a"], InstanceId="i-nothex", Device="/dev/sdg")[:2] == \
        (400, "InvalidInstanceID.Malformed")
    assert code_of(ec2.attach_network_interface, NetworkInterfaceId="eni-0123456789abcdef0",
                   InstanceId=A, DeviceIndex=1)[:2] == (400, "InvalidNetworkInterfaceID.NotFound")


def test_pagination_through_botocore_paginators(make_fake):
    extra = [{"id": f"eni-{n:017x}", "subnet": "subnet-0000000000000a000",
              "tags": {"Name": f"other-{n}"}} for n in range(0x100, 0x10c)]
    fx = load_fixture()
    fx["network_interfaces"] += extra
    fake = make_fake(fx)
    ec2 = client(fake, "ec2")
    pages = list(ec2.get_paginator("describe_network_interfaces").paginate(PaginationConfig={"PageSize": 5}))
    sizes = [len(p["NetworkInterfaces"]) for p in pages]
    ids = [e["NetworkInterfaceId"] for p in pages for e in p["NetworkInterfaces"]]
    assert sizes == [5, 5, 5, 3] and len(set(ids)) == 18  # 12 + 3 + 3 primaries
    assert "NextToken" not in pages[-1]
    tags = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert sum(len(p["Tags"]) for p in tags) == 12 * 1 + 3 * 2 + 3 * 2 + 3 * 4
    vols = list(ec2.get_paginator("describe_volumes").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Volumes"]) for p in vols] == [5, 1]
    inst = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Reservations"]) for p in inst] == [3]
    assert code_of(ec2.describe_network_interfaces, NetworkInterfaceIds=[ENIS["a"]], MaxResults=5)[:2] == \
        (400, "InvalidParameterCombination")
    unchecked = client(fake, "ec2", parameter_validation=False)  # botocore checks min 5 itself
    assert code_of(unchecked.describe_network_interfaces, MaxResults=3)[:2] == (400, "InvalidParameterValue")
    assert code_of(ec2.describe_network_interfaces, MaxResults=5, NextToken="bm90IGEgdG9rZW4=")[:2] == \
        (400, "InvalidPaginationToken")
    token = ec2.describe_network_interfaces(MaxResults=5)["NextToken"]
    assert code_of(ec2.describe_volumes, MaxResults=5, NextToken=token)[:2] == (400, "InvalidPaginationToken")
    assert len(ec2.describe_volumes(MaxResults=600)["Volumes"]) == 6  # clamped to 500, not refused


def test_dry_run_allowed_and_denied(fake):
    writer, reader = client(fake, "ec2", HOST_KEY), client(fake, "ec2", READ_ONLY_KEY)
    assert code_of(writer.attach_volume, VolumeId=VOLUMES["a"], InstanceId=A, Device="/dev/sdg",
                   DryRun=True) == (412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
    assert code_of(writer.attach_network_interface, NetworkInterfaceId=ENIS["a"], InstanceId=A,
                   DeviceIndex=1, DryRun=True)[:2] == (412, "DryRunOperation")
    assert volume_of(writer, VOLUMES["a"])["State"] == "available"
    status, code, message = code_of(reader.attach_volume, VolumeId=VOLUMES["a"], InstanceId=A,
                                    Device="/dev/sdg", DryRun=True)
    assert (status, code) == (403, "UnauthorizedOperation")
    assert message.startswith("You are not authorized to perform this operation. User: "
                              "arn:aws:sts::123456789012:assumed-role/read-only/host-read-only")
    assert "ec2:AttachVolume on resource: arn:aws:ec2:us-east-1:123456789012:volume/" in message
    assert "Encoded authorization failure message: " in message
    assert code_of(reader.describe_volumes, DryRun=True)[:2] == (412, "DryRunOperation")
    assert code_of(reader.attach_volume, VolumeId=VOLUMES["a"], InstanceId=A, Device="/dev/sdg")[:2] == \
        (403, "UnauthorizedOperation")
    assert [r["dry_run"] for r in fake.requests()] == [True, True, False, True, True, False]


def _race(fake, requests):
    """Send prepared requests from one thread each, released together; return answers."""
    url = fake.endpoints["ec2"]
    barrier = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def run(i):
        barrier.wait()
        status, _, body = send(url, *requests[i])
        answers[i] = (status, body.split(b"<Code>")[1].split(b"</Code>")[0].decode() if status != 200 else "ok")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(answers)


def test_attach_race_exactly_one_wins(make_fake):
    fx = load_fixture()
    fx["instances"] += [{"id": f"i-00000000000000{n:03x}", "subnet": "subnet-0000000000000a000"}
                        for n in range(1, 13)]
    fake = make_fake(fx)
    url = fake.endpoints["ec2"]
    instances = [A] + [f"i-00000000000000{n:03x}" for n in range(1, 13)]
    enis = [signed(url, "ec2", {"Action": "AttachNetworkInterface", "Version": "2016-11-15",
                                "NetworkInterfaceId": ENIS["a"], "InstanceId": i, "DeviceIndex": "1"})
            for i in instances]
    assert _race(fake, enis) == [(200, "ok")] + [(400, "InvalidNetworkInterface.InUse")] * 12
    vols = [signed(url, "ec2", {"Action": "AttachVolume", "Version": "2016-11-15",
                                "VolumeId": VOLUMES["a"], "InstanceId": i, "Device": "/dev/sdg"})
            for i in instances]
    assert _race(fake, vols) == [(200, "ok")] + [(400, "VolumeInUse")] * 12
    assert fake.wait_idle()
    state = fake.state()
    assert state["network_interfaces"][ENIS["a"]]["attachment"]["status"] == "attached"
    assert state["volumes"][VOLUMES["a"]]["attachment"]["status"] == "attached"


def test_cross_az_and_conflicting_attachments_are_refused(make_fake):
    fx = load_fixture()
    fx["network_interfaces"].append({"id": "eni-0000000000000a0ff", "subnet": "subnet-0000000000000a000"})
    fx["volumes"] += [{"id": "vol-0000000000000a0ff", "az": "us-east-1a"},
                      {"id": "vol-0000000000000a0fe", "az": "us-east-1a", "state": "creating",
                       "available_after_s": 60}]
    fake = make_fake(fx)
    ec2 = client(fake, "ec2")
    assert code_of(ec2.attach_network_interface, NetworkInterfaceId=ENIS["b"], InstanceId=A, DeviceIndex=1) == \
        (400, "InvalidParameterCombination",
         "You may not attach a network interface to an instance if they are not in the same availability zone")
    assert code_of(ec2.attach_volume, VolumeId=VOLUMES["b"], InstanceId=A, Device="/dev/sdg") == \
        (400, "InvalidVolume.ZoneMismatch",
         f"The volume '{VOLUMES['b']}' is not in the same availability zone as instance '{A}'")
    ec2.attach_network_interface(NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=1)
    assert code_of(ec2.attach_network_interface, NetworkInterfaceId="eni-0000000000000a0ff",
                   InstanceId=A, DeviceIndex=1) == \
        (400, "InvalidParameterValue", f"Instance '{A}' already has an interface attached at device index '1'.")
    assert code_of(ec2.attach_network_interface, NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=2) == \
        (400, "InvalidNetworkInterface.InUse", f"Interface: [{ENIS['a']}] in use.")
    ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=A, Device="/dev/sdg")
    assert code_of(ec2.attach_volume, VolumeId="vol-0000000000000a0ff", InstanceId=A, Device="/dev/sdg")[:2] == \
        (400, "InvalidDevice.InUse")
    assert code_of(ec2.attach_volume, VolumeId="vol-0000000000000a0ff", InstanceId=A, Device="/dev/nvme1")[:2] == \
        (400, "InvalidParameterValue")
    assert code_of(ec2.attach_volume, VolumeId="vol-0000000000000a0fe", InstanceId=A, Device="/dev/sdh") == \
        (400, "IncorrectState", "Volume 'vol-0000000000000a0fe' is in the 'creating' state.")
    fake.advance_clock(60)
    assert fake.wait_idle()
    ec2.attach_volume(VolumeId="vol-0000000000000a0fe", InstanceId=A, Device="/dev/sdh")
    assert code_of(ec2.detach_network_interface,
                   AttachmentId=instance_of(ec2, A)["NetworkInterfaces"][0]["Attachment"]["AttachmentId"])[:2] == \
        (400, "OperationNotPermitted")


def test_attach_progresses_with_delays_and_hooks(make_fake):
    hooks = Recorder()
    release = threading.Event()
    hooks.eni_attached = lambda iid, eni: (hooks._add("eni_attached", iid, eni["id"]), release.wait(10))
    fx = load_fixture(delays={"eni_attach_s": 30, "volume_attach_s": 60})
    fake = make_fake(fx, hooks)
    ec2 = client(fake, "ec2")
    ec2.attach_network_interface(NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=1)
    ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=A, Device="/dev/sdg")
    assert eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "attaching"
    fake.advance_clock(29)
    assert fake.wait_idle()
    assert hooks.names() == [] and eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "attaching"
    fake.advance_clock(1)
    with hooks.cond:
        assert hooks.cond.wait_for(lambda: hooks.calls, 10)
    # The hook is still running (the harness is plugging the NIC): not attached yet.
    assert eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "attaching"
    release.set()
    assert fake.wait_idle()
    assert eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "attached"
    assert volume_of(ec2, VOLUMES["a"])["Attachments"][0]["State"] == "attaching"
    fake.advance_clock(30)
    assert fake.wait_idle()
    assert volume_of(ec2, VOLUMES["a"])["Attachments"][0]["State"] == "attached"
    assert hooks.names() == [("eni_attached", A, ENIS["a"]), ("volume_attached", A, VOLUMES["a"], "/dev/sdg")]
    assert {c[-1] for c in hooks.calls} == {"fakeaws-scheduler"}
    assert [e["event"] for e in fake.events()] == ["eni_attached", "volume_attached"]


def test_terminate_shutting_down_terminated_then_detach(make_fake):
    hooks = Recorder()
    fx = load_fixture(delays={"shutting_down_s": 10, "eni_detach_s": 5, "volume_detach_s": 7})
    fake = make_fake(fx, hooks)
    ec2 = client(fake, "ec2")
    ec2.attach_network_interface(NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=1)
    ec2.attach_volume(VolumeId=VOLUMES["a"], InstanceId=A, Device="/dev/sdg")
    assert fake.wait_idle()
    fake.terminate_instance(A)
    assert instance_of(ec2, A)["State"] == {"Code": 32, "Name": "shutting-down"}
    assert eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "attached"
    fake.advance_clock(10)
    assert fake.wait_idle()
    inst = instance_of(ec2, A)
    assert inst["State"] == {"Code": 48, "Name": "terminated"}
    assert inst["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "detaching"
    assert volume_of(ec2, VOLUMES["a"])["Attachments"][0]["State"] == "detaching"
    fake.advance_clock(5)
    assert fake.wait_idle()
    assert eni_of(ec2, ENIS["a"])["Status"] == "available" and "Attachment" not in eni_of(ec2, ENIS["a"])
    assert volume_of(ec2, VOLUMES["a"])["State"] == "in-use"
    fake.advance_clock(2)
    assert fake.wait_idle()
    assert volume_of(ec2, VOLUMES["a"])["State"] == "available"
    # The primary ENI and the root volume went with the instance.
    assert ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [A]}])[
        "NetworkInterfaces"] == []
    assert inst["NetworkInterfaces"] == [] and inst["BlockDeviceMappings"] == []
    assert hooks.names() == [
        ("eni_attached", A, ENIS["a"], 1), ("volume_attached", A, VOLUMES["a"], "/dev/sdg"),
        ("state", A, "shutting-down"), ("state", A, "terminated"),
        ("eni_detached", A, ENIS["a"]), ("volume_detached", A, VOLUMES["a"])]
    fake.forget_instance(A)
    assert code_of(ec2.describe_instances, InstanceIds=[A])[:2] == (400, "InvalidInstanceID.NotFound")


def test_stop_keeps_attachments_and_allows_warm_attach(make_fake):
    hooks = Recorder()
    fake = make_fake(load_fixture(delays={"stopping_s": 5, "pending_s": 5}), hooks)
    ec2 = client(fake, "ec2")
    ec2.attach_volume(VolumeId=VOLUMES["b"], InstanceId=B, Device="/dev/sdg")
    fake.stop_instance(B)
    assert code_of(ec2.attach_network_interface, NetworkInterfaceId=ENIS["b"], InstanceId=B,
                   DeviceIndex=1)[:2] == (400, "IncorrectInstanceState")
    fake.advance_clock(5)
    assert fake.wait_idle()
    assert instance_of(ec2, B)["State"]["Name"] == "stopped"
    ec2.attach_network_interface(NetworkInterfaceId=ENIS["b"], InstanceId=B, DeviceIndex=1)
    assert fake.wait_idle()
    assert volume_of(ec2, VOLUMES["b"])["Attachments"][0]["InstanceId"] == B
    fake.start_instance(B)
    fake.advance_clock(5)
    assert fake.wait_idle()
    assert instance_of(ec2, B)["State"]["Name"] == "running"
    assert [c for c in hooks.names() if c[0] == "state"] == [
        ("state", B, "stopping"), ("state", B, "stopped"), ("state", B, "pending"), ("state", B, "running")]


def test_describe_is_stale_for_the_configured_window(make_fake):
    fake = make_fake(load_fixture(delays={"describe_stale_s": 20}))
    ec2 = client(fake, "ec2")
    ec2.attach_network_interface(NetworkInterfaceId=ENIS["c"], InstanceId=C, DeviceIndex=1)
    new = fake.launch_instance(az="us-east-1c", role="kafka-broker")
    assert eni_of(ec2, ENIS["c"])["Status"] == "available"
    assert code_of(ec2.describe_instances, InstanceIds=[new["id"]])[:2] == (400, "InvalidInstanceID.NotFound")
    # Attach acts on the truth, not on the stale view.
    assert code_of(ec2.attach_network_interface, NetworkInterfaceId=ENIS["c"], InstanceId=new["id"],
                   DeviceIndex=1)[:2] == (400, "InvalidNetworkInterface.InUse")
    fake.advance_clock(20)
    assert eni_of(ec2, ENIS["c"])["Attachment"]["Status"] == "attached"
    assert instance_of(ec2, new["id"])["State"]["Name"] == "running"
    fake.set_faults(describe_stale_s=0)
    assert instance_of(ec2, new["id"])["SubnetId"] == "subnet-0000000000000c000"


def test_a_failing_hook_is_reported_and_leaves_the_attachment_attaching():
    class Broken(Hooks):
        def eni_attached(self, instance_id, eni):
            raise RuntimeError("veth plug failed")

        def on_request(self, record):
            raise RuntimeError("harness bug")

    with FakeAWS(load_fixture(), hooks=Broken()).start(LISTENERS) as fake:
        ec2 = client(fake, "ec2")
        ec2.attach_network_interface(NetworkInterfaceId=ENIS["a"], InstanceId=A, DeviceIndex=1)
        assert fake.wait_idle()
        assert eni_of(ec2, ENIS["a"])["Attachment"]["Status"] == "attaching"
        assert sorted(str(e) for e in fake.errors()) == ["harness bug", "harness bug", "veth plug failed"]
