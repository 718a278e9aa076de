"""Pieces `serve` and `invoke` share: the functions' worker configurations and the fake Graph API."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waguard import graph_fake, model, paths
from waguard.cfn import Physical, Resolver, Template
from waguard.workers import WorkerConfig, function_env


def worker_configs(
    tpl: Template,
    physical: dict[str, Physical],
    endpoint: str,
    overrides: Mapping[str, str],
    log_dir: Path | None,
    code_paths: tuple[str, ...] = (str(paths.LAMBDAS),),
    source: Mapping[str, str] | None = None,
) -> dict[str, WorkerConfig]:
    """One worker configuration per tagged function, its environment resolved against `physical`."""
    res = Resolver(tpl, physical)
    out: dict[str, WorkerConfig] = {}
    for name, spec in model.functions(tpl, res).items():
        env = function_env(
            spec.environment,
            function_name=spec.function_name,
            handler=spec.handler,
            memory=spec.memory,
            region=tpl.region,
            endpoint=endpoint,
            overrides=overrides,
            source=source,
        )
        out[name] = WorkerConfig(
            name=name,
            handler=spec.handler,
            function_name=spec.function_name,
            arn=spec.arn,
            timeout=spec.timeout,
            memory=spec.memory,
            env=env,
            code_paths=code_paths,
            log_path=str(log_dir / f"{name}.log") if log_dir else None,
        )
    return out


def retry_base_seconds(tpl: Any) -> float:
    """`retry_base_seconds` of the functions' WG_SETTINGS in the template (cdk.json's retryBaseSeconds)."""
    import json

    for resource in tpl.resources.values():
        if resource.type != "AWS::Lambda::Function":
            continue
        variables = ((resource.raw.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        raw = variables.get("WG_SETTINGS")
        if isinstance(raw, str):
            return float(json.loads(raw).get("retry_base_seconds", 2))
    return 2.0


def default_phone_number_id() -> str:
    return "1" + "".join(secrets.choice("0123456789") for _ in range(14))


def start_graph_fake(host: str, access_token: str | None, waba_id: str | None = None) -> tuple[Any, str]:
    """The built-in fake Graph API (`waguard.graph_fake`) on a free port, and its base URL."""
    server, base_url = graph_fake.start(host, 0, expected_token=access_token, waba_id=waba_id)
    return server, str(base_url)


def stop_server(server: Any) -> None:
    for method in ("shutdown", "server_close"):
        fn = getattr(server, method, None)
        if callable(fn):
            try:
                fn()
            except Exception:  # noqa: S110 - best effort while stopping
                pass
