"""The path diagram (pipeline/path_diagram.py): layout, legibility checks, drawing.

The default model's structure comes from instrument/sustainability_gap.lavaan (through
lavaanify, so the test follows the model file); its coefficients are drawn from a seeded
generator, since the layout depends on the structure and only the label widths on the values.
"""
from __future__ import annotations

import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.partable import lavaanify
from pipeline.path_diagram import (
    MINUS, count_crossings, crossing_pairs, draw_path_diagram, edge_label, edges_through_nodes,
    layout_path_diagram, overlapping_labels, render_path_diagram, structural_model,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "instrument" / "sustainability_gap.lavaan"
CONTROLS = {"role_management", "experience_years", "org_size_code"}

# What the layout reaches for the default model. As drawn by default (the controls' paths listed
# in the note): no crossing. With the controls drawn: the three controls each predict GAP5, VCC
# and VCD, so the controls and those three outcomes hold K(3,3), which no drawing shows without a
# crossing, and a layered drawing needs at least 3 for each pair of controls: 9, all involving a
# control's path; no two construct paths cross.
DEFAULT_CROSSINGS = 0
DEFAULT_CROSSINGS_CONTROLS_DRAWN = 9


def _with_estimates(table: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = table[["lhs", "op", "rhs"]].copy()
    out["std_all"] = rng.uniform(-0.6, 0.6, len(out))
    out["pvalue"] = rng.choice([0.2, 0.03, 0.004, 1e-6], len(out))
    return out


def _paths(rows, std=None, p=None) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["lhs", "op", "rhs"])
    df["std_all"] = std if std is not None else np.linspace(-0.4, 0.5, len(df))
    df["pvalue"] = p if p is not None else 1e-4
    return df


@pytest.fixture(scope="module")
def default_paths() -> pd.DataFrame:
    return _with_estimates(lavaanify(DEFAULT_MODEL.read_text()))


@pytest.fixture(scope="module")
def default_layout(default_paths):
    return layout_path_diagram(default_paths)


@pytest.fixture(scope="module")
def default_layout_controls_drawn(default_paths):
    return layout_path_diagram(structural_model(default_paths, controls="draw"))


def _ends_at(layout, g, node) -> bool:
    """The drawn curve of ``g`` ends (its arrowhead) on ``node``'s box."""
    x, y = g.points[-1]
    x0, y0, x1, y1 = layout.nodes[node].box
    return x0 - 0.01 <= x <= x1 + 0.01 and y0 - 0.01 <= y <= y1 + 0.01


LATENTS = {"IMVI", "IMVG", "IMVE", "IM", "GAP1", "GAP2", "GAP3", "GAP4", "GAP5", "AINF", "TRST", "MIST", "ISRV",
           "ICHG", "EXPC", "CMIS", "BLAM", "VCC", "VCD"}


def test_default_model_crossings_and_labels(default_layout):
    lay = default_layout
    assert set(lay.nodes) == LATENTS
    n = count_crossings(lay)
    print(f"default model: {n} crossings, {len(edges_through_nodes(lay))} edges through nodes, "
          f"{len(overlapping_labels(lay))} overlapping labels")
    assert n == DEFAULT_CROSSINGS
    assert edges_through_nodes(lay) == []
    assert overlapping_labels(lay) == []
    assert all(g.label_box is not None for g in lay.edges if g.label)  # every label placed
    # 21 regressions among constructs, 3 higher-order loadings, 1 residual covariance (VCC ~~ VCD)
    kinds = [g.edge.kind for g in lay.edges]
    assert (kinds.count("regression"), kinds.count("loading"), kinds.count("covariance")) == (21, 3, 1)
    # the 9 control paths are in the note, with their coefficients
    assert len(lay.model.hidden_controls) == 9
    assert "Controls, not drawn: role_management → GAP5" in lay.note
    assert lay.note.count("→") == 3 and lay.note.count(",") >= 6


def test_default_model_controls_drawn(default_layout_controls_drawn):
    lay = default_layout_controls_drawn
    assert set(lay.nodes) == LATENTS | CONTROLS
    n = count_crossings(lay)
    print(f"default model, controls drawn: {n} crossings, {len(edges_through_nodes(lay))} edges through nodes, "
          f"{len(overlapping_labels(lay))} overlapping labels")
    assert n == DEFAULT_CROSSINGS_CONTROLS_DRAWN
    pairs = crossing_pairs(lay)
    assert all(any(name.split()[0] in CONTROLS for name in pair) for pair in pairs), pairs
    assert edges_through_nodes(lay) == [] and overlapping_labels(lay) == []
    assert sum(g.edge.kind == "regression" for g in lay.edges) == 30
    assert "Grey: observed covariates (controls)." in lay.note and "not drawn: role" not in lay.note


def test_default_model_arrowheads_and_order(default_layout):
    lay = default_layout
    for g in lay.edges:
        if g.edge.kind != "covariance":
            assert _ends_at(lay, g, g.edge.target), g.name
    # causal order left to right; a first-order factor of IM sits before IM, its arrow pointing back
    x = {n: b.x for n, b in lay.nodes.items()}
    assert x["IMVI"] < x["IM"] < x["GAP1"] < x["GAP2"] < x["GAP3"] < x["GAP4"] < x["GAP5"] < x["VCD"]
    assert x["AINF"] < x["VCD"] and x["VCC"] == x["VCD"]


@pytest.mark.parametrize("which", ["default_layout", "default_layout_controls_drawn"])
@pytest.mark.parametrize("dpi", [100, 150])
def test_labels_clear_in_display_coordinates(which, dpi, request):
    """After drawing, no label's box (its white background) overlaps another label or a node."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    lay = request.getfixturevalue(which)
    fig, artists = render_path_diagram(lay, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t.get_bbox_patch().get_window_extent(renderer) for t in artists["labels"]]
    nodes = [p.get_window_extent(renderer) for p in artists["nodes"]]
    names = [t.get_window_extent(renderer) for t in artists["names"]]
    assert len(labels) == sum(1 for g in lay.edges if g.label)
    clashes = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i].overlaps(labels[j])]
    clashes += [(i, "node") for i, b in enumerate(labels) for nb in nodes + names if b.overlaps(nb)]
    assert clashes == []
    # the checker does see an overlap when there is one: two labels moved onto the same spot
    twin = labels[0].frozen()
    assert twin.overlaps(labels[0])


def test_minus_sign_in_svg(tmp_path):
    paths = _paths([("m", "~", "x"), ("y", "~", "m")], std=[-0.3768, 0.41], p=[1e-20, 0.02])
    d = draw_path_diagram(paths, out_svg=tmp_path / "d.svg", out_png=tmp_path / "d.png")
    svg = (tmp_path / "d.svg").read_text(encoding="utf-8")
    assert svg.encode("utf-8") == d.svg
    texts = re.findall(r"<!-- (.*?) -->", svg)
    assert "\u2212.38***" in texts and ".41*" in texts
    assert not any(re.match(r"^-\.\d", t) for t in texts)  # no hyphen-minus before a coefficient
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert d.crossings == 0 and d.overlaps == () and d.through_nodes == ()


def test_edge_label():
    assert edge_label(-0.3768, 1e-20) == MINUS + ".38***"
    assert edge_label(0.041, 0.30) == ".04"
    assert edge_label(-0.004, 0.9) == ".00"  # rounds to zero: no sign
    assert edge_label(0.2, 0.004) == ".20**"
    assert edge_label(float("nan"), 0.01) == ""


def test_one_path():
    lay = layout_path_diagram(_paths([("y", "~", "x")], std=[0.5]))
    assert set(lay.nodes) == {"x", "y"}
    assert count_crossings(lay) == 0 and overlapping_labels(lay) == []
    (g,) = lay.edges
    assert g.label == ".50***" and g.label_box is not None
    assert lay.nodes["x"].x < lay.nodes["y"].x and _ends_at(lay, g, "y")


def _alarm(seconds):
    def handler(signum, frame):
        raise TimeoutError("the layout did not finish")
    signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)


def test_non_recursive_model_terminates_with_arrows_right():
    """A feedback loop (y1 ~ y2, y2 ~ y1) and a longer cycle: the layout reverses an edge to
    place the nodes and still draws every arrowhead at its own target."""
    rows = [("y1", "~", "x1"), ("y2", "~", "x2"), ("y1", "~", "y2"), ("y2", "~", "y1"),
            ("y3", "~", "y2"), ("y1", "~", "y3")]
    _alarm(60)
    try:
        lay = layout_path_diagram(_paths(rows))
    finally:
        signal.alarm(0)
    assert len([g for g in lay.edges if g.reversed]) >= 1
    for g in lay.edges:
        assert _ends_at(lay, g, g.edge.target), g.name
    assert overlapping_labels(lay) == [] and edges_through_nodes(lay) == []
    # the two edges of the loop are distinct curves, not drawn on top of each other
    loop = [g for g in lay.edges if {g.edge.source, g.edge.target} == {"y1", "y2"}]
    assert len(loop) == 2 and not np.allclose(loop[0].points.mean(axis=0), loop[1].points.mean(axis=0))


def test_covariances():
    rows = [("m", "~", "x1"), ("m", "~", "x2"), ("y1", "~", "m"), ("y2", "~", "m"),
            ("y1", "~~", "y2"), ("x1", "~~", "x2"), ("y1", "~~", "y1")]
    paths = _paths(rows, std=[0.3, 0.2, 0.5, -0.4, -0.25, 0.3, 0.7])
    model = structural_model(paths)
    cov = [e for e in model.edges if e.kind == "covariance"]
    assert [(e.source, e.target) for e in cov] == [("y1", "y2")]  # residual covariance drawn
    assert model.hidden_covariances == 1  # x1 ~~ x2 (exogenous) left out, said in the note
    lay = layout_path_diagram(model)
    assert "1 covariance among exogenous variables not drawn" in lay.note
    g = next(g for g in lay.edges if g.edge.kind == "covariance")
    assert g.label == MINUS + ".25***" and g.label_box is not None
    assert count_crossings(lay) == 0 and overlapping_labels(lay) == []
    both = layout_path_diagram(structural_model(paths, exogenous_covariances=True))
    assert sum(g.edge.kind == "covariance" for g in both.edges) == 2
    assert overlapping_labels(both) == [] and edges_through_nodes(both) == []


def test_crossing_count_sees_a_forced_crossing():
    """K(2,2) between two columns plus a path that forces one pair to swap: the checker counts
    the crossing the drawing cannot avoid (a test of the checker, not of the layout)."""
    rows = [("y1", "~", "x1"), ("y2", "~", "x1"), ("y1", "~", "x2"), ("y2", "~", "x2"), ("y1", "~", "x3"),
            ("y2", "~", "x3"), ("y3", "~", "y1"), ("y3", "~", "y2"), ("y3", "~", "x1"), ("y3", "~", "x2"),
            ("y3", "~", "x3")]
    lay = layout_path_diagram(_paths(rows))
    # K(3,3) between {x1, x2, x3} and {y1, y2, y3}: crossing number 1, and more in layers
    assert count_crossings(lay) >= 1


def test_political_democracy_and_mediation():
    pd_model = """
        ind60 =~ x1 + x2 + x3
        dem60 =~ y1 + y2 + y3 + y4
        dem65 =~ y5 + y6 + y7 + y8
        dem60 ~ ind60
        dem65 ~ ind60 + dem60
        y1 ~~ y5
    """
    lay = layout_path_diagram(_with_estimates(lavaanify(pd_model)))
    assert set(lay.nodes) == {"ind60", "dem60", "dem65"}
    assert count_crossings(lay) == 0 and overlapping_labels(lay) == [] and edges_through_nodes(lay) == []
    med = _paths([("M", "~", "X"), ("Y", "~", "M"), ("Y", "~", "X")], std=[0.4, 0.35, -0.1], p=[1e-5, 1e-4, 0.2])
    lay = layout_path_diagram(med)
    assert count_crossings(lay) == 0 and overlapping_labels(lay) == [] and edges_through_nodes(lay) == []
    assert lay.nodes["X"].x < lay.nodes["M"].x < lay.nodes["Y"].x


def test_reads_sem_stage_csv(tmp_path):
    """``=~`` written as ``'=~`` by the CSV writer (formula neutralising) still counts."""
    from analysis.csvfile import write_csv

    rows = [("F", "=~", "A"), ("F", "=~", "B"), ("A", "=~", "a1"), ("B", "=~", "b1"), ("Y", "~", "F")]
    write_csv(_paths(rows), tmp_path / "sem_parameters.csv")
    assert "'=~" in (tmp_path / "sem_parameters.csv").read_text()
    table = pd.read_csv(tmp_path / "sem_parameters.csv")
    r2 = pd.DataFrame({"variable": ["A", "B", "Y", "a1"], "r2": [0.5, 0.6, 0.16, 0.9]})
    model = structural_model(table, r2)
    assert {(e.source, e.target, e.kind) for e in model.edges} == {
        ("F", "A", "loading"), ("F", "B", "loading"), ("F", "Y", "regression")}
    assert model.r2 == {"A": 0.5, "B": 0.6, "Y": 0.16}  # only nodes of the diagram, only endogenous


def test_input_errors_and_empty_model():
    with pytest.raises(InputError, match="no column op"):
        structural_model(pd.DataFrame({"lhs": ["y"], "rhs": ["x"]}))
    cfa_only = _paths([("F", "=~", "x1"), ("F", "=~", "x2")])
    d = draw_path_diagram(cfa_only)
    assert d.layout.nodes == {} and d.crossings == 0
    assert "no structural paths" in d.svg.decode("utf-8")  # the text, kept in an SVG comment


def test_svg_is_reproducible(default_paths):
    a = draw_path_diagram(default_paths).svg
    b = draw_path_diagram(default_paths).svg
    assert a == b


def test_real_default_study_if_present():
    """The default study's own sem outputs, when this checkout has run the pipeline."""
    sem = ROOT / "data" / "processed" / "sem"
    if not (sem / "sem_parameters.csv").is_file():
        pytest.skip("data/processed/sem not built (dvc repro)")
    d = draw_path_diagram(pd.read_csv(sem / "sem_parameters.csv"), pd.read_csv(sem / "sem_r2.csv"))
    print(f"default study: {d.crossings} crossings, {len(d.overlaps)} overlapping labels")
    assert d.crossings == DEFAULT_CROSSINGS and d.overlaps == () and d.through_nodes == ()
    d = draw_path_diagram(pd.read_csv(sem / "sem_parameters.csv"), pd.read_csv(sem / "sem_r2.csv"), controls="draw")
    print(f"default study, controls drawn: {d.crossings} crossings, {len(d.overlaps)} overlapping labels")
    assert d.crossings == DEFAULT_CROSSINGS_CONTROLS_DRAWN and d.overlaps == () and d.through_nodes == ()
