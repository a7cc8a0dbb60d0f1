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
from pipeline.reliability import method_factor_model, sample_covariance

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
    assert m["method_factor"]["df_difference"] == 1
    assert "visual: alpha 0.626 < .70" in err  # a conventional cut-off flagged, printed


def test_method_factor_model_is_what_lavaan_reads():
    text = method_factor_model(HS_MODEL, CONSTRUCTS)
    pt = lavaanify(text)
    method = pt[(pt["lhs"] == "METHOD") & (pt["op"] == "=~")]
    assert len(method) == 9 and (method["free"] == 0).all() and (method["ustart"] == 1).all()
    # lavaan writes `METHOD ~~ 0*visual` as the row visual ~~ METHOD (tests/reference/cfa.json "hard")
    covs = pt[(pt["rhs"] == "METHOD") & (pt["op"] == "~~") & (pt["lhs"] != "METHOD")]
    assert list(covs["lhs"]) == ["visual", "textual", "speed"]
    assert len(covs) == 3 and (covs["ustart"] == 0).all() and (covs["free"] == 0).all()
    assert pt[(pt["lhs"] == "METHOD") & (pt["rhs"] == "METHOD")]["free"].iat[0] > 0


def test_a_label_does_not_free_the_marker_and_ties_to_it():
    """As lavaan: `m*x1` on a first indicator stays fixed at 1, and every `m` is that 1."""
    pt = lavaanify("f =~ m*x1 + m*x2 + x3\ng =~ NA*x4 + x5 + x6")
    loads = pt[pt["op"] == "=~"].set_index("rhs")
    assert loads.at["x1", "free"] == 0 and loads.at["x2", "free"] == 0 and loads.at["x2", "ustart"] == 1
    assert loads.at["x3", "free"] > 0
    assert loads.at["x4", "free"] > 0  # NA* frees a marker
