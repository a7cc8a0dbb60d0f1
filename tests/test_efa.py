"""EFA against psych (tests/reference/efa.R on psych::bfi), recovery on simulated data, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import efa as fa
from analysis.simulate import parse_simulation_params, simulate_study

REF = Path(__file__).parent / "reference"
CASES = {"minres_oblimin": ("minres", "oblimin"), "ml_promax": ("ml", "promax"), "pa_varimax": ("pa", "varimax")}


@pytest.fixture(scope="module")
def psych():
    return json.loads((REF / "efa.json").read_text())


@pytest.fixture(scope="module")
def r():
    return pd.read_csv(REF / "bfi_600.csv").corr()


def test_pairwise_correlations_match_r(r, psych):
    assert np.abs(r.to_numpy() - np.array(psych["r"])).max() < 1e-12


def test_kmo_bartlett_map_kaiser_match_psych(r, psych):
    msa, msai = fa.kmo(r)
    assert msa == pytest.approx(psych["kmo"]["msa"], abs=1e-10)
    assert np.abs(msai.to_numpy() - psych["kmo"]["msai"]).max() < 1e-10
    b = fa.bartlett_sphericity(r, psych["n"])
    assert b["chisq"] == pytest.approx(psych["bartlett"]["chisq"], abs=1e-6) and b["df"] == psych["bartlett"]["df"]
    m = fa.velicer_map(r, 8)
    assert np.abs(m["map"].to_numpy()[1:9] - psych["map"]).max() < 1e-10
    assert fa.kaiser_rule(r) == psych["kaiser"]


@pytest.mark.parametrize("method", ["minres", "ml", "pa"])
def test_unrotated_extraction_matches_psych(r, psych, method):
    ex = fa.extract(r.to_numpy(), 5, method)
    assert ex.converged
    assert np.abs(ex.loadings - np.array(psych[f"{method}_unrotated"])).max() < 1e-4


@pytest.mark.parametrize("case", sorted(CASES))
def test_rotated_solution_matches_psych(r, psych, case):
    """Largest differences seen: minres+oblimin 2e-6, ml+promax 3e-4 (complexity), pa+varimax 1e-14."""
    ref = psych[case]
    res = fa.efa(r, 5, *CASES[case], n_obs=psych["n"])
    tol = 1e-3
    assert np.abs(res.loadings.to_numpy() - np.array(ref["loadings"])).max() < tol
    assert np.abs(res.phi.to_numpy() - np.array(ref["phi"])).max() < tol
    assert np.abs(res.communalities.to_numpy() - ref["communality"]).max() < tol
    assert np.abs(res.uniquenesses.to_numpy() - ref["uniquenesses"]).max() < tol
    assert np.abs(res.complexity.to_numpy() - ref["complexity"]).max() < tol
    assert np.abs(res.variance.to_numpy().T - np.array(ref["vaccounted"])).max() < tol
    fit = res.fit
    assert fit["df"] == ref["dof"]
    assert fit["chisq"] == pytest.approx(ref["chisq"], abs=1e-3)
    assert fit["tli"] == pytest.approx(ref["tli"], abs=1e-3)
    assert [fit["rmsea"], fit["rmsea_ci_lower"], fit["rmsea_ci_upper"]] == pytest.approx(ref["rmsea"], abs=1e-3)
    assert fit["bic"] == pytest.approx(ref["bic"], abs=1e-3)
    assert fit["rms"] == pytest.approx(ref["rms"], abs=1e-6)


def test_simulated_study_structure_is_recovered(default_instrument, default_params):
    """Parallel analysis finds the population's constructs; >= 95% of items load on their own.

    N = 900: since the reasons of co-destruction that arise at the same time correlate .40
    (params simulate.exogenous_correlations), 600 respondents leave the 18th factor's reduced
    eigenvalue within the random data's 95th percentile for this seed (17 found)."""
    params = parse_simulation_params({**default_params["simulate"], "n": 900})
    study = simulate_study(default_instrument, params, seed=11)
    clean = study.respondents["clean"].to_numpy()
    items = list(default_instrument.item_ids)
    x = study.responses.loc[clean, items].astype(float)
    x = x.where(x.isin(range(1, 8)))
    for item in default_instrument.items:
        if item.reverse:
            x[item.id] = 8 - x[item.id]
    corr = lambda d: d.astype(float).corr().to_numpy()  # noqa: E731
    table = fa.parallel_analysis(x, corr, np.random.default_rng(1), n_iter=10)
    assert fa.parallel_suggestion(table, "fa") == len(default_instrument.constructs)
    res = fa.efa(x.corr(), len(default_instrument.constructs), "minres", "oblimin", n_obs=len(x))
    diag = fa.item_diagnostics(res, {i.id: i.construct for i in default_instrument.items})
    share, matched = fa.structure_agreement(diag)
    assert share >= 0.95
    assert matched["factor"].is_unique


def test_item_diagnostics_flag_with_reasons():
    loadings = pd.DataFrame([[0.8, 0.1], [0.45, 0.05], [0.6, 0.35], [0.1, 0.7]], index=list("abcd"),
                            columns=["F1", "F2"])
    h2 = pd.Series([0.65, 0.2, 0.5, 0.5], index=list("abcd"))
    res = fa.EFAResult(loadings, h2, 1 - h2, h2, pd.DataFrame(np.eye(2)), pd.DataFrame(), {}, "minres", "none", True)
    d = fa.item_diagnostics(res, {"a": "A", "b": "A", "c": "A", "d": "B"}).set_index("item")
    assert not d.at["a", "flagged"]
    assert d.at["b", "reasons"] == "primary loading 0.45 < 0.5; communality 0.20 < 0.4"
    assert d.at["c", "reasons"] == "cross-loading 0.35 on F2 > 0.3"
    assert d.at["d", "primary_factor"] == "F2"
    share, matched = fa.structure_agreement(d.reset_index())
    assert share == 1.0 and dict(zip(matched["construct"], matched["factor"])) == {"A": "F1", "B": "F2"}


def test_too_many_factors_is_a_clear_error(r):
    with pytest.raises(ValueError, match="22 factors for 25 items are not identified .* at most 18 factors"):
        fa.efa(r, 22)


def test_heywood_case_is_flagged():
    # One factor reproduces these exactly only with lambda_b^2 = .95 * .97 / .90 > 1.
    r = np.array([[1, .95, .90], [.95, 1, .97], [.90, .97, 1]])
    with pytest.warns(fa.HeywoodWarning, match="Heywood case: communality >= 1 for b"):
        fa.efa(pd.DataFrame(r, index=list("abc"), columns=list("abc")), 1, "minres", "none")


# --------------------------------------------------------------------------- the stage


def write(tmp_path, frame, name="efa.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def bfi_model(tmp_path):
    model = tmp_path / "bfi.lavaan"
    model.write_text("\n".join(f"{f} =~ " + " + ".join(f"{f}{k}" for k in range(1, 6)) for f in "ACENO") + "\n")
    return model


def test_efa_stage_on_public_data(run_cli, tmp_path, bfi_model):
    code, out, err = run_cli("efa", "--data", REF / "bfi_600.csv", "--model", bfi_model, "--out", tmp_path / "o",
                             "--n-factors", "5", "--correlation", "pearson")
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "efa.json").read_text())
    assert m["n_factors"]["used"] == 5 and m["n"] == 600 and m["items"] == 25
    assert m["structure_agreement"] >= 0.8
    loadings = pd.read_csv(tmp_path / "o" / "efa_loadings.csv")
    assert list(loadings.columns) == ["item", "F1", "F2", "F3", "F4", "F5", "h2", "u2", "complexity"]
    # Sorted as psych::fa.sort: grouped by primary factor in factor order, strongest first.
    factors = ["F1", "F2", "F3", "F4", "F5"]
    primary = loadings[factors].abs().idxmax(axis=1).map(factors.index)
    assert primary.is_monotonic_increasing
    strength = loadings[factors].abs().max(axis=1)
    for _, group in strength.groupby(primary):
        assert group.is_monotonic_decreasing


@pytest.mark.parametrize("change, message", [
    (lambda d: d.head(20), "20 respondents for 25 items"),
    (lambda d: d.assign(A1=3), "item(s) without variance: A1"),
    (lambda d: d.assign(A2=d["A1"]), "the correlation matrix is singular: items A1 and A2 correlate 1.0000"),
    (lambda d: d.assign(A3="x"), "non-numeric values in A3"),
    (lambda d: d.drop(columns=["O5"]), "item column(s) not in the data: O5"),
])
def test_efa_bad_input_is_one_line(run_cli, tmp_path, bfi_model, change, message):
    data = change(pd.read_csv(REF / "bfi_600.csv").dropna())
    code, out, err = run_cli("efa", "--data", write(tmp_path, data), "--model", bfi_model, "--out", tmp_path / "o",
                             "--correlation", "pearson", "--n-factors", "5")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_efa_too_many_factors_from_cli(run_cli, tmp_path, bfi_model):
    code, out, err = run_cli("efa", "--data", REF / "bfi_600.csv", "--model", bfi_model, "--out", tmp_path / "o",
                             "--correlation", "pearson", "--n-factors", "30")
    assert code == 2 and "not identified" in err


@pytest.fixture
def hs_model(tmp_path):
    model = tmp_path / "hs.lavaan"
    model.write_text("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n")
    return model


def hs_efa(run_cli, tmp_path, hs_model, *args, params=None):
    extra = []
    if params is not None:
        path = tmp_path / "params.yaml"
        path.write_text(params)
        extra = ["--params", path]
    return run_cli("efa", "--data", REF / "holzinger_swineford.csv", "--model", hs_model, "--out", tmp_path / "o",
                   *extra, *args)


@pytest.mark.parametrize("args, params, message", [
    (["--n-factors", "100"], None,
     "efa.n_factors (--n-factors) = 100: at most 5 factors can be extracted from 9 items"),
    (["--n-factors", "6"], None, "efa.n_factors (--n-factors) = 6: at most 5 factors can be extracted from 9 items"),
    (["--n-factors", "many"], None, "efa.n_factors (--n-factors): 'auto' (parallel analysis) or a whole number >= 1, "
                                    "got 'many'"),
    ([], "efa:\n  parallel_percentile: high\n", "efa.parallel_percentile: a number in (0, 100]"),
    ([], "efa:\n  parallel_percentile: 0\n", "efa.parallel_percentile: a number in (0, 100]"),
    ([], "efa:\n  parallel_smc: 'yes'\n", "efa.parallel_smc: true (squared multiple correlations) or false"),
    ([], "efa:\n  parallel_iterations: 0\n", "efa.parallel_iterations: a whole number from 1 to 10,000"),
    ([], "efa:\n  parallel_iterations: 100000000\n", "efa.parallel_iterations: a whole number from 1 to 10,000"),
    ([], "efa:\n  min_loading: high\n", "efa.min_loading: a number from 0 to 1, got 'high'"),
])
def test_efa_settings_errors_name_key_and_value(run_cli, tmp_path, hs_model, args, params, message):
    code, out, err = hs_efa(run_cli, tmp_path, hs_model, *args, params=params)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in err
    assert not (tmp_path / "o" / "efa.json").exists()


def test_efa_stage_parallel_analysis_as_psych(run_cli, tmp_path, hs_model):
    """Default: one-factor minres communalities; psych::fa.parallel gives 3 factors and 3
    components on these data (tests/reference/parallel.json); parallel_smc switches."""
    from analysis.efa import PARALLEL_COLUMNS

    code, out, err = hs_efa(run_cli, tmp_path, hs_model)
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "efa.json").read_text())
    nf = m["n_factors"]
    assert (nf["parallel_fa"], nf["parallel_pc"], nf["used"]) == (3, 3, 3)
    assert nf["rule"] == "parallel analysis (fa, minres communalities)"
    scree = pd.read_csv(tmp_path / "o" / "efa_scree.csv")
    assert list(scree.columns) == PARALLEL_COLUMNS and len(scree) == 9
    psych = json.loads((REF / "parallel.json").read_text())["datasets"]["hs"]
    assert np.abs(scree["observed_fa"].to_numpy() - psych["fa_values"]).max() < 1e-6
    for args, params in ((["--parallel-smc"], None), ([], "efa:\n  parallel_smc: true\n")):
        code, out, err = hs_efa(run_cli, tmp_path, hs_model, *args, params=params)
        assert code == 0, err
        m = json.loads((tmp_path / "o" / "efa.json").read_text())
        assert m["n_factors"]["rule"] == "parallel analysis (fa, SMC communalities)"
        scree = pd.read_csv(tmp_path / "o" / "efa_scree.csv")
        assert np.abs(scree["observed_fa"].to_numpy() - psych["fa_values_smc"]).max() < 1e-10
