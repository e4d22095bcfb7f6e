"""Shared helpers of the clinical layer: operation records, copying a Segment, level lookup,
per-level node groups and sub-cell sampling.

A clinical operation never modifies its input: :func:`derive` builds a new :class:`Segment` with a deep
copy of the mesh and of the per-cell elasticity, and appends the operation to ``Segment.history`` (a
tuple of :class:`Operation`, ``()`` for a segment that was never treated; read it with :func:`history`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..errors import InputError
from ..mesh.core import Mesh

__all__ = ["Operation", "history", "derive", "grow", "appended_nodes", "check_level", "is_voxel", "LevelNodes", "level_nodes", "to_local", "to_global",
           "midline_profile", "sample_points", "operations_of"]


@dataclass(frozen=True)
class Operation:
    """One clinical operation applied to a level.

    Attributes
    ----------
    kind : str
        ``"fracture"``, ``"vertebroplasty"`` or ``"kyphoplasty"``.
    level : str
        Vertebra the operation acts on.
    parameters : mapping
        Resolved input parameters (defaults filled in), e.g. ``{"type": "wedge", "grade": 2,
        "height_loss": 0.325, ...}``; lengths mm, volumes mL, angles deg.
    results : mapping
        What the operation achieved, e.g. measured heights (mm), ``cement_volume_mL``,
        ``volume_error`` (relative), the rigid motion of the levels above.
    """

    kind: str
    level: str
    parameters: MappingProxyType
    results: MappingProxyType
    data: dict = field(default_factory=dict, repr=False, compare=False)   # arrays kept for later operations

    def __getstate__(self):                 # the read-only mappings travel as dicts (pickle, multiprocessing)
        return {**self.__dict__, "parameters": dict(self.parameters), "results": dict(self.results)}

    def __setstate__(self, state):
        self.__dict__.update({**state, "parameters": MappingProxyType(dict(state["parameters"])),
                              "results": MappingProxyType(dict(state["results"]))})

    def as_dict(self):
        """Plain dict (``kind``, ``level``, ``parameters``, ``results``) for reports and JSON."""
        return {"kind": self.kind, "level": self.level, "parameters": dict(self.parameters),
                "results": dict(self.results)}


def _plain(v):
    """numpy scalars -> Python numbers, tuples/arrays -> tuples of them (for reports and JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list, np.ndarray)):
        return tuple(_plain(x) for x in v)
    return v


def make_operation(kind, level, parameters, results, data=None):
    return Operation(kind, level, MappingProxyType({k: _plain(v) for k, v in dict(parameters).items()}),
                     MappingProxyType({k: _plain(v) for k, v in dict(results).items()}), dict(data or {}))


def history(segment):
    """The clinical operations applied to ``segment`` (tuple of :class:`Operation`, oldest first)."""
    return tuple(segment.history)


def operations_of(segment, level, kind=None):
    """Operations on ``level`` (optionally only of ``kind``), oldest first."""
    return tuple(op for op in history(segment) if op.level == level and (kind is None or op.kind == kind))


def derive(segment, operation, points=None, elasticity=None, frames=None, cell_data=None, tag_names=None):
    """A new Segment: deep copy of ``segment.mesh`` with the given replacements, ``operation`` appended to
    the history. ``cell_data`` ``{name: (m,) array}`` adds or replaces cell fields (with ``tag_names`` for
    integer tags). The input segment is not modified."""
    mesh = segment.mesh.copy()
    if points is not None:
        mesh.points = np.array(points, dtype=np.float64)
    for name, values in (cell_data or {}).items():
        mesh.set_cell_data(name, np.asarray(values), names=(tag_names or {}).get(name))
    if elasticity is None and segment.elasticity is not None:
        elasticity = segment.elasticity.copy()
    new_frames = {k: (np.array(R, dtype=float), np.array(o, dtype=float)) for k, (R, o) in segment.frames.items()}
    if frames:
        new_frames.update(frames)
    new = dataclasses.replace(segment, mesh=mesh, frames=new_frames, dimensions=dict(segment.dimensions),
                              elasticity=elasticity, history=history(segment) + (operation,))
    if elasticity is not None:
        from ..elasticity import axial_modulus
        mesh.set_cell_data("modulus", axial_modulus(elasticity))
    return new


def grow(segment, points, cells, layered_cell):
    """``segment`` on a mesh with cells and nodes appended (a pillowed bolus): ``points (n', 3)`` and ``cells
    (m', k)`` keep the old ones first; ``layered_cell (m',)`` the old cell each cell belongs to (its cell data and
    elasticity are copied from it; stored as the cell field ``layered_cell``). Node and face sets are kept; the
    history is unchanged (the operation is recorded by :func:`derive`)."""
    mesh = segment.mesh
    layered = np.asarray(layered_cell, dtype=np.int64)
    if "layered_cell" in mesh.cell_data:                 # an appended cell of an appended cell: its layered root
        layered = np.asarray(mesh.cell_data["layered_cell"], dtype=np.int64)[layered]
    data = {k: np.asarray(v)[layered_cell] for k, v in mesh.cell_data.items()}
    data["layered_cell"] = layered
    grown = Mesh(points, cells, cell_data=data, tag_names=mesh.tag_names, node_sets=mesh.node_sets,
                 face_sets=mesh.face_sets, cell_type=mesh.cell_type)
    C = None if segment.elasticity is None else np.asarray(segment.elasticity)[layered_cell]
    return dataclasses.replace(segment, mesh=grown, elasticity=C)


def is_voxel(segment):
    """True for a voxel mesh of an image (``image_segment(..., geometry="voxel")``)."""
    return (getattr(segment, "source", None) or {}).get("geometry") == "voxel"


def check_level(segment, level, layered=True):
    """Validate that ``level`` is a vertebra of ``segment``; returns its index (cranial first).

    ``layered``: the operation needs the layered O-grid of :func:`vertebrafe.segment` (fracture,
    vertebroplasty, kyphoplasty); with False a voxel mesh of an image is accepted too (measurement)."""
    if not isinstance(level, str):
        raise InputError(f"level = {level!r}; expected a vertebra name, one of {list(segment.levels)}")
    if getattr(segment, "counts", None) is None and (layered or not is_voxel(segment)):
        if is_voxel(segment):
            raise InputError("fracture, vertebroplasty and kyphoplasty need the layered mesh of vertebrafe.segment; "
                             "this segment is a voxel mesh (image_segment(..., geometry='voxel')): build it with "
                             "image_segment(..., geometry='template') to operate on it")
        raise InputError("clinical operations need the layered mesh of vertebrafe.segment or image_segment; "
                         "this segment comes from an external mesh (Segment.from_mesh)")
    if level in segment.levels:
        return segment.levels.index(level)
    if level in segment.discs:
        raise InputError(f"level = {level!r} is a disc; clinical operations act on a vertebra, one of "
                         f"{list(segment.levels)}")
    raise InputError(f"level = {level!r} is not in this segment; known vertebrae: {list(segment.levels)}")


def to_local(segment, level, x):
    """Global points ``(k, 3)`` -> the local frame of ``level`` (mm)."""
    R, o = segment.frames[level]
    return (np.asarray(x) - o) @ R


def to_global(segment, level, x):
    """Local points ``(k, 3)`` of ``level`` -> global (mm)."""
    R, o = segment.frames[level]
    return np.asarray(x) @ R.T + o


@dataclass(frozen=True)
class LevelNodes:
    """Node index groups around one vertebra (the mesh is numbered layer by layer, bottom up, with
    ``n2`` nodes per layer, so node ``i`` lies in column ``i % n2``).

    ``body``: nodes of the vertebral body (inferior to superior endplate layer inclusive); ``disc_above``,
    ``disc_below``: interior node layers of the adjacent discs (may be empty); ``above``: every node above
    the disc above (the upper vertebrae and discs, their arches and the nodes operations appended to them);
    ``inferior``, ``superior``: endplate node layers;
    ``upper_inferior`` / ``lower_superior``: the endplate layer of the neighbouring vertebra (or None);
    ``arch``: the own nodes of the vertebra's posterior arch (empty without posterior elements; the arches
    of the vertebrae above are part of ``above``).
    """

    n2: int
    body: np.ndarray
    inferior: np.ndarray
    superior: np.ndarray
    disc_above: np.ndarray
    disc_below: np.ndarray
    above: np.ndarray
    upper_inferior: object
    lower_superior: object
    arch: np.ndarray = None


def level_nodes(segment, level):
    i = segment.levels.index(level)
    ns = segment.mesh.node_sets
    n2 = segment.counts.n_nodes
    inf, sup = ns[f"{level}:inferior"], ns[f"{level}:superior"]
    body = np.arange(inf.min(), sup.max() + 1)
    n = int(getattr(segment, "stack_points", segment.mesh.n_points))       # the layered stack (no arches)
    post = getattr(segment, "posterior", None)
    upper = [] if post is None else [post.arches[v].nodes for v in segment.levels[:i]]
    extra = appended_nodes(segment)
    upper += [extra[v] for v in segment.levels[:i] if v in extra]       # a pillowed bolus above moves with it
    if i > 0:
        up = ns[f"{segment.levels[i - 1]}:inferior"]
        disc_above = np.arange(sup.max() + 1, up.min())
        above = np.concatenate([np.arange(up.min(), n)] + upper)
    else:
        up, disc_above, above = None, np.arange(0), np.arange(sup.max() + 1, n)
    if i < len(segment.levels) - 1:
        lo = ns[f"{segment.levels[i + 1]}:superior"]
        disc_below = np.arange(lo.max() + 1, inf.min())
    else:
        lo, disc_below = None, np.arange(0)
    arch = np.arange(0) if post is None else post.arches[level].nodes
    return LevelNodes(n2, body, inf, sup, disc_above, disc_below, above, up, lo, arch)


def appended_nodes(segment):
    """``{vertebra: node indices}`` of the nodes its operations appended after the mesh's own (a pillowed
    bolus: ``results["appended_nodes"]``), numbered in the order of the history."""
    ops = [op for op in history(segment) if op.results.get("appended_nodes")]
    start = segment.mesh.n_points - sum(op.results["appended_nodes"] for op in ops)
    out = {}
    for op in ops:
        k = op.results["appended_nodes"]
        out[op.level] = np.concatenate([out.get(op.level, np.arange(0)), np.arange(start, start + k)])
        start += k
    return out


def column_fraction(points, nodes, bottom_layer, top_layer, n2, points_of=None):
    """Position of ``nodes`` along their column between the node layers ``bottom_layer`` and ``top_layer``
    (index arrays of ``n2`` nodes): 0 at the bottom, 1 at the top (projection on the column axis).
    ``points_of`` ``(k, 3)``: project these points instead of the nodes' own (on the nodes' columns)."""
    col = nodes % n2
    b = points[bottom_layer[col]]
    t = points[top_layer[col]]
    d = t - b
    x = points[nodes] if points_of is None else points_of
    return np.einsum("ij,ij->i", x - b, d) / np.einsum("ij,ij->i", d, d)


def midline_profile(local_points, layer, tol=1e-6, band=0.0):
    """Mid-sagittal profile of an endplate node layer in the level's local frame.

    Returns ``(k, 2)`` (y, z) of the layer's nodes on the plane x = 0 (within ``tol`` relative to the
    layer's width, or within ``band`` mm for meshes without nodes on the plane), ordered posterior to
    anterior.
    """
    p = local_points[layer]
    w = np.ptp(p[:, 0])
    sel = np.abs(p[:, 0]) <= max(tol * max(w, 1.0), band)
    if np.count_nonzero(sel) < 3:
        raise InputError("the endplate has fewer than 3 nodes on the mid-sagittal plane x = 0; measurement "
                         "needs a mesh symmetric about x = 0")
    yz = p[sel][:, 1:]
    return yz[np.argsort(yz[:, 0])]


# ------------------------------------------------------------------------------------- sub-cell sampling
def sample_points(n):
    """Reference coordinates ``(n^3, 3)`` in [-1, 1]^3 (midpoints of an n x n x n sub-grid) and the hex8
    shape functions ``(n^3, 8)`` and gradients ``(n^3, 8, 3)`` there (VTK node order)."""
    from ..elements import hex8_shape, hex8_shape_gradients

    g = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    xi = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    return xi, np.asarray(hex8_shape(xi)), np.asarray(hex8_shape_gradients(xi))
