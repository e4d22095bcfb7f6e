"""`vertebrafe converge`: the convergence table on synthetic series with known answers, a small real case
through the command line (its finest size equals a plain `vertebrafe run`, a rerun computes nothing), a study
with a reference variant (ratios within one element size, with a fake runner) and the input errors."""
import math
import os

import pandas as pd
import pytest

from vertebrafe import cli
from vertebrafe.errors import InputError
from vertebrafe.study import convergence as cv
from vertebrafe.study.converge import check_tolerance, convergence_study, parse_sizes, run_convergence

# ---------------------------------------------------------------------------------------------- pure table


def test_first_order_series_gives_order_one_and_the_limit():
    """v = 2 + 0.3 h at h = 4, 2, 1 (ratio 2) and at 3, 2, 1.5 (varying ratios): p = 1, the limit is 2."""
    for sizes in ([4.0, 2.0, 1.0], [3.0, 2.0, 1.5]):
        r = cv.series(sizes, [2.0 + 0.3 * h for h in sizes], tolerance=5.0)
        assert r["order"] == pytest.approx(1.0, abs=1e-9)
        assert r["richardson"] == pytest.approx(2.0, abs=1e-9)
        assert r["change_pct"] == pytest.approx(100 * (-0.3 * (sizes[1] - sizes[2])) / (2.0 + 0.3 * sizes[2]))
    second = cv.series([3.0, 2.0, 1.5], [1.0 + 0.3 * h * h for h in (3.0, 2.0, 1.5)], tolerance=5.0)
    assert second["order"] == pytest.approx(2.0, abs=1e-9) and second["richardson"] == pytest.approx(1.0)
    assert second["verdict"] == "not converged"                    # 31 % in the last step


def test_constant_near_zero_and_non_monotone_series():
    const = cv.series([3.0, 2.0, 1.5], [2.5, 2.5, 2.5], tolerance=1.0)
    assert const["verdict"] == "converged" and const["change_pct"] == 0.0 and math.isnan(const["order"])
    zero = cv.series([3.0, 2.0], [0.0, 0.0], tolerance=1.0)
    assert zero["verdict"] == "converged"
    oscillating = cv.series([3.0, 2.0, 1.5], [1.0, 1.2, 1.1], tolerance=5.0)
    assert math.isnan(oscillating["order"]) and math.isnan(oscillating["richardson"])
    growing = cv.series([3.0, 2.0, 1.5], [1.0, 1.1, 1.3], tolerance=5.0)   # changes grow: no positive order
    assert math.isnan(growing["order"])
    # 0.001 -> 0.002 MPa doubles, but beside 3 MPa of the same metric it is near zero, not a miss
    tiny = pd.DataFrame({"case": "c", "metric": "von_mises_p95", "unit": "MPa", "quantity": "value",
                         "region": ["cement"] * 2 + ["cortex"] * 2, "size": [3.0, 2.0] * 2,
                         "value": [0.001, 0.002, 3.0, 3.01]})
    t = cv.table(tiny, [3.0, 2.0], 5.0, ["case", "region", "metric", "unit", "quantity"])
    assert list(t["verdict"]) == ["near zero", "converged"] and list(t.columns[-4:]) == [
        "at_3mm", "at_2mm", "change_pct", "verdict"]
    assert cv.tally(t) == {"converged": 1, "not converged": 0, "near zero": 1, "incomplete": 0}
    # an unexcited metric (rounding) beside a large one of the same unit is near zero
    rot = pd.DataFrame({"case": "c", "unit": "deg", "quantity": "value", "metric": ["axial"] * 2 + ["flexion"] * 2,
                        "size": [3.0, 2.0] * 2, "value": [1e-11, -2e-12, 3.0, 3.05]})
    assert list(cv.table(rot, [3.0, 2.0], 5.0, ["case", "metric", "unit", "quantity"])["verdict"]) == [
        "near zero", "converged"]
    missing = cv.series([3.0, 2.0], [1.0, float("nan")], tolerance=5.0)
    assert missing["verdict"] == "incomplete"


# ---------------------------------------------------------------------------------------------- real case

TINY = """
[case]
name = "tiny"
[segment]
levels = "L1-L2"
element_size = 2.0
posterior = false
[bone]
bmd = 70.0
[load]
preset = "flexion_moment"
[solver]
rtol = 1e-6
[output]
vtu = false
"""


def test_a_case_through_the_cli_matches_a_plain_run_and_resumes(tmp_path, capsys):
    case = tmp_path / "tiny.toml"
    case.write_text(TINY)
    out = tmp_path / "conv"
    assert cli.main(["converge", str(case), "-o", str(out), "--sizes", "8,6", "-q", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "rows change by less than 5 % from 8 to 6 mm" in text
    conv = pd.read_csv(out / "convergence.csv")
    assert list(conv.columns) == ["case", "relation", "level", "region", "metric", "unit", "quantity", "at_8mm",
                                  "at_6mm", "change_pct", "verdict"]
    assert set(conv["quantity"]) == {"value"} and set(conv["case"]) == {"tiny"}
    assert (out / "convergence.md").read_text().startswith("# Mesh convergence: tiny")

    plain = tmp_path / "plain"
    assert cli.main(["run", str(case), "-o", str(plain), "-q", "--set", "segment.element_size=6"]) == 0
    metrics = pd.read_csv(plain / "metrics.csv")
    assert len(conv) == len(metrics)                               # one row per metric, level and region
    both = metrics.merge(conv, on=["level", "region", "metric"], validate="one_to_one")
    assert (both["value"].to_numpy() == both["at_6mm"].to_numpy()).all()   # the same numbers
    row = conv[(conv.level == "L1") & (conv.region == "body") & (conv.metric == "von_mises_p95")].iloc[0]
    assert row["change_pct"] == pytest.approx(100 * (row["at_6mm"] - row["at_8mm"]) / abs(row["at_6mm"]))

    before = (out / "convergence.csv").read_text()
    capsys.readouterr()
    assert cli.main(["converge", str(case), "-o", str(out), "--sizes", "8,6", "--workers", "1"]) == 0
    assert "2 cases, 0 run, 2 finished earlier" in capsys.readouterr().out
    assert (out / "convergence.csv").read_text() == before


# ---------------------------------------------------------------------------------------------- study + reference

BASE = """
[segment]
levels = "L1-L2"
element_size = 4.0
[bone]
bmd = 80.0
[fracture]
level = "L1"
grade = 2
[load]
compression = 800.0
"""

STUDY = """
[study]
name = "ref"
base = "base.toml"
[grid]
"bone.bmd" = [60.0, 100.0]
[[variants]]
name = "NSM"
set = {"treatment.kind" = "none"}
[[variants]]
name = "VP"
set = {"treatment.kind" = "vertebroplasty"}
grid = {"treatment.volume" = [2.0, 4.0]}
[summary]
reference = "NSM"
[[summary.plots]]
metric = "von_mises_p95"
x = "treatment.volume"
facet = "bone.bmd"
"""


def size_runner(case, workdir):
    """A metrics.csv whose value depends on the element size: von_mises_p95 = bmd / 10 * (1 + volume / 10) *
    (1 + h / 10); yield_fraction = volume / 100 * (1 + h / 10), 0 without cement."""
    h, vol = case.segment.element_size, case.treatment.volume or 0.0
    rows = [(case.name, level, "body", "von_mises_p95", case.bone.bmd / 10 * (1 + vol / 10) * (1 + h / 10), "MPa")
            for level in case.segment.levels]
    rows += [(case.name, level, "bone", "yield_fraction", vol / 100 * (1 + h / 10), "-") for level in case.segment.levels]
    pd.DataFrame(rows, columns=["case", "level", "region", "metric", "value", "unit"]).to_csv(
        os.path.join(workdir, "metrics.csv"), index=False)
    return {"dofs": 0}


def test_study_ratios_are_formed_within_one_element_size(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "ref.toml"
    path.write_text(STUDY)
    study = convergence_study(path, [4.0, 3.0, 2.0])
    assert len(study.cases) == 3 * (2 + 4) and study.summary.plots == ()
    run, written = run_convergence(study, tmp_path / "out", [4.0, 3.0, 2.0], 5.0, runner=size_runner, workers=1,
                                   progress=False)
    assert not run.failed
    conv = written["table"]
    assert list(conv.columns[:5]) == ["case", "variant", "bone.bmd", "treatment.kind", "treatment.volume"]
    ratio = conv[conv.quantity == "ratio"]
    assert len(ratio) == 2 * 2 * 2 and set(ratio["variant"]) == {"VP"}   # the reference has no ratio rows
    assert set(ratio["metric"]) == {"von_mises_p95"}                       # yield_fraction / 0 is left out
    assert conv.attrs["undefined_ratios"] == 2 * 2 * 2
    assert any("8 ratios are left out" in line for line in written["lines"])
    nsm_yield = conv[(conv.variant == "NSM") & (conv.metric == "yield_fraction")]
    assert set(nsm_yield["verdict"]) == {"near zero"}                      # 0 beside VP's 0.02-0.06
    for _, r in ratio.iterrows():
        expect = 1 + r["treatment.volume"] / 10                         # the sizes' factors cancel
        assert [r["at_4mm"], r["at_3mm"], r["at_2mm"]] == pytest.approx([expect] * 3)
        assert r["verdict"] == "converged" and r["change_pct"] == pytest.approx(0.0, abs=1e-12)
    value = conv[(conv.quantity == "value") & (conv.case == "VP-bmd60-volume4") & (conv.metric == "von_mises_p95")
                 ].iloc[0]
    assert [value["at_4mm"], value["at_2mm"]] == pytest.approx([6 * 1.4 * 1.4, 6 * 1.4 * 1.2])
    assert value["order"] == pytest.approx(1.0) and value["richardson"] == pytest.approx(6 * 1.4)
    assert value["verdict"] == "not converged"                       # (1.2 - 1.3) / 1.2: -8.3 %
    assert "verdict" in pd.read_csv(tmp_path / "out" / "convergence.csv").columns


# ---------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("sizes, parts", [
    ("3", ["--sizes = '3'", "at least 2", "[0.5, 10] mm"]),
    ("2,3", ["--sizes = '2,3'", "3 mm after 2 mm is not smaller", "coarse to fine"]),
    ("3,3", ["--sizes = '3,3'", "is not smaller"]),
    ("12,3", ["--sizes = '12,3'", "segment.element_size = 12 mm is out of range", "[0.5, 10] mm"]),
    ("3,0.2", ["segment.element_size = 0.2 mm is out of range", "[0.5, 10] mm"]),
    ("3,x", ["--sizes = '3,x'", "'x' is not a number"]),
])
def test_bad_sizes(sizes, parts):
    with pytest.raises(InputError) as e:
        parse_sizes(sizes)
    assert all(p in str(e.value) for p in parts), str(e.value)


@pytest.mark.parametrize("tol", ["0", "100", "-1", "abc", "nan"])
def test_bad_tolerance(tol):
    with pytest.raises(InputError, match=r"--tolerance = .*allowed a number in \(0, 100\) %"):
        check_tolerance(tol)


def test_cli_errors_name_the_field(tmp_path, capsys):
    o = str(tmp_path / "o")
    (tmp_path / "base.toml").write_text(BASE)
    swept = tmp_path / "swept.toml"
    swept.write_text(STUDY.replace('"bone.bmd" = [60.0, 100.0]', '"segment.element_size" = [4.0, 3.0]'))
    cases = [
        (["converge", str(tmp_path / "nope.toml"), "-o", o, "--sizes", "4,3"], "FILE = ", "file not found"),
        (["converge", str(tmp_path / "base.toml"), "-o", o, "--sizes", "3,4"], "--sizes = '3,4'", "coarse to fine"),
        (["converge", str(tmp_path / "base.toml"), "-o", o, "--sizes", "4,3", "--tolerance", "150"],
         "--tolerance = '150'", "(0, 100)"),
        (["converge", str(tmp_path / "base.toml"), "-o", o, "--sizes", "4,3", "--set", "segment.element_size=2"],
         "--set segment.element_size=2", "--sizes"),
        (["converge", str(swept), "-o", o, "--sizes", "4,3"], "grid.segment.element_size is swept", "--sizes"),
        (["converge", str(tmp_path / "base.toml"), "-o", o, "--sizes", "4,3", "--workers", "0"],
         "--workers = 0", ">= 1"),
    ]
    for argv, *parts in cases:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert all(p in err for p in parts), err
    assert not os.path.exists(o)


def test_a_foreign_folder_is_refused_and_kept(tmp_path, capsys):
    """-o DIR follows `study -o DIR`: a folder of other files is refused before anything runs and its files
    are left as they were (convergence.csv is written only into the convergence study's own folder)."""
    (tmp_path / "base.toml").write_text(BASE)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "convergence.csv").write_text("my notes\n")
    assert cli.main(["converge", str(tmp_path / "base.toml"), "-o", str(out), "--sizes", "8,6", "-q"]) == 1
    assert "-o/--output" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["convergence.csv"]
    assert (out / "convergence.csv").read_text() == "my notes\n"


def failing_runner(case, workdir):
    """size_runner, except that the 2 mm case of bmd 60 fails."""
    if case.segment.element_size == 2.0 and case.bone.bmd == 60.0:
        raise InputError("deliberate failure at 2 mm")
    return size_runner(case, workdir)


def test_a_failing_case_leaves_its_rows_incomplete_and_the_others_judged(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "ref.toml"
    path.write_text(STUDY)
    run, written = run_convergence(str(path), tmp_path / "out", "3,2", 5.0, runner=failing_runner, workers=1,
                                   progress=False)
    assert len(run.failed) == 3                                          # NSM and two VP cases at 2 mm, bmd 60
    conv = written["table"]
    assert set(conv.loc[conv["bone.bmd"] == 60.0, "verdict"]) == {"incomplete"}
    assert set(conv.loc[conv["bone.bmd"] == 100.0, "verdict"]) == {"converged", "not converged", "near zero"}
    assert any("lack a value at 3 or 2 mm" in line for line in written["lines"])


def test_a_ratio_of_near_zero_values_is_near_zero():
    """A ratio of two rounding-level values (an unexcited rotation: 1e-11 / 2e-12 deg) jumps by orders of
    magnitude between sizes; its operands are near zero beside the flexion, so the ratio is too."""
    nan = float("nan")
    long = pd.DataFrame({
        "case": "VP", "unit": ["deg"] * 4 + [""] * 4, "quantity": ["value"] * 4 + ["ratio"] * 4,
        "metric": ["axial", "axial", "flexion", "flexion"] * 2, "size": [3.0, 2.0] * 4,
        "value": [1e-11, -2e-12, 3.0, 3.05, 5.0, -0.4, 1.01, 1.02],
        "numerator": [nan] * 4 + [1e-11, -2e-12, 3.0, 3.05],
        "denominator": [nan] * 4 + [2e-12, 5e-12, 2.97, 2.99],
        "operand_unit": [nan] * 4 + ["deg"] * 4})
    t = cv.table(long, [3.0, 2.0], 5.0, ["case", "metric", "unit", "quantity"])
    assert list(t["verdict"]) == ["near zero", "converged", "near zero", "converged"]
