"""Structural equation models (CFA as the special case) by maximum likelihood, as lavaan fits them.

The model is read from lavaan syntax (:mod:`instrument.lavaan`) into a parameter table with
lavaan's defaults for ``cfa()``/``sem()`` (Rosseel, 2012):

- the first indicator of each latent has its loading fixed to 1 (``auto.fix.first``), unless
  the syntax gives it a modifier (``NA*x1`` frees it, ``0.8*x1`` fixes it to .8);
- residual variances of indicators and variances/residual variances of latents are free
  (``auto.var``);
- covariances among exogenous latents are free (``auto.cov.lv.x``), and residual covariances
  among terminal endogenous latents (those that predict nothing) are free (``auto.cov.y``);
- equal labels make equal parameters.

With :math:`\\Lambda` (loadings), :math:`B` (regressions among latents), :math:`\\Psi`
(latent (residual) covariances) and :math:`\\Theta` (residual covariances of the indicators),

.. math:: \\Sigma(\\theta) = \\Lambda (I - B)^{-1} \\Psi (I - B)^{-\\top} \\Lambda^\\top + \\Theta,

and the ML discrepancy :math:`F = \\log|\\Sigma| + \\operatorname{tr}(S\\Sigma^{-1}) - \\log|S| - p`
with the covariance matrix :math:`S` of the (listwise complete) data on the N denominator, is
minimised by Fisher scoring. Standard errors come from the expected information
:math:`\\tfrac{N}{2}\\,\\operatorname{tr}(\\Sigma^{-1}\\dot\\Sigma_a\\Sigma^{-1}\\dot\\Sigma_b)`,
as lavaan's defaults (``se = "standard"``, ``information = "expected"``, ``likelihood = "normal"``).
In R: ``lavaan::cfa(model, data)`` / ``lavaan::sem(model, data)``; ``fitMeasures(fit)``;
``parameterEstimates(fit, standardized = TRUE)``; ``standardizedSolution(fit)``.

References
----------
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. Journal of
    Statistical Software 48(2), 1-36.
Bollen, K. A. (1989). Structural Equations with Latent Variables. Wiley.
Browne, M. W., & Cudeck, R. (1993). Alternative ways of assessing model fit. In Bollen & Long
    (Eds.), Testing Structural Equation Models, 136-162.
"""
from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.errors import InputError
from analysis.sem import fit as fitm
from analysis.warnings import ConvergenceWarning, GapscaleWarning, InadmissibleWarning
from instrument.lavaan import LavaanModel, parse_model

__all__ = ["SEMFit", "InadmissibleWarning", "ParameterTable", "fit_sem", "modification_indices",
           "parameter_table", "standardized_residuals"]

MLR_FIML_MAX_H1 = 5200  # MLR + FIML: the saturated model's information is a dense square of this size (p = 100: 5150)
PARAMETER_COLUMNS = ["lhs", "op", "rhs", "label", "est", "se", "z", "pvalue", "ci_lower", "ci_upper", "std_all"]


@dataclass(frozen=True)
class ParameterTable:
    """One row per model parameter, free or fixed.

    ``free`` is 0 for a fixed parameter and k (1-based) for the k-th free parameter (equal labels
    share k); ``matrix`` is ``lambda``, ``beta``, ``psi`` or ``theta`` with ``row``/``col``.
    """

    rows: pd.DataFrame
    observed: tuple[str, ...]
    latents: tuple[str, ...]
    defined: tuple[tuple[str, str], ...] = ()  # (name, expression) of each ``:=``, in order

    @property
    def n_free(self) -> int:
        return int(self.rows["free"].max()) if len(self.rows) else 0


def parameter_table(model: LavaanModel | str, observed_in_data: list[str] | None = None) -> ParameterTable:
    """lavaan's parameter table for ``model`` with its ``cfa()``/``sem()`` defaults.

    Raises
    ------
    ValueError
        A latent without indicators, an observed variable missing from the data, a
        regression on an observed variable that is not an indicator (not supported yet),
        or constraints/intercepts not supported yet.
    """
    if isinstance(model, str):
        model = parse_model(model)
    latents = list(model.latents)
    unsupported = [s for s in model.statements if s.op in ("~1", "==", "<", ">")]
    if unsupported:
        s = unsupported[0]
        raise InputError(f"line {s.line}: {s.lhs} {s.op} {s.rhs} is not supported yet (intercepts and constraints)")
    for s in model.statements:  # parsed, but not fitted by this engine yet: refused, never ignored
        what = ("thresholds (|)", "remove the line; ordinal items get their thresholds with --estimator WLSMV"
                ) if s.op == "|" else ("composites (<~)", "remove them or model the composite as a factor (=~)"
                ) if s.op == "<~" else ("scale factors (~*~)", "remove the line") if s.op == "~*~" else (
            "per-group modifiers c(...)", "use one value (a label, a number) for every group") if s.group_wise else (
            "bounds lower()/upper()", "remove the bound") if s.lower or s.upper else (
            "group:/level: blocks", "write one model for every group") if s.block != 1 else (
            "efa() blocks", "write the loadings out") if s.efa else None
        if what:
            raise InputError(f"line {s.line}: {s.lhs} {s.op} {s.rhs}: {what[0]} are not supported by this engine "
                             f"yet; {what[1]}")
    indicators = model.indicators
    observed: list[str] = []
    for lat in latents:
        for ind in indicators[lat]:
            if ind not in latents and ind not in observed:
                observed.append(ind)
    for s in model.statements:
        if s.op in ("~", "~~"):
            for name in (s.lhs, s.rhs):
                if name not in latents and name not in observed:
                    raise InputError(f"line {s.line}: {name!r} is an observed variable outside the measurement model; "
                                     "regressions and covariances of observed variables are not supported yet")
    if observed_in_data is not None:
        absent = [v for v in observed if v not in observed_in_data]
        if absent:
            raise InputError(f"observed variable(s) of the model not in the data: {', '.join(absent)}")

    rows: list[dict] = []
    labels: dict[str, tuple[str, float]] = {}  # label -> ("free", index) or ("fixed", value)
    n_free = 0

    def add(lhs, op, rhs, matrix, i, j, stmt=None, default_fixed=None):
        # As lavaan: only NA* or a number changes a default (the marker's 1); a label or a start
        # value does not; a label shared with a fixed parameter fixes this one too.
        nonlocal n_free
        label = stmt.label if stmt is not None else ""
        fixed = stmt.fixed if stmt is not None and stmt.fixed is not None else None
        if stmt is not None and stmt.free_override:
            fixed = None
        elif fixed is None:
            fixed = default_fixed
        if fixed is None and label in labels and labels[label][0] == "fixed":
            fixed = labels[label][1]
        if fixed is not None:
            free = 0
            if label:
                labels.setdefault(label, ("fixed", fixed))
        elif label and label in labels:
            free = int(labels[label][1])
        else:
            n_free += 1
            free = n_free
            if label:
                labels[label] = ("free", free)
        rows.append(dict(lhs=lhs, op=op, rhs=rhs, label=label, free=free, value=fixed if fixed is not None else np.nan,
                         start=stmt.start if stmt is not None else None, matrix=matrix, row=i, col=j))

    lat_ix = {v: k for k, v in enumerate(latents)}
    obs_ix = {v: k for k, v in enumerate(observed)}
    # Loadings: a latent indicator of a latent (higher order) is a regression in B.
    for lat in latents:
        for k, s in enumerate(s for s in model.by_op("=~") if s.lhs == lat):
            first = 1.0 if k == 0 else None
            if s.rhs in lat_ix:
                add(s.lhs, "=~", s.rhs, "beta", lat_ix[s.rhs], lat_ix[lat], s, first)
            else:
                add(s.lhs, "=~", s.rhs, "lambda", obs_ix[s.rhs], lat_ix[lat], s, first)
    for s in model.by_op("~"):
        add(s.lhs, "~", s.rhs, "beta", lat_ix[s.lhs], lat_ix[s.rhs], s)
    user_cov = {}
    for s in model.by_op("~~"):
        user_cov[frozenset((s.lhs, s.rhs))] = s
    endogenous = {r["lhs"] for r in rows if r["op"] == "~"} | {r["rhs"] for r in rows if r["op"] == "=~" and r["matrix"] == "beta"}
    predictors = {r["rhs"] for r in rows if r["op"] == "~"} | {r["lhs"] for r in rows if r["op"] == "=~" and r["matrix"] == "beta"}
    exogenous = [v for v in latents if v not in endogenous]
    # auto.cov.y: latents regressed on others (lhs of ~) that predict nothing; a first-order
    # factor of a higher-order factor is an indicator, not a "y" (lavaan's lv.y).
    regressed = {r["lhs"] for r in rows if r["op"] == "~"}
    terminal = [v for v in latents if v in regressed and v not in predictors]

    def cov(a, b, matrix, i, j, auto):
        s = user_cov.pop(frozenset((a, b)), None)
        if s is not None and (s.lhs, s.rhs) == (b, a):
            a, b, i, j = b, a, j, i  # keep the orientation the syntax wrote, as lavaan lists it
        if s is not None or auto:
            add(a, "~~", b, matrix, i, j, s)

    for v in observed:
        cov(v, v, "theta", obs_ix[v], obs_ix[v], True)
    for v in latents:
        cov(v, v, "psi", lat_ix[v], lat_ix[v], True)
    for group in (exogenous, terminal):
        for a_k, a in enumerate(group):
            for b in group[a_k + 1:]:
                cov(a, b, "psi", lat_ix[a], lat_ix[b], True)
    for key, s in list(user_cov.items()):
        a, b = s.lhs, s.rhs
        if a in obs_ix and b in obs_ix:
            add(a, "~~", b, "theta", obs_ix[a], obs_ix[b], s)
        elif a in lat_ix and b in lat_ix:
            add(a, "~~", b, "psi", lat_ix[a], lat_ix[b], s)
        else:
            raise InputError(f"line {s.line}: a covariance between a latent and an observed variable ({a} ~~ {b}) "
                             "is not supported")
    table = pd.DataFrame(rows)
    defined = _check_defined(model, table)
    return ParameterTable(rows=table, observed=tuple(observed), latents=tuple(latents), defined=defined)


# --------------------------------------------------------------------------- defined parameters (:=)

_DEFINED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant, ast.Add, ast.Sub,
                  ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Call)
_DEFINED_FUNCTIONS = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "abs": np.abs}


def _compile_defined(name: str, expression: str, line: int, known: set[str]):
    """Compile the right-hand side of ``name := expression`` (R arithmetic on labels: + - * / ^,
    parentheses, sqrt/exp/log/abs) into a code object, checking every name is a known label."""
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise InputError(f"line {line}: {name} := {expression} is not an arithmetic expression") from None
    for node in ast.walk(tree):
        if not isinstance(node, _DEFINED_NODES):
            raise InputError(f"line {line}: {name} := {expression}: only + - * / ^, numbers, labels and "
                             f"{', '.join(_DEFINED_FUNCTIONS)} are allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _DEFINED_FUNCTIONS):
            raise InputError(f"line {line}: {name} := {expression}: unknown function")
        if isinstance(node, ast.Name) and node.id not in known and node.id not in _DEFINED_FUNCTIONS:
            raise InputError(f"line {line}: {name} := {expression} uses {node.id!r}, which labels no parameter; "
                             "label the parameter in the model (e.g. y ~ a*x)")
    return compile(tree, f"<{name}>", "eval")


def _check_defined(model: LavaanModel, table: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    known = set(table["label"][table["label"] != ""]) if len(table) else set()
    out = []
    for s in model.by_op(":="):
        if s.lhs in known:
            raise InputError(f"line {s.line}: {s.lhs} := ... reuses the name of a label or defined parameter")
        _compile_defined(s.lhs, s.rhs, s.line, known)
        known.add(s.lhs)
        out.append((s.lhs, s.rhs))
    return tuple(out)


def defined_values(pt: ParameterTable, row_values: np.ndarray) -> np.ndarray:
    """The ``:=`` parameters evaluated on one value per row of the parameter table (the
    estimates, or their standardised values, as lavaan's ``def.function``)."""
    if not pt.defined:
        return np.zeros(0)
    env: dict[str, float] = {}
    for label, value in zip(pt.rows["label"], row_values):
        if label and label not in env:
            env[label] = value
    out = []
    for name, expression in pt.defined:
        code = _compile_defined(name, expression, 0, set(env))
        env[name] = float(eval(code, {"__builtins__": {}, **_DEFINED_FUNCTIONS}, env))  # names checked above
        out.append(env[name])
    return np.asarray(out)


def _row_values(pt: ParameterTable, theta: np.ndarray) -> np.ndarray:
    free = pt.rows["free"].to_numpy()
    return np.where(free > 0, theta[np.maximum(free - 1, 0)], pt.rows["value"].to_numpy())


# --------------------------------------------------------------------------- model algebra


class _Model:
    """Maps a parameter vector to the model matrices, Sigma and its derivatives."""

    def __init__(self, pt: ParameterTable):
        self.pt = pt
        self.p, self.m = len(pt.observed), len(pt.latents)
        r = pt.rows
        self._free = r["free"].to_numpy(dtype=int)
        self.q = int(self._free.max()) if len(self._free) else 0
        self._value = r["value"].to_numpy(dtype=float)
        matrix = r["matrix"].to_numpy()
        self._cells = {name: (np.flatnonzero(matrix == name), r["row"].to_numpy(dtype=int)[matrix == name],
                              r["col"].to_numpy(dtype=int)[matrix == name])
                       for name in ("lambda", "beta", "psi", "theta")}

    def matrices(self, theta: np.ndarray):
        p, m = self.p, self.m
        mats = {"lambda": np.zeros((p, m)), "beta": np.zeros((m, m)), "psi": np.zeros((m, m)), "theta": np.zeros((p, p))}
        values = np.where(self._free > 0, theta[np.maximum(self._free - 1, 0)], self._value)
        for name, (idx, i, j) in self._cells.items():
            mats[name][i, j] = values[idx]
            if name in ("psi", "theta"):
                mats[name][j, i] = values[idx]
        return mats

    def sigma(self, theta):
        mats = self.matrices(theta)
        a = np.linalg.inv(np.eye(self.m) - mats["beta"])
        la = mats["lambda"] @ a
        return la @ mats["psi"] @ la.T + mats["theta"], mats, a

    def trace_gradient(self, theta, weight: np.ndarray) -> np.ndarray:
        r"""The gradient :math:`\partial\,\operatorname{tr}(W\Sigma(\theta))/\partial\theta` for a
        symmetric W, in matrix form (no q x p x p array): with :math:`L = \Lambda A`,
        :math:`A = (I-B)^{-1}` and :math:`C = A\Psi A^\top`, the derivative in
        :math:`\Lambda_{ij}` is :math:`2(W\Lambda C)_{ij}`, in :math:`\Theta_{ij}` and
        :math:`\Psi_{ij}` :math:`W_{ij}` and :math:`(L^\top W L)_{ij}` (twice off the diagonal),
        in :math:`B_{ij}` :math:`2(L^\top W L \Psi A^\top)_{ij}`. The ML and FIML gradients are
        this with W the derivative of the discrepancy in Sigma."""
        _, mats, a = self.sigma(theta)
        lam, psi = mats["lambda"], mats["psi"]
        la = lam @ a
        lwl = la.T @ weight @ la
        grads = {"lambda": 2 * weight @ lam @ (a @ psi @ a.T), "theta": weight, "psi": lwl,
                 "beta": 2 * lwl @ psi @ a.T}
        out = np.zeros(self.q)
        for name, (idx, i, j) in self._cells.items():
            keep = self._free[idx] > 0
            k, i, j = self._free[idx][keep] - 1, i[keep], j[keep]
            value = grads[name][i, j]
            if name in ("theta", "psi"):
                value = np.where(i != j, 2 * value, value)
            np.add.at(out, k, value)
        return out

    def derivatives(self, theta) -> np.ndarray:
        """dSigma/dtheta_k for every free parameter: array (q, p, p)."""
        _, mats, a = self.sigma(theta)
        lam, psi = mats["lambda"], mats["psi"]
        la = lam @ a
        cov_eta = a @ psi @ a.T
        out = np.zeros((self.q, self.p, self.p))
        c = cov_eta @ lam.T  # m x p: d Sigma / d Lambda_ij has row i (and column i) = c[j]
        for name, (idx, i, j) in self._cells.items():
            keep = self._free[idx] > 0
            k, i, j = self._free[idx][keep] - 1, i[keep], j[keep]
            if not len(k):
                continue
            if name == "lambda":
                np.add.at(out, (k, i), c[j])
                np.add.at(out, (k, slice(None), i), c[j])
            elif name == "theta":
                np.add.at(out, (k, i, j), 1.0)
                off = i != j
                np.add.at(out, (k[off], j[off], i[off]), 1.0)
            else:
                if name == "psi":
                    left, right = la[:, i].T, la[:, j].T  # d = outer(la_i, la_j) (+ its transpose)
                    sym = i != j
                else:  # beta: dA = A E_ij A, d = t + t^T with t = outer(la_i, (A psi A^T Lambda^T)_j)
                    left, right = la[:, i].T, (a @ psi @ a.T @ lam.T)[j]
                    sym = np.ones(len(k), dtype=bool)
                t = left[:, :, None] * right[:, None, :]
                np.add.at(out, k, t)
                np.add.at(out, k[sym], t[sym].transpose(0, 2, 1))
        return out


def _information(sigma_inv, deriv, other=None):
    """Expected information per observation: 1/2 tr(Sigma^-1 dS_a Sigma^-1 dS_b).

    With ``other``, the cross block between ``deriv`` (rows) and ``other`` (columns).
    """
    q, p, _ = deriv.shape
    m = (sigma_inv @ deriv).reshape(q, p * p)
    n = m if other is None else (sigma_inv @ other).reshape(len(other), p * p)
    nt = n.reshape(-1, p, p).transpose(0, 2, 1).reshape(len(n), p * p)
    return 0.5 * m @ nt.T


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class SEMFit:
    """A fitted model, with lavaan's names.

    Attributes
    ----------
    parameters : DataFrame
        ``lhs, op, rhs, label, est, se, z, pvalue, ci_lower, ci_upper, std_all`` (lavaan's
        parameterEstimates with dots as underscores), plus ``std_all_se``.
    fit : dict
        lavaan's fitMeasures, every measure lavaan reports for the estimator (``npar, chisq, df,
        pvalue, cfi, tli, rni, rmsea`` with its interval and p-values, ``srmr, srmr_bentler, gfi,
        agfi, logl, aic, bic, bic2, ecvi, ntotal, ngroups``, ...; scaled and robust versions with
        MLR and FIML), from :func:`analysis.sem.fit.fit_measures`.
    implied, sample : DataFrame
        Model-implied and sample covariance matrices (N denominator).
    warnings : tuple of str
        Inadmissible solutions and convergence problems, also raised as warnings.
    """

    parameters: pd.DataFrame
    fit: dict
    implied: pd.DataFrame
    sample: pd.DataFrame
    vcov: np.ndarray
    converged: bool
    iterations: int
    warnings: tuple[str, ...] = field(default_factory=tuple)
    partable: ParameterTable | None = None
    theta: np.ndarray | None = None


def fit_sem(data: pd.DataFrame, model: LavaanModel | str, missing: str = "listwise", estimator: str = "ML",
            max_iter: int = 500, tol: float = 1e-10) -> SEMFit:
    """Fit ``model`` to ``data`` by maximum likelihood.

    ``missing = "listwise"`` uses the complete cases (lavaan's default); ``"fiml"`` uses every
    case with at least one observed value by full-information ML (lavaan's
    ``missing = "fiml"``: intercepts free, observed-information standard errors).
    ``estimator = "MLR"`` keeps the ML estimates and adds robust (Huber-White) standard errors
    and the Yuan-Bentler scaled test with lavaan's scaled and robust fit indices (see
    :func:`_mlr`).

    Raises
    ------
    ValueError
        An unidentified model (more free parameters than variances and covariances), fewer
        complete cases than observed variables, or non-numeric data.
    """
    if missing not in ("listwise", "fiml"):
        raise InputError(f"missing must be 'listwise' or 'fiml', got {missing!r}")
    if estimator not in ("ML", "MLR"):
        raise InputError(f"estimator must be 'ML' or 'MLR', got {estimator!r}")
    if estimator == "MLR" and missing == "fiml":
        p_obs = len(parameter_table(model, list(data.columns)).observed)
        if p_obs * (p_obs + 3) // 2 > MLR_FIML_MAX_H1:
            raise InputError(f"MLR with FIML is available for up to {MLR_FIML_MAX_H1} saturated-model parameters "
                             f"(about 100 observed variables: its information is a dense matrix of that size); "
                             f"this model has {p_obs} observed variables. Use ML with FIML, or MLR with listwise "
                             "deletion")
    pt = parameter_table(model, list(data.columns))
    obs = list(pt.observed)
    x = data[obs].apply(pd.to_numeric, errors="coerce")
    if (x.isna() & data[obs].notna()).any().any():
        bad = [c for c in obs if (x[c].isna() & data[c].notna()).any()]
        raise InputError(f"non-numeric values in {', '.join(bad)}")
    if missing == "fiml":
        return _fit_fiml(pt, x, max_iter, robust=estimator == "MLR")
    x = x.dropna()
    n, p, q = len(x), len(obs), pt.n_free
    if n <= p:
        raise InputError(f"{n} complete cases for {p} observed variables; the covariance matrix is singular")
    moments = p * (p + 1) // 2
    if q > moments:
        raise InputError(f"the model is not identified: {q} free parameters but only {moments} variances and "
                         f"covariances (degrees of freedom {moments - q}); fix parameters or add indicators")
    s = np.cov(x.to_numpy(dtype=float), rowvar=False, bias=True)  # float also for nullable integer columns
    if np.linalg.eigvalsh(s).min() <= 1e-12 * np.abs(s).max():
        raise InputError("the sample covariance matrix is singular: an observed variable is a linear combination "
                         "of others or has no variance")
    mdl = _Model(pt)
    theta, f, converged, it = _ml_fisher_scoring(mdl, s, _start(pt, s), max_iter, tol,
                                                 alternatives=(_simple_start(pt, s),))
    sig, mats, a = mdl.sigma(theta)
    sinv = np.linalg.inv(sig)
    deriv = mdl.derivatives(theta)
    info = n * _information(sinv, deriv)
    try:
        vcov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        vcov = np.full((q, q), np.nan)
    notes = []
    if not converged:
        notes.append(f"the optimiser did not converge in {max_iter} iterations")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=2)

    ml_stats = _ml_statistics(s, sig, f, n, p, q)
    if estimator == "MLR":
        vcov, scaled, base_scaled = _mlr(mdl, theta, x.to_numpy(dtype=float), s, ml_stats)
        fit = fitm.fit_measures(**ml_stats, estimator="MLR", scaled=scaled, baseline_scaled=base_scaled)
    else:
        fit = fitm.fit_measures(**ml_stats)
    params, std_notes = _parameters(pt, mdl, theta, vcov, sig)
    notes += std_notes
    for note in std_notes:
        warnings.warn(note, InadmissibleWarning, stacklevel=2)
    return SEMFit(parameters=params, fit=fit, implied=pd.DataFrame(sig, index=obs, columns=obs),
                  sample=pd.DataFrame(s, index=obs, columns=obs), vcov=vcov, converged=converged,
                  iterations=it, warnings=tuple(notes), partable=pt, theta=theta)


def _ml_fisher_scoring(mdl: _Model, s: np.ndarray, theta: np.ndarray, max_iter: int, tol: float,
                       alternatives: tuple = ()):
    """Minimise the ML discrepancy to covariance matrix ``s`` by Fisher scoring with step
    halving; if that does not converge, BFGS (analytic gradient) from where it stopped and from
    each of ``alternatives``, keeping the converged run with the lowest discrepancy.
    Returns (theta, F, converged, iterations)."""
    p = len(s)
    logdet_s = np.linalg.slogdet(s)[1]

    def discrepancy(th):
        sig = mdl.sigma(th)[0]
        sign, logdet = np.linalg.slogdet(sig)
        if sign <= 0:
            return np.inf
        return logdet + np.trace(s @ np.linalg.inv(sig)) - logdet_s - p

    f = discrepancy(theta)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        sig = mdl.sigma(theta)[0]
        sinv = np.linalg.inv(sig)
        deriv = mdl.derivatives(theta)
        grad = np.einsum("ij,aji->a", sinv - sinv @ s @ sinv, deriv)  # dF/dtheta
        info = _information(sinv, deriv)
        try:
            step = np.linalg.solve(info, -0.5 * grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, -0.5 * grad, rcond=None)[0]
        t = 1.0
        while t > 1e-8:
            new = theta + t * step
            f_new = discrepancy(new)
            if f_new <= f + 1e-14:
                break
            t /= 2
        else:
            break
        theta, change = new, f - f_new
        f = f_new
        if np.max(np.abs(t * step)) < 1e-9 or change < tol:
            converged = bool(np.max(np.abs(grad)) < 1e-4)
            if converged:
                break
    if not converged:
        # Fisher scoring can stall on a ridge (a nearly unidentified direction): try BFGS with the
        # analytic gradient from where it stopped and from the other starts; keep the best.
        def value_and_grad(th):
            sig = mdl.sigma(th)[0]
            sign, logdet = np.linalg.slogdet(sig)
            if sign <= 0:
                return np.inf, np.zeros_like(th)
            sinv = np.linalg.inv(sig)
            value = logdet + np.trace(s @ sinv) - logdet_s - p
            return value, np.einsum("ij,aji->a", sinv - sinv @ s @ sinv, mdl.derivatives(th))

        best = None
        for start in [theta, *alternatives]:
            res = optimize.minimize(value_and_grad, start, jac=True, method="BFGS",
                                    options={"gtol": 1e-9, "maxiter": 20 * max_iter})
            ok = bool(res.success or np.max(np.abs(res.jac)) < 1e-6)
            if best is None or (ok, -res.fun) > (best[2], -best[1]):
                best = (res.x, res.fun, ok)
        theta, f, converged = best
    return theta, f, converged, it


def _simple_start(pt: ParameterTable, s: np.ndarray) -> np.ndarray:
    """lavaan's "simple" start: loadings 1, residual variances half the observed variances,
    latent variances .05, covariances and regressions 0 (fixed values stay as given)."""
    r = pt.rows
    theta = np.zeros(pt.n_free)
    for k in range(1, pt.n_free + 1):
        row = r.loc[r["free"] == k].iloc[0]
        if row["matrix"] == "lambda":
            theta[k - 1] = 1.0
        elif row["lhs"] == row["rhs"]:
            theta[k - 1] = s[row["row"], row["row"]] / 2 if row["matrix"] == "theta" else 0.05
    return theta


def _start(pt: ParameterTable, s: np.ndarray) -> np.ndarray:
    """Starting values: per latent, its indicators' first principal component scaled to the marker."""
    r = pt.rows
    theta = np.zeros(pt.n_free)
    obs_ix = {v: k for k, v in enumerate(pt.observed)}
    lam_start, var_start = {}, {}
    for lat in pt.latents:
        inds = [x for x in r.loc[(r["op"] == "=~") & (r["lhs"] == lat) & (r["matrix"] == "lambda"), "rhs"]]
        if len(inds) >= 1:
            sub = s[np.ix_([obs_ix[i] for i in inds], [obs_ix[i] for i in inds])]
            w, v = np.linalg.eigh(sub)
            load = v[:, -1] * np.sqrt(max(w[-1], 1e-6))
            load = load if load[0] != 0 else load + 1e-3
            load = load * np.sign(load.sum()) if load.sum() != 0 else load
            var_row = r.loc[(r["op"] == "~~") & (r["lhs"] == lat) & (r["rhs"] == lat)]
            fixed_var = len(var_row) and var_row["free"].iat[0] == 0
            if fixed_var:  # the scale is set by the variance: loadings on that scale
                scaled = load / np.sqrt(var_row["value"].iat[0] if var_row["value"].iat[0] > 0 else 1.0)
            else:  # the scale is set by the marker: loadings relative to it
                scaled = load / load[0]
                var_start[lat] = load[0] ** 2
            for ind, l_ in zip(inds, scaled):
                lam_start[(lat, ind)] = l_
    for k in range(1, pt.n_free + 1):
        row = r.loc[r["free"] == k].iloc[0]
        if row["start"] is not None and not pd.isna(row["start"]):
            theta[k - 1] = row["start"]
        elif row["matrix"] == "lambda":
            theta[k - 1] = lam_start.get((row["lhs"], row["rhs"]), 1.0)
        elif row["matrix"] == "theta":
            theta[k - 1] = s[row["row"], row["row"]] / 2 if row["lhs"] == row["rhs"] else 0.0
        elif row["matrix"] == "psi":
            theta[k - 1] = var_start.get(row["lhs"], 0.05) if row["lhs"] == row["rhs"] else 0.0
        else:
            theta[k - 1] = 0.0
    return theta


def _ml_statistics(s, sig, f, n, p, q) -> dict:
    """The statistics behind lavaan's fitMeasures for ML with complete data (single group, no
    mean structure): the test statistics of the model and the independence baseline, the
    log-likelihoods, the residual measures and the GFI; :func:`analysis.sem.fit.fit_measures`
    turns them into the indices."""
    logl = -n / 2 * (p * np.log(2 * np.pi) + np.linalg.slogdet(sig)[1] + np.trace(s @ np.linalg.inv(sig)))
    unres = -n / 2 * (p * np.log(2 * np.pi) + np.linalg.slogdet(s)[1] + p)
    return dict(npar=int(q), ntotal=int(n), chisq=float(n * f), df=int(p * (p + 1) // 2 - q),
                baseline_chisq=float(n * (np.sum(np.log(np.diag(s))) - np.linalg.slogdet(s)[1])),
                baseline_df=int(p * (p - 1) // 2), fmin=float(f / 2), logl=float(logl), unrestricted_logl=float(unres),
                residuals=fitm.residual_measures(s, sig, n), gfi_value=fitm.ml_gfi(s, sig, n), nel=p * (p + 1) // 2)


def _central_jacobian(func, x: np.ndarray) -> np.ndarray:
    """Jacobian of a vector function by central differences, step 1e-5 * max(1, |x_k|)."""
    columns = []
    for k in range(len(x)):
        h = 1e-5 * max(1.0, abs(x[k]))
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        columns.append((np.asarray(func(up)) - np.asarray(func(down))) / (2 * h))
    return np.column_stack(columns)


def _standardised(pt: ParameterTable, mdl: _Model, theta: np.ndarray) -> np.ndarray:
    """std.all of every row of the parameter table at ``theta``."""
    sig, mats, a = mdl.sigma(theta)
    var_eta = np.diag(a @ mats["psi"] @ a.T)
    var_obs = np.diag(sig)
    # A negative variance (Heywood case) has no standard deviation: its standardised values are NaN.
    sd_eta = np.where(var_eta > 0, np.sqrt(np.abs(var_eta)), np.nan)
    sd_obs = np.where(var_obs > 0, np.sqrt(np.abs(var_obs)), np.nan)
    lat_ix = {v: k for k, v in enumerate(pt.latents)}
    obs_ix = {v: k for k, v in enumerate(pt.observed)}
    sd = {**{v: sd_eta[k] for v, k in lat_ix.items()}, **{v: sd_obs[k] for v, k in obs_ix.items()}}
    out = []
    for row in pt.rows.itertuples(index=False):
        value = mats[row.matrix][row.row, row.col]
        if row.op == "=~":
            out.append(value * sd[row.lhs] / sd[row.rhs])
        elif row.op == "~":
            out.append(value * sd[row.rhs] / sd[row.lhs])
        elif row.lhs == row.rhs:
            out.append(value / (sd[row.lhs] * sd[row.rhs]))
        else:  # a (residual) covariance: by the two (residual) variances, a correlation (lavaan's cov.std)
            m = mats[row.matrix]
            v = m[row.row, row.row] * m[row.col, row.col]
            out.append(value / np.sqrt(v) if v > 0 else np.nan)
    return np.asarray(out)


def _parameters(pt: ParameterTable, mdl: _Model, theta, vcov, sig):
    r = pt.rows
    free = r["free"].to_numpy()
    est = _row_values(pt, theta)
    se_free = np.sqrt(np.maximum(np.diag(vcov), 0))
    se = np.where(free > 0, se_free[np.maximum(free - 1, 0)], 0.0)
    # Defined parameters (:=): the function of the estimates, delta-method standard errors.
    est_def = defined_values(pt, est)
    if pt.defined:
        jac_def = _central_jacobian(lambda th: defined_values(pt, _row_values(pt, th)), theta)
        se_def = np.sqrt(np.maximum(np.einsum("ik,kl,il->i", jac_def, vcov, jac_def), 0))
    else:
        se_def = np.zeros(0)
    is_free = np.concatenate([free > 0, np.ones(len(est_def), dtype=bool)])
    est, se = np.concatenate([est, est_def]), np.concatenate([se, se_def])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(is_free & (se > 0), est / se, np.nan)
    pval = np.where(np.isfinite(z), 2 * stats.norm.sf(np.abs(z)), np.nan)
    crit = stats.norm.ppf(0.975)

    def standardised(th):  # std.all of every row, then the defined parameters evaluated on them
        values = _standardised(pt, mdl, th)
        return np.concatenate([values, defined_values(pt, values)])

    std = standardised(theta)
    # Delta method for the standardised solution (central differences of std.all in theta).
    jac = _central_jacobian(standardised, theta)
    std_se = np.sqrt(np.maximum(np.einsum("ik,kl,il->i", jac, vcov, jac), 0))
    names = [name for name, _ in pt.defined]
    table = pd.DataFrame({
        "lhs": [*r["lhs"], *names], "op": [*r["op"], *[":="] * len(names)],
        "rhs": [*r["rhs"], *[expr for _, expr in pt.defined]], "label": [*r["label"], *names], "est": est, "se": se,
        "z": z, "pvalue": pval, "ci_lower": est - crit * se, "ci_upper": est + crit * se, "std_all": std,
        "std_all_se": std_se,
    })
    notes = []
    variances = table[(table["op"] == "~~") & (table["lhs"] == table["rhs"])]
    for row in variances.itertuples():
        if row.est < 0:
            notes.append(f"Heywood case: the variance of {row.lhs} is negative ({row.est:.3f})")
    for row in table[table["op"] == "=~"].itertuples():
        if abs(row.std_all) > 1:
            notes.append(f"standardised loading of {row.rhs} on {row.lhs} is {row.std_all:.3f} (> 1)")
    _, mats, a = mdl.sigma(theta)
    cov_lv = a @ mats["psi"] @ a.T  # lavaan's cov.lv
    if len(cov_lv) and np.linalg.eigvalsh(cov_lv).min() < -1e-10:
        notes.append("the latent covariance matrix is not positive definite")
    return table, notes


# --------------------------------------------------------------------------- diagnostics


def modification_indices(fit: SEMFit) -> pd.DataFrame:
    r"""Modification indices with expected parameter changes, as ``lavaan::modindices(fit)``.

    Candidates are the parameters a CFA leaves fixed at zero: every cross-loading
    (latent ``=~`` indicator) and every residual covariance between two indicators. For a
    candidate j, with the score :math:`g_j = \partial F_{ML}/2\partial\theta_j` and the expected
    information I at the estimates,

    .. math:: MI_j = N g_j^2 / V_{jj},\quad V_{jj} = I_{jj} - I_{j\theta} I_{\theta\theta}^{-1} I_{\theta j},
              \quad EPC_j = -g_j / V_{jj},

    and ``sepc_all`` standardises the EPC (by the latent and indicator SDs for a loading, by
    the two residual SDs for a residual covariance). Sorted by ``mi``, largest first.
    """
    pt, theta = fit.partable, fit.theta
    rows = pt.rows
    present = {(r.lhs, r.op, r.rhs) for r in rows.itertuples()} | {(r.rhs, r.op, r.lhs) for r in rows.itertuples() if r.op == "~~"}
    obs_ix = {v: k for k, v in enumerate(pt.observed)}
    lat_ix = {v: k for k, v in enumerate(pt.latents)}
    candidates = []
    for lat in pt.latents:
        for v in pt.observed:
            if (lat, "=~", v) not in present:
                candidates.append((lat, "=~", v, "lambda", obs_ix[v], lat_ix[lat]))
    for a_k, a in enumerate(pt.observed):
        for b in pt.observed[a_k + 1:]:
            if (a, "~~", b) not in present:
                candidates.append((a, "~~", b, "theta", obs_ix[a], obs_ix[b]))
    q = pt.n_free
    extra = pd.DataFrame([dict(lhs=c[0], op=c[1], rhs=c[2], label="", free=q + k + 1, value=np.nan, start=None,
                               matrix=c[3], row=c[4], col=c[5]) for k, c in enumerate(candidates)])
    ext = ParameterTable(rows=pd.concat([rows, extra], ignore_index=True), observed=pt.observed, latents=pt.latents)
    mdl = _Model(ext)
    th = np.concatenate([theta, np.zeros(len(candidates))])
    sig = mdl.sigma(th)[0]
    sinv = np.linalg.inv(sig)
    s = fit.sample.to_numpy()
    deriv = mdl.derivatives(th)
    score = 0.5 * np.einsum("ij,aji->a", sinv - sinv @ s @ sinv, deriv)
    free, cand = deriv[:q], deriv[q:]
    i11 = _information(sinv, free)
    i21 = _information(sinv, cand, free)
    mc = sinv @ cand
    i22 = 0.5 * np.einsum("aij,aji->a", mc, mc)
    v = i22 - np.einsum("ja,ab,jb->j", i21, np.linalg.inv(i11), i21)
    n = fit.fit["ntotal"]
    g = score[q:]
    mi = n * g**2 / v
    epc = -g / v
    est = fit.parameters
    variance = {r.lhs: r.est for r in est.itertuples() if r.op == "~~" and r.lhs == r.rhs}
    _, mats, a = _Model(pt).sigma(theta)
    var_lat = np.diag(a @ mats["psi"] @ a.T)
    sd_lat = np.where(var_lat > 0, np.sqrt(np.abs(var_lat)), np.nan)  # NaN for a negative variance
    sd_obs = np.sqrt(np.diag(fit.implied.to_numpy()))
    sepc = []
    for (lhs, op, rhs, *_), e in zip(candidates, epc):
        if op == "=~":
            sepc.append(e * sd_lat[lat_ix[lhs]] / sd_obs[obs_ix[rhs]])
        else:
            sepc.append(e / np.sqrt(variance[lhs] * variance[rhs]))
    out = pd.DataFrame({"lhs": [c[0] for c in candidates], "op": [c[1] for c in candidates],
                        "rhs": [c[2] for c in candidates], "mi": mi, "epc": epc, "sepc_all": sepc})
    return out.sort_values("mi", ascending=False, kind="stable").reset_index(drop=True)


def standardized_residuals(fit: SEMFit) -> pd.DataFrame:
    r"""Covariance residuals divided by their standard errors, as lavaan 0.6's
    ``residuals(fit, type = "standardized")``.

    In the space of the p* = p(p+1)/2 unique elements, with :math:`A_1(\Sigma)` the normal-theory
    information of a covariance matrix evaluated at the model-implied Sigma (lavaan's default
    ``h1.information = "structured"``), :math:`A_0` the model's expected information,
    :math:`\Delta` the derivatives of the unique elements of Sigma, and the sampling covariance
    of the sample moments evaluated at S (``h1.acov = "unstructured"``):

    .. math:: Q = I - \Delta A_0^{-1} \Delta^\top A_1(\Sigma),\qquad
              \operatorname{ACOV}(\text{res}) = Q\, (A_1(S)^{-1}/N)\, Q^\top,

    and each residual is divided by the square root of its variance. An element fitted exactly
    (variance 0, such as an indicator's variance in a just-identified part) is reported as 0
    when its residual is 0 and NaN otherwise.
    """
    pt, theta = fit.partable, fit.theta
    mdl = _Model(pt)
    sig = fit.implied.to_numpy()
    s = fit.sample.to_numpy()
    p = len(sig)
    n = fit.fit["ntotal"]
    rows, cols = np.tril_indices(p)
    units = np.zeros((len(rows), p, p))
    units[np.arange(len(rows)), rows, cols] = 1
    units[np.arange(len(rows)), cols, rows] = 1
    a1_model = _information(np.linalg.inv(sig), units)
    a1_sample = _information(np.linalg.inv(s), units)
    deriv = mdl.derivatives(theta)
    delta = deriv[:, rows, cols].T
    a0 = _information(np.linalg.inv(sig), deriv)
    q = np.eye(len(rows)) - delta @ np.linalg.pinv(a0) @ delta.T @ a1_model
    acov = q @ (np.linalg.inv(a1_sample) / n) @ q.T
    var = np.diag(acov)
    resid = (s - sig)[rows, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 1e-14, resid / np.sqrt(np.maximum(var, 0)), np.where(np.abs(resid) < 1e-6, 0.0, np.nan))
    out = np.zeros((p, p))
    out[rows, cols] = z
    out[cols, rows] = z
    return pd.DataFrame(out, index=fit.implied.index, columns=fit.implied.columns)


# --------------------------------------------------------------------------- FIML


def _fit_fiml(pt: ParameterTable, x: pd.DataFrame, max_iter: int, robust: bool = False) -> SEMFit:
    r"""Full-information ML (Arbuckle, 1996; lavaan ``missing = "fiml"``).

    With the rows grouped by missingness pattern k (observed variables o, n_k rows, mean
    :math:`\bar y_k`, covariance :math:`S_k` on the n_k denominator) and free intercepts
    :math:`\nu`:

    .. math:: -\log L = \sum_k \frac{n_k}{2}\left[p_k\log 2\pi + \log|\Sigma_{oo}|
              + \operatorname{tr}(\Sigma_{oo}^{-1}S_k) + (\bar y_k-\nu_o)^\top\Sigma_{oo}^{-1}(\bar y_k-\nu_o)\right]

    minimised by BFGS with its analytic gradient from the EM estimates (each pattern's
    :math:`\Sigma_{oo}^{-1}` by updating :math:`\Sigma^{-1}`, as lavaan). Standard errors from
    the observed information, the Hessian of -log L in the parameters and intercepts, computed
    analytically (:func:`_fiml_hessian`), as lavaan's default for FIML (``information =
    "observed"``, ``observed.information = "hessian"``; lavaan differentiates its analytic
    gradient numerically, which agrees to about 1e-9). The chi-square is
    :math:`2(\log L_1 - \log L_0)` against the saturated model estimated by EM
    (:func:`analysis.missing.em_moments`); the baseline is the independence model (each
    variable's ML mean and variance from its observed values). Rows with no observed value
    carry no information and are not used (``ntotal`` counts the rest). With ``robust``: MLR,
    robust SEs, the scaled test and lavaan's scaled and robust fit indices (:func:`_mlr_fiml`).
    """
    from analysis.missing import em_moments

    obs = list(pt.observed)
    x = x[x.notna().any(axis=1)]
    n, p, q = len(x), len(obs), pt.n_free
    moments = p * (p + 1) // 2
    if q > moments:
        raise InputError(f"the model is not identified: {q} free parameters but only {moments} variances and "
                         f"covariances (degrees of freedom {moments - q}); fix parameters or add indicators")
    em = em_moments(x, obs)
    s_em, mu_em = em.cov.to_numpy(), em.mean.to_numpy()
    values = x.to_numpy(dtype=float)
    observed = ~np.isnan(values)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    groups = []
    for k, pattern in enumerate(patterns):
        rows = values[inverse.ravel() == k][:, pattern]
        o = np.flatnonzero(pattern)
        mean = rows.mean(axis=0)
        dev = rows - mean
        groups.append((o, len(rows), mean, dev.T @ dev / len(rows)))
    mdl = _Model(pt)
    const = sum(nk * len(o) for o, nk, _, _ in groups) * np.log(2 * np.pi) / 2
    _, _, _, k_rows, bu, bv, weight = _fiml_structure(mdl)

    cases = [(o, np.setdiff1d(np.arange(p), o), values[inverse.ravel() == k][:, o]) for k, o in
             enumerate(g[0] for g in groups)]

    def nll_and_grad(z):
        # As lavaan: one inverse of Sigma, each pattern's inverse by the partitioned-inverse update
        # M = K_oo - K_om K_mm^-1 K_mo and log|Sigma_oo| = log|Sigma| + log|K_mm| (K = Sigma^-1).
        # With a_i = M (y_i - nu_o): -log L = const + sum_k n_k/2 log|Sigma_oo| + sum_i r_i'a_i / 2,
        # gradient in Sigma G = (sum_k n_k M_k - sum_i a_i a_i')/2, in nu -sum_i a_i.
        # A pattern whose Sigma_oo has a determinant <= 0 makes the value infinite (|Sigma_oo| =
        # |Sigma| |K_mm|), as when each Sigma_oo was inverted on its own.
        th, nu = z[:q], z[q:]
        sig = mdl.sigma(th)[0]
        sign, logdet = np.linalg.slogdet(sig)
        if sign == 0:
            return np.inf, np.zeros_like(z)
        k_inv = np.linalg.inv(sig)
        value, m_sum, a_all = const, np.zeros((p, p)), np.zeros((n, p))
        row = 0
        for o, miss, y in cases:
            if len(miss):
                k_mm = k_inv[np.ix_(miss, miss)]
                sign_mm, logdet_mm = np.linalg.slogdet(k_mm)
                if sign * sign_mm <= 0:
                    return np.inf, np.zeros_like(z)
                k_om = k_inv[np.ix_(o, miss)]
                inv = k_inv[np.ix_(o, o)] - k_om @ np.linalg.solve(k_mm, k_om.T)
                value += len(y) / 2 * (logdet + logdet_mm)
            else:
                if sign <= 0:
                    return np.inf, np.zeros_like(z)
                inv = k_inv
                value += len(y) / 2 * logdet
            r = y - nu[o]
            a = r @ inv
            value += np.sum(r * a) / 2
            a_all[row:row + len(y), o] = a
            m_sum[np.ix_(o, o)] += len(y) * inv
            row += len(y)
        g_sigma = (m_sum - a_all.T @ a_all) / 2
        # d(-log L)/d row = sum G * (u v' + v u') = 2 u' G v (:func:`_fiml_structure`), summed per parameter
        basis = _fiml_basis(mdl, th)
        per_row = 2 * weight * (basis.T @ g_sigma @ basis)[bu, bv]
        return value, np.concatenate([np.bincount(k_rows, weights=per_row, minlength=q), -a_all.sum(axis=0)])

    # Start from the two-stage estimate: ML fitted to the EM moments, EM means as intercepts.
    theta0 = _ml_fisher_scoring(mdl, s_em, _start(pt, s_em), max_iter, 1e-10,
                                alternatives=(_simple_start(pt, s_em),))[0]
    start = np.concatenate([theta0, mu_em])

    def scaled(z):
        value, grad = nll_and_grad(z)
        return value / n, grad / n

    # BFGS starts its inverse Hessian at the complete-data information at the start (per case):
    # with an identity instead, the first steps can leave the admissible region on large models.
    sinv0 = np.linalg.inv(mdl.sigma(theta0)[0])
    info0 = np.block([[_information(sinv0, mdl.derivatives(theta0)), np.zeros((q, p))], [np.zeros((p, q)), sinv0]])
    try:
        hess_inv0 = np.linalg.inv(info0)
        hess_inv0 = (hess_inv0 + hess_inv0.T) / 2
        if np.linalg.eigvalsh(hess_inv0).min() <= 0:
            hess_inv0 = None
    except np.linalg.LinAlgError:
        hess_inv0 = None
    res = optimize.minimize(scaled, start, jac=True, method="BFGS",
                            options={"gtol": 1e-9, "maxiter": 20 * max_iter, "hess_inv0": hess_inv0})
    z = res.x
    converged = bool(res.success or np.max(np.abs(res.jac)) < 1e-6)
    res.fun = res.fun * n
    notes = []
    if not converged:
        notes.append(f"the optimiser did not converge ({res.message})")
        warnings.warn(f"model did not converge: {notes[-1]}", ConvergenceWarning, stacklevel=3)
    hess = _fiml_hessian(mdl, z[:q], z[q:], groups)
    try:
        vcov_all = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        vcov_all = np.full_like(hess, np.nan)
    theta, nu = z[:q], z[q:]
    sig = mdl.sigma(theta)[0]
    logl = -res.fun
    h1 = em.loglik
    npar = q + p
    chisq = max(2 * (h1 - logl), 0.0)
    df = moments - q
    base_logl = 0.0
    for j in range(p):
        col = values[observed[:, j], j]
        base_logl += -len(col) / 2 * (np.log(2 * np.pi) + np.log(col.var()) + 1)
    base_chisq, base_df = 2 * (h1 - base_logl), p * (p - 1) // 2
    # lavaan's sample statistics with FIML are the EM estimates of the saturated model (its "h1").
    fit_stats = dict(npar=int(npar), ntotal=int(n), chisq=float(chisq), df=int(df), baseline_chisq=float(base_chisq),
                     baseline_df=int(base_df), fmin=float(chisq / (2 * n)), logl=float(logl),
                     unrestricted_logl=float(h1),
                     residuals=fitm.residual_measures(s_em, sig, n, sample_mean=mu_em, implied_mean=nu))
    pair_cov, pair_mean, patterns = fitm.missing_data_moments(values)
    fit_stats.update(gfi_value=fitm.ml_gfi(pair_cov, sig, n, pair_mean, nu, patterns=[patterns]),
                     nel=p * (p + 1) // 2 + p)
    if robust:
        vcov_all, scaled, base_scaled, robust_stats, robust_notes = _mlr_fiml(mdl, z, hess, values, groups, em,
                                                                              fit_stats)
        fit = fitm.fit_measures(**fit_stats, estimator="MLR", scaled=scaled, baseline_scaled=base_scaled,
                                robust=robust_stats)
        fit = _na_as_none(fit)
        notes += robust_notes
    else:  # lavaan's robust indices for ML with FIML: the FIML-corrected statistic, version V6
        robust_stats, v6_notes = _ml_fiml_robust(mdl, theta, nu, values, groups, em, df, base_df)
        notes += v6_notes
        fit = _na_as_none(fitm.fit_measures(**fit_stats, robust=robust_stats))
    params, std_notes = _parameters(pt, mdl, theta, vcov_all[:q, :q], sig)
    notes += std_notes
    for note in std_notes:
        warnings.warn(note, InadmissibleWarning, stacklevel=3)
    crit = stats.norm.ppf(0.975)
    se_nu = np.sqrt(np.maximum(np.diag(vcov_all)[q:], 0))
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero SE (a degenerate fit): z infinite, as _parameters
        z_nu = nu / se_nu
    intercepts = pd.DataFrame({
        "lhs": obs, "op": "~1", "rhs": "", "label": "", "est": nu, "se": se_nu, "z": z_nu,
        "pvalue": 2 * stats.norm.sf(np.abs(z_nu)), "ci_lower": nu - crit * se_nu, "ci_upper": nu + crit * se_nu,
        "std_all": nu / np.sqrt(np.diag(sig)), "std_all_se": se_nu / np.sqrt(np.diag(sig)),
    })
    latent_means = pd.DataFrame({"lhs": list(pt.latents), "op": "~1", "rhs": "", "label": "", "est": 0.0, "se": 0.0,
                                 "z": np.nan, "pvalue": np.nan, "ci_lower": 0.0, "ci_upper": 0.0, "std_all": 0.0,
                                 "std_all_se": 0.0})
    params = pd.concat([params, intercepts, latent_means], ignore_index=True)
    return SEMFit(parameters=params, fit=fit, implied=pd.DataFrame(sig, index=obs, columns=obs),
                  sample=pd.DataFrame(s_em, index=obs, columns=obs), vcov=vcov_all[:q, :q], converged=converged,
                  iterations=int(res.nit), warnings=tuple(notes), partable=pt, theta=theta)


# --------------------------------------------------------------------------- MLR


def _mlr(mdl: _Model, theta: np.ndarray, x: np.ndarray, s: np.ndarray, ml_stats: dict):
    r"""Robust standard errors and the Yuan-Bentler scaled test, as lavaan's ``estimator = "MLR"``.

    Returns the robust covariance matrix of the estimates and the scaled tests of the model
    (scaling factor c) and the baseline (:math:`c_b`), :class:`analysis.sem.fit.ScaledTest`; the
    scaled and robust indices are :func:`analysis.sem.fit.fit_measures`'.

    With :math:`A_0` the observed information per case (the Hessian of :math:`F_{ML}/2`, by
    differences of the analytic gradient) and :math:`B_0 = \frac1N\sum_i s_i s_i^\top` from the
    casewise scores :math:`s_{ia} = \tfrac12\operatorname{tr}(\Sigma^{-1}(d_id_i^\top-\Sigma)\Sigma^{-1}\dot\Sigma_a)`
    (:math:`d_i` the centred data), the sandwich is :math:`A_0^{-1}B_0A_0^{-1}/N`.

    Yuan-Bentler scaling factor (Mplus' MLR; lavaan ``test = "yuan.bentler.mplus"``):
    :math:`c = [\operatorname{tr}(A_1^{-1}B_1) - \operatorname{tr}(A_0^{-1}B_0)]/df` with
    :math:`A_1, B_1` the information and score cross-products of the saturated model at the
    sample covariance S; :math:`c_b` likewise for the independence baseline. Then
    ``chisq_scaled = chisq / c`` and lavaan's scaled and robust indices (Brosseau-Liard, Savalei &
    Li, 2012; Brosseau-Liard & Savalei, 2014), :mod:`analysis.sem.fit`.
    In R: ``cfa(model, data, estimator = "MLR")``, ``fitMeasures(fit)``.
    """
    n, p = x.shape
    df, base_df = ml_stats["df"], ml_stats["baseline_df"]
    fit_chisq, base_chisq = ml_stats["chisq"], ml_stats["baseline_chisq"]
    d = x - x.mean(axis=0)
    sig = mdl.sigma(theta)[0]
    sinv = np.linalg.inv(sig)

    def grad_fmin(th):
        sg = mdl.sigma(th)[0]
        si = np.linalg.inv(sg)
        return 0.5 * np.einsum("ij,aji->a", si - si @ s @ si, mdl.derivatives(th))

    hess = _central_jacobian(grad_fmin, theta)
    a0 = (hess + hess.T) / 2
    deriv = mdl.derivatives(theta)

    def scores(inv, params_deriv):
        m = d @ inv
        w = np.einsum("ni,nj->nij", m, m) - inv[None]
        sc = 0.5 * np.einsum("nij,aij->na", w, params_deriv)
        return sc.T @ sc / n

    b0 = scores(sinv, deriv)
    a0_inv = np.linalg.inv(a0)
    vcov = a0_inv @ b0 @ a0_inv / n

    rows, cols = np.tril_indices(p)
    units = np.zeros((len(rows), p, p))
    units[np.arange(len(rows)), rows, cols] = 1
    units[np.arange(len(rows)), cols, rows] = 1
    s_inv = np.linalg.inv(s)
    trace_h1 = np.trace(np.linalg.solve(_information(s_inv, units), scores(s_inv, units)))
    trace_h0 = np.trace(a0_inv @ b0)
    c = (trace_h1 - trace_h0) / df if df > 0 else np.nan
    base = np.diag(np.diag(s))
    base_inv = np.linalg.inv(base)
    diag_units = units[rows == cols]
    cb = (trace_h1 - np.trace(np.linalg.solve(_information(base_inv, diag_units), scores(base_inv, diag_units)))) / base_df
    return vcov, fitm.ScaledTest(fit_chisq / c, float(c), scaling_factor_h1=trace_h1 / len(rows),
                                 scaling_factor_h0=trace_h0 / _free_entries(mdl)), fitm.ScaledTest(base_chisq / cb, float(cb))


def _na_as_none(fit: dict) -> dict:
    """None (lavaan's NA) for a scaled or robust measure that is not available with FIML (a
    just-identified model, a singular saturated information)."""
    return {k: (None if ("scaled" in k or "robust" in k or "scaling" in k) and isinstance(v, float)
                and not np.isfinite(v) else v) for k, v in fit.items()}


def _fiml_tilde(values: np.ndarray, s_em: np.ndarray, mu_em: np.ndarray, sig: np.ndarray, nu: np.ndarray,
                deriv: np.ndarray):
    r"""The FIML-corrected statistics of Zhang & Savalei (2023): the model and the independence
    baseline at their FIML estimates evaluated as if the EM moments were complete-data moments
    (:func:`_mlr_fiml`), :math:`T_3` and :math:`T_{3,0}`, with the derivatives :math:`\Delta` of
    (vech Sigma, mu) in (parameters, intercepts) and the baseline's cells (variances, means)."""
    p = len(s_em)
    q = len(deriv)
    observed = ~np.isnan(values)
    base_var = np.array([values[observed[:, j], j].var() for j in range(p)])
    base_mean = np.array([values[observed[:, j], j].mean() for j in range(p)])
    n = len(values)
    sinv = np.linalg.inv(sig)
    dm = mu_em - nu
    logdet_em = np.linalg.slogdet(s_em)[1]
    t3 = n * (np.linalg.slogdet(sig)[1] + np.trace(s_em @ sinv) - logdet_em - p + dm @ sinv @ dm)
    dmb = mu_em - base_mean
    t3b = n * (np.sum(np.log(base_var)) + np.sum(np.diag(s_em) / base_var) - logdet_em - p + np.sum(dmb**2 / base_var))
    rows, cols = np.tril_indices(p)
    n_cov = len(rows)
    delta = np.zeros((n_cov + p, q + p))
    delta[:n_cov, :q] = deriv[:, rows, cols].T
    delta[n_cov:, q:] = np.eye(p)
    base_cells = np.concatenate([np.flatnonzero(rows == cols), n_cov + np.arange(p)])
    return float(t3), float(t3b), delta, base_cells


def _fiml_corrected_v6(a1: np.ndarray, delta: np.ndarray, base_cells: np.ndarray, s_em: np.ndarray,
                       n: int) -> tuple[float, float]:
    r"""The traces behind lavaan's robust CFI/TLI/RMSEA for ML with FIML (no scaled test):
    Zhang & Savalei's (2023) FIML-C "V6", ``lavaan:::lav_fit_fiml_corrected(fit, "V6")``,

    .. math:: k = \operatorname{tr}(W_c W_m^{-1} U W_m^{-1})
              = N\,[\operatorname{tr}(W_c A_1^{-1}) - \operatorname{tr}(\Delta^\top W_c\Delta\,(\Delta^\top A_1\Delta)^{-1})],

    with :math:`W_m = A_1/N` the observed information of the saturated model at the EM moments
    per case, :math:`W_c` its complete-data information there (``blockdiag`` of
    :math:`\tfrac12 D^\top(\tilde\Sigma^{-1}\otimes\tilde\Sigma^{-1})D` and
    :math:`\tilde\Sigma^{-1}`, covariances in ``np.tril_indices`` order, then means) and
    :math:`U = W_m - W_m\Delta(\Delta^\top W_m\Delta)^{-1}\Delta^\top W_m`; the baseline's with its
    :math:`\Delta` (the variances and means). Returns (k, k_baseline); :math:`\hat c = k/df`."""
    p = len(s_em)
    k_inv = np.linalg.inv(s_em)
    rows, cols = np.tril_indices(p)
    w = np.where(rows == cols, 0.5, 1.0)
    wc_cov = (k_inv[np.ix_(rows, rows)] * k_inv[np.ix_(cols, cols)] + k_inv[np.ix_(rows, cols)]
              * k_inv[np.ix_(cols, rows)]) * np.outer(w, w)
    n_cov = len(rows)
    wc = np.zeros((n_cov + p, n_cov + p))
    wc[:n_cov, :n_cov] = wc_cov
    wc[n_cov:, n_cov:] = k_inv
    a1_inv = np.linalg.inv(a1)
    total = np.sum(wc * a1_inv)
    k = total - np.sum((delta.T @ wc @ delta) * np.linalg.inv(delta.T @ a1 @ delta))
    b = base_cells
    kb = total - np.sum(wc[np.ix_(b, b)] * np.linalg.inv(a1[np.ix_(b, b)]))
    return float(n * k), float(n * kb)


def _free_entries(mdl: _Model) -> int:
    """Free parameters before equality constraints (a label used twice counts twice): lavaan's
    divisor of ``scaling.factor.h0``."""
    return int((mdl.pt.rows["free"] > 0).sum())


def _casewise_scores(values: np.ndarray, sig: np.ndarray, mu: np.ndarray, dsig: np.ndarray | None = None) -> np.ndarray:
    r"""Gradients of each case's -log L under FIML: columns for the parameters behind ``dsig``
    (dSigma/dparameter, q x p x p), then for the p means. Without ``dsig``, for the saturated
    model: the p(p+1)/2 covariances in ``np.tril_indices`` order (the unit of the covariance
    (a, b) moves both :math:`\Sigma_{ab}` and :math:`\Sigma_{ba}`), then the means.

    For case i with observed part o, :math:`a_i = \Sigma_{oo}^{-1}(y_{io}-\mu_o)` and
    :math:`G_i = \tfrac12(\Sigma_{oo}^{-1} - a_ia_i^\top)` (zero outside o): the score of
    :math:`\theta_k` is :math:`\sum G_i\circ\dot\Sigma_k`, of the means :math:`-a_i`.
    """
    n, p = values.shape
    rows, cols = np.tril_indices(p)
    if dsig is None:
        n_cov, flat = len(rows), None
        weight = np.where(rows == cols, 1.0, 2.0)
    else:
        n_cov, flat = len(dsig), dsig.reshape(len(dsig), p * p).T
    out = np.zeros((n, n_cov + p))
    observed = ~np.isnan(values)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for k, pattern in enumerate(patterns):
        o = np.flatnonzero(pattern)
        inv = np.linalg.inv(sig[np.ix_(o, o)])
        cases = np.flatnonzero(inverse == k)
        for first in range(0, len(cases), 512):  # bounded memory: 512 cases x p x p at a time
            ids = cases[first:first + 512]
            a = (values[np.ix_(ids, o)] - mu[o]) @ inv
            g = np.zeros((len(ids), p, p))
            g[:, o[:, None], o[None, :]] = 0.5 * (inv[None] - a[:, :, None] * a[:, None, :])
            out[ids, :n_cov] = weight * g[:, rows, cols] if flat is None else g.reshape(len(ids), p * p) @ flat
            out[np.ix_(ids, n_cov + o)] = -a
    return out


def _mlr_fiml(mdl: _Model, z: np.ndarray, hess: np.ndarray, values: np.ndarray, groups: list, em, fit_stats: dict):
    r"""MLR with FIML, as lavaan 0.6-14 ``missing = "fiml", estimator = "MLR"``.

    Returns the robust covariance matrix of (parameters, intercepts), the scaled tests of the
    model and the baseline (:class:`analysis.sem.fit.ScaledTest`), the FIML-corrected statistics
    behind the robust indices (:class:`analysis.sem.fit.RobustStatistics`) and notes; the indices
    themselves are :func:`analysis.sem.fit.fit_measures`'.

    *Robust SEs*: the sandwich :math:`A_0^{-1}B_0A_0^{-1}` with :math:`A_0` the observed
    information (the analytic Hessian of -log L, :func:`_fiml_hessian`) and
    :math:`B_0 = \sum_i s_is_i^\top` of the casewise FIML scores at the estimates
    (:func:`_casewise_scores`; lavaan ``h1.information = "structured"``).

    *Scaled test* (Yuan-Bentler, Mplus' MLR; lavaan ``test = "yuan.bentler.mplus"``):
    :math:`c = [\operatorname{tr}(A_1^{-1}B_1) - \operatorname{tr}(A_0^{-1}B_0)]/df` with
    :math:`A_1` the observed information of the saturated model (means and covariances) at its EM
    estimates :math:`\tilde\mu, \tilde\Sigma` (lavaan ``h1.information = "unstructured"``), in
    closed form (:func:`_saturated_hessian`), and :math:`B_1` its casewise score cross-products;
    :math:`c_b` likewise with the independence model (means and variances) at its estimates.
    ``chisq_scaled = chisq / c``; ``cfi_scaled``, ``tli_scaled``, ``rmsea_scaled`` are the usual
    formulas on the scaled statistics, as lavaan (:mod:`analysis.sem.fit`).

    *Robust CFI, TLI, RMSEA*: with incomplete data lavaan does not use the complete-data
    formulas of Brosseau-Liard, Savalei & Li (2012) on the FIML statistic but the FIML-corrected
    statistic of Zhang & Savalei (2023), version "V3" when there is a scaled test
    (``lavaan:::lav_fit_fiml_corrected``): the model, at its FIML estimates, evaluated as if the
    EM moments were complete-data moments,

    .. math:: T_3 = N\,[\log|\hat\Sigma| + \operatorname{tr}(\tilde\Sigma\hat\Sigma^{-1}) - \log|\tilde\Sigma|
              - p + (\tilde\mu-\hat\nu)^\top\hat\Sigma^{-1}(\tilde\mu-\hat\nu)],

    and its scaling factor :math:`c_3 = \operatorname{tr}(U W_m^{-1} W_c W_m^{-1} U \Gamma)/df` with,
    per case and at the EM moments, :math:`W_m = A_1/N`, :math:`\Gamma = W_m^{-1}(B_1/N)W_m^{-1}`,
    :math:`W_c` the complete-data information of the saturated model (``blockdiag``
    :math:`(\tilde\Sigma^{-1}, \tfrac12 D^\top(\tilde\Sigma^{-1}\otimes\tilde\Sigma^{-1})D)`),
    :math:`\Delta` the derivatives of (vech Sigma, mu) in (parameters, intercepts) and
    :math:`U = W_m - W_m\Delta(\Delta^\top W_m\Delta)^{-1}\Delta^\top W_m`; :math:`T_{3b}, c_{3b}`
    the same for the independence model. Then (lavaan's ``lav_fit_cfi``, ``lav_fit_tli``,
    ``lav_fit_rmsea``, ``lav_fit_rmsea_ci`` with ``c.hat``)
    ``cfi_robust`` = :math:`1 - \max(T_3 - c_3df, 0)/\max(T_3 - c_3df, T_{3b} - c_{3b}df_b, 0)`,
    ``tli_robust`` = :math:`1 - [(T_3 - c_3df)/df]/[(T_{3b} - c_{3b}df_b)/df_b]`,
    ``rmsea_robust`` = :math:`\sqrt{\max(0, T_3/(N\,df) - c_3/N)}` and its interval
    :math:`\sqrt{c_3\lambda/(N\,df)}` at the noncentrality bounds :math:`\lambda` of :math:`T_3/c_3`.
    The traces are computed without forming :math:`\Gamma` (:func:`_fiml_corrected`).

    lavaan stops its EM for the saturated moments at a change of 1e-5 (``em.h1.tol``); :math:`T_3`
    depends on them to first order, so the robust indices agree with lavaan's defaults to 3e-5
    relative and with ``em.h1.tol = 1e-12`` to 2e-7 (tests/test_fiml_robust.py; the scaled test
    to 4e-7, the SEs to 1.1e-6). A just-identified model (df = 0) has no scaling factor, scaled
    p-value or scaled RMSEA: None, as lavaan's NA.

    References
    ----------
    Yuan, K.-H., & Bentler, P. M. (2000). Three likelihood-based methods for mean and covariance
        structure analysis with nonnormal missing data. Sociological Methodology 30, 165-200.
    Zhang, X., & Savalei, V. (2023). New computations for RMSEA and CFI following FIML and TS
        estimation with missing data. Psychological Methods 28(2), 263-283.

    In R: ``cfa(model, data, missing = "fiml", estimator = "MLR")``; ``fitMeasures(fit)``.
    """
    n, p = values.shape
    q = len(z) - p
    theta, nu = z[:q], z[q:]
    sig = mdl.sigma(theta)[0]
    deriv = mdl.derivatives(theta)
    scores0 = _casewise_scores(values, sig, nu, deriv)
    b0 = scores0.T @ scores0
    try:
        a0_inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:  # a singular information (an unidentified model): no robust SEs or test
        a0_inv = np.full_like(hess, np.nan)
    vcov = a0_inv @ b0 @ a0_inv
    trace_h0 = np.sum(a0_inv * b0)
    s_em, mu_em = em.cov.to_numpy(), em.mean.to_numpy()
    rows, cols = np.tril_indices(p)
    n_cov = len(rows)
    df, base_df = fit_stats["df"], fit_stats["baseline_df"]
    notes = []

    a1 = _saturated_hessian(groups, s_em, mu_em)
    scores1 = _casewise_scores(values, s_em, mu_em)
    try:
        t1 = np.linalg.solve(a1, scores1.T)  # A1^-1 s_i for every case
    except np.linalg.LinAlgError:
        t1 = None
    observed = ~np.isnan(values)
    base_var = np.array([values[observed[:, j], j].var() for j in range(p)])
    base_mean = np.array([values[observed[:, j], j].mean() for j in range(p)])
    trace_b = _baseline_trace(values, base_var, base_mean)
    trace_h1 = np.sum(t1 * scores1.T) if t1 is not None else np.nan
    c = (trace_h1 - trace_h0) / df if df > 0 else np.nan
    cb = (trace_h1 - trace_b) / base_df

    # The FIML-corrected statistics (Zhang & Savalei, 2023, V3) behind the robust indices.
    t3, t3b, delta, base_cells = _fiml_tilde(values, s_em, mu_em, sig, nu, deriv)
    if t1 is None:
        k3 = k3b = np.nan
        notes.append("MLR with FIML: the saturated model's information is singular: the scaled test and the robust "
                     "CFI, TLI and RMSEA are not available")
    else:
        k3, k3b = _fiml_corrected(a1, scores1, t1, delta, base_cells, s_em, n)
    c3 = k3 / df if df > 0 else np.inf  # lavaan: k/0
    c3b = k3b / base_df

    chisq, base_chisq = fit_stats["chisq"], fit_stats["baseline_chisq"]
    if t1 is None:
        scaled, base_scaled = fitm.ScaledTest(np.nan, np.nan), fitm.ScaledTest(np.nan, np.nan)
    elif df > 0:
        scaled = fitm.ScaledTest(chisq / c, c, scaling_factor_h1=trace_h1 / (n_cov + p),
                                 scaling_factor_h0=trace_h0 / (_free_entries(mdl) + p))
        base_scaled = fitm.ScaledTest(base_chisq / cb, cb)
    else:  # just identified: lavaan has no scaling factor and no scaled RMSEA (NA); scaled CFI and TLI 1
        scaled, base_scaled = fitm.ScaledTest(0.0, np.nan), fitm.ScaledTest(base_chisq / cb, cb)
        notes.append("MLR with FIML: the model is just identified (df = 0): no scaling factor, scaled p-value or "
                     "scaled RMSEA (None; lavaan reports NA as well)")
    robust = fitm.RobustStatistics(t3, c3, t3b, c3b)
    return vcov, scaled, base_scaled, robust, notes


def _ml_fiml_robust(mdl: _Model, theta, nu, values, groups, em, df: int, base_df: int):
    """:class:`analysis.sem.fit.RobustStatistics` for ML with FIML (lavaan's FIML-C V6, no scaled
    test): :math:`T_3, T_{3,0}` (:func:`_fiml_tilde`) and :math:`\\hat c = k/df`,
    :math:`\\hat c_0 = k_0/df_0` (:func:`_fiml_corrected_v6`); NaN with a note when the saturated
    model's information is singular."""
    s_em, mu_em = em.cov.to_numpy(), em.mean.to_numpy()
    sig = mdl.sigma(theta)[0]
    t3, t3b, delta, base_cells = _fiml_tilde(values, s_em, mu_em, sig, nu, mdl.derivatives(theta))
    a1 = _saturated_hessian(groups, s_em, mu_em)
    try:
        k, kb = _fiml_corrected_v6(a1, delta, base_cells, s_em, len(values))
    except np.linalg.LinAlgError:
        return fitm.RobustStatistics(np.nan, np.nan, np.nan, np.nan), [
            "FIML: the saturated model's information is singular: the robust CFI, TLI and RMSEA are not available"]
    c = k / df if df > 0 else np.inf  # lavaan: k/0
    return fitm.RobustStatistics(t3, c, t3b, kb / base_df), []


def _baseline_trace(values: np.ndarray, var: np.ndarray, mean: np.ndarray) -> float:
    r""":math:`\operatorname{tr}(A_b^{-1}B_b)` of the independence model (each variable's mean and
    variance, FIML) at ``var``, ``mean``: the log-likelihood is a sum over variables, so
    :math:`A_b` is block diagonal with, per variable j (residuals :math:`r` of its observed values),
    :math:`\partial^2/\partial\sigma^2 = \sum(r^2/\sigma^3 - 1/(2\sigma^2))`,
    :math:`\partial^2/\partial\mu^2 = n_j/\sigma`, :math:`\partial^2/\partial\sigma\partial\mu = \sum r/\sigma^2`,
    and casewise scores :math:`(1/\sigma - r^2/\sigma^2)/2` and :math:`-r/\sigma`."""
    total = 0.0
    for j in range(values.shape[1]):
        y = values[~np.isnan(values[:, j]), j]
        r, v = y - mean[j], var[j]
        a = np.array([[np.sum(r**2 / v**3 - 0.5 / v**2), np.sum(r) / v**2], [np.sum(r) / v**2, len(y) / v]])
        s = np.column_stack([0.5 * (1 / v - r**2 / v**2), -r / v])
        total += np.sum(np.linalg.inv(a) * (s.T @ s))
    return float(total)


def _pattern_moments(groups: list, sig: np.ndarray, mu: np.ndarray):
    r"""Per missingness pattern k, zero outside its observed variables o: :math:`M_k = \Sigma_{oo}^{-1}`,
    :math:`C_k = M_k(2W_k - \Sigma_{oo})M_k` with :math:`W_k = S_k + d_kd_k^\top`,
    :math:`d_k = \bar y_k - \mu_o`, and :math:`M_kd_k`; and the pattern sizes."""
    p, n_pat = len(sig), len(groups)
    m_all, c_all, v_all, sizes = np.zeros((n_pat, p, p)), np.zeros((n_pat, p, p)), np.zeros((n_pat, p)), np.zeros(n_pat)
    for k, (o, nk, mean, cov) in enumerate(groups):
        so = sig[np.ix_(o, o)]
        inv = np.linalg.inv(so)
        d = mean - mu[o]
        m_all[k][np.ix_(o, o)] = inv
        c_all[k][np.ix_(o, o)] = inv @ (2 * (cov + np.outer(d, d)) - so) @ inv
        v_all[k][o] = inv @ d
        sizes[k] = nk
    return m_all, c_all, v_all, sizes


def _fiml_structure(mdl: _Model):
    r"""The free rows of the parameter table and the form of their derivatives: for every row r,
    :math:`\partial\Sigma/\partial r = u_rv_r^\top + v_ru_r^\top` with :math:`u_r = B_{\cdot,bu_r}`,
    :math:`v_r = w_rB_{\cdot,bv_r}` from the columns of :math:`B = [I_p, \Lambda\Phi, \Lambda A]`
    (:math:`A = (I-B)^{-1}`, :math:`\Phi = A\Psi A^\top`): a loading :math:`\lambda_{ij}`:
    :math:`e_i, (\Lambda\Phi)_{\cdot j}`; :math:`\theta_{ij}`: :math:`e_i, e_j`; :math:`\psi_{ij}`:
    :math:`(\Lambda A)_{\cdot i}, (\Lambda A)_{\cdot j}`; a regression :math:`\beta_{ij}`:
    :math:`(\Lambda A)_{\cdot i}, (\Lambda\Phi)_{\cdot j}`; w = 1/2 for the diagonal of
    :math:`\Theta, \Psi`, else 1 (B from :func:`_fiml_basis`). Returns (kind, i, j, k, bu, bv, w), k the
    0-based parameter."""
    r = mdl.pt.rows
    keep = r["free"].to_numpy() > 0
    kind = r["matrix"].to_numpy()[keep]
    i, j = r["row"].to_numpy()[keep].astype(int), r["col"].to_numpy()[keep].astype(int)
    k = r["free"].to_numpy()[keep].astype(int) - 1
    p, m = mdl.p, mdl.m
    bu, bv = i.copy(), j.copy()  # theta
    lam_rows, psi_rows, beta_rows = kind == "lambda", kind == "psi", kind == "beta"
    bv[lam_rows | beta_rows] = p + j[lam_rows | beta_rows]
    bu[psi_rows | beta_rows] = p + m + i[psi_rows | beta_rows]
    bv[psi_rows] = p + m + j[psi_rows]
    w = np.where((i == j) & ((kind == "theta") | psi_rows), 0.5, 1.0)
    return kind, i, j, k, bu, bv, w


def _fiml_basis(mdl: _Model, theta: np.ndarray) -> np.ndarray:
    r"""The columns :math:`B = [I_p, \Lambda\Phi, \Lambda A]` of :func:`_fiml_structure` (p x (p + 2m))."""
    _, mats, a = mdl.sigma(theta)
    la = mats["lambda"] @ a
    return np.hstack([np.eye(mdl.p), la @ mats["psi"] @ a.T, la])


def _sigma_second(mdl: _Model, theta: np.ndarray, g: np.ndarray, kind, i, j) -> np.ndarray:
    r"""Second derivatives of :math:`\operatorname{tr}(G\,\Sigma(\theta))` for a fixed symmetric G, between
    the free rows of the parameter table (``kind``, ``i``, ``j`` from :func:`_fiml_structure`).

    With :math:`L = \Lambda A`, :math:`\Phi = A\Psi A^\top`, :math:`K = L^\top GL`, the gradient in
    the matrix elements is :math:`2G\Lambda\Phi` (:math:`\Lambda`), :math:`K` (:math:`\Psi`),
    :math:`2K\Psi A^\top` (B) and G (:math:`\Theta`); column s is its derivative along row s
    (:math:`dA = A\,dB\,A`), read at every row r. :math:`\Theta` enters linearly: zero rows."""
    _, mats, a = mdl.sigma(theta)
    lam, psi = mats["lambda"], mats["psi"]
    ell = lam @ a
    phi = a @ psi @ a.T
    g_ell = g @ ell
    g_lam = g @ lam
    kk = ell.T @ g_ell
    n_rows, m = len(kind), mdl.m
    is_lam, is_psi, is_beta = kind == "lambda", kind == "psi", kind == "beta"
    psi_off = i[is_psi] != j[is_psi]
    out = np.zeros((n_rows, n_rows))

    def read(d_lam, d_psi, d_beta):
        col = np.zeros(n_rows)
        if d_lam is not None:
            col[is_lam] = d_lam[i[is_lam], j[is_lam]]
        if d_psi is not None:
            col[is_psi] = d_psi[i[is_psi], j[is_psi]] + np.where(psi_off, d_psi[j[is_psi], i[is_psi]], 0.0)
        if d_beta is not None:
            col[is_beta] = d_beta[i[is_beta], j[is_beta]]
        return col

    for s, (name, k, l) in enumerate(zip(kind, i, j)):
        if name == "lambda":
            d_k = np.outer(a[l], g_ell[k])
            d_k = d_k + d_k.T
            out[:, s] = read(2 * np.outer(g[:, k], phi[l]), d_k, 2 * d_k @ psi @ a.T)
        elif name == "psi":
            e = np.zeros((m, m))
            e[k, l] = e[l, k] = 1.0
            out[:, s] = read(2 * g_ell @ e @ a.T, None, 2 * kk @ e @ a.T)
        elif name == "beta":
            d_a = np.outer(a[:, k], a[l])
            d_phi = d_a @ psi @ a.T
            d_k = np.outer(ell[:, k], a[l]).T @ g_ell
            d_k = d_k + d_k.T
            out[:, s] = read(2 * g_lam @ (d_phi + d_phi.T), d_k, 2 * (d_k @ psi @ a.T + kk @ psi @ d_a.T))
    return out


def _fiml_hessian(mdl: _Model, theta: np.ndarray, nu: np.ndarray, groups: list) -> np.ndarray:
    r"""Observed information under FIML: the Hessian of -log L in (parameters, intercepts), analytic.

    Per pattern (:func:`_pattern_moments`: :math:`M, C, d`, n_k cases),

    .. math:: \frac{\partial^2}{\partial\theta_a\partial\theta_b} = \sum_k \frac{n_k}{2}
              \operatorname{tr}(\dot\Sigma_a M\dot\Sigma_b C)
              + \sum_{ij} G_{ij}\,\frac{\partial^2\Sigma_{ij}}{\partial\theta_a\partial\theta_b},
              \quad \frac{\partial^2}{\partial\theta_a\partial\nu} = \sum_k n_k M\dot\Sigma_aMd,
              \quad \frac{\partial^2}{\partial\nu\partial\nu^\top} = \sum_k n_kM,

    with :math:`G = \sum_k \tfrac{n_k}{2}(M - MW_kM)` the gradient in Sigma. With
    :math:`\dot\Sigma_r = u_rv_r^\top + v_ru_r^\top` (:func:`_fiml_structure`),
    :math:`\operatorname{tr}(\dot\Sigma_a M\dot\Sigma_b C) = (v_a^\top Mu_b)(u_a^\top Cv_b)
    + (v_a^\top Mv_b)(u_a^\top Cu_b) + (u_a^\top Mu_b)(v_a^\top Cv_b) + (u_a^\top Mv_b)(v_a^\top Cu_b)`,
    read from :math:`B^\top MB` and :math:`B^\top CB` (p + 2m square, for a block of patterns in a
    few large matrix products); the second term is :func:`_sigma_second`. Computed per row of the
    parameter table and summed over the rows sharing a parameter (equality labels). lavaan
    differentiates its analytic gradient numerically (``lav_model_hessian``, 5-point, h = 1e-6);
    the two agree to about 1e-9.
    """
    p = mdl.p
    sig = mdl.sigma(theta)[0]
    kind, i, j, k, bu, bv, w = _fiml_structure(mdl)
    basis = _fiml_basis(mdl, theta)
    n_rows, nb = len(k), basis.shape[1]
    h_rows, h_cross, h_nu, g = np.zeros((n_rows, n_rows)), np.zeros((n_rows, p)), np.zeros((p, p)), np.zeros((p, p))

    def take(x, rows, cols):
        return np.take(np.take(x, rows, axis=1), cols, axis=2)

    block = max(1, min(64, int(2e6 // max(n_rows, 1) ** 2)))  # patterns at a time: bounded memory
    for first in range(0, len(groups), block):
        chunk = groups[first:first + block]
        m_all, c_all, v_all, nk = _pattern_moments(chunk, sig, nu)
        for (o, n_k, mean, cov), m_k in zip(chunk, m_all):
            m_oo = m_k[np.ix_(o, o)]
            d = mean - nu[o]
            g[np.ix_(o, o)] += n_k / 2 * (m_oo - m_oo @ (cov + np.outer(d, d)) @ m_oo)
        mb = (m_all.reshape(-1, p) @ basis).reshape(-1, p, nb)  # M_k B
        bmb = (basis.T @ mb.transpose(1, 0, 2).reshape(p, -1)).reshape(nb, -1, nb).transpose(1, 0, 2)
        cb = (c_all.reshape(-1, p) @ basis).reshape(-1, p, nb)
        bcb = (basis.T @ cb.transpose(1, 0, 2).reshape(p, -1)).reshape(nb, -1, nb).transpose(1, 0, 2)
        terms = (take(bmb, bv, bu) * take(bcb, bu, bv) + take(bmb, bv, bv) * take(bcb, bu, bu)
                 + take(bmb, bu, bu) * take(bcb, bv, bv) + take(bmb, bu, bv) * take(bcb, bv, bu))
        h_rows += np.tensordot(nk / 2, terms, axes=1)
        bmd = v_all @ basis  # B^T M_k d_k
        h_cross += (np.einsum("k,kpr,kr->rp", nk, mb[:, :, bu], bmd[:, bv])
                    + np.einsum("k,kpr,kr->rp", nk, mb[:, :, bv], bmd[:, bu]))
        h_nu += np.tensordot(nk, m_all, axes=1)
    h_rows *= np.outer(w, w)
    h_cross *= w[:, None]
    h_rows += _sigma_second(mdl, theta, g, kind, i, j)
    to_free = np.zeros((n_rows, mdl.pt.n_free))
    to_free[np.arange(n_rows), k] = 1.0
    h = np.block([[to_free.T @ h_rows @ to_free, to_free.T @ h_cross], [h_cross.T @ to_free, h_nu]])
    return (h + h.T) / 2


def _saturated_hessian(groups: list, sig: np.ndarray, mu: np.ndarray) -> np.ndarray:
    r"""Observed information of the saturated model under FIML (the Hessian of -log L) at
    ``sig``, ``mu``, in closed form: covariances in ``np.tril_indices`` order, then means.

    For covariance units :math:`E_{ab} + E_{ba}` (:math:`E_{aa}` on the diagonal) the covariance
    block is :math:`\tfrac12 s_{ab}s_{cd}\,[R_{bcda} + R_{bdca} + R_{acdb} + R_{adcb}]` with
    :math:`s` = 1/2 on the diagonal, 1 elsewhere, and
    :math:`R_{bcda} = \sum_k n_k M_{k,bc}C_{k,da}` (:func:`_pattern_moments`): for each b one
    product :math:`(p \times n_{pat})(n_{pat} \times p^2)` gives every :math:`R_{bcda}` and
    :math:`R_{acdb} = \sum_k n_k C_{k,bd}M_{k,ca}`, instead of a Kronecker product per pattern.
    Mean block :math:`\sum_k n_kM_k`; cross block :math:`\sum_k n_k M_k(E_{ab}+E_{ba})M_kd_k`.
    lavaan: ``lav_mvnorm_missing_information_observed_samplestats`` (times N).
    """
    p = len(sig)
    rows, cols = np.tril_indices(p)
    n_cov = len(rows)
    s = np.where(rows == cols, 0.5, 1.0)
    position = np.zeros((p, p), dtype=int)
    position[rows, cols] = np.arange(n_cov)
    out = np.zeros((n_cov + p, n_cov + p))
    cross = np.zeros((p, p, p))
    for first in range(0, len(groups), 256):  # 256 patterns at a time: bounded memory
        m_all, c_all, v_all, sizes = _pattern_moments(groups[first:first + 256], sig, mu)
        m_w, c_w = m_all * sizes[:, None, None], c_all * sizes[:, None, None]
        for b in range(p):
            a = np.arange(b, p)  # the covariances (a, b), a >= b
            x = m_w[:, b, :].T @ c_all[:, :, b:].reshape(len(sizes), -1)  # x[c, (d, a)] = sum_k n_k M[b, c] C[d, a]
            y = c_w[:, b, :].T @ m_all[:, :, b:].reshape(len(sizes), -1)  # y[d, (c, a)] = sum_k n_k C[b, d] M[c, a]
            z = x.reshape(p, p, -1).transpose(2, 0, 1) + y.reshape(p, p, -1).transpose(2, 1, 0)  # R_bcda + R_acdb
            z = z + z.transpose(0, 2, 1)
            r = position[a, b]
            out[r, :n_cov] += 0.5 * s[r, None] * s[None, :] * z[:, rows, cols]
        cross += np.einsum("kia,kb->iab", m_w, v_all)
        out[n_cov:, n_cov:] += m_w.sum(axis=0)
    out[n_cov:, :n_cov] = s * (cross[:, rows, cols] + cross[:, cols, rows])
    out[:n_cov, n_cov:] = out[n_cov:, :n_cov].T
    return out


def _fiml_corrected(a1: np.ndarray, scores1: np.ndarray, t1: np.ndarray, delta: np.ndarray, base_cells: np.ndarray,
                    s_em: np.ndarray, n: int) -> tuple[float, float]:
    r"""The traces :math:`\operatorname{tr}(U W_m^{-1} W_c W_m^{-1} U \Gamma)` of :func:`_mlr_fiml` for the
    model (``delta``) and for the independence model (the variances and means, ``base_cells``).

    :math:`W_m^{-1}U = I - \Delta(\Delta^\top W_m\Delta)^{-1}\Delta^\top W_m` and
    :math:`\Gamma = T T^\top/N` with :math:`T = W_m^{-1}S_1^\top` (:math:`S_1` the casewise scores of
    the saturated model), so the trace is :math:`\sum Y\circ W_cY/N` with
    :math:`Y = T - \Delta(\Delta^\top W_m\Delta)^{-1}\Delta^\top S_1^\top`, an (p* + p) x N matrix:
    no (p* + p)-square product. In terms of :math:`A_1 = N W_m` and ``t1`` = :math:`A_1^{-1}S_1^\top`:
    :math:`Y = N[t_1 - \Delta(\Delta^\top A_1\Delta)^{-1}\Delta^\top S_1^\top]`. :math:`W_cy` for a
    column y is :math:`s_{cd}(KYK)_{cd}` and :math:`Ky_\mu` (:math:`K = \tilde\Sigma^{-1}`, Y the
    symmetric matrix of the covariance part of y)."""
    k_inv = np.linalg.inv(s_em)
    p = len(s_em)
    rows, cols = np.tril_indices(p)
    n_cov = len(rows)
    s = np.where(rows == cols, 0.5, 1.0)

    def trace(y):
        total = 0.0
        for first in range(0, y.shape[1], 512):  # 512 columns at a time: bounded memory
            yc = y[:, first:first + 512]
            ymat = np.zeros((yc.shape[1], p, p))
            ymat[:, rows, cols] = yc[:n_cov].T
            ymat[:, cols, rows] = yc[:n_cov].T
            yk = (ymat.reshape(-1, p) @ k_inv).reshape(-1, p, p)
            kyk = (yk.transpose(0, 2, 1).reshape(-1, p) @ k_inv).reshape(-1, p, p)  # (YK)^T K = KYK
            total += np.sum(yc[:n_cov] * (s * kyk[:, rows, cols]).T) + np.sum(yc[n_cov:] * (k_inv @ yc[n_cov:]))
        return float(n * total)

    y = t1 - delta @ np.linalg.solve(delta.T @ a1 @ delta, delta.T @ scores1.T)
    yb = t1.copy()
    yb[base_cells] -= np.linalg.solve(a1[np.ix_(base_cells, base_cells)], scores1.T[base_cells])
    return trace(y), trace(yb)
