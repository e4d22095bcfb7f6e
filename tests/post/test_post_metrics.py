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


def test_weighted_quantile_of_a_known_density():
    """Values x on [0, 1] at the midpoints of n equal bins, each weighted by x: the density 2x, whose
    distribution function is x^2, so the q-quantile is sqrt(q) (p95 0.97468); by cell count it would be q.
    The midpoint rule puts the cumulative weight of bin i at its midpoint to O(1 / n^2)."""
    n = 2000
    x = (np.arange(n) + 0.5) / n
    for q in (0.05, 0.5, 0.95):
        assert M.weighted_quantile(x, x, q) == pytest.approx(np.sqrt(q), abs=1e-5)
        assert M.weighted_quantile(x, np.ones(n), q) == pytest.approx(q, abs=1e-5)


E_CUT = {"cement": 3000.0, "mixed_cement": 200.0, "mixed_rim": 400.0}


def treated_column():
    """The column with a treated core. Whole cell columns (4 cells of 2 x 2 x 5 = 20 mm^3) share a modulus,
    so the strain is uniform (0.5 %) and each cell's von Mises stress is its own E x strain: core column 0
    pure PMMA (tag cement, f_c = 1, E 3000), column 1 a quarter cement (tag cancellous, f_c = 0.25, E 200),
    column 2 40 % compacted rim (tag cancellous, f_r = 0.4, E 400), the other core columns pure
    cancellous (E 100). Returns the segment, the three treated columns' cells and the solution."""
    seg, shell = column()
    mesh = seg.mesh
    xy = np.round(mesh.cell_centers()[:, :2], 6)
    cols = np.unique(xy[~shell], axis=0)[:3]
    core = [np.flatnonzero((xy == c).all(axis=1)) for c in cols]
    reg = np.where(shell, 1, 3)
    reg[core[0]] = 4
    mesh.set_cell_data("region", reg, names={1: "cortex", 3: "cancellous", 4: "cement", 5: "compacted_bone"})
    fc, fr, E = np.zeros(mesh.n_cells), np.zeros(mesh.n_cells), np.where(shell, E_SHELL, E_CORE)
    fc[core[0]], fc[core[1]], fr[core[2]] = 1.0, 0.25, 0.4
    for c, e in zip(core, (E_CUT["cement"], E_CUT["mixed_cement"], E_CUT["mixed_rim"])):
        E[c] = e
    mesh.set_cell_data("cement_fraction", fc)
    mesh.set_cell_data("compacted_fraction", fr)
    seg.elasticity = np.stack([isotropic(e, NU) for e in E])
    model = vf.Model(mesh, C=seg.elasticity)
    model.fix(mesh.node_sets["zmin"], "z")
    model.fix([mesh.node_sets["zmin"][0]], "xy")
    model.fix(np.flatnonzero((mesh.points[:, 1] == 0) & (mesh.points[:, 2] == 0) & (mesh.points[:, 0] == 10)), "y")
    model.prescribe(mesh.node_sets["zmax"], "z", -DELTA)
    return seg, core, model.solve(solver="direct")


def test_tissue_statistics_weigh_each_phase_by_its_volume():
    """Cut cells count in each tissue with the volume of that tissue they hold (closed forms: sums of
    80 mm^3 cell columns times fractions; stresses E x strain), not whole under their tag."""
    seg, core, sol = treated_column()
    eps = DELTA / H
    np.testing.assert_allclose(sol.von_mises[core[0]], 3000 * eps, rtol=1e-9)      # the strain is uniform
    rows = {(r, m): v for lv, r, m, v, u in M.region_rows(seg, sol)}
    n_pure = 9 - 3                                                  # pure cancellous core columns
    assert rows[("cement", "volume")] == pytest.approx(80.0 * (1.0 + 0.25))
    assert rows[("compacted_bone", "volume")] == pytest.approx(80.0 * 0.4)    # no cell is tagged with it
    assert rows[("cancellous", "volume")] == pytest.approx(80.0 * (n_pure + 0.75 + 0.6))
    assert rows[("bone", "volume")] == pytest.approx(2000.0 - 100.0)
    assert sum(rows[(t, "volume")] for t in ("cortex", "cancellous", "cement", "compacted_bone")) == \
        pytest.approx(rows[("body", "volume")]) == pytest.approx(2000.0)
    # cement: 80 mm^3 at 3000 eps and 20 mm^3 at 200 eps (by tag: 80 mm^3 at 3000 eps only)
    assert rows[("cement", "von_mises_mean")] == pytest.approx((80 * 3000 + 20 * 200) / 100 * eps, rel=1e-9)
    assert rows[("cement", "von_mises_median")] == pytest.approx(3000 * eps, rel=1e-9)
    assert rows[("compacted_bone", "von_mises_max")] == pytest.approx(400 * eps, rel=1e-9)
    # cancellous: 80 n_pure mm^3 at 100 eps and the host phases of the cut columns, 4 x 15 and 4 x 12 mm^3
    # at 200 and 400 eps (V = 588 mm^3); the top 5 % (29.4 mm^3) lie in the rim column's host bone, the
    # 95 % point (558.6 mm^3) between the midpoints of its two top cells (558 and 570 mm^3)
    V = 80.0 * n_pure + 60.0 + 48.0
    assert rows[("cancellous", "von_mises_mean")] == pytest.approx((80 * n_pure * 100 + 60 * 200 + 48 * 400) / V * eps,
                                                                   rel=1e-9)
    assert rows[("cancellous", "von_mises_max")] == pytest.approx(400 * eps, rel=1e-9)
    assert rows[("cancellous", "von_mises_p95")] == pytest.approx(400 * eps, rel=1e-9)
    assert rows[("cancellous", "von_mises_median")] == pytest.approx(100 * eps, rel=1e-9)
    # reference volumes are whole cells, as before
    assert rows[("body", "von_mises_max")] == pytest.approx(E_SHELL * eps, rel=1e-9)


def test_tissue_volumes_of_uncut_cells_are_the_cell_volumes(solved):
    """No cement or rim fraction: one entry per cell, its tag and its volume, so an untreated vertebra's
    statistics are the volume-weighted ones of its tags."""
    seg, shell, sol = solved
    cells, codes, w = M.tissue_volumes(seg.mesh, sol.cell_volume)
    np.testing.assert_array_equal(cells, np.arange(seg.mesh.n_cells))
    np.testing.assert_array_equal(codes, seg.mesh.cell_data["region"])
    np.testing.assert_array_equal(w, sol.cell_volume)


def test_cement_tissue_that_cannot_be_told_is_an_error():
    seg, core, _ = treated_column()
    mesh = seg.mesh
    fc = np.asarray(mesh.cell_data["cement_fraction"]).copy()
    fc[core[0]] = 0.3                                               # no cell is half cement any more
    mesh.set_cell_data("cement_fraction", fc)
    mesh.set_cell_data("region", np.asarray(mesh.cell_data["region"]),
                       names={1: "cortex", 3: "cancellous", 4: "cement", 5: "compacted_bone", 6: "cement_bone"})
    with pytest.raises(InputError, match="cement tissue cannot be told"):
        M.tissue_volumes(mesh, np.full(mesh.n_cells, 20.0))


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
