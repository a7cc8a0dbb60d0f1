"""Input checks shared by the statistics modules (one wording of each problem)."""
from __future__ import annotations

import numpy as np

__all__ = ["check_observed_values"]


def check_observed_values(x: np.ndarray, names: list[str], noun: str = "column",
                          advice: str = "leave it out of columns") -> None:
    """Refuse a column with an infinite value, with no observed value, or with one value only.

    Raises
    ------
    ValueError
        Naming the column (as ``noun``), the row or value at fault, and ``advice``.
    """
    for k, c in enumerate(names):
        values = x[:, k]
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            raise ValueError(f"{noun} {c!r} has an infinite value {values[infinite[0]]} in row {infinite[0] + 1}; "
                             "set it missing or correct it")
        present = values[~np.isnan(values)]
        if len(present) == 0:
            raise ValueError(f"{noun} {c!r} is entirely missing ({len(values)} rows); {advice}")
        if np.all(present == present[0]):
            raise ValueError(f"{noun} {c!r} is constant (every observed value is {present[0]:g}); {advice}")
