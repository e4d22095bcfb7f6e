"""Vertebroplasty: cement boluses in the cancellous bone of a vertebral body by partial volume.

Bolus geometry (local frame of the treated vertebra; W = mean endplate width, D = mean depth, H = current
middle height, z_c = current mid-height at the body centre):

* ``bipedicular``: two ellipsoids, centres at ``x = +-0.2 W``, ``y = D / 6`` (the middle of the anterior
  two thirds of the body), ``z = z_c``; long axis along a transpedicular trajectory converging
  15 deg toward the midline; semi-axes ``s * (0.16 W, 0.30 D, 0.35 H)`` (lateral, along the trajectory,
  vertical).
* ``unipedicular``: one ellipsoid entering from ``side`` (default left, x < 0) and crossing toward the
  midline: centre at ``x = -+0.08 W``, ``y = D / 6``, trajectory converging 30 deg, semi-axes
  ``s * (0.22 W, 0.35 D, 0.35 H)``.
* ``offset = (dx, dy, dz)`` (mm) shifts every bolus (deliberately asymmetric or off-centre fills).
* ``bridge`` (mm, bipedicular): the two ellipsoids joined by a smooth union (the smooth minimum of their
  normalised radii, :func:`~vertebrafe.clinical.augment.smooth_min`) across gaps up to about ``bridge`` mm,
  so no thin septum of bone is left between them; default none (two separate ellipsoids).

[assumption: shapes and placements are idealisations of the fills seen on post-operative CT; the
trajectory angles are typical transpedicular convergences.] The scale ``s`` is solved so that the cement
volume in the cancellous cells of the body equals the request (cement is confined to cancellous bone:
it neither enters the cortical shell or bony endplates nor leaks) within the central ``vertical_extent``
of the local body height (default 0.7: the bolus stays clear of the endplates unless asked).

Surface (``surface``): by default (placement ``"centre"``) the bolus is body-fitted: mesh nodes are snapped
onto its surface (:mod:`vertebrafe.clinical.snap`), every cell is wholly cement or bone and the scale ``s``
is corrected to the volume of the cement cells; its stiffness converges under mesh refinement. With
``surface="mixed"`` (and for ``placement="fracture"``) the mesh is kept and cut cells are mixed as below.

Partial volume: each cancellous cell is sampled at ``samples^3`` sub-cell points mapped through its
trilinear map and weighted by the Jacobian; the fraction of that weight inside a bolus is the cell's
``cement_fraction`` (0..1). The achieved volume ``sum(cement_fraction * cell volume)`` is a step
function of ``s`` with steps of one sample (about ``h^3 / samples^3``), so it matches the request to a
fraction of a per cent.

Properties: the cement phase is the cement-bone composite (``material="composite"``: interdigitated
PMMA in cancellous bone, ``MaterialSet.cement_bone()``, the linear fit of Williams & Johnson 1989 in the
bone volume fraction) or pure PMMA (``material="pmma"``, ``MaterialSet.cement``). Each cell mixes its
current (host) elasticity and the cement phase by its cement fraction ``f``: ``mixing="laminate"``
(default: the exact laminate normal to the cut surface, :mod:`vertebrafe.clinical.mixing`, which converges
under mesh refinement), ``"voigt"`` ``C = (1 - f) C_host + f C_cement`` (an upper bound that bridges thin
gaps on coarse meshes) or ``"hashin-shtrikman"`` (mean of the HS bounds, isotropic hosts only). Cells with ``f >= 0.5`` are re-tagged ``cement_bone`` (or
``cement``) so that per-region reports see the bolus.
"""
from __future__ import annotations

import numpy as np

from ..elasticity import isotropic
from ..errors import InputError
from ._common import check_level, derive, grow, make_operation, operations_of
from .bolus import record_resolution
from .firstyield import phase_yield_field, treated_yield_factor
from .phasestress import phase_stress_data
from .augment import (DEFAULT_SAMPLES, DEFAULT_VERTICAL_EXTENT, Sampler, body_frame_sizes, bolus_geometry,
                      cement_phase, check_cement_modulus, check_achieved, check_centres, check_extent, check_fits,
                      check_offset, check_bridge, bridge_blend, bridge_neck, bolus_pieces,
                      check_samples, check_untreated, endplate_distances, height_span, layer_phases, level_cells,
                      mix_elasticity, mix_layered, region_code, resolve_volume, vertical_mask, check_layer,
                      DEFAULT_LAYER_THICKNESS, LAYER_COMPLIANCE, LAYER_THICKNESS_RANGE, LAYER_MODULUS_RANGE)
from .mixing import MIXING_RULES, cut_normals
from .pillowed import pillow_bolus
from .snap import snap_bolus

__all__ = ["vertebroplasty", "default_surface", "PLACEMENTS", "APPROACHES", "DEFAULT_VOLUME_ML", "CEMENT_MATERIALS", "MIXING_RULES", "INTERFACE_FACTORS",
           "INTERFACES", "SURFACES", "VERTEBROPLASTY_SURFACES", "DEFAULT_LAYER_THICKNESS", "LAYER_COMPLIANCE",
           "LAYER_THICKNESS_RANGE", "LAYER_MODULUS_RANGE", "bolus_geometry", "Sampler"]

APPROACHES = ("bipedicular", "unipedicular")
CEMENT_MATERIALS = ("composite", "pmma")
#: Representation of the bolus surface: ``"fitted"`` (nodes snapped onto it, :mod:`vertebrafe.clinical.snap`;
#: every cell wholly cement or bone; the default for placement ``"centre"``) or ``"mixed"`` (the mesh is kept;
#: every cut cell is mixed; the default and only choice for placement ``"fracture"``).
SURFACES = ("fitted", "mixed")
#: Vertebroplasty's surfaces: those of kyphoplasty and the pillowed bolus (:mod:`vertebrafe.clinical.pillowed`).
VERTEBROPLASTY_SURFACES = SURFACES + ("pillowed",)
#: Composite modulus factor of the cement-trabecula interface: frictionless contact instead of bonding
#: made micro-FE models of PMMA/bone specimens from augmented human vertebrae 20 % more compliant
#: (Kinzl, Boger, Zysset & Pahr 2012, J Biomech 45:1478; literature.md 2.5).
INTERFACE_FACTORS = {"bonded": 1.0, "frictional": 0.80}
#: Interface options: bonded, the homogenised frictional factor, or an explicit compliant ``"layer"``.
INTERFACES = ("bonded", "frictional", "layer")
#: Where the cement goes (:func:`vertebroplasty`, ``placement``).
PLACEMENTS = ("centre", "fracture")
#: Default injected volume (mL): PMMA 2.8 +/- 1.2 mL in the vertebroplasty arm of Buchbinder et al. 2009
#: (literature.md 5.3); VAPOUR used 7.5 +/- 2.8 mL.
DEFAULT_VOLUME_ML = 2.8

def vertebroplasty(segment, level, volume=None, fill=None, approach="bipedicular", offset=(0.0, 0.0, 0.0),
                   material="composite", side="left", mixing="laminate", cement_modulus=None,
                   samples=DEFAULT_SAMPLES, vertical_extent=DEFAULT_VERTICAL_EXTENT, interface="bonded",
                   surface=None, layer_thickness=None, layer_modulus=None, placement="centre", bridge=None):
    """Percutaneous vertebroplasty of ``level``: cement boluses without height restoration.

    Parameters
    ----------
    segment : Segment
        Intact or fractured (see :func:`~vertebrafe.clinical.fracture`).
    level : str
        Treated vertebra.
    volume : float, optional
        Cement volume (mL); default :data:`DEFAULT_VOLUME_ML` (2.8 mL) when ``fill`` is not given either.
    fill : float, optional
        Cement volume as a fraction (0, 1] of the vertebra's cancellous volume.
    approach : {"bipedicular", "unipedicular"}
    offset : (3,) float
        Shift (mm) of the boluses in the vertebra's local frame (+x right, +y anterior, +z superior).
    material : {"composite", "pmma"}
        Cement phase: interdigitated cement-bone composite (default) or pure PMMA.
    side : {"left", "right"}
        Entry side of a unipedicular approach.
    mixing : {"laminate", "voigt", "hashin-shtrikman"}
        Elasticity of the cells the bolus surface cuts (:mod:`vertebrafe.clinical.mixing`): ``"laminate"``
        (default; converges under mesh refinement), ``"voigt"`` (upper bound; stiff mixed cells bridge thin
        gaps: for comparison only).
    cement_modulus : (E, nu), optional
        Cement-phase modulus (MPa) and Poisson ratio, overriding ``material`` (needed when the segment's
        materials are not a MaterialSet); E in [100, 20000] MPa, nu in [0, 0.49].
    samples : int
        Sub-cell samples per direction (2-8).
    vertical_extent : float in (0.2, 1]
        Fraction of the local body height, centred at mid-height, that the cement may occupy (default
        :data:`~vertebrafe.clinical.augment.DEFAULT_VERTICAL_EXTENT`, 0.7); 1 lets it reach the endplates.
    interface : {"bonded", "frictional"}
        Cement-trabecula interface inside the composite: ``"bonded"`` (default) or ``"frictional"``
        (composite modulus x :data:`INTERFACE_FACTORS` ``["frictional"]`` = 0.80: frictionless contact made
        micro-FE models of augmented human vertebral bone 20 % more compliant than bonding, Kinzl et al.
        2012, J Biomech 45:1478; ignored with ``cement_modulus``) or ``"layer"``: an explicit compliant layer,
        the outer ``layer_thickness`` of the bolus, gets its own isotropic modulus ``layer_modulus`` (the
        cement's Poisson ratio); cells it shares with bone or the cement core are a three-phase laminate.
    surface : {"fitted", "mixed"}, optional
        ``"fitted"``: nodes of the cancellous bone are snapped onto the bolus surface along mesh lines
        (:mod:`vertebrafe.clinical.snap`), so element faces follow it and every cell is wholly cement or bone
        (the few the snapping cannot fit by their sampled majority); stiffness converges under mesh
        refinement. ``"pillowed"``: the bolus's cells and a layer of new cells on each side of its surface
        (:mod:`vertebrafe.clinical.pillowed`), element faces on the smooth ellipsoids: stiffness and stresses
        converge from about 8 cells across the bolus (boluses a cell clear of the cortex, the endplates and,
        unless bridged, each other; otherwise an InputError says which; not with ``interface="layer"`` or
        ``placement="fracture"``). ``"mixed"``: the mesh is kept, every cut cell is mixed by ``mixing``.
        Default
        (:func:`default_surface`): ``"fitted"`` for ``placement="centre"``, ``"mixed"`` for
        ``placement="fracture"`` (the only surface it supports). The surface used is recorded in the
        operation's parameters.
    layer_thickness : float, optional
        Interface-layer thickness (mm, in [0.05, 5]); default :data:`DEFAULT_LAYER_THICKNESS` (0.5 mm). Only
        with ``interface="layer"``.
    layer_modulus : float, optional
        Interface-layer modulus (MPa, in [1, 20000]); default ``layer_thickness / LAYER_COMPLIANCE`` (the
        measured interface compliance 1 um/MPa, Miller et al. 2016: 500 MPa at 0.5 mm). Only with
        ``interface="layer"``.

    bridge : float, optional
        Gap (mm, in [0, 10]) up to which the two bipedicular boluses are joined (default None: 0, two
        separate ellipsoids as placed): their surface is the smooth union of the two ellipsoids, the level 1
        of the polynomial smooth minimum (:func:`~vertebrafe.clinical.augment.smooth_min`) of their normalised
        radii, blended over :func:`~vertebrafe.clinical.augment.bridge_blend` (about ``bridge`` mm of gap at
        the midline), so cement injected through both pedicles meets across the midline without a thin
        septum of bone or a sharp crease; boluses farther apart than the bridge stay two (slightly drawn
        toward each other). The scale still matches the requested volume; the fitted surface is snapped onto
        the joined surface. Only with ``approach="bipedicular"``. The results of every centred bipedicular
        bolus record its waist at the final scale (:func:`~vertebrafe.clinical.augment.bridge_neck`):
        ``bolus_gap_mm`` (the bone between the unbridged ellipsoids, negative where they overlap; a bridge
        joins them where the gap is at most ``bridge``), ``bridge_neck_mm`` (the neck's smaller diameter on
        the midline, 0 where they stay apart or without a bridge) and ``bolus_pieces`` (1 or 2,
        :func:`~vertebrafe.clinical.augment.bolus_pieces`); a mesh whose cement cells join boluses that
        stay apart (or split a joined one) gets a ResolutionWarning
        (:func:`~vertebrafe.plausibility.check_resolution`). Near ``gap = bridge`` the waist is thin either way,
        a neck or a septum of bone, and with ``surface="pillowed"`` a mesh whose cement cells make more or
        fewer pieces than the bolus is refused (InputError): the 3 mL pair 4 mm posterior bridged at
        4 mm, 4.0-4.1 mm apart, keeps a septum of bone 0.6 mm thin that the cells at 2 mm would fill with
        cement (docs/clinical.md, "Joined boluses").
    placement : {"centre", "fracture"}
        ``"centre"`` (default): ellipsoidal boluses centred at mid-height within the central
        ``vertical_extent``. ``"fracture"`` (fractured levels only): the cement fills the fracture zone under
        the collapsed (superior) endplate first, as in clefted and freshly fractured bodies: the boluses hang
        from that endplate (their vertical radius is the distance below it along the body's columns, so
        they follow its tilt and depression) and keep ``(1 - vertical_extent) / 2`` of the local height clear
        of the inferior endplate; needs ``surface="mixed"`` (its default) and a zero vertical ``offset``.

    Returns
    -------
    Segment
        Cell field ``cement_fraction``; elasticity mixed; with elasticity the cut cells' ``yield_factor``
        and ``phase_yield_factor`` (:mod:`vertebrafe.clinical.firstyield`); ``history`` gains ``"vertebroplasty"`` with the
        requested and achieved volume (mL), the relative volume error, the fill and the cement centroid
        (local mm).
    """
    check_level(segment, level)
    if approach not in APPROACHES:
        raise InputError(f"approach = {approach!r}; allowed: {list(APPROACHES)}")
    if material not in CEMENT_MATERIALS:
        raise InputError(f"material = {material!r}; allowed: {list(CEMENT_MATERIALS)}")
    if side not in ("left", "right"):
        raise InputError(f"side = {side!r}; allowed: ['left', 'right']")
    if interface not in INTERFACES:
        raise InputError(f"interface = {interface!r}; allowed: {list(INTERFACES)}")
    t_layer, E_layer = check_layer(interface, layer_thickness, layer_modulus, mixing)
    if mixing not in MIXING_RULES:
        raise InputError(f"mixing = {mixing!r}; allowed: {list(MIXING_RULES)}")
    if surface is not None and surface not in VERTEBROPLASTY_SURFACES:
        raise InputError(f"surface = {surface!r}; allowed: {list(VERTEBROPLASTY_SURFACES)} or None (the placement's "
                         "default)")
    if placement in PLACEMENTS and surface is None:
        surface = default_surface(placement)
    off = check_offset(offset)
    b_mm = check_bridge(bridge, approach)
    check_placement(placement, segment, level, surface, off)
    check_pillowed(surface, interface)
    n = check_samples(samples)
    extent = check_extent(vertical_extent)
    check_untreated(segment, level)
    if cement_modulus is not None:
        check_cement_modulus(cement_modulus)

    mesh = segment.mesh
    P = mesh.points
    eligible = level_cells(mesh, level) & mesh.cells_in("region", ["cancellous"])
    sampler = Sampler(segment, level, P, eligible, n)
    v_ml, fill_req = resolve_volume(segment, level, volume, fill, float(sampler.volume.sum()), DEFAULT_VOLUME_ML)
    W, D, H, zc, yc = body_frame_sizes(segment, level, P)
    centres, rots, axes = bolus_geometry(approach, W, D, H, zc, yc, side, off)
    check_centres(centres, off, W, D, H, zc, yc, level)
    d_inf, d_sup, hloc = endplate_distances(segment, level, P, sampler)
    if placement == "fracture":               # hangs from the collapsed endplate, clear of the other one
        allowed = d_inf >= 0.5 * (1.0 - extent) * hloc
        vertical = d_sup
    else:
        allowed = vertical_mask(d_inf, d_sup, hloc, extent)
        vertical = None
    room = float(np.sum(sampler.w * sampler.volume[:, None] * allowed))
    check_fits(v_ml * 1000.0, room, float(sampler.volume.sum()), level, "fill" if fill is not None else "volume",
               fill if fill is not None else v_ml, extent)
    r2 = np.where(allowed, sampler.radius2(centres, rots, axes, vertical=vertical, bridge=b_mm), np.inf)
    s, achieved = sampler.scale_for_volume(r2, v_ml * 1000.0)
    inside = r2 <= s * s
    f_sel = sampler.fraction(inside)
    moved = unresolved = 0
    grown = {}
    if surface == "fitted":
        P, sampler, inside, f_sel, s, moved, unresolved = snap_bolus(segment, level, P, eligible, n, centres, rots,
                                                                     axes, s, extent, v_ml * 1000.0, bridge=b_mm)
        d_inf, d_sup, hloc = endplate_distances(segment, level, P, sampler)
    if surface == "pillowed":
        cut = not np.array_equal(inside, sampler.radius2(centres, rots, axes, bridge=b_mm) <= s * s)  # by the extent
        pb = pillow_bolus(segment, level, eligible, centres, rots, axes, s, v_ml * 1000.0, segment.element_size,
                          extent=extent if cut else None, blend=bridge_blend(b_mm, rots, axes) if b_mm else 0.0)
        n0, m0 = mesh.n_points, mesh.n_cells
        segment = grow(segment, pb.points, pb.cells, pb.layered_cell)
        mesh = segment.mesh
        s = pb.scale
        inside = r2 <= s * s                        # the bolus at its final scale, sampled (centroid, span)
        grown = dict(appended_nodes=mesh.n_points - n0, appended_cells=mesh.n_cells - m0,
                     min_scaled_jacobian=pb.info["min_scaled_jacobian"])
        frac = pb.cement.astype(float)
        achieved = float(np.sum(mesh.cell_volumes()[pb.cement]))
    else:
        frac = np.zeros(mesh.n_cells)
        frac[sampler.cells] = f_sel
        achieved = float(np.sum(f_sel * sampler.volume))
    check_achieved(achieved, v_ml, fill, level)
    wv = sampler.w * sampler.volume[:, None] * inside
    centroid = (np.einsum("mq,mqi->i", wv, sampler.x) / wv.sum()) if wv.sum() > 0 else np.full(3, np.nan)

    C = segment.elasticity
    C_phase, E_c, nu_c = cement_phase(segment, material, cement_modulus, level)
    if C_phase is not None and cement_modulus is None and interface == "frictional":
        E_c *= INTERFACE_FACTORS[interface]
        C_phase = isotropic(E_c, nu_c)
    f_layer = np.zeros(mesh.n_cells)
    data = {}
    if interface == "layer":
        if placement == "fracture":
            band = (d_inf >= 0.5 * (1.0 - extent) * hloc + t_layer) & (d_sup >= t_layer)
            vert = d_sup
        else:
            band, vert = vertical_mask(d_inf, d_sup, hloc, extent, pad=-t_layer), None
        core = band & (sampler.radius2(centres, rots, axes * s, pad=-t_layer, vertical=vert, bridge=b_mm) <= 1.0)
        fl_sel, fc_sel = layer_phases(sampler, inside, core, f_sel)
        f_layer[sampler.cells] = fl_sel
    cell_data = {"cement_fraction": frac, **({"interface_fraction": f_layer} if interface == "layer" else {})}
    if C is not None and C_phase is not None:
        C = C.copy()
        cut = f_sel > 0
        k = sampler.cells[cut]
        R = np.asarray(segment.frames[level][0], dtype=float)
        if surface == "pillowed":                  # whole cells: the cement phase alone
            k = np.flatnonzero(pb.cement)
            C_new = np.broadcast_to(C_phase, C[k].shape)
            phases = np.stack([C[k], C_new])
            fractions = np.stack([np.zeros(k.size), np.ones(k.size)])
            normals, kinds, tissues = None, ("host", "cement"), ("cancellous", "cement")
        elif interface == "layer":
            C_layer = isotropic(E_layer, nu_c)
            C_new, normals = mix_layered(C[k], C_layer, C_phase, fl_sel[cut], fc_sel[cut], sampler.x[cut],
                                         sampler.w[cut], inside[cut], core[cut], R, mixing)
            phases = np.stack([C[k], np.broadcast_to(C_layer, C[k].shape), np.broadcast_to(C_phase, C[k].shape)])
            fractions = np.stack([1.0 - frac[k], fl_sel[cut], fc_sel[cut]])
            kinds = ("host", "host", "cement")     # the layer yields at the host bone's strain [assumption]
            tissues = ("cancellous", "cement", "cement")
        else:
            normals = cut_normals(sampler.x[cut], sampler.w[cut], inside[cut]) @ R.T      # local -> global
            C_new = mix_elasticity(C[k], C_phase, E_c, nu_c, frac[k], mixing, normals)
            phases = np.stack([C[k], np.broadcast_to(C_phase, C[k].shape)])
            fractions = np.stack([1.0 - frac[k], frac[k]])
            kinds = ("host", "cement")
            tissues = ("cancellous", "cement")
        yf = np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float).copy()
        pyf = phase_yield_field(mesh)
        yf[k], pyf[k] = treated_yield_factor(segment, k, phases, fractions, normals if mixing == "laminate" else None,
                                             kinds, E_c, tissues)
        cell_data["yield_factor"] = yf
        cell_data["phase_yield_factor"] = pyf
        if mixing != "hashin-shtrikman" and surface != "pillowed":     # HS: no phase fields (mod. phasestress)
            data = phase_stress_data(k, phases, fractions, normals if mixing == "laminate" else None, tissues)
        C[k] = C_new
    tag_names = dict(mesh.tag_names["region"])
    code = region_code(mesh, "cement_bone" if material == "composite" else "cement", tag_names)
    region = mesh.cell_data["region"].copy()
    region[frac >= 0.5] = code
    if "damage" in mesh.cell_data:                     # crushed bone the cement fills is composite, not damaged
        cell_data["damage"] = np.where(frac >= 0.5, 0.0, np.asarray(mesh.cell_data["damage"], dtype=float))

    params = dict(volume_mL=v_ml, fill=fill_req, approach=approach, side=side if approach == "unipedicular" else None,
                  offset_mm=tuple(off), material=material, mixing=mixing, samples=n,
                  cement_E_MPa=E_c, cement_nu=nu_c, vertical_extent=extent, surface=surface,
                  interface=interface if (cement_modulus is None or interface == "layer") else None,
                  layer_thickness_mm=t_layer, layer_E_MPa=E_layer, placement=placement, bridge_mm=b_mm)
    results = dict(cement_volume_mL=achieved / 1000.0, volume_error=achieved / (v_ml * 1000.0) - 1.0,
                   fill=achieved / float(sampler.volume.sum()), cement_centroid_mm=tuple(centroid),
                   bolus_scale=s, cement_cells=int(np.count_nonzero(frac > 0)),
                   cement_height_span=height_span(d_inf, hloc, inside),
                   endplate_clearance=endplate_clearance(d_inf, d_sup, hloc, inside),
                   cancellous_volume_mL=float(sampler.volume.sum()) / 1000.0, snapped_nodes=moved,
                   unresolved_cells=unresolved,
                   layer_volume_mL=float(np.sum(f_layer[sampler.cells] * sampler.volume)) / 1000.0, **grown)
    if approach == "bipedicular" and placement == "centre":   # the two boluses' gap, a bridge's waist
        gap, neck = bridge_neck(centres, rots, axes, s, bridge_blend(b_mm, rots, axes) if b_mm else 0.0)
        results.update(bolus_gap_mm=gap, bridge_neck_mm=neck, bolus_pieces=bolus_pieces(gap, neck))
    op = make_operation("vertebroplasty", level, params, results, data)
    return record_resolution(derive(segment, op, points=P if moved else None, elasticity=C,
                                    cell_data={**cell_data, "region": region}, tag_names={"region": tag_names}))


def check_pillowed(surface, interface):
    """InputError for the option a pillowed bolus (whole cement cells) does not support."""
    if surface == "pillowed" and interface == "layer":
        raise InputError("interface = 'layer' with surface = 'pillowed'; the interface layer is made of the cells a "
                         "surface cuts: use surface='fitted' or 'mixed' with it")


def default_surface(placement):
    """Bolus surface :func:`vertebroplasty` uses when none is given: ``"fitted"`` (no cut cell; converges
    under mesh refinement) for ``placement="centre"``, ``"mixed"`` for ``"fracture"`` (a bolus hanging from
    the collapsed endplate is not snapped)."""
    return "mixed" if placement == "fracture" else "fitted"


def endplate_clearance(d_inf, d_sup, height, inside):
    """Smallest distance of the cement from the inferior and from the superior endplate, as fractions of the
    local body height (``(nan, nan)`` without cement); 0 means the cement touches that endplate."""
    if not inside.any():
        return (float("nan"), float("nan"))
    return (float(np.min(d_inf[inside] / height[inside])), float(np.min(d_sup[inside] / height[inside])))


def check_placement(placement, segment, level, surface, offset):
    """InputError unless ``placement`` is one of :data:`PLACEMENTS` and, for ``"fracture"``, the level is
    fractured, the surface mixed and the vertical offset zero."""
    if placement not in PLACEMENTS:
        raise InputError(f"placement = {placement!r}; allowed: {list(PLACEMENTS)}")
    if placement != "fracture":
        return
    if not operations_of(segment, level, "fracture"):
        raise InputError(f"placement = 'fracture' but {level} is not fractured; allowed for an unfractured "
                         "level: ['centre']")
    if surface != "mixed":
        raise InputError(f"surface = {surface!r} with placement = 'fracture'; allowed: ['mixed']")
    if offset[2] != 0.0:
        raise InputError(f"offset z = {offset[2]!r} mm with placement = 'fracture' (the cement hangs from the "
                         "collapsed endplate); allowed: 0")

