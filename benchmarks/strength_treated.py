#!/usr/bin/env python
"""Strength of a treated L1 alone between rigid plates: linear yield-volume estimate and pushover limit
load (elastic-perfectly-plastic cells), intact / fracture / VP / BKP (the table of docs/validation.md,
"Strength of cemented vertebrae").

Usage::

    python benchmarks/strength_treated.py --element-size 4 [--cases intact,nsm,vp4,bkp]

Model: L1 alone, vBMD 80, default MaterialSet; grade-2 wedge fracture; bipedicular VP (fill 15 / 30 / 50 %,
4 mL, 4.8 mL, and fill 50 % with ``vertical_extent=1``, which bridges both endplates); BKP (restoration
0.5 and 0.97, Belkoff et al. 2001's mean, default 4.8 mL: the balloons bear on both endplates); VP with
``placement="fracture"`` (cement in the fracture zone under the collapsed endplate: fill 16 / 30 / 50 %, 4.8 mL;
cases ending in ``f``). Prints stiffness (N/mm), linear yield-volume strength, pushover offset and limit load (N),
the limit load relative to the fracture and to intact, the stiffness relative to intact, the apparent
strain at the limit load, the yielded volume fraction there, whether any cement cell yielded, the number
of linear solves and the wall and CPU time. Direct solver.
"""
import argparse
import time

import vertebrafe as vf
from vertebrafe.post.strength import vertebra_pushover, vertebra_strength

CASES = ("intact", "nsm", "vp15", "vp4", "vp30", "vp50", "vpbridge", "bkp", "bkp97", "vp48", "vp16f", "vp30f", "vp50f",
         "vp48f")


def states(h):
    intact = vf.segment("L1", bmd=80.0, element_size=h, posterior=False)
    nsm = vf.fracture(intact, "L1", kind="wedge", grade=2)
    return {"intact": lambda: intact, "nsm": lambda: nsm,
            "vp15": lambda: vf.vertebroplasty(nsm, "L1", fill=0.15),
            "vp4": lambda: vf.vertebroplasty(nsm, "L1", volume=4.0),
            "vp30": lambda: vf.vertebroplasty(nsm, "L1", fill=0.30),
            "vp50": lambda: vf.vertebroplasty(nsm, "L1", fill=0.50),
            "vpbridge": lambda: vf.vertebroplasty(nsm, "L1", fill=0.50, vertical_extent=1.0),
            "bkp": lambda: vf.kyphoplasty(nsm, "L1", restoration=0.5),
            "bkp97": lambda: vf.kyphoplasty(nsm, "L1", restoration=0.97),
            "vp48": lambda: vf.vertebroplasty(nsm, "L1", volume=4.8),
            "vp16f": lambda: vf.vertebroplasty(nsm, "L1", fill=0.16, placement="fracture"),
            "vp30f": lambda: vf.vertebroplasty(nsm, "L1", fill=0.30, placement="fracture"),
            "vp50f": lambda: vf.vertebroplasty(nsm, "L1", fill=0.50, placement="fracture"),
            "vp48f": lambda: vf.vertebroplasty(nsm, "L1", volume=4.8, placement="fracture")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--element-size", type=float, default=4.0)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    make = states(args.element_size)
    names = args.cases.split(",")
    ref = {}
    print(f"L1 alone between plates, vBMD 80, {args.element_size:g} mm")
    print("case      k (N/mm)  k/intact  yield-vol (N)  offset (N)  limit (N)  x NSM  / intact  eps_lim  yielded  "
          "cement yielded  solves  wall (s)  cpu (s)")
    k_ref = {}
    for name in ["intact", "nsm"] + [n for n in names if n not in ("intact", "nsm")]:
        seg = make[name]()
        t, c = time.perf_counter(), time.process_time()
        p = vertebra_pushover(seg, "L1", solver="direct")
        lin = vertebra_strength(seg, "L1", solver="direct")
        ref[name] = p.strength
        k_ref.setdefault("intact", lin.stiffness)
        rel = (f"{p.strength / ref['nsm']:5.2f}  {p.strength / ref['intact']:8.2f}" if "nsm" in ref
               else "    -         -")
        print(f"{name:9s} {lin.stiffness:8.0f}  {lin.stiffness / k_ref['intact']:8.3f}  {lin.strength_yield:13.0f}  "
              f"{p.strength_offset:10.0f}  {p.strength:9.0f}  {rel}  {p.strain_at_strength:7.4f}  "
              f"{p.yielded_fraction:7.3f}  {str(p.cement_yielded):>14s}  {p.solves:6d}  "
              f"{time.perf_counter() - t:8.1f}  {time.process_time() - c:7.1f}", flush=True)


if __name__ == "__main__":
    main()
