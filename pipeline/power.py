"""Stage ``power``: Monte Carlo power and sample size of the analysis model before the survey.

Reads the instrument and ``params`` (``simulate:`` for the population, ``power:`` for the study,
``clean:`` for the screens, ``seed``), or a lavaan population model (``--population``), runs
:func:`analysis.montecarlo.run_power` on local processes or a Dask cluster (``--scheduler`` /
``compute.scheduler``) and writes:

- ``power.json``: the headline (smallest N on the grid and interpolated N per hypothesis,
  convergence per N, settings, the analytic RMSEA power of MacCallum et al. 1996 beside it);
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

from analysis.errors import InputError
from analysis.montecarlo import (MonteCarloSettings, Population, aggregate, check_grid, instrument_population,
                                 lavaan_population, population_values, run_power)
from analysis.power import rmsea_power, rmsea_sample_size
from pipeline.io import output_dir, read_params, read_seed, section, write_csv, write_json
from pipeline.progress import progress_bar

__all__ = ["run", "OUTPUTS", "DEFAULTS", "settings"]

OUTPUTS = ("power.json", "power_by_n.csv", "power_hypotheses.csv", "power_paths.csv", "power_replications.csv",
           "power_curve.png", "power_curve.svg")
DEFAULTS = {"n": [200, 300, 500, 800], "replications": 100, "alpha": 0.05, "target": 0.80, "estimator": "ML",
            "missing": "listwise", "std_lv": False, "ordered": [], "clean": True, "standardized": False}
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
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_REPLICATIONS:
        raise InputError(f"power.replications: a whole number from 1 to {MAX_REPLICATIONS}, got {r!r}")
    t = s["target"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
        raise InputError(f"power.target: a power between 0 and 1 (e.g. 0.80), got {t!r}")
    for key in ("clean", "standardized"):
        if not isinstance(s[key], bool):
            raise InputError(f"power.{key}: true or false, got {s[key]!r}")
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
    """Run the Monte Carlo power study and write :data:`OUTPUTS` into ``out``; returns the metrics
    of ``power.json``."""
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
    total = len(s["n"]) * s["replications"]
    with progress_bar(total, "power") as tick:
        records = run_power(population, mc, s["n"], s["replications"], seed, jobs=jobs, scheduler=scheduler,
                            progress=tick)
    result = aggregate(records, truth, mc, target=s["target"], metric=metric)

    by_n = result.by_n.copy()
    df = truth.attrs.get("df", 0)
    rmsea = {}
    if df > 0:
        for name, r0, ra in RMSEA_TESTS:
            by_n[f"rmsea_power_{name}"] = rmsea_power(r0, ra, df, np.asarray(s["n"]), alpha=s["alpha"])
            rmsea[name] = {"rmsea0": r0, "rmseaA": ra,
                           "n_required": rmsea_sample_size(r0, ra, df, power=s["target"], alpha=s["alpha"])}

    out = output_dir(out)
    write_csv(by_n, out / "power_by_n.csv")
    write_csv(result.hypotheses, out / "power_hypotheses.csv")
    write_csv(result.paths, out / "power_paths.csv")
    write_csv(result.replications, out / "power_replications.csv")
    _figure(result, s["target"], out, "N" if population_path else "N (respondents invited, before screening)")

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
        "required_n": {row.hypothesis: {"n_grid": row.n_grid, "n_interpolated": row.n_interpolated,
                                        "power_at_largest_n": row.power_at_largest_n, "note": row.note}
                       for row in result.required_n.itertuples(index=False)},
        "convergence": {int(row.n): {"convergence_rate": row.convergence_rate, "admissible_rate": row.admissible_rate,
                                     "failed": int(row.failed), "mean_n_used": row.mean_n_used}
                        for row in result.by_n.itertuples(index=False)},
        "failure_reasons": dict(sorted(failures.items(), key=lambda kv: -kv[1])[:10]),
        "rmsea_power": rmsea,
        "warnings": list(truth.attrs.get("warnings", [])),
    }
    write_json(metrics, out / "power.json")
    return metrics


def _figure(result, target: float, out: Path, xlabel: str = "N") -> None:
    """Power per hypothesis (or per path, without hypotheses) against N, with the target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if len(result.hypotheses):
        for h, part in result.hypotheses.groupby("hypothesis", sort=False):
            ax.plot(part["n"], part["power"], marker="o", label=h)
    else:
        paths = result.paths[result.paths["op"] == "~"]
        for name, part in paths.groupby("name", sort=False):
            ax.plot(part["n"], part["power"], marker="o", label=name)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("power (converged replications)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Monte Carlo power")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(out / "power_curve.png", dpi=120, metadata={"Software": None})
    fig.savefig(out / "power_curve.svg", metadata={"Date": None})
    plt.close(fig)
