"""What the report reads (the template, cdk.json, the assembly) and the facts computed from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from waguard import paths
from waguard.cfn import Template, load, manifest_region
from waguard.report.access import Principal, access_matrix
from waguard.report.audit import TrailFact, audit_trails
from waguard.report.common import deployed_settings
from waguard.report.exposure import Exposure, exposure
from waguard.report.inventory import Inventory, inventory
from waguard.report.packs import RulePacks, rule_packs


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


def _retention(cdk_json: Path) -> dict[str, int]:
    """Retention of every data class as infra computes it (infra/config.py is the one source)."""
    paths.ensure_root_on_path()
    from infra.config import WaguardConfig

    return dict(WaguardConfig.from_cdk_json(cdk_json).retention)


def load_inputs(template_path: Path, cdk_json_path: Path) -> Inputs:
    constants = paths.constants()
    data = json.loads(cdk_json_path.read_text(encoding="utf-8"))
    settings = (data.get("context") or {}).get("waguard") or {}
    template = load(template_path)
    cdk_out = template_path.parent
    stack = template_path.name.removesuffix(".template.json")
    retention = _retention(cdk_json_path)
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
