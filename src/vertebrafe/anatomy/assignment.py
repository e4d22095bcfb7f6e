"""Materials of a meshed segment, kept apart from its geometry.

The meshers build geometry and tags only; :func:`with_materials` returns a new
:class:`~vertebrafe.anatomy.segment.Segment` carrying the material assignment as data (``materials``, the
per-cell ``elasticity`` (m, 6, 6) MPa, and the cell field ``modulus`` of its own mesh), and leaves the
input segment and its mesh unchanged. :func:`resolve_materials` turns the ``bmd`` / ``materials``
arguments of :func:`~vertebrafe.anatomy.segment.segment` into one material description.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..elasticity import axial_modulus, isotropic
from ..errors import InputError
from ..materials import LevelMaterials, MaterialSet

__all__ = ["cell_elasticity", "resolve_materials", "with_materials"]


def cell_elasticity(mesh, materials, fibres=False):
    """Per-cell elasticity ``(m, 6, 6)`` (MPa) of ``mesh`` from its ``region`` tags.

    ``materials`` is a :class:`vertebrafe.materials.MaterialSet` (its ``cell_elasticity``), a
    :class:`~vertebrafe.materials.LevelMaterials` (per-vertebra vBMD, uses the ``level`` tags), a mapping
    ``{region name: (E MPa, nu)}`` or ``{region name: C (6, 6)}``, or an object with a
    ``region_elasticity(name)`` method.

    ``fibres``: True where the annulus cells carry collagen fibres; they then take the ground substance
    (``MaterialSet.annulus_matrix``, the mapping's ``"annulus_matrix"`` entry, ``region_elasticity("annulus_matrix")``)
    instead of the fibre-free disc's homogenised annulus (``annulus``); see :meth:`MaterialSet.for_disc
    <vertebrafe.materials.MaterialSet.for_disc>`.
    """
    if hasattr(materials, "for_disc"):                         # MaterialSet, LevelMaterials
        materials, fibres = materials.for_disc(bool(fibres)), False
    if hasattr(materials, "mesh_elasticity"):                  # LevelMaterials: per-level (and per-cell) vBMD
        return materials.mesh_elasticity(mesh)
    tags = mesh.cell_data["region"]
    names = mesh.tag_names["region"]
    if hasattr(materials, "cell_elasticity"):
        return materials.cell_elasticity(tags, names)
    uniq = np.unique(tags)
    table = []
    for t in uniq:
        r = names[int(t)]
        r = "annulus_matrix" if fibres and r == "annulus" else r
        if hasattr(materials, "region_elasticity"):
            C = np.asarray(materials.region_elasticity(r), dtype=float)
        else:
            if r not in materials:
                why = (" (the ground substance between the fibres of this fibre-reinforced annulus; 'annulus' is the "
                       "fibre-free disc's, used with fibres=False)" if r == "annulus_matrix" else "")
                raise InputError(f"materials has no entry for region {r!r}{why}; regions in the mesh: "
                                 f"{[names[int(u)] for u in uniq]}")
            v = materials[r]
            if np.shape(v) == (6, 6):
                C = np.asarray(v, dtype=float)
            else:
                E, nu = v
                C = isotropic(float(E), float(nu))
        table.append(C)
    return np.stack(table)[np.searchsorted(uniq, tags)]


def with_materials(segment, materials):
    """A new segment: ``segment`` with ``materials`` (see :func:`cell_elasticity`), its per-cell
    ``elasticity`` and a copy of its mesh carrying the cell field ``modulus`` (axial modulus ``1 / S_zz``,
    MPa). ``segment`` is not changed.

    Materials go on the intact segment: a fractured or augmented segment carries damaged and cement-mixed
    elasticity that new materials would silently discard, so that raises InputError.
    """
    if segment.history:
        raise InputError(f"materials on a segment with clinical history "
                         f"{[op.kind + ' ' + op.level for op in segment.history]}: give the materials to the "
                         f"intact segment (segment(..., materials=...)), then apply the operations")
    elasticity = cell_elasticity(segment.mesh, materials, fibres=getattr(segment, "fibres", None) is not None)
    mesh = segment.mesh.copy()
    mesh.set_cell_data("modulus", axial_modulus(elasticity))
    return dataclasses.replace(segment, mesh=mesh, materials=materials, elasticity=elasticity)


def resolve_materials(bmd, materials, levels):
    """The materials of :func:`~vertebrafe.anatomy.segment.segment` from its ``bmd`` (number or
    ``{vertebra: vBMD}``) and ``materials`` for the vertebrae ``levels``; None when both are None."""
    if isinstance(bmd, dict) or hasattr(bmd, "items"):
        per = dict(bmd.items())
        unknown = [k for k in per if k not in levels]
        if unknown:
            raise InputError(f"bmd has {unknown[0]!r}, which is not a vertebra of this segment; allowed: "
                             f"{list(levels)}")
        missing = [v for v in levels if v not in per]
        if missing:
            raise InputError(f"bmd has no vBMD for {missing} (mg/cm^3); give one per vertebra: {list(levels)}")
        if materials is not None and not isinstance(materials, MaterialSet):
            raise InputError(f"bmd per vertebra needs materials = None or a MaterialSet; got {type(materials).__name__}")
        probe = LevelMaterials(MaterialSet(bmd=100.0), per)          # validates the values
        base = materials if materials is not None else MaterialSet(bmd=float(np.mean(list(probe.bmd.values()))))
        return LevelMaterials(base, probe.bmd)
    if bmd is not None and not isinstance(bmd, (int, float, np.integer, np.floating)):
        raise InputError(f"bmd = {bmd!r}; expected a number (mg/cm^3) or {{vertebra: vBMD}}, e.g. "
                         f"{{{', '.join(repr(v) + ': 70' for v in levels)}}}")
    if materials is None and bmd is not None:
        return MaterialSet(bmd=bmd)
    if materials is not None and bmd is not None and getattr(materials, "bmd", bmd) != bmd:
        raise InputError(f"bmd = {bmd!r} conflicts with materials.bmd = {materials.bmd!r}; give one of them")
    return materials
