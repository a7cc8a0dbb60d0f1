r"""Confirmatory factor analysis of ordinal (Likert) items by WLSMV, as lavaan fits it.

Each item :math:`y_j` with categories :math:`1, \dots, K_j` is a coarsened standard-normal
variable :math:`y_j^*`, cut at the thresholds :math:`\tau_{j,1} < \dots < \tau_{j,K_j-1}`. The
factor model is a model for the correlations of the :math:`y^*` (Muthen, 1984):

.. math:: \operatorname{Cor}(y^*) = \Sigma^*(\theta) = \Lambda (I - B)^{-1} \Psi (I - B)^{-\top}
          \Lambda^\top + \Theta,

with lavaan's *delta* parameterisation: the scale factors :math:`\Delta = \operatorname{diag}(
\Sigma^*)^{-1/2}` are fixed to 1, so the residual variances are not free parameters but
:math:`\theta_{jj} = 1 - [\Lambda (I - B)^{-1} \Psi (I - B)^{-\top} \Lambda^\top]_{jj}`, and the
thresholds are free parameters, one per cut point.

Estimation has three stages (Muthen, 1984; Muthen, du Toit & Spisic, 1997):

1. *Sample statistics*, lavaan's two-step estimates: each item's thresholds from its marginal
   proportions, :math:`\hat\tau_{j,k} = \Phi^{-1}(\text{share of values} \le k)`, then each
   polychoric correlation :math:`\hat\rho_{ij}` by maximising its pair's bivariate log-likelihood
   with those thresholds held fixed (:mod:`analysis.polychoric`). The vector
   :math:`s = (\hat\tau, \hat\rho)` is lavaan's ``wls.obs``.
2. *Their asymptotic covariance matrix* :math:`\Gamma` (lavaan's ``NACOV``, "gamma") from the
   casewise scores, as lavaan's ``muthen1984()``: with the univariate threshold scores
   :math:`S_\tau` (N x thresholds) and the bivariate correlation scores :math:`S_\rho`
   (N x pairs), :math:`A_{11}` the block-diagonal (per item) cross-product of :math:`S_\tau`,
   :math:`A_{22} = \operatorname{diag}(S_\rho^\top S_\rho)`, :math:`A_{21}` the cross-product of
   each pair's correlation score with the pair's bivariate threshold scores, and

   .. math:: B^{-1} = \begin{pmatrix} A_{11}^{-1} & 0 \\ -A_{22}^{-1} A_{21} A_{11}^{-1} & A_{22}^{-1}
             \end{pmatrix}, \qquad \Gamma = N\, B^{-1} (S^\top S) B^{-\top}, \quad S = (S_\tau, S_\rho).

   Equivalently :math:`\Gamma = N\,\Xi^\top \Xi` with the casewise influence functions
   :math:`\Xi = S B^{-\top}`, which is how it is computed here (vectorised over item pairs and
   respondents; cells whose probability is below :math:`\sqrt{\epsilon}` give zero scores, as
   lavaan's ``NA`` scores do).
3. *DWLS*: :math:`\hat\theta` minimises :math:`F(\theta) = (s - \sigma(\theta))^\top W (s -
   \sigma(\theta))` with :math:`W = \operatorname{diag}(\Gamma)^{-1}` (lavaan's ``WLS.VD``),
   thresholds free (so they reproduce :math:`\hat\tau` exactly), by Levenberg-Marquardt.

With :math:`\Delta = \partial\sigma/\partial\theta^\top` at :math:`\hat\theta` and
:math:`E = \Delta^\top W \Delta`:

- robust standard errors (``se = "robust.sem"``): :math:`\operatorname{acov}(\hat\theta) =
  E^{-1} \Delta^\top W \Gamma W \Delta E^{-1} / N`;
- the test statistic :math:`T = N F(\hat\theta)`, :math:`df` = correlations minus free
  parameters besides the thresholds, and the mean-and-variance adjusted ("scaled and shifted")
  statistic of Asparouhov & Muthen (2010): with :math:`U = W - W\Delta E^{-1}\Delta^\top W`,
  :math:`a = \sqrt{df / \operatorname{tr}[(U\Gamma)^2]}` and
  :math:`b = df - a \operatorname{tr}(U\Gamma)`, ``chisq.scaled`` :math:`= aT + b` on
  :math:`df` degrees of freedom, ``chisq.scaling.factor`` :math:`= 1/a`, shift :math:`b`;
- the baseline (independence) model: free thresholds, correlations 0, so
  :math:`T_0 = N \sum_k w_k \hat\rho_k^2` on as many df as correlations, scaled and shifted the
  same way;
- ``cfi``, ``tli``, ``rmsea`` (with its 90% interval and p of close fit) from :math:`T`, and the
  ``.scaled`` versions from the scaled statistics, with lavaan's :math:`N - 1` in the RMSEA
  (lavaan uses :math:`N - G` for estimators other than ML);
- the "robust" indices of lavaan 0.6-13+ for categorical data (Savalei, 2021): the ML
  discrepancy of the polychoric matrix :math:`R` from :math:`\hat\Sigma^*`,
  :math:`T_3 = N[\log|\hat\Sigma^*| + \operatorname{tr}(R\hat\Sigma^{*-1}) - \log|R| - p]`
  (lavaan's ``catML`` at the DWLS estimates), its scaling factor
  :math:`\hat c = \operatorname{tr}(U_3^\top V U_3 \Gamma_\rho) / df` with
  :math:`U_3 = I - \Delta_\rho E^{-1}\Delta_\rho^\top W_\rho` and :math:`V` the normal-theory
  information of a correlation structure at :math:`\hat\Sigma^*`
  (:math:`V_{ij,kl} = \sigma^{ik}\sigma^{jl} + \sigma^{il}\sigma^{jk}`), and for the baseline
  :math:`T_{3,0} = -N\log|R|`, :math:`\hat c_0 = \operatorname{tr}(\Gamma_\rho)/df_0`; then
  ``cfi.robust`` :math:`= 1 - \max(T_3 - \hat c\,df, 0) / \max(T_3 - \hat c\,df, T_{3,0} - \hat c_0
  df_0, 0)`, ``tli.robust``, ``rmsea.robust`` :math:`= \sqrt{\max(T_3/(N-1)/df - \hat c/(N-1), 0)}`
  and its interval. Not computed (``None``) when :math:`R` is not positive definite, as lavaan;
- ``srmr`` as lavaan reports it for categorical data: the root mean square of the correlation
  residuals over the :math:`p(p+1)/2` elements of the matrix (the diagonal residuals are 0).

In R: ``lavaan::cfa(model, data, ordered = TRUE, estimator = "WLSMV")``; ``fitMeasures(fit)``,
``parameterEstimates(fit, standardized = TRUE)``, ``standardizedSolution(fit)``,
``lavInspect(fit, "gamma")``, ``modindices(fit)``, ``residuals(fit, type = "standardized")``.

References
----------
Muthen, B. (1984). A general structural equation model with dichotomous, ordered categorical,
    and continuous latent variable indicators. *Psychometrika, 49*(1), 115-132.
    https://doi.org/10.1007/BF02294210
Muthen, B., du Toit, S. H. C., & Spisic, D. (1997). Robust inference using weighted least
    squares and quadratic estimating equations in latent variable modeling with categorical and
    continuous outcomes. Unpublished manuscript.
Asparouhov, T., & Muthen, B. (2010). Simple second order chi-square correction. Mplus
    technical appendix.
Savalei, V. (2021). Improving fit indices in structural equation modeling with categorical
    data. *Multivariate Behavioral Research, 56*(3), 390-407.
    https://doi.org/10.1080/00273171.2020.1717922
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. *Journal of
    Statistical Software, 48*(2), 1-36. https://doi.org/10.18637/jss.v048.i02
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import ndtr, ndtri

from analysis.sem import fit as fitm
from analysis.sem.single import (InadmissibleWarning, ParameterTable, SEMFit, _central_jacobian, _Model, _start,
                                 parameter_table)
from analysis.warnings import ConvergenceWarning, GapscaleWarning
from instrument.lavaan import LavaanModel
from analysis.errors import InputError
from analysis.sem.ordinal import OrdinalStatistics, check_items, ordinal_statistics

__all__ = ["OrdinalStatistics", "WLSMVFit", "fit_wlsmv", "ordinal_statistics", "wlsmv_modification_indices",
           "wlsmv_standardized_residuals"]

_SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))
# lavaan's optim.dx.tol: the largest gradient of the discrepancy at a converged solution.
_GRADIENT_TOL = 1e-3
# Respondents per block when the robust scaling factor sums over them.
_BLOCK = 1000


# --------------------------------------------------------------------------- model


class _DeltaModel(_Model):
    """The model under lavaan's delta parameterisation: residual variances are
    1 - diag(Lambda (I-B)^-1 Psi (I-B)^-T Lambda'), so Sigma* has a unit diagonal."""

    def matrices(self, theta: np.ndarray):
        mats = super().matrices(theta)
        a = np.linalg.inv(np.eye(self.m) - mats["beta"])
        la = mats["lambda"] @ a
        common = np.einsum("ij,jk,ik->i", la, mats["psi"], la)
        idx = np.arange(self.p)
        mats["theta"][idx, idx] = 1.0 - common
        return mats


def _delta_table(pt: ParameterTable) -> tuple[ParameterTable, np.ndarray]:
    """The parameter table with the indicators' residual variances taken out of the free set.

    Returns the table and, for each of its free parameters, the 0-based index of the free
    parameter of ``pt`` it came from.
    """
    rows = pt.rows.copy()
    diag = ((rows["matrix"] == "theta") & (rows["row"] == rows["col"])).to_numpy()
    free = rows["free"].to_numpy()
    bad = diag & ((free == 0) | (rows["label"].to_numpy() != ""))
    if bad.any():
        item = rows.loc[bad, "lhs"].iloc[0]
        raise InputError(f"{item} ~~ {item}: the residual variance of an ordinal item cannot be fixed or labelled; under "
                         "the delta parameterisation it is 1 minus the item's explained variance")
    kept = sorted(set(free[(free > 0) & ~diag]))
    new_index = {old: k + 1 for k, old in enumerate(kept)}
    rows["free"] = [0 if d else new_index.get(f, 0) for f, d in zip(free, diag)]
    rows.loc[diag, "value"] = 0.0  # placeholder: _DeltaModel computes these
    return dataclasses.replace(pt, rows=rows), np.array(kept, dtype=int) - 1


# --------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class WLSMVFit(SEMFit):
    """A WLSMV fit: a :class:`~analysis.sem.SEMFit` (``sample`` is the polychoric matrix,
    ``implied`` the model's correlation matrix of the latent responses, ``vcov`` the robust
    covariance matrix of the free parameters besides the thresholds, ``partable`` the
    parameter table with the residual variances out of the free set) with the ordinal sample
    statistics it was fitted to."""

    statistics: OrdinalStatistics | None = None


def fit_wlsmv(data: pd.DataFrame, model: LavaanModel | str, missing: str = "listwise", max_categories: int = 20,
              max_iter: int = 500) -> WLSMVFit:
    """Fit ``model`` to ordinal items by WLSMV, as ``lavaan::cfa(..., ordered = TRUE, estimator = "WLSMV")``.

    Diagonally weighted least squares on the thresholds and polychoric correlations with
    robust standard errors and the mean-and-variance adjusted ("scaled and shifted") test, in
    lavaan's delta parameterisation; see the module docstring for every formula.

    Parameters
    ----------
    data : DataFrame
        Responses; the model's observed variables must be columns of whole numbers (the
        categories of an item are its distinct observed values, in increasing order).
    model : str or LavaanModel
        lavaan syntax (``=~``, ``~``, ``~~``, labels, fixed values, ``NA*``).
    missing : {"listwise"}
        Rows with a missing value on any of the model's items are dropped (lavaan's default
        for WLSMV); ``fit["norig"] - fit["ntotal"]`` rows were dropped.
    max_categories : int, default 20
        Most distinct values an item may have.
    max_iter : int, default 500
        Iteration limit of the optimiser (in units of model evaluations per parameter).

    Returns
    -------
    WLSMVFit
        ``parameters`` with lavaan's rows and names: loadings, thresholds (``op`` ``"|"``,
        ``rhs`` ``"t1"``, ``"t2"``, ...), variances and covariances (the indicators'
        residual variances with ``se`` 0, as lavaan reports them: they are not free), the scale
        factors (``~*~``, 1) and the intercepts and latent means (``~1``, 0); ``fit`` with
        lavaan's fitMeasures names (dots as underscores, ``None`` where lavaan gives NA) plus
        ``norig`` (rows before listwise deletion, lavaan's ``lavInspect(fit, "norig")``).

    Raises
    ------
    ValueError
        ``missing`` other than "listwise"; a model item that is not in the data, not numeric,
        has a value that is not a whole number (continuous data), has more than
        ``max_categories`` values or a single category after listwise deletion; no complete
        rows; a fixed or labelled residual variance of an item; an unidentified model (more
        free parameters besides the thresholds than polychoric correlations); two binary
        items with two empty cells in their table.

    Warns
    -----
    InadmissibleWarning
        A negative residual variance (Heywood case), a standardised loading above 1, a latent
        covariance matrix that is not positive definite.
    ConvergenceWarning
        The optimiser stopped before converging.
    GapscaleWarning
        A polychoric correlation (nearly) 1; the polychoric matrix is not positive definite
        (the robust fit indices are then not computed, as lavaan).

    Notes
    -----
    In R: ``lavaan::cfa(model, data, ordered = TRUE, estimator = "WLSMV")`` with
    ``parameterEstimates(fit, standardized = TRUE)``, ``standardizedSolution(fit)`` (``std_all_se``)
    and ``fitMeasures(fit)``. lavaan 0.6-14's fitMeasures has no ``chisq.shift.parameters``;
    the shift is its ``lavInspect(fit, "test")$scaled.shifted$shift.parameter``. Checked against
    lavaan 0.6-14 on ``psych::bfi`` (``tests/reference/wlsmv.R``): fit measures to 2e-6
    (relative), estimates 1.5e-5, standard errors 4.9e-6, std.all 3.9e-6, Gamma 2e-8;
    lavaan's optimisers stop earlier than these estimates, which limits the agreement.

    Speed (two cores): 72 seven-point items on 8 factors, 450 respondents, about 2 s; the
    default instrument (72 items, 18 factors, 225 free parameters besides the thresholds) on
    its CFA half, about 4 s. No loop runs over respondents or item pairs.

    Examples
    --------
    >>> fit = fit_wlsmv(d, "agree =~ A1 + A2 + A3 + A4 + A5")  # doctest: +SKIP
    >>> fit.fit["cfi_scaled"], fit.fit["rmsea_scaled"]  # doctest: +SKIP
    """
    if missing != "listwise":
        raise InputError(f"missing: WLSMV uses listwise deletion (lavaan's default for estimator = 'WLSMV'); got "
                         f"{missing!r}. Use missing='listwise' (or estimator ML/MLR with missing='fiml')")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    pt = parameter_table(model, list(data.columns))
    if getattr(pt, "defined", ()):
        name, _ = pt.defined[0]
        raise InputError(f"{name} := ...: defined parameters (:=) are not supported with WLSMV yet; fit the model "
                         "without them, or use estimator ML or MLR")
    obs = list(pt.observed)
    check_items(data, obs, max_categories)
    complete = data[obs].notna().all(axis=1).to_numpy()
    if not complete.any():
        raise InputError(f"no row has every item of the model observed ({len(data)} rows); WLSMV deletes incomplete "
                         "rows listwise")
    x = data.loc[complete, obs].reset_index(drop=True)
    stat = ordinal_statistics(x, obs, max_categories)
    n, p, nth = stat.n, len(obs), stat.n_thresholds
    pairs = stat.pairs
    ii, jj = pairs[:, 0], pairs[:, 1]
    n_pairs = len(ii)

    pt_d, kept = _delta_table(pt)
    q = pt_d.n_free
    df = n_pairs - q
    if df < 0:
        raise InputError(f"the model is not identified: {q} free parameters besides the thresholds but only {n_pairs} "
                         f"polychoric correlations (degrees of freedom {df}); fix parameters or add indicators")
    mdl = _DeltaModel(pt_d)
    r_mat = stat.correlation.to_numpy()
    r_obs = r_mat[ii, jj]
    weights = stat.weights
    w = weights[nth:]
    sw = np.sqrt(w)

    def residuals(th):
        return sw * (r_obs - mdl.sigma(th)[0][ii, jj])

    def jacobian(th):
        return -(sw[:, None] * mdl.derivatives(th)[:, ii, jj].T)

    theta0 = _start(pt, r_mat)[kept] if q else np.zeros(0)
    notes: list[str] = []
    if q:
        res = optimize.least_squares(residuals, theta0, jac=jacobian, method="lm", xtol=1e-12, ftol=1e-12,
                                     gtol=1e-12, max_nfev=max_iter * (q + 1))
        theta = res.x
        grad = jacobian(theta).T @ residuals(theta)
        # lavaan's meaning of convergence: the optimiser's own criterion is met (here
        # Levenberg-Marquardt's relative change in the discrepancy or the estimates, not the
        # evaluation limit), and the gradient of the discrepancy is below lavaan's optim.dx.tol
        # (1e-3; lavaan warns "the optimizer warns that a solution has NOT been found!" above it).
        # The discrepancy is (1/2) sum w r^2, lavaan's fmin, so the gradients are on the same scale.
        max_grad = float(np.max(np.abs(grad)))
        converged = bool(res.status > 0 and max_grad <= _GRADIENT_TOL)
        iterations = int(res.nfev)
    else:
        theta, converged, iterations, max_grad = np.zeros(0), True, 0, 0.0
    if not converged:
        why = (f"it stopped at its evaluation limit ({res.nfev} evaluations)" if res.status == 0 else
               f"{res.message}" if res.status < 0 else
               f"the largest gradient of the discrepancy, {max_grad:.3g}, is above {_GRADIENT_TOL:g}")
        notes.append(f"the optimiser did not converge: {why}")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=2)

    sig = mdl.sigma(theta)[0]
    delta = mdl.derivatives(theta)[:, ii, jj].T if q else np.zeros((n_pairs, 0))  # pairs x q
    resid = r_obs - sig[ii, jj]
    # lavaan multiplies the DWLS discrepancy, and divides the sandwich, by N - 1 (its N - G for
    # estimators other than ML); Gamma itself is on N.
    n_fit = n - 1
    chisq = float(n_fit * np.sum(w * resid**2))
    infl_tau, infl_rho = stat.influence[:, :nth], stat.influence[:, nth:]
    x_mat = sw[:, None] * delta                      # W^1/2 Delta
    info = x_mat.T @ x_mat                           # E = Delta' W Delta (unit information)
    eig = np.linalg.eigvalsh(info) if q else np.ones(1)
    if eig.min() > 1e-10 * eig.max():
        info_inv = np.linalg.inv(info) if q else np.zeros((0, 0))
    else:  # lavaan: "could not compute standard errors! The information matrix could not be inverted"
        info_inv = np.full((q, q), np.nan)
        notes.append(f"the information matrix is singular (smallest eigenvalue {eig.min():.3g}): the model is probably "
                     "not identified; standard errors, the scaled test and the scaled and robust fit indices are not "
                     "available")
        warnings.warn(notes[-1], InadmissibleWarning, stacklevel=2)
    zwd = infl_rho @ (w[:, None] * delta)            # N x q
    vcov = info_inv @ (zwd.T @ zwd) @ info_inv * (n / n_fit)
    se_tau = np.sqrt(np.einsum("ij,ij->j", infl_tau, infl_tau) * (n / n_fit))

    # Scaled-and-shifted test: traces of U Gamma and (U Gamma)^2 through Y = Xi_rho W^1/2.
    y = infl_rho * sw[None, :]
    yq = y - (y @ x_mat) @ info_inv @ x_mat.T if q else y
    trace1, trace2 = n * float(np.sum(yq * yq)), n**2 * _trace_square(yq, y)
    base_chisq = float(n_fit * np.sum(w * r_obs**2))
    base_trace1, base_trace2 = n * float(np.sum(y * y)), n**2 * _trace_square(y, y)

    robust, robust_note = _robust_statistics(stat, sig, delta, zwd, info_inv, df)
    if robust_note:
        notes.append(robust_note)
        warnings.warn(robust_note, GapscaleWarning, stacklevel=2)
    tau = stat.thresholds.to_numpy()  # free thresholds reproduce the sample ones exactly
    wls_obs = stat.sample
    wls_est = np.concatenate([tau, sig[ii, jj]])
    fit = fitm.fit_measures(
        npar=int(q + nth), ntotal=int(n), chisq=chisq, df=int(df), baseline_chisq=base_chisq, baseline_df=int(n_pairs),
        estimator="WLSMV", fmin=chisq / (2 * n), scaled=_scaled_shifted(chisq, df, trace1, trace2),
        baseline_scaled=_scaled_shifted(base_chisq, n_pairs, base_trace1, base_trace2), robust=robust,
        residuals=fitm.residual_measures(r_mat, sig, n, sample_thresholds=tau, implied_thresholds=tau,
                                         categorical=True),
        gfi_value=fitm.gfi(wls_obs, wls_est, weights, n), nel=len(wls_obs), categorical=True)
    fit["norig"] = int(len(data))
    fit = {k: _clean(v) for k, v in fit.items()}

    params, std_notes = _parameter_rows(pt_d, mdl, theta, vcov, stat, se_tau)
    notes += std_notes
    for note in std_notes:
        warnings.warn(note, InadmissibleWarning, stacklevel=2)
    return WLSMVFit(parameters=params, fit=fit, implied=pd.DataFrame(sig, index=obs, columns=obs),
                    sample=stat.correlation.copy(), vcov=vcov, converged=converged, iterations=iterations,
                    warnings=tuple(notes), partable=pt_d, theta=theta, statistics=stat)


def _trace_square(left: np.ndarray, y: np.ndarray) -> float:
    """tr[(Y'·left)^2] = ||left Y'||_F^2 for left = Y Q (Q a symmetric projection), the
    cheaper of the respondents x respondents or pairs x pairs form."""
    n, k = y.shape
    if n <= k:
        h = left @ y.T
        return float(np.sum(h * h))
    g = y.T @ left
    return float(np.sum(g * g.T))


def _scaled_shifted(chisq: float, df: int, trace1: float, trace2: float) -> fitm.ScaledTest:
    """lavaan's scaled-and-shifted version of the DWLS statistic: ``a T + b`` with
    :math:`a = \\sqrt{df/\\operatorname{tr}[(U\\Gamma)^2]}`, :math:`b = df - a\\operatorname{tr}(U\\Gamma)`;
    scaling factor 1/a. A saturated model (df = 0) is not corrected (factor and shift NaN, as
    lavaan's NA); an information matrix that could not be inverted gives NaN throughout."""
    if df > 0 and np.isfinite(trace1) and np.isfinite(trace2) and trace2 > 0:
        a = np.sqrt(df / trace2)
        shift = df - a * trace1
        return fitm.ScaledTest(float(a * chisq + shift), float(1 / a), method="scaled.shifted", shift=float(shift))
    if df == 0:
        return fitm.ScaledTest(float(chisq), np.nan, method="scaled.shifted", shift=np.nan)
    return fitm.ScaledTest(np.nan, np.nan, method="scaled.shifted", shift=np.nan)


def _robust_statistics(stat: OrdinalStatistics, sig, delta, zwd, info_inv, df) -> tuple[fitm.RobustStatistics, str]:
    """The statistics behind lavaan's cfi.robust, tli.robust, rmsea.robust for categorical data
    (``lavaan:::lav_fit_catml_dwls``): :math:`T_3, \\hat c, T_{3,0}, \\hat c_0` (module docstring);
    NaN where lavaan gives NA, with the reason."""
    missing = fitm.RobustStatistics(np.nan, np.nan, np.nan, np.nan)
    r = stat.correlation.to_numpy()
    if np.linalg.eigvalsh(r).min() < _SQRT_EPS:
        return missing, ("the polychoric correlation matrix is not positive definite: the robust "
                                           "fit indices (cfi_robust, tli_robust, rmsea_robust) are not computed, as "
                                           "lavaan")
    if df <= 0 or not np.all(np.isfinite(info_inv)):
        return missing, ""
    n, p = stat.n, len(r)
    ii, jj = stat.pairs[:, 0], stat.pairs[:, 1]
    sig_inv = np.linalg.inv(sig)
    f_ml = np.linalg.slogdet(sig)[1] + np.trace(r @ sig_inv) - np.linalg.slogdet(r)[1] - p
    t3 = n * f_ml
    base_t3 = -n * np.linalg.slogdet(r)[1]
    infl = stat.influence[:, stat.n_thresholds:]
    # tr(U3' V U3 Gamma) = N sum_i g_i' V g_i with g_i the rows of Xi U3'; g'Vg = tr(G S G S)/2
    # for G the symmetric matrix with off-diagonal entries g and S = Sigma*^-1.
    g_all = infl - zwd @ info_inv @ delta.T if delta.shape[1] else infl
    total = 0.0
    for first in range(0, n, _BLOCK):
        g = g_all[first:first + _BLOCK]
        gm = np.zeros((len(g), p, p))
        gm[:, ii, jj] = g
        gm[:, jj, ii] = g
        gs = gm @ sig_inv
        total += 0.5 * float(np.einsum("nij,nji->", gs, gs))
    c = n * total / df
    base_df = len(ii)
    c_base = n * float(np.sum(infl * infl)) / base_df
    return fitm.RobustStatistics(float(t3), float(c), float(base_t3), float(c_base)), ""


def _clean(value):
    """JSON-friendly: None for NaN (lavaan's NA), plain Python numbers."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if not np.isfinite(value) else value


# --------------------------------------------------------------------------- parameter table


class _Standardiser:
    """std.all of every row of a parameter table, vectorised (the rules of
    :func:`analysis.sem._standardised`: a loading times the latent's SD over the indicator's, a
    regression times the predictor's SD over the outcome's, a variance over the product of SDs,
    a (residual) covariance over the root of the two (residual) variances, lavaan's cov.std)."""

    def __init__(self, pt: ParameterTable, mdl: _Model):
        r = pt.rows
        self.mdl = mdl
        self.matrix = r["matrix"].to_numpy()
        self.i, self.j = r["row"].to_numpy(dtype=int), r["col"].to_numpy(dtype=int)
        op, lhs, rhs = r["op"].to_numpy(), r["lhs"].to_numpy(), r["rhs"].to_numpy()
        index = {v: k for k, v in enumerate(pt.latents)}
        index.update({v: len(pt.latents) + k for k, v in enumerate(pt.observed)})
        self.lhs = np.array([index[v] for v in lhs], dtype=int)
        self.rhs = np.array([index[v] for v in rhs], dtype=int)
        self.loading, self.regression = op == "=~", op == "~"
        self.covariance = (op == "~~") & (lhs != rhs)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        sig, mats, a = self.mdl.sigma(theta)
        var = np.concatenate([np.diag(a @ mats["psi"] @ a.T), np.diag(sig)])
        sd = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)  # NaN for a negative variance (Heywood case)
        value, own = np.empty(len(self.i)), np.ones(len(self.i))
        for name, m in mats.items():
            mask = self.matrix == name
            value[mask] = m[self.i[mask], self.j[mask]]
            if name in ("psi", "theta"):
                own[mask] = m[self.i[mask], self.i[mask]] * m[self.j[mask], self.j[mask]]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = value / (sd[self.lhs] * sd[self.rhs])
            out = np.where(self.loading, value * sd[self.lhs] / sd[self.rhs], out)
            out = np.where(self.regression, value * sd[self.rhs] / sd[self.lhs], out)
            out = np.where(self.covariance, np.where(own > 0, value / np.sqrt(np.abs(own)), np.nan), out)
        return out


def _parameter_rows(pt: ParameterTable, mdl: _DeltaModel, theta, vcov, stat: OrdinalStatistics, se_tau):
    """lavaan's parameterEstimates rows for an ordinal model, with std.all and its delta-method SE."""
    r = pt.rows
    free = r["free"].to_numpy()
    _, mats, a = mdl.sigma(theta)
    est = np.array([mats[m][i, j] for m, i, j in zip(r["matrix"], r["row"], r["col"])], dtype=float)
    se_free = np.sqrt(np.maximum(np.diag(vcov), 0)) if len(vcov) else np.zeros(0)
    se = np.where(free > 0, se_free[np.maximum(free - 1, 0)] if len(se_free) else 0.0, 0.0)
    standardise = _Standardiser(pt, mdl)
    std = standardise(theta)
    if len(theta):
        jac = _central_jacobian(standardise, theta)
        std_se = np.sqrt(np.maximum(np.einsum("ik,kl,il->i", jac, vcov, jac), 0))
    else:
        std_se = np.zeros(len(r))
    model_rows = pd.DataFrame({"lhs": r["lhs"], "op": r["op"], "rhs": r["rhs"], "label": r["label"], "est": est,
                               "se": se, "free": free > 0, "std_all": std, "std_all_se": std_se})
    tau = stat.thresholds
    items = [name.split("|")[0] for name in tau.index]
    th_rows = pd.DataFrame({"lhs": items, "op": "|", "rhs": [name.split("|")[1] for name in tau.index], "label": "",
                            "est": tau.to_numpy(), "se": se_tau, "free": True, "std_all": tau.to_numpy(),
                            "std_all_se": se_tau})
    obs, lat = list(pt.observed), list(pt.latents)
    scale_rows = pd.DataFrame({"lhs": obs, "op": "~*~", "rhs": obs, "label": "", "est": 1.0, "se": 0.0,
                               "free": False, "std_all": 1.0, "std_all_se": 0.0})
    mean_rows = pd.DataFrame({"lhs": obs + lat, "op": "~1", "rhs": "", "label": "", "est": 0.0, "se": 0.0,
                              "free": False, "std_all": 0.0, "std_all_se": 0.0})
    first_cov = int(np.flatnonzero((r["op"] == "~~").to_numpy())[0]) if (r["op"] == "~~").any() else len(r)
    table = pd.concat([model_rows.iloc[:first_cov], th_rows, model_rows.iloc[first_cov:], scale_rows, mean_rows],
                      ignore_index=True)
    crit = stats.norm.ppf(0.975)
    is_free = table.pop("free").to_numpy(dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(is_free, table["est"] / table["se"], np.nan)
    table.insert(6, "z", z)
    table.insert(7, "pvalue", np.where(is_free, 2 * stats.norm.sf(np.abs(z)), np.nan))
    table.insert(8, "ci_lower", table["est"] - crit * table["se"])
    table.insert(9, "ci_upper", table["est"] + crit * table["se"])

    notes = []
    for row in model_rows[(model_rows["op"] == "~~") & (model_rows["lhs"] == model_rows["rhs"])].itertuples():
        if row.est < 0:
            kind = "residual variance" if row.lhs in obs else "variance"
            notes.append(f"Heywood case: the {kind} of {row.lhs} is negative ({row.est:.3f})")
    for row in model_rows[model_rows["op"] == "=~"].itertuples():
        if abs(row.std_all) > 1:
            notes.append(f"standardised loading of {row.rhs} on {row.lhs} is {row.std_all:.3f} (> 1)")
    cov_lv = a @ mats["psi"] @ a.T
    if len(cov_lv) and np.linalg.eigvalsh(cov_lv).min() < -1e-10:
        notes.append("the latent covariance matrix is not positive definite")
    return table, notes


# --------------------------------------------------------------------------- diagnostics


def wlsmv_modification_indices(fit: WLSMVFit) -> pd.DataFrame:
    r"""Modification indices with expected parameter changes for a WLSMV fit, as
    ``lavaan::modindices(fit)``.

    Candidates are the parameters a CFA leaves fixed at zero: every cross-loading and every
    residual covariance between two items. With the candidate's column :math:`\delta_j` of
    :math:`\partial\sigma/\partial\theta` (correlation part), the gradient of :math:`F/2`,
    :math:`g_j = -\delta_j^\top W (s - \hat\sigma)`, and the DWLS information
    :math:`I = \Delta^\top W \Delta` of the model extended by the candidates,

    .. math:: MI_j = N g_j^2 / V_{jj}, \quad V_{jj} = I_{jj} - I_{j\theta} I_{\theta\theta}^{-1}
              I_{\theta j}, \quad EPC_j = -g_j / V_{jj},

    ``sepc_all`` standardises the EPC (by the latent's SD for a loading, by the two residual
    SDs for a residual covariance). As lavaan, :math:`V_{jj}` below :math:`\epsilon^{1/3}` gives
    NA. Sorted by ``mi``, largest first. These use the DWLS weights, not the robust
    :math:`\Gamma`, as lavaan's ``modindices`` do; the gradient carries lavaan's factor
    :math:`(N-1)/N` (it weighs the discrepancy by :math:`N - 1`). lavaan also lists indices
    for the scale factors (``~*~``) of items whose loadings are constrained equal; those are
    not computed here.

    In R: ``lavaan::modindices(fit)`` (columns ``mi``, ``epc``, ``sepc.all``).
    """
    stat, pt, theta = _diagnostic_inputs(fit)
    rows = pt.rows
    present = {(r.lhs, r.op, r.rhs) for r in rows.itertuples()} | {
        (r.rhs, r.op, r.lhs) for r in rows.itertuples() if r.op == "~~"}
    obs, lat = list(pt.observed), list(pt.latents)
    cross = [(lat_k, v_k) for lat_k, lat_name in enumerate(lat) for v_k, v in enumerate(obs)
             if (lat_name, "=~", v) not in present]
    ii, jj = stat.pairs[:, 0], stat.pairs[:, 1]
    pair_of = np.full((len(obs), len(obs)), -1)
    pair_of[ii, jj] = pair_of[jj, ii] = np.arange(len(ii))
    rescov = [(a, b) for a in range(len(obs)) for b in range(a + 1, len(obs)) if (obs[a], "~~", obs[b]) not in present]
    columns = ["lhs", "op", "rhs", "mi", "epc", "sepc_all"]
    if not cross and not rescov:
        return pd.DataFrame(columns=columns)
    mdl = _DeltaModel(pt)
    q = pt.n_free
    sig, mats, a = mdl.sigma(theta)
    cov_eta = a @ mats["psi"] @ a.T
    w = stat.weights[stat.n_thresholds:]
    resid = stat.correlation.to_numpy()[ii, jj] - sig[ii, jj]
    we = w * resid
    scale = (stat.n - 1) / stat.n  # lavaan's gradient of the DWLS objective carries (N - 1)/N
    d_model = mdl.derivatives(theta)[:, ii, jj].T if q else np.zeros((len(ii), 0))
    wd_model = w[:, None] * d_model
    i_model_inv = np.linalg.inv(d_model.T @ wd_model) if q else np.zeros((0, 0))

    # A cross-loading of item v on latent l moves the correlations of v with every other item j
    # by (Cov(eta) Lambda')[l, j]; a residual covariance moves one correlation by 1.
    c = cov_eta @ mats["lambda"].T
    d_cross = np.zeros((len(ii), len(cross)))
    for col, (lat_k, v_k) in enumerate(cross):
        others = np.delete(np.arange(len(obs)), v_k)
        d_cross[pair_of[v_k, others], col] = c[lat_k, others]
    k_res = np.array([pair_of[a_, b_] for a_, b_ in rescov], dtype=int)
    grad = scale * np.concatenate([-(d_cross.T @ we), -we[k_res]])
    i_cm = np.vstack([d_cross.T @ wd_model, wd_model[k_res]]) if q else np.zeros((len(grad), 0))
    i_cc = np.concatenate([np.einsum("kc,k,kc->c", d_cross, w, d_cross), w[k_res]])
    v = i_cc - np.einsum("ja,ab,jb->j", i_cm, i_model_inv, i_cm)
    v = np.where(v < np.finfo(float).eps ** (1 / 3), np.nan, v)
    mi = stat.n * grad**2 / v
    epc = -grad / v
    var_lat = np.diag(cov_eta)
    sd_lat = np.where(var_lat > 0, np.sqrt(np.abs(var_lat)), np.nan)
    resid_var = np.diag(mats["theta"])
    with np.errstate(invalid="ignore"):
        sepc = np.concatenate([epc[:len(cross)] * sd_lat[[lat_k for lat_k, _ in cross]],
                               epc[len(cross):] / np.sqrt(resid_var[[a_ for a_, _ in rescov]]
                                                          * resid_var[[b_ for _, b_ in rescov]])])
    out = pd.DataFrame({"lhs": [lat[l_] for l_, _ in cross] + [obs[a_] for a_, _ in rescov],
                        "op": ["=~"] * len(cross) + ["~~"] * len(rescov),
                        "rhs": [obs[v_] for _, v_ in cross] + [obs[b_] for _, b_ in rescov],
                        "mi": mi, "epc": epc, "sepc_all": sepc})
    return out.sort_values("mi", ascending=False, kind="stable").reset_index(drop=True)


def wlsmv_standardized_residuals(fit: WLSMVFit) -> pd.DataFrame:
    r"""Correlation residuals divided by their standard errors, as lavaan 0.6's
    ``residuals(fit, type = "standardized")$cov`` for a WLSMV fit.

    With :math:`Q = I - \Delta E^{-1} \Delta^\top W` (correlation part; E the DWLS information),
    the residuals :math:`s - \hat\sigma` have asymptotic covariance :math:`Q \Gamma Q^\top / N`;
    each is divided by the square root of its variance. The diagonal (and the thresholds,
    reproduced exactly) is 0; a residual with variance 0 is 0 when it is 0, NaN otherwise.

    In R: ``lavaan::residuals(fit, type = "standardized")$cov``.
    """
    stat, pt, theta = _diagnostic_inputs(fit)
    ii, jj = stat.pairs[:, 0], stat.pairs[:, 1]
    w = stat.weights[stat.n_thresholds:]
    mdl = _DeltaModel(pt)
    sig = mdl.sigma(theta)[0]
    resid = stat.correlation.to_numpy()[ii, jj] - sig[ii, jj]
    infl = stat.influence[:, stat.n_thresholds:]
    if pt.n_free:
        delta = mdl.derivatives(theta)[:, ii, jj].T
        info = delta.T @ (w[:, None] * delta)
        infl = infl - (infl @ (w[:, None] * delta)) @ np.linalg.pinv(info) @ delta.T   # rows: Xi Q'
    var = np.einsum("ij,ij->j", infl, infl)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 1e-14, resid / np.sqrt(np.maximum(var, 0)), np.where(np.abs(resid) < 1e-6, 0.0, np.nan))
    p = len(pt.observed)
    out = np.zeros((p, p))
    out[ii, jj] = z
    out[jj, ii] = z
    return pd.DataFrame(out, index=list(pt.observed), columns=list(pt.observed))


def _diagnostic_inputs(fit):
    if not isinstance(fit, WLSMVFit) or fit.statistics is None:
        raise TypeError(f"fit: expected the result of fit_wlsmv, got {type(fit).__name__}")
    return fit.statistics, fit.partable, fit.theta
