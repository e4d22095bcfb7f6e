"""The exact subdomain solve around a preconditioner (symmetric multiplicative Schwarz)."""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vertebrafe.fem import solvers, subdomain


def spd_bsr(nb=60, seed=0):
    """A random sparse symmetric positive-definite matrix of 3x3 blocks."""
    rng = np.random.default_rng(seed)
    pattern = sp.random(nb, nb, density=0.08, random_state=seed, format="csr")
    pattern = ((pattern + pattern.T) != 0).astype(float)
    A = sp.kron(pattern, np.ones((3, 3))).tocsr()
    A.data = rng.standard_normal(A.nnz)
    A = A + A.T
    A = A + sp.diags(np.abs(A).sum(axis=1).A1 + 1.0)
    return A.tobsr(blocksize=(3, 3))


def test_block_submatrix_is_scipys():
    A = spd_bsr()
    rows, cols = np.array([1, 4, 5, 20, 59]), np.array([0, 4, 7, 20, 33, 58])
    dofs = lambda b: (3 * b[:, None] + np.arange(3)).ravel()                  # noqa: E731
    expected = A.tocsr()[dofs(rows)][:, dofs(cols)].toarray()
    np.testing.assert_array_equal(subdomain.block_submatrix(A, rows, cols).toarray(), expected)


def test_schwarz_is_symmetric_and_exact_around_the_exact_inverse():
    """Around the exact inverse the preconditioner is the exact inverse; around a block-Jacobi step it is
    symmetric and, with the region solved exactly, removes the error on the region after the last solve."""
    A = spd_bsr()
    blocks = np.array([3, 4, 5, 10, 11, 30])
    region = subdomain.Subdomain(A, blocks, solvers.factorize)
    rng = np.random.default_rng(1)
    r, s = rng.standard_normal(A.shape[0]), rng.standard_normal(A.shape[0])
    exact = spla.splu(A.tocsc())
    M = region.around(spla.LinearOperator(A.shape, matvec=exact.solve, dtype=float))
    np.testing.assert_allclose(M @ r, exact.solve(r), rtol=1e-10, atol=1e-12)
    jacobi = sp.diags(1.0 / A.diagonal())
    M = region.around(spla.LinearOperator(A.shape, matvec=lambda v: jacobi @ v, dtype=float))
    assert abs(s @ (M @ r) - r @ (M @ s)) <= 1e-11 * np.linalg.norm(r) * np.linalg.norm(s)
    x = M @ r
    np.testing.assert_allclose((A @ x - r)[region.dofs], 0.0, atol=1e-10 * np.linalg.norm(r))
