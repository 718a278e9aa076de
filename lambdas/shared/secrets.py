"""The one Secrets Manager secret: app secret, verify token, access token, contact pseudonym key."""

from __future__ import annotations

from typing import Any

from shared import constants as c
from shared.settings import ConfigurationError, require_env

_MAX_AGE_SECONDS = 300


def get_secrets() -> dict[str, str]:
    """The secret's fields, cached for five minutes (Powertools Parameters)."""
    from aws_lambda_powertools.utilities import parameters

    value: Any = parameters.get_secret(
        require_env(c.ENV_SECRET_ID), transform="json", max_age=_MAX_AGE_SECONDS
    )
    if not isinstance(value, dict):
        raise ConfigurationError("the secret is not a JSON object")
    return value


def get_secret_field(name: str) -> str:
    value = get_secrets().get(name, "")
    if not value:
        raise ConfigurationError(f"the secret has no {name!r} field")
    return str(value)


def clear_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
