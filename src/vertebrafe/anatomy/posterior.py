"""Posterior elements: pedicles, laminae, spinous and transverse processes and articular processes as hex8
cells conforming to the vertebral body's posterior wall.

Each vertebral arch is one structured block of cells, built in the vertebra's local frame (+x right, +y
anterior, +z superior) on a grid of node columns (x), rows (y) and layers (z):

* **columns**, left to right: transverse process, pedicle, canal, pedicle, transverse process. The pedicle
  columns *are* the body's outer-ring (cortical) nodes from the one nearest ``x = canal_width / 2`` to the
  one nearest ``canal_width / 2 + pedicle_width`` (capped at 85 % of the half-width of the body, so that a pedicle
  never leaves its posterolateral corner) on the posterior wall: a pedicle starts on the body's own
  nodes, so arch and body share nodes and no tie is needed.
* **rows**, front to back: the pedicles from the posterior wall back to the front of the laminae at
  ``canal_depth`` behind the posterior wall's midline, the laminae (``lamina_thickness``), the spinous
  process (``spinous_length``).
* **layers**: the body's node layers from the top of its inferior endplate layer to the bottom of its
  superior one (the pedicles use the upper ``pedicle_height`` of them), plus layers below for the inferior
  articular processes and above for the superior ones, each reaching half the adjacent disc height plus
  half the facet height (``sqrt(area)``) beyond the body, so that the processes of neighbouring vertebrae
  overlap in height as in a facet joint.

Cells: pedicles (pedicle columns, pedicle rows, pedicle layers), laminae (pedicle and canal columns,
lamina rows, all body layers), spinous process (the middle canal columns, spinous rows, the upper
``spinous_height`` of the body layers, so that lordosis leaves an interspinous gap), transverse
processes (outer columns; the front half of the lamina rows and the pedicle rows in front of them, one
lamina thickness deep in all, so that their depth does not depend on the element size; pedicle layers), superior articular processes (the pedicle
columns lateral of the node column nearest the pedicle's centre, moved onto it: the joint plane; same rows, layers above) and inferior articular processes (the pedicle columns medial of
it, lamina rows, layers below). The laminae leave a
notch in those medial columns, as deep as the superior processes are high, where the inferior process of
the vertebra above comes down between the superior process and the lamina. In the lumbar spine
the superior process of the lower vertebra lies anterolateral to the inferior process of the upper one,
and so it does here. All arch cells carry the region ``posterior`` (homogeneous posterior-element bone,
:data:`vertebrafe.materials.MATERIALS` ``"posterior_elements"``) and the level of their vertebra.

:func:`build_posterior` appends the arches to a layered segment mesh and returns the attachment points of
the facet joints and ligaments (:mod:`vertebrafe.anatomy.ligaments`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, MeshError
from .levels import adjacent_discs, level_dimensions
from .posterior_levels import facet_dimensions, posterior_dimensions
from .resolution import cell_count

__all__ = ["PosteriorColumn", "build_posterior", "check_articular_refinement", "PEDICLE_CAP"]

#: Largest pedicle extent as a fraction of the body's half-width (the pedicle stays on the posterior wall).
PEDICLE_CAP = 0.85


@dataclass
class Arch:
    """Attachment nodes (global node indices of the segment mesh) of one vertebral arch.

    ``iap`` / ``sap``: ``{side: (k,) nodes}`` of the joint face of the inferior articular process (its
    lateral face) and of the superior one (its medial face); ``lamina_top`` / ``lamina_bottom``: front edge
    of the laminae at the top and bottom layer; ``spinous_top`` / ``spinous_bottom``: midline nodes of the
    spinous process's top and bottom faces, and ``spinous_above`` those one node layer above its bottom face
    (the bottom face is the body layer nearest above the specified ``spinous_height``); ``spinous_tip``: ``(top node, bottom node)`` of its tip;
    ``transverse_top`` / ``transverse_bottom``: ``{side: node}`` at the transverse process tips; ``nodes``:
    the arch's own nodes (not shared with the body); ``joint_x``: the distance (mm, local frame) of the facet
    joints from the midsagittal plane, the centre of the pedicle as specified (the meshed joint faces lie on
    the node column nearest it, moved onto it when the pedicle is more than one cell wide). ``bands``: the extent of each joint as specified, ``{"inferior" | "superior":
    {side: [(node, axis, lo, hi), ...]}}``: the joint spans ``lo .. hi`` (mm) along the vertebra's local axis
    ``axis`` (2: height, the joint band; 1, superior process only: depth, half a lamina thickness behind the
    lamina front, which its meshed face covers at every element size; the inferior process's face spans the
    lamina exactly) from the arch node ``node`` (so it moves with the arch); the meshed faces cover it.
    """

    iap: dict
    sap: dict
    lamina_top: np.ndarray
    lamina_bottom: np.ndarray
    spinous_top: np.ndarray
    spinous_bottom: np.ndarray
    spinous_above: np.ndarray
    spinous_tip: tuple
    transverse_top: dict
    transverse_bottom: dict
    nodes: np.ndarray
    cells: np.ndarray
    joint_x: float = 0.0
    bands: dict = field(default_factory=dict)


@dataclass
class PosteriorColumn:
    """The posterior elements of a segment: ``arches`` ``{vertebra: Arch}``, the number of cells and nodes
    of the layered body-disc stack before them (``stack_cells``, ``stack_points``), and the anterior /
    posterior longitudinal-ligament attachments on the bodies ``{vertebra: {"ALL"|"PLL":
    {"superior"|"inferior": (k,) outline nodes across the midline in increasing x, "half_width": mm}}}``."""

    arches: dict
    stack_cells: int
    stack_points: int
    longitudinal: dict = field(default_factory=dict)
    articular_refinement: int = 1


def check_articular_refinement(value):
    """``value`` as an int if it is an allowed ``articular_refinement`` (an integer 1-4), else InputError."""
    if isinstance(value, (bool, np.bool_)) or value not in range(1, 5):
        raise InputError(f"articular_refinement = {value!r}; allowed an integer 1 (default) to 4")
    return int(value)


def _ext(disc, dims):
    """Reach (mm) of an articular process beyond the body where the segment has no neighbour on that side: half
    the disc height plus half the facet height."""
    d = dims.get(disc) or level_dimensions(disc)
    return 0.5 * d.rim_height + 0.5 * _facet_height(disc)


def _facet_height(disc):
    """Height (mm) of a facet joint: the side of a square of the published facet area."""
    return math.sqrt(facet_dimensions(disc)["area"] if disc in _FACET_DISCS else 150.0)


def _section(points, outer, n2, m, frame, first_layer, n_layers, pedicle_height):
    """The body outline of one vertebra in its frame: ``(R, o, ids_layers (L+1, 4m), loc (L+1, 4m, 3), ped, mid)``
    with ``ped`` the pedicle's node layers (the upper ``pedicle_height`` of the body's layers 1..L-1) and
    ``mid`` its middle layer."""
    R, o = (np.asarray(a, float) for a in frame)
    L = n_layers
    ids_layers = (first_layer + np.arange(L + 1))[:, None] * n2 + outer[None, :]
    loc = (points[ids_layers] - o) @ R
    zt = loc[L - 1, 3 * m, 2]
    body_layers = np.arange(1, L)
    zl = loc[body_layers, 3 * m, 2]
    k0 = int(np.argmin(np.abs(zl - (zt - pedicle_height))))             # nearest layer to the pedicle's base
    ped = body_layers[min(k0, len(body_layers) - 2):]
    return R, o, ids_layers, loc, ped, ped[len(ped) // 2]


def _joint_bands(points, outer, n2, m, order, frames, first_layer, n_layers):
    """Height band of every facet joint between neighbours of the segment, in each vertebra's own frame:
    ``{v: {"inferior": (z_lo, z_hi)} | {"superior": (z_lo, z_hi)}}`` (mm). The joint centre is midway between
    the upper vertebra's inferior endplate surface and the lower one's superior surface, extended to the
    front of the laminae
    (where the joint lies), so that lordosis, which brings those planes together behind the bodies, moves
    the joint with them; the band is the facet height about that centre. Each process reaches across the
    whole band, so the two processes overlap over the height of the joint."""
    wall = {}
    for v in order:
        R, o, _, loc, _, mid = _section(points, outer, n2, m, frames[v], first_layer[v], n_layers[v],
                                        posterior_dimensions(v)["pedicle_height"])
        y = loc[mid, 3 * m, 1] - posterior_dimensions(v)["canal_depth"]
        wall[v] = (R, o, o + R @ [0.0, y, loc[0, 3 * m, 2]], o + R @ [0.0, y, loc[n_layers[v], 3 * m, 2]])
    bands = {v: {} for v in order}
    for up, lo in zip(order[:-1], order[1:]):
        c = 0.5 * (wall[up][2] + wall[lo][3])                 # between the upper's bottom and the lower's top
        half = 0.5 * _facet_height(f"{up}-{lo}")
        for v, side in ((up, "inferior"), (lo, "superior")):
            R, o = wall[v][:2]
            zc = float((R.T @ (c - o))[2])
            bands[v][side] = (zc - half, zc + half)
    return bands


_FACET_DISCS = ("T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


def _layer_at_or_above(Z, z, default):
    """The lowest node-layer height ``Z`` at or above ``z`` (``default`` when ``z`` is None)."""
    return default if z is None else Z[Z >= z - 1e-9].min(initial=Z.max())


def _layer_at_or_below(Z, z, default):
    """The highest node-layer height ``Z`` at or below ``z`` (``default`` when ``z`` is None)."""
    return default if z is None else Z[Z <= z + 1e-9].max(initial=Z.min())


def _face(ids, Z, z_lo, z_hi):
    """Meshed nodes of a joint face: node ids ``(rows, layers)`` whose layer height ``Z`` lies in the band."""
    keep = (Z >= z_lo - 1e-9) & (Z <= z_hi + 1e-9)
    nodes = ids[:, keep].ravel()
    return nodes[nodes >= 0]


def _spaced(a, b, n):
    return a + (b - a) * np.arange(n + 1) / n


def build_posterior(points, counts, topo, order, frames, first_layer, n_layers, dims, h, articular_refinement=1):
    """Arches of every vertebra of a layered segment.

    points ``(n, 3)`` global node coordinates of the stack; ``counts``/``topo`` its O-grid; ``order``
    vertebrae cranial first; ``frames`` ``{v: (R, o)}``; ``first_layer`` ``{v: node layer index of its
    inferior surface}``; ``n_layers`` ``{v: cell layers}``; ``dims`` the segment's dimensions; ``h`` the
    element size (mm); ``articular_refinement`` (integer 1-4) multiplies the cell layers of the articular
    processes beyond the bodies (``ni``, ``nsap``; their height about ``h / articular_refinement``). Returns
    ``(new points (n', 3), new cells (c, 8), cell levels (c,) as vertebra names, PosteriorColumn)`` with the
    new points appended after ``points``.
    """
    art_factor = check_articular_refinement(articular_refinement)
    n2 = counts.n_nodes
    m = counts.m
    outer = np.asarray(topo["ring_nodes"][counts.n_rings])           # outline nodes, by boundary index j
    n0 = len(points)
    new_pts, new_cells, cell_level, arches, longit = [], [], [], {}, {}
    next_id = n0
    bands = _joint_bands(points, outer, n2, m, order, frames, first_layer, n_layers)
    for v in order:
        pd = posterior_dimensions(v)
        L = n_layers[v]
        R, o, ids_layers, loc, ped, mid = _section(points, outer, n2, m, frames[v], first_layer[v], L,
                                                   pd["pedicle_height"])   # pedicle: the upper body layers
        above, below = adjacent_discs(v)
        body_layers = np.arange(1, L)
        # pedicle columns on the posterior wall (right side: j from 3m up, x increasing)
        jr = np.arange(3 * m, 4 * m)
        xr = loc[mid, jr, 0]
        x_in = 0.5 * pd["canal_width"]
        x_out = min(x_in + pd["pedicle_width"], PEDICLE_CAP * loc[mid, :, 0].max())
        a0 = int(np.argmin(np.abs(xr - x_in)))                                  # nearest nodes to the edges
        a1 = max(int(np.argmin(np.abs(xr - x_out))), a0 + 1)
        sel = jr[a0:a1 + 1]
        jl = (6 * m - sel[::-1]) % (4 * m)                                       # mirror, x increasing
        n_pl = sel.size - 1
        # grid sizes
        x_edge = 0.5 * (loc[mid, sel[0], 0] - loc[mid, jl[-1], 0])
        n_c = cell_count(2.0 * x_edge, h, minimum=2, multiple=2)
        n_tp = cell_count(pd["transverse_length"], h)
        nr = cell_count(pd["canal_depth"], h, minimum=2)
        nl = cell_count(pd["lamina_thickness"], h, minimum=2, multiple=2)       # a node row at half its depth
        ns = cell_count(pd["spinous_length"], h)
        # processes: down to the bottom of the joint band below / up to the top of the band above (at least
        # one cell); at a segment end, half the disc and half the facet height beyond the body
        z_lo, z_hi = loc[1, 3 * m, 2], loc[L - 1, 3 * m, 2]
        band_i = bands[v].get("inferior", (z_lo - _ext(below, dims), None))
        band_s = bands[v].get("superior", (None, z_hi + _ext(above, dims)))
        ext_i, ext_s = max(h, z_lo - band_i[0]), max(h, band_s[1] - z_hi)
        ni = cell_count(ext_i, h) * art_factor
        nsap = cell_count(ext_s, h) * art_factor
        A = 2 * n_tp + 2 * n_pl + n_c                                            # cell columns
        B = nr + nl + ns                                                          # cell rows
        Lb = L - 2                                                                # body plate cell layers
        K = ni + Lb + nsap                                                        # cell layers
        # column x (nodes), per body layer for the pedicle columns
        cols_l = np.arange(n_tp, n_tp + n_pl + 1)
        cols_r = np.arange(n_tp + n_pl + n_c, n_tp + 2 * n_pl + n_c + 1)
        xw = np.empty((L + 1, A + 1))
        xw[:, cols_l] = loc[:, jl, 0]
        xw[:, cols_r] = loc[:, sel, 0]
        xm = xw[mid].copy()
        # the pedicle's edges on the specified canal and pedicle widths (each moved by less than a column, at
        # least a quarter column short of its neighbour), off the wall: the pedicles, the canal and the
        # processes keep their widths at every element size
        xs = xm[cols_r]
        d = np.diff(xs)
        e_in = min(max(x_in, xs[0] - d[0]), xs[1] - 0.25 * d[0]) if n_pl > 1 else x_in
        e_out = min(max(x_out, xs[-2] + 0.25 * d[-1]), xs[-1] + d[-1]) if n_pl > 1 else max(x_out, x_in + 0.5 * h)
        xm[cols_r[0]], xm[cols_r[-1]], xm[cols_l[-1]], xm[cols_l[0]] = e_in, e_out, -e_in, -e_out
        xc = _spaced(xm[cols_l[-1]], xm[cols_r[0]], n_c)
        x_tip = xm[cols_r[-1]] + pd["transverse_length"]
        xcol = np.empty(A + 1)
        xcol[cols_l], xcol[cols_r] = xm[cols_l], xm[cols_r]
        xcol[cols_l[-1]:cols_r[0] + 1] = xc
        xcol[:n_tp + 1] = _spaced(-x_tip, xm[cols_l[0]], n_tp)
        xcol[cols_r[-1]:] = _spaced(xm[cols_r[-1]], x_tip, n_tp)
        # wall y per column (mid layer) and row y
        yw_mid = np.full(A + 1, loc[mid, np.concatenate([jl, sel]), 1].mean())
        yw_mid[cols_l], yw_mid[cols_r] = loc[mid, jl, 1], loc[mid, sel, 1]
        y_lf = loc[mid, 3 * m, 1] - pd["canal_depth"]
        y_lb = y_lf - pd["lamina_thickness"]
        y_tip = y_lb - pd["spinous_length"]
        t = np.arange(nr + 1) / nr
        Y = (1 - t)[None, :] * yw_mid[:, None] + t[None, :] * y_lf                # (A+1, nr+1)
        Y = np.concatenate([Y, np.broadcast_to(_spaced(y_lf, y_lb, nl)[1:], (A + 1, nl)),
                            np.broadcast_to(_spaced(y_lb, y_tip, ns)[1:], (A + 1, ns))], axis=1)
        # layer z
        zb = loc[body_layers, 3 * m, 2]
        z_i = zb[0] - ext_i * np.arange(ni, 0, -1) / ni
        z_s = zb[-1] + ext_s * np.arange(1, nsap + 1) / nsap
        Z = np.concatenate([z_i, zb, z_s])                                        # (K+1,)
        X = np.broadcast_to(xcol[:, None, None], (A + 1, B + 1, K + 1))
        XYZ = np.stack([X, np.broadcast_to(Y[:, :, None], X.shape), np.broadcast_to(Z, X.shape)], axis=-1).copy()
        # node ids: -1 for new nodes; the pedicle wall nodes (row 0) are the body's
        ids = np.full((A + 1, B + 1, K + 1), -1, dtype=np.int64)
        kped = ni + ped - 1                                                       # plate layers of the pedicles
        ids[np.ix_(cols_l, [0], kped)] = ids_layers[np.ix_(ped, jl)].T[:, None, :]
        ids[np.ix_(cols_r, [0], kped)] = ids_layers[np.ix_(ped, sel)].T[:, None, :]
        # cell mask
        mask = np.zeros((A, B, K), dtype=bool)
        pl, pr = np.arange(n_tp, n_tp + n_pl), np.arange(n_tp + n_pl + n_c, n_tp + 2 * n_pl + n_c)
        canal = np.arange(n_tp + n_pl, n_tp + n_pl + n_c)
        kp = np.arange(kped.min(), kped.max())                                    # pedicle cell layers
        kb = np.arange(ni, ni + Lb)
        mask[np.ix_(np.concatenate([pl, pr]), np.arange(nr), kp)] = True                        # pedicles
        mask[np.ix_(np.arange(n_tp, A - n_tp), np.arange(nr, nr + nl), kb)] = True              # laminae
        n_sp = max(2, 2 * int(round(0.5 * pd["spinous_thickness"] / max(2 * x_edge / n_c, 1e-9))))
        spc = canal[n_c // 2 - n_sp // 2: n_c // 2 + n_sp // 2]
        ksp = kb[Z[kb] >= Z[ni + Lb] - pd["spinous_height"] - 1e-9]
        ksp = ksp if ksp.size else kb[-1:]
        mask[np.ix_(spc, np.arange(nr + nl, B), ksp)] = True                                    # spinous
        # behind the lamina, the spinous process's sides and bottom on its specified thickness and height (its
        # columns and lowest layer moved there, by less than a cell), whatever the element size
        XYZ[spc[0], nr + nl + 1:, :, 0], XYZ[spc[-1] + 1, nr + nl + 1:, :, 0] = (-0.5 * pd["spinous_thickness"],
                                                                               0.5 * pd["spinous_thickness"])
        if ksp.min() > ni:
            XYZ[spc[0]:spc[-1] + 2, nr + nl + 1:, ksp.min(), 2] = Z[ni + Lb] - pd["spinous_height"]
        # process rows: the front half of the lamina rows and the pedicle rows in front of them, one lamina
        # thickness deep in all, whatever the element size
        n_b = nl // 2
        n_f = min(nr, max(1, int(round(0.5 * pd["lamina_thickness"] * nr / pd["canal_depth"]))))
        prow = np.arange(nr - n_f, nr + n_b)
        if n_f < nr:    # the processes' front row half a lamina thickness ahead of the laminae (within half a row)
            r = nr - n_f
            ys = XYZ[:, r - 1:r + 2, :, 1]
            XYZ[:, r, :, 1] = np.clip(y_lf + 0.5 * pd["lamina_thickness"], 0.5 * (ys[:, 1] + ys[:, 2]),
                                      0.5 * (ys[:, 0] + ys[:, 1]))
        tpc = np.concatenate([np.arange(n_tp), np.arange(A - n_tp, A)])
        mask[np.ix_(tpc, prow, kp)] = True                                                      # transverse
        # joint plane: the node column nearest the pedicle's specified centre, moved onto it; inferior process
        # medial of it, superior process lateral of it (both the single column of a one-cell pedicle)
        xs = xm[cols_r]
        joint_x = 0.5 * (x_in + x_out)
        kf = min(max(int(np.argmin(np.abs(xs - joint_x))), 1), n_pl - 1) if n_pl > 1 else 1
        if n_pl > 1:      # the joint column on the specified plane (within half a column either side): the
            xj = min(max(joint_x, 0.5 * (xs[kf - 1] + xs[kf])), 0.5 * (xs[kf] + xs[kf + 1]))   # processes' width
            XYZ[cols_r[kf], ..., 0], XYZ[cols_l[n_pl - kf], ..., 0] = xj, -xj    # does not depend on the size
        if n_pl > 1:
            med = np.concatenate([pl[n_pl - kf:], pr[:kf]])
            lat = np.concatenate([pl[:n_pl - kf], pr[kf:]])
        else:
            med = lat = np.concatenate([pl, pr])
        mask[np.ix_(lat, prow, np.arange(ni + Lb, K))] = True                                   # superior art.
        mask[np.ix_(med, np.arange(nr, nr + nl), np.arange(ni))] = True                         # inferior art.
        # joint faces free over the joint band: no lamina (nor the back of the pedicle) medial of the joint
        # down to the bottom of the band (the inferior process of the vertebra above sits there, between this
        # superior process and the lamina); no lamina lateral of the joint up to the top of the band below
        # (the superior process of the vertebra below rises there beside this inferior process)
        notch = kb[Z[kb + 1] > (band_s[0] if band_s[0] is not None else Z[ni + Lb] - ext_s) + 1e-9]
        if notch.size < Lb:
            mask[np.ix_(med, np.arange(nr, nr + nl), notch)] = False
            if band_s[0] is not None:                           # the superior process's face, free down the band
                mask[np.ix_(med, np.arange(nr - n_f, nr), notch)] = False
        if band_i[1] is not None:
            low = kb[Z[kb] < band_i[1] - 1e-9]
            if low.size < Lb:
                mask[np.ix_(lat, np.arange(nr, nr + nl), low)] = False
        # cells (VTK hex8: bottom quad anticlockwise seen from +z, then top)
        a, b, k = np.nonzero(mask)
        corners = [(0, 0), (0, 1), (1, 1), (1, 0)]
        gidx = np.stack([np.stack([a + da, b + db, k + dk], axis=1) for dk in (0, 1) for da, db in corners], axis=1)
        used = np.zeros(ids.shape, bool)
        used[gidx[..., 0], gidx[..., 1], gidx[..., 2]] = True
        fresh = used & (ids < 0)
        nf = int(fresh.sum())
        ids[fresh] = next_id + np.arange(nf)
        next_id += nf
        pts_local = XYZ[fresh]
        new_pts.append(pts_local @ R.T + o)
        cells = ids[gidx[..., 0], gidx[..., 1], gidx[..., 2]]
        new_cells.append(cells)
        cell_level += [v] * len(cells)
        # attachment nodes
        kb0, kb1 = ni, ni + Lb                                                    # plate bottom / top node layer
        mid_col = n_tp + n_pl + n_c // 2
        iap_face = {"right": pr[0] + kf, "left": pl[0] + n_pl - kf} if n_pl > 1 else {"right": pr[0] + 1,
                                                                                     "left": pl[0]}
        sap_face = dict(iap_face) if n_pl > 1 else {"right": pr[0], "left": pl[0] + 1}
        arches[v] = Arch(
            iap={s: _face(ids[c, nr:nr + nl + 1], Z, -np.inf, _layer_at_or_above(Z, band_i[1], Z[kb0]))
                 for s, c in iap_face.items()},
            sap={s: _face(ids[c, nr - n_f:nr + n_b + 1], Z, _layer_at_or_below(Z, band_s[0], Z[kb1]), np.inf)
                 for s, c in sap_face.items()},
            lamina_top=ids[canal[0]:canal[-1] + 2, nr, kb1], lamina_bottom=ids[canal[0]:canal[-1] + 2, nr, kb0],
            spinous_top=ids[mid_col, nr + nl:, kb1], spinous_bottom=ids[mid_col, nr + nl:, ksp.min()],
            spinous_above=ids[mid_col, nr + nl:, ksp.min() + 1],
            spinous_tip=(int(ids[mid_col, B, kb1]), int(ids[mid_col, B, ksp.min()])),
            transverse_top={"left": int(ids[0, nr, kped.max()]), "right": int(ids[A, nr, kped.max()])},
            transverse_bottom={"left": int(ids[0, nr, kped.min()]), "right": int(ids[A, nr, kped.min()])},
            nodes=ids[fresh], cells=np.arange(0), joint_x=joint_x,
            bands={key: {s: [(int(ids[c, nr, k]), 2, lo - Z[k], hi - Z[k])]
                             + ([(int(ids[c, nr, k]), 1, -0.5 * pd["lamina_thickness"], 0.0)] if key == "superior" else [])
                         for s, c in faces.items()}
                   for key, (lo, hi), k, faces in (("inferior", band_i, 0, iap_face), ("superior", band_s, K, sap_face))
                   if None not in (lo, hi)})
        if min(arches[v].iap["right"].size, arches[v].sap["right"].size) == 0:
            raise MeshError(f"posterior arch of {v}: articular process faces are not meshed (element size {h} mm "
                            "too coarse for the posterior elements)")
        # longitudinal ligaments on the body: the outline nodes of the front / back across the midline, in
        # increasing x, and the ligament's half-width (ALL a quarter of the body's width, PLL half the canal's)
        W = loc[0, :, 0].max()
        x0 = loc[0, :, 0]
        ant = np.flatnonzero((np.abs(x0) <= 0.5 * W) & (loc[0, :, 1] > 0))
        post = np.flatnonzero((np.abs(x0) <= x_in) & (loc[0, :, 1] < 0))
        ant, post = ant[np.argsort(x0[ant])], post[np.argsort(x0[post])]
        longit[v] = {"ALL": {"inferior": ids_layers[0, ant], "superior": ids_layers[L, ant], "half_width": 0.25 * W},
                     "PLL": {"inferior": ids_layers[0, post], "superior": ids_layers[L, post],
                             "half_width": 0.5 * x_in}}
    points = np.concatenate([points] + new_pts)
    cells = np.concatenate(new_cells)
    start = 0
    for v in order:
        k = int(np.count_nonzero(np.asarray(cell_level) == v))
        arches[v].cells = np.arange(start, start + k)        # relative to the first arch cell
        start += k
    return points, cells, np.asarray(cell_level), PosteriorColumn(arches=arches, stack_cells=0, stack_points=n0,
                                                                  longitudinal=longit, articular_refinement=art_factor)
