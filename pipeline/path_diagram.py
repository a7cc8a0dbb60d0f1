"""Path diagram of a structural model: a layered layout, its legibility checks, and the drawing.

The structural part of a fitted model (lavaan's ``~`` rows, loadings of a higher-order factor on
first-order factors, residual covariances ``~~`` among endogenous variables) is drawn left to
right in causal order, the layout of Sugiyama, Tagawa & Toda (1981) that graphviz's ``dot``
implements (Gansner, Koutsofios, North & Vo, 1993), written here in a few hundred lines of
numpy/SciPy so that CI needs no graphviz binary:

1. **cycles** (a non-recursive model, ``y1 ~ y2`` and ``y2 ~ y1``) are broken by reversing a
   small set of edges (the greedy heuristic of Eades, Lin & Smyth, 1993); a reversed edge is
   laid out forwards and drawn with its arrowhead where it belongs;
2. **layers**: the longest path from a source; a source is then pulled right, next to its
   nearest outcome, and a first-order factor that only indicates a higher-order factor goes one
   column before that factor (its loading arrow points back at it, as SEM diagrams draw it);
3. **dummy nodes** split an edge that spans several layers, one per layer it passes;
4. **order** within layers minimises edge crossings: barycentre sweeps down and up with
   adjacent transpositions, from several seeded starts, keeping the order with the fewest
   crossings (the count is exact for the drawn curves, below);
5. **coordinates**: the vertical position of every node and dummy solves dot's linear
   programme (minimise the weighted vertical run of the edges, long edges weighted most so
   they run straight, subject to the order and the spacing of each column), with
   :func:`scipy.optimize.linprog`;
6. **curves**: between two columns an edge is a cubic Bézier with horizontal tangents at both
   ends; inside a column it runs straight. All edges in one gap share the same horizontal
   parametrisation, so two of them cross exactly when their order swaps across the gap: the
   crossings drawn are the crossings counted in step 4;
7. **labels** (the standardised coefficient, its stars) sit on their own edge, each in the
   first free place among candidates along the curve, never on a node or another label and, if
   any place allows, on no other edge; when a label finds no free place the gaps are widened
   and the layout redone.

:func:`count_crossings`, :func:`edges_through_nodes` and :func:`overlapping_labels` measure the
result on the geometry that is drawn (polylines sampled from the Bézier curves, label and node
boxes in inches, the units of the figure).

References
----------
Eades, P., Lin, X., & Smyth, W. F. (1993). A fast and effective heuristic for the feedback arc
    set problem. *Information Processing Letters, 47*(6), 319-323.
Gansner, E. R., Koutsofios, E., North, S. C., & Vo, K.-P. (1993). A technique for drawing
    directed graphs. *IEEE Transactions on Software Engineering, 19*(3), 214-230.
Sugiyama, K., Tagawa, S., & Toda, M. (1981). Methods for visual understanding of hierarchical
    system structures. *IEEE Transactions on Systems, Man, and Cybernetics, 11*(2), 109-125.

In R the nearest figure is ``semPlot::semPaths(fit, what = "std", layout = "tree2")``.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import apa
from analysis.errors import InputError
from analysis.csvfile import restore_cell

__all__ = [
    "MINUS", "Edge", "DiagramModel", "NodeBox", "EdgeGeometry", "Layout", "structural_model", "edge_label",
    "layout_path_diagram", "crossing_pairs", "count_crossings", "edges_through_nodes", "overlapping_labels", "labels_on_edges",
    "render_path_diagram", "draw_path_diagram",
]

MINUS = "\u2212"  # the minus sign; a hyphen-minus reads as a dash in a figure

# Sizes in points (text) and inches (geometry): the layout's unit is the inch of the figure.
NODE_FONT = 9.0
R2_FONT = 7.0
LABEL_FONT = 7.0
NOTE_FONT = 7.0


# --------------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class Edge:
    """One arrow of the diagram. ``kind``: ``"regression"`` (``target ~ source``), ``"loading"``
    (a higher-order factor ``source =~ target``) or ``"covariance"`` (``source ~~ target``)."""
    source: str
    target: str
    kind: str
    std: float = math.nan
    pvalue: float = math.nan

    @property
    def name(self) -> str:
        op = {"regression": "->", "loading": "=~>", "covariance": "<->"}[self.kind]
        return f"{self.source} {op} {self.target}"


@dataclass(frozen=True)
class DiagramModel:
    """What the diagram shows: nodes in order of appearance, latent ones, edges, R² of the
    endogenous nodes, and how many covariances are left out (exogenous ones, by default)."""
    nodes: tuple[str, ...]
    latents: frozenset
    edges: tuple[Edge, ...]
    r2: dict
    hidden_covariances: int = 0
    hidden_controls: tuple = ()  # Edges from controls left out of the drawing, listed in the note


def _cell(value) -> str:
    """A text cell read back from a CSV written by :func:`analysis.csvfile.write_csv` (which
    puts an apostrophe before ``=~``; :func:`analysis.csvfile.restore_cell` takes it off)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return restore_cell(str(value).strip())


def _float(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def structural_model(paths: pd.DataFrame, r2: pd.DataFrame | None = None,
                     exogenous_covariances: bool = False, controls: str = "note") -> DiagramModel:
    """The structural part of a parameter table, as the diagram draws it.

    Parameters
    ----------
    paths : DataFrame
        A parameter table with lavaan's columns ``lhs, op, rhs`` and, when estimated,
        ``std_all`` and ``pvalue`` (the sem stage's ``sem_parameters.csv``). Rows drawn:
        regressions ``~``; loadings ``=~`` whose indicator is itself a latent (a higher-order
        factor); covariances ``~~`` between two different variables of the diagram.
    r2 : DataFrame, optional
        Columns ``variable, r2`` (``sem_r2.csv``); shown inside the endogenous nodes.
    exogenous_covariances : bool, default False
        Also draw covariances between exogenous variables (many in a model with several
        correlated predictors; left out by default and counted in ``hidden_covariances``).
        Residual covariances among endogenous variables are always drawn.
    controls : {"note", "draw"}
        Observed exogenous covariates of a model with latent constructs (controls): left out
        of the drawing with their coefficients listed in the note ("note", the default, as SEM
        papers draw them), or drawn in grey ("draw"). Three controls that each predict the same
        three outcomes form K(3,3), which no drawing shows without crossings.

    Returns
    -------
    DiagramModel
    """
    missing = [c for c in ("lhs", "op", "rhs") if c not in paths.columns]
    if missing:
        raise InputError(f"path diagram: the parameter table has no column {', '.join(missing)} (columns: "
                         f"{', '.join(map(str, paths.columns))}); give the sem stage's sem_parameters.csv")
    lhs = [_cell(v) for v in paths["lhs"]]
    op = [_cell(v) for v in paths["op"]]
    rhs = [_cell(v) for v in paths["rhs"]]
    std = [_float(v) for v in paths["std_all"]] if "std_all" in paths.columns else [math.nan] * len(paths)
    pv = [_float(v) for v in paths["pvalue"]] if "pvalue" in paths.columns else [math.nan] * len(paths)
    if "group" in paths.columns and paths["group"].nunique() > 1:
        raise InputError("path diagram: the parameter table has several groups (column group); draw one group's rows")
    latents = frozenset(l for l, o in zip(lhs, op) if o == "=~")
    edges: list[Edge] = []
    seen = set()
    for i in range(len(paths)):
        if op[i] == "~" and lhs[i] and rhs[i] and lhs[i] != rhs[i]:
            e = Edge(rhs[i], lhs[i], "regression", std[i], pv[i])
        elif op[i] == "=~" and rhs[i] in latents and lhs[i] != rhs[i]:
            e = Edge(lhs[i], rhs[i], "loading", std[i], pv[i])
        else:
            continue
        if (e.source, e.target, e.kind) not in seen:
            seen.add((e.source, e.target, e.kind))
            edges.append(e)
    if controls not in ("draw", "note"):
        raise ValueError(f"controls must be 'draw' or 'note', got {controls!r}")
    hidden_controls: tuple = ()
    if controls == "note":
        found = _controls(DiagramModel(tuple(dict.fromkeys(n for e in edges for n in (e.source, e.target))),
                                       latents, tuple(edges), {}))
        hidden_controls = tuple(e for e in edges if e.source in found)
        edges = [e for e in edges if e.source not in found]
    nodes = list(dict.fromkeys(n for e in edges for n in (e.source, e.target)))
    endogenous = {e.target for e in edges}
    hidden = 0
    pairs = set()
    for i in range(len(paths)):
        if op[i] != "~~" or lhs[i] == rhs[i] or lhs[i] not in nodes or rhs[i] not in nodes:
            continue
        key = frozenset((lhs[i], rhs[i]))
        if key in pairs:
            continue
        pairs.add(key)
        both_endogenous = lhs[i] in endogenous and rhs[i] in endogenous
        if both_endogenous or (exogenous_covariances and lhs[i] not in endogenous and rhs[i] not in endogenous):
            edges.append(Edge(lhs[i], rhs[i], "covariance", std[i], pv[i]))
        else:
            hidden += 1
    r2_of = {}
    if r2 is not None and {"variable", "r2"} <= set(r2.columns):
        for v, x in zip(r2["variable"], r2["r2"]):
            v = _cell(v)
            if v in endogenous and not math.isnan(_float(x)):
                r2_of[v] = _float(x)
    return DiagramModel(tuple(nodes), latents, tuple(edges), r2_of, hidden, hidden_controls)


def edge_label(std: float, pvalue: float) -> str:
    """A standardised coefficient as the diagram prints it: APA's two decimals without the
    leading zero, the minus sign U+2212, and the stars of its p value (``−.38***``)."""
    if math.isnan(_float(std)):
        return ""
    text = apa.fmt_bounded(std) + apa.stars(pvalue)
    return MINUS + text[1:] if text.startswith("-") else text


# --------------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class NodeBox:
    """A node: centre ``(x, y)``, width and height in inches, shape ``"ellipse"`` (latent) or
    ``"rect"`` (observed), its column, and R² when endogenous."""
    name: str
    x: float
    y: float
    w: float
    h: float
    shape: str
    layer: int
    r2: float = math.nan

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2)


@dataclass(frozen=True)
class EdgeGeometry:
    """An edge as drawn: the Bézier path (``vertices``, matplotlib ``codes``) from its tail to its
    arrowhead, the polyline sampled from it (``points``), its label text and the label's box
    ``(x0, y0, x1, y1)`` in inches (None when there is no label)."""
    edge: Edge
    vertices: np.ndarray
    codes: tuple
    points: np.ndarray
    label: str
    label_box: tuple | None
    reversed: bool = False

    @property
    def name(self) -> str:
        return self.edge.name


@dataclass(frozen=True)
class Layout:
    """Node boxes and edge geometries in inches (y upwards), the extent ``(x0, y0, x1, y1)`` they
    occupy, the legend note, and the model drawn."""
    model: DiagramModel
    nodes: dict
    edges: tuple
    extent: tuple
    note: str
    attempts: int = 1


# --------------------------------------------------------------------------------- text size

@functools.lru_cache(maxsize=4096)
def _text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height (inches) of ``text`` at ``size`` points as matplotlib draws it: the
    largest over the resolutions the figure is drawn at (font hinting makes text up to 9%
    wider at 150 dpi than in the SVG's outlines)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    w = h = 0.0
    for dpi in (96, 100, 150, 600):
        tw, th, _ = RendererAgg(8, 8, dpi).get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
        w, h = max(w, tw / dpi), max(h, th / dpi)
    return w, h


_LABEL_PAD = 0.025  # inches around a label's text (its white box)
STRICT_ATTEMPTS = 0  # layout attempts in which a label may not lie on another edge (0: it may, at a cost)


def _label_size(text: str) -> tuple[float, float]:
    w, h = _text_size(text, LABEL_FONT)
    _, h_ref = _text_size("−.00***", LABEL_FONT)
    return w + 2 * _LABEL_PAD, max(h, h_ref) + 2 * _LABEL_PAD


def _node_size(name: str, latent: bool, has_r2: bool) -> tuple[float, float]:
    w, _ = _text_size(name, NODE_FONT)
    if has_r2:
        w = max(w, _text_size("R² = .00", R2_FONT)[0])
    if latent:
        return max(0.72, w * 1.3 + 0.14), (0.56 if has_r2 else 0.42)
    return max(0.6, w + 0.2), (0.46 if has_r2 else 0.34)


# --------------------------------------------------------------------------------- layering

def _break_cycles(nodes: list[str], arcs: list[tuple[str, str]]) -> set[int]:
    """Indices of ``arcs`` to reverse so that the graph has no cycle (Eades, Lin & Smyth, 1993):
    repeatedly take sinks to the right and sources to the left, else the node with the largest
    out-degree minus in-degree to the left; an arc going right-to-left in that order is reversed."""
    out = {n: set() for n in nodes}
    inn = {n: set() for n in nodes}
    for i, (a, b) in enumerate(arcs):
        out[a].add(i)
        inn[b].add(i)
    alive = set(nodes)
    left: list[str] = []
    right: list[str] = []

    def live(ids, end):
        return [i for i in ids if arcs[i][end] in alive]

    while alive:
        changed = True
        while changed:
            changed = False
            for n in [n for n in nodes if n in alive]:
                if not live(out[n], 1):
                    right.append(n)
                    alive.discard(n)
                    changed = True
                elif not live(inn[n], 0):
                    left.append(n)
                    alive.discard(n)
                    changed = True
        if alive:
            best = max((n for n in nodes if n in alive), key=lambda n: len(live(out[n], 1)) - len(live(inn[n], 0)))
            left.append(best)
            alive.discard(best)
    rank = {n: i for i, n in enumerate(left + right[::-1])}
    return {i for i, (a, b) in enumerate(arcs) if rank[a] > rank[b]}


def _layers(nodes: list[str], arcs: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the sources (arcs acyclic), then each source pulled right to the column
    before its nearest child."""
    parents = {n: [] for n in nodes}
    children = {n: [] for n in nodes}
    for a, b in arcs:
        parents[b].append(a)
        children[a].append(b)
    layer: dict[str, int] = {}
    remaining = {n: len(parents[n]) for n in nodes}
    queue = [n for n in nodes if remaining[n] == 0]
    for n in queue:  # Kahn's order; grows while iterating
        layer[n] = max((layer[p] + 1 for p in parents[n]), default=0)
        for c in children[n]:
            remaining[c] -= 1
            if remaining[c] == 0:
                queue.append(c)
    for n in reversed(queue):  # sources (and chains ending in them) move right when they can
        if children[n] and not parents[n]:
            layer[n] = min(layer[c] for c in children[n]) - 1
    low = min(layer.values())
    return {n: layer[n] - low for n in nodes}


# --------------------------------------------------------------------------------- ordering

def _bilayer_crossings(upper: list, lower_pos: dict, down: dict) -> float:
    """Crossings between one layer and the next: pairs of edges whose order swaps, each pair
    weighted by the product of the two edges' weights (``down[u]`` holds ``(v, weight)``)."""
    ends = []
    for i, u in enumerate(upper):
        for v, w in down.get(u, ()):
            ends.append((i, lower_pos[v], w))
    ends.sort()
    count = 0.0
    for i in range(len(ends)):
        hi, li, wi = ends[i]
        for j in range(i + 1, len(ends)):
            if hi != ends[j][0] and li > ends[j][1]:
                count += wi * ends[j][2]
    return count


def _total_crossings(order: list[list], down: dict) -> int:
    total = 0
    for k in range(len(order) - 1):
        pos = {v: i for i, v in enumerate(order[k + 1])}
        total += _bilayer_crossings(order[k], pos, down)
    return total


def _order(order: list[list], down: dict, up: dict, sweeps: int = 12) -> list[list]:
    """Barycentre sweeps with adjacent transpositions, keeping the best order seen."""
    order = [list(col) for col in order]
    best = [list(col) for col in order]
    best_count = _total_crossings(order, down)

    def sort_by(col, ref, nbrs):
        pos = {v: i for i, v in enumerate(ref)}
        keys = {}
        for i, v in enumerate(col):
            ps = [pos[u] for u, _ in nbrs.get(v, ()) if u in pos]
            keys[v] = (float(np.mean(ps)) if ps else float(i), i)
        col.sort(key=keys.__getitem__)

    def transpose():
        improved = True
        rounds = 0
        while improved and rounds < 20:
            improved = False
            rounds += 1
            for k in range(len(order)):
                col = order[k]
                for i in range(len(col) - 1):
                    before = _local(order, k, down)
                    col[i], col[i + 1] = col[i + 1], col[i]
                    after = _local(order, k, down)
                    if after < before:
                        improved = True
                    else:
                        col[i], col[i + 1] = col[i + 1], col[i]

    for sweep in range(sweeps):
        if sweep % 2 == 0:
            for k in range(1, len(order)):
                sort_by(order[k], order[k - 1], up)
        else:
            for k in range(len(order) - 2, -1, -1):
                sort_by(order[k], order[k + 1], down)
        transpose()
        count = _total_crossings(order, down)
        if count < best_count:
            best, best_count = [list(col) for col in order], count
        if best_count == 0:
            break
    return best


def _local(order, k, down) -> int:
    """Crossings on both sides of layer ``k``."""
    total = 0
    if k > 0:
        total += _bilayer_crossings(order[k - 1], {v: i for i, v in enumerate(order[k])}, down)
    if k + 1 < len(order):
        total += _bilayer_crossings(order[k], {v: i for i, v in enumerate(order[k + 1])}, down)
    return total


# --------------------------------------------------------------------------------- curves

def _bezier(p0, p1, p2, p3, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3


def _port_x(node: NodeBox, dy: float, side: int) -> float:
    """x of the point of ``node``'s boundary at height ``node.y + dy`` on ``side`` (+1 right)."""
    if node.shape == "ellipse":
        b = node.h / 2
        frac = min(abs(dy) / b, 0.97)
        return node.x + side * (node.w / 2) * math.sqrt(1 - frac ** 2)
    return node.x + side * node.w / 2


def _ports(node: NodeBox, n: int, side: int) -> list[tuple[float, float]]:
    """``n`` points where edges meet ``node`` on ``side`` (+1 right, -1 left), top first: spread
    over the ellipse's arc within 65 degrees of the horizontal, or along a rectangle's side."""
    if n <= 0:
        return []
    if node.shape == "ellipse":
        span = min(math.radians(130), math.radians(15) * (n - 1))
        angles = [span / 2 - i * span / (n - 1) for i in range(n)] if n > 1 else [0.0]
        return [(node.x + side * node.w / 2 * math.cos(t), node.y + node.h / 2 * math.sin(t)) for t in angles]
    span = min(0.7 * node.h, 0.07 * (n - 1))
    offs = [span / 2 - i * span / (n - 1) for i in range(n)] if n > 1 else [0.0]
    return [(node.x + side * node.w / 2, node.y + dy) for dy in offs]


# --------------------------------------------------------------------------------- the layout

@dataclass
class _Chain:
    edge: Edge
    items: list  # node, dummy ids..., node in layering direction
    reversed: bool


def layout_path_diagram(model: DiagramModel | pd.DataFrame, r2: pd.DataFrame | None = None, *,
                        seed: int = 20261202, max_attempts: int = 10) -> Layout:
    """Place the nodes, route the edges and place their labels.

    Parameters
    ----------
    model : DiagramModel or DataFrame
        A :class:`DiagramModel` or a parameter table (then read with :func:`structural_model`).
    r2 : DataFrame, optional
        ``variable, r2`` when ``model`` is a parameter table.
    seed : int
        Seed of the random starts of the crossing minimisation (the layout is deterministic).
    max_attempts : int
        Times the gaps are widened when a label finds no free place.

    Returns
    -------
    Layout
    """
    if not isinstance(model, DiagramModel):
        model = structural_model(model, r2)
    nodes = list(model.nodes)
    if not nodes:
        return Layout(model, {}, (), (0.0, 0.0, 0.0, 0.0), _note(model), 0)
    directed = [e for e in model.edges if e.kind != "covariance"]
    # a first-order factor that only indicates a higher-order one sits before it
    degree = {n: 0 for n in nodes}
    for e in directed:
        degree[e.source] += 1
        degree[e.target] += 1
    outside = {e.target for e in directed if e.kind == "loading" and degree[e.target] == 1}
    arcs = [(e.target, e.source) if e.target in outside and e.kind == "loading" else (e.source, e.target)
            for e in directed]
    flipped = {i for i, e in enumerate(directed) if arcs[i] != (e.source, e.target)}
    cyclic = _break_cycles(nodes, arcs)
    arcs = [(b, a) if i in cyclic else (a, b) for i, (a, b) in enumerate(arcs)]
    flipped ^= cyclic
    layer = _layers(nodes, arcs)
    n_layers = max(layer.values()) + 1
    controls = _controls(model)

    # dummy nodes
    chains: list[_Chain] = []
    down: dict = {}
    up: dict = {}
    members: list[list] = [[] for _ in range(n_layers)]
    for n in nodes:
        members[layer[n]].append(n)
    for i, (e, (a, b)) in enumerate(zip(directed, arcs)):
        items = [a]
        for k in range(layer[a] + 1, layer[b]):
            d = ("dummy", i, k)
            members[k].append(d)
            items.append(d)
        items.append(b)
        w = 1.0 if (e.source in controls or e.target in controls) else 4.0
        for u, v in zip(items, items[1:]):
            down.setdefault(u, []).append((v, w))
            up.setdefault(v, []).append((u, w))
        chains.append(_Chain(e, items, i in flipped))

    # order: several seeded starts, the fewest crossings wins (ties: the first)
    rng = np.random.default_rng(seed)
    best, best_count = None, None
    for start in range(8):
        init = [list(col) for col in members]
        if start:
            for col in init:
                rng.shuffle(col)
        result = _order(init, down, up)
        count = _total_crossings(result, down)
        if best_count is None or count < best_count:
            best, best_count = result, count
        if best_count == 0:
            break
    order = _adjacent_covariances(best, model, down)

    sizes = {n: _node_size(n, n in model.latents, n in model.r2) for n in nodes}
    in_count = {n: 0 for n in nodes}
    out_count = {n: 0 for n in nodes}
    for ch in chains:
        out_count[ch.items[0]] += 1
        in_count[ch.items[-1]] += 1
    for n, (w, h) in list(sizes.items()):  # room for the ports of a node with many edges on one side
        most = max(in_count[n], out_count[n])
        sizes[n] = (w, max(h, 0.05 * most) if n in model.latents else max(h, 0.07 * (most - 1) / 0.7))
    labels = {e: edge_label(e.std, e.pvalue) for e in model.edges}
    label_w = max([_label_size(t)[0] for t in labels.values() if t] or [0.3])
    gaps = [max(0.6, 1.4 * label_w) for _ in range(max(n_layers - 1, 0))]
    sep = 0.16
    cov = [e for e in model.edges if e.kind == "covariance"]
    for attempt in range(1, max_attempts + 1):
        layout = _place(model, order, layer, chains, sizes, gaps, sep, labels, cov, attempt)
        if isinstance(layout, Layout):
            return layout
        # a label found no place: widen the gaps its edge runs through, and the columns a little
        gaps = [g * 1.3 if k in layout else g for k, g in enumerate(gaps)]
        sep += 0.03
    return _place(model, order, layer, chains, sizes, gaps, sep, labels, cov, max_attempts, force=True)


def _controls(model: DiagramModel) -> frozenset:
    """Observed exogenous variables of a model with latent constructs (covariates, controls):
    drawn in grey, and their crossings weigh less when the order is chosen."""
    if not model.latents:
        return frozenset()
    endogenous = {e.target for e in model.edges if e.kind != "covariance"}
    return frozenset(n for n in model.nodes if n not in model.latents and n not in endogenous)


def _adjacent_covariances(order: list[list], model: DiagramModel, down: dict) -> list[list]:
    """Move the two ends of a residual covariance next to each other in their column when that
    adds no crossing (their arc then passes no other node)."""
    order = [list(col) for col in order]
    base = _total_crossings(order, down)
    for e in model.edges:
        if e.kind != "covariance":
            continue
        for k, col in enumerate(order):
            if e.source in col and e.target in col:
                i, j = sorted((col.index(e.source), col.index(e.target)))
                if j - i <= 1:
                    continue
                for trial in (i + 1, j - 1):
                    mover = col[j] if trial == i + 1 else col[i]
                    new = [v for v in col if v != mover]
                    new.insert(new.index(col[i]) + 1 if trial == i + 1 else new.index(col[j]), mover)
                    candidate = order[:k] + [new] + order[k + 1:]
                    if _total_crossings(candidate, down) <= base:
                        order = candidate
                        break
    return order


def _solve_y(order: list[list], chains: list[_Chain], height: dict, sep: float) -> dict:
    """dot's coordinate programme: minimise sum w |y_u - y_v| over edge segments (w = 1 between
    two nodes, 2 with one dummy, 8 between dummies) subject to each column's order and spacing."""
    from scipy.optimize import linprog

    items = [v for col in order for v in col]
    index = {v: i for i, v in enumerate(items)}
    segs = []
    for ch in chains:
        for u, v in zip(ch.items, ch.items[1:]):
            w = 8.0 if isinstance(u, tuple) and isinstance(v, tuple) else 2.0 if isinstance(u, tuple) or isinstance(v, tuple) else 1.0
            segs.append((index[u], index[v], w))
    n, m = len(items), len(segs)
    rows, rhs = [], []
    for col in order:
        for a, b in zip(col, col[1:]):  # y grows downwards here: y_b >= y_a + gap
            gap = height[a] / 2 + height[b] / 2 + (sep if not (isinstance(a, tuple) or isinstance(b, tuple)) else sep * 0.7)
            r = np.zeros(n + m)
            r[index[a]], r[index[b]] = 1.0, -1.0
            rows.append(r)
            rhs.append(-gap)
    for j, (u, v, _) in enumerate(segs):
        for s in (1.0, -1.0):
            r = np.zeros(n + m)
            r[u], r[v], r[n + j] = s, -s, -1.0
            rows.append(r)
            rhs.append(0.0)
    c = np.concatenate([np.full(n, 1e-4), [w for *_, w in segs]])
    res = linprog(c, A_ub=np.array(rows) if rows else None, b_ub=np.array(rhs) if rhs else None,
                  bounds=[(0, None)] * (n + m), method="highs")
    if res.status != 0:  # cannot happen for this programme (always feasible, bounded); stay legible
        y, out = 0.0, {}
        for col in order:
            y = 0.0
            for v in col:
                out[v] = y
                y += height[v] + sep
        return out
    return {v: float(res.x[index[v]]) for v in items}




def _place(model, order, layer, chains, sizes, gaps, sep, labels, cov, attempt, force=False):
    n_layers = len(order)
    height = {}
    for col in order:
        for v in col:
            height[v] = sizes[v][1] if not isinstance(v, tuple) else 0.16
    ydown = _solve_y(order, chains, height, sep)
    widths = [max([sizes[v][0] for v in col if not isinstance(v, tuple)] or [0.3]) for col in order]
    # a gap is at least a third as wide as the steepest edge in it falls, so no curve is a cliff
    gaps = list(gaps)
    for ch in chains:
        for u, v in zip(ch.items, ch.items[1:]):
            k = layer[u] if not isinstance(u, tuple) else u[2]
            gaps[k] = max(gaps[k], min(2.0, abs(ydown[u] - ydown[v]) / 3.0))
    xs = [0.0]
    for k in range(1, n_layers):
        xs.append(xs[-1] + widths[k - 1] / 2 + gaps[k - 1] + widths[k] / 2)
    boxes = {}
    for col in order:
        for v in col:
            if not isinstance(v, tuple):
                w, h = sizes[v]
                boxes[v] = NodeBox(v, xs[layer[v]], -ydown[v], w, h, "ellipse" if v in model.latents else "rect",
                                   layer[v], model.r2.get(v, math.nan))
    pos_in = {v: i for col in order for i, v in enumerate(col)}

    # ports: outgoing on the right, incoming on the left, ordered by the other end's position
    out_edges: dict = {}
    in_edges: dict = {}
    for ci, ch in enumerate(chains):
        out_edges.setdefault(ch.items[0], []).append((pos_in[ch.items[1]], ci))
        in_edges.setdefault(ch.items[-1], []).append((pos_in[ch.items[-2]], ci))
    port = {}
    for table, side in ((out_edges, 1), (in_edges, -1)):
        for v, lst in table.items():
            lst.sort()
            for (_, ci), pt in zip(lst, _ports(boxes[v], len(lst), side)):
                port[(ci, side)] = pt

    geoms = []
    for ci, ch in enumerate(chains):
        pts = [port[(ci, 1)]]  # (x, y) waypoints: exit, entry, exit, ..., entry
        for d in ch.items[1:-1]:
            k = d[2]
            y = -ydown[d]
            pts += [(xs[k] - widths[k] / 2, y), (xs[k] + widths[k] / 2, y)]
        pts.append(port[(ci, -1)])
        verts, codes, sample = [pts[0]], [1], [np.array([pts[0]])]
        for j in range(0, len(pts) - 1, 2):
            p0, p3 = np.array(pts[j]), np.array(pts[j + 1])
            c = (p3[0] - p0[0]) * 0.5
            p1, p2 = p0 + (c, 0.0), p3 - (c, 0.0)
            verts += [tuple(p1), tuple(p2), tuple(p3)]
            codes += [4, 4, 4]
            sample.append(_bezier(p0, p1, p2, p3, 60)[1:])
            if j + 2 < len(pts):
                verts.append(pts[j + 2])
                codes.append(2)
                sample.append(np.array([pts[j + 2]]))
        vertices = np.array(verts, dtype=float)
        points = np.vstack(sample)
        if ch.reversed:
            vertices, points = vertices[::-1], points[::-1]
            codes = [1] + codes[:0:-1]  # the same segments walked backwards
        geoms.append(EdgeGeometry(ch.edge, vertices, tuple(codes), points, labels.get(ch.edge, ""), None, ch.reversed))

    for e in cov:
        geoms.append(_covariance_geometry(e, boxes, xs, widths, labels.get(e, ""), geoms))

    # labels: most constrained first
    node_boxes = [b.box for b in boxes.values()]
    placed: list = []
    result = list(geoms)
    cands = {}
    for gi, g in enumerate(geoms):
        if g.label:
            cands[gi] = _candidates(g, node_boxes)
    gbox = np.array([(g.points[:, 0].min(), g.points[:, 1].min(), g.points[:, 0].max(), g.points[:, 1].max())
                     for g in geoms])
    for gi in sorted(cands, key=lambda i: (len(cands[i]), i)):
        g = geoms[gi]
        best, best_cost = None, None
        for cost0, box in cands[gi]:
            if any(_overlap(box, other, 0.015) for other in placed):
                continue
            wide = (box[0] - 0.06, box[1] - 0.06, box[2] + 0.06, box[3] + 0.06)
            close = [hj for hj in np.nonzero((gbox[:, 0] < wide[2]) & (gbox[:, 2] > wide[0]) & (gbox[:, 1] < wide[3])
                                             & (gbox[:, 3] > wide[1]))[0] if hj != gi]
            covered = sum(1 for hj in close if _polyline_hits_box(geoms[hj].points, box))
            near = sum(1 for hj in close if _polyline_hits_box(geoms[hj].points, wide))
            cost = cost0 + 10.0 * covered + 3.0 * near
            if covered and attempt <= STRICT_ATTEMPTS and not force:
                continue  # first widen the gaps rather than put a label on another edge
            if best_cost is None or cost < best_cost:
                best, best_cost = box, cost
        if best is None:
            if not force:
                lo, hi = g.points[:, 0].min(), g.points[:, 0].max()
                return {k for k in range(n_layers - 1)
                        if xs[k] + widths[k] / 2 < hi and xs[k + 1] - widths[k + 1] / 2 > lo} or set(range(n_layers - 1))
            best = cands[gi][0][1] if cands[gi] else _fallback_box(g)
        placed.append(best)
        result[gi] = replace(g, label_box=best)

    allpts = [b for b in node_boxes] + [g.label_box for g in result if g.label_box] + \
             [(g.points[:, 0].min(), g.points[:, 1].min(), g.points[:, 0].max(), g.points[:, 1].max()) for g in result]
    extent = (min(b[0] for b in allpts), min(b[1] for b in allpts), max(b[2] for b in allpts), max(b[3] for b in allpts))
    return Layout(model, boxes, tuple(result), extent, _note(model), attempt)


def _covariance_geometry(e: Edge, boxes, xs, widths, label, drawn) -> EdgeGeometry:
    """A two-headed arc: beside the column (right or left) when both ends share a column, else
    over or under the nodes between them; of the candidates, the one through the fewest nodes,
    then crossing the fewest ``drawn`` edges, then the shortest."""
    a, b = boxes[e.source], boxes[e.target]
    candidates = []
    if a.layer == b.layer:
        k = a.layer
        if a.y < b.y:
            a, b = b, a
        dy = a.y - b.y
        offs = min(0.25 * a.h, 0.12)
        for side in (1, -1):
            pa = np.array([_port_x(a, -offs, side), a.y - offs])
            pb = np.array([_port_x(b, offs, side), b.y + offs])
            reach = xs[k] + side * widths[k] / 2 + side * (0.25 + 0.18 * dy)
            candidates.append((pa, np.array([reach, pa[1]]), np.array([reach, pb[1]]), pb))
    else:
        if a.x > b.x:
            a, b = b, a
        between = [n for n in boxes.values() if a.x - a.w / 2 <= n.x <= b.x + b.w / 2]
        for side in (-1, 1):  # under, over
            pa = np.array([a.x, a.y + side * a.h / 2])
            pb = np.array([b.x, b.y + side * b.h / 2])
            if side < 0:
                level = min(n.y - n.h / 2 for n in between) - 0.3
            else:
                level = max(n.y + n.h / 2 for n in between) + 0.3
            level = level + side * 0.05 * abs(b.x - a.x)
            candidates.append((pa, np.array([pa[0], level]), np.array([pb[0], level]), pb))
    inner = [(n.box[0] + 0.02, n.box[1] + 0.02, n.box[2] - 0.02, n.box[3] - 0.02)
             for n in boxes.values() if n.name not in (e.source, e.target)]
    best, best_key = None, None
    for pa, p1, p2, pb in candidates:
        pts = _bezier(pa, p1, p2, pb, 80)
        through = sum(_polyline_hits_box(pts, box) for box in inner)
        crossings = sum(len(_segment_intersections(pts, g.points)) for g in drawn)
        key = (through, crossings, float(np.hypot(*np.diff(pts, axis=0).T).sum()))
        if best_key is None or key < best_key:
            best, best_key = (pa, p1, p2, pb, pts), key
    pa, p1, p2, pb, pts = best
    return EdgeGeometry(e, np.array([pa, p1, p2, pb]), (1, 4, 4, 4), pts, label, None, False)


def _candidates(g: EdgeGeometry, node_boxes) -> list:
    """(cost, box) places for ``g``'s label centred on its curve, off every node, best first."""
    w, h = _label_size(g.label)
    pts = g.points
    seg = np.hypot(*np.diff(pts, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(seg)])
    total = along[-1] if along[-1] > 0 else 1.0
    want = 0.5 if g.edge.kind == "covariance" else 0.42
    out = []
    for i in range(0, len(pts), 2):
        frac = along[i] / total
        if along[i] < 0.12 or total - along[i] < 0.22:  # clear of the tail and the arrowhead
            continue
        x, y = pts[i]
        box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        if any(_overlap(box, nb, 0.02) for nb in node_boxes):
            continue
        out.append((abs(frac - want), box))
    out.sort(key=lambda t: t[0])
    return out


def _fallback_box(g: EdgeGeometry):
    w, h = _label_size(g.label)
    x, y = g.points[len(g.points) // 2]
    return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


def _overlap(a, b, margin: float = 0.0) -> bool:
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def _polyline_hits_box(points: np.ndarray, box) -> bool:
    """Whether the polyline passes through ``box`` (a sampled point inside it; samples are
    denser than a label is tall)."""
    x, y = points[:, 0], points[:, 1]
    return bool(np.any((x > box[0]) & (x < box[2]) & (y > box[1]) & (y < box[3])))


def _note(model: DiagramModel) -> str:
    dashed = any(not math.isnan(e.pvalue) and e.pvalue >= 0.05 for e in model.edges)
    parts = ["Standardised coefficients (std.all); * p < .05, ** p < .01, *** p < .001" + ("; dashed: p ≥ .05." if dashed
                                                                                        else ".")]
    if any(e.kind == "covariance" for e in model.edges):
        parts.append("Two-headed arrows: residual covariances (as correlations).")
    controls = _controls(model)
    if controls:
        parts.append("Grey: observed covariates (controls).")
    if model.hidden_controls:
        by: dict = {}
        for e in model.hidden_controls:
            by.setdefault(e.source, []).append(f"{e.target} {edge_label(e.std, e.pvalue)}".strip())
        parts.append("Controls, not drawn: " + "; ".join(f"{c} → {', '.join(t)}" for c, t in by.items()) + ".")
    if model.hidden_covariances:
        n = model.hidden_covariances
        parts.append(f"{n} covariance{'s' if n != 1 else ''} among exogenous variables not drawn.")
    return " ".join(parts)


# --------------------------------------------------------------------------------- checks

def _segment_intersections(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Points where polyline ``p`` crosses polyline ``q`` (half-open segments, so a crossing at a
    shared vertex counts once)."""
    a0, a1 = p[:-1], p[1:]
    b0, b1 = q[:-1], q[1:]
    # bounding-box prefilter
    ax0, ax1 = np.minimum(a0[:, 0], a1[:, 0]), np.maximum(a0[:, 0], a1[:, 0])
    ay0, ay1 = np.minimum(a0[:, 1], a1[:, 1]), np.maximum(a0[:, 1], a1[:, 1])
    bx0, bx1 = np.minimum(b0[:, 0], b1[:, 0]), np.maximum(b0[:, 0], b1[:, 0])
    by0, by1 = np.minimum(b0[:, 1], b1[:, 1]), np.maximum(b0[:, 1], b1[:, 1])
    near = ((ax0[:, None] <= bx1[None]) & (bx0[None] <= ax1[:, None]) & (ay0[:, None] <= by1[None])
            & (by0[None] <= ay1[:, None]))
    ii, jj = np.nonzero(near)
    if not len(ii):
        return np.empty((0, 2))
    r = a1[ii] - a0[ii]
    s = b1[jj] - b0[jj]
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    diff = b0[jj] - a0[ii]
    ok = np.abs(denom) > 1e-12
    t = np.where(ok, (diff[:, 0] * s[:, 1] - diff[:, 1] * s[:, 0]) / np.where(ok, denom, 1), -1)
    u = np.where(ok, (diff[:, 0] * r[:, 1] - diff[:, 1] * r[:, 0]) / np.where(ok, denom, 1), -1)
    hit = ok & (t >= 0) & (t < 1) & (u >= 0) & (u < 1)
    return a0[ii[hit]] + t[hit, None] * r[hit]


def crossing_pairs(layout: Layout) -> list[tuple[str, str]]:
    """``(edge, edge)`` for every point where two drawn edges cross (covariance arcs included),
    once per crossing point. Two edges of the same node that meet only at that node (within
    0.05 in of its box) do not cross."""
    geoms = layout.edges
    out = []
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            gi, gj = geoms[i], geoms[j]
            pts = _segment_intersections(gi.points, gj.points)
            if not len(pts):
                continue
            shared = {gi.edge.source, gi.edge.target} & {gj.edge.source, gj.edge.target}
            for x, y in pts:
                if any(_overlap((x, y, x, y), layout.nodes[n].box, 0.05) for n in shared):
                    continue
                out.append((gi.name, gj.name))
    return out


def count_crossings(layout: Layout) -> int:
    """Number of points where two drawn edges cross (:func:`crossing_pairs`)."""
    return len(crossing_pairs(layout))


def edges_through_nodes(layout: Layout) -> list[tuple[str, str]]:
    """``(edge, node)`` for every edge drawn through a node it does not connect."""
    out = []
    for g in layout.edges:
        for name, node in layout.nodes.items():
            if name in (g.edge.source, g.edge.target):
                continue
            x0, y0, x1, y1 = node.box
            inner = (x0 + 0.02, y0 + 0.02, x1 - 0.02, y1 - 0.02)
            if _polyline_hits_box(g.points, inner):
                out.append((g.name, name))
    return out


def overlapping_labels(layout: Layout) -> list[tuple[str, str]]:
    """Pairs ``(label, other)`` where an edge label's box overlaps another label's box or a node's
    box (``other`` is the other edge's name or the node's name); empty when every label is clear."""
    out = []
    labelled = [g for g in layout.edges if g.label_box is not None]
    for i, g in enumerate(labelled):
        for h in labelled[i + 1:]:
            if _overlap(g.label_box, h.label_box):
                out.append((g.name, h.name))
        for name, node in layout.nodes.items():
            if _overlap(g.label_box, node.box):
                out.append((g.name, name))
    return out


def labels_on_edges(layout: Layout) -> list[tuple[str, str]]:
    """Pairs ``(label, edge)`` where a label's box lies on another edge's curve (legible, since
    the label's white box hides the line under it, but a reader may attribute it wrongly)."""
    out = []
    for g in layout.edges:
        if g.label_box is None:
            continue
        for h in layout.edges:
            if h is not g and _polyline_hits_box(h.points, g.label_box):
                out.append((g.name, h.name))
    return out


# --------------------------------------------------------------------------------- drawing

_MARGIN = 0.25


def render_path_diagram(layout: Layout, dpi: int = 100):
    """Draw ``layout`` on a new matplotlib figure, one data unit an inch.

    Returns
    -------
    (Figure, dict)
        The figure and its artists: ``"labels"`` (edge label Text objects, in ``layout.edges``
        order of the labelled edges), ``"nodes"`` (node patches), ``"names"`` (node texts).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse, FancyArrowPatch, Rectangle
    from matplotlib.path import Path as MplPath

    artists = {"labels": [], "nodes": [], "names": []}
    if not layout.nodes:
        fig = Figure(figsize=(6, 1.2), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "The model has no structural paths (no ~ rows in the parameter table).",
                ha="center", va="center", fontsize=9, color="#555555")
        return fig, artists
    x0, y0, x1, y1 = layout.extent
    width = x1 - x0 + 2 * _MARGIN
    note_lines = _wrap(layout.note, width - 2 * _MARGIN)
    note_h = len(note_lines) * _text_size("Ag", NOTE_FONT)[1] * 1.35 + 0.1
    height = y1 - y0 + 2 * _MARGIN + note_h
    fig = Figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0 - _MARGIN, x1 + _MARGIN)
    ax.set_ylim(y0 - _MARGIN - note_h, y1 + _MARGIN)
    ax.axis("off")
    controls = _controls(layout.model)
    for node in layout.nodes.values():
        if node.shape == "ellipse":
            patch = Ellipse((node.x, node.y), node.w, node.h, fc="#eef3f8", ec="#1f4e79", lw=1.1, zorder=3)
        else:
            patch = Rectangle((node.x - node.w / 2, node.y - node.h / 2), node.w, node.h, fc="#f7f7f7",
                              ec="#8c8c8c" if node.name in controls else "#444444", lw=1.0, zorder=3)
        ax.add_patch(patch)
        artists["nodes"].append(patch)
        has_r2 = not math.isnan(node.r2)
        artists["names"].append(ax.text(node.x, node.y + (0.08 if has_r2 else 0.0), node.name, ha="center",
                                        va="center", fontsize=NODE_FONT, zorder=4))
        if has_r2:
            ax.text(node.x, node.y - 0.11, f"R² = {apa.fmt_bounded(node.r2)}", ha="center", va="center",
                    fontsize=R2_FONT, color="#333333", zorder=4)
    for g in layout.edges:
        e = g.edge
        significant = not math.isnan(e.pvalue) and e.pvalue < 0.05
        fixed = math.isnan(e.pvalue)
        style = "-" if (significant or fixed) else (0, (4, 2.5))
        color = {"regression": "#222222", "loading": "#1f4e79", "covariance": "#7a7a7a"}[e.kind]
        if e.source in controls:
            color = "#8c8c8c"
        arrowstyle = "<|-|>" if e.kind == "covariance" else "-|>"
        path = MplPath(g.vertices, list(g.codes))
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle=arrowstyle, mutation_scale=8, lw=0.9, color=color,
                                     linestyle=style, zorder=2))
        if g.label_box is not None:
            bx0, by0, bx1, by1 = g.label_box
            text = ax.text((bx0 + bx1) / 2, (by0 + by1) / 2, g.label, ha="center", va="center",
                           fontsize=LABEL_FONT, color="#555555" if e.kind == "covariance" or e.source in controls
                           else "#111111", zorder=5,
                           bbox=dict(boxstyle=f"square,pad={_LABEL_PAD * 72 / LABEL_FONT:.3f}", fc="white",
                                     ec="none"))
            artists["labels"].append(text)
    line_h = _text_size("Ag", NOTE_FONT)[1] * 1.35
    for i, line in enumerate(note_lines):
        ax.text(x0, y0 - _MARGIN - 0.05 - i * line_h, line, ha="left", va="top", fontsize=NOTE_FONT,
                color="#555555")
    return fig, artists


def _wrap(text: str, width: float) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        trial = f"{line} {w}".strip()
        if line and _text_size(trial, NOTE_FONT)[0] > max(width, 3.0):
            lines.append(line)
            line = w
        else:
            line = trial
    return lines + ([line] if line else [])


@dataclass(frozen=True)
class PathDiagram:
    """The drawn diagram: its SVG (bytes, deterministic), PNG (bytes, or None), the layout, and
    the measured crossings, edges through nodes and overlapping labels."""
    svg: bytes
    png: bytes | None
    layout: Layout
    crossings: int
    through_nodes: tuple = field(default=())
    overlaps: tuple = field(default=())


def draw_path_diagram(paths_df: pd.DataFrame, r2: pd.DataFrame | None = None, out_svg=None, out_png=None, *,
                      exogenous_covariances: bool = False, controls: str = "note", png_dpi: int = 150) -> PathDiagram:
    """Draw the structural model of a parameter table.

    Parameters
    ----------
    paths_df : DataFrame
        The sem stage's ``sem_parameters.csv`` (columns ``lhs, op, rhs, std_all, pvalue``).
    r2 : DataFrame, optional
        The sem stage's ``sem_r2.csv`` (``variable, r2``).
    out_svg, out_png : path, optional
        Where to write the SVG and the PNG (each only when given).
    exogenous_covariances : bool, default False
        Draw covariances among exogenous variables too (see :func:`structural_model`).
    controls : {"note", "draw"}
        List the observed covariates' paths in the note (default), or draw them in grey.
    png_dpi : int
        Resolution of the PNG.

    Returns
    -------
    PathDiagram
        ``.svg`` is the figure as the report embeds it (text as paths, with each string kept in
        an SVG comment; fixed hash salt and no date, so the bytes are reproducible).
    """
    import matplotlib

    layout = layout_path_diagram(structural_model(paths_df, r2, exogenous_covariances, controls))
    fig, _ = render_path_diagram(layout)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "gapscale", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "gapscale path diagram (matplotlib)"})
    svg = buf.getvalue()
    png = None
    if out_png is not None:
        pbuf = io.BytesIO()
        fig.savefig(pbuf, format="png", dpi=png_dpi, metadata={"Software": "gapscale path diagram (matplotlib)"})
        png = pbuf.getvalue()
        Path(out_png).write_bytes(png)
    if out_svg is not None:
        Path(out_svg).write_bytes(svg)
    return PathDiagram(svg, png, layout, count_crossings(layout), tuple(edges_through_nodes(layout)),
                       tuple(overlapping_labels(layout)))


def main(argv=None) -> int:
    """``python -m pipeline.path_diagram PARAMS.csv [R2.csv] [--svg F] [--png F]``: draw and print
    the legibility checks."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("params")
    ap.add_argument("r2", nargs="?")
    ap.add_argument("--svg")
    ap.add_argument("--png")
    ap.add_argument("--verbose", action="store_true", help="list the crossings and labels on other edges")
    ap.add_argument("--controls", choices=("note", "draw"), default="note")
    args = ap.parse_args(argv)
    params = pd.read_csv(args.params)
    r2 = pd.read_csv(args.r2) if args.r2 else None
    d = draw_path_diagram(params, r2, out_svg=args.svg, out_png=args.png, controls=args.controls)
    lay = d.layout
    print(f"nodes {len(lay.nodes)}, edges {len(lay.edges)}, crossings {d.crossings}, edges through nodes "
          f"{len(d.through_nodes)}, overlapping labels {len(d.overlaps)}, labels on other edges "
          f"{len(labels_on_edges(lay))}, layout attempts {lay.attempts}, size {lay.extent[2] - lay.extent[0]:.1f} x "
          f"{lay.extent[3] - lay.extent[1]:.1f} in")
    if args.verbose:
        controls = _controls(lay.model)
        for a, b in crossing_pairs(lay):
            kind = sum(n.split()[0] in controls for n in (a, b))
            print(f"  crossing: {a}  x  {b}  ({kind} of 2 from controls)")
        for a, b in labels_on_edges(lay):
            print(f"  label of {a} lies on {b}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
