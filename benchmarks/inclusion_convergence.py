#!/usr/bin/env python
"""A stiff spherical inclusion against Eshelby's closed form: which surface representation converges?

An octant ``[0, L]^3`` mm (``L = --box``, default 8) of a matrix (E 100 MPa) with a sphere of radius 1 mm at
the origin (E ``--ratio`` x 100 MPa, default 74, the cement-bone composite against L1's cancellous bone;
nu 0.3 both, ``--nu-m``/``--nu-i``), symmetry planes x = 0, y = 0, z = 0 (normal displacement held) and
a uniform compression of 1 MPa on z = L (the far field, uniaxial). Closed form: the uniform stress inside
(:func:`vertebrafe.verification.eshelby_sphere_stress`; the finite box's error is measured with ``--box``).

Representations of the sphere on meshes with ``n`` cells across its diameter (``h = 2 / n`` mm):

* ``conforming``: :func:`vertebrafe.verification.sphere_octant_mesh` (cube-sphere blocks, cell faces on the
  sphere);
* ``staircase``: a tensor grid, uniform ``h`` up to ``1.25`` mm, then logarithmically graded (first cell
  ``h``, growth ``1 + h / 1.25``) to ``L``; cells whose centre is inside are inclusion;
* ``snapped``: that grid with nodes of crossing edges, then of crossing diagonals, moved onto the sphere by
  the helpers of :mod:`vertebrafe.clinical.snap` (the nearer end, at most half the segment, the
  scaled-Jacobian guard 0.2; a node on a symmetry plane does not leave it, as the tie rule keeps it on
  the mid-plane of a whole sphere); cells wholly inside or outside by their nodes, the others
  (``unresolved``) by the majority of 6^3 samples;
* ``tet10`` (only when named in ``--reps``): the conforming mesh split into quadratic tetrahedra
  (:func:`vertebrafe.verification.tetra_mesh`, straight edges: the same inscribed polyhedron);
  ``staircase-tet10``, ``snapped-tet10`` (likewise on request): those grids split the same way (six
  tetrahedra per cell around its 0-6 diagonal, each tetrahedron the phase of its cell); the row records the
  faces the split leaves unmatched inside (``open_faces``, 0: conforming) and the tetrahedra whose
  orientation the snapping flipped (``inverted``);
* ``pillowed`` (only when named in ``--reps``): the staircase grid's inclusion cells pillowed on both sides
  of their boundary quads and the surface projected onto the sphere (:func:`pillowed_sphere`, built on
  :mod:`vertebrafe.mesh.pillow`): every cell with a face on the sphere is a layer cell with one face there,
  the inner layer inclusion; ``pillowed-snapped`` starts from the snapped grid, ``pillowed-inside`` and
  ``pillowed-snapped-inside`` pillow the inclusion's side only (a row that folds a cell is not solved);
  ``pillowed-tet10``: the pillowed mesh split by ``tetra_mesh(..., quadratic=True, split="centre")``. The
  rows record the boundary quads, the folded cells and the minimum scaled Jacobian (``--pillow-depth``:
  the layers' thickness in h, default 0.3);
* ``mixed``: that grid with cut cells given the laminate rule (:func:`vertebrafe.elasticity.laminate`) with
  the fraction and normal (:func:`vertebrafe.clinical.mixing.cut_normals`) from 8^3 samples; the
  inclusion's statistics take the cement phase's stress of cut cells
  (:func:`vertebrafe.clinical.phasestress.phase_stress_maps`) weighted by its volume.

Per row: the inclusion volume's error, the volume mean of the inclusion's stress (``szz`` and the von Mises
of the mean tensor ``vm``) and their relative errors against the closed form, the volume-weighted 95th
percentile of the cells' von Mises (``p95``), and the mean axial stress of the core ``|x| <= 0.5`` mm
(cells whose centre lies there; the sphere less the coarsest ``h``). ``rate``: the observed order
``log(e_coarse / e_fine) / log(h_coarse / h_fine)`` of the mean axial stress's error against the
previous row. Usage::

    python benchmarks/inclusion_convergence.py --n 4,8,12,16,24 --json out.json
    python benchmarks/inclusion_convergence.py --n 8,16 --reps conforming --box 16
    python benchmarks/inclusion_convergence.py --n 8 --reps conforming --formulations bbar --box 16 --frozen 8
    python benchmarks/inclusion_convergence.py --n 4,8,12,16,24 --reps tet10 --formulations bbar --box 16
    python benchmarks/inclusion_convergence.py --n 4,8,12,16 --reps snapped-tet10,staircase-tet10 --formulations bbar
    python benchmarks/inclusion_convergence.py --n 4,8,12,16,24,32 --reps pillowed,pillowed-snapped --solver amg

``--frozen N``: the conforming N mesh split into 1, 8, 64 cells each by their trilinear maps (the faceted
sphere kept): separates the error of the field's discretisation from that of the inscribed polyhedron.
The mixed rows also print the mean with the cut cells' own (homogenised) stress instead of their cement
phase's (``own stress``), the whole cells' mean, and the cut cells' cement phase's mean with their share of
the inclusion's volume.

Units: mm, MPa; ``cpu`` the process CPU time of the row (s).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from types import SimpleNamespace

import numpy as np

import vertebrafe as vf
from vertebrafe.clinical.mixing import cut_normals
from vertebrafe.clinical.phasestress import phase_stress_maps
from vertebrafe.clinical.snap import _guard, _moves, _segments, cell_phases
from vertebrafe.elasticity import isotropic, laminate
from vertebrafe.elements import HEX8
from vertebrafe.fem.solution import von_mises
from vertebrafe.mesh.pillow import edge_rings, pillow, relax
from vertebrafe.materials import PHASE_TISSUES
from vertebrafe.verification import _KUHN, eshelby_sphere_stress, sphere_octant_mesh, subdivide_hexes, tetra_mesh

R = 1.0
E_M = 100.0
UNIFORM = 1.25          # mm: the grids are uniform up to here
CORE = 0.5              # mm: radius of the core of the core statistic (the sphere less the coarsest h)
REPS = ("conforming", "staircase", "snapped", "mixed")      # and "tet10", "*-tet10", "pillowed*" (on request)
#: the pillowed reps: (start, sides) of :func:`pillowed_sphere`
PILLOWED = {"pillowed": ("staircase", 2), "pillowed-snapped": ("snapped", 2),
            "pillowed-inside": ("staircase", 1), "pillowed-snapped-inside": ("snapped", 1)}


def _revision():
    try:
        import subprocess

        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def graded_axis(n, box):
    """Node coordinates of one axis: uniform ``h = 2 / n`` up to :data:`UNIFORM` mm, then logarithmic."""
    h = 2 * R / n
    nu = int(np.ceil(UNIFORM / h - 1e-9))
    x1 = nu * h
    ng = max(1, int(np.ceil(np.log(box / x1) * x1 / h)))
    return np.concatenate([np.arange(nu + 1) * h, x1 * (box / x1) ** (np.arange(1, ng + 1) / ng)])


def grid_mesh(n, box):
    """Tensor grid of :func:`graded_axis` on ``[0, box]^3`` with node and outward face sets of the sides."""
    ax = graded_axis(n, box)
    m = vf.box((1.0, 1.0, 1.0), (ax.size - 1,) * 3)
    idx = np.rint(m.points * (ax.size - 1)).astype(int)
    m.points = ax[idx]
    return m


def _stiffness(ratio, nu_m, nu_i):
    return isotropic(E_M, nu_m), isotropic(ratio * E_M, nu_i)


def _samples(points, cells, q):
    """Midpoint samples ``(k, q^3, 3)`` of the trilinear cells and their weights ``(k, q^3)`` (det J)."""
    t = (np.arange(q) + 0.5) / q * 2 - 1
    xi = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    from vertebrafe.elements import hex8_shape, hex8_shape_gradients

    N, dN = hex8_shape(xi), hex8_shape_gradients(xi)
    X = points[cells]
    x = np.einsum("qa,mai->mqi", N, X)
    w = np.abs(np.linalg.det(np.einsum("qak,mai->mqik", dN, X)))
    return x, w


def snap_sphere(mesh, radius=R):
    """Points with the nodes of crossing edges (then diagonals) snapped onto the sphere and the node level
    set (moved nodes 0), by :mod:`vertebrafe.clinical.snap`'s helpers; returns ``(points, g, moved)``."""
    points = mesh.points
    n = points.shape[0]
    cells = mesh.cells

    def sphere(x):
        return np.linalg.norm(x, axis=1) - radius

    g = SimpleNamespace(on=lambda nodes: sphere)           # a level set as snap's helpers take it
    gn = sphere(points)
    box = points.max(axis=0)
    plane = np.isclose(points, 0.0, atol=1e-12)
    movable = ~np.any(np.isclose(points, box[None]), axis=1)
    new, moved = points.copy(), np.zeros(n, bool)
    for e in _segments(cells):
        inside, outside = (gn < -1e-10) & ~moved, (gn > 1e-10) & ~moved
        e = e[(inside[e[:, 0]] & outside[e[:, 1]]) | (outside[e[:, 0]] & inside[e[:, 1]])]
        node, pos = _moves(g, new, e, movable & ~moved)
        keep = ~np.any(plane[node] & ~np.isclose(pos, 0.0, atol=1e-12), axis=1)   # stays on its symmetry plane
        node, pos = node[keep], pos[keep]
        step = np.zeros(n, bool)
        step[node] = True
        trial = new.copy()
        trial[node] = pos
        touched = np.any(step[cells], axis=1)
        new = _guard(points, trial, new, cells[touched], step)
        moved |= step
    gn = np.where(moved, 0.0, gn)
    return new, gn, moved


PILLOW_DEPTH = 0.3      # the layers' other nodes at this fraction of h inside / outside the sphere
PILLOW_PASSES = 5       # guarded Laplacian passes of the nodes near the surface
PILLOW_RINGS = 2        # edge rings around the surface whose nodes are smoothed


def pillowed_sphere(n, box, start="staircase", sides=2, depth=None, passes=PILLOW_PASSES,
                    rings=PILLOW_RINGS, min_scaled=0.2):
    """The grid of :func:`grid_mesh` with the inclusion's boundary pillowed and placed on the sphere.

    ``start``: the ``staircase`` cells (centre inside) or the ``snapped`` grid and its cells (module
    docstring) give the inclusion's cell set. :func:`vertebrafe.mesh.pillow.pillow` inserts one layer of
    hexahedra inside its boundary quads (the faces between an inclusion and a matrix cell; the faces on the
    symmetry planes are not part of it), and with ``sides=2`` one more outside them (the matrix's cells
    pillowed the same way), so that every cell with a face on the surface is a layer cell with one face
    there. The boundary quads' nodes are projected radially onto the sphere (a node on a symmetry plane
    stays in it); on the same ray the inner layer's copy of a node at radius ``r`` goes to
    ``min(r, R) - depth h``, the outer one's to ``max(r, R) + depth h`` (a flat offset sphere would give
    the matrix's cells at the staircase's inner corners two faces on it); then ``passes`` guarded Laplacian passes (:func:`vertebrafe.mesh.pillow.relax`, scaled
    Jacobian ``min_scaled``) move the other nodes within ``rings`` edge rings of the surface (not the
    surface, not the box's far sides; a symmetry plane's nodes in their plane). The inner layer is
    inclusion, the outer matrix: the inclusion is the cells inside the projected surface.

    Returns ``(mesh, inc (m,) bool, info)`` with the boundary quads, the folded cells (minimum Jacobian
    <= 0) and the minimum scaled Jacobian before and after the smoothing."""
    depth = PILLOW_DEPTH if depth is None else depth
    mesh = grid_mesh(n, box)
    h = 2 * R / n
    if start == "snapped":
        pts, gn, _ = snap_sphere(mesh)
        inc, unresolved = cell_phases(mesh.cells, gn)
        if unresolved.any():
            x, w = _samples(pts, mesh.cells[unresolved], 6)
            frac = (w * (np.linalg.norm(x, axis=2) <= R)).sum(1) / w.sum(1)
            inc[np.flatnonzero(unresolved)] = frac >= 0.5
    elif start == "staircase":
        pts = mesh.points
        inc = np.linalg.norm(pts[mesh.cells].mean(axis=1), axis=1) < R
    else:
        raise ValueError(start)
    n0 = pts.shape[0]
    p1, c1, surf, _ = pillow(pts, mesh.cells, inc, shrink=0.0)
    quads = c1.shape[0] - mesh.n_cells
    inc = np.concatenate([inc, np.ones(quads, bool)])
    inner = n0 + np.arange(surf.size)
    p, cells = p1, c1
    if sides == 2:
        p, cells, surf2, _ = pillow(p1, c1, ~inc, shrink=0.0)
        assert np.array_equal(surf2, surf)
        inc = np.concatenate([inc, np.zeros(cells.shape[0] - c1.shape[0], bool)])
        outer = p1.shape[0] + np.arange(surf.size)
    r0 = np.linalg.norm(p[surf], axis=1)
    u = p[surf] / r0[:, None]
    p[surf] = R * u
    p[inner] = (np.minimum(r0, R) - depth * h)[:, None] * u      # the staircase's relief kept beyond the sphere
    if sides == 2:
        p[outer] = (np.maximum(r0, R) + depth * h)[:, None] * u
    pinned = np.zeros(p.shape[0], bool)
    pinned[surf] = True
    near = edge_rings(cells, pinned, rings)
    far = np.any(np.isclose(p, box), axis=1)
    free = np.repeat((near & ~pinned & ~far)[:, None], 3, axis=1) & ~np.isclose(p, 0.0, atol=1e-12)
    from vertebrafe.mesh.quality import cell_quality

    q0 = cell_quality(p, cells, HEX8)
    if passes:
        p, _ = relax(p, cells, free, passes=passes, min_scaled=min_scaled)
    q = cell_quality(p, cells, HEX8)
    ns = {ax + "min": np.flatnonzero(np.abs(p[:, d]) < 1e-12) for d, ax in enumerate("xyz")}
    out = vf.Mesh(p, cells, node_sets=ns, face_sets={"zmax": mesh.face_sets["zmax"]})
    info = dict(start=start, sides=sides, depth=depth, quads=int(quads), surface_nodes=int(surf.size),
                folded=int((q.min_jacobian <= 0).sum()), folded_before=int((q0.min_jacobian <= 0).sum()),
                min_scaled=float(q.scaled_jacobian.min()), min_scaled_before=float(q0.scaled_jacobian.min()),
                below_02=int((q.scaled_jacobian < 0.2).sum()))
    return out, inc, info


def open_faces(mesh):
    """Faces (corner triples or quadruples) that belong to one cell only and do not lie on the box's sides:
    0 for a conforming mesh."""
    from vertebrafe.elements import ELEMENT_TYPES

    et = ELEMENT_TYPES[mesh.cell_type]
    k = 3 if mesh.cell_type.startswith("tetra") else 4
    f = np.sort(np.concatenate([mesh.cells[:, list(lf)[:k]] for lf in et.faces]), axis=1)
    u, c = np.unique(f, axis=0, return_counts=True)
    once = u[c == 1]
    p = mesh.points
    lo, hi = p.min(axis=0), p.max(axis=0)
    side = np.zeros(once.shape[0], bool)
    for d in range(3):
        x = p[once, d]
        side |= np.all(np.abs(x - lo[d]) < 1e-9, axis=1) | np.all(np.abs(x - hi[d]) < 1e-9, axis=1)
    return int((~side).sum()), int(once.shape[0])


def inverted_tets(mesh):
    """Kuhn tetrahedra of hex ``mesh`` whose orientation differs from that of the same tetrahedron in most
    cells (a tensor grid's cells all have the same): the snapping folded them."""
    p = mesh.points
    t = mesh.cells[:, _KUHN]                                   # (m, 6, 4)
    d = np.einsum("mki,mki->mk", np.cross(p[t[..., 1]] - p[t[..., 0]], p[t[..., 2]] - p[t[..., 0]]),
                  p[t[..., 3]] - p[t[..., 0]])
    sign = np.sign(np.median(np.sign(d), axis=0))
    return int((np.sign(d) != sign[None]).sum()), float(np.abs(d).min() / np.abs(d).max())


def representation(rep, n, box, ratio, nu_m, nu_i):
    """``(mesh, C (m, 6, 6), incl_cells, incl_weight (k,), maps (k, 6, 6) or None, info)``: the mesh, its
    elasticity, the cells that hold inclusion, their inclusion volume and (mixed) the map from the cell's
    strain to the inclusion phase's stress."""
    Cm, Ci = _stiffness(ratio, nu_m, nu_i)
    info = {}
    if rep.endswith("-tet10"):
        mesh, C, hexinc, _, _, info = representation(rep[:-6], n, box, ratio, nu_m, nu_i)
        pil = rep.startswith("pillowed")                            # unstructured: the centre split
        inv, vmin = inverted_tets(mesh) if not pil else (0, float("nan"))
        _, hexfaces = open_faces(mesh)
        tet = tetra_mesh(mesh, quadratic=True, split="centre" if pil else "kuhn")
        k = tet.n_cells // mesh.n_cells
        inside, tetfaces = open_faces(tet)
        info.update(inverted=inv, min_tet_volume_ratio=vmin, open_faces=inside, boundary_faces_hex=hexfaces,
                    boundary_faces_tet=tetfaces, hex_cells=mesh.n_cells, hex_dofs=3 * mesh.n_points)
        C = np.repeat(C, k, axis=0)
        cells = (k * hexinc[:, None] + np.arange(k)).ravel()        # tetra_mesh keeps the cells' order
        return tet, C, cells, tet.cell_volumes()[cells], None, info
    if rep in ("conforming", "tet10"):
        mesh = sphere_octant_mesh(n, R, box)
        if rep == "tet10":
            mesh = tetra_mesh(mesh, quadratic=True)
        inc = mesh.cell_data["region"] == 2
        C = np.where(inc[:, None, None], Ci, Cm)
        cells = np.flatnonzero(inc)
        return mesh, C, cells, mesh.cell_volumes()[cells], None, info
    if rep.startswith("pillowed"):
        start, sides = PILLOWED[rep]
        mesh, inc, pinfo = pillowed_sphere(n, box, start, sides)
        info.update(pinfo)
        C = np.where(inc[:, None, None], Ci, Cm)
        cells = np.flatnonzero(inc)
        return mesh, C, cells, mesh.cell_volumes()[cells], None, info
    mesh = grid_mesh(n, box)
    if rep == "staircase":
        inc = np.linalg.norm(mesh.points[mesh.cells].mean(axis=1), axis=1) < R
    elif rep == "snapped":
        pts, gn, moved = snap_sphere(mesh)
        mesh.points = pts
        inc, unresolved = cell_phases(mesh.cells, gn)
        if unresolved.any():
            x, w = _samples(pts, mesh.cells[unresolved], 6)
            frac = (w * (np.linalg.norm(x, axis=2) <= R)).sum(1) / w.sum(1)
            inc[np.flatnonzero(unresolved)] = frac >= 0.5
        info.update(moved=int(moved.sum()), unresolved=int(unresolved.sum()))
    elif rep == "mixed":
        near = np.abs(np.linalg.norm(mesh.points[mesh.cells].mean(axis=1), axis=1) - R) < 2 * R / n
        cand = np.flatnonzero(near)
        x, w = _samples(mesh.points, mesh.cells[cand], 8)
        inside = np.linalg.norm(x, axis=2) <= R
        f = (w * inside).sum(1) / w.sum(1)
        whole = np.linalg.norm(mesh.points[mesh.cells].mean(axis=1), axis=1) < R
        whole[cand] = f > 1 - 1e-12
        cut = cand[(f > 1e-12) & (f < 1 - 1e-12)]
        fc = f[(f > 1e-12) & (f < 1 - 1e-12)]
        normals = cut_normals(x[(f > 1e-12) & (f < 1 - 1e-12)], w[(f > 1e-12) & (f < 1 - 1e-12)],
                              inside[(f > 1e-12) & (f < 1 - 1e-12)])
        C = np.where(whole[:, None, None], Ci, Cm)
        C[cut] = laminate(np.stack([Cm, Ci]), np.stack([1 - fc, fc]), normals)
        maps = phase_stress_maps(np.stack([Cm, Ci])[:, None], np.stack([1 - fc, fc]), normals, ("cancellous", "cement"))
        maps = maps[:, PHASE_TISSUES.index("cement")]
        wc = np.flatnonzero(whole)
        vol = mesh.cell_volumes()
        cells = np.concatenate([wc, cut])
        eye = np.broadcast_to(np.zeros((6, 6)), (wc.size, 6, 6))
        allmaps = np.concatenate([eye, maps])          # whole cells: their own stress (flagged by zero maps)
        info.update(cut=int(cut.size))
        return mesh, C, cells, np.concatenate([vol[wc], vol[cut] * fc]), allmaps, info
    else:
        raise ValueError(rep)
    C = np.where(inc[:, None, None], Ci, Cm)
    cells = np.flatnonzero(inc)
    return mesh, C, cells, mesh.cell_volumes()[cells], None, info


def _weighted_quantile(v, w, q):
    o = np.argsort(v)
    c = np.cumsum(w[o]) / w.sum()
    return float(v[o][np.searchsorted(c, q)])


def subdivide(mesh, k):
    """``mesh`` (conforming, :func:`~vertebrafe.verification.sphere_octant_mesh`) with every cell split into
    ``k^3`` by its own trilinear map: the same faceted inclusion, finer cells (the geometry's error frozen)."""
    fine = subdivide_hexes(mesh, k)
    pts, cells = fine.points, fine.cells
    ns = {ax + "min": np.flatnonzero(np.abs(pts[:, d]) < 1e-9) for d, ax in enumerate("xyz")}
    on = np.abs(pts[:, 2] - pts[:, 2].max()) < 1e-9
    f = np.concatenate([cells[:, lf][on[cells[:, lf]].all(axis=1)] for lf in HEX8.faces])
    up = np.cross(pts[f[:, 1]] - pts[f[:, 0]], pts[f[:, 3]] - pts[f[:, 0]])[:, 2] < 0
    f[up] = f[up][:, ::-1]
    return vf.Mesh(pts, cells, cell_data={"region": fine.cell_data["region"]}, node_sets=ns, face_sets={"zmax": f})


def run_mesh(mesh, ratio=74.0, nu_m=0.3, nu_i=0.3, formulation="bbar", solver="direct"):
    """A row (:func:`run`) of a conforming ``mesh`` given as it is (``region`` 2: inclusion)."""
    Cm, Ci = _stiffness(ratio, nu_m, nu_i)
    inc = mesh.cell_data["region"] == 2
    cells = np.flatnonzero(inc)
    return run(None, None, ratio=ratio, nu_m=nu_m, nu_i=nu_i, formulation=formulation, solver=solver,
               given=(mesh, np.where(inc[:, None, None], Ci, Cm), cells, mesh.cell_volumes()[cells], None, {}))


def run(rep, n, box=8.0, ratio=74.0, nu_m=0.3, nu_i=0.3, formulation="bbar", solver="direct", given=None):
    """One row: the statistics of the inclusion's stress on representation ``rep`` with ``n`` cells across
    the diameter (module docstring); ``given``: a :func:`representation` tuple instead."""
    t0 = time.process_time()
    mesh, C, cells, wts, maps, info = given or representation(rep, n, box, ratio, nu_m, nu_i)
    model = vf.Model(mesh, C=C, formulation=formulation)
    if mesh.cell_type == "hexahedron":
        for d, ax in enumerate("xyz"):
            model.fix(mesh.node_sets[ax + "min"], ax)
        model.add_traction(mesh.face_sets["zmax"], (0.0, 0.0, -1.0))
    else:                              # tet10: the mid-edge nodes too; a flat tri6 face's load on its mid-edge nodes
        from vertebrafe.elements import ELEMENT_TYPES

        p = mesh.points
        for d, ax in enumerate("xyz"):
            model.fix(np.flatnonzero(np.abs(p[:, d]) < 1e-9 * R), ax)
        top = np.abs(p[:, 2] - p[:, 2].max()) < 1e-9 * R
        faces = np.concatenate([mesh.cells[:, f] for f in ELEMENT_TYPES[mesh.cell_type].faces])
        faces = faces[top[faces].all(axis=1)]
        area = 0.5 * np.abs(np.cross(p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]])[:, 2])
        model.add_force(faces[:, 3:6].ravel(), np.repeat(np.outer(area / 3, [0.0, 0.0, -1.0]), 3, axis=0))
    sol = model.solve(solver=solver)
    s = sol.cell_stress[cells]
    extra = {}
    if maps is not None:
        cut = np.any(maps != 0, axis=(1, 2))
        own = (wts[:, None] * s).sum(0) / wts.sum()        # cut cells with their own (homogenised) stress
        extra = dict(szz_cellstress=float(own[2]), vm_cellstress=float(von_mises(own)),
                     cut_phase_szz=float(0.0))
        s[cut] = np.einsum("kij,kj->ki", maps[cut], sol.cell_strain[cells[cut]])
        extra["cut_phase_szz"] = float((wts[cut] * s[cut, 2]).sum() / wts[cut].sum())
        extra["whole_szz"] = float((wts[~cut] * s[~cut, 2]).sum() / wts[~cut].sum())
        extra["cut_volume_fraction"] = float(wts[cut].sum() / wts.sum())
    exact = eshelby_sphere_stress(E_M, nu_m, ratio * E_M, nu_i, [0, 0, -1.0, 0, 0, 0])
    mean = (wts[:, None] * s).sum(0) / wts.sum()
    centre = np.linalg.norm(mesh.points[mesh.cells[cells]].mean(axis=1), axis=1)
    core = centre <= CORE
    core_zz = float((wts[core] * s[core, 2]).sum() / wts[core].sum()) if core.any() else float("nan")
    vm = von_mises(s)
    row = dict(rep=rep, n=n, h=2 * R / n if n else float("nan"), box=box, ratio=ratio, formulation=formulation, cells=mesh.n_cells,
               dofs=3 * mesh.n_points, volume_err=float(wts.sum() / (np.pi / 6 * R ** 3) - 1),
               szz=float(mean[2]), szz_exact=float(exact[2]), szz_err=float(mean[2] / exact[2] - 1),
               vm=float(von_mises(mean)), vm_exact=float(von_mises(exact)),
               vm_err=float(von_mises(mean) / von_mises(exact) - 1),
               p95=_weighted_quantile(vm, wts, 0.95), core_szz=core_zz, core_err=core_zz / float(exact[2]) - 1,
               cpu=time.process_time() - t0, **info, **extra)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="4,8,12,16,24", help="cells across the diameter (multiples of 4)")
    ap.add_argument("--reps", default=",".join(REPS))
    ap.add_argument("--formulations", default="bbar,incompatible",
                    help="incompatible is run for the conforming and snapped meshes only")
    ap.add_argument("--box", type=float, default=8.0)
    ap.add_argument("--ratio", type=float, default=74.0)
    ap.add_argument("--nu-m", type=float, default=0.3)
    ap.add_argument("--nu-i", type=float, default=0.3)
    ap.add_argument("--solver", default="direct")
    ap.add_argument("--frozen", default="", help="conforming meshes (n, comma-separated) split into 1, 8 and 64 "
                    "cells each with their faceted geometry kept (subdivide)")
    ap.add_argument("--pillow-depth", type=float, default=PILLOW_DEPTH,
                    help="pillowed reps: the layers' other nodes at this fraction of h off the sphere")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    globals()["PILLOW_DEPTH"] = a.pillow_depth
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"{platform.processor() or platform.machine()} | NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    rows = []
    hdr = (f"{'rep':<16}{'form':<8}{'n':>3}{'cells':>8}{'dV%':>7}{'szz':>9}{'err%':>7}{'rate':>6}"
           f"{'vm':>8}{'err%':>7}{'p95':>8}{'core%':>7}{'cpu':>7}")
    print(f"box {a.box} mm, ratio {a.ratio}, nu {a.nu_m}/{a.nu_i}")
    print(hdr)
    for rep in a.reps.split(","):
        for form in a.formulations.split(","):
            if form == "incompatible" and rep not in ("conforming", "snapped"):
                continue
            prev = None
            for n in (int(v) for v in a.n.split(",")):
                try:
                    r = run(rep, n, a.box, a.ratio, a.nu_m, a.nu_i, form, a.solver)
                except vf.errors.InvertedElementError as err:        # a one-sided pillow may fold cells
                    print(f"{rep:<16}{form:<8}{n:>3}  not solved: {err}", flush=True)
                    rows.append(dict(rep=rep, n=n, formulation=form, folded=str(err)))
                    prev = None
                    continue
                rate = (np.log(abs(prev["szz_err"]) / abs(r["szz_err"])) / np.log(prev["h"] / r["h"])
                        if prev else float("nan"))
                r["rate"] = float(rate)
                prev = r
                rows.append(r)
                print(f"{rep:<16}{form:<8}{n:>3}{r['cells']:>8}{100 * r['volume_err']:>7.2f}{r['szz']:>9.4f}"
                      f"{100 * r['szz_err']:>7.2f}{rate:>6.2f}{r['vm']:>8.4f}{100 * r['vm_err']:>7.2f}"
                      f"{r['p95']:>8.4f}{100 * r['core_err']:>7.2f}{r['cpu']:>7.1f}", flush=True)
                if "open_faces" in r:
                    print(f"{'':<16}{'split':<8}{n:>3}  DOFs {r['dofs']} (hex8 {r['hex_dofs']}), open inner faces "
                          f"{r['open_faces']}, boundary faces {r['boundary_faces_tet']} (2 x hex8 "
                          f"{2 * r['boundary_faces_hex']}), inverted {r['inverted']}, min volume ratio "
                          f"{r['min_tet_volume_ratio']:.2e}", flush=True)
                if "quads" in r:
                    print(f"{'':<16}{'pillow':<8}{n:>3}  from {r['start']}, {r['sides']} side(s): {r['quads']} "
                          f"boundary quads, DOFs {r['dofs']}, folded {r['folded']} (before smoothing "
                          f"{r['folded_before']}), min scaled Jacobian {r['min_scaled']:.3f} (before "
                          f"{r['min_scaled_before']:.3f}), cells below 0.2: {r['below_02']}", flush=True)
                if "szz_cellstress" in r:
                    print(f"{'':<11}{'cut: own':<13}{n:>3}{'':>15}{r['szz_cellstress']:>9.4f}"
                          f"{100 * (r['szz_cellstress'] / r['szz_exact'] - 1):>7.2f}{'':>6}{r['vm_cellstress']:>8.4f}"
                          f"{100 * (r['vm_cellstress'] / r['vm_exact'] - 1):>7.2f}   whole cells {r['whole_szz']:.4f},"
                          f" cut cells' cement {r['cut_phase_szz']:.4f} ({100 * r['cut_volume_fraction']:.0f} %)",
                          flush=True)
    for n in (int(v) for v in a.frozen.split(",")) if a.frozen else ():
        base = sphere_octant_mesh(n, R, a.box)
        for k in (1, 2, 4):
            r = run_mesh(subdivide(base, k), a.ratio, a.nu_m, a.nu_i, "bbar", a.solver)
            r.update(rep="frozen", n=n, split=k)
            rows.append(r)
            print(f"frozen n={n} split {k}: cells {r['cells']}, inclusion volume {100 * r['volume_err']:+.2f} %,"
                  f" szz {r['szz']:.4f} ({100 * r['szz_err']:+.2f} %)", flush=True)
    print(f"closed form: szz {rows[0]['szz_exact']:.4f} MPa, von Mises {rows[0]['vm_exact']:.4f} MPa")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(revision=_revision(), rows=rows), fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
