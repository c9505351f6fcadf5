"""Read a fixture (the account the fake pretends to be) and fill in its defaults.

A fixture is plain JSON so shell tests and the simulated cluster can share one file
(README.md documents every key; fixtures/three-brokers.json is the full example). This
module checks references between objects (an ENI's subnet exists, an instance's role is
defined) and raises ValueError naming the offending path, so a typo fails at load time
rather than as a puzzling AccessDenied in the middle of a run. Identifiers, MACs and
addresses the fixture leaves out are generated later by the world, from the seed.
"""

import copy
import ipaddress
import re

DELAYS = {
    "eni_attach_s": 0.0,       # AttachNetworkInterface: attaching -> attached
    "eni_detach_s": 0.0,       # detaching -> available
    "volume_attach_s": 0.0,    # AttachVolume: attaching -> attached
    "volume_detach_s": 0.0,    # detaching -> available
    "pending_s": 0.0,          # launch/start: pending -> running
    "shutting_down_s": 0.0,    # terminate: shutting-down -> terminated
    "stopping_s": 0.0,         # stop: stopping -> stopped
    "describe_stale_s": 0.0,   # Describe* answers with the state of this many seconds ago
}

IMDS = {
    "token_max_ttl_s": 21600,           # AWS's bound on X-aws-ec2-metadata-token-ttl-seconds
    "credential_lifetime_s": 21600,     # role credentials' lifetime
    "credential_rotate_before_s": 300,  # new credentials appear this long before expiry (UG: >= 5 min)
    "mac_lag_s": 0.0,                   # after a hot attach, per-MAC keys lag this long
}

INSTANCE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
VOLUME_TYPES = ("standard", "io1", "io2", "gp2", "sc1", "st1", "gp3")


def _fail(path, message):
    raise ValueError(f"fixture {path}: {message}")


def _need(obj, key, path):
    if key not in obj:
        _fail(path, f"missing '{key}'")
    return obj[key]


def _id(obj, prefix, path):
    """An EC2 id of the 8- or 17-hex-digit form; the fake refuses others as Malformed."""
    value = _need(obj, "id", path)
    if not re.fullmatch(rf"{prefix}-[0-9a-f]{{8}}(?:[0-9a-f]{{9}})?", value):
        _fail(path + ".id", f"'{value}' is not a {prefix}- id (8 or 17 lowercase hex digits)")
    return value


def _tags(value, path):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        _fail(path, "tags must be an object of string to string")
    return dict(value)


def _merge(defaults, given, path):
    given = given or {}
    unknown = set(given) - set(defaults)
    if unknown:
        _fail(path, f"unknown keys {sorted(unknown)}")
    merged = dict(defaults)
    merged.update({k: float(v) if isinstance(defaults[k], float) else v for k, v in given.items()})
    return merged


def normalize(fixture):
    """Return a checked deep copy of `fixture` with every default filled in."""
    f = copy.deepcopy(fixture)
    out = {
        "region": _need(f, "region", "$"),
        "account": str(_need(f, "account", "$")),
        "delays": _merge(DELAYS, f.get("delays"), "$.delays"),
        "imds": _merge(IMDS, f.get("imds"), "$.imds"),
    }
    vpc = _need(f, "vpc", "$")
    out["vpc"] = {"id": _id(vpc, "vpc", "$.vpc"),
                  "cidr": str(ipaddress.ip_network(_need(vpc, "cidr", "$.vpc")))}

    subnets = {}
    for i, s in enumerate(_need(f, "subnets", "$")):
        path = f"$.subnets[{i}]"
        sid = _id(s, "subnet", path)
        cidr = ipaddress.ip_network(_need(s, "cidr", path))
        if not cidr.subnet_of(ipaddress.ip_network(out["vpc"]["cidr"])):
            _fail(path, f"{cidr} is not inside the VPC's {out['vpc']['cidr']}")
        subnets[sid] = {"id": sid, "az": _need(s, "az", path), "az_id": _need(s, "az_id", path),
                        "cidr": str(cidr)}
    out["subnets"] = subnets

    roles = f.get("roles", {})
    for name, actions in roles.items():
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            _fail(f"$.roles.{name}", "a role is a list of IAM action patterns")
    out["roles"] = roles

    def role_ref(value, path):
        if value is not None and value not in roles:
            _fail(path, f"role '{value}' is not defined in $.roles")
        return value

    out["credentials"] = []
    for i, c in enumerate(f.get("credentials", [])):
        path = f"$.credentials[{i}]"
        out["credentials"].append({
            "access_key_id": _need(c, "access_key_id", path),
            "secret_access_key": _need(c, "secret_access_key", path),
            "session_token": c.get("session_token"),
            "role": role_ref(_need(c, "role", path), path + ".role"),
            "expires_in_s": c.get("expires_in_s"),
            "session_name": c.get("session_name", "fakeaws-host"),
            "instance_id": c.get("instance_id"),
        })

    def subnet_ref(value, path):
        if value not in subnets:
            _fail(path, f"subnet '{value}' is not defined in $.subnets")
        return value

    out["instances"] = []
    for i, inst in enumerate(f.get("instances", [])):
        path = f"$.instances[{i}]"
        state = inst.get("state", "running")
        if state not in INSTANCE_STATES:
            _fail(path + ".state", f"'{state}' is not one of {INSTANCE_STATES}")
        out["instances"].append({
            "id": _id(inst, "i", path),
            "subnet": subnet_ref(_need(inst, "subnet", path), path + ".subnet"),
            "private_ip": inst.get("private_ip"),
            "mac": inst.get("mac"),
            "primary_eni": inst.get("primary_eni"),
            "state": state,
            "role": role_ref(inst.get("role"), path + ".role"),
            "instance_type": inst.get("instance_type", "m5.large"),
            "image_id": inst.get("image_id", "ami-0c02fb55956c7d316"),
            "tags": _tags(inst.get("tags"), path + ".tags"),
            "metadata_tags": bool(inst.get("metadata_tags", False)),
            "network_cards": int(inst.get("network_cards", 1)),
            "max_enis": int(inst.get("max_enis", 3)),
            "hop_limit": int(inst.get("hop_limit", 2)),
            "root_volume": inst.get("root_volume"),
        })
    instance_ids = {i["id"] for i in out["instances"]}

    def instance_ref(value, path):
        if value not in instance_ids:
            _fail(path, f"instance '{value}' is not defined in $.instances")
        return value

    out["network_interfaces"] = []
    for i, e in enumerate(f.get("network_interfaces", [])):
        path = f"$.network_interfaces[{i}]"
        att = e.get("attachment")
        if att is not None:
            att = {"instance": instance_ref(_need(att, "instance", path + ".attachment"),
                                            path + ".attachment.instance"),
                   "device_index": int(_need(att, "device_index", path + ".attachment")),
                   "network_card": int(att.get("network_card", 0))}
        out["network_interfaces"].append({
            "id": _id(e, "eni", path),
            "subnet": subnet_ref(_need(e, "subnet", path), path + ".subnet"),
            "private_ip": e.get("private_ip"),
            "mac": e.get("mac"),
            "description": e.get("description", ""),
            "tags": _tags(e.get("tags"), path + ".tags"),
            "attachment": att,
        })

    out["volumes"] = []
    for i, v in enumerate(f.get("volumes", [])):
        path = f"$.volumes[{i}]"
        vtype = v.get("type", "gp3")
        if vtype not in VOLUME_TYPES:
            _fail(path + ".type", f"'{vtype}' is not one of {VOLUME_TYPES}")
        state = v.get("state", "available")
        if state not in ("creating", "available", "error"):
            _fail(path + ".state", "a fixture volume is creating, available or error")
        att = v.get("attachment")
        if att is not None:
            att = {"instance": instance_ref(_need(att, "instance", path + ".attachment"),
                                            path + ".attachment.instance"),
                   "device": _need(att, "device", path + ".attachment")}
        out["volumes"].append({
            "id": _id(v, "vol", path),
            "az": _need(v, "az", path),
            "size": int(v.get("size", 100)),
            "type": vtype,
            "iops": v.get("iops"),
            "throughput": v.get("throughput"),
            "encrypted": bool(v.get("encrypted", False)),
            "tags": _tags(v.get("tags"), path + ".tags"),
            "state": state,
            "available_after_s": v.get("available_after_s"),
            "attachment": att,
        })

    out["stacks"] = []
    for i, s in enumerate(f.get("stacks", [])):
        path = f"$.stacks[{i}]"
        resources = {}
        for logical_id, r in _need(s, "resources", path).items():
            resources[logical_id] = {"type": r.get("type", "AWS::AutoScaling::AutoScalingGroup"),
                                     "waiting": bool(r.get("waiting", False)),
                                     "count": r.get("count")}
        out["stacks"].append({"name": _need(s, "name", path), "id": _need(s, "id", path),
                              "status": s.get("status", "CREATE_COMPLETE"),
                              "resources": resources})

    out["autoscaling_groups"] = []
    for i, g in enumerate(f.get("autoscaling_groups", [])):
        path = f"$.autoscaling_groups[{i}]"
        members = []
        for j, m in enumerate(g.get("instances", [])):
            m = {"id": m} if isinstance(m, str) else dict(m)
            members.append({"id": instance_ref(_need(m, "id", f"{path}.instances[{j}]"),
                                               f"{path}.instances[{j}]"),
                            "lifecycle_state": m.get("lifecycle_state", "InService")})
        hooks = []
        for j, h in enumerate(g.get("lifecycle_hooks", [])):
            hpath = f"{path}.lifecycle_hooks[{j}]"
            hooks.append({"name": _need(h, "name", hpath),
                          "transition": h.get("transition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
                          "heartbeat_timeout_s": float(h.get("heartbeat_timeout_s", 3600)),
                          "default_result": h.get("default_result", "ABANDON")})
        out["autoscaling_groups"].append({
            "name": _need(g, "name", path),
            "instances": members,
            "lifecycle_hooks": hooks,
            "tags": _tags(g.get("tags"), path + ".tags"),
            "health_check_grace_period_s": float(g.get("health_check_grace_period_s", 300)),
            "terminate_unhealthy": bool(g.get("terminate_unhealthy", True)),
        })
    unknown = set(f) - {"region", "account", "vpc", "subnets", "roles", "credentials", "instances",
                        "network_interfaces", "volumes", "stacks", "autoscaling_groups",
                        "delays", "imds", "comment"}
    if unknown:
        _fail("$", f"unknown keys {sorted(unknown)}")
    return out
