"""Facet joints (compression-only) and spinal ligaments (tension-only) of a segment with posterior
elements, as :class:`~vertebrafe.springs.SpringSet` between the arches of
:mod:`vertebrafe.anatomy.posterior`.

**Facet joints** (set :data:`FACET_SET`, one group per joint and side, ``"L4-L5:right"``): each node of
the joint face of the upper vertebra's inferior articular process is joined to its projection along the
joint normal onto the lower vertebra's superior articular process (an interpolated point of that joint
face, :func:`joint_pairs`; nodes whose projection misses the face are not in the joint). The springs act along the joint normal ``n`` of the published orientation (:data:`FACET_TABLE`: angle
``beta`` to the midsagittal plane, inclination ``gamma`` to the transverse plane), pointing from the
inferior process (posteromedial) into the superior one (anterolateral) and downward for an inclined joint:
``n = (+-cos beta sin gamma, sin beta sin gamma, -cos gamma)`` in the vertebrae's mean frame. They carry
compression only: the joint closes when the inferior process moves into the superior one along ``n``.
Each joint has the stiffness of its two cartilage layers in series, ``E A / (2 t)`` (cartilage modulus
``E``, facet area ``A``, layer thickness ``t``; :data:`FACET_CARTILAGE`), shared equally by its springs,
and the clearance ``gap`` of :data:`FACET_CARTILAGE` (0 by default: cartilage in contact, unloaded, in the
reference position): a spring carries load once the joint has closed by more than the gap.

**Ligaments** (set :data:`LIGAMENT_SET`, one group per ligament and level, ``"L4-L5:LF"``): tension-only
springs, taut at zero strain, with the piecewise-linear whole-ligament law of
:func:`~vertebrafe.anatomy.posterior_levels.ligament_law`: each node pair carries its share of the first
stiffness (:data:`LIGAMENTS`) from zero elongation, and further springs on the same pair, slack up to each
transition elongation, add their share of the stiffening (:data:`LIGAMENT_STIFFENING`); all are in the
ligament's group. Node pairs: ALL and PLL between the bodies' outline nodes near the anterior / posterior midline (same
outline position on the inferior endplate rim of the upper and the superior rim of the lower vertebra),
ligamentum flavum (LF) between the front edges of the laminae, interspinous (ISL) between the spinous
processes, supraspinous (SSL) between their tips, intertransverse (ITL) between the transverse process
tips (one spring per side, both in one group) and capsular (CL, one capsule per joint, both joints in one
group) over the facet contact pairs of each joint, acting
along the joint normal (the capsule resists the joint's opening). The other ligaments act along the line
between their ends.
"""
from __future__ import annotations

import numpy as np

from ..elements import hex8_shape, hex8_shape_gradients
from ..errors import InputError
from .posterior_levels import FACET_CARTILAGE, LIGAMENT_STIFFENING, LIGAMENTS, facet_dimensions

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


def joint_pairs(segment, disc, side):
    """Contact points of one facet joint: ``(nodes_a (k, 8), w_a (k, 8), nodes_b (k, 8), w_b (k, 8))``.

    Each node of the inferior process's joint face (upper vertebra) within the height of the superior
    process is paired with the nearest node of the superior process's joint face (lower vertebra); the
    pair's contact point is their midpoint, and each end is that point as a material point of its own
    vertebra: the trilinear interpolation (the shape functions, extended a fraction of a cell beyond it
    where the point lies outside) of the posterior cell of that vertebra that holds the end's node and
    whose centre is nearest the point. Both
    ends start at the same point, so a contact force along the joint normal acts on one line: the pair's
    forces balance in moment as well as in force, whatever the mesh."""
    upper, lower = disc.split("-")
    P = segment.mesh.points
    arches = segment.posterior.arches
    ia, sa = arches[upper].iap[side], arches[lower].sap[side].ravel()
    z = segment.frames[upper][0][:, 2] + segment.frames[lower][0][:, 2]
    zs, zi = P[sa] @ z, P[ia] @ z
    keep = ia[(zi >= zs.min() - 1e-9) & (zi <= zs.max() + 1e-9)]
    if keep.size == 0:
        keep = ia
    d = np.linalg.norm(P[keep][:, None, :] - P[sa][None, :, :], axis=2)
    b = sa[np.argmin(d, axis=1)]
    xc = 0.5 * (P[keep] + P[b])
    na, wa = _embed(segment, upper, keep, xc)
    nb, wb = _embed(segment, lower, b, xc)
    return na, wa, nb, wb


def _embed(segment, level, nodes, x):
    """Points ``x (k, 3)`` as material points of ``level``'s arch: for each, the posterior cell of
    ``level`` holding ``nodes[i]`` whose centre is nearest ``x[i]``, and the trilinear shape-function
    values at ``x[i]`` (Newton on the map): ``(cell nodes (k, 8), weights (k, 8))``."""
    mesh = segment.mesh
    cells = mesh.cells
    own = np.flatnonzero(mesh.cells_in("level", level) & mesh.cells_in("region", "posterior"))
    flat = cells[own].ravel()
    order = np.argsort(flat, kind="stable")
    pos = np.searchsorted(flat[order], nodes)[:, None] + np.arange(8)      # the <= 8 cells holding each node
    pos = np.minimum(pos, flat.size - 1)
    cand = own[order[pos] // 8]                                            # (k, 8)
    centre = mesh.points[cells[cand]].mean(axis=2)                         # (k, 8, 3)
    dist = np.where(flat[order][pos] == nodes[:, None], np.linalg.norm(centre - x[:, None, :], axis=2), np.inf)
    host = cand[np.arange(nodes.size), np.argmin(dist, axis=1)]            # the one whose centre is nearest x
    X = mesh.points[cells[host]]                                       # (k, 8, 3)
    xi = np.zeros((nodes.size, 3))
    for _ in range(10):
        N = hex8_shape(xi)
        J = np.einsum("kai,kaj->kij", X, hex8_shape_gradients(xi))      # dx_i / dxi_j
        r = np.einsum("ka,kai->ki", N, X) - x
        xi = xi - np.linalg.solve(J, r[..., None])[..., 0]
    return cells[host], hex8_shape(xi)


def facet_pairs(segment):
    """``{(disc, side): (nodes_a, w_a, nodes_b, w_b)}``: :func:`joint_pairs` of every joint of ``segment``."""
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
    for gi, ((disc, side), (a, wa, b, w)) in enumerate(pairs.items()):
        k_joint = E * facet_dimensions(disc)["area"] / (2.0 * t)
        a_all.append(a)
        wa_all.append(wa)
        b_all.append(b)
        w_all.append(w)
        k_all.append(np.full(len(a), k_joint / len(a)))
        n_all.append(np.broadcast_to(facet_normal(segment, disc, side), (len(a), 3)))
        g_all.append(np.full(len(a), gi))
        names[gi] = f"{disc}:{side}"
    return spring_set(segment.mesh.points, np.concatenate(a_all), np.concatenate(b_all), np.concatenate(k_all),
                      "compression", weights_a=np.concatenate(wa_all), weights_b=np.concatenate(w_all),
                      direction=np.concatenate(n_all), gap=float(gap), name=FACET_SET, group=np.concatenate(g_all),
                      group_names=names)


def _nearest(P, a, b):
    """Pair every node of ``a`` with its nearest node of ``b`` (distinct points)."""
    d = np.linalg.norm(P[a][:, None, :] - P[b][None, :, :], axis=2)
    return a, b[np.argmin(d, axis=1)]


def ligament_springs(segment, pairs=None):
    """The tension-only :class:`~vertebrafe.springs.SpringSet` of the ligaments of ``segment``."""
    from ..springs import spring_set

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
        each pair (default: the ligament's stiffness shared equally by its pairs)."""
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
        add(f"{disc}:ALL", longit[up]["ALL"]["inferior"], longit[lo]["ALL"]["superior"])
        add(f"{disc}:PLL", longit[up]["PLL"]["inferior"], longit[lo]["PLL"]["superior"])
        add(f"{disc}:LF", *_nearest(P, ua.lamina_bottom, la.lamina_top))
        add(f"{disc}:ISL", *_nearest(P, ua.spinous_bottom[:-1], la.spinous_top[:-1]))
        add(f"{disc}:SSL", [ua.spinous_tip[1]], [la.spinous_tip[0]])
        add(f"{disc}:ITL", [ua.transverse_bottom["left"], ua.transverse_bottom["right"]],      # one per side
            [la.transverse_top["left"], la.transverse_top["right"]], k=np.full(2, LIGAMENTS["ITL"][0]))
        sides = ("left", "right")          # one capsule per joint over its contact pairs, along the joint normal
        n_side = [len(pairs[(disc, s)][0]) for s in sides]
        add(f"{disc}:CL", *(np.concatenate([pairs[(disc, s)][i] for s in sides]) for i in (0, 2, 1, 3)),
            np.concatenate([np.broadcast_to(facet_normal(segment, disc, s), (n, 3)) for s, n in zip(sides, n_side)]),
            k=np.concatenate([np.full(n, LIGAMENTS["CL"][0] / n) for n in n_side]))
    a, wa, b, w, k, g = (np.concatenate(x) for x in (A, WA, B, W, K, G))
    direction = np.concatenate(N)
    # the stiffening segments of each law: parallel springs on the same node pair, slack up to their onset
    part = np.array([names[i].split(":")[1] for i in g])
    share = k / np.array([LIGAMENTS[p][0] for p in part])                 # the pair's share of its ligament
    extra = [(i, dk, onset) for i, p in enumerate(part) for dk, onset in LIGAMENT_STIFFENING.get(p, ((), ""))[0]]
    i2 = np.array([e[0] for e in extra], dtype=np.int64)
    k2 = share[i2] * np.array([e[1] for e in extra])
    slack = np.array([e[2] for e in extra], dtype=float)
    return spring_set(P, np.concatenate([a, a[i2]]), np.concatenate([b, b[i2]]), np.concatenate([k, k2]), "tension",
                      weights_a=np.concatenate([wa, wa[i2]]), weights_b=np.concatenate([w, w[i2]]),
                      direction=np.concatenate([direction, direction[i2]]),
                      slack=np.concatenate([np.zeros(k.size), slack]), name=LIGAMENT_SET,
                      group=np.concatenate([g, g[i2]]), group_names=names)


def _check(segment):
    if getattr(segment, "posterior", None) is None:
        raise InputError("the segment has no posterior elements; build it with segment(..., posterior=True)")
