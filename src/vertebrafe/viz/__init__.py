"""PyVista views of meshes, segments and results (optional extra ``viz``: ``pip install vertebrafe[viz]``).

Everything here converts to a :class:`pyvista.UnstructuredGrid` first (:func:`to_pyvista`) and draws
that grid, so a :class:`~vertebrafe.Mesh`, a :class:`~vertebrafe.Segment`, a
:class:`~vertebrafe.Solution`, a result of :func:`vertebrafe.simulate` (anything with a ``.solution``),
a pyvista data set, the path of a ``.vtu`` file written by ``save`` or a result folder written by
``Result.save`` / ``vertebrafe run`` can be passed to every function; comparisons are labelled with the
case names. Every view has an orientation marker (R, A, S: the patient's right, anterior, superior) and
its anatomical name; ``view=`` takes ``anterior``, ``posterior``, ``lateral`` (= ``right``), ``left``,
``superior``, ``inferior``, ``oblique``; ``clip=`` a plane and ``through=`` where it passes (``"cement"``:
parasagittal through a bipedicular bolus, a level name, a point); ``regions=`` colours chosen regions
with their own range (a dict ``{region: (lo, hi) or None}``: a range, colour map and scalar bar each).

Examples (windows and pictures need a display or off-screen rendering, so they are not doctests;
``tests/test_viz.py`` renders them)::

    import vertebrafe as vf
    from vertebrafe import viz
    seg = vf.segment("T12-L2", bmd=80.0)
    viz.show_segment(seg, color_by="region", shell="translucent")
    viz.show_segment(seg, color_by="level", explode=8.0)
    viz.show_field(sol, "von_mises", scale=20.0, clip="sagittal")
    viz.screenshot(sol, "vm.png", field="von_mises", clip="coronal")
    viz.show_comparison(vp, bkp, "von_mises", labels=("VP", "BKP"))
    viz.show_difference(vp, bkp, "von_mises")
    viz.show_field("out/vp", "von_mises", clip="sagittal", through="cement")
    viz.show_field(res, "von_mises", regions="cancellous", view="anterior")
    viz.show_field(res, "von_mises", regions={"cancellous": None, "cortex": None})
    viz.show_comparison("out/nsm", "out/vp", "von_mises", difference=True)
    viz.export_html("out/vp", "vp.html", field="von_mises")

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

from .command import VIEW_HELP, configure_view, run_view
from .convert import (FIELDS, NODESET_PREFIX, TAGNAME_PREFIX, Field, case_label, clip, deformed, field_values,
                      result_path, tag_names, through_point, to_pyvista)
from .figures import report_figures
from .offscreen import offscreen_available, offscreen_backend
from .share import export_html
from .views import (PALETTE, REGION_COLORS, SHELL_REGIONS, VIEWS, difference, explode, field_grid,
                    nonbackground_fraction, render, screenshot, show_comparison, show_difference, show_field,
                    show_segment)


__all__ = ["FIELDS", "Field", "VIEWS", "to_pyvista", "tag_names", "explode", "deformed", "clip", "through_point",
           "result_path", "case_label", "export_html", "field_grid",
           "difference", "show_segment", "show_field", "show_comparison", "show_difference",
           "render", "screenshot", "nonbackground_fraction", "offscreen_backend", "offscreen_available",
           "report_figures", "configure_view", "run_view", "VIEW_HELP"]
