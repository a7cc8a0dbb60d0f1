"""The structural model against lavaan 0.6-14 (tests/reference/sem.R: Bollen's Political
Democracy model with residual covariances, equal-loading labels and labelled indirect effects),
the bootstrap, competing models, hypotheses, and recovery of the simulated study's paths; the
stage on a MIMIC model (tests/reference/engine.R) and a WLSMV SEM with a := effect
(tests/reference/engine_wls.R). Everything through the unified engine (analysis.sem.api)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis.bootstrap as bootstrap_module
from analysis.bootstrap import Resampler, bootstrap_sem, norm_inter
from analysis.sem.api import fit_model
from analysis.structural import chisq_difference, compare_models, hypotheses_table, r_squared, replace_structural
from pipeline.cli import main

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "sem.json").read_text())
DATA = pd.read_csv(REF_DIR / "political_democracy.csv")
KEY = ["lhs", "op", "rhs"]


def fit_sem(data, model, **kwargs):
    """The engine's fit with the pipeline's columns (``std_all_se`` included), as the stage fits."""
    return fit_model(model, data, **kwargs)


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


@pytest.mark.slow
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
    draws = boot.draws.dropna()
    b = len(draws)
    for row in m.itertuples():
        t = np.sort(draws[boot.column(ml, row.lhs, row.op, row.rhs)].to_numpy())
        assert row.boot_se == pytest.approx(row.se_lavaan, rel=0.12)
        for p, ours, theirs in [(0.025, row.boot_pct_lower, row.perc_lower), (0.975, row.boot_pct_upper, row.perc_upper)]:
            k, spread = int(round(b * p)), int(np.ceil(np.sqrt(b * p * (1 - p))))
            mcse = (t[min(k + spread, b - 1)] - t[max(k - spread, 0)]) / 2
            assert abs(ours - theirs) < 4.5 * np.sqrt(2) * mcse, (row.lhs, row.op, row.rhs, p, ours, theirs)


@pytest.mark.slow
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
    with pytest.raises(ValueError, match="fiml"):  # the fit was listwise: no mean structure to refit by FIML
        bootstrap_sem(DATA, ml, draws=10, missing="fiml")
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


def test_hypotheses_with_a_smallest_effect_of_interest_and_the_share_mediated(ml):
    """min_effect: supported only when |std_all| reaches it as well (ind60 -> dem60: beta = .45);
    share_of: indirect / total, lavaan's own `ratio := a1*b1 / (c1 + a1*b1)` of the same model."""
    p = ml.parameters
    beta = float(p.loc[p["label"] == "a1", "std_all"].iloc[0])
    assert 0.40 < beta < 0.50
    table = hypotheses_table(p, {
        "big": {"expect": {"a1": "positive"}, "min_effect": 0.5},
        "enough": {"expect": {"a1": "positive"}, "min_effect": 0.3},
        "mediated": {"expect": {"indirect": "positive"}, "share_of": {"indirect": "total"}},
    }).set_index("hypothesis")
    assert table.at["big", "verdict"] == "not supported" and table.at["enough", "verdict"] == "supported"
    assert table.at["big", "min_effect"] == 0.5 and np.isnan(table.at["mediated", "min_effect"])
    ratio = float(p.loc[p["label"] == "ratio", "est"].iloc[0])
    assert table.at["mediated", "share"] == pytest.approx(ratio, rel=1e-12)
    assert 0 < ratio < 1
    with pytest.raises(ValueError, match="min_effect"):
        hypotheses_table(p, {"X": {"expect": {"a1": "positive"}, "min_effect": 2}})


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


HS_MODEL = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


@pytest.mark.parametrize("missing", ["listwise", "fiml"])
def test_a_bootstrap_refit_of_the_full_sample_is_the_engine_fit(missing):
    """The refit a draw runs (the engine's estimator on the rows given, BFGS from a start), given
    the full sample and started away from the solution, returns the engine's estimates: ML on
    complete cases, and FIML on Holzinger-Swineford with scattered missing answers (its
    patterns rebuilt by the bootstrap from the rows)."""
    d = pd.read_csv(REF_DIR / "hs_missing.csv")
    fit = fit_sem(d, HS_MODEL, missing=missing)
    r = Resampler(fit, d, missing=missing)
    assert sum(len(v) for v in r.values) == fit.fit["ntotal"]
    r.x = fit.x * (1 + 0.1 * np.sin(np.arange(len(fit.x))))  # a start away from the solution
    values, ok, admissible = r.refit(r.values)
    assert ok and admissible
    assert np.max(np.abs(values - fit.x)) < 1e-4
    boot = bootstrap_sem(d, fit, draws=20, seed=3, jobs=1, missing=missing)
    assert boot.converged == 20 and boot.draws.notna().all().all()
    iv = boot.intervals(fit)
    free = fit.parameters["se"] > 0
    assert (iv.loc[free, "boot_pct_lower"] < fit.parameters.loc[free, "est"]).all()
    assert (iv.loc[free, "boot_pct_upper"] > fit.parameters.loc[free, "est"]).all()


# --------------------------------------------------------------------------- the stage on other models

STAGE_REF = json.loads((REF_DIR / "sem_stage.json").read_text())
ENGINE_REF = json.loads((REF_DIR / "engine.json").read_text())["cases"]
WLS_REF = json.loads((REF_DIR / "engine_wls.json").read_text())


def run_stage(tmp_path, data: pd.DataFrame, model: str, *options, params: str = "sem:\n  bootstrap: 0\n"):
    (tmp_path / "model.lavaan").write_text(model)
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "params.yaml").write_text(params)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["sem", "--data", str(tmp_path / "data.csv"), "--model", str(tmp_path / "model.lavaan"), "--params",
              str(tmp_path / "params.yaml"), "--out", str(out), "--jobs", "1", *options])
    return exc.value.code, out


def lavaan_rows(parameters) -> pd.DataFrame:
    t = pd.DataFrame(parameters).rename(columns=lambda c: c.replace(".", "_"))
    t.loc[t["op"] == ":=", "rhs"] = ""
    return t


def stage_rows(out) -> pd.DataFrame:
    t = pd.read_csv(out / "sem_parameters.csv", keep_default_na=False, na_values=[""])
    t["op"] = t["op"].str.lstrip("'")  # the CSV writer neutralises cells starting a formula ('=~)
    t["rhs"] = t["rhs"].fillna("")  # intercepts (~1) have no rhs
    t.loc[t["op"] == ":=", "rhs"] = ""
    return t


@pytest.mark.parametrize("std_lv", [False, True])
def test_stage_fits_a_mimic_model_as_lavaan(tmp_path, capsys, std_lv):
    """Latents regressed on observed covariates (sex, ageyr; fixed.x) and an indicator on a
    covariate, through ``gapscale sem`` (listwise, Wald intervals): estimates, SEs and std.all as
    lavaan's sem() (to 1e-5; std.lv = TRUE too), chi-square, df, AIC and BIC, and the R² of every
    indicator and endogenous latent as lavInspect(fit, "r2") (x1's with its covariate) to 1e-6."""
    d = pd.read_csv(REF_DIR / "hs_engine.csv")
    case = ENGINE_REF["mimic"]
    code, out = run_stage(tmp_path, d, case["model"], "--missing", "listwise", *(["--std-lv"] if std_lv else []))
    assert code in (0, None), capsys.readouterr().err
    ref = lavaan_rows(STAGE_REF["mimic_stdlv"]["parameters"] if std_lv else case["parameters"])
    m = ref.merge(stage_rows(out), on=KEY, suffixes=("_lavaan", ""))
    assert len(m) == len(ref) == len(pd.read_csv(out / "sem_parameters.csv"))
    assert ("x1", "~", "ageyr") in set(zip(m["lhs"], m["op"], m["rhs"]))
    for col in ("est", "se", "std_all"):
        assert np.max(np.abs(m[col] - m[f"{col}_lavaan"])) < 1e-5, col
    metrics = json.loads((out / "sem.json").read_text())
    assert metrics["std_lv"] is std_lv
    for name, value in STAGE_REF["mimic"]["fit"].items():
        assert metrics["fit"][name] == pytest.approx(value, rel=1e-6), name
    r2 = pd.read_csv(out / "sem_r2.csv").set_index("variable")["r2"]
    assert list(r2.index) == list(STAGE_REF["mimic"]["r2"])
    assert np.max(np.abs(r2.to_numpy() - np.array(list(STAGE_REF["mimic"]["r2"].values())))) < 1e-6


def test_stage_fits_a_wlsmv_sem_with_a_defined_effect_as_lavaan(tmp_path, capsys):
    """Ordinal items (bfi, 6 categories), WLSMV, consc ~ a*agree, extra ~ b*consc, ind := a*b
    through ``gapscale sem --estimator WLSMV --ordered all``: estimates, robust SEs and std.all
    (the := row included) as lavaan's, the scaled chi-square, R² as lavInspect(fit, "r2"), and
    the competing CFA (the three latents correlated) against it by lavTestLRT's scaled-and-shifted
    difference (lavaan: the CFA is the less restricted model, one df fewer)."""
    ref = WLS_REF["sem_wlsmv"]
    items = STAGE_REF["wlsmv"]["ordered"]
    d = pd.read_csv(REF_DIR / "bfi_1000.csv")[items]
    params = ("sem:\n  bootstrap: 0\n  missing: listwise\n  competing:\n"
              "    cfa: |\n      agree ~~ consc\n      agree ~~ extra\n      consc ~~ extra\n")
    code, out = run_stage(tmp_path, d, ref["model"], "--estimator", "WLSMV", "--ordered", "all", params=params)
    assert code in (0, None), capsys.readouterr().err
    lav = lavaan_rows(ref["pe"])
    lav["std_all"] = lav["std_all"].astype(float)
    m = lav.merge(stage_rows(out), on=KEY, suffixes=("_lavaan", ""))
    assert len(m) == len(lav) and ":=" in set(m["op"])
    for col, tol in (("est", 1e-5), ("se", 1e-5), ("std_all", 1e-5)):
        assert np.nanmax(np.abs(m[col].astype(float) - m[f"{col}_lavaan"].astype(float))) < tol, col
    ind = m[m["op"] == ":="].iloc[0]
    assert ind["est"] == pytest.approx(ind["est_lavaan"], abs=1e-6) and ind["se"] == pytest.approx(ind["se_lavaan"],
                                                                                                   abs=1e-6)
    metrics = json.loads((out / "sem.json").read_text())
    assert metrics["estimator"] == "WLSMV" and metrics["ordered"] == "all"
    for name in ("chisq", "df", "chisq.scaled", "cfi.scaled", "rmsea.scaled"):
        assert metrics["fit"][name.replace(".", "_")] == pytest.approx(ref["fit"][name], rel=1e-5), name
    r2 = pd.read_csv(out / "sem_r2.csv").set_index("variable")["r2"]
    assert list(r2.index) == list(STAGE_REF["wlsmv"]["r2"])
    assert np.max(np.abs(r2.to_numpy() - np.array(list(STAGE_REF["wlsmv"]["r2"].values())))) < 1e-5
    lrt = next(t for t in WLS_REF["lrt"] if t["less"] == "cfa_wlsmv" and t["more"] == "sem_wlsmv")
    comp = pd.read_csv(out / "sem_competing.csv").set_index("model")
    assert comp.loc["cfa", "delta_df"] == lrt["df_diff"]
    assert comp.loc["cfa", "delta_chisq"] == pytest.approx(lrt["chisq_diff"], abs=1e-4)
    assert np.isnan(comp.loc["cfa", "bic"])  # no likelihood: no AIC/BIC with WLSMV (as lavaan)


def test_mlm_parameters_and_scaled_difference_match_lavaan():
    """MLM (Satorra-Bentler): estimates and robust SEs, the scaled test, and the SB2001 scaled
    difference of the full-mediation model against the hypothesised one (lavTestLRT)."""
    ref = STAGE_REF["mlm"]
    mlm = fit_sem(DATA, REF["model"], estimator="MLM")
    full = fit_sem(DATA, REF["model_full"], estimator="MLM")
    m = lavaan_rows(ref["parameters"]).merge(mlm.parameters.assign(rhs=lambda t: t["rhs"].where(t["op"] != ":=", "")),
                                             on=KEY, suffixes=("_lavaan", ""))
    assert len(m) == len(ref["parameters"])
    assert np.max(np.abs(m["est"] - m["est_lavaan"])) < 1e-3 and np.max(np.abs(m["se"] - m["se_lavaan"])) < 1e-3
    for fitted, values in ((mlm, ref["fit"]), (full, ref["full_fit"])):
        for name, value in values.items():
            assert fitted.fit[name.replace(".", "_")] == pytest.approx(value, rel=1e-4), name
    test = chisq_difference(full, mlm)
    assert test["scaled"] and test["delta_df"] == ref["lrt"]["df_diff"]
    assert test["delta_chisq"] == pytest.approx(ref["lrt"]["chisq_diff"], abs=1e-3)
    with pytest.raises(ValueError, match="same estimator"):
        chisq_difference(full, fit_sem(DATA, REF["model"]))


@pytest.mark.parametrize("options, params, message", [
    (["--estimator", "WLSMV"], "sem:\n  missing: listwise\n", "sem.bootstrap: WLSMV fits are not bootstrapped"),
    (["--estimator", "WLSMV", "--ordered", "all"], "", "sem.missing: 'fiml' is not available with estimator WLSMV"),
    (["--ordered", "y1,y2"], "sem:\n  bootstrap: 0\n", "need estimator WLSMV or ULSMV"),
    (["--estimator", "MLM"], "sem:\n  bootstrap: 0\n", "sem.missing: 'fiml' is not available with estimator MLM"),
    (["--estimator", "GLS"], "", "sem.estimator: 'GLS' is not available"),
    (["--estimator", "ULSMV", "--ordered", "y1,nope"], "sem:\n  bootstrap: 0\n  missing: listwise\n",
     "ordered: column(s) nope not found in the data"),
    ([], "sem:\n  std_lv: 1\n", "sem.std_lv"),
])
def test_sem_impossible_combinations_are_one_line_input_errors(tmp_path, capsys, options, params, message):
    code, _ = run_stage(tmp_path, DATA, REF["model"], *options, params=params)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.slow
def test_bootstrap_percentile_intervals_cover_the_truth():
    """Coverage of the bootstrap's 95% percentile and bias-corrected intervals of a mediation
    model (X -> M -> Y latents, 3 indicators each, the indirect effect a*b := defined), simulated
    from known values: 120 data sets of N = 200, 300 draws each. A correct interval covers the
    truth in 95% of data sets (binomial SD 2%); an interval half as wide covers about 68%, one
    centred on a biased estimate far less. Accepted: 88% to 99.5% for the regressions and the
    indirect effect."""
    model = ("X =~ x1 + x2 + x3\nM =~ m1 + m2 + m3\nY =~ y1 + y2 + y3\nM ~ a*X\nY ~ b*M + c*X\nab := a*b\n")
    lam = np.array([1.0, 0.8, 0.7])
    a, b, c = 0.5, 0.4, 0.1
    truth = {"a": a, "b": b, "c": c, "ab": a * b}
    rng = np.random.default_rng(20261202)
    hits = {k: [] for k in truth}
    hits_bc = {k: [] for k in truth}
    for rep in range(120):
        n = 200
        x = rng.normal(size=n)
        mm = a * x + rng.normal(scale=np.sqrt(0.75), size=n)
        y = b * mm + c * x + rng.normal(scale=np.sqrt(0.8), size=n)
        cols = {}
        for name, f in (("x", x), ("m", mm), ("y", y)):
            for k in range(3):
                cols[f"{name}{k + 1}"] = lam[k] * f + rng.normal(scale=0.6, size=n)
        d = pd.DataFrame(cols)
        fit = fit_sem(d, model)
        boot = bootstrap_sem(d, fit, draws=300, seed=rep, jobs=1)
        iv = pd.concat([fit.parameters, boot.intervals(fit)], axis=1)
        for label, value in truth.items():
            row = iv[(iv["label"] == label) | ((iv["op"] == ":=") & (iv["lhs"] == label))].iloc[0]
            hits[label].append(row["boot_pct_lower"] <= value <= row["boot_pct_upper"])
            hits_bc[label].append(row["boot_bc_lower"] <= value <= row["boot_bc_upper"])
    for label in truth:
        for kind, h in (("percentile", hits), ("bias-corrected", hits_bc)):
            coverage = np.mean(h[label])
            assert 0.88 <= coverage <= 0.995, (label, kind, coverage)


def test_nesting_is_tested_before_a_chi_square_difference():
    """The NET of Bentler & Satorra (2010): a structural model (regressions among the factors)
    is nested in the CFA (free covariances) though no parameter is shared; a one-factor model is
    nested in the three-factor CFA; an equivalent model (a just-identified second-order factor,
    the same df) and a model with other observed variables are not. The competing-models table
    gives the chi-square difference only for the nested ones."""
    from analysis.sem import fit_model
    from analysis.structural import nested

    hs = pd.read_csv(Path(__file__).parent / "reference" / "hs_full.csv")
    cfa = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9\n"
    fits = {"cfa": fit_model(cfa, hs), "sem": fit_model(cfa + "textual ~ visual\nspeed ~ textual\n", hs),
            "one": fit_model("f =~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9\n", hs),
            "second": fit_model("g =~ visual + textual + speed\n" + cfa, hs),
            "fewer": fit_model("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\n", hs)}
    assert nested(fits["sem"], fits["cfa"]) and nested(fits["one"], fits["cfa"])
    assert not nested(fits["cfa"], fits["sem"])  # the general model is not nested in the restricted one
    assert not nested(fits["second"], fits["cfa"]) and not nested(fits["fewer"], fits["cfa"])
    table = compare_models(fits, "cfa").set_index("model")
    assert table["nested"].to_dict() == {"cfa": False, "sem": True, "one": True, "second": False, "fewer": False}
    assert table.loc["sem", "delta_chisq"] == pytest.approx(fits["sem"].fit["chisq"] - fits["cfa"].fit["chisq"])
    assert table.loc[["second", "fewer"], "delta_chisq"].isna().all()
