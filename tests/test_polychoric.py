"""Polychoric correlations (analysis/polychoric.py) against psych::polychoric and simulation truth.

Reference values were made by tests/reference/polychoric.R with psych 2.2.9 on public data
(psych::bfi, psychTools::ability) and are stored with their input CSVs, so these tests need no
R. Regenerate with
    Rscript tests/reference/polychoric.R
Largest differences from psych seen when the reference was made: correlations 2.6e-5
(ability; bfi 2.1e-5, the smoothed bfi_60 matrix 2.1e-5, the mixed 2/5/6-category set with
psych's pair-by-pair thresholds 1.8e-5), thresholds 7e-15. psych maximises the likelihood with
optimize(), whose default tolerance (about 1e-4) accounts for the correlation differences;
gapscale's estimates are the exact maxima (checked below against a brute-force maximisation
with an independent bivariate normal integral to 1e-7). Smoothing alone, applied to psych's own
unsmoothed matrix, reproduces psych::cor.smooth to 1e-12.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize
from scipy.special import ndtr, ndtri

from analysis.polychoric import (
    NotPositiveDefiniteWarning,
    Polychoric,
    bivariate_normal_cdf,
    nearest_positive_definite,
    polychoric,
)
from analysis.warnings import ConvergenceWarning, GapscaleWarning

REF = Path(__file__).parent / "reference"
REFERENCE = json.loads((REF / "polychoric.json").read_text())
DATASETS = sorted(REFERENCE["datasets"])
# psych's optimize() stops at a tolerance of about 1e-4 in rho; the largest difference seen is
# 2.6e-5. A wrong likelihood (e.g. wrong thresholds, a cell off by one) moves rho by > 1e-3.
RHO_TOL = 2e-4


def load(name: str) -> tuple[pd.DataFrame, dict]:
    ref = REFERENCE["datasets"][name]
    data = pd.read_csv(REF / ref["csv"])
    if ref["rows"] is not None:
        data = data.iloc[: ref["rows"]]
    return data, ref


def run(data, *args, **kwargs) -> tuple[Polychoric, list]:
    """polychoric() with every warning recorded (none is filtered out)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = polychoric(data, *args, **kwargs)
    return result, caught


def of_class(caught, cls) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, cls)]


# --------------------------------------------------------------------------- against psych


@pytest.mark.parametrize("name", DATASETS)
def test_correlations_match_psych(name):
    data, ref = load(name)
    result, _caught = run(data, ref["columns"])
    assert list(result.correlation.index) == ref["columns"]
    assert list(result.correlation.columns) == ref["columns"]
    diff = np.abs(result.correlation.to_numpy() - np.array(ref["correlation"]))
    assert diff.max() < RHO_TOL, f"{name}: largest difference from psych {diff.max():.2g}"
    raw, _ = run(data, ref["columns"], smooth=False)
    diff_raw = np.abs(raw.correlation.to_numpy() - np.array(ref["correlation_unsmoothed"]))
    assert diff_raw.max() < RHO_TOL, f"{name}: unsmoothed, largest difference {diff_raw.max():.2g}"
    assert np.array_equal(np.diag(result.correlation.to_numpy()), np.ones(len(ref["columns"])))


@pytest.mark.parametrize("name", DATASETS)
def test_thresholds_match_psych(name):
    """psych's tau has a column per value in the overall range (Inf/-Inf/repeats for unused values)."""
    data, ref = load(name)
    result, _ = run(data, ref["columns"])
    tau = np.array(ref["thresholds"], dtype=float)  # null (infinite in psych) -> nan
    assert list(result.thresholds.index) == ref["columns"]
    for j, column in enumerate(ref["columns"]):
        expected = pd.unique(tau[j][~np.isnan(tau[j])])
        got = result.thresholds.loc[column].dropna().to_numpy()
        assert len(got) == len(expected), column
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10, err_msg=column)
        # NaN padding only after the item's own thresholds
        assert result.thresholds.loc[column].iloc[: len(got)].notna().all()


@pytest.mark.parametrize("name", DATASETS)
def test_smoothing_and_global_flags_match_psych(name):
    data, ref = load(name)
    result, caught = run(data, ref["columns"])
    assert result.smoothed is ref["smoothed"]
    assert result.n_eigenvalues_adjusted == (ref["n_eigenvalues_adjusted"] if ref["smoothed"] else 0)
    assert result.global_thresholds is ref["global"]
    npd = of_class(caught, NotPositiveDefiniteWarning)
    if ref["smoothed"]:
        assert len(npd) == 1 and f"{ref['n_eigenvalues_adjusted']} eigenvalue(s)" in npd[0]
        assert np.linalg.eigvalsh(result.correlation.to_numpy()).min() > 0
    else:
        assert npd == []
    fallback = [m for m in of_class(caught, GapscaleWarning) if "same highest value" in m]
    assert bool(fallback) is (not ref["global"])


def test_bfi_1000_and_ability_give_no_warning():
    for name in ("bfi_1000", "ability"):
        data, ref = load(name)
        _result, caught = run(data, ref["columns"])
        assert caught == [], [str(w.message) for w in caught]


def test_continuity_correction_counts_like_psych():
    """psych warns '7 cells were adjusted' for the mixed set; it counts tables, one per pair."""
    data, ref = load("bfi_mixed")
    assert any(w.startswith("7 cells were adjusted") for w in ref["psych_warnings"])
    result, caught = run(data, ref["columns"])
    assert result.n_corrected == 7
    assert any("7 of 21 item pairs" in m for m in of_class(caught, GapscaleWarning))
    # Without the correction the pair-by-pair estimates change: the correction is really applied.
    plain, _ = run(data, ref["columns"], correct=0)
    assert plain.n_corrected == 0
    assert np.abs(plain.correlation.to_numpy() - result.correlation.to_numpy()).max() > 1e-3


def test_explicit_pairwise_thresholds_do_not_warn_about_the_fallback():
    data, ref = load("bfi_1000")
    result, caught = run(data, ref["columns"][:5], global_thresholds=False)
    assert result.global_thresholds is False
    assert not [m for m in of_class(caught, GapscaleWarning) if "same highest value" in m]


def test_smoothing_reproduces_psych_cor_smooth():
    """Smoothing psych's own unsmoothed bfi_60 matrix gives psych's smoothed one exactly."""
    _data, ref = load("bfi_60")
    raw = pd.DataFrame(ref["correlation_unsmoothed"], index=ref["columns"], columns=ref["columns"])
    with pytest.warns(NotPositiveDefiniteWarning, match=r"1 eigenvalue\(s\) below 1e-12"):
        smoothed = nearest_positive_definite(raw)
    assert isinstance(smoothed, pd.DataFrame)
    assert list(smoothed.index) == ref["columns"]
    np.testing.assert_allclose(smoothed.to_numpy(), np.array(ref["correlation"]), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- exact maximum


def _phi2_quad(x: float, y: float, r: float) -> float:
    """Phi_2 by Plackett's identity, integrated with quad: independent of Genz's algorithm."""
    if not (np.isfinite(x) and np.isfinite(y)):
        if x == -np.inf or y == -np.inf:
            return 0.0
        return float(ndtr(y) if x == np.inf else ndtr(x))

    def density(t):
        return np.exp(-(x * x - 2 * t * x * y + y * y) / (2 * (1 - t * t))) / (2 * np.pi * np.sqrt(1 - t * t))

    value, _ = integrate.quad(density, 0, r, epsabs=1e-14, epsrel=1e-12, limit=200)
    return float(ndtr(x) * ndtr(y) + value)


def test_bivariate_normal_cdf_against_quadrature():
    rng = np.random.default_rng(20240601)
    x = rng.normal(0, 1.5, 300)
    y = rng.normal(0, 1.5, 300)
    r = np.concatenate([rng.uniform(-0.99, 0.99, 200), rng.choice([-1, 1], 100) * rng.uniform(0.9, 0.99999, 100)])
    expected = np.array([_phi2_quad(a, b, c) for a, b, c in zip(x, y, r)])
    assert np.abs(bivariate_normal_cdf(x, y, r) - expected).max() < 1e-13


def test_bivariate_normal_cdf_limits():
    assert bivariate_normal_cdf(np.inf, 0.3, 0.5) == pytest.approx(ndtr(0.3), abs=1e-15)
    assert bivariate_normal_cdf(0.3, np.inf, -0.5) == pytest.approx(ndtr(0.3), abs=1e-15)
    assert bivariate_normal_cdf(-np.inf, 0.3, 0.5) == 0.0
    assert bivariate_normal_cdf(np.inf, np.inf, 0.2) == 1.0
    assert bivariate_normal_cdf(0.2, -0.1, 0.0) == pytest.approx(ndtr(0.2) * ndtr(-0.1), abs=1e-15)
    assert bivariate_normal_cdf(0.2, -0.1, 1.0) == pytest.approx(ndtr(-0.1), abs=1e-15)
    assert bivariate_normal_cdf(0.2, -0.1, -1.0) == pytest.approx(ndtr(0.2) + ndtr(-0.1) - 1, abs=1e-15)
    assert bivariate_normal_cdf([[0.0], [1.0]], [0.0, 0.5], 0.3).shape == (2, 2)
    with pytest.raises(ValueError, match="rho"):
        bivariate_normal_cdf(0, 0, 1.5)


@pytest.mark.parametrize("pair", [("A1", "A2"), ("C4", "N5")])
def test_estimate_is_the_exact_likelihood_maximum(pair):
    """Brute force: the two-step likelihood with quad-integrated Phi_2, maximised by Brent."""
    data, _ref = load("bfi_1000")
    a, b = pair
    result, _ = run(data, [a, b])
    both = data[[a, b]].dropna().astype(int)
    table = pd.crosstab(both[a], both[b]).to_numpy()
    cuts = []
    for col in (a, b):
        share = data[col].value_counts(normalize=True).sort_index().cumsum().to_numpy()[:-1]
        cuts.append(np.concatenate([[-np.inf], ndtri(share), [np.inf]]))

    def minus_loglik(r):
        grid = np.array([[_phi2_quad(x, y, r) for y in cuts[1]] for x in cuts[0]])
        prob = grid[1:, 1:] - grid[:-1, 1:] - grid[1:, :-1] + grid[:-1, :-1]
        return -np.sum(table * np.log(prob))

    best = optimize.minimize_scalar(minus_loglik, bounds=(-0.99, 0.99), method="bounded",
                                    options={"xatol": 1e-9})
    assert result.correlation.loc[a, b] == pytest.approx(best.x, abs=1e-7)


# --------------------------------------------------------------------------- simulation truth


def _discretise(z: np.ndarray, cuts: list[np.ndarray]) -> np.ndarray:
    return np.column_stack([np.searchsorted(c, z[:, j]) + 1 for j, c in enumerate(cuts)])


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.3, 0.8])
def test_recovers_a_known_correlation(rho):
    """n = 5000: the estimate's sampling SD is about .015; Pearson on the codes misses r != 0 by .06-.12."""
    rng = np.random.default_rng(12345)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=5000)
    cuts = [np.array([-1.2, -0.3, 0.5, 1.4]), np.array([-2.0, -0.8, 0.1, 0.9])]  # 5 categories each, skewed
    x = pd.DataFrame(_discretise(z, cuts), columns=["a", "b"])
    result, caught = run(x)
    assert caught == []
    assert result.global_thresholds is True
    assert abs(result.correlation.loc["a", "b"] - rho) < 0.03
    # each threshold within 4 standard errors, sqrt(P (1 - P) / n) / phi(tau)
    tau = np.array(cuts)
    share = ndtr(tau)
    se = np.sqrt(share * (1 - share) / 5000) / (np.exp(-tau**2 / 2) / np.sqrt(2 * np.pi))
    assert np.all(np.abs(result.thresholds.to_numpy() - tau) < 4 * se)
    # psych's pair-by-pair thresholds (4 categories for b: its highest value differs) recover it too
    x["b"] = np.minimum(x["b"], 4)
    pairwise, caught = run(x)
    assert pairwise.global_thresholds is False
    assert [m for m in of_class(caught, GapscaleWarning) if "same highest value" in m]
    assert abs(pairwise.correlation.loc["a", "b"] - rho) < 0.03
    assert np.isnan(pairwise.thresholds.loc["b", "t4"])  # NaN padding


def test_recovers_a_correlation_matrix_with_missing_values():
    rng = np.random.default_rng(777)
    truth = np.array([[1.0, 0.7, 0.5, -0.3, 0.2, 0.0],
                      [0.7, 1.0, 0.6, -0.2, 0.1, 0.1],
                      [0.5, 0.6, 1.0, -0.4, 0.3, 0.0],
                      [-0.3, -0.2, -0.4, 1.0, 0.0, 0.2],
                      [0.2, 0.1, 0.3, 0.0, 1.0, 0.5],
                      [0.0, 0.1, 0.0, 0.2, 0.5, 1.0]])
    z = rng.multivariate_normal(np.zeros(6), truth, size=5000)
    seven = np.array([-1.8, -1.0, -0.4, 0.3, 0.9, 1.7])
    cuts = [seven, seven + 0.4, np.array([0.0]), seven[::2], np.array([-0.7, 0.6]), seven - 0.3]
    x = pd.DataFrame(_discretise(z, cuts), columns=list("abcdef")).astype("Int64")
    x = x.mask(pd.DataFrame(rng.random(x.shape) < 0.1, columns=x.columns))  # 10% missing at random
    result, _caught = run(x)
    assert np.abs(result.correlation.to_numpy() - truth).max() < 0.04
    assert result.global_thresholds is False  # highest values differ (7, 7, 2, 4, 3, 7), as in psych
    observed = x.notna().to_numpy().astype(int)
    np.testing.assert_array_equal(result.n_pairs.to_numpy(), observed.T @ observed)
    assert result.n == 5000


# --------------------------------------------------------------------------- behaviour


def test_missing_values_are_dropped_pair_by_pair():
    """With global thresholds a pair's estimate does not depend on the other items' missing rows."""
    data, ref = load("bfi_1000")
    columns = ["A1", "C4", "O2", "O5"]
    full, _ = run(data, columns)
    for a, b in [("A1", "C4"), ("O2", "O5")]:
        alone, _ = run(data, [a, b])
        assert full.correlation.loc[a, b] == pytest.approx(alone.correlation.loc[a, b], abs=1e-12)
    assert full.n_pairs.loc["A1", "C4"] == int(data[["A1", "C4"]].notna().all(axis=1).sum())
    assert full.n_pairs.loc["O2", "O2"] == int(data["O2"].notna().sum())


def test_codes_only_matter_through_their_order():
    rng = np.random.default_rng(3)
    z = rng.multivariate_normal([0, 0, 0], [[1, .5, .4], [.5, 1, .3], [.4, .3, 1]], size=800)
    x = pd.DataFrame(_discretise(z, [np.array([-1, 0, 1])] * 3), columns=list("abc"))
    recoded = x.replace({1: 10, 2: 30, 3: 31, 4: 90}).astype(float)  # same order, gaps, float dtype
    a, _ = run(x)
    b, _ = run(recoded)
    np.testing.assert_allclose(a.correlation.to_numpy(), b.correlation.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(a.thresholds.to_numpy(), b.thresholds.to_numpy(), atol=1e-12)


def test_columns_default_to_all_and_keep_their_order():
    data, _ref = load("bfi_1000")
    subset = data[["O5", "A1", "C2"]]
    result, _ = run(subset)
    assert list(result.correlation.columns) == ["O5", "A1", "C2"]
    chosen, _ = run(data, ["O5", "A1", "C2"])
    pd.testing.assert_frame_equal(result.correlation, chosen.correlation)


def test_tables_built_in_blocks_of_rows_are_the_same(monkeypatch):
    import analysis.polychoric as module

    data, ref = load("bfi_1000")
    whole, _ = run(data, ref["columns"][:6])
    monkeypatch.setattr(module, "_BLOCK_ROWS", 7)
    blocks, _ = run(data, ref["columns"][:6])
    pd.testing.assert_frame_equal(whole.correlation, blocks.correlation, check_exact=True)


def test_pair_without_two_categories_is_nan_and_not_smoothed():
    """Pair-by-pair thresholds need two categories of each item among the pair's rows (psych: NA)."""
    x = pd.DataFrame({"a": [1, 1, 1, 1, 2, 2, 3, 3, 3, 3], "b": [1, 2, 1, 2] + [np.nan] * 6,
                      "c": [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]})
    result, caught = run(x)
    assert result.global_thresholds is False
    assert np.isnan(result.correlation.loc["a", "b"]) and np.isnan(result.correlation.loc["b", "a"])
    assert np.isfinite(result.correlation.loc["a", "c"])
    assert result.smoothed is False
    assert any("a-b" in m and "cannot be estimated" in m for m in of_class(caught, GapscaleWarning))
    # the correction pushes b-c's cumulative share to 1, where psych 2.2.9 stops with an error
    assert any("b-c" in m and "reached 1" in m for m in of_class(caught, GapscaleWarning))


def test_boundary_estimate_warns():
    """A 2 x 2 table with an empty cell: the likelihood rises all the way to |rho| = 1."""
    x = pd.DataFrame({"a": [0] * 30 + [1] * 70, "b": [0] * 60 + [1] * 40, "c": np.tile([0, 1], 50)})
    result, caught = run(x)
    assert result.correlation.loc["a", "b"] == pytest.approx(1, abs=1e-6)
    assert abs(result.correlation.loc["a", "c"]) < 0.1
    assert any("a-b" in m and "boundary" in m for m in of_class(caught, GapscaleWarning))
    assert not of_class(caught, ConvergenceWarning)


def test_result_is_frozen_and_writes_files(tmp_path):
    data, _ref = load("ability")
    result, _ = run(data, list(data.columns[:4]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.smoothed = True  # type: ignore[misc]
    files = result.to_files(tmp_path)
    assert [f.name for f in files] == ["polychoric_correlation.csv", "polychoric_thresholds.csv"]
    back = pd.read_csv(files[0], index_col="item")
    np.testing.assert_allclose(back.to_numpy(), result.correlation.to_numpy(), atol=1e-12)
    assert list(pd.read_csv(files[1]).columns) == ["item", "t1"]


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def items():
    rng = np.random.default_rng(5)
    return pd.DataFrame({"q1": rng.integers(1, 6, 50), "q2": rng.integers(1, 6, 50), "q3": rng.integers(1, 6, 50)})


def test_non_numeric_column(items):
    items["q2"] = items["q2"].map({1: "low", 2: "b", 3: "c", 4: "d", 5: "high"})
    with pytest.raises(ValueError, match=r"column 'q2' is not numeric.*first value 'b'|column 'q2' is not numeric"):
        polychoric(items)


def test_non_integer_value(items):
    items["q3"] = items["q3"].astype(float)
    items.loc[7, "q3"] = 2.5
    with pytest.raises(ValueError, match=r"column 'q3' has the value 2.5 in row 8, which is not a whole number"):
        polychoric(items)


def test_infinite_value(items):
    items["q1"] = items["q1"].astype(float)
    items.loc[0, "q1"] = np.inf
    with pytest.raises(ValueError, match="column 'q1' has the value inf in row 1"):
        polychoric(items)


def test_boolean_column(items):
    items["q1"] = items["q1"] > 2
    with pytest.raises(ValueError, match="column 'q1' is not numeric"):
        polychoric(items)


def test_constant_column(items):
    items["q2"] = 4
    items.loc[3, "q2"] = np.nan
    with pytest.raises(ValueError, match=r"column 'q2' is constant \(every observed value is 4\)"):
        polychoric(items)


def test_entirely_missing_column(items):
    items["q2"] = np.nan
    with pytest.raises(ValueError, match="column 'q2' is entirely missing"):
        polychoric(items)


def test_fewer_than_two_items(items):
    with pytest.raises(ValueError, match=r"at least 2 columns, got 1: \['q1'\]"):
        polychoric(items, ["q1"])


def test_too_many_categories(items):
    items["age"] = np.arange(18, 68)
    with pytest.raises(ValueError, match=r"column 'age' has 50 distinct values \(more than max_categories=20\)"):
        polychoric(items)
    result, _ = run(items[["q1", "q2"]], max_categories=5)
    assert result.correlation.shape == (2, 2)
    with pytest.raises(ValueError, match="column 'q1' has 5 distinct values"):
        polychoric(items, ["q1", "q2"], max_categories=4)


def test_unknown_and_repeated_columns(items):
    with pytest.raises(ValueError, match="column 'q9' is not in the data"):
        polychoric(items, ["q1", "q9"])
    with pytest.raises(ValueError, match="column 'q1' is listed twice"):
        polychoric(items, ["q1", "q1", "q2"])
    with pytest.raises(TypeError, match="the string 'q1'"):
        polychoric(items, "q1")
    with pytest.raises(TypeError, match="DataFrame"):
        polychoric(items.to_numpy())


def test_never_observed_together(items):
    items = items.astype(float)
    items.loc[:24, "q1"] = np.nan
    items.loc[25:, "q3"] = np.nan
    with pytest.raises(ValueError, match="columns 'q1' and 'q3' are never observed in the same row"):
        polychoric(items)


def test_bad_correct(items):
    with pytest.raises(ValueError, match="correct: need a number >= 0, got -1"):
        polychoric(items, correct=-1)


# --------------------------------------------------------------------------- nearest_positive_definite


def test_positive_definite_matrix_is_returned_unchanged():
    r = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        out = nearest_positive_definite(r)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, r)
    assert out is not r


def test_not_positive_definite_matrix_is_smoothed_with_a_warning():
    r = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])  # eigenvalues 1.9, 1.9, -0.8
    with pytest.warns(NotPositiveDefiniteWarning, match=r"not positive definite \(smallest eigenvalue -0.8\); "
                                                        r"1 eigenvalue\(s\) below 1e-12"):
        out = nearest_positive_definite(r)
    assert np.linalg.eigvalsh(out).min() > 0
    np.testing.assert_array_equal(np.diag(out), np.ones(3))
    np.testing.assert_allclose(out, out.T, atol=0)
    # psych::cor.smooth(r) (psych 2.2.9): 0.499999999960526 off the diagonal, -0.499999999960527 at [1, 3]
    np.testing.assert_allclose(out[[0, 0, 1], [1, 2, 2]], [0.499999999960526, -0.499999999960527, 0.499999999960526],
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("matrix, message", [
    (np.array([[1.0, 0.5], [0.4, 1.0]]), "not symmetric"),
    (np.array([[1.0, 0.5], [0.5, 2.0]]), "diagonal entry 1 is 2.0"),
    (np.array([[1.0, 1.5], [1.5, 1.0]]), r"outside \[-1, 1\]"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "missing"),
    (np.ones((2, 3)), "square"),
])
def test_nearest_positive_definite_rejects_non_correlation_matrices(matrix, message):
    with pytest.raises(ValueError, match=message):
        nearest_positive_definite(matrix)
