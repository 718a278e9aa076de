"""Small helpers of the scenario tests."""

from __future__ import annotations

import os
from typing import Any

from waguard.demo import Client


def unique_phone() -> str:
    """A wa_id no other test uses (the stack is shared by the session)."""
    return "49151" + str(int.from_bytes(os.urandom(4), "big") % 10**8).zfill(8)


def exported_texts(client: Client, contact: str, direction: str = "in") -> list[Any]:
    reply = client.export(contact)
    if reply.status != 200:
        return []
    return [m.get("text") for m in reply.json()["messages"] if m.get("direction") == direction]
