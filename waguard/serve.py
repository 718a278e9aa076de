"""`waguard serve`: the whole stack on this machine, from the synthesized template.

Template (synthesized when stale) -> moto on the AWS port -> keys, tables, queues and the secret
materialized as the template declares them -> one worker process per function -> a poller per event
source mapping -> the API on the API port -> the built-in fake Graph API unless WA_GRAPH_API_URL is set
-> the ready lines. SIGINT/SIGTERM stop everything and exit 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from waguard import audit, aws, materialize, model, paths, roles, runtime
from waguard.api import ApiServer, LocalApi
from waguard.cfn import Resolver, Template, TemplateError, ensure_synthesized, load
from waguard.pollers import Poller
from waguard.schedules import Scheduler
from waguard.workers import FunctionPool, InvocationError

# Execution environments per function at most: behind the API (concurrent requests), or fed only by queues
# (one poller each). WAGUARD_API_WORKERS overrides the first. One starts with the stack, the others when a
# request finds every one busy (waguard/workers.py FunctionPool).
API_WORKERS = 2
QUEUE_WORKERS = 1
TEMPLATES_FUNCTION = "templates"  # its schedule also runs once before the API is served (the first sync)


def say(line: str) -> None:
    print(f"waguard: {line}", flush=True)


def warn(line: str) -> None:
    print(f"waguard: {line}", file=sys.stderr, flush=True)


class LogTail(threading.Thread):
    """`--verbose`: follow the functions' log files on the console, each line prefixed with the function."""

    def __init__(self, files: dict[str, Path]) -> None:
        super().__init__(name="log-tail", daemon=True)
        self.files = files
        self.stopping = threading.Event()

    def run(self) -> None:
        handles: dict[str, Any] = {}
        while not self.stopping.wait(0.2):
            for name, path in self.files.items():
                if name not in handles and path.exists():
                    handles[name] = open(path, encoding="utf-8", errors="replace")
                handle = handles.get(name)
                while handle is not None and (line := handle.readline()):
                    print(f"[{name}] {line.rstrip()}", file=sys.stderr, flush=True)
        for handle in handles.values():
            handle.close()


# A schedule's rate from the template, shortened for one run: "FUNCTION=SECONDS[,FUNCTION=SECONDS]", e.g.
# `campaigns=2` (a test of scheduled campaigns need not wait for the minute the deployed rule waits).
SCHEDULE_SECONDS_KEY = "WAGUARD_SCHEDULE_SECONDS"


def _known_schedules(tpl: Template, periods: dict[str, float]) -> None:
    """Refuse a period for a function the template does not run on a schedule: a name that matches no
    schedule would leave the one meant at its minute."""
    res = Resolver(tpl)  # stand-in physical values: only the rules' targets are read
    scheduled = {schedule.function for schedule in model.schedules(tpl, res, model.functions(tpl, res))}
    unknown = sorted(set(periods) - scheduled)
    if unknown:
        raise ValueError(f"{SCHEDULE_SECONDS_KEY}: no function of the template runs on a schedule: {unknown}")


def schedule_periods(value: str) -> dict[str, float]:
    """The functions' schedule periods that `WAGUARD_SCHEDULE_SECONDS` overrides; a malformed entry is an
    error (a period silently ignored would leave a schedule at its minute)."""
    periods: dict[str, float] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, sep, seconds = entry.partition("=")
        try:
            period = float(seconds)
        except ValueError:
            period = 0.0
        if not sep or not name.strip() or not period > 0:
            raise ValueError(f"{SCHEDULE_SECONDS_KEY}: {entry!r} is not FUNCTION=SECONDS")
        periods[name.strip()] = period
    return periods


class LocalStack:
    """Everything `serve` runs; `start()` brings it up, `stop()` takes it down in reverse."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        aws_port: int = 4566,
        verbose: bool = False,
        log_dir: Path | None = None,
        template_path: Path | None = None,
        code_paths: tuple[str, ...] = (str(paths.LAMBDAS),),
        cancelled: Callable[[], bool] = lambda: False,
        forward_events: str | None = None,
    ) -> None:
        self.host, self.port, self.aws_port = host, port, aws_port
        self.verbose = verbose
        self.log_dir = log_dir or paths.LOG_DIR
        self.template_path = template_path
        self.code_paths = code_paths
        self.cancelled = cancelled
        self.tpl: Template | None = None
        self.moto: Any = None
        self.graph: Any = None
        self.graph_url = ""
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[Poller] = []
        self.schedulers: list[Scheduler] = []
        self.api_server: ApiServer | None = None
        self.tail: LogTail | None = None
        self.audit_dir: Path | None = None
        self.secret_values: dict[str, str] = {}
        self.overrides: dict[str, str] = {}
        self.principals: dict[str, roles.Principal] = {}
        self.forward_events = forward_events
        self.events_key = ""
        self.forwarder: Any = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    def _check(self) -> None:
        if self.cancelled():
            raise KeyboardInterrupt

    def start(self) -> LocalStack:
        periods = schedule_periods(os.environ.get(SCHEDULE_SECONDS_KEY, ""))
        for port in (self.port, self.aws_port):  # fail fast, before the slow steps
            aws.check_free(self.host, port)
        path = self.template_path or ensure_synthesized()
        tpl = self.tpl = load(path)
        _known_schedules(tpl, periods)  # fail fast too, before the stack is built
        self._check()
        self.moto = aws.start_moto(self.host, self.aws_port)
        endpoint = aws.url(self.host, self.aws_port)
        self.secret_values = materialize.local_secrets()
        physical = materialize.materialize(tpl, endpoint, self.secret_values)
        self._check()

        env = os.environ
        self.overrides = {
            "WA_PHONE_NUMBER_ID": env.get("WA_PHONE_NUMBER_ID") or runtime.default_phone_number_id(),
            "WA_BUSINESS_ACCOUNT_ID": env.get("WA_BUSINESS_ACCOUNT_ID") or runtime.default_phone_number_id(),
        }
        # this run's own file: two `waguard serve` in one checkout (the test workers run several) each
        # audit their own moto account
        self.audit_dir = Path(tempfile.mkdtemp(prefix="waguard-serve-"))
        audit_source = self.audit_dir / "audit-source.json"
        audit.write_source(tpl, physical, audit_source)
        self.overrides[paths.constants().ENV_AUDIT_SOURCE] = str(audit_source)
        if not env.get("WA_GRAPH_API_URL"):
            self.graph, self.graph_url = runtime.start_graph_fake(
                aws.connect_host(self.host),
                self.secret_values["WA_ACCESS_TOKEN"],
                self.overrides["WA_BUSINESS_ACCOUNT_ID"],
            )
            self.overrides["WA_GRAPH_API_URL"] = self.graph_url
        self._start_functions(tpl, physical, endpoint)
        self._check()

        res = Resolver(tpl, physical)
        fns = model.functions(tpl, res)
        for mapping in model.mappings(tpl, res, fns):
            if mapping.enabled and mapping.function in self.pools:
                poller = Poller(mapping, self._invoker(mapping.function), endpoint, tpl.region, warn)
                poller.start()
                self.pollers.append(poller)
        for schedule in model.schedules(tpl, res, fns):
            if schedule.function == TEMPLATES_FUNCTION and schedule.function in self.pools:
                self._first_sync(schedule, physical, tpl)  # the registry is read when the stack starts
            if schedule.enabled and schedule.function in self.pools:
                rule_arn = str(physical[schedule.logical_id].attrs["Arn"])
                scheduler = Scheduler(
                    schedule,
                    self._invoker(schedule.function),
                    rule_arn,
                    tpl.region,
                    tpl.account,
                    warn,
                    period=periods.get(schedule.function),  # None: the template's rate
                )
                scheduler.start()
                self.schedulers.append(scheduler)

        if self.forward_events:
            self._start_forwarding(tpl, physical, endpoint)

        self.principals = {aws.ACCESS_KEY: roles.administrator()}
        for spec in sorted(model.roles(tpl, res).values(), key=lambda r: r.role):
            principal = roles.role_principal(spec)
            self.principals[principal.access_key] = principal
        apis = model.apis(tpl, res, fns)
        if not apis:
            raise TemplateError("the template has no AWS::ApiGateway::RestApi")
        report = (lambda line: warn("api " + line)) if self.verbose else (lambda line: None)
        app = LocalApi(apis[0], tpl.region, self._invoke, self.principals, report, alert=warn)
        self.api_server = ApiServer((self.host, self.port), app).start()
        self._first_audit(tpl, res, fns, physical)
        return self

    def _first_audit(
        self, tpl: Template, res: Resolver, fns: dict[str, Any], physical: dict[str, Any]
    ) -> None:
        """The auditor's first run, as after a deploy (then its schedule runs it); a failure is reported."""
        from waguard.schedules import scheduled_event

        name = paths.constants().FN_AUDITOR
        rules = [s for s in model.schedules(tpl, res, fns) if s.function == name]
        if name not in self.pools or not rules:
            return
        rule_arn = str(physical[rules[0].logical_id].attrs["Arn"])
        try:
            self._invoke(name, scheduled_event(rule_arn, tpl.region, tpl.account))
        except Exception as exc:  # the stack still serves; the audit's own error is in its log
            warn(f"warning: the first audit run failed ({type(exc).__name__}: {exc})")

    def _start_functions(self, tpl: Template, physical: dict[str, Any], endpoint: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        configs = runtime.worker_configs(
            tpl, physical, endpoint, self.overrides, self.log_dir, self.code_paths
        )
        for cfg in configs.values():
            Path(cfg.log_path or os.devnull).write_text("")  # a fresh log per run
        res = Resolver(tpl, physical)
        fns = model.functions(tpl, res)
        behind_api = {m.function for a in model.apis(tpl, res, fns) for m in a.methods if m.function}
        for name, cfg in configs.items():
            api_workers = int(os.environ.get("WAGUARD_API_WORKERS") or API_WORKERS)
            self.pools[name] = FunctionPool(cfg, api_workers if name in behind_api else QUEUE_WORKERS)
        if self.verbose:
            self.tail = LogTail({n: Path(c.log_path) for n, c in configs.items() if c.log_path})
            self.tail.start()
        with ThreadPoolExecutor(max_workers=len(self.pools) or 1) as pool:
            list(pool.map(lambda p: p.start(), self.pools.values()))
        for name, fn_pool in self.pools.items():
            if fn_pool.init_error:
                error = fn_pool.init_error
                warn(
                    f"warning: function {name} fails to start: {error['errorType']}: {error['errorMessage']}"
                )

    def _first_sync(self, schedule: Any, physical: dict[str, Any], tpl: Template) -> None:
        """Read the template registry once before the API is served, as the deployed stack does after a
        deploy; a failure is reported and left to the schedule and the next send's miss."""
        from waguard.schedules import scheduled_event

        event = scheduled_event(str(physical[schedule.logical_id].attrs["Arn"]), tpl.region, tpl.account)
        try:
            self._invoke(schedule.function, event)
        except Exception as exc:
            warn(f"templates: first sync failed ({type(exc).__name__})")

    def _start_forwarding(self, tpl: Template, physical: dict[str, Any], endpoint: str) -> None:
        import secrets

        from waguard import forwarder

        self.events_key = os.environ.get("WG_EVENTS_KEY") or secrets.token_urlsafe(24)
        base = float(os.environ.get("WA_RETRY_BASE_SECONDS") or runtime.retry_base_seconds(tpl))
        assert self.forward_events is not None
        self.forwarder = forwarder.start(
            tpl, physical, endpoint, self.forward_events, self.events_key, base, report=warn
        )

    def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        pool = self.pools.get(function)
        if pool is None:
            raise InvocationError("ResourceNotFoundException", f"no function {function}")
        return pool.invoke(event)

    def _invoker(self, function: str) -> Callable[[dict[str, Any]], Any]:
        return lambda event: self._invoke(function, event)

    def ready_lines(self) -> list[str]:
        assert self.tpl is not None
        lines = [
            f"secret {name}={self.secret_values[name]}"
            for name in ("WA_APP_SECRET", "WA_VERIFY_TOKEN", "WA_ACCESS_TOKEN")
        ]
        lines.append(f"env WA_PHONE_NUMBER_ID={self.overrides['WA_PHONE_NUMBER_ID']}")
        lines.append(f"env WA_BUSINESS_ACCOUNT_ID={self.overrides['WA_BUSINESS_ACCOUNT_ID']}")
        numbers = [n.strip() for n in self.overrides["WA_PHONE_NUMBER_ID"].split(",") if n.strip()]
        lines.append("business-numbers " + " ".join(numbers) + f" default={numbers[0]}")
        if self.graph_url:
            lines.append(f"graph {self.graph_url}")
        for principal in self.principals.values():
            if principal.role:
                lines.append(f"role {principal.role} {principal.access_key} {principal.secret_key}")
        if self.events_key:
            lines.append(f"events-key {self.events_key}")
        lines.append(f"logs {self.log_dir}")
        lines.append(f"api {self.api_url}")
        lines.append(f"aws {self.aws_url} region={self.tpl.region}")
        return lines

    def stop(self) -> None:
        if self.api_server is not None:
            self.api_server.stop()
        for poller in self.pollers:
            poller.stop()
        for scheduler in self.schedulers:
            scheduler.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        for fn_pool in self.pools.values():
            fn_pool.close()
        for poller in self.pollers:
            poller.join(5)
        if self.graph is not None:
            runtime.stop_server(self.graph)
        if self.moto is not None:
            self.moto.stop()
        if self.tail is not None:
            self.tail.stopping.set()
            self.tail.join(2)
        if self.audit_dir is not None:
            shutil.rmtree(self.audit_dir, ignore_errors=True)


def run(
    host: str,
    port: int,
    aws_port: int,
    verbose: bool = False,
    log_dir: Path | None = None,
    forward_events: str | None = None,
) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(
        host, port, aws_port, verbose, log_dir, cancelled=stopping.is_set, forward_events=forward_events
    )
    code = 0
    try:
        stack.start()
        for line in stack.ready_lines():
            say(line)
        while not stopping.wait(0.5):
            pass
        say("stopping")
    except KeyboardInterrupt:
        say("stopping")
    except (TemplateError, materialize.MaterializeError, OSError, ValueError) as exc:
        warn(f"error: {exc}")
        code = 1
    except Exception as exc:  # anything else at start-up: say what, stop what started
        warn(f"error: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        started = time.monotonic()
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if code == 0:
            say(f"stopped ({time.monotonic() - started:.1f}s)")
    return code
