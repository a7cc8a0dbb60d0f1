"""Small, shared file helpers for the stages: deterministic writers and the params reader."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.csvfile import neutralise_cell, restore_table, write_csv
from analysis.checks import check_known_keys
from analysis.errors import InputError
from instrument.safe_yaml import read_yaml

__all__ = ["is_simulated", "output_dir", "read_data", "read_params", "read_seed", "read_table", "section",
           "write_csv", "write_json", "write_text"]


def output_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) for a stage's outputs; a clear error if it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: --out must be a directory, but a file of that name exists")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the output directory ({exc.strerror})") from None
    return path


def read_params(path: str | Path | None) -> dict:
    """Read a params YAML file (``params.yaml``) with gapscale's safe YAML reader (no aliases, size and
    depth capped); ``None`` gives an empty mapping."""
    if path is None:
        return {}
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of parameters at the top level")
    return data


def read_seed(params: dict, override=None) -> int:
    """The random seed: ``override`` (the command line's ``--seed``) or params' ``seed`` (default 0),
    a whole number >= 0, or an InputError naming the key."""
    seed = params.get("seed", 0) if override is None else override
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        where = "--seed" if override is not None else "seed"
        raise InputError(f"{where}: need a whole number >= 0, got {seed!r}"[:300])
    return seed


def write_json(obj, path: Path) -> None:
    """Write ``obj`` as JSON; JSON has no NaN or infinity, so a non-finite number (a statistic
    that could not be computed) is written as null, and numpy scalars as plain numbers."""
    path.write_text(json.dumps(_plain(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def section(params: dict, name: str, defaults: dict, overrides: dict) -> dict:
    """A stage's settings: ``params[name]`` over ``defaults``, then command-line ``overrides``
    (those that are not None). Unknown keys are refused with the key named."""
    raw = params.get(name) or {}
    if not isinstance(raw, dict):
        raise InputError(f"{name}: expected a mapping, got {raw!r}")
    check_known_keys(raw, list(defaults), name)
    return {**defaults, **raw, **{k: v for k, v in overrides.items() if v is not None}}


def read_data(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a stage's input CSV (clean data, a split half); a clear error if it is not one."""
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({type(exc).__name__}: {exc})") from None


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a table a stage wrote (parameters, fit, ...) with the spreadsheet guard of the CSV
    writer taken off (:func:`analysis.csvfile.restore_table`: ``'=~`` -> ``=~``); an empty file
    is an empty table, an unreadable one an InputError asking to rerun the stage that writes it."""
    try:
        return restore_table(pd.read_csv(path, **kwargs))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({type(exc).__name__}: {exc}); rerun the stage that "
                         "writes it") from None


def is_simulated(data: pd.DataFrame) -> bool:
    """True when every row carries the simulation's ``simulated = 1`` mark."""
    return bool("simulated" in data.columns and len(data) and (data["simulated"].astype(str) == "1").all())


def estimation_settings(s: dict, stage: str) -> dict:
    """A stage's ``estimator``, ``missing``, ``ordered`` and ``std_lv`` settings checked as one
    :class:`analysis.sem.options.Estimation` (messages ``STAGE.KEY: ...``, exit status 2).
    Returns the normalised keys and ``estimation``, the object the stage fits with; ``ordered``
    is ``"all"``, a list of columns or ``[]`` (as the metrics report it)."""
    from analysis.sem.options import Estimation, parse_ordered

    try:
        e = Estimation(s["estimator"], s["missing"], parse_ordered(s["ordered"]), s["std_lv"])
    except InputError as exc:
        raise InputError(f"{stage}.{exc}") from None
    ordered = "all" if e.ordered == ("all",) else list(e.ordered)
    return {"estimator": e.estimator, "ordered": ordered, "estimation": e}
