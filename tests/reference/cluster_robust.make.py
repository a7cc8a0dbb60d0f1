"""Make cluster_robust.csv: a two-factor CFA with respondents nested in 40 organisations.

python tests/reference/cluster_robust.make.py (from the repository root); then Rscript cluster_robust.R.
Factors with ICC .2 (sqrt(.8) individual + sqrt(.2) organisation parts), organisation effects on
the items' residuals too, and a covariate x with an organisation part.
"""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261202)
nc = 40
sizes = rng.integers(3, 20, size=nc)
org = np.repeat(np.arange(nc), sizes)
n = len(org)
icc = 0.2
chol = np.linalg.cholesky(np.array([[1, .4], [.4, 1]]))
u = rng.standard_normal((nc, 2)) @ chol.T
e = rng.standard_normal((n, 2)) @ chol.T
eta = np.sqrt(1 - icc) * e + np.sqrt(icc) * u[org]
cols = {}
for f in range(2):
    for k, lam in enumerate([.8, .7, .6]):
        resid = 0.9 * rng.standard_normal(n) + np.sqrt(0.19) * rng.standard_normal(nc)[org]
        cols[f"y{f * 3 + k + 1}"] = np.round(lam * eta[:, f] + np.sqrt(1 - lam * lam) * resid, 4)
d = pd.DataFrame(cols)
d.insert(0, "org", [f"o{j:02d}" for j in org])
d["x"] = np.round(rng.standard_normal(n) + 0.5 * rng.standard_normal(nc)[org], 4)
d.to_csv(Path(__file__).with_name("cluster_robust.csv"), index=False)
