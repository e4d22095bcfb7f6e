"""Synthetic QCT phantoms drawn from the parametric model, to test and demonstrate the image path.

:func:`phantom` voxelises a parametric segment (:func:`vertebrafe.segment`) in its global frame (which
becomes the patient frame, RAS+, mm): every voxel is the mean over ``supersample**3`` points of the
tissue CT numbers there (partial volume), then blurred by a Gaussian point-spread function and given
white Gaussian noise. Tissues: trabecular bone at the vertebra's vBMD, a cortical shell and bony
endplates at ``cortical_density`` (both converted to HU by the phantom's ``calibration``), disc and soft
tissue at fixed CT numbers. Below the patient (posterior) lie calibration rods of known K2HPO4
density. The label map marks each vertebral body with its VerSe label (T12 = 19, L1 = 20, ...) where
at least half of a voxel lies in it.

The geometry is the model's: endplate surfaces and the lateral wall of each body as in
:mod:`vertebrafe.anatomy.vertebra` (the wall's outline at height fraction ``t`` is the radial blend of
the inferior and superior outlines, which differs from the mesh's loft by much less than a voxel).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .calibration import Calibration
from .volume import Image, label_of, save_dicom_series, save_nifti

__all__ = ["Phantom", "phantom", "PHANTOM_CALIBRATION"]

#: Calibration of the synthetic scanner (illustrative K2HPO4 line: water 0 HU ~ 0 mg/cm^3, about
#: 1.3 HU per mg/cm^3) [assumption].
PHANTOM_CALIBRATION = Calibration(slope=0.78, intercept=-1.5)
#: CT numbers (HU) of the soft tissues [assumption: typical unenhanced values].
DISC_HU, TISSUE_HU = 90.0, 40.0
#: Equivalent density (mg/cm^3) of the cortical shell and bony endplates [assumption].
CORTICAL_DENSITY = 800.0
#: Rod densities (mg/cm^3 K2HPO4), radius (mm) and gap below the vertebrae (mm).
ROD_DENSITIES = (0.0, 50.0, 100.0, 200.0)
ROD_RADIUS, ROD_GAP = 4.0, 8.0


@dataclass
class Phantom:
    """A synthetic scan: ``ct`` (HU), ``labels`` (VerSe vertebra labels), ``rods`` (rod number 1, 2, ...),
    ``rod_densities`` ``{rod number: mg/cm^3}``, the true ``calibration``, the vBMD per vertebra ``bmd``,
    the parametric ``segment`` it was drawn from and the written ``paths`` (if any)."""

    ct: Image
    labels: Image
    rods: Image
    rod_densities: dict
    calibration: Calibration
    bmd: dict
    segment: object
    paths: dict = field(default_factory=dict)


class _Tissues:
    """CT number, vertebra index (-1: none) and clearance (mm, a lower estimate of the distance to the
    nearest tissue interface) of points of the segment."""

    def __init__(self, seg, geos, hu_trab, hu_cort, pad):
        self.seg, self.geos, self.hu_trab, self.hu_cort = seg, geos, hu_trab, hu_cort
        self.boxes = {}
        for v in seg.levels:                         # local bounding boxes (mm) of the bodies, padded
            d = seg.dimensions[v]
            half = 0.5 * max(d.superior_width, d.inferior_width, 1.3 * d.superior_depth, 1.3 * d.inferior_depth)
            top = max(d.anterior_height, d.posterior_height) + half * abs(geos[v].tan_wedge)
            self.boxes[v] = (half + 1.0 + pad, -1.0 - pad, top + 1.0 + pad)

    def __call__(self, p):
        seg, order = self.seg, self.seg.levels
        n = p.shape[0]
        val = np.full(n, TISSUE_HU)
        which = np.full(n, -1, dtype=np.int64)
        clear = np.full(n, np.inf)
        loc, near = {}, {}
        for i, v in enumerate(order):
            R, o = seg.frames[v]
            loc[v] = (p - o) @ R
            half, zlo, zhi = self.boxes[v]
            k = np.flatnonzero((np.abs(loc[v][:, :2]).max(axis=1) <= half) & (loc[v][:, 2] >= zlo)
                               & (loc[v][:, 2] <= zhi))
            near[v] = k
            geo, q = self.geos[v], loc[v][k]
            xy, z = q[:, :2], q[:, 2]
            theta = np.arctan2(xy[:, 1], xy[:, 0])
            r = np.hypot(xy[:, 0], xy[:, 1])
            t = np.clip(z / geo.rim_z(xy[:, 1]), 0.0, 1.0)
            lat = (1.0 - t) * geo.inferior.radius(theta) + t * geo.superior.radius(theta) - r
            bot, top = z - geo.z_inferior(xy), geo.z_superior(xy) - z
            inside = (lat >= 0) & (bot >= 0) & (top >= 0)
            ct, et = seg.cortex_thickness, seg.endplate_thickness
            shell = inside & ((lat < ct) | (bot < et) | (top < et))
            val[k[inside]] = self.hu_trab[v]
            val[k[shell]] = self.hu_cort
            which[k[inside]] = i
            c = np.minimum.reduce([np.abs(lat), np.abs(lat - ct), np.abs(bot), np.abs(bot - et), np.abs(top),
                                   np.abs(top - et)])
            clear[k] = np.minimum(clear[k], c)
        for up, lo_v in zip(order[:-1], order[1:]):
            half = self.boxes[lo_v][0]
            k = np.flatnonzero((which < 0) & (np.abs(loc[lo_v][:, :2]).max(axis=1) <= half)
                               & (loc[lo_v][:, 2] >= -1.0) & (loc[up][:, 2] <= self.boxes[up][0]))
            gl, gu = self.geos[lo_v], self.geos[up]
            xl, xu = loc[lo_v][k, :2], loc[up][k, :2]
            rl, ru = gl.superior.rho(xl), gu.inferior.rho(xu)
            zl, zu = loc[lo_v][k, 2] - gl.z_superior(xl), gu.z_inferior(xu) - loc[up][k, 2]
            disc = (zl >= 0) & (rl <= 1.0) & (zu >= 0) & (ru <= 1.0)
            val[k[disc]] = DISC_HU
            R_eq = 0.25 * (gl.dims.superior_width + gl.dims.superior_depth)
            c = np.minimum.reduce([np.abs(1.0 - rl) * R_eq, np.abs(1.0 - ru) * R_eq, np.abs(zl), np.abs(zu)])
            clear[k] = np.minimum(clear[k], c)
        return val, which, clear


def phantom(levels, bmd, spacing=1.0, element_size=2.0, noise=15.0, blur=0.5, supersample=3, margin=6.0,
            calibration=PHANTOM_CALIBRATION, cortical_density=CORTICAL_DENSITY, rod_densities=ROD_DENSITIES,
            seed=0, path=None, format="nifti", **segment_kw):
    """A synthetic QCT scan and label map of the parametric segment ``levels``.

    Parameters
    ----------
    levels : str or sequence of str
        Vertebrae (``"T12-L2"``).
    bmd : float or dict
        Trabecular vBMD (mg/cm^3 K2HPO4), one value or ``{vertebra: value}``.
    spacing : float or (3,) float
        Voxel size (mm).
    element_size : float
        Element size of the parametric reference ``segment`` returned with the phantom (mm); the
        voxelised geometry does not depend on it. The reference is the body-disc stack
        (``posterior=False``): the phantom draws no posterior elements.
    noise : float
        Standard deviation of the white noise (HU).
    blur : float
        Standard deviation of the Gaussian point-spread function (mm); 0 for none.
    supersample : int
        Sub-points per voxel edge for the partial-volume average (>= 1).
    margin : float
        Soft tissue around the model (mm).
    calibration : Calibration
        The scanner's true line, used to turn densities into CT numbers.
    cortical_density : float
        Equivalent density of the cortical shell and bony endplates (mg/cm^3).
    rod_densities : sequence of float
        K2HPO4 densities of the calibration rods (mg/cm^3), placed below the vertebrae.
    seed : int
        Noise seed.
    path : str, optional
        A new directory to write ``ct.nii.gz``, ``labels.nii.gz`` and ``rods.nii.gz`` into (with
        ``format="dicom"`` the CT is a DICOM series in ``ct/``); never overwrites.
    **segment_kw
        Passed to :func:`vertebrafe.segment` (``overrides``, ``scale``, ``cortex_thickness``,
        ``endplate_thickness``).

    Returns
    -------
    Phantom
    """
    from scipy.ndimage import gaussian_filter

    from ..anatomy import VertebraGeometry, segment

    seg = segment(levels, bmd=bmd, element_size=element_size, posterior=False, **segment_kw)
    order = seg.levels
    per = dict(seg.materials.bmd) if isinstance(seg.materials.bmd, dict) else {v: float(bmd) for v in order}
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (3,)).copy()
    if not (np.all(np.isfinite(sp)) and np.all(sp > 0.05) and np.all(sp <= 5.0)):
        raise InputError(f"spacing = {spacing!r} mm; allowed (0.05, 5] mm per axis")
    n_sub = int(supersample)
    if not 1 <= n_sub <= 8:
        raise InputError(f"supersample = {supersample!r}; allowed integers 1-8")
    for name, v, lo, hi in (("noise", noise, 0.0, 1000.0), ("blur", blur, 0.0, 10.0), ("margin", margin, 0.0, 100.0),
                            ("cortical_density", cortical_density, 0.0, 2000.0)):
        if not (np.isfinite(float(v)) and lo <= float(v) <= hi):
            raise InputError(f"{name} = {v!r}; allowed [{lo:g}, {hi:g}]")
    if format not in ("nifti", "dicom"):
        raise InputError(f"format = {format!r}; allowed 'nifti' or 'dicom'")

    pts = seg.mesh.points
    lo, hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
    rods_d = [float(d) for d in rod_densities]
    rod_y = pts[:, 1].min() - ROD_GAP - ROD_RADIUS
    if rods_d:
        lo[1] = min(lo[1], rod_y - ROD_RADIUS - margin)
    shape = tuple(int(np.ceil((h - l) / s)) + 1 for l, h, s in zip(lo, hi, sp))
    affine = np.diag([*sp, 1.0])
    affine[:3, 3] = lo
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    centres = lo + grid * sp
    offs = ((np.arange(n_sub) + 0.5) / n_sub - 0.5)
    sub = np.stack(np.meshgrid(offs, offs, offs, indexing="ij"), axis=-1).reshape(-1, 3) * sp   # (s, 3)

    geos = {v: VertebraGeometry.from_dimensions(seg.dimensions[v]) for v in order}
    hu_trab = {v: float(calibration.hu(per[v])) for v in order}
    half_diag = 0.5 * float(np.linalg.norm(sp))
    tissues = _Tissues(seg, geos, hu_trab, float(calibration.hu(cortical_density)), half_diag)
    # voxel centres first; voxels whose centre is farther than half a diagonal from every interface
    # (plus 0.5 mm for the approximate distances) are uniform, the others are averaged over sub-points
    hu, which, clear = tissues(centres)
    frac = np.zeros((len(order), centres.shape[0]))
    frac[which[which >= 0], np.flatnonzero(which >= 0)] = 1.0
    mixed = np.flatnonzero(clear <= half_diag + 0.5)
    chunk = max(1, 200000 // sub.shape[0])
    for start in range(0, mixed.size, chunk):
        idx = mixed[start:start + chunk]
        p = (centres[idx][:, None, :] + sub[None, :, :]).reshape(-1, 3)
        val, w, _ = tissues(p)
        hu[idx] = val.reshape(idx.size, -1).mean(axis=1)
        for i in range(len(order)):
            frac[i, idx] = (w == i).reshape(idx.size, -1).mean(axis=1)

    rod_img = np.zeros(centres.shape[0], dtype=np.int16)
    rod_x = (np.arange(len(rods_d)) - 0.5 * (len(rods_d) - 1)) * (2.0 * ROD_RADIUS + 4.0)
    for k, (x, d) in enumerate(zip(rod_x, rods_d)):
        r = np.hypot(centres[:, 0] - x, centres[:, 1] - rod_y)
        core = r <= ROD_RADIUS
        hu[core] = float(calibration.hu(d))
        rod_img[r <= ROD_RADIUS - 1.5 * sp[:2].max()] = k + 1           # measurement region: away from the wall
    hu = hu.reshape(shape)
    if blur > 0:
        hu = gaussian_filter(hu, sigma=float(blur) / sp, mode="nearest")
    hu = hu + np.random.default_rng(seed).normal(0.0, float(noise), shape)
    best = frac.argmax(axis=0)
    codes = np.array([label_of(v) for v in order], dtype=np.int16)
    labels = np.where(frac.max(axis=0) >= 0.5, codes[best], 0).astype(np.int16).reshape(shape)

    out = Phantom(ct=Image(hu.astype(np.float32), affine, "phantom"), labels=Image(labels, affine, "phantom labels"),
                  rods=Image(rod_img.reshape(shape), affine, "phantom rods"),
                  rod_densities={k + 1: d for k, d in enumerate(rods_d)}, calibration=calibration, bmd=per,
                  segment=seg)
    if path is not None:
        p = os.fspath(path)
        if os.path.exists(p):
            raise InputError(f"path = {p!r} exists; phantom writes into a new directory (it never overwrites)")
        os.makedirs(p)
        if format == "dicom":
            out.paths["ct"] = save_dicom_series(out.ct, os.path.join(p, "ct"))
        else:
            out.paths["ct"] = save_nifti(out.ct, os.path.join(p, "ct.nii.gz"))
        out.paths["labels"] = save_nifti(out.labels, os.path.join(p, "labels.nii.gz"))
        out.paths["rods"] = save_nifti(out.rods, os.path.join(p, "rods.nii.gz"))
    return out
