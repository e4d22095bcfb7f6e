"""Facet joints (compression-only) and spinal ligaments (tension-only) of a segment with posterior
elements, as :class:`~vertebrafe.springs.SpringSet` between the arches of
:mod:`vertebrafe.anatomy.posterior`.

**Facet joints** (set :data:`FACET_SET`, one group per joint and side, ``"L4-L5:right"``): contact points
spread over the overlap of the joint faces of the upper vertebra's inferior articular process and the
lower vertebra's superior one, each a material point of both processes with a stiffness proportional to
the face area it stands for (:func:`joint_pairs`). The springs act along the joint normal ``n`` of the published orientation (:data:`FACET_TABLE`: angle
``beta`` to the midsagittal plane, inclination ``gamma`` to the transverse plane), pointing from the
inferior process (posteromedial) into the superior one (anterolateral) and downward for an inclined joint:
``n = (+-cos beta sin gamma, sin beta sin gamma, -cos gamma)`` in the vertebrae's mean frame. They carry
compression only: the joint closes when the inferior process moves into the superior one along ``n``.
Each joint has the stiffness of its two cartilage layers in series, ``E A / (2 t)`` (cartilage modulus
``E``, facet area ``A``, layer thickness ``t``; :data:`FACET_CARTILAGE`), shared by its springs in
proportion to their areas (a uniform stiffness per unit area: the joint's stiffness and its centroid do
not depend on the mesh),
and the clearance ``gap`` of :data:`FACET_CARTILAGE` (0 by default: cartilage in contact, unloaded, in the
reference position): a spring carries load once the joint has closed by more than the gap.

**Ligaments** (set :data:`LIGAMENT_SET`, one group per ligament and level, ``"L4-L5:LF"``): tension-only
springs, taut at zero strain, with the piecewise-linear whole-ligament law of
:func:`~vertebrafe.anatomy.posterior_levels.ligament_law`: each node pair carries its share of the first
stiffness (:data:`LIGAMENTS`) from zero elongation, and further springs on the same pair, slack up to each
transition elongation, add their share of the stiffening (:data:`LIGAMENT_STIFFENING`); all are in the
ligament's group, and the springs of one pair are one member (:func:`~vertebrafe.springs.law_springs`). Ends: the broad ligaments are :data:`LINE_POINTS` pairs of material points spread evenly
over a specified width or length (point ``i`` of the upper vertebra with point ``i`` of the lower; linear
between the nodes of the attachment line, so that neither the attachment nor the ligament's lever arms
change with the element size): ALL and PLL on the bodies' outline across the anterior / posterior midline
(inferior endplate rim of the upper and superior rim of the lower vertebra; a quarter of the body's width
and half the canal's), ligamentum flavum (LF) on the front edges of the laminae across the canal's width,
interspinous (ISL) along the spinous processes from the laminae to the tips (the upper one's bottom at its
specified height); node pairs: supraspinous
(SSL) between the spinous tips, intertransverse (ITL) between the transverse process
tips (one spring per side, both in one group) and capsular (CL, one capsule per joint, both joints in one
group) over the facet contact points of each joint (shared by area as the contact), acting
along the joint normal (the capsule resists the joint's opening). The other ligaments act along the line
between their ends.
"""
from __future__ import annotations

import numpy as np

from ..elements import HEX8_FACES, hex8_shape, hex8_shape_gradients
from ..errors import InputError, MeshError
from .posterior_levels import FACET_CARTILAGE, LIGAMENT_STIFFENING, LIGAMENTS, facet_dimensions, posterior_dimensions

__all__ = ["FACET_SET", "LIGAMENT_SET", "facet_springs", "ligament_springs", "facet_normal", "joint_pairs", "facet_pairs"]

FACET_SET = "facet_joints"
LIGAMENT_SET = "ligaments"


def facet_normal(segment, disc, side):
    """Unit joint normal ``(3,)`` (global) of the facet joint at ``disc`` on ``side`` (see the module)."""
    upper, lower = disc.split("-")
    fd = facet_dimensions(disc)
    b, g = np.radians(fd["angle"]), np.radians(fd["inclination"])
    s = 1.0 if side == "right" else -1.0
    n_loc = np.array([s * np.cos(b) * np.sin(g), np.sin(b) * np.sin(g), -np.cos(g)])
    n = segment.frames[upper][0] @ n_loc + segment.frames[lower][0] @ n_loc
    return n / np.linalg.norm(n)


#: Points and weights of the degree-2 rule on a triangle (barycentric coordinates of the two last corners).
_TRIANGLE_RULE = np.array([[1 / 6, 1 / 6], [2 / 3, 1 / 6], [1 / 6, 2 / 3]])


def joint_pairs(segment, disc, side):
    """Contact points of one facet joint: ``(nodes_a (k, 8), w_a (k, 8), nodes_b (k, 8), w_b (k, 8), share (k,))``.

    The joint is the overlap of its two faces seen across the joint, the face of the inferior process
    (upper vertebra) and that of the superior process (lower vertebra), both planar: the polygon where the
    outline of the first, projected onto the plane of the second, meets the outline of the second, within
    the joint's height band (:attr:`~vertebrafe.anatomy.posterior.Arch.bands`; the meshed faces reach the node
    layer beyond it, so the joint's extent is the band's, not the layers'). The
    contact points are those of a degree-2 quadrature of that polygon (three points per triangle of a fan
    from the mean of its corners), on the joint plane as specified (midway between the two vertebrae's
    :attr:`~vertebrafe.anatomy.posterior.Arch.joint_x`; the meshed faces lie on the nearest node columns,
    which move with the mesh), with ``share`` their quadrature weight
    over the polygon's area (the shares of a joint sum to 1): the joint's stiffness is spread uniformly over
    its area, and its total, centroid and second moment of area are integrated exactly, from the geometry
    alone, whatever the mesh. Each end is the contact point as a material point of its own vertebra: the
    trilinear interpolation of the cell that owns the face quad under it (extended beyond the cell where
    the joint plane lies outside it). Both ends start at the same point, so a contact force along the
    joint normal acts on one line: the pair's forces balance in moment as well as in force. Faces that do not
    overlap (an arch lowered by a fracture) give no contact points."""
    upper, lower = disc.split("-")
    arches = segment.posterior.arches
    ca, qa = _face_quads(segment, upper, arches[upper].iap[side])
    cb, qb = _face_quads(segment, lower, arches[lower].sap[side].ravel())
    P = segment.mesh.points
    Xa, Xb = P[qa], P[qb]                                                   # (q, 4, 3)
    m = np.cross(Xb[:, 2] - Xb[:, 0], Xb[:, 3] - Xb[:, 1]).sum(axis=0)
    m /= np.linalg.norm(m)                                                  # normal of the superior face
    e1 = np.cross(m, [1.0, 0.0, 0.0] if abs(m[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(m, e1)
    E = np.stack([e1, e2], axis=1)                                          # (3, 2) in-plane basis
    polygon = _clip(_hull(Xa.reshape(-1, 3) @ E), _hull(Xb.reshape(-1, 3) @ E))
    sign = 1.0 if side == "right" else -1.0
    plane = np.mean([(segment.frames[v][1] + segment.frames[v][0][:, 0] * sign * arches[v].joint_x) @ m
                     for v in (upper, lower)])
    for v, key in ((upper, "inferior"), (lower, "superior")):   # the joint's extent, where specified
        for node, axis, lo, hi in arches[v].bands.get(key, {}).get(side, ()):
            if len(polygon) < 3:
                break
            a = segment.frames[v][0][:, axis]
            g, z0 = E.T @ a, plane * (m @ a) - P[node] @ a              # position of uv along a: uv . g + z0
            tol = 1e-7 * (1.0 + hi - lo)        # a face edge on the band's edge stays inside (no round-off cut)
            polygon = _clip(polygon, _strip(g, lo - z0 - tol, hi - z0 + tol, 1e3 * (1.0 + np.abs(polygon).max())))
    if len(polygon) < 3:                    # faces apart (e.g. an arch lowered by a fracture): no contact
        return np.zeros((0, 8), np.int64), np.zeros((0, 8)), np.zeros((0, 8), np.int64), np.zeros((0, 8)), np.zeros(0)
    a, b, c = polygon.mean(axis=0), polygon, np.roll(polygon, -1, axis=0)    # fan from the centre (mirror-invariant)
    area = 0.5 * np.abs((b[:, 0] - a[0]) * (c[:, 1] - a[1]) - (b[:, 1] - a[1]) * (c[:, 0] - a[0]))
    uv = a + _TRIANGLE_RULE[None, :, :1] * (b - a)[:, None] + _TRIANGLE_RULE[None, :, 1:] * (c - a)[:, None]
    uv, weight = uv.reshape(-1, 2), np.repeat(area / 3.0, 3)
    ha, hb = _in_quads(uv, Xa @ E), _in_quads(uv, Xb @ E)
    if np.any(ha < 0) or np.any(hb < 0):
        raise MeshError(f"facet joint {disc} {side}: a contact point misses the meshed faces")
    xc = uv @ E.T + plane * m                                               # on the specified joint plane
    na, wa = _embed(segment.mesh, ca[ha], xc)
    nb, wb = _embed(segment.mesh, cb[hb], xc)
    return na, wa, nb, wb, weight / weight.sum()


def _face_quads(segment, level, nodes):
    """The boundary quads of ``level``'s posterior cells whose four nodes are all in ``nodes``: ``(owner
    cells (q,), quad nodes (q, 4))``, each quad once, its nodes in cyclic order."""
    mesh = segment.mesh
    own = np.flatnonzero(mesh.cells_in("level", level) & mesh.cells_in("region", "posterior"))
    faces = mesh.cells[own][:, HEX8_FACES]                                  # (c, 6, 4)
    inside = np.isin(faces, nodes).all(axis=2)
    cell, face = np.nonzero(inside)
    quads = faces[cell, face]
    _, first = np.unique(np.sort(quads, axis=1), axis=0, return_index=True)
    return own[cell[first]], quads[first]


def _hull(p):
    """Convex hull ``(v, 2)`` of the points ``p (k, 2)``, anticlockwise (monotone chain)."""
    p = np.unique(np.round(p, 12), axis=0)

    def half(points):
        out = []
        for q in points:
            while len(out) >= 2 and _cross2(out[-1] - out[-2], q - out[-2]) <= 1e-12:
                out.pop()
            out.append(q)
        return out[:-1]

    return np.array(half(p) + half(p[::-1]))


def _clip(poly, clipper):
    """The convex polygon ``poly (v, 2)`` clipped by the anticlockwise convex polygon ``clipper``
    (Sutherland-Hodgman)."""
    out = list(poly)
    for i in range(len(clipper)):
        a, b = clipper[i], clipper[(i + 1) % len(clipper)]
        side = [_cross2(b - a, q - a) for q in out]
        new = []
        for j, q in enumerate(out):
            r, sq, sr = out[j - 1], side[j], side[j - 1]
            if sq >= 0.0:
                if sr < 0.0:
                    new.append(r + (q - r) * sr / (sr - sq))
                new.append(q)
            elif sr >= 0.0:
                new.append(r + (q - r) * sr / (sr - sq))
        out = new
        if not out:
            break
    out = np.array(out).reshape(-1, 2)
    scale = 1e-9 * (1.0 + np.abs(poly).max())
    keep = [q for j, q in enumerate(out)                                   # no repeated or collinear corners
            if np.linalg.norm(q - out[j - 1]) > scale and abs(_cross2(q - out[j - 1], out[(j + 1) % len(out)] - q))
            > scale * np.linalg.norm(out[(j + 1) % len(out)] - out[j - 1])]
    return np.array(keep).reshape(-1, 2)


def _strip(g, t_lo, t_hi, half):
    """The rectangle ``{uv: t_lo <= uv . g <= t_hi}``, ``half`` long either side across, anticlockwise."""
    gn = np.linalg.norm(g)
    u, p = g / gn, np.array([-g[1], g[0]]) / gn
    return np.array([u * t_lo / gn - p * half, u * t_hi / gn - p * half, u * t_hi / gn + p * half,
                     u * t_lo / gn + p * half])


def _cross2(a, b):
    """z-component of the cross product of 2-vectors."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _in_quads(p, quads):
    """Index of the (planar, convex) quad ``quads (q, 4, 2)`` that holds each point ``p (k, 2)``; -1 where
    none does."""
    out = np.full(len(p), -1)
    for tri in ((0, 1, 2), (0, 2, 3)):
        a, b, c = (quads[:, i][None] for i in tri)                           # (1, q, 2)
        v0, v1, v2 = b - a, c - a, p[:, None, :] - a
        det = v0[..., 0] * v1[..., 1] - v0[..., 1] * v1[..., 0]
        s = (v2[..., 0] * v1[..., 1] - v2[..., 1] * v1[..., 0]) / det
        t = (v0[..., 0] * v2[..., 1] - v0[..., 1] * v2[..., 0]) / det
        inside = (s >= -1e-9) & (t >= -1e-9) & (s + t <= 1.0 + 1e-9)        # (k, q)
        found = inside.any(axis=1) & (out < 0)
        out[found] = np.argmax(inside[found], axis=1)
    return out


def _embed(mesh, host, x):
    """Points ``x (k, 3)`` as material points of the cells ``host (k,)``: the trilinear shape-function values
    at ``x`` (Newton on the map; extrapolated where ``x`` lies outside its cell):
    ``(cell nodes (k, 8), weights (k, 8))``."""
    X = mesh.points[mesh.cells[host]]                                       # (k, 8, 3)
    xi = np.zeros((len(host), 3))
    for _ in range(10):
        N = hex8_shape(xi)
        J = np.einsum("kai,kaj->kij", X, hex8_shape_gradients(xi))      # dx_i / dxi_j
        r = np.einsum("ka,kai->ki", N, X) - x
        xi = xi - np.linalg.solve(J, r[..., None])[..., 0]
    return mesh.cells[host], hex8_shape(xi)


def facet_pairs(segment):
    """``{(disc, side): (nodes_a, w_a, nodes_b, w_b, share)}``: :func:`joint_pairs` of every joint of
    ``segment``."""
    return {(d, s): joint_pairs(segment, d, s) for d in segment.discs for s in ("left", "right")}


def facet_springs(segment, pairs=None, gap=None):
    """The compression-only :class:`~vertebrafe.springs.SpringSet` of every facet joint of ``segment``;
    ``gap`` (mm, >= 0): the joints' clearance, default that of :data:`FACET_CARTILAGE`."""
    from ..springs import spring_set

    _check(segment)
    gap = FACET_CARTILAGE["gap"][0] if gap is None else gap
    if not (isinstance(gap, (int, float)) and 0.0 <= gap < 5.0):
        raise InputError(f"facet gap = {gap!r} mm; allowed: a number from 0 to below 5 mm")
    pairs = pairs or facet_pairs(segment)
    E, t = FACET_CARTILAGE["modulus"][0], FACET_CARTILAGE["thickness"][0]
    a_all, wa_all, b_all, w_all, k_all, n_all, g_all, names = [], [], [], [], [], [], [], {}
    for gi, ((disc, side), (a, wa, b, w, share)) in enumerate(pairs.items()):
        k_joint = E * facet_dimensions(disc)["area"] / (2.0 * t)
        a_all.append(a)
        wa_all.append(wa)
        b_all.append(b)
        w_all.append(w)
        k_all.append(k_joint * share)
        n_all.append(np.broadcast_to(facet_normal(segment, disc, side), (len(a), 3)))
        g_all.append(np.full(len(a), gi))
        names[gi] = f"{disc}:{side}"
    return spring_set(segment.mesh.points, np.concatenate(a_all), np.concatenate(b_all), np.concatenate(k_all),
                      "compression", weights_a=np.concatenate(wa_all), weights_b=np.concatenate(w_all),
                      direction=np.concatenate(n_all), gap=float(gap), name=FACET_SET, group=np.concatenate(g_all),
                      group_names=names)


#: Attachment points per end of a broad ligament (ALL, PLL, LF, ISL): a fixed number, so that the
#: attachment, and the ligament's force distribution over it, do not depend on the element size.
LINE_POINTS = 10


def _line_points(segment, vertebra, nodes, axis, lo, hi):
    """``LINE_POINTS`` material points at the midpoints of equal parts of ``lo .. hi`` (mm, along the local
    ``axis`` of ``vertebra``) on the polyline through ``nodes`` (in increasing coordinate along that axis;
    linear between neighbours, extended straight beyond the end nodes): ``(nodes (n, 2), weights (n, 2))``."""
    R, o = segment.frames[vertebra]
    s = (segment.mesh.points[nodes] - o) @ R[:, axis]
    t = lo + (np.arange(LINE_POINTS) + 0.5) * (hi - lo) / LINE_POINTS
    j = np.clip(np.searchsorted(s, t) - 1, 0, len(s) - 2)
    f = (t - s[j]) / (s[j + 1] - s[j])
    return np.stack([nodes[j], nodes[j + 1]], axis=1), np.stack([1.0 - f, f], axis=1)


def _line_pairs(segment, upper, a, lower, b, axis, span_a, span_b):
    """The paired attachment points of a broad ligament, ``(nodes_a, w_a, nodes_b, w_b)``: point ``i`` of the
    upper vertebra's line ``a`` with point ``i`` of the lower one's line ``b`` (:func:`_line_points` over
    ``span_a`` / ``span_b``)."""
    na, wa = _line_points(segment, upper, np.asarray(a), axis, *span_a)
    nb, wb = _line_points(segment, lower, np.asarray(b), axis, *span_b)
    return na, nb, wa, wb


def _interspinous(segment, upper, ua, lower, la):
    """The interspinous ligament's ends ``(nodes_a, nodes_b, w_a, w_b)``: :data:`LINE_POINTS` pairs along the
    spinous processes' midlines from the tip to the lamina, on the upper process's bottom at its specified
    height (``spinous_height`` below its top; interpolated between its bottom node row and the row above, so
    that it does not move with the body's node layers) and on the lower process's top."""
    def along(v, nodes):
        R, o = segment.frames[v]
        y = (segment.mesh.points[nodes[[-1, 0]]] - o) @ R[:, 1]                 # tip .. lamina (mm)
        return _line_points(segment, v, nodes[::-1], 1, *y)

    nb, wb = along(lower, la.spinous_top)
    n0, w0 = along(upper, ua.spinous_bottom)
    n1, w1 = along(upper, ua.spinous_above)
    R, o = segment.frames[upper]
    z0, z1, zt = ((segment.mesh.points[nodes[-1]] - o) @ R[:, 2] for nodes in (ua.spinous_bottom, ua.spinous_above,
                                                                               ua.spinous_top))        # at the tip
    g = (zt - posterior_dimensions(upper)["spinous_height"] - z0) / (z1 - z0)
    return np.concatenate([n0, n1], axis=1), nb, np.concatenate([(1.0 - g) * w0, g * w1], axis=1), wb


def ligament_springs(segment, pairs=None):
    """The tension-only :class:`~vertebrafe.springs.SpringSet` of the ligaments of ``segment``: one member per
    attachment pair (:meth:`~vertebrafe.springs.SpringSet.member_totals` gives the pair's force)."""
    from ..springs import law_springs

    _check(segment)
    pairs = pairs or facet_pairs(segment)
    P = segment.mesh.points
    arches, longit = segment.posterior.arches, segment.posterior.longitudinal
    A, WA, B, W, K, G, N, names = [], [], [], [], [], [], [], {}

    def ends(nodes, w):
        """Every end as 8 weighted nodes (single nodes padded with zero weights)."""
        nodes = np.asarray(nodes, np.int64)
        nodes = nodes.reshape(nodes.shape[0], -1) if nodes.ndim > 1 else nodes[:, None]
        w = np.ones(nodes.shape) if w is None else np.asarray(w, float)
        pad = 8 - nodes.shape[1]
        return (np.concatenate([nodes, np.repeat(nodes[:, :1], pad, axis=1)], axis=1),
                np.concatenate([w, np.zeros((nodes.shape[0], pad))], axis=1))

    def add(name, a, b, wa=None, wb=None, direction=None, k=None):
        """The end pairs of one ligament (nodes, or interpolated points with weights); ``k`` the stiffness of
        each pair (default: the ligament's stiffness shared equally by its pairs); a ligament without pairs
        keeps its name."""
        if len(a) == 0:
            names[len(names)] = name
            return
        a, wa = ends(np.asarray(a).reshape(len(a), -1) if np.ndim(a) > 1 else np.ravel(a), wa)
        b, wb = ends(np.asarray(b).reshape(len(b), -1) if np.ndim(b) > 1 else np.ravel(b), wb)
        if direction is None:
            xa, xb = np.einsum("kp,kpi->ki", wa, P[a]), np.einsum("kp,kpi->ki", wb, P[b])
            direction = (xb - xa) / np.linalg.norm(xb - xa, axis=1, keepdims=True).clip(1e-300)
        gi = len(names)
        names[gi] = name
        A.append(a)
        WA.append(wa)
        B.append(b)
        W.append(wb)
        N.append(direction)
        K.append(np.full(len(a), LIGAMENTS[name.split(":")[1]][0] / len(a)) if k is None else k)
        G.append(np.full(len(a), gi))

    for disc in segment.discs:
        up, lo = disc.split("-")
        ua, la = arches[up], arches[lo]
        for lig in ("ALL", "PLL"):          # across the midline, a specified width
            wu, wl = longit[up][lig]["half_width"], longit[lo][lig]["half_width"]
            add(f"{disc}:{lig}", *_line_pairs(segment, up, longit[up][lig]["inferior"], lo,
                                              longit[lo][lig]["superior"], 0, (-wu, wu), (-wl, wl)))
        cu, cl = (0.5 * posterior_dimensions(v)["canal_width"] for v in (up, lo))     # the canal's width
        add(f"{disc}:LF", *_line_pairs(segment, up, ua.lamina_bottom, lo, la.lamina_top, 0, (-cu, cu), (-cl, cl)))
        add(f"{disc}:ISL", *_interspinous(segment, up, ua, lo, la))
        add(f"{disc}:SSL", [ua.spinous_tip[1]], [la.spinous_tip[0]])
        add(f"{disc}:ITL", [ua.transverse_bottom["left"], ua.transverse_bottom["right"]],      # one per side
            [la.transverse_top["left"], la.transverse_top["right"]], k=np.full(2, LIGAMENTS["ITL"][0]))
        sides = ("left", "right")          # one capsule per joint over its contact points, along the joint normal
        n_side = [len(pairs[(disc, s)][0]) for s in sides]
        add(f"{disc}:CL", *(np.concatenate([pairs[(disc, s)][i] for s in sides]) for i in (0, 2, 1, 3)),
            np.concatenate([np.broadcast_to(facet_normal(segment, disc, s), (n, 3)) for s, n in zip(sides, n_side)]),
            k=LIGAMENTS["CL"][0] * np.concatenate([pairs[(disc, s)][4] for s in sides]))
    a, wa, b, w, k, g = (np.concatenate(x) for x in (A, WA, B, W, K, G))
    direction = np.concatenate(N)
    # each pair's share of its ligament's law: the first stiffness from zero elongation, then the stiffening
    # segments from their onsets (stacked parallel springs, one member per pair)
    part = [names[i].split(":")[1] for i in g]
    share = k / np.array([LIGAMENTS[p][0] for p in part])
    steps = [LIGAMENT_STIFFENING[p][0] for p in part]
    n_steps = max(map(len, steps))
    inc, onset = np.zeros((1 + n_steps, k.size)), np.zeros((1 + n_steps, k.size))
    inc[0] = k
    for j in range(n_steps):
        inc[1 + j] = share * [st[j][0] if j < len(st) else 0.0 for st in steps]
        onset[1 + j] = [st[j][1] if j < len(st) else 0.0 for st in steps]
    return law_springs(P, a, b, inc, onset, weights_a=wa, weights_b=w, direction=direction, name=LIGAMENT_SET,
                       group=g, group_names=names)

def _check(segment):
    if getattr(segment, "posterior", None) is None:
        raise InputError("the segment has no posterior elements; build it with segment(..., posterior=True)")
