"""Stage ``efa``: suitability, number of factors, extraction and rotation, item diagnostics."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import efa as fa
from analysis.errors import InputError
from analysis.split import stage_rng
from analysis.warnings import GapscaleWarning
from instrument import load_instrument, read_model
from pipeline.io import is_simulated, output_dir, read_data, read_params, read_seed, section, write_csv, write_json
from pipeline.progress import progress_bar

__all__ = ["run", "OUTPUTS", "DEFAULTS"]

OUTPUTS = ("efa_loadings.csv", "efa_factor_correlations.csv", "efa_variance.csv", "efa_diagnostics.csv",
           "efa_scree.csv", "efa_map.csv", "efa.json")
DEFAULTS = {
    "correlation": "pearson", "n_factors": "auto", "extraction": "minres", "rotation": "oblimin",
    "parallel_iterations": 20, "parallel_percentile": 95, "parallel_smc": False, "min_loading": 0.5,
    "max_cross_loading": 0.3, "min_communality": 0.4, "drop_items": [],
}
CORRELATIONS = ("pearson", "polychoric")
MAX_PARALLEL_ITERATIONS = 10_000


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def settings(params: dict, overrides: dict) -> dict:
    """The ``efa`` section of params.yaml over the defaults, then command-line overrides.

    Raises InputError naming the key, its value and what is allowed."""
    s = section(params, "efa", DEFAULTS, overrides)
    if s["correlation"] not in CORRELATIONS:
        raise InputError(f"efa.correlation: use one of {', '.join(CORRELATIONS)}, got {s['correlation']!r}")
    if s["extraction"] not in fa.EXTRACTION:
        raise InputError(f"efa.extraction: use one of {', '.join(fa.EXTRACTION)}, got {s['extraction']!r}")
    n = s["n_factors"]
    if isinstance(n, str) and n.strip().isdigit():
        s["n_factors"] = n = int(n)
    if n != "auto" and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"efa.n_factors (--n-factors): 'auto' (parallel analysis) or a whole number >= 1, got {n!r}")
    it = s["parallel_iterations"]
    if isinstance(it, bool) or not isinstance(it, int) or not 1 <= it <= MAX_PARALLEL_ITERATIONS:
        raise InputError(f"efa.parallel_iterations: a whole number from 1 to {MAX_PARALLEL_ITERATIONS:,} "
                         f"(psych's default n.iter is 20), got {it!r}")
    q = s["parallel_percentile"]
    if not _is_number(q) or not 0 < q <= 100:
        raise InputError(f"efa.parallel_percentile: a number in (0, 100], the percentile of the random eigenvalues "
                         f"a factor must exceed (psych's quant = .95 is 95), got {q!r}")
    if not isinstance(s["parallel_smc"], bool):
        raise InputError(f"efa.parallel_smc: true (squared multiple correlations) or false (psych's default, "
                         f"one-factor minres communalities), got {s['parallel_smc']!r}")
    for key in ("min_loading", "max_cross_loading", "min_communality"):
        if not _is_number(s[key]) or not 0 <= s[key] <= 1:
            raise InputError(f"efa.{key}: a number from 0 to 1, got {s[key]!r}")
    if not isinstance(s["drop_items"], list) or not all(isinstance(i, str) for i in s["drop_items"]):
        raise InputError(f"efa.drop_items: expected a list of item ids, got {s['drop_items']!r}")
    return s


def check_n_factors(n_factors, n_items: int) -> None:
    """A fixed number of factors the items identify, or an InputError naming the key."""
    most = fa.max_factors(n_items)
    if most == 0:
        raise InputError(f"efa: {n_items} item(s) after efa.drop_items; an EFA needs at least 3 items")
    if n_factors != "auto" and n_factors > most:
        raise InputError(f"efa.n_factors (--n-factors) = {n_factors}: at most {most} factors can be extracted from "
                         f"{n_items} items (more are not identified: negative degrees of freedom, or not fewer "
                         f"factors than items); use a number from 1 to {most} or 'auto'")


def constructs_from(instrument_path, model_path) -> dict[str, str]:
    """item -> intended construct, from the instrument or from a lavaan model's ``=~`` lines."""
    if instrument_path is not None:
        inst = load_instrument(instrument_path)
        return {i.id: i.construct for i in inst.items}
    model = read_model(model_path)
    latents = set(model.latents)
    return {ind: lat for lat, inds in model.indicators.items() for ind in inds if ind not in latents}


def correlate_with(kind: str, progress=None):
    if kind == "pearson":
        return lambda d: d.astype(float).corr().to_numpy()
    from analysis.polychoric import polychoric

    return lambda d: polychoric(d, progress=progress).correlation.to_numpy()


def resampled_correlate(kind: str):
    """The correlation of parallel analysis' resampled data sets: with polychoric correlations,
    the one-step polychoric from 0 (:func:`analysis.polychoric.polychoric_one_step`: the
    resampled items are independent by construction); None (the same as the observed) else."""
    if kind != "polychoric":
        return None
    from analysis.polychoric import polychoric_one_step

    return lambda d: polychoric_one_step(d)


def check_items(data: pd.DataFrame, items: list[str], source: str) -> pd.DataFrame:
    """The item columns as numbers, or a ValueError that names the problem."""
    missing = [i for i in items if i not in data.columns]
    if missing:
        raise InputError(f"{source}: item column(s) not in the data: {', '.join(missing[:10])}")
    x = data[items].apply(pd.to_numeric, errors="coerce")
    bad = [i for i in items if x[i].isna().sum() > data[i].isna().sum()]
    if bad:
        raise InputError(f"{source}: non-numeric values in {', '.join(bad[:10])}; run the clean stage first")
    infinite = [i for i in items if np.isinf(x[i]).any()]
    if infinite:
        row = int(np.flatnonzero(np.isinf(x[infinite[0]].to_numpy()))[0]) + 1
        raise InputError(f"{source}: column {infinite[0]!r} holds an infinite value (data row {row}); set it missing "
                         "or correct it (the clean stage does)")
    constant = [i for i in items if x[i].nunique() < 2]
    if constant:
        raise InputError(f"{source}: item(s) without variance: {', '.join(constant)}; drop them (efa.drop_items)")
    n = len(x)
    if n <= len(items):
        raise InputError(f"{source}: {n} respondents for {len(items)} items; an EFA needs more respondents than items "
                         "(several times more for stable loadings)")
    return x


def singular_hint(r: pd.DataFrame) -> str:
    a = np.abs(r.to_numpy() - np.eye(len(r)))
    i, j = np.unravel_index(np.argmax(a), a.shape)
    if a[i, j] > 0.999:
        return f"items {r.index[i]} and {r.index[j]} correlate {r.iat[i, j]:.4f}: drop one (efa.drop_items)"
    return "an item is a linear combination of others; drop it (efa.drop_items)"


def run(data_path, out, instrument_path=None, model_path=None, params_path=None, overrides=None, seed=None) -> dict:
    """Run the EFA on ``data_path`` and write the outputs into ``out``; return the metrics."""
    params = read_params(params_path)
    s = settings(params, overrides or {})
    seed = read_seed(params, seed)
    construct_of = constructs_from(instrument_path, model_path)
    unknown = [i for i in s["drop_items"] if i not in construct_of]
    if unknown:
        raise InputError(f"efa.drop_items: {', '.join(unknown)} not among the items")
    items = [i for i in construct_of if i not in set(s["drop_items"])]
    emptied = sorted(set(construct_of.values()) - {construct_of[i] for i in items})
    if emptied:
        raise InputError(f"efa.drop_items: drops every item of construct {', '.join(map(str, emptied))}; keep at least "
                         "one item of each construct (or leave the construct out of the instrument)")
    check_n_factors(s["n_factors"], len(items))
    data = read_data(data_path)
    x = check_items(data, items, str(data_path))

    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", GapscaleWarning)
        correlate = correlate_with(s["correlation"])
        if s["correlation"] == "polychoric":
            with progress_bar(total=len(items) * (len(items) - 1) // 2, desc="polychoric correlations") as tick:
                r = pd.DataFrame(correlate_with(s["correlation"], tick)(x), index=items, columns=items)
        else:
            r = pd.DataFrame(correlate(x), index=items, columns=items)
        if r.isna().to_numpy().any():  # pairs never observed together, or constant where both are observed
            i, j = np.argwhere(r.isna().to_numpy())[0]
            raise InputError(f"{data_path}: the correlation of items {items[i]!r} and {items[j]!r} cannot be computed "
                             "(never answered together, or no variance where both are answered); check the export "
                             "(e.g. answers exported as choice text that the clean stage could not read)")
        if np.linalg.eigvalsh(r.to_numpy()).min() <= 1e-10:
            raise InputError(f"{data_path}: the correlation matrix is singular: {singular_hint(r)}")
        msa, msai = fa.kmo(r)
        bartlett = fa.bartlett_sphericity(r, len(x))
        with progress_bar(total=s["parallel_iterations"], desc="parallel analysis") as tick:
            pa_table = fa.parallel_analysis(x, correlate, stage_rng(seed, "efa"), n_iter=s["parallel_iterations"],
                                            percentile=s["parallel_percentile"], progress=tick,
                                            smc=s["parallel_smc"], resampled_correlate=resampled_correlate(s["correlation"]))
        map_table = fa.velicer_map(r, max_factors=min(len(items) - 1, 40))
        criteria = {
            "parallel_fa": fa.parallel_suggestion(pa_table, "fa"),
            "parallel_pc": fa.parallel_suggestion(pa_table, "pc"),
            "map": int(map_table.loc[map_table["m"] >= 1].sort_values("map").iloc[0]["m"]),
            "kaiser": fa.kaiser_rule(r),
        }
        n_factors = criteria["parallel_fa"] if s["n_factors"] == "auto" else s["n_factors"]
        n_factors = min(max(n_factors, 1), fa.max_factors(len(items)))
        result = fa.efa(r, n_factors, s["extraction"], s["rotation"], n_obs=len(x))
    caught = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in records
                                if issubclass(w.category, GapscaleWarning)))  # the observed matrix is made twice

    diagnostics = fa.item_diagnostics(result, construct_of, s["min_loading"], s["max_cross_loading"],
                                      s["min_communality"])
    agreement, matched = fa.structure_agreement(diagnostics)
    n_constructs = len(set(construct_of[i] for i in items))
    metrics = {
        "simulated": is_simulated(data),
        "source": Path(data_path).name, "n": len(x), "items": len(items), "dropped_items": s["drop_items"],
        "correlation": s["correlation"], "extraction": s["extraction"], "rotation": s["rotation"],
        "kmo": msa, "kmo_min_item": float(msai.min()), "kmo_min_item_id": str(msai.idxmin()),
        "bartlett": bartlett,
        "n_factors": {"used": n_factors,
                      "rule": f"parallel analysis (fa, {'SMC' if s['parallel_smc'] else 'minres'} communalities)"
                      if s["n_factors"] == "auto" else "params",
                      "constructs": n_constructs, **criteria},
        "fit": result.fit, "converged": result.converged,
        "structure_agreement": agreement, "flagged_items": int(diagnostics["flagged"].sum()),
        "warnings": caught,
    }
    notes = []
    if s["n_factors"] == "auto" and criteria["parallel_fa"] > n_factors:
        notes.append(f"parallel analysis suggests {criteria['parallel_fa']} factors, more than {len(items)} items "
                     f"identify; {n_factors} used")
    if n_factors != n_constructs:
        notes.append(f"{n_factors} factors used; the instrument defines {n_constructs} constructs")
    if notes:
        metrics["n_factors"]["note"] = "; ".join(notes)

    out = output_dir(out)
    result.to_files(out, write=write_csv)
    write_csv(diagnostics, out / "efa_diagnostics.csv")
    write_csv(pa_table, out / "efa_scree.csv")
    write_csv(map_table, out / "efa_map.csv")
    write_json(metrics, out / "efa.json")
    return metrics
