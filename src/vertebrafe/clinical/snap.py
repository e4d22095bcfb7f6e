"""Body-fitted cement surface: mesh nodes moved onto the bolus surface so that no cell is cut.

A bolus is the region ``E & Z`` of the treated vertebra: ``E`` the union of ellipsoids (scaled by
``s``), ``Z`` the slab of the central ``vertical_extent`` of the local body height (column fraction
``zeta`` in ``[c, 1 - c]``, ``c = (1 - extent) / 2``). Seen from a node ``a`` the surface is the zero set
of ``g_a(x) = max(r(x) - 1, c - zeta_a(x), zeta_a(x) - (1 - c))`` (``r`` the normalised radius to the
nearest ellipsoid, ``zeta_a`` the column fraction on the column of ``a``, a linear function of ``x``; with a vertebroplasty
``bridge`` the smooth minimum of the two boluses' radii, so that they join across a thin gap);
``g <= 0`` inside. The snapping needs only ``g``'s values (crossings by bisection), not its gradient.

Edge snapping:

1. every node of the level's body is strictly inside (``g < -tol``), strictly outside (``g > tol``) or
   on the surface;
2. an edge of a cancellous cell of the level that joins a strictly inside and a strictly outside node
   crosses the surface; the crossing seen from each endpoint (the root of ``g_a`` along the edge,
   bisection) is that endpoint's move, and the endpoint with the shorter move goes, if it may move (every
   cell around it is a cancellous cell of the level) and the move is at most half the edge;
3. a node chosen by several edges takes its shortest move; it stays if that move is tied with one to
   another place (a node on the mid-plane between two mirror-image boluses), which keeps a symmetric
   bolus symmetric. Nodes therefore move along mesh lines (a
   column for the slab planes, a grid line of the node layer for the sides of the ellipsoids) by at most
   half an edge, onto the surface;
4. guard: a cell whose minimum corner scaled Jacobian falls below ``min(MIN_SCALED_JACOBIAN, its value
   before)`` gets its moved nodes reset, repeated until none does.

Afterwards no edge joins a strictly inside to a strictly outside node, except at nodes that may not move
or that the guard reset. A cell whose nodes all lie inside or on the surface is cement, one whose nodes
all lie outside or on it is bone; the few others (a surface entering through a face diagonal, a reset
node: ``unresolved``) are whole cement or whole bone by their sampled majority (bone if a node lies beyond
a clipping plane, so the cement keeps within the vertical extent). So every cell is wholly
one phase and the bolus surface is made of cell faces; the scale ``s`` is corrected until the cement
volume (the sum of the cement cells' volumes) matches the request (:func:`snap_bolus`).

The slab may be widened by ``pad`` mm (as :func:`~vertebrafe.clinical.augment.vertical_mask`; a negative
pad with ``extent = 1`` keeps a kyphoplasty cavity ``-pad`` mm clear of both endplates). A shell around a
snapped region (kyphoplasty's compacted rim around its cavity) is fitted by a second pass onto its outer
surface with the region's nodes held (:func:`snap_shell`); there, and for the kyphoplasty cavity, whose
flat faces lie closer to the endplate than half a cell, the farther end of a crossing edge may move when
the nearer one may not, up to :data:`MAX_SHELL_MOVE` of the edge.
"""
from __future__ import annotations

import numpy as np

from ..elements import ELEMENT_TYPES
from ..mesh.quality import cell_quality, cell_volumes
from ._common import level_nodes, to_local

__all__ = ["MIN_SCALED_JACOBIAN", "MAX_MOVE", "MAX_SHELL_MOVE", "HEX_EDGES", "snap_points", "snap_bolus", "snap_shell",
           "bolus_level_set", "cell_phases"]

#: Lowest corner scaled Jacobian a snapped cell may reach (unless it was already lower).
MIN_SCALED_JACOBIAN = 0.2
#: Longest move of a node, as a fraction of the edge it moves along.
MAX_MOVE = 0.5
#: Longest move of a shell's nodes (:func:`snap_shell`, and the kyphoplasty cavity): where the nearer end of
#: a crossing edge may not move (a node of the endplate's inner layer, or of the cells inside the shell), the
#: farther one moves up to this fraction of the edge, so that a shell thinner than half a cell (the 1 mm
#: compacted rim in 1.5-3 mm cells) is still bounded by cell faces; cells keep at least a fifth of their
#: height along the edge, and the scaled-Jacobian guard still applies.
MAX_SHELL_MOVE = 0.8
#: The 12 edges of a hexahedron (VTK node order).
HEX_EDGES = np.array([(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6),
                      (3, 7)])
#: Its 12 face diagonals and 4 body diagonals.
HEX_DIAGONALS = np.array([(0, 2), (1, 3), (4, 6), (5, 7), (0, 5), (1, 4), (1, 6), (2, 5), (2, 7), (3, 6), (3, 4),
                          (0, 7), (0, 6), (1, 7), (2, 4), (3, 5)])
_TOL = 1e-10
_BISECTIONS = 52
#: Moves (fractions of their segments) this close are tied; the mesh is mirror-symmetric to about 1e-11 mm.
_TIE = 1e-8


def _corner_scaled_jacobian(points, cells):
    """Minimum corner scaled Jacobian ``(k,)`` of ``cells (k, 8)`` (:func:`vertebrafe.mesh.quality.cell_quality`)."""
    return cell_quality(points, cells, ELEMENT_TYPES["hexahedron"]).scaled_jacobian


def _ellipsoid_radius(x, centres, rots, axes, bridge=0.0):
    """Normalised radius ``(k,)`` (1 on the surface) of local points ``x (k, 3)`` to the nearest ellipsoid; with
    ``bridge`` (mm) the smooth minimum of the two radii that joins two boluses across gaps up to about
    ``bridge`` mm (:func:`~vertebrafe.clinical.augment.smooth_min`, as ``Sampler.radius2``)."""
    radii = [np.sqrt(np.sum((((x - c) @ R) / a) ** 2, axis=1)) for c, R, a in zip(centres, rots, axes)]
    if bridge:
        from .augment import bridge_blend, smooth_min

        return smooth_min(radii[0], radii[1], bridge_blend(bridge, rots, axes))
    return np.min(radii, axis=0)


class _Bolus:
    """Level set of the bolus ``E & Z`` on the columns of the level (global points, original column ends);
    ``pad`` (mm) widens the slab as :func:`~vertebrafe.clinical.augment.vertical_mask` does (negative: the
    region keeps ``-pad`` mm clear of the slab planes, e.g. of the endplates with ``extent = 1``)."""

    def __init__(self, segment, level, points, centres, rots, axes, extent, pad=0.0, bridge=0.0):
        self.segment, self.level = segment, level
        self.nodes = level_nodes(segment, level)
        self.bottom = points[self.nodes.inferior]            # column ends: endplate layers never move
        self.axis = points[self.nodes.superior] - self.bottom
        self.centres, self.rots, self.axes = centres, rots, axes
        self.c = 0.5 * (1.0 - extent)
        self.pad = float(pad)
        self.bridge = float(bridge)

    def slab(self, x, nodes):
        """Slab term ``max(c' - zeta, zeta - (1 - c'))`` ``(k,)`` of global points ``x (k, 3)`` on the columns
        of ``nodes (k,)``, ``c' = c - pad / L`` (``L`` the column's length; <= 0 within the padded extent)."""
        return self._slab(x, *self._columns(nodes))

    def _columns(self, nodes):
        """What the slab term needs of the columns of ``nodes (k,)``: their bottom ends, axes, squared lengths
        and padded margins ``c'``."""
        col = nodes % self.nodes.n2
        d = self.axis[col]
        dd = np.einsum("ki,ki->k", d, d)
        return self.bottom[col], d, dd, self.c - self.pad / np.sqrt(dd)

    @staticmethod
    def _slab(x, bottom, d, dd, c):
        zeta = np.einsum("ki,ki->k", x - bottom, d) / dd
        return np.maximum(c - zeta, zeta - 1.0 + c)

    def __call__(self, x, nodes):
        """``g`` ``(k,)`` of global points ``x (k, 3)`` on the columns of ``nodes (k,)``."""
        return self.on(nodes)(x)

    def on(self, nodes):
        """``g`` of points on the columns of ``nodes (k,)`` as a function of the points ``x (k, 3)`` alone, the
        columns' terms computed once (the bisection of :func:`_crossing` evaluates it 54 times)."""
        columns = self._columns(nodes)

        def g(x):
            r = _ellipsoid_radius(to_local(self.segment, self.level, x), self.centres, self.rots, self.axes,
                                  self.bridge)
            return np.maximum(r - 1.0, self._slab(x, *columns))
        return g


def bolus_level_set(segment, level, points, nodes, centres, rots, axes, extent, pad=0.0, bridge=0.0):
    """``g`` ``(k,)`` of ``nodes`` (indices into ``points``, nodes of the level's body): <= 0 inside the bolus.
    ``centres, rots, axes``: the ellipsoids in the level's local frame at their final scale (mm); ``pad``:
    the slab's widening (mm, :class:`_Bolus`); ``bridge`` (mm): the smooth union of two boluses
    (:func:`_ellipsoid_radius`)."""
    return _Bolus(segment, level, segment.mesh.points, centres, rots, axes, extent, pad, bridge)(points[nodes], nodes)


def _crossing(g, points, a, b):
    """Fraction ``t (k,)`` along the edges ``a -> b`` where the level set ``g`` seen from ``a`` changes sign
    (bisection of ``g.on(a)``, a function of the points alone: :meth:`_Bolus.on` computes its columns' terms
    once); NaN where it has the same sign at both ends."""
    xa, xb = points[a], points[b]
    g = g.on(a)
    ga, gb = g(xa), g(xb)
    sa = np.sign(ga)
    ok = sa * np.sign(gb) < 0
    dx = xb - xa
    lo, hi = np.zeros(a.size), np.ones(a.size)
    for _ in range(_BISECTIONS):
        t = 0.5 * (lo + hi)
        same = np.sign(g(xa + t[:, None] * dx)) == sa
        lo, hi = np.where(same, t, lo), np.where(same, hi, t)
    return np.where(ok, 0.5 * (lo + hi), np.nan)


def _guard(original, trial, previous, cells, step):
    """``trial`` with the nodes of ``step`` (bool, modified in place) reset to ``previous`` in cells whose
    minimum corner scaled Jacobian falls below ``min(MIN_SCALED_JACOBIAN, its value on original)``, repeated
    until none does (ends: every pass resets at least one node)."""
    limit = np.minimum(MIN_SCALED_JACOBIAN, _corner_scaled_jacobian(original, cells))
    while True:
        bad = _corner_scaled_jacobian(trial, cells) < limit
        reset = np.unique(cells[bad].ravel())
        reset = reset[step[reset]]
        if reset.size == 0:
            return trial
        trial[reset] = previous[reset]
        step[reset] = False


def _movable(segment, level, eligible_cells):
    """Nodes of the level's body whose cells are all eligible ``(n,)`` bool."""
    cells = segment.mesh.cells
    n = segment.mesh.n_points
    total = np.bincount(cells.ravel(), minlength=n)
    elig = np.bincount(cells[eligible_cells].ravel(), minlength=n)
    movable = np.zeros(n, dtype=bool)
    body = level_nodes(segment, level).body
    movable[body] = (total[body] > 0) & (total[body] == elig[body])
    return movable


def _moves(g, points, e, movable, max_move=MAX_MOVE):
    """Nodes ``(j,)`` and their new positions ``(j, 3)``: for each crossing segment ``e (k, 2)`` the endpoint
    with the shorter admissible move onto the surface (movable, at most ``max_move`` of the segment),
    for each such node its shortest move."""
    a, b = e[:, 0], e[:, 1]
    ta = _crossing(g, points, a, b)                     # move of a: ta of the segment; of b: 1 - tb
    tb = 1.0 - _crossing(g, points, b, a)
    cand_node = np.concatenate([a, b])
    cand_frac = np.concatenate([ta, 1.0 - tb])
    cand_pos = np.concatenate([points[a] + ta[:, None] * (points[b] - points[a]),
                               points[a] + tb[:, None] * (points[b] - points[a])])
    ok = movable[cand_node] & (cand_frac <= max_move) & np.isfinite(cand_frac)
    frac = np.where(ok, cand_frac, np.inf).reshape(2, -1)
    pick = np.argmin(frac, axis=0)
    chosen = np.isfinite(frac[pick, np.arange(e.shape[0])])
    idx = (pick * e.shape[0] + np.arange(e.shape[0]))[chosen]
    node, fr, pos = cand_node[idx], cand_frac[idx], cand_pos[idx]
    order = np.lexsort((fr, node))
    start = np.unique(node[order], return_index=True)[1]
    first = order[start]
    # a node whose shortest move is tied with a move elsewhere (a node on the mid-plane between two
    # mirror-image boluses) stays: either choice would break the model's mirror symmetry
    second = order[np.minimum(start + 1, order.size - 1)]
    tied = ((start + 1 < order.size) & (node[second] == node[first]) & (fr[second] - fr[first] <= _TIE)
            & (np.linalg.norm(pos[second] - pos[first], axis=1)
               > _TIE * np.linalg.norm(pos[first] - points[node[first]], axis=1)))
    return node[first[~tied]], pos[first[~tied]]


def _segments(cells):
    """Distinct edges and distinct face and body diagonals ``(k, 2)`` (sorted node pairs) of ``cells (m, 8)``."""
    return tuple(np.unique(np.sort(cells[:, pairs].reshape(-1, 2), axis=1), axis=0)
                 for pairs in (HEX_EDGES, HEX_DIAGONALS))


def snap_points(segment, level, points, eligible_cells, centres, rots, axes, extent, segments, pad=0.0, fixed=None,
                max_move=MAX_MOVE, bridge=0.0):
    """Snapped node coordinates ``(n, 3)`` (global mm), the mask ``(n,)`` of moved nodes and the level set
    ``g`` ``(n,)`` of the nodes of the level's body after the moves (moved nodes 0; other nodes +inf).

    ``centres, rots, axes``: the ellipsoids in the level's local frame at their final scale (semi-axes in
    mm); ``extent``: the vertical extent (fraction of the local body height) and ``pad`` its widening (mm,
    :class:`_Bolus`); ``segments``: the edges and diagonals of the eligible cells (:func:`_segments`; the
    same on every pass of :func:`snap_bolus`); ``fixed`` ``(n,)`` bool: nodes that may not move;
    ``max_move``: the longest move, a fraction of the edge (:data:`MAX_MOVE`, :data:`MAX_SHELL_MOVE`); ``bridge``
    (mm): the smooth union of two boluses (:func:`_ellipsoid_radius`)."""
    cells = segment.mesh.cells
    n = points.shape[0]
    g = _Bolus(segment, level, points, centres, rots, axes, extent, pad, bridge)
    body = g.nodes.body
    gn = np.full(n, np.inf)
    gn[body] = g(points[body], body)
    movable = _movable(segment, level, eligible_cells)
    if fixed is not None:
        movable &= ~fixed

    new = points.copy()
    moved = np.zeros(n, dtype=bool)
    elig = np.flatnonzero(eligible_cells)
    for e in segments:                           # edges first; then diagonals of cells still cut
        inside, outside = (gn < -_TOL) & ~moved, (gn > _TOL) & ~moved
        e = e[(inside[e[:, 0]] & outside[e[:, 1]]) | (outside[e[:, 0]] & inside[e[:, 1]])]
        node, pos = _moves(g, new, e, movable & ~moved, max_move)
        step = np.zeros(n, dtype=bool)
        step[node] = True
        trial = new.copy()
        trial[node] = pos
        new = _guard(points, trial, new, cells[elig[np.any(step[cells[elig]], axis=1)]], step)
        moved |= step
    gn[moved] = 0.0
    return new, moved, gn


def cell_phases(cells, g_nodes):
    """Cement ``(k,)`` and unresolved ``(k,)`` masks of ``cells (k, 8)`` from the node level set: cement where
    every node is inside or on the surface (not all on it), unresolved where nodes lie strictly on both
    sides or all on it."""
    inner = (g_nodes <= _TOL)[cells].all(axis=1)
    outer = (g_nodes >= -_TOL)[cells].all(axis=1)
    return inner & ~outer, inner == outer


def _majority(segment, level, points, eligible, unresolved, samples, centres, rots, axes, extent, pad, bridge=0.0):
    """Unresolved cells ``(k,)`` (a mask over the eligible cells) that join the region ``E & Z``: those whose
    sampled majority lies inside it and no node beyond its slab planes (so the region keeps within its
    vertical extent)."""
    from .augment import Sampler

    cells = segment.mesh.cells
    sub = np.zeros(segment.mesh.n_cells, dtype=bool)
    sub[np.flatnonzero(eligible)[unresolved]] = True
    part = Sampler(segment, level, points, sub, samples)
    within = (part.radius2(centres, rots, axes, bridge=bridge) <= 1.0) & _in_slab(segment, level, points, part, extent,
                                                                               pad)
    k = cells[sub]
    slab = _Bolus(segment, level, points, centres, rots, axes, extent, pad).slab
    beyond = slab(points[k.ravel()], k.ravel()).reshape(k.shape).max(axis=1) > _TOL
    return (part.fraction(within) >= 0.5) & ~beyond


def snap_bolus(segment, level, points, eligible, samples, centres, rots, axes, s, extent, target_mm3, iterations=12,
               pad=0.0, max_move=MAX_MOVE, bridge=0.0):
    """Snap the mesh to the bolus ``E & Z`` and correct the scale ``s`` until the cement volume matches
    ``target_mm3`` (relative 1e-3, at most ``iterations`` passes; the scale update uses the volume's growth
    with ``s`` measured over the last two passes, :func:`_volume_exponent`, and once passes lie on both
    sides of the target the narrowest bracket, :func:`_bracketed`); the closest pass is kept. ``pad``: the
    slab's widening (mm, :class:`_Bolus`); ``max_move``, ``bridge``: :func:`snap_points`.

    Returns ``(points, sampler, inside, fractions, s, moved, unresolved)``: snapped global node coordinates,
    the :class:`~vertebrafe.clinical.augment.Sampler` of the eligible cells on them, the sample mask inside
    the bolus ``(m, q)`` (whole cells), the cell fractions ``(m,)`` (0 or 1), the final scale, the number of
    moved nodes and the number of unresolved cells (assigned by their sampled majority)."""
    from .augment import Sampler

    cells = segment.mesh.cells
    best = previous = None
    tried = []                                   # (s, err) of every pass
    segments = _segments(cells[eligible])
    for _ in range(iterations):
        new, moved, gn = snap_points(segment, level, points, eligible, centres, rots, axes * s, extent, segments, pad,
                                     max_move=max_move, bridge=bridge)
        cement, unresolved = cell_phases(cells[eligible], gn)
        if unresolved.any():
            cement[unresolved] = _majority(segment, level, new, eligible, unresolved, samples, centres, rots, axes * s,
                                           extent, pad, bridge)
        f = cement.astype(float)
        achieved = float(np.sum(f * cell_volumes(new, cells[eligible], ELEMENT_TYPES["hexahedron"])))
        err = achieved / target_mm3 - 1.0
        tried.append((s, err))
        if best is None or abs(err) < abs(best[-1]):
            best = (new, f, s, int(moved.sum()), int(unresolved.sum()), err)
        if abs(err) < 1e-3 or achieved == 0.0:
            break
        s_next = _bracketed(tried)
        if s_next is None:
            s_next = s * (target_mm3 / achieved) ** (1.0 / _volume_exponent(previous, s, achieved))
        previous, s = (s, achieved), s_next
    new, f, s, moved, unresolved, _ = best
    sampler = Sampler(segment, level, new, eligible, samples)
    inside = np.broadcast_to(f[:, None] > 0.5, sampler.w.shape)
    return new, sampler, inside, f, s, moved, unresolved


def snap_shell(segment, level, points, eligible, samples, inner, centres, rots, axes, extent, pad):
    """Snap the outer surface ``E' & Z'`` (ellipsoids ``axes``, slab ``extent`` widened by ``pad`` mm) of a
    shell around the whole cells ``inner`` ``(m,)`` (a mask over the eligible cells, e.g. a snapped bolus),
    whose nodes do not move, so the inner region keeps its cells and volume. The shell is every other
    eligible cell inside the outer surface; nodes move up to :data:`MAX_SHELL_MOVE` of an edge, and cells
    the outer surface still cuts (``unresolved``) join the shell by their sampled majority (:func:`_majority`).

    Returns ``(points, sampler, fractions, moved, unresolved)``: the snapped global node coordinates, the
    :class:`~vertebrafe.clinical.augment.Sampler` of the eligible cells on them, the shell's cell fractions
    ``(m,)`` (0 or 1), the number of moved nodes and of unresolved cells."""
    from .augment import Sampler

    cells = segment.mesh.cells
    fixed = np.zeros(points.shape[0], dtype=bool)
    fixed[cells[np.flatnonzero(eligible)[inner]].ravel()] = True
    new, moved, gn = snap_points(segment, level, points, eligible, centres, rots, axes, extent, _segments(cells[eligible]),
                                 pad, fixed, MAX_SHELL_MOVE)
    within, unresolved = cell_phases(cells[eligible], gn)
    unresolved &= ~inner
    if unresolved.any():
        within[unresolved] = _majority(segment, level, new, eligible, unresolved, samples, centres, rots, axes, extent,
                                       pad)
    shell = (within & ~inner).astype(float)
    return new, Sampler(segment, level, new, eligible, samples), shell, int(moved.sum()), int(unresolved.sum())


def _bracketed(tried):
    """Next scale inside the narrowest bracket of the target volume (``tried``: ``(s, err)`` pairs; of the
    neighbouring passes in ``s`` whose errors change sign, the pair with the smallest errors), by linear
    interpolation of the error kept in the middle 80 % of the bracket; None without a bracket. Whole cells
    switching phase make the volume a step function of ``s`` (not even monotone where snapped nodes change),
    so the search keeps narrowing around the target instead of oscillating."""
    order = sorted(tried)
    pairs = [(a, b) for a, b in zip(order[:-1], order[1:]) if (a[1] < 0.0) != (b[1] < 0.0) and a[0] < b[0]]
    if not pairs:
        return None
    (s0, e0), (s1, e1) = min(pairs, key=lambda p: abs(p[0][1]) + abs(p[1][1]))
    w = float(np.clip(e0 / (e0 - e1), 0.1, 0.9))
    return s0 + w * (s1 - s0)


def _volume_exponent(previous, s, achieved):
    """Exponent ``p`` of the cement volume ``~ s^p`` for the next scale: 3 (a free ellipsoid) at first, then
    the slope of the last two passes in log-log (a bolus clipped by the slab planes grows more slowly), kept
    in [1, 3] (a non-positive or unsteady slope falls back to 3)."""
    if previous is None or previous[0] == s or previous[1] <= 0.0 or achieved <= 0.0:
        return 3.0
    p = np.log(achieved / previous[1]) / np.log(s / previous[0])
    return float(np.clip(p, 1.0, 3.0)) if np.isfinite(p) and p > 0.0 else 3.0


def _in_slab(segment, level, points, sampler, extent, pad=0.0):
    """Samples ``(m, q)`` within the central ``extent`` of the local body height, widened by ``pad`` mm."""
    from .augment import endplate_distances, vertical_mask

    d_inf, d_sup, hloc = endplate_distances(segment, level, points, sampler)
    return vertical_mask(d_inf, d_sup, hloc, extent, pad)
