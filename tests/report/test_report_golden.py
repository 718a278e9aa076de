"""The report's content is pinned for one frozen cloud assembly (tests/report/golden/assembly: a synthesized
template, its assembly metadata, cdk-nag's validation report and the manifest's environment).

The Markdown is compared line by line, sorted, with the volatile parts normalized (sha256 digests, which
change with cdk.json). A refactor of the report must leave it unchanged; a deliberate change to the
report's content regenerates it with `WAGUARD_UPDATE_GOLDEN=1 pytest tests/report/test_report_golden.py`
and shows up in the diff of report.golden.md.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from waguard.paths import ROOT
from waguard.report import generate

HERE = Path(__file__).resolve().parent / "golden"
TEMPLATE = HERE / "assembly" / "Waguard.template.json"
GOLDEN = HERE / "report.golden.md"

_SHA = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{16}\b")


def normalized(text: str) -> list[str]:
    lines = (_SHA.sub("<sha256>", line.rstrip()) for line in text.splitlines())
    return sorted(line for line in lines if line)


def test_report_markdown_matches_the_golden_lines() -> None:
    lines = normalized(generate(TEMPLATE, ROOT / "cdk.json", "md"))
    if os.environ.get("WAGUARD_UPDATE_GOLDEN"):
        GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")
    golden = GOLDEN.read_text(encoding="utf-8").splitlines()
    missing = sorted((Counter(golden) - Counter(lines)).elements())
    extra = sorted((Counter(lines) - Counter(golden)).elements())
    assert not missing and not extra, f"report changed:\n- {missing[:20]}\n+ {extra[:20]}"
    assert len(lines) > 150  # a real report: every section with its tables
