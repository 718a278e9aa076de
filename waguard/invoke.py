"""`waguard invoke FUNCTION --event FILE`: run one handler once, as `sam local invoke` does.

With `--aws-endpoint URL` (or AWS_ENDPOINT_URL) the function runs against that endpoint (a running
`waguard serve`), its resources found there by the names the template gives them. Otherwise a private
moto is started in this process and the template's resources are materialized in it first. The
handler's response is printed as JSON on stdout; its logs go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from waguard import audit, aws, materialize, model, paths, runtime
from waguard.cfn import Resolver, TemplateError, ensure_synthesized, load
from waguard.workers import FunctionPool, InvocationError


def _read_event(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"waguard invoke: cannot read the event file: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"waguard invoke: the event file is not JSON: {exc}") from exc


def run(function: str, event_path: str, aws_endpoint: str | None = None) -> int:
    event = _read_event(event_path)
    try:
        tpl = load(ensure_synthesized())
    except TemplateError as exc:
        print(f"waguard invoke: {exc}", file=sys.stderr)
        return 2
    names = sorted(model.functions(tpl, Resolver(tpl)))
    if function not in names:
        print(
            f"waguard invoke: no function {function!r}; the template has {', '.join(names)}", file=sys.stderr
        )
        return 2
    endpoint = aws_endpoint or os.environ.get("AWS_ENDPOINT_URL")
    moto = graph = None
    pool: FunctionPool | None = None
    try:
        if endpoint:
            physical = materialize.discover(tpl, endpoint)
        else:
            port = aws.free_port()
            moto = aws.start_moto("127.0.0.1", port)
            endpoint = aws.url("127.0.0.1", port)
            physical = materialize.materialize(tpl, endpoint)
        overrides = {
            "WA_PHONE_NUMBER_ID": os.environ.get("WA_PHONE_NUMBER_ID") or runtime.default_phone_number_id()
        }
        if not os.environ.get("WA_GRAPH_API_URL"):
            graph, overrides["WA_GRAPH_API_URL"] = runtime.start_graph_fake("127.0.0.1", None)
        # the auditor reads the template and resources from a file here (moto has no CloudFormation stack)
        source = Path(tempfile.mkdtemp(prefix="waguard-invoke-")) / "audit-source.json"
        audit.write_source(tpl, physical, source)
        overrides[paths.constants().ENV_AUDIT_SOURCE] = str(source)
        cfg = runtime.worker_configs(tpl, physical, endpoint, overrides, log_dir=None)[function]
        pool = FunctionPool(cfg, 1).start()
        try:
            result = pool.invoke(event)
        except InvocationError as exc:
            print(f"waguard invoke: {function} failed: {exc.error_type}: {exc.message}", file=sys.stderr)
            return 1
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    except (TemplateError, materialize.MaterializeError, InvocationError) as exc:
        print(f"waguard invoke: {exc}", file=sys.stderr)
        return 2
    finally:
        if pool is not None:
            pool.close()
        if graph is not None:
            runtime.stop_server(graph)
        if moto is not None:
            moto.stop()
