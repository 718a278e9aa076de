"""Meta's OpenAPI file parsed once per content (waguard/meta_schema.py `_parsed`): the kept document is the
parsed one, an unreadable or foreign cache is parsed again, and another content gets its own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml

from waguard import meta_schema

DOC = (
    b"openapi: 3.0.0\npaths:\n  /x:\n    get:\n      responses:\n        200: {description: ok}\n"
    b"n: [1, 2.5, true, null]\n"
)


@pytest.fixture
def tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path / f"waguard-{os.getuid()}"


def test_the_kept_document_is_the_parsed_one(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = meta_schema._parsed(DOC)
    assert first == yaml.safe_load(DOC) and first["paths"]["/x"]["get"]["responses"][200]
    assert oct(tmp.stat().st_mode & 0o777) == "0o700" and len(list(tmp.iterdir())) == 1
    monkeypatch.setattr(yaml, "load", lambda *a, **k: pytest.fail("parsed again"))
    assert meta_schema._parsed(DOC) == first


def test_an_unreadable_or_foreign_cache_is_parsed_again(tmp: Path) -> None:
    meta_schema._parsed(DOC)
    (kept,) = tmp.iterdir()
    kept.write_bytes(b"\x00not marshal")
    assert meta_schema._parsed(DOC) == yaml.safe_load(DOC)
    tmp.chmod(0o777)  # others could have written it: not trusted, parsed again
    kept.write_bytes(__import__("marshal").dumps({"planted": True}))
    assert meta_schema._parsed(DOC) == yaml.safe_load(DOC)


def test_another_content_is_kept_apart(tmp: Path) -> None:
    other = DOC.replace(b"2.5", b"3.5")
    assert meta_schema._parsed(DOC)["n"][1] == 2.5
    assert meta_schema._parsed(other)["n"][1] == 3.5
    assert len(list(tmp.iterdir())) == 2
