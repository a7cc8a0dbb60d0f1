"""Writes the inputs of cmv.R: the simulated data cmv.csv (tests/test_cmv.py's ``simulate``, n = 500,
method loading .30, seed 7) for the CFA marker technique, cmv.null.csv (n = 1000, no method factor,
seed 3) for the unmeasured method factor, and cmv.models.json, the lavaan syntax of every model
analysis.cmv fits on them (``marker_*`` on cmv.csv, ``ulmc_*`` on cmv.null.csv).
Run from the repository root: ``python tests/reference/cmv.make.py && Rscript tests/reference/cmv.R``."""
import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from analysis.cmv import marker_technique, unmeasured_method_factor  # noqa: E402
from test_cmv import CONSTRUCTS, MARKER_ITEMS, simulate  # noqa: E402

simulate(500, 0.3, seed=7).to_csv(HERE / "cmv.csv", index=False, float_format="%.10g")
simulate(1000, 0.0, seed=3).to_csv(HERE / "cmv.null.csv", index=False, float_format="%.10g")
marker = marker_technique(pd.read_csv(HERE / "cmv.csv"), CONSTRUCTS, MARKER_ITEMS)
ulmc = unmeasured_method_factor(pd.read_csv(HERE / "cmv.null.csv"), CONSTRUCTS)
models = {**{f"marker_{k}": v for k, v in marker.models.items()}, **{f"ulmc_{k}": v for k, v in ulmc.models.items()}}
(HERE / "cmv.models.json").write_text(json.dumps(models, indent=1) + "\n")
