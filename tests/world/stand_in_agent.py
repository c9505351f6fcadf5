#!/usr/bin/python3
"""A stand-in for `kafka-bootstrap run`, in Python: a test double of the harness only.

It walks the pipeline the plainest way (lowest free id, no takeover, no retries) so that the
simulated cluster's report and checks can be shown to pass when an agent does its job, while
the C stages are still placeholders. It is not a reference for the product, whose rules
(DECISIONS.md, ARCHITECTURE.md) are stricter. It uses only what the harness gives any agent:
IMDS at 169.254.169.254, the AWS_ENDPOINT_URL_* variables, the instance's config.json, and
`ip`, `blkid`, `mkfs.*`, `mount` inside the instance's network namespace.

    stand_in_agent.py run --config /path/to/config.json
    stand_in_agent.py signal --config /path/to/config.json --wait-registered

As the tool does, `run` sends SUCCESS itself only with success_signal "run"; otherwise
`signal --wait-registered` sends it once /brokers/ids/<id> holds the advertised endpoints.
"""
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.request

import botocore.session
from kazoo.client import KazooClient

IMDS = "http://169.254.169.254/latest/"


def imds(path, token):
    req = urllib.request.Request(IMDS + path, headers={"X-aws-ec2-metadata-token": token})
    return urllib.request.urlopen(req, timeout=2).read().decode()


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class Run:
    def __init__(self, cfg):
        self.cfg = cfg
        self.stages = []
        self.broker_id = None

    def stage(self, name, fn):
        started = time.time()
        t0 = time.monotonic()
        entry = {"name": name, "started_at": iso(started), "outcome": "ok", "changes": []}
        self.stages.append(entry)
        try:
            changed = fn()
            entry["outcome"] = "changed" if changed else "ok"
            entry["changes"] = list(changed or [])
        except Exception as exc:
            entry["outcome"] = "failed"
            entry["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            entry["duration_ms"] = round((time.monotonic() - t0) * 1000)

    def write_status(self, code):
        path = self.cfg["status_file"]
        with open(path + ".tmp", "w") as f:
            json.dump({"schema": 1, "command": "run", "started_at": self.stages[0]["started_at"]
                       if self.stages else iso(time.time()), "exit_code": code,
                       "broker_id": self.broker_id, "stages": self.stages}, f, indent=2)
        os.rename(path + ".tmp", path)


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def client(service, env_name, creds, region):
    return botocore.session.get_session().create_client(
        service, region_name=region, endpoint_url=os.environ[env_name],
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["Token"])


def identity_into(me):
    """This instance and its role's clients, from IMDSv2."""
    req = urllib.request.Request(IMDS + "api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    token = urllib.request.urlopen(req, timeout=2).read().decode()
    me["token"] = token
    for key, path in (("id", "instance-id"), ("az", "placement/availability-zone"),
                      ("az_id", "placement/availability-zone-id"),
                      ("region", "placement/region")):
        me[key] = imds("meta-data/" + path, token)
    role = imds("meta-data/iam/security-credentials/", token).split()[0]
    creds = json.loads(imds("meta-data/iam/security-credentials/" + role, token))
    me["ec2"] = client("ec2", "AWS_ENDPOINT_URL_EC2", creds, me["region"])
    me["cfn"] = client("cloudformation", "AWS_ENDPOINT_URL_CLOUDFORMATION", creds,
                       me["region"])


def pipeline(run):
    cfg = run.cfg
    me = {}

    def identity():
        identity_into(me)

    def discover():
        filters = [{"Name": f"tag:{cfg.get('tag_key', 'Name')}", "Values": ["KAFKA-*"]},
                   {"Name": "availability-zone", "Values": [me["az"]]},
                   {"Name": "tag:kafka-bootstrap:cluster", "Values": [cfg["cluster"]]}]
        enis = me["ec2"].describe_network_interfaces(Filters=filters)["NetworkInterfaces"]
        vols = me["ec2"].describe_volumes(Filters=filters)["Volumes"]

        def bid(item):
            name = {t["Key"]: t["Value"] for t in item["TagSet" if "TagSet" in item else "Tags"]}
            return int(name["Name"].split("-", 1)[1])
        me["enis"] = {bid(e): e for e in enis}
        me["vols"] = {bid(v): v for v in vols}

    def claim():
        zk = KazooClient(hosts=cfg["zookeeper_connect"], timeout=5)
        zk.start(timeout=10)
        try:
            base = f"/kafka-bootstrap/{cfg['cluster']}"
            zk.ensure_path(base + "/claims")
            zk.ensure_path(base + "/instances")
            if zk.exists(f"{base}/instances/{me['id']}"):
                run.broker_id = int(zk.get(f"{base}/instances/{me['id']}")[0])
                return []
            for candidate in sorted(me["enis"]):
                path = f"{base}/claims/{candidate}"
                body = json.dumps({"version": 1, "broker_id": candidate, "instance_id": me["id"],
                                   "az": me["az"], "az_id": me["az_id"]}).encode()
                tx = zk.transaction()
                tx.create(path, body)
                tx.create(f"{base}/instances/{me['id']}", str(candidate).encode())
                if not any(isinstance(r, Exception) for r in tx.commit()):
                    run.broker_id = candidate
                    return [f"claimed broker {candidate}"]
                # Taken: take it over only from a terminated owner, compare-and-set.
                data, stat = zk.get(path)
                owner = json.loads(data)["instance_id"]
                found = me["ec2"].describe_instances(InstanceIds=[owner])["Reservations"]
                if found[0]["Instances"][0]["State"]["Name"] != "terminated":
                    continue
                tx = zk.transaction()
                tx.set_data(path, body, version=stat.version)
                tx.create(f"{base}/instances/{me['id']}", str(candidate).encode())
                if not any(isinstance(r, Exception) for r in tx.commit()):
                    run.broker_id = candidate
                    return [f"took broker {candidate} over from {owner} (terminated)"]
            raise RuntimeError("no broker id available")
        finally:
            zk.stop()
            zk.close()

    def wait_attached(describe, key):
        for _ in range(200):
            item = describe()
            atts = item.get("Attachments") or [item.get("Attachment") or {}]
            if any(a.get("InstanceId") == me["id"] and a.get(key) == "attached" for a in atts):
                return
            time.sleep(0.05)
        raise TimeoutError("attachment did not complete")

    def eni():
        e = me["enis"][run.broker_id]
        if (e.get("Attachment") or {}).get("InstanceId") == me["id"]:
            return []
        me["ec2"].attach_network_interface(NetworkInterfaceId=e["NetworkInterfaceId"],
                                           InstanceId=me["id"], DeviceIndex=1)
        wait_attached(lambda: me["ec2"].describe_network_interfaces(
            NetworkInterfaceIds=[e["NetworkInterfaceId"]])["NetworkInterfaces"][0], "Status")
        return [f"attached {e['NetworkInterfaceId']}"]

    def volume():
        v = me["vols"][run.broker_id]
        changes = []
        if not any(a.get("InstanceId") == me["id"] for a in v.get("Attachments", [])):
            me["ec2"].attach_volume(VolumeId=v["VolumeId"], InstanceId=me["id"],
                                    Device=cfg.get("volume_device", "/dev/sdg"))
            wait_attached(lambda: me["ec2"].describe_volumes(
                VolumeIds=[v["VolumeId"]])["Volumes"][0], "State")
            changes.append(f"attached {v['VolumeId']}")
        dev = (f"{cfg['dev_root']}/disk/by-id/nvme-Amazon_Elastic_Block_Store_"
               + v["VolumeId"].replace("-", ""))
        for _ in range(100):
            if os.path.exists(dev):
                break
            time.sleep(0.05)
        dev = os.path.realpath(dev)
        probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", dev],
                               capture_output=True, text=True).stdout.strip()
        if not probe:
            sh(f"mkfs.{cfg.get('filesystem', 'xfs')}", "-q", dev)
            changes.append(f"created a filesystem on {dev}")
        if not subprocess.run(["findmnt", "-S", dev], capture_output=True).returncode == 0:
            sh("mount", "-o", cfg.get("mount_options", "noatime"), dev, cfg["mount_point"])
            changes.append(f"mounted {dev}")
        return changes

    def network():
        e = me["enis"][run.broker_id]
        mac = e["MacAddress"]
        cidr = imds(f"meta-data/network/interfaces/macs/{mac}/subnet-ipv4-cidr-block",
                    me["token"])
        ifname = next(l["ifname"] for l in json.loads(sh("ip", "-j", "link"))
                      if l.get("address") == mac)
        ip, prefix = e["PrivateIpAddress"], cidr.split("/")[1]
        base = cidr.split("/")[0].rsplit(".", 1)
        router = f"{base[0]}.{int(base[1]) + 1}"
        sh("ip", "addr", "replace", f"{ip}/{prefix}", "dev", ifname)
        sh("ip", "link", "set", ifname, "up")
        sh("ip", "route", "replace", "default", "via", router, "dev", ifname, "table", "10001")
        if f"from {ip} lookup 10001" not in sh("ip", "rule"):
            sh("ip", "rule", "add", "from", ip, "lookup", "10001", "priority", "10001")
        me["ip"] = ip
        return [f"{ip}/{prefix} on {ifname}"]

    def properties():
        path = cfg["properties_path"]
        with open(path) as f:
            lines = [l for l in f.read().splitlines()
                     if not l.startswith(("broker.id=", "listeners=", "log.dirs="))]
        lines += [f"broker.id={run.broker_id}", f"listeners=PLAINTEXT://{me['ip']}:9092",
                  f"log.dirs={cfg['log_dir']}"]
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(path + ".tmp", path)

    def signal():
        if cfg.get("success_signal", "registered") == "run":
            signal_success(me)

    for name, fn in (("identity", identity), ("discover", discover), ("claim", claim),
                     ("eni", eni), ("volume", volume), ("network", network),
                     ("properties", properties), ("signal", signal)):
        run.stage(name, fn)


def signal_success(me):
    tags = {t["Key"]: t["Value"] for t in me["ec2"].describe_tags(
        Filters=[{"Name": "resource-id", "Values": [me["id"]]}])["Tags"]}
    try:
        me["cfn"].signal_resource(StackName=tags["aws:cloudformation:stack-name"],
                                  LogicalResourceId=tags["aws:cloudformation:logical-id"],
                                  UniqueId=me["id"], Status="SUCCESS")
    except me["cfn"].exceptions.ClientError as exc:
        if "cannot be signaled" not in str(exc):
            raise


def wait_registered(cfg):
    """SUCCESS once Kafka registered this broker with its advertised endpoints."""
    with open(cfg["properties_path"]) as f:
        props = dict(line.split("=", 1) for line in f.read().splitlines()
                     if "=" in line and not line.startswith("#"))
    path = f"/brokers/ids/{props['broker.id']}"
    wanted = sorted((props.get("advertised.listeners") or props["listeners"]).split(","))
    zk = KazooClient(hosts=cfg["zookeeper_connect"], timeout=5)
    zk.start(timeout=10)
    try:
        deadline = time.monotonic() + int(cfg.get("register_deadline_s", 600))
        while True:
            if zk.exists(path) and sorted(json.loads(zk.get(path)[0])["endpoints"]) == wanted:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka did not register {path}")
            time.sleep(0.1)
    finally:
        zk.stop()
        zk.close()
    me = {}
    identity_into(me)
    signal_success(me)


def main(argv):
    if argv[1:2] == ["signal"] and argv[2:3] == ["--config"] and argv[4:] == ["--wait-registered"]:
        with open(argv[3]) as f:
            try:
                wait_registered(json.load(f))
            except Exception as exc:  # noqa: BLE001 - a test double: say why, exit non-zero
                print(f"stand-in agent: {exc}", file=sys.stderr)
                return 75
        return 0
    if len(argv) != 4 or argv[1] != "run" or argv[2] != "--config":
        print("usage: stand_in_agent.py run --config FILE\n"
              "       stand_in_agent.py signal --config FILE --wait-registered", file=sys.stderr)
        return 64
    with open(argv[3]) as f:
        run = Run(json.load(f))
    try:
        pipeline(run)
        code = 0
    except Exception as exc:  # noqa: BLE001 - reported like the tool does, in status.json
        print(f"stand-in agent: {exc}", file=sys.stderr)
        code = 70
    run.write_status(code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
