"""gapscale's own warning classes: model and estimation problems are warned about, never silenced."""
from __future__ import annotations

__all__ = ["GapscaleWarning", "ConvergenceWarning", "CrossLoadingWarning", "InadmissibleWarning",
           "NotPositiveDefiniteWarning", "ReverseKeyWarning"]


class GapscaleWarning(UserWarning):
    """Base class of every warning gapscale raises."""


class ConvergenceWarning(GapscaleWarning):
    """An iterative estimate (EM, an optimiser) stopped at its iteration limit before converging."""


class NotPositiveDefiniteWarning(GapscaleWarning):
    """A correlation matrix was not positive definite and was smoothed (psych::cor.smooth)."""


class ReverseKeyWarning(GapscaleWarning):
    """An item correlates negatively with its scale (loads negatively on the first component):
    it probably should be reverse-keyed (psych::alpha's "should be reversed" warning)."""


class CrossLoadingWarning(GapscaleWarning):
    """A factor has an indicator that also loads on another factor, so its AVE is undefined
    (semTools::AVE returns NA for it)."""


class InadmissibleWarning(GapscaleWarning):
    """An inadmissible solution: a negative variance (Heywood case), a standardised loading above
    1, or a latent covariance matrix that is not positive definite."""
