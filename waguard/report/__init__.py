"""`waguard report`: the data-protection report, computed from the synthesized template.

Reads `cdk.out/<Stack>.template.json`, cdk.json (retention per data class, regions), cdk-nag's
`cdk.out/validation-report.json` and the cloud assembly's acknowledgements, and writes Markdown or one
self-contained HTML page: the data inventory, the access matrix, the API exposure, the audit trail,
the rule packs and the eight promises of a WhatsApp Business deployment, each mapped to the controls
found in the template. Nothing in it is hand-written: a control that is not in the template shows as
a gap.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from waguard import paths
from waguard.report.inputs import Facts, Inputs, compute, load_inputs
from waguard.report.promises import Check, Promise, promises
from waguard.report.render import render_html, render_md
from waguard.report.sections import build

__all__ = [
    "Check",
    "Facts",
    "Inputs",
    "Promise",
    "build",
    "compute",
    "generate",
    "load_inputs",
    "main",
    "promises",
    "render_html",
    "render_md",
]


def _base() -> Path:
    cwd = Path.cwd()
    return cwd if (cwd / "cdk.json").exists() else paths.ROOT


def generate(template: Path, cdk_json: Path, fmt: str = "md", audit_from: str | None = None) -> str:
    """The report as text (`md` or `html`); `audit_from` ("aws" or a local AWS endpoint URL): where to read
    the self-audit's last run (not read when None)."""
    from waguard.report import self_audit

    inputs = load_inputs(template, cdk_json)
    doc = build(compute(inputs))
    last = None
    if audit_from is not None:
        from waguard import audit

        last = audit.last_run(inputs.template, None if audit_from == "aws" else audit_from)
    self_audit.extend(doc, inputs.template, last, audit_from)
    return render_html(doc) if fmt == "html" else render_md(doc)


def main(argv: list[str] | None = None) -> int:
    base = _base()
    parser = argparse.ArgumentParser(
        prog="waguard report",
        description="The data-protection report, computed from the synthesized template "
        "(run `make synth` first).",
    )
    parser.add_argument(
        "--format",
        choices=("md", "html", "json", "csv"),
        default="md",
        help="output format (default md; the report: md or html; --ropa: md, json or csv)",
    )
    parser.add_argument(
        "--ropa", action="store_true", help="the records of processing activities (GDPR Art. 30) instead"
    )
    parser.add_argument("--out", default="-", help="output file (default: standard output)")
    parser.add_argument(
        "--template",
        type=Path,
        default=base / "cdk.out" / f"{paths.constants().STACK_NAME}.template.json",
        help="synthesized template (default cdk.out/Waguard.template.json)",
    )
    parser.add_argument("--cdk-json", type=Path, default=base / "cdk.json", help="cdk.json with the settings")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--aws-endpoint", default=None, help="show the last audit run of this local stack")
    where.add_argument("--audit-aws", action="store_true", help="show the deployed stack's last audit run")
    args = parser.parse_args(argv)
    if not args.template.exists():
        print(f"waguard report: {args.template} not found; run `make synth` first", file=sys.stderr)
        return 2
    if not args.cdk_json.exists():
        print(f"waguard report: {args.cdk_json} not found", file=sys.stderr)
        return 2
    if args.format not in (("md", "json", "csv") if args.ropa else ("md", "html")):
        parser.error(f"--format {args.format} is not available {'with' if args.ropa else 'without'} --ropa")
    if args.ropa:
        from waguard.report import ropa

        text = ropa.render(compute(load_inputs(args.template, args.cdk_json)), args.format)
    else:
        audit_from = "aws" if args.audit_aws else args.aws_endpoint
        text = generate(args.template, args.cdk_json, args.format, audit_from)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return 0
