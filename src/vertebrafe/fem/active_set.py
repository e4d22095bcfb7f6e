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

- Direct: one factorisation of a reference matrix ``A0`` (the cells and the linear springs; where a part is
  held only by springs, also the springs active at the start) for every step and every load of a shared
  set-up. While few springs differ from the reference (ligaments, facet contact), the loop runs in the
  springs' space (:class:`LowRank`): with ``S = G A0^-1 G^T`` (one kept column per spring whose state ever
  differed from the reference; PARDISO computes it by a partial solve) every trial set costs a dense system
  of the springs that differ, by the Woodbury identity, and the displacements are solved once, for the
  final set: two solves with the factorisation per load, however many steps (the second, whose right-hand
  side lives on the springs' unknowns, at half the cost with PARDISO). Where more springs differ
  than the columns pay for (:data:`MAX_COLUMNS`: thousands of toe-region annulus fibres change state), each
  step is a CG solve, loose while the set moves and to ``rtol`` to confirm it, as with AMG, preconditioned
  by the reference factorisation together with an exact factorisation of the trial set's matrix restricted
  to the unknowns the springs touch (:class:`~vertebrafe.fem.spring_block.SpringBlock`, refactorised
  numerically for each trial set): with the reference alone CG needed 20-30 solves per set to 1e-8 (the
  taut fibres stiffen ``A0`` up to about 20-fold), with the block about 10; T12-L2 at 2 mm with posterior
  elements and fibres, relaxed standing: 34 solves with the factorisation instead of 71, the same steps
  and final set (benchmarks/README.md, "The springs' block in the fibre loop"). With the rigid-body modes of
  the model's bodies (:attr:`Model.bodies <vertebrafe.fem.Model.bodies>`: the vertebrae) in the deflation
  as well, the relative motions of the vertebrae that the facet and ligament springs restrain leave CG: 19
  solves instead of 29 at 2 mm, the same final set. The columns would cost one solve per 8 springs (a new
  factorisation costs about 100 solves).
- AMG: the hierarchy built on the matrix with every spring active (kept for later loads) preconditions the CG of
  every step, which starts from the previous solution and, while the set moves, stops after
  :data:`LOOSE_MAXITER` iterations, as the direct loop's CG, until a step changes no state: T12-L2 with
  posterior elements, relaxed standing, 57 CG iterations instead of 121 at 2 mm and 54 instead of 111 at
  1 mm, the same final set (benchmarks/README.md, "Short CG steps in the AMG loop"). One CG runs per trial
  set: the steps that change no state are checkpoints of it, not restarts (:func:`_checked`).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401  (sp.csgraph)
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError
from . import solvers
from .sparse_kernels import BlockMatrix
from .spring_block import SpringBlock

#: Most active-set steps before giving up (each is one linear solve).
MAX_ITERATIONS = 30
#: Relative residual of the CG solves while the active set is still moving; once it stops, one solve
#: to the requested rtol confirms it (the states hinge on the signs of elongations, which a 1e-4
#: residual already fixes for all but springs right at their onset).
LOOSE_RTOL = 1e-4
#: CG iterations of each step of the direct loop's CG (:func:`_iterate` preconditioned by the reference
#: factorisation) while the active set moves: a trial set needs only the signs of the elongations, which
#: a few iterations from the previous solution settle for all but a few springs, so the steps do not solve
#: to :data:`LOOSE_RTOL` a system that the next set changes again. Once a step changes no state (and its
#: residual is at :data:`LOOSE_RTOL`), the solves to ``rtol`` confirm the set as before. On the fractured
#: T12-L2 at 3 mm with fibres under flexion (the README main job's case, rtol 1e-6): 93 solves in 13 steps
#: instead of 299 in 11 (3 and 5 iterations: 89 / 94 solves in 21 / 18 steps); T12-L2 at 2 mm, relaxed
#: standing: 71 solves in 8 steps instead of 94 (benchmarks/README.md, "Short CG steps while the set moves"),
#: both with the reference factorisation alone as preconditioner. With the springs' block
#: (:class:`~vertebrafe.fem.spring_block.SpringBlock`) the 2 mm case takes 33 / 34 / 34 solves with 5 / 8 / 12.
#: With the block as a deflation (one block solve per iteration) 40 / 29 / 33 / 33 solves with 4 / 6 / 8 / 12
#: at 2 mm, and 41 / 51 solves (12 / 11 steps, 10 / 9 block factorisations) with 6 / 8 on the fractured case
#: at 3 mm (benchmarks/README.md, "Profile of the fibre run"). With the vertebrae's rigid-body modes in the
#: deflation too (:mod:`.bodies`) each short step gets further: 18 / 19 / 22 / 23 solves with 3 / 4 / 5 / 6 at
#: 2 mm (7 steps each), 25 / 29 / 36 solves in 11 / 10 / 10 steps (9 / 8 / 8 block factorisations) with 3 / 4 / 6
#: at 3 mm (2 mm: the same final set; 3 mm: the same taut counts; benchmarks/README.md, "Bodies' rigid motions
#: in the deflation"). From step ``max_iterations // 2`` on, steps solve to :data:`LOOSE_RTOL` again, so that a
#: set that keeps moving on short solves still gets full ones. The AMG loop takes the same short steps (until one
#: changes no state): T12-L2 with posterior elements, relaxed standing, 57 CG iterations in 10 steps instead of
#: 121 in 7 at 2 mm, 54 in 9 instead of 111 in 6 at 1 mm, the same final set (benchmarks/README.md, "Short CG
#: steps in the AMG loop").
LOOSE_MAXITER = 4
#: Memory for the kept columns of ``S = Gf A0^-1 Gf^T`` of the direct solve (:class:`LowRank`), bytes:
#: every column of 480 springs (T12-L2 at 2 mm with posterior elements) takes 1.8 MB.
LOW_RANK_BYTES = 256 * 2 ** 20
#: Most kept columns of ``S`` (:class:`LowRank`) with partial solves and with full solves; a trial set that
#: needs more makes the direct loop iterate (CG preconditioned by the factorisation). A full-solve column
#: costs about 1/8 of a single solve (blocks of 64 right-hand sides), a partial one 1/30 to 1/200: these
#: bounds keep the columns below the cost of a CG run (20-40 solves).
MAX_COLUMNS = {"partial": 4096, "full": 256}
#: Partial solves are prepared only where the springs touch at most this fraction of the unknowns: annulus
#: fibres embedded in the disc cells touch 16 % of them (T12-L2 at 3 mm), and the factorisation prepared
#: for them cost 9x a plain one (18.6 s against 2.0 s CPU), ligaments and facets 1-2 % (+20 %).
PARTIAL_MAX_FRACTION = 0.05


def solve(K, rhs, sets, T, free, constrained, g, n_points, method, rtol=1e-8, maxiter=None,
          near_nullspace=None, strength=None, max_iterations=MAX_ITERATIONS, cache=None, held=False, bodies=None,
          x0=None):
    """Solve the model with springs; updates every set's ``active`` state in place.

    K (N, N) BSR and rhs (N,): the assembled cells with constraints eliminated (:meth:`Model.solve`);
    sets: list of :class:`~vertebrafe.springs.SpringSet`; T (3 n_points, N) sparse map from the
    extended unknowns to node displacements; free, constrained (N,) bool; g (N,) prescribed values.
    cache: a dict kept by the caller for solves of the same ``K`` and springs with other loads (the
    factorisation of the reference matrix and its spring columns, or the AMG hierarchy); held: True
    where ``K`` alone is singular (a part held only by springs), so the reference keeps the springs
    active at the start. bodies: the model's :class:`~vertebrafe.fem.bodies.Bodies` or None (the direct loop's
    CG deflates their rigid-body modes). x0 (N,) or None: a start (0 on the eliminated unknowns); where it
    solves the model with the sets' current states to ``rtol`` and wants no state changed, it is the solution
    (no solve, ``info["start_accepted"]``); otherwise the AMG loop's CG starts from it (the direct loop starts
    from its reference solution).
    Returns ``(x (N,), info)``; info adds ``active_set_iterations``, ``active_set_changes`` (springs that
    changed state after each step), ``springs_active`` ``{set name: count}`` and ``setup_reused`` to the
    solver's keys; ``iterations`` counts all CG iterations (direct: solves with the reference factorisation).
    Where the direct loop iterates with CG it adds ``block_unknowns``, ``block_modes`` (the bodies' rigid-body
    modes in the deflation), ``block_factorizations`` and ``block_solves`` (the springs' block of
    :class:`~vertebrafe.fem.spring_block.SpringBlock`).
    """
    return _solve(K, rhs, sets, T, free, constrained, g, n_points, method, rtol, maxiter, near_nullspace, strength,
                  max_iterations, {} if cache is None else cache, held, bodies, x0)


def _solve(K, rhs, sets, T, free, constrained, g, n_points, method, rtol, maxiter, near_nullspace, strength,
           max_iterations, cache, held, bodies, x0):
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
            "setup_reused": bool(cache), "start_accepted": False}
    accepted = None if x0 is None else _accepts(K, rhs, Gf, k, onset - delta_c, delta_c, active, sets, bounds, x0, rtol)
    if accepted is not None:
        x, changes, residual = x0.copy(), [0], accepted
        info["start_accepted"] = True
    elif method == "direct":
        low = cache.get("low_rank")
        if low is None:
            # the reference: the cells and the linear springs that the factorisation can hold (dense terms
            # such as a fluid cavity stay low rank), plus, where K alone is singular, the springs active now
            low = cache["low_rank"] = LowRank(K, Gf, k * ((linear & in_amg) | (held & active)))
            info["setup_time"] += low.factor_time
        t1 = time.perf_counter()
        x, active, changes, residual, solves = _direct(low, K, rhs, Gf, k, onset, delta_c, linear, sets, bounds,
                                                       rtol, maxiter, max_iterations, cache, info, bodies)
        info.update(iterations=solves, solve_time=time.perf_counter() - t1, factorization=low.backend,
                    spring_columns=low.columns)
    else:
        x, active, changes, residual = _amg(K, rhs, Gf, k, onset, delta_c, active, in_amg, sets, bounds, rtol, maxiter,
                                            near_nullspace, strength, max_iterations, cache, info,
                                            np.zeros(K.shape[0]) if x0 is None else x0)
    for i, s in enumerate(sets):
        s.active = active[bounds[i]:bounds[i + 1]].copy()
    info.update(residual=residual, active_set_iterations=len(changes), active_set_changes=changes,
                springs_active={s.name: int(s.active.sum()) for s in sets},
                active_set_time=time.perf_counter() - t0)
    return x, info


def _amg(K, rhs, Gf, k, onset, delta_c, active, in_amg, sets, bounds, rtol, maxiter, near_nullspace, strength,
         max_iterations, cache, info, x0):
    """The active-set loop with AMG-CG (:func:`_iterate`) from ``x0``: one hierarchy, built on the matrix with every
    spring active (whatever states the loop starts from) and kept in ``cache`` for later loads, preconditions
    every step. Updates ``info``; returns ``(x, active, changes per step, residual)``."""
    M = cache.get("amg")
    if M is None:           # one hierarchy for every step and load: the springs change by low rank
        t1 = time.perf_counter()
        with solvers.one_blas_thread():
            ml = solvers.amg_hierarchy((K + Gf.T @ sp.diags(k * in_amg) @ Gf).tobsr(blocksize=(3, 3)),
                                       near_nullspace, strength)
        M = solvers.amg_preconditioner(ml)
        out = np.flatnonzero(~in_amg)                # dense terms kept out (fluid cavities): exact by Woodbury
        if out.size:
            M = solvers.low_rank_corrected(M, Gf[out].T, k[out])
        cache["amg"] = M
        cache["amg_info"] = dict(levels=len(ml.levels), operator_complexity=float(ml.operator_complexity()))
        info["setup_time"] += time.perf_counter() - t1
    info.update(cache["amg_info"])
    t1 = time.perf_counter()
    x, active, changes, residual, its = _checked(K, rhs, Gf, k, onset - delta_c, delta_c, active, sets, bounds,
                                                 rtol, maxiter, max_iterations, M, x0, LOOSE_MAXITER)
    info["solve_time"] += time.perf_counter() - t1
    info["iterations"] += its
    return x, active, changes, residual


def _iterate(K, rhs, Gf, k, free_length, delta_c, active, sets, bounds, rtol, maxiter, max_iterations,
             precondition, x, name, short=None):
    """The active-set loop with CG preconditioned by ``M`` of ``precondition(d) -> (M, start)`` for the spring
    stiffnesses ``d`` of the trial set (``M`` a ``LinearOperator``: an AMG V-cycle, or the deflation of
    :class:`.SpringBlock`; ``start(x, b)`` None or the start that ``M`` needs, :meth:`.SpringBlock.start`), from
    ``active`` and ``x``: each step's CG starts from the previous solution and stops at :data:`LOOSE_RTOL` (with ``short``,
    after at most ``short`` iterations, in the first ``max_iterations // 2`` steps) while the set moves; once it stops
    moving, a solve to ``rtol`` confirms it (and the loop goes on if that changes a state). This is the direct loop's;
    the AMG loop (:func:`_checked`) runs one CG per trial set and stops short only until a step changes no state: a
    CG preconditioned by a V-cycle and restarted every few iterations converges much more slowly than one run
    (L4-L5 at 6 mm: 14 short steps that changed no state, 91 CG iterations in all, against 82 when the first such
    step is followed by one CG to :data:`LOOSE_RTOL`). The direct loop keeps its short steps (its preconditioner is
    a factorisation, and its :data:`LOOSE_MAXITER` was chosen with them).
    ``free_length (ks,)``: onset minus the elongation of the prescribed motion.
    Returns ``(x, active, changes per step, relative residual, CG iterations)``."""
    changes = []
    iterations = 0
    tight = False
    loose = max(rtol, LOOSE_RTOL)
    product = _with_springs(K, Gf)
    for step in range(1, max_iterations + 1):
        d = k * active
        b = rhs + Gf.T @ (d * free_length)
        A = spla.LinearOperator(K.shape, matvec=lambda v, d=d: product(v, d), dtype=float)
        target = rtol if tight else loose
        cut = short is not None and not tight and step <= max_iterations // 2
        M, start = precondition(d)
        with solvers.one_blas_thread():
            x, its, residual = (_cg(A, b, x, M, target, short, restarts=0, start=start) if cut
                                else _cg(A, b, x, M, target, maxiter, start=start))
        iterations += its
        if not np.all(np.isfinite(x)):
            raise _non_finite("displacements", step)
        if residual > target * 1.0001 and not cut:
            raise _stuck(step, residual, rtol, d, name)
        want = _wanted(sets, bounds, Gf @ x + delta_c)
        changed = int(np.count_nonzero(want != active))
        changes.append(changed)
        active = want
        if changed == 0:
            if tight:
                break
            # the set settled on loose solves: confirm it with a full-accuracy one (after a short solve, first
            # go on to the loose residual with the same set)
            tight = residual <= loose * 1.0001
    else:
        _not_settled(max_iterations, changes)
    return x, active, changes, residual, iterations


def _checked(K, rhs, Gf, k, free_length, delta_c, active, sets, bounds, rtol, maxiter, max_iterations, M, x, short):
    """The AMG loop with the preconditioner ``M``: the steps of :func:`_iterate` (at most ``short`` CG iterations per
    step while the set moves, in the first ``max_iterations // 2`` steps; after the first such step that changes no
    state, on to :data:`LOOSE_RTOL`, then to ``rtol``), but one CG per trial set: the steps are checkpoints of that CG (after
    ``short`` iterations, at :data:`LOOSE_RTOL`, at ``rtol``) at which the set is checked, and CG restarts only where
    a state changed. :func:`_iterate` restarted CG at every step, also where the set stayed, and a CG preconditioned
    by a V-cycle that restarts loses its Krylov space: the rest state of T12-L2 at 2 mm with posterior elements
    took 66 + 49 CG iterations in its two solved steps, one CG per set 58 + 46, the load 52 either way (the same
    final sets; benchmarks/README.md, "Where the load's 52 CG iterations go"). Each checkpoint is one entry of
    ``changes`` (one active-set step). ``free_length (ks,)``: onset minus the elongation of the prescribed motion.
    Returns ``(x, active, changes per step, relative residual, CG iterations)``."""
    changes = []
    iterations = 0
    loose = max(rtol, LOOSE_RTOL)
    settled = False
    limit = maxiter or 2000
    product = _with_springs(K, Gf)
    while True:
        step = len(changes) + 1
        d = k * active
        b = rhs + Gf.T @ (d * free_length)
        nb = np.linalg.norm(b) or 1.0

        def A(v, d=d):
            return product(v, d)

        marks = ([("short", short)] if short is not None and not settled and step <= max_iterations // 2 else [])
        marks += ([("loose", loose)] if loose > rtol else []) + [("tight", rtol)]
        moved = False
        its = restarts = 0
        x = np.array(x, dtype=float)                  # updated in place below, as in scipy's cg
        with solvers.one_blas_thread():
            r = b - A(x)
            p = rz = None                             # the direction: from the first V-cycle on
            residual = float(np.linalg.norm(r)) / nb
            while marks:
                kind, value = marks[0]
                if residual <= (loose if kind == "short" else value) or (kind == "short" and its >= value):
                    if kind == "tight":
                        residual = _residual(A(x), b)
                        if residual > rtol and restarts < 2:     # the recursive residual drifted: restart
                            restarts += 1
                            r = b - A(x)
                            p = None
                            continue
                    marks.pop(0)
                    if not np.all(np.isfinite(x)):
                        raise _non_finite("displacements", step)
                    if kind == "tight" and residual > rtol * 1.0001:
                        raise _stuck(step, residual, rtol, d)
                    want = _wanted(sets, bounds, Gf @ x + delta_c)
                    changed = int(np.count_nonzero(want != active))
                    changes.append(changed)
                    active = want
                    if changed:
                        moved = True
                        break
                    if len(changes) >= max_iterations and marks:
                        _not_settled(max_iterations, changes)
                    settled = settled or kind == "short"
                    step = len(changes) + 1
                    continue
                if its >= limit:
                    raise _stuck(step, residual, value, d)
                z = M @ r                                 # the V-cycle only where CG goes on (none after a stop)
                rz, rz_old = float(r @ z), rz
                if p is None:
                    p = z.copy()
                else:
                    p *= rz / rz_old
                    p += z
                q = A(p)
                alpha = rz / float(p @ q)
                x += alpha * p
                r -= alpha * q
                its += 1
                residual = float(np.linalg.norm(r)) / nb
        iterations += its
        if not moved:
            return x, active, changes, residual, iterations
        if len(changes) >= max_iterations:
            _not_settled(max_iterations, changes)


def _with_springs(K, Gf):
    """``product(v, d) = K v + Gf^T diag(d) Gf v``: the cells' stiffness ``K`` (BSR; its product on all of numba's
    threads, :class:`~vertebrafe.fem.sparse_kernels.BlockMatrix`, where SciPy's runs on one) with the springs'
    stiffnesses ``d (ks,)`` on the elongation map ``Gf``."""
    cells = BlockMatrix(K)

    def product(v, d):
        return cells.matvec(v) + Gf.T @ (d * (Gf @ v))

    return product


def _stuck(step, residual, target, d, name="amg"):
    """The error of an active-set step whose ``name`` solve stopped at ``residual`` above ``target`` with the
    spring stiffnesses ``d (ks,)`` of its trial set."""
    return ConvergenceError(f"active-set step {step}: the {name} solve reached a relative residual {residual:.3g} > "
                            f"rtol {target:g}; with {int((d > 0).sum())} of {d.size} springs active the model may be a "
                            "mechanism (slack springs carry nothing): check that the load can be carried",
                            iterations=step, residual=residual)


def _non_finite(what, step):
    """The error of an active-set step that produced non-finite ``what`` (displacements, elongations)."""
    return ConvergenceError(f"the active-set solve produced non-finite {what}; the model may be a mechanism once "
                            "slack springs carry nothing", iterations=step)


def _accepts(K, rhs, Gf, k, free_length, delta_c, active, sets, bounds, x, rtol):
    """The relative residual of ``x`` where it solves the system of the springs' states ``active`` to ``rtol`` and
    those are the states it wants (the active-set loop's stop), else None."""
    d = k * active
    b = rhs + Gf.T @ (d * free_length)
    residual = _residual(_with_springs(K, Gf)(x, d), b)
    if not residual <= rtol or np.any(_wanted(sets, bounds, Gf @ x + delta_c) != active):
        return None
    return residual


def _wanted(sets, bounds, delta):
    """The state every spring wants at elongations ``delta (ks,)``."""
    return np.concatenate([s.wants_active(delta[bounds[i]:bounds[i + 1]]) for i, s in enumerate(sets)])


def _not_settled(max_iterations, changes):
    raise ConvergenceError(f"the active set of the one-sided springs did not settle in {max_iterations} "
                           f"steps (state changes per step: {changes}); the load may make the model a "
                           "mechanism or the springs chatter", iterations=max_iterations)


def _direct(low, K, rhs, Gf, k, onset, delta_c, linear, sets, bounds, rtol, maxiter, max_iterations, cache, info,
            bodies):
    """The active-set loop of the direct solve. In the springs' space while the columns pay: with the
    reference ``low`` every trial set costs a small dense system (:meth:`LowRank.elongations`), and the
    displacements are solved once, for the final set (then refined on the true residual while above
    ``rtol``). From the first trial set whose springs need more columns than :data:`MAX_COLUMNS` or
    :data:`LOW_RANK_BYTES` allow, the loop goes on with CG preconditioned by the reference factorisation
    (:func:`_iterate`, from the reference solution). ``onset (ks,)``, ``delta_c (ks,)``: the elongation of
    the prescribed motion.
    Returns ``(x, active, changes per step, relative residual, solves with the factorisation)``."""
    active = (low.d0 > 0) | linear               # start from the reference state: it needs no columns
    free_length = onset - delta_c
    y0 = low.reference(rhs + Gf.T @ (low.d0 * free_length))
    solves = 1
    e0 = Gf @ y0
    changes = []
    for step in range(1, max_iterations + 1):
        d = k * active
        found = low.elongations(d, e0, free_length)
        if found is None:
            block = cache.get("spring_block")
            if block is None:
                block = cache["spring_block"] = SpringBlock(K, Gf, low.d0, low.reference, bodies)
            before = block.factorizations, block.solves
            x, active, more, residual, its = _iterate(K, rhs, Gf, k, free_length, delta_c, active, sets, bounds, rtol,
                                                      maxiter, max_iterations - len(changes),
                                                      lambda d: (block.operator(d), lambda x, b: block.start(d, x, b)),
                                                      y0, "direct", short=LOOSE_MAXITER)
            info.update(block_unknowns=int(block.unknowns.size), block_modes=int(block.modes.shape[1]),
                        block_factorizations=block.factorizations - before[0], block_solves=block.solves - before[1])
            return x, active, changes + more, residual, solves + its
        u, e = found
        if not np.all(np.isfinite(e)):
            raise _non_finite("elongations", step)
        want = _wanted(sets, bounds, e + delta_c)
        changed = int(np.count_nonzero(want != active))
        changes.append(changed)
        active = want
        if changed == 0:
            break
    else:
        _not_settled(max_iterations, changes)
    x = y0 + low.displacement(d, u)
    solves += 1 if u.size else 0
    b = rhs + Gf.T @ (d * free_length)
    product = _with_springs(K, Gf)

    def apply(v):
        return product(v, d)

    r = b - apply(x)
    residual = _residual(b - r, b)
    for _ in range(solvers.REFINEMENT_STEPS):
        if not residual > rtol:
            break
        x = x + low.solve(d, r)
        solves += 2
        r = b - apply(x)
        previous, residual = residual, _residual(b - r, b)
        if not residual < 0.5 * previous:
            break
    if not np.all(np.isfinite(x)) or residual > max(rtol, 1e-6) * 1.0001:
        raise ConvergenceError(f"the direct active-set solve reached a relative residual {residual:.3g} > rtol "
                               f"{rtol:g}; with {int((d > 0).sum())} of {d.size} springs active the model may be a "
                               "mechanism (slack springs carry nothing): check that the load can be carried",
                               iterations=len(changes), residual=residual)
    return x, active, changes, residual, solves


class LowRank:
    """A factorised reference ``A0 = K + Gf^T diag(d0) Gf`` and the spring-space operator
    ``S = Gf A0^-1 Gf^T``, which solve ``(K + Gf^T diag(d) Gf) x = b + Gf^T diag(d) o`` for any spring
    stiffnesses ``d (ks,)`` exactly: with ``y0 = A0^-1 (b + Gf^T diag(d0) o)``, ``e0 = Gf y0`` and the
    springs ``c`` where ``d != d0`` (``D = diag(d - d0)_c``),

        (D^-1 + S_cc) u = o_c - e0_c,    elongations e = e0 + S_:c u,    x = y0 + A0^-1 Gf_c^T u.

    The active-set loop needs only ``e``: a trial set costs a dense system of the springs that differ from
    the reference. A column ``S_:j`` is computed the first time spring ``j`` differs and kept (also for
    later loads of a shared set-up). With PARDISO the columns come from partial solves (right-hand sides
    and solution components only on the springs' unknowns, :meth:`PardisoCholesky.partial
    <vertebrafe.fem.solvers.PardisoCholesky.partial>`), where the springs touch at most
    :data:`PARTIAL_MAX_FRACTION` of the unknowns: about a twentieth of a full solve each; otherwise (and with
    another factorisation) from full solves. Only the columns of ``S`` are kept, at most
    :data:`MAX_COLUMNS` and :data:`LOW_RANK_BYTES`.
    """

    def __init__(self, K, Gf, d0):
        t0 = time.perf_counter()
        self.Gf, self.d0 = Gf, d0
        touched = np.unique(Gf.indices[Gf.data != 0])
        selected = touched if touched.size <= PARTIAL_MAX_FRACTION * K.shape[0] else None
        self._solve, self.backend = solvers.factorize(K + Gf.T @ sp.diags(d0) @ Gf, selected=selected)
        self.partial = getattr(self._solve, "selection", None) is not None
        self.column = np.full(d0.size, -1)                 # column of S of each spring, -1: none yet
        self.S = np.zeros((d0.size, 0))
        self.factor_time = time.perf_counter() - t0

    @property
    def columns(self):
        """Number of springs whose column of ``S`` is computed."""
        return self.S.shape[1]

    def _columns(self, c):
        """``S[:, c]``, computing the missing columns in blocks of right-hand sides (the BLAS threads in
        force, both cores); None if they would exceed :data:`MAX_COLUMNS` or :data:`LOW_RANK_BYTES`."""
        missing = c[self.column[c] < 0]
        if missing.size:
            if (self.S.shape[1] + missing.size > MAX_COLUMNS["partial" if self.partial else "full"]
                    or self.S.nbytes + 8 * self.S.shape[0] * missing.size > LOW_RANK_BYTES):
                return None
            solve = self._solve.partial if self.partial else self._solve
            new = [self.Gf @ solve(self.Gf[part].T.toarray())            # at most 64 right-hand sides at a time
                   for part in np.array_split(missing, -(-missing.size // 64))]
            self.column[missing] = self.S.shape[1] + np.arange(missing.size)
            self.S = np.hstack([self.S] + new)
        return self.S[:, self.column[c]]

    def reference(self, b):
        """``A0^-1 b``."""
        with solvers.one_blas_thread():      # single vectors: see solvers.Prepared.solve
            return self._solve(b)

    def elongations(self, d, e0, o):
        """``(u, e)`` of the springs that differ from the reference (see above), or None where their columns
        would exceed :data:`MAX_COLUMNS` or :data:`LOW_RANK_BYTES`."""
        c = np.flatnonzero(d != self.d0)
        if c.size == 0:
            return np.zeros(0), e0
        Sc = self._columns(c)
        if Sc is None:
            return None
        capacitance = np.diag(1.0 / (d[c] - self.d0[c])) + 0.5 * (Sc[c] + Sc[c].T)
        try:
            u = np.linalg.solve(capacitance, o[c] - e0[c])
        except np.linalg.LinAlgError:
            u = np.full(c.size, np.nan)
        return u, e0 + Sc @ u

    def displacement(self, d, u):
        """``A0^-1 Gf_c^T u``, the springs' part of the displacements (0 where none differ); with partial solves
        by :meth:`PardisoCholesky.sparse_rhs <vertebrafe.fem.solvers.PardisoCholesky.sparse_rhs>` (the
        right-hand side lives on the springs' unknowns: half the cost of a full solve)."""
        c = np.flatnonzero(d != self.d0)
        if not c.size:
            return 0.0
        if not self.partial:
            return self.reference(self.Gf[c].T @ u)
        with solvers.one_blas_thread():      # single vectors: see solvers.Prepared.solve
            return self._solve.sparse_rhs(self.Gf[c].T @ u)

    def solve(self, d, b):
        """``(K + Gf^T diag(d) Gf)^-1 b`` (two solves with the factorisation), or None where the springs that
        differ from the reference need more columns than allowed (see :meth:`elongations`)."""
        y = self.reference(b)
        found = self.elongations(d, self.Gf @ y, np.zeros(d.size))
        return None if found is None else y + self.displacement(d, found[0])


def _residual(Ax, b):
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(Ax - b) / nb) if nb > 0 else float(np.linalg.norm(Ax))


def _cg(A, b, x0, M, rtol, maxiter, restarts=2, start=None):
    """CG from ``x0`` (passed through ``start(x, b)`` where given, at every restart too); returns ``(x,
    iterations, true relative residual)``. CG stops on its recursively updated residual, which drifts from the
    true one near round-off: while the true residual is above ``rtol``, CG restarts from its solution (at most
    ``restarts`` times)."""
    count = [0]

    def callback(_):
        count[0] += 1

    x = x0
    for _ in range(restarts + 1):
        if start is not None:
            x = start(x, b)
        x, _ = spla.cg(A, b, x0=x, rtol=rtol, atol=0.0, maxiter=maxiter or 2000, M=M, callback=callback)
        residual = _residual(A @ x, b)
        if not residual > rtol:
            break
    return x, count[0], residual


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
