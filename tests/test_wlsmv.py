"""WLSMV for ordinal items in the unified engine (analysis.sem: engine.fit with estimator
"WLSMV", its ordinal statistics in analysis.sem.ordinal) against lavaan 0.6-14
(tests/reference/wlsmv.R), parameter recovery, bad input and the cfa command with --estimator
WLSMV.

Tolerances: lavaan stops its optimisers (nlminb for each polychoric correlation and for the
model) earlier than the estimates here, which are exact to about 1e-10; that limits the
agreement to about 1e-5 for estimates and 1e-6 relative for the fit measures (largest
differences seen are in the docstrings). The modification indices and standardized residuals
of these references are checked where the engine's diagnostics for WLSMV fits are tested
(analysis/sem/diagnostics.py), not here.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.api import parameter_table
from analysis.sem.engine import EngineFit
from analysis.sem.engine import fit as engine_fit
from analysis.sem.ordinal import ordinal_statistics
from analysis.sem.partable import lavaanify, variable_names
from analysis.warnings import GapscaleWarning, InadmissibleWarning
from instrument.lavaan import parse_model

REF = Path(__file__).parent / "reference"
MODELS = ("three", "cross", "mixed", "small")


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "wlsmv.json").read_text())


def reference_data(name: str) -> pd.DataFrame:
    """The data set of each reference model, as tests/reference/wlsmv.R builds it."""
    if name == "cross":
        return pd.read_csv(REF / "bfi_1000.csv")
    d = pd.read_csv(REF / "bfi_600.csv")
    if name != "mixed":
        return d
    d = d[["A1", "A2", "A3", "A4", "A5", "C1", "C2", "E1", "E2", "E3"]].copy()
    for v in ("A1", "C1", "E1"):
        d[v] = (d[v] >= 4).astype(float).where(d[v].notna())
    for v in ("A2", "C2", "E2"):
        d[v] = (d[v] + 1) // 2
    return d


def fit_wlsmv(data: pd.DataFrame, model: str, **kwargs) -> EngineFit:
    """lavaan's ``cfa(model, data, ordered = TRUE, estimator = "WLSMV")``: every observed variable
    of the model ordered, its categories its distinct values (lavaan's ov.levels), the table
    from lavaanify, the fit from engine.fit."""
    m = parse_model(model)
    items = variable_names([s.lhs for s in m.statements], [s.op for s in m.statements],
                           [s.rhs for s in m.statements])["ov"]
    ordered = {v: int(data[v].nunique()) for v in items if v in data.columns}
    pt = lavaanify(model, list(data.columns), ordered=ordered, estimator="WLSMV")
    return engine_fit(pt, data, estimator="WLSMV", ordered=items, **kwargs)


@pytest.fixture(scope="module")
def fits(lavaan):
    return {name: fit_wlsmv(reference_data(name), lavaan[name]["model"]) for name in MODELS}


# --------------------------------------------------------------------------- against lavaan


@pytest.mark.parametrize("name", MODELS)
def test_sample_statistics_match_lavaan(fits, lavaan, name):
    """Thresholds and polychoric correlations (wls.obs): largest difference 2.6e-8; DWLS weights
    (diag of wls.v): 7e-8 relative."""
    ref, stat = lavaan[name], fits[name].estimator.stats[0]
    assert stat.labels == ref["wls_obs_names"]
    assert np.abs(stat.sample - np.array(ref["wls_obs"])).max() < 1e-6
    assert np.max(np.abs(stat.weights / np.array(ref["wls_v"]) - 1)) < 1e-5


def test_nacov_matches_lavaan(fits, lavaan):
    """Gamma (lavInspect(fit, "gamma")) of 5 six-point items, entries up to 12: largest
    difference 2e-8."""
    ours = fits["small"].estimator.stats[0].nacov
    ref = np.array(lavaan["small"]["nacov"])
    assert ours.shape == ref.shape == (35, 35)
    assert np.abs(ours.to_numpy() - ref).max() < 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_fit_measures_match_lavaan(fits, lavaan, name):
    """Every fitMeasures value lavaan gives (chi-squares, scaling factors, CFI/TLI/RMSEA plain,
    scaled and robust, RMSEA intervals, SRMR): largest relative difference 1.8e-6."""
    ref, fit = lavaan[name], fits[name].fit
    compared = 0
    for key, value in ref["fit"].items():
        ours = fit[key.replace(".", "_")]
        if value is None:
            assert key == "chisq.shift.parameters"  # not in lavaan 0.6-14's fitMeasures
            continue
        assert ours == pytest.approx(value, rel=1e-5, abs=1e-6), key
        compared += 1
    assert compared == len(ref["fit"]) - 1
    assert fit["chisq_shift_parameters"] == pytest.approx(ref["test"]["shift.parameter"], rel=1e-5)
    assert fit["chisq_scaling_factor"] == pytest.approx(ref["test"]["scaling.factor"], rel=1e-5)
    assert fit["ntotal"] == ref["ntotal"]


def test_listwise_deletion_counts_rows(fits):
    """bfi_600 has 41 rows with a missing value among the 15 items; lavaan uses 559."""
    assert fits["three"].fit["ntotal"] == 559 and fits["three"].estimator.stats[0].n == 559


@pytest.mark.parametrize("name", MODELS)
def test_parameter_estimates_match_lavaan(fits, lavaan, name):
    """Every row of parameterEstimates (loadings, thresholds, variances, residual variances with
    se 0, scale factors ~*~, intercepts ~1): largest differences est 1.5e-5, se 4.9e-6,
    std.all 3.9e-6 (model "mixed")."""
    ref = pd.DataFrame(lavaan[name]["pe"])
    ours = fits[name].parameters
    m = ref.merge(ours, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(ref) == len(ours[~ours["op"].isin(["==", "<", ">"])])
    for r_col, col in [("est_r", "est"), ("se_r", "se"), ("ci.lower", "ci_lower"), ("ci.upper", "ci_upper"),
                       ("std.all", "std_all")]:
        assert np.nanmax(np.abs(m[r_col].astype(float) - m[col].astype(float))) < 1e-4, col
    free = m["se_r"] > 0
    assert np.abs(m.loc[free, "z_r"] - m.loc[free, "z"]).max() < 1e-3
    assert m.loc[~free, "z"].isna().all() and m.loc[~free, "z_r"].isna().all()
    assert (m["label_r"].fillna("") == m["label"]).all()
    th = ours[ours["op"] == "|"]
    assert list(th["rhs"].iloc[:5]) == [f"t{k}" for k in range(1, 6)] or name == "mixed"
    assert list(parameter_table(fits[name]).columns) == ["lhs", "op", "rhs", "label", "est", "se", "z", "pvalue",
                                                         "ci_lower", "ci_upper", "std_all", "std_all_se"]


@pytest.mark.parametrize("name", MODELS)
def test_standardized_solution_ses_match_lavaan(fits, lavaan, name):
    """standardizedSolution() SEs by the delta method: largest difference 2.8e-7."""
    ref = pd.DataFrame(lavaan[name]["std"])
    m = ref.merge(fits[name].parameters, on=["lhs", "op", "rhs"])
    assert len(m) == len(ref)
    assert np.nanmax(np.abs(m["est.std"].astype(float) - m["std_all"])) < 1e-4
    assert np.nanmax(np.abs(m["se_x"].astype(float) - m["std_all_se"])) < 1e-4


def test_result_is_a_sem_fit(fits):
    fit = fits["three"]
    assert isinstance(fit, EngineFit) and fit.converged and not fit.warnings
    implied, _thresholds = fit.implied[0]
    assert np.allclose(np.diag(implied), 1) and np.allclose(np.diag(fit.stats[0].cov), 1)
    residual = fit.parameters[(fit.parameters["op"] == "~~") & (fit.parameters["lhs"] == "A1")
                              & (fit.parameters["rhs"] == "A1")].iloc[0]
    loading = fit.parameters[(fit.parameters["op"] == "=~") & (fit.parameters["rhs"] == "A1")].iloc[0]
    assert residual["est"] == pytest.approx(1 - loading["std_all"] ** 2) and residual["se"] == 0


# --------------------------------------------------------------------------- recovery


def ordinal_sample(n, loadings, phi, cuts, seed):
    """Cut a multivariate normal with correlation L Phi L' (unit diagonal) at ``cuts``."""
    rng = np.random.default_rng(seed)
    sigma = loadings @ phi @ loadings.T
    np.fill_diagonal(sigma, 1.0)
    z = rng.multivariate_normal(np.zeros(len(sigma)), sigma, size=n)
    x = np.column_stack([np.searchsorted(c, z[:, j]) + 1 for j, c in enumerate(cuts)])
    return pd.DataFrame(x, columns=[f"y{j + 1}" for j in range(len(sigma))])


TRUE_LOADINGS = np.array([[0.8, 0], [0.7, 0], [0.55, 0], [0.85, 0], [0, 0.75], [0, 0.6], [0, 0.8], [0, 0.5]])
TRUE_PHI = np.array([[1.0, 0.4], [0.4, 1.0]])
# Skewed five-point items (most answers in the upper categories), two binary items.
TRUE_CUTS = [np.array([-1.9, -1.2, -0.4, 0.6])] * 6 + [np.array([-0.3]), np.array([0.5])]
RECOVERY_MODEL = "F1 =~ y1 + y2 + y3 + y4\nF2 =~ y5 + y6 + y7 + y8\n"


def test_standardised_loadings_and_thresholds_recover_the_truth():
    """n = 3000: every standardised loading within 0.03 of the truth (mean 0.015), every
    threshold within 3.5 standard errors (mean error 0.03), the factor correlation within 0.03. Pearson correlations of these
    skewed items would shrink the loadings by about 0.05-0.1; treating the binary items as
    continuous, by more."""
    data = ordinal_sample(3000, TRUE_LOADINGS, TRUE_PHI, TRUE_CUTS, seed=11)
    fit = fit_wlsmv(data, RECOVERY_MODEL)
    pe = fit.parameters
    load = pe[pe["op"] == "=~"].set_index("rhs")["std_all"]
    truth = pd.Series(TRUE_LOADINGS.max(axis=1), index=[f"y{j + 1}" for j in range(8)])
    error = np.abs(load[truth.index] - truth)
    assert error.max() < 0.03 and error.mean() < 0.015
    th = pe[pe["op"] == "|"]
    true_th = np.concatenate(TRUE_CUTS)
    th_error = np.abs(th["est"].to_numpy() - true_th)
    assert th_error.mean() < 0.03 and np.all(th_error < 3.5 * th["se"].to_numpy())
    r = pe[(pe["op"] == "~~") & (pe["lhs"] == "F1") & (pe["rhs"] == "F2")]["std_all"].iloc[0]
    assert abs(r - 0.4) < 0.03
    assert fit.fit["pvalue_scaled"] > 0.01  # the model is true


@pytest.mark.slow
def test_confidence_intervals_cover_the_truth():
    """95% intervals over 100 replications (n = 400 each): the loadings (relative to the
    marker) and the factor variances and covariance cover the truth in 92-98% of 900 cases
    (95.1% seen), the thresholds in 93-97% of 2600 (95.1% seen)."""
    lam = TRUE_LOADINGS.max(axis=1)
    truth = {("=~", "F1", "y2"): lam[1] / lam[0], ("=~", "F1", "y3"): lam[2] / lam[0],
             ("=~", "F1", "y4"): lam[3] / lam[0], ("=~", "F2", "y6"): lam[5] / lam[4],
             ("=~", "F2", "y7"): lam[6] / lam[4], ("=~", "F2", "y8"): lam[7] / lam[4],
             ("~~", "F1", "F1"): lam[0] ** 2, ("~~", "F2", "F2"): lam[4] ** 2,
             ("~~", "F1", "F2"): 0.4 * lam[0] * lam[4]}
    true_th = np.concatenate(TRUE_CUTS)
    hits, th_hits = 0, 0
    for rep in range(100):
        pe = fit_wlsmv(ordinal_sample(400, TRUE_LOADINGS, TRUE_PHI, TRUE_CUTS, seed=500 + rep),
                       RECOVERY_MODEL).parameters
        est = pe.set_index(["op", "lhs", "rhs"])
        hits += sum(est.at[key, "ci_lower"] <= value <= est.at[key, "ci_upper"] for key, value in truth.items())
        th = pe[pe["op"] == "|"]
        th_hits += int(np.sum((th["ci_lower"].to_numpy() <= true_th) & (true_th <= th["ci_upper"].to_numpy())))
    assert 0.92 <= hits / (100 * len(truth)) <= 0.98, hits
    assert 0.93 <= th_hits / (100 * len(true_th)) <= 0.97, th_hits


def test_seventy_two_items_fit():
    """The default instrument's size: 72 seven-point items, 8 factors, 450 respondents (its
    cost is measured in benchmarks/, not here)."""
    rng = np.random.default_rng(4)
    lam = np.zeros((72, 8))
    for f in range(8):
        lam[9 * f:9 * f + 9, f] = rng.uniform(0.5, 0.85, 9)
    phi = np.full((8, 8), 0.3) + 0.7 * np.eye(8)
    data = ordinal_sample(450, lam, phi, [np.array([-1.8, -1.1, -0.4, 0.3, 1.0, 1.7])] * 72, seed=5)
    model = "\n".join(f"F{f} =~ " + " + ".join(f"y{9 * f + k + 1}" for k in range(9)) for f in range(8))
    fit = fit_wlsmv(data, model)
    assert fit.converged and fit.fit["df"] == 72 * 71 // 2 - (64 + 8 + 28)
    assert fit.estimator.stats[0].influence.shape == (450, 72 * 6 + 72 * 71 // 2)


# --------------------------------------------------------------------------- bad input


def small_data():
    return reference_data("small")[["A1", "A2", "A3", "A4", "A5"]].dropna().reset_index(drop=True)


SMALL = "agree =~ A1 + A2 + A3 + A4 + A5"


@pytest.mark.parametrize("change, model, message", [
    (lambda d: d.assign(A3=d["A3"] + 0.5), SMALL, "column 'A3' has the value 3.5 in row 1, which is not a whole number"),
    (lambda d: d.assign(A2=np.linspace(0, 1, len(d))), SMALL, "column 'A2' has the value 0.00172117"),
    (lambda d: d.assign(A2=np.arange(len(d))), SMALL, "column 'A2' has 582 distinct values (more than max_categories=20)"),
    (lambda d: d.assign(A4=3), SMALL, "column 'A4' has a single observed category (every value is 3"),
    (lambda d: d.assign(A1="x"), SMALL, "column 'A1' is not numeric"),
    (lambda d: d.assign(A5=np.nan), SMALL, "column 'A5' is entirely missing"),
    (lambda d: d.drop(columns=["A5"]), SMALL, "observed variable(s) of the model not in the data: A5"),
    (None, "f =~ A1 + A2", "not identified: 12 free parameters but only 11 sample statistics"),
])
def test_bad_input_is_refused(change, model, message):
    data = small_data()
    if change is not None:
        data = change(data)
    with pytest.raises(InputError) as exc:
        fit_wlsmv(data, model)
    assert message in str(exc.value)


def test_single_category_after_listwise_deletion():
    data = small_data()
    data.loc[data["A4"] != 3, "A1"] = np.nan  # the complete rows all have A4 = 3
    with pytest.raises(InputError, match="column 'A4' has a single observed category .* 43 rows used"):
        fit_wlsmv(data, SMALL)


def test_missing_other_than_listwise_is_refused():
    with pytest.raises(InputError, match="missing: WLSMV takes 'listwise' .* or 'pairwise', got 'fiml'"):
        fit_wlsmv(small_data(), SMALL, missing="fiml")


def test_ordinal_statistics_need_complete_rows():
    data = small_data()
    data.loc[4, "A2"] = np.nan
    with pytest.raises(InputError, match="column 'A2' has 1 missing value.*row 5"):
        ordinal_statistics(data)


def test_binary_items_with_two_empty_cells_are_refused():
    d = pd.DataFrame({"a": [0, 0, 1, 1] * 25, "b": [0, 0, 1, 1] * 25, "c": [0, 1, 0, 1] * 25})
    with pytest.raises(InputError, match="binary items 'a' and 'b': their 2 x 2 table has two empty cells"):
        ordinal_statistics(d)


def test_nearly_redundant_items_are_warned_about():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(500)
    d = pd.DataFrame({"a": np.digitize(z, [-1, 0, 1]), "b": np.digitize(z + 0.01 * rng.standard_normal(500), [-1, 0, 1]),
                      "c": np.digitize(rng.standard_normal(500), [-0.5, 0.5])})
    with pytest.warns(GapscaleWarning, match="a-b.* is \\(nearly\\) 1"):
        stat = ordinal_statistics(d)
    assert stat.correlation.at["b", "a"] == pytest.approx(0.999)  # lavaan's bound


def test_one_empty_cell_of_a_two_by_two_table_is_corrected_as_lavaan():
    """lavaan moves 0.5 into the empty cell and its opposite, keeping the margins; the
    correlation is the one of the corrected table, finite."""
    d = pd.DataFrame({"a": [0] * 30 + [1] * 70, "b": [0] * 20 + [1] * 80, "c": [0, 1] * 50})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stat = ordinal_statistics(d)
    assert 0.9 < stat.correlation.at["b", "a"] < 0.999


def test_heywood_case_is_flagged():
    """Polychoric correlations .8, .8, .5 make one factor's first loading sqrt(.8 * .8 / .5) = 1.13:
    the residual variance 1 - 1.28 is negative."""
    cov = np.array([[1.0, 0.8, 0.8], [0.8, 1.0, 0.5], [0.8, 0.5, 1.0]])
    data = ordinal_sample(3000, np.linalg.cholesky(cov), np.eye(3), [np.array([-1.0, 0.0, 1.0])] * 3, seed=2)
    with pytest.warns(InadmissibleWarning) as record:
        fit = fit_wlsmv(data, "f =~ y1 + y2 + y3")
    messages = [str(w.message) for w in record]
    assert any(m.startswith("Heywood case: the variance of y1 is negative (-0.2") for m in messages)
    assert any(m.startswith("standardised loading of y1 on f is 1.1") for m in messages)
    assert fit.fit["df"] == 0 and np.isnan(fit.fit["chisq_scaling_factor"])  # saturated: no correction, as lavaan


def test_unidentified_model_is_refused():
    """A second-order factor over two first-order factors is not identified: lavaan cannot
    invert the information matrix; the engine refuses the model naming the parameters involved."""
    data = reference_data("small")[["A1", "A2", "A3", "A4", "A5", "C1", "C2", "C3", "C4", "C5"]].dropna()
    with pytest.raises(InputError, match="not identified: the information matrix is singular.*g =~ consc, g ~~ g"):
        fit_wlsmv(data, "g =~ agree + consc\n" + SMALL + "\nconsc =~ C1 + C2 + C3 + C4 + C5")


def test_pairwise_uses_every_answered_pair():
    """missing = "pairwise" keeps the 18 rows listwise deletion drops (their lavaan comparison:
    tests/test_engine_wls.py)."""
    data = reference_data("small")
    listwise, pairwise = fit_wlsmv(data, SMALL), fit_wlsmv(data, SMALL, missing="pairwise")
    assert listwise.fit["ntotal"] == 582 and pairwise.fit["ntotal"] == 600


# --------------------------------------------------------------------------- the cfa command


def test_cfa_command_with_wlsmv(run_cli, tmp_path, lavaan):
    ref = lavaan["small"]
    (tmp_path / "m.lavaan").write_text(ref["model"])
    code, out, err = run_cli("cfa", "--data", REF / "bfi_600.csv", "--model", tmp_path / "m.lavaan",
                             "--out", tmp_path / "o", "--estimator", "WLSMV", "--missing", "listwise")
    assert code == 0, err
    assert "CFA (WLSMV, listwise) on 582 of 600 rows" in out
    metrics = json.loads((tmp_path / "o" / "cfa.json").read_text())
    assert metrics["estimator"] == "WLSMV" and metrics["admissible"]
    for key in ("chisq_scaled", "cfi_scaled", "rmsea_scaled", "cfi_robust", "srmr"):
        assert metrics["fit"][key] == pytest.approx(ref["fit"][key.replace("_", ".")], rel=1e-5)
    params = pd.read_csv(tmp_path / "o" / "cfa_parameters.csv", keep_default_na=False, na_values=[""])
    assert list(params.columns) == ["lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper",
                                    "std_all", "std_all_se"]
    assert (params["op"] == "|").sum() == 25
    mi = pd.read_csv(tmp_path / "o" / "cfa_modindices.csv")
    assert len(mi) == 10 and list(mi.columns) == ["lhs", "op", "rhs", "mi", "epc", "sepc_all"]
    resid = pd.read_csv(tmp_path / "o" / "cfa_residuals.csv", index_col=0)
    assert np.abs(resid.to_numpy() - np.array(ref["std_resid"])).max() < 1e-3


@pytest.mark.parametrize("args, message", [
    (("--estimator", "WLSMV", "--missing", "fiml"), "cfa.missing: 'fiml' is not available with estimator WLSMV"),
    (("--estimator", "WLSMV", "--missing", "listwise"), "column 'A3' has the value 3.5 in row 1"),
])
def test_cfa_command_with_wlsmv_bad_input(run_cli, tmp_path, args, message):
    data = small_data().assign(A3=lambda d: d["A3"] + 0.5)
    (tmp_path / "d.csv").write_text(data.to_csv(index=False))
    (tmp_path / "m.lavaan").write_text(SMALL)
    code, out, err = run_cli("cfa", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                             "--out", tmp_path / "o", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_cfa_command_with_continuous_and_ordered_items(run_cli, tmp_path):
    """--ordered names some items, the others are continuous (lavaan's ordered = c(...)): the
    fit of tests/reference/engine_wls_mixed.json; the standardized residuals lavaan does not
    compute for such a model are NaN, the reason in cfa.json's note."""
    ref = json.loads((REF / "engine_wls_mixed.json").read_text())["mixed_cfa_wlsmv"]
    (tmp_path / "m.lavaan").write_text(ref["model"])
    code, out, err = run_cli("cfa", "--data", REF / "hs_mixed.csv", "--model", tmp_path / "m.lavaan",
                             "--out", tmp_path / "o", "--estimator", "WLSMV", "--ordered", "x1,x2,x3")
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "cfa.json").read_text())
    for key in ("chisq", "chisq_scaled", "cfi_scaled", "rmsea_scaled", "srmr"):
        assert metrics["fit"][key] == pytest.approx(ref["fit"][key.replace("_", ".")], rel=5e-7)
    assert "continuous and ordered variables are not available" in metrics["note"]
    resid = pd.read_csv(tmp_path / "o" / "cfa_residuals.csv", index_col=0)
    assert resid.isna().all().all() and list(resid.columns) == [f"x{k}" for k in range(1, 7)]
