"""Stage ``report``: every stage's outputs as a paper's methods and results, in Markdown and HTML.

The report reads what the stages wrote (their JSON metrics and CSV tables), never the data, and
prints the numbers in APA style (:mod:`analysis.apa`). The sections follow a scale-validation
paper: sample and screening, exploratory factor analysis, confirmatory factor analysis,
reliability and validity, measurement invariance, structural model; then a draft
methods-and-results text in APA prose and the reference list of every method cited. A
plain-language summary comes first: what was tested, what held, what did not, and every warning
a stage raised. When the data are simulated, the first line says so. An inadmissible model is
shown for diagnosis and never interpreted; a figure that cannot be drawn is a stated gap, not a
skipped number.

The package is split as DESIGN.md asks ("reports are built from templates and pure findings
functions"): this module is the thin stage (read the files, call the findings, draw the figures,
render the templates, write); :mod:`pipeline.report.findings` decides what the numbers say (pure
functions, no I/O); :mod:`pipeline.report.figures` draws; :mod:`pipeline.report.render` fills the
Jinja2 templates in ``templates/`` (``report.md.j2``, ``report.html.j2``).

Outputs, in ``out``:

- ``report.md`` and ``report.html``: the HTML page is self-contained (figures are embedded as
  base64 SVG images and the style sheet is inline), so it opens without a network;
- ``tables/*.csv``: every table of the report as printed, for pasting;
- ``figures/*.svg``: the scree plot with the parallel-analysis curve, the loadings heat map,
  the path diagram and the invariance ladder (also declared as DVC image plots);
- ``plots/*.csv``: the data of the invariance ladder and of the structural paths for
  ``dvc plots show``;
- ``report.json``: metrics (which stages were reported, counts of findings and warnings).

A stage whose outputs are absent is reported as not run; the report is still written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError
from pipeline.io import output_dir, read_params, read_table, section, write_csv, write_json, write_text
from pipeline.report import figures as figs
from pipeline.report.findings import build_report, software_versions
from pipeline.report.model import (DEFAULTS, FIGURES, INVARIANCE_STEPS, OPTIONAL_FILES, SECTIONS, STAGE_FILES,
                                   StageOutputs)
from pipeline.report.render import render_html, render_markdown
from pipeline.stage_metrics import read_metrics

__all__ = ["run", "build_report", "read_outputs", "read_stage", "settings", "write_plot_data", "render_markdown",
           "render_html", "DEFAULTS", "STAGE_FILES", "FIGURES", "SECTIONS"]


def _read_json(path: Path) -> dict:
    return read_metrics(path)


def _read_csv(path: Path) -> pd.DataFrame:
    return read_table(path)


def read_stage(name: str, directory) -> StageOutputs:
    """Read the files of :data:`STAGE_FILES` and :data:`OPTIONAL_FILES` that exist in ``directory``
    (None: not given)."""
    metrics_name, table_names = STAGE_FILES[name]
    if directory is None:
        return StageOutputs(name, None, None, {}, (metrics_name, *table_names))
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: expected the {name} stage's output directory, got a file")
    metrics = _read_json(directory / metrics_name) if (directory / metrics_name).is_file() else None
    optional = OPTIONAL_FILES.get(name, ())
    tables = {t: _read_csv(directory / t) for t in (*table_names, *optional)
              if t.endswith(".csv") and (directory / t).is_file()}
    documents = {t: _read_json(directory / t) for t in optional if t.endswith(".json") and (directory / t).is_file()}
    absent = tuple(f for f in (metrics_name, *table_names, *optional) if not (directory / f).is_file())
    return StageOutputs(name, directory, metrics, tables, absent, documents)


def read_outputs(dirs: dict) -> dict[str, StageOutputs]:
    """Every stage's outputs, from ``{stage: directory or None}``."""
    unknown = [k for k in dirs if k not in STAGE_FILES]
    if unknown:
        raise InputError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGE_FILES)}")
    return {name: read_stage(name, dirs.get(name)) for name in STAGE_FILES}



def settings(params: dict, overrides: dict | None = None) -> dict:
    """The ``report`` section of params.yaml over the defaults (cut-offs as numbers)."""
    s = section(params, "report", DEFAULTS, overrides or {})
    for key, value in s.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(f"report.{key}: a number between 0 and 1, got {value!r}")
    return s


def run(dirs: dict, out, params_path=None, instrument_path=None, title: str | None = None) -> dict:
    """Read the stage outputs in ``dirs`` ({stage: directory}), write the report into ``out``.

    Returns the metrics written to ``report.json``.
    """
    cuts = settings(read_params(params_path))
    outputs = read_outputs(dirs)
    labels = {}
    if instrument_path is not None:
        from instrument import load_instrument

        inst = load_instrument(instrument_path)
        labels = {c.id: (c.label or "") for c in inst.constructs}
        title = title or f"{inst.name}: scale validation report"
    report = build_report(outputs, cuts, title, labels, software_versions())
    for figure in report.figures.values():
        figure.svg = figs.draw(figure)

    out = output_dir(out)
    for sub in ("tables", "figures", "plots"):
        output_dir(out / sub)
    written = set()
    for t in report.tables:
        write_csv(t.frame, out / "tables" / f"{t.key}.csv")
        written.add(f"{t.key}.csv")
    for stale in (out / "tables").glob("*.csv"):  # a table of an earlier run that this run has not
        if stale.name not in written:
            stale.unlink()
    for key in FIGURES:
        (out / "figures" / f"{key}.svg").write_bytes(report.figures[key].svg)
    write_plot_data(outputs, out / "plots")
    write_text(render_markdown(report), out / "report.md")
    write_text(render_html(report), out / "report.html")
    write_json(report.metrics, out / "report.json")
    return report.metrics


def write_plot_data(outputs: dict[str, StageOutputs], directory: Path) -> None:
    """Data of the invariance ladder and the structural paths for ``dvc plots show`` (header
    only when the stage was not run, so that the declared plot files always exist)."""
    fit = outputs["invariance"].table("invariance_fit.csv")
    cols = ["step", "model", "cfi", "rmsea"]
    if fit is not None and "model" in fit:
        rows = []
        for r in fit.itertuples():
            step = {s: i + 1 for i, s in enumerate(INVARIANCE_STEPS)}.get(str(r.model).lower(), len(rows) + 1)
            rows.append({"step": step, "model": r.model, "cfi": getattr(r, "cfi", np.nan),
                         "rmsea": getattr(r, "rmsea", np.nan)})
        ladder = pd.DataFrame(rows, columns=cols).sort_values("step")
    else:
        ladder = pd.DataFrame(columns=cols)
    write_csv(ladder, directory / "invariance_ladder.csv")
    params = outputs["sem"].table("sem_parameters.csv")
    cols = ["path", "std_all", "pvalue"]
    if params is not None and {"lhs", "op", "rhs"} <= set(params.columns):
        p = params[params["op"].astype(str).str.strip() == "~"]
        paths = pd.DataFrame({"path": p["rhs"].astype(str) + " -> " + p["lhs"].astype(str),
                              "std_all": p.get("std_all"), "pvalue": p.get("pvalue")}, columns=cols)
    else:
        paths = pd.DataFrame(columns=cols)
    write_csv(paths, directory / "structural_paths.csv")
