#!/usr/bin/env python
"""Sensitivity of a kyphoplasty-treated vertebra to the PMMA-rim interface (``kyphoplasty(...,
interface="layer")``).

Model: L1 alone (QCT vBMD 80 mg/cm^3, default MaterialSet), grade-2 wedge fracture
(``fracture(kind="wedge", grade=2)``), balloon kyphoplasty with two balloons and 4.8 mL at each
``--restorations`` value, bonded or with a compliant layer of ``--thickness`` mm at each of
``--moduli`` MPa (default 500: the default layer, 1 um/MPa, Miller et al. 2016 post-operative; 83:
6 um/MPa after in vivo service). Stiffness (N/mm) of L1 between rigid plates
(:func:`vertebrafe.post.vertebra_strength`, direct solver), over the intact L1's and over the bonded
one's, with the layer volume (mL). Usage::

    python benchmarks/kyphoplasty_interface.py --sizes 4,3,2
    python benchmarks/kyphoplasty_interface.py --sizes 4,3 --samples 8       # the layer resolved at 4, 3 mm
    python benchmarks/kyphoplasty_interface.py --sizes 8 --restorations 0.5     # a quick look

Units: mm, N/mm, MPa, mL; ``cpu`` is the process CPU time (s) of the treatment and the solve.
"""
from __future__ import annotations

import argparse
import time

import vertebrafe as vf
from vertebrafe.clinical import fracture, history, kyphoplasty
from vertebrafe.post.strength import vertebra_strength


def _floats(text):
    return [float(v) for v in text.split(",")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_floats, default=[4.0, 3.0, 2.0], help="element sizes (mm), comma-separated")
    ap.add_argument("--restorations", type=_floats, default=[0.5, 0.97])
    ap.add_argument("--thickness", type=float, default=0.5, help="layer thickness (mm)")
    ap.add_argument("--moduli", type=_floats, default=[500.0, 83.0], help="layer moduli (MPa)")
    ap.add_argument("--samples", type=int, default=4, help="sub-cell samples per direction (a layer thinner "
                    "than element size / samples is resolved only on average)")
    args = ap.parse_args(argv)

    def stiffness(seg):
        return vertebra_strength(seg, "L1", solver="direct").stiffness

    print(f"{'h mm':>5} {'restoration':>11} {'interface':>16} {'k N/mm':>9} {'/ intact':>8} {'/ bonded':>8} "
          f"{'layer mL':>8} {'cpu s':>6}")
    for h in args.sizes:
        intact = vf.segment("L1", bmd=80.0, element_size=h)
        k_intact = stiffness(intact)
        fractured = fracture(intact, "L1", kind="wedge", grade=2)
        for r in args.restorations:
            k_bonded = None
            for E in [None] + args.moduli:
                t0 = time.process_time()
                kw = {} if E is None else dict(interface="layer", layer_thickness=args.thickness, layer_modulus=E)
                seg = kyphoplasty(fractured, "L1", restoration=r, samples=args.samples, **kw)
                k = stiffness(seg)
                k_bonded = k if E is None else k_bonded
                name = "bonded" if E is None else f"{args.thickness:g} mm {E:g} MPa"
                print(f"{h:5g} {r:11g} {name:>16} {k:9.0f} {k / k_intact:8.3f} {k / k_bonded:8.3f} "
                      f"{history(seg)[-1].results['layer_volume_mL']:8.3f} {time.process_time() - t0:6.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
