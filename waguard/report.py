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
import hashlib
import html
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from waguard.cfn import Template, load, manifest_region
from waguard.report_facts import (
    Exposure,
    Inventory,
    Principal,
    RulePacks,
    TrailFact,
    access_matrix,
    audit_trails,
    deployed_settings,
    exposure,
    function_name,
    inventory,
    rule_packs,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK = "Waguard"


# ---- document model (rendered to Markdown or HTML) ---------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    text: str
    kind: str  # "ok", "gap", "warn", "info"


Cell = str | Badge


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[Cell]


@dataclass
class Heading:
    text: str
    level: int = 3
    anchor: str | None = None


Block = Table | Para | Bullets | Heading


@dataclass
class Section:
    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    meta: list[tuple[str, str]]
    summary: list[Cell]
    sections: list[Section]


# ---- inputs --------------------------------------------------------------------------------------


@dataclass
class Inputs:
    template: Template
    template_path: Path
    cdk_json_path: Path
    cdk_out: Path
    stack: str
    settings: dict[str, Any]  # the `waguard` context object of cdk.json
    retention: dict[str, int]  # every data class, keys included (computed as infra does)
    constants: ModuleType
    region: str | None  # the stack's environment region in the cloud assembly


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _retention(root: Path, cdk_json: Path, settings: dict[str, Any]) -> dict[str, int]:
    """Retention of every data class as infra computes it (infra/config.py is the one source)."""
    try:
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        from infra.config import WaguardConfig

        return dict(WaguardConfig.from_cdk_json(cdk_json).retention)
    except ImportError:
        # Outside a checkout (no infra package): the configured classes only; keys come from the template.
        return dict(settings.get("retentionDays", {}))


def load_inputs(template_path: Path, cdk_json_path: Path) -> Inputs:
    root = cdk_json_path.resolve().parent
    constants = _load_module("waguard_report_constants", root / "lambdas" / "shared" / "constants.py")
    data = json.loads(cdk_json_path.read_text(encoding="utf-8"))
    settings = (data.get("context") or {}).get("waguard") or {}
    template = load(template_path)
    cdk_out = template_path.parent
    stack = template_path.name.removesuffix(".template.json")
    retention = _retention(root, cdk_json_path, settings)
    deployed = deployed_settings(template)
    if constants.CLASS_KEYS not in retention and deployed:
        keys = (deployed.get("retention_days") or {}).get(constants.CLASS_KEYS)
        if keys:
            retention[constants.CLASS_KEYS] = int(keys)
    region = manifest_region(cdk_out, stack)
    return Inputs(
        template=template,
        template_path=template_path,
        cdk_json_path=cdk_json_path,
        cdk_out=cdk_out,
        stack=stack,
        settings=settings,
        retention=retention,
        constants=constants,
        region=region,
    )


# ---- facts ---------------------------------------------------------------------------------------


@dataclass
class Facts:
    inputs: Inputs
    inventory: Inventory
    principals: list[Principal]
    exposure: Exposure
    trails: list[TrailFact]
    packs: RulePacks
    deployed: dict[str, Any] | None


def compute(inputs: Inputs) -> Facts:
    c = inputs.constants
    tpl = inputs.template
    packs = rule_packs(tpl, inputs.cdk_out, inputs.stack)
    return Facts(
        inputs=inputs,
        inventory=inventory(tpl, c.TABLE_CLASSES, inputs.retention, c.ENV_TABLE),
        principals=access_matrix(tpl, packs.acks),
        exposure=exposure(tpl),
        trails=audit_trails(tpl),
        packs=packs,
        deployed=deployed_settings(tpl),
    )


# ---- the eight promises --------------------------------------------------------------------------


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


def _count_check(
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


def _route_check(facts: Facts, method: str, suffix: str, what: str, auth: str | None = "AWS_IAM") -> Check:
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


def promises(facts: Facts) -> list[Promise]:
    inv, c, cfg = facts.inventory, facts.inputs.constants, facts.inputs.settings
    tables = inv.tables
    stores = {k: [s for s in inv.stores if s.kind == k] for k in ("queue", "bucket", "log group", "secret")}
    by_name = {t.name: t for t in tables if t.name}
    tname = lambda t: t.name or t.logical_id  # noqa: E731
    sname = lambda s: s.logical_id  # noqa: E731
    routes = facts.exposure.routes
    out: list[Promise] = []

    # 1. Encryption
    policies = [a.security_policy for a in facts.exposure.apis]
    tls_ok = bool(facts.exposure.apis) and all(p and p not in ("TLS_1_0",) for p in policies)
    out.append(
        Promise(
            "Encryption",
            "Personal data is encrypted at rest under keys the business controls, and in transit.",
            [
                _count_check(
                    "tables SSE with a customer-managed KMS key", tables, lambda t: t.key.is_cmk, tname
                ),
                _count_check(
                    "queues encrypted with a customer-managed KMS key",
                    stores["queue"],
                    lambda s: s.key.is_cmk,
                    sname,
                ),
                _count_check(
                    "log groups encrypted with a customer-managed KMS key",
                    stores["log group"],
                    lambda s: s.key.is_cmk,
                    sname,
                    empty_ok=True,
                ),
                _count_check(
                    "buckets encrypted with a customer-managed KMS key (SSE-S3 where S3 requires it: "
                    "server-access-log destinations)",
                    stores["bucket"],
                    lambda s: s.key.is_cmk or (s.access_log_destination and s.key.kind == "SSE-S3"),
                    sname,
                    empty_ok=True,
                ),
                _count_check(
                    "secrets encrypted with a customer-managed KMS key",
                    stores["secret"],
                    lambda s: s.key.is_cmk,
                    sname,
                ),
                _count_check(
                    "KMS keys with automatic rotation", inv.keys, lambda k: k.rotation, lambda k: k.logical_id
                ),
                _count_check(
                    "queues deny non-TLS access (aws:SecureTransport)",
                    stores["queue"],
                    lambda s: bool(s.tls_only),
                    sname,
                ),
                _count_check(
                    "buckets deny non-TLS access (aws:SecureTransport)",
                    stores["bucket"],
                    lambda s: bool(s.tls_only),
                    sname,
                    empty_ok=True,
                ),
                Check(
                    tls_ok,
                    "API minimum TLS: "
                    + (
                        ", ".join(
                            f"{a.logical_id} {a.security_policy or 'not set'}" for a in facts.exposure.apis
                        )
                        or "no API"
                    ),
                ),
                Check(
                    None,
                    "field-level envelope encryption of personal attributes with a per-contact key: "
                    + (
                        "keys table " + by_name[c.TABLE_KEYS].logical_id
                        if c.TABLE_KEYS in by_name
                        else "no keys table"
                    ),
                ),
            ],
            ["inventory", "keys"],
        )
    )

    # 2. Limited access
    fn_roles = [p for p in facts.principals if p.kind == "function role"]
    functions = facts.inputs.template.of_type("AWS::Lambda::Function")
    waguard_fns = [f for f in functions if function_name(f) in c.HANDLERS]
    role_of = {function_name(f): facts.inputs.template.target(f.prop("Role")) for f in waguard_fns}
    shared = {r for r in role_of.values() if list(role_of.values()).count(r) > 1}
    wild = [g for p in facts.principals for g in p.allows if g.flags]
    unacked = [g for g in wild if not g.acknowledged]
    star = [g for g in wild if g.action == "*"]
    personnel = {p.personnel_role: p for p in facts.principals if p.personnel_role}
    missing_roles = [r for r in c.ROLES if r not in personnel]
    overlap = set()
    names = [r for r in c.ROLES if r in personnel]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            overlap |= set(personnel[a].routes) & set(personnel[b].routes)
    out.append(
        Promise(
            "Limited access",
            "Each component and each person can reach only the data its job needs.",
            [
                Check(
                    bool(waguard_fns) and not shared,
                    f"{len(waguard_fns)} functions, {len(set(role_of.values()))} distinct execution roles"
                    + (
                        f" (shared: {', '.join(sorted(map(str, shared)))})"
                        if shared
                        else " (one role per function)"
                    ),
                ),
                Check(not star, f"no statement allows every action ('*'): {len(star)} found"),
                Check(
                    not unacked,
                    f"{len(wild)} wildcard grants, {len(wild) - len(unacked)} acknowledged with a reason"
                    + (
                        ": unacknowledged "
                        + "; ".join(f"{g.principal} {g.action} on {g.resource}" for g in unacked[:8])
                        if unacked
                        else ""
                    ),
                ),
                Check(
                    not missing_roles,
                    "personnel roles in the template: "
                    + ", ".join(f"{r} -> {len(personnel[r].routes)} routes" for r in names)
                    + (f"; missing {', '.join(missing_roles)}" if missing_roles else ""),
                ),
                Check(
                    not overlap and not missing_roles,
                    "separation of duties: no route callable by two personnel roles"
                    + (f" (shared: {', '.join(sorted(overlap))})" if overlap else ""),
                ),
                Check(
                    None,
                    f"{len(fn_roles)} function roles, "
                    f"{sum(len(p.allows) for p in fn_roles)} allowed action/resource pairs",
                ),
            ],
            ["access"],
        )
    )

    # 3. Consent
    consent = by_name.get(c.TABLE_CONSENT)
    ret = facts.inputs.retention
    out.append(
        Promise(
            "Consent",
            "Templates go only to contacts who opted in; opting out works at once and is recorded.",
            [
                Check(
                    consent is not None,
                    "consent ledger: "
                    + (
                        f"table {consent.logical_id}, {consent.key.text}, "
                        f"retention {ret.get(c.CLASS_CONSENT)} days, "
                        f"PITR {'on' if consent.pitr else 'off'}"
                        if consent
                        else "no consent table"
                    ),
                ),
                Check(
                    ret.get(c.CLASS_CONSENT, 0) >= ret.get(c.CLASS_MESSAGES, 0),
                    f"consent evidence outlives the messages it allows: {ret.get(c.CLASS_CONSENT)} >= "
                    f"{ret.get(c.CLASS_MESSAGES)} days",
                ),
                _route_check(facts, "PUT", "/consent", "recording consent"),
                _route_check(facts, "GET", "/consent", "reading consent"),
                Check(
                    bool(cfg.get("optOutKeywords")),
                    f"{len(cfg.get('optOutKeywords', []))} opt-out keywords and "
                    f"{len(cfg.get('optInKeywords', []))} opt-in keywords configured in cdk.json",
                ),
                _route_check(
                    facts, "POST", "/webhook", "opt-outs arrive through the signed webhook", auth=None
                ),
            ],
            ["exposure", "inventory"],
        )
    )

    # 4. Deletion and retention
    deployed = (facts.deployed or {}).get("retention_days")
    drift = deployed is not None and any(deployed.get(k) != v for k, v in ret.items())
    keys_table = by_name.get(c.TABLE_KEYS)
    trail_days = cfg.get("trailRetentionDays")
    log_days = cfg.get("logRetentionDays")
    out.append(
        Promise(
            "Deletion and retention",
            "Nothing is kept forever: every item expires with its data class; erasure reaches backups.",
            [
                _count_check(
                    f"tables with TTL on '{c.TTL_ATTRIBUTE}'",
                    tables,
                    lambda t: t.ttl_enabled and t.ttl_attribute == c.TTL_ATTRIBUTE,
                    tname,
                ),
                _count_check(
                    "tables whose every data class has a retention in cdk.json",
                    tables,
                    lambda t: bool(t.classes) and all(v for v in t.retention.values()),
                    tname,
                ),
                Check(
                    deployed is not None and not drift,
                    "retention the functions receive (WG_SETTINGS) equals cdk.json"
                    if deployed is not None and not drift
                    else "no WG_SETTINGS in the template"
                    if deployed is None
                    else f"DRIFT: deployed {deployed} vs cdk.json {ret}",
                ),
                _count_check(
                    f"log groups with a retention period (cdk.json logRetentionDays {log_days})",
                    stores["log group"],
                    lambda s: s.retention_days is not None,
                    sname,
                    empty_ok=True,
                ),
                _count_check(
                    "buckets with a lifecycle expiry",
                    stores["bucket"],
                    lambda s: s.retention_days is not None,
                    sname,
                    empty_ok=True,
                ),
                Check(
                    all(t.retention_days == trail_days for t in facts_trail_buckets(facts))
                    if facts_trail_buckets(facts)
                    else False,
                    f"trail bucket expiry equals cdk.json trailRetentionDays ({trail_days} days): "
                    + (
                        ", ".join(f"{s.logical_id} {s.retention}" for s in facts_trail_buckets(facts))
                        or "no trail bucket"
                    ),
                ),
                Check(
                    keys_table is not None and not keys_table.pitr and not keys_table.backup_plans,
                    "crypto-shredding reaches backups: keys table "
                    + (
                        f"{keys_table.logical_id} has PITR {'on' if keys_table.pitr else 'off'}"
                        if keys_table
                        else "missing"
                    ),
                ),
                _route_check(facts, "DELETE", "}", "erasure on request"),
                Check(
                    None,
                    "backups: "
                    + (
                        ", ".join(
                            f"{b.plan} keeps {len(b.resources)} tables {b.retention_days} days"
                            for b in inv.backups
                        )
                        or "no AWS Backup plan"
                    )
                    + f"; PITR on {sum(t.pitr for t in tables)}/{len(tables)} tables; "
                    "erased contacts stay unreadable in "
                    "backups because their keys are shredded in the keys table, which has neither",
                ),
                Check(
                    None,
                    "queues keep messages at most "
                    + (
                        f"{max(s.retention_days or 0 for s in stores['queue']):g} days"
                        if stores["queue"]
                        else "n/a"
                    ),
                ),
            ],
            ["inventory"],
        )
    )

    # 5. GDPR/CCPA
    allowed = cfg.get("allowedRegions", [])
    region = facts.inputs.region or cfg.get("region")
    keep = cfg.get("keep", {})
    out.append(
        Promise(
            "GDPR/CCPA",
            "Data-subject rights (access, portability, erasure, opt-out of sale/marketing) "
            "and data residency.",
            [
                _route_check(
                    facts, "GET", "/export", "right of access and portability (Art. 15/20, CCPA know)"
                ),
                _route_check(facts, "DELETE", "}", "right to erasure (Art. 17, CCPA delete)"),
                Check(
                    bool(region) and region in allowed,
                    f"stack region {region} is in cdk.json allowedRegions {allowed}",
                ),
                Check(
                    None,
                    "data minimization (cdk.json keep): " + ", ".join(f"{k}={v}" for k, v in keep.items()),
                ),
                Check(
                    bool(by_name.get(c.TABLE_AUDIT)),
                    "erasure receipts and DSR actions kept in the audit table "
                    + (by_name[c.TABLE_AUDIT].logical_id if c.TABLE_AUDIT in by_name else "(missing)"),
                ),
            ],
            ["exposure", "inventory"],
        )
    )

    # 6. Authentication and access control
    business = [r for r in routes if not r.path.startswith("/webhook")]
    open_routes = [r for r in routes if r.authorization == "NONE"]
    stages = [s for a in facts.exposure.apis for s in a.stages]
    out.append(
        Promise(
            "Authentication and access control",
            "Every caller is authenticated; business routes need IAM (SigV4); "
            "the webhook needs Meta's signature.",
            [
                _count_check(
                    "business routes with AWS_IAM authorization",
                    business,
                    lambda r: r.authorization == "AWS_IAM",
                    lambda r: f"{r.method} {r.path}",
                ),
                Check(
                    all(r.path.startswith("/webhook") for r in open_routes),
                    "routes without IAM: "
                    + (", ".join(f"{r.method} {r.path}" for r in open_routes) or "none")
                    + " (the webhook verifies Meta's X-Hub-Signature-256 HMAC in code "
                    "before storing anything)",
                ),
                _count_check(
                    "API stages behind a WAF web ACL", stages, lambda s: bool(s.wafs), lambda s: s.logical_id
                ),
                _count_check(
                    "routes throttled",
                    routes,
                    lambda r: facts.exposure.route_throttle.get(r.resource_id) is not None,
                    lambda r: f"{r.method} {r.path}",
                ),
                _count_check("personnel roles defined", list(c.ROLES), lambda r: r in personnel, str),
            ],
            ["exposure", "access"],
        )
    )

    # 7. Audits and updates
    trails = facts.trails
    table_ids = [t.logical_id for t in tables]
    covered = [t for t in tables if any(tr.all_tables or t.logical_id in tr.covered for tr in trails)]
    packs = facts.packs
    open_findings = sum(len(p.open) for p in packs.packs)
    runtimes = sorted({str(f.prop("Runtime")) for f in waguard_fns})
    l1_acked = [a for a in packs.acks if a.rule.endswith("-L1")]
    out.append(
        Promise(
            "Audits and updates",
            "Who did what is recorded and tamper-evident; "
            "the deployment is checked against rule packs and kept current.",
            [
                Check(
                    bool(trails) and all(t.logging and t.multi_region and t.log_validation for t in trails),
                    "CloudTrail: "
                    + (
                        "; ".join(
                            f"{t.logical_id} logging={t.logging} multi-region={t.multi_region} "
                            f"log-file validation={t.log_validation} {t.key.text}"
                            for t in trails
                        )
                        or "no trail"
                    ),
                ),
                Check(
                    bool(trails) and all(t.key.is_cmk for t in trails),
                    "trail logs encrypted with a customer-managed key",
                ),
                Check(
                    bool(table_ids) and len(covered) == len(table_ids),
                    f"DynamoDB data events recorded for {len(covered)}/{len(table_ids)} tables",
                ),
                Check(
                    c.TABLE_AUDIT in by_name,
                    "application audit log (who called which route, no personal data): "
                    + (
                        f"table {by_name[c.TABLE_AUDIT].logical_id}, {ret.get(c.CLASS_AUDIT)} days"
                        if c.TABLE_AUDIT in by_name
                        else "missing"
                    ),
                ),
                Check(
                    packs.found and len(packs.packs) >= 4 and open_findings == 0,
                    f"{len(packs.packs)} cdk-nag rule packs run at synth "
                    f"({', '.join(p.name for p in packs.packs) or 'none'}), "
                    f"{open_findings} open findings, {sum(p.suppressed for p in packs.packs)} acknowledged",
                ),
                _runtime_check(packs, l1_acked, runtimes, cfg),
            ],
            ["audit", "packs"],
        )
    )

    # 8. Transparency
    no_reason = [a for a in packs.acks if not a.reason.strip()]
    out.append(
        Promise(
            "Transparency",
            "The business can show what it holds, why, for how long, and who may touch it.",
            [
                Check(
                    True,
                    f"this report is computed from {facts.inputs.template_path.name} "
                    f"(sha256 {_sha256(facts.inputs.template_path)[:16]}) and cdk.json, not written by hand",
                ),
                Check(
                    not inv.unmapped_tables and bool(tables),
                    f"every table mapped to its data classes: "
                    f"{len(tables) - len(inv.unmapped_tables)}/{len(tables)}"
                    + (f" (unmapped: {', '.join(inv.unmapped_tables)})" if inv.unmapped_tables else ""),
                ),
                Check(
                    not no_reason,
                    f"{len(packs.acks)} rule acknowledgements, "
                    f"{len(packs.acks) - len(no_reason)} with a reason",
                ),
                _route_check(facts, "GET", "/export", "a contact can be shown everything held about them"),
            ],
            ["inventory", "access", "packs"],
        )
    )
    return out


def _runtime_check(packs: RulePacks, l1_acked: list[Any], runtimes: list[str], cfg: dict[str, Any]) -> Check:
    """Runtime currency, from cdk-nag's AwsSolutions-L1 (latest Lambda runtime): a pass when the rule found
    nothing, a gap when it has an open finding, shown with its reason when it was acknowledged."""
    versions = (
        f"functions on {', '.join(runtimes) or 'no runtime'}; "
        f"Powertools {cfg.get('powertoolsVersion', '?')}, "
        f"Graph API {cfg.get('graphApiVersion', '?')}"
    )
    open_l1 = [f for p in packs.packs for f in p.open if f.rule.endswith("-L1")]
    if not packs.found or open_l1:
        return Check(False, f"{versions}: latest-runtime rule (AwsSolutions-L1) not run or has open findings")
    if l1_acked:
        reasons = sorted({a.reason for a in l1_acked})
        return Check(
            None,
            f"{versions}: not the newest Lambda runtime, acknowledged (AwsSolutions-L1): "
            + " ".join(reasons),
        )
    return Check(True, f"{versions}: the latest Lambda runtime (no AwsSolutions-L1 finding)")


def facts_trail_buckets(facts: Facts) -> list[Any]:
    buckets = {t.bucket for t in facts.trails}
    return [s for s in facts.inventory.stores if s.kind == "bucket" and s.logical_id in buckets]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- building the document -----------------------------------------------------------------------


def _yn(value: bool | None, yes: str = "yes", no: str = "no") -> Badge:
    if value is None:
        return Badge("n/a", "info")
    return Badge(yes if value else no, "ok" if value else "gap")


def _key_cell(key: Any) -> Cell:
    return Badge(key.text, "ok" if key.is_cmk else "warn")


def build(facts: Facts) -> Document:
    inp = facts.inputs
    tpl = inp.template
    plist = promises(facts)
    kept = sum(p.kept for p in plist)
    meta = [
        ("stack", inp.stack),
        ("template", f"{inp.template_path.name} sha256 {_sha256(inp.template_path)}"),
        ("settings", f"{inp.cdk_json_path.name} sha256 {_sha256(inp.cdk_json_path)}"),
        ("region", str(inp.region or inp.settings.get("region"))),
        ("resources", str(len(tpl.resources))),
    ]
    summary: list[Cell] = [
        Badge(f"{kept}/{len(plist)} promises kept", "ok" if kept == len(plist) else "gap"),
        Badge(f"{len(facts.inventory.tables)} tables", "info"),
        Badge(f"{len(facts.principals)} IAM principals", "info"),
        Badge(f"{len(facts.exposure.routes)} API routes", "info"),
        Badge(
            f"{len(facts.packs.packs)} rule packs, "
            f"{sum(len(p.open) for p in facts.packs.packs)} open findings",
            "ok" if facts.packs.found and not any(p.open for p in facts.packs.packs) else "gap",
        ),
    ]
    sections = [
        _promises_section(plist),
        _inventory_section(facts),
        _keys_section(facts),
        _access_section(facts),
        _exposure_section(facts),
        _audit_section(facts),
        _packs_section(facts),
    ]
    return Document(
        title=f"waguard data-protection report: {inp.stack}", meta=meta, summary=summary, sections=sections
    )


_EVIDENCE_TITLES = {
    "inventory": "Data inventory",
    "keys": "KMS keys",
    "access": "Access matrix",
    "exposure": "Exposure",
    "audit": "Audit",
    "packs": "Rule packs",
}


def _promises_section(plist: list[Promise]) -> Section:
    sec = Section("promises", "The eight promises")
    sec.blocks.append(
        Para(
            "Each promise of a WhatsApp Business deployment, with the controls found in the synthesized "
            "template that keep it. A promise is 'kept' when every graded control is present; "
            "'gap' names what is missing."
        )
    )
    sec.blocks.append(
        Table(
            ["#", "promise", "status", "controls found"],
            [
                [
                    str(i),
                    p.title,
                    Badge("kept", "ok") if p.kept else Badge("gap", "gap"),
                    f"{sum(1 for ch in p.checks if ch.ok)}/"
                    f"{sum(1 for ch in p.checks if ch.ok is not None)} controls",
                ]
                for i, p in enumerate(plist, 1)
            ],
        )
    )
    for i, p in enumerate(plist, 1):
        sec.blocks.append(Heading(f"{i}. {p.title}: {'kept' if p.kept else 'gap'}"))
        sec.blocks.append(
            Para(p.means + " Evidence: " + ", ".join(f"[{_EVIDENCE_TITLES[e]}](#{e})" for e in p.evidence))
        )
        sec.blocks.append(
            Bullets(
                [
                    Badge(
                        ("OK " if ch.ok else "GAP " if ch.ok is False else "INFO ") + ch.text,
                        "ok" if ch.ok else "gap" if ch.ok is False else "info",
                    )
                    for ch in p.checks
                ]
            )
        )
    return sec


def _inventory_section(facts: Facts) -> Section:
    inv = facts.inventory
    sec = Section("inventory", "Data inventory")
    sec.blocks.append(
        Para(
            "Every table, queue, bucket, log group and secret in the template: what it holds, "
            "its KMS key, its "
            "retention and its backups. Table retention is the TTL of each data class from cdk.json "
            "(`retentionDays`); every item carries it in `expires_at`."
        )
    )
    rows: list[list[Cell]] = []
    for t in inv.tables:
        retention = ", ".join(
            f"{cls} {days} days" if days else f"{cls} NO RETENTION" for cls, days in t.retention.items()
        )
        rows.append(
            [
                t.name or Badge("unmapped", "gap"),
                t.logical_id,
                retention or Badge("no data class", "gap"),
                Badge(f"{t.ttl_attribute} on", "ok") if t.ttl_enabled else Badge("no TTL", "gap"),
                _key_cell(t.key),
                _backup_cell(facts, t),
                _yn(t.deletion_protection, "on", "off"),
                ", ".join(t.indexes) or "-",
            ]
        )
    sec.blocks.append(Heading("Tables (DynamoDB)"))
    sec.blocks.append(
        Table(
            [
                "table",
                "logical id",
                "data classes and retention (TTL)",
                "TTL",
                "KMS key",
                "backups",
                "deletion protection",
                "indexes",
            ],
            rows,
        )
    )
    for kind, title in (
        ("queue", "Queues (SQS)"),
        ("bucket", "Buckets (S3)"),
        ("log group", "Log groups (CloudWatch Logs)"),
        ("secret", "Secrets (Secrets Manager)"),
    ):
        items = [s for s in inv.stores if s.kind == kind]
        sec.blocks.append(Heading(title))
        if not items:
            sec.blocks.append(Para(f"No {kind}s in the template."))
            continue
        headers = ["logical id", "holds", "KMS key", "retention", "backups"]
        if kind in ("queue", "bucket"):
            headers.append("TLS only")
        if kind == "bucket":
            headers.append("public access blocked")
        headers.append("notes")
        rows = []
        for s in items:
            row: list[Cell] = [
                s.logical_id,
                s.holds,
                _key_cell(s.key),
                s.retention
                if s.retention_days is not None or kind == "secret"
                else Badge(s.retention, "gap"),
                s.backups,
            ]
            if kind in ("queue", "bucket"):
                row.append(_yn(s.tls_only))
            if kind == "bucket":
                row.append(_yn(s.public_access_blocked))
            row.append("; ".join(s.notes) or "-")
            rows.append(row)
        sec.blocks.append(Table(headers, rows))
    sec.blocks.append(Heading("Backups (AWS Backup)"))
    if inv.backups:
        sec.blocks.append(
            Table(
                ["plan", "rules", "vault key", "resources"],
                [
                    [
                        b.plan,
                        "; ".join(b.rules),
                        ", ".join(k.text for k in b.vault_keys) or "-",
                        ", ".join(b.resources) or "-",
                    ]
                    for b in inv.backups
                ],
            )
        )
    else:
        sec.blocks.append(
            Para("No AWS Backup plans in the template (point-in-time recovery is shown per table).")
        )
    return sec


def _backup_cell(facts: Facts, table: Any) -> Cell:
    parts = [f"PITR on ({table.pitr_days or 35} days)" if table.pitr else "PITR off"]
    for plan in facts.inventory.backups:
        if table.logical_id in plan.resources:
            kept = f"{plan.retention_days} days" if plan.retention_days is not None else "until deleted"
            parts.append(f"AWS Backup {plan.plan} (kept {kept})")
    return Badge("; ".join(parts), "ok" if len(parts) > 1 or table.pitr else "info")


def _keys_section(facts: Facts) -> Section:
    sec = Section("keys", "KMS keys")
    sec.blocks.append(Para("Customer-managed keys in the template, their rotation and what uses them."))
    sec.blocks.append(
        Table(
            ["key", "rotation", "aliases", "used by", "key policy allows"],
            [
                [
                    k.logical_id,
                    _yn(
                        k.rotation, f"on{f' every {k.rotation_days} days' if k.rotation_days else ''}", "off"
                    ),
                    ", ".join(k.aliases) or "-",
                    ", ".join(k.used_by) or "-",
                    "; ".join(k.key_policy_principals) or "-",
                ]
                for k in facts.inventory.keys
            ],
        )
    )
    return sec


def _flag_cell(flags: tuple[str, ...], ack: str | None) -> Cell:
    if not flags:
        return ""
    text = "wildcard: " + ", ".join(flags)
    if ack:
        return Badge(f"{text}; acknowledged: {ack}", "warn")
    return Badge(f"{text}; NOT acknowledged", "gap")


def _access_section(facts: Facts) -> Section:
    sec = Section("access", "Access matrix")
    sec.blocks.append(
        Para(
            "Every IAM role (and personnel policy) in the template with the actions its identity policies "
            "allow or deny, on which resources. References are shown as ${LogicalId} / ${LogicalId.Attr}. "
            "Wildcards are flagged "
            "with the rule-pack acknowledgement that covers them."
        )
    )
    personnel = [p for p in facts.principals if p.personnel_role]
    sec.blocks.append(Heading("Personnel roles"))
    routes = [r for r in facts.exposure.routes if r.authorization == "AWS_IAM"]
    if personnel:
        sec.blocks.append(
            Table(
                ["role", "IAM role", "may call", "may not call"],
                [
                    [
                        p.personnel_role or "",
                        p.logical_id,
                        ", ".join(p.routes) or "no route",
                        ", ".join(
                            f"{r.method} {r.path}" for r in routes if f"{r.method} {r.path}" not in p.routes
                        )
                        or "-",
                    ]
                    for p in personnel
                ],
            )
        )
    else:
        sec.blocks.append(Para("No personnel policies (metadata `waguard:role`) in the template."))
    sec.blocks.append(Heading("Roles and their permissions"))
    summary: list[list[Cell]] = []
    for p in facts.principals:
        wild = [g for g in p.allows if g.flags]
        summary.append(
            [
                f"[{p.logical_id}](#{_anchor(p.logical_id)})",
                p.label,
                str(len(p.allows)),
                _flag_count(wild),
                ", ".join(p.assumed_by) or "-",
            ]
        )
    sec.blocks.append(
        Table(["principal", "who", "allowed action/resource pairs", "wildcards", "assumed by"], summary)
    )
    for p in facts.principals:
        sec.blocks.append(Heading(f"{p.logical_id}: {p.label}", level=4, anchor=_anchor(p.logical_id)))
        rows = _grant_rows(p)
        if rows:
            sec.blocks.append(Table(["effect", "actions", "resources", "condition", "flags", "policy"], rows))
        else:
            sec.blocks.append(Para("No identity policy in the template."))
    return sec


def _anchor(logical_id: str) -> str:
    return "p-" + logical_id.lower()


def _flag_count(wild: list[Any]) -> Cell:
    if not wild:
        return "none"
    unacked = [g for g in wild if not g.acknowledged]
    if unacked:
        return Badge(f"{len(wild)} ({len(unacked)} NOT acknowledged)", "gap")
    return Badge(f"{len(wild)} (all acknowledged)", "warn")


def _grant_rows(p: Principal) -> list[list[Cell]]:
    """One row per statement shape: actions sharing a policy, effect, resource and condition, then the
    resources sharing the same actions, condition and flags."""
    by_resource: dict[tuple[str, str, str, str], list[Any]] = {}
    for g in p.grants:
        by_resource.setdefault((g.policy, g.effect, g.resource, g.condition), []).append(g)
    merged: dict[tuple[str, str, str, str, Cell], list[str]] = {}
    for (policy, effect, resource, condition), grants in by_resource.items():
        flags = tuple(dict.fromkeys(f for g in grants for f in g.flags))
        ack = next((g.acknowledged for g in grants if g.acknowledged), None)
        unacked = any(g.flags and not g.acknowledged for g in grants)
        actions = ", ".join(dict.fromkeys(g.action for g in grants))
        key = (policy, effect, actions, condition, _flag_cell(flags, None if unacked else ack))
        merged.setdefault(key, []).append(resource)
    rows: list[list[Cell]] = []
    for (policy, effect, actions, condition, flag), resources in merged.items():
        rows.append(
            [
                Badge(effect, "ok" if effect == "Allow" else "info"),
                actions,
                "; ".join(resources),
                condition or "-",
                flag,
                policy,
            ]
        )
    if p.aws_managed:
        rows.append(
            [
                Badge("Allow", "warn"),
                "AWS managed policy: " + ", ".join(p.aws_managed),
                "(defined by AWS, not in the template)",
                "-",
                "",
                "managed policy ARN",
            ]
        )
    return rows


def _exposure_section(facts: Facts) -> Section:
    ex = facts.exposure
    sec = Section("exposure", "Exposure")
    sec.blocks.append(
        Para("Every API route with its authorization, throttling and WAF, and the API's transport settings.")
    )
    personnel = [p for p in facts.principals if p.personnel_role]
    rows: list[list[Cell]] = []
    for r in ex.routes:
        th = ex.route_throttle.get(r.resource_id)
        callers = [p.personnel_role or "" for p in personnel if f"{r.method} {r.path}" in p.routes]
        rows.append(
            [
                f"{r.method} {r.path}",
                Badge(r.authorization, "ok" if r.authorization == "AWS_IAM" else "warn"),
                r.integration,
                Badge(f"{th.rate:g} rps, burst {th.burst}", "ok")
                if th and th.rate is not None
                else Badge("none", "gap"),
                Badge(", ".join(ex.route_wafs.get(r.resource_id, [])), "ok")
                if ex.route_wafs.get(r.resource_id)
                else Badge("none", "gap"),
                ", ".join(callers)
                or ("anyone (signed by Meta)" if r.authorization == "NONE" else "administrators only"),
            ]
        )
    sec.blocks.append(
        Table(["route", "authorization", "function", "throttle", "WAF", "personnel allowed"], rows)
    )
    for api in ex.apis:
        sec.blocks.append(Heading(f"API {api.logical_id}"))
        items: list[Cell] = [
            f"endpoint {api.endpoint}; minimum TLS {api.security_policy or 'not set in the template'}; "
            f"default execute-api endpoint {'disabled' if api.execute_api_disabled else 'enabled'}",
            "resource policy: " + ("; ".join(api.resource_policy) or "none"),
        ]
        for st in api.stages:
            items.append(
                f"stage {st.name} ({st.logical_id}): default throttle "
                + (f"{st.throttle.rate:g} rps, burst {st.throttle.burst}" if st.throttle else "none")
                + f"; tracing {'on' if st.tracing else 'off'}; access logs {st.access_logs or 'off'}; "
                f"execution logging {st.logging_level or 'off'}; "
                f"data trace {'ON' if st.data_trace else 'off'}"
            )
            for acl in st.wafs:
                items.append(
                    f"web ACL {acl.logical_id} (default {acl.default_action}, logging "
                    f"{'on' if acl.logging else 'off'}): " + "; ".join(acl.rules)
                )
        sec.blocks.append(Bullets(items))
    if ex.domains:
        sec.blocks.append(Bullets(list(ex.domains)))
    return sec


def _audit_section(facts: Facts) -> Section:
    sec = Section("audit", "Audit")
    sec.blocks.append(
        Para("CloudTrail's settings and which data events it records, with the application audit log.")
    )
    if not facts.trails:
        sec.blocks.append(Bullets([Badge("no CloudTrail trail in the template", "gap")]))
    stores = {s.logical_id: s for s in facts.inventory.stores}
    for t in facts.trails:
        bucket = stores.get(t.bucket or "")
        group = stores.get(t.log_group or "")
        sec.blocks.append(Heading(f"CloudTrail trail {t.logical_id}"))
        sec.blocks.append(
            Table(
                ["setting", "value"],
                [
                    ["logging", _yn(t.logging)],
                    ["multi-region", _yn(t.multi_region)],
                    ["global service events", _yn(t.global_events)],
                    ["log file validation (digest files)", _yn(t.log_validation)],
                    ["encryption", _key_cell(t.key)],
                    ["S3 bucket", f"{t.bucket} ({bucket.retention})" if bucket else str(t.bucket)],
                    ["CloudWatch Logs", f"{t.log_group} ({group.retention})" if group else "not delivered"],
                    ["management events", t.management_events],
                    ["data events", "; ".join(t.data_events) or Badge("none", "gap")],
                ],
            )
        )
    sec.blocks.append(Heading("Data events per table"))
    sec.blocks.append(
        Table(
            ["table", "logical id", "data events recorded by"],
            [
                [
                    t.name or "-",
                    t.logical_id,
                    Badge(
                        ", ".join(
                            tr.logical_id
                            for tr in facts.trails
                            if tr.all_tables or t.logical_id in tr.covered
                        ),
                        "ok",
                    )
                    if any(tr.all_tables or t.logical_id in tr.covered for tr in facts.trails)
                    else Badge("not recorded", "gap"),
                ]
                for t in facts.inventory.tables
            ],
        )
    )
    c = facts.inputs.constants
    audit_table = next((t for t in facts.inventory.tables if t.name == c.TABLE_AUDIT), None)
    sec.blocks.append(
        Bullets(
            [
                f"application audit log: table {audit_table.logical_id}, retention "
                f"{facts.inputs.retention.get(c.CLASS_AUDIT)} days "
                "(actor, action, route, outcome; no personal data)"
                if audit_table
                else Badge("no application audit table", "gap")
            ]
        )
    )
    return sec


def _ack_scope(facts: Facts, ack: Any) -> str:
    """Where an acknowledgement applies: one resource, or a construct and everything below it."""
    tpl = facts.inputs.template
    if ack.at_resource and tpl.path_of(ack.at_resource) == ack.at_path:
        return ack.at_resource
    below = tpl.resources_under(ack.at_path)
    return f"{ack.at_path} and below ({len(below)} resources)"


def _ack_rows(facts: Facts, acks: list[Any]) -> list[list[Cell]]:
    """One row per rule and reason, listing every resource it was declared on."""
    grouped: dict[tuple[str, str, str], list[Any]] = {}
    for a in acks:
        grouped.setdefault((a.rule, ", ".join(a.packs), a.reason), []).append(a)
    rows: list[list[Cell]] = []
    for (rule, pack_names, reason), items in grouped.items():
        rows.append(
            [
                rule,
                pack_names or "any pack (no pack prefix)",
                ", ".join(_ack_scope(facts, a) for a in items),
                str(sum(a.suppressed for a in items)),
                reason or Badge("no reason", "gap"),
            ]
        )
    return rows


def _packs_section(facts: Facts) -> Section:
    packs = facts.packs
    sec = Section("packs", "Rule packs")
    if not packs.found:
        sec.blocks.append(
            Bullets([Badge(f"no cdk-nag validation report at {packs.source}: rule packs not run", "gap")])
        )
    else:
        sec.blocks.append(
            Para("Each cdk-nag pack run at synth (`make synth`), with its open and acknowledged findings.")
        )
        sec.blocks.append(
            Table(
                ["pack", "conclusion", "open findings", "acknowledged findings"],
                [
                    [
                        p.name,
                        Badge(p.conclusion, "ok" if p.conclusion == "success" else "gap"),
                        Badge(str(len(p.open)), "ok" if not p.open else "gap"),
                        str(p.suppressed),
                    ]
                    for p in packs.packs
                ],
            )
        )
    open_rows: list[list[Cell]] = [
        [f.pack, f.rule, f.description, ", ".join(f.resources)] for p in packs.packs for f in p.open
    ]
    if open_rows:
        sec.blocks.append(Heading("Open findings"))
        sec.blocks.append(Table(["pack", "rule", "finding", "resources"], open_rows))
    sec.blocks.append(Heading("Acknowledgements"))
    if not packs.acks:
        sec.blocks.append(Para("No acknowledgements."))
    else:
        sec.blocks.append(
            Table(
                ["rule", "packs", "declared at", "findings suppressed", "reason"],
                _ack_rows(facts, packs.acks),
            )
        )
    return sec


# ---- rendering -----------------------------------------------------------------------------------


def _md_cell(cell: Cell) -> str:
    text = cell.text if isinstance(cell, Badge) else cell
    text = text.replace("|", "\\|").replace("\n", " ")
    if isinstance(cell, Badge) and cell.kind == "gap":
        return f"**{text}**"
    return text


def render_md(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    for k, v in doc.meta:
        lines.append(f"- {k}: `{v}`")
    lines += [
        "",
        " · ".join(_md_cell(c) for c in doc.summary),
        "",
        "Contents: " + " · ".join(f"[{s.title}](#{s.anchor})" for s in doc.sections),
        "",
    ]
    for sec in doc.sections:
        lines += [f'<a id="{sec.anchor}"></a>', "", f"## {sec.title}", ""]
        for block in sec.blocks:
            if isinstance(block, Heading):
                if block.anchor:
                    lines += [f'<a id="{block.anchor}"></a>', ""]
                lines += [f"{'#' * block.level} {block.text}", ""]
            elif isinstance(block, Para):
                lines += [block.text, ""]
            elif isinstance(block, Bullets):
                lines += [f"- {_md_cell(i)}" for i in block.items] + [""]
            elif isinstance(block, Table):
                lines.append("| " + " | ".join(block.headers) + " |")
                lines.append("|" + "---|" * len(block.headers))
                for row in block.rows:
                    lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
:root{--ok:#1a7f37;--gap:#cf222e;--warn:#9a6700;--info:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1f2328;
margin:0;background:#fff}
header{background:#0d1117;color:#e6edf3;padding:16px 24px}
header h1{margin:0 0 6px;font-size:20px}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0;font-size:12px;
color:#9da7b3}
header dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:8px 24px;z-index:1}
nav a{margin-right:14px;color:#0969da;text-decoration:none;white-space:nowrap}
main{max-width:1400px;margin:0 auto;padding:8px 24px 48px}
h2{border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:32px}
h3{margin:20px 0 8px;font-size:15px}
.summary{margin:12px 0}
.wrap{overflow-x:auto;margin:8px 0 16px;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:0}
td{overflow-wrap:break-word;max-width:520px}
td:first-child{overflow-wrap:anywhere}
.b.nw{white-space:nowrap}
h4{margin:18px 0 6px;font-size:13.5px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
tr:last-child td{border-bottom:0}
.b{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;border:1px solid}
.b.ok{color:var(--ok);border-color:var(--ok);background:#dafbe1}
.b.gap{color:var(--gap);border-color:var(--gap);background:#ffebe9;font-weight:600}
.b.warn{color:var(--warn);border-color:#d4a72c;background:#fff8c5}
.b.info{color:var(--info);border-color:var(--line);background:var(--bg)}
ul.checks{list-style:none;padding-left:0}
ul.checks li{margin:4px 0}
ul.checks .b{border-radius:4px;display:inline;padding:1px 6px;line-height:1.9}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
@media print{nav{position:static}}
"""


def _html_inline(text: str) -> str:
    """Escape text; turn `code` spans and [title](#anchor) links (internal only) into HTML."""
    import re

    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\[([^\]]+)\]\((#[a-z0-9-]+)\)", r'<a href="\2">\1</a>', out)
    return out


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Badge):
        short = " nw" if len(cell.text) <= 32 else ""
        return f'<span class="b {cell.kind}{short}">{html.escape(cell.text)}</span>'
    return _html_inline(cell)


def render_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(doc.title)}</h1><dl>",
    ]
    for k, v in doc.meta:
        parts.append(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>")
    parts.append("</dl></header><nav>")
    parts += [f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in doc.sections]
    parts.append("</nav><main>")
    parts.append('<p class="summary">' + " ".join(_html_cell(c) for c in doc.summary) + "</p>")
    for sec in doc.sections:
        parts.append(f'<section id="{sec.anchor}"><h2>{html.escape(sec.title)}</h2>')
        for block in sec.blocks:
            if isinstance(block, Heading):
                anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
                parts.append(f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>")
            elif isinstance(block, Para):
                parts.append(f"<p>{_html_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                parts.append(
                    '<ul class="checks">'
                    + "".join(f"<li>{_html_cell(i)}</li>" for i in block.items)
                    + "</ul>"
                )
            elif isinstance(block, Table):
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
                body = "".join(
                    "<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in block.rows
                )
                parts.append(
                    f'<div class="wrap"><table><thead><tr>{head}</tr></thead>'
                    f"<tbody>{body}</tbody></table></div>"
                )
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


# ---- CLI -----------------------------------------------------------------------------------------


def _base() -> Path:
    cwd = Path.cwd()
    return cwd if (cwd / "cdk.json").exists() else ROOT


def generate(template: Path, cdk_json: Path, fmt: str = "md") -> str:
    """The report as text (`md` or `html`)."""
    doc = build(compute(load_inputs(template, cdk_json)))
    return render_html(doc) if fmt == "html" else render_md(doc)


def main(argv: list[str] | None = None) -> int:
    base = _base()
    parser = argparse.ArgumentParser(
        prog="waguard report",
        description="The data-protection report, computed from the synthesized template "
        "(run `make synth` first).",
    )
    parser.add_argument("--format", choices=("md", "html"), default="md", help="output format (default md)")
    parser.add_argument("--out", default="-", help="output file (default: standard output)")
    parser.add_argument(
        "--template",
        type=Path,
        default=base / "cdk.out" / f"{DEFAULT_STACK}.template.json",
        help="synthesized template (default cdk.out/Waguard.template.json)",
    )
    parser.add_argument("--cdk-json", type=Path, default=base / "cdk.json", help="cdk.json with the settings")
    args = parser.parse_args(argv)
    if not args.template.exists():
        print(f"waguard report: {args.template} not found; run `make synth` first", file=sys.stderr)
        return 2
    if not args.cdk_json.exists():
        print(f"waguard report: {args.cdk_json} not found", file=sys.stderr)
        return 2
    text = generate(args.template, args.cdk_json, args.format)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
