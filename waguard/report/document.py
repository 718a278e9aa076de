"""The report as a document: sections of headings, paragraphs, bullets and tables of cells (text or
badges), rendered to Markdown or HTML by the Jinja2 templates in `templates/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Badge:
    text: str
    kind: str  # "ok", "gap", "warn", "info"


Cell = str | Badge


@dataclass
class Table:
    kind: ClassVar[str] = "table"
    headers: list[str]
    rows: list[list[Cell]]


@dataclass
class Para:
    kind: ClassVar[str] = "para"
    text: str


@dataclass
class Bullets:
    kind: ClassVar[str] = "bullets"
    items: list[Cell]


@dataclass
class Heading:
    kind: ClassVar[str] = "heading"
    text: str
    level: int = 3
    anchor: str | None = None


Block = Table | Para | Bullets | Heading


@dataclass
class Section:
    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    meta: list[tuple[str, str]]
    summary: list[Cell]
    sections: list[Section]
