#!/usr/bin/env python
"""Mesh convergence of the vertebral body mesher, and meshing speed of a default segment.

1. Axial stiffness of one osteoporotic L1 body (QCT vBMD 70 mg/cm^3, default MaterialSet: Morgan 2003
   cancellous, cortex 4700 MPa from the vBMD, bony endplate 1 GPa) between rigid plates: the inferior endplate surface
   tied to a fixed rigid plate, the superior surface tied to a rigid plate moved 0.01 mm down (no
   rotation); stiffness = axial plate reaction / displacement (N/mm). One row per element size, with the
   change against the finest size solved. The mesher's default size must change the stiffness by less
   than 2 % against half of it. A size whose solve takes longer than ``--max-solve`` seconds stops the
   refinement (the finer sizes are reported as skipped).
2. Meshing time, cells and DOFs of a default T12-L1-L2 segment (target < 2 s).

Usage::

    python benchmarks/convergence_anatomy.py                       # 4 3 2.5 2 1.5 1 mm
    python benchmarks/convergence_anatomy.py --sizes 4,2,1 --bmd 70 --max-solve 60

Units: mm, N, MPa; times in s (wall clock; the first solve also loads the numba cache, so a tiny warm-up
solve runs before the table).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import vertebrafe as vf
from vertebrafe.anatomy import DEFAULT_ELEMENT_SIZE, segment
from vertebrafe.validation import axial_stiffness


def _revision():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:                                              # pragma: no cover
        return "?"


def convergence(sizes, bmd=70.0, max_solve=60.0, level="L1"):
    """Rows of the stiffness study (list of dicts); sizes coarse to fine."""
    axial_stiffness(level, bmd=bmd, element_size=6.0)            # warm-up: numba cache
    rows = []
    for i, h in enumerate(sizes):
        r = axial_stiffness(level, bmd=bmd, element_size=h)
        rows.append(r)
        print(f"  {h:g} mm: {r['cells']} cells, {r['dofs']} DOFs, solve {r['solve_time']:.1f} s, "
              f"K = {r['stiffness']:.1f} N/mm", flush=True)
        if r["solve_time"] > max_solve:
            for hh in sizes[i + 1:]:
                rows.append(dict(element_size=hh, skipped=f"previous solve took {r['solve_time']:.0f} s "
                                                         f"> {max_solve:g} s"))
            break
    done = [r for r in rows if "stiffness" in r]
    finest = done[-1]["stiffness"]
    for r in done:
        r["change_vs_finest"] = r["stiffness"] / finest - 1.0
    return rows


def segment_speed(levels=("T12", "L1", "L2"), repeats=5):
    """Best-of-``repeats`` meshing time (s) of a default segment and its counts."""
    segment(list(levels), bmd=70.0)                               # imports, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        seg = segment(list(levels), bmd=70.0, posterior=False)
        times.append(time.perf_counter() - t0)
    q = seg.mesh.quality().scaled_jacobian
    return dict(levels="-".join((levels[0], levels[-1])), element_size=seg.element_size, cells=seg.mesh.n_cells,
                nodes=seg.mesh.n_points, dofs=seg.n_dofs, mesh_time_best=min(times),
                mesh_time_median=sorted(times)[len(times) // 2], min_scaled_jacobian=float(q.min()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="4,3,2.5,2,1.5,1", help="element sizes (mm), comma separated")
    ap.add_argument("--bmd", type=float, default=70.0, help="QCT trabecular vBMD (mg/cm^3)")
    ap.add_argument("--max-solve", type=float, default=60.0, help="stop refining after a solve this long (s)")
    ap.add_argument("--no-segment", action="store_true", help="skip the segment meshing-speed part")
    a = ap.parse_args(argv)
    sizes = sorted((float(s) for s in a.sizes.split(",")), reverse=True)
    print(f"vertebrafe {getattr(vf, '__version__', '?')} revision {_revision()}, load average "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; default element size {DEFAULT_ELEMENT_SIZE:g} mm")
    print(f"\nAxial stiffness of L1 between rigid plates, vBMD {a.bmd:g} mg/cm^3, solver='auto':")
    rows = convergence(sizes, a.bmd, a.max_solve)
    print("\n| element size (mm) | cells | DOFs | min scaled Jacobian | meshing (s) | solve (s) | CG iterations "
          "| stiffness (N/mm) | change vs finest |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['element_size']:g} | skipped: {r['skipped']} | | | | | | | |")
            continue
        print(f"| {r['element_size']:g} | {r['cells']:,} | {r['dofs']:,} | {r['min_scaled_jacobian']:.2f} "
              f"| {r['mesh_time']:.3f} | {r['solve_time']:.1f} | {r['iterations']} | {r['stiffness']:.0f} "
              f"| {100 * r['change_vs_finest']:+.2f} % |")
    done = {r["element_size"]: r["stiffness"] for r in rows if "stiffness" in r}
    h = DEFAULT_ELEMENT_SIZE
    if h in done and h / 2 in done:
        c = done[h / 2] / done[h] - 1.0
        print(f"\ncriterion: default {h:g} mm vs {h / 2:g} mm: {100 * c:+.3f} % "
              f"({'met' if abs(c) < 0.02 else 'NOT met'}: |change| < 2 %)")
    if not a.no_segment:
        s = segment_speed()
        print(f"\nDefault {s['levels']} segment (element size {s['element_size']:g} mm): {s['cells']:,} cells, "
              f"{s['nodes']:,} nodes, {s['dofs']:,} DOFs, meshing {s['mesh_time_best']:.3f} s best of 5 "
              f"(median {s['mesh_time_median']:.3f} s), min scaled Jacobian {s['min_scaled_jacobian']:.2f}")
    return rows


if __name__ == "__main__":
    main()
