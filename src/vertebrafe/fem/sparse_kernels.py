"""Row-parallel block-sparse products for CG and the AMG cycle, compiled with numba (all cores).

SciPy's sparse products run on one thread. These kernels split the block rows of a BSR matrix over
numba's threads; each row's sum is formed in the same order whatever the number of threads, so the
results do not depend on it and equal SciPy's products to round-off. The transposed product (the AMG
restriction ``P^T r``) sums :data:`TRANSPOSE_CHUNKS` partial results in a fixed order, so it too is
independent of the thread count; it spares the hierarchy an explicit copy of ``P^T``. Each kernel has a
serial twin (:mod:`vertebrafe.fem.jit`), which a process on one numba thread (a study worker) runs and
compiles instead of the parallel build.

Arrays: ``indptr (nb + 1,)``, ``indices (nnzb,)``, ``data (nnzb, r, c)`` of a BSR matrix with sorted or
unsorted block columns; ``data`` is float64 or float32 (the AMG cycle's single-precision operators, see
:func:`vertebrafe.fem.multigrid.single_precision`); vectors and every sum are float64.
"""
import numpy as np
import scipy.sparse.linalg as spla
from numba import njit, prange

from .jit import threaded

#: Row chunks of the transposed product, each with its own partial sum (a fixed number, so that the
#: result does not depend on the thread count; more than the cores of a desktop machine).
TRANSPOSE_CHUNKS = 16
#: Product modes: ``y = A x``, ``y = b - A x``, ``y += A x``.
SET, RESIDUAL, ADD = 0, 1, 2


@njit(cache=True)
def _row_product3(indptr, indices, data, x, i):
    """``(s0, s1, s2) = sum_j A_ij x_j`` over the blocks of row ``i`` of a 3x3-block matrix, unrolled, the sums
    in scalars."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for jj in range(indptr[i], indptr[i + 1]):
        j = indices[jj]
        x0, x1, x2 = x[3 * j], x[3 * j + 1], x[3 * j + 2]
        s0 += data[jj, 0, 0] * x0 + data[jj, 0, 1] * x1 + data[jj, 0, 2] * x2
        s1 += data[jj, 1, 0] * x0 + data[jj, 1, 1] * x1 + data[jj, 1, 2] * x2
        s2 += data[jj, 2, 0] * x0 + data[jj, 2, 1] * x1 + data[jj, 2, 2] * x2
    return s0, s1, s2


@threaded
def _product3(indptr, indices, data, x, b, y, mode):
    """:func:`product` for 3x3 blocks (the finest level and the stiffness matrix), unrolled."""
    nb = indptr.shape[0] - 1
    for i in prange(nb):
        s0, s1, s2 = _row_product3(indptr, indices, data, x, i)
        if mode == SET:
            y[3 * i], y[3 * i + 1], y[3 * i + 2] = s0, s1, s2
        elif mode == RESIDUAL:
            y[3 * i], y[3 * i + 1], y[3 * i + 2] = b[3 * i] - s0, b[3 * i + 1] - s1, b[3 * i + 2] - s2
        else:
            y[3 * i] += s0
            y[3 * i + 1] += s1
            y[3 * i + 2] += s2


@njit(cache=True)
def _row_sum(indptr, indices, data, x, i, s, r, c):
    """``s (r,) = sum_j A_ij x_j`` over the blocks of row ``i``. Called with literal block sizes, it is
    compiled with loops of fixed length (unrolled)."""
    for p in range(r):
        s[p] = 0.0
    for jj in range(indptr[i], indptr[i + 1]):
        j = indices[jj]
        for p in range(r):
            acc = 0.0
            for q in range(c):
                acc += data[jj, p, q] * x[c * j + q]
            s[p] += acc


@threaded
def _product(indptr, indices, data, x, b, y, mode, bounds):
    """:func:`product` for any block shape: rows ``bounds[t] .. bounds[t + 1]`` per task ``t``; the blocks of
    the prolongators and coarse levels (3x6, 6x6) with loops of fixed length (25-45 % less time than loops
    of run-time length on the 1.24M-DOF box)."""
    r, c = data.shape[1], data.shape[2]
    for t in prange(bounds.shape[0] - 1):
        s = np.empty(r)
        for i in range(bounds[t], bounds[t + 1]):
            if r == 3 and c == 6:
                _row_sum(indptr, indices, data, x, i, s, 3, 6)
            elif r == 6 and c == 6:
                _row_sum(indptr, indices, data, x, i, s, 6, 6)
            else:
                _row_sum(indptr, indices, data, x, i, s, r, c)
            for p in range(r):
                if mode == SET:
                    y[r * i + p] = s[p]
                elif mode == RESIDUAL:
                    y[r * i + p] = b[r * i + p] - s[p]
                else:
                    y[r * i + p] += s[p]


@njit(cache=True)
def _scatter_row(indptr, indices, data, x, i, part, r, c):
    """``part += A_i^T x_i``: the blocks of row ``i`` transposed times ``x_i``, added at their columns.
    Called with literal block sizes, it is compiled with loops of fixed length (unrolled)."""
    for jj in range(indptr[i], indptr[i + 1]):
        j = indices[jj]
        for q in range(c):
            acc = 0.0
            for p in range(r):
                acc += data[jj, p, q] * x[r * i + p]
            part[c * j + q] += acc


@threaded
def _transposed_product(indptr, indices, data, x, ncols, bounds):
    """``A^T x`` (ncols,): the rows ``bounds[t] .. bounds[t + 1]`` scatter into partial sum ``t``, then the
    partial sums are added in order."""
    r, c = data.shape[1], data.shape[2]
    nt = bounds.shape[0] - 1
    part = np.zeros((nt, ncols))
    for t in prange(nt):
        for i in range(bounds[t], bounds[t + 1]):
            if r == 3 and c == 6:      # the finest prolongator's restriction; the other levels are small
                _scatter_row(indptr, indices, data, x, i, part[t], 3, 6)
            else:
                _scatter_row(indptr, indices, data, x, i, part[t], r, c)
    y = np.empty(ncols)
    for k in prange(ncols):
        acc = 0.0
        for t in range(nt):
            acc += part[t, k]
        y[k] = acc
    return y


def row_bounds(indptr, chunks):
    """Row boundaries ``(chunks + 1,)`` splitting the block rows into ``chunks`` runs of about equal
    numbers of blocks."""
    nb = indptr.size - 1
    chunks = max(1, min(chunks, nb))
    cut = np.searchsorted(indptr, np.linspace(0, indptr[-1], chunks + 1)[1:-1])
    return np.concatenate([[0], np.clip(cut, 0, nb), [nb]]).astype(np.int64)


class BlockMatrix:
    """The arrays of a BSR matrix ``A`` (scipy; a CSR matrix is taken as 1x1 blocks) for the kernels:
    ``A @ x``, ``b - A @ x``, ``y += A @ x`` and ``A^T @ x`` on all threads. Shares ``A``'s arrays; float32
    values stay float32 (half the memory traffic; the products still sum in float64), others are taken
    as float64."""

    def __init__(self, A):
        if not hasattr(A, "blocksize"):
            A = A.tobsr(blocksize=(1, 1))
        self.shape = A.shape
        self.blocksize = A.blocksize
        self.indptr, self.indices = A.indptr, A.indices
        self.data = np.ascontiguousarray(A.data, dtype=np.float32 if A.dtype == np.float32 else np.float64)
        self._rows = row_bounds(self.indptr, 4 * TRANSPOSE_CHUNKS)
        self._chunks = row_bounds(self.indptr, TRANSPOSE_CHUNKS)

    def _run(self, x, b, y, mode):
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if self.blocksize == (3, 3):
            _product3(self.indptr, self.indices, self.data, x, b, y, mode)
        else:
            _product(self.indptr, self.indices, self.data, x, b, y, mode, self._rows)
        return y

    def matvec(self, x):
        """``A x`` (a new vector)."""
        return self._run(x, _EMPTY, np.empty(self.shape[0]), SET)

    def residual(self, x, b):
        """``b - A x`` (a new vector)."""
        return self._run(x, np.ascontiguousarray(b, dtype=np.float64), np.empty(self.shape[0]), RESIDUAL)

    def add_product(self, x, y):
        """``y += A x`` in place (``y`` float64, contiguous)."""
        self._run(x, _EMPTY, y, ADD)

    def rmatvec(self, x):
        """``A^T x`` (a new vector)."""
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        return _transposed_product(self.indptr, self.indices, self.data, x, self.shape[1], self._chunks)

    def operator(self):
        """A scipy ``LinearOperator`` whose products run on these kernels (for ``scipy.sparse.linalg.cg``)."""
        return spla.LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec, dtype=np.float64)


_EMPTY = np.empty(0)
