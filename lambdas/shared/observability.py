"""The one place for logger, tracer and metrics.

Personal data never reaches a log line: code logs ids it owns (message ids, pseudonyms) and counts,
never phone numbers, user ids, names or message text. As a second line of defence, a filter masks
anything that looks like a phone number or a business-scoped user id before a record is emitted.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from shared import constants as c

_PHONE = re.compile(r"(?<![\w.#])\+?\d[\d \-]{6,18}\d(?![\w])")
_USER_ID = re.compile(r"\b[A-Z]{2}(?:\.[A-Z]{2,5})?\.\d{6,64}\b")


def scrub(text: str) -> str:
    """Mask phone-number-like digit runs and business-scoped user ids."""
    return _USER_ID.sub("[user-id]", _PHONE.sub("[phone]", text))


class PersonalDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        return True


# The AWS SDK logs request and response bodies at DEBUG (queued webhooks, secret values): whatever level
# the application runs at, its loggers stay at WARNING.
SDK_LOGGERS = ("boto3", "botocore", "urllib3", "s3transfer")
for _name in SDK_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)

logger = Logger(service=c.SERVICE_NAME)
logger.addFilter(PersonalDataFilter())


@cache
def tracer() -> Any:
    """The Powertools Tracer, built on first use.

    Lambda's active tracing records every invocation without the X-Ray SDK; building a Tracer loads
    aws_xray_sdk and its recorder (about 0.4 s of cold start), so only code that adds its own
    subsegments pays for it.
    """
    from aws_lambda_powertools import Tracer

    return Tracer(service=c.SERVICE_NAME)


metrics = Metrics(namespace=c.METRICS_NAMESPACE, service=c.SERVICE_NAME)
