"""Building the CDK app: context from cdk.json, validated settings, the stack, the four rule packs.

`app.py` (what `cdk synth` runs) and the infra tests build the app the same way through `build_app`.
"""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, Environment

from infra import nag
from infra.config import CONTEXT_KEY, ROOT, WaguardConfig, load_cdk_context
from infra.stack import WaguardStack
from lambdas.shared import constants as c

CDK_JSON = ROOT / "cdk.json"


def build_app(
    outdir: str | None = None, settings_overrides: dict[str, Any] | None = None, *, checks: bool = True
) -> tuple[App, WaguardStack, WaguardConfig]:
    """The app with its stack. `outdir=None` leaves the output directory to CDK (CDK_OUTDIR under the CLI).

    cdk.json's context is passed explicitly so `python app.py` behaves like `cdk synth` (which also
    passes it, and wins); `settings_overrides` replaces keys of the `waguard` object (tests).
    """
    context = load_cdk_context(CDK_JSON)
    if settings_overrides:
        context = {**context, CONTEXT_KEY: {**context.get(CONTEXT_KEY, {}), **settings_overrides}}
    app = App(outdir=outdir, context=context) if outdir else App(context=context)
    cfg = WaguardConfig.from_context(app.node.try_get_context(CONTEXT_KEY))
    stack = WaguardStack(
        app,
        c.STACK_NAME,
        cfg=cfg,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=cfg.region),
    )
    if checks:
        nag.attach_packs(app)
    return app, stack, cfg
