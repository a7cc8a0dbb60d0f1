"""The report's figures, drawn with matplotlib as deterministic SVG (no date, fixed hash salt).

:func:`draw` takes a :class:`~pipeline.report.model.Figure` as the findings describe it (its
``kind`` and ``data``) and returns the SVG bytes: ``scree`` (observed eigenvalues against the
parallel-analysis curve), ``loadings`` (heat map of the rotated loadings), ``invariance_ladder``
(CFI and RMSEA per step), ``path_diagram`` (the structural model), ``power_curve`` (power per
hypothesis against N), ``placeholder`` (a note saying
why a figure is missing, written so that DVC's declared plot files always exist).
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.model import Figure, as_bool, num, ok

__all__ = ["draw", "placeholder_figure", "scree_figure", "loadings_figure", "invariance_figure", "path_figure",
           "power_figure"]


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


def _fit_tick(v: float, ax) -> str:
    """A fit-index axis tick as the text prints the index: no leading zero, at least three decimals
    (more when the ticks are closer than .001), a true minus sign."""
    ticks = ax.yaxis.get_majorticklocs()
    step = float(np.min(np.diff(ticks))) if len(ticks) > 1 else 1.0
    decimals = max(3, int(np.ceil(-np.log10(step))) if step > 0 else 3)
    return apa.fmt_number(v, decimals, bounded=True).replace("-", "\u2212")


def invariance_figure(fit: pd.DataFrame, cuts: dict, suffix: str = "") -> bytes:
    """The invariance ladder: CFI and RMSEA at each step, filled where the step holds (``suffix``
    "_robust" or "_scaled": those versions of the indices, as the ladder table shows)."""
    from matplotlib.ticker import FuncFormatter

    fig = _new_figure(7.5, 3.4)
    axes = fig.subplots(1, 2)
    x = np.arange(len(fit))
    holds = [as_bool(h) if isinstance(h, (bool, str)) or ok(h) else True for h in fit.get("holds", [True] * len(fit))]
    kind = {"_robust": " (robust)", "_scaled": " (scaled)"}.get(suffix, "")
    for ax, col, cut, label in ((axes[0], "cfi" + suffix, cuts["cfi_min"], "CFI" + kind),
                                (axes[1], "rmsea" + suffix, cuts["rmsea_max"], "RMSEA" + kind)):
        y = pd.to_numeric(fit[col], errors="coerce").to_numpy() if col in fit else np.full(len(fit), np.nan)
        ax.plot(x, y, "-", color="#1f4e79", lw=1.2)
        for xi, yi, h in zip(x, y, holds):
            ax.plot([xi], [yi], "o", ms=7, color="#1f4e79", mfc="#1f4e79" if h else "white")
        ax.axhline(cut, color="#c0392b", lw=0.9, ls="--")
        ax.annotate(f"cut-off {apa.fmt_bounded(cut)}", (x[-1] if len(x) else 0, cut),
                    xytext=(0, 4), textcoords="offset points", ha="right", fontsize=7, color="#c0392b")
        ax.set_xticks(x, [str(m) for m in fit["model"]], fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, ax=ax: _fit_tick(v, ax)))
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(x=0.15)
    fig.text(0.5, -0.02, "Filled: the step holds (its change from the previous step is within the criteria); "
             "hollow: it does not.", ha="center", fontsize=7, color="#555555")
    return _figure_svg(fig)


def power_figure(curve: pd.DataFrame, target: float) -> bytes:
    """Power per hypothesis against N invited (log scale), the analytic curves of the power stage
    (``power_analytic.csv``: n, hypothesis, power), with the target power dashed."""
    fig = _new_figure(6.5, 4)
    ax = fig.add_subplot()
    for h, part in curve.groupby("hypothesis", sort=False):
        ax.plot(part["n"], part["power"], lw=1.4, label=str(h))
    ax.axhline(target, color="#c0392b", lw=0.9, ls="--")
    ax.annotate(f"power {apa.fmt_bounded(target, 2)}", (curve["n"].min(), target), xytext=(2, 4),
                textcoords="offset points", fontsize=7, color="#c0392b")
    ax.set_xscale("log")
    ax.set_xlabel("N invited (log scale)")
    ax.set_ylabel("Power")
    ax.set_ylim(-0.02, 1.02)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, ncol=2)
    return _figure_svg(fig)


def path_figure(params: pd.DataFrame, r2: pd.DataFrame | None) -> bytes:
    """The structural model, laid out and checked by :func:`pipeline.path_diagram.draw_path_diagram`
    (layered layout, no overlapping labels; the control variables' paths in the figure's note)."""
    from pipeline.path_diagram import draw_path_diagram

    return draw_path_diagram(params, r2).svg


DRAW = {"placeholder": placeholder_figure, "scree": scree_figure, "loadings": loadings_figure,
        "invariance_ladder": invariance_figure, "path_diagram": path_figure, "power_curve": power_figure}


def draw(figure: Figure) -> bytes:
    """The SVG of ``figure``, drawn by the function its ``kind`` names, with its ``data`` as arguments."""
    return DRAW[figure.kind](**figure.data)
