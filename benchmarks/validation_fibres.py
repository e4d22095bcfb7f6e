"""Intact L4-L5 with and without annulus fibres: nucleus pressure (Wilke et al. 1999 loads) and the
rotations under pure moments of 7.5 N m, with the active-set statistics and times. Both with the 4.2 MPa
ground substance (`annulus_ground`, pinned) of the documented table (docs/validation.md, "Annulus fibres
and the fluid nucleus"); the validated fibre disc is in benchmarks/validation_posterior.py.

    python benchmarks/validation_fibres.py --element-size 2 --prepressure 0          # the table (stress-free discs)
    python benchmarks/validation_fibres.py --element-size 2 --annulus annulus_matrix  # the default 0.1 MPa swelling
"""
import argparse
import time

import vertebrafe as vf
from vertebrafe.anatomy.segment import LYING_PREPRESSURE
from vertebrafe.loads import Load
from vertebrafe.materials import MaterialSet
from vertebrafe.simulate import simulate

CASES = [("relaxed_standing", "relaxed_standing", "pressure"),
         ("standing_flexed", "standing_flexed", "pressure"),
         ("flexion 7.5 N m", Load(flexion=7.5), "rotation_flexion"),
         ("extension 7.5 N m", Load(extension=7.5), "rotation_flexion"),
         ("lateral bending 7.5 N m", Load(lateral_bending=7.5), "rotation_lateral_bending"),
         ("axial rotation 7.5 N m", Load(axial_rotation=7.5), "rotation_axial")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--element-size", type=float, default=2.0)
    ap.add_argument("--no-plain", action="store_true", help="skip the model without fibres")
    ap.add_argument("--cases", default=",".join(c[0].split()[0] for c in CASES),
                    help="comma list of the cases to run, by their first word (default all)")
    ap.add_argument("--prepressure", type=float, default=LYING_PREPRESSURE,
                    help="nucleus swelling pressure at rest (MPa, segment(..., nucleus_prepressure=); default the "
                         "library's, 0.1 lying prone; 0: none)")
    ap.add_argument("--annulus", default="annulus_ground",
                    help="ground substance of the fibre disc (default annulus_ground, 4.2 MPa; annulus_matrix: the "
                         "validated 0.966 MPa)")
    args = ap.parse_args()
    wanted = args.cases.split(",")
    unknown = set(wanted) - {c[0].split()[0] for c in CASES}
    if unknown:
        ap.error(f"--cases: unknown {sorted(unknown)}; allowed: {[c[0].split()[0] for c in CASES]}")
    variants = [("fibres", True)] + ([] if args.no_plain else [("no fibres", None)])
    for label, fibres in variants:
        seg = vf.segment(["L4", "L5"], element_size=args.element_size, fibres=fibres, posterior=False,
                         materials=MaterialSet(bmd=120.0, annulus_matrix=args.annulus),
                         nucleus_prepressure=args.prepressure)
        print(f"# {label}: {seg}", flush=True)
        for name, load, metric in (c for c in CASES if c[0].split()[0] in wanted):
            t = time.perf_counter()
            r = simulate(seg, load)
            if metric == "pressure":
                value = r.value("pressure", level="L4-L5", region="nucleus")
                unit = "MPa"
            else:
                value = r.value(metric)
                unit = "deg"
            i = r.info
            rest = (f", rest pressure {r.value('rest_pressure', 'L4-L5', 'nucleus'):.4f} MPa, swelling stress "
                    f"{r.value('swelling_stress', 'L4-L5', 'nucleus'):.3f} MPa" if args.prepressure else "")
            print(f"{name:26s} {metric:26s} {value:8.3f} {unit:4s} active-set steps {i.get('active_set_iterations', '-')}, "
                  f"CG {i['iterations']}, {time.perf_counter() - t:.1f} s{rest}", flush=True)


if __name__ == "__main__":
    main()
