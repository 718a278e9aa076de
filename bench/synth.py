"""synth_seconds: wall time of `make synth` (the CDK app with its four cdk-nag rule packs: AWS Solutions,
NIST 800-53 R5, HIPAA Security, PCI DSS 3.2.1), against a minimal CDK app (one stack, one resource, no
packs) synthesized by the same interpreter in the same run: the fixed cost of CDK and its jsii runtime.

`python app.py` is what `make synth` runs (Makefile); it is timed as a subprocess from the repository
root and must exit 0.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stack import ROOT, median

_MINIMAL = """
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
app = cdk.App(outdir={outdir!r})
stack = cdk.Stack(app, "Minimal")
sqs.Queue(stack, "Queue")
app.synth()
"""


def _time(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    out = subprocess.run(args, cwd=str(cwd), capture_output=True, text=True, check=False, timeout=900)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return elapsed


def run(repeats: int = 2) -> dict[str, Any]:
    app: list[float] = []
    minimal: list[float] = []
    with tempfile.TemporaryDirectory(prefix="waguard-bench-synth-") as tmp:
        for _ in range(repeats):
            app.append(_time([sys.executable, "app.py"], ROOT))
            code = _MINIMAL.format(outdir=str(Path(tmp) / "cdk.out"))
            minimal.append(_time([sys.executable, "-c", code], Path(tmp)))
    seconds, base = median(app), median(minimal)
    template = ROOT / "cdk.out" / "Waguard.template.json"
    resources = None
    if template.exists():
        import json

        resources = len(json.loads(template.read_text()).get("Resources", {}))
    return {
        "method": f"median of {repeats} runs of `python app.py` (what `make synth` runs) from the repository "
        "root, four cdk-nag packs; baseline: a one-stack one-queue CDK app without packs, same interpreter",
        "seconds": round(seconds, 1),
        "runs": [round(x, 1) for x in app],
        "template_resources": resources,
        "baseline": {"what": "minimal CDK app (1 stack, 1 SQS queue, no packs)", "seconds": round(base, 1)},
        "ratio_to_baseline": round(seconds / base, 2),
    }
