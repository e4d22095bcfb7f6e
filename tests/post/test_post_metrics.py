"""Metrics against closed forms: a two-material column under uniform axial strain."""
from types import SimpleNamespace

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.elasticity import isotropic
from vertebrafe.errors import InputError
from vertebrafe.loads import Load
from vertebrafe.post import metrics as M
from vertebrafe.post import strength as S

E_SHELL, E_CORE, NU = 10000.0, 100.0, 0.3
H, DELTA = 20.0, 0.1          # mm: column height and imposed shortening (strain 0.5 %)


def column():
    """10 x 10 x 20 mm column, 5 x 5 x 4 cells: the outer ring of cells is 'cortex', the core
    'cancellous'; one level 'V' with endplate sets at z = 0 and z = 20; a fake Segment."""
    mesh = vf.box((10.0, 10.0, H), (5, 5, 4))
    c = mesh.cell_centers()
    shell = (np.abs(c[:, 0] - 5) > 3.5) | (np.abs(c[:, 1] - 5) > 3.5)
    mesh.set_cell_data("region", np.where(shell, 1, 3), names={1: "cortex", 3: "cancellous"})
    mesh.set_cell_data("level", np.ones(mesh.n_cells, dtype=np.int64), names={1: "V"})
    for side, name in (("zmin", "inferior"), ("zmax", "superior")):
        mesh.add_node_set(f"V:{name}", mesh.node_sets[side])
        mesh.add_face_set(f"V:{name}", mesh.face_sets[side])
        mesh.add_node_set(f"segment:{name}", mesh.node_sets[side])
        mesh.add_face_set(f"segment:{name}", mesh.face_sets[side])
    C = np.where(shell[:, None, None], isotropic(E_SHELL, NU), isotropic(E_CORE, NU))
    seg = SimpleNamespace(mesh=mesh, levels=("V",), discs=(), names=("V",), elasticity=C, materials=None,
                          frames={"V": (np.eye(3), np.zeros(3))})
    return seg, shell


@pytest.fixture(scope="module")
def solved():
    """Uniform strain: z fixed at the bottom, z = -DELTA on top, rigid-body modes removed, sides free."""
    seg, shell = column()
    mesh = seg.mesh
    model = vf.Model(mesh, C=seg.elasticity)
    model.fix(mesh.node_sets["zmin"], "z")
    corner = mesh.node_sets["zmin"][0]                      # (0, 0, 0)
    model.fix([corner], "xy")
    xnode = np.flatnonzero((mesh.points[:, 1] == 0) & (mesh.points[:, 2] == 0) & (mesh.points[:, 0] == 10))
    model.fix(xnode, "y")
    model.prescribe(mesh.node_sets["zmax"], "z", -DELTA)
    sol = model.solve(solver="direct")
    return seg, shell, sol


def test_weighted_quantile_matches_numpy_for_equal_weights():
    rng = np.random.default_rng(3)
    x = rng.normal(size=101)
    for q in (0.05, 0.5, 0.95):
        assert M.weighted_quantile(x, np.ones_like(x), q) == pytest.approx(np.percentile(x, 100 * q, method="hazen"))


def test_weighted_quantile_midpoint_rule():
    x = np.array([3.0, 1.0, 2.0])
    w = np.array([1.0, 1.0, 2.0])
    # sorted 1, 2, 3 at cumulative midpoints 0.125, 0.5, 0.875
    assert M.weighted_quantile(x, w, 0.5) == pytest.approx(2.0)
    assert M.weighted_quantile(x, w, 0.2) == pytest.approx(1.0 + (0.2 - 0.125) / 0.375)
    assert M.weighted_quantile(x, w, 0.01) == 1.0 and M.weighted_quantile(x, w, 0.99) == 3.0
    assert M.weighted_mean(x, w) == pytest.approx(2.0)
    # a huge cell dominates the median
    assert M.weighted_quantile([0.0, 10.0], [1.0, 99.0], 0.5) == pytest.approx(9.9)


def test_height_change_and_endplate_deflection_are_exact(solved):
    seg, _, sol = solved
    h, dh = M.vertebra_geometry(seg, "V", sol.displacement)
    assert h == pytest.approx(H) and dh == pytest.approx(-DELTA, rel=1e-9)
    for which in ("superior", "inferior"):
        assert M.endplate_deflection(seg, sol.displacement, "V", which) == pytest.approx(0.0, abs=1e-10)


def test_endplate_deflection_sign():
    """Centre pushed down (into the body) relative to the rim of the superior endplate -> positive."""
    seg, _ = column()
    mesh = seg.mesh
    u = np.zeros((mesh.n_points, 3))
    top = mesh.node_sets["zmax"]
    r = np.hypot(mesh.points[top, 0] - 5, mesh.points[top, 1] - 5)
    u[top, 2] = -0.01 * (1 - r / r.max())                        # 0.01 mm dip at the centre
    d = M.endplate_deflection(seg, u, "V", "superior")
    assert 0.003 < d < 0.01


def test_cortical_share_is_the_stiffness_share(solved):
    seg, shell, sol = solved
    A = np.bincount(shell[:25].astype(int), minlength=2) * 4.0   # one cell layer: areas (core, shell) mm^2
    expected = E_SHELL * A[1] / (E_SHELL * A[1] + E_CORE * A[0])
    assert M.cortical_share(seg, sol, "V") == pytest.approx(expected, rel=1e-9)
    # the same with the layer-stack path of segment meshes (25 cells per layer, 4 layers: the two middle)
    stacked = SimpleNamespace(**{**vars(seg), "counts": SimpleNamespace(n_cells=25)})
    cross, h = M.mid_height_layers(stacked, "V", np.array([0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(np.unique(cross // 25), [1, 2])
    np.testing.assert_allclose(h, H / 4)
    assert M.cortical_share(stacked, sol, "V") == pytest.approx(expected, rel=1e-9)


def test_region_rows_and_yield_fractions(solved):
    seg, shell, sol = solved
    eps = DELTA / H                                     # 0.5 % compression, 0.15 % lateral tension
    rows = {(lv, r, m): v for lv, r, m, v, u in M.region_rows(seg, sol, yield_compression=0.004,
                                                              yield_tension=0.01)}
    assert rows[("V", "cortex", "volume")] == pytest.approx(shell.sum() * 20.0)   # 2 x 2 x 5 mm cells
    assert rows[("V", "bone", "volume")] == pytest.approx(2000.0)
    assert rows[("V", "cancellous", "von_mises_max")] == pytest.approx(E_CORE * eps, rel=1e-9)
    assert rows[("V", "cortex", "min_principal_stress_p05")] == pytest.approx(-E_SHELL * eps, rel=1e-9)
    assert rows[("V", "cortex", "max_principal_strain_p95")] == pytest.approx(NU * eps, rel=1e-9)
    assert rows[("V", "cancellous", "strain_energy_density_mean")] == pytest.approx(0.5 * E_CORE * eps ** 2, rel=1e-9)
    assert rows[("V", "bone", "yield_fraction_compression")] == pytest.approx(1.0)
    assert rows[("V", "bone", "yield_fraction_tension")] == 0.0
    rows = {(lv, r, m): v for lv, r, m, v, u in M.region_rows(seg, sol, yield_compression=0.006,
                                                              yield_tension=0.001)}
    assert rows[("V", "bone", "yield_fraction_compression")] == 0.0
    assert rows[("V", "bone", "yield_fraction_tension")] == pytest.approx(1.0)
    assert rows[("V", "bone", "yield_fraction")] == pytest.approx(1.0)


def test_yield_scale_and_strength_rows(solved):
    seg, shell, sol = solved
    eps = DELTA / H
    F = 1234.0                                    # any compression: the scale is what matters
    rows = {m: v for lv, r, m, v, u in S.strength_rows(seg, sol, Load(compression=F), fraction=0.02,
                                                       yield_compression=0.0077, yield_tension=0.007)}
    lam = min(0.0077 / eps, 0.007 / (NU * eps))
    assert rows["load_scale_yield"] == pytest.approx(lam, rel=1e-9)
    assert rows["strength_yield"] == pytest.approx(lam * F, rel=1e-9)
    assert rows["overload_index_yield"] == pytest.approx(1 / lam, rel=1e-9)
    assert rows["overload_index_apparent"] == pytest.approx(eps / 0.002, rel=1e-9)
    assert rows["strength_apparent"] == pytest.approx(0.002 / eps * F, rel=1e-9)


def test_yield_scale_picks_the_fraction():
    r = np.array([4.0, 3.0, 2.0, 1.0])
    v = np.array([1.0, 1.0, 1.0, 97.0])
    assert S.yield_scale(r, v, 0.01) == pytest.approx(1 / 4)
    assert S.yield_scale(r, v, 0.02) == pytest.approx(1 / 3)
    assert S.yield_scale(r, v, 0.025) == pytest.approx(1 / 2)
    assert S.yield_scale(np.zeros(3), np.ones(3), 0.02) == np.inf
    assert M.strain_ratio(np.array([[0.002, 0.0, -0.0077]]), 0.0077, 0.007)[0] == pytest.approx(1.0)


def test_height_change_ignores_rigid_tilt_and_measures_stretch():
    """A fractured (wedge-shaped) vertebra that only tilts does not change height; a uniform stretch
    s of all coordinates changes it by s * H exactly."""
    seg = vf.fracture(vf.segment(["L1", "L2"], element_size=6.0), "L1", kind="wedge", grade=2)
    x = seg.mesh.points
    theta = np.array([0.01, -0.004, 0.002])                          # rad, small rotation
    for level in seg.levels:
        H, dh = M.vertebra_geometry(seg, level, np.cross(theta, x - x.mean(axis=0)))
        assert abs(dh) < 1e-12 * H
        H, dh = M.vertebra_geometry(seg, level, 1e-3 * x)
        assert dh == pytest.approx(1e-3 * H, rel=1e-12)


def test_central_mean_averages_the_region_and_converges():
    """Mean of a paraboloid dip over the central ellipse (30 % of the half-extents) of a 20 x 12 mm face:
    exact 1 - 0.3^2 / 2 = 0.955 (mean of 1 - rho^2 over rho <= 0.3). The FE field is bilinear per face,
    so coarse faces cut the peak; the error falls steadily with the face size (no jumps from faces
    entering or leaving the region). A linear field's mean is its value at the centre."""
    err = []
    for n in (5, 9, 17, 33):
        mesh = vf.box((20.0, 12.0, 2.0), (n, n, 1))
        faces, p = mesh.face_sets["zmax"], mesh.points
        rho2 = ((p[:, 0] - 10.0) / 10.0) ** 2 + ((p[:, 1] - 6.0) / 6.0) ** 2
        err.append(abs(M.central_mean(p, faces, 1.0 - rho2, np.eye(3), np.zeros(3)) - 0.955))
        linear = M.central_mean(p, faces, 3.0 + 0.2 * p[:, 0] - 0.1 * p[:, 1], np.eye(3), np.zeros(3))
        assert linear == pytest.approx(3.0 + 2.0 - 0.6, abs=0.01)
    assert all(b < a for a, b in zip(err, err[1:])) and err[-1] < 0.005
    with pytest.raises(InputError, match="radius"):
        M.central_mean(p, faces, 1.0 - rho2, np.eye(3), np.zeros(3), radius=0.0)
    # a region smaller than one sample spacing falls back to the sample nearest the centre
    tiny = M.central_mean(p, faces, 1.0 - rho2, np.eye(3), np.zeros(3), radius=1e-6)
    assert tiny == pytest.approx(1.0, abs=0.01)
