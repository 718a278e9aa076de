"""The local AWS endpoint (moto's server) and boto3 clients for it, with moto's credentials."""

from __future__ import annotations

import logging
import socket
from typing import Any

ACCESS_KEY = "testing"  # moto's credentials; also the local administrator's SigV4 key (contract)
SECRET_KEY = "testing"  # noqa: S105 - the public moto default, by contract


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


def client(service: str, endpoint: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def start_moto(host: str, port: int) -> Any:
    """moto's server in a thread of this process; `.stop()` ends it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines (paths can hold ids)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server
