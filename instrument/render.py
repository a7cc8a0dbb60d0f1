"""Render an instrument: questionnaire (Markdown, standalone HTML), codebook, Qualtrics TXT.

The respondent-facing versions (Markdown, HTML, Qualtrics) show section titles, intros and
question texts only: no construct names, no reverse keys. The codebook is for the researcher
and shows everything.

The Qualtrics file follows the "Advanced Format" for survey import (Qualtrics support,
*Import and export surveys: preparing an Advanced Format TXT file*): it starts with
``[[AdvancedFormat]]``; ``[[Block:...]]`` opens a block; each question starts with
``[[Question:TYPE]]`` and ``[[ID:...]]`` (the item id, so exported columns carry gapscale's
names), then its text, then ``[[AdvancedChoices]]`` with ``[[Choice:value]]`` lines so the
recorded value of each answer is the scale value.

Answers outside the scale (``scale.outside``: "Not applicable", "Don't know") are shown after the
scale's points on the questions that offer them, with their codes: in Qualtrics as further
``[[Choice:code]]`` lines, so the export holds the code the clean stage recognises; on a page
whose questions all offer an option the shared legend names it once.
"""
from __future__ import annotations

import html

import pandas as pd

from instrument.schema import AttentionCheck, ContextQuestion, Instrument, Item, Scale

__all__ = ["codebook", "to_html", "to_markdown", "to_qualtrics", "CODEBOOK_COLUMNS"]

CODEBOOK_COLUMNS = ["variable", "kind", "label", "construct", "reverse", "allowed_values", "expected", "text"]


def _text(q) -> str:
    if q.text:
        return " ".join(q.text.split())
    return f"[{q.id}: no text given]"


def _scale_legend(scale: Scale) -> str:
    if scale.type == "likert":
        return ", ".join(f"{p} = {scale.labels[p]}" if p in scale.labels else str(p) for p in scale.points)
    return f"any number{'' if not scale.bounded else f' from {scale.min:g} to {scale.max:g}'}"


def _outside(q) -> tuple:
    """The answers outside the scale that a question offers (none for context questions)."""
    return () if isinstance(q, ContextQuestion) else q.scale.outside_for(q.id)


def _outside_legend(options) -> str:
    return ", ".join(f"{o.code} = {o.label}" for o in options)


def _answer_hint(q) -> str:
    if isinstance(q, ContextQuestion):
        if q.type == "categorical":
            return "one of: " + ", ".join(str(v) for v in q.values)
        return q.describe()
    extra = _outside(q)
    return _scale_legend(q.scale) + (f"; or {_outside_legend(extra)}" if extra else "")


# --------------------------------------------------------------------------- Markdown


def to_markdown(instrument: Instrument) -> str:
    """The questionnaire as Markdown, numbered in the order a respondent sees it."""
    lines = [f"# {instrument.name}", ""]
    if instrument.instructions:
        lines += [" ".join(instrument.instructions.split()), ""]
    n = 0
    for page in instrument.pages():
        if page.title:
            lines += [f"## {page.title}", ""]
        if page.intro:
            lines += [" ".join(page.intro.split()), ""]
        rated = [q for q in page.questions if not isinstance(q, ContextQuestion)]
        scales = [q.scale for q in rated]
        shared = bool(scales) and all(s == scales[0] for s in scales)
        common = [o for o in _outside(rated[0]) if all(o in _outside(q) for q in rated)] if shared else []
        if shared:
            also = f"; or {_outside_legend(common)}" if common else ""
            lines += [f"*Answer scale: {_scale_legend(scales[0])}{also}.*", ""]
        for q in page.questions:
            n += 1
            if shared and not isinstance(q, ContextQuestion):
                extra = [o for o in _outside(q) if o not in common]
                hint = f" *(or {_outside_legend(extra)})*" if extra else ""
            else:
                hint = f" *({_answer_hint(q)})*"
            lines.append(f"{n}. {_text(q)}{hint}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:58rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccc;padding-bottom:.3rem}
.q{margin:1.1rem 0;padding:.6rem .8rem;background:#f7f7f9;border-radius:6px}
.q p{margin:0 0 .5rem 0}.num{font-weight:600;margin-right:.4rem}
.scale{display:flex;flex-wrap:wrap;gap:.4rem}
.scale label{flex:1 1 0;min-width:5.5rem;text-align:center;font-size:.85rem;border:1px solid #ddd;border-radius:4px;padding:.3rem;background:#fff}
.scale input{display:block;margin:0 auto .2rem}
.choices label{display:block;margin:.15rem 0}
.scale label.outside{flex:0 1 auto;background:#eef;border-style:dashed}
"""


def to_html(instrument: Instrument) -> str:
    """The questionnaire as one standalone HTML page (inline CSS, no scripts, no external files)."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(instrument.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(instrument.name)}</h1>",
    ]
    if instrument.instructions:
        out.append(f'<p class="instructions">{e(" ".join(instrument.instructions.split()))}</p>')
    out.append('<form method="post" action="#">')
    n = 0
    for page in instrument.pages():
        out.append("<section>")
        if page.title:
            out.append(f"<h2>{e(page.title)}</h2>")
        if page.intro:
            out.append(f'<p class="intro">{e(" ".join(page.intro.split()))}</p>')
        for q in page.questions:
            n += 1
            out.append(f'<div class="q" id="q-{e(q.id)}"><p><span class="num">{n}.</span>{e(_text(q))}</p>')
            out.append(_html_answer(q))
            out.append("</div>")
        out.append("</section>")
    out.append('<p><button type="submit">Submit</button></p></form></body></html>')
    return "\n".join(out) + "\n"


def _html_answer(q) -> str:
    e = html.escape
    name = e(q.id)
    if isinstance(q, ContextQuestion):
        if q.type == "categorical":
            opts = "".join(
                f'<label><input type="radio" name="{name}" value="{e(str(v))}"> {e(str(v))}</label>' for v in q.values
            )
            return f'<div class="choices">{opts}</div>'
        if q.type in ("integer", "number"):
            step = "1" if q.type == "integer" else "any"
            lo = "" if q.min is None else f' min="{q.min:g}"'
            hi = "" if q.max is None else f' max="{q.max:g}"'
            return f'<input type="number" name="{name}" step="{step}"{lo}{hi}>'
        return f'<input type="text" name="{name}">'
    scale = q.scale
    if scale.type == "likert":
        opts = "".join(
            f'<label><input type="radio" name="{name}" value="{p}">{e(scale.labels.get(p, str(p)))}</label>'
            for p in scale.points
        )
        opts += "".join(
            f'<label class="outside"><input type="radio" name="{name}" value="{o.code}">{e(o.label)}</label>'
            for o in _outside(q)
        )
        return f'<div class="scale">{opts}</div>'
    lo = "" if scale.min is None else f' min="{scale.min:g}"'
    hi = "" if scale.max is None else f' max="{scale.max:g}"'
    return f'<input type="number" name="{name}" step="any"{lo}{hi}>'


# --------------------------------------------------------------------------- codebook


def codebook(instrument: Instrument) -> pd.DataFrame:
    """One row per data column: what it holds and which values it may take.

    Columns: ``variable, kind, label, construct, reverse, allowed_values, expected, text``;
    ``kind`` is ``id``, ``cluster``, ``context``, ``item``, ``attention_check``, ``duration`` or
    ``personal_data`` (dropped by the clean stage, never analysed). An item's allowed values name
    the answers outside the scale it offers (missing in the analysis).
    """
    rows = []

    def row(variable, kind, label="", construct="", reverse="", allowed="", expected="", text=""):
        rows.append(dict(variable=variable, kind=kind, label=label, construct=construct, reverse=reverse,
                         allowed_values=allowed, expected=expected, text=text))

    if instrument.id_column:
        row(instrument.id_column, "id", "Respondent identifier", allowed="unique per respondent")
    if instrument.cluster_column:
        row(instrument.cluster_column, "cluster", "Organisation of the respondent (pseudonymised by the clean stage)",
            allowed="any text; one value per organisation")

    def allowed(q) -> str:
        extra = _outside(q)
        outside = "; ".join(f"{o.code}={o.label}" for o in extra)
        return q.scale.describe() + (f"; outside the scale (missing): {outside}" if extra else "")
    for page in instrument.pages():
        for q in page.questions:
            if isinstance(q, Item):
                c = instrument.construct(q.construct)
                row(q.id, "item", q.label or c.label or q.construct, q.construct, q.reverse,
                    allowed(q), text=q.text or "")
            elif isinstance(q, AttentionCheck):
                row(q.id, "attention_check", "Attention check", allowed=allowed(q),
                    expected="; ".join(f"{v:g}" for v in q.expected), text=q.text or "")
            else:
                row(q.id, "context", q.id.replace("_", " ").capitalize(), allowed=q.describe(), text=q.text or "")
    if instrument.duration_column:
        row(instrument.duration_column, "duration", "Completion time", allowed="seconds, > 0")
    for col in instrument.personal_data:
        row(col, "personal_data", "Personal data: dropped before anything is written")
    return pd.DataFrame(rows, columns=CODEBOOK_COLUMNS)


# --------------------------------------------------------------------------- Qualtrics


def to_qualtrics(instrument: Instrument) -> str:
    """The questionnaire in Qualtrics' Advanced Format TXT, ready for Import Survey."""
    out = ["[[AdvancedFormat]]", ""]
    first = True
    for k, page in enumerate(instrument.pages()):
        out += [f"[[Block:{_qx(page.title or f'Block {k + 1}')}]]", ""]
        if first and instrument.instructions:
            out += ["[[Question:DB]]", "[[ID:instructions]]", _qx(instrument.instructions), ""]
        first = False
        if page.intro:
            out += ["[[Question:DB]]", f"[[ID:{page.id or f'block{k + 1}'}_intro]]", _qx(page.intro), ""]
        for q in page.questions:
            out += _qualtrics_question(q) + [""]
        out += ["[[PageBreak]]", ""]
    while out and out[-1] in ("", "[[PageBreak]]"):
        out.pop()
    return "\n".join(out) + "\n"


def _qualtrics_question(q) -> list[str]:
    text = _qx(_text(q))
    if isinstance(q, ContextQuestion):
        if q.type == "categorical":
            choices = [line for j, v in enumerate(q.values, start=1) for line in (f"[[Choice:{j}]]", _qx(str(v)))]
            return ["[[Question:MC:SingleAnswer:Vertical]]", f"[[ID:{q.id}]]", text, "[[AdvancedChoices]]", *choices]
        return ["[[Question:TE:SingleLine]]", f"[[ID:{q.id}]]", text]
    scale = q.scale
    if scale.type == "likert":
        choices = [line for p in scale.points for line in (f"[[Choice:{p}]]", _qx(scale.labels.get(p, str(p))))]
        choices += [line for o in _outside(q) for line in (f"[[Choice:{o.code}]]", _qx(o.label))]
        return ["[[Question:MC:SingleAnswer:Horizontal]]", f"[[ID:{q.id}]]", text, "[[AdvancedChoices]]", *choices]
    return ["[[Question:TE:SingleLine]]", f"[[ID:{q.id}]]", text]


def _qx(s: str) -> str:
    """One line of Qualtrics text: no line breaks, no tag brackets."""
    return " ".join(str(s).split()).replace("[[", "[").replace("]]", "]")
