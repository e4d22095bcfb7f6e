"""Example 4: a parameter study from Python, and a plot of adjacent-level stress against cement volume.

For an osteoporotic T12-L2 segment with a grade-2 wedge fracture of L1 (the canonical case
``cases/osteoporotic-wedge-nsm.toml``: 500 N with a 7.5 N m flexion moment), the study compares the
untreated fracture (NSM) with vertebroplasty (bipedicular) and kyphoplasty (50 % restoration) at each
cement volume. It is the same machinery as ``vertebrafe study STUDY.toml -o DIR``: the study is given
as the dict a study file would hold, every case runs in its own directory (resumable: run the script
again and finished cases are skipped), and the study writes ``summary.csv`` (one row per case, level,
region and metric, with the parameters and the ratio to NSM) and its own plots in ``plots/``. The script
then reads the table back and draws the 95th-percentile von Mises stress of the adjacent vertebrae (region
``body``: every cell of the vertebra, the same population in every case),
relative to NSM, against the cement volume (``adjacent_stress_vs_volume.png``).

Run:  python docs/examples/04_study_and_plot.py [--element-size MM] [--out DIR] [--volumes ML ...]
(environment: VERTEBRAFE_EXAMPLE_ELEMENT_SIZE, VERTEBRAFE_EXAMPLE_OUT). Units: mm, N, MPa, mL.
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from vertebrafe import study  # noqa: E402

CASES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "cases"))
VOLUMES = (2.0, 4.0, 6.0)          # mL


def definition(element_size, volumes):
    """The study as the content of a study file (see docs/cases.md)."""
    swept = {"treatment.volume": [float(v) for v in volumes]}
    return {
        "study": {"name": "example-vp-vs-bkp", "base": os.path.join(CASES, "osteoporotic-wedge-nsm.toml")},
        "base": {"segment": {"element_size": float(element_size)}},
        "variants": [
            {"name": "NSM", "set": {"treatment.kind": "none"}},
            {"name": "VP", "set": {"treatment.kind": "vertebroplasty", "treatment.approach": "bipedicular"},
             "grid": swept},
            {"name": "BKP", "set": {"treatment.kind": "kyphoplasty", "treatment.restoration": 0.5,
                                    "treatment.balloons": 2}, "grid": swept},
        ],
        "summary": {"reference": "NSM",
                    "plots": [{"name": "adjacent_von_mises_p95", "metric": "von_mises_p95", "region": "body",
                               "relation": "adjacent", "x": "treatment.volume", "hue": "variant"}]},
    }


def main(element_size=2.0, out="example_output", volumes=VOLUMES, workers=2):
    os.makedirs(out, exist_ok=True)
    run = study.run_study(study.parse_study(definition(element_size, volumes)), out, workers=workers,
                          progress=False)
    print(run.describe())
    summary = pd.read_csv(os.path.join(out, "summary.csv"))
    print(f"summary.csv: {len(summary)} rows; study plots in {os.path.join(out, 'plots')}")

    sel = summary[(summary["metric"] == "von_mises_p95") & (summary["region"] == "body")
                  & (summary["variant"] != "NSM")
                  & summary["relation"].isin(["adjacent_superior", "adjacent_inferior"])]
    pivot = sel.pivot_table(index="treatment.volume", columns=["variant", "level"], values="ratio")
    print("\nadjacent-level 95th-percentile von Mises stress / NSM:")
    print(pivot.round(3))

    fig, ax = plt.subplots(figsize=(6, 4))
    for (variant, level), series in pivot.items():
        ax.plot(series.index, series.values, marker="o" if variant == "VP" else "s",
                linestyle="-" if level == "T12" else "--", label=f"{variant}, {level}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("cement volume [mL]")
    ax.set_ylabel("von Mises p95 of the whole vertebra / NSM [-]")
    ax.set_title("Adjacent vertebrae after treatment of L1 (500 N + 7.5 N m flexion)")
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
