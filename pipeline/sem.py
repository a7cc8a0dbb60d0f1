"""Stage ``sem``: the structural model on the CFA half: paths, R², defined (indirect and total)
effects with bootstrap intervals, competing models and the hypotheses table."""
from __future__ import annotations

import math
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.bootstrap import bootstrap_sem
from analysis.sem.api import PARAMETER_COLUMNS, fit_model, refuse_unidentified
from analysis.structural import check_competing, compare_models, competing_model, hypotheses_table, r_squared
from analysis.warnings import GapscaleWarning
from instrument import parse_model
from pipeline.io import (estimation_settings, is_simulated, output_dir, read_data, read_params, read_seed, section,
                         write_csv, write_json)
from instrument.safe_yaml import read_yaml
from pipeline.stage_metrics import read_metrics
from pipeline.progress import progress_bar
from analysis.errors import InputError

__all__ = ["run", "OUTPUTS", "DEFAULTS", "settings"]

MAX_BOOTSTRAP = 100_000  # draws: 2000 is the usual, 10,000 a careful study

OUTPUTS = ("sem_parameters.csv", "sem_r2.csv", "sem_hypotheses.csv", "sem_competing.csv", "sem.json")
DEFAULTS = {"estimator": "ML", "std_lv": False, "ordered": [], "missing": "fiml", "bootstrap": 2000, "ci": 0.95,
            "interval": "boot_pct", "competing": {}, "criterion": "bic"}
INTERVALS = ("ci", "boot_pct", "boot_bc")
BOOT_COLUMNS = ["boot_se", "boot_pct_lower", "boot_pct_upper", "boot_bc_lower", "boot_bc_upper"]


def settings(params: dict, overrides: dict) -> dict:
    """``sem:`` of params.yaml over :data:`DEFAULTS`, then the command-line options."""
    s = section(params, "sem", DEFAULTS, overrides)
    s.update(estimation_settings(s, "sem"))
    b = s["bootstrap"]
    if isinstance(b, bool) or not isinstance(b, int) or (b != 0 and b < 2) or b > MAX_BOOTSTRAP:
        raise InputError(f"sem.bootstrap (--bootstrap): a whole number of draws (0 for none, otherwise 2 to "
                         f"{MAX_BOOTSTRAP}), got {b!r}")
    if isinstance(s["ci"], bool) or not isinstance(s["ci"], (int, float)) or not 0 < s["ci"] < 1:
        raise InputError(f"sem.ci: a level between 0 and 1, got {s['ci']!r}")
    if s["interval"] not in INTERVALS:
        raise InputError(f"sem.interval: one of {', '.join(INTERVALS)}, got {s['interval']!r}")
    if b == 0:  # no draws: "Wald intervals only" (--bootstrap 0), whatever interval the params name
        s["interval"] = "ci"
    s["competing"] = check_competing(s["competing"])  # per name: a structural part, {measurement, structural}, {model}
    if s["criterion"] not in ("aic", "bic"):
        raise InputError(f"sem.criterion: aic or bic, got {s['criterion']!r}")
    if s["estimation"].ordinal and s["bootstrap"] != 0:
        raise InputError(f"sem.bootstrap: {s['estimator']} fits are not bootstrapped; use sem.bootstrap: 0 "
                         "(--bootstrap 0; the intervals are then the robust Wald ones)")
    return s


def read_hypotheses(path) -> dict:
    """The hypotheses YAML (see instrument/sustainability_gap.hypotheses.yaml)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f"{path}: expected a mapping of hypothesis ids to {{statement, expect}}")
    return data


def _fit(data, text, s, name, start=None):
    """Fit one model; ``start`` (the hypothesised fit, for a competing model) gives the optimiser
    its estimates of the parameters both models have, and its moments when the observed variables
    are the same; a competing model is compared by its chi-square, CFI, TLI, RMSEA, SRMR, AIC and
    BIC (:func:`analysis.structural.compare_models`), so ML with FIML's robust indices (the larger
    part of such a fit's cost) and its standard errors (ML: with FIML, 2q gradients for the observed
    information) are left out of it."""
    try:
        parse_model(text)
        common = dict(estimator=s["estimator"], std_lv=s["std_lv"], missing=s["missing"])
        if s["estimation"].ordinal:  # the unified engine's identification check (issue 11); ML, MLR and MLM
            refuse_unidentified(text, data, **common)  # fits run the same check inside the engine's fit
        warm = {} if start is None else dict(start=start.parameters, sample=start.sample, robust_indices=False,
                                              se=False)
        return fit_model(text, data, ordered=s["estimation"].ordered_columns(text, data),
                         **common, **warm)
    except InputError as exc:  # a syntax error or a model the data cannot fit: name the model
        raise InputError(f"{name}: {exc}") from None


def _invariance_rows(spec_id, spec, invariance_json) -> list[dict]:
    """H7 from the invariance stage's metrics: measurement invariance, then the path comparison."""
    base = {"hypothesis": spec_id, "statement": spec.get("statement", ""), "est": math.nan, "std_all": math.nan,
            "ci_lower": math.nan, "ci_upper": math.nan, "interval": "", "pvalue": math.nan}
    if invariance_json is None:
        return [{**base, "parameter": "invariance", "path": "not tested (no invariance results given)",
                 "expected": "", "supported": False, "verdict": "not tested"}]
    inv = read_metrics(invariance_json)
    level = inv.get("level", "none")
    rows = [{**base, "parameter": "measurement invariance", "path": f"level reached: {level}",
             "expected": "scalar or strict", "supported": level in ("scalar", "strict")}]
    s = inv.get("structural") or {}
    if s.get("compared"):
        rows.append({**base, "parameter": "structural paths across groups", "path": s.get("answer", ""),
                     "expected": "may differ", "pvalue": s.get("delta_pvalue", math.nan),
                     "supported": bool(s.get("paths_differ", False))})
    verdict = "supported" if all(r["supported"] for r in rows) else (
        "partly supported" if any(r["supported"] for r in rows) else "not supported")
    return [{**r, "verdict": verdict} for r in rows]


def run(data_path, model_path, out, params_path=None, hypotheses_path=None, invariance_json=None, overrides=None,
        seed=None, jobs=None, scheduler=None) -> dict:
    """Fit the structural model, bootstrap it, compare the competing models, test the hypotheses.

    The bootstrap draws run on local processes (``jobs``) or on the Dask scheduler at
    ``scheduler`` (else params ``compute.scheduler``); the draws are the same either way."""
    params = read_params(params_path)
    scheduler = scheduler or (params.get("compute") or {}).get("scheduler")
    s = settings(params, overrides or {})
    seed = read_seed(params, seed)
    try:
        text = Path(model_path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{model_path}: cannot be read as UTF-8 text ({exc})") from None
    hypotheses = read_hypotheses(hypotheses_path) if hypotheses_path else {}
    data = read_data(data_path)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        fit = _fit(data, text, s, model_path)
        competing = {"hypothesised": fit}
        for name, structural in s["competing"].items():
            competing_text = competing_model(text, structural, f"sem.competing.{name}")
            competing[name] = _fit(data, competing_text, s, f"sem.competing.{name}", start=fit)
    caught = [f"{w.category.__name__}: {w.message}" for w in records if issubclass(w.category, GapscaleWarning)]
    flags = list(dict.fromkeys(list(fit.warnings) + caught))
    for name, f in competing.items():
        if not f.converged:
            flags.append(f"competing model {name} did not converge")

    parameters = fit.parameters.copy()
    boot_summary = {"requested": 0, "converged": 0, "failed": 0, "inadmissible": 0}
    if s["bootstrap"]:
        root = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(b"sem"),))
        with progress_bar(s["bootstrap"], "bootstrap") as tick:
            boot = bootstrap_sem(data, fit, s["bootstrap"], root, jobs=jobs, missing=s["missing"], progress=tick,
                                 scheduler=scheduler)
        parameters = pd.concat([parameters, boot.intervals(fit, s["ci"])], axis=1)
        boot_summary = boot.summary()
        boot_summary["seed"] = seed
        if boot.failed:
            flags.append(f"{boot.failed} of {boot.requested} bootstrap draws did not converge; the intervals use "
                         f"the {boot.converged} that did")
    else:
        for c in BOOT_COLUMNS:
            parameters[c] = np.nan

    rows = []
    for hid, spec in hypotheses.items():
        if spec.get("source") == "invariance":
            rows.extend(_invariance_rows(hid, spec, invariance_json))
        else:
            rows.extend(hypotheses_table(parameters, {hid: spec}, s["interval"]).to_dict("records"))
    hyp = pd.DataFrame(rows, columns=["hypothesis", "statement", "parameter", "path", "expected", "est", "std_all",
                                      "ci_lower", "ci_upper", "interval", "pvalue", "supported", "verdict"])
    comparison = compare_models(competing, "hypothesised", s["criterion"])
    r2 = r_squared(fit)

    out = output_dir(out)
    write_csv(parameters[PARAMETER_COLUMNS + ["std_all_se"] + BOOT_COLUMNS], out / "sem_parameters.csv")
    write_csv(r2, out / "sem_r2.csv")
    write_csv(hyp, out / "sem_hypotheses.csv")
    write_csv(comparison, out / "sem_competing.csv")
    latent_r2 = r2[r2["variable"].isin(set(fit.parameters.loc[fit.parameters["op"] == "=~", "lhs"]))]
    verdicts = hyp.drop_duplicates("hypothesis").set_index("hypothesis")["verdict"].to_dict() if len(hyp) else {}
    metrics = {
        "simulated": is_simulated(data), "source": Path(data_path).name, "model": Path(model_path).name,
        "estimator": s["estimator"], "std_lv": s["std_lv"], "ordered": s["ordered"], "missing": s["missing"],
        "n_rows": len(data), "converged": fit.converged,
        "fit": fit.fit, "bootstrap": boot_summary, "interval": s["interval"], "ci": s["ci"],
        "r2": {r.variable: float(r.r2) for r in latent_r2.itertuples()},
        "hypotheses": verdicts,
        "hypotheses_supported": sum(v == "supported" for v in verdicts.values()),
        "preferred_model": comparison.loc[comparison["preferred"], "model"].iat[0] if comparison["preferred"].any() else None,
        "warnings": flags, "admissible": not [f for f in flags if "bootstrap" not in f] and fit.converged,
    }
    write_json(metrics, out / "sem.json")
    return metrics

