"""What ``solver="auto"`` picks for a model above :data:`~vertebrafe.fem.solvers.DIRECT_MAX_DOFS` unknowns.

The cost of a sparse Cholesky factorisation depends on the fill of the matrix, not on its size: a slender
segment (small separators) fills in far less than a compact box with the same number of unknowns, and the
cost of AMG-CG depends on the material contrasts (132-300 CG iterations on a spine segment against 20-27 on
the block-with-inclusion benchmark). So, where Intel MKL PARDISO is available, :func:`choose` predicts the
direct solver's memory and time for THIS model from PARDISO's symbolic analysis (METIS ordering and
elimination tree, no numerical work) of the node-block graph (one vertex per 3x3 block: nine times fewer
entries than the matrix; its factor, times 9 entries and 27 flops per block, matches PARDISO's analysis of
the matrix itself to a few per cent), and solves directly when

- the predicted memory fits the budget (:data:`MEMORY_FRACTION` of the memory available now), and
- the predicted factorisation time is below the predicted AMG-CG time (set-up plus an expected number of
  CG iterations per unknown; the expected iterations depend on the contrast of the models' stiffnesses,
  and a model with one-sided springs needs several CG solves in its active-set loop, but only one
  factorisation with partial solves).

The rates are measured on the 2-core benchmark machine, one thread (benchmarks/README.md, "Which solver
'auto' picks"); only their ratio matters for the choice, and the memory test guards the machine.
"""
import os
import time

import numpy as np
import scipy.sparse as sp

#: Sustained factorisation rate of PARDISO (flop/s, one thread) and its memory per factor entry (bytes,
#: the process's resident-set growth over the factorisation, L in double precision plus MKL's work
#: arrays), measured on the segment models and boxes of benchmarks/README.md.
FACTOR_FLOPS = 25e9
FACTOR_BYTES_PER_ENTRY = 12.0
#: AMG-CG cost per unknown (s, one thread): hierarchy set-up, and one CG iteration (product with K and
#: one V-cycle), measured on the 1.24M-DOF box.
AMG_SETUP_SECONDS = 7.5e-6
AMG_ITERATION_SECONDS = 0.65e-6
#: Expected CG iterations: models whose stiffnesses differ by at most :data:`LOW_CONTRAST` (the
#: block-with-inclusion box, 30x: 20-27 iterations), and spine models (cortical shell against nucleus
#: and annulus, 1e3-1e4x: 132 iterations at 2 mm, about 300 with a nucleus at nu 0.4999).
AMG_ITERATIONS = 25
AMG_ITERATIONS_CONTRAST = 130
LOW_CONTRAST = 100.0
#: CG solves of the active-set loop with springs, counted in full solves (5 steps, 483 iterations
#: against 132 for one solve on T12-L2 at 2 mm with posterior elements).
ACTIVE_SET_SOLVES = 3.5
#: Share of the memory available now (MemAvailable) that a direct factorisation may take.
MEMORY_FRACTION = 0.5


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


def amg_seconds(n, contrast, springs=False):
    """Predicted AMG-CG time (s, one thread) for ``n`` unknowns whose stiffnesses differ by the factor
    ``contrast``; ``springs``: the model has one-sided springs (several CG solves)."""
    iterations = AMG_ITERATIONS if contrast <= LOW_CONTRAST else AMG_ITERATIONS_CONTRAST
    solves = ACTIVE_SET_SOLVES if springs else 1.0
    return n * (AMG_SETUP_SECONDS + solves * iterations * AMG_ITERATION_SECONDS)


def choose(n, cost, contrast, springs=False):
    """``("direct" | "amg", reasons)`` for a model of ``n`` unknowns with the predicted direct cost
    ``cost`` (:func:`direct_cost`), stiffness contrast ``contrast`` (largest / smallest material
    stiffness) and, if ``springs``, one-sided springs; ``reasons``: ``direct_seconds``, ``direct_bytes``,
    ``amg_seconds``, ``memory_budget`` (bytes) and ``analysis_seconds`` (the estimate's own process time)."""
    reasons = {"direct_seconds": cost["seconds"], "direct_bytes": cost["memory_bytes"],
               "amg_seconds": amg_seconds(n, contrast, springs), "memory_budget": memory_budget(),
               "analysis_seconds": cost["analysis_seconds"]}
    fits = reasons["direct_bytes"] <= reasons["memory_budget"]
    return ("direct" if fits and reasons["direct_seconds"] <= reasons["amg_seconds"] else "amg"), reasons
