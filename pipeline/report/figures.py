"""The report's figures, drawn with matplotlib as deterministic SVG (no date, fixed hash salt).

:func:`draw` takes a :class:`~pipeline.report.model.Figure` as the findings describe it (its
``kind`` and ``data``) and returns the SVG bytes: ``scree`` (observed eigenvalues against the
parallel-analysis curve), ``loadings`` (heat map of the rotated loadings), ``invariance_ladder``
(CFI and RMSEA per step), ``path_diagram`` (the structural model), ``placeholder`` (a note saying
why a figure is missing, written so that DVC's declared plot files always exist).
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from analysis import apa
from pipeline.report.model import Figure, as_bool, num, ok

__all__ = ["draw", "placeholder_figure", "scree_figure", "loadings_figure", "invariance_figure", "path_figure"]


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
        has_r2 = n in r2_of and ok(r2_of[n])
        ax.text(x, y + (0.09 if has_r2 else 0), n, ha="center", va="center", fontsize=8.5, zorder=4)
        if has_r2:
            ax.text(x, y - 0.15, f"R² = {apa.fmt_bounded(r2_of[n])}", ha="center", va="center", fontsize=6,
                    color="#333333", zorder=4)
    for a, b, std, pval, kind in edges:
        (xa, ya), (xb, yb) = xy[a], xy[b]
        span = abs(pos[b][0] - pos[a][0])
        rad = 0.0 if span <= 1 else (0.18 if yb <= ya else -0.18)
        significant = ok(pval) and num(pval) < 0.05
        fixed = not ok(pval)
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
        label = apa.fmt_bounded(std) + apa.stars(pval) if ok(std) else ""
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
        if ok(std):
            lx = (a_pt[0] + b_pt[0]) / 2 + 0.5 * rad * (b_pt[1] - a_pt[1])
            ly = (a_pt[1] + b_pt[1]) / 2 - 0.5 * rad * (b_pt[0] - a_pt[0])
            ax.text(lx + 0.05, ly, apa.fmt_bounded(std) + apa.stars(getattr(r, "pvalue", np.nan)), ha="left",
                    va="center", fontsize=6.5, color="#555555", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.9))
    ax.text(x0 + 0.1, y0 + 0.15, "Standardised coefficients. * p < .05, ** p < .01, *** p < .001; dashed: p ≥ .05.",
            fontsize=6.5, color="#555555", ha="left", va="bottom")
    return _figure_svg(fig)


DRAW = {"placeholder": placeholder_figure, "scree": scree_figure, "loadings": loadings_figure,
        "invariance_ladder": invariance_figure, "path_diagram": path_figure}


def draw(figure: Figure) -> bytes:
    """The SVG of ``figure``, drawn by the function its ``kind`` names, with its ``data`` as arguments."""
    return DRAW[figure.kind](**figure.data)
