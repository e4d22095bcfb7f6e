"""A pillowed cement bolus: element faces on the bolus's smooth surface, with no flattened cell.

A surface snapped onto the nodes of a layered mesh (``surface="fitted"``) leaves cells with two or three
faces on the surface where it runs diagonally to the mesh; they are flattened, and the stress in and around a
stiff inclusion then converges at first order only (docs/validation.md, "Stiff spherical inclusion
(Eshelby)": +15 / +9 / +4 % at 8 / 16 / 32 cells across). Pillowing (:mod:`vertebrafe.mesh.pillow`) inserts one
layer of hexahedra on each side of the bolus's staircase, so every cell with a face on the surface has exactly
one, and the staircase's nodes can go onto the surface: the sphere's mean stress is then within 0.6 % at 8
cells across, second order, and one bolus in the treated L1 converges from 2 mm (docs/validation.md, "A
pillowed bolus on the treated vertebra's mesh").

:func:`pillow_bolus` builds it for boluses (ellipsoids, optionally cut by vertebroplasty's vertical extent)
inside the cancellous bone of one vertebra:

1. the staircase: the cancellous cells whose centre lies inside a bolus (and within the extent); a cell with
   two opposite faces or four faces on its boundary changes side until none has
   (:func:`~vertebrafe.mesh.pillow.clean_set`);
2. both sides pillowed (the new cells and nodes are appended after the mesh's own);
3. the staircase's nodes go to their closest point on their bolus's ellipsoid (a cut bolus: onto the
   ellipsoid's part within the extent or the extent's plane along the node's column, by Newton steps on the
   larger of the two first-order distances, :func:`~vertebrafe.mesh.pillow.project_to_level_set`), then five
   Laplacian passes on the surface, each projected back (closest points crowd at the tips); the common scale
   of the ellipsoids is set so that the enclosed volume is the request (to 1e-3);
4. each layer's other nodes go :data:`LAYER_DEPTH` x the element size inward / outward along the node's mean
   face normal, from the node's staircase position on their side (from the surface position on the other);
5. five guarded Laplacian passes (:func:`~vertebrafe.mesh.pillow.relax`) of the cancellous nodes within two
   edge rings of the surface; cells still tangled (a corner's scaled Jacobian <= 0, or the Jacobian at a Gauss
   point: the map of such a hexahedron is not one-to-one) have the free nodes around them moved until every
   corner of their neighbourhood is positive (:func:`~vertebrafe.mesh.pillow.untangle`).

A bolus must stay a cell clear of every other tissue (cortex, endplate) and, unless the two are bridged (their
smooth union, ``blend``), of the other bolus; a bridged pair's cells must make as many connected sets as the
union has pieces (one where the bridge closes the gap, else two: the mesh must not join with cement two
boluses a thin septum apart, nor cut a thin neck); otherwise :func:`pillow_bolus` raises an InputError that
says which. A mesh that still tangles a cell raises a MeshError.
A bolus that touches the cortex is not supported: its stresses do not converge even when pillowed (a stress
concentration where the stiff bolus meets the stiff shell; docs/validation.md, "The clipped bolus's features
one at a time").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..elements import HEX8
from ..errors import InputError, MeshError
from ..mesh.pillow import boundary_quads, clean_set, edge_rings, pillow, project_to_level_set, relax, untangle
from ..mesh.quality import cell_quality, cell_volumes
from ._common import level_nodes
from .augment import bolus_pieces, bridge_neck, smooth_min
from .bolus import find_boluses

__all__ = ["PillowedBolus", "pillow_bolus", "closest_on_ellipsoid", "enclosed_volume", "LAYER_DEPTH"]

#: Depth of each pillow layer, as a fraction of the element size: the depth that folds no cell of the treated
#: L1 at a Gauss point at 3 / 2 / 1.5 / 1 mm (0.2 folds one at 1 mm; the rows change by <= 0.07 % between 0.15 and 0.2,
#: docs/validation.md, "A pillowed bolus on the treated vertebra's mesh").
LAYER_DEPTH = 0.15
#: Laplacian passes on the surface, and guarded passes of the nodes within :data:`RELAX_RINGS` rings of it.
SURFACE_PASSES = 5
RELAX_PASSES = 5
RELAX_RINGS = 2
#: The farthest a staircase node may go onto the surface, in element sizes: a cell's diagonal reach (0.87) plus
#: the cell the cleaning may add or remove (measured up to 1.06 in T12-L2 at 1 mm); farther, the surface runs
#: where the staircase cannot follow (outside the cancellous bone).
MAX_REACH = 2.0


@dataclass(frozen=True)
class PillowedBolus:
    """The pillowed mesh of :func:`pillow_bolus`: ``points (n', 3)`` global mm, ``cells (m', 8)`` (the old
    cells in their order, then the layer cells), ``layered_cell (m',)`` the cell of the original mesh each cell
    belongs to (itself; a layer cell: the cell it was made against), ``cement (m',)`` bool (the bolus's cells
    and its inner layer), the ellipsoids' final ``scale`` and ``info`` (volumes mm^3, cells moved by the
    cleaning, surface nodes, layer cells, minimum corner scaled Jacobian)."""

    points: np.ndarray
    cells: np.ndarray
    layered_cell: np.ndarray
    cement: np.ndarray
    scale: float
    info: dict


def closest_on_ellipsoid(x, c, R, a, iterations=80):
    """Closest points ``(k, 3)`` on the ellipsoid (centre ``c``, axes the columns of ``R``, semi-axes ``a``)
    to ``x (k, 3)``: ``y_i a_i^2 / (a_i^2 + t)`` in the ellipsoid's axes, ``t`` by bisection. Inside, on the
    principal plane of the smallest semi-axis ``a_m`` (``y_m = 0``, to round-off) and near the centre, the root
    sits at its bound ``t = -a_m^2`` and the closest points are two (Eberly 2008, "Distance from a point to an
    ellipse, an ellipsoid, or a hyperellipsoid"): where the bisection's point is off the surface, its other
    components are the bound's and its ``m``-th the one that puts it on the surface, on the side of ``y_m``
    (``+a_m`` for 0)."""
    y = (np.asarray(x, float) - c) @ R
    a2 = np.asarray(a, float) ** 2

    def f(t):
        return np.sum(a2 * y ** 2 / (a2 + t[:, None]) ** 2, axis=1) - 1.0

    lo = np.full(y.shape[0], -a2.min() * (1 - 1e-12))
    hi = np.full(y.shape[0], np.sqrt(a2.max()) * (np.linalg.norm(y, axis=1) + 1.0))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        pos = f(mid) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    t = 0.5 * (lo + hi)
    p = y * (a2 / (a2 + t[:, None]))
    m = int(np.argmin(a2))
    rest = np.sum(np.delete(p, m, axis=1) ** 2 / np.delete(a2, m), axis=1)
    flat = np.abs(rest + p[:, m] ** 2 / a2[m] - 1.0) > 1e-9     # off the surface: the degenerate root
    p[flat, m] = np.where(y[flat, m] < 0.0, -1.0, 1.0) * np.sqrt(a2[m] * np.maximum(1.0 - rest[flat], 0.0))
    return c + p @ R.T


def enclosed_volume(p, quads):
    """Volume (mm^3) enclosed by the closed outward quad surfaces ``quads (f, 4)`` on ``p (n, 3)`` (divergence
    theorem, each quad as two triangles)."""
    a, b, c, d = (p[quads[:, i]] for i in range(4))
    return float((np.einsum("ki,ki->k", a, np.cross(b, c)) + np.einsum("ki,ki->k", a, np.cross(c, d))).sum() / 6.0)


def _radii(x, centres, rots, axes):
    """Normalised radii ``(b, k)`` of the local points ``x (k, 3)`` for each ellipsoid."""
    return np.stack([np.sqrt(np.sum((((x - c) @ R) / a) ** 2, axis=1)) for c, R, a in zip(centres, rots, axes)])


class _Slab:
    """The central ``extent`` of the body height along each node column of ``level`` (vertebroplasty's
    ``vertical_extent``) as a signed distance (mm, negative inside) of local points on given nodes' columns."""

    def __init__(self, segment, level, extent, local):
        nodes = level_nodes(segment, level)
        P = segment.mesh.points
        self.n2 = nodes.n2
        self.bottom = local(P[nodes.inferior])
        self.axis = local(P[nodes.superior]) - self.bottom
        self.c = 0.5 * (1.0 - float(extent))

    def field(self, x, nodes):
        """``(g (k,), grad (k, 3))`` at local points ``x (k, 3)`` on the columns of the layered ``nodes (k,)``."""
        col = np.asarray(nodes) % self.n2
        d, b = self.axis[col], self.bottom[col]
        L = np.linalg.norm(d, axis=1)
        z = np.einsum("ki,ki->k", x - b, d) / (L * L)
        low = self.c - z > z - (1.0 - self.c)
        g = np.where(low, self.c - z, z - 1.0 + self.c) * L
        return g, np.where(low[:, None], -d, d) / L[:, None]


def _ellipsoid_field(x, c, R, a):
    """``(g (k,), grad (k, 3))``: the normalised radius minus 1 divided by its gradient's length (the distance
    to the ellipsoid to first order), and the unit outward normal, per point ``x (k, 3)`` of ellipsoids ``c
    (k, 3)``, ``R (k, 3, 3)``, ``a (k, 3)``."""
    y = np.einsum("ki,kij->kj", x - c, R)
    r = np.sqrt(np.sum((y / a) ** 2, axis=1))
    grad = np.einsum("kij,kj->ki", R, y / a ** 2) / np.maximum(r, 1e-300)[:, None]
    n = np.maximum(np.linalg.norm(grad, axis=1), 1e-300)
    return (r - 1.0) / n, grad / n[:, None]


def _union_field(x, centres, rots, axes, k, level):
    """``(g (k,), grad (k, 3))`` of the two ellipsoids (local, scale 1) joined by the smooth minimum of their
    normalised radii over the blending width ``k`` (:func:`~vertebrafe.clinical.augment.smooth_min`, the
    ``bridge`` of vertebroplasty) at the level ``level``: ``(u - level) / |grad u|`` and the unit normal."""
    rs, gs = [], []
    for c, R, a in zip(centres, rots, axes):
        y = ((x - c) @ R) / a
        r = np.sqrt(np.sum(y * y, axis=1))
        rs.append(r)
        gs.append(((y / a) @ R.T) / np.maximum(r, 1e-300)[:, None])
    a, b = rs
    hh = np.maximum(k - np.abs(a - b), 0.0) / k
    u = np.minimum(a, b) - 0.25 * k * hh * hh
    wa = np.where(a <= b, 1.0 - 0.5 * hh, 0.5 * hh)[:, None]
    grad = wa * gs[0] + (1.0 - wa) * gs[1]
    n = np.maximum(np.linalg.norm(grad, axis=1), 1e-300)
    return (u - level) / n, grad / n[:, None]


def pillow_bolus(segment, level, eligible, centres, rots, axes, scale, volume_mm3, h, extent=None, blend=0.0):
    """Pillow the boluses ``min_j r_j <= scale`` (``r_j`` the normalised radius of ellipsoid ``j``: local
    ``centres (b, 3)``, ``rots (b, 3, 3)``, ``axes (b, 3)`` at scale 1, mm) into the cells ``eligible`` (bool
    ``(m,)``, the level's cancellous cells) of ``segment``'s mesh, the scale adjusted so the enclosed volume is
    ``volume_mm3``; ``h`` the element size (mm); ``extent``: cut by vertebroplasty's vertical extent (the
    central fraction of the height along the columns; None: whole ellipsoids); ``blend`` > 0: two ellipsoids
    joined by the smooth minimum of their radii over that width (vertebroplasty's ``bridge``, one bolus or two).
    Returns a :class:`PillowedBolus` (module docstring)."""
    mesh = segment.mesh
    R, o = (np.asarray(v, float) for v in segment.frames[level])
    cells = np.asarray(mesh.cells, np.int64)
    m0, n0 = cells.shape[0], mesh.n_points
    eligible = np.asarray(eligible, bool)
    centres, rots, axes = (np.asarray(v, float) for v in (centres, rots, axes))

    def local(x):
        return (x - o) @ R

    def radii(x, sc):
        """``(b, k)``: each ellipsoid's normalised radius at scale ``sc``; with ``blend`` one row, their smooth
        minimum (homogeneous: the blend at scale 1 over ``sc``)."""
        r = _radii(x, centres, rots, axes)
        if blend:
            return smooth_min(r[0], r[1], blend)[None, :] / sc
        return r / sc

    slab = None if extent is None else _Slab(segment, level, extent, local)
    inc = np.zeros(m0, bool)
    k = np.flatnonzero(eligible)
    Xc = local(mesh.points[cells[k]].mean(axis=1))
    inc[k] = radii(Xc, scale).min(axis=0) < 1.0
    if slab is not None:                             # and the cell's centre within the slab
        inc[k] &= slab.field(Xc, cells[k, 0])[0] < 0.0
    raw = int(inc.sum())
    inc = clean_set(cells, inc, eligible)
    _check_clear(mesh, cells, inc, eligible, level, h)
    vol = mesh.cell_volumes()
    found = find_boluses(cells, mesh.cell_centers(), vol, inc)
    owner_of = np.full(m0, -1)
    for b in found:
        c = local(np.asarray(mesh.cell_centers()[b.cells]).mean(axis=0, keepdims=True))
        owner_of[b.cells] = int(np.argmin(radii(c, scale)[:, 0]))
    b = centres.shape[0]                             # (a bridged pair is one field, in one piece or two)
    if not blend and (len(found) != b or np.unique(owner_of[inc]).size != b):
        raise InputError(f"surface = 'pillowed': the {centres.shape[0]} cement boluses of {level} make "
                         f"{len(found)} connected cell sets at element size {h:g} mm (they come within a cell of "
                         "each other, or one is less than a cell across); use surface='fitted', a larger gap "
                         "(offset) or a finer mesh")
    if blend:
        _check_bridged_pieces(found, centres, rots, axes, scale, blend, level, h)

    p1, c1, surf, owner1 = pillow(mesh.points, cells, inc, shrink=0.0)
    inc1 = np.concatenate([inc, np.ones(owner1.size, bool)])
    parent1 = np.concatenate([np.arange(m0), owner1])
    p, c2, _, owner2 = pillow(p1, c1, ~inc1, shrink=0.0)
    inner = n0 + np.arange(surf.size)
    outer = p1.shape[0] + np.arange(surf.size)
    cement = np.concatenate([inc1, np.zeros(owner2.size, bool)])
    parent = np.concatenate([parent1, parent1[owner2]])

    quads, qowner = boundary_quads(c1, inc1)          # the surface, outward, on the original nodes
    which = owner_of[parent1[qowner]]                 # each quad's bolus
    node_bolus = np.full(p.shape[0], -1)
    node_bolus[quads.ravel()] = np.repeat(which, 4)
    sb = node_bolus[surf]
    X = local(p)
    xq = X[quads]
    nq = np.cross(xq[:, 2] - xq[:, 0], xq[:, 3] - xq[:, 1])
    normal = np.zeros_like(X)
    np.add.at(normal, quads.ravel(), np.repeat(nq, 4, axis=0))
    normal = normal[surf] / np.linalg.norm(normal[surf], axis=1)[:, None]
    x0 = X[surf].copy()

    def project(x, sc):
        if slab is not None or blend:                # onto the boundary of the bolus cut by the slab, or bridged
            def field(y):
                if blend:
                    ge, ne = _union_field(y, centres, rots, axes, blend, sc)
                else:
                    ge, ne = _ellipsoid_field(y, centres[sb], rots[sb], axes[sb] * sc)
                if slab is None:
                    return ge, ne
                gs, ns = slab.field(y, surf)
                return np.maximum(ge, gs), np.where((ge >= gs)[:, None], ne, ns)
            return project_to_level_set(x, field, max_step=h)[0]
        out = np.empty_like(x)
        for j in range(centres.shape[0]):
            sel = sb == j
            out[sel] = closest_on_ellipsoid(x[sel], centres[j], rots[j], axes[j] * sc)
        return out

    def fit_volume(x, sc, rounds):
        for _ in range(rounds):
            X[surf] = x
            sc *= (volume_mm3 / enclosed_volume(X, quads)) ** (1.0 / 3.0)
            x = project(x, sc)
        return x, sc

    ps, sc = fit_volume(project(x0, scale), scale, 4)
    loc = np.full(p.shape[0], -1)
    loc[surf] = np.arange(surf.size)
    qe = np.unique(np.sort(loc[quads[:, [0, 1, 1, 2, 2, 3, 3, 0]].reshape(-1, 2)], axis=1), axis=0)
    deg = np.bincount(qe.ravel(), minlength=surf.size)[:, None]
    for _ in range(SURFACE_PASSES):
        acc = np.zeros_like(ps)
        np.add.at(acc, qe[:, 0], ps[qe[:, 1]])
        np.add.at(acc, qe[:, 1], ps[qe[:, 0]])
        ps = project(0.5 * ps + 0.5 * acc / deg, sc)
    ps, sc = fit_volume(ps, sc, 3)
    reach = float(np.linalg.norm(ps - x0, axis=1).max())
    if reach > MAX_REACH * h:
        raise MeshError(f"surface = 'pillowed': the surface of the cement of {level} lies up to {reach:.2f} mm from its "
                        f"cells at element size {h:g} mm (more than {MAX_REACH:g} cells: it runs outside the "
                        "cancellous bone or the bolus is thinner than a cell); use surface='fitted' or a finer mesh")
    X[surf] = ps
    was_in = radii(x0, sc)[sb, np.arange(surf.size)] < 1.0          # (bridged: one row, sb all 0)
    if slab is not None:
        was_in &= slab.field(x0, surf)[0] < 0.0
    X[inner] = np.where(was_in[:, None], x0, ps) - LAYER_DEPTH * h * normal
    X[outer] = np.where(~was_in[:, None], x0, ps) + LAYER_DEPTH * h * normal
    moved = np.concatenate([surf, inner, outer])
    p[moved] = X[moved] @ R.T + o

    fixed = np.ones(p.shape[0], bool)                 # nodes of other tissues, and the surface, stay
    fixed[c2[eligible[parent]].ravel()] = False
    fixed[c2[~eligible[parent]].ravel()] = True
    fixed[surf] = True
    on_surface = np.zeros(p.shape[0], bool)
    on_surface[surf] = True
    free = edge_rings(c2, on_surface, RELAX_RINGS) & ~fixed
    near = np.flatnonzero(free[c2].any(axis=1))
    p, _ = relax(p, c2[near], free, passes=RELAX_PASSES)
    p, tangled = untangle(p, c2[near], free)          # the free nodes around tangled cells moved
    if tangled:
        raise MeshError(f"surface = 'pillowed': the pillowed cement of {level} leaves {tangled} tangled cells (a "
                        f"corner's scaled Jacobian <= 0) at element size {h:g} mm after untangling; use "
                        "surface='fitted' or a finer mesh")
    q = cell_quality(p, c2[near], HEX8)
    info = dict(cleaned=int(abs(int(inc.sum()) - raw)), staircase_mm3=float(vol[inc].sum()),
                enclosed_mm3=enclosed_volume(local(p), quads),
                cement_mm3=float(cell_volumes(p, c2[cement], HEX8).sum()), surface_nodes=int(surf.size),
                layer_cells=int(c2.shape[0] - m0), min_scaled_jacobian=float(q.scaled_jacobian.min()),
                surface_move_mm=reach)
    return PillowedBolus(points=p, cells=c2, layered_cell=parent.astype(np.int64), cement=cement, scale=float(sc),
                         info=info)


def _check_bridged_pieces(found, centres, rots, axes, scale, blend, level, h):
    """InputError unless the staircase's connected cell sets ``found`` are as many as the pieces of the bridged
    bolus at ``scale`` (:func:`~vertebrafe.clinical.augment.bridge_neck`: one where the bridge closes the gap,
    else two). Near the bridge's reach the union's waist is thin (a neck, or a septum of bone, thinner than a
    cell), and the staircase may join what the bolus keeps apart (a cement neck across the septum) or split
    what it joins; its stresses then belong to another bolus (docs/validation.md, "Today's benchmark on these
    boluses": the 3 mL pair bridged at 4 mm, 4.0-4.1 mm apart, a septum 0.6-1.1 mm thin, joined by 12 cells
    across it at 2 mm, not at 1.5 or 1 mm)."""
    gap, neck = bridge_neck(centres, rots, axes, scale, blend)
    pieces = bolus_pieces(gap, neck)
    if len(found) == pieces:
        return
    if pieces == 2:
        waist = (f"the bridge leaves the two cement boluses of {level} apart (their gap, {gap:.2f} mm, is wider than "
                 "the bridge; a thin septum of bone lies between them)")
    else:
        waist = f"the bridge joins the two cement boluses of {level} by a neck {neck:.2f} mm across (gap {gap:.2f} mm)"
    what = (f"{waist}, but their cells at element size {h:g} mm make {len(found)} connected set(s), not {pieces}: the "
            f"mesh would {'join them with cement across the septum' if len(found) < pieces else 'cut the bolus apart'}")
    raise InputError(f"surface = 'pillowed': {what}; use a bridge wider than the gap (one bolus; the gap widens a "
                     "little as the neck takes up volume), no bridge (two boluses, which must be a cell apart) or a "
                     "finer mesh")


def _check_clear(mesh, cells, inc, eligible, level, h):
    """InputError unless the staircase ``inc`` has cells and shares no node with a cell outside ``eligible``."""
    if not inc.any():
        raise InputError(f"surface = 'pillowed': the cement of {level} holds no whole cell at element size {h:g} mm; "
                         "use surface='fitted' or a finer mesh")
    touch = np.zeros(mesh.n_points, bool)
    touch[cells[~eligible].ravel()] = True
    if touch[cells[inc].ravel()].any():
        raise InputError(f"surface = 'pillowed' needs every cement bolus of {level} a cell clear of the cortex and "
                         f"endplates at element size {h:g} mm; this one reaches them (the bolus is too large or "
                         "too close to the wall): use surface='fitted', a smaller volume or a finer mesh")
