"""Study figures for papers: labels with units, subtitle with the load and fixed settings, one legend
outside the panels, integer ticks for integer keys, ranges for repeated settings, PNG/SVG/PDF."""
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from vertebrafe.errors import InputError  # noqa: E402
from vertebrafe.report import PlotSpec, _plot, _plots, study_figure, subtitle  # noqa: E402


def _case(cid, variant, grade, bmd, restoration=None):
    treat = {"kind": "kyphoplasty" if variant == "BKP" else "none", "level": "L1"}
    if restoration is not None:
        treat["restoration"] = restoration
    return {"id": cid, "name": cid, "variant": variant, "params": {"fracture.grade": grade, "bone.bmd": bmd},
            "case": {"segment": {"levels": ["T12", "L1", "L2"], "element_size": 3.0}, "bone": {"bmd": bmd},
                     "fracture": {"level": "L1", "grade": grade}, "treatment": treat,
                     "load": {"preset": "relaxed_standing"}}}


@pytest.fixture
def study():
    """Grades 1-3 x two vBMDs (a repeated setting for the plot over grade), NSM and BKP at 50 %."""
    cases, rows = [], []
    for variant in ("NSM", "BKP"):
        for grade in (1, 2, 3):
            for bmd in (60.0, 80.0):
                cid = f"{variant}-{grade}-{bmd:g}"
                cases.append(_case(cid, variant, grade, bmd, 0.5 if variant == "BKP" else None))
                for rel, lv in (("adjacent_superior", "T12"), ("adjacent_inferior", "L2")):
                    ratio = 1.0 if variant == "NSM" else 1.0 + 0.05 * grade + (bmd - 70) / 1000
                    rows.append(dict(case_id=cid, variant=variant, case=cid, **{"fracture.grade": grade,
                                "bone.bmd": bmd}, relation=rel, level=lv, region="body", metric="von_mises_p95",
                                value=ratio, unit="MPa", ratio=ratio))
    meta = {"name": "grade-study", "reference": "NSM", "cases": cases, "parameters": ["fracture.grade", "bone.bmd"],
            "grid_keys": ["fracture.grade", "bone.bmd"]}
    return pd.DataFrame(rows), meta


def test_figure_labels_legend_ticks_and_ranges(study):
    summary, meta = study
    spec = PlotSpec(metric="von_mises_p95", x="fracture.grade", name="g")
    fig, table = study_figure(summary, spec, meta)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Genant grade"                                  # label, no raw key
    assert ax.get_ylabel().startswith("95th-percentile von Mises stress / NSM")
    assert "adjacent vertebrae" in ax.get_ylabel()
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)               # no grade 1.5
    assert len(fig.legends) == 1 and all(a.get_legend() is None for a in fig.axes)   # one legend, outside
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "NSM (reference)" in names and any("range" in n for n in names)    # reference line in the legend
    title = " ".join(fig._suptitle.get_text().replace("\u00a0", " ").split())
    assert "load: relaxed standing (500 N compression (follower))" in title and "levels T12-L1-L2" in title
    assert "height restoration 0.5" in title and "treatment kyphoplasty" in title
    assert "vBMD" not in title                                                # two values: not a fixed setting
    # repeated setting (two vBMDs per grade): mean with a min-max error bar
    bars = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert bars and max(np.ptp(seg[:, 1]) for c in bars for seg in c.get_segments()) == pytest.approx(0.02)
    assert table.shape == (2, 3)
    matplotlib.pyplot.close(fig)


def test_facets_share_one_legend_and_files_in_three_formats(study, tmp_path):
    summary, meta = study
    os.makedirs(tmp_path / "plots")
    spec = PlotSpec(metric="von_mises_p95", x="fracture.grade", facet="bone.bmd", name="f")
    png, table = _plot(summary, spec, str(tmp_path), meta)
    assert sorted(os.listdir(tmp_path / "plots")) == ["f.csv", "f.pdf", "f.png", "f.svg"]
    assert png.endswith("f.png") and os.path.getsize(png) > 5000
    fig, _ = study_figure(summary, spec, meta)
    assert [a.get_title() for a in fig.axes] == ["vBMD 60\u00a0mg/cm³", "vBMD 80\u00a0mg/cm³"]
    assert len(fig.legends) == 1 and not any("range" in t.get_text() for t in fig.legends[0].get_texts())
    matplotlib.pyplot.close(fig)
    with pytest.raises(InputError, match="formats"):
        _plot(summary, PlotSpec(metric="von_mises_p95", x="fracture.grade", name="x", formats="svg,gif"),
              str(tmp_path), meta)


def test_plots_drawn_by_other_processes_equal_those_drawn_here(study, tmp_path):
    """A study's summary draws its plots but the first in its idle workers: the same files and tables as
    drawn in this process; an executor that cannot take them (shut down, broken) leaves them to this one."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    summary, meta = study
    specs = [dict(metric="von_mises_p95", x="fracture.grade", name="grade", formats="png"),
             dict(metric="von_mises_p95", x="bone.bmd", name="bmd", formats="png"),
             dict(metric="von_mises_p95", x="fracture.grade", facet="bone.bmd", name="facets", formats="png")]
    drawn = {}
    closed = ProcessPoolExecutor(1)
    closed.shutdown()
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as workers:
        for where, executor in (("here", None), ("workers", workers), ("closed", closed)):
            os.makedirs(tmp_path / where / "plots")
            drawn[where] = _plots(summary, specs, str(tmp_path / where), meta, executor)
    for where in ("workers", "closed"):
        for (png, table), (png_here, table_here) in zip(drawn[where], drawn["here"]):
            assert os.path.dirname(png) == str(tmp_path / where / "plots")
            assert open(png, "rb").read() == open(png_here, "rb").read()
            pd.testing.assert_frame_equal(table, table_here)


def test_subtitle_names_a_variants_own_setting(study):
    _, meta = study
    text = subtitle(meta["cases"], varying={"fracture.grade"}).replace("\u00a0", " ")
    assert "height restoration 0.5 (BKP)" in text and "treatment" not in text and "vBMD" not in text


def test_subtitle_names_the_load_in_words():
    c = _case("a", "NSM", 2, 70.0)
    c["case"]["load"] = {"compression": 800.0, "flexion": 7.5, "follower": True}
    assert subtitle([c]).replace("\u00a0", " ").startswith("load: 800 N compression, 7.5 N m flexion, follower")
