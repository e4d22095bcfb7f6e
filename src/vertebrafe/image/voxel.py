"""Voxel meshes of labelled vertebral bodies and of the discs between them (``image_segment(...,
geometry="voxel")``).

1. **Grid**: cubes of edge ``element_size`` along the image axes, the third axis the one closest to the
   spine axis (pointing superior; the angle between them is ``source["column_tilt_deg"]``: discs are
   filled along the columns, so a spine tilted far from an image axis gives slanted disc columns). A cube belongs to a vertebra when at least half of its sub-samples
   (``ceil(h / voxel)`` per axis, at most 4) lie in its label; each body keeps its largest connected piece,
   holes filled.
2. **Discs** fill the gaps between adjacent bodies along the grid columns: a cube column holds disc cells
   where both bodies have cells, between the top of the lower and the bottom of the upper body. The
   nucleus is the disc's footprint scaled about a centre as in the parametric model
   (:func:`~vertebrafe.anatomy.vertebra.nucleus_curve`: the level table's area fraction and posterior
   offset, which a CT cannot measure); the rest is annulus.
3. **Regions**: a body cell with a lateral face outside the body is ``cortex``, one with only its top or
   bottom face outside ``endplate``, every other one ``cancellous``. Shell cells are thicker than the
   shell (0.4 mm cortex, 0.35 mm endplate, as in the parametric model): each is a laminate of the shell
   material over the cell's own cancellous bone (:func:`vertebrafe.elasticity.laminate`, layers normal to
   the smoothed surface normal), with the shell's volume fraction ``t * A / h^3`` from the true surface
   area ``A`` in the cell (the staircase's face area divided by ``|n_1| + |n_2| + |n_3|``).
4. **Nodes** (optional, each guarded: a move that brings a cell's scaled Jacobian below
   :data:`MIN_SCALED_JACOBIAN` is halved, up to five times, then dropped): ``snap`` moves the top and
   bottom surface of each body along the column to the sub-cell position given by the label's partial
   fill of the cells (exact for a flat surface), the nodes in between following linearly, so disc
   heights are not rounded to whole cells; ``smoothing`` runs Taubin lambda/mu passes (0.5 / -0.53) over
   the nodes of the outer surface. With neither, all cells are identical cubes and the assembly takes the
   voxel fast path (:func:`vertebrafe.fem.assembly.reference_stiffness`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..materials import LevelMaterials

__all__ = ["voxel_segment", "VoxelMaterials", "MIN_SCALED_JACOBIAN"]

#: Smallest scaled Jacobian a node move may leave in a cell.
MIN_SCALED_JACOBIAN = 0.3
_SNAP_LIMIT = 0.45          # largest surface move, fraction of the cell size
_TAUBIN = (0.5, -0.53)


@dataclass(frozen=True)
class VoxelMaterials(LevelMaterials):
    """:class:`~vertebrafe.materials.LevelMaterials` whose shell cells (``shell_cells``, indices) are
    laminates of the shell material (their region's) with volume fraction ``shell_fraction`` over the
    cancellous bone of the cell's own vBMD, layers normal to ``shell_normal (k, 3)``."""

    shell_cells: np.ndarray = field(default=None, compare=False, repr=False)
    shell_fraction: np.ndarray = field(default=None, compare=False, repr=False)
    shell_normal: np.ndarray = field(default=None, compare=False, repr=False)

    def mesh_elasticity(self, mesh):
        from ..elasticity import laminate

        C = super().mesh_elasticity(mesh)
        s = self.shell_cells
        if s is None or not len(s):
            return C
        host = mesh.copy()
        region = host.cell_data["region"].copy()
        region[s] = [k for k, n in mesh.tag_names["region"].items() if n == "cancellous"][0]
        host.set_cell_data("region", region, names=mesh.tag_names["region"])
        C_host = super().mesh_elasticity(host)[s]
        f = self.shell_fraction
        C[s] = laminate(np.stack([C[s], C_host]), np.stack([f, 1.0 - f]), self.shell_normal)
        return C


def _grid(lab, h, up):
    """Orthonormal axes ``U (3, 3)`` (columns; the third along ``up``), origin ``(3,)`` and cube counts."""
    D = lab.affine[:3, :3] / lab.spacing
    a = int(np.argmax(np.abs(D.T @ up)))
    b, c = [i for i in range(3) if i != a]
    U = np.column_stack([D[:, b], D[:, c], D[:, a] * np.sign(D[:, a] @ up)])
    if np.linalg.det(U) < 0:
        U[:, 0] *= -1.0
    ijk = np.stack(np.meshgrid(*[[-0.5, n - 0.5] for n in lab.shape], indexing="ij"), -1).reshape(-1, 3)
    corners = lab.to_world(ijk) @ U
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    n = np.ceil((hi - lo) / h - 1e-9).astype(int)
    return U, U @ lo, tuple(int(x) for x in n)


def _largest_piece(mask):
    from scipy.ndimage import binary_fill_holes, label

    parts, n = label(mask)
    if n > 1:
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        mask = parts == int(np.argmax(sizes))
    return binary_fill_holes(mask)


def _column_ends(M):
    """Per column: the lowest and highest cell index along axis 2 and whether each is endplate surface.

    An end is endplate surface when it lies within one cell of the highest top (lowest bottom) among the
    column and its eight neighbours; a column that ends two cells or more short of a neighbour is a step
    of the lateral wall there (the tilt of an endplate moves its surface by less than a cell per column
    up to 45 deg)."""
    from scipy.ndimage import maximum_filter, minimum_filter

    nk = M.shape[2]
    k = np.arange(nk)
    top = np.where(M, k, -1).max(axis=2)
    bot = np.where(M, k, nk).min(axis=2)
    has = top >= 0
    sup = has & (top >= maximum_filter(top, size=3, mode="constant", cval=-1) - 1)
    inf = has & (bot <= minimum_filter(bot, size=3, mode="constant", cval=nk) + 1)
    return sup, inf, bot, top


def _nucleus(F, h, anterior, fraction, offset):
    """Nucleus columns of a disc footprint ``F (ni, nj)``: ``F`` scaled about a centre so that it holds
    ``fraction`` of the footprint and its centroid lies ``offset * depth`` posterior to the footprint's."""
    p = np.argwhere(F).astype(float)
    g = p.mean(axis=0)
    y = anterior / np.linalg.norm(anterior)
    depth = np.ptp(p @ y) + 1.0
    target = g - offset * depth * y

    def inside(s):
        c = (target - s * g) / (1.0 - s)
        q = np.rint(c + (p - c) / s).astype(int)
        ok = np.all((q >= 0) & (q < F.shape), axis=1)
        out = np.zeros(len(p), bool)
        out[ok] = F[q[ok, 0], q[ok, 1]]
        return out

    lo, hi = 0.05, 0.95
    for _ in range(40):
        s = 0.5 * (lo + hi)
        if inside(s).mean() < fraction:
            lo = s
        else:
            hi = s
    N = np.zeros_like(F)
    idx = p[inside(hi)].astype(int)
    N[idx[:, 0], idx[:, 1]] = True
    return N


def _shift(M, axis, step):
    """``M`` shifted so that entry ``i`` holds ``M[i + step]`` along ``axis`` (False outside)."""
    out = np.zeros_like(M)
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    if step > 0:
        src[axis], dst[axis] = slice(step, None), slice(None, -step)
    else:
        src[axis], dst[axis] = slice(None, step), slice(-step, None)
    out[tuple(dst)] = M[tuple(src)]
    return out


def _shell(M, h, cortex_t, endplate_t):
    """Regions of a body's cells and their shell fractions and grid-frame normals."""
    from scipy.ndimage import gaussian_filter

    out = {d: M & ~_shift(M, axis, step) for d, (axis, step) in
           enumerate([(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)])}
    lateral = out[0] | out[1] | out[2] | out[3]
    axial = out[4] | out[5]
    n_faces = sum(o.astype(int) for o in out.values())
    g = np.stack(np.gradient(gaussian_filter(M.astype(float), 1.0)), axis=-1)
    normal = -g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-12)
    t = np.where(lateral, cortex_t, endplate_t)
    frac = np.clip(t * n_faces / (h * np.maximum(np.abs(normal).sum(axis=-1), 1.0)), 0.0, 1.0)
    return lateral, axial & ~lateral, frac, normal


def _quality_guard(points, disp, cells):
    """``disp`` reduced where it would leave a cell below :data:`MIN_SCALED_JACOBIAN`."""
    from ..mesh import Mesh

    disp = disp.copy()
    for attempt in range(6):
        q = Mesh(points + disp, cells).quality().scaled_jacobian
        bad = q < MIN_SCALED_JACOBIAN
        if not bad.any():
            return disp
        nodes = np.unique(cells[bad])
        disp[nodes] *= 0.5 if attempt < 5 else 0.0
    return disp


def _snap(nodes_shape, h, bodies, phi, U):
    """Node moves ``(ni+1, nj+1, nk+1, 3)`` that put each body's top and bottom surface at its sub-cell
    position along the column (see the module docstring)."""
    ni, nj, nk = (s - 1 for s in nodes_shape)
    total = np.zeros(nodes_shape)
    count = np.zeros(nodes_shape)
    for M, f in zip(bodies, phi):
        sup, inf, bot, top = _column_ends(M)
        fpad = np.concatenate([np.zeros((ni, nj, 1)), f, np.zeros((ni, nj, 1))], axis=2)   # index k + 1
        i, j = np.nonzero(sup)
        kt = top[i, j]
        d_top = h * (fpad[i, j, kt + 2] - (1.0 - fpad[i, j, kt + 1]))
        i2, j2 = np.nonzero(inf)
        kb = bot[i2, j2]
        d_bot = -h * (fpad[i2, j2, kb] - (1.0 - fpad[i2, j2, kb + 1]))
        for i, j, K, d in ((i, j, kt + 1, d_top), (i2, j2, kb, d_bot)):
            d = np.clip(d, -_SNAP_LIMIT * h, _SNAP_LIMIT * h)
            for di in (0, 1):
                for dj in (0, 1):
                    np.add.at(total, (i + di, j + dj, K), d)
                    np.add.at(count, (i + di, j + dj, K), 1.0)
    known = count > 0
    val = np.where(known, total / np.maximum(count, 1.0), 0.0)
    k = np.arange(nk + 1)
    prev = np.maximum.accumulate(np.where(known, k, -1), axis=2)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(known, k, nk + 1), axis=2), axis=2), axis=2)
    prev_c = np.clip(prev, 0, nk)
    next_c = np.clip(nxt, 0, nk)
    vp = np.take_along_axis(val, prev_c, axis=2)
    vn = np.take_along_axis(val, next_c, axis=2)
    has_p, has_n = prev >= 0, nxt <= nk
    w = np.where(has_p & has_n & (nxt > prev), (k - prev) / np.maximum(nxt - prev, 1), 0.0)
    d = np.where(has_p & has_n, vp + w * (vn - vp), np.where(has_p, vp, np.where(has_n, vn, 0.0)))
    return d[..., None] * U[:, 2]


def _taubin(points, cells, iterations):
    """Node moves of ``iterations`` Taubin passes over the outer-surface nodes."""
    import scipy.sparse as sp

    from ..mesh import Mesh

    mesh = Mesh(points, cells)
    faces = mesh.boundary_faces()
    edges = np.concatenate([faces[:, [a, (a + 1) % 4]] for a in range(4)])
    n = len(points)
    A = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    A = ((A + A.T) > 0).astype(float).tocsr()
    deg = np.asarray(A.sum(axis=1)).ravel()
    surf = deg > 0
    x = points.copy()
    for _ in range(int(iterations)):
        for lam in _TAUBIN:
            avg = (A @ x)[surf] / deg[surf, None]
            x[surf] += lam * (avg - x[surf])
    return x - points


def voxel_segment(lab, rho, order, codes, fits, h, base, bmd, cortex_thickness, endplate_thickness,
                  snap=True, smoothing=0):
    """A :class:`~vertebrafe.Segment` of voxel cells from the label map ``lab`` (Image, body-only labels)
    and the calibrated, partial-volume corrected density ``rho`` (mg/cm^3, same grid).

    ``order`` vertebrae cranial first, ``codes`` their labels, ``fits`` their template fits (frames),
    ``h`` the cell size (mm), ``base`` the MaterialSet, ``bmd`` the vBMD per level; see the module
    docstring for ``snap`` and ``smoothing`` (Taubin passes). Returns ``(segment, info)``.
    """
    from ..anatomy import level_dimensions
    from ..anatomy.levels import segment_names
    from ..anatomy.segment import Segment
    from ..anatomy.vertebra import REGION_CODES, make_mesh

    up = np.mean([f.R[:, 2] for f in fits.values()], axis=0)
    up /= np.linalg.norm(up)
    U, origin, (ni, nj, nk) = _grid(lab, h, up)
    ns = int(min(4, max(1, math.ceil(h / min(lab.spacing) - 1e-9))))
    sub = ((np.arange(ns) + 0.5) / ns - 0.5) * h
    offs = np.stack(np.meshgrid(sub, sub, sub, indexing="ij"), -1).reshape(-1, 3) @ U.T
    ijk = np.stack(np.meshgrid(np.arange(ni), np.arange(nj), np.arange(nk), indexing="ij"), -1).reshape(-1, 3)
    centres = origin + ((ijk + 0.5) * h) @ U.T
    samples = centres[:, None, :] + offs[None]
    lab_s = lab.sample(samples.reshape(-1, 3), order=0, fill=0).reshape(len(centres), -1)
    phi = [(lab_s == c).mean(axis=1).reshape(ni, nj, nk) for c in codes]
    best = np.argmax(np.stack(phi), axis=0)
    bodies = [_largest_piece((p >= 0.5) & (best == i)) for i, p in enumerate(phi)]
    for v, M in zip(order, bodies):
        if not M.any():
            raise InputError(f"{v}: no cell of {h:g} mm is at least half inside the label; lower element_size")

    names = segment_names(order)
    level_code = {n: i + 1 for i, n in enumerate(names)}
    region = np.zeros((ni, nj, nk), np.int64)
    level = np.zeros((ni, nj, nk), np.int64)
    frac = np.zeros((ni, nj, nk))
    normal = np.zeros((ni, nj, nk, 3))
    for v, M in zip(order, bodies):
        lateral, endplate, f, n = _shell(M, h, cortex_thickness, endplate_thickness)
        region[M] = REGION_CODES["cancellous"]
        region[M & endplate] = REGION_CODES["endplate"]
        region[M & lateral] = REGION_CODES["cortex"]
        level[M] = level_code[v]
        shell = M & (lateral | endplate)
        frac[shell], normal[shell] = f[shell], n[shell]
    for (vu, Mu), (vl, Ml) in zip(zip(order[:-1], bodies[:-1]), zip(order[1:], bodies[1:])):
        name = f"{vu}-{vl}"
        sup_l, _, _, top_l = _column_ends(Ml)
        _, inf_u, bot_u, _ = _column_ends(Mu)
        F = sup_l & inf_u & (bot_u > top_l + 1)
        if not F.any():
            raise InputError(f"{name}: no gap of a whole cell between the labels of {vu} and {vl} along the "
                             f"spine axis at element_size {h:g} mm; lower element_size")
        k = np.arange(nk)
        disc = F[..., None] & (k > top_l[..., None]) & (k < bot_u[..., None])
        d = level_dimensions(name)
        ant = (U[:, :2].T @ fits[vl].R[:, 1])
        N = _nucleus(F, h, ant, d.nucleus_fraction, d.nucleus_offset)
        region[disc] = REGION_CODES["annulus"]
        region[disc & N[..., None]] = REGION_CODES["nucleus"]
        level[disc] = level_code[name]

    # cells and nodes
    active = np.flatnonzero(region.ravel())
    i, j, kk = np.unravel_index(active, (ni, nj, nk))
    corner = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
    node_id = np.stack([np.ravel_multi_index((i + a, j + b, kk + c), (ni + 1, nj + 1, nk + 1))
                        for a, b, c in corner], axis=1)
    used, cells = np.unique(node_id, return_inverse=True)
    cells = cells.reshape(-1, 8)
    IJK = np.stack(np.unravel_index(used, (ni + 1, nj + 1, nk + 1)), axis=1)
    points = origin + (IJK * h) @ U.T
    disp = np.zeros((len(used), 3))
    if snap:
        d = _snap((ni + 1, nj + 1, nk + 1), h, bodies, phi, U).reshape(-1, 3)[used]
        disp = _quality_guard(points, d, cells)
    if smoothing:
        disp = disp + _quality_guard(points + disp, _taubin(points + disp, cells, smoothing), cells)
    points = points + disp

    # sets: endplate faces of each body (outward), frames from the fits
    node_sets, face_sets = {}, {}
    cell_of = np.full(ni * nj * nk, -1, np.int64)
    cell_of[active] = np.arange(active.size)
    k = np.arange(nk)
    for v, M in zip(order, bodies):
        sup, inf, bot, top = _column_ends(M)
        for which, cols, ok, end in (("superior", [4, 5, 6, 7], sup, top), ("inferior", [0, 3, 2, 1], inf, bot)):
            ends = np.flatnonzero((ok[..., None] & (k == end[..., None])).ravel())
            faces = cells[cell_of[ends]][:, cols]
            face_sets[f"{v}:{which}"] = faces
            node_sets[f"{v}:{which}"] = np.unique(faces)
    for end, which in ((order[0], "superior"), (order[-1], "inferior")):
        node_sets[f"segment:{which}"] = node_sets[f"{end}:{which}"]
        face_sets[f"segment:{which}"] = face_sets[f"{end}:{which}"]
    reg = region.ravel()[active]
    present = np.unique(reg)
    rnames = {c: n for n, c in REGION_CODES.items()}
    mesh = make_mesh(points, cells, cell_data={"region": reg, "level": level.ravel()[active]},
                     tag_names={"region": {int(c): rnames[int(c)] for c in present},
                                "level": {c: n for n, c in level_code.items()}},
                     node_sets=node_sets, face_sets=face_sets)
    mesh.check_inverted()

    # density and materials
    bone = np.isin(reg, [REGION_CODES[r] for r in ("cortex", "endplate", "cancellous")])
    dens = lab.sample(samples[active[bone]].reshape(-1, 3), values=rho, order=1, fill=np.nan)
    dens = dens.reshape(int(bone.sum()), -1).mean(axis=1)
    if np.isnan(dens).any():
        raise InputError(f"{int(np.isnan(dens).sum())} bone cells lie outside the image; the labels touch the "
                         "image border")
    field_bmd = np.full(len(reg), np.nan)
    field_bmd[bone] = np.clip(dens, 1.0, 400.0)
    clipped = int(np.count_nonzero((dens <= 1.0) | (dens > 400.0)))
    mesh.set_cell_data("bmd", field_bmd)
    is_shell = np.isin(reg, [REGION_CODES["cortex"], REGION_CODES["endplate"]])
    shell = np.flatnonzero(is_shell)
    mesh.set_cell_data("shell_fraction", np.where(is_shell, frac.ravel()[active], 0.0))
    mats = VoxelMaterials(base, bmd, shell_cells=shell, shell_fraction=frac.ravel()[active[shell]],
                          shell_normal=normal.reshape(-1, 3)[active[shell]] @ U.T)
    seg = Segment(mesh=mesh, levels=tuple(order), discs=tuple(n for n in names if "-" in n), dimensions={},
                  frames={v: (fits[v].R, fits[v].origin) for v in order}, counts=None, element_size=float(h),
                  cortex_thickness=float(cortex_thickness), endplate_thickness=float(endplate_thickness))
    seg = seg.with_materials(mats)
    identical = not np.any(disp)
    info = dict(geometry="voxel", cells=int(len(cells)), snap=bool(snap), smoothing=int(smoothing),
                column_tilt_deg=float(np.degrees(np.arccos(min(1.0, float(U[:, 2] @ up))))),
                identical_cells=identical, clipped_cells=clipped,
                moved_nodes=int(np.count_nonzero(np.linalg.norm(disp, axis=1) > 1e-12)))
    return seg, info
