"""What ``solver="auto"`` picks, with PARDISO, for a model above :data:`ESTIMATE_MIN_DOFS` unknowns.

The cost of a sparse Cholesky factorisation depends on the fill of the matrix, not on its size: a slender
segment (small separators) fills in far less than a compact box with the same number of unknowns, and the
cost of AMG-CG depends on the material contrasts and the springs. So, where Intel MKL PARDISO is
available, :func:`choose` predicts the direct solver's memory and time for THIS model from PARDISO's
symbolic analysis (METIS ordering and elimination tree, no numerical work) of the node-block graph (one
vertex per 3x3 block: nine times fewer entries than the matrix; its factor, times 9 entries and 27 flops
per block, matches PARDISO's analysis of the matrix itself to a few per cent), and solves directly when

- the predicted memory fits the budget (:data:`MEMORY_FRACTION` of the memory available now), and
- the predicted direct time (factorisation flops at :data:`FACTOR_FLOPS`) is at most the predicted AMG-CG
  time (set-up plus the expected CG iterations of every solve that shares the set-up, per unknown:
  :func:`amg_seconds`; a nucleus pre-pressure's rest state adds its solves, :attr:`~vertebrafe.fem.Setup.solves`).

The crossover: AMG-CG costs about the same per unknown whatever the mesh, the factorisation costs its flops,
which grow faster than the unknowns (nested dissection of a 3-D mesh: about N^2 flops, so about N per unknown;
less on slender models). So direct wins below a number of factorisation flops per unknown, ``FACTOR_FLOPS x
amg_seconds(1, contrast, springs)``; with the calibration below: 0.63 MFlop per unknown for a three-level
segment with posterior elements (strong contrast, 474 ligament and facet springs), 1.1 for T10-L5 with them
(1,695 springs), 5.9 with annulus fibres as well (54,474 springs at 1.75 mm), 0.49 for a strong contrast
without springs and 0.18 for a weak contrast such as the block-with-inclusion box. Measured with posterior
elements (per unknown of the model, constrained ones included): T12-L2 needs 0.54 / 1.34 / 1.22 / 1.94 /
2.75 MFlop at 3 / 2 / 1.75 / 1.6 / 1.5 mm (about 9 at 1 mm) and T10-L5 at 2 mm 1.96, T12-L2 with fibres at
1.75 mm 1.25; the box at 100k cells 6.0. So segments with posterior elements go to AMG-CG from 2 mm down
(T12-L2 at 2 mm and finer, T10-L5 at 2 mm; T12-L2 at 3 and 2.5 mm, below :data:`ESTIMATE_MIN_DOFS`, go
direct, as their predictions say too), segments with fibres go direct wherever the factor fits, and the
box goes to AMG-CG.

The constants are a calibration: fitted to ``Model.solve`` of both solvers on the same models, in one
process per model with the solvers alternating, one thread (process CPU seconds under load 8-13 on the
2-core benchmark machine, revision d8a5065, ``benchmarks/solver_choice.py --solve direct,amg --repeat 2``
of 2def4ed), fitted on T12-L2 at 2 / 1.75 / 1.6 mm and checked on T12-L2 at 3 and 1.5 mm, L1-L3 at 1.75
and 1.6 mm and L4-L5 at 1.5 mm; benchmarks/README.md, "Re-fit of the cost model of 'auto' after the
cheaper AMG-CG iterations". The springs' term (:data:`ACTIVE_SET_SOLVES`) was re-fitted after the short CG
steps of the AMG active-set loop (benchmarks/README.md, "Re-fit of the springs' term of 'auto' after the
short CG steps"); with it the picks are right on every measured model. Only the ratio of the constants
matters for the choice, and the memory test guards the machine. Under load the ratio moves (PARDISO's flop
rate most), so near the crossover the choice is as uncertain as that ratio.

The choice does not depend on the thread count: the rates are one thread's process CPU, and on two threads
(MKL and numba) under load 6-8 the same picks were the faster in wall time as well (T12-L2 at 2 mm:
AMG-CG 16.3-17.2 against PARDISO 36.6-38.5 s, revision 4e25827); idle on two threads PARDISO was the
faster at 2 mm by 5-20 % (2d057a0, against an AMG-CG solve that carried its process's first set-up): no idle
pair of one- and two-thread runs exists to fit a parallel speed-up per solver from (benchmarks/README.md,
"The bound of 130,000 unknowns and the thread count").
"""
import math
import os
import time

import numpy as np
import scipy.sparse as sp

from .solvers import STRONG_CONTRAST

#: Calibration: the direct solve's process CPU per flop of its factorisation (flop/s, one thread) over the
#: whole ``Model.solve``: PARDISO's analysis and factorisation and the active-set loop's partial solves
#: (T12-L2 with posterior elements at 2 / 1.75 / 1.6 mm: 9.1 / 7.4 / 10.2 GFlop/s at d8a5065, under load
#: 8-13; 9.2 / 8.1 / 10.7 at 2817a11, load 4-13; 3 mm: 7.3, the fixed costs of a small model); and its memory per
#: factor entry (bytes, the process's resident-set growth over the factorisation, L in double precision
#: plus MKL's work arrays, measured on the segment models and boxes of benchmarks/README.md).
FACTOR_FLOPS = 8.9e9
FACTOR_BYTES_PER_ENTRY = 12.0
#: Calibration: AMG-CG process CPU per unknown (s, one thread): hierarchy set-up (with the nucleus's exact
#: solve factorised; 7 us on the box, 9.2-11.5 on T12-L2 at 2-1.6 mm, 12.1 at 1.5 mm), and the CG
#: iterations of one linear solve with their cost per iteration (the rest of the solve's CPU per unknown and
#: iteration): a weak contrast (stiffnesses within :data:`~vertebrafe.fem.solvers.STRONG_CONTRAST`: 13
#: iterations on the block-with-inclusion box at 100k cells, 10 on the cube of the tests) and a strong one
#: (spine segments: 45 iterations on the first system of T12-L2 at 2 mm, 40-55 at 3-1 mm; the Chebyshev
#: smoother of the finest level and the nucleus's exact solve make an iteration dearer than the box's):
#: fitted on T12-L2 at 2 / 1.75 / 1.6 mm, 1.03 / 0.98 / 1.02 us (two rounds each, 0.95-1.06) at d8a5065
#: with the single-precision nucleus factor and the fused finest-level Chebyshev passes (1.24-1.28 us
#: before them, 2817a11); checked on T12-L2 at 3 mm (1.02 us) and 1.5 mm (0.99 us), L1-L3 at 1.75 / 1.6 mm
#: (0.97 / 0.98 us) and L4-L5 at 1.5 mm (1.03 us).
AMG_SETUP_SECONDS = 10e-6
AMG_ITERATIONS, AMG_ITERATION_SECONDS = 15, 0.70e-6
AMG_ITERATIONS_CONTRAST, AMG_ITERATION_SECONDS_CONTRAST = 45, 1.01e-6
#: Calibration: the AMG active-set loop's CG work, in single solves (of AMG_ITERATIONS_CONTRAST iterations),
#: per square root of the number of one-sided springs (an empirical law, not a derived one), with the
#: loop's short CG steps (08b91d0, 7e4b00b): fitted on T12-L2 with posterior elements (474 springs: 57 / 61 /
#: 62 CG iterations in all at 2 / 1.75 / 1.6 mm, one thread, abf28a0; 60 predicted); validated on L1-L3 at
#: 1.75 mm (498 springs: 60 measured, 61 predicted), T12-L2 with annulus fibres at 1.75 mm (54 474 springs:
#: 630, 641 predicted) and T10-L5 at 2 mm (1 695 springs: 156, 113 predicted: 28 % under); it underpredicts
#: L1-L3 at 1.6 mm (77 against 61) and coarse or small models more (T12-L2 at 3 mm: 144 against 60; L4-L5 at
#: 1.5 mm, 249 springs: 79 against the floor of one solve, 45). The picks stay right on all of them (T10-L5:
#: AMG-CG 43.7 s against PARDISO 61.5 s measured; benchmarks/README.md, "Re-fit of the springs' term of
#: 'auto' after the short CG steps"). Fitted before the short steps: 0.135.
ACTIVE_SET_SOLVES = 0.061
#: Share of the memory available now (MemAvailable) that a direct factorisation may take.
MEMORY_FRACTION = 0.5
#: Calibration: ``"auto"`` (with PARDISO) solves models of up to this many unknowns directly without an
#: estimate and judges larger ones by their predicted costs: below it PARDISO was the cheaper on every
#: measured model, on one thread and on two (T12-L2 with posterior elements, revision 4e25827, load 3-8: at 3
#: mm, 47 424 unknowns, 1.7-2.6 against 7.0-17.1 s of CPU on one thread; at 2.5 mm, 55 839, 2.7-2.8
#: against 4.7-5.0 s, and 8.4-9.4 against 12.1 s of wall on two), where the springs' term underpredicts
#: the active-set loop's CG iterations (144 and 96 against 60 at 3 and 2.5 mm) and AMG-CG's set-up does not
#: pay; and the estimate (PARDISO's analysis) is not spent on the many small models of a study (each
#: vertebra alone between plates). The first model above, T12-L2 at 2 mm (127 227), goes to AMG-CG
#: (benchmarks/README.md, "The bound of 130,000 unknowns and the thread count").
ESTIMATE_MIN_DOFS = 60_000


def available_memory():
    """Memory available to a new allocation now, bytes (Linux MemAvailable; else the physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024 ** 3


def memory_budget():
    """Bytes a direct factorisation chosen by ``"auto"`` may use: :data:`MEMORY_FRACTION` of
    :func:`available_memory`."""
    return MEMORY_FRACTION * available_memory()


def direct_cost(indptr, indices, block=3):
    """Predicted cost of a PARDISO Cholesky factorisation of a matrix with the block sparsity pattern
    ``indptr, indices`` (block CSR, all blocks ``block x block`` and full): dict with ``factor_nonzeros``,
    ``flops``, ``memory_bytes`` (resident growth, :data:`FACTOR_BYTES_PER_ENTRY` per factor entry),
    ``seconds`` (at :data:`FACTOR_FLOPS`) and ``analysis_seconds`` (process time of the estimate itself).
    """
    from .solvers import PardisoCholesky
    c0 = time.process_time()
    nb = indptr.size - 1
    counts = np.diff(indptr)
    graph = sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(nb, nb))
    # any symmetric positive-definite values do: the analysis reads only the pattern
    graph = graph + sp.diags(np.full(nb, float(counts.max(initial=0) + 1)))
    analysis = PardisoCholesky(graph, factorize=False)
    stats = dict(analysis.statistics)
    del analysis                                   # releases MKL's memory
    entries = block * block * stats["factor_nonzeros"]
    flops = block ** 3 * stats["flops"]
    return {"factor_nonzeros": entries, "flops": flops, "memory_bytes": FACTOR_BYTES_PER_ENTRY * entries,
            "seconds": flops / FACTOR_FLOPS, "analysis_seconds": time.process_time() - c0}


def amg_seconds(n, contrast, springs=0, solves=1):
    """Predicted AMG-CG time (s, one thread) for ``n`` unknowns whose stiffnesses differ by the factor
    ``contrast``, with ``springs`` springs in its spring sets (the CG solves of the active-set loop), for
    ``solves`` solves on one hierarchy (each pays its CG iterations; the direct solver's further solves are
    partial solves with its factor, not counted)."""
    if contrast <= STRONG_CONTRAST:
        iterations, seconds = AMG_ITERATIONS, AMG_ITERATION_SECONDS
    else:
        iterations, seconds = AMG_ITERATIONS_CONTRAST, AMG_ITERATION_SECONDS_CONTRAST
    single = max(1.0, ACTIVE_SET_SOLVES * math.sqrt(springs))
    return n * (AMG_SETUP_SECONDS + solves * single * iterations * seconds)


def choose(n, cost, contrast, springs=0, solves=1):
    """``("direct" | "amg", reasons)`` for a model of ``n`` unknowns with the predicted direct cost
    ``cost`` (:func:`direct_cost`), stiffness contrast ``contrast`` (largest / smallest material
    stiffness), ``springs`` springs in its spring sets and ``solves`` solves sharing the set-up; ``reasons``: ``direct_seconds``, ``direct_bytes``,
    ``amg_seconds``, ``memory_budget`` (bytes) and ``analysis_seconds`` (the estimate's own process time)."""
    reasons = {"direct_seconds": cost["seconds"], "direct_bytes": cost["memory_bytes"],
               "amg_seconds": amg_seconds(n, contrast, springs, solves), "memory_budget": memory_budget(),
               "analysis_seconds": cost["analysis_seconds"]}
    fits = reasons["direct_bytes"] <= reasons["memory_budget"]
    return ("direct" if fits and reasons["direct_seconds"] <= reasons["amg_seconds"] else "amg"), reasons
