"""Preconditioner of the active-set CG: the reference factorisation plus an exact solve on the springs' unknowns.

The direct active-set loop (:mod:`.active_set`) solves ``A = K + Gf^T diag(d) Gf`` for one trial set of
springs after another with CG, preconditioned by the factorisation of a reference ``A0`` (the springs of the
reference only). Where thousands of stiff springs differ from the reference (annulus fibres over the
ground substance) ``A0^-1`` alone leaves ``A0^-1 A`` with a spread of eigenvalues up to about 20, and CG
needs about 25 solves per set to 1e-8. The springs change ``A0`` only on the unknowns they touch (``R``,
20,658 of 127,227 on T12-L2 at 2 mm with posterior elements), so :class:`SpringBlock` adds an exact solve of
the current matrix restricted to them, ``L = R^T (R A R^T)^-1 R``, in a symmetric multiplicative
(Schwarz) preconditioner: a block solve, a reference solve of the remaining residual, a block solve again,

    M = L + (I - L A) A0^-1 (I - A L),

which is symmetric positive definite whatever ``A0`` (``L A L = L``; ``v^T M v = 0`` forces ``R v = 0`` and
then ``v^T A0^-1 v = 0``) and equals ``A^-1`` where ``A = A0``. The block solves carry the stiffness the
springs add inside ``R``; the reference solve carries the rest of the model. With it the CG of T12-L2 at
2 mm needs about 10 solves per set to 1e-8 instead of about 25. The block is factorised once per trial set
(numerically only, on a pattern analysed once for every set and load: :meth:`PardisoCholesky.refactor
<vertebrafe.fem.solvers.PardisoCholesky.refactor>`), lazily, when CG first needs it.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import solvers


class SpringBlock:
    """The springs' block of ``K + Gf^T diag(d) Gf`` for any spring stiffnesses ``d (ks,)`` and the
    preconditioner above with the reference solve ``reference`` (a callable, ``A0^-1 b``).

    K (N, N) sparse, Gf (ks, N) sparse: the springs' elongations from the free unknowns. Counts:
    :attr:`factorizations` (of the block) and :attr:`solves` (with the block's factor).
    """

    def __init__(self, K, Gf, reference):
        self.reference = reference
        Gf = Gf.tocsr()
        self.unknowns = np.unique(Gf.indices[Gf.data != 0])             # R: the unknowns the springs touch
        Kc = K.tocsr()
        self.Gf = Gf
        self.G_block = Gf[:, self.unknowns].tocsr()
        self.K_columns = Kc[:, self.unknowns].tocsr()                    # K R^T
        self.K_rows = Kc[self.unknowns].tocsr()                          # R K
        self.K_block = self.K_rows[:, self.unknowns].tocsr()             # R K R^T
        # one pattern for every set: the block with every spring (absolute values: no cancellation)
        pattern = (abs(self.K_block) + abs(self.G_block).T @ abs(self.G_block)).tocsr()
        pattern.sort_indices()
        self._pattern = pattern
        self._keys = _keys(pattern)
        self._factor = None
        self._factored = None                                           # the d of the factor
        self.factorizations = 0
        self.solves = 0

    def block(self, d):
        """``R (K + Gf^T diag(d) Gf) R^T`` on the pattern of every spring (explicit zeros kept)."""
        A = (self.K_block + self.G_block.T @ sp.diags(d) @ self.G_block).tocsr()
        A.sum_duplicates()
        data = np.zeros(self._pattern.nnz)
        data[np.searchsorted(self._keys, _keys(A))] = A.data
        return sp.csr_matrix((data, self._pattern.indices, self._pattern.indptr), shape=self._pattern.shape)

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

    def operator(self, d):
        """The preconditioner ``M`` for the stiffnesses ``d`` (``LinearOperator``); the block is factorised
        at its first application."""
        d = np.asarray(d, dtype=float)
        n, R = self.Gf.shape[1], self.unknowns

        def apply(r):
            r = np.asarray(r, dtype=float).reshape(-1)
            y_block = self._solve_block(d, r[R])
            y = self.reference(r - self.K_columns @ y_block - self.Gf.T @ (d * (self.G_block @ y_block)))
            y[R] += y_block
            rest = r[R] - self.K_rows @ y - self.G_block.T @ (d * (self.Gf @ y))
            y[R] += self._solve_block(d, rest)
            return y

        return spla.LinearOperator((n, n), matvec=apply, dtype=float)


def _keys(A):
    """Row-major keys ``row * n + column`` of the entries of the CSR matrix ``A`` (sorted if its indices are)."""
    rows = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))
    return rows * A.shape[1] + A.indices
