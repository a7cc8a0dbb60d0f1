r"""Diagnostics of a fitted :class:`~analysis.sem.engine.EngineFit`, any number of groups:
modification indices and standardized residuals.

**Modification indices** (lavaan's ``modindices(fit)``; Sörbom, 1989; Saris, Satorra & Sörbom,
1987). The candidates are lavaan's "full" parameter table (``lav_partable_full``) per group —
every latent ``=~`` observed loading and every ``~~`` among the observed variables (those not in
regressions: an observed variable regressed on or predicting something is a latent of its own),
every ``~~`` among the latents, every regression ``~`` between two of the variables in the
model's regressions (a fixed.x covariate never on the left), and with a mean structure every
``~ 1`` —
less the parameters the model already estimates (a fixed parameter, such as a marker loading, is
a candidate; with ordered items, WLSMV/ULSMV, an item's variance is not: the delta
parameterization computes it). With :math:`\mathcal I` the expected information of the model
extended by the candidates (summed over cases), :math:`g` the score at the estimates (zero for
the model's own free parameters) and :math:`V_0` the inverse of the model's expected information
augmented by its constraints (lavaan's ``inverted.information.expected``, whatever the fit's own
SEs: robust or observed):

.. math:: V_j = \mathcal I_{jj} - \mathcal I_{j\theta} V_0 \mathcal I_{\theta j},\qquad
          MI_j = g_j^2 / V_j,\qquad EPC_j = g_j / V_j .

The information and the score by estimator (lavaan's ``modindices(information = "expected")``):

- complete data, ML, MLR, MLM: the expected information of the ML discrepancy at the implied
  moments, :math:`g = \partial\log L/\partial\theta`;
- FIML (``missing = "fiml"``, lavaan's ``"ml"``): the expected information under the missingness
  patterns at the implied moments (``h1.information = "structured"``;
  :func:`analysis.sem.h1.missing_expected`: Savalei, 2010), :math:`g` the FIML score;
- WLSMV, ULSMV: :math:`\mathcal I = \sum_g n_g\Delta_g^\top W_g\Delta_g` (:math:`\Delta_g` the
  Jacobian of the thresholds and polychorics, :math:`W_g` the diagonal DWLS weights, or I),
  :math:`g = -N\,\partial F/\partial\theta` with lavaan's :math:`F = T/(2N)`.

A candidate whose :math:`V_j/N` is below :math:`\epsilon^{1/3}` (lavaan's threshold: freeing it
would not be identified) is left out, as lavaan's ``na.remove = TRUE``. ``sepc_lv`` and
``sepc_all`` standardise the EPC with the fitted model's implied standard deviations
(lavaan's ``cov.std = TRUE``): a loading :math:`\times s_\eta` (and :math:`/ s_y`), a regression
:math:`\times s_{\eta_x}/s_{\eta_y}`, a covariance over the square root of the product of the two
(residual) variances (observed ones only in ``sepc_all``).

**Standardized residuals** (lavaan's ``resid(fit, type = "standardized")``, ``lavResiduals``):
the residual :math:`r = s - \hat\sigma` of every sample moment divided by its asymptotic standard
error (lavaan's ``lav_residuals_acov``, ``h1.acov = "unstructured"``), from the linearisation
:math:`\hat\theta - \theta \approx V_0\,\nabla\log L`. A residual below 1e-5 in absolute value is
kept as it is (lavaan divides it by 1); a negative variance gives NaN.

*Complete data, ML.* Per group g, with :math:`E = S - \Sigma`, :math:`e = m - \mu` normal-theory
sampling errors evaluated at the sample moments (:math:`\operatorname{Cov}(E_{ij}, E_{kl}) =
(S_{ik}S_{jl} + S_{il}S_{jk})/n_g`, :math:`\operatorname{Cov}(e) = S/n_g`), the score
:math:`\nabla_k\log L = \tfrac{n_g}{2}\operatorname{tr}(M_k E) + n_g\,\partial_k\mu^\top\Sigma^{-1}e`
with :math:`M_k = \Sigma^{-1}\partial_k\Sigma\,\Sigma^{-1}` at the implied moments, so

.. math::

    \operatorname{Var}(r_{ij}) = \frac{S_{ii}S_{jj} + S_{ij}^2}{n_g} - 2\,d_{ij}^\top V_0 c_{ij}
        + d_{ij}^\top V_0 C V_0 d_{ij},

:math:`d_{ij,k} = \partial_k\Sigma_{ij}`, :math:`c_{ij,k} = (S M_k S)_{ij}` (the covariance of
:math:`E_{ij}` with the score), :math:`C = \sum_g \tfrac{n_g}{2}\operatorname{tr}(M_k S M_l S) +
n_g\,\partial_k\mu^\top\Sigma^{-1}S\Sigma^{-1}\partial_l\mu` (the covariance of the score);
likewise for the means. Per group, as lavaan (which ignores the other groups' share of a
parameter shared by an equality constraint). With fixed.x covariates every covariance is
conditional on the covariates' sample moments (lavaan zeroes their rows of the h1 information
before inverting it: a Schur complement over their px(px+1)/2 moments), and their own block is 0.
Only the diagonal is formed: everything is a q x q matrix or a product of p x p matrices, never
the :math:`p^* \times p^*` weight matrices (:math:`p^{*2}` is 7 million numbers for 72 items).

*FIML (ML), and MLR or MLM with complete data* (:func:`_h1_standardized_residuals`):
:math:`\operatorname{Var}(r_g) = Q_g\Gamma_gQ_g^\top`, :math:`Q_g = I - \Delta_gV\Delta_g^\top H_g`,
:math:`H_g` the saturated model's information at the implied moments under the group's
missingness patterns (observed, lavaan's default for FIML and MLR; expected for MLM),
:math:`V = (\sum_g\Delta_g^\top H_g\Delta_g)^{-1}`, :math:`\Gamma_g = U_g^{-1}` with :math:`U_g`
the observed information at the sample (EM) moments, with robust SEs
:math:`U_g^{-1}J_gU_g^{-1}` (:math:`J_g` the first-order information: the casewise scores; for
complete data the fourth-moment :math:`\Gamma`), so MLR and MLM need the data
(``standardized_residuals(fit, data, group)``). These form :math:`p^*`-square matrices per group.

*WLSMV, ULSMV*: the residuals of the polychoric correlations and of the thresholds,
:math:`\operatorname{Var}(r_g) = Q_g\Gamma_gQ_g^\top/N`, :math:`Q_g = I - f_g\Delta_gE^{-1}\Delta_g^\top W_g`
(:math:`E = \sum_g f_g\Delta_g^\top W_g\Delta_g`, :math:`\Gamma_g` the NACOV; lavaan divides
every group's NACOV by the total N).

The fit measures (SRMR family, GFI, ...) are the engine's own: ``EngineFit.fit``.

Covered, each checked against lavaan 0.6-14 (tests/test_engine_diagnostics.py), any number of
groups, equality constraints across groups, fixed.x covariates: ML, MLR and MLM with complete
data (listwise); ML and MLR with ``missing = "fiml"``; WLSMV and ULSMV with every observed
variable ordered (delta parameterization; listwise, and WLSMV with ``missing = "pairwise"``).
With continuous indicators beside ordered ones (WLSMV/ULSMV), the modification indices only:
lavaan 0.6-14 has no standardized residuals for them (it stops), so they are refused here
(InputError; the cfa stage writes NaN and says why). Not covered: ML with
``information = "observed"`` and complete data (the residuals here use lavaan's default, the
expected information).

References
----------
Saris, W. E., Satorra, A., & Sörbom, D. (1987). The detection and correction of specification
    errors in structural equation models. Sociological Methodology 17, 105-129.
Sörbom, D. (1989). Model modification. Psychometrika 54, 371-384.
Bollen, K. A., & Arminger, G. (1991). Observational residuals in factor analysis and structural
    equation models. Sociological Methodology 21, 235-262.
Savalei, V. (2010). Expected versus observed information in SEM with incomplete normal and
    nonnormal data. Psychological Methods 15(4), 352-367.

In R: ``modindices(fit)``, ``resid(fit, type = "standardized")``, ``fitMeasures(fit)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.patterns import spd_inverse
from analysis.sem import h1
from analysis.sem.estimate import MLEstimator
from analysis.sem.fiml import FIMLEstimator
from analysis.sem.inference import covariance
from analysis.sem.model import build_model
from analysis.sem.robust import group_data
from analysis.sem.wls import WLSEstimator

__all__ = ["MI_COLUMNS", "modification_indices", "standardized_residuals"]

MI_COLUMNS = ["lhs", "op", "rhs", "group", "mi", "epc", "sepc_lv", "sepc_all"]
_V_TOL = np.finfo(float).eps ** (1 / 3)  # lavaan: V.diag below .Machine$double.eps^(1/3) is NA
_CHUNK = 400  # candidates per extended model


def _kind(fitted) -> str:
    """``"wls"`` (WLSMV, ULSMV), ``"fiml"`` (ML or MLR with missing = "fiml") or ``"ml"`` (complete data)."""
    est = getattr(fitted, "estimator", None)
    if isinstance(est, WLSEstimator):
        return "wls"
    if isinstance(getattr(fitted, "fiml", None), FIMLEstimator):
        return "fiml"
    if est is not None:
        raise TypeError(f"diagnostics: unknown estimator {type(est).__name__} of the fit")  # a bug, not input
    return "ml"


def _fiml_patterns(fitted):
    return list(fitted.fiml.patterns)


def _x_index(blk, st) -> list[int]:
    return [list(st.ov).index(v) for v in blk.ov_x]


def _fiml_h1_expected(fitted) -> list[np.ndarray]:
    """Per group the saturated model's expected information under the group's missingness
    patterns at the fitted implied moments (:func:`analysis.sem.h1.missing_expected`): the same
    for the model extended by candidates at their current values."""
    return [h1.missing_expected(pt, sigma, _x_index(blk, st))
            for blk, st, pt, (sigma, _) in zip(fitted.model.blocks, fitted.stats, _fiml_patterns(fitted),
                                               fitted.model.implied(fitted.x))]


def _fiml_expected_information(model, x, a1: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    r"""The expected information of a FIML model at ``x`` (summed over cases): per group
    :math:`\Delta_g^\top A_g\Delta_g` with :math:`A_g` the saturated model's expected information
    under the group's missingness patterns at the implied moments (``a1``, :func:`_fiml_h1_expected`;
    lavaan's ``information = "expected"`` with ``h1.information = "structured"``), and per group
    :math:`A_g\Delta_g` (moments x q: the modification indices reuse it)."""
    q = model.nfree
    out = np.zeros((q, q))
    a_jac = []
    for a, (d_s, d_m) in zip(a1, _dense_derivatives(model, x)):
        jac = h1.jacobian(d_s, d_m)
        a_jac.append(a @ jac)
        out += jac.T @ a_jac[-1]
    return 0.5 * (out + out.T), a_jac


def _fiml_candidate_information(model, x, q: int, a1: list[np.ndarray], a_j0: list[np.ndarray]):
    r"""The parts of :func:`_fiml_expected_information` of a model extended by candidates (free
    indices after the model's ``q``) that the modification indices use: with :math:`J = [J_0\,J_c]`
    the Jacobian of the moments (model, candidates) and :math:`A_g` the saturated model's expected
    information, :math:`\mathcal I_{c0} = \sum_g J_{c,g}^\top (A_gJ_{0,g})` (``a_j0``, computed
    once) and the diagonal of :math:`\mathcal I_{cc} = \sum_g J_{c,g}^\top A_gJ_{c,g}`. A
    candidate moves few moments (a residual covariance one, a loading one row of
    :math:`\Sigma`), so :math:`J_c` is taken as a sparse matrix, built from the candidates' own
    derivatives (not the model's q x p x p), and each diagonal element is the quadratic form of
    :math:`A_g` on the candidate's non-zero moments only: the cost is the non-zeros times q and the
    sum of their squares, not a :math:`p^*`-long row of :math:`A_g` per non-zero."""
    from scipy import sparse

    n_c = model.nfree - q
    i12, i22 = 0.0, 0.0
    for a, aj0, (index, ds, dm) in zip(a1, a_j0, model.derivatives(x)):
        p = ds.shape[1]
        rows, cols, _ = h1.moment_cells(p)
        sel = np.flatnonzero(index >= q)
        cells = np.concatenate([dm[sel], ds[sel[:, None], rows[None, :], cols[None, :]]], axis=1)
        jac_c = np.zeros((n_c, p + len(rows)))
        at = index[sel] - q
        if len(np.unique(at)) == len(at):  # a candidate is one row: a plain assignment (np.add.at is slow)
            jac_c[at] = cells
        else:  # rows sharing an index add
            np.add.at(jac_c, at, cells)
        jc = sparse.csr_matrix(jac_c)  # candidates x moments
        i12 = i12 + np.asarray(jc @ aj0)
        i22 = i22 + _sparse_quadratic(jc, a)
    return i12, i22


def _sparse_quadratic(jc, a: np.ndarray) -> np.ndarray:
    r""":math:`j_c^\top A j_c` for each row :math:`j_c` of the CSR matrix ``jc``, from the cells of
    ``a`` at the row's non-zeros: the rows with the same non-zero columns (every loading of one
    item, whatever the factor) read their block of ``a`` once."""
    nnz = np.diff(jc.indptr)
    out = np.zeros(jc.shape[0])
    for k in np.unique(nnz[nnz > 0]):
        rows = np.flatnonzero(nnz == k)
        at = jc.indptr[rows][:, None] + np.arange(k)[None, :]  # (rows, k) positions in data/indices
        idx, val = jc.indices[at], jc.data[at]
        if k == 1:
            out[rows] = a[idx[:, 0], idx[:, 0]] * val[:, 0] ** 2
            continue
        cells, which = np.unique(idx, axis=0, return_inverse=True)
        which = which.ravel()
        for u, cell in enumerate(cells):
            sel = np.flatnonzero(which == u)
            v = val[sel]
            out[rows[sel]] = np.sum((v @ a[np.ix_(cell, cell)]) * v, axis=1)
    return out


def _wls_information(est, x) -> np.ndarray:
    r"""The expected information of DWLS/ULS (lavaan's ``information = "expected"``), summed over
    cases: :math:`N\sum_g f_g\Delta_g^\top W_g\Delta_g`, :math:`f_g = n_g/N`."""
    out = sum(n_g * d.T @ (w[:, None] * d) for n_g, d, w in zip(est.nobs, est.jacobians(x), est.weight))
    return 0.5 * (out + out.T)


def _model_covariance(fitted, a1: list[np.ndarray] | None = None) -> np.ndarray:
    """The inverse expected information augmented by the constraints (lavaan's
    ``inverted.information.expected``), whatever the fit's own SEs (robust or observed); with
    FIML the expected information under the missingness patterns."""
    if _kind(fitted) == "fiml":
        a1 = a1 if a1 is not None else _fiml_h1_expected(fitted)
        info, _ = _fiml_expected_information(fitted.model, fitted.x, a1)
        return covariance(info, fitted.optimum.con_jac)
    if _kind(fitted) == "wls":
        return covariance(_wls_information(fitted.estimator, fitted.x), fitted.optimum.con_jac)
    return covariance(fitted.information, fitted.optimum.con_jac)


def _candidates(fitted) -> list[tuple[str, str, str, int]]:
    """lavaan's full parameter table per group, less the free parameters of the model and the
    fixed.x rows: ``(lhs, op, rhs, group)``."""
    model = fitted.model
    pt = model.partable
    free_key = set()
    exo_key = set()
    for r in pt.itertuples():
        key = (r.lhs, r.op, r.rhs, r.group)
        if r.op == "~~":
            keys = [key, (r.rhs, r.op, r.lhs, r.group)]
        else:
            keys = [key]
        if r.free > 0:
            free_key.update(keys)
        if r.exo == 1:
            exo_key.update(keys)
    out = []
    for g, blk in enumerate(model.blocks, start=1):
        dummy = set(blk.dummy)
        lv = [v for v in blk.lv if v not in dummy]
        ov = [v for v in blk.ov if v not in dummy and v not in set(blk.ov_x)]
        sub = pt[(pt["block"] == g) & (pt["op"] == "~")]
        eqs = list(dict.fromkeys([*sub["lhs"], *sub["rhs"]]))  # the variables of the regressions
        rows = [(f, "=~", y) for f in lv for y in ov]
        ordinal = _kind(fitted) == "wls"  # an ordered item's variance is not a parameter (delta)
        rows += [(a, "~~", b) for i, a in enumerate(ov) for b in ov[i + ordinal:]]
        rows += [(a, "~~", b) for i, a in enumerate(lv) for b in lv[i:]]
        rows += [(a, "~", b) for a in eqs if a not in set(blk.ov_x) for b in eqs if a != b]
        if model.meanstructure:
            rows += [(v, "~1", "") for v in ov + lv]
        for lhs, op, rhs in rows:
            key = (lhs, op, rhs, g)
            if key not in free_key and key not in exo_key:
                out.append(key)
    return out


def _row_index(pt: pd.DataFrame) -> dict:
    """(lhs, op, rhs, group) of each model row to its row number (``~~`` both ways round)."""
    index = {}
    for k, r in enumerate(pt.itertuples()):
        if r.op in ("=~", "~", "~~", "~1"):
            index.setdefault((r.lhs, r.op, r.rhs, r.group), k)
            if r.op == "~~":
                index.setdefault((r.rhs, r.op, r.lhs, r.group), k)
    return index


def _extended(fitted, candidates):
    """The parameter table with the candidates free (indices q+1, ...), and the values at which
    to evaluate it: the estimates and each candidate's current (fixed) value."""
    pt = fitted.model.partable.copy()
    q = fitted.model.nfree
    values = fitted.model.row_values(fitted.x)
    index = _row_index(pt)
    extra_x = []
    new_rows = []
    for j, (lhs, op, rhs, g) in enumerate(candidates):
        k = index.get((lhs, op, rhs, g))
        if k is not None:  # a fixed row of the model: free it
            pt.at[k, "free"] = q + j + 1
            extra_x.append(values[k])
        else:
            new_rows.append({"lhs": lhs, "op": op, "rhs": rhs, "block": g, "group": g, "free": q + j + 1,
                             "ustart": np.nan, "exo": 0, "label": "", "plabel": f".x{j + 1}."})
            extra_x.append(0.0)
    if new_rows:
        add = pd.DataFrame(new_rows)
        # keep the constraint rows last, as lavaan's table: insert the new rows before them
        is_con = pt["op"].isin(("==", "<", ">", ":="))
        pt = pd.concat([pt[~is_con], add, pt[is_con]], ignore_index=True)
    return pt, np.concatenate([fitted.x, np.asarray(extra_x, dtype=float)])


def modification_indices(fitted) -> pd.DataFrame:
    """lavaan's ``modindices(fit)`` for an :class:`~analysis.sem.engine.EngineFit` (see the
    module docstring): one row per candidate parameter in lavaan's order, columns
    :data:`MI_COLUMNS` (``group`` 1 with one group). Sort with ``.sort_values("mi")``.

    In R: ``modindices(fit)`` (``sepc.lv``, ``sepc.all`` as ``sepc_lv``, ``sepc_all``).
    """
    kind = _kind(fitted)
    candidates = _candidates(fitted)
    if not candidates:
        return pd.DataFrame(columns=MI_COLUMNS)
    q = fitted.model.nfree
    if kind == "fiml":  # A_g J_g of the model's own parameters: its information, and the same for every chunk
        a1 = _fiml_h1_expected(fitted)
        info0, a_j0 = _fiml_expected_information(fitted.model, fitted.x, a1)
        v0 = covariance(info0, fitted.optimum.con_jac)
    else:
        v0 = _model_covariance(fitted)
    n = sum(st.n for st in fitted.stats)
    v, g = np.zeros(len(candidates)), np.zeros(len(candidates))
    # in chunks: the extended information is (q + chunk)^2 and its derivatives chunk x p x p, so a
    # large model (72 items: 3,800 candidates) never holds them all at once
    for lo in range(0, len(candidates), _CHUNK):
        chunk = candidates[lo:lo + _CHUNK]
        pt_ext, x_ext = _extended(fitted, chunk)
        model_ext = build_model(pt_ext).with_sample(list(fitted.stats))
        if kind == "fiml":
            patterns = _fiml_patterns(fitted)
            grad_f = FIMLEstimator(model_ext, list(fitted.stats), patterns).gradient(x_ext)
            i12, i22 = _fiml_candidate_information(model_ext, x_ext, q, a1, a_j0)
            v[lo:lo + len(chunk)] = i22 - np.sum((i12 @ v0) * i12, axis=1)
            g[lo:lo + len(chunk)] = -n / 2 * grad_f[q:]
            continue
        elif kind == "wls":
            est = WLSEstimator(model_ext, fitted.estimator.stats, fitted.estimator.name)
            info = _wls_information(est, x_ext)
            # lavaan's DWLS/ULS score is the gradient of its F = T/(2N): -N dF/dx = -N/2 d(T/N)/dx
            # plays the part of d log L/dx below (MI = N (dF)^2 / V per case)
            grad_f = est.gradient(x_ext)
        else:
            _, grad_f, info = MLEstimator(model_ext, list(fitted.stats)).scoring(x_ext)
        i12 = info[q:, :q]
        v[lo:lo + len(chunk)] = np.diag(info[q:, q:]) - np.sum((i12 @ v0) * i12, axis=1)
        g[lo:lo + len(chunk)] = -n / 2 * grad_f[q:]  # d log L / d theta (F = chi-square / N)
    ok = v / n >= _V_TOL
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = np.where(ok, g**2 / v, np.nan)
        epc = np.where(ok, g / v, np.nan)
    sepc_lv, sepc_all = _standardised_epc(fitted, candidates, epc)
    out = pd.DataFrame({"lhs": [c[0] for c in candidates], "op": [c[1] for c in candidates],
                        "rhs": [c[2] for c in candidates], "group": [c[3] for c in candidates],
                        "mi": mi, "epc": epc, "sepc_lv": sepc_lv, "sepc_all": sepc_all})
    # lavaan's order: the model's own fixed rows (in its table's order), then the added ones
    row_of = _row_index(fitted.model.partable)
    n = len(fitted.model.partable)
    order = np.array([row_of.get(c, n + j) for j, c in enumerate(candidates)])
    out, ok = out.iloc[np.argsort(order, kind="stable")], ok[np.argsort(order, kind="stable")]
    return out[ok].reset_index(drop=True)


def _standardised_epc(fitted, candidates, epc):
    """sepc.lv and sepc.all with the fitted model's implied SDs and (residual) variances."""
    state = fitted.model.state(fitted.x)
    lv_sd, ov_sd, lv_var, ov_var = [], [], [], []
    dummy = [set(blk.dummy) for blk in fitted.model.blocks]
    for blk, st in zip(fitted.model.blocks, state):
        with np.errstate(invalid="ignore"):
            lv_sd.append({v: np.sqrt(st["veta"][k, k]) if st["veta"][k, k] > 0 else np.nan
                          for k, v in enumerate(blk.lv)})
            ov_sd.append({v: np.sqrt(st["sigma"][k, k]) for k, v in enumerate(blk.ov)})
        lv_var.append({v: st["psi"][k, k] for k, v in enumerate(blk.lv)})
        ov_var.append({v: st["theta"][k, k] for k, v in enumerate(blk.ov)})
    s_lv, s_all = np.full(len(epc), np.nan), np.full(len(epc), np.nan)
    for j, ((lhs, op, rhs, g), e) in enumerate(zip(candidates, epc)):
        b = g - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            if op == "=~":
                s_lv[j] = e * lv_sd[b][lhs]
                s_all[j] = s_lv[j] / ov_sd[b][rhs]
            elif op == "~":  # std.lv scales latents only: an observed variable's SD is 1 there
                sd_l = lv_sd[b][lhs] if lhs not in dummy[b] else 1.0
                sd_r = lv_sd[b][rhs] if rhs not in dummy[b] else 1.0
                s_lv[j] = e * sd_r / sd_l
                s_all[j] = e * lv_sd[b][rhs] / lv_sd[b][lhs]
            elif op == "~1":
                sd = lv_sd[b].get(lhs) if lhs in lv_sd[b] else ov_sd[b][lhs]
                s_lv[j] = e / lv_sd[b][lhs] if lhs in lv_sd[b] else e
                s_all[j] = e / sd
            elif lhs in lv_var[b]:  # latent (residual) covariance
                prod = lv_var[b][lhs] * lv_var[b][rhs]
                s_lv[j] = s_all[j] = e / np.sqrt(prod) if prod > 0 else np.nan
            else:  # observed residual covariance: standardised only in std.all
                prod = ov_var[b][lhs] * ov_var[b][rhs]
                s_lv[j] = e
                s_all[j] = e / np.sqrt(prod) if prod > 0 else np.nan
    return s_lv, s_all


def _dense_derivatives(model, x):
    """Per group (dSigma q x p x p, dmu q x p), rows sharing a free index summed."""
    q = model.nfree
    out = []
    for blk, (index, ds, dm) in zip(model.blocks, model.derivatives(x)):
        d_s = np.zeros((q, blk.p, blk.p))
        d_m = np.zeros((q, blk.p))
        if len(np.unique(index)) == len(index):  # no shared index: a plain assignment (np.add.at is slow)
            d_s[index] = ds
            d_m[index] = dm
        else:
            np.add.at(d_s, index, ds)
            np.add.at(d_m, index, dm)
        out.append((d_s, d_m))
    return out


def standardized_residuals(fitted, data: pd.DataFrame | None = None,
                           group: str | None = None) -> list[tuple[pd.DataFrame, pd.Series | None]]:
    """lavaan's ``resid(fit, type = "standardized")`` per group: the standardized covariance
    residuals (p x p, the model's observed variables; the polychoric correlations with ordered
    items, diagonal 0) and a Series: with a mean structure the standardized mean residuals (None
    without), with ordered items (WLSMV, ULSMV) the thresholds' (indexed ``"item|t1"``, ...).
    See the module docstring for the formulas. ``data`` and ``group`` (the data and group column
    the model was fitted to) are needed for an MLR or MLM fit with complete data only.

    Raises
    ------
    InputError
        An MLR or MLM fit with complete data without ``data``.

    In R: ``resid(fit, type = "standardized")$cov`` (and ``$mean``, or ``$th``); a list over groups.
    """
    kind = _kind(fitted)
    if kind == "wls":
        return _wls_standardized_residuals(fitted)
    if kind == "fiml":
        return _h1_standardized_residuals(fitted, _fiml_patterns(fitted), "observed")
    if fitted.robust is not None:  # MLR, MLM: lavaan's robust ACOV of the sample moments needs the cases
        if data is None:
            raise InputError(f"standardized residuals of an {fitted.robust.estimator} fit need its data (lavaan's "
                             "robust covariance of the sample moments): standardized_residuals(fit, data, group)")
        rows = group_data(fitted.model, list(fitted.stats), data, group, list(fitted.group_labels))
        patterns = [_Complete(observed=(np.arange(r.shape[1]),), rows=(r,)) for r in rows]
        return _h1_standardized_residuals(fitted, patterns, fitted.robust.information)
    v0 = _model_covariance(fitted)
    meanstructure = fitted.model.meanstructure
    out = []
    for blk, st, (sigma, mu), (d_s, d_m) in zip(fitted.model.blocks, fitted.stats, fitted.model.implied(fitted.x),
                                               _dense_derivatives(fitted.model, fitted.x)):
        n, s = st.n, st.cov
        sinv = np.linalg.inv(sigma)
        sm = s @ (sinv @ d_s @ sinv)  # S M_k, q x p x p
        c_cov = sm @ s  # Cov(E_ij, score_k) = (S M_k S)_ij
        c_score = n / 2 * np.einsum("kab,lba->kl", sm, sm)  # Cov(score)
        var_e = (np.outer(np.diag(s), np.diag(s)) + s**2) / n
        dmu_w = d_m @ sinv  # q x p: dmu_k' Sigma^-1
        c_mean = dmu_w @ s  # Cov(e_i, score_k) = (S Sigma^-1 dmu_k)_i
        var_m = np.diag(s) / n
        if meanstructure:
            c_score = c_score + n * dmu_w @ s @ dmu_w.T
        x = [st.ov.index(v) for v in blk.ov_x]
        if x:  # fixed.x: the covariates' moments are fixed, every covariance is conditional on them
            var_e, c_cov, c_score, var_m, c_mean = _condition_on_x(x, n, s, var_e, c_cov, c_score, var_m, c_mean,
                                                                   meanstructure)
        w = v0 @ c_score @ v0
        var = var_e - 2 * np.einsum("kij,kl,lij->ij", d_s, v0, c_cov) + np.einsum("kij,kl,lij->ij", d_s, w, d_s)
        z = _z_lavaan(s - sigma, var)
        if x:
            z[np.ix_(x, x)] = 0.0  # the covariates' own block is fitted exactly (lavaan: 0)
        cov = pd.DataFrame(z, index=list(st.ov), columns=list(st.ov))
        mean = None
        if meanstructure:
            var_mu = var_m - 2 * np.einsum("ki,kl,li->i", d_m, v0, c_mean) + np.einsum("ki,kl,li->i", d_m, w, d_m)
            zm = _z_lavaan(st.mean - mu, var_mu)
            zm[x] = 0.0
            mean = pd.Series(zm, index=list(st.ov))
        out.append((cov, mean))
    return out


def _condition_on_x(x, n, s, var_e, c_cov, c_score, var_m, c_mean, meanstructure):
    r"""The covariances of the sampling errors and the score given the covariates' moments
    (lavaan's fixed.x: the h1 information with the x rows removed, inverted — a Schur complement):
    :math:`\operatorname{Cov}(a, b \mid s_x) = \operatorname{Cov}(a, b) - \operatorname{Cov}(a, s_x)
    \operatorname{Var}(s_x)^{-1}\operatorname{Cov}(s_x, b)` over the kx = px(px+1)/2 covariances
    of the covariates (and their px means)."""
    a, b = np.triu_indices(len(x))
    xa, xb = np.asarray(x)[a], np.asarray(x)[b]
    # Cov(E_ij, E_ab) = (S_ia S_jb + S_ib S_ja) / n for each covariate pair (a, b): kx x p x p
    g = (s[:, xa].T[:, :, None] * s[:, xb].T[:, None, :] + s[:, xb].T[:, :, None] * s[:, xa].T[:, None, :]) / n
    h = np.linalg.inv(g[:, xa, xb])
    cx = c_cov[:, xa, xb]  # q x kx: Cov(score, E_x)
    var_e = var_e - np.einsum("tij,tu,uij->ij", g, h, g)
    c_cov = c_cov - np.einsum("tij,tu,lu->lij", g, h, cx)
    c_score = c_score - cx @ h @ cx.T
    if meanstructure:
        sxx_inv = np.linalg.inv(s[np.ix_(x, x)] / n)
        sx = s[:, x] / n  # Cov(e_i, e_x)
        cmx = c_mean[:, x]  # Cov(score, e_x)
        var_m = var_m - np.einsum("ia,ab,ib->i", sx, sxx_inv, sx)
        c_mean = c_mean - cmx @ sxx_inv @ sx.T
        c_score = c_score - cmx @ sxx_inv @ cmx.T
    return var_e, c_cov, c_score, var_m, c_mean


def _z_lavaan(resid: np.ndarray, var: np.ndarray) -> np.ndarray:
    """lavaan's ``lav_residuals``: a residual below 1e-5 in absolute value is divided by 1 (kept
    as it is); a negative or non-finite variance gives NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.isfinite(var) & (var >= 0), resid / np.sqrt(np.abs(var)), np.nan)
    return np.where(np.abs(resid) < 1e-5, resid, z)


def _inverse_nonzero(a: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric matrix on its rows that are not all zero (zero elsewhere), as
    lavaan's ``lav_matrix_symmetric_inverse``."""
    keep = ~(np.all(a == 0, axis=0) & np.all(a == 0, axis=1))
    out = np.zeros_like(a)
    out[np.ix_(keep, keep)] = _symmetric_inverse(a[np.ix_(keep, keep)])
    return out


def _symmetric_inverse(a: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric matrix: from its Cholesky factor when it is positive definite
    (:func:`analysis.patterns.spd_inverse`), else ``np.linalg.inv``."""
    chol = spd_inverse(a)
    return chol[0] if chol is not None else np.linalg.inv(a)


class _Complete(NamedTuple):
    """One group's complete cases as a single missingness pattern (for :mod:`analysis.sem.h1`)."""

    observed: tuple
    rows: tuple


def _h1_standardized_residuals(fitted, patterns, information: str) -> list[tuple[pd.DataFrame, pd.Series | None]]:
    r"""lavaan's ``lav_residuals_acov`` (``z.type = "standardized"``, ``h1.acov = "unstructured"``)
    for FIML fits and robust (MLR, MLM) complete-data fits: per group, with :math:`H_g` the
    saturated model's information at the implied moments (``information``: observed, as lavaan's
    default for FIML and MLR, or expected, MLM; under the group's missingness patterns),
    :math:`U_g` the observed one at the sample (EM) moments, :math:`\Delta_g` the Jacobian of the
    implied moments and :math:`V = (\sum_g\Delta_g^\top H_g\Delta_g)^{-1}` (augmented by the
    constraints), :math:`Q_g = I - \Delta_gV\Delta_g^\top H_g` and
    :math:`\operatorname{Var}(r_g) = Q_g\Gamma_gQ_g^\top` with :math:`\Gamma_g = U_g^{-1}`, or with
    robust SEs (MLR, MLM) :math:`U_g^{-1}J_gU_g^{-1}`, :math:`J_g` the first-order information at
    the sample moments. Without a mean structure the covariances only (lavaan's moments)."""
    model, x = fitted.model, fitted.x
    robust = fitted.robust is not None
    meanstructure = model.meanstructure
    parts = []
    a0 = np.zeros((model.nfree, model.nfree))
    for blk, st, pt, (sigma, mu), (d_s, d_m) in zip(model.blocks, fitted.stats, patterns, model.implied(x),
                                                   _dense_derivatives(model, x)):
        xi = _x_index(blk, st)
        p = len(st.mean)
        use = np.arange(p + p * (p + 1) // 2) >= (0 if meanstructure else p)  # the moments in the model
        jac = h1.jacobian(d_s, d_m)[use]
        at = mu if meanstructure else st.mean
        h_s = (h1.missing_observed(pt, sigma, at, xi) if information == "observed"
               else h1.missing_expected(pt, sigma, xi))
        if not use.all():
            h_s = h_s[np.ix_(use, use)]
        b = h_s @ jac  # moments x q
        a0 += jac.T @ b
        parts.append((st, pt, xi, use, jac, b, sigma, mu))
    v = covariance(0.5 * (a0 + a0.T), fitted.optimum.con_jac)
    # FIML: U_g^-1 = R R' from the root of the saturated information (A_1) the robust indices'
    # V6 trace used (computed once: FIMLEstimator.saturated_inverse_root)
    roots = fitted.fiml.saturated_inverse_root() if fitted.fiml is not None else None
    out = []
    for g, (st, pt, xi, use, jac, b, sigma, mu) in enumerate(parts):
        dv = jac @ v
        if roots is not None and roots[g] is not None and use.all():
            var = _fiml_residual_variance(roots[g], b, dv, pt, st if robust else None)
        else:  # complete data (MLR, MLM), or A_1 not positive definite: lavaan's inverse on the rows not zero
            u_inv = _inverse_nonzero(fitted.fiml.saturated_observed_information()[g] if fitted.fiml is not None
                                     else h1.missing_observed(pt, st.cov, st.mean, xi))
            gamma = u_inv @ h1.missing_first_order(pt, st.cov, st.mean, xi) @ u_inv if robust else u_inv
            if not use.all():
                gamma = gamma[np.ix_(use, use)]
            gb = gamma @ b
            var = (np.diag(gamma) - 2 * np.einsum("iq,iq->i", dv, gb)
                   + np.einsum("iq,iq->i", dv @ (b.T @ gb), dv))
        p = len(st.mean)
        rows, cols, _ = h1.moment_cells(p)
        resid = np.concatenate([st.mean - mu, (st.cov - sigma)[rows, cols]])[use]
        z = _z_lavaan(resid, var)
        zc = z[-len(rows):]
        cov = np.zeros((p, p))
        cov[rows, cols] = zc
        cov[cols, rows] = zc
        mean = pd.Series(z[:p], index=list(st.ov)) if meanstructure else None
        out.append((pd.DataFrame(cov, index=list(st.ov), columns=list(st.ov)), mean))
    return out


def _fiml_residual_variance(root, b: np.ndarray, dv: np.ndarray, pt, st=None) -> np.ndarray:
    r"""The diagonal of :math:`Q\Gamma Q^\top` of :func:`_h1_standardized_residuals` for a FIML
    group (every moment in the model) without forming :math:`\Gamma`: with ``root`` = (R, keep)
    (:math:`A_1^{-1} = RR^\top` on the kept cells, zero elsewhere;
    :meth:`~analysis.sem.fiml.FIMLEstimator.saturated_inverse_root`), :math:`\Gamma = ZZ^\top`
    with :math:`Z = R` (ML) or, with robust SEs (``st`` the group's EM moments: MLR),
    :math:`Z = RR^\top S^\top` (S the casewise scores at the EM moments,
    :func:`analysis.sem.h1.missing_scores`: :math:`\Gamma = A_1^{-1}JA_1^{-1}`), so
    :math:`\operatorname{diag}\Gamma` is the rows' sums of squares of Z and
    :math:`\Gamma B = Z(Z^\top B)` (``b`` = :math:`H\Delta`, ``dv`` = :math:`\Delta V`):
    :math:`\operatorname{Var}(r) = \operatorname{diag}\Gamma - 2\operatorname{diag}(\Delta V B^\top\Gamma)
    + \operatorname{diag}(\Delta VB^\top\Gamma BV\Delta^\top)`."""
    from scipy.linalg import blas

    r_mat, keep = root
    diag = np.zeros(len(b))
    gb = np.zeros_like(b)
    if st is None:  # triangular products: R (R' B)
        diag[keep] = np.einsum("ij,ij->i", r_mat, r_mat)
        gb[keep] = blas.dtrmm(1.0, r_mat, blas.dtrmm(1.0, r_mat, b[keep], trans_a=1))
    else:
        scores = h1.missing_scores(pt, st.cov, st.mean)[:, keep]
        z = blas.dtrmm(1.0, r_mat, blas.dtrmm(1.0, r_mat, scores.T, trans_a=1))  # A_1^-1 S'
        diag[keep] = np.einsum("ij,ij->i", z, z)
        gb[keep] = z @ (z.T @ b[keep])
    return diag - 2 * np.einsum("iq,iq->i", dv, gb) + np.einsum("iq,iq->i", dv @ (b.T @ gb), dv)


def _wls_standardized_residuals(fitted) -> list[tuple[pd.DataFrame, pd.Series]]:
    r"""lavaan's ``lav_residuals_acov`` for ordered items (DWLS/ULS): per group, with
    :math:`\Gamma_g = n_g\Xi_g^\top\Xi_g` (the NACOV of the thresholds and polychorics, :math:`\Xi_g`
    the casewise influence functions), :math:`W_g` the diagonal weights, :math:`\Delta_g` the
    Jacobian of the implied statistics and :math:`E = \sum_g f_g\Delta_g^\top W_g\Delta_g`
    (inverted on the constraints), :math:`Q_g = I - f_g\Delta_gE^{-1}\Delta_g^\top W_g` and
    :math:`\operatorname{Var}(r_g) = Q_g\Gamma_gQ_g^\top/N` (lavaan divides every group's NACOV
    by the total N). The correlations' and the thresholds' residuals, each over its SE."""
    est, x = fitted.estimator, fitted.x
    if any(st.continuous for st in est.stats):  # lavaan 0.6-14: lav_residuals_se "not ready yet"
        raise InputError("standardized residuals of a model with continuous and ordered variables are not available "
                         "(lavaan 0.6-14 does not compute them either)")
    v = covariance(_wls_information(est, x), fitted.optimum.con_jac)  # E^-1 / N
    out = []
    for n_g, st, d, w, s, e in zip(est.nobs, est.stats, est.jacobians(x), est.weight, est.sample, est.implied(x)):
        xi_q = st.influence - n_g * (st.influence @ (w[:, None] * d)) @ v @ d.T  # rows of Xi Q'
        var = n_g / est.ntotal * np.einsum("ij,ij->j", xi_q, xi_q)
        z = _z_lavaan(s - e, var)
        nth = st.n_thresholds
        p = len(st.names)
        cor = np.zeros((p, p))
        cor[st.pairs[:, 0], st.pairs[:, 1]] = z[nth:]
        cor[st.pairs[:, 1], st.pairs[:, 0]] = z[nth:]
        out.append((pd.DataFrame(cor, index=list(st.names), columns=list(st.names)),
                    pd.Series(z[:nth], index=list(st.thresholds.index))))
    return out
