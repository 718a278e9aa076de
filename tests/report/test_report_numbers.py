"""The report's exposure section lists the business numbers the functions are configured with (issue 17)."""

from __future__ import annotations

import json
from typing import Any

from waguard.cfn import Template
from waguard.report.exposure import business_numbers


def _template(settings: dict[str, Any]) -> Template:
    fn = {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Environment": {"Variables": {"WG_SETTINGS": json.dumps(settings)}}},
    }
    return Template({"Resources": {"Fn": fn}})


def test_the_numbers_with_their_labels_default_first() -> None:
    numbers = [{"id": "111", "label": "support"}, {"id": "222", "label": ""}]
    assert business_numbers(_template({"phone_numbers": numbers})) == ["111 (support)", "222"]


def test_a_template_of_one_number_and_one_of_none() -> None:
    assert business_numbers(_template({"phone_number_id": "333, 444"})) == ["333", "444"]
    assert business_numbers(Template({"Resources": {}})) == []
