"""Pillowing of a hex8 cell set: one layer of hexahedra inserted along the set's boundary quads.

A set of cells of a hex8 mesh (an inclusion made of whole cells, a staircase) cannot have its boundary moved
onto a smooth surface on the same topology: a cell with two or three faces on the boundary (at an edge or
corner of the staircase) is flattened or folded. Pillowing (Mitchell & Tautges 1995) duplicates the nodes of
the boundary quads, switches the set's cells to the copies and joins each boundary quad to its copy by a new
hexahedron, so that no cell of the set has more than one face on the boundary any more: the original quads can
then be placed on the smooth surface. Doing it on both sides of the boundary (:func:`pillow` on the set, then
on its complement) leaves every cell with a face on the boundary a layer cell with exactly one.

:func:`pillow` does the topology (and an initial shrink that keeps every cell's volume positive and the
union's volume); :func:`relax` is a guarded Laplacian smoothing of chosen nodes; :func:`clean_set` removes a
set's protrusions and fills its notches before pillowing; :func:`project_to_level_set` places points on a
smooth surface given by a signed field; :func:`untangle` moves the free nodes around tangled cells
(:func:`tangled`) until their corners are positive.
"""
from __future__ import annotations

import numpy as np

from ..elements import HEX8, HEX8_FACES
from .quality import cell_quality

__all__ = ["pillow", "relax", "boundary_quads", "clean_set", "edge_rings", "project_to_level_set", "tangled",
           "untangle", "HEX8_EDGES", "UNTANGLE_TARGET"]

#: The twelve edges of a hexahedron in VTK order.
HEX8_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4],
                       [0, 4], [1, 5], [2, 6], [3, 7]], dtype=np.int64)


def boundary_quads(cells, selected):
    """Faces ``(f, 4)`` between a cell of ``selected`` (bool ``(m,)``) and a cell outside it, in the node order
    of the selected cell's outward face (right-hand rule: the normal points out of the set), and the index of
    that selected cell ``(f,)``. Faces of the selected cells with no neighbour (the mesh's own boundary, e.g. a
    symmetry plane) are not part of it."""
    m = cells.shape[0]
    faces = cells[:, HEX8_FACES].reshape(-1, 4)                       # (6 m, 4), outward per cell
    owner = np.repeat(np.arange(m), 6)
    key = np.sort(faces, axis=1)
    _, inv, count = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    shared = count[inv] == 2
    sel = np.asarray(selected, bool)
    # for each shared face, is the other owner selected?  sum of selected owners per unique face
    nsel = np.bincount(inv, weights=sel[owner].astype(float), minlength=count.size)
    mine = shared & sel[owner] & (nsel[inv] == 1)
    return faces[mine], owner[mine]


def clean_set(cells, selected, eligible, rounds=20):
    """The cell set ``selected`` (bool ``(m,)``) without protrusions and notches: a cell of the set with two
    opposite faces, or four or more faces, against cells outside it leaves the set; a cell of ``eligible``
    (bool ``(m,)``) outside it with that many faces against the set joins it; repeated until none changes
    (at most ``rounds`` times), each time joining the cells that may join, or, when none may, removing.
    Returns the cleaned set, bool ``(m,)``. A set of cells whose centres lie inside a smooth surface has such
    cells where the surface is thin or curved at the cell size; their faces are nearly normal to the surface,
    and the layer cells pillowed over them are sheared flat when the faces go onto it. Faces with no neighbour (the
    mesh's boundary) do not count. Pass ``eligible`` all False to only remove cells."""
    cells = np.asarray(cells, np.int64)
    m = cells.shape[0]
    key = np.sort(cells[:, HEX8_FACES].reshape(-1, 4), axis=1)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    pair = np.full(6 * m, -1)
    same = inv[order[1:]] == inv[order[:-1]]
    a, b = order[:-1][same], order[1:][same]
    pair[a], pair[b] = b // 6, a // 6                 # the neighbour cell across each face (-1: none)
    nb = pair.reshape(m, 6)
    has = nb >= 0
    sel = np.array(selected, bool)
    elig = np.asarray(eligible, bool)
    for _ in range(rounds):
        other = has & (sel[np.maximum(nb, 0)] != sel[:, None])
        # HEX8_FACES lists the faces in opposite pairs: (0, 1), (2, 3), (4, 5)
        opposite = (other[:, 0] & other[:, 1]) | (other[:, 2] & other[:, 3]) | (other[:, 4] & other[:, 5])
        flip = (opposite | (other.sum(axis=1) >= 4)) & (sel | elig)
        if not flip.any():
            break
        join = flip & ~sel
        if join.any():                                # notches first, then (with none left) protrusions
            sel[join] = True
        else:
            sel[flip] = False
    return sel


def pillow(points, cells, selected, shrink=0.25):
    """Insert one layer of hexahedra along the boundary of the cell set ``selected``.

    Parameters
    ----------
    points : ndarray ``(n, 3)``; cells : ndarray ``(m, 8)``, hex8 in VTK order, positive Jacobians.
    selected : bool ``(m,)``, the set (e.g. an inclusion's cells).
    shrink : the copies start at this fraction of the way from their node to the mean of the centres of the
        selected cells around it (0 leaves the layer cells flat; the union of the cells keeps its volume
        when the set does not touch the mesh's boundary).

    Returns
    -------
    points ``(n + b, 3)`` (the copies appended, in the order of ``nodes``), cells ``(m + f, 8)`` (the old
    cells in their order, the selected ones on the copies, then one layer cell per boundary quad: bottom face
    the copies, top face the original quad, so the layer's top faces are the set's old boundary), ``nodes``
    ``(b,)`` the original boundary nodes (the copy of ``nodes[i]`` is ``n + i``) and ``owner`` ``(f,)`` the
    selected cell each layer cell was made against.

    Faces of the set on the mesh's own boundary are not pillowed; their nodes on a boundary quad are copied,
    and with ``shrink > 0`` such a copy leaves the mesh's boundary (the mean centre lies inside), so the union
    keeps its volume only for a set away from it: pass ``shrink=0`` and place those copies (e.g. in their
    symmetry plane). The layer cells' orientation is positive once the copies lie inside the set.
    """
    points = np.asarray(points, float)
    cells = np.asarray(cells, np.int64)
    sel = np.asarray(selected, bool)
    n = points.shape[0]
    quads, owner = boundary_quads(cells, sel)
    nodes = np.unique(quads)
    copy = np.full(n, -1, np.int64)
    copy[nodes] = n + np.arange(nodes.size)
    new_cells = cells.copy()
    sc = new_cells[sel]
    sc = np.where(copy[sc] >= 0, copy[sc], sc)
    new_cells[sel] = sc
    layer = np.concatenate([copy[quads], quads], axis=1)
    # initial copies: towards the mean centre of the selected cells around the node
    centres = points[cells[sel]].mean(axis=1)
    acc = np.zeros((n, 3))
    cnt = np.zeros(n)
    np.add.at(acc, cells[sel].ravel(), np.repeat(centres, 8, axis=0))
    np.add.at(cnt, cells[sel].ravel(), 1.0)
    target = acc[nodes] / cnt[nodes, None]
    new_pts = np.concatenate([points, points[nodes] + shrink * (target - points[nodes])])
    return new_pts, np.concatenate([new_cells, layer]), nodes, owner


def edge_rings(cells, seed, rings):
    """Nodes ``(n,)`` bool within ``rings`` hex8 edges of the ``seed`` nodes ``(n,)`` bool (the seed included):
    the neighbourhood that :func:`relax` smooths around a projected surface."""
    near = np.asarray(seed, dtype=bool).copy()
    e = np.unique(np.sort(cells[:, HEX8_EDGES].reshape(-1, 2), axis=1), axis=0)
    for _ in range(rings):
        near[e[near[e[:, 0]], 1]] = True
        near[e[near[e[:, 1]], 0]] = True
    return near


def _scaled(points, cells):
    return cell_quality(points, cells, HEX8).scaled_jacobian


def relax(points, cells, free, passes=5, weight=1.0, min_scaled=0.2):
    """Guarded Laplacian smoothing: ``passes`` times, every free node moves (by ``weight`` of the way) to the
    mean of its edge neighbours; a move is undone where it leaves a cell around the node with a scaled
    Jacobian below ``min(min_scaled, the cell's value before the pass)``.

    ``free``: bool ``(n, 3)`` (or ``(n,)``), the coordinates that may move (a node on a symmetry plane: its
    two in-plane components). Returns the new points and the scaled Jacobian per cell."""
    p = np.array(points, float)
    free = np.asarray(free, bool)
    if free.ndim == 1:
        free = np.repeat(free[:, None], 3, axis=1)
    e = cells[:, HEX8_EDGES].reshape(-1, 2)
    e = np.unique(np.sort(e, axis=1), axis=0)
    deg = np.bincount(e.ravel(), minlength=p.shape[0]).astype(float)
    moving = np.flatnonzero(free.any(axis=1))
    q = _scaled(p, cells)
    for _ in range(passes):
        s = np.zeros_like(p)
        np.add.at(s, e[:, 0], p[e[:, 1]])
        np.add.at(s, e[:, 1], p[e[:, 0]])
        avg = s / np.maximum(deg, 1)[:, None]
        trial = p.copy()
        trial[moving] += weight * np.where(free[moving], avg[moving] - p[moving], 0.0)
        step = np.zeros(p.shape[0], bool)
        step[moving] = True
        for _ in range(20):                            # undo the moves of the nodes of cells the pass spoiled
            qt = _scaled(trial, cells)
            bad = qt < np.minimum(min_scaled, q) - 1e-12
            if not bad.any():
                break
            undo = np.zeros(p.shape[0], bool)
            undo[cells[bad].ravel()] = True
            undo &= step
            if not undo.any():
                break
            trial[undo] = p[undo]
            step &= ~undo
        p = trial
        q = _scaled(p, cells)
    return p, q


def project_to_level_set(x, field, max_step, iterations=30, tol=1e-9):
    """Points ``(k, 3)`` moved onto the zero level of a signed field by Newton steps along its gradient.

    ``field(x)`` returns ``(g (k,), grad (k, 3))``, ``g`` negative inside; each step is
    ``-g grad / |grad|^2``, at most ``max_step`` long (a point far from the surface, or where the field is
    flat, approaches it by steps of that length), until ``|g| <= tol`` everywhere or ``iterations``. For a
    field that is a distance to first order near its zero level (``|grad|`` about 1) a point lands at about
    its closest point on the surface, with an error of second order in its distance. Returns the points and
    the final ``|g|`` ``(k,)``."""
    y = np.array(x, dtype=float)
    g, G = field(y)
    for _ in range(iterations):
        if np.all(np.abs(g) <= tol):
            break
        n2 = np.maximum(np.einsum("ki,ki->k", G, G), 1e-300)
        step = -(g / n2)[:, None] * G
        length = np.linalg.norm(step, axis=1)
        step *= np.minimum(1.0, max_step / np.maximum(length, 1e-300))[:, None]
        y = y + step
        g, G = field(y)
    return y, np.abs(g)


def tangled(points, cells):
    """Bool ``(m,)``: the hex8 ``cells`` that are tangled on ``points``, a corner's scaled Jacobian <= 0 or the
    Jacobian <= 0 at a Gauss point. A trilinear hexahedron with a non-positive corner Jacobian does not map
    one-to-one, even where every Gauss point's Jacobian is positive (the element integrates over a folded
    region and its stresses are meaningless)."""
    q = cell_quality(points, cells, HEX8)
    return (q.scaled_jacobian <= 0.0) | (q.min_jacobian <= 0.0)


#: Corner Jacobian (relative to a cube of the cell's mean edge length) that :func:`untangle` pushes every
#: corner of the cells it moves up to: a margin above 0, so that the corners it leaves are clearly positive.
UNTANGLE_TARGET = 0.1


def _corner_penalty(x, cells, scale, target):
    """``sum max(0, target - a)^2`` over the corners of ``cells (k, 8)`` on ``x (n, 3)``, ``a`` each corner's
    Jacobian determinant over ``scale (k,)`` (a cube's), and its gradient ``(n, 3)``."""
    G = HEX8.corner_gradients                                   # (corner, node, 3)
    J = np.einsum("cad,kai->kcid", G, x[cells])                 # dx_i / dxi_d at each corner
    cof = np.stack([np.cross(J[..., 1], J[..., 2]), np.cross(J[..., 2], J[..., 0]),
                    np.cross(J[..., 0], J[..., 1])], axis=-1)   # cofactors: d det / d J_id
    a = np.einsum("kci,kci->kc", J[..., 0], cof[..., 0]) / scale[:, None]
    short = np.maximum(target - a, 0.0)
    w = -2.0 * short / scale[:, None]                           # d penalty / d det
    g_nodes = np.einsum("kc,kcid,cad->kai", w, cof, G)         # (k, node, 3)
    grad = np.zeros_like(x)
    np.add.at(grad, cells.ravel(), g_nodes.reshape(-1, 3))
    return float(np.sum(short * short)), grad


def untangle(points, cells, free, rings=1, max_rings=4, iterations=500):
    """Tangled cells (:func:`tangled`: a corner's Jacobian <= 0) undone by moving the free nodes (bool ``(n,)``)
    within ``rings`` edge rings of them: the cells around those nodes get every corner's Jacobian, relative
    to a cube of the cell's mean edge length, up to :data:`UNTANGLE_TARGET` by minimising the sum of the
    squared shortfalls (L-BFGS, at most ``iterations``; Knupp's untangling objective, smoothed). Cells with no
    moved node keep their shape, so none tangles anew. Where cells stay tangled, again with one more ring, up to
    ``max_rings``. Returns the points and the number of tangled cells left."""
    from scipy.optimize import minimize

    p = np.array(points, float)
    free = np.asarray(free, bool)
    bad = tangled(p, cells)
    for r in range(rings, max_rings + 1):
        if not bad.any():
            break
        seed = np.zeros(p.shape[0], bool)
        seed[cells[bad].ravel()] = True
        move = np.flatnonzero(edge_rings(cells, seed, r) & free)
        near = cells[np.isin(cells, move).any(axis=1)]
        if near.size == 0:
            continue
        edge = p[near[:, HEX8_EDGES[:, 1]]] - p[near[:, HEX8_EDGES[:, 0]]]
        scale = (0.5 * np.linalg.norm(edge, axis=2).mean(axis=1)) ** 3
        nodes, local = np.unique(near, return_inverse=True)       # the objective on those cells' nodes only
        local = local.reshape(near.shape)
        moving = np.searchsorted(nodes, move)
        x = p[nodes]

        def f(v):
            x[moving] = v.reshape(-1, 3)
            val, grad = _corner_penalty(x, local, scale, UNTANGLE_TARGET)
            return val, grad[moving].ravel()

        res = minimize(f, p[move].ravel(), jac=True, method="L-BFGS-B",
                       options=dict(maxiter=iterations, ftol=0.0, gtol=1e-12))
        trial = p.copy()
        trial[move] = res.x.reshape(-1, 3)
        tb = tangled(trial, cells)
        if tb.sum() < bad.sum():
            p, bad = trial, tb
    return p, int(bad.sum())
