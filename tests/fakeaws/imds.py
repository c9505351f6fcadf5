"""IMDSv2 as an instance sees it at 169.254.169.254, with HttpTokens=required.

The caller is the instance whose primary private IP is the request's source address (in
the namespace harness each instance's eth0 is its primary ENI), or the instance a
listener is bound to (host-side tests). Every GET needs a token that instance obtained
with PUT /latest/api/token and that has not expired; no token, or another instance's,
is 401, as IMDSv1 calls are on an instance that requires v2.

Hot-attached ENIs appear as they do on EC2 (amazon-ec2-net-utils issue #38, PRs #153 and
#157): for `mac_lag_s` after the attach, the MAC is listed but its
subnet-ipv4-cidr-block is 404, device-number reads 0 and network-card is empty.
"""

import json
import re

from .api import Response
from .world import iso_s, private_dns

# Error pages as the live IMDS sends them (from memory of live output; unconfirmed byte
# for byte): XHTML with the status in title and h1.
_PAGE = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{status} - {reason}</title>
 </head>
 <body>
  <h1>{status} - {reason}</h1>
 </body>
</html>
"""
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed"}
TOKEN_PATH = "/latest/api/token"
# UG "Instance tags in instance metadata": keys IMDS can serve.
_IMDS_TAG_KEY = re.compile(r"[A-Za-z0-9+\-=._:@]+")


def _error(status, headers=None):
    body = _PAGE.format(status=status, reason=_REASONS[status]).encode()
    return Response(status, body, [("Content-Type", "text/html")] + (headers or []))


def _text(value):
    return Response(200, value.encode(), [("Content-Type", "text/plain")])


def _json(obj):
    # IMDS prints its documents with `"key" : value`, two-space indent.
    return json.dumps(obj, indent=2, separators=(",", " : "))


class Imds:
    """The instance metadata service."""

    def __init__(self, fake):
        self.fake = fake
        self.world = fake.world

    def _caller(self, req):
        bound = req.listener.get("instance_id")
        with self.world.lock:
            if bound:
                return bound if bound in self.world.instances else None
            for inst in self.world.instances.values():
                if inst["private_ip"] == req.source_ip and inst["state"] != "terminated":
                    return inst["id"]
        return None

    def handle(self, req, record):
        iid = self._caller(req)
        record["instance_id"] = iid
        record["action"] = f"{req.method} {req.path}"
        if iid is None:
            # Not an instance of this account: answer as an instance with IMDS turned off.
            record["error_code"] = "NoInstanceForSource"
            return _error(403)
        if req.path == TOKEN_PATH:
            return self._token(req, iid, record)
        if re.fullmatch(r"/[^/]+/api/token", req.path):
            return _error(403)  # versioned token paths are refused (UG)
        if req.method not in ("GET", "HEAD"):
            return _error(405, [("Allow", "GET, HEAD, PUT")])
        token = req.headers.get("X-aws-ec2-metadata-token")
        if not token or not self.world.token_valid(token, iid):
            record["error_code"] = "InvalidToken" if token else "MissingToken"
            return _error(401)
        if self.fake.faults.imds_not_found(req.path):
            record["fault"] = "imds_404"
            return _error(404)
        value = self._lookup(iid, req.path)
        if value is None:
            return _error(404)
        return _text(value)

    def _token(self, req, iid, record):
        if req.method != "PUT":
            return _error(405, [("Allow", "PUT")])
        if req.headers.get("X-Forwarded-For") is not None:
            return _error(403)
        raw = req.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not raw.strip().isdigit() or not 1 <= int(raw) <= self.world.imds["token_max_ttl_s"]:
            record["error_code"] = "InvalidTTL"
            return _error(400)
        ttl = int(raw)
        cap = self.fake.faults.get("imds_token_ttl_cap_s")
        # A capped token still reports the TTL asked for: the point of the fault is a token
        # that dies before the client expects it to.
        token = self.world.new_token(iid, min(ttl, cap) if cap is not None else ttl)
        with self.world.lock:
            hop_limit = self.world.instances[iid]["hop_limit"]
        return Response(200, token.encode(), [("Content-Type", "text/plain"),
                                              ("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", str(ttl))],
                        ip_ttl=hop_limit)

    def _lookup(self, iid, path):
        """The text at `path`: a value, or a directory listed one entry a line."""
        if not path.startswith("/latest/"):
            return None
        node = {"meta-data": self._meta_data(iid), "dynamic": self._dynamic(iid)}
        for part in (p for p in path[len("/latest/"):].split("/") if p):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, dict):
            return "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items())
        if path.endswith("/"):
            return None
        # Credentials are computed only when read: reading them may rotate them.
        return node() if callable(node) else node

    def _meta_data(self, iid):
        w = self.world
        with w.lock:
            inst = dict(w.instances[iid])
            region, account = w.region, w.account
            macs = self._macs(inst)
        dns = private_dns(region, inst["private_ip"])
        meta = {
            "ami-id": inst["image_id"],
            "ami-launch-index": "0",
            "hostname": dns,
            "instance-id": iid,
            "instance-type": inst["instance_type"],
            "local-hostname": dns,
            "local-ipv4": inst["private_ip"],
            "mac": inst["mac"],
            "network": {"interfaces": {"macs": macs}},
            "placement": {"availability-zone": inst["az"], "availability-zone-id": inst["az_id"],
                          "region": region},
            "reservation-id": inst["reservation_id"],
            "security-groups": "default",
            "services": {"domain": "amazonaws.com", "partition": "aws"},
        }
        if inst["role"]:
            meta["iam"] = {
                "info": _json({"Code": "Success", "LastUpdated": iso_s(inst["launch_time"]),
                               "InstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/{inst['role']}",
                               "InstanceProfileId": inst["instance_profile_id"]}),
                "security-credentials": {inst["role"]: lambda: self._credentials(iid)}}
        if inst["metadata_tags"]:
            meta["tags"] = {"instance": {k: v for k, v in inst["tags"].items()
                                         if _IMDS_TAG_KEY.fullmatch(k) and k not in (".", "..", "_")}}
        return dict(sorted(meta.items()))

    def _macs(self, inst):
        """Per-MAC directories; call with the world lock held."""
        w = self.world
        lag = self.fake.imds_mac_lag_s()
        now = w.clock.now()
        out = {}
        for eni in sorted(w.enis.values(), key=lambda e: e["mac"]):
            att = eni["attachment"]
            if not att or att["instance_id"] != inst["id"] or not att["hooked"]:
                continue
            lagging = att["attached_at"] is None or now < att["attached_at"] + lag
            subnet = w.subnets[eni["subnet_id"]]
            d = {"device-number": "0" if lagging else str(att["device_index"]),
                 "interface-id": eni["id"],
                 "local-hostname": private_dns(w.region, eni["private_ip"]),
                 "local-ipv4s": eni["private_ip"],
                 "mac": eni["mac"],
                 "owner-id": w.account,
                 "security-group-ids": w.default_sg,
                 "security-groups": "default",
                 "subnet-id": eni["subnet_id"],
                 "vpc-id": eni["vpc_id"],
                 "vpc-ipv4-cidr-block": w.vpc["cidr"],
                 "vpc-ipv4-cidr-blocks": w.vpc["cidr"]}
            if not lagging:
                d["subnet-ipv4-cidr-block"] = subnet["cidr"]
            if inst["network_cards"] > 1:
                d["network-card"] = "" if lagging else str(att["network_card"])
            out[eni["mac"]] = dict(sorted(d.items()))
        return out

    def _credentials(self, iid):
        cred = self.world.instance_credentials(iid)
        return _json({"Code": "Success", "LastUpdated": iso_s(cred["issued"]), "Type": "AWS-HMAC",
                      "AccessKeyId": cred["access_key_id"],
                      "SecretAccessKey": cred["secret_access_key"],
                      "Token": cred["session_token"], "Expiration": iso_s(cred["expiration"])})

    def _dynamic(self, iid):
        w = self.world
        with w.lock:
            inst = dict(w.instances[iid])
        doc = {"accountId": w.account, "architecture": "x86_64", "availabilityZone": inst["az"],
               "billingProducts": None, "devpayProductCodes": None, "marketplaceProductCodes": None,
               "imageId": inst["image_id"], "instanceId": iid, "instanceType": inst["instance_type"],
               "kernelId": None, "pendingTime": iso_s(inst["launch_time"]),
               "privateIp": inst["private_ip"], "ramdiskId": None, "region": w.region,
               "version": "2017-09-30"}
        return {"instance-identity": {"document": _json(doc)}}
