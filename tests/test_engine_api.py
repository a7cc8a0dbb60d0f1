"""The engine's front door (analysis/sem/api.py: lavaanify + engine.fit + the complete fit
measures) reproduces the old engine's lavaan comparisons (tests/reference/cfa.json: HS 3-factor
ML and MLR; sem.json: Political Democracy with labels, equal loadings and := effects, ML and MLR).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem.api import PARAMETER_COLUMNS, check_model, fit_model

REF = Path(__file__).parent / "reference"
CFA = json.loads((REF / "cfa.json").read_text())
SEM = json.loads((REF / "sem.json").read_text())
HS = pd.read_csv(REF / "hs_full.csv")
PD = pd.read_csv(REF / "political_democracy.csv")
KEY = ["lhs", "op", "rhs"]

# The tightest tolerances the agreement allows: lavaan's own convergence error (nlminb's relative
# change of 1e-10 in F) moves its estimates by up to 2e-5 on HS and 2.5e-4 along a flat direction of
# Political Democracy (see tests/test_engine_robust.py); fit measures relative to max(1, |x|).
EST_TOL = {"cfa": 3e-5, "sem": 3e-4}
FIT_RTOL = {"cfa": 1e-6, "sem": 2e-6}


def _compare(fitted, ref_pe, ref_fit, kind, std_se=False):
    assert list(fitted.parameters.columns) == [*PARAMETER_COLUMNS, "std_all_se"]
    ref = pd.DataFrame(ref_pe)
    m = ref.merge(fitted.parameters, on=KEY, suffixes=("_r", ""))
    assert len(m) == len(ref) == len(fitted.parameters)
    tol = EST_TOL[kind]
    for r_col, col in (("est_r", "est"), ("se_r", "se"), ("ci.lower", "ci_lower"), ("ci.upper", "ci_upper"),
                       ("std.all", "std_all")):
        np.testing.assert_allclose(m[col].astype(float), m[r_col].astype(float), rtol=0, atol=tol, err_msg=col)
    free = m["se"] > 0
    np.testing.assert_allclose(m.loc[free, "z"], m.loc[free, "z_r"], rtol=0, atol=10 * tol)
    assert m.loc[~free, "z"].isna().all()
    for name, value in ref_fit.items():
        ours = fitted.fit[name.replace(".", "_")]
        assert ours == pytest.approx(value, rel=FIT_RTOL[kind], abs=FIT_RTOL[kind]), name


@pytest.mark.parametrize("estimator", ["ml", "mlr"])
def test_cfa_reference_through_the_front_door(estimator):
    ref = CFA[estimator]
    fitted = fit_model(CFA["model"], HS, estimator=estimator.upper())
    _compare(fitted, ref["pe"], ref["fit"], "cfa")


@pytest.mark.parametrize("estimator", ["ml", "mlr"])
def test_sem_reference_through_the_front_door(estimator):
    ref = SEM[estimator]
    fitted = fit_model(SEM["model"], PD, estimator=estimator.upper())
    _compare(fitted, ref["parameters"], ref["fit"], "sem")
    labels = fitted.parameters.set_index(KEY)["label"]
    assert labels[("dem60", "=~", "y2")] == "a" and labels[("indirect", ":=", "a1*b1")] == "indirect"


def test_complete_fit_measures_and_groups():
    fitted = fit_model(CFA["model"], HS, group="school")
    assert {"srmr_bentler", "gfi", "agfi", "rni", "bic2", "ecvi", "rmsea_notclose_pvalue"} <= set(fitted.fit)
    assert fitted.fit["ngroups"] == 2 and fitted.fit["df"] == 48
    assert list(fitted.parameters.columns) == ["lhs", "op", "rhs", "group", *PARAMETER_COLUMNS[3:], "std_all_se"]
    assert set(fitted.parameters["group"]) == {1, 2}


def test_std_lv_and_group_equal_reach_lavaanify():
    std = fit_model(CFA["model"], HS, std_lv=True).parameters.set_index(KEY)
    assert std.loc[("visual", "~~", "visual"), "est"] == 1.0 and std.loc[("visual", "=~", "x1"), "se"] > 0
    metric = fit_model(CFA["model"], HS, group="school", group_equal=["loadings"])
    assert metric.fit["df"] == 54
    p = metric.parameters.set_index(["lhs", "op", "rhs", "group"])
    assert p.loc[("visual", "=~", "x2", 1), "est"] == pytest.approx(p.loc[("visual", "=~", "x2", 2), "est"], abs=1e-9)


def test_fiml_reference_through_the_front_door():
    """cfa.json's lavaan missing = "fiml" fit (HS with 10% of cells missing) by the engine's FIML."""
    ref = CFA["fiml"]
    fitted = fit_model(CFA["model"], pd.read_csv(REF / "hs_missing.csv"), missing="fiml")
    m = pd.DataFrame(ref["pe"]).merge(fitted.parameters, on=KEY, suffixes=("_r", ""))
    assert len(m) == len(ref["pe"]["lhs"]) if isinstance(ref["pe"], dict) else len(m) == len(ref["pe"])
    for r_col, col in (("est_r", "est"), ("se_r", "se"), ("std.all", "std_all")):
        np.testing.assert_allclose(m[col].astype(float), m[r_col].astype(float), rtol=0, atol=EST_TOL["cfa"],
                                   err_msg=col)
    for name, value in ref["fit"].items():
        if not name.endswith(".1"):
            assert fitted.fit[name.replace(".", "_")] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_without_standard_errors_the_estimates_and_fit_are_lavaans():
    """se = False (a competing model compared by its fit only): lavaan's estimates and fit
    measures, no standard errors; MLR keeps its robust ones (its scaled test needs them)."""
    ref = CFA["fiml"]
    data = pd.read_csv(REF / "hs_missing.csv")
    fitted = fit_model(CFA["model"], data, missing="fiml", se=False)
    m = pd.DataFrame(ref["pe"]).merge(fitted.parameters, on=KEY, suffixes=("_r", ""))
    np.testing.assert_allclose(m["est"].astype(float), m["est_r"].astype(float), rtol=0, atol=EST_TOL["cfa"])
    np.testing.assert_allclose(m["std_all"].astype(float), m["std.all"].astype(float), rtol=0, atol=EST_TOL["cfa"])
    free = m["se_r"] > 0  # fixed parameters: se 0 and the value as interval, as lavaan
    assert free.sum() == 30 and m.loc[free, ["se", "z", "pvalue", "ci_lower", "ci_upper"]].isna().all().all()
    for name in ("chisq", "df", "cfi", "tli", "rmsea", "srmr", "aic", "bic"):
        assert fitted.fit[name] == pytest.approx(ref["fit"][name], rel=1e-5, abs=1e-6), name
    robust = fit_model(CFA["model"], HS, estimator="MLR", se=False).parameters.set_index(KEY)
    ref_mlr = pd.DataFrame(CFA["mlr"]["pe"]).set_index(KEY)
    assert robust.loc[("visual", "=~", "x2"), "se"] == pytest.approx(ref_mlr.loc[("visual", "=~", "x2"), "se"],
                                                                      abs=EST_TOL["cfa"])


def test_standard_errors_added_afterwards_are_those_of_the_fit():
    """with_standard_errors of an se = False fit (an invariance rung found afterwards to be the one
    reported) gives the parameters, vcov and information of the fit with se = True, bit for bit
    (FIML: the observed information; complete data: the expected one), and lavaan's SEs."""
    from analysis.sem.engine import fit, with_standard_errors
    from analysis.sem.partable import lavaanify
    from instrument import parse_model

    data = pd.read_csv(REF / "hs_missing.csv")
    for frame, missing in ((data, "fiml"), (HS, "listwise")):
        pt = lavaanify(parse_model(CFA["model"]), list(frame.columns), missing=missing)
        full = fit(pt, frame, missing=missing)
        bare = fit(pt, frame, missing=missing, se=False)
        assert bare.parameters["se"].isna().any()
        added = with_standard_errors(bare)
        pd.testing.assert_frame_equal(added.parameters, full.parameters, check_exact=True)
        assert np.array_equal(added.vcov, full.vcov) and np.array_equal(added.information, full.information)
        assert added.fit == bare.fit and with_standard_errors(full) is full
        if missing == "fiml":
            ref = pd.DataFrame(CFA["fiml"]["pe"]).merge(added.parameters, on=KEY, suffixes=("_r", ""))
            assert len(ref) == len(CFA["fiml"]["pe"])
            np.testing.assert_allclose(ref["se"].astype(float), ref["se_r"].astype(float), rtol=0,
                                       atol=EST_TOL["cfa"])


def test_a_method_factor_model_converges_from_the_first_start():
    """A latent with only fixed loadings on other latents' indicators (an unmeasured method
    factor) starts from lavaan's simple start: one optimiser run reaches lavaan's optimum (the PCA
    start first used to run 500 scoring steps, BFGS and 500 more before the retry)."""
    from analysis.sem import engine

    ref = CFA["hard"]
    data = pd.read_csv(REF / "hs_missing.csv").dropna()
    runs = []
    optimise = engine.optimise

    def counted(*args, **kwargs):
        runs.append(optimise(*args, **kwargs))
        return runs[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "optimise", counted)
        with pytest.warns(Warning):
            fitted = fit_model(ref["model"], data)
    assert len(runs) == 1 and runs[0].converged
    assert fitted.fit["chisq"] == pytest.approx(ref["fit"]["chisq"], abs=1e-3)
    assert not engine._method_factor(engine.build_model(engine.normalise_partable(
        fit_model(CFA["model"], HS).model.partable)))


@pytest.mark.parametrize("model, names", [
    ("A ~ B\nB ~ A\nA ~~ B", ["A ~ B", "B ~ A", "A ~~ B"]),
    ("f =~ x1 + x2\ng =~ x3 + x4\nf ~~ 0*g", ["f =~ x2"]),
])
def test_check_model_refuses_unidentified_models(model, names):
    data = HS.rename(columns={"x1": "A", "x2": "B"}) if model.startswith("A") else HS
    with pytest.raises(InputError, match="not identified") as err:
        check_model(model, data)
    for name in names:
        assert name in str(err.value)
    check_model(CFA["model"], HS)  # an identified model passes
