"""Check a request's SigV4 signature with an implementation the project did not write.

The client's signer is hand-written C; checking it against a second hand-written signer
would let the two share a misreading of the spec. botocore's SigV4Auth is what every AWS
SDK for Python signs with, so the fake rebuilds the received request as botocore sees one
(method, path, query, body, and exactly the headers named in SignedHeaders, with their
received values) and asks botocore for the signature at the request's own X-Amz-Date.
Nothing of the client's canonical request is trusted: a flipped byte anywhere in the body,
a signed header or the signature fails the comparison.

Failures are returned as AuthError kinds; each service words them its own way (EC2 says
AuthFailure where CloudFormation says InvalidClientTokenId), see api.py.
"""

import calendar
import hashlib
import hmac
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"


class AuthError(Exception):
    """A refused signature. `kind` is one of:

    missing        no Authorization header
    incomplete     Authorization or X-Amz-Date present but not well formed
    scope          credential scope names another region, service, date or terminator
    skew           X-Amz-Date too far from the fake's clock
    unknown_key    access key id not issued by this account
    invalid_token  session token absent, wrong, or sent with a key that has none
    expired_token  temporary credentials past their Expiration
    signature      the signature does not match
    """

    def __init__(self, kind, detail="", access_key_id=None, cred=None, **extra):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.access_key_id = access_key_id
        self.cred = cred
        self.extra = extra


class _SignedHeadersOnly(SigV4Auth):
    """SigV4Auth that signs the headers the client named, not the ones botocore would pick.

    botocore leaves out user-agent and a few others when it signs; a client that signed
    them must still verify, so the header set comes from SignedHeaders.
    """

    def __init__(self, credentials, service, region, headers):
        super().__init__(credentials, service, region)
        self._headers = headers

    def headers_to_sign(self, request):
        return self._headers


def _parse_authorization(value):
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError("incomplete", f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields = {}
    for item in rest.split(","):
        key, eq, val = item.strip().partition("=")
        if eq:
            fields[key] = val
    problems = [f"Authorization header requires '{k}' parameter."
                for k in ("Credential", "Signature", "SignedHeaders") if not fields.get(k)]
    if problems:
        raise AuthError("incomplete", " ".join(problems) + f" Authorization={value}")
    return fields


def _parse_amz_date(value, authorization):
    if value is None:
        raise AuthError("incomplete", "Authorization header requires existence of either a "
                                      f"'X-Amz-Date' or a 'Date' header. Authorization={authorization}")
    try:
        return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise AuthError("incomplete", f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
                                      "See http://en.wikipedia.org/wiki/ISO_8601") from None


def expected_signature(cred, service, region, method, path_qs, headers, signed, body, amz_date):
    """botocore's canonical request, string to sign and signature for this request."""
    to_sign = HTTPHeaders()
    for name in signed:
        values = headers.get_all(name) or [""]
        for v in values:
            to_sign[name] = v
    auth = _SignedHeadersOnly(Credentials(cred["access_key_id"], cred["secret_access_key"],
                                          cred["session_token"]), service, region, to_sign)
    # The scheme only decides whether botocore may skip hashing the payload (https and
    # S3); plain http makes it always hash, which every non-S3 service requires.
    request = AWSRequest(method=method, url="http://fakeaws.invalid" + path_qs, data=body)
    request.context["timestamp"] = amz_date
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    return canonical, string_to_sign, auth.signature(string_to_sign, request)


def verify(method, path_qs, headers, body, *, service, region, now, skew_s, lookup):
    """Return the credential record that signed the request, or raise AuthError.

    `headers` is the received http.client.HTTPMessage; `lookup(access_key_id)` returns a
    credential dict (access_key_id, secret_access_key, session_token, expiration) or None.
    """
    authorization = headers.get("Authorization")
    if not authorization:
        raise AuthError("missing")
    fields = _parse_authorization(authorization)
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        # Wording is the fake's own: no AWS answer to a malformed scope was found.
        raise AuthError("incomplete", f"Credential '{fields['Credential']}' is not of the form "
                                      "AKID/YYYYMMDD/region/service/aws4_request.")
    access_key_id, scope_date, scope_region, scope_service, terminator = scope
    if terminator != "aws4_request":
        raise AuthError("scope", "Credential should be scoped with a valid terminator: "
                                 f"'aws4_request', not '{terminator}'. ", access_key_id)
    if scope_region != region:
        raise AuthError("scope", f"Credential should be scoped to a valid region, not "
                                 f"'{scope_region}'. ", access_key_id)
    if scope_service != service:
        raise AuthError("scope", f"Credential should be scoped to correct service: '{service}'. ",
                        access_key_id)
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        raise AuthError("incomplete", "'Host' or ':authority' must be a 'SignedHeader' in the "
                                      "AWS Authorization.", access_key_id)
    amz_date = headers.get("X-Amz-Date")
    request_time = _parse_amz_date(amz_date, authorization)
    if "x-amz-date" not in signed:
        # General Reference, "Create a canonical request": a date header sent must be
        # signed. Wording (unconfirmed) modelled on the Host one.
        raise AuthError("incomplete", "'X-Amz-Date' must be a 'SignedHeader' in the AWS "
                                      "Authorization.", access_key_id)
    if scope_date != amz_date[:8]:
        raise AuthError("scope", "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                 f"version of date from HTTP: '{scope_date}' != '{amz_date[:8]}', "
                                 "from 'X-Amz-Date'.", access_key_id)
    if abs(now - request_time) > skew_s:
        raise AuthError("skew", "", access_key_id, request_time=request_time, now=now)

    cred = lookup(access_key_id)
    if cred is None:
        raise AuthError("unknown_key", "", access_key_id)
    token = headers.get("X-Amz-Security-Token")
    if (cred["session_token"] or token) and token != cred["session_token"]:
        raise AuthError("invalid_token", "", access_key_id, cred)
    if cred["expiration"] is not None and now >= cred["expiration"]:
        raise AuthError("expired_token", "", access_key_id, cred)

    canonical, string_to_sign, signature = expected_signature(
        cred, service, region, method, path_qs, headers, signed, body, amz_date)
    declared_hash = headers.get("X-Amz-Content-Sha256")
    body_ok = declared_hash is None or declared_hash == hashlib.sha256(body).hexdigest()
    if not (body_ok and hmac.compare_digest(signature, fields["Signature"])):
        raise AuthError("signature", "", access_key_id, cred, canonical_request=canonical,
                        string_to_sign=string_to_sign)
    return cred
