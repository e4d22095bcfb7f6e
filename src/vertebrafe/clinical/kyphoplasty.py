"""Balloon kyphoplasty: height restoration, a compact PMMA bolus in the balloon cavity and a rim of
compacted cancellous bone.

1. **Restoration** (fractured levels): the fracture map of :mod:`vertebrafe.clinical.fracture` is
   re-applied to the intact geometry kept in the fracture record with the residual height loss
   ``(1 - restoration) * height_loss``, so a fraction ``restoration`` of the lost (wedge: anterior;
   biconcave: middle; crush: every) height is regained, the levels above follow as a rigid body and the
   kyphotic angle is corrected accordingly. ``restoration = 1`` returns the intact node coordinates
   exactly (copied from the record).
2. **Cavity**: one or two inflated-balloon ellipsoids (see :mod:`vertebrafe.clinical.cement` for the
   partial-volume sampling; shapes: two balloons at ``x = +-0.18 W``, ``y = D / 6`` converging 15 deg,
   semi-axes ``s * (0.15 W, 0.25 D, 0.30 H)``; one balloon on the midline, semi-axes
   ``s * (0.22 W, 0.28 D, 0.30 H)`` [assumption]) scaled so that the cavity volume in the cancellous
   cells equals ``volume``. The cavity is filled with compact PMMA (``MaterialSet.cement``), no
   interdigitation: cell field ``cement_fraction``.
3. **Rim**: the shell between the cavity ellipsoids and the ellipsoids with semi-axes enlarged by
   ``rim_thickness`` (mm), within cancellous cells: cell field ``compacted_fraction``, modulus
   ``rim_modulus_factor`` x the undamaged cancellous elasticity (default 2.0, MaterialSet.compacted_factor:
   no published value, a sensitivity parameter after Purcell 2013).

The cavity is confined to the central ``vertical_extent`` of the local body height (default 0.7, as for
vertebroplasty; 1 lets the balloons reach the endplates); the rim may extend ``rim_thickness`` beyond.

Per cut cell the three phases (host, compacted rim ``k C_host / (1 - damage)``, PMMA) are combined by
``mixing`` (:mod:`vertebrafe.clinical.mixing`; default the laminate rule with the normal of the cut
surface, which converges under mesh refinement; ``"voigt"`` for comparison). Cells with ``f_c >= 0.5``
are tagged ``cement``, rim cells with ``f_r >= 0.5`` ``compacted_bone``.

An unfractured level may be treated (prophylactic augmentation); nothing is restored then and
``restoration`` must be 0 or left at its default.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ..elasticity import isotropic
from ._common import check_level, derive, history, make_operation, operations_of
from .augment import (DEFAULT_VERTICAL_EXTENT, Sampler, body_frame_sizes, bolus_geometry, check_cement_modulus,
                      check_centres, check_extent, check_fits, check_offset, check_samples, check_untreated,
                      endplate_distances, level_cells, region_code, resolve_volume, vertical_mask)
from .mixing import cut_normals, laminate
from .fracture import Deformer
from .measure import measure

__all__ = ["kyphoplasty", "DEFAULT_RESTORATION", "DEFAULT_BALLOON_VOLUME_ML", "DEFAULT_RIM_THICKNESS",
           "DEFAULT_RIM_MODULUS_FACTOR"]

#: Fraction of the lost height regained [assumption: clinical series report partial restoration, e.g.
#: +17.5 % anterior height and 7.0 deg kyphosis correction (Asian Spine J 2010), 4.8 deg mean correction
#: (Papanastassiou 2012); literature.md 5.4].
DEFAULT_RESTORATION = 0.5
#: Balloon/cement volume per balloon (mL): about 2.4 cc per side in FREE (Van Meirhaeghe 2013).
DEFAULT_BALLOON_VOLUME_ML = 2.4
#: Compacted-bone rim thickness (mm) [assumption; Purcell 2013: results sensitive to it].
DEFAULT_RIM_THICKNESS = 1.0
#: Rim modulus / undamaged cancellous modulus (MaterialSet.compacted_factor; assumption, Purcell 2013).
DEFAULT_RIM_MODULUS_FACTOR = 2.0


def _restore(segment, level, restoration):
    """New points and frames of ``segment`` with ``restoration`` of the fracture of ``level`` undone."""
    op = operations_of(segment, level, "fracture")[-1]
    later = history(segment)[history(segment).index(op) + 1:]
    moved = [f"{o.kind} of {o.level}" for o in later if o.kind in ("fracture", "kyphoplasty")]
    if moved:
        raise InputError(f"kyphoplasty of {level}: the geometry changed after its fracture ({moved}); restore "
                         f"{level} before fracturing or restoring other levels")
    intact_pts = op.data["intact_points"]
    intact_frames = op.data["intact_frames"]
    if restoration >= 1.0:
        return intact_pts.copy(), {k: (R.copy(), o.copy()) for k, (R, o) in intact_frames.items()}
    loss = (1.0 - restoration) * op.parameters["height_loss"]
    mesh = segment.mesh.copy()
    mesh.points = intact_pts.copy()
    intact = dataclasses.replace(segment, mesh=mesh, frames=dict(intact_frames))
    d = Deformer(intact, level)
    theta, tau, delta = d.solve(op.parameters["type"], loss)
    pts = d.global_points(theta, tau, delta, intact_pts)
    frames = dict(intact_frames)
    frames.update(d.frames(theta, tau))
    return pts, frames


def kyphoplasty(segment, level, restoration=None, volume=None, balloons=2, rim_thickness=DEFAULT_RIM_THICKNESS,
                rim_modulus_factor=DEFAULT_RIM_MODULUS_FACTOR, offset=(0.0, 0.0, 0.0), cement_modulus=None,
                samples=4, mixing="laminate", vertical_extent=DEFAULT_VERTICAL_EXTENT):
    """Balloon kyphoplasty of ``level``; returns a new Segment.

    Parameters
    ----------
    segment : Segment
    level : str
    restoration : float in [0, 1], optional
        Fraction of the lost height regained; default :data:`DEFAULT_RESTORATION` (0.5) for a fractured
        level, 0 for an unfractured one (which cannot be restored: any other value raises).
    volume : float, optional
        Cavity = cement volume (mL); default 2.4 mL per balloon (FREE trial).
    balloons : {1, 2}
        Two balloons (bipedicular) or one (midline).
    rim_thickness : float
        Compacted-bone rim thickness (mm), >= 0.
    rim_modulus_factor : float
        Rim modulus / undamaged cancellous modulus, > 0.
    offset : (3,) float
        Shift (mm) of the balloons in the vertebra's local frame.
    cement_modulus : (E, nu), optional
        PMMA modulus (MPa) and Poisson ratio; default ``MaterialSet.cement``.
    samples : int
        Sub-cell samples per direction.
    mixing : {"laminate", "voigt"}
        Elasticity of the cells the cavity and rim surfaces cut.
    vertical_extent : float in (0.2, 1]
        Fraction of the local body height, centred, that the cavity may occupy.

    Returns
    -------
    Segment
        Restored geometry; cell fields ``cement_fraction`` and ``compacted_fraction``; elasticity mixed;
        ``history`` gains ``"kyphoplasty"`` with the requested and achieved volume (mL), the
        restoration, the heights (mm) and the kyphotic-angle correction (deg).
    """
    check_level(segment, level)
    fractured = bool(operations_of(segment, level, "fracture"))
    if restoration is None:
        r = DEFAULT_RESTORATION if fractured else 0.0
    else:
        try:
            r = float(restoration)
        except (TypeError, ValueError):
            raise InputError(f"restoration = {restoration!r}; expected a fraction in [0, 1]") from None
        if not (0.0 <= r <= 1.0):
            raise InputError(f"restoration = {restoration!r}; allowed range [0, 1]")
        if not fractured and r != 0.0:
            raise InputError(f"restoration = {restoration!r} but {level} is not fractured; nothing to restore "
                             "(use restoration=0 or fracture the level first)")
    if balloons not in (1, 2) or isinstance(balloons, bool):
        raise InputError(f"balloons = {balloons!r}; allowed 1 or 2")
    try:
        t = float(rim_thickness)
        k = float(rim_modulus_factor)
    except (TypeError, ValueError):
        raise InputError(f"rim_thickness = {rim_thickness!r}, rim_modulus_factor = {rim_modulus_factor!r}; "
                         "expected numbers") from None
    if not (0.0 <= t <= 10.0):
        raise InputError(f"rim_thickness = {rim_thickness!r} mm; allowed range [0, 10] mm")
    if not (k > 0.0):
        raise InputError(f"rim_modulus_factor = {rim_modulus_factor!r}; must be > 0")
    off = check_offset(offset)
    n = check_samples(samples)
    extent = check_extent(vertical_extent)
    if mixing not in ("laminate", "voigt"):
        raise InputError(f"mixing = {mixing!r}; allowed: ['laminate', 'voigt']")
    if cement_modulus is not None:
        check_cement_modulus(cement_modulus)
    check_untreated(segment, level)
    before = measure(segment, level)

    if fractured and r > 0.0:
        points, frames = _restore(segment, level, r)
    else:
        points, frames = segment.mesh.points.copy(), None
    geo_seg = segment
    if frames is not None:
        m2 = segment.mesh.copy()
        m2.points = points
        geo_seg = dataclasses.replace(segment, mesh=m2, frames={**segment.frames, **frames})

    mesh = segment.mesh
    eligible = level_cells(mesh, level) & mesh.cells_in("region", ["cancellous"])
    sampler = Sampler(geo_seg, level, points, eligible, n)
    v_default = DEFAULT_BALLOON_VOLUME_ML * balloons
    v_ml, fill = resolve_volume(segment, level, volume, None, float(sampler.volume.sum()), default=v_default)
    W, D, H, zc, yc = body_frame_sizes(geo_seg, level, points)
    centres, rots, axes = bolus_geometry("balloon2" if balloons == 2 else "balloon1", W, D, H, zc, yc, "left", off)
    check_centres(centres, off, W, D, H, zc, yc, level)
    d_inf, d_sup, hloc = endplate_distances(geo_seg, level, points, sampler)
    allowed = vertical_mask(d_inf, d_sup, hloc, extent)
    check_fits(v_ml * 1000.0, float(np.sum(sampler.w * sampler.volume[:, None] * allowed)),
               float(sampler.volume.sum()), level, "volume", v_ml, extent)
    r2 = np.where(allowed, sampler.radius2(centres, rots, axes), np.inf)
    s, _ = sampler.scale_for_volume(r2, v_ml * 1000.0)
    cav = r2 <= s * s
    if t > 0:
        outer = (sampler.radius2(centres, rots, axes * s, pad=t) <= 1.0) & vertical_mask(d_inf, d_sup, hloc,
                                                                                          extent, pad=t)
    else:
        outer = cav
    rim = outer & ~cav
    fc_sel, fr_sel = sampler.fraction(cav), sampler.fraction(rim)
    fc = np.zeros(mesh.n_cells)
    fr = np.zeros(mesh.n_cells)
    fc[sampler.cells], fr[sampler.cells] = fc_sel, fr_sel
    achieved = float(np.sum(fc_sel * sampler.volume))

    C = segment.elasticity
    E_c = nu_c = None
    if C is not None:
        if cement_modulus is not None:
            E_c, nu_c = check_cement_modulus(cement_modulus)
        elif segment.materials is not None and hasattr(segment.materials, "cement"):
            E_c, nu_c = float(segment.materials.cement.E), float(segment.materials.cement.nu)
        else:
            raise InputError("the segment's materials are not a MaterialSet; pass cement_modulus=(E MPa, nu)")
        C = C.copy()
        sel = np.flatnonzero((fc > 0) | (fr > 0))
        dmg = mesh.cell_data["damage"][sel] if "damage" in mesh.cell_data else np.zeros(sel.size)
        Ch = C[sel]
        phases = np.stack([Ch, (k / (1.0 - dmg))[:, None, None] * Ch, np.broadcast_to(isotropic(E_c, nu_c), Ch.shape)])
        fractions = np.stack([1.0 - fc[sel] - fr[sel], fr[sel], fc[sel]])
        if mixing == "voigt":
            C[sel] = np.einsum("pk,pkij->kij", fractions, phases)
        else:
            pos = np.searchsorted(sampler.cells, sel)               # sel is a subset of the sampled cells
            R = np.asarray(geo_seg.frames[level][0], dtype=float)
            x, w = sampler.x[pos], sampler.w[pos]
            whole = fc[sel] + fr[sel] >= 1.0 - 1e-12            # no host: the cut is the cavity surface
            normals = np.where(whole[:, None], cut_normals(x, w, cav[pos]), cut_normals(x, w, (cav | rim)[pos])) @ R.T
            C[sel] = laminate(phases, fractions, normals)
    tag_names = dict(mesh.tag_names["region"])
    region = mesh.cell_data["region"].copy()
    region[fr >= 0.5] = region_code(mesh, "compacted_bone", tag_names)
    region[fc >= 0.5] = region_code(mesh, "cement", tag_names)

    params = dict(restoration=r, volume_mL=v_ml, balloons=int(balloons), rim_thickness_mm=t,
                  rim_modulus_factor=k, offset_mm=tuple(off), samples=n, cement_E_MPa=E_c, cement_nu=nu_c,
                  mixing=mixing, vertical_extent=extent)
    results = dict(cement_volume_mL=achieved / 1000.0, volume_error=achieved / (v_ml * 1000.0) - 1.0,
                   fill=achieved / float(sampler.volume.sum()),
                   rim_volume_mL=float(np.sum(fr_sel * sampler.volume)) / 1000.0, balloon_scale=s)
    op = make_operation("kyphoplasty", level, params, results)
    new = derive(segment, op, points=points, elasticity=C, frames=frames,
                 cell_data={"cement_fraction": fc, "compacted_fraction": fr, "region": region},
                 tag_names={"region": tag_names})
    after = measure(new, level)
    res = dict(results, heights_before_mm=(before.anterior_height_mm, before.middle_height_mm,
                                           before.posterior_height_mm),
               heights_after_mm=(after.anterior_height_mm, after.middle_height_mm, after.posterior_height_mm),
               kyphotic_correction_deg=before.kyphotic_angle_deg - after.kyphotic_angle_deg)
    new.history = new.history[:-1] + (make_operation("kyphoplasty", level, params, res),)
    return new
