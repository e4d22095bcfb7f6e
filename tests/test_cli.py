"""Command-line interface: version, help, error reporting."""
import subprocess
import sys

import pytest

import vertebrafe
from vertebrafe import cli
from vertebrafe.errors import InputError


def test_version_in_process(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"vertebrafe {vertebrafe.__version__}"


def test_help_in_process(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: vertebrafe" in out
    assert "finite-element" in out
    assert "examples:" in out


def test_no_arguments_prints_help(capsys):
    assert cli.main([]) == 0
    assert "usage: vertebrafe" in capsys.readouterr().out


def test_unknown_command_is_usage_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_info_lists_versions(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"vertebrafe {vertebrafe.__version__}" in out
    assert "numpy" in out
    assert "direct     CHOLMOD" in out or "direct     PARDISO" in out or "direct     none: SuperLU" in out


def _failing(args):
    raise InputError("field 'E' = -1.0 MPa is out of range: must be > 0\nsecond line")


@pytest.fixture
def failing_command(monkeypatch):
    monkeypatch.setitem(cli.SUBCOMMANDS, "fail", ("always fails", lambda p: None, _failing))


def test_failure_is_one_line_without_debug(failing_command, capsys):
    assert cli.main(["fail"]) == 1
    err = capsys.readouterr().err
    assert "vertebrafe: error: field 'E' = -1.0 MPa is out of range" in err
    assert "second line" not in err
    assert "Traceback" not in err


def test_failure_shows_traceback_with_debug(failing_command, capsys):
    assert cli.main(["--debug", "fail"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "InputError" in err


def test_python_dash_m_subprocess():
    version = subprocess.run(
        [sys.executable, "-m", "vertebrafe", "--version"],
        capture_output=True, text=True, timeout=120,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"vertebrafe {vertebrafe.__version__}"
    help_ = subprocess.run(
        [sys.executable, "-m", "vertebrafe", "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert help_.returncode == 0, help_.stderr
    assert "usage: vertebrafe" in help_.stdout


# ------------------------------------------------------------------------------------------------
# run, mesh, study, report: end to end on the real pipeline at a coarse element size

import json  # noqa: E402
import os  # noqa: E402

import pandas as pd  # noqa: E402

TINY = """
[case]
name = "tiny"
[segment]
levels = "L1-L2"
element_size = 6.0
[bone]
bmd = 70.0
[fracture]
level = "L1"
[treatment]
kind = "vertebroplasty"
volume = 3.0
[load]
preset = "flexion_moment"
[solver]
rtol = 1e-6
"""

TINY_STUDY = """
[study]
name = "tiny-study"
base = "tiny.toml"
[base]
output.vtu = false
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
relation = "adjacent"
x = "treatment.volume"
"""


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "study.toml").write_text(TINY_STUDY)
    return tmp_path


def test_run_end_to_end(tiny, capsys):
    out = tiny / "out"
    assert cli.main(["run", str(tiny / "tiny.toml"), "-o", str(out), "-q", "--set", "bone.bmd=90"]) == 0
    quiet = capsys.readouterr()
    assert "wrote" not in quiet.out and "dofs" not in quiet.out            # quiet: no stage or file messages,
    assert "factor_of_risk" in quiet.out                             # but the results are printed
    warned = [x for x in quiet.err.splitlines() if "warning" in x]    # the treated L1 at 6 mm: a resolution note
    assert len(warned) == 1 and warned[0].startswith("vertebrafe: warning: mesh resolution: L1's narrowest cement")
    assert sorted(os.listdir(out)) == [".vertebrafe.json", "case.json", "case.toml", "metrics.csv", "metrics.json",
                                       "result.vtu"]
    m = pd.read_csv(out / "metrics.csv")
    assert {"case", "level", "region", "metric", "value", "unit"} <= set(m.columns)
    assert set(m["level"]) >= {"L1", "L2", "L1-L2", "segment"}
    record = json.loads((out / "case.json").read_text())
    assert record["materials"]["bmd"] == 90.0
    assert [h["kind"] for h in record["history"]] == ["fracture", "vertebroplasty"]
    assert "bmd = 90.0" in (out / "case.toml").read_text()
    assert not [n for n in os.listdir(tiny) if n.startswith(".out")]      # no temporary left behind

    assert cli.main(["report", str(out), "--no-figures"]) == 0
    text = capsys.readouterr().out
    assert "von_mises_p95" in text and "L2" in text
    assert "figures skipped: --no-figures" in text
    assert (out / "report.png").stat().st_size > 2000
    assert "| L2 |" in (out / "report.md").read_text()


def _png_fill(path):
    import numpy as np
    from PIL import Image

    from vertebrafe import viz
    return viz.nonbackground_fraction(np.asarray(Image.open(path).convert("RGB")))


def test_report_figures_of_a_run(tmp_path, capsys, monkeypatch):
    """report renders the von Mises field and the regions on the mid-sagittal cut into DIR/figures/, lists
    them and links them from report.md; without off-screen rendering it says so in one line and still
    writes the tables."""
    from vertebrafe import viz

    out = tmp_path / "run"
    case = os.path.join(os.path.dirname(__file__), os.pardir, "cases", "osteoporotic-intact.toml")
    assert cli.main(["run", case, "-o", str(out), "-q", "--set", "segment.element_size=6",
                     "--set", "solver.rtol=1e-6"]) == 0
    monkeypatch.setattr(viz.offscreen, "offscreen_available", lambda: (False, "no EGL or OSMesa driver"))
    assert cli.main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    skipped = [line for line in text.splitlines() if line.startswith("figures skipped")]
    assert skipped == ["figures skipped: off-screen rendering is not available (no EGL or OSMesa driver)"]
    assert "von_mises_p95" in text and (out / "report.png").exists() and (out / "report.md").exists()
    assert not (out / "figures").exists()
    monkeypatch.undo()

    ok, why = viz.offscreen_available()
    if not ok:
        pytest.skip(f"off-screen rendering unavailable: {why}")
    assert cli.main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == ["regions_sagittal.png", "von_mises_sagittal.png"]
    for name in figures:
        assert f"figure: {out / 'figures' / name}" in text
        assert f"(figures/{name})" in (out / "report.md").read_text()
        assert _png_fill(out / "figures" / name) > 0.05


def test_mesh_writes_the_treated_mesh(tiny, capsys):
    import vertebrafe as vf
    path = tiny / "m" / "tiny.vtu"
    assert cli.main(["mesh", str(tiny / "tiny.toml"), "-o", str(path)]) == 0
    assert "cells" in capsys.readouterr().out
    mesh = vf.Mesh.load(path)
    assert "cement_fraction" in mesh.cell_data and mesh.n_cells > 100


def test_study_end_to_end_and_resume(tiny, capsys):
    out = tiny / "s"
    assert cli.main(["study", str(tiny / "study.toml"), "-o", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "3 cases, 3 run, 0 finished earlier, 0 failed" in text
    s = pd.read_csv(out / "summary.csv")
    assert s["case_id"].nunique() == 3 and "treatment.volume" in s.columns
    adj = s[(s["relation"] == "adjacent_inferior") & (s["metric"] == "von_mises_p95") & (s["region"] == "body")]
    assert len(adj) == 3 and adj["ratio"].notna().all()
    assert (adj[adj["variant"] == "NSM"]["ratio"] == 1.0).all()
    assert (out / "plots" / "von_mises_p95_body_adjacent_vs_volume.png").exists()
    assert not any((out / "cases" / cid / "result.vtu").exists() for cid in s["case_id"].unique())

    assert cli.main(["study", str(tiny / "study.toml"), "-o", str(out), "-q"]) == 0   # resume: nothing to do
    text = capsys.readouterr().out
    assert "_adjacent_vs_volume:" in text and "variant level" in text and "study tiny-study" not in text   # -q keeps tables
    assert cli.main(["study", str(tiny / "study.toml"), "-o", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count(" ok ") == 3
    assert cli.main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "von_mises_p95_body_adjacent_vs_volume" in text
    assert "figures skipped for NSM, VP-volume2: no result.vtu" in text   # output.vtu = false
    md = (out / "report.md").read_text()
    assert "treatment.volume = 2.0" in md and "(plots/von_mises_p95_body_adjacent_vs_volume.png)" in md


def test_implausible_input_warns_on_stderr_and_in_the_record(tiny, capsys):
    """vBMD typed in g/cm^3: the run goes on (exit 0), warns in one line and records the warning."""
    out = tiny / "gcm3"
    assert cli.main(["run", str(tiny / "tiny.toml"), "-o", str(out), "-q", "--set", "bone.bmd=0.08"]) == 0
    err = capsys.readouterr().err
    assert "vertebrafe: warning: bmd = 0.08 mg/cm^3" in err and "g/cm^3" in err
    record = json.loads((out / "case.json").read_text())
    assert any("bmd = 0.08" in w for w in record["warnings"])


def test_interrupted_study_says_how_to_resume(tiny, capsys, monkeypatch):
    import vertebrafe.study as study

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_study", interrupted)
    assert cli.main(["study", str(tiny / "study.toml"), "-o", str(tiny / "s")]) == 130
    err = capsys.readouterr().err
    assert "resume with the same command: vertebrafe study" in err and str(tiny / "s") in err


def test_report_figures_of_a_study(tiny, capsys):
    """A study with fields: the reference (NSM) alone and each treated variant's middle case against it."""
    from vertebrafe import viz

    ok, why = viz.offscreen_available()
    if not ok:
        pytest.skip(f"off-screen rendering unavailable: {why}")
    out = tiny / "s"
    assert cli.main(["study", str(tiny / "study.toml"), "-o", str(out), "-j", "1", "-q",
                     "--set", "output.vtu=true", "--set", "segment.element_size=8"]) == 0
    assert cli.main(["report", str(out), "-q"]) == 0
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == ["NSM_regions_sagittal.png", "NSM_von_mises_sagittal.png", "VP-volume2_regions_sagittal.png",
                       "VP-volume2_vs_NSM_von_mises_sagittal.png"]
    for name in figures:
        assert _png_fill(out / "figures" / name) > 0.03
    from PIL import Image
    assert Image.open(out / "figures" / figures[-1]).size[0] == 2 * Image.open(out / "figures" / figures[0]).size[0]
    md = (out / "report.md").read_text()
    assert all(f"(figures/{name})" in md for name in figures)


def test_study_with_a_failing_case_exits_1(tiny, capsys, monkeypatch):
    from vertebrafe.study import backends

    def broken(case, workdir):
        if case.treatment.volume == 4.0:
            raise RuntimeError("solver exploded")
        import pandas as pd
        pd.DataFrame({"case": [case.name], "level": ["L1"], "region": ["bone"], "metric": ["von_mises_p95"],
                      "value": [1.0], "unit": ["MPa"]}).to_csv(os.path.join(workdir, "metrics.csv"), index=False)

    monkeypatch.setattr(backends, "pipeline_runner", broken)
    out = tiny / "s"
    assert cli.main(["study", str(tiny / "study.toml"), "-o", str(out), "-j", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 cases failed" in err and "solver exploded" in err and "failures.csv" in err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
    assert cli.main(["report", str(out), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "2 finished cases, 2 rows" in printed and "1 cases not finished or failed" in printed
    assert "solver exploded" in printed and "nan" not in printed
    md = (out / "report.md").read_text()
    assert "2 finished cases, 2 rows in summary.csv" in md


@pytest.mark.parametrize("argv, message", [
    (["run", "{d}/nope.toml", "-o", "{d}/o"], "nope.toml: file not found"),
    (["run", "{d}/study.toml", "-o", "{d}/o"], "is a study file"),
    (["run", "{d}/tiny.toml", "-o", "{d}/o", "--set", "bone.bmd=0"], "bone.bmd = 0 is out of range"),
    (["run", "{d}/tiny.toml", "-o", "{d}/o", "--set", "bmd=60"], "--set 'bmd=60'"),
    (["run", "{d}/tiny.toml", "-o", "{d}/o", "--set", "fracture.kind=burst"], "fracture.kind = 'burst'"),
    (["study", "{d}/study.toml", "-o", "{d}/o", "--workers", "0"], "--workers = 0"),
    (["study", "{d}/tiny.toml", "-o", "{d}/o"], "is not a known study section"),
    (["report", "{d}"], "neither a study directory"),
])
def test_command_errors_are_one_line(tiny, capsys, argv, message):
    assert cli.main([a.format(d=tiny) for a in argv]) == 1
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("vertebrafe: error") and message in first, err
    assert "Traceback" not in err


def test_subcommands_registered_with_help(capsys):
    for name in ("run", "study", "converge", "mesh", "report", "view", "info"):
        assert name in cli.SUBCOMMANDS
    assert cli.main(["study", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--scheduler" in out and "--workers" in out and "--set" in out
