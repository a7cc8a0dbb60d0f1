"""Factor rotation for exploratory factor analysis, as ``psych::fa`` rotates.

An unrotated :math:`p \\times m` loading matrix :math:`A` fits the correlations only up to a
transformation: for any non-singular :math:`T` with unit-length columns,

.. math::

    \\Lambda = A\\,(T^\\top)^{-1}, \\qquad \\Phi = T^\\top T, \\qquad
    \\Lambda \\Phi \\Lambda^\\top = A A^\\top,

reproduces the same common part of the correlation matrix. A rotation picks the :math:`T` that
minimises a simplicity criterion :math:`Q(\\Lambda)`; an orthogonal rotation keeps
:math:`T` orthogonal, so :math:`\\Phi = I` and :math:`\\Lambda = A T`. :math:`T` is what
GPArotation calls ``Th``; ``psych::fa(...)$rot.mat`` is :math:`(T^\\top)^{-1}`, so that
:math:`\\Lambda = A` ``rot.mat``.

Methods (and what ``psych::fa(x, k, rotate = ...)`` calls for them, psych 2.2.9 with
GPArotation 2022.10-2; every method starts from :math:`T = I`):

================  ======================================================================
``"none"``        :math:`\\Lambda = A`.
``"varimax"``     orthogonal; ``stats::varimax(A)`` (Kaiser normalisation, ``eps = 1e-5``,
                  at most 1000 iterations), Kaiser's (1958) criterion by the SVD
                  algorithm (Sherin, 1966; ten Berge, 1984).
``"quartimin"``   oblique; ``GPArotation::quartimin(A)``: gradient projection,
                  :math:`Q = \\tfrac14 \\sum_i \\sum_{j \\ne l} \\lambda_{ij}^2 \\lambda_{il}^2`.
``"oblimin"``     oblique; ``GPArotation::oblimin(A, gam = 0)`` (direct quartimin, the
                  same criterion); with ``gamma`` :math:`\\gamma`,
                  :math:`Q = \\tfrac14 \\operatorname{tr}\\{(\\Lambda\\circ\\Lambda)^\\top
                  (I - \\tfrac{\\gamma}{p}\\mathbf{1}\\mathbf{1}^\\top)(\\Lambda\\circ\\Lambda)N\\}`,
                  :math:`N = \\mathbf{1}\\mathbf{1}^\\top - I`.
``"geomin"``      oblique geomin (Yates, 1987; Browne, 2001), Mplus's default:
                  ``GPArotation::geominQ(A, delta = .01)``,
                  :math:`Q = \\sum_i \\big(\\prod_j (\\lambda_{ij}^2 + \\delta)\\big)^{1/m}`.
                  Alias ``"geominQ"``. Note that ``psych::fa(rotate = "geomin")`` does *not*
                  rotate (psych prints "Specified rotation not found, rotate='none' used");
                  in R ask for ``rotate = "geominQ"``.
``"geominT"``     orthogonal geomin, ``GPArotation::geominT(A, delta = .01)``.
``"promax"``      oblique; ``psych::kaiser(A, rotate = "Promax")``: rows of :math:`A`
                  scaled to unit length, varimax, then the least-squares fit of the
                  target :math:`\\lambda_{ij}|\\lambda_{ij}|^{k-1}` (:math:`k` =
                  ``power`` = 4; Hendrickson & White, 1964) with psych's column scaling so
                  that :math:`\\operatorname{diag}\\Phi = 1`, rows scaled back.
                  ``"Promax"`` (psych's capitalised variant, ``psych::Promax(A)``) is the
                  same without the row scaling around the target step (``normalize=False``).
================  ======================================================================

The gradient projection algorithm (Jennrich, 2001, 2002; Bernaards & Jennrich, 2005): with
:math:`G` the gradient of :math:`Q(A (T^\\top)^{-1})` with respect to :math:`T`,

* oblique: :math:`G = -(\\Lambda^\\top \\partial Q/\\partial\\Lambda\\; T^{-1})^\\top`,
  projected onto the tangent space of unit-column matrices
  :math:`G_p = G - T \\operatorname{diag}(\\mathbf{1}^\\top (T \\circ G))`, step
  :math:`T \\leftarrow \\text{normalise columns of } (T - \\alpha G_p)`;
* orthogonal: :math:`G = A^\\top \\partial Q/\\partial\\Lambda`,
  :math:`G_p = G - T\\,\\operatorname{sym}(T^\\top G)`, step
  :math:`T \\leftarrow UV^\\top` for :math:`T - \\alpha G_p = UDV^\\top`;

the step size :math:`\\alpha` doubles at every iteration and is halved (at most 10 times) until
:math:`Q` falls by at least :math:`\\tfrac12 \\alpha \\lVert G_p\\rVert^2`. Converged when
:math:`\\lVert G_p \\rVert_F <` ``tol``. These are GPArotation's rules, so the number of
iterations agrees with ``nrow(GPFoblq(...)$Table) - 1``. Kaiser normalisation (``normalize``)
divides each row of :math:`A` by its length :math:`h_i` before rotating and multiplies the rows
of :math:`\\Lambda` by it afterwards.

``psych::fa`` reflects and reorders the rotated factors before reporting them:
:func:`align_factors` does the same (and :meth:`Rotation.aligned` on a whole result).

References
----------
Bernaards, C. A., & Jennrich, R. I. (2005). Gradient projection algorithms and software for
arbitrary rotation criteria in factor analysis. *Educational and Psychological Measurement,
65*(5), 676-696. https://doi.org/10.1177/0013164404272507

Browne, M. W. (2001). An overview of analytic rotation in exploratory factor analysis.
*Multivariate Behavioral Research, 36*(1), 111-150. https://doi.org/10.1207/S15327906MBR3601_05

Hendrickson, A. E., & White, P. O. (1964). Promax: A quick method for rotation to oblique simple
structure. *British Journal of Statistical Psychology, 17*(1), 65-70.
https://doi.org/10.1111/j.2044-8317.1964.tb00244.x

Jennrich, R. I. (2001). A simple general procedure for orthogonal rotation. *Psychometrika,
66*(2), 289-306. https://doi.org/10.1007/BF02294840

Jennrich, R. I. (2002). A simple general method for oblique rotation. *Psychometrika, 67*(1),
7-19. https://doi.org/10.1007/BF02294706

Kaiser, H. F. (1958). The varimax criterion for analytic rotation in factor analysis.
*Psychometrika, 23*(3), 187-200. https://doi.org/10.1007/BF02289233

Sherin, R. J. (1966). A matrix formulation of Kaiser's varimax criterion. *Psychometrika,
31*(4), 535-538. https://doi.org/10.1007/BF02289523

ten Berge, J. M. F. (1984). A joint treatment of varimax rotation and the problem of
diagonalizing symmetric matrices simultaneously in the least-squares sense. *Psychometrika,
49*(3), 347-358. https://doi.org/10.1007/BF02306025

Yates, A. (1987). *Multivariate exploratory data analysis: A perspective on exploratory factor
analysis*. State University of New York Press.

Revelle, W. (2022). *psych: Procedures for psychological, psychometric, and personality
research* (R package version 2.2.9). https://CRAN.R-project.org/package=psych
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from analysis.warnings import ConvergenceWarning, GapscaleWarning
from analysis.errors import InputError

__all__ = [
    "METHODS",
    "ConvergenceWarning",
    "FactorAlignment",
    "Rotation",
    "align_factors",
    "rotate",
]

#: Method names :func:`rotate` accepts.
METHODS = ("none", "varimax", "quartimin", "oblimin", "geomin", "geominQ", "geominT", "promax", "Promax")

_ORTHOGONAL = {"none", "varimax", "geominT"}
# psych::fa's normalisation per method: stats::varimax normalises by default, psych::fa's
# "promax" is psych::kaiser(., "Promax"); the GPArotation calls use GPArotation's default FALSE.
_DEFAULT_NORMALIZE = {"none": False, "varimax": True, "quartimin": False, "oblimin": False,
                      "geomin": False, "geominQ": False, "geominT": False, "promax": True,
                      "Promax": False}
# Names as reported in Rotation.method.
_CANONICAL = {"geominQ": "geomin", "Promax": "promax"}


@dataclass(frozen=True)
class Rotation:
    """A rotated factor solution.

    Attributes
    ----------
    loadings : ndarray, p x m
        Rotated pattern matrix :math:`\\Lambda = A (T^\\top)^{-1}`.
    phi : ndarray, m x m
        Factor correlations :math:`\\Phi = T^\\top T` (the identity for an orthogonal rotation).
    rotation : ndarray, m x m
        The transformation :math:`T`, GPArotation's ``Th`` (``psych::fa(...)$rot.mat`` is
        ``t(solve(Th))``). For an orthogonal rotation :math:`T` is orthogonal and
        :math:`\\Lambda = A T`.
    method : str
        ``"none"``, ``"varimax"``, ``"quartimin"``, ``"oblimin"``, ``"geomin"`` (oblique),
        ``"geominT"`` or ``"promax"``; ``"none"`` when a one-factor solution was left unrotated.
    orthogonal : bool
    normalize : bool
        Whether Kaiser normalisation was applied (for promax: around the target step; the
        varimax step of promax is always normalised, as in psych).
    converged : bool
        ``False`` when the iteration limit was reached (a :class:`ConvergenceWarning` was
        emitted). ``True`` for ``"none"``.
    iterations : int
        Updates of :math:`T` made (for promax: those of its varimax step).
    note : str
        Empty, or why the requested rotation was not applied (one factor).
    """

    loadings: np.ndarray
    phi: np.ndarray
    rotation: np.ndarray
    method: str
    orthogonal: bool
    normalize: bool
    converged: bool
    iterations: int
    note: str = ""

    def aligned(self) -> Rotation:
        """This solution with the factors reflected and ordered as ``psych::fa`` reports them.

        See :func:`align_factors`. The transformation is permuted and reflected to match, so
        ``loadings = A @ inv(rotation).T`` and ``phi = rotation.T @ rotation`` still hold.
        """
        a = align_factors(self.loadings, self.phi)
        perm = np.eye(self.loadings.shape[1])[:, a.order] * a.signs
        return replace(self, loadings=a.loadings, phi=a.phi, rotation=self.rotation @ perm)


@dataclass(frozen=True)
class FactorAlignment:
    """Factors reflected and reordered as ``psych::fa`` reports them.

    Attributes
    ----------
    loadings : ndarray, p x m
        ``original[:, order] * signs``.
    phi : ndarray, m x m
        ``original_phi[np.ix_(order, order)] * np.outer(signs, signs)``.
    order : ndarray of int
        Column ``k`` of the result is column ``order[k]`` of the input.
    signs : ndarray of float, +1 or -1
        Reflection of each column of the result.

    Unpacks as ``loadings, phi = align_factors(...)``.
    """

    loadings: np.ndarray
    phi: np.ndarray
    order: np.ndarray
    signs: np.ndarray

    def __iter__(self):
        return iter((self.loadings, self.phi))


def align_factors(loadings: np.ndarray, phi: np.ndarray | None = None) -> FactorAlignment:
    """Reflect and order factors as ``psych::fa`` does after rotating.

    First each factor whose loadings sum to a negative number is reflected (a zero sum is left
    alone), together with its row and column of :math:`\\Phi`; then the factors are put in
    decreasing order of the variance they account for,

    .. math::

        v_k = \\big(\\Phi\\,\\Lambda^\\top\\Lambda\\big)_{kk}
            = \\sum_i \\lambda_{ik}\\,(\\Lambda\\Phi)_{ik},

    the column sums of pattern times structure (with :math:`\\Phi = I`, the sums of squared
    loadings). Ties keep their order. This is what ``psych:::fac`` does after rotating
    (``signed <- sign(colSums(loadings))``, then ``order(diag(Phi %*% t(loadings) %*%
    loadings), decreasing = TRUE)``); it is not ``psych::fa.sort``, which sorts rows.

    Parameters
    ----------
    loadings : array_like, p x m
        Pattern matrix.
    phi : array_like, m x m, optional
        Factor correlations; the identity when omitted (orthogonal factors).

    Returns
    -------
    FactorAlignment

    Raises
    ------
    ValueError
        A non-finite value, or ``phi`` that is not m x m.

    Notes
    -----
    In R: the ``$loadings`` and ``$Phi`` of ``psych::fa(x, nfactors = m, rotate = ...)``.
    """
    lam = _as_loadings(loadings)
    m = lam.shape[1]
    if phi is None:
        ph = np.eye(m)
    else:
        ph = np.array(phi, dtype=np.float64)
        if ph.shape != (m, m):
            raise ValueError(f"phi: need a {m} x {m} matrix to go with {m} factors, got shape {ph.shape}")
        if not np.all(np.isfinite(ph)):
            bad = np.argwhere(~np.isfinite(ph))[0]
            raise ValueError(f"phi has a non-finite value {ph[tuple(bad)]} at [{bad[0]}, {bad[1]}]")
    signs0 = np.sign(lam.sum(axis=0))
    signs0[signs0 == 0] = 1.0
    lam_s = lam * signs0
    ph_s = ph * np.outer(signs0, signs0)
    accounted = np.diag(ph_s @ lam_s.T @ lam_s)
    order = np.argsort(-accounted, kind="stable")
    return FactorAlignment(loadings=lam_s[:, order], phi=ph_s[np.ix_(order, order)],
                           order=order, signs=signs0[order])


def rotate(loadings: np.ndarray, method: str, normalize: bool | None = None, max_iter: int = 1000,
           tol: float = 1e-5, *, gamma: float = 0.0, delta: float = 0.01, power: float = 4.0) -> Rotation:
    """Rotate a loading matrix as ``psych::fa(x, nfactors, rotate = method)`` does.

    The result is the rotation as GPArotation (or ``stats::varimax``, ``psych::kaiser``)
    returns it, before psych reflects and reorders the factors; apply
    :meth:`Rotation.aligned` (or :func:`align_factors`) for psych's column order and signs.
    See the module docstring for the criteria and the algorithm.

    Parameters
    ----------
    loadings : array_like, p x m
        Unrotated loadings :math:`A` (for example ``psych::fa(x, m, rotate = "none")$loadings``).
    method : str
        One of :data:`METHODS`: ``"none"``, ``"varimax"``, ``"quartimin"``, ``"oblimin"``,
        ``"geomin"`` (oblique; alias ``"geominQ"``), ``"geominT"`` (orthogonal geomin),
        ``"promax"`` (psych's, with Kaiser normalisation), ``"Promax"`` (psych's ``Promax``,
        = ``"promax"`` with ``normalize=False``).
    normalize : bool, optional
        Kaiser normalisation (rows of :math:`A` scaled to unit length while rotating). Default:
        what ``psych::fa`` does, ``True`` for ``"varimax"`` and ``"promax"``, ``False`` for the
        GPArotation methods and ``"Promax"``.
    max_iter : int, default 1000
        Iteration limit (GPArotation's ``maxit``; ``stats::varimax`` has 1000 fixed). Reaching
        it emits :class:`ConvergenceWarning` and returns the last iterate, ``converged=False``.
    tol : float, default 1e-5
        Convergence tolerance (GPArotation's and ``stats::varimax``'s ``eps``): for the
        gradient projection methods the Frobenius norm of the projected gradient; for varimax
        (and promax's varimax step) the relative increase of the criterion,
        ``d < d_previous * (1 + tol)`` as ``stats::varimax`` stops.
    gamma : float, default 0
        Oblimin's :math:`\\gamma` (GPArotation's ``gam``): 0 quartimin, 0.5 biquartimin, 1
        covarimin. Only for ``"oblimin"``.
    delta : float, default 0.01
        Geomin's :math:`\\delta`. Only for the geomin methods.
    power : float, default 4
        Promax's power :math:`k` (psych's ``m``). Only for the promax methods.

    Returns
    -------
    Rotation
        With one factor there is nothing to rotate: the loadings come back unchanged with
        ``method="none"`` and a ``note`` (``psych::fa`` skips the rotation silently).

    Raises
    ------
    ValueError
        An unknown method (the message lists the known ones), loadings that are not a 2-D
        array with at least one row and one column, a non-finite loading, a row of zeros with
        Kaiser normalisation, a non-positive ``tol`` or ``max_iter``, or ``gamma``, ``delta``
        or ``power`` given for a method that does not use it.

    Notes
    -----
    In R, for ``A <- unclass(psych::fa(x, m, rotate = "none")$loadings)``:
    ``stats::varimax(A)``, ``GPArotation::quartimin(A)``, ``GPArotation::oblimin(A)``,
    ``GPArotation::geominQ(A)``, ``GPArotation::geominT(A)``,
    ``psych::kaiser(A, rotate = "Promax")``, ``psych::Promax(A)``; or all in one go
    ``psych::fa(x, m, rotate = "oblimin")`` (reflected and reordered, see
    :func:`align_factors`). GPArotation makes one more update after its last convergence check
    when it stops at ``maxit``; here the returned iterate is the one last checked.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise InputError(f"unknown rotation method {method!r}; known methods are {', '.join(METHODS)}")
    a = _as_loadings(loadings)
    p, m = a.shape
    if normalize is None:
        normalize = _DEFAULT_NORMALIZE[method]
    elif not isinstance(normalize, (bool, np.bool_)):
        raise InputError(f"normalize: need True, False or None (psych's default), got {normalize!r}")
    normalize = bool(normalize)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter: need a whole number >= 1, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not np.isfinite(tol) or tol <= 0:
        raise InputError(f"tol: need a number > 0, got {tol!r}")
    _check_extra("gamma", gamma, 0.0, method, ("oblimin",))
    _check_extra("delta", delta, 0.01, method, ("geomin", "geominQ", "geominT"))
    _check_extra("power", power, 4.0, method, ("promax", "Promax"))
    if delta <= 0:
        raise InputError(f"delta: need a number > 0, got {delta!r}")
    if power < 1:
        raise InputError(f"power: need a number >= 1, got {power!r}")

    name = _CANONICAL.get(method, method)
    if name == "none" or m == 1:
        note = "" if name == "none" else (
            f"one factor: nothing to rotate, the {method!r} rotation was not applied")
        return Rotation(loadings=a.copy(), phi=np.eye(m), rotation=np.eye(m), method="none",
                        orthogonal=True, normalize=False, converged=True, iterations=0, note=note)

    weights = np.ones(p)
    if normalize:
        weights = np.sqrt((a ** 2).sum(axis=1))
        zero = np.flatnonzero(weights == 0)
        if len(zero):
            raise InputError(f"row {zero[0] + 1} of the loadings is all zeros, so Kaiser normalisation "
                             "(dividing each row by its length) is impossible; drop that variable or "
                             "use normalize=False")
    a_w = a / weights[:, None]

    if name == "varimax":
        lam, t, converged, iterations = _varimax(a_w, max_iter, tol)
        lam, phi, th = lam, np.eye(m), t
    elif name == "promax":
        lam, th, phi, converged, iterations = _promax(a_w, power, max_iter, tol)
    else:
        criterion = _geomin(delta) if name in ("geomin", "geominT") else _oblimin(gamma)
        gpa = _gpa_orthogonal if name in _ORTHOGONAL else _gpa_oblique
        lam, th, converged, iterations = gpa(a_w, criterion, max_iter, tol)
        phi = th.T @ th if name not in _ORTHOGONAL else np.eye(m)
    lam = lam * weights[:, None]

    if not converged:
        label = "the varimax step of promax" if name == "promax" else f"the {name} rotation"
        warnings.warn(f"{label} did not converge in max_iter={max_iter} iterations (tol={tol:g}); "
                      "the loadings are the last iterate", ConvergenceWarning, stacklevel=2)
    return Rotation(loadings=lam, phi=phi, rotation=th, method=name, orthogonal=name in _ORTHOGONAL,
                    normalize=normalize, converged=converged, iterations=int(iterations))


# --------------------------------------------------------------------------- criteria
# Each criterion maps Lambda to (Q, dQ/dLambda), GPArotation's vgQ.* functions.

Criterion = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _oblimin(gamma: float) -> Criterion:
    def criterion(lam: np.ndarray) -> tuple[float, np.ndarray]:
        sq = lam ** 2
        # (Lambda o Lambda) N: for each loading, the sum of the other squared loadings in its row.
        x = sq.sum(axis=1, keepdims=True) - sq
        if gamma != 0:
            x = x - gamma * x.mean(axis=0, keepdims=True)
        return float((sq * x).sum() / 4), lam * x
    return criterion


def _geomin(delta: float) -> Criterion:
    def criterion(lam: np.ndarray) -> tuple[float, np.ndarray]:
        m = lam.shape[1]
        shifted = lam ** 2 + delta
        row = np.exp(np.log(shifted).mean(axis=1))  # geometric mean per row
        return float(row.sum()), (2 / m) * lam / shifted * row[:, None]
    return criterion


# --------------------------------------------------------------------------- algorithms


def _gpa_oblique(a: np.ndarray, criterion: Criterion, max_iter: int, tol: float):
    """Jennrich's (2002) oblique gradient projection with Bernaards & Jennrich's step rule."""
    m = a.shape[1]
    t = np.eye(m)

    def evaluate(t):
        lam = np.linalg.solve(t, a.T).T  # A (T')^-1
        f, dq = criterion(lam)
        grad = -np.linalg.solve(t.T, dq.T @ lam)  # -(Lambda' dQ T^-1)' = -T'^-1 dQ' Lambda
        return lam, f, grad

    lam, f, grad = evaluate(t)
    step = 1.0
    for iteration in range(max_iter + 1):
        projected = grad - t * (t * grad).sum(axis=0)
        size = np.linalg.norm(projected)
        if size < tol:
            return lam, t, True, iteration
        if iteration == max_iter:
            break
        step *= 2
        for _ in range(11):
            x = t - step * projected
            t_new = x / np.linalg.norm(x, axis=0)
            lam_new, f_new, grad_new = evaluate(t_new)
            if f - f_new > 0.5 * size ** 2 * step:
                break
            step /= 2
        t, lam, f, grad = t_new, lam_new, f_new, grad_new
    return lam, t, False, max_iter


def _gpa_orthogonal(a: np.ndarray, criterion: Criterion, max_iter: int, tol: float):
    """Jennrich's (2001) orthogonal gradient projection with Bernaards & Jennrich's step rule."""
    m = a.shape[1]
    t = np.eye(m)
    lam = a.copy()
    f, dq = criterion(lam)
    grad = a.T @ dq
    step = 1.0
    for iteration in range(max_iter + 1):
        tg = t.T @ grad
        projected = grad - t @ ((tg + tg.T) / 2)
        size = np.linalg.norm(projected)
        if size < tol:
            return lam, t, True, iteration
        if iteration == max_iter:
            break
        step *= 2
        for _ in range(11):
            u, _s, vt = np.linalg.svd(t - step * projected)
            t_new = u @ vt
            lam_new = a @ t_new
            f_new, dq_new = criterion(lam_new)
            if f_new < f - 0.5 * size ** 2 * step:
                break
            step /= 2
        t, lam, f = t_new, lam_new, f_new
        grad = a.T @ dq_new
    return lam, t, False, max_iter


def _varimax(x: np.ndarray, max_iter: int, tol: float):
    """Varimax by SVD iterations, stopping as ``stats::varimax`` does.

    Each step maximises :math:`\\operatorname{tr}(T^\\top B)` over orthogonal :math:`T`, with
    :math:`B = X^\\top (Z^{\\circ 3} - Z \\operatorname{diag}(\\mathbf 1^\\top Z^{\\circ 2})/p)`
    and :math:`Z = XT`: :math:`T = UV^\\top` for :math:`B = UDV^\\top`. Stops when the sum of
    singular values :math:`d` grows by less than a factor ``1 + tol``.
    """
    p, m = x.shape
    t = np.eye(m)
    d = 0.0
    for iteration in range(1, max_iter + 1):
        z = x @ t
        b = x.T @ (z ** 3 - z * (z ** 2).sum(axis=0) / p)
        u, s, vt = np.linalg.svd(b)
        t = u @ vt
        d_previous, d = d, float(s.sum())
        if d < d_previous * (1 + tol):
            return x @ t, t, True, iteration
    return x @ t, t, False, max_iter


def _promax(x: np.ndarray, power: float, max_iter: int, tol: float):
    """psych::Promax on (already row-weighted) loadings: varimax, then the power target.

    :math:`U = (V^\\top V)^{-1} V^\\top Q` for the Kaiser-normalised varimax loadings
    :math:`V` (rescaled back to their row lengths) and the target
    :math:`Q = V \\circ |V|^{k-1}`; :math:`U` is rescaled by
    :math:`\\operatorname{diag}((U^\\top U)^{-1})^{1/2}` so the factors have unit variance.
    Returns the loadings :math:`VU`, :math:`T = ((T_v U)^{-1})^\\top`, :math:`\\Phi = T^\\top T`.
    """
    weights = np.sqrt((x ** 2).sum(axis=1))
    zero = np.flatnonzero(weights == 0)
    if len(zero):
        raise InputError(f"row {zero[0] + 1} of the loadings is all zeros, so the Kaiser-normalised varimax "
                         "step of promax is impossible; drop that variable")
    v, t_varimax, converged, iterations = _varimax(x / weights[:, None], max_iter, tol)
    v = v * weights[:, None]
    target = v * np.abs(v) ** (power - 1)
    u = np.linalg.lstsq(v, target, rcond=None)[0]
    utu = u.T @ u
    try:
        scale = np.diag(np.linalg.inv(utu))
        if not np.all(np.isfinite(scale)) or np.linalg.cond(utu) > 1 / np.finfo(float).eps:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        warnings.warn("promax: the factors are exactly uncorrelated and the target fit is singular; "
                      "using psych's approximation (eigenvalues floored at 100 * machine epsilon)",
                      GapscaleWarning, stacklevel=3)
        values, vectors = np.linalg.eigh(utu)
        values = np.maximum(values, 100 * np.finfo(float).eps)
        approx = (vectors * values) @ vectors.T
        np.fill_diagonal(approx, 1.0)
        scale = np.diag(np.linalg.inv(approx))
    u = u * np.sqrt(scale)
    total = t_varimax @ u  # psych's rotmat: loadings = A %*% rotmat
    th = np.linalg.inv(total).T
    return v @ u, th, th.T @ th, converged, iterations


# --------------------------------------------------------------------------- input checks


def _as_loadings(loadings) -> np.ndarray:
    try:
        a = np.array(loadings, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"loadings: need a numeric p x m matrix ({exc})") from None
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"loadings: need a 2-D p x m matrix with p >= 1 and m >= 1, got shape {a.shape}")
    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"loadings[{i}, {j}] (row {i + 1}, factor {j + 1}) is {a[i, j]}; "
                         f"{len(bad)} non-finite loading(s) in all; rotation needs finite loadings")
    return a


def _check_extra(name: str, value: float, default: float, method: str, methods: tuple[str, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise InputError(f"{name}: need a finite number, got {value!r}")
    if value != default and method not in methods:
        raise InputError(f"{name}={value!r} applies only to method {' or '.join(map(repr, methods))}, "
                         f"not {method!r}")
