"""Shared fixtures: the default instrument, small third-party instruments, a CLI runner."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from instrument import DEFAULT_INSTRUMENT, load_instrument
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]

MINIMAL_LIKERT = """\
name: Example scale
scale: {type: likert, min: 1, max: 7, labels: {1: Strongly disagree, 7: Strongly agree}}
id_column: respondent_id
constructs:
  - id: GAP1
    label: Awareness gap
    items:
      - {id: GAP1_1, text: "...", reverse: false}
"""

# A third-party instrument: continuous scale (test scores), no text anywhere, no extras.
CONTINUOUS = """\
name: Cognitive test battery
scale: {type: continuous}
constructs:
  - id: verbal
    items: [{id: v1}, {id: v2}, {id: v3}, {id: v4}]
  - id: spatial
    items: [{id: s1}, {id: s2}, {id: s3}]
  - id: speed
    items: [{id: p1}, {id: p2}, {id: p3}]
"""


@pytest.fixture(scope="session")
def default_instrument():
    return load_instrument(DEFAULT_INSTRUMENT)


@pytest.fixture(scope="session")
def default_params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def write_yaml(tmp_path):
    """Write text (dedented) to a file in tmp_path and return its path."""

    def _write(text: str, name: str = "instrument.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def run_cli(capsys):
    """Run ``gapscale ARGS`` in-process through the console entry point.

    Returns (exit status, stdout, stderr).
    """

    def _run(*args: str):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return _run
