"""Preconditioner variants on the system of a segment: CG iterations and CPU time of the smoothed-aggregation
AMG of ``solvers.AMG_OPTIONS`` against changed pyamg options and against added exact subdomain solves.

The system is the one ``simulate`` solves (T12-L2, vBMD 100, relaxed standing, recorded from
``solvers.Prepared``); every variant is set up and solved to rtol 1e-8 with one BLAS thread, the V-cycle and
products of ``simulate`` (``solvers.amg_preconditioner``, ``sparse_kernels.BlockMatrix``), and prints its
iterations, true residual, set-up and solve wall seconds, the process CPU seconds of the set-up, per CG
iteration and in all, and the load average. ``simulate`` stops once it has handed the system over (no
solve of its own).

    python benchmarks/amg_variants.py --element-size 3
    python benchmarks/amg_variants.py --element-size 2 --variants baseline,energy,energy-2level
    python benchmarks/amg_variants.py --variants baseline,schwarz:cortex+endplate+annulus+nucleus
    python benchmarks/amg_variants.py --element-size 1.5 --variants baseline,nucleus-double --split

``--split``: also the process CPU per preconditioner application of its parts (the nucleus's two solves, the
V-cycle and in it each level's smoothing and the coarse solve; residuals and transfers are the rest, but the
residual that the finest level's Chebyshev pre-smoothing fuses with its last step counts as smoothing) and of
CG's product with K.

Variants: ``baseline`` (the preconditioner ``simulate`` builds: ``solvers.amg_hierarchy`` and
``solvers.amg_preconditioner``, with the exact solve of the nearly incompressible nucleus, its factor in
single precision); ``nucleus-double`` (the same with the nucleus factorised in double precision);
``no-schwarz`` (the same without that exact solve); ``previous`` (coarse
levels with theta 0 and one symmetric block Gauss-Seidel sweep on the finest level, whatever
``COARSE_THETA``/``FINE_SMOOTHER`` say); ``coarse-theta-0``, ``coarse-theta-0.02``, ``coarse-theta-0.05``
(``COARSE_THETA``); ``fine-sweeps-N`` (N symmetric block Gauss-Seidel sweeps on the finest level);
``chebyshev-N`` (N Chebyshev steps on the finest level); ``contrast`` (theta 0.02 and two sweeps);
``no-material`` (without the material-aware aggregation, theta 0, one sweep); ``energy``
(energy-minimising prolongation); ``energy-2level`` (the same with a coarse grid of up to 3000
unknowns); ``naive-energy`` (naive aggregation); ``schwarz:R1+R2`` (the ``no-schwarz`` V-cycle between two
exact solves on the nodes of regions R1, R2, ...: symmetric multiplicative Schwarz, ``fem/subdomain.py``).
``previous``, ``no-material`` and ``contrast`` run without the exact solve.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import vertebrafe as vf                                   # noqa: E402
from vertebrafe.fem import multigrid, solvers, subdomain            # noqa: E402
from vertebrafe.fem.sparse_kernels import BlockMatrix     # noqa: E402
from vertebrafe.simulate import simulate                  # noqa: E402

OPTIONS = {"baseline": {}, "no-material": {}, "energy": {"smooth": ("energy", {"degree": 1})},
           "energy-2level": {"smooth": ("energy", {"degree": 1}), "max_coarse": 3000},
           "naive-energy": {"smooth": ("energy", {"degree": 1}), "aggregate": "naive"},
           "previous": {}, "contrast": {}, "coarse-theta-0": {}, "coarse-theta-0.02": {}, "coarse-theta-0.05": {},
           "fine-sweeps-1": {}, "fine-sweeps-2": {}, "fine-sweeps-3": {}, "chebyshev-3": {}, "chebyshev-4": {},
           "chebyshev-5": {}, "no-schwarz": {}, "nucleus-double": {}}
#: variants without the exact solve of the nearly incompressible material (SUBDOMAIN_MAX_FRACTION 0)
NO_SUBDOMAIN = ("no-schwarz", "previous", "no-material", "contrast", "schwarz")
#: (COARSE_THETA, FINE_SMOOTHER) of the variants that change them; None: solvers' value
SETTINGS = {"previous": (0.0, ("gauss_seidel", 1)), "no-material": (0.0, ("gauss_seidel", 1)),
            "contrast": (0.02, ("gauss_seidel", 2)), "coarse-theta-0": (0.0, None), "coarse-theta-0.02": (0.02, None),
            "coarse-theta-0.05": (0.05, None),
            **{f"fine-sweeps-{n}": (None, ("gauss_seidel", n)) for n in (1, 2, 3)},
            **{f"chebyshev-{n}": (None, ("chebyshev", n)) for n in (3, 4, 5)}}


class _Recorded(Exception):
    """Raised once the system is recorded: ``simulate`` stops before any set-up or solve."""


def system(levels, bmd, h):
    """``(K, f, B, strength, segment)`` of the AMG solve of ``simulate`` on the segment (recorded as
    ``simulate`` hands it to ``solvers.Prepared``, which is then not built)."""
    seg = vf.segment(levels, bmd=bmd, element_size=h, posterior=False)      # the linear system, no springs
    seen = {}
    init, solve = solvers.Prepared.__init__, solvers.Prepared.solve

    def record_init(self, K, method="auto", near_nullspace=None, strength=None):
        seen.update(K=K, B=near_nullspace, S=strength)

    def record_solve(self, f, *a, **k):
        seen["f"] = f.copy()
        raise _Recorded

    solvers.Prepared.__init__, solvers.Prepared.solve = record_init, record_solve
    try:
        simulate(seg, "relaxed_standing", solver="amg", factor_of_risk=False)
    except _Recorded:
        pass
    finally:
        solvers.Prepared.__init__, solvers.Prepared.solve = init, solve
    return seen["K"], seen["f"], seen["B"], seen["S"], seg


def region_blocks(seg, names, n_dofs):
    """Blocks (nodes) of the cells in regions ``names``."""
    mesh = seg.mesh
    codes = [c for c, n in mesh.tag_names["region"].items() if n in names]
    return np.unique(mesh.cells[np.isin(mesh.cell_data["region"], codes)]).astype(np.int64)


def timed(parts, name, fn):
    """``fn`` that adds its process CPU seconds to ``parts[name]`` and counts its calls."""
    def part(*args):
        c = time.process_time()
        out = fn(*args)
        seconds, calls = parts.get(name, (0.0, 0))
        parts[name] = (seconds + time.process_time() - c, calls + 1)
        return out
    return part


def timed_smoother(parts, name, smoother):
    """``timed(parts, name, smoother)`` that keeps the smoother's ``presmooth`` (timed too: the residual it fuses
    with its last step counts as smoothing)."""
    part = timed(parts, name, smoother)
    if hasattr(smoother, "presmooth"):
        part.presmooth = timed(parts, name, smoother.presmooth)
    return part


def split_preconditioner(ml, parts):
    """``solvers.amg_preconditioner(ml)`` with the process CPU of its parts added up in ``parts``."""
    cycle = multigrid.VCycle(ml)
    cycle.levels = [(A, P, A_sp, timed_smoother(parts, f"level {i} smoothing", pre),
                     timed(parts, f"level {i} smoothing", post))
                    for i, (A, P, A_sp, pre, post) in enumerate(cycle.levels)]
    cycle.coarse_solver = timed(parts, "coarse solve", cycle.coarse_solver)
    M = timed(parts, "V-cycle", cycle)
    region = getattr(ml, "subdomain", None)
    if region is not None:
        region.solve = timed(parts, "nucleus solves", region.solve)
        M = region.around(M).matvec
    return spla.LinearOperator(ml.levels[0].A.shape, matvec=timed(parts, "preconditioner", M), dtype=np.float64)


def run(name, K, f, B, S, seg, split=False):
    base, _, regions = name.partition(":")
    saved = (dict(solvers.AMG_OPTIONS), solvers.COARSE_THETA, solvers.FINE_SMOOTHER,
             solvers.SUBDOMAIN_MAX_FRACTION, solvers.SUBDOMAIN_PRECISION)
    solvers.AMG_OPTIONS.update(OPTIONS["baseline" if base == "schwarz" else base])
    theta, smoother = SETTINGS.get(base, (None, None))
    solvers.COARSE_THETA = saved[1] if theta is None else theta
    solvers.FINE_SMOOTHER = saved[2] if smoother is None else smoother
    if base in NO_SUBDOMAIN:
        solvers.SUBDOMAIN_MAX_FRACTION = 0.0
    if base == "nucleus-double":
        solvers.SUBDOMAIN_PRECISION = "double"
    parts = {}
    with threadpool_limits(limits=1):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            ml = solvers.amg_hierarchy(K, B, None if base == "no-material" else S)
            M = split_preconditioner(ml, parts) if split else solvers.amg_preconditioner(ml)
            del ml
        finally:
            solvers.AMG_OPTIONS.clear()
            solvers.AMG_OPTIONS.update(saved[0])
            (solvers.COARSE_THETA, solvers.FINE_SMOOTHER, solvers.SUBDOMAIN_MAX_FRACTION,
             solvers.SUBDOMAIN_PRECISION) = saved[1:]
        KB = BlockMatrix(K)
        dofs = None
        if base == "schwarz":
            region = subdomain.Subdomain(K, region_blocks(seg, regions.split("+"), K.shape[0]), solvers.factorize)
            dofs = region.dofs
            M = region.around(M)
        t1, c1 = time.perf_counter(), time.process_time()
        count = [0]
        A = KB.operator()
        if split:
            A = spla.LinearOperator(K.shape, matvec=timed(parts, "K x", A.matvec), dtype=np.float64)
        u, _ = spla.cg(A, f, rtol=1e-8, atol=0.0, maxiter=2000, M=M,
                       callback=lambda _: count.__setitem__(0, count[0] + 1))
        t2, c2 = time.perf_counter(), time.process_time()
    res = np.linalg.norm(K @ u - f) / np.linalg.norm(f)
    extra = f" ({dofs.size} unknowns factorised)" if base == "schwarz" else ""
    print(f"| {name}{extra} | {count[0]} | {res:.1e} | {t1 - t0:.2f} | {t2 - t1:.2f} | {c1 - c0:.1f} | "
          f"{(c2 - c1) / max(count[0], 1):.3f} | {c2 - c0:.1f} | {os.getloadavg()[0]:.1f} |", flush=True)
    if split:
        applications = parts["preconditioner"][1]
        print("|  | CPU ms per application: " + ", ".join(
            f"{key} {1e3 * seconds / applications:.1f}" for key, (seconds, _) in parts.items()) + " |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--element-size", type=float, default=3.0)
    ap.add_argument("--variants", default="baseline,energy,energy-2level")
    ap.add_argument("--split", action="store_true", help="process CPU of the preconditioner's parts")
    args = ap.parse_args(argv)
    rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"vertebrafe {vf.__version__} rev {rev} | python {platform.python_version()} | cpus {os.cpu_count()} | "
          f"load average {os.getloadavg()[0]:.2f}")
    K, f, B, S, seg = system(args.levels, args.bmd, args.element_size)
    print(f"{args.levels} at {args.element_size:g} mm: {K.shape[0]} unknowns, {K.nnz} non-zeros")
    print("| variant | CG it | residual | set-up s | solve s | set-up CPU s | CPU s per CG it | CPU s | load |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        if name.partition(":")[0] not in OPTIONS and not name.startswith("schwarz:"):
            raise SystemExit(f"--variants: unknown variant {name!r}; allowed: {', '.join(OPTIONS)}, schwarz:R1+R2")
        run(name, K, f, B, S, seg, args.split)


if __name__ == "__main__":
    main()
