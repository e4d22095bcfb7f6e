"""An exact solve on a subdomain around a preconditioner: symmetric multiplicative Schwarz.

For the nodes of a nearly incompressible region (the nucleus at nu 0.499, bulk modulus 500 times the shear
modulus) smoothed aggregation has no cheap near-kernel: the region's volume-preserving motions are soft in
shear and stiff in volume, and neither the rigid-body modes of the aggregates nor a point smoother captures
them. Solving that region exactly before and after the V-cycle ``V``,

    x = A_d^-1 r_d;  x += V (r - A x);  x += A_d^-1 (r - A x)_d,

(``A_d`` the matrix on the region's unknowns) removes the error there at every application; the result is
a symmetric positive-definite preconditioner when ``V`` is one (Smith, Bjorstad & Gropp 1996, ch. 1). The
residual updates touch only the region's rows and the columns next to it (:class:`Subdomain`).
"""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .sparse_kernels import BlockMatrix


def block_submatrix(A, rows, cols):
    """``A[rows][:, cols]`` of the BSR ``A`` on block indices (``rows``, ``cols``: ascending block rows and
    columns), as BSR with the same block size, from ``A``'s arrays (no scalar conversion)."""
    r, c = A.blocksize
    renumber = np.full(A.shape[1] // c, -1, np.int64)
    renumber[cols] = np.arange(cols.size)
    counts = np.diff(A.indptr)[rows]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    entries = np.repeat(A.indptr[rows] - offsets, counts) + np.arange(counts.sum())
    new = renumber[A.indices[entries]]
    keep = new >= 0
    row_of = np.repeat(np.arange(rows.size), counts)[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=rows.size))])
    return sp.bsr_matrix((A.data[entries[keep]], new[keep], indptr), shape=(rows.size * r, cols.size * c))


class Subdomain:
    """The exact solve of the BSR matrix ``A`` (symmetric positive definite) on the block rows ``blocks``
    (ascending), factorised once by ``factorize(A_d) -> (solve, name)`` (``solvers.factorize``), and the
    couplings of those rows: ``A`` restricted to them and their neighbouring blocks, both ways.
    :meth:`around` puts it around a preconditioner."""

    def __init__(self, A, blocks, factorize):
        r = A.blocksize[0]
        rows = block_submatrix(A, blocks, np.arange(A.shape[1] // r))
        near = np.unique(rows.indices)                          # block columns coupled to the region
        self.dofs = (r * blocks[:, None] + np.arange(r)).ravel()
        self.near_dofs = (r * near[:, None] + np.arange(r)).ravel()
        self.region_near = BlockMatrix(block_submatrix(A, blocks, near))       # A[region, near]
        self.near_region = BlockMatrix(block_submatrix(A, near, blocks))       # A[near, region]
        self.solve, self.backend = factorize(block_submatrix(A, blocks, blocks).tocsr())
        self.shape = A.shape

    def around(self, M):
        """The symmetric multiplicative Schwarz preconditioner of this exact solve and ``M`` (a
        ``LinearOperator`` or callable ``r -> x``), as a ``LinearOperator``: two solves of the region and
        two products with its couplings per application besides ``M``."""
        apply_M = M.matvec if hasattr(M, "matvec") else M
        dofs, near = self.dofs, self.near_dofs

        def apply(r):
            r = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
            r_region = r[dofs]
            first = np.asarray(self.solve(r_region), dtype=np.float64).reshape(-1)
            rest = r.copy()
            rest[near] -= self.near_region.matvec(first)
            x = np.array(apply_M(rest), dtype=np.float64).reshape(-1)
            x[dofs] += first
            x[dofs] += np.asarray(self.solve(r_region - self.region_near.matvec(x[near])),
                                  dtype=np.float64).reshape(-1)
            return x

        return spla.LinearOperator(self.shape, matvec=apply, dtype=np.float64)
