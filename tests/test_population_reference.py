"""The population model agrees with lavaan (reference made by tests/reference/population_model.R).

The R script evaluates the committed population syntax with every parameter fixed and writes
lavaan's implied latent covariance (cov.lv), implied item covariance and R^2. CI does not need R:
the numbers are committed. Regenerate both files when params.yaml's `simulate` section changes:
    python tests/reference/make_population_model.py && Rscript tests/reference/population_model.R
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.simulate import parse_simulation_params, population_model
from instrument import parse_model

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def pop(default_instrument, default_params):
    return population_model(default_instrument, parse_simulation_params(default_params["simulate"]),
                            np.random.default_rng(default_params["seed"]))


@pytest.fixture(scope="module")
def lavaan():
    return json.loads((REF / "population_model.json").read_text())


def test_reference_syntax_is_the_current_population_model(pop):
    assert pop.to_lavaan() == (REF / "population_model.lavaan").read_text()
    parse_model(pop.to_lavaan())  # and gapscale reads what it writes


def test_latent_covariance_matches_lavaan(pop, lavaan):
    ours = pop.latent_covariance().loc[lavaan["latents"], lavaan["latents"]].to_numpy()
    assert np.abs(ours - np.asarray(lavaan["cov_lv"])).max() < 1e-9
    assert np.allclose(np.diag(ours), 1.0, atol=1e-12)  # standardised


def test_implied_item_covariance_matches_lavaan(pop, lavaan):
    items = lavaan["items"]
    lam = pop.loadings[items].to_numpy()
    phi = pop.latent_covariance().loc[pop.construct_of[items], pop.construct_of[items]].to_numpy()
    ours = np.outer(lam, lam) * phi
    np.fill_diagonal(ours, 1.0)
    assert np.abs(ours - np.asarray(lavaan["implied_cov"])).max() < 1e-9


def test_r_squared_matches_lavaan(pop, lavaan):
    r2 = pop.r_squared()
    for latent, value in r2.items():
        assert value == pytest.approx(lavaan["r2"][latent], abs=1e-9), latent
    for item, lam in pop.loadings.items():
        assert lam**2 == pytest.approx(lavaan["r2"][item], abs=1e-9), item
