"""PyVista layer: conversion with named tags and unit-named fields, off-screen images, comparison,
difference and the ``view`` subcommand. Tiny models only (a box of 48 cells, a segment at 8 mm)."""
import argparse

import numpy as np
import pytest

pv = pytest.importorskip("pyvista")


def _offscreen_works():
    """Off-screen rendering checked in a child process: without an EGL or OSMesa driver VTK may abort
    the process instead of raising. Debian/Ubuntu: apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri
    (or libosmesa6)."""
    import subprocess
    import sys

    code = "from vertebrafe import viz; print(viz.offscreen_backend())"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return proc.returncode == 0 and "RenderWindow" in proc.stdout, (proc.stderr or proc.stdout)[-300:]


_RENDERS, _WHY = _offscreen_works()
rendering = pytest.mark.skipif(not _RENDERS, reason="off-screen rendering unavailable (install an EGL or OSMesa "
                               f"driver: libegl1 libegl-mesa0 libgl1-mesa-dri, or libosmesa6): {_WHY}")

import vertebrafe as vf  # noqa: E402
from vertebrafe import viz  # noqa: E402
from vertebrafe.errors import InputError  # noqa: E402

SIZE = (240, 180)          # small windows keep the rendering fast
MIN_FILL = 0.03            # a drawn model covers well over 3 % of the image


def _box_solution(force=-50.0, soft_top=False):
    mesh = vf.box(lengths=(10.0, 8.0, 20.0), shape=(3, 2, 8), origin=(-5.0, -4.0, 0.0))
    z = mesh.cell_centers()[:, 2]
    mesh.set_cell_data("region", np.where(z > 10.0, 2, 1), names={1: "cancellous", 2: "cortex"})
    mesh.set_cell_data("level", np.where(z > 10.0, 1, 2), names={1: "L1", 2: "L2"})
    E = np.where(z > 10.0, 50.0 if soft_top else 500.0, 500.0)
    model = vf.Model(mesh, E=E, nu=0.3)
    pts = mesh.points
    model.fix(np.flatnonzero(np.isclose(pts[:, 2], 0.0)), "xyz")
    top = np.flatnonzero(np.isclose(pts[:, 2], 20.0))
    model.add_force(top, np.array([0.2 * abs(force), 0.0, force]) / top.size)
    return model.solve(solver="direct")


@pytest.fixture(scope="module")
def sol():
    return _box_solution()


@pytest.fixture(scope="module")
def sol_soft():
    return _box_solution(soft_top=True)


@pytest.fixture(scope="module")
def seg():
    return vf.segment(["L1", "L2"], bmd=100.0, element_size=8.0)


def _fill(img):
    return viz.nonbackground_fraction(img)


def _differ(a, b):
    return float(np.mean(np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 8))


# ------------------------------------------------------------------------------------ conversion
def test_grid_of_segment_has_tags_with_names(seg):
    g = viz.to_pyvista(seg)
    assert isinstance(g, pv.UnstructuredGrid)
    assert g.n_cells == seg.mesh.n_cells and g.n_points == seg.mesh.n_points
    np.testing.assert_array_equal(g.cell_data["region"], seg.mesh.cell_data["region"])
    assert viz.tag_names(g, "region") == seg.mesh.tag_names["region"]
    assert viz.tag_names(g, "level") == seg.mesh.tag_names["level"]
    names = seg.mesh.tag_names["region"]
    expected = np.array([names[int(c)] for c in seg.mesh.cell_data["region"]])
    np.testing.assert_array_equal(np.asarray(g.cell_data["region_name"]), expected)
    assert "modulus" in g.cell_data
    assert "nodeset:segment:superior" in g.point_data


def test_grid_of_solution_has_fields_with_units(sol):
    g = viz.to_pyvista(sol)
    np.testing.assert_allclose(g.point_data["displacement_mm"], sol.displacement)
    np.testing.assert_allclose(g.point_data["displacement_magnitude_mm"], np.linalg.norm(sol.displacement, axis=1))
    np.testing.assert_allclose(g.cell_data["von_mises_MPa"], sol.von_mises)
    np.testing.assert_allclose(g.cell_data["max_principal_stress_MPa"], sol.principal_stresses[:, 0])
    np.testing.assert_allclose(g.cell_data["min_principal_strain"], sol.principal_strains[:, 2])
    np.testing.assert_allclose(g.cell_data["strain_energy_density_mJ_per_mm3"], sol.strain_energy_density)
    np.testing.assert_allclose(g.cell_data["hydrostatic_pressure_MPa"], -sol.cell_stress[:, :3].mean(axis=1))
    values, spec = viz.field_values(sol, "von_mises")
    assert spec.unit == "MPa" and spec.title == "von Mises stress [MPa]"
    np.testing.assert_allclose(values, sol.von_mises)


def test_vtu_files_read_back(tmp_path, seg, sol):
    seg.save(tmp_path / "seg.vtu")
    g = viz.to_pyvista(tmp_path / "seg.vtu")
    assert viz.tag_names(g, "region") == seg.mesh.tag_names["region"]
    assert "region_name" in g.cell_data
    sol.save(str(tmp_path / "sol.vtu"))
    g = viz.to_pyvista(str(tmp_path / "sol.vtu"))
    np.testing.assert_allclose(g.cell_data["min_principal_stress_MPa"], sol.principal_stresses[:, 2])
    with pytest.raises(InputError, match="does not exist"):
        viz.to_pyvista(tmp_path / "missing.vtu")


def test_deformed_clip_and_explode(sol, seg):
    g = viz.to_pyvista(sol)
    d = viz.deformed(g, scale=10.0)
    np.testing.assert_allclose(d.points, g.points + 10.0 * sol.displacement)
    auto = viz.deformed(g, scale="auto")
    umax = np.linalg.norm(auto.points - g.points, axis=1).max()
    assert umax == pytest.approx(0.05 * g.length, rel=1e-9)
    # mid-sagittal (normal x) through the centre x = 0 keeps the left half; coronal keeps posterior
    left = viz.clip(g, "sagittal")
    assert left.bounds[1] <= 1e-9 and left.bounds[0] == pytest.approx(-5.0)
    post = viz.clip(g, "coronal", cut="cells")
    assert post.bounds[3] <= 1e-9 and post.n_cells == g.n_cells // 2
    with pytest.raises(InputError, match="clip"):
        viz.field_grid(g, "von_mises", clip="transverse")
    # exploded levels: L1 (cranial) moves up by the distance along the spine axis, L2 stays
    sg = viz.to_pyvista(seg)
    ex = viz.explode(sg, distance=12.0)
    assert ex.n_cells == sg.n_cells
    names = viz.tag_names(sg, "level")
    code = {v: k for k, v in names.items()}
    zc = lambda grid, name: np.asarray(grid.cell_centers().points)[np.asarray(grid.cell_data["level"]) == code[name]].mean(0)  # noqa: E731
    assert np.allclose(zc(ex, "L2"), zc(sg, "L2"))
    assert np.linalg.norm(zc(ex, "L1-L2") - zc(sg, "L1-L2")) == pytest.approx(12.0)
    assert np.linalg.norm(zc(ex, "L1") - zc(sg, "L1")) == pytest.approx(24.0)
    assert zc(ex, "L1")[2] - zc(sg, "L1")[2] > 20.0


# ------------------------------------------------------------------------------------ images
@rendering
def test_offscreen_backend():
    assert "RenderWindow" in viz.offscreen_backend()


@rendering
def test_segment_images_not_blank_and_respond_to_options(seg):
    region = viz.render(seg, window_size=SIZE)
    assert region.shape == (SIZE[1], SIZE[0], 3)
    assert _fill(region) > MIN_FILL
    hidden = viz.render(seg, shell="hidden", legend=False, window_size=SIZE)
    translucent = viz.render(seg, shell="translucent", legend=False, window_size=SIZE)
    assert _fill(hidden) > MIN_FILL
    assert _differ(hidden, translucent) > 0.01
    level = viz.render(seg, color_by="level", explode_distance=10.0, window_size=SIZE)
    assert _fill(level) > MIN_FILL and _differ(level, region) > 0.05
    cut = viz.render(seg, clip="sagittal", window_size=SIZE)
    assert _fill(cut) > MIN_FILL
    with pytest.raises(InputError, match="shell"):
        viz.render(seg, shell="glass")
    with pytest.raises(InputError, match="color_by"):
        viz.render(seg, color_by="material")


@rendering
def test_field_images_not_blank_and_differ_with_the_field(sol, sol_soft):
    vm = viz.render(sol, field="von_mises", scale=20.0, window_size=SIZE)
    assert _fill(vm) > MIN_FILL
    u = viz.render(sol, field="displacement", scale=20.0, window_size=SIZE)
    assert _fill(u) > MIN_FILL
    assert _differ(vm, u) > 0.02                  # different field, same shape
    soft = viz.render(sol_soft, field="von_mises", scale=20.0, window_size=SIZE)
    assert _differ(vm, soft) > 0.02               # same field, different result
    cut = viz.render(sol, field="min_principal_stress", clip="sagittal", scale=0.0, window_size=SIZE)
    assert _fill(cut) > MIN_FILL
    with pytest.raises(InputError, match="available"):
        viz.render(sol, field="cement_fraction")


@rendering
def test_comparison_shares_the_colour_range(sol, sol_soft):
    p = viz.show_comparison(sol, sol_soft, "von_mises", labels=("stiff", "soft"), off_screen=True,
                            window_size=(2 * SIZE[0], SIZE[1]), return_plotter=True)
    try:
        ranges = [tuple(r.actors[name].mapper.scalar_range) for r in p.renderers for name in r.actors
                  if hasattr(r.actors[name], "mapper") and getattr(r.actors[name].mapper, "scalar_range", None)
                  is not None and getattr(r.actors[name].mapper, "dataset", None) is not None]
        lo = min(sol.von_mises.min(), sol_soft.von_mises.min())
        hi = max(sol.von_mises.max(), sol_soft.von_mises.max())
        assert len(ranges) == 2
        for r in ranges:
            assert r == pytest.approx((lo, hi))
        img = p.screenshot(None, return_img=True)
    finally:
        p.close()
    assert _fill(img) > MIN_FILL


@rendering
def test_difference_values_and_topology_check(sol, sol_soft, seg):
    grid, spec = viz.difference(sol, sol_soft, "von_mises")
    np.testing.assert_allclose(grid.cell_data[spec.array], sol_soft.von_mises - sol.von_mises)
    assert spec.unit == "MPa"
    img = viz.render(sol, other=sol_soft, kind="difference", field="von_mises", window_size=SIZE)
    assert _fill(img) > MIN_FILL
    with pytest.raises(InputError, match="same mesh topology"):
        viz.difference(sol, seg, "modulus")
    other = vf.box(lengths=(10.0, 8.0, 20.0), shape=(2, 3, 8))     # same counts, other connectivity
    other.set_cell_data("modulus", np.ones(other.n_cells))
    g = viz.to_pyvista(sol)
    g.cell_data["modulus"] = np.ones(g.n_cells)
    with pytest.raises(InputError, match="connectivity"):
        viz.difference(g, other, "modulus")


def test_interactive_window_without_display_is_a_clear_error(monkeypatch, sol):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(viz.offscreen.sys, "platform", "linux")
    with pytest.raises(InputError, match="screenshot"):
        viz.show_field(sol, "von_mises", off_screen=False, window_size=SIZE)


@rendering
def test_screenshot_writes_png(tmp_path, sol):
    path = viz.screenshot(sol, tmp_path / "vm.png", field="von_mises", clip="coronal", window_size=SIZE)
    assert path.exists()
    img = np.asarray(pv.read(str(path)).point_data.active_scalars)
    assert img.size > 0


# ------------------------------------------------------------------------------------ CLI
def _view_parser():
    parser = argparse.ArgumentParser(prog="vertebrafe view")
    viz.configure_view(parser)
    return parser


def _png_fill(path):
    from PIL import Image

    return viz.nonbackground_fraction(np.asarray(Image.open(path).convert("RGB")))


@rendering
def test_view_subcommand_screenshots(tmp_path, sol, sol_soft, capsys):
    a, b = tmp_path / "a.vtu", tmp_path / "b.vtu"
    sol.save(str(a))
    sol_soft.save(str(b))
    out = tmp_path / "view.png"
    args = _view_parser().parse_args([str(a), "--field", "von_mises", "--clip", "sagittal",
                                      "--screenshot", str(out), "--window-size", "240", "180"])
    assert viz.run_view(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert _png_fill(out) > MIN_FILL
    tags = tmp_path / "tags.png"
    assert viz.run_view(_view_parser().parse_args([str(a), "--screenshot", str(tags), "--window-size",
                                                   "240", "180"])) == 0
    assert _png_fill(tags) > MIN_FILL
    both = tmp_path / "both.png"
    assert viz.run_view(_view_parser().parse_args([str(a), "--compare", str(b), "--field", "displacement",
                                                   "--screenshot", str(both)])) == 0
    assert _png_fill(both) > MIN_FILL
    with pytest.raises(InputError, match="--field"):
        viz.run_view(_view_parser().parse_args([str(a), "--compare", str(b)]))


@rendering
def test_view_through_the_command_line(tmp_path, sol, capsys):
    from vertebrafe import cli

    if "view" not in cli.SUBCOMMANDS:
        pytest.skip("the view subcommand is not registered in vertebrafe.cli yet")
    a = tmp_path / "a.vtu"
    sol.save(str(a))
    out = tmp_path / "cli.png"
    assert cli.main(["view", str(a), "--field", "displacement", "--screenshot", str(out),
                     "--window-size", "240", "180"]) == 0
    assert _png_fill(out) > MIN_FILL
    assert cli.main(["view", str(tmp_path / "nothing.vtu"), "--screenshot", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err


@rendering
def test_view_colour_range_option(tmp_path, sol, capsys):
    """--clim changes the picture and rejects an empty or inverted range."""
    from vertebrafe import cli

    a = tmp_path / "a.vtu"
    sol.save(str(a))
    full, narrow = tmp_path / "full.png", tmp_path / "narrow.png"
    base = ["view", str(a), "--field", "von_mises", "--window-size", "240", "180", "--screenshot"]
    assert cli.main(base + [str(full)]) == 0
    hi = float(np.percentile(sol.von_mises, 50))
    assert cli.main(base + [str(narrow), "--clim", "0", f"{hi}"]) == 0
    from PIL import Image

    assert not np.array_equal(np.asarray(Image.open(full)), np.asarray(Image.open(narrow)))
    assert cli.main(base + [str(narrow), "--clim", "2", "1"]) == 1
    assert "--clim 2 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ researcher's views
@pytest.fixture(scope="module")
def vp_folders(tmp_path_factory):
    """An L1 wedge fracture and its bipedicular vertebroplasty (6 mm), saved as result folders."""
    from vertebrafe.simulate import simulate
    seg = vf.segment(["L1", "L2"], bmd=80.0, element_size=6.0)
    frac = vf.fracture(seg, "L1", kind="wedge", grade=2)
    vp = vf.vertebroplasty(frac, "L1")
    d = tmp_path_factory.mktemp("results")
    # the views read the VTU files and the case records, no plate strength
    simulate(frac, "relaxed_standing", case="fracture", factor_of_risk=False).save(d / "frac")
    simulate(vp, "relaxed_standing", case="VP bipedicular", factor_of_risk=False).save(d / "vp")
    return d / "frac", d / "vp"


def _texts(plotter):
    out = []
    for r in plotter.renderers:
        for a in r.actors.values():
            if hasattr(a, "GetInput") and isinstance(a.GetInput(), str):
                out.append(a.GetInput())
            elif hasattr(a, "GetText"):
                out += [a.GetText(k) for k in range(8) if a.GetText(k)]
    return out


def test_result_folders_and_case_labels(vp_folders):
    frac, vp = vp_folders
    assert viz.result_path(vp).name == "result.vtu"
    assert viz.case_label(vp) == "VP bipedicular" and viz.case_label(vp / "result.vtu") == "VP bipedicular"
    g = viz.to_pyvista(vp)
    assert "cement_fraction" in g.cell_data and "von_mises_MPa" in g.cell_data


def test_clip_through_the_cement_cuts_the_bipedicular_bolus(vp_folders):
    """The mid-sagittal plane misses the off-midline boluses; the named clip passes through one."""
    g = viz.to_pyvista(vp_folders[1])
    cf = np.asarray(g.cell_data["cement_fraction"])
    bounds = np.array([g.get_cell(i).bounds for i in np.flatnonzero(cf > 0)])
    p = viz.through_point(g, "cement")
    cut = lambda x0: int(((bounds[:, 0] < x0) & (bounds[:, 1] > x0)).sum())   # noqa: E731
    assert abs(p[0]) > 4.0 and cut(p[0]) > 3 * max(cut(0.0), 1)
    assert viz.through_point(g, "cement:right")[0] > 0 > viz.through_point(g, "cement:left")[0]
    assert viz.through_point(g, "L2")[2] < viz.through_point(g, "L1")[2]
    with pytest.raises(InputError, match="no cement"):
        viz.through_point(vp_folders[0], "cement")
    with pytest.raises(InputError, match="levels"):
        viz.through_point(g, "T3")


@rendering
def test_compare_panels_labels_difference_and_orientation(vp_folders):
    frac, vp = vp_folders
    p = viz.show_comparison(frac, vp, "von_mises", clip="sagittal", through="cement", difference=True,
                            off_screen=True, window_size=(3 * SIZE[0], SIZE[1]), return_plotter=True)
    try:
        texts = _texts(p)
        img = np.asarray(p.screenshot(None, return_img=True))
        assert len(p.renderers) == 3
        assert all(r.axes_actor is not None for r in p.renderers)                   # orientation marker
    finally:
        p.close()
    assert "fracture" in texts and "VP bipedicular" in texts and "VP bipedicular - fracture" in texts
    assert "lateral view" in texts
    w = img.shape[1] // 3
    for k in range(3):                                                              # three drawn panels
        assert _fill(img[:, k * w:(k + 1) * w]) > MIN_FILL


@rendering
def test_anatomical_views_and_region_colour_range(vp_folders):
    vp = vp_folders[1]
    p = viz.show_field(vp, "von_mises", view="anterior", regions="cancellous", off_screen=True,
                       window_size=SIZE, return_plotter=True)
    try:
        pos, focal, _ = p.camera_position
        d = np.asarray(pos) - np.asarray(focal)
        assert d[1] > 0.99 * np.linalg.norm(d)                                      # in front (+y)
        ranges = [tuple(a.mapper.scalar_range) for a in p.renderer.actors.values()
                  if getattr(getattr(a, "mapper", None), "dataset", None) is not None
                  and a.mapper.scalar_visibility]
        assert "anterior view" in _texts(p)
    finally:
        p.close()
    g = viz.to_pyvista(vp)
    vm = np.asarray(g.cell_data["von_mises_MPa"])
    canc = np.isin(g.cell_data["region_name"], ["cancellous"])
    assert ranges == [pytest.approx((vm[canc].min(), vm[canc].max()))]
    assert vm[canc].max() < 0.7 * vm.max()                 # the cortex would have set a wider range
    with pytest.raises(InputError, match="regions"):
        viz.show_field(vp, "von_mises", regions="bone marrow", off_screen=True, window_size=SIZE, show=False)
    with pytest.raises(InputError, match="view"):
        viz.show_segment(vp, view="dorsal-ish", off_screen=True, window_size=SIZE, show=False)


@rendering
def test_each_region_its_own_colour_range_and_scalar_bar(vp_folders):
    """regions={...}: one colour range (the region's data range, or the one given), colour map and scalar bar
    per region, in one image and in each panel of a comparison."""
    frac, vp = vp_folders
    regions = {"cancellous": None, "cortex": None, "cement_bone": (0.0, 1.0)}
    p = viz.show_field(vp, "von_mises", clip="sagittal", through="cement", regions=regions, off_screen=True,
                       window_size=(2 * SIZE[0], SIZE[1]), return_plotter=True)
    try:
        bars = list(p.scalar_bars.keys())
        drawn = [(tuple(a.mapper.scalar_range), a.mapper.lookup_table.cmap.name) for a in p.renderer.actors.values()
                 if getattr(getattr(a, "mapper", None), "dataset", None) is not None and a.mapper.scalar_visibility]
        img = np.asarray(p.screenshot(None, return_img=True))
    finally:
        p.close()
    assert bars == [f"von Mises stress, {r} [MPa]" for r in regions]
    g = viz.to_pyvista(vp)
    vm, names = np.asarray(g.cell_data["von_mises_MPa"]), np.asarray(g.cell_data["region_name"])
    expected = [(vm[names == r].min(), vm[names == r].max()) for r in ("cancellous", "cortex")] + [(0.0, 1.0)]
    assert [r for r, _ in drawn] == [pytest.approx(e) for e in expected]
    assert len({cmap for _, cmap in drawn}) == 3 and _fill(img) > MIN_FILL
    p = viz.show_comparison(frac, vp, "von_mises", clip="sagittal", through="cement", difference=True,
                            regions={"cancellous": None, "cortex": None}, off_screen=True,
                            window_size=(3 * SIZE[0], SIZE[1]), return_plotter=True)
    try:
        img = np.asarray(p.screenshot(None, return_img=True))
        assert [len(r.actors) > 2 for r in p.renderers] == [True] * 3
    finally:
        p.close()
    w = img.shape[1] // 3
    assert all(_fill(img[:, k * w:(k + 1) * w]) > MIN_FILL for k in range(3))
    with pytest.raises(InputError, match="lo < hi"):
        viz.show_field(vp, "von_mises", regions={"cancellous": (2.0, 1.0)}, off_screen=True, show=False)
    with pytest.raises(InputError, match="each region's range"):
        viz.show_field(vp, "von_mises", regions={"cancellous": None}, clim=(0, 1), off_screen=True, show=False)


def test_interactive_html_for_sharing(vp_folders, tmp_path):
    pytest.importorskip("trame_vtk")
    import base64
    import io
    import json
    import re
    import zipfile
    path = viz.export_html(vp_folders[1], tmp_path / "vp.html", field="von_mises", clip="sagittal",
                           through="cement")
    text = path.read_text()
    assert "OfflineLocalView.load" in text and not re.search(r'<script[^>]+src="https?:', text)   # offline
    scene = zipfile.ZipFile(io.BytesIO(base64.b64decode(re.search(r'base64Str = "([^"]+)"', text).group(1))))
    index = json.loads(scene.read("index.json"))
    assert index["scene"][0]["mapper"]["colorByArrayName"] == "von_mises_MPa"
    assert "von_mises_MPa" in index["lookupTables"]
    each = viz.export_html(vp_folders[1], tmp_path / "each.html", field="von_mises",
                           regions={"cancellous": None, "cortex": (0.0, 5.0)})
    luts = json.loads(zipfile.ZipFile(io.BytesIO(base64.b64decode(re.search(
        r'base64Str = "([^"]+)"', each.read_text()).group(1)))).read("index.json"))["lookupTables"]
    assert sorted(luts) == ["von_mises_MPa cancellous", "von_mises_MPa cortex"]          # a range each
    tags = viz.export_html(vp_folders[1], tmp_path / "tags.html")
    assert len(json.loads(zipfile.ZipFile(io.BytesIO(base64.b64decode(re.search(
        r'base64Str = "([^"]+)"', tags.read_text()).group(1)))).read("index.json"))["scene"]) >= 5


@rendering
def test_view_command_with_folders_names_and_html(vp_folders, tmp_path, capsys):
    from vertebrafe import cli
    frac, vp = vp_folders
    out = tmp_path / "cmp.png"
    assert cli.main(["view", str(frac), "--compare", str(vp), "--field", "von_mises", "--clip", "sagittal",
                     "--through", "cement", "--with-difference", "--regions", "cancellous,cement_bone",
                     "--screenshot", str(out), "--window-size", "720", "180"]) == 0
    from PIL import Image
    assert Image.open(out).size == (720, 180) and _png_fill(out) > MIN_FILL
    assert cli.main(["view", str(vp), "--view", "superior", "--screenshot", str(tmp_path / "s.png"),
                     "--window-size", "240", "180"]) == 0
    for regions in (["--regions", "cancellous,cortex", "--each-region"], ["--regions", "cancellous=0:1,cortex"]):
        assert cli.main(["view", str(vp), "--field", "von_mises", *regions, "--screenshot", str(tmp_path / "r.png"),
                         "--window-size", "480", "180"]) == 0 and _png_fill(tmp_path / "r.png") > MIN_FILL
    assert cli.main(["view", str(vp), "--field", "von_mises", "--regions", "cancellous=1:x",
                     "--screenshot", str(tmp_path / "bad.png")]) == 1
    assert "NAME=LO:HI" in capsys.readouterr().err
    pytest.importorskip("trame_vtk")
    assert cli.main(["view", str(vp), "--field", "von_mises", "--html", str(tmp_path / "vp.html")]) == 0
    assert (tmp_path / "vp.html").stat().st_size > 100_000
