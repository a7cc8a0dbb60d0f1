"""The structural model against lavaan 0.6-14 (tests/reference/sem.R: Bollen's Political
Democracy model with residual covariances, equal-loading labels and labelled indirect effects),
the bootstrap, competing models, hypotheses, and recovery of the simulated study's paths."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis.bootstrap as bootstrap_module
from analysis.bootstrap import bootstrap_sem, norm_inter
from analysis.sem.single import _row_values, fit_sem
from analysis.structural import chisq_difference, compare_models, hypotheses_table, r_squared, replace_structural
from pipeline.cli import main

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "sem.json").read_text())
DATA = pd.read_csv(REF_DIR / "political_democracy.csv")
KEY = ["lhs", "op", "rhs"]


def lavaan_table(estimator: str) -> pd.DataFrame:
    t = pd.DataFrame(REF[estimator]["parameters"])
    t.loc[t["op"] == ":=", "rhs"] = ""  # lavaan writes the expression without spaces
    return t


def merged(fit, estimator):
    ours = fit.parameters.copy()
    ours.loc[ours["op"] == ":=", "rhs"] = ""
    m = lavaan_table(estimator).merge(ours, on=KEY, suffixes=("_lavaan", ""))
    assert len(m) == len(REF[estimator]["parameters"]) == len(fit.parameters)
    return m


@pytest.fixture(scope="module")
def ml():
    return fit_sem(DATA, REF["model"])


@pytest.fixture(scope="module")
def mlr():
    return fit_sem(DATA, REF["model"], estimator="MLR")


@pytest.mark.parametrize("estimator", ["ml", "mlr"])
def test_parameters_match_lavaan(estimator, ml, mlr):
    """Estimates and SEs to 1e-3 (largest: 1.2e-4 for y2 ~~ y4, lavaan's nlminb stopping early),
    std.all and its SEs to 1e-4, including the := rows (delta method)."""
    m = merged(ml if estimator == "ml" else mlr, estimator)
    assert np.max(np.abs(m["est"] - m["est_lavaan"])) < 1e-3
    assert np.max(np.abs(m["se"] - m["se_lavaan"])) < 1e-3
    assert np.max(np.abs(m["std_all"] - m["std.all"])) < 1e-4
    assert np.max(np.abs(m["std_all_se"] - m["std.all.se"])) < 1e-4
    defined = m[m["op"] == ":="]
    assert set(defined["lhs"]) == {"indirect", "total", "ratio"}
    assert np.max(np.abs(defined["est"] - defined["est_lavaan"])) < 1e-4
    assert np.max(np.abs(defined["se"] - defined["se_lavaan"])) < 1e-4


@pytest.mark.parametrize("estimator", ["ml", "mlr"])
def test_fit_measures_match_lavaan(estimator, ml, mlr):
    fit = (ml if estimator == "ml" else mlr).fit
    for name, value in REF[estimator]["fit"].items():
        ours = fit[name.replace(".", "_")]
        assert ours == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_residual_covariances_standardised_as_lavaan(ml):
    """lavaan's std.all of a residual covariance is a residual correlation (cov.std = TRUE)."""
    p = ml.parameters.set_index(KEY)
    row = p.loc[("y1", "~~", "y5")]
    assert row["std_all"] == pytest.approx(row["est"] / np.sqrt(p.loc[("y1", "~~", "y1"), "est"]
                                                                 * p.loc[("y5", "~~", "y5"), "est"]))


def test_r_squared_matches_lavaan(ml):
    r2 = r_squared(ml).set_index("variable")["r2"]
    ref = REF["ml"]["r2"]
    assert list(r2.index) == list(ref)
    assert np.max(np.abs(r2.to_numpy() - np.array(list(ref.values())))) < 1e-4


def test_defined_parameter_errors():
    with pytest.raises(ValueError, match="labels no parameter"):
        fit_sem(DATA, REF["model"] + "\nbad := a1*zz\n")
    with pytest.raises(ValueError, match="only"):
        fit_sem(DATA, REF["model"] + "\nbad := a1[1]\n")


def test_chisq_difference_matches_lavtestlrt(ml, mlr):
    full_ml = fit_sem(DATA, REF["model_full"])
    full_mlr = fit_sem(DATA, REF["model_full"], estimator="MLR")
    for name, value in REF["competing"]["fit"].items():
        assert full_ml.fit[name.replace(".", "_")] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for (restricted, full), ref in [((full_ml, ml), REF["competing"]["lrt"]), ((full_mlr, mlr), REF["competing"]["lrt_mlr"])]:
        test = chisq_difference(restricted, full)
        # The scaled difference divides by c_d, a difference of products of scaling factors that
        # agree with lavaan to ~1e-6: it magnifies their gap to 2e-4 here (lavaan 8.03113).
        assert test["delta_chisq"] == pytest.approx(ref["chisq_diff"], abs=1e-3)
        assert test["delta_df"] == ref["df_diff"]
        assert test["delta_pvalue"] == pytest.approx(ref["pvalue"], abs=1e-5)
    table = compare_models({"hypothesised": ml, "full_mediation": full_ml}, "hypothesised")
    row = table.set_index("model").loc["full_mediation"]
    assert row["delta_chisq"] == pytest.approx(REF["competing"]["lrt"]["chisq_diff"], rel=1e-5)
    # BIC: 3218.53 (partial) vs 3220.44 (full mediation): the hypothesised model is preferred.
    assert table.set_index("model")["preferred"].to_dict() == {"hypothesised": True, "full_mediation": False}


def test_replace_structural_keeps_the_measurement_part():
    text = replace_structural(REF["model"], "dem65 ~ dem60\ndem60 ~ ind60")
    assert text.count("=~") == 3 and "dem65 ~ dem60" in text and ":=" not in text and "y1 ~~ y5" not in text


# --------------------------------------------------------------------------- bootstrap


def test_norm_inter_is_davison_hinkley_5_8():
    t = np.arange(1.0, 10.0)  # R = 9 draws
    assert norm_inter(t, [0.025, 0.5, 0.3, 0.99]).tolist()[:2] == [1.0, 5.0]
    out = norm_inter(t, [0.35])[0]
    expected = 3 + (stats.norm.ppf(0.35) - stats.norm.ppf(0.3)) / (stats.norm.ppf(0.4) - stats.norm.ppf(0.3))
    assert out == pytest.approx(expected)


@pytest.fixture(scope="module")
def boot(ml):
    return bootstrap_sem(DATA, ml, draws=2000, seed=20261122, jobs=2)


def test_bootstrap_intervals_agree_with_lavaan_within_monte_carlo_error(ml, boot):
    """Both sides draw 2000 samples with their own random numbers, so they agree up to Monte
    Carlo error. The standard error of a bootstrap quantile is estimated from our own draws by
    the spread of the order statistics k -/+ sqrt(B p (1-p)) (one binomial SD); two independent
    estimates differ by sqrt(2) times that. Every interval end must lie within 4.5 such SDs,
    and the bootstrap SEs within 12% (their relative MC error is about 1/sqrt(2B) = 1.6% each)."""
    assert boot.failed == 0 and boot.converged == 2000
    iv = pd.concat([ml.parameters, boot.intervals(ml)], axis=1)
    ref = pd.DataFrame(REF["bootstrap"]["table"]).rename(columns=lambda c: c.replace(".", "_"))
    ref.loc[ref["op"] == ":=", "rhs"] = iv.loc[iv["op"] == ":=", "rhs"].to_numpy()
    m = ref.merge(iv, on=KEY, suffixes=("_lavaan", ""))
    m = m[m["se_lavaan"] > 0]
    assert len(m) == 34  # 28 free parameters, 3 loadings equal to others by their labels, 3 defined
    keys = bootstrap_module._keys(ml.partable)
    draws = boot.draws.dropna()
    b = len(draws)
    for row in m.itertuples():
        t = np.sort(draws[keys[(row.lhs, row.op, row.rhs)]].to_numpy())
        assert row.boot_se == pytest.approx(row.se_lavaan, rel=0.12)
        for p, ours, theirs in [(0.025, row.boot_pct_lower, row.perc_lower), (0.975, row.boot_pct_upper, row.perc_upper)]:
            k, spread = int(round(b * p)), int(np.ceil(np.sqrt(b * p * (1 - p))))
            mcse = (t[min(k + spread, b - 1)] - t[max(k - spread, 0)]) / 2
            assert abs(ours - theirs) < 4.5 * np.sqrt(2) * mcse, (row.lhs, row.op, row.rhs, p, ours, theirs)


def test_bootstrap_bc_intervals_agree_with_lavaan(ml, boot):
    iv = pd.concat([ml.parameters, boot.intervals(ml)], axis=1)
    iv.loc[iv["op"] == ":=", "rhs"] = ""
    ref = pd.DataFrame(REF["bootstrap"]["table"])
    ref.loc[ref["op"] == ":=", "rhs"] = ""
    m = ref.merge(iv, on=KEY, suffixes=("_lavaan", ""))
    m = m[m["se_lavaan"] > 0]
    # In units of the bootstrap SE: the mean gap is Monte Carlo noise (about .06-.10 here).
    gaps = pd.concat([(m["boot_bc_lower"] - m["bc.lower"]).abs(), (m["boot_bc_upper"] - m["bc.upper"]).abs()]) \
        / pd.concat([m["se_lavaan"], m["se_lavaan"]])
    assert gaps.mean() < 0.15 and gaps.max() < 0.45


def test_bootstrap_is_reproducible_and_independent_of_jobs(ml):
    one = bootstrap_sem(DATA, ml, draws=30, seed=5, jobs=1)
    two = bootstrap_sem(DATA, ml, draws=30, seed=5, jobs=2)
    other = bootstrap_sem(DATA, ml, draws=30, seed=6, jobs=1)
    pd.testing.assert_frame_equal(one.draws, two.draws)
    assert not one.draws.equals(other.draws)


def test_failed_draws_are_counted_not_hidden(ml, monkeypatch):
    original = bootstrap_module._refit

    def fail_odd(task):
        draw, values, ok, admissible = original(task)
        if draw % 2:
            return draw, np.full_like(values, np.nan), False, True
        return draw, values, ok, admissible

    monkeypatch.setattr(bootstrap_module, "_refit", fail_odd)
    b = bootstrap_sem(DATA, ml, draws=40, seed=1, jobs=1)
    assert (b.requested, b.converged, b.failed) == (40, 20, 20)
    assert b.draws.isna().all(axis=1).sum() == 20
    iv = b.intervals(ml)
    assert iv["boot_pct_lower"].notna().all()


def test_bootstrap_bad_input(ml):
    with pytest.raises(ValueError, match="draws"):
        bootstrap_sem(DATA, ml, draws=1)
    with pytest.raises(ValueError, match="jobs"):
        bootstrap_sem(DATA, ml, draws=10, jobs=0)


# --------------------------------------------------------------------------- hypotheses


def test_hypotheses_table_verdicts(ml):
    table = hypotheses_table(ml.parameters, {
        "A": {"statement": "ind60 raises dem60", "expect": {"a1": "positive"}},
        "B": {"statement": "mixed", "expect": {"indirect": "positive", "y1 ~~ y5": "negative"}},
        "C": {"statement": "wrong sign", "expect": {"b1": "negative"}},
    })
    assert table.drop_duplicates("hypothesis").set_index("hypothesis")["verdict"].to_dict() == {
        "A": "supported", "B": "partly supported", "C": "not supported"}
    with pytest.raises(ValueError, match="neither a label"):
        hypotheses_table(ml.parameters, {"X": {"expect": {"nope": "positive"}}})
    with pytest.raises(ValueError, match="positive' or 'negative"):
        hypotheses_table(ml.parameters, {"X": {"expect": {"a1": "up"}}})


# --------------------------------------------------------------------------- the simulated study


# The recovery of the default study's paths (with its control variables) by the unified engine:
# tests/test_default_study.py::test_the_default_model_with_controls_recovers_the_true_effects.


# --------------------------------------------------------------------------- the command


def test_sem_command_writes_its_outputs(tmp_path, capsys):
    model = tmp_path / "model.lavaan"
    model.write_text(REF["model"])
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text("H1: {statement: ind60 raises dem60, expect: {a1: positive}}\n"
                   "H2: {statement: indirect, expect: {indirect: positive}}\n")
    params = tmp_path / "params.yaml"
    params.write_text("seed: 3\nsem:\n  missing: listwise\n  bootstrap: 50\n  competing:\n"
                      "    full_mediation: |\n      dem60 ~ ind60\n      dem65 ~ dem60\n"
                      "      y1 ~~ y5\n      y2 ~~ y4 + y6\n      y3 ~~ y7\n      y4 ~~ y8\n      y6 ~~ y8\n")
    out = tmp_path / "out"
    data = tmp_path / "data.csv"
    DATA.to_csv(data, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["sem", "--data", str(data), "--model", str(model), "--hypotheses", str(hyp), "--params", str(params),
              "--out", str(out), "--jobs", "1"])
    assert exc.value.code in (0, None)
    assert "hypotheses supported: 2 of 2" in capsys.readouterr().out
    metrics = json.loads((out / "sem.json").read_text())
    assert metrics["bootstrap"]["requested"] == 50 and metrics["bootstrap"]["seed"] == 3
    comp = pd.read_csv(out / "sem_competing.csv").set_index("model")
    assert comp.loc["full_mediation", "delta_chisq"] == pytest.approx(REF["competing"]["lrt"]["chisq_diff"], rel=1e-5)
    params_out = pd.read_csv(out / "sem_parameters.csv")
    assert {"boot_pct_lower", "boot_bc_upper"} <= set(params_out.columns)
    assert params_out.loc[params_out["op"] == "~", "boot_pct_lower"].notna().all()


@pytest.mark.parametrize("params", ["sem:\n  interval: boot_pct\n  missing: listwise\n", "sem:\n  missing: listwise\n"])
def test_sem_bootstrap_0_gives_wald_intervals(tmp_path, capsys, params):
    """``--bootstrap 0`` is "Wald intervals only" whatever interval the params file names (issue 11:
    it failed unless the params also set ``interval: ci``); the hypotheses use the Wald interval."""
    model = tmp_path / "model.lavaan"
    model.write_text(REF["model"])
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text("H1: {statement: ind60 raises dem60, expect: {a1: positive}}\n")
    data = tmp_path / "data.csv"
    DATA.to_csv(data, index=False)
    p = tmp_path / "params.yaml"
    p.write_text(params)
    with pytest.raises(SystemExit) as exc:
        main(["sem", "--data", str(data), "--model", str(model), "--params", str(p), "--hypotheses", str(hyp),
              "--bootstrap", "0", "--out", str(tmp_path / "o")])
    assert exc.value.code in (0, None), capsys.readouterr().err
    metrics = json.loads((tmp_path / "o" / "sem.json").read_text())
    assert metrics["interval"] == "ci" and metrics["bootstrap"]["requested"] == 0
    table = pd.read_csv(tmp_path / "o" / "sem_hypotheses.csv")
    assert set(table["interval"]) == {"ci"} and table["supported"].all()
    out = pd.read_csv(tmp_path / "o" / "sem_parameters.csv")
    assert out["boot_pct_lower"].isna().all() and out.loc[out["op"] == "~", "ci_lower"].notna().all()


@pytest.mark.parametrize("params, message", [
    ("sem:\n  bootstrap: 1\n", "sem.bootstrap"),
    ("sem:\n  estimator: GLS\n", "sem.estimator"),
    ("sem:\n  competing: {x: 'dem65 ~~ ~'}\n", "sem.competing.x"),
    ("sem:\n  colour: red\n", "sem.colour: unknown key"),
])
def test_sem_command_bad_input(tmp_path, capsys, params, message):
    model = tmp_path / "model.lavaan"
    model.write_text(REF["model"])
    data = tmp_path / "data.csv"
    DATA.to_csv(data, index=False)
    p = tmp_path / "params.yaml"
    p.write_text(params)
    with pytest.raises(SystemExit) as exc:
        main(["sem", "--data", str(data), "--model", str(model), "--params", str(p), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_fiml_objective_of_the_bootstrap_is_the_casewise_likelihood():
    """The pattern-wise FIML objective (partitioned inverses) equals -log L / N summed case by
    case with direct inversions, and its gradient equals central differences of it."""
    from analysis.bootstrap import _fiml_groups, fiml_value_and_gradient
    from analysis.sem.single import _Model

    d = pd.read_csv(REF_DIR / "hs_missing.csv")
    fit = fit_sem(d, "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9", missing="fiml")
    mdl = _Model(fit.partable)
    x = d[list(fit.partable.observed)].to_numpy(float)
    x = x[~np.isnan(x).all(axis=1)]
    z = np.concatenate([fit.theta, np.nanmean(x, axis=0)]) + np.random.default_rng(0).normal(0, 0.05, mdl.q + 9)

    def casewise(z):
        sig, nu, total = mdl.sigma(z[:mdl.q])[0], z[mdl.q:], 0.0
        for row in x:
            o = ~np.isnan(row)
            dev = row[o] - nu[o]
            total += 0.5 * (np.linalg.slogdet(sig[np.ix_(o, o)])[1] + dev @ np.linalg.solve(sig[np.ix_(o, o)], dev))
        return total / len(x)

    groups = _fiml_groups(x)
    assert len(groups[1]) > 0  # patterns missing two or more answers are present too
    value, grad = fiml_value_and_gradient(mdl, groups, z)
    assert value == pytest.approx(casewise(z), abs=1e-12)
    numeric = np.array([(casewise(z + h) - casewise(z - h)) / 2e-6 for h in np.eye(len(z)) * 1e-6])
    assert np.max(np.abs(numeric - grad)) < 1e-7
