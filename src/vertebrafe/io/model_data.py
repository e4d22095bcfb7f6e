"""The solver-neutral description of a complete :class:`~vertebrafe.Model` for export to other solvers.

:func:`describe` reads a model once into plain arrays (mesh, cell and node sets, per-cell materials and
element formulations, prescribed displacements, nodal forces, rigid plates with their loads, the cells'
initial stress);
:mod:`vertebrafe.io.abaqus` (CalculiX/Abaqus ``.inp``) and :mod:`vertebrafe.io.febio` (FEBio ``.feb``)
write it; :func:`vertebrafe.io.export.export` picks the writer. Units stay mm, N, MPa.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["ExportWarning", "ModelData", "PlateData", "describe", "isotropic_constants", "set_names"]


class ExportWarning(UserWarning):
    """The exported model is valid but will not reproduce vertebrafe's numbers exactly (an element
    formulation without an exact counterpart in the target solver, or one-sided springs that need the
    target's nonlinear solution procedure)."""


@dataclass(frozen=True)
class PlateData:
    """One rigid plate: tied ``nodes (k,)``, reference point ``center (3,)`` mm, ``prescribed (6,)`` bool and
    ``values (6,)`` (translation mm, rotation rad) of its DOFs, and the ``load (6,)`` it carries (force N,
    moment N mm about the centre, nodal forces on its tied nodes included)."""

    nodes: np.ndarray
    center: np.ndarray
    prescribed: np.ndarray
    values: np.ndarray
    load: np.ndarray


@dataclass(frozen=True)
class ModelData:
    """Everything a writer needs, as plain arrays (0-based indices).

    ``points (n, 3)`` mm, ``cells (m, k)`` in VTK node order, ``cell_type`` (meshio name),
    ``formulation (m,)`` names, ``materials (q, 6, 6)`` MPa (Voigt xx, yy, zz, xy, yz, xz, engineering
    shear) with ``material (m,)`` the row of each cell, ``cell_sets`` ``{"tag:name": cells}`` from the
    named integer tags, ``node_sets`` ``{name: nodes}``, ``fixed (n, 3)`` bool with ``fixed_value (n, 3)``
    mm, ``force (n, 3)`` N on the nodes not tied to a plate, ``plates`` (:class:`PlateData`), ``springs``
    (the model's :class:`~vertebrafe.springs.SpringSet` list, plain arrays), ``initial_stress (m, 6)`` MPa
    (:attr:`vertebrafe.fem.Model.initial_stress`, Voigt xx, yy, zz, xy, yz, xz) or None without one, and
    ``initial_stress_in_force``: whether ``force`` and the plate loads hold the initial stress's nodal forces
    ``-int B^T sigma_0 dV`` (:func:`describe` with ``initial_stress_as_load``).
    """

    points: np.ndarray
    cells: np.ndarray
    cell_type: str
    formulation: np.ndarray
    materials: np.ndarray
    material: np.ndarray
    cell_sets: dict
    node_sets: dict
    fixed: np.ndarray
    fixed_value: np.ndarray
    force: np.ndarray
    plates: list
    springs: list
    initial_stress: np.ndarray = None
    initial_stress_in_force: bool = False


def describe(model, initial_stress_as_load=False):
    """The :class:`ModelData` of ``model``; ConstraintError if a node is both tied to a plate and prescribed.

    ``initial_stress_as_load``: add the nodal forces of the model's initial stress
    (:meth:`~vertebrafe.fem.Model.initial_stress_load`) to ``force`` and the plate loads, for a writer whose
    solver has no initial stress of the cells; the displacements are then the same and the solver's stresses
    lack ``initial_stress``."""
    mesh = model.mesh
    springs = list(getattr(model, "springs", []))
    cavities = [s.name for s in springs if not hasattr(s, "nodes_a")]
    if cavities:
        raise InputError(f"the model has fluid cavities {cavities} (a fluid nucleus), which neither CalculiX nor "
                         f"FEBio input files can express as vertebrafe solves them (a uniform pressure from the "
                         f"volume change; Abaqus's *FLUID CAVITY would be the form); export a model with a "
                         f"solid nucleus (segment(..., nucleus='solid'))")
    initial = getattr(model, "initial_stress", None)
    if initial is not None and not np.any(initial != 0.0):
        initial = None
    as_load = bool(initial_stress_as_load) and initial is not None
    nodal = model._force + model.initial_stress_load() if as_load else model._force
    node_plate = model._check_ties()
    plate_loads = model._plate_loads(nodal)
    force = np.where((node_plate >= 0)[:, None], 0.0, nodal)
    cell_sets = {}
    for tag, table in mesh.tag_names.items():
        values = mesh.cell_data.get(tag)
        if values is None or values.ndim != 1:
            continue
        for value, name in sorted(table.items()):
            idx = np.flatnonzero(values == value)
            if idx.size:
                cell_sets[f"{tag}:{name}"] = idx
    plates = [PlateData(nodes=p.nodes.copy(), center=p.center.copy(), prescribed=p.prescribed.copy(),
                        values=np.where(p.prescribed, p.values, 0.0), load=plate_loads[p.index])
              for p in model.plates]
    return ModelData(points=np.asarray(mesh.points, dtype=float), cells=np.asarray(mesh.cells, dtype=np.int64),
                     cell_type=mesh.cell_type, formulation=model.formulation, materials=model._C.copy(),
                     material=model._material.copy(), cell_sets=cell_sets,
                     node_sets={k: np.asarray(v, dtype=np.int64) for k, v in mesh.node_sets.items()},
                     fixed=model._fixed.copy(), fixed_value=np.where(model._fixed, model._fixed_value, 0.0),
                     force=force, plates=plates, springs=springs,
                     initial_stress=None if initial is None else np.array(initial, dtype=float),
                     initial_stress_in_force=as_load)


def isotropic_constants(C, rtol=1e-12):
    """``(E, nu)`` if the Voigt matrix ``C (6, 6)`` is isotropic to ``rtol`` (relative to its largest entry),
    else None. ``E = mu (3 lambda + 2 mu) / (lambda + mu)``, ``nu = lambda / (2 (lambda + mu))``."""
    lam, mu = C[0, 1], C[3, 3]
    iso = np.zeros((6, 6))
    iso[:3, :3] = lam
    iso[np.arange(3), np.arange(3)] = lam + 2 * mu
    iso[np.arange(3, 6), np.arange(3, 6)] = mu
    if np.max(np.abs(C - iso)) > rtol * np.max(np.abs(C)):
        return None
    return mu * (3 * lam + 2 * mu) / (lam + mu), lam / (2 * (lam + mu))


def set_names(names, prefix="", reserved=()):
    """Map vertebrafe names (any characters) to unique solver identifiers: letters, digits and ``_``,
    starting with a letter, at most 80 characters, unique without regard to case (Abaqus and CalculiX
    fold case). Returns ``{name: identifier}``."""
    taken = {r.upper() for r in reserved}
    out = {}
    for name in names:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", str(name))
        if not base or not base[0].isalpha():
            base = "S_" + base
        base = base[:76]
        ident, k = base, 1
        while ident.upper() in taken:
            k += 1
            ident = f"{base}_{k}"
        taken.add(ident.upper())
        out[name] = ident
    return out
