"""Facet joints (compression-only) and spinal ligaments (tension-only) of a segment with posterior
elements, as :class:`~vertebrafe.springs.SpringSet` between the arches of
:mod:`vertebrafe.anatomy.posterior`.

**Facet joints** (set :data:`FACET_SET`, one group per joint and side, ``"L4-L5:right"``): each node of
the joint face of the upper vertebra's inferior articular process that lies within the height of the
lower vertebra's superior articular process is joined to the nearest node of that process's joint face.
The springs act along the joint normal ``n`` of the published orientation (:data:`FACET_TABLE`: angle
``beta`` to the midsagittal plane, inclination ``gamma`` to the transverse plane), pointing from the
inferior process (posteromedial) into the superior one (anterolateral) and downward for an inclined joint:
``n = (+-cos beta sin gamma, sin beta sin gamma, -cos gamma)`` in the vertebrae's mean frame. They carry
compression only: the joint closes when the inferior process moves into the superior one along ``n``.
Each joint has the stiffness of its two cartilage layers in series, ``E A / (2 t)`` (cartilage modulus
``E``, facet area ``A``, layer thickness ``t``; :data:`FACET_CARTILAGE`), shared equally by its springs,
and no clearance (``gap = 0``: cartilage in contact, unloaded, in the reference position).

**Ligaments** (set :data:`LIGAMENT_SET`, one group per ligament and level, ``"L4-L5:LF"``): tension-only
springs, taut at zero strain, each ligament's linear stiffness (:data:`LIGAMENTS`) shared equally by its
node pairs: ALL and PLL between the bodies' outline nodes near the anterior / posterior midline (same
outline position on the inferior endplate rim of the upper and the superior rim of the lower vertebra),
ligamentum flavum (LF) between the front edges of the laminae, interspinous (ISL) between the spinous
processes, supraspinous (SSL) between their tips, intertransverse (ITL) between the transverse process
tips (both sides in one group) and capsular (CL) over the facet-spring node pairs of both joints, acting
along the joint normal (the capsule resists the joint's opening). The other ligaments act along the line
between their ends.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .posterior_levels import FACET_CARTILAGE, LIGAMENTS, facet_dimensions

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


def _axis(segment, disc):
    upper, lower = disc.split("-")
    z = segment.frames[upper][0][:, 2] + segment.frames[lower][0][:, 2]
    return z / np.linalg.norm(z)


def joint_pairs(segment, disc, side):
    """Node pairs ``(a (k,), b (k,))`` of one facet joint: inferior-process nodes (upper vertebra) and the
    nearest superior-process nodes (lower vertebra), restricted to the height the two processes share."""
    upper, lower = disc.split("-")
    P = segment.mesh.points
    arches = segment.posterior.arches
    ia, sa = arches[upper].iap[side], arches[lower].sap[side]
    z = _axis(segment, disc)
    zs = P[sa] @ z
    zi = P[ia] @ z
    keep = ia[(zi >= zs.min() - 1e-9) & (zi <= zs.max() + 1e-9)]
    if keep.size == 0:
        keep = ia
    d = np.linalg.norm(P[keep][:, None, :] - P[sa][None, :, :], axis=2)
    return keep, sa[np.argmin(d, axis=1)]


def facet_pairs(segment):
    """``{(disc, side): (a, b)}``: :func:`joint_pairs` of every facet joint of ``segment``."""
    return {(d, s): joint_pairs(segment, d, s) for d in segment.discs for s in ("left", "right")}


def facet_springs(segment, pairs=None):
    """The compression-only :class:`~vertebrafe.springs.SpringSet` of every facet joint of ``segment``."""
    from ..springs import spring_set

    _check(segment)
    pairs = pairs or facet_pairs(segment)
    E, t = FACET_CARTILAGE["modulus"][0], FACET_CARTILAGE["thickness"][0]
    a_all, b_all, k_all, n_all, g_all, names = [], [], [], [], [], {}
    for gi, ((disc, side), (a, b)) in enumerate(pairs.items()):
        k_joint = E * facet_dimensions(disc)["area"] / (2.0 * t)
        a_all.append(a)
        b_all.append(b)
        k_all.append(np.full(a.size, k_joint / a.size))
        n_all.append(np.broadcast_to(facet_normal(segment, disc, side), (a.size, 3)))
        g_all.append(np.full(a.size, gi))
        names[gi] = f"{disc}:{side}"
    return spring_set(segment.mesh.points, np.concatenate(a_all), np.concatenate(b_all), np.concatenate(k_all),
                      "compression", direction=np.concatenate(n_all), name=FACET_SET, group=np.concatenate(g_all),
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
    A, B, K, G, N, names = [], [], [], [], [], {}

    def add(name, a, b):
        a, b = np.asarray(a, np.int64).ravel(), np.asarray(b, np.int64).ravel()
        gi = len(names)
        names[gi] = name
        A.append(a)
        B.append(b)
        K.append(np.full(a.size, LIGAMENTS[name.split(":")[1]][0] / a.size))
        G.append(np.full(a.size, gi))

    for disc in segment.discs:
        up, lo = disc.split("-")
        ua, la = arches[up], arches[lo]
        add(f"{disc}:ALL", longit[up]["ALL"]["inferior"], longit[lo]["ALL"]["superior"])
        add(f"{disc}:PLL", longit[up]["PLL"]["inferior"], longit[lo]["PLL"]["superior"])
        add(f"{disc}:LF", *_nearest(P, ua.lamina_bottom, la.lamina_top))
        add(f"{disc}:ISL", *_nearest(P, ua.spinous_bottom[:-1], la.spinous_top[:-1]))
        add(f"{disc}:SSL", [ua.spinous_tip[1]], [la.spinous_tip[0]])
        add(f"{disc}:ITL", [ua.transverse_bottom["left"], ua.transverse_bottom["right"]],
            [la.transverse_top["left"], la.transverse_top["right"]])
        ca = np.concatenate([pairs[(disc, s)][0] for s in ("left", "right")])
        cb = np.concatenate([pairs[(disc, s)][1] for s in ("left", "right")])
        add(f"{disc}:CL", ca, cb)
        N.append(np.concatenate([np.broadcast_to(facet_normal(segment, disc, s), (pairs[(disc, s)][0].size, 3))
                                 for s in ("left", "right")]))
    a, b = np.concatenate(A), np.concatenate(B)
    direction = (P[b] - P[a]) / np.linalg.norm(P[b] - P[a], axis=1, keepdims=True).clip(1e-300)
    cl = np.isin(np.concatenate(G), [g for g, n in names.items() if n.endswith(":CL")])
    direction[cl] = np.concatenate(N)
    return spring_set(P, a, b, np.concatenate(K), "tension", direction=direction, name=LIGAMENT_SET,
                      group=np.concatenate(G), group_names=names)


def _check(segment):
    if getattr(segment, "posterior", None) is None:
        raise InputError("the segment has no posterior elements; build it with segment(..., posterior=True)")
