r"""The normal and chi-square distribution functions the engine and the stages use, on
:mod:`scipy.special`'s ufuncs, without importing :mod:`scipy.stats`.

``import scipy.stats`` costs about 0.6 CPU-s (it loads every distribution, and parses the
docstrings of its tests), and every ``gapscale`` command is a new process: in the default
``dvc repro`` the stages that read only a p value or a normal quantile from it paid that again
and again. Each function here is the scipy.stats method named in its docstring, computed by the
same ``scipy.special`` function that method calls, with the method's handling of its arguments
(invalid parameters give NaN; values at or beyond the support's ends the limits), so the numbers
are the same bit for bit (``tests/test_distributions.py`` compares them on grids that include the
edge cases). Scalars in, numpy scalars out; arrays broadcast.

- :func:`norm_cdf`, :func:`norm_sf`, :func:`norm_ppf`, :func:`norm_pdf`: ``scipy.stats.norm``
  (``ndtr``, ``ndtr(-x)``, ``ndtri``, :math:`e^{-x^2/2}/\sqrt{2\pi}`);
- :func:`chi2_cdf`, :func:`chi2_sf`, :func:`chi2_ppf`: ``scipy.stats.chi2`` (``chdtr(df, x)``,
  ``chdtrc(df, x)``, :math:`2\,\mathrm{gammaincinv}(df/2, q)`);
- :func:`ncx2_cdf`, :func:`ncx2_sf`: ``scipy.stats.ncx2`` (``chndtr`` and Boost's complement;
  the central ``chdtr``, ``chdtrc`` at noncentrality 0);
- :func:`t_sf`: ``scipy.stats.t.sf`` (``stdtr(df, -x)``), the upper tail of Student's t;
- :func:`f_ppf`: ``scipy.stats.f.ppf`` (``fdtri``), the quantile of the F distribution;
- :func:`binom_sf`: ``scipy.stats.binom.sf`` (Boost's binomial complement).

In R: ``pnorm``, ``qnorm``, ``dnorm``, ``pchisq``, ``qchisq``, ``pchisq(x, df, ncp)``,
``pt(x, df, lower.tail = FALSE)``, ``qf``,
``pbinom(k, n, p, lower.tail = FALSE)``.
"""
from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["binom_sf", "chi2_cdf", "chi2_ppf", "chi2_sf", "f_ppf", "ncx2_cdf", "ncx2_sf", "norm_cdf", "norm_pdf", "norm_ppf",
           "norm_sf", "t_sf"]

_NORM_PDF_C = np.sqrt(2 * np.pi)  # scipy.stats' _norm_pdf_C


def _finish(out: np.ndarray):
    """scipy.stats' return: a numpy scalar for scalar arguments, else the array."""
    return out[()] if out.ndim == 0 else out


def _cdf_like(x, valid, compute, upper_tail: bool, low=0.0, high=np.inf, args=()):
    """rv_continuous.cdf (``upper_tail`` False) or .sf (True) with support (low, high): NaN where
    the parameters are invalid or x is NaN; the limit (0 or 1) at or beyond an end of the support;
    ``compute(x, *args)`` inside it, evaluated only there (as scipy's argsreduce)."""
    x, valid, *args = np.broadcast_arrays(np.asarray(x, dtype=float), valid, *[np.asarray(a, dtype=float) for a in args])
    out = np.zeros(x.shape)
    inside = valid & (x > low) & (x < high)
    at_one = valid & ((x <= low) if upper_tail else (x >= high))
    out[~valid | np.isnan(x)] = np.nan
    out[at_one] = 1.0
    if inside.any():
        out[inside] = compute(x[inside], *[a[inside] for a in args])
    return _finish(out)


def norm_cdf(x):
    """``scipy.stats.norm.cdf(x)``: :math:`\\Phi(x)`. In R: ``pnorm(x)``."""
    return _cdf_like(x, True, special.ndtr, False, -np.inf, np.inf)


def norm_sf(x):
    """``scipy.stats.norm.sf(x)``: :math:`1 - \\Phi(x)`, as :math:`\\Phi(-x)`. In R:
    ``pnorm(x, lower.tail = FALSE)``."""
    return _cdf_like(x, True, lambda v: special.ndtr(-v), True, -np.inf, np.inf)


def norm_pdf(x):
    """``scipy.stats.norm.pdf(x)``: :math:`e^{-x^2/2}/\\sqrt{2\\pi}`. In R: ``dnorm(x)``."""
    x = np.asarray(x, dtype=float)
    return _finish(np.asarray(np.exp(-x ** 2 / 2.0) / _NORM_PDF_C))


def _ppf_like(q, valid, compute, low, high, args=()):
    """rv_continuous.ppf: NaN outside [0, 1], for invalid parameters or NaN q; the support's
    ends at 0 and 1; ``compute(q, *args)`` strictly inside."""
    q, valid, *args = np.broadcast_arrays(np.asarray(q, dtype=float), valid, *[np.asarray(a, dtype=float) for a in args])
    out = np.full(q.shape, np.nan)
    inside = valid & (q > 0) & (q < 1)
    out[valid & (q == 0)] = low
    out[valid & (q == 1)] = high
    if inside.any():
        out[inside] = compute(q[inside], *[a[inside] for a in args]) * 1.0 + 0.0  # scipy's * scale + loc
    return _finish(out)


def norm_ppf(q):
    """``scipy.stats.norm.ppf(q)``: :math:`\\Phi^{-1}(q)`. In R: ``qnorm(q)``."""
    return _ppf_like(q, True, special.ndtri, -np.inf, np.inf)


def _df_valid(df):
    df = np.asarray(df, dtype=float)
    return df > 0  # False for NaN too


def chi2_cdf(x, df):
    """``scipy.stats.chi2.cdf(x, df)``. In R: ``pchisq(x, df)``."""
    return _cdf_like(x, _df_valid(df), lambda v, d: special.chdtr(d, v), False, args=(df,))


def chi2_sf(x, df):
    """``scipy.stats.chi2.sf(x, df)``: the upper tail, the p value of a chi-square statistic.
    In R: ``pchisq(x, df, lower.tail = FALSE)``."""
    return _cdf_like(x, _df_valid(df), lambda v, d: special.chdtrc(d, v), True, args=(df,))


def chi2_ppf(q, df):
    """``scipy.stats.chi2.ppf(q, df)``. In R: ``qchisq(q, df)``."""
    return _ppf_like(q, _df_valid(df), lambda p, d: 2 * special.gammaincinv(d / 2, p), 0.0, np.inf, args=(df,))


def t_sf(x, df):
    """``scipy.stats.t.sf(x, df)``: the upper tail of Student's t, as ``stdtr(df, -x)``. In R:
    ``pt(x, df, lower.tail = FALSE)``."""
    return _cdf_like(x, _df_valid(df), lambda v, d: special.stdtr(d, -v), True, -np.inf, np.inf, args=(df,))


def f_ppf(q, dfn, dfd):
    """``scipy.stats.f.ppf(q, dfn, dfd)``: the quantile of the F distribution, ``fdtri``. In R:
    ``qf(q, dfn, dfd)``."""
    return _ppf_like(q, _df_valid(dfn) & _df_valid(dfd), lambda p, a, b: special.fdtri(a, b, p), 0.0, np.inf,
                     args=(dfn, dfd))


def _ncx2_valid(df, nc):
    df = np.asarray(df, dtype=float)
    return (df > 0) & np.isfinite(df) & (np.asarray(nc, dtype=float) >= 0)


def _noncentral(f_nc, f_central):
    """scipy.stats.ncx2's evaluation: ``f_nc(x, df, nc)`` where nc != 0, the central
    ``f_central(x, df)`` where it is 0, with overflow warnings off (scipy's gh-17432)."""
    def compute(v, d, n):
        out = np.empty(v.shape)
        central = n == 0
        with np.errstate(over="ignore"):
            out[~central] = f_nc(v[~central], d[~central], n[~central])
            out[central] = f_central(v[central], d[central])
        return out
    return compute


def ncx2_cdf(x, df, nc):
    """``scipy.stats.ncx2.cdf(x, df, nc)``: ``chndtr``, or the central ``chdtr`` where the
    noncentrality is 0. In R: ``pchisq(x, df, ncp = nc)``."""
    return _cdf_like(x, _ncx2_valid(df, nc), _noncentral(special.chndtr, lambda v, d: special.chdtr(d, v)), False,
                     args=(df, nc))


def ncx2_sf(x, df, nc):
    """``scipy.stats.ncx2.sf(x, df, nc)``: the upper tail, by the ufunc scipy.stats calls for it
    (``scipy.special._ufuncs._ncx2_sf``, Boost's complement; scipy.stats' own method where a scipy
    lacks it), the central ``chdtrc`` where the noncentrality is 0. Like scipy's, it may raise
    OverflowError at a statistic near 0 with a large noncentrality. In R:
    ``pchisq(x, df, ncp = nc, lower.tail = FALSE)``."""
    if _NCX2_SF is None:  # pragma: no cover - depends on the scipy version
        from scipy import stats
        return stats.ncx2.sf(x, df, nc)
    return _cdf_like(x, _ncx2_valid(df, nc), _noncentral(_NCX2_SF, lambda v, d: special.chdtrc(d, v)), True,
                     args=(df, nc))


def binom_sf(k, n, p):
    """``scipy.stats.binom.sf(k, n, p)``: :math:`P(X > k)` for X binomial(n, p), by the ufunc
    scipy.stats calls (``scipy.special._ufuncs._binom_sf`` at :math:`\\lfloor k\\rfloor`, clipped
    to [0, 1]; scipy.stats' own method where a scipy lacks it), with its argument handling: NaN
    for n not a whole number >= 0 or p outside [0, 1], 1 below the support, 0 from n on. In R:
    ``pbinom(k, n, p, lower.tail = FALSE)``."""
    if _BINOM_SF is None:  # pragma: no cover - depends on the scipy version
        from scipy import stats
        return stats.binom.sf(k, n, p)
    k, n, p = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (k, n, p)))
    valid = (n >= 0) & (n == np.round(n)) & (p >= 0) & (p <= 1)
    out = np.zeros(k.shape)
    out[~valid | np.isnan(k)] = np.nan
    out[((k < 0) | np.isneginf(k)) & valid] = 1.0
    inside = valid & (k >= 0) & (k < n) & np.isfinite(k)
    if inside.any():
        out[inside] = np.clip(_BINOM_SF(np.floor(k[inside]), n[inside], p[inside]), 0, 1)
    return _finish(out)


try:  # the ufuncs behind scipy.stats.ncx2.sf and binom.sf (scipy >= 1.10)
    from scipy.special._ufuncs import _binom_sf as _BINOM_SF
    from scipy.special._ufuncs import _ncx2_sf as _NCX2_SF
except ImportError:  # pragma: no cover - depends on the scipy version
    _BINOM_SF = _NCX2_SF = None
