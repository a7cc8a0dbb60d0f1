"""Split a sample into an exploratory (EFA) and a confirmatory (CFA) half."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from analysis.errors import InputError

from analysis.errors import InputError

__all__ = ["split_sample", "stage_rng"]


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """The random generator of one pipeline stage: ``seed`` from params.yaml, a stream per stage.

    ``numpy.random.SeedSequence(seed, spawn_key=(crc32(stage),))`` keeps the stages' draws
    independent while one seed governs them all.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(stage.encode()),)))


def split_sample(data: pd.DataFrame, rng: np.random.Generator, share: float = 0.5,
                 stratify: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Randomly split ``data`` into two parts, stratified by a grouping column.

    Within each stratum (missing values form a stratum of their own) ``round(share * n)``
    respondents, drawn at random, go to the first (EFA) part and the rest to the second (CFA)
    part, so both halves keep the strata's proportions. Rows keep their original order.

    Parameters
    ----------
    data : DataFrame
    rng : numpy.random.Generator
    share : float
        Share of each stratum in the first part, in (0, 1).
    stratify : str, optional
        Grouping column (e.g. ``relationship_type``).

    Returns
    -------
    efa, cfa, sizes : DataFrame
        ``sizes`` has one row per stratum: ``stratum, n, n_efa, n_cfa``.

    Raises
    ------
    ValueError
        For a share outside (0, 1), an unknown column, or fewer than 2 rows.
    """
    if not 0 < share < 1:
        raise InputError(f"split share must be in (0, 1), got {share!r}")
    if len(data) < 2:
        raise InputError(f"need at least 2 respondents to split, got {len(data)}")
    if stratify is not None and (not isinstance(stratify, str) or stratify not in data.columns):
        raise InputError(f"stratify column {stratify!r} is not in the data; columns: {', '.join(map(str, data.columns[:15]))}")
    strata = (data[stratify].astype(object).where(data[stratify].notna(), "(missing)")
              if stratify else pd.Series("(all)", index=data.index))
    first = np.zeros(len(data), dtype=bool)
    sizes = []
    for value in sorted(strata.unique(), key=str):
        members = np.flatnonzero((strata == value).to_numpy())
        k = int(round(share * len(members)))
        first[rng.permutation(members)[:k]] = True
        sizes.append((str(value), len(members), k, len(members) - k))
    table = pd.DataFrame(sizes, columns=["stratum", "n", "n_efa", "n_cfa"])
    return data[first].reset_index(drop=True), data[~first].reset_index(drop=True), table
