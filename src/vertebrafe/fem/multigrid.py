"""The V-cycle of a pyamg multigrid hierarchy, run by the parallel kernels of
:mod:`vertebrafe.fem.sparse_kernels` (all cores).

pyamg's own preconditioner (``aspreconditioner``) runs its products on one thread and computes two
fine-level residuals per application that CG does not use (one before the cycle, one after), each as
costly as a product with the stiffness matrix. This cycle is the same V-cycle (pre-smoothing, residual,
restriction ``P^T r``, coarse correction, prolongation, post-smoothing, a direct solve on the coarsest
level) without them, and with the restriction computed from ``P`` itself, so the hierarchy needs no
copy of ``P^T``.
"""
import numpy as np
import scipy.sparse.linalg as spla

from .sparse_kernels import BlockMatrix


class VCycle:
    """One V-cycle of the hierarchy ``ml`` (pyamg ``MultilevelSolver`` whose levels have ``A``, ``P``,
    ``presmoother`` and ``postsmoother``) applied to a residual: ``cycle(b) -> x`` with ``x = 0`` at the
    start of every level. Keeps the operators, smoothers and coarse solver, not ``ml``'s ``R`` or ``B``.
    """

    def __init__(self, ml):
        self.levels = [(BlockMatrix(level.A), BlockMatrix(level.P), level.A, level.presmoother,
                        level.postsmoother) for level in ml.levels[:-1]]
        self.coarse_A = ml.levels[-1].A
        self.coarse_solver = ml.coarse_solver
        self.shape = ml.levels[0].A.shape

    def __call__(self, b):
        b = np.ascontiguousarray(b, dtype=np.float64).reshape(-1)
        if not self.levels:
            return np.asarray(self.coarse_solver(self.coarse_A, b), dtype=np.float64).reshape(-1)
        return self._cycle(0, b)

    def _cycle(self, level, b):
        A, P, A_sp, presmoother, postsmoother = self.levels[level]
        x = np.zeros_like(b)
        presmoother(A_sp, x, b)
        coarse_b = P.rmatvec(A.residual(x, b))
        if level + 1 == len(self.levels):
            coarse_x = np.asarray(self.coarse_solver(self.coarse_A, coarse_b), dtype=np.float64).reshape(-1)
        else:
            coarse_x = self._cycle(level + 1, coarse_b)
        P.add_product(coarse_x, x)
        postsmoother(A_sp, x, b)
        return x

    def operator(self):
        """The cycle as a scipy ``LinearOperator`` (the CG preconditioner)."""
        return spla.LinearOperator(self.shape, matvec=self, dtype=np.float64)
