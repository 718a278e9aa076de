"""`Idempotency-Key` on `POST /messages`: the same (caller, key) answers the same and sends once.

Powertools Idempotency (DynamoDBPersistenceLayer, composite key on the idempotency table) keeps one
record per (caller, key); the record's key is computed here as Powertools computes it, so the message
item can name it (`idem_pk`/`idem_sk`) and an erasure deletes it with the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from domain.errors import Refused
from shared import constants as c
from shared.observability import logger
from shared.settings import get_settings

IDEMPOTENCY_PK = "idempotency#messages-api"
IDEMPOTENCY_KEY_PREFIX = "messages-api.send"
IDEMPOTENCY_HASH = "sha256"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as HTTP header tokens

Accept = Callable[[dict[str, str]], dict[str, str]]  # the accepting call, given its record's key


def record_key(caller: str, key: str) -> dict[str, str]:
    """The pk/sk of the Powertools idempotency record of (caller, Idempotency-Key), computed as Powertools
    does (`<key_prefix>#<hash of the jmespath-extracted data>`), so erasure can delete it."""
    data = [caller, key]  # what IdempotencyConfig.event_key_jmespath "[caller, key]" extracts
    digest = hashlib.new(IDEMPOTENCY_HASH, json.dumps(data, sort_keys=True).encode()).hexdigest()
    return {"pk": IDEMPOTENCY_PK, "sk": f"{IDEMPOTENCY_KEY_PREFIX}#{digest}"}


def _session() -> Any:
    """The process's default boto3 session (shared.session). (The stores' client is a resource's, which
    converts values itself, so Powertools cannot share it.)"""
    from shared.session import default_session

    return default_session()


class _Idempotency:
    """The Powertools persistence layer, config and wrapped call, built on first use."""

    def __init__(self) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        from shared.settings import table_name

        self.config = IdempotencyConfig(
            event_key_jmespath="[caller, key]",
            payload_validation_jmespath="body",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=get_settings().retention_seconds(c.CLASS_IDEMPOTENCY),
            hash_function=IDEMPOTENCY_HASH,
        )
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table_name(c.TABLE_IDEMPOTENCY),
            key_attr=c.PK,
            sort_key_attr=c.SK,
            static_pk_value=IDEMPOTENCY_PK,
            expiry_attr=c.TTL_ATTRIBUTE,
            boto3_session=_session(),
        )

        def once(request: dict[str, Any], run: Accept, idem_key: dict[str, str]) -> dict[str, str]:
            return run(idem_key)

        self.once = idempotent_function(
            once,
            data_keyword_argument="request",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )


_idem: _Idempotency | None = None
_context: Any = None


def _idempotency() -> _Idempotency:
    global _idem  # noqa: PLW0603 - one per container, built on first use
    if _idem is None:
        _idem = _Idempotency()
        if _context is not None:
            _idem.config.register_lambda_context(_context)
    return _idem


def register_context(context: Any) -> None:
    """The invocation's Lambda context: an in-progress record then expires with the invocation."""
    global _context  # noqa: PLW0603
    _context = context
    if _idem is not None and context is not None:
        _idem.config.register_lambda_context(context)


def reset() -> None:
    """Forget the idempotency layer (tests switch accounts)."""
    global _idem, _context  # noqa: PLW0603
    _idem = None
    _context = None


def once(caller: str, key: str, body: dict[str, Any], run: Accept) -> dict[str, str]:
    """`run(record_key)` once per (caller, key); the same key with the same body answers the same, with
    another body 422, while the first is in progress 409, with the store unavailable 503."""
    if not _IDEMPOTENCY_KEY.match(key):
        raise Refused(400, "invalid_body", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    payload = {"caller": caller, "key": key, "body": body}
    try:
        return _idempotency().once(request=payload, run=run, idem_key=record_key(caller, key))
    except IdempotencyValidationError as exc:
        raise Refused(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different request body"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Refused(
            409, "idempotency_in_progress", "a request with this Idempotency-Key is in progress"
        ) from exc
    except IdempotencyPersistenceLayerError as exc:
        logger.warning("idempotency store unavailable", extra={"error_type": type(exc.__cause__).__name__})
        raise Refused(503, "unavailable", "the request could not be processed; try again") from exc
