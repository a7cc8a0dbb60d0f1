"""Input checks shared by the statistics modules (one wording of each problem)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from analysis.errors import InputError

__all__ = ["check_known_keys", "check_observed_values", "numeric_columns"]


def check_known_keys(mapping, known, where: str) -> None:
    """Refuse a key of a settings mapping (params.yaml section, hypotheses entry) that is not in
    ``known``: one ``InputError`` naming the first such key by its path, ``<where>.<key>: unknown
    key; known keys are a, b, c`` (``known`` listed in the order given)."""
    for key in mapping:
        if key not in known:
            raise InputError(f"{where}.{key}: unknown key; known keys are {', '.join(str(k) for k in known)}")


def check_observed_values(x: np.ndarray, names: list[str], noun: str = "column",
                          advice: str = "leave it out of columns") -> None:
    """Refuse a column with an infinite value, with no observed value, or with one value only.

    Raises
    ------
    ValueError
        Naming the column (as ``noun``), the row or value at fault, and ``advice``.
    """
    if x.size:  # the common case, every column fine, in whole-array operations
        with np.errstate(invalid="ignore"):
            observed = ~np.isnan(x)
            finite = ~np.isinf(x).any(axis=0) & observed.any(axis=0)
            spread = np.fmax.reduce(x, axis=0, initial=-np.inf, where=observed) > np.fmin.reduce(
                x, axis=0, initial=np.inf, where=observed)
        if bool(np.all(finite & spread)):
            return
    for k, c in enumerate(names):
        values = x[:, k]
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            raise InputError(f"{noun} {c!r} has an infinite value {values[infinite[0]]} in row {infinite[0] + 1}; "
                             "set it missing or correct it")
        present = values[~np.isnan(values)]
        if len(present) == 0:
            raise InputError(f"{noun} {c!r} is entirely missing ({len(values)} rows); {advice}")
        if np.all(present == present[0]):
            raise InputError(f"{noun} {c!r} is constant (every observed value is {present[0]:g}); {advice}")


def numeric_columns(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``data[columns]`` as numbers; a value that is not a number is refused.

    Raises
    ------
    ValueError
        Naming the first such column, its value and its row (1-based).
    """
    x = data[columns].apply(pd.to_numeric, errors="coerce")
    for c in columns:
        bad = (x[c].isna() & data[c].notna()).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"column {c!r} is not numeric: {data[c].iloc[row]!r} in row {row + 1}")
    return x
