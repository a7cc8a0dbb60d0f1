r"""Multi-group confirmatory factor and structural equation models by maximum likelihood, with
true cross-group equality constraints, as lavaan fits them with ``group =``.

Each group g has its own model matrices and a mean structure:

.. math:: \Sigma_g = \Lambda_g (I - B_g)^{-1} \Psi_g (I - B_g)^{-\top} \Lambda_g^\top + \Theta_g,
          \qquad \mu_g = \nu_g + \Lambda_g (I - B_g)^{-1} \alpha_g ,

with :math:`\nu` the intercepts of the observed variables and :math:`\alpha` the latent means
(intercepts of endogenous latents). The covariance part comes from :mod:`analysis.sem` (its
parameter table and model algebra, one copy per group). Identification is lavaan's: marker
loadings fixed to 1 in every group; intercepts free in every group; latent means fixed to 0 in
every group, except when the intercepts are constrained equal (``group_equal`` contains
``"intercepts"`` and not ``"means"``): then they are free in groups 2..G and group 1 is the
reference. As in lavaan, that rule also frees the means of first-order factors under a
second-order factor, which leaves those means unidentified; such a model gets an
:class:`IdentificationWarning` (lavaan warns that vcov "does not appear to be positive
definite") - fix them with ``F ~ 0*1``.

Equality constraints are shared free parameters (lavaan's ``ceq.simple``): a parameter of a
category in ``group_equal`` is one parameter for all groups unless ``group_partial`` names it;
the categories are lavaan's

=========================  ==========================================================
``loadings``               ``=~`` (second-order loadings included)
``intercepts``             ``~1`` of observed variables
``means``                  ``~1`` of latent variables
``residuals``              ``~~`` residual variances of observed variables
``residual.covariances``   ``~~`` residual covariances of observed variables
``lv.variances``           ``~~`` (residual) variances of latent variables
``lv.covariances``         ``~~`` (residual) covariances of latent variables
``regressions``            ``~``
=========================  ==========================================================

A label in the syntax names the same parameter in every group (so ``a*x2`` is equal across
groups, as in lavaan). lavaan's per-group vectors ``c(a, b)*x2`` are not read (the syntax
reader stops with a clear error); with ``labels="per_group"`` a label ties parameters within
a group only. Defined parameters (``:=``) are skipped; ``==``, ``<``, ``>`` constraints are
refused.

Estimation minimises :math:`-\log L = \sum_g -\log L_g` (lavaan's ML: the chi-square is
:math:`\sum_g 2(\log L_{1,g} - \log L_g) = \sum_g n_g F_g`) with the analytic gradient (by the
chain rule through the model matrices): Fisher scoring with the expected information for the
first steps, then BFGS updates of that metric, and scipy's BFGS as a fallback. With ``missing = "listwise"`` the
complete cases of each group are used and standard errors come from the expected information
(lavaan's default for complete data). With ``missing = "fiml"`` every row with an observed
value counts through its missingness pattern, the saturated model of each group is estimated
by EM (:func:`analysis.missing.em_moments`), and standard errors come from the observed
information, the Hessian of :math:`-\log L` by central differences of the analytic gradient
(lavaan's default for FIML).

Fit measures are lavaan's multi-group ``fitMeasures``: the baseline is the independence model
in every group (free means and variances per group), ``df = G(p(p+1)/2 + p) - npar``,
RMSEA :math:`= \sqrt{\max(0, \chi^2/(N\,df) - 1/N)}\sqrt{G}` with its interval likewise scaled
and the close-fit test at noncentrality :math:`N\,df\,0.05^2/G`, SRMR the ``n_g/N``-weighted
mean of the groups' SRMR (Bentler's, means included), AIC and BIC from the log-likelihood
(BIC with :math:`\log N`).

In R::

    fit <- cfa(model, data, group = "g", group.equal = c("loadings", "intercepts"),
               group.partial = c("x3 ~ 1"))   # missing = "fiml" for FIML
    fitMeasures(fit); parameterEstimates(fit, standardized = TRUE)
    lavTestLRT(fit_metric, fit_scalar); lavTestWald(fit, "b1 == b2")

References
----------
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. Journal of
    Statistical Software 48(2), 1-36.
Jöreskog, K. G. (1971). Simultaneous factor analysis in several populations. Psychometrika
    36(4), 409-426.
Sörbom, D. (1974). A general method for studying differences in factor means and factor
    structure between groups. British Journal of Mathematical and Statistical Psychology 27,
    229-239.
Steiger, J. H. (1998). A note on multiple sample extensions of the RMSEA fit index. Structural
    Equation Modeling 5(4), 411-419.
Arbuckle, J. L. (1996). Full information estimation in the presence of incomplete data. In
    Marcoulides & Schumacker (Eds.), Advanced Structural Equation Modeling, 243-277.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats

from analysis.checks import numeric_columns
from analysis.sem import fit as fitm
from analysis.sem.single import (
    InadmissibleWarning,
    ParameterTable,
    _information,
    _Model,
    _standardised,
    _start,
    parameter_table,
)
from analysis.warnings import ConvergenceWarning, GapscaleWarning
from analysis.errors import InputError
from instrument.lavaan import LavaanModel, parse_model
from analysis.errors import InputError

__all__ = ["GROUP_EQUAL", "IdentificationWarning", "MULTIGROUP_COLUMNS", "MultiGroupFit", "MultiGroupTable",
           "fit_multigroup", "lr_test", "multigroup_table", "wald_equal"]

GROUP_EQUAL = ("loadings", "intercepts", "means", "residuals", "residual.covariances", "lv.variances",
               "lv.covariances", "regressions")
MULTIGROUP_COLUMNS = ["lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper",
                      "std_all"]
_COV_MATRICES = ("lambda", "beta", "psi", "theta")


class IdentificationWarning(GapscaleWarning):
    """The information matrix is singular at the estimates: some parameters are not identified
    (lavaan: "the variance-covariance matrix of the estimated parameters (vcov) does not
    appear to be positive definite")."""


# --------------------------------------------------------------------------- parameter table


@dataclass(frozen=True)
class MultiGroupTable:
    """One row per parameter per group, free or fixed.

    ``free`` is 0 for a fixed parameter and k (1-based) for the k-th free parameter; rows that
    share k are one parameter (equal across groups, or tied by a label). ``matrix`` is
    ``lambda``, ``beta``, ``psi``, ``theta`` (covariance structure), ``nu`` (intercepts) or
    ``alpha`` (latent means); ``category`` is the ``group_equal`` category of the row.
    """

    rows: pd.DataFrame
    groups: tuple[str, ...]
    observed: tuple[str, ...]
    latents: tuple[str, ...]

    @property
    def n_free(self) -> int:
        return int(self.rows["free"].max()) if len(self.rows) else 0


def _category(op: str, lhs: str, rhs: str, observed: set) -> str:
    if op == "=~":
        return "loadings"
    if op == "~":
        return "regressions"
    if op == "~1":
        return "intercepts" if lhs in observed else "means"
    if lhs in observed:
        return "residuals" if lhs == rhs else "residual.covariances"
    return "lv.variances" if lhs == rhs else "lv.covariances"


_PARTIAL = re.compile(r"^\s*([A-Za-z.][A-Za-z0-9._]*)\s*(=~|~~|~)\s*([A-Za-z.][A-Za-z0-9._]*|1)\s*$")


def _parse_partial(spec: str) -> tuple[str, str, str]:
    """``"x3 ~ 1"`` -> ("x3", "~1", ""); ``"visual =~ x2"``; ``"x1 ~~ x2"`` (either order)."""
    if not isinstance(spec, str):
        raise TypeError(f"group_partial: expected strings such as 'x3 ~ 1' or 'visual =~ x2', got {spec!r}")
    m = _PARTIAL.match(spec)
    if m is None:
        raise InputError(f"group_partial: cannot read {spec!r}; write a parameter as lavaan does, "
                         "e.g. 'x3 ~ 1', 'visual =~ x2', 'x1 ~~ x1', 'textual ~ visual'")
    lhs, op, rhs = m.groups()
    if op == "~" and rhs == "1":
        return lhs, "~1", ""
    if rhs == "1":
        raise InputError(f"group_partial: cannot read {spec!r}")
    if op == "~~":
        lhs, rhs = sorted((lhs, rhs))
    return lhs, op, rhs


def _key(lhs, op, rhs):
    return (*sorted((lhs, rhs)), op) if op == "~~" else (lhs, op, rhs)


def _lavaan_table(model: LavaanModel, observed_in_data) -> ParameterTable:
    """:func:`analysis.sem.parameter_table` of the covariance structure (no ``~1``, ``:=``),
    without the residual covariances it adds among first-order factors of a higher-order
    factor: lavaan's ``auto.cov.y`` frees residual covariances only among latents that are
    dependent in a regression (``~``), not among the indicators of a second-order factor."""
    base = parameter_table(LavaanModel(tuple(s for s in model.statements if s.op not in ("~1", ":="))),
                           observed_in_data)
    r = base.rows
    regressed = {s.lhs for s in model.by_op("~")}
    indicator_only = set(r.loc[(r["op"] == "=~") & (r["matrix"] == "beta"), "rhs"]) - regressed
    written = {frozenset((s.lhs, s.rhs)) for s in model.by_op("~~")}
    spurious = ((r["matrix"] == "psi") & (r["lhs"] != r["rhs"])
                & (r["lhs"].isin(indicator_only) | r["rhs"].isin(indicator_only))
                & ~pd.Series([frozenset((a, b)) in written for a, b in zip(r["lhs"], r["rhs"])], index=r.index))
    if spurious.any():
        base = ParameterTable(rows=r[~spurious].reset_index(drop=True), observed=base.observed, latents=base.latents)
    return base


def multigroup_table(model: LavaanModel | str, groups, group_equal=(), group_partial=(),
                     observed_in_data: list[str] | None = None, labels: str = "shared") -> MultiGroupTable:
    """lavaan's multi-group parameter table for ``model`` over ``groups``.

    Parameters
    ----------
    model : str or LavaanModel
        lavaan syntax. ``~ 1`` statements set intercepts or latent means (``x1 ~ 0*1`` fixes,
        ``f ~ 1`` frees a latent mean in every group); ``:=`` lines are skipped.
    groups : sequence of str
        Group labels, in order; the first is the reference group of the latent means.
    group_equal : sequence of str
        Categories constrained equal across groups (:data:`GROUP_EQUAL`).
    group_partial : sequence of str
        Parameters exempt from ``group_equal`` (``"x3 ~ 1"``, ``"visual =~ x2"``).
    observed_in_data : list of str, optional
        Columns of the data, to check that every observed variable is there.
    labels : {"shared", "per_group"}
        ``"shared"`` (lavaan): a label is one parameter in every group; ``"per_group"``: a label
        ties parameters within each group only.

    Raises
    ------
    ValueError
        An unknown ``group_equal`` category, a ``group_partial`` entry that is not a parameter
        of the model, fewer than two groups, constraints (``==``, ``<``, ``>``), or what
        :func:`analysis.sem.parameter_table` refuses.
    """
    if isinstance(model, str):
        model = parse_model(model)
    groups = tuple(str(g) for g in groups)
    if len(groups) < 2:
        raise InputError(f"a multi-group model needs at least two groups, got {list(groups)!r}")
    if len(set(groups)) != len(groups):
        raise InputError(f"groups: each group once, got {list(groups)!r}")
    if isinstance(group_equal, str):
        group_equal = (group_equal,)
    unknown = [c for c in group_equal if c not in GROUP_EQUAL]
    if unknown:
        raise InputError(f"group_equal: unknown category {unknown[0]!r}; use any of {', '.join(GROUP_EQUAL)}")
    if labels not in ("shared", "per_group"):
        raise InputError(f"labels must be 'shared' or 'per_group', got {labels!r}")
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    constraints = [s for s in model.statements if s.op in ("==", "<", ">")]
    if constraints:
        s = constraints[0]
        raise InputError(f"line {s.line}: {s.lhs} {s.op} {s.rhs}: constraints are not supported in multi-group models")
    means = {s.lhs: s for s in model.statements if s.op == "~1"}
    for s in means.values():
        if s.group_wise or s.lower or s.upper:
            raise InputError(f"line {s.line}: {s.lhs} ~ 1: per-group modifiers and bounds are not supported yet; "
                             "use one value (a label, a number) for every group")
    base = _lavaan_table(model, observed_in_data)
    observed, latents = base.observed, base.latents
    for name, s in means.items():
        if name not in observed and name not in latents:
            raise InputError(f"line {s.line}: {name} ~ 1: {name!r} is not a variable of the model")
    obs_set = set(observed)
    equal = set(group_equal)
    present = {_key(r.lhs, r.op, r.rhs) for r in base.rows.itertuples()}
    present |= {(v, "~1", "") for v in (*observed, *latents)}
    partial = set()
    for spec in group_partial:
        key = _parse_partial(spec)
        k = _key(*key)
        if k not in present:
            raise InputError(f"group_partial: {spec!r} is not a parameter of the model")
        partial.add(k)

    rows = []
    for gi, g in enumerate(groups):
        for r in base.rows.itertuples(index=False):
            rows.append(dict(group=g, group_index=gi, lhs=r.lhs, op=r.op, rhs=r.rhs, label=r.label,
                             fixed=r.free == 0, value=r.value, start=r.start, matrix=r.matrix, row=r.row, col=r.col,
                             local=r.free))
        for i, v in enumerate(observed):
            s = means.get(v)
            fixed = s is not None and s.fixed is not None and not s.free_override
            rows.append(dict(group=g, group_index=gi, lhs=v, op="~1", rhs="", label=s.label if s else "",
                             fixed=fixed, value=s.fixed if fixed else np.nan, start=s.start if s else None,
                             matrix="nu", row=i, col=0, local=0))
        for j, lat in enumerate(latents):
            s = means.get(lat)
            if s is not None:
                fixed = s.fixed is not None and not s.free_override
                value = s.fixed if fixed else np.nan
            else:
                fixed = not (gi > 0 and "intercepts" in equal and "means" not in equal)
                value = 0.0 if fixed else np.nan
            rows.append(dict(group=g, group_index=gi, lhs=lat, op="~1", rhs="", label=s.label if s else "",
                             fixed=fixed, value=value, start=s.start if s else None, matrix="alpha", row=j, col=0,
                             local=0))
    table = pd.DataFrame(rows)
    table["category"] = [_category(o, a, b, obs_set) for o, a, b in zip(table["op"], table["lhs"], table["rhs"])]

    # Free parameters: rows are one parameter when they share a label (in every group, or within
    # a group with labels="per_group"), a local index within a group (sem's labels), or an
    # equality category; union-find over the free rows.
    parent = list(range(len(table)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict = {}
    for k, r in enumerate(table.itertuples(index=False)):
        if r.fixed:
            continue
        keys = []
        if r.label:
            keys.append(("label", r.label) if labels == "shared" else ("label", r.group, r.label))
        if r.local > 0:
            keys.append(("local", r.group, r.local))
        if r.category in equal and _key(r.lhs, r.op, r.rhs) not in partial:
            keys.append(("equal", _key(r.lhs, r.op, r.rhs)))
        for key in keys:
            if key in first:
                union(first[key], k)
            else:
                first[key] = k
    free = np.zeros(len(table), dtype=int)
    number: dict = {}
    for k, fixed in enumerate(table["fixed"]):
        if not fixed:
            root = find(k)
            number.setdefault(root, len(number) + 1)
            free[k] = number[root]
    table["free"] = free
    table["value"] = np.where(table["fixed"], table["value"].astype(float), np.nan)
    table = table[["group", "group_index", "lhs", "op", "rhs", "label", "free", "value", "start", "matrix", "row",
                   "col", "category"]]
    return MultiGroupTable(rows=table, groups=groups, observed=observed, latents=latents)


# --------------------------------------------------------------------------- one group's model


class _GroupModel:
    """The model of one group: its rows of the table, with the group's free parameters numbered
    locally (covariance-structure parameters first, as :class:`analysis.sem._Model` needs)."""

    def __init__(self, table: MultiGroupTable, gi: int):
        rows = table.rows[table.rows["group_index"] == gi].reset_index(drop=True)
        self.rows = rows
        self.p, self.m = len(table.observed), len(table.latents)
        cov = rows["matrix"].isin(_COV_MATRICES).to_numpy()
        free = rows["free"].to_numpy()
        order = list(dict.fromkeys(free[cov & (free > 0)]))
        self.q_cov = len(order)
        order += [k for k in dict.fromkeys(free[~cov & (free > 0)]) if k not in set(order)]
        self.idx = np.asarray(order, dtype=int) - 1  # global (0-based) index of each local parameter
        local_of = {k: j + 1 for j, k in enumerate(order)}
        local = np.array([local_of.get(k, 0) for k in free])
        self.local = local
        cov_rows = rows.loc[cov, ["lhs", "op", "rhs", "label", "value", "start", "matrix", "row", "col"]].copy()
        cov_rows.insert(4, "free", local[cov])
        self.pt = ParameterTable(rows=cov_rows.reset_index(drop=True), observed=table.observed, latents=table.latents)
        self.model = _Model(self.pt)
        self.cov_mask = cov
        r = self.pt.rows
        self._mat = r["matrix"].to_numpy()
        self._r = r["row"].to_numpy()
        self._c = r["col"].to_numpy()
        self._free = r["free"].to_numpy()
        mean = rows.loc[~cov]
        self._m_is_nu = (mean["matrix"] == "nu").to_numpy()
        self._m_pos = mean["row"].to_numpy()
        self._m_free = local[~cov]
        self._m_value = mean["value"].to_numpy(dtype=float)

    @property
    def q(self) -> int:
        return len(self.idx)

    def implied(self, th: np.ndarray):
        """(Sigma, mu, matrices, A, alpha) at local parameters ``th``."""
        sig, mats, a = self.model.sigma(th[: max(self.q_cov, 0)] if self.q_cov else np.zeros(0))
        values = np.where(self._m_free > 0, th[np.maximum(self._m_free - 1, 0)] if self.q else 0.0, self._m_value)
        nu, alpha = np.zeros(self.p), np.zeros(self.m)
        nu[self._m_pos[self._m_is_nu]] = values[self._m_is_nu]
        alpha[self._m_pos[~self._m_is_nu]] = values[~self._m_is_nu]
        mu = nu + mats["lambda"] @ (a @ alpha)
        return sig, mu, mats, a, alpha

    def gradient(self, th, gs, gmu, parts=None) -> np.ndarray:
        r"""Local gradient from dF/dSigma (``gs``, symmetric, :math:`dF = \operatorname{tr}(G\,d\Sigma)`)
        and dF/dmu (``gmu``) by the chain rule through the model matrices."""
        sig, mu, mats, a, alpha = parts if parts is not None else self.implied(th)
        lam, psi = mats["lambda"], mats["psi"]
        la = lam @ a
        c = a @ psi @ a.T
        a_alpha = a @ alpha
        lg = la.T @ gmu  # A' L' g
        lgl = la.T @ gs @ la  # A' L' G L A
        d_lambda = 2 * gs @ lam @ c + np.outer(gmu, a_alpha)
        d_beta = 2 * (c @ lam.T @ gs @ la).T + np.outer(lg, a_alpha)
        out = np.zeros(self.q)
        if len(self._free):
            vals = np.zeros(len(self._free))
            for name, d in (("lambda", d_lambda), ("beta", d_beta), ("psi", lgl), ("theta", gs)):
                sel = self._mat == name
                v = d[self._r[sel], self._c[sel]]
                if name in ("psi", "theta"):
                    v = np.where(self._r[sel] == self._c[sel], v, 2 * v)
                vals[sel] = v
            use = self._free > 0
            out += np.bincount(self._free[use] - 1, weights=vals[use], minlength=self.q)
        mvals = np.empty(len(self._m_pos))
        mvals[self._m_is_nu] = gmu[self._m_pos[self._m_is_nu]]
        mvals[~self._m_is_nu] = lg[self._m_pos[~self._m_is_nu]]
        use = self._m_free > 0
        out += np.bincount(self._m_free[use] - 1, weights=mvals[use], minlength=self.q)
        return out

    def information(self, th, parts=None) -> np.ndarray:
        r"""Expected information per observation, local parameters:
        :math:`\tfrac12\operatorname{tr}(\Sigma^{-1}\dot\Sigma_a\Sigma^{-1}\dot\Sigma_b)
        + \dot\mu_a^\top\Sigma^{-1}\dot\mu_b`."""
        sig, mu, mats, a, alpha = parts if parts is not None else self.implied(th)
        sinv = np.linalg.inv(sig)
        info = np.zeros((self.q, self.q))
        if self.q_cov:
            deriv = self.model.derivatives(th[: self.q_cov])
            info[: self.q_cov, : self.q_cov] = _information(sinv, deriv)
        dmu = self.mean_derivatives(parts=(sig, mu, mats, a, alpha))
        info += dmu @ sinv @ dmu.T
        return info

    def mean_derivatives(self, th=None, parts=None) -> np.ndarray:
        """d mu / d parameter: array (q, p)."""
        sig, mu, mats, a, alpha = parts if parts is not None else self.implied(th)
        la = mats["lambda"] @ a
        a_alpha = a @ alpha
        out = np.zeros((self.q, self.p))
        if np.any(a_alpha != 0):
            for mat, i, j, k in zip(self._mat, self._r, self._c, self._free):
                if k == 0:
                    continue
                if mat == "lambda":
                    out[k - 1, i] += a_alpha[j]
                elif mat == "beta":
                    out[k - 1] += la[:, i] * a_alpha[j]
        for is_nu, pos, k in zip(self._m_is_nu, self._m_pos, self._m_free):
            if k > 0:
                if is_nu:
                    out[k - 1, pos] += 1.0
                else:
                    out[k - 1] += la[:, pos]
        return out


# --------------------------------------------------------------------------- data of one group


@dataclass
class _GroupData:
    """One group's data: the complete rows as sufficient statistics, the incomplete rows (FIML)
    one by one, batched by their number of missing values."""

    label: str
    n: int
    x: np.ndarray  # the rows used (NaN for missing)
    n_complete: int
    mean_complete: np.ndarray
    cov_complete: np.ndarray
    incomplete: list  # (deviations-ready rows with 0 for missing (K, p), missing indices (K, r))
    n_cells: int  # observed cells, for the 2 pi constant
    sample_cov: np.ndarray  # S (listwise) or the EM covariance (FIML)
    sample_mean: np.ndarray
    h1_logl: float
    base_logl: float


def _group_data(label: str, x: np.ndarray, missing: str, names: list[str]) -> _GroupData:
    from analysis.missing import em_moments

    n, p = x.shape
    observed = ~np.isnan(x)
    complete = observed.all(axis=1)
    xc = x[complete]
    mean_c = xc.mean(axis=0) if len(xc) else np.zeros(p)
    dev = xc - mean_c
    cov_c = dev.T @ dev / len(xc) if len(xc) else np.zeros((p, p))
    if missing == "listwise":
        logdet = np.linalg.slogdet(cov_c)[1]
        h1 = -n / 2 * (p * np.log(2 * np.pi) + logdet + p)
        base = -n / 2 * (p * np.log(2 * np.pi) + np.sum(np.log(np.diag(cov_c))) + p)
        return _GroupData(label, n, x, n, mean_c, cov_c, [], n * p, cov_c, mean_c, h1, base)
    em = em_moments(pd.DataFrame(x, columns=names), names)
    incomplete = []
    n_missing = (~observed).sum(axis=1)
    for r in sorted(set(n_missing[~complete].tolist())):
        rows = np.flatnonzero(n_missing == r)
        mis = np.array([np.flatnonzero(~observed[k]) for k in rows]).reshape(len(rows), r)
        incomplete.append((x[rows], mis))
    base = 0.0
    for j in range(p):
        col = x[observed[:, j], j]
        base += -len(col) / 2 * (np.log(2 * np.pi) + np.log(col.var()) + 1)
    return _GroupData(label, n, x, int(complete.sum()), mean_c, cov_c, incomplete, int(observed.sum()),
                      em.cov.to_numpy(), em.mean.to_numpy(), em.loglik, base)


def _group_objective(sig, mu, data: _GroupData, want_grad: bool):
    r"""-log L of one group (without the :math:`2\pi` constant) and, optionally, dF/dSigma and
    dF/dmu. An incomplete row with missing set m uses
    :math:`\Sigma_{oo}^{-1} = P_{oo} - P_{om}P_{mm}^{-1}P_{mo}` and
    :math:`\log|\Sigma_{oo}| = \log|\Sigma| + \log|P_{mm}|` with :math:`P = \Sigma^{-1}`
    (embedded in p x p with zeros on m), batched over rows with the same number of missing values."""
    try:
        chol = np.linalg.cholesky(sig)
    except np.linalg.LinAlgError:
        return np.inf, None, None
    logdet = 2 * np.sum(np.log(np.diag(chol)))
    prec = np.linalg.inv(sig)
    prec = (prec + prec.T) / 2
    p = len(sig)
    value = 0.0
    gs = np.zeros((p, p)) if want_grad else None
    gmu = np.zeros(p) if want_grad else None
    nc = data.n_complete
    if nc:
        d = data.mean_complete - mu
        v = prec @ d
        value += nc / 2 * (logdet + np.sum(prec * data.cov_complete) + d @ v)
        if want_grad:
            gs += nc / 2 * (prec - np.outer(v, v) - prec @ data.cov_complete @ prec)
            gmu -= nc * v
    for rows, mis in data.incomplete:
        k, r = mis.shape
        dev = np.where(np.isnan(rows), 0.0, rows - mu)
        pd_ = dev @ prec  # (K, p)
        p_mm = prec[mis[:, :, None], mis[:, None, :]]  # (K, r, r)
        sign, ld_mm = np.linalg.slogdet(p_mm)
        if np.any(sign <= 0):
            return np.inf, None, None
        w = np.linalg.solve(p_mm, np.take_along_axis(pd_, mis, axis=1)[:, :, None])[:, :, 0]  # (K, r)
        u = prec[:, mis].transpose(1, 0, 2)  # (K, p, r): columns m of P
        v = pd_ - np.einsum("kpr,kr->kp", u, w)
        value += 0.5 * (k * logdet + ld_mm.sum() + np.sum(dev * v))
        if want_grad:
            z = np.linalg.solve(p_mm, u.transpose(0, 2, 1))  # (K, r, p) = P_mm^-1 U'
            q_sum = k * prec - np.einsum("kpr,krq->pq", u, z)
            gs += 0.5 * (q_sum - v.T @ v)
            gmu -= v.sum(axis=0)
    return value, gs, gmu


# --------------------------------------------------------------------------- the fit


@dataclass(frozen=True)
class MultiGroupFit:
    """A fitted multi-group model, with lavaan's names.

    Attributes
    ----------
    parameters : DataFrame
        lavaan's ``parameterEstimates(fit, standardized = TRUE)``: ``lhs, op, rhs, group,
        label, est, se, z, pvalue, ci_lower, ci_upper, std_all`` (``group`` is the group's
        label; ``label`` only the labels of the syntax), plus ``free`` (the parameter number,
        shared by equal parameters; 0 fixed).
    fit : dict
        lavaan's fitMeasures, every measure lavaan reports for the estimator (``npar, chisq, df,
        pvalue, cfi, tli, rni, rmsea`` with its interval and p-values, ``srmr, srmr_bentler, gfi,
        agfi, logl, aic, bic, bic2, ecvi, ntotal, ngroups``, ...; scaled and robust versions with
        MLR and FIML), from :func:`analysis.sem.fit.fit_measures`.
    groups : tuple of str
        Group labels in model order (the first is the reference for latent means).
    n : dict
        Rows used per group.
    implied : dict
        Per group ``{"cov": DataFrame, "mean": Series}``.
    warnings : tuple of str
        Inadmissible solutions, identification and convergence problems (also raised).
    """

    parameters: pd.DataFrame
    fit: dict
    groups: tuple[str, ...]
    n: dict
    implied: dict
    vcov: np.ndarray | None
    theta: np.ndarray
    table: MultiGroupTable
    converged: bool
    iterations: int
    group_equal: tuple[str, ...] = ()
    group_partial: tuple[str, ...] = ()
    missing: str = "listwise"
    warnings: tuple[str, ...] = field(default_factory=tuple)
    _data: tuple = field(default=(), repr=False, compare=False)  # (observed names, group data) for reuse


def _reuse(start: "MultiGroupFit | None", names: list[str], groups, xs, missing: str):
    """The group data of ``start`` when it was fitted to the same rows (in any column order)."""
    if start is None or not start._data or start.missing != missing or tuple(start.groups) != tuple(groups):
        return None
    old_names, old = start._data
    if set(old_names) != set(names) or len(old_names) != len(names):
        return None
    perm = np.array([old_names.index(v) for v in names])
    out = []
    for d, x in zip(old, xs):
        if d.x.shape != x.shape or not np.array_equal(d.x[:, perm], x, equal_nan=True):
            return None
        out.append(_GroupData(d.label, d.n, x, d.n_complete, d.mean_complete[perm],
                              d.cov_complete[np.ix_(perm, perm)],
                              [(rows[:, perm], np.argsort(perm)[mis]) for rows, mis in d.incomplete], d.n_cells,
                              d.sample_cov[np.ix_(perm, perm)], d.sample_mean[perm], d.h1_logl, d.base_logl))
    return out


def _numeric_groups(data: pd.DataFrame, group: str, observed: list[str], groups, missing: str):
    """Split ``data`` by ``group`` into numeric matrices of the observed variables, checking them."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if group not in data.columns:
        raise InputError(f"group column {group!r} is not in the data; columns are {', '.join(map(str, data.columns))}")
    absent = data[group].isna()
    if absent.any():
        rows = np.flatnonzero(absent.to_numpy()) + 1
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise InputError(f"group column {group!r} is empty in {len(rows)} row(s) (rows {shown}); "
                         "give those rows a group or drop them")
    labels = data[group].astype(str)
    present = list(dict.fromkeys(labels))
    if groups is None:
        groups = present
    else:
        groups = [str(g) for g in groups]
        unknown = [g for g in groups if g not in set(present)]
        if unknown:
            raise InputError(f"group {unknown[0]!r} is not a value of {group!r}; its values are {', '.join(present)}")
    x_all = numeric_columns(data, observed)
    out = []
    p = len(observed)
    for g in groups:
        x = x_all[labels == g].to_numpy(dtype=float)
        if missing == "listwise":
            x = x[~np.isnan(x).any(axis=1)]
            what = "complete cases"
        else:
            x = x[~np.isnan(x).all(axis=1)]
            what = "rows with an observed value"
        if len(x) <= p:
            raise InputError(f"group {g!r} of {group!r} has {len(x)} {what} for {p} observed variables; a group "
                             f"needs more rows than variables (leave it out with groups=...)")
        for k, c in enumerate(observed):
            col = x[:, k][~np.isnan(x[:, k])]
            if len(col) == 0:
                raise InputError(f"column {c!r} is entirely missing in group {g!r}; leave the group out")
            if np.all(col == col[0]):
                raise InputError(f"column {c!r} is constant in group {g!r} (every value is {col[0]:g}); its "
                                 "covariance matrix is singular, so leave the group out or drop the item")
        out.append(x)
    return groups, out


def fit_multigroup(data: pd.DataFrame, model: LavaanModel | str, group: str, group_equal=(), group_partial=(),
                   missing: str = "listwise", groups=None, labels: str = "shared", se: bool = True,
                   start: "MultiGroupFit | None" = None, max_iter: int = 500) -> MultiGroupFit:
    """Fit ``model`` in every group of ``data[group]`` by ML with cross-group equality constraints.

    Parameters
    ----------
    data : DataFrame
    model : str or LavaanModel
        lavaan syntax.
    group : str
        Grouping column.
    group_equal, group_partial : sequence of str
        As lavaan's ``group.equal`` and ``group.partial`` (see the module docstring).
    missing : {"listwise", "fiml"}
    groups : sequence, optional
        The groups to fit, in order (default: every value of ``group`` in order of appearance,
        as lavaan). The first is the reference group for latent means.
    labels : {"shared", "per_group"}
        See :func:`multigroup_table`.
    se : bool
        Compute standard errors (``False``: lavaan's ``se = "none"``; se, z, p are NaN).
    start : MultiGroupFit, optional
        Start from the estimates of another fit of the same model (e.g. the previous step of an
        invariance ladder); parameters it does not have start as usual.

    Returns
    -------
    MultiGroupFit

    Raises
    ------
    ValueError
        A missing group column or group value, non-numeric data, a group with no more rows than
        observed variables or a constant item, an unidentified model (more parameters than
        moments), or what :func:`multigroup_table` refuses.

    Notes
    -----
    In R: ``lavaan::cfa(model, data, group = group, group.equal = ..., group.partial = ...,
    missing = "listwise" | "fiml")``.
    """
    if missing not in ("listwise", "fiml"):
        raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
    parsed = parse_model(model) if isinstance(model, str) else model
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    kept = LavaanModel(tuple(s for s in parsed.statements if s.op not in ("==", "<", ">")))
    observed = list(_lavaan_table(kept, list(data.columns)).observed)
    groups, xs = _numeric_groups(data, group, observed, groups, missing)
    table = multigroup_table(parsed, groups, group_equal, group_partial, list(data.columns), labels)
    p, n_groups = len(observed), len(groups)
    q = table.n_free
    moments = n_groups * (p * (p + 1) // 2 + p)
    if q > moments:
        raise InputError(f"the model is not identified: {q} free parameters but only {moments} means, variances "
                         f"and covariances over {n_groups} groups (degrees of freedom {moments - q})")
    gdata = _reuse(start, observed, groups, xs, missing) or \
        [_group_data(g, x, missing, observed) for g, x in zip(groups, xs)]
    models = [_GroupModel(table, gi) for gi in range(n_groups)]
    ns = np.array([d.n for d in gdata], dtype=float)
    ntotal = int(ns.sum())
    for d in gdata:
        if np.linalg.eigvalsh(d.sample_cov).min() <= 1e-12 * np.abs(d.sample_cov).max():
            raise InputError(f"the covariance matrix of group {d.label!r} is singular: an observed variable is a "
                             "linear combination of others in that group; leave the group out or drop the item")

    theta0 = _starting_values(table, models, gdata, start)

    def objective(th):
        total = 0.0
        for mdl, d in zip(models, gdata):
            sig, mu, *_ = mdl.implied(th[mdl.idx])
            value = _group_objective(sig, mu, d, False)[0]
            if not np.isfinite(value):
                return np.inf
            total += value
        return total

    def gradient(th, which=None):
        grad = np.zeros(q)
        for gi, (mdl, d) in enumerate(zip(models, gdata)):
            if which is not None and gi not in which:
                continue
            local = th[mdl.idx]
            parts = mdl.implied(local)
            value, gs, gmu = _group_objective(parts[0], parts[1], d, True)
            if not np.isfinite(value):
                return np.full(q, np.nan)
            np.add.at(grad, mdl.idx, mdl.gradient(local, gs, gmu, parts))
        return grad

    def information(th):
        info = np.zeros((q, q))
        for mdl, n in zip(models, ns):
            local = th[mdl.idx]
            info[np.ix_(mdl.idx, mdl.idx)] += n * mdl.information(local)
        return info

    theta, f, converged, iterations = _fisher_scoring(objective, gradient, information, theta0, max_iter)
    notes: list[str] = []
    if not converged:
        notes.append(f"the optimiser did not converge in {max_iter} iterations")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=2)

    # Fit measures.
    logl = -f - sum(d.n_cells for d in gdata) * np.log(2 * np.pi) / 2
    h1 = sum(d.h1_logl for d in gdata)
    base = sum(d.base_logl for d in gdata)
    chisq = max(2 * (h1 - logl), 0.0)
    df = moments - q
    base_chisq, base_df = 2 * (h1 - base), n_groups * p * (p - 1) // 2
    implied, sigmas, mus = {}, [], []
    for mdl, d in zip(models, gdata):
        sig, mu, *_ = mdl.implied(theta[mdl.idx])
        sigmas.append(sig)
        mus.append(mu)
        implied[d.label] = {"cov": pd.DataFrame(sig, index=observed, columns=observed),
                            "mean": pd.Series(mu, index=observed)}
    samples = dict(sample_cov=[d.sample_cov for d in gdata], implied_cov=sigmas, nobs=[d.n for d in gdata],
                   sample_mean=[d.sample_mean for d in gdata], implied_mean=mus)
    if missing == "listwise":
        gfi_value = fitm.ml_gfi(**samples)
    else:  # lavaan's GFI with FIML: pairwise moments, the missing-data information (fit.ml_gfi)
        moments = [fitm.missing_data_moments(d.x) for d in gdata]
        gfi_value = fitm.ml_gfi([c for c, _, _ in moments], sigmas, samples["nobs"], [m for _, m, _ in moments], mus,
                                patterns=[pt for _, _, pt in moments])
    gfi_args = dict(gfi_value=gfi_value, nel=n_groups * (p * (p + 1) // 2 + p))
    fit = fitm.fit_measures(npar=int(q), ntotal=ntotal, chisq=float(chisq), df=int(df),
                            baseline_chisq=float(base_chisq), baseline_df=int(base_df), n_groups=n_groups,
                            fmin=float(chisq / (2 * ntotal)), logl=float(logl), unrestricted_logl=float(h1),
                            residuals=fitm.residual_measures(**samples), **gfi_args)

    # Standard errors.
    vcov = None
    if se:
        if missing == "listwise":
            info = information(theta)
        else:
            info = _hessian(gradient, theta, models)
        vcov, ident_note = _invert_information(info, table)
        if ident_note:
            notes.append(ident_note)
            warnings.warn(ident_note, IdentificationWarning, stacklevel=2)
    params, std_notes = _parameter_table(table, models, theta, vcov)
    notes += std_notes
    for note in std_notes:
        warnings.warn(note, InadmissibleWarning, stacklevel=2)
    return MultiGroupFit(parameters=params, fit=fit, groups=tuple(groups), n={d.label: d.n for d in gdata},
                         implied=implied, vcov=vcov, theta=theta, table=table, converged=converged,
                         iterations=iterations, group_equal=tuple(group_equal) if not isinstance(group_equal, str)
                         else (group_equal,), group_partial=tuple(group_partial) if not isinstance(group_partial, str)
                         else (group_partial,), missing=missing, warnings=tuple(notes), _data=(tuple(observed), gdata))


def _starting_values(table: MultiGroupTable, models, gdata, start) -> np.ndarray:
    """Per group, :func:`analysis.sem._start` on the group's (EM) covariance and the sample
    means as intercepts; parameters shared by groups start at the mean of the groups' starts.
    With ``start``, its estimates where it has the same parameter (lhs, op, rhs, group)."""
    q = table.n_free
    total, count = np.zeros(q), np.zeros(q)
    for mdl, d in zip(models, gdata):
        local = np.zeros(mdl.q)
        if mdl.q_cov:
            local[: mdl.q_cov] = _start(mdl.pt, d.sample_cov)
        for is_nu, pos, k, value in zip(mdl._m_is_nu, mdl._m_pos, mdl._m_free, mdl._m_value):
            if k > 0:
                local[k - 1] = d.sample_mean[pos] if is_nu else 0.0
        # Second-order loadings start at 1 (as the marker; sem's start would give 0, a point
        # where the higher-order factor's variance is not identified).
        higher = (mdl.pt.rows["op"] == "=~").to_numpy() & (mdl.pt.rows["matrix"] == "beta").to_numpy()
        for k in mdl.pt.rows["free"].to_numpy()[higher]:
            if k > 0:
                local[k - 1] = 1.0
        # Given start values of the syntax win.
        starts = mdl.rows["start"].to_numpy()
        for k, s in zip(mdl.local, starts):
            if k > 0 and s is not None and not pd.isna(s):
                local[k - 1] = s
        np.add.at(total, mdl.idx, local)
        np.add.at(count, mdl.idx, 1)
    theta = total / np.maximum(count, 1)
    if start is not None:
        prev = start.parameters.set_index(["group", "lhs", "op", "rhs"])["est"]
        prev = prev[~prev.index.duplicated()]
        r = table.rows
        keys = list(zip(r["group"], r["lhs"], r["op"], r["rhs"]))
        found = prev.reindex(keys).to_numpy()
        total, count = np.zeros(q), np.zeros(q)
        use = (r["free"].to_numpy() > 0) & ~np.isnan(found)
        np.add.at(total, r["free"].to_numpy()[use] - 1, found[use])
        np.add.at(count, r["free"].to_numpy()[use] - 1, 1)
        theta = np.where(count > 0, total / np.maximum(count, 1), theta)
    return theta


def _fisher_scoring(objective, gradient, information, theta, max_iter):
    """Minimise -log L: Fisher scoring (the expected information as metric, step halving) for
    the first three iterations, then BFGS updates of that metric (superlinear where scoring is
    only linear, for a model that does not fit exactly); the information is recomputed whenever
    a step fails. Converged when the decrement :math:`g^\\top H^{-1} g` is below ``1e-12`` of
    :math:`-\\log L`; falls back to scipy's BFGS from the last point if this stalls.
    Returns (theta, -log L without constants, converged, iterations)."""
    f = objective(theta)
    if not np.isfinite(f):
        raise ValueError("the starting values give a covariance matrix that is not positive definite")
    grad = gradient(theta)
    hinv, fresh = _inverse(information(theta)), True
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        if not np.all(np.isfinite(grad)):
            break
        step = -hinv @ grad
        decrement = -grad @ step
        if not np.all(np.isfinite(step)) or decrement < 0:
            if fresh:
                break
            hinv, fresh = _inverse(information(theta)), True
            continue
        if decrement < 1e-12 * max(1.0, abs(f)):
            converged = True
            break
        t = 1.0
        while t > 1e-10:
            new = theta + t * step
            f_new = objective(new)
            if np.isfinite(f_new) and f_new <= f + 1e-13 * abs(f):
                break
            t /= 2
        else:
            if fresh:
                break
            hinv, fresh = _inverse(information(theta)), True
            continue
        grad_new = gradient(new)
        s, y = new - theta, grad_new - grad
        theta, f, grad = new, f_new, grad_new
        sy = s @ y
        if it < 3 or t < 1e-3 or sy <= 1e-12 * np.sqrt((s @ s) * (y @ y)):
            hinv, fresh = _inverse(information(theta)), True
        else:
            rho = 1.0 / sy
            hy = hinv @ y
            hinv = hinv - rho * (np.outer(s, hy) + np.outer(hy, s)) + (rho ** 2 * (y @ hy) + rho) * np.outer(s, s)
            fresh = False
    if not converged:
        def value_and_grad(th):
            value = objective(th)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(th)
            return value, gradient(th)

        res = optimize.minimize(value_and_grad, theta, jac=True, method="BFGS",
                                options={"gtol": 1e-7, "maxiter": 20 * max_iter})
        if res.fun <= f:
            theta, f = res.x, float(res.fun)
        grad = gradient(theta)
        decrement = grad @ _inverse(information(theta)) @ grad
        converged = bool(np.isfinite(decrement) and abs(decrement) < 1e-6 * max(1.0, abs(f)))
        it += int(res.nit)
    return theta, float(f), converged, it


def _inverse(info):
    """Inverse of an information matrix: by Cholesky of the diagonally scaled matrix or, when
    that is (nearly) singular - a parameter that is not identified - the pseudo-inverse, so
    that no step moves along a direction the data say nothing about."""
    scale = np.sqrt(np.abs(np.diag(info)))
    scale[scale == 0] = 1.0
    outer = np.outer(scale, scale)
    scaled = info / outer
    try:
        c = linalg.cho_factor(scaled)
        if np.min(np.abs(np.diag(c[0]))) ** 2 > 1e-10:
            return linalg.cho_solve(c, np.eye(len(info))) / outer
    except linalg.LinAlgError:
        pass
    w, v = np.linalg.eigh(scaled)
    keep = w > 1e-10 * max(w.max(), 1e-300)
    return ((v[:, keep] / w[keep]) @ v[:, keep].T) / outer


def _hessian(gradient, theta, models) -> np.ndarray:
    """Observed information: the Hessian of -log L by central differences of the analytic
    gradient, column k recomputing only the groups parameter k belongs to."""
    q = len(theta)
    in_group = [set(mdl.idx.tolist()) for mdl in models]
    hess = np.zeros((q, q))
    for k in range(q):
        which = {gi for gi, s in enumerate(in_group) if k in s}
        h = 1e-5 * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        hess[:, k] = (gradient(up, which) - gradient(down, which)) / (2 * h)
    return (hess + hess.T) / 2


def _invert_information(info: np.ndarray, table: MultiGroupTable):
    note = ""
    scale = np.sqrt(np.abs(np.diag(info)))
    scale[scale == 0] = 1.0
    values = np.linalg.eigvalsh(info / np.outer(scale, scale))
    if values[0] < 1e-10 * max(values[-1], 1.0):
        weak = np.flatnonzero(np.abs(np.linalg.eigh(info / np.outer(scale, scale))[1][:, 0]) > 0.1) + 1
        r = table.rows
        names = list(dict.fromkeys(f"{a} {o} {b}".strip() for a, o, b in
                                   r.loc[r["free"].isin(weak), ["lhs", "op", "rhs"]].itertuples(index=False)))
        note = (f"the information matrix is singular (smallest eigenvalue {values[0]:.3g}): the model may not be "
                f"identified; involved: {', '.join(names[:8])}")
    try:
        vcov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        vcov = np.full_like(info, np.nan)
    return vcov, note


def _parameter_table(table: MultiGroupTable, models, theta, vcov):
    r = table.rows
    free = r["free"].to_numpy()
    est = np.where(free > 0, theta[np.maximum(free - 1, 0)], r["value"].to_numpy(dtype=float))
    if vcov is not None:
        se_free = np.sqrt(np.maximum(np.diag(vcov), 0))
        se = np.where(free > 0, se_free[np.maximum(free - 1, 0)], 0.0)
    else:
        se = np.where(free > 0, np.nan, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(free > 0, est / se, np.nan)
    pval = np.where(free > 0, 2 * stats.norm.sf(np.abs(z)), np.nan)
    crit = stats.norm.ppf(0.975)
    std = np.zeros(len(r))
    notes = []
    for gi, mdl in enumerate(models):
        local = theta[mdl.idx]
        where = np.flatnonzero(r["group_index"].to_numpy() == gi)
        sig, mu, mats, a, alpha = mdl.implied(local)
        cov_std = _standardised(mdl.pt, mdl.model, local[: mdl.q_cov]) if len(mdl.pt.rows) else np.zeros(0)
        var_eta = np.diag(a @ mats["psi"] @ a.T)
        sd_eta = np.where(var_eta > 0, np.sqrt(np.abs(var_eta)), np.nan)
        var_obs = np.diag(sig)
        sd_obs = np.where(var_obs > 0, np.sqrt(np.abs(var_obs)), np.nan)
        vals = np.empty(len(where))
        vals[mdl.cov_mask] = cov_std
        mean_est = est[where][~mdl.cov_mask]
        mean_sd = np.empty(len(mean_est))
        mean_sd[mdl._m_is_nu] = sd_obs[mdl._m_pos[mdl._m_is_nu]]
        mean_sd[~mdl._m_is_nu] = sd_eta[mdl._m_pos[~mdl._m_is_nu]]
        vals[~mdl.cov_mask] = mean_est / mean_sd
        std[where] = vals
        g = table.groups[gi]
        for k in np.flatnonzero(mdl.cov_mask):
            row = mdl.rows.iloc[k]
            value = est[where[k]]
            if row["op"] == "~~" and row["lhs"] == row["rhs"] and value < 0:
                notes.append(f"Heywood case in group {g!r}: the variance of {row['lhs']} is negative ({value:.3f})")
            elif row["op"] == "=~" and abs(vals[k]) > 1:
                notes.append(f"standardised loading of {row['rhs']} on {row['lhs']} in group {g!r} is "
                             f"{vals[k]:.3f} (> 1)")
        cov_lv = a @ mats["psi"] @ a.T
        if len(cov_lv) and np.linalg.eigvalsh(cov_lv).min() < -1e-10:
            notes.append(f"the latent covariance matrix of group {g!r} is not positive definite")
    out = pd.DataFrame({
        "lhs": r["lhs"], "op": r["op"], "rhs": r["rhs"], "group": r["group"], "label": r["label"], "est": est,
        "se": se, "z": z, "pvalue": pval, "ci_lower": est - crit * se, "ci_upper": est + crit * se, "std_all": std,
        "free": free,
    })
    return out, notes


# --------------------------------------------------------------------------- tests


def lr_test(restricted: MultiGroupFit, general: MultiGroupFit) -> dict:
    """Likelihood-ratio (chi-square difference) test of nested ML fits, as ``lavTestLRT``
    (standard test): :math:`\\Delta\\chi^2 = \\chi^2_r - \\chi^2_g` on :math:`df_r - df_g`.

    Also the differences in CFI, RMSEA and SRMR (restricted minus general).

    Raises
    ------
    ValueError
        When ``restricted`` does not have more degrees of freedom than ``general``, or the fits
        are on different data.
    """
    fr, fg = restricted.fit, general.fit
    if fr["ntotal"] != fg["ntotal"] or restricted.n != general.n:
        raise ValueError(f"the fits are on different data (group sizes {restricted.n} and {general.n})")
    ddf = fr["df"] - fg["df"]
    if ddf <= 0:
        raise ValueError(f"the restricted model must have more degrees of freedom ({fr['df']}) than the general "
                         f"one ({fg['df']})")
    dchi = fr["chisq"] - fg["chisq"]
    return {"delta_chisq": float(dchi), "delta_df": int(ddf), "delta_pvalue": float(stats.chi2.sf(max(dchi, 0), ddf)),
            "delta_cfi": float(fr["cfi"] - fg["cfi"]), "delta_rmsea": float(fr["rmsea"] - fg["rmsea"]),
            "delta_srmr": float(fr["srmr"] - fg["srmr"])}


def wald_equal(fit: MultiGroupFit, lhs: str, op: str, rhs: str = "") -> dict:
    r"""Wald test that one parameter is equal in every group:
    :math:`W = (C\hat\theta)^\top (C V C^\top)^{-1} C\hat\theta` on G - 1 df, with C the
    differences from group 1. In R: ``lavTestWald(fit, "b.g1 == b.g2")`` with per-group
    labels ``c(b.g1, b.g2)*x``.

    Raises
    ------
    ValueError
        An unknown parameter, one that is fixed or already equal in some groups, or a fit
        without standard errors.
    """
    if fit.vcov is None:
        raise ValueError("the fit has no standard errors (se=False); refit with se=True for Wald tests")
    p = fit.parameters
    sel = p[(p["lhs"] == lhs) & (p["op"] == op) & (p["rhs"] == rhs)]
    if op == "~~" and sel.empty:
        sel = p[(p["lhs"] == rhs) & (p["op"] == op) & (p["rhs"] == lhs)]
    if sel.empty:
        raise InputError(f"{lhs} {op} {rhs} is not a parameter of the model".replace("  ", " "))
    idx = sel["free"].to_numpy()
    if (idx == 0).any() or len(set(idx)) != len(idx):
        raise InputError(f"{lhs} {op} {rhs} is fixed or already equal in some groups; a Wald test of equality "
                         "needs it free in every group")
    k = len(idx)
    c = np.zeros((k - 1, len(fit.theta)))
    for j in range(1, k):
        c[j - 1, idx[j] - 1] = 1.0
        c[j - 1, idx[0] - 1] = -1.0
    diff = c @ fit.theta
    stat = float(diff @ np.linalg.solve(c @ fit.vcov @ c.T, diff))
    return {"chisq": stat, "df": k - 1, "pvalue": float(stats.chi2.sf(stat, k - 1))}
