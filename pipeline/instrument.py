"""Stage ``render`` and the ``gapscale instrument`` commands: validate and render an instrument."""
from __future__ import annotations

from pathlib import Path

from instrument import load_instrument
from instrument.render import codebook, to_html, to_markdown, to_qualtrics
from instrument.schema import InstrumentError, model_problems
from pipeline.io import output_dir, write_csv, write_text

__all__ = ["validate", "render", "RENDER_OUTPUTS"]

RENDER_OUTPUTS = ("questionnaire.md", "questionnaire.html", "codebook.csv", "qualtrics.txt")


def validate(path: str | Path) -> str:
    """Load and check an instrument (and its model file); return a one-line summary.

    Raises
    ------
    InstrumentError
        With every problem found.
    """
    inst = load_instrument(path)
    problems = model_problems(inst)
    if problems:
        raise InstrumentError(str(path), problems)
    model = f", model {inst.model.name}" if inst.model else ""
    return (
        f"{path}: valid instrument '{inst.name}': {len(inst.constructs)} constructs, {len(inst.items)} items "
        f"({sum(i.reverse for i in inst.items)} reverse-keyed), {len(inst.attention_checks)} attention checks, "
        f"{len(inst.context)} context questions{model}"
    )


def render(path: str | Path, out: str | Path) -> list[Path]:
    """Write the questionnaire (Markdown, HTML), the codebook and the Qualtrics TXT into ``out``."""
    inst = load_instrument(path)
    out = output_dir(out)
    files = dict(zip(RENDER_OUTPUTS, (to_markdown(inst), to_html(inst), None, to_qualtrics(inst))))
    written = []
    for name, text in files.items():
        target = out / name
        if name == "codebook.csv":
            write_csv(codebook(inst), target)
        else:
            write_text(text, target)
        written.append(target)
    return written
