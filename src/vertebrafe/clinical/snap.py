"""Body-fitted cement surface by node snapping.

A bolus is the region ``E & Z`` of the treated vertebra: ``E`` the union of ellipsoids (scaled by
``s``), ``Z`` the slab of the central ``vertical_extent`` of the local body height (column fraction
``zeta`` in ``[c, 1 - c]``, ``c = (1 - extent) / 2``). Nodes of the cancellous bone that lie within
``alpha`` of a cell of its surface are moved onto it, so that element faces follow the surface:

* onto a slab plane ``zeta = c`` or ``1 - c``: the node of each column nearest the plane (within half a
  layer) slides along its column (the polyline of the column's nodes) when the plane point is inside
  ``E``. The planes are parallel to the node layers, so the two cells of the column keep their shape and
  at most a 1 : 3 height ratio, and every size of mesh gets the same fitted slab faces;
* onto an ellipsoid: the node moves along the ellipsoid's gradient (three Newton steps of the normalised
  radius) when the move is shorter than ``alpha`` times the local cell size and the foot point is inside
  ``Z``;
* nodes near both take the shorter move. Only nodes whose cells are all eligible (cancellous cells of the
  level) move, so the cortex, the endplates and every other level keep their nodes.

Guard: a cell whose minimum corner scaled Jacobian falls below ``min(MIN_SCALED_JACOBIAN, its value
before)`` gets its moved nodes reset, repeated until none does. The cells whose nodes all lie inside (or
on) the surface are then cement, those whose nodes all lie outside (or on) it bone; the remaining cut
cells keep their sampled fraction and the mixing rule. The scale ``s`` is corrected so that the cement
volume matches the request (:func:`snap_bolus`).
"""
from __future__ import annotations

import numpy as np

from ..elements import ELEMENT_TYPES
from ..mesh.quality import cell_quality
from ._common import column_fraction, level_nodes, to_global, to_local

__all__ = ["SNAP_FRACTION", "MIN_SCALED_JACOBIAN", "snap_points", "snap_bolus", "node_level_set", "fitted_fractions"]

#: Nodes within this fraction of a cell of the surface move onto it.
SNAP_FRACTION = 0.3
#: Lowest corner scaled Jacobian a snapped cell may reach (unless it was already lower).
MIN_SCALED_JACOBIAN = 0.2
_TOL = 1e-9


def _corner_scaled_jacobian(points, cells):
    """Minimum corner scaled Jacobian ``(k,)`` of ``cells (k, 8)`` (:func:`vertebrafe.mesh.quality.cell_quality`)."""
    return cell_quality(points, cells, ELEMENT_TYPES["hexahedron"]).scaled_jacobian


def _ellipsoid_radius(x, centres, rots, axes):
    """Normalised radius ``(k,)`` (1 on the surface) of local points ``x (k, 3)`` to the nearest ellipsoid
    and the index ``(k,)`` of that ellipsoid."""
    r = np.stack([np.sqrt(np.sum((((x - c) @ R) / a) ** 2, axis=1)) for c, R, a in zip(centres, rots, axes)])
    i = np.argmin(r, axis=0)
    return r[i, np.arange(x.shape[0])], i


def _project_ellipsoid(x, centres, rots, axes, steps=3):
    """Foot points ``(k, 3)`` of local points ``x`` on the nearest ellipsoid surface (Newton steps on the
    normalised radius along its gradient)."""
    y = x.copy()
    for _ in range(steps):
        r, i = _ellipsoid_radius(y, centres, rots, axes)
        c, R, a = centres[i], rots[i], axes[i]
        d = np.einsum("ki,kij->kj", y - c, R)                       # bolus axes
        g = np.einsum("kij,kj->ki", R, d / a ** 2) / np.maximum(r, 1e-12)[:, None]   # grad r (local)
        y = y - ((r - 1.0) / np.maximum(np.einsum("ki,ki->k", g, g), 1e-300))[:, None] * g
    return y


def node_level_set(zeta, radius, c):
    """Nodes inside-or-on and outside-or-on the bolus ``E & Z`` (two bool arrays) from the column fraction
    ``zeta`` and the normalised ellipsoid radius of the nodes."""
    inside = (radius <= 1.0 + _TOL) & (zeta >= c - _TOL) & (zeta <= 1.0 - c + _TOL)
    outside = (radius >= 1.0 - _TOL) | (zeta <= c + _TOL) | (zeta >= 1.0 - c - _TOL)
    return inside, outside


def fitted_fractions(cells, inside_nodes, outside_nodes, sampled):
    """Cell fractions: 1 where every node is inside-or-on, 0 where every node is outside-or-on (and not
    all inside), else the ``sampled`` fraction."""
    all_in = inside_nodes[cells].all(axis=1)
    all_out = outside_nodes[cells].all(axis=1) & ~all_in
    return np.where(all_in, 1.0, np.where(all_out, 0.0, sampled))


def snap_points(segment, level, points, eligible_cells, centres, rots, axes, extent, alpha=SNAP_FRACTION):
    """Snapped node coordinates ``(n, 3)`` (global mm) and the mask ``(n,)`` of moved nodes.

    ``centres, rots, axes``: the ellipsoids in the level's local frame at their final scale (semi-axes in
    mm); ``extent``: the vertical extent (fraction of the local body height)."""
    mesh = segment.mesh
    cells = mesh.cells
    n = points.shape[0]
    nodes = level_nodes(segment, level)
    body, n2 = nodes.body, nodes.n2
    # movable nodes: every incident cell eligible
    total = np.bincount(cells.ravel(), minlength=n)
    elig = np.bincount(cells[eligible_cells].ravel(), minlength=n)
    movable = (total > 0) & (total == elig)
    movable[np.setdiff1d(np.arange(n), body)] = False
    # local cell size at the nodes
    m = mesh.copy()
    m.points = points
    vol = np.abs(m.cell_volumes())
    hsum = np.bincount(cells[eligible_cells].ravel(), weights=np.repeat(vol[eligible_cells] ** (1 / 3), 8),
                       minlength=n)
    hnode = np.divide(hsum, elig, out=np.zeros(n), where=elig > 0)

    cand = np.flatnonzero(movable)
    X = to_local(segment, level, points[cand])
    c = 0.5 * (1.0 - extent)
    zeta = column_fraction(points, cand, nodes.inferior, nodes.superior, n2)
    best = np.full(cand.size, np.inf)                          # length of the chosen move (mm)
    target = X.copy()

    # slab planes: slide along the column toward the neighbour beyond the plane
    for plane in (c, 1.0 - c):
        up = zeta < plane
        nb = np.where(up, cand + n2, cand - n2)
        zeta_nb = column_fraction(points, nb, nodes.inferior, nodes.superior, n2)
        t = (plane - zeta) / (zeta_nb - zeta)
        ok = (t >= 0) & (t <= 0.5)
        Y = X + t[:, None] * (to_local(segment, level, points[nb]) - X)
        r, _ = _ellipsoid_radius(Y, centres, rots, axes)
        ok &= r <= 1.0
        move = np.linalg.norm(Y - X, axis=1)
        take = ok & (move < best)
        target[take], best[take] = Y[take], move[take]

    # ellipsoid surfaces
    Y = _project_ellipsoid(X, centres, rots, axes)
    r, _ = _ellipsoid_radius(Y, centres, rots, axes)
    move = np.linalg.norm(Y - X, axis=1)
    zY = _column_fraction_of(segment, level, points, cand, Y, nodes)
    ok = (np.abs(r - 1.0) < 1e-6) & (move < alpha * hnode[cand]) & (zY >= c) & (zY <= 1.0 - c)
    take = ok & (move < best)
    target[take], best[take] = Y[take], move[take]

    moved = np.zeros(n, dtype=bool)
    moved[cand[np.isfinite(best)]] = True
    new = points.copy()
    new[cand] = np.where(np.isfinite(best)[:, None], to_global(segment, level, target), points[cand])

    # guard: reset the moved nodes of cells whose quality drops too far
    touched = np.flatnonzero(np.any(moved[cells[eligible_cells]], axis=1))
    touched = np.flatnonzero(eligible_cells)[touched]
    before = _corner_scaled_jacobian(points, cells[touched])
    limit = np.minimum(MIN_SCALED_JACOBIAN, before)
    while True:                                  # ends: every pass resets at least one moved node
        bad = _corner_scaled_jacobian(new, cells[touched]) < limit
        reset = np.unique(cells[touched[bad]].ravel())
        reset = reset[moved[reset]]
        if reset.size == 0:
            return new, moved
        new[reset] = points[reset]
        moved[reset] = False


def _column_fraction_of(segment, level, points, nodes_idx, local_points, nodes):
    """Column fraction of local points placed on the columns of ``nodes_idx``."""
    return column_fraction(points, nodes_idx, nodes.inferior, nodes.superior, nodes.n2,
                           points_of=to_global(segment, level, local_points))


def snap_bolus(segment, level, points, eligible, samples, centres, rots, axes, s, extent, target_mm3, iterations=4):
    """Snap the mesh to the bolus ``E & Z`` and correct the scale ``s`` until the cement volume matches
    ``target_mm3`` (at most ``iterations`` passes; the volume is a step function of ``s``).

    Returns ``(points, sampler, inside, fractions, s, moved)``: snapped global node coordinates, the
    :class:`~vertebrafe.clinical.augment.Sampler` of the eligible cells on them, the sample mask inside the
    bolus ``(m, q)``, the cell fractions ``(m,)`` (fitted cells 0 or 1, cut cells sampled), the final
    scale and the number of moved nodes."""
    from .augment import Sampler, endplate_distances, vertical_mask

    nodes = level_nodes(segment, level)
    c = 0.5 * (1.0 - extent)
    best = None
    for _ in range(iterations):
        new, moved = snap_points(segment, level, points, eligible, centres, rots, axes * s, extent)
        sampler = Sampler(segment, level, new, eligible, samples)
        d_inf, d_sup, hloc = endplate_distances(segment, level, new, sampler)
        allowed = vertical_mask(d_inf, d_sup, hloc, extent)
        inside = allowed & (sampler.radius2(centres, rots, axes * s) <= 1.0)
        zeta = np.full(new.shape[0], -1.0)
        zeta[nodes.body] = column_fraction(new, nodes.body, nodes.inferior, nodes.superior, nodes.n2)
        radius = np.full(new.shape[0], np.inf)
        radius[nodes.body], _ = _ellipsoid_radius(to_local(segment, level, new[nodes.body]), centres, rots, axes * s)
        n_in, n_out = node_level_set(zeta, radius, c)
        f = fitted_fractions(segment.mesh.cells[sampler.cells], n_in, n_out, sampler.fraction(inside))
        achieved = float(np.sum(f * sampler.volume))
        err = achieved / target_mm3 - 1.0
        if best is None or abs(err) < abs(best[-1]):
            best = (new, sampler, inside, f, s, int(moved.sum()), err)
        if abs(err) < 1e-3:
            break
        s *= (target_mm3 / achieved) ** (1.0 / 3.0)
    return best[:6]
