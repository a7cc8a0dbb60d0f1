"""The one CSV writer of gapscale: every table any stage or ``to_files`` method writes goes
through :func:`write_csv`, so no cell reaches a spreadsheet as a formula (CWE-1236, "CSV
injection"; OWASP's advice: prefix an apostrophe)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["FORMULA_START", "neutralise_cell", "restore_cell", "restore_table", "write_csv"]

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


def restore_cell(value):
    """A cell of a CSV written by :func:`write_csv`, as it was before :func:`neutralise_cell`:
    ``'=~`` -> ``=~`` (lavaan's operators ``=~`` and ``==`` start a formula, so every parameter
    table carries them guarded). Any other value is unchanged. A text that itself began with an
    apostrophe before a formula character cannot be told from a guarded one and loses it."""
    if (isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START)
            and not _PLAIN_NUMBER.match(value[1:])):
        return value[1:]
    return value


def restore_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` read back from a CSV written by :func:`write_csv`, with every guarded text cell
    and column name restored (:func:`restore_cell`): the inverse of the writer's guard, used by
    every reader of a stage's tables."""
    out = df.rename(columns=lambda c: restore_cell(c) if isinstance(c, str) else c)
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.StringDtype):
            values = pd.unique(out[c].dropna())
            if any(isinstance(v, str) and v.startswith("'") for v in values):
                out[c] = out[c].map(restore_cell, na_action="ignore")
    return out


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV (no index, ``\\n`` line ends): the one CSV writer of every stage.

    Text cells and column names that a spreadsheet would run as formulas are neutralised
    (:func:`neutralise_cell`); numeric columns are written as they are. The bytes are those of
    ``df.to_csv(path, index=False, lineterminator="\\n")``: each column's distinct values are
    formatted once as pandas formats them (missing as an empty cell) and the rows go through the
    same :mod:`csv` writer pandas uses, so a large table costs one pass of that writer.
    """
    out = df.rename(columns=lambda c: neutralise_cell(c) if isinstance(c, str) else c)
    text = [c for c in out.columns if not pd.api.types.is_numeric_dtype(out[c].dtype)
            and not pd.api.types.is_bool_dtype(out[c].dtype)]
    copied = False
    for c in text:  # each distinct value checked once; the column mapped only if one changes
        if _needs_neutralising(out[c]):
            if not copied:  # the caller's frame is left as it is (a shallow copy: columns replaced, not changed)
                out, copied = out.copy(deep=False), True
            out[c] = out[c].map(neutralise_cell, na_action="ignore")
    columns = [_cells(out.iloc[:, j]) for j in range(out.shape[1])] if out.columns.is_unique else None
    if columns is None or any(c is None for c in columns) or not len(out.columns) or isinstance(out.columns, pd.MultiIndex):
        out.to_csv(path, index=False, lineterminator="\n")
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([str(c) for c in out.columns])
        step = 100_000
        for first in range(0, len(out), step):
            writer.writerows(zip(*(c[first:first + step] for c in columns)))


def _needs_neutralising(column: pd.Series) -> bool:
    """Whether any distinct text value of ``column`` would start a spreadsheet formula."""
    values = pd.unique(column.dropna())
    try:  # one scan of the distinct texts joined by line feeds for a line starting like a formula
        joined = "\n" + "\n".join(values)
    except TypeError:  # not all text
        joined = None
    if joined is not None and not any("\n" + mark in joined for mark in FORMULA_START):
        return False
    starts = [v for v in values if isinstance(v, str) and v[:1] in FORMULA_START]
    return any(neutralise_cell(v) is not v for v in starts)


def _cells(column: pd.Series) -> np.ndarray | None:
    """The cells of ``column`` as ``DataFrame.to_csv`` writes them (missing: an empty cell, any
    other value its ``str``), formatted once per distinct value; None for
    a dtype this does not cover (datetimes, categoricals, ...: pandas writes those)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        codes, uniques = pd.factorize(column.to_numpy(), use_na_sentinel=True)
        shown = uniques.astype(str).astype(object)
    elif (isinstance(dtype, np.dtype) and dtype.kind in "iubO") or isinstance(
            dtype, (pd.Int64Dtype, pd.Int32Dtype, pd.Int16Dtype, pd.Int8Dtype, pd.BooleanDtype, pd.StringDtype)):
        codes, uniques = pd.factorize(column.to_numpy() if isinstance(dtype, np.dtype) else column.array,
                                      use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object).tolist()
        if dtype == object and uniques and pd.api.types.infer_dtype(uniques, skipna=False) != "string":
            return None  # 1, 1.0 and True are one value to factorize, three to the writer: pandas writes them
        shown = np.array(uniques if dtype == object else [str(v) for v in uniques], dtype=object)
    else:
        return None
    shown = np.append(shown, "")
    return shown[np.where(codes < 0, len(shown) - 1, codes)]
