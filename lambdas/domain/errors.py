"""The one domain error: a request the contract refuses, with its HTTP status, stable code and message.

The domain raises it; the handlers' resolver maps it to the contract's JSON error body in one place
(`handlers.http.make_resolver`). Messages never hold personal data.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the contract refuses: HTTP status, stable code, message (no personal data)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
