"""Small, shared file helpers for the stages: deterministic writers and the params reader."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

__all__ = ["output_dir", "read_params", "write_csv", "write_json", "write_text"]


def output_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) for a stage's outputs; a clear error if it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: --out must be a directory, but a file of that name exists")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{path}: cannot create the output directory ({exc.strerror})") from None
    return path


def read_params(path: str | Path | None) -> dict:
    """Read a params YAML file (``params.yaml``); ``None`` gives an empty mapping."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ValueError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ValueError(f"{path}: YAML syntax error{where}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of parameters at the top level")
    return data


def write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")


def write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")
