"""Linear solvers for the assembled system and the rigid-body (under-constraint) check.

- ``"direct"``: sparse LU factorisation (SciPy SuperLU); exact up to round-off, for small systems.
- ``"amg"``: conjugate gradients preconditioned by smoothed-aggregation AMG (pyamg) on the 3x3 block
  matrix, with the six rigid-body modes as near-nullspace.
- ``"auto"``: direct below :data:`DIRECT_MAX_DOFS` unknowns, AMG above.
"""
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from ..errors import ConvergenceError, InputError, UnderConstrainedError
from . import relaxation

DIRECT_MAX_DOFS = 5_000
#: Iterative-refinement steps of the direct solve and restarts of CG when the true residual is above rtol.
REFINEMENT_STEPS = 3
CG_RESTARTS = 3
SOLVERS = ("auto", "direct", "amg")

#: Smoothed-aggregation settings, chosen with benchmarks/bench_core.py and segment models: node
#: (3x3 block) aggregation with all couplings kept (theta = 0) except across material jumps (see
#: :func:`material_strength`), one Jacobi step on the prolongator with a local (Gershgorin) spectral
#: weighting (pyamg's default eigenvalue estimate cost more than the rest of the setup), symmetric
#: node-block Gauss-Seidel (a symmetric V-cycle for CG; on a bone-disc segment 20 % fewer iterations
#: than point Gauss-Seidel), run by the numba kernel of :mod:`vertebrafe.fem.relaxation` (same iterates,
#: half the time of pyamg's), and a sparse LU on the coarsest level (pyamg's default dense
#: pseudo-inverse of a grid of a few thousand unknowns took minutes).
AMG_OPTIONS = dict(
    symmetry="hermitian",
    strength=("symmetric", {"theta": 0.0}),
    smooth=("jacobi", {"omega": 4.0 / 3.0, "degree": 1, "weighting": "local"}),
    presmoother=("block_gauss_seidel", {"sweep": "symmetric", "iterations": 1}),
    postsmoother=("block_gauss_seidel", {"sweep": "symmetric", "iterations": 1}),
    improve_candidates=None,
    max_coarse=300,
    coarse_solver="splu",
    keep=False,
)

#: Nodes whose stiffness differs by more than this factor are not aggregated together.
MATERIAL_JUMP = 3.0


def material_strength(indptr, indices, block_modulus, jump=MATERIAL_JUMP):
    """Strength-of-connection graph ``(nb, nb)`` for the finest AMG level: the block pattern without
    the couplings between blocks whose moduli ``block_modulus (nb,)`` (MPa) differ by more than ``jump``.

    Aggregates then stay inside one material. An aggregate that straddles, say, a 12 GPa cortical shell
    and 200 MPa cancellous bone interpolates with rigid-body modes that are not its low-energy modes;
    keeping such aggregates apart halved the CG iterations of a bone-disc segment model.
    """
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    ratio = np.abs(np.log(block_modulus[rows] / block_modulus[indices]))
    keep = ratio <= np.log(jump)
    return sp.csr_matrix((np.ones(int(keep.sum())), indices[keep], np.concatenate([[0], np.cumsum(
        np.bincount(rows[keep], minlength=indptr.size - 1))])), shape=(indptr.size - 1,) * 2)
_AXES = "xyz"


def rigid_body_modes(coords, rotation_blocks=None):
    """The six rigid-body modes ``(3 nb, 6)`` at block positions ``coords (nb, 3)`` mm.

    Columns: translations x, y, z and rotations about x, y, z (about the origin, in mm/rad).
    Rows of blocks flagged in ``rotation_blocks (nb,)`` hold plate rotations: 0 for the translations and
    the unit rotation for the rotations.
    """
    nb = coords.shape[0]
    B = np.zeros((nb, 3, 6))
    for c in range(3):
        B[:, c, c] = 1.0
        e = np.zeros(3)
        e[c] = 1.0
        B[:, :, 3 + c] = np.cross(e, coords)
    if rotation_blocks is not None:
        B[rotation_blocks] = 0.0
        for c in range(3):
            B[rotation_blocks, c, 3 + c] = 1.0
    return B.reshape(3 * nb, 6)


def _describe_modes(null, center):
    """Readable names of the rigid motions spanned by the columns of ``null (6, r)``."""
    names = []
    proj = null @ null.T
    found = []
    for i in range(6):
        e = np.zeros(6)
        e[i] = 1.0
        if np.linalg.norm(proj @ e - e) < 1e-6:
            found.append(e)
            if i < 3:
                names.append(f"translation along {_AXES[i]}")
            else:
                names.append(f"rotation about the {_AXES[i - 3]} axis through "
                             f"({center[0]:.4g}, {center[1]:.4g}, {center[2]:.4g}) mm")
    rest = null - (np.array(found).T @ (np.array(found) @ null) if found else 0.0)
    u, s, _ = np.linalg.svd(rest, full_matrices=False)
    for v in u[:, s > 1e-6].T:
        t, w = v[:3], v[3:]
        if np.linalg.norm(w) > 1e-6 * max(np.linalg.norm(t), 1.0):
            axis = w / np.linalg.norm(w)
            # t = w x (c - p)  ->  closest point p on the axis
            p = center + np.cross(w, t) / (w @ w)
            names.append(f"rotation about axis ({axis[0]:.3g}, {axis[1]:.3g}, {axis[2]:.3g}) through "
                         f"({p[0]:.4g}, {p[1]:.4g}, {p[2]:.4g}) mm")
        else:
            d = t / np.linalg.norm(t)
            names.append(f"translation along ({d[0]:.3g}, {d[1]:.3g}, {d[2]:.3g})")
    return names


def check_rigid_body_modes(label, coords, rotation_blocks, free, constrained, has_cells):
    """Raise :class:`UnderConstrainedError` if any connected part of the model can move rigidly.

    label (nb,): connected part of each block; coords (nb, 3) block positions (mm); rotation_blocks (nb,)
    bool; free (3 nb,) bool free DOFs; constrained (3 nb,) bool DOFs prescribed by the user (not
    eliminated ties); has_cells (nb,) bool blocks that belong to at least one cell.
    """
    dof_label = np.repeat(label, 3)
    free_parts = np.flatnonzero(np.bincount(dof_label[free], minlength=label.size))
    problems = []
    all_modes = []
    for part in free_parts:
        blocks = np.flatnonzero((label == part) & has_cells)
        if blocks.size == 0:
            continue
        center = coords[blocks][~rotation_blocks[blocks]].mean(axis=0)
        size = max(np.ptp(coords[blocks], axis=0).max(), 1e-12)
        rows = np.flatnonzero(constrained & (dof_label == part))
        # mode values at the constrained DOFs; rotations per unit rotation/size, so columns are O(1)
        modes = rigid_body_modes(coords[rows // 3] - center, rotation_blocks[rows // 3])
        A = modes.reshape(rows.size, 3, 6)[np.arange(rows.size), rows % 3]
        A[:, 3:] /= size
        lam, vec = np.linalg.eigh(A.T @ A)
        null = vec[:, lam <= 1e-14 * max(lam.max(), 1e-300)] if rows.size else np.eye(6)
        if null.shape[1]:
            null[3:] /= size
            null /= np.linalg.norm(null, axis=0)
            names = _describe_modes(null, center)
            all_modes.extend(names)
            problems.append(f"part with {blocks.size} node blocks around ({center[0]:.4g}, {center[1]:.4g}, "
                            f"{center[2]:.4g}) mm is free to move: " + "; ".join(names))
    if problems:
        raise UnderConstrainedError(
            "the model is under-constrained (rigid-body motion possible): " + " | ".join(problems)
            + ". Fix or prescribe enough DOFs (e.g. model.fix(nodes, 'xyz') on a support surface) or "
              "constrain the rigid plate.", free_modes=all_modes)


def choose(method, n):
    """The solver that ``method`` (``"auto"``, ``"direct"`` or ``"amg"``) means for ``n`` unknowns."""
    if method not in SOLVERS:
        raise InputError(f"solver = {method!r}; allowed: {', '.join(map(repr, SOLVERS))}")
    if method == "auto":
        return "direct" if n <= DIRECT_MAX_DOFS else "amg"
    return method


def amg_hierarchy(K, near_nullspace=None, strength=None):
    """Smoothed-aggregation hierarchy (pyamg ``MultilevelSolver``) of ``K`` with :data:`AMG_OPTIONS`.

    ``near_nullspace (N, 6)``: rigid-body modes; ``strength``: optional finest-level strength graph
    (:func:`material_strength`). Its ``aspreconditioner(cycle="V")`` is the CG preconditioner.
    """
    import pyamg

    options = dict(AMG_OPTIONS)
    if strength is not None:
        options["strength"] = [("predefined", {"C": strength}), AMG_OPTIONS["strength"]]
    return relaxation.use_block_gauss_seidel(pyamg.smoothed_aggregation_solver(K, B=near_nullspace, **options))


def solve(K, f, method="auto", rtol=1e-8, maxiter=None, near_nullspace=None, strength=None):
    """Solve with BLAS limited to one thread (see :func:`_solve`).

    The Krylov loop calls BLAS on single vectors, where threads only add wake-up latency; on a busy
    2-core machine multithreaded OpenBLAS made each dot product 5000x slower (17 ms instead of 3 us).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve(K, f, method, rtol, maxiter, near_nullspace, strength)


def _solve(K, f, method, rtol, maxiter, near_nullspace, strength):
    """Solve ``K u = f`` for the symmetric positive-definite block matrix ``K`` (scipy BSR, 3x3).

    ``near_nullspace (N, 6)``: rigid-body modes for AMG; ``strength``: optional finest-level strength
    graph for AMG (:func:`material_strength`). Returns ``(u, info)``; ``info`` holds ``solver``,
    ``iterations``, ``residual`` (true relative residual
    ||K u - f|| / ||f||), ``setup_time`` and ``solve_time`` (s). Both solvers are judged on the true
    residual: the direct solve refines the LU solution, CG restarts from its iterate while the true residual
    is above ``rtol``. Raises :class:`ConvergenceError` if the residual does not reach ``rtol`` (with advice
    for an iteration limit or a stagnation) or the result is not finite.
    """
    method = choose(method, K.shape[0])
    if not (0 < rtol < 1):
        raise InputError(f"rtol = {rtol!r}; allowed range (0, 1)")
    n = K.shape[0]
    fmax = float(np.max(np.abs(f))) if n else 0.0
    if not np.isfinite(fmax):
        raise InputError(f"the load vector holds non-finite values (max |f| = {fmax}); allowed: finite forces (N)")
    fnorm = fmax * float(np.linalg.norm(f / fmax)) if fmax > 0 else 0.0
    info = {"solver": method}
    if fnorm == 0.0:
        u = np.zeros(n)
        info.update(iterations=0, residual=0.0, setup_time=0.0, solve_time=0.0)
        return u, info

    def true_residual(u):
        return float(np.linalg.norm((K @ u - f) / fmax) * fmax / fnorm)

    t0 = time.perf_counter()
    if method == "direct":
        lu = spla.splu(K.tocsc(), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
        t1 = time.perf_counter()
        u = lu.solve(f)
        iterations = 1
        residual = true_residual(u)
        for _ in range(REFINEMENT_STEPS):        # iterative refinement until rtol (or no more gain)
            if not residual > rtol:
                break
            u = u - lu.solve(K @ u - f)
            iterations += 1
            previous, residual = residual, true_residual(u)
            if not residual < 0.5 * previous:
                break
    else:
        ml = amg_hierarchy(K, near_nullspace, strength)
        M = ml.aspreconditioner(cycle="V")
        t1 = time.perf_counter()
        count = [0]

        def callback(_):
            count[0] += 1

        limit = maxiter or 2000
        u, status = spla.cg(K, f, rtol=rtol, atol=0.0, maxiter=limit, M=M, callback=callback)
        residual = true_residual(u)
        # CG stops on its recurrence residual, which drifts from the true one: restart from u (fresh
        # residual) while the true residual is above rtol, iterations remain and a restart still gains
        restarts = 0
        while residual > rtol and count[0] < limit and restarts < CG_RESTARTS and np.isfinite(residual):
            u, status = spla.cg(K, f, x0=u, rtol=0.5 * rtol, atol=0.0, maxiter=limit - count[0], M=M,
                                callback=callback)
            restarts += 1
            previous, residual = residual, true_residual(u)
            if not residual < 0.5 * previous:
                break
        iterations = count[0]
        info.update(levels=len(ml.levels), operator_complexity=float(ml.operator_complexity()), restarts=restarts)
    t2 = time.perf_counter()
    if not np.all(np.isfinite(u)) or not np.isfinite(residual):
        raise ConvergenceError(f"the {method} solve produced non-finite displacements or residual; the model may "
                               "be singular (a mechanism), badly conditioned, or loaded beyond floating point "
                               f"range (max |f| = {fmax:.3g} N)", iterations=iterations, residual=residual)
    info.update(iterations=iterations, residual=residual, setup_time=t1 - t0, solve_time=t2 - t1)
    if residual > rtol:
        if method == "direct":
            advice = (f"; LU with {iterations - 1} refinement step(s) cannot reach it: the matrix is nearly "
                      "singular or too badly conditioned for this rtol (check materials and constraints, or "
                      "loosen solver.rtol)")
        elif iterations >= limit:
            advice = f"; the iteration limit maxiter = {limit} was reached: raise solver.maxiter or check the model"
        else:
            advice = (f"; CG stagnated (no further gain after {restarts} restart(s), {iterations} < maxiter = "
                      f"{limit} iterations): raising maxiter will not help; the system is too badly "
                      "conditioned for this rtol (loosen solver.rtol, or use solver = 'direct' on a small model, "
                      "and check for near-mechanisms or extreme material contrasts)")
        raise ConvergenceError(
            f"the {method} solve did not converge: relative residual {residual:.3g} after {iterations} "
            f"iteration(s), requested rtol = {rtol:g}" + advice, iterations=iterations, residual=residual)
    return u, info
