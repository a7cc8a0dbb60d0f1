"""Read a survey export into a table of raw cells, whatever its format.

Formats, chosen by file extension:

``.csv`` / ``.txt``  delimited text; the delimiter (comma, semicolon, tab) is detected from the
                     header line, UTF-8 with or without BOM unless ``encoding`` is given
``.tsv``             tab-delimited text
``.sav``             SPSS (pyreadstat); value labels are kept as numbers, the labels are ignored
``.xlsx``            Excel (openpyxl), first sheet unless ``sheet`` is given

Qualtrics CSV exports are recognised by their ImportId header row (``{"ImportId":"QID1"}``):
the header rows under the column names (question text, ImportId) are dropped, and
``ResponseId`` / ``Duration (in seconds)`` stand in for the id and duration columns (see
:func:`analysis.clean.prepare`).

Every cell comes back as text (missing when empty, surrounding white space removed) so that no
value is changed before the clean stage sees it: each column is a pandas ``Categorical`` of its
distinct texts (in order of first appearance), a byte or two a cell however many rows. Numbers
from SPSS and Excel are written without a trailing ``.0``. SPSS
user-missing codes (e.g. 98/99 declared missing in the .sav) are kept as their codes and listed
in ``declared_missing``, so the clean stage sets each such cell missing *and logs it*.

A CSV cell may be as long as the file (the csv module's 131,072-character limit is lifted while
reading: a long free-text answer is not an error); the clean stage cuts long values in its logs.
A cell that is not valid CSV (an unclosed quote swallowing the rest of the file, a NUL byte) is
an input error naming the line.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError

__all__ = ["RawTable", "read_export"]


@dataclass(frozen=True)
class RawTable:
    """Cells of an export as text, with what was learned while reading it.

    ``row`` numbers in messages are 1-based data rows (the first respondent is row 1), after
    any header rows.
    """

    cells: pd.DataFrame
    path: Path
    format: str
    qualtrics: bool = False
    header_rows: int = 1
    delimiter: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # column -> ((lo, hi), ...): values the file itself declares missing (SPSS user-missing)
    declared_missing: dict = field(default_factory=dict)


def read_export(path: str | Path, encoding: str | None = None, sheet: str | None = None) -> RawTable:
    """Read ``path`` into a :class:`RawTable`.

    Raises
    ------
    ValueError
        One line naming the file and what is wrong: not found, empty, cannot be decoded (with
        the byte and a suggested ``--encoding``), no header, no data rows, duplicated column
        names, an unknown extension.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty; export the responses again")
    ext = path.suffix.lower()
    if ext in (".csv", ".txt", ".tsv"):
        table = _read_text(path, encoding, tab=ext == ".tsv")
    elif ext == ".sav":
        table = _read_sav(path)
    elif ext == ".xlsx":
        table = _read_xlsx(path, sheet)
    else:
        raise InputError(f"{path}: unknown file type {ext!r}; use .csv, .tsv, .sav or .xlsx")
    if table.cells.empty:
        raise InputError(f"{path}: the file has a header but no responses")
    return table


def _columns(path: Path, names: list) -> list[str]:
    out = []
    for k, name in enumerate(names, start=1):
        name = "" if name is None else str(name).strip()
        if not name:
            raise InputError(f"{path}: column {k} has no name in the header row")
        out.append(name)
    seen = {}
    for k, name in enumerate(out, start=1):
        if name in seen:
            raise InputError(f"{path}: column name {name!r} appears twice (columns {seen[name]} and {k}); "
                             "rename one so every column is unique")
        seen[name] = k
    return out


def _read_text(path: Path, encoding: str | None, tab: bool) -> RawTable:
    raw = path.read_bytes()
    enc = encoding or "utf-8-sig"
    try:
        text = raw.decode(enc)
    except LookupError:
        raise InputError(f"{path}: unknown encoding {encoding!r}; use a name such as utf-8, latin-1 or cp1252") from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = "pass --encoding with the file's encoding (e.g. --encoding latin-1 or cp1252)"
        raise InputError(f"{path}: not valid {enc.replace('-sig', '')} text at byte {exc.start} (line {line}); {hint}") from None
    if encoding and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        text = text.lstrip("\ufeff")
    if "\x00" in text:
        raise InputError(f"{path}: the file holds NUL bytes; is it UTF-16 or a binary file? Pass --encoding utf-16 if so")
    if not text or text.isspace():
        raise InputError(f"{path}: the file is empty; export the responses again")
    header = _first_line(text)
    if tab:
        delimiter = "\t"
    else:
        counts = {d: header.count(d) for d in (",", ";", "\t")}
        delimiter = max(counts, key=counts.get) if max(counts.values()) > 0 else ","
    cells = _unquoted_cells(path, text, delimiter) if '"' not in text else None
    if cells is None:
        cells = _csv_cells(path, text, delimiter)
    notes = []
    if delimiter != ",":
        notes.append(f"read as {_name(delimiter)}-delimited")
    qualtrics, header_rows = False, 1
    if len(cells) >= 2 and _is_import_id_row(cells.iloc[1]):
        cells = cells.iloc[2:].reset_index(drop=True)
        qualtrics, header_rows = True, 3
        notes.append("Qualtrics export: dropped 2 header rows (question text, ImportId)")
    elif len(cells) >= 1 and _is_import_id_row(cells.iloc[0]):
        cells = cells.iloc[1:].reset_index(drop=True)
        qualtrics, header_rows = True, 2
        notes.append("Qualtrics export: dropped 1 header row (ImportId)")
    return RawTable(cells, path, "csv", qualtrics, header_rows, delimiter, tuple(notes))


def _csv_cells(path: Path, text: str, delimiter: str) -> pd.DataFrame:
    """The cells of ``text`` by the csv module (the reference reader: strict quoting, the
    messages naming the line), rows without any content dropped, short rows padded."""
    rows = _csv_rows(path, text, delimiter)
    rows = [r for r in rows if any(c.strip() for c in r)]
    names = _columns(path, rows[0])
    body = rows[1:]
    for k, r in enumerate(body, start=1):
        if len(r) > len(names):
            extra = [c for c in r[len(names):] if c.strip()]
            if extra:
                raise InputError(f"{path}: row {k} has {len(r)} cells but the header has {len(names)} columns; "
                                 f"check the delimiter ({_name(delimiter)}) and quoting")
    width = len(names)
    body = [r if len(r) == width else (r + [""] * width)[:width] for r in body]
    columns = [_text_column(np.asarray(column, dtype=object)) for column in zip(*body)] if body else \
        [_text_column(np.empty(0, dtype=object)) for _ in names]
    return _frame(columns, names)


_BLOCK_ROWS = 100_000  # rows the C parser holds as strings at a time


def _unquoted_cells(path: Path, text: str, delimiter: str) -> pd.DataFrame | None:
    """The same cells as :func:`_csv_cells` for a text without any quote character, by pandas'
    C parser (a million rows in seconds), or None when that parser cannot take the file as a
    rectangle (a row longer than the first line, ...): then :func:`_csv_cells` reads it and
    reports what is wrong. Without quotes a CSV row is its line split at the delimiter, which both
    readers do alike.

    The parser's strings live one block of rows at a time: each block's column is factorized
    (its distinct texts stripped once) and kept as integer codes, so a million rows of answers
    cost a byte or two a cell, not a Python object."""
    blocks = []  # per block of rows, per column: (codes, distinct stripped texts)
    try:
        # the text as UTF-8 bytes (a StringIO would hold 4 bytes a character), decoded again by the parser
        for frame in pd.read_csv(io.BytesIO(text.encode("utf-8")), encoding="utf-8", sep=delimiter, header=None,
                                 dtype=object, na_filter=False, keep_default_na=False, skip_blank_lines=False,
                                 quoting=csv.QUOTE_NONE, engine="c", chunksize=_BLOCK_ROWS):
            if frame.shape[1] == 0 or (blocks and frame.shape[1] != len(blocks[0])):
                return None
            blocks.append([_codes(frame[c].to_numpy(dtype=object)) for c in frame.columns])
            del frame
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):  # not a rectangle: the reference reader decides
        return None
    if not blocks:
        return None
    columns = []  # per column: (codes over all rows, distinct texts)
    for j in range(len(blocks[0])):  # one column's blocks joined (and freed) at a time
        parts = [block[j] for block in blocks]
        for block in blocks:
            block[j] = None
        texts, ids = pd.factorize(np.concatenate([np.append(t, None) for _c, t in parts]), use_na_sentinel=True)
        ids = np.asarray(ids, dtype=object)
        start, codes = 0, []
        for c, t in parts:  # each block's codes into the column's distinct texts (the block's -1 is its last slot)
            codes.append(texts[start:start + len(t) + 1][c])
            start += len(t) + 1
        columns.append((_small(np.concatenate(codes)), ids))
    del blocks
    content = np.zeros(len(columns[0][0]), dtype=bool)
    for c, _t in columns:
        content |= c >= 0
    rows = np.flatnonzero(content)
    if not len(rows):
        return None
    header = [t[c[rows[0]]] if c[rows[0]] >= 0 else "" for c, t in columns]
    names = _columns(path, header)
    body = rows[1:]
    return _frame([_categorical(c[body], t) for c, t in columns], names)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column's cells as (codes, distinct texts): surrounding white space removed, an empty
    cell -1; each distinct text is stripped once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [v.strip() if isinstance(v, str) and v.strip() else None for v in uniques]
    keys, ids = pd.factorize(np.array(texts + [None], dtype=object), use_na_sentinel=True)
    # keys: each distinct raw text's position in ids (-1 for empty; the last slot is factorize's -1)
    return _small(keys[codes]), np.asarray(ids, dtype=object)


def _small(codes: np.ndarray) -> np.ndarray:
    """``codes`` in the smallest signed integer type that holds them."""
    top = int(codes.max()) if len(codes) else 0
    for kind in (np.int8, np.int16, np.int32):
        if top < np.iinfo(kind).max:
            return codes.astype(kind, copy=False)
    return codes


def _categorical(codes: np.ndarray, texts: np.ndarray) -> pd.Categorical:
    """Codes into ``texts`` (-1: empty) as a categorical column whose categories are the texts
    that occur, in order of first appearance (the same column whichever reader made it)."""
    used = codes >= 0
    order, first = pd.factorize(codes[used], use_na_sentinel=True)
    out = np.full(len(codes), -1, dtype=order.dtype)
    out[used] = order
    return pd.Categorical.from_codes(_small(out), categories=pd.Index(texts[first], dtype=object))


def _text_column(values: np.ndarray) -> pd.Categorical:
    """Raw cells (text or None) as the categorical column of stripped texts the readers return."""
    return _categorical(*_codes(values))


def _frame(columns: list, names: list[str]) -> pd.DataFrame:
    cells = pd.DataFrame(dict(enumerate(columns)))
    cells.columns = names
    return cells


def _first_line(text: str) -> str:
    """``text.splitlines()[0]`` without splitting the whole text (a file of a million lines)."""
    size = 1 << 16
    while True:
        lines = text[:size].splitlines()
        if len(lines) > 1 or size >= len(text):
            return lines[0] if lines else ""
        size *= 16


def _csv_rows(path: Path, text: str, delimiter: str) -> list[list[str]]:
    """All rows of ``text``; a cell may be as long as the text itself."""
    limit = csv.field_size_limit()
    # strict: a quote that is never closed (it would swallow every row after it) is an error
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        csv.field_size_limit(max(limit, len(text) + 1))
        return list(reader)
    except csv.Error as exc:
        raise InputError(f"{path}: not valid CSV at line {reader.line_num} ({exc}); check the quoting "
                         "(an unclosed quote runs to the end of the file)") from None
    finally:
        csv.field_size_limit(limit)


def _is_import_id_row(row: pd.Series) -> bool:
    hits = 0
    for v in row:
        if isinstance(v, str) and v.startswith("{") and "ImportId" in v:
            try:
                json.loads(v)
                hits += 1
            except json.JSONDecodeError:
                pass
    return hits >= max(1, len(row) // 2)


def _name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))


def _as_text(v) -> str | None:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    return s or None


def _read_sav(path: Path) -> RawTable:
    try:
        import pyreadstat
    except ImportError:  # pragma: no cover - a dependency of gapscale
        raise InputError("reading .sav files needs pyreadstat: pip install pyreadstat") from None
    try:
        df, meta = pyreadstat.read_sav(str(path), apply_value_formats=False, user_missing=True)
    except Exception as exc:  # pyreadstat raises its own ReadstatError types
        raise InputError(f"{path}: cannot be read as an SPSS file ({exc})") from None
    names = _columns(path, list(df.columns))
    cells = _frame([_text_column(np.array([_as_text(v) for v in df[c]], dtype=object)) for c in df.columns], names)
    labelled = sorted(meta.variable_value_labels)
    notes = [f"SPSS file: {len(labelled)} variables with value labels read as their numeric codes"] if labelled else []
    declared = {}
    for name, col in zip(names, df.columns):
        ranges = (getattr(meta, "missing_ranges", None) or {}).get(col) or []
        spec = tuple((r["lo"], r["hi"]) for r in ranges if isinstance(r, dict) and "lo" in r and "hi" in r)
        if spec:
            declared[name] = spec
    if declared:
        notes.append(f"SPSS file: {len(declared)} variables declare user-missing codes; those cells are set "
                     "missing and logged")
    return RawTable(cells, path, "sav", notes=tuple(notes), declared_missing=declared)


def _read_xlsx(path: Path, sheet: str | None) -> RawTable:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a dependency of gapscale
        raise InputError("reading .xlsx files needs openpyxl: pip install openpyxl") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException ...
        raise InputError(f"{path}: cannot be read as an Excel .xlsx file ({type(exc).__name__})") from None
    if sheet is not None and sheet not in book.sheetnames:
        raise InputError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}")
    ws = book[sheet] if sheet else book.worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    book.close()
    rows = [r for r in rows if any(_as_text(c) is not None for c in r)]
    if not rows:
        raise InputError(f"{path}: the sheet {ws.title!r} is empty")
    names = _columns(path, rows[0])
    body = [[_as_text(c) for c in (list(r) + [None] * len(names))[: len(names)]] for r in rows[1:]]
    columns = [np.array([r[j] for r in body], dtype=object) for j in range(len(names))]
    return RawTable(_frame([_text_column(c) for c in columns], names), path, "xlsx")
