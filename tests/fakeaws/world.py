"""The account the fake pretends to be: instances, ENIs, volumes, stacks, groups, keys.

Everything that changes goes through one lock, which is what makes an attach an atomic
check-and-set: of N clients attaching the same ENI at once, exactly one finds it
`available`; the others get AWS's InUse error, never a second attachment. Transitions that
take time in EC2 (attaching -> attached, shutting-down -> terminated) are scheduled on the
fake clock and run on the scheduler thread; user hooks run there too, without the lock, and
an ENI reads `attached` only once its hook has returned (the harness has plugged the NIC).

Every change is also kept as a timestamped copy, so Describe* can answer with the state of
`describe_stale_s` seconds ago, as EC2's eventually consistent reads do.
"""

import base64
import bisect
import collections
import copy
import ipaddress
import random
import threading
import time
import uuid

from .errors import ApiError

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Keep this much history beyond the largest staleness asked for.
_HISTORY_MARGIN_S = 5.0


def iso_ms(t):
    """EC2's timestamp form, 2025-01-15T12:00:01.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def iso_s(t):
    """IMDS's timestamp form, 2025-01-15T12:00:01Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def private_dns(region, ip):
    """EC2's private DNS name: ip-10-0-1-23.ec2.internal in us-east-1, else
    ip-10-0-1-23.<region>.compute.internal."""
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{ip.replace('.', '-')}.{suffix}"


class World:
    """All resources of the fake account, and the transitions between their states."""

    def __init__(self, fixture, hooks, seed, clock, scheduler):
        self.lock = threading.RLock()
        self.clock = clock
        self.scheduler = scheduler
        self.hooks = hooks
        # Resource ids follow the fixture and launch_instance calls only; keys and tokens,
        # handed out in whatever order clients ask, draw from their own stream.
        self.rng = random.Random(seed)
        self.secret_rng = random.Random(f"{seed}:secrets")
        self.region = fixture["region"]
        self.account = fixture["account"]
        self.vpc = fixture["vpc"]
        self.subnets = fixture["subnets"]
        self.roles = fixture["roles"]
        self.delays = dict(fixture["delays"])
        self.imds = dict(fixture["imds"])
        self.instances = {}
        self.enis = {}
        self.volumes = {}
        self.creds = {}
        self.instance_creds = {}
        self.tokens = {}
        self.stacks = {}
        self.asgs = {}
        self.events = []
        self._events_cond = threading.Condition(self.lock)
        self._history = collections.deque()
        # A describe_stale_s fault larger than the fixture's delay: history kept for it too.
        self.stale_override_s = 0.0
        self.default_sg = self.new_id("sg")
        self._load(fixture)

    # ---- identifiers -------------------------------------------------------------------

    def new_id(self, prefix):
        return f"{prefix}-{self.rng.getrandbits(68):017x}"

    def new_mac(self):
        return "0e:" + ":".join(f"{self.rng.getrandbits(8):02x}" for _ in range(5))

    def new_uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _random_string(self, alphabet, n, rng=None):
        return "".join((rng or self.rng).choice(alphabet) for _ in range(n))

    def _ip(self, subnet_id, wanted):
        """`wanted` if it is free and in the subnet, else the lowest free address."""
        used = {i["private_ip"] for i in self.instances.values()}
        used |= {e["private_ip"] for e in self.enis.values()}
        net = ipaddress.ip_network(self.subnets[subnet_id]["cidr"])
        if wanted is not None:
            if ipaddress.ip_address(wanted) not in net or wanted in used:
                raise ValueError(f"{wanted} is not a free address of {subnet_id} ({net})")
            return wanted
        # AWS reserves the first four addresses of a subnet and the last one.
        for offset in range(4, net.num_addresses - 1):
            ip = str(net.network_address + offset)
            if ip not in used:
                return ip
        raise ApiError("InsufficientFreeAddressesInSubnet",
                       f"There are not enough free addresses in subnet '{subnet_id}' to satisfy "
                       "the requested number of instances.")

    # ---- loading -----------------------------------------------------------------------

    def _load(self, f):
        now = self.clock.now()
        for c in f["credentials"]:
            expiration = now + c["expires_in_s"] if c["expires_in_s"] is not None else None
            self._add_cred(c["access_key_id"], c["secret_access_key"], c["session_token"],
                           expiration, c["role"], c["instance_id"], c["session_name"], now)
        for inst in f["instances"]:
            self._create_instance(inst, inst["state"], now)
        for e in f["network_interfaces"]:
            eni = self._create_eni(e["id"], e["subnet"], e["private_ip"], e["mac"],
                                   e["description"], e["tags"])
            if e["attachment"]:
                a = e["attachment"]
                inst = self.instances[a["instance"]]
                if inst["az"] != eni["az"]:
                    raise ValueError(f"fixture: ENI {eni['id']} and instance {inst['id']} are in "
                                     "different AZs")
                eni["status"] = "in-use"
                eni["attachment"] = self._eni_attachment(inst["id"], a["device_index"],
                                                         a["network_card"], "attached", now)
                eni["attachment"]["attached_at"] = now - self.imds["mac_lag_s"]
        for v in f["volumes"]:
            vol = {"id": v["id"], "az": v["az"], "size": v["size"], "type": v["type"],
                   "iops": v["iops"], "throughput": v["throughput"], "encrypted": v["encrypted"],
                   "tags": v["tags"], "status": v["state"], "create_time": now,
                   "snapshot_id": "", "attachment": None, "root": False}
            if v["type"] == "gp3":
                vol["iops"] = vol["iops"] or 3000
                vol["throughput"] = vol["throughput"] or 125
            self.volumes[vol["id"]] = vol
            if v["attachment"]:
                inst = self.instances[v["attachment"]["instance"]]
                if inst["az"] != vol["az"]:
                    raise ValueError(f"fixture: volume {vol['id']} and instance {inst['id']} are "
                                     "in different AZs")
                vol["status"] = "in-use"
                vol["attachment"] = {"instance_id": inst["id"], "device": v["attachment"]["device"],
                                     "status": "attached", "attach_time": now,
                                     "delete_on_termination": False, "hooked": True}
            if v["state"] == "creating" and v["available_after_s"] is not None:
                self.scheduler.call_later(v["available_after_s"], self._volume_created, vol["id"])
        for s in f["stacks"]:
            self.stacks[s["name"]] = {
                "name": s["name"], "id": s["id"], "settled_status": s["status"],
                "failed": False,
                "resources": {lid: dict(r, successes=[], failed=False)
                              for lid, r in s["resources"].items()}}
        for g in f["autoscaling_groups"]:
            asg = {"name": g["name"], "lifecycle_hooks": g["lifecycle_hooks"], "tags": g["tags"],
                   "grace_s": g["health_check_grace_period_s"],
                   "terminate_unhealthy": g["terminate_unhealthy"], "members": {}}
            self.asgs[g["name"]] = asg
            for m in g["instances"]:
                self._join_asg(asg, m["id"], m["lifecycle_state"], now)
        self._commit()

    def _add_cred(self, ak, secret, token, expiration, role, instance_id, session, now):
        self.creds[ak] = {
            "access_key_id": ak, "secret_access_key": secret, "session_token": token,
            "expiration": expiration, "role": role, "instance_id": instance_id, "issued": now,
            "principal_arn": f"arn:aws:sts::{self.account}:assumed-role/{role}/{session}"}
        return self.creds[ak]

    def _create_eni(self, eni_id, subnet_id, private_ip, mac, description, tags, primary=False):
        subnet = self.subnets[subnet_id]
        eni = {"id": eni_id, "subnet_id": subnet_id, "vpc_id": self.vpc["id"], "az": subnet["az"],
               "private_ip": self._ip(subnet_id, private_ip), "mac": mac or self.new_mac(),
               "description": description, "tags": dict(tags), "status": "available",
               "attachment": None, "primary": primary}
        self.enis[eni_id] = eni
        return eni

    def _eni_attachment(self, instance_id, device_index, card, status, now, primary=False):
        return {"id": self.new_id("eni-attach"), "instance_id": instance_id,
                "device_index": device_index, "network_card": card, "status": status,
                "attach_time": now, "delete_on_termination": primary, "hooked": True,
                "attached_at": now}

    def _create_instance(self, spec, state, now):
        """Add an instance with its primary ENI, root volume and role credentials."""
        subnet = self.subnets[spec["subnet"]]
        iid = spec["id"]
        if iid in self.instances:
            raise ValueError(f"instance {iid} already exists")
        inst = {"id": iid, "az": subnet["az"], "az_id": subnet["az_id"], "subnet": subnet["id"],
                "vpc_id": self.vpc["id"], "state": state, "launch_time": now,
                "role": spec["role"], "instance_type": spec["instance_type"],
                "image_id": spec["image_id"], "tags": dict(spec["tags"]),
                "metadata_tags": spec["metadata_tags"], "network_cards": spec["network_cards"],
                "max_enis": spec["max_enis"], "hop_limit": spec["hop_limit"],
                "reservation_id": self.new_id("r"), "root_device": "/dev/xvda",
                "state_reason": None, "transition_reason": "", "asg": None,
                "instance_profile_id": "AIPA" + self._random_string(_B32, 17)}
        eni = self._create_eni(spec["primary_eni"] or self.new_id("eni"), subnet["id"],
                               spec["private_ip"], spec["mac"], "", {}, primary=True)
        self.instances[iid] = inst
        inst["primary_eni"] = eni["id"]
        inst["private_ip"] = eni["private_ip"]
        inst["mac"] = eni["mac"]
        if state != "terminated":
            eni["status"] = "in-use"
            eni["attachment"] = self._eni_attachment(iid, 0, 0, "attached", now, primary=True)
            root_id = spec["root_volume"] or self.new_id("vol")
            self.volumes[root_id] = {
                "id": root_id, "az": inst["az"], "size": 8, "type": "gp3", "iops": 3000,
                "throughput": 125, "encrypted": False, "tags": {}, "status": "in-use",
                "create_time": now, "snapshot_id": self.new_id("snap"),
                "root": True,
                "attachment": {"instance_id": iid, "device": inst["root_device"],
                               "status": "attached", "attach_time": now,
                               "delete_on_termination": True, "hooked": True}}
            inst["root_volume"] = root_id
        else:
            self.enis.pop(eni["id"])
            inst["root_volume"] = None
            inst["state_reason"] = {"code": "Client.UserInitiatedShutdown",
                                    "message": "Client.UserInitiatedShutdown: User initiated shutdown"}
        if spec["role"]:
            self._issue_instance_cred(inst, now)
        return inst

    # ---- history (eventual consistency) ------------------------------------------------

    def _commit(self):
        """Remember the current state; call with the lock held after every change."""
        now = self.clock.now()
        snap = copy.deepcopy({"instances": self.instances, "enis": self.enis,
                              "volumes": self.volumes})
        self._history.append((now, snap))
        keep = max(self.delays["describe_stale_s"], self.stale_override_s) + _HISTORY_MARGIN_S
        while len(self._history) >= 2 and self._history[1][0] <= now - keep:
            self._history.popleft()

    def view(self, stale_s):
        """Instances, ENIs and volumes as Describe* sees them: as of `stale_s` ago."""
        with self.lock:
            if stale_s <= 0:
                return copy.deepcopy({"instances": self.instances, "enis": self.enis,
                                      "volumes": self.volumes})
            target = self.clock.now() - stale_s
            times = [t for t, _ in self._history]
            i = bisect.bisect_right(times, target) - 1
            return copy.deepcopy(self._history[max(i, 0)][1])

    # ---- hooks and events --------------------------------------------------------------

    def _event(self, kind, **fields):
        with self._events_cond:
            self.events.append(dict(fields, seq=len(self.events) + 1, time=self.clock.now(),
                                    event=kind))
            self._events_cond.notify_all()

    def events_since(self, seq, wait_s=0.0):
        """Events after `seq`, waiting up to `wait_s` for one to happen (long poll)."""
        deadline = time.monotonic() + wait_s
        with self._events_cond:
            while len(self.events) <= seq:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._events_cond.wait(remaining)
            return copy.deepcopy(self.events[seq:])

    def _eni_payload(self, eni, att):
        return {"id": eni["id"], "mac": eni["mac"], "private_ip": eni["private_ip"],
                "subnet_id": eni["subnet_id"], "subnet_cidr": self.subnets[eni["subnet_id"]]["cidr"],
                "device_index": att["device_index"], "network_card": att["network_card"],
                "az": eni["az"], "tags": dict(eni["tags"])}

    def _volume_payload(self, vol):
        return {"id": vol["id"], "az": vol["az"], "size": vol["size"], "type": vol["type"],
                "tags": dict(vol["tags"])}

    def _set_instance_state(self, inst, state):
        inst["state"] = state
        self._commit()

    def _announce_state(self, iid, state):
        self.hooks.instance_state_changed(iid, state)
        self._event("instance_state_changed", instance_id=iid, state=state)

    # ---- lookups that raise EC2's errors -----------------------------------------------

    def instance(self, iid):
        inst = self.instances.get(iid)
        if inst is None:
            raise ApiError("InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
        return inst

    def eni(self, eni_id):
        eni = self.enis.get(eni_id)
        if eni is None:
            raise ApiError("InvalidNetworkInterfaceID.NotFound",
                           f"The networkInterface ID '{eni_id}' does not exist")
        return eni

    def volume(self, vol_id):
        vol = self.volumes.get(vol_id)
        if vol is None:
            raise ApiError("InvalidVolume.NotFound", f"The volume '{vol_id}' does not exist.")
        return vol

    @staticmethod
    def _check_attachable_instance(inst):
        # UG: ENIs attach hot (running) or warm (stopped); volumes need running or stopped.
        if inst["state"] not in ("running", "stopped"):
            raise ApiError("IncorrectInstanceState",
                           f"The instance '{inst['id']}' is not in a valid state for this operation.")

    # ---- ENI attach and detach ----------------------------------------------------------

    def attach_eni(self, eni_id, iid, device_index, card):
        """AttachNetworkInterface: the check-and-set, under the one lock."""
        with self.lock:
            eni = self.eni(eni_id)
            inst = self.instance(iid)
            self._check_attachable_instance(inst)
            if eni["status"] != "available" or eni["attachment"] is not None:
                raise ApiError("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")
            if eni["az"] != inst["az"]:
                raise ApiError("InvalidParameterCombination",
                               "You may not attach a network interface to an instance if they "
                               "are not in the same availability zone")
            if not 0 <= card < inst["network_cards"]:
                raise ApiError("InvalidParameterValue",
                               f"Invalid value '{card}' for networkCardIndex.")
            on_instance = [e["attachment"] for e in self.enis.values()
                           if e["attachment"] and e["attachment"]["instance_id"] == iid]
            if any(a["device_index"] == device_index and a["network_card"] == card
                   for a in on_instance):
                raise ApiError("InvalidParameterValue",
                               f"Instance '{iid}' already has an interface attached at device "
                               f"index '{device_index}'.")
            if len(on_instance) >= inst["max_enis"]:
                raise ApiError("AttachmentLimitExceeded",
                               f"Interface count {len(on_instance) + 1} exceeds the limit for "
                               f"{inst['instance_type']}")
            att = self._eni_attachment(iid, device_index, card, "attaching", self.clock.now())
            att["hooked"] = False
            att["attached_at"] = None
            eni["status"] = "in-use"
            eni["attachment"] = att
            self._commit()
            self.scheduler.call_later(self.delays["eni_attach_s"], self._finish_eni_attach,
                                      eni_id, att["id"])
            return dict(att)

    def _finish_eni_attach(self, eni_id, att_id):
        with self.lock:
            eni = self.enis.get(eni_id)
            att = eni and eni["attachment"]
            if not att or att["id"] != att_id or att["status"] != "attaching":
                return
            iid, payload = att["instance_id"], self._eni_payload(eni, att)
        self.hooks.eni_attached(iid, payload)
        with self.lock:
            att["hooked"] = True
            if eni["attachment"] is att and att["status"] == "attaching":
                att["status"] = "attached"
                att["attached_at"] = self.clock.now()
                self._commit()
        self._event("eni_attached", instance_id=iid, eni=payload)

    def detach_eni(self, att_id):
        """DetachNetworkInterface by attachment id."""
        with self.lock:
            for eni in self.enis.values():
                att = eni["attachment"]
                if att and att["id"] == att_id:
                    break
            else:
                raise ApiError("InvalidAttachmentID.NotFound",
                               f"The attachment ID '{att_id}' does not exist")
            if att["device_index"] == 0 and att["network_card"] == 0:
                raise ApiError("OperationNotPermitted",
                               "The network interface at device index 0 and networkCard index 0 "
                               "cannot be detached.")
            if att["status"] == "detaching":
                raise ApiError("IncorrectState",
                               f"The attachment '{att_id}' is not in a valid state for this "
                               "operation.")
            self._begin_eni_detach(eni)

    def _begin_eni_detach(self, eni):
        att = eni["attachment"]
        att["status"] = "detaching"
        self._commit()
        self.scheduler.call_later(self.delays["eni_detach_s"], self._finish_eni_detach,
                                  eni["id"], att["id"])

    def _finish_eni_detach(self, eni_id, att_id):
        with self.lock:
            eni = self.enis.get(eni_id)
            att = eni and eni["attachment"]
            if not att or att["id"] != att_id:
                return
            iid, payload, hooked = att["instance_id"], self._eni_payload(eni, att), att["hooked"]
        if hooked:
            self.hooks.eni_detached(iid, payload)
        with self.lock:
            eni["attachment"] = None
            eni["status"] = "available"
            self._commit()
        if hooked:
            self._event("eni_detached", instance_id=iid, eni=payload)

    # ---- volume attach and detach -------------------------------------------------------

    def attach_volume(self, vol_id, iid, device):
        """AttachVolume: the check-and-set, under the one lock."""
        with self.lock:
            vol = self.volume(vol_id)
            inst = self.instance(iid)
            self._check_attachable_instance(inst)
            if vol["attachment"] is not None:
                raise ApiError("VolumeInUse", f"{vol_id} is already attached to an instance")
            if vol["status"] != "available":
                raise ApiError("IncorrectState",
                               f"Volume '{vol_id}' is in the '{vol['status']}' state.")
            if vol["az"] != inst["az"]:
                raise ApiError("InvalidVolume.ZoneMismatch",
                               f"The volume '{vol_id}' is not in the same availability zone as "
                               f"instance '{iid}'")
            if any(v["attachment"] and v["attachment"]["instance_id"] == iid
                   and v["attachment"]["device"] == device for v in self.volumes.values()):
                raise ApiError("InvalidDevice.InUse",
                               f"Invalid value '{device}' for unixDevice. Attachment point "
                               f"{device} is already in use")
            now = self.clock.now()
            vol["status"] = "in-use"
            vol["attachment"] = {"instance_id": iid, "device": device, "status": "attaching",
                                 "attach_time": now, "delete_on_termination": False,
                                 "hooked": False}
            self._commit()
            self.scheduler.call_later(self.delays["volume_attach_s"], self._finish_volume_attach,
                                      vol_id, iid, now)
            return dict(vol["attachment"], volume_id=vol_id)

    def _finish_volume_attach(self, vol_id, iid, attach_time):
        with self.lock:
            vol = self.volumes.get(vol_id)
            att = vol and vol["attachment"]
            if (not att or att["instance_id"] != iid or att["attach_time"] != attach_time
                    or att["status"] != "attaching"):
                return
            payload, device = self._volume_payload(vol), att["device"]
        self.hooks.volume_attached(iid, payload, device)
        with self.lock:
            att["hooked"] = True
            if vol["attachment"] is att and att["status"] == "attaching":
                att["status"] = "attached"
                self._commit()
        self._event("volume_attached", instance_id=iid, volume=payload, device=device)

    def detach_volume(self, vol_id, iid=None, device=None):
        """DetachVolume; InstanceId and Device, when given, must match the attachment."""
        with self.lock:
            vol = self.volume(vol_id)
            att = vol["attachment"]
            if att is None:
                raise ApiError("IncorrectState",
                               f"Volume '{vol_id}' is in the '{vol['status']}' state.")
            if (iid and att["instance_id"] != iid) or (device and att["device"] != device):
                raise ApiError("InvalidAttachment.NotFound",
                               f"Volume '{vol_id}' can not be detached from '{iid}' because it "
                               "is not attached to it")
            if vol["root"] and self.instances[att["instance_id"]]["state"] == "running":
                raise ApiError("OperationNotPermitted",
                               f"Unable to detach root volume '{vol_id}' from instance "
                               f"'{att['instance_id']}'")
            if att["status"] == "detaching":
                raise ApiError("IncorrectState",
                               f"Volume '{vol_id}' is in the 'detaching' state.")
            self._begin_volume_detach(vol)
            return dict(att, volume_id=vol_id)

    def _begin_volume_detach(self, vol):
        att = vol["attachment"]
        att["status"] = "detaching"
        self._commit()
        self.scheduler.call_later(self.delays["volume_detach_s"], self._finish_volume_detach,
                                  vol["id"], att["instance_id"], att["attach_time"])

    def _finish_volume_detach(self, vol_id, iid, attach_time):
        with self.lock:
            vol = self.volumes.get(vol_id)
            att = vol and vol["attachment"]
            if not att or att["instance_id"] != iid or att["attach_time"] != attach_time:
                return
            payload, hooked = self._volume_payload(vol), att["hooked"]
        if hooked:
            self.hooks.volume_detached(iid, payload)
        with self.lock:
            vol["attachment"] = None
            vol["status"] = "available"
            self._commit()
        if hooked:
            self._event("volume_detached", instance_id=iid, volume=payload)

    def _volume_created(self, vol_id):
        with self.lock:
            vol = self.volumes.get(vol_id)
            if vol and vol["status"] == "creating":
                vol["status"] = "available"
                self._commit()

    # ---- instance lifecycle ---------------------------------------------------------------

    def launch_instance(self, *, id=None, subnet=None, az=None, private_ip=None, mac=None,
                        role=None, tags=None, asg=None, instance_type="m5.large",
                        image_id="ami-0c02fb55956c7d316", metadata_tags=False, network_cards=1,
                        max_enis=3, hop_limit=2, primary_eni=None, root_volume=None):
        """Start a new instance, as an Auto Scaling group (or the harness) would."""
        with self.lock:
            if subnet is None:
                candidates = [s for s in self.subnets.values() if az is None or s["az"] == az]
                if not candidates:
                    raise ValueError(f"no subnet in AZ {az}")
                subnet = candidates[0]["id"]
            elif subnet not in self.subnets:
                raise ValueError(f"unknown subnet {subnet}")
            if role is not None and role not in self.roles:
                raise ValueError(f"unknown role {role}")
            group = None
            if asg is not None:
                group = self.asgs.get(asg)
                if group is None:
                    raise ValueError(f"unknown auto scaling group {asg}")
                tags = dict(group["tags"], **(tags or {}))
                tags["aws:autoscaling:groupName"] = asg
            spec = {"id": id or self.new_id("i"), "subnet": subnet, "private_ip": private_ip,
                    "mac": mac, "role": role, "tags": tags or {}, "instance_type": instance_type,
                    "image_id": image_id, "metadata_tags": metadata_tags,
                    "network_cards": network_cards, "max_enis": max_enis,
                    "hop_limit": hop_limit, "primary_eni": primary_eni, "root_volume": root_volume}
            now = self.clock.now()
            pending = self.delays["pending_s"] > 0
            inst = self._create_instance(spec, "pending" if pending else "running", now)
            if group is not None:
                self._join_asg(group, inst["id"], None, now)
            self._commit()
            if pending:
                self.scheduler.call_later(self.delays["pending_s"], self._finish_start, inst["id"])
            result = copy.deepcopy(inst)
        self._announce_state(inst["id"], "pending")
        if not pending:
            self._announce_state(inst["id"], "running")
        return result

    def _finish_start(self, iid):
        with self.lock:
            inst = self.instances.get(iid)
            if not inst or inst["state"] != "pending":
                return
            self._set_instance_state(inst, "running")
        self._announce_state(iid, "running")

    def terminate_instance(self, iid):
        with self.lock:
            inst = self.instance(iid)
            if inst["state"] in ("shutting-down", "terminated"):
                return
            inst["transition_reason"] = f"User initiated ({time.strftime('%Y-%m-%d %H:%M:%S GMT', time.gmtime(self.clock.now()))})"
            inst["state_reason"] = {"code": "Client.UserInitiatedShutdown",
                                    "message": "Client.UserInitiatedShutdown: User initiated shutdown"}
            if inst["asg"]:
                member = self.asgs[inst["asg"]]["members"].get(iid)
                if member:
                    member["lifecycle_state"] = "Terminating"
            self._set_instance_state(inst, "shutting-down")
            self.scheduler.call_later(self.delays["shutting_down_s"], self._finish_terminate, iid)
        self._announce_state(iid, "shutting-down")

    def _finish_terminate(self, iid):
        with self.lock:
            inst = self.instances.get(iid)
            if not inst or inst["state"] != "shutting-down":
                return
            inst["state"] = "terminated"
            for eni in list(self.enis.values()):
                att = eni["attachment"]
                if not att or att["instance_id"] != iid:
                    continue
                if att["delete_on_termination"]:
                    del self.enis[eni["id"]]
                elif att["status"] != "detaching":
                    self._begin_eni_detach(eni)
            for vol in list(self.volumes.values()):
                att = vol["attachment"]
                if not att or att["instance_id"] != iid:
                    continue
                if att["delete_on_termination"]:
                    del self.volumes[vol["id"]]
                elif att["status"] != "detaching":
                    self._begin_volume_detach(vol)
            inst["root_volume"] = None
            if inst["asg"]:
                self.asgs[inst["asg"]]["members"].pop(iid, None)
            self._commit()
        self._announce_state(iid, "terminated")

    def stop_instance(self, iid):
        with self.lock:
            inst = self.instance(iid)
            if inst["state"] != "running":
                raise ApiError("IncorrectInstanceState",
                               f"The instance '{iid}' is not in a state from which it can be stopped.")
            inst["state_reason"] = {"code": "Client.UserInitiatedShutdown",
                                    "message": "Client.UserInitiatedShutdown: User initiated shutdown"}
            self._set_instance_state(inst, "stopping")
            self.scheduler.call_later(self.delays["stopping_s"], self._finish_stop, iid)
        self._announce_state(iid, "stopping")

    def _finish_stop(self, iid):
        with self.lock:
            inst = self.instances.get(iid)
            if not inst or inst["state"] != "stopping":
                return
            self._set_instance_state(inst, "stopped")
        self._announce_state(iid, "stopped")

    def start_instance(self, iid):
        with self.lock:
            inst = self.instance(iid)
            if inst["state"] != "stopped":
                raise ApiError("IncorrectInstanceState",
                               f"The instance '{iid}' is not in a state from which it can be started.")
            inst["state_reason"] = None
            self._set_instance_state(inst, "pending")
            self.scheduler.call_later(self.delays["pending_s"], self._finish_start, iid)
        self._announce_state(iid, "pending")

    def forget_instance(self, iid):
        """Drop a terminated instance: DescribeInstances then says InvalidInstanceID.NotFound."""
        with self.lock:
            inst = self.instance(iid)
            if inst["state"] != "terminated":
                raise ValueError(f"{iid} is {inst['state']}; only terminated instances are forgotten")
            del self.instances[iid]
            self._commit()

    # ---- credentials and IMDS tokens ------------------------------------------------------

    def _issue_instance_cred(self, inst, now):
        lifetime = self.imds["credential_lifetime_s"]
        r = self.secret_rng
        cred = self._add_cred("ASIA" + self._random_string(_B32, 16, r),
                              self._random_string(_B64, 40, r),
                              "IQoJb3JpZ2luX2VjE" + self._random_string(_B64, 300, r) + "==",
                              now + lifetime, inst["role"], inst["id"], inst["id"], now)
        self.instance_creds[inst["id"]] = cred["access_key_id"]
        return cred

    def instance_credentials(self, iid):
        """The role credentials IMDS serves now, rotating them shortly before expiry.

        Old keys stay valid until their own Expiration, as STS session keys do.
        """
        with self.lock:
            inst = self.instance(iid)
            if iid not in self.instance_creds:
                raise ApiError("InvalidInstanceID.NotFound", f"The instance '{iid}' has no role")
            now = self.clock.now()
            cred = self.creds[self.instance_creds[iid]]
            rotate_before = min(self.imds["credential_rotate_before_s"],
                                self.imds["credential_lifetime_s"] / 2)
            if now >= cred["expiration"] - rotate_before:
                cred = self._issue_instance_cred(inst, now)
            return dict(cred)

    def lookup_key(self, access_key_id):
        with self.lock:
            cred = self.creds.get(access_key_id)
            return dict(cred) if cred else None

    def new_token(self, iid, ttl):
        with self.lock:
            token = base64.b64encode(self.secret_rng.getrandbits(320).to_bytes(40, "big")).decode()
            self.tokens[token] = {"instance_id": iid, "expires": self.clock.now() + ttl}
        return token

    def token_valid(self, token, iid):
        with self.lock:
            t = self.tokens.get(token)
            return bool(t) and t["instance_id"] == iid and self.clock.now() < t["expires"]

    # ---- CloudFormation -----------------------------------------------------------------

    def stack_status(self, stack):
        settled = stack["settled_status"]
        if stack["failed"]:
            return "UPDATE_ROLLBACK_IN_PROGRESS" if settled.startswith("UPDATE") else "ROLLBACK_IN_PROGRESS"
        if any(r["waiting"] for r in stack["resources"].values()):
            return "UPDATE_IN_PROGRESS" if settled.startswith("UPDATE") else "CREATE_IN_PROGRESS"
        return settled

    def find_stack(self, name_or_arn):
        with self.lock:
            for s in self.stacks.values():
                if name_or_arn in (s["name"], s["id"]):
                    return s
            return None

    def set_stack_waiting(self, stack_name, logical_id, waiting):
        with self.lock:
            stack = self.find_stack(stack_name)
            if stack is None or logical_id not in stack["resources"]:
                raise ValueError(f"unknown stack resource {stack_name}/{logical_id}")
            res = stack["resources"][logical_id]
            res["waiting"] = bool(waiting)
            if waiting:
                res["successes"] = []
                res["failed"] = False
                stack["failed"] = False

    def signal(self, stack, logical_id, unique_id, status):
        """Count a signal; raises ValidationError when the resource is not waiting."""
        with self.lock:
            res = stack["resources"].get(logical_id)
            stack_status = self.stack_status(stack)
            if res is None:
                raise ApiError("ValidationError",
                               f"Resource {logical_id} does not exist for stack {stack['name']}")
            if not res["waiting"]:
                # Seen from AWS for every instance signalling after the stack settled
                # (aws-cloudformation-templates #34); other states: same sentence, assumed.
                raise ApiError("ValidationError",
                               f"Stack {stack['id']} is in {stack_status} state and cannot be signaled")
            if status == "FAILURE":
                res["waiting"] = False
                res["failed"] = True
                stack["failed"] = True
            elif unique_id not in res["successes"]:
                res["successes"].append(unique_id)
                if res["count"] is not None and len(res["successes"]) >= res["count"]:
                    res["waiting"] = False

    # ---- Auto Scaling ---------------------------------------------------------------------

    def _join_asg(self, asg, iid, lifecycle_state, now):
        inst = self.instances[iid]
        inst["asg"] = asg["name"]
        launching = [h for h in asg["lifecycle_hooks"]
                     if h["transition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"]
        if lifecycle_state is None:
            lifecycle_state = "Pending:Wait" if launching else "InService"
        member = {"lifecycle_state": lifecycle_state, "health": "HEALTHY", "launched_at": now,
                  "actions": {}}
        if lifecycle_state == "Pending:Wait":
            for h in launching:
                member["actions"][h["name"]] = self.new_uuid()
                self.scheduler.call_later(h["heartbeat_timeout_s"], self._lifecycle_timeout,
                                          asg["name"], iid, h["name"], member["actions"][h["name"]])
        asg["members"][iid] = member

    def asg_member(self, iid):
        """(group, member) for an instance in a group, or (None, None)."""
        with self.lock:
            for asg in self.asgs.values():
                if iid in asg["members"]:
                    return asg, asg["members"][iid]
            return None, None

    def lifecycle_token(self, group, iid, hook):
        """The LifecycleActionToken AWS would have put in the launch notification."""
        with self.lock:
            return self.asgs[group]["members"][iid]["actions"].get(hook)

    def complete_lifecycle_action(self, asg, hook_name, iid, token, result):
        with self.lock:
            member_id = None
            for candidate, member in asg["members"].items():
                if hook_name in member["actions"] and (
                        (iid and candidate == iid) or (token and member["actions"][hook_name] == token)):
                    member_id = candidate
                    break
            if member_id is None:
                what = f"instance ID {iid}" if iid else f"token {token}"
                raise ApiError("ValidationError", f"No active Lifecycle Action found with {what}")
            self._end_lifecycle_action(asg, member_id, hook_name, result)

    def _end_lifecycle_action(self, asg, iid, hook_name, result):
        member = asg["members"][iid]
        del member["actions"][hook_name]
        if result == "ABANDON":
            member["lifecycle_state"] = "Terminating"
            self.scheduler.call_later(0, self._terminate_quietly, iid)
        elif not member["actions"]:
            member["lifecycle_state"] = "InService"

    def _terminate_quietly(self, iid):
        """Terminate for Auto Scaling (ABANDON, unhealthy); a forgotten instance is gone."""
        if iid in self.instances:
            self.terminate_instance(iid)

    def _lifecycle_timeout(self, group, iid, hook_name, token):
        with self.lock:
            asg = self.asgs.get(group)
            member = asg and asg["members"].get(iid)
            if not member or member["actions"].get(hook_name) != token:
                return
            default = next(h["default_result"] for h in asg["lifecycle_hooks"]
                           if h["name"] == hook_name)
            self._end_lifecycle_action(asg, iid, hook_name, default)

    def set_instance_health(self, asg, iid, health, respect_grace):
        with self.lock:
            member = asg["members"][iid]
            in_grace = self.clock.now() - member["launched_at"] < asg["grace_s"]
            if respect_grace and in_grace:
                return "ignored: within the health check grace period"
            member["health"] = health.upper()
            if member["health"] == "UNHEALTHY" and asg["terminate_unhealthy"]:
                member["lifecycle_state"] = "Terminating"
                self.scheduler.call_later(0, self._terminate_quietly, iid)
                return "unhealthy: terminating"
            return "recorded"

    # ---- snapshot for tests -------------------------------------------------------------

    def state(self):
        """Every resource, JSON-able, for assertions and for GET /_fake/state."""
        with self.lock:
            stacks = {}
            for name, s in self.stacks.items():
                stacks[name] = {"id": s["id"], "status": self.stack_status(s),
                                "resources": copy.deepcopy(s["resources"])}
            return copy.deepcopy({
                "clock": {"now": self.clock.now(), "offset": self.clock.offset},
                "instances": self.instances, "network_interfaces": self.enis,
                "volumes": self.volumes, "stacks": stacks,
                "autoscaling_groups": {n: {"members": g["members"],
                                           "lifecycle_hooks": g["lifecycle_hooks"]}
                                       for n, g in self.asgs.items()},
                "credentials": {ak: {"instance_id": c["instance_id"], "role": c["role"],
                                     "expiration": c["expiration"]}
                                for ak, c in self.creds.items()},
                "delays": self.delays, "imds": self.imds})
