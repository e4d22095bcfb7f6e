"""A mesh in meshio's terms, both ways: how node sets, face sets and the name tables of integer tags ride
in a :class:`meshio.Mesh` (and so in every file format meshio writes).

* node sets: ``point_data["nodeset:NAME"]`` uint8 masks ``(n,)``;
* name tables: ``field_data["tagname:TAG=NAME"] = [value]``;
* face sets: ``field_data["faceset:NAME"]`` ``(f, k)`` int64;
* names percent-encoded for ``% < > & " '`` (and ``=`` in tag names), see :mod:`vertebrafe.io.names`.

:func:`to_meshio` reads any object with the attributes of a :class:`vertebrafe.Mesh`; :func:`mesh_fields`
returns the keyword arguments of ``Mesh(...)``, so this module needs no mesh class.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..elements import ELEMENT_TYPES
from ..errors import MeshError, MeshWarning
from .names import FACESET_PREFIX, NODESET_PREFIX, TAGNAME_PREFIX, decode_name, encode_name

__all__ = ["to_meshio", "mesh_fields"]


def to_meshio(mesh):
    """A :class:`meshio.Mesh` carrying everything of ``mesh`` (points, cells of ``mesh.cell_type``, cell data,
    node sets, face sets, name tables) in the encoding of this module."""
    import meshio

    point_data = {}
    for name, nodes in mesh.node_sets.items():
        mask = np.zeros(mesh.points.shape[0], dtype=np.uint8)
        mask[nodes] = 1
        point_data[NODESET_PREFIX + encode_name(name)] = mask
    field_data = {}
    for tag, table in mesh.tag_names.items():
        for value, name in table.items():
            key = f"{TAGNAME_PREFIX}{encode_name(tag).replace('=', '%3D')}={encode_name(name)}"
            field_data[key] = np.array([value], dtype=np.int64)
    for name, faces in mesh.face_sets.items():
        field_data[FACESET_PREFIX + encode_name(name)] = faces
    return meshio.Mesh(mesh.points, [(mesh.cell_type, mesh.cells)], point_data=point_data,
                       cell_data={encode_name(k): [v] for k, v in mesh.cell_data.items()}, field_data=field_data)


def mesh_fields(m, cell_type=None):
    """The keyword arguments of :class:`vertebrafe.Mesh` (``points, cells, cell_data, tag_names, node_sets,
    face_sets, cell_type``) read from the :class:`meshio.Mesh` ``m``.

    Takes all cell blocks of ``cell_type`` (default: the first block whose type is in
    :data:`~vertebrafe.elements.ELEMENT_TYPES`), concatenated; other blocks (boundary quads, vertices...) are
    ignored with a :class:`MeshWarning`. gmsh physical names (``field_data = {name: [tag, dim]}`` with
    ``cell_data["gmsh:physical"]``) become the name table of ``gmsh:physical``. Other point data is ignored.
    """
    blocks = list(m.cells)
    if cell_type is None:
        known = [b.type for b in blocks if b.type in ELEMENT_TYPES]
        if not known:
            raise MeshError(f"meshio mesh has no cells of a supported type: blocks "
                            f"{[b.type for b in blocks]}; allowed: {sorted(ELEMENT_TYPES)}")
        cell_type = known[0]
    use = [i for i, b in enumerate(blocks) if b.type == cell_type]
    if not use:
        raise MeshError(f"meshio mesh has no {cell_type!r} cells; blocks: {[b.type for b in blocks]}")
    ignored = sorted({b.type for i, b in enumerate(blocks) if i not in use})
    if ignored:
        warnings.warn(f"from_meshio: ignoring cell blocks of type {ignored}", MeshWarning, stacklevel=3)
    cells = np.concatenate([np.asarray(blocks[i].data) for i in use])
    cell_data = {}
    for name, arrays in m.cell_data.items():
        a = np.concatenate([np.asarray(arrays[i]) for i in use])
        if a.dtype.kind in "iuf" and a.ndim in (1, 2) and not (a.ndim == 2 and a.dtype.kind != "f"):
            cell_data[decode_name(name)] = a.astype(a.dtype.newbyteorder("="), copy=False)
    node_sets = {}
    for name, values in m.point_data.items():
        if name.startswith(NODESET_PREFIX):
            node_sets[decode_name(name[len(NODESET_PREFIX):])] = np.asarray(values).ravel() != 0
    tag_names, face_sets = {}, {}
    for key, value in m.field_data.items():
        value = np.asarray(value)
        if key.startswith(TAGNAME_PREFIX) and "=" in key:
            tag, name = key[len(TAGNAME_PREFIX):].split("=", 1)
            tag_names.setdefault(decode_name(tag), {})[int(value.ravel()[0])] = decode_name(name)
        elif key.startswith(FACESET_PREFIX):
            k = ELEMENT_TYPES[cell_type].faces.shape[1]
            face_sets[decode_name(key[len(FACESET_PREFIX):])] = value.reshape(-1, k).astype(np.int64)
        elif ("gmsh:physical" in cell_data and value.shape == (2,)
              and value.dtype.kind in "iu" and int(value[1]) == 3):
            tag_names.setdefault("gmsh:physical", {})[int(value[0])] = key
    return dict(points=m.points, cells=cells, cell_data=cell_data, tag_names=tag_names, node_sets=node_sets,
                face_sets=face_sets, cell_type=cell_type)
