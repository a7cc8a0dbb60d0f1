"""Context questions as numeric model columns: how a control variable reaches a model.

A categorical answer (``role``: management / employee) cannot enter a regression as text. The
instrument says how each context question is coded for models (``coding`` in its ``context``
entry, see :mod:`instrument.schema`), and :func:`code_context` adds those columns to a data
frame; the clean stage writes them beside the answers, so every later stage (``sem --model``
with ``VCC ~ role_management + org_size_code + experience_years``) finds them in the data:

``dummy``    one 0/1 column per value except the reference category, ``<id>_<value>``
             (treatment coding: each coefficient is the difference from the reference);
``ordinal``  one column ``<id>_code`` = 1, 2, ..., k in the order the instrument lists the values
             (a linear trend over ordered bands, such as organisation size);
``numeric``  an integer or number answer, used as it is (its own column; nothing is added).

A missing answer is missing in every coded column (FIML or listwise deletion then treat the
respondent as any model does with a missing covariate). The same function codes the simulated
study's context answers for their true effects (:mod:`analysis.simulate`), so the data and the
population agree by construction.

In R: ``model.matrix(~ relevel(factor(role), ref = "employee"))[, -1]`` for a dummy, and
``as.integer(factor(org_size, levels = values))`` for an ordinal code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from instrument.schema import Instrument, dummy_column

__all__ = ["code_context", "coded_values"]


def coded_values(question, answers) -> dict[str, np.ndarray]:
    """The model columns of one context question (:attr:`ContextQuestion.model_columns`) from
    its ``answers``: name -> float array (NaN where the answer is missing or not an allowed
    value). A ``numeric`` question gives its own column back as numbers."""
    answers = pd.Series(answers, dtype=object).reset_index(drop=True)
    if question.coding is None or question.personal:
        return {}
    if question.coding == "numeric":
        return {question.id: pd.to_numeric(answers, errors="coerce").to_numpy(dtype=float)}
    text = answers.map(_as_text)
    known = text.isin([str(v) for v in question.values]).to_numpy()
    if question.coding == "ordinal":
        rank = {str(v): k for k, v in enumerate(question.values, start=1)}
        return {f"{question.id}_code": np.where(known, text.map(rank).to_numpy(dtype=float, na_value=np.nan), np.nan)}
    return {dummy_column(question.id, v): np.where(known, (text == str(v)).to_numpy(dtype=float), np.nan)
            for v in question.values if v != question.reference}


def _as_text(v) -> str | None:
    """An answer as the text of a value: ``2.0`` (a whole number read as float) is ``"2"``."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def code_context(data: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """``data`` with the model columns of the instrument's coded context questions added
    (whole-number columns, pandas ``Int64`` with missing answers as ``<NA>``).

    A question whose column is absent from ``data`` adds nothing; a ``numeric`` question's own
    column is left as it is. Existing columns of the same name are replaced.
    """
    out = data.copy()
    for q in instrument.context:
        if q.id not in data.columns or q.coding in (None, "numeric"):
            continue
        for name, values in coded_values(q, data[q.id].to_numpy()).items():
            out[name] = pd.array(np.where(np.isnan(values), None, values), dtype="Int64")
    return out
