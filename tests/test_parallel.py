"""Parallel analysis against psych::fa.parallel (tests/reference/parallel.R -> parallel.json).

Data: psych::bfi's 25 items (2800 rows, Pearson and polychoric), psychTools::ability (16 binary
items, 1525 rows), lavaan's HolzingerSwineford1939 x1-x9 (301 rows); psych 2.2.9 with its
defaults (fa = "both", fm = "minres", SMC = FALSE, sim = TRUE, quant = .95, n.iter = 20).

What must agree exactly: the observed eigenvalues (components; factors: the one-factor minres
reduced matrix, or the SMC-reduced one) and the numbers of factors and components psych reports.
The random eigenvalues come from another generator, so only their distribution can agree; the
means are compared within Monte Carlo error (see test_random_eigenvalues_agree_in_distribution).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import efa as fa
from analysis.errors import InputError

REF = Path(__file__).parent / "reference"
PEARSON = ("bfi", "ability", "hs")
BLOCKS = {"resampled_pc": "resampled_pc", "resampled_fa": "resampled_fa", "simulated_pc": "random_pc",
          "simulated_fa": "random_fa"}


@pytest.fixture(scope="module")
def psych():
    return json.loads((REF / "parallel.json").read_text())["datasets"]


def data(ref) -> pd.DataFrame:
    x = pd.read_csv(REF / ref["csv"])
    assert list(x.columns) == ref["items"] and len(x) == ref["n"]
    return x


def pearson(d: pd.DataFrame) -> np.ndarray:
    return d.astype(float).corr().to_numpy()


def polychoric(d: pd.DataFrame) -> np.ndarray:
    from analysis.polychoric import polychoric as poly

    return poly(d).correlation.to_numpy()


R_FTOL = 1e7 * np.finfo(float).eps  # R's optim(method = "L-BFGS-B") default factr = 1e7


@pytest.mark.parametrize("name", PEARSON)
def test_observed_eigenvalues_match_psych(psych, name):
    """Largest differences seen: pc 7e-15; fa (one-factor minres) 2.0e-7 (bfi), 1.3e-7 (ability),
    9.5e-7 (hs); fa with SMC 5e-15.

    The fa differences are psych's optimiser stopping earlier (R's default factr) than
    gapscale's (ftol 1e-12, closer to the minimum): stopped at R's tolerance, gapscale gives
    psych's values to 1e-12, which shows the reduction itself is psych's.
    """
    ref = psych[name]
    r = pearson(data(ref))
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(r))[::-1], ref["pc_values"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fa.reduced_eigenvalues(r), ref["fa_values"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fa.reduced_eigenvalues(r, smc=True), ref["fa_values_smc"], rtol=0, atol=1e-10)
    reduced = r.copy()
    np.fill_diagonal(reduced, np.sum(fa.extract(r, 1, "minres", ftol=R_FTOL).loadings ** 2, axis=1))
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(reduced))[::-1], ref["fa_values"], rtol=0, atol=1e-12)


def test_observed_eigenvalues_of_psychs_polychoric_matrix(psych):
    """Given psych's polychoric matrix, the eigenvalues agree as for Pearson (largest differences
    1e-14, fa 2.3e-7, SMC 7e-15); from gapscale's own polychoric matrix (2e-5 from psych's: its
    optimize() stops early, see test_polychoric.py) they agree to 5e-5."""
    ref = psych["bfi_poly"]
    rho = np.array(ref["r"])
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(rho))[::-1], ref["pc_values"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fa.reduced_eigenvalues(rho), ref["fa_values"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fa.reduced_eigenvalues(rho, smc=True), ref["fa_values_smc"], rtol=0, atol=1e-10)
    own = polychoric(data(ref))
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(own))[::-1], ref["pc_values"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(fa.reduced_eigenvalues(own), ref["fa_values"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", PEARSON)
def test_counts_match_psych_with_its_defaults(psych, name):
    """psych reports the same counts for 5 seeds; gapscale's defaults give them for 3 seeds."""
    ref = psych[name]
    assert len(set(ref["counts"]["nfact"])) == 1 and len(set(ref["counts"]["ncomp"])) == 1
    x = data(ref)
    for seed in range(3):
        table = fa.parallel_analysis(x, pearson, np.random.default_rng(seed))
        assert (fa.parallel_suggestion(table, "fa"), fa.parallel_suggestion(table, "pc")) == \
            (ref["counts"]["nfact"][0], ref["counts"]["ncomp"][0]), seed
    # fa.parallel(SMC = TRUE): bfi 8 factors rather than 6; ability and hs unchanged.
    assert len(set(ref["counts_smc"]["nfact"])) == 1
    table = fa.parallel_analysis(x, pearson, np.random.default_rng(0), smc=True)
    assert fa.parallel_suggestion(table, "fa") == ref["counts_smc"]["nfact"][0]


@pytest.mark.slow
def test_polychoric_counts_match_psych(psych):
    """psych::fa.parallel(bfi, cor = "poly"): observed eigenvalues of the polychoric matrix,
    resampled data correlated polychorically, simulated data by Pearson (as psych)."""
    ref = psych["bfi_poly"]
    assert len(set(ref["counts"]["nfact"])) == 1 and len(set(ref["counts"]["ncomp"])) == 1
    table = fa.parallel_analysis(data(ref), polychoric, np.random.default_rng(0))
    assert fa.parallel_suggestion(table, "fa") == ref["counts"]["nfact"][0]
    assert fa.parallel_suggestion(table, "pc") == ref["counts"]["ncomp"][0]


N_ITER = 200
Z = 4.5


def z_scores(table: pd.DataFrame, n_iter: int, ref: dict) -> dict[str, np.ndarray]:
    """Per block, (gapscale's mean - psych's mean) / the standard error of that difference."""
    out = {}
    for block, column in BLOCKS.items():
        r = ref[block]
        se = np.sqrt(table[f"{column}_sd"].to_numpy() ** 2 / n_iter + np.array(r["sd"]) ** 2 / ref["n_iter"])
        out[block] = (table[f"{column}_mean"].to_numpy() - np.array(r["mean"])) / se
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", PEARSON)
def test_random_eigenvalues_agree_in_distribution(psych, name):
    """The mean random eigenvalues (resampled and simulated, components and factors) agree
    with psych's within Monte Carlo error.

    gapscale's draws (200 iterations, seed 0) and psych's (500 iterations, set.seed(2026)) are
    independent, so the difference of two means has standard error
    sqrt(sd_g^2 / 200 + sd_psych^2 / 500) (each eigenvalue's sd over the iterations). Each
    difference must be within 4.5 standard errors: with a correct implementation each exceeds it
    with probability 7e-6 (normal means of 200+ draws), about 1e-3 for all 200 comparisons of the
    three data sets. The same test with the other reduction (SMC against psych's one-factor
    minres) fails (below), so the tolerance separates right from wrong.
    """
    ref = psych[name]
    x = data(ref)
    table = fa.parallel_analysis(x, pearson, np.random.default_rng(0), n_iter=N_ITER)
    for block, z in z_scores(table, N_ITER, ref["random"]).items():
        assert np.abs(z).max() < Z, (block, np.round(z, 2))
    table_smc = fa.parallel_analysis(x, pearson, np.random.default_rng(1), n_iter=N_ITER, smc=True)
    for block, z in z_scores(table_smc, N_ITER, ref["random_smc"]).items():
        assert np.abs(z).max() < Z, ("smc", block, np.round(z, 2))
    # A wrong reduction is caught: SMC random factor eigenvalues against psych's default ones
    # (largest |z| seen: bfi 6.8, ability 10.4, hs 21.4).
    wrong = z_scores(table_smc, N_ITER, ref["random"])
    assert max(np.abs(wrong["simulated_fa"]).max(), np.abs(wrong["resampled_fa"]).max()) > Z


def test_table_columns_and_percentile():
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(150, 6)) + rng.normal(size=(150, 1)), columns=list("abcdef"))
    table = fa.parallel_analysis(x, pearson, np.random.default_rng(1), n_iter=30)
    assert list(table.columns) == fa.PARALLEL_COLUMNS and list(table["factor"]) == [1, 2, 3, 4, 5, 6]
    top = fa.parallel_analysis(x, pearson, np.random.default_rng(1), n_iter=30, percentile=100)
    middle = fa.parallel_analysis(x, pearson, np.random.default_rng(1), n_iter=30, percentile=50)
    # The same draws: the 100th percentile is the largest, the 50th the median, of the same values.
    assert (top["random_fa"] >= table["random_fa"]).all() and (middle["random_fa"] <= table["random_fa"]).all()
    np.testing.assert_allclose(top["random_pc_mean"], table["random_pc_mean"], rtol=0, atol=0)
    assert (top["random_pc"] > top["random_pc_mean"]).all()
    # One strong common factor: one factor and one component.
    assert fa.parallel_suggestion(table, "fa") == 1 and fa.parallel_suggestion(table, "pc") == 1


def test_first_below_rule():
    table = pd.DataFrame({"observed_fa": [3.0, 1.0, 0.5, 0.4], "random_fa": [0.5, 1.0, 0.3, 0.2]})
    assert fa.parallel_suggestion(table) == 1  # a tie is not above; later eigenvalues above do not count
    table = pd.DataFrame({"observed_fa": [3.0, 2.0], "random_fa": [0.5, 1.0]})
    assert fa.parallel_suggestion(table) == 2


def test_resampling_keeps_each_items_values_and_missing_cells():
    """Resampled data draw each column from its own values: a binary item stays binary."""
    seen = []

    def spy(d):
        seen.append(d)
        return d.astype(float).corr().to_numpy()

    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.integers(0, 2, 300).astype(float), "b": rng.normal(size=300),
                      "c": rng.integers(1, 6, 300).astype(float)})
    x.loc[:29, "b"] = np.nan
    fa.parallel_analysis(x, spy, np.random.default_rng(2), n_iter=3)
    assert len(seen) == 4  # the observed data, then one resample per iteration
    for d in seen[1:]:
        assert set(d["a"].unique()) <= {0.0, 1.0} and set(d["c"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        assert set(d["b"].dropna()) <= set(x["b"].dropna())
        assert 10 < d["b"].isna().sum() < 55  # about 10% missing, as the item


@pytest.mark.parametrize("kwargs, message", [
    ({"n_iter": 0}, "n_iter = 0: use a whole number >= 1"),
    ({"percentile": "high"}, "percentile = 'high': use a number in (0, 100]"),
    ({"percentile": 0}, "percentile = 0: use a number in (0, 100]"),
    ({"percentile": 101}, "percentile = 101"),
])
def test_bad_arguments_are_input_errors(kwargs, message):
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 4)), columns=list("abcd"))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        fa.parallel_analysis(x, pearson, np.random.default_rng(0), **kwargs)


def test_max_factors():
    # p(p-1)/2 - pm + m(m-1)/2 >= 0 and m < p: 3 items 1 factor (0 df), 9 items 5, 25 items 18.
    assert [fa.max_factors(p) for p in (2, 3, 4, 5, 9, 12, 25)] == [0, 1, 1, 2, 5, 7, 18]
    r = pd.read_csv(REF / "holzinger_swineford.csv").corr()
    with pytest.raises(InputError, match=r"n_factors = 100: .* at most 5 factors can be extracted from 9 items"):
        fa.efa(r, 100)
    with pytest.raises(InputError, match=r"n_factors = 6: 6 factors for 9 items are not identified"):
        fa.efa(r, 6)


def test_warnings_of_the_random_data_sets_are_summarised():
    """A sparse category makes polychoric warn for many resampled data sets: one warning says
    how many and shows the first, beside the warnings for the observed data."""
    from analysis.warnings import GapscaleWarning

    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 1))
    x = pd.DataFrame(np.clip(np.round(3 + z + rng.normal(size=(200, 5))), 1, 5), columns=list("abcde"))
    x.loc[0, "a"] = 7  # one answer in a category no other item uses
    with pytest.warns(GapscaleWarning) as record:
        table = fa.parallel_analysis(x, polychoric, np.random.default_rng(1), n_iter=20)
    summary = [str(w.message) for w in record if str(w.message).startswith("parallel analysis:")]
    assert len(summary) == 1 and " of the 20 resampled data sets gave " in summary[0], summary
    assert len(record) < 8  # not one set of warnings per data set
    assert fa.parallel_suggestion(table) == 1
