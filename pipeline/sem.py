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
from analysis.hypotheses import check_hypotheses, distinct_chisq, htmt_part, verdict
from analysis.structural import (HYPOTHESIS_COLUMNS, check_competing, compare_models, competing_model,
                                 hypotheses_table, r_squared)
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


# The hypotheses table: lavaan-like columns of one part per row, then what the parts other than a
# parameter's sign need: ``part`` (sign, htmt, chisq, group_difference, invariance, paths_differ),
# ``statistic`` and ``df`` of its test (Δχ², z) and ``note`` (why a part was not tested).
# ``supported`` is empty for a part not tested.
TABLE_COLUMNS = HYPOTHESIS_COLUMNS[:1] + ["part"] + HYPOTHESIS_COLUMNS[1:11] + ["statistic", "df"] \
    + HYPOTHESIS_COLUMNS[11:] + ["note"]


def read_hypotheses(path) -> dict:
    """The hypotheses YAML (the format: :mod:`analysis.hypotheses`; an example:
    instrument/sustainability_gap.hypotheses.yaml), checked by
    :func:`analysis.hypotheses.check_hypotheses` (one-line errors naming the file and key)."""
    return check_hypotheses(read_yaml(path), str(path))


def read_htmt(path) -> pd.DataFrame | None:
    """The reliability stage's htmt.csv, or None without one."""
    if path is None:
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as the reliability stage's htmt.csv ({exc})") from None


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


def _row(hid, spec, part, **values) -> dict:
    base = {c: math.nan for c in TABLE_COLUMNS}
    base.update(hypothesis=hid, statement=spec.get("statement", ""), part=part, interval="", note="", supported=None,
                parameter="", path="", expected="")
    base.update(values)
    return base


def _invariance_rows(spec_id, spec, invariance_json) -> list[dict]:
    """H7 from the invariance stage's metrics: measurement invariance, then the path comparison:
    the directional group differences of ``groups`` (one row per path, tested by the invariance
    stage: ``contrasts`` of invariance.json) or, without them, the omnibus test that the paths
    differ. Parts are not tested (``supported`` None) without the stage's results."""
    inv = read_metrics(invariance_json) if invariance_json is not None else None
    rows = []
    if spec.get("source") == "invariance":
        if inv is None:
            rows.append(_row(spec_id, spec, "invariance", parameter="measurement invariance",
                             expected="scalar or strict", note="no invariance results given"))
        else:
            level = inv.get("level", "none")
            rows.append(_row(spec_id, spec, "invariance", parameter="measurement invariance",
                             path=f"level reached: {level}", expected="scalar or strict",
                             supported=level in ("scalar", "strict")))
            s = inv.get("structural") or {}
            if s.get("compared") and not spec.get("groups"):
                rows.append(_row(spec_id, spec, "paths_differ", parameter="structural paths across groups",
                                 path=s.get("answer", ""), expected="may differ", statistic=_num(s.get("delta_chisq")),
                                 df=_num(s.get("delta_df")), pvalue=_num(s.get("delta_pvalue")),
                                 supported=bool(s.get("paths_differ", False))))
    groups = spec.get("groups")
    if groups:
        tested = {(c.get("hypothesis"), str(c.get("parameter"))): c for c in ((inv or {}).get("contrasts") or [])}
        for ref, d in groups["expect"].items():
            direction = "larger_in" if "larger_in" in d else "smaller_in"
            expected = (f"{'larger' if direction == 'larger_in' else 'smaller'} in {', '.join(d[direction])} than "
                        f"in {', '.join(d['than'])}")
            c = tested.get((spec_id, str(ref)))
            if c is None:
                note = ("no invariance results given" if inv is None else
                        "not tested by the invariance stage (run it with --hypotheses)")
                rows.append(_row(spec_id, spec, "group_difference", parameter=str(ref), expected=expected, note=note))
                continue
            supported = c.get("supported")
            rows.append(_row(spec_id, spec, "group_difference", parameter=str(ref),
                             path=f"{c.get('lhs')} ~ {c.get('rhs')}" if c.get("lhs") else "", expected=expected,
                             est=_num(c.get("est")), ci_lower=_num(c.get("ci_lower")),
                             ci_upper=_num(c.get("ci_upper")), interval="ci", statistic=_num(c.get("z")),
                             pvalue=_num(c.get("pvalue_holm")),
                             supported=None if supported is None else bool(supported), note=c.get("note") or ""))
    return rows


def _num(value) -> float:
    """A number of invariance.json (null for NaN) as a float."""
    return math.nan if value is None else float(value)


def _distinct_rows(hid, spec, data, text, htmt, s, where="hypotheses") -> list[dict]:
    """The ``distinct`` parts of a hypothesis: the HTMT interval (from the reliability stage) and
    the chi-square test of the two constructs' correlation fixed at +-``correlation_below``
    (:func:`analysis.hypotheses.distinct_chisq`, at alpha = 1 - ``sem.ci``)."""
    d = spec["distinct"]
    a, b = d["constructs"]
    rows = []
    if d.get("htmt_below") is not None:
        h = htmt_part(htmt, (a, b), d["htmt_below"])
        rows.append(_row(hid, spec, "htmt", parameter=f"HTMT {a}, {b}", path=f"{a}, {b}",
                         expected=f"interval below {d['htmt_below']:g}", est=h["htmt"], ci_lower=h["ci_lower"],
                         ci_upper=h["ci_upper"], interval="boot_pct" if h["supported"] is not None else "",
                         supported=h["supported"], note=h["note"]))
    cut = d.get("correlation_below")
    if cut is not None:
        alpha = 1 - s["ci"]
        what = "one factor" if cut == 1 else f"|correlation| = {cut:g}"
        row = _row(hid, spec, "chisq", parameter=f"{a}, {b} not {what}", path=f"CFA of {a} and {b}",
                   expected=f"{what} fits worse")
        try:
            with warnings.catch_warnings(record=True) as records:
                warnings.simplefilter("always", GapscaleWarning)
                ordered = s["estimation"].ordered_columns(text, data)
                t = distinct_chisq(data, text, (a, b), cut, estimator=s["estimator"], missing=s["missing"],
                                   ordered=ordered)
        except InputError as exc:
            raise InputError(f"{where}: {hid}.distinct: {exc}") from None
        notes = [f"{w.category.__name__}: {w.message}" for w in records if issubclass(w.category, GapscaleWarning)]
        if not t["converged"]:
            row.update(note="the CFA of the two constructs did not converge")
        else:
            row.update(est=t["correlation"], statistic=t["delta_chisq"], df=t["delta_df"], pvalue=t["delta_pvalue"],
                       supported=bool(t["delta_pvalue"] < alpha and t["delta_chisq"] > 0),
                       note="; ".join(notes))
        rows.append(row)
    return rows


def run(data_path, model_path, out, params_path=None, hypotheses_path=None, invariance_json=None, overrides=None,
        seed=None, jobs=None, scheduler=None, htmt_path=None) -> dict:
    """Fit the structural model, bootstrap it, compare the competing models, test the hypotheses.

    The bootstrap draws run on local processes (``jobs``) or on the Dask scheduler at
    ``scheduler`` (else params ``compute.scheduler``); the draws are the same either way.
    ``invariance_json`` (the invariance stage's metrics) answers ``source: invariance`` and
    ``groups`` parts, ``htmt_path`` (the reliability stage's htmt.csv) the ``htmt_below`` part of
    ``distinct``; without them those parts are reported as not tested."""
    params = read_params(params_path)
    scheduler = scheduler or (params.get("compute") or {}).get("scheduler")
    s = settings(params, overrides or {})
    seed = read_seed(params, seed)
    try:
        text = Path(model_path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{model_path}: cannot be read as UTF-8 text ({exc})") from None
    hypotheses = read_hypotheses(hypotheses_path) if hypotheses_path else {}
    factors = set(parse_model(text).latents) if any(h.get("distinct") for h in hypotheses.values()) else set()
    for hid, spec in hypotheses.items():  # before any fit: a construct that is not a factor of the model
        absent = [c for c in (spec.get("distinct") or {}).get("constructs", []) if c not in factors]
        if absent:
            raise InputError(f"{hypotheses_path}: {hid}.distinct.constructs: {absent[0]!r} is not a factor (=~) of "
                             f"{Path(model_path).name}")
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
    htmt = read_htmt(htmt_path) if any((h.get("distinct") or {}).get("htmt_below") is not None
                                       for h in hypotheses.values()) else None
    for hid, spec in hypotheses.items():
        parts = []
        if spec.get("distinct"):
            parts.extend(_distinct_rows(hid, spec, data, text, htmt, s, hypotheses_path))
        if spec.get("expect"):
            parts.extend({**_row(hid, spec, "sign"), **r}
                         for r in hypotheses_table(parameters, {hid: spec}, s["interval"]).to_dict("records"))
        if spec.get("source") == "invariance" or spec.get("groups"):
            parts.extend(_invariance_rows(hid, spec, invariance_json))
        answer = verdict([r["supported"] for r in parts])
        rows.extend({**r, "verdict": answer} for r in parts)
    hyp = pd.DataFrame(rows, columns=TABLE_COLUMNS)
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

