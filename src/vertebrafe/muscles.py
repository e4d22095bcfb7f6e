"""Trunk-muscle forces on a vertebra, with published moment arms.

A muscle group is modelled as the resultant of a bilaterally symmetric pair (left and right forces equal,
so the resultant lies in the mid-sagittal plane and the lateral offsets cancel): a force of magnitude
``force`` (N) along the vertebra's axis, pulling it caudally (toward the pelvis, where both groups
attach), acting at the muscle's sagittal moment arm from the vertebral body's centroid (posterior for the
back extensors, anterior for the abdominal wall). On the vertebra this is the compressive force plus the
moment ``r x F``: the erector spinae extend, the rectus abdominis flexes. :func:`muscle` returns it as a
distributed :class:`~vertebrafe.loads.LevelLoad` for ``Load(level_loads=[...])``.

==================  ================================================  =================================
muscle              sagittal moment arm (mm) from the vertebral body  source / status
==================  ================================================  =================================
``erector_spinae``  50 posterior, T10-L5                              the fixed value with which
                                                                      biomechanical models approximate
                                                                      the erector spinae lever arm, 5 cm
                                                                      or 2 in (Gungor 2013, PhD thesis,
                                                                      Auburn University, abstract, which
                                                                      fits subject-specific values); the
                                                                      upper-body load's 0.05 m [verified
                                                                      as the usual value]
``rectus_abdominis`` 97, 91, 85, 85, 98 anterior at L1..L5 (the disc  Jorgensen et al. 2005, Clin
                    below each vertebra: L1/L2 .. L5/S1), standing    Biomech 20:242-246 (MRI, upright
                                                                      standing, 5 women) [verified]
==================  ================================================  =================================

Line of action: parallel to the vertebra's axis (the local z of ``segment.frames``), caudal. The lumbar
fibres of longissimus arise from the ilium and insert into the accessory and transverse processes of the
lumbar vertebrae, those of iliocostalis into the costal elements of L1-L4 ("A reappraisal
of the anatomy of the human lumbar erector spinae", Bogduk 1980, J Anat 131:525-540, abstract): they pull
each vertebra toward the pelvis; their obliquity to the vertebral axis, and the shear it carries, is left
out [assumption]. The rectus runs vertically in upright standing. In full flexion the extensors' lever arm
is 10-20 % shorter than in lordosis (Tveit et al. 1994, MRI), so the standing values overestimate it
there. A muscle that balances a flexion moment ``M`` (N m) alone needs ``M / moment_arm``:
:func:`balancing_force`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .loads import LevelLoad, level_centroids

__all__ = ["Muscle", "MUSCLES", "muscle", "balancing_force", "balancing_muscle"]


@dataclass(frozen=True)
class Muscle:
    """A trunk-muscle group: ``side`` ``+1`` anterior / ``-1`` posterior, sagittal moment arms (mm) per
    vertebra, source and status."""

    name: str
    side: int
    moment_arm_mm: dict
    source: str
    status: str


MUSCLES = {m.name: m for m in (
    Muscle("erector_spinae", -1, {v: 50.0 for v in ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")},
           "5 cm, the fixed value with which biomechanical models approximate the erector spinae lever arm "
           "(Gungor 2013, PhD thesis, Auburn University, abstract); same as loads.UPPER_BODY_CONSTANTS", "verified"),
    Muscle("rectus_abdominis", +1, {"L1": 97.0, "L2": 91.0, "L3": 85.0, "L4": 85.0, "L5": 98.0},
           "Jorgensen, Marras, Smith & Pope 2005, Clin Biomech 20:242-246: sagittal moment arms 9.7, 9.1, 8.5, "
           "8.5, 9.8 cm at L1/L2..L5/S1, upright standing (MRI, 5 women)", "verified"),
)}


def _muscle(name):
    try:
        return MUSCLES[name]
    except (KeyError, TypeError):
        raise InputError(f"muscle = {name!r} is not known; known: {sorted(MUSCLES)}") from None


def muscle(segment, name, level, force):
    """The force of muscle group ``name`` (:data:`MUSCLES`) on vertebra ``level`` of ``segment`` as a
    distributed :class:`~vertebrafe.loads.LevelLoad`: ``force`` (N, >= 0) along ``-axis`` of the vertebra at
    the moment arm ``(0, side * arm, 0)`` (vertebra frame) from its body's centroid."""
    m = _muscle(name)
    if level not in segment.levels:
        raise InputError(f"level = {level!r} is not a vertebra of this segment; vertebrae: {list(segment.levels)}")
    if level not in m.moment_arm_mm:
        raise InputError(f"muscle {name!r} has no published moment arm at {level!r}; levels: "
                         f"{sorted(m.moment_arm_mm)}")
    try:
        F = float(force)
    except (TypeError, ValueError):
        raise InputError(f"force = {force!r}; expected a number in N (>= 0)") from None
    if not (np.isfinite(F) and F >= 0):
        raise InputError(f"force = {force!r} N; allowed range [0, inf) (a muscle pulls)")
    R = np.asarray(segment.frames[level][0], dtype=float)
    axis, anterior = R[:, 2], R[:, 1]
    c = level_centroids(segment)[level]
    point = c + m.side * m.moment_arm_mm[level] * anterior
    return LevelLoad(level=level, force=tuple(-F * axis), point=tuple(point), name=name)


def balancing_muscle(moment_x):
    """The muscle group that opposes a sagittal moment whose x component is ``moment_x`` (any unit; flexion
    is negative): the erector spinae for flexion, the rectus abdominis for extension."""
    return "erector_spinae" if moment_x < 0 else "rectus_abdominis"


def balancing_force(name, level, moment):
    """Force (N) of muscle group ``name`` that balances alone a sagittal moment ``moment`` (N m) at
    ``level``: ``moment / moment_arm``."""
    m = _muscle(name)
    if level not in m.moment_arm_mm:
        raise InputError(f"muscle {name!r} has no published moment arm at {level!r}; levels: "
                         f"{sorted(m.moment_arm_mm)}")
    return abs(float(moment)) * 1000.0 / m.moment_arm_mm[level]
