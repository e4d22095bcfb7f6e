"""Segments from external meshes: any meshio-readable hex8, tet4 or tet10 mesh with region and level tags.

``Segment.from_mesh`` turns a mesh that a researcher brings into a
:class:`~vertebrafe.anatomy.segment.Segment` that :func:`vertebrafe.simulate`, the metrics and studies
accept; :func:`segment_parts` here prepares its fields. Tags, in order of preference:

* ``region`` and ``level`` integer cell data with name tables (as vertebrafe writes ``.vtu`` files), or
  with the names given as ``regions={value: name}`` and ``levels={value: name}``;
* gmsh physical names ``"LEVEL:REGION"`` (``"L1:cancellous"``, ``"L1-L2:nucleus"``) on the volumes of a
  ``.msh`` file, or gmsh physical tags with ``regions={tag: region}`` and ``levels={tag: level}``.

Region names are those of :data:`vertebrafe.materials.REGIONS` (``cortex``, ``endplate``,
``cancellous``, ``annulus``, ``nucleus``, ...); levels are vertebrae (``L1``) and discs (``L1-L2``) of one
contiguous run, in the patient frame (+z superior). Endplate node and face sets are the boundary faces
of each vertebra facing up (``"L1:superior"``) or down (``"L1:inferior"``), outward normal within 60 deg
of the axis through the vertebra. Each vertebra's frame has its origin at the centroid of its inferior
endplate and z toward the centroid of the superior one. Densities: one vBMD or ``{vertebra: vBMD}``, or a
per-cell vBMD array of the mesh (``density="name"``) used by the cancellous cells.

The clinical operations (fracture, vertebroplasty, kyphoplasty, measure) need the layered mesh of the
parametric and image-based segments and refuse an external mesh.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import InputError

__all__ = ["segment_parts"]

_COS_ENDPLATE = 0.5            # outward normal within 60 deg of the vertebra's axis


def _as_mesh(mesh):
    from ..mesh import Mesh

    if isinstance(mesh, Mesh):
        return mesh.copy(), "vertebrafe.Mesh"
    if isinstance(mesh, (str, os.PathLike)):
        if not os.path.exists(mesh):
            raise InputError(f"mesh file {os.fspath(mesh)!r} does not exist")
        return Mesh.load(mesh), os.fspath(mesh)
    if hasattr(mesh, "cells") and hasattr(mesh, "points"):
        return Mesh.from_meshio(mesh), "meshio.Mesh"
    raise InputError(f"mesh = {mesh!r}; expected a path, a meshio.Mesh or a vertebrafe.Mesh")


def _tags(mesh, regions, levels):
    """``region`` and ``level`` tags with names on ``mesh`` (set in place)."""
    cd, tn = mesh.cell_data, mesh.tag_names
    if "region" in cd and "level" in cd:
        for tag, given in (("region", regions), ("level", levels)):
            if given is not None:
                names = {int(k): str(v) for k, v in dict(given).items()}
                mesh.set_cell_data(tag, cd[tag], names=names)
            elif tag not in tn:
                raise InputError(f"cell data {tag!r} has no names; pass {tag}s={{value: name}} "
                                 f"(values present: {sorted(int(v) for v in np.unique(cd[tag]))})")
        return
    if "gmsh:physical" in cd and regions is not None and levels is not None:
        phys = cd["gmsh:physical"]
        for tag, given in (("region", regions), ("level", levels)):
            table = {int(k): str(v) for k, v in dict(given).items()}
            missing = sorted(int(v) for v in np.unique(phys) if int(v) not in table)
            if missing:
                raise InputError(f"{tag}s has no name for gmsh physical tags {missing}")
            names = sorted(set(table.values()))
            code = {n: i + 1 for i, n in enumerate(names)}
            uniq, inv = np.unique(phys, return_inverse=True)
            mesh.set_cell_data(tag, np.array([code[table[int(u)]] for u in uniq])[inv].astype(np.int64),
                               names={c: n for n, c in code.items()})
        return
    if "gmsh:physical" in cd and "gmsh:physical" in tn:
        phys, names = cd["gmsh:physical"], tn["gmsh:physical"]
        bad = [n for n in names.values() if ":" not in n]
        if bad:
            raise InputError(f"gmsh physical names {bad} are not 'LEVEL:REGION' (e.g. 'L1:cancellous', "
                             f"'L1-L2:nucleus')")
        lv = {v: n.split(":", 1)[0].strip() for v, n in names.items()}
        rg = {v: n.split(":", 1)[1].strip() for v, n in names.items()}
        lnames, rnames = sorted(set(lv.values())), sorted(set(rg.values()))
        lcode = {n: i + 1 for i, n in enumerate(lnames)}
        rcode = {n: i + 1 for i, n in enumerate(rnames)}
        uniq, inv = np.unique(phys, return_inverse=True)
        missing = [int(u) for u in uniq if int(u) not in names]
        if missing:
            raise InputError(f"cells with gmsh physical tags {missing} have no physical name")
        mesh.set_cell_data("level", np.array([lcode[lv[int(u)]] for u in uniq])[inv].astype(np.int64),
                           names={c: n for n, c in lcode.items()})
        mesh.set_cell_data("region", np.array([rcode[rg[int(u)]] for u in uniq])[inv].astype(np.int64),
                           names={c: n for n, c in rcode.items()})
        return
    raise InputError("the mesh has no region and level tags: give integer cell data 'region' and 'level' "
                     "(with regions= and levels= name tables if the file has none) or gmsh physical volumes "
                     "named 'LEVEL:REGION'")


def _endplates(mesh, cells_mask, axis):
    """Outward boundary faces of the cells ``cells_mask`` facing along +axis and -axis."""
    sub = mesh.cells[cells_mask]
    faces = sub[:, mesh.element.faces].reshape(-1, mesh.element.faces.shape[1])
    key = np.sort(faces, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    bnd = faces[cnt[inv.ravel()] == 1]
    p = mesh.points
    n = np.cross(p[bnd[:, 1]] - p[bnd[:, 0]], p[bnd[:, 2]] - p[bnd[:, 0]])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    c = n @ axis
    return bnd[c > _COS_ENDPLATE], bnd[c < -_COS_ENDPLATE]


def segment_parts(mesh, bmd=None, materials=None, density=None, regions=None, levels=None):
    """Fields of a :class:`~vertebrafe.anatomy.segment.Segment` from an external mesh (see the module
    docstring): ``(fields, materials)`` with ``fields`` the keyword arguments of ``Segment`` and
    ``materials`` a :class:`~vertebrafe.materials.LevelMaterials` to attach.

    Parameters
    ----------
    mesh : str, path, meshio.Mesh or vertebrafe.Mesh
        hex8, tet4 or tet10 cells (``.vtu``, ``.msh``, ... through meshio).
    bmd : float or dict, optional
        vBMD (mg/cm^3), one value or ``{vertebra: value}``; default the volume-weighted mean of ``density``
        over each vertebra's cancellous cells.
    materials : MaterialSet, optional
        Material choices; its ``bmd`` is replaced by ``bmd``.
    density : str, optional
        Name of a float cell array of the mesh holding each cell's vBMD (mg/cm^3); the cancellous cells take
        their modulus from it.
    regions, levels : dict, optional
        ``{value: name}`` for integer ``region`` / ``level`` cell data without name tables.
    """
    from ..materials import BMD_RANGE, LevelMaterials, MaterialSet, REGIONS
    from .levels import level_order

    m, source = _as_mesh(mesh)
    _tags(m, regions, levels)
    rnames, lnames = m.tag_names["region"], m.tag_names["level"]
    unknown = sorted({n for n in rnames.values() if n not in REGIONS})
    if unknown:
        raise InputError(f"regions {unknown} are not material regions; allowed: {list(REGIONS)}")
    present = {lnames[int(c)] for c in np.unique(m.cell_data["level"])}
    vert = [n for n in present if "-" not in n]
    if not vert:
        raise InputError(f"the mesh has no vertebra among its levels {sorted(present)}")
    order = tuple(level_order(vert))
    discs = tuple(f"{a}-{b}" for a, b in zip(order[:-1], order[1:]))
    extra = sorted(present - set(order) - set(discs))
    if extra:
        raise InputError(f"levels {extra} are neither vertebrae of {list(order)} nor the discs between them")
    m.check_inverted()
    lcode = {n: c for c, n in lnames.items()}
    bone = [c for c, n in rnames.items() if n in ("cortex", "endplate", "cancellous")]
    axis = np.array([0.0, 0.0, 1.0])
    frames = {}
    for v in order:
        sel = (m.cell_data["level"] == lcode[v]) & np.isin(m.cell_data["region"], bone)
        if not sel.any():
            raise InputError(f"vertebra {v} has no bone cells (cortex, endplate, cancellous)")
        sup, inf = _endplates(m, sel, axis)
        if not (len(sup) and len(inf)):
            raise InputError(f"vertebra {v}: no boundary faces facing up and down (is +z superior?)")
        m.add_face_set(f"{v}:superior", sup)
        m.add_face_set(f"{v}:inferior", inf)
        m.add_node_set(f"{v}:superior", np.unique(sup))
        m.add_node_set(f"{v}:inferior", np.unique(inf))
        o = m.points[np.unique(inf)].mean(axis=0)
        z = m.points[np.unique(sup)].mean(axis=0) - o
        z /= np.linalg.norm(z)
        y = np.array([0.0, 1.0, 0.0]) - z[1] * z
        y /= np.linalg.norm(y)
        frames[v] = (np.column_stack([np.cross(y, z), y, z]), o)
    for end, which in ((order[0], "superior"), (order[-1], "inferior")):
        m.add_node_set(f"segment:{which}", m.node_sets[f"{end}:{which}"])
        m.add_face_set(f"segment:{which}", m.face_sets[f"{end}:{which}"])

    canc = np.isin(m.cell_data["region"], [c for c, n in rnames.items() if n == "cancellous"])
    if density is not None:
        if density not in m.cell_data or m.cell_data[density].ndim != 1:
            raise InputError(f"density = {density!r} is not a cell array of the mesh; arrays: {sorted(m.cell_data)}")
        d = np.asarray(m.cell_data[density], dtype=float)
        bad = canc & ~((d > BMD_RANGE[0]) & (d <= BMD_RANGE[1]))
        if bad.any():
            raise InputError(f"density {density!r}: {int(bad.sum())} cancellous cells outside (0, 400] mg/cm^3, "
                             f"e.g. {d[bad][0]!r}")
        m.set_cell_data("bmd", np.where(canc, d, np.nan))
        if bmd is None:
            vol = m.cell_volumes()
            bmd = {v: float(np.average(d[canc & (m.cell_data["level"] == lcode[v])],
                                       weights=vol[canc & (m.cell_data["level"] == lcode[v])])) for v in order}
    if bmd is None:
        raise InputError("give bmd (one vBMD or {vertebra: vBMD}, mg/cm^3) or density (a cell array of vBMD)")
    per = dict(bmd) if isinstance(bmd, dict) else {v: bmd for v in order}
    missing = [v for v in order if v not in per]
    if missing or set(per) - set(order):
        raise InputError(f"bmd: give one vBMD per vertebra of {list(order)}; got {sorted(per)}")
    mean = float(np.mean([float(x) for x in per.values()]))
    base = materials.with_(bmd=mean) if materials is not None else MaterialSet(bmd=mean)
    mats = LevelMaterials(base, per)
    edge = m.points[m.cells[:, 1]] - m.points[m.cells[:, 0]]
    fields = dict(mesh=m, levels=order, discs=discs, dimensions={}, frames=frames, counts=None,
                  element_size=float(np.median(np.linalg.norm(edge, axis=1))), cortex_thickness=float("nan"),
                  endplate_thickness=float("nan"), source={"kind": "mesh", "file": source, "cell_type": m.cell_type})
    return fields, mats
