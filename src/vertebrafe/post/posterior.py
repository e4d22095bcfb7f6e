"""Metrics of the posterior column: facet-joint forces, ligament forces and the load share between the
disc (anterior column) and the posterior column per level.

Rows (segments built with ``posterior=True``), per disc level ``d``:

* region ``facet_left`` / ``facet_right``, ``facet_force`` (N, >= 0): the compressive force of the joint
  (sum of its compression-only springs);
* region ``ALL``, ``PLL``, ``LF``, ``ISL``, ``SSL``, ``ITL``, ``CL``: ``ligament_force`` (N, >= 0, tension;
  ITL and CL both sides together);
* ``axial_force`` (N, tension positive) along the disc axis ``a`` through the three paths across the
  level: region ``disc``, the mid-height cell layer of the disc (``sigma_aa V / h`` summed over the
  layer's cells, the two middle layers averaged for an even count; an annulus fibre embedded in such a
  cell adds the stress ``(F L / V) n n`` to it (force ``F``, length ``L``, direction ``n``), so
  ``F L (n . a)^2 / h``); region ``longitudinal_ligaments``, the
  ALL and PLL springs; region ``posterior``, the facet joints and the posterior ligaments (LF, ISL, SSL,
  ITL, CL). A spring's share is ``F (n . -a)`` (every spring runs from the upper vertebra, end a, to the
  lower one);
* region ``posterior``: ``load_share`` (-), the posterior axial force over the total of the three; NaN
  when the total is below 5 % of the sum of their magnitudes (e.g. pure moments).

These are the only paths across a level (the arches do not touch), so the three forces add up to the
axial force of the level's free body: under a pure axial load, the applied load.
"""
from __future__ import annotations

import math

import numpy as np

from .metrics import axial_stress, mid_height_layers

__all__ = ["posterior_rows", "level_axial_forces", "REGIONS"]

#: The regions of these rows besides ``disc`` and ``posterior`` (study plot names are checked against them).
REGIONS = ("facet_left", "facet_right", "ALL", "PLL", "LF", "ISL", "SSL", "ITL", "CL", "longitudinal_ligaments")

_FACETS = "facet_joints"
_LIGAMENTS = "ligaments"
_LONGITUDINAL = ("ALL", "PLL")
_FIBRES = "annulus_fibres"


def _disc_axis(segment, disc):
    up, lo = disc.split("-")
    z = segment.frames[up][0][:, 2] + segment.frames[lo][0][:, 2]
    return z / np.linalg.norm(z)


def level_axial_forces(segment, solution, disc):
    """``{"disc", "longitudinal_ligaments", "posterior": N}``: axial forces (tension positive) across level
    ``disc`` (see the module docstring)."""
    a = _disc_axis(segment, disc)
    cross, h = mid_height_layers(segment, disc, a)
    f = axial_stress(solution.cell_stress[cross], a) * solution.cell_volume[cross] / h
    n_layers = np.unique(cross // segment.counts.n_cells).size
    springs = {s.name: s for s in solution.model.springs}
    fib = springs.get(_FIBRES)
    if fib is not None and fib.host_cells is not None:       # the annulus fibres of the layer's cells
        sel = np.isin(fib.host_cells, cross)
        height = np.zeros(solution.cell_volume.size)
        height[cross] = h
        f = np.append(f, solution.spring_forces(_FIBRES)[sel] * fib.length[sel] * (fib.direction[sel] @ a) ** 2
                      / height[fib.host_cells[sel]])
    out = {"disc": float(f.sum() / n_layers), "longitudinal_ligaments": 0.0, "posterior": 0.0}
    for name in (_FACETS, _LIGAMENTS):
        s = springs.get(name)
        if s is None:
            continue
        F = solution.spring_forces(name) * (s.direction @ -a)
        for g, label in s.group_names.items():
            level, part = label.split(":", 1)
            if level == disc:
                key = "longitudinal_ligaments" if part in _LONGITUDINAL else "posterior"
                out[key] += float(F[s.group == g].sum())
    return out


def posterior_rows(segment, solution):
    """The rows of the module docstring (empty without posterior elements)."""
    if getattr(segment, "posterior", None) is None:
        return []
    springs = {s.name: s for s in solution.model.springs}
    rows = []
    for name, kind in ((_FACETS, "facet"), (_LIGAMENTS, "ligament")):
        s = springs.get(name)
        if s is None:
            continue
        G = s.group_forces(solution.displacement, solution.spring_active[name])
        for g, total in G.items():
            disc, part = g.split(":", 1)
            if kind == "facet":
                rows.append((disc, f"facet_{part}", "facet_force", max(0.0, -total), "N"))
            else:
                rows.append((disc, part, "ligament_force", max(0.0, total), "N"))
    for d in segment.discs:
        forces = level_axial_forces(segment, solution, d)
        total = sum(forces.values())
        mag = sum(abs(v) for v in forces.values())
        rows += [(d, k, "axial_force", v, "N") for k, v in forces.items()]
        share = forces["posterior"] / total if total != 0 and abs(total) >= 0.05 * mag else math.nan
        rows.append((d, "posterior", "load_share", share, "-"))
    return rows
