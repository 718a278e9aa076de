"""One synthesized stack per test session for the report tests (synth takes a while: four rule packs).

The app is synthesized into a temporary cloud assembly (CDK_OUTDIR) so the tests never race with a
`make synth` writing cdk.out; the report reads the template, the assembly metadata and cdk-nag's
validation report from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from waguard.paths import ROOT

STACK = "Waguard"


@dataclass(frozen=True)
class Synth:
    outdir: Path
    template_path: Path
    cdk_json: Path

    @property
    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    env = {**os.environ, "CDK_OUTDIR": str(outdir)}
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"synth failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    template = outdir / f"{STACK}.template.json"
    if not template.exists():  # an app that ignores CDK_OUTDIR writes ./cdk.out
        outdir = ROOT / "cdk.out"
        template = outdir / f"{STACK}.template.json"
    assert template.exists(), f"no {template} after synth"
    return Synth(outdir=outdir, template_path=template, cdk_json=ROOT / "cdk.json")


@pytest.fixture(scope="session")
def report_md(synth: Synth) -> str:
    from waguard.report import generate

    return generate(synth.template_path, synth.cdk_json, "md")


@pytest.fixture(scope="session")
def report_html(synth: Synth) -> str:
    from waguard.report import generate

    return generate(synth.template_path, synth.cdk_json, "html")
