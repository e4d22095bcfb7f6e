"""The numba block Gauss-Seidel smoother: the textbook sweep, and it smooths."""
import numpy as np
import pytest
import scipy.sparse as sp

from vertebrafe.fem import relaxation


def random_spd_bsr(nb, k, seed):
    """A random symmetric, diagonally dominant (so SPD) block-sparse matrix with k x k blocks."""
    rng = np.random.default_rng(seed)
    pattern = sp.random(nb, nb, density=min(1.0, 6.0 / nb), random_state=seed, format="coo")
    M = sp.kron(pattern, np.ones((k, k))).tocsr()
    M.data = rng.standard_normal(M.nnz)
    M = M + M.T + sp.eye(nb * k) * (8.0 * k)
    A = M.tobsr(blocksize=(k, k))
    A.sort_indices()
    return A


def dense_block_gauss_seidel(A, x, b, k):
    """Forward then backward block Gauss-Seidel on the dense matrix (reference)."""
    D = A.toarray()
    nb = D.shape[0] // k
    for i in list(range(nb)) + list(range(nb - 1, -1, -1)):
        s = slice(k * i, k * i + k)
        r = b[s] - D[s] @ x + D[s, s] @ x[s]
        x[s] = np.linalg.solve(D[s, s], r)
    return x


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_sweep_is_block_gauss_seidel_and_reduces_the_error(k):
    A = random_spd_bsr(40, k, seed=k)
    rng = np.random.default_rng(0)
    b = rng.standard_normal(A.shape[0])
    x0 = rng.standard_normal(A.shape[0])
    ours = x0.copy()
    relaxation.block_gauss_seidel(A)(A, ours, b)
    ref = dense_block_gauss_seidel(A, x0.copy(), b, k)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    exact = np.linalg.solve(A.toarray(), b)
    assert np.linalg.norm(ours - exact) < 0.5 * np.linalg.norm(x0 - exact)


def test_every_level_of_a_hierarchy_gets_the_smoother():
    import pyamg

    A = pyamg.gallery.linear_elasticity((12, 12))[0].tobsr(blocksize=(2, 2))
    ml = relaxation.use_block_gauss_seidel(pyamg.smoothed_aggregation_solver(A, max_coarse=10))
    assert len(ml.levels) > 2
    b = np.ones(A.shape[0])
    res = []
    ml.solve(b, tol=1e-10, accel="cg", residuals=res)
    assert res[-1] <= 1e-10 * res[0] and len(res) < 40


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("start", ["zero", "random"])
def test_chebyshev_is_the_scaled_chebyshev_polynomial_of_the_jacobi_operator(k, start):
    """The error after m steps is T_m((theta - D^-1 A) / delta) / T_m(theta / delta) times the error before
    (eigenvalues of D^-1 A from the generalized problem A v = lambda D v), from a zero start (the
    pre-smoothing, no residual product) and from a random one; from zero, ``presmooth`` gives the same ``x``
    and its residual."""
    import scipy.linalg
    from numpy.polynomial import chebyshev as C

    A = random_spd_bsr(30, k, seed=10 + k)
    D = relaxation.diagonal_blocks(A)
    D_inverse = relaxation.block_inverses(D)[0]
    Dd = sp.block_diag(list(D)).toarray()
    lam, V = scipy.linalg.eigh(A.toarray(), Dd)                 # V^T D V = I, D^-1 A = V diag(lam) V^T D
    rng = np.random.default_rng(1)
    b = rng.standard_normal(A.shape[0])
    x0 = np.zeros_like(b) if start == "zero" else rng.standard_normal(A.shape[0])
    exact = np.linalg.solve(A.toarray(), b)
    upper = relaxation.CHEBYSHEV_UPPER * lam[-1]
    lower = upper / relaxation.CHEBYSHEV_RATIO
    theta, delta = (upper + lower) / 2, (upper - lower) / 2
    for m in (1, 2, 4, 5):
        x = x0.copy()
        relaxation.chebyshev(A, D_inverse, lam[-1], m)(A, x, b)
        Tm = C.Chebyshev.basis(m)
        factor = Tm((theta - lam) / delta) / Tm(theta / delta)
        expected = V @ (factor * (V.T @ (Dd @ (x0 - exact))))
        np.testing.assert_allclose(x - exact, expected, rtol=1e-9, atol=1e-11 * np.abs(exact).max())
        if start == "zero":     # the pre-smoothing with its residual (fused with the last step)
            xp, rp = relaxation.chebyshev(A, D_inverse, lam[-1], m).presmooth(b)
            np.testing.assert_allclose(xp, x, rtol=1e-13, atol=1e-14 * np.abs(x).max())
            np.testing.assert_allclose(rp, b - A @ xp, rtol=0, atol=1e-12 * np.abs(b).max())
        # inside the interval the error shrinks by at least 1 / T_m(theta / delta)
        assert np.abs(factor[lam >= lower]).max() <= 1.0 / Tm(theta / delta) * (1 + 1e-12)
