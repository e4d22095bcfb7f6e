"""Vertebral body geometry and its hex8 O-grid mesh.

Geometry (local frame of one vertebra, mm; +x right, +y anterior, +z superior; origin at the centre of
the inferior rim plane, i.e. mid-width and mid-depth of the inferior endplate):

* **Outline** of an endplate (:class:`Outline`): a star-shaped "kidney" in polar form about the origin,
  ``r(theta) = r_se(theta) * (1 - kappa * max(0, -sin theta)**q)``, where ``r_se`` is a superellipse of
  exponent ``p`` with semi-axes ``W/2`` (x), ``D/2`` anterior and ``D/2 + e`` posterior, and the second
  factor indents the posterior wall by ``e`` at the midline (``kappa = e / (D/2 + e)``), so that the
  midsagittal depth is exactly ``D`` and the posterior wall is concave toward the canal.
* **Endplates**: the inferior surface is ``z = c_inf * phi(rho)`` and the superior one
  ``z = Hrim + tan(wedge) * y - c_sup * phi(rho)``, with ``rho = |p| / r(theta(p))`` the star coordinate
  (0 at the centre, 1 on the outline) of the point in its endplate's outline and the concavity profile
  ``phi(rho) = (1 + cos(pi rho / rho0)) / 2`` for ``rho < rho0`` (``rho0 = 0.7``, the central 70 % of
  the endplate; Wang, Battie & Videman 2012), 0 outside. ``Hrim = (Ha + Hp) / 2``; the rim plane passes
  through ``Ha`` and ``Hp`` at ``y = +-D/2`` with ``D`` the mean endplate depth.
* The body is the loft between the inferior and the superior outline: points with the same outline
  parameter ``alpha`` are joined by straight lines.

Mesh (cross-section, the same topology for every vertebra and disc of a segment, so interfaces match
node for node): an O-grid with a structured central block mapped into the nucleus curve,
``n_transition`` rings blending the block's square boundary into that curve, ``n_annulus`` rings out to
the inner cortical curve (the outline offset inward by the cortical thickness) and ``n_cortex`` rings
across the cortical shell. Rings from the nucleus curve outward have ``4 m`` cells (spacing about the
element size along the outline); inside the nucleus curve the angular resolution is coarsened 3:1 (block
``m/3 x m/3``, inner rings ``4 m / 3`` cells) through one conforming transition ring of four quads per
coarse cell, so that the central cells are also about the element size (``GridCounts.coarsening``; 1
gives the uniform O-grid). Axially, one bony endplate layer of its own thickness (measured along z) at the
top and the bottom and ``n_core`` cancellous layers between. Regions: ``cortex`` (outermost rings, all
heights), ``endplate`` (end layers inside the cortex), ``cancellous``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InputError, MeshError
from .grading import grade_points
from .levels import VertebraDimensions, adjacent_discs, level_dimensions, vertebra_names
from .resolution import cell_count

__all__ = [
    "DEFAULT_ELEMENT_SIZE", "DEFAULT_CORTEX_THICKNESS", "DEFAULT_ENDPLATE_THICKNESS", "CONCAVITY_EXTENT",
    "Outline", "GridCounts", "grid_counts", "cross_section_topology", "cross_section_points",
    "concavity_profile", "VertebraGeometry", "vertebra_layers", "vertebra", "make_mesh", "extrude",
    "REGION_CODES",
]

#: Default element size (mm); 2 mm is the validated optimum for CT-based vertebral FE (Imai 2015). The
#: mesh-convergence study decides the final default.
DEFAULT_ELEMENT_SIZE = 2.0
#: Cortical shell thickness (mm): typical FE input 0.4 mm (IJSS table in reference/literature.md 2.4);
#: directly measured L1 shell ~0.35 mm (Silva et al. 1994).
DEFAULT_CORTEX_THICKNESS = 0.4
#: Bony endplate thickness (mm): shell and endplate average ~0.35 mm at L1, age > 45 (Silva et al. 1994).
DEFAULT_ENDPLATE_THICKNESS = 0.35
#: Concave part of the endplate as a fraction of its star radius (Wang, Battie & Videman 2012: ~70 %).
CONCAVITY_EXTENT = 0.7
#: Outline shape: superellipse exponent and posterior indentation (fraction of the depth) [assumption,
#: chosen so that the L4 inferior endplate has ~1520 mm^2 (reported ~1490) and ~142 mm circumference
#: (reported ~141), with a posterior wall ~1.3 mm concave toward the canal].
SUPERELLIPSE_EXPONENT = 2.3
POSTERIOR_INDENT = 0.10
INDENT_SHARPNESS = 10.0

#: Region tag values used by the anatomy meshers (names are the public interface).
REGION_CODES = {"cortex": 1, "endplate": 2, "cancellous": 3, "annulus": 4, "nucleus": 5, "posterior": 6}

# cross-section zones
ZONE_BLOCK, ZONE_TRANSITION, ZONE_ANNULUS, ZONE_CORTEX = 0, 1, 2, 3


# --------------------------------------------------------------------------------------------- outline
class Outline:
    """Kidney-shaped endplate outline (see the module docstring), star-shaped about the origin.

    Parameters
    ----------
    width, depth : float
        Mediolateral width ``W`` and midsagittal anteroposterior depth ``D`` (mm).
    exponent : float
        Superellipse exponent ``p`` (2 = ellipse; larger = boxier).
    indent : float
        Posterior indentation ``e`` at the midline as a fraction of ``D``.
    sharpness : float
        Exponent ``q`` of the indentation's angular profile (larger = narrower indentation).

    The boundary parameter ``alpha`` in ``[0, 2 pi)`` runs anticlockwise (seen from +z) from the right
    lateral point (``alpha = 0``) through the anterior midline (``pi/2``), the left lateral point (``pi``)
    and the posterior midline (``3 pi/2``); within each quadrant it is proportional to arc length, so
    that outlines of any size correspond point by point and the mesh is mirror-symmetric about x = 0.
    """

    _N_FINE = 2048  # samples per quadrant of the arc-length tables

    def __init__(self, width, depth, exponent=SUPERELLIPSE_EXPONENT, indent=POSTERIOR_INDENT,
                 sharpness=INDENT_SHARPNESS):
        self.width, self.depth = float(width), float(depth)
        self.exponent, self.indent, self.sharpness = float(exponent), float(indent), float(sharpness)
        if not (self.width > 0 and self.depth > 0):
            raise InputError(f"outline width = {width}, depth = {depth}; both must be > 0 mm")
        e = self.indent * self.depth
        self._a, self._b_ant, self._b_post = 0.5 * self.width, 0.5 * self.depth, 0.5 * self.depth + e
        self._kappa = e / self._b_post
        # arc-length tables per quadrant in theta
        n = self._N_FINE
        q = np.arange(4)[:, None]
        th = (q + np.linspace(0.0, 1.0, n + 1)[None, :]) * (0.5 * np.pi)     # (4, n+1)
        xy = self.points_at_theta(th.ravel()).reshape(4, n + 1, 2)
        seg = np.linalg.norm(np.diff(xy, axis=1), axis=2)
        s = np.concatenate([np.zeros((4, 1)), np.cumsum(seg, axis=1)], axis=1)
        self._theta_table = th
        self._s_table = s / s[:, -1:]
        self.quadrant_lengths = s[:, -1].copy()

    # polar description ------------------------------------------------------------------------------
    def radius(self, theta):
        """Polar radius ``r(theta)`` (mm) of the outline; ``theta`` any shape (rad)."""
        theta = np.asarray(theta, dtype=float)
        c, s = np.cos(theta), np.sin(theta)
        b = np.where(s >= 0.0, self._b_ant, self._b_post)
        p = self.exponent
        r_se = (np.abs(c / self._a) ** p + np.abs(s / b) ** p) ** (-1.0 / p)
        return r_se * (1.0 - self._kappa * np.maximum(0.0, -s) ** self.sharpness)

    def points_at_theta(self, theta):
        """Outline points ``(..., 2)`` at polar angles ``theta``."""
        theta = np.asarray(theta, dtype=float)
        r = self.radius(theta)
        return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)

    def theta(self, alpha):
        """Polar angle of the outline point with boundary parameter ``alpha`` (same shape)."""
        alpha = np.mod(np.asarray(alpha, dtype=float), 2.0 * np.pi)
        u = alpha / (0.5 * np.pi)
        q = np.minimum(np.floor(u).astype(int), 3)
        f = u - q
        out = np.empty_like(alpha)
        for k in range(4):                                   # four quadrants, vectorised within each
            sel = q == k
            if np.any(sel):
                out[sel] = np.interp(f[sel], self._s_table[k], self._theta_table[k])
        return out

    def points(self, alpha):
        """Outline points ``(..., 2)`` (mm) at boundary parameters ``alpha``."""
        return self.points_at_theta(self.theta(alpha))

    def normals(self, alpha, eps=1e-5):
        """Outward unit normals ``(..., 2)`` at ``alpha`` (central differences along the outline)."""
        alpha = np.asarray(alpha, dtype=float)
        t = self.points(alpha + eps) - self.points(alpha - eps)
        n = np.stack([t[..., 1], -t[..., 0]], axis=-1)
        return n / np.linalg.norm(n, axis=-1, keepdims=True)

    def offset(self, alpha, distance):
        """Points of the inward offset curve at ``distance`` (mm) from the outline, ``(..., 2)``."""
        return self.points(alpha) - distance * self.normals(alpha)

    def rho(self, xy):
        """Star coordinate ``|p| / r(theta(p))`` of points ``xy (..., 2)``: 0 at the centre, 1 on the outline."""
        xy = np.asarray(xy, dtype=float)
        r = np.hypot(xy[..., 0], xy[..., 1])
        return r / self.radius(np.arctan2(xy[..., 1], xy[..., 0]))

    # integral properties ----------------------------------------------------------------------------
    def area(self, n=20000):
        """Enclosed area (mm^2) by quadrature of ``r(theta)^2 / 2``."""
        th = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        return float(0.5 * np.mean(self.radius(th) ** 2) * 2.0 * np.pi)

    @property
    def perimeter(self):
        """Circumference (mm)."""
        return float(self.quadrant_lengths.sum())

    def __repr__(self):
        return f"Outline(width={self.width:g}, depth={self.depth:g})"


def concavity_profile(rho, extent=CONCAVITY_EXTENT):
    """Normalised endplate dip ``phi(rho)``: ``(1 + cos(pi rho / extent)) / 2`` for ``rho < extent``, else 0.

    1 at the centre, 0 with zero slope at ``rho = extent``; multiply by the concavity depth (mm).
    """
    rho = np.asarray(rho, dtype=float)
    return np.where(rho < extent, 0.5 * (1.0 + np.cos(np.pi * np.minimum(rho, extent) / extent)), 0.0)


def polygon_area(xy):
    """Shoelace area of a closed polygon ``(k, 2)`` (positive when anticlockwise)."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


# --------------------------------------------------------------------------------------- O-grid topology
@dataclass(frozen=True)
class GridCounts:
    """Cell counts of the O-grid cross-section (shared by every piece of a segment).

    ``m`` (even) cells per side of a full-resolution central block, hence ``4 m`` cells around every
    ring from the nucleus curve outward; ``n_transition`` rings from the block to the nucleus curve,
    ``n_annulus`` rings from there to the inner cortical curve, ``n_cortex`` rings across the cortical
    shell; ``block`` is the half-width of the central square relative to the nucleus curve
    (reference-disk units).

    ``coarsening`` (1 or 3) reduces the angular resolution inside the nucleus curve: with 3, the central
    block has ``m / 3`` cells per side and the inner transition rings ``4 m / 3`` cells around; the last
    transition ring (ending on the nucleus curve) is a 3:1 transition ring in which every coarse cell
    joins three fine cells through four quadrilaterals (two interior nodes per coarse cell; no
    triangles, wedges or hanging nodes). ``m / 3`` must then be even.
    """

    m: int
    n_transition: int
    n_annulus: int
    n_cortex: int = 1
    block: float = 0.55
    coarsening: int = 1

    def __post_init__(self):
        if self.m < 2 or self.m % 2:
            raise InputError(f"GridCounts.m = {self.m}; must be even and >= 2")
        for name in ("n_transition", "n_annulus", "n_cortex"):
            if getattr(self, name) < 1:
                raise InputError(f"GridCounts.{name} = {getattr(self, name)}; must be >= 1")
        if not (0.2 <= self.block <= 0.65):
            raise InputError(f"GridCounts.block = {self.block}; allowed [0.2, 0.65]")
        if self.coarsening not in (1, 3):
            raise InputError(f"GridCounts.coarsening = {self.coarsening}; allowed 1 (none) or 3")
        if self.coarsening == 3 and self.m % 6:
            raise InputError(f"GridCounts.m = {self.m} with coarsening = 3; m must be a multiple of 6")

    @property
    def m_inner(self):
        """Cells per side of the central block (``m / coarsening``)."""
        return self.m // self.coarsening

    @property
    def n_rings(self):
        return self.n_transition + self.n_annulus + self.n_cortex

    @property
    def ring_sizes(self):
        """Nodes on ring k = 0 (block boundary) ... n_rings (outline), as a tuple."""
        mi = self.m_inner
        return tuple(4 * mi if k < self.n_transition else 4 * self.m for k in range(self.n_rings + 1))

    @property
    def n_template_nodes(self):
        """Interior nodes of the 3:1 transition ring (0 without coarsening)."""
        return 0 if self.coarsening == 1 else 2 * 4 * self.m_inner

    @property
    def n_nodes(self):
        return (self.m_inner + 1) ** 2 + sum(self.ring_sizes[1:]) + self.n_template_nodes

    @property
    def n_cells(self):
        mi, c = self.m_inner, self.coarsening
        last = 4 * mi * (4 if c == 3 else 1)                  # cells of the last transition ring
        return mi ** 2 + (self.n_transition - 1) * 4 * mi + last + (self.n_annulus + self.n_cortex) * 4 * self.m


def grid_counts(element_size, outlines, nucleus_fraction=0.4, cortex_thickness=DEFAULT_CORTEX_THICKNESS,
                n_cortex=1, block=0.55, coarsening=3, annulus_refinement=1):
    """Choose :class:`GridCounts` so that cells are about ``element_size`` (mm) in the largest outline.

    ``outlines`` is a list of :class:`Outline`; ``nucleus_fraction`` the smallest nucleus area fraction
    used (it gives the thickest annulus). ``coarsening`` 3 (default) coarsens the angular resolution
    3:1 inside the nucleus curve (see :class:`GridCounts`), so that the central cells are about
    ``element_size`` too instead of about 2.5 times smaller; ``m`` is then rounded to a multiple of 6.
    ``annulus_refinement`` (integer 1-4) multiplies the number of rings between the nucleus curve and the
    inner cortical curve (their radial size about ``element_size / annulus_refinement``).
    Below 1.5 mm every count is ``2**j`` times the count at ``element_size * 2**j``
    (:func:`~vertebrafe.anatomy.resolution.cell_count`), so halving the size doubles every count.
    """
    h = float(element_size)
    if not (0.2 <= h <= 10.0):
        raise InputError(f"element_size = {element_size!r} mm is out of range; allowed [0.2, 10]")
    if coarsening not in (1, 3):
        raise InputError(f"coarsening = {coarsening!r}; allowed 1 (none) or 3")
    if isinstance(annulus_refinement, (bool, np.bool_)) or annulus_refinement not in range(1, 5):
        raise InputError(f"annulus_refinement = {annulus_refinement!r}; allowed an integer 1 (default) to 4")
    P = max(o.perimeter for o in outlines)
    A = max(o.area() for o in outlines)
    step = 2 * coarsening
    m = cell_count(P / 4.0, h, minimum=2 * step if coarsening > 1 else 4, multiple=step)
    R = math.sqrt(A / math.pi)
    Rn = math.sqrt(nucleus_fraction * A / math.pi)
    n_t = cell_count((1.0 - block) * Rn, h)
    n_a = cell_count(R - Rn - cortex_thickness * n_cortex, h) * int(annulus_refinement)
    return GridCounts(m=m, n_transition=n_t, n_annulus=n_a, n_cortex=int(n_cortex), block=block,
                      coarsening=coarsening)


def _square_boundary(m):
    """``(i, j)`` block indices ``(4 m,)`` of the square boundary, anticlockwise from the middle of the
    right side (alpha = 0)."""
    j = np.arange(4 * m)
    h = m // 2
    bi = np.empty(4 * m, dtype=np.int64)
    bj = np.empty(4 * m, dtype=np.int64)
    s = j < h                                   # right side, upper half
    bi[s], bj[s] = m, h + j[s]
    s = (j >= h) & (j < 3 * h)                  # top side
    bi[s], bj[s] = m - (j[s] - h), m
    s = (j >= 3 * h) & (j < 5 * h)              # left side
    bi[s], bj[s] = 0, m - (j[s] - 3 * h)
    s = (j >= 5 * h) & (j < 7 * h)              # bottom side
    bi[s], bj[s] = j[s] - 5 * h, 0
    s = j >= 7 * h                              # right side, lower half
    bi[s], bj[s] = m, j[s] - 7 * h
    return bi, bj


#: Shape of the 3:1 transition ring: its radial width in units of the other transition rings' width,
#: the radial position of its interior nodes (fraction of its width) and their angular position within
#: the coarse cell (fraction of its width from either side) [chosen for the best minimum scaled
#: Jacobian over element sizes 1-4 mm].
TEMPLATE_WIDTH = 2.0
TEMPLATE_DEPTH = 0.4
TEMPLATE_SPREAD = 1.0 / 3.0


def _transition_lambdas(n_transition, coarsening):
    """Reference radii ``(n_transition + 1,)`` of the transition rings: 0 on the block boundary, 1 on the
    nucleus curve; with coarsening the last ring is ``TEMPLATE_WIDTH`` times wider than the others."""
    nt = n_transition
    if coarsening == 1 or nt == 1:
        return np.arange(nt + 1) / nt
    w = min(0.7, TEMPLATE_WIDTH / (nt - 1 + TEMPLATE_WIDTH))
    return np.concatenate([np.arange(nt) / (nt - 1) * (1.0 - w), [1.0]])


def _ring_quads(inner, outer):
    """Quads ``(k, 4)`` between two rings of equal size: (inner_j, outer_j, outer_j+1, inner_j+1)."""
    jn = np.roll(np.arange(inner.size), -1)
    return np.stack([inner, outer, outer[jn], inner[jn]], axis=1)


@lru_cache(maxsize=32)
def cross_section_topology(counts):
    """Node numbering and quads of the O-grid cross-section for ``counts`` (cached).

    Returns a dict of read-only arrays:

    * ``quads`` ``(q, 4)`` int64, anticlockwise seen from +z;
    * ``zone`` ``(q,)`` int8: 0 block, 1 transition, 2 annulus, 3 cortex;
    * ``ring`` ``(q,)``: ring index of each quad (0 for the block);
    * ``ring_nodes``: tuple of ``n_rings + 1`` arrays, the node indices of ring k (k = 0: block boundary),
      position j at boundary parameter ``alpha = 2 pi j / len(ring)``; rings from the nucleus curve
      (k = n_transition) outward have ``4 m`` nodes, the inner ones ``4 m / coarsening``;
    * ``block_ij`` ``(mi+1, mi+1)`` node indices of the central block (i along x, j along y);
    * ``alpha`` ``(4 m,)`` boundary parameters of the fine rings; ``outer_j`` ``(4 m,)`` position j of
      each outer-ring quad;
    * ``reference`` ``(n_inner, 2)`` reference unit-disk coordinates of the nodes inside the nucleus
      curve (nodes ``0 .. n_inner - 1``: block, inner rings, transition-ring interior nodes, nucleus ring).

    Node numbering: block, rings 1 .. n_transition - 1, the 3:1 ring's interior nodes (if any), then
    rings n_transition .. n_rings.
    """
    m, mi, c, nt = counts.m, counts.m_inner, counts.coarsening, counts.n_transition
    nb = (mi + 1) ** 2
    block_ij = np.arange(nb, dtype=np.int64).reshape(mi + 1, mi + 1).T      # [i, j] -> j*(mi+1)+i
    bi, bj = _square_boundary(mi)
    sizes = counts.ring_sizes
    rings = [block_ij[bi, bj]]
    nxt = nb
    for k in range(1, nt):                                    # inner (coarse) transition rings
        rings.append(np.arange(nxt, nxt + sizes[k], dtype=np.int64))
        nxt += sizes[k]
    tmpl = np.arange(nxt, nxt + counts.n_template_nodes, dtype=np.int64).reshape(-1, 2)   # (4 mi, 2)
    nxt += counts.n_template_nodes
    for k in range(nt, counts.n_rings + 1):
        rings.append(np.arange(nxt, nxt + sizes[k], dtype=np.int64))
        nxt += sizes[k]
    # block quads
    ii, jj = np.meshgrid(np.arange(mi), np.arange(mi), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    qb = np.stack([block_ij[ii, jj], block_ij[ii + 1, jj], block_ij[ii + 1, jj + 1], block_ij[ii, jj + 1]],
                  axis=1)
    parts, ring_of = [qb], [np.zeros(mi * mi, dtype=np.int64)]
    for k in range(1, counts.n_rings + 1):
        inner, outer = rings[k - 1], rings[k]
        if inner.size == outer.size:
            q = _ring_quads(inner, outer)
        else:                                                 # 3:1 transition ring
            a0, a1 = inner, np.roll(inner, -1)
            b = outer.reshape(-1, 3)
            b0, b1, b2, b3 = b[:, 0], b[:, 1], b[:, 2], np.roll(b[:, 0], -1)
            c1, c2 = tmpl[:, 0], tmpl[:, 1]
            q = np.stack([np.stack([a0, b0, b1, c1], axis=1), np.stack([c1, b1, b2, c2], axis=1),
                          np.stack([c2, b2, b3, a1], axis=1), np.stack([a0, c1, c2, a1], axis=1)],
                         axis=1).reshape(-1, 4)
        parts.append(q)
        ring_of.append(np.full(len(q), k, dtype=np.int64))
    quads = np.concatenate(parts).astype(np.int64)
    ring = np.concatenate(ring_of)
    zone = np.where(ring == 0, ZONE_BLOCK,
                    np.where(ring <= nt, ZONE_TRANSITION,
                             np.where(ring <= nt + counts.n_annulus, ZONE_ANNULUS, ZONE_CORTEX))).astype(np.int8)
    # reference (unit nucleus disk) coordinates of the nodes inside the nucleus curve
    a = counts.block
    n_inner = int(rings[nt][-1]) + 1
    ref = np.zeros((n_inner, 2))
    gi, gj = np.meshgrid(np.arange(mi + 1), np.arange(mi + 1), indexing="ij")
    ref[block_ij[gi, gj].ravel()] = np.stack([a * (2.0 * gi / mi - 1.0), a * (2.0 * gj / mi - 1.0)],
                                             axis=-1).reshape(-1, 2)
    sq = ref[rings[0]]                                        # (4 mi, 2) square boundary

    def square_at(t):
        """Square boundary at fractional coarse position ``t`` (linear along the sides)."""
        t = np.mod(t, 4 * mi)
        k0 = np.floor(t).astype(int) % (4 * mi)
        f = (t - np.floor(t))[:, None]
        return (1.0 - f) * sq[k0] + f * sq[(k0 + 1) % (4 * mi)]

    lam = _transition_lambdas(nt, c)
    for k in range(1, nt + 1):
        n = rings[k].size
        t = np.arange(n) * (4 * mi / n)
        al = 2.0 * np.pi * np.arange(n) / n
        ref[rings[k]] = (1.0 - lam[k]) * square_at(t) + lam[k] * np.stack([np.cos(al), np.sin(al)], axis=1)
    if tmpl.size:
        # interior nodes of the 3:1 ring: at 1/3 and 2/3 of each coarse cell, half-way across the ring
        lc = lam[nt - 1] + TEMPLATE_DEPTH * (lam[nt] - lam[nt - 1])
        t = np.arange(4 * mi)[:, None] + np.array([TEMPLATE_SPREAD, 1.0 - TEMPLATE_SPREAD])[None, :]  # (4 mi, 2)
        al = 2.0 * np.pi * t.ravel() / (4 * mi)
        ref[tmpl.ravel()] = (1.0 - lc) * square_at(t.ravel()) + lc * np.stack([np.cos(al), np.sin(al)], axis=1)
    alpha = 2.0 * np.pi * np.arange(4 * m) / (4 * m)
    ring_nodes = tuple(rings)
    for r in ring_nodes:
        r.setflags(write=False)
    out = dict(quads=quads, zone=zone, ring=ring, block_ij=block_ij, alpha=alpha, reference=ref,
               outer_j=np.arange(4 * m))
    for v in out.values():
        v.setflags(write=False)
    out["ring_nodes"] = ring_nodes
    return out


def nucleus_curve(outline, alpha, cortex_thickness, nucleus_fraction, nucleus_offset):
    """Nucleus curve ``(..., 2)`` at ``alpha`` and its centre ``(2,)`` for one endplate outline.

    The nucleus curve is the inner cortical curve scaled by ``s`` about a centre ``c`` on the midline:
    ``N = c + s (O - c)`` with ``s = sqrt(f A_outline / A_inner)`` so that the enclosed area is the
    fraction ``f`` of the outline area, and ``c`` placed so that the nucleus centroid lies
    ``nucleus_offset * D`` posterior to the centroid of the outline.
    """
    fine = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
    O_f = outline.offset(fine, cortex_thickness)
    B_f = outline.points(fine)
    A_O, A_B = polygon_area(O_f), polygon_area(B_f)
    s = math.sqrt(nucleus_fraction * A_B / A_O)
    if s >= 0.95:
        raise InputError(f"nucleus_fraction = {nucleus_fraction} leaves no annulus; allowed < "
                         f"{0.9 * A_O / A_B:.2f} for this outline and cortex thickness")
    g_O = _centroid(O_f)
    g_B = _centroid(B_f)
    target = g_B - np.array([0.0, nucleus_offset * outline.depth])
    c = (target - s * g_O) / (1.0 - s)
    N = c + s * (outline.offset(alpha, cortex_thickness) - c)
    return N, c


def _centroid(xy):
    x, y = xy[:, 0], xy[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cr = x * yn - xn * y
    a = 0.5 * cr.sum()
    return np.array([((x + xn) * cr).sum(), ((y + yn) * cr).sum()]) / (6.0 * a)


def cross_section_points(outline, counts, cortex_thickness=DEFAULT_CORTEX_THICKNESS, nucleus_fraction=0.4,
                         nucleus_offset=0.025):
    """In-plane node positions ``(n_nodes, 2)`` (mm) of the O-grid for one endplate outline.

    Rings beyond the nucleus blend linearly (per boundary parameter) nucleus curve -> inner cortical
    curve -> outline; the block and the transition rings are the reference unit-disk grid mapped by the
    star map ``x = c + |xi| (N(arg xi) - c)`` of the nucleus curve about its centre ``c``.
    """
    topo = cross_section_topology(counts)
    alpha = topo["alpha"]
    t = float(cortex_thickness)
    if not (0.0 < t < 0.2 * min(outline.width, outline.depth)):
        raise InputError(f"cortex_thickness = {cortex_thickness!r} mm; allowed (0, "
                         f"{0.2 * min(outline.width, outline.depth):.3g})")
    B = outline.points(alpha)
    O = outline.offset(alpha, t)
    N, c = nucleus_curve(outline, alpha, t, nucleus_fraction, nucleus_offset)
    xy = np.empty((counts.n_nodes, 2))
    rn = topo["ring_nodes"]
    # block, inner rings, transition-ring nodes and the nucleus ring: star map of the reference disk
    ref = topo["reference"]
    r = np.hypot(ref[:, 0], ref[:, 1])
    beta = np.mod(np.arctan2(ref[:, 1], ref[:, 0]), 2.0 * np.pi)
    Nb, _ = nucleus_curve(outline, beta, t, nucleus_fraction, nucleus_offset)
    xy[:len(ref)] = c + r[:, None] * (Nb - c)
    # the last transition ring must coincide with N exactly (it does up to round-off; make it exact)
    k0 = counts.n_transition
    xy[rn[k0]] = N
    mu = np.arange(1, counts.n_annulus + 1) / counts.n_annulus
    xy[np.stack(rn[k0 + 1:k0 + 1 + counts.n_annulus])] = (1 - mu)[:, None, None] * N + mu[:, None, None] * O
    k1 = k0 + counts.n_annulus
    nu = np.arange(1, counts.n_cortex + 1) / counts.n_cortex
    xy[np.stack(rn[k1 + 1:])] = (1 - nu)[:, None, None] * O + nu[:, None, None] * B
    return xy


# --------------------------------------------------------------------------------------------- vertebra
@dataclass(frozen=True)
class VertebraGeometry:
    """Continuous geometry of one vertebral body in its local frame (see the module docstring)."""

    dims: VertebraDimensions
    superior: Outline
    inferior: Outline
    concavity_extent: float = CONCAVITY_EXTENT

    @classmethod
    def from_dimensions(cls, dims, **outline_kw):
        return cls(dims, Outline(dims.superior_width, dims.superior_depth, **outline_kw),
                   Outline(dims.inferior_width, dims.inferior_depth, **outline_kw))

    @property
    def tan_wedge(self):
        d = self.dims
        return (d.anterior_height - d.posterior_height) / d.mean_depth

    def rim_z(self, y):
        """z (mm) of the superior rim plane at ``y``."""
        return self.dims.rim_height + self.tan_wedge * np.asarray(y)

    def z_inferior(self, xy):
        """z (mm) of the inferior endplate surface at in-plane points ``xy (..., 2)``."""
        return self.dims.inferior_concavity * concavity_profile(self.inferior.rho(xy), self.concavity_extent)

    def z_superior(self, xy):
        """z (mm) of the superior endplate surface at in-plane points ``xy (..., 2)``."""
        xy = np.asarray(xy)
        return self.rim_z(xy[..., 1]) - self.dims.superior_concavity * concavity_profile(
            self.superior.rho(xy), self.concavity_extent)


def _check_thickness(name, value, low, high):
    v = float(value)
    if not (low < v < high):
        raise InputError(f"{name} = {value!r} mm is out of range; allowed ({low:g}, {high:.3g})")
    return v


def vertebra_layers(geometry, counts, element_size=DEFAULT_ELEMENT_SIZE,
                    cortex_thickness=DEFAULT_CORTEX_THICKNESS, endplate_thickness=DEFAULT_ENDPLATE_THICKNESS,
                    nucleus_above=(0.4, 0.025), nucleus_below=(0.4, 0.025), n_core=None, grading=()):
    """Node layers of one vertebral body in its local frame.

    Returns ``(layers, gap_region)``: ``layers`` ``(L + 1, n_nodes, 3)`` node positions (mm), layer 0 on
    the inferior endplate surface and layer ``L`` on the superior one; ``gap_region`` ``(L,)`` str, the
    region of the inner zones of each cell layer (``"endplate"`` for the first and last, else
    ``"cancellous"``). ``nucleus_above/below`` = ``(area fraction, posterior offset)`` of the adjacent
    discs, which fix where the nucleus ring lies on each endplate. ``grading``: tuple of
    :class:`~vertebrafe.anatomy.grading.GradedCurve` applied to both cross-sections in this local frame
    (the inner cortical curve and the outline must stay where they are).
    """
    d = geometry.dims
    t_ep = _check_thickness("endplate_thickness", endplate_thickness, 0.0, 0.25 * d.central_height)
    xy0 = cross_section_points(geometry.inferior, counts, cortex_thickness, *nucleus_below)
    xy1 = cross_section_points(geometry.superior, counts, cortex_thickness, *nucleus_above)
    if grading:
        topo = cross_section_topology(counts)
        rings = topo["ring_nodes"]
        fixed = np.zeros(counts.n_nodes, dtype=bool)
        fixed[np.concatenate(rings[counts.n_transition + counts.n_annulus:])] = True
        xy0 = grade_points(xy0, grading, fixed, f"inferior endplate of {d.name}", topo["quads"])
        xy1 = grade_points(xy1, grading, fixed, f"superior endplate of {d.name}", topo["quads"])
    z0 = geometry.z_inferior(xy0)
    z1 = geometry.z_superior(xy1)
    h = z1 - z0
    if np.any(h <= 2.5 * t_ep):
        raise MeshError(f"vertebra {d.name}: body height {h.min():.3g} mm too small for two endplate layers "
                        f"of {t_ep:g} mm; reduce endplate_thickness or the concavities")
    if n_core is None:
        n_core = cell_count(d.rim_height - 2.0 * t_ep, element_size)
    # axial fractions per column: 0, t/h, uniform core..., 1 - t/h, 1
    e = t_ep / h                                                    # (n,)
    core = np.linspace(0.0, 1.0, n_core + 1)                        # (n_core+1,)
    eta = np.empty((n_core + 3, h.size))
    eta[0], eta[-1] = 0.0, 1.0
    eta[1:-1] = e[None, :] + core[:, None] * (1.0 - 2.0 * e)[None, :]
    p0 = np.column_stack([xy0, z0])
    p1 = np.column_stack([xy1, z1])
    layers = (1.0 - eta)[:, :, None] * p0[None] + eta[:, :, None] * p1[None]
    gap_region = np.array(["endplate"] + ["cancellous"] * n_core + ["endplate"])
    return layers, gap_region


def extrude(quads, n_gaps, n_nodes):
    """Hexahedra ``(n_gaps * q, 8)`` between consecutive node layers of ``n_nodes`` nodes each.

    Cell ``g * q + i`` joins quad ``i`` of layer ``g`` (nodes 0-3) to layer ``g + 1`` (nodes 4-7), VTK order.
    """
    off = (np.arange(n_gaps, dtype=np.int64) * n_nodes)[:, None, None]
    lower = quads[None, :, :] + off
    return np.concatenate([lower, lower + n_nodes], axis=2).reshape(-1, 8)


def make_mesh(points, cells, cell_data=None, tag_names=None, node_sets=None, face_sets=None):
    """Wrap plain arrays into :class:`vertebrafe.mesh.Mesh`."""
    from ..mesh import Mesh

    return Mesh(points, cells, cell_data=cell_data, tag_names=tag_names, node_sets=node_sets,
                face_sets=face_sets)


def region_of_cells(zone, gap_region, disc=False):
    """Region codes ``(n_gaps * q,)`` from cross-section zones ``(q,)`` and per-gap regions ``(n_gaps,)``."""
    zone = np.asarray(zone)
    codes = np.array([REGION_CODES[r] for r in gap_region])[:, None]
    out = np.broadcast_to(codes, (len(gap_region), zone.size)).copy()
    if not disc:
        out[:, zone == ZONE_CORTEX] = REGION_CODES["cortex"]
    return out.ravel()


def surface_face_sets(cells_first_gap, cells_last_gap, outer_cells, posterior_mask):
    """Outward face sets of a body: superior, inferior, lateral, posterior wall (arrays ``(f, 4)``)."""
    return {
        "superior": cells_last_gap[:, [4, 5, 6, 7]],
        "inferior": cells_first_gap[:, [0, 3, 2, 1]],
        "lateral": outer_cells[:, [1, 2, 6, 5]],
        "posterior_wall": outer_cells[posterior_mask][:, [1, 2, 6, 5]],
    }


def posterior_wall_quads(counts):
    """Bool mask over the outer-ring quads (ordered by position j) of the posterior wall:
    boundary parameter between 5 pi / 4 and 7 pi / 4 (between the posterolateral corners)."""
    j = np.arange(4 * counts.m)
    mid = (j + 0.5) / (4 * counts.m) * 2.0 * np.pi
    return (mid > 1.25 * np.pi) & (mid < 1.75 * np.pi)


def vertebra(level, element_size=DEFAULT_ELEMENT_SIZE, cortex_thickness=DEFAULT_CORTEX_THICKNESS,
             endplate_thickness=DEFAULT_ENDPLATE_THICKNESS, scale=1.0, n_cortex_layers=1, **overrides):
    """Hex8 mesh of one vertebral body in its local frame.

    Parameters
    ----------
    level : str or VertebraDimensions
        A level name T10-L5 (dimensions from :func:`~vertebrafe.anatomy.levels.level_dimensions` with
        ``scale`` and ``overrides``) or a dimensions record.
    element_size : float
        Target edge length (mm) of the cancellous cells and of the outline spacing.
    cortex_thickness, endplate_thickness : float
        Cortical shell (radial) and bony endplate (along z) thickness (mm).
    n_cortex_layers : int
        Element layers across the cortical shell (>= 1).

    Returns
    -------
    vertebrafe.Mesh
        Cell tags ``region`` (``cortex``, ``endplate``, ``cancellous``) and ``level``; node sets and face
        sets ``superior``, ``inferior`` (endplate surfaces), face sets ``lateral`` and ``posterior_wall``
        (outer cortical faces between the posterolateral corners, where pedicles attach).
    """
    dims = level if isinstance(level, VertebraDimensions) else level_dimensions(level, scale=scale, **overrides)
    geo = VertebraGeometry.from_dimensions(dims)
    above, below = adjacent_discs(dims.name) if dims.name in vertebra_names() else (None, None)
    nuc_a = _nucleus_params(above)
    nuc_b = _nucleus_params(below)
    counts = grid_counts(element_size, [geo.superior, geo.inferior], min(nuc_a[0], nuc_b[0]),
                         cortex_thickness, n_cortex_layers)
    layers, gap_region = vertebra_layers(geo, counts, element_size, cortex_thickness, endplate_thickness,
                                         nuc_a, nuc_b)
    topo = cross_section_topology(counts)
    n2, q = counts.n_nodes, len(topo["quads"])
    L = len(gap_region)
    cells = extrude(topo["quads"], L, n2)
    region = region_of_cells(topo["zone"], gap_region)
    outer = np.flatnonzero(topo["ring"] == counts.n_rings)               # outer-ring quads, ordered by j
    outer_cells = cells[(np.arange(L)[:, None] * q + outer[None, :]).ravel()]
    post = np.tile(posterior_wall_quads(counts), L)
    faces = surface_face_sets(cells[:q], cells[(L - 1) * q:], outer_cells, post)
    node_sets = {"superior": np.arange(L * n2, (L + 1) * n2), "inferior": np.arange(n2)}
    names = {v: k for k, v in REGION_CODES.items() if k in ("cortex", "endplate", "cancellous")}
    return make_mesh(layers.reshape(-1, 3), cells,
                     cell_data={"region": region, "level": np.ones(len(cells), dtype=np.int64)},
                     tag_names={"region": names, "level": {1: dims.name}},
                     node_sets=node_sets, face_sets=faces)


def _nucleus_params(disc_name):
    if disc_name is None:
        return (0.4, 0.025)
    d = level_dimensions(disc_name)
    return (d.nucleus_fraction, d.nucleus_offset)
