"""FEBio input file (``.feb``, format version 4.0) of a complete :class:`~vertebrafe.Model`.

What is written (see docs/interop.md for the full mapping):

* ``Mesh``: ``Nodes``, one ``Elements`` part per material and element type (``hex8``, ``tet4``,
  ``tet10``; VTK node order is FEBio's), an ``ElementSet`` per named tag value (``region_cortex``...)
  and a ``NodeSet`` per node set; ``MeshDomains``: one ``SolidDomain`` per part;
* ``Material``: ``isotropic elastic`` (E, v) for isotropic matrices, else ``anisotropic elastic`` with
  the 21 constants ``c11 ... c66`` of vertebrafe's Voigt matrix (order xx, yy, zz, xy, yz, xz, the same as
  FEBio's; the shear entries are tensor components C_1212 etc., numerically equal to vertebrafe's
  engineering-shear matrix entries);
* each rigid plate as a ``rigid body`` material with ``center_of_mass`` at the plate centre, made a body
  by one small rigid hex8 there (8 extra nodes; FEBio needs elements to create a rigid body) and tied to
  the plate's nodes by a ``rigid`` boundary condition; its prescribed DOFs are ``rigid_fixed`` /
  ``rigid_displacement`` / ``rigid_rotation`` and its force and moment (N mm, about the centre)
  ``rigid_force`` / ``rigid_moment`` loads in the ``Rigid`` section;
* ``Boundary``: ``zero displacement`` per DOF for fixed nodes, ``prescribed displacement`` per DOF with a
  node-data map for non-zero values; ``Loads``: one ``nodal_force`` with a vec3 node-data map (every
  nodal force of the model: tractions, pressures, body and follower loads); all scaled by one linear
  load curve over a single static step;
* spring sets (:attr:`vertebrafe.Model.springs`) between two nodes: a ``DiscreteSet`` and a
  ``linear spring`` or ``tension-only linear spring`` discrete material (stiffness ``E`` in N/mm) per
  set and stiffness; sets FEBio has no form for (compression-only, slack, interpolated ends) are
  refused with an InputError naming the set and the reason;
* the cells' initial stress (:attr:`vertebrafe.fem.Model.initial_stress`, a nucleus swelling pressure), for
  which FEBio has no linear-elastic counterpart: its nodal forces ``-int B^T sigma_0 dV`` join the nodal and
  plate loads, so the displacements are the same; FEBio's stresses then lack ``sigma_0``, which a comment in
  the file lists and an :class:`~vertebrafe.io.export.ExportWarning` names;
* ``Output``: the plot file with displacement, stress and reaction forces, and a log of nodal
  displacements and rigid-body data.

FEBio solves the nonlinear (finite-strain) problem: ``isotropic elastic`` and ``anisotropic elastic``
are St Venant-Kirchhoff materials, equal to vertebrafe's linear elasticity only in the small-strain
limit, and its hex8 uses full 2x2x2 integration. vertebrafe's B-bar and incompatible-mode hex8 have no
exact FEBio counterpart; they are written as hex8 with an :class:`~vertebrafe.io.export.ExportWarning`.
"""
from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET

import numpy as np

from .._version import __version__
from ..errors import InputError
from .atomic import atomic_path
from .provenance import check_replaceable
from .model_data import ExportWarning, describe, isotropic_constants, set_names

__all__ = ["write_feb", "ELEMENT_NAMES", "VERSION"]

#: The FEBio input format version written.
VERSION = "4.0"
#: meshio cell type -> FEBio element type.
ELEMENT_NAMES = {"hexahedron": "hex8", "tetra": "tet4", "tetra10": "tet10"}
#: Formulations with an exact small-strain counterpart in FEBio.
EXACT = {"full"}
#: Voigt (row, column) of FEBio's ``anisotropic elastic`` constants c11 ... c66 (upper triangle).
ANISO_KEYS = tuple((i, j) for i in range(6) for j in range(i, 6))

def _num(v):
    """Shortest text that reads back as the same float."""
    return repr(float(v))


def _vec(v):
    return ",".join(_num(x) for x in v)


def _ids(ids):
    return ",".join(str(int(i)) for i in ids)


def _sub(parent, tag, text=None, **attrib):
    e = ET.SubElement(parent, tag, {k: str(v) for k, v in attrib.items()})
    if text is not None:
        e.text = str(text)
    return e


def _material(parent, ident, name, C):
    iso = isotropic_constants(C)
    if iso is not None:
        m = _sub(parent, "material", id=ident, name=name, type="isotropic elastic")
        _sub(m, "density", "1")
        _sub(m, "E", _num(iso[0]))
        _sub(m, "v", _num(iso[1]))
    else:
        m = _sub(parent, "material", id=ident, name=name, type="anisotropic elastic")
        _sub(m, "density", "1")
        for i, j in ANISO_KEYS:
            _sub(m, f"c{i + 1}{j + 1}", _num(C[i, j]))


def _check_formulations(data):
    for form in np.unique(data.formulation):
        if str(form) not in EXACT:
            warnings.warn(f"{int(np.sum(data.formulation == form))} cell(s) use formulation {form!r}, which FEBio "
                          f"has no exact counterpart for; they are written as full-integration "
                          f"{ELEMENT_NAMES[data.cell_type]}", ExportWarning, stacklevel=4)


#: vertebrafe spring kind -> FEBio discrete material (springs between two nodes, zero onset).
SPRING_TYPES = {"linear": "linear spring", "tension": "tension-only linear spring"}


def _springs(data, mesh, discrete, reserved):
    """``DiscreteSet`` (Mesh) and ``discrete_material`` + ``discrete`` (Discrete) per spring set and stiffness."""
    names = set_names([ss.name for ss in data.springs], prefix="springs_", reserved=reserved)
    dmat = 0
    for ss in data.springs:
        why = None
        if ss.kind not in SPRING_TYPES or np.any(ss.onset != 0.0):
            why = (f"kind {ss.kind!r} with onset (slack/gap) {float(np.abs(ss.onset).max()):g} mm has no FEBio "
                   f"discrete material (FEBio has 'linear spring' and 'tension-only linear spring' with no slack)")
        elif ss.weights_a.shape[1] != 1 or ss.weights_b.shape[1] != 1:
            why = "its ends are interpolated points (FEBio discrete springs join two nodes)"
        else:
            line = data.points[ss.nodes_b[:, 0]] - data.points[ss.nodes_a[:, 0]]
            length = np.linalg.norm(line, axis=1)
            if np.any(length == 0) or np.any(np.abs(line / np.maximum(length, 1e-300)[:, None] - ss.direction) > 1e-6):
                why = "some springs do not act along the line between their nodes"
        if why:
            raise InputError(f"spring set {ss.name!r} cannot be written for FEBio: {why}")
        stiffness, inverse = np.unique(ss.stiffness, return_inverse=True)
        for g, k in enumerate(stiffness):
            dmat += 1
            name = f"{names[ss.name]}_{g + 1}"
            dset = _sub(mesh, "DiscreteSet", name=name)
            for i in np.flatnonzero(inverse.ravel() == g):
                _sub(dset, "delem", f"{ss.nodes_a[i, 0] + 1},{ss.nodes_b[i, 0] + 1}")
            m = _sub(discrete, "discrete_material", id=dmat, name=name, type=SPRING_TYPES[ss.kind])
            _sub(m, "E", _num(k))
            _sub(discrete, "discrete", dmat=dmat, discrete_set=name)


def _initial_stress_note(stress):
    """The comment (and warning) on a model's initial stress ``(m, 6)``, written as nodal forces: its distinct
    values (Voigt xx, yy, zz, xy, yz, xz, MPa) with their cells (element ids)."""
    cells = np.flatnonzero(np.any(stress != 0.0, axis=1))
    values, inverse = np.unique(stress[cells], axis=0, return_inverse=True)
    parts = []
    for k, v in enumerate(values):
        ids = cells[inverse.ravel() == k] + 1
        parts.append(f"[{', '.join(f'{x:.6g}' for x in v)}] MPa in {ids.size} element(s), ids {ids.min()} to {ids.max()}")
    note = (f" the model's initial stress of {cells.size} cell(s) (a nucleus swelling pressure) is written as its "
            f"nodal forces -int B^T S0 dV (in the nodal and rigid loads): the displacements are vertebrafe's; "
            f"FEBio's stresses lack S0 (add it to compare): " + "; ".join(parts) + " ")
    warnings.warn(note.strip(), ExportWarning, stacklevel=3)
    return note.replace("--", "- -")


def write_feb(model, path, *, overwrite=False):
    """Write ``model`` as an FEBio 4.0 input file at ``path`` (``.feb``); returns ``path``.

    Node ``i`` of the model is FEBio node ``i + 1`` and cell ``j`` element ``j + 1``; each rigid plate
    adds 8 nodes and one element after them. The file is written to a temporary name and moved into
    place; an existing ``path`` is replaced only with ``overwrite=True`` and only if vertebrafe wrote it
    (:mod:`vertebrafe.io.provenance`).
    """
    path = os.fspath(path)
    check_replaceable(path, overwrite)
    data = describe(model, initial_stress_as_load=True)
    if data.cell_type not in ELEMENT_NAMES:
        raise InputError(f"cell type {data.cell_type!r} has no FEBio element; exportable: {sorted(ELEMENT_NAMES)}")
    _check_formulations(data)
    n, m = data.points.shape[0], data.cells.shape[0]
    etype = ELEMENT_NAMES[data.cell_type]

    root = ET.Element("febio_spec", version=VERSION)
    root.append(ET.Comment(f" written by vertebrafe {__version__}; units mm, N, MPa "))
    if data.initial_stress is not None:
        root.append(ET.Comment(_initial_stress_note(data.initial_stress)))
    _sub(root, "Module", type="solid")
    control = _sub(root, "Control")
    _sub(control, "analysis", "STATIC")
    _sub(control, "time_steps", "1")
    _sub(control, "step_size", "1")
    solver = _sub(control, "solver", type="solid")
    _sub(solver, "symmetric_stiffness", "symmetric")

    # sections in the order of FEBio 4.0 files; empty ones are removed at the end
    materials, mesh, domains, mesh_data, discrete, load_data, loads, rigid, boundary, output = (
        _sub(root, tag) for tag in ("Material", "Mesh", "MeshDomains", "MeshData", "Discrete", "LoadData",
                                    "Loads", "Rigid", "Boundary", "Output"))
    # materials: one per elasticity matrix in use, then one rigid body per plate
    used = [k for k in range(len(data.materials)) if np.any(data.material == k)]
    for ident, k in enumerate(used, start=1):
        _material(materials, ident, f"M{k + 1}", data.materials[k])
    plate_names = [f"plate{k + 1}" for k in range(len(data.plates))]
    for k, p in enumerate(data.plates):
        rb = _sub(materials, "material", id=len(used) + k + 1, name=plate_names[k], type="rigid body")
        _sub(rb, "density", "1")
        _sub(rb, "center_of_mass", _vec(p.center))

    # mesh: nodes (the model's, then 8 per plate for its rigid hex8), parts, sets
    nodes = _sub(mesh, "Nodes", name="nodes")
    for i, x in enumerate(data.points, start=1):
        _sub(nodes, "node", _vec(x), id=i)
    extent = np.ptp(data.points, axis=0).max() if n else 1.0
    corners = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                        [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=float)
    for k, p in enumerate(data.plates):
        for a, c in enumerate(p.center + 0.005 * extent * corners):
            _sub(nodes, "node", _vec(c), id=n + 8 * k + a + 1)
    parts = []
    for k in used:
        cells = np.flatnonzero(data.material == k)
        name = f"part_M{k + 1}"
        part = _sub(mesh, "Elements", type=etype, name=name)
        for c in cells:
            _sub(part, "elem", _ids(data.cells[c] + 1), id=c + 1)
        parts.append((name, f"M{k + 1}"))
    for k in range(len(data.plates)):
        name = f"part_{plate_names[k]}"
        part = _sub(mesh, "Elements", type="hex8", name=name)
        _sub(part, "elem", _ids(n + 8 * k + np.arange(1, 9)), id=m + k + 1)
        parts.append((name, plate_names[k]))
    reserved = [name for name, _ in parts]
    for key, ident in set_names(data.cell_sets, reserved=reserved).items():
        _sub(mesh, "ElementSet", _ids(data.cell_sets[key] + 1), name=ident)
    node_sets = {}  # FEBio name -> 0-based nodes, for every set a condition refers to

    def node_set(name, idx):
        node_sets[name] = idx
        _sub(mesh, "NodeSet", _ids(idx + 1), name=name)
        return name

    internal = ["fixed_x", "fixed_y", "fixed_z", "prescribed_x", "prescribed_y", "prescribed_z", "loaded"]
    internal += [f"{p}_nodes" for p in plate_names]
    for key, ident in set_names(data.node_sets, reserved=internal).items():
        node_set(ident, data.node_sets[key])

    for name, mat in parts:
        _sub(domains, "SolidDomain", name=name, mat=mat)
    _springs(data, mesh, discrete, reserved=reserved)

    # boundary conditions and loads (node-data maps for values that vary per node)
    for d, axis in enumerate("xyz"):
        zero = np.flatnonzero(data.fixed[:, d] & (data.fixed_value[:, d] == 0.0))
        if zero.size:
            bc = _sub(boundary, "bc", name=f"fixed_{axis}", type="zero displacement",
                      node_set=node_set(f"fixed_{axis}", zero))
            for a in "xyz":
                _sub(bc, f"{a}_dof", "1" if a == axis else "0")
        moved = np.flatnonzero(data.fixed[:, d] & (data.fixed_value[:, d] != 0.0))
        if moved.size:
            name = node_set(f"prescribed_{axis}", moved)
            values = _sub(mesh_data, "NodeData", name=f"displacement_{axis}", node_set=name, data_type="scalar")
            for lid, v in enumerate(data.fixed_value[moved, d], start=1):
                _sub(values, "node", _num(v), lid=lid)
            bc = _sub(boundary, "bc", name=f"prescribed_{axis}", type="prescribed displacement", node_set=name)
            _sub(bc, "dof", axis)
            _sub(bc, "value", f"displacement_{axis}", lc=1, type="map")
            _sub(bc, "relative", "0")
    for k, p in enumerate(data.plates):
        bc = _sub(boundary, "bc", name=f"{plate_names[k]}_tie", type="rigid",
                  node_set=node_set(f"{plate_names[k]}_nodes", p.nodes))
        _sub(bc, "rb", plate_names[k])

    for k, p in enumerate(data.plates):
        rb = plate_names[k]
        fixed = p.prescribed & (p.values == 0.0)
        if fixed.any():
            bc = _sub(rigid, "rigid_bc", name=f"{rb}_fixed", type="rigid_fixed")
            _sub(bc, "rb", rb)
            for j, dof in enumerate(("Rx", "Ry", "Rz", "Ru", "Rv", "Rw")):
                _sub(bc, f"{dof}_dof", "1" if fixed[j] else "0")
        for j in np.flatnonzero(p.prescribed & (p.values != 0.0)):
            kind, dof = ("rigid_displacement", "xyz"[j]) if j < 3 else ("rigid_rotation", ("Ru", "Rv", "Rw")[j - 3])
            bc = _sub(rigid, "rigid_bc", name=f"{rb}_{dof}", type=kind)
            _sub(bc, "rb", rb)
            _sub(bc, "dof", dof)
            _sub(bc, "value", _num(p.values[j]), lc=1)
            _sub(bc, "relative", "0")
        for j in np.flatnonzero((p.load != 0.0) & ~p.prescribed):
            kind, dof = ("rigid_force", ("Rx", "Ry", "Rz")[j]) if j < 3 else ("rigid_moment", ("Ru", "Rv", "Rw")[j - 3])
            load = _sub(rigid, "rigid_load", name=f"{rb}_{dof}", type=kind)
            _sub(load, "rb", rb)
            _sub(load, "dof", dof)
            _sub(load, "value", _num(p.load[j]), lc=1)
            _sub(load, "relative", "0")
            if j < 3:
                _sub(load, "load_type", "0")

    loaded = np.flatnonzero(np.any(data.force != 0.0, axis=1))
    if loaded.size:
        name = node_set("loaded", loaded)
        values = _sub(mesh_data, "NodeData", name="nodal_forces", node_set=name, data_type="vec3")
        for lid, f in enumerate(data.force[loaded], start=1):
            _sub(values, "node", _vec(f), lid=lid)
        load = _sub(loads, "nodal_load", name="nodal_forces", type="nodal_force", node_set=name)
        _sub(load, "value", "nodal_forces", lc=1, type="map")
    curve = _sub(load_data, "load_controller", id=1, name="ramp", type="loadcurve")
    _sub(curve, "interpolate", "LINEAR")
    points = _sub(curve, "points")
    _sub(points, "pt", "0,0")
    _sub(points, "pt", "1,1")

    plot = _sub(output, "plotfile", type="febio")
    for var in ("displacement", "stress", "reaction forces"):
        _sub(plot, "var", type=var)
    log = _sub(output, "logfile")
    _sub(log, "node_data", data="ux;uy;uz", delim=",", file="displacement.csv")
    if data.plates:
        _sub(log, "rigid_body_data", data="x;y;z;Fx;Fy;Fz;Mx;My;Mz", delim=",", file="rigid_bodies.csv")

    for section in (mesh_data, discrete, loads, rigid, boundary):
        if len(section) == 0:
            root.remove(section)
    ET.indent(root, space=" ")
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="ISO-8859-1", xml_declaration=True)
    return path
