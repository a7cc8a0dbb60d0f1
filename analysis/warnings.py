"""gapscale's own warning classes: model and estimation problems are warned about, never silenced."""
from __future__ import annotations

__all__ = ["GapscaleWarning", "ConvergenceWarning", "NotPositiveDefiniteWarning"]


class GapscaleWarning(UserWarning):
    """Base class of every warning gapscale raises."""


class ConvergenceWarning(GapscaleWarning):
    """An iterative estimate (EM, an optimiser) stopped at its iteration limit before converging."""


class NotPositiveDefiniteWarning(GapscaleWarning):
    """A correlation matrix was not positive definite and was smoothed (psych::cor.smooth)."""
