"""Exact subdomain solves around the V-cycle on the real ``simulate`` run of a segment with posterior elements:
CG iterations of the rest state's and the load's active-set solves, their process CPU, the hierarchy's set-up
CPU and the unknowns factorised, for the nearly incompressible nucleus alone (the library's choice) and for
the nucleus with the nodes of other regions added to the exact solve.

Each variant runs ``benchmarks/bench_simulate.py``'s timed run (T12-L2, vBMD 100, relaxed standing,
posterior elements, the nucleus swelling pressure, ``solver="amg"``) in a fresh process after the kernels
are compiled or loaded (``bench_simulate.warm_up``), one numba and one BLAS thread (set the environment
before starting). The region nodes join the nucleus's blocks marked by ``Model._material_strength``
(``solvers.amg_hierarchy`` solves them exactly before and after the V-cycle: ``fem/subdomain.py``), with
``solvers.SUBDOMAIN_MAX_FRACTION`` raised to 0.9 so that the larger sets are built; ``none`` builds no
subdomain (``SUBDOMAIN_MAX_FRACTION`` 0).

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/amg_subdomains.py --element-size 2
    python benchmarks/amg_subdomains.py --element-size 3,2,1.5 --variants nucleus,posterior,cortex+endplate+posterior

Variants: ``nucleus`` (the library), ``none``, or region names joined by ``+`` (``cortex``, ``endplate``,
``cancellous``, ``annulus``, ``posterior``), each added to the nucleus.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)


def one(element_size, variant, levels, bmd):
    """The timed run of one variant in this process; prints one table row."""
    import bench_simulate
    from vertebrafe import loads
    from vertebrafe.anatomy import REGION_CODES
    from vertebrafe.fem import active_set, solvers
    from vertebrafe.fem.model import Model

    if variant == "none":
        solvers.SUBDOMAIN_MAX_FRACTION = 0.0
    elif variant != "nucleus":
        solvers.SUBDOMAIN_MAX_FRACTION = 0.9
        codes = [REGION_CODES[name] for name in variant.split("+")]
        material_strength = Model._material_strength

        def with_regions(self, pat, cells, n_plates):
            graph = material_strength(self, pat, cells, n_plates)
            region = getattr(self.mesh, "cell_data", {}).get("region")
            if graph is not None and graph.incompressible is not None and region is not None:
                graph.incompressible[cells[np.isin(np.asarray(region), codes)].ravel()] = True
            return graph

        Model._material_strength = with_regions
    solves, hierarchies = [], []
    checked, hierarchy = active_set._checked, solvers.amg_hierarchy

    def timed_checked(*args, **kwargs):
        c = time.process_time()
        out = checked(*args, **kwargs)
        solves.append((out[-1], time.process_time() - c))
        return out

    def timed_hierarchy(*args, **kwargs):
        c = time.process_time()
        ml = hierarchy(*args, **kwargs)
        region = getattr(ml, "subdomain", None)
        hierarchies.append((time.process_time() - c, 0 if region is None else region.dofs.size))
        return ml

    active_set._checked, solvers.amg_hierarchy = timed_checked, timed_hierarchy
    bench_simulate.warm_up()
    solves.clear()
    hierarchies.clear()
    _, res, r = bench_simulate.run(levels, bmd, element_size, loads.preset("relaxed_standing"), "amg", posterior=True)
    # the segment's hierarchy is the first and largest (the others: the metrics' single vertebrae)
    setup_cpu, factorised = hierarchies[0]
    rest = " + ".join(str(its) for its, _ in solves[:-1])
    name = variant if variant in ("nucleus", "none") else "nucleus + " + variant.replace("+", " + ")
    print(f"| {element_size:g} | {name} | {factorised} | {rest} | **{solves[-1][0]}** | "
          f"{sum(c for _, c in solves[:-1]):.2f} | {solves[-1][1]:.2f} | {setup_cpu:.2f} | {r['cpu_s']:.2f} | "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} | {res.info['residual']:.1e} | "
          f"{os.getloadavg()[0]:.1f} |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--element-size", default="2", help="comma-separated element sizes (mm)")
    ap.add_argument("--variants", default="nucleus,none,posterior,cortex+endplate,cortex+endplate+posterior")
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        one(float(args.one[0]), args.one[1], args.levels, args.bmd)
        return
    import bench_simulate
    import vertebrafe as vf
    rev = bench_simulate._revision()
    print(f"vertebrafe {vf.__version__} rev {rev} | python {platform.python_version()} | cpus {os.cpu_count()} | "
          f"load average {os.getloadavg()[0]:.2f} | numba threads {os.environ.get('NUMBA_NUM_THREADS', 'all')}")
    print("| mm | exact solve | unknowns factorised | rest state CG it | load CG it | "
          "rest state CPU s | load CPU s | hierarchy set-up CPU s | process CPU s | peak MB | residual | load |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")
    for h in args.element_size.split(","):
        for variant in args.variants.split(","):
            subprocess.run([sys.executable, os.path.abspath(__file__), "--levels", args.levels, "--bmd",
                            str(args.bmd), "--one", h, variant], check=True)


if __name__ == "__main__":
    main()
