"""Vertebroplasty with a pillowed bolus surface (``surface="pillowed"``, vertebrafe.clinical.pillowed): the
volume, the mesh, the fields, the metrics over the appended cells, the convergence of the composite's stress
and the bad input."""
import warnings

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, vertebroplasty
from vertebrafe.errors import InputError, MeshError, ResolutionWarning
from vertebrafe.plausibility import check_resolution
from vertebrafe.post.metrics import body_cells, core_cells, weighted_quantile
from vertebrafe.post.plate import plate_test
from vertebrafe.post.strength import vertebra_alone

# one bolus clear of the cortex, the endplates and the vertical extent (docs/validation.md, "A pillowed
# bolus on the treated vertebra's mesh")
FREE = dict(volume=1.25, approach="unipedicular", vertical_extent=1.0, offset=(0.0, 0.0, -1.0))


@pytest.fixture(scope="module")
def fractured():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {h: fracture(vf.segment(["T12", "L1", "L2"], bmd=80, element_size=h), "L1", grade=2)
                for h in (3.0, 2.0)}


@pytest.fixture(scope="module")
def pillowed(fractured, kept_unchanged):
    made = {h: vertebroplasty(f, "L1", surface="pillowed", **FREE) for h, f in fractured.items()}
    checks = [kept_unchanged(s) for s in made.values()]
    yield made
    for check in checks:
        check()


def _composite(seg):
    """L1 between plates (0.2 % travel): the cement cells' volume-mean axial stress and the 95th percentile of
    their von Mises stress (MPa)."""
    sub, C, H = vertebra_alone(seg, "L1")
    test = plate_test(sub, C, sub.node_sets["L1:inferior"], sub.node_sets["L1:superior"], 0.002 * H,
                      solver="direct")
    sol = test.solution
    k = np.flatnonzero(np.asarray(sub.cell_data["cement_fraction"]) >= 1.0)
    w = sol.cell_volume[k]
    s = sol.cell_stress[k]
    return float(w @ s[:, 2] / w.sum()), float(weighted_quantile(sol.von_mises[k], w, 0.95))


def test_pillowed_bolus_is_whole_cells_of_the_requested_volume(fractured, pillowed):
    """The cement is whole cells (fraction 0 or 1) of the composite, their volume the request to 0.1 %; the
    mesh has no tangled cell (every corner's scaled Jacobian > 0: before corners were checked, 17 / 9 cells at
    3 / 2 mm went down to -0.63 / -0.27, positive at every Gauss point); the appended cells and nodes are recorded; the vertebra's body keeps its
    volume (the layers fill the space between the moved cells exactly) and the layered stack its count."""
    for h, seg in pillowed.items():
        f = fractured[h]
        mesh = seg.mesh
        r = seg.history[-1].results
        frac = np.asarray(mesh.cell_data["cement_fraction"])
        assert set(np.unique(frac)) == {0.0, 1.0}
        vol = mesh.cell_volumes()
        assert abs(vol[frac == 1].sum() / 1250.0 - 1.0) < 1e-3 and abs(r["volume_error"]) < 1e-3
        assert vol.min() > 0 and r["min_scaled_jacobian"] > 0 and mesh.quality().scaled_jacobian.min() > 0
        assert mesh.n_cells == f.mesh.n_cells + r["appended_cells"] and r["appended_cells"] > 0
        assert mesh.n_points == f.mesh.n_points + r["appended_nodes"]
        assert seg.stack_cells == f.stack_cells and seg.stack_points == f.stack_points
        names = mesh.tag_names["region"]
        assert {names[int(c)] for c in np.unique(mesh.cell_data["region"][frac == 1])} == {"cement_bone"}
        body_new = vol[body_cells(seg, "L1")].sum()
        body_old = f.mesh.cell_volumes()[body_cells(f, "L1")].sum()
        assert body_new == pytest.approx(body_old, rel=1e-9)
        layered = np.asarray(mesh.cell_data["layered_cell"])
        core = core_cells(seg, "L1")
        assert np.array_equal(np.unique(layered[core]), np.sort(core_cells(f, "L1")))


def test_pillowed_composite_stress_converges(pillowed):
    """The composite's mean axial stress and von Mises p95 in L1 between plates change by < 2.5 % from 3 to
    2 mm (the first-order share of the acceptance's 5 % per halving; measured -1.7 / -1.3 %, and within
    1.2 % from 2 to 1 mm, docs/validation.md "The pillowed bolus in vertebroplasty"); the fitted surface of the
    same bolus moves the mean axial stress by -6.8 % from 3 to 2 mm, so the guard can fail."""
    a3, p3 = _composite(pillowed[3.0])
    a2, p2 = _composite(pillowed[2.0])
    assert a3 < 0 and a2 < 0
    assert abs(a2 / a3 - 1.0) < 0.025, (a3, a2)
    assert abs(p2 / p3 - 1.0) < 0.025, (p3, p2)


def test_simulate_reports_the_appended_cells_and_warns_below_8_cells(pillowed):
    """The body rows of a pillowed level sum its appended cells too (the body's volume is the vertebra's), the
    composite has its rows; at 3 mm the bolus is about 6 cells across and the ResolutionWarning names the
    pillowed surface, at 2 mm (8 or more cells across) there is none."""
    assert pillowed[2.0].history[-1].results["bolus_cells_across"] >= 8.0
    assert check_resolution(pillowed[2.0]) == []
    seg = pillowed[3.0]
    with pytest.warns(ResolutionWarning, match="pillowed surface") as record:
        res = vf.simulate(seg, "relaxed_standing")
    assert all("< 8" in str(w.message) for w in record if w.category is ResolutionWarning)
    m = res.metrics
    rows = m[(m["level"] == "L1") & (m["region"] == "body") & (m["metric"] == "volume")]
    assert len(rows) == 1
    assert float(rows["value"].iloc[0]) == pytest.approx(seg.mesh.cell_volumes()[body_cells(seg, "L1")].sum(),
                                                         rel=1e-9)
    comp = m[(m["level"] == "L1") & (m["region"] == "cement_bone") & (m["metric"] == "von_mises_mean")]
    assert len(comp) == 1 and float(comp["value"].iloc[0]) > 0


def test_pillowed_bolus_cut_by_the_vertical_extent(fractured):
    """A bipedicular 2.5 mL bolus is cut by the default vertical extent (the central 70 % of the height, here
    its upper plane): its surface nodes lie within the extent along their columns, many of them on the plane
    (57 of 716), and the cement is whole cells of the requested volume."""
    from vertebrafe.clinical._common import column_fraction, level_nodes

    f = fractured[2.0]
    seg = vertebroplasty(f, "L1", surface="pillowed", volume=2.5)
    assert seg.history[-1].results["bolus_count"] == 2
    mesh = seg.mesh
    cement = np.asarray(mesh.cell_data["cement_fraction"]) == 1.0
    vol = mesh.cell_volumes()
    assert abs(vol[cement].sum() / 2500.0 - 1.0) < 1e-3
    surface = np.intersect1d(np.unique(mesh.cells[cement]), np.unique(mesh.cells[~cement]))
    nodes = level_nodes(seg, "L1")
    assert surface.max() < f.mesh.n_points                         # the surface is on the layered nodes
    z = column_fraction(mesh.points, surface, nodes.inferior, nodes.superior, nodes.n2)
    c = 0.5 * (1.0 - 0.7)
    assert z.min() >= c - 1e-6 and z.max() <= 1.0 - c + 1e-6
    on_planes = np.isclose(z, c, atol=1e-6) | np.isclose(z, 1.0 - c, atol=1e-6)
    assert on_planes.sum() > 20 and (~on_planes).sum() > 20


def test_a_fracture_below_moves_the_pillowed_bolus_rigidly(pillowed):
    """A fracture of L2 after L1's pillowed bolus: L1 and everything above move as a rigid body, the appended
    nodes with them (they belong to L1), so no cell inverts and every L1 cell keeps its volume (1e-9)."""
    seg = pillowed[3.0]
    out = fracture(seg, "L2", grade=2)
    assert out.mesh.quality().min_jacobian.min() > 0
    l1 = body_cells(seg, "L1")
    np.testing.assert_allclose(out.mesh.cell_volumes()[l1], seg.mesh.cell_volumes()[l1], rtol=1e-9)
    r = seg.history[-1].results
    appended = np.arange(seg.mesh.n_points - r["appended_nodes"], seg.mesh.n_points)
    assert np.abs(out.mesh.points[appended] - seg.mesh.points[appended]).max() > 1.0      # they did move


def test_bridged_pillowed_boluses_join(fractured):
    """``bridge``: the two boluses' smooth union; bridged over 8 mm the 2.5 mL bipedicular bolus is one piece
    (without a bridge two: the test above), of the requested volume, no cell inverted."""
    f = fractured[2.0]
    one = vertebroplasty(f, "L1", surface="pillowed", volume=2.5, bridge=8.0)
    r = one.history[-1].results
    assert r["bolus_count"] == 1 and abs(r["volume_error"]) < 1e-3
    assert one.mesh.quality().min_jacobian.min() > 0            # (unbridged: two, the test above)


@pytest.mark.parametrize("h", [3.0, 2.0])
def test_bridged_pair_the_bridge_leaves_apart_is_not_joined_by_the_mesh(fractured, h):
    """The 3 mL pair 4 mm posterior bridged at 4 mm: 4.0-4.1 mm apart at its scale, wider than the bridge, so two
    boluses a septum of bone 0.6-1.1 mm thin apart (the union's waist is empty on the midline). At 2 mm its cells
    were one connected set, a cement neck of 12 cells across the septum that the bolus does not have, and the
    composite's von Mises rows moved -4.7 / -7.1 / -13.7 % to 1.5 mm, where it is two (docs/validation.md,
    "Today's benchmark on these boluses"); now refused at 3 and 2 mm, naming the gap. Bridged at 4.5 mm the
    pair is one bolus with a neck 3.1-3.9 mm across (3 to 1 mm), accepted, its waist recorded."""
    pair = dict(volume=3.0, vertical_extent=1.0, offset=(0.0, -4.0, -1.0))
    with pytest.raises(InputError, match=r"leaves the two cement boluses of L1 apart \(their gap, 4\.0\d mm, is "
                                         r"wider than the bridge;.* make 1 connected set\(s\), not 2: the mesh "
                                         r"would join them"):
        vertebroplasty(fractured[h], "L1", surface="pillowed", bridge=4.0, **pair)
    if h == 3.0:
        r = vertebroplasty(fractured[h], "L1", surface="pillowed", bridge=4.5, **pair).history[-1].results
        assert r["bolus_count"] == 1 and 3.0 < r["bridge_neck_mm"] < 4.5 and 4.0 < r["bolus_gap_mm"] < 4.5
        fitted = vertebroplasty(fractured[h], "L1", bridge=4.0, **pair).history[-1].results
        assert fitted["bridge_neck_mm"] == 0.0 and fitted["bolus_gap_mm"] > 4.0


def test_fitted_pair_whose_cells_touch_across_the_septum_is_named(fractured):
    """The default bipedicular 4 mL bolus (fitted surface) in this L1 at 3 mm: its two ellipsoids are 1.9 mm apart
    (docs/validation.md: 1.9 / 2.5 / 2.4 mm at 3 / 2 / 1.5 mm), but its cement cells share nodes across the
    bone between them (one connected set; two from 1.5 mm): the level's resolution note says so, with the gap.
    2 mL (5.5 mm apart, two sets) and 6 mL (overlapping, one piece) are not named; a unipedicular bolus
    records no gap."""
    four = vertebroplasty(fractured[3.0], "L1", volume=4.0)
    r = four.history[-1].results
    assert r["bolus_count"] == 1 and r["bridge_neck_mm"] == 0.0 and 1.7 < r["bolus_gap_mm"] < 2.1
    assert r["bolus_pieces"] == 2
    (m,) = check_resolution(four)
    assert m.startswith("mesh resolution: L1's narrowest cement bolus") and "stresses are not mesh-converged" in m
    assert f"L1's two cement boluses are {r['bolus_gap_mm']:.1f} mm apart, but their cells at element size 3 mm " \
           "make one connected set" in m
    for volume, count, gap in ((2.0, 2, (5.0, 6.0)), (6.0, 1, (-1.0, 0.0))):
        seg = vertebroplasty(fractured[3.0], "L1", volume=volume)
        r = seg.history[-1].results
        assert r["bolus_count"] == count and gap[0] < r["bolus_gap_mm"] < gap[1]
        assert all("connected set" not in m for m in check_resolution(seg))
    uni = vertebroplasty(fractured[3.0], "L1", volume=2.0, approach="unipedicular").history[-1].results
    assert "bolus_gap_mm" not in uni and "bridge_neck_mm" not in uni and "bolus_pieces" not in uni


def test_bridged_neck_the_mesh_would_cut_is_refused():
    """The other way round: a bridge that joins the pair (a neck on the midline) with cells in two sets (a neck
    thinner than the staircase resolves) is refused, naming the neck; as many sets as pieces pass."""
    from vertebrafe.clinical.augment import bolus_geometry, bridge_blend
    from vertebrafe.clinical.pillowed import _check_bridged_pieces

    c, R, a = bolus_geometry("bipedicular", 42.0, 32.0, 20.0, 10.0)
    k = bridge_blend(6.0, R, a)
    with pytest.raises(InputError, match=r"joins the two cement boluses of L1 by a neck \d+\.\d\d mm across.* make 2 "
                                         r"connected set\(s\), not 1: the mesh would cut the bolus apart"):
        _check_bridged_pieces([0, 1], c, R, a, 1.0, k, "L1", 2.0)
    _check_bridged_pieces([0], c, R, a, 1.0, k, "L1", 2.0)
    _check_bridged_pieces([0, 1], c, R, a, 0.5, k, "L1", 2.0)           # smaller: two pieces


def test_pillowed_bolus_in_a_biconcave_fracture_has_no_tangled_cell():
    """A bipedicular 1.5 mL bolus in a biconcave grade-2 L1 at 2 mm (vBMD 80): before corners were checked, 16
    cells had a corner's scaled Jacobian <= 0 (down to -1.00) with every Gauss point positive; untangled, none."""
    f = fracture(vf.segment(["T12", "L1", "L2"], bmd=80, element_size=2.0), "L1", kind="biconcave", grade=2)
    seg = vertebroplasty(f, "L1", surface="pillowed", volume=1.5)
    q = seg.mesh.quality()
    assert q.scaled_jacobian.min() > 0 and q.min_jacobian.min() > 0
    assert seg.history[-1].results["min_scaled_jacobian"] == pytest.approx(q.scaled_jacobian.min())


def test_pillowed_cells_left_tangled_raise_a_mesh_error(fractured, monkeypatch):
    """Cells the untangling leaves tangled are refused with a MeshError that names the level, the count and the
    remedy (the untangling made to leave three)."""
    import vertebrafe.clinical.pillowed as pillowed_module

    monkeypatch.setattr(pillowed_module, "untangle", lambda p, cells, free: (p, 3))
    with pytest.raises(MeshError, match=r"L1 leaves 3 tangled cells .*surface='fitted' or a finer mesh"):
        vertebroplasty(fractured[3.0], "L1", surface="pillowed", **FREE)


@pytest.mark.parametrize("kwargs, match", [
    (dict(volume=6.0, vertical_extent=1.0), "clear of the cortex"),
    (dict(volume=4.0), "clear of the cortex"),                   # the default bolus reaches the anterior cortex
    (dict(volume=1.0, interface="layer"), "interface"),
])
def test_pillowed_bad_input(fractured, kwargs, match):
    with pytest.raises(InputError, match=match):
        vertebroplasty(fractured[2.0], "L1", surface="pillowed", **kwargs)


def test_closest_point_on_an_ellipsoid_at_its_degenerate_root():
    """Inside, on the principal plane of the smallest semi-axis near the centre, the root of the closest point
    sits at its bound (t = -a_min^2): the closest points are (p_1, p_2, +-a_min sqrt(1 - ...)), not the point
    pushed along the plane. Semi-axes (1, 2, 3), turned: at the centre (0, 0, 0) -> (+-1, 0, 0), distance 1; at
    (0, 1, 0) -> (+-sqrt(5) / 3, 4 / 3, 0), distance sqrt(6) / 3; off the plane as before."""
    from vertebrafe.clinical.pillowed import closest_on_ellipsoid

    a, c = np.array([1.0, 2.0, 3.0]), np.array([4.0, -1.0, 2.0])
    t = np.radians(35.0)
    R = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    y = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.5], [0.3, 0.5, 0.2]])
    p = (closest_on_ellipsoid(c + y @ R.T, c, R, a) - c) @ R
    np.testing.assert_allclose(np.sum((p / a) ** 2, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(p[0]), [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(np.abs(p[1]), [np.sqrt(5.0) / 3.0, 4.0 / 3.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(p[2], [0.0, 0.0, 3.0], atol=1e-9)
    # off the plane: the bisection's root, the closest point among dense samples of the surface
    u, v = np.meshgrid(np.linspace(0, np.pi, 361), np.linspace(0, 2 * np.pi, 721))
    s = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], axis=-1).reshape(-1, 3) * a
    assert np.linalg.norm(p[3] - y[3]) <= np.linalg.norm(s - y[3], axis=1).min() + 1e-9
