"""gapscale's own error class for bad input.

An ``InputError`` is a problem with what the user gave (a file, a column, a cell, a parameter,
a model that cannot be identified): the command line prints its one-line message and exits with
status 2. It is a ``ValueError``, so library users can catch it as scikit-learn's input errors.
Any other exception is an internal error (a bug): exit status 1, never presented as bad input.
"""
from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input; the message names the file, column, row or key and the value at fault."""
