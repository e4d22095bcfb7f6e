"""Metric-by-metric comparison of two results (treated vs intact or untreated fracture).

:func:`compare` joins two tidy metric tables on (level, region, metric, unit) and adds ``ratio =
value / reference`` and ``change = value - reference``. Rows are labelled by their position relative
to the treated level in ``relation``:

* ``treated`` -- the level of the last vertebroplasty/kyphoplasty of the clinical history (or, without
  one, of the last fracture);
* ``adjacent_superior`` / ``adjacent_inferior`` -- the vertebra directly above / below it;
* ``disc_superior`` / ``disc_inferior`` -- the disc directly above / below it;
* ``remote`` -- other levels; ``segment`` -- segment-level rows; ``""`` when no level is treated.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

__all__ = ["treated_level", "relations", "compare"]

_TREATMENTS = ("vertebroplasty", "kyphoplasty")


def treated_level(segment):
    """The treated vertebra of ``segment`` from its clinical ``history``: the level of the last
    vertebroplasty or kyphoplasty, else of the last fracture, else None."""
    hist = tuple(getattr(segment, "history", ()))
    for kinds in (_TREATMENTS, ("fracture",)):
        for op in reversed(hist):
            if op.kind in kinds:
                return op.level
    return None


def relations(levels, treated):
    """``{name: relation}`` for the vertebrae ``levels`` (cranial first) and their discs."""
    levels = tuple(levels)
    out = {}
    names = []
    for i, v in enumerate(levels):
        names.append(v)
        if i + 1 < len(levels):
            names.append(f"{v}-{levels[i + 1]}")
    for n in names:
        out[n] = "" if treated is None else "remote"
    out["segment"] = "segment"
    if treated is None:
        return out
    if treated not in levels:
        raise InputError(f"treated level {treated!r} is not in the segment {list(levels)}")
    i = levels.index(treated)
    out[treated] = "treated"
    if i > 0:
        out[levels[i - 1]] = "adjacent_superior"
        out[f"{levels[i - 1]}-{treated}"] = "disc_superior"
    if i + 1 < len(levels):
        out[levels[i + 1]] = "adjacent_inferior"
        out[f"{treated}-{levels[i + 1]}"] = "disc_inferior"
    return out


def compare(metrics, reference, levels, treated=None, case=None, reference_case=None):
    """Compare two metric DataFrames (columns case, level, region, metric, value, unit).

    Returns a DataFrame with columns ``case``, ``reference_case``, ``level``, ``relation``, ``region``,
    ``metric``, ``unit``, ``value``, ``reference``, ``ratio``, ``change``. Metrics present in only one
    table are dropped; ``ratio`` is NaN where the reference is 0.
    """
    import pandas as pd

    keys = ["level", "region", "metric", "unit"]
    a = metrics[keys + ["value"]]
    b = reference[keys + ["value"]].rename(columns={"value": "reference"})
    df = a.merge(b, on=keys, how="inner", sort=False)
    ref = df["reference"].to_numpy(dtype=float)
    val = df["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        df["ratio"] = np.where(ref != 0, val / np.where(ref != 0, ref, 1.0), math.nan)
    df["change"] = val - ref
    rel = relations(levels, treated)
    df.insert(1, "relation", df["level"].map(lambda n: rel.get(n, "")))
    df.insert(0, "reference_case", reference_case if reference_case is not None else
              (reference["case"].iloc[0] if len(reference) else ""))
    df.insert(0, "case", case if case is not None else (metrics["case"].iloc[0] if len(metrics) else ""))
    return pd.DataFrame(df[["case", "reference_case", "level", "relation", "region", "metric", "unit", "value",
                            "reference", "ratio", "change"]]).reset_index(drop=True)
