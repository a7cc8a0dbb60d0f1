"""Markdown and HTML from the report's sections, through the Jinja2 templates in ``templates/``.

Nothing is decided here: the findings (:mod:`pipeline.report.findings`) hold every sentence and
every formatted number; this module only turns each block into the view the templates need (a
table's header, alignment and rows; a figure's embedded image) and fills ``report.md.j2`` and
``report.html.j2``. The HTML template escapes everything it prints (Jinja2's autoescape); the
only markup a paragraph may carry is ``**bold**``, turned into ``<strong>`` after escaping.
"""
from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from analysis import apa
from pipeline.report.model import SIMULATED_LINE, Figure, ReferenceList, Report, Table

__all__ = ["render_markdown", "render_html", "numeric_columns", "TEMPLATES"]

TEMPLATES = Path(__file__).parent / "templates"


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers only (right-aligned), as opposed to text (left-aligned)."""
    out = []
    for c in frame.columns:
        cells = [str(v) for v in frame[c] if str(v).strip()]
        out.append(bool(cells) and all(not math.isnan(apa.parse_number(v)) for v in cells))
    return out


@dataclass(frozen=True)
class TableView:
    key: str
    number: int
    title: str
    header: list
    numeric: list
    rows: list
    note: str


@dataclass(frozen=True)
class FigureView:
    key: str
    number: int
    title: str
    note: str
    base64: str


def _view(block):
    if isinstance(block, Table):
        return TableView(block.key, block.number, block.title, [str(c) for c in block.frame.columns],
                         numeric_columns(block.frame),
                         [[str(v) for v in row] for row in block.frame.itertuples(index=False)], block.note)
    if isinstance(block, Figure):
        return FigureView(block.key, block.number, block.title, block.note,
                          base64.b64encode(block.svg or b"").decode("ascii"))
    return block


def _ref_inline(text) -> Markup:
    """A reference-list entry for HTML: escaped, then ``*italic*`` as ``<em>``."""
    s = str(escape(str(text)))
    return Markup(re.sub(r"\*(.+?)\*", r"<em>\1</em>", s))


def _md_cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _inline(text) -> Markup:
    """A paragraph for HTML: escaped, then ``**bold**`` as ``<strong>``."""
    s = str(escape(str(text)))
    return Markup(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s))


@lru_cache(maxsize=None)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html.j2"]),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined)
    env.filters["md_cell"] = _md_cell
    env.filters["inline"] = _inline
    env.filters["ref_inline"] = _ref_inline
    env.tests["table"] = lambda b: isinstance(b, TableView)
    env.tests["figure"] = lambda b: isinstance(b, FigureView)
    env.tests["bullets"] = lambda b: isinstance(b, list)
    env.tests["references"] = lambda b: isinstance(b, ReferenceList)
    return env


def _context(report: Report) -> dict:
    sections = [report.summary, *report.sections] + ([report.about] if report.about is not None else [])
    return {"title": report.title, "simulated": report.simulated, "simulated_line": SIMULATED_LINE,
            "sections": [{"key": s.key, "title": s.title, "blocks": [_view(b) for b in s.blocks]} for s in sections]}


def render_markdown(report: Report) -> str:
    """The report as Markdown (GitHub-flavoured tables, figures linked as figures/<key>.svg)."""
    text = _environment().get_template("report.md.j2").render(**_context(report))
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS, figures as base64 SVG)."""
    return _environment().get_template("report.html.j2").render(**_context(report)).rstrip() + "\n"
