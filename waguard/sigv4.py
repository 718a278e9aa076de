"""SigV4 verification of requests to AWS_IAM methods (service `execute-api`), as API Gateway does it.

The signature is recomputed with botocore's own signer over the request as received (method, raw path,
the headers named in SignedHeaders, the body, the request's X-Amz-Date) with the secret of the claimed
access key, and compared in constant time. The canonical query string is the specification's, not the
raw one: each name and value decoded, then URI-encoded per RFC 3986 (only `A-Za-z0-9-_.~` unescaped,
`+` read as a space, as the query is read for the handler), sorted by name then value. The credential
scope must name this region and `execute-api`, the date must be within five minutes of now, and
X-Amz-Content-SHA256 (if sent) must be the body's hash. A request with more than one Authorization,
X-Amz-Date or X-Amz-Security-Token header is ambiguous and refused. A session token is checked: a key
that has one (a temporary key) needs it, and a token sent with a key that has none is invalid.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import urllib.parse
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


_SINGLE = ("authorization", "x-amz-date", "x-amz-security-token")
_UNRESERVED = "-_.~"


def canonical_query(query: str) -> str:
    """The SigV4 canonical query string of a raw query: names and values decoded, RFC 3986-encoded,
    sorted by name, then value."""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (
                urllib.parse.quote(urllib.parse.unquote_plus(name), safe=_UNRESERVED),
                urllib.parse.quote(urllib.parse.unquote_plus(value), safe=_UNRESERVED),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _check_session_token(principal: Principal, headers: Sequence[tuple[str, str]]) -> None:
    expected = getattr(principal, "session_token", None)
    given = _header(headers, "x-amz-security-token")
    if expected is None and not given:
        return
    if not given or expected is None or not hmac.compare_digest(given[0].encode(), str(expected).encode()):
        raise AuthError(
            "INVALID_SIGNATURE", "invalid_signature", "The security token included in the request is invalid"
        )


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
    for name in _SINGLE:
        if len(_header(headers, name)) > 1:
            raise _invalid(f"More than one '{name}' header: the request is ambiguous")
    params = _parse(auth[0])
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
    _check_session_token(principal, headers)

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

    class SpecSigner(SigV4Auth):
        """botocore's signer with the specification's canonical query (botocore keeps a URL's raw)."""

        def canonical_query_string(self, request: AWSRequest) -> str:
            return canonical_query(urllib.parse.urlsplit(raw_path).query)

    tokens = _header(headers, "x-amz-security-token")
    credentials = Credentials(principal.access_key, principal.secret_key, tokens[0] if tokens else None)
    path = urllib.parse.urlsplit(raw_path).path or "/"
    request = AWSRequest(method=method.upper(), url="http://local" + path, data=body)
    for name, value in headers:
        if name.lower() in signed:
            request.headers[name] = value  # appends: repeated headers are joined with "," as signed
    request.context["timestamp"] = amz_date
    signer = SpecSigner(credentials, SERVICE, region)
    canonical = signer.canonical_request(request)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(set(signed))):
        return ""  # a header named in SignedHeaders is missing or not signable: no signature can match
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
