"""Each benchmark script runs its smallest option (a smoke run, so that the scripts and the numbers in
benchmarks/README.md cannot rot unnoticed). Run in this process with the script's own command line; a
new script needs an entry here. About 35 s of CPU time in all (two minutes of wall time on the shared
2-core machine at a load of 13); skip them locally with ``-m "not benchmark_smoke"``."""
import os
import pathlib
import runpy
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"

SMOKE = {
    "bench_core.py": ["--sizes", "1k", "--no-skfem", "--repeats", "1"],
    "amg_profile.py": ["--size", "1k"],
    "bench_voxel_assembly.py": ["--n", "4", "--repeats", "1", "--out", "{tmp}/K"],
    "bench_simulate.py": ["--levels", "L1-L2", "--element-size", "6"],
    "amg_variants.py": ["--levels", "L1-L2", "--element-size", "6", "--variants", "baseline,schwarz:annulus+nucleus"],
    "bench_study_groups.py": ["--levels", "L1-L2", "--element-size", "6", "--presets", "2"],
    "convergence_anatomy.py": ["--sizes", "6", "--no-segment"],
    "convergence_cement.py": ["--sizes", "8", "--workers", "1", "--states", "intact,VP15", "--kinds",
                              "plate,in_situ,pressure"],
    "convergence_metrics.py": ["--sizes", "8", "--states", "NSM,VP"],
    "kyphoplasty_interface.py": ["--sizes", "8", "--restorations", "0", "--moduli", "500"],
    "remeasure_treated.py": ["--element-size", "8"],
    "strength_treated.py": ["--element-size", "8", "--cases", "intact,nsm"],
    "validation_anatomy.py": ["--sizes", "6"],
    "validation_fibres.py": ["--element-size", "8", "--no-plain", "--cases", "standing_flexed,flexion"],
    "validation_rom.py": ["--element-size", "8", "--modes", "axial_rotation"],
    "validation_posterior.py": ["convergence", "--sizes", "8"],
    "image_round_trip.py": ["8", "--spacing", "4"],
    "solver_choice.py": ["box:1k", "--factor"],
    "verification_plots.py": ["--sizes", "2,4", "--beam-cells", "20", "--out", "{tmp}"],
}


def test_every_benchmark_has_a_smoke_run():
    assert {p.name for p in BENCH.glob("*.py")} == set(SMOKE)


@pytest.mark.benchmark_smoke
@pytest.mark.parametrize("script", sorted(SMOKE))
def test_benchmark_smallest_option_runs(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(sys, "argv", [str(BENCH / script)] + [a.format(tmp=tmp_path) for a in SMOKE[script]])
    monkeypatch.syspath_prepend(str(BENCH))
    environ = dict(os.environ)                      # scripts may set thread variables for their workers
    try:
        runpy.run_path(str(BENCH / script), run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None), f"{script} exited with {exc.code}"
    finally:
        os.environ.clear()
        os.environ.update(environ)
    assert capsys.readouterr().out.strip(), f"{script} printed nothing"
