"""Pieces `serve` and `invoke` share: the functions' worker configurations and the fake Graph API."""

from __future__ import annotations

import inspect
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waguard import model, paths
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


def default_phone_number_id() -> str:
    return "1" + "".join(secrets.choice("0123456789") for _ in range(14))


def start_graph_fake(host: str, access_token: str | None) -> tuple[Any, str] | None:
    """The built-in fake Graph API on a free port, or None when the module is not there (yet)."""
    try:
        from waguard import graph_fake
    except ImportError:
        print(
            "waguard: warning: no built-in Graph API fake (waguard/graph_fake.py); set WA_GRAPH_API_URL",
            file=sys.stderr,
        )
        return None
    kwargs: dict[str, Any] = {}
    if access_token and "expected_token" in inspect.signature(graph_fake.start).parameters:
        kwargs["expected_token"] = access_token
    server, base_url = graph_fake.start(host, 0, **kwargs)
    return server, str(base_url)


def stop_server(server: Any) -> None:
    for method in ("shutdown", "server_close"):
        fn = getattr(server, method, None)
        if callable(fn):
            try:
                fn()
            except Exception:  # noqa: S110 - best effort while stopping
                pass
