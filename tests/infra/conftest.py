"""One synthesis of the real app (cdk.json, four cdk-nag packs) shared by the infra tests.

The infra modules are in the xdist group "infra", so one worker builds this once. The template and the
rule-pack report are the project's own assembly (`cdk.out`, written by `python app.py` through
`ensure_synthesized`: one synthesis per suite, shared with `waguard serve` and the report tests); the app's
construct tree is built beside it, not synthesized again, for the tests that read constructs. When the
packs refuse (an unacknowledged finding makes app.py exit 1), the app is synthesized here as before: with
the packs for the report and the error, then without them for the other tests' template.
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
    from waguard.cfn.assembly import TemplateError, ensure_synthesized
    from waguard.paths import ROOT

    try:
        built = ensure_synthesized(ROOT)
    except TemplateError:
        return _synthesized_here(tmp_path_factory)
    _app, stack, cfg = build_app(str(tmp_path_factory.mktemp("cdk-out")))
    text = (built.parent / f"{stack.artifact_id}.template.json").read_text()
    report_file = built.parent / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    data = json.loads(text)
    return Synth(cfg, stack, Template.from_json(data), data, text, report, None)


def _synthesized_here(tmp_path_factory: pytest.TempPathFactory) -> Synth:
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
