"""Shared steps of cement augmentation (vertebroplasty and kyphoplasty): argument checks, bolus and
balloon geometry in the vertebra's frame, the sub-cell :class:`Sampler` of the partial volume, the
requested volume, the cement phase and the mixing of the elasticity. See :mod:`vertebrafe.clinical.cement`
for the geometry and the partial-volume method."""
from __future__ import annotations

import math

import numpy as np

from ..elasticity import isotropic
from ..errors import InputError, MaterialError
from ._common import column_fraction, level_nodes, operations_of, sample_points, to_local
from .measure import body_heights
from .mixing import cut_normals, laminate

__all__ = ["DEFAULT_SAMPLES", "body_frame_sizes", "bolus_geometry", "Sampler", "region_code", "resolve_volume",
           "cement_phase", "mix_elasticity", "check_offset", "check_samples", "check_untreated", "level_cells",
           "DEFAULT_VERTICAL_EXTENT", "CEMENT_MODULUS_RANGE", "CEMENT_NU_RANGE", "endplate_distances",
           "vertical_mask", "check_extent", "check_fits", "check_centres", "check_cement_modulus", "height_span",
           "layer_phases", "mix_layered", "mix_nested", "check_layer", "DEFAULT_LAYER_THICKNESS", "LAYER_COMPLIANCE",
           "LAYER_THICKNESS_RANGE", "LAYER_MODULUS_RANGE", "BRIDGE_RANGE", "check_bridge", "smooth_min", "bridge_blend",
           "bridge_neck", "bolus_pieces"]

#: Sub-cell samples per direction.
DEFAULT_SAMPLES = 4
#: Fraction of the local body height (endplate to endplate, per column) that cement may occupy, centred at
#: mid-height: 0.7 leaves 15 % of the height between the cement and each endplate. [assumption: post-
#: operative CT of vertebroplasty shows the cement spread through the central trabecular core, mostly
#: clear of the endplates at moderate volumes; set 1.0 for endplate-to-endplate fills.]
DEFAULT_VERTICAL_EXTENT = 0.7
#: Allowed cement(-phase) modulus (MPa) and Poisson ratio: from low-modulus PMMA (954 MPa, Kolb 2013;
#: -77 % at 24 h, literature.md 2.5) with margin up to stiff composite cements.
CEMENT_MODULUS_RANGE = (100.0, 20000.0)
CEMENT_NU_RANGE = (0.0, 0.49)

#: Interface-layer thickness (mm) [assumption: about half the trabecular spacing of osteoporotic vertebral
#: bone, the depth over which cement and trabeculae interlock only partly].
DEFAULT_LAYER_THICKNESS = 0.5
#: Normal compliance of the cement-trabecula interface per unit area (mm/MPa): 1 um of cement-trabecula
#: micromotion under 1 MPa compression in lab-prepared (post-operative) interlocked specimens; 6 um after in
#: vivo service (Miller, Goodheart, Khechen, Janssen & Mann 2016, J Orthop Res, PMC4877298). The
#: default layer modulus is ``thickness / LAYER_COMPLIANCE`` (500 MPa at 0.5 mm), so the layer carries that
#: compliance whatever its thickness.
LAYER_COMPLIANCE = 1.0e-3
LAYER_THICKNESS_RANGE = (0.05, 5.0)
LAYER_MODULUS_RANGE = (1.0, 20000.0)

#: Allowed ``bridge`` (mm) of :func:`~vertebrafe.clinical.vertebroplasty`: the largest gap between the two
#: bipedicular boluses that their smooth union closes (0: two separate ellipsoids, the default).
BRIDGE_RANGE = (0.0, 10.0)

# bolus shapes (fractions of W, D, H) [assumption]
_SHAPES = {
    "bipedicular": dict(x=0.20, y=1.0 / 6.0, angle=15.0, axes=(0.16, 0.30, 0.35)),
    "unipedicular": dict(x=0.08, y=1.0 / 6.0, angle=30.0, axes=(0.22, 0.35, 0.35)),
    "balloon2": dict(x=0.18, y=1.0 / 6.0, angle=15.0, axes=(0.15, 0.25, 0.30)),
    "balloon1": dict(x=0.0, y=1.0 / 6.0, angle=0.0, axes=(0.22, 0.28, 0.30)),
}


def body_frame_sizes(segment, level, points):
    """``(W, D, H, z_c, y_c)`` (mm) of the current body: mean width and depth from the dimensions, middle
    height and the mid-height / mid-depth of the six-point middle points in the local frame."""
    d = segment.dimensions[level]
    nodes = level_nodes(segment, level)
    loc = np.zeros((segment.mesh.n_points, 3))
    loc[nodes.body] = to_local(segment, level, points[nodes.body])
    (_, hm, _), top, bot = body_heights(loc, nodes.inferior, nodes.superior)
    W = 0.5 * (d.superior_width + d.inferior_width)
    D = d.mean_depth
    zc = 0.5 * (top[1, 1] + bot[1, 1])
    yc = 0.5 * (top[1, 0] + bot[1, 0])
    return W, D, hm, zc, yc


def bolus_geometry(shape, W, D, H, zc, yc=0.0, side="left", offset=(0.0, 0.0, 0.0)):
    """Centres ``(b, 3)``, rotations ``(b, 3, 3)`` (columns: lateral, trajectory, vertical axes) and
    semi-axes ``(b, 3)`` at scale 1 (mm) of the boluses of ``shape`` in the local frame."""
    sp = _SHAPES[shape]
    off = np.asarray(offset, dtype=float)
    ax = np.array([sp["axes"][0] * W, sp["axes"][1] * D, sp["axes"][2] * H])
    if shape in ("bipedicular", "balloon2"):
        signs = (1.0, -1.0)
    else:
        signs = (1.0 if side == "right" else -1.0,)
    centres, rots = [], []
    for s in signs:
        centres.append(np.array([s * sp["x"] * W, yc + sp["y"] * D, zc]) + off)
        a = math.radians(sp["angle"]) * s        # trajectory (-sin a, cos a): anterior tip toward the midline
        c, sn = math.cos(a), math.sin(a)
        rots.append(np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]]))
    return np.array(centres), np.array(rots), np.tile(ax, (len(signs), 1))


def smooth_min(a, b, k):
    """Polynomial smooth minimum of ``a`` and ``b`` over the blending width ``k > 0``:
    ``min(a, b) - k h^2 / 4``, ``h = max(k - |a - b|, 0) / k``; equal to ``min(a, b)`` where they differ by
    ``k`` or more, smooth (C1) across ``a = b``, symmetric in ``a`` and ``b`` bit for bit."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - 0.25 * k * h * h


def bridge_blend(bridge, rots, axes):
    """Blending width ``k`` (normalised radius) of :func:`smooth_min` that closes a gap of ``bridge`` mm
    between two boluses side by side: ``2 bridge / w``, ``w`` the lateral half-width (mm) of the first bolus,
    ``sqrt(sum_j (a_j R_0j)^2)`` (its support along the local x axis; ``rots (b, 3, 3)``, ``axes (b, 3)``).
    On the pair's mirror plane both radii are equal, at least ``1 + g / (2 w)`` for a gap ``g`` between the
    ellipsoids, and the smooth minimum is ``k / 4`` less: the union is one piece exactly where ``g <= bridge``
    (:func:`bridge_neck`). Scaling the axes by ``s`` divides ``k`` by ``s``, so the blended field is
    homogeneous of degree one like each radius: the surface at scale ``s`` is the level ``s`` of the field at
    scale 1 (:meth:`Sampler.scale_for_volume`)."""
    R = np.asarray(rots[0], dtype=float)
    a = np.asarray(axes[0], dtype=float)
    return 2.0 * float(bridge) / float(np.sqrt(np.sum((a * R[0]) ** 2)))


def bridge_neck(centres, rots, axes, scale, blend):
    """``(gap, neck)`` (mm) of the two boluses ``centres (2, 3)``, ``rots (2, 3, 3)``, ``axes (2, 3)`` (local, scale
    1, mirror images across the plane ``x`` = their centres' mean, as :func:`bolus_geometry` places them) at scale
    ``scale``, joined by the smooth minimum of their radii over ``blend`` (:func:`bridge_blend`; 0: not joined).
    ``gap``: the bone between the two ellipsoids without the bridge, ``2 (d - scale w)`` (``d`` a centre's
    distance to the mirror plane, ``w`` the lateral half-width at scale 1; negative where they overlap).
    ``neck``: the smaller diameter of the bridged bolus's section by the mirror plane, its waist; 0 where the
    two stay apart. Exact, not to first order: on the mirror plane the two radii are equal, the smooth minimum
    is the radius less ``blend / 4``, and the section is the ellipse ``r <= scale + blend / 4`` of one
    ellipsoid, empty, the boluses two pieces, where ``gap`` exceeds the bridge (mm) that ``blend`` closes. Its
    diameter grows as the square root of the bridge less the gap: a bridge just wider than the gap leaves a
    thin neck, one just narrower a thin septum of bone (the waist is flat to first order across the plane)."""
    c, R, a = (np.asarray(v, dtype=float) for v in (centres[0], rots[0], axes[0]))
    A = R @ np.diag(1.0 / a ** 2) @ R.T                 # r^2 = (x - c)^T A (x - c)
    w = float(np.sqrt(np.sum((a * R[0]) ** 2)))         # (A^-1)_xx = w^2
    d = abs(float(c[0]) - 0.5 * float(centres[0][0] + centres[1][0]))
    gap = 2.0 * (d - float(scale) * w)
    rho2 = (float(scale) + 0.25 * float(blend)) ** 2 - (d / w) ** 2 if blend else -1.0
    if rho2 <= 0.0:
        return gap, 0.0
    return gap, 2.0 * float(np.sqrt(rho2 / np.linalg.eigvalsh(A[1:, 1:]).max()))


def bolus_pieces(gap, neck):
    """Pieces (1 or 2) of a bipedicular bolus whose two ellipsoids are ``gap`` mm apart, joined by a bridge's
    neck ``neck`` mm across (:func:`bridge_neck`): one where they overlap (``gap <= 0``) or a neck joins them."""
    return 1 if (gap <= 0.0 or neck > 0.0) else 2


def check_bridge(bridge, approach):
    """``bridge`` (mm) as a float in :data:`BRIDGE_RANGE` (None: 0), only with two boluses; or InputError."""
    if bridge is None:
        return 0.0
    lo, hi = BRIDGE_RANGE
    try:
        b = float(bridge)
    except (TypeError, ValueError):
        raise InputError(f"bridge = {bridge!r}; expected mm in [{lo:g}, {hi:g}]") from None
    if not (lo <= b <= hi):
        raise InputError(f"bridge = {bridge!r} mm is out of range; allowed [{lo:g}, {hi:g}] mm (the largest gap "
                         "between the two bipedicular boluses that is bridged; 0: two separate boluses)")
    if b > 0.0 and approach != "bipedicular":
        raise InputError(f"bridge = {bridge!r} mm with approach = {approach!r}; a bridge joins the two boluses of "
                         "approach = 'bipedicular' (allowed for another approach: 0 or None)")
    return b


class Sampler:
    """Sub-cell sample points of a set of cells in a level's local frame.

    ``x (m, q, 3)`` local coordinates (mm), ``w (m, q)`` weights summing to 1 per cell, ``volume (m,)`` the
    cells' volumes (mm^3, ``Mesh.cell_volumes``).
    """

    def __init__(self, segment, level, points, cells_mask, samples=DEFAULT_SAMPLES):
        _, N, dN = sample_points(int(samples))
        self.N = N
        self.cells = np.flatnonzero(cells_mask)
        self.nodes = segment.mesh.cells[self.cells]
        X = to_local(segment, level, points[segment.mesh.cells[self.cells]].reshape(-1, 3)).reshape(-1, 8, 3)
        self.x = np.einsum("qa,mai->mqi", N, X)
        J = np.einsum("qaj,mai->mqij", dN, X)
        det = np.linalg.det(J)
        self.w = det / det.sum(axis=1, keepdims=True)
        m = segment.mesh.copy()
        m.points = points
        self.volume = m.cell_volumes()[self.cells]
        self._horizontal = {}                    # horizontal offsets per bolus centre (:meth:`_offsets`)
        self._z = None                           # the samples' vertical coordinates, contiguous

    def interpolate(self, nodal):
        """A nodal scalar field ``(n,)`` at the samples ``(m, q)``."""
        return np.einsum("qa,ma->mq", self.N, np.asarray(nodal)[self.nodes])

    def radius2(self, centres, rots, axes, pad=0.0, vertical=None, bridge=0.0):
        """Normalised squared radius ``(m, q)`` of the samples: min over boluses of
        ``sum_i (d_i / (a_i + pad))^2`` with ``d`` the sample offset in the bolus axes (the third axis is
        the vertical; ``vertical (m, q)``, mm, replaces its offset, e.g. by a distance from an endplate).
        The three terms are summed in order, ``(t_0 + t_1) + t_2``, as numpy's sum over the last axis does
        (``tests/clinical/test_clinical_sampler.py`` checks the two bit for bit).

        ``bridge`` (mm, two boluses): the square of the smooth minimum (:func:`smooth_min`) of the two
        normalised radii instead of their minimum, blended over :func:`bridge_blend` of the padded axes, so
        that the two boluses join where their surfaces come within about ``bridge`` mm; 0 keeps the minimum."""
        r = np.full(self.x.shape[:2], np.inf)
        radii = []
        for c, R, a in zip(centres, rots, axes):
            d0, d1, d2 = self._offsets(np.asarray(c, dtype=float), np.asarray(R, dtype=float))
            if vertical is not None:
                d2 = np.asarray(vertical, dtype=float)
            s = np.asarray(a, dtype=float) + pad
            q = (d0 / s[0]) ** 2 + (d1 / s[1]) ** 2 + (d2 / s[2]) ** 2
            if bridge:
                radii.append(q)
            else:
                r = np.minimum(r, q)
        if bridge:
            k = bridge_blend(bridge, rots, np.asarray(axes, dtype=float) + pad)
            return np.maximum(smooth_min(np.sqrt(radii[0]), np.sqrt(radii[1]), k), 0.0) ** 2
        return r

    def _offsets(self, c, R):
        """The components ``(m, q)`` each of ``(x - c) @ R``. For a rotation about the vertical (``R``'s third
        row and column ``(0, 0, 1)``, every bolus and balloon here) the horizontal offsets do not depend on
        ``c[2]``: the vertical term enters them multiplied by an exact zero, whatever order the product sums
        in, and the vertical offset is ``x[..., 2] - c[2]`` exactly. Those are kept per horizontal centre and
        rotation, so a balloon moved up or down (the kyphoplasty contact search) costs no product; the
        result is the product's, bit for bit."""
        if not (R[2, 0] == R[2, 1] == R[0, 2] == R[1, 2] == 0.0 and R[2, 2] == 1.0):
            d = (self.x - c) @ R
            return d[..., 0], d[..., 1], d[..., 2]
        key = (float(c[0]), float(c[1]), R.tobytes())
        cache = self._horizontal
        if key not in cache:
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            d = (self.x - c) @ R
            cache[key] = (np.ascontiguousarray(d[..., 0]), np.ascontiguousarray(d[..., 1]))
        if self._z is None:
            self._z = np.ascontiguousarray(self.x[..., 2])
        return (*cache[key], self._z - c[2])

    def scale_for_volume(self, r2, target_mm3):
        """Smallest scale ``s`` whose ellipsoids ``r2 <= s^2`` hold ``target_mm3`` of the sampled volume;
        returns ``(s, achieved mm^3)``: the samples in the order of ``r2`` (stable) are summed until the
        volume reaches the target, and ``s^2`` lies midway between that sample's ``r2`` and the next.

        Only the samples up to a bound on ``r2`` are sorted, once those hold the target (a partition picks
        the bound): they are the first ones of the whole stable order, in that order, so the running sum,
        the sample reached and the next one are those of the whole sort, bit for bit; otherwise (or with a
        negative weight) the whole is sorted."""
        wv = (self.w * self.volume[:, None]).ravel()
        r = r2.ravel()
        n = r.size
        total = float(wv.sum())
        if n > 1024 and total > 0.0 and wv.min() >= 0.0:
            kth = min(n - 1, int(n * min(1.0, 1.25 * target_mm3 / total)) + 512)
            bound = np.partition(r, kth)[kth]
            head = np.flatnonzero(r <= bound)                    # a prefix of the stable order
            order = head[np.argsort(r[head], kind="stable")]
            cum = np.cumsum(wv[order])
            k = int(np.searchsorted(cum, target_mm3))
            if k + 1 < order.size:
                return self._scale_at(r, order, cum, k, target_mm3)
        order = np.argsort(r, kind="stable")
        cum = np.cumsum(wv[order])
        k = min(int(np.searchsorted(cum, target_mm3)), len(cum) - 1)
        return self._scale_at(r, order, cum, k, target_mm3)

    @staticmethod
    def _scale_at(r, order, cum, k, target_mm3):
        """``(s, achieved)`` of :meth:`scale_for_volume` from the sorted samples ``order`` (at least up to
        ``k + 1`` where ``k + 1 < r.size``), their running volume ``cum`` and the first step ``k`` at or
        past the target."""
        # pick the closer of the two neighbouring steps
        if k > 0 and abs(cum[k - 1] - target_mm3) < abs(cum[k] - target_mm3):
            k -= 1
        r_k = r[order[k]]
        r_next = r[order[k + 1]] if k + 1 < len(r) else r_k * 1.0001 + 1e-12
        s2 = 0.5 * (r_k + r_next) if np.isfinite(r_next) else r_k
        return math.sqrt(s2), float(cum[k])

    def fraction(self, inside):
        """Cell fractions ``(m,)`` of a bool/float sample field ``(m, q)``."""
        return np.clip(np.sum(self.w * inside, axis=1), 0.0, 1.0)


def endplate_distances(segment, level, points, sampler):
    """Distances (mm) of the samples ``(m, q)`` from the inferior and the superior endplate surface and the
    local body height there, along each node column of the vertebra (nodal values interpolated)."""
    nodes = level_nodes(segment, level)
    body = nodes.body
    zeta = np.zeros(points.shape[0])
    hcol = np.zeros(points.shape[0])
    zeta[body] = column_fraction(points, body, nodes.inferior, nodes.superior, nodes.n2)
    col = body % nodes.n2
    hcol[body] = np.linalg.norm(points[nodes.superior[col]] - points[nodes.inferior[col]], axis=1)
    z, h = sampler.interpolate(zeta), sampler.interpolate(hcol)
    return z * h, (1.0 - z) * h, h


def vertical_mask(d_inf, d_sup, height, extent, pad=0.0):
    """Samples inside the central ``extent`` of the local body height, widened by ``pad`` mm."""
    c = 0.5 * (1.0 - extent) * height - pad
    return (d_inf >= c) & (d_sup >= c)


def check_extent(vertical_extent):
    try:
        e = float(vertical_extent)
    except (TypeError, ValueError):
        raise InputError(f"vertical_extent = {vertical_extent!r}; expected a fraction in (0.2, 1]") from None
    if not (0.2 < e <= 1.0):
        raise InputError(f"vertical_extent = {vertical_extent!r}; allowed range (0.2, 1] (fraction of the local "
                         "body height; 1 = endplate to endplate)")
    return e


def check_fits(target_mm3, room_mm3, cancellous_mm3, level, field, value, vertical_extent):
    """Raise when the request exceeds the cancellous volume the bolus may occupy (``field`` is ``"fill"``
    (a fraction of ``cancellous_mm3``) or ``"volume"`` (mL))."""
    if target_mm3 <= room_mm3 * (1.0 + 1e-9):
        return
    allowed = (f"allowed fill (0, {room_mm3 / cancellous_mm3:.3f}]" if field == "fill"
               else f"allowed volume (0, {room_mm3 / 1000.0:.3g}] mL")
    unit = "" if field == "fill" else " mL"
    raise InputError(f"{field} = {value!r}{unit} does not fit in {level}: the cancellous bone within the central "
                     f"{vertical_extent:g} of the body height holds {room_mm3 / 1000.0:.3g} mL; {allowed} "
                     "(vertical_extent up to 1 lets the cement reach the endplates)")


#: Largest relative difference between the requested and the placed cement volume.
VOLUME_TOLERANCE = 0.05


def check_achieved(achieved_mm3, volume_ml, fill, level):
    """Raise unless the placed volume ``achieved_mm3`` (mm^3) is within :data:`VOLUME_TOLERANCE` of the
    requested ``volume_ml`` (mL); the error names ``fill`` when the request was a fill, else ``volume``."""
    err = achieved_mm3 / (volume_ml * 1000.0) - 1.0
    if abs(err) <= VOLUME_TOLERANCE:
        return
    field, value = ("fill", f"{fill:g}") if fill is not None else ("volume", f"{volume_ml:g} mL")
    raise InputError(f"{field} = {value}: the cement placed in {level} is {achieved_mm3 / 1000.0:.3g} mL, "
                     f"{100 * err:+.0f} % off the requested volume (allowed within {100 * VOLUME_TOLERANCE:.0f} %); "
                     "use a volume the mesh resolves (a smaller element_size) and that fits in the cancellous bone")


def check_centres(centres, offset, W, D, H, zc, yc, level):
    """Every bolus centre must lie inside the vertebral body (within 0.45 W, 0.45 D of the body centre
    and 0.45 H of its mid-height); the error names the allowed offset range."""
    lim = np.array([0.45 * W, 0.45 * D, 0.45 * H])
    base = centres - np.asarray(offset)
    rel = centres - np.array([0.0, yc, zc])
    if np.all(np.abs(rel) <= lim):
        return
    ref = base - np.array([0.0, yc, zc])
    lo = (-lim - ref).max(axis=0)
    hi = (lim - ref).min(axis=0)
    rng = ", ".join(f"d{a} in [{a_lo:.1f}, {a_hi:.1f}]" for a, a_lo, a_hi in zip("xyz", lo, hi))
    raise InputError(f"offset = {tuple(float(v) for v in offset)} mm puts a bolus centre outside the vertebral "
                     f"body of {level}; allowed (mm): {rng}")


def check_cement_modulus(cement_modulus):
    """``(E, nu)`` of a user cement modulus, validated against :data:`CEMENT_MODULUS_RANGE`."""
    try:
        E, nu = (float(v) for v in cement_modulus)
    except (TypeError, ValueError):
        raise InputError(f"cement_modulus = {cement_modulus!r}; expected (E MPa, nu)") from None
    lo, hi = CEMENT_MODULUS_RANGE
    if not (lo <= E <= hi):
        raise MaterialError(f"cement_modulus E = {E!r} MPa is out of range; allowed [{lo:g}, {hi:g}] MPa "
                            "(PMMA 954-3000 MPa)")
    if not (CEMENT_NU_RANGE[0] <= nu <= CEMENT_NU_RANGE[1]):
        raise MaterialError(f"cement_modulus nu = {nu!r} is out of range; allowed [{CEMENT_NU_RANGE[0]:g}, "
                            f"{CEMENT_NU_RANGE[1]:g}]")
    return E, nu


def height_span(d_inf, height, inside):
    """Largest vertical span of the cement as a fraction of the local body height (0..1)."""
    if not inside.any():
        return 0.0
    z = d_inf[inside] / height[inside]
    return float(z.max() - z.min())


def region_code(mesh, name, tag_names):
    """Code of region ``name`` in the name table ``tag_names`` (added with a new code if missing)."""
    for k, v in tag_names.items():
        if v == name:
            return k
    k = max(tag_names) + 1
    tag_names[k] = name
    return k


def resolve_volume(segment, level, volume, fill, eligible_volume_mm3, default):
    """Requested volume (mL) from ``volume`` or ``fill`` (validated); ``default`` (mL) when neither is given."""
    if volume is not None and fill is not None:
        raise InputError(f"give either volume ({volume!r} mL) or fill ({fill!r}), not both")
    cap = eligible_volume_mm3 / 1000.0
    if fill is not None:
        try:
            f = float(fill)
        except (TypeError, ValueError):
            raise InputError(f"fill = {fill!r}; expected a fraction in (0, 1]") from None
        if not (0.0 < f <= 1.0):
            raise InputError(f"fill = {fill!r}; allowed range (0, 1] (fraction of the cancellous volume "
                             f"{cap:.3g} mL of {level})")
        return f * cap, f
    v = default if volume is None else volume
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise InputError(f"volume = {volume!r}; expected mL in (0, {cap:.3g}]") from None
    if not (v > 0.0):
        raise InputError(f"volume = {volume!r} mL; must be > 0 (allowed (0, {cap:.3g}] mL)")
    if v > cap:
        raise InputError(f"volume = {v:g} mL exceeds the cancellous volume of {level} ({cap:.3g} mL); "
                         f"allowed (0, {cap:.3g}] mL")
    return v, v / cap


def cement_phase(segment, material, cement_modulus, level=None):
    """Isotropic elasticity ``(6, 6)`` (MPa), E (MPa) and nu of the cement phase, or None without materials.

    With per-vertebra materials (``LevelMaterials``) the composite follows the vBMD of ``level``."""
    if cement_modulus is not None:
        E, nu = check_cement_modulus(cement_modulus)
        return isotropic(E, nu), E, nu
    ms = segment.materials
    if segment.elasticity is None:
        return None, None, None
    if hasattr(ms, "for_level"):
        ms = ms.for_level(level)
    if ms is None or not hasattr(ms, "cement_bone"):
        raise InputError("the segment's materials are not a MaterialSet; pass cement_modulus=(E MPa, nu)")
    m = ms.cement_bone() if material == "composite" else ms.cement
    return isotropic(m.E, m.nu), float(m.E), float(m.nu)


def mix_elasticity(C_host, C_phase, E_phase, nu_phase, f, rule, normals=None):
    """Per-cell mixture of host ``(k, 6, 6)`` and an isotropic phase by volume fraction ``f (k,)``
    (:mod:`vertebrafe.clinical.mixing`; ``normals (k, 3)``, global frame, for ``"laminate"``)."""
    if rule == "laminate":
        C_host = np.asarray(C_host)
        phases = np.stack([C_host, np.broadcast_to(C_phase, C_host.shape)])
        return laminate(phases, np.stack([1.0 - f, f]), normals)
    if rule == "voigt":
        return (1.0 - f)[:, None, None] * C_host + f[:, None, None] * C_phase
    from ..materials import mix
    S = np.linalg.inv(C_host)
    E_h = 1.0 / S[:, 2, 2]
    nu_h = -S[:, 0, 2] * E_h
    iso = isotropic(E_h, nu_h) if np.ndim(E_h) else isotropic(float(E_h), float(nu_h))
    if not np.allclose(iso, C_host, rtol=1e-6, atol=1e-9 * np.abs(C_host).max()):
        raise InputError("mixing = 'hashin-shtrikman' needs isotropic host cells; use mixing='voigt' with "
                         "anisotropic cancellous bone")
    E, nu = mix(E_h, nu_h, E_phase, nu_phase, f, rule="hashin-shtrikman")
    return isotropic(np.asarray(E), np.asarray(nu))


def check_offset(offset):
    """``offset`` as a finite ``(3,)`` float array (mm), or InputError."""
    try:
        off = np.asarray(offset, dtype=float).reshape(3)
    except (TypeError, ValueError):
        raise InputError(f"offset = {offset!r}; expected (dx, dy, dz) in mm") from None
    if not np.all(np.isfinite(off)):
        raise InputError(f"offset = {offset!r}; must be finite (mm)")
    return off


def check_samples(samples):
    """``samples`` (sub-cell samples per direction) as an int in 2-8, or InputError."""
    if not isinstance(samples, (int, np.integer)) or not (2 <= samples <= 8):
        raise InputError(f"samples = {samples!r}; allowed integers 2-8")
    return int(samples)


def check_untreated(segment, level):
    """InputError if ``level`` already has cement (one augmentation per level)."""
    done = [op.kind for op in operations_of(segment, level) if op.kind != "fracture"]
    if done:
        raise InputError(f"level {level!r} already has cement ({done[-1]}); one augmentation per level")


def level_cells(mesh, level):
    """Boolean mask ``(m,)`` of the cells of vertebra ``level``."""
    code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
    return mesh.cell_data["level"] == code


def layer_phases(sampler, inside, core, f_cement):
    """Volume fractions ``(f_layer, f_core)`` ``(m,)`` of an interface layer (the part of the cement
    ``inside`` outside its ``core``, both ``(m, q)`` sample masks) and of the core, given the cells' cement
    fractions ``f_cement (m,)`` (which may be 0 / 1 on fitted cells)."""
    f_core = np.minimum(sampler.fraction(inside & core), f_cement)
    return f_cement - f_core, f_core


def mix_layered(C_host, C_layer, C_core, f_layer, f_core, x, w, inside, core, R, rule):
    """Elasticity ``(k, 6, 6)`` of cells holding host bone, an interface layer and the cement core
    (fractions ``1 - f_layer - f_core``, ``f_layer``, ``f_core``; ``inside`` and ``core`` the ``(k, q)`` sample
    masks of the cement and of its core): :func:`mix_nested`. Returns the elasticity and the normals."""
    C_host = np.asarray(C_host)
    phases = np.stack([C_host, np.broadcast_to(C_layer, C_host.shape), np.broadcast_to(C_core, C_host.shape)])
    fractions = np.stack([1.0 - f_layer - f_core, f_layer, f_core])
    return mix_nested(phases, fractions, (inside, core), x, w, R, rule)


def mix_nested(phases, fractions, masks, x, w, R, rule):
    """Elasticity ``(k, 6, 6)`` of cells holding nested phases, outermost first (host bone, then e.g. a
    compacted rim, an interface layer, the cement core): ``phases (p, k, 6, 6)``, ``fractions (p, k)``;
    ``masks`` the ``p - 1`` sample masks ``(k, q)`` of the regions inside the outer surface of phases
    ``1 .. p-1``. Rule ``"laminate"``: one laminate normal to the outermost surface the cell holds (the outer
    surface of its first phase of fraction above 1e-12, or of the innermost phase where the cell holds only
    that one; ``x, w`` the cells' samples, ``R`` local -> global rotation); ``"voigt"``: the Voigt mean.
    Returns the elasticity and the normals ``(k, 3)`` (global; None for the Voigt mean)."""
    fractions = np.asarray(fractions)
    if rule == "voigt":
        return np.einsum("pk,pkij->kij", fractions, phases), None
    cut = np.minimum(np.argmax(fractions > 1e-12, axis=0), len(masks) - 1)
    normals = cut_normals(x, w, masks[0])
    for i, m in enumerate(masks[1:], start=1):
        normals = np.where((cut == i)[:, None], cut_normals(x, w, m), normals)
    normals = normals @ np.asarray(R).T
    return laminate(phases, fractions, normals), normals


def check_layer(interface, thickness, modulus, mixing):
    """Thickness (mm) and modulus (MPa) of the interface layer (None, None unless ``interface="layer"``),
    validated against :data:`LAYER_THICKNESS_RANGE` and :data:`LAYER_MODULUS_RANGE`."""
    if interface != "layer":
        given = [f"{k} = {v!r}" for k, v in (("layer_thickness", thickness), ("layer_modulus", modulus)) if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} needs interface = 'layer' (interface = {interface!r})")
        return None, None
    if mixing not in ("laminate", "voigt"):
        raise InputError(f"mixing = {mixing!r} with interface = 'layer'; allowed: ['laminate', 'voigt']")
    values = {}
    for name, v, (lo, hi), unit, default in (
            ("layer_thickness", thickness, LAYER_THICKNESS_RANGE, "mm", DEFAULT_LAYER_THICKNESS),
            ("layer_modulus", modulus, LAYER_MODULUS_RANGE, "MPa", None)):
        if v is None:
            values[name] = default if default is not None else values["layer_thickness"] / LAYER_COMPLIANCE
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{name} = {v!r}; expected a number in [{lo:g}, {hi:g}] {unit}") from None
        if not (lo <= x <= hi):
            raise InputError(f"{name} = {v!r} {unit} is out of range; allowed [{lo:g}, {hi:g}] {unit}")
        values[name] = x
    return values["layer_thickness"], values["layer_modulus"]
