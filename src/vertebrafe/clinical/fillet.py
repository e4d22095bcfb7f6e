"""Rounded edges of a clipped balloon cavity: the cavity ``ellipsoids & slab`` with the edges where an
ellipsoid meets a clip surface rounded to a radius ``rho`` (mm).

Both parts are given by signed distances in mm (negative inside): the ellipsoid's by the first-order
estimate ``k0 (k0 - 1) / k1`` (``k0 = |d / a|``, ``k1 = |d / a^2|``, ``d`` the offset in the ellipsoid's
axes; exact on the surface, with unit gradient there), the slab's by the distance to the nearer clip
surface. The rounded intersection

    g = min(-rho, max(d_e, d_s)) + sqrt(max(rho + d_e, 0)^2 + max(rho + d_s, 0)^2)

(the circular-fillet intersection of constructive solid geometry) equals ``max(d_e, d_s)`` wherever one of
the two lies deeper than ``rho`` inside the other, and in the edge's band replaces the corner by an arc
of radius ``rho`` (exact for two planes) tangent to both surfaces: its zero set has a continuous normal,
so the cavity has no edge. A clip surface keeps a flat face where the ellipsoid's distance is at most
``-rho`` (:func:`flat_face`); ``rho = 0`` gives ``max(d_e, d_s)``, the sharp intersection.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ellipsoid_distance", "rounded_intersection", "flat_face"]


def ellipsoid_distance(offsets, axes):
    """Signed distance estimate (mm, negative inside) of points with offsets ``(d0, d1, d2)`` (arrays of one
    shape, mm, in the ellipsoid's axes) from the ellipsoid of semi-axes ``axes (3,)`` (module docstring);
    ``-min(axes)`` at the centre."""
    a = np.asarray(axes, dtype=float)
    k0 = np.sqrt(sum((d / ai) ** 2 for d, ai in zip(offsets, a)))
    k1 = np.sqrt(sum((d / ai ** 2) ** 2 for d, ai in zip(offsets, a)))
    with np.errstate(invalid="ignore", divide="ignore"):
        g = k0 * (k0 - 1.0) / k1
    return np.where(k1 > 0.0, g, -a.min())


def rounded_intersection(d_e, d_s, radius):
    """Signed distance-like function (mm, ``<= 0`` inside) of the intersection of two regions with signed
    distances ``d_e`` and ``d_s`` whose edge is rounded to ``radius`` mm (module docstring)."""
    r = float(radius)
    if r == 0.0:
        return np.maximum(d_e, d_s)
    u = np.hypot(np.maximum(r + d_e, 0.0), np.maximum(r + d_s, 0.0))
    return np.minimum(-r, np.maximum(d_e, d_s)) + u


def flat_face(d_e, radius):
    """Points of a clip surface (their ellipsoid distances ``d_e``) that lie on the rounded cavity's flat
    face: ``d_e <= -radius``."""
    return d_e <= -float(radius)
