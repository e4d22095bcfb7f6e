"""In-plane mesh grading toward given curves of the cross-section (local refinement without new cells).

A uniform mesh resolves a stress concentration along a line (the edge of a stiff column pressing on an
endplate, a rigid-punch-like singularity) only at first order in the element size. The standard remedy
is a mesh graded toward the line. :class:`GradedCurve` describes one such line of the cross-section, an
ellipse in the vertebrae's local frame (mm; the same ``x, y`` in every vertebra of a segment, whose
in-plane grid is shared), and :func:`grade_points` moves the in-plane nodes along the rays from its
centre by a 1-D grading map of the normalised elliptic radius ``s`` (``s = 1`` on the curve):

* the node density along a ray (computational per physical length) is
  ``psi(s) = 1 + A b((s - 1) / w) - gamma (1 - b((s - 1) / w)) T(s)`` with the bump
  ``b(x) = cos^2(pi x / 2)`` on ``|x| < 1`` (0 outside), ``w = width / g`` (``g = sqrt(a b)``, the
  geometric mean of the semi-axes) and ``T`` 1 up to ``s_out - ramp`` and a ``cos^2`` ramp to 0 at
  ``s_out = 1 + reach / g``;
* ``A = 1 / factor - 1``, so the cells next to the curve are ``factor`` times their ungraded size across
  it (``1 / psi(1)``); ``gamma`` takes the same number of nodes from the rest of the zone
  ``s < s_out`` (the cells there, under the face and toward ``s_out``, grow by ``1 / (1 - gamma)`` at
  most) so that the map is the identity from ``s_out`` on.

Because the map is a fixed function of position, a mesh refined uniformly in its parametric coordinates
(element size halved) is mapped to a mesh whose every cell is halved too: convergence studies compare
the same grading. The map is monotone along each ray with positive radial and tangential stretch, so
it is one-to-one and keeps the orientation of every cell. The maps of several curves are applied one
after the other: a zone may overlap another curve's zone but not its refined band (``s < 1 + width /
g``); no zone may reach the cortical rings (both checked).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, MeshError

__all__ = ["GradedCurve", "grade_points", "grading_curves", "corner_quality", "MAX_COARSENING"]

#: Largest growth of the cells the grading takes nodes from (``1 / (1 - gamma)``).
MAX_COARSENING = 4.0
_TABLE = 4097


@dataclass(frozen=True)
class GradedCurve:
    """An ellipse of the cross-section toward which the in-plane grid is graded.

    Parameters
    ----------
    centre : (x, y)
        Centre (mm) in the local frame of every vertebra of the segment.
    axes : (a, b)
        Semi-axes (mm, > 0) along the ellipse's own x and y.
    angle : float
        Rotation (deg) of the ellipse's x axis from the local +x axis, anticlockwise seen from +z.
    factor : float in [0.2, 1]
        Cell size across the curve over the ungraded size there (1: no grading).
    width : float
        Half-width (mm) of the refined band about the curve (the bump of the node density, measured along
        the rays in units of ``g = sqrt(a b)``; ``0 < width <= 0.8 g``).
    reach : float
        Distance (mm) from the curve beyond which no node moves (``width < reach <= 10 g``).
    """

    centre: tuple
    axes: tuple
    angle: float = 0.0
    factor: float = 0.4
    width: float = 2.0
    reach: float = 4.0

    def __post_init__(self):
        c = _floats("GradedCurve.centre", self.centre, 2)
        a = _floats("GradedCurve.axes", self.axes, 2)
        if not np.all(a > 0.0):
            raise InputError(f"GradedCurve.axes = {self.axes!r}; both semi-axes must be > 0 mm")
        object.__setattr__(self, "centre", tuple(float(v) for v in c))
        object.__setattr__(self, "axes", tuple(float(v) for v in a))
        g = math.sqrt(a[0] * a[1])
        for name, lo, hi in (("angle", -360.0, 360.0), ("factor", 0.2, 1.0), ("width", 0.0, 0.8 * g),
                             ("reach", float(self.width), 10.0 * g)):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                v = math.nan
            ok = lo <= v <= hi if name in ("angle", "factor") else lo < v <= hi
            if not ok:
                raise InputError(f"GradedCurve.{name} = {getattr(self, name)!r}; allowed "
                                 f"{'[' if name in ('angle', 'factor') else '('}{lo:.3g}, {hi:.3g}]"
                                 + (" mm (for these semi-axes)" if name in ("width", "reach") else ""))
            object.__setattr__(self, name, v)
        self._table()                                       # checks that the zone can give the nodes

    @property
    def mean_axis(self):
        """``g = sqrt(a b)`` (mm), the length unit of ``s``."""
        return math.sqrt(self.axes[0] * self.axes[1])

    @property
    def s_out(self):
        return 1.0 + self.reach / self.mean_axis

    def density(self, s):
        """Node density ``psi(s)`` (module docstring) along the rays; the cells are ``1 / psi`` times their
        ungraded size across the curve."""
        return self._density(np.asarray(s, dtype=float), self._gamma())

    def _density(self, s, gamma):
        w = self.width / self.mean_axis
        A = 1.0 / self.factor - 1.0
        b = _bump((s - 1.0) / w)
        return 1.0 + A * b - gamma * (1.0 - b) * self._taper(s)

    def _taper(self, s):
        w = self.width / self.mean_axis
        so = self.s_out
        ramp = 0.5 * (so - 1.0 - w)
        x = np.clip((s - (so - ramp)) / ramp, 0.0, 1.0)
        return np.where(s < so, np.cos(0.5 * np.pi * x) ** 2, 0.0)

    def _gamma(self):
        s = np.linspace(0.0, self.s_out, _TABLE)
        w = self.width / self.mean_axis
        b = _bump((s - 1.0) / w)
        extra = np.trapezoid((1.0 / self.factor - 1.0) * b, s)
        room = np.trapezoid((1.0 - b) * self._taper(s), s)
        return extra / room

    def _table(self):
        """``(s, r)``: physical and computational normalised radii, ``r(s) = int_0^s psi``."""
        gamma = self._gamma()
        if not gamma <= 1.0 - 1.0 / MAX_COARSENING:
            raise InputError(f"GradedCurve: factor {self.factor:g} over a band of {self.width:g} mm needs cells "
                             f"{1.0 / max(1.0 - gamma, 1e-9):.3g} times their size elsewhere within reach "
                             f"{self.reach:g} mm (allowed <= {MAX_COARSENING:g}); give a larger factor or reach, "
                             "or a smaller width")
        s = np.linspace(0.0, self.s_out, _TABLE)
        psi = self._density(s, gamma)
        r = np.concatenate([[0.0], np.cumsum(0.5 * (psi[1:] + psi[:-1]) * np.diff(s))])
        r *= self.s_out / r[-1]                              # exact identity at s_out (quadrature round-off)
        return s, r

    def local_frame(self, xy):
        """Normalised coordinates ``(..., 2)`` of points ``xy`` (the ellipse is the unit circle)."""
        t = math.radians(self.angle)
        R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        return ((np.asarray(xy, dtype=float) - self.centre) @ R) / self.axes

    def apply(self, xy):
        """Graded positions ``(..., 2)`` of the ungraded in-plane points ``xy`` (mm); points from ``s_out`` on
        are returned unchanged (bit for bit)."""
        xy = np.asarray(xy, dtype=float)
        u = self.local_frame(xy)
        rho = np.hypot(u[..., 0], u[..., 1])
        inside = rho < self.s_out
        s_tab, r_tab = self._table()
        ri = rho[inside]
        ratio = np.where(ri > 1e-12, np.interp(ri, r_tab, s_tab) / np.maximum(ri, 1e-12), s_tab[1] / r_tab[1])
        t = math.radians(self.angle)
        R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        out = xy.copy()
        out[inside] = np.asarray(self.centre) + ((u[inside] * ratio[:, None]) * self.axes) @ R.T
        return out

    def moves(self, xy):
        """Bool mask of the points ``xy`` within the zone the map changes (``s < s_out``)."""
        u = self.local_frame(xy)
        return np.hypot(u[..., 0], u[..., 1]) < self.s_out

    def boundary(self, s, n=256):
        """Points ``(n, 2)`` (mm) on the ellipse of normalised radius ``s`` (``s_out``: the zone's limit)."""
        th = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        t = math.radians(self.angle)
        R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        u = s * np.stack([np.cos(th), np.sin(th)], axis=1) * self.axes
        return np.asarray(self.centre) + u @ R.T

    @property
    def s_band(self):
        """Outer limit of the refined band (normalised radius)."""
        return 1.0 + self.width / self.mean_axis


def _bump(x):
    return np.where(np.abs(x) < 1.0, np.cos(0.5 * np.pi * np.clip(x, -1.0, 1.0)) ** 2, 0.0)


def _floats(name, value, n):
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r}; expected {n} numbers (mm)") from None
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise InputError(f"{name} = {value!r}; expected {n} finite numbers (mm)")
    return a


def grading_curves(grading):
    """The grading argument of :func:`~vertebrafe.anatomy.segment.segment` as a tuple of
    :class:`GradedCurve` (None or empty: no grading). The zones of different curves may overlap (each
    map is one-to-one on the whole plane, so their composition is too), but no zone may reach the
    refined band of another curve, whose grading it would change."""
    if grading is None:
        return ()
    if isinstance(grading, GradedCurve):
        grading = (grading,)
    try:
        curves = tuple(c if isinstance(c, GradedCurve) else GradedCurve(**c) for c in grading)
    except TypeError:
        raise InputError(f"grading = {grading!r}; expected None, a GradedCurve or a sequence of GradedCurve "
                         "(or of dicts of its fields)") from None
    for i, c in enumerate(curves):
        for j, d in enumerate(curves):
            if i == j:
                continue
            band = np.vstack([c.boundary(c.s_band), np.asarray(c.centre)[None]])
            inner = np.hypot(*c.local_frame(np.asarray(d.centre))) < c.s_band
            if np.any(d.moves(band)) or inner:
                raise InputError(f"grading: the zone of curve {j} (centre {d.centre} mm, reach {d.reach:g} mm) reaches "
                                 f"the refined band of curve {i} (centre {c.centre} mm, width {c.width:g} mm); give "
                                 "smaller reaches or widths")
    return curves


def corner_quality(xy, quads):
    """Smallest corner sine ``(q,)`` of the quads ``(q, 4)`` (anticlockwise) on the points ``xy (n, 2)``:
    the 2-D scaled Jacobian, 1 for a rectangle, <= 0 for a non-convex or inverted quad."""
    p = np.asarray(xy, dtype=float)[quads]
    e_out = np.roll(p, -1, axis=1) - p
    e_in = p - np.roll(p, 1, axis=1)
    cross = e_in[..., 0] * e_out[..., 1] - e_in[..., 1] * e_out[..., 0]
    return (cross / (np.linalg.norm(e_in, axis=2) * np.linalg.norm(e_out, axis=2))).min(axis=1)


def grade_points(xy, curves, fixed=None, what="cross-section", quads=None):
    """In-plane points ``xy (n, 2)`` (mm) moved by the grading map of every curve in ``curves``.

    ``fixed`` (optional bool mask) marks points that must not move (the outline, the inner cortical
    curve): a curve whose zone reaches one raises InputError naming it. With ``quads`` ``(q, 4)``, a graded
    quad that is not strictly convex (:func:`corner_quality` <= 0; the map varies too much across cells
    this coarse) raises MeshError.
    """
    out = np.array(xy, dtype=float)
    for i, c in enumerate(curves):
        if fixed is not None and np.any(c.moves(out) & fixed):
            raise InputError(f"grading curve {i} (centre {c.centre} mm, reach {c.reach:g} mm) reaches the cortex of "
                             f"the {what}; give a smaller reach or move the curve inward")
        out = c.apply(out)
    if quads is not None and curves:
        q = corner_quality(out, quads)
        if np.any(q <= 0.0):
            raise MeshError(f"grading: {int(np.sum(q <= 0.0))} cells of the {what} are no longer convex (smallest "
                            f"corner sine {q.min():.3g}; allowed > 0): the cells are too coarse for the band; use a "
                            "smaller element size or a larger factor or width")
    return out
