"""The AMG preconditioner on a spine segment: cortical shell, cancellous bone, endplates, a 4 MPa annulus and
a nearly incompressible nucleus in one system (stiffness contrast about 700)."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.fem import solvers
from vertebrafe.simulate import build_model


@pytest.fixture(scope="module")
def model():
    seg = vf.segment("T12-L2", bmd=100, element_size=5.0)
    return build_model(seg, vf.loads.preset("relaxed_standing"))[0]


def test_contrast_settings_cut_the_iterations_and_keep_the_solution(model, monkeypatch):
    """Coarse-level strength threshold 0.02 and two fine sweeps: measured 70 CG iterations against 128 with
    the default hierarchy; both solutions equal the direct one to the solver tolerance."""
    direct = model.solve(solver="direct", rtol=1e-10).displacement
    default = model.solve(solver="amg", rtol=1e-8)
    monkeypatch.setattr(solvers, "COARSE_THETA", 0.02)
    monkeypatch.setattr(solvers, "FINE_SWEEPS", 2)
    contrast = model.solve(solver="amg", rtol=1e-8)
    assert contrast.info["iterations"] <= 0.7 * default.info["iterations"]
    scale = np.abs(direct).max()
    for sol in (default, contrast):
        assert sol.info["residual"] <= 1e-8
        assert np.abs(sol.displacement - direct).max() <= 1e-6 * scale


def test_fine_sweeps_only_with_a_material_graph(monkeypatch):
    """With a material strength graph the finest level's smoother is FINE_SWEEPS sweeps of the plain one;
    without it (uniform material) it is left alone."""
    import pyamg
    monkeypatch.setattr(solvers, "FINE_SWEEPS", 3)
    A = pyamg.gallery.linear_elasticity((24, 24))[0].tobsr(blocksize=(2, 2))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    plain = solvers.amg_hierarchy(A).levels[0].presmoother
    graph = solvers.material_strength(A.indptr, A.indices, np.ones(A.shape[0] // 2))
    contrast = solvers.amg_hierarchy(A, strength=graph).levels[0].presmoother
    once, repeated, expected = (np.zeros_like(b) for _ in range(3))
    plain(A, once, b)
    contrast(A, repeated, b)
    for _ in range(3):
        plain(A, expected, b)
    assert not np.allclose(once, expected)
    np.testing.assert_allclose(repeated, expected, rtol=1e-12, atol=1e-14)
