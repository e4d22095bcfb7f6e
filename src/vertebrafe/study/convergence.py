"""Mesh-convergence tables: values of one quantity at several element sizes -> change, order, verdict.

Pure functions (numpy, pandas), used by ``vertebrafe converge`` (:mod:`vertebrafe.study.converge`).

For one row, the values ``v_1 .. v_n`` at element sizes ``h_1 > h_2 > ... > h_n`` (coarse to fine):

* ``change_pct``: the change of the last step relative to the finest value,
  ``100 (v_n - v_{n-1}) / |v_n|`` (signed; NaN where ``v_n`` is 0).
* ``order``: with three sizes or more, the observed order ``p`` of the last three, the solution of
  ``(v_{n-1} - v_{n-2}) / (v_n - v_{n-1}) = (h_{n-2}^p - h_{n-1}^p) / (h_{n-1}^p - h_n^p)`` (for a constant
  refinement ratio ``r``: ``p = ln(e_1 / e_2) / ln r``), which holds for ``v(h) = v_0 + C h^p``. It is
  defined only where the two changes have the same sign and shrink fast enough for a ``p`` in
  (0, :data:`MAX_ORDER`]; otherwise (oscillating, growing, or a step exactly 0) it is NaN: the series is
  not in its asymptotic range and no extrapolation is made.
* ``richardson``: where ``p`` is defined, the extrapolated limit ``v_n + (v_n - v_{n-1}) / ((h_{n-1} /
  h_n)^p - 1)``.
* ``verdict``: ``"near zero"`` when both of the two finest values are at most the row's floor (below);
  else ``"converged"`` when ``|change_pct| <= tolerance`` (or the two values are equal); ``"not
  converged"`` otherwise; ``"incomplete"`` when one of the two finest values is missing (a failed case).

The floor of a row (:func:`table`) is the larger of :data:`NEAR_ZERO` (1 %) of the largest magnitude of
the same metric and quantity over all rows and sizes (a stress of 0.001 MPa in one tissue beside 3 MPa in
the others) and :data:`UNIT_FLOOR` (1e-4) of the largest magnitude of any metric of the same unit and
quantity (a metric that the load does not excite, such as a segment's axial rotation under a flexion load,
6e-11 deg beside a flexion of 10 deg: its values are solver rounding); dimensionless metrics (:data:`DIMENSIONLESS`:
strains, fractions, factors, ratios) have no unit floor. A ratio is near zero where its numerator or
denominator is near zero by that rule (in the metric's unit) at one of the two finest sizes. A near-zero
row's relative change says nothing about the mesh and is not counted as a miss.

>>> from vertebrafe.study.convergence import series
>>> r = series([4.0, 2.0, 1.0], [1.4, 1.2, 1.1], tolerance=10.0)
>>> round(r["order"], 6), round(r["richardson"], 6), r["verdict"]
(1.0, 1.0, 'converged')
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["NEAR_ZERO", "UNIT_FLOOR", "DIMENSIONLESS", "MAX_ORDER", "VERDICTS", "observed_order", "series",
           "size_column", "table", "tally"]

#: A row is "near zero" when both finest values are at most this fraction of its metric's largest magnitude.
NEAR_ZERO = 0.01
#: ... or at most this fraction of the largest magnitude of any metric with the same unit.
UNIT_FLOOR = 1e-4
#: Units of dimensionless metrics (strains, fractions, factors): not one kind of quantity, so no unit floor.
DIMENSIONLESS = ("", "-")
#: Largest observed order reported; a faster decrease (a last step at rounding level) gives no order.
MAX_ORDER = 20.0
#: The verdicts of :func:`series`.
VERDICTS = ("converged", "not converged", "near zero", "incomplete")


def size_column(h):
    """Column name of the values at element size ``h`` mm: ``"at_3mm"``, ``"at_1.5mm"``."""
    return f"at_{float(h):g}mm"


def _ratio_f(h1, h2, h3, p):
    return (h1 ** p - h2 ** p) / (h2 ** p - h3 ** p)


def observed_order(sizes, values):
    """Observed order ``p`` of the last three ``values`` at ``sizes`` (strictly decreasing), or NaN where the
    changes are not monotone (module docstring)."""
    h1, h2, h3 = (float(h) for h in sizes[-3:])
    v1, v2, v3 = (float(v) for v in values[-3:])
    e1, e2 = v2 - v1, v3 - v2
    if not (math.isfinite(e1) and math.isfinite(e2)) or e1 == 0.0 or e2 == 0.0 or (e1 > 0) != (e2 > 0):
        return math.nan
    q = e1 / e2
    lo, hi = 1e-9, MAX_ORDER
    if not _ratio_f(h1, h2, h3, lo) < q <= _ratio_f(h1, h2, h3, hi):
        return math.nan
    for _ in range(200):                          # bisection: the ratio grows with p
        mid = 0.5 * (lo + hi)
        if _ratio_f(h1, h2, h3, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def series(sizes, values, tolerance, floor=None, small_operands=False):
    """Change, order, Richardson limit and verdict of one row (module docstring).

    Parameters
    ----------
    sizes : sequence of float
        Element sizes in mm, strictly decreasing (coarse to fine), at least two.
    values : sequence of float
        The row's value at each size (NaN: missing).
    tolerance : float
        Largest ``|change_pct|`` (%) of a converged row.
    floor : float, optional
        Magnitude at or below which both finest values make the row ``"near zero"``; default none.
    small_operands : bool
        The row is a ratio whose numerator or denominator is near zero at one of the two finest sizes: the
        verdict is ``"near zero"`` (the ratio of two rounding-level values says nothing about the mesh).

    Returns
    -------
    dict
        ``change_pct``, ``order``, ``richardson`` (NaN where not defined), ``verdict``.
    """
    h = [float(x) for x in sizes]
    v = np.asarray(values, dtype=float)
    if len(h) < 2 or len(v) != len(h) or any(a <= b for a, b in zip(h, h[1:])):
        raise ValueError(f"sizes {h} must be at least two, strictly decreasing, one per value ({len(v)})")
    out = {"change_pct": math.nan, "order": math.nan, "richardson": math.nan, "verdict": "incomplete"}
    last, prev = v[-1], v[-2]
    if small_operands:
        out["verdict"] = "near zero"
    if not (np.isfinite(last) and np.isfinite(prev)):
        return out
    if last != 0.0:
        out["change_pct"] = float(100.0 * (last - prev) / abs(last))
    if len(h) >= 3 and np.all(np.isfinite(v[-3:])):
        p = observed_order(h, v)
        if math.isfinite(p):
            out["order"] = p
            out["richardson"] = float(last + (last - prev) / ((h[-2] / h[-1]) ** p - 1.0))
    if small_operands or (floor is not None and math.isfinite(floor) and max(abs(last), abs(prev)) <= floor):
        out["verdict"] = "near zero"
    elif last == prev:
        out["verdict"] = "converged"                       # equal values (0 and 0 included)
    elif math.isfinite(out["change_pct"]) and abs(out["change_pct"]) <= tolerance:
        out["verdict"] = "converged"
    else:
        out["verdict"] = "not converged"
    return out


def table(long, sizes, tolerance, keys):
    """The convergence table of ``long``, a DataFrame with one row per (``keys``..., ``size``) and columns
    ``metric``, ``quantity`` (among ``keys``) and ``value``. Returns one row per ``keys`` combination: the
    keys, one column per size (:func:`size_column`, coarse to fine), ``change_pct``, ``order`` (with three
    sizes or more), ``richardson`` (idem) and ``verdict``; the near-zero floor of a row is the larger of
    :data:`NEAR_ZERO` of the largest ``|value|`` of its ``metric`` and ``quantity`` and :data:`UNIT_FLOOR`
    of the largest of its ``unit`` (a column of ``long``, optional) and ``quantity``, over all rows and sizes.
    Ratio rows (``quantity`` ``"ratio"``) may carry their operands, columns ``numerator``, ``denominator`` and
    ``operand_unit``: a ratio whose numerator or denominator at one of the two finest sizes is at most the
    floor of the metric's ``"value"`` rows (in ``operand_unit``) is ``"near zero"``."""
    import pandas as pd

    sizes = [float(h) for h in sizes]
    cols = [size_column(h) for h in sizes]
    extra = ["order", "richardson"] if len(sizes) >= 3 else []
    columns = list(keys) + cols + ["change_pct"] + extra + ["verdict"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    long = long.copy()
    long["size"] = long["size"].astype(float)
    mag = long.assign(mag=long["value"].astype(float).abs(),
                      unit=long["unit"] if "unit" in long else "")
    scale = mag.groupby(["metric", "quantity"], dropna=False)["mag"].max().to_dict()
    unit_scale = mag.groupby(["unit", "quantity"], dropna=False)["mag"].max().to_dict()

    def floor_of(metric, unit, quantity):
        return max(NEAR_ZERO * scale.get((metric, quantity), 0.0),
                   0.0 if unit in DIMENSIONLESS else UNIT_FLOOR * unit_scale.get((unit, quantity), 0.0))

    operands = {"numerator", "denominator", "operand_unit"} <= set(long.columns)
    rows = []
    for key, group in long.groupby(list(keys), dropna=False, sort=False):
        by_size = dict(zip(group["size"], group["value"].astype(float)))
        values = [by_size.get(h, math.nan) for h in sizes]
        row = dict(zip(keys, key))
        floor = floor_of(row["metric"], row.get("unit", ""), row["quantity"])
        small = False
        if operands and row["quantity"] == "ratio":
            finest = group[group["size"].isin(sizes[-2:])]
            f = floor_of(row["metric"], finest["operand_unit"].iloc[0] if len(finest) else "", "value")
            both = np.abs(finest[["numerator", "denominator"]].to_numpy(dtype=float))
            small = bool(np.any(both <= f))
        res = series(sizes, values, tolerance, floor=floor, small_operands=small)
        row.update(zip(cols, values))
        row.update({k: res[k] for k in ["change_pct"] + extra + ["verdict"]})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def tally(conv):
    """``{verdict: count}`` of a :func:`table`, every verdict of :data:`VERDICTS` included."""
    counts = conv["verdict"].value_counts().to_dict() if len(conv) else {}
    return {v: int(counts.get(v, 0)) for v in VERDICTS}
