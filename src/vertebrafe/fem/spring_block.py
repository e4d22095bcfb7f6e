"""Preconditioner of the active-set CG: the reference factorisation plus an exact solve on the springs' unknowns.

The direct active-set loop (:mod:`.active_set`) solves ``A = K + Gf^T diag(d) Gf`` for one trial set of
springs after another with CG, preconditioned by the factorisation of a reference ``A0 = K + Gf^T diag(d0) Gf``
(the springs of the reference only). Where thousands of stiff springs differ from the reference (annulus fibres
over the ground substance) ``A0^-1`` alone leaves ``A0^-1 A`` with a spread of eigenvalues up to about 20, and
CG needs about 25 solves per set to 1e-8. The springs change ``A0`` only on the unknowns they touch (``R``,
20,658 of 127,227 on T12-L2 at 2 mm with posterior elements), so :class:`SpringBlock` adds an exact solve of
the current matrix restricted to them, ``Q = R^T (R A R^T)^-1 R``, as a deflation (the A-DEF2 variant of Tang,
Nabben, Vuik and Erlangga, J. Sci. Comput. 39, 2009):

    M = (I - Q A) A0^-1 + Q,    M r = y + Q (r - A y) = y - Q Gf^T diag(d - d0) Gf y,    y = A0^-1 r,

one reference solve and one block solve per application (``r - A y = -Gf^T diag(d - d0) Gf y`` as
``A0 y = r``). From a start whose residual vanishes on ``R`` (:meth:`SpringBlock.start`: ``x + Q (b - A x)``)
every CG residual keeps ``R r = 0`` (the search directions lie in the range of ``I - Q A``, which ``A`` maps
to residuals that ``Q`` annihilates: ``Q A Q = Q``), and on such residuals ``M`` equals the symmetric
multiplicative Schwarz product ``Q + (I - Q A) A0^-1 (I - A Q)`` (which is symmetric positive definite for any
reference), with one block solve instead of two: the same CG iterates in exact arithmetic. It is ``A^-1``
where ``A = A0``. The block solves carry the stiffness the springs add inside ``R``; the reference solve
carries the rest of the model. With it the CG of T12-L2 at 2 mm needs about 10 solves per set to 1e-8 instead
of about 25. The block is factorised once per trial set (numerically only, on a pattern analysed once for
every set and load: :meth:`PardisoCholesky.refactor <vertebrafe.fem.solvers.PardisoCholesky.refactor>`) and
assembled by updating the previous set's entries with the springs that changed.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import solvers


class SpringBlock:
    """The springs' block of ``K + Gf^T diag(d) Gf`` for any spring stiffnesses ``d (ks,)`` and the
    preconditioner above with the reference ``A0 = K + Gf^T diag(d0) Gf`` solved by ``reference`` (a
    callable, ``A0^-1 b``).

    K (N, N) sparse, Gf (ks, N) sparse: the springs' elongations from the free unknowns; d0 (ks,). Counts:
    :attr:`factorizations` (of the block) and :attr:`solves` (with the block's factor).
    """

    def __init__(self, K, Gf, d0, reference):
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
        self._factor = None
        self._factored = None                                           # the d of the factor
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

    def _solve_block(self, d, r):
        if self._factored is None or not np.array_equal(self._factored, d):
            A = self.block(d)
            if self._factor is not None and hasattr(self._factor, "refactor"):
                self._factor.refactor(A)
            else:
                self._factor = solvers.factorize(A)[0]
            self._factored = d.copy()
            self.factorizations += 1
        self.solves += 1
        with solvers.one_blas_thread():      # single vectors: see solvers.Prepared.solve
            return self._factor(r)

    def start(self, d, x, b):
        """``x + Q (b - A x)``: a start for CG on ``A x = b`` whose residual vanishes on the springs' unknowns."""
        r = b[self.unknowns] - (self.K @ x)[self.unknowns] - self.G_block.T @ (d * (self.Gf @ x))
        x = np.array(x, dtype=float)
        x[self.unknowns] += self._solve_block(d, r)
        return x

    def operator(self, d):
        """The preconditioner ``M`` for the stiffnesses ``d`` (``LinearOperator``); the block is factorised
        at its first application (or at :meth:`start`)."""
        d = np.asarray(d, dtype=float)
        extra = d - self.d0
        n, R = self.Gf.shape[1], self.unknowns

        def apply(r):
            y = self.reference(np.asarray(r, dtype=float).reshape(-1))
            y[R] -= self._solve_block(d, self.G_block.T @ (extra * (self.Gf @ y)))
            return y

        return spla.LinearOperator((n, n), matvec=apply, dtype=float)


def _keys(A):
    """Row-major keys ``row * n + column`` of the entries of the CSR matrix ``A`` (sorted if its indices are)."""
    rows = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))
    return rows * A.shape[1] + A.indices
