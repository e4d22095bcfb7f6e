"""Fit the parametric vertebral body to a labelled vertebra: local frame and dimensions.

For one label (a binary mask on the CT grid) :func:`fit_vertebra` finds

* the **frame**: principal axes of the label's voxels give a first estimate (smallest extent = axial,
  middle = anteroposterior); the axis is then refined to the normal of the inferior rim plane, a plane
  fitted to the inferior surface in the peripheral band of the endplate (outside the central concavity);
  the origin is the centre of that plane at mid-width and mid-depth of the inferior outline;
* the **dimensions** of :class:`~vertebrafe.anatomy.levels.VertebraDimensions`: endplate widths and
  midsagittal depths (outline extents on cross-sections at 30 % and 70 % of the height, extrapolated
  linearly to the endplates, since the lateral wall is straight between them), anterior and posterior
  rim heights (the superior rim plane at ``y = +-D/2``), and the central concavities of both endplates.

Surfaces are located where the trilinearly interpolated label mask crosses 0.5, so the fit is
sub-voxel. The outline shape itself (superellipse exponent, posterior indentation) and the cortical and
endplate thicknesses are not measured: they keep the parametric model's values (below CT resolution or
shape details the template does not have). :class:`VertebraFit` reports what the template cannot follow:
the lateral tilt of the superior rim plane, the shift of the superior outline's centre and the RMS
distance of the rim-band surface points from their planes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["VertebraFit", "fit_vertebra"]

CONCAVITY_BAND = 0.22     # rim band: columns within this fraction of the equivalent radius of the edge
SLICES = (0.3, 0.7)       # height fractions of the outline cross-sections


@dataclass(frozen=True)
class VertebraFit:
    """Frame and dimensions of one labelled vertebra.

    ``R`` ``(3, 3)`` (columns: local x, y, z in the patient frame) and ``origin`` ``(3,)`` (mm):
    ``x_patient = R @ x_local + origin``; ``dimensions`` the fitted values (mm) keyed by
    :data:`~vertebrafe.anatomy.levels.VERTEBRA_FIELDS`; ``lateral_tilt_deg`` of the superior rim plane
    (the template has none), ``superior_shift_mm`` of the superior outline centre relative to the inferior
    one (the template has none), ``rim_rms_mm`` RMS plane-fit residual of the two rim bands,
    ``n_voxels`` of the label.
    """

    R: np.ndarray
    origin: np.ndarray
    dimensions: dict
    lateral_tilt_deg: float
    superior_shift_mm: float
    rim_rms_mm: float
    n_voxels: int


def _crossings(f, step):
    """First and last position (in samples) where the profiles ``f (..., n)`` cross 0.5 (linear
    interpolation); NaN where a profile never reaches 0.5."""
    inside = f >= 0.5
    any_in = inside.any(axis=-1)
    n = f.shape[-1]
    first = np.argmax(inside, axis=-1)
    last = n - 1 - np.argmax(inside[..., ::-1], axis=-1)
    take = lambda k: np.take_along_axis(f, np.clip(k, 0, n - 1)[..., None], axis=-1)[..., 0]   # noqa: E731
    f0, f1 = take(first - 1), take(first)
    a = np.where((first > 0) & (f1 > f0), (0.5 - f0) / np.where(f1 > f0, f1 - f0, 1.0), 1.0)
    lo = (first - 1 + a) * step
    g0, g1 = take(last), take(last + 1)
    b = np.where((last < n - 1) & (g0 > g1), (g0 - 0.5) / np.where(g0 > g1, g0 - g1, 1.0), 0.0)
    hi = (last + b) * step
    return np.where(any_in, lo, np.nan), np.where(any_in, hi, np.nan)


class _Probe:
    """The label mask of one vertebra, sampled trilinearly at patient points."""

    def __init__(self, image, mask):
        self.image = image
        self.mask = mask.astype(np.float32)

    def __call__(self, xyz):
        return self.image.sample(xyz, values=self.mask, order=1, fill=0.0)


def _plane(x, y, z):
    """Least-squares ``z = a + b x + c y``: (a, b, c) and the RMS residual."""
    A = np.column_stack([np.ones_like(x), x, y])
    coef, *_ = np.linalg.lstsq(A, z, rcond=None)
    return coef, float(np.sqrt(np.mean((A @ coef - z) ** 2)))


def _columns(probe, R, origin, extent, step):
    """Bottom and top surface heights ``(nx, ny)`` (local z, mm) of the label in columns along local z."""
    (x0, x1), (y0, y1), (z0, z1) = extent
    xs, ys, zs = (np.arange(a, b + step / 2, step) for a, b in ((x0, x1), (y0, y1), (z0, z1)))
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    local = np.stack([X, Y, Z], axis=-1)
    f = probe(local @ R.T + origin)
    lo, hi = _crossings(f, step)
    return xs, ys, lo + zs[0], hi + zs[0]


def _rim_band(bottom, top, step):
    """Columns of the peripheral band that span the body from endplate to endplate (bool ``(nx, ny)``)
    and the equivalent radius of the footprint (mm).

    The band lies between 1 mm and ``CONCAVITY_BAND`` equivalent radii inside the footprint's edge;
    columns shorter than 85 % of the median central span end on a sloping lateral wall, not on both
    endplates, and are left out.
    """
    from scipy.ndimage import distance_transform_edt

    foot = np.isfinite(bottom) & np.isfinite(top)
    if foot.sum() < 20:
        raise InputError("the label is too small to fit a vertebral body (fewer than 20 columns)")
    R_eq = float(np.sqrt(foot.sum() * step * step / np.pi))
    d = distance_transform_edt(foot, sampling=step)
    span = np.where(foot, top - bottom, 0.0)
    central = foot & (d > CONCAVITY_BAND * R_eq)
    ref = float(np.median(span[central])) if central.any() else float(np.median(span[foot]))
    return foot & (d >= 1.0) & (d <= CONCAVITY_BAND * R_eq) & (span >= 0.85 * ref), R_eq


def _robust_plane(x, y, z):
    """:func:`_plane` after two rounds of dropping points more than 3 robust SDs (>= 0.25 mm) off."""
    keep = np.ones(x.size, dtype=bool)
    for _ in range(3):
        (a, b, c), rms = _plane(x[keep], y[keep], z[keep])
        res = z - (a + b * x + c * y)
        mad = 1.4826 * np.median(np.abs(res[keep] - np.median(res[keep])))
        new = np.abs(res) <= 3.0 * max(mad, 0.25)
        if new.sum() < 10 or np.array_equal(new, keep):
            break
        keep = new
    return _plane(x[keep], y[keep], z[keep])


def _extent_along(probe, R, origin, point, direction, half):
    """Positions (mm along ``direction`` from ``point``, local frame) where the mask crosses 0.5 first and last."""
    s = np.arange(-half, half + 1e-9, 0.1)
    local = point[None, :] + s[:, None] * direction[None, :]
    f = probe(local @ R.T + origin)
    lo, hi = _crossings(f[None, :], 0.1)
    return float(lo[0]) - half, float(hi[0]) - half


def fit_vertebra(image, mask, name="vertebra"):
    """Fit the parametric body to the boolean ``mask`` (CT grid of ``image``); returns :class:`VertebraFit`."""
    ijk = np.argwhere(mask)
    if ijk.shape[0] < 100:
        raise InputError(f"{name}: the label has {ijk.shape[0]} voxels; a vertebral body needs at least 100")
    X = image.to_world(ijk)
    c = X.mean(axis=0)
    w, V = np.linalg.eigh(np.cov((X - c).T))                     # ascending variance
    ez, ey = V[:, 0], V[:, 1]
    ez = ez if ez[2] >= 0 else -ez
    ey = ey if ey[1] >= 0 else -ey
    R = np.column_stack([np.cross(ey, ez), ey, ez])
    probe = _Probe(image, mask)
    step = 0.5 * float(image.spacing.min())
    origin = c.copy()
    for _ in range(3):                                          # refine the axis to the inferior rim normal
        loc = (X - origin) @ R
        ext = [(float(a) - 3.0, float(b) + 3.0) for a, b in zip(loc.min(axis=0), loc.max(axis=0))]
        xs, ys, bot, top = _columns(probe, R, origin, ext, step)
        band, R_eq = _rim_band(bot, top, step)
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        (a, b, cc), _ = _robust_plane(gx[band], gy[band], bot[band])
        n = np.array([-b, -cc, 1.0])
        n /= np.linalg.norm(n)
        z = R @ n
        origin = origin + R @ np.array([0.0, 0.0, a])
        y = R[:, 1] - (R[:, 1] @ z) * z
        y /= np.linalg.norm(y)
        R = np.column_stack([np.cross(y, z), y, z])
    # final surfaces in the refined frame; rim planes
    loc = (X - origin) @ R
    ext = [(float(a) - 3.0, float(b) + 3.0) for a, b in zip(loc.min(axis=0), loc.max(axis=0))]
    xs, ys, bot, top = _columns(probe, R, origin, ext, step)
    band, R_eq = _rim_band(bot, top, step)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    (ab, bb, cb), rms_b = _robust_plane(gx[band], gy[band], bot[band])
    origin = origin + R @ np.array([0.0, 0.0, ab])
    (at, bt, ct), rms_t = _robust_plane(gx[band], gy[band], top[band] - ab)
    H = at
    # outline extents on two cross-sections, extrapolated to the endplates
    centre = np.zeros(3)
    widths, depths, centres = [], [], []
    half = float(np.abs(ext[0]).max() + np.abs(ext[1]).max())
    for t in SLICES:
        p = np.array([centre[0], centre[1], t * H])
        for _ in range(2):
            xl, xr = _extent_along(probe, R, origin, p, np.array([1.0, 0.0, 0.0]), half)
            xm = p[0] + 0.5 * (xl + xr)
            yp, ya = _extent_along(probe, R, origin, np.array([xm, p[1], p[2]]), np.array([0.0, 1.0, 0.0]), half)
            p = np.array([xm, p[1] + 0.5 * (yp + ya), p[2]])
        widths.append(xr - xl)
        depths.append(ya - yp)
        centres.append(p[:2].copy())
    t0, t1 = SLICES
    lin = lambda v, t: v[0] + (v[1] - v[0]) * (t - t0) / (t1 - t0)      # noqa: E731
    W_inf, W_sup = lin(widths, 0.0), lin(widths, 1.0)
    D_inf, D_sup = lin(depths, 0.0), lin(depths, 1.0)
    c_inf = np.array([lin([centres[0][k], centres[1][k]], 0.0) for k in range(2)])
    c_sup = np.array([lin([centres[0][k], centres[1][k]], 1.0) for k in range(2)])
    origin = origin + R @ np.array([c_inf[0], c_inf[1], 0.0])
    shift = float(np.linalg.norm(c_sup - c_inf))
    # rim heights: the superior rim plane (re-expressed about the new origin) at y = +-D/2
    D = 0.5 * (D_inf + D_sup)
    rim = at + bt * c_inf[0] + ct * c_inf[1]
    Ha, Hp = rim + ct * 0.5 * D, rim - ct * 0.5 * D
    # central concavities: surface heights within 1.5 mm of the centre axis
    near = np.hypot(gx - c_inf[0], gy - c_inf[1]) <= 1.5
    near &= np.isfinite(bot) & np.isfinite(top)
    if not near.any():
        raise InputError(f"{name}: no label columns near the centre of the fitted endplate")
    conc_inf = float(np.mean(bot[near] - ab))
    conc_sup = float(np.mean(rim + ct * (gy[near] - c_inf[1]) - (top[near] - ab)))
    dims = dict(superior_width=W_sup, superior_depth=D_sup, inferior_width=W_inf, inferior_depth=D_inf,
                anterior_height=Ha, posterior_height=Hp, superior_concavity=max(0.0, conc_sup),
                inferior_concavity=max(0.0, conc_inf))
    return VertebraFit(R=R, origin=origin, dimensions={k: float(v) for k, v in dims.items()},
                       lateral_tilt_deg=float(np.degrees(np.arctan(bt))), superior_shift_mm=shift,
                       rim_rms_mm=float(np.hypot(rms_b, rms_t) / np.sqrt(2.0)), n_voxels=int(ijk.shape[0]))
