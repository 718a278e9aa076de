"""The cloud assembly on disk (`cdk.out/`): synthesis when stale, and loading the stack's template.

The local stack has one source of truth, `cdk.out/Waguard.template.json`; this module finds it, runs
`python app.py` when it is missing or older than the CDK app, and loads it as a `cfn.Template` with the
stack's region (from the assembly manifest) and the construct paths of its resources (from the assembly
metadata).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from waguard import paths
from waguard.cfn.template import DEFAULT_REGION, Template


class TemplateError(RuntimeError):
    """The template is missing, cannot be synthesized, or uses something the local runtime can't resolve."""


# ---- synthesis -------------------------------------------------------------------------------------


def stack_name() -> str:
    return str(paths.constants().STACK_NAME)


def template_path(root: Path = paths.ROOT) -> Path:
    return root / "cdk.out" / f"{stack_name()}.template.json"


def _sources(root: Path) -> Iterable[Path]:
    for name in ("app.py", "cdk.json", "lambdas/shared/constants.py"):  # infra imports the constants
        if (root / name).is_file():
            yield root / name
    infra = root / "infra"
    if infra.is_dir():
        yield from (p for p in infra.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def is_stale(root: Path = paths.ROOT) -> bool:
    """True when the template is missing or older than any file of the CDK app."""
    path = template_path(root)
    if not path.exists():
        return True
    built = path.stat().st_mtime
    return any(src.stat().st_mtime > built for src in _sources(root))


def ensure_synthesized(root: Path = paths.ROOT) -> Path:
    """Synthesize (`.venv/bin/python app.py`) when the template is missing or stale; return its path.

    A file lock keeps parallel callers (test workers, a second `serve`) from synthesizing at once.
    """
    path = template_path(root)
    if not is_stale(root):
        return path
    if not (root / "app.py").exists():
        if path.exists():
            return path
        raise TemplateError(f"{path} is missing and there is no app.py to synthesize it")
    lock_dir = root / ".waguard"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / "synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if is_stale(root):
                proc = subprocess.run(  # noqa: S603 - the project's own CDK app
                    [paths.python(), "app.py"], cwd=root, capture_output=True, text=True, check=False
                )
                if proc.returncode != 0 or not path.exists():
                    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
                    raise TemplateError(f"synthesis failed (python app.py, exit {proc.returncode}):\n{tail}")
                path.touch()  # a synth that changed nothing must still count as fresh
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


def manifest_region(cdk_out: Path, stack: str) -> str | None:
    """The region of the stack's environment in cdk.out/manifest.json (`aws://ACCOUNT/REGION`)."""
    try:
        manifest = json.loads((cdk_out / "manifest.json").read_text(encoding="utf-8"))
        env = manifest["artifacts"][stack]["environment"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    region = str(env).rsplit("/", 1)[-1]
    return None if not region or region.startswith("unknown") else region


def load(path: Path | None = None, region: str | None = None) -> Template:
    """Parse a template; the region is the stack's env (cdk.out/manifest.json), else AWS_DEFAULT_REGION.
    Construct paths come from the `<Stack>.metadata.json` beside it when present."""
    path = path or template_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise TemplateError(f"{path} is not valid JSON: {exc}") from exc
    stack = path.name.removesuffix(".template.json") if path.name.endswith(".template.json") else path.stem
    region = (
        region
        or manifest_region(path.parent, stack)
        or os.environ.get("AWS_DEFAULT_REGION")
        or os.environ.get("AWS_REGION")
        or DEFAULT_REGION
    )
    tpl = Template(raw, source=str(path), region=region, stack=stack)
    metadata = path.with_name(f"{stack}.metadata.json")
    if metadata.exists():
        try:
            tpl.add_assembly_metadata(json.loads(metadata.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise TemplateError(f"cannot read {metadata}: {exc}") from exc
    return tpl
