"""The report's sections, built from the facts."""

from __future__ import annotations

from typing import Any

from waguard.report.access import Principal
from waguard.report.common import sha256
from waguard.report.document import Badge, Bullets, Cell, Document, Heading, Para, Section, Table
from waguard.report.inputs import Facts
from waguard.report.promises import Promise, promises

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
        ("template", f"{inp.template_path.name} sha256 {sha256(inp.template_path)}"),
        ("settings", f"{inp.cdk_json_path.name} sha256 {sha256(inp.cdk_json_path)}"),
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
    sec.blocks.append(Heading("Business numbers"))
    sec.blocks.append(
        Para(
            "The WhatsApp business numbers (Meta's phone_number_id) whose webhook deliveries are stored, the "
            "first the default sender; deliveries for any other number are answered, dropped and counted "
            "(metric UnknownBusinessNumber, alarmed)."
        )
    )
    sec.blocks.append(Bullets(list(ex.numbers) or [Badge("none configured", "gap")]))
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
