"""The process's one boto3 session, shared by the libraries that would otherwise build their own."""

from __future__ import annotations

from typing import Any


def default_session() -> Any:
    """boto3's default session, created on first use. A library's own session (Powertools' default, for
    its Secrets provider and its idempotency layer) would parse the service models again: a cold start's
    cost for nothing."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    return boto3.DEFAULT_SESSION
