"""Function workers: one process per function instance, like one Lambda execution environment.

A worker sets exactly the environment the function has in the template (references resolved to the
local resources, `AWS_ENDPOINT_URL` pointing at the local AWS endpoint), puts the code root first on
`sys.path`, imports the handler once (cold start) and then serves invocations one at a time over a
pipe: an event in, the JSON response (or Lambda's error object) out. Its stdout and stderr (the
function's logs, with Lambda's START/END/REPORT lines) go to a log file. A worker that dies or runs past
the function's timeout is replaced.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waguard import paths

# Contract variables a developer may set for the functions (README "Configuration").
PASS_THROUGH = (
    "WA_GRAPH_API_URL",
    "WA_GRAPH_API_VERSION",
    "WA_PHONE_NUMBER_ID",
    "WA_RETRY_BASE_SECONDS",
    "WA_PRIVACY_NOTICE",
    "WA_CAMPAIGN_RATE",
    "WA_MARKETING_CAP",
)
# The few process basics a Lambda environment also has (locale, paths, CA bundles, proxies).
BASE_KEYS = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
)
START_TIMEOUT = 120.0  # seconds for a cold start (imports) before the worker counts as broken
GRACE = 2.0  # seconds past the function's timeout before the worker is killed


class InvocationError(Exception):
    """The function failed: Lambda's `errorType` and `errorMessage`."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class WorkerConfig:
    name: str  # logical function name
    handler: str  # module.attr
    function_name: str
    arn: str
    timeout: int
    memory: int
    env: dict[str, str]  # the complete environment of the function
    code_paths: tuple[str, ...] = (str(paths.LAMBDAS),)
    log_path: str | None = None  # None: the worker writes to the parent's stderr


def function_env(
    environment: Mapping[str, str],
    *,
    function_name: str,
    handler: str,
    memory: int,
    region: str,
    endpoint: str,
    overrides: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one function: the template's, AWS's runtime keys, then the local overrides."""
    source = os.environ if source is None else source
    env = {k: source[k] for k in BASE_KEYS if k in source}
    env.update(environment)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "_HANDLER": handler,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: v for k, v in source.items() if k in PASS_THROUGH or k.startswith("POWERTOOLS_")})
    env["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon locally; metrics stay on (EMF to the log)
    env.update(overrides or {})
    local = "127.0.0.1,localhost"
    env["NO_PROXY"] = env["no_proxy"] = ",".join(
        x for x in (env.get("NO_PROXY") or env.get("no_proxy"), local) if x
    )
    return env


# ---- the child process -----------------------------------------------------------------------------


class LambdaContext:
    """The parts of Lambda's context object handlers and Powertools read."""

    def __init__(self, cfg: WorkerConfig, request_id: str, deadline_ms: int) -> None:
        self.function_name = cfg.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = cfg.arn
        self.memory_limit_in_mb = cfg.memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{cfg.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _redirect_output(log_path: str | None) -> None:
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    else:
        os.dup2(2, 1)  # `invoke`: the function's logs on stderr, its response alone on stdout
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def _child(conn: Any, cfg: WorkerConfig) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers; Ctrl-C reaches the whole group
    _redirect_output(cfg.log_path)
    os.environ.clear()
    os.environ.update(cfg.env)
    for path in reversed(cfg.code_paths):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    handler = None
    init_error: dict[str, Any] | None = None
    try:
        module_name, _, attr = cfg.handler.rpartition(".")
        handler = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        traceback.print_exc()
        init_error = _error(exc, "Runtime.ImportModuleError")
    conn.send(("ready", init_error))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        request_id, event_json, deadline_ms = message
        conn.send(_run(handler, init_error, cfg, request_id, event_json, deadline_ms))
    conn.close()


def _run(
    handler: Any,
    init_error: dict[str, Any] | None,
    cfg: WorkerConfig,
    request_id: str,
    event_json: str,
    deadline_ms: int,
) -> tuple[str, Any]:
    print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
    started = time.monotonic()
    try:
        if handler is None:
            outcome: tuple[str, Any] = ("error", init_error)
        else:
            result = handler(json.loads(event_json), LambdaContext(cfg, request_id, deadline_ms))
            try:
                outcome = ("ok", json.dumps(result))
            except (TypeError, ValueError) as exc:
                outcome = ("error", _error(exc, "Runtime.MarshalError"))
    except Exception as exc:
        print(f"[ERROR] {type(exc).__name__} RequestId: {request_id}", flush=True)
        traceback.print_exc()
        outcome = ("error", _error(exc))
    millis = (time.monotonic() - started) * 1000
    sys.stderr.flush()
    print(f"END RequestId: {request_id}", flush=True)
    print(
        f"REPORT RequestId: {request_id}\tDuration: {millis:.2f} ms\tMemory Size: {cfg.memory} MB",
        flush=True,
    )
    return outcome


# ---- the parent side -------------------------------------------------------------------------------

# Workers fork from one server process per `waguard serve` that has imported the libraries every function
# needs (waguard/worker_preload.py): a fresh process each, with only the function's environment, importing
# its handler as at a cold start, without parsing boto3 and its models again (about 0.6 s of CPU a worker).
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["waguard.worker_preload"])


class Worker:
    """One worker process (one execution environment)."""

    def __init__(self, cfg: WorkerConfig, index: int = 0) -> None:
        self.cfg = cfg
        self.index = index
        self.process: Any = None
        self.conn: Any = None
        self.init_error: dict[str, Any] | None = None

    def start(self) -> Worker:
        parent, child = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=_child, args=(child, self.cfg), name=f"waguard-{self.cfg.name}-{self.index}", daemon=True
        )
        self.process.start()
        child.close()
        self.conn = parent
        if not parent.poll(START_TIMEOUT):
            self.kill()
            raise InvocationError(
                "Runtime.InitTimeout", f"{self.cfg.name} did not start in {START_TIMEOUT:.0f}s"
            )
        try:
            _, self.init_error = parent.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise InvocationError("Runtime.ExitError", f"{self.cfg.name} exited while starting") from exc
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def invoke(self, event: Any, request_id: str) -> Any:
        if not self.alive() or self.conn is None:
            raise InvocationError("Runtime.ExitError", "the function's process is not running")
        timeout = float(self.cfg.timeout)
        deadline_ms = int((time.time() + timeout) * 1000)
        try:
            self.conn.send((request_id, json.dumps(event), deadline_ms))
            if not self.conn.poll(timeout + GRACE):
                self.kill()
                raise InvocationError("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
            status, payload = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self.kill()
            raise InvocationError("Runtime.ExitError", "the function's process exited") from exc
        if status == "ok":
            return json.loads(payload)
        raise InvocationError(str(payload.get("errorType")), str(payload.get("errorMessage")))

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        try:
            if self.process.is_alive():
                self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(timeout)
        self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(3)
        if self.conn is not None:
            self.conn.close()


class FunctionPool:
    """The execution environments of one function; each serves one invocation at a time."""

    def __init__(self, cfg: WorkerConfig, size: int = 1) -> None:
        self.cfg = cfg
        self.size = max(1, size)
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._workers: list[Worker] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._grow_lock = threading.Lock()

    @property
    def init_error(self) -> dict[str, Any] | None:
        return next((w.init_error for w in self._workers if w.init_error), None)

    def start(self) -> FunctionPool:
        if self.cfg.log_path:
            Path(self.cfg.log_path).parent.mkdir(parents=True, exist_ok=True)
        # One warm worker; the others start when a request finds every worker busy (a cold start, as Lambda
        # scales out): a stack whose functions mostly wait does not pay `size` imports per function.
        self._idle.put(self._add())
        return self

    def _add(self) -> Worker:
        worker = Worker(self.cfg, len(self._workers)).start()
        with self._lock:
            self._workers.append(worker)
        return worker

    def _grow(self) -> Worker | None:
        """A new worker when the pool may still grow, else None (the caller waits for a free one)."""
        with self._grow_lock:
            if len(self._workers) >= self.size or self._closed.is_set():
                return None
            return self._add()

    def invoke(self, event: Any, timeout: float | None = None) -> Any:
        """Run the handler on `event` in a free worker; raise `InvocationError` when it fails."""
        if self._closed.is_set():
            raise InvocationError("Runtime.Unavailable", "the local stack is stopping")
        found: Worker | None
        try:
            found = self._idle.get_nowait()
        except queue.Empty:
            found = self._grow()
        wait = timeout if timeout is not None else self.cfg.timeout + 30
        try:
            worker = found or self._idle.get(timeout=wait)
        except queue.Empty as exc:
            raise InvocationError(
                "TooManyRequestsException", f"{self.cfg.name}: every worker is busy"
            ) from exc
        try:
            if not worker.alive():
                worker = self._replace(worker)
            return worker.invoke(event, str(uuid.uuid4()))
        finally:
            if not worker.alive() and not self._closed.is_set():
                worker = self._replace(worker)
            self._idle.put(worker)

    def _replace(self, worker: Worker) -> Worker:
        worker.kill()
        fresh = Worker(self.cfg, worker.index)
        try:
            fresh.start()
        except InvocationError:
            pass  # still dead: the next invocation tries again
        with self._lock:
            self._workers = [fresh if w is worker else w for w in self._workers]
        return fresh

    def close(self) -> None:
        self._closed.set()
        threads = [threading.Thread(target=w.stop) for w in list(self._workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
