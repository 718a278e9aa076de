#!/usr/bin/env python3
"""The waguard CDK app: `cdk synth` / `make synth` run this file.

Synth validates cdk.json (region allow-list, retention bounds), builds the stack and runs four cdk-nag
packs (AWS Solutions, NIST 800-53 R5, HIPAA Security, PCI DSS 3.2.1). The template lands in
`cdk.out/Waguard.template.json` and the rule-pack report in `cdk.out/validation-report.json`; synth exits 1
while an unacknowledged finding remains.
"""

from __future__ import annotations

import os
import sys

from infra.application import build_app
from infra.config import ConfigError


def main() -> int:
    # Under the CDK CLI, CDK_OUTDIR is set and the app must not pass its own outdir.
    outdir = None if "CDK_OUTDIR" in os.environ else "cdk.out"
    try:
        app, _stack, _cfg = build_app(outdir)
    except ConfigError as exc:
        print(f"waguard: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
