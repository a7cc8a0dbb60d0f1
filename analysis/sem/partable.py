r"""lavaan's parameter table: every parameter of a model, free or fixed, row for row as lavaan builds it.

:func:`lavaanify` turns parsed lavaan syntax (:func:`instrument.lavaan.parse_model`) into the table
``lavaan::lavaanify()`` returns and ``lavaan::parTable(cfa(...))`` shows, with lavaan's columns and
their meaning:

==========  ===========================================================================
column      meaning
==========  ===========================================================================
``id``      row number, from 1
``lhs``     left-hand side (a variable; for ``==``/``<``/``>``/``:=`` an expression)
``op``      ``=~ <~ ~ ~~ ~1 | ~*~ == < > :=``
``rhs``     right-hand side (``""`` for ``~1``; ``t1, t2, ...`` for thresholds)
``user``    1 written in the syntax, 0 added by default, 2 an equality row lavaan adds
``block``   block (group) number, from 1; 0 for constraint rows
``group``   group number, from 1; 0 for constraint rows
``free``    0 fixed, k > 0 the k-th free parameter (each free row its own k, as lavaan's
            default ``ceq.simple = FALSE``: equalities are the ``==`` rows)
``ustart``  the fixed value, or the user's starting value; NaN otherwise
``exo``     1 for the variances, covariances and means of observed exogenous covariates
            that ``fixed.x = TRUE`` fixes at their sample values (and, with
            ``conditional.x``, regressions on them)
``label``   the user's label, or the label lavaan gives an equality-constrained row (the
            first row's ``plabel``); the name of a ``:=`` parameter
``plabel``  ``.p<id>.``, the row's own name in constraints; ``""`` for constraint rows
==========  ===========================================================================

The rows come in lavaan's order: the statements as written (one row per term, per group),
then the defaults -- thresholds of ordered items, residual variances of the non-exogenous
observed variables and the variances of the latents, covariances among exogenous latents
(``auto.cov.lv.x``) and among endogenous variables that predict nothing (``auto.cov.y``), the
variances and covariances of observed covariates, the scale factors (``~*~``) of ordered
items, intercepts and latent means (``meanstructure``) -- then, after every group, the
constraint rows: the ``==``, ``<``, ``>`` and ``:=`` statements in the order written, then one
``.pA. == .pB.`` row (``user = 2``) for every parameter equal to an earlier one through a shared
label or ``group_equal``.

Which variable is what follows lavaan's ``lav_partable_vnames``: latents are the left sides of
``=~`` and ``<~``; an observed variable is exogenous (``ov.x``) when it only predicts
(right of ``~`` or ``<~``) and no ``~~`` or ``~1`` statement names it.

The defaults are those ``cfa()`` and ``sem()`` set (``auto.fix.first = !std.lv``,
``auto.fix.single``, ``auto.var``, ``auto.cov.lv.x``, ``auto.cov.y``, ``auto.th``,
``auto.delta``, ``int.ov.free = TRUE``, ``int.lv.free = FALSE``); ``meanstructure``,
``fixed.x`` and ``conditional.x`` default as lavaan 0.6-14's ``lav_options_set`` decides them
from the estimator, the groups, the missing-data method and ordered items.

References
----------
Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. *Journal of
Statistical Software*, 48(2), 1-36. https://doi.org/10.18637/jss.v048.i02

Notes
-----
In R: ``lavaan::parTable(lavaan::cfa(model, data, do.fit = FALSE, ...))`` (or ``sem()``), or
``lavaan::lavaanify(model, auto = TRUE, ...)``. Checked row for row against lavaan 0.6-14 on
Holzinger & Swineford, Political Democracy and ``psych::bfi`` (``tests/reference/partable.R``).
Not built: multilevel (``level:``) blocks, ``efa()`` blocks, ``effect.coding``, the
``correlation`` structure and interaction terms (``x1:x2``); each is refused with its line.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.errors import InputError
from instrument.lavaan import LavaanModel, LavaanSyntaxError, Statement, parse_model

__all__ = ["GROUP_EQUAL", "PARTABLE_COLUMNS", "lavaanify", "variable_names"]

PARTABLE_COLUMNS = ["id", "lhs", "op", "rhs", "user", "block", "group", "free", "ustart", "exo", "label", "plabel"]
GROUP_EQUAL = ("loadings", "composite.loadings", "intercepts", "thresholds", "means", "regressions", "residuals",
               "residual.covariances", "lv.variances", "lv.covariances")
_CON_OPS = ("==", "<", ">", ":=")


def _unique(xs):
    return list(dict.fromkeys(xs))


@dataclass
class _Rows:
    """The table as parallel lists (lavaan's LIST)."""

    lhs: list = field(default_factory=list)
    op: list = field(default_factory=list)
    rhs: list = field(default_factory=list)
    user: list = field(default_factory=list)
    mod: list = field(default_factory=list)  # the Statement written for this row, or None
    free: list = field(default_factory=list)
    ustart: list = field(default_factory=list)
    exo: list = field(default_factory=list)
    label: list = field(default_factory=list)
    group: list = field(default_factory=list)
    block: list = field(default_factory=list)

    def __len__(self):
        return len(self.lhs)

    def where(self, pred):
        return [i for i in range(len(self)) if pred(i)]

    def set(self, idx, free=None, ustart=None, exo=None):
        for i in idx:
            if free is not None:
                self.free[i] = free
            if ustart is not None:
                self.ustart[i] = ustart
            if exo is not None:
                self.exo[i] = exo


# --------------------------------------------------------------------------- variable names


def variable_names(lhs, op, rhs, user=None, exo=None) -> dict[str, list[str]]:
    """lavaan's kinds of variable names of one block (``lav_partable_vnames``).

    Parameters
    ----------
    lhs, op, rhs : sequences of str
        The rows (of the parsed syntax, or of a parameter table).
    user, exo : sequences of int, optional
        Columns of a parameter table; without them every row counts as written by the user.

    Returns
    -------
    dict
        ``lv``, ``lv_formative``, ``lv_x``, ``lv_y``, ``ov``, ``ov_x``, ``ov_nox``, ``ov_y``,
        ``ov_ord``, ``ov_ind``, each a list in lavaan's order.

    Notes
    -----
    In R: ``lavaan:::lav_partable_vnames(partable, type)``.
    """
    n = len(lhs)
    user = [1] * n if user is None else list(user)
    rows = list(zip(lhs, op, rhs))
    lv = _unique(l for l, o, r in rows if o in ("=~", "<~"))
    lv_set = set(lv)
    eqs_y = _unique(l for l, o, r in rows if o == "~")
    eqs_x = _unique(r for l, o, r in rows if o in ("~", "<~"))
    v_ind = _unique(r for l, o, r in rows if o == "=~")
    ov_ind = [v for v in v_ind if v not in lv_set]
    ov_y_int = [v for v in eqs_y if v not in lv_set and v not in ov_ind]
    ov_x = [v for v in eqs_x if v not in lv_set and v not in ov_ind and v not in ov_y_int]
    ov_cov = [l for l, o, r in rows if o == "~~" and l not in lv_set] + [r for l, o, r in rows
                                                                         if o == "~~" and r not in lv_set]
    ov_int = [l for l, o, r in rows if o in ("~1", "|") and l not in lv_set]
    ov_tmp = ov_ind + ov_y_int + ov_x
    ov = ov_tmp + [v for v in _unique(ov_cov + ov_int) if v not in ov_tmp]
    named = {l for (l, o, r), u in zip(rows, user) if u == 1 and o in ("~1", "~~")}
    named |= {r for (l, o, r), u in zip(rows, user) if u == 1 and o == "~~"}
    ov_x = [v for v in ov_x if v not in named]
    if exo is not None:
        extra = [l for (l, o, r), e in zip(rows, exo) if e == 1 and o in ("~~", "~1")]
        extra += [r for (l, o, r), e in zip(rows, exo) if e == 1 and o == "~~"]
        ov_x = ov_x + [v for v in _unique(extra) if v not in ov_x]
    ov_nox = [v for v in ov if v not in ov_x]
    ths = {l for l, o, r in rows if o == "|"}
    ov_ord = [v for v in ov if v in ths]
    lv_x = [v for v in lv if v not in v_ind and v not in eqs_y]
    y = [v for v in eqs_y if v not in v_ind and v not in eqs_x]
    ov_y = [v for v in ov if v in y and v not in lv_set]
    lv_y = [v for v in lv if v in y]
    return dict(lv=lv, lv_formative=_unique(l for l, o, r in rows if o == "<~"), lv_x=lv_x, lv_y=lv_y, ov=ov,
                ov_x=ov_x, ov_nox=ov_nox, ov_y=ov_y, ov_ord=ov_ord, ov_ind=ov_ind)


# --------------------------------------------------------------------------- the table


def lavaanify(model: LavaanModel | str, observed: Sequence[str] | None = None, *, std_lv: bool = False,
              meanstructure: bool | None = None, fixed_x: bool | None = None, conditional_x: bool | None = None,
              orthogonal: bool = False, groups: Sequence | None = None, ngroups: int | None = None,
              group_equal: Sequence[str] = (), group_partial: Sequence[str] = (),
              ordered: Mapping[str, int] | None = None, estimator: str = "ML", missing: str = "listwise",
              auto_fix_first: bool | None = None, auto_fix_single: bool = True, auto_var: bool = True,
              auto_cov_lv_x: bool = True, auto_cov_y: bool = True, auto_th: bool = True, auto_delta: bool = True,
              int_ov_free: bool = True, int_lv_free: bool = False, parameterization: str = "delta") -> pd.DataFrame:
    """The parameter table lavaan builds for ``model`` with ``cfa()``/``sem()``'s settings.

    Parameters
    ----------
    model : str or LavaanModel
        lavaan syntax (parsed with :func:`instrument.lavaan.parse_model` when a string).
    observed : sequence of str, optional
        The columns of the data; every observed variable of the model must be one of them.
    std_lv : bool
        lavaan's ``std.lv``: latent variances fixed at 1 instead of the first loading.
    meanstructure : bool, optional
        Intercepts and latent means. ``None``: lavaan's default (on with several groups,
        ``missing = "fiml"``, ordered items, ``~ 1`` in the syntax, or ``group_equal``
        holding intercepts or means).
    fixed_x : bool, optional
        Observed covariates' (co)variances and means fixed at their sample values (``exo = 1``
        rows). ``None``: lavaan's default (on for ML-family estimators, or with
        ``conditional_x``).
    conditional_x : bool, optional
        lavaan's ``conditional.x``. ``None``: on for ordered items with observed covariates
        under a non-ML estimator, as lavaan.
    orthogonal : bool
        Covariances among latents fixed at zero (those not written in the syntax).
    groups : sequence, optional
        Group labels (their number sets ``ngroups``); kept in ``table.attrs["group_labels"]``.
    ngroups : int, optional
        Number of groups (default ``len(groups)``, or 1).
    group_equal : sequence of str
        lavaan's ``group.equal`` (:data:`GROUP_EQUAL`).
    group_partial : sequence of str
        lavaan's ``group.partial``: parameters freed from ``group_equal`` (``"x3 ~ 1"``,
        ``"visual =~ x2"``).
    ordered : mapping of str to int, optional
        Ordered items and their number of categories (as in the data); an item gets
        categories - 1 thresholds.
    estimator, missing : str
        Used only for lavaan's defaults of ``meanstructure``, ``fixed_x`` and ``conditional_x``.
    auto_fix_first, auto_fix_single, auto_var, auto_cov_lv_x, auto_cov_y, auto_th, auto_delta, int_ov_free, int_lv_free
        lavaan's ``auto.*`` and ``int.*.free`` options; the defaults are ``cfa()``/``sem()``'s
        (``auto_fix_first = None`` means ``not std_lv``).
    parameterization : {"delta", "theta"}
        For ordered items.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PARTABLE_COLUMNS` (lavaan's ``lavaanify`` columns), and ``lower``/``upper``
        when the syntax bounds a parameter. ``attrs["group_labels"]`` holds the group labels.

    Raises
    ------
    InputError
        An observed variable that is not in ``observed``, a per-group modifier whose length is
        not the number of groups, an unknown ``group_equal`` category, a ``group_partial``
        entry naming no parameter, a construct this table does not build (multilevel blocks).

    Notes
    -----
    In R: ``parTable(cfa(model, data, std.lv = ..., group = ..., group.equal = ...,
    group.partial = ..., ordered = ..., do.fit = FALSE))``.

    Examples
    --------
    >>> pt = lavaanify("visual =~ x1 + x2 + x3")
    >>> pt[["lhs", "op", "rhs", "free", "ustart"]].head(2)  # doctest: +NORMALIZE_WHITESPACE
          lhs  op rhs  free  ustart
    0  visual  =~  x1     0     1.0
    1  visual  =~  x2     1     NaN
    """
    if isinstance(model, str):
        model = parse_model(model)
    if not isinstance(model, LavaanModel):
        raise TypeError(f"model: expected lavaan syntax or a LavaanModel, got {type(model).__name__}")
    if groups is not None:
        groups = [str(g) for g in groups]
        if ngroups is not None and ngroups != len(groups):
            raise InputError(f"ngroups = {ngroups} but {len(groups)} group labels were given")
        ngroups = len(groups)
    ngroups = int(ngroups or 1)
    if ngroups < 1:
        raise InputError(f"ngroups must be at least 1, got {ngroups}")
    group_equal = [group_equal] if isinstance(group_equal, str) else list(group_equal)
    bad = [g for g in group_equal if g not in GROUP_EQUAL]
    if bad:
        raise InputError(f"group_equal: unknown category {bad[0]!r}; use any of {', '.join(GROUP_EQUAL)}")
    group_partial = [group_partial] if isinstance(group_partial, str) else list(group_partial)
    group_partial = ["".join(str(p).split()) for p in group_partial]
    if parameterization not in ("delta", "theta"):
        raise InputError(f"parameterization must be 'delta' or 'theta', got {parameterization!r}")
    ordered = dict(ordered or {})
    for s in model.statements:
        if s.efa:
            raise InputError(f"line {s.line}: efa() blocks are not supported; write the loadings out")
    kinds = {k for block in model.blocks for k, _ in block}
    if kinds - {"group"}:
        raise InputError(f"the model has {', '.join(sorted(kinds - {'group'}))}: blocks; multilevel and other "
                         "block structures are not supported (only group: blocks)")

    user_stmts = [s for s in model.statements if s.op not in _CON_OPS]
    cons = [s for s in model.statements if s.op in _CON_OPS]
    nblocks = len(model.blocks) if model.blocks else 1
    if model.blocks and nblocks != ngroups:
        raise InputError(f"the syntax defines {nblocks} groups (group: blocks) but the data have {ngroups}")

    # lavaan's option defaults (lav_options_set), from the syntax and the settings.
    all_v = variable_names([s.lhs for s in user_stmts], [s.op for s in user_stmts], [s.rhs for s in user_stmts])
    categorical = bool(all_v["ov_ord"]) or any(v in all_v["ov"] for v in ordered)
    if categorical and ("intercepts" in group_equal or "thresholds" in group_equal):
        # lavaan 0.6-14's lav_options_set: with ordered items, equal thresholds and equal
        # intercepts go together (a continuous variable's intercept is its "threshold")
        group_equal = tuple(dict.fromkeys([*group_equal, "intercepts", "thresholds"]))
    ml = estimator.upper() in ("ML", "MLR", "MLM", "MLMV", "MLMVS", "MLF")
    if conditional_x is None:
        conditional_x = (not ml) and categorical and bool(all_v["ov_x"])
    if fixed_x is None:
        fixed_x = ml or conditional_x
    if conditional_x and not fixed_x:
        raise InputError("fixed_x = False is not supported with conditional_x = True (as in lavaan)")
    if meanstructure is None:
        meanstructure = (ngroups > 1 or missing in ("fiml", "ml", "ml.x") or categorical or conditional_x
                         or "intercepts" in group_equal or "means" in group_equal)
    meanstructure = bool(meanstructure or any(s.op == "~1" for s in user_stmts))
    if auto_fix_first is None:
        auto_fix_first = not std_lv

    opts = dict(meanstructure=meanstructure, int_ov_free=int_ov_free, int_lv_free=int_lv_free, std_lv=std_lv,
                orthogonal=orthogonal, conditional_x=conditional_x, fixed_x=fixed_x, auto_fix_first=auto_fix_first,
                auto_fix_single=auto_fix_single, auto_var=auto_var, auto_cov_lv_x=auto_cov_lv_x,
                auto_cov_y=auto_cov_y, auto_th=auto_th, auto_delta=auto_delta, ordered=ordered,
                parameterization=parameterization)
    if model.blocks:
        rows = _Rows()
        for b in range(1, nblocks + 1):
            part = _flat([s for s in user_stmts if s.block == b], ngroups=1, group_equal=(), **opts)
            for name in ("lhs", "op", "rhs", "user", "mod", "free", "ustart", "exo", "label"):
                getattr(rows, name).extend(getattr(part, name))
            rows.group.extend([b] * len(part))
            rows.block.extend([b] * len(part))
    else:
        rows = _flat(user_stmts, ngroups=ngroups, group_equal=group_equal, **opts)
    _apply_modifiers(rows, ngroups)

    if observed is not None:
        names = set(observed)
        ov = variable_names(rows.lhs, rows.op, rows.rhs, rows.user, rows.exo)["ov"]
        absent = [v for v in ov if v not in names]
        if absent:
            stmt = next((s for s in user_stmts if absent[0] in (s.lhs, s.rhs)), None)
            where = f"line {stmt.line}: " if stmt is not None else ""
            raise InputError(f"{where}observed variable(s) of the model not in the data: {', '.join(absent)}; "
                             "check the spelling or the data's columns")

    n = len(rows)
    ids = list(range(1, n + 1))
    plabel = [f".p{i}." for i in ids]
    base = _equality_labels(rows, ngroups if not model.blocks else nblocks, group_equal, group_partial)
    con_rows: list[tuple[str, str, str, int]] = [(s.lhs, s.op, s.rhs, 1) for s in cons]
    first_seen: dict[str, int] = {}
    order: list[str] = []
    for i, lab in enumerate(base):
        if lab in first_seen:
            if lab not in order:
                order.append(lab)
        else:
            first_seen[lab] = i
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(base):
        by_label.setdefault(lab, []).append(i)
    bounds = any(s.lower or s.upper for s in user_stmts)
    if bounds:
        lower, upper = _bounds(rows, ngroups)
    for lab in order:
        idx = by_label[lab]
        ref = idx[0]
        if bounds:  # lavaan: equal parameters share the loosest finite bounds
            for vec, pick in ((lower, min), (upper, max)):
                finite = [vec[i] for i in idx if np.isfinite(vec[i])]
                if finite:
                    for i in idx:
                        vec[i] = pick(finite)
        fixed = [i for i in idx if rows.free[i] == 0]
        if fixed:
            value = rows.ustart[fixed[0]]
            rows.set(idx, free=0, ustart=value)
        else:
            con_rows += [(plabel[ref], "==", plabel[o], 2) for o in idx[1:]]
            for i in idx:
                if not rows.label[i]:
                    rows.label[i] = plabel[ref]

    k = 0
    free = []
    for f in rows.free:
        if f > 0:
            k += 1
            free.append(k)
        else:
            free.append(0)
    table = pd.DataFrame({
        "id": ids, "lhs": rows.lhs, "op": rows.op, "rhs": rows.rhs, "user": rows.user, "block": rows.block,
        "group": rows.group, "free": free, "ustart": np.array(rows.ustart, dtype=float), "exo": rows.exo,
        "label": rows.label, "plabel": plabel,
    })
    if bounds:
        table["lower"], table["upper"] = lower, upper
    if con_rows:
        con = pd.DataFrame({
            "id": range(n + 1, n + len(con_rows) + 1), "lhs": [c[0] for c in con_rows],
            "op": [c[1] for c in con_rows], "rhs": [c[2] for c in con_rows], "user": [c[3] for c in con_rows],
            "block": 0, "group": 0, "free": 0, "ustart": np.nan, "exo": 0,
            "label": [c[0] if c[1] == ":=" else "" for c in con_rows], "plabel": "",
        })
        if bounds:
            con["lower"], con["upper"] = np.nan, np.nan
        table = pd.concat([table, con], ignore_index=True)
    for col in ("id", "user", "block", "group", "free", "exo"):
        table[col] = table[col].astype(int)
    if model.blocks:  # lavaan: the group column holds the labels of the group: blocks
        labels = [dict(b).get("group", str(k + 1)) for k, b in enumerate(model.blocks)]
        if not all(x.lstrip("-").isdigit() for x in labels):
            table["group"] = [labels[g - 1] if g > 0 else "" for g in table["group"]]
        else:
            table["group"] = [int(labels[g - 1]) if g > 0 else 0 for g in table["group"]]
    table.attrs["group_labels"] = list(groups) if groups is not None else [str(g) for g in range(1, ngroups + 1)]
    table.attrs["lines"] = [s.line if s is not None else 0 for s in rows.mod] + [s.line for s in cons] + [0] * (
        len(con_rows) - len(cons))
    return table


def _flat(stmts: list[Statement], *, ngroups: int, group_equal, meanstructure, int_ov_free, int_lv_free, std_lv,
          orthogonal, conditional_x, fixed_x, auto_fix_first, auto_fix_single, auto_var, auto_cov_lv_x, auto_cov_y,
          auto_th, auto_delta, ordered, parameterization) -> _Rows:
    """One block's rows, as lavaan's ``lav_partable_flat``: the user's rows, then the defaults."""
    # The user's covariances oriented as lavaan (lav_partable_covariance_reorder): the variable
    # earlier in (latents, observed) on the left.
    v0 = variable_names([s.lhs for s in stmts], [s.op for s in stmts], [s.rhs for s in stmts])
    pos = {v: i for i, v in enumerate(_unique(v0["lv"] + v0["ov"]))}
    u_lhs, u_op, u_rhs = [], [], []
    for s in stmts:
        a, b = s.lhs, s.rhs
        if s.op == "~~" and a != b and pos.get(a, 0) > pos.get(b, 0):
            a, b = b, a
        u_lhs.append(a)
        u_op.append(s.op)
        u_rhs.append(b)
    v = variable_names(u_lhs, u_op, u_rhs)
    lv, ov, ov_x, ov_nox = v["lv"], v["ov"], v["ov_x"], v["ov_nox"]
    lv_f = v["lv_formative"]
    ov_ord1 = v["ov_ord"]
    ov_ord2 = [o for o in ordered if o not in ov_x and o in ov]
    ord_set = set(ov_ord1) | set(ov_ord2)
    ov_ord = [o for o in ov if o in ord_set]
    categorical = bool(ov_ord)

    d_lhs: list[str] = []
    d_rhs: list[str] = []
    d_op: list[str] = []
    for o in ov_ord:
        if o in ordered:
            nth = int(ordered[o]) - 1
        else:  # thresholds written in the syntax for an item not declared ordered
            nth = sum(1 for s in stmts if s.op == "|" and s.lhs == o)
        for t in range(1, nth + 1):
            d_lhs.append(o)
            d_rhs.append(f"t{t}")
            d_op.append("|")

    def pairs(names):
        return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]

    cov = [(x, x) for x in ov_nox] + [(x, x) for x in lv]
    if auto_cov_lv_x and len(v["lv_x"]) > 1:
        cov += pairs(v["lv_x"])
    lvov_y = v["lv_y"] + v["ov_y"]
    if auto_cov_y and len(lvov_y) > 1:
        cov += pairs(lvov_y)
    nx = len(ov_x)
    cov += [(ov_x[j], ov_x[i]) for j in range(nx) for i in range(j, nx)]
    for a, b in cov:
        d_lhs.append(a)
        d_rhs.append(b)
        d_op.append("~~")
    for o in ov_ord:
        d_lhs.append(o)
        d_rhs.append(o)
        d_op.append("~*~")
    if meanstructure:
        for x in ov + lv:
            d_lhs.append(x)
            d_rhs.append("")
            d_op.append("~1")

    written = {(a, o, b) for a, o, b in zip(u_lhs, u_op, u_rhs)}
    keep = [i for i in range(len(d_lhs)) if (d_lhs[i], d_op[i], d_rhs[i]) not in written]
    lhs = u_lhs + [d_lhs[i] for i in keep]
    op = u_op + [d_op[i] for i in keep]
    rhs = u_rhs + [d_rhs[i] for i in keep]
    user = [1] * len(u_lhs) + [0] * len(keep)
    mod: list = list(stmts) + [None] * len(keep)
    n = len(lhs)
    r = _Rows(lhs=lhs, op=op, rhs=rhs, user=user, mod=mod, free=[1] * n, ustart=[np.nan] * n, exo=[0] * n,
              label=[""] * n, group=[1] * n, block=[1] * n)
    lv_set, ov_set, ox_set = set(lv), set(ov), set(ov_x)

    if not auto_th:
        r.set(r.where(lambda i: op[i] == "|" and user[i] == 0), free=0)
    if not auto_var:
        r.set(r.where(lambda i: op[i] == "~~" and lhs[i] == rhs[i] and user[i] == 0), free=0, ustart=0.0)
    elif lv_f:
        r.set(r.where(lambda i: op[i] == "~~" and lhs[i] == rhs[i] and lhs[i] in lv_f and user[i] == 0), free=0,
              ustart=0.0)
    if std_lv:
        r.set(r.where(lambda i: op[i] == "~~" and lhs[i] in lv_set and lhs[i] == rhs[i]), free=0, ustart=1.0)
    if auto_fix_first:
        seen: set[str] = set()
        for i in range(n):
            if op[i] == "=~" and lhs[i] not in seen:
                seen.add(lhs[i])
                r.set([i], free=0, ustart=1.0)
    if auto_var and auto_fix_single:
        mm = [i for i in range(n) if op[i] == "=~"]
        counts: dict[str, int] = {}
        for i in mm:
            counts[lhs[i]] = counts.get(lhs[i], 0) + 1
        single_lv = {k for k, c in counts.items() if c == 1}
        rhs_counts: dict[str, int] = {}
        for i in mm:
            rhs_counts[rhs[i]] = rhs_counts.get(rhs[i], 0) + 1
        single = {rhs[i] for i in mm if lhs[i] in single_lv and lhs[i] != rhs[i] and rhs_counts[rhs[i]] == 1}
        r.set(r.where(lambda i: op[i] == "~~" and lhs[i] in single and lhs[i] == rhs[i] and user[i] == 0), free=0,
              ustart=0.0)
    if orthogonal:
        r.set(r.where(lambda i: op[i] == "~~" and lhs[i] in lv_set and rhs[i] in lv_set and lhs[i] != rhs[i]
                      and user[i] == 0), free=0, ustart=0.0)
    if meanstructure:
        if categorical:
            r.set(r.where(lambda i: op[i] == "~1" and lhs[i] in ord_set and user[i] == 0), free=0, ustart=0.0)
        if not int_ov_free:
            r.set(r.where(lambda i: op[i] == "~1" and lhs[i] in ov_set and user[i] == 0), free=0, ustart=0.0)
        if not int_lv_free:
            r.set(r.where(lambda i: op[i] == "~1" and lhs[i] in lv_set and user[i] == 0), free=0, ustart=0.0)
    if not conditional_x and fixed_x and ov_x:
        r.set(r.where(lambda i: op[i] == "~~" and lhs[i] in ox_set and rhs[i] in ox_set and user[i] == 0), free=0,
              ustart=np.nan, exo=1)
        r.set(r.where(lambda i: op[i] == "~1" and lhs[i] in ox_set and user[i] == 0), free=0, ustart=np.nan, exo=1)
    if conditional_x and ov_x:
        nox = set(ov_nox)
        var_idx = r.where(lambda i: op[i] == "~~" and lhs[i] in ox_set and rhs[i] in ox_set and user[i] == 0)
        int_idx = r.where(lambda i: op[i] == "~1" and lhs[i] in ox_set and user[i] == 0)
        reg2 = r.where(lambda i: op[i] in ("~", "<~") and lhs[i] in ox_set and rhs[i] in ox_set)
        if fixed_x:
            r.set(var_idx + int_idx + reg2, free=0, ustart=np.nan)
        r.set(var_idx + int_idx + reg2, exo=1)
        r.set(r.where(lambda i: op[i] in ("~", "<~") and (lhs[i] in lv_set or lhs[i] in nox) and rhs[i] in ox_set),
              exo=1)
    if ov_ord:
        r.set(r.where(lambda i: lhs[i] in ord_set and op[i] == "~~" and user[i] == 0 and lhs[i] == rhs[i]), free=0,
              ustart=1.0)
        r.set(r.where(lambda i: op[i] == "~*~" and user[i] == 0), free=0, ustart=1.0)

    if ngroups > 1:
        base = _Rows(**{k: list(getattr(r, k)) for k in ("lhs", "op", "rhs", "user", "mod", "free", "ustart", "exo",
                                                           "label", "group", "block")})
        for name in ("lhs", "op", "rhs", "user", "mod", "free", "ustart", "exo", "label"):
            setattr(r, name, getattr(base, name) * ngroups)
        r.group = [g for g in range(1, ngroups + 1) for _ in range(n)]
        r.block = list(r.group)
        lhs, op, rhs, user, grp = r.lhs, r.op, r.rhs, r.user, r.group
        for g in range(2, ngroups + 1):
            if meanstructure and not int_lv_free and ("intercepts" in group_equal or "thresholds" in group_equal) \
                    and "means" not in group_equal:
                r.set(r.where(lambda i: op[i] == "~1" and lhs[i] in lv_set and user[i] == 0 and grp[i] == g), free=1,
                      ustart=np.nan)
            if std_lv and "loadings" in group_equal and "lv.variances" not in group_equal:
                r.set(r.where(lambda i: op[i] == "~~" and lhs[i] in lv_set and lhs[i] == rhs[i] and user[i] == 0
                              and grp[i] == g), free=1, ustart=np.nan)
            if "thresholds" in group_equal and any(op[i] == "~*~" and grp[i] == g for i in range(len(r))):
                if auto_delta and parameterization == "delta":
                    r.set(r.where(lambda i: op[i] == "~*~" and grp[i] == g), free=1, ustart=np.nan)
                elif parameterization == "theta":
                    r.set(r.where(lambda i: op[i] == "~~" and grp[i] == g and lhs[i] in ord_set and lhs[i] == rhs[i]),
                          free=1, ustart=np.nan)
    return r


def _apply_modifiers(r: _Rows, ngroups: int) -> None:
    """The syntax's modifiers on its rows (in every group), as lavaanify's MOD loop."""
    where: dict[int, list[int]] = {}
    for i, s in enumerate(r.mod):
        if s is not None and s.modified:
            where.setdefault(id(s), []).append(i)
    for idx in where.values():
        s = r.mod[idx[0]]
        n = len(idx)

        def per_row(vector, scalar, what):
            if vector:
                if len(vector) != n:
                    raise InputError(f"line {s.line}: {s.lhs} {s.op} {s.rhs}: the {what} modifier gives "
                                     f"{len(vector)} values but the model has {n} group(s); give one per group")
                return list(vector)
            return [scalar] * n

        if s.fixed is not None or s.free_override or s.fixed_by_group:
            values = per_row(s.fixed_by_group, None if s.free_override else s.fixed, "c(...)")
            for i, value in zip(idx, values):
                if value is None:
                    r.free[i], r.ustart[i] = 1, np.nan
                else:
                    r.free[i], r.ustart[i] = 0, float(value)
        if s.start is not None or s.start_by_group:
            for i, value in zip(idx, per_row(s.start_by_group, s.start, "start()")):
                r.ustart[i] = float(value)
        if s.label or s.label_by_group:
            for i, value in zip(idx, per_row(s.label_by_group, s.label, "label")):
                r.label[i] = value
        for bound in (s.lower, s.upper):
            if len(bound) > 1:
                per_row(bound, None, "bound")


def _bounds(r: _Rows, ngroups: int) -> tuple[list[float], list[float]]:
    lower, upper = [-np.inf] * len(r), [np.inf] * len(r)
    for i, s in enumerate(r.mod):
        if s is None:
            continue
        k = (r.group[i] - 1) if ngroups > 1 else 0
        if s.lower:
            lower[i] = s.lower[k] if len(s.lower) > 1 else s.lower[0]
        if s.upper:
            upper[i] = s.upper[k] if len(s.upper) > 1 else s.upper[0]
    for i in range(len(r)):
        if r.free[i] == 0:
            lower[i] = upper[i] = r.ustart[i]
    return lower, upper


def _equality_labels(r: _Rows, ngroups: int, group_equal, group_partial) -> list[str]:
    """lavaan's ``lav_partable_labels``: each row's name for equality, ``lhs op rhs`` (``.gK``
    in group K > 1), the group-1 name for rows ``group_equal`` ties, the user's label if any."""
    n = len(r)
    label = [f"{r.lhs[i]}{r.op[i]}{r.rhs[i]}" for i in range(n)]
    for i in range(n):
        if r.group[i] > 1:
            label[i] += f".g{r.group[i]}"
    if ngroups > 1 and group_equal:
        g1 = [i for i in range(n) if r.group[i] == 1]
        v1 = variable_names([r.lhs[i] for i in g1], [r.op[i] for i in g1], [r.rhs[i] for i in g1],
                            [r.user[i] for i in g1], [r.exo[i] for i in g1])
        nox, ords, lvs = set(v1["ov_nox"]), set(v1["ov_ord"]), set(v1["lv"])
        known = {label[i] for i in g1}
        for p in group_partial:
            if p not in known:
                raise InputError(f"group_partial: {p!r} is not a parameter of the model; write it as lavaan does, "
                                 "e.g. 'visual =~ x2' or 'x3 ~ 1'")
        flag = []
        eq = set(group_equal)
        for i in g1:
            o, a, b = r.op[i], r.lhs[i], r.rhs[i]
            f = ((o == "=~" and "loadings" in eq) or (o == "<~" and "composite.loadings" in eq)
                 or (o == "~1" and a in nox and "intercepts" in eq) or (o == "|" and a in ords and "thresholds" in eq)
                 or (o == "~1" and a in lvs and "means" in eq) or (o == "~" and "regressions" in eq)
                 or (o == "~~" and a in nox and a == b and "residuals" in eq)
                 or (o == "~~" and a in nox and a != b and "residual.covariances" in eq)
                 or (o == "~~" and a in lvs and a == b and "lv.variances" in eq)
                 or (o == "~~" and a in lvs and a != b and "lv.covariances" in eq))
            if f and label[i] not in group_partial:
                flag.append(i)
        key = {}
        for i in range(n):
            if r.group[i] > 1:
                key.setdefault((r.lhs[i], r.op[i], r.rhs[i]), []).append(i)
        for i in flag:
            for j in key.get((r.lhs[i], r.op[i], r.rhs[i]), ()):
                label[j] = label[i]
    for i in range(n):
        if r.label[i]:
            label[i] = r.label[i]
    return label
