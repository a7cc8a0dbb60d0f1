"""Monte Carlo power (analysis.montecarlo): the population moments against lavaan::simulateData,
the power against the closed-form Wald power, parameter recovery, seeds and failed replications."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.montecarlo import (MonteCarloSettings, Population, aggregate, exact_moment_data, interpolate_n,
                                 lavaan_population, population_values, replicate, replication_tasks, run_power,
                                 wald_power)

REF = Path(__file__).parent / "reference"

# One path in a model whose Wald power has a closed form (population_values + wald_power).
REGRESSION_POP = "y ~ 0.15*x1 + 0.3*x2\nx1 ~~ 0.3*x2"
REGRESSION = "y ~ b*x1 + x2"
LATENT_POP = ("f1 =~ 0.7*x1 + 0.7*x2 + 0.7*x3\nf2 =~ 0.7*y1 + 0.7*y2 + 0.7*y3\nf2 ~ 0.25*f1\n"
              "f2 ~~ 0.9375*f2")
LATENT = "f1 =~ x1 + x2 + x3\nf2 =~ y1 + y2 + y3\nf2 ~ b*f1"
HYP = {"H1": {"statement": "x1 raises y", "expect": {"b": "positive"}}}


def _reference():
    return json.loads((REF / "montecarlo_population.json").read_text())


@pytest.mark.parametrize("name", ["cfa_path", "chain_standardized", "means_covariances", "default_study"])
def test_population_moments_match_lavaan_simulatedata(name):
    ref = _reference()["models"][name]
    pop = lavaan_population(ref["model"], standardized=ref["standardized"])
    order = [pop.ov.index(v) for v in ref["ov"]]
    assert sorted(pop.ov) == sorted(ref["ov"])
    sigma = pop.sigma[np.ix_(order, order)]
    np.testing.assert_allclose(sigma, np.array(ref["cov"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(pop.mu[order], np.array(ref["mean"]), rtol=0, atol=1e-12)


def test_standardized_chain_is_lavaans_one_pass():
    """simulateData(standardized = TRUE) solves residual variances in one pass: the end of a
    chain of latents has a variance above 1 (lavaan's convention, documented, kept)."""
    ref = _reference()["models"]["chain_standardized"]
    pop = lavaan_population(ref["model"], standardized=True)
    i, j = pop.ov.index("c1"), pop.ov.index("c2")
    assert pop.sigma[i, j] / (0.7 * 0.7) > 1.05
    assert np.allclose(np.diag(pop.sigma), 1.0)  # but every observed variable has variance 1


def test_unspecified_regression_warns_and_is_zero():
    from analysis.warnings import GapscaleWarning

    with pytest.warns(GapscaleWarning, match="set to zero"):
        pop = lavaan_population("y ~ x1 + 0.5*x2")
    assert pop.sigma[pop.ov.index("y"), pop.ov.index("x1")] == 0.0


def test_population_not_positive_definite_is_input_error():
    with pytest.raises(InputError, match="not positive definite"):
        lavaan_population("f =~ 1*x1 + 1*x2\nx1 ~~ -2*x1")


def test_exact_moment_data_has_the_population_moments():
    pop = lavaan_population(_reference()["models"]["means_covariances"]["model"])
    data = exact_moment_data(pop, 57)
    x = data[list(pop.ov)].to_numpy()
    np.testing.assert_allclose(np.cov(x.T, bias=True), pop.sigma, atol=1e-12)
    np.testing.assert_allclose(x.mean(axis=0), pop.mu, atol=1e-12)


def test_population_values_are_the_population():
    pop = Population("lavaan", lavaan_population(LATENT_POP))
    tv = population_values(pop, MonteCarloSettings(model=LATENT, std_lv=False)).set_index("name")
    assert tv.loc["b", "est"] == pytest.approx(0.25, abs=1e-7)   # marker loadings .7/.7: b unchanged
    assert tv.loc["f1~~f1", "est"] == pytest.approx(0.49, abs=1e-7)
    assert tv.loc["f2=~y2", "est"] == pytest.approx(1.0, abs=1e-7)
    assert tv.loc["b", "std_all"] == pytest.approx(0.25, abs=1e-7)
    # the asymptotic SE at n: the expected information at the population values
    tv2 = population_values(pop, MonteCarloSettings(model=LATENT), n=4000).set_index("name")
    assert tv2.loc["b", "se"] == pytest.approx(tv.loc["b", "se"] * math.sqrt(1000 / 4000), rel=1e-6)


def test_wald_power_formula():
    from scipy import stats

    delta = np.array([0.5, 1.96, 2.8, -3.0])
    z = stats.norm.ppf(0.975)
    expected = stats.norm.cdf(np.abs(delta) - z) + stats.norm.cdf(-np.abs(delta) - z)
    np.testing.assert_allclose(wald_power(delta, np.ones(4)), expected, rtol=1e-10)
    # In R: pchisq(qchisq(.95, 1), 1, ncp = 2.8^2, lower.tail = FALSE) = 0.7995568
    assert wald_power(2.8, 1.0) == pytest.approx(0.7995568, abs=1e-7)


def test_interpolated_n():
    n, m, note = interpolate_n([100, 200, 400], [0.5, 0.7, 0.9], 0.8)
    assert (n, note) == (400.0, "") and m == pytest.approx(300.0, abs=1e-9)
    n, m, note = interpolate_n([100, 200], [0.85, 0.95], 0.8)
    assert (n, m) == (100.0, 100.0) and "smallest" in note
    n, m, note = interpolate_n([100, 200], [0.2, 0.5], 0.8)
    assert math.isnan(n) and math.isnan(m) and "not reached" in note


def test_seeds_do_not_depend_on_grid_replications_or_processes():
    pop = Population("lavaan", lavaan_population(REGRESSION_POP))
    s = MonteCarloSettings(model=REGRESSION, hypotheses=HYP)
    one = run_power(pop, s, [60, 90], 3, seed=7, jobs=1)
    two = run_power(pop, s, [60, 90], 3, seed=7, jobs=2)
    other_grid = run_power(pop, s, [90], 2, seed=7, jobs=1)

    def strip(r):  # as text: repr round-trips floats, and NaN (a saturated model's p-value) equals itself
        return repr({k: v for k, v in r.items() if k != "cpu_s"})

    assert [strip(r) for r in one] == [strip(r) for r in two]
    assert [strip(r) for r in one[3:5]] == [strip(r) for r in other_grid]
    assert one[0]["parameters"] != one[1]["parameters"]


def test_failed_replication_is_counted_with_its_reason():
    pop = Population("lavaan", lavaan_population(REGRESSION_POP))
    s = MonteCarloSettings(model=REGRESSION, hypotheses=HYP)
    tasks = replication_tasks(pop, s, [3, 200], 2, seed=1)
    records = [replicate(t) for t in tasks]
    assert [r["status"] for r in records[:2]] == ["failed", "failed"]  # 3 rows for 3 variables: singular
    assert "InputError" in records[0]["reason"] and "singular" in records[0]["reason"]
    res = aggregate(records, population_values(pop, s), s)
    first = res.by_n.iloc[0]
    assert first["failed"] == 2 and first["convergence_rate"] == 0 and first["replications"] == 2
    h = res.hypotheses.iloc[0]
    assert math.isnan(h["power"]) and h["power_all"] == 0.0
    assert (res.replications["status"] == "failed").sum() == 2 and len(res.replications) == 4


def test_bad_settings_are_input_errors():
    pop = Population("lavaan", lavaan_population(REGRESSION_POP))
    with pytest.raises(InputError, match="increase"):
        replication_tasks(pop, MonteCarloSettings(model=REGRESSION), [200, 100], 5, 1)
    with pytest.raises(InputError, match="replications"):
        replication_tasks(pop, MonteCarloSettings(model=REGRESSION), [100], 0, 1)
    with pytest.raises(InputError, match="alpha"):
        MonteCarloSettings(model=REGRESSION, alpha=1.5)
    with pytest.raises(InputError, match="hypothesis parameter 'zz'"):
        population_values(pop, MonteCarloSettings(model=REGRESSION, hypotheses={"H": {"expect": {"zz": "positive"}}}))
    with pytest.raises(InputError, match="not in the population"):
        population_values(pop, MonteCarloSettings(model="y ~ b*x1 + w"))


def _closed_form_check(pop_text, model, n, replications, seed, jobs, sigmas):
    pop = Population("lavaan", lavaan_population(pop_text))
    s = MonteCarloSettings(model=model, hypotheses=HYP)
    truth = population_values(pop, s)
    b = truth.set_index("name").loc["b"]
    analytic = float(wald_power(b["est"], b["se"] * math.sqrt(truth.attrs["n"] / n)))
    res = aggregate(run_power(pop, s, [n], replications, seed, jobs=jobs), truth, s)
    path = res.paths.set_index("name").loc["b"]
    mc = float(path["power"])
    mcse = math.sqrt(analytic * (1 - analytic) / path["converged"])
    assert path["wald_power_asymptotic"] == pytest.approx(analytic, rel=1e-12)
    assert res.hypotheses["power"].iat[0] == mc  # one-part hypothesis: its power is the path's
    assert abs(mc - analytic) < sigmas * mcse, (mc, analytic, mcse)
    return mc, analytic, mcse


def test_monte_carlo_power_agrees_with_closed_form_small():
    # R = 200: Monte Carlo SE about .035 at power .62; 3 SE is about .10 (a power computed from the
    # wrong SE, or the wrong direction, or per all parameters misses by more)
    _closed_form_check(REGRESSION_POP, REGRESSION, 250, 200, 11, 1, 3.0)


LATENT_POP_SMALL_EFFECT = LATENT_POP.replace("0.25*f1", "0.15*f1").replace("0.9375*f2", "0.9775*f2")


@pytest.mark.slow
@pytest.mark.parametrize("pop_text,model,n", [(REGRESSION_POP, REGRESSION, 250),
                                              (LATENT_POP_SMALL_EFFECT, LATENT, 700)],
                         ids=["regression", "latent_path"])
def test_monte_carlo_power_agrees_with_closed_form(pop_text, model, n):
    """R = 2000 at power ~.6: Monte Carlo SE ~.011, tolerance 3 SE (~.033). The latent path at
    N = 700 (beta .15): the closed form is asymptotic; at N = 250 (beta .25) the path's estimate has a
    finite-sample bias of +4% and its SE underestimates the SD by 8% (measured, R = 600), so the
    Monte Carlo power there was .619 against .581 (3.5 SE at R = 2000), as expected of a ratio of
    latent covariances in small samples; at N = 700 bias -0.3%, SE/SD 1.05, power .665 vs .628
    (R = 600, 1.9 SE)."""
    _closed_form_check(pop_text, model, n, 2000, 2026, 2, 3.0)


def _default_study_population():
    """The default study's population (params.yaml simulate:) as continuous data, and its model."""
    from instrument import load_instrument
    from pipeline.sem import read_hypotheses

    text = (REF / "montecarlo_default_population.lavaan").read_text()
    root = Path(__file__).resolve().parents[1] / "instrument"
    model = (root / "sustainability_gap.lavaan").read_text()
    load_instrument(root / "sustainability_gap.yaml")  # the model's columns are the instrument's
    return Population("lavaan", lavaan_population(text)), model, read_hypotheses(root /
                                                                                "sustainability_gap.hypotheses.yaml")


@pytest.mark.slow
def test_parameter_recovery_default_model():
    """Muthén & Muthén (2002)'s criteria at the largest N for the default 72-item model (ML,
    complete continuous data from the default study's population): relative bias of every
    parameter below 5% and 95% coverage between .93 and .97 for the structural paths (R = 1000:
    Monte Carlo SE of a coverage .0069, so [.93, .97] is +/- 2.9 SE), and on average over all.
    Measured (353 CPU-s, 0.35 per replication): convergence 1.0; max |relative bias| .025 (r8) over
    the 218 parameters; structural coverage .937-.962; all parameters .922-.966, mean .948 (two
    variances just under .93: IMVI~~IMVI .922, EXPC_3~~EXPC_3 .928); max |SE relative bias| .071.

    Why not every parameter in [.93, .97]: Monte Carlo error, not the SEs. The data here are
    multivariate normal (continuous, complete), so robust (MLR) SEs would estimate the same
    variance; non-normal Likert items are not the cause. Run again with seed 7 (R = 1000, N = 1000),
    the two variances are covered .951 and .948 and two *other* parameters fall under .93 (VCD~~VCD
    .923, ind_total_vcd .927; all .923-.965, mean .948, variances' mean .948; structural paths
    .936-.963; max |relative bias| .022, max |SE relative bias| .067): 218 coverages, each with a Monte
    Carlo SE of .0069, have an expected minimum of about .948 - 2.8 x .0069 = .929, and the low ones
    change with the seed. So the criterion is asserted where it is meaningful: each structural path
    (30 rows with op ~) and the mean over all."""
    pop, model, hyp = _default_study_population()
    s = MonteCarloSettings(model=model, hypotheses=hyp)
    truth = population_values(pop, s)
    res = aggregate(run_power(pop, s, [1000], 1000, 20261122, jobs=2), truth, s)
    paths = res.paths
    assert res.by_n["convergence_rate"].iat[0] == 1.0
    big = paths[paths["population"].abs() > 0.05]
    assert big["relative_bias"].abs().max() < 0.05, big.loc[big["relative_bias"].abs().idxmax()].to_dict()
    structural = paths[paths["op"] == "~"]
    assert structural["coverage"].between(0.93, 0.97).all(), structural[["name", "coverage"]].to_string()
    assert 0.94 <= paths["coverage"].mean() <= 0.96
    assert paths["se_relative_bias"].abs().max() < 0.10


def test_task_seed_is_the_spawned_child():
    """SeedSequence(seed, spawn_key=(N, r)) is SeedSequence(seed).spawn(N + 1)[N].spawn(r + 1)[r]."""
    pop = Population("lavaan", lavaan_population(REGRESSION_POP))
    task = replication_tasks(pop, MonteCarloSettings(model=REGRESSION), [40], 3, seed=11)[2]
    child = np.random.SeedSequence(11).spawn(41)[40].spawn(3)[2]
    assert np.array_equal(task.seed.generate_state(4), child.generate_state(4))


def test_robust_estimator_rejection_uses_the_scaled_test():
    pop = Population("lavaan", lavaan_population(LATENT_POP))
    s = MonteCarloSettings(model=LATENT, estimator="MLR")
    records = run_power(pop, s, [300], 2, seed=3, jobs=1)
    assert all(np.isfinite(r["pvalue_scaled"]) and r["pvalue_scaled"] != r["pvalue"] for r in records)
    res = aggregate(records, population_values(pop, s), s)
    expected = np.mean([r["pvalue_scaled"] < 0.05 for r in records])
    assert res.by_n["chisq_rejection_rate"].iat[0] == expected
    assert {"chisq_scaled", "pvalue_scaled"} <= set(res.replications.columns)


def test_coverage_of_a_quantity_the_metric_fixes_is_not_applicable():
    """std_all: f1's variance is 1 by the standardisation (its SE 0 up to rounding, ~1e-11), so no
    interval covers it or misses it (before: 0 or 1 by rounding); the loadings' and the path's
    coverages are rates."""
    pop = Population("lavaan", lavaan_population(LATENT_POP))
    s = MonteCarloSettings(model=LATENT)
    res = aggregate(run_power(pop, s, [300], 4, seed=5, jobs=1), population_values(pop, s), s, metric="std_all")
    paths = res.paths.set_index("name")
    assert math.isnan(paths.loc["f1~~f1", "coverage"]) and paths.loc["f1~~f1", "mean_se"] < 1e-8
    free = paths[paths["op"].isin(["=~", "~"]) | (paths.index == "f2~~f2")]["coverage"]
    assert free.notna().all() and free.between(0, 1).all() and len(free) == 6
