"""The console's client of the waguard API: every call signed with SigV4 (service `execute-api`) by
botocore, with the caller's own credentials from `--profile` or the environment (botocore's credential
chain: environment variables, shared files, SSO, instance roles...). Nothing is signed by hand.

An answer is an `Answer`: the status and the JSON body, or a short explanation when the API could not be
reached. Nothing about a request (its path holds phone numbers) is logged here.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

UNREACHABLE = 0  # the status of an answer that never came (connection refused, timeout)
TIMEOUT_SECONDS = 60.0


class NoCredentials(Exception):
    """botocore found no credentials (or no region) for the console to sign with."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return str(self.data.get("error", "")) if isinstance(self.data, dict) else ""

    @property
    def message(self) -> str:
        if self.problem:
            return self.problem
        if isinstance(self.data, dict):
            return str(self.data.get("message") or self.data.get("error") or "")
        return ""


def quote(value: str) -> str:
    """One path segment (a contact may be `+33...`, a user id or a reference)."""
    return urllib.parse.quote(value, safe="")


def region_of(api: str) -> str | None:
    """The region named by an API Gateway URL (`https://ID.execute-api.REGION.amazonaws.com/...`)."""
    host = urllib.parse.urlsplit(api).hostname or ""
    m = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$", host)
    return m.group(1) if m else None


class Api:
    """The API at `base`, signed with botocore's credentials of `profile` (else the environment)."""

    def __init__(self, base: str, profile: str | None = None) -> None:
        import botocore.session

        self.base = base.rstrip("/")
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentials("no AWS credentials found (give --profile or set them in the environment)")
        # AWS_REGION as the AWS CLI v2 and the SDKs read it, then botocore's (AWS_DEFAULT_REGION, profile).
        region = os.environ.get("AWS_REGION") or session.get_config_variable("region") or region_of(self.base)
        if not region:
            raise NoCredentials("no AWS region (set it in the profile or AWS_REGION)")
        self.credentials = credentials  # refreshable (SSO, assumed roles): frozen per call
        self.region = str(region)

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        data = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if body is not None else {}
        url = self.base + path
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(  # noqa: S310 - the operator's own API URL
            prepared.url, data=data or None, method=method, headers=dict(prepared.headers.items())
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:  # noqa: S310
                return _answer(resp.status, resp.read())
        except urllib.error.HTTPError as err:
            return _answer(err.code, err.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            return Answer(UNREACHABLE, problem=type(reason).__name__)

    def get(self, path: str) -> Answer:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Answer:
        return self.call("POST", path, body if body is not None else {})


def _answer(status: int, raw: bytes) -> Answer:
    try:
        return Answer(status, json.loads(raw) if raw else None)
    except ValueError:
        return Answer(status, None, problem="with a body that is not JSON")
