"""EC2 Query API (Version 2016-11-15): the eight actions kafka-bootstrap calls.

Describe* read the world as of `describe_stale_s` ago (EC2 is eventually consistent) and
support AWS's filters (AND across filters, OR within one filter's values, `*` and `?`
wildcards with `\\` escapes, case-sensitive), ID lists with NotFound for unknown IDs, and
MaxResults/NextToken pagination. Attach and Detach act on the live state, atomically (see
world.py). Responses use the 2016-11-15 namespace with its trailing slash, `requestId`,
and `xxxSet/item` lists, as botocore's model names them.
"""

import base64
import hashlib
import re

from .api import Ec2Protocol, QueryService, numbered, parse_bool
from .errors import ApiError
from .world import STATE_CODES, iso_ms, private_dns

_ID_RE = {prefix: re.compile(rf"{prefix}-[0-9a-f]{{8}}(?:[0-9a-f]{{9}})?")
          for prefix in ("i", "eni", "vol", "eni-attach")}
_MALFORMED = {"i": "InvalidInstanceID.Malformed", "eni": "InvalidNetworkInterfaceID.Malformed",
              "vol": "InvalidVolumeID.Malformed", "eni-attach": "InvalidAttachmentID.Malformed"}
# AWS's recommended EBS names and the Xen-style ones; `/dev/sda1` for roots.
_DEVICE_RE = re.compile(r"/dev/(?:sd[a-z]|xvd[a-z]{1,2}|sd[a-z][1-9]|xvd[a-z][1-9])")


def check_id(prefix, value):
    if not _ID_RE[prefix].fullmatch(value):
        # Wording (unconfirmed): EC2's usual "Invalid id" sentence.
        raise ApiError(_MALFORMED[prefix], f'Invalid id: "{value}" (expecting "{prefix}-...")')


def wildcard(pattern):
    """EC2 filter value to regex: `*` any run, `?` one character, `\\` escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _tag_filters(name, item):
    if name == "tag-key":
        return list(item["tags"])
    if name.startswith("tag:"):
        key = name[4:]
        return [item["tags"][key]] if key in item["tags"] else []
    return None


def _b(value):
    return "true" if value else "false"


def _att(item, key):
    att = item["attachment"]
    if att is None or att.get(key) is None:
        return []
    value = att[key]
    return [_b(value) if isinstance(value, bool) else str(value)]


ENI_FILTERS = {
    "addresses.private-ip-address": lambda e, v: [e["private_ip"]],
    "attachment.attachment-id": lambda e, v: _att(e, "id"),
    "attachment.delete-on-termination": lambda e, v: _att(e, "delete_on_termination"),
    "attachment.device-index": lambda e, v: _att(e, "device_index"),
    "attachment.instance-id": lambda e, v: _att(e, "instance_id"),
    "attachment.instance-owner-id": lambda e, v: [v["account"]] if e["attachment"] else [],
    "attachment.network-card-index": lambda e, v: _att(e, "network_card"),
    "attachment.status": lambda e, v: _att(e, "status"),
    "availability-zone": lambda e, v: [e["az"]],
    "description": lambda e, v: [e["description"]],
    "interface-type": lambda e, v: ["interface"],
    "mac-address": lambda e, v: [e["mac"]],
    "network-interface-id": lambda e, v: [e["id"]],
    "owner-id": lambda e, v: [v["account"]],
    "private-ip-address": lambda e, v: [e["private_ip"]],
    "requester-managed": lambda e, v: ["false"],
    "source-dest-check": lambda e, v: ["true"],
    "status": lambda e, v: [e["status"]],
    "subnet-id": lambda e, v: [e["subnet_id"]],
    "vpc-id": lambda e, v: [e["vpc_id"]],
}

VOLUME_FILTERS = {
    "attachment.attach-time": lambda o, v: [iso_ms(o["attachment"]["attach_time"])] if o["attachment"] else [],
    "attachment.delete-on-termination": lambda o, v: _att(o, "delete_on_termination"),
    "attachment.device": lambda o, v: _att(o, "device"),
    "attachment.instance-id": lambda o, v: _att(o, "instance_id"),
    "attachment.status": lambda o, v: _att(o, "status"),
    "availability-zone": lambda o, v: [o["az"]],
    "create-time": lambda o, v: [iso_ms(o["create_time"])],
    "encrypted": lambda o, v: [_b(o["encrypted"])],
    "multi-attach-enabled": lambda o, v: ["false"],
    "size": lambda o, v: [str(o["size"])],
    "snapshot-id": lambda o, v: [o["snapshot_id"]],
    "status": lambda o, v: [o["status"]],
    "volume-id": lambda o, v: [o["id"]],
    "volume-type": lambda o, v: [o["type"]],
}


def _instance_enis(inst, view):
    return sorted((e for e in view["enis"].values()
                   if e["attachment"] and e["attachment"]["instance_id"] == inst["id"]),
                  key=lambda e: (e["attachment"]["network_card"], e["attachment"]["device_index"]))


def _instance_volumes(inst, view):
    return sorted((o for o in view["volumes"].values()
                   if o["attachment"] and o["attachment"]["instance_id"] == inst["id"]),
                  key=lambda o: o["attachment"]["device"])


INSTANCE_FILTERS = {
    "availability-zone": lambda i, v: [i["az"]],
    "block-device-mapping.device-name": lambda i, v: [o["attachment"]["device"] for o in _instance_volumes(i, v)],
    "block-device-mapping.volume-id": lambda i, v: [o["id"] for o in _instance_volumes(i, v)],
    "iam-instance-profile.arn": lambda i, v: [f"arn:aws:iam::{v['account']}:instance-profile/{i['role']}"] if i["role"] else [],
    "image-id": lambda i, v: [i["image_id"]],
    "instance-id": lambda i, v: [i["id"]],
    "instance-state-code": lambda i, v: [str(STATE_CODES[i["state"]])],
    "instance-state-name": lambda i, v: [i["state"]],
    "instance-type": lambda i, v: [i["instance_type"]],
    "network-interface.mac-address": lambda i, v: [e["mac"] for e in _instance_enis(i, v)],
    "network-interface.network-interface-id": lambda i, v: [e["id"] for e in _instance_enis(i, v)],
    "network-interface.subnet-id": lambda i, v: [e["subnet_id"] for e in _instance_enis(i, v)],
    "owner-id": lambda i, v: [v["account"]],
    "private-ip-address": lambda i, v: [i["private_ip"]] if i["state"] != "terminated" else [],
    "reservation-id": lambda i, v: [i["reservation_id"]],
    "subnet-id": lambda i, v: [i["subnet"]] if i["state"] != "terminated" else [],
    "vpc-id": lambda i, v: [i["vpc_id"]] if i["state"] != "terminated" else [],
}

TAG_FILTERS = {
    "key": lambda t, v: [t["key"]],
    "resource-id": lambda t, v: [t["resource_id"]],
    "resource-type": lambda t, v: [t["resource_type"]],
    "value": lambda t, v: [t["value"]],
}


class Ec2(Ec2Protocol, QueryService):
    """The EC2 endpoint."""

    service = "ec2"
    version = "2016-11-15"
    mutating = frozenset({"AttachNetworkInterface", "DetachNetworkInterface",
                          "AttachVolume", "DetachVolume"})

    # ---- shared pieces ---------------------------------------------------------------

    def _gate(self, params, principal, record, action, resource=None):
        """DryRun and IAM: a dry run that IAM allows ends in DryRunOperation (412)."""
        dry = parse_bool(params, "DryRun", "dryRun")
        record["dry_run"] = dry
        self.authorize(principal, action, resource)
        if dry:
            raise ApiError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)

    @staticmethod
    def _required(params, name):
        value = params.get(name)
        if value is None or value == "":
            raise ApiError("MissingParameter", f"The request must contain the parameter {name}")
        return value

    @staticmethod
    def _int(params, name, wire, default=None):
        value = params.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError("InvalidParameterValue", f"Invalid value '{value}' for {wire}") from None

    @staticmethod
    def _filters(params, known):
        filters = []
        for n in sorted({int(k.split(".")[1]) for k in params
                         if k.startswith("Filter.") and k.split(".")[1].isdigit()}):
            name = params.get(f"Filter.{n}.Name")
            if name is None:
                raise ApiError("MissingParameter", f"The request must contain the parameter Filter.{n}.Name")
            if name not in known and not (name == "tag-key" or name.startswith("tag:")):
                raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
            values = numbered(params, f"Filter.{n}.Value")
            filters.append((name, [wildcard(v) for v in values]))
        return filters

    def _matching(self, items, filters, known, view):
        context = dict(view, account=self.world.account)

        def ok(item):
            for name, patterns in filters:
                values = _tag_filters(name, item)
                if values is None:
                    values = known[name](item, context)
                if not any(p.fullmatch(value) for p in patterns for value in values):
                    return False
            return True
        return [i for i in items if ok(i)]

    def _paginate(self, params, items, ids, wire_ids, low, high, clamp=False):
        max_raw = params.get("MaxResults")
        token = params.get("NextToken")
        if ids and max_raw is not None:
            # InvalidParameterCombination is what AWS and moto both answer; text (unconfirmed).
            raise ApiError("InvalidParameterCombination",
                           f"The parameter {wire_ids} cannot be used with the parameter maxResults")
        fingerprint = hashlib.sha256(repr(sorted(
            (k, v) for k, v in params.items() if k not in ("NextToken", "MaxResults"))).encode()).hexdigest()[:16]
        start = 0
        if token:
            try:
                offset, mark = base64.b64decode(token, validate=True).decode().split(":")
                start = int(offset)
            except ValueError:
                mark = None
            if mark != fingerprint:
                raise ApiError("InvalidPaginationToken",
                               "The specified pagination token is not valid or is expired.")
        if max_raw is None:
            return items[start:], None
        size = self._int(params, "MaxResults", "maxResults")
        if size < low or (size > high and not clamp):
            raise ApiError("InvalidParameterValue",
                           f"Value ( {size} ) for parameter maxResults is invalid. Expecting a "
                           f"value between {low} and {high}.")
        size = min(size, high)
        end = start + size
        if end >= len(items):
            return items[start:], None
        return items[start:end], base64.b64encode(f"{end}:{fingerprint}".encode()).decode()

    def _select_ids(self, items, ids, prefix, singular, plural):
        for i in ids:
            check_id(prefix, i)
        if not ids:
            return items
        present = {item["id"] for item in items}
        missing = [i for i in ids if i not in present]
        if missing:
            code = {"i": "InvalidInstanceID.NotFound", "eni": "InvalidNetworkInterfaceID.NotFound",
                    "vol": "InvalidVolume.NotFound"}[prefix]
            if len(missing) == 1:
                raise ApiError(code, singular.format(missing[0]))
            raise ApiError(code, plural.format(", ".join(missing)))
        return [item for item in items if item["id"] in set(ids)]

    def _dns(self, ip):
        return private_dns(self.world.region, ip)

    def _stale(self):
        return self.fake.describe_stale_s()

    # ---- rendering --------------------------------------------------------------------

    @staticmethod
    def _tags(tags):
        return [("item", [("key", k), ("value", v)]) for k, v in tags.items()]

    def _groups(self):
        return [("item", [("groupId", self.world.default_sg), ("groupName", "default")])]

    def _eni_xml(self, e):
        att = e["attachment"]
        return [
            ("networkInterfaceId", e["id"]), ("subnetId", e["subnet_id"]), ("vpcId", e["vpc_id"]),
            ("availabilityZone", e["az"]), ("description", e["description"]),
            ("ownerId", self.world.account), ("requesterManaged", False), ("status", e["status"]),
            ("macAddress", e["mac"]), ("privateIpAddress", e["private_ip"]),
            ("privateDnsName", self._dns(e["private_ip"])), ("sourceDestCheck", True),
            ("groupSet", self._groups()),
            ("attachment", None if att is None else [
                ("attachmentId", att["id"]), ("instanceId", att["instance_id"]),
                ("instanceOwnerId", self.world.account), ("deviceIndex", att["device_index"]),
                ("networkCardIndex", att["network_card"]), ("status", att["status"]),
                ("attachTime", iso_ms(att["attach_time"])),
                ("deleteOnTermination", att["delete_on_termination"])]),
            ("tagSet", self._tags(e["tags"])),
            ("privateIpAddressesSet", [("item", [
                ("privateIpAddress", e["private_ip"]), ("privateDnsName", self._dns(e["private_ip"])),
                ("primary", True)])]),
            ("ipv4PrefixSet", []), ("ipv6AddressesSet", []), ("ipv6PrefixSet", []),
            ("interfaceType", "interface")]

    @staticmethod
    def _volume_xml(o):
        att = o["attachment"]
        iops = o["iops"]
        if iops is None and o["type"] == "gp2":
            iops = max(100, min(16000, 3 * o["size"]))
        return [
            ("volumeId", o["id"]), ("size", o["size"]), ("snapshotId", o["snapshot_id"]),
            ("availabilityZone", o["az"]), ("status", o["status"]),
            ("createTime", iso_ms(o["create_time"])),
            ("attachmentSet", [] if att is None else [("item", [
                ("volumeId", o["id"]), ("instanceId", att["instance_id"]), ("device", att["device"]),
                ("status", att["status"]), ("attachTime", iso_ms(att["attach_time"])),
                ("deleteOnTermination", att["delete_on_termination"])])]),
            ("tagSet", Ec2._tags(o["tags"])), ("volumeType", o["type"]), ("iops", iops),
            ("encrypted", o["encrypted"]), ("multiAttachEnabled", False),
            ("throughput", o["throughput"])]

    def _instance_xml(self, i, view):
        # A terminated instance lists no address, subnet, interfaces or disks, even while
        # its ENIs still read "detaching" in DescribeNetworkInterfaces.
        alive = i["state"] != "terminated"
        w = self.world
        enis = [("item", [
            ("networkInterfaceId", e["id"]), ("subnetId", e["subnet_id"]), ("vpcId", e["vpc_id"]),
            ("description", e["description"]), ("ownerId", w.account), ("status", e["status"]),
            ("macAddress", e["mac"]), ("privateIpAddress", e["private_ip"]),
            ("privateDnsName", self._dns(e["private_ip"])), ("sourceDestCheck", True),
            ("groupSet", self._groups()),
            ("attachment", [("attachmentId", e["attachment"]["id"]),
                            ("deviceIndex", e["attachment"]["device_index"]),
                            ("status", e["attachment"]["status"]),
                            ("attachTime", iso_ms(e["attachment"]["attach_time"])),
                            ("deleteOnTermination", e["attachment"]["delete_on_termination"]),
                            ("networkCardIndex", e["attachment"]["network_card"])]),
            ("privateIpAddressesSet", [("item", [
                ("privateIpAddress", e["private_ip"]), ("privateDnsName", self._dns(e["private_ip"])),
                ("primary", True)])]),
            ("ipv6AddressesSet", []), ("interfaceType", "interface")])
            for e in (_instance_enis(i, view) if alive else [])]
        disks = [("item", [("deviceName", o["attachment"]["device"]), ("ebs", [
            ("volumeId", o["id"]), ("status", o["attachment"]["status"]),
            ("attachTime", iso_ms(o["attachment"]["attach_time"])),
            ("deleteOnTermination", o["attachment"]["delete_on_termination"])])])
            for o in (_instance_volumes(i, view) if alive else [])]
        profile = None
        if i["role"]:
            profile = [("arn", f"arn:aws:iam::{w.account}:instance-profile/{i['role']}"),
                       ("id", i["instance_profile_id"])]
        reason = i["state_reason"]
        return [
            ("instanceId", i["id"]), ("imageId", i["image_id"]),
            ("instanceState", [("code", STATE_CODES[i["state"]]), ("name", i["state"])]),
            ("privateDnsName", self._dns(i["private_ip"]) if alive else ""), ("dnsName", ""),
            ("reason", i["transition_reason"]), ("amiLaunchIndex", 0), ("productCodes", []),
            ("instanceType", i["instance_type"]), ("launchTime", iso_ms(i["launch_time"])),
            ("placement", [("availabilityZone", i["az"]), ("groupName", ""), ("tenancy", "default")]),
            ("monitoring", [("state", "disabled")]),
            ("subnetId", i["subnet"] if alive else None), ("vpcId", i["vpc_id"] if alive else None),
            ("privateIpAddress", i["private_ip"] if alive else None),
            ("sourceDestCheck", True if alive else None), ("groupSet", self._groups() if alive else []),
            ("stateReason", [("code", reason["code"]), ("message", reason["message"])] if reason else None),
            ("architecture", "x86_64"), ("rootDeviceType", "ebs"), ("rootDeviceName", i["root_device"]),
            ("blockDeviceMapping", disks), ("virtualizationType", "hvm"), ("clientToken", ""),
            ("tagSet", self._tags(i["tags"])), ("hypervisor", "xen"),
            ("networkInterfaceSet", enis), ("iamInstanceProfile", profile),
            ("ebsOptimized", False), ("enaSupport", True),
            ("metadataOptions", [("state", "applied"), ("httpTokens", "required"),
                                 ("httpPutResponseHopLimit", i["hop_limit"]),
                                 ("httpEndpoint", "enabled"), ("httpProtocolIpv6", "disabled"),
                                 ("instanceMetadataTags", "enabled" if i["metadata_tags"] else "disabled")])]

    # ---- actions ---------------------------------------------------------------------

    def describe_network_interfaces(self, params, principal, record):
        ids = numbered(params, "NetworkInterfaceId")
        filters = self._filters(params, ENI_FILTERS)
        self._gate(params, principal, record, "DescribeNetworkInterfaces")
        view = self.world.view(self._stale())
        items = sorted(view["enis"].values(), key=lambda e: e["id"])
        items = self._select_ids(items, ids, "eni", "The networkInterface ID '{}' does not exist",
                                 "The networkInterface IDs '{}' do not exist")
        items = self._matching(items, filters, ENI_FILTERS, view)
        page, token = self._paginate(params, items, ids, "NetworkInterfaceIds", 5, 1000)
        return [("networkInterfaceSet", [("item", self._eni_xml(e)) for e in page]),
                ("nextToken", token)]

    def describe_volumes(self, params, principal, record):
        ids = numbered(params, "VolumeId")
        filters = self._filters(params, VOLUME_FILTERS)
        self._gate(params, principal, record, "DescribeVolumes")
        view = self.world.view(self._stale())
        items = sorted(view["volumes"].values(), key=lambda o: o["id"])
        items = self._select_ids(items, ids, "vol", "The volume '{}' does not exist.",
                                 "The volumes '{}' do not exist.")
        items = self._matching(items, filters, VOLUME_FILTERS, view)
        # API Reference: 5..500, a larger MaxResults returns 500.
        page, token = self._paginate(params, items, ids, "VolumeIds", 5, 500, clamp=True)
        return [("volumeSet", [("item", self._volume_xml(o)) for o in page]), ("nextToken", token)]

    def describe_instances(self, params, principal, record):
        ids = numbered(params, "InstanceId")
        filters = self._filters(params, INSTANCE_FILTERS)
        self._gate(params, principal, record, "DescribeInstances")
        view = self.world.view(self._stale())
        items = sorted(view["instances"].values(), key=lambda i: i["id"])
        items = self._select_ids(items, ids, "i", "The instance ID '{}' does not exist",
                                 "The instance IDs '{}' do not exist")
        items = self._matching(items, filters, INSTANCE_FILTERS, view)
        page, token = self._paginate(params, items, ids, "instanceIds", 5, 1000)
        reservations = [("item", [
            ("reservationId", i["reservation_id"]), ("ownerId", self.world.account),
            ("groupSet", []), ("instancesSet", [("item", self._instance_xml(i, view))])])
            for i in page]
        return [("reservationSet", reservations), ("nextToken", token)]

    def describe_tags(self, params, principal, record):
        filters = self._filters(params, TAG_FILTERS)
        self._gate(params, principal, record, "DescribeTags")
        view = self.world.view(self._stale())
        tags = []
        for kind, key in (("instance", "instances"), ("network-interface", "enis"),
                          ("volume", "volumes")):
            for item in view[key].values():
                for k, v in item["tags"].items():
                    tags.append({"resource_id": item["id"], "resource_type": kind, "key": k,
                                 "value": v, "tags": {k: v}})
        tags.sort(key=lambda t: (t["resource_id"], t["key"]))
        tags = self._matching(tags, filters, TAG_FILTERS, view)
        page, token = self._paginate(params, tags, [], "", 5, 1000)
        return [("tagSet", [("item", [("resourceId", t["resource_id"]),
                                      ("resourceType", t["resource_type"]),
                                      ("key", t["key"]), ("value", t["value"])]) for t in page]),
                ("nextToken", token)]

    def _arn(self, kind, rid):
        return f"arn:aws:ec2:{self.world.region}:{self.world.account}:{kind}/{rid}"

    def attach_network_interface(self, params, principal, record):
        eni_id = self._required(params, "NetworkInterfaceId")
        iid = self._required(params, "InstanceId")
        device_index = self._int(params, "DeviceIndex", "deviceIndex")
        if device_index is None:
            raise ApiError("MissingParameter", "The request must contain the parameter DeviceIndex")
        card = self._int(params, "NetworkCardIndex", "networkCardIndex", 0)
        check_id("eni", eni_id)
        check_id("i", iid)
        self._gate(params, principal, record, "AttachNetworkInterface",
                   self._arn("network-interface", eni_id))
        att = self.world.attach_eni(eni_id, iid, device_index, card)
        return [("attachmentId", att["id"]), ("networkCardIndex", att["network_card"])]

    def detach_network_interface(self, params, principal, record):
        att_id = self._required(params, "AttachmentId")
        parse_bool(params, "Force", "force")
        check_id("eni-attach", att_id)
        self._gate(params, principal, record, "DetachNetworkInterface")
        self.world.detach_eni(att_id)
        return [("return", True)]

    def attach_volume(self, params, principal, record):
        device = self._required(params, "Device")
        iid = self._required(params, "InstanceId")
        vol_id = self._required(params, "VolumeId")
        check_id("vol", vol_id)
        check_id("i", iid)
        if not _DEVICE_RE.fullmatch(device):
            raise ApiError("InvalidParameterValue",
                           f"Value ({device}) for parameter device is invalid. {device} is not a "
                           "valid EBS device name.")
        self._gate(params, principal, record, "AttachVolume", self._arn("volume", vol_id))
        att = self.world.attach_volume(vol_id, iid, device)
        return self._attachment_answer(att)

    def detach_volume(self, params, principal, record):
        vol_id = self._required(params, "VolumeId")
        iid = params.get("InstanceId")
        parse_bool(params, "Force", "force")
        check_id("vol", vol_id)
        if iid:
            check_id("i", iid)
        self._gate(params, principal, record, "DetachVolume", self._arn("volume", vol_id))
        return self._attachment_answer(self.world.detach_volume(vol_id, iid, params.get("Device")))

    @staticmethod
    def _attachment_answer(att):
        return [("volumeId", att["volume_id"]), ("instanceId", att["instance_id"]),
                ("device", att["device"]), ("status", att["status"]),
                ("attachTime", iso_ms(att["attach_time"]))]

    actions = {
        "DescribeNetworkInterfaces": describe_network_interfaces,
        "DescribeVolumes": describe_volumes,
        "DescribeInstances": describe_instances,
        "DescribeTags": describe_tags,
        "AttachNetworkInterface": attach_network_interface,
        "DetachNetworkInterface": detach_network_interface,
        "AttachVolume": attach_volume,
        "DetachVolume": detach_volume,
    }
