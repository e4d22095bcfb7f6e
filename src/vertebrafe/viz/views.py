"""Views: segments coloured by tag, fields on the (deformed, clipped) shape, comparisons and differences,
and off-screen images of any of them (:func:`render`, :func:`screenshot`)."""
from __future__ import annotations

import math
import pathlib

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path
from .convert import (Field, as_grid, case_label, clip, deformed, mark_ready, resolve_field, tag_names,
                      through_point)
from .offscreen import import_pyvista, no_display

__all__ = ["REGION_COLORS", "PALETTE", "SHELL_REGIONS", "VIEWS", "explode", "show_segment", "field_grid", "show_field",
           "show_comparison", "difference", "show_difference", "render", "screenshot", "nonbackground_fraction"]

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


# ------------------------------------------------------------------------------------------ views
def _new_plotter(plotter, off_screen, window_size, shape=(1, 1)):
    pv = import_pyvista()
    if plotter is not None:
        return plotter
    if off_screen is None:
        off_screen = bool(pv.OFF_SCREEN)
    return pv.Plotter(off_screen=off_screen, window_size=list(window_size), shape=shape)


#: Camera directions (from the model towards the camera, patient axes) of the named views. Anatomical
#: names say where the viewer stands: ``anterior`` in front of the patient, ``lateral`` (= ``right``) at
#: the patient's right (anterior on the right of the picture; this is also the view of a sagittal cut),
#: ``superior`` above (anterior up); ``sagittal``, ``coronal``, ``axial`` are the same as ``lateral``,
#: ``anterior``, ``superior``.
VIEWS = {"anterior": (0.0, 1.0, 0.0), "posterior": (0.0, -1.0, 0.0), "lateral": (1.0, 0.0, 0.0),
         "right": (1.0, 0.0, 0.0), "left": (-1.0, 0.0, 0.0), "superior": (0.0, 0.0, 1.0),
         "inferior": (0.0, 0.0, -1.0), "sagittal": (1.0, 0.0, 0.0), "coronal": (0.0, 1.0, 0.0),
         "axial": (0.0, 0.0, 1.0), "oblique": (0.9, 1.0, 0.45)}
_VIEW_NAMES = {"sagittal": "lateral", "coronal": "anterior", "axial": "superior", "right": "lateral"}


def _orientation(plotter, view, corner="upper_right"):
    """Orientation marker (axes labelled R, A, S: the patient's right, anterior, superior) and the
    anatomical name of the view in a corner."""
    plotter.add_axes(xlabel="R", ylabel="A", zlabel="S", line_width=3, labels_off=False)
    plotter.add_text(f"{_VIEW_NAMES.get(view, view)} view", position=corner, font_size=9, color="black")


def _set_camera(plotter, grid, view, margin=0.0):
    """``view``: a name of :data:`VIEWS` (anterior, posterior, lateral/right, left, superior, inferior,
    oblique, or the plane names sagittal, coronal, axial)."""
    b = np.asarray(grid.bounds).reshape(3, 2)
    center = b.mean(axis=1)
    if view not in VIEWS:
        raise InputError(f"view={view!r}: allowed values are {sorted(VIEWS)}")
    d = np.asarray(VIEWS[view])
    d = d / np.linalg.norm(d)
    up = (0.0, 1.0, 0.0) if abs(d[2]) == 1.0 else (0.0, 0.0, 1.0)
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
        with atomic_path(path) as tmp:
            plotter.screenshot(tmp)
        plotter.close()
        return path
    if return_plotter or not show:
        return plotter
    if no_display() and not plotter.off_screen:
        plotter.close()
        raise InputError("no display available for an interactive window (DISPLAY is not set); "
                         "save a picture instead (screenshot='file.png', or --screenshot file.png)")
    plotter.show()
    return plotter


def category_color(tag, name, index):
    """Colour of category ``name`` (index ``index``) of cell tag ``tag``: the region colour, else the palette."""
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
    pv = import_pyvista()
    grid = as_grid(obj)
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
                 window_size=(1024, 768), return_plotter=False, through=None, orientation=True):
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
    through : str or (3,) float, optional
        Put the clip plane through this point or named place instead of the mid-plane: ``"cement"``
        (a sagittal clip then passes through the larger bolus: parasagittal), ``"cement:left"``, a level.
    view : str
        Camera direction when not clipped: a name of :data:`VIEWS` ('oblique', 'anterior', 'lateral',
        'superior', ...).
    orientation : bool
        Draw the R/A/S orientation marker and the view's anatomical name.
    plotter : pyvista.Plotter, optional
        Draw into this plotter (active subplot) and return it without showing.
    screenshot : path, optional
        Render off-screen to this PNG file and return its path.

    Returns the plotter (interactive), or the screenshot path.
    """
    if shell not in ("translucent", "hidden", "opaque"):
        raise InputError(f"shell={shell!r}: allowed values are 'translucent', 'hidden', 'opaque'")
    grid = as_grid(obj)
    if color_by not in grid.cell_data:
        raise InputError(f"color_by={color_by!r}: the grid has no cell tag {color_by!r}; "
                         f"available: {sorted(k for k in grid.cell_data.keys() if not k.endswith('_name'))}")
    if explode_distance:
        grid = mark_ready(explode(grid, explode_distance, by="level" if "level" in grid.cell_data else color_by))
    if clip is not None:
        grid = mark_ready(globals()["clip"](grid, clip, origin=through))
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
        color = category_color(color_by, name, index)
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
    if orientation:
        _orientation(p, clip if clip is not None else view, "lower_right")
    return _finish(p, show, screenshot, return_plotter or plotter is not None)


def colour_range(values_list, symmetric=False):
    """Colour range ``(lo, hi)`` over the finite values of the arrays in ``values_list`` (symmetric about 0 if asked)."""
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
    grid = as_grid(obj)
    spec, assoc = resolve_field(grid, field)
    shown = grid if clip is None else globals()["clip"](grid, clip, origin=origin, cut=cut)
    if scale == "auto":  # the magnification of the whole model, not of the clipped part
        u = np.asarray(grid.point_data["displacement_mm"]) if "displacement_mm" in grid.point_data else None
        umax = float(np.linalg.norm(u, axis=1).max()) if u is not None and u.size else 0.0
        scale = 0.05 * grid.length / umax if umax > 0 else 0.0
    shown = mark_ready(deformed(shown, scale))
    shown.set_active_scalars(spec.array, preference=assoc)
    return shown, spec, assoc


def _add_field(p, shown, spec, assoc, clim, cmap, show_edges, scalar_bar, title=None, slot=(0, 1)):
    """The field on ``shown``; its scalar bar in place ``slot = (i, n)`` of ``n`` bars side by side."""
    actor = p.add_mesh(shown, scalars=spec.array, preference=assoc, clim=clim, cmap=cmap, show_edges=show_edges,
                       edge_color="#404040", line_width=0.5, show_scalar_bar=False)
    if scalar_bar:
        i, n = slot
        p.add_scalar_bar(title=title or spec.title, mapper=actor.mapper, n_labels=5 if n == 1 else 3, fmt="%.3g",
                         vertical=False, position_x=0.15 + i * 0.7 / n, position_y=0.02, width=0.7 / n - (0.05 if n > 1 else 0.0),
                         height=0.13, title_font_size=15 if n == 1 else 11, label_font_size=12 if n == 1 else 10,
                         color="black")


#: colour maps of the second, third, ... region with its own range (the first takes the ``cmap`` argument),
#: sequential for fields and diverging for differences
REGION_CMAPS = ("plasma", "cividis", "magma", "inferno")
DIVERGING_CMAPS = ("PuOr", "PRGn", "BrBG", "PiYG")


def region_groups(regions):
    """``regions`` as ``[(names or None, clim or None)]``: one group for ``None`` (all cells), a name or a list
    of names (one colour range over them all); one group per key of a dict ``{region: (lo, hi) or None}``
    (its own colour range, the data range when None, and scalar bar)."""
    if regions is None:
        return [(None, None)]
    if isinstance(regions, str):
        return [((regions,), None)]
    if not isinstance(regions, dict):
        return [(tuple(regions), None)]
    if not regions:
        raise InputError("regions={}: name at least one region, e.g. {'cancellous': None, 'cortex': (0, 40)}")
    out = []
    for name, lim in regions.items():
        if lim is not None:
            try:
                lo, hi = (float(x) for x in lim)
            except (TypeError, ValueError):
                lo, hi = math.nan, math.nan
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputError(f"regions[{name!r}] = {lim!r}: expected None (the region's data range) or two "
                                 "finite numbers (lo, hi) with lo < hi, in the field's unit")
            lim = (lo, hi)
        out.append(((name,), lim))
    return out


def group_ranges(grids, spec, assoc, groups, clim=None, symmetric=False):
    """Colour range of each region group over ``grids``: the group's own, else ``clim``, else its data."""
    return [lim or clim or colour_range([field_data_of(g, spec, assoc, names) for g in grids], symmetric=symmetric)
            for names, lim in groups]


def group_cmap(cmap, index, diverging=False):
    """Colour map of region group ``index``: ``cmap`` for the first, then :data:`REGION_CMAPS` (or
    :data:`DIVERGING_CMAPS`) in turn."""
    others = DIVERGING_CMAPS if diverging else REGION_CMAPS
    return cmap if index == 0 else others[(index - 1) % len(others)]


def check_regions(grids, regions):
    """Every name of ``regions`` must be a region of at least one of ``grids``."""
    if regions is None:
        return
    names = set().union(*(tag_names(g, "region").values() for g in grids))
    for r in [regions] if isinstance(regions, str) else list(regions):
        if r not in names:
            raise InputError(f"regions={regions!r}: {r!r} is not a region of this model; regions: {sorted(names)}")


def region_mask(grid, regions):
    """Cells of ``grid`` in the named regions (all cells for ``regions=None``)."""
    if regions is None:
        return np.ones(grid.n_cells, dtype=bool)
    regions = [regions] if isinstance(regions, str) else list(regions)
    codes = [v for v, n in tag_names(grid, "region").items() if n in regions]
    return np.isin(np.asarray(grid.cell_data["region"]).astype(np.int64), codes)


def field_data_of(grid, spec, assoc, regions=None):
    """Values of the field over the cells of ``regions`` (cell fields) or over their nodes (point fields)."""
    if assoc == "cell":
        return np.asarray(grid.cell_data[spec.array])[region_mask(grid, regions)]
    if regions is None:
        return np.asarray(grid.point_data[spec.array])
    return np.asarray(grid.extract_cells(np.flatnonzero(region_mask(grid, regions))).point_data[spec.array])


def _add_regions(p, shown, spec, assoc, groups, ranges, cmap, show_edges, scalar_bar, title, diverging=False):
    """The field on the cells of each region group (:func:`region_groups`) with its colour range, map and
    scalar bar, and the cells of no group as a light translucent context. ``title`` names the bar of a
    single group; several bars are named by their regions."""
    covered = np.zeros(shown.n_cells, dtype=bool)
    for i, ((names, _), lim) in enumerate(zip(groups, ranges)):
        mask = region_mask(shown, names)
        covered |= mask
        if not mask.any():
            continue
        label = (title if len(groups) == 1 and title else spec.title if names is None
                 else f"{spec.label}, {', '.join(names)} [{spec.unit}]")
        part = shown if names is None else shown.extract_cells(np.flatnonzero(mask))
        _add_field(p, part, spec, assoc, lim, group_cmap(cmap, i, diverging), show_edges, scalar_bar, label,
                   slot=(i, len(groups)))
    if not covered.all():
        p.add_mesh(shown.extract_cells(np.flatnonzero(~covered)), color="#d0d0d0", opacity=0.15)


def show_field(obj, field="von_mises", scale=1.0, clip=None, clim=None, cmap="viridis", view="oblique",
               show_edges=False, scalar_bar=True, title=None, plotter=None, show=True, screenshot=None,
               off_screen=None, window_size=(1024, 768), return_plotter=False, through=None, regions=None,
               orientation=True):
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
        Colour range in the field's unit; default the range over the whole (unclipped) model, or over the
        cells of ``regions``.
    title : str, optional
        Scalar bar title; default ``"label [unit]"``, e.g. ``"von Mises stress [MPa]"``.
    through : str or (3,) float, optional
        Clip plane through this point or named place (``"cement"``, ``"L1"``; see :func:`clip`).
    regions : str, sequence of str or dict, optional
        Colour only these regions (e.g. ``"cancellous"``), with the colour range of their own values,
        and draw the others as a light translucent context: the stiff cortex otherwise sets the range and
        leaves the cancellous bone uniformly dark. A dict ``{region: (lo, hi) or None}`` gives each region
        its own colour range (None: its data range), colour map and scalar bar, e.g.
        ``{"cancellous": None, "cortex": None}`` (then ``clim`` is not used).
    orientation : bool
        Draw the R/A/S orientation marker and the view's anatomical name.

    Returns the plotter (interactive) or the screenshot path.
    """
    grid = as_grid(obj)
    groups = _groups([grid], regions, clim)
    shown, spec, assoc = field_grid(grid, field, scale, clip, origin=through)
    ranges = group_ranges([grid], spec, assoc, groups, clim)
    if screenshot is not None:
        off_screen = True
    p = _new_plotter(plotter, off_screen, window_size)
    _add_regions(p, shown, spec, assoc, groups, ranges, cmap, show_edges, scalar_bar, title)
    _set_camera(p, grid, clip if clip is not None else view, margin=0.2 if scalar_bar else 0.0)
    if orientation:
        _orientation(p, clip if clip is not None else view)
    return _finish(p, show, screenshot, return_plotter or plotter is not None)


def _groups(grids, regions, clim):
    """The checked region groups of ``regions`` (a dict's ranges exclude ``clim``)."""
    check_regions(grids, regions)
    if isinstance(regions, dict) and clim is not None:
        raise InputError(f"clim={clim!r} with regions={regions!r}: give each region's range in the dict")
    return region_groups(regions)


def _shared_through(grids, through, clip):
    """A named clip point resolved once for several grids (the first that has it: a comparison of an
    untreated and a cemented result cuts both through the cement of the second)."""
    if through is None or clip is None or not isinstance(through, str):
        return through
    errors = []
    for g in grids:
        try:
            return through_point(g, through, clip)
        except InputError as e:
            errors.append(e)
    raise errors[0]


def show_comparison(a, b, field="von_mises", labels=None, scale=1.0, clip=None, clim=None,
                    cmap="viridis", view="oblique", show_edges=False, title=None, show=True, screenshot=None,
                    off_screen=None, window_size=None, return_plotter=False, through=None, regions=None,
                    difference=False, orientation=True):
    """Two results side by side with one shared colour range (the range over both unless ``clim``), and
    with ``difference=True`` a third panel with ``field(b) - field(a)`` (same mesh topology; diverging
    symmetric colour range, undeformed).

    The cameras are linked. ``labels`` are written above each view; default the case names
    (:func:`~vertebrafe.viz.convert.case_label`: ``Result.case`` or the ``case.json`` of a result folder).
    Other parameters (``title``: scalar bar title, ``through``, ``regions``) as in :func:`show_field`.
    """
    ga, gb = as_grid(a), as_grid(b)
    if labels is None:
        labels = (case_label(a, "A"), case_label(b, "B"))
        if labels[0] == labels[1]:
            labels = (f"{labels[0]} (A)", f"{labels[1]} (B)")
    groups = _groups([ga, gb], regions, clim)
    through = _shared_through((ga, gb), through, clip)
    sa, spec, assoc = field_grid(ga, field, scale, clip, origin=through)
    sb, _, _ = field_grid(gb, field, scale, clip, origin=through)
    ranges = group_ranges([ga, gb], spec, assoc, groups, clim)
    if screenshot is not None:
        off_screen = True
    cols = 3 if difference else 2
    if window_size is None:
        window_size = (800 * cols, 700)
    p = _new_plotter(None, off_screen, window_size, shape=(1, cols))
    for col, (shown, label) in enumerate(((sa, labels[0]), (sb, labels[1]))):
        p.subplot(0, col)
        _add_regions(p, shown, spec, assoc, groups, ranges, cmap, show_edges, True, title)
        p.add_text(str(label), position="upper_left", font_size=14)
        _set_camera(p, ga, clip if clip is not None else view, margin=0.2)
        if orientation:
            _orientation(p, clip if clip is not None else view)
    if difference:
        dgrid, dspec = globals()["difference"](ga, gb, field)
        dshown, _, _ = field_grid(dgrid, dspec.array, 0.0, clip, origin=through)
        dgroups = [(names, None) for names, _ in groups]
        dranges = group_ranges([dgrid], dspec, assoc, dgroups, symmetric=True)
        p.subplot(0, 2)
        _add_regions(p, dshown, dspec, assoc, dgroups, dranges, "coolwarm", show_edges, True,
                     f"{dspec.label} ({labels[1]} - {labels[0]}) [{dspec.unit}]", diverging=True)
        p.add_text(f"{labels[1]} - {labels[0]}", position="upper_left", font_size=14)
        _set_camera(p, ga, clip if clip is not None else view, margin=0.2)
        if orientation:
            _orientation(p, clip if clip is not None else view)
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
    ga, gb = as_grid(a), as_grid(b)
    _same_topology(ga, gb)
    spec, assoc = resolve_field(ga, field)
    resolve_field(gb, field)
    data_a = ga.cell_data if assoc == "cell" else ga.point_data
    data_b = gb.cell_data if assoc == "cell" else gb.point_data
    out = ga.copy()
    name = f"{spec.array} difference"
    target = out.cell_data if assoc == "cell" else out.point_data
    target[name] = np.asarray(data_b[spec.array], dtype=float) - np.asarray(data_a[spec.array], dtype=float)
    return mark_ready(out), Field(name, f"Δ {spec.label}", spec.unit)


def show_difference(a, b, field="von_mises", labels=None, scale=0.0, clip=None, clim=None,
                    cmap="coolwarm", view="oblique", show_edges=False, plotter=None, show=True,
                    screenshot=None, off_screen=None, window_size=(1024, 768), return_plotter=False,
                    through=None, orientation=True):
    """Show ``field(b) - field(a)`` on ``a``'s mesh with a symmetric diverging colour range.

    The scalar bar reads ``"Δ label (B - A) [unit]"`` with the given ``labels``; ``scale`` deforms by
    ``a``'s displacements (default 0: undeformed). Same topology required (see :func:`difference`).
    """
    if labels is None:
        labels = (case_label(a, "A"), case_label(b, "B"))
    grid, spec = difference(a, b, field)
    through = _shared_through((as_grid(a), as_grid(b)), through, clip)
    assoc = "cell" if spec.array in grid.cell_data else "point"
    if clim is None:
        clim = colour_range([np.asarray((grid.cell_data if assoc == "cell" else grid.point_data)[spec.array])],
                     symmetric=True)
    shown, _, _ = field_grid(grid, spec.array, scale, clip, origin=through)
    if screenshot is not None:
        off_screen = True
    p = _new_plotter(plotter, off_screen, window_size)
    title = f"{spec.label} ({labels[1]} - {labels[0]}) [{spec.unit}]"
    _add_field(p, shown, spec, assoc, clim, cmap, show_edges, True, title)
    _set_camera(p, grid, clip if clip is not None else view, margin=0.2)
    if orientation:
        _orientation(p, clip if clip is not None else view)
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

    Examples (need off-screen rendering)::

        viz.screenshot(seg, "segment.png", color_by="level", explode_distance=8)
        viz.screenshot(sol, "vm.png", field="von_mises", clip="sagittal", scale=20)
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    p = _plotter_for(obj, field, other, kind, window_size, opts)
    try:
        with atomic_path(path) as tmp:
            p.screenshot(tmp)
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

