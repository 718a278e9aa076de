"""Rendering the report document through the Jinja2 templates in `templates/`: `report.md.j2` (Markdown)
and `report.html.j2` (one self-contained page, autoescaped, with the static stylesheet `report.css`)."""

from __future__ import annotations

import re
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from waguard.report.document import Badge, Cell, Document


def md_cell(cell: Cell) -> str:
    """A table or bullet cell in Markdown: pipes escaped, one line, gaps in bold."""
    text = cell.text if isinstance(cell, Badge) else cell
    text = text.replace("|", "\\|").replace("\n", " ")
    if isinstance(cell, Badge) and cell.kind == "gap":
        return f"**{text}**"
    return text


def html_inline(text: str) -> Markup:
    """Escaped text with `code` spans and [title](#anchor) links (internal only) as HTML."""
    out = str(escape(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\[([^\]]+)\]\((#[a-z0-9-]+)\)", r'<a href="\2">\1</a>', out)
    return Markup(out)  # noqa: S704 - built from escaped text only


def html_cell(cell: Cell) -> Markup:
    if isinstance(cell, Badge):
        short = " nw" if len(cell.text) <= 32 else ""
        return Markup('<span class="b {}{}">{}</span>').format(cell.kind, short, cell.text)
    return html_inline(cell)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("waguard.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.filters.update(md_cell=md_cell, html_inline=html_inline, html_cell=html_cell)
    return env


def render_md(doc: Document) -> str:
    text = environment().get_template("report.md.j2").render(doc=doc)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def render_html(doc: Document) -> str:
    return environment().get_template("report.html.j2").render(doc=doc).rstrip() + "\n"
