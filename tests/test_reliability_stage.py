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
    a, b = runs["refit"]["method_factor"], runs["read"]["method_factor"]
    assert a["converged"] and b["converged"] and a["df_difference"] == b["df_difference"] == 1
    for k in ("chisq_difference", "cfi_change", "rmsea_change", "mean_std_method_loading"):
        assert abs(a[k] - b[k]) < 1e-9, k
    assert runs["refit"]["warnings"] == runs["read"]["warnings"]
    (tmp_path / "other.lavaan").write_text(HS_MODEL.replace(" + x3", ""))
    code, _, err = run_cli("reliability", *common[:2], "--model", tmp_path / "other.lavaan", *common[4:],
                           "--out", tmp_path / "other", "--htmt-bootstrap", "0", "--no-method-factor",
                           "--cfa", tmp_path / "cfa")
    assert code == 0, err
    note = json.loads((tmp_path / "other" / "reliability.json").read_text())["cfa_fit"]
    assert note.startswith("fitted here: the cfa stage's fit") and "loadings are not those" in note


def test_a_method_factor_model_that_is_not_identified_is_a_finding_not_a_failure(run_cli, tmp_path, monkeypatch):
    """The unmeasured method factor's solution can be degenerate (the default study's simulated
    data: a singular information matrix); the stage reports it as inadmissible instead of exiting."""
    import pipeline.reliability as stage
    from analysis.errors import InputError
    from pipeline.report.findings.reliability import method_factor_problems

    def singular(*args, **kwargs):
        raise InputError("the model is not identified: the information matrix is singular at the solution (smallest "
                         "scaled eigenvalue 3.4e-12), so these parameters are not determined by the data: visual ~~ "
                         "visual, METHOD ~~ METHOD; fix one of them, add a constraint or indicators")

    monkeypatch.setattr(stage, "fit_method_factor", singular)
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("reliability", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan",
                             "--out", tmp_path / "o", "--htmt-bootstrap", "0")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "reliability.json").read_text())
    assert m["method_factor"] == {"admissible": False, "identified": False}
    assert ("method factor model: the model is not identified: the information matrix is singular at the solution "
            "(smallest scaled eigenvalue 3.4e-12) (2 parameters involved)") in m["warnings"]
    assert method_factor_problems(m) == ["its information matrix is singular at the solution (not identified)"]
