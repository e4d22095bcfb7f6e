"""Block Gauss-Seidel smoothing for the AMG hierarchy, compiled with numba.

pyamg's block Gauss-Seidel cost about twice a matrix-vector product per sweep on the 3x3 (fine) and
6x6 (coarse) block matrices of a spinal segment, and the smoother is most of the work of a V-cycle.
This kernel does the same sweep at about the cost of one product: the inverse diagonal blocks are
computed once per level, and each block row is updated in place with a fixed loop over its blocks.

With several numba threads, a level of at least :data:`MIN_CHUNK_ROWS` block rows per thread is swept
as a hybrid: the rows are split into one contiguous run per thread, each run is swept by block
Gauss-Seidel on its own thread, and the couplings to the other runs use the values from before the
sweep (Jacobi between runs). The diagonal of a row with such couplings gains their absolute row sum
("l1" hybrid Gauss-Seidel, Baker, Falgout, Kolev & Yang 2011), which keeps the smoother convergent
and the symmetric sweep a symmetric positive-definite preconditioner whatever the split. With one
thread (study workers) it is exactly the sequential sweep, run by the kernels' serial twins
(:mod:`vertebrafe.fem.jit`).

:func:`chebyshev` is a polynomial smoother for the finest level of models with material contrasts: Chebyshev
iteration on the block-Jacobi preconditioned system, every step one fused pass over the matrix (all rows in
parallel, no hybrid between runs).
"""
import numba
import numpy as np
from numba import njit, prange

from . import sparse_kernels
from .jit import threaded


#: A level is split into one run of rows per thread only where each run has at least this many block
#: rows (smaller coarse levels are swept on one thread: there a parallel region costs more than it saves).
MIN_CHUNK_ROWS = 2000


@njit(cache=True)
def _span(indptr, i, forward):
    """``range`` arguments over the blocks of row ``i``: ascending (``forward``) or descending."""
    if forward:
        return indptr[i], indptr[i + 1], 1
    return indptr[i + 1] - 1, indptr[i] - 1, -1


@njit(cache=True)
def _row3(indptr, indices, data, dinv, x, xs, b, i, lo, hi, forward):
    """Update block row ``i`` of a 3x3-block matrix in place, ``x_i += dinv_i (b_i - sum_j A_ij x_j)``
    (with dinv the inverse diagonal block, the Gauss-Seidel update); columns outside ``lo .. hi`` read
    ``xs``. The row's blocks are read in the direction of the pass (``forward``: ascending), so that a
    backward pass reads the matrix in one descending stream: read ascending, the sawtooth of short
    ascending rows in descending order made a backward pass 3.4x as costly as a forward one."""
    r0, r1, r2 = b[3 * i], b[3 * i + 1], b[3 * i + 2]
    first, last, step = _span(indptr, i, forward)
    for jj in range(first, last, step):
        j = indices[jj]
        if lo <= j < hi:
            x0, x1, x2 = x[3 * j], x[3 * j + 1], x[3 * j + 2]
        else:
            x0, x1, x2 = xs[3 * j], xs[3 * j + 1], xs[3 * j + 2]
        a = data[jj]
        r0 -= a[0, 0] * x0 + a[0, 1] * x1 + a[0, 2] * x2
        r1 -= a[1, 0] * x0 + a[1, 1] * x1 + a[1, 2] * x2
        r2 -= a[2, 0] * x0 + a[2, 1] * x1 + a[2, 2] * x2
    d = dinv[i]
    x[3 * i] += d[0, 0] * r0 + d[0, 1] * r1 + d[0, 2] * r2
    x[3 * i + 1] += d[1, 0] * r0 + d[1, 1] * r1 + d[1, 2] * r2
    x[3 * i + 2] += d[2, 0] * r0 + d[2, 1] * r1 + d[2, 2] * r2


@njit(cache=True)
def _row6(indptr, indices, data, dinv, x, xs, b, i, lo, hi, forward, r):
    """:func:`_row3` for 6x6 blocks (coarse levels: six rigid-body modes per aggregate); r (6,) scratch."""
    for p in range(6):
        r[p] = b[6 * i + p]
    first, last, step = _span(indptr, i, forward)
    for jj in range(first, last, step):
        j = indices[jj]
        v = x if lo <= j < hi else xs
        for p in range(6):
            s = 0.0
            for q in range(6):
                s += data[jj, p, q] * v[6 * j + q]
            r[p] -= s
    for p in range(6):
        s = 0.0
        for q in range(6):
            s += dinv[i, p, q] * r[q]
        x[6 * i + p] += s


@njit(cache=True)
def _row(indptr, indices, data, dinv, x, xs, b, i, lo, hi, forward, r):
    """:func:`_row3` for k x k blocks of any k; r (k,) scratch."""
    k = data.shape[1]
    for p in range(k):
        r[p] = b[i * k + p]
    first, last, step = _span(indptr, i, forward)
    for jj in range(first, last, step):
        j = indices[jj]
        v = x if lo <= j < hi else xs
        for p in range(k):
            s = 0.0
            for q in range(k):
                s += data[jj, p, q] * v[j * k + q]
            r[p] -= s
    for p in range(k):
        s = 0.0
        for q in range(k):
            s += dinv[i, p, q] * r[q]
        x[i * k + p] += s


@njit(cache=True)
def _pass(indptr, indices, data, dinv, x, xs, b, lo, hi, forward, r):
    """Block Gauss-Seidel over rows ``lo .. hi - 1`` (forward) or ``hi - 1 .. lo`` (backward)."""
    k = data.shape[1]
    for n in range(hi - lo):
        i = lo + n if forward else hi - 1 - n
        if k == 3:
            _row3(indptr, indices, data, dinv, x, xs, b, i, lo, hi, forward)
        elif k == 6:
            _row6(indptr, indices, data, dinv, x, xs, b, i, lo, hi, forward, r)
        else:
            _row(indptr, indices, data, dinv, x, xs, b, i, lo, hi, forward, r)


@threaded
def block_sweeps(indptr, indices, data, dinv, x, b, bounds, forward):
    """Block Gauss-Seidel passes on ``A x = b`` (BSR arrays), in place: one per entry of ``forward``
    (bool: a forward pass, else a backward one; ``[True, False]`` is the symmetric sweep).

    data (nnzb, k, k); dinv (nb, k, k) inverse diagonal blocks (see :func:`inverse_diagonal_blocks`);
    x, b (nb k,); bounds (runs + 1,) the runs of rows swept side by side (``[0, nb]``: the sequential sweep).
    """
    runs = bounds.shape[0] - 1
    for n in range(forward.shape[0]):
        xs = x.copy() if runs > 1 else x
        for t in prange(runs):
            _pass(indptr, indices, data, dinv, x, xs, b, bounds[t], bounds[t + 1], forward[n],
                  np.empty(data.shape[1]))


@threaded
def _diagonal_blocks(indptr, indices, data, bounds):
    """Diagonal blocks ``(nb, k, k)``; a row with couplings outside its run adds their absolute row sums
    to its diagonal entries. One task per run."""
    nb, k = indptr.shape[0] - 1, data.shape[1]
    diag = np.zeros((nb, k, k))
    for t in prange(bounds.shape[0] - 1):
        lo, hi = bounds[t], bounds[t + 1]
        for i in range(lo, hi):
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                if j == i:
                    diag[i] += data[jj]
                elif j < lo or j >= hi:
                    for p in range(k):
                        for q in range(k):
                            diag[i, p, p] += abs(data[jj, p, q])
    return diag


@threaded
def _inverses(diag, inverse, bad):
    """``inverse[i] = diag[i]^-1`` by Gauss-Jordan elimination with partial pivoting, on all threads;
    ``bad[i]`` where a pivot is zero or ``diag[i] inverse[i]`` is not the identity to 1e-8 (singular or
    ill-conditioned blocks)."""
    k = diag.shape[1]
    for i in prange(diag.shape[0]):
        a = diag[i].copy()
        inv = np.eye(k)
        for c in range(k):
            p = c
            for r in range(c + 1, k):
                if abs(a[r, c]) > abs(a[p, c]):
                    p = r
            if a[p, c] == 0.0:
                bad[i] = True
                break
            for q in range(k):
                a[c, q], a[p, q] = a[p, q], a[c, q]
                inv[c, q], inv[p, q] = inv[p, q], inv[c, q]
            w = 1.0 / a[c, c]
            for q in range(k):
                a[c, q] *= w
                inv[c, q] *= w
            for r in range(k):
                if r != c and a[r, c] != 0.0:
                    f = a[r, c]
                    for q in range(k):
                        a[r, q] -= f * a[c, q]
                        inv[r, q] -= f * inv[c, q]
        inverse[i] = inv
        if not bad[i]:
            for p in range(k):
                for q in range(k):
                    s = 0.0
                    for r in range(k):
                        s += diag[i, p, r] * inv[r, q]
                    if not abs(s - (1.0 if p == q else 0.0)) <= 1e-8:
                        bad[i] = True


def diagonal_blocks(A, bounds=None):
    """The diagonal blocks ``(nb, k, k)`` of the BSR matrix ``A``, with the l1 terms of the runs ``bounds``
    (default: one run, the plain diagonal blocks); numba threads, one per run."""
    nb = A.indptr.size - 1
    if bounds is None:
        bounds = np.array([0, nb], np.int64)
    return _diagonal_blocks(A.indptr, A.indices, np.ascontiguousarray(A.data), bounds)


def block_inverses(diag):
    """``(inverse, exact)``: pseudo-inverses ``(nb, k, k)`` of the blocks ``diag``, the inverse (Gauss-Jordan,
    all threads) where ``D D^-1`` is the identity to 1e-8 (``exact``), else numpy's ``pinv``."""
    inverse = np.empty_like(diag)
    bad = np.zeros(diag.shape[0], np.bool_)
    _inverses(diag, inverse, bad)
    if bad.any():
        inverse[bad] = np.linalg.pinv(diag[bad])
    return inverse, ~bad


def inverse_diagonal_blocks(A, bounds=None):
    """Pseudo-inverses ``(nb, k, k)`` of the diagonal blocks of the BSR matrix ``A``, with the l1 terms
    of the runs ``bounds`` (:func:`diagonal_blocks`, :func:`block_inverses`)."""
    return block_inverses(diagonal_blocks(A, bounds))[0]


def run_bounds(A, threads=None):
    """The runs of block rows of ``A`` swept side by side: one per numba thread (``threads``, default
    the current number), each of about equal work and at least :data:`MIN_CHUNK_ROWS` rows."""
    nb = A.indptr.size - 1
    threads = numba.get_num_threads() if threads is None else threads
    return sparse_kernels.row_bounds(A.indptr, max(1, min(threads, nb // MIN_CHUNK_ROWS)))


#: Pass directions of the sweeps offered by :func:`block_gauss_seidel`.
SWEEPS = {"symmetric": (True, False), "forward": (True,), "backward": (False,)}


def block_gauss_seidel(A, threads=None, sweep="symmetric"):
    """A smoother ``f(A, x, b)`` for pyamg levels: one block Gauss-Seidel sweep (``sweep``, a key of
    :data:`SWEEPS`) on ``A`` (BSR), as a hybrid of :func:`run_bounds` runs (one per thread, default
    numba's current thread count)."""
    indptr, indices = A.indptr, A.indices
    data = np.ascontiguousarray(A.data)
    bounds = run_bounds(A, threads)
    dinv = inverse_diagonal_blocks(A, bounds)
    forward = np.array(SWEEPS[sweep])

    def smoother(_A, x, b):
        block_sweeps(indptr, indices, data, dinv, x, np.ascontiguousarray(b, dtype=np.float64), bounds, forward)

    return smoother


#: The interval of eigenvalues of ``D^-1 A`` that :func:`chebyshev` damps: ``[upper / CHEBYSHEV_RATIO, upper]``
#: with ``upper = CHEBYSHEV_UPPER rho``, the bounds of pyamg's Chebyshev smoother (``setup_chebyshev``:
#: 1/30 and 1.1 of the spectral radius; the factor 1.1 covers an estimate of rho from below). The smooth
#: error below the interval is left to the coarse levels.
CHEBYSHEV_RATIO = 30.0
CHEBYSHEV_UPPER = 1.1
#: Lanczos steps of the estimate of rho for :func:`chebyshev` (pyamg's Arnoldi steps per restart). On the
#: finest level of T12-L2 at 3 mm 8 steps gave 6.11 where the eigenvalue is 7.21 (15 steps: 7.20): its
#: largest eigenvalues then lay above the interval, where the polynomial grows (83 CG iterations against
#: 70 with 15 steps). :func:`~vertebrafe.fem.solvers.amg_hierarchy` reads it from the Lanczos run of the
#: prolongator weighting (``multigrid.FineWeighting``).
CHEBYSHEV_LANCZOS_STEPS = 15


@njit(cache=True)
def _scaled3(dinv, i, r0, r1, r2):
    """``dinv_i (r0, r1, r2)`` for 3x3 blocks, in scalars."""
    return (dinv[i, 0, 0] * r0 + dinv[i, 0, 1] * r1 + dinv[i, 0, 2] * r2,
            dinv[i, 1, 0] * r0 + dinv[i, 1, 1] * r1 + dinv[i, 1, 2] * r2,
            dinv[i, 2, 0] * r0 + dinv[i, 2, 1] * r1 + dinv[i, 2, 2] * r2)


@njit(cache=True)
def _scaled_step(dinv, r, i, c, out, k):
    """``out[k i : k i + k] = c dinv_i r_i`` (row block ``i``)."""
    if k == 3:
        e0, e1, e2 = _scaled3(dinv, i, r[3 * i], r[3 * i + 1], r[3 * i + 2])
        out[3 * i], out[3 * i + 1], out[3 * i + 2] = c * e0, c * e1, c * e2
        return
    for p in range(k):
        s = 0.0
        for q in range(k):
            s += dinv[i, p, q] * r[k * i + q]
        out[k * i + p] = c * s


# The passes over A below take 3x3 blocks (the finest level of an elasticity model) in scalars: the row's
# product, residual and scaled residual stay in registers (a quarter less CPU per pass than the same pass
# through k-long scratch arrays, where every store may alias the vectors and forces their reloads).

@threaded
def _chebyshev_start(dinv, b, r, d, c, bounds):
    """From ``x = 0``: ``r = b``, ``d = c D^-1 b`` (``dinv (nb, k, k)``), rows in runs ``bounds``."""
    k = dinv.shape[1]
    for t in prange(bounds.shape[0] - 1):
        for i in range(bounds[t], bounds[t + 1]):
            for p in range(k):
                r[k * i + p] = b[k * i + p]
            _scaled_step(dinv, b, i, c, d, k)


@threaded
def _chebyshev_pass(indptr, indices, data, dinv, v, b, r, x, d_next, c_old, c_new, update, direction, bounds):
    """One pass over the rows of ``A`` (BSR arrays), rows in runs ``bounds``: ``r = b - A v`` (``b`` may be ``r``
    itself), then ``x += v`` where ``update`` and ``d_next = c_old v + c_new D^-1 r`` where ``direction``. A
    Chebyshev step is ``v = d, b = r`` with both; the first direction from any ``x`` is ``v = x`` with
    ``direction`` only (``c_old = 0``); the last update with its residual ``v = d, b = r`` with ``update``
    only."""
    k = data.shape[1]
    for t in prange(bounds.shape[0] - 1):
        s = np.empty(k)
        for i in range(bounds[t], bounds[t + 1]):
            if k == 3:
                s0, s1, s2 = sparse_kernels._row_product3(indptr, indices, data, v, i)
                r0, r1, r2 = b[3 * i] - s0, b[3 * i + 1] - s1, b[3 * i + 2] - s2
                r[3 * i], r[3 * i + 1], r[3 * i + 2] = r0, r1, r2
                a0, a1, a2 = v[3 * i], v[3 * i + 1], v[3 * i + 2]
                if update:
                    x[3 * i] += a0
                    x[3 * i + 1] += a1
                    x[3 * i + 2] += a2
                if direction:
                    e0, e1, e2 = _scaled3(dinv, i, r0, r1, r2)
                    d_next[3 * i] = c_new * e0 + c_old * a0
                    d_next[3 * i + 1] = c_new * e1 + c_old * a1
                    d_next[3 * i + 2] = c_new * e2 + c_old * a2
                continue
            sparse_kernels._row_sum(indptr, indices, data, v, i, s, k, k)
            for p in range(k):
                r[k * i + p] = b[k * i + p] - s[p]
            if direction:
                _scaled_step(dinv, r, i, c_new, d_next, k)
            for p in range(k):
                if direction:
                    d_next[k * i + p] += c_old * v[k * i + p]
                if update:
                    x[k * i + p] += v[k * i + p]


class Chebyshev:
    """The smoother of :func:`chebyshev`: ``smoother(A, x, b)`` (pyamg's signature, in place on ``x``) and
    :meth:`presmooth`, the smoothing from ``x = 0`` with the residual after it (what a V-cycle's
    pre-smoothing and restriction need)."""

    def __init__(self, A, D_inverse, rho, degree):
        self.matrix = sparse_kernels.BlockMatrix(A)
        self.bounds = sparse_kernels.row_bounds(self.matrix.indptr, 4 * sparse_kernels.TRANSPOSE_CHUNKS)
        upper = CHEBYSHEV_UPPER * rho
        lower = upper / CHEBYSHEV_RATIO
        self.theta, self.delta = (upper + lower) / 2.0, (upper - lower) / 2.0
        self.degree = degree
        self.D_inverse = np.ascontiguousarray(D_inverse, dtype=np.float64)

    def _steps(self, x, r, d, last):
        """The steps after the first direction ``d``; ``last``: the final update ``x += d`` updates ``r``
        too."""
        m = self.matrix
        d_next = np.empty_like(d)
        sigma = self.theta / self.delta
        previous = 1.0 / sigma
        for _ in range(self.degree - 1):
            current = 1.0 / (2.0 * sigma - previous)
            _chebyshev_pass(m.indptr, m.indices, m.data, self.D_inverse, d, r, r, x, d_next, current * previous,
                            2.0 * current / self.delta, True, True, self.bounds)
            d, d_next = d_next, d
            previous = current
        if last:
            _chebyshev_pass(m.indptr, m.indices, m.data, self.D_inverse, d, r, r, x, d_next, 0.0, 0.0, True, False,
                            self.bounds)
        else:
            x += d

    def __call__(self, _A, x, b):
        b = np.ascontiguousarray(b, dtype=np.float64).reshape(-1)
        r, d = np.empty_like(b), np.empty_like(b)
        if x.any():
            m = self.matrix
            _chebyshev_pass(m.indptr, m.indices, m.data, self.D_inverse, x, b, r, x, d, 0.0, 1.0 / self.theta, False,
                            True, self.bounds)
        else:
            _chebyshev_start(self.D_inverse, b, r, d, 1.0 / self.theta, self.bounds)
        self._steps(x, r, d, False)

    def presmooth(self, b):
        """``(x, r)``: the smoothing of ``A x = b`` from ``x = 0`` and its residual ``r = b - A x``, whose product
        is fused with the last step (``r`` from the smoother's own residual: one pass over ``A`` where a
        separate residual reads ``A``, ``x`` and ``b`` after the update of ``x``)."""
        b = np.ascontiguousarray(b, dtype=np.float64).reshape(-1)
        x, r, d = np.zeros_like(b), np.empty_like(b), np.empty_like(b)
        _chebyshev_start(self.D_inverse, b, r, d, 1.0 / self.theta, self.bounds)
        self._steps(x, r, d, True)
        return x, r


def chebyshev(A, D_inverse, rho, degree):
    """A smoother ``f(A, x, b)`` for pyamg levels (a :class:`Chebyshev`): ``degree`` steps of Chebyshev
    iteration (Saad 2003, Algorithm 12.1) on ``A x = b`` (BSR, symmetric) preconditioned by its diagonal
    blocks (inverses ``D_inverse (nb, k, k)``), for the eigenvalues of ``D^-1 A`` in ``[upper /
    CHEBYSHEV_RATIO, upper]``, ``upper = CHEBYSHEV_UPPER rho`` (``rho``: the spectral radius of ``D^-1 A``).

    The error after it is ``T_m((theta - D^-1 A) / delta) / T_m(theta / delta)`` times the error before
    (``T_m`` the Chebyshev polynomial of degree ``m = degree``, ``theta`` and ``delta`` the interval's centre
    and half width): a fixed polynomial in ``D^-1 A``, so the same smoother before and after the coarse
    correction makes a symmetric V-cycle. It costs ``degree - 1`` passes over ``A`` from ``x = 0`` (the
    pre-smoothing of a V-cycle; :meth:`Chebyshev.presmooth` adds the residual after it in one more pass),
    ``degree`` otherwise (the first one fused with the residual ``b - A x``); every pass runs all rows in
    parallel (:func:`_chebyshev_pass`; with one numba thread, as in study workers, its serial build, which
    compiles in a fraction of the time, :mod:`vertebrafe.fem.jit`)."""
    return Chebyshev(A, D_inverse, rho, degree)


def use_block_gauss_seidel(ml, presweep="symmetric", postsweep="symmetric", first=0):
    """Replace the pre- and post-smoothers of every level of a pyamg hierarchy by :func:`block_gauss_seidel`
    sweeps ``presweep`` and ``postsweep`` (keys of :data:`SWEEPS`; for a symmetric V-cycle, the post-sweep
    reverses the pre-sweep: symmetric/symmetric or forward/backward), from level ``first`` on."""
    for level in ml.levels[first:-1]:
        A = level.A
        if not hasattr(A, "blocksize"):
            A = A.tobsr(blocksize=(1, 1))
        level.presmoother = block_gauss_seidel(A, sweep=presweep)
        level.postsmoother = (level.presmoother if postsweep == presweep
                              else block_gauss_seidel(A, sweep=postsweep))
    return ml
