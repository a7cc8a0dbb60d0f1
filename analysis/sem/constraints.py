"""Constraints (``==``, ``<``, ``>``) and defined parameters (``:=``) of a parameter table.

Each side of a constraint and the right-hand side of a definition is R arithmetic (``+ - * / ^``,
parentheses, numbers, ``sqrt exp log abs``) on labels and plabels (lavaan's ``.p5.``) of the
parameter table, or on earlier defined parameters. As lavaan (``lav_constraints``):

- ``lhs == rhs`` is the equality :math:`h(x) = \\text{lhs} - \\text{rhs} = 0`;
- ``lhs > rhs`` is :math:`g(x) = \\text{lhs} - \\text{rhs} \\ge 0`, ``lhs < rhs`` is
  :math:`\\text{rhs} - \\text{lhs} \\ge 0`;
- ``name := expr`` is a function of the parameters (delta-method standard errors,
  :mod:`analysis.sem.inference`).

Linear equalities are handled by reparametrisation in the null space of their Jacobian
(:func:`linear_reduction`: :math:`x = x_0 + Kz`), as lavaan does for ``==`` (its
``lav_model_estimate`` with ``ceq.linear``); the rest are passed to a constrained optimiser.

In R: ``lavaan:::lav_partable_constraints_ceq(parTable(fit))``, ``lavInspect(fit, "ceq.JAC")``.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import InputError

__all__ = ["ConstraintSystem", "Constraints", "Expression", "build_constraints", "jacobian", "linear_reduction",
           "merge_simple_equalities"]

_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant, ast.Add, ast.Sub, ast.Mult,
          ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Call)
_FUNCTIONS = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "abs": np.abs}
_NAME = re.compile(r"(?<![0-9A-Za-z_.])((?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*)")


@dataclass(frozen=True)
class Expression:
    """An arithmetic expression on parameter-table rows: ``rows[k]`` is the row whose value is
    the k-th name; ``defined[k]`` instead names an earlier ``:=`` (index into the definitions)."""

    text: str
    code: object
    names: tuple[str, ...]
    rows: tuple[int, ...]  # -1 where the name is a defined parameter
    defined: tuple[int, ...]  # -1 where the name is a row

    def __call__(self, row_values: np.ndarray, defined_values: list[float] | np.ndarray = ()) -> float:
        env = {}
        for k, (r, d) in enumerate(zip(self.rows, self.defined)):
            env[f"_v{k}"] = np.float64(row_values[r] if r >= 0 else defined_values[d])
        # 0/0 (a ratio of effects at zero) is NaN in the output, as R's NaN, not an exception
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(eval(self.code, {"__builtins__": {}, **_FUNCTIONS}, env))  # nodes checked in _compile


def _compile(text: str, known: dict[str, int], defined: dict[str, int], where: str) -> Expression:
    names: list[str] = []

    def sub(m):
        name = m.group(1)
        if name in _FUNCTIONS:
            return name
        if name not in names:
            names.append(name)
        return f"_v{names.index(name)}"

    body = _NAME.sub(sub, str(text)).replace("^", "**")
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError:
        raise InputError(f"{where}: {text!r} is not an arithmetic expression") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise InputError(f"{where}: {text!r}: only + - * / ^, numbers, labels and "
                             f"{', '.join(_FUNCTIONS)} are allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise InputError(f"{where}: {text!r}: unknown function")
    rows, defs = [], []
    for name in names:
        if name in defined:
            rows.append(-1)
            defs.append(defined[name])
        elif name in known:
            rows.append(known[name])
            defs.append(-1)
        else:
            raise InputError(f"{where}: {text!r} uses {name!r}, which labels no parameter; label the parameter "
                             "in the model (e.g. y ~ a*x)")
    return Expression(text=str(text), code=compile(tree, f"<{text}>", "eval"), names=tuple(names), rows=tuple(rows),
                      defined=tuple(defs))


@dataclass(frozen=True)
class Constraints:
    """The constraint and definition rows of a parameter table, compiled.

    ``equality``/``inequality``: (row index, lhs, rhs) with ``h = lhs - rhs`` (``==``) and
    ``g = lhs - rhs >= 0`` (``>``; ``<`` swapped); ``defined``: (row index, name, expression).
    """

    equality: tuple[tuple[int, Expression, Expression], ...]
    inequality: tuple[tuple[int, Expression, Expression], ...]
    defined: tuple[tuple[int, str, Expression], ...]

    def defined_values(self, row_values: np.ndarray) -> np.ndarray:
        out: list[float] = []
        for _, _, expr in self.defined:
            out.append(expr(row_values, out))
        return np.asarray(out, dtype=float)

    def _values(self, items, row_values):
        uses_defined = any(d >= 0 for _, lhs, rhs in items for d in (*lhs.defined, *rhs.defined))
        defs = self.defined_values(row_values) if uses_defined else ()
        return np.asarray([lhs(row_values, defs) - rhs(row_values, defs) for _, lhs, rhs in items], dtype=float)

    def h(self, row_values: np.ndarray) -> np.ndarray:
        """Equality constraints, zero when satisfied."""
        return self._values(self.equality, row_values)

    def g(self, row_values: np.ndarray) -> np.ndarray:
        """Inequality constraints, non-negative when satisfied."""
        return self._values(self.inequality, row_values)


def build_constraints(partable: pd.DataFrame) -> Constraints:
    """Compile the ``==``, ``<``, ``>`` and ``:=`` rows of a (normalised) parameter table.

    A name is a ``label`` or a ``plabel`` of a model row (the first row carrying it) or an
    earlier ``:=``.

    Raises
    ------
    InputError
        An expression that is not arithmetic or uses a name that labels nothing.
    """
    known: dict[str, int] = {}
    model_rows = ~partable["op"].isin(("==", "<", ">", ":="))
    ops, lhss, rhss = (partable[c].to_numpy() for c in ("op", "lhs", "rhs"))
    for col in ("label", "plabel"):
        names = partable[col].to_numpy()
        for k in np.flatnonzero(model_rows.to_numpy()):
            name = names[k]
            if name and name not in known:
                known[name] = int(k)
    defined: dict[str, int] = {}
    defs, eqs, ineqs = [], [], []
    for k in range(len(partable)):
        op, lhs, rhs = ops[k], lhss[k], rhss[k]
        where = f"parameter table row {k + 1} ({lhs} {op} {rhs})"
        if op == ":=":
            if lhs in known or lhs in defined:
                raise InputError(f"{where}: {lhs} := ... reuses the name of a label or defined parameter")
            defs.append((k, lhs, _compile(rhs, known, defined, where)))
            defined[lhs] = len(defined)
    for k in range(len(partable)):
        op, lhs, rhs = ops[k], lhss[k], rhss[k]
        where = f"parameter table row {k + 1} ({lhs} {op} {rhs})"
        if op in ("==", ">", "<"):
            a, b = _compile(lhs, known, defined, where), _compile(rhs, known, defined, where)
            if op == "==":
                eqs.append((k, a, b))
            elif op == ">":
                ineqs.append((k, a, b))
            else:
                ineqs.append((k, b, a))
    return Constraints(equality=tuple(eqs), inequality=tuple(ineqs), defined=tuple(defs))


def jacobian(func, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Jacobian of a vector function by central differences (step ``step * max(1, |x_k|)``)."""
    f0 = np.asarray(func(x), dtype=float)
    out = np.zeros((f0.size, len(x)))
    for k in range(len(x)):
        h = step * max(1.0, abs(x[k]))
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        out[:, k] = (np.asarray(func(up)) - np.asarray(func(down))) / (2 * h)
    return out


def linear_reduction(jac: np.ndarray, value_at_zero: np.ndarray, nfree: int, tol: float = 1e-10):
    """Reparametrise the linear equalities :math:`Hx + h_0 = 0` as :math:`x = x_0 + Kz`.

    ``K`` (nfree x (nfree - rank H)) is an orthonormal basis of the null space of ``H`` (from its
    SVD) and ``x0`` the minimum-norm solution. Returns ``(x0, K, rank)``.

    Raises
    ------
    InputError
        Inconsistent constraints (no x satisfies them).
    """
    if jac.size == 0:
        return np.zeros(nfree), np.eye(nfree), 0
    u, s, vt = np.linalg.svd(jac, full_matrices=True)
    rank = int(np.sum(s > tol * max(1.0, s.max())))
    k = vt[rank:].T
    x0 = np.linalg.lstsq(jac, -value_at_zero, rcond=None)[0]
    if np.max(np.abs(jac @ x0 + value_at_zero)) > 1e-8 * max(1.0, np.abs(value_at_zero).max()):
        raise InputError("the equality constraints (==) contradict each other: no parameter values satisfy them all")
    return x0, k, rank


class ConstraintSystem:
    """The constraints as functions of the free parameters ``x`` of a model, with Jacobians by
    central differences over only the parameters each constraint involves (an invariance model
    has hundreds of ``==`` rows, each on two parameters)."""

    def __init__(self, model, constraints: Constraints):
        self.model = model
        self.constraints = constraints
        free = model.free

        def rows_of(expr: Expression) -> set[int]:
            out = {r for r in expr.rows if r >= 0}
            for d in expr.defined:
                if d >= 0:
                    out |= rows_of(constraints.defined[d][2])
            return out

        def cols(items):
            return [sorted({int(free[r]) - 1 for r in rows_of(a) | rows_of(b) if free[r] > 0}) for _, a, b in items]

        self._eq_cols = cols(constraints.equality)
        self._in_cols = cols(constraints.inequality)
        self.n_eq = len(constraints.equality)
        self.n_in = len(constraints.inequality)

    def h(self, x: np.ndarray) -> np.ndarray:
        return self.constraints.h(self.model.row_values(x))

    def g(self, x: np.ndarray) -> np.ndarray:
        return self.constraints.g(self.model.row_values(x))

    def _jac(self, items, columns, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(items), len(x)))
        uses_defined = bool(self.constraints.defined)
        for i, ((_, lhs, rhs), cs) in enumerate(zip(items, columns)):
            for k in cs:
                h = 1e-6 * max(1.0, abs(x[k]))
                vals = []
                for sign in (1.0, -1.0):
                    xx = x.copy()
                    xx[k] += sign * h
                    rv = self.model.row_values(xx)
                    defs = self.constraints.defined_values(rv) if uses_defined else ()
                    vals.append(lhs(rv, defs) - rhs(rv, defs))
                out[i, k] = (vals[0] - vals[1]) / (2 * h)
        return out

    def h_jac(self, x: np.ndarray) -> np.ndarray:
        """Jacobian of the equalities (n_eq x q)."""
        return self._jac(self.constraints.equality, self._eq_cols, x)

    def g_jac(self, x: np.ndarray) -> np.ndarray:
        """Jacobian of the inequalities (n_in x q)."""
        return self._jac(self.constraints.inequality, self._in_cols, x)

    def linear(self, which: str, x: np.ndarray) -> bool:
        """Whether the equalities (``"eq"``) or inequalities (``"in"``) are linear: their Jacobian
        is the same at two fixed points around ``x``."""
        fun = self.h_jac if which == "eq" else self.g_jac
        if (self.n_eq if which == "eq" else self.n_in) == 0:
            return True
        rng = np.random.default_rng(0)  # two fixed probe points: linearity is a property, not a draw
        a, b = x + rng.normal(0, 0.3, len(x)), x + rng.normal(0, 0.3, len(x))
        ja, jb = fun(a), fun(b)
        return bool(np.all(np.isfinite(ja)) and np.allclose(ja, jb, rtol=1e-6, atol=1e-7))


def merge_simple_equalities(partable: pd.DataFrame) -> pd.DataFrame:
    """``a == b`` between two free parameters named by a label or plabel (lavaan's "simple"
    equality constraints, as ``group.equal`` and shared labels write them) as one shared free
    index, those ``==`` rows dropped and ``free`` renumbered 1..q in order of first appearance
    (lavaan's ``ceq.simple = TRUE``). The fit is the same; the optimiser then works on fewer
    parameters without a null-space projection. The table's own numbering is kept in the column
    ``free_input`` (:attr:`Model.nfree_input` counts it: lavaan's ``npar`` before constraints)."""
    pt = partable
    free = pt["free"].to_numpy(dtype=int).copy()
    is_con = pt["op"].isin(("==", "<", ">", ":=")).to_numpy()
    name_free: dict[str, int] = {}
    for col in ("label", "plabel"):
        names = pt[col].to_numpy()
        for k in np.flatnonzero(~is_con):
            name = names[k]
            if name and name not in name_free:
                name_free[name] = int(free[k])
    parent: dict[int, int] = {}

    def root(f: int) -> int:
        while parent.get(f, f) != f:
            f = parent[f]
        return f

    drop = []
    lhss, rhss = pt["lhs"].to_numpy(), pt["rhs"].to_numpy()
    for k in np.flatnonzero(pt["op"].to_numpy() == "=="):
        a, b = str(lhss[k]).strip(), str(rhss[k]).strip()
        fa, fb = name_free.get(a, 0), name_free.get(b, 0)
        if fa > 0 and fb > 0:
            ra, rb = root(fa), root(fb)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
            drop.append(k)
    if not drop:
        return pt
    pt = pt.assign(free_input=free) if "free_input" not in pt.columns else pt
    merged = np.array([root(f) if f > 0 else 0 for f in free])
    order = {f: i + 1 for i, f in enumerate(dict.fromkeys(merged[merged > 0]))}
    out = pt.drop(index=drop).copy()
    out["free"] = [order[f] if f > 0 else 0 for f in np.delete(merged, drop)]
    return out.reset_index(drop=True)
