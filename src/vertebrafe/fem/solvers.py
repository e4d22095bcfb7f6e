"""Linear solvers for the assembled system and the rigid-body (under-constraint) check.

- ``"direct"``: sparse Cholesky factorisation of systems with more than :data:`CHOLESKY_MIN_DOFS`
  unknowns: Intel MKL PARDISO (pypardiso, a dependency on x86-64 Linux and Windows: METIS ordering)
  when it loads, else CHOLMOD (scikit-sparse, the ``direct`` extra: supernodal, METIS ordering) when it
  is installed; sparse LU (SciPy SuperLU) for smaller systems or when neither is there; exact up to
  round-off.
- ``"amg"``: conjugate gradients preconditioned by smoothed-aggregation AMG (pyamg) on the 3x3 block
  matrix, with the six rigid-body modes as near-nullspace.
- ``"auto"``: direct up to :func:`direct_max_dofs` unknowns, AMG above; :meth:`Model.solve
  <vertebrafe.fem.model.Model.solve>` with PARDISO instead compares, above
  :data:`~vertebrafe.fem.solver_choice.ESTIMATE_MIN_DOFS` unknowns, the predicted cost of both for the
  model at hand (:mod:`~vertebrafe.fem.solver_choice`: direct where the factorisation needs few flops per
  unknown and fits in memory: segments with annulus fibres; AMG for segments with posterior elements from
  2 mm down, T10-L5, compact models and where the factor would not fit).

:class:`Prepared` holds the one-time set-up of a matrix (factorisation or AMG hierarchy) and solves any
number of right-hand sides with it; :func:`solve` is set-up and one solve.
"""
import contextlib
import functools
import hashlib
import importlib.metadata
import os
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import ConvergenceError, InputError, UnderConstrainedError
from ..threads import one_blas_thread
from . import multigrid, relaxation, subdomain
from .multigrid import VCycle
from .sparse_kernels import BlockMatrix


#: "auto" picks the direct solver up to this many unknowns: with a sparse Cholesky (CHOLMOD or PARDISO),
#: and with SuperLU only. The Cholesky bound is where CHOLMOD's factorisation stops being faster than
#: AMG-CG on segment models (benchmarks/README.md, segment table); it includes T12-L2 at 2 mm with
#: posterior elements (122 919). PARDISO factorises the same systems in less than half CHOLMOD's time;
#: with PARDISO, ``Model.solve`` judges models above
#: :data:`~vertebrafe.fem.solver_choice.ESTIMATE_MIN_DOFS` by their predicted costs (:mod:`.solver_choice`)
#: instead, and the bound holds only for matrices solved without a model (:func:`solve`, :class:`Prepared`).
DIRECT_MAX_DOFS = 130_000
SUPERLU_MAX_DOFS = 5_000
#: :func:`factorize` uses a sparse Cholesky (when installed) above this many unknowns: a single vertebra
#: between plates (3 600-4 200 unknowns at 8-6 mm, a compact mesh with much fill) factorises in
#: 0.2-0.25 s with CHOLMOD against 1.5-2.1 s with SuperLU (measured on the loaded 2-core machine).
CHOLESKY_MIN_DOFS = 1_000
#: PARDISO settings (1-based ``iparm`` numbers of the MKL manual): 1 = 1, the values below replace the
#: defaults; 2 = 2, METIS nested-dissection ordering; 8 = 0, no iterative refinement inside PARDISO (its
#: default two steps tripled the cost of a solve; :class:`Prepared` refines on the true residual
#: instead); 10 = 8, pivot perturbation 1e-8 (unused for a positive-definite matrix).
PARDISO_IPARM = {1: 1, 2: 2, 8: 0, 10: 8}
#: ``iparm(34)``: PARDISO's conditional numerical reproducibility (CNR) for the number of MKL threads in force,
#: set at each analysis on more than one thread (on one the factorisation is sequential and repeats itself;
#: there CNR also changed the float32 factor of ``single``: 1.03e-3 against below 1e-3 of the double solution on
#: tests/fem/test_direct_backends.py's cube). Without it PARDISO's parallel factorisation of a matrix of 3x3 node
#: blocks gave another factor every second or third time on two threads (in one process or in another):
#: T12-L2 at 2 mm with fibres, relaxed standing, displacements and metrics that differed from run to run and
#: 19 or 20 solves (docs/springs.md, "Reproducibility"; cost: benchmarks/README.md, "Reproducible PARDISO
#: factorisations").
PARDISO_CNR = 34
#: ``iparm(37)`` of factorisations without partial solves: PARDISO converts the matrix to its variable
#: block format (blocks of at least 90 % density: the 3 unknowns of a node), whose analysis took 0.3-0.6 s
#: less CPU on T12-L2 at 3 mm (2.2 against 2.6 s in all); with partial solves (``iparm(31)``) MKL crashed,
#: and its statistics count blocks (so an analysis alone, ``factorize=False``, keeps the plain format), and
#: its refactorisations cost more (the springs' block, refactorised for every trial set, keeps the plain one).
PARDISO_VBSR = -90
#: Iterative-refinement steps of the direct solve and restarts of CG when the true residual is above rtol.
REFINEMENT_STEPS = 3
CG_RESTARTS = 3
SOLVERS = ("auto", "direct", "amg")

#: Smoothed-aggregation settings, chosen with benchmarks/bench_core.py and segment models: node
#: (3x3 block) aggregation with all couplings kept (theta = 0) except across material jumps (see
#: :func:`material_strength`), one Jacobi step on the prolongator, ``P = T - omega/rho D^-1 A T`` with the
#: diagonal blocks ``D``, ``rho`` the spectral radius of ``D^-1 A`` and omega = 4/3 (the choice of Vanek,
#: Mandel & Brezina 1996; ``rho`` by 8 Lanczos steps on all threads, ``multigrid.spectral_radius``, where
#: pyamg's Arnoldi estimate ran on one and cost more than the rest of the set-up; on the 1.24M-DOF box 17
#: instead of 28 CG iterations with the local Gershgorin weights used before, on T12-L2 at 2 mm 134
#: instead of 133; benchmarks/README.md, "Block-Jacobi prolongator weighting"), symmetric
#: node-block Gauss-Seidel (a symmetric V-cycle for CG; on a bone-disc segment 20 % fewer iterations
#: than point Gauss-Seidel), run by the numba kernel of :mod:`vertebrafe.fem.relaxation` (same iterates,
#: half the time of pyamg's), and a sparse LU on the coarsest level (pyamg's default dense
#: pseudo-inverse of a grid of a few thousand unknowns took minutes).
AMG_OPTIONS = dict(
    symmetry="hermitian",
    strength=("symmetric", {"theta": 0.0}),
    smooth=("jacobi", {"omega": 4.0 / 3.0, "degree": 1, "weighting": "block"}),
    presmoother=("block_gauss_seidel", {"sweep": "symmetric", "iterations": 1}),
    postsmoother=("block_gauss_seidel", {"sweep": "symmetric", "iterations": 1}),
    improve_candidates=None,
    max_coarse=300,
    coarse_solver="splu",
    keep=False,
)

#: Nodes whose stiffness differs by more than this factor are not aggregated together.
MATERIAL_JUMP = 3.0
#: Models with strong material contrasts (a :func:`material_strength` graph whose largest block modulus is
#: more than :data:`STRONG_CONTRAST` times its smallest): couplings weaker than this (pyamg's symmetric
#: measure, |a_ij| against sqrt(|a_ii| |a_jj|)) are dropped on the coarse levels, where no material is known
#: (a coupling across a stiffness jump scales as sqrt(E_soft / E_stiff)), and the finest level is smoothed
#: by :data:`FINE_SMOOTHER`. Other models keep theta 0 and one block Gauss-Seidel sweep on every level.
COARSE_THETA = 0.02
#: The contrast (ratio of the largest to the smallest block modulus, :func:`material_strength`) above which
#: :data:`COARSE_THETA` and :data:`FINE_SMOOTHER` apply. A decision between the two models measured, not a
#: physical bound: spine segments (disc and bone: 706 on T12-L2) need 35-45 % fewer CG iterations and
#: 10-30 % less process CPU with them (3 to 1 mm); the 1.24M-DOF block with a PMMA-like inclusion
#: (contrast 30) needs 13 instead of 17 iterations but more CPU (the smoother's spectral-radius estimate at
#: set-up, and iterations no cheaper in all), so it keeps the plain hierarchy (benchmarks/README.md,
#: "Chebyshev smoothing on the finest level").
STRONG_CONTRAST = 100.0
#: The finest level's smoother of models with strong contrasts, before and after the coarse correction:
#: ``("chebyshev", m)``, ``m`` steps of block-Jacobi Chebyshev iteration (:func:`relaxation.chebyshev`, the
#: spectral radius by :func:`multigrid.spectral_radius`), or ``("gauss_seidel", n)``, ``n`` symmetric block
#: Gauss-Seidel sweeps (the smoother of the other levels). On the default T12-L2 segment the coarse
#: threshold with four Chebyshev steps needs 70 / 76 CG iterations at 3 / 2 mm where theta 0 with one sweep
#: needs 128 / 134 (with two sweeps 71 / 84, at more process CPU than one sweep at 1.5 mm); four steps
#: cost seven passes over the matrix per V-cycle against eight of two sweeps, each pass on all rows in
#: parallel.
FINE_SMOOTHER = ("chebyshev", 4)
#: Values of the V-cycle's operators and prolongators: ``"single"`` (float32, sums in float64; CG keeps the
#: float64 stiffness matrix, so the solution is as accurate) or ``"double"``. The cycle streams its
#: operators several times per CG iteration; float32 values cut the process CPU of a CG iteration on the
#: 1.24M-DOF box by 10-20 % at the same iteration counts there and on T12-L2 segments (also with the
#: nucleus at nu 0.4999), for 63 B/DOF more peak memory (benchmarks/README.md, "Single-precision V-cycle").
AMG_PRECISION = "single"
#: Models with strong contrasts whose nearly incompressible material (bulk modulus above this many times the
#: shear modulus: nu above 0.495; the nucleus at nu 0.499 has 500) holds at most
#: :data:`SUBDOMAIN_MAX_FRACTION` of the blocks solve that material's unknowns exactly before and after the
#: V-cycle (:mod:`.subdomain`, symmetric multiplicative Schwarz; factorised once per set-up by
#: :func:`factorize`). On T12-L2 at 2 mm: 45 CG iterations instead of 76 (benchmarks/README.md, "Exact solve
#: of the nucleus around the V-cycle").
INCOMPRESSIBLE_RATIO = 100.0
SUBDOMAIN_MAX_FRACTION = 0.25
#: Precision of the subdomain's factor: ``"single"`` (PARDISO in float32, ``iparm(28)``; the Schwarz sums and
#: CG stay float64) or ``"double"``. On T12-L2 the nucleus's two solves per CG iteration took 28-38 % less
#: process CPU in single precision (1.5 mm: 25-28 against 37-40 ms) at the same iterations (45, 40, 47 at 2,
#: 1.5, 1 mm), a CG iteration 2-14 % less; like the float32 V-cycle, only the preconditioner changes, by
#: about the rounding, so CG reaches the same tolerance (benchmarks/README.md, "Single-precision factor of
#: the nucleus"). The factor is made and used on one MKL thread (:class:`Prepared`'s set-up and solves): on
#: two threads (made and used so) its solves took about six times the CPU on the loaded 2-core machine.
SUBDOMAIN_PRECISION = "single"


def material_strength(indptr, indices, block_modulus, jump=MATERIAL_JUMP, incompressible=None):
    """Strength-of-connection graph ``(nb, nb)`` for the finest AMG level: the block pattern without
    the couplings between blocks whose moduli ``block_modulus (nb,)`` (MPa) differ by more than ``jump``.
    ``incompressible (nb,)``: blocks of nearly incompressible material (kept as the graph's attribute of
    that name, for :func:`amg_hierarchy`'s exact solve).

    Aggregates then stay inside one material. An aggregate that straddles, say, a 12 GPa cortical shell
    and 200 MPa cancellous bone interpolates with rigid-body modes that are not its low-energy modes;
    keeping such aggregates apart halved the CG iterations of a bone-disc segment model.
    """
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    ratio = np.abs(np.log(block_modulus[rows] / block_modulus[indices]))
    keep = ratio <= np.log(jump)
    graph = MaterialGraph((np.ones(int(keep.sum())), indices[keep], np.concatenate([[0], np.cumsum(
        np.bincount(rows[keep], minlength=indptr.size - 1))])), shape=(indptr.size - 1,) * 2)
    graph.contrast = float(block_modulus.max() / block_modulus.min())
    graph.incompressible = incompressible
    return graph


class MaterialGraph(sp.csr_matrix):
    """The strength graph of :func:`material_strength` (CSR); ``contrast``: the ratio of the largest to the
    smallest block modulus, which decides the smoothing of :func:`amg_hierarchy` (:data:`STRONG_CONTRAST`);
    ``incompressible``: None or the blocks ``(nb,)`` of nearly incompressible material."""

    contrast = 1.0
    incompressible = None
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


def cholmod_available():
    """True if scikit-sparse's CHOLMOD interface can be imported."""
    try:
        import sksparse.cholmod  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def pardiso_available():
    """True if Intel MKL PARDISO can be loaded (pypardiso with MKL's runtime library).

    Where the mkl wheel is installed and ``PYPARDISO_MKL_RT`` is not set, it is set to the wheel's
    runtime library: without it every pypardiso solver object (and its import) searched the whole Python
    prefix for the library, 3 s each on the 2-core machine.
    """
    if "PYPARDISO_MKL_RT" not in os.environ:
        try:
            found = [f.locate() for f in importlib.metadata.files("mkl") or ()
                     if f.name.startswith("libmkl_rt.so") or (f.name.startswith("mkl_rt") and f.suffix == ".dll")]
        except importlib.metadata.PackageNotFoundError:
            found = []
        if found:
            os.environ["PYPARDISO_MKL_RT"] = os.path.normpath(str(min(found, key=lambda f: len(f.name))))
    try:
        import pypardiso  # noqa: F401  (loads MKL's runtime library)
    except (ImportError, OSError):
        return False
    return True


def direct_max_dofs():
    """Largest system that ``"auto"`` solves directly: :data:`DIRECT_MAX_DOFS` with a sparse Cholesky
    (CHOLMOD or PARDISO), else :data:`SUPERLU_MAX_DOFS`."""
    return DIRECT_MAX_DOFS if cholmod_available() or pardiso_available() else SUPERLU_MAX_DOFS


def choose(method, n, direct_max=None):
    """The solver that ``method`` (``"auto"``, ``"direct"`` or ``"amg"``) means for ``n`` unknowns;
    ``direct_max``: the bound of ``"auto"`` (default :func:`direct_max_dofs`)."""
    if method not in SOLVERS:
        raise InputError(f"solver = {method!r}; allowed: {', '.join(map(repr, SOLVERS))}")
    if method == "auto":
        return "direct" if n <= (direct_max_dofs() if direct_max is None else direct_max) else "amg"
    return method


def factorize(K, selected=None, blocks=True, single=False):
    """A direct factorisation of the symmetric positive-definite ``K`` (scipy sparse): returns
    ``(solve, name)`` with ``solve(b) -> x`` for ``b (N,)`` or ``(N, k)``. ``selected``: unknowns (indices)
    on which PARDISO prepares partial solves (:meth:`PardisoCholesky.partial`); ``blocks``: PARDISO's
    variable block format where allowed; ``single``: PARDISO's factor in single precision (see
    :class:`PardisoCholesky`; the other solvers factorise in double precision).

    For more than :data:`CHOLESKY_MIN_DOFS` unknowns: PARDISO (:class:`PardisoCholesky`) when MKL is
    there, else CHOLMOD (supernodal Cholesky, METIS ordering) when scikit-sparse is installed. PARDISO
    comes first because it factorised the segment models in less than half of CHOLMOD's CPU time, with
    results equal to round-off (benchmarks/README.md, "Sparse direct solver of the plain install"). Their
    dense kernels use the BLAS threads in force (both cores outside study workers). SuperLU otherwise,
    and if the Cholesky factorisation finds ``K`` not positive definite.
    """
    n = K.shape[0]
    if n > CHOLESKY_MIN_DOFS and pardiso_available():
        from pypardiso.pardiso_wrapper import PyPardisoError
        try:
            return PardisoCholesky(K, selected, blocks=blocks, single=single), "Cholesky (PARDISO)"   # reads K's rows
        except PyPardisoError:
            pass
    A = K.tocsc()
    if n > CHOLESKY_MIN_DOFS and not pardiso_available() and cholmod_available():
        from sksparse.cholmod import CholmodNotPositiveDefiniteError, analyze
        try:
            try:
                factor = analyze(A, mode="supernodal", ordering_method="metis")
            except Exception:  # noqa: BLE001 - CHOLMOD built without METIS
                factor = analyze(A, mode="supernodal")
            factor.cholesky_inplace(A)
            return factor.solve_A, "Cholesky (CHOLMOD)"
        except CholmodNotPositiveDefiniteError:
            pass
    lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    return lu.solve, "LU (SuperLU)"


def _mkl_threads():
    """The threads MKL runs on now (MKL's ``mkl_get_max_threads``, as loaded by pypardiso)."""
    import pypardiso
    global _MKL
    if _MKL is None:
        _MKL = pypardiso.PyPardisoSolver().libmkl
    return int(_MKL.mkl_get_max_threads())


_MKL = None


def upper_triangle(A):
    """The upper triangle (diagonal included) of the square sparse ``A`` as CSR with sorted column indices,
    taken from its rows (BSR or CSR: no conversion through CSC and COO, which cost about 0.15 s of CPU per
    factorisation of a 127k-unknown segment matrix). Stored entries are kept as they are (explicit zeros too)."""
    A = A.tocsr()
    if not A.has_sorted_indices:
        A = A.sorted_indices()
    n = A.shape[0]
    rows = np.repeat(np.arange(n, dtype=A.indices.dtype), np.diff(A.indptr))
    keep = A.indices >= rows
    indptr = np.zeros(n + 1, dtype=A.indptr.dtype)
    np.cumsum(np.bincount(rows[keep], minlength=n), out=indptr[1:])
    return sp.csr_matrix((A.data[keep], A.indices[keep], indptr), shape=A.shape)


#: Analysed PARDISO handles of released factorisations, by pattern (oldest first), at most :data:`SPARE_ANALYSES`
#: of at most :data:`SPARE_BYTES` (PARDISO's predicted peak memory) together; see :class:`PardisoCholesky`.
_SPARE = {}
SPARE_ANALYSES = 4
SPARE_BYTES = 2 ** 30


class PardisoCholesky:
    """Intel MKL PARDISO Cholesky factorisation of the symmetric positive-definite ``A`` (scipy sparse) with
    :data:`PARDISO_IPARM`; calling it with ``b (N,)`` or ``(N, k)`` solves ``A x = b``. With ``selected``
    (indices of unknowns; attribute ``selection``) :meth:`partial` solves for right-hand sides that are
    zero elsewhere and returns the solution on ``selected`` only, at a fraction of the cost (only the
    elimination-tree paths of those unknowns are visited). MKL is called directly (pypardiso loads it and
    keeps the handle) with the index arrays converted once, not at every solve. MKL's memory of the factor
    is released with the object. Raises pypardiso's ``PyPardisoError`` if ``A`` is not positive definite
    (PARDISO's zero-pivot error). ``factorize=False`` runs only the symbolic analysis (METIS ordering,
    elimination tree), a small fraction of the factorisation's cost; either way :attr:`statistics` holds
    its predictions: ``factor_nonzeros`` (entries of L), ``flops`` (of the numerical factorisation) and
    ``memory_bytes`` (PARDISO's peak, iparm 15-17). A factorisation without partial solves converts the
    matrix to PARDISO's variable block format (:data:`PARDISO_VBSR`) unless ``blocks`` is False: the block
    format saves analysis time, but each numerical refactorisation (:meth:`refactor`) in it cost about 1.4x
    the plain format's (the springs' block of :mod:`.spring_block`, benchmarks/README.md, "Where the fibre
    loop's CPU goes"). ``single``: the factor in float32 (``iparm(28)``; solutions float32 too, accurate to
    about the condition number times 6e-8 relative), for preconditioners (:data:`SUBDOMAIN_PRECISION`).

    A released factorisation (without ``selected``) whose every call ran with MKL on one thread (study
    workers, or inside :func:`one_blas_thread`) keeps its ordering and symbolic analysis for the next one
    of the same pattern and format made on one thread, which then only factorises numerically (the segments
    of a study, its vertebrae between plates, a pushover's steps: a vertebra at 4 mm takes 0.17 s of CPU
    instead of 0.97 s); the factor is the same bit for bit. On more threads PARDISO's factorisations after
    solves on another thread count crashed or went wrong (MKL 2025), so nothing is kept or reused there.
    """

    _dtype = np.float64              # of the values and vectors (instances: float32 with ``single``)

    def __init__(self, A, selected=None, factorize=True, blocks=True, single=False):
        import pypardiso
        upper = upper_triangle(A)                         # PARDISO reads the upper triangle, rows sorted
        self._dtype = np.float32 if single else np.float64
        self._data = np.ascontiguousarray(upper.data, dtype=self._dtype)
        self._ia = (upper.indptr + 1).astype(np.int32)      # 1-based
        self._ja = (upper.indices + 1).astype(np.int32)
        self._pattern = None                              # key of a pattern whose analysis may be kept
        self.selection = np.asarray(selected) if selected is not None and len(selected) else None
        if factorize and _mkl_threads() == 1:
            chosen = b"" if self.selection is None else np.asarray(self.selection, np.int64).tobytes()
            self._pattern = (A.shape[0], bool(blocks), bool(single), hashlib.blake2b(
                self._ia.tobytes() + self._ja.tobytes() + b"|" + chosen, digest_size=16).digest())
            spare = _SPARE.pop(self._pattern, None)
            if spare is not None:
                self._pardiso, self.statistics = spare
                try:
                    self._call(22, np.zeros(A.shape[0]))          # numerical factorisation only
                    return
                except Exception:
                    self._pattern = None
                    self._release()
                    raise
        self._pardiso = pypardiso.PyPardisoSolver(mtype=2)        # real symmetric positive definite
        for i, value in PARDISO_IPARM.items():
            self._pardiso.set_iparm(i, value)
        threads = _mkl_threads()
        if threads > 1:                                             # the same factor bit for bit on every run
            self._pardiso.set_iparm(PARDISO_CNR, threads)
        self._pardiso.iparm[17] = self._pardiso.iparm[18] = -1     # iparm 18, 19: report nnz(L) and Mflop
        if self.selection is not None:
            self._pardiso.perm = np.zeros(A.shape[0], np.int32)     # iparm 31: the analysis must know them
            self._pardiso.perm[self.selection] = 1
            self._pardiso.set_iparm(31, 1)
        elif factorize and blocks:                                  # the analysis alone reports by unknown
            self._pardiso.set_iparm(37, PARDISO_VBSR)
        if single:
            self._pardiso.set_iparm(28, 1)                          # values, right-hand sides, solutions: float32
        try:
            self._call(12 if factorize else 11, np.zeros(A.shape[0]))     # analysis (and factorisation)
        except Exception:
            self._release()
            raise
        ip = self._pardiso.iparm
        self.statistics = {"factor_nonzeros": int(ip[17]), "flops": 1e6 * float(ip[18]),
                           "memory_bytes": 1024 * max(int(ip[14]), int(ip[15]) + int(ip[16]))}
        self._pardiso.set_iparm(31, 0)                            # ordinary solves by default

    def _call(self, phase, b):
        import ctypes
        from pypardiso.pardiso_wrapper import PyPardisoError
        p = self._pardiso
        if self._pattern is not None and phase >= 0 and _mkl_threads() != 1:
            self._pattern = None                                    # not kept: a call on more threads
        b = np.asfortranarray(b, dtype=self._dtype)
        x = np.zeros_like(b)
        error = ctypes.c_int32(0)
        i32 = ctypes.POINTER(ctypes.c_int32)

        def ref(v):
            return ctypes.byref(ctypes.c_int32(v))
        p._mkl_pardiso(p.pt.ctypes.data_as(ctypes.POINTER(p._pt_type[0])), ref(1), ref(1), ref(2), ref(phase),
                       ref(self._ia.size - 1), self._data.ctypes.data_as(ctypes.c_void_p),
                       self._ia.ctypes.data_as(i32), self._ja.ctypes.data_as(i32), p.perm.ctypes.data_as(i32),
                       ref(1 if b.ndim == 1 else b.shape[1]), p.iparm.ctypes.data_as(i32), ref(0),
                       b.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(error))
        if error.value != 0:
            raise PyPardisoError(error.value)
        return x

    def __call__(self, b):
        return self._call(33, b)

    def refactor(self, A):
        """Factorise ``A`` in place of the matrix analysed, numerically only: PARDISO keeps its ordering and
        symbolic factor (the springs' block of T12-L2 at 2 mm, :mod:`.spring_block`: about 0.3 s against 1.3 s
        of CPU with the analysis). ``A`` must have the analysed pattern, explicit zeros included; else
        ``ValueError``."""
        upper = upper_triangle(A)
        if not (np.array_equal(upper.indptr + 1, self._ia) and np.array_equal(upper.indices + 1, self._ja)):
            raise ValueError("refactor needs the pattern of the analysed matrix")
        self._data = np.ascontiguousarray(upper.data, dtype=self._dtype)
        self._call(22, np.zeros(A.shape[0]))

    def partial(self, b):
        """``A^-1 b`` on the ``selected`` unknowns (other rows: undefined) for ``b (N,)`` or ``(N, k)`` that is
        zero outside them."""
        return self._selected_solve(b, 1)

    def sparse_rhs(self, b):
        """``A^-1 b`` (all rows) for ``b (N,)`` or ``(N, k)`` that is zero outside the ``selected`` unknowns:
        the forward substitution visits only their elimination-tree paths, so it costs about half a full
        solve (0.078 against 0.152 s of CPU on T12-L2 at 2 mm with posterior elements), with the same result."""
        return self._selected_solve(b, 2)

    def _selected_solve(self, b, mode):
        """Solve with ``iparm(31) = mode`` (1: right-hand side and solution on the selection; 2: right-hand
        side on the selection, whole solution)."""
        self._pardiso.set_iparm(31, mode)
        try:
            return self._call(33, b)
        finally:
            self._pardiso.set_iparm(31, 0)

    def _release(self):
        if getattr(self, "_pardiso", None) is not None and getattr(self, "_pattern", None) is not None:
            _SPARE.pop(self._pattern, None)
            _SPARE[self._pattern] = self._pardiso, self.statistics      # kept for the same pattern (see above)
            self._pardiso = None
            while len(_SPARE) > SPARE_ANALYSES or sum(v[1]["memory_bytes"] for v in _SPARE.values()) > SPARE_BYTES:
                oldest, _ = _SPARE.pop(next(iter(_SPARE)))
                with contextlib.suppress(Exception):                    # nothing to release
                    oldest.free_memory(everything=True)                 # PARDISO's phase -1
        if getattr(self, "_pardiso", None) is not None:
            try:
                self._call(-1, np.zeros(0))
            except Exception:  # noqa: BLE001 - nothing to release, or the interpreter is shutting down
                pass
            self._pardiso = None

    def __del__(self):
        self._release()


def amg_hierarchy(K, near_nullspace=None, strength=None):
    """Smoothed-aggregation hierarchy (pyamg ``MultilevelSolver``) of ``K`` with :data:`AMG_OPTIONS`.

    ``near_nullspace (N, 6)``: rigid-body modes; ``strength``: optional finest-level strength graph
    (:func:`material_strength`); with a contrast above :data:`STRONG_CONTRAST` the coarse levels use
    :data:`COARSE_THETA` and the finest level the smoother :data:`FINE_SMOOTHER`, the others one symmetric
    block Gauss-Seidel sweep. With :data:`AMG_PRECISION` ``"single"`` the levels' operators and
    prolongators are float32 (:func:`multigrid.single_precision`).
    :func:`amg_preconditioner` makes its V-cycle the CG preconditioner.
    """
    import pyamg

    options = dict(AMG_OPTIONS)
    strong = strength is not None and getattr(strength, "contrast", 1.0) > STRONG_CONTRAST
    if strength is not None:
        options["strength"] = [("predefined", {"C": strength}),
                               ("symmetric", {"theta": COARSE_THETA if strong else 0.0})]
    sweeps = [options.pop(s)[1]["sweep"] for s in ("presmoother", "postsmoother")]
    kind, count = FINE_SMOOTHER
    chebyshev = strong and kind == "chebyshev"
    # one Lanczos run on K for the prolongator weighting and the Chebyshev smoother (and one inversion of
    # its diagonal blocks)
    shared = (multigrid.FineWeighting(K, (relaxation.CHEBYSHEV_LANCZOS_STEPS,))
              if chebyshev and hasattr(K, "blocksize") and K.blocksize[0] > 1 else None)
    with multigrid.lean_prolongation_smoothing(shared):     # no full copies of K (peak memory)
        # pyamg sets up no smoother (its own block Gauss-Seidel would invert the diagonal blocks of every
        # level, 0.3 s CPU on the 1.24M-DOF box, only to be replaced by the numba sweeps)
        ml = pyamg.smoothed_aggregation_solver(K, B=near_nullspace, presmoother=None, postsmoother=None, **options)
    incompressible = getattr(strength, "incompressible", None) if strong else None
    if (incompressible is not None and hasattr(K, "blocksize") and K.blocksize == (3, 3)
            and 0 < incompressible.sum() <= SUBDOMAIN_MAX_FRACTION * incompressible.size):
        ml.subdomain = subdomain.Subdomain(K, np.flatnonzero(incompressible), functools.partial(
            factorize, single=SUBDOMAIN_PRECISION == "single"))
    if AMG_PRECISION == "single":
        multigrid.single_precision(ml)
    fine = ml.levels[0] if strong and len(ml.levels) > 1 else None
    relaxation.use_block_gauss_seidel(ml, *sweeps, first=1 if fine is not None and chebyshev else 0)
    if fine is not None and chebyshev:
        A = fine.A
        if shared is None:
            shared = multigrid.FineWeighting(A, (relaxation.CHEBYSHEV_LANCZOS_STEPS,))
        fine.presmoother = fine.postsmoother = relaxation.chebyshev(
            A, shared.D_inverse, shared.radii[relaxation.CHEBYSHEV_LANCZOS_STEPS], count)
    elif fine is not None and count > 1:
        fine.presmoother = _repeated(fine.presmoother, count)
        fine.postsmoother = _repeated(fine.postsmoother, count)
    return ml


def _repeated(smoother, times):
    """The pyamg smoother ``smoother(A, x, b)`` (in place on x) applied ``times`` times."""
    def repeated(A, x, b):
        for _ in range(times):
            smoother(A, x, b)
    return repeated


def amg_preconditioner(ml):
    """The V-cycle of the hierarchy ``ml`` as a CG preconditioner (``LinearOperator``), run on all
    threads by :class:`~vertebrafe.fem.multigrid.VCycle`, between the exact solves of ``ml.subdomain``
    where :func:`amg_hierarchy` made one; it keeps what the cycle needs, not ``ml``."""
    cycle = VCycle(ml).operator()
    region = getattr(ml, "subdomain", None)
    return cycle if region is None else region.around(cycle)


def low_rank_corrected(M, U, c):
    """The preconditioner ``(M^-1 + U diag(c) U^T)^-1`` (``LinearOperator``) for the symmetric positive-definite
    preconditioner ``M`` (an AMG V-cycle of ``A``) and a positive low-rank term ``U (N, r)`` (dense or sparse),
    ``c (r,) > 0`` that ``A + U diag(c) U^T`` adds and ``M`` leaves out, by the Woodbury identity:
    ``M - (M U) (diag(1/c) + U^T M U)^-1 (M U)^T``. It costs ``r`` applications of ``M`` once and one
    application of ``M`` plus ``O(N r)`` per use; with the exact ``M = A^-1`` it is the exact inverse.

    A fluid cavity's rank-one stiffness (:class:`~vertebrafe.cavity.FluidCavity`) is dense, so it stays out of
    the hierarchy; left to CG as an outlying eigenvalue it cost about 30 iterations per solve at rtol 1e-8 on
    T12-L2 (benchmarks/README.md, "Which contrast costs the CG iterations").
    """
    import scipy.linalg

    U = np.asarray(U.todense() if sp.issparse(U) else U, dtype=float).reshape(M.shape[0], -1)
    MU = np.column_stack([M @ U[:, j] for j in range(U.shape[1])])
    inner = scipy.linalg.cho_factor(np.diag(1.0 / np.asarray(c, dtype=float).reshape(-1)) + U.T @ MU)

    def apply(r):
        y = M @ np.asarray(r, dtype=float).reshape(-1)
        return y - MU @ scipy.linalg.cho_solve(inner, U.T @ y)

    return spla.LinearOperator(M.shape, matvec=apply, dtype=float)


def solve(K, f, method="auto", rtol=1e-8, maxiter=None, near_nullspace=None, strength=None):
    """Solve ``K u = f`` once: :class:`Prepared` set-up, then :meth:`Prepared.solve` (see there).

    A zero load returns zero displacements without any set-up.
    """
    if not (0 < rtol < 1):
        raise InputError(f"rtol = {rtol!r}; allowed range (0, 1)")
    _load_norm(f)
    if not np.any(f):
        return np.zeros(K.shape[0]), {"solver": choose(method, K.shape[0]), "iterations": 0, "residual": 0.0,
                                      "setup_time": 0.0, "solve_time": 0.0}
    return Prepared(K, method, near_nullspace, strength).solve(f, rtol, maxiter)


def _load_norm(f):
    """``(max |f|, ||f||)`` computed without overflow; InputError for non-finite loads."""
    fmax = float(np.max(np.abs(f))) if f.size else 0.0
    if not np.isfinite(fmax):
        raise InputError(f"the load vector holds non-finite values (max |f| = {fmax}); allowed: finite forces (N)")
    return fmax, (fmax * float(np.linalg.norm(f / fmax)) if fmax > 0 else 0.0)


class Prepared:
    """The set-up of ``K`` (symmetric positive-definite scipy sparse, 3x3 BSR for AMG) for
    ``method``: a direct factorisation (:func:`factorize`) or an AMG hierarchy (:func:`amg_hierarchy`
    with ``near_nullspace (N, 6)`` and the optional finest-level ``strength`` graph). Built once,
    :meth:`solve` then serves any number of load vectors; ``setup_time`` (s) is what building it cost.
    """

    def __init__(self, K, method="auto", near_nullspace=None, strength=None):
        self.K = K
        self.method = choose(method, K.shape[0])
        t0 = time.perf_counter()
        if self.method == "direct":
            self._factor, self.backend = factorize(K)
            self._extra = {"factorization": self.backend}
        else:
            with one_blas_thread():
                ml = amg_hierarchy(K, near_nullspace, strength)
            self._M = amg_preconditioner(ml)
            self._A = BlockMatrix(K).operator()      # CG's products on all threads
            self.backend = "AMG-CG"
            self._extra = {"levels": len(ml.levels), "operator_complexity": float(ml.operator_complexity())}
            del ml
        self.setup_time = time.perf_counter() - t0
        self.solves = 0

    def solve(self, f, rtol=1e-8, maxiter=None, x0=None):
        """Solve ``K u = f`` with BLAS limited to one thread (see :meth:`_solve`); returns ``(u, info)``.
        ``x0``: a start or None; where it solves ``K u = f`` to ``rtol`` it is the solution (no solve,
        ``info["start_accepted"]``), otherwise CG starts from it (the direct solve does not use it).

        The Krylov loop and the triangular solves call BLAS on single vectors, where threads only add
        wake-up latency; on a busy 2-core machine multithreaded OpenBLAS made each dot product 5000x
        slower (17 ms instead of 3 us).
        """
        if not (0 < rtol < 1):
            raise InputError(f"rtol = {rtol!r}; allowed range (0, 1)")
        with one_blas_thread():
            u, info = self._solve(f, rtol, maxiter, x0)
        info["setup_time"] = self.setup_time if self.solves == 0 else 0.0
        info["setup_reused"] = self.solves > 0
        self.solves += 1
        return u, info

    def _solve(self, f, rtol, maxiter, x0):
        """``info`` holds ``solver``, ``iterations``, ``residual`` (true relative residual
        ||K u - f|| / ||f||) and ``solve_time`` (s), plus ``factorization`` (direct) or ``levels``,
        ``operator_complexity``, ``restarts`` (AMG). Both solvers are judged on the true residual: the
        direct solve refines its solution, CG restarts from its iterate while the true residual is above
        ``rtol``. Raises :class:`ConvergenceError` if the residual does not reach ``rtol`` (with advice
        for an iteration limit or a stagnation) or the result is not finite.
        """
        K, method = self.K, self.method
        n = K.shape[0]
        fmax, fnorm = _load_norm(f)
        info = {"solver": method, **self._extra}
        if fnorm == 0.0:
            info.update(iterations=0, residual=0.0, solve_time=0.0)
            return np.zeros(n), info

        product = K.dot if method == "direct" else self._A.matvec

        def true_residual(u):
            return float(np.linalg.norm((product(u) - f) / fmax) * fmax / fnorm)

        t1 = time.perf_counter()
        start = None if x0 is None else true_residual(x0)
        info["start_accepted"] = start is not None and start <= rtol
        if info["start_accepted"]:
            u, iterations, residual = x0.copy(), 0, start
        elif method == "direct":
            u = self._factor(f)
            iterations = 1
            residual = true_residual(u)
            for _ in range(REFINEMENT_STEPS):        # iterative refinement until rtol (or no more gain)
                if not residual > rtol:
                    break
                u = u - self._factor(K @ u - f)
                iterations += 1
                previous, residual = residual, true_residual(u)
                if not residual < 0.5 * previous:
                    break
        else:
            M = self._M
            count = [0]

            def callback(_):
                count[0] += 1

            limit = maxiter or 2000
            u, status = spla.cg(self._A, f, x0=x0, rtol=rtol, atol=0.0, maxiter=limit, M=M, callback=callback)
            residual = true_residual(u)
            # CG stops on its recurrence residual, which drifts from the true one: restart from u (fresh
            # residual) while the true residual is above rtol, iterations remain and a restart still gains
            restarts = 0
            while residual > rtol and count[0] < limit and restarts < CG_RESTARTS and np.isfinite(residual):
                u, status = spla.cg(self._A, f, x0=u, rtol=0.5 * rtol, atol=0.0, maxiter=limit - count[0], M=M,
                                    callback=callback)
                restarts += 1
                previous, residual = residual, true_residual(u)
                if not residual < 0.5 * previous:
                    break
            iterations = count[0]
            info["restarts"] = restarts
        t2 = time.perf_counter()
        if not np.all(np.isfinite(u)) or not np.isfinite(residual):
            raise ConvergenceError(f"the {method} solve produced non-finite displacements or residual; the model "
                                   "may be singular (a mechanism), badly conditioned, or loaded beyond floating "
                                   f"point range (max |f| = {fmax:.3g} N)", iterations=iterations, residual=residual)
        info.update(iterations=iterations, residual=residual, solve_time=t2 - t1)
        if residual > rtol:
            if method == "direct":
                kind = "LU" if self.backend.startswith("LU") else "Cholesky"
                advice = (f"; {kind} with {iterations - 1} refinement step(s) cannot reach it: the matrix is "
                          "nearly singular or too badly conditioned for this rtol (check materials and "
                          "constraints, or loosen solver.rtol)")
            elif iterations >= limit:
                advice = (f"; the iteration limit maxiter = {limit} was reached: raise solver.maxiter or check "
                          "the model")
            else:
                advice = (f"; CG stagnated (no further gain after {restarts} restart(s), {iterations} < maxiter = "
                          f"{limit} iterations): raising maxiter will not help; the system is too badly "
                          "conditioned for this rtol (loosen solver.rtol, or use solver = 'direct' on a small "
                          "model, and check for near-mechanisms or extreme material contrasts)")
            raise ConvergenceError(
                f"the {method} solve did not converge: relative residual {residual:.3g} after {iterations} "
                f"iteration(s), requested rtol = {rtol:g}" + advice, iterations=iterations, residual=residual)
        return u, info
