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
from analysis.sem.robust import fit_measures, scaled_difference

REF = Path(__file__).parent / "reference"
ROBUST = json.loads((REF / "engine_robust.json").read_text())
DATA = {"hs": pd.read_csv(REF / "hs_engine.csv"), "pd": pd.read_csv(REF / "political_democracy.csv")}
ESTIMATOR = {"yuan.bentler.mplus": "MLR", "satorra.bentler": "MLM"}
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"

# The tightest tolerances the agreement allows. The estimates differ by lavaan's own convergence
# error (its nlminb stops at a relative change of 1e-10 in F; the engine converges further, see
# tests/test_engine.py): 1e-6 on HS, 1.6e-5 for the configural 2-group model and 1.2e-4 for one
# residual covariance of Political Democracy (a flat direction); the robust SEs follow them.
EST_TOL = {"poldem_mlr": 2.5e-4, "poldem_mlm": 2.5e-4, "mg_configural_mlr": 3e-5, "mg_configural_mlm": 3e-5}
SE_TOL = {"poldem_mlr": 4e-5, "mg_configural_mlr": 3e-5}
# Scaled statistics, scaling factors and scaled/robust fit measures: relative (to max(1, |x|)).
FIT_RTOL = 3e-6


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name, case in ROBUST["cases"].items():
        out[name] = fit(pd.DataFrame(case["partable"]), DATA[case["data"]], group=case["group"] or None,
                        group_labels=case["group_labels"] or None, estimator=ESTIMATOR[case["test"]])
    return out


def test_reference_is_lavaan_0_6_14():
    assert ROBUST["lavaan"] == "0.6.14"
    for case in ROBUST["cases"].values():  # lavaan's own defaults for the two estimators
        if case["test"] == "yuan.bentler.mplus":
            assert case["se"] == "robust.huber.white" and case["information"][0] == "observed"
        else:
            assert case["se"] == "robust.sem" and case["information"][0] == "expected"


@pytest.mark.parametrize("name", list(ROBUST["cases"]))
def test_estimates_and_robust_se_match_lavaan(fits, name):
    case, res = ROBUST["cases"][name], fits[name]
    ref = pd.DataFrame(case["parameters"])
    mine = res.parameters
    assert list(mine["lhs"]) == list(ref["lhs"]) and list(mine["op"]) == list(ref["op"])
    assert list(mine["rhs"]) == list(ref["rhs"]) and list(mine["group"]) == list(ref["group"])
    np.testing.assert_allclose(mine["est"].to_numpy(float), ref["est"].to_numpy(float), rtol=0,
                               atol=EST_TOL.get(name, 1e-5), err_msg=name)
    se_ref = ref["se"].to_numpy(float)
    ok = np.isfinite(se_ref)
    np.testing.assert_allclose(mine["se"].to_numpy(float)[ok], se_ref[ok], rtol=0, atol=SE_TOL.get(name, 5e-6),
                               err_msg=name)
    # and not the normal-theory SEs: the robust ones differ from them by far more than the tolerance
    normal = fit(pd.DataFrame(case["partable"]), DATA[case["data"]], group=case["group"] or None,
                 group_labels=case["group_labels"] or None).parameters["se"].to_numpy(float)
    assert np.max(np.abs(normal[ok] - se_ref[ok])) > 20 * SE_TOL.get(name, 5e-6)


@pytest.mark.parametrize("name", list(ROBUST["cases"]))
def test_scaled_test_matches_lavaan(fits, name):
    case, res = ROBUST["cases"][name], fits[name]
    sc, rf = case["scaled"], case["fit"]
    rob = res.robust
    assert rob.estimator == ESTIMATOR[case["test"]] and rob.scaled.method == case["test"]
    assert res.fit["chisq"] == pytest.approx(rf["chisq"], rel=2e-9)
    assert rob.scaled.scaling_factor == pytest.approx(sc["scaling.factor"], rel=FIT_RTOL)
    assert rob.scaled.chisq == pytest.approx(sc["stat"], rel=FIT_RTOL)
    assert rob.scaled.trace_ugamma == pytest.approx(sc["trace.UGamma"], rel=FIT_RTOL)
    assert res.fit["chisq_scaled"] == pytest.approx(rf["chisq.scaled"], rel=FIT_RTOL)
    assert res.fit["chisq_scaling_factor"] == pytest.approx(rf["chisq.scaling.factor"], rel=FIT_RTOL)
    assert res.fit["pvalue_scaled"] == pytest.approx(rf["pvalue.scaled"], rel=0, abs=FIT_RTOL)
    assert res.fit["baseline_chisq_scaling_factor"] == pytest.approx(rf["baseline.chisq.scaling.factor"], rel=1e-9)
    assert res.fit["baseline_chisq_scaled"] == pytest.approx(rf["baseline.chisq.scaled"], rel=1e-9)
    if rob.estimator == "MLR":
        assert rob.scaled.scaling_factor_h1 == pytest.approx(sc["scaling.factor.h1"], rel=1e-9)
        assert rob.scaled.scaling_factor_h0 == pytest.approx(sc["scaling.factor.h0"], rel=FIT_RTOL)


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
        assert mine[k] == pytest.approx(ref, rel=0, abs=FIT_RTOL * max(1.0, abs(ref))), k


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
