"""The code stays readable in pieces: no module over 600 lines and no function over 100 lines in lambdas/,
infra/ and waguard/ (measured with `ast`, decorators and docstrings included)."""

from __future__ import annotations

import ast
from pathlib import Path

from waguard.paths import ROOT

PACKAGES = ("lambdas", "infra", "waguard")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_walk_finds_the_code() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert {"waguard/cfn/iam.py", "infra/stack.py", "lambdas/shared/constants.py"} <= names


def test_no_module_over_600_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_100_lines() -> None:
    long: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = (node.end_lineno or node.lineno) - first + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = size
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
