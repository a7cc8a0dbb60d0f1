"""The one CSV writer of gapscale: every table any stage or ``to_files`` method writes goes
through :func:`write_csv`, so no cell reaches a spreadsheet as a formula (CWE-1236, "CSV
injection"; OWASP's advice: prefix an apostrophe)."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["FORMULA_START", "neutralise_cell", "write_csv"]

# A text cell a spreadsheet would run as a formula (CWE-1236, "CSV injection"): it starts with one
# of these characters. Numbers written as text ("-3", "+1.5e2") are left alone.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)


def neutralise_cell(value):
    """``value`` as written to a CSV: a text cell that would start a spreadsheet formula gets a
    leading apostrophe (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``), as OWASP recommends; any
    other value, and a number written as text, is unchanged. The apostrophe does not itself start
    a formula, so applying this twice changes nothing more."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV (no index, ``\\n`` line ends): the one CSV writer of every stage.

    Text cells and column names that a spreadsheet would run as formulas are neutralised
    (:func:`neutralise_cell`); numeric columns are written as they are.
    """
    out = df.rename(columns=lambda c: neutralise_cell(c) if isinstance(c, str) else c)
    text = [c for c in out.columns if not pd.api.types.is_numeric_dtype(out[c].dtype)
            and not pd.api.types.is_bool_dtype(out[c].dtype)]
    if text:
        out = out.copy()
        for c in text:  # each distinct value checked once; the column mapped only if one changes
            if any(neutralise_cell(v) is not v for v in pd.unique(out[c].dropna())):
                out[c] = out[c].map(neutralise_cell, na_action="ignore")
    out.to_csv(path, index=False, lineterminator="\n")
