"""The synthesized CloudFormation template as the local runtime and the report read it.

- `template`: the one read-only model (`Template`, `Resource`), intrinsics rendered as text;
- `assembly`: the cloud assembly on disk (synthesis when stale, `load`, the manifest's region);
- `resolve`: intrinsics evaluated to local values (`Resolver`, `Physical`);
- `iam`: the one IAM policy evaluator (local enforcement and the report's access matrix).
"""

from waguard.cfn.assembly import (
    TemplateError,
    ensure_synthesized,
    is_stale,
    load,
    manifest_region,
    stack_name,
    template_path,
)
from waguard.cfn.resolve import Physical, Resolver, physical_name
from waguard.cfn.template import ACCOUNT, DEFAULT_REGION, Resource, Template, as_list, canonical

__all__ = [
    "ACCOUNT",
    "DEFAULT_REGION",
    "Physical",
    "Resolver",
    "Resource",
    "Template",
    "TemplateError",
    "as_list",
    "canonical",
    "ensure_synthesized",
    "is_stale",
    "load",
    "manifest_region",
    "physical_name",
    "stack_name",
    "template_path",
]
