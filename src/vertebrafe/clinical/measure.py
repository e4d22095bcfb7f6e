"""Radiological measurements of a vertebral body on the mesh: six-point morphometry.

As on a lateral radiograph (quantitative morphometry, the six-point method behind Genant's
semi-quantitative grading), six points are placed in the mid-sagittal plane (x = 0) of the vertebra:
the anterior and posterior corners of each endplate (the anterior-most and posterior-most nodes of the
endplate surface on x = 0) and the middle point of each endplate (the point of its mid-sagittal profile
half-way between its two corners, measured along the chord). Heights are the distances

* ``anterior  = |anterior-superior  - anterior-inferior|``,
* ``middle    = |middle-superior    - middle-inferior|``,
* ``posterior = |posterior-superior - posterior-inferior|``  (mm).

The **height loss** of each height is ``1 - H / H_intact`` with ``H_intact`` the same height measured on
the intact geometry of that vertebra (kept by :func:`~vertebrafe.clinical.fracture`; for an untreated
level the current geometry is the intact one): Genant's "reduction relative to the expected height",
with the expected height known exactly. ``height_loss_ratio`` is the largest of the three, and
``genant_grade`` its grade (0: < 20 %, 1: 20-25 %, 2: 25-40 %, 3: >= 40 %).

Angles (deg) are between endplate lines (posterior corner -> anterior corner) in the sagittal plane,
**positive when kyphotic** (anterior side closer), the clinical convention for fracture wedge and
kyphotic angles, as ``Segment.geometry()`` (the dimension tables keep the anatomical + lordotic sign):

* ``wedge_angle_deg``: between the superior and the inferior endplate of the level itself;
* ``kyphotic_angle_deg``: Cobb-like segmental angle between the superior endplate of the vertebra above
  and the inferior endplate of the vertebra below (where the segment lacks a neighbour, the level's own
  endplate is used; ``kyphotic_angle_endplates`` names the two endplates used).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ._common import check_level, is_voxel, midline_profile, operations_of, to_local

__all__ = ["Measurement", "measure", "endplate_points", "body_heights", "genant_grade"]


@dataclass(frozen=True)
class Measurement:
    """Measurements of one vertebra (see the module docstring for the definitions).

    Lengths in mm, angles in degrees (positive = kyphotic), losses as fractions (0..1), cement in mL.
    """

    level: str
    anterior_height_mm: float
    middle_height_mm: float
    posterior_height_mm: float
    intact_anterior_height_mm: float
    intact_middle_height_mm: float
    intact_posterior_height_mm: float
    anterior_height_loss: float
    middle_height_loss: float
    posterior_height_loss: float
    height_loss_ratio: float
    genant_grade: int
    wedge_angle_deg: float
    kyphotic_angle_deg: float
    kyphotic_angle_endplates: tuple
    cement_volume_mL: float
    fractured: bool
    treatment: str

    def as_dict(self):
        """Plain dict of every field."""
        d = asdict(self)
        d["kyphotic_angle_endplates"] = list(self.kyphotic_angle_endplates)
        return d


def genant_grade(loss):
    """Genant semi-quantitative grade of a height loss fraction: 0 (< 0.20), 1 (< 0.25), 2 (< 0.40), else 3."""
    return 0 if loss < 0.20 else 1 if loss < 0.25 else 2 if loss < 0.40 else 3


def endplate_points(profile):
    """Posterior corner, middle point and anterior corner ``(3, 2)`` (y, z) of a mid-sagittal endplate
    profile ``(k, 2)`` ordered posterior to anterior."""
    p, a = profile[0], profile[-1]
    u = a - p
    L = float(np.hypot(*u))
    s = (profile - p) @ (u / L)
    order = np.argsort(s, kind="stable")
    s, prof = s[order], profile[order]
    m = np.array([np.interp(0.5 * L, s, prof[:, 0]), np.interp(0.5 * L, s, prof[:, 1])])
    return np.stack([p, m, a])


def body_heights(local_points, inferior, superior, band=0.0):
    """``(anterior, middle, posterior)`` heights (mm), the superior and inferior six points ``(3, 2)`` each,
    from local coordinates and the endplate node layers (``band``: see :func:`midline_profile`)."""
    top = endplate_points(midline_profile(local_points, superior, band=band))
    bot = endplate_points(midline_profile(local_points, inferior, band=band))
    h = top[:, 1] - bot[:, 1]                         # posterior, middle, anterior (local z)
    return (float(h[2]), float(h[1]), float(h[0])), top, bot


def _line_angle(points2, R):
    """Angle (rad) in the global sagittal plane of the line posterior corner -> anterior corner."""
    d = points2[2] - points2[0]
    g = R @ np.array([0.0, d[0], d[1]])
    return math.atan2(g[2], g[1])


def _band(segment):
    """Half-width (mm) of the mid-sagittal band: half a cell on voxel meshes (no nodes on x = 0)."""
    return 0.5 * segment.element_size if is_voxel(segment) else 0.0


def _endplate(segment, level, which):
    R, _ = segment.frames[level]
    layer = segment.mesh.node_sets[f"{level}:{which}"]
    loc = np.zeros((segment.mesh.n_points, 3))
    loc[layer] = to_local(segment, level, segment.mesh.points[layer])
    return endplate_points(midline_profile(loc, layer, band=_band(segment))), R


def measure(segment, level):
    """Measure vertebra ``level`` of ``segment`` as a radiologist would on a lateral view.

    Returns a :class:`Measurement` (heights mm, losses, Genant grade, wedge and kyphotic angles deg,
    cement volume mL). Raises ``InputError`` for an unknown level or a disc.
    """
    i = check_level(segment, level, layered=False)
    mesh = segment.mesh
    ns = mesh.node_sets
    inf, sup = ns[f"{level}:inferior"], ns[f"{level}:superior"]
    loc = np.zeros((mesh.n_points, 3))
    body = np.union1d(inf, sup) if is_voxel(segment) else np.arange(inf.min(), sup.max() + 1)
    loc[body] = to_local(segment, level, mesh.points[body])
    (ha, hm, hp), top, bot = body_heights(loc, inf, sup, _band(segment))
    frac = operations_of(segment, level, "fracture")
    if frac:
        ref = np.zeros_like(loc)
        ref[body] = frac[-1].data["intact_local_body"]
        (ia, im, ip), _, _ = body_heights(ref, inf, sup)
    else:
        ia, im, ip = ha, hm, hp
    la, lm, lp = (max(0.0, 1.0 - h / h0) for h, h0 in ((ha, ia), (hm, im), (hp, ip)))
    loss = max(la, lm, lp)
    R, _ = segment.frames[level]
    wedge = math.degrees(_line_angle(bot, R) - _line_angle(top, R))
    if i > 0:
        up_name = segment.levels[i - 1]
        up_pts, up_R = _endplate(segment, up_name, "superior")
    else:
        up_name, up_pts, up_R = level, top, R
    if i < len(segment.levels) - 1:
        lo_name = segment.levels[i + 1]
        lo_pts, lo_R = _endplate(segment, lo_name, "inferior")
    else:
        lo_name, lo_pts, lo_R = level, bot, R
    kyph = math.degrees(_line_angle(lo_pts, lo_R) - _line_angle(up_pts, up_R))
    cement = 0.0
    if "cement_fraction" in mesh.cell_data:
        lev = mesh.cell_data["level"]
        code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
        sel = lev == code
        cement = float(np.sum(mesh.cell_data["cement_fraction"][sel] * mesh.cell_volumes()[sel])) / 1000.0
    treat = [op.kind for op in operations_of(segment, level) if op.kind != "fracture"]
    return Measurement(level=level, anterior_height_mm=ha, middle_height_mm=hm, posterior_height_mm=hp,
                       intact_anterior_height_mm=ia, intact_middle_height_mm=im, intact_posterior_height_mm=ip,
                       anterior_height_loss=la, middle_height_loss=lm, posterior_height_loss=lp,
                       height_loss_ratio=loss, genant_grade=genant_grade(loss), wedge_angle_deg=wedge,
                       kyphotic_angle_deg=kyph,
                       kyphotic_angle_endplates=(f"{up_name}:superior", f"{lo_name}:inferior"),
                       cement_volume_mL=cement, fractured=bool(frac),
                       treatment=treat[-1] if treat else "none")
