"""One synthesis of the real app (cdk.json, four cdk-nag packs) shared by the infra tests.

`make test` runs `-n 2 --dist loadgroup`; the infra modules are in the xdist group "infra", so one worker
synthesizes once. Synthesis runs the validation plugins: the report is read from the outdir.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.application import build_app
from tests.infra.support import Synth


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir: Path = tmp_path_factory.mktemp("cdk-out")
    app, stack, cfg = build_app(str(outdir))
    error: str | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # the nag test reports it; the other tests still run
        error = str(exc)
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    if error is not None:
        # Unacknowledged findings abort the synth; assert on a template synthesized without the packs.
        app, stack, cfg = build_app(str(tmp_path_factory.mktemp("cdk-out-nocheck")), checks=False)
        app.synth()
    template = Template.from_stack(stack)
    text = (Path(app.outdir) / f"{stack.artifact_id}.template.json").read_text()
    return Synth(cfg, stack, template, template.to_json(), text, report, error)
