#!/usr/bin/env python3
"""The waguard CDK app: `cdk synth` / `make synth` run this file.

Synth validates cdk.json (region allow-list, retention bounds), builds the stack and runs four cdk-nag
packs (AWS Solutions, NIST 800-53 R5, HIPAA Security, PCI DSS 3.2.1). The template lands in
`cdk.out/Waguard.template.json` and the rule-pack report in `cdk.out/validation-report.json`; synth exits 1
while an unacknowledged finding remains, 2 when cdk.json is invalid.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from infra.application import build_app
from infra.config import ConfigError

REPORT = "validation-report.json"


def failed_plugins(assembly_dir: str) -> list[str]:
    """Names of the rule packs whose report concluded `failure` (unacknowledged error findings)."""
    path = Path(assembly_dir) / REPORT
    if not path.exists():
        return []
    report = json.loads(path.read_text(encoding="utf-8"))
    return [p["pluginName"] for p in report.get("pluginReports", []) if p.get("conclusion") == "failure"]


def main() -> int:
    # Under the CDK CLI, CDK_OUTDIR is set and the app must not pass its own outdir.
    outdir = None if "CDK_OUTDIR" in os.environ else "cdk.out"
    try:
        app, _stack, _cfg = build_app(outdir)
    except ConfigError as exc:
        print(f"waguard: {exc}", file=sys.stderr)
        return 2
    try:
        assembly = app.synth()
    except RuntimeError as exc:  # CDK raises once the report is written (and printed) when findings remain
        if "Validation failed" not in str(exc):
            raise
        print(f"waguard: rule packs failed; see {Path(app.outdir) / REPORT}", file=sys.stderr)
        return 1
    # When the CLI runs the app in "process" mode, CDK only prints the findings; fail here as well.
    failed = failed_plugins(assembly.directory)
    if failed:
        print(f"waguard: unacknowledged findings in {', '.join(failed)}; see {REPORT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
