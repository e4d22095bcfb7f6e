#!/usr/bin/env python
"""Quadratic tetrahedra on the existing vertebra meshes: do they resolve the cement bolus at 2 mm?

Model: osteoporotic T12-L2 (vBMD ``--bmd`` 80, no posterior elements), grade-2 wedge fracture of L1, then the
default bipedicular vertebroplasty of ``--volume`` 4 mL (fitted bolus surface, the library default: whole
cells of cement-bone composite). L1 alone between rigid plates (the set-up of
:func:`vertebrafe.post.vertebra_strength`: :func:`vertebrafe.post.strength.vertebra_alone`, its inferior
endplate fixed, its superior endplate tied to a rigid plate pushed down by 0.2 % of the height, rotations
held, sideways free; :func:`vertebrafe.post.plate.plate_test`). Two discretisations of the same hex8 mesh:

* ``hex8``: the mesh as it is (B-bar, the library default);
* ``tet10``: every cell split into quadratic tetrahedra (:func:`vertebrafe.verification.tetra_mesh`,
  ``split="centre"`` by default: twelve per cell around its centre, conforming on the O-grid, where the
  six-tetrahedra Kuhn split does not; ``--split kuhn`` to see that), straight edges (the same geometry),
  each tetrahedron with its cell's elasticity, the endplate node sets with their mid-edge nodes; formulation
  ``--tet-formulation`` (default ``full``);
* ``hex8-pillowed`` (on request in ``--elements``; one unclipped bolus, ``--approach unipedicular
  --extent 1``, unless ``--clipped`` or the signed-field options ``--field``, ``--round-clip``,
  ``--bridge``, ``--clearance``; ``--untangle``): the fractured L1's mesh with the bolus's staircase pillowed
  on both sides and its surface placed on the ellipsoid (:func:`pillowed_l1`; the composite's cells those
  inside the surface, volume matched to the request), B-bar;
* ``hex8-split`` (on request in ``--elements``): every cell split into 8 by its own trilinear map (B-bar):
  the bolus and the vertebra of that size kept, cells half as large, so the change against ``hex8`` is the
  field's discretisation alone, not the surface the snapping makes at another size.

Per row: the plate stiffness (N/mm), and of the cement-bone composite (cells wholly cement, the fitted
bolus) the volume-mean stress tensor's axial component (local vertical, compression negative) and von
Mises stress, the volume-weighted mean of the cells' von Mises stress (the reported ``composite mean``
row) and their volume-weighted 95th percentile (``p95``), MPa; the faces of the split that no neighbour
shares (``open``: boundary faces of the tetrahedra less twice the hexahedra's, 0 when it conforms), DOFs,
the row's process CPU time (s) and the process's peak resident memory so far (GB). Then the changes from
2 to 1.5 mm and 2 to 1 mm per element, and tet10 against hex8 at the finest hex8 size and against hex8's
first-order extrapolation from its two finest sizes (``3 f(h2) - 2 f(h1)`` for 1.5 and 1 mm). Usage::

    python benchmarks/quadratic_bolus.py --sizes 3,2,1.5 --hex-sizes 1 --json out.json
    python benchmarks/quadratic_bolus.py --sizes 2 --elements hex8-split
    python benchmarks/quadratic_bolus.py --sizes 6 --elements hex8,tet10        # a quick look
    python benchmarks/quadratic_bolus.py --sizes 3,2,1.5,1 --elements hex8,hex8-pillowed --approach \
        unipedicular --volume 1.25 --extent 1 --offset-z -1 --json pillowed.json  # one pillowed bolus
    python benchmarks/quadratic_bolus.py --sizes 3,2,1.5,1 --elements hex8 --approach unipedicular \
        --volume 1.25 --extent 1 --offset-z -1 --surface pillowed   # the library's (vertebroplasty's) pillowing
    python benchmarks/quadratic_bolus.py --sizes 3,2,1.5,1 --elements hex8-pillowed --round-clip 4 --bridge 4 \
        --offset-y -4 --untangle          # the 4 mL bipedicular bolus, rounded, bridged, clear of the cortex

Units: mm, N, MPa; AMG-CG to rtol 1e-8 (``--solver direct`` for small models).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inclusion_convergence import _revision, _weighted_quantile  # noqa: E402  (the same row statistics)
from vertebrafe.clinical.pillowed import closest_on_ellipsoid, enclosed_volume  # noqa: E402
from vertebrafe.fem.solution import von_mises  # noqa: E402
from vertebrafe.verification import subdivide_hexes  # noqa: E402


def boundary_faces(mesh):
    """Faces (sorted corner tuples) that belong to one cell only."""
    from vertebrafe.elements import ELEMENT_TYPES

    k = 4 if mesh.cell_type == "hexahedron" else 3
    f = np.sort(np.concatenate([mesh.cells[:, list(lf)[:k]] for lf in ELEMENT_TYPES[mesh.cell_type].faces]), axis=1)
    _, c = np.unique(f, axis=0, return_counts=True)
    return int((c == 1).sum())


def fractured_segment(h, bmd):
    import vertebrafe as vf

    seg = vf.segment("T12-L2", bmd=bmd, element_size=h, posterior=False)
    return vf.fracture(seg, "L1", kind="wedge", grade=2)


def treated_l1(h, bmd, volume, vp=None):
    """L1 alone of the treated segment at element size ``h``: ``(mesh, C, height)``; ``vp``: further
    :func:`vertebrafe.vertebroplasty` arguments (``--approach``, ``--extent``, ``--offset-z``)."""
    import vertebrafe as vf
    from vertebrafe.post.strength import vertebra_alone

    return vertebra_alone(vf.vertebroplasty(fractured_segment(h, bmd), "L1", volume=volume, **(vp or {})), "L1")


PILLOW_DEPTH = 0.15     # the layers' other nodes at this fraction of h inside / outside the surface
PILLOW_PASSES = 5       # guarded Laplacian passes of the nodes near the surface
PILLOW_RINGS = 2        # edge rings around the surface whose nodes are smoothed


def pillowed_l1(h, bmd, volume, vp=None, depth=PILLOW_DEPTH, passes=PILLOW_PASSES, rings=PILLOW_RINGS, clean=True,
                surface_passes=5, projection="closest", relief=True, clipped=False, round_clip=0.0, clearance=0.0, field=False, untangle=False):
    """L1 alone of the fractured segment (untreated mesh) with a pillowed bolus: ``(mesh, C, height, info)``.

    The bolus is the ellipsoid :func:`vertebrafe.vertebroplasty` places (``vp``: approach, offset, vertical
    extent), one only and unclipped (``approach="unipedicular"``, ``vertical_extent`` 1, clear of the
    endplates; anything else raises NotImplementedError unless ``clipped``). Steps:

    1. the cancellous cells whose centre is inside the ellipsoid at the scale of
       :meth:`~vertebrafe.clinical.augment.Sampler.scale_for_volume` are the staircase; with ``clean`` a cell
       with two opposite faces or four faces on its boundary changes side (:func:`_clean_set`) until none has;
    2. :func:`vertebrafe.mesh.pillow.pillow` on the set, then on its complement (a layer each side);
    3. the boundary quads' nodes go to their closest point on the ellipsoid (``projection``; ``"ray"``:
       along the ray from the centre, ``"normal"``: along the node's mean quad normal by bisection), then
       ``surface_passes`` Laplacian passes on the surface (half way to the mean of the quad-edge neighbours,
       back to the closest point: closest points crowd at the ellipsoid's tips and flatten the quads there);
       the ellipsoid's scale is set so that the volume the quads enclose is ``volume`` (to 1e-3);
    4. the inner layer's copy of a node goes ``depth h`` inward along the node's mean quad normal from the
       node's staircase position if that was inside, else from its surface position; the outer one's
       outward from the outside one (``relief``; without it, both from the surface position);
    5. ``passes`` guarded Laplacian passes (:func:`vertebrafe.mesh.pillow.relax`) of the other nodes within
       ``rings`` edge rings of the surface (not on the mesh's boundary).

    ``clipped`` (experimental; docs/validation.md, "A pillowed bolus on the treated vertebra's mesh"): two
    ellipsoids and the vertical slab (:class:`_ClippedBoluses`); the staircase is the cells with at least half
    their sampled volume inside, the cleaning only removes cells, and the surface nodes on a face of a
    non-cancellous cell stay where they are. A bolus the slab does not clip goes this way too with ``clipped``.

    ``untangle``: where cells are folded after step 5, the copies of their nodes go ``depth h`` from the
    surface position (no relief) and :func:`vertebrafe.mesh.pillow.untangle` smooths the free nodes around
    them (kept only if fewer cells are folded).

    ``field``, ``round_clip`` (mm), ``vp["bridge"]`` (mm) or ``clearance`` (mm) (docs/validation.md, "The clipped bolus's
    features one at a time"): the solid is the zero level of the signed field of :class:`_BolusField` (the
    boluses' union, smooth with a bridge, the slab's planes and the cortex's inner surface, each a distance to
    first order, joined by a smooth maximum over ``round_clip`` mm), its scale the one whose sampled volume is
    the request; the staircase is the cells with at least half their samples inside; the cleaning also joins
    cells unless there are two boluses without a bridge; the surface nodes go onto the level by
    :func:`vertebrafe.mesh.pillow.project_to_level_set` (the nodes on a face of a non-cancellous cell stay).

    The inclusion (its cells and the inner layer) takes the composite's elasticity
    (:func:`vertebrafe.clinical.augment.cement_phase`, what a whole composite cell gets; ``cement_fraction``
    1), the outer layer its matrix cell's. ``info``: the scale, the volumes (sampled, enclosed, staircase),
    the relative volume error, the cells the cleaning moved, the largest surface move (in ``h``), the quads,
    the folded cells (a Gauss point's Jacobian <= 0) and the minimum corner scaled Jacobian before and after
    the smoothing."""
    import vertebrafe as vf
    from vertebrafe.clinical.augment import (Sampler, body_frame_sizes, bolus_geometry, cement_phase,
                                             endplate_distances, level_cells, vertical_mask)
    from vertebrafe.elements import HEX8, HEX8_FACES
    from vertebrafe.mesh.pillow import boundary_quads, clean_set, edge_rings, pillow, relax
    from vertebrafe.mesh.pillow import untangle as untangle_nodes
    from vertebrafe.mesh.quality import cell_quality
    from vertebrafe.post.strength import vertebra_alone

    vp = dict(vp or {})
    approach = vp.get("approach", "bipedicular")
    extent = float(vp.get("vertical_extent", 0.7))
    off = np.asarray(vp.get("offset", (0.0, 0.0, 0.0)), float)
    nsm = fractured_segment(h, bmd)
    P = nsm.mesh.points
    eligible = level_cells(nsm.mesh, "L1") & nsm.mesh.cells_in("region", ["cancellous"])
    sampler = Sampler(nsm, "L1", P, eligible)
    W, D, Hb, zc, yc = body_frame_sizes(nsm, "L1", P)
    centres, rots, axes = bolus_geometry(approach, W, D, Hb, zc, yc, vp.get("side", "left"), off)
    d_inf, d_sup, hloc = endplate_distances(nsm, "L1", P, sampler)
    allowed = vertical_mask(d_inf, d_sup, hloc, extent)
    r2 = np.where(allowed, sampler.radius2(centres, rots, axes), np.inf)
    s, achieved = sampler.scale_for_volume(r2, volume * 1000.0)
    general = centres.shape[0] != 1 or bool(np.any((r2 <= s * s) != (sampler.radius2(centres, rots, axes) <= s * s)))
    bridge = float(vp.get("bridge") or 0.0)
    use_field = bool(field or round_clip or clearance or bridge)
    general = general or clipped or use_field
    if general and not (clipped or use_field):
        raise NotImplementedError("pillowed_l1: two ellipsoids or a clipped one need clipped=True")
    c, Rb, a = centres[0], rots[0], axes[0] * s

    sub, C, H = vertebra_alone(nsm, "L1")                      # local frame (the frame of ``c``)

    def radius(x):                                            # x local (k, 3)
        return np.sqrt(np.sum((((x - c) @ Rb) / a) ** 2, axis=1))

    canc = sub.cells_in("region", ["cancellous"])
    if general:                          # the staircase: the sampled fraction of the clipped bolus >= 1/2
        from vertebrafe.post.metrics import body_cells

        keep = nsm.mesh.nodes_of(body_cells(nsm, "L1"))        # sub node -> segment node
        f = np.zeros(nsm.mesh.n_cells)
        if use_field:
            cortex, _ = boundary_quads(sub.cells, canc)          # the cancellous side of the cortex and endplates
            clip = _BolusField(nsm, "L1", keep, centres, rots, axes, extent, round_clip, bridge, clearance,
                               _quad_samples(sub.points, cortex, 0.5))
            gs = clip.sample_field(sampler, d_inf, d_sup, hloc)
            wv = sampler.w * sampler.volume[:, None]
            lo_s, hi_s = 0.1, 4.0
            for _ in range(50):
                mid = 0.5 * (lo_s + hi_s)
                lo_s, hi_s = (mid, hi_s) if float(wv[gs(mid) < 0].sum()) < volume * 1000.0 else (lo_s, mid)
            s = 0.5 * (lo_s + hi_s)
            achieved = float(wv[gs(s) < 0].sum())
            clip.axes = axes * s
            f[sampler.cells] = sampler.fraction(gs(s) < 0)
        else:
            f[sampler.cells] = sampler.fraction(r2 <= s * s)
            clip = _ClippedBoluses(nsm, "L1", keep, centres, rots, axes * s, extent)
        inc = canc & (f[body_cells(nsm, "L1")] >= 0.5)
    else:
        inc = canc & (radius(sub.points[sub.cells].mean(axis=1)) < 1.0)
    inc_raw = inc.copy()
    if clean:
        joins = not general or (use_field and (centres.shape[0] == 1 or bridge > 0))
        inc = clean_set(sub.cells, inc, canc & joins)       # two boluses: no cell joins (no bridge)
    m0 = sub.n_cells
    p1, c1, surf, owner1 = pillow(sub.points, sub.cells, inc, shrink=0.0)
    inc1 = np.concatenate([inc, np.ones(c1.shape[0] - m0, bool)])
    parent1 = np.concatenate([np.arange(m0), owner1])
    inner = sub.n_points + np.arange(surf.size)
    p, cells, surf2, owner2 = pillow(p1, c1, ~inc1, shrink=0.0)
    assert np.array_equal(surf2, surf)
    outer = p1.shape[0] + np.arange(surf.size)
    incl = np.concatenate([inc1, np.zeros(cells.shape[0] - c1.shape[0], bool)])
    parent = np.concatenate([parent1, parent1[owner2]])
    quads, _ = boundary_quads(c1, inc1)       # the set's boundary quads, outward (the original nodes)
    xq = p[quads]
    nq = np.cross(xq[:, 2] - xq[:, 0], xq[:, 3] - xq[:, 1])          # outward, twice the area
    normal = np.zeros_like(p)
    np.add.at(normal, quads.ravel(), np.repeat(nq, 4, axis=0))
    normal = normal[surf] / np.linalg.norm(normal[surf], axis=1)[:, None]
    x0 = p[surf].copy()
    r0 = radius(x0)
    target, scale = volume * 1000.0, 1.0
    fixed = np.zeros(surf.size, bool)                        # on a face of a non-cancellous cell: stays
    if general:
        touch = np.zeros(p.shape[0], bool)
        touch[sub.cells[~canc].ravel()] = True
        fixed = touch[surf]

    def project(sc):
        if general:
            return np.where(fixed[:, None], x0, clip.project(x0, surf, sc))
        if projection == "ray":
            return c + (x0 - c) * (sc / r0)[:, None]
        cp = closest_on_ellipsoid(x0, c, Rb, a * sc)
        if projection == "normal":
            t = _crossing_along(lambda x: radius(x) / sc - 1.0, x0, normal, 1.5 * h)
            return np.where((t != 0.0)[:, None], x0 + t[:, None] * normal, cp)
        return cp

    for _ in range(4):                                       # the enclosed volume to the request
        p[surf] = project(scale)
        scale *= (target / enclosed_volume(p, quads)) ** (1.0 / 3.0)
    ps = project(scale)
    if surface_passes:                          # Laplacian smoothing on the surface (closest points convene
        loc = np.full(p.shape[0], -1)           # at the ellipsoid's tips): quad-edge neighbours' mean, projected
        loc[surf] = np.arange(surf.size)
        qe = loc[quads[:, [0, 1, 1, 2, 2, 3, 3, 0]].reshape(-1, 2)]
        qe = np.unique(np.sort(qe, axis=1), axis=0)
        deg = np.bincount(qe.ravel(), minlength=surf.size)[:, None]
        for _ in range(surface_passes):
            acc = np.zeros_like(ps)
            np.add.at(acc, qe[:, 0], ps[qe[:, 1]])
            np.add.at(acc, qe[:, 1], ps[qe[:, 0]])
            ps = (np.where(fixed[:, None], x0, clip.project(0.5 * ps + 0.5 * acc / deg, surf, scale)) if general else
                  closest_on_ellipsoid(0.5 * ps + 0.5 * acc / deg, c, Rb, a * scale))
    for _ in range(3 if surface_passes else 0):              # the smoothed surface's volume to the request
        p[surf] = ps
        scale *= (target / enclosed_volume(p, quads)) ** (1.0 / 3.0)
        ps = (np.where(fixed[:, None], x0, clip.project(ps, surf, scale)) if general else
              closest_on_ellipsoid(ps, c, Rb, a * scale))
    p[surf] = ps
    inside0 = clip.g(x0, surf, scale) < 0 if general else r0 < scale
    if relief:
        p[inner] = np.where(inside0[:, None], x0, ps) - depth * h * normal
        p[outer] = np.where(~inside0[:, None], x0, ps) + depth * h * normal
    else:
        p[inner] = ps - depth * h * normal
        p[outer] = ps + depth * h * normal
    move = np.linalg.norm(ps - x0, axis=1) / h
    rim_nodes = cap_nodes = 0
    if general and not use_field:
        zf, _ = clip._zeta(ps, surf)
        on_plane = np.minimum(np.abs(zf - clip.c), np.abs(zf - 1 + clip.c)) < 1e-6
        on_ell = np.abs(clip.radii(ps, scale).min(axis=0) - 1.0) < 1e-6
        rim_nodes, cap_nodes = int((on_plane & on_ell).sum()), int((on_plane & ~on_ell).sum())
        plane_mask = np.zeros(p.shape[0], bool)
        plane_mask[surf[on_plane]] = True
    pinned = np.zeros(p.shape[0], bool)
    pinned[surf] = True
    near = edge_rings(cells, pinned, rings)
    on_boundary = np.zeros(p.shape[0], bool)
    f = cells[:, HEX8_FACES].reshape(-1, 4)
    _, inv, cnt = np.unique(np.sort(f, axis=1), axis=0, return_inverse=True, return_counts=True)
    on_boundary[f[cnt[inv.ravel()] == 1].ravel()] = True
    q0 = cell_quality(p, cells, HEX8)
    if passes:
        p, _ = relax(p, cells, near & ~pinned & ~on_boundary, passes=passes)
    q = cell_quality(p, cells, HEX8)
    folded_relaxed = int((q.min_jacobian <= 0).sum())
    if untangle and folded_relaxed:          # the copies of folded cells without the relief, then Laplacian
        p_relaxed = p.copy()
        bad = np.zeros(p.shape[0], bool)
        bad[cells[q.min_jacobian <= 0].ravel()] = True
        bi, bo = bad[inner], bad[outer]
        p[inner[bi]] = ps[bi] - depth * h * normal[bi]
        p[outer[bo]] = ps[bo] + depth * h * normal[bo]
        p, left = untangle_nodes(p, cells, ~pinned & ~on_boundary)
        if left > folded_relaxed:                                 # worse than before: the relaxed mesh
            p = p_relaxed
        q = cell_quality(p, cells, HEX8)
    C_comp = cement_phase(nsm, "composite", None, "L1")[0]
    C2 = np.asarray(C)[parent].copy()
    C2[incl] = C_comp
    data = {k: np.asarray(v)[parent] for k, v in sub.cell_data.items()}
    data["cement_fraction"] = incl.astype(float)
    mesh = vf.Mesh(p, cells, cell_data=data, tag_names=sub.tag_names, node_sets=sub.node_sets)
    vol = mesh.cell_volumes()
    if use_field:
        dist = clip.cortex_distance(ps)
        info_f = dict(field_residual=float(np.abs(clip.g(ps[~fixed], surf[~fixed], scale)).max()),
                      bolus_gap_mm=clip.gap(scale),
                      cortex_gap_mm=float(dist[~fixed].min()) if (~fixed).any() else 0.0)
    else:
        info_f = {}
    info = dict(**info_f, scale=float(s * scale), rim_nodes=rim_nodes, cap_nodes=cap_nodes, fixed_nodes=int(fixed.sum()), cleaned=int((inc[:m0] != inc_raw).sum()), max_move_h=float(move.max()), sampled_mm3=float(achieved), inclusion_mm3=float(vol[incl].sum()),
                volume_error=float(vol[incl].sum() / (volume * 1000.0) - 1.0),
                staircase_mm3=float(sub.cell_volumes()[inc].sum()), surface_nodes=int(surf.size),
                quads=int(c1.shape[0] - m0), folded=int((q.min_jacobian <= 0).sum()),
                folded_before=int((q0.min_jacobian <= 0).sum()), folded_relaxed=folded_relaxed, min_scaled=float(q.scaled_jacobian.min()),
                min_scaled_before=float(q0.scaled_jacobian.min()), below_02=int((q.scaled_jacobian < 0.2).sum()),
                boundary_on_surface=int((on_boundary[surf]).sum()))
    return mesh, C2, H, info


def _crossing_along(g, x0, n, reach, iterations=40):
    """``t (k,)`` with ``g(x0 + t n) = 0`` by bisection on ``[-reach, reach]`` (``g`` < 0 inside); 0 where
    ``g`` has the same sign at both ends (the node stays)."""
    lo, hi = np.full(x0.shape[0], -reach), np.full(x0.shape[0], reach)
    glo = g(x0 + lo[:, None] * n)
    ok = (glo < 0) & (g(x0 + hi[:, None] * n) > 0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        inside = g(x0 + mid[:, None] * n) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    _crossing_along.missed = int((~ok).sum())
    return np.where(ok, 0.5 * (lo + hi), 0.0)


class _ClippedBoluses:
    """The boluses' solid ``min_k r_k <= scale`` within the vertical slab of ``vertebroplasty`` (columns of
    the segment's nodes), in the local frame of vertebra-alone meshes whose node ``i`` is segment node
    ``keep[i]``. :meth:`project`: the nearest of the closest point on the nearest ellipsoid (if inside the
    slab) and the point straight along the column on the slab's plane (if inside that ellipsoid), else that
    plane point pulled horizontally onto the ellipsoid (the rim; ``rim`` marks those nodes)."""

    def __init__(self, segment, level, keep, centres, rots, axes, extent):
        from vertebrafe.clinical._common import level_nodes

        nodes = level_nodes(segment, level)
        R, o = (np.asarray(x, float) for x in segment.frames[level])
        P = segment.mesh.points
        col = keep % nodes.n2
        self.bottom = (P[nodes.inferior] - o) @ R
        self.axis = (P[nodes.superior] - P[nodes.inferior]) @ R
        self.col = col
        self.c = 0.5 * (1.0 - extent)
        self.centres, self.rots, self.axes = centres, rots, axes
        self.rim = None

    def _zeta(self, x, ids):
        cl = self.col[ids]
        d = self.axis[cl]
        return np.einsum("ki,ki->k", x - self.bottom[cl], d) / np.einsum("ki,ki->k", d, d), d

    def radii(self, x, sc):
        return np.stack([np.sqrt(np.sum((((x - c) @ R) / (a * sc)) ** 2, axis=1))
                         for c, R, a in zip(self.centres, self.rots, self.axes)])

    def g(self, x, ids, sc):
        z, _ = self._zeta(x, ids)
        return np.maximum(self.radii(x, sc).min(axis=0) - 1.0, np.maximum(self.c - z, z - 1.0 + self.c))

    def project(self, x, ids, sc):
        k = np.argmin(self.radii(x, sc), axis=0)
        out = np.empty_like(x)
        rim = np.zeros(x.shape[0], bool)
        z, d = self._zeta(x, ids)
        zt = np.clip(z, self.c, 1.0 - self.c)
        near_lo = np.abs(z - self.c) < np.abs(z - (1.0 - self.c))
        zt = np.where(near_lo, self.c, 1.0 - self.c)
        plane = x + (zt - z)[:, None] * d                      # on the nearer slab plane, along the column
        for j, (c, R, a) in enumerate(zip(self.centres, self.rots, self.axes)):
            m = k == j
            if not m.any():
                continue
            pe = closest_on_ellipsoid(x[m], c, R, a * sc)
            ze, _ = self._zeta(pe, ids[m])
            ok_e = (ze >= self.c - 1e-9) & (ze <= 1.0 - self.c + 1e-9)
            y = (plane[m] - c) @ R / (a * sc)                  # ellipsoid coordinates of the plane point
            hz2 = y[:, 0] ** 2 + y[:, 1] ** 2
            ok_p = hz2 + y[:, 2] ** 2 <= 1.0
            t = np.sqrt(np.clip(1.0 - y[:, 2] ** 2, 0.0, None) / np.maximum(hz2, 1e-300))
            yr = np.stack([y[:, 0] * t, y[:, 1] * t, y[:, 2]], axis=1)
            pr = c + (yr * (a * sc)) @ R.T                     # the rim point at the plane's height
            de = np.where(ok_e, np.linalg.norm(pe - x[m], axis=1), np.inf)
            dp = np.where(ok_p, np.linalg.norm(plane[m] - x[m], axis=1), np.inf)
            best = np.where(de <= dp, pe.T, plane[m].T).T
            none = ~ok_e & ~ok_p
            best[none] = pr[none]
            out[m] = best
            rim[np.flatnonzero(m)[none]] = True
        self.rim = rim
        return out


def _smooth_max(a, ga, b, gb, k):
    """``max(a, b)`` (``k`` 0) or the smooth maximum ``-smooth_min(-a, -b, k)`` (the polynomial one of
    :func:`vertebrafe.clinical.augment.smooth_min`), with its gradient from ``ga``, ``gb`` ``(k, 3)`` (None:
    values only)."""
    hh = np.maximum(k - np.abs(a - b), 0.0) / k if k > 0 else np.zeros_like(a)
    v = np.maximum(a, b) + 0.25 * k * hh * hh
    if ga is None:
        return v, None
    wa = np.where(a >= b, 1.0 - 0.5 * hh, 0.5 * hh)
    return v, wa[:, None] * ga + (1.0 - wa)[:, None] * gb


def _quad_samples(points, quads, spacing):
    """Points on the bilinear quads ``(f, 4)`` about ``spacing`` apart (the quads' mean edge length over
    ``spacing`` per direction)."""
    x = points[quads]
    n = max(2, int(np.ceil(np.linalg.norm(x[:, 1] - x[:, 0], axis=1).mean() / spacing)) + 1)
    t = np.linspace(0.0, 1.0, n)
    u, v = (w.ravel() for w in np.meshgrid(t, t))
    N = np.stack([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], axis=1)        # (q, 4)
    return np.unique(np.round(np.einsum("qa,fai->fqi", N, x).reshape(-1, 3), 9), axis=0)


class _BolusField(_ClippedBoluses):
    """The bolus as the zero level of a signed field (mm, negative inside, a distance to first order near
    the surface): the union of the ellipsoids (their normalised radius ``u`` as ``(u - 1) / |grad u|``; two
    boluses with ``bridge`` mm: ``u`` the smooth minimum of :func:`vertebrafe.clinical.augment.smooth_min`
    over :func:`~vertebrafe.clinical.augment.bridge_blend`, as ``vertebroplasty(..., bridge=...)`` places
    them), then the slab's planes (``extent`` < 1; the column's length times the height fraction outside the
    slab) and with ``clearance`` mm the cortex (``clearance`` less the distance to ``cortex``, points on the
    inner surface of the cortex and the endplates), each joined by the smooth maximum (:func:`_smooth_max`)
    over ``round_clip`` mm (0: the sharp maximum). Node columns as :class:`_ClippedBoluses`."""

    def __init__(self, segment, level, keep, centres, rots, axes, extent, round_clip, bridge, clearance, cortex):
        from scipy.spatial import cKDTree

        super().__init__(segment, level, keep, centres, rots, axes, extent)
        self.k, self.bridge, self.clearance = float(round_clip), float(bridge), float(clearance)
        self.cortex = cortex
        self.tree = cKDTree(cortex)

    def _union(self, x, sc, axes=None):
        from vertebrafe.clinical.augment import bridge_blend

        axes = self.axes if axes is None else axes
        rs, gs = [], []
        for c, R, a in zip(self.centres, self.rots, axes):
            A = a * sc
            y = ((x - c) @ R) / A
            r = np.sqrt(np.sum(y * y, axis=1))
            rs.append(r)
            gs.append(((y / A) @ R.T) / np.maximum(r, 1e-12)[:, None])
        if len(rs) == 1:
            return rs[0], gs[0]
        a, b = rs
        k = bridge_blend(self.bridge, self.rots, axes * sc) if self.bridge else 0.0
        hh = np.maximum(k - np.abs(a - b), 0.0) / k if k else np.zeros_like(a)
        u = np.minimum(a, b) - 0.25 * k * hh * hh
        wa = np.where(a <= b, 1.0 - 0.5 * hh, 0.5 * hh)
        return u, wa[:, None] * gs[0] + (1.0 - wa)[:, None] * gs[1]

    def gap(self, sc, n=4000):
        """Smallest distance (mm, to first order) from the first ellipsoid's surface to the second's (nan with
        one bolus), over ``n`` points of the first."""
        if len(self.centres) < 2:
            return float("nan")
        i = np.arange(n) + 0.5
        phi, th = np.arccos(1.0 - 2.0 * i / n), np.pi * (1.0 + 5.0 ** 0.5) * i
        y = np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], axis=1)
        x = self.centres[0] + (y * self.axes[0] * sc) @ self.rots[0].T
        A = self.axes[1] * sc
        z = ((x - self.centres[1]) @ self.rots[1]) / A
        r = np.linalg.norm(z, axis=1)
        G = ((z / A) @ self.rots[1].T) / r[:, None]
        return float(((r - 1.0) / np.linalg.norm(G, axis=1)).min())

    def _near(self, x):
        """Distance to the cortex's points and the nearest one's index; inf (and ``len(cortex)``) beyond
        ``clearance + round_clip`` + 1 mm, where the smooth maximum no longer sees it."""
        return self.tree.query(x, distance_upper_bound=self.clearance + self.k + 1.0)

    def cortex_distance(self, x):
        return self.tree.query(x)[0]

    def field(self, x, ids, sc):
        u, G = self._union(x, sc)
        n = np.maximum(np.linalg.norm(G, axis=1), 1e-12)
        d, G = (u - 1.0) / n, G / n[:, None]
        if self.c > 0:
            z, dc = self._zeta(x, ids)
            L = np.linalg.norm(dc, axis=1)
            lo, hi = self.c - z, z - 1.0 + self.c
            d, G = _smooth_max(d, G, np.maximum(lo, hi) * L, np.where((lo > hi)[:, None], -dc, dc) / L[:, None],
                               self.k)
        if self.clearance:
            dist, i = self._near(x)
            far = ~np.isfinite(dist)
            gc = (self.cortex[np.where(far, 0, i)] - x) / np.where(far, np.inf, np.maximum(dist, 1e-12))[:, None]
            d, G = _smooth_max(d, G, self.clearance - dist, gc, self.k)
        return d, G

    def g(self, x, ids, sc):
        return self.field(x, ids, sc)[0]

    def project(self, x, ids, sc):
        from vertebrafe.mesh.pillow import project_to_level_set

        y, res = project_to_level_set(x, lambda v: self.field(v, ids, sc), max_step=1.0, iterations=60)
        self.residual = float(res.max())
        return y

    def sample_field(self, sampler, d_inf, d_sup, hloc):
        """``g(sc)``: the field at the samples ``(m, q)`` with the axes at scale 1 times ``sc`` (the slab from
        the samples' distances to the endplates, as ``vertebroplasty``'s vertical mask)."""
        x = sampler.x.reshape(-1, 3)
        u, G = self._union(x, 1.0)
        n = np.maximum(np.linalg.norm(G, axis=1), 1e-12)
        slab = (np.maximum(self.c * hloc - d_inf, self.c * hloc - d_sup).ravel() if self.c > 0 else None)
        far = self.clearance - self._near(x)[0] if self.clearance else None

        def g(sc):
            d = (u - sc) / n                      # (u / sc - 1) / (|grad u| / sc): u is homogeneous of degree 1
            if slab is not None:
                d = _smooth_max(d, None, slab, None, self.k)[0]
            if far is not None:
                d = _smooth_max(d, None, far, None, self.k)[0]
            return d.reshape(sampler.x.shape[:2])
        return g


def run(h, element, bmd=80.0, volume=4.0, split="centre", tet_formulation="full", solver="amg", vp=None,
        clipped=False, round_clip=0.0, clearance=0.0, field=False, untangle=False):
    """One row (module docstring)."""
    from vertebrafe.post.plate import plate_test
    from vertebrafe.verification import tetra_mesh

    t0 = time.process_time()
    info = {}
    if element == "hex8-pillowed":
        sub, C, H, info = pillowed_l1(h, bmd, volume, vp, clipped=clipped, round_clip=round_clip,
                                    clearance=clearance, field=field, untangle=untangle)
        if info["folded"]:                                 # a row whose mesh folds is not solved
            nan = float("nan")
            return dict(h=h, element=element, split=None, formulation="bbar", stiffness=nan, height=H,
                        composite_mm3=nan, axial=nan, vm_of_mean=nan, mean_vm=nan, p95=nan, cells=int(sub.n_cells),
                        dofs=int(3 * sub.n_points), hex_cells=int(sub.n_cells), hex_dofs=int(3 * sub.n_points),
                        open_faces=0, cpu=time.process_time() - t0, pillow=info, solved=False,
                        peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)
    else:
        sub, C, H = treated_l1(h, bmd, volume, vp)
    hex_cells, hex_dofs = sub.n_cells, 3 * sub.n_points
    open_faces = 0
    if element == "hex8-split":
        mesh, formulation = subdivide_hexes(sub, 2), "bbar"
        C = np.repeat(C, 8, axis=0)
    elif element == "tet10":
        mesh = tetra_mesh(sub, quadratic=True, split=split)
        C = np.repeat(C, mesh.n_cells // sub.n_cells, axis=0)
        open_faces = boundary_faces(mesh) - 2 * boundary_faces(sub)
        formulation = tet_formulation
    else:
        mesh, formulation = sub, "bbar"
    opts = dict(solver="amg", rtol=1e-8) if solver == "amg" else dict(solver=solver)
    delta = 0.002 * H
    test = plate_test(mesh, C, mesh.node_sets["L1:inferior"], mesh.node_sets["L1:superior"], delta,
                      formulation=formulation, **opts)
    sol = test.solution
    comp = np.flatnonzero(np.asarray(mesh.cell_data["cement_fraction"]) >= 1.0)
    s, w = sol.cell_stress[comp], sol.cell_volume[comp]
    mean = (w[:, None] * s).sum(0) / w.sum()
    vm = von_mises(s)
    return dict(h=h, element=element, split=split if element == "tet10" else None, formulation=formulation,
                stiffness=abs(test.force) / delta, height=H, composite_mm3=float(w.sum()),
                axial=float(mean[2]), vm_of_mean=float(von_mises(mean)), mean_vm=float((w * vm).sum() / w.sum()),
                p95=_weighted_quantile(vm, w, 0.95), cells=int(mesh.n_cells), dofs=int(3 * mesh.n_points),
                hex_cells=int(hex_cells), hex_dofs=int(hex_dofs), open_faces=int(open_faces),
                cpu=time.process_time() - t0, pillow=info or None, solved=True,
                peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)


KEYS = (("stiffness", "stiffness N/mm"), ("axial", "axial of mean"), ("vm_of_mean", "vM of mean"),
        ("mean_vm", "mean vM"), ("p95", "p95 vM"))


def table(rows):
    def pick(el, h):
        return next((r for r in rows if r["element"] == el and r["h"] == h and r.get("solved", True)), None)

    def ch(a, b):
        return f"{100 * (b / a - 1):+6.1f} %" if a and b else "      -"

    out = []
    for el in ("hex8", "tet10", "hex8-pillowed"):
        a, b, c = pick(el, 2.0), pick(el, 1.5), pick(el, 1.0)
        if a is None or (b is None and c is None):
            continue
        for k, name in KEYS:
            out.append(f"{el:<14}{name:<16} 2 -> 1.5 mm {ch(a[k], b[k] if b else None)}   "
                       f"2 -> 1 mm {ch(a[k], c[k] if c else None)}")
    hx = sorted((r for r in rows if r["element"] == "hex8"), key=lambda r: r["h"])
    for r in (r for r in rows if r["element"] == "tet10"):
        if hx:
            f = hx[0]
            out.append(f"tet10 {r['h']} mm vs hex8 {f['h']} mm: " + ", ".join(
                f"{name} {ch(f[k], r[k]).strip()}" for k, name in KEYS))
        if len(hx) >= 2:
            f1, f2 = hx[0], hx[1]
            q = f2["h"] / f1["h"]
            lim = {k: f1[k] + (f1[k] - f2[k]) / (q - 1) for k, _ in KEYS}     # first order
            out.append(f"tet10 {r['h']} mm vs hex8 extrapolated ({f2['h']}, {f1['h']} mm, order 1): " + ", ".join(
                f"{name} {ch(lim[k], r[k]).strip()}" for k, name in KEYS))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="3,2,1.5", help="element sizes (mm) of both elements")
    ap.add_argument("--hex-sizes", default="", help="further sizes (mm) of hex8 alone")
    ap.add_argument("--elements", default="hex8,tet10", help="hex8, tet10, hex8-split, hex8-pillowed")
    ap.add_argument("--split", default="centre", choices=("centre", "kuhn"))
    ap.add_argument("--tet-formulation", default="full", choices=("full", "bbar"))
    ap.add_argument("--bmd", type=float, default=80.0)
    ap.add_argument("--volume", type=float, default=4.0, help="cement volume (mL)")
    ap.add_argument("--solver", default="amg")
    ap.add_argument("--approach", default=None, choices=["bipedicular", "unipedicular"],
                    help="vertebroplasty approach (default bipedicular)")
    ap.add_argument("--clipped", action="store_true",
                    help="hex8-pillowed: allow two boluses and a bolus the slab clips (projection onto the clipped "
                         "solid, the rim by a horizontal pull; experimental)")
    ap.add_argument("--extent", type=float, default=None, help="vertebroplasty vertical_extent (default 0.7)")
    ap.add_argument("--offset-z", type=float, default=None, metavar="MM", help="vertebroplasty offset (0, 0, MM)")
    ap.add_argument("--surface", default=None, choices=["fitted", "mixed", "pillowed"],
                    help="vertebroplasty surface of the hex8 / tet10 / hex8-split rows (default: the library's)")
    ap.add_argument("--offset-y", type=float, default=None, metavar="MM",
                    help="vertebroplasty offset's anterior component (with --offset-z: (0, Y, Z))")
    ap.add_argument("--bridge", type=float, default=None, metavar="MM",
                    help="vertebroplasty bridge (two boluses' smooth union; the pillowed rows too)")
    ap.add_argument("--round-clip", type=float, default=0.0, metavar="MM",
                    help="hex8-pillowed: the slab clip (and the clearance) rounded by a smooth maximum over MM")
    ap.add_argument("--field", action="store_true",
                    help="hex8-pillowed: the bolus as a signed field's level (implied by --round-clip, --clearance, "
                         "--bridge)")
    ap.add_argument("--untangle", action="store_true",
                    help="hex8-pillowed: Laplacian passes of the free nodes around folded cells "
                         "(vertebrafe.mesh.pillow.untangle) while that unfolds cells")
    ap.add_argument("--clearance", type=float, default=0.0, metavar="MM",
                    help="hex8-pillowed: the bolus kept MM from the cortex and endplates (smooth maximum with the "
                         "distance field)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import vertebrafe as vf

    off = (None if a.offset_z is None and a.offset_y is None else
           (0.0, a.offset_y or 0.0, a.offset_z or 0.0))
    vp = {k: v for k, v in (("approach", a.approach), ("vertical_extent", a.extent), ("offset", off),
                            ("surface", a.surface), ("bridge", a.bridge)) if v is not None}
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"{platform.processor() or platform.machine()} | NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    jobs = [(float(h), el) for h in a.sizes.split(",") for el in a.elements.split(",")]
    jobs += [(float(h), "hex8") for h in a.hex_sizes.split(",") if h]
    print(f"{'h':>5} {'element':<13}{'cells':>8}{'DOFs':>9}{'open':>6}{'k N/mm':>9}{'axial':>8}{'vM(mean)':>9}"
          f"{'mean vM':>8}{'p95':>7}{'cpu s':>8}{'GB':>6}")
    rows = []
    for h, el in jobs:
        r = run(h, el, a.bmd, a.volume, a.split, a.tet_formulation, a.solver, vp, a.clipped, a.round_clip, a.clearance,
                a.field, a.untangle)
        rows.append(r)
        print(f"{h:>5} {el:<13}{r['cells']:>8}{r['dofs']:>9}{r['open_faces']:>6}{r['stiffness']:>9.1f}"
              f"{r['axial']:>8.4f}{r['vm_of_mean']:>9.4f}{r['mean_vm']:>8.4f}{r['p95']:>7.4f}{r['cpu']:>8.1f}"
              f"{r['peak_gb']:>6.2f}", flush=True)
        if not r["solved"]:
            print(f"      not solved: {r['pillow']['folded']} folded cell(s)")
        if r["pillow"]:
            print("      pillow: " + ", ".join(f"{k} {v:.4g}" for k, v in r["pillow"].items()), flush=True)
    for line in table(rows):
        print(line)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(revision=_revision(), args=vars(a), rows=rows), fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
