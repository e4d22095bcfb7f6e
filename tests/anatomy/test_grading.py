"""In-plane grading of the segment mesh toward given curves (vertebrafe.anatomy.grading)."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.anatomy import GradedCurve
from vertebrafe.anatomy.grading import corner_quality, grade_points, grading_curves
from vertebrafe.anatomy.levels import level_dimensions
from vertebrafe.anatomy.vertebra import VertebraGeometry, concavity_profile, cross_section_topology
from vertebrafe.errors import InputError, MeshError

#: Balloon contact-face edges of the BKP of T12-L2 (restoration 0.5, 4.8 mL; contact_face_grading on the
#: 2 mm mesh, rounded): L1's local frame, mm.
FACES = [dict(centre=(7.66, 5.14), axes=(3.40, 4.26), angle=15.0),
         dict(centre=(-7.66, 5.14), axes=(3.40, 4.26), angle=-15.0)]


def _curves(factor=0.5, width=1.5, reach=4.0):
    return tuple(GradedCurve(**f, factor=factor, width=width, reach=reach) for f in FACES)


def test_grading_map_reaches_the_requested_size_and_keeps_the_count():
    """Along a ray the graded spacing next to the curve is ``factor`` times the ungraded one; the map is
    monotone (one-to-one), fixes every point from ``s_out`` on, and takes exactly as many nodes from the
    rest of the zone as the band gains (int psi = s_out)."""
    for factor, width in ((0.5, 1.5), (0.4, 1.5), (0.6, 2.0)):
        c = GradedCurve(centre=(1.0, -2.0), axes=(3.0, 5.0), angle=30.0, factor=factor, width=width, reach=4.0)
        s = np.linspace(0.0, c.s_out, 20001)
        psi = c.density(s)
        assert psi.min() > 1.0 / 4.0 and c.density(1.0) == pytest.approx(1.0 / factor, rel=1e-12)
        assert np.trapezoid(psi, s) == pytest.approx(c.s_out, rel=1e-6)
        # points along a ray in the ellipse's frame at uniform (computational) spacing
        t = np.radians(c.angle)
        u = np.array([np.cos(0.4) * 3.0, np.sin(0.4) * 5.0])                       # s = 1 at unit ray length
        lam = np.linspace(0.0, 1.2 * c.s_out, 60001)
        R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        pts = np.asarray(c.centre) + (lam[:, None] * u) @ R.T
        out = c.apply(pts)
        s_out = np.hypot(*c.local_frame(out).T)
        assert np.all(np.diff(s_out) > 0.0)                                        # monotone along the ray
        ds = np.diff(s_out) / np.diff(lam)                                         # graded / ungraded spacing
        k = np.argmin(np.abs(0.5 * (s_out[1:] + s_out[:-1]) - 1.0))
        assert ds[k] == pytest.approx(factor, rel=2e-3)
        far = lam >= c.s_out
        np.testing.assert_array_equal(out[far], pts[far])
        # the points stay on their ray (radial map)
        v = (out - c.centre) @ R
        np.testing.assert_allclose(v[1:, 1] / v[1:, 0], u[1] / u[0], rtol=1e-9)


@pytest.fixture(scope="module")
def meshes():
    kw = dict(bmd=80.0, element_size=3.0, posterior=False)
    return vf.segment("T12-L2", **kw), vf.segment("T12-L2", grading=_curves(), **kw)


def test_graded_segment_is_valid_and_local(meshes):
    """Same cells; no inverted cell; nodes outside the zones (every cortical and outline node among them)
    bit for bit those of the uniform mesh, the others moved by the map; the cells next to the curves
    smaller across them; vertebral volumes equal within the faceting error of the concave endplates."""
    plain, graded = meshes
    np.testing.assert_array_equal(plain.mesh.cells, graded.mesh.cells)
    for name in ("region", "level"):
        np.testing.assert_array_equal(plain.mesh.cell_data[name], graded.mesh.cell_data[name])
    assert graded.grading == _curves() and plain.grading == ()
    q = graded.mesh.check_inverted()
    assert q.scaled_jacobian.min() > 0.0
    moved = np.any(plain.mesh.points != graded.mesh.points, axis=1)
    assert moved.any()
    n2 = plain.counts.n_nodes
    rings = cross_section_topology(plain.counts)["ring_nodes"]
    outer = np.concatenate(rings[plain.counts.n_transition + plain.counts.n_annulus:])
    assert not moved.reshape(-1, n2)[:, outer].any()
    # L1's superior cross-section: moved nodes only within the zones, in L1's local frame
    R, o = graded.frames["L1"]
    sup = graded.node_sets["L1:superior"]
    loc = (plain.mesh.points[sup] - o) @ R
    inside = np.zeros(sup.size, dtype=bool)
    for c in graded.grading:
        inside |= c.moves(loc[:, :2])
    assert not moved[sup][~inside].any() and moved[sup][inside].any()
    # the mesh's in-plane positions are the map of the uniform ones (whose spacing the first test checks)
    gl = (graded.mesh.points[sup] - o) @ R
    np.testing.assert_allclose(gl[:, :2], grade_points(loc[:, :2], graded.grading), atol=1e-9)
    # cross-section edges crossing the curve are shorter across it (3 mm cells span the 1.5 mm band: the
    # mean of the factor over an edge, between the factor and 1)
    c = graded.grading[0]
    edges = np.unique(np.sort(np.concatenate([cross_section_topology(plain.counts)["quads"][:, [i, (i + 1) % 4]]
                                              for i in range(4)]), axis=1), axis=0)
    s0 = np.hypot(*c.local_frame(loc[:, :2]).T)
    s1 = np.hypot(*c.local_frame(gl[:, :2]).T)
    cross = (s1[edges].min(axis=1) < 1.0) & (s1[edges].max(axis=1) > 1.0)
    ratio = np.abs(np.diff(s1[edges[cross]], axis=1)) / np.abs(np.diff(s0[edges[cross]], axis=1))
    radial = np.abs(np.diff(s0[edges[cross]], axis=1)).ravel() > 0.05
    assert c.factor < np.median(ratio.ravel()[radial]) < 0.8
    # volumes: both meshes facet the same concave endplates; differ by at most the faceting error
    vp, vg = plain.mesh.cell_volumes(), graded.mesh.cell_volumes()
    for v in ("T12", "L1", "L2"):
        d = level_dimensions(v)
        geo = VertebraGeometry.from_dimensions(d)
        x = np.linspace(0.0, 1.0, 2001)
        curv = np.max(np.abs(np.gradient(np.gradient(concavity_profile(x), x), x)))   # per rho^2
        r_min = 0.5 * min(geo.superior.depth, geo.inferior.depth)
        h_max = graded.element_size * 4.0                                              # cells grow <= 4x
        area = geo.superior.area() + geo.inferior.area()
        bound = (h_max ** 2 / 8.0) * max(d.superior_concavity, d.inferior_concavity) * curv / r_min ** 2 * area
        sel = graded.mesh.cells_in("level", v)
        assert abs(vg[sel].sum() - vp[sel].sum()) < bound
        assert abs(vg[sel].sum() / vp[sel].sum() - 1.0) < 1e-3


def test_grading_bad_input():
    with pytest.raises(InputError, match="factor"):
        GradedCurve(centre=(0, 0), axes=(3, 4), factor=0.1)
    with pytest.raises(InputError, match="axes"):
        GradedCurve(centre=(0, 0), axes=(3, -4))
    with pytest.raises(InputError, match="width"):
        GradedCurve(centre=(0, 0), axes=(3, 4), width=5.0)
    with pytest.raises(InputError, match="times their size"):
        GradedCurve(centre=(0, 0), axes=(3, 4), factor=0.2, width=2.5, reach=3.0)
    with pytest.raises(InputError, match="refined band"):
        grading_curves([dict(centre=(3, 0), axes=(3, 4)), dict(centre=(-3, 0), axes=(3, 4))])
    with pytest.raises(InputError, match="reaches the cortex"):
        vf.segment("L1", element_size=4.0, grading=GradedCurve(centre=(19.0, 0.0), axes=(3, 4), reach=4.0))
    with pytest.raises(MeshError, match="no longer convex"):
        vf.segment("T12-L2", element_size=4.0, posterior=False, grading=_curves(0.4, 2.0, 4.0))
    with pytest.raises(InputError, match="grading"):
        vf.segment("L1", element_size=4.0, grading=[1, 2])


def test_corner_quality_closed_form():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert corner_quality(square, np.array([[0, 1, 2, 3]]))[0] == pytest.approx(1.0)
    rhombus = np.array([[0.0, 0.0], [1.0, 0.0], [1.5, np.sqrt(3) / 2], [0.5, np.sqrt(3) / 2]])
    assert corner_quality(rhombus, np.array([[0, 1, 2, 3]]))[0] == pytest.approx(np.sin(np.pi / 3))
    dart = np.array([[0.0, 0.0], [2.0, 0.0], [0.5, 0.5], [0.0, 2.0]])
    assert corner_quality(dart, np.array([[0, 1, 2, 3]]))[0] < 0.0
