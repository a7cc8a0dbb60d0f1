"""Stage ``report``: every stage's outputs as a paper's methods and results, in Markdown and HTML.

The report reads what the stages wrote (their JSON metrics and CSV tables), never the data, and
prints the numbers in APA style (:mod:`analysis.apa`). The sections follow a scale-validation
paper: sample and screening, exploratory factor analysis, confirmatory factor analysis,
reliability and validity, measurement invariance, structural model. A plain-language summary
comes first: what was tested, what held, what did not, and every warning a stage raised. When
the data are simulated, the first line says so.

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

import base64
import html
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import apa
from pipeline.io import output_dir, read_params, section, write_csv, write_json, write_text
from analysis.errors import InputError
from pipeline.stage_metrics import read_metrics

__all__ = ["run", "build_report", "read_outputs", "DEFAULTS", "STAGE_FILES", "FIGURES", "SECTIONS"]

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
    "clean": ("clean.json", ("exclusions.csv", "missing_items.csv", "missing_respondents.csv")),
    "split": ("split.json", ()),
    "efa": ("efa.json", ("efa_loadings.csv", "efa_scree.csv", "efa_variance.csv", "efa_diagnostics.csv",
                         "efa_factor_correlations.csv")),
    "cfa": ("cfa.json", ("cfa_parameters.csv",)),
    "reliability": ("reliability.json", ("reliability.csv", "fornell_larcker.csv", "htmt.csv")),
    "invariance": ("invariance.json", ("invariance_fit.csv", "invariance_groups.csv", "invariance_latent_means.csv",
                                       "invariance_paths.csv")),
    "sem": ("sem.json", ("sem_parameters.csv", "sem_r2.csv", "sem_hypotheses.csv", "sem_competing.csv")),
}
STAGE_NAMES = {"clean": "clean", "split": "split", "efa": "EFA", "cfa": "CFA", "reliability": "reliability",
               "invariance": "invariance", "sem": "structural model (sem)"}
SECTIONS = {
    "summary": "Summary",
    "sample": "Sample and screening",
    "efa": "Exploratory factor analysis",
    "cfa": "Confirmatory factor analysis",
    "reliability": "Reliability and validity",
    "invariance": "Measurement invariance",
    "sem": "Structural model",
    "about": "About this report",
}
FIGURES = ("scree", "loadings", "path_diagram", "invariance_ladder")
INVARIANCE_STEPS = ("configural", "metric", "scalar", "strict")
SCREEN_ORDER = ("attention", "speeder", "longstring", "irv", "mahalanobis", "duplicate", "missing")
SIMULATED_LINE = ("SIMULATED DATA: every number in this report comes from simulated responses, "
                  "not from real respondents.")


# --------------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class StageOutputs:
    """What one stage wrote: its metrics (None when absent), its tables, and the files absent."""

    name: str
    directory: Path | None
    metrics: dict | None
    tables: dict
    absent: tuple

    @property
    def ran(self) -> bool:
        return self.metrics is not None or bool(self.tables)

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def where(self, name: str) -> str:
        return str(self.directory / name) if self.directory is not None else name


def _read_json(path: Path) -> dict:
    return read_metrics(path)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({type(exc).__name__}: {exc}); rerun the stage that "
                         "writes it") from None


def read_stage(name: str, directory) -> StageOutputs:
    """Read the files of :data:`STAGE_FILES` that exist in ``directory`` (None: not given)."""
    metrics_name, table_names = STAGE_FILES[name]
    if directory is None:
        return StageOutputs(name, None, None, {}, (metrics_name, *table_names))
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: expected the {name} stage's output directory, got a file")
    metrics = _read_json(directory / metrics_name) if (directory / metrics_name).is_file() else None
    tables = {t: _read_csv(directory / t) for t in table_names if (directory / t).is_file()}
    absent = tuple(f for f in (metrics_name, *table_names) if not (directory / f).is_file())
    return StageOutputs(name, directory, metrics, tables, absent)


def read_outputs(dirs: dict) -> dict[str, StageOutputs]:
    """Every stage's outputs, from ``{stage: directory or None}``."""
    unknown = [k for k in dirs if k not in STAGE_FILES]
    if unknown:
        raise InputError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGE_FILES)}")
    return {name: read_stage(name, dirs.get(name)) for name in STAGE_FILES}


# --------------------------------------------------------------------------------- building blocks

@dataclass
class Table:
    key: str            # file stem of tables/<key>.csv and the HTML id
    title: str
    frame: pd.DataFrame  # strings, as printed
    note: str = ""
    number: int = 0


@dataclass
class Figure:
    key: str
    title: str
    svg: bytes
    note: str = ""
    number: int = 0


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

    def check(self, ok: bool, text: str) -> None:
        (self.held if ok else self.not_held).append(text)


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _ok(x) -> bool:
    return not math.isnan(_num(x))


def _bool(x) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in ("true", "yes", "1")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return False
    return bool(x)


def _pct(x, decimals: int = 1) -> str:
    return f"{apa.fmt_number(100 * _num(x), decimals)}%" if _ok(x) else ""


def _ci_level(level) -> str:
    """``0.95`` -> ``"95%"``; the params key when the stage did not record its level."""
    return f"{100 * _num(level):g}%" if _ok(level) else "reliability.ci in params.yaml"


def _ci_label(level) -> str:
    return f"{100 * _num(level):g}% CI" if _ok(level) else "CI"


def _not_run(stage: StageOutputs, findings: Findings) -> str:
    where = stage.where(STAGE_FILES[stage.name][0])
    findings.not_run.append(STAGE_NAMES[stage.name])
    return (f"The {STAGE_NAMES[stage.name]} stage was not run: its outputs ({where} and its tables) are absent, "
            "so this section has no results.")


def _absent(stage: StageOutputs, name: str) -> str:
    return f"{stage.where(name)} is absent: not reported."


def _stage_warnings(stage: StageOutputs, findings: Findings, *keys: str) -> list[str]:
    m = stage.metrics or {}
    lines = []
    for key in keys:
        value = m.get(key)
        if isinstance(value, list):
            lines += [str(v) for v in value]
        elif isinstance(value, str) and value:
            lines.append(value)
    lines = list(dict.fromkeys(lines))
    findings.warnings += [f"{STAGE_NAMES[stage.name]}: {w}" for w in lines]
    return lines


# --------------------------------------------------------------------------------- figures

def _figure_svg(fig) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "gapscale", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "gapscale report (matplotlib)"},
                    bbox_inches="tight")
    return buf.getvalue()


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=100)


def placeholder_figure(text: str) -> bytes:
    """A small figure that says why the real one is missing."""
    fig = _new_figure(6, 1.6)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True, color="#555555")
    return _figure_svg(fig)


def scree_figure(scree: pd.DataFrame, n_used: int | None) -> bytes:
    """Observed eigenvalues against the parallel-analysis percentile (factors and components)."""
    fig = _new_figure(6.5, 4)
    ax = fig.add_subplot()
    x = scree["factor"].to_numpy()
    ax.plot(x, scree["observed_fa"], "o-", color="#1f4e79", ms=3.5, lw=1.4, label="Observed (factors)")
    ax.plot(x, scree["random_fa"], "--", color="#c0392b", lw=1.4, label="Parallel analysis (factors)")
    if "observed_pc" in scree and "random_pc" in scree:
        ax.plot(x, scree["observed_pc"], "s-", color="#7f9fbf", ms=2.5, lw=0.9, label="Observed (components)")
        ax.plot(x, scree["random_pc"], ":", color="#e6a19a", lw=1.2, label="Parallel analysis (components)")
    if n_used:
        ax.axvline(n_used, color="#555555", lw=0.8, ls=":")
        ax.annotate(f"{n_used} retained", (n_used, ax.get_ylim()[1]), xytext=(4, -12), textcoords="offset points",
                    fontsize=8, color="#555555")
    ax.axhline(0, color="#999999", lw=0.5)
    ax.set_xlabel("Factor or component")
    ax.set_ylabel("Eigenvalue")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    return _figure_svg(fig)


def loadings_figure(loadings: pd.DataFrame, factors: list[str], construct_of: dict) -> bytes:
    """Heat map of the rotated loadings, items (sorted as psych::fa.sort) by factors."""
    values = loadings[factors].to_numpy(dtype=float)
    items = [f"{i} ({construct_of[i]})" if construct_of.get(i) and not str(i).startswith(str(construct_of[i]))
             else str(i) for i in loadings["item"]]
    height = max(3.0, 0.14 * len(items) + 1.2)
    width = max(4.5, 0.38 * len(factors) + 2.6)
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(factors)), factors, fontsize=7, rotation=90)
    ax.set_yticks(range(len(items)), items, fontsize=6 if len(items) > 40 else 8)
    ax.xaxis.tick_top()
    ax.set_xlabel("Factor")
    ax.xaxis.set_label_position("top")
    cbar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02, shrink=min(1.0, 6 / height))
    cbar.set_label("Loading")
    return _figure_svg(fig)


def invariance_figure(fit: pd.DataFrame, cuts: dict) -> bytes:
    """The invariance ladder: CFI and RMSEA at each step, filled where the step holds."""
    fig = _new_figure(7.5, 3.4)
    axes = fig.subplots(1, 2)
    x = np.arange(len(fit))
    holds = [_bool(h) if isinstance(h, (bool, str)) or _ok(h) else True for h in fit.get("holds", [True] * len(fit))]
    for ax, col, cut, label in ((axes[0], "cfi", cuts["cfi_min"], "CFI"), (axes[1], "rmsea", cuts["rmsea_max"], "RMSEA")):
        y = pd.to_numeric(fit[col], errors="coerce").to_numpy() if col in fit else np.full(len(fit), np.nan)
        ax.plot(x, y, "-", color="#1f4e79", lw=1.2)
        for xi, yi, h in zip(x, y, holds):
            ax.plot([xi], [yi], "o", ms=7, color="#1f4e79", mfc="#1f4e79" if h else "white")
        ax.axhline(cut, color="#c0392b", lw=0.9, ls="--")
        ax.annotate(f"cut-off {apa.fmt_number(cut, 2, bounded=col == 'cfi')}", (x[-1] if len(x) else 0, cut),
                    xytext=(0, 4), textcoords="offset points", ha="right", fontsize=7, color="#c0392b")
        ax.set_xticks(x, [str(m) for m in fit["model"]], fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(x=0.15)
    fig.text(0.5, -0.02, "Filled: the step holds (its change from the previous step is within the criteria); "
             "hollow: it does not.", ha="center", fontsize=7, color="#555555")
    return _figure_svg(fig)


def _causal_layout(nodes: list[str], edges: list[tuple], outside: dict | None = None) -> dict[str, tuple[int, float]]:
    """Columns by causal order (longest path from a source), sources pulled next to their first
    outcome; rows ordered by the barycentre of their neighbours to limit crossings.

    ``outside`` maps nodes that only indicate a higher-order factor to that factor: they go
    one column before it, out of the way of the structural paths."""
    outside = outside or {}
    all_edges = edges
    nodes_all = nodes
    nodes = [n for n in nodes if n not in outside]
    edges = [(a, b) for a, b in edges if a not in outside and b not in outside]
    parents = {n: [] for n in nodes}
    children = {n: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    depth = {n: 0 for n in nodes}
    for _ in range(len(nodes)):  # longest path; a cycle stops growing after len(nodes) rounds
        changed = False
        for a, b in edges:
            if depth[b] < depth[a] + 1 and depth[a] + 1 < len(nodes):
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    for _ in range(len(nodes)):
        changed = False
        for n in nodes:
            if not parents[n] and children[n]:
                target = min(depth[c] for c in children[n]) - 1
                if target > depth[n]:
                    depth[n] = target
                    changed = True
        if not changed:
            break
    for n, factor in outside.items():
        depth[n] = depth[factor] - 1
    shift = min(depth.values())
    depth = {n: d - shift for n, d in depth.items()}
    nodes = nodes_all
    parents = {n: [] for n in nodes}
    children = {n: [] for n in nodes}
    for a, b in all_edges:
        parents[b].append(a)
        children[a].append(b)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(depth[n], []).append(n)
    pos = {n: (d, float(i)) for d, col in columns.items() for i, n in enumerate(col)}

    def centred(col):
        return {n: i - (len(col) - 1) / 2 for i, n in enumerate(col)}

    for d, col in columns.items():
        pos.update({n: (d, y) for n, y in centred(col).items()})
    for _ in range(6):
        for d in sorted(columns):
            col = columns[d]
            keys = {}
            for i, n in enumerate(col):
                ys = [pos[m][1] for m in parents[n] + children[n] if pos[m][0] != d]
                keys[n] = (float(np.mean(ys)) if ys else pos[n][1], i)
            col.sort(key=keys.__getitem__)
            pos.update({n: (d, y) for n, y in centred(col).items()})
    return pos


def path_figure(params: pd.DataFrame, r2: pd.DataFrame | None) -> bytes:
    """The structural model: latents as ellipses in columns by causal order, arrows with the
    standardised coefficient (std_all) and its significance stars; dashed where p >= .05."""
    from matplotlib.patches import Ellipse, FancyArrowPatch, Rectangle

    p = params.copy()
    for c in ("lhs", "op", "rhs"):
        p[c] = p[c].astype(str).str.strip()
    latents = set(p.loc[p["op"] == "=~", "lhs"])
    edges = []  # (from, to, std, pvalue, kind)
    for r in p[p["op"] == "~"].itertuples():
        edges.append((r.rhs, r.lhs, getattr(r, "std_all", np.nan), getattr(r, "pvalue", np.nan), "path"))
    for r in p[(p["op"] == "=~") & p["rhs"].isin(latents)].itertuples():
        edges.append((r.lhs, r.rhs, getattr(r, "std_all", np.nan), getattr(r, "pvalue", np.nan), "loading"))
    if not edges:
        return placeholder_figure("The model has no structural paths (no ~ rows in sem_parameters.csv).")
    nodes = list(dict.fromkeys(n for e in edges for n in e[:2]))
    endogenous = {e[1] for e in edges if e[4] == "path"}
    covs = [r for r in p[(p["op"] == "~~") & (p["lhs"] != p["rhs"])].itertuples()
            if r.lhs in endogenous and r.rhs in endogenous]
    structural = {n for a, b, *_, kind in edges if kind == "path" for n in (a, b)}
    outside = {b: a for a, b, *_, kind in edges if kind == "loading" and b not in structural
               and sum(1 for e in edges if e[1] == b) == 1 and not any(e[0] == b for e in edges)}
    pos = _causal_layout(nodes, [(a, b) for a, b, *_ in edges], outside)
    dx, dy = 2.7, 1.05
    xy = {n: (d * dx, -y * dy) for n, (d, y) in pos.items()}
    xs = [v[0] for v in xy.values()]
    ys = [v[1] for v in xy.values()]
    x0, x1, y0, y1 = min(xs) - 1.2, max(xs) + (2.4 if covs else 1.6), min(ys) - 0.8, max(ys) + 0.6
    scale = min(0.62, 15 / (x1 - x0))
    fig = _new_figure((x1 - x0) * scale, (y1 - y0) * scale)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    r2_of = {}
    if r2 is not None and {"variable", "r2"} <= set(r2.columns):
        r2_of = dict(zip(r2["variable"].astype(str), r2["r2"]))
    shapes = {}
    for n, (x, y) in xy.items():
        if n in latents:
            shape = Ellipse((x, y), 1.55, 0.62, fc="#eef3f8", ec="#1f4e79", lw=1.1, zorder=3)
        else:
            shape = Rectangle((x - 0.7, y - 0.28), 1.4, 0.56, fc="#f7f7f7", ec="#444444", lw=1.0, zorder=3)
        ax.add_patch(shape)
        shapes[n] = shape
        has_r2 = n in r2_of and _ok(r2_of[n])
        ax.text(x, y + (0.09 if has_r2 else 0), n, ha="center", va="center", fontsize=8.5, zorder=4)
        if has_r2:
            ax.text(x, y - 0.15, f"R² = {apa.fmt_bounded(r2_of[n])}", ha="center", va="center", fontsize=6,
                    color="#333333", zorder=4)
    for a, b, std, pval, kind in edges:
        (xa, ya), (xb, yb) = xy[a], xy[b]
        span = abs(pos[b][0] - pos[a][0])
        rad = 0.0 if span <= 1 else (0.18 if yb <= ya else -0.18)
        significant = _ok(pval) and _num(pval) < 0.05
        fixed = not _ok(pval)
        style = "-" if (significant or fixed) else "--"
        color = "#222222" if kind == "path" else "#1f4e79"
        arrow = FancyArrowPatch((xa, ya), (xb, yb), patchA=shapes[a], patchB=shapes[b], arrowstyle="-|>",
                                mutation_scale=9, lw=0.9, color=color, linestyle=style,
                                connectionstyle=f"arc3,rad={rad}", zorder=2)
        ax.add_patch(arrow)
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        lx, ly = mx + 0.5 * rad * (yb - ya), my - 0.5 * rad * (xb - xa)
        t = 0.42 if span <= 1 else 0.5
        if rad == 0:
            lx, ly = xa + t * (xb - xa), ya + t * (yb - ya)
        label = apa.fmt_bounded(std) + apa.stars(pval) if _ok(std) else ""
        if label:
            ax.text(lx, ly, label, ha="center", va="center", fontsize=6.5, zorder=5,
                    bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.9))
    for r in covs:  # residual covariances: a curved two-headed arrow on the right of the nodes
        (xa, ya), (xb, yb) = xy[r.lhs], xy[r.rhs]
        if pos[r.lhs][0] == pos[r.rhs][0]:
            if ya < yb:
                (xa, ya), (xb, yb) = (xb, yb), (xa, ya)
            a_pt, b_pt = (xa + 0.78, ya), (xb + 0.78, yb)
            rad = -0.8
            arrow = FancyArrowPatch(a_pt, b_pt, arrowstyle="<|-|>", mutation_scale=8, lw=0.8, color="#7a7a7a",
                                    connectionstyle=f"arc3,rad={rad}", zorder=1)
        else:
            a_pt, b_pt = (xa, ya), (xb, yb)
            rad = -0.3
            arrow = FancyArrowPatch(a_pt, b_pt, patchA=shapes[r.lhs], patchB=shapes[r.rhs], arrowstyle="<|-|>",
                                    mutation_scale=8, lw=0.8, color="#7a7a7a", connectionstyle=f"arc3,rad={rad}",
                                    zorder=1)
        ax.add_patch(arrow)
        std = getattr(r, "std_all", np.nan)
        if _ok(std):
            lx = (a_pt[0] + b_pt[0]) / 2 + 0.5 * rad * (b_pt[1] - a_pt[1])
            ly = (a_pt[1] + b_pt[1]) / 2 - 0.5 * rad * (b_pt[0] - a_pt[0])
            ax.text(lx + 0.05, ly, apa.fmt_bounded(std) + apa.stars(getattr(r, "pvalue", np.nan)), ha="left",
                    va="center", fontsize=6.5, color="#555555", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.9))
    ax.text(x0 + 0.1, y0 + 0.15, "Standardised coefficients. * p < .05, ** p < .01, *** p < .001; dashed: p ≥ .05.",
            fontsize=6.5, color="#555555", ha="left", va="bottom")
    return _figure_svg(fig)


# --------------------------------------------------------------------------------- tables

def fit_table(fit: dict, cuts: dict, estimator: str | None = None) -> pd.DataFrame:
    """Fit measures with the conventional cut-offs marked (Hu & Bentler, 1999)."""
    rows = []

    def add(name, value, kind="number", cut="", meets=None, ci=""):
        if value is None or not _ok(value):
            return
        text = {"number": apa.fmt_number, "bounded": apa.fmt_bounded, "p": apa.fmt_p, "df": apa.fmt_df,
                "int": apa.fmt_int}[kind](value)
        rows.append({"Index": name, "Value": text, "90% CI": ci, "Cut-off": cut,
                     "Meets": "" if meets is None else ("Yes" if meets else "No")})

    add("χ²", fit.get("chisq"))
    add("df", fit.get("df"), "df")
    add("p", fit.get("pvalue"), "p")
    if estimator == "MLR" and _ok(fit.get("chisq_scaled")):
        add("χ² (scaled)", fit.get("chisq_scaled"))
        add("p (scaled)", fit.get("pvalue_scaled"), "p")
    robust = estimator == "MLR" and _ok(fit.get("cfi_robust"))
    sfx = "_robust" if robust else ""
    label = " (robust)" if robust else ""
    cfi, tli, rmsea, srmr = (fit.get("cfi" + sfx), fit.get("tli" + sfx), fit.get("rmsea" + sfx), fit.get("srmr"))
    add("CFI" + label, cfi, "bounded", f"≥ {apa.fmt_bounded(cuts['cfi_min'])}",
        _ok(cfi) and _num(cfi) >= cuts["cfi_min"])
    add("TLI" + label, tli, "number", f"≥ {apa.fmt_number(cuts['tli_min'])}", _ok(tli) and _num(tli) >= cuts["tli_min"])
    lo, hi = fit.get("rmsea_ci_lower" + sfx), fit.get("rmsea_ci_upper" + sfx)
    add("RMSEA" + label, rmsea, "number", f"≤ {apa.fmt_number(cuts['rmsea_max'])}",
        _ok(rmsea) and _num(rmsea) <= cuts["rmsea_max"], apa.fmt_ci(lo, hi))
    add("SRMR", srmr, "number", f"≤ {apa.fmt_number(cuts['srmr_max'])}", _ok(srmr) and _num(srmr) <= cuts["srmr_max"])
    add("AIC", fit.get("aic"))
    add("BIC", fit.get("bic"))
    add("N", fit.get("ntotal"), "int")
    return pd.DataFrame(rows, columns=["Index", "Value", "90% CI", "Cut-off", "Meets"], dtype=object)


def fit_checks(fit: dict, cuts: dict, estimator: str | None = None) -> list[tuple[bool, str]]:
    robust = estimator == "MLR" and _ok(fit.get("cfi_robust"))
    sfx = "_robust" if robust else ""
    out = []
    for key, name, cut, above, bounded in (("cfi", "CFI", cuts["cfi_min"], True, True),
                                           ("tli", "TLI", cuts["tli_min"], True, False),
                                           ("rmsea", "RMSEA", cuts["rmsea_max"], False, False),
                                           ("srmr", "SRMR", cuts["srmr_max"], False, False)):
        v = fit.get(key + sfx if key != "srmr" else key)
        if not _ok(v):
            continue
        ok = _num(v) >= cut if above else _num(v) <= cut
        sign = "≥" if above else "≤"
        out.append((ok, f"{name} = {apa.fmt_against(v, cut, bounded=bounded)} ({'meets' if ok else 'misses'} "
                        f"{sign} {apa.fmt_number(cut, bounded=bounded)})"))
    return out


def auto_table(df: pd.DataFrame) -> pd.DataFrame:
    """Format a table whose columns are not known in advance: p columns as p, bounded
    statistics without the leading zero, whole-number columns as counts, others two decimals."""
    formats = {}
    for c in df.columns:
        name = str(c).lower()
        s = df[c]
        if name in ("pvalue", "p", "delta_pvalue") or name.endswith("_pvalue") or name.startswith("pvalue_"):
            formats[c] = "p"
        elif s.dtype == bool or set(s.dropna().astype(str).str.lower()) <= {"true", "false"} and s.notna().any():
            formats[c] = "yes_no"
        elif name in ("df", "delta_df") or name.endswith("_df"):
            formats[c] = "df"
        elif pd.api.types.is_integer_dtype(s):
            formats[c] = "int"
        elif pd.api.types.is_numeric_dtype(s):
            formats[c] = "bounded" if name in apa.BOUNDED else "number"
        else:
            formats[c] = "text"
    return apa.apa_table(df, formats)


def lower_triangle(matrix: pd.DataFrame, names: list[str], bounded: bool, diagonal: dict | None = None) -> pd.DataFrame:
    """A table of strings with the lower triangle filled (and the diagonal from ``diagonal``;
    without a diagonal the empty first row and last column are left out)."""
    rows = []
    rows_shown = names if diagonal is not None else names[1:]
    cols_shown = names if diagonal is not None else names[:-1]
    for a in rows_shown:
        i = names.index(a)
        row = {"": a}
        for j, b in enumerate(cols_shown):
            if j < i:
                row[b] = apa.fmt_number(matrix.at[a, b], bounded=bounded)
            elif j == i and diagonal is not None:
                row[b] = apa.fmt_number(diagonal.get(a), bounded=bounded)
            else:
                row[b] = ""
        rows.append(row)
    return pd.DataFrame(rows, columns=["", *cols_shown], dtype=object)


# --------------------------------------------------------------------------------- sections

def sample_section(clean: StageOutputs, split: StageOutputs, findings: Findings) -> Section:
    sec = Section("sample", SECTIONS["sample"])
    if clean.metrics is None:
        sec.ran = False
        sec.blocks.append(_not_run(clean, findings))
        return sec
    m = clean.metrics
    rows_in, kept, excluded = m.get("rows_in"), m.get("kept"), m.get("excluded")
    sec.blocks.append(
        f"The survey export held {apa.fmt_int(rows_in)} submissions. The screens excluded "
        f"{apa.fmt_int(excluded)} of them ({_pct(_num(excluded) / _num(rows_in)) if _num(rows_in) else ''}) and "
        f"kept {apa.fmt_int(kept)} for analysis; {apa.fmt_int(m.get('cells_set_missing', m.get('cell_problems')))} answers that were not on the "
        "scale (out of range or unreadable) were set missing. A respondent may fail several screens; Table "
        "{flow} counts each excluded respondent once, at the first screen (in the order shown) that flagged them.")
    findings.tested.append(f"{apa.fmt_int(rows_in)} submissions screened, {apa.fmt_int(kept)} kept")
    screens = m.get("screens") or {}
    flagged = m.get("excluded_by_screen") or {}
    order = [s for s in SCREEN_ORDER if s in flagged] + [s for s in flagged if s not in SCREEN_ORDER]
    excl = clean.table("exclusions.csv")
    removed = {}
    if excl is not None and {"row", "screen"} <= set(excl.columns) and len(excl):
        rank = {s: i for i, s in enumerate(order)}
        first = (excl.assign(_rank=excl["screen"].map(rank).fillna(len(order)))
                 .sort_values(["row", "_rank"], kind="stable").drop_duplicates("row"))
        removed = first["screen"].value_counts().to_dict()
    labels = {
        "attention": "Failed an attention check",
        "speeder": f"Speeder (under {_pct(screens.get('speeder_fraction'), 0)} of the median time)"
        if _ok(screens.get("speeder_fraction")) else "Speeder",
        "longstring": f"Long-string (identical answers to {_pct(screens.get('longstring_share'), 0)} of the items or more)"
        if _ok(screens.get("longstring_share")) else "Long-string",
        "irv": f"Low response variability (SD < {apa.fmt_number(screens.get('irv_min'))})"
        if _ok(screens.get("irv_min")) else "Low response variability",
        "mahalanobis": f"Multivariate outlier (Mahalanobis D², p < {apa.fmt_p(screens.get('mahalanobis_alpha')).lstrip('< ')})"
        if _ok(screens.get("mahalanobis_alpha")) else "Multivariate outlier (Mahalanobis D²)",
        "duplicate": "Duplicate submission",
        "missing": f"Too many missing items (more than {_pct(screens.get('max_missing_share'), 0)})"
        if _ok(screens.get("max_missing_share")) else "Too many missing items",
    }
    rows = [{"Step": "Submissions received", "Flagged": "", "Removed": "", "Remaining": apa.fmt_int(rows_in)}]
    remaining = _num(rows_in)
    for s in order:
        r = int(removed.get(s, 0))
        remaining -= r
        rows.append({"Step": labels.get(s, s), "Flagged": apa.fmt_int(flagged.get(s)), "Removed": apa.fmt_int(r),
                     "Remaining": apa.fmt_int(remaining)})
    rows.append({"Step": "Analysed sample", "Flagged": "", "Removed": apa.fmt_int(excluded), "Remaining": apa.fmt_int(kept)})
    sm = split.metrics
    if sm is not None:
        rows.append({"Step": "EFA half (random split)", "Flagged": "", "Removed": "", "Remaining": apa.fmt_int(sm.get("n_efa"))})
        rows.append({"Step": "CFA half (random split)", "Flagged": "", "Removed": "", "Remaining": apa.fmt_int(sm.get("n_cfa"))})
    note = ("Flagged = respondents the screen flagged (some also failed an earlier screen); Removed = respondents "
            "excluded at this step.")
    if _ok(remaining) and _ok(kept) and int(remaining) != int(_num(kept)):
        note += (f" The steps account for {apa.fmt_int(_num(rows_in) - remaining)} exclusions, clean.json for "
                 f"{apa.fmt_int(excluded)}.")
        findings.warnings.append("report: the exclusions in exclusions.csv do not add up to clean.json's count")
    if sm is not None and sm.get("stratify"):
        note += f" The split is stratified by {sm['stratify']}."
    flow = Table("screening_flow", "Flow of respondents through the screens", pd.DataFrame(rows, dtype=object), note)
    sec.blocks[0] = sec.blocks[0].replace("{flow}", "{table:screening_flow}")
    sec.blocks.append(flow)
    if excl is None:
        sec.blocks.append(_absent(clean, "exclusions.csv"))
    if split.metrics is None:
        sec.blocks.append(f"The split stage was not run ({split.where('split.json')} is absent): the EFA and CFA "
                          "halves are not reported.")

    # Missing data
    rows = []
    mi = clean.table("missing_items.csv")
    mr = clean.table("missing_respondents.csv")
    rows.append({"Measure": "Item cells missing", "Value": _pct(m.get("missing_rate"), 2)})
    if mr is not None and "n_missing" in mr:
        complete = int((mr["n_missing"] == 0).sum())
        rows.append({"Measure": "Respondents with every item answered",
                     "Value": f"{apa.fmt_int(complete)} ({_pct(complete / len(mr) if len(mr) else float('nan'))})"})
        rows.append({"Measure": "Most items missing for one respondent", "Value": apa.fmt_int(mr["n_missing"].max())})
    if mi is not None and {"variable", "pct_missing"} <= set(mi.columns) and len(mi):
        top = mi.loc[mi["pct_missing"].idxmax()]
        rows.append({"Measure": "Item with the most missing answers",
                     "Value": f"{top['variable']} ({apa.fmt_number(top['pct_missing'])}%)"})
    rows.append({"Measure": "Answers off the scale, set missing", "Value": apa.fmt_int(m.get("cell_problems"))})
    mcar = m.get("little_mcar")
    if isinstance(mcar, dict):
        rows.append({"Measure": "Little's MCAR test",
                     "Value": apa.fmt_chisq(mcar.get("statistic"), mcar.get("df"), mcar.get("pvalue"))})
        findings.check(_num(mcar.get("pvalue")) >= 0.05,
                       f"Little's test {'does not reject' if _num(mcar.get('pvalue')) >= 0.05 else 'rejects'} that the "
                       f"data are missing completely at random ({apa.fmt_p_text(mcar.get('pvalue'))})")
    sec.blocks.append(Table("missing_data", "Missing data after screening", pd.DataFrame(rows, dtype=object),
                            "Percentages of the analysed sample. Missing cells stay missing; the CFA handles them "
                            "as params.yaml says (listwise or FIML)."))
    for note in m.get("notes") or []:
        sec.blocks.append(f"Note from the clean stage: {note}.")
    _stage_warnings(clean, findings, "warnings")

    truth = m.get("screens_vs_truth")
    if isinstance(truth, dict):
        rows = [{"Screen": labels.get(s, s), "Flagged": apa.fmt_int(v.get("flagged")),
                 "True positives": apa.fmt_int(v.get("true_positives")),
                 "Precision": apa.fmt_bounded(v.get("precision")), "Recall": apa.fmt_bounded(v.get("recall"))}
                for s, v in truth.items() if isinstance(v, dict)]
        if rows:
            sec.blocks.append(Table("screen_accuracy", "Screens against the simulation's truth",
                                    pd.DataFrame(rows, dtype=object),
                                    "Only for simulated data: each screen scored against the defects the simulation "
                                    "planted. Precision = share of flagged respondents that carry the defect; recall "
                                    "= share of carriers flagged."))
    return sec


def efa_section(efa: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    sec = Section("efa", SECTIONS["efa"])
    if efa.metrics is None:
        sec.ran = False
        sec.blocks.append(_not_run(efa, findings))
        figures["scree"] = Figure("scree", "Scree plot with parallel analysis", placeholder_figure("EFA stage not run"))
        figures["loadings"] = Figure("loadings", "EFA loadings", placeholder_figure("EFA stage not run"))
        return sec
    m = efa.metrics
    nf = m.get("n_factors") or {}
    b = m.get("bartlett") or {}
    sec.blocks.append(
        f"The exploratory factor analysis used the EFA half (N = {apa.fmt_int(m.get('n'))}, {apa.fmt_int(m.get('items'))} "
        f"items): {m.get('correlation')} correlations, {m.get('extraction')} extraction and {m.get('rotation')} "
        f"rotation. The data suit factoring: KMO = {apa.fmt_bounded(m.get('kmo'))} (lowest item, "
        f"{m.get('kmo_min_item_id')}: {apa.fmt_bounded(m.get('kmo_min_item'))}) and Bartlett's test of sphericity "
        f"{apa.fmt_chisq(b.get('chisq'), b.get('df'), b.get('pvalue'))}.")
    findings.tested.append(f"the factor structure, first by EFA (N = {apa.fmt_int(m.get('n'))})")
    findings.check(_num(m.get("kmo")) >= 0.60, f"KMO = {apa.fmt_bounded(m.get('kmo'))} "
                   f"({'at least' if _num(m.get('kmo')) >= 0.60 else 'below'} .60, the usual floor for factoring)")
    rows = [("Parallel analysis, factor eigenvalues", nf.get("parallel_fa")),
            ("Parallel analysis, component eigenvalues", nf.get("parallel_pc")),
            ("Velicer's MAP", nf.get("map")),
            ("Kaiser rule (eigenvalues > 1)", nf.get("kaiser")),
            ("Constructs in the instrument", nf.get("constructs")),
            ("Retained" + (" (set in params.yaml)" if nf.get("rule") == "params" else f", by {nf.get('rule')}"
                       if nf.get("rule") else ""), nf.get("used"))]
    sec.blocks.append(Table("factor_count", "How many factors: what each criterion suggests",
                            pd.DataFrame([{"Criterion": a, "Factors": apa.fmt_int(v)} for a, v in rows if v is not None],
                                         dtype=object),
                            f"Parallel analysis with {m.get('correlation')} correlations of permuted data; a factor is "
                            "retained while its observed eigenvalue exceeds the random ones' percentile."))
    if nf.get("constructs") is not None and nf.get("parallel_fa") is not None:
        same = nf["parallel_fa"] == nf["constructs"]
        findings.check(same, f"parallel analysis suggests {nf['parallel_fa']} factors for {nf['constructs']} constructs")
    fit = m.get("fit") or {}
    sec.blocks.append(
        f"The {nf.get('used')}-factor solution: {apa.fmt_chisq(fit.get('chisq'), fit.get('df'), fit.get('pvalue'))}, "
        f"TLI = {apa.fmt_number(fit.get('tli'))}, RMSEA = {apa.fmt_number(fit.get('rmsea'))} "
        f"{apa.fmt_ci(fit.get('rmsea_ci_lower'), fit.get('rmsea_ci_upper'))}, RMSR = "
        f"{apa.fmt_number(fit.get('rms'))}, BIC = {apa.fmt_number(fit.get('bic'))}"
        + ("" if m.get("converged", True) else "; the extraction did not converge") + ".")
    var = efa.table("efa_variance.csv")
    if var is not None and "cumulative_var" in var and len(var):
        sec.blocks.append(f"The factors account for {_pct(var['cumulative_var'].iloc[-1])} of the item variance.")

    scree = efa.table("efa_scree.csv")
    if scree is not None and {"factor", "observed_fa", "random_fa"} <= set(scree.columns):
        figures["scree"] = Figure("scree", "Scree plot with the parallel-analysis curve",
                                  scree_figure(scree, nf.get("used")),
                                  "Observed eigenvalues against the parallel-analysis percentile of eigenvalues of "
                                  f"random (permuted) data; {nf.get('used')} factors retained.")
    else:
        figures["scree"] = Figure("scree", "Scree plot", placeholder_figure("efa_scree.csv is absent"))
        sec.blocks.append(_absent(efa, "efa_scree.csv"))
    sec.blocks.append(figures["scree"])

    loadings = efa.table("efa_loadings.csv")
    diag = efa.table("efa_diagnostics.csv")
    construct_of = dict(zip(diag["item"], diag["construct"])) if diag is not None and "construct" in diag else {}
    if loadings is not None and "item" in loadings:
        factors = [c for c in loadings.columns if re.fullmatch(r"F\d+", str(c))]
        hide = cuts["hide_loadings_below"]
        fmt = {"item": "text"}
        frame = loadings.copy()
        if construct_of:
            frame.insert(1, "construct", frame["item"].map(construct_of))
            fmt["construct"] = "text"
        for f in factors:
            fmt[f] = (lambda v, hide=hide: apa.fmt_bounded(v) if _ok(v) and abs(_num(v)) >= hide else "")
        for c, kind in (("h2", "bounded"), ("complexity", "number")):
            if c in frame:
                fmt[c] = kind
        table = apa.apa_table(frame, fmt, {"item": "Item", "construct": "Construct", "h2": "h²",
                                           "complexity": "Complexity"})
        sec.blocks.append(Table("efa_loadings", "Rotated factor loadings", table,
                                f"{m.get('extraction')} extraction, {m.get('rotation')} rotation, "
                                f"{m.get('correlation')} correlations. Loadings with absolute value below "
                                f"{apa.fmt_bounded(hide)} are left blank (efa_loadings.csv has every loading). "
                                "h² = communality; Complexity = Hofmann's index."))
        figures["loadings"] = Figure("loadings", "Heat map of the rotated loadings",
                                     loadings_figure(loadings, factors, construct_of),
                                     "Items sorted by their primary factor (psych::fa.sort); red positive, blue negative.")
        sec.blocks.append(figures["loadings"])
        values = loadings[factors].abs()
        prim = values.max(axis=1)
        cross = values.apply(lambda r: r.nlargest(2).iloc[-1] if len(r) > 1 else 0.0, axis=1)
        findings.numbers.update(efa_mean_primary_loading=float(prim.mean()), efa_max_cross_loading=float(cross.max()))
    else:
        figures["loadings"] = Figure("loadings", "EFA loadings", placeholder_figure("efa_loadings.csv is absent"))
        sec.blocks.append(_absent(efa, "efa_loadings.csv"))
    corr = efa.table("efa_factor_correlations.csv")
    if corr is not None and "factor" in corr and len(corr) > 1:
        r = corr.set_index("factor").to_numpy(dtype=float)
        off = np.abs(r[~np.eye(len(r), dtype=bool)])
        findings.numbers["efa_max_abs_factor_correlation"] = float(off.max())
        sec.blocks.append(f"The largest factor correlation is {apa.fmt_bounded(off.max())} in absolute value "
                          "(efa_factor_correlations.csv has them all).")
    agreement = m.get("structure_agreement")
    flagged = m.get("flagged_items")
    if agreement is not None:
        findings.check(_num(agreement) >= 1, f"{_pct(agreement, 0)} of the items load highest on their own "
                       "construct's factor")
    if flagged is not None:
        if diag is not None and "flagged" in diag and flagged:
            bad = diag[diag["flagged"].map(_bool)]
            sec.blocks.append("Items flagged by the diagnostics (efa_diagnostics.csv; none is dropped unless "
                              "efa.drop_items names it):")
            sec.blocks.append([f"{r.item} ({r.construct}): {r.reasons}" for r in bad.itertuples()])
        count = "no item" if not flagged else f"{apa.fmt_int(flagged)} item(s)"
        findings.check(not flagged, f"{count} flagged by the EFA item diagnostics (weak primary loading, "
                       "cross-loading, low communality)")
    _stage_warnings(efa, findings, "warnings")
    return sec


def cfa_section(cfa: StageOutputs, findings: Findings, cuts: dict) -> Section:
    sec = Section("cfa", SECTIONS["cfa"])
    if cfa.metrics is None:
        sec.ran = False
        sec.blocks.append(_not_run(cfa, findings))
        return sec
    m = cfa.metrics
    fit = m.get("fit") or {}
    sec.blocks.append(
        f"The measurement model (one factor per construct) was fitted to the CFA half by {m.get('estimator')} with "
        f"{m.get('missing')} handling of missing data (N = {apa.fmt_int(fit.get('ntotal'))} of "
        f"{apa.fmt_int(m.get('n_rows'))} rows; {'converged' if m.get('converged') else 'did NOT converge'} in "
        f"{m.get('iterations')} iterations): {apa.fmt_chisq(fit.get('chisq'), fit.get('df'), fit.get('pvalue'))}.")
    findings.tested.append(f"the measurement model by CFA (N = {apa.fmt_int(fit.get('ntotal'))})")
    sec.blocks.append(Table("cfa_fit", "Fit of the measurement model", fit_table(fit, cuts, m.get("estimator")),
                            "Cut-offs of Hu and Bentler (1999), set in params.yaml (report:). RMSEA with its 90% "
                            "confidence interval."))
    for ok, text in fit_checks(fit, cuts, m.get("estimator")):
        findings.check(ok, f"CFA: {text}")
    params = cfa.table("cfa_parameters.csv")
    if params is not None and {"lhs", "op", "rhs"} <= set(params.columns):
        load = params[params["op"] == "=~"].copy()
        cols = {"lhs": "text", "rhs": "text", "est": "number", "se": "number", "std_all": "bounded", "pvalue": "p"}
        cols = {c: k for c, k in cols.items() if c in load}
        load["se"] = load["se"].where(load["se"] > 0) if "se" in load else np.nan
        table = apa.apa_table(load, cols, {"lhs": "Construct", "rhs": "Item", "est": "b", "se": "SE",
                                           "std_all": "β", "pvalue": "p"})
        sec.blocks.append(Table("cfa_loadings", "Standardised loadings of the measurement model", table,
                                "b = unstandardised loading (the first of each construct fixed at 1, no SE); β = "
                                "standardised loading (lavaan's std.all)."))
        if "std_all" in load:
            low = load[load["std_all"] < 0.5]
            findings.check(low.empty, "every standardised CFA loading is at least .50" if low.empty else
                           f"{len(low)} standardised CFA loadings below .50: "
                           + ", ".join(f"{r.rhs} ({apa.fmt_against(r.std_all, 0.5, bounded=True)})" for r in low.itertuples()))
    else:
        sec.blocks.append(_absent(cfa, "cfa_parameters.csv"))
    lines = _stage_warnings(cfa, findings, "inadmissible")
    if lines:
        sec.blocks.append("The solution is inadmissible:")
        sec.blocks.append(lines)
    if m.get("converged") is False:
        findings.warnings.append("CFA: the estimation did not converge")
    return sec


def reliability_section(rel: StageOutputs, findings: Findings, cuts: dict, labels: dict) -> Section:
    sec = Section("reliability", SECTIONS["reliability"])
    if rel.metrics is None:
        sec.ran = False
        sec.blocks.append(_not_run(rel, findings))
        return sec
    m = rel.metrics
    findings.tested.append("reliability and convergent and discriminant validity")
    table = rel.table("reliability.csv")
    rmin, amin, hmax = cuts["reliability_min"], cuts["ave_min"], cuts["htmt_max"]
    if table is not None and "construct" in table:
        t = table.copy()
        flags = []
        for r in t.itertuples():
            f = []
            for col, name in (("raw_alpha", "α"), ("omega", "ω"), ("cr", "CR")):
                if _ok(getattr(r, col, None)) and _num(getattr(r, col)) < rmin:
                    f.append(f"{name} {apa.fmt_against(getattr(r, col), rmin, bounded=True)} < {apa.fmt_bounded(rmin)}")
            if _ok(getattr(r, "ave", None)) and _num(r.ave) < amin:
                f.append(f"AVE {apa.fmt_against(r.ave, amin, bounded=True)} < {apa.fmt_bounded(amin)}")
            if "fornell_larcker_met" in t and not _bool(r.fornell_larcker_met):
                f.append("Fornell–Larcker not met")
            flags.append("; ".join(f))
        t["flags"] = flags
        if labels:
            t.insert(1, "label", t["construct"].map(labels).fillna(""))
        if {"feldt_lower", "feldt_upper"} <= set(t.columns):
            t["alpha_ci"] = [apa.fmt_ci(a, b, bounded=True) for a, b in zip(t["feldt_lower"], t["feldt_upper"])]
        spec = {"construct": "text", "label": "text", "n_items": "int", "raw_alpha": "bounded", "alpha_ci": "text",
                "omega": "bounded", "cr": "bounded", "ave": "bounded", "sqrt_ave": "bounded",
                "max_abs_correlation": "bounded", "flags": "text"}
        spec = {c: k for c, k in spec.items() if c in t}
        sec.blocks.append(Table(
            "reliability", "Reliability and convergent validity",
            apa.apa_table(t, spec, {"construct": "Construct", "label": "Label", "n_items": "k", "raw_alpha": "α",
                                    "alpha_ci": _ci_label(m.get("ci")), "omega": "ω", "cr": "CR", "ave": "AVE",
                                    "sqrt_ave": "√AVE", "max_abs_correlation": "Max. |r|", "flags": "Below cut-off"}),
            f"α = Cronbach's alpha with Feldt's confidence interval (level: {_ci_level(m.get('ci'))}); ω = omega from the fitted model (semTools::compRelSEM); CR = "
            f"composite reliability; AVE = average variance extracted; Max. |r| = the largest latent correlation. "
            f"Cut-offs: α, ω, CR ≥ {apa.fmt_bounded(rmin)}; AVE ≥ {apa.fmt_bounded(amin)}."))
        for col, name in (("raw_alpha", "alpha"), ("omega", "omega"), ("cr", "CR")):
            if col in t:
                low = t[t[col] < rmin]
                findings.check(low.empty, f"{name} ≥ {apa.fmt_bounded(rmin)} for every construct" if low.empty else
                               f"{name} < {apa.fmt_bounded(rmin)} for " + ", ".join(
                                   f"{r.construct} ({apa.fmt_against(getattr(r, col), rmin, bounded=True)})"
                                   for r in low.itertuples()))
        if "ave" in t:
            low = t[t["ave"] < amin]
            findings.check(low.empty, f"AVE ≥ {apa.fmt_bounded(amin)} for every construct" if low.empty else
                           f"AVE < {apa.fmt_bounded(amin)} for " + ", ".join(
                               f"{r.construct} ({apa.fmt_against(r.ave, amin, bounded=True)})" for r in low.itertuples()))
    else:
        sec.blocks.append(_absent(rel, "reliability.csv"))

    fl = rel.table("fornell_larcker.csv")
    if fl is not None and "construct" in fl:
        names = [str(c) for c in fl["construct"]]
        matrix = fl.set_index("construct")[names]
        diag = dict(zip(fl["construct"], fl["sqrt_ave"])) if "sqrt_ave" in fl else None
        sec.blocks.append(Table("fornell_larcker", "Fornell–Larcker criterion",
                                lower_triangle(matrix, names, bounded=True, diagonal=diag),
                                "Diagonal: √AVE; below the diagonal: latent correlations. The criterion is met when "
                                "each construct's √AVE exceeds its correlations with every other construct."))
        violations = m.get("fornell_larcker_violations") or []
        findings.check(not violations, "Fornell–Larcker criterion met for every construct" if not violations else
                       "Fornell–Larcker criterion not met for " + ", ".join(violations))
    else:
        sec.blocks.append(_absent(rel, "fornell_larcker.csv"))

    ht = rel.table("htmt.csv")
    if ht is not None and {"construct_1", "construct_2", "htmt"} <= set(ht.columns):
        names = list(dict.fromkeys(list(ht["construct_1"]) + list(ht["construct_2"])))
        matrix = pd.DataFrame(np.nan, index=names, columns=names)
        for r in ht.itertuples():
            matrix.at[r.construct_1, r.construct_2] = matrix.at[r.construct_2, r.construct_1] = r.htmt
        sec.blocks.append(Table("htmt", "Heterotrait–monotrait ratios (HTMT)", lower_triangle(matrix, names, False),
                                f"HTMT2 (semTools::htmt). Discriminant validity is supported below "
                                f"{apa.fmt_number(hmax)} (Henseler et al., 2015)."))
        top = ht.sort_values("htmt", ascending=False).head(10).copy()
        top["pair"] = top["construct_1"] + " – " + top["construct_2"]
        spec = {"pair": "text", "htmt": "number"}
        if {"ci_lower", "ci_upper"} <= set(top.columns):
            top["ci"] = [apa.fmt_ci(a, b) for a, b in zip(top["ci_lower"], top["ci_upper"])]
            spec["ci"] = "text"
        if "n_boot_valid" in top:
            spec["n_boot_valid"] = "int"
        sec.blocks.append(Table("htmt_highest", "The highest HTMT ratios with bootstrap intervals",
                                apa.apa_table(top, spec, {"pair": "Constructs", "htmt": "HTMT",
                                                          "ci": _ci_label(m.get("ci")) + " (percentile bootstrap)",
                                                          "n_boot_valid": "Valid draws"}),
                                "htmt.csv has every pair with its interval."))
        over = ht[ht["htmt"] >= hmax]
        findings.check(over.empty, f"HTMT < {apa.fmt_number(hmax)} for every pair of constructs (highest "
                       f"{apa.fmt_number(ht['htmt'].max())}, {m.get('highest_htmt_pair', '')})" if over.empty else
                       f"HTMT ≥ {apa.fmt_number(hmax)} for " + ", ".join(
                           f"{r.construct_1}–{r.construct_2} ({apa.fmt_against(r.htmt, hmax)})" for r in over.itertuples()))
        if "ci_upper" in ht:
            over_ci = ht[ht["ci_upper"] >= 1]
            if not over_ci.empty:
                findings.not_held.append("HTMT interval reaches 1 for " + ", ".join(
                    f"{r.construct_1}–{r.construct_2}" for r in over_ci.itertuples()))
        if "n_boot_valid" in ht and ht["n_boot_valid"].nunique() == 1:
            valid = int(ht["n_boot_valid"].iloc[0])
            sec.blocks.append(f"The HTMT intervals rest on {apa.fmt_int(valid)} valid bootstrap draws.")
    else:
        sec.blocks.append(_absent(rel, "htmt.csv"))

    harman = m.get("harman_first_factor_share")
    if harman is not None:
        text = (f"Common-method variance: the first unrotated factor of all items accounts for {_pct(harman)} of "
                "their variance (Harman's single-factor test; a share above 50% would signal a common-method problem).")
        cmv = m.get("method_factor")
        if isinstance(cmv, dict):
            text += (f" Adding an unmeasured latent method factor changes the fit by Δχ²({apa.fmt_df(cmv.get('df_difference'))})"
                     f" = {apa.fmt_number(cmv.get('chisq_difference'))}, {apa.fmt_p_text(cmv.get('pvalue'))}, ΔCFI = "
                     f"{apa.fmt_number(cmv.get('cfi_change'), 3)}; the method factor explains {_pct(cmv.get('method_variance_share'))} "
                     "of the items' variance on average.")
        sec.blocks.append(text)
        findings.check(_num(harman) <= 0.5, f"Harman's single factor accounts for {_pct(harman)} of the variance "
                       f"({'under' if _num(harman) <= 0.5 else 'over'} 50%)")
    lines = _stage_warnings(rel, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the reliability stage:")
        sec.blocks.append(lines)
    return sec


def _level_reached(m: dict, fit: pd.DataFrame | None) -> str | None:
    for key in ("level_reached", "level", "invariance_level", "highest_level"):
        if isinstance(m.get(key), str):
            return m[key]
    if fit is not None and {"model", "holds"} <= set(fit.columns):
        level = None
        for i, r in enumerate(fit.itertuples()):
            if i == 0 or _bool(r.holds):
                level = str(r.model)
            else:
                break
        return level
    return None


def invariance_section(inv: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    sec = Section("invariance", SECTIONS["invariance"])
    fit = inv.table("invariance_fit.csv")
    if not inv.ran or fit is None:
        sec.ran = False
        sec.blocks.append(_not_run(inv, findings) if not inv.ran else _absent(inv, "invariance_fit.csv"))
        figures["invariance_ladder"] = Figure("invariance_ladder", "Invariance ladder",
                                              placeholder_figure("Invariance stage not run"))
        return sec
    m = inv.metrics or {}
    fit = fit.copy()
    fit["_order"] = fit["model"].astype(str).str.lower().map({s: i for i, s in enumerate(INVARIANCE_STEPS)})
    fit = fit.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    groups = inv.table("invariance_groups.csv")
    group_col = m.get("group") or m.get("group_column")
    intro = "Measurement invariance was tested step by step (configural, metric, scalar, strict)"
    intro += f" across the groups of {group_col}" if group_col else " across groups"
    if m.get("estimator") or m.get("missing"):
        intro += f" by multi-group {m.get('estimator', 'ML')} ({m.get('missing', '')})"
    crit = m.get("criterion")
    cut = m.get("cutoffs") or {}
    rules = []
    if _ok(cut.get("configural_cfi")) or _ok(cut.get("configural_rmsea")):
        rules.append("the configural model must fit on its own (" + " and ".join(
            x for x in (f"CFI ≥ {apa.fmt_bounded(cut['configural_cfi'])}" if _ok(cut.get("configural_cfi")) else "",
                        f"RMSEA ≤ {apa.fmt_number(cut['configural_rmsea'])}" if _ok(cut.get("configural_rmsea")) else "")
            if x) + ")")
    if crit and "chisq" in str(crit) and _ok(cut.get("alpha")):
        rules.append(f"a later step holds when its χ² difference test gives p ≥ {apa.fmt_p(cut['alpha'])}")
    elif _ok(cut.get("delta_cfi")) or _ok(cut.get("delta_rmsea")):
        dc = _num(cut.get("delta_cfi"))
        rules.append("a later step holds when " + " and ".join(
            x for x in (f"ΔCFI ≥ {apa.fmt_number(-abs(dc), 3, bounded=True)}" if _ok(dc) else "",
                        f"ΔRMSEA ≤ {apa.fmt_number(cut.get('delta_rmsea'), 3)}" if _ok(cut.get("delta_rmsea")) else "")
            if x) + " (Chen, 2007)")
    rule = (" Criteria (" + str(crit) + "): " if crit else " Criteria: ") + "; ".join(rules) + "." if rules else ""
    sec.blocks.append(intro + "; each step is compared with the one before." + rule)
    findings.tested.append("measurement invariance" + (f" across {group_col}" if group_col else ""))
    if groups is not None and len(groups):
        spec = {c: k for c, k in {"group": "text", "n": "int", "used": "yes_no", "reason": "text"}.items() if c in groups}
        sec.blocks.append(Table("invariance_groups", "Groups compared", apa.apa_table(groups, spec, {
            "group": "Group", "n": "n", "used": "Used", "reason": "Reason"})))
        stage_lines = " ".join(str(w) for w in (m.get("warnings") or []))
        if "used" in groups:
            for r in groups[~groups["used"].map(_bool)].itertuples():
                if str(r.group) in stage_lines and "left out" in stage_lines:
                    continue  # the stage's own warning says it
                reason = getattr(r, "reason", None)
                findings.warnings.append(f"invariance: group {r.group} (n = {apa.fmt_int(getattr(r, 'n', None))}) "
                                         "left out" + (f": {reason}" if isinstance(reason, str) and reason else ""))
    t = fit.copy()
    if {"rmsea_ci_lower", "rmsea_ci_upper"} <= set(t.columns):
        t["rmsea_ci"] = [apa.fmt_ci(a, b) for a, b in zip(t["rmsea_ci_lower"], t["rmsea_ci_upper"])]
    steps = m.get("steps") if isinstance(m.get("steps"), dict) else {}
    if steps:
        t["reason"] = [str((steps.get(str(x)) or {}).get("reason") or "") for x in t["model"]]
    spec = {"model": "text", "chisq": "number", "df": "df", "cfi": "bounded", "tli": "number", "rmsea": "number",
            "rmsea_ci": "text", "srmr": "number", "delta_chisq": "number", "delta_df": "df", "delta_pvalue": "p",
            "delta_cfi": "number", "delta_rmsea": "number", "delta_srmr": "number", "holds": "yes_no",
            "reason": "text"}
    spec = {c: k for c, k in spec.items() if c in t}
    for c in ("delta_cfi", "delta_rmsea", "delta_srmr"):  # small changes: three decimals, as is the custom
        if c in spec:
            spec[c] = (lambda v, b=(c == "delta_cfi"): apa.fmt_number(v, 3, bounded=b))
    sec.blocks.append(Table("invariance_fit", "The invariance ladder", apa.apa_table(t, spec, {
        "model": "Model", "chisq": "χ²", "df": "df", "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA",
        "rmsea_ci": "90% CI", "srmr": "SRMR", "delta_chisq": "Δχ²", "delta_df": "Δdf", "delta_pvalue": "p",
        "delta_cfi": "ΔCFI", "delta_rmsea": "ΔRMSEA", "delta_srmr": "ΔSRMR", "holds": "Holds", "reason": "Why"}),
        "Each Δ compares a model with the one above it, with three decimals. Holds: this step and every step "
        "before it meet the criteria."))
    figures["invariance_ladder"] = Figure("invariance_ladder", "The invariance ladder: fit at each step",
                                          invariance_figure(fit, cuts),
                                          "CFI and RMSEA of each model; dashed lines at the cut-offs.")
    sec.blocks.append(figures["invariance_ladder"])
    level = _level_reached(m, fit)
    if level == "none":
        sec.blocks.append("Not even configural invariance holds: the groups do not share the factor structure.")
    elif level:
        partial = " (partial invariance: " + ", ".join(m.get("partial") or []) + " free)" if m.get("partial_invariance") else ""
        sec.blocks.append(f"Invariance holds up to the **{level}** level{partial}.")
    if "holds" in fit:  # each step that holds, then the first that does not (the later ones cannot)
        for r in fit.itertuples():
            if not _ok(r.holds) and not isinstance(r.holds, (bool, str)):
                continue
            if _bool(r.holds):
                findings.held.append(f"{r.model} invariance holds")
                continue
            why = str((steps.get(str(r.model)) or {}).get("reason") or "")
            findings.not_held.append(f"{r.model} invariance does not hold" + (f" ({why})" if why else "")
                                     + ("; the steps above it are not reached" if str(r.model) != INVARIANCE_STEPS[-1] else ""))
            break
    means = inv.table("invariance_latent_means.csv")
    if means is not None and len(means):
        sec.blocks.append(Table("invariance_latent_means", "Latent mean differences from the reference group",
                                auto_table(means), "Estimated under the scalar model (means of the reference "
                                "group fixed at 0)."))
    structural = m.get("structural") if isinstance(m.get("structural"), dict) else {}
    if structural.get("answer"):
        sec.blocks.append(f"Structural paths across groups: {structural['answer']}.")
    elif structural.get("reason"):
        sec.blocks.append(f"Structural paths were not compared across groups: {structural['reason']}.")
    paths = inv.table("invariance_paths.csv")
    if paths is not None and len(paths):
        sec.blocks.append(Table("invariance_paths", "Structural paths by group", auto_table(paths),
                                "Wald tests of equality across groups; pvalue_holm adjusted for the number of paths."))
    lines = _stage_warnings(inv, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the invariance stage:")
        sec.blocks.append(lines)
    return sec


def sem_section(sem: StageOutputs, findings: Findings, cuts: dict, figures: dict) -> Section:
    sec = Section("sem", SECTIONS["sem"])
    params = sem.table("sem_parameters.csv")
    if not sem.ran or params is None:
        sec.ran = False
        sec.blocks.append(_not_run(sem, findings) if not sem.ran else _absent(sem, "sem_parameters.csv"))
        figures["path_diagram"] = Figure("path_diagram", "Path diagram",
                                         placeholder_figure("Structural model (sem stage) not run"))
        return sec
    m = sem.metrics or {}
    fit = m.get("fit") or {}
    boot = m.get("bootstrap") or {}
    findings.tested.append("the structural model and its hypotheses")
    text = "The hypothesised structural model was fitted to " + (
        f"{m['source']}" if m.get("source") else "the data") + (f" by {m['estimator']}" if m.get("estimator") else "") + (
        f" ({m['missing']})" if m.get("missing") else "")
    if fit:
        text += f" (N = {apa.fmt_int(fit.get('ntotal'))}): {apa.fmt_chisq(fit.get('chisq'), fit.get('df'), fit.get('pvalue'))}"
    text += "."
    draws = boot.get("draws", boot.get("requested"))
    if boot and draws:
        failed, inadmissible = boot.get("failed"), boot.get("inadmissible")
        text += (f" Indirect effects are tested with {apa.fmt_int(draws)} bootstrap draws"
                 + (f", of which {apa.fmt_int(failed)} failed (did not converge) and were left out" if failed else "")
                 + (f"; {apa.fmt_int(inadmissible)} gave an inadmissible solution" if inadmissible else "")
                 + "; percentile and bias-corrected intervals"
                 + (f" (the hypotheses use the {'percentile' if m.get('interval') == 'boot_pct' else 'bias-corrected' if m.get('interval') == 'boot_bc' else str(m.get('interval'))} interval)" if m.get("interval") else "")
                 + ".")
        stage_lines = " ".join(str(w) for w in (m.get("warnings") or []))
        if failed and "bootstrap" not in stage_lines:
            findings.warnings.append(f"structural model (sem): {apa.fmt_int(failed)} of {apa.fmt_int(draws)} "
                                     "bootstrap draws failed")
        if inadmissible:
            findings.warnings.append(f"structural model (sem): {apa.fmt_int(inadmissible)} of {apa.fmt_int(draws)} "
                                     "bootstrap draws gave an inadmissible solution")
    sec.blocks.append(text)
    if fit:
        sec.blocks.append(Table("sem_fit", "Fit of the structural model", fit_table(fit, cuts, m.get("estimator")),
                                "Cut-offs of Hu and Bentler (1999)."))
        for ok, t in fit_checks(fit, cuts, m.get("estimator")):
            findings.check(ok, f"structural model: {t}")
    p = params.copy()
    for c in ("lhs", "op", "rhs"):
        p[c] = p[c].astype(str).str.strip()
    paths = p[p["op"] == "~"].copy()
    if len(paths):
        if {"ci_lower", "ci_upper"} <= set(paths.columns):
            paths["ci"] = [apa.fmt_ci(a, b) for a, b in zip(paths["ci_lower"], paths["ci_upper"])]
        spec = {"lhs": "text", "rhs": "text", "label": "text", "est": "number", "se": "number", "std_all": "bounded",
                "pvalue": "p", "ci": "text"}
        spec = {c: k for c, k in spec.items() if c in paths}
        sec.blocks.append(Table("sem_paths", "Structural paths", apa.apa_table(paths, spec, {
            "lhs": "Outcome", "rhs": "Predictor", "label": "Label", "est": "b", "se": "SE", "std_all": "β",
            "pvalue": "p", "ci": _ci_label(m.get("ci")) + " (Wald, b)"}), "b = unstandardised, β = standardised coefficient (std.all)."))
    r2 = sem.table("sem_r2.csv")
    latents = set(p.loc[p["op"] == "=~", "lhs"])
    if r2 is not None and {"variable", "r2"} <= set(r2.columns):
        shown = r2[r2["variable"].astype(str).isin(latents)] if latents else r2
        sec.blocks.append(Table("sem_r2", "Variance explained (R²) in the latent variables",
                                apa.apa_table(shown, {"variable": "text", "r2": "bounded"}, {"variable": "Variable", "r2": "R²"}),
                                "For endogenous factors and the first-order factors of a second-order factor; "
                                "sem_r2.csv also has every indicator's R²."))
    elif r2 is None:
        sec.blocks.append(_absent(sem, "sem_r2.csv"))
    defined = p[p["op"] == ":="].copy()
    if len(defined):
        for a, b, name in (("boot_pct_lower", "boot_pct_upper", "pct"), ("boot_bc_lower", "boot_bc_upper", "bc"),
                           ("ci_lower", "ci_upper", "ci")):
            if {a, b} <= set(defined.columns):
                defined[name] = [apa.fmt_ci(x, y, 3) for x, y in zip(defined[a], defined[b])]
        three = (lambda v: apa.fmt_number(v, 3))
        spec = {"lhs": "text", "rhs": "text", "est": three, "std_all": (lambda v: apa.fmt_number(v, 3, bounded=True)),
                "se": three, "boot_se": three, "pvalue": "p", "pct": "text", "bc": "text"}
        if "pct" not in defined and "ci" in defined:
            spec["ci"] = "text"
        spec = {c: k for c, k in spec.items() if c in defined}
        sec.blocks.append(Table("sem_indirect", "Indirect and total effects", apa.apa_table(defined, spec, {
            "lhs": "Effect", "rhs": "Definition", "est": "b", "std_all": "β", "se": "SE", "boot_se": "Bootstrap SE",
            "pvalue": "p",
            "pct": _ci_label(m.get("ci")) + " (percentile bootstrap)",
            "bc": _ci_label(m.get("ci")) + " (bias-corrected bootstrap)", "ci": _ci_label(m.get("ci"))}),
            "Defined parameters (:=) of the model: products of path coefficients, with three decimals because "
            "they are small. An effect is supported when its bootstrap interval excludes zero."))
        if {"boot_pct_lower", "boot_pct_upper"} <= set(defined.columns):
            for r in defined.itertuples():
                excl = _ok(r.boot_pct_lower) and (_num(r.boot_pct_lower) > 0 or _num(r.boot_pct_upper) < 0)
                ci = f"[{apa.fmt_against(r.boot_pct_lower, 0, 3)}, {apa.fmt_against(r.boot_pct_upper, 0, 3)}]"
                findings.check(excl, f"indirect effect {r.lhs} {'differs' if excl else 'does not differ'} from zero "
                               f"(b = {apa.fmt_against(getattr(r, 'est', np.nan), 0, 3)}, percentile bootstrap "
                               f"{_ci_label(m.get('ci'))} {ci}; β = "
                               f"{apa.fmt_against(getattr(r, 'std_all', np.nan), 0, 3, bounded=True)})")
    hyp = sem.table("sem_hypotheses.csv")
    if hyp is not None and len(hyp):
        h = hyp.copy()
        defined_names = set(p.loc[p["op"] == ":=", "lhs"])
        small = h["parameter"].astype(str).isin(defined_names) if "parameter" in h else pd.Series(False, index=h.index)
        if {"ci_lower", "ci_upper"} <= set(h.columns):
            h["ci"] = [apa.fmt_ci(a, b, 3 if sm else 2) for a, b, sm in zip(h["ci_lower"], h["ci_upper"], small)]
        for c, bounded in (("std_all", True), ("est", False)):  # defined effects (products) with three decimals
            if c in h:
                h[c] = [apa.fmt_number(v, 3 if sm else 2, bounded=bounded) for v, sm in zip(h[c], small)]
        if "hypothesis" in h:  # a hypothesis tested on several parameters: its name, statement and verdict once
            repeat = h["hypothesis"].astype(str).eq(h["hypothesis"].astype(str).shift())
            for c in ("hypothesis", "statement", "verdict"):
                if c in h:
                    h[c] = h[c].astype(object).where(~repeat, "")
        spec = {"hypothesis": "text", "statement": "text", "parameter": "text", "path": "text", "expected": "text",
                "std_all": "text", "est": "text", "ci": "text", "pvalue": "p", "supported": "yes_no",
                "verdict": "text"}
        spec = {c: k for c, k in spec.items() if c in h}
        sec.blocks.append(Table("sem_hypotheses", "Hypotheses", apa.apa_table(h, spec, {
            "hypothesis": "Hypothesis", "statement": "Statement", "parameter": "Parameter", "path": "Path",
            "expected": "Expected", "std_all": "β", "est": "b", "ci": _ci_label(m.get("ci")), "pvalue": "p",
            "supported": "Supported",
            "verdict": "Verdict"}), "Supported: the parameter's estimate has the expected sign and its interval "
            "excludes zero; Verdict: the hypothesis as a whole. Defined effects (:=) with three decimals."))
        verdicts = {}
        if "verdict" in hyp:
            for r in hyp.drop_duplicates("hypothesis").itertuples():
                verdicts[str(r.hypothesis)] = str(r.verdict)
        elif "supported" in hyp:
            for name, rows in hyp.groupby("hypothesis", sort=False):
                ok = rows["supported"].map(_bool)
                verdicts[str(name)] = "supported" if ok.all() else "partly supported" if ok.any() else "not supported"
        by = {}
        for name, v in verdicts.items():
            by.setdefault(v, []).append(name)
        findings.numbers.update(hypotheses=len(verdicts), hypotheses_supported=len(by.get("supported", [])))
        if by.get("supported"):
            findings.held.append("hypotheses supported: " + ", ".join(by["supported"]))
        for v, names in by.items():
            if v != "supported":
                findings.not_held.append(f"hypotheses {v}: " + ", ".join(names))
    elif hyp is None:
        sec.blocks.append(_absent(sem, "sem_hypotheses.csv"))
    comp = sem.table("sem_competing.csv")
    if comp is not None and len(comp):
        spec = {"model": "text", "npar": "int", "chisq": "number", "df": "df", "cfi": "bounded", "tli": "number",
                "rmsea": "number", "srmr": "number", "aic": "number", "bic": "number", "delta_chisq": "number",
                "delta_df": "df", "delta_pvalue": "p", "preferred": "yes_no"}
        spec = {c: k for c, k in spec.items() if c in comp}
        sec.blocks.append(Table("sem_competing", "Competing models", apa.apa_table(comp, spec, {
            "model": "Model", "npar": "Parameters", "chisq": "χ²", "df": "df", "cfi": "CFI", "tli": "TLI",
            "rmsea": "RMSEA", "srmr": "SRMR",
            "aic": "AIC", "bic": "BIC", "delta_chisq": "Δχ²", "delta_df": "Δdf", "delta_pvalue": "p",
            "preferred": "Preferred"}), "Δ against the hypothesised model; lower AIC and BIC are better."))
        if "preferred" in comp:
            pref = [str(x) for x in comp.loc[comp["preferred"].map(_bool), "model"]]
            if pref:
                sec.blocks.append(f"Preferred model: {', '.join(pref)}.")
    figures["path_diagram"] = Figure("path_diagram", "Path diagram of the structural model",
                                     path_figure(p, r2),
                                     "Standardised coefficients; * p < .05, ** p < .01, *** p < .001; dashed arrows "
                                     "not significant. Covariances among exogenous variables are not drawn.")
    sec.blocks.append(figures["path_diagram"])
    lines = _stage_warnings(sem, findings, "warnings")
    if lines:
        sec.blocks.append("Warnings from the structural model:")
        sec.blocks.append(lines)
    return sec


# --------------------------------------------------------------------------------- the report

@dataclass
class Report:
    title: str
    simulated: bool
    summary: Section
    sections: list
    findings: Findings
    tables: list
    figures: dict
    metrics: dict


def build_report(outputs: dict[str, StageOutputs], cuts: dict, title: str | None = None,
                 labels: dict | None = None) -> Report:
    """Build every section from the stage outputs; number the tables and figures."""
    findings = Findings()
    figures: dict[str, Figure] = {}
    sections = [
        sample_section(outputs["clean"], outputs["split"], findings),
        efa_section(outputs["efa"], findings, cuts, figures),
        cfa_section(outputs["cfa"], findings, cuts),
        reliability_section(outputs["reliability"], findings, cuts, labels or {}),
        invariance_section(outputs["invariance"], findings, cuts, figures),
        sem_section(outputs["sem"], findings, cuts, figures),
    ]
    if all(not s.ran for s in sections):
        raise InputError("no stage outputs found: give the stage output directories (--clean, --efa, ...) of a "
                         "pipeline that has run")
    simulated = any(bool((o.metrics or {}).get("simulated")) for o in outputs.values())
    tables = []
    for sec in sections:
        for b in sec.blocks:
            if isinstance(b, Table):
                tables.append(b)
                b.number = len(tables)
    for i, key in enumerate(k for k in FIGURES if k in figures):
        figures[key].number = i + 1
    for sec in sections:  # resolve {table:key} references
        sec.blocks = [_resolve(b, tables) if isinstance(b, str) else b for b in sec.blocks]

    summary = Section("summary", SECTIONS["summary"])
    if simulated:
        summary.blocks.append("**The data are simulated** (the simulate stage drew them from a population model with "
                              "planted defects); the results show what the pipeline does, not what is true of any "
                              "population.")
    if findings.tested:
        summary.blocks.append("What was tested: " + "; ".join(findings.tested) + ".")
    summary.blocks.append("What held:" if findings.held else "Nothing that was tested held.")
    if findings.held:
        summary.blocks.append([_capital(x) for x in findings.held])
    summary.blocks.append("What did not hold:" if findings.not_held else "Every check that was made held.")
    if findings.not_held:
        summary.blocks.append([_capital(x) for x in findings.not_held])
    if findings.not_run:
        summary.blocks.append("Not run (no outputs found): " + ", ".join(findings.not_run) + ".")
    summary.blocks.append(f"Warnings raised by the stages ({len(findings.warnings)}):" if findings.warnings else
                          "No stage raised a warning.")
    if findings.warnings:
        summary.blocks.append(list(dict.fromkeys(findings.warnings)))

    metrics = {
        "simulated": simulated,
        "sections_reported": [s.key for s in sections if s.ran],
        "sections_not_run": [s.key for s in sections if not s.ran],
        "held": len(findings.held), "not_held": len(findings.not_held), "warnings": len(findings.warnings),
        "tables": len(tables), "figures": len(figures),
        **findings.numbers,
    }
    return Report(title or "Scale validation report", simulated, summary, sections, findings, tables, figures, metrics)


def _resolve(text: str, tables: list) -> str:
    numbers = {t.key: t.number for t in tables}
    return re.sub(r"\{table:(\w+)\}", lambda mt: str(numbers.get(mt.group(1), "?")), text)


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


# --------------------------------------------------------------------------------- rendering

def _md_cell(x: str) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers only (right-aligned), as opposed to text (left-aligned)."""
    out = []
    for c in frame.columns:
        cells = [str(v) for v in frame[c] if str(v).strip()]
        out.append(bool(cells) and all(not math.isnan(apa.parse_number(v)) for v in cells))
    return out


def table_markdown(t: Table) -> str:
    cols = list(t.frame.columns)
    align = numeric_columns(t.frame)
    lines = [f"<!-- table: {t.key} -->", f"**Table {t.number}**", "", f"*{t.title}*", "",
             "| " + " | ".join(_md_cell(c) for c in cols) + " |",
             "|" + "|".join("---:" if a else "---" for a in align) + "|"]
    for row in t.frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    if t.note:
        lines += ["", f"*Note.* {t.note}"]
    return "\n".join(lines)


def figure_markdown(f: Figure) -> str:
    lines = [f"**Figure {f.number}**", "", f"*{f.title}*", "", f"![{f.title}](figures/{f.key}.svg)"]
    if f.note:
        lines += ["", f"*Note.* {f.note}"]
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    out = []
    if report.simulated:
        out += [f"> **{SIMULATED_LINE}**", ""]
    out += [f"# {report.title}", ""]
    for sec in [report.summary, *report.sections, about_section(report)]:
        out += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if isinstance(b, Table):
                out += [table_markdown(b), ""]
            elif isinstance(b, Figure):
                out += [figure_markdown(b), ""]
            elif isinstance(b, list):
                out += [f"- {x}" for x in b] + [""]
            else:
                out += [str(b), ""]
    return "\n".join(out).rstrip() + "\n"


def _inline(text: str) -> str:
    s = html.escape(str(text), quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return s


def table_html(t: Table) -> str:
    cls = ['' if a else ' class="t"' for a in numeric_columns(t.frame)]
    head = "".join(f"<th{k}>{html.escape(str(c))}</th>" for k, c in zip(cls, t.frame.columns))
    body = "\n".join("<tr>" + "".join(f"<td{k}>{html.escape(str(v))}</td>" for k, v in zip(cls, row)) + "</tr>"
                     for row in t.frame.itertuples(index=False))
    note = f'<p class="note"><em>Note.</em> {html.escape(t.note)}</p>' if t.note else ""
    return (f'<div class="table" id="table-{t.key}"><p class="tnum"><strong>Table {t.number}</strong></p>'
            f'<p class="ttitle"><em>{html.escape(t.title)}</em></p>'
            f'<div class="scroll"><table class="apa" data-key="{t.key}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>{note}</div>")


def figure_html(f: Figure) -> str:
    data = base64.b64encode(f.svg).decode("ascii")
    note = f"<br><em>Note.</em> {html.escape(f.note)}" if f.note else ""
    return (f'<figure id="figure-{f.key}"><p class="tnum"><strong>Figure {f.number}</strong></p>'
            f'<p class="ttitle"><em>{html.escape(f.title)}</em></p>'
            f'<img src="data:image/svg+xml;base64,{data}" alt="{html.escape(f.title)}" data-key="{f.key}">'
            f"<figcaption>{note}</figcaption></figure>")


CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#111;
line-height:1.45}
h1{font-size:1.7rem}h2{font-size:1.3rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}
.simulated{background:#fff3cd;border:1px solid #e0b000;padding:.6rem .8rem;font-weight:bold;margin-top:0}
nav ol{columns:2}
table.apa{border-collapse:collapse;margin:.3rem 0;font-size:.85rem;font-family:Arial,Helvetica,sans-serif}
table.apa thead tr{border-top:2px solid #000;border-bottom:1px solid #000}
table.apa tbody tr:last-child{border-bottom:2px solid #000}
table.apa th,table.apa td{padding:.15rem .55rem;text-align:right;vertical-align:top}
table.apa th.t,table.apa td.t{text-align:left}
.scroll{overflow-x:auto}.tnum{margin:1.2rem 0 0}.ttitle{margin:.1rem 0 .3rem}
.note,figcaption{font-size:.85rem}figure{margin:1rem 0}figure img{max-width:100%;height:auto}
@media print{.scroll{overflow:visible}nav{display:none}}
"""


def render_html(report: Report) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>"]
    if report.simulated:
        parts.append(f'<p class="simulated" id="simulated">{html.escape(SIMULATED_LINE)}</p>')
    parts.append(f"<h1>{html.escape(report.title)}</h1>")
    sections = [report.summary, *report.sections, about_section(report)]
    parts.append("<nav><ol>" + "".join(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>' for s in sections)
                 + "</ol></nav>")
    for sec in sections:
        parts.append(f'<section id="{sec.key}"><h2>{html.escape(sec.title)}</h2>')
        for b in sec.blocks:
            if isinstance(b, Table):
                parts.append(table_html(b))
            elif isinstance(b, Figure):
                parts.append(figure_html(b))
            elif isinstance(b, list):
                parts.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b) + "</ul>")
            else:
                parts.append(f"<p>{_inline(b)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def about_section(report: Report) -> Section:
    sec = Section("about", SECTIONS["about"])
    sec.blocks.append("Written by `gapscale report` from the outputs of the pipeline's stages; every number is read "
                      "from those files and rounded only here, in APA style (two decimals; no leading zero for "
                      "statistics that cannot exceed 1; p with three decimals, p < .001). Every table is also in "
                      "tables/ as CSV, and every figure in figures/ as SVG.")
    sec.blocks.append(f"Sections reported: {', '.join(SECTIONS[k] for k in report.metrics['sections_reported'])}."
                      + (f" Not run: {', '.join(SECTIONS[k] for k in report.metrics['sections_not_run'])}."
                         if report.metrics["sections_not_run"] else ""))
    return sec


# --------------------------------------------------------------------------------- the stage

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
    report = build_report(outputs, cuts, title, labels)

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
