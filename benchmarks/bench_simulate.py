"""Benchmark of one load case on a segment, and mesh convergence of the key metrics.

Timing (default): a three-level segment T12-L2 (vBMD 100 mg/cm^3) at the default element size under
the relaxed-standing preset (500 N follower load): meshing (``vertebrafe.segment``), model set-up and
solve (``simulate``), and the metrics table, each timed, with the DOF count and the solver report.
Numba compilation is excluded: a tiny model is solved first in the same process.

Convergence (``--convergence 2.0,1.0``): the same case at each element size; key metrics and their
relative change against the finest size.

    python benchmarks/bench_simulate.py                                 # timing, default size
    python benchmarks/bench_simulate.py --element-size 3                # another size
    python benchmarks/bench_simulate.py --convergence 4,3,2 --levels L4-L5 --json conv.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import vertebrafe as vf                                  # noqa: E402
from vertebrafe import loads                             # noqa: E402
from vertebrafe.simulate import simulate                 # noqa: E402

KEY_METRICS = [
    # (metric, level role, region); level role: "disc" = the first disc, "mid" = the middle vertebra
    ("pressure", "disc", "nucleus"),
    ("von_mises_peak", "disc", "annulus"),
    ("height_change", "disc", "disc"),
    ("height_change", "mid", "vertebra"),
    ("cortical_share", "mid", "vertebra"),
    ("superior_endplate_deflection", "mid", "vertebra"),
    ("von_mises_mean", "mid", "cancellous"),
    ("von_mises_p95", "mid", "cancellous"),
    ("min_principal_stress_p05", "mid", "bone"),
    ("strength_yield", "mid", "vertebra"),
    ("strength_apparent", "mid", "vertebra"),
    ("axial_stiffness", "segment", "segment"),
    ("rotation_flexion", "segment", "segment"),
]


def _revision():
    try:
        return subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:                                     # pragma: no cover
        return "?"


def warm_up():
    seg = vf.segment(["L4"], bmd=100.0, element_size=6.0)
    simulate(seg, loads.Load(compression=100.0), solver="direct")


def run(levels, bmd, element_size, load, solver):
    t0 = time.perf_counter()
    seg = vf.segment(levels, bmd=bmd, element_size=element_size)
    t1 = time.perf_counter()
    res = simulate(seg, load, solver=solver)
    t2 = time.perf_counter()
    info = res.info
    return seg, res, {"mesh_s": t1 - t0, "model_s": info["model_time"], "solve_s": info["solve_time"],
                      "metrics_s": info["metrics_time"], "total_s": t2 - t0, "cells": seg.mesh.n_cells,
                      "dofs": seg.n_dofs, "free_dofs": info.get("dofs"), "solver": info.get("solver"),
                      "iterations": info.get("iterations"), "residual": info.get("residual"),
                      "amg_setup_s": info.get("setup_time"), "cg_s": info.get("solve_time")}


def key_values(seg, res):
    mid = seg.levels[len(seg.levels) // 2]
    disc = seg.discs[0] if seg.discs else None
    out = {}
    for metric, role, region in KEY_METRICS:
        level = {"disc": disc, "mid": mid, "segment": "segment"}[role]
        if level is None:
            continue
        try:
            out[f"{level}/{region}/{metric}"] = res.value(metric, level, region)
        except Exception:
            pass
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--element-size", type=float, default=2.0)
    ap.add_argument("--load", default="relaxed_standing", help="preset name")
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--convergence", default="", help="comma list of element sizes (mm), coarse to fine")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    load = loads.preset(args.load)
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"cpus {os.cpu_count()} | load average {os.getloadavg()[0]:.2f}")
    print(f"case: {args.levels}, vBMD {args.bmd:g} mg/cm^3, load {args.load} ({load.describe()})")
    t = time.perf_counter()
    warm_up()
    print(f"warm-up (numba cache) {time.perf_counter() - t:.1f} s")
    report = {"levels": args.levels, "bmd": args.bmd, "load": args.load, "runs": []}
    sizes = [float(s) for s in args.convergence.split(",") if s] or [args.element_size]
    for h in sizes:
        seg, res, tm = run(args.levels, args.bmd, h, load, args.solver)
        vals = key_values(seg, res)
        report["runs"].append({"element_size": h, **tm, "metrics": vals})
        print(f"\nelement size {h:g} mm: {tm['cells']} cells, {tm['dofs']} DOFs ({tm['free_dofs']} free), "
              f"solver {tm['solver']} ({tm['iterations']} it, residual {tm['residual']:.1e})")
        print(f"  mesh {tm['mesh_s']:.2f} s | model {tm['model_s']:.2f} s | solve {tm['solve_s']:.2f} s "
              f"(setup {tm['amg_setup_s']:.2f}, iterations {tm['cg_s']:.2f}) | metrics {tm['metrics_s']:.2f} s | "
              f"total {tm['total_s']:.2f} s (target <= 20 s at the default size)")
        sys.stdout.flush()
    if len(sizes) > 1:
        fine = report["runs"][-1]["metrics"]
        print(f"\nconvergence: relative change against {sizes[-1]:g} mm")
        print(f"{'metric':58s}" + "".join(f"{h:>12g}" for h in sizes) + "   change(first->last)")
        for k in fine:
            vals = [r["metrics"].get(k, np.nan) for r in report["runs"]]
            ch = abs(vals[0] - fine[k]) / abs(fine[k]) if fine[k] else np.nan
            print(f"{k:58s}" + "".join(f"{v:12.5g}" for v in vals) + f"   {100 * ch:6.2f} %")
        report["relative_change"] = {k: (abs(report["runs"][-2]["metrics"].get(k, np.nan) - v) / abs(v) if v else None)
                                     for k, v in fine.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
