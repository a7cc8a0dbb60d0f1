"""Progress bars for long steps: shown in a terminal, quiet in CI logs and pipes.

Analysis functions stay free of I/O: they take an optional ``progress`` callable that they call
with the number of units just finished. A stage makes that callable here::

    with progress_bar(total=2000, desc="bootstrap") as tick:
        result = bootstrap(..., progress=tick)

The bar is drawn only when standard error is a terminal and neither ``CI`` nor
``GAPSCALE_NO_PROGRESS`` is set, so CI logs and ``dvc repro > log`` stay clean.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm

__all__ = ["progress_bar", "progress_enabled"]


def progress_enabled() -> bool:
    """True when a progress bar should be drawn (a terminal, not CI)."""
    if os.environ.get("CI") or os.environ.get("GAPSCALE_NO_PROGRESS"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


@contextmanager
def progress_bar(total: int | None, desc: str) -> Iterator[Callable[[int], None]]:
    """A callable ``tick(k=1)`` that advances a bar of ``total`` units labelled ``desc``."""
    bar = tqdm(total=total, desc=desc, unit="", leave=False, disable=not progress_enabled(), file=sys.stderr)
    try:
        yield lambda k=1: bar.update(k)
    finally:
        bar.close()
