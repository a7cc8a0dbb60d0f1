"""The robust estimators of the SEM engine (analysis/sem/robust.py: MLR and MLM over
analysis.sem.engine.fit) against lavaan 0.6-14, fed lavaan's own parameter tables
(tests/reference/engine_robust.R writes them with the reference numbers into engine_robust.json):
estimates, robust SEs, the scaled tests and their scaling factors, every scaled and robust fit
measure, and the Satorra-Bentler (2001) scaled difference test of the 2-group invariance steps.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.engine import fit
from analysis.sem.partable import lavaanify
from analysis.sem.robust import fit_measures, scaled_difference

REF = Path(__file__).parent / "reference"
ROBUST = json.loads((REF / "engine_robust.json").read_text())
DATA = {"hs": pd.read_csv(REF / "hs_engine.csv"), "pd": pd.read_csv(REF / "political_democracy.csv")}
ESTIMATOR = {"yuan.bentler.mplus": "MLR", "satorra.bentler": "MLM"}
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"

# The tightest tolerances the agreement allows. The estimates differ by lavaan's own convergence
# error (its nlminb stops at a relative change of 1e-10 in F; the engine converges further, see
# tests/test_engine.py): 1e-6 on HS, 1.6e-5 for the configural 2-group model, 5e-5 with the
# nonlinear constraint and 1.2e-4 for one residual covariance of Political Democracy (a flat
# direction), 1e-4 for the intercepts of the 2-group MIMIC (lavaan's chi-square 3.6e-8 above the
# engine's; nlminb does not converge with a tighter rel.tol); the robust SEs and the scaling factors
# follow them. Estimates and std.all share a tolerance.
EST_TOL = {"poldem_mlr": 2.5e-4, "poldem_mlm": 2.5e-4, "constr2_mlm": 1e-4, "mg_configural_mlr": 3e-5,
           "mg_configural_mlm": 3e-5, "constr_mlr": 3e-5, "mg_mimic_mlr": 1.5e-4, "mg_mimic_mlm": 1.5e-4}
SE_TOL = {"poldem_mlr": 4e-5, "mg_configural_mlr": 3e-5, "constr2_mlm": 1.5e-5, "mg_mimic_mlr": 8e-5,
          "mg_mimic_mlm": 1.5e-5}
STD_SE_TOL = {"mg_configural_mlr": 1e-5, "poldem_mlm": 4e-6, "mg_configural_mlm": 4e-6, "mg_mimic_mlr": 8e-5,
              "mg_mimic_mlm": 1e-5}
# Scaled statistics, scaling factors and scaled/robust fit measures: relative (to max(1, |x|)).
FIT_RTOL = {"constr2_mlm": 1e-5}
FIT_RTOL_DEFAULT = 3e-6


def _rtol(name: str) -> float:
    return FIT_RTOL.get(name, FIT_RTOL_DEFAULT)


def _fit(name: str, estimator: str | None = None):
    case = ROBUST["cases"][name]
    return fit(pd.DataFrame(case["partable"]), DATA[case["data"]], group=case["group"] or None,
               group_labels=case["group_labels"] or None,
               estimator=estimator or ESTIMATOR[case["test"]],
               information=case["information"][0] if estimator is None else None)


@pytest.fixture(scope="module")
def fits():
    return {name: _fit(name) for name in ROBUST["cases"]}


def test_reference_is_lavaan_0_6_14():
    assert ROBUST["lavaan"] == "0.6.14"
    for name, case in ROBUST["cases"].items():  # lavaan's own defaults for the two estimators
        if case["test"] == "yuan.bentler.mplus":
            assert case["se"] == "robust.huber.white"
            assert case["information"][0] == ("expected" if name == "hs_mlr_expected" else "observed")
        else:
            assert case["se"] == "robust.sem" and case["information"][0] == "expected"


@pytest.mark.parametrize("name", list(ROBUST["cases"]))
def test_estimates_and_robust_se_match_lavaan(fits, name):
    case, res = ROBUST["cases"][name], fits[name]
    ref = pd.DataFrame(case["parameters"])
    ref = ref[~ref["op"].isin(["==", "<", ">"])].reset_index(drop=True)  # the engine leaves constraint rows out
    mine = res.parameters
    assert list(mine["lhs"]) == list(ref["lhs"]) and list(mine["op"]) == list(ref["op"])
    assert list(mine["rhs"]) == list(ref["rhs"]) and list(mine["group"]) == list(ref["group"])
    tol = EST_TOL.get(name, 1e-5)
    for col, rcol, t in [("est", "est", tol), ("std_all", "std.all", tol), ("se", "se", SE_TOL.get(name, 5e-6)),
                         ("std_all_se", "std.all.se", STD_SE_TOL.get(name, 2e-6))]:
        a, b = mine[col].to_numpy(float), ref[rcol].to_numpy(float)
        if col == "se":
            # A parameter held at an active bound has no SE: NaN in gapscale, as lavaan's NA with ML;
            # lavaan's MLR sandwich gives it 0 (constr_mlr: x2 ~ 1 at i2 > 6.2)
            bound = np.isnan(a) & (b == 0) & (mine["free"].to_numpy() > 0)
            assert bound.sum() == (1 if name == "constr_mlr" else 0), name
            b = np.where(bound, np.nan, b)
        assert np.array_equal(np.isnan(a), np.isnan(b)), (name, col)
        ok = np.isfinite(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=t, err_msg=f"{name} {col}")
    # and not the normal-theory SEs: the robust ones differ from them by far more than the tolerance
    se_ref = ref["se"].to_numpy(float)
    normal = fit(pd.DataFrame(case["partable"]), DATA[case["data"]], group=case["group"] or None,
                 group_labels=case["group_labels"] or None).parameters["se"].to_numpy(float)
    ok = np.isfinite(se_ref) & np.isfinite(normal)
    assert np.max(np.abs(normal[ok] - se_ref[ok])) > 20 * SE_TOL.get(name, 5e-6)


@pytest.mark.parametrize("name", list(ROBUST["cases"]))
def test_scaled_test_matches_lavaan(fits, name):
    case, res = ROBUST["cases"][name], fits[name]
    sc, rf = case["scaled"], case["fit"]
    rob = res.robust
    assert rob.estimator == ESTIMATOR[case["test"]] and rob.scaled.method == case["test"]
    # the ML statistic: the engine's optimum is at least as good as lavaan's (tests/test_engine.py)
    assert res.fit["chisq"] == pytest.approx(rf["chisq"], abs=1e-6) and res.fit["chisq"] <= rf["chisq"] + 1e-9
    assert rob.scaled.scaling_factor == pytest.approx(sc["scaling.factor"], rel=_rtol(name))
    assert rob.scaled.chisq == pytest.approx(sc["stat"], rel=_rtol(name))
    assert rob.scaled.trace_ugamma == pytest.approx(sc["trace.UGamma"], rel=_rtol(name))
    assert res.fit["chisq_scaled"] == pytest.approx(rf["chisq.scaled"], rel=_rtol(name))
    assert res.fit["chisq_scaling_factor"] == pytest.approx(rf["chisq.scaling.factor"], rel=_rtol(name))
    assert res.fit["pvalue_scaled"] == pytest.approx(rf["pvalue.scaled"], rel=0, abs=_rtol(name))
    assert res.fit["baseline_chisq_scaling_factor"] == pytest.approx(rf["baseline.chisq.scaling.factor"], rel=1e-9)
    assert res.fit["baseline_chisq_scaled"] == pytest.approx(rf["baseline.chisq.scaled"], rel=1e-9)
    if rob.estimator == "MLR":
        assert rob.scaled.scaling_factor_h1 == pytest.approx(sc["scaling.factor.h1"], rel=1e-9)
        assert rob.scaled.scaling_factor_h0 == pytest.approx(sc["scaling.factor.h0"], rel=_rtol(name))


@pytest.mark.parametrize("name", list(ROBUST["cases"]))
def test_scaled_and_robust_fit_measures_match_lavaan(fits, name):
    rf = ROBUST["cases"][name]["fit"]
    mine = fit_measures(fits[name])
    keys = [k for k in mine if k.replace("_", ".") in rf]
    robust_keys = [k for k in keys if k.endswith(("_scaled", "_robust")) or "scaling" in k]
    # every scaled/robust measure lavaan reports is here (cfi, tli, rni, rmsea and its interval, ...)
    expected = {k.replace(".", "_") for k in rf if k.endswith((".scaled", ".robust")) or "scaling" in k}
    assert expected <= set(mine), sorted(expected - set(mine))
    assert {"cfi_robust", "tli_robust", "rni_robust", "rmsea_robust", "rmsea_ci_lower_robust",
            "rmsea_ci_upper_robust", "rmsea_ci_lower_scaled", "rmsea_ci_upper_scaled"} <= set(robust_keys)
    for k in keys:
        ref = rf[k.replace("_", ".")]
        if ref is None:
            assert mine[k] is None or math.isnan(mine[k]), k
            continue
        assert mine[k] == pytest.approx(ref, rel=0, abs=_rtol(name) * max(1.0, abs(ref))), k


@pytest.mark.parametrize("pair", list(ROBUST["lrt"]))
def test_satorra_bentler_2001_difference_matches_lavaan(fits, pair):
    ref = ROBUST["lrt"][pair]
    out = scaled_difference(fits[ref["restricted"]], fits[ref["general"]])
    assert out["df_diff"] == ref["df_diff"]
    # the difference test amplifies the models' own differences from lavaan (its convergence
    # error, ~1e-6 relative in the scaling factors) by r0 / (r0 - r1) = 9
    assert out["scaling_factor"] == pytest.approx(ref["scaling_factor"], rel=2e-5)
    assert out["chisq_diff"] == pytest.approx(ref["chisq_diff"], rel=2e-5)
    assert out["pvalue"] == pytest.approx(ref["pvalue"], rel=1e-4)
    # the same from the fit dictionaries
    assert scaled_difference(fits[ref["restricted"]].fit, fits[ref["general"]].fit) == out


@pytest.mark.parametrize("estimator", ["MLR", "MLM"])
def test_invariance_steps_from_syntax_match_lavaan(estimator):
    """The ladder as the invariance analysis will run it: lavaan syntax -> lavaanify with
    group.equal -> the engine with MLR/MLM -> the scaled difference test of each step."""
    data = DATA["hs"]
    labels = ROBUST["cases"][f"mg_configural_{estimator.lower()}"]["group_labels"]
    steps = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "intercepts")}
    fitted = {name: fit(lavaanify(HS, list(data.columns), groups=labels, group_equal=eq), data, group="school",
                        group_labels=labels, estimator=estimator) for name, eq in steps.items()}
    for restricted, general in (("metric", "configural"), ("scalar", "metric")):
        ref = ROBUST["lrt"][f"{restricted}_{general}_{estimator.lower()}"]
        case = ROBUST["cases"][ref["restricted"]]
        assert fitted[restricted].fit["chisq_scaled"] == pytest.approx(case["fit"]["chisq.scaled"], rel=3e-6)
        out = scaled_difference(fitted[restricted], fitted[general])
        assert out["df_diff"] == ref["df_diff"]
        assert out["chisq_diff"] == pytest.approx(ref["chisq_diff"], rel=2e-5)
        assert out["scaling_factor"] == pytest.approx(ref["scaling_factor"], rel=2e-5)


def test_scaled_difference_rules():
    # r1 = 0: lavaan takes c1 = 1 (its NA scaling factor of a saturated model)
    out = scaled_difference({"chisq": 10.0, "df": 2, "chisq_scaling_factor": 1.5},
                            {"chisq": 0.0, "df": 0, "chisq_scaling_factor": float("nan")})
    assert out["scaling_factor"] == pytest.approx(1.5, rel=1e-15)
    assert out["chisq_diff"] == pytest.approx(10 / 1.5, rel=1e-15)
    # cd = (10 * 1.2 - 8 * 1.1) / 2 = 1.6
    out = scaled_difference({"chisq": 30.0, "df": 10, "chisq_scaling_factor": 1.2},
                            {"chisq": 20.0, "df": 8, "chisq_scaling_factor": 1.1})
    assert out["scaling_factor"] == pytest.approx(1.6, rel=1e-14)
    assert out["chisq_diff"] == pytest.approx(10 / 1.6, rel=1e-14)
    # a negative cd is no test (lavaan: NA with a warning)
    out = scaled_difference({"chisq": 30.0, "df": 10, "chisq_scaling_factor": 0.5},
                            {"chisq": 20.0, "df": 8, "chisq_scaling_factor": 1.5})
    assert math.isnan(out["scaling_factor"]) and math.isnan(out["chisq_diff"]) and math.isnan(out["pvalue"])
    with pytest.raises(InputError, match="pass the more constrained model first"):
        scaled_difference({"chisq": 20.0, "df": 8, "chisq_scaling_factor": 1.1},
                          {"chisq": 30.0, "df": 10, "chisq_scaling_factor": 1.2})
    with pytest.raises(InputError, match="chisq_scaling_factor"):
        scaled_difference({"chisq": 30.0, "df": 10}, {"chisq": 20.0, "df": 8, "chisq_scaling_factor": 1.1})


def test_just_identified_model_has_no_scaling_factor():
    case = ROBUST["cases"]["hs_mlr"]
    pt = pd.DataFrame(case["partable"])
    pt = pt[(pt["block"] == 1) & pt["lhs"].isin(["visual", "x1", "x2", "x3"])
            & pt["rhs"].isin(["visual", "x1", "x2", "x3"])].copy()
    pt.loc[pt["free"] > 0, "free"] = pt.loc[pt["free"] > 0, "free"].rank(method="dense").astype(int)
    res = fit(pt, DATA["hs"], estimator="MLR")
    assert res.fit["df"] == 0
    assert math.isnan(res.fit["chisq_scaling_factor"]) and math.isnan(res.fit["chisq_scaled"])
    fm = fit_measures(res)
    assert math.isnan(fm["cfi_robust"]) and math.isnan(fm["rmsea_robust"])  # lavaan: NA
    assert np.all(np.isfinite(res.parameters.loc[res.parameters["free"] > 0, "se"]))


def test_unknown_estimator_is_an_input_error():
    pt = pd.DataFrame(ROBUST["cases"]["hs_mlr"]["partable"])
    with pytest.raises(InputError, match="estimator must be one of"):
        fit(pt, DATA["hs"], estimator="MLMV")
