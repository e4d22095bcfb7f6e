"""Example 4: a small parameter study in Python and a plot of adjacent-level stress against cement volume.

For an osteoporotic T12-L2 segment with a grade-2 wedge fracture of L1, every combination of treatment
(VP bipedicular, BKP with 50 % restoration) and cement volume (2, 4, 6 mL) is solved under 800 N with a
7.5 N m flexion moment and compared with the untreated fracture (NSM). The tidy table (one row per case,
level, region and metric, with the study parameters as columns) is written to ``summary.csv`` and the
95th-percentile von Mises stress of the adjacent vertebrae, relative to NSM, is plotted against the
cement volume (``adjacent_stress_vs_volume.png``).

The same kind of study runs from a study file on a process pool or a Dask cluster with
``vertebrafe study STUDY.toml -o DIR`` (see the case-file reference, docs/cases.md); this script shows
the Python route with the library alone.

Run:  python docs/examples/04_study_and_plot.py [--element-size MM] [--out DIR] [--volumes ML ...]
(environment: VERTEBRAFE_EXAMPLE_ELEMENT_SIZE, VERTEBRAFE_EXAMPLE_OUT). Units: mm, N, MPa, mL.
"""
import argparse
import itertools
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import vertebrafe as vf  # noqa: E402
from vertebrafe.loads import Load  # noqa: E402
from vertebrafe.simulate import simulate  # noqa: E402

TREATMENTS = {
    "VP": lambda seg, volume: vf.vertebroplasty(seg, "L1", volume=volume, approach="bipedicular"),
    "BKP": lambda seg, volume: vf.kyphoplasty(seg, "L1", restoration=0.5, volume=volume, balloons=2),
}
VOLUMES = (2.0, 4.0, 6.0)          # mL


def main(element_size=2.0, out="example_output", volumes=VOLUMES):
    os.makedirs(out, exist_ok=True)
    seg = vf.segment("T12-L2", bmd=80.0, element_size=element_size)
    nsm = vf.fracture(seg, "L1", kind="wedge", grade=2)
    load = Load(compression=800.0, flexion=7.5, name="flexion_800N")
    reference = simulate(nsm, load, case="NSM")

    tables = []
    for treatment, volume in itertools.product(TREATMENTS, volumes):
        case = f"{treatment}_{volume:g}mL"
        result = simulate(TREATMENTS[treatment](nsm, volume), load, case=case)
        table = result.compare(reference)
        table["treatment"], table["cement_volume_mL"] = treatment, volume
        tables.append(table)
        print(f"{case:>10}: {result.solution.info['dofs']} dofs, solved in {result.info['solve_time']:.1f} s")
    summary = pd.concat(tables, ignore_index=True)
    path = os.path.join(out, "summary.csv")
    summary.to_csv(path, index=False)
    print(f"wrote {path} ({len(summary)} rows)")

    sel = summary[(summary["metric"] == "von_mises_p95") & (summary["region"] == "bone")
                  & summary["relation"].isin(["adjacent_superior", "adjacent_inferior"])]
    pivot = sel.pivot_table(index="cement_volume_mL", columns=["treatment", "level"], values="ratio")
    print("\nadjacent-level 95th-percentile von Mises stress / NSM:")
    print(pivot.round(3))

    fig, ax = plt.subplots(figsize=(6, 4))
    for (treatment, level), series in pivot.items():
        ax.plot(series.index, series.values, marker="o" if treatment == "VP" else "s",
                linestyle="-" if level == "T12" else "--", label=f"{treatment}, {level}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("cement volume [mL]")
    ax.set_ylabel("von Mises p95 of bone / NSM [-]")
    ax.set_title("Adjacent vertebrae after treatment of L1 (800 N + 7.5 N m flexion)")
    ax.legend()
    fig.tight_layout()
    png = os.path.join(out, "adjacent_stress_vs_volume.png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    print(f"wrote {png}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element-size", type=float,
                        default=float(os.environ.get("VERTEBRAFE_EXAMPLE_ELEMENT_SIZE", 2.0)), help="mm")
    parser.add_argument("--out", default=os.environ.get("VERTEBRAFE_EXAMPLE_OUT", "example_output"))
    parser.add_argument("--volumes", type=float, nargs="+", default=VOLUMES, help="cement volumes (mL)")
    args = parser.parse_args()
    main(args.element_size, args.out, tuple(args.volumes))
