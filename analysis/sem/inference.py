"""Inference: the covariance matrix of the estimates, identification, Wald tests and intervals,
defined parameters and the standardised solutions with delta-method standard errors.

**Covariance of the estimates** (lavaan's ``se = "standard"``, ``information = "expected"``):
with :math:`\\mathcal I` the expected information of the log-likelihood (summed over cases and
groups) and :math:`K` an orthonormal basis of the null space of the Jacobian :math:`H` of the
equality constraints and the active inequality constraints,

.. math:: \\widehat{\\operatorname{Var}}(\\hat x) = K (K^\\top\\mathcal I K)^{-1} K^\\top,

the same matrix as lavaan's inverse of the information augmented by the constraints
(``lav_model_information_augment_invert``). A parameter held at an active bound has zero variance;
its standard error is reported as NaN, as lavaan does.

**Identification.** The model is locally identified at the solution when :math:`K^\\top\\mathcal I K`
is non-singular. The check scales it to unit diagonal and looks at its smallest eigenvalues; the
eigenvectors of those below ``1e-8`` name the parameters that can move together without changing
the likelihood. lavaan in that case warns "could not compute standard errors! The information
matrix could not be inverted. This may be a symptom that the model is not identified"; gapscale
refuses the fit (:class:`~analysis.errors.InputError`), naming the parameters. A model with fewer
sample moments than free parameters (negative degrees of freedom) is refused before it is fitted.

**Standardised solutions** (lavaan's ``standardizedSolution(fit, type = "std.lv" / "std.all")``):
with :math:`s_\\eta` the implied standard deviations of the latents (:math:`\\operatorname{diag}(A\\Psi A^\\top)^{1/2}`)
and :math:`s_y` those of the observed variables (:math:`\\operatorname{diag}(\\Sigma)^{1/2}`), std.lv
scales latents only and std.all both: a loading :math:`\\lambda s_\\eta/s_y`, a regression
:math:`\\beta s_x/s_y`, a variance divided by the total variance, a covariance divided by the
square root of the product of its own (residual) variances (lavaan's ``cov.std = TRUE``),
an intercept or mean by :math:`s`. A defined parameter (``:=``) is its function of the
standardised values. Standard errors by the delta method, with the Jacobian by central
differences in the free parameters.

References
----------
Bollen, K. A. (1989). Structural Equations with Latent Variables. Wiley (p. 349, standardisation).
Rothenberg, T. J. (1971). Identification in parametric models. Econometrica 39, 577-591.
Silvey, S. D. (1959). The Lagrangian multiplier test. Annals of Mathematical Statistics 30, 389-407.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.distributions import norm_ppf, norm_sf
from analysis.errors import InputError
from analysis.sem.constraints import Constraints, jacobian
from analysis.sem.model import Model

__all__ = ["SINGULAR_TOL", "check_identified", "covariance", "inadmissible_notes", "parameter_estimates",
           "standardized_values", "unidentified_parameters"]

SINGULAR_TOL = 1e-8  # smallest eigenvalue of the unit-diagonal reduced information taken as zero


def _null_space(jac: np.ndarray, q: int) -> np.ndarray:
    if jac.size == 0:
        return np.eye(q)
    _, s, vt = np.linalg.svd(jac, full_matrices=True)
    rank = int(np.sum(s > 1e-10 * max(1.0, s.max())))
    return vt[rank:].T


def unidentified_parameters(information: np.ndarray, con_jac: np.ndarray, names: list[str],
                            tol: float = SINGULAR_TOL,
                            components: list[np.ndarray] | None = None) -> tuple[list[str], float]:
    """The parameters along the (near) null directions of the information on the constraint
    surface, and the smallest eigenvalue of the unit-diagonal reduced information (empty list
    and NaN when the model is locally identified)."""
    q = information.shape[0]
    k = _null_space(con_jac, q)
    red = k.T @ information @ k if con_jac.size else information  # K = I: no two q^3 products
    d = np.diag(red).copy()
    zero = d <= 1e-14 * max(1.0, np.abs(d).max(initial=0.0))
    scale = np.where(zero, 1.0, 1.0 / np.sqrt(np.where(zero, 1.0, d)))
    s = red * np.outer(scale, scale)
    s[np.ix_(zero, zero)] = 0.0
    s = 0.5 * (s + s.T)
    if not zero.any():
        # all eigenvalues above tol: a Cholesky factor of s - tol I exists (cheaper than eigh);
        # without constraints block by block over the groups that share no parameter
        comps = components if (con_jac.size == 0 and components is not None) else [np.arange(len(s))]
        try:
            for comp in comps:
                np.linalg.cholesky(s[np.ix_(comp, comp)] - tol * np.eye(len(comp)))
            return [], float("nan")
        except np.linalg.LinAlgError:
            pass
    w, v = np.linalg.eigh(s)
    small = w < tol
    if not small.any():
        return [], float(w.min(initial=np.inf))
    direction = k @ (v[:, small] * scale[:, None])  # q x (number of null directions)
    weight = np.sqrt(np.sum(direction ** 2, axis=1))
    involved = weight > 0.05 * weight.max()
    return [nm for nm, on in zip(names, involved) if on], float(w.min())


def check_identified(information: np.ndarray, con_jac: np.ndarray, names: list[str],
                     components: list[np.ndarray] | None = None) -> None:
    """Raise :class:`InputError` when the information is singular on the constraint surface.

    Raises
    ------
    InputError
        "the model is not identified: ..." naming the parameters involved.
    """
    involved, smallest = unidentified_parameters(information, con_jac, names, components=components)
    if involved:
        raise InputError("the model is not identified: the information matrix is singular at the solution "
                         f"(smallest scaled eigenvalue {smallest:.1e}), so these parameters are not determined "
                         f"by the data: {', '.join(involved)}; fix one of them, add a constraint or indicators "
                         "(lavaan: 'could not compute standard errors! The information matrix could not be "
                         "inverted')")


def covariance(information: np.ndarray, con_jac: np.ndarray,
               components: list[np.ndarray] | None = None) -> np.ndarray:
    """:math:`K(K^\\top\\mathcal I K)^{-1}K^\\top` (see module docstring); without constraints,
    inverted block by block over ``components`` (parameter sets whose cross-information is zero,
    :meth:`Model.components`)."""
    q = information.shape[0]
    if con_jac.size == 0 and components is not None and len(components) > 1:
        out = np.zeros((q, q))
        for comp in components:
            sub = information[np.ix_(comp, comp)]
            out[np.ix_(comp, comp)] = np.linalg.inv(0.5 * (sub + sub.T))
        return out
    k = _null_space(con_jac, q)
    red = k.T @ information @ k
    return k @ np.linalg.inv(0.5 * (red + red.T)) @ k.T


class _StandardisationPlan:
    """Index arrays for standardising every model row of every group in a few vector operations."""

    def __init__(self, model: Model):
        pt = model.partable
        self.model = model
        self.plans = []
        for blk in model.blocks:
            names = list(blk.ov) + [v for v in blk.lv if v not in set(blk.dummy)]
            ix = {v: k for k, v in enumerate(names)}
            rows = blk.rows
            op = pt["op"].to_numpy()[rows]
            lhs = np.array([ix.get(v, -1) for v in pt["lhs"].to_numpy()[rows]])
            rhs = np.array([ix.get(v, -1) for v in pt["rhs"].to_numpy()[rows]])
            rhs = np.where(rhs < 0, lhs, rhs)
            dummy = set(blk.dummy)
            a_d = np.isin(pt["lhs"].to_numpy()[rows], list(dummy))
            z_d = np.isin(pt["rhs"].to_numpy()[rows], list(dummy))
            cov = (op == "~~") & (pt["lhs"].to_numpy()[rows] != pt["rhs"].to_numpy()[rows])
            own_lv = cov & (blk.matrix == "psi") & ~a_d & ~z_d  # std.lv: residual correlation of latents
            lv_idx = np.array([blk.lv.index(v) if v in blk.lv else -1 for v in names[len(blk.ov):]], dtype=int)
            masks = dict(load=op == "=~", reg=(op == "~") | (op == "<~"), mean=(op == "~1") | (op == "|"),
                         var=op == "~~", scale=op == "~*~")
            own = {"lv": own_lv, "all": cov}
            own_cells = {kind: [(name, np.flatnonzero(sel & (blk.matrix == name))) for name in ("psi", "theta")]
                         for kind, sel in own.items()}
            self.plans.append(dict(rows=rows, op=op, lhs=lhs, rhs=rhs, cov=cov, own_lv=own_lv, p=blk.p,
                                   lv_idx=lv_idx, matrix=blk.matrix, i=blk.row, j=blk.col, masks=masks, own=own,
                                   own_cells=own_cells))

    def __call__(self, x: np.ndarray, kind: str, values: np.ndarray, groups: list[int] | None = None) -> np.ndarray:
        return self.both(x, values, groups)[0 if kind == "lv" else 1]

    def both(self, x: np.ndarray, values: np.ndarray, groups: list[int] | None = None):
        """(std.lv, std.all) of every row of the given groups (NaN elsewhere), one model evaluation."""
        model = self.model
        outs = (np.full(len(values), np.nan), np.full(len(values), np.nan))
        plans = self.plans if groups is None else [self.plans[g] for g in groups]
        for plan, mm in zip(plans, model.state(x, values, groups)):
            sigma, veta = mm["sigma"], mm["veta"]
            with np.errstate(invalid="ignore"):
                var_ov = np.diag(sigma)
                var_lv = np.diag(veta)[plan["lv_idx"]]
                sd_ov = np.sqrt(np.where(var_ov > 0, var_ov, np.nan))
                sd_lv = np.sqrt(np.where(var_lv > 0, var_lv, np.nan))
            v = values[plan["rows"]]
            a, z, mk = plan["lhs"], plan["rhs"], plan["masks"]
            for kind, out in zip(("lv", "all"), outs):
                sd = np.concatenate([np.ones(plan["p"]) if kind == "lv" else sd_ov, sd_lv])
                res = np.full(len(v), np.nan)
                with np.errstate(invalid="ignore", divide="ignore"):
                    sa, sz = sd[a], sd[z]
                    res[mk["load"]] = (v * sa / sz)[mk["load"]]
                    res[mk["reg"]] = (v * sz / sa)[mk["reg"]]
                    res[mk["mean"]] = (v / sa)[mk["mean"]]
                    res[mk["var"]] = (v / (sa * sz))[mk["var"]]
                    for name, idx in plan["own_cells"][kind]:
                        if len(idx):
                            m = mm[name]
                            ii, jj = plan["i"][idx], plan["j"][idx]
                            diag = m[ii, ii] * m[jj, jj]
                            res[idx] = np.where(diag > 0, v[idx] / np.sqrt(np.where(diag > 0, diag, 1.0)), np.nan)
                    res[mk["scale"]] = v[mk["scale"]]
                out[plan["rows"]] = res
        return outs


def standardized_values(model: Model, constraints: Constraints, x: np.ndarray, kind: str,
                        plan: _StandardisationPlan | None = None) -> np.ndarray:
    """std.lv (``kind = "lv"``) or std.all (``"all"``) of every model row of the parameter table
    followed by the defined parameters; NaN for the constraint rows."""
    if kind not in ("lv", "all"):
        raise ValueError(f"kind must be 'lv' or 'all', got {kind!r}")
    plan = plan or _StandardisationPlan(model)
    values = model.row_values(x)
    out = plan(x, kind, values)
    defined = constraints.defined_values(np.where(np.isnan(out), values, out)) if constraints.defined else np.zeros(0)
    return np.concatenate([out, defined])


def _standardized_jacobians(model: Model, constraints: Constraints, x: np.ndarray,
                            plan: _StandardisationPlan) -> tuple[np.ndarray, np.ndarray]:
    """Jacobians of :func:`standardized_values` (std.lv, std.all) in ``x`` by central
    differences, group by group (a group's standardised rows depend only on the parameters of
    that group), and for the defined parameters by the chain rule through the rows they use."""
    q = len(x)
    n_rows = len(model.partable)
    jacs = (np.zeros((n_rows, q)), np.zeros((n_rows, q)))
    for g, blk in enumerate(model.blocks):
        cols = np.unique(model.free[blk.rows][model.free[blk.rows] > 0] - 1)
        for k in cols:
            h = 1e-6 * max(1.0, abs(x[k]))
            up, down = x.copy(), x.copy()
            up[k] += h
            down[k] -= h
            a = plan.both(up, model.row_values(up), [g])
            b = plan.both(down, model.row_values(down), [g])
            for jac, ua, db in zip(jacs, a, b):
                jac[blk.rows, k] = np.nan_to_num((ua[blk.rows] - db[blk.rows]) / (2 * h))
    if not constraints.defined:
        return jacs
    values = model.row_values(x)
    out = []
    for jac, std_rows in zip(jacs, plan.both(x, values)):
        base = np.where(np.isnan(std_rows), values, std_rows)
        used = sorted({r for _, _, e in constraints.defined for r in e.rows if r >= 0})
        d_def = np.zeros((len(constraints.defined), n_rows))
        for r in used:
            h = 1e-6 * max(1.0, abs(base[r]))
            up, down = base.copy(), base.copy()
            up[r] += h
            down[r] -= h
            d_def[:, r] = (constraints.defined_values(up) - constraints.defined_values(down)) / (2 * h)
        out.append(np.vstack([jac, np.nan_to_num(d_def) @ jac]))
    return out[0], out[1]


def parameter_estimates(model: Model, constraints: Constraints, x: np.ndarray, vcov: np.ndarray,
                        level: float = 0.95, group_labels: list[str] | None = None,
                        std_se: bool = True) -> pd.DataFrame:
    """lavaan's ``parameterEstimates(fit, standardized = TRUE)`` with the standard errors of
    ``standardizedSolution`` (dots as underscores): one row per model row of the parameter table
    (constraint rows left out, as lavaan) and per defined parameter.

    Columns: ``lhs, op, rhs, block, group, group_label, label, free, est, se, z, pvalue,
    ci_lower, ci_upper, std_lv, std_lv_se, std_all, std_all_se`` (the standardised SEs NaN
    with ``std_se = False``: they cost 2q evaluations of the model per solution).
    """
    pt = model.partable
    free = model.free
    values = model.row_values(x)
    var = np.diag(vcov)
    big = max(1.0, np.abs(var).max(initial=0.0))
    se_x = np.where(var > 1e-14 * big, np.sqrt(np.maximum(var, 0)), np.nan)  # NaN: held at an active bound

    def defined(xx):
        return constraints.defined_values(model.row_values(xx))

    n_def = len(constraints.defined)
    est_def = defined(x) if n_def else np.zeros(0)
    if n_def:
        jd = jacobian(defined, x)
        se_def = np.sqrt(np.maximum(np.sum((jd @ vcov) * jd, axis=1), 0))
    else:
        se_def = np.zeros(0)
    se_rows = np.where(free > 0, se_x[np.maximum(free - 1, 0)], 0.0)
    std = {}
    plan = _StandardisationPlan(model)
    jacobians = dict(zip(("lv", "all"), _standardized_jacobians(model, constraints, x, plan))) if std_se else {}
    for kind in ("lv", "all"):
        vals = standardized_values(model, constraints, x, kind, plan)
        if std_se:
            jac = jacobians[kind]
            with np.errstate(invalid="ignore"):
                se_std = np.sqrt(np.sum((jac @ vcov) * jac, axis=1))
        else:
            se_std = np.full(len(vals), np.nan)
        std[kind] = (vals, se_std)
    keep = np.flatnonzero(~pt["op"].isin(("==", "<", ">", ":=")).to_numpy())
    def_rows = [k for k, _, _ in constraints.defined]
    est = np.concatenate([values[keep], est_def])
    se = np.concatenate([se_rows[keep], se_def])
    is_free = np.concatenate([free[keep] > 0, np.ones(n_def, dtype=bool)])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(is_free & (se > 0), est / se, np.nan)
    pvalue = np.where(np.isfinite(z), 2 * norm_sf(np.abs(z)), np.nan)
    crit = norm_ppf(0.5 + level / 2)
    idx_std = np.concatenate([keep, len(pt) + np.arange(n_def)])
    all_rows = np.concatenate([keep, np.asarray(def_rows, dtype=int)])
    groups = pt["group"].to_numpy()[all_rows]
    labels = list(group_labels) if group_labels is not None else []
    table = pd.DataFrame({
        "lhs": pt["lhs"].to_numpy()[all_rows], "op": pt["op"].to_numpy()[all_rows],
        "rhs": pt["rhs"].to_numpy()[all_rows], "block": pt["block"].to_numpy()[all_rows], "group": groups,
        "group_label": [labels[g - 1] if 0 < g <= len(labels) else "" for g in groups],
        "label": pt["label"].to_numpy()[all_rows], "free": free[all_rows],
        "est": est, "se": se, "z": z, "pvalue": pvalue,
        "ci_lower": est - crit * se, "ci_upper": est + crit * se,
        "std_lv": std["lv"][0][idx_std], "std_lv_se": std["lv"][1][idx_std],
        "std_all": std["all"][0][idx_std], "std_all_se": std["all"][1][idx_std],
    })
    return table


def inadmissible_notes(model: Model, x: np.ndarray, params: pd.DataFrame) -> list[str]:
    """The reasons a solution is inadmissible, one sentence each (empty when admissible):
    a negative variance (Heywood case), a standardised loading (std.all) above 1 in absolute
    value, a latent covariance matrix (lavaan's ``lavInspect(fit, "cov.lv")``, the latents
    proper without the observed-as-latent phantoms) that is not positive definite. lavaan warns
    of the same three ("some estimated ov/lv variances are negative", "covariance matrix of
    latent variables is not positive definite").
    """
    several = params["group"].nunique() > 1 if "group" in params else False

    def where(row) -> str:
        return f" in group {row.group_label}" if several else ""

    notes = []
    variances = params[(params["op"] == "~~") & (params["lhs"] == params["rhs"])]
    for row in variances[variances["est"] < 0].itertuples():
        notes.append(f"Heywood case: the variance of {row.lhs} is negative ({row.est:.3f}){where(row)}")
    loadings = params[params["op"] == "=~"]
    for row in loadings[loadings["std_all"].abs() > 1].itertuples():
        notes.append(f"standardised loading of {row.rhs} on {row.lhs} is {row.std_all:.3f} (> 1){where(row)}")
    for blk, (veta, _) in zip(model.blocks, model.latent_moments(x)):
        k = len(blk.lv) - len(blk.dummy)  # the latents proper come first
        if k and np.linalg.eigvalsh(veta[:k, :k]).min() < -1e-10:
            notes.append("the latent covariance matrix is not positive definite"
                         + (f" in group {blk.index}" if len(model.blocks) > 1 else ""))
    return notes
