"""An interactive view in one self-contained HTML file, for sharing without Python (:func:`export_html`).

The scene (surfaces of the shown cells with the field and its colour map, or coloured by region) is
written by VTK's ``vtkJSONSceneExporter`` and embedded, base64, in the static vtk.js viewer of the
``trame-vtk`` package (``pip install vertebrafe[share]``): the file holds vtk.js itself and opens offline
in a browser (rotate, zoom, pan).
"""
from __future__ import annotations

import io
import os
import pathlib
import tempfile
import zipfile

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path
from .convert import as_grid, clip as clip_grid, tag_names
from .views import (REGION_COLORS, SHELL_REGIONS, category_color, check_regions, field_grid, group_cmap, group_ranges,
                    region_groups, region_mask)

__all__ = ["export_html"]


def _viewer():
    try:
        from trame_vtk.tools.vtksz2html import write_html
    except ImportError:
        raise InputError("export_html needs the vtk.js viewer of trame-vtk: pip install trame-vtk "
                         "(or vertebrafe[share])") from None
    return write_html


def _lookup_table(cmap, clim):
    """The matplotlib colour map ``cmap`` over ``clim`` as a VTK colour transfer function (the kind the
    scene exporter writes for vtk.js)."""
    from matplotlib import colormaps
    from vtkmodules.vtkRenderingCore import vtkDiscretizableColorTransferFunction
    lut = vtkDiscretizableColorTransferFunction()
    for t, c in zip(np.linspace(0.0, 1.0, 32), colormaps[cmap](np.linspace(0.0, 1.0, 32))):
        lut.AddRGBPoint(clim[0] + t * (clim[1] - clim[0]), *c[:3])
    return lut


def _surface(grid):
    """Outer surface (PolyData) of an unstructured grid."""
    try:
        return grid.extract_surface(algorithm="dataset_surface")
    except TypeError:                                   # pyvista without the algorithm keyword
        return grid.extract_surface()


def _actor(surface, color=None, opacity=1.0, array=None, lut=None, clim=None):
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(surface)
    if array is not None:
        mapper.SetScalarModeToUseCellFieldData()
        mapper.SelectColorArray(array)
        mapper.SetColorModeToMapScalars()
        mapper.SetLookupTable(lut)
        mapper.SetScalarRange(*clim)
        mapper.ScalarVisibilityOn()
    else:
        mapper.ScalarVisibilityOff()
    actor = vtkActor()
    actor.SetMapper(mapper)
    if color is not None:
        from matplotlib.colors import to_rgb
        actor.GetProperty().SetColor(*to_rgb(color))
    actor.GetProperty().SetOpacity(opacity)
    return actor


def export_html(obj, path, field=None, scale=1.0, clip=None, through=None, regions=None, clim=None,
                cmap="viridis", color_by="region", shell_opacity=0.2):
    """Write an interactive 3-D view of ``obj`` (anything :func:`~vertebrafe.viz.to_pyvista` takes, a result
    folder included) to the self-contained HTML file ``path``; returns ``pathlib.Path(path)``.

    With ``field`` (a cell field such as ``"von_mises"``): the field on the deformed (``scale``), clipped
    (``clip``, ``through``) shape, coloured over ``clim`` (default its range over ``regions`` or all
    cells; a dict ``regions={name: (lo, hi) or None}`` gives each region its own range and colour map, as in
    :func:`~vertebrafe.viz.show_field`); without: the cells coloured by ``color_by`` with the shell regions
    translucent.
    """
    write_html = _viewer()
    from vtkmodules.vtkIOExport import vtkJSONSceneExporter
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - registers the render window implementation

    grid = as_grid(obj)
    check_regions([grid], regions)
    if isinstance(regions, dict) and clim is not None:
        raise InputError(f"clim={clim!r} with regions={regions!r}: give each region's range in the dict")
    renderer = vtkRenderer()
    renderer.SetBackground(1.0, 1.0, 1.0)
    if field is not None:
        shown, spec, assoc = field_grid(grid, field, scale, clip, origin=through)
        if assoc != "cell":
            raise InputError(f"export_html shows cell fields; {field!r} is a point field")
        groups = region_groups(regions)
        covered = np.zeros(shown.n_cells, dtype=bool)
        for i, ((names, _), lim) in enumerate(zip(groups, group_ranges([grid], spec, assoc, groups, clim))):
            mask = region_mask(shown, names)
            covered |= mask
            if not mask.any():
                continue
            part = _surface(shown.extract_cells(np.flatnonzero(mask)))
            surface = part.__class__()
            surface.copy_structure(part)
            # the scene keeps one lookup table per array name: a region with its own range gets its own name
            array = spec.array if len(groups) == 1 else f"{spec.array} {'+'.join(names)}"
            surface.cell_data[array] = np.asarray(part.cell_data[spec.array], dtype=float)
            renderer.AddActor(_actor(surface, array=array, lut=_lookup_table(group_cmap(cmap, i), lim), clim=lim))
        if not covered.all():
            renderer.AddActor(_actor(_surface(shown.extract_cells(np.flatnonzero(~covered))), "#d0d0d0", 0.15))
    else:
        shown = grid if clip is None else clip_grid(grid, clip, origin=through)
        if color_by not in shown.cell_data:
            raise InputError(f"color_by={color_by!r}: the grid has no cell tag {color_by!r}")
        codes = np.asarray(shown.cell_data[color_by]).astype(np.int64)
        names = tag_names(shown, color_by)
        shell = region_mask(shown, [n for n in tag_names(shown, "region").values() if n in SHELL_REGIONS]) \
            if "region" in shown.cell_data else np.zeros(shown.n_cells, bool)
        for index, value in enumerate(np.unique(codes)):
            name = names.get(int(value), str(value))
            color = REGION_COLORS.get(name) if color_by == "region" else None
            color = color or category_color(color_by, name, index)
            for sel, opacity in ((codes == value) & ~shell, 1.0), ((codes == value) & shell, shell_opacity):
                if sel.any():
                    renderer.AddActor(_actor(_surface(shown.extract_cells(np.flatnonzero(sel))), color, opacity))
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.AddRenderer(renderer)
    renderer.ResetCamera()
    camera = renderer.GetActiveCamera()
    camera.SetViewUp(0.0, 0.0, 1.0)
    focal = np.asarray(camera.GetFocalPoint())
    camera.SetPosition(*(focal + np.array([0.9, 1.0, 0.45]) * 3.0 * grid.length / np.linalg.norm([0.9, 1.0, 0.45])))
    renderer.ResetCamera()
    window.Render()
    path = pathlib.Path(path)
    if path.suffix.lower() != ".html":
        raise InputError(f"export_html: {str(path)!r} must end in .html")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vertebrafe-scene-") as d:
        exporter = vtkJSONSceneExporter()
        exporter.SetRenderWindow(window)
        exporter.SetFileName(os.path.join(d, "scene"))
        exporter.Write()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            root = os.path.join(d, "scene")
            for base, _, files in os.walk(root):
                for f in files:
                    full = os.path.join(base, f)
                    z.write(full, os.path.relpath(full, root))
    window.Finalize()
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            write_html(buf.getvalue(), f)
    return path
