"""PyVista views of meshes, segments and results (optional extra ``viz``: ``pip install vertebrafe[viz]``).

Everything here converts to a :class:`pyvista.UnstructuredGrid` first (:func:`to_pyvista`) and draws
that grid, so a :class:`~vertebrafe.Mesh`, a :class:`~vertebrafe.Segment`, a
:class:`~vertebrafe.Solution`, a result of :func:`vertebrafe.simulate` (anything with a ``.solution``),
a pyvista data set or the path of a ``.vtu`` file written by ``save`` can be passed to every function.

>>> import vertebrafe as vf
>>> from vertebrafe import viz
>>> seg = vf.segment("T12-L2", bmd=80.0)                                   # doctest: +SKIP
>>> viz.show_segment(seg, color_by="region", shell="translucent")          # doctest: +SKIP
>>> viz.show_segment(seg, color_by="level", explode=8.0)                   # doctest: +SKIP
>>> viz.show_field(sol, "von_mises", scale=20.0, clip="sagittal")          # doctest: +SKIP
>>> viz.screenshot(sol, "vm.png", field="von_mises", clip="coronal")       # doctest: +SKIP
>>> viz.show_comparison(vp, bkp, "von_mises", labels=("VP", "BKP"))        # doctest: +SKIP
>>> viz.show_difference(vp, bkp, "von_mises")                              # doctest: +SKIP

Grid contents (names carry units, as in the VTU files written by ``Solution.save``):

* cell data: integer tags (``region``, ``level``, ...) and, for every tag with a name table, a string
  array ``region_name`` / ``level_name``; the name tables are also kept in ``field_data`` as
  ``tagname:TAG=NAME`` (the encoding of ``Mesh.save``; read back by :func:`tag_names`); mesh cell fields
  (``modulus`` MPa, ``cement_fraction``, ``damage``, ...);
* result cell data: ``stress_MPa`` (m, 6), ``strain`` (m, 6), ``von_mises_MPa``,
  ``principal_stress_MPa`` (m, 3) and the scalars ``max_principal_stress_MPa``,
  ``mid_principal_stress_MPa``, ``min_principal_stress_MPa``, ``max_principal_strain``,
  ``mid_principal_strain``, ``min_principal_strain``, ``strain_energy_density_mJ_per_mm3``;
* result point data: ``displacement_mm`` (n, 3), ``displacement_magnitude_mm``, ``reaction_N`` and the
  node sets as ``nodeset:NAME`` 0/1 masks.

Off-screen rendering (no display, e.g. CI): the VTK wheels (9.4+) fall back from X11 to EGL, then to
OSMesa, when ``DISPLAY`` is unset. This module selects EGL directly when no display is set and an EGL
library is found (which avoids a warning about the missing X server); a machine needs the Mesa EGL
driver (Debian/Ubuntu: ``libegl1 libegl-mesa0 libgl1-mesa-dri``) or OSMesa (``libosmesa6``), no X
server or ``xvfb``. :func:`offscreen_backend` reports the render window class actually used.

Axes (patient frame): +x right, +y anterior, +z superior. The mid-sagittal plane is normal to x, the
mid-coronal plane normal to y, both through the centre of the mesh's bounding box (x = 0 for a segment,
which is mirror-symmetric about its mid-sagittal plane).
"""
from __future__ import annotations

import ctypes.util
import os
import pathlib
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import InputError

__all__ = ["FIELDS", "Field", "to_pyvista", "tag_names", "explode", "deformed", "clip", "field_grid",
           "difference", "show_segment", "show_field", "show_comparison", "show_difference",
           "render", "screenshot", "nonbackground_fraction", "offscreen_backend", "offscreen_available",
           "report_figures", "configure_view", "run_view", "VIEW_HELP"]

NODESET_PREFIX = "nodeset:"
TAGNAME_PREFIX = "tagname:"

#: Default colours of the named regions (others get colours from :data:`PALETTE`).
REGION_COLORS = {
    "cortex": "#e8dcc0",
    "endplate": "#c9a66b",
    "cancellous": "#e39a7c",
    "annulus": "#6f9fd8",
    "nucleus": "#8fd3e8",
    "cement": "#8c8c8c",
    "cement_bone": "#b5b5c8",
    "compacted_bone": "#9c5b3b",
}
#: Colours for levels and unnamed categories, in order.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
           "#9c755f", "#bab0ac")
#: Regions drawn as the translucent (or hidden) shell by :func:`show_segment`.
SHELL_REGIONS = ("cortex", "endplate", "annulus")


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

_UNIT_SUFFIXES = (("_mJ_per_mm3", "mJ/mm³"), ("_MPa", "MPa"), ("_mm", "mm"), ("_N", "N"))


# ------------------------------------------------------------------------------------------ off-screen
def _no_display():
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get(
        "WAYLAND_DISPLAY")


def _select_offscreen_window():
    """On a Linux machine without a display, let VTK use EGL directly (if found) instead of trying X first."""
    if _no_display() and "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ:
        if ctypes.util.find_library("EGL"):
            os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkEGLRenderWindow"
        elif ctypes.util.find_library("OSMesa"):
            os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkOSOpenGLRenderWindow"


def _pv():
    """Import pyvista (the ``viz`` extra) with a helpful error."""
    try:
        import pyvista
    except ImportError as exc:  # pragma: no cover - pyvista is a dev dependency
        raise InputError("vertebrafe.viz needs pyvista: pip install 'vertebrafe[viz]'") from exc
    _select_offscreen_window()
    return pyvista


def offscreen_backend():
    """The VTK render window class used off-screen here, e.g. ``'vtkEGLRenderWindow'`` (renders a test)."""
    pv = _pv()
    p = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        p.add_mesh(pv.Cube())
        p.render()
        return p.ren_win.GetClassName()
    finally:
        p.close()


# ------------------------------------------------------------------------------------------ conversion
def _is_dataset(obj):
    pv = _pv()
    return isinstance(obj, pv.DataSet)


def _mesh_to_grid(mesh):
    """Mesh -> UnstructuredGrid with tags, names, node sets and cell fields."""
    pv = _pv()
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
    grid = to_pyvista(grid) if not _is_dataset(grid) else grid
    out = {}
    prefix = f"{TAGNAME_PREFIX}{tag}="
    for key in grid.field_data.keys():
        if key.startswith(prefix):
            from .mesh import _decode_name

            out[int(np.asarray(grid.field_data[key]).ravel()[0])] = _decode_name(key[len(prefix):])
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
    path (``str`` / ``pathlib.Path``) of a file pyvista can read (``.vtu`` from ``save``).
    """
    pv = _pv()
    if isinstance(obj, (str, os.PathLike)):
        path = pathlib.Path(obj)
        if not path.exists():
            raise InputError(f"result file {str(path)!r} does not exist")
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


def _from_dataset(grid):
    pv = _pv()
    if not isinstance(grid, pv.UnstructuredGrid):
        grid = grid.cast_to_unstructured_grid()
    tables = {}
    for key in grid.field_data.keys():
        if key.startswith(TAGNAME_PREFIX) and "=" in key:
            tag = key[len(TAGNAME_PREFIX):].split("=", 1)[0]
            tables[tag] = None
    from .mesh import _decode_name

    decoded = {_decode_name(t): tag_names(grid, _decode_name(t)) for t in tables}
    for tag, table in decoded.items():
        if tag in grid.cell_data and f"{tag}_name" not in grid.cell_data and table:
            _add_names(grid, {tag: table})
    return _add_derived(grid)


def _grid(obj):
    return obj if _is_dataset(obj) and "_vf_ready" in obj.field_data else _mark(to_pyvista(obj))


def _mark(grid):
    grid.field_data["_vf_ready"] = np.array([1], dtype=np.int8)
    return grid


# ------------------------------------------------------------------------------------------ fields
def _field(grid, field):
    """Resolve ``field`` (short name of :data:`FIELDS` or an array name) -> (Field, 'cell'|'point')."""
    spec = FIELDS.get(field)
    if spec is None:
        unit = next((u for s, u in _UNIT_SUFFIXES if field.endswith(s)), "-")
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
    grid = _grid(obj)
    spec, assoc = _field(grid, field)
    data = grid.cell_data if assoc == "cell" else grid.point_data
    return np.asarray(data[spec.array]), spec


def deformed(obj, scale=1.0):
    """A copy of the grid with points moved by ``scale * displacement_mm`` (no-op without displacements).

    ``scale="auto"`` makes the largest displacement 5 % of the bounding-box diagonal.
    """
    grid = _grid(obj).copy()
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


_CLIPS = {"sagittal": 0, "coronal": 1, "axial": 2}


def _plane(grid, clip_plane, origin=None):
    if clip_plane not in _CLIPS:
        raise InputError(f"clip={clip_plane!r}: allowed values are {sorted(_CLIPS)} or None")
    axis = _CLIPS[clip_plane]
    b = np.asarray(grid.bounds).reshape(3, 2)
    o = b.mean(axis=1) if origin is None else np.asarray(origin, dtype=float)
    normal = np.zeros(3)
    normal[axis] = 1.0
    return axis, normal, o


def clip(obj, plane="sagittal", origin=None, keep="negative", cut="plane"):
    """Cut the grid on the mid-``plane`` (``'sagittal'``: normal x, ``'coronal'``: normal y, ``'axial'``:
    normal z), through the centre of its bounding box unless ``origin (3,)`` mm is given.

    ``keep='negative'`` keeps the patient's left half (sagittal), the posterior half (coronal) or the
    inferior half (axial). ``cut='plane'`` cuts the cells on the plane (a flat cut face; cut cells keep
    their cell values, point data are interpolated); ``cut='cells'`` keeps whole cells whose centre lies
    on the kept side (the cell layout stays visible).
    """
    grid = _grid(obj)
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
    return _mark(out)


# ------------------------------------------------------------------------------------------ views
def _new_plotter(plotter, off_screen, window_size, shape=(1, 1)):
    pv = _pv()
    if plotter is not None:
        return plotter
    if off_screen is None:
        off_screen = bool(pv.OFF_SCREEN)
    return pv.Plotter(off_screen=off_screen, window_size=list(window_size), shape=shape)


def _set_camera(plotter, grid, view, margin=0.0):
    """``view``: 'sagittal' (from the right, +x), 'coronal' (from the front, +y), 'axial' (from above),
    or 'oblique' (front-right-above)."""
    b = np.asarray(grid.bounds).reshape(3, 2)
    center = b.mean(axis=1)
    direction = {"sagittal": (1.0, 0.0, 0.0), "coronal": (0.0, 1.0, 0.0), "axial": (0.0, 0.0, 1.0),
                 "oblique": (0.9, 1.0, 0.45)}
    if view not in direction:
        raise InputError(f"view={view!r}: allowed values are {sorted(direction)}")
    d = np.asarray(direction[view])
    d = d / np.linalg.norm(d)
    up = (0.0, 1.0, 0.0) if view == "axial" else (0.0, 0.0, 1.0)
    plotter.camera_position = [tuple(center + 3.0 * grid.length * d), tuple(center), up]
    plotter.reset_camera()
    if margin:
        # leave the bottom of the picture to the scalar bar: zoom out, then move the view down
        plotter.camera.zoom(1.0 - margin)
        shift = -margin * 0.9 * np.ptp(np.asarray(grid.points) @ np.asarray(up)) * np.asarray(up)
        cam = plotter.camera
        cam.position = tuple(np.asarray(cam.position) + shift)
        cam.focal_point = tuple(np.asarray(cam.focal_point) + shift)


def _finish(plotter, show, screenshot, return_plotter):
    if screenshot is not None:
        path = pathlib.Path(screenshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        plotter.screenshot(str(path))
        plotter.close()
        return path
    if return_plotter or not show:
        return plotter
    if _no_display() and not plotter.off_screen:
        plotter.close()
        raise InputError("no display available for an interactive window (DISPLAY is not set); "
                         "save a picture instead (screenshot='file.png', or --screenshot file.png)")
    plotter.show()
    return plotter


def _category_color(tag, name, index):
    if tag == "region" and name in REGION_COLORS:
        return REGION_COLORS[name]
    return PALETTE[index % len(PALETTE)]


def explode(obj, distance=10.0, by="level"):
    """Separate the levels: each piece of tag ``by`` moves by ``k * distance`` mm along the spine axis.

    The axis runs from the centroid of the most caudal to that of the most cranial piece (z for a single
    piece); ``k`` counts pieces from the caudal end (0 stays in place). Shared interface nodes are
    duplicated, so the result is a new grid with the same cells and cell data in a new order (the
    ``vtkOriginalCellIds`` array gives the original cell of each).
    """
    pv = _pv()
    grid = _grid(obj)
    if by not in grid.cell_data:
        raise InputError(f"explode(by={by!r}): the grid has no cell tag {by!r}; "
                         f"available: {sorted(grid.cell_data.keys())}")
    codes = np.asarray(grid.cell_data[by])
    centers = np.asarray(grid.cell_centers().points)
    values = np.unique(codes)
    cent = np.array([centers[codes == v].mean(axis=0) for v in values])
    order = np.argsort(cent[:, 2])
    axis = cent[order[-1]] - cent[order[0]]
    axis = axis / np.linalg.norm(axis) if len(values) > 1 and np.linalg.norm(axis) > 0 else np.array([0, 0, 1.0])
    pieces = []
    for k, i in enumerate(order):
        piece = grid.extract_cells(np.flatnonzero(codes == values[i]))
        piece.points = np.asarray(piece.points) + k * float(distance) * axis
        pieces.append(piece)
    out = pv.merge(pieces, merge_points=False) if len(pieces) > 1 else pieces[0]
    for key in grid.field_data.keys():
        out.field_data[key] = grid.field_data[key]
    return out


def show_segment(obj, color_by="region", shell="translucent", shell_opacity=0.2,
                 shell_regions=SHELL_REGIONS, explode_distance=0.0, clip=None, view="oblique",
                 show_edges=False, legend=True, plotter=None, show=True, screenshot=None, off_screen=None,
                 window_size=(1024, 768), return_plotter=False):
    """Show a mesh, segment or result coloured by a cell tag, with the outer shell translucent or hidden.

    Parameters
    ----------
    color_by : str
        Cell tag: ``'region'`` (fixed colours: :data:`REGION_COLORS`) or ``'level'`` (one colour per level).
    shell : ``'translucent'`` | ``'hidden'`` | ``'opaque'``
        How to draw the cells of ``shell_regions`` (cortex, endplate, annulus by default) so that the
        cancellous core, cement and nucleus are visible.
    explode_distance : float
        mm between consecutive levels along the spine axis (:func:`explode`); 0 keeps them together.
    clip : None | 'sagittal' | 'coronal' | 'axial'
        Show half of the model cut on the mid-plane (:func:`clip`); the camera looks at the cut.
    view : str
        Camera direction when not clipped: 'oblique', 'sagittal', 'coronal', 'axial'.
    plotter : pyvista.Plotter, optional
        Draw into this plotter (active subplot) and return it without showing.
    screenshot : path, optional
        Render off-screen to this PNG file and return its path.

    Returns the plotter (interactive), or the screenshot path.
    """
    if shell not in ("translucent", "hidden", "opaque"):
        raise InputError(f"shell={shell!r}: allowed values are 'translucent', 'hidden', 'opaque'")
    grid = _grid(obj)
    if color_by not in grid.cell_data:
        raise InputError(f"color_by={color_by!r}: the grid has no cell tag {color_by!r}; "
                         f"available: {sorted(k for k in grid.cell_data.keys() if not k.endswith('_name'))}")
    if explode_distance:
        grid = _mark(explode(grid, explode_distance, by="level" if "level" in grid.cell_data else color_by))
    if clip is not None:
        grid = _mark(globals()["clip"](grid, clip))
    if screenshot is not None:
        off_screen = True
    p = _new_plotter(plotter, off_screen, window_size)
    names = tag_names(grid, color_by)
    codes = np.asarray(grid.cell_data[color_by]).astype(np.int64)
    region_names = tag_names(grid, "region")
    in_shell = np.zeros(grid.n_cells, dtype=bool)
    if "region" in grid.cell_data and shell != "opaque":
        shell_codes = [v for v, n in region_names.items() if n in set(shell_regions)]
        in_shell = np.isin(np.asarray(grid.cell_data["region"]).astype(np.int64), shell_codes)
    labels = []
    for index, value in enumerate(np.unique(codes)):
        name = names.get(int(value), f"{color_by} {int(value)}")
        color = _category_color(color_by, name, index)
        sel = codes == value
        drawn = False
        for part, opacity in ((sel & ~in_shell, 1.0), (sel & in_shell, shell_opacity)):
            if not part.any() or (opacity != 1.0 and shell == "hidden"):
                continue
            p.add_mesh(grid.extract_cells(np.flatnonzero(part)), color=color, opacity=opacity,
                       show_edges=show_edges, edge_color="#404040", line_width=0.5, smooth_shading=False)
            drawn = True
        if drawn:
            labels.append([name, color])
    if legend and labels:
        p.add_legend(labels, bcolor="#303030", face="rectangle", size=(0.18, 0.04 * len(labels) + 0.02))
    _set_camera(p, grid, clip if clip is not None else view)
    return _finish(p, show, screenshot, return_plotter or plotter is not None)


def _clim(values_list, symmetric=False):
    finite = [v[np.isfinite(v)] for v in values_list]
    finite = [v for v in finite if v.size]
    if not finite:
        return (0.0, 1.0)
    lo = float(min(v.min() for v in finite))
    hi = float(max(v.max() for v in finite))
    if symmetric:
        a = max(abs(lo), abs(hi)) or 1.0
        return (-a, a)
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-6 or 1.0)
    return (lo, hi)


def field_grid(obj, field="von_mises", scale=1.0, clip=None, origin=None, cut="plane"):
    """The grid :func:`show_field` draws: clipped on ``clip`` (undeformed mid-plane, see :func:`clip`),
    then deformed by ``scale``, with ``field`` active. Returns ``(grid, Field, association)``.
    """
    grid = _grid(obj)
    spec, assoc = _field(grid, field)
    shown = grid if clip is None else globals()["clip"](grid, clip, origin=origin, cut=cut)
    if scale == "auto":  # the magnification of the whole model, not of the clipped part
        u = np.asarray(grid.point_data["displacement_mm"]) if "displacement_mm" in grid.point_data else None
        umax = float(np.linalg.norm(u, axis=1).max()) if u is not None and u.size else 0.0
        scale = 0.05 * grid.length / umax if umax > 0 else 0.0
    shown = _mark(deformed(shown, scale))
    shown.set_active_scalars(spec.array, preference=assoc)
    return shown, spec, assoc


def _add_field(p, shown, spec, assoc, clim, cmap, show_edges, scalar_bar, title=None):
    p.add_mesh(shown, scalars=spec.array, preference=assoc, clim=clim, cmap=cmap, show_edges=show_edges,
               edge_color="#404040", line_width=0.5, show_scalar_bar=False)
    if scalar_bar:
        p.add_scalar_bar(title=title or spec.title, n_labels=5, fmt="%.3g", vertical=False,
                         position_x=0.15, position_y=0.02, width=0.7, height=0.13, title_font_size=15,
                         label_font_size=12, color="black")


def show_field(obj, field="von_mises", scale=1.0, clip=None, clim=None, cmap="viridis", view="oblique",
               show_edges=False, scalar_bar=True, title=None, plotter=None, show=True, screenshot=None,
               off_screen=None, window_size=(1024, 768), return_plotter=False):
    """Show a result field on the deformed shape.

    Parameters
    ----------
    field : str
        A short name of :data:`FIELDS` (``von_mises``, ``max_principal_stress``, ``min_principal_strain``,
        ``displacement``, ``strain_energy_density``, ``cement_fraction``, ...) or any scalar array name.
    scale : float or 'auto'
        Displacement magnification (1 = true deformation, 0 = undeformed shape).
    clip : None | 'sagittal' | 'coronal' | 'axial'
        Keep the cells on the negative side of the mid-plane (left, posterior, inferior half; the plane
        is placed on the undeformed bounding-box centre) and look at the cut.
    clim : (float, float), optional
        Colour range in the field's unit; default the range over the whole (unclipped) model.
    title : str, optional
        Scalar bar title; default ``"label [unit]"``, e.g. ``"von Mises stress [MPa]"``.

    Returns the plotter (interactive) or the screenshot path.
    """
    grid = _grid(obj)
    shown, spec, assoc = field_grid(grid, field, scale, clip)
    if clim is None:
        clim = _clim([np.asarray((grid.cell_data if assoc == "cell" else grid.point_data)[spec.array])])
    if screenshot is not None:
        off_screen = True
    p = _new_plotter(plotter, off_screen, window_size)
    _add_field(p, shown, spec, assoc, clim, cmap, show_edges, scalar_bar, title)
    _set_camera(p, grid, clip if clip is not None else view, margin=0.2 if scalar_bar else 0.0)
    return _finish(p, show, screenshot, return_plotter or plotter is not None)


def show_comparison(a, b, field="von_mises", labels=("A", "B"), scale=1.0, clip=None, clim=None,
                    cmap="viridis", view="oblique", show_edges=False, title=None, show=True, screenshot=None,
                    off_screen=None, window_size=(1600, 700), return_plotter=False):
    """Two results side by side with one shared colour range (the range over both unless ``clim``).

    The cameras are linked. ``labels`` are written above each view (e.g. ``("VP", "BKP")``).
    Other parameters (``title``: scalar bar title) as in :func:`show_field`.
    """
    ga, gb = _grid(a), _grid(b)
    sa, spec, assoc = field_grid(ga, field, scale, clip)
    sb, _, _ = field_grid(gb, field, scale, clip)
    if clim is None:
        data = [np.asarray((g.cell_data if assoc == "cell" else g.point_data)[spec.array]) for g in (ga, gb)]
        clim = _clim(data)
    if screenshot is not None:
        off_screen = True
    p = _new_plotter(None, off_screen, window_size, shape=(1, 2))
    for col, (shown, full, label) in enumerate(((sa, ga, labels[0]), (sb, gb, labels[1]))):
        p.subplot(0, col)
        _add_field(p, shown, spec, assoc, clim, cmap, show_edges, scalar_bar=True, title=title)
        p.add_text(str(label), position="upper_left", font_size=14)
        _set_camera(p, ga, clip if clip is not None else view, margin=0.2)
    p.link_views()
    return _finish(p, show, screenshot, return_plotter)


def _same_topology(ga, gb, what=("A", "B")):
    if ga.n_cells != gb.n_cells or ga.n_points != gb.n_points:
        raise InputError(f"difference needs the same mesh topology: {what[0]} has {ga.n_cells} cells and "
                         f"{ga.n_points} nodes, {what[1]} has {gb.n_cells} cells and {gb.n_points} nodes "
                         f"(compare results of the same segment mesh, e.g. two treatments of one fracture)")
    ca, cb = np.asarray(ga.cell_connectivity), np.asarray(gb.cell_connectivity)
    if ca.shape != cb.shape or not np.array_equal(ca, cb) or not np.array_equal(ga.celltypes, gb.celltypes):
        n = int(np.count_nonzero(ca != cb)) if ca.shape == cb.shape else -1
        raise InputError(f"difference needs the same mesh topology: {what[0]} and {what[1]} have the same "
                         f"numbers of cells and nodes but different connectivity"
                         + (f" ({n} differing entries)" if n >= 0 else ""))


def difference(a, b, field="von_mises"):
    """Grid of ``a`` (undeformed) with the array ``"<array> difference"`` = field of ``b`` minus that of ``a``.

    ``a`` and ``b`` must share the mesh topology (same cells and node numbering; the node positions may
    differ, e.g. after kyphoplasty height restoration); otherwise :class:`~vertebrafe.errors.InputError`.
    Returns ``(grid, Field)`` where the Field's array is the difference array.
    """
    ga, gb = _grid(a), _grid(b)
    _same_topology(ga, gb)
    spec, assoc = _field(ga, field)
    _field(gb, field)
    data_a = ga.cell_data if assoc == "cell" else ga.point_data
    data_b = gb.cell_data if assoc == "cell" else gb.point_data
    out = ga.copy()
    name = f"{spec.array} difference"
    target = out.cell_data if assoc == "cell" else out.point_data
    target[name] = np.asarray(data_b[spec.array], dtype=float) - np.asarray(data_a[spec.array], dtype=float)
    return _mark(out), Field(name, f"Δ {spec.label}", spec.unit)


def show_difference(a, b, field="von_mises", labels=("A", "B"), scale=0.0, clip=None, clim=None,
                    cmap="coolwarm", view="oblique", show_edges=False, plotter=None, show=True,
                    screenshot=None, off_screen=None, window_size=(1024, 768), return_plotter=False):
    """Show ``field(b) - field(a)`` on ``a``'s mesh with a symmetric diverging colour range.

    The scalar bar reads ``"Δ label (B - A) [unit]"`` with the given ``labels``; ``scale`` deforms by
    ``a``'s displacements (default 0: undeformed). Same topology required (see :func:`difference`).
    """
    grid, spec = difference(a, b, field)
    assoc = "cell" if spec.array in grid.cell_data else "point"
    if clim is None:
        clim = _clim([np.asarray((grid.cell_data if assoc == "cell" else grid.point_data)[spec.array])],
                     symmetric=True)
    shown, _, _ = field_grid(grid, spec.array, scale, clip)
    if screenshot is not None:
        off_screen = True
    p = _new_plotter(plotter, off_screen, window_size)
    title = f"{spec.label} ({labels[1]} - {labels[0]}) [{spec.unit}]"
    _add_field(p, shown, spec, assoc, clim, cmap, show_edges, True, title)
    _set_camera(p, grid, clip if clip is not None else view, margin=0.2)
    return _finish(p, show, screenshot, return_plotter or plotter is not None)


# ------------------------------------------------------------------------------------------ images
_KINDS = {"segment": "show_segment", "field": "show_field", "comparison": "show_comparison",
          "difference": "show_difference"}


def _plotter_for(obj, field, other, kind, window_size, opts):
    if kind is None:
        kind = ("comparison" if other is not None else "field") if field is not None else "segment"
    if kind not in _KINDS:
        raise InputError(f"kind={kind!r}: allowed values are {sorted(_KINDS)}")
    if kind in ("comparison", "difference"):
        if other is None:
            raise InputError(f"kind={kind!r} needs a second result: other=...")
        args = (obj, other)
    elif other is not None:
        raise InputError(f"kind={kind!r} takes one object; other= is only for 'comparison' and 'difference'")
    else:
        args = (obj,)
    if field is not None:
        if kind == "segment":
            raise InputError("kind='segment' shows tags; field= is for 'field', 'comparison', 'difference'")
        opts["field"] = field
    fn = globals()[_KINDS[kind]]
    return fn(*args, off_screen=True, window_size=window_size, show=False, return_plotter=True, **opts)


def render(obj, field=None, other=None, kind=None, window_size=(800, 600), **opts):
    """Render off-screen and return the image ``(h, w, 3)`` uint8.

    ``kind``: ``'segment'`` (tags, :func:`show_segment`), ``'field'`` (:func:`show_field`),
    ``'comparison'`` or ``'difference'`` (with ``other``). Default: ``'field'`` when ``field`` is given,
    ``'comparison'`` when ``other`` is given too, else ``'segment'``. ``opts`` go to that function.
    """
    p = _plotter_for(obj, field, other, kind, window_size, opts)
    try:
        return np.asarray(p.screenshot(None, return_img=True))
    finally:
        p.close()


def screenshot(obj, path, field=None, other=None, kind=None, window_size=(1024, 768), **opts):
    """Render off-screen (see :func:`render`) and write a PNG to ``path``; returns ``pathlib.Path(path)``.

    >>> viz.screenshot(seg, "segment.png", color_by="level", explode_distance=8)     # doctest: +SKIP
    >>> viz.screenshot(sol, "vm.png", field="von_mises", clip="sagittal", scale=20)  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    p = _plotter_for(obj, field, other, kind, window_size, opts)
    try:
        p.screenshot(str(path))
    finally:
        p.close()
    return path


def nonbackground_fraction(img, background=None, tol=8):
    """Fraction of pixels of ``img (h, w, 3|4)`` that differ from the background colour by more than ``tol``.

    The background is the most frequent corner colour unless given as an RGB triple (0-255).
    """
    img = np.asarray(img)[..., :3].astype(int)
    if background is None:
        corners = [tuple(img[0, 0]), tuple(img[0, -1]), tuple(img[-1, 0]), tuple(img[-1, -1])]
        background = max(set(corners), key=corners.count)
    diff = np.abs(img - np.asarray(background, dtype=int)).max(axis=-1)
    return float(np.mean(diff > tol))


# ------------------------------------------------------------------------------------------ report figures
_OFFSCREEN = None


def offscreen_available(timeout=120.0):
    """Whether off-screen rendering works here: ``(True, render window class)`` or ``(False, reason)``.

    The test renders in a child process, because VTK without an EGL or OSMesa driver may abort the
    process instead of raising; the answer is cached for the life of this process. ``timeout`` in s.
    """
    global _OFFSCREEN
    if _OFFSCREEN is not None:
        return _OFFSCREEN
    try:
        import pyvista  # noqa: F401
    except ImportError:
        _OFFSCREEN = (False, "pyvista is not installed (pip install 'vertebrafe[viz]')")
        return _OFFSCREEN
    import subprocess

    code = "from vertebrafe import viz; print(viz.offscreen_backend())"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as exc:
        _OFFSCREEN = (False, f"the rendering test did not finish ({type(exc).__name__})")
        return _OFFSCREEN
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines and "RenderWindow" in lines[-1]:
        _OFFSCREEN = (True, lines[-1].strip())
    else:
        why = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        _OFFSCREEN = (False, f"the rendering test failed (exit status {proc.returncode}"
                             + (f": {why[-1][:200]}" if why else "") + "); install an EGL or OSMesa driver "
                             "(Debian/Ubuntu: libegl1 libegl-mesa0 libgl1-mesa-dri, or libosmesa6)")
    return _OFFSCREEN


def _file_label(name):
    """``name`` made safe for a file name (letters, digits, ``.``, ``-``, ``_``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "case"


def _auto_scale(grid):
    """Magnification that makes the largest displacement 5 % of the bounding-box diagonal (0 if none)."""
    if "displacement_mm" not in grid.point_data:
        return 0.0
    u = np.asarray(grid.point_data["displacement_mm"])
    umax = float(np.linalg.norm(u, axis=1).max()) if u.size else 0.0
    return float(f"{0.05 * grid.length / umax:.2g}") if umax > 0 else 0.0


def _robust_clim(grids, array, percentile=95.0):
    """Colour range ``(0, volume-weighted percentile)`` of the cell array ``array`` over ``grids`` (MPa for
    stresses). Weighting by cell volume keeps the thin, stiff cortex and the few loaded cells at the plates
    from setting the range for the whole picture; cells above it take the top colour."""
    values, weights = [], []
    for g in grids:
        values.append(np.asarray(g.cell_data[array], dtype=float))
        weights.append(np.abs(np.asarray(g.compute_cell_sizes(length=False, area=False, volume=True)
                                         .cell_data["Volume"], dtype=float)))
    v, w = np.concatenate(values), np.concatenate(weights)
    keep = np.isfinite(v) & (w > 0)
    v, w = v[keep], w[keep]
    if not v.size:
        return (0.0, 1.0)
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    hi = float(v[order][min(np.searchsorted(cum, percentile / 100.0 * cum[-1]), v.size - 1)])
    return (0.0, hi if hi > 0 else float(v.max()) or 1.0)


def _study_picks(directory):
    """``(reference, [treated, ...])`` cases of a study directory to draw, each ``(case name, result dir,
    variant)``, and notes about what is missing. The reference is the first case of the summary's reference
    variant (else the first case); per other variant the case with the reference's [grid] values and the
    middle value of the variant's own sweep."""
    import json

    with open(os.path.join(directory, "study.json")) as f:
        meta = json.load(f)
    cases = meta.get("cases", [])
    if not cases:
        return None, []
    ref_variant = meta.get("reference")
    ref = next((c for c in cases if ref_variant and c["variant"] == ref_variant), cases[0])
    grid_keys = meta.get("grid_keys", [])
    same = lambda c: all(c["params"].get(k) == ref["params"].get(k) for k in grid_keys)  # noqa: E731
    treated = []
    for variant in dict.fromkeys(c["variant"] for c in cases):
        if variant == ref["variant"]:
            continue
        pool = [c for c in cases if c["variant"] == variant and same(c)] or \
               [c for c in cases if c["variant"] == variant]
        treated.append(pool[(len(pool) - 1) // 2])
    pick = lambda c: (c["name"], os.path.join(directory, "cases", c["id"]), c["variant"])  # noqa: E731
    return pick(ref), [pick(c) for c in treated]


def report_figures(directory, window_size=(1000, 750), notes=None, check=True):
    """Write the figures of ``vertebrafe report`` into ``directory/figures/``; returns their paths.

    For a case result (``directory/result.vtu``): ``von_mises_sagittal.png``, the von Mises stress [MPa]
    on the deformed shape (magnified so that the largest displacement is 5 % of the model's diagonal),
    cut on the mid-sagittal plane, and ``regions_sagittal.png``, the same cut coloured by region.

    For a study (``directory/study.json``): the same two pictures of the reference case (the first case of
    the summary's reference variant, e.g. NSM at the first bone density) named ``<case>_...png``, and per
    other variant one case (same [grid] values as the reference, middle of the variant's own sweep): its
    regions and ``<case>_vs_<reference>_von_mises_sagittal.png``, the two side by side with one colour range
    and one magnification. Cases without ``result.vtu`` (``output.vtu = false``) or not finished are skipped.

    Colour range of the von Mises pictures: 0 to the volume-weighted 95th percentile of the cells of the
    results shown (cells above it, mostly cortex, take the top colour; the scalar bar says so). ``notes``: a list that receives one line per thing skipped and why. With
    ``check``, off-screen rendering is first tested in a child process (:func:`offscreen_available`);
    when it fails, nothing is drawn and a note says why.
    """
    directory = pathlib.Path(directory)
    notes = [] if notes is None else notes
    jobs = []                           # (kind, name, vtu path(s), labels)
    if (directory / "study.json").exists():
        ref, treated = _study_picks(directory)
        if ref is None:
            notes.append("figures skipped: the study has no cases")
            return []
        missing = []
        for name, case_dir, _ in [ref] + treated:
            if not os.path.isfile(os.path.join(case_dir, "result.vtu")):
                missing.append(name)
        if missing:
            notes.append(f"figures skipped for {', '.join(missing)}: no result.vtu (case not finished, or "
                         "output.vtu = false in the study)")
        ref_vtu = os.path.join(ref[1], "result.vtu")
        ref_ok = ref[0] not in missing
        if ref_ok:
            jobs.append(("field", f"{_file_label(ref[0])}_von_mises_sagittal.png", (ref_vtu,), (ref[0],)))
            jobs.append(("regions", f"{_file_label(ref[0])}_regions_sagittal.png", (ref_vtu,), (ref[0],)))
        for name, case_dir, _ in treated:
            if name in missing:
                continue
            vtu = os.path.join(case_dir, "result.vtu")
            jobs.append(("regions", f"{_file_label(name)}_regions_sagittal.png", (vtu,), (name,)))
            if ref_ok:
                jobs.append(("comparison", f"{_file_label(name)}_vs_{_file_label(ref[0])}_von_mises_sagittal.png",
                             (ref_vtu, vtu), (ref[0], name)))
            else:
                jobs.append(("field", f"{_file_label(name)}_von_mises_sagittal.png", (vtu,), (name,)))
    elif (directory / "result.vtu").exists():
        vtu = str(directory / "result.vtu")
        label = directory.resolve().name
        jobs = [("field", "von_mises_sagittal.png", (vtu,), (label,)),
                ("regions", "regions_sagittal.png", (vtu,), (label,))]
    else:
        notes.append(f"figures skipped: {directory} holds no result.vtu (output.vtu = false?) and no study.json")
        return []
    if not jobs:
        return []
    if check:
        ok, why = offscreen_available()
        if not ok:
            notes.append(f"figures skipped: off-screen rendering is not available ({why})")
            return []
    out_dir = directory / "figures"
    grids = {}

    def grid(path):
        if path not in grids:
            grids[path] = _mark(to_pyvista(path))
        return grids[path]

    written = []
    for kind, fname, paths, labels in jobs:
        target = out_dir / fname
        if kind == "regions":
            written.append(screenshot(grid(paths[0]), target, kind="segment", color_by="region", clip="sagittal",
                                      shell="opaque", window_size=window_size))
            continue
        shown = [grid(p) for p in paths]
        field = FIELDS["von_mises"]
        scale = _auto_scale(shown[0])
        clim = _robust_clim(shown, field.array)
        title = f"{field.title}, colours capped at {clim[1]:.3g}; deformation x{scale:g}"
        if kind == "field":
            written.append(screenshot(shown[0], target, field="von_mises", kind="field", clip="sagittal",
                                      scale=scale, clim=clim, title=title, window_size=window_size))
        else:
            wide = (2 * window_size[0], window_size[1])
            written.append(screenshot(shown[0], target, field="von_mises", other=shown[1], kind="comparison",
                                      labels=labels, clip="sagittal", scale=scale, clim=clim, title=title,
                                      window_size=wide))
    return written


# ------------------------------------------------------------------------------------------ CLI
VIEW_HELP = "show a result, segment or mesh file (VTU) with PyVista, or save a screenshot"


def configure_view(parser):
    """Arguments of ``vertebrafe view`` (registered in ``vertebrafe.cli.SUBCOMMANDS``)."""
    parser.add_argument("result", metavar="RESULT",
                        help="VTU file written by Result.save / Solution.save / Segment.save / Mesh.save, or a directory written by Result.save (its result.vtu)")
    parser.add_argument("--field", "-f", default=None,
                        help=f"result field to show (default: tags); one of {', '.join(FIELDS)} or an array name")
    parser.add_argument("--color-by", default="region", help="cell tag used without --field (region, level)")
    parser.add_argument("--clip", choices=sorted(_CLIPS), default=None, help="cut on the mid-plane")
    parser.add_argument("--scale", default="1",
                        help="displacement magnification for --field (number or 'auto'; default 1)")
    parser.add_argument("--shell", choices=("translucent", "hidden", "opaque"), default="translucent",
                        help="cortex/endplate/annulus drawing without --field (default translucent)")
    parser.add_argument("--explode", type=float, default=0.0, metavar="MM",
                        help="distance between levels without --field (mm)")
    parser.add_argument("--compare", metavar="RESULT2", default=None,
                        help="second result: side-by-side view with a shared colour range (needs --field)")
    parser.add_argument("--difference", action="store_true",
                        help="with --compare: show RESULT2 minus RESULT (same mesh topology)")
    parser.add_argument("--clim", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="colour range of the field (its unit); default: the full range, which a thin stiff "
                             "shell can dominate")
    parser.add_argument("--screenshot", metavar="FILE.png", default=None,
                        help="render off-screen to this PNG instead of opening a window")
    parser.add_argument("--window-size", type=int, nargs=2, default=(1024, 768), metavar=("W", "H"))


def _resolve_result_path(path):
    p = pathlib.Path(path)
    if p.is_dir():
        if (p / "result.vtu").is_file():
            return p / "result.vtu"
        files = sorted(p.glob("*.vtu"))
        if not files:
            raise InputError(f"result directory {str(p)!r} holds no .vtu file")
        return files[0]
    return p


def run_view(args):
    """Run ``vertebrafe view``; returns the exit status."""
    scale = args.scale
    if scale != "auto":
        try:
            scale = float(scale)
        except ValueError as exc:
            raise InputError(f"--scale {args.scale!r}: expected a number or 'auto'") from exc
    result = _resolve_result_path(args.result)
    common = dict(window_size=tuple(args.window_size), screenshot=args.screenshot, clip=args.clip)
    clim = None
    if args.clim is not None:
        lo, hi = args.clim
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InputError(f"--clim {lo:g} {hi:g}: expected two finite numbers LO < HI")
        clim = (lo, hi)
    if args.compare is not None or args.difference:
        if args.compare is None:
            raise InputError("--difference needs --compare RESULT2")
        if args.field is None:
            raise InputError("--compare needs --field (e.g. --field von_mises)")
        other = _resolve_result_path(args.compare)
        labels = (result.stem, other.stem)
        if args.difference:
            out = show_difference(result, other, field=args.field, labels=labels, scale=0.0, clim=clim, **common)
        else:
            out = show_comparison(result, other, field=args.field, labels=labels, scale=scale, clim=clim,
                                  **common)
    elif args.field is not None:
        out = show_field(result, field=args.field, scale=scale, clim=clim, **common)
    else:
        out = show_segment(result, color_by=args.color_by, shell=args.shell, explode_distance=args.explode,
                           **common)
    if args.screenshot is not None:
        print(f"wrote {out}")
    return 0
