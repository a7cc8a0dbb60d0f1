"""gapscale's structural equation modelling engine (CFA as the special case), as lavaan fits it.

The map of the package, in the order a model flows through it:

- ``single``: the single-group engine as it stands (parameter table, model matrices, ML/FIML/MLR
  estimation, standard errors, standardisation, modification indices, residuals). It is being
  split into the modules below, which every estimator and the multi-group and ordinal fits
  will share (issue 11: one engine for the full lavaan model class).
- ``fit``: every fit index (lavaan's ``fitMeasures``), pure functions of the statistics each
  estimator produces, in one place.

Public names are re-exported here, so callers write ``from analysis.sem import fit_sem``.
"""
from analysis.sem.single import (PARAMETER_COLUMNS, InadmissibleWarning, ParameterTable, SEMFit, fit_sem,
                                 modification_indices, parameter_table, standardized_residuals)

__all__ = ["PARAMETER_COLUMNS", "InadmissibleWarning", "ParameterTable", "SEMFit", "fit_sem",
           "modification_indices", "parameter_table", "standardized_residuals"]
