"""Example 3: compare non-surgical management (NSM), vertebroplasty (VP) and balloon kyphoplasty (BKP).

An osteoporotic T12-L2 segment (vBMD 80 mg/cm^3) with a grade-2 wedge fracture of L1 is left untreated
(NSM), treated by bipedicular VP (4 mL of cement-bone composite) or by BKP (50 % height restoration,
4.8 mL of PMMA), and loaded by 800 N of compression with a 7.5 N m flexion moment. The script prints the
morphometry of L1, the 95th-percentile von Mises stress of each whole vertebra (region ``body``: the same
cells in every case) and of each tissue of the treated and adjacent vertebrae relative to NSM, the factor
of risk (load / strength of the vertebra alone between rigid plates, the published kind; fracture
threshold about 1; for the treated L1 the pushover strength, the limit load of elastic-perfectly-plastic
cells, because the linear first-yield estimate is not valid with cement) and the in-situ overload index
(a comparison measure, no threshold), writes each result (``Result.save``: VTU, metrics CSV/JSON, case record) and, with pyvista,
pictures: VP and BKP side by side with a shared colour range, their difference, and the cement.

Run:  python docs/examples/03_compare_treatments.py [--element-size MM] [--out DIR]
(environment: VERTEBRAFE_EXAMPLE_ELEMENT_SIZE, VERTEBRAFE_EXAMPLE_OUT;
VERTEBRAFE_EXAMPLE_PICTURES=0 skips the pictures). Units: mm, N, MPa, mL.
"""
import argparse
import os

import pandas as pd

import vertebrafe as vf
from vertebrafe.fem import Setup
from vertebrafe.loads import Load
from vertebrafe.simulate import simulate


def main(element_size=2.0, out="example_output"):
    os.makedirs(out, exist_ok=True)
    seg = vf.segment("T12-L2", bmd=80.0, element_size=element_size)
    nsm = vf.fracture(seg, "L1", kind="wedge", grade=2)
    states = {
        "NSM": nsm,
        "VP": vf.vertebroplasty(nsm, "L1", volume=4.0, approach="bipedicular"),
        "BKP": vf.kyphoplasty(nsm, "L1", restoration=0.5, volume=4.8, balloons=2),
    }
    for name, s in states.items():
        m = vf.measure(s, "L1")
        print(f"{name:>4}: L1 anterior height loss {m.anterior_height_loss:.1%}, wedge {m.wedge_angle_deg:.1f} deg, "
              f"cement {m.cement_volume_mL:.2f} mL")

    load = Load(compression=800.0, flexion=7.5, name="flexion_800N")
    # one Setup for the three cases: its plate-strength cache solves T12 and L2 (the same in every case) once
    setup = Setup()
    results = {name: simulate(s, load, case=name, setup=setup) for name, s in states.items()}
    for name, r in results.items():
        r.save(os.path.join(out, name))
        print(f"{name:>4}: solved {r.solution.info['dofs']} dofs in {r.info['solve_time']:.1f} s")

    table = pd.concat([results[k].compare(results["NSM"]) for k in ("VP", "BKP")])
    near = table["relation"].isin(["adjacent_superior", "treated", "adjacent_inferior"])
    keep = (table["metric"] == "von_mises_p95") & near & table["region"].isin(["body", "core"])
    print("\n95th-percentile von Mises stress of the whole vertebra (body) and its core, relative to NSM:")
    print(table[keep][["case", "level", "relation", "region", "value", "reference", "ratio", "unit"]]
          .to_string(index=False))
    keep = (table["metric"] == "von_mises_p95") & near & table["region"].isin(["cortex", "endplate", "cancellous"])
    print("\nper tissue, relative to NSM:")
    print(table[keep].pivot_table(index=["level", "region"], columns="case", values="ratio", sort=False).round(3))
    # the adjacent vertebrae are the same in every case: their plate strength does not change with the
    # treatment; the treated L1 needs the pushover strength (cement in series with damaged bone)
    risk = pd.concat([r.plate_strength(levels=["L1"], strength="pushover") for r in results.values()])
    print("\nL1 between rigid plates: stiffness, strengths (linear first yield / pushover limit load) and the factor")
    print("of risk (800 N / pushover strength; fracture threshold about 1, Bouxsein 2006; docs/validation.md):")
    print(risk.pivot_table(index="metric", columns="case", values="value", sort=False)[list(results)].round(3))
    adj = pd.concat([r.factor_of_risk for r in results.values()])
    adj = adj[adj["level"] != "L1"]
    print("\nfactor of risk of the adjacent vertebrae (linear yield-volume strength, the same in every case):")
    print(adj.pivot_table(index="level", columns="case", values="value", sort=False)[list(results)].round(3))
    over = pd.concat([r.overload_index for r in results.values()])
    print("\nin-situ overload index (disc-loaded yield-volume criterion; a comparison measure, no threshold):")
    print(over.pivot_table(index=["level", "metric"], columns="case", values="value")[list(results)].round(3))

    if os.environ.get("VERTEBRAFE_EXAMPLE_PICTURES", "1") == "0":
        return results
    try:
        from vertebrafe import viz
    except ImportError:                       # pragma: no cover (pictures need pyvista)
        return results
    size = (1400, 650)
    vp, bkp = results["VP"], results["BKP"]
    pictures = [
        viz.screenshot(vp, os.path.join(out, "vp_vs_bkp_von_mises.png"), other=bkp, field="von_mises",
                       clip="sagittal", labels=("VP", "BKP"), window_size=size),
        viz.screenshot(vp, os.path.join(out, "bkp_minus_vp_von_mises.png"), other=bkp, kind="difference",
                       field="von_mises", clip="sagittal", labels=("VP", "BKP"), window_size=(900, 800)),
        viz.screenshot(vp, os.path.join(out, "vp_vs_bkp_cement.png"), other=bkp, field="cement_fraction",
                       clip="coronal", labels=("VP", "BKP"), scale=0.0, window_size=size),
    ]
    for p in pictures:
        print(f"wrote {p}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element-size", type=float,
                        default=float(os.environ.get("VERTEBRAFE_EXAMPLE_ELEMENT_SIZE", 2.0)), help="mm")
    parser.add_argument("--out", default=os.environ.get("VERTEBRAFE_EXAMPLE_OUT", "example_output"))
    args = parser.parse_args()
    main(args.element_size, args.out)
