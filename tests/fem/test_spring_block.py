"""The springs' block preconditioner of the active-set CG (fem/spring_block.py): the exact inverse where the
reference is the matrix itself, the symmetric Schwarz product on residuals that vanish on the springs' unknowns
(so CG from its start runs as with a symmetric positive-definite preconditioner), and block factors that follow
the trial set."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.fem import Model, active_set, solvers
from vertebrafe.fem.bodies import Bodies
from vertebrafe.fem.spring_block import SpringBlock
from vertebrafe.springs import spring_set


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


@pytest.mark.parametrize("blocks", [True, False])
def test_refactor_refuses_another_pattern(blocks):
    """Refactorisation on the analysed pattern, in PARDISO's variable block format and in the plain one (the
    springs' block)."""
    if not solvers.pardiso_available():
        pytest.skip("MKL PARDISO (pypardiso) not installed")
    K, G, k, rng = _system()
    factor = solvers.PardisoCholesky(K.tocsc(), blocks=blocks)
    with pytest.raises(ValueError, match="pattern"):
        factor.refactor((K + G.T @ G).tocsc())
    factor.refactor(2.0 * K)
    b = rng.standard_normal(K.shape[0])
    assert np.abs(2.0 * (K @ factor(b)) - b).max() <= 1e-10 * np.abs(b).max()


def _two_bodies():
    """Two stiff blocks (1000 MPa, 3 x 3 x 3 mm, cells of 1 mm) joined by a soft layer (1 MPa, 1 mm thick),
    the lower block's base fixed, the upper block's top tied to a rigid plate, and four stiff springs
    (1e4 N/mm) across the layer at the corners: the blocks' relative motions that the springs restrain are
    the stiff directions that a reference without the springs misses. Returns ``(K, Gf, free, bodies)``."""
    mesh = vf.box(lengths=(3.0, 3.0, 7.0), shape=(3, 3, 7))
    z = mesh.points[mesh.cells].mean(axis=1)[:, 2]
    labels = np.where(z < 3.0, 0, np.where(z > 4.0, 1, -1))
    model = Model(mesh, E=np.where(labels >= 0, 1000.0, 1.0), nu=0.3)
    model.fix(mesh.node_sets["zmin"])
    plate = model.rigid_plate(mesh.node_sets["zmax"])
    K, _, _ = model.stiffness()
    p = mesh.points
    n, N = mesh.n_points, K.shape[0]
    corners = np.flatnonzero(np.isin(p[:, 0], (0.0, 3.0)) & np.isin(p[:, 1], (0.0, 3.0)))
    lower, upper = corners[p[corners, 2] == 3.0], corners[p[corners, 2] == 4.0]
    lower, upper = lower[np.lexsort(p[lower, :2].T)], upper[np.lexsort(p[upper, :2].T)]
    springs = spring_set(p, lower, upper, 1e4, "tension")
    free = np.ones(N, bool)
    free[(3 * np.r_[mesh.node_sets["zmin"], plate.nodes][:, None] + np.arange(3)).ravel()] = False
    Gf = (springs.gradient(n) @ active_set.node_map(n, model.plates, p, N) @ sp.diags(free.astype(float))).tocsr()
    coords = np.concatenate([p, np.repeat(plate.center[None], 2, axis=0)])
    rotation = np.zeros(n + 2, bool)
    rotation[n + 1] = True
    return K, Gf, springs.stiffness, free, Bodies(labels, mesh.cells, [plate.nodes], coords, rotation, free), coords


def test_bodies_modes_are_the_rigid_motions_of_each_body():
    """Six orthonormal modes per body on its free unknowns off the excluded ones; the upper block's modes move its
    plate with it (the top nodes are tied to the plate): a rigid motion of either block, restricted there, lies
    in the span of that block's modes."""
    K, Gf, k, free, bodies, coords = _two_bodies()
    R = np.unique(Gf.indices)
    W = bodies.modes(R).toarray()
    assert W.shape[1] == 12
    assert np.abs(W.T @ W - np.eye(12)).max() <= 1e-12
    assert not W[R].any() and not W[~free].any()
    rigid = solvers.rigid_body_modes(coords - [1.0, -2.0, 3.0], np.arange(coords.shape[0]) == coords.shape[0] - 1)
    for b in (0, 1):
        rows = (np.repeat(bodies.block, 3) == b) & free
        rows[R] = False
        motion = np.where(rows[:, None], rigid, 0.0)
        assert np.abs(W @ (W.T @ motion) - motion).max() <= 1e-12 * np.abs(motion).max()
        assert np.count_nonzero(np.abs(W[rows]).sum(axis=0)) == 6
    assert bodies.block[-2:].tolist() == [1, 1]                   # the plate moves with the upper block


def test_bodies_in_the_deflation_remove_the_restrained_relative_motions():
    """Springs taut, a reference without them (K alone). Deflating the springs' unknowns alone leaves the blocks'
    relative motions that the four vertical corner springs restrain (the axial translation and the two tilts;
    not the shears and the twist, which they do not stretch to first order) as three eigenvalues above 10 of the
    preconditioned operator: the blocks (1000 MPa) tied at their corners against the soft layer (1 MPa). With
    the bodies' modes in the deflation none is left above 10, and the largest eigenvalue is the largest one below
    10 without them (by interlacing no deflation space can remove more than its outliers from below). The start
    leaves a residual that vanishes on the springs' unknowns and on the modes, M equals the symmetric Schwarz
    product on such residuals (dense ``Q = Z (Z^T A Z)^-1 Z^T``, ``Z = [R^T, W]``) and keeps them there, and
    CG reaches the direct solution in fewer iterations."""
    K, Gf, k, free, bodies, _ = _two_bodies()
    reference = solvers.factorize(K.tocsc())[0]
    A = (K + Gf.T @ sp.diags(k) @ Gf).toarray()
    A0inv = np.linalg.inv(K.toarray())
    eigenvalues, iterations = {}, {}
    for name, b in (("springs", None), ("bodies", bodies)):
        block = SpringBlock(K, Gf, np.zeros(k.size), reference, b)
        Z = np.hstack([np.eye(K.shape[0])[:, block.unknowns], block.modes.toarray()])
        Q = Z @ np.linalg.solve(Z.T @ A @ Z, Z.T)
        I = np.eye(K.shape[0])
        schwarz = Q + (I - Q @ A) @ A0inv @ (I - A @ Q)
        eigenvalues[name] = np.sort(np.linalg.eigvals(schwarz @ A).real)
        f = np.random.default_rng(1).standard_normal(K.shape[0]) * free
        x0 = block.start(k, np.zeros(K.shape[0]), f)
        r = f - A @ x0
        assert np.abs(Z.T @ r).max() <= 1e-10 * np.abs(f).max()
        z = block.operator(k) @ r
        assert np.abs(z - schwarz @ r).max() <= 1e-10 * np.abs(z).max()
        assert np.abs(Z.T @ (A @ z)).max() <= 1e-9 * np.abs(A @ z).max()
        calls = []
        x, status = spla.cg(A, f, x0=x0, rtol=1e-10, atol=0.0, M=block.operator(k), maxiter=200, callback=calls.append)
        assert status == 0 and np.abs(x - np.linalg.solve(A, f)).max() <= 1e-8 * np.abs(x).max()
        iterations[name] = len(calls)
    springs, bodies_ = eigenvalues["springs"], eigenvalues["bodies"]
    assert np.count_nonzero(springs > 10.0) == 3 and bodies_.max() < 10.0
    assert abs(bodies_.max() - springs[springs < 10.0].max()) <= 1e-6 * bodies_.max()
    assert iterations["bodies"] < iterations["springs"]


def test_model_bodies_are_checked():
    """``Model.bodies``: one integer label per cell, -1 for none; anything else is refused naming the field."""
    model = Model(vf.box(shape=(2, 1, 1)), E=1.0, nu=0.3)
    model.bodies = [0, -1]
    assert model.bodies.tolist() == [0, -1]
    for bad, match in (([0], r"shape \(1,\)"), ([0.0, 1.0], "dtype float"), ([0, -2], "contains -2")):
        with pytest.raises(InputError, match=match):
            model.bodies = bad
    model.bodies = None
    assert model.bodies is None
