#!/usr/bin/env python
"""Where the AMG-CG time of the block-with-inclusion benchmark goes: wall and process CPU time of the
phases of the smoothed-aggregation set-up (tentative prolongator, prolongator smoothing and its spectral
radius estimate, Galerkin products, float32 copies, smoothers) and of the CG solve (V-cycles, products with the stiffness matrix, the rest).

The model is that of ``bench_core.py`` (same box, inclusion, constraints, rtol 1e-8, ``solver="amg"``);
numba compilation is excluded (a small model is solved first). CPU time counts every thread of the
process; on a shared machine it is the steadier measure, and ``NUMBA_NUM_THREADS=1`` the steadiest.

    python benchmarks/amg_profile.py                      # the 400k-cell (1.24M-DOF) box
    NUMBA_NUM_THREADS=1 python benchmarks/amg_profile.py --size 150k
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)

import bench_core  # noqa: E402
import numba  # noqa: E402
from pyamg.aggregation import aggregation  # noqa: E402

from vertebrafe.fem import multigrid, relaxation, solvers, sparse_kernels  # noqa: E402

PHASES = [(aggregation, "fit_candidates", "tentative prolongator (pyamg fit_candidates)"),
          (multigrid, "jacobi_prolongation", "prolongator smoothing"),
          (multigrid, "spectral_radius", "- spectral radius of D^-1 A (Lanczos)"),
          (multigrid, "galerkin_product", "Galerkin products P^T A P"),
          (multigrid, "single_precision", "float32 operators and prolongators"),
          (relaxation, "use_block_gauss_seidel", "smoothers (inverse diagonal blocks)"),
          (multigrid.VCycle, "__call__", "V-cycles"),
          (sparse_kernels.BlockMatrix, "matvec", "products with K (CG and residual checks)"),
          (solvers.Prepared, "__init__", "set-up in all"),
          (solvers.Prepared, "solve", "solve in all")]


def timed(owner, name, totals):
    """Replace ``owner.name`` by a wrapper that adds its wall and CPU seconds to ``totals[name]``; returns
    the original."""
    function = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t, c = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            entry = totals.setdefault(name, [0.0, 0.0, 0])
            entry[0] += time.perf_counter() - t
            entry[1] += time.process_time() - c
            entry[2] += 1

    setattr(owner, name, wrapper)
    return function


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="400k", help="cells, as in bench_core.py (default 400k: 1.24M DOFs)")
    args = ap.parse_args(argv)
    _, small, _ = bench_core._vertebrafe_model(bench_core.WARMUP_SHAPE, "full")
    small.solve(solver="amg", rtol=bench_core.RTOL)                  # compile or load the kernels
    mesh, model, _ = bench_core._vertebrafe_model(bench_core.grid_shape(bench_core.parse_size(args.size)), "full")
    totals = {}
    originals = [(owner, name, timed(owner, name, totals)) for owner, name, _ in PHASES]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    try:
        sol = model.solve(solver="amg", rtol=bench_core.RTOL)
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)
    info = sol.info
    print(f"{3 * mesh.n_points:,} DOFs, {numba.get_num_threads()} numba threads, load average {load:.1f} before "
          f"the solve; {info['iterations']} CG iterations, relative residual {info['residual']:.2g}, "
          f"{info['levels']} levels, operator complexity {info['operator_complexity']:.3f}")
    print(f"{'phase':48s} {'calls':>5s} {'wall s':>8s} {'CPU s':>8s}")
    for _, name, label in PHASES:
        wall, cpu, calls = totals.get(name, (0.0, 0.0, 0))
        print(f"{label:48s} {calls:5d} {wall:8.2f} {cpu:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
