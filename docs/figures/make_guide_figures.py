"""Draw the figures of docs/guide.md with the current code: a study figure and a clip through cement.

1. ``guide_study.png``: the study figure of ``vertebrafe.study`` for a grade study (T12-L2, vBMD
   60 mg/cm^3, wedge fracture of L1 of Genant grade 1-3, untreated (NSM) / bipedicular vertebroplasty /
   kyphoplasty at 50 % restoration, 500 N + 7.5 N m flexion): 95th-percentile von Mises stress of the
   adjacent vertebrae (region ``body``: the whole vertebra, the same cells in every case) relative to NSM
   against the grade.
2. ``guide_clip_cement.png``: the grade-2 vertebroplasty of the study (its result folder) cut on a
   parasagittal plane through the cement (``clip="sagittal", through="cement"``), von Mises stress of the
   cancellous bone and of the cement-bone composite, each with its own colour range and scalar bar
   (``regions={...}``); the cancellous range ends at its 99th percentile, since the few cells beside the
   cement reach several times that and would leave the rest uniformly dark (higher values saturate).

Run:  python docs/figures/make_guide_figures.py [--element-size MM] [--out DIR]   (default 4 mm, minutes)
"""
import argparse
import os
import shutil

import numpy as np

from vertebrafe import study, viz

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.abspath(os.path.join(HERE, "..", "..", "cases"))


def definition(element_size):
    return {
        "study": {"name": "grade study", "base": os.path.join(CASES, "osteoporotic-wedge-nsm.toml")},
        "base": {"segment": {"element_size": float(element_size)}},
        "grid": {"fracture.grade": [1, 2, 3]},
        "variants": [
            {"name": "NSM", "set": {"treatment.kind": "none"}},
            {"name": "VP", "set": {"treatment.kind": "vertebroplasty", "treatment.approach": "bipedicular"}},
            {"name": "BKP", "set": {"treatment.kind": "kyphoplasty", "treatment.restoration": 0.5}},
        ],
        "summary": {"reference": "NSM",
                    "plots": [{"name": "adjacent_von_mises_p95", "metric": "von_mises_p95", "region": "body",
                               "relation": "adjacent", "x": "fracture.grade", "formats": "png"}]},
    }


def main(element_size=4.0, out="out/guide-figures", workers=1):
    spec = study.parse_study(definition(element_size))
    run = study.run_study(spec, out, workers=workers, progress=False)
    print(run.describe())
    shutil.copyfile(os.path.join(out, "plots", "adjacent_von_mises_p95.png"), os.path.join(HERE, "guide_study.png"))
    vp = next(c for c in spec.cases if c.variant == "VP" and c.params["fracture.grade"] == 2)
    result = os.path.join(out, "cases", vp.id)
    grid = viz.to_pyvista(result)
    cancellous = np.asarray(grid.cell_data["von_mises_MPa"])[np.asarray(grid.cell_data["region_name"]) == "cancellous"]
    regions = {"cancellous": (0.0, float(np.percentile(cancellous, 99))), "cement_bone": None}
    viz.screenshot(result, os.path.join(HERE, "guide_clip_cement.png"), field="von_mises", clip="sagittal",
                   through="cement", regions=regions, window_size=(860, 620))
    print("wrote", os.path.join(HERE, "guide_study.png"), os.path.join(HERE, "guide_clip_cement.png"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element-size", type=float, default=4.0, help="mm")
    parser.add_argument("--out", default="out/guide-figures")
    args = parser.parse_args()
    main(args.element_size, args.out)
