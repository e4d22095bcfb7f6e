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
