"""The engine's entry point: a lavaan parameter table and a data frame in, a fitted model out.

:func:`fit` runs the whole chain — :func:`~analysis.sem.model.build_model` (matrices),
:func:`~analysis.sem.model.sample_statistics`, :class:`~analysis.sem.estimate.MLEstimator` with
:func:`~analysis.sem.estimate.optimise` (constraints), the identification check and
:func:`~analysis.sem.inference.parameter_estimates` — for any number of groups.

In R: ``fit <- lavaan::lavaan(parTable, data = d, group = "g")``, ``parameterEstimates(fit,
standardized = TRUE)``, ``fitMeasures(fit)``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.sem.constraints import build_constraints, jacobian
from analysis.sem.estimate import MLEstimator, Optimum, baseline, chisq_pvalue, optimise, start_values
from analysis.sem.fiml import FIMLEstimator, fiml_data
from analysis.sem.inference import check_identified, covariance, parameter_estimates, unidentified_parameters
from analysis.sem.model import Model, SampleStats, build_model, sample_statistics
from analysis.warnings import ConvergenceWarning

__all__ = ["ESTIMATORS", "EngineFit", "fit"]

ESTIMATORS = {"ML": MLEstimator}


@dataclass(frozen=True)
class EngineFit:
    """A fitted model, with lavaan's names (dots as underscores).

    Attributes
    ----------
    parameters : DataFrame
        :func:`~analysis.sem.inference.parameter_estimates`: ``lhs, op, rhs, block, group,
        group_label, label, free, est, se, z, pvalue, ci_lower, ci_upper, std_lv, std_lv_se,
        std_all, std_all_se``.
    fit : dict
        ``npar, chisq, df, pvalue, fmin, logl, unrestricted_logl, baseline_chisq, baseline_df,
        baseline_pvalue, ntotal, ngroups``; with ``missing = "fiml"`` all of lavaan's ``fitMeasures``
        (:meth:`~analysis.sem.fiml.FIMLEstimator.fit_measures`).
    x, vcov, information
        The free parameters (lavaan's ``coef``, by ``free`` index), their covariance matrix and
        the expected information (summed over cases).
    implied : tuple of (DataFrame, Series)
        Per group the implied covariance matrix and means.
    """

    parameters: pd.DataFrame
    fit: dict
    x: np.ndarray
    vcov: np.ndarray
    information: np.ndarray
    model: Model
    stats: tuple[SampleStats, ...]
    group_labels: tuple[str, ...]
    implied: tuple[tuple[pd.DataFrame, pd.Series], ...]
    optimum: Optimum
    converged: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _perturbed(x: np.ndarray) -> np.ndarray:
    """A deterministic generic point near ``x`` (zeros of covariances and regressions at the
    start can hide or fake a rank deficiency)."""
    k = np.arange(1, len(x) + 1)
    return x + 0.05 * np.sin(1.7 * k) * np.maximum(1.0, np.abs(x))


def fit(partable: pd.DataFrame, data: pd.DataFrame, group: str | None = None,
        group_labels: list[str] | None = None, estimator: str = "ML", information: str | None = None,
        level: float = 0.95, max_iter: int = 500, missing: str = "listwise") -> EngineFit:
    """Fit the model of a lavaan parameter table (``parTable(fit)`` columns) to ``data``.

    ``group`` names the column of the groups (their order: ``group_labels`` or first
    appearance, lavaan's ``group.label``); the table's blocks are the groups. Complete cases
    (lavaan's ``missing = "listwise"``). ``information`` is ``"expected"`` (lavaan's default) or
    ``"observed"`` (the Hessian) for the standard errors; identification is always judged on
    the expected information. ``missing = "fiml"`` (lavaan's ``"ml"``): every case by FIML
    (:mod:`analysis.sem.fiml`), observed information by default, lavaan's fit measures.

    Raises
    ------
    InputError
        Bad table or data (see :func:`~analysis.sem.model.build_model`,
        :func:`~analysis.sem.model.sample_statistics`), negative degrees of freedom, or an
        information matrix singular at the solution (the message names the parameters).
    """
    if missing not in ("listwise", "fiml", "ml"):
        raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
    fiml = missing != "listwise"
    information = information or ("observed" if fiml else "expected")
    if information not in ("expected", "observed"):
        raise InputError(f"information must be 'expected' or 'observed', got {information!r}")
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    model = build_model(partable)
    constraints = build_constraints(model.partable)
    if fiml:
        stats, patterns, labels, data_notes = fiml_data(model, data, group, group_labels)
        model = model.with_sample(stats)
        est = FIMLEstimator(model, stats, patterns)
    else:
        stats, labels = sample_statistics(model, data, group, group_labels)
        data_notes = []
        model = model.with_sample(stats)
        est = ESTIMATORS[estimator](model, stats)
    start = start_values(model, stats)
    q = model.nfree
    names = model.free_names()
    ndat = model.ndat()
    h_fun = lambda xx: constraints.h(model.row_values(xx))  # noqa: E731
    eq_jac = jacobian(h_fun, start) if constraints.equality else np.zeros((0, q))
    eq_rank = int(np.linalg.matrix_rank(eq_jac)) if eq_jac.size else 0
    npar = q - eq_rank
    if npar > ndat:
        point = _perturbed(start)
        involved, _ = unidentified_parameters(est.information(point), eq_jac, names)
        raise InputError(f"the model is not identified: {npar} free parameters but only {ndat} sample moments "
                         f"(degrees of freedom {ndat - npar})"
                         + (f"; the parameters involved: {', '.join(involved)}" if involved else "")
                         + "; fix parameters, add constraints or indicators")
    # Rothenberg's local identification at a generic point near the start: a rank deficiency
    # there holds almost everywhere (the model is not identified whatever the data); fitting it
    # would only wander along the flat directions.
    point = _perturbed(start)
    if np.isfinite(est.objective(point)):
        involved, _ = unidentified_parameters(est.information(point), eq_jac, names)
        if involved:
            raise InputError("the model is not identified: its information matrix is singular for any parameter "
                             f"values, so these parameters are not determined by the data: {', '.join(involved)}; "
                             "fix one of them, add a constraint or indicators (lavaan: 'could not compute standard "
                             "errors! The information matrix could not be inverted')")
    opt = optimise(est, model, constraints, start, max_iter=max_iter)
    info = est.information(opt.x)
    check_identified(info, opt.con_jac, names)  # an unidentified model is refused, converged or not
    notes = list(data_notes)
    if not opt.converged:
        notes.append(f"the optimiser did not converge in {opt.iterations} iterations ({opt.method})")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=2)
    vcov = covariance(info if information == "expected" else est.observed_information(opt.x), opt.con_jac)
    params = parameter_estimates(model, constraints, opt.x, vcov, level=level, group_labels=labels)
    for row in params[(params["op"] == "~~") & (params["lhs"] == params["rhs"]) & (params["free"] > 0)].itertuples():
        if row.est < 0:
            notes.append(f"Heywood case: the variance of {row.lhs} is negative ({row.est:.3f})"
                         + (f" in group {row.group_label}" if len(labels) > 1 else ""))
    chisq = est.ntotal * opt.fmin
    df = ndat - (q - opt.eq_rank)
    logl, unres = est.loglik(opt.x)
    base_chisq, base_df = est.baseline() if fiml else baseline(model, stats)
    fit_measures = {
        "npar": int(q - opt.eq_rank), "fmin": opt.fmin / 2, "chisq": float(chisq), "df": int(df),
        "pvalue": chisq_pvalue(chisq, df), "baseline_chisq": base_chisq, "baseline_df": base_df,
        "baseline_pvalue": chisq_pvalue(base_chisq, base_df), "logl": logl, "unrestricted_logl": unres,
        "ntotal": int(est.ntotal), "ngroups": len(stats),
    }
    if fiml:
        fit_measures = est.fit_measures(opt.x, int(q - opt.eq_rank), float(chisq), int(df), base_chisq, base_df,
                                        opt.con_jac)
    implied = tuple((pd.DataFrame(s, index=st.ov, columns=st.ov), pd.Series(m, index=st.ov))
                    for (s, m), st in zip(est.moments(opt.x), stats))
    return EngineFit(parameters=params, fit=fit_measures, x=opt.x, vcov=vcov, information=info, model=model,
                     stats=tuple(stats), group_labels=tuple(labels), implied=implied, optimum=opt,
                     converged=opt.converged, warnings=tuple(notes))
