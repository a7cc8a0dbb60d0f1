"""The reliability stage end to end, and lavaan's rule for labels on a marker loading."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import reliability as rel
from analysis.sem.api import fit_model
from analysis.sem.partable import lavaanify
from pipeline.reliability import sample_covariance

REF = Path(__file__).parent / "reference"
HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
CONSTRUCTS = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}


def test_stage_writes_the_tables_the_functions_compute(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("reliability", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan",
                             "--out", tmp_path / "o", "--htmt-bootstrap", "100", "--seed", "3")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "reliability.csv").set_index("construct")
    data = pd.read_csv(REF / "hs_full.csv")
    alpha = rel.cronbach_alpha(data, CONSTRUCTS).set_index("construct")
    assert np.allclose(table.loc[list(CONSTRUCTS), "raw_alpha"], alpha.loc[list(CONSTRUCTS), "raw_alpha"])
    fit = fit_model(HS_MODEL, data)
    omega = rel.composite_reliability(fit.parameters, cov=sample_covariance(fit)).set_index("construct")
    assert np.allclose(table.loc[list(CONSTRUCTS), "omega"], omega.loc[list(CONSTRUCTS), "omega"])
    m = json.loads((tmp_path / "o" / "reliability.json").read_text())
    assert m["lowest_ave_construct"] == table["ave"].idxmin()
    assert m["min_alpha"] == pytest.approx(table["raw_alpha"].min())
    htmt = pd.read_csv(tmp_path / "o" / "htmt.csv")
    assert (htmt["ci_lower"] <= htmt["htmt"]).all() and (htmt["htmt"] <= htmt["ci_upper"]).all()
    v = m["cmv"]["method_factor"]["variants"][0]
    assert v["variant"] == "equal" and m["cmv"]["marker"] is None and "no marker construct" in m["cmv"]["marker_note"]
    models = pd.read_csv(tmp_path / "o" / "cmv_models.csv")
    assert list(models["model"]) == ["equal"] and bool(models["admissible"].iloc[0]) == v["admissible"]
    assert pd.read_csv(tmp_path / "o" / "cmv_lindell_whitney.csv").empty
    assert "visual: alpha 0.626 < .70" in err  # a conventional cut-off flagged, printed


def test_a_label_does_not_free_the_marker_and_ties_to_it():
    """As lavaan: `m*x1` on a first indicator stays fixed at 1, and every `m` is that 1."""
    pt = lavaanify("f =~ m*x1 + m*x2 + x3\ng =~ NA*x4 + x5 + x6")
    loads = pt[pt["op"] == "=~"].set_index("rhs")
    assert loads.at["x1", "free"] == 0 and loads.at["x2", "free"] == 0 and loads.at["x2", "ustart"] == 1
    assert loads.at["x3", "free"] > 0
    assert loads.at["x4", "free"] > 0  # NA* frees a marker


@pytest.mark.parametrize("missing", ["listwise", "fiml"])
def test_stage_reads_the_cfa_stage_fit_instead_of_refitting(run_cli, tmp_path, missing):
    """--cfa DIR: the cfa stage's estimates, fit and sample moments give the same tables and
    method-factor comparison as a refit; a cfa directory for another model is not used, and the
    metrics say so."""
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    (tmp_path / "p.yaml").write_text(f"cfa:\n  missing: {missing}\n")
    data = REF / ("hs_missing.csv" if missing == "fiml" else "hs_full.csv")
    common = ["--data", data, "--model", tmp_path / "m.lavaan", "--params", tmp_path / "p.yaml"]
    code, _, err = run_cli("cfa", *common, "--out", tmp_path / "cfa")
    assert code == 0, err
    runs = {}
    for name, extra in (("refit", []), ("read", ["--cfa", tmp_path / "cfa"])):
        code, _, err = run_cli("reliability", *common, "--out", tmp_path / name, "--htmt-bootstrap", "50",
                               "--seed", "3", *extra)
        assert code == 0, err
        runs[name] = json.loads((tmp_path / name / "reliability.json").read_text())
        for f in ("reliability.csv", "fornell_larcker.csv", "htmt.csv"):
            runs[name, f] = pd.read_csv(tmp_path / name / f)
    assert runs["refit"]["cfa_fit"] == "fitted here" and runs["read"]["cfa_fit"] == "the cfa stage's"
    for f in ("reliability.csv", "fornell_larcker.csv", "htmt.csv"):
        pd.testing.assert_frame_equal(runs["refit", f], runs["read", f], rtol=1e-10, atol=1e-12)
    assert runs["refit"]["cmv"] == runs["read"]["cmv"]  # the CMV models do not depend on the CFA's source
    assert runs["refit"]["warnings"] == runs["read"]["warnings"]
    (tmp_path / "other.lavaan").write_text(HS_MODEL.replace(" + x3", ""))
    code, _, err = run_cli("reliability", *common[:2], "--model", tmp_path / "other.lavaan", *common[4:],
                           "--out", tmp_path / "other", "--htmt-bootstrap", "0", "--no-method-factor",
                           "--cfa", tmp_path / "cfa")
    assert code == 0, err
    note = json.loads((tmp_path / "other" / "reliability.json").read_text())["cfa_fit"]
    assert note.startswith("fitted here: the cfa stage's fit") and "loadings are not those" in note


def test_stage_with_a_marker_construct(run_cli, tmp_path):
    """An instrument with a marker construct and a structural model, simulated with a planted
    method factor (.4 on every item): the stage runs the marker technique, Lindell-Whitney and
    the method-adjusted paths, finds the method effect and writes every CMV table."""
    import yaml

    from tests.test_cmv import _simulated
    data, _ = _simulated({"default": 0.4}, n=1500)
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.lavaan").write_text("X =~ X_1 + X_2 + X_3 + X_4\nY =~ Y_1 + Y_2 + Y_3 + Y_4\n"
                                       "Z =~ Z_1 + Z_2 + Z_3 + Z_4\nMARK =~ MARK_1 + MARK_2 + MARK_3 + MARK_4\n"
                                       "Y ~ X\nZ ~ Y\n")
    doc = {"name": "CMV test", "model": "m.lavaan", "scale": {"type": "likert", "min": 1, "max": 7},
           "constructs": [{"id": c, "items": [{"id": f"{c}_{k}"} for k in range(1, 5)]} for c in ("X", "Y", "Z")]
           + [{"id": "MARK", "marker": True, "items": [{"id": f"MARK_{k}"} for k in range(1, 5)]}]}
    (tmp_path / "i.yaml").write_text(yaml.safe_dump(doc))
    code, out, err = run_cli("reliability", "--data", tmp_path / "d.csv", "--instrument", tmp_path / "i.yaml",
                             "--out", tmp_path / "o", "--htmt-bootstrap", "0")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "reliability.json").read_text())["cmv"]
    assert m["marker"]["construct"] == "MARK" and m["marker"]["method_detected"]
    assert m["adjusted_paths"]["n_paths"] == 2
    tests = pd.read_csv(tmp_path / "o" / "cmv_tests.csv")
    assert list(tests.loc[tests["family"] == "marker", "restricted"]) == ["baseline", "method_c", "method_r"]
    lw = pd.read_csv(tmp_path / "o" / "cmv_lindell_whitney.csv")
    assert len(lw) == 3 and (lw["r_adjusted"] < lw["r"]).all()
    paths = pd.read_csv(tmp_path / "o" / "cmv_paths.csv")
    assert (paths["std_all_adjusted"] < paths["std_all_unadjusted"]).all()
