"""Measurement invariance (analysis/invariance.py, on the unified SEM engine) against lavaan
0.6-14 / semTools 0.5-6 (tests/reference/invariance.R): the ML, MLR and MLM ladders and the
structural comparison on Holzinger & Swineford by school, FIML, four groups, the ordinal
(WLSMV) ladder of measEq.syntax on psych::bfi by gender; parameter recovery on simulated
groups, the stage, bad input."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.invariance import (Criteria, GroupExcludedWarning, Specification, difference_test, eligible_groups,
                                 fit_level, invariance, measurement_invariance, structural_invariance, wald_equal)
from analysis.simulate import parse_simulation_params, simulate_study
from instrument import parse_instrument

REF = Path(__file__).parent / "reference"
HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
HS_STRUCTURAL = HS_MODEL + "textual ~ visual\nspeed ~ visual + textual\n"
SCHOOLS = ["Pasteur", "Grant-White"]  # lavaan's order (as they appear in the data)
LADDER = ("configural", "metric", "scalar", "strict")
ITEMS = [f"{a}{k}" for a in "ACE" for k in range(1, 6)]
BFI_MODEL = "agree =~ A1 + A2 + A3 + A4 + A5\nconsc =~ C1 + C2 + C3 + C4 + C5\nextra =~ E1 + E2 + E3 + E4 + E5\n"
ORDINAL_LADDER = ("configural", "thresholds", "metric", "scalar")


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "invariance.json").read_text())


@pytest.fixture(scope="module")
def hs():
    return pd.read_csv(REF / "hs_full.csv")


def fit(data, level, model=HS_MODEL, group="school", groups=SCHOOLS, partial=(), **spec):
    return fit_level(data, model, group, groups, level, partial, Specification(**spec))


@pytest.fixture(scope="module")
def ladder(hs):
    return {name: fit(hs, name) for name in LADDER}


def labelled(p: pd.DataFrame) -> pd.DataFrame:
    """The engine's parameter table with the group label as ``group`` (as the R script writes it)."""
    return p.assign(group=p["group_label"])


def assert_fit_matches(ours: dict, ref: dict, tol: float = 1e-5):
    for name, value in ref.items():
        if value is None:
            assert not np.isfinite(ours.get(name.replace(".", "_"), np.nan)), name
            continue
        assert ours[name.replace(".", "_")] == pytest.approx(value, rel=tol, abs=tol), name


def assert_parameters_match(ours: pd.DataFrame, ref: list, est_tol=1e-4, se_tol=1e-4):
    ref = pd.DataFrame(ref)
    ours = labelled(ours)
    m = ref.merge(ours, on=["lhs", "op", "rhs", "group"], suffixes=("_r", ""))
    assert len(m) == len(ref) == len(ours)
    for r_col, col, tol in [("est_r", "est", est_tol), ("se_r", "se", se_tol), ("ci.lower", "ci_lower", se_tol),
                            ("std.all", "std_all", est_tol)]:
        assert np.nanmax(np.abs(m[r_col].astype(float) - m[col].astype(float))) < tol, col
    free = m["se"] > 0
    assert np.abs(m.loc[free, "z_r"] - m.loc[free, "z"]).max() < 1e-3


# --------------------------------------------------------------------------- lavaan: ML


@pytest.mark.parametrize("name", LADDER)
def test_ladder_matches_lavaan(ladder, lavaan, name):
    """Fit measures (chisq, df, CFI, TLI, RMSEA and its CI, SRMR, logL, AIC, BIC) to 2.3e-7
    relative; estimates 1.7e-5, SEs 2.7e-6, std.all 1.0e-5 (the largest differences seen over
    the four models; lavaan's own convergence tolerance). Four groups: estimates 1.6e-5."""
    assert_fit_matches(ladder[name].fit, lavaan[name]["fit"])
    assert_parameters_match(ladder[name].parameters, lavaan[name]["pe"])


def test_groups_are_in_lavaans_order(ladder, lavaan):
    assert list(ladder["configural"].group_labels) == lavaan["group_label"]


def test_chisq_difference_tests_match_lavtestlrt(ladder, lavaan):
    ref = lavaan["lrt"]
    spec = Specification()
    for k in range(1, len(LADDER)):
        d = difference_test(ladder[LADDER[k]], ladder[LADDER[k - 1]], spec)
        assert d["delta_chisq"] == pytest.approx(ref["delta_chisq"][k], abs=1e-4)
        assert d["delta_df"] == ref["delta_df"][k]
        assert d["delta_pvalue"] == pytest.approx(ref["delta_pvalue"][k], abs=1e-6)
    fit_ = pd.DataFrame(lavaan["compare_fit"]["fit"])
    d = difference_test(ladder["metric"], ladder["configural"], spec)
    assert d["delta_cfi"] == pytest.approx(fit_["cfi"][1] - fit_["cfi"][0], abs=1e-6)
    assert d["delta_rmsea"] == pytest.approx(fit_["rmsea"][1] - fit_["rmsea"][0], abs=1e-6)


def test_partial_scalar_invariance_matches_lavaan(hs, lavaan):
    f = fit(hs, "scalar", partial=["x3 ~ 1", "x7~1"])
    assert_fit_matches(f.fit, lavaan["partial_scalar"]["fit"])
    assert_parameters_match(f.parameters, lavaan["partial_scalar"]["pe"])
    p = f.parameters.set_index(["lhs", "op", "group_label"])
    assert p.loc[("x3", "~1", "Pasteur"), "free"] != p.loc[("x3", "~1", "Grant-White"), "free"]
    assert p.loc[("x1", "~1", "Pasteur"), "free"] == p.loc[("x1", "~1", "Grant-White"), "free"]


def test_four_groups_match_lavaan(hs, lavaan):
    """sqrt(G) in RMSEA and its interval, df over four groups."""
    ref = lavaan["four_groups"]
    data = hs.merge(pd.read_csv(REF / "hs_sex.csv"), on="id")
    data["school_sex"] = data["school"] + "_" + data["sex"].astype(str)
    groups = ref["group_label"]
    configural = fit(data, "configural", group="school_sex", groups=groups)
    assert list(configural.group_labels) == groups
    assert_fit_matches(configural.fit, ref["configural"])
    metric = fit(data, "metric", group="school_sex", groups=groups)
    assert_fit_matches(metric.fit, ref["metric"])
    scalar = fit(data, "scalar", group="school_sex", groups=groups)
    assert_fit_matches(scalar.fit, ref["scalar"]["fit"])
    assert_parameters_match(scalar.parameters, ref["scalar"]["pe"])


def test_second_order_scalar_model_is_refused_as_unidentified(hs, lavaan):
    """lavaan frees every latent mean of group 2 when intercepts are equal, the first-order ones
    under a second-order factor too: not identified (lavaan fits it, warns that the vcov may not
    be identified and counts one parameter too many: df 61 where the identified model has 62). The engine
    refuses it, naming the latent means involved."""
    model = HS_MODEL + "g =~ visual + textual + speed\n"
    assert lavaan["second_order_scalar"]["fit"]["df"] == 61
    with pytest.raises(InputError, match=r"not identified.*(visual|textual|speed|g) ~1 \(group 2\)"):
        fit(hs, "scalar", model=model)


def test_structural_comparison_matches_lavaan(hs, lavaan):
    result = structural_invariance(hs, HS_STRUCTURAL, "school", SCHOOLS)
    free, equal = result["free"], result["equal"]
    assert_fit_matches(free.fit, lavaan["structural_free"]["fit"])
    assert_fit_matches(equal.fit, lavaan["structural_equal"]["fit"])
    assert_parameters_match(equal.parameters, lavaan["structural_equal"]["pe"])
    d = difference_test(equal, free, Specification())
    assert d["delta_chisq"] == pytest.approx(lavaan["structural_lrt"]["delta_chisq"][1], abs=1e-4)
    assert d["delta_df"] == 3 == result["summary"]["delta_df"]
    for path, ref in lavaan["structural_wald"].items():
        lhs, rhs = path.split("~")
        w = wald_equal(free, lhs, "~", rhs)
        assert w["chisq"] == pytest.approx(ref["chisq"], abs=1e-3) and w["df"] == ref["df"]
        assert w["pvalue"] == pytest.approx(ref["pvalue"], abs=1e-4)
        row = result["paths"][(result["paths"]["lhs"] == lhs) & (result["paths"]["rhs"] == rhs)]
        assert row["wald_chisq"].iat[0] == pytest.approx(ref["chisq"], abs=1e-3)


def test_fiml_matches_lavaan(hs, lavaan):
    """missing = "fiml" per group and pattern: fit measures to 4.5e-7 relative, estimates
    7.3e-6, SEs (observed information) 2.9e-6."""
    ref = lavaan["fiml"]
    data = pd.read_csv(REF / "hs_missing.csv").merge(hs[["id", "school"]], on="id")
    configural = fit(data, "configural", groups=ref["group_label"], missing="fiml")
    assert list(configural.group_labels) == ref["group_label"]
    scalar = fit(data, "scalar", groups=ref["group_label"], missing="fiml")
    for f, name in ((configural, "configural"), (scalar, "scalar")):
        assert_fit_matches(f.fit, ref[name]["fit"])
        assert_parameters_match(f.parameters, ref[name]["pe"])
    d = difference_test(scalar, configural, Specification(missing="fiml"))
    assert d["delta_chisq"] == pytest.approx(ref["lrt"]["delta_chisq"][1], abs=1e-4)


def test_labels_are_shared_across_groups(hs):
    """A label names one parameter in every group (lavaan); the structural comparison drops
    the labels so that each path is free in every group."""
    f = fit(hs, "configural", model=HS_MODEL.replace("x2 + x3", "a*x2 + a*x3"))
    loads = f.parameters[(f.parameters["op"] == "=~") & f.parameters["rhs"].isin(["x2", "x3"])]
    assert loads["free"].nunique() == 1
    s = structural_invariance(hs, HS_STRUCTURAL.replace("speed ~ visual", "speed ~ b*visual") + "ind := b*2\n",
                              "school", SCHOOLS)
    assert s["summary"]["delta_df"] == 3 and len(s["paths"]) == 6


# --------------------------------------------------------------------------- lavaan: MLR, MLM


@pytest.fixture(scope="module", params=["MLR", "MLM"])
def robust_ladder(request, hs):
    """The ladder through :func:`measurement_invariance` (every step, partial scalar separately)."""
    est = request.param
    result = measurement_invariance(hs, HS_MODEL, "school", min_group_size=50, reference_group="Pasteur",
                                    estimator=est, criteria=Criteria(configural_rmsea=0.10))
    partial = measurement_invariance(hs, HS_MODEL, "school", min_group_size=50, reference_group="Pasteur",
                                     estimator=est, group_partial=["x3 ~ 1", "x7 ~ 1"],
                                     criteria=Criteria(configural_rmsea=0.10))
    return est, result, partial


def test_robust_ladder_matches_lavaan(robust_ladder, lavaan, hs):
    """MLR and MLM ladders by school: every fit measure (scaled and robust ones included) to
    2e-6 relative (largest seen 9.4e-7); the Satorra-Bentler (2001) scaled differences of
    lavTestLRT to 3e-5 relative (1.3e-5 seen: the difference of two scaling factors amplifies
    lavaan's convergence tolerance by df/Δdf), their p to 1e-5 (4.9e-6); the robust ΔCFI/ΔRMSEA
    of compareFit to 1.5e-7 (6.4e-8); estimates and robust SEs of the partial scalar model."""
    est, result, partial = robust_ladder
    ref = lavaan[est.lower()]
    table = result.fit.set_index("model")
    assert result.summary["indices"] == "robust" and result.summary["estimator"] == est
    for k, name in enumerate(LADDER):
        row = table.loc[name]
        for key, value in ref[name]["fit"].items():
            col = key.replace(".", "_")
            if col in table.columns:
                assert row[col] == pytest.approx(value, rel=2e-6, abs=2e-6), (name, key)
        if k:
            assert row["delta_chisq"] == pytest.approx(ref["lrt"]["delta_chisq"][k], rel=3e-5), name
            assert row["delta_df"] == ref["lrt"]["delta_df"][k]
            assert row["delta_pvalue"] == pytest.approx(ref["lrt"]["delta_pvalue"][k], abs=1e-5), name
            cf = ref["compare_fit"]
            assert row["delta_cfi"] == pytest.approx(cf[k]["cfi.robust"] - cf[k - 1]["cfi.robust"], abs=1.5e-7)
            assert row["delta_rmsea"] == pytest.approx(cf[k]["rmsea.robust"] - cf[k - 1]["rmsea.robust"], abs=1.5e-7)
    assert result.level == "metric" and "ΔCFI" in result.summary["steps"]["scalar"]["reason"]
    f = fit(hs, "scalar", partial=["x3 ~ 1", "x7 ~ 1"], estimator=est)
    assert_fit_matches(f.fit, ref["partial_scalar"]["fit"], tol=2e-6)
    assert_parameters_match(f.parameters, ref["partial_scalar"]["pe"])
    d = difference_test(f, fit(hs, "metric", estimator=est), Specification(estimator=est))
    assert d["delta_chisq"] == pytest.approx(ref["partial_lrt"]["delta_chisq"][1], rel=3e-5)
    means = partial.latent_means.set_index("latent")
    pe = pd.DataFrame(ref["partial_scalar"]["pe"])
    pe = pe[(pe["op"] == "~1") & (pe["group"] == "Grant-White") & pe["lhs"].isin(["visual", "textual", "speed"])]
    for r in pe.itertuples():
        assert means.at[r.lhs, "est"] == pytest.approx(r.est, abs=1e-4)
        assert means.at[r.lhs, "se"] == pytest.approx(r.se, abs=1e-4)  # robust SEs


def test_mlr_structural_comparison_matches_lavaan(hs, lavaan):
    """MLR: the SB2001 difference of free vs equal paths (5.5e-7 relative seen) and the robust
    Wald test per path (statistic 1.7e-5, p 1.5e-6)."""
    ref = lavaan["mlr_structural"]
    result = structural_invariance(hs, HS_STRUCTURAL, "school", SCHOOLS, estimator="MLR")
    assert_fit_matches(result["free"].fit, ref["free"]["fit"], tol=2e-6)
    assert_fit_matches(result["equal"].fit, ref["equal"]["fit"], tol=2e-6)
    s = result["summary"]
    assert s["delta_chisq"] == pytest.approx(ref["lrt"]["delta_chisq"][1], rel=2e-6) and s["delta_df"] == 3
    assert s["delta_pvalue"] == pytest.approx(ref["lrt"]["delta_pvalue"][1], abs=1e-6)
    for path, w in ref["wald"].items():
        lhs, rhs = path.split("~")
        row = result["paths"][(result["paths"]["lhs"] == lhs) & (result["paths"]["rhs"] == rhs)]
        assert row["wald_chisq"].iat[0] == pytest.approx(w["chisq"], abs=4e-5)
        assert row["wald_pvalue"].iat[0] == pytest.approx(w["pvalue"], abs=4e-6)


def test_mlr_fiml_ladder_matches_lavaan(hs, lavaan):
    """MLR with FIML (lavaan's missing = "ml"): configural and scalar fits, every fit measure
    (robust ones included) to 6e-6 relative (3.0e-6 seen), estimates and std.all 1.2e-5 (6.4e-6),
    robust SEs and interval bounds 1.5e-5 (4.8e-6, 1.2e-5), their SB2001 difference 6e-6 relative
    (2.8e-6); the ladder by measurement_invariance is judged on the robust indices."""
    ref = lavaan["mlr_fiml"]
    data = pd.read_csv(REF / "hs_missing.csv").merge(hs[["id", "school"]], on="id")
    configural = fit(data, "configural", groups=ref["group_label"], missing="fiml", estimator="MLR")
    scalar = fit(data, "scalar", groups=ref["group_label"], missing="fiml", estimator="MLR")
    for f, name in ((configural, "configural"), (scalar, "scalar")):
        assert_fit_matches(f.fit, ref[name]["fit"], tol=6e-6)
        assert_parameters_match(f.parameters, ref[name]["pe"], est_tol=1.2e-5, se_tol=1.5e-5)
    d = difference_test(scalar, configural, Specification(missing="fiml", estimator="MLR"))
    assert d["delta_chisq"] == pytest.approx(ref["lrt"]["delta_chisq"][1], rel=6e-6)
    result = measurement_invariance(data, HS_MODEL, "school", levels=("configural", "metric"), missing="fiml",
                                    estimator="MLR", min_group_size=50)
    assert result.summary["indices"] == "robust" and result.summary["missing"] == "fiml"


# --------------------------------------------------------------------------- lavaan: ordinal


@pytest.fixture(scope="module")
def bfi():
    return pd.read_csv(REF / "bfi_1000.csv")


@pytest.fixture(scope="module")
def ordinal(bfi, lavaan):
    ref = lavaan["ordinal"]
    result = measurement_invariance(bfi, BFI_MODEL, "gender", reference_group=str(ref["group_label"][0]),
                                    estimator="WLSMV", ordered="all", min_group_size=100)
    return result


@pytest.mark.slow
def test_ordinal_ladder_matches_semtools(ordinal, lavaan):
    """WLSMV ladder of measEq.syntax(ID.fac = "std.lv", ID.cat = "Wu.Estabrook.2016") by gender
    through :func:`measurement_invariance`: fit measures to 2e-7 relative (largest seen 8.6e-8;
    lavaan's nlminb stops earlier than the engine), the scaled-and-shifted differences of
    lavTestLRT to 1.5e-5 (7.0e-6 seen), their p to 4e-7, compareFit's scaled ΔCFI/ΔRMSEA to
    4e-8 (1.9e-8) (lavaan's robust indices are NA with equal thresholds, so compareFit and
    gapscale judge on the scaled ones)."""
    ref = lavaan["ordinal"]
    assert ordinal.summary["levels"] == list(ORDINAL_LADDER) and ordinal.summary["indices"] == "scaled"
    assert ordinal.summary["groups_used"] == [str(g) for g in ref["group_label"]]
    table = ordinal.fit.set_index("model")
    for k, name in enumerate(ORDINAL_LADDER):
        row = table.loc[name]
        for key, value in ref[name]["fit"].items():
            col = key.replace(".", "_")
            if col not in table.columns:
                continue
            if value is None:
                assert np.isnan(row[col]), (name, key)
            else:
                assert row[col] == pytest.approx(value, rel=2e-7, abs=2e-7), (name, key)
        if k:
            t = ref["lrt"][k - 1]
            assert row["delta_chisq"] == pytest.approx(t["delta_chisq"], abs=1.5e-5), name
            assert row["delta_df"] == t["delta_df"]
            assert row["delta_pvalue"] == pytest.approx(t["delta_pvalue"], abs=4e-7)
            cf = ref["compare_fit"]
            assert row["delta_cfi"] == pytest.approx(cf[k]["cfi.scaled"] - cf[k - 1]["cfi.scaled"], abs=4e-8)
            assert row["delta_rmsea"] == pytest.approx(cf[k]["rmsea.scaled"] - cf[k - 1]["rmsea.scaled"], abs=4e-8)
    # configural scaled CFI .874 < .90: the ladder holds nowhere on these items
    assert ordinal.level == "none" and "CFI (scaled)" in ordinal.summary["steps"]["configural"]["reason"]


@pytest.mark.slow
def test_ordinal_partial_scalar_and_latent_means_match_semtools(bfi, lavaan):
    """The scalar step with the intercept of E1 free (group.partial, measEq): fit, the
    scaled-shifted difference from the metric model, and every estimate (the latent mean
    differences included) with its robust SE: fit 3.1e-8 relative, difference 2.6e-6, estimates
    6.5e-6, SEs 6.0e-7, std.all 7.0e-6 (largest seen)."""
    ref = lavaan["ordinal"]
    groups = [str(g) for g in ref["group_label"]]
    spec = Specification(estimator="WLSMV", ordered=tuple(ITEMS))
    f = fit_level(bfi, BFI_MODEL, "gender", groups, "scalar", ["E1 ~ 1"], spec)
    metric = fit_level(bfi, BFI_MODEL, "gender", groups, "metric", (), spec)
    for key, value in ref["partial_scalar"]["fit"].items():
        if value is not None:
            assert f.fit[key.replace(".", "_")] == pytest.approx(value, rel=1e-7, abs=1e-7), key
    d = difference_test(f, metric, spec, "scaled")
    assert d["delta_chisq"] == pytest.approx(ref["partial_lrt"]["delta_chisq"], abs=6e-6)
    assert d["delta_df"] == ref["partial_lrt"]["delta_df"] == 11
    pe = pd.DataFrame(ref["partial_scalar"]["pe"])
    ours = labelled(f.parameters)
    m = pe.merge(ours, on=["lhs", "op", "rhs", "group"], suffixes=("_r", ""))
    assert len(m) == len(pe)
    assert np.abs(m["est_r"] - m["est"]).max() < 1.5e-5
    assert np.nanmax(np.abs(m["se_r"] - m["se"])) < 1.5e-6
    assert np.nanmax(np.abs(m["std.all"] - m["std_all"])) < 1.5e-5
    means = m[(m["op"] == "~1") & m["lhs"].isin(["agree", "consc", "extra"]) & (m["group"] == groups[1])]
    assert len(means) == 3 and (means["se"] > 0).all()


@pytest.mark.slow
def test_ordinal_partial_thresholds_match_semtools(bfi, lavaan):
    """Equal thresholds but A1's second (group.partial = "A1|t2" in measEq.syntax): A1's
    intercept and scale factor are still free in group 2 (its other thresholds are equal), one
    df less than the thresholds model; fit measures 1e-7 relative."""
    ref = lavaan["ordinal"]
    groups = [str(g) for g in ref["group_label"]]
    f = fit_level(bfi, BFI_MODEL, "gender", groups, "thresholds", ["A1 | t2"],
                  Specification(estimator="WLSMV", ordered=tuple(ITEMS)))
    assert f.fit["df"] == ref["thresholds"]["fit"]["df"] - 1
    for key, value in ref["partial_thresholds"]["fit"].items():
        if value is not None:
            assert f.fit[key.replace(".", "_")] == pytest.approx(value, rel=1e-7, abs=1e-7), key


def test_ordinal_group_with_an_empty_category_is_left_out(bfi):
    """lavaan refuses an ordered item with a category nobody in a group chose: such a group is
    reported and left out like a small one."""
    data = bfi.copy()
    data.loc[(data["gender"] == 2) & (data["A1"] == 6), "A1"] = 5
    with pytest.raises(InputError, match=r"2: n = \d+ \(A1: category 6 never chosen in this group"):
        eligible_groups(data, "gender", ITEMS, ordered=ITEMS)
    table, order = eligible_groups(bfi, "gender", ITEMS, ordered=ITEMS)
    assert table["used"].all() and sorted(order) == ["1", "2"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, message", [
    (dict(group="nope"), "group column 'nope' is not in the data"),
    (dict(group="school", group_partial=["visual =~ x4"]), "'visual =~ x4' is not a parameter"),
    (dict(group="school", group_partial=["x3 ~ "]), "cannot read"),
    (dict(group="school", missing="pairwise"), "missing: 'pairwise' is for WLSMV and ULSMV"),
    (dict(group="school", estimator="WLSMV", missing="pairwise"), "missing: 'pairwise' is not available for invariance"),
    (dict(group="school", estimator="GLS"), "estimator: 'GLS' is not available"),
    (dict(group="school", estimator="MLM", missing="fiml"), "missing: 'fiml' is not available with estimator MLM"),
    (dict(group="school", ordered=["x1"]), "ordered items need estimator WLSMV or ULSMV"),
    (dict(group="school", estimator="WLSMV", ordered=["x1", "sex"]), "ordered: sex not observed variables"),
    (dict(group="school", levels=("configural", "thresholds")), "levels must start with 'configural'"),
    (dict(group="school", reference_group="Eton"), "reference group 'Eton' is not a usable group"),
])
def test_bad_arguments_are_named(hs, kwargs, message):
    with pytest.raises(InputError, match=message):
        measurement_invariance(hs, HS_MODEL, min_group_size=50, **kwargs)


def test_bad_data_is_named(hs):
    text = hs.astype({"x2": object})
    text.loc[7, "x2"] = "n/a"
    with pytest.raises(InputError, match="x2.*'n/a'"):
        measurement_invariance(text, HS_MODEL, "school", min_group_size=50)
    with pytest.raises(InputError, match="x99"):
        measurement_invariance(hs, HS_MODEL.replace("x9", "x99"), "school", min_group_size=50)


def test_equality_constraints_within_the_model_are_kept(hs):
    """``a == b`` in the measurement model (lavaan syntax) holds in every model of the ladder; a
    label names one parameter in every group (lavaan), so the configural model has the two
    labelled loadings equal across groups as well (3 df more), the metric model one."""
    model = HS_MODEL.replace("x2", "a*x2").replace("x3", "b*x3") + "a == b\n"
    result = measurement_invariance(hs, model, "school", levels=("configural", "metric"), min_group_size=50)
    plain = measurement_invariance(hs, HS_MODEL, "school", levels=("configural", "metric"), min_group_size=50)
    assert (result.fit["df"] - plain.fit["df"]).tolist() == [3, 1]


def test_small_groups_are_left_out_and_reported(hs):
    data = hs.copy()
    rows = np.random.default_rng(1).permutation(len(data))
    data.loc[rows[:8], "school"] = "Tiny"  # 8 rows for 9 variables
    data.loc[rows[8:60], "school"] = "Small"  # 52 rows
    data.loc[rows[60:130], "school"] = "Flat"
    data.loc[rows[60:130], "x5"] = 4.0
    data.loc[rows[130], "school"] = np.nan
    table, order = eligible_groups(data, "school", [f"x{k}" for k in range(1, 10)], min_group_size=60)
    t = table.set_index("group")
    assert t.loc["Tiny", "n"] == 8 and not t.loc["Tiny", "used"] and "more rows than variables" in t.loc["Tiny", "reason"]
    assert not t.loc["Small", "used"] and "min_group_size = 60" in t.loc["Small", "reason"]
    assert not t.loc["Flat", "used"] and "x5 does not vary" in t.loc["Flat", "reason"]
    assert t.loc["", "n"] == 1 and "no value" in t.loc["", "reason"]
    assert order[0] == t.loc[["Pasteur", "Grant-White"], "n"].idxmax()  # the largest group is the reference
    assert sorted(order) == ["Grant-White", "Pasteur"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = measurement_invariance(data, HS_MODEL, "school", levels=("configural", "metric"), min_group_size=60)
    excluded = " | ".join(str(w.message) for w in caught if issubclass(w.category, GroupExcludedWarning))
    for expected in ("group 'Tiny' of 'school' (n = 8) left out", "group 'Small'", "group 'Flat'",
                     "without a value in 'school' left out"):
        assert expected in excluded, expected  # every exclusion is announced
    assert result.summary["groups_used"] == order
    assert {g["group"] for g in result.summary["groups_left_out"]} == {"Tiny", "Small", "Flat", ""}
    with pytest.raises(ValueError, match="needs at least two groups that can be fitted; groups: .*Tiny: n = 8"):
        eligible_groups(data, "school", [f"x{k}" for k in range(1, 10)], min_group_size=200)


def test_bad_criteria_and_levels(hs):
    with pytest.raises(ValueError, match="delta_cfi is the CFI drop"):
        Criteria(delta_cfi=0.01)
    with pytest.raises(ValueError, match="criterion must be one of"):
        Criteria(criterion="bic")
    with pytest.raises(ValueError, match="levels must start with 'configural'"):
        measurement_invariance(hs, HS_MODEL, "school", levels=("metric", "scalar"))


# --------------------------------------------------------------------------- the ladder on HS


def test_ladder_decisions_on_hs(hs):
    """By school, scalar invariance fails on ΔCFI (the intercepts of x3 and x7 differ); freeing
    them gives partial scalar invariance and latent mean differences."""
    criteria = Criteria(configural_rmsea=0.10)  # HS's configural RMSEA is .097
    full = measurement_invariance(hs, HS_MODEL, "school", min_group_size=50, reference_group="Pasteur",
                                  criteria=criteria)
    assert full.level == "metric"
    assert full.fit["holds"].tolist() == [True, True, False, False]
    assert "ΔCFI -0.0385" in full.summary["steps"]["scalar"]["reason"]
    assert full.latent_means.empty
    partial = measurement_invariance(hs, HS_MODEL, "school", min_group_size=50, reference_group="Pasteur",
                                     group_partial=["x3 ~ 1", "x7 ~ 1"], criteria=criteria, levels=LADDER)
    assert partial.level == "strict" and partial.summary["partial_invariance"]
    means = partial.latent_means.set_index("latent")
    assert list(means.index) == ["visual", "textual", "speed"] and (means["group"] == "Grant-White").all()
    ref = json.loads((REF / "invariance.json").read_text())["partial_scalar"]["pe"]
    ref = pd.DataFrame(ref)
    ref = ref[(ref["op"] == "~1") & (ref["group"] == "Grant-White")].set_index("lhs")
    for lat in means.index:
        assert means.at[lat, "est"] == pytest.approx(ref.at[lat, "est"], abs=1e-4)
        assert means.at[lat, "se"] == pytest.approx(ref.at[lat, "se"], abs=1e-4)
    assert means.at["textual", "pvalue"] < 0.001


def test_structural_paths_compared_once_metric_holds(hs):
    result = invariance(hs, HS_MODEL, "school", structural_model=HS_STRUCTURAL, min_group_size=50,
                        reference_group="Pasteur", criteria=Criteria(configural_rmsea=0.10))
    s = result.summary["structural"]
    assert s["compared"] and s["delta_df"] == 3 and not s["paths_differ"]
    assert set(result.paths["rhs"] + "->" + result.paths["lhs"]) == {"visual->textual", "visual->speed",
                                                                     "textual->speed"}
    assert len(result.paths) == 6  # three paths x two groups
    none = invariance(hs, HS_MODEL, "school", structural_model=HS_STRUCTURAL, min_group_size=50)
    assert none.level == "none" and not none.summary["structural"]["compared"]
    assert "metric invariance does not hold" in none.summary["structural"]["reason"]


# --------------------------------------------------------------------------- simulated groups


SIM_INSTRUMENT = """\
name: Three constructs
scale: {type: continuous}
constructs:
  - id: A
    items: [{id: a1}, {id: a2}, {id: a3}, {id: a4}]
  - id: B
    items: [{id: b1}, {id: b2}, {id: b3}, {id: b4}]
  - id: C
    items: [{id: c1}, {id: c2}, {id: c3}, {id: c4}]
context:
  - {id: kind, type: categorical, values: [north, south, east]}
"""
SIM_MODEL = "A =~ a1 + a2 + a3 + a4\nB =~ b1 + b2 + b3 + b4\nC =~ c1 + c2 + c3 + c4\n"
SIM_STRUCTURAL = SIM_MODEL + "B ~ A\nC ~ A + B\n"
NO_DEFECTS = {d: 0.0 for d in ("straightliner", "random_responder", "speeder", "inattentive", "duplicate",
                               "missing_cell", "typo_cell")}


def simulated(groups: dict | None, n: int = 2400, seed: int = 11, missing_cell: float = 0.0) -> pd.DataFrame:
    import yaml

    inst = parse_instrument(yaml.safe_load(SIM_INSTRUMENT))
    params = {"n": n, "loadings": {"default": 0.7}, "structural": {"B": {"A": 0.4}, "C": {"A": 0.3, "B": 0.3}},
              "context": {"kind": {"north": 0.4, "south": 0.35, "east": 0.25}},
              "defects": {**NO_DEFECTS, "missing_cell": missing_cell}, "personal_data": False}
    if groups is not None:
        params["groups"] = groups
    study = simulate_study(inst, parse_simulation_params(params), seed)
    return study.responses


def test_scalar_invariant_simulation_reaches_scalar():
    data = simulated({"column": "kind", "values": {"south": {"latent_means": {"A": 0.5}}}})
    result = invariance(data, SIM_MODEL, "kind", structural_model=SIM_STRUCTURAL, min_group_size=100)
    assert result.level in ("scalar", "strict")
    assert result.summary["n_groups_used"] == 3 and result.summary["reference_group"] == "north"
    means = result.latent_means.set_index(["group", "latent"])
    # latent SD 1 in the population, marker loading .7: the mean on the marker's scale is .7 * .5
    assert means.loc[("south", "A"), "est"] == pytest.approx(0.7 * 0.5, abs=0.08)
    assert means.loc[("south", "A"), "pvalue"] < 0.001
    assert abs(means.loc[("east", "A"), "z"]) < 3
    assert not result.summary["structural"]["paths_differ"]


def test_non_invariant_loading_is_caught_at_the_metric_step():
    data = simulated({"column": "kind", "values": {"east": {"loadings": {"a2": 0.25, "b3": 0.3}}}})
    result = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100)
    assert result.level == "configural"
    assert result.fit.set_index("model").at["metric", "delta_pvalue"] < 0.001
    assert not result.summary["steps"]["metric"]["passes"]
    freed = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100,
                                   group_partial=["A =~ a2", "B =~ b3"], levels=("configural", "metric"))
    assert freed.level == "metric"


def test_one_non_invariant_loading_is_caught_by_the_chisq_difference():
    """One loading of eight (.7 in two groups, .3 in the third): the chi-square difference
    rejects metric invariance (p ~ 1e-6); the fit-index rules are less sensitive to a single
    loading (here ΔCFI is -.004), which is why the criterion is a parameter."""
    data = simulated({"column": "kind", "values": {"east": {"loadings": {"a2": 0.3}}}})
    result = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100, criteria=Criteria(criterion="chisq"))
    assert result.level == "configural"
    assert result.fit.set_index("model").at["metric", "delta_pvalue"] < 1e-3


def test_non_invariant_intercept_is_caught_at_the_scalar_step():
    data = simulated({"column": "kind", "values": {"south": {"intercepts": {"c2": 0.8, "a4": -0.8}}}})
    result = measurement_invariance(data, SIM_MODEL, "kind", min_group_size=100)
    assert result.level == "metric" and result.latent_means.empty


def test_a_path_that_differs_is_found():
    data = simulated({"column": "kind", "values": {"east": {"structural": {"C": {"A": -0.3, "B": 0.3}}}}})
    result = invariance(data, SIM_MODEL, "kind", structural_model=SIM_STRUCTURAL, min_group_size=100)
    s = result.summary["structural"]
    assert s["paths_differ"] and s["paths_differing"] == ["C ~ A"]
    east = result.paths[(result.paths["group"] == "east") & (result.paths["lhs"] == "C") & (result.paths["rhs"] == "A")]
    assert east["std_all"].iat[0] == pytest.approx(-0.3, abs=0.1)


def test_fiml_ladder_on_incomplete_simulated_data():
    data = simulated({"column": "kind", "values": {}}, n=1500, missing_cell=0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupExcludedWarning)
        result = measurement_invariance(data, SIM_MODEL, "kind", missing="fiml", min_group_size=100)
    assert result.level in ("scalar", "strict")
    assert sum(result.summary["n_used"].values()) == len(data)


# --------------------------------------------------------------------------- the stage


def test_stage_writes_its_outputs(run_cli, tmp_path, hs):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    (tmp_path / "s.lavaan").write_text(HS_STRUCTURAL.replace("textual ~ visual", "textual ~ a*visual") + "ind := a*2\n")
    (tmp_path / "p.yaml").write_text("invariance:\n  group: school\n  min_group_size: 50\n  missing: listwise\n"
                                     "  configural_rmsea: 0.10\n  reference_group: Pasteur\n")
    code, out, err = run_cli("invariance", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan",
                             "--structural-model", tmp_path / "s.lavaan", "--params", tmp_path / "p.yaml",
                             "--partial", "x3 ~ 1", "--partial", "x7 ~ 1", "--out", tmp_path / "o")
    assert code == 0, err
    assert "level reached: strict (partial: x3 ~ 1, x7 ~ 1)" in out and "no evidence that the paths differ" in out
    o = tmp_path / "o"
    fit = pd.read_csv(o / "invariance_fit.csv")
    assert fit["model"].tolist() == list(LADDER) and fit["holds"].all()
    assert fit.columns.tolist()[:2] == ["model", "chisq"] and fit["delta_df"].tolist()[1:] == [6, 4, 9]
    groups = pd.read_csv(o / "invariance_groups.csv")
    assert groups.columns.tolist() == ["group", "n", "used", "reason"] and groups["n"].sum() == 301
    means = pd.read_csv(o / "invariance_latent_means.csv")
    assert len(means) == 3 and (means["reference"] == "Pasteur").all()
    paths = pd.read_csv(o / "invariance_paths.csv")
    assert len(paths) == 6 and not paths["differs"].any()
    params = pd.read_csv(o / "invariance_parameters.csv")
    assert (params["model"] == "strict").all() and {"group", "est", "se", "std_all"} <= set(params.columns)
    m = json.loads((o / "invariance.json").read_text())
    assert m["level"] == "strict" and m["group"] == "school" and m["simulated"] is False
    assert m["structural"]["compared"] and m["structural"]["delta_df"] == 3
    assert m["n_groups_used"] == 2 and m["partial"] == ["x3 ~ 1", "x7 ~ 1"]


def test_stage_reports_left_out_groups_and_refuses_too_few(run_cli, tmp_path, hs):
    data = hs.copy()
    data.loc[data.index[:3], "school"] = "Three"
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                             "--group", "school", "--min-group-size", "50", "--missing", "listwise",
                             "--out", tmp_path / "o")
    assert code == 0, err
    assert "left out: Three n=3" in out and "WARNING: GroupExcludedWarning: group 'Three'" in err
    groups = pd.read_csv(tmp_path / "o" / "invariance_groups.csv").set_index("group")
    assert not groups.at["Three", "used"] and "3 rows for 9 observed variables" in groups.at["Three", "reason"]
    code, _, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "school", "--min-group-size", "150", "--out", tmp_path / "o2")
    assert code == 2 and err.count("\n") == 1
    assert "needs at least two groups that can be fitted" in err and "Grant-White: n = 145" in err
    code, _, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "grade", "--out", tmp_path / "o3")
    assert code == 2 and "no column 'grade' to group by" in err
    code, _, err = run_cli("invariance", "--data", tmp_path / "d.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "school", "--partial", "visual =~ x9", "--out", tmp_path / "o4")
    assert code == 2 and "'visual =~ x9' is not a parameter of the model" in err


def test_stage_parameters_are_dvc_params():
    import yaml

    from pipeline.invariance import DEFAULTS, settings

    root = Path(__file__).resolve().parents[1]
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["invariance"]
    assert set(stage["params"]) == {f"invariance.{k}" for k in DEFAULTS} | {"efa.drop_items"}
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert set(params["invariance"]) == set(DEFAULTS)
    settings(params, {})
    assert "data/processed/split/cfa.csv" in " ".join(stage["deps"]).replace("${processed}", "data/processed")
    model = {k: v for d in yaml.safe_load((root / "dvc.yaml").read_text())["vars"] for k, v in d.items()}["model"]
    assert model == "instrument/sustainability_gap.lavaan"
    assert "${model}" in stage["deps"] and "--structural-model ${model}" in " ".join(stage["cmd"].split())


def test_stage_takes_the_estimator(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, out, err = run_cli("invariance", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan",
                             "--group", "school", "--min-group-size", "50", "--missing", "listwise",
                             "--estimator", "mlr", "--std-lv", "--out", tmp_path / "o")
    assert code == 0, err
    assert "MLR, robust indices" in out
    m = json.loads((tmp_path / "o" / "invariance.json").read_text())
    assert m["estimator"] == "MLR" and m["indices"] == "robust" and m["std_lv"] is True
    fit_ = pd.read_csv(tmp_path / "o" / "invariance_fit.csv")
    assert {"chisq_scaled", "cfi_robust", "rmsea_robust"} <= set(fit_.columns) and fit_["cfi_robust"].notna().all()
    params = pd.read_csv(tmp_path / "o" / "invariance_parameters.csv")
    lv = params[(params["op"] == "~~") & (params["lhs"] == "visual") & (params["rhs"] == "visual")]
    assert (lv["est"].iloc[:1] == 1).all()  # std.lv: the first group's latent variances are 1


@pytest.mark.parametrize("options, message", [
    (["--estimator", "MLM"], "invariance.missing: 'fiml' is not available with estimator MLM"),
    (["--ordered", "all"], "ordered items need estimator WLSMV or ULSMV"),
    (["--estimator", "GLS"], "invariance.estimator: 'GLS' is not available"),
    (["--estimator", "WLSMV", "--missing", "listwise", "--ordered", "x1,nope"], "ordered: nope not observed"),
])
def test_stage_refuses_impossible_combinations(run_cli, tmp_path, options, message):
    (tmp_path / "m.lavaan").write_text(HS_MODEL)
    code, _, err = run_cli("invariance", "--data", REF / "hs_full.csv", "--model", tmp_path / "m.lavaan",
                           "--group", "school", "--min-group-size", "50", *options, "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.slow
def test_stage_fits_the_ordinal_ladder(run_cli, tmp_path):
    (tmp_path / "m.lavaan").write_text(BFI_MODEL)
    code, out, err = run_cli("invariance", "--data", REF / "bfi_1000.csv", "--model", tmp_path / "m.lavaan",
                             "--group", "gender", "--missing", "listwise", "--estimator", "WLSMV", "--ordered", "all",
                             "--reference-group", "1", "--out", tmp_path / "o")
    assert code == 0, err
    assert "WLSMV, scaled indices" in out
    fit_ = pd.read_csv(tmp_path / "o" / "invariance_fit.csv")
    assert fit_["model"].tolist() == list(ORDINAL_LADDER) and fit_["df"].tolist() == [174, 219, 231, 243]


@pytest.mark.parametrize("section, message", [
    ({"estimator": "GLS"}, "invariance.estimator"),
    ({"ordered": 5}, "invariance.ordered"),
    ({"std_lv": "yes"}, "invariance.std_lv"),
    ({"estimator": "MLM"}, "invariance.missing: 'fiml' is not available with estimator MLM"),
    ({"missing": "pairwise"}, "invariance.missing"),
    ({"min_group_size": 1}, "invariance.min_group_size"),
    ({"partial": "x3 ~ 1"}, "invariance.partial"),
    ({"criterion": "bic"}, "invariance.criterion"),
    ({"delta_cfi": 0.01}, "invariance.delta_cfi"),
    ({"groups": "school"}, "invariance.groups: unknown key"),
])
def test_bad_stage_params_are_named(section, message):
    from pipeline.invariance import settings

    with pytest.raises(ValueError, match=message):
        settings({"invariance": section}, {})
