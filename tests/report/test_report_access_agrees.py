"""The report's access matrix agrees with local enforcement: for every personnel role and every
IAM-authorized route of the template, a SigV4-signed call to the local API as that role is refused (403)
exactly when the matrix does not list the route for the role.

Checked on the frozen assembly of the golden test and on the stack as synthesized now."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from waguard import cfn, model, roles
from waguard.api import ApiServer, LocalApi
from waguard.report.access import access_matrix, api_routes, sample_path

GOLDEN = Path(__file__).resolve().parent / "golden" / "assembly" / "Waguard.template.json"

pytestmark = pytest.mark.xdist_group("infra")


def _call(base: str, region: str, key: tuple[str, str], method: str, path: str) -> int:
    url = base + path
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    request = AWSRequest(
        method=method, url=url, data=body or b"", headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(*key), "execute-api", region).add_auth(request)
    req = urllib.request.Request(url, data=body, method=method, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _walk(template_path: Path) -> list[tuple[str, str, bool, int]]:
    """(role, route, the matrix allows it, the local API's status) for every personnel role and IAM route."""
    tpl = cfn.load(template_path)
    matrix = {p.personnel_role: p for p in access_matrix(tpl) if p.personnel_role}
    routes = [r for r in api_routes(tpl) if r.authorization == "AWS_IAM"]
    res = cfn.Resolver(tpl)
    (api,) = model.apis(tpl, res, model.functions(tpl, res))
    principals: dict[str, roles.Principal] = {}
    keys: dict[str, tuple[str, str]] = {}
    for name, spec in model.roles(tpl, res).items():
        principal = roles.role_principal(spec)
        principals[principal.access_key] = principal
        keys[name] = (principal.access_key, principal.secret_key)

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "body": json.dumps({"function": function})}

    server = ApiServer(("127.0.0.1", 0), LocalApi(api, tpl.region, invoke, principals)).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        return [
            (
                role,
                f"{r.method} {r.path}",
                f"{r.method} {r.path}" in p.routes,
                _call(base, tpl.region, keys[role], r.method, sample_path(r.path)),
            )
            for role, p in sorted(matrix.items())
            for r in routes
        ]
    finally:
        server.stop()


def _assert_agree(rows: list[tuple[str, str, bool, int]]) -> None:
    assert rows, "no personnel role or IAM route to compare"
    # 403: refused by IAM; 200: reached the function; 400: allowed, then the body failed validation
    assert {status for *_, status in rows} <= {200, 400, 403}, rows
    disagree = [
        (role, route, listed, status) for role, route, listed, status in rows if listed == (status == 403)
    ]
    assert not disagree, f"matrix and local API disagree (role, route, listed, status): {disagree}"
    assert {listed for _, _, listed, _ in rows} == {True, False}  # both outcomes occur


def test_matrix_agrees_with_the_local_api_on_the_golden_assembly() -> None:
    rows = _walk(GOLDEN)
    _assert_agree(rows)
    assert {role for role, *_ in rows} == {"sender", "agent", "privacy-officer", "auditor"}


def test_matrix_agrees_with_the_local_api_on_the_synthesized_stack(synth: Any) -> None:
    _assert_agree(_walk(synth.template_path))
