"""The AMG preconditioner on a spine segment: cortical shell, cancellous bone, endplates, a 4 MPa annulus and
a nearly incompressible nucleus in one system (stiffness contrast about 700)."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.fem import multigrid, relaxation, solvers
from vertebrafe.simulate import build_model


@pytest.fixture(scope="module")
def model():
    seg = vf.segment("T12-L2", bmd=100, element_size=5.0, posterior=False)     # one linear system
    return build_model(seg, vf.loads.preset("relaxed_standing"))[0]


def test_contrast_settings_cut_the_iterations_and_keep_the_solution(model, monkeypatch):
    """The default hierarchy (coarse-level strength threshold 0.02, Chebyshev smoothing on the finest level):
    measured 55 CG iterations against 124 with theta 0 and one block Gauss-Seidel sweep;
    both solutions equal the direct one to the solver tolerance."""
    direct = model.solve(solver="direct", rtol=1e-10).displacement
    default = model.solve(solver="amg", rtol=1e-8)
    monkeypatch.setattr(solvers, "COARSE_THETA", 0.0)
    monkeypatch.setattr(solvers, "FINE_SMOOTHER", ("gauss_seidel", 1))
    previous = model.solve(solver="amg", rtol=1e-8)
    assert default.info["iterations"] <= 0.6 * previous.info["iterations"]
    scale = np.abs(direct).max()
    for sol in (default, previous):
        assert sol.info["residual"] <= 1e-8
        assert np.abs(sol.displacement - direct).max() <= 1e-6 * scale


def elasticity_with_a_graph(contrast):
    """A 2-D elasticity matrix and a material graph of two halves whose moduli differ by ``contrast``."""
    import pyamg
    A = pyamg.gallery.linear_elasticity((40, 40))[0].tobsr(blocksize=(2, 2))
    modulus = np.where(np.arange(A.shape[0] // 2) < A.shape[0] // 4, 1.0, contrast)
    return A, solvers.material_strength(A.indptr, A.indices, modulus)


def test_fine_sweeps_only_with_a_strong_contrast(monkeypatch):
    """With a material graph of a contrast above STRONG_CONTRAST and ("gauss_seidel", n) the finest level's
    smoother is n sweeps of the plain one; without a graph, or with a weaker contrast, it is left alone."""
    monkeypatch.setattr(solvers, "FINE_SMOOTHER", ("gauss_seidel", 3))
    A, strong = elasticity_with_a_graph(2.0 * solvers.STRONG_CONTRAST)
    weak = elasticity_with_a_graph(0.5 * solvers.STRONG_CONTRAST)[1]
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    plain = solvers.amg_hierarchy(A).levels[0].presmoother
    once, repeated, expected, left = (np.zeros_like(b) for _ in range(4))
    plain(A, once, b)
    solvers.amg_hierarchy(A, strength=strong).levels[0].presmoother(A, repeated, b)
    solvers.amg_hierarchy(A, strength=weak).levels[0].presmoother(A, left, b)
    for _ in range(3):
        plain(A, expected, b)
    assert not np.allclose(once, expected)
    np.testing.assert_allclose(repeated, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(left, once, rtol=1e-12, atol=1e-14)


def test_chebyshev_on_the_finest_level_only(monkeypatch):
    """With a strong contrast and ("chebyshev", m) the finest level is smoothed by m Chebyshev steps with the
    Lanczos estimate of rho(D^-1 A), before and after the coarse correction; the coarser levels keep the
    block Gauss-Seidel sweep; the V-cycle with the residual that the pre-smoothing fuses with its last step
    equals the one with a separate residual."""
    monkeypatch.setattr(solvers, "FINE_SMOOTHER", ("chebyshev", 3))
    monkeypatch.setattr(solvers, "AMG_PRECISION", "double")
    monkeypatch.setitem(solvers.AMG_OPTIONS, "max_coarse", 50)          # three levels
    A, graph = elasticity_with_a_graph(2.0 * solvers.STRONG_CONTRAST)
    ml = solvers.amg_hierarchy(A, strength=graph)
    fine = ml.levels[0]
    assert fine.presmoother is fine.postsmoother
    D = relaxation.diagonal_blocks(fine.A)
    D_inverse = relaxation.block_inverses(D)[0]
    rho = multigrid.spectral_radius(fine.A, D, D_inverse, relaxation.CHEBYSHEV_LANCZOS_STEPS)
    rng = np.random.default_rng(0)
    b, x0 = rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    ours, expected = x0.copy(), x0.copy()
    fine.presmoother(A, ours, b)
    relaxation.chebyshev(A, D_inverse, rho, 3)(A, expected, b)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14)
    assert len(ml.levels) > 2
    coarse = ml.levels[1]
    x, y = np.zeros(coarse.A.shape[0]), np.zeros(coarse.A.shape[0])
    c = rng.standard_normal(coarse.A.shape[0])
    coarse.presmoother(coarse.A, x, c)
    relaxation.block_gauss_seidel(coarse.A)(coarse.A, y, c)
    np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
    # the V-cycle takes the residual after the pre-smoothing from the smoother (fused with its last step):
    # the cycle with a separate residual, to round-off
    fused = multigrid.VCycle(ml)(b)
    smoother = fine.presmoother
    fine.presmoother = lambda A_, x_, b_: smoother(A_, x_, b_)            # no presmooth
    np.testing.assert_allclose(fused, multigrid.VCycle(ml)(b), rtol=0, atol=1e-12 * np.abs(fused).max())


def test_one_lanczos_run_for_the_prolongator_and_the_smoother(monkeypatch):
    """With a strong contrast and the Chebyshev smoother, the finest operator gets one Lanczos run, whose
    8-step estimate weights the prolongator and whose 15-step estimate sets the smoother's interval: the
    prolongators equal those of a hierarchy that estimates for the prolongator alone (Gauss-Seidel
    smoother), and the smoother is test_chebyshev_on_the_finest_level_only's."""
    monkeypatch.setattr(solvers, "AMG_PRECISION", "double")
    monkeypatch.setitem(solvers.AMG_OPTIONS, "max_coarse", 50)          # three levels
    A, graph = elasticity_with_a_graph(2.0 * solvers.STRONG_CONTRAST)
    runs, radii = [], multigrid.spectral_radii
    monkeypatch.setattr(multigrid, "spectral_radii", lambda S, *a: runs.append((S, a[-1])) or radii(S, *a))
    shared = solvers.amg_hierarchy(A, strength=graph)
    fine_runs = [steps for S, steps in runs if S is A]
    assert fine_runs == [(multigrid.LANCZOS_STEPS, relaxation.CHEBYSHEV_LANCZOS_STEPS)]
    runs.clear()
    monkeypatch.setattr(solvers, "FINE_SMOOTHER", ("gauss_seidel", 1))
    alone = solvers.amg_hierarchy(A, strength=graph)
    assert [steps for S, steps in runs if S is A] == [(multigrid.LANCZOS_STEPS,)]
    assert len(shared.levels) == len(alone.levels) > 2
    for a, b in zip(shared.levels[:-1], alone.levels[:-1]):
        assert (a.P != b.P).nnz == 0


@pytest.mark.parametrize("threads", [None, 1])
def test_exact_nucleus_solve_cuts_the_iterations(model, monkeypatch, threads):
    """The nodes of the nucleus (nu 0.499: bulk modulus 500 times the shear modulus) are solved exactly
    before and after the V-cycle: fewer CG iterations than the V-cycle alone, as many with the factor in
    single precision (the default) as in double, all solutions equal to the direct one to the solver
    tolerance; also with one numba and one BLAS thread (study workers)."""
    import numba
    from threadpoolctl import threadpool_limits

    direct = model.solve(solver="direct", rtol=1e-10).displacement
    scale = np.abs(direct).max()
    before = numba.get_num_threads()
    counts = []
    try:
        numba.set_num_threads(threads or numba.config.NUMBA_NUM_THREADS)   # None: all of numba's threads
        with threadpool_limits(limits=threads):
            for fraction, precision in ((solvers.SUBDOMAIN_MAX_FRACTION, "single"),
                                        (solvers.SUBDOMAIN_MAX_FRACTION, "double"), (0.0, "double")):
                monkeypatch.setattr(solvers, "SUBDOMAIN_MAX_FRACTION", fraction)
                monkeypatch.setattr(solvers, "SUBDOMAIN_PRECISION", precision)
                sol = model.solve(solver="amg", rtol=1e-8)
                assert sol.info["residual"] <= 1e-8
                assert np.abs(sol.displacement - direct).max() <= 1e-6 * scale
                counts.append(sol.info["iterations"])
    finally:
        numba.set_num_threads(before)
    assert counts[0] == counts[1] < counts[2]


def test_nucleus_nodes_are_the_incompressible_blocks(model):
    """The strength graph marks exactly the nodes of the nucleus cells (the only material with nu above
    0.495)."""
    seen = {}
    hierarchy = solvers.amg_hierarchy

    def record(K, B=None, strength=None):
        seen["graph"] = strength
        return hierarchy(K, B, strength)

    try:
        solvers.amg_hierarchy = record
        model.solve(solver="amg", rtol=1e-8)
    finally:
        solvers.amg_hierarchy = hierarchy
    mesh = model.mesh
    code = [c for c, name in mesh.tag_names["region"].items() if name == "nucleus"]
    nucleus = np.unique(mesh.cells[np.isin(mesh.cell_data["region"], code)])
    marked = np.flatnonzero(seen["graph"].incompressible)
    np.testing.assert_array_equal(marked, nucleus)
