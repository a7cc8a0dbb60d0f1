"""The engine's front door: lavaan syntax and a data frame in, a fitted model with lavaan's
complete ``fitMeasures`` and the pipeline's parameter table out.

:func:`fit_model` is :func:`~analysis.sem.partable.lavaanify` (the parameter table lavaan's
``cfa()``/``sem()`` build) + :func:`analysis.sem.engine.fit` (which computes every fit measure).
:func:`check_model` is the identification check alone, without fitting (the CLI runs it before
fitting with any engine).

In R: ``fit <- lavaan::sem(model, data, group = "g", estimator = "ML", std.lv = FALSE,
group.equal = ..., group.partial = ...)``; ``parameterEstimates(fit, standardized = TRUE)``;
``fitMeasures(fit)``.
"""
from __future__ import annotations

import inspect
from dataclasses import replace

import pandas as pd

from analysis.errors import InputError
from analysis.sem.engine import EngineFit
from analysis.sem.engine import fit as engine_fit
from analysis.sem.partable import lavaanify
from instrument.lavaan import LavaanModel

__all__ = ["PARAMETER_COLUMNS", "categories", "check_model", "fit_model", "parameter_table", "refuse_unidentified"]

PARAMETER_COLUMNS = ["lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper", "std_all"]


def _groups(data: pd.DataFrame, group: str | None, group_labels) -> list[str] | None:
    if group is None:
        return None
    if group not in data.columns:
        raise InputError(f"data: group column {group!r} not found")
    if group_labels is not None:
        return [str(g) for g in group_labels]
    return list(dict.fromkeys(data[group].dropna().astype(str)))


def categories(data: pd.DataFrame, ordered, missing: str = "listwise") -> dict[str, int] | None:
    """lavaan's number of categories of each ordered item: its distinct values in the rows where
    every ordered item is observed (WLSMV/ULSMV delete incomplete rows listwise), or in every
    row where it is observed with ``missing = "pairwise"``. (The thresholds of the parameter
    table: one fewer than the categories; the invariance ladder counts them here too.)

    In R: ``lavInspect(fit, "th")``'s count per item plus one.

    Raises
    ------
    InputError
        An ordered item that is not a column of ``data``.
    """
    if not ordered:
        return None
    absent = [v for v in ordered if v not in data.columns]
    if absent:
        raise InputError(f"ordered: column(s) {', '.join(map(str, absent))} not found in the data")
    if missing == "pairwise":
        return {v: int(data[v].dropna().nunique()) for v in ordered}
    complete = data[list(ordered)].dropna()
    return {v: int(complete[v].nunique()) for v in ordered}


def _partable(model, data, group, group_labels, estimator, std_lv, missing, group_equal, group_partial, ordered=None,
              meanstructure=None):
    labels = _groups(data, group, group_labels)
    pt = lavaanify(model, list(data.columns), std_lv=std_lv, groups=labels, group_equal=tuple(group_equal),
                   meanstructure=meanstructure,
                   group_partial=tuple(group_partial), estimator=estimator, missing=missing,
                   ordered=categories(data, ordered, missing))
    return pt, labels


def parameter_table(fitted: EngineFit) -> pd.DataFrame:
    """The pipeline's parameter table of a fit: :data:`PARAMETER_COLUMNS` (lavaan's
    ``parameterEstimates(fit, standardized = TRUE)`` columns ``lhs, op, rhs, label, est, se, z,
    pvalue, ci.lower, ci.upper, std.all``) and ``std_all_se`` (``standardizedSolution(fit)$se``),
    with ``group`` (lavaan's group number) after ``rhs`` when there are several groups."""
    p = fitted.parameters
    cols = list(PARAMETER_COLUMNS) + ["std_all_se"]
    if len(fitted.group_labels) > 1:
        cols.insert(3, "group")
    return p[cols].reset_index(drop=True)


def fit_model(model: str | LavaanModel, data: pd.DataFrame, *, group: str | None = None,
              group_labels=None, estimator: str = "ML", std_lv: bool = False, missing: str = "listwise",
              group_equal=(), group_partial=(), level: float = 0.95, ordered=None, start=None,
              sample=None, robust_indices: bool = True, se: bool = True, cluster: str | None = None) -> EngineFit:
    """Fit lavaan ``model`` syntax to ``data`` with the unified engine.

    Returns the :class:`~analysis.sem.engine.EngineFit` whose ``parameters`` is
    :func:`parameter_table` (the pipeline's columns); its ``fit`` is the engine's lavaan
    ``fitMeasures`` list (dots as underscores).
    ``missing`` other than ``"listwise"`` is passed to the engine when it takes it.
    ``ordered`` (item names; lavaan's ``ordered =``) are ordinal items, with thresholds, for
    ``estimator = "WLSMV"`` or ``"ULSMV"``. ``start`` (a fitted model's parameter table) and
    ``sample`` (``EngineFit.sample`` of a fit of the same data) are the engine's warm start and
    reused moments (:func:`analysis.sem.engine.fit`): a competing model starts from the
    hypothesised model's estimates. ``robust_indices = False``: without ML with FIML's robust
    CFI/TLI/RMSEA (the engine's option; a competing model compared by chi-square, AIC and BIC).
    ``se = False``: without standard errors (NaN; the engine's option, ML only).
    ``cluster`` (a column): cluster-robust SEs and scaled test (MLR, complete data), with a mean
    structure as lavaan's ``sem(..., cluster = , estimator = "MLR")``.

    Raises
    ------
    InputError
        Bad syntax or data, an estimator or missing-data method the engine does not have, or a
        model that is not identified (the message names the parameters involved).
    """
    pt, labels = _partable(model, data, group, group_labels, estimator, std_lv, missing, group_equal, group_partial,
                           ordered, meanstructure=True if cluster is not None else None)
    kwargs = {"ordered": list(ordered)} if ordered else {}
    if cluster is not None:
        kwargs["cluster"] = cluster
    if start is not None or sample is not None:
        kwargs.update(start=start, sample=sample)
    if not robust_indices:
        kwargs["robust_indices"] = False
    if not se:
        kwargs["se"] = False
    if missing != "listwise":
        if "missing" not in inspect.signature(engine_fit).parameters:
            raise InputError(f"missing: {missing!r} is not available in the unified engine yet; use listwise")
        kwargs["missing"] = missing
    fitted = engine_fit(pt, data, group=group, group_labels=labels, estimator=estimator, level=level, **kwargs)
    return replace(fitted, parameters=parameter_table(fitted))


def check_model(model: str | LavaanModel, data: pd.DataFrame, *, group: str | None = None, group_labels=None,
                estimator: str = "ML", std_lv: bool = False, missing: str = "listwise", group_equal=(),
                group_partial=()) -> None:
    """Refuse a model that is not identified, without fitting it: lavaan's parameter table of
    ``model`` and :func:`analysis.sem.engine.check_identification` (negative degrees of freedom,
    or an information matrix singular at a generic point: the parameters involved are named).

    Raises
    ------
    InputError
        "the model is not identified: ..." (or bad syntax/data).
    """
    from analysis.sem.engine import check_identification

    pt, labels = _partable(model, data, group, group_labels, estimator, std_lv, missing, group_equal, group_partial)
    check_identification(pt, data, group=group, group_labels=labels)


def refuse_unidentified(model: str | LavaanModel, data: pd.DataFrame, where: str = "", **kwargs) -> None:
    """The CLI's guard before fitting with any engine: :func:`check_model`, raising only its
    "not identified" refusal (prefixed with ``where``, the model's file). Other input errors of
    the check (syntax, columns, too few complete cases for FIML data) are left to the engine
    that fits the model, which reports them in its own words; the check then did not run.

    Raises
    ------
    InputError
        "WHERE: the model is not identified: ..." naming the parameters involved.
    """
    try:
        check_model(model, data, **kwargs)
    except InputError as exc:
        if str(exc).startswith("the model is not identified"):
            raise InputError(f"{where}: {exc}" if where else str(exc)) from None
