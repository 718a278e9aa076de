"""The synthesized app as the infra tests see it (built once by the `synth` fixture in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk.assertions import Template

from infra.config import WaguardConfig
from infra.stack import WaguardStack


@dataclass
class Synth:
    cfg: WaguardConfig
    stack: WaguardStack
    template: Template
    data: dict[str, Any]  # the template as JSON
    text: str  # the template file as written to the outdir
    report: dict[str, Any] | None  # validation-report.json
    error: str | None  # the synth error (unacknowledged findings), None when synth succeeded

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.data["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def function_ids(self) -> dict[str, str]:
        """logical function name (waguard:function tag) -> logical id."""
        out = {}
        for logical_id, res in self.of_type("AWS::Lambda::Function").items():
            tags = {t["Key"]: t["Value"] for t in res["Properties"].get("Tags", [])}
            out[tags["waguard:function"]] = logical_id
        return out

    def env(self, function: str) -> dict[str, Any]:
        res = self.resources[self.function_ids()[function]]
        return res["Properties"]["Environment"]["Variables"]

    def table_ids(self) -> dict[str, str]:
        """logical table name -> logical id, read from the functions' WG_*_TABLE references."""
        from lambdas.shared import constants as c

        found: dict[str, str] = {}
        for function in self.function_ids():
            env = self.env(function)
            found.update({table: env[key]["Ref"] for table, key in c.ENV_TABLE.items() if key in env})
        return found
