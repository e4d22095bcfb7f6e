"""Active-set solution of a linear model with one-sided springs (tension-only, compression-only).

The springs of :mod:`vertebrafe.springs` make the problem piecewise linear: each one-sided spring
is either active (linear) or inactive (no force). With the active set fixed the problem is the linear
model plus the active springs; the loop

1. solves ``(K + G^T D_active G) u = f + G^T D_active onset`` (``G`` the elongation operator, ``D`` the
   spring stiffnesses),
2. computes every spring's elongation and the state it wants (taut / slack, closed / open),
3. stops when no state changes, else updates the set and repeats.

With CG the solves of step 1 run to a loose residual (:data:`LOOSE_RTOL`) while the set moves; once it
stops moving, a solve to the requested ``rtol`` confirms it (and the loop goes on if that changes a state).

This is Newton's method on the convex energy ``1/2 u.K u - f.u + sum 1/2 k max(0, +-(delta - onset))^2``
(a semismooth Newton / primal-dual active-set method), which converges in a finite number of steps,
typically a handful. Every step reuses the assembled linear core: the stiffness ``K`` of the cells is
assembled once and the springs enter as a sparse low-rank term.

- Direct: one factorisation of a reference matrix (the cells and the linear springs; where a part is held
  only by springs, also the springs active at the start) for every step and every load of a shared
  set-up; a step solves with it and corrects for the springs whose state differs from the reference by
  the Woodbury identity (:class:`LowRank`: one kept column ``A0^-1 g`` per such spring, a dense system of
  their number). The loop starts from the reference state, whose solve needs no column. Exact, unlike a
  preconditioned iteration, and the columns serve later loads too; beyond :data:`LOW_RANK_BYTES` of
  columns (thousands of switching fibres) the current matrix is factorised and becomes the reference.
- AMG: the hierarchy built on the first step's matrix (kept for later loads) preconditions the CG of
  every step, which starts from the previous solution.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401  (sp.csgraph)
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from ..errors import ConvergenceError
from . import solvers

#: Most active-set steps before giving up (each is one linear solve).
MAX_ITERATIONS = 30
#: Relative residual of the CG solves while the active set is still moving; once it stops, one solve
#: to the requested rtol confirms it (the states hinge on the signs of elongations, which a 1e-4
#: residual already fixes for all but springs right at their onset).
LOOSE_RTOL = 1e-4
#: Memory for the kept columns ``A0^-1 G^T`` of the direct solve (:class:`LowRank`), bytes: about 270
#: springs on a 120 000-unknown model, several hundred at 3 mm.
LOW_RANK_BYTES = 256 * 2 ** 20


def solve(K, rhs, sets, T, free, constrained, g, n_points, method, rtol=1e-8, maxiter=None,
          near_nullspace=None, strength=None, max_iterations=MAX_ITERATIONS, cache=None, held=False):
    """Solve the model with springs; updates every set's ``active`` state in place.

    K (N, N) BSR and rhs (N,): the assembled cells with constraints eliminated (:meth:`Model.solve`);
    sets: list of :class:`~vertebrafe.springs.SpringSet`; T (3 n_points, N) sparse map from the
    extended unknowns to node displacements; free, constrained (N,) bool; g (N,) prescribed values.
    cache: a dict kept by the caller for solves of the same ``K`` and springs with other loads (the
    factorisation of the reference matrix and its spring columns, or the AMG hierarchy); held: True
    where ``K`` alone is singular (a part held only by springs), so the reference keeps the springs
    active at the start.
    Returns ``(x (N,), info)``; info adds ``active_set_iterations``, ``active_set_changes`` (springs that
    changed state after each step), ``springs_active`` ``{set name: count}`` and ``setup_reused`` to the
    solver's keys; ``iterations`` counts all CG iterations (direct: solves with a factorisation).
    """
    return _solve(K, rhs, sets, T, free, constrained, g, n_points, method, rtol, maxiter, near_nullspace, strength,
                  max_iterations, {} if cache is None else cache, held)


def _solve(K, rhs, sets, T, free, constrained, g, n_points, method, rtol, maxiter, near_nullspace, strength,
           max_iterations, cache, held):
    t0 = time.perf_counter()
    G = (sp.vstack([s.gradient(n_points) for s in sets]).tocsr() @ T).tocsr()       # (ks, N)
    gc = np.where(constrained, g, 0.0)
    delta_c = G @ gc                                           # elongation from prescribed motion
    Gf = (G @ sp.diags(free.astype(float))).tocsr()            # acts on free unknowns only
    k = np.concatenate([s.stiffness for s in sets])
    onset = np.concatenate([s.onset for s in sets])
    linear = np.concatenate([np.full(s.size, s.kind == "linear") for s in sets])
    active = np.concatenate([s.active for s in sets]) | linear
    bounds = np.cumsum([0] + [s.size for s in sets])
    in_amg = np.concatenate([np.full(s.size, s.precondition) for s in sets])      # dense terms stay out
    info = {"solver": method, "iterations": 0, "setup_time": 0.0, "solve_time": 0.0,
            "setup_reused": bool(cache)}
    changes = []
    x = np.zeros(K.shape[0])
    M = None
    tight = method == "direct"
    if method == "direct":
        low = cache.get("low_rank")
        if low is None:
            # the reference: the cells and the linear springs that the factorisation can hold (dense terms
            # such as a fluid cavity stay low rank), plus, where K alone is singular, the springs active now
            low = cache["low_rank"] = LowRank(K, Gf, k * ((linear & in_amg) | (held & active)))
            info["setup_time"] += low.factor_time
        active = (low.d0 > 0) | linear          # start from the reference state: its solve needs no columns
    for step in range(1, max_iterations + 1):
        d = k * active
        b = rhs + Gf.T @ (d * (onset - delta_c))
        if method == "direct":
            t1 = time.perf_counter()
            x, solves, low, factor_time, residual = _direct_step(low, K, Gf, d, b, rtol)
            cache["low_rank"] = low
            info["iterations"] += solves
            info["setup_time"] += factor_time
            info["solve_time"] += time.perf_counter() - t1 - factor_time
        else:
            A = spla.LinearOperator(K.shape, matvec=lambda v, d=d: K @ v + Gf.T @ (d * (Gf @ v)), dtype=float)
            M = cache.get("amg")
            with threadpool_limits(limits=1, user_api="blas"):
                if M is None:       # one hierarchy for every step and load: the springs change by low rank
                    t1 = time.perf_counter()
                    ml = solvers.amg_hierarchy((K + Gf.T @ sp.diags(d * in_amg) @ Gf).tobsr(blocksize=(3, 3)),
                                               near_nullspace, strength)
                    M = cache["amg"] = solvers.amg_preconditioner(ml)
                    cache["amg_info"] = dict(levels=len(ml.levels),
                                             operator_complexity=float(ml.operator_complexity()))
                    info["setup_time"] += time.perf_counter() - t1
                t1 = time.perf_counter()
                step_rtol = rtol if tight else max(rtol, LOOSE_RTOL)
                x, its = _cg(A, b, x, M, step_rtol, maxiter)
            info.update(cache["amg_info"])
            info["solve_time"] += time.perf_counter() - t1
            info["iterations"] += its
            residual = _residual(A @ x, b)
        if not np.all(np.isfinite(x)):
            raise ConvergenceError("the active-set solve produced non-finite displacements; the model may be a "
                                   "mechanism once slack springs carry nothing", iterations=step)
        if residual > max(rtol if tight else LOOSE_RTOL, 1e-6 if method == "direct" else rtol) * 1.0001:
            raise ConvergenceError(f"active-set step {step}: the {method} solve reached a relative residual "
                                   f"{residual:.3g} > rtol {rtol:g}; with {int((k * active > 0).sum())} of "
                                   f"{k.size} springs active the model may be a mechanism (slack springs carry "
                                   "nothing): check that the load can be carried", iterations=step,
                                   residual=residual)
        delta = G @ (np.where(free, x, 0.0) + gc)
        want = np.concatenate([s.wants_active(delta[bounds[i]:bounds[i + 1]]) for i, s in enumerate(sets)])
        changed = int(np.count_nonzero(want != active))
        changes.append(changed)
        active = want
        if changed == 0:
            if tight:
                break
            tight = True            # the set settled on loose solves: confirm it with a full-accuracy one
    else:
        raise ConvergenceError(f"the active set of the one-sided springs did not settle in {max_iterations} "
                               f"steps (state changes per step: {changes}); the load may make the model a "
                               "mechanism or the springs chatter", iterations=max_iterations)
    for i, s in enumerate(sets):
        s.active = active[bounds[i]:bounds[i + 1]].copy()
    if method == "direct":
        info.update(factorization=low.backend, spring_columns=low.W.shape[1])
    info.update(residual=residual, active_set_iterations=len(changes), active_set_changes=changes,
                springs_active={s.name: int(s.active.sum()) for s in sets},
                active_set_time=time.perf_counter() - t0)
    return x, info


class LowRank:
    """A factorised reference ``A0 = K + Gf^T diag(d0) Gf`` that solves ``(K + Gf^T diag(d) Gf) x = b`` for
    any spring stiffnesses ``d (ks,)`` exactly, by the Woodbury identity on the springs ``c`` where
    ``d != d0``: ``x = A0^-1 (b - Gf_c^T w)`` with ``(diag(1 / (d - d0)_c) + S_cc) w = Gf_c A0^-1 b`` and
    ``S = Gf A0^-1 Gf^T``.

    A spring's column is computed the first time it differs from the reference and kept (also for later
    loads), so an active-set step costs one solve with the factor and a small dense system. With a factor
    that applies its halves (:class:`~vertebrafe.fem.solvers.PardisoCholesky`: ``A0 = P^T L L^T P``) the
    column is ``W_j = L^-1 P g_j``, half a solve, and sparse (nonzero only where ``g_j``'s unknowns reach in
    the elimination tree: about 5 % of the rows on a segment), so ``S = W^T W`` and a step is
    ``x = P^T L^-T (y - W_c w)`` with ``y = L^-1 P b``; otherwise the column is ``Z_j = A0^-1 g_j`` (dense).
    At most :data:`LOW_RANK_BYTES` of columns.
    """

    def __init__(self, K, Gf, d0):
        t0 = time.perf_counter()
        self.Gf, self.d0 = Gf, d0
        self._solve, self.backend = solvers.factorize(K + Gf.T @ sp.diags(d0) @ Gf)
        self._halves = hasattr(self._solve, "forward")
        self.column = np.full(d0.size, -1)                 # column of each spring, -1: none yet
        self.springs = np.zeros(0, np.int64)               # the spring of each column
        self.W = sp.csc_matrix((K.shape[0], 0)) if self._halves else np.zeros((K.shape[0], 0))
        self.S = np.zeros((0, 0))                          # Gf A0^-1 Gf^T between the springs with columns
        self.factor_time = time.perf_counter() - t0

    @property
    def nbytes(self):
        """Memory of the kept columns (bytes)."""
        return self.W.data.nbytes + self.W.indices.nbytes if self._halves else self.W.nbytes

    def _add_columns(self, missing):
        """Columns of the springs ``missing``, in one block of right-hand sides (the BLAS threads in force,
        both cores), and their rows and columns of ``S``; False if they would exceed :data:`LOW_RANK_BYTES`."""
        rhs = self.Gf[missing].T.toarray()
        if self._halves:
            new = sp.csc_matrix(self._solve.forward(rhs))
            if self.nbytes + new.data.nbytes + new.indices.nbytes > LOW_RANK_BYTES:
                return False
            cross = (self.W.T @ new).toarray()
            own = (new.T @ new).toarray()
            self.W = sp.hstack([self.W, new], format="csc")
        else:
            if self.nbytes + rhs.nbytes > LOW_RANK_BYTES:
                return False
            new = self._solve(rhs)
            cross = self.Gf[self.springs] @ new
            own = self.Gf[missing] @ new
            self.W = np.hstack([self.W, new])
        self.S = np.block([[self.S, cross], [cross.T, 0.5 * (own + own.T)]])
        self.column[missing] = self.springs.size + np.arange(missing.size)
        self.springs = np.concatenate([self.springs, missing])
        return True

    def solve(self, d, b):
        """``x (N,)``, or None when the springs that differ from the reference need more columns than
        fit in :data:`LOW_RANK_BYTES`."""
        c = np.flatnonzero(d != self.d0)
        missing = c[self.column[c] < 0]
        if missing.size and not self._add_columns(missing):
            return None
        with threadpool_limits(limits=1, user_api="blas"):      # single vectors: see solvers.Prepared.solve
            y = self._solve.forward(b) if self._halves else self._solve(b)
            if c.size:
                j = self.column[c]
                Wc = self.W[:, j]
                capacitance = np.diag(1.0 / (d[c] - self.d0[c])) + self.S[np.ix_(j, j)]
                w = np.linalg.solve(capacitance, Wc.T @ y if self._halves else self.Gf[c] @ y)
                if not self._halves:
                    return y - Wc @ w
                y = y - Wc @ w
            return self._solve.backward(y) if self._halves else y


def _direct_step(low, K, Gf, d, b, rtol):
    """Solve ``(K + Gf^T diag(d) Gf) x = b`` with the reference ``low`` (:class:`LowRank`), refined while the
    true residual is above ``rtol``; where the springs that differ from the reference need too many
    columns, the current matrix is factorised and becomes the reference.
    Returns ``(x, solves, reference, factorisation time (s), relative residual)``."""
    factor_time = 0.0
    x = low.solve(d, b)
    if x is None:
        low = LowRank(K, Gf, d)
        factor_time = low.factor_time
        x = low.solve(d, b)
    solves = 1

    def apply(v):
        return K @ v + Gf.T @ (d * (Gf @ v))

    r = b - apply(x)
    residual = _residual(b - r, b)
    for _ in range(solvers.REFINEMENT_STEPS):
        if not residual > rtol:
            break
        x = x + low.solve(d, r)
        solves += 1
        r = b - apply(x)
        previous, residual = residual, _residual(b - r, b)
        if not residual < 0.5 * previous:
            break
    return x, solves, low, factor_time, residual


def _residual(Ax, b):
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(Ax - b) / nb) if nb > 0 else float(np.linalg.norm(Ax))


def _cg(A, b, x0, M, rtol, maxiter, restarts=2):
    """CG from ``x0``; returns ``(x, iterations)``. CG stops on its recursively updated residual, which drifts
    from the true one near round-off: while the true residual is above ``rtol``, CG restarts from its
    solution (at most ``restarts`` times)."""
    count = [0]

    def callback(_):
        count[0] += 1

    x = x0
    for _ in range(restarts + 1):
        x, _ = spla.cg(A, b, x0=x, rtol=rtol, atol=0.0, maxiter=maxiter or 2000, M=M, callback=callback)
        if not _residual(A @ x, b) > rtol:
            break
    return x, count[0]


def join_parts(label, sets):
    """Part labels ``(nb,)`` with the parts that springs connect merged (for the rigid-body check).

    A part held only by springs counts as held: if its one-sided springs all go slack, the solve
    itself reports the mechanism.
    """
    rows, nodes = [], []
    offset = 0
    for s in sets:
        G = s.gradient(label.size).tocoo()
        rows.append(G.row + offset)
        nodes.append(G.col // 3)
        offset += G.shape[0]
    rows, nodes = np.concatenate(rows), np.concatenate(nodes)
    parts = label[nodes]
    n = int(label.max()) + 1
    incidence = sp.csr_matrix((np.ones(rows.size), (rows, parts)), shape=(offset, n))
    graph = (incidence.T @ incidence).tocsr()
    _, merged = sp.csgraph.connected_components(graph, directed=False)
    return merged[label]


def node_map(n_points, plates, points, free_shape):
    """Sparse ``T (3 n_points, N)``: node displacements from the extended unknowns (3 per node, then 6 per
    plate). Nodes tied to a plate follow ``u = t + theta x (x - c)``; others map to their own three DOFs."""
    node_plate = np.full(n_points, -1, np.int64)
    for p in plates:
        node_plate[p.nodes] = p.index
    rows, cols, vals = [], [], []
    own = np.flatnonzero(node_plate < 0)
    for d in range(3):
        rows.append(3 * own + d)
        cols.append(3 * own + d)
        vals.append(np.ones(own.size))
    for p in plates:
        nodes = p.nodes
        r = points[nodes] - p.center
        t0 = 3 * (n_points + 2 * p.index)
        for d in range(3):
            rows.append(3 * nodes + d)
            cols.append(np.full(nodes.size, t0 + d))
            vals.append(np.ones(nodes.size))
        # u_d = sum_j eps_{d j l} theta_j r_l
        for d, j, l, sign in ((0, 1, 2, 1), (0, 2, 1, -1), (1, 2, 0, 1), (1, 0, 2, -1), (2, 0, 1, 1), (2, 1, 0, -1)):
            rows.append(3 * nodes + d)
            cols.append(np.full(nodes.size, t0 + 3 + j))
            vals.append(sign * r[:, l])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(3 * n_points, free_shape))
