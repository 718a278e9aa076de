"""The secrets, split by need (constants.SECRETS): each function reads only those it is granted.

A field is read from the secret that serves it (constants.SECRET_OF_FIELD), whose ARN is in that
secret's environment key; a function without that key was not granted the secret, and asking for the
field is a ConfigurationError, never a read of another secret.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from shared import constants as c
from shared.settings import ConfigurationError

_MAX_AGE_SECONDS = 300


@cache
def _provider() -> Any:
    """Powertools' Secrets Manager provider on the process's default boto3 session (shared.session)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from shared.session import default_session

    return SecretsProvider(boto3_session=default_session())


def _secret(name: str) -> dict[str, Any]:
    """One secret's fields, cached for five minutes (Powertools Parameters)."""
    secret_id = os.environ.get(c.ENV_SECRET_ID[name], "")
    if not secret_id:
        raise ConfigurationError(f"this function is not granted the {name} secret")
    value: Any = _provider().get(secret_id, transform="json", max_age=_MAX_AGE_SECONDS)
    if not isinstance(value, dict):
        raise ConfigurationError(f"the {name} secret is not a JSON object")
    return value


def get_secret_field(name: str, *, required: bool = True) -> str:
    """A field of the secret that serves it; ConfigurationError when it is missing, empty or still the
    stack's placeholder (or "" when not `required`). The secret itself must be granted either way."""
    value = _secret(c.SECRET_OF_FIELD[name]).get(name, "")
    if value == c.SECRET_PLACEHOLDER:  # not filled in yet: nothing may be verified or sent with it
        value = ""
    if not value and required:
        raise ConfigurationError(f"the {c.SECRET_OF_FIELD[name]} secret has no {name!r} field")
    return str(value or "")


def clear_cache() -> None:
    """Forget the secrets' values (a rotated one is read again); the provider and its client stay."""
    if _provider.cache_info().currsize:
        _provider().clear_cache()


def reset() -> None:
    """Forget the provider too (tests switch endpoints and environments)."""
    _provider.cache_clear()
