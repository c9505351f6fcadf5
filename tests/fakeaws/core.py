"""FakeAWS: the object tests and the simulated cluster drive.

It owns the clock, the world, the faults and the listeners, routes each request to the
service of the listener it arrived on, and records every request (what was sent, who
signed it, what was answered) so tests can count calls per instance and compare the
actions used with the IAM policy of the CloudFormation template.
"""

import copy
import hashlib
import logging
import threading
import uuid

from .api import Response
from .autoscaling import AutoScaling
from .clock import Clock, Scheduler
from .cloudformation import CloudFormation
from .control import Control
from .ec2 import Ec2
from .faults import Faults
from .fixture import normalize
from .imds import Imds
from .server import Listener
from .world import World

log = logging.getLogger("fakeaws")


class Hooks:
    """Callbacks from the fake; subclass and override what you need.

    Transition hooks run on the scheduler thread, one at a time, with no lock held: a hook
    may take its time (plug a veth into a namespace) and may call the fake. An ENI or a
    volume reads `attached` in Describe* only after its hook has returned.
    """

    def eni_attached(self, instance_id, eni):
        """eni: dict(id, mac, private_ip, subnet_id, subnet_cidr, device_index, network_card, az, tags)."""

    def eni_detached(self, instance_id, eni):
        """Same dict as eni_attached; fires only for attachments whose attach hook ran."""

    def volume_attached(self, instance_id, volume, device):
        """volume: dict(id, az, size, type, tags); device as requested ("/dev/sdg")."""

    def volume_detached(self, instance_id, volume):
        """Same dict as volume_attached."""

    def instance_state_changed(self, instance_id, state):
        """'pending', 'running', 'shutting-down', 'terminated', 'stopping' or 'stopped'."""

    def on_request(self, record):
        """Called for every recorded request, on the request's thread, once its answer is
        decided and before it is written: a hook that kills the client here makes the point
        "AWS did it, the client never heard" deterministic."""


class FakeAWS:
    """A fake AWS account serving IMDSv2, EC2, CloudFormation and Auto Scaling."""

    def __init__(self, fixture, hooks=None, seed=0):
        self.hooks = hooks or Hooks()
        self.seed = seed
        self.clock = Clock()
        self.scheduler = Scheduler(self.clock)
        self.world = World(normalize(fixture), self.hooks, seed, self.clock, self.scheduler)
        self.faults = Faults(seed)
        self._services = {"imds": Imds(self), "ec2": Ec2(self),
                          "cloudformation": CloudFormation(self), "autoscaling": AutoScaling(self)}
        self._control = Control(self)
        self._lock = threading.Lock()
        self._records = []
        self._seq = 0
        self._service_seq = {}
        self._signals = []
        self._asg_calls = []
        self._listeners = []
        self._errors = []
        self._stopping = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, listeners):
        """Bind every listener (port 0 picks a free port) and start serving."""
        self._listeners = [Listener(self, cfg) for cfg in listeners]
        names = [lst.name for lst in self._listeners]
        if len(set(names)) != len(names):
            raise ValueError("two listeners share a name; give them distinct 'name's")
        self.scheduler.start()
        for lst in self._listeners:
            lst.start()
        self._apply_down(self.faults.get("down"))
        return self

    def stop(self):
        self._stopping.set()
        stoppers = [threading.Thread(target=lst.stop) for lst in self._listeners]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        self.scheduler.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoints(self):
        """{listener name (default: its service): base URL actually bound}."""
        return {lst.name: lst.url for lst in self._listeners}

    # ---- requests --------------------------------------------------------------------------

    def dispatch(self, listener, req):
        """Answer one request; called by the HTTP layer."""
        service = listener.service
        if service == "control":
            return self._control.handle(req)
        with self._lock:
            self._seq += 1
            self._service_seq[service] = n = self._service_seq.get(service, 0) + 1
            record = {"seq": self._seq, "service_seq": n, "time": self.clock.now(),
                      "service": service, "listener": listener.name, "action": None,
                      "params": {}, "instance_id": None, "access_key_id": None,
                      "http_status": None, "error_code": None, "dry_run": False, "fault": None,
                      "source_ip": req.source_ip, "method": req.method, "path": req.path}
        if self.faults.roll("drop", service, n):
            record["fault"] = "drop"
            resp = Response(None, fault="drop")
        else:
            delay = self.faults.latency(service, n)
            if delay:
                self._stopping.wait(delay)
            resp = self._answer(service, req, record)
            if record["fault"] == "malformed" or self.faults.roll("malformed", service, n):
                record["fault"] = "malformed"
                resp.body = resp.body[: len(resp.body) // 2]
            if record["fault"] == "truncated" or self.faults.roll("truncated", service, n):
                record["fault"] = "truncated"
                resp.fault = "truncate"
        record["http_status"] = resp.status
        with self._lock:
            self._records.append(record)
        try:
            self.hooks.on_request(copy.deepcopy(record))
        except Exception as exc:  # noqa: BLE001 - reported through errors(); the answer goes out
            log.exception("fakeaws: on_request hook failed")
            with self._lock:
                self._errors.append(exc)
        return resp

    def _answer(self, service, req, record):
        try:
            return self._services[service].handle(req, record)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake must be loud, not a hang-up
            log.exception("fakeaws: %s request %s failed", service, record["seq"])
            with self._lock:
                self._errors.append(exc)
            record["error_code"] = "FakeAWSBug"
            return Response(500, b"fakeaws failed on this request; see fake.errors()\n",
                            [("Content-Type", "text/plain")])

    def request_id(self, record):
        """The request's id, a UUID derived from the seed and its sequence number."""
        digest = hashlib.sha256(f"{self.seed}:{record['seq']}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def requests(self, since=0):
        """Records of requests with seq > since, in arrival order."""
        with self._lock:
            return sorted((copy.deepcopy(r) for r in self._records if r["seq"] > since),
                          key=lambda r: r["seq"])

    def record_signal(self, entry):
        with self._lock:
            self._signals.append(entry)

    def record_autoscaling_call(self, entry):
        with self._lock:
            self._asg_calls.append(entry)

    def signals(self):
        """Every SignalResource call that reached the action, accepted or not."""
        with self._lock:
            return copy.deepcopy(self._signals)

    def autoscaling_calls(self):
        """Every SetInstanceHealth and CompleteLifecycleAction that reached the action."""
        with self._lock:
            return copy.deepcopy(self._asg_calls)

    # ---- faults, delays and the clock ------------------------------------------------------

    def set_faults(self, **kw):
        """Change fault settings (see faults.DEFAULTS); returns all previous settings."""
        previous = self.faults.set(**kw)
        if kw.get("describe_stale_s") is not None:
            with self.world.lock:
                self.world.stale_override_s = max(self.world.stale_override_s, kw["describe_stale_s"])
        if "down" in kw:
            self._apply_down(kw["down"])
        return previous

    def _apply_down(self, services):
        for lst in self._listeners:
            if lst.service != "control":
                lst.set_down(lst.service in services)

    def set_delays(self, **kw):
        """Change transition delays (fixture `delays` keys); returns the previous ones."""
        with self.world.lock:
            unknown = set(kw) - set(self.world.delays)
            if unknown:
                raise ValueError(f"unknown delays {sorted(unknown)}")
            previous = dict(self.world.delays)
            self.world.delays.update({k: float(v) for k, v in kw.items()})
            return previous

    def describe_stale_s(self):
        override = self.faults.get("describe_stale_s")
        return self.world.delays["describe_stale_s"] if override is None else override

    def imds_mac_lag_s(self):
        override = self.faults.get("imds_mac_lag_s")
        return self.world.imds["mac_lag_s"] if override is None else override

    def advance_clock(self, seconds):
        """Move the fake's clock forward: what came due runs; returns the new offset."""
        return self.clock.advance(seconds)

    def set_clock_offset(self, seconds):
        """Set the fake's clock `seconds` from the host's (a client clock that is wrong by
        -seconds); returns the previous offset."""
        return self.clock.set_offset(seconds)

    def errors(self):
        """Exceptions raised by hooks or transitions on the scheduler thread (the thread
        goes on) and by the fake itself while answering (answered 500); a test should end
        with this empty."""
        with self._lock:
            return list(self.scheduler.errors) + list(self._errors)

    def iam_actions(self):
        """Sorted "service:Action" of every authenticated Query call: what the caller's
        IAM policy must allow (compare with the CloudFormation template)."""
        with self._lock:
            return sorted({f"{r['service']}:{r['action']}" for r in self._records
                           if r.get("authenticated") and r["action"]})

    def wait_idle(self, timeout=10.0):
        """Wait until every transition that is due has run; False on timeout."""
        return self.scheduler.idle(timeout)

    def events(self, since=0, wait_s=0.0):
        """Transitions done (eni_attached, instance_state_changed, ...) after `since`."""
        return self.world.events_since(since, wait_s)

    # ---- the world ---------------------------------------------------------------------

    def launch_instance(self, **kw):
        """Launch an instance (kwargs: id, subnet or az, private_ip, mac, role, tags, asg,
        instance_type, metadata_tags, network_cards, max_enis, hop_limit); returns it."""
        return self.world.launch_instance(**kw)

    def terminate_instance(self, instance_id):
        self.world.terminate_instance(instance_id)

    def stop_instance(self, instance_id):
        self.world.stop_instance(instance_id)

    def start_instance(self, instance_id):
        self.world.start_instance(instance_id)

    def forget_instance(self, instance_id):
        self.world.forget_instance(instance_id)

    def set_stack_waiting(self, stack, logical_id, waiting):
        self.world.set_stack_waiting(stack, logical_id, waiting)

    def instance_credentials(self, instance_id):
        """The role credentials IMDS would serve the instance now (for host-side tests)."""
        cred = self.world.instance_credentials(instance_id)
        return {k: cred[k] for k in ("access_key_id", "secret_access_key", "session_token",
                                     "expiration")}

    def lifecycle_token(self, group, instance_id, hook):
        """The LifecycleActionToken of a pending lifecycle action, or None."""
        return self.world.lifecycle_token(group, instance_id, hook)

    def state(self):
        """JSON-able snapshot of every resource, the clock and the faults."""
        snap = self.world.state()
        snap["faults"] = self.faults.snapshot()
        return snap
