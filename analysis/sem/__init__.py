"""gapscale's structural equation modelling engine (CFA as the special case), as lavaan fits it.

The map of the package, in the order a model flows through it:

- ``partable``: lavaan model syntax (parsed by :mod:`instrument.lavaan`) to lavaan's parameter
  table, row for row as ``lavaanify()`` builds it, with the ``cfa()``/``sem()`` defaults.
- ``model``: a lavaan parameter table (``parTable()`` columns) as LISREL "all-y" matrices per
  group (lambda, beta, psi, theta, nu, alpha; tau/delta hooks), observed variables in
  regressions as phantom latents, fixed.x covariates at their sample moments; implied moments
  (Sigma, mu) and their analytic derivatives; complete-data sample statistics per group.
- ``constraints``: ``==``, ``<``, ``>`` and ``:=`` rows compiled to functions of the parameters;
  simple equalities (``.p2. == .p38.``) merged into one free index, other linear ones a
  null-space reparametrisation, nonlinear ones for the optimiser.
- ``estimate``: estimator strategies over the model (``MLEstimator``: complete-data ML over any
  number of groups; objective, gradient, expected and observed information), starting values,
  the optimiser (Fisher scoring on the constraint null space, BFGS from the Fisher matrix for the
  last digits; SLSQP then active-set scoring with inequalities), the baseline model.
- ``fiml``: ``FIMLEstimator``, ML with incomplete data (lavaan's ``missing = "ml"``) over any
  number of groups: casewise log-likelihood by missingness pattern, the saturated model by EM,
  the FIML baseline, analytic observed information, casewise scores and the FIML-corrected robust
  statistics; ``engine.fit(..., missing="fiml")`` with estimator ML or MLR.
- ``ordinal``: lavaan's sample statistics of ordered items (thresholds, polychoric correlations,
  their NACOV from the casewise influence functions), listwise or ``missing = "pairwise"``.
- ``wls``: the ordinal estimators WLSMV and ULSMV (thresholds and polychoric correlations per
  group from ``ordinal``, their NACOV; delta parameterization; robust SEs, the scaled-and-shifted test, catML
  robust indices, the scaled difference test of nested fits);
  ``engine.fit(..., estimator="WLSMV", ordered=[...], missing="listwise"|"pairwise")`` runs it;
  mixed continuous and ordered indicators are refused.
- ``inference``: covariance of the estimates (information augmented by the constraints),
  identification (singular information names the parameters involved), Wald tests and
  intervals, ``:=`` by the delta method, std.lv / std.all with delta-method SEs.
- ``robust``: the robust ML estimators over ``estimate``'s ML solution, any number of groups: MLR
  (complete data or FIML; Huber-White SEs on the observed information, Yuan-Bentler scaled test) and MLM
  (robust.sem SEs, Satorra-Bentler scaled test), the baseline's scaled test, and the
  Satorra-Bentler (2001) scaled difference test of nested models (``scaled_difference``).
- ``fit``: every fit index (lavaan's ``fitMeasures``), pure functions of the statistics each
  estimator produces, in one place.
- ``diagnostics``: for an ``EngineFit`` (any number of groups; ML, MLR, MLM, FIML, WLSMV, ULSMV):
  modification indices with EPC, sepc.lv, sepc.all (lavaan's ``modindices``), standardized
  residuals (``resid(fit, "standardized")``); ``h1`` its saturated-model information matrices
  under missing data.
- ``engine``: ``fit(partable, data, group=..., estimator="ML"|"MLR"|"MLM"|"WLSMV"|"ULSMV",
  missing="listwise"|"fiml")`` runs the chain and returns an ``EngineFit`` with lavaan's
  ``fitMeasures`` (from ``fit``) (import it as ``from analysis.sem.engine import fit``: the package
  attribute ``fit`` would be shadowed by the fit-index module ``analysis.sem.fit``); ``check_identification`` its
  pre-fit identification check alone.
- ``api``: the front door, ``fit_model(syntax, data, group=..., estimator=..., std_lv=...,
  group_equal=...)`` = ``lavaanify`` + ``engine.fit``, with the pipeline's parameter
  table; ``check_model`` the identification check alone and
  ``refuse_unidentified`` the CLI's guard around it (``cfa`` and ``sem`` run it before fitting).
- ``options``: the estimation options every command shares (estimator, missing-data method,
  ordered items, std.lv), their lavaan combinations checked once (``Estimation``).

Every model of the pipeline is fitted here: ``cfa``, ``sem`` (and its bootstrap), ``reliability``
and ``invariance`` call :func:`analysis.sem.api.fit_model` or :func:`analysis.sem.engine.fit`.
The public names below are re-exported, so callers write ``from analysis.sem import fit_model``.
"""
from analysis.sem.api import PARAMETER_COLUMNS, check_model, fit_model, parameter_table, refuse_unidentified
from analysis.sem.engine import EngineFit
from analysis.sem.options import Estimation
from analysis.warnings import InadmissibleWarning  # where it lives; re-exported for callers

__all__ = ["EngineFit", "Estimation", "InadmissibleWarning", "PARAMETER_COLUMNS", "check_model", "fit_model",
           "parameter_table", "refuse_unidentified"]
