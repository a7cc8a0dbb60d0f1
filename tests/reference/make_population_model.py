"""Write the default population model as lavaan syntax for the R reference script.

Run from the repository root: python tests/reference/make_population_model.py
"""
from pathlib import Path

import numpy as np
import yaml

from analysis.simulate import parse_simulation_params, population_model
from instrument import DEFAULT_INSTRUMENT, load_instrument

here = Path(__file__).parent
params = yaml.safe_load(Path("params.yaml").read_text())
pop = population_model(load_instrument(DEFAULT_INSTRUMENT), parse_simulation_params(params["simulate"]),
                       np.random.default_rng(params["seed"]))
(here / "population_model.lavaan").write_text(pop.to_lavaan())
