"""Reading a stage's metrics JSON back (the report; sem's ``--invariance``), and the shapes checked;
each stage's headline figures (``<stage>_metrics.json``, what ``dvc metrics show`` shows).

A stage writes its metrics (``clean.json``, ``efa.json``, ...) and later stages read them back; a
file edited by hand, truncated or from another program can hold a mapping where a number belongs.
:func:`read_metrics` refuses such a file at once, naming the file, the key and the value, instead
of letting a formatter fail deep inside the report ("float() argument must be ... not 'dict'").

Shapes: ``"number"`` (a JSON number, true/false or null), ``"text"`` (any scalar), ``"boolean"``
(true/false or null), ``"any"``; a dict of key -> shape (keys absent from the file are allowed, as
the report reports them as missing; keys the report does not know are not checked);
``["list", shape]`` (a list whose elements have the shape); ``["map", shape]`` (a mapping from
names the data decide, such as groups or constructs, to values of the shape). The shapes were
taken from the default study's outputs.
"""
from __future__ import annotations

import json
from pathlib import Path

from analysis.errors import InputError

__all__ = ["HEADLINE_FILE", "MAX_METRICS_BYTES", "SHAPES", "check_metrics", "headline", "headline_fit", "read_metrics",
           "write_headline"]

MAX_METRICS_BYTES = 20_000_000  # a stage's metrics JSON is a few kB

_SCREEN_VS_TRUTH = {'truth': 'text', 'flagged': 'number', 'true_positives': 'number', 'precision': 'number',
                    'recall': 'number'}

# the fit measures of cfa.json and sem.json (lavaan's fitMeasures names) the report reads
_MODEL_FIT = {'npar': 'number', 'chisq': 'number', 'df': 'number', 'pvalue': 'number',
              'baseline_chisq': 'number', 'baseline_df': 'number', 'cfi': 'number', 'tli': 'number',
              'rmsea': 'number', 'rmsea_ci_lower': 'number', 'rmsea_ci_upper': 'number',
              'rmsea_pvalue': 'number', 'srmr': 'number', 'logl': 'number', 'unrestricted_logl': 'number',
              'aic': 'number', 'bic': 'number', 'ntotal': 'number'}

SHAPES = {'clean.json': {'simulated': 'boolean',
                'source': 'text',
                'format': 'text',
                'qualtrics': 'boolean',
                'rows_in': 'number',
                'kept': 'number',
                'excluded': 'number',
                'excluded_by_screen': ['map', 'number'],
                'cell_problems': 'number',
                'missing_rate': 'number',
                'little_mcar': {'statistic': 'number',
                                'df': 'number',
                                'pvalue': 'number',
                                'n_patterns': 'number',
                                'n': 'number'},
                'screens': {'attention_checks': 'boolean',
                            'speeder_fraction': 'number',
                            'longstring_share': 'number',
                            'irv_min': 'number',
                            'mahalanobis_alpha': 'number',
                            'duplicates': 'boolean',
                            'max_missing_share': 'number'},
                'notes': ['list', 'text'],
                'warnings': ['list', 'any'],
                'screens_vs_truth': {**{screen: _SCREEN_VS_TRUTH for screen in (
                    'attention', 'speeder', 'longstring', 'irv', 'mahalanobis', 'duplicate', 'missing')},
                 'clean_excluded_share': 'number'}},
 'split.json': {'simulated': 'boolean',
                'source': 'text',
                'seed': 'number',
                'share': 'number',
                'stratify': 'text',
                'n': 'number',
                'n_efa': 'number',
                'n_cfa': 'number',
                'strata': ['list', {'stratum': 'text', 'n': 'number', 'n_efa': 'number', 'n_cfa': 'number'}]},
 'efa.json': {'simulated': 'boolean',
              'source': 'text',
              'n': 'number',
              'items': 'number',
              'dropped_items': ['list', 'any'],
              'correlation': 'text',
              'extraction': 'text',
              'rotation': 'text',
              'kmo': 'number',
              'kmo_min_item': 'number',
              'kmo_min_item_id': 'text',
              'bartlett': {'chisq': 'number', 'df': 'number', 'pvalue': 'number'},
              'n_factors': {'used': 'number',
                            'rule': 'text',
                            'constructs': 'number',
                            'parallel_fa': 'number',
                            'parallel_pc': 'number',
                            'map': 'number',
                            'kaiser': 'number'},
              'fit': {'objective': 'number',
                      'df': 'number',
                      'rms': 'number',
                      'chisq': 'number',
                      'pvalue': 'number',
                      'tli': 'number',
                      'null_chisq': 'number',
                      'null_df': 'number',
                      'rmsea': 'number',
                      'rmsea_ci_lower': 'number',
                      'rmsea_ci_upper': 'number',
                      'bic': 'number'},
              'converged': 'boolean',
              'structure_agreement': 'number',
              'flagged_items': 'number',
              'warnings': ['list', 'any']},
 'cfa.json': {'simulated': 'boolean',
              'source': 'text',
              'estimator': 'text',
              'missing': 'text',
              'n_rows': 'number',
              'converged': 'boolean',
              'iterations': 'number',
              'fit': _MODEL_FIT,
              'min_std_loading': 'number',
              'dropped_items': ['list', 'any'],
              'inadmissible': ['list', 'any'],
              'admissible': 'boolean'},
 'reliability.json': {'simulated': 'boolean',
                      'source': 'text',
                      'missing': 'text',
                      'n': 'number',
                      'min_alpha': 'number',
                      'min_alpha_construct': 'text',
                      'min_omega': 'number',
                      'lowest_ave': 'number',
                      'lowest_ave_construct': 'text',
                      'highest_htmt': 'number',
                      'highest_htmt_pair': 'text',
                      'fornell_larcker_violations': ['list', 'any'],
                      'harman_first_factor_share': 'number',
                      'harman_exceeds_half': 'boolean',
                      'cmv': {'missing': 'text',
                              'method_factor': {'variants': ['list', {'variant': 'text', 'identified': 'boolean',
                                                                      'admissible': 'boolean', 'reasons': 'text',
                                                                      'chisq': 'number', 'df': 'number',
                                                                      'delta_chisq': 'number', 'delta_df': 'number',
                                                                      'delta_pvalue': 'number',
                                                                      'method_variance_share': 'number'}],
                                                'recommended': 'text'},
                              'marker': {'construct': 'text', 'items': ['list', 'text'], 'method_detected': 'boolean',
                                         'equal_method_effects': 'boolean', 'retained': 'text',
                                         'correlations_biased': 'boolean', 'method_variance_share': 'number',
                                         'alpha': 'number', 'r_marker': 'number', 'lw_pairs': 'number',
                                         'lw_n': 'number', 'lw_significant_unadjusted': 'number',
                                         'lw_significant_adjusted': 'number', 'lw_mean_abs_change': 'number'},
                              'marker_note': 'text',
                              'adjusted_paths': {'n_paths': 'number', 'max_abs_difference': 'number',
                                                 'mean_abs_difference': 'number', 'converged': 'boolean'},
                              'warnings': ['list', 'text']},
                      'flags': ['list', 'text'],
                      'warnings': ['list', 'text']},
 'invariance.json': {'simulated': 'boolean',
                     'source': 'text',
                     'structural_model': 'text',
                     'n_rows': 'number',
                     'group': 'text',
                     'missing': 'text',
                     'estimator': 'text',
                     'reference_group': 'text',
                     'groups_used': ['list', 'text'],
                     'n_groups_used': 'number',
                     'n_used': ['map', 'number'],
                     'groups_left_out': ['list', 'any'],
                     'level': 'text',
                     'partial': ['list', 'any'],
                     'partial_invariance': 'boolean',
                     'criterion': 'text',
                     'cutoffs': {'delta_cfi': 'number',
                                 'delta_rmsea': 'number',
                                 'alpha': 'number',
                                 'configural_cfi': 'number',
                                 'configural_rmsea': 'number'},
                     'steps': {'configural': {'holds': 'boolean', 'passes': 'boolean', 'reason': 'text'},
                               'metric': {'holds': 'boolean', 'passes': 'boolean', 'reason': 'text'},
                               'scalar': {'holds': 'boolean', 'passes': 'boolean', 'reason': 'text'},
                               'strict': {'holds': 'boolean', 'passes': 'boolean', 'reason': 'text'}},
                     'latent_means_compared': 'boolean',
                     'converged': 'boolean',
                     'warnings': ['list', 'any'],
                     'structural': {'compared': 'boolean',
                                    'groups': ['list', 'text'],
                                    'measurement': 'text',
                                    'delta_chisq': 'number',
                                    'delta_df': 'number',
                                    'delta_pvalue': 'number',
                                    'delta_cfi': 'number',
                                    'delta_rmsea': 'number',
                                    'paths_differ': 'boolean',
                                    'n_paths': 'number',
                                    'n_paths_differ': 'number',
                                    'paths_differing': ['list', 'any'],
                                    'converged': 'boolean',
                                    'answer': 'text'},
                     'structural_fit': ['list',
                                        {'model': 'text',
                                         'chisq': 'number',
                                         'df': 'number',
                                         'pvalue': 'number',
                                         'cfi': 'number',
                                         'tli': 'number',
                                         'rmsea': 'number',
                                         'rmsea_ci_lower': 'number',
                                         'rmsea_ci_upper': 'number',
                                         'srmr': 'number',
                                         'aic': 'number',
                                         'bic': 'number',
                                         'delta_chisq': 'any',
                                         'delta_df': 'any',
                                         'delta_pvalue': 'any',
                                         'delta_cfi': 'any',
                                         'delta_rmsea': 'any',
                                         'delta_srmr': 'any',
                                         'holds': 'boolean'}],
                     'dropped_items': ['list', 'any']},
 'sem.json': {'simulated': 'boolean',
              'source': 'text',
              'model': 'text',
              'estimator': 'text',
              'missing': 'text',
              'n_rows': 'number',
              'converged': 'boolean',
              'fit': _MODEL_FIT,
              'bootstrap': {'requested': 'number',
                            'converged': 'number',
                            'failed': 'number',
                            'inadmissible': 'number',
                            'seed': 'number'},
              'interval': 'text',
              'ci': 'number',
              'r2': ['map', 'number'],
              'hypotheses': ['map', 'text'],
              'hypotheses_supported': 'number',
              'preferred_model': 'text',
              'warnings': ['list', 'text'],
              'admissible': 'boolean'}}


def check_metrics(data, name: str, path) -> None:
    """Raise :class:`InputError` when ``data`` (the parsed ``name``, e.g. ``"clean.json"``, read from
    ``path``) does not have the shape the report reads; a file of unknown name is not checked."""
    if name in SHAPES:
        _check(data, SHAPES[name], "", str(path))


def _check(value, shape, where: str, path: str) -> None:
    if shape == "any":
        return
    if value is None:
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            _refuse(path, where, "a JSON object", value)
        for key, sub in shape.items():
            if key in value:
                _check(value[key], sub, f"{where}.{key}" if where else key, path)
        return
    if isinstance(shape, list):
        kind, sub = shape
        if kind == "list":
            if not isinstance(value, list):
                _refuse(path, where, "a JSON list", value)
            for k, v in enumerate(value):
                _check(v, sub, f"{where}[{k}]", path)
        else:
            if not isinstance(value, dict):
                _refuse(path, where, "a JSON object", value)
            for k, v in value.items():
                _check(v, sub, f"{where}.{k}", path)
        return
    if isinstance(value, (dict, list)):
        _refuse(path, where, {"number": "a number", "boolean": "true or false"}.get(shape, "a single value"), value)
    if shape == "number" and not isinstance(value, (int, float)):
        _refuse(path, where, "a number", value)
    if shape == "boolean" and not isinstance(value, bool):
        _refuse(path, where, "true or false", value)


def _refuse(path: str, where: str, expected: str, value) -> None:
    shown = json.dumps(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise InputError(f"{path}: {where or 'the top level'}: expected {expected}, got {shown}; this is not the file "
                     "gapscale writes: rerun the stage that writes it")


def read_metrics(path) -> dict:
    """Read a stage's metrics JSON file: a JSON object of at most :data:`MAX_METRICS_BYTES` whose
    known keys have the shapes of :data:`SHAPES`; anything else is an InputError naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_METRICS_BYTES:
            raise InputError(f"{path}: {path.stat().st_size} bytes, more than a stage's metrics file holds "
                             f"({MAX_METRICS_BYTES}); rerun the stage that writes it")
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply; rerun the stage that writes it") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); rerun the stage that writes it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of metrics, got {type(data).__name__}")
    check_metrics(data, path.name, path)
    return data


# ---------------------------------------------------------------------------------------------
# Headline figures: the dozen numbers of a stage that `dvc metrics show` prints, in a file of their
# own; the stage's full metrics (``cfa.json``, ...) stay as they are, a plain output that the report
# and later stages read. Names are lavaan's (fitMeasures with underscores) where there is one, and
# shared across stages (``n``, ``cfi``, ``warnings``) so that the table of `dvc metrics show` has
# one column per figure, not one per stage and figure.

HEADLINE_FILE = "{stage}_metrics.json"


def headline_fit(fit: dict) -> dict:
    """The fit figures of a model: the standard test and indices (ML), or with a scaled test (MLR,
    MLM, WLSMV, ULSMV) the scaled test and indices and the robust CFI and RMSEA, named as lavaan
    names them (``chisq_scaled``, ``cfi_scaled``, ``cfi_robust``), so a scaled figure never passes
    for a standard one."""
    fit = fit or {}
    if fit.get("chisq_scaled") is not None:
        keys = ("chisq_scaled", "df", "pvalue_scaled", "cfi_scaled", "tli_scaled", "rmsea_scaled",
                "rmsea_ci_lower_scaled", "rmsea_ci_upper_scaled", "cfi_robust", "rmsea_robust", "srmr")
    else:
        keys = ("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea_ci_lower", "rmsea_ci_upper", "srmr")
    return {k: fit.get(k) for k in keys if k in fit}


def _count(x) -> int:
    return len(x) if isinstance(x, (list, dict)) else 0


def headline(stage: str, m: dict) -> dict:
    """The headline figures of ``stage`` from its full metrics ``m`` (as the stage wrote them)."""
    if stage == "clean":
        rows = m.get("rows_in") or 0
        return {"rows_in": m.get("rows_in"), "kept": m.get("kept"), "excluded": m.get("excluded"),
                "excluded_share": (m.get("excluded") or 0) / rows if rows else None,
                "cells_set_missing": m.get("cells_set_missing", m.get("cell_problems")),
                "missing_rate": m.get("missing_rate"),
                "little_mcar_pvalue": (m.get("little_mcar") or {}).get("pvalue"),
                "warnings": _count(m.get("warnings"))}
    if stage == "split":
        return {"n": m.get("n"), "n_efa": m.get("n_efa"), "n_cfa": m.get("n_cfa"), "share": m.get("share"),
                "strata": _count(m.get("strata"))}
    if stage == "efa":
        k, f = m.get("n_factors") or {}, m.get("fit") or {}
        return {"n": m.get("n"), "items": m.get("items"), "kmo": m.get("kmo"), "n_factors": k.get("used"),
                "parallel_fa": k.get("parallel_fa"), "map": k.get("map"), "tli": f.get("tli"), "rmsea": f.get("rmsea"),
                "rms": f.get("rms"), "structure_agreement": m.get("structure_agreement"),
                "flagged_items": m.get("flagged_items"), "converged": m.get("converged"),
                "warnings": _count(m.get("warnings"))}
    if stage == "cfa":
        f = m.get("fit") or {}
        return {"estimator": m.get("estimator"), "n": f.get("ntotal"), **headline_fit(f),
                "min_std_loading": m.get("min_std_loading"), "admissible": m.get("admissible"),
                "warnings": _count(m.get("inadmissible"))}
    if stage == "reliability":
        cmv = m.get("cmv") or {}
        marker = cmv.get("marker") or {}
        return {"n": m.get("n"), "min_alpha": m.get("min_alpha"), "min_omega": m.get("min_omega"),
                "lowest_ave": m.get("lowest_ave"), "highest_htmt": m.get("highest_htmt"),
                "fornell_larcker_violations": _count(m.get("fornell_larcker_violations")),
                "harman_first_factor_share": m.get("harman_first_factor_share"),
                "method_factor_recommended": (cmv.get("method_factor") or {}).get("recommended"),
                "marker_method_detected": marker.get("method_detected"),
                "marker_method_variance_share": marker.get("method_variance_share"),
                "flags": _count(m.get("flags")), "warnings": _count(m.get("warnings"))}
    if stage == "invariance":
        s = m.get("structural") or {}
        used = m.get("n_used") or {}
        return {"n": sum(v for v in used.values() if isinstance(v, (int, float))) if used else None,
                "groups": m.get("n_groups_used"), "level": m.get("level"), "partial": _count(m.get("partial")),
                "indices": m.get("indices"), "paths_delta_pvalue": s.get("delta_pvalue"),
                "paths_differ": s.get("n_paths_differ"), "converged": m.get("converged"),
                "warnings": _count(m.get("warnings"))}
    if stage == "sem":
        f = m.get("fit") or {}
        hyp = m.get("hypotheses") or {}
        return {"estimator": m.get("estimator"), "n": f.get("ntotal"), **headline_fit(f),
                "hypotheses": len(hyp), "hypotheses_supported": m.get("hypotheses_supported"),
                "preferred_model": m.get("preferred_model"), "admissible": m.get("admissible"),
                "warnings": _count(m.get("warnings"))}
    raise ValueError(f"no headline figures for stage {stage!r}")


def write_headline(stage: str, metrics: dict, out) -> Path:
    """Write ``<out>/<stage>_metrics.json`` (:func:`headline`); return its path."""
    from pipeline.io import write_json

    path = Path(out) / HEADLINE_FILE.format(stage=stage)
    write_json(headline(stage, metrics), path)
    return path
