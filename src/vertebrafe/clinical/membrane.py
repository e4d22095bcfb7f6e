"""Membrane-shaped balloon cavity: an inflated balloon squeezed between two endplates.

A thin balloon membrane carries no bending: at an inflation pressure ``p`` the free membrane has a uniform
curvature ``p / T`` (Laplace's law), and where it leaves a contact surface it does so tangentially. Between
two parallel plates a gap ``g`` apart it therefore takes flat contact faces on both plates and free sides
that are, in a cross-section normal to the side, a semicircle of radius ``g / 2`` (the near-planar limit of a
squeezed membrane, the sides' curvature along the rim small against ``2 / g``). Such a body is the set of
points within ``g / 2`` of a planar footprint ``F`` in the mid-plane (the Minkowski sum of ``F`` and a ball
of radius ``g / 2``): its faces are ``F`` on both plates and its volume, for a convex footprint of area ``A``
and perimeter ``P``, is Steiner's ``2 r A + (pi / 2) P r^2 + (4 / 3) pi r^3`` with ``r = g / 2``.

Here the plates are the kyphoplasty's contact surfaces (the endplates less the compacted rim), measured
along the level's node columns: a sample at distances ``d_inf``, ``d_sup`` (mm) from the inferior and the
superior endplate, local body height ``h = d_inf + d_sup``, lies at the offset ``v = (d_inf - d_sup) / 2``
from the mid-surface and the local half-gap is ``r = h / 2 - pad``. The footprint of a balloon is a stadium
(a segment along the balloon's trajectory, dilated by a disk), scaled by ``s`` about the balloon's
horizontal centre: half-length ``s l`` and radius ``s w``. A sample is inside the cavity when its
horizontal distance ``d_F`` from the footprint satisfies ``d_F^2 + v^2 <= r^2``.

Inside-ness is monotone in ``s`` (the scaled stadiums are nested), so each sample has a threshold scale
:func:`threshold_scale`, in closed form: the cavity at scale ``s`` is the samples whose threshold is at
most ``s``, and the volume is solved by sorting the thresholds once.
"""
from __future__ import annotations

import numpy as np

__all__ = ["threshold_scale", "stadium_distance", "minkowski_volume"]


def stadium_distance(across, along, half_length, radius):
    """Horizontal distance (mm, 0 inside) of points at offsets ``across``, ``along`` (arrays, mm; along the
    stadium's segment and across it) from the stadium of segment half-length ``half_length`` and radius
    ``radius`` (mm), centred at the origin."""
    t = np.clip(along, -half_length, half_length)
    return np.maximum(np.hypot(across, along - t) - radius, 0.0)


def threshold_scale(across, along, v, r, half_length, radius):
    """Smallest scale ``s >= 0`` (arrays of the inputs' shape) at which points at the horizontal offsets
    ``across``, ``along`` (mm) from a stadium's centre, the vertical offset ``v`` from the mid-surface and
    the local half-gap ``r`` (mm) lie in the Minkowski sum of the stadium ``s * (half_length, radius)`` and
    a ball of radius ``r``; ``inf`` where ``|v| > r`` (outside the gap). ``radius`` must be > 0.

    With ``a = |across|``, ``b = |along|``, ``q = sqrt(r^2 - v^2)`` (the reach of the ball at that height),
    ``l = half_length``, ``w = radius``: inside at scale ``s`` when the distance from the segment ``s l``
    is at most ``s w + q``. Beyond the segment's end (``b > s l``) that is ``(b - s l)^2 + a^2 <=
    (s w + q)^2``, a quadratic ``A s^2 + B s + C <= 0`` with ``A = l^2 - w^2``, ``B = -2 (b l + w q)``,
    ``C = a^2 + b^2 - q^2``, whose crossing is ``2 C / (-B + sqrt(B^2 - 4 A C))`` whatever the sign of ``A``;
    beside the segment (``b <= s l``) it is ``a <= s w + q``, ``s = (a - q) / w``, which holds where that
    exceeds ``b / l``."""
    a, b = np.abs(across), np.abs(along)
    v, r = np.asarray(v, dtype=float), np.asarray(r, dtype=float)
    l, w = float(half_length), float(radius)
    inside_gap = np.abs(v) <= r
    q = np.sqrt(np.where(inside_gap, r * r - v * v, 0.0))
    A, B, C = l * l - w * w, -2.0 * (b * l + w * q), a * a + b * b - q * q
    disc = np.sqrt(np.maximum(B * B - 4.0 * A * C, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        end = np.where(C > 0.0, 2.0 * C / (-B + disc), 0.0)
        side = (a - q) / w
        beside = (side > b / l) if l > 0.0 else np.zeros(side.shape, dtype=bool)
    s = np.where(beside, side, end)
    return np.where(inside_gap, np.maximum(s, 0.0), np.inf)


def minkowski_volume(half_length, radius, r):
    """Volume (mm^3) of the Minkowski sum of the planar stadium ``(half_length, radius)`` (mm) and a ball
    of radius ``r`` (mm): Steiner's ``2 r A + (pi / 2) P r^2 + (4 / 3) pi r^3`` with the stadium's area
    ``A = 4 l w + pi w^2`` and perimeter ``P = 4 l + 2 pi w``."""
    l, w, r = float(half_length), float(radius), float(r)
    area, perimeter = 4.0 * l * w + np.pi * w * w, 4.0 * l + 2.0 * np.pi * w
    return 2.0 * r * area + 0.5 * np.pi * perimeter * r * r + 4.0 / 3.0 * np.pi * r ** 3
