"""CFA with the unified engine (analysis.sem.api.fit_model, analysis.sem.diagnostics) against
lavaan (tests/reference/cfa.R), parameter recovery, inadmissible solutions, the cfa command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.api import fit_model
from analysis.sem.diagnostics import modification_indices, standardized_residuals
from analysis.sem.engine import fit as engine_fit
from analysis.sem.partable import lavaanify
from analysis.simulate import SimulationParams, population_model, simulate_study
from analysis.warnings import ConvergenceWarning, InadmissibleWarning
from instrument import parse_instrument

REF = Path(__file__).parent / "reference"
HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "cfa.json").read_text())["ml"]


@pytest.fixture(scope="module")
def hs_fit():
    return fit_model(HS_MODEL, pd.read_csv(REF / "hs_full.csv"))


def engine_fits(estimator: str, missing: str) -> bool:
    """Whether the engine fits this combination yet (MLR with FIML lands from another branch)."""
    try:
        fit_model("f =~ x1 + x2 + x3", pd.read_csv(REF / "hs_missing.csv"), estimator=estimator, missing=missing)
    except InputError:
        return False
    return True


def test_fit_measures_match_lavaan(hs_fit, lavaan):
    """Largest relative difference seen: 6e-6 (srmr)."""
    for name, value in lavaan["fit"].items():
        ours = hs_fit.fit[name.replace(".", "_")]
        assert ours == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_parameter_table_matches_lavaan(hs_fit, lavaan):
    """Largest differences seen: est 2e-5, se 3e-6, std.all 8e-6 (lavaan's own convergence tolerance)."""
    ref = pd.DataFrame(lavaan["pe"])
    m = ref.merge(hs_fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(ref) == len(hs_fit.parameters)
    for r_col, col in [("est_r", "est"), ("se_r", "se"), ("ci.lower", "ci_lower"), ("ci.upper", "ci_upper"),
                       ("std.all", "std_all")]:
        assert np.nanmax(np.abs(m[r_col].astype(float) - m[col].astype(float))) < 1e-3, col
    free = m["se"] > 0
    assert np.abs(m.loc[free, "z_r"] - m.loc[free, "z"]).max() < 1e-3
    assert m.loc[~free, "z"].isna().all()  # fixed parameters: se 0, no z, as lavaan


def test_standardized_solution_ses_match_lavaan(hs_fit, lavaan):
    ref = pd.DataFrame(lavaan["std"])
    m = ref.merge(hs_fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert np.nanmax(np.abs(m["se_r"].astype(float) - m["std_all_se"])) < 1e-3


def test_modification_indices_match_lavaan(hs_fit, lavaan):
    ref = pd.DataFrame(lavaan["mi"])
    ours = modification_indices(hs_fit).sort_values("mi", ascending=False, kind="stable")
    m = ref.merge(ours, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(ref) == len(ours)
    assert np.max(np.abs(m["mi_r"] - m["mi"]) / np.maximum(m["mi_r"], 1)) < 1e-4
    assert np.abs(m["epc_r"] - m["epc"]).max() < 1e-3
    assert np.abs(m["sepc.all"] - m["sepc_all"]).max() < 1e-3
    assert tuple(ours.iloc[0][["lhs", "op", "rhs"]]) == ("visual", "=~", "x9")


def test_standardized_residuals_match_lavaan(hs_fit, lavaan):
    ours = standardized_residuals(hs_fit)[0][0].to_numpy()
    assert np.abs(ours - np.asarray(lavaan["std_resid"])).max() < 1e-3


def test_fiml_matches_lavaan():
    """lavaan missing = "fiml" on HS with 10% of cells missing: fit measures to 1e-7,
    estimates 1.3e-6, SEs (observed information) 3.4e-7."""
    ref = json.loads((REF / "cfa.json").read_text())["fiml"]
    fit = fit_model(HS_MODEL, pd.read_csv(REF / "hs_missing.csv"), missing="fiml")
    for name, value in ref["fit"].items():
        if not name.endswith(".1"):
            assert fit.fit[name.replace(".", "_")] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    pe = pd.DataFrame(ref["pe"])
    m = pe.merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe) == len(fit.parameters)
    for r_col, col in [("est_r", "est"), ("se_r", "se"), ("std.all", "std_all")]:
        assert np.nanmax(np.abs(m[r_col].astype(float) - m[col].astype(float))) < 1e-3, col


def test_fiml_uses_every_case_listwise_does_not(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    for missing in ("listwise", "fiml"):
        code, out, err = run_cli("cfa", "--data", REF / "hs_missing.csv", "--model", tmp_path / "m.lavaan",
                                 "--out", tmp_path / missing, "--missing", missing)
        assert code == 0, err
    listwise = json.loads((tmp_path / "listwise" / "cfa.json").read_text())["fit"]["ntotal"]
    fiml = json.loads((tmp_path / "fiml" / "cfa.json").read_text())["fit"]["ntotal"]
    assert fiml == 301 and listwise < 301


# --------------------------------------------------------------------------- recovery

RECOVERY_INSTRUMENT = parse_instrument({"name": "recovery", "scale": {"type": "continuous"}, "constructs": [
    {"id": "F1", "items": [{"id": f"a{k}"} for k in range(1, 4)]},
    {"id": "F2", "items": [{"id": f"b{k}"} for k in range(1, 4)]},
    {"id": "F3", "items": [{"id": f"c{k}"} for k in range(1, 5)]}]})
RECOVERY_MODEL = "F1 =~ a1 + a2 + a3\nF2 =~ b1 + b2 + b3\nF3 =~ c1 + c2 + c3 + c4\n"
LOADINGS = {"default": 0.7, "a2": 0.8, "b1": 0.6, "c3": 0.5, "c4": 0.85}


def recovery_params(n):
    return SimulationParams(n=n, loadings=LOADINGS, exogenous_correlation=0.4, personal_data=False,
                            defects={k: 0.0 for k in SimulationParams().defects})


def test_standardised_loadings_recover_the_truth():
    sim = simulate_study(RECOVERY_INSTRUMENT, recovery_params(1000), seed=3)
    fit = fit_model(RECOVERY_MODEL, sim.responses)
    load = fit.parameters[fit.parameters["op"] == "=~"].set_index("rhs")["std_all"]
    truth = population_model(RECOVERY_INSTRUMENT, recovery_params(1000), np.random.default_rng(0)).loadings
    assert np.mean(np.abs(load[truth.index] - truth)) < 0.05
    cov = fit.parameters[(fit.parameters["op"] == "~~") & (fit.parameters["lhs"] != fit.parameters["rhs"])]
    assert np.all(np.abs(cov["std_all"] - 0.4) < 0.1)


@pytest.mark.slow
def test_confidence_intervals_cover_the_truth():
    """95% intervals of the unstandardised loadings (relative to the marker) cover the truth in
    90-99% of 200 replications (n = 300 each)."""
    truth = {"a2": 0.8 / 0.7, "a3": 1.0, "b2": 0.7 / 0.6, "b3": 0.7 / 0.6, "c2": 1.0, "c3": 0.5 / 0.7, "c4": 0.85 / 0.7}
    hits, total = 0, 0
    for rep in range(200):
        sim = simulate_study(RECOVERY_INSTRUMENT, recovery_params(300), seed=1000 + rep)
        est = fit_model(RECOVERY_MODEL, sim.responses).parameters.set_index(["op", "rhs"]).loc["=~"]
        for item, value in truth.items():
            hits += est.at[item, "ci_lower"] <= value <= est.at[item, "ci_upper"]
            total += 1
    assert 0.90 <= hits / total <= 0.99, hits / total


# --------------------------------------------------------------------------- inadmissible and bad models


def exact_data(cov: np.ndarray, n: int = 200, names=None) -> pd.DataFrame:
    """Data whose covariance matrix (N denominator) is exactly ``cov``."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, len(cov)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False, bias=True))).T
    x = z @ np.linalg.cholesky(cov).T
    return pd.DataFrame(x, columns=names or [f"x{k}" for k in range(1, len(cov) + 1)])


def test_heywood_case_is_flagged():
    # One factor, three indicators: lambda_1^2 phi = .8 * .8 / .5 = 1.28 > var(x1) = 1.
    cov = np.array([[1.0, 0.8, 0.8], [0.8, 1.0, 0.5], [0.8, 0.5, 1.0]])
    with pytest.warns(InadmissibleWarning) as record:
        fit = fit_model("f =~ x1 + x2 + x3", exact_data(cov))
    messages = [str(w.message) for w in record]
    assert any(m.startswith("Heywood case: the variance of x1 is negative") for m in messages)
    assert any(m.startswith("standardised loading of x1 on f is 1.131") for m in messages)
    assert any("Heywood" in w for w in fit.warnings)
    assert any("standardised loading of x1 on f" in w for w in fit.warnings)


def test_heywood_case_is_written_and_printed_once(run_cli, tmp_path):
    cov = np.array([[1.0, 0.8, 0.8], [0.8, 1.0, 0.5], [0.8, 0.5, 1.0]])
    exact_data(cov).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.lavaan").write_text("f =~ x1 + x2 + x3\n")
    code, out, err = run_cli("cfa", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert m["admissible"] is False and m["converged"] is True
    assert m["inadmissible"] == ["Heywood case: the variance of x1 is negative (-0.280)",
                                 "standardised loading of x1 on f is 1.131 (> 1)"]
    assert err.count("WARNING: ") == 2 and "WARNING: Heywood case: the variance of x1" in err


def test_non_convergence_is_flagged():
    data = pd.read_csv(REF / "hs_full.csv")
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = engine_fit(lavaanify(HS_MODEL, list(data.columns)), data, max_iter=1)
    assert not fit.converged and fit.warnings


def test_unidentified_model_is_refused():
    data = pd.read_csv(REF / "hs_full.csv")
    with pytest.raises(InputError, match="not identified: 4 free parameters but only 3 sample moments"):
        fit_model("f =~ x1 + x2", data)


@pytest.mark.parametrize("model, data_change, message", [
    (HS_MODEL, lambda d: d.drop(columns=["x9"]), "observed variable(s) of the model not in the data: x9"),
    (HS_MODEL, lambda d: d.assign(x3="a"), "column 'x3' row 1 is not numeric ('a')"),
    (HS_MODEL, lambda d: d.assign(x2=d["x1"] * 2), "the sample covariance matrix is singular"),
    ("visual =~ x1 + x2 + x3\nvisual ~~ ", None, "nothing on the right"),
    ("f =~ x1 + x2", None, "m.lavaan: the model is not identified: 4 free parameters"),
])
def test_cfa_cli_bad_input(run_cli, tmp_path, model, data_change, message):
    data = pd.read_csv(REF / "hs_full.csv")
    if data_change is not None:
        data = data_change(data)
    (tmp_path / "d.csv").write_text(data.to_csv(index=False))
    (tmp_path / "m.lavaan").write_text(model)
    code, out, err = run_cli("cfa", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan", "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_cfa_cli_writes_lavaan_names(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("cfa", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan", "--out", tmp_path / "o")
    assert code == 0, err
    params = pd.read_csv(tmp_path / "o" / "cfa_parameters.csv")
    assert list(params.columns) == ["lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper",
                                    "std_all", "std_all_se"]
    m = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert set(m["fit"]) >= {"chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea_ci_lower", "rmsea_ci_upper",
                             "srmr", "aic", "bic", "logl", "ntotal"}
    assert m["admissible"] is True


def test_estimator_choices_of_the_command(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    # WLSMV is for ordinal items: continuous test scores are refused in one line.
    code, out, err = run_cli("cfa", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--estimator", "WLSMV")
    assert code == 2 and "not a whole number" in err and err.count("\n") == 1
    code, out, err = run_cli("cfa", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--estimator", "GLS")
    assert code == 2 and "cfa.estimator: 'GLS' is not available; use ML, MLR, MLM, WLSMV, ULSMV" in err


@pytest.mark.skipif(not engine_fits("MLR", "fiml"), reason="MLR with FIML is not in the unified engine yet")
def test_mlr_with_fiml_runs_from_the_command(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("cfa", "--data", REF / "hs_missing.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--estimator", "MLR", "--missing", "fiml")
    assert code == 0, err  # MLR with FIML: robust SEs, scaled test
    assert json.loads((tmp_path / "o" / "cfa.json").read_text())["fit"]["ntotal"] == 301


@pytest.mark.parametrize("args, message", [
    (["--estimator", "MLM", "--missing", "fiml"],
     "cfa.missing: 'fiml' is not available with estimator MLM: its Satorra-Bentler test needs complete data, as "
     "lavaan's; use --missing listwise with MLM, or --estimator ML or MLR with fiml"),
    (["--estimator", "WLSMV", "--missing", "fiml"],
     "cfa.missing: 'fiml' is not available with estimator WLSMV: lavaan's WLSMV takes complete cases (listwise) or "
     "pairwise; use --missing listwise with WLSMV, or --estimator ML or MLR with fiml"),
    (["--estimator", "ulsmv", "--missing", "fiml"], "'fiml' is not available with estimator ULSMV"),
    (["--ordered", "x1,x2"], "cfa.ordered: ordered items need estimator WLSMV or ULSMV"),
    (["--estimator", "WLSMV", "--ordered", " , "], "cfa.ordered: 'all' or a list of column names"),
    (["--estimator", "WLSMV", "--ordered", "x1,nope"], "ordered: column(s) nope not found in the data"),
    (["--missing", "pairwise"], "cfa.missing: 'pairwise' is for WLSMV and ULSMV (polychorics pair by pair), got ML"),
])
def test_combinations_the_engine_cannot_fit_are_one_line(run_cli, tmp_path, args, message):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("cfa", "--data", REF / "hs_missing.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "o" / "cfa.json").exists()


def read_table(path) -> pd.DataFrame:
    """A written CSV with the writer's formula guard (a leading ' on '=~') taken off; an empty
    rhs (``~1`` rows) as lavaan's ''."""
    table = pd.read_csv(path)
    table["op"] = table["op"].str.lstrip("'")
    table["rhs"] = table["rhs"].fillna("")
    return table


def mlm_reference():
    return json.loads((REF / "engine_robust.json").read_text())["cases"]["hs_mlm"]


def test_mlm_from_the_command_matches_lavaan(run_cli, tmp_path):
    """`gapscale cfa --estimator MLM` on HS writes lavaan's cfa(estimator = "MLM") numbers
    (tests/reference/engine_robust.R, lavaan 0.6-14): the Satorra-Bentler test, its indices and
    the robust.sem SEs, read back from cfa.json and cfa_parameters.csv."""
    ref = mlm_reference()
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("cfa", "--data", REF / "hs_engine.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--estimator", "MLM")
    assert code == 0, err
    assert "CFA (MLM, listwise) on 301 of 301 rows" in out
    m = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert m["estimator"] == "MLM" and m["admissible"] is True and m["iterations"] > 0
    for name in ("chisq", "chisq.scaled", "chisq.scaling.factor", "cfi.scaled", "cfi.robust", "rmsea.robust",
                 "srmr", "aic"):
        assert m["fit"][name.replace(".", "_")] == pytest.approx(ref["fit"][name], rel=1e-5), name
    params = read_table(tmp_path / "o" / "cfa_parameters.csv")
    merged = pd.DataFrame(ref["parameters"]).merge(params, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(merged) == len(params) == len(ref["parameters"])
    for r_col, col in [("est_r", "est"), ("se_r", "se"), ("std.all", "std_all"), ("std.all.se", "std_all_se")]:
        assert np.abs(merged[r_col] - merged[col]).max() < 1e-4, col


def diagnostics_fit_wlsmv() -> bool:
    """Whether the engine's modification indices take a WLSMV fit yet (another branch adds them)."""
    from analysis.sem.diagnostics import modification_indices as mi

    data = pd.read_csv(REF / "bfi_600.csv")
    try:
        mi(fit_model("f =~ A1 + A2 + A3 + A4", data, estimator="WLSMV", ordered=["A1", "A2", "A3", "A4"]))
    except InputError:
        return False
    return True


BFI_MODEL = "agree =~ A1 + A2 + A3 + A4 + A5\nconsc =~ C1 + C2 + C3 + C4 + C5\nextra =~ E1 + E2 + E3 + E4 + E5\n"


@pytest.mark.skipif(not diagnostics_fit_wlsmv(), reason="modification indices of WLSMV fits not in the engine yet")
@pytest.mark.parametrize("estimator, ordered", [("WLSMV", []), ("ULSMV", ["--ordered", "all"])])
def test_ordinal_cfa_from_the_command_matches_lavaan(run_cli, tmp_path, estimator, ordered):
    """`gapscale cfa --estimator WLSMV` (every item ordered) and `--estimator ULSMV --ordered all`
    on 15 bfi items: lavaan's cfa(ordered = TRUE, estimator = ...) (tests/reference/engine_wls.R,
    lavaan 0.6-14) read back from cfa.json and cfa_parameters.csv, within test_engine_wls's
    tolerances."""
    ref = json.loads((REF / "engine_wls.json").read_text())[f"cfa_{estimator.lower()}"]
    (tmp_path / "m.lavaan").write_text(BFI_MODEL)
    code, out, err = run_cli("cfa", "--data", REF / "bfi_1000.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--estimator", estimator, *ordered)
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert m["estimator"] == estimator and m["ordered"] == [f"{a}{k}" for a in "ACE" for k in range(1, 6)]
    assert m["fit"]["ntotal"] == np.sum(ref["nobs"])
    for name in ("chisq", "chisq.scaled", "chisq.scaling.factor", "cfi.scaled", "rmsea.scaled", "srmr"):
        assert m["fit"][name.replace(".", "_")] == pytest.approx(ref["fit"][name], rel=1e-5), name
    params = read_table(tmp_path / "o" / "cfa_parameters.csv")
    merged = pd.DataFrame(ref["pe"]).merge(params, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(merged) == len(ref["pe"]) == len(params)
    assert np.abs(merged["est_r"] - merged["est"]).max() < 4e-5
    assert np.abs(merged["std.all"] - merged["std_all"]).max() < 1e-5
    assert (params["op"] == "|").sum() == 15 * 5  # thresholds, 6 categories
    assert len(pd.read_csv(tmp_path / "o" / "cfa_residuals.csv")) == 15


def test_ordered_items_with_continuous_ones(run_cli, tmp_path):
    """--ordered names some items, the others are continuous (lavaan's ordered = c(...); compared
    with lavaan in tests/test_engine_wls.py and tests/test_wlsmv.py)."""
    (tmp_path / "m.lavaan").write_text(BFI_MODEL)
    code, out, err = run_cli("cfa", "--data", REF / "bfi_1000.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--estimator", "WLSMV", "--ordered", "A1,A2")
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert metrics["ordered"] == ["A1", "A2"] and "continuous and ordered variables" in metrics["note"]


def test_params_keys_of_the_cfa_section(run_cli, tmp_path):
    """cfa.estimator and cfa.std_lv from the params file: lavaan's std.lv = TRUE leaves the fit and
    the standardised solution as lavaan's std.lv = FALSE fit (tests/reference/engine_robust.json)
    with the latent variances at 1; a bad std_lv value is refused."""
    ref = mlm_reference()
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    (tmp_path / "p.yaml").write_text("cfa:\n  estimator: MLM\n  std_lv: true\n")
    code, out, err = run_cli("cfa", "--data", REF / "hs_engine.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o", "--params", tmp_path / "p.yaml")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert m["estimator"] == "MLM" and m["std_lv"] is True
    for name in ("chisq", "chisq.scaled", "cfi.robust"):
        assert m["fit"][name.replace(".", "_")] == pytest.approx(ref["fit"][name], rel=1e-5), name
    params = read_table(tmp_path / "o" / "cfa_parameters.csv")
    variances = params[(params["op"] == "~~") & params["lhs"].isin(["visual", "textual", "speed"])
                       & (params["lhs"] == params["rhs"])]
    assert (variances["est"] == 1).all() and (variances["se"] == 0).all()
    loadings = params[params["op"] == "=~"]
    assert (loadings["se"] > 0).all()  # every loading free
    merged = pd.DataFrame(ref["parameters"]).merge(params, on=["lhs", "op", "rhs"])
    assert np.abs(merged["std.all"] - merged["std_all"]).max() < 1e-4
    (tmp_path / "p.yaml").write_text("cfa:\n  std_lv: maybe\n")
    code, out, err = run_cli("cfa", "--data", REF / "hs_engine.csv", "--model", tmp_path / "m.lavaan", "--out",
                             tmp_path / "o2", "--params", tmp_path / "p.yaml")
    assert code == 2 and "cfa.std_lv: true or false, got 'maybe'" in err


def test_mlr_matches_lavaan():
    """lavaan estimator = "MLR": robust SEs 1.8e-5; scaled and robust fit indices within 3e-6
    relative (chisq.scaled differs by 2.6e-4 on 87.13, from lavaan's estimate tolerance)."""
    ref = json.loads((REF / "cfa.json").read_text())["mlr"]
    fit = fit_model(HS_MODEL, pd.read_csv(REF / "hs_full.csv"), estimator="MLR")
    for name, value in ref["fit"].items():
        assert fit.fit[name.replace(".", "_")] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    pe = pd.DataFrame(ref["pe"])
    m = pe.merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    for r_col, col in [("est_r", "est"), ("se_r", "se"), ("ci.lower", "ci_lower"), ("std.all", "std_all")]:
        assert np.nanmax(np.abs(m[r_col].astype(float) - m[col].astype(float))) < 1e-3, col


def test_hard_model_reaches_lavaans_solution_and_flags_it():
    """Fisher scoring from the PCA start runs away on this near-ridge model (the reliability
    stage's method factor model); the retry from lavaan's simple start finds lavaan's optimum (a
    negative latent variance, flagged as lavaan warns)."""
    ref = json.loads((REF / "cfa.json").read_text())["hard"]
    data = pd.read_csv(REF / "hs_missing.csv").dropna()
    with pytest.warns(InadmissibleWarning):
        fit = fit_model(ref["model"], data)
    assert fit.converged and ref["converged"]
    assert fit.fit["chisq"] == pytest.approx(ref["fit"]["chisq"], abs=1e-3)
    assert fit.fit["df"] == ref["fit"]["df"]
    m = pd.DataFrame(ref["pe"]).merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert np.abs(m["est_r"] - m["est"]).max() < 1e-3
    assert any("Heywood case: the variance of visual is negative" in w for w in fit.warnings)
    assert "the latent covariance matrix is not positive definite" in fit.warnings
    visual = fit.parameters[(fit.parameters["lhs"] == "visual") & (fit.parameters["op"] == "=~")]
    assert visual["std_all"].isna().all()  # no standard deviation for a negative variance


@pytest.mark.skipif(not engine_fits("MLR", "fiml"), reason="MLR with FIML is not in the unified engine yet")
def test_mlr_with_fiml_matches_lavaan_where_built():
    """lavaan missing = "fiml", estimator = "MLR": robust SEs 1.1e-6, scaling factors 3e-7.
    The scaled and robust CFI/TLI/RMSEA for incomplete data are tested in test_fiml_robust.py."""
    ref = json.loads((REF / "cfa.json").read_text())["mlr_fiml"]
    fit = fit_model(HS_MODEL, pd.read_csv(REF / "hs_missing.csv"), missing="fiml", estimator="MLR")
    for name in ("chisq", "chisq.scaled", "chisq.scaling.factor", "baseline.chisq.scaled",
                 "baseline.chisq.scaling.factor", "cfi", "tli", "rmsea", "srmr", "logl", "aic", "bic"):
        assert fit.fit[name.replace(".", "_")] == pytest.approx(ref["fit"][name], rel=1e-5), name
    pe = pd.DataFrame(ref["pe"])
    m = pe.merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.nanmax(np.abs(m["se_r"] - m["se"])) < 1e-3
