"""Preconditioner of the active-set CG: the reference factorisation plus an exact solve on the springs' unknowns
and on the bodies' rigid motions.

The direct active-set loop (:mod:`.active_set`) solves ``A = K + Gf^T diag(d) Gf`` for one trial set of
springs after another with CG, preconditioned by the factorisation of a reference ``A0 = K + Gf^T diag(d0) Gf``
(the springs of the reference only). Where thousands of stiff springs differ from the reference (annulus fibres
over the ground substance) ``A0^-1`` alone leaves ``A0^-1 A`` with a spread of eigenvalues up to about 20, and
CG needs about 25 solves per set to 1e-8. The springs change ``A0`` only on the unknowns they touch (``R``,
20,658 of 127,227 on T12-L2 at 2 mm with posterior elements), so :class:`SpringBlock` adds an exact solve of
the current matrix restricted to them as a deflation (the A-DEF2 variant of Tang, Nabben, Vuik and Erlangga,
J. Sci. Comput. 39, 2009) on the space ``Z = [R^T, W]``:

    M = (I - Q A) A0^-1 + Q,    Q = Z (Z^T A Z)^-1 Z^T,    M r = y + Q (r - A y),    y = A0^-1 r,

``r - A y = -Gf^T diag(d - d0) Gf y`` (as ``A0 y = r``) living on ``R``. ``W`` holds the rigid-body modes of
the model's bodies (:mod:`.bodies`: the vertebrae) off ``R``: the stiff facet and ligament springs restrain
the vertebrae's relative motions, which the reference sees only through the discs (eigenvalues of 12-300 of
the operator deflated on ``R`` alone on T12-L2 at 2 mm). No spring acts on ``W``, so ``R A W = R K W`` and
``W^T A W = W^T K W`` for every set, and ``Z^T A Z = [[B, C], [C^T, W^T K W]]`` (``B = R A R^T`` the block)
is solved by block elimination: one block solve per application plus small dense products with ``B^-1 C``
and the Schur complement ``W^T K W - C^T B^-1 C`` (``m x m``, 18 for three vertebrae), both made once per
trial set. So each application costs one reference solve and one block solve, as without bodies.
From a start whose residual vanishes on ``Z`` (:meth:`SpringBlock.start`: ``x + Q (b - A x)``) every CG
residual keeps ``Z^T r = 0`` (the search directions lie in the range of ``I - Q A``, which ``A`` maps to
residuals that ``Q`` annihilates: ``Q A Q = Q``), and on such residuals ``M`` equals the symmetric
multiplicative Schwarz product ``Q + (I - Q A) A0^-1 (I - A Q)`` (which is symmetric positive definite for any
reference), with one coarse solve instead of two: the same CG iterates in exact arithmetic. It is ``A^-1``
where ``A = A0``. The block solves carry the stiffness the springs add inside ``R``, the modes the vertebrae's
relative motions, the reference solve the rest of the model. On T12-L2 at 2 mm the final set's CG needs 15
iterations to 1e-8 from the start with ``R`` alone (about 25 with the reference alone) and 11 with the bodies
(benchmarks/README.md, "Bodies' rigid motions in the deflation"). The block is factorised once per trial set
(numerically only, on a pattern analysed once for every set and load: :meth:`PardisoCholesky.refactor
<vertebrafe.fem.solvers.PardisoCholesky.refactor>`) and assembled by updating the previous set's entries
with the springs that changed. Every call on the block's factor (analysis, refactorisation, solves) runs on
one BLAS thread: MKL PARDISO refactorised at another thread count than its solves ran at can crash or return a
wrong factor.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import solvers


class SpringBlock:
    """The springs' block of ``K + Gf^T diag(d) Gf`` for any spring stiffnesses ``d (ks,)`` and the
    preconditioner above with the reference ``A0 = K + Gf^T diag(d0) Gf`` solved by ``reference`` (a
    callable, ``A0^-1 b``), its deflation space widened by the rigid-body modes of ``bodies`` (a
    :class:`~vertebrafe.fem.bodies.Bodies`, or None).

    K (N, N) sparse, Gf (ks, N) sparse: the springs' elongations from the free unknowns; d0 (ks,). Counts:
    :attr:`factorizations` (of the block) and :attr:`solves` (with the block's factor, one right-hand side
    each; every factorisation with bodies also solves the ``m`` columns of ``R K W`` at once).
    """

    def __init__(self, K, Gf, d0, reference, bodies=None):
        self.reference = reference
        self.K = K
        Gf = Gf.tocsr()
        self.unknowns = np.unique(Gf.indices[Gf.data != 0])             # R: the unknowns the springs touch
        self.Gf = Gf
        self.d0 = np.asarray(d0, dtype=float)
        self.G_block = Gf[:, self.unknowns].tocsr()
        K_block = K.tocsr()[self.unknowns][:, self.unknowns].tocsr()        # R K R^T
        # one pattern for every set: the block with every spring (absolute values: no cancellation)
        pattern = (abs(K_block) + abs(self.G_block).T @ abs(self.G_block)).tocsr()
        pattern.sort_indices()
        self._pattern = pattern
        self._keys = _keys(pattern)
        self._data = np.zeros(pattern.nnz)                              # the block of the springs in _assembled
        self._add(K_block)
        self._assembled = np.zeros(Gf.shape[0])
        # W: the bodies' modes off R (the same space with R^T), so no spring acts on them: R A W = R K W and
        # W^T A W = W^T K W for every set
        self.modes = bodies.modes(self.unknowns) if bodies is not None else sp.csr_matrix((K.shape[0], 0))
        KW = (K @ self.modes).tocsr()
        self._coupling = KW[self.unknowns].toarray()                    # C = R K W (nR, m)
        self._modes_matrix = (self.modes.T @ KW).toarray()              # W^T K W (m, m)
        self._factor = None
        self._factored = None                                           # the d of the factor
        self._bordered = None                                           # B^-1 C and the Schur factor of the set
        self.factorizations = 0
        self.solves = 0

    def _add(self, A):
        """Add the entries of the CSR matrix ``A`` (on the pattern, duplicates summed) to the block."""
        A.sum_duplicates()
        self._data[np.searchsorted(self._keys, _keys(A))] += A.data

    def block(self, d):
        """``R (K + Gf^T diag(d) Gf) R^T`` on the pattern of every spring (explicit zeros kept): the springs
        whose stiffness differs from the last assembled set's are added with the difference."""
        changed = np.flatnonzero(d != self._assembled)
        if changed.size:
            G = self.G_block[changed]
            self._add((G.T @ sp.diags(d[changed] - self._assembled[changed]) @ G).tocsr())
            self._assembled = d.copy()
        return sp.csr_matrix((self._data.copy(), self._pattern.indices, self._pattern.indptr),
                             shape=self._pattern.shape)

    def _factorize(self, d):
        """Factorise the block of the set ``d`` (if not the last one) and, with bodies, the Schur complement
        ``S = W^T K W - C^T B^-1 C`` of the coarse matrix ``Z^T A Z = [[B, C], [C^T, W^T K W]]``."""
        if self._factored is not None and np.array_equal(self._factored, d):
            return
        A = self.block(d)
        with solvers.one_blas_thread():      # one thread for every call on this factor: see the module docstring
            if self._factor is not None and hasattr(self._factor, "refactor"):
                self._factor.refactor(A)
            else:
                self._factor = solvers.factorize(A, blocks=False)[0]  # refactorised for every set: plain format
            if self.modes.shape[1]:
                X = self._factor(self._coupling)                        # B^-1 C, m right-hand sides at once
        self._factored = d.copy()
        self.factorizations += 1
        if self.modes.shape[1]:
            S = self._modes_matrix - self._coupling.T @ X
            self._bordered = X, sla.cho_factor(0.5 * (S + S.T))

    def _solve_block(self, d, r):
        self._factorize(d)
        self.solves += 1
        with solvers.one_blas_thread():      # single vectors: see solvers.Prepared.solve
            return self._factor(r)

    def _coarse(self, d, g, h):
        """``(Z^T A Z)^-1 [g; h]`` for ``Z = [R^T, W]``: ``(u_R (nR,), u_W (m,))`` by block elimination."""
        z = self._solve_block(d, g)
        if not self.modes.shape[1]:
            return z, np.zeros(0)
        X, S = self._bordered
        v = sla.cho_solve(S, h - self._coupling.T @ z)
        return z - X @ v, v

    def start(self, d, x, b):
        """``x + Q (b - A x)``: a start for CG on ``A x = b`` whose residual vanishes on the deflation space
        (the springs' unknowns and the bodies' modes)."""
        r = b - self.K @ x - self.Gf.T @ (d * (self.Gf @ x))
        u, v = self._coarse(d, r[self.unknowns], self.modes.T @ r)
        x = np.array(x, dtype=float)
        x[self.unknowns] += u
        return x + self.modes @ v

    def operator(self, d):
        """The preconditioner ``M`` for the stiffnesses ``d`` (``LinearOperator``); the block is factorised
        at its first application (or at :meth:`start`)."""
        d = np.asarray(d, dtype=float)
        extra = d - self.d0
        n, R = self.Gf.shape[1], self.unknowns
        none = np.zeros(self.modes.shape[1])

        def apply(r):
            y = self.reference(np.asarray(r, dtype=float).reshape(-1))
            u, v = self._coarse(d, -(self.G_block.T @ (extra * (self.Gf @ y))), none)     # Q (r - A y)
            y[R] += u
            return y + self.modes @ v

        return spla.LinearOperator((n, n), matvec=apply, dtype=float)


def _keys(A):
    """Row-major keys ``row * n + column`` of the entries of the CSR matrix ``A`` (sorted if its indices are)."""
    rows = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))
    return rows * A.shape[1] + A.indices
