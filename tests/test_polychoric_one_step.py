"""polychoric_one_step: one Fisher-scoring step of the polychoric likelihood from rho = 0, the
correlation of parallel analysis' resampled (independent) data sets (issue 13)."""
import numpy as np
import pandas as pd
import pytest

from analysis.polychoric import polychoric, polychoric_one_step


def _independent(n, p, rng, missing=0.05):
    x = np.clip(np.round(rng.normal(4.5, 1.5, (n, p))), 1, 7)
    return pd.DataFrame(x, columns=[f"x{j}" for j in range(p)]).mask(rng.random((n, p)) < missing)


@pytest.mark.parametrize("n", [500, 5000])
def test_equals_maximum_likelihood_to_order_one_over_n_for_independent_items(n):
    rng = np.random.default_rng(11)
    x = _independent(n, 8, rng)
    ml = polychoric(x).correlation.to_numpy()
    step = polychoric_one_step(x)
    iu = np.triu_indices(8, 1)
    # the estimates themselves are O(n^-1/2) (about 0.02-0.09 here); their difference O(1/n)
    assert np.abs(step - ml)[iu].max() < 3.0 / n
    assert np.abs(ml[iu]).max() > 5.0 / n  # the check is not satisfied by two zero matrices
    assert np.allclose(np.diag(step), 1.0)


def test_one_step_is_not_the_estimate_for_correlated_items():
    """The step is taken from 0: with a true correlation of 0.6 it is no longer within O(1/n) of
    the maximum (0.605 against 0.599 with n = 20,000; documented)."""
    rng = np.random.default_rng(5)
    z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=20000)
    x = pd.DataFrame(1 + np.searchsorted([-1.0, 0.0, 1.0], z).reshape(z.shape) * 1.0, columns=["a", "b"])
    ml = polychoric(x).correlation.to_numpy()[0, 1]
    step = polychoric_one_step(x)[0, 1]
    assert ml == pytest.approx(0.6, abs=0.02)
    assert abs(step - ml) > 10.0 / 20000


def test_constant_item_gives_nan_or_the_polychoric_refusal():
    x = pd.DataFrame({"a": [1, 2, 3, 1, 2, 3], "b": [3, 2, 1, 2, 2, 1], "c": [2, 2, 2, 2, 2, 2]})
    with pytest.raises(ValueError, match="constant"):
        polychoric_one_step(x)
