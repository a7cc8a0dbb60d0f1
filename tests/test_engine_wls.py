"""The engine's WLSMV and ULSMV (analysis/sem/wls.py) against lavaan 0.6-14
(tests/reference/engine_wls.R on psych::bfi, bfi_1000.csv); the single-group models of
tests/reference/wlsmv.json (binary and three-category items, cross loadings, equal loadings) are
compared in tests/test_wlsmv.py.

Tolerances are the largest differences seen times about two. lavaan's optimisers (nlminb for
each polychoric correlation and for the model) stop earlier than the estimates here, which
bounds the agreement: estimates 2.0e-5, standard errors 4.4e-6, std.all 8.0e-6 (its standard
errors 3.1e-7), fit measures 2.2e-7 relative (largest differences over the eleven models).
``missing = "pairwise"`` (bfi_1000.csv has 32 rows with a missing item; the CFA by WLSMV, the SEM
by ULSMV, two groups with thresholds and loadings equal): estimates 1.5e-5, SEs 2.8e-6, std.all
5.8e-6 (SEs 3.0e-7), fit measures 8.6e-8 relative, the shift parameter 7.1e-6 (of 74.0).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.warnings import InadmissibleWarning
from analysis.sem.engine import fit as engine_fit
from analysis.sem.partable import lavaanify
from analysis.sem.ordinal import ordinal_statistics
from analysis.sem.wls import scaled_difference

REF = Path(__file__).parent / "reference"
ITEMS = [f"{a}{k}" for a in "ACE" for k in range(1, 6)]
SINGLE = ("cfa_wlsmv", "cfa_ulsmv", "sem_wlsmv", "sem_ulsmv")
GROUPS = ("mg_configural", "mg_thresholds_loadings", "mg_ulsmv")
# missing = "pairwise" (bfi_1000.csv has 32 incomplete rows among the 15 items)
PAIRWISE = ("pairwise_cfa_wlsmv", "pairwise_sem_ulsmv", "pairwise_mg")
# The ordinal invariance ladder as semTools' measEq.syntax builds it (ID.cat = "Wu.Estabrook.2016",
# std.lv): lavaan's own parTable is given to the engine.
LADDER = ("ladder_configural", "ladder_thresholds", "ladder_loadings", "ladder_intercepts")
MEASURES = ("npar", "fmin", "chisq", "df", "pvalue", "chisq_scaled", "df_scaled", "pvalue_scaled",
            "chisq_scaling_factor", "baseline_chisq", "baseline_df", "baseline_pvalue", "baseline_chisq_scaled",
            "baseline_df_scaled", "baseline_pvalue_scaled", "baseline_chisq_scaling_factor", "cfi", "tli",
            "cfi_scaled", "tli_scaled", "rmsea", "rmsea_ci_lower", "rmsea_ci_upper", "rmsea_pvalue", "rmsea_scaled",
            "rmsea_ci_lower_scaled", "rmsea_ci_upper_scaled", "rmsea_pvalue_scaled", "cfi_robust", "tli_robust",
            "rmsea_robust", "rmsea_ci_lower_robust", "rmsea_ci_upper_robust", "rmsea_pvalue_robust", "srmr", "wrmr",
            "gfi")


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "engine_wls.json").read_text())


@pytest.fixture(scope="module")
def bfi():
    return pd.read_csv(REF / "bfi_1000.csv")


def _table(ref, data, group=None):
    cols = ITEMS + ([group] if group else [])
    complete = data[cols].dropna() if ref.get("missing", "listwise") == "listwise" else data[cols]
    ordered = {v: int(complete[v].nunique()) for v in ITEMS}
    ge = ref["group_equal"]
    ge = [g for g in ([ge] if isinstance(ge, str) else ge) if g]
    labels = [str(g) for g in ref["group_labels"]] if group else None
    return lavaanify(ref["model"], list(data.columns), ordered=ordered, estimator=ref["estimator"], groups=labels,
                     group_equal=ge), labels


@pytest.fixture(scope="module")
def fits(lavaan, bfi):
    out = {}
    for name in SINGLE:
        pt, _ = _table(lavaan[name], bfi)
        out[name] = engine_fit(pt, bfi[ITEMS], estimator=lavaan[name]["estimator"], ordered=ITEMS)
    for name in GROUPS:
        pt, labels = _table(lavaan[name], bfi, "gender")
        out[name] = engine_fit(pt, bfi[ITEMS + ["gender"]], group="gender", group_labels=labels,
                               estimator=lavaan[name]["estimator"], ordered=ITEMS)
    for name in PAIRWISE:
        group = "gender" if name == "pairwise_mg" else None
        pt, labels = _table(lavaan[name], bfi, group)
        out[name] = engine_fit(pt, bfi[ITEMS + (["gender"] if group else [])], group=group, group_labels=labels,
                               estimator=lavaan[name]["estimator"], ordered=ITEMS, missing="pairwise")
    return out


@pytest.fixture(scope="module")
def ladder(lavaan, bfi, fits):
    out = dict(fits)
    for name in LADDER:
        ref = lavaan[name]
        out[name] = engine_fit(pd.DataFrame(ref["partable"]), bfi[ITEMS + ["gender"]], group="gender",
                               group_labels=[str(g) for g in ref["group_labels"]], estimator="WLSMV", ordered=ITEMS)
    return out


LADDER_SLOW = tuple(pytest.param(name, marks=pytest.mark.slow) for name in LADDER)


def _fits(request, name):
    return request.getfixturevalue("ladder" if name in LADDER else "fits")


def _merged(ref, ours):
    pe = pd.DataFrame(ref["pe"])
    pe["std_all_se"] = ref["std_all_se"]
    pe = pe[~pe["op"].isin(["==", "<", ">"])].copy()
    pe.loc[pe["op"] == ":=", "group"] = 0  # lavaan: no group column for one group; 0 for several
    m = pe.merge(ours, on=["lhs", "op", "rhs", "group"], suffixes=("_lavaan", ""), how="left", validate="1:1")
    assert len(m) == len(pe) and m["est"].notna().all()
    return m


@pytest.mark.parametrize("name", SINGLE + GROUPS + PAIRWISE)
def test_parameter_table_matches_lavaan(lavaan, bfi, name):
    """lavaanify gives lavaan's parTable (free indices and fixed values) for the ordinal models."""
    ref = lavaan[name]
    pt, _ = _table(ref, bfi, "gender" if name in GROUPS or name == "pairwise_mg" else None)
    rpt = pd.DataFrame(ref["partable"])
    for col in ("lhs", "op", "rhs"):
        assert list(pt[col]) == list(rpt[col])
    assert list(pt["free"]) == list(rpt["free"])


@pytest.mark.parametrize("name", SINGLE + GROUPS + PAIRWISE + LADDER_SLOW)
def test_estimates_match_lavaan(request, lavaan, name):
    fits = _fits(request, name)
    """Estimates (largest difference 2.0e-5), robust SEs (4.4e-6), std.all (8.0e-6) and its SEs
    (3.1e-7), the := indirect effect included; every lavaan row present (thresholds, computed
    residual variances of the items, scale factors). The Wu & Estabrook ladder (free scale
    factors, latent means and, at the last step, item intercepts in the second group; std.lv with
    lavaan's sign: first loading positive): estimates 9.2e-6, SEs 5.1e-7."""
    m = _merged(lavaan[name], fits[name].parameters)
    assert np.abs(m["est_lavaan"] - m["est"]).max() < 4e-5
    assert np.abs(m["se_lavaan"] - m["se"]).max() < 9e-6
    assert np.abs(m["std.all"] - m["std_all"]).max() < 1e-5
    assert np.abs(m["std_all_se_lavaan"] - m["std_all_se"]).max() < 6e-7
    fixed = m["se_lavaan"] == 0
    assert (m.loc[fixed, "se"] == 0).all()


def test_indirect_effect(fits, lavaan):
    """ind := a*b: estimate and delta-method SE as lavaan's."""
    for name in ("sem_wlsmv", "sem_ulsmv"):
        m = _merged(lavaan[name], fits[name].parameters)
        row = m[m["op"] == ":="].iloc[0]
        assert row["lhs"] == "ind"
        assert abs(row["est"] - row["est_lavaan"]) < 2e-5 and abs(row["se"] - row["se_lavaan"]) < 5e-6


@pytest.mark.parametrize("name", SINGLE + GROUPS + PAIRWISE + LADDER_SLOW)
def test_fit_measures_match_lavaan(request, lavaan, name):
    fits = _fits(request, name)
    """chisq and its scaled-shifted version, scaling factor, baseline, CFI/TLI/RMSEA plain,
    scaled and robust (catML) with the interval, SRMR, WRMR, GFI: largest relative difference 2.2e-7 (NA in lavaan
    is NaN here: the ULSMV p-values)."""
    ref, ours = lavaan[name]["fit"], fits[name].fit
    for key in MEASURES:
        r = ref[key.replace("_", ".")]
        mine = ours[key]
        if r is None:
            assert np.isnan(mine), key
        else:
            assert abs(mine - r) <= 5e-7 * max(1.0, abs(r)), (key, mine, r)


@pytest.mark.parametrize("name", SINGLE + GROUPS + PAIRWISE + LADDER_SLOW)
def test_scaled_test_matches_lavaan(request, lavaan, name):
    fits = _fits(request, name)
    """lavInspect(fit, "test")$scaled.shifted: the shift parameter (summed over groups) and the
    scaling factor 1/a (1.2e-7 relative)."""
    ref, ours = lavaan[name]["test"], fits[name].fit
    assert abs(ours["chisq_shift_parameters"] - ref["shift.parameter"]) < 3e-7 * max(1.0, abs(ref["shift.parameter"]))
    assert abs(ours["chisq_scaling_factor"] - ref["scaling.factor"]) < 3e-7


@pytest.mark.slow
def test_scaled_difference_matches_lavaan(ladder, lavaan):
    """lavTestLRT of nested WLSMV fits (the ordinal ladder's steps, group.equal, a structural
    restriction): scaled-and-shifted difference to 2.1e-7 relative, its p-value to 1.4e-6
    relative (above 1e-10)."""
    for t in lavaan["lrt"]:
        res = scaled_difference(ladder[t["less"]], ladder[t["more"]])
        assert res["df_diff"] == t["df_diff"]
        assert abs(res["chisq_diff"] - t["chisq_diff"]) < 5e-7 * t["chisq_diff"], t
        assert abs(res["pvalue"] - t["pvalue"]) < 3e-6 * t["pvalue"] + 1e-12, t  # 1e-31: the chisq decides


def test_pairwise_statistics_match_lavaan(lavaan, bfi):
    """missing = "pairwise": thresholds on each item's answered cases, polychorics on each pair's,
    lavaan's NACOV with zero scores for unanswered items: wls.obs (2.1e-8), the diagonal of gamma
    (3.9e-8 relative) and its first row (1.7e-9) as lavaan's; N the cases with some item answered
    (lavaan's nobs)."""
    ref = lavaan["pairwise_cfa_wlsmv"]
    st = ordinal_statistics(bfi[ITEMS], missing="pairwise")
    assert st.n == ref["nobs"] and st.n > len(bfi[ITEMS].dropna())
    assert st.labels == ref["wls_obs_names"]
    assert np.abs(st.sample - np.array(ref["wls_obs"])).max() < 5e-8
    gamma = st.nacov.to_numpy()
    assert np.abs(np.diag(gamma) / np.array(ref["gamma_diag"]) - 1).max() < 8e-8
    assert np.abs(gamma[0] - np.array(ref["gamma_first_row"])).max() < 4e-9
    with pytest.raises(InputError, match="missing='pairwise'"):
        ordinal_statistics(bfi[ITEMS])


def test_pairwise_refused_for_ml(bfi):
    pt = lavaanify("f =~ A1 + A2 + A3", list(bfi.columns))
    with pytest.raises(InputError, match="missing"):
        engine_fit(pt, bfi, estimator="ML", missing="pairwise")


def test_scaled_difference_order_refused(fits):
    with pytest.raises(InputError, match="more restricted"):
        scaled_difference(fits["mg_thresholds_loadings"], fits["mg_configural"])


def test_robust_indices_with_threshold_constraints_are_nan(fits, lavaan):
    """lavaan 0.6-14 cannot build its catML refit when equality constraints name thresholds
    (group.equal = "thresholds"): NA robust indices, NaN here."""
    assert lavaan["mg_thresholds_loadings"]["fit"]["cfi.robust"] is None
    assert np.isnan(fits["mg_thresholds_loadings"].fit["cfi_robust"])
    assert np.isfinite(fits["mg_configural"].fit["cfi_robust"])


# --------------------------------------------------------------------------- refusals


def test_mixed_pairwise_and_all_continuous_refused():
    """Continuous variables with ordered items take complete rows only (pairwise polyserial
    statistics are not built); a table without any ordered item is not a WLSMV model here."""
    d = pd.read_csv(REF / "hs_mixed.csv")
    ordered = {v: int(d[v].nunique()) for v in ("x1", "x2", "x3")}
    pt = lavaanify("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6", list(d.columns), ordered=ordered,
                   estimator="WLSMV")
    with pytest.raises(InputError, match="missing='pairwise' with continuous variables \\(x4, x5, x6\\)"):
        engine_fit(pt, d, estimator="WLSMV", ordered=list(ordered), missing="pairwise")
    with pytest.raises(InputError, match="column 'x4' has the value 2.33333 in row 1, which is not a whole number"):
        engine_fit(pt, d, estimator="WLSMV", ordered=list(ordered) + ["x4"])
    with pytest.raises(InputError, match="no ordered item"):
        engine_fit(lavaanify("textual =~ x4 + x5 + x6", list(d.columns), estimator="WLSMV"), d, estimator="WLSMV")


def test_categories_differ_from_table(bfi):
    pt = lavaanify("f =~ A1 + A2 + A3", list(bfi.columns), ordered={"A1": 5, "A2": 6, "A3": 6}, estimator="WLSMV")
    with pytest.raises(InputError, match="A1"):
        engine_fit(pt, bfi, estimator="ULSMV")


def test_negative_df_refused(bfi):
    pt = lavaanify("f =~ A1 + A2 + A3\nA1 ~~ A2\nA2 ~~ A3\nA1 ~~ A3", list(bfi.columns),
                   ordered={"A1": 6, "A2": 6, "A3": 6}, estimator="WLSMV")
    with pytest.raises(InputError, match="not identified"):
        engine_fit(pt, bfi, estimator="WLSMV")


def test_heywood_case_is_noted():
    """An item whose computed residual variance is negative (a loading above 1 on the y* scale)
    is reported in the fit's warnings, as the ML engine reports a negative variance."""
    rng = np.random.default_rng(3)
    n = 200
    f = rng.standard_normal(n)
    cols = {}
    for j, lam in enumerate([0.99, 0.9, 0.3, 0.3]):
        ystar = lam * f + np.sqrt(max(1 - lam ** 2, 0.02)) * rng.standard_normal(n)
        cols[f"y{j}"] = np.digitize(ystar, [-1, 0, 1])
    d = pd.DataFrame(cols)
    pt = lavaanify("f =~ y0 + y1 + y2 + y3", list(d.columns), ordered={c: 4 for c in d}, estimator="WLSMV")
    with pytest.warns(InadmissibleWarning) as record:
        res = engine_fit(pt, d, estimator="WLSMV")
    assert any("Heywood case: the variance of y0" in str(w.message) for w in record)
    assert any("standardised loading of y0 on f" in str(w.message) for w in record)
    row = res.parameters[(res.parameters["lhs"] == "y0") & (res.parameters["op"] == "~~")].iloc[0]
    assert row["est"] < 0 and row["se"] == 0
    assert any("Heywood case: the variance of y0 is negative" in w for w in res.warnings)


def test_ordered_needs_a_least_squares_estimator(bfi):
    pt = lavaanify("f =~ A1 + A2 + A3", list(bfi.columns), ordered={"A1": 6, "A2": 6, "A3": 6}, estimator="WLSMV")
    with pytest.raises(InputError, match="need estimator WLSMV or ULSMV"):
        engine_fit(pt, bfi, estimator="ML")
    with pytest.raises(InputError, match="A3.*not in 'ordered'"):
        engine_fit(pt, bfi, estimator="WLSMV", ordered=["A1", "A2"])
    with pytest.raises(InputError, match="information"):
        engine_fit(pt, bfi, estimator="WLSMV", information="observed")


# --------------------------------------------------------------------------- mixed indicators

MIXED = json.loads((REF / "engine_wls_mixed.json").read_text())
MIXED_NAMES = ("mixed_cfa_wlsmv", "mixed_sem_ulsmv", "mixed_mg_wlsmv")


@pytest.fixture(scope="module")
def mixed():
    d = pd.read_csv(REF / "hs_mixed.csv")
    out = {}
    for name in MIXED_NAMES:
        ref = MIXED[name]
        group = ref["group"]
        ordered = {v: int(d[v].nunique()) for v in ref["ordered"]}
        labels = [str(g) for g in ref["group_labels"]] if group else None
        ge = ref["group_equal"]
        ge = [g for g in ([ge] if isinstance(ge, str) else ge) if g]
        pt = lavaanify(ref["model"], list(d.columns), ordered=ordered, estimator=ref["estimator"], groups=labels,
                       group_equal=ge)
        out[name] = (pt, engine_fit(pt, d, group=group, group_labels=labels, estimator=ref["estimator"],
                                    ordered=ref["ordered"]))
    return out


@pytest.mark.parametrize("name", MIXED_NAMES)
def test_mixed_table_matches_lavaan(mixed, name):
    """lavaan's parTable for continuous and ordered indicators: thresholds and ~*~ rows for the
    ordered, free intercepts and residual variances for the continuous; with equal thresholds
    across groups, the continuous intercepts equal too (lavaan 0.6-14 adds "intercepts")."""
    pt, _ = mixed[name]
    ref = pd.DataFrame(MIXED[name]["partable"])
    assert len(pt) == len(ref)
    for col in ("lhs", "op", "rhs", "block", "group", "free", "exo", "label", "plabel"):
        assert list(pt[col].astype(str)) == list(ref[col].astype(str)), col


@pytest.mark.parametrize("name", MIXED_NAMES[:2])
def test_mixed_statistics_match_lavaan(mixed, name):
    """wls.obs (thresholds, minus the continuous means, their variances, then polychoric,
    polyserial times the standard deviation, and covariances): 1.0e-7; gamma 2.7e-7."""
    ref, st = MIXED[name], mixed[name][1].estimator.stats[0]
    assert st.labels == ref["wls_obs_names"]
    assert np.abs(st.sample - np.array(ref["wls_obs"])).max() < 2.5e-7
    assert np.abs(st.nacov.to_numpy() - np.array(ref["gamma"])).max() < 6e-7


@pytest.mark.parametrize("name", MIXED_NAMES)
def test_mixed_estimates_and_fit_match_lavaan(mixed, name):
    """Estimates 6.6e-6, SEs 9.4e-7, std.all 4.2e-6 (its SEs 4.4e-7), the := effect included;
    every fitMeasures value the engine reports within 2.7e-7 relative, NA (the robust catML
    indices with continuous variables, ULSMV's p-values) as NaN; the scaled test's shift and
    scaling factor."""
    ref, res = MIXED[name], mixed[name][1]
    m = _merged(ref, res.parameters)
    assert np.abs(m["est_lavaan"] - m["est"]).max() < 1.5e-5
    assert np.abs(m["se_lavaan"] - m["se"]).max() < 2e-6
    assert np.abs(m["std.all"] - m["std_all"]).max() < 9e-6
    assert np.abs(m["std_all_se_lavaan"] - m["std_all_se"]).max() < 9e-7
    compared = 0
    for key, r in ref["fit"].items():
        mine = res.fit.get(key.replace(".", "_"))
        if mine is None:
            continue
        compared += 1
        if r is None:
            assert np.isnan(mine), key
        else:
            assert abs(mine - r) <= 5e-7 * max(1.0, abs(r)), (key, mine, r)
    assert compared >= 70
    assert np.isnan(res.fit["cfi_robust"])
    t = ref["test"]
    assert abs(res.fit["chisq_shift_parameters"] - t["shift.parameter"]) < 6e-7
    assert abs(res.fit["chisq_scaling_factor"] - t["scaling.factor"]) < 2e-7
