"""SigV4 verification of requests to AWS_IAM methods (service `execute-api`), as API Gateway does it.

The signature is recomputed with botocore's own signer over the request as received (method, raw path
and query, the headers named in SignedHeaders, the body, the request's X-Amz-Date) with the secret of
the claimed access key, and compared in constant time. The credential scope must name this region and
`execute-api`, the date must be within five minutes of now, and X-Amz-Content-SHA256 (if sent) must be
the body's hash.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from waguard.roles import Principal

SERVICE = "execute-api"
MAX_SKEW = datetime.timedelta(minutes=5)
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(?P<params>.+)$", re.DOTALL)


class AuthError(Exception):
    """A refused request: `kind` is API Gateway's response type, `code` the contract's error code."""

    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message


def _missing() -> AuthError:
    return AuthError("MISSING_AUTHENTICATION_TOKEN", "missing_authentication", "Missing Authentication Token")


def _invalid(message: str) -> AuthError:
    return AuthError("INVALID_SIGNATURE", "invalid_signature", message)


def _parse(header: str) -> dict[str, str]:
    m = _AUTH.match(header.strip())
    if not m:
        raise _invalid("Authorization header requires the AWS4-HMAC-SHA256 algorithm")
    params: dict[str, str] = {}
    for part in m.group("params").split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            params[key.strip()] = value.strip()
    for key in ("Credential", "SignedHeaders", "Signature"):
        if not params.get(key):
            raise _invalid(f"Authorization header requires '{key}' parameter")
    return params


def _header(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


def verify(
    method: str,
    raw_path: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    principals: Mapping[str, Principal],
    region: str,
    now: datetime.datetime | None = None,
) -> Principal:
    """The principal who signed the request; raises `AuthError` otherwise.

    `raw_path` is the request target as received (percent-encoding and query string untouched).
    """
    auth = _header(headers, "authorization")
    if not auth:
        raise _missing()
    params = _parse(auth[-1])
    scope = params["Credential"].split("/")
    if len(scope) != 5:
        raise _invalid("Credential should be scoped to a valid region, service and request type")
    access_key, date, scope_region, service, terminator = scope
    if service != SERVICE or terminator != "aws4_request":
        raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'")
    if scope_region != region:
        raise _invalid(f"Credential should be scoped to a valid region, not '{scope_region}'")
    principal = principals.get(access_key)
    if principal is None:
        raise AuthError(
            "INVALID_SIGNATURE", "invalid_signature", "The security token included in the request is invalid"
        )

    amz_date = (_header(headers, "x-amz-date") or [""])[-1]
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError as exc:
        raise _invalid("Authorization requires a valid X-Amz-Date header") from exc
    now = now or datetime.datetime.now(datetime.UTC)
    if abs(now - when) > MAX_SKEW:
        raise AuthError("INVALID_SIGNATURE", "invalid_signature", "Signature expired")
    if not amz_date.startswith(date):
        raise _invalid("Credential date does not match X-Amz-Date")

    signed = [h.strip().lower() for h in params["SignedHeaders"].split(";") if h.strip()]
    if "host" not in signed:
        raise _invalid("'Host' must be a signed header")
    if "x-amz-date" not in signed:
        raise _invalid("'X-Amz-Date' must be a signed header")
    content_sha = _header(headers, "x-amz-content-sha256")
    if content_sha and content_sha[-1] != hashlib.sha256(body).hexdigest():
        raise _invalid("The provided 'x-amz-content-sha256' header does not match what was computed")

    expected = _signature(method, raw_path, headers, signed, body, principal, amz_date, region)
    if not hmac.compare_digest(expected, params["Signature"].lower()):
        raise _invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method."
        )
    return principal


def _signature(
    method: str,
    raw_path: str,
    headers: Sequence[tuple[str, str]],
    signed: list[str],
    body: bytes,
    principal: Principal,
    amz_date: str,
    region: str,
) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    tokens = _header(headers, "x-amz-security-token")
    credentials = Credentials(principal.access_key, principal.secret_key, tokens[-1] if tokens else None)
    request = AWSRequest(method=method.upper(), url="http://local" + raw_path, data=body)
    for name, value in headers:
        if name.lower() in signed:
            request.headers[name] = value  # appends: repeated headers are joined with "," as signed
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(credentials, SERVICE, region)
    canonical = signer.canonical_request(request)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(set(signed))):
        return ""  # a header named in SignedHeaders is missing or not signable: no signature can match
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
