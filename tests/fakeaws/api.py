"""What every Query API call goes through: parameters, signature, faults, IAM, errors.

EC2, CloudFormation and Auto Scaling share the Query request format (form-encoded POST
with Action and Version) and SigV4, but not their answers to the same mistake: EC2 says
`AuthFailure` (401) where the other two say `InvalidClientTokenId` (403), and its error
document is `<Response><Errors>` without a namespace where theirs is a namespaced
`<ErrorResponse>`. The two families are the two Protocol classes below; where a choice had
no source, the comment next to it says so (README.md lists every such choice).
"""

import base64
import re
import time
import urllib.parse
from xml.sax.saxutils import escape

from . import iam, xmlout
from .errors import ApiError
from .sigv4 import AuthError, verify


class Request:
    """A received HTTP request, decoupled from the socket it came on."""

    def __init__(self, method, path, query, headers, body, source_ip, listener):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.source_ip = source_ip
        self.listener = listener

    @property
    def path_qs(self):
        return self.path + ("?" + self.query if self.query else "")


class Response:
    """What to send back. `fault` asks the HTTP layer to misbehave ('drop', 'truncate')."""

    def __init__(self, status, body=b"", headers=None, fault=None, ip_ttl=None):
        self.status = status
        self.body = body
        self.headers = headers or []
        self.fault = fault
        self.ip_ttl = ip_ttl


def parse_params(req):
    """Query parameters from the URL and, for a form POST, from the body."""
    pairs = urllib.parse.parse_qsl(req.query, keep_blank_values=True)
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if req.method == "POST" and ctype == "application/x-www-form-urlencoded":
        pairs += urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def numbered(params, prefix):
    """Values of prefix.1, prefix.2, ... in index order (the Query list encoding)."""
    found = []
    for key, value in params.items():
        head, _, index = key.rpartition(".")
        if head == prefix and index.isdigit():
            found.append((int(index), value))
    return [v for _, v in sorted(found)]


def parse_bool(params, name, wire_name=None):
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError("InvalidParameterValue",
                   f"Invalid value '{value}' for {wire_name or name[0].lower() + name[1:]}")


def coral_check(params, rules):
    """Validate members as CloudFormation and Auto Scaling do, with their wording.

    `rules` are (WireName, required, constraints) with constraints from botocore's model
    (min, max, pattern, enum). The message joins every problem: "2 validation errors
    detected: Value null at 'uniqueId' failed to satisfy constraint: Member must not be
    null; ..." (the AWS "coral" validation format).
    """
    problems = []
    for name, required, limits in rules:
        value = params.get(name)
        field = name[0].lower() + name[1:]
        at = f"at '{field}' failed to satisfy constraint: Member must"
        if value is None:
            if required:
                problems.append(f"Value null {at} not be null")
            continue
        if "enum" in limits and value not in limits["enum"]:
            problems.append(f"Value '{value}' {at} satisfy enum value set: [{', '.join(limits['enum'])}]")
        if "min" in limits and len(value) < limits["min"]:
            problems.append(f"Value '{value}' {at} have length greater than or equal to {limits['min']}")
        if "max" in limits and len(value) > limits["max"]:
            problems.append(f"Value '{value}' {at} have length less than or equal to {limits['max']}")
        if "pattern" in limits and not re.fullmatch(limits["pattern"], value):
            problems.append(f"Value '{value}' {at} satisfy regular expression pattern: {limits['pattern']}")
    if problems:
        n = len(problems)
        raise ApiError("ValidationError",
                       f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))


class Ec2Protocol:
    """EC2's dialect of the Query protocol (API Reference, "Error codes")."""

    namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
    # API Reference, Common client errors: RequestExpired past 15 minutes of skew.
    skew_s = 15 * 60
    _AUTH = {
        # curl without credentials gets this from EC2 (HTTP 400, observed).
        "missing": ("MissingParameter", 400, "The request must contain the parameter AWSAccessKeyId"),
        # EC2 API Reference Common Errors lists IncompleteSignature as 400; text: (unconfirmed).
        "incomplete": ("IncompleteSignature", 400, None),
        # A scope naming another region is refused as AuthFailure (aws-sdk-java-v2 #2981).
        "scope": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
        "skew": ("RequestExpired", 400, "Request has expired."),
        "unknown_key": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
        "invalid_token": ("AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
        # EC2 answers expired STS credentials with RequestExpired (aws-sdk-go-v2 #1674).
        "expired_token": ("RequestExpired", 400, "Request has expired."),
        # HTTP 403 with EC2's error document (mitchellh/vagrant-aws #138).
        "signature": ("SignatureDoesNotMatch", 403,
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details."),
    }
    throttle_error = ("RequestLimitExceeded", 503, "Request limit exceeded.")
    server_errors = (("InternalError", 500, "An internal error has occurred"),
                     ("Unavailable", 503, "The service is unavailable. Please try again shortly."))

    def auth_error(self, err):
        code, status, message = self._AUTH[err.kind]
        return ApiError(code, message or err.detail, status)

    @staticmethod
    def unknown_action(action, version):
        return ApiError("InvalidAction", f"The action {action} is not valid for this web service.")

    @staticmethod
    def bad_version(action, version):
        # The fake speaks 2016-11-15 only; EC2 itself still accepts older versions.
        if version is None:
            return ApiError("MissingParameter", "The request must contain the parameter Version")
        return ApiError("NoSuchVersion",
                        f"The requested version ({version}) of service AmazonEC2 does not exist")

    def error_response(self, err, request_id):
        # One line, no namespace, RequestID spelled so (API Reference, "Error response").
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>'
                + escape(err.code) + "</Code><Message>" + escape(err.message)
                + "</Message></Error></Errors><RequestID>" + request_id
                + "</RequestID></Response>").encode("utf-8")
        return Response(err.status, body, self._headers(request_id))

    def success_response(self, action, children, request_id):
        body = xmlout.render(action + "Response", [("requestId", request_id)] + children,
                             self.namespace, indent="    ", declaration=True)
        return Response(200, body, self._headers(request_id))

    @staticmethod
    def _headers(request_id):
        return [("x-amzn-RequestId", request_id), ("Cache-Control", "no-cache, no-store"),
                ("Content-Type", "text/xml;charset=UTF-8")]

    def denied(self, principal, action, resource, mutating):
        message = "You are not authorized to perform this operation. " + iam.denial(
            principal["principal_arn"], action, resource)
        if mutating:
            # Describe* calls carry no encoded message; mutating calls do (opaque here).
            blob = base64.urlsafe_b64encode(f"{principal['principal_arn']}|{action}".encode())
            message += ". Encoded authorization failure message: " + blob.decode().rstrip("=")
        return ApiError("UnauthorizedOperation", message, 403)


class AwsQueryProtocol:
    """CloudFormation's and Auto Scaling's dialect of the Query protocol."""

    # "Signature expired: ... (... - 5 min.)" from CloudFormation (hashicorp/terraform
    # #9571) and Auto Scaling (aws/aws-sdk-ruby #522, aws/aws-parallelcluster #2055).
    skew_s = 5 * 60
    _AUTH = {
        # aws/aws-lambda-developer-guide #263 (CloudFormation DescribeStacks).
        "missing": ("MissingAuthenticationToken", 403, "Request is missing Authentication Token"),
        # API Reference Common Errors: IncompleteSignature 400; text: (unconfirmed).
        "incomplete": ("IncompleteSignature", 400, None),
        # timkay/aws #111: CloudFormation, SignatureDoesNotMatch for a wrong scope.
        "scope": ("SignatureDoesNotMatch", 403, None),
        "skew": ("SignatureDoesNotMatch", 403, None),
        # ministryofjustice/cloud-platform #837: CloudFormation, 403.
        "unknown_key": ("InvalidClientTokenId", 403, "The security token included in the request is invalid."),
        "invalid_token": ("InvalidClientTokenId", 403, "The security token included in the request is invalid."),
        # eksctl-io/eksctl #5968: CloudFormation DescribeStacks, 403.
        "expired_token": ("ExpiredToken", 403, "The security token included in the request is expired"),
        "signature": ("SignatureDoesNotMatch", 403,
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details."),
    }
    throttle_error = ("Throttling", 400, "Rate exceeded")
    # API Reference Common Errors: InternalFailure 500, ServiceUnavailable 503.
    server_errors = (("InternalFailure", 500, "An internal error occurred."),
                     ("ServiceUnavailable", 503, "Service is unable to handle request."))

    def auth_error(self, err):
        code, status, message = self._AUTH[err.kind]
        if err.kind == "skew":
            message = _skew_message(err.extra["request_time"], err.extra["now"], self.skew_s)
        return ApiError(code, message or err.detail, status)

    @staticmethod
    def unknown_action(action, version):
        return ApiError("InvalidAction", f"Could not find operation {action} for version {version}")

    def bad_version(self, action, version):
        return self.unknown_action(action, version)

    def error_response(self, err, request_id):
        body = xmlout.render("ErrorResponse", [
            ("Error", [("Type", "Receiver" if err.status >= 500 else "Sender"),
                       ("Code", err.code), ("Message", err.message)]),
            ("RequestId", request_id)], self.namespace)
        return Response(err.status, body, self._headers(request_id))

    def success_response(self, action, children, request_id):
        body = xmlout.render(action + "Response",
                             children + [("ResponseMetadata", [("RequestId", request_id)])],
                             self.namespace)
        return Response(200, body, self._headers(request_id))

    @staticmethod
    def _headers(request_id):
        return [("x-amzn-RequestId", request_id), ("Content-Type", "text/xml")]

    def denied(self, principal, action, resource, mutating):
        return ApiError("AccessDenied", iam.denial(principal["principal_arn"], action, resource), 403)


def _skew_message(request_time, now, window):
    fmt = "%Y%m%dT%H%M%SZ"
    req = time.strftime(fmt, time.gmtime(request_time))
    minutes = window // 60
    if request_time < now:
        bound = time.strftime(fmt, time.gmtime(now - window))
        return (f"Signature expired: {req} is now earlier than {bound} "
                f"({time.strftime(fmt, time.gmtime(now))} - {minutes} min.)")
    bound = time.strftime(fmt, time.gmtime(now + window))
    return (f"Signature not yet current: {req} is still later than {bound} "
            f"({time.strftime(fmt, time.gmtime(now))} + {minutes} min.)")


class QueryService:
    """One Query API behind one listener. Subclasses set `service` (the SigV4 and IAM
    name), `version`, the protocol mixin, and `actions` (name -> method)."""

    service = None
    version = None
    actions = {}
    mutating = frozenset()

    def __init__(self, fake):
        self.fake = fake
        self.world = fake.world

    def handle(self, req, record):
        params = parse_params(req)
        record["params"] = params
        action = params.get("Action")
        record["action"] = action
        request_id = self.fake.request_id(record)
        try:
            principal = self._authenticate(req, record)
            self._check_action(action, params)
            self.fake.faults.inject(self, record)
            children = self.actions[action](self, params, principal, record)
            return self.success_response(action, children, request_id)
        except ApiError as err:
            record["error_code"] = err.code
            return self.error_response(err, request_id)

    def _authenticate(self, req, record):
        try:
            cred = verify(req.method, req.path_qs, req.headers, req.body,
                          service=self.service, region=self.world.region,
                          now=self.world.clock.now(), skew_s=self.skew_s,
                          lookup=self.world.lookup_key)
        except AuthError as err:
            record["access_key_id"] = err.access_key_id
            if err.cred:
                record["instance_id"] = err.cred["instance_id"]
            if err.kind == "signature":
                # Not on the wire (AWS does not say): kept for whoever debugs the signer.
                record["expected_canonical_request"] = err.extra["canonical_request"]
                record["expected_string_to_sign"] = err.extra["string_to_sign"]
            raise self.auth_error(err) from None
        record["access_key_id"] = cred["access_key_id"]
        record["instance_id"] = cred["instance_id"]
        record["authenticated"] = True
        return cred

    def _check_action(self, action, params):
        version = params.get("Version")
        if not action:
            # (unconfirmed) wording.
            raise ApiError("MissingAction", "The request must contain the parameter Action")
        if action not in self.actions:
            raise self.unknown_action(action, version)
        if version != self.version:
            raise self.bad_version(action, version)

    def authorize(self, principal, action, resource=None):
        """Raise the service's IAM denial unless the signer's role allows `action`."""
        allowed = self.world.roles.get(principal["role"], [])
        full = f"{self.service}:{action}"
        if not iam.allowed(allowed, full):
            raise self.denied(principal, full, resource, action in self.mutating)
