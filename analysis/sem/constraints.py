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

__all__ = ["Constraints", "Expression", "build_constraints", "linear_reduction"]

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
    for col in ("label", "plabel"):
        for k in np.flatnonzero(model_rows.to_numpy()):
            name = partable.at[k, col]
            if name and name not in known:
                known[name] = int(k)
    defined: dict[str, int] = {}
    defs, eqs, ineqs = [], [], []
    for k in range(len(partable)):
        op = partable.at[k, "op"]
        lhs, rhs = partable.at[k, "lhs"], partable.at[k, "rhs"]
        where = f"parameter table row {k + 1} ({lhs} {op} {rhs})"
        if op == ":=":
            if lhs in known or lhs in defined:
                raise InputError(f"{where}: {lhs} := ... reuses the name of a label or defined parameter")
            defs.append((k, lhs, _compile(rhs, known, defined, where)))
            defined[lhs] = len(defined)
    for k in range(len(partable)):
        op = partable.at[k, "op"]
        lhs, rhs = partable.at[k, "lhs"], partable.at[k, "rhs"]
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
