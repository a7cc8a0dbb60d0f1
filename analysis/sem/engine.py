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
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.sem.constraints import ConstraintSystem, build_constraints, merge_simple_equalities
from analysis.sem.estimate import MLEstimator, Optimum, baseline, optimise, start_values, warm_start
from analysis.sem import fit as fitm
from analysis.sem.fiml import FIMLEstimator, fiml_data
from analysis.sem.inference import (check_identified, covariance, inadmissible_notes, parameter_estimates,
                                    unidentified_parameters)
from analysis.sem.model import Model, SampleStats, build_model, normalise_partable, sample_statistics
from analysis.sem.robust import ROBUST_ESTIMATORS, RobustResult, robust_inference
from analysis.warnings import ConvergenceWarning, InadmissibleWarning

__all__ = ["ESTIMATORS", "EngineFit", "Sample", "check_identification", "fit", "with_standard_errors"]

ESTIMATORS = {"ML": MLEstimator, "MLR": MLEstimator, "MLM": MLEstimator}  # MLR, MLM: ML + robust.py


@dataclass(frozen=True)
class Sample:
    """A fit's data reduced to what the estimator reads, for reuse by another fit of the same
    rows with the same observed variables per group (the rungs of an invariance ladder):
    complete-data moments (``patterns`` None) or FIML's EM moments and missingness patterns,
    with the group labels, each block's observed (``ov``) and fixed.x (``ov_x``) variables and
    the data notes. The EM moments are the larger part of a FIML fit's set-up (an EM per group)."""

    fiml: bool
    labels: tuple[str, ...]
    ov: tuple[tuple[str, ...], ...]
    ov_x: tuple[tuple[str, ...], ...]
    stats: tuple[SampleStats, ...]
    patterns: tuple | None
    notes: tuple[str, ...]

    def fits(self, model: Model, fiml: bool, group_labels) -> bool:
        """Whether this sample serves ``model`` (same variables per block, same groups)."""
        return (self.fiml == fiml and len(self.ov) == len(model.blocks)
                and (group_labels is None or tuple(str(g) for g in group_labels) == self.labels)
                and all(blk.ov == ov and tuple(blk.ov_x) == ov_x
                        for blk, ov, ov_x in zip(model.blocks, self.ov, self.ov_x)))


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
        lavaan's ``fitMeasures(fit)`` from :func:`analysis.sem.fit.fit_measures` (``npar, fmin,
        chisq, df, pvalue, baseline_chisq, baseline_df, baseline_pvalue, cfi, tli, ..., logl,
        unrestricted_logl, aic, bic, bic2, rmsea`` with interval and p-values, the RMRs and SRMRs,
        ``gfi, agfi, pgfi, mfi, ecvi, ntotal, ngroups``); with MLR/MLM also the scaled and robust
        measures (``chisq_scaled, df_scaled, pvalue_scaled, chisq_scaling_factor,
        baseline_chisq_scaled, baseline_chisq_scaling_factor, cfi_scaled, cfi_robust, ...``); with
        ``missing = "fiml"`` :meth:`~analysis.sem.fiml.FIMLEstimator.fit_measures` (ML or MLR).
    x, vcov, information
        The free parameters (lavaan's ``coef``, by ``free`` index), their covariance matrix and
        the information (summed over cases): with complete data the expected information (what
        the identification check and the modification indices use, whatever the SEs' own); with
        ``missing = "fiml"`` the information the SEs use: observed (the default; the Hessian of
        :math:`-\\log L`, the bread of MLR's sandwich) or expected under the missingness patterns.
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
    robust: RobustResult | None = None  # MLR, MLM: robust SEs and scaled tests (analysis.sem.robust)
    estimator: object | None = None  # WLSMV, ULSMV: the analysis.sem.wls.WLSEstimator (difference tests)
    fiml: object | None = None  # missing = "fiml": the fiml.FIMLEstimator (its patterns: the diagnostics)
    sample: Sample | None = None  # the moments (and FIML patterns) fitted: fit(..., sample=) reuses them


def _perturbed(x: np.ndarray) -> np.ndarray:
    """A deterministic generic point near ``x`` (zeros of covariances and regressions at the
    start can hide or fake a rank deficiency)."""
    k = np.arange(1, len(x) + 1)
    return x + 0.05 * np.sin(1.7 * k) * np.maximum(1.0, np.abs(x))


def _refuse_unidentified(model: Model, constraints, est, start: np.ndarray) -> None:
    """Refuse a model with negative degrees of freedom or an information matrix singular at a
    generic point near the start (InputError naming the parameters involved)."""
    q = model.nfree
    names = model.free_names()
    ndat = model.ndat()
    eq_jac = ConstraintSystem(model, constraints).h_jac(start)
    eq_rank = int(np.linalg.matrix_rank(eq_jac)) if eq_jac.size else 0
    npar = q - eq_rank
    components = model.components()
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
        involved, _ = unidentified_parameters(est.information(point), eq_jac, names, components=components)
        if involved:
            raise InputError("the model is not identified: its information matrix is singular for any parameter "
                             f"values, so these parameters are not determined by the data: {', '.join(involved)}; "
                             "fix one of them, add a constraint or indicators (lavaan: 'could not compute standard "
                             "errors! The information matrix could not be inverted')")


def _simple_start(model: Model, start: np.ndarray) -> np.ndarray:
    """``start`` with every free loading at 1 (lavaan's ``start = "simple"`` for loadings)."""
    x = start.copy()
    pt = model.partable
    rows = (pt["op"].to_numpy() == "=~") & (model.free > 0)
    x[model.free[rows] - 1] = 1.0
    return x


def _method_factor(model: Model) -> bool:
    """Whether a latent has only fixed loadings, on observed variables that also indicate other
    latents (an unmeasured method factor, Podsakoff et al. 2003, or a bifactor's fixed general
    factor). The PCA start of each latent's own indicators then counts the shared variance twice
    and Fisher scoring from it creeps along a near-ridge (on the reliability stage's method-factor
    model: 500 scoring steps, BFGS, 500 more, about 10,000 objective evaluations, not converged);
    lavaan's simple start (free loadings 1) reaches the optimum directly (98 steps)."""
    pt = model.partable
    is_load = (pt["op"] == "=~").to_numpy()
    latents = set(pt.loc[is_load, "lhs"])
    load = is_load & ~pt["rhs"].isin(latents).to_numpy()  # loadings on observed variables
    if not load.any():
        return False
    rows = pt[load].assign(free_=model.free[load])
    for (block, lat), grp in rows.groupby(["block", "lhs"], sort=False):
        if len(grp) < 2 or (grp["free_"] > 0).any():
            continue
        others = rows[(rows["block"] == block) & (rows["lhs"] != lat)]
        if grp["rhs"].isin(others["rhs"]).all():
            return True
    return False


def check_identification(partable: pd.DataFrame, data: pd.DataFrame, group: str | None = None,
                         group_labels: list[str] | None = None) -> None:
    """The identification check :func:`fit` runs before fitting, alone: negative degrees of
    freedom, or an expected information singular at a generic point near the starting values
    (Rothenberg's local identification; the model is then not identified whatever the data).

    Raises
    ------
    InputError
        "the model is not identified: ..." naming the parameters involved (or bad table/data).
    """
    model = build_model(merge_simple_equalities(normalise_partable(partable)))
    constraints = build_constraints(model.partable)
    stats, _ = sample_statistics(model, data, group, group_labels)
    model = model.with_sample(stats)
    _refuse_unidentified(model, constraints, MLEstimator(model, stats), start_values(model, stats))


def _ml_covariance(est, opt: Optimum, expected: np.ndarray, information: str, fiml: bool,
                   components) -> tuple[np.ndarray, np.ndarray]:
    """The ML (not robust) covariance matrix of the estimates and the information it inverts
    (EngineFit.information): with FIML the observed information (or the expected one under the
    patterns), with complete data the ``expected`` one (already computed) or the observed."""
    if fiml:
        info = est.observed_information(opt.x) if information == "observed" else est.expected_information(opt.x)
        return covariance(info, opt.con_jac, components), info
    vcov = covariance(expected if information == "expected" else est.observed_information(opt.x), opt.con_jac,
                      components)
    return vcov, expected


def with_standard_errors(fitted: EngineFit, information: str | None = None, level: float = 0.95,
                         std_se: bool = True) -> EngineFit:
    """``fitted``, a fit made with ``se = False`` (ML, complete data or FIML), with its standard
    errors: the ``vcov``, ``information`` and ``parameters`` that :func:`fit` with ``se = True``
    and the same ``information``, ``level`` and ``std_se`` returns, computed from the fit's own
    estimator and optimum (the same numbers, bit for bit). For a caller that learns only after
    fitting several models which of them it reports (an invariance ladder reports the level
    reached and the scalar model's latent means: the other rungs need only their fit measures).
    A fit that has its standard errors already (robust, WLSMV/ULSMV, or ``se = True``) is
    returned as it is."""
    if fitted.robust is not None or fitted.estimator is not None or not np.isnan(fitted.vcov).all():
        return fitted
    model, opt = fitted.model, fitted.optimum
    fiml = fitted.fiml is not None
    information = information or ("observed" if fiml else "expected")
    if information not in ("expected", "observed"):
        raise InputError(f"information must be 'expected' or 'observed', got {information!r}")
    est = fitted.fiml if fiml else MLEstimator(model, list(fitted.stats))
    vcov, info = _ml_covariance(est, opt, fitted.information, information, fiml, model.components())
    params = parameter_estimates(model, build_constraints(model.partable), opt.x, vcov, level=level,
                                 group_labels=list(fitted.group_labels), std_se=std_se)
    return replace(fitted, parameters=params, vcov=vcov, information=info)


def fit(partable: pd.DataFrame, data: pd.DataFrame, group: str | None = None,
        group_labels: list[str] | None = None, estimator: str = "ML", information: str | None = None,
        level: float = 0.95, std_se: bool = True, max_iter: int = 500, missing: str = "listwise",
        ordered: list[str] | None = None, robust_indices: bool = True, start: pd.DataFrame | None = None,
        sample: Sample | None = None, se: bool = True, cluster: str | None = None) -> EngineFit:
    """Fit the model of a lavaan parameter table (``parTable(fit)`` columns) to ``data``.

    ``group`` names the column of the groups (their order: ``group_labels`` or first
    appearance, lavaan's ``group.label``); the table's blocks are the groups. Complete cases
    (lavaan's ``missing = "listwise"``). ``information`` is ``"expected"`` (lavaan's default) or
    ``"observed"`` (the Hessian) for the standard errors; identification is always judged on
    the expected information. ``estimator`` ``"MLR"`` or ``"MLM"`` keeps the ML estimates with
    robust SEs and a scaled test (:mod:`analysis.sem.robust`); ``information`` defaults to
    lavaan's for the estimator (MLR observed, else expected). ``std_se = False`` skips the
    delta-method SEs of the standardised solutions (NaN), e.g. for the rungs of an invariance
    ladder; ``robust_indices = False`` leaves out ML with FIML's robust CFI/TLI/RMSEA (the
    FIML-corrected statistics, the larger part of the fit measures' cost). ``se = False`` (ML only; MLR and
    MLM keep their robust inference, which the scaled tests need) skips the standard errors (NaN:
    ``se, z, pvalue, ci_lower, ci_upper`` and the standardised SEs; ``vcov`` NaN, ``information``
    the expected one) for a fit read only for its estimates and fit measures, e.g. a competing
    model compared by chi-square, AIC and BIC (with FIML, the observed information's 2q gradients). ``missing = "fiml"`` (lavaan's ``"ml"``): every case by FIML
    (:mod:`analysis.sem.fiml`), observed information by default, lavaan's fit measures; with
    ``estimator = "MLR"`` robust SEs, the Yuan-Bentler scaled test and the FIML-corrected robust
    indices (:func:`analysis.sem.robust.robust_inference`); MLM needs complete data (InputError).
    ``estimator = "WLSMV"`` or ``"ULSMV"`` (a table with the ``ordered`` items' thresholds) runs
    :func:`analysis.sem.wls.fit_wls`, with ``missing`` ``"listwise"`` or ``"pairwise"``.
    ``cluster`` (a column of ``data``; MLR with complete data): cluster-robust SEs and scaled tests,
    lavaan's ``sem(..., cluster = , estimator = "MLR")`` (:mod:`analysis.sem.robust`).

    ``start``: a fitted model's parameter table (``EngineFit.parameters``, or the pipeline's
    table with ``group``) whose estimates start the free parameters they share with this model
    (:func:`~analysis.sem.estimate.warm_start`; the identification check still uses the default
    start); if the optimiser does not converge from there, the default start is tried. ``sample``:
    ``EngineFit.sample`` of a fit of the same data rows, reused when it has this model's
    observed variables and groups (an invariance ladder computes its EM moments once); otherwise
    the moments are computed from ``data``. Neither changes the estimates beyond the optimiser's
    tolerance. (ML, MLR, MLM; WLSMV/ULSMV ignore both.)

    Raises
    ------
    InputError
        Bad table or data (see :func:`~analysis.sem.model.build_model`,
        :func:`~analysis.sem.model.sample_statistics`), negative degrees of freedom, or an
        information matrix singular at the solution (the message names the parameters).
    """
    if str(estimator).upper() not in ("WLSMV", "ULSMV") and (ordered or (partable["op"] == "|").any()):
        raise InputError(f"ordered items (thresholds) need estimator WLSMV or ULSMV, got {estimator!r}")
    if str(estimator).upper() in ("WLSMV", "ULSMV"):  # ordered items: thresholds and polychorics
        if information not in (None, "expected"):
            raise InputError(f"information: {estimator} uses the expected information (lavaan's), got {information!r}")
        from analysis.sem.wls import fit_wls
        return fit_wls(partable, data, group=group, group_labels=group_labels, estimator=estimator,
                       ordered=ordered, level=level, max_iter=max_iter, std_se=std_se, missing=missing)
    if missing not in ("listwise", "fiml", "ml"):
        raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
    fiml = missing != "listwise"
    if fiml and estimator not in ("ML", "MLR"):
        raise InputError(f"estimator {estimator!r} needs complete data (lavaan: {estimator} is not available with "
                         "missing = 'ml'); use missing = 'listwise', or estimator ML or MLR with FIML")
    if information is None:
        information = "observed" if fiml else \
            ROBUST_ESTIMATORS[estimator][0] if estimator in ROBUST_ESTIMATORS else "expected"
    if information not in ("expected", "observed"):
        raise InputError(f"information must be 'expected' or 'observed', got {information!r}")
    if cluster is not None and (estimator != "MLR" or fiml):
        raise InputError(f"cluster {cluster!r}: cluster-robust standard errors need estimator MLR with complete data "
                         f"(missing = 'listwise'), got {estimator}{' with FIML' if fiml else ''}")
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    start_frame = start
    model = build_model(merge_simple_equalities(normalise_partable(partable)))
    constraints = build_constraints(model.partable)
    if sample is not None and sample.fits(model, fiml, group_labels):
        stats, labels, data_notes = list(sample.stats), list(sample.labels), list(sample.notes)
        patterns = list(sample.patterns) if fiml else None
        # (the data notes were warned by the fit that made the sample; they stay in EngineFit.warnings)
    elif fiml:
        stats, patterns, labels, data_notes = fiml_data(model, data, group, group_labels)
    else:
        stats, labels = sample_statistics(model, data, group, group_labels)
        patterns, data_notes = None, []
    sample = Sample(fiml=fiml, labels=tuple(labels), ov=tuple(blk.ov for blk in model.blocks),
                    ov_x=tuple(tuple(blk.ov_x) for blk in model.blocks), stats=tuple(stats),
                    patterns=tuple(patterns) if fiml else None, notes=tuple(data_notes))
    model = model.with_sample(stats)
    est = FIMLEstimator(model, stats, patterns) if fiml else ESTIMATORS[estimator](model, stats)
    start = start_values(model, stats)
    q = model.nfree
    names = model.free_names()
    ndat = model.ndat()
    _refuse_unidentified(model, constraints, est, start)
    components = model.components()
    warm = warm_start(model, start, start_frame) if start_frame is not None else None
    # the PCA start first, lavaan's own (free loadings 1; some near-ridge optima the PCA start misses)
    # second; the other way round for a method factor (_method_factor)
    first, second = start, _simple_start(model, start)
    if _method_factor(model):
        first, second = second, first
    opt = None
    if warm is not None and np.isfinite(est.objective(warm)):
        opt = optimise(est, model, constraints, warm, max_iter=max_iter)
    if opt is None or not opt.converged:
        cold = optimise(est, model, constraints, first, max_iter=max_iter)
        opt = cold if opt is None or cold.converged or cold.fmin < opt.fmin else opt
    if not opt.converged:
        alt = optimise(est, model, constraints, second, max_iter=max_iter)
        if alt.converged or alt.fmin < opt.fmin:
            opt = alt
    info = est.information(opt.x)
    check_identified(info, opt.con_jac, names, components)  # an unidentified model is refused, converged or not
    notes = list(data_notes)
    if not opt.converged:
        notes.append(f"the optimiser did not converge in {opt.iterations} iterations ({opt.method})")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=2)
    robust = None
    if estimator in ROBUST_ESTIMATORS:
        robust = robust_inference(estimator, est, opt.x, opt.con_jac, data, group, labels,
                                  df=ndat - (q - opt.eq_rank), chisq=est.ntotal * opt.fmin, information=information,
                                  components=components, cluster=cluster)
        vcov = robust.vcov
    elif not se:  # no standard errors asked for: NaN (the information stays the expected one)
        vcov = np.full((q, q), np.nan)
        std_se = False
    else:
        vcov, info = _ml_covariance(est, opt, info, information, fiml, components)
    if fiml and robust is not None:  # MLR: the bread of the sandwich
        info = est.observed_information(opt.x)
    params = parameter_estimates(model, constraints, opt.x, vcov, level=level, group_labels=labels, std_se=std_se)
    for note in inadmissible_notes(model, opt.x, params):
        notes.append(note)
        warnings.warn(note, InadmissibleWarning, stacklevel=2)
    chisq = est.ntotal * opt.fmin
    df = ndat - (q - opt.eq_rank)
    logl, unres = est.loglik(opt.x)
    base_chisq, base_df = est.baseline() if fiml else baseline(model, stats)
    moments = est.moments(opt.x)
    covs, means = [st.cov for st in stats], [st.mean for st in stats]
    implied_covs, implied_means = [m[0] for m in moments], [m[1] for m in moments]
    nobs = [st.n for st in stats]
    mean_args = dict(sample_mean=means, implied_mean=implied_means) if model.meanstructure else {}
    # lavaan's number of sample statistics for the AGFI/PGFI: all of them, fixed.x covariates' too
    nel = sum(blk.p * (blk.p + 1) // 2 + (blk.p if model.meanstructure else 0) for blk in model.blocks)
    fixed_x = [[k for k, v in enumerate(st.ov) if v in set(blk.ov_x)] for blk, st in zip(model.blocks, stats)]
    if fiml:  # residual measures against the EM moments, FIML-corrected robust indices
        fit_measures = est.fit_measures(opt.x, int(q - opt.eq_rank), float(chisq), int(df), base_chisq, base_df,
                                        opt.con_jac, estimator=estimator, robust_indices=robust_indices,
                                        **(dict(scaled=robust.scaled, baseline_scaled=robust.baseline_scaled,
                                                robust=robust.fiml_corrected) if robust is not None else {}))
    else:
        fit_measures = fitm.fit_measures(
            npar=int(q - opt.eq_rank), ntotal=int(est.ntotal), chisq=float(chisq), df=int(df),
            baseline_chisq=base_chisq, baseline_df=base_df, n_groups=len(stats), estimator=estimator,
            fmin=opt.fmin / 2, scaled=robust.scaled if robust is not None else None,
            baseline_scaled=robust.baseline_scaled if robust is not None else None, logl=logl,
            unrestricted_logl=unres, residuals=fitm.residual_measures(covs, implied_covs, nobs, **mean_args),
            gfi_value=fitm.ml_gfi(covs, implied_covs, nobs, **mean_args, fixed_x=fixed_x), nel=nel)
    implied = tuple((pd.DataFrame(s, index=st.ov, columns=st.ov), pd.Series(m, index=st.ov))
                    for (s, m), st in zip(est.moments(opt.x), stats))
    return EngineFit(parameters=params, fit=fit_measures, x=opt.x, vcov=vcov, information=info, model=model,
                     stats=tuple(stats), group_labels=tuple(labels), implied=implied, optimum=opt,
                     converged=opt.converged, warnings=tuple(notes), robust=robust, fiml=est if fiml else None,
                     sample=sample)
