"""Stage ``power``: power and sample size of the analysis model before the survey.

Reads the instrument and ``params`` (``simulate:`` for the population, ``power:`` for the study,
``clean:`` for the screens, ``seed``), or a lavaan population model (``--population``). Two
answers, one checking the other:

- the **analytic power** (:func:`analysis.montecarlo.analytic_power`, ``power.analytic``): power
  per parameter and per hypothesis from the asymptotic distribution of the estimates, the
  information taken from one large simulated study (``power.analytic_rows`` invited), on a fine
  grid of N up to ``power.analytic_n_max``; the N for ``power.target`` per hypothesis. A few CPU
  seconds: the default study's stage;
- the **Monte Carlo power** (:func:`analysis.montecarlo.run_power`, ``power.replications`` at each
  N of ``power.n``, on local processes or a Dask cluster: ``--scheduler`` /
  ``compute.scheduler``): the check of the analytic power at those N (``replications: 0``: none).
  The full run, ``n: [250, 500, 1000, 2000, 4000]`` with ``replications: 1000``, is the
  documented one (about 2 CPU-s per FIML replication).

Writes:

- ``power.json``: the headline (N per hypothesis, analytic and on the Monte Carlo grid, the check
  of one against the other, convergence per N, settings, the RMSEA power of MacCallum et al. 1996
  beside it); ``other_hypotheses``: those the invariance stage decides (``source: invariance``,
  H7): their measurement part by fit-index criteria (no power; the N its smallest group needs)
  and their directional group contrasts by one-sided z tests, with their analytic power
  (``contrast_power``: the N for the target jointly, Holm-adjusted, and per contrast;
  :func:`analysis.montecarlo.group_contrast_power`);
- ``power_analytic.csv``: one row per (N of the fine grid, hypothesis): the analytic power;
- ``power_analytic_paths.csv``: one row per parameter: standardised population value, SE per
  respondent, N for the target power of its Wald test;
- ``power_check.csv``: one row per (Monte Carlo N, hypothesis): Monte Carlo power, its standard
  error, the analytic power at that N;
- ``power_by_n.csv``: one row per N (power per hypothesis, convergence, admissibility, chi-square
  rejection, CFI/RMSEA quantiles, RMSEA power of close, not-close and exact fit);
- ``power_hypotheses.csv``: one row per (N, hypothesis);
- ``power_paths.csv``: one row per (N, parameter): power, bias, SE bias, coverage;
- ``power_replications.csv``: one row per replication (lavaan-style parameter names);
- ``power_curve.png`` / ``power_curve.svg``: power per hypothesis against N.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.montecarlo import (CHECK_COLUMNS, MonteCarloSettings, Population, aggregate, analytic_grid,
                                 analytic_power, check_grid, check_summary, compare_power, group_contrast_power,
                                 instrument_population, lavaan_population, population_values, run_power)
from analysis.power import group_sample_size, rmsea_power, rmsea_sample_size
from pipeline.io import output_dir, read_params, read_seed, section, write_csv, write_json
from pipeline.progress import progress_bar

__all__ = ["run", "OUTPUTS", "DEFAULTS", "settings", "other_hypotheses"]

OUTPUTS = ("power.json", "power_by_n.csv", "power_hypotheses.csv", "power_paths.csv", "power_replications.csv",
           "power_curve.png", "power_curve.svg")
ANALYTIC_ESTIMATORS = ("ML", "MLR", "MLM")  # analysis.montecarlo.analytic_power uses the ML information
ANALYTIC_OUTPUTS = ("power_analytic.csv", "power_analytic_paths.csv", "power_check.csv")
DEFAULTS = {"n": [200, 300, 500, 800], "replications": 100, "alpha": 0.05, "target": 0.80, "estimator": "ML",
            "missing": "listwise", "std_lv": False, "ordered": [], "clean": True, "standardized": False,
            "analytic": True, "analytic_rows": 4000, "analytic_draws": 4000, "analytic_n_max": 20000, "figure": True}
MAX_REPLICATIONS = 100_000
MAX_N = 100_000
# The RMSEA tests of MacCallum, Browne & Sugawara (1996): (name, RMSEA under H0, under the alternative)
RMSEA_TESTS = (("close", 0.05, 0.08), ("not_close", 0.05, 0.01), ("exact", 0.0, 0.05))


def settings(params: dict, overrides: dict) -> dict:
    """``power:`` of the params over :data:`DEFAULTS`, then the command-line options; checked."""
    s = section(params, "power", DEFAULTS, overrides)
    try:
        s["n"] = check_grid(s["n"])
    except InputError as exc:
        raise InputError(f"power.{exc}") from None
    if max(s["n"]) > MAX_N:
        raise InputError(f"power.n: at most {MAX_N} respondents, got {max(s['n'])}")
    r = s["replications"]
    if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= MAX_REPLICATIONS:
        raise InputError(f"power.replications: a whole number from 0 (no Monte Carlo) to {MAX_REPLICATIONS}, "
                         f"got {r!r}")
    t = s["target"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
        raise InputError(f"power.target: a power between 0 and 1 (e.g. 0.80), got {t!r}")
    for key in ("clean", "standardized", "analytic", "figure"):
        if not isinstance(s[key], bool):
            raise InputError(f"power.{key}: true or false, got {s[key]!r}")
    for key, low in (("analytic_rows", 100), ("analytic_draws", 100), ("analytic_n_max", 100)):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 10 * MAX_N:
            raise InputError(f"power.{key}: a whole number from {low} to {10 * MAX_N}, got {v!r}")
    if r == 0 and not s["analytic"]:
        raise InputError("power: replications is 0 and analytic false: nothing to compute")
    return s


def _read_text(path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: the {what} cannot be read as UTF-8 text ({exc})") from None


def _population(instrument, params: dict, s: dict, population_path) -> tuple[Population, str]:
    if population_path is not None:
        text = _read_text(population_path, "population model")
        try:
            return Population("lavaan", lavaan_population(text, standardized=s["standardized"])), "est"
        except InputError as exc:
            raise InputError(f"{population_path}: {exc}") from None
    if instrument is None:
        raise InputError("give --instrument (its population is params simulate:) or --population POP.lavaan")
    from analysis.clean import parse_clean_params
    from analysis.simulate import parse_simulation_params

    screens = parse_clean_params(params.get("clean"))[0] if s["clean"] else None
    # Likert items: recovery is judged on the standardised solution (analysis.montecarlo docstring)
    return instrument_population(instrument, parse_simulation_params(params.get("simulate")), screens), "std_all"


def run(instrument_path, params_path, out, model_path=None, hypotheses_path=None, population_path=None,
        scheduler=None, jobs=None, overrides=None) -> dict:
    """Compute the analytic power and run the Monte Carlo power study (each as ``power:`` asks) and
    write their outputs (:data:`ANALYTIC_OUTPUTS`, :data:`OUTPUTS`) into ``out``; returns the
    metrics of ``power.json``."""
    from pipeline.sem import read_hypotheses

    params = read_params(params_path)
    s = settings(params, overrides or {})
    seed = read_seed(params)
    scheduler = scheduler or (params.get("compute") or {}).get("scheduler")
    if instrument_path is None and population_path is None:
        raise InputError("give --instrument (its population is params simulate:) or --population POP.lavaan")
    instrument = None
    if instrument_path is not None:
        from instrument import load_instrument

        instrument = load_instrument(instrument_path)
    if model_path is not None:
        model = _read_text(model_path, "analysis model")
    elif instrument is not None:
        model = instrument.measurement_model()
    else:
        raise InputError("give --model (the analysis model) with --population")
    hypotheses = read_hypotheses(hypotheses_path) if hypotheses_path else {}
    try:
        mc = MonteCarloSettings(model=model, hypotheses=hypotheses, estimator=s["estimator"], missing=s["missing"],
                                std_lv=s["std_lv"], ordered=tuple(s["ordered"] or ()), alpha=s["alpha"])
    except InputError as exc:
        raise InputError(f"power.{exc}") from None
    population, metric = _population(instrument, params, s, population_path)
    truth = population_values(population, mc)
    analytic, notes = None, []
    if s["analytic"] and mc.estimator not in ANALYTIC_ESTIMATORS:
        notes.append(f"no analytic power with {mc.estimator} (it needs the ML information: ML, MLR or MLM); "
                     "the Monte Carlo power alone")
        if not s["replications"]:
            raise InputError(f"power.estimator {mc.estimator}: no analytic power (ML, MLR or MLM only) and "
                             "replications is 0: give replications")
    elif s["analytic"]:
        grid = sorted(set(analytic_grid(min(50, s["n"][0]), max(s["analytic_n_max"], s["n"][-1]), 1.05))
                      | set(s["n"]))
        analytic = analytic_power(population, mc, grid, seed, rows=s["analytic_rows"], draws=s["analytic_draws"],
                                  target=s["target"], truth=truth)
    records, result = [], None
    if s["replications"]:
        total = len(s["n"]) * s["replications"]
        with progress_bar(total, "power") as tick:
            records = run_power(population, mc, s["n"], s["replications"], seed, jobs=jobs, scheduler=scheduler,
                                progress=tick)
        result = aggregate(records, truth, mc, target=s["target"], metric=metric)

    contrast = None
    if analytic is not None and population_path is None and (population.simulation.groups or {}).get("values"):
        def contrast(parts, shares, min_group_size, alpha):  # H7's group contrasts (analysis.montecarlo)
            return group_contrast_power(instrument, population.simulation, mc, parts, analytic, truth, shares, grid,
                                        seed, alpha=alpha, min_group_size=min_group_size, draws=s["analytic_draws"],
                                        target=s["target"])

    df = truth.attrs.get("df", 0)
    rmsea = {}
    if df > 0:
        for name, r0, ra in RMSEA_TESTS:
            rmsea[name] = {"rmsea0": r0, "rmseaA": ra,
                           "n_required": rmsea_sample_size(r0, ra, df, power=s["target"], alpha=s["alpha"])}

    out = output_dir(out)
    if result is not None:
        by_n = result.by_n.copy()
        if df > 0:
            for name, r0, ra in RMSEA_TESTS:
                by_n[f"rmsea_power_{name}"] = rmsea_power(r0, ra, df, np.asarray(s["n"]), alpha=s["alpha"])
        write_csv(by_n, out / "power_by_n.csv")
        write_csv(result.hypotheses, out / "power_hypotheses.csv")
        write_csv(result.paths, out / "power_paths.csv")
        write_csv(result.replications, out / "power_replications.csv")
    check = None
    if analytic is not None:
        write_csv(analytic.hypotheses, out / "power_analytic.csv")
        write_csv(analytic.paths, out / "power_analytic_paths.csv")
        check = compare_power(analytic, result) if result is not None else None
        write_csv(check if check is not None else pd.DataFrame(columns=CHECK_COLUMNS), out / "power_check.csv")
    if s["figure"]:
        _figure(result, analytic, s["target"], out,
                "N" if population_path else "N (respondents invited, before screening)")

    failures = {}
    for r in records:
        if r["status"] == "failed":
            failures[r["reason"]] = failures.get(r["reason"], 0) + 1
    metrics = {
        "population": Path(population_path).name if population_path else "instrument (params simulate:)",
        "model": Path(model_path).name if model_path else "the instrument's measurement model",
        "simulated": True, "seed": seed, "n": s["n"], "replications": s["replications"], "alpha": s["alpha"],
        "target": s["target"], "estimator": mc.estimator, "missing": mc.missing,
        "clean": s["clean"] if population_path is None else None,
        "recovery_metric": metric, "model_df": df, "population_chisq": truth.attrs.get("chisq"),
        "required_n": {} if result is None else {
            row.hypothesis: {"n_grid": row.n_grid, "n_interpolated": row.n_interpolated,
                             "power_at_largest_n": row.power_at_largest_n, "note": row.note}
            for row in result.required_n.itertuples(index=False)},
        "convergence": {} if result is None else {
            int(row.n): {"convergence_rate": row.convergence_rate, "admissible_rate": row.admissible_rate,
                         "failed": int(row.failed), "mean_n_used": row.mean_n_used}
            for row in result.by_n.itertuples(index=False)},
        "failure_reasons": dict(sorted(failures.items(), key=lambda kv: -kv[1])[:10]),
        "analytic": None if analytic is None else {
            "required_n": {row.hypothesis: {"n_required": row.n_required, "n_grid": row.n_grid,
                                            "power_at_largest_n": row.power_at_largest_n, "note": row.note}
                           for row in analytic.required_n.itertuples(index=False)},
            **analytic.basis},
        "check": None if check is None else check_summary(check),
        "other_hypotheses": other_hypotheses(hypotheses, params, analytic, population_path, contrast),
        "rmsea_power": rmsea,
        "warnings": list(truth.attrs.get("warnings", [])) + notes,
    }
    write_json(metrics, out / "power.json")
    return metrics


def other_hypotheses(hypotheses: dict, params: dict, analytic, population_path, contrast=None) -> dict:
    """The hypotheses the power study of the single-group model does not test (``source:
    invariance``), each with what applies instead. Their measurement part is decided by the
    invariance stage's fit-index criteria (no significance test: no power); what it needs is the
    invited N that gives its smallest group ``invariance.min_group_size`` rows in the CFA half.
    Their directional group contrasts (``groups: expect:``), listed under ``contrasts``, are
    significance tests (one-sided z tests of the difference of group means of a path,
    Holm-adjusted within the hypothesis: :func:`analysis.invariance.group_contrasts`); with
    ``contrast`` (a function of the contrasts and the groups' shares of N giving
    :func:`analysis.montecarlo.group_contrast_power`) their analytic power, ``contrast_power``."""
    out = {}
    for h, spec in hypotheses.items():
        if not isinstance(spec, dict) or spec.get("source") != "invariance":
            continue
        entry = {"source": "invariance", "statement": spec.get("statement", ""),
                 "measurement": "fit-index criteria of the invariance stage: not a significance test, no power"}
        g = spec.get("groups") or {}
        if g.get("expect"):
            entry["contrasts"] = [
                {"parameter": str(ref), "direction": "larger_in" if "larger_in" in d else "smaller_in",
                 "groups": list(d.get("larger_in", d.get("smaller_in")) or []), "than": list(d.get("than") or []),
                 "column": g.get("column"), "test": "one-sided z, Holm-adjusted within the hypothesis"}
                for ref, d in g["expect"].items()]
        inv = params.get("invariance") or {}
        group, size = inv.get("group"), inv.get("min_group_size", 100)
        shares = ((params.get("simulate") or {}).get("context") or {}).get(group)
        if population_path is None and isinstance(shares, dict) and shares and analytic is not None:
            smallest = min(shares, key=shares.get)
            analysed = 1 - float((params.get("split") or {}).get("share", 0.5))
            kept = analytic.basis["rows_kept"] / analytic.basis["rows_invited"]
            entry.update(group=group, smallest_group=smallest, smallest_share=float(shares[smallest]),
                         min_group_size=int(size), kept_share=kept, analysed_share=analysed,
                         n_invited=group_sample_size(int(size), float(shares[smallest]), kept, analysed))
            if entry.get("contrasts") and contrast is not None and g.get("column") == group:
                entry["contrast_power"] = contrast(entry["contrasts"],
                                                   {k: float(v) * analysed for k, v in shares.items()}, int(size),
                                                   float(inv.get("alpha", 0.05)))
        out[h] = entry
    return out


def _figure(result, analytic, target: float, out: Path, xlabel: str = "N") -> None:
    """Power per hypothesis against N: the analytic curves (lines) and the Monte Carlo powers
    (points with two standard errors), with the target line; without hypotheses, per path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = {}
    if analytic is not None and len(analytic.hypotheses):
        for h, part in analytic.hypotheses.groupby("hypothesis", sort=False):
            (line,) = ax.plot(part["n"], part["power"], label=h)
            colours[h] = line.get_color()
        ax.set_xscale("log")
    if result is not None and len(result.hypotheses):
        for h, part in result.hypotheses.groupby("hypothesis", sort=False):
            ax.errorbar(part["n"], part["power"], yerr=2 * part["mcse"], fmt="o", color=colours.get(h), capsize=2,
                        label=None if h in colours else h)
    elif result is not None:
        paths = result.paths[result.paths["op"] == "~"]
        for name, part in paths.groupby("name", sort=False):
            ax.plot(part["n"], part["power"], marker="o", label=name)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("power")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Power: analytic (lines), Monte Carlo (points, ±2 SE)" if analytic is not None
                 else "Monte Carlo power")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(out / "power_curve.png", dpi=120, metadata={"Software": None})
    fig.savefig(out / "power_curve.svg", metadata={"Date": None})
    plt.close(fig)
