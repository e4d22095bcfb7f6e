"""Image-based segments: a CT volume and a vertebra label map -> a :class:`~vertebrafe.Segment`.

Pipeline of :func:`image_segment`:

1. **Read** the CT (HU) and the label map (one integer per vertebral body, VerSe convention: T12 = 19,
   L1 = 20, ...) on the same grid, in the patient frame (RAS+, mm); crop both to the labelled levels.
2. **Calibrate**: ``rho = slope * HU + intercept`` (mg/cm^3 K2HPO4 or HA equivalent,
   :class:`~vertebrafe.image.Calibration`, given or fitted to phantom rods).
3. **vBMD per level**: the mean calibrated density of the label's voxels at least ``bmd_margin`` (3 mm)
   inside its surface (trabecular compartment without the cortex and the partial-volume rim).
4. **Geometry**: labels of whole vertebrae are first cut to the body (:mod:`~vertebrafe.image.body`).
   ``geometry="voxel"`` meshes the labels with cubes and the gaps with discs (:mod:`~vertebrafe.image.voxel`);
   the default ``"template"`` fits each labelled body with the parametric template (:mod:`~vertebrafe.image.fit`:
   frame, endplate widths and depths, rim heights, concavities), meshed with the O-grid of
   :func:`vertebrafe.segment` at the measured pose, and the discs fill the gaps between the endplates
   as they lie in the image. Regions (cortex, endplates, cancellous bone, annulus, nucleus), node and
   face sets are those of the parametric model, so every clinical operation, load and metric applies.
5. **Density mapping**: the calibrated density is first extended from the interior of each label
   (voxels more than ``pv_margin`` inside) outward by nearest-interior-voxel values, removing the
   partial-volume blend with the cortex and the surroundings. Inside each label the density is first
   averaged by a Gaussian of SD ``density_scale`` (1.5 mm: the continuum scale of cancellous bone, several
   trabecular spacings), normalised by the label's smoothed interior so that nothing outside enters: the
   field no longer depends on the element size. Each cancellous cell then takes the mean
   at its eight Gauss points (trilinear) as its own vBMD (cell field ``bmd``) and its elasticity from the
   density-modulus law of the MaterialSet. The cortical shell (thinner than a voxel) takes the modulus of
   its level's vBMD as in the parametric model; endplates and discs take the MaterialSet's values. (The
   voxel geometry maps the density onto every bone cell and laminates the shell into the outer cells.)
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import InputError
from .body import ARCH_RADIUS, vertebral_body
from .calibration import Calibration, fit_from_rods
from .fit import fit_vertebra
from .volume import VERSE_LABELS, Image, read_image

__all__ = ["image_segment", "level_bmd", "as_calibration", "DEFAULT_BMD_MARGIN", "DEFAULT_PV_MARGIN",
           "DEFAULT_DENSITY_SCALE"]

#: Depth (mm) below a label's surface from which voxels count for the vBMD of the level.
DEFAULT_BMD_MARGIN = 3.0
#: Depth (mm) below a label's surface within which voxel densities are replaced by the nearest deeper
#: voxel's before they are mapped onto cells (partial volume with the cortex and the surroundings).
DEFAULT_PV_MARGIN = 2.0
#: Standard deviation (mm) of the Gaussian over which the density is averaged before it is mapped onto cells:
#: the continuum scale of cancellous bone, a volume of three to five trabecular spacings (Harrigan et al.
#: 1988), about 5 mm for the 1-1.5 mm spacing of osteoporotic bone. A Gaussian of SD s averages white noise as
#: a cube of edge 2 sqrt(pi) s = 3.54 s does (the same noise-equivalent volume): 1.5 mm <-> a 5.3 mm cube.
#: The cells' densities then no longer depend on the element size (0: each cell samples the image itself).
DEFAULT_DENSITY_SCALE = 1.5
_CROP_PAD = 8.0       # mm of image kept around the labelled levels
_BMD_CLIP = (1.0, 400.0)


def _as_image(x, what):
    if isinstance(x, Image):
        return x
    if isinstance(x, (str, os.PathLike)):
        return read_image(x)
    raise InputError(f"{what} = {x!r}; expected a vertebrafe.image.Image or a path (.nii, .nii.gz, DICOM dir)")


def as_calibration(calibration, ct=None):
    """A :class:`Calibration` from one, from ``{"slope", "intercept"[, "material"]}`` or from
    ``{"rods": image or path, "densities": {label: mg/cm^3}[, "material"]}`` (fitted on ``ct``)."""
    if isinstance(calibration, Calibration):
        return calibration
    if isinstance(calibration, dict):
        c = dict(calibration)
        material = c.pop("material", "K2HPO4")
        if "rods" in c:
            if ct is None:
                raise InputError("calibration from rods needs the CT image")
            rods = _as_image(c.pop("rods"), "calibration rods")
            dens = c.pop("densities", None)
            if not dens:
                raise InputError("calibration: 'rods' needs 'densities' = {rod label: mg/cm^3}")
            if c:
                raise InputError(f"calibration: unknown keys {sorted(c)}; allowed rods, densities, material")
            rods = rods.on_grid_of(ct)
            if rods is None:
                raise InputError("calibration rods image is not on the CT grid (the same voxel centres, in any "
                                 "axis order)")
            return fit_from_rods(ct, rods, {int(k): float(v) for k, v in dict(dens).items()}, material)
        unknown = sorted(set(c) - {"slope", "intercept"})
        if unknown or not {"slope", "intercept"} <= set(c):
            raise InputError(f"calibration = {calibration!r}; expected slope and intercept (mg/cm^3 per HU, "
                             f"mg/cm^3) or rods and densities")
        return Calibration(c["slope"], c["intercept"], material)
    raise InputError(f"calibration = {calibration!r}; expected a Calibration, {{'slope': ..., 'intercept': ...}} "
                     f"or {{'rods': ..., 'densities': {{...}}}}")


def _align(labels, ct):
    """``labels`` on the CT grid (re-indexed if the grids differ only in axis order or direction)."""
    aligned = labels.on_grid_of(ct)
    if aligned is None:
        raise InputError(f"ct {ct.shape} and labels {labels.shape} are not on the same grid (the same voxel "
                         f"centres, in any axis order); resample the label map onto the CT")
    return aligned


def _levels(labels, levels, label_values):
    present = {int(v) for v in np.unique(labels.array) if v}
    names = {v: k for k, v in label_values.items()}
    if levels is None:
        found = [names[v] for v in sorted(present) if v in names]
        if not found:
            raise InputError(f"the label map has no vertebra labels; values present: {sorted(present)}; "
                             f"expected e.g. {dict(list(label_values.items())[17:22])}")
        levels = found
    from ..anatomy import level_order

    order = level_order(levels)
    missing = [v for v in order if label_values.get(v) not in present]
    if missing:
        have = [names.get(v, v) for v in sorted(present)]
        raise InputError(f"levels {missing} are not in the label map {labels.source!r}; labelled: {have}")
    return order


def _crop(ct, labels, codes, pad):
    sel = np.isin(labels.array, codes)
    ijk = np.argwhere(sel)
    padv = np.ceil(pad / labels.spacing).astype(int)
    lo = np.maximum(ijk.min(axis=0) - padv, 0)
    hi = np.minimum(ijk.max(axis=0) + padv + 1, labels.shape)
    s = tuple(slice(a, b) for a, b in zip(lo, hi))
    A = labels.affine.copy()
    A[:3, 3] = labels.to_world(lo)
    return Image(ct.array[s], A, ct.source), Image(labels.array[s].copy(), A, labels.source)


def level_bmd(ct, labels, calibration, levels=None, bmd_margin=DEFAULT_BMD_MARGIN, label_values=VERSE_LABELS):
    """Trabecular vBMD (mg/cm^3) per vertebra: ``{level: mean calibrated density}`` over the label's voxels
    at least ``bmd_margin`` mm inside its surface."""
    from scipy.ndimage import distance_transform_edt

    ct, labels = _as_image(ct, "ct"), _as_image(labels, "labels")
    labels = _align(labels, ct)
    cal = as_calibration(calibration, ct)
    order = _levels(labels, levels, label_values)
    out = {}
    for v in order:
        m = labels.array == label_values[v]
        depth = distance_transform_edt(m, sampling=labels.spacing)
        roi = depth >= float(bmd_margin)
        if roi.sum() < 10:
            raise InputError(f"{v}: fewer than 10 voxels lie {bmd_margin:g} mm inside the label; lower bmd_margin")
        out[v] = float(cal.density(ct.array[roi]).mean())
    return out


def _disc_overrides(fl, fu):
    """Rim height and segmental angle of the disc between the fitted lower ``fl`` and upper ``fu``
    vertebrae (for the record and the number of disc layers)."""
    Rl, ol = fl.R, fl.origin
    d = fl.dimensions
    D = 0.5 * (d["superior_depth"] + d["inferior_depth"])
    tan_w = (d["anterior_height"] - d["posterior_height"]) / D
    p = (fu.origin - ol) @ Rl                                     # upper origin in the lower frame
    rim = float(p[2] - (0.5 * (d["anterior_height"] + d["posterior_height"]) + tan_w * p[1]))
    # superior endplate normals of both vertebrae, in the lower frame
    def sup_normal(f):
        dd = f.dimensions
        DD = 0.5 * (dd["superior_depth"] + dd["inferior_depth"])
        t = (dd["anterior_height"] - dd["posterior_height"]) / DD
        n = np.array([0.0, -t, 1.0])
        return f.R @ (n / np.linalg.norm(n))
    nl, nu = Rl.T @ sup_normal(fl), Rl.T @ sup_normal(fu)
    ang = math.degrees(math.atan2(-nu[1], nu[2]) - math.atan2(-nl[1], nl[2]))
    return dict(rim_height=rim, segmental_angle=ang)


def image_segment(ct, labels, levels=None, calibration=None, element_size=2.0, materials=None,
                  bmd_margin=DEFAULT_BMD_MARGIN, pv_margin=DEFAULT_PV_MARGIN, max_anisotropy=3.0,
                  label_values=VERSE_LABELS, cortex_thickness=None, endplate_thickness=None, n_cortex_layers=1,
                  disc_refinement=None, fibres=None, nucleus="solid", geometry="template", snap=True, smoothing=0,
                  arch_radius=ARCH_RADIUS, nucleus_prepressure=None, density_scale=DEFAULT_DENSITY_SCALE):
    """A :class:`~vertebrafe.Segment` from a CT scan and its vertebra label map (see the module docstring).

    Parameters
    ----------
    ct, labels : Image or path
        CT in HU and the label map on the same grid (``.nii``/``.nii.gz`` files or DICOM series for the CT).
    levels : sequence of str or str, optional
        Consecutive vertebrae to model (``"T12-L2"``); default every labelled vertebra.
    calibration : Calibration or dict
        HU -> equivalent density (see :func:`as_calibration`). Required.
    element_size : float
        Target element size (mm), as in :func:`vertebrafe.segment`.
    materials : MaterialSet, optional
        Material choices (law, anisotropy, disc and cement materials); its ``bmd`` is replaced by the
        image's per-level and per-cell values. Default ``MaterialSet``.
    bmd_margin, pv_margin : float
        Depths (mm) below the label surface for the vBMD region and for the partial-volume correction.
    max_anisotropy : float
        Largest allowed ratio of voxel edge lengths.
    label_values : dict
        ``{vertebra: label}``; default VerSe (:data:`~vertebrafe.image.VERSE_LABELS`).
    cortex_thickness, endplate_thickness, n_cortex_layers, disc_refinement, fibres, nucleus
        As in :func:`vertebrafe.segment` (not measurable at clinical CT resolution; defaults the same).
        The voxel geometry takes the two thicknesses; the others belong to the template.
    geometry : ``"template"`` or ``"voxel"``
        ``"template"`` (default): the parametric O-grid fitted to each label; every clinical operation
        applies. ``"voxel"``: cubes of ``element_size`` inside the labels, discs in the gaps
        (:mod:`~vertebrafe.image.voxel`); the label's own shape, simulate / measure / studies only.
    snap, smoothing
        Voxel geometry: surfaces moved to their sub-cell position along the spine axis; Taubin smoothing
        passes over the outer surface (see :mod:`~vertebrafe.image.voxel`). Without both, every cell is the
        same cube and the assembly takes its voxel fast path.
    arch_radius : float
        Radius (mm) of the ball that cuts a whole-vertebra label to its body (:mod:`~vertebrafe.image.body`).
    nucleus_prepressure : float or None
        As in :func:`vertebrafe.segment`, with both geometries: None (the default) gives every nucleus the lying
        pressure :data:`~vertebrafe.anatomy.segment.LYING_PREPRESSURE` (0.10 MPa) where the discs have nucleus
        cells, 0 where there are none; 0: stress-free discs at rest.

    density_scale : float
        Standard deviation (mm, [0, 10]) of the Gaussian average of the partial-volume corrected density
        inside each label before it is mapped onto cells (:data:`DEFAULT_DENSITY_SCALE`, the continuum scale
        of cancellous bone); 0: each cell takes the image at its own sampling points, so the spread of the
        cells' densities grows as the cells shrink.

    Returns
    -------
    Segment
        ``materials`` a :class:`~vertebrafe.materials.LevelMaterials` with the measured vBMD per level;
        cell field ``bmd`` (mg/cm^3: own value in cancellous cells, the level's in cortical cells, NaN
        elsewhere); ``source`` a dict with the files, calibration, vBMD, fit residuals and clipped cells.
    """
    from scipy.ndimage import distance_transform_edt

    from ..anatomy import DEFAULT_CORTEX_THICKNESS, DEFAULT_ENDPLATE_THICKNESS, level_dimensions, segment
    from ..anatomy.disc import DISC_REFINEMENT
    from ..anatomy.segment import check_prepressure, resolve_prepressure
    from ..materials import LevelMaterials, MaterialSet

    ct, labels = _as_image(ct, "ct"), _as_image(labels, "labels")
    if calibration is None:
        raise InputError("calibration is required: give Calibration(slope, intercept), {'slope': ..., "
                         "'intercept': ...} or {'rods': ..., 'densities': {...}}")
    labels = _align(labels, ct)
    ct.check_spacing(max_anisotropy)
    if not np.issubdtype(labels.array.dtype, np.integer):
        lab = np.rint(labels.array)
        if not np.allclose(lab, labels.array):
            raise InputError(f"labels {labels.source!r} hold non-integer values; expected one integer per vertebra")
        labels = Image(lab.astype(np.int32), labels.affine, labels.source)
    cal = as_calibration(calibration, ct)
    for name, v in (("bmd_margin", bmd_margin), ("pv_margin", pv_margin)):
        if not (np.isfinite(float(v)) and 0.0 <= float(v) <= 20.0):
            raise InputError(f"{name} = {v!r} mm; allowed [0, 20]")
    try:
        density_scale = float(density_scale)
    except (TypeError, ValueError):
        raise InputError(f"density_scale = {density_scale!r} mm; expected a number in [0, 10]") from None
    if not (np.isfinite(density_scale) and 0.0 <= density_scale <= 10.0):
        raise InputError(f"density_scale = {density_scale!r} mm; allowed [0, 10] (the SD of the Gaussian average "
                         f"of the density; 0: none)")
    if materials is not None and not isinstance(materials, MaterialSet):
        raise InputError(f"materials = {materials!r}; expected a MaterialSet or None")
    if geometry not in ("template", "voxel"):
        raise InputError(f"geometry = {geometry!r}; allowed: 'template', 'voxel'")
    if geometry == "voxel" and (fibres or nucleus != "solid"):
        raise InputError(f"fibres = {fibres!r}, nucleus = {nucleus!r}: annulus fibres and the fluid nucleus need "
                         f"the layered discs of geometry='template'; the voxel geometry takes fibres=None, "
                         f"nucleus='solid'")
    if nucleus_prepressure is not None:
        check_prepressure(nucleus_prepressure)
    order = _levels(labels, levels, label_values)
    codes = [label_values[v] for v in order]
    ct_c, lab_c = _crop(ct, labels, codes, _CROP_PAD)
    arch = {}
    for v, c in zip(order, codes):
        m = lab_c.array == c
        body = vertebral_body(m, lab_c.spacing, arch_radius, name=v)
        lab_c.array[m & ~body] = 0
        arch[v] = float(np.count_nonzero(m & ~body) * lab_c.voxel_volume / 1000.0)
    rho = cal.density(ct_c.array)

    # per-level vBMD and the partial-volume corrected density
    bone = np.isin(lab_c.array, codes)
    depth = distance_transform_edt(bone, sampling=lab_c.spacing)
    bmd = {}
    for v, c in zip(order, codes):
        roi = (lab_c.array == c) & (depth >= float(bmd_margin))
        if roi.sum() < 10:
            raise InputError(f"{v}: fewer than 10 voxels lie {bmd_margin:g} mm inside the label; lower bmd_margin")
        bmd[v] = float(rho[roi].mean())
        if not _BMD_CLIP[0] < bmd[v] <= _BMD_CLIP[1]:
            raise InputError(f"{v}: measured vBMD {bmd[v]:.4g} mg/cm^3 is outside (0, 400]; check the calibration "
                             f"{cal} and that the CT is in HU")
    interior = bone & (depth > float(pv_margin))
    if density_scale > 0.0:
        rho = _smooth_inside(rho, lab_c.array, codes, interior, lab_c.spacing, density_scale)
    idx = distance_transform_edt(~interior, return_distances=False, return_indices=True)
    rho_c = rho[tuple(idx)]

    # geometry: fitted template per vertebra, placed at its measured pose
    fits = {v: fit_vertebra(lab_c, lab_c.array == c, v) for v, c in zip(order, codes)}
    if geometry == "voxel":
        from .voxel import voxel_segment

        base = materials if materials is not None else MaterialSet(bmd=float(np.mean(list(bmd.values()))))
        seg, info = voxel_segment(lab_c, rho_c, order, codes, fits, float(element_size), base, bmd,
                                  DEFAULT_CORTEX_THICKNESS if cortex_thickness is None else cortex_thickness,
                                  DEFAULT_ENDPLATE_THICKNESS if endplate_thickness is None else endplate_thickness,
                                  snap=snap, smoothing=smoothing)
        seg.nucleus_prepressure = resolve_prepressure(seg, nucleus_prepressure)
        seg.source = _source(ct, labels, cal, bmd, bmd_margin, pv_margin, density_scale, fits, arch, info)
        return seg
    overrides = {v: f.dimensions for v, f in fits.items()}
    for up, lo in zip(order[:-1], order[1:]):
        overrides[f"{up}-{lo}"] = _disc_overrides(fits[lo], fits[up])
    for name, ov in overrides.items():
        try:
            level_dimensions(name, **ov)
        except InputError as e:
            raise InputError(f"{name}: the dimensions fitted to the image are outside the model's ranges "
                             f"({e}); fitted: { {k: round(x, 2) for k, x in ov.items()} }") from None
    kw = dict(element_size=element_size, overrides=overrides, frames={v: (f.R, f.origin) for v, f in fits.items()},
              cortex_thickness=DEFAULT_CORTEX_THICKNESS if cortex_thickness is None else cortex_thickness,
              endplate_thickness=DEFAULT_ENDPLATE_THICKNESS if endplate_thickness is None else endplate_thickness,
              n_cortex_layers=n_cortex_layers,
              disc_refinement=DISC_REFINEMENT if disc_refinement is None else disc_refinement, fibres=fibres,
              nucleus=nucleus, nucleus_prepressure=nucleus_prepressure)
    seg = segment(order, **kw)

    # density onto cells
    mesh = seg.mesh
    from ..elements import hex8_shape

    g = 1.0 / math.sqrt(3.0)
    xi = np.array([[a, b, c] for c in (-g, g) for b in (-g, g) for a in (-g, g)])
    N = np.asarray(hex8_shape(xi))                                       # (8 points, 8 nodes)
    rname = mesh.tag_names["region"]
    lname = mesh.tag_names["level"]
    canc = np.isin(mesh.cell_data["region"], [k for k, n in rname.items() if n == "cancellous"])
    cort = np.isin(mesh.cell_data["region"], [k for k, n in rname.items() if n == "cortex"])
    gp = np.einsum("qa,mai->mqi", N, mesh.points[mesh.cells[canc]])
    dens = lab_c.sample(gp.reshape(-1, 3), values=rho_c, order=1, fill=np.nan).reshape(-1, 8).mean(axis=1)
    if np.isnan(dens).any():
        raise InputError(f"{int(np.isnan(dens).sum())} cancellous cells lie outside the image; the labels touch "
                         f"the image border")
    clipped = int(np.count_nonzero((dens <= _BMD_CLIP[0]) | (dens > _BMD_CLIP[1])))
    field = np.full(mesh.n_cells, np.nan)
    field[canc] = np.clip(dens, _BMD_CLIP[0], _BMD_CLIP[1])
    level_code = {n: k for k, n in lname.items()}
    for v in order:
        sel = cort & (mesh.cell_data["level"] == level_code[v])
        field[sel] = bmd[v]
    mesh.set_cell_data("bmd", field)
    base = materials if materials is not None else MaterialSet(bmd=float(np.mean(list(bmd.values()))))
    seg = seg.with_materials(LevelMaterials(base, bmd))
    seg.source = _source(ct, labels, cal, bmd, bmd_margin, pv_margin, density_scale, fits, arch,
                         dict(geometry="template", clipped_cells=clipped))
    return seg


def _smooth_inside(rho, lab, codes, interior, spacing, sigma):
    """``rho`` with its values in ``interior`` replaced by their Gaussian average (SD ``sigma`` mm, per axis in
    voxels for anisotropic grids) over the interior of the same label only: a normalised convolution, so the
    partial-volume rim, the cortex, the discs and the next vertebra do not enter. Values elsewhere are kept."""
    from scipy.ndimage import gaussian_filter

    s = [float(sigma) / float(d) for d in spacing]
    out = np.array(rho, dtype=float, copy=True)
    for c in codes:
        w = interior & (lab == c)
        if not w.any():
            continue
        wf = w.astype(float)
        num = gaussian_filter(np.where(w, out, 0.0), s, mode="constant", cval=0.0)
        den = gaussian_filter(wf, s, mode="constant", cval=0.0)
        out[w] = num[w] / den[w]
    return out


def _source(ct, labels, cal, bmd, bmd_margin, pv_margin, density_scale, fits, arch, info):
    """``Segment.source`` of an image-based segment."""
    return {
        "kind": "image", "ct": ct.source, "labels": labels.source,
        "calibration": dict(slope=cal.slope, intercept=cal.intercept, material=cal.material, r2=cal.r2,
                            n_rods=cal.n_rods),
        "bmd": dict(bmd), "bmd_margin_mm": float(bmd_margin), "pv_margin_mm": float(pv_margin),
        "density_scale_mm": float(density_scale),
        "spacing_mm": [float(s) for s in ct.spacing], "arch_removed_mL": dict(arch),
        "fit": {v: dict(lateral_tilt_deg=f.lateral_tilt_deg, superior_shift_mm=f.superior_shift_mm,
                        rim_rms_mm=f.rim_rms_mm, voxels=f.n_voxels) for v, f in fits.items()},
        **info,
    }
