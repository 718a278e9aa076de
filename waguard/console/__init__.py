"""`waguard console --api URL [--port P] [--profile NAME]`: the operators' web console (contract: "Console").

A local web server on 127.0.0.1 only that renders the privacy officer's and operators' pages and signs
every API call with the caller's own AWS credentials (botocore: the profile, else the environment), so
it can do nothing that their role cannot. It prints `waguard: console http://127.0.0.1:P/?token=T`; the
per-run token is needed for everything (401 without it).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

DEFAULT_PORT = 8400


def run(api_url: str, port: int = DEFAULT_PORT, profile: str | None = None) -> int:
    from waguard.console.api import Api, NoCredentials
    from waguard.console.server import HOST, start

    try:
        api = Api(api_url, profile)
    except NoCredentials as exc:
        print(f"waguard: console: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # botocore's ProfileNotFound and its kin
        print(f"waguard: console: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        server = start(api, port)
    except OSError as exc:
        print(f"waguard: console: cannot listen on {HOST}:{port} ({exc.strerror})", file=sys.stderr)
        return 2
    console = server.console
    print(f"waguard: console http://{HOST}:{console.port}/?token={console.token}", flush=True)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0
