"""The model: a lavaan parameter table as LISREL matrices per group, implied moments and derivatives.

Every group (lavaan's *block*) gets lavaan's "all-y" LISREL representation (Rosseel, 2012;
lavaan's ``lav_lisrel``):

.. math::

    A = (I - B)^{-1},\\qquad
    \\Sigma = \\Lambda A \\Psi A^\\top \\Lambda^\\top + \\Theta,\\qquad
    \\mu = \\nu + \\Lambda A \\alpha,

with :math:`\\Lambda` (``lambda``, loadings), :math:`B` (``beta``, regressions among latents and
loadings of latent indicators), :math:`\\Psi` (``psi``), :math:`\\Theta` (``theta``), :math:`\\nu`
(``nu``, intercepts) and :math:`\\alpha` (``alpha``, latent means). ``tau`` (thresholds, ``|``)
and ``delta`` (scale factors, ``~*~``) rows are placed too, for the ordinal estimators
(:mod:`analysis.sem.wls`); the continuous implied moments ignore ``tau``. An item with a
``delta`` row (an ordered item, lavaan's delta parameterization) gets the residual variance
:math:`\\theta_{jj} = 1/\\delta_j^2 - [\\Lambda A\\Psi A^\\top\\Lambda^\\top]_{jj}` whatever its
``~~`` row holds, so the implied variance of its latent response :math:`y^*_j` is
:math:`1/\\delta_j^2` (lavaan's ``setResidualElements``).

An observed variable that is regressed on something or predicts something (``y ~ x``, a MIMIC
``F ~ age``), or that covaries with such a variable or with a latent, is an *observed-as-latent*
("phantom") variable as in lavaan: a latent with loading 1 on its observed variable and zero
residual variance, so its regressions live in :math:`B` and its (residual) variances in
:math:`\\Psi`. Under ``fixed.x = TRUE`` the exogenous observed covariates (rows with ``exo == 1``)
have their variances, covariances and means fixed at the sample values of their group
(:meth:`Model.with_sample`); they count neither in ``npar`` nor in the sample moments.

The free parameters are lavaan's ``free`` column (1..q). Equal labels are equal parameters through
``==`` rows (lavaan writes ``.p5. == .p9.``) or a shared ``free`` index; both work.

Derivatives are analytic, per group, with respect to the group's parameter-table rows (the
chain through :math:`A` for :math:`B`), in matrix form:
with :math:`L = \\Lambda A`, :math:`G = A\\Psi A^\\top\\Lambda^\\top` and :math:`\\bar\\eta = A\\alpha`,

- :math:`\\partial\\Sigma/\\partial\\Lambda_{ij} = e_i G_{j\\cdot} + (\\cdot)^\\top`,
  :math:`\\partial\\mu/\\partial\\Lambda_{ij} = e_i\\bar\\eta_j`;
- :math:`\\partial\\Sigma/\\partial B_{ij} = L_{\\cdot i} G_{j\\cdot} + (\\cdot)^\\top`,
  :math:`\\partial\\mu/\\partial B_{ij} = L_{\\cdot i}\\bar\\eta_j`;
- :math:`\\partial\\Sigma/\\partial\\Psi_{ij} = L_{\\cdot i}L_{\\cdot j}^\\top (+ \\text{transpose}, i\\ne j)`;
- :math:`\\partial\\Sigma/\\partial\\Theta_{ij} = E_{ij} (+E_{ji})`; :math:`\\partial\\mu/\\partial\\nu_i = e_i`;
  :math:`\\partial\\mu/\\partial\\alpha_i = L_{\\cdot i}`.

In R: ``lavInspect(fit, "est")`` (the matrices), ``lavInspect(fit, "implied")``,
``lavaan:::computeDelta(fit@Model)`` (the Jacobian).

References
----------
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. Journal of
    Statistical Software 48(2), 1-36.
Bollen, K. A. (1989). Structural Equations with Latent Variables. Wiley (ch. 9, the LISREL model).
Neudecker, H., & Satorra, A. (1991). Linear structural relations: gradient and Hessian of the
    fitting function. Statistics & Probability Letters 11, 57-61.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from analysis.errors import InputError

__all__ = ["Block", "Model", "PARTABLE_COLUMNS", "SampleStats", "build_model", "normalise_partable",
           "sample_statistics"]

PARTABLE_COLUMNS = ["lhs", "op", "rhs", "block", "group", "free", "ustart", "exo", "label", "plabel"]
MATRICES = ("lambda", "beta", "psi", "theta", "nu", "alpha", "tau", "delta")
_MODEL_OPS = ("=~", "~", "<~", "~~", "~1", "|", "~*~")
CONSTRAINT_OPS = ("==", "<", ">", ":=")


def normalise_partable(partable: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``partable`` with lavaan's columns and types (missing optional columns get
    lavaan's defaults: ``block``/``group`` 1 for model rows and 0 for constraint rows, ``exo`` 0,
    empty ``label``, ``plabel`` ``.pK.``, ``ustart`` NaN)."""
    missing = [c for c in ("lhs", "op", "rhs", "free") if c not in partable.columns]
    if missing:
        raise InputError(f"parameter table: column(s) {', '.join(missing)} missing (lavaan's parTable() columns)")
    pt = partable.reset_index(drop=True).copy()
    # lavaanify's attrs (per-row source lines, group labels) would be deep-copied by pandas on
    # every cell access of the engine's copy: quadratic in the table's size (32 s on the default
    # model's table in build_constraints). The engine's copy keeps none.
    pt.attrs = {}
    is_con = pt["op"].isin(CONSTRAINT_OPS)
    bad = sorted(set(pt["op"]) - set(_MODEL_OPS) - set(CONSTRAINT_OPS))
    if bad:
        raise InputError(f"parameter table: operator(s) {', '.join(map(repr, bad))} not known")
    if "block" not in pt.columns:
        pt["block"] = pt["group"] if "group" in pt.columns else np.where(is_con, 0, 1)
    if "group" not in pt.columns:
        pt["group"] = pt["block"]
    if "exo" not in pt.columns:
        pt["exo"] = 0
    if "ustart" not in pt.columns:
        pt["ustart"] = np.nan
    if "label" not in pt.columns:
        pt["label"] = ""
    if "plabel" not in pt.columns:
        pt["plabel"] = [f".p{k + 1}." for k in range(len(pt))]
    for col in ("lhs", "rhs", "label", "plabel"):
        pt[col] = pt[col].fillna("").astype(str)
    for col in ("block", "group", "free", "exo"):
        pt[col] = pd.to_numeric(pt[col], errors="coerce").fillna(0).astype(int)
    pt["ustart"] = pd.to_numeric(pt["ustart"], errors="coerce").astype(float)
    if "start" in pt.columns:
        pt["start"] = pd.to_numeric(pt["start"], errors="coerce").astype(float)
    return pt


@dataclass(frozen=True)
class Block:
    """One group's layout: variable names and where each of its parameter-table rows sits.

    ``rows`` are indices into the parameter table; ``matrix``/``row``/``col`` give each row's
    cell; ``ov`` is the order of Sigma and mu (and of the data columns), ``lv`` the latents
    followed by the observed-as-latent ("phantom") variables ``dummy``; ``ov_x`` the exogenous
    observed covariates (fixed.x).
    """

    index: int
    ov: tuple[str, ...]
    lv: tuple[str, ...]
    dummy: tuple[str, ...]
    ov_x: tuple[str, ...]
    rows: np.ndarray
    matrix: np.ndarray
    row: np.ndarray
    col: np.ndarray

    @property
    def p(self) -> int:
        return len(self.ov)

    @property
    def m(self) -> int:
        return len(self.lv)


def _layout(pt: pd.DataFrame, b: int) -> Block:
    """lavaan's LISREL representation of block ``b`` (its ``lav_lisrel`` with conditional.x = FALSE)."""
    rows = np.flatnonzero((pt["block"].to_numpy() == b) & pt["op"].isin(_MODEL_OPS).to_numpy())
    sub = pt.iloc[rows]
    lhs, op, rhs = sub["lhs"].to_numpy(), sub["op"].to_numpy(), sub["rhs"].to_numpy()
    lv = list(dict.fromkeys([*lhs[op == "=~"], *lhs[op == "<~"]]))
    names = []
    for a, o, c in zip(lhs, op, rhs):
        names.extend([a] if o in ("~1", "|", "~*~") else [a, c])
    ov = [v for v in dict.fromkeys(names) if v not in lv and v != ""]
    if "|" in set(op):  # the threshold's rhs is t1, t2, ...: not a variable
        ov = [v for v in ov if not any((o == "|") & (c == v) for o, c in zip(op, rhs))]
    # Observed-as-latent variables, as lavaan: those in a regression; those in a covariance with
    # one of these (and lavaan's second pass over those rows' lhs/rhs); those covarying with a latent.
    reg = (op == "~") | (op == "<~")
    d1 = [v for v in dict.fromkeys([*lhs[reg], *rhs[reg]]) if v not in lv]
    cov = op == "~~"
    idx = cov & (np.isin(lhs, d1) | np.isin(rhs, d1))
    idx1 = cov & (np.isin(lhs, lhs[idx]) | np.isin(rhs, rhs[idx]))
    d2 = [*lhs[idx | idx1], *rhs[idx | idx1]]
    d3 = [*lhs[cov & np.isin(lhs, ov) & np.isin(rhs, lv)], *rhs[cov & np.isin(lhs, lv) & np.isin(rhs, ov)]]
    dummy_set = set(d1) | set(d2) | set(d3)
    dummy = [v for v in ov if v in dummy_set]
    lv_all = lv + dummy
    exo = sub["exo"].to_numpy() == 1
    ov_x = [v for v in ov if v in set(lhs[exo & (op == "~~")]) | set(lhs[exo & (op == "~1")])]
    lv_ix = {v: k for k, v in enumerate(lv_all)}
    ov_ix = {v: k for k, v in enumerate(ov)}
    mat = np.empty(len(rows), dtype=object)
    r = np.zeros(len(rows), dtype=int)
    c = np.zeros(len(rows), dtype=int)
    th_names: list[str] = []
    for k, (a, o, z) in enumerate(zip(lhs, op, rhs)):
        if o == "=~":
            if z in lv_ix:
                mat[k], r[k], c[k] = "beta", lv_ix[z], lv_ix[a]
            else:
                mat[k], r[k], c[k] = "lambda", ov_ix[z], lv_ix[a]
        elif o in ("~", "<~"):
            mat[k], r[k], c[k] = "beta", lv_ix[a], lv_ix[z]
        elif o == "~~":
            if a in lv_ix and z in lv_ix:
                i, j = lv_ix[a], lv_ix[z]
                mat[k] = "psi"
            else:
                i, j = ov_ix[a], ov_ix[z]
                mat[k] = "theta"
            r[k], c[k] = min(i, j), max(i, j)
        elif o == "~1":
            if a in lv_ix:
                mat[k], r[k], c[k] = "alpha", lv_ix[a], 0
            else:
                mat[k], r[k], c[k] = "nu", ov_ix[a], 0
        elif o == "|":
            mat[k], r[k], c[k] = "tau", len(th_names), 0
            th_names.append(f"{a}|{z}")
        elif o == "~*~":
            mat[k], r[k], c[k] = "delta", ov_ix[a], 0
    return Block(index=b, ov=tuple(ov), lv=tuple(lv_all), dummy=tuple(dummy), ov_x=tuple(ov_x), rows=rows,
                 matrix=mat, row=r, col=c)


@dataclass(frozen=True)
class SampleStats:
    """One group's complete-data sample moments: ``n`` cases, covariance ``cov`` on the N
    denominator (lavaan's ``likelihood = "normal"``) and ``mean``, in the order ``ov``."""

    label: str
    ov: tuple[str, ...]
    n: int
    cov: np.ndarray
    mean: np.ndarray


class Model:
    """The parameter table as model matrices: values of the free parameters ``x`` (length
    ``nfree``, lavaan's ``free`` 1..q) to matrices, implied moments and their derivatives.

    Build it with :func:`build_model`; :meth:`with_sample` fills the fixed.x values.
    """

    def __init__(self, partable: pd.DataFrame, blocks: tuple[Block, ...], values: np.ndarray):
        self.partable = partable
        self.blocks = blocks
        self.values = values  # fixed value of every row (NaN for free rows and unfilled fixed.x rows)
        self.free = partable["free"].to_numpy(dtype=int)
        self.nfree = int(self.free.max()) if len(self.free) else 0
        # free parameters as the input table numbered them, before simple equalities were merged
        # (lavaan's count with ceq.simple = FALSE, e.g. the denominator of scaling.factor.h0)
        self.nfree_input = (int(partable["free_input"].max()) if "free_input" in partable.columns and len(partable)
                            else self.nfree)
        self.meanstructure = bool((partable["op"] == "~1").any())
        self.ngroups = len(blocks)
        # per block: the free rows (positions within block.rows) and their free index (0-based)
        self._free_pos = []
        for blk in blocks:
            f = self.free[blk.rows]
            pos = np.flatnonzero(f > 0)
            self._free_pos.append((pos, f[pos] - 1))
        self._ident = [np.eye(blk.m) for blk in blocks]
        # per block: each matrix's rows (positions within block.rows), the phantom loadings' cells
        self._cells = [{name: np.flatnonzero(blk.matrix == name) for name in MATRICES} for blk in blocks]
        self._phantom = [(np.array([blk.ov.index(d) for d in blk.dummy], dtype=int),
                          blk.m - len(blk.dummy) + np.arange(len(blk.dummy))) for blk in blocks]

    # ------------------------------------------------------------------ values
    def with_sample(self, stats: list[SampleStats]) -> "Model":
        """A copy whose fixed exogenous rows (``exo == 1``, ``free == 0``, no ``ustart``) hold
        their group's sample (co)variances and means: lavaan's ``fixed.x = TRUE``."""
        values = self.values.copy()
        pt = self.partable
        exo, ustart = pt["exo"].to_numpy(), pt["ustart"].to_numpy(dtype=float)
        lhs, op, rhs = pt["lhs"].to_numpy(), pt["op"].to_numpy(), pt["rhs"].to_numpy()
        for blk, st in zip(self.blocks, stats):
            ix = {v: k for k, v in enumerate(st.ov)}
            for k in blk.rows:
                if exo[k] == 1 and self.free[k] == 0 and np.isnan(ustart[k]):
                    a, o, z = lhs[k], op[k], rhs[k]
                    if o == "~~":
                        values[k] = st.cov[ix[a], ix[z]]
                    elif o == "~1":
                        values[k] = st.mean[ix[a]]
        return Model(self.partable, self.blocks, values)

    def row_values(self, x: np.ndarray) -> np.ndarray:
        """The value of every parameter-table row: ``x`` for free rows, the fixed value otherwise."""
        out = self.values.copy()
        rows, index = self._free_index()
        out[rows] = x[index]
        return out

    def _free_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The free rows of the table and their free index (0-based), computed once."""
        cached = self.__dict__.get("_free_index_cache")
        if cached is None:
            rows = np.flatnonzero(self.free > 0)
            cached = self._free_index_cache = (rows, self.free[rows] - 1)
        return cached

    def _flat_layout(self, g: int) -> tuple:
        """Group g's six continuous matrices as one flat buffer (``lambda, beta, psi, theta, nu,
        alpha``, each row-major): its size, each matrix's name, start, end and shape, the buffer
        cells of the group's rows (a (co)variance also at its mirror cell) with the table rows they
        take, and the phantom loadings' cells (1); computed once per model."""
        cache = self.__dict__.setdefault("_flat_cache", {})
        if g not in cache:
            blk, cells = self.blocks[g], self._cells[g]
            p, m = blk.p, blk.m
            shapes = {"lambda": (p, m), "beta": (m, m), "psi": (m, m), "theta": (p, p), "nu": (p,), "alpha": (m,)}
            offsets, at = {}, 0
            for name, shape in shapes.items():
                offsets[name] = at
                at += int(np.prod(shape))
            dest, src = [], []
            for name in ("lambda", "beta", "psi", "theta"):
                sel = cells[name]
                ncol = shapes[name][1]
                dest.append(offsets[name] + blk.row[sel] * ncol + blk.col[sel])
                src.append(blk.rows[sel])
                if name in ("psi", "theta"):
                    dest.append(offsets[name] + blk.col[sel] * ncol + blk.row[sel])
                    src.append(blk.rows[sel])
            for name in ("nu", "alpha"):
                sel = cells[name]
                dest.append(offsets[name] + blk.row[sel])
                src.append(blk.rows[sel])
            rows, cols = self._phantom[g]
            phantom = offsets["lambda"] + rows * m + cols
            views = tuple((name, offsets[name], offsets[name] + int(np.prod(shape)), shape)
                          for name, shape in shapes.items())
            cache[g] = (at, views, np.concatenate(dest).astype(np.intp), np.concatenate(src).astype(np.intp),
                        phantom.astype(np.intp))
        return cache[g]

    # ------------------------------------------------------------------ matrices and moments
    def matrices(self, x: np.ndarray, values: np.ndarray | None = None,
                 groups: list[int] | None = None) -> list[dict[str, np.ndarray]]:
        """Per group (or per group of ``groups``, 0-based), lavaan's model matrices (``lambda,
        beta, psi, theta, nu, alpha``; ``tau`` and ``delta`` when present) at ``x`` (or at the
        given row ``values``)."""
        v = self.row_values(x) if values is None else values
        out = []
        for g in (range(len(self.blocks)) if groups is None else groups):
            blk, cells = self.blocks[g], self._cells[g]
            p, m = blk.p, blk.m
            size, views, dest, src, phantom = self._flat_layout(g)
            flat = np.zeros(size)  # the six matrices in one buffer, filled by two scatters
            flat[phantom] = 1.0
            flat[dest] = v[src]
            mats = {name: flat[a:b].reshape(shape) for name, a, b, shape in views}
            vals = v[blk.rows] if len(cells["tau"]) or len(cells["delta"]) else None
            for name in ("tau", "delta"):
                sel = cells[name]
                if len(sel):
                    mats[name] = np.zeros(int(blk.row[sel].max()) + 1 if name == "tau" else p)
                    mats[name][blk.row[sel]] = vals[sel]
            sel = cells["delta"]
            if len(sel):  # delta parameterization (lavaan's setResidualElements): Var(y*_j) = 1/delta_j^2
                items = blk.row[sel]
                la = mats["lambda"] @ np.linalg.inv(np.eye(m) - mats["beta"])
                common = np.einsum("ij,jk,ik->i", la[items], mats["psi"], la[items])
                mats["theta"][items, items] = 1.0 / vals[sel] ** 2 - common
            out.append(mats)
        return out

    def state(self, x: np.ndarray, values: np.ndarray | None = None,
              groups: list[int] | None = None) -> list[dict[str, np.ndarray]]:
        """Per group the matrices with :math:`A = (I-B)^{-1}` (``a``), the implied ``sigma`` and
        ``mu``, and the latents' implied covariance ``veta`` (:math:`A\\Psi A^\\top`) and means
        ``eeta`` (:math:`A\\alpha`), all from one evaluation."""
        out = []
        for mats in self.matrices(x, values, groups):
            eye = np.eye(len(mats["beta"]))
            # LAPACK's solve, what np.linalg.inv calls, without its overhead
            a, info = lapack.dgesv(eye - mats["beta"], eye)[2:]
            if info > 0:
                raise np.linalg.LinAlgError("Singular matrix")
            la = mats["lambda"] @ a
            veta = a @ mats["psi"] @ a.T
            sigma = mats["lambda"] @ veta @ mats["lambda"].T + mats["theta"]
            eeta = a @ mats["alpha"]
            out.append({**mats, "a": a, "veta": veta, "eeta": eeta, "sigma": 0.5 * (sigma + sigma.T),
                        "mu": mats["nu"] + la @ mats["alpha"]})
        return out

    def implied(self, x: np.ndarray, values: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group the implied covariance matrix and mean vector (in ``block.ov`` order)."""
        return [(st["sigma"], st["mu"]) for st in self.state(x, values)]

    def latent_moments(self, x: np.ndarray, values: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group the implied covariance matrix and means of all latents (``block.lv``):
        :math:`A\\Psi A^\\top` and :math:`A\\alpha` (lavaan's ``veta``/``eeta``)."""
        return [(st["veta"], st["eeta"]) for st in self.state(x, values)]

    def derivatives(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per group ``(index, dsigma, dmu)``: the 0-based free index of each free row of the
        group, and the derivatives of Sigma (r x p x p) and mu (r x p) in that row's value.
        Rows sharing a free index add (the caller sums over ``index``)."""
        out = []
        for g, mats in enumerate(self.matrices(x)):
            blk = self.blocks[g]
            pos, index = self._free_pos[g]
            p = blk.p
            a = np.linalg.inv(self._ident[g] - mats["beta"])
            la = mats["lambda"] @ a
            gmat = a @ mats["psi"] @ a.T @ mats["lambda"].T  # m x p
            eta = a @ mats["alpha"]
            r = len(pos)
            ds = np.zeros((r, p, p))
            dm = np.zeros((r, p))
            mat, i, j = blk.matrix[pos], blk.row[pos], blk.col[pos]
            k = np.arange(r)
            sel = mat == "lambda"
            if sel.any():
                kk, ii, jj = k[sel], i[sel], j[sel]
                ds[kk, ii, :] += gmat[jj]
                ds[kk, :, ii] += gmat[jj]
                dm[kk, ii] = eta[jj]
            sel = mat == "beta"
            if sel.any():
                kk, ii, jj = k[sel], i[sel], j[sel]
                t = la[:, ii].T[:, :, None] * gmat[jj][:, None, :]
                ds[kk] += t + t.transpose(0, 2, 1)
                dm[kk] = la[:, ii].T * eta[jj][:, None]
            sel = mat == "psi"
            if sel.any():
                kk, ii, jj = k[sel], i[sel], j[sel]
                t = la[:, ii].T[:, :, None] * la[:, jj].T[:, None, :]
                off = ii != jj
                ds[kk] += t
                ds[kk[off]] += t[off].transpose(0, 2, 1)
            sel = mat == "theta"
            if sel.any():
                kk, ii, jj = k[sel], i[sel], j[sel]
                ds[kk, ii, jj] += 1.0
                off = ii != jj
                ds[kk[off], jj[off], ii[off]] += 1.0
            sel = mat == "nu"
            if sel.any():
                dm[k[sel], i[sel]] = 1.0
            sel = mat == "alpha"
            if sel.any():
                dm[k[sel]] = la[:, i[sel]].T
            out.append((index, ds, dm))
        return out

    def factored_derivatives(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray]]:
        """Per group ``(index, a, b, c, dmu)`` with every derivative of Sigma in the rank-two form
        :math:`\\partial\\Sigma_k = c_k(a_k b_k^\\top + b_k a_k^\\top)` (``a``, ``b``: r x p;
        ``c``: 1/2 for a variance in psi or theta, 1 otherwise, 0 for intercepts and means): a
        loading :math:`(e_i, G_{j\\cdot})`, a regression :math:`(L_{\\cdot i}, G_{j\\cdot})`, a
        (co)variance of latents :math:`(L_{\\cdot i}, L_{\\cdot j})`, of residuals :math:`(e_i, e_j)`.
        Information and gradient then cost O(r p) and O(r^2 p) instead of O(r^2 p^2)."""
        out = []
        for g, st in enumerate(self.state(x)):
            blk = self.blocks[g]
            pos, index = self._free_pos[g]
            p, r = blk.p, len(pos)
            la = st["lambda"] @ st["a"]
            gmat = st["veta"] @ st["lambda"].T  # m x p
            eta = st["eeta"]
            a = np.zeros((r, p))
            b = np.zeros((r, p))
            c = np.ones(r)
            dm = np.zeros((r, p))
            mat, i, j = blk.matrix[pos], blk.row[pos], blk.col[pos]
            k = np.arange(r)
            sel = mat == "lambda"
            a[k[sel], i[sel]] = 1.0
            b[sel] = gmat[j[sel]]
            dm[k[sel], i[sel]] = eta[j[sel]]
            sel = mat == "beta"
            a[sel] = la[:, i[sel]].T
            b[sel] = gmat[j[sel]]
            dm[sel] = la[:, i[sel]].T * eta[j[sel]][:, None]
            sel = mat == "psi"
            a[sel] = la[:, i[sel]].T
            b[sel] = la[:, j[sel]].T
            sel = mat == "theta"
            a[k[sel], i[sel]] = 1.0
            b[k[sel], j[sel]] = 1.0
            c[((mat == "psi") | (mat == "theta")) & (i == j)] = 0.5
            sel = mat == "nu"
            dm[k[sel], i[sel]] = 1.0
            c[sel] = 0.0
            sel = mat == "alpha"
            dm[sel] = la[:, i[sel]].T
            c[sel] = 0.0
            c[(mat == "tau") | (mat == "delta")] = 0.0
            out.append((index, a, b, c, dm))
        return out

    # ------------------------------------------------------------------ counting
    def ndat(self) -> int:
        """Sample moments, as lavaan counts them: per group p(p+1)/2 (+ p with a mean structure),
        less those of the fixed exogenous covariates."""
        total = 0
        for blk in self.blocks:
            p, px = blk.p, len(blk.ov_x)
            total += p * (p + 1) // 2 - px * (px + 1) // 2
            if self.meanstructure:
                total += p - px
        return total

    def names(self, rows: np.ndarray | None = None) -> list[str]:
        """``lhs op rhs`` (with the group when there are several) of parameter-table rows."""
        pt = self.partable
        rows = np.arange(len(pt)) if rows is None else rows
        lhs, op, rhs, group = (pt[c].to_numpy() for c in ("lhs", "op", "rhs", "group"))
        out = []
        for k in rows:
            name = f"{lhs[k]} {op[k]} {rhs[k]}".strip()
            if self.ngroups > 1 and group[k] > 0:
                name += f" (group {group[k]})"
            out.append(name)
        return out

    def components(self) -> list[np.ndarray]:
        """The free parameters (0-based) in groups that share no parameter: one array per set of
        groups linked by shared free indices. Without constraints the information is block
        diagonal over these, so it is solved and inverted block by block."""
        parent = list(range(len(self.blocks)))

        def root(g):
            while parent[g] != g:
                g = parent[g]
            return g

        owner: dict[int, int] = {}
        for g, (_, index) in enumerate(self._free_pos):
            for f in index:
                if f in owner:
                    a, b = root(owner[f]), root(g)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
                else:
                    owner[int(f)] = g
        comps: dict[int, list[int]] = {}
        for f in range(self.nfree):
            comps.setdefault(root(owner[f]) if f in owner else -1, []).append(f)
        return [np.asarray(v, dtype=int) for v in comps.values()]

    def free_names(self) -> list[str]:
        """One name per free parameter (its first row)."""
        first = {}
        for k, f in enumerate(self.free):
            if f > 0 and f not in first:
                first[f] = k
        return self.names(np.array([first[f] for f in range(1, self.nfree + 1)], dtype=int))


def build_model(partable: pd.DataFrame) -> Model:
    """The :class:`Model` of a lavaan parameter table (``parTable(fit)`` columns; see
    :func:`normalise_partable`). Fixed rows take ``ustart`` (lavaan's user value); fixed.x rows
    are filled by :meth:`Model.with_sample`.

    Raises
    ------
    InputError
        Free indices not 1..q, a fixed row without a value, or no model rows.
    """
    pt = normalise_partable(partable)
    blocks_ix = sorted(set(pt.loc[pt["op"].isin(_MODEL_OPS), "block"]))
    if not blocks_ix:
        raise InputError("parameter table: no model rows (=~, ~, ~~, ~1)")
    if blocks_ix != list(range(1, len(blocks_ix) + 1)):
        raise InputError(f"parameter table: blocks must be numbered 1..G, got {blocks_ix}")
    free = pt["free"].to_numpy()
    used = sorted(set(free[free > 0]))
    if used != list(range(1, len(used) + 1)):
        raise InputError("parameter table: the free indices must be 1..q without gaps")
    blocks = tuple(_layout(pt, b) for b in blocks_ix)
    values = np.where(free > 0, np.nan, pt["ustart"].to_numpy(dtype=float))
    model_row = pt["op"].isin(_MODEL_OPS).to_numpy()
    # A fixed row without a user value: lavaan's zero (e.g. latent means), unless it is fixed.x.
    unset = model_row & (free == 0) & np.isnan(values) & (pt["exo"].to_numpy() == 0)
    values[unset] = 0.0
    return Model(pt, blocks, values)


def sample_statistics(model: Model, data: pd.DataFrame, group: str | None = None,
                      group_labels: list[str] | None = None) -> tuple[list[SampleStats], list[str]]:
    """Complete-data moments per group in the order of the model's blocks.

    Rows with a missing value in any model variable are dropped (lavaan's ``missing =
    "listwise"``); groups are the values of ``group`` in order of first appearance (lavaan's
    ``group.label``) unless ``group_labels`` gives the order.

    Raises
    ------
    InputError
        A model variable missing from the data, non-numeric values, a group column/label not
        found, the number of groups not that of the model, or too few cases in a group.
    """
    ovs = list(dict.fromkeys(v for blk in model.blocks for v in blk.ov))
    absent = [v for v in ovs if v not in data.columns]
    if absent:
        raise InputError(f"data: column(s) {', '.join(absent)} of the model not found")
    cols = ovs + ([group] if group is not None else [])
    if group is not None and group not in data.columns:
        raise InputError(f"data: group column {group!r} not found")
    d = data[cols]
    x = d[ovs].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in ovs if (x[c].isna() & d[c].notna()).any()]
    if bad:
        c = bad[0]
        row = int(np.flatnonzero((x[c].isna() & d[c].notna()).to_numpy())[0])
        raise InputError(f"data: column {c!r} row {row + 1} is not numeric ({d[c].iloc[row]!r})")
    keep = x.notna().all(axis=1)
    if group is not None:
        keep &= d[group].notna()
    x = x[keep]
    if group is None:
        labels = [""]
        parts = [x]
    else:
        gcol = d.loc[keep, group].astype(str)
        labels = list(group_labels) if group_labels is not None else list(dict.fromkeys(gcol))
        unknown = [g for g in labels if g not in set(gcol)]
        if unknown:
            raise InputError(f"data: group {unknown[0]!r} not found in column {group!r}")
        parts = [x[gcol == g] for g in labels]
    if len(parts) != model.ngroups:
        raise InputError(f"the model has {model.ngroups} group(s) but the data {len(parts)} "
                         f"({'column ' + repr(group) if group else 'no group column'})")
    out = []
    for blk, lab, part in zip(model.blocks, labels, parts):
        arr = part[list(blk.ov)].to_numpy(dtype=float)
        n = len(arr)
        if n <= blk.p:
            raise InputError(f"data: {n} complete cases{' in group ' + repr(lab) if lab else ''} for {blk.p} "
                             "observed variables; the covariance matrix is singular")
        mean = arr.mean(axis=0)
        cov = (arr - mean).T @ (arr - mean) / n
        if np.linalg.eigvalsh(cov).min() <= 1e-12 * np.abs(cov).max():  # lavaan: "not positive-definite"
            raise InputError(f"data: the sample covariance matrix{' in group ' + repr(lab) if lab else ''} is singular: "
                             "an observed variable is a linear combination of others or has no variance")
        out.append(SampleStats(label=lab, ov=blk.ov, n=n, cov=cov, mean=mean))
    return out, labels
