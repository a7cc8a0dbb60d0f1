"""Reliability and validity against psych and semTools (tests/reference/reliability.R), recovery, bad input.

The R script fits the Holzinger-Swineford 3-factor CFA (and a variant with a cross-loading and
one with a second-order factor) with lavaan, writes each parameterEstimates(fit, standardized =
TRUE) table to CSV and semTools' compRelSEM, AVE and htmt and psych's alpha to JSON; the tests
feed R's parameter tables in, so they need neither R nor a CFA engine. Regenerate with
    Rscript tests/reference/reliability.R
Largest differences from R seen when the reference was made (every check is 1e-10 or tighter,
Duhachek 1e-5): compRelSEM omega 3e-15 (obs.var = TRUE) and 1e-15 (FALSE); AVE 2e-15 and 1e-15;
standardised CR and AVE 4e-16; factor correlations and sqrt(AVE) 2e-15; htmt 4e-16 (geometric
and arithmetic, HS and bfi with NAs); psych alpha (raw, std, G6, mean/median r, ase, mean, sd)
5e-15, Feldt limits 6e-16, Duhachek limits 2e-6 (psych uses z = 1.96, gapscale the exact
quantile); item statistics and alpha if deleted 5e-15; Harman's eigenvalue and share 4e-15.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import reliability as rel
from analysis.errors import InputError

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "reliability.json").read_text())
HS_FACTORS = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}
MODELS = ["hs3", "hs3_cross", "hs_second_order"]
TOL = 1e-3


@pytest.fixture(scope="module")
def hs():
    return pd.read_csv(REF / "holzinger_swineford.csv")


@pytest.fixture(scope="module")
def bfi():
    return pd.read_csv(REF / "bfi_600.csv")


def partable(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"reliability_partable_{name}.csv")


def sampstat(hs: pd.DataFrame) -> pd.DataFrame:
    """lavaan's sample covariance: divisor n."""
    return hs.cov(ddof=0)


def assert_close(ours, theirs, tol=TOL):
    """Equal within tol, NaN where R has NA (None in JSON)."""
    a = np.asarray(ours, dtype=float)
    b = np.array([np.nan if v is None else v for v in np.ravel(theirs)], dtype=float).reshape(np.shape(theirs))
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    assert np.nanmax(np.abs(a - b)) < tol, (a, b)


# --------------------------------------------------------------------------- semTools from a parameter table


def test_reference_data_is_lavaans_sample(hs):
    assert list(hs.columns) == [f"x{k}" for k in range(1, 10)]
    assert np.abs(sampstat(hs).to_numpy() - np.array(R["hs3"]["sampstat_cov"])).max() < 1e-12


@pytest.mark.parametrize("model", MODELS)
def test_composite_reliability_matches_semtools(hs, model):
    ref = R[model]
    pt = partable(model)
    observed = rel.composite_reliability(pt, cov=sampstat(hs))
    implied = rel.composite_reliability(pt, obs_var=False)
    factors = list(ref["comp_rel"])
    assert list(observed["construct"]) == factors == list(implied["construct"])
    assert_close(observed["omega"], list(ref["comp_rel"].values()), 1e-10)
    assert_close(implied["omega"], list(ref["comp_rel_implied"].values()), 1e-10)
    assert_close(observed["cr"], [ref["cr_std"][f] for f in factors], 1e-10)
    assert_close(implied["cr"], observed["cr"].to_numpy(), 1e-15)  # cr does not use cov


@pytest.mark.parametrize("model", MODELS)
def test_ave_matches_semtools(hs, model):
    ref = R[model]
    pt = partable(model)
    if model == "hs3_cross":  # x9 loads on visual and speed: semTools gives NA for both
        with pytest.warns(rel.CrossLoadingWarning) as record:
            observed = rel.ave(pt, cov=sampstat(hs))
        assert [str(w.message)[:32] for w in record] == ["factor 'visual': indicator(s) x9",
                                                         "factor 'speed': indicator(s) x9 "]
        with pytest.warns(rel.CrossLoadingWarning):
            implied = rel.ave(pt, obs_var=False)
    else:
        observed, implied = rel.ave(pt, cov=sampstat(hs)), rel.ave(pt, obs_var=False)
    factors = list(ref["ave"])
    assert list(observed["construct"]) == factors
    assert_close(observed["ave"], list(ref["ave"].values()), 1e-10)
    assert_close(implied["ave"], list(ref["ave_implied"].values()), 1e-10)
    std = [None if np.isnan(a) else ref["ave_std"][f] for f, a in zip(factors, observed["ave"])]
    assert_close(observed["ave_std"], std, 1e-10)


def test_semtools_ave_is_not_the_mean_squared_standardised_loading(hs):
    """semTools divides by the observed variances; ave_std is mean(std_all^2). They differ by up to .005 here."""
    table = rel.ave(partable("hs3"), cov=sampstat(hs))
    pt = partable("hs3")
    loads = pt[pt["op"] == "=~"]
    mean_sq = loads.groupby("lhs", sort=False)["std_all"].apply(lambda s: np.mean(s**2))
    assert_close(table["ave_std"], mean_sq[table["construct"]].to_numpy(), 1e-12)
    assert 1e-3 < np.abs(table["ave"] - table["ave_std"]).max() < 1e-2


@pytest.mark.parametrize("model", ["hs3", "hs_second_order"])
def test_fornell_larcker_matches_lavaan_and_semtools(hs, model):
    ref = R[model]
    pt = partable(model)
    table = rel.fornell_larcker(pt, cov=sampstat(hs))
    factors = list(ref["ave"])
    assert list(table["construct"]) == factors
    cor = np.array(ref["cor_lv"])[: len(factors), : len(factors)]  # g (second order) comes last
    matrix = table[factors].to_numpy(dtype=float)
    off = ~np.eye(len(factors), dtype=bool)
    assert_close(matrix[off], cor[off], 1e-10)
    assert_close(np.diag(matrix), np.sqrt(list(ref["ave"].values())), 1e-10)
    assert_close(table["sqrt_ave"], np.diag(matrix), 1e-15)
    assert table["fornell_larcker_met"].tolist() == [True, True, True]
    assert_close(table["max_abs_correlation"], np.where(off, np.abs(cor), -1).max(axis=1), 1e-10)
    if model == "hs3":  # for a CFA the correlations are the std_all of the ~~ rows between factors
        cov_rows = pt[(pt["op"] == "~~") & pt["lhs"].isin(factors) & pt["rhs"].isin(factors) & (pt["lhs"] != pt["rhs"])]
        for _, row in cov_rows.iterrows():
            assert table.set_index("construct").at[row["lhs"], row["rhs"]] == pytest.approx(row["std_all"], abs=1e-9)


def test_fornell_larcker_with_cross_loading_is_undefined_not_false(hs):
    with pytest.warns(rel.CrossLoadingWarning):
        table = rel.fornell_larcker(partable("hs3_cross"), cov=sampstat(hs))
    assert table["fornell_larcker_met"].isna().tolist() == [True, False, True]
    assert table["fornell_larcker_met"].dtype == "boolean"


# --------------------------------------------------------------------------- HTMT


@pytest.mark.parametrize("case", sorted(R["htmt"]))
def test_htmt_matches_semtools(hs, bfi, case):
    if case.startswith("hs3"):
        data, constructs = hs, HS_FACTORS
    else:  # A, C, N of bfi: NAs (listwise) and negatively keyed items (absolute correlations)
        data, constructs = bfi, {k: [f"{k}{i}" for i in range(1, 6)] for k in "ACN"}
    ref = R["htmt"][case]
    table = rel.htmt(data, constructs, htmt2=not case.endswith("arithmetic"))
    assert ref["factors"] == list(constructs)
    m = np.array(ref["matrix"])
    expected = [m[a, b] for a in range(len(constructs)) for b in range(a + 1, len(constructs))]
    assert_close(table["htmt"], expected, 1e-10)
    assert list(table.columns) == ["construct_1", "construct_2", "htmt"]


def test_htmt_bootstrap_is_reproducible_and_covers_its_estimate(hs):
    a = rel.htmt_bootstrap(hs, HS_FACTORS, 300, np.random.default_rng(20240501))
    b = rel.htmt_bootstrap(hs, HS_FACTORS, 300, np.random.default_rng(20240501))
    c = rel.htmt_bootstrap(hs, HS_FACTORS, 300, np.random.default_rng(7))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_lower"], c["ci_lower"])
    assert_close(a["htmt"], rel.htmt(hs, HS_FACTORS)["htmt"], 1e-15)
    assert ((a["ci_lower"] < a["htmt"]) & (a["htmt"] < a["ci_upper"])).all()
    assert (a["n_boot_valid"] == 300).all()
    narrow = rel.htmt_bootstrap(hs, HS_FACTORS, 300, np.random.default_rng(20240501), ci=0.5)
    assert ((narrow["ci_lower"] > a["ci_lower"]) & (narrow["ci_upper"] < a["ci_upper"])).all()


def _htmt_of_resamples(data, constructs, n_boot, rng, htmt2=True):
    """The bootstrap done the direct way: :func:`rel.htmt` of each resample's rows (the same
    stream of row indices as htmt_bootstrap), NaN when an item is constant in the resample."""
    items = [i for its in constructs.values() for i in its]
    complete = data.dropna(subset=items).reset_index(drop=True)
    out = []
    for _ in range(n_boot):
        rows = complete.iloc[rng.integers(0, len(complete), size=len(complete))]
        if (rows[items].std(ddof=0) == 0).any():
            out.append(np.full(len(constructs) * (len(constructs) - 1) // 2, np.nan))
            continue
        out.append(rel.htmt(rows, constructs, htmt2=htmt2)["htmt"].to_numpy())
    return np.array(out)


@pytest.mark.parametrize("htmt2", [True, False])
def test_htmt_bootstrap_equals_htmt_of_each_resample(bfi, htmt2):
    """The one-matrix-product bootstrap gives the quantiles of htmt() of the resampled rows
    (bfi with NAs: listwise; five constructs of five items)."""
    constructs = {c: [f"{c}{k}" for k in range(1, 6)] for c in "ACENO"}
    direct = _htmt_of_resamples(bfi, constructs, 60, np.random.default_rng(11), htmt2)
    ok = ~np.isnan(direct).any(axis=1)
    lower, upper = np.quantile(direct[ok], [0.05, 0.95], axis=0)
    table = rel.htmt_bootstrap(bfi, constructs, 60, np.random.default_rng(11), ci=0.9, htmt2=htmt2)
    assert_close(table["ci_lower"], lower, 1e-12)
    assert_close(table["ci_upper"], upper, 1e-12)
    assert (table["n_boot_valid"] == ok.sum()).all()


@pytest.mark.parametrize("whole", [True, False])
def test_htmt_bootstrap_skips_resamples_with_a_constant_item(whole):
    """Few distinct rows: some resamples draw one value of an item only; they are skipped, as
    htmt() of those rows (a constant item) cannot be computed, and the rest agree with it. Whole
    numbers (exact sums; exact zero correlations, whose geometric means are 0, give inf or NaN
    HTMTs, as htmt() of the rows) and real numbers (centred sums)."""
    base = {"a1": [1, 2, 1, 1, 1, 1], "a2": [2, 3, 1, 2, 2, 1], "b1": [3, 1, 2, 2, 1, 3],
            "b2": [1, 1, 2, 3, 2, 2], "c1": [2, 2, 3, 1, 1, 3], "c2": [3, 1, 1, 2, 3, 2]}
    data = pd.DataFrame(base, dtype=float)
    if not whole:
        data = data * np.sqrt(2) + np.random.default_rng(3).normal(0, 0.1, data.shape) * (data.columns != "a1")
    constructs = {"A": ["a1", "a2"], "B": ["b1", "b2"], "C": ["c1", "c2"]}
    direct = _htmt_of_resamples(data, constructs, 200, np.random.default_rng(5))
    ok = np.isfinite(direct).all(axis=1)  # a constant item (NaN) or uncorrelated items (inf): skipped
    assert 0 < ok.sum() < 200
    table = rel.htmt_bootstrap(data, constructs, 200, np.random.default_rng(5))
    assert (table["n_boot_valid"] == ok.sum()).all()
    if whole:  # the resamples' values themselves (quantiles of infinities are not defined)
        ours = rel._htmt_resampled(data.to_numpy(), _counts(np.random.default_rng(5), 6, 200),
                                   [[0, 1], [2, 3], [4, 5]], True)
        assert np.array_equal(np.isnan(ours), np.isnan(direct)) and np.array_equal(np.isinf(ours), np.isinf(direct))
        finite = np.isfinite(direct) & (ours != 0)
        assert np.abs(ours[finite] - direct[finite]).max() < 1e-12
        # an exact zero correlation here is ~1e-17 in np.corrcoef: a geometric mean of ~1e-4, not 0
        assert np.abs(direct[np.isfinite(direct) & (ours == 0)]).max() < 1e-3
    else:
        lower, upper = np.quantile(direct[ok], [0.025, 0.975], axis=0)
        assert_close(table["ci_lower"], lower, 1e-12)
        assert_close(table["ci_upper"], upper, 1e-12)


def _counts(rng, n, n_boot):
    return np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_boot)]).astype(float)


# --------------------------------------------------------------------------- psych::alpha


ALPHA_CASES = {
    "visual": (["x1", "x2", "x3"], ()),
    "textual": (["x4", "x5", "x6"], ()),
    "speed": (["x7", "x8", "x9"], ()),
    "two_items": (["x1", "x2"], ()),
    "bfi_a_keyed": ([f"A{i}" for i in range(1, 6)], ["A1"]),
    "bfi_c_keyed": ([f"C{i}" for i in range(1, 6)], ["C4", "C5"]),
}


@pytest.mark.parametrize("case", sorted(ALPHA_CASES))
def test_alpha_matches_psych(hs, bfi, case):
    items, reverse = ALPHA_CASES[case]
    data = bfi if case.startswith("bfi") else hs
    ref = R["alpha"][case]
    row = rel.cronbach_alpha(data, {case: items}, reverse=reverse).iloc[0]
    total = ref["total"]
    assert row["construct"] == case and row["n_items"] == len(items) and row["n_obs"] == ref["n"]
    for ours, theirs in [("raw_alpha", "raw_alpha"), ("std_alpha", "std.alpha"), ("g6_smc", "G6(smc)"),
                         ("average_r", "average_r"), ("median_r", "median_r"), ("ase", "ase"),
                         ("mean", "mean"), ("sd", "sd")]:
        assert row[ours] == pytest.approx(total[theirs], abs=1e-10), ours
    assert row["feldt_lower"] == pytest.approx(ref["feldt"]["lower"], abs=1e-10)
    assert row["feldt_upper"] == pytest.approx(ref["feldt"]["upper"], abs=1e-10)
    # psych prints alpha +- 1.96 ASE; the exact quantile differs by 4e-5 ASE
    assert row["duhachek_lower"] == pytest.approx(ref["duhachek"]["lower"], abs=1e-5)
    assert row["duhachek_upper"] == pytest.approx(ref["duhachek"]["upper"], abs=1e-5)


@pytest.mark.parametrize("case", sorted(ALPHA_CASES))
def test_item_statistics_match_psych(hs, bfi, case):
    items, reverse = ALPHA_CASES[case]
    data = bfi if case.startswith("bfi") else hs
    ref = R["alpha"][case]
    table = rel.item_statistics(data, items, reverse=reverse)
    assert table["item"].tolist() == items and table["reversed"].tolist() == [i in reverse for i in items]
    stats, drop = ref["item_stats"], ref["alpha_drop"]
    assert table["n"].tolist() == stats["n"]
    for ours, theirs in [("raw_r", "raw.r"), ("std_r", "std.r"), ("r_cor", "r.cor"), ("r_drop", "r.drop"),
                         ("mean", "mean"), ("sd", "sd")]:
        assert_close(table[ours], stats[theirs], 1e-10)
    for ours, theirs in [("alpha_if_deleted", "raw_alpha"), ("std_alpha_if_deleted", "std.alpha"),
                         ("average_r_if_deleted", "average_r")]:
        assert_close(table[ours], drop[theirs], 1e-10)


def test_alpha_of_several_scales_and_nullable_integers(bfi):
    scales = {"A": [f"A{i}" for i in range(1, 6)], "C": [f"C{i}" for i in range(1, 6)]}
    table = rel.cronbach_alpha(bfi.astype("Int64"), scales, reverse=["A1", "C4", "C5"])
    assert table["construct"].tolist() == ["A", "C"]
    assert list(table.columns) == rel.ALPHA_COLUMNS
    assert table["raw_alpha"].tolist() == pytest.approx(
        [R["alpha"]["bfi_a_keyed"]["total"]["raw_alpha"], R["alpha"]["bfi_c_keyed"]["total"]["raw_alpha"]], abs=1e-10)


def test_alpha_warns_about_an_item_that_should_be_reversed(bfi):
    with pytest.warns(rel.ReverseKeyWarning, match="item.s. A1 correlate negatively"):
        rel.cronbach_alpha(bfi, [f"A{i}" for i in range(1, 6)])


# --------------------------------------------------------------------------- Harman


@pytest.mark.parametrize("case", ["hs", "bfi"])
def test_harman_matches_r(hs, bfi, case):
    data = hs if case == "hs" else bfi
    ref = R["harman"][case]
    row = rel.harman_single_factor(data, ref["items"]).iloc[0]
    assert row["first_eigenvalue"] == pytest.approx(ref["eigenvalue"], abs=1e-10)
    assert row["variance_share"] == pytest.approx(ref["share"], abs=1e-10)
    assert row["variance_share"] == pytest.approx(ref["principal_share"], abs=1e-10)
    assert not row["exceeds_threshold"] and row["threshold"] == 0.5
    assert bool(rel.harman_single_factor(data, ref["items"], threshold=0.1).at[0, "exceeds_threshold"])


# --------------------------------------------------------------------------- recovery on a known model

LOADINGS = {"F1": [0.7, 0.7, 0.7], "F2": [0.6, 0.6, 0.6]}
PHI12 = 0.3


def true_partable() -> pd.DataFrame:
    """The population model in standardised form: est = std_all."""
    rows = []
    for f, loads in LOADINGS.items():
        for k, lam in enumerate(loads, start=1):
            rows.append((f, "=~", f"{f.lower()}_{k}", lam))
    rows += [("F1", "~~", "F1", 1.0), ("F2", "~~", "F2", 1.0), ("F1", "~~", "F2", PHI12)]
    for f, loads in LOADINGS.items():
        for k, lam in enumerate(loads, start=1):
            rows.append((f"{f.lower()}_{k}", "~~", f"{f.lower()}_{k}", 1 - lam**2))
    table = pd.DataFrame(rows, columns=["lhs", "op", "rhs", "est"])
    return table.assign(std_all=table["est"])


def population_cov() -> pd.DataFrame:
    lam = np.zeros((6, 2))
    lam[:3, 0], lam[3:, 1] = LOADINGS["F1"], LOADINGS["F2"]
    phi = np.array([[1, PHI12], [PHI12, 1]])
    sigma = lam @ phi @ lam.T
    np.fill_diagonal(sigma, 1)
    names = [f"f1_{k}" for k in (1, 2, 3)] + [f"f2_{k}" for k in (1, 2, 3)]
    return pd.DataFrame(sigma, index=names, columns=names)


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(12345)
    n = 2000
    factors = rng.multivariate_normal([0, 0], [[1, PHI12], [PHI12, 1]], size=n)
    cols = {}
    for j, (f, loads) in enumerate(LOADINGS.items()):
        for k, lam in enumerate(loads, start=1):
            cols[f"{f.lower()}_{k}"] = lam * factors[:, j] + np.sqrt(1 - lam**2) * rng.standard_normal(n)
    return pd.DataFrame(cols)


def closed_form(loads):
    s, k = sum(loads), len(loads)
    return {"omega": s**2 / (s**2 + sum(1 - lam**2 for lam in loads)), "ave": sum(lam**2 for lam in loads) / k}


def test_true_parameters_give_the_closed_forms_exactly():
    pt = true_partable()
    expected = {f: closed_form(loads) for f, loads in LOADINGS.items()}
    # population values: omega .7 -> 4.41 / 5.94, .6 -> 3.24 / 5.16; AVE .49 and .36
    assert expected["F1"]["omega"] == pytest.approx(4.41 / 5.94, abs=1e-15)
    assert expected["F2"]["omega"] == pytest.approx(3.24 / 5.16, abs=1e-15)
    for kwargs in ({"obs_var": False}, {"cov": population_cov()}):
        cr = rel.composite_reliability(pt, **kwargs).set_index("construct")
        av = rel.ave(pt, **kwargs).set_index("construct")
        for f in LOADINGS:
            assert cr.at[f, "omega"] == pytest.approx(expected[f]["omega"], abs=1e-12)
            assert cr.at[f, "cr"] == pytest.approx(expected[f]["omega"], abs=1e-12)
            assert av.at[f, "ave"] == pytest.approx(expected[f]["ave"], abs=1e-12)
            assert av.at[f, "ave_std"] == pytest.approx(expected[f]["ave"], abs=1e-12)
    fl = rel.fornell_larcker(pt, obs_var=False).set_index("construct")
    assert fl.at["F1", "F1"] == pytest.approx(0.7, abs=1e-12) and fl.at["F2", "F2"] == pytest.approx(0.6, abs=1e-12)
    assert fl.at["F1", "F2"] == pytest.approx(PHI12, abs=1e-12) == fl.at["F2", "F1"]
    assert fl["fornell_larcker_met"].tolist() == [True, True]


def test_estimates_from_simulated_data_recover_the_population(simulated):
    scales = {"F1": ["f1_1", "f1_2", "f1_3"], "F2": ["f2_1", "f2_2", "f2_3"]}
    alpha = rel.cronbach_alpha(simulated, scales).set_index("construct")
    # equal loadings: tau-equivalent, so population alpha = omega
    for f, loads in LOADINGS.items():
        pop = closed_form(loads)["omega"]
        assert abs(alpha.at[f, "raw_alpha"] - pop) < 0.03
        assert alpha.at[f, "feldt_lower"] < alpha.at[f, "raw_alpha"] < alpha.at[f, "feldt_upper"]
    # population HTMT: .7 * .6 * .3 / sqrt(.49 * .36) = .3; at n = 2000 the estimate's SD is .033
    # (200 Monte Carlo replications), so 3 SD; this sample's factor correlation happens to be .27
    h = rel.htmt(simulated, scales)
    assert abs(h.at[0, "htmt"] - PHI12) < 0.1
    boot = rel.htmt_bootstrap(simulated, scales, 200, np.random.default_rng(1))
    assert boot.at[0, "ci_lower"] < PHI12 < boot.at[0, "ci_upper"]
    # Harman: first eigenvalue of the population correlation matrix
    pop_share = np.linalg.eigvalsh(population_cov().to_numpy())[-1] / 6
    assert abs(rel.harman_single_factor(simulated, list(simulated.columns)).at[0, "variance_share"] - pop_share) < 0.03


# --------------------------------------------------------------------------- bad input


def test_unknown_item_is_named(hs):
    for call in (lambda: rel.cronbach_alpha(hs, ["x1", "x2", "nope"]),
                 lambda: rel.item_statistics(hs, {"v": ["x1", "nope"]}),
                 lambda: rel.htmt(hs, {"a": ["x1", "x2"], "b": ["x3", "nope"]}),
                 lambda: rel.harman_single_factor(hs, ["x1", "nope"])):
        with pytest.raises(ValueError, match="item 'nope' is not a column"):
            call()


def test_one_item_scale_is_named(hs):
    with pytest.raises(ValueError, match="scale 'solo' has 1 item.s. .x4.; alpha needs at least 2"):
        rel.cronbach_alpha(hs, {"visual": ["x1", "x2", "x3"], "solo": ["x4"]})
    with pytest.raises(ValueError, match="construct 'solo' has 1 item"):
        rel.htmt(hs, {"visual": ["x1", "x2", "x3"], "solo": ["x4"]})


def test_constant_item_is_named(hs):
    data = hs.assign(x2=3.0)
    for call in (lambda: rel.cronbach_alpha(data, ["x1", "x2", "x3"]),
                 lambda: rel.item_statistics(data, ["x1", "x2", "x3"]),
                 lambda: rel.htmt(data, HS_FACTORS),
                 lambda: rel.harman_single_factor(data, ["x1", "x2", "x3"])):
        with pytest.raises(ValueError, match="item 'x2' is constant"):
            call()


def test_other_bad_input(hs):
    with pytest.raises(ValueError, match="reverse: item 'x9' is not an item"):
        rel.cronbach_alpha(hs, ["x1", "x2"], reverse=["x9"])
    with pytest.raises(ValueError, match="item 'x1' is listed twice"):
        rel.cronbach_alpha(hs, ["x1", "x2", "x1"])
    with pytest.raises(ValueError, match="item 'x3' is listed under both 'a' and 'b'"):
        rel.htmt(hs, {"a": ["x1", "x2", "x3"], "b": ["x3", "x4"]})
    with pytest.raises(ValueError, match="ci: need a number strictly between 0 and 1, got 95"):
        rel.cronbach_alpha(hs, ["x1", "x2"], ci=95)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        rel.htmt_bootstrap(hs, HS_FACTORS, 10, rng=1)
    with pytest.raises(ValueError, match="n_boot: need a whole number >= 1, got 0"):
        rel.htmt_bootstrap(hs, HS_FACTORS, 0, np.random.default_rng(1))
    with pytest.raises(ValueError, match="item 'x1' is not numeric"):
        rel.harman_single_factor(hs.assign(x1=hs["x1"].astype(str)), ["x1", "x2"])


def test_bad_parameter_table(hs):
    pt = partable("hs3")
    with pytest.raises(ValueError, match="obs_var=True .semTools' default. divides by the observed variances"):
        rel.composite_reliability(pt)
    with pytest.raises(ValueError, match="lacks column.s. std_all"):
        rel.ave(pt.drop(columns="std_all"), obs_var=False)
    with pytest.raises(ValueError, match="indicator 'x9' is not in cov"):
        rel.composite_reliability(pt, cov=sampstat(hs).drop(index="x9", columns="x9"))
    with pytest.raises(ValueError, match="several groups .1, 2."):
        rel.ave(pd.concat([pt.assign(group=1), pt.assign(group=2)]), obs_var=False)
    no_var = pt[~((pt["lhs"] == "x5") & (pt["op"] == "~~") & (pt["rhs"] == "x5"))]
    with pytest.raises(ValueError, match="no variance row x5 ~~ x5 for the indicator 'x5'"):
        rel.composite_reliability(no_var, obs_var=False)
    regression = pd.concat([pt, pd.DataFrame([{"lhs": "speed", "op": "~", "rhs": "x1", "est": 0.1, "std_all": 0.1}])])
    with pytest.raises(ValueError, match="regression speed ~ x1 on 'x1', which is not a factor"):
        rel.fornell_larcker(regression, obs_var=False)
    thresholds = pd.concat([pt, pd.DataFrame([{"lhs": "x1", "op": "|", "rhs": "t1", "est": 0.1, "std_all": 0.1}])])
    with pytest.raises(ValueError, match="ordinal indicators are not supported"):
        rel.ave(thresholds, obs_var=False)


# --------------------------------------------------------------------------- HTMT under the CFA's missing-data treatment

RM = json.loads((REF / "htmt_missing.json").read_text())
HTMT_CASES = {"hs": HS_FACTORS, "bfi": {c: [f"{c}{k}" for k in range(1, 6)] for c in "ACENO"}}


def _pairs(ref):
    m = np.array(ref["matrix"])
    k = len(ref["factors"])
    return [m[a, b] for a in range(k) for b in range(a + 1, k)]


@pytest.mark.parametrize("data_name", ["hs", "bfi"])
@pytest.mark.parametrize("missing", ["ml", "pairwise", "listwise"])
def test_htmt_under_each_missing_treatment_matches_semtools(data_name, missing):
    """semTools::htmt(model, data, missing = m) on data with NAs (htmt_missing.R). With "ml"
    semTools' EM stops at lavaan's em.h1.tol = 1e-5 (3e-6 from the converged value): the
    converged one (lavCor(em.h1.tol = 1e-12) as sample.cov) is matched to 1e-9, semTools' own
    call to 1e-5; pairwise and listwise to 1e-10."""
    data = pd.read_csv(REF / ("hs_missing.csv" if data_name == "hs" else "bfi_600.csv"))
    constructs = HTMT_CASES[data_name]
    table = rel.htmt(data, constructs, missing=missing)
    assert RM["htmt"][f"{data_name}_{missing}"]["factors"] == list(constructs)
    if missing == "ml":
        assert_close(table["htmt"], _pairs(RM["htmt"][f"{data_name}_ml_tight"]), 1e-9)
        assert_close(table["htmt"], _pairs(RM["htmt"][f"{data_name}_ml"]), 1e-5)
        arithmetic = rel.htmt(data, constructs, missing="ml", htmt2=False)
        assert_close(arithmetic["htmt"], _pairs(RM["htmt"][f"{data_name}_ml_tight_arithmetic"]), 1e-9)
    else:
        assert_close(table["htmt"], _pairs(RM["htmt"][f"{data_name}_{missing}"]), 1e-10)


def test_htmt_ml_differs_from_listwise_where_data_are_missing():
    """The treatments give different numbers on hs_missing (106 complete rows of 301), so the
    choice matters and the stage must follow the CFA's."""
    data = pd.read_csv(REF / "hs_missing.csv")
    ml = rel.htmt(data, HS_FACTORS, missing="ml")["htmt"]
    listwise = rel.htmt(data, HS_FACTORS, missing="listwise")["htmt"]
    assert np.abs(ml - listwise).max() > 0.1


def test_htmt_bootstrap_under_ml_resamples_rows_and_refits_the_em():
    """Each resample's HTMT is htmt(missing = "ml") of its rows (the rows with any item
    observed, the same stream of row indices) to the resamples' EM tolerance; the point
    estimate is htmt's."""
    data = pd.read_csv(REF / "hs_missing.csv")
    items = [i for its in HS_FACTORS.values() for i in its]
    rows = data[data[items].notna().any(axis=1)].reset_index(drop=True)
    rng = np.random.default_rng(5)
    direct = np.array([rel.htmt(rows.iloc[rng.integers(0, len(rows), size=len(rows))], HS_FACTORS,
                                missing="ml")["htmt"].to_numpy() for _ in range(40)])
    lower, upper = np.quantile(direct, [0.05, 0.95], axis=0)
    ticks = []
    table = rel.htmt_bootstrap(data, HS_FACTORS, 40, np.random.default_rng(5), ci=0.9, missing="ml",
                               progress=ticks.append)
    assert_close(table["htmt"], rel.htmt(data, HS_FACTORS, missing="ml")["htmt"], 1e-15)
    # each resample's EM stops at a change below RESAMPLE_EM_TOL (1e-5 SD, lavaan's em.h1.tol, which
    # semTools::htmt(missing = "ml") itself uses) instead of 1e-10
    assert rel.RESAMPLE_EM_TOL == 1e-5
    assert_close(table["ci_lower"], lower, 1e-4)
    assert_close(table["ci_upper"], upper, 1e-4)
    assert (table["n_boot_valid"] == 40).all() and sum(ticks) == 40
    pairwise = rel.htmt_bootstrap(data, HS_FACTORS, 40, np.random.default_rng(5), missing="pairwise")
    assert ((pairwise["ci_lower"] < pairwise["htmt"]) & (pairwise["htmt"] < pairwise["ci_upper"])).all()


def test_htmt_bootstrap_without_missing_cells_is_the_same_under_every_treatment(hs):
    """Complete data: the EM and pairwise correlations are the Pearson ones, and the resamples
    (the same row indices) give the same limits."""
    tables = {m: rel.htmt_bootstrap(hs, HS_FACTORS, 50, np.random.default_rng(9), missing=m)
              for m in ("listwise", "ml", "pairwise")}
    for m in ("ml", "pairwise"):
        pd.testing.assert_frame_equal(tables[m], tables["listwise"], rtol=1e-12, atol=1e-14)


def test_htmt_missing_is_checked():
    with pytest.raises(InputError, match="missing: 'fiml' is not one of listwise, pairwise, ml"):
        rel.htmt(pd.read_csv(REF / "hs_missing.csv"), HS_FACTORS, missing="fiml")


def test_stage_htmt_and_construct_correlations_follow_the_fiml_cfa(run_cli, tmp_path):
    """cfa.missing = fiml: htmt.csv is semTools' htmt(missing = "ml"), reliability.json says
    htmt_missing "ml", and construct_correlations.csv is lavaan's cor.lv with sqrt(semTools::AVE)
    on the diagonal for the FIML fit (htmt_missing.R: em.h1.tol = 1e-12)."""
    model = tmp_path / "m.lavaan"
    model.write_text("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n")
    for missing in ("fiml", "listwise"):
        (tmp_path / f"{missing}.yaml").write_text(f"cfa:\n  missing: {missing}\n")
        code, _, err = run_cli("reliability", "--data", REF / "hs_missing.csv", "--model", model, "--params",
                               tmp_path / f"{missing}.yaml", "--out", tmp_path / missing, "--htmt-bootstrap", "20",
                               "--no-method-factor")
        assert code == 0, err
    fiml = json.loads((tmp_path / "fiml" / "reliability.json").read_text())
    assert fiml["htmt_missing"] == "ml"
    assert json.loads((tmp_path / "listwise" / "reliability.json").read_text())["htmt_missing"] == "listwise"
    htmt = pd.read_csv(tmp_path / "fiml" / "htmt.csv")
    assert_close(htmt["htmt"], _pairs(RM["htmt"]["hs_ml_tight"]), 1e-9)
    assert_close(pd.read_csv(tmp_path / "listwise" / "htmt.csv")["htmt"], _pairs(RM["htmt"]["hs_listwise"]), 1e-10)
    corr = pd.read_csv(tmp_path / "fiml" / "construct_correlations.csv", index_col=0)
    ref = RM["cfa_fiml"]["hs"]
    assert list(corr.index) == list(corr.columns) == ref["factors"]
    expected = np.array(ref["cor_lv"])
    np.fill_diagonal(expected, ref["sqrt_ave"])
    np.testing.assert_allclose(corr.to_numpy(), expected, rtol=0, atol=1e-6)
    fl = pd.read_csv(tmp_path / "fiml" / "fornell_larcker.csv").set_index("construct")
    np.testing.assert_array_equal(np.diag(corr.to_numpy()), fl.loc[ref["factors"], "sqrt_ave"])
