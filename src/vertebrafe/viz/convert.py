"""Conversion to PyVista grids (:func:`to_pyvista`), the named result fields and grid helpers (deformed
shape, clipping)."""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.names import NODESET_PREFIX, TAGNAME_PREFIX, decode_name
from .offscreen import import_pyvista

__all__ = ["NODESET_PREFIX", "TAGNAME_PREFIX", "Field", "FIELDS", "UNIT_SUFFIXES", "to_pyvista", "tag_names",
           "as_grid", "mark_ready", "is_dataset", "resolve_field", "field_values", "deformed", "CLIP_PLANES",
           "clip", "through_point", "result_path", "case_label"]



@dataclass(frozen=True)
class Field:
    """A named result field: the grid ``array`` it reads, a ``label`` and a ``unit`` for the scalar bar."""

    array: str
    label: str
    unit: str

    @property
    def title(self):
        return f"{self.label} [{self.unit}]"


#: Short names accepted by ``field=`` (and ``vertebrafe view --field``); any array name of the grid
#: is accepted too.
FIELDS = {
    "von_mises": Field("von_mises_MPa", "von Mises stress", "MPa"),
    "max_principal_stress": Field("max_principal_stress_MPa", "max. principal stress", "MPa"),
    "mid_principal_stress": Field("mid_principal_stress_MPa", "mid. principal stress", "MPa"),
    "min_principal_stress": Field("min_principal_stress_MPa", "min. principal stress", "MPa"),
    "max_principal_strain": Field("max_principal_strain", "max. principal strain", "mm/mm"),
    "mid_principal_strain": Field("mid_principal_strain", "mid. principal strain", "mm/mm"),
    "min_principal_strain": Field("min_principal_strain", "min. principal strain", "mm/mm"),
    "displacement": Field("displacement_magnitude_mm", "displacement magnitude", "mm"),
    "displacement_x": Field("displacement_x_mm", "displacement x (right)", "mm"),
    "displacement_y": Field("displacement_y_mm", "displacement y (anterior)", "mm"),
    "displacement_z": Field("displacement_z_mm", "displacement z (superior)", "mm"),
    "strain_energy_density": Field("strain_energy_density_mJ_per_mm3", "strain energy density", "mJ/mm³"),
    "hydrostatic_pressure": Field("hydrostatic_pressure_MPa", "hydrostatic pressure", "MPa"),
    "yield_strain_ratio": Field("yield_strain_ratio", "yield strain ratio", "-"),
    "cement_fraction": Field("cement_fraction", "cement volume fraction", "-"),
    "compacted_fraction": Field("compacted_fraction", "compacted bone fraction", "-"),
    "damage": Field("damage", "damage", "-"),
    "modulus": Field("modulus", "axial Young's modulus", "MPa"),
}

UNIT_SUFFIXES = (("_mJ_per_mm3", "mJ/mm³"), ("_MPa", "MPa"), ("_mm", "mm"), ("_N", "N"))


# ------------------------------------------------------------------------------------------ conversion
def is_dataset(obj):
    pv = import_pyvista()
    return isinstance(obj, pv.DataSet)


def _mesh_to_grid(mesh):
    """Mesh -> UnstructuredGrid with tags, names, node sets and cell fields."""
    pv = import_pyvista()
    grid = pv.from_meshio(mesh.to_meshio())
    _add_names(grid, mesh.tag_names)
    return grid


def _add_names(grid, tables):
    for tag, table in tables.items():
        if not table:
            continue
        for value, name in table.items():
            grid.field_data[f"{TAGNAME_PREFIX}{tag}={name}"] = np.array([int(value)], dtype=np.int64)
        if tag in grid.cell_data:
            codes = np.asarray(grid.cell_data[tag]).astype(np.int64)
            if codes.size and codes.min() >= 0:
                lookup = np.array([table.get(c, f"{tag} {c}") for c in range(int(codes.max()) + 1)], dtype=str)
                grid.cell_data[f"{tag}_name"] = lookup[codes]


def tag_names(grid, tag):
    """Name table ``{value: name}`` of cell tag ``tag`` kept in a grid's ``field_data`` (``{}`` if none).

    Files written by ``Mesh.save`` / ``Segment.save`` carry the tables; where a file has none (for
    example a VTU written by meshio's own writer), values are shown as ``"region 3"``.
    """
    grid = to_pyvista(grid) if not is_dataset(grid) else grid
    out = {}
    prefix = f"{TAGNAME_PREFIX}{tag}="
    for key in grid.field_data.keys():
        if key.startswith(prefix):
            out[int(np.asarray(grid.field_data[key]).ravel()[0])] = decode_name(key[len(prefix):])
    return dict(sorted(out.items()))


def _add_derived(grid):
    """Scalar arrays (with units in their names) derived from vector and tensor results."""
    cd, pd = grid.cell_data, grid.point_data
    for base, unit in (("principal_stress", "_MPa"), ("principal_strain", "")):
        name = base + unit
        if name in cd and np.asarray(cd[name]).ndim == 2:
            values = np.asarray(cd[name])
            for i, which in enumerate(("max", "mid", "min")):
                cd[f"{which}_{base}{unit}"] = np.ascontiguousarray(values[:, i])
    if "displacement_mm" in pd:
        u = np.asarray(pd["displacement_mm"])
        pd["displacement_magnitude_mm"] = np.linalg.norm(u, axis=1)
        for i, axis in enumerate("xyz"):
            pd[f"displacement_{axis}_mm"] = np.ascontiguousarray(u[:, i])
    return grid


def _solution_of(obj):
    """The Solution inside ``obj`` (a Solution, or a result with ``.solution``), else None."""
    if hasattr(obj, "displacement") and hasattr(obj, "fields") and hasattr(obj, "mesh"):
        return obj
    sol = getattr(obj, "solution", None)
    if sol is not None and hasattr(sol, "displacement"):
        return sol
    return None


def _add_result_fields(grid, obj, sol):
    """Cell fields that ``Result.save`` writes next to the solution's: hydrostatic pressure (MPa, positive
    in compression) and, for a simulation result with yield strains, the yield strain ratio (-)."""
    grid.cell_data["hydrostatic_pressure_MPa"] = -np.asarray(sol.cell_stress)[:, :3].sum(axis=1) / 3.0
    yc, yt = getattr(obj, "yield_compression", None), getattr(obj, "yield_tension", None)
    if yc and yt:
        p = np.asarray(sol.principal_strains)
        grid.cell_data["yield_strain_ratio"] = np.maximum(np.maximum(-p[:, 2] / yc, p[:, 0] / yt), 0.0)


def to_pyvista(obj):
    """Convert ``obj`` to a new :class:`pyvista.UnstructuredGrid` (see the module docstring for its arrays).

    ``obj``: :class:`~vertebrafe.Mesh`, :class:`~vertebrafe.Segment` (its mesh), :class:`~vertebrafe.Solution`
    (mesh plus all result fields), a simulation result (anything with ``.solution``; its
    ``.segment``'s mesh is used where the result has no solution), a pyvista data set (copied), or a
    path (``str`` / ``pathlib.Path``) of a file pyvista can read (``.vtu`` from ``save``) or of a folder
    written by ``Result.save`` / ``vertebrafe run`` (its ``result.vtu``).
    """
    pv = import_pyvista()
    if isinstance(obj, (str, os.PathLike)):
        path = result_path(obj)
        try:
            grid = pv.read(path)
        except Exception as exc:  # noqa: BLE001 - reader errors vary by format
            raise InputError(f"cannot read {str(path)!r} with pyvista: {exc}") from exc
        return _from_dataset(grid)
    if isinstance(obj, pv.DataSet):
        return _from_dataset(obj.copy())
    sol = _solution_of(obj)
    if sol is not None:
        grid = _mesh_to_grid(sol.mesh)
        point, cell = sol.fields()
        for name, value in point.items():
            grid.point_data[name] = np.asarray(value)
        for name, value in cell.items():
            grid.cell_data[name] = np.asarray(value)
        _add_result_fields(grid, obj, sol)
        return _add_derived(grid)
    mesh = getattr(obj, "mesh", None)
    if mesh is None and hasattr(obj, "segment"):
        mesh = getattr(obj.segment, "mesh", None)
    if mesh is None and hasattr(obj, "points") and hasattr(obj, "cells") and hasattr(obj, "tag_names"):
        mesh = obj
    if mesh is None:
        raise InputError(f"cannot show an object of type {type(obj).__name__}: expected a Mesh, Segment, "
                         f"Solution, simulation result, pyvista data set or a file path")
    return _add_derived(_mesh_to_grid(mesh))


def result_path(path):
    """The VTU file of ``path``: the file itself, or ``result.vtu`` of a result folder (``Result.save``,
    ``vertebrafe run``; the only ``.vtu`` of any other folder)."""
    p = pathlib.Path(path)
    if not p.exists():
        raise InputError(f"result file {str(p)!r} does not exist")
    if p.is_dir():
        if (p / "result.vtu").is_file():
            return p / "result.vtu"
        files = sorted(p.glob("*.vtu"))
        if len(files) != 1:
            raise InputError(f"result directory {str(p)!r} holds {'no' if not files else len(files)} .vtu files "
                             "and no result.vtu; give the file")
        return files[0]
    return p


def case_label(obj, default="result"):
    """A label for ``obj``: the case name of a simulation result (``.case``) or of a result folder or file
    (``case.json`` beside ``result.vtu``), else the folder or file name."""
    name = getattr(obj, "case", None)
    if isinstance(name, str) and name:
        return name
    if isinstance(obj, (str, os.PathLike)):
        p = pathlib.Path(obj)
        folder = p if p.is_dir() else p.parent
        try:
            import json
            with open(folder / "case.json") as f:
                name = json.load(f).get("case")
            if isinstance(name, str) and name:
                return name
        except (OSError, ValueError, AttributeError):
            pass
        if p.is_dir():
            return p.resolve().name
        return p.resolve().parent.name if p.name == "result.vtu" else p.stem
    return default


def _from_dataset(grid):
    pv = import_pyvista()
    if not isinstance(grid, pv.UnstructuredGrid):
        grid = grid.cast_to_unstructured_grid()
    tables = {}
    for key in grid.field_data.keys():
        if key.startswith(TAGNAME_PREFIX) and "=" in key:
            tag = key[len(TAGNAME_PREFIX):].split("=", 1)[0]
            tables[tag] = None
    decoded = {decode_name(t): tag_names(grid, decode_name(t)) for t in tables}
    for tag, table in decoded.items():
        if tag in grid.cell_data and f"{tag}_name" not in grid.cell_data and table:
            _add_names(grid, {tag: table})
    return _add_derived(grid)


def as_grid(obj):
    return obj if is_dataset(obj) and "_vf_ready" in obj.field_data else mark_ready(to_pyvista(obj))


def mark_ready(grid):
    grid.field_data["_vf_ready"] = np.array([1], dtype=np.int8)
    return grid


# ------------------------------------------------------------------------------------------ fields
def resolve_field(grid, field):
    """Resolve ``field`` (short name of :data:`FIELDS` or an array name) -> (Field, 'cell'|'point')."""
    spec = FIELDS.get(field)
    if spec is None:
        unit = next((u for s, u in UNIT_SUFFIXES if field.endswith(s)), "-")
        spec = Field(field, field, unit)
    for assoc, data in (("cell", grid.cell_data), ("point", grid.point_data)):
        if spec.array in data:
            if np.asarray(data[spec.array]).ndim != 1:
                raise InputError(f"field {field!r} has {np.asarray(data[spec.array]).shape[1]} components; "
                                 f"choose a scalar (e.g. one of {sorted(FIELDS)})")
            return spec, assoc
    available = sorted(k for k, v in FIELDS.items() if v.array in grid.cell_data or v.array in grid.point_data)
    raise InputError(f"field {field!r} is not in this result; available: {available or 'none'} "
                     f"(result fields need a solved model)")


def field_values(obj, field):
    """Values ``(m,)`` (cell field) or ``(n,)`` (point field) of ``field`` and its :class:`Field`."""
    grid = as_grid(obj)
    spec, assoc = resolve_field(grid, field)
    data = grid.cell_data if assoc == "cell" else grid.point_data
    return np.asarray(data[spec.array]), spec


def deformed(obj, scale=1.0):
    """A copy of the grid with points moved by ``scale * displacement_mm`` (no-op without displacements).

    ``scale="auto"`` makes the largest displacement 5 % of the bounding-box diagonal.
    """
    grid = as_grid(obj).copy()
    if "displacement_mm" not in grid.point_data:
        return grid
    u = np.asarray(grid.point_data["displacement_mm"])
    if isinstance(scale, str):
        if scale != "auto":
            raise InputError(f"scale={scale!r}: expected a number or 'auto'")
        umax = float(np.linalg.norm(u, axis=1).max()) if u.size else 0.0
        scale = 0.05 * grid.length / umax if umax > 0 else 0.0
    scale = float(scale)
    if scale:
        grid.points = np.asarray(grid.points) + scale * u
    return grid


CLIP_PLANES = {"sagittal": 0, "coronal": 1, "axial": 2}


def _cells_of(grid, tag, names):
    codes = [v for v, n in tag_names(grid, tag).items() if n in names]
    if tag not in grid.cell_data or not codes:
        return np.zeros(grid.n_cells, dtype=bool)
    return np.isin(np.asarray(grid.cell_data[tag]).astype(np.int64), codes)


def through_point(obj, through, plane="sagittal"):
    """The point (3,) mm a clip plane passes through, by name.

    ``through``: a level (``"L1"``, ``"L1-L2"``): the volume centroid of its cells; ``"cement"``: the centroid
    of the cement (cells with ``cement_fraction`` > 0 or region ``cement``/``cement_bone``, weighted by
    fraction x volume); for a ``sagittal`` plane the cement on the side (left, x < 0, or right) that holds
    more of it, so a bipedicular bolus, which lies off the midline, is cut through its middle
    (a parasagittal plane); ``"cement:left"`` / ``"cement:right"`` choose the side.
    """
    grid = as_grid(obj)
    vol = np.abs(np.asarray(grid.compute_cell_sizes(length=False, area=False, volume=True).cell_data["Volume"]))
    centers = np.asarray(grid.cell_centers().points)
    name = str(through)
    if name.split(":")[0] == "cement":
        w = (np.asarray(grid.cell_data["cement_fraction"], dtype=float) if "cement_fraction" in grid.cell_data
             else np.zeros(grid.n_cells))
        w = np.where(_cells_of(grid, "region", {"cement", "cement_bone"}), np.maximum(w, 1.0), w) * vol
        if not np.any(w > 0):
            raise InputError(f"through={through!r}: this model has no cement")
        side = name.partition(":")[2]
        if side not in ("", "left", "right"):
            raise InputError(f"through={through!r}: allowed 'cement', 'cement:left', 'cement:right' or a level name")
        left = centers[:, 0] < 0
        if side == "" and plane == "sagittal":
            side = "left" if w[left].sum() >= w[~left].sum() else "right"
        if side:
            w = w * (left if side == "left" else ~left)
            if not np.any(w > 0):
                raise InputError(f"through={through!r}: no cement on the {side} side")
        return w @ centers / w.sum()
    sel = _cells_of(grid, "level", {name})
    if not sel.any():
        levels = sorted(tag_names(grid, "level").values())
        raise InputError(f"through={through!r}: not 'cement' or a level of this model; levels: {levels}")
    return vol[sel] @ centers[sel] / vol[sel].sum()


def _plane(grid, clip_plane, origin=None):
    if clip_plane not in CLIP_PLANES:
        raise InputError(f"clip={clip_plane!r}: allowed values are {sorted(CLIP_PLANES)} or None")
    axis = CLIP_PLANES[clip_plane]
    b = np.asarray(grid.bounds).reshape(3, 2)
    if isinstance(origin, str):
        origin = through_point(grid, origin, clip_plane)
    o = b.mean(axis=1) if origin is None else np.asarray(origin, dtype=float)
    normal = np.zeros(3)
    normal[axis] = 1.0
    return axis, normal, o


def clip(obj, plane="sagittal", origin=None, keep="negative", cut="plane"):
    """Cut the grid on the mid-``plane`` (``'sagittal'``: normal x, ``'coronal'``: normal y, ``'axial'``:
    normal z), through the centre of its bounding box unless ``origin`` is given: a point (3,) mm or a
    name (:func:`through_point`: ``"cement"``, ``"cement:left"``, a level such as ``"L1"``); e.g.
    ``clip(res, "sagittal", origin="cement")`` is the parasagittal cut through a bipedicular bolus.

    ``keep='negative'`` keeps the patient's left half (sagittal), the posterior half (coronal) or the
    inferior half (axial). ``cut='plane'`` cuts the cells on the plane (a flat cut face; cut cells keep
    their cell values, point data are interpolated); ``cut='cells'`` keeps whole cells whose centre lies
    on the kept side (the cell layout stays visible).
    """
    grid = as_grid(obj)
    axis, normal, o = _plane(grid, plane, origin)
    if keep not in ("negative", "positive"):
        raise InputError(f"keep={keep!r}: allowed values are 'negative', 'positive'")
    if cut == "cells":
        centers = np.asarray(grid.cell_centers().points)
        side = centers[:, axis] - o[axis]
        out = grid.extract_cells(np.flatnonzero(side <= 0 if keep == "negative" else side >= 0))
    elif cut == "plane":
        out = grid.clip(normal=tuple(normal), origin=tuple(o), invert=(keep == "negative"))
    else:
        raise InputError(f"cut={cut!r}: allowed values are 'plane', 'cells'")
    for key in grid.field_data.keys():
        out.field_data[key] = grid.field_data[key]
    return mark_ready(out)

