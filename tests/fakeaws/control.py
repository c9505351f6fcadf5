"""The control listener: FakeAWS's Python API as HTTP/JSON, for shell tests and the CLI.

Routes (README.md has the full table): GET /_fake/requests, /_fake/state, /_fake/signals,
/_fake/autoscaling-calls, /_fake/iam-actions, /_fake/events, /_fake/faults; POST /_fake/faults, /_fake/delays,
/_fake/clock, /_fake/instances, /_fake/instances/<id>/<verb>,
/_fake/stacks/<stack>/resources/<logical-id>/waiting. Bodies are JSON objects whose keys
are the Python keyword arguments. The control listener is not recorded, has no faults and
no authentication: bind it to a loopback or test-only address.
"""

import json
import re
import urllib.parse

from .api import Response
from .errors import ApiError


def _json(status, obj):
    return Response(status, (json.dumps(obj, sort_keys=True) + "\n").encode(),
                    [("Content-Type", "application/json")])


class Control:
    """Dispatch of /_fake/... requests to the FakeAWS methods."""

    def __init__(self, fake):
        self.fake = fake

    def handle(self, req):
        try:
            body = json.loads(req.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            query = dict(urllib.parse.parse_qsl(req.query))
            return _json(200, self._route(req.method, req.path, query, body))
        except LookupError as err:
            return _json(404, {"error": str(err)})
        except ApiError as err:
            return _json(404 if err.code.endswith(".NotFound") else 400, {"error": str(err)})
        except (ValueError, TypeError) as err:
            return _json(400, {"error": str(err)})

    def _route(self, method, path, query, body):
        f = self.fake
        since = int(query.get("since", 0))
        gets = {
            "/_fake/requests": lambda: f.requests(since),
            "/_fake/state": f.state,
            "/_fake/signals": f.signals,
            "/_fake/autoscaling-calls": f.autoscaling_calls,
            "/_fake/iam-actions": f.iam_actions,
            "/_fake/events": lambda: f.events(since, float(query.get("wait", 0))),
            "/_fake/faults": f.faults.snapshot,
            "/_fake/endpoints": lambda: f.endpoints,
        }
        posts = {
            "/_fake/faults": lambda: {"previous": f.set_faults(**body)},
            "/_fake/delays": lambda: {"previous": f.set_delays(**body)},
            "/_fake/clock": lambda: self._clock(body),
            "/_fake/instances": lambda: f.launch_instance(**body),
        }
        table = gets if method == "GET" else posts if method == "POST" else {}
        if path in table:
            return table[path]()
        m = re.fullmatch(r"/_fake/instances/([^/]+)/(terminate|stop|start|forget)", path)
        if m and method == "POST":
            getattr(f, f"{m.group(2)}_instance")(m.group(1))
            return {"instance_id": m.group(1), "done": m.group(2)}
        m = re.fullmatch(r"/_fake/instances/([^/]+)/credentials", path)
        if m and method == "GET":
            return f.instance_credentials(m.group(1))
        m = re.fullmatch(r"/_fake/stacks/([^/]+)/resources/([^/]+)/waiting", path)
        if m and method == "POST":
            if not isinstance(body.get("waiting"), bool):
                raise ValueError('the body must be {"waiting": true|false}')
            stack = urllib.parse.unquote(m.group(1))
            f.set_stack_waiting(stack, m.group(2), body["waiting"])
            return {"stack": stack, "logical_id": m.group(2), "waiting": body["waiting"]}
        raise LookupError(f"no route for {method} {path}")

    def _clock(self, body):
        if "advance" in body:
            self.fake.advance_clock(float(body["advance"]))
        if "offset" in body:
            self.fake.set_clock_offset(float(body["offset"]))
        return {"offset": self.fake.clock.offset, "now": self.fake.clock.now()}
