"""Cold start, structurally: every handler module imports in a fresh interpreter with no environment at
all, and nothing heavy that the function does not use (`make bench` measures the times: cold_import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import constants as c

pytestmark = pytest.mark.xdist_group("reliability-cold-import")

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
MODULES = sorted({path.rsplit(".", 1)[0] for path in c.HANDLERS.values()})
_PROBE = (
    "import json, sys\n"
    "sys.path.insert(0, {lambdas!r})\n"
    "import {module}\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def imported(module: str) -> set[str]:
    """Modules loaded by `import module` in `python -I` with an empty environment."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE.format(lambdas=str(LAMBDAS), module=module)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, f"import {module} failed with no environment:\n{out.stderr[-3000:]}"
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    return {module: imported(module) for module in MODULES}


def test_every_handler_imports_with_no_environment(loaded: dict[str, set[str]]) -> None:
    assert set(loaded) == set(MODULES)


def test_the_webhook_loads_no_aws_sdk_and_no_pydantic(loaded: dict[str, set[str]]) -> None:
    """Meta waits on the webhook's cold start: boto3 and the secret client load on first use only.
    (Powertools imports the bare `botocore` package for its user agent: a millisecond, not a client.)"""
    heavy = loaded["handlers.webhook"] & {
        "boto3",
        "botocore.session",
        "botocore.client",
        "pydantic",
        "pydantic_core",
        "aws_xray_sdk",
        "aws_lambda_powertools.utilities.parameters",
    }
    assert not heavy, f"handlers.webhook imports {sorted(heavy)} at import time"


def test_no_handler_loads_the_xray_sdk(loaded: dict[str, set[str]]) -> None:
    offenders = [m for m, modules in loaded.items() if "aws_xray_sdk" in modules]
    assert not offenders, f"{offenders} import aws_xray_sdk"
