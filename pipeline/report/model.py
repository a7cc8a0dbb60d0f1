"""The report's data model: what the findings functions return and the templates render.

Plain dataclasses, no I/O: a :class:`StageOutputs` is what one stage wrote (read by the stage
module, :mod:`pipeline.report`); findings functions (:mod:`pipeline.report.findings`) turn them
into :class:`Section` objects holding paragraphs, bullet lists, :class:`Table` and
:class:`Figure` blocks; :mod:`pipeline.report.figures` draws each figure from its ``kind`` and
``data``; :mod:`pipeline.report.render` fills the Jinja2 templates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.report.references import Citations

DEFAULTS = {
    "cfi_min": 0.95,             # Hu & Bentler (1999)
    "tli_min": 0.95,
    "rmsea_max": 0.06,
    "srmr_max": 0.08,
    "reliability_min": 0.70,     # alpha, omega, CR (Nunnally & Bernstein, 1994)
    "ave_min": 0.50,             # Fornell & Larcker (1981)
    "htmt_max": 0.85,            # Henseler, Ringle & Sarstedt (2015)
    "hide_loadings_below": 0.30,  # EFA loadings table: smaller loadings are left blank
}

# The files the report reads from each stage's output directory: (metrics, tables).
STAGE_FILES = {
    "content": ("content.json", ("content_scale.csv", "content_items.csv")),
    "clean": ("clean.json", ("exclusions.csv", "missing_items.csv", "missing_respondents.csv")),
    "split": ("split.json", ()),
    "efa": ("efa.json", ("efa_loadings.csv", "efa_scree.csv", "efa_variance.csv", "efa_diagnostics.csv",
                         "efa_factor_correlations.csv")),
    "cfa": ("cfa.json", ("cfa_parameters.csv",)),
    "reliability": ("reliability.json", ("reliability.csv", "fornell_larcker.csv", "htmt.csv")),
    "invariance": ("invariance.json", ("invariance_fit.csv", "invariance_groups.csv", "invariance_latent_means.csv",
                                       "invariance_paths.csv")),
    "sem": ("sem.json", ("sem_parameters.csv", "sem_r2.csv", "sem_hypotheses.csv", "sem_competing.csv")),
    "power": ("power.json", ("power_hypotheses.csv",)),
}
# Files a stage may write that the report shows when present (newer outputs: a study run by an
# older version lacks them, and the report says so where they would go).
OPTIONAL_FILES = {
    "clean": ("sample_profile.csv", "outside_answers.csv", "design_effect.csv"),
    "cfa": ("item_descriptives.csv", "mardia.json", "cfa_modindices.csv", "cfa_residuals.csv"),
    "reliability": ("construct_correlations.csv", "cmv_models.csv", "cmv_tests.csv", "cmv_lindell_whitney.csv",
                    "cmv_paths.csv"),
    "power": ("power_analytic.csv",),
}
STAGE_NAMES = {"content": "content validity (content)", "clean": "clean", "split": "split", "efa": "EFA", "cfa": "CFA", "reliability": "reliability",
               "invariance": "invariance", "sem": "structural model (sem)", "power": "power"}
SECTIONS = {
    "summary": "Summary",
    "content": "Content validity",
    "sample": "Sample and screening",
    "efa": "Exploratory factor analysis",
    "cfa": "Confirmatory factor analysis",
    "reliability": "Reliability and validity",
    "invariance": "Measurement invariance",
    "sem": "Structural model",
    "power": "Sample size and power",
    "methods": "Methods and results: a draft text",
    "references": "References",
    "about": "About this report",
}
FIGURES = ("scree", "loadings", "path_diagram", "invariance_ladder", "power_curve")
INVARIANCE_STEPS = ("configural", "metric", "scalar", "strict")
SCREEN_ORDER = ("attention", "speeder", "longstring", "irv", "mahalanobis", "duplicate", "missing")
SIMULATED_LINE = ("SIMULATED DATA: every number in this report comes from simulated responses, "
                  "not from real respondents.")



@dataclass(frozen=True)
class StageOutputs:
    """What one stage wrote: its metrics (None when absent), its tables, and the files absent."""

    name: str
    directory: Path | None
    metrics: dict | None
    tables: dict
    absent: tuple
    documents: dict = field(default_factory=dict)  # further JSON files (mardia.json), by file name

    @property
    def ran(self) -> bool:
        return self.metrics is not None or bool(self.tables)

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def document(self, name: str) -> dict | None:
        return self.documents.get(name)

    def where(self, name: str) -> str:
        return str(self.directory / name) if self.directory is not None else name



@dataclass
class Table:
    key: str            # file stem of tables/<key>.csv and the HTML id
    title: str
    frame: pd.DataFrame  # strings, as printed
    note: str = ""
    number: int = 0


@dataclass
class Figure:
    """A figure as findings describe it: ``kind`` names the drawing function of
    :mod:`pipeline.report.figures` and ``data`` its arguments; ``svg`` is filled when drawn."""

    key: str
    title: str
    kind: str
    data: dict = field(default_factory=dict)
    note: str = ""
    number: int = 0
    svg: bytes | None = None


@dataclass
class Section:
    key: str
    title: str
    blocks: list = field(default_factory=list)  # str paragraphs, lists of str (bullets), Table, Figure
    ran: bool = True


@dataclass
class Findings:
    """What the summary reports: what held, what did not, warnings, stages not run."""

    tested: list = field(default_factory=list)
    held: list = field(default_factory=list)
    not_held: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    not_run: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)  # headline numbers for report.json
    citations: Citations = field(default_factory=Citations)  # every method a finding used

    def check(self, ok: bool, text: str) -> None:
        (self.held if ok else self.not_held).append(text)

    def cite(self, *keys: str) -> str:
        """The in-text citation of ``keys`` (``Hu & Bentler, 1999``), recorded for the reference list."""
        return self.citations.cite(*keys)


@dataclass(frozen=True)
class ReferenceList:
    """A block: the reference list, APA entries in Markdown (``*italic*``)."""

    entries: tuple



@dataclass
class Report:
    """The whole report: the summary, the sections in paper order, the numbered tables, the
    figures by key (those not shown too, drawn as placeholders for DVC's declared outputs)."""

    title: str
    simulated: bool
    summary: Section
    sections: list
    findings: Findings
    tables: list
    figures: dict
    metrics: dict
    about: Section | None = None
    versions: dict = field(default_factory=dict)


def num(x) -> float:
    """``x`` as a float, NaN when it is not a number."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def ok(x) -> bool:
    """``x`` is a number (not None, not NaN, not text)."""
    return not math.isnan(num(x))


def as_bool(x) -> bool:
    """A boolean read from JSON or a CSV ("True", "yes", 1); missing is False."""
    if isinstance(x, str):
        return x.strip().lower() in ("true", "yes", "1")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return False
    return bool(x)
