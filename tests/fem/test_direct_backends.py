"""Sparse direct back-ends of ``solvers.factorize``: PARDISO (MKL, the plain install) comes first, agrees
with SuperLU and CHOLMOD, solves several right-hand sides at once, and hands a matrix that is not positive
definite to SuperLU, as CHOLMOD does."""
import numpy as np
import pytest
import scipy.sparse as sp

import vertebrafe as vf
from vertebrafe.fem import solvers

pytestmark = pytest.mark.skipif(not solvers.pardiso_available(), reason="MKL PARDISO (pypardiso) not installed")


@pytest.fixture(scope="module")
def system():
    """A two-material cube on a rigid plate (6 591 unknowns), its matrix and a load."""
    mesh = vf.box((10.0, 10.0, 10.0), (12, 12, 12))
    model = vf.Model(mesh, E=np.where(mesh.cell_centers()[:, 2] < 5.0, 100.0, 3000.0), nu=0.45)
    model.fix(mesh.node_sets["zmin"])
    model.rigid_plate(mesh.node_sets["zmax"]).load(force=(5.0, 0.0, -100.0), moment=(50.0, 0.0, 0.0))
    K, rhs, _ = model.stiffness()
    return model, K.tocsc(), rhs


def test_pardiso_is_the_cholesky_even_with_cholmod(system, monkeypatch):
    model, K, rhs = system
    monkeypatch.setattr(solvers, "cholmod_available", lambda: True)     # PARDISO first either way
    solve, name = solvers.factorize(K)
    assert name == "Cholesky (PARDISO)"
    assert solvers.direct_max_dofs() == solvers.DIRECT_MAX_DOFS
    lu = sp.linalg.splu(K)
    rng = np.random.default_rng(0)
    B = K @ rng.standard_normal((K.shape[0], 4))              # four right-hand sides in one call
    X = solve(B)
    assert X.shape == B.shape
    exact = lu.solve(B)
    assert np.abs(X - exact).max() <= 1e-9 * np.abs(exact).max()
    x = solve(B[:, 2])                                          # and one vector
    assert x.shape == (K.shape[0],)
    assert np.abs(x - exact[:, 2]).max() <= 1e-9 * np.abs(exact[:, 2]).max()


def test_model_solve_with_pardiso_equals_superlu_and_cholmod(system, monkeypatch):
    model = system[0]
    pardiso = model.solve(solver="direct", rtol=1e-10)
    assert pardiso.info["factorization"] == "Cholesky (PARDISO)"
    assert pardiso.info["residual"] <= 1e-10
    monkeypatch.setattr(solvers, "CHOLESKY_MIN_DOFS", 10 ** 9)
    lu = model.solve(solver="direct", rtol=1e-10)
    assert lu.info["factorization"] == "LU (SuperLU)"
    scale = np.abs(lu.displacement).max()
    np.testing.assert_allclose(pardiso.displacement, lu.displacement, rtol=0, atol=1e-9 * scale)
    monkeypatch.undo()
    if solvers.cholmod_available():
        monkeypatch.setattr(solvers, "pardiso_available", lambda: False)   # CHOLMOD where MKL is missing
        chol = model.solve(solver="direct", rtol=1e-10)
        assert chol.info["factorization"] == "Cholesky (CHOLMOD)"
        np.testing.assert_allclose(pardiso.displacement, chol.displacement, rtol=0, atol=1e-9 * scale)


def test_not_positive_definite_goes_to_superlu():
    """A symmetric indefinite matrix (1-D Laplacian shifted below its smallest eigenvalue): PARDISO's
    Cholesky stops on a non-positive pivot and SuperLU solves it."""
    n = 3000
    A = (sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n)) - 0.5 * sp.eye(n)).tocsc()
    solve, name = solvers.factorize(A)
    assert name == "LU (SuperLU)"
    b = np.ones(n)
    assert np.linalg.norm(A @ solve(b) - b) <= 1e-10 * np.linalg.norm(b)


def test_partial_and_sparse_right_hand_side_solves_equal_full_ones(system):
    """With unknowns selected at the analysis, ``partial`` gives the selected rows and ``sparse_rhs`` every row
    of the solution for right-hand sides that are zero elsewhere, equal to a full solve."""
    _, K, _ = system
    rng = np.random.default_rng(1)
    selected = np.sort(rng.choice(K.shape[0], 60, replace=False))
    factor = solvers.PardisoCholesky(K, selected)
    B = np.zeros((K.shape[0], 3))
    B[selected] = rng.standard_normal((selected.size, 3))
    full = factor(B)
    scale = np.abs(full).max()
    assert np.abs(factor.sparse_rhs(B) - full).max() <= 1e-12 * scale
    assert np.abs(factor.sparse_rhs(B[:, 1]) - full[:, 1]).max() <= 1e-12 * scale
    assert np.abs(factor.partial(B)[selected] - full[selected]).max() <= 1e-12 * scale
    assert np.abs(factor(B[:, 0]) - full[:, 0]).max() <= 1e-12 * scale     # ordinary solves after them


def test_upper_triangle_is_scipys_triu_bit_for_bit(system):
    """PARDISO's input is taken from the rows of the matrix (BSR as assembled, or CSR, also unsorted and with
    explicit zeros): the same arrays as SciPy's ``triu`` of its CSC copy, so the factorisation is unchanged."""
    model, K, _ = system
    bsr = model.stiffness()[0]
    rng = np.random.default_rng(2)
    csr = bsr.tocsr()
    csr.data[rng.choice(csr.nnz, 50, replace=False)] = 0.0                  # explicit zeros stay
    order = np.concatenate([rng.permutation(np.arange(a, b)) for a, b in zip(csr.indptr[:-1], csr.indptr[1:])])
    shuffled = sp.csr_matrix((csr.data[order], csr.indices[order], csr.indptr), shape=csr.shape)
    assert not shuffled.has_sorted_indices
    for A in (bsr, csr, shuffled, K):
        ref = sp.triu(A.tocsc(), format="csr")
        ref.sort_indices()
        got = solvers.upper_triangle(A)
        assert got.has_sorted_indices
        for name in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(got, name), getattr(ref, name)), name
    b = rng.standard_normal(K.shape[0])
    # the same input, so the same factorisation; MKL's threaded factorisation is not bit-reproducible from one
    # call to the next (8e-16 of the largest entry between two calls on the same BSR matrix), hence round-off
    x, ref = solvers.factorize(bsr)[0](b), solvers.factorize(bsr.tocsc())[0](b)
    assert np.abs(x - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize("partial", [False, True])
def test_kept_analysis_refactorises_the_same_pattern_bit_for_bit(system, partial):
    """On one MKL thread a released factorisation keeps its analysis for the next matrix of the same pattern
    (and the same selection of partial solves), which is factorised numerically only; its solutions equal a
    fresh factorisation's bit for bit. On more threads nothing is kept."""
    from threadpoolctl import threadpool_limits
    _, K, rhs = system
    selected = np.arange(300, 900) if partial else None
    b = np.zeros(K.shape[0])
    b[300:900] = np.linspace(-1.0, 1.0, 600)
    K2 = K.copy()
    K2.data = K2.data * 2.0 + (K2.indices == np.repeat(np.arange(K.shape[0]), np.diff(K.indptr))) * 1e3
    solvers._SPARE.clear()
    with threadpool_limits(1):
        if solvers._mkl_threads() != 1:
            pytest.skip("MKL's threads cannot be limited here")
        fresh = solvers.PardisoCholesky(K2, selected)
        x_fresh = [fresh(rhs)] + ([fresh.partial(b)[300:900], fresh.sparse_rhs(b)] if partial else [])
        del fresh                                   # released: its analysis is kept
        assert len(solvers._SPARE) == 1
        other = solvers.PardisoCholesky(K, None if partial else np.arange(10))    # another selection
        del other                                           # not taken; kept beside it
        assert len(solvers._SPARE) == 2
        first = solvers.PardisoCholesky(K, selected)        # takes it (K and K2 share their pattern)
        assert len(solvers._SPARE) == 1
        first(rhs)
        del first
        kept = solvers.PardisoCholesky(K2, selected)        # numerical factorisation only
        x_kept = [kept(rhs)] + ([kept.partial(b)[300:900], kept.sparse_rhs(b)] if partial else [])
        assert all(np.array_equal(x, y) for x, y in zip(x_kept, x_fresh))
        del kept
    solvers._SPARE.clear()
    with threadpool_limits(2):
        if solvers._mkl_threads() > 1:
            many = solvers.PardisoCholesky(K)
            del many
            assert not solvers._SPARE


def test_single_precision_factor_solves_to_float32_accuracy(system):
    """``single``: PARDISO factorises and solves in float32 (iparm 28): the solution agrees with the double
    factor's to a few float32 roundings times the condition number, not to float64 round-off; a released
    single factor's analysis is not taken by a double one of the same pattern."""
    from threadpoolctl import threadpool_limits
    _, K, _ = system
    rhs = np.random.default_rng(3).standard_normal(K.shape[0])
    double = solvers.PardisoCholesky(K)(rhs)
    solvers._SPARE.clear()
    with threadpool_limits(1):
        single = solvers.PardisoCholesky(K, single=True)
        x = single(rhs)
        assert x.dtype == np.float32
        del single
        kept = len(solvers._SPARE)
        again = solvers.PardisoCholesky(K)                   # double: not the single analysis
        assert len(solvers._SPARE) == kept
        assert np.abs(again(rhs) - double).max() <= 1e-12 * np.abs(double).max()
        del again
    solvers._SPARE.clear()
    error = np.abs(x - double).max() / np.abs(double).max()
    # float32 (6e-8) times the condition number of the two-material cube (stiffness ratio 30, 12 elements a side)
    assert 1e-10 < error < 1e-3


def test_kept_analyses_are_bounded_and_the_oldest_freed(system, monkeypatch):
    """At most ``SPARE_ANALYSES`` released analyses are kept; the oldest is freed first, and a kept one still
    factorises its pattern to the solution of a fresh factorisation."""
    from threadpoolctl import threadpool_limits
    _, K, rhs = system
    monkeypatch.setattr(solvers, "SPARE_ANALYSES", 2)
    solvers._SPARE.clear()
    with threadpool_limits(1):
        if solvers._mkl_threads() != 1:
            pytest.skip("MKL's threads cannot be limited here")
        keys = []
        for selected in (np.arange(5), np.arange(10), np.arange(15)):       # three patterns (their selections)
            f = solvers.PardisoCholesky(K, selected)
            keys.append(f._pattern)
            x = f(rhs)
            del f
        assert list(solvers._SPARE) == keys[1:]                          # the oldest freed
        kept = solvers.PardisoCholesky(K, np.arange(15))                    # takes the newest
        assert list(solvers._SPARE) == keys[1:2]
        assert np.array_equal(kept(rhs), x)
        del kept
    solvers._SPARE.clear()


def test_factorisations_are_reproducible_bit_for_bit():
    """PARDISO runs in its conditional-numerical-reproducibility mode (``iparm(34)``, :data:`solvers.PARDISO_CNR`):
    factorising the same matrix again, on the threads MKL has (two on the development machine), gives the same
    solution bit for bit. Without it the parallel factorisation of a matrix of 3x3 node blocks (the variable block
    format) gave another factor every second or third time on two threads (81,000 unknowns)."""
    n = 20                                          # a 3-D grid of 3x3 node blocks: 24,000 unknowns
    eye, line = sp.identity(n), sp.diags([-1.0, 2.2, -1.0], [-1, 0, 1], shape=(n, n))
    grid = sp.kron(sp.kron(line, eye), eye) + sp.kron(sp.kron(eye, line), eye) + sp.kron(sp.kron(eye, eye), line)
    A = sp.kron(grid, np.array([[3.0, 1.0, 0.5], [1.0, 3.0, 1.0], [0.5, 1.0, 3.0]])).tocsr()
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    solvers._SPARE.clear()
    first = solvers.PardisoCholesky(A)(b)
    for _ in range(3):
        assert np.array_equal(solvers.PardisoCholesky(A)(b), first)
