"""Cost and convergence of the nucleus swelling pressure (``segment(..., nucleus_prepressure=p)``).

Each (element size, preset, pressure) runs in a fresh process (after a tiny warm-up solve, so numba compilation is
not counted): the process CPU seconds (user + sys, all threads) of ``simulate`` alone and of mesh + simulate, the
linear solves and active-set steps of the rest state (``Result.solution.rest``) and of the load, the nucleus
pressure of every disc and the intervertebral rotations; the load average is printed with each row (on a shared
machine CPU time is the steadier measure). With two element sizes the difference of every disc's pressure and
rotation at the coarsest size from the finest, relative to the finest, is printed per preset and pressure.

    python benchmarks/prepressure_cost.py                                   # T12-L2, 2 mm, both presets, p 0 / 0.1
    python benchmarks/prepressure_cost.py --levels L4-L5 --sizes 2,1 --presets relaxed_standing+standing_flexed \
        --prepressure 0.1 --solver amg                                     # 2 -> 1 mm, one process per size
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))


def one(levels, h, preset, p, bmd, solver):
    """One case in this process: a dict of costs and metrics. ``preset``: a name, or names joined by ``+``
    (one ``simulate`` of the list: one set-up and one rest state; metrics prefixed by the preset)."""
    import vertebrafe as vf
    from vertebrafe.fem import Model
    from vertebrafe.simulate import simulate

    simulate(vf.segment(["L4"], bmd=100.0, element_size=6.0), vf.loads.Load(compression=100.0), solver="direct")
    calls, solve = [], Model.solve

    def counted(model, *args, **kwargs):                 # every FE solve of the case: its active-set steps
        sol = solve(model, *args, **kwargs)
        calls.append(sol.info)
        return sol

    Model.solve = counted
    c0 = time.process_time()
    seg = vf.segment(levels, bmd=bmd, element_size=h, nucleus_prepressure=p)
    c1 = time.process_time()
    names = preset.split("+")
    results = simulate(seg, names if len(names) > 1 else names[0], solver=solver)
    results = results if len(names) > 1 else [results]
    c2 = time.process_time()
    res = results[-1]
    sol, rest = res.solution, res.solution.rest
    n = next(k for k, i in enumerate(calls) if i is sol.info) + 1
    out = {"levels": levels, "element_size": h, "preset": preset, "prepressure": p, "solver": sol.info.get("solver"),
           "cells": seg.mesh.n_cells, "dofs": sol.info.get("dofs"), "mesh_cpu_s": c1 - c0, "simulate_cpu_s": c2 - c1,
           "peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "load_avg": os.getloadavg()[0],
           "plate_solves": len(calls) - n}
    calls = calls[:n]                                    # the rest state's and the load's (not the plate tests)
    out.update(fe_solves=n, active_set_steps=[i.get("active_set_iterations") for i in calls],
               linear_solves=sum(i.get("iterations", 0) for i in calls if i.get("factorization")) or None,
               cg_iterations=sum(i.get("iterations", 0) for i in calls if not i.get("factorization")) or None)
    if rest is not None:
        out.update(swelling_steps=rest.info.get("swelling_steps"),
                   swelling_stress={d: float(s) for d, s in rest.info["swelling_stress"].items()})
    for name, r in zip(names, results):
        tag = f"{name}:" if len(names) > 1 else ""
        for d in seg.discs:
            out[f"{tag}{d}/pressure"] = r.value("pressure", d, "nucleus")
            out[f"{tag}{d}/rotation_flexion"] = r.value("rotation_flexion", d)
            if rest is not None:
                out[f"{tag}{d}/rest_pressure"] = r.value("rest_pressure", d, "nucleus")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--sizes", default="2", help="comma list of element sizes (mm)")
    ap.add_argument("--presets", default="relaxed_standing,standing_flexed",
                    help="comma list of presets, each in its own process; a+b: both in one simulate call")
    ap.add_argument("--prepressure", default="0,0.1", help="comma list of nucleus swelling pressures (MPa)")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--one", help=argparse.SUPPRESS)          # internal: one case as JSON, in this process
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(*json.loads(a.one))))
        return 0
    rows = []
    for h in (float(x) for x in a.sizes.split(",")):
        for preset in a.presets.split(","):
            for p in (float(x) for x in a.prepressure.split(",")):
                arg = json.dumps([a.levels, h, preset, p, a.bmd, a.solver])
                t = time.perf_counter()
                r = subprocess.run([sys.executable, __file__, "--one", arg], capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit(f"{arg} failed:\n{r.stderr}")
                row = json.loads(r.stdout.strip().splitlines()[-1])
                row["wall_s"] = time.perf_counter() - t
                rows.append(row)
                print(json.dumps(row), flush=True)
    sizes = sorted({r["element_size"] for r in rows}, reverse=True)
    if len(sizes) > 1:
        coarse = {(r["preset"], r["prepressure"]): r for r in rows if r["element_size"] == sizes[0]}
        for r in rows:
            if r["element_size"] != sizes[-1]:
                continue
            c = coarse[(r["preset"], r["prepressure"])]
            change = {k: (c[k] - r[k]) / abs(r[k]) for k in r if "/" in k and isinstance(r[k], float) and r[k]}
            print(f"{sizes[0]:g} mm against {sizes[-1]:g} mm, {r['preset']}, p {r['prepressure']:g}: "
                  + ", ".join(f"{k} {100 * v:+.2f} %" for k, v in change.items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
