"""analysis/sem/fit.py against lavaan 0.6-14: fitMeasures(fit) (every measure) for each estimator
the unified engine fits (analysis.sem.api.fit_model; WLSMV through lavaanify and engine.fit with
``ordered``), and lavaan's lav_fit_* functions on edge cases.

Reference values: tests/reference/fit_indices.R -> fit_indices.json.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.sem import fit as F
from analysis.sem.api import fit_model
from analysis.sem.engine import fit as engine_fit
from analysis.sem.partable import lavaanify

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "fit_indices.json").read_text())

# Per fit: the largest relative difference (|ours - lavaan| / max(1, |lavaan|)) allowed, the
# lavaan measures gapscale does not report (each named, so a gap that opens or closes is noticed)
# and, where given, the tolerance of the *_robust measures.
# The tolerances are set just above the measured agreement (see the comments); what limits it
# is the estimates, not the indices: lavaan's optimiser stops earlier than gapscale's.
CASES = {
    # ML: every measure to 5e-7 (measured 4e-7, crmr).
    "hs_ml": (5e-7, set()),
    # ML + FIML: the robust indices (FIML-C V6) depend on lavaan's EM moments, stopped at 1e-5
    # (tests/test_fiml_robust.py): 1.8e-5 for the robust not-close p-value, 5e-6 for the robust
    # TLI; the rest (GFI from the pairwise moments and the missing-data weight too) 6e-7.
    "hs_fiml": (2e-5, set()),
    # MLR: the Yuan-Bentler factor agrees to 3e-6 relative (the sandwich by differences), so
    # chisq_scaled to 3e-6 relative (2.6e-4 absolute on 87); the rest 3e-6.
    "hs_mlr": (3.5e-6, set()),
    # MLR + FIML: the robust indices depend on lavaan's EM moments, stopped at 1e-5
    # (tests/test_fiml_robust.py): 2.1e-5 for the not-close p-value, 5e-6 for the robust TLI.
    "hs_mlr_fiml": (2.5e-5, set()),
    # Two groups (sqrt(G) RMSEA, n_g/N-weighted residual measures and GFI): measured 3.5e-7.
    "hs_groups": (5e-7, set()),
    "hs_groups_metric": (5e-7, set()),
    # Two groups with FIML: measured 5.7e-7 (rmr_nomean); GFI 5e-9. The robust indices (the
    # FIML-corrected statistic; the old multi-group code did not compute them) depend on lavaan's
    # EM moments as in hs_fiml: 1.2e-5 for the robust not-close p-value, their own tolerance.
    "hs_groups_fiml": (6e-7, set(), 1.5e-5),
    # WLSMV (scaled-and-shifted test, categorical robust indices, WRMR): measured 2e-8.
    "bfi_wlsmv": (5e-8, set()),
    # WLSMV with a latent regression (estimates 1.4e-5 from lavaan's, which stops earlier):
    # measured 7.3e-8 (tli_robust).
    "bfi_wlsmv_struct": (1e-7, set()),
    # rmr is in the data's units (variances up to 15): 2.4e-6 absolute, 5e-6 relative.
    "poldem_ml": (3e-6, set()),
    "poldem_mlr": (3e-6, set()),
    # MLM (Satorra-Bentler; the old single-group code had no MLM): measured 3.4e-7
    # (rmsea_notclose_pvalue_scaled).
    "hs_mlm": (5e-7, set()),
}

_FITS: dict = {}


def fit_wlsmv(data: pd.DataFrame, model: str, **kwargs):
    """lavaan's ``cfa/sem(model, data, ordered = TRUE, estimator = "WLSMV")``: every item of the
    model ordered, its categories counted on the complete rows (lavaan's listwise)."""
    items = [c for c in data.columns if c in lavaanify(model, list(data.columns))["lhs"].tolist()
             + lavaanify(model, list(data.columns))["rhs"].tolist()]
    complete = data[items].dropna()
    pt = lavaanify(model, list(data.columns), ordered={v: int(complete[v].nunique()) for v in items},
                   estimator="WLSMV")
    return engine_fit(pt, data[items], estimator="WLSMV", ordered=items, **kwargs)


def engine_result(name: str):
    spec = REF["fits"][name]
    data = pd.read_csv(HERE / spec["data"])
    if "group_data" in spec:  # the group of each id from another file
        data = data.merge(pd.read_csv(HERE / spec["group_data"])[["id", spec["group"]]], on="id")
    equal = spec.get("group_equal", [])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if spec["estimator"] == "WLSMV":
            fit = fit_wlsmv(data, spec["model"])
        else:
            try:
                fit = fit_model(spec["model"], data.drop(columns="id", errors="ignore"), group=spec.get("group"),
                                group_equal=[equal] if isinstance(equal, str) else equal,
                                estimator=spec["estimator"], missing=spec["missing"])
            except InputError as exc:  # MLR with FIML: the engine's until the mlr-fiml branch lands
                if spec["estimator"] == "MLR" and spec["missing"] == "fiml" and "fiml" in str(exc):
                    pytest.skip(f"the engine does not fit {name} yet: {exc}")
                raise
    assert not record, [str(w.message) for w in record]  # lavaan gave no warning either
    assert fit.converged
    return fit


def gapscale_fit(name: str) -> dict:
    if name not in _FITS:
        _FITS[name] = engine_result(name).fit
    return _FITS[name]


def _na(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@pytest.mark.parametrize("name", list(CASES))
def test_every_fit_measure_matches_lavaan(name):
    tol, not_reported, *robust_tol = CASES[name]
    ref = REF["fits"][name]["ref"]
    assert ref["converged"] and not ref["r_warnings"]
    ours = gapscale_fit(name)
    missing, wrong = set(), []
    for key, value in ref["fit_measures"].items():
        k = key.replace(".", "_")
        if k not in ours:
            missing.add(k)
            continue
        got = ours[k]
        if _na(value) or _na(got):
            if not (_na(value) and _na(got)):
                wrong.append((k, value, got))
            continue
        allowed = robust_tol[0] if robust_tol and k.endswith("_robust") else tol
        if abs(got - value) > allowed * max(1.0, abs(value)):
            wrong.append((k, value, got))
    assert missing == not_reported
    assert not wrong


def test_lavaan_measures_are_all_there():
    """The measures lavaan reports for ML (46 of them) are in the single-group ML fit, under
    lavaan's names with dots as underscores, with the robust ones only for MLR and FIML."""
    ours = gapscale_fit("hs_ml")
    for key in ("gfi", "agfi", "rni", "bic2", "ecvi", "srmr_bentler", "crmr", "srmr_mplus", "rmsea_notclose_pvalue"):
        assert key in ours
    assert "cfi_robust" not in ours and "rmsea_ci_lower_scaled" not in ours
    mlr = gapscale_fit("hs_mlr")
    assert {"rmsea_ci_lower_scaled", "rmsea_ci_upper_scaled", "rmsea_pvalue_scaled", "cfi_robust"} <= set(mlr)
    # The scaled interval is lavaan's (the unscaled T on c * df degrees of freedom), not the
    # interval of the scaled statistic on df, which differs.
    t, c, df, n = mlr["chisq"], mlr["chisq_scaling_factor"], mlr["df"], mlr["ntotal"]
    assert F.rmsea_ci(t, c * df, n) == pytest.approx((mlr["rmsea_ci_lower_scaled"], mlr["rmsea_ci_upper_scaled"]))
    assert F.rmsea_ci(t / c, df, n)[1] != pytest.approx(mlr["rmsea_ci_upper_scaled"], rel=1e-3)


# --------------------------------------------------------------------------- lavaan's functions, edge cases


@pytest.mark.parametrize("case", REF["incremental"], ids=lambda c: f"T{c['chisq']}-df{c['df']}-T0{c['base_chisq']}")
def test_incremental_indices_follow_lavaan_rules(case):
    """df = 0, chisq < df, a baseline worse than its df or than the model, T0 = df0, df > df0,
    robust factors (and a factor of 1, which lavaan treats as no correction)."""
    args = (case["chisq"], case["df"], case["base_chisq"], case["base_df"])
    robust = {"c_hat": case["c_hat"], "c_hat_base": case["c_hat_base"]} if "c_hat" in case else {}
    for name, func in (("cfi", F.cfi), ("tli", F.tli), ("rni", F.rni)):
        assert_same(func(*args, **robust), case[name], name)
    for name, func in (("nfi", F.nfi), ("pnfi", F.pnfi), ("rfi", F.rfi), ("ifi", F.ifi)):
        assert_same(func(*args), case[name], name)
    assert F.nnfi(*args, **robust) == F.tli(*args, **robust) or math.isnan(F.tli(*args, **robust))


def assert_same(ours, theirs, name, rel=1e-12, abs_=1e-12):
    if theirs is None:
        assert math.isnan(ours), name
    else:
        assert ours == pytest.approx(theirs, rel=rel, abs=abs_), name


@pytest.mark.parametrize("case", REF["rmsea"], ids=lambda c: f"T{c['chisq']:.4g}-df{c['df']:.4g}-G{c['groups']}")
def test_rmsea_interval_and_close_fit_follow_lavaan(case):
    """Point, 90% interval, close and not-close fit p-values, including df = 0, df < 1,
    chisq < df, several groups, non-integer df and a robust factor. lavaan's uniroot stops at a
    tolerance of 1.2e-4 in the noncentrality, so the bounds agree to 1e-6, not to rounding."""
    args = dict(chisq=case["chisq"], df=case["df"], n=case["n"], groups=case["groups"], c_hat=case["c_hat"])
    assert_same(F.rmsea(**args), case["rmsea"], "rmsea")
    lo, hi = F.rmsea_ci(**args)
    assert_same(lo, case["ci_lower"], "lower", rel=1e-6, abs_=1e-7)
    assert_same(hi, case["ci_upper"], "upper", rel=1e-6, abs_=1e-7)
    assert_same(F.rmsea_pvalue(**args), case["pvalue"], "pvalue", rel=1e-9, abs_=1e-12)
    assert_same(F.rmsea_notclose_pvalue(**args, h0=0.08), case["notclose_pvalue"], "notclose", rel=1e-9, abs_=1e-12)


@pytest.mark.parametrize("case", REF["other"], ids=lambda c: f"df{c['df']}")
def test_information_criteria_and_other_indices_follow_lavaan(case):
    assert_same(F.aic(case["logl"], case["npar"]), case["aic"], "aic")
    assert_same(F.bic(case["logl"], case["npar"], case["n"]), case["bic"], "bic")
    assert_same(F.bic2(case["logl"], case["npar"], case["n"]), case["bic2"], "bic2")
    assert_same(F.ecvi(case["chisq"], case["npar"], case["n"]), case["ecvi"], "ecvi")
    assert_same(F.mfi(case["chisq"], case["df"], case["n"]), case["mfi"], "mfi")
    assert_same(F.cn(case["chisq"], case["df"], case["n"]), case["cn_05"], "cn_05")
    assert_same(F.agfi(case["gfi"], case["nel"], case["df"]), case["agfi"], "agfi")
    assert_same(F.pgfi(case["gfi"], case["nel"], case["df"]), case["pgfi"], "pgfi")
    assert_same(F.wrmr(case["chisq"], case["nel"]), case["wrmr"], "wrmr")


def test_missing_statistics_give_nan_not_a_number():
    nan = float("nan")
    assert math.isnan(F.cfi(nan, 24, 900, 36))
    assert math.isnan(F.cfi(85, 24, 900, 36, c_hat=nan, c_hat_base=1.2))  # a robust factor not available
    assert math.isnan(F.tli(85, 24, nan, 36))
    assert math.isnan(F.rmsea(nan, 24, 301))
    assert all(math.isnan(b) for b in F.rmsea_ci(85, nan, 301))
    assert math.isnan(F.chisq_pvalue(0.0, 0))  # saturated: NA as lavaan
    with pytest.raises(ValueError, match="level"):
        F.rmsea_ci(85, 24, 301, level=1.5)


def test_cfi_is_one_and_rni_above_one_when_chisq_below_df():
    assert F.cfi(10, 20, 500, 36) == 1.0
    assert F.rni(10, 20, 500, 36) == pytest.approx(1 + 10 / 464)
    assert F.tli(10, 20, 500, 36) == pytest.approx(1 + (10 * 36) / (464 * 20))


def test_generic_gfi_with_the_ml_weight_is_ml_gfi():
    """lav_fit_gfi's quadratic form with the full normal-theory weight (means and covariances)
    equals the closed form of ml_gfi, for one group and two."""
    rng = np.random.default_rng(11)
    p = 4
    rows, cols = np.tril_indices(p)

    def one(seed_shift):
        a = rng.normal(size=(50, p))
        s = np.cov(a, rowvar=False, bias=True) + np.eye(p)
        sig = s + 0.05 * np.diag(rng.uniform(size=p))
        m, mu = a.mean(axis=0) + 2, a.mean(axis=0) + 2.1
        k = np.linalg.inv(sig)
        units = np.zeros((len(rows), p, p))
        units[np.arange(len(rows)), rows, cols] = 1
        units[np.arange(len(rows)), cols, rows] = 1
        w_cov = 0.5 * np.einsum("aij,jk,bkl,li->ab", units, k, units, k)
        w = np.block([[k, np.zeros((p, len(rows)))], [np.zeros((len(rows), p)), w_cov]])
        return (np.concatenate([m, s[rows, cols]]), np.concatenate([mu, sig[rows, cols]]), w), (s, sig, m, mu)

    g1, g2 = one(0), one(1)
    assert F.gfi(g1[0][0], g1[0][1], g1[0][2], 50) == pytest.approx(F.ml_gfi(*g1[1][:2], 50, *g1[1][2:]), rel=1e-12)
    both_generic = F.gfi([g1[0][0], g2[0][0]], [g1[0][1], g2[0][1]], [g1[0][2], g2[0][2]], [50, 150])
    both_ml = F.ml_gfi([g1[1][0], g2[1][0]], [g1[1][1], g2[1][1]], [50, 150], [g1[1][2], g2[1][2]],
                       [g1[1][3], g2[1][3]])
    assert both_generic == pytest.approx(both_ml, rel=1e-12)


def test_residual_measures_of_a_perfect_fit_are_zero_and_groups_are_weighted():
    s = np.array([[2.0, 0.6], [0.6, 1.0]])
    zero = F.residual_measures(s, s, 100, np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert all(v == 0 for v in zero.values())
    off = s + np.array([[0.0, 0.1], [0.1, 0.0]])
    one = F.residual_measures(s, off, 100)
    # srmr_bentler: the one covariance residual 0.1 / sqrt(2 * 1) over 3 elements.
    assert one["srmr_bentler"] == pytest.approx(np.sqrt((0.1 / np.sqrt(2)) ** 2 / 3), rel=1e-12)
    assert one["srmr"] == one["srmr_bentler"]
    two = F.residual_measures([s, s], [off, s], [100, 300])
    assert two["srmr"] == pytest.approx(one["srmr"] / 4, rel=1e-12)
    with pytest.raises(ValueError, match="group sizes"):
        F.residual_measures([s, s], [off, s], [100])


def test_fit_measures_for_a_saturated_model_follow_lavaan():
    """df = 0 (lavaan's fitMeasures on a 3-indicator factor): p-value NA, CFI/TLI 1, RMSEA and
    its interval 0, close-fit p NA, AGFI 1, CN NA."""
    out = F.fit_measures(npar=6, ntotal=301, chisq=0.0, df=0, baseline_chisq=111.271, baseline_df=3, logl=-1356.977,
                         unrestricted_logl=-1356.977, gfi_value=1.0, nel=6)
    assert math.isnan(out["pvalue"]) and math.isnan(out["rmsea_pvalue"]) and math.isnan(out["cn_05"])
    assert out["cfi"] == out["tli"] == out["rfi"] == out["nfi"] == out["agfi"] == 1.0
    assert out["rmsea"] == out["rmsea_ci_lower"] == out["rmsea_ci_upper"] == 0.0
    assert out["pgfi"] == 0.0 and out["bic2"] == pytest.approx(2729.169, abs=1e-3)


# --------------------------------------------------------------------------- WLSMV convergence (issue 11)


def test_wlsmv_convergence_is_lavaans_meaning():
    """A latent regression on bfi items: the optimiser's own criterion is met and the gradient is
    far below lavaan's optim.dx.tol (1e-3); the estimates agree with lavaan's converged solution
    to 1.4e-5 (lavaan stops earlier). It used to be reported as not converged (a gradient test of
    1e-6 times the discrepancy). An optimisation cut short is still not converged."""
    spec = REF["fits"]["bfi_wlsmv_struct"]
    data = pd.read_csv(HERE / spec["data"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fit = fit_wlsmv(data, spec["model"])
    assert not record, [str(w.message) for w in record]
    assert fit.converged and spec["ref"]["converged"]
    est = pd.DataFrame(spec["estimates"])
    merged = est.merge(fit.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(merged) == len(est)
    assert np.max(np.abs(merged["est_r"] - merged["est"])) < 2e-5
    with pytest.warns(Warning, match="did not converge"):
        short = fit_wlsmv(data, spec["model"], max_iter=1)  # one scoring step: cut short
    assert not short.converged
