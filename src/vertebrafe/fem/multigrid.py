"""The V-cycle of a pyamg multigrid hierarchy, run by the parallel kernels of
:mod:`vertebrafe.fem.sparse_kernels` (all cores), and a leaner set-up of pyamg's smoothed aggregation
(:func:`lean_prolongation_smoothing`).

pyamg's own preconditioner (``aspreconditioner``) runs its products on one thread and computes two
fine-level residuals per application that CG does not use (one before the cycle, one after), each as
costly as a product with the stiffness matrix. This cycle is the same V-cycle (pre-smoothing, residual,
restriction ``P^T r``, coarse correction, prolongation, post-smoothing, a direct solve on the coarsest
level) without them, and with the restriction computed from ``P`` itself, so the hierarchy needs no
copy of ``P^T``.
"""
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit, prange

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


@njit(parallel=True, cache=True)
def _abs_row_sums(indptr, data):
    """Sum of the absolute values of every scalar row ``(nb r,)`` of a BSR matrix (block arrays)."""
    nb, r, c = indptr.shape[0] - 1, data.shape[1], data.shape[2]
    out = np.zeros(nb * r)
    for i in prange(nb):
        for jj in range(indptr[i], indptr[i + 1]):
            for p in range(r):
                s = 0.0
                for q in range(c):
                    s += abs(data[jj, p, q])
                out[r * i + p] += s
    return out


def jacobi_prolongation(S, T, C, B, omega=4.0 / 3.0, degree=1, filter_entries=False, weighting="diagonal"):
    """pyamg's ``jacobi_prolongation_smoother`` (same arguments and result, ``P = T - omega D^-1 S T``) for
    the ``"local"`` weighting (D: each row's absolute sum, Gershgorin) without the three full copies of
    ``S`` that pyamg makes (``|S|``, ``D^-1 S`` and ``omega D^-1 S``; on the finest level each is as large as
    the stiffness matrix and together they set the peak memory of the set-up): the rows of ``S T`` are
    scaled in place instead. Other weightings go to pyamg's function."""
    from pyamg.aggregation import smooth

    if weighting != "local" or filter_entries or not hasattr(S, "blocksize") or not hasattr(T, "blocksize"):
        return smooth.jacobi_prolongation_smoother(S, T, C, B, omega=omega, degree=degree,
                                                   filter_entries=filter_entries, weighting=weighting)
    D = _abs_row_sums(S.indptr, np.ascontiguousarray(S.data))
    scale = np.zeros_like(D)
    scale[D != 0] = omega / D[D != 0]
    P = T
    for _ in range(degree):
        U = (S @ P).tobsr(blocksize=P.blocksize)
        U.data *= scale.reshape(-1, P.blocksize[0])[np.repeat(np.arange(U.shape[0] // P.blocksize[0]),
                                                             np.diff(U.indptr))][:, :, None]
        P = P - U
        del U
    return Prolongator((P.data, P.indices, P.indptr), shape=P.shape) if P.dtype.kind == "f" else P


#: Row chunks of the fine level in :func:`galerkin_product`: its temporaries are about this fraction of
#: ``A P``.
GALERKIN_CHUNKS = 8


def galerkin_product(A, P, chunks=GALERKIN_CHUNKS, threads=None):
    """The coarse operator ``P^T A P`` of the symmetric BSR ``A`` and BSR ``P`` (same block rows), summed
    over ``chunks`` row chunks ``k`` as ``P_k^T (A_k P)``, where ``A_k``, ``P_k`` are views of the rows of
    chunk ``k``. Equal to pyamg's ``R @ A @ P`` with ``R = P^T`` to round-off, without ``R`` (a copy of
    ``P``) and ``R A`` (the largest temporary of the set-up: on the finest level of the 1.24M-DOF box
    larger than the stiffness matrix).

    ``threads`` (default numba's thread count) chunks are formed at a time, side by side (SciPy's sparse
    products release the GIL), and summed in chunk order: the same result for any thread count."""
    r, c = A.blocksize[0], P.blocksize[1]
    nb = A.indptr.size - 1
    bounds = np.linspace(0, nb, max(1, min(chunks, nb)) + 1).astype(np.int64)
    spans = [(b0, b1) for b0, b1 in zip(bounds[:-1], bounds[1:]) if b1 > b0]
    threads = max(1, min(numba.get_num_threads() if threads is None else threads, len(spans)))

    def term(span):
        b0, b1 = span
        rows = slice(A.indptr[b0], A.indptr[b1])
        Ak = sp.bsr_matrix((A.data[rows], A.indices[rows], A.indptr[b0:b1 + 1] - A.indptr[b0]),
                           shape=((b1 - b0) * r, A.shape[1]))
        prow = slice(P.indptr[b0], P.indptr[b1])
        Pk = sp.bsr_matrix((P.data[prow], P.indices[prow], P.indptr[b0:b1 + 1] - P.indptr[b0]),
                           shape=((b1 - b0) * r, P.shape[1]))
        return (Pk.T @ (Ak @ P)).tobsr(blocksize=(c, c))

    total = None
    with ThreadPoolExecutor(threads) as pool:
        for w in range(0, len(spans), threads):      # one wave at a time: at most `threads` terms held
            for t in pool.map(term, spans[w:w + threads]):
                total = t if total is None else (total + t).tobsr(blocksize=(c, c))
                del t
    total.sort_indices()
    return total


class Prolongator(sp.bsr_matrix):
    """A real BSR prolongator ``P`` whose transpose pyamg never forms: pyamg's restriction ``R =
    P.T.conjugate()`` is a :class:`_Restriction` and its Galerkin operator ``R @ A @ P`` is
    :func:`galerkin_product` (``transpose()`` itself is scipy's)."""

    @property
    def T(self):
        return _Restriction(self)


class _Restriction:
    """``P^T`` of a real :class:`Prolongator`, only for ``R @ A @ P``."""

    def __init__(self, P):
        self.P = P

    def conjugate(self):
        return self

    def __matmul__(self, A):
        return _Restricted(self.P, A)


class _Restricted:
    """``P^T A``, waiting for its right factor ``P``."""

    def __init__(self, P, A):
        self.P, self.A = P, A

    def __matmul__(self, P):
        if P is not self.P:
            raise ValueError("the restricted operator P^T A takes P itself as its right factor")
        return galerkin_product(self.A, P)


@contextmanager
def lean_prolongation_smoothing():
    """Within the block, pyamg's smoothed aggregation smooths its prolongators with :func:`jacobi_prolongation`
    and forms its coarse operators with :func:`galerkin_product` (no restriction matrices kept)."""
    from pyamg.aggregation import aggregation

    original = aggregation.jacobi_prolongation_smoother
    aggregation.jacobi_prolongation_smoother = jacobi_prolongation
    try:
        yield
    finally:
        aggregation.jacobi_prolongation_smoother = original
