"""Vertebral body: outline, O-grid, volumes against the parametric shape, thicknesses, quality."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from anatomy_analytic import hex_jacobians, vertebra_volumes
from vertebrafe.anatomy import (DEFAULT_CORTEX_THICKNESS, DEFAULT_ELEMENT_SIZE, DEFAULT_ENDPLATE_THICKNESS,
                                Outline, VertebraGeometry, level_dimensions, vertebra)
from vertebrafe.anatomy.vertebra import (GridCounts, concavity_profile, cross_section_points,
                                         cross_section_topology, grid_counts, nucleus_curve, polygon_area,
                                         vertebra_layers)
from vertebrafe.errors import InputError


@pytest.fixture(scope="module")
def l1():
    return vertebra("L1")


def test_outline_is_kidney_shaped_with_exact_width_and_depth():
    o = Outline(44.0, 32.5)
    assert o.radius(0.0) == pytest.approx(22.0) and o.radius(np.pi) == pytest.approx(22.0)
    assert o.radius(np.pi / 2) == pytest.approx(16.25)
    assert o.radius(1.5 * np.pi) == pytest.approx(16.25)            # midsagittal depth = D
    # posterior wall concave toward the canal: the midline lies anterior to points 8 mm lateral
    th = np.linspace(1.2 * np.pi, 1.8 * np.pi, 20001)
    p = o.points_at_theta(th)
    y8 = np.interp(8.0, p[:, 0], p[:, 1])
    assert y8 < -16.25 - 0.5
    # boundary parameter: symmetric, quarter points at the midlines and lateral points
    a = np.array([0.0, 0.5 * np.pi, np.pi, 1.5 * np.pi])
    np.testing.assert_allclose(o.points(a), [[22, 0], [0, 16.25], [-22, 0], [0, -16.25]], atol=1e-9)
    aa = np.linspace(0.1, 1.4, 7)
    np.testing.assert_allclose(o.points(np.pi - aa) * [-1, 1], o.points(aa), atol=1e-9)
    # star coordinate
    assert o.rho(o.points(aa) * 0.3) == pytest.approx(0.3)


def test_concavity_profile():
    assert concavity_profile(0.0) == 1.0
    assert concavity_profile(0.7) == pytest.approx(0.0)
    assert concavity_profile(0.9) == 0.0
    r = np.linspace(0, 1, 101)
    assert np.all(np.diff(concavity_profile(r)) <= 1e-15)


def test_o_grid_topology_has_no_collapsed_cells():
    c = GridCounts(m=8, n_transition=2, n_annulus=3, n_cortex=1)
    t = cross_section_topology(c)
    assert t["quads"].shape == (c.n_cells, 4)
    assert np.unique(t["quads"]).size == c.n_nodes
    assert all(len(set(q)) == 4 for q in t["quads"].tolist())      # no repeated node: no wedge cells
    xy = cross_section_points(Outline(44, 32.5), c)
    a, b, cc, d = (xy[t["quads"][:, i]] for i in range(4))
    area = 0.5 * ((cc - a)[:, 0] * (d - b)[:, 1] - (cc - a)[:, 1] * (d - b)[:, 0])
    assert np.all(area > 0)                                          # anticlockwise, non-degenerate
    assert area.sum() == pytest.approx(polygon_area(xy[t["ring_nodes"][-1]]), rel=1e-12)


@pytest.mark.parametrize("n_transition", [1, 3])
def test_coarsened_o_grid_has_a_conforming_3_to_1_ring(n_transition):
    c = GridCounts(m=12, n_transition=n_transition, n_annulus=2, n_cortex=1, coarsening=3)
    t = cross_section_topology(c)
    q = t["quads"]
    assert q.shape == (c.n_cells, 4) and np.unique(q).size == c.n_nodes
    assert all(len(set(x)) == 4 for x in q.tolist())
    assert t["block_ij"].shape == (5, 5)                             # m / 3 = 4 cells per side
    assert [r.size for r in t["ring_nodes"]] == list(c.ring_sizes)
    assert c.ring_sizes[n_transition - 1] == 16 and c.ring_sizes[n_transition] == 48
    # conforming: every interior edge is shared by exactly two quads, boundary edges = the outline
    e = np.sort(np.stack([q, np.roll(q, -1, axis=1)], axis=2).reshape(-1, 2), axis=1)
    _, cnt = np.unique(e, axis=0, return_counts=True)
    assert set(cnt.tolist()) <= {1, 2} and (cnt == 1).sum() == 4 * c.m
    xy = cross_section_points(Outline(44, 32.5), c)
    a, b, cc, d = (xy[q[:, i]] for i in range(4))
    area = 0.5 * ((cc - a)[:, 0] * (d - b)[:, 1] - (cc - a)[:, 1] * (d - b)[:, 0])
    assert np.all(area > 0)
    assert area.sum() == pytest.approx(polygon_area(xy[t["ring_nodes"][-1]]), rel=1e-12)
    # fewer cells than the uniform O-grid with the same outer resolution
    assert c.n_cells < GridCounts(m=12, n_transition=n_transition, n_annulus=2, n_cortex=1).n_cells
    with pytest.raises(InputError, match="multiple of 6"):
        GridCounts(m=8, n_transition=2, n_annulus=2, coarsening=3)


def test_default_cross_section_is_close_to_area_over_h_squared():
    geo = VertebraGeometry.from_dimensions(level_dimensions("L1"))
    h = DEFAULT_ELEMENT_SIZE
    c = grid_counts(h, [geo.superior, geo.inferior], 0.38)
    shell = 4 * c.m                                                  # one thin cortical ring
    ideal = geo.inferior.area() / h ** 2
    assert c.coarsening == 3
    assert (c.n_cells - shell) / ideal < 1.7
    uniform = grid_counts(h, [geo.superior, geo.inferior], 0.38, coarsening=1)
    assert c.n_cells < 0.75 * uniform.n_cells


def test_nucleus_curve_area_fraction_and_posterior_offset():
    o = Outline(45.8, 33.5)
    alpha = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    N, c = nucleus_curve(o, alpha, 0.4, 0.4, 0.025)
    assert polygon_area(N) / polygon_area(o.points(alpha)) == pytest.approx(0.4, rel=1e-3)
    from vertebrafe.anatomy.vertebra import _centroid
    shift = _centroid(N) - _centroid(o.points(alpha))
    assert shift[0] == pytest.approx(0.0, abs=1e-9)
    assert shift[1] == pytest.approx(-0.025 * 33.5, abs=1e-3)


def test_regions_tags_and_sets(l1):
    assert set(l1.names("region")) == {"cortex", "endplate", "cancellous"}
    assert l1.names("level") == ["L1"]
    for name in ("superior", "inferior"):
        assert name in l1.node_sets and name in l1.face_sets
    assert len(l1.face_sets["posterior_wall"]) > 0
    # superior faces point up, inferior down, posterior wall backward
    def normals(f):
        p = l1.points
        n = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 3]] - p[f[:, 0]])
        return n / np.linalg.norm(n, axis=1, keepdims=True)
    assert np.all(normals(l1.face_sets["superior"])[:, 2] > 0.9)
    assert np.all(normals(l1.face_sets["inferior"])[:, 2] < -0.9)
    assert np.mean(normals(l1.face_sets["posterior_wall"])[:, 1]) < -0.8
    # every boundary face is one of the named surfaces
    nb = len(l1.boundary_faces())
    assert nb == len(l1.face_sets["superior"]) + len(l1.face_sets["inferior"]) + len(l1.face_sets["lateral"])


@pytest.mark.parametrize("level", ["T12", "L1", "L5"])
def test_volumes_match_the_parametric_shape(level):
    m = vertebra(level)
    geo = VertebraGeometry.from_dimensions(level_dimensions(level))
    ref = vertebra_volumes(geo, DEFAULT_CORTEX_THICKNESS, DEFAULT_ENDPLATE_THICKNESS)
    vol = m.cell_volumes()
    assert vol.sum() == pytest.approx(ref["total"], rel=0.005)
    for region in ("cortex", "endplate", "cancellous"):
        assert vol[m.cells_in("region", region)].sum() == pytest.approx(ref[region], rel=0.02), region


def test_cortex_and_endplate_thickness_as_requested():
    t_c, t_e = 0.6, 0.5
    m = vertebra("L2", cortex_thickness=t_c, endplate_thickness=t_e)
    geo = VertebraGeometry.from_dimensions(level_dimensions("L2"))
    counts = grid_counts(DEFAULT_ELEMENT_SIZE, [geo.superior, geo.inferior], 0.4, t_c)
    topo = cross_section_topology(counts)
    n2 = counts.n_nodes
    layers = m.points.reshape(-1, n2, 3)
    # cortex: inner cortical ring at distance t_c from the outline, on both endplates
    for layer, outline in ((layers[0], geo.inferior), (layers[-1], geo.superior)):
        fine = outline.points(np.linspace(0, 2 * np.pi, 200000, endpoint=False))
        inner = layer[topo["ring_nodes"][-2], :2]
        dist, _ = cKDTree(fine).query(inner)
        np.testing.assert_allclose(dist, t_c, rtol=0.01)
    # endplate: first and last cell layers are t_e thick along z in every column
    np.testing.assert_allclose(layers[1, :, 2] - layers[0, :, 2], t_e, rtol=1e-9)
    np.testing.assert_allclose(layers[-1, :, 2] - layers[-2, :, 2], t_e, rtol=1e-9)
    # and they carry the endplate region (inside the cortex)
    q = len(topo["quads"])
    reg = m.cell_data["region"].reshape(-1, q)
    names = m.tag_names["region"]
    assert {names[int(v)] for v in reg[0]} == {"endplate", "cortex"}
    assert {names[int(v)] for v in reg[len(reg) // 2]} == {"cancellous", "cortex"}


def test_endplates_are_concave_with_the_requested_depth():
    d = level_dimensions("L3")
    m = vertebra("L3")
    sup = m.points[m.node_sets["superior"]]
    inf = m.points[m.node_sets["inferior"]]
    geo = VertebraGeometry.from_dimensions(d)
    # rim plane minus surface = dip; maximal at the centre = concavity depth
    dip_sup = geo.rim_z(sup[:, 1]) - sup[:, 2]
    assert dip_sup.max() == pytest.approx(d.superior_concavity, rel=0.02)
    assert inf[:, 2].max() == pytest.approx(d.inferior_concavity, rel=0.02)
    assert dip_sup.min() == pytest.approx(0.0, abs=1e-12) and inf[:, 2].min() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("level", ["T10", "L1", "L5"])
def test_quality_at_default_size(level):
    m = vertebra(level)
    det, scaled = hex_jacobians(m.points, m.cells)
    assert det.min() > 0
    assert scaled.min() >= 0.3
    q = m.quality()
    assert q.scaled_jacobian.min() == pytest.approx(scaled.min(), rel=1e-9)


def test_element_size_controls_resolution_and_errors():
    coarse, fine = vertebra("L1", element_size=3.0), vertebra("L1", element_size=1.5)
    assert fine.n_cells > 4 * coarse.n_cells
    assert fine.cell_volumes().sum() == pytest.approx(coarse.cell_volumes().sum(), rel=0.01)
    det, scaled = hex_jacobians(fine.points, fine.cells)
    assert det.min() > 0 and scaled.min() >= 0.3
    with pytest.raises(InputError, match="element_size"):
        vertebra("L1", element_size=0.0)
    with pytest.raises(InputError, match="endplate_thickness"):
        vertebra("L1", endplate_thickness=-1)
    with pytest.raises(InputError, match="cortex_thickness"):
        vertebra("L1", cortex_thickness=20)


def test_halving_the_element_size_below_1p5_mm_doubles_every_count():
    """2 -> 1 mm and 1.5 -> 0.75 mm are uniform refinements: the O-grid counts (ring cells, transition and
    annulus rings), the cancellous layers of the body and the disc layers all double exactly, while each
    count stays the nearest integer to length / h at its base size (T12-L2 rings: 18/24/36/48 cells per
    side at 2/1.5/1/0.75 mm; rounding 1 and 0.75 mm directly gave 36 and 42)."""
    from vertebrafe.anatomy.disc import disc_layer_count
    from vertebrafe.anatomy.resolution import cell_count, refinement

    geos = [VertebraGeometry.from_dimensions(level_dimensions(n)) for n in ("T12", "L1", "L2")]
    outlines = [o for g in geos for o in (g.superior, g.inferior)]
    counts = {h: grid_counts(h, outlines, 0.4) for h in (2.0, 1.5, 1.0, 0.75, 0.5)}
    assert [counts[h].m for h in (2.0, 1.5, 1.0, 0.75)] == [18, 24, 36, 48]
    for coarse, fine in ((2.0, 1.0), (1.5, 0.75), (1.0, 0.5)):
        a, b = counts[coarse], counts[fine]
        assert (b.m, b.n_transition, b.n_annulus) == (2 * a.m, 2 * a.n_transition, 2 * a.n_annulus)
        assert b.n_cortex == a.n_cortex == 1                              # the shell keeps its thickness
        assert disc_layer_count(level_dimensions("L1-L2"), fine) == 2 * disc_layer_count(level_dimensions("L1-L2"),
                                                                                          coarse)
    # at and above the base size the counts are rounded directly; below, 2**j times the base's
    assert refinement(1.5) == (1.5, 1) and refinement(0.75) == (1.5, 2) and refinement(0.6) == (2.4, 4)
    assert cell_count(10.0, 2.0) == 5 and cell_count(10.0, 0.9) == 2 * round(10.0 / 1.8)
    for h in (1.3, 1.0, 0.75, 0.55):
        n, f = cell_count(33.3, h), refinement(h)[1]
        assert abs(33.3 / n - h) <= 0.5 * h * f / n + 1e-12                  # within the base's rounding
    geo = VertebraGeometry.from_dimensions(level_dimensions("L1"))
    layers = {}
    for h in (1.5, 0.75):
        c = grid_counts(h, [geo.superior, geo.inferior], 0.4)
        layers[h] = len(vertebra_layers(geo, c, h)[1]) - 2                   # cancellous layers
    assert layers[0.75] == 2 * layers[1.5]
