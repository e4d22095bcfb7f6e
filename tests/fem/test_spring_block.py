"""The springs' block preconditioner of the active-set CG (fem/spring_block.py): the exact inverse where the
reference is the matrix itself, the symmetric Schwarz product on residuals that vanish on the springs' unknowns
(so CG from its start runs as with a symmetric positive-definite preconditioner), and block factors that follow
the trial set."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vertebrafe.fem import solvers
from vertebrafe.fem.spring_block import SpringBlock


def _system(n_side=12, springs=300, seed=0):
    """An SPD stiffness (a 3-D grid Laplacian plus its diagonal, 1728 unknowns: PARDISO's range) and springs
    between random pairs of unknowns inside a sub-box (about a third of the unknowns)."""
    lap = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n_side, n_side))
    eye = sp.identity(n_side)
    K = (sp.kron(sp.kron(lap, eye), eye) + sp.kron(sp.kron(eye, lap), eye) + sp.kron(sp.kron(eye, eye), lap)
         + 0.01 * sp.identity(n_side ** 3)).tocsr()
    rng = np.random.default_rng(seed)
    inside = np.flatnonzero((np.arange(n_side ** 3) % n_side) < n_side // 3)
    a, b = rng.choice(inside, springs), rng.choice(inside, springs)
    keep = a != b
    rows = np.arange(keep.sum())
    G = sp.csr_matrix((np.r_[np.ones(rows.size), -np.ones(rows.size)], (np.r_[rows, rows], np.r_[a[keep], b[keep]])),
                      shape=(rows.size, n_side ** 3))
    k = rng.uniform(10.0, 100.0, rows.size)         # stiff against the grid's unit couplings
    return K, G, k, rng


def test_exact_inverse_when_the_springs_match_the_reference():
    """With the springs of the reference itself, M = (I - Q A) A^-1 + Q = A^-1."""
    K, G, k, rng = _system()
    d = k * (rng.random(k.size) < 0.4)
    A = (K + G.T @ sp.diags(d) @ G).tocsc()
    reference = solvers.factorize(A)[0]
    M = SpringBlock(K, G, d, reference).operator(d)
    b = rng.standard_normal(K.shape[0])
    x = M @ b
    assert np.abs(A @ x - b).max() <= 1e-10 * np.abs(b).max()


def test_deflation_is_the_schwarz_product_and_a_better_preconditioner():
    """Springs that the reference (the grid alone) leaves out. The start ``x + Q (b - A x)`` leaves a residual
    that vanishes on the springs' unknowns; on such residuals M equals the symmetric multiplicative Schwarz
    product ``Q + (I - Q A) A0^-1 (I - A Q)`` (computed here with dense solves of the block), M maps them to
    corrections whose residual change vanishes there too (so CG keeps them), and CG on ``K + G^T D G`` from the
    start needs fewer iterations with M than with the reference factorisation alone."""
    K, G, k, rng = _system()
    reference = solvers.factorize(K.tocsc())[0]
    d = k * (rng.random(k.size) < 0.5)
    block = SpringBlock(K, G, np.zeros(k.size), reference)
    R = block.unknowns
    A = (K + G.T @ sp.diags(d) @ G).tocsr()
    E = A[R][:, R].toarray()

    def Q(v):
        out = np.zeros(K.shape[0])
        out[R] = np.linalg.solve(E, v[R])
        return out

    b = rng.standard_normal(K.shape[0])
    x0 = block.start(d, np.zeros(K.shape[0]), b)
    r = b - A @ x0
    assert np.abs(r[R]).max() <= 1e-10 * np.abs(b).max()
    M = block.operator(d)
    schwarz = Q(r) + reference(r - A @ Q(r))
    schwarz -= Q(A @ schwarz - r)              # (I - Q A) A0^-1 (I - A Q) r + Q r
    z = M @ r
    assert np.abs(z - schwarz).max() <= 1e-10 * np.abs(schwarz).max()
    assert np.abs((A @ z)[R]).max() <= 1e-9 * np.abs(A @ z).max()
    counts = {}
    for name, P, x in (("block", M, x0), ("reference", spla.LinearOperator(A.shape, matvec=reference), None)):
        calls = []
        x, status = spla.cg(A, b, x0=x, rtol=1e-10, atol=0.0, M=P, maxiter=500, callback=calls.append)
        assert status == 0 and np.linalg.norm(A @ x - b) <= 1e-9 * np.linalg.norm(b)
        counts[name] = len(calls)
    assert counts["block"] < counts["reference"]


def test_block_factor_follows_the_set():
    """A new trial set refactorises the block (numerically, on the pattern of every spring, its entries updated
    with the springs that changed); the block's solve equals a fresh factorisation of ``R (K + G^T D G) R^T``."""
    K, G, k, rng = _system()
    block = SpringBlock(K, G, np.zeros(k.size), solvers.factorize(K.tocsc())[0])
    R = block.unknowns
    for _ in range(3):
        d = k * (rng.random(k.size) < 0.5)
        r = rng.standard_normal(R.size)
        exact = spla.spsolve((K + G.T @ sp.diags(d) @ G).tocsc()[R][:, R], r)
        assert np.abs(block._solve_block(d, r) - exact).max() <= 1e-10 * np.abs(exact).max()
    assert block.factorizations == 3
    block._solve_block(d, r)                    # same set: no new factorisation
    assert block.factorizations == 3 and block.solves == 4


def test_refactor_refuses_another_pattern():
    if not solvers.pardiso_available():
        pytest.skip("MKL PARDISO (pypardiso) not installed")
    K, G, k, rng = _system()
    factor = solvers.PardisoCholesky(K.tocsc())
    with pytest.raises(ValueError, match="pattern"):
        factor.refactor((K + G.T @ G).tocsc())
    factor.refactor(2.0 * K)
    b = rng.standard_normal(K.shape[0])
    assert np.abs(2.0 * (K @ factor(b)) - b).max() <= 1e-10 * np.abs(b).max()
