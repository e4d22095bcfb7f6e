"""The V-cycle of a pyamg multigrid hierarchy, run by the parallel kernels of
:mod:`vertebrafe.fem.sparse_kernels` (all cores), and a leaner set-up of pyamg's smoothed aggregation
(:func:`lean_prolongation_smoothing`).

pyamg's own preconditioner (``aspreconditioner``) runs its products on one thread and computes two
fine-level residuals per application that CG does not use (one before the cycle, one after), each as
costly as a product with the stiffness matrix. This cycle is the same V-cycle (pre-smoothing, residual,
restriction ``P^T r``, coarse correction, prolongation, post-smoothing, a direct solve on the coarsest
level) without them, and with the restriction computed from ``P`` itself, so the hierarchy needs no
copy of ``P^T``. The set-up's kernels here, like those of the cycle, have serial twins for processes on one
numba thread (:mod:`vertebrafe.fem.jit`).
"""
import functools
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit, prange

from . import relaxation, sparse_kernels
from .jit import threaded
from .sparse_kernels import BlockMatrix


class VCycle:
    """One V-cycle of the hierarchy ``ml`` (pyamg ``MultilevelSolver`` whose levels have ``A``, ``P``,
    ``presmoother`` and ``postsmoother``) applied to a residual: ``cycle(b) -> x`` with ``x = 0`` at the
    start of every level. Keeps the operators, smoothers and coarse solver, not ``ml``'s ``R`` or ``B``. A
    pre-smoother with a ``presmooth(b) -> (x, r)`` method (:class:`~vertebrafe.fem.relaxation.Chebyshev`) gives
    the residual after it too, in place of a separate residual.
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
        presmooth = getattr(presmoother, "presmooth", None)
        if presmooth is None:
            x = np.zeros_like(b)
            presmoother(A_sp, x, b)
            r = A.residual(x, b)
        else:
            x, r = presmooth(b)
        coarse_b = P.rmatvec(r)
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


def single_precision(ml):
    """Round the operators ``A`` and prolongators ``P`` of every level of the pyamg hierarchy ``ml`` but the
    coarsest (solved directly in double precision) to float32, in place; returns ``ml``.

    The V-cycle's work is memory-bound (the smoother passes, residuals and transfers each stream a level's
    blocks once), so float32 values cut its traffic. Its vectors and sums stay float64: the cycle is then
    the V-cycle of the rounded operators (to float64 round-off), symmetric and positive definite like the
    one of the operators themselves, and CG, which multiplies with the float64 stiffness matrix, still reaches any
    tolerance; only the preconditioner's quality changes, by about the rounding (6e-8 relative).

    The finest operator is usually the stiffness matrix itself, which the solver keeps in float64, so its
    float32 copy adds half its size; the prolongators and coarse operators are replaced (their float64
    values are freed where nothing else holds them, ``R`` included), and the finest operator is converted
    last, so that the float64 and float32 values of the other levels never coexist.
    """
    levels = ml.levels[:-1]
    for level in levels:
        level.P = _rounded(level.P, Prolongator)
        level.R = level.P.T            # not the float64 P: that one is freed here
    for level in levels[:0:-1] + levels[:1]:
        level.A = _rounded(level.A)
    return ml


def _rounded(M, kind=sp.bsr_matrix):
    """The BSR matrix ``M`` with float32 values (converted on numba's threads), sharing its index arrays, as
    a ``kind`` (a BSR class)."""
    M = M if hasattr(M, "blocksize") else M.tobsr(blocksize=(1, 1))
    data = np.empty(M.data.shape, np.float32)
    _copy_rounded(M.data.reshape(M.data.shape[0], -1), data.reshape(data.shape[0], -1))
    return kind((data, M.indices, M.indptr), shape=M.shape, copy=False)


@threaded
def _copy_rounded(source, out):
    """``out[:] = source`` (2-D arrays, float64 into float32) by rows on all threads."""
    for i in prange(source.shape[0]):
        for j in range(source.shape[1]):
            out[i, j] = source[i, j]


@threaded
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


#: Lanczos steps of the spectral-radius estimate of ``D^-1 S`` (:func:`spectral_radius`). On the finest level
#: of the 1.24M-DOF box 8 steps give 2.6 % less than the converged value (so omega/rho is 2.6 % larger, far
#: inside the smoother's stability bound 2/rho) and 15 CG iterations on ``K u = K 1`` against 16 with 15 steps
#: (pyamg's Arnoldi steps per restart); T12-L2 at 2 mm takes 134 with either. Each step costs a product with
#: the level's operator, 15 of them 2 s of set-up CPU there.
LANCZOS_STEPS = 8


def _block_diagonal(blocks):
    """The block-diagonal matrix of ``blocks (nb, r, r)`` for the products of :mod:`sparse_kernels`."""
    nb = blocks.shape[0]
    return sparse_kernels.BlockMatrix(sp.bsr_matrix((blocks, np.arange(nb), np.arange(nb + 1)),
                                                    shape=(nb * blocks.shape[1],) * 2))


def spectral_radius(S, D, D_inverse, steps=LANCZOS_STEPS):
    """The largest eigenvalue of ``D^-1 S`` for the symmetric BSR ``S`` and the symmetric positive-definite
    block diagonal ``D`` (blocks ``(nb, r, r)``, with their inverses ``D_inverse``), by ``steps`` Lanczos
    steps in the ``D`` inner product (in which ``D^-1 S`` is self-adjoint; products on all threads,
    :class:`~vertebrafe.fem.sparse_kernels.BlockMatrix`) from a fixed pseudo-random start: the largest
    Ritz value, which approaches the eigenvalue from below (the estimate that pyamg's
    ``approximate_spectral_radius`` makes by Arnoldi steps from a random start)."""
    return spectral_radii(S, D, D_inverse, (steps,))[0]


def spectral_radii(S, D, D_inverse, steps):
    """:func:`spectral_radius` after each count of ``steps`` of one Lanczos run: the estimate
    after ``k`` steps is the largest eigenvalue of the leading ``k x k`` block of the tridiagonal matrix of
    the run, the same number as a run of ``k`` steps. One run serves the prolongator weighting
    (:data:`LANCZOS_STEPS`) and the Chebyshev smoother (``relaxation.CHEBYSHEV_LANCZOS_STEPS``)."""
    product = sparse_kernels.BlockMatrix(S).matvec
    scaled, inverse = _block_diagonal(D).matvec, _block_diagonal(D_inverse).matvec
    v = np.random.default_rng(0).random(S.shape[0])
    v /= np.sqrt(v @ scaled(v))
    previous, beta = np.zeros_like(v), 0.0
    alphas, betas = [], []
    for _ in range(min(max(steps), v.size)):
        u = product(v)
        alpha = float(v @ u)
        w = inverse(u) - alpha * v - beta * previous
        alphas.append(alpha)
        beta = float(np.sqrt(w @ scaled(w)))
        if not beta > 1e-12 * abs(alpha):          # an invariant subspace: the Ritz values are eigenvalues
            break
        betas.append(beta)
        previous, v = v, w / beta
    radii = []
    for k in steps:
        a, off = alphas[:k], betas[:min(k, len(alphas)) - 1]
        radii.append(float(np.linalg.eigvalsh(np.diag(a) + np.diag(off, 1) + np.diag(off, -1))[-1]))
    return radii


class FineWeighting:
    """The inverse diagonal blocks of the finest operator ``A`` (BSR) of a hierarchy and the spectral radius
    of ``D^-1 A`` (:func:`spectral_radii`), computed once before the set-up so that the prolongator
    smoothing and the finest level's smoother share them: ``rho`` after :data:`LANCZOS_STEPS` Lanczos steps
    (the prolongator weighting; NaN where a diagonal block is singular, as in :func:`jacobi_prolongation`)
    and ``radii[k]`` after each count ``k`` of ``steps`` of the same run. Within
    :func:`lean_prolongation_smoothing` with it, the prolongator of ``A`` (the same object) is weighted by
    them instead of a second estimate."""

    def __init__(self, A, steps=()):
        D = relaxation.diagonal_blocks(A)
        self.A = A
        self.D_inverse, exact = relaxation.block_inverses(D)
        counts = (LANCZOS_STEPS, *steps)
        self.radii = dict(zip(counts, spectral_radii(A, D, self.D_inverse, counts)))
        self.rho = self.radii[LANCZOS_STEPS] if exact.all() else np.nan


def jacobi_prolongation(S, T, C, B, omega=4.0 / 3.0, degree=1, filter_entries=False, weighting="block", fine=None):
    """pyamg's ``jacobi_prolongation_smoother`` (same arguments and result, ``P = T - omega D^-1 S T``) for
    the ``"block"`` weighting (``D``: the diagonal blocks of ``S`` times the spectral radius of ``D^-1 S``,
    estimated by :func:`spectral_radius` on all threads where pyamg's Arnoldi steps run on one) and the
    ``"local"`` weighting (``D``: each row's absolute sum, Gershgorin), without the three full copies of
    ``S`` that pyamg makes (``|S|`` or ``D^-1 S``, and ``omega D^-1 S``; on the finest level each is as
    large as the stiffness matrix and together they set the peak memory of the set-up): the rows of ``S T``
    are scaled in place and ``T`` added to them (numba kernels on all threads: :func:`block_product`,
    :func:`_jacobi_step`). Other weightings, complex matrices and diagonal blocks that are singular or not
    positive definite go to pyamg's function. ``fine``: a :class:`FineWeighting`, whose blocks and radius
    serve for its matrix ``S`` (block weighting) instead of new ones."""
    from pyamg.aggregation import smooth

    scale = None
    if (weighting in ("local", "block") and not filter_entries and hasattr(S, "blocksize")
            and hasattr(T, "blocksize") and S.dtype.kind == "f" and T.dtype.kind == "f"):
        r = S.blocksize[0]
        if weighting == "local":
            D = _abs_row_sums(S.indptr, np.ascontiguousarray(S.data))
            weights = np.zeros_like(D)
            weights[D != 0] = omega / D[D != 0]
            scale = weights.reshape(-1, r)[:, :, None] * np.eye(r)
        else:
            if fine is not None and fine.A is S:
                D_inverse, rho = fine.D_inverse, fine.rho
            else:
                D = relaxation.diagonal_blocks(S)
                D_inverse, exact = relaxation.block_inverses(D)
                rho = spectral_radius(S, D, D_inverse) if exact.all() else np.nan
            if np.isfinite(rho) and rho > 0:
                scale = (omega / rho) * D_inverse
    if scale is None:
        return smooth.jacobi_prolongation_smoother(S, T, C, B, omega=omega, degree=degree,
                                                   filter_entries=filter_entries, weighting=weighting)
    P = T
    for _ in range(degree):
        ptr, ind, data = block_product(S, P, with_P=True)
        _jacobi_step(ptr, ind, data, scale, P.indptr, P.indices, np.ascontiguousarray(P.data, dtype=np.float64),
                     sparse_kernels.row_bounds(ptr, 4 * sparse_kernels.TRANSPOSE_CHUNKS), P.shape[1] // P.blocksize[1])
        P = sp.bsr_matrix((data, ind, ptr), shape=P.shape)
    return Prolongator((P.data, P.indices, P.indptr), shape=P.shape)


@threaded
def _jacobi_step(ptr, ind, data, scale, p_ptr, p_ind, p_data, tasks, ncols):
    """``data <- P - blockdiag(scale) data`` in place, where ``data`` holds ``S P`` on the block pattern ``ptr,
    ind``, which contains every block of ``P`` (``p_*``); ``scale (nb, r, r)`` the row blocks' weights. Rows in
    runs ``tasks``."""
    r, c = data.shape[1], data.shape[2]
    for t in prange(tasks.shape[0] - 1):
        where = np.empty(ncols, np.int64)
        block = np.empty((r, c))
        for i in range(tasks[t], tasks[t + 1]):
            _mark(where, ptr, ind, i)
            for k in range(ptr[i], ptr[i + 1]):
                block[:] = data[k]
                for p in range(r):
                    for q in range(c):
                        s = 0.0
                        for l in range(r):
                            s += scale[i, p, l] * block[l, q]
                        data[k, p, q] = -s
            for kk in range(p_ptr[i], p_ptr[i + 1]):
                k = where[p_ind[kk]]
                for p in range(r):
                    for q in range(c):
                        data[k, p, q] += p_data[kk, p, q]


#: Row chunks of the fine level in :func:`galerkin_product`: its temporary ``A_k P`` is about this
#: fraction of ``A P``.
GALERKIN_CHUNKS = 8


def _block_pattern(M):
    """The block pattern of the BSR ``M`` as a CSR matrix of float32 ones (for symbolic products: sums of
    ones are never zero, so SciPy keeps every entry)."""
    r, c = M.blocksize
    return sp.csr_matrix((np.ones(M.indices.size, np.float32), M.indices, M.indptr),
                         shape=(M.shape[0] // r, M.shape[1] // c))


def _sorted_pattern(M):
    """``(indptr, indices)`` of the CSR ``M`` with sorted columns."""
    M.sort_indices()
    return M.indptr.astype(np.int64), M.indices.astype(np.int64)


@njit(cache=True)
def _mark(where, ptr, ind, i):
    """``where[ind[k]] = k`` for the entries ``k`` of row ``i`` of the pattern ``ptr, ind``."""
    for k in range(ptr[i], ptr[i + 1]):
        where[ind[k]] = k


@njit(cache=True, inline="always")
def _add_block_product(out, dst, a_data, ia, b_data, ib, transpose):
    """``out[dst] += a_data[ia] @ b_data[ib]`` (``a_data[ia]^T`` with ``transpose``). The blocks of the
    finest level (3x3 with 3x6, and 3x6 transposed with 3x6) take loops of fixed length, which the compiler
    unrolls."""
    r, c = out.shape[1], out.shape[2]
    m = b_data.shape[1]
    if not transpose and r == 3 and m == 3 and c == 6:
        for p in range(3):
            for l in range(3):
                a = a_data[ia, p, l]
                for q in range(6):
                    out[dst, p, q] += a * b_data[ib, l, q]
    elif transpose and r == 6 and m == 3 and c == 6:
        for p in range(6):
            for l in range(3):
                a = a_data[ia, l, p]
                for q in range(6):
                    out[dst, p, q] += a * b_data[ib, l, q]
    else:
        for p in range(r):
            for l in range(m):
                a = a_data[ia, l, p] if transpose else a_data[ia, p, l]
                for q in range(c):
                    out[dst, p, q] += a * b_data[ib, l, q]


@threaded
def _product_rows(a_ptr, a_ind, a_data, p_ptr, p_ind, p_data, c_ptr, c_ind, first, tasks, ncols):
    """Block rows ``first + ii`` (``ii`` in ``0 .. c_ptr.size - 2``) of ``A P`` on the block pattern
    ``c_ptr, c_ind`` of those rows (a superset of the product's); ``tasks`` splits ``ii`` into runs, one per
    parallel task. Every block is summed in the order of ``A``'s and ``P``'s rows: the same for any thread
    count."""
    out = np.zeros((c_ind.shape[0], a_data.shape[1], p_data.shape[2]))
    for t in prange(tasks.shape[0] - 1):
        where = np.empty(ncols, np.int64)      # block column -> its position in the current output row
        for ii in range(tasks[t], tasks[t + 1]):
            _mark(where, c_ptr, c_ind, ii)
            i = first + ii
            for jj in range(a_ptr[i], a_ptr[i + 1]):
                j = a_ind[jj]
                for kk in range(p_ptr[j], p_ptr[j + 1]):
                    _add_block_product(out, where[p_ind[kk]], a_data, jj, p_data, kk, False)
    return out


@threaded
def _add_restricted(pt_ptr, pt_row, pt_pos, p_data, ap_ptr, ap_ind, ap_data, first, last, c_ptr, c_ind, c_data,
                    tasks, ncols):
    """``C += P_k^T (A P)_k`` for the fine block rows ``first .. last - 1`` (chunk ``k``; ``ap_*`` hold its rows
    of ``A P``, numbered from ``first``) on the block pattern ``c_ptr, c_ind`` of ``C``. ``pt_ptr, pt_row,
    pt_pos``: the block columns of ``P`` (fine rows ascending, positions in ``p_data``). ``tasks`` splits the
    coarse rows into runs; every block is summed in fine-row order whatever the thread count."""
    for t in prange(tasks.shape[0] - 1):
        where = np.empty(ncols, np.int64)
        for I in range(tasks[t], tasks[t + 1]):
            _mark(where, c_ptr, c_ind, I)
            for e in range(pt_ptr[I], pt_ptr[I + 1]):
                i = pt_row[e]
                if first <= i < last:
                    for kk in range(ap_ptr[i - first], ap_ptr[i - first + 1]):
                        _add_block_product(c_data, where[ap_ind[kk]], p_data, pt_pos[e], ap_data, kk, True)


def block_product(A, P, with_P=False):
    """``(indptr, indices, data)`` of ``A @ P`` (BSR matrices) with sorted block columns (int64), on numba's
    threads (the same result for any thread count; SciPy's product runs on one thread). ``with_P``: the
    pattern also holds every block of ``P`` (zero where ``A P`` has none)."""
    P_graph = _block_pattern(P)
    graph = _block_pattern(A) @ P_graph
    ptr, ind = _sorted_pattern((graph + P_graph).tocsr() if with_P else graph)
    data = _product_rows(A.indptr, A.indices, np.ascontiguousarray(A.data, dtype=np.float64), P.indptr, P.indices,
                         np.ascontiguousarray(P.data, dtype=np.float64), ptr, ind, 0,
                         sparse_kernels.row_bounds(ptr, 4 * sparse_kernels.TRANSPOSE_CHUNKS), P_graph.shape[1])
    return ptr, ind, data


def galerkin_product(A, P, chunks=GALERKIN_CHUNKS):
    """The coarse operator ``P^T A P`` (BSR, sorted block columns) of the symmetric BSR ``A`` and BSR ``P``
    (same block rows), equal to pyamg's ``R @ A @ P`` with ``R = P^T`` to round-off, on numba's threads.

    The block patterns of ``A P`` and ``P^T A P`` come from SciPy products of the (scalar) block graphs;
    the values from :func:`_product_rows` and :func:`_add_restricted`, summed over ``chunks`` row chunks
    ``k`` of the fine level as ``P_k^T (A_k P)``: no ``R`` (a copy of ``P``), and of ``A P`` (on the finest
    level of the 1.24M-DOF box larger than the stiffness matrix) only one chunk at a time. The sums run in
    a fixed order: the same result for any thread count."""
    A_data, P_data = np.ascontiguousarray(A.data, dtype=np.float64), np.ascontiguousarray(P.data, dtype=np.float64)
    c = P.blocksize[1]
    nb, ncb = A.indptr.size - 1, P.shape[1] // c
    P_graph = _block_pattern(P)
    AP_graph = _block_pattern(A) @ P_graph
    C_ptr, C_ind = _sorted_pattern((P_graph.T.tocsr() @ AP_graph).tocsr())
    AP_ptr, AP_ind = _sorted_pattern(AP_graph)
    del AP_graph, P_graph
    pt_pos = np.argsort(P.indices, kind="stable")                   # P's blocks by column, rows ascending
    pt_row = np.repeat(np.arange(nb, dtype=np.int64), np.diff(P.indptr))[pt_pos]
    pt_ptr = np.concatenate([[0], np.cumsum(np.bincount(P.indices, minlength=ncb))]).astype(np.int64)
    C_data = np.zeros((C_ind.size, c, c))
    c_tasks = sparse_kernels.row_bounds(C_ptr, 4 * sparse_kernels.TRANSPOSE_CHUNKS)
    bounds = np.linspace(0, nb, max(1, min(chunks, nb)) + 1).astype(np.int64)
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        if b1 == b0:
            continue
        ptr = AP_ptr[b0:b1 + 1] - AP_ptr[b0]
        ind = AP_ind[AP_ptr[b0]:AP_ptr[b1]]
        tasks = sparse_kernels.row_bounds(ptr, 4 * sparse_kernels.TRANSPOSE_CHUNKS)
        AP_k = _product_rows(A.indptr, A.indices, A_data, P.indptr, P.indices, P_data, ptr, ind, b0, tasks, ncb)
        _add_restricted(pt_ptr, pt_row, pt_pos, P_data, ptr, ind, AP_k, b0, b1, C_ptr, C_ind, C_data, c_tasks, ncb)
        del AP_k
    return sp.bsr_matrix((C_data, C_ind, C_ptr), shape=(P.shape[1],) * 2)


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
def lean_prolongation_smoothing(fine=None):
    """Within the block, pyamg's smoothed aggregation smooths its prolongators with :func:`jacobi_prolongation`
    (with the :class:`FineWeighting` ``fine`` of the finest operator, if given) and forms its coarse operators
    with :func:`galerkin_product` (no restriction matrices kept)."""
    from pyamg.aggregation import aggregation

    original = aggregation.jacobi_prolongation_smoother
    aggregation.jacobi_prolongation_smoother = (jacobi_prolongation if fine is None
                                                else functools.partial(jacobi_prolongation, fine=fine))
    try:
        yield
    finally:
        aggregation.jacobi_prolongation_smoother = original
