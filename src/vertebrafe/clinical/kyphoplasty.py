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
   semi-axes ``s * (0.15 W, 0.25 D, q 0.30 H)``; one balloon on the midline, semi-axes
   ``s * (0.22 W, 0.28 D, q 0.30 H)`` [assumption]) scaled so that the cavity volume in the cancellous
   cells equals ``volume``. The cavity is filled with compact PMMA (``MaterialSet.cement``), no
   interdigitation (BKP leaves crushed trabeculae around the cavity that the cement hardly penetrates:
   Dalton et al. 2012, Clin Interv Aging 7:525): cell field ``cement_fraction``.

   **Endplate contact** (default for a restored level): the tamp regains height only by pushing the
   endplates apart, so the inflated balloon bears on both endplates through the compacted rim. The cavity
   is then clipped ``rim_thickness`` short of each endplate (instead of the central ``vertical_extent``)
   and its vertical semi-axis factor ``q`` is solved so that the flat contact face of each balloon has
   the area ``lift_force / (balloons * inflation_pressure)``: a thin flexible balloon presses on what it
   touches with its inflation pressure, so the contact area carries the lift force at that pressure
   (defaults 110 N and 1.21 MPa = 175 psi, the mean KYPHON inflation pressure of an in vitro restoration
   of 18 osteoporotic bodies under a held 110 N load). The faces are measured where each ellipsoid reaches
   past the actual clip surfaces (the endplate surfaces less ``rim_thickness``, tilted and curved), and
   each balloon sits at the height where its top and bottom faces are equal (the parts of the body above
   and below it carry the same force at one pressure); recorded as ``contact_area_mm2`` and
   ``balloon_centres_mm``. Without contact (``restoration = 0`` or
   ``endplate_contact=False``) ``q = 1`` and the cavity stays in the central ``vertical_extent``.
3. **Rim**: the shell between the cavity ellipsoids and the ellipsoids with semi-axes enlarged by
   ``rim_thickness`` (mm), within cancellous cells: cell field ``compacted_fraction``. The balloon
   compacts the bone it displaces into the rim (mass conservation), so the rim's density is
   ``rho (V_rim + V_cavity) / V_rim`` and its modulus follows the MaterialSet's density-modulus law
   (Morgan et al. 2003 vertebral law: ``E ~ rho^1.56``): ``rim_modulus_factor`` (default None) is that
   ratio of the law at the two densities, applied to the undamaged cancellous elasticity (the crushed
   trabeculae are compacted, not left damaged). Compacted bone keeps the bone yield strain (vertebral
   trabecular yield strains do not depend on density, Morgan & Keaveny 2001), so cells that are mostly
   rim or cavity lose the damaged zone's ``damage`` and ``yield_factor``.

**Surface** (``surface``): ``"mixed"`` (default) keeps the mesh; ``"fitted"`` snaps nodes onto the cavity
surface and then onto the rim's outer surface (:mod:`vertebrafe.clinical.snap`), so no cell is cut.

Per cut cell the three phases (host, compacted rim ``k C_host / (1 - damage)``, PMMA) are combined by
``mixing`` (:mod:`vertebrafe.clinical.mixing`; default the laminate rule with the normal of the cut
surface, which converges under mesh refinement; ``"voigt"`` for comparison). Cells with ``f_c >= 0.5``
are tagged ``cement``, rim cells with ``f_r >= 0.5`` ``compacted_bone``.

**Interface** (``interface``): ``"bonded"`` (default) or ``"layer"``, the compliant layer of
:func:`~vertebrafe.clinical.cement.vertebroplasty` between the PMMA and the compacted rim: the outer
``layer_thickness`` of the bolus (between the cavity surface and the surface with the ellipsoids' semi-axes
and the clip surfaces moved in by the thickness) gets the isotropic ``layer_modulus`` (default thickness /
1e-3 mm/MPa; ranges and defaults :mod:`vertebrafe.clinical.augment`); the cavity, cement and rim volumes do
not change (cell field ``interface_fraction``, part of ``cement_fraction``). Cut cells are then a laminate of
host, rim, layer and PMMA core (:func:`~vertebrafe.clinical.augment.mix_nested`). The layer's default
modulus is the measured compliance of interlocked cement-trabecula interfaces (Miller et al. 2016), carried
over to the bolus-rim interface of a compact bolus as an assumption (docs/clinical.md).

An unfractured level may be treated (prophylactic augmentation); nothing is restored then and
``restoration`` must be 0 or left at its default.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import brentq

from ..anatomy.grading import GradedCurve
from ..errors import InputError
from ..elasticity import isotropic
from ..threads import one_blas_thread
from ._common import check_level, derive, history, level_nodes, make_operation, operations_of, to_local
from .bolus import record_resolution
from .augment import (DEFAULT_VERTICAL_EXTENT, Sampler, body_frame_sizes, bolus_geometry, bolus_pieces, bridge_neck,
                      check_achieved, check_cement_modulus, check_centres, check_extent, check_fits, check_layer,
                      check_offset, check_samples, check_untreated, endplate_distances, layer_phases, level_cells,
                      mix_nested, region_code, resolve_volume, vertical_mask)
from .firstyield import phase_yield_field, treated_yield_factor
from .phasestress import phase_stress_data
from .cement import SURFACES
from .snap import MAX_SHELL_MOVE, snap_bolus, snap_shell
from .fracture import Deformer
from .measure import measure

__all__ = ["kyphoplasty", "contact_face_grading", "DEFAULT_RESTORATION", "DEFAULT_BALLOON_VOLUME_ML", "DEFAULT_RIM_THICKNESS",
           "DEFAULT_INFLATION_PRESSURE", "DEFAULT_LIFT_FORCE", "rim_density_ratio", "INTERFACES"]

#: Fraction of the lost height regained: about the 46.8 % regained by the 70 % of bodies that gained height in
#: the first clinical kyphoplasty series (70 bodies, 30 patients; 30 % gained none, 2.9 mm on average over
#: all; Lieberman et al. 2001, Spine 26:1631, as reported at 78stepshealth.us/vertebral-body/results-1.html);
#: other series report partial restoration too (+17.5 % anterior height and 7.0 deg, Asian Spine J 2010;
#: 4.8 deg mean correction, Papanastassiou 2012).
DEFAULT_RESTORATION = 0.5
#: Balloon/cement volume per balloon (mL): about 2.4 cc per side in FREE (Van Meirhaeghe 2013).
DEFAULT_BALLOON_VOLUME_ML = 2.4
#: Compacted-bone rim thickness (mm) [assumption; Purcell 2013: results sensitive to it].
DEFAULT_RIM_THICKNESS = 1.0
#: Balloon inflation pressure (MPa) during restoration: 175 +/- 37 psi (KYPHON tamps, 9 osteoporotic
#: bodies restored under a held 110 N load; in vitro study of an outer sleeve on an inflatable bone tamp,
#: docs/clinical.md).
DEFAULT_INFLATION_PRESSURE = 175.0 * 0.00689476
#: Force (N) the balloons lift during restoration: the 110 N held on the bodies in the same study.
DEFAULT_LIFT_FORCE = 110.0
#: Bolus-rim interface options: bonded, or an explicit compliant ``"layer"`` (the vertebroplasty layer's
#: construction, ranges and defaults; module docstring).
INTERFACES = ("bonded", "layer")


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


def rim_density_ratio(cavity_mm3, rim_mm3):
    """Density of the compacted rim over the host's: the bone of the cavity and of the rim ends up in the
    rim (mass conservation), ``(V_rim + V_cavity) / V_rim``."""
    if not rim_mm3 > 0.0:
        raise InputError("the compacted rim has no volume (rim_thickness = 0); give rim_modulus_factor or a "
                         "rim_thickness > 0 mm")
    return (rim_mm3 + cavity_mm3) / rim_mm3


def _rim_modulus_factor(segment, level, density_ratio, volume_ml, rim_thickness):
    """Rim modulus over the undamaged host modulus from the MaterialSet's density-modulus law. A rim denser
    than bone tissue (the constant ``tissue_density``: bone volume fraction above 1) cannot hold the bone
    the cavity of ``volume_ml`` displaced: InputError."""
    from ..materials import CONSTANTS, LAWS
    ms = segment.materials
    if hasattr(ms, "for_level"):
        ms = ms.for_level(level)
    if ms is None or not hasattr(ms, "apparent_density"):
        raise InputError("the segment's materials are not a MaterialSet; pass rim_modulus_factor (rim modulus "
                         "/ cancellous modulus, > 0)")
    tissue = CONSTANTS["tissue_density"].value
    if ms.apparent_density * density_ratio > tissue:
        raise InputError(f"volume = {volume_ml:g} mL does not fit in {level}: the bone its cavity displaces, compacted "
                         f"into the {rim_thickness:g} mm rim, would reach {ms.apparent_density * density_ratio:.2f} "
                         f"g/cm^3 ({density_ratio:.1f} x the host's {ms.apparent_density:.3f}); allowed: a rim no "
                         f"denser than bone tissue, {tissue:g} g/cm^3 (a smaller volume or a thicker rim_thickness)")
    law = LAWS[ms.law]
    rho = ms.apparent_density if law.density == "apparent" else ms.bmd / 1000.0
    return float(law(rho * density_ratio) / law(rho))


class _EndplateFaces:
    """Contact faces of balloons on the two endplates of a level: the clip surfaces ``rim_thickness`` inside
    the superior and inferior endplate node layers (local z as a function of local x, y, interpolated
    linearly between the layers' nodes) and, per balloon, the horizontal area over which the ellipsoid
    would reach past each surface (evaluated on a ``grid`` x ``grid`` raster of the balloon's horizontal
    section)."""

    #: Sections kept (the latest): one per balloon of the last scale, which :meth:`areas` reads again after
    #: :meth:`balance`.
    KEPT_SECTIONS = 4

    def __init__(self, segment, level, points, rim_thickness, grid=121):
        from scipy.interpolate import LinearNDInterpolator
        nodes = level_nodes(segment, level)
        sup = to_local(segment, level, points[nodes.superior])
        inf = to_local(segment, level, points[nodes.inferior])
        self.top = LinearNDInterpolator(sup[:, :2], sup[:, 2] - rim_thickness)
        self.bottom = LinearNDInterpolator(inf[:, :2], inf[:, 2] + rim_thickness)
        u = np.linspace(-1.0, 1.0, grid)
        U, V = np.meshgrid(u, u)
        inside = U ** 2 + V ** 2 < 1.0
        self.uv = np.stack([U[inside], V[inside]], axis=1)
        self.cap = np.sqrt(1.0 - np.sum(self.uv ** 2, axis=1))          # half-height of the unit ball
        self.dA = (2.0 / (grid - 1)) ** 2                              # grid area on the unit disk
        self._kept = {}                                                # the last sections, by their inputs

    def _section(self, centre, rot, axes):
        """Clip heights ``top, bottom (k,)`` over the raster of a balloon's horizontal section, the balloon's
        half-heights ``(k,)`` there and the area (mm^2) of one raster point; they depend on the balloon's
        horizontal position and shape, not on its height (``centre[2]``). A section asked for again with the
        same inputs (a balloon whose scale did not change since its :meth:`balance`) is the one kept."""
        key = tuple(np.asarray(v, dtype=float).tobytes() for v in (centre[:2], rot[:2, :2], axes))
        if key not in self._kept:
            xy = centre[:2] + (self.uv * axes[:2]) @ rot[:2, :2].T
            top = np.nan_to_num(self.top(xy), nan=np.inf)               # outside the body: no contact
            bottom = np.nan_to_num(self.bottom(xy), nan=-np.inf)
            if len(self._kept) >= self.KEPT_SECTIONS:
                del self._kept[next(iter(self._kept))]                  # the oldest
            self._kept[key] = top, bottom, axes[2] * self.cap, self.dA * axes[0] * axes[1]
        return self._kept[key]

    @staticmethod
    def _faces(z, section):
        """Areas (mm^2) of the top and the bottom contact face of a balloon centred at height ``z``."""
        top, bottom, half, dA = section
        return float(np.count_nonzero(z + half >= top)) * dA, float(np.count_nonzero(z - half <= bottom)) * dA

    def areas(self, centre, rot, axes):
        """Areas (mm^2) of the top and the bottom contact face of one balloon (ellipsoid ``centre (3,)``,
        rotation ``rot (3, 3)`` about the vertical axis, semi-axes ``axes (3,)`` mm)."""
        return self._faces(centre[2], self._section(centre, rot, axes))

    def balance(self, centre, rot, axes):
        """Vertical shift (mm) of a balloon that makes its two contact faces equal, 0 when it touches neither.

        The part of the body above the balloon and the part below carry the same force (the load on the
        superior endplate passes through the balloon to the inferior one; the bone around the curved sides
        of the balloon, loaded symmetrically, carries the same share on both sides), and each face presses
        with the inflation pressure, so the two faces have the same area."""
        section = self._section(centre, rot, axes)

        def gap(dz):
            t, b = self._faces(centre[2] + dz, section)
            return t - b

        lo, hi = -axes[2], axes[2]
        g_lo, g_hi = gap(lo), gap(hi)
        if g_lo == 0.0 and g_hi == 0.0:
            return 0.0
        for _ in range(40):                                              # bisection to 1e-12 of the span
            mid = 0.5 * (lo + hi)
            if gap(mid) > 0.0:
                hi = mid
            else:
                lo = mid
        return 0.5 * (lo + hi)


def _contact_cavity(sampler, centres, rots, axes, allowed, target_mm3, faces, patch_mm2):
    """Vertical semi-axis factor ``q``, scale ``s``, normalised radii ``r2``, balanced face area (mm^2) and
    centres of balloons that bear on both endplates: the cavity (``r2 <= s^2``, clipped by ``allowed``) holds
    ``target_mm3``; each balloon sits at the height where its top and bottom contact faces are equal
    (:meth:`_EndplateFaces.balance`) and the mean face area is ``patch_mm2``. The largest face is that of an
    elliptic cylinder (``q`` large); it caps the area. Each ``q`` is evaluated once (the root brentq returns
    is one it evaluated); the work runs on one BLAS thread (small products, which more threads only slow)."""
    states = {}

    def state(q):
        if q not in states:
            with one_blas_thread():
                states[q] = _state(q)
        return states[q]

    def _state(q):
        ax = axes.copy()
        ax[:, 2] *= q
        c = centres.copy()
        for _ in range(8):                                               # scale and heights together
            r2 = np.where(allowed, sampler.radius2(c, rots, ax), np.inf)
            s, _ = sampler.scale_for_volume(r2, target_mm3)
            dz = np.array([faces.balance(ci, Ri, ai * s) for ci, Ri, ai in zip(c, rots, ax)])
            c[:, 2] += dz
            if np.all(np.abs(dz) < 1e-3):
                break
        r2 = np.where(allowed, sampler.radius2(c, rots, ax), np.inf)
        s, _ = sampler.scale_for_volume(r2, target_mm3)
        area = float(np.mean([faces.areas(ci, Ri, ai * s) for ci, Ri, ai in zip(c, rots, ax)]))
        return area, s, r2, c

    lo, hi = 0.25, 64.0
    if state(hi)[0] <= patch_mm2:
        q = hi
    elif state(lo)[0] >= patch_mm2:
        q = lo
    else:
        q = brentq(lambda x: state(x)[0] - patch_mm2, lo, hi, xtol=1e-3, rtol=1e-4)
    area, s, r2, c = state(q)
    return q, s, r2, area, c


def kyphoplasty(segment, level, restoration=None, volume=None, balloons=2, rim_thickness=DEFAULT_RIM_THICKNESS,
                rim_modulus_factor=None, offset=(0.0, 0.0, 0.0), cement_modulus=None,
                samples=4, mixing="laminate", vertical_extent=DEFAULT_VERTICAL_EXTENT, endplate_contact=None,
                inflation_pressure=DEFAULT_INFLATION_PRESSURE, lift_force=DEFAULT_LIFT_FORCE, interface="bonded",
                layer_thickness=None, layer_modulus=None, surface="mixed"):
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
    rim_modulus_factor : float, optional
        Rim modulus / undamaged cancellous modulus, > 0; default (None) from the rim's density by mass
        conservation and the MaterialSet's density-modulus law (module docstring).
    offset : (3,) float
        Shift (mm) of the balloons in the vertebra's local frame.
    cement_modulus : (E, nu), optional
        PMMA modulus (MPa) and Poisson ratio; default ``MaterialSet.cement``.
    samples : int
        Sub-cell samples per direction.
    mixing : {"laminate", "voigt"}
        Elasticity of the cells the cavity and rim surfaces cut.
    vertical_extent : float in (0.2, 1]
        Fraction of the local body height, centred, that the cavity may occupy (without endplate contact;
        with contact the cavity reaches ``rim_thickness`` short of each endplate).
    endplate_contact : bool, optional
        The balloons bear on both endplates (default: when the level is restored, ``restoration > 0``).
    inflation_pressure : float
        Balloon pressure (MPa, > 0) that sets the contact area with ``lift_force`` (N, > 0).
    lift_force : float
        Force (N) the balloons exert on each endplate during restoration.
    interface : {"bonded", "layer"}
        PMMA-rim interface: ``"bonded"`` (default) or ``"layer"``: the outer ``layer_thickness`` of the bolus
        (inside the cavity surface, so the cavity, cement and rim volumes do not change) gets the isotropic
        ``layer_modulus`` (the PMMA's Poisson ratio); cut cells are a laminate of host, rim, layer and core.
    layer_thickness : float, optional
        Layer thickness (mm, in [0.05, 5]); default 0.5 mm [assumption]. Only with ``interface="layer"``.
    layer_modulus : float, optional
        Layer modulus (MPa, in [1, 20000]); default ``layer_thickness / 1e-3 mm/MPa`` (500 MPa at 0.5 mm:
        the interlocked cement-trabecula interface compliance of Miller et al. 2016, carried over to the
        bolus-rim interface as an assumption). Only with ``interface="layer"``.
    surface : {"mixed", "fitted"}
        ``"mixed"`` (default): cells the cavity and rim surfaces cut are mixed by ``mixing``. ``"fitted"``:
        cancellous nodes of the level are snapped onto the cavity surface (the scale corrected until the
        cavity cells hold ``volume``) and then, the cavity cells' nodes held, onto the rim's outer surface
        (:func:`vertebrafe.clinical.snap.snap_shell`), so every cell is wholly PMMA, rim or host; cells the
        snapping cannot fit join a phase by their sampled majority. The rim's density then follows from
        the rim cells' volume (mass conservation as above). Recorded: ``snapped_nodes``,
        ``unresolved_cells``.

    Returns
    -------
    Segment
        Restored geometry; cell fields ``cement_fraction`` and ``compacted_fraction``; elasticity mixed;
        with elasticity the cut cells' ``yield_factor`` and ``phase_yield_factor``
        (:mod:`vertebrafe.clinical.firstyield`);
        ``history`` gains ``"kyphoplasty"`` with the requested and achieved volume (mL), the
        restoration, the heights (mm), the kyphotic-angle correction (deg), the rim's density ratio and
        modulus factor, the interface layer's volume (mL; 0 when bonded) and, with endplate contact, the
        contact area per balloon and endplate (mm^2); with two balloons ``bolus_gap_mm``, the bone between
        the two cavities at the final scale (:func:`~vertebrafe.clinical.augment.bridge_neck`: twice the
        distance from a cavity to the balloons' mirror plane, the cavities' distance where both sit at one
        height, as the balanced balloons of a symmetric body do; negative where they overlap): a mesh whose
        PMMA cells make more or fewer connected sets than the cavities make pieces gets a ResolutionWarning
        (:func:`~vertebrafe.plausibility.check_resolution`; the default 4.8 mL pair in the wedged L1 is
        2.4-2.5 mm apart, one PMMA cell set at 3 and 2 mm, docs/clinical.md "Joined boluses"). With
        ``interface="layer"`` the cell field ``interface_fraction`` (part of ``cement_fraction``).
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
    except (TypeError, ValueError):
        raise InputError(f"rim_thickness = {rim_thickness!r}; expected a number in [0, 10] mm") from None
    if not (0.0 <= t <= 10.0):
        raise InputError(f"rim_thickness = {rim_thickness!r} mm; allowed range [0, 10] mm")
    if rim_modulus_factor is not None:
        try:
            k = float(rim_modulus_factor)
        except (TypeError, ValueError):
            raise InputError(f"rim_modulus_factor = {rim_modulus_factor!r}; expected a number > 0") from None
        if not (k > 0.0):
            raise InputError(f"rim_modulus_factor = {rim_modulus_factor!r}; must be > 0")
    contact = (fractured and r > 0.0) if endplate_contact is None else endplate_contact
    if not isinstance(contact, (bool, np.bool_)):
        raise InputError(f"endplate_contact = {endplate_contact!r}; allowed True, False or None")
    for name, v in (("inflation_pressure", inflation_pressure), ("lift_force", lift_force)):
        try:
            ok = float(v) > 0.0 and math.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"{name} = {v!r}; must be a finite number > 0 ({'MPa' if name[0] == 'i' else 'N'})")
    patch = float(lift_force) / (float(inflation_pressure) * balloons)         # mm^2 per balloon and endplate
    off = check_offset(offset)
    n = check_samples(samples)
    extent = check_extent(vertical_extent)
    if mixing not in ("laminate", "voigt"):
        raise InputError(f"mixing = {mixing!r}; allowed: ['laminate', 'voigt']")
    if interface not in INTERFACES:
        raise InputError(f"interface = {interface!r}; allowed: {list(INTERFACES)} (the compact PMMA bolus has no "
                         "interdigitated composite for vertebroplasty's 'frictional' factor)")
    t_layer, E_layer = check_layer(interface, layer_thickness, layer_modulus, mixing)
    if surface not in SURFACES:
        raise InputError(f"surface = {surface!r}; allowed: {list(SURFACES)}")
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
    c_ext = 1.0 if contact else extent
    allowed = vertical_mask(d_inf, d_sup, hloc, c_ext, pad=-t if contact else 0.0)
    check_fits(v_ml * 1000.0, float(np.sum(sampler.w * sampler.volume[:, None] * allowed)),
               float(sampler.volume.sum()), level, "volume", v_ml, c_ext)
    if contact:
        faces = _EndplateFaces(geo_seg, level, points, t)
        q, s, r2, area, centres = _contact_cavity(sampler, centres, rots, axes, allowed, v_ml * 1000.0, faces, patch)
        axes = axes.copy()
        axes[:, 2] *= q
    else:
        q, area = 1.0, 0.0
        r2 = np.where(allowed, sampler.radius2(centres, rots, axes), np.inf)
        s, _ = sampler.scale_for_volume(r2, v_ml * 1000.0)
    cav = r2 <= s * s
    moved = unresolved = 0
    if surface == "fitted":                 # cavity, then the rim's outer surface, snapped to cell faces
        pads = (-t if contact else 0.0, 0.0 if contact else t)
        points, sampler, cav, fc_sel, s, moved, unresolved = snap_bolus(geo_seg, level, points, eligible, n, centres,
                                                                        rots, axes, s, c_ext, v_ml * 1000.0, pad=pads[0],
                                                                        max_move=MAX_SHELL_MOVE)
        fr_sel = np.zeros_like(fc_sel)
        if t > 0:
            points, sampler, fr_sel, m2, u2 = snap_shell(geo_seg, level, points, eligible, n, fc_sel > 0.5, centres,
                                                         rots, axes * s + t, c_ext, pads[1])
            moved, unresolved = moved + m2, unresolved + u2
        d_inf, d_sup, hloc = endplate_distances(geo_seg, level, points, sampler)
        rim = np.broadcast_to(fr_sel[:, None] > 0.5, sampler.w.shape)
        if contact:
            area = float(np.mean([faces.areas(ci, Ri, ai * s) for ci, Ri, ai in zip(centres, rots, axes)]))
    else:
        if t > 0:
            outer = (sampler.radius2(centres, rots, axes * s, pad=t) <= 1.0) & vertical_mask(
                d_inf, d_sup, hloc, c_ext, pad=0.0 if contact else t)
        else:
            outer = cav
        rim = outer & ~cav
        fc_sel, fr_sel = sampler.fraction(cav), sampler.fraction(rim)
    fc = np.zeros(mesh.n_cells)
    fr = np.zeros(mesh.n_cells)
    fc[sampler.cells], fr[sampler.cells] = fc_sel, fr_sel
    fl = np.zeros(mesh.n_cells)
    fk = fc                                                  # cement core (the whole bolus when bonded)
    if interface == "layer":                                 # ellipsoids and clip surfaces moved in by t_layer
        band = vertical_mask(d_inf, d_sup, hloc, c_ext, pad=(-t if contact else 0.0) - t_layer)
        core = cav & band & (sampler.radius2(centres, rots, axes * s, pad=-t_layer) <= 1.0)
        fl_sel, fk_sel = layer_phases(sampler, cav, core, fc_sel)
        fk = np.zeros(mesh.n_cells)
        fl[sampler.cells], fk[sampler.cells] = fl_sel, fk_sel
    achieved = float(np.sum(fc_sel * sampler.volume))
    check_achieved(achieved, v_ml, None, level)
    rim_mm3 = float(np.sum(fr_sel * sampler.volume))
    density_ratio = rim_density_ratio(achieved, rim_mm3) if t > 0 else math.nan

    C = segment.elasticity
    E_c = nu_c = None
    data = {}
    if C is not None:
        if cement_modulus is not None:
            E_c, nu_c = check_cement_modulus(cement_modulus)
        elif segment.materials is not None and hasattr(segment.materials, "cement"):
            E_c, nu_c = float(segment.materials.cement.E), float(segment.materials.cement.nu)
        else:
            raise InputError("the segment's materials are not a MaterialSet; pass cement_modulus=(E MPa, nu)")
        if rim_modulus_factor is None:
            k = _rim_modulus_factor(segment, level, density_ratio, v_ml, t) if t > 0 else 1.0
        C = C.copy()
        sel = np.flatnonzero((fc > 0) | (fr > 0))
        dmg = mesh.cell_data["damage"][sel] if "damage" in mesh.cell_data else np.zeros(sel.size)
        Ch = C[sel]
        pos = np.searchsorted(sampler.cells, sel)                   # sel is a subset of the sampled cells
        phases = [Ch, (k / (1.0 - dmg))[:, None, None] * Ch]        # host, rim, [layer,] PMMA core
        fractions = [1.0 - fc[sel] - fr[sel], fr[sel]]
        masks = [(cav | rim)[pos], cav[pos]]                        # inside the rim's and the cavity's surface
        kinds = ["host", "bone"]
        if interface == "layer":               # the layer yields at the compacted bone's strain [assumption]
            phases.append(np.broadcast_to(isotropic(E_layer, nu_c), Ch.shape))
            fractions.append(fl[sel])
            masks.append(core[pos])
            kinds.append("bone")
        phases = np.stack(phases + [np.broadcast_to(isotropic(E_c, nu_c), Ch.shape)])
        fractions = np.stack(fractions + [fk[sel]])
        R = np.asarray(geo_seg.frames[level][0], dtype=float)
        C[sel], normals = mix_nested(phases, fractions, masks, sampler.x[pos], sampler.w[pos], R, mixing)
        yf = np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float).copy()
        pyf = phase_yield_field(mesh)
        tissues = ("cancellous", "compacted_bone") + ("cement",) * (len(kinds) - 1)    # [layer,] PMMA core
        yf[sel], pyf[sel] = treated_yield_factor(segment, sel, phases, fractions, normals, tuple(kinds) + ("cement",),
                                                 E_c, tissues)
        data = phase_stress_data(sel, phases, fractions, normals, tissues)
    tag_names = dict(mesh.tag_names["region"])
    region = mesh.cell_data["region"].copy()
    region[fr >= 0.5] = region_code(mesh, "compacted_bone", tag_names)
    region[fc >= 0.5] = region_code(mesh, "cement", tag_names)
    cell_data = {"cement_fraction": fc, "compacted_fraction": fr, "region": region,
                 **({"interface_fraction": fl} if interface == "layer" else {})}
    if C is not None:
        cell_data["yield_factor"] = yf
        cell_data["phase_yield_factor"] = pyf
    if "damage" in mesh.cell_data:                            # crushed trabeculae compacted or replaced
        cell_data["damage"] = np.where(fc + fr >= 0.5, 0.0, np.asarray(mesh.cell_data["damage"], dtype=float))

    params = dict(restoration=r, volume_mL=v_ml, balloons=int(balloons), rim_thickness_mm=t,
                  rim_modulus_factor=rim_modulus_factor, offset_mm=tuple(off), samples=n, cement_E_MPa=E_c,
                  cement_nu=nu_c, mixing=mixing, vertical_extent=None if contact else extent,
                  endplate_contact=bool(contact), inflation_pressure_MPa=float(inflation_pressure),
                  lift_force_N=float(lift_force), interface=interface, layer_thickness_mm=t_layer,
                  layer_E_MPa=E_layer, surface=surface)
    results = dict(cement_volume_mL=achieved / 1000.0, volume_error=achieved / (v_ml * 1000.0) - 1.0,
                   fill=achieved / float(sampler.volume.sum()),
                   rim_volume_mL=rim_mm3 / 1000.0, balloon_scale=s, balloon_vertical_factor=q,
                   balloon_centres_mm=tuple(tuple(float(v) for v in c) for c in centres),
                   rim_density_ratio=density_ratio, rim_modulus_factor=k if C is not None else math.nan,
                   contact_area_mm2=area, layer_volume_mL=float(np.sum(fl[sampler.cells] * sampler.volume)) / 1000.0,
                   snapped_nodes=moved, unresolved_cells=unresolved)
    if balloons == 2:                                   # the bone between the two cavities (no bridge joins them)
        gap = bridge_neck(centres, rots, axes, s, 0.0)[0]
        results.update(bolus_gap_mm=gap, bolus_pieces=bolus_pieces(gap, 0.0))
    op = make_operation("kyphoplasty", level, params, results, data)
    new = derive(segment, op, points=points, elasticity=C, frames=frames,
                 cell_data=cell_data,
                 tag_names={"region": tag_names})
    after = measure(new, level)
    res = dict(results, heights_before_mm=(before.anterior_height_mm, before.middle_height_mm,
                                           before.posterior_height_mm),
               heights_after_mm=(after.anterior_height_mm, after.middle_height_mm, after.posterior_height_mm),
               kyphotic_correction_deg=before.kyphotic_angle_deg - after.kyphotic_angle_deg)
    new.history = new.history[:-1] + (make_operation("kyphoplasty", level, params, res, data),)
    return record_resolution(new)


def contact_face_grading(treated, level, factor=0.4, width=2.0, reach=4.0):
    """In-plane grading (:class:`~vertebrafe.anatomy.grading.GradedCurve`, one per balloon) toward the edges
    of the balloons' endplate contact faces of the last kyphoplasty of ``level`` in ``treated``, for
    re-meshing the segment with :func:`~vertebrafe.anatomy.segment.segment` ``(..., grading=...)``.

    Each contact face is taken as the horizontal section of its balloon ellipsoid (centre and rotation of
    the kyphoplasty record) with the face area ``contact_area_mm2``: the semi-axes of the section scaled by
    ``sqrt(area / (pi a b))`` (mm, in the level's local frame). ``factor`` (cell size across the edge over
    the ungraded size, [0.2, 1]), ``width`` and ``reach`` (mm) are those of :class:`GradedCurve`. Build
    it once on one mesh and use the same curves at every element size, so that a refinement study halves
    every cell. Needs endplate contact (a restored level): without it there is no face edge.
    """
    ops = operations_of(treated, level, "kyphoplasty")
    if not ops:
        raise InputError(f"contact_face_grading: {level} has no kyphoplasty in the segment's history")
    op = ops[-1]
    res = op.results
    if not op.parameters["endplate_contact"] or not res["contact_area_mm2"] > 0.0:
        raise InputError(f"contact_face_grading: the kyphoplasty of {level} has no endplate contact "
                         "(restoration = 0 or endplate_contact=False); nothing to grade toward")
    W, D, H, zc, yc = body_frame_sizes(treated, level, treated.mesh.points)
    n = len(res["balloon_centres_mm"])
    _, rots, axes = bolus_geometry("balloon2" if n == 2 else "balloon1", W, D, H, zc, yc)
    curves = []
    for c, R, a in zip(res["balloon_centres_mm"], rots, axes * res["balloon_scale"]):
        k = math.sqrt(res["contact_area_mm2"] / (math.pi * a[0] * a[1]))
        curves.append(GradedCurve(centre=(c[0], c[1]), axes=(k * a[0], k * a[1]),
                                  angle=math.degrees(math.atan2(R[1, 0], R[0, 0])), factor=factor, width=width,
                                  reach=reach))
    return tuple(curves)
