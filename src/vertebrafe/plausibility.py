"""Plausibility checks: values that are allowed but outside physiological ranges.

Hard limits (:data:`vertebrafe.loads.LOAD_RANGES`, the material ranges) raise errors; the values below
only warn (:class:`~vertebrafe.errors.PlausibilityWarning`), because a researcher may mean them (an
overload study, a failure test). :func:`~vertebrafe.simulate.simulate` runs both checks, keeps the
messages in ``Result.warnings`` and in the record (``case.json``, ``"warnings"``); the command line
prints them.

=========================  ===========================  ===================================================
what                       warns when                   why / source
=========================  ===========================  ===================================================
vBMD (QCT trabecular)      < 20 or > 300 mg/cm^3        adult lumbar vBMD lies between severe osteoporosis
                                                        (below the 80 mg/cm^3 threshold, down to about 30)
                                                        and young-adult values (150-200) [assumption:
                                                        margins]; below 1 it is almost surely g/cm^3
compression                > 6400 N                     maximum permissible limit (MPL) of L5/S1
                                                        compression of the NIOSH Work Practices Guide for
                                                        Manual Lifting (DHHS (NIOSH) Publication 81-122,
                                                        1981), where about half of the population would
                                                        suffer endplate fractures; about 9 x body weight of
                                                        a 70 kg subject (the guide's action limit, 3400 N,
                                                        is the one kept by the revised NIOSH equation,
                                                        Waters et al. 1993, Ergonomics 36:749-776)
shear (anterior, lateral)  > 1000 N                     the shear limit used beside the NIOSH 3400 N in
                                                        occupational spine-load assessment (Arjmand et al.
                                                        2015, Int J Ind Ergon 47:1-8); lifting peaks at
                                                        230 N (literature 4.2)
moment (each component)    > 20 N m                     in vitro and FE protocols use 7.5-10 N m
                                                        (literature 4.3) [assumption: twice that]
segment rotation           > 15 deg per disc            more than the whole flexion-extension range of a
                                                        lumbar intervertebral joint in vivo, about 14 deg
                                                        (Pearcy, Portek & Shepherd 1984, Spine 9:294-297;
                                                        7-14 deg, Hayes et al. 1989, Spine 14:327-331);
                                                        the small-rotation linear model is not valid for
                                                        tens of degrees
rotation of one level      > 8 deg (per disc, from      the linearised rotation u = theta x r stretches
                           the disc's endplates)        material by theta^2 / 2, 1 % at 8 deg: as large as
                                                        the strains computed, so the small-strain model no
                                                        longer holds there [derived]
vertebral apparent strain  > 2 %                        far beyond the bone's yield strain (0.7-0.8 %):
                                                        linear results only flag an overload
cement bolus resolution    < 24 cells across the        a :class:`~vertebrafe.errors.ResolutionWarning`,
(vertebroplasty,           narrowest bolus of a         not an implausible value: a stiff sphere (74 x the
kyphoplasty)               treated level (its           matrix, as the composite against L1's cancellous
                           ``bolus_cells_across``,      bone) with a fitted surface has its mean stress
                           :mod:`vertebrafe.clinical.   overestimated by +5.5 % at 24 cells across its
                           bolus`)                      diameter, +9.0 % at 16, +15.1 % at 8, +37.8 % at
                                                        4 (first order; +4.0 % at 32); a mixed surface's
                                                        cement phase +15.1 % at 24, +42.1 % at 8
                                                        (docs/validation.md, "Stiff spherical inclusion
                                                        (Eshelby)", revision 3b64aaf): below 24 the error
                                                        exceeds 5 %. In the treated vertebra at 2 mm
                                                        (about 8 cells across) the cement / composite and
                                                        the vertebra's body and core stress rows drift by
                                                        8-24 % from 2 to 1 mm, while the plate stiffness
                                                        and the adjacent levels' ratios converge (within
                                                        2.6 %; after kyphoplasty the lower level's
                                                        endplate -5.5 %; docs/validation.md, "Cemented
                                                        vertebrae"); a pillowed surface
                                                        (``surface="pillowed"``): < 8 cells across, its
                                                        sphere +3.3 % at 4, +0.6 % at 8 ("A pillowed
                                                        surface")
bipedicular bolus pieces   cement cells' connected      a :class:`~vertebrafe.errors.ResolutionWarning`: two
(vertebroplasty; the two   sets (sharing a node) other  boluses whose cells touch across a septum of bone
cavities of kyphoplasty)   than the bolus's pieces      thinner than the cells are tied where the bone
                           (``bolus_pieces``, from      between them is not resolved (the bridged 3 mL
                           ``bolus_gap_mm`` and         pair: von Mises -4.7 to -13.7 % once the septum is
                           ``bridge_neck_mm``)          resolved, "Why the bridged 3 mL pair drifted at
                                                        2 mm"; ``surface="pillowed"`` refuses such a mesh);
                                                        the default VP pair's 4 cells touching at 2 mm
                                                        hold half of L1's core p95 drift to 1 mm (-6.5 %
                                                        made bone, "The default VP's cells across its
                                                        septum"); the default kyphoplasty's PMMA cells,
                                                        made rim, 1.1 % or less ("BKP's two PMMA
                                                        boluses"; all in docs/validation.md)
=========================  ===========================  ===================================================

Resolution messages start with :data:`~vertebrafe.errors.RESOLUTION_PREFIX` and are issued as
:class:`~vertebrafe.errors.ResolutionWarning` (kept with the others in ``Result.warnings``).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .errors import RESOLUTION_PREFIX, PlausibilityWarning

__all__ = ["LIMITS", "INCLUSION_ERROR", "PILLOWED_CELLS_ACROSS", "check_inputs", "check_result", "check_resolution",
           "inclusion_error", "warn"]

#: ``{name: (low, high, unit)}`` of the plausibility checks (see the module table).
LIMITS = {
    "bmd": (20.0, 300.0, "mg/cm^3"),
    "compression": (0.0, 6400.0, "N"),
    "shear": (-1000.0, 1000.0, "N"),
    "moment": (-20.0, 20.0, "N m"),
    "rotation_per_disc": (-15.0, 15.0, "deg"),
    "rotation_per_level": (-8.0, 8.0, "deg"),
    "apparent_strain": (-0.02, 0.02, "-"),
    "bolus_cells_across": (24.0, math.inf, "cells"),
}

#: Error (%) of a stiff sphere's mean axial stress (ratio 74) against Eshelby's closed form, by the cells
#: across its diameter, for each bolus surface: ``{surface: ((n, error %), ...)}`` (docs/validation.md,
#: "Stiff spherical inclusion (Eshelby)": the snapped sphere for ``"fitted"``, the cement phase of the cut
#: cells for ``"mixed"``; box 8 mm, revision 3b64aaf). Only the range where the error falls with n.
INCLUSION_ERROR = {"fitted": ((4, 37.8), (8, 15.1), (12, 11.5), (16, 9.0), (24, 5.5), (32, 4.0)),
                   "mixed": ((8, 42.1), (12, 28.8), (16, 22.0), (24, 15.1), (32, 11.3)),
                   "pillowed": ((4, 3.3), (8, 0.60))}
#: The fewest cells across a pillowed bolus without a ResolutionWarning: its sphere is within 0.6 % at 8 cells
#: across and stays within 0.4 % beyond (docs/validation.md, "A pillowed surface"; +3.3 % at 4).
PILLOWED_CELLS_ACROSS = 8.0


def _bmd_values(materials):
    """``{label: vBMD}`` of a MaterialSet, LevelMaterials or mapping (empty when unknown)."""
    if materials is None:
        return {}
    per_level = getattr(materials, "bmd", None)
    if isinstance(per_level, dict):
        return {f"bmd of {k}": float(v) for k, v in per_level.items()}
    if isinstance(materials, dict):
        per_level = materials.get("bmd")
    try:
        return {"bmd": float(per_level)} if per_level is not None else {}
    except (TypeError, ValueError):
        return {}


def check_inputs(segment, load):
    """Messages (list of str) for the inputs of one case: the segment's vBMD and the load."""
    out = []
    lo, hi, unit = LIMITS["bmd"]
    for label, b in _bmd_values(getattr(segment, "materials", None)).items():
        if b < lo:
            hint = (f"; it looks like g/cm^3: {b:g} g/cm^3 = {b * 1000:g} mg/cm^3" if b < 1.0 else "")
            out.append(f"{label} = {b:g} {unit} is below the physiological range of QCT trabecular vBMD "
                       f"({lo:g}-{hi:g} {unit}){hint}")
        elif b > hi:
            out.append(f"{label} = {b:g} {unit} is above the physiological range of QCT trabecular vBMD "
                       f"({lo:g}-{hi:g} {unit})")
    c_hi = LIMITS["compression"][1]
    forces = [("compression", load.compression)] + [(f"{x.name or 'level load'} on {x.level}", -x.force[2])
                                                    for x in load.level_loads]
    for label, f in forces:
        if f > c_hi:
            out.append(f"{label} = {f:g} N is above {c_hi:g} N, the NIOSH maximum permissible spinal "
                       f"compression (about 9 x body weight)")
    s_hi = LIMITS["shear"][1]
    for k in ("anterior_shear", "lateral_shear"):
        v = getattr(load, k)
        if abs(v) > s_hi:
            out.append(f"{k} = {v:g} N is above {s_hi:g} N, the recommended limit of spinal shear")
    m_hi = LIMITS["moment"][1]
    for k in ("flexion", "extension", "lateral_bending", "axial_rotation"):
        v = getattr(load, k)
        if abs(v) > m_hi:
            out.append(f"{k} = {v:g} N m is above {m_hi:g} N m (in vitro protocols use 7.5-10 N m)")
    for x in load.level_loads:
        if np.abs(x.moment).max() > m_hi:
            out.append(f"{x.name or 'level load'} on {x.level}: moment {list(x.moment)} N m has a component "
                       f"above {m_hi:g} N m")
    return out


def check_result(metrics, segment):
    """Messages (list of str) for a solved case from its metric table (rotations, apparent strains)."""
    out = []
    n = max(len(getattr(segment, "discs", ())), 1)
    r_hi = LIMITS["rotation_per_disc"][1]
    seg = metrics[metrics["level"] == "segment"]
    for k in ("rotation_flexion", "rotation_lateral_bending", "rotation_axial"):
        v = seg.loc[seg["metric"] == k, "value"]
        if len(v) and math.isfinite(v.iloc[0]) and abs(v.iloc[0]) > r_hi * n:
            out.append(f"{k} = {v.iloc[0]:.1f} deg over {n} disc(s) is above {r_hi:g} deg per disc: outside "
                       "physiological motion and the small-rotation linear model (check vBMD units and loads)")
    l_hi = LIMITS["rotation_per_level"][1]
    disc = metrics[(metrics["region"] == "disc") & metrics["metric"].str.startswith("rotation_")]
    for level, k, v in zip(disc["level"], disc["metric"], disc["value"]):
        if math.isfinite(v) and abs(v) > l_hi:
            out.append(f"{k} of {level} = {v:.1f} deg is beyond {l_hi:g} deg: the linearised rotation stretches "
                       f"the material by about {100 * math.radians(v) ** 2 / 2:.1f} %, as much as the strains "
                       "computed, so the small-strain linear model does not hold at this level")
    a_hi = LIMITS["apparent_strain"][1]
    rows = metrics[metrics["metric"] == "apparent_strain"]
    for level, v in zip(rows["level"], rows["value"]):
        if math.isfinite(v) and abs(v) > a_hi:
            out.append(f"apparent strain of {level} = {100 * v:.1f} % is beyond {100 * a_hi:g} %, far past bone "
                       "yield (0.7-0.8 %): the linear result only flags an overload")
    return out


def inclusion_error(cells_across, surface="fitted"):
    """Error (%) of a stiff sphere's mean stress ``cells_across`` cells across its diameter
    (:data:`INCLUSION_ERROR`, interpolated linearly in log n and log error); None outside the table."""
    table = INCLUSION_ERROR.get(surface, INCLUSION_ERROR["fitted"])
    n = np.log([t[0] for t in table])
    e = np.log([t[1] for t in table])
    if not (math.isfinite(cells_across) and n[0] <= math.log(max(cells_across, 1e-9)) <= n[-1]):
        return None
    return float(np.exp(np.interp(math.log(cells_across), n, e)))


def check_resolution(segment):
    """Messages (list of str, each starting with :data:`~vertebrafe.errors.RESOLUTION_PREFIX`, one per level) for
    the treated levels of ``segment`` whose narrowest cement bolus is fewer than ``LIMITS["bolus_cells_across"]``
    cells across (the ``bolus_cells_across`` of the level's last vertebroplasty or kyphoplasty) or whose
    bipedicular bolus's cells make more or fewer connected sets than the bolus has pieces (two boluses apart
    whose cells touch across the bone between them, or a joined one that the cells split)."""
    last = {}
    for op in getattr(segment, "history", ()):
        if op.kind in ("vertebroplasty", "kyphoplasty") and "bolus_cells_across" in op.results:
            last[op.level] = op
    out = []
    for level, op in last.items():
        n = float(op.results["bolus_cells_across"])
        surface = op.parameters.get("surface") or "fitted"
        lo = PILLOWED_CELLS_ACROSS if surface == "pillowed" else LIMITS["bolus_cells_across"][0]
        joined = _pieces_note(segment, level, op)
        if not (math.isfinite(n) and n < lo):
            if joined:
                out.append(f"{RESOLUTION_PREFIX}{level}'s {joined}")
            continue
        table = INCLUSION_ERROR.get(surface, INCLUSION_ERROR["fitted"])
        err = inclusion_error(n, surface)
        size = f"+{err:.0f} %" if err is not None else f"+{table[0][1]:.0f} % at {table[0][0]} cells"
        head = f"{RESOLUTION_PREFIX}{level}'s narrowest cement bolus is {n:.1f} cells across (< {lo:g}): {level}'s "
        coarse = (f"a stiff sphere so coarse, {surface} surface: mean stress {size}; docs/validation.md \"Stiff "
                  "spherical inclusion\"")
        if op.kind == "kyphoplasty":
            out.append(head + "PMMA, body, core, endplate and cancellous stresses, its overload index and its stiffness "
                       f"in the segment are not mesh-converged ({coarse}; and the balloons' contact-face edges: from 2 "
                       "to 1 mm the stresses move by 8-24 %, the overload index by +15 %, the stiffness by -7 %, "
                       "docs/validation.md \"Cemented vertebrae\"); plate stiffness, factor of risk and adjacent "
                       "ratios converge (not the lower endplate's, -5.5 %); check with `vertebrafe converge`"
                       + (f"; and {level}'s {joined}" if joined else ""))
        else:
            out.append(head + f"cement, body and core stresses are not mesh-converged ({coarse}); plate stiffness and "
                       "adjacent ratios converge; check with `vertebrafe converge`"
                       + ("" if surface == "pillowed" else
                          "; surface='pillowed' converges them for a bolus clear of the cortex (docs/clinical.md)")
                       + (f"; and {level}'s {joined}" if joined else ""))
    return out


def _pieces_note(segment, level, op):
    """The part of a resolution message (str, or "" if none) for a bipedicular bolus whose cement cells make more
    or fewer connected sets (``bolus_count``, cells sharing a node connected) than the bolus has pieces (its
    recorded ``bolus_pieces``, from its ``bolus_gap_mm`` and ``bridge_neck_mm``; a kyphoplasty's two cavities
    have no bridge, no neck)."""
    r = op.results
    if "bolus_pieces" not in r or "bolus_count" not in r:
        return ""
    gap, neck = float(r["bolus_gap_mm"]), float(r.get("bridge_neck_mm", 0.0))
    pieces, count = int(r["bolus_pieces"]), int(r["bolus_count"])
    if count == pieces:
        return ""
    h = getattr(segment, "element_size", None)
    at = f" at element size {h:g} mm" if h else ""
    if pieces == 2:
        return (f"two cement boluses are {gap:.1f} mm apart, but their cells{at} make one connected set (cells "
                "sharing nodes across the bone between them): the septum is not resolved and the stresses near it "
                "are those of touching boluses; a finer mesh resolves it (docs/clinical.md, \"Joined boluses\")")
    waist = f" (a neck {neck:.1f} mm across)" if neck > 0.0 else ""
    return (f"cement bolus is one piece{waist}, but its cells{at} make {count} connected sets: the waist is not "
            "resolved; a finer mesh resolves it (docs/clinical.md, \"Joined boluses\")")


def warn(messages, stacklevel=3, category=PlausibilityWarning):
    """Issue each message as a ``category`` warning (default :class:`PlausibilityWarning`); returns
    ``messages``."""
    for m in messages:
        warnings.warn(m, category, stacklevel=stacklevel)
    return messages
