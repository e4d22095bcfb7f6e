#!/usr/bin/env python
"""Validation targets 1, 2 and 4 of the anatomy module: measured values against the published ones.

1. Homogeneous prism 40 x 30 x 25 mm, E = 100 MPa, nu = 0.2, platens free laterally, 500 N:
   stiffness E A / h = 4800 N/mm and uniform axial stress 0.417 MPa (tolerance 1 %).
2. Morgan et al. 2003 (vertebra): rho_app 0.133 / 0.200 g/cm^3 -> E = 204 / 384 MPa (tolerance 1 %).
4. Cortical shell share of the axial force at mid-height of an osteoporotic L1 (vBMD 70 mg/cm^3) loaded
   through its two discs: about 41 +/- 7 % (Fields et al. 2012), at several element sizes.

The models are those of ``tests/anatomy/test_validation.py`` (drivers in :mod:`vertebrafe.validation`). Usage::

    python benchmarks/validation_anatomy.py                      # shell share at 4, 3, 2 mm
    python benchmarks/validation_anatomy.py --sizes 4,3,2,1.5 --bmd 70 --force 1000

Units: mm, N, MPa; times in s.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import vertebrafe as vf
from vertebrafe.materials import cancellous_modulus
from vertebrafe.validation import disc_loaded_body


def prism(shape=(8, 6, 5)):
    """Target 1: (stiffness N/mm, mean and spread of the axial stress MPa) under 500 N."""
    L = (40.0, 30.0, 25.0)
    mesh = vf.box(L, shape)
    model = vf.Model(mesh, E=100.0, nu=0.2)
    model.fix(mesh.node_sets["zmin"], "z")
    p = mesh.points
    model.fix(np.flatnonzero(np.all(np.isclose(p, [0, 0, 0]), axis=1)), "xy")
    model.fix(np.flatnonzero(np.all(np.isclose(p, [L[0], 0, 0]), axis=1)), "y")
    model.add_pressure(mesh.face_sets["zmax"], 500.0 / (L[0] * L[1]))
    sol = model.solve()
    uz = -sol.displacement[mesh.node_sets["zmax"], 2]
    s = -sol.cell_stress[:, 2]
    return 500.0 / uz.mean(), s.mean(), s.max() - s.min()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="4,3,2", help="element sizes (mm) for target 4")
    ap.add_argument("--bmd", type=float, default=70.0)
    ap.add_argument("--force", type=float, default=1000.0, help="axial force through the discs (N)")
    ap.add_argument("--solver", default="auto")
    a = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    k, s, spread = prism()
    print(f"\nTarget 1 (prism, 8x6x5 cells, B-bar): stiffness {k:.2f} N/mm (expected 4800, "
          f"{100 * (k / 4800 - 1):+.4f} %), axial stress {s:.5f} MPa (expected 0.41667, "
          f"{100 * (s / (500 / 1200) - 1):+.4f} %), spread over cells {spread:.1e} MPa")
    E = cancellous_modulus(apparent_density=np.array([0.133, 0.200]))
    print(f"Target 2 (Morgan 2003 vertebra): rho_app 0.133 / 0.200 -> {E[0]:.1f} / {E[1]:.1f} MPa "
          f"(expected 204 / 384: {100 * (E[0] / 204 - 1):+.2f} / {100 * (E[1] / 384 - 1):+.2f} %)")
    print(f"\nTarget 4: L1 with discs T12-L1 and L1-L2, vBMD {a.bmd:g} mg/cm^3, {a.force:g} N through the "
          f"upper disc, solver={a.solver!r}")
    print("| element size (mm) | cells | DOFs | cell layers in L1 | solve (s) | CG iterations | shell force (N) "
          "| section force (N) | shell share |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h in sorted((float(x) for x in a.sizes.split(",")), reverse=True):
        r = disc_loaded_body("L1", bmd=a.bmd, element_size=h, force=a.force, solver=a.solver)
        sh = r["share"]
        print(f"| {h:g} | {r['cells']:,} | {r['dofs']:,} | {r['layers']} | {r['solve_time']:.1f} "
              f"| {r['iterations']} | {sh['shell_force']:.1f} | {sh['total_force']:.1f} "
              f"| {100 * sh['shell_share']:.1f} % |", flush=True)
    print("published: 41 +/- 7 % (Fields et al. 2012; shell 0.35-0.4 mm)")


if __name__ == "__main__":
    main()
