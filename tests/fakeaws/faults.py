"""Injected misbehaviour: throttling, 5xx, bad bodies, dropped connections, lag.

Whether the Nth request to a service is throttled is a pure function of (seed, fault,
service, N): a run replays exactly with the same seed, and requests to one service do not
shift the dice of another, whatever the thread interleaving between services.
"""

import copy
import fnmatch
import random
import threading

from .errors import ApiError

SERVICES = ("imds", "ec2", "cloudformation", "autoscaling")
_RATES = ("throttle", "error_5xx", "malformed", "truncated", "drop")

DEFAULTS = {
    "throttle": {},       # service -> probability of the service's throttling error
    "error_5xx": {},      # service -> probability of a 500 or 503
    "malformed": {},      # service -> probability of a body cut in the middle (bad XML)
    "truncated": {},      # service -> probability of Content-Length > bytes sent, then close
    "drop": {},           # service -> probability of closing the connection without answer
    "latency_s": {},      # service -> seconds, or [min, max] drawn per request
    "down": [],           # services whose listeners refuse connections
    "fail_action": [],    # [{"action", "code" or "fault", "times", "status"?, "message"?,
                          #   "service"?}]; fault: "malformed" or "truncated" (the action is
                          #   carried out, its answer spoilt)
    "imds_token_ttl_cap_s": None,  # tokens expire after at most this, whatever was asked
    "imds_mac_lag_s": None,        # overrides the fixture's imds.mac_lag_s
    "imds_404": [],                # [{"path": glob, "times": N or None}]: GETs answered 404
    "describe_stale_s": None,      # overrides the fixture's delays.describe_stale_s
}


class Faults:
    """The current fault settings and the seeded dice that apply them."""

    def __init__(self, seed):
        self._seed = seed
        self._lock = threading.Lock()
        self._settings = copy.deepcopy(DEFAULTS)

    def get(self, name):
        with self._lock:
            return copy.deepcopy(self._settings[name])

    def snapshot(self):
        with self._lock:
            return copy.deepcopy(self._settings)

    def set(self, **kw):
        """Replace the named settings; return every previous setting (to restore later)."""
        unknown = set(kw) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        for name in _RATES + ("latency_s",):
            for service in kw.get(name, {}):
                if service not in SERVICES:
                    raise ValueError(f"{name}: unknown service {service}")
        for service in kw.get("down", []):
            if service not in SERVICES:
                raise ValueError(f"down: unknown service {service}")
        for rule in kw.get("fail_action", []):
            if "action" not in rule or ("code" in rule) == ("fault" in rule):
                raise ValueError("fail_action rules need 'action' and either 'code' or 'fault'")
            if rule.get("fault", "malformed") not in ("malformed", "truncated"):
                raise ValueError("fail_action: fault must be 'malformed' or 'truncated'")
        for rule in kw.get("imds_404", []):
            if "path" not in rule:
                raise ValueError("imds_404 rules need 'path'")
        with self._lock:
            previous = copy.deepcopy(self._settings)
            for name, value in kw.items():
                self._settings[name] = copy.deepcopy(value)
                if name in ("fail_action", "imds_404"):
                    for rule in self._settings[name]:
                        rule.setdefault("times", 1)
            return previous

    def _dice(self, kind, service, n):
        return random.Random(f"{self._seed}:{kind}:{service}:{n}")

    def roll(self, kind, service, n):
        """True when the Nth request to `service` gets fault `kind`."""
        with self._lock:
            rate = self._settings[kind].get(service, 0.0)
        return rate > 0 and self._dice(kind, service, n).random() < rate

    def latency(self, service, n):
        with self._lock:
            spec = self._settings["latency_s"].get(service)
        if spec is None:
            return 0.0
        if isinstance(spec, (int, float)):
            return float(spec)
        low, high = spec
        return self._dice("latency", service, n).uniform(low, high)

    @staticmethod
    def _consume(rules, matches):
        """Use up one `times` of the first rule that matches; True if one did."""
        for rule in rules:
            if matches(rule) and (rule["times"] is None or rule["times"] > 0):
                if rule["times"] is not None:
                    rule["times"] -= 1
                return rule
        return None

    def imds_not_found(self, path):
        """True when an imds_404 rule takes this GET (metadata not there yet)."""
        with self._lock:
            return self._consume(self._settings["imds_404"],
                                 lambda rule: fnmatch.fnmatchcase(path, rule["path"])) is not None

    def inject(self, api, record):
        """Raise the error a signed, parsed Query call is to get instead of its answer."""
        service, n = api.service, record["service_seq"]
        if self.roll("throttle", service, n):
            record["fault"] = "throttle"
            code, status, message = api.throttle_error
            raise ApiError(code, message, status)
        if self.roll("error_5xx", service, n):
            record["fault"] = "error_5xx"
            code, status, message = self._dice("5xx-kind", service, n).choice(api.server_errors)
            raise ApiError(code, message, status)
        with self._lock:
            rule = self._consume(self._settings["fail_action"], lambda r: (
                r["action"] == record["action"] and r.get("service", service) == service))
        if rule is not None and "fault" in rule:
            record["fault"] = rule["fault"]  # the action goes ahead; dispatch spoils the answer
        elif rule is not None:
            record["fault"] = "fail_action"
            raise ApiError(rule["code"], rule.get("message", f"Injected {rule['code']}"),
                           rule.get("status", 400))
