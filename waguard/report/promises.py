"""The eight promises of a WhatsApp Business deployment, one function each, with the controls found in
the template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from waguard.cfn import Resource
from waguard.report import self_audit
from waguard.report.access import Route
from waguard.report.checks import Check, Promise, count_check, facts_trail_buckets, route_check, runtime_check
from waguard.report.common import function_name
from waguard.report.inputs import Facts
from waguard.report.inventory import Inventory, StoreFact, TableFact
from waguard.report.packs import RulePacks


@dataclass(frozen=True)
class View:
    """What several promises read, computed once from the facts."""

    facts: Facts
    inv: Inventory
    c: ModuleType
    cfg: dict[str, Any]
    tables: list[TableFact]
    stores: dict[str, list[StoreFact]]
    by_name: dict[str, TableFact]
    routes: list[Route]
    waguard_fns: list[Resource]
    ret: dict[str, int]
    packs: RulePacks

    @classmethod
    def of(cls, facts: Facts) -> View:
        inv, c = facts.inventory, facts.inputs.constants
        functions = facts.inputs.template.of_type("AWS::Lambda::Function")
        return cls(
            facts=facts,
            inv=inv,
            c=c,
            cfg=facts.inputs.settings,
            tables=inv.tables,
            stores={
                k: [s for s in inv.stores if s.kind == k] for k in ("queue", "bucket", "log group", "secret")
            },
            by_name={t.name: t for t in inv.tables if t.name},
            routes=facts.exposure.routes,
            waguard_fns=[f for f in functions if function_name(f) in c.HANDLERS],
            ret=facts.inputs.retention,
            packs=facts.packs,
        )


def tname(t: TableFact) -> str:
    return t.name or t.logical_id


def sname(s: StoreFact) -> str:
    return s.logical_id


def encryption(v: View) -> Promise:
    """Encryption."""
    facts, inv, c, tables, stores, by_name = v.facts, v.inv, v.c, v.tables, v.stores, v.by_name
    policies = [a.security_policy for a in facts.exposure.apis]
    tls_ok = bool(facts.exposure.apis) and all(p and p not in ("TLS_1_0",) for p in policies)
    return Promise(
        "Encryption",
        "Personal data is encrypted at rest under keys the business controls, and in transit.",
        [
            count_check("tables SSE with a customer-managed KMS key", tables, lambda t: t.key.is_cmk, tname),
            count_check(
                "queues encrypted with a customer-managed KMS key",
                stores["queue"],
                lambda s: s.key.is_cmk,
                sname,
            ),
            count_check(
                "log groups encrypted with a customer-managed KMS key",
                stores["log group"],
                lambda s: s.key.is_cmk,
                sname,
                empty_ok=True,
            ),
            count_check(
                "buckets encrypted with a customer-managed KMS key (SSE-S3 where S3 requires it: "
                "server-access-log destinations)",
                stores["bucket"],
                lambda s: s.key.is_cmk or (s.access_log_destination and s.key.kind == "SSE-S3"),
                sname,
                empty_ok=True,
            ),
            count_check(
                "secrets encrypted with a customer-managed KMS key",
                stores["secret"],
                lambda s: s.key.is_cmk,
                sname,
            ),
            count_check(
                "KMS keys with automatic rotation", inv.keys, lambda k: k.rotation, lambda k: k.logical_id
            ),
            count_check(
                "queues deny non-TLS access (aws:SecureTransport)",
                stores["queue"],
                lambda s: bool(s.tls_only),
                sname,
            ),
            count_check(
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
                    ", ".join(f"{a.logical_id} {a.security_policy or 'not set'}" for a in facts.exposure.apis)
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


def limited_access(v: View) -> Promise:
    """Limited access."""
    facts, c, waguard_fns = v.facts, v.c, v.waguard_fns
    fn_roles = [p for p in facts.principals if p.kind == "function role"]
    role_of = {function_name(f): facts.inputs.template.target(f.prop("Role")) for f in waguard_fns}
    shared = {r for r in role_of.values() if list(role_of.values()).count(r) > 1}
    wild = [g for p in facts.principals for g in p.allows if g.flags]
    unacked = [g for g in wild if not g.acknowledged]
    star = [g for g in wild if g.action == "*"]
    personnel = {p.personnel_role: p for p in facts.principals if p.personnel_role}
    missing_roles = [r for r in c.ROLES if r not in personnel]
    names = [r for r in c.ROLES if r in personnel]
    # Separation of duties: who converses with contacts (sends, reads conversations) never also answers
    # data-subject requests or changes consent; sharing a route within one side (sender and agent both
    # send) is what the contract's role table asks for.
    conversing = {"POST /messages", "GET /contacts/{contact}/messages", "POST /messages/{id}/read"}
    privacy = {
        "GET /contacts/{contact}/export",
        "DELETE /contacts/{contact}",
        "PUT /contacts/{contact}/consent",
    }
    overlap = {
        r for r in names if set(personnel[r].routes) & conversing and set(personnel[r].routes) & privacy
    }
    return Promise(
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
                "separation of duties: no personnel role both converses with contacts and exports, "
                "erases or changes consent" + (f" (both: {', '.join(sorted(overlap))})" if overlap else ""),
            ),
            Check(
                None,
                f"{len(fn_roles)} function roles, "
                f"{sum(len(p.allows) for p in fn_roles)} allowed action/resource pairs",
            ),
        ],
        ["access"],
    )


def consent(v: View) -> Promise:
    """Consent."""
    facts, c, cfg, by_name, ret = v.facts, v.c, v.cfg, v.by_name, v.ret
    consent = by_name.get(c.TABLE_CONSENT)
    return Promise(
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
            route_check(facts, "PUT", "/consent", "recording consent"),
            route_check(facts, "GET", "/consent", "reading consent"),
            Check(
                bool(cfg.get("optOutKeywords")),
                f"{len(cfg.get('optOutKeywords', []))} opt-out keywords and "
                f"{len(cfg.get('optInKeywords', []))} opt-in keywords configured in cdk.json",
            ),
            route_check(facts, "POST", "/webhook", "opt-outs arrive through the signed webhook", auth=None),
        ],
        ["exposure", "inventory"],
    )


def _settings_check(facts: Facts, ret: dict[str, int]) -> Check:
    """The retention the functions receive (WG_SETTINGS in the template) is cdk.json's."""
    deployed = (facts.deployed or {}).get("retention_days")
    drift = deployed is not None and any(deployed.get(k) != days for k, days in ret.items())
    if deployed is None:
        return Check(False, "no WG_SETTINGS in the template")
    if drift:
        return Check(False, f"DRIFT: deployed {deployed} vs cdk.json {ret}")
    return Check(not drift, "retention the functions receive (WG_SETTINGS) equals cdk.json")


def _trail_expiry_check(facts: Facts, trail_days: Any) -> Check:
    buckets = facts_trail_buckets(facts)
    return Check(
        bool(buckets) and all(t.retention_days == trail_days for t in buckets),
        f"trail bucket expiry equals cdk.json trailRetentionDays ({trail_days} days): "
        + (", ".join(f"{s.logical_id} {s.retention}" for s in buckets) or "no trail bucket"),
    )


def _media_expiry_check(stores: Any, ret: Any, c: Any) -> Check:
    """The media bucket's lifecycle is the `media` class of cdk.json; its objects are sealed per contact."""
    media = [s for s in stores["bucket"] if "media" in s.holds.split(" ", 1)[0]]
    days = (ret or {}).get(c.CLASS_MEDIA)
    return Check(
        bool(media) and all(s.retention_days == days for s in media),
        f"media bucket expiry equals cdk.json retentionDays.{c.CLASS_MEDIA} ({days} days): "
        + (", ".join(f"{s.logical_id} {s.retention}" for s in media) or "no media bucket")
        + "; its objects (and their old versions) are sealed under each contact's data key, so an erasure "
        "makes them unreadable before they expire",
    )


def deletion_and_retention(v: View) -> Promise:
    """Deletion and retention."""
    facts, inv, c, cfg, tables, stores, by_name, ret = (
        v.facts,
        v.inv,
        v.c,
        v.cfg,
        v.tables,
        v.stores,
        v.by_name,
        v.ret,
    )
    keys_table = by_name.get(c.TABLE_KEYS)
    trail_days = cfg.get("trailRetentionDays")
    log_days = cfg.get("logRetentionDays")
    return Promise(
        "Deletion and retention",
        "Nothing is kept forever: every item expires with its data class; erasure reaches backups.",
        [
            count_check(
                f"tables with TTL on '{c.TTL_ATTRIBUTE}'",
                tables,
                lambda t: t.ttl_enabled and t.ttl_attribute == c.TTL_ATTRIBUTE,
                tname,
            ),
            count_check(
                "tables whose every data class has a retention in cdk.json",
                tables,
                lambda t: bool(t.classes) and all(v for v in t.retention.values()),
                tname,
            ),
            _settings_check(facts, ret),
            count_check(
                f"log groups with a retention period (cdk.json logRetentionDays {log_days})",
                stores["log group"],
                lambda s: s.retention_days is not None,
                sname,
                empty_ok=True,
            ),
            count_check(
                "buckets with a lifecycle expiry",
                stores["bucket"],
                lambda s: s.retention_days is not None,
                sname,
                empty_ok=True,
            ),
            _trail_expiry_check(facts, trail_days),
            _media_expiry_check(stores, ret, c),
            Check(
                keys_table is not None and not keys_table.pitr and not keys_table.backup_plans,
                "crypto-shredding reaches backups: keys table "
                + (
                    f"{keys_table.logical_id} has PITR {'on' if keys_table.pitr else 'off'}"
                    if keys_table
                    else "missing"
                ),
            ),
            route_check(facts, "DELETE", "}", "erasure on request"),
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


def gdpr_ccpa(v: View) -> Promise:
    """GDPR/CCPA."""
    facts, c, cfg, by_name = v.facts, v.c, v.cfg, v.by_name
    allowed = cfg.get("allowedRegions", [])
    region = facts.inputs.region or cfg.get("region")
    keep = cfg.get("keep", {})
    return Promise(
        "GDPR/CCPA",
        "Data-subject rights (access, portability, erasure, opt-out of sale/marketing) and data residency.",
        [
            route_check(facts, "GET", "/export", "right of access and portability (Art. 15/20, CCPA know)"),
            route_check(facts, "DELETE", "}", "right to erasure (Art. 17, CCPA delete)"),
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


def authentication(v: View) -> Promise:
    """Authentication and access control."""
    facts, c, routes = v.facts, v.c, v.routes
    business = [r for r in routes if not r.path.startswith("/webhook")]
    open_routes = [r for r in routes if r.authorization == "NONE"]
    stages = [s for a in facts.exposure.apis for s in a.stages]
    personnel = {p.personnel_role for p in facts.principals if p.personnel_role}
    return Promise(
        "Authentication and access control",
        "Every caller is authenticated; business routes need IAM (SigV4); "
        "the webhook needs Meta's signature.",
        [
            count_check(
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
            count_check(
                "API stages behind a WAF web ACL", stages, lambda s: bool(s.wafs), lambda s: s.logical_id
            ),
            count_check(
                "routes throttled",
                routes,
                lambda r: facts.exposure.route_throttle.get(r.resource_id) is not None,
                lambda r: f"{r.method} {r.path}",
            ),
            count_check("personnel roles defined", list(c.ROLES), lambda r: r in personnel, str),
        ],
        ["exposure", "access"],
    )


def audits_and_updates(v: View) -> Promise:
    """Audits and updates."""
    facts, c, cfg, tables, by_name, waguard_fns, ret, packs = (
        v.facts,
        v.c,
        v.cfg,
        v.tables,
        v.by_name,
        v.waguard_fns,
        v.ret,
        v.packs,
    )
    trails = facts.trails
    table_ids = [t.logical_id for t in tables]
    covered = [t for t in tables if any(tr.all_tables or t.logical_id in tr.covered for tr in trails)]
    open_findings = sum(len(p.open) for p in packs.packs)
    runtimes = sorted({str(f.prop("Runtime")) for f in waguard_fns})
    l1_acked = [a for a in packs.acks if a.rule.endswith("-L1")]
    return Promise(
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
            runtime_check(packs, l1_acked, runtimes, cfg),
            Check(*self_audit.summary(facts.inputs.template)),
        ],
        ["audit", "packs"],
    )


def transparency(v: View) -> Promise:
    """Transparency."""
    facts, inv, tables, packs = v.facts, v.inv, v.tables, v.packs
    no_reason = [a for a in packs.acks if not a.reason.strip()]
    return Promise(
        "Transparency",
        "The business can show what it holds, why, for how long, and who may touch it.",
        [
            Check(
                not inv.unmapped_tables and bool(tables),
                f"every table mapped to its data classes: "
                f"{len(tables) - len(inv.unmapped_tables)}/{len(tables)}"
                + (f" (unmapped: {', '.join(inv.unmapped_tables)})" if inv.unmapped_tables else ""),
            ),
            Check(
                not no_reason,
                f"{len(packs.acks)} rule acknowledgements, {len(packs.acks) - len(no_reason)} with a reason",
            ),
            route_check(facts, "GET", "/export", "a contact can be shown everything held about them"),
        ],
        ["inventory", "access", "packs"],
    )


# The promises in the report's order.
PROMISES: tuple[Callable[[View], Promise], ...] = (
    encryption,
    limited_access,
    consent,
    deletion_and_retention,
    gdpr_ccpa,
    authentication,
    audits_and_updates,
    transparency,
)


def promises(facts: Facts) -> list[Promise]:
    view = View.of(facts)
    return [promise(view) for promise in PROMISES]
