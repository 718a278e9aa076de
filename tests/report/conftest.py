"""One synthesized stack per test session for the report tests (synth takes a while: four rule packs).

The project's assembly is synthesized when stale (as `waguard serve` does it, once per suite) and copied
into a temporary directory, so the tests never race with a later synth writing cdk.out; the report reads
the template, the assembly metadata and cdk-nag's validation report from the copy.
"""

from __future__ import annotations

import json
import shutil
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
    """The project's own assembly (`ensure_synthesized`: one synth per suite, shared with `waguard serve`
    and the other worker under its file lock; `python app.py` when stale), copied to a temporary directory
    so that a later synth cannot change it under a test."""
    from waguard.cfn.assembly import TemplateError, ensure_synthesized

    try:
        built = ensure_synthesized(ROOT)
    except TemplateError as exc:
        pytest.fail(str(exc))
    outdir = tmp_path_factory.mktemp("assembly") / "cdk.out"
    shutil.copytree(built.parent, outdir)
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
