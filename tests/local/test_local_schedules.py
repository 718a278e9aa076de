"""`waguard serve` runs the template's EventBridge schedules (waguard/schedules.py) as EventBridge would."""

from __future__ import annotations

import threading

import pytest

from waguard import cfn, model
from waguard.schedules import Scheduler, scheduled_event

RULE_ARN = "arn:aws:events:eu-central-1:123456789012:rule/Scheduled-Auditor"
SPEC = model.ScheduleSpec("AuditorSchedule", "auditor", 900, True)


def test_the_event_has_eventbridges_scheduled_shape() -> None:
    event = scheduled_event(RULE_ARN, "eu-central-1", "123456789012", now=0)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [RULE_ARN] and event["detail"] == {}
    assert event["time"] == "1970-01-01T00:00:00Z" and event["account"] == "123456789012"


def test_a_scheduler_invokes_every_period_and_survives_a_failed_run() -> None:
    got: list[dict] = []
    three = threading.Event()

    def invoke(event: dict) -> None:
        got.append(event)
        if len(got) == 1:
            raise RuntimeError("the first run fails")
        if len(got) >= 3:
            three.set()

    reports: list[str] = []
    scheduler = Scheduler(SPEC, invoke, RULE_ARN, "eu-central-1", "123456789012", reports.append, period=0.02)
    scheduler.start()
    try:
        assert three.wait(10)
    finally:
        scheduler.stop()
        scheduler.join(5)
    assert not scheduler.is_alive()
    assert reports == ["auditor: scheduled run failed (RuntimeError)"]
    assert len({e["id"] for e in got}) == len(got)  # a new event id per run


FN_ARN = "arn:aws:lambda:eu-central-1:123456789012:function:f"
FNS = {"f": model.FunctionSpec("f", "F", "h", "f", FN_ARN, 3, 128, {})}


def _rule(expression: str) -> cfn.Template:
    props = {"ScheduleExpression": expression, "Targets": [{"Id": "t", "Arn": FN_ARN}]}
    return cfn.Template({"Resources": {"R": {"Type": "AWS::Events::Rule", "Properties": props}}})


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(15 minutes)", 900), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    tpl = _rule(expression)
    (spec,) = model.schedules(tpl, cfn.Resolver(tpl), FNS)
    assert spec.every_seconds == seconds


def test_a_cron_schedule_is_refused_rather_than_run_at_the_wrong_times() -> None:
    tpl = _rule("cron(0 3 * * ? *)")
    with pytest.raises(cfn.TemplateError):
        model.schedules(tpl, cfn.Resolver(tpl), FNS)


def test_a_run_may_shorten_named_schedules_and_refuses_a_malformed_entry() -> None:
    from waguard.serve import schedule_periods

    assert schedule_periods("") == {}
    assert schedule_periods("campaigns=2, auditor=0.5") == {"campaigns": 2.0, "auditor": 0.5}
    for bad in ("campaigns", "campaigns=", "campaigns=0", "campaigns=-1", "=2", "campaigns=soon"):
        with pytest.raises(ValueError, match="WAGUARD_SCHEDULE_SECONDS"):
            schedule_periods(bad)
