r"""Nesting of respondents in organisations: intraclass correlation and design effect.

Respondents of one organisation share its climate, policies and customers, so their answers are
not independent; a standard error that assumes they are is too small by about the square root
of the design effect. :func:`design_effect` reports, per variable (a construct score or an item),
ICC(1) from the one-way random-effects ANOVA, the mean cluster size, the design effect and the
effective sample size.

References
----------
Bliese, P. D. (2000). Within-group agreement, non-independence, and reliability: Implications for
    data aggregation and analysis. In K. J. Klein & S. W. J. Kozlowski (Eds.), Multilevel theory,
    research, and methods in organizations (pp. 349-381). San Francisco: Jossey-Bass.
Kish, L. (1965). Survey sampling. New York: Wiley (section 5.4, the design effect of cluster
    sampling).
Muthén, B. O., & Satorra, A. (1995). Complex sample data in structural equation modeling.
    Sociological Methodology 25, 267-316.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import InputError

__all__ = ["DESIGN_EFFECT_COLUMNS", "construct_means", "design_effect"]

DESIGN_EFFECT_COLUMNS = ["variable", "n", "n_clusters", "mean_cluster_size", "ms_between", "ms_within", "icc1",
                         "design_effect", "n_effective"]


def design_effect(data: pd.DataFrame, columns: list[str], cluster: str) -> pd.DataFrame:
    r"""ICC(1), design effect and effective sample size of each column, respondents nested in ``cluster``.

    For a column, the rows with a value and a cluster are used: :math:`N` rows in :math:`J`
    clusters of sizes :math:`n_j`. With the one-way ANOVA mean squares

    .. math::

        MS_B = \frac{\sum_j n_j (\bar y_j - \bar y)^2}{J - 1}, \qquad
        MS_W = \frac{\sum_j \sum_i (y_{ij} - \bar y_j)^2}{N - J},

    and the mean cluster size :math:`\bar m = N / J`,

    .. math::

        \mathrm{ICC}(1) = \frac{MS_B - MS_W}{MS_B + (\bar m - 1) MS_W}, \qquad
        \mathrm{deff} = 1 + (\bar m - 1)\,\max(\mathrm{ICC}(1), 0), \qquad
        N_\mathrm{eff} = N / \mathrm{deff}.

    ICC(1) is Bliese's (2000) estimator with the mean cluster size, as ``multilevel::ICC1``
    computes it (with unequal sizes the textbook ANOVA estimator uses
    :math:`n_0 = (N - \sum n_j^2 / N) / (J - 1)` instead; the two differ little when sizes vary
    little). The design effect is Kish's (1965) for cluster sampling; a negative ICC(1) (less
    agreement within organisations than between, usually sampling error around 0) gives a design
    effect of 1, not below it.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
        Numeric columns (construct scores or items); missing values are left out per column.
    cluster : str
        The column naming each row's cluster (organisation); rows without one are left out.

    Returns
    -------
    DataFrame
        One row per column, in the given order, with :data:`DESIGN_EFFECT_COLUMNS`: ``variable,
        n, n_clusters, mean_cluster_size, ms_between, ms_within, icc1, design_effect,
        n_effective``. Statistics that need two clusters and more rows than clusters are NaN
        without them.

    Raises
    ------
    InputError
        If ``cluster`` or a column is not in ``data``.

    Notes
    -----
    In R: ``m <- aov(y ~ as.factor(cluster), data = d); multilevel::ICC1(m)`` (and
    ``summary(m)`` for the mean squares).
    """
    missing = [c for c in [cluster, *columns] if c not in data.columns]
    if missing:
        raise InputError(f"design effect: column(s) {', '.join(map(repr, missing))} not in the data")
    groups, _ = pd.factorize(data[cluster].to_numpy(dtype=object), use_na_sentinel=True)
    rows = []
    for col in columns:
        y = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        use = ~np.isnan(y) & (groups >= 0)
        g, y = groups[use], y[use]
        n = len(y)
        sizes = np.bincount(g) if n else np.zeros(0, dtype=np.int64)
        present = sizes > 0
        j = int(present.sum())
        stats = dict.fromkeys(DESIGN_EFFECT_COLUMNS[3:], np.nan)
        if j >= 1:
            stats["mean_cluster_size"] = n / j
        if j >= 2 and n > j:
            means = np.bincount(g, weights=y)[present] / sizes[present]
            ss_between = float(np.sum(sizes[present] * (means - y.mean()) ** 2))
            ss_within = float(np.sum((y - (np.bincount(g, weights=y) / np.maximum(sizes, 1))[g]) ** 2))
            msb, msw = ss_between / (j - 1), ss_within / (n - j)
            m = n / j
            icc = (msb - msw) / (msb + (m - 1) * msw) if msb + (m - 1) * msw > 0 else np.nan
            deff = 1 + (m - 1) * max(icc, 0.0) if np.isfinite(icc) else np.nan
            stats.update(ms_between=msb, ms_within=msw, icc1=icc, design_effect=deff, n_effective=n / deff)
        rows.append({"variable": col, "n": n, "n_clusters": j, **stats})
    return pd.DataFrame(rows, columns=DESIGN_EFFECT_COLUMNS).astype({"n": np.int64, "n_clusters": np.int64})


def construct_means(data: pd.DataFrame, constructs: dict[str, list[str]]) -> pd.DataFrame:
    """Each construct's score: the mean of its answered items (reverse keys already recoded),
    missing when none is answered.

    In R: ``rowMeans(d[, items], na.rm = TRUE)`` (NaN for a row without answers).
    """
    out = {}
    for name, items in constructs.items():
        x = data[list(items)].to_numpy(dtype=float, na_value=np.nan)
        answered = (~np.isnan(x)).sum(axis=1)
        out[name] = np.where(answered > 0, np.nansum(x, axis=1) / np.maximum(answered, 1), np.nan)
    return pd.DataFrame(out, index=data.index)
