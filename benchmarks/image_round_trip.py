"""Phantom round trip: parametric segment -> synthetic QCT + labels -> image_segment -> simulate.

Compares the image-based model with the parametric model it was drawn from (same element size, same
load): axial stiffness, nucleus pressures and the recovered vBMD per level. Usage:

    python benchmarks/image_round_trip.py [element_size_mm ...] [--spacing MM] [--bmd MG_CM3]
                                          [--geometry template|voxel] [--no-snap]
"""
import argparse
import time

import vertebrafe as vf


def run(h, spacing, bmd, levels="T12-L2", compression=1000.0, geometry="template", snap=True):
    t0 = time.perf_counter()
    ph = vf.phantom(levels, bmd=bmd, spacing=spacing, element_size=h)
    t1 = time.perf_counter()
    seg = vf.image_segment(ph.ct, ph.labels, calibration=ph.calibration, element_size=h, geometry=geometry,
                           snap=snap)
    t2 = time.perf_counter()
    load = vf.Load(compression=compression)
    ref, img = vf.simulate(vf.segment(levels, bmd=bmd, element_size=h, posterior=False), load), vf.simulate(seg, load)
    pick = lambda r, lv, rg, mt: float(r.metrics.query("level == @lv and region == @rg and metric == @mt").value.iloc[0])  # noqa: E731
    print(f"{geometry}{'' if snap or geometry == 'template' else ' (no snap)'}: "
          f"element size {h:g} mm, voxels {spacing:g} mm, vBMD {bmd:g} mg/cm^3; phantom {t1 - t0:.1f} s, "
          f"image_segment {t2 - t1:.1f} s, cells {seg.mesh.n_cells} (parametric {ref.segment.mesh.n_cells})")
    k0, k1 = pick(ref, "segment", "segment", "axial_stiffness"), pick(img, "segment", "segment", "axial_stiffness")
    print(f"  axial stiffness        {k0:9.2f} {k1:9.2f} N/mm   {100 * (k1 / k0 - 1):+6.2f} %")
    for d in seg.discs:
        p0, p1 = pick(ref, d, "nucleus", "pressure"), pick(img, d, "nucleus", "pressure")
        print(f"  {d:7s} nucleus p      {p0:9.4f} {p1:9.4f} MPa    {100 * (p1 / p0 - 1):+6.2f} %")
    for v, b in seg.materials.bmd.items():
        print(f"  {v:4s} vBMD             {bmd:9.2f} {b:9.2f} mg/cm^3 {100 * (b / bmd - 1):+6.2f} %")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=float, default=[3.0])
    ap.add_argument("--spacing", type=float, default=1.0)
    ap.add_argument("--bmd", type=float, default=70.0)
    ap.add_argument("--geometry", choices=("template", "voxel"), default="template")
    ap.add_argument("--no-snap", action="store_true")
    a = ap.parse_args()
    for h in a.sizes:
        run(h, a.spacing, a.bmd, geometry=a.geometry, snap=not a.no_snap)
