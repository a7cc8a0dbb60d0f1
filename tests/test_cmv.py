"""Common-method variance (analysis.cmv).

- Lindell & Whitney (2001): a hand-computed worked example (stated in the test).
- CFA marker technique (Williams, Hartman & Cavazotte 2010): on data simulated with a planted
  method factor loading every item at .30 the method effect is found (Baseline vs Method-C,
  p < .01); with no method factor it is not (p > .05); the chi-squares of the whole model
  sequence agree with lavaan on one simulated data set (tests/reference/cmv.R -> cmv.json).
- Unmeasured method factor: the free-loading model is not identified on data without a method
  effect (the loadings sit at zero), the variant with fixed substantive correlations is admissible.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cmv import (lindell_whitney, lindell_whitney_adjust, marker_correlation, marker_models,
                          marker_technique, unmeasured_method_factor)
from analysis.errors import InputError
from analysis.sem.api import fit_model

REF = Path(__file__).parent / "reference"
CONSTRUCTS = {"F1": ["a1", "a2", "a3", "a4"], "F2": ["b1", "b2", "b3", "b4"], "F3": ["c1", "c2", "c3", "c4"]}
MARKER_ITEMS = ["m1", "m2", "m3", "m4"]


def simulate(n: int, method_loading: float, seed: int, loading: float = 0.7) -> pd.DataFrame:
    """Three correlated factors (.3, .4, .5) with four items each and a marker construct with
    four items, uncorrelated with them; a method factor loads every item (the marker's too) at
    ``method_loading``; standardised items (error variance 1 - loading^2 - method^2)."""
    rng = np.random.default_rng(seed)
    phi = np.array([[1, .3, .4, 0], [.3, 1, .5, 0], [.4, .5, 1, 0], [0, 0, 0, 1]])
    f = rng.multivariate_normal(np.zeros(4), phi, size=n)
    method = rng.standard_normal(n)
    cols = {}
    groups = list(CONSTRUCTS.values()) + [MARKER_ITEMS]
    err_sd = np.sqrt(1 - loading ** 2 - method_loading ** 2)
    for k, items in enumerate(groups):
        for item in items:
            cols[item] = loading * f[:, k] + method_loading * method + err_sd * rng.standard_normal(n)
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------- Lindell & Whitney


def test_lindell_whitney_worked_example():
    # by hand: r_U = .50, r_M = .10, N = 103: r_A = .40/.90 = 4/9 = 0.444...;
    # t = (4/9) / sqrt((1 - 16/81)/100) = (4/9) / (sqrt(65)/90) = 40/sqrt(65) = 4.96139...
    out = lindell_whitney_adjust([0.5, 0.1, 0.05], 0.1, 103)
    assert out["r_adjusted"].tolist() == pytest.approx([4 / 9, 0.0, -0.05 / 0.9], abs=1e-15)
    assert out.loc[0, "t"] == pytest.approx(40 / np.sqrt(65), rel=1e-13)
    assert out.loc[0, "df"] == 100
    from scipy import stats
    assert out.loc[0, "pvalue"] == pytest.approx(2 * stats.t.sf(40 / np.sqrt(65), 100), rel=1e-12)
    assert out.loc[1, "t"] == 0 and out.loc[1, "pvalue"] == pytest.approx(1.0)


def test_marker_correlation_smallest_positive():
    assert marker_correlation([0.2, -0.05, 0.08, 0.3]) == 0.08
    with pytest.raises(InputError, match="none is positive"):
        marker_correlation([-0.1, 0.0])


def test_lindell_whitney_on_data_matches_formula():
    d = simulate(300, 0.3, seed=11)
    out = lindell_whitney(d, "m1", ["a1", "b1", "c1"])
    r = d[["m1", "a1", "b1", "c1"]].corr()
    r_m = min(v for v in r.loc["m1", ["a1", "b1", "c1"]] if v > 0)
    assert out["r_marker"].iloc[0] == pytest.approx(r_m, abs=1e-15)
    row = out[(out.variable_1 == "a1") & (out.variable_2 == "c1")].iloc[0]
    assert row["r_adjusted"] == pytest.approx((r.loc["a1", "c1"] - r_m) / (1 - r_m), abs=1e-14)
    assert len(out) == 3 and row["df"] == 297
    with pytest.raises(InputError, match="not found"):
        lindell_whitney(d, "m1", ["a1", "zz"])


# --------------------------------------------------------------------------- marker technique


def test_marker_technique_finds_planted_method_effect():
    d = simulate(5000, 0.3, seed=3)
    res = marker_technique(d, CONSTRUCTS, MARKER_ITEMS)
    first = res.tests.iloc[0]
    assert first["restricted"] == "baseline" and first["general"] == "method_c" and first["delta_df"] == 1
    assert first["delta_pvalue"] < 0.01 and res.summary["method_detected"]
    # the marker factor is the marker items' common part, .7 T + .3 M (variance .58), so it
    # carries the method M with correlation .3/sqrt(.58); a substantive item's standardised
    # loading on it is then .3 * .3/sqrt(.58) = .118 in the population, its square .0140
    assert res.summary["method_variance_share"] == pytest.approx(0.09 ** 2 / 0.58, abs=0.004)  # seed 3: .0125
    assert list(res.fits["model"]) == ["cfa", "baseline", "method_c", "method_u", "method_r"]


def test_marker_technique_no_method_effect():
    d = simulate(5000, 0.0, seed=3)
    res = marker_technique(d, CONSTRUCTS, MARKER_ITEMS)
    assert res.tests.iloc[0]["delta_pvalue"] > 0.05 and not res.summary["method_detected"]
    assert res.summary["method_variance_share"] < 0.005


def test_marker_technique_with_fiml():
    # 3% of the cells missing at random: FIML's ML chi-squares, the planted effect still found
    d = simulate(1000, 0.3, seed=3)
    d = d.mask(np.random.default_rng(1).random(d.shape) < 0.03)
    res = marker_technique(d, CONSTRUCTS, MARKER_ITEMS, missing="fiml")
    assert res.summary["method_detected"] and res.tests.iloc[0]["delta_pvalue"] < 0.01
    assert res.fits["converged"].all()


def test_marker_models_reject_overlap():
    with pytest.raises(InputError, match="must not be part"):
        marker_models(CONSTRUCTS, ["a1", "m1"])


# --------------------------------------------------------------------------- against lavaan


@pytest.fixture(scope="module")
def reference():
    return json.loads((REF / "cmv.json").read_text())


@pytest.fixture(scope="module")
def marker_fit():
    return marker_technique(pd.read_csv(REF / "cmv.csv"), CONSTRUCTS, MARKER_ITEMS)


@pytest.fixture(scope="module")
def ulmc_fit():
    return unmeasured_method_factor(pd.read_csv(REF / "cmv.null.csv"), CONSTRUCTS)


def test_marker_sequence_matches_lavaan(reference, marker_fit):
    # the syntax strings are the ones cmv.R fitted (the fixed values: this engine's CFA estimates)
    stored = json.loads((REF / "cmv.models.json").read_text())
    import re
    rounded = lambda t: re.sub(r"\d+\.\d+", lambda m: f"{float(m.group()):.5f}", t)  # noqa: E731 (the optimiser tolerance)
    for name, text in marker_fit.models.items():
        assert rounded(text) == rounded(stored[f"marker_{name}"])
    fits = marker_fit.fits.set_index("model")
    for name in ["cfa", "baseline", "method_c", "method_u", "method_r"]:
        r = reference["models"][f"marker_{name}"]
        assert fits.loc[name, "df"] == r["df"], name
        assert fits.loc[name, "chisq"] == pytest.approx(r["chisq"], abs=1e-4), name
    # the values Baseline fixes: the CFA's marker loadings and error variances, as lavaan's
    for item in MARKER_ITEMS:
        assert f"{reference['cfa_marker_loadings'][item]:.17g}"[:7] in marker_fit.models["baseline"]
    tests = marker_fit.tests
    assert tests["delta_chisq"].iloc[0] == pytest.approx(reference["models"]["marker_baseline"]["chisq"]
                                                         - reference["models"]["marker_method_c"]["chisq"], abs=1e-4)


def test_cfa_marker_values_match_lavaan(reference, marker_fit):
    from analysis.cmv import marker_models
    p = fit_model(marker_models(CONSTRUCTS, MARKER_ITEMS)["cfa"], pd.read_csv(REF / "cmv.csv")).parameters
    for item in MARKER_ITEMS:
        lam = p[(p.op == "=~") & (p.lhs == "MARKER") & (p.rhs == item)]["est"].item()
        theta = p[(p.op == "~~") & (p.lhs == item) & (p.rhs == item)]["est"].item()
        assert lam == pytest.approx(reference["cfa_marker_loadings"][item], abs=1e-5)
        assert theta == pytest.approx(reference["cfa_marker_residuals"][item], abs=1e-5)


# --------------------------------------------------------------------------- unmeasured method factor


def test_unmeasured_method_factor_admissible_variant(reference, ulmc_fit):
    t = ulmc_fit.table.set_index("variant")
    # free loadings on data without a method effect: not an admissible solution (the engine finds
    # the information matrix singular; lavaan stops at negative residual variances)
    assert not t.loc["free", "admissible"]
    assert reference["models"]["ulmc_free"]["warnings"]
    # the substantive correlations fixed at the CFA's: identified, admissible, lavaan's chi-square
    assert t.loc["fixed_correlations", "admissible"] and t.loc["fixed_correlations", "reasons"] == ""
    assert ulmc_fit.recommended == "fixed_correlations"
    r = reference["models"]
    assert t.loc["fixed_correlations", "chisq"] == pytest.approx(r["ulmc_fixed_correlations"]["chisq"], abs=1e-4)
    assert t.loc["fixed_correlations", "df"] == r["ulmc_fixed_correlations"]["df"]
    assert t.loc["fixed_correlations", "delta_chisq"] == pytest.approx(
        r["ulmc_cfa_fixed"]["chisq"] - r["ulmc_fixed_correlations"]["chisq"], abs=1e-4)
    assert t.loc["fixed_correlations", "delta_df"] == r["ulmc_cfa_fixed"]["df"] - r["ulmc_fixed_correlations"]["df"]
    # no method effect planted: the admissible variant does not find one
    assert t.loc["fixed_correlations", "delta_pvalue"] > 0.05
    assert t.loc["equal", "chisq"] == pytest.approx(r["ulmc_equal"]["chisq"], abs=1e-4)


def test_unmeasured_method_factor_subset_of_variants(reference):
    res = unmeasured_method_factor(pd.read_csv(REF / "cmv.null.csv"), CONSTRUCTS, variants=["fixed_correlations"])
    assert list(res.table["variant"]) == ["fixed_correlations"] and res.recommended == "fixed_correlations"
    assert res.table["chisq"].iloc[0] == pytest.approx(reference["models"]["ulmc_fixed_correlations"]["chisq"],
                                                       abs=1e-4)
    with pytest.raises(InputError, match="variants"):
        unmeasured_method_factor(pd.read_csv(REF / "cmv.null.csv"), CONSTRUCTS, variants=["wrong"])


def test_inadmissible_reasons_name_the_parameters():
    from dataclasses import replace

    from analysis.cmv import _inadmissible  # noqa: PLC2701 - the module's own test
    fit = fit_model("F1 =~ a1 + a2 + a3 + a4\nF2 =~ b1 + b2 + b3 + b4\n", simulate(1000, 0.0, seed=3))
    assert _inadmissible(fit) == []
    p = fit.parameters.copy()
    # a Heywood case planted in the estimates: F1's variance negative, a2's loading beyond 1
    p.loc[(p.op == "~~") & (p.lhs == "F1") & (p.rhs == "F1"), "est"] = -0.2
    p.loc[(p.op == "=~") & (p.rhs == "a2"), "std_all"] = 1.05
    reasons = _inadmissible(replace(fit, parameters=p))
    assert reasons[:2] == ["negative variance of F1 (-0.200)", "standardised loading of a2 on F1 is 1.050"]
    # the non-positive-definite direction is named by its latents: F1's negative variance
    assert reasons[2].startswith("the latent covariance matrix is not positive definite (smallest eigenvalue -")
    assert "its direction involves F1" in reasons[2]
    # many loadings beyond 1 are one reason: their count and the largest
    p.loc[(p.op == "=~") & p.rhs.isin(["a3", "b2"]), "std_all"] = [1.01, -1.2]
    reasons = _inadmissible(replace(fit, parameters=p))
    assert reasons[1] == "3 standardised loadings beyond 1 (largest: b2 on F2, -1.200)"


# --------------------------------------------------------------------------- the schema's marker flag


def _instrument_doc(marker):
    doc = {"name": "Marker test", "scale": {"type": "likert", "min": 1, "max": 5},
           "constructs": [{"id": "A", "items": [{"id": "A_1"}, {"id": "A_2"}]},
                          {"id": "B", "items": [{"id": "B_1"}, {"id": "B_2"}]},
                          {"id": "M", "items": [{"id": "M_1"}, {"id": "M_2"}]}]}
    if marker is not None:
        doc["constructs"][2]["marker"] = marker
    return doc


def test_schema_marker_flag():
    from instrument import InstrumentError, parse_instrument
    inst = parse_instrument(_instrument_doc(True))
    assert inst.construct("M").marker and not inst.construct("A").marker
    assert inst.marker_ids == ("M",)
    assert parse_instrument(_instrument_doc(None)).marker_ids == ()
    with pytest.raises(InstrumentError) as exc:
        parse_instrument(_instrument_doc("yes"), source="t.yaml")
    assert any("constructs[2].marker" in p and "true or false" in p for p in exc.value.problems)


def test_schema_marker_kept_out_of_structural_model(tmp_path):
    from dataclasses import replace

    from instrument import parse_instrument
    from instrument.schema import model_problems
    inst = parse_instrument(_instrument_doc(True))
    measurement = "A =~ A_1 + A_2\nB =~ B_1 + B_2\nM =~ M_1 + M_2\n"
    good, bad = tmp_path / "good.lav", tmp_path / "bad.lav"
    good.write_text(measurement + "B ~ A\n")
    bad.write_text(measurement + "B ~ A + M\n")
    assert model_problems(replace(inst, model=good)) == []
    problems = model_problems(replace(inst, model=bad))
    assert len(problems) == 1 and "'M' is a marker construct" in problems[0]


# --------------------------------------------------------------------------- the data generator's method factor


def _marker_instrument():
    from instrument import parse_instrument
    return parse_instrument({"name": "CMV test", "scale": {"type": "likert", "min": 1, "max": 7},
                             "constructs": [{"id": c, "items": [{"id": f"{c}_{k}"} for k in range(1, 5)]}
                                            for c in ("X", "Y", "Z")]
                             + [{"id": "MARK", "marker": True, "items": [{"id": f"MARK_{k}"} for k in range(1, 5)]}]})


def _simulated(method: dict, n: int = 3000, seed: int = 5) -> pd.DataFrame:
    """The data generator's route: X -> Y -> Z (.30 each), MARK exogenous and uncorrelated with
    X; ``method``: simulate.method_factor (empty: none). No defects, 7-point answers."""
    from analysis.simulate import parse_simulation_params, simulate_study
    inst = _marker_instrument()
    params = parse_simulation_params({
        "n": n, "loadings": {"default": 0.75}, "structural": {"Y": {"X": 0.3}, "Z": {"Y": 0.3}},
        "exogenous_correlation": 0.0, "defects": {}, "personal_data": False, "method_factor": method})
    study = simulate_study(inst, params, seed=seed)
    return study.responses[list(inst.item_ids)].astype(float), study.truth


SIM_CONSTRUCTS = {c: [f"{c}_{k}" for k in range(1, 5)] for c in ("X", "Y", "Z")}
SIM_MARKER = [f"MARK_{k}" for k in range(1, 5)]


@pytest.fixture(scope="module")
def planted():
    data, truth = _simulated({"default": 0.4})
    return data, truth, marker_technique(data, SIM_CONSTRUCTS, SIM_MARKER, marker="MARK")


def test_simulate_method_factor_truth_and_validation(planted):
    from analysis.simulate import parse_simulation_params, population_model
    _, truth, _ = planted
    assert truth["population"]["method_loadings"]["X_1"] == 0.4 and truth["population"]["method_loadings"]["MARK_4"] == 0.4
    assert "METHOD =~ 0.4*X_1" in truth["population"]["lavaan"]
    assert "X_1 ~~ 0.27749999999999997*X_1" in truth["population"]["lavaan"]  # 1 - .75^2 - .4^2
    with pytest.raises(InputError, match="method_factor.default"):
        parse_simulation_params({"method_factor": {"default": 1.2}})
    with pytest.raises(InputError, match="squares must add up"):
        population_model(_marker_instrument(), parse_simulation_params({"loadings": {"default": 0.8},
                                                                        "method_factor": {"default": 0.7}}), None)
    with pytest.raises(InputError, match="not an item or construct"):
        population_model(_marker_instrument(), parse_simulation_params({"method_factor": {"NOPE": 0.2}}), None)
    # without a method factor, the generator draws as before (no method column in the truth)
    assert _simulated({}, n=50)[1]["population"]["method_loadings"] == {}


def test_simulated_method_effect_found_by_marker_technique(planted):
    _, _, res = planted
    assert res.summary["method_detected"] and res.tests.iloc[0]["delta_pvalue"] < 1e-6
    # planted: every item .4 on the method; the marker factor carries it with correlation
    # .4/sqrt(.75^2 + .4^2) = .47, so a substantive item's loading on it is about .4 * .47 = .19
    # (on the latent-response scale; 7-point answers attenuate it a little)
    assert 0.10 < res.method_loadings["std_all"].mean() < 0.25


def test_simulated_without_method_effect_not_found():
    data, _ = _simulated({})
    res = marker_technique(data, SIM_CONSTRUCTS, SIM_MARKER, marker="MARK")
    assert res.tests.iloc[0]["delta_pvalue"] > 0.05 and not res.summary["method_detected"]
    assert res.summary["method_variance_share"] < 0.005


def test_method_adjusted_paths_closer_to_truth(planted):
    from analysis.cmv import method_adjusted_paths
    data, _, res = planted
    model = ("X =~ X_1 + X_2 + X_3 + X_4\nY =~ Y_1 + Y_2 + Y_3 + Y_4\nZ =~ Z_1 + Z_2 + Z_3 + Z_4\n"
             "MARK =~ MARK_1 + MARK_2 + MARK_3 + MARK_4  # dropped: the marker is added with its fixed values\n"
             "Y ~ X\nZ ~ Y\n")
    paths, info = method_adjusted_paths(data, model, res, marker="MARK")
    assert list(paths["lhs"] + paths["op"] + paths["rhs"]) == ["Y~X", "Z~Y"] and info["converged"]
    # true standardised paths .30; the planted method effect (.4 on every item) inflates them
    # (each latent picks up the method's .4^2/.75^2 share, correlation ~(.3 + .28)/(1.28))
    assert (paths["std_all_unadjusted"] > 0.40).all()
    assert ((paths["std_all_adjusted"] - 0.3).abs() < (paths["std_all_unadjusted"] - 0.3).abs()).all()
    # the marker factor carries only its share of the method (correlation .47 with it), so the
    # adjustment is partial (Williams et al. 2010: a marker catches the method variance it shares)
    assert (paths["std_all_difference"] < -0.015).all()
    assert info["adjusted_df"] == info["unadjusted_df"]  # only fixed values added
