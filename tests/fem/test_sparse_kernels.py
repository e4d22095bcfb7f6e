"""The parallel block-sparse products and the V-cycle that runs on them: the same numbers as SciPy and pyamg;
the cycle on float32 operators (sums in float64) against the float64 kernels on the rounded values."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp

from vertebrafe.fem import multigrid, relaxation, solvers
from vertebrafe.fem.sparse_kernels import BlockMatrix
from vertebrafe.mesh import box


def random_bsr(nbr, nbc, r, c, seed):
    rng = np.random.default_rng(seed)
    pattern = sp.random(nbr, nbc, density=min(1.0, 5.0 / nbc), random_state=seed, format="csr")
    M = sp.kron(pattern, np.ones((r, c))).tocsr()
    M.data = rng.standard_normal(M.nnz)
    return M.tobsr(blocksize=(r, c))


@pytest.mark.parametrize("r, c", [(3, 3), (3, 6), (6, 6), (6, 3), (1, 1), (2, 5)])
def test_products_equal_scipy(r, c):
    A = random_bsr(70, 50, r, c, seed=r * 10 + c)
    rng = np.random.default_rng(1)
    x, b, z = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    ours = BlockMatrix(A)
    scale = np.abs(A @ x).max()
    np.testing.assert_allclose(ours.matvec(x), A @ x, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(ours.residual(x, b), b - A @ x, rtol=0, atol=1e-12 * scale)
    y = b.copy()
    ours.add_product(x, y)
    np.testing.assert_allclose(y, b + A @ x, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(ours.rmatvec(z), A.T @ z, rtol=0, atol=1e-12 * np.abs(A.T @ z).max())
    # a CSR matrix is taken as 1x1 blocks
    np.testing.assert_allclose(BlockMatrix(A.tocsr()).matvec(x), A @ x, rtol=0, atol=1e-12 * scale)


def test_products_do_not_depend_on_the_thread_count():
    A = random_bsr(3000, 500, 3, 6, seed=4)
    x, z = np.linspace(-1.0, 2.0, A.shape[1]), np.cos(np.arange(A.shape[0]))
    before = numba.get_num_threads()
    out = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            out.append((BlockMatrix(A).matvec(x), BlockMatrix(A).rmatvec(z)))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(out[0], out[-1]):
        assert np.array_equal(a, b)


def spd_bsr(nb, k, seed):
    rng = np.random.default_rng(seed)
    pattern = sp.random(nb, nb, density=min(1.0, 6.0 / nb), random_state=seed, format="coo")
    M = sp.kron(pattern, np.ones((k, k))).tocsr()
    M.data = rng.standard_normal(M.nnz)
    A = (M + M.T + sp.eye(nb * k) * (4.0 * k)).tobsr(blocksize=(k, k))
    return A


def hybrid_reference(A, x, b, bounds, k):
    """The l1 hybrid symmetric block Gauss-Seidel sweep from sparse triangular factors: runs of rows
    ``bounds``; x += M^-1 (b - A x) with M = D_l1 + L (forward) and D_l1 + U (backward), where L, U keep only
    couplings inside a run and D_l1 adds the absolute off-run row sums to the diagonal."""
    C = A.tocoo()
    run = np.searchsorted(bounds, np.arange(A.shape[0] // k), side="right") - 1
    off = run[C.row // k] != run[C.col // k]
    l1 = np.bincount(C.row[off], np.abs(C.data[off]), minlength=A.shape[0])
    inner = sp.coo_matrix((C.data[~off], (C.row[~off], C.col[~off])), shape=A.shape)
    lower = inner.row // k >= inner.col // k
    MF = (sp.csc_matrix((inner.data[lower], (inner.row[lower], inner.col[lower])), shape=A.shape)
          + sp.diags(l1.astype(float), dtype=float)).tocsc()
    for M in (MF, MF.T.tocsc()):
        x = x + sp.linalg.spsolve(M, b - A @ x)
    return x


@pytest.mark.parametrize("k, runs", [(3, 1), (3, 2), (3, 5), (6, 3), (2, 4)])
def test_hybrid_sweep_is_the_l1_hybrid_gauss_seidel_and_smooths(k, runs, monkeypatch):
    monkeypatch.setattr(relaxation, "MIN_CHUNK_ROWS", 1)
    A = spd_bsr(60, k, seed=k + runs)
    rng = np.random.default_rng(0)
    b, x0 = rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    bounds = relaxation.run_bounds(A, runs)
    assert bounds.size == runs + 1
    x = x0.copy()
    relaxation.block_gauss_seidel(A, threads=runs)(A, x, b)
    np.testing.assert_allclose(x, hybrid_reference(A, x0, b, bounds, k), rtol=1e-12, atol=1e-12)
    exact = np.linalg.solve(A.toarray(), b)
    energy = lambda e: e @ (A @ e)  # noqa: E731
    assert energy(x - exact) < 0.5 * energy(x0 - exact)


def box_system(shape):
    from vertebrafe import Model

    mesh = box((40.0, 30.0, 25.0), shape)
    c = mesh.cell_centers()
    E = np.where((((c - (20.0, 15.0, 12.5)) / (10.0, 8.0, 6.0)) ** 2).sum(axis=1) <= 1.0, 3000.0, 100.0)
    model = Model(mesh, E=E, nu=0.3)
    model.fix(mesh.node_sets["zmin"], "xyz")
    model.prescribe(mesh.node_sets["zmax"], "z", -0.1)
    K, f, _ = model.stiffness()
    return K, f, solvers.rigid_body_modes(mesh.points)


def test_v_cycle_equals_pyamgs():
    import pyamg

    K, f, B = box_system((16, 12, 10))
    ml = relaxation.use_block_gauss_seidel(pyamg.smoothed_aggregation_solver(
        K, B=B, **dict(solvers.AMG_OPTIONS, max_coarse=30)))
    assert len(ml.levels) >= 3
    ours = multigrid.VCycle(ml)(f)
    theirs = ml.aspreconditioner(cycle="V") @ f
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10 * np.abs(theirs).max())


@pytest.mark.parametrize("runs", [1, 2, 4])
def test_amg_solve_with_parallel_kernels_matches_the_direct_solve(runs, monkeypatch):
    """The AMG-CG solve (parallel products; the finest level swept as a hybrid of ``runs`` runs of rows)
    reaches rtol and agrees with the factorisation to the solver tolerance in at most 20 iterations (10 with the
    sequential sweep, 13 with two or four runs)."""
    K, f, B = box_system((16, 12, 10))
    exact = solvers.solve(K, f, "direct")[0]
    bounds = relaxation.run_bounds
    monkeypatch.setattr(relaxation, "run_bounds", lambda A, threads=None: bounds(A, runs))
    monkeypatch.setattr(relaxation, "MIN_CHUNK_ROWS", 500)
    u, info = solvers.Prepared(K, "amg", B).solve(f, rtol=1e-8)
    assert info["residual"] <= 1e-8
    assert np.linalg.norm(u - exact) <= 1e-6 * np.linalg.norm(exact)
    assert info["iterations"] <= 20


@pytest.mark.parametrize("weighting", ["local", "block"])
def test_lean_prolongation_smoothing_equals_pyamgs(weighting, monkeypatch):
    """Same operators and prolongators as pyamg's smoothing, given the same spectral radii of ``D^-1 A``
    (pyamg estimates them from a random start: here it is handed the radii of ours, which
    test_spectral_radius_is_the_largest_eigenvalue_of_the_scaled_matrix checks)."""
    import pyamg
    from pyamg.aggregation import aggregation, smooth

    K, f, B = box_system((16, 12, 10))
    options = dict(solvers.AMG_OPTIONS, max_coarse=30,
                   smooth=("jacobi", {"omega": 4.0 / 3.0, "degree": 1, "weighting": weighting}))
    radii, estimate = [], multigrid.spectral_radius
    monkeypatch.setattr(multigrid, "spectral_radius", lambda *a: radii.append(estimate(*a)) or radii[-1])
    with multigrid.lean_prolongation_smoothing():
        ours = pyamg.smoothed_aggregation_solver(K, B=B, **options)
    assert len(radii) == (len(ours.levels) - 1 if weighting == "block" else 0)
    monkeypatch.setattr(smooth, "approximate_spectral_radius", lambda DS: radii.pop(0))
    theirs = pyamg.smoothed_aggregation_solver(K, B=B, **options)
    assert not radii
    assert len(ours.levels) == len(theirs.levels) >= 3
    for a, b in zip(theirs.levels, ours.levels):
        assert abs(a.A - b.A).max() <= 1e-13 * abs(a.A).max()
    for a, b in zip(theirs.levels[:-1], ours.levels[:-1]):
        assert abs(a.P - b.P).max() <= 1e-13 * abs(a.P).max()
    assert not any(sp.issparse(level.R) for level in ours.levels[:-1])      # no restriction matrices kept
    assert aggregation.jacobi_prolongation_smoother is smooth.jacobi_prolongation_smoother


def test_spectral_radius_is_the_largest_eigenvalue_of_the_scaled_matrix():
    """Lanczos on ``D^-1 K`` (``D``: the diagonal 3x3 blocks) in the ``D`` inner product: exact with as many
    steps as unknowns; with the default steps within 1 % below the eigenvalue on this small box, never above
    it (a Ritz value)."""
    import scipy.linalg

    K, _, _ = box_system((6, 5, 4))
    D = relaxation.diagonal_blocks(K)
    D_inverse, exact_blocks = relaxation.block_inverses(D)
    assert exact_blocks.all()
    dense_D = sp.block_diag(list(D)).toarray()
    exact = scipy.linalg.eigh(K.toarray(), dense_D, eigvals_only=True)[-1]
    assert multigrid.spectral_radius(K, D, D_inverse, steps=K.shape[0]) == pytest.approx(exact, rel=1e-10)
    estimate = multigrid.spectral_radius(K, D, D_inverse)
    assert 0.99 * exact <= estimate <= exact * (1 + 1e-12)


def test_spectral_radii_of_one_run_are_those_of_runs_of_each_length():
    """One Lanczos run read after 8, 15 and all steps gives the estimates of separate runs of those lengths
    (the leading blocks of one tridiagonal matrix), the last the largest eigenvalue; the estimates grow with
    the steps (Ritz values from below)."""
    K, _, _ = box_system((6, 5, 4))
    D = relaxation.diagonal_blocks(K)
    D_inverse = relaxation.block_inverses(D)[0]
    counts = (8, 15, K.shape[0])
    radii = multigrid.spectral_radii(K, D, D_inverse, counts)
    for k, rho in zip(counts, radii):
        assert rho == pytest.approx(multigrid.spectral_radius(K, D, D_inverse, steps=k), rel=1e-13)
    assert radii[0] <= radii[1] * (1 + 1e-13) and radii[1] <= radii[2] * (1 + 1e-13)


@pytest.mark.parametrize("chunks, threads", [(1, 1), (3, 1), (1000, 1), (3, 2), (8, 2)])
def test_galerkin_product_in_row_chunks_equals_rap(chunks, threads):
    import numba

    A = spd_bsr(40, 3, seed=4)
    rng = np.random.default_rng(5)
    P = sp.random(40, 7, density=0.3, random_state=6, format="csr")
    P = sp.kron(P, np.ones((3, 6))).tocsr()
    P.data = rng.standard_normal(P.nnz)
    P = P.tobsr(blocksize=(3, 6))
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        ours = multigrid.galerkin_product(A, P, chunks)
        numba.set_num_threads(1)
        one = multigrid.galerkin_product(A, P, chunks)      # the same sums in the same order
    finally:
        numba.set_num_threads(previous)
    theirs = (P.T @ A @ P).toarray()
    assert ours.blocksize == (6, 6)
    assert ours.has_sorted_indices
    np.testing.assert_allclose(ours.toarray(), theirs, rtol=0, atol=1e-12 * abs(theirs).max())
    assert np.array_equal(ours.indptr, one.indptr) and np.array_equal(ours.indices, one.indices)
    assert np.array_equal(ours.data, one.data)


def test_galerkin_product_of_a_coarse_level_with_6x6_blocks():
    """The second-level product (6x6 blocks in A and P) and an A P pattern with more columns than P has
    rows equal SciPy's to round-off."""
    rng = np.random.default_rng(7)
    A = spd_bsr(30, 6, seed=8)
    P = sp.random(30, 45, density=0.1, random_state=9, format="csr")
    P = sp.kron(P, np.ones((6, 6))).tocsr()
    P.data = rng.standard_normal(P.nnz)
    P = P.tobsr(blocksize=(6, 6))
    ours = multigrid.galerkin_product(A, P)
    theirs = (P.T @ A @ P).toarray()
    np.testing.assert_allclose(ours.toarray(), theirs, rtol=0, atol=1e-12 * abs(theirs).max())


def test_forward_then_backward_sweep_is_the_symmetric_sweep(monkeypatch):
    monkeypatch.setattr(relaxation, "MIN_CHUNK_ROWS", 1)
    A = spd_bsr(50, 3, seed=9)
    rng = np.random.default_rng(2)
    b, x0 = rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    sym, split = x0.copy(), x0.copy()
    relaxation.block_gauss_seidel(A, threads=3)(A, sym, b)
    for sweep in ("forward", "backward"):
        relaxation.block_gauss_seidel(A, threads=3, sweep=sweep)(A, split, b)
    np.testing.assert_allclose(split, sym, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("singular", [True, False])
def test_inverse_diagonal_blocks_are_pseudo_inverses_also_of_singular_blocks(singular):
    """Exactly singular blocks (LU fails) and an ill-conditioned one (LU's inverse fails the identity
    check) get numpy's pseudo-inverse; the others their inverse."""
    A = spd_bsr(40, 3, seed=5).tolil()
    if singular:
        A[6:9, :] = 0.0                  # block row 2: a zero (singular) diagonal block
        A[:, 6:9] = 0.0
        A[12, :], A[:, 12] = 0.0, 0.0    # block row 4: rank 2
    else:
        U = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))[0]
        A[12:15, 12:15] = U @ np.diag([12.0, 12.0, 1e-12]) @ U.T       # block row 4: condition number 1e13
    A = A.tocsr().tobsr(blocksize=(3, 3))
    A.sort_indices()
    dense = A.toarray()
    blocks = np.array([dense[3 * i:3 * i + 3, 3 * i:3 * i + 3] for i in range(40)])
    assert np.linalg.cond(blocks[4]) > 1e12
    np.testing.assert_allclose(relaxation.inverse_diagonal_blocks(A), np.linalg.pinv(blocks), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k, c", [(3, 6), (6, 6), (2, 3)])
def test_block_product_equals_scipys(k, c):
    import numba

    A = spd_bsr(30, k, seed=10 + k)
    rng = np.random.default_rng(11)
    P = sp.kron(sp.random(30, 12, density=0.15, random_state=12, format="csr"), np.ones((k, c))).tocsr()
    P.data = rng.standard_normal(P.nnz)
    P = P.tobsr(blocksize=(k, c))
    ptr, ind, data = multigrid.block_product(A, P)
    ours = sp.bsr_matrix((data, ind, ptr), shape=(A.shape[0], P.shape[1]))
    theirs = (A @ P).toarray()
    assert ours.blocksize == (k, c) and ours.has_sorted_indices
    np.testing.assert_allclose(ours.toarray(), theirs, rtol=0, atol=1e-13 * abs(theirs).max())
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert np.array_equal(multigrid.block_product(A, P)[2], data)
    finally:
        numba.set_num_threads(previous)
    ptr, ind, data = multigrid.block_product(A, P, with_P=True)       # P's blocks added to the pattern
    held = sp.bsr_matrix((data, ind, ptr), shape=(A.shape[0], P.shape[1]))
    np.testing.assert_allclose(held.toarray(), theirs, rtol=0, atol=1e-13 * abs(theirs).max())
    assert set(zip(*sp.csr_matrix((np.ones(P.indices.size), P.indices, P.indptr)).nonzero())) <= set(
        zip(*sp.csr_matrix((np.ones(ind.size), ind, ptr)).nonzero()))


def rounded_back(M):
    """``M`` rounded to float32 and stored as float64 again (the values the float32 kernels see)."""
    return sp.bsr_matrix((M.data.astype(np.float32).astype(np.float64), M.indices, M.indptr), shape=M.shape)


@pytest.mark.parametrize("r, c", [(3, 3), (3, 6), (6, 6), (1, 1)])
def test_products_of_float32_values_sum_in_float64(r, c):
    A = random_bsr(70, 50, r, c, seed=r + 7 * c)
    A32 = multigrid._rounded(A)
    assert A32.dtype == np.float32 and np.shares_memory(A32.indices, A.indices)
    assert np.array_equal(A32.data, A.data.astype(np.float32))
    ours, ref = BlockMatrix(A32), BlockMatrix(rounded_back(A))
    assert ours.data.dtype == np.float32
    rng = np.random.default_rng(3)
    x, b, z = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    scale = np.abs(ref.matvec(x)).max()
    np.testing.assert_allclose(ours.matvec(x), ref.matvec(x), rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(ours.residual(x, b), ref.residual(x, b), rtol=0, atol=1e-14 * scale)
    np.testing.assert_allclose(ours.rmatvec(z), ref.rmatvec(z), rtol=0, atol=1e-14 * np.abs(ref.rmatvec(z)).max())
    # float32 values differ from the float64 ones by the rounding only
    np.testing.assert_allclose(ours.matvec(x), A @ x, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("k, runs", [(3, 1), (3, 2), (6, 3)])
def test_sweep_of_float32_values_is_the_sweep_of_the_rounded_matrix(k, runs, monkeypatch):
    monkeypatch.setattr(relaxation, "MIN_CHUNK_ROWS", 1)
    A = spd_bsr(60, k, seed=20 + k)
    rng = np.random.default_rng(4)
    b, x0 = rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    ours, ref = x0.copy(), x0.copy()
    relaxation.block_gauss_seidel(multigrid._rounded(A), threads=runs)(None, ours, b)
    relaxation.block_gauss_seidel(rounded_back(A), threads=runs)(None, ref, b)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-13 * np.abs(ref).max())


def test_single_precision_rounds_every_level_but_the_coarsest():
    import pyamg

    K, f, B = box_system((16, 12, 10))
    options = dict(solvers.AMG_OPTIONS, max_coarse=30)
    with multigrid.lean_prolongation_smoothing():
        ml = pyamg.smoothed_aggregation_solver(K, B=B, **options)
        double = pyamg.smoothed_aggregation_solver(K, B=B, **options)
    assert len(ml.levels) >= 3
    multigrid.single_precision(ml)
    for ours, theirs in zip(ml.levels[:-1], double.levels[:-1]):
        for name in ("A", "P"):
            M, ref = getattr(ours, name), getattr(theirs, name)
            assert M.dtype == np.float32
            assert np.array_equal(M.toarray(), ref.toarray().astype(np.float32))
    assert ml.levels[-1].A.dtype == np.float64
    # the cycle is the double-precision cycle of the rounded operators, to round-off
    for level in double.levels[:-1]:
        level.A, level.P = rounded_back(level.A), rounded_back(level.P)
    for h in (ml, double):
        relaxation.use_block_gauss_seidel(h)
    ours, ref = multigrid.VCycle(ml)(f), multigrid.VCycle(double)(f)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("precision", ["single", "double"])
def test_amg_cg_with_either_cycle_matches_the_direct_solve(precision, monkeypatch):
    """CG with the single-precision cycle reaches rtol 1e-8 on the true (float64) residual, agrees with the
    factorisation to the solver tolerance, and needs no more iterations than with the double-precision
    cycle (17 here)."""
    monkeypatch.setattr(solvers, "AMG_PRECISION", precision)
    K, f, B = box_system((16, 12, 10))
    exact = solvers.solve(K, f, "direct")[0]
    u, info = solvers.Prepared(K, "amg", B).solve(f, rtol=1e-8)
    assert info["residual"] <= 1e-8
    assert np.linalg.norm(u - exact) <= 1e-6 * np.linalg.norm(exact)
    assert info["iterations"] <= 17
