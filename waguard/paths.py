"""Where things are in the repository, and the one way `waguard/` reaches the Lambda code's constants.

The Lambda asset root is `<repo>/lambdas` (modules import as `shared.constants`, `handlers.webhook`);
the local runtime puts it first on `sys.path`, exactly as Lambda puts the asset root on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
CDK_OUT = ROOT / "cdk.out"
STATE_DIR = ROOT / ".waguard"
LOG_DIR = STATE_DIR / "logs"


def ensure_lambdas_on_path() -> None:
    """Put `<repo>/lambdas` first on `sys.path` (idempotent)."""
    root = str(LAMBDAS)
    if not sys.path or sys.path[0] != root:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)


def ensure_root_on_path() -> None:
    """Put the repository root on `sys.path` (for `infra`, whose settings the report reads)."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))


def constants() -> ModuleType:
    """`lambdas/shared/constants.py` as the Lambda code sees it (`shared.constants`)."""
    ensure_lambdas_on_path()
    from shared import constants as c

    return c


def python() -> str:
    """The project's interpreter (`.venv/bin/python`), or the running one outside a venv checkout."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable
