"""The building blocks of the promises: a control check (graded or shown for information), a promise, and
the helpers that grade a control over a list of resources or a route."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waguard.report.inputs import Facts
from waguard.report.packs import RulePacks


@dataclass
class Check:
    ok: bool | None  # None: evidence shown for information, not a pass/fail control
    text: str


@dataclass
class Promise:
    title: str
    means: str
    checks: list[Check]
    evidence: list[str]  # anchors of the sections with the evidence

    @property
    def kept(self) -> bool:
        graded = [ch for ch in self.checks if ch.ok is not None]
        return bool(graded) and all(ch.ok for ch in graded)


def _ratio(items: list[Any], pred: Callable[[Any], bool]) -> tuple[int, int, list[Any]]:
    bad = [x for x in items if not pred(x)]
    return len(items) - len(bad), len(items), bad


def count_check(
    label: str,
    items: list[Any],
    pred: Callable[[Any], bool],
    name: Callable[[Any], str],
    empty_ok: bool = False,
) -> Check:
    good, total, bad = _ratio(items, pred)
    if total == 0:
        return Check(empty_ok, f"{label}: none in the template")
    text = f"{good}/{total} {label}"
    if bad:
        text += " (not: " + ", ".join(name(x) for x in bad) + ")"
    return Check(not bad, text)


def _route(facts: Facts, method: str, suffix: str) -> list[Any]:
    return [r for r in facts.exposure.routes if r.method == method and r.path.endswith(suffix)]


def route_check(facts: Facts, method: str, suffix: str, what: str, auth: str | None = "AWS_IAM") -> Check:
    """A route exists (and, unless `auth` is None, has that authorization)."""
    routes = _route(facts, method, suffix)
    if not routes:
        return Check(False, f"{what}: no {method} route ending in {suffix} in the template")
    r = routes[0]
    callers = [
        p.personnel_role for p in facts.principals if p.personnel_role and f"{r.method} {r.path}" in p.routes
    ]
    ok = auth is None or r.authorization == auth
    who = f"; personnel allowed: {', '.join(callers)}" if callers else ""
    return Check(ok, f"{what}: {r.method} {r.path} with {r.authorization} auth -> {r.integration}{who}")


def runtime_check(packs: RulePacks, l1_acked: list[Any], runtimes: list[str], cfg: dict[str, Any]) -> Check:
    """Runtime currency, from cdk-nag's AwsSolutions-L1 (latest Lambda runtime): a pass when the rule found
    nothing, a gap when it has an open finding, shown with its reason when it was acknowledged."""
    versions = (
        f"functions on {', '.join(runtimes) or 'no runtime'}; "
        f"Powertools {cfg.get('powertoolsVersion', '?')}, "
        f"Graph API {cfg.get('graphApiVersion', '?')}"
    )
    open_l1 = [f for p in packs.packs for f in p.open if f.rule.endswith("-L1")]
    ran_clean = packs.found and not open_l1
    if ran_clean and l1_acked:
        reasons = sorted({a.reason for a in l1_acked})
        return Check(
            None,
            f"{versions}: not the newest Lambda runtime, acknowledged (AwsSolutions-L1): "
            + " ".join(reasons),
        )
    if ran_clean:
        return Check(ran_clean, f"{versions}: the latest Lambda runtime (no AwsSolutions-L1 finding)")
    return Check(ran_clean, f"{versions}: latest-runtime rule (AwsSolutions-L1) not run or has open findings")


def facts_trail_buckets(facts: Facts) -> list[Any]:
    buckets = {t.bucket for t in facts.trails}
    return [s for s in facts.inventory.stores if s.kind == "bucket" and s.logical_id in buckets]
