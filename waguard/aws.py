"""The local AWS endpoint (moto's server) and boto3 clients for it, with moto's credentials."""

from __future__ import annotations

import functools
import logging
import socket
import threading
from typing import Any

ACCESS_KEY = "testing"  # moto's credentials; also the local administrator's SigV4 key (contract)
SECRET_KEY = "testing"  # noqa: S105 - the public moto default, by contract
ADMIN_KEY = (ACCESS_KEY, SECRET_KEY)  # the local administrator's SigV4 key pair


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def connect_host(host: str) -> str:
    """The address clients use for a server bound to `host` (a wildcard bind is reached on loopback)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - comparing, not binding


def url(host: str, port: int) -> str:
    host = connect_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def client(service: str, endpoint: str, region: str) -> Any:
    """A boto3 client for the local endpoint (cached: creating one costs a few hundred milliseconds)."""
    key = (service, endpoint, region)
    with _LOCK:
        if key not in _CLIENTS:
            from botocore.config import Config

            _CLIENTS[key] = _session().client(
                service,
                endpoint_url=endpoint,
                region_name=region,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return _CLIENTS[key]


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def check_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def reset_moto(endpoint: str) -> None:
    """Forget every resource of the moto server at `endpoint` (moto's state is per process)."""
    import urllib.request

    request = urllib.request.Request(endpoint + "/moto-api/reset", method="POST")  # noqa: S310 - local
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def start_moto(host: str, port: int) -> Any:
    """moto's server in a thread of this process; `.stop()` ends it."""
    from moto.server import ThreadedMotoServer

    from waguard import moto_fixes

    moto_fixes.install()  # one DynamoDB request at a time, as DynamoDB applies them, under its threads
    check_free(host, port)  # moto's thread would wait forever on a port it cannot bind

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines (paths can hold ids)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server
