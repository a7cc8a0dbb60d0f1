r"""Monte Carlo power and sample size of a structural equation model.

The Monte Carlo method of Muthén & Muthén (2002): draw many data sets of size :math:`N` from a
population model whose values the researcher believes, fit the analysis model to each, and count.
For a parameter :math:`\theta` with population value :math:`\theta_0` and :math:`R` replications
at one :math:`N` (:math:`C` of them converged):

- **power** of a path: the share of the converged replications whose Wald test rejects
  :math:`\theta = 0` at level :math:`\alpha` *in the expected direction*,
  :math:`\hat P = \#\{p_r < \alpha,\ \operatorname{sign}\hat\theta_r = \operatorname{sign}\theta_0\}/C`
  (also reported over all :math:`R` replications, a failed or non-converged one counting as a
  miss); its Monte Carlo standard error is :math:`\sqrt{\hat P(1-\hat P)/C}`;
- **power of a hypothesis**: the share of converged replications whose verdict
  (:func:`analysis.structural.hypotheses_table`, with Wald intervals at level
  :math:`1-\alpha`) is ``supported``: every part's interval excludes zero on the expected side;
- **relative bias** of the estimates :math:`(\bar{\hat\theta} - \theta_0)/\theta_0`, and of
  the standard errors :math:`\overline{\mathrm{SE}} / \mathrm{SD}(\hat\theta) - 1`;
- **coverage**: the share of the 95% Wald intervals :math:`\hat\theta_r \pm z_{.975}\mathrm{SE}_r`
  that hold :math:`\theta_0` (not applicable, NaN, for a quantity the metric fixes: every SE 0,
  e.g. the standardised variance of an exogenous latent);
- the **chi-square rejection rate** (share with the model test's :math:`p < \alpha`; the scaled
  test's with MLR, MLM, WLSMV and ULSMV) and the
  quantiles of CFI and RMSEA.

The **analytic power** (:func:`analytic_power`) answers the same question without replications:
the asymptotic normal distribution of the standardised estimates, centred on the population
values, with the covariance per respondent of one large simulated study (defects, screens and
missing cells included), gives each path's Wald power in closed form (:func:`wald_power`) and
each hypothesis' power by cheap draws, on a fine grid of N. It costs about a second for the default
study where a Monte Carlo run worth reporting costs thousands of CPU-seconds; the Monte Carlo run
checks it (:func:`compare_power`; ``tests/test_power_analytic.py``).

Muthén & Muthén's criteria for a trustworthy :math:`N`: parameter and SE bias below 10% (5% for
the parameters of interest), coverage between .91 and .98, power at least .80.

Populations (:class:`Population`):

- ``lavaan``: any lavaan model with population values (``y ~ 0.3*x``, ``f =~ 0.7*x1 + ...``),
  with the conventions of ``lavaan::simulateData`` (:func:`lavaan_population`); data are
  multivariate normal draws from its implied moments;
- ``instrument``: the instrument and ``simulate:`` of params (:func:`analysis.simulate.simulate_study`):
  Likert answers with the study's defects and missing cells, cleaned by the clean stage's screens
  (:func:`analysis.clean.prepare`, :func:`analysis.clean.screen`) when asked, so screening and
  missing-data losses are part of the answer. :math:`N` is then the number of respondents
  invited (before duplicates and exclusions); the replication records the rows fitted.

Population values of the analysis model's parameters are its fit to the population moments
(:func:`population_values`: a data set whose sample moments are exactly the population's, so the
ML estimates are the population values in the analysis model's own parameterisation, e.g. a
marker-variable loading of 1). With Likert items (``instrument``) the unstandardised metric of the
fitted items is not the latent-response metric of the population, so recovery is judged on the
standardised solution (``std_all``, its delta-method SE) against the standardised population
values; the discretisation of a 7-point scale attenuates item correlations by a few percent, which
shows as bias there.

Randomness: replication :math:`r` at :math:`N` draws from
``numpy.random.SeedSequence(seed, spawn_key=(N, r))``, the child that ``SeedSequence(seed).spawn``
would give at that position of a tree indexed by :math:`N` and :math:`r`. So a replication's data do
not depend on the grid, on :math:`R`, or on where it ran: one process, many processes and a Dask
cluster (:func:`analysis.executor.run_tasks`) give the same records, bit for bit, and adding
replications keeps the earlier ones.

A replication that raises (a singular sample covariance at a small :math:`N`, a model the data
cannot identify) is recorded as failed with its reason and stays in the denominator of the
power over all replications.

References
----------
Muthén, L. K., & Muthén, B. O. (2002). How to use a Monte Carlo study to decide on sample size
    and determine power. Structural Equation Modeling 9(4), 599-620.
Satorra, A., & Saris, W. E. (1985). Power of the likelihood ratio test in covariance structure
    analysis. Psychometrika 50(1), 83-90.
Wang, Y. A., & Rhemtulla, M. (2021). Power analysis for parameter estimation in structural
    equation modeling: A discussion and tutorial. Advances in Methods and Practices in
    Psychological Science 4(1), 1-17.
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. Journal of
    Statistical Software 48(2), 1-36 (``simulateData``).

In R: ``simsem::sim(nRep = R, n = N, model = analysis, generate = population, lavaanfun = "sem")``
and ``summary()`` of it (power, bias, coverage), or a loop over ``lavaan::simulateData`` and
``lavaan::sem``.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from analysis.distributions import norm_ppf
from analysis.errors import InputError
from analysis.executor import run_tasks
from analysis.power import chisq_test_power
from analysis.sem.api import fit_model
from analysis.sem.model import build_model
from analysis.sem.options import Estimation
from analysis.sem.partable import lavaanify, variable_names
from analysis.structural import hypotheses_table
from analysis.warnings import GapscaleWarning, InadmissibleWarning

__all__ = ["AnalyticPower", "CHECK_COLUMNS", "FIT_COLUMNS", "MonteCarloSettings", "Population",
           "PopulationMoments", "PowerResult", "ReplicationTask", "aggregate", "analytic_grid",
           "analytic_power", "check_summary", "group_contrast_power", "group_information", "compare_power",
           "exact_moment_data", "instrument_population",
           "interpolate_n", "lavaan_population", "parameter_name", "population_values", "replicate",
           "replication_tasks", "run_power", "wald_power"]

FIT_COLUMNS = ("chisq", "df", "pvalue", "chisq_scaled", "pvalue_scaled", "cfi", "rmsea")
QUANTILES = (0.05, 0.50, 0.95)
CONSTRAINT_OPS = ("==", "<", ">", ":=")


# --------------------------------------------------------------------------- populations


@dataclass(frozen=True)
class PopulationMoments:
    """Implied moments of a population model: observed variables ``ov``, covariance ``sigma``
    and means ``mu`` (in ``ov`` order), and the parameter table with every value filled."""

    ov: tuple[str, ...]
    sigma: np.ndarray
    mu: np.ndarray
    partable: pd.DataFrame = field(repr=False, compare=False, default=None)


def lavaan_population(model: str, standardized: bool = False) -> PopulationMoments:
    r"""The implied covariance matrix and means of lavaan ``model`` syntax with population
    values, as ``lavaan::simulateData`` builds them.

    The syntax is read as ``simulateData`` reads it (lavaan 0.6): ``lavaanify`` with
    ``std.lv = TRUE``, ``auto.fix.first = FALSE``, ``auto.fix.single = FALSE``,
    ``fixed.x = FALSE``, ``int.ov.free = TRUE``, ``int.lv.free = FALSE`` and a mean structure only
    when the syntax has intercepts (``~ 1``). A value the syntax does not give is
    lavaan's: a loading 1 (0.7 with ``standardized``), a variance or residual variance 1, any
    other parameter 0 (a regression left at 0 is warned about, as lavaan warns). Then, with the
    LISREL matrices of :mod:`analysis.sem.model`,

    .. math::

        \Sigma = \Lambda (I-B)^{-1}\Psi(I-B)^{-\top}\Lambda^\top + \Theta,\qquad
        \mu = \nu + \Lambda(I-B)^{-1}\alpha .

    ``standardized = True`` is ``simulateData(standardized = TRUE)``: the residual variances of
    the latents that are not exogenous (lavaan's ``lv.nox``) are set to
    :math:`1 - \operatorname{diag}(A\Psi_0A^\top)` computed with all those residual variances at
    zero, then the residual variances of the observed variables (``ov.nox``) to
    :math:`1 - \operatorname{diag}\Sigma_0` with theirs at zero. As in lavaan this is one pass: a
    latent whose predictors are themselves endogenous (a chain
    :math:`f_1\to f_2\to f_3`) then has a variance above 1; it is lavaan's convention, kept so the
    same syntax gives the same population in R and here.

    Parameters
    ----------
    model : str
        lavaan syntax, one group; every value fixed or left to the defaults above. Constraints
        and defined parameters (``==``, ``:=``) are ignored.
    standardized : bool
        ``simulateData``'s ``standardized``.

    Returns
    -------
    PopulationMoments

    Raises
    ------
    InputError
        Bad syntax, ``group:`` blocks, or implied moments that are not a covariance matrix
        (not positive definite).

    Notes
    -----
    In R: ``fit <- attr(simulateData(model, sample.nobs = 100, return.fit = TRUE, standardized =
    ...), "fit"); lavInspect(fit, "implied")`` (``tests/reference/montecarlo_population.R``
    compares the two to 1e-12).
    """
    pt = lavaanify(model, std_lv=True, auto_fix_first=False, auto_fix_single=False, fixed_x=False,
                   conditional_x=False, int_ov_free=True, int_lv_free=False)
    if pt.loc[~pt["op"].isin(CONSTRAINT_OPS), "block"].nunique() > 1:
        raise InputError("population model: one group only (no group: blocks)")
    pt = pt[~pt["op"].isin(CONSTRAINT_OPS)].reset_index(drop=True)
    ustart = pt["ustart"].to_numpy(dtype=float).copy()
    op, lhs, rhs = pt["op"].to_numpy(), pt["lhs"].to_numpy(), pt["rhs"].to_numpy()
    unset = np.isnan(ustart)
    ustart[unset & (op == "=~")] = 0.7 if standardized else 1.0
    ustart[unset & (op == "~~") & (lhs == rhs)] = 1.0
    zero_paths = unset & (op == "~")
    if zero_paths.any():
        names = ", ".join(f"{a} ~ {b}" for a, b in zip(lhs[zero_paths], rhs[zero_paths]))
        warnings.warn(f"population model: regression coefficients without a value are set to zero ({names}), "
                      "as lavaan::simulateData does", GapscaleWarning, stacklevel=2)
    ustart[np.isnan(ustart)] = 0.0
    pt["ustart"] = ustart
    pt["free"] = 0
    if standardized:
        user = pt["user"].to_numpy() == 1 if "user" in pt.columns else np.ones(len(pt), dtype=bool)
        kinds = variable_names(lhs[user], op[user], rhs[user])
        lv_nox = [v for v in kinds["lv"] if v not in set(kinds["lv_x"])]
        ov_nox = kinds["ov_nox"]
        var = (op == "~~") & (lhs == rhs)
        lv_rows = np.flatnonzero(var & np.isin(lhs, lv_nox))
        ov_rows = np.flatnonzero(var & np.isin(lhs, ov_nox))
        ustart[np.concatenate([lv_rows, ov_rows])] = 0.0
        pt["ustart"] = ustart
        model_ = build_model(pt)
        veta = model_.latent_moments(np.zeros(0))[0][0]
        lv = list(model_.blocks[0].lv)
        ustart[lv_rows] = 1.0 - np.diag(veta)[[lv.index(v) for v in lhs[lv_rows]]]
        pt["ustart"] = ustart
        model_ = build_model(pt)
        sigma0 = model_.implied(np.zeros(0))[0][0]
        ov = list(model_.blocks[0].ov)
        ustart[ov_rows] = 1.0 - np.diag(sigma0)[[ov.index(v) for v in lhs[ov_rows]]]
        pt["ustart"] = ustart
    built = build_model(pt)
    sigma, mu = built.implied(np.zeros(0))[0]
    ov = tuple(built.blocks[0].ov)
    if np.linalg.eigvalsh(sigma).min() <= 1e-12 * max(1.0, float(np.abs(sigma).max())):
        raise InputError("population model: the implied covariance matrix is not positive definite; check the "
                         "values (a residual variance below zero, a correlation above 1)")
    return PopulationMoments(ov=ov, sigma=sigma, mu=np.asarray(mu, dtype=float), partable=pt)


@dataclass(frozen=True)
class Population:
    """What a replication draws its data from.

    ``kind = "lavaan"``: multivariate normal draws from ``moments``.
    ``kind = "instrument"``: :func:`analysis.simulate.simulate_study` of ``instrument`` with
    ``simulation`` (its ``n`` replaced by the replication's :math:`N`), then, with ``screens``,
    the clean stage's screens (``None``: prepared and reverse keys recoded, nobody excluded);
    ``moments`` are then the continuous latent-response population (for the population values).
    """

    kind: str
    moments: PopulationMoments
    instrument: object = None
    simulation: object = None
    screens: object = None


def instrument_population(instrument, simulation, screens=None) -> Population:
    """The ``instrument`` population of ``simulate:`` (``simulation``, a
    :class:`~analysis.simulate.SimulationParams`), cleaned with ``screens`` (a
    :class:`~analysis.clean.ScreenParams`, or None for no exclusions). Its moments are those of
    :meth:`analysis.simulate.PopulationModel.to_lavaan` (the continuous latent responses)."""
    from analysis.simulate import population_model

    pop = population_model(instrument, simulation, None)
    return Population(kind="instrument", moments=lavaan_population(pop.to_lavaan()), instrument=instrument,
                      simulation=replace(simulation, personal_data=False), screens=screens)


def exact_moment_data(moments: PopulationMoments, n: int) -> pd.DataFrame:
    r"""``n`` rows whose sample covariance (N denominator) and means are exactly ``sigma`` and
    ``mu``: :math:`X = Z S_Z^{-1/2} L^\top + \mathbf 1\mu^\top` with :math:`Z` centred
    deterministic rows, :math:`S_Z = LL^\top` Cholesky factors. An ML fit to it is the fit to the
    population moments (``lavaan(model, sample.cov = Sigma, sample.mean = mu, sample.nobs = n)``)."""
    p = len(moments.ov)
    if n <= p:
        raise InputError(f"exact moments need more rows than the {p} variables, got {n}")
    z = np.random.default_rng(0).standard_normal((n, p))
    z -= z.mean(axis=0)
    s = z.T @ z / n
    z = z @ np.linalg.inv(np.linalg.cholesky(s)).T
    x = z @ np.linalg.cholesky(moments.sigma).T + moments.mu
    return pd.DataFrame(x, columns=list(moments.ov))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class MonteCarloSettings:
    """How each replication is analysed: lavaan ``model`` syntax, ``hypotheses`` (the hypotheses
    file's mapping; ``source: invariance`` entries are left out), ``estimator``, ``missing``,
    ``std_lv``, ``ordered`` (WLSMV/ULSMV), ``alpha`` (the tests' level; intervals at
    :math:`1-\alpha`)."""

    model: str
    hypotheses: dict = field(default_factory=dict)
    estimator: str = "ML"
    missing: str = "listwise"
    std_lv: bool = False
    ordered: tuple = ()
    alpha: float = 0.05

    def __post_init__(self):
        e = Estimation(self.estimator, self.missing, self.ordered, self.std_lv)
        object.__setattr__(self, "estimator", e.estimator)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 0.5:
            raise InputError(f"alpha: a level between 0 and 0.5, got {self.alpha!r}")
        testable = {h: s for h, s in (self.hypotheses or {}).items()
                    if isinstance(s, dict) and s.get("source") != "invariance"}
        object.__setattr__(self, "hypotheses", testable)

    @property
    def estimation(self) -> Estimation:
        return Estimation(self.estimator, self.missing, self.ordered, self.std_lv)


def parameter_name(lhs: str, op: str, rhs: str, label: str = "") -> str:
    """lavaan's name of a parameter (``names(coef(fit))``): its label, else ``lhs op rhs``
    written together (``f=~x2``, ``y~x``, ``x1~~x1``); a defined parameter is its name."""
    if isinstance(label, str) and label:
        return label
    return lhs if op == ":=" else f"{lhs}{op}{rhs}"


def _fit(data: pd.DataFrame, settings: MonteCarloSettings, se: bool = True):
    ordered = settings.estimation.ordered_columns(settings.model, data) if settings.estimation.ordinal else None
    return fit_model(settings.model, data, estimator=settings.estimator, missing=settings.missing,
                     std_lv=settings.std_lv, ordered=ordered, level=1 - settings.alpha, robust_indices=False, se=se)


def _reported(parameters: pd.DataFrame) -> pd.DataFrame:
    """The rows a power study reports: free parameters (a standard error above 0) and defined ones."""
    p = parameters
    keep = (p["op"] == ":=") | (p["se"].fillna(0) > 0)
    out = p.loc[keep].copy()
    out.insert(0, "name", [parameter_name(a, o, b, lab) for a, o, b, lab in
                           zip(out["lhs"], out["op"], out["rhs"], out["label"])])
    return out.reset_index(drop=True)


def population_values(population: Population, settings: MonteCarloSettings, n: int | None = None) -> pd.DataFrame:
    r"""The analysis model's parameters in the population: its ML fit (complete data) to data
    with exactly the population moments (:func:`exact_moment_data`), one row per reported
    parameter (free or defined): ``name, lhs, op, rhs, label, est, se, std_all, std_all_se``.

    ``se`` is the asymptotic standard error at ``n`` rows (default ``max(1000, 2p)``):
    :math:`\sqrt{[\mathcal I(\theta_0)^{-1}]_{jj}/n}` from the engine's expected information at
    the population values, the basis of :func:`wald_power`. It scales as :math:`1/\sqrt n`.

    Raises
    ------
    InputError
        The analysis model names variables the population does not have.
    """
    p = len(population.moments.ov)
    n = n or max(1000, 2 * p + 2)
    data = exact_moment_data(population.moments, n)
    missing_cols = [v for v in _model_observed(settings.model) if v not in set(population.moments.ov)]
    if missing_cols:
        raise InputError(f"the analysis model's variable(s) {', '.join(missing_cols[:5])} are not in the population "
                         f"model (its variables: {', '.join(population.moments.ov[:8])}...)")
    base = replace(settings, estimator="ML", missing="listwise", ordered=())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GapscaleWarning)
        fitted = _fit(data, base)
    notes = [str(w.message) for w in caught if issubclass(w.category, GapscaleWarning)]
    if not fitted.converged:
        raise InputError("the analysis model does not converge on the population moments: "
                         + "; ".join(notes or ["no further detail"]))
    if settings.hypotheses:  # a hypothesis naming no parameter of the model: refused here, not in every replication
        hypotheses_table(fitted.parameters, settings.hypotheses, "ci")
    table = _reported(fitted.parameters)
    table.attrs["n"] = n
    table.attrs["chisq"] = float(fitted.fit["chisq"])  # > 0: the analysis model is misspecified
    table.attrs["df"] = int(fitted.fit["df"])
    table.attrs["warnings"] = notes
    return table[["name", "lhs", "op", "rhs", "label", "est", "se", "std_all", "std_all_se"]]


def _model_observed(model: str) -> list[str]:
    pt = lavaanify(model)
    lv = set(pt.loc[pt["op"] == "=~", "lhs"])
    rows = pt[~pt["op"].isin(CONSTRAINT_OPS)]
    names = list(dict.fromkeys(list(rows["lhs"]) + [r for r, o in zip(rows["rhs"], rows["op"]) if o != "~1"]))
    return [v for v in names if v not in lv and v != ""]


def wald_power(value: np.ndarray, se: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    r"""Power of the two-sided Wald test of :math:`\theta = 0` when the true value is
    ``value`` and the estimate's standard error ``se``:

    .. math::

        \lambda = (\theta_0/\mathrm{SE})^2,\qquad
        1-\beta = P\{\chi^2_1(\lambda) > \chi^2_{1,1-\alpha}\}
        = \Phi(|\delta| - z_{1-\alpha/2}) + \Phi(-|\delta| - z_{1-\alpha/2}),\ \delta = \theta_0/\mathrm{SE}

    (Satorra & Saris 1985 for one parameter). With ``se`` from :func:`population_values` at
    :math:`N` this is the asymptotic power at :math:`N`. It counts a rejection in either
    direction; the Monte Carlo power counts the expected direction only, which differs by
    :math:`\Phi(-|\delta| - z_{1-\alpha/2})` (negligible once the power is of interest).

    In R: ``pchisq(qchisq(1 - alpha, 1), 1, ncp = (value / se)^2, lower.tail = FALSE)``.
    """
    value, se = np.asarray(value, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ncp = (value / se) ** 2
    return chisq_test_power(ncp, 1, alpha)


# --------------------------------------------------------------------------- analytic power


@dataclass(frozen=True)
class AnalyticPower:
    r"""The analytic (asymptotic) power of :func:`analytic_power`.

    Attributes
    ----------
    paths : DataFrame
        One row per reported parameter: ``name, lhs, op, rhs, label, hypotheses, expected,
        population`` (its standardised population value), ``se1`` (the standard deviation of its
        standardised estimate per invited respondent: the SE at N is ``se1 / sqrt(N)``),
        ``n_required`` (the N at which its Wald test reaches the target power, interpolated on the
        grid; NaN if not reached) and ``power_<N>`` columns are not kept: see ``curve``.
    hypotheses : DataFrame
        One row per (N, hypothesis) of the fine grid: ``n, hypothesis, power``.
    required_n : DataFrame
        One row per hypothesis: ``hypothesis, statement, target, n_required`` (interpolated on the
        grid), ``n_grid`` (the smallest grid N with power at the target), ``power_at_largest_n``,
        ``note`` (why it is not reached, e.g. a population value below ``min_effect``).
    basis : dict
        How the information was obtained: ``rows_invited, rows_kept, rows_complete,
        missing_cell_share, effective_share`` (effective rows per invited respondent), ``draws``.
    covariance : DataFrame
        The estimates' covariance per invited respondent (rows and columns: the names of
        ``paths``; the covariance at N is it divided by N), with ``paths["value"]`` the population
        value of each estimate in the large study's metric (step 3 below).
    """

    paths: pd.DataFrame
    hypotheses: pd.DataFrame
    required_n: pd.DataFrame
    basis: dict
    covariance: pd.DataFrame | None = None


def analytic_grid(n_min: int = 50, n_max: int = 20000, step: float = 1.04) -> list[int]:
    """A geometric grid of N from ``n_min`` to ``n_max`` (ratio ``step`` between neighbours, rounded
    to whole respondents, repeats dropped): the grid the analytic power is read on."""
    if not 2 <= n_min < n_max:
        raise InputError(f"analytic grid: 2 <= n_min < n_max, got {n_min!r}, {n_max!r}")
    k = int(math.ceil(math.log(n_max / n_min) / math.log(step)))
    return sorted({int(round(n_min * step ** i)) for i in range(k)} | {int(n_max)})


def _resolve(names, lhs, op, rhs, ref: str):
    """The reported name a hypothesis reference (label, := name or ``"lhs op rhs"``, either way round)
    means, or None."""
    names = list(names)
    if ref in names:
        return ref
    parts = ref.split()
    if len(parts) == 3:
        for cand in (parameter_name(*parts), parameter_name(parts[2], parts[1], parts[0])):
            if cand in names:
                return cand
        for a, o, b in ((parts[0], parts[1], parts[2]), (parts[2], parts[1], parts[0])):
            for nm, l_, o_, r_ in zip(names, lhs, op, rhs):
                if (l_, o_, r_) == (a, o, b):
                    return nm
    return None


def _estimate_jacobians(fitted) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""``(names, est, std_all, J_est, J_std)`` of every free and defined parameter of ``fitted``:
    the estimates, their standardised (std.all) values, and the Jacobians of both in the free
    parameters :math:`x` (the identity for a free parameter's estimate; central differences of the
    defined parameters and of :func:`analysis.sem.inference.standardized_values` otherwise), so that
    :math:`J\,\widehat{\operatorname{Var}}(\hat x)\,J^\top` is their joint delta-method covariance
    (the delta method of ``se`` and ``std_all_se``, with the covariances kept)."""
    from analysis.sem.constraints import build_constraints, jacobian
    from analysis.sem.inference import standardized_values

    model = fitted.model
    pt = model.partable
    cons = build_constraints(pt)
    free = np.asarray(model.free)
    keep = [k for k in range(len(pt)) if free[k] > 0]
    names = [parameter_name(pt["lhs"].iat[k], pt["op"].iat[k], pt["rhs"].iat[k], pt["label"].iat[k]) for k in keep]
    idx = list(keep)
    for j, (k, _, _) in enumerate(cons.defined):
        names.append(pt["lhs"].iat[k])
        idx.append(len(pt) + j)
    idx = np.asarray(idx)
    q = len(fitted.x)

    def std(xx):
        return standardized_values(model, cons, xx, "all")[idx]

    def est(xx):
        rows = model.row_values(xx)
        defined = cons.defined_values(rows) if cons.defined else np.zeros(0)
        return np.concatenate([rows[keep], defined])

    j_std = np.nan_to_num(jacobian(std, fitted.x))
    j_est = np.zeros((len(names), q))
    j_est[np.arange(len(keep)), free[keep] - 1] = 1.0
    if cons.defined:  # through the (free) rows the definitions use: a row's value is its free parameter's
        base = model.row_values(fitted.x)
        used = np.array(sorted({r for _, _, e in cons.defined for r in e.rows if r >= 0 and free[r] > 0}), dtype=int)

        def defined_of(v):
            rows = base.copy()
            rows[used] = v
            return cons.defined_values(rows)

        d = np.nan_to_num(jacobian(defined_of, base[used]))
        np.add.at(j_est[len(keep):].T, free[used] - 1, d.T)
    return names, est(fitted.x), std(fitted.x), j_est, j_std


def analytic_power(population: Population, settings: MonteCarloSettings, grid: Sequence[int], seed: int,
                   rows: int = 4000, draws: int = 4000, target: float = 0.80,
                   truth: pd.DataFrame | None = None) -> AnalyticPower:
    r"""Power per parameter and per hypothesis from the asymptotic distribution of the estimates,
    on a fine grid of N, without replications.

    1. **Effect sizes**: the population values of the analysis model on the standardised scale
       (:func:`population_values`, ``std_all``: the fit to the exact population moments, no
       sampling error).
    2. **Information**: one large simulated study of ``rows`` respondents from the population
       (:func:`draw_data`: with the instrument, the Likert answers with the defects, missing
       cells and screens of a replication); the analysis model fitted by ML to its moments (each
       covariance from the rows answering both items, :func:`exact_moment_data`). The delta-method
       covariance of the estimates and of their standardised values (:func:`_estimate_jacobians`,
       expected information), times the kept rows, is the covariance per kept respondent
       :math:`V_1`; the respondents an invited one is worth are
       :math:`e = n_{\text{kept}}/n_{\text{invited}}\cdot(1-m)` with FIML (:math:`m` the share of
       missing item cells among the kept rows: the information FIML cannot recover is taken as
       that share, an approximation the Monte Carlo check measures) or
       :math:`n_{\text{complete}}/n_{\text{invited}}` listwise.
    3. **Centre**: each estimate's population value in the large study's metric,
       :math:`\theta_{0j} = \beta_{0j}\,\hat\theta_j/\hat\beta_j` (the population's standardised
       value times the study's ratio of estimate to standardised estimate, a ratio of scales its
       sampling error hardly moves). At :math:`N` invited the estimates and their standardised
       values are jointly normal around :math:`(\theta_0, \beta_0)` with covariance
       :math:`V_1/(eN)`.
    4. **Power of a parameter**: :func:`wald_power` of :math:`\theta_{0j}` with its
       :math:`\mathrm{SE}_j(N)` (Satorra & Saris 1985): the Wald test of the *estimate*, as the study
       tests it. (The standardised estimate's z is larger for large effects: at the default study's
       population, :math:`a_1 = -.40`: z 47 per respondent-root against 38 for the estimate; using it
       overstated H3's power at N = 800 listwise, .62 against a Monte Carlo .52.)
    5. **Power of a hypothesis**: ``draws`` draws of its parts from that normal distribution
       (one set of standard normal draws for every :math:`N`, so the curve is smooth); a draw
       supports a part when the Wald interval of its estimate at level :math:`1-\alpha` excludes
       zero on the expected side and, with ``min_effect``, its standardised value
       :math:`|\hat\beta_j| \ge` ``min_effect`` (the rule of
       :func:`analysis.structural.hypotheses_table`); the power is the share of draws supporting
       every part. Its Monte Carlo error is below :math:`\sqrt{.25/\text{draws}}` (.008 at 4,000).
    6. **N needed**: :func:`interpolate_n` on ``grid`` (the first crossing of ``target``).

    The delta method for products (indirect effects) is the Wald test the study itself uses with
    ``interval: ci`` (the sem stage decides by bootstrap intervals, which for a product are a little
    more powerful). ``std_all`` of the population is the continuous latent-response metric: the
    7-point discretisation attenuates item correlations by a few percent, absorbed by the loadings,
    and the standardised structural values of a 16,000-row Likert study are within 3% of the
    population's (r1-r8 within 9%, their own sampling error).

    Parameters
    ----------
    population, settings
        As :func:`run_power` (``settings.estimator`` ML, MLR or MLM: the ML estimates and their
        information; the robust SEs of MLR are not used).
    grid : sequence of int
        N (invited respondents with an instrument population), e.g. :func:`analytic_grid`.
    seed : int
        The large study's data come from ``SeedSequence(seed, spawn_key=(0, rows))`` and the
        hypotheses' draws from ``spawn_key=(1, rows)``: a replication's key is ``(N, r)`` with
        :math:`N \ge 2`, so neither stream is one of theirs.
    rows : int
        Respondents (invited) of the large simulated study.
    draws : int
        Draws per N for the hypotheses.
    truth : DataFrame, optional
        :func:`population_values`, when already computed.

    Returns
    -------
    AnalyticPower

    Raises
    ------
    InputError
        An estimator other than ML, MLR, MLM (the ordinal estimators' information is not the
        ML information), a grid that is not increasing, or a large study too small to fit.

    Notes
    -----
    In R the same numbers come from ``semTools``-free arithmetic on a lavaan fit: with
    ``fit <- sem(model, data = big, missing = "listwise")``, ``J`` the Jacobian of
    ``standardizedSolution(fit)$est.std`` in ``coef(fit)`` and ``V1 <- J %*% vcov(fit) %*% t(J) *
    nobs(fit)``, ``pnorm(abs(b0) / sqrt(diag(V1) / (e * N)) - qnorm(1 - alpha / 2))`` (plus the
    other tail) for one path and ``MASS::mvrnorm`` draws for a hypothesis.
    """
    if settings.estimator not in ("ML", "MLR", "MLM"):
        raise InputError(f"estimator: the analytic power needs ML information (ML, MLR or MLM), got "
                         f"{settings.estimator!r}; use the Monte Carlo power (power.replications)")
    grid = check_grid(grid)
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 50:
        raise InputError(f"rows: the large study's respondents, a whole number >= 50, got {rows!r}")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 100:
        raise InputError(f"draws: a whole number >= 100, got {draws!r}")
    truth = population_values(population, settings) if truth is None else truth
    data = draw_data(population, int(rows), np.random.SeedSequence(int(seed), spawn_key=(0, int(rows))))
    observed = [v for v in _model_observed(settings.model) if v in data.columns]
    kept = len(data)
    complete = int(data[observed].notna().all(axis=1).sum())
    if complete <= len(observed) + 1:
        raise InputError(f"rows: {rows} invited leave {complete} complete rows, too few to fit the model; "
                         "give more rows")
    missing_share = float(data[observed].isna().to_numpy().mean()) if kept else math.nan
    # the moments of the kept rows, each covariance from the rows that have both answers (MCAR cells)
    x = data[observed].to_numpy(dtype=float)
    moments = PopulationMoments(ov=tuple(observed), sigma=pd.DataFrame(x).cov(ddof=0).to_numpy(),
                                mu=np.nanmean(x, axis=0))
    base = replace(settings, estimator="ML", missing="listwise", ordered=())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GapscaleWarning)
        fitted = _fit(exact_moment_data(moments, kept), base)
    names, est_big, std_big, j_est, j_std = _estimate_jacobians(fitted)
    vx = fitted.vcov * kept  # per kept respondent
    effective = (kept / rows * (1 - missing_share)) if settings.missing == "fiml" else complete / rows
    # per invited respondent: the estimates' and the standardised values' variances
    var_est = np.einsum("ij,jk,ik->i", j_est, vx, j_est) / effective
    var_std = np.einsum("ij,jk,ik->i", j_std, vx, j_std) / effective
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(std_big != 0, est_big / std_big, np.nan)  # the large study's metric per std unit

    pop = truth.set_index("name")
    where = {nm: k for k, nm in enumerate(names)}
    common = [nm for nm in truth["name"] if nm in where]
    alpha = settings.alpha
    zc = norm_ppf(1 - alpha / 2)
    n = np.asarray(grid, dtype=float)

    expected = {}
    for h, spec in settings.hypotheses.items():
        for ref, sign in (spec.get("expect") or {}).items():
            nm = _resolve(truth["name"], truth["lhs"], truth["op"], truth["rhs"], ref)
            if nm is not None:
                expected.setdefault(nm, [sign, []])[1].append(h)
    def centre(nm):  # the population's standardised value in the large study's metric
        k = where[nm]
        b0 = float(pop.loc[nm, "std_all"])
        return b0 * scale[k] if np.isfinite(scale[k]) else float(est_big[k])

    path_rows = []
    for nm in common:
        t, k = pop.loc[nm], where[nm]
        b0, theta = float(t["std_all"]), centre(nm)
        se_est = math.sqrt(max(var_est[k], 0.0))
        curve = wald_power(np.full(len(n), theta), se_est / np.sqrt(n), alpha) if se_est > 0 else np.zeros(len(n))
        _, n_req, _ = interpolate_n(grid, curve, target)
        sign, hyps = expected.get(nm, ["", []])
        path_rows.append({"name": nm, "lhs": t["lhs"], "op": t["op"], "rhs": t["rhs"], "label": t["label"],
                          "hypotheses": " ".join(hyps), "expected": sign, "population": b0,
                          "se1": math.sqrt(max(var_std[k], 0.0)), "z1": theta / se_est if se_est > 0 else math.nan,
                          "n_required": n_req, "value": theta})
    paths = pd.DataFrame(path_rows)
    kc = [where[nm] for nm in common]
    covariance = pd.DataFrame(j_est[kc] @ vx @ j_est[kc].T / effective, index=common, columns=common)

    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, int(rows))))
    hyp_rows, req = [], []
    for h, spec in settings.hypotheses.items():
        refs = list((spec.get("expect") or {}).items())
        parts = [(_resolve(truth["name"], truth["lhs"], truth["op"], truth["rhs"], r), s) for r, s in refs]
        min_effect = spec.get("min_effect")
        note = ""
        if any(nm is None or nm not in where for nm, _ in parts):
            power = np.full(len(n), math.nan)
            note = "a part names no parameter of the analysis model"
        else:
            k = [where[nm] for nm, _ in parts]
            m = len(k)
            b0 = np.array([float(pop.loc[nm, "std_all"]) for nm, _ in parts])
            theta = np.array([centre(nm) for nm, _ in parts])
            sgn = np.array([1.0 if s == "positive" else -1.0 for _, s in parts])
            jac = np.vstack([j_est[k], j_std[k]])  # the estimates and their standardised values, jointly
            c = jac @ vx @ jac.T / effective
            w, u = np.linalg.eigh(0.5 * (c + c.T))
            root = u * np.sqrt(np.clip(w, 0, None))  # c = root @ root.T (semi-definite: a product's)
            z = rng.standard_normal((int(draws), 2 * m)) @ root.T
            se1 = np.sqrt(np.clip(np.diag(c)[:m], 0, None))
            power = np.empty(len(n))
            for g, ng in enumerate(n):
                b = theta + z[:, :m] / math.sqrt(ng)
                ok = (sgn * b - zc * se1 / math.sqrt(ng)) > 0  # the Wald interval of the estimate
                if min_effect is not None:
                    ok &= np.abs(b0 + z[:, m:] / math.sqrt(ng)) >= float(min_effect)  # its standardised size
                power[g] = ok.all(axis=1).mean()
            if min_effect is not None:
                small = [nm for (nm, _), v in zip(parts, b0) if abs(v) < float(min_effect)]
                if small:
                    note = (f"population value of {', '.join(small)} below min_effect {float(min_effect):g} "
                            f"({', '.join(f'{abs(v):.4f}' for (nm, _), v in zip(parts, b0) if nm in small)}): "
                            "no N reaches it")
        for ng, pw in zip(grid, power):
            hyp_rows.append({"n": ng, "hypothesis": h, "power": float(pw)})
        n_grid, n_req, why = interpolate_n(grid, power, target)
        req.append({"hypothesis": h, "statement": spec.get("statement", ""), "target": target,
                    "n_grid": n_grid, "n_required": n_req,
                    "power_at_largest_n": float(power[-1]), "note": note or why})
    basis = {"rows_invited": int(rows), "rows_kept": int(kept), "rows_complete": int(complete),
             "missing_cell_share": missing_share, "effective_share": effective, "draws": int(draws),
             "n_min": int(grid[0]), "n_max": int(grid[-1]), "grid_points": len(grid)}
    return AnalyticPower(paths=paths, hypotheses=pd.DataFrame(hyp_rows, columns=["n", "hypothesis", "power"]),
                         required_n=pd.DataFrame(req, columns=["hypothesis", "statement", "target", "n_grid",
                                                               "n_required", "power_at_largest_n", "note"]),
                         basis=basis, covariance=covariance)


def group_information(instrument, simulation, settings: MonteCarloSettings, parameters: Sequence[str],
                      analytic: AnalyticPower, truth: pd.DataFrame, n: int = 1000) -> dict:
    r"""Per group of ``simulate.groups`` (``simulation.groups``), the population values of
    ``parameters`` and their covariance per invited respondent of the group, for
    :func:`analysis.power.contrast_power`.

    Each group's population (every value of the group column) is the study's with that group's
    ``structural`` overrides, if any (as :func:`analysis.simulate.simulate_study` plants them), and
    no groups. The analysis model is
    fitted by ML to its exact moments (:func:`exact_moment_data`, ``n`` rows, started from the
    whole population's values, ``truth``; groups with the same overrides share one fit): the estimates
    :math:`b_g` and :math:`V^{\text{pop}}_g = n\,\widehat{\operatorname{Var}}` per complete
    respondent of the continuous latent responses, in the marker loading's metric, common to the
    groups when their loadings are equal (no ``loadings`` or ``intercepts`` overrides). What the
    study's defects, screens, missing cells and 7-point answers cost is taken from the whole
    study's analytic power (``analytic``, ``truth``: :func:`analytic_power` and
    :func:`population_values` of the population without groups): per parameter the respondents an
    invited one is worth, :math:`e_k = (z^{\text{study}}_{1k}/z^{\text{pop}}_{1k})^2`, the ratio of
    its squared Wald z per respondent in the simulated study and in the population (metric-free),
    assumed the same in every group; then :math:`V_{g,kl} = V^{\text{pop}}_{g,kl}/\sqrt{e_k e_l}`
    per invited respondent of the group (``analytic.basis["effective_share"]`` where the
    parameter is zero in the population).

    An approximation, chosen for its cost (two fits to exact moments, about 2 CPU-s for the default
    study, where a simulated study per group costs 5 and at 2,000 rows has 7% sampling error in z):
    the loss to missing cells grows with a path's size, so a loss measured where the path is small
    (the whole study's r2 = r5 = .10) understates it where it is large. Against each group's own
    simulated study of 16,000 invited (``tests/test_power_contrasts.py``, slow) the default study's
    z per respondent is 3% (B2B, r2 = .35) and 7% (B2C, r5 = .35) too large: the N 6-14% too small.

    Parameters
    ----------
    instrument, simulation
        As :func:`instrument_population`.
    settings : MonteCarloSettings
        The analysis model (its hypotheses are not used).
    parameters : sequence of str
        Labels or ``"lhs op rhs"`` of the analysis model's parameters.
    analytic, truth
        The whole study's :func:`analytic_power` and :func:`population_values`.
    n : int
        Rows of the exact-moment data (only the scale of the reported SEs; the result is per
        respondent).

    Returns
    -------
    dict
        ``{group: {"values": K array, "covariance": K x K array, "measurement_overrides": bool}}``
        and ``"efficiency"``: the K values :math:`e_k`.

    Raises
    ------
    InputError
        No ``simulate.groups`` values, a parameter the analysis model does not have, or a group
        population the analysis model does not converge on.
    """
    values = (simulation.groups or {}).get("values") or {}
    if not values:
        raise InputError("simulate.groups: no group values, so no group-specific population")
    names = []
    for ref in parameters:
        nm = _resolve(truth["name"], truth["lhs"], truth["op"], truth["rhs"], str(ref))
        if nm is None:
            raise InputError(f"{ref}: not a parameter of the analysis model")
        names.append(nm)
    pop = truth.set_index("name")
    z1 = analytic.paths.set_index("name")["z1"]
    efficiency = []
    for nm in names:
        z_pop = float(pop.loc[nm, "est"]) / (float(pop.loc[nm, "se"]) * math.sqrt(truth.attrs.get("n", 1000)))
        e = (float(z1[nm]) / z_pop) ** 2 if z_pop != 0 and np.isfinite(z1.get(nm, np.nan)) else math.nan
        efficiency.append(e if np.isfinite(e) and e > 0 else float(analytic.basis["effective_share"]))
    root = np.sqrt(np.asarray(efficiency))
    base = replace(settings, hypotheses={}, estimator="ML", missing="listwise", ordered=())
    out, done = {}, {}
    column = (simulation.groups or {}).get("column")
    question = next((q for q in instrument.context if q.id == column), None)
    every = list(question.values) if question is not None and getattr(question, "values", None) else list(values)
    for value in every:  # a group without overrides has the study's population
        spec = values.get(value) or {}
        key = repr(sorted((o, sorted(p.items())) for o, p in spec.get("structural", {}).items()))
        if key not in done:
            structural = {o: dict(preds) for o, preds in simulation.structural.items()}
            for outcome, preds in spec.get("structural", {}).items():
                structural.setdefault(outcome, {}).update(preds)
            population = instrument_population(instrument, replace(simulation, structural=structural, groups={}))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GapscaleWarning)
                fitted = fit_model(base.model, exact_moment_data(population.moments, int(n)), estimator="ML",
                                   std_lv=base.std_lv, robust_indices=False, start=truth)
            if not fitted.converged:
                raise InputError(f"simulate.groups.values.{value}: the analysis model does not converge on the "
                                 "group's population moments")
            pt = fitted.model.partable
            free = np.asarray(fitted.model.free)
            index = {parameter_name(pt["lhs"].iat[r], pt["op"].iat[r], pt["rhs"].iat[r], pt["label"].iat[r]):
                     free[r] - 1 for r in range(len(pt)) if free[r] > 0}
            k = [index[nm] for nm in names]
            done[key] = (np.asarray(fitted.x)[k], np.asarray(fitted.vcov)[np.ix_(k, k)] * int(n) / np.outer(root, root))
        out[str(value)] = {"values": done[key][0], "covariance": done[key][1],
                           "measurement_overrides": bool(spec.get("loadings") or spec.get("intercepts"))}
    out["efficiency"] = efficiency
    return out


def group_contrast_power(instrument, simulation, settings: MonteCarloSettings, contrasts: Sequence[dict],
                         analytic: AnalyticPower, truth: pd.DataFrame, shares: dict, grid: Sequence[int],
                         seed: int, alpha: float = 0.05, min_group_size: int = 0, draws: int = 4000,
                         target: float = 0.80) -> dict:
    r"""The analytic power of a hypothesis' directional group contrasts on the paths
    (``contrasts``: dicts with ``parameter, direction, groups, than``), each part alone and all
    of them with Holm's adjustment, on ``grid`` (N invited): :func:`group_information` for each
    group's values and covariance per invited respondent, :func:`analysis.power.contrast_power`
    for the power (``shares``: each group's share of N whose rows the analysis uses, e.g. its share
    of respondents times the CFA half; the share kept by the screens is the whole study's,
    ``analytic.basis``), :func:`interpolate_n` for the N at ``target``.

    Returns
    -------
    dict
        ``n_required, n_grid, power_at_largest_n, note`` of the joint test, ``alpha,
        min_group_size, efficiency``, ``parts`` (per contrast: ``parameter, effect`` (the
        population contrast in the marker metric), ``z1`` (its z per root invited respondent with
        every group fitted), ``n_required``) and ``curve`` (``n``, ``power``).

    Raises
    ------
    InputError
        As :func:`group_information`; a contrast group without a share.
    """
    from analysis.power import contrast_power

    info = group_information(instrument, simulation, settings, [c["parameter"] for c in contrasts], analytic, truth)
    groups = [g for g in info if g != "efficiency"]
    missing = [g for c in contrasts for g in list(c["groups"]) + list(c["than"]) if g not in groups or g not in shares]
    if missing:
        raise InputError(f"group {missing[0]!r}: no simulate.groups population or no share of respondents")
    values = {g: info[g]["values"] for g in groups}  # the parts' parameters in each group
    covs = {g: info[g]["covariance"] for g in groups}  # and their covariance per invited respondent
    pairs = [(list(c["groups"]), list(c["than"])) if c["direction"] == "larger_in"
             else (list(c["than"]), list(c["groups"])) for c in contrasts]
    kept = analytic.basis["rows_kept"] / analytic.basis["rows_invited"]
    grid = check_grid(grid)
    res = contrast_power(values, covs, {g: float(shares[g]) for g in groups}, pairs, grid, alpha=alpha,
                         min_group_size=min_group_size, kept={g: kept for g in groups}, draws=draws, seed=seed)
    n_grid, n_req, why = interpolate_n(grid, res["joint"], target)
    parts = []
    for k, c in enumerate(contrasts):
        _, nk, _ = interpolate_n(grid, res["parts"][k], target)
        parts.append({"parameter": c["parameter"], "effect": float(res["effect"][k]),
                      "z1": float(res["effect"][k] / res["se1"][k, -1]), "n_required": nk})
    note = why
    if any(info[g]["measurement_overrides"] for g in groups):
        note = ("; ".join(x for x in (why, "some groups' loadings or intercepts differ: the metric is not common, "
                                            "the power approximate") if x))
    return {"n_required": n_req, "n_grid": n_grid, "power_at_largest_n": float(res["joint"][-1]), "note": note,
            "alpha": alpha, "min_group_size": int(min_group_size), "efficiency": list(info["efficiency"]),
            "parts": parts, "curve": {"n": list(grid), "power": [float(v) for v in res["joint"]]}}


# --------------------------------------------------------------------------- replications


@dataclass(frozen=True)
class ReplicationTask:
    """One replication: ``n`` rows (respondents), replication index ``replication`` (0-based),
    its own ``seed`` (a ``SeedSequence``), the ``population`` and the ``settings``."""

    n: int
    replication: int
    seed: np.random.SeedSequence
    population: Population
    settings: MonteCarloSettings


def replication_tasks(population: Population, settings: MonteCarloSettings, grid: Sequence[int],
                      replications: int, seed: int) -> list[ReplicationTask]:
    """One task per (N, replication), N in ``grid`` order; replication r at N seeded by
    ``SeedSequence(seed, spawn_key=(N, r))`` (see the module docstring)."""
    grid = check_grid(grid)
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) or replications < 1:
        raise InputError(f"replications: a whole number >= 1, got {replications!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: a whole number >= 0, got {seed!r}")
    return [ReplicationTask(n=n, replication=r, seed=np.random.SeedSequence(int(seed), spawn_key=(n, r)),
                            population=population, settings=settings)
            for n in grid for r in range(int(replications))]


def check_grid(grid) -> list[int]:
    """The grid of N: whole numbers >= 2, increasing, no repeats."""
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        grid = [grid]
    if not isinstance(grid, (list, tuple)) or not grid:
        raise InputError(f"n: a list of sample sizes (e.g. [200, 300, 500, 800]), got {grid!r}")
    bad = [g for g in grid if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 2]
    if bad:
        raise InputError(f"n: sample sizes must be whole numbers >= 2, got {bad[0]!r}")
    if any(b <= a for a, b in zip(grid, grid[1:])):
        raise InputError(f"n: sample sizes must increase without repeats, got {list(grid)!r}")
    return [int(g) for g in grid]


def draw_data(population: Population, n: int, seed: np.random.SeedSequence) -> pd.DataFrame:
    """One data set of ``n`` rows (``lavaan``) or ``n`` invited respondents (``instrument``)."""
    if population.kind == "lavaan":
        m = population.moments
        rng = np.random.default_rng(seed)
        x = rng.multivariate_normal(m.mu, m.sigma, size=n, method="cholesky")
        return pd.DataFrame(x, columns=list(m.ov))
    if population.kind == "instrument":
        from analysis.clean import IdParams, ScreenParams, prepare, screen
        from analysis.coding import code_context
        from analysis.simulate import simulate_study

        study = simulate_study(population.instrument, replace(population.simulation, n=n),
                               int(seed.generate_state(1, np.uint64)[0]))
        r = study.responses
        cells = r.astype(object).where(r.notna(), None).map(lambda v: None if v is None else str(v))
        prepared = prepare(cells, population.instrument, source="simulated", ids=IdParams(respondent_ids="keep"))
        screens = population.screens or ScreenParams(attention_checks=False, speeder_fraction=None,
                                                     longstring_share=None, irv_min=None, mahalanobis_alpha=None,
                                                     duplicates=False, max_missing_share=None)
        return code_context(screen(prepared, population.instrument, screens).clean, population.instrument)
    raise InputError(f"population kind {population.kind!r}: lavaan or instrument")


def replicate(task: ReplicationTask) -> dict:
    """Simulate, fit and record one replication (module level: picklable for the executor).

    Returns a plain dict: ``n, replication, status`` (``ok`` or ``failed``), ``reason`` (the
    error of a failed replication), ``converged, admissible, n_used`` (rows fitted after
    cleaning and listwise deletion), ``cpu_s``, ``warnings`` (the engine's, as text), the fit
    indices :data:`FIT_COLUMNS`, ``parameters`` (``{name: (est, se, pvalue, ci_lower,
    ci_upper, std_all, std_all_se)}``) and ``hypotheses`` (``{id: verdict}``) and ``parts``
    (``{"id:parameter": supported}``).
    """
    start = time.process_time()
    record = {"n": task.n, "replication": task.replication, "status": "ok", "reason": "", "converged": False,
              "admissible": False, "n_used": 0, "warnings": [], **{k: math.nan for k in FIT_COLUMNS},
              "parameters": {}, "hypotheses": {}, "parts": {}}
    try:
        data = draw_data(task.population, task.n, task.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GapscaleWarning)
            fitted = _fit(data, task.settings)
        kinds = {w.category for w in caught}
        record["warnings"] = list(dict.fromkeys([str(w.message) for w in caught
                                                 if issubclass(w.category, GapscaleWarning)] + list(fitted.warnings)))
        record["converged"] = bool(fitted.converged)
        record["admissible"] = bool(fitted.converged and InadmissibleWarning not in kinds
                                    and not any("inadmissible" in w.lower() or "heywood" in w.lower()
                                                for w in fitted.warnings))
        record["n_used"] = int(fitted.fit.get("ntotal", len(data)))
        record.update({k: float(fitted.fit.get(k, math.nan)) for k in FIT_COLUMNS})
        table = _reported(fitted.parameters)
        record["parameters"] = {row.name: (float(row.est), float(row.se), float(row.pvalue), float(row.ci_lower),
                                           float(row.ci_upper), float(row.std_all), float(row.std_all_se))
                                for row in table.itertuples(index=False)}
        if task.settings.hypotheses:
            hyp = hypotheses_table(fitted.parameters, task.settings.hypotheses, "ci")
            record["hypotheses"] = hyp.drop_duplicates("hypothesis").set_index("hypothesis")["verdict"].to_dict()
            record["parts"] = {f"{h}:{p}": bool(s) for h, p, s in zip(hyp["hypothesis"], hyp["parameter"],
                                                                      hyp["supported"])}
    except Exception as exc:  # noqa: BLE001 - a failed replication is a result, counted with its reason
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                      converged=False, admissible=False)
    record["cpu_s"] = time.process_time() - start
    return record


def run_power(population: Population, settings: MonteCarloSettings, grid: Sequence[int], replications: int,
              seed: int, jobs: int | None = None, scheduler=None, batch: int | None = None,
              progress: Callable[[int], None] | None = None) -> list[dict]:
    """Every replication of :func:`replication_tasks` through :func:`analysis.executor.run_tasks`
    (local processes, or a Dask cluster at ``scheduler``); records in task order."""
    tasks = replication_tasks(population, settings, grid, replications, seed)
    return run_tasks(replicate, tasks, jobs=jobs, scheduler=scheduler, batch=batch, progress=progress)


# --------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class PowerResult:
    """The summaries of a Monte Carlo power study.

    Attributes
    ----------
    by_n : DataFrame
        One row per N: replications, failed, converged, admissible and their rates, mean rows
        fitted, chi-square rejection rate, CFI and RMSEA mean and quantiles, and one
        ``power_<hypothesis>`` column per hypothesis (over converged replications).
    hypotheses : DataFrame
        One row per (N, hypothesis): ``power`` (converged), ``power_all`` (all replications),
        ``mcse``.
    paths : DataFrame
        One row per (N, parameter): population value, mean estimate, relative bias, SE ratio
        bias, coverage, power (converged, all), the asymptotic Wald power, and the hypotheses
        naming it.
    required_n : DataFrame
        One row per hypothesis: the smallest N on the grid with power >= target, the
        interpolated N (:func:`interpolate_n`) and a note.
    replications : DataFrame
        One row per replication: status, reason, convergence, fit indices, verdicts and each
        parameter's ``est``, ``se`` and ``pvalue`` (columns ``est.<name>``, ...).
    """

    by_n: pd.DataFrame
    hypotheses: pd.DataFrame
    paths: pd.DataFrame
    required_n: pd.DataFrame
    replications: pd.DataFrame


def interpolate_n(grid: Sequence[int], power: Sequence[float], target: float) -> tuple[float, float, str]:
    r"""``(smallest grid N with power >= target, interpolated N, note)``.

    The interpolated N is linear in N between the last grid point below the target
    :math:`(N_0, P_0)` and the first one at or above it :math:`(N_1, P_1)`:

    .. math:: N^* = N_0 + (\text{target} - P_0)\,\frac{N_1 - N_0}{P_1 - P_0}

    (the first crossing, if the power is not monotone in the grid). If the first grid N already
    reaches the target, both are that N (note ``"reached at the smallest N of the grid"``: the
    true N may be smaller); if no grid N does, both are NaN (note ``"not reached"``).
    """
    grid, power = list(grid), [float(p) for p in power]
    for k, (n, p) in enumerate(zip(grid, power)):
        if np.isfinite(p) and p >= target:
            if k == 0:
                return float(n), float(n), "reached at the smallest N of the grid"
            n0, p0 = grid[k - 1], power[k - 1]
            if not np.isfinite(p0):
                return float(n), float(n), ""
            return float(n), n0 + (target - p0) * (n - n0) / (p - p0), ""
    return math.nan, math.nan, f"not reached on the grid (largest N {grid[-1]})"


def _test_pvalue(record: dict) -> float:
    """The model test's p-value: the scaled test's (MLR, MLM, WLSMV, ULSMV) when there is one."""
    p = record.get("pvalue_scaled", math.nan)
    return p if np.isfinite(p) else record["pvalue"]


def _rate(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def aggregate(records: Sequence[dict], truth: pd.DataFrame, settings: MonteCarloSettings, target: float = 0.80,
              metric: str = "est") -> PowerResult:
    """Summaries of the replication ``records`` (:func:`replicate`) per N.

    Parameters
    ----------
    records : sequence of dict
    truth : DataFrame
        :func:`population_values` (``name``, ``est``, ``se``, ``std_all``; ``attrs["n"]`` the rows
        its ``se`` is for).
    settings : MonteCarloSettings
        ``alpha`` and the hypotheses (their expected signs).
    target : float
        The power a hypothesis needs (default .80).
    metric : {"est", "std_all"}
        What bias and coverage judge: the estimates and their Wald intervals against the population
        ``est`` (continuous data), or the standardised solution (``std_all`` +/- z ``std_all_se``)
        against the population ``std_all`` (Likert data: see the module docstring). Power is always
        the Wald test of ``est``.
    """
    if metric not in ("est", "std_all"):
        raise InputError(f"metric: est or std_all, got {metric!r}")
    if not 0 < target < 1:
        raise InputError(f"target: a power between 0 and 1, got {target!r}")
    alpha = settings.alpha
    z = norm_ppf(0.975)
    recs = list(records)
    grid = list(dict.fromkeys(r["n"] for r in recs))
    hyp_ids = list(settings.hypotheses)
    expected = {}  # parameter name -> (sign, hypotheses)
    for h, spec in settings.hypotheses.items():
        for ref, sign in (spec.get("expect") or {}).items():
            expected.setdefault(ref, [sign, []])[1].append(h)
    by_name = truth.set_index("name")
    names = list(truth["name"])
    # hypothesis parameter references may be labels or "lhs op rhs"
    ref_of = {}
    for ref in expected:
        hit = _resolve(truth["name"], truth["lhs"], truth["op"], truth["rhs"], ref)
        if hit is not None:
            ref_of[ref] = hit
    sign_of = {ref_of[r]: s for r, (s, _) in expected.items() if r in ref_of}
    hyps_of = {ref_of[r]: hs for r, (_, hs) in expected.items() if r in ref_of}
    se_scale = truth.attrs.get("n")

    by_n_rows, hyp_rows, path_rows, rep_rows = [], [], [], []
    for n in grid:
        rs = [r for r in recs if r["n"] == n]
        ok = [r for r in rs if r["converged"]]
        conv = np.array([r["converged"] for r in rs], dtype=bool)
        row = {"n": n, "replications": len(rs), "failed": sum(r["status"] == "failed" for r in rs),
               "converged": int(conv.sum()), "admissible": sum(r["admissible"] for r in rs),
               "convergence_rate": _rate(conv), "admissible_rate": _rate(np.array([r["admissible"] for r in rs])),
               "mean_n_used": float(np.mean([r["n_used"] for r in ok])) if ok else math.nan,
               "chisq_rejection_rate": _rate(np.array([_test_pvalue(r) < alpha for r in ok]))}
        for idx in ("cfi", "rmsea"):
            vals = np.array([r[idx] for r in ok], dtype=float)
            vals = vals[np.isfinite(vals)]
            row[f"{idx}_mean"] = float(vals.mean()) if len(vals) else math.nan
            for q in QUANTILES:
                row[f"{idx}_q{int(round(q * 100)):02d}"] = float(np.quantile(vals, q)) if len(vals) else math.nan
        for h in hyp_ids:
            hits = np.array([r["hypotheses"].get(h) == "supported" for r in ok], dtype=bool)
            power = _rate(hits)
            power_all = float(hits.sum() / len(rs)) if rs else math.nan
            mcse = math.sqrt(power * (1 - power) / len(ok)) if ok else math.nan
            row[f"power_{h}"] = power
            hyp_rows.append({"n": n, "hypothesis": h, "statement": settings.hypotheses[h].get("statement", ""),
                             "power": power, "power_all": power_all, "mcse": mcse, "converged": len(ok),
                             "replications": len(rs)})
        by_n_rows.append(row)

        for name in names:
            t = by_name.loc[name]
            vals = np.array([r["parameters"].get(name, (math.nan,) * 7) for r in ok], dtype=float).reshape(-1, 7)
            est, se, pv, std, std_se = vals[:, 0], vals[:, 1], vals[:, 2], vals[:, 5], vals[:, 6]
            pop = float(t["est"]) if metric == "est" else float(t["std_all"])
            x, s = (est, se) if metric == "est" else (std, std_se)
            fin = np.isfinite(x) & np.isfinite(s)
            # a quantity the metric fixes (std_all: an exogenous latent's variance is 1): no interval
            # to cover it (its delta-method SE is 0 up to rounding, ~1e-11, where an estimated
            # quantity's is ~1/sqrt(N): "coverage" would be 0 or 1 by rounding)
            fixed = bool(fin.any()) and bool(np.all(np.abs(s[fin]) <= 1e-8))
            sign = sign_of.get(name, "positive" if t["est"] > 0 else "negative" if t["est"] < 0 else "")
            if sign:
                right = (est > 0) if sign == "positive" else (est < 0)
                hits = (pv < alpha) & right
            else:
                hits = pv < alpha  # a population value of 0: the rejection rate is the type I error
            mean_x = float(np.mean(x[fin])) if fin.any() else math.nan
            sd_x = float(np.std(x[fin], ddof=1)) if fin.sum() > 1 else math.nan
            asym_se = float(t["se"]) * math.sqrt(se_scale / n) if se_scale else math.nan
            path_rows.append({
                "n": n, "name": name, "lhs": t["lhs"], "op": t["op"], "rhs": t["rhs"], "label": t["label"],
                "hypotheses": " ".join(hyps_of.get(name, [])), "expected": sign, "metric": metric,
                "population": pop, "mean": mean_x, "bias": mean_x - pop,
                "relative_bias": (mean_x - pop) / pop if pop != 0 else math.nan,
                "sd": sd_x, "mean_se": float(np.mean(s[fin])) if fin.any() else math.nan,
                "se_relative_bias": (float(np.mean(s[fin])) / sd_x - 1) if fin.sum() > 1 and sd_x > 0 else math.nan,
                "coverage": _rate(((x - z * s) <= pop) & (pop <= (x + z * s)) & fin) if len(ok) and not fixed
                else math.nan,
                "power": _rate(hits), "power_all": float(hits.sum() / len(rs)) if rs else math.nan,
                "wald_power_asymptotic": float(wald_power(t["est"], asym_se, alpha)),
                "converged": len(ok)})
        for r in rs:
            rep = {"n": r["n"], "replication": r["replication"], "status": r["status"], "reason": r["reason"],
                   "converged": r["converged"], "admissible": r["admissible"], "n_used": r["n_used"],
                   **{k: r[k] for k in FIT_COLUMNS},
                   "warnings": " | ".join(r["warnings"])}
            for h in hyp_ids:
                rep[f"verdict.{h}"] = r["hypotheses"].get(h, "")
            for name in names:
                v = r["parameters"].get(name, (math.nan,) * 7)
                rep[f"est.{name}"], rep[f"se.{name}"], rep[f"pvalue.{name}"] = v[0], v[1], v[2]
            rep_rows.append(rep)

    hyp_df = pd.DataFrame(hyp_rows, columns=["n", "hypothesis", "statement", "power", "power_all", "mcse", "converged",
                                             "replications"])
    req = []
    for h in hyp_ids:
        part = hyp_df[hyp_df["hypothesis"] == h]
        n_grid, n_interp, note = interpolate_n(part["n"], part["power"], target)
        req.append({"hypothesis": h, "statement": settings.hypotheses[h].get("statement", ""), "target": target,
                    "n_grid": n_grid, "n_interpolated": n_interp,
                    "power_at_largest_n": float(part["power"].iat[-1]) if len(part) else math.nan, "note": note})
    return PowerResult(by_n=pd.DataFrame(by_n_rows), hypotheses=hyp_df, paths=pd.DataFrame(path_rows),
                       required_n=pd.DataFrame(req, columns=["hypothesis", "statement", "target", "n_grid",
                                                             "n_interpolated", "power_at_largest_n", "note"]),
                       replications=pd.DataFrame(rep_rows))


CHECK_COLUMNS = ("n", "hypothesis", "power_mc", "mcse", "converged", "power_analytic", "z", "se_ratio")


def compare_power(analytic: AnalyticPower, result: PowerResult) -> pd.DataFrame:
    r"""The analytic power against the Monte Carlo power, per (N, hypothesis) of the Monte Carlo run.

    Columns :data:`CHECK_COLUMNS`: the Monte Carlo power :math:`\hat P` over :math:`C` converged
    replications, its standard error, the analytic power :math:`P_a` at the same N, the difference
    in binomial standard errors :math:`z = (\hat P - P_a)/\sqrt{\tilde P_a(1-\tilde P_a)/C}`
    (:math:`\tilde P_a` kept within :math:`[1/(2C), 1 - 1/(2C)]`), and ``se_ratio``: the median,
    over the hypothesis' parts, of the replications' mean standardised SE (``std_all_se``) over the
    analytic SE at that N, :math:`\sqrt{V_{1,jj}/N}` (a precise check even with a few replications:
    SEs vary little between data sets; NaN when the Monte Carlo judged the unstandardised metric).
    """
    rows = []
    curve = analytic.hypotheses.set_index(["n", "hypothesis"])["power"]
    se1 = analytic.paths.set_index("name")["se1"]
    paths = result.paths
    for r in result.hypotheses.itertuples(index=False):
        a = float(curve.get((r.n, r.hypothesis), math.nan))
        c = int(r.converged)
        pa = min(max(a, 0.5 / c), 1 - 0.5 / c) if c else math.nan
        z = (r.power - a) / math.sqrt(pa * (1 - pa) / c) if c and np.isfinite(a) else math.nan
        part = paths[(paths["n"] == r.n) & paths["hypotheses"].str.split().apply(lambda hs, h=r.hypothesis: h in hs)
                     & (paths["metric"] == "std_all")]
        ratios = [row.mean_se / (se1[row.name] / math.sqrt(r.n)) for row in part.itertuples(index=False)
                  if row.name in se1.index and se1[row.name] > 0]
        rows.append({"n": r.n, "hypothesis": r.hypothesis, "power_mc": r.power, "mcse": r.mcse, "converged": c,
                     "power_analytic": a, "z": z, "se_ratio": float(np.median(ratios)) if ratios else math.nan})
    return pd.DataFrame(rows, columns=list(CHECK_COLUMNS))


def check_summary(check: pd.DataFrame) -> dict:
    """power.json's summary of :func:`compare_power`: the largest |z|, whether every Monte Carlo
    power is within 3 of its standard errors of the analytic one, the median SE ratio, and the rows."""
    z = check["z"].to_numpy(dtype=float)
    ratio = check["se_ratio"].to_numpy(dtype=float)
    return {"max_abs_z": float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else None,
            "within_3_se": bool(np.all(np.abs(z[np.isfinite(z)]) <= 3)),
            "median_se_ratio": float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else None,
            "rows": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                     for row in check.to_dict(orient="records")]}
