"""Missing-data summaries and Little's MCAR test (reference made by tests/reference/little_mcar.R).

The R script writes Little's (1988) test out in R (no MCAR package is in Debian), checks its EM
moments against lavaan's h1 EM and its airquality result against naniar::mcar_test's published
value, and stores the inputs as CSV, so these tests need no R. Regenerate with
    Rscript tests/reference/little_mcar.R
Largest differences from R seen when the reference was made (airquality, bfi A1-A5/C1-C5):
statistic 8e-11, p-value 1e-13, df and pattern counts identical; EM mean and covariance 1e-11
of the largest variance from the R script's EM, 8e-8 from lavaan's h1 EM (which stops
earlier); log-likelihood 3e-10. naniar's published airquality statistic is 5e-5 away (its EM
stops at a relative change of 1e-4).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.missing import (
    ConvergenceWarning,
    EMSample,
    LittleMCAR,
    em_moments,
    em_moments_values,
    em_moments_weighted,
    little_mcar_test,
    missing_by_item,
    missing_by_respondent,
    missing_patterns,
)

REF = Path(__file__).parent / "reference"
REFERENCE = json.loads((REF / "little_mcar.json").read_text())
DATASETS = sorted(REFERENCE["datasets"])


def load(name: str) -> tuple[pd.DataFrame, dict]:
    ref = REFERENCE["datasets"][name]
    return pd.read_csv(REF / ref["csv"]), ref


@pytest.fixture(scope="module")
def airquality():
    return load("airquality")


# --------------------------------------------------------------------------- Little's test vs R


@pytest.mark.parametrize("name", DATASETS)
def test_little_mcar_matches_r(name):
    data, ref = load(name)
    result = little_mcar_test(data, ref["columns"])
    assert isinstance(result, LittleMCAR)
    assert result.statistic == pytest.approx(ref["statistic"], abs=1e-6)
    assert result.df == ref["df"]
    assert result.pvalue == pytest.approx(ref["pvalue"], abs=1e-8)
    assert result.n_patterns == ref["n_patterns"]
    assert result.n == ref["n"]


@pytest.mark.parametrize("name", DATASETS)
def test_em_moments_match_r_and_lavaan(name):
    data, ref = load(name)
    em = em_moments(data, ref["columns"])
    assert em.converged and em.n == ref["n"]
    assert list(em.mean.index) == ref["columns"] == list(em.cov.columns)
    scale = np.diag(np.asarray(ref["em_cov"])).max()
    # lavaan's h1 EM stops earlier than ours (bfi: 3e-8 apart), the EM in the R script does not.
    for source, tol in (("em", 1e-8), ("lavaan_h1", 1e-6)):
        assert np.abs(em.mean.to_numpy() - np.asarray(ref[f"{source}_mean"])).max() / scale < tol, source
        assert np.abs(em.cov.to_numpy() - np.asarray(ref[f"{source}_cov"])).max() / scale < tol, source
        assert em.loglik == pytest.approx(ref[f"{source}_loglik"], abs=1e-6), source
    assert np.allclose(em.cov.to_numpy(), em.cov.to_numpy().T, rtol=0, atol=0)


def test_airquality_agrees_with_naniar_published_value(airquality):
    # naniar's EM (norm::em.norm) stops at a relative change of 1e-4: agreement to ~1e-4 only.
    data, ref = airquality
    naniar = REFERENCE["naniar_mcar_test_airquality"]
    result = little_mcar_test(data, ref["columns"])
    assert result.statistic == pytest.approx(naniar["statistic"], abs=1e-4)
    assert result.df == naniar["df"]
    assert result.pvalue == pytest.approx(naniar["pvalue"], abs=1e-6)
    assert result.n_patterns == naniar["n_patterns"]


def test_to_dict_is_json_ready(airquality):
    data, ref = airquality
    d = little_mcar_test(data, ref["columns"]).to_dict()
    assert list(d) == ["statistic", "df", "pvalue", "n_patterns", "n"]
    assert json.loads(json.dumps(d)) == d
    assert type(d["df"]) is int and type(d["statistic"]) is float


# --------------------------------------------------------------------------- properties


def test_rows_missing_everything_are_dropped(airquality):
    data, ref = airquality
    cols = ref["columns"]
    padded = pd.concat([data, pd.DataFrame({c: [np.nan, np.nan] for c in cols})], ignore_index=True)
    a, b = little_mcar_test(data, cols), little_mcar_test(padded, cols)
    assert b.n == a.n == len(data)
    assert b.n_patterns == a.n_patterns
    assert b.statistic == pytest.approx(a.statistic, rel=1e-12)
    assert b.df == a.df


def test_invariant_to_column_order_and_affine_rescaling(airquality):
    data, ref = airquality
    cols = ref["columns"]
    base = little_mcar_test(data, cols)
    rescaled = data[cols] * np.array([-2.0, 0.01, 100.0, 1.0, 3.0, -1.0]) + 1000.0
    for frame, order in ((data, cols[::-1]), (rescaled, cols)):
        other = little_mcar_test(frame, order)
        assert other.statistic == pytest.approx(base.statistic, rel=1e-8)
        assert (other.df, other.n_patterns) == (base.df, base.n_patterns)


def test_nullable_integer_columns(airquality):
    data, ref = airquality
    cols = ref["columns"]
    as_int = data[cols].apply(lambda s: pd.array(s.round(), dtype="Int64") if s.name != "Wind" else s)
    assert as_int["Ozone"].dtype == "Int64" and as_int["Ozone"].isna().sum() == 37
    assert little_mcar_test(as_int, cols).statistic == pytest.approx(
        little_mcar_test(as_int.astype("float64"), cols).statistic, rel=1e-12)


def test_complete_data_has_nothing_to_test():
    rng = np.random.default_rng(3)
    data = pd.DataFrame(rng.standard_normal((50, 3)), columns=["a", "b", "c"])
    result = little_mcar_test(data, ["a", "b", "c"])
    assert (result.statistic, result.df, result.pvalue, result.n_patterns, result.n) == (0.0, 0, 1.0, 1, 50)
    em = em_moments(data, ["a", "b", "c"])
    assert np.allclose(em.mean, data.mean(), atol=1e-12)
    assert np.allclose(em.cov, data.cov(ddof=0), atol=1e-12)  # ML: denominator n


def test_non_convergence_warns(airquality):
    data, ref = airquality
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=2"):
        result = little_mcar_test(data, ref["columns"], max_iter=2)
    assert np.isfinite(result.statistic)
    with pytest.warns(ConvergenceWarning):
        assert not em_moments(data, ref["columns"], max_iter=2).converged


# --------------------------------------------------------------------------- counts vs R


@pytest.mark.parametrize("name", DATASETS)
def test_missing_by_item_matches_r(name):
    data, ref = load(name)
    out = missing_by_item(data, ref["columns"])
    assert list(out.columns) == ["variable", "n", "n_missing", "pct_missing"]
    expected = ref["missing_by_item"]
    assert out["variable"].tolist() == expected["variable"]
    assert out["n"].tolist() == expected["n"]
    assert out["n_missing"].tolist() == expected["n_missing"]
    assert np.allclose(out["pct_missing"], expected["pct_missing"], rtol=0, atol=1e-12)


def test_missing_by_item_keeps_the_given_order(airquality):
    data, _ = airquality
    out = missing_by_item(data, ["Wind", "Solar.R", "Ozone"])
    assert out["variable"].tolist() == ["Wind", "Solar.R", "Ozone"]
    assert out["n_missing"].tolist() == [0, 7, 37]
    assert out["pct_missing"].tolist() == pytest.approx([0.0, 700 / 153, 3700 / 153])


def test_missing_by_respondent_without_id(airquality):
    data, ref = airquality
    out = missing_by_respondent(data, ref["columns"])
    assert list(out.columns) == ["row", "respondent_id", "n_missing", "pct_missing"]
    assert out["row"].tolist() == list(range(1, len(data) + 1))
    assert out["respondent_id"].tolist() == out["row"].tolist()
    assert out["n_missing"].tolist() == ref["missing_by_respondent"]["n_missing"]
    assert np.allclose(out["pct_missing"], 100 * out["n_missing"] / 6, rtol=0, atol=1e-12)


def test_missing_by_respondent_with_id():
    data, ref = load("bfi_ac")
    out = missing_by_respondent(data, ref["columns"], id_column=ref["id_column"])
    assert out["respondent_id"].tolist() == ref["ids"]
    assert out["n_missing"].tolist() == ref["missing_by_respondent"]["n_missing"]
    assert out["row"].iloc[-1] == len(data)


@pytest.mark.parametrize("name", DATASETS)
def test_missing_patterns_match_r(name):
    data, ref = load(name)
    cols = ref["columns"]
    out = missing_patterns(data, cols)
    assert list(out.columns) == cols + ["n"]
    assert all(out[c].dtype == np.int64 for c in out.columns)
    assert out["n"].is_monotonic_decreasing and out["n"].sum() == len(data)
    ours = {tuple(row[cols]): row["n"] for _, row in out.iterrows()}
    assert ours == {tuple(p["pattern"]): p["n"] for p in ref["patterns"]}


def test_missing_patterns_order_and_values():
    data = pd.DataFrame({"a": [1, None, 3, None, 5, 6], "b": [None, 2, 3, None, 5, 6], "c": ["x", "y", None, "z", "x", "y"]})
    out = missing_patterns(data, ["a", "b", "c"])
    # n descending; ties: fewer missing first, then observed before missing from the left.
    assert out.values.tolist() == [[1, 1, 1, 2], [1, 1, 0, 1], [1, 0, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]]


# --------------------------------------------------------------------------- input errors


def _frame():
    rng = np.random.default_rng(11)
    data = pd.DataFrame(rng.standard_normal((40, 3)), columns=["a", "b", "c"])
    data.loc[[1, 5, 9], "a"] = np.nan
    return data


@pytest.mark.parametrize("change, columns, message", [
    (None, ["a"], r"at least 2 columns, got 1: \['a'\]"),
    (None, ["a", "zz"], r"column 'zz' is not in the data"),
    (None, ["a", "a"], r"column 'a' is listed twice"),
    ({"b": np.nan}, ["a", "b", "c"], r"column 'b' is entirely missing"),
    ({"c": 4.0}, ["a", "b", "c"], r"column 'c' is constant \(every observed value is 4\)"),
    ({"c": "text"}, ["a", "b", "c"], r"column 'c' is not numeric .*first value 'text' in row 1"),
])
def test_input_errors_name_the_column(change, columns, message):
    data = _frame()
    for col, value in (change or {}).items():
        data[col] = value
    with pytest.raises(ValueError, match=message):
        little_mcar_test(data, columns)


def test_constant_column_with_missing_values_and_infinite_value():
    data = _frame()
    data["c"] = np.where(np.arange(40) % 3 == 0, np.nan, 2.0)
    with pytest.raises(ValueError, match="column 'c' is constant"):
        little_mcar_test(data, ["a", "b", "c"])
    data = _frame()
    data.loc[7, "b"] = np.inf
    with pytest.raises(ValueError, match="column 'b' has an infinite value inf in row 8"):
        little_mcar_test(data, ["a", "b", "c"])


def test_columns_never_observed_together():
    data = _frame()
    data.loc[data.index % 2 == 0, "b"] = np.nan
    data.loc[data.index % 2 == 1, "c"] = np.nan
    with pytest.raises(ValueError, match="columns 'b' and 'c' are never observed in the same row"):
        little_mcar_test(data, ["a", "b", "c"])


@pytest.mark.parametrize("name", DATASETS)
def test_em_moments_of_values_are_those_of_the_frame(name):
    """em_moments_values (an HTMT resample's rows, no data frame) gives em_moments' estimates bit
    for bit, from a start and tolerance too, and refuses what it refuses."""
    data, ref = load(name)
    x = data[ref["columns"]].to_numpy(dtype=float)
    rows = x[np.random.default_rng(3).integers(0, len(x), len(x))]
    full = em_moments(data, ref["columns"])
    for values, kwargs in ((x, {}), (rows, {"start": full, "tol": 1e-5})):
        a = em_moments(pd.DataFrame(values, columns=ref["columns"]), ref["columns"], **kwargs)
        b = em_moments_values(values, ref["columns"], **kwargs)
        assert np.array_equal(a.mean.to_numpy(), b.mean.to_numpy()) and np.array_equal(a.cov.to_numpy(), b.cov.to_numpy())
        assert (a.loglik, a.n, a.n_iter, a.converged) == (b.loglik, b.n, b.n_iter, b.converged)
    never = _frame()
    never.loc[never.index % 2 == 0, "b"] = np.nan
    never.loc[never.index % 2 == 1, "c"] = np.nan
    with pytest.raises(ValueError, match="columns 'b' and 'c' are never observed in the same row"):
        em_moments_values(never.to_numpy(dtype=float), ["a", "b", "c"])


def test_linearly_dependent_columns():
    data = _frame()
    data["d"] = 2 * data["b"] - data["c"]
    with pytest.raises(ValueError, match="columns b, c, d are linearly dependent"):
        little_mcar_test(data, ["a", "b", "c", "d"])


def test_count_functions_check_their_input():
    data = _frame()
    with pytest.raises(ValueError, match="column 'zz' is not in the data"):
        missing_by_item(data, ["a", "zz"])
    with pytest.raises(ValueError, match="id_column 'id' is not a column"):
        missing_by_respondent(data, ["a"], id_column="id")
    with pytest.raises(ValueError, match="column named 'n' clashes"):
        missing_patterns(data.rename(columns={"b": "n"}), ["a", "n"])
    with pytest.raises(ValueError, match="tol: need a number > 0"):
        little_mcar_test(data, ["a", "b"], tol=0)


# --------------------------------------------------------------------------- size and power

COLS = [f"y{k}" for k in range(5)]
REPLICATIONS = 200


def _simulate(rng: np.random.Generator, mechanism: str, n: int = 300) -> pd.DataFrame:
    """Five standard normal variables correlating .5, with MCAR or MAR missingness."""
    cov = np.full((5, 5), 0.5)
    np.fill_diagonal(cov, 1.0)
    y = rng.multivariate_normal(np.zeros(5), cov, size=n, method="cholesky")
    if mechanism == "mcar":  # 15% of cells, each independently
        y[rng.random(y.shape) < 0.15] = np.nan
    else:  # y0 missing with probability logistic(-1.5 + 2.5 y1): about 30%, mostly where y1 is high
        p = 1.0 / (1.0 + np.exp(1.5 - 2.5 * y[:, 1]))
        y[rng.random(n) < p, 0] = np.nan
    return pd.DataFrame(y, columns=COLS)


def test_size_under_mcar():
    # 3000 replications of this design reject at .05 in 4.2% (Little's test is slightly
    # conservative with many sparse patterns); 200 replications: binomial SD 1.5 points.
    rng = np.random.default_rng(20261122)
    pvalues = np.array([little_mcar_test(_simulate(rng, "mcar"), COLS).pvalue for _ in range(REPLICATIONS)])
    assert 0.02 <= (pvalues < 0.05).mean() <= 0.10
    assert 0.3 < np.median(pvalues) < 0.7  # roughly uniform


def test_power_under_mar():
    rng = np.random.default_rng(20261123)
    pvalues = np.array([little_mcar_test(_simulate(rng, "mar"), COLS).pvalue for _ in range(REPLICATIONS)])
    assert (pvalues < 0.05).mean() > 0.80


@pytest.mark.parametrize("name", DATASETS)
def test_em_moments_weighted_is_that_of_the_drawn_rows(name):
    """A bootstrap draw as row counts (em_moments_weighted) gives em_moments_values' estimates on
    the drawn rows: the same iterations (from a start, tol 1e-5, as the HTMT bootstrap) and the
    same numbers to rounding, log-likelihood included; a cold start reaches the same fixed point."""
    data, ref = load(name)
    cols = ref["columns"]
    x = data[cols].to_numpy(dtype=float)
    sample = EMSample(x, cols)
    full = em_moments(data, cols)
    rng = np.random.default_rng(5)
    for _ in range(3):
        draw = rng.integers(0, len(x), len(x))
        counts = np.bincount(draw, minlength=len(x))
        for kwargs in ({"start": full, "tol": 1e-5}, {}):
            a = em_moments_values(x[draw], cols, **kwargs)
            b = em_moments_weighted(sample, counts, **kwargs)
            scale = np.sqrt(np.diag(a.cov.to_numpy()))
            assert np.abs(a.mean.to_numpy() - b.mean.to_numpy()).max() / scale.max() < 1e-9
            assert np.abs(a.cov.to_numpy() - b.cov.to_numpy()).max() / scale.max() ** 2 < 1e-9
            assert b.loglik == pytest.approx(a.loglik, rel=1e-11)
            assert (a.n, a.converged) == (b.n, b.converged)
            if kwargs:
                assert a.n_iter == b.n_iter
    assert np.isnan(em_moments_weighted(sample, np.ones(len(x)), loglik=False).loglik)


def test_em_moments_weighted_refuses_what_the_drawn_rows_refuse():
    data = _frame()
    x = data.to_numpy(dtype=float)
    sample = EMSample(x, ["a", "b", "c"])
    weights = np.zeros(len(x))
    weights[[1, 5, 9, 2]] = 1  # column a observed in row 2 only among these: constant
    with pytest.raises(ValueError, match="'a' is constant"):
        em_moments_weighted(sample, weights)
    with pytest.raises(ValueError, match="'a' is constant"):
        em_moments_values(x[[1, 5, 9, 2]], ["a", "b", "c"])
    with pytest.raises(ValueError, match="weights"):
        em_moments_weighted(sample, np.ones(3))
