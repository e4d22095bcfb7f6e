"""Benchmark of one load case on a segment, and mesh convergence of the key metrics.

Timing (default): a three-level segment T12-L2 (vBMD 100 mg/cm^3) at the default element size under
the relaxed-standing preset (500 N follower load): meshing (``vertebrafe.segment``), model set-up and
solve (``simulate``), and the metrics table, each timed, with the DOF count and the solver report.
Numba compilation is excluded: every FE kernel (AMG-CG's too) is compiled or loaded first and a tiny model
is solved in the same process.

Convergence (``--convergence 2.0,1.0``): the same case at each element size; key metrics and their
relative change against the finest size. With ``--posterior`` the key metrics include, at every disc level,
the rotation across the level, each facet joint's force, each ligament's force and the posterior load
share; rows whose finest value lies below ``NEAR_ZERO`` (0.01 deg, 1 N, 0.1 %) are marked "near zero".

    python benchmarks/bench_simulate.py                                 # timing, default size
    python benchmarks/bench_simulate.py --element-size 3                # another size
    python benchmarks/bench_simulate.py --fibres                        # with annulus fibres
    python benchmarks/bench_simulate.py --posterior                     # with posterior elements
    python benchmarks/bench_simulate.py --levels T10-L5 --posterior --prepressure 0   # stress-free discs, no rest state
    python benchmarks/bench_simulate.py --convergence 4,3,2 --levels L4-L5 --json conv.json
    python benchmarks/bench_simulate.py --posterior --load extension_moment --convergence 4,2 --solver amg
    python benchmarks/bench_simulate.py --posterior --load extension_moment --convergence 2,1.5,1 --solver amg --articular-refinement 2
    python benchmarks/bench_simulate.py --validation --element-size 2     # targets 5 (default 0.1 MPa swelling), 6, 7
    python benchmarks/bench_simulate.py --validation --element-size 2 --prepressure 0,0.1,0.12,0.24   # target 5 swelling
    python benchmarks/bench_simulate.py --clinical --element-size 3       # intact / fracture / VP / BKP
    python benchmarks/bench_simulate.py --table 3,2,1.5,1 --solvers direct,amg   # segment table
    python benchmarks/bench_simulate.py --loads 5                         # five presets, one set-up

Segment table (``--table``): every (element size, solver) pair in a fresh process, so that the peak
memory (resident-set high-water mark) belongs to that run; phases in wall-clock seconds (mesh: ``segment``;
model: the model, its loads and, with the nucleus swelling pressure, the rest state's solves; solve: the load's
``Model.solve``, assembly and solver set-up included; metrics) and the process CPU seconds (on a shared machine
CPU time is the steadier measure).
Several loads (``--loads N``): ``simulate`` with one preset, then with a list of N presets (one model,
one set-up, N solves), same process and segment; prints both times and their ratio.

Validation (``--validation``): target 5, nucleus pressure of an intact L4-L5 (vBMD 120) under the
relaxed-standing, standing-flexed and lifting presets (Wilke 1999: 0.5, 1.1 and 2.3 MPa), with each nucleus
swelling pressure at rest of ``--prepressure`` (MPa, ``segment(..., nucleus_prepressure=)``); target 6,
stiffness and strengths of an osteoporotic L1 (vBMD 60, 70, 80) alone between rigid plates (yield-volume
strength against 2-4 kN; force at 0.2 % apparent strain; force at 0.2 mm, the VerSe19 "R.Force"
definition); target 7, factor of risk of that L1 for standing and lifting (preset compression /
strength), and the in-situ overload index of L1 in T12-L2 (vBMD 70) under the same presets.

Clinical check (``--clinical``): T12-L2 (vBMD 70) intact, with a grade-2 wedge fracture of L1, and the
fracture treated by vertebroplasty and by kyphoplasty, under a 500 N follower load: added kyphosis,
upper-body load, L1 apparent strain, segment stiffness, nucleus pressures, L1 in-situ overload index, and the
adjacent vertebrae's mean von Mises stress after VP relative to the untreated fracture.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import vertebrafe as vf                                  # noqa: E402
from vertebrafe import loads                             # noqa: E402
from vertebrafe.anatomy.segment import LYING_PREPRESSURE  # noqa: E402
from vertebrafe.materials import MaterialSet              # noqa: E402
from vertebrafe.simulate import simulate                 # noqa: E402

KEY_METRICS = [
    # (metric, level role, region); level role: "disc" = the first disc, "mid" = the middle vertebra
    ("pressure", "disc", "nucleus"),
    ("von_mises_peak", "disc", "annulus"),
    ("height_change", "disc", "disc"),
    ("fibre_force_total", "disc", "annulus"),          # with --fibres only (missing rows are skipped)
    ("fibres_taut", "disc", "annulus"),
    ("rotation_flexion", "discs", "disc"),              # "discs": every disc level
    ("rotation_lateral_bending", "discs", "disc"),
    ("rotation_axial", "discs", "disc"),
    ("facet_force", "discs", "facet_left"),            # with --posterior only
    ("facet_force", "discs", "facet_right"),
    ("load_share", "discs", "posterior"),
] + [("ligament_force", "discs", lig) for lig in ("ALL", "PLL", "LF", "ISL", "SSL", "ITL", "CL")] + [
    ("height_change", "mid", "vertebra"),
    ("cortical_share", "mid", "vertebra"),
    ("superior_endplate_deflection", "mid", "vertebra"),
    ("inferior_endplate_deflection", "mid", "vertebra"),
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
    """Compile (or load from numba's cache) every FE kernel, AMG-CG's included, and those of a small
    simulation's metrics, so that no timed phase compiles, whichever solver it uses."""
    from vertebrafe.fem.warmup import warm_up as compile_kernels
    compile_kernels(say=None, parallel=False)
    seg = vf.segment(["L4"], bmd=100.0, element_size=6.0)
    simulate(seg, loads.Load(compression=100.0), solver="direct")


def timing_prepressure(text):
    """The nucleus pre-pressure of the timing and convergence runs from ``--prepressure``: None (the library's
    default, which segments without nucleus cells ignore) for the default text, else the one pressure (MPa)."""
    if text == f"{LYING_PREPRESSURE:g}":
        return None
    if "," in text:
        raise SystemExit("--prepressure: one pressure for timing and convergence runs (a list only with --validation)")
    return float(text)


def run(levels, bmd, element_size, load, solver, fibres=False, posterior=False, articular_refinement=1,
        prepressure=None):
    """One timed run; ``prepressure``: the nucleus swelling pressure at rest (MPa; None: the library's default)."""
    t0, c0 = time.perf_counter(), time.process_time()
    seg = vf.segment(levels, element_size=element_size, fibres=fibres, posterior=posterior,
                     articular_refinement=articular_refinement, nucleus_prepressure=prepressure,
                     materials=MaterialSet(bmd=bmd, annulus_matrix="annulus_ground"))   # the rows' disc: 4.2 MPa
    t1, c1 = time.perf_counter(), time.process_time()
    res = simulate(seg, load, solver=solver)
    t2 = time.perf_counter()
    info = res.info
    return seg, res, {"cpu_s": time.process_time() - c0, "mesh_cpu_s": c1 - c0,
                      "peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "factorization": info.get("factorization"), "mesh_s": t1 - t0, "model_s": info["model_time"], "solve_s": info["fe_time"],
                      "metrics_s": info["metrics_time"], "total_s": t2 - t0, "cells": seg.mesh.n_cells,
                      "dofs": seg.n_dofs, "free_dofs": info.get("dofs"), "solver": info.get("solver"),
                      "iterations": info.get("iterations"), "residual": info.get("residual"),
                      "solver_setup_s": info.get("setup_time"), "solver_iterations_s": info.get("solve_time"),
                      "assembly_s": info.get("assembly_time"),
                      "active_set_iterations": info.get("active_set_iterations"),
                      "spring_columns": info.get("spring_columns")}


#: Below these magnitudes (at the finest size) a relative change says little: a near-zero quantity.
NEAR_ZERO = {"rotation_flexion": 0.01, "rotation_lateral_bending": 0.01, "rotation_axial": 0.01,   # deg
             "facet_force": 1.0, "ligament_force": 1.0, "load_share": 1e-3}                           # N, -


def key_values(seg, res):
    mid = seg.levels[len(seg.levels) // 2]
    disc = seg.discs[0] if seg.discs else None
    out = {}
    for metric, role, region in KEY_METRICS:
        levels = {"disc": [disc] if disc else [], "discs": list(seg.discs), "mid": [mid],
                  "segment": ["segment"]}[role]
        for level in levels:
            try:
                out[f"{level}/{region}/{metric}"] = res.value(metric, level, region)
            except Exception:                           # a row this segment does not have
                pass
    return out


def validation(h, solver, prepressures=(0.0,)):
    from vertebrafe.post import vertebra_strength

    out = {"element_size": h}
    for p in prepressures:
        seg = vf.segment(["L4", "L5"], bmd=120.0, element_size=h, posterior=False, nucleus_prepressure=p)
        tag = "" if p == 0 else f"/prepressure {p:g}"
        for name in ("relaxed_standing", "standing_flexed", "lifting"):
            r = simulate(seg, name, solver=solver)
            if name == "relaxed_standing":
                standing = r
            key = f"target5/L4-L5/{name}{tag}"
            out[f"{key}/nucleus_pressure_MPa"] = r.value("pressure", "L4-L5", "nucleus")
            out[f"{key}/solve_s"] = r.info["fe_time"]
            rest = (f", rest pressure {r.value('rest_pressure', 'L4-L5', 'nucleus'):.4f} MPa, swelling stress "
                    f"{r.value('swelling_stress', 'L4-L5', 'nucleus'):.3f} MPa" if p else "")
            print(f"target 5: L4-L5 vBMD 120, {name}, prepressure {p:g} MPa: nucleus pressure "
                  f"{out[f'{key}/nucleus_pressure_MPa']:.3f} MPa{rest} ({seg.n_dofs} DOFs, solve {r.info['fe_time']:.1f} s)",
                  flush=True)
        if p:
            print(f"target 5: prepressure {p:g}: disc height change under relaxed standing "
                  f"{standing.value('height_change', 'L4-L5', 'disc'):.4f} mm (from the rest state)", flush=True)
    stand, lift = loads.preset("relaxed_standing").compression, loads.preset("lifting").compression
    for bmd in (60.0, 70.0, 80.0):
        vs = vertebra_strength(vf.segment(["L1"], bmd=bmd, element_size=h), "L1", solver=solver)
        out[f"target6/L1/{bmd:g}"] = {k: v for k, v in vs.items() if k != "solution"}
        print(f"target 6: L1 vBMD {bmd:g}: height {vs.height:.2f} mm, stiffness {vs.stiffness:.0f} N/mm, "
              f"strength at 0.2 % {vs.strength_apparent:.0f} N, force at 0.2 mm (VerSe19 'R.Force') "
              f"{0.2 * vs.stiffness:.0f} N, yield-volume strength {vs.strength_yield:.0f} N; "
              f"target 7 factor of risk standing {stand / vs.strength_apparent:.3f} / {stand / vs.strength_yield:.3f}, "
              f"lifting {lift / vs.strength_apparent:.3f} / {lift / vs.strength_yield:.3f} (0.2 % / yield-volume)",
              flush=True)
    seg = vf.segment("T12-L2", bmd=70.0, element_size=h, posterior=False)
    for name in ("relaxed_standing", "lifting"):
        r = simulate(seg, name, solver=solver)
        fa, fy = r.value("overload_index_apparent", "L1", "vertebra"), r.value("overload_index_yield", "L1", "vertebra")
        out[f"target7/T12-L2/{name}"] = {"overload_index_apparent": fa, "overload_index_yield": fy,
                                         "strength_apparent": r.value("strength_apparent", "L1", "vertebra"),
                                         "strength_yield": r.value("strength_yield", "L1", "vertebra")}
        print(f"target 7 in situ: T12-L2 vBMD 70, {name}: L1 overload index {fa:.3f} (0.2 %) / {fy:.3f} (yield-volume); "
              f"in-situ strengths {out[f'target7/T12-L2/{name}']['strength_apparent']:.0f} / "
              f"{out[f'target7/T12-L2/{name}']['strength_yield']:.0f} N", flush=True)
    return out

def clinical(h, solver, bmd=70.0, fibres=False):
    """Intact / L1 grade-2 wedge / + VP / + BKP of T12-L2 under a 500 N follower load: the clinical check."""
    from vertebrafe.clinical import fracture, kyphoplasty, vertebroplasty

    seg = vf.segment("T12-L2", element_size=h, fibres=fibres, posterior=False,
                     materials=MaterialSet(bmd=bmd, annulus_matrix="annulus_ground"))   # the rows' disc: 4.2 MPa
    frac = fracture(seg, "L1", kind="wedge", grade=2)
    cases = {"intact": seg, "L1 grade-2 wedge": frac, "+ vertebroplasty": vertebroplasty(frac, "L1"),
             "+ kyphoplasty": kyphoplasty(frac, "L1")}
    load = loads.Load(compression=500.0, follower=True)
    print(f"\nclinical check: T12-L2, vBMD {bmd:g}, {h:g} mm, 500 N follower{', annulus fibres' if fibres else ''}")
    print("| case | added kyphosis (deg) | `upper_body(70 kg)` at T12 (N) | L1 apparent strain "
          "| segment stiffness (N/mm) | nucleus pressure T12-L1 / L1-L2 (MPa) | overload index L1, yield-volume |")
    print("|---|---|---|---|---|---|---|")
    out, results = {}, {}
    for name, s in cases.items():
        r = results[name] = simulate(s, load, solver=solver, case=name)
        row = {"added_kyphosis": loads.alignment_change(s),
               "upper_body": loads.upper_body(70.0, segment=s).compression,
               "apparent_strain": r.value("apparent_strain", "L1", "vertebra"),
               "stiffness": r.value("axial_stiffness", "segment", "segment"),
               "p_upper": r.value("pressure", "T12-L1", "nucleus"), "p_lower": r.value("pressure", "L1-L2", "nucleus"),
               "for_yield": r.value("overload_index_yield", "L1", "vertebra")}
        out[name] = row
        print(f"| {name} | {row['added_kyphosis']:.1f} | {row['upper_body']:.0f} | {100 * row['apparent_strain']:.3f} % "
              f"| {row['stiffness']:.0f} | {row['p_upper']:.3f} / {row['p_lower']:.3f} | {row['for_yield']:.2f} |",
              flush=True)
    c = results["+ vertebroplasty"].compare(results["L1 grade-2 wedge"])
    adj = c[c.relation.str.startswith("adjacent") & (c.metric == "von_mises_mean")]
    for row in adj.itertuples():
        print(f"VP / untreated fracture, {row.level} {row.region} mean von Mises: x {row.ratio:.4f}")
    return out


PRESET_LIST = ["relaxed_standing", "standing_flexed", "lifting", "flexion_moment", "lateral_bending_moment"]


def table(sizes, solvers, levels, bmd, load, posterior=False):
    """One fresh process per (size, solver); prints a Markdown row for each."""
    import tempfile
    print("| h mm | cells | DOFs | solver | CG it | mesh s | model s | solve s | metrics s "
          "| total s | CPU s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for h in sizes:
        for solver in solvers:
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "run.json")
                cmd = [sys.executable, os.path.abspath(__file__), "--levels", levels, "--bmd", str(bmd),
                       "--load", load, "--element-size", str(h), "--solver", solver, "--json", out]
                cmd += ["--posterior"] if posterior else []
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"| {h:g} | | | {solver} | failed: {proc.stderr.strip().splitlines()[-1:]} |")
                    continue
                with open(out) as f:
                    r = json.load(f)["runs"][0]
            fact = r.get("factorization")            # e.g. "Cholesky (PARDISO)"
            name = r["solver"] + (f" ({fact.rsplit('(', 1)[-1].rstrip(')')})" if fact else "")
            print(f"| {h:g} | {r['cells']:,} | {r['free_dofs']:,} | {name} | "
                  f"{r['iterations'] if r['solver'] == 'amg' else '-'} | {r['mesh_s']:.2f} | {r['model_s']:.2f} | "
                  f"{r['solve_s']:.2f} | {r['metrics_s']:.2f} | "
                  f"{r['total_s']:.2f} | {r['cpu_s']:.1f} | {r['peak_MB']:,.0f} |", flush=True)
            rows.append({"element_size": h, **r})
    return rows


def several_loads(n, levels, bmd, element_size, solver, posterior=False):
    """``simulate`` with one preset, then with a list of ``n`` presets on the same segment."""
    names = (PRESET_LIST * n)[:n]
    seg = vf.segment(levels, bmd=bmd, element_size=element_size, posterior=posterior)
    t0, c0 = time.perf_counter(), time.process_time()
    one = simulate(seg, names[0], solver=solver)
    t1, c1 = time.perf_counter(), time.process_time()
    many = simulate(seg, names, solver=solver)
    t2, c2 = time.perf_counter(), time.process_time()
    print(f"{seg.mesh.n_cells} cells, {one.info['dofs']} free DOFs, solver {one.info['solver']} "
          f"{one.info.get('factorization', '')}")
    print(f"one load ({names[0]}): {t1 - t0:.2f} s (CPU {c1 - c0:.2f} s); set-up {one.info['setup_time']:.2f} s, "
          f"solve {one.info['solve_time']:.2f} s")
    print(f"{n} loads ({', '.join(names)}): {t2 - t1:.2f} s (CPU {c2 - c1:.2f} s); solves "
          + ", ".join(f"{r.info['solve_time']:.2f}" for r in many) + " s")
    print(f"ratio {n} loads / one: {(t2 - t1) / (t1 - t0):.2f} (CPU {(c2 - c1) / (c1 - c0):.2f}); target <= 1.5")
    return {"one_s": t1 - t0, "many_s": t2 - t1, "one_cpu_s": c1 - c0, "many_cpu_s": c2 - c1, "n": n}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--element-size", type=float, default=2.0)
    ap.add_argument("--load", default="relaxed_standing", help="preset name")
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--solvers", default="direct,amg", help="solvers of --table")
    ap.add_argument("--convergence", default="", help="comma list of element sizes (mm), coarse to fine")
    ap.add_argument("--json", default="")
    ap.add_argument("--fibres", action="store_true", help="annulus fibres (segment(..., fibres=True)), on the "
                    "4.2 MPa ground substance of the documented rows")
    ap.add_argument("--posterior", action="store_true",
                    help="posterior elements, facet joints and ligaments (segment(..., posterior=True))")
    ap.add_argument("--articular-refinement", type=int, default=1, help="with --posterior: multiple (1-4) of the "
                    "articular processes' cell layers (segment(..., articular_refinement=))")
    mode = ap.add_mutually_exclusive_group()
    ap.add_argument("--prepressure", default=f"{LYING_PREPRESSURE:g}", help="--validation: comma list of nucleus "
                    "swelling pressures at rest for target 5 (MPa; default the library's, 0.1 lying prone; 0: none); "
                    "timing and convergence runs: one pressure, for every run")
    mode.add_argument("--validation", action="store_true",
                      help="validation targets 5-7 at --element-size (fixed cases; ignores --levels, --bmd, --load)")
    mode.add_argument("--table", default="", help="comma list of element sizes: segment table, one process per run")
    mode.add_argument("--loads", type=int, default=0, help="time a list of this many presets against one")
    mode.add_argument("--clinical", action="store_true",
                      help="intact / fracture / VP / BKP of T12-L2, vBMD 70, 500 N follower, at --element-size "
                           "(ignores --levels, --bmd, --load)")
    args = ap.parse_args(argv)
    load = loads.preset(args.load)
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"cpus {os.cpu_count()} | load average {os.getloadavg()[0]:.2f}")
    if not (args.validation or args.clinical):
        print(f"case: {args.levels}, vBMD {args.bmd:g} mg/cm^3, load {args.load} ({load.describe()}), "
              f"nucleus pre-pressure {args.prepressure} MPa")
    t = time.perf_counter()
    warm_up()
    print(f"warm-up (numba cache) {time.perf_counter() - t:.1f} s")
    if args.table:
        rows = table([float(h) for h in args.table.split(",")], args.solvers.split(","), args.levels, args.bmd,
                     args.load, args.posterior)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        return rows
    if args.loads:
        return several_loads(args.loads, args.levels, args.bmd, args.element_size, args.solver, args.posterior)
    if args.validation or args.clinical:
        report = (validation(args.element_size, args.solver, [float(x) for x in args.prepressure.split(",")])
                  if args.validation
                  else clinical(args.element_size, args.solver, fibres=args.fibres))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
        return report
    report = {"levels": args.levels, "bmd": args.bmd, "load": args.load, "runs": []}
    sizes = [float(s) for s in args.convergence.split(",") if s] or [args.element_size]
    prepressure = timing_prepressure(args.prepressure)
    for h in sizes:
        seg, res, tm = run(args.levels, args.bmd, h, load, args.solver, args.fibres, args.posterior,
                           args.articular_refinement, prepressure)
        vals = key_values(seg, res)
        report["runs"].append({"element_size": h, **tm, "metrics": vals})
        print(f"\nelement size {h:g} mm: {tm['cells']} cells, {tm['dofs']} DOFs ({tm['free_dofs']} free), "
              f"solver {tm['solver']} ({tm['iterations']} it, residual {tm['residual']:.1e}"
              + (f", {tm['active_set_iterations']} active-set steps)" if args.fibres or args.posterior else ")"))
        print(f"  mesh {tm['mesh_s']:.2f} s | model {tm['model_s']:.2f} s | solve {tm['solve_s']:.2f} s "
              f"(assembly {tm['assembly_s']:.2f}, solver set-up {tm['solver_setup_s']:.2f}, iterations {tm['solver_iterations_s']:.2f}) | metrics {tm['metrics_s']:.2f} s | "
              f"total {tm['total_s']:.2f} s (target <= 20 s at the default size)")
        print(f"  process CPU {tm['cpu_s']:.2f} s (mesh {tm['mesh_cpu_s']:.2f} s; all threads; on a loaded machine the "
              f"steadier measure)" + (f" | {tm['spring_columns']} spring columns" if tm.get('spring_columns') else ""))
        sys.stdout.flush()
    if len(sizes) > 1:
        fine = report["runs"][-1]["metrics"]
        print(f"\nconvergence: relative change against {sizes[-1]:g} mm")
        print(f"{'metric':58s}" + "".join(f"{h:>12g}" for h in sizes) + "   change(first->last)")
        for k in fine:
            vals = [r["metrics"].get(k, np.nan) for r in report["runs"]]
            ch = abs(vals[0] - fine[k]) / abs(fine[k]) if fine[k] else np.nan
            near_zero = abs(fine[k]) < NEAR_ZERO.get(k.rsplit("/", 1)[-1], 0.0)
            print(f"{k:58s}" + "".join(f"{v:12.5g}" for v in vals) + f"   {100 * ch:6.2f} %"
                  + ("   (near zero)" if near_zero else ""))
        report["relative_change"] = {k: (abs(report["runs"][-2]["metrics"].get(k, np.nan) - v) / abs(v) if v else None)
                                     for k, v in fine.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
