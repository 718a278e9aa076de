"""Small helpers of the scenario tests."""

from __future__ import annotations

import os
import time
from typing import Any

from waguard.demo import Client, wait_for


def unique_phone() -> str:
    """A wa_id no other test uses (the stack is shared by the session)."""
    return "49151" + str(int.from_bytes(os.urandom(4), "big") % 10**8).zfill(8)


def exported_texts(client: Client, contact: str, direction: str = "in") -> list[Any]:
    reply = client.export(contact)
    if reply.status != 200:
        return []
    return [m.get("text") for m in reply.json()["messages"] if m.get("direction") == direction]


def calls_to(graph: Any, phone: str, path: str = "/messages") -> list[dict[str, Any]]:
    """The Graph fake's calls (on `path`) whose body names `phone`: other tests share the fake."""
    return [c for c in graph.calls(path) if isinstance(c["body"], dict) and c["body"].get("to") == phone]


def quiet(graph: Any, seconds: float = 1.5) -> None:
    """Wait until no call has reached the Graph fake for `seconds` (other tests' sends are asynchronous),
    before a test scripts the fake's next answers."""

    def settled() -> bool:
        before = len(graph.calls(""))
        time.sleep(seconds)
        return len(graph.calls("")) == before

    wait_for(settled, timeout=60)
