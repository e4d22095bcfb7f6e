"""Metrics of the posterior column: facet-joint forces, ligament forces and the load share between the
disc (anterior column) and the posterior column per level.

Rows (segments built with ``posterior=True``), per disc level ``d``:

* region ``facet_left`` / ``facet_right``, ``facet_force`` (N, >= 0): the compressive force of the joint
  (sum of its compression-only springs);
* region ``ALL``, ``PLL``, ``LF``, ``ISL``, ``SSL``, ``ITL``, ``CL``: ``ligament_force`` (N, >= 0, tension;
  ITL and CL both sides together);
* region ``disc``: ``axial_force`` (N, tension positive) through the mid-height cell layer of the disc
  (``sigma_aa V / h`` summed over the layer's cells, ``a`` the disc axis, the two middle layers averaged
  for an even count; the annulus fibres embedded in those cells add ``F L (n . a)^2 / h``, the axial force
  of the stress ``(F L / V) n n`` that a fibre of force ``F``, length ``L`` and direction ``n`` adds to its
  cell of volume ``V``); region ``posterior``: ``axial_force`` (N, tension positive) carried across the level
  by the facet and ligament springs (``sum F (n . -a)``: every spring runs from the upper vertebra (end a)
  to the lower one) and ``load_share`` (-): posterior axial force over the total (disc + posterior); NaN
  when the total is below 5 % of the sum of the magnitudes (e.g. pure moments).

The two axial forces are the only paths across a level (the arches do not touch), so their sum is the
axial force of the level's free body: under a pure axial load it equals the applied load.
"""
from __future__ import annotations

import math

import numpy as np

from .metrics import axial_stress, mid_height_layers

__all__ = ["posterior_rows", "level_axial_forces"]

_FACETS = "facet_joints"
_LIGAMENTS = "ligaments"
_FIBRES = "annulus_fibres"


def _disc_axis(segment, disc):
    up, lo = disc.split("-")
    z = segment.frames[up][0][:, 2] + segment.frames[lo][0][:, 2]
    return z / np.linalg.norm(z)


def level_axial_forces(segment, solution, disc):
    """``(disc axial force, posterior axial force)`` (N, tension positive) across level ``disc``."""
    a = _disc_axis(segment, disc)
    cross, h = mid_height_layers(segment, disc, a)
    f = axial_stress(solution.cell_stress[cross], a) * solution.cell_volume[cross] / h
    q = segment.counts.n_cells
    n_layers = np.unique(cross // q).size
    springs = {s.name: s for s in solution.model.springs}
    fib = springs.get(_FIBRES)
    if fib is not None and fib.host_cells is not None:       # the annulus fibres of the layer's cells
        sel = np.isin(fib.host_cells, cross)
        height = np.zeros(solution.cell_volume.size)
        height[cross] = h
        # an embedded fibre adds the stress (F L / V) n n to its cell: axial force F L (n . a)^2 / h
        f = np.append(f, solution.spring_forces(_FIBRES)[sel] * fib.length[sel] * (fib.direction[sel] @ a) ** 2
                      / height[fib.host_cells[sel]])
    disc_force = float(f.sum() / n_layers)
    post = 0.0
    for name in (_FACETS, _LIGAMENTS):
        s = springs.get(name)
        if s is None:
            continue
        sel = np.isin(s.group, [g for g, n in s.group_names.items() if n.split(":")[0] == disc])
        F = solution.spring_forces(name)[sel]
        post += float(F @ (s.direction[sel] @ -a))
    return disc_force, post


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
        fd, fp = level_axial_forces(segment, solution, d)
        total = fd + fp
        share = fp / total if abs(total) >= 0.05 * (abs(fd) + abs(fp)) and total != 0 else math.nan
        rows += [(d, "disc", "axial_force", fd, "N"), (d, "posterior", "axial_force", fp, "N"),
                 (d, "posterior", "load_share", share, "-")]
    return rows
