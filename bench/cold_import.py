"""cold_import: each handler module's import time in a fresh interpreter, against `import boto3` measured
in the same run.

Every sample is a new `python -I` process with an empty environment (no AWS or waguard keys: handler
modules must import with none) and `sys.path` = [lambdas, site-packages], timing only the `import`
statement. Modules are sampled round-robin (so drift on the machine hits all alike) after warm-up runs
that fill the OS file cache and write the bytecode caches; the figure is the median of the samples.
`-X importtime` then names the heaviest packages each handler pulls in.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from bench.stack import LAMBDAS, median

BASELINE = "boto3"
HANDLERS = {
    "webhook": "handlers.webhook",
    "processor": "handlers.processor",
    "messages-api": "handlers.messages_api",
    "contacts-api": "handlers.contacts_api",
    "sender": "handlers.sender",
}
GOALS = {"webhook": 1.3}
DEFAULT_GOAL = 2.0
_TIMER = (
    "import sys, time\n"
    "sys.path.insert(0, {lambdas!r})\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "print(time.perf_counter() - t)\n"
)


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def sample(module: str) -> float:
    code = _TIMER.format(lambdas=str(LAMBDAS), module=module)
    out = subprocess.run(
        [sys.executable, "-I", "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"import {module} failed with no environment:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def importtime(module: str) -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, dotted name) of every module `import module` loads."""
    code = f"import sys; sys.path.insert(0, {str(LAMBDAS)!r}); import {module}"
    out = subprocess.run(
        [sys.executable, "-I", "-X", "importtime", "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cum_us, name = (part.strip() for part in [line[:12], *line[12:].split("|")])
        rows.append((int(self_us), int(cum_us), name.strip()))
    return rows


def heaviest(module: str, baseline_packages: set[str], top: int = 6) -> list[dict[str, Any]]:
    """The top-level packages with the most import time (self time summed over their modules)."""
    by_package: dict[str, int] = {}
    for self_us, _, name in importtime(module):
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0) + self_us
    ranked = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [
        {"package": p, "ms": round(us / 1000, 1), "also_in_boto3": p in baseline_packages} for p, us in ranked
    ]


def run(samples: int = 15, warmup: int = 2) -> dict[str, Any]:
    modules = [BASELINE, *HANDLERS.values()]
    for _ in range(warmup):
        for module in modules:
            sample(module)
    times: dict[str, list[float]] = {m: [] for m in modules}
    for i in range(samples):
        order = modules[i % len(modules) :] + modules[: i % len(modules)]
        for module in order:
            times[module].append(sample(module))
    base = median(times[BASELINE])
    boto3_packages = {name.split(".")[0] for _, _, name in importtime(BASELINE)}
    handlers: dict[str, Any] = {}
    for name, module in HANDLERS.items():
        ms = median(times[module])
        goal = GOALS.get(name, DEFAULT_GOAL)
        ratio = ms / base
        handlers[name] = {
            "module": module,
            "median_ms": round(ms * 1000, 1),
            "min_ms": round(min(times[module]) * 1000, 1),
            "ratio_to_boto3": round(ratio, 2),
            "goal_ratio": goal,
            "met": ratio <= goal,
            "heaviest_packages": heaviest(module, boto3_packages),
        }
    return {
        "method": f"median of {samples} fresh `python -I` processes per module, empty environment, "
        "sys.path=[lambdas]+site-packages, round-robin order after warm-up; import statement timed only",
        "python": sys.version.split()[0],
        "baseline": {
            "module": BASELINE,
            "median_ms": round(base * 1000, 1),
            "min_ms": round(min(times[BASELINE]) * 1000, 1),
        },
        "handlers": handlers,
        "met": all(h["met"] for h in handlers.values()),
    }
