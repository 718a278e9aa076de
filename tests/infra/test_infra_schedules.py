"""A function's schedule is declared beside its needs (`Needs.schedule_minutes`, infra/functions.py), built
as an EventBridge rule invoking it, and read back from the template by the local runtime (waguard.model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from constructs import Construct

from infra import functions
from infra.config import WaguardConfig
from lambdas.shared import constants as c
from waguard import cfn, model

pytestmark = pytest.mark.xdist_group("infra")  # one synthesis per suite (conftest.py)

ROOT = Path(__file__).resolve().parents[2]

REGION = "eu-central-1"


class _Fn(Construct):
    """What `_build_schedule` needs of a WaguardFunction: a scope holding `function`."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="handlers.auditor.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
        )
        Tags.of(self.function).add(c.FUNCTION_TAG, "auditor")


def _synth() -> dict:
    stack = Stack(App(), "Scheduled", env={"region": REGION, "account": "123456789012"})
    functions._build_schedule(_Fn(stack, "Auditor"), 15)  # type: ignore[arg-type]
    return Template.from_stack(stack).to_json()


def test_a_schedule_is_a_rule_invoking_the_function_every_n_minutes() -> None:
    template = Template.from_json(_synth())
    template.resource_count_is("AWS::Events::Rule", 1)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(15 minutes)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [Match.any_value(), "Arn"]}})],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com"},
    )


def test_the_local_runtime_reads_the_schedule_from_the_template() -> None:
    tpl = cfn.Template(_synth(), region=REGION)
    res = cfn.Resolver(tpl)
    fns = model.functions(tpl, res)
    (schedule,) = model.schedules(tpl, res, fns)
    assert (schedule.function, schedule.every_seconds, schedule.enabled) == ("auditor", 900, True)


def test_the_scheduled_functions_and_their_rates() -> None:
    cfg = WaguardConfig.from_cdk_json(ROOT / "cdk.json")
    scheduled = {name for name, n in functions.NEEDS.items() if n.schedule_minutes or n.audits}
    assert scheduled == {c.FN_TEMPLATES, c.FN_CONTACTS_API, c.FN_AUDITOR, c.FN_CAMPAIGNS}
    assert functions.NEEDS[c.FN_CAMPAIGNS].schedule_minutes == 1  # starts the campaigns whose send_at came
    every = functions.NEEDS[c.FN_TEMPLATES].schedule_minutes
    assert callable(every) and every(cfg) == cfg.template_sync_minutes == 15  # the template registry's sync
    assert functions.NEEDS[c.FN_CONTACTS_API].schedule_minutes == 15  # overdue data-subject requests
    assert cfg.audit_schedule_hours == 24  # the self-audit (Needs.audits)


def test_the_template_registry_is_synced_on_its_schedule_and_after_each_deploy(synth) -> None:
    fn = synth.function_ids()[c.FN_TEMPLATES]
    target = {"Fn::GetAtt": [fn, "Arn"]}
    rules = synth.of_type("AWS::Events::Rule").values()
    every = [r for r in rules if any(t["Arn"] == target for t in r["Properties"].get("Targets", []))]
    assert sorted(r["Properties"].get("ScheduleExpression", "after deploy") for r in every) == [
        "after deploy",
        "rate(15 minutes)",
    ]
    (deploy,) = [r for r in every if "EventPattern" in r["Properties"]]
    assert deploy["Properties"]["EventPattern"]["detail-type"] == ["CloudFormation Stack Status Change"]
