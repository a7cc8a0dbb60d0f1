"""How a model is estimated: the estimator, the missing-data method, the ordered items and
``std.lv``, checked once for every command that fits a model (``cfa``, ``sem``, ``invariance``).

lavaan's combinations: ML and MLR take complete cases (``missing = "listwise"``) or every case by
full-information ML (``missing = "ml"``, here ``"fiml"``); MLM (Satorra-Bentler) needs complete
data; WLSMV and ULSMV are for ordered items (thresholds and polychoric correlations) and take
complete cases, or ``missing = "pairwise"`` (each polychoric on the cases answering both items).
Ordered items need WLSMV or ULSMV. ``ordered = "all"`` is lavaan's ``ordered = TRUE``: every
observed variable of the model that is not an exogenous covariate.

In R: ``lavaan::sem(model, data, estimator = "MLR", missing = "ml", ordered = c(...),
std.lv = TRUE)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.errors import InputError
from analysis.sem.partable import lavaanify

__all__ = ["ESTIMATORS", "MISSING", "ORDINAL", "Estimation", "ordered_columns", "parse_ordered"]

ESTIMATORS = ("ML", "MLR", "MLM", "WLSMV", "ULSMV")
ORDINAL = ("WLSMV", "ULSMV")
MISSING = ("listwise", "fiml", "pairwise")
# Estimators that take no missing-data method but complete cases (or pairwise), and why.
COMPLETE_ONLY = {
    "MLM": "its Satorra-Bentler test needs complete data, as lavaan's",
    "WLSMV": "lavaan's WLSMV takes complete cases (listwise) or pairwise",
    "ULSMV": "lavaan's ULSMV takes complete cases (listwise) or pairwise",
}


def parse_ordered(value, where: str = "ordered") -> tuple[str, ...]:
    """The ordered items of a setting: ``None``/``False``/empty for none, ``True`` or ``"all"``
    for all (``("all",)``), a list of column names or a comma-separated string of them.

    Raises
    ------
    InputError
        Anything else (the message names ``where``, the option or params key).
    """
    if value is None or value is False or (isinstance(value, (str, list, tuple)) and len(value) == 0):
        return ()
    if value is True or (isinstance(value, str) and value.strip().lower() == "all"):
        return ("all",)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{where}: 'all' or a list of column names (on the command line comma-separated, e.g. "
                         f"--ordered A1,A2), got {value!r}"[:300])
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class Estimation:
    """An estimator with its missing-data method, ordered items and std.lv, checked.

    ``ordered`` is ``()`` (none), ``("all",)`` or column names. With WLSMV/ULSMV and no ordered
    items, every item is ordered (lavaan's ``ordered = TRUE``).

    Raises
    ------
    InputError
        An unknown estimator or missing-data method, or a combination lavaan does not fit: MLM,
        WLSMV or ULSMV with FIML, pairwise with an ML-family estimator, ordered items with a
        normal-theory estimator; ``std_lv`` not a boolean.
    """

    estimator: str = "ML"
    missing: str = "listwise"
    ordered: tuple = ()
    std_lv: bool = False

    def __post_init__(self):
        if not isinstance(self.estimator, str) or self.estimator.upper() not in ESTIMATORS:
            raise InputError(f"estimator: {self.estimator!r} is not available; use {', '.join(ESTIMATORS)}")
        est = self.estimator.upper()
        object.__setattr__(self, "estimator", est)
        if self.missing not in MISSING:
            raise InputError(f"missing: {self.missing!r} is not available; use {', '.join(MISSING)}")
        object.__setattr__(self, "ordered", parse_ordered(self.ordered))
        if not isinstance(self.std_lv, bool):
            raise InputError(f"std_lv: true or false, got {self.std_lv!r}")
        if est in ORDINAL and not self.ordered:
            object.__setattr__(self, "ordered", ("all",))
        if self.ordered and est not in ORDINAL:
            raise InputError(f"ordered: ordered items need estimator {' or '.join(ORDINAL)} (thresholds and "
                             f"polychoric correlations), got {est}; use --estimator WLSMV, or leave --ordered out to "
                             "treat the items as continuous")
        if self.missing == "fiml" and est in COMPLETE_ONLY:
            raise InputError(f"missing: 'fiml' is not available with estimator {est}: {COMPLETE_ONLY[est]}; use "
                             f"--missing listwise with {est}, or --estimator ML or MLR with fiml")
        if self.missing == "pairwise" and est not in ORDINAL:
            raise InputError(f"missing: 'pairwise' is for WLSMV and ULSMV (polychorics pair by pair), got {est}; "
                             "use fiml or listwise")

    @property
    def ordinal(self) -> bool:
        return self.estimator in ORDINAL

    def ordered_columns(self, model, data: pd.DataFrame) -> list[str] | None:
        """The ordered columns for :func:`analysis.sem.api.fit_model` (None when not ordinal)."""
        return ordered_columns(self.ordered, model, data) if self.ordinal else None


def ordered_columns(ordered: tuple, model, data: pd.DataFrame) -> list[str]:
    """The ordinal columns: the names given (each must be a data column), or for ``("all",)``
    every observed variable of ``model`` that is not an exogenous covariate (lavaan's
    ``ordered = TRUE``: indicators and observed outcomes).

    Raises
    ------
    InputError
        A named column not in the data.
    """
    if not ordered:
        return []
    if tuple(ordered) != ("all",):
        absent = [v for v in ordered if v not in data.columns]
        if absent:
            raise InputError(f"ordered: column(s) {', '.join(map(str, absent))} not found in the data")
        return list(ordered)
    pt = lavaanify(model, list(data.columns))
    variances = pt[(pt["op"] == "~~") & (pt["lhs"] == pt["rhs"])]
    exogenous = set(variances.loc[variances["exo"] == 1, "lhs"])
    latents = set(pt.loc[pt["op"].isin(("=~", "<~")), "lhs"])
    return [v for v in dict.fromkeys(variances["lhs"]) if v in data.columns and v not in exogenous
            and v not in latents]
