"""Each benchmark script runs its smallest option (a smoke run, so that the scripts and the numbers in
benchmarks/README.md cannot rot unnoticed). Run in this process with the script's own command line; a
new script needs an entry here. About 130 s of CPU time in all, the scripts' worker processes included
(103 s user + 27 s system at 61b57cc with one OpenBLAS thread; six minutes of wall time on the shared 2-core
machine at a load of 5-9); skip them locally with ``-m "not benchmark_smoke"``."""
import os
import pathlib
import runpy
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"

#: bench_core.py runs its solves in subprocesses; with ``--threads 1`` they run the serial twins that
#: amg_profile.py (the same box, run before it in this process) has cached, instead of compiling the parallel
#: builds of the assembly and AMG kernels (amg_profile + bench_core, pytest -n 1, empty numba cache: 128 s of
#: CPU without, 57 s with). The suite still compiles most of those parallel builds once, in
#: fem/test_amg_contrast.py's all-threads case (68 s more CPU there when bench_core has not cached them), so
#: this moves that cost out of this file rather than saving it.
SMOKE = {
    "bench_core.py": ["--sizes", "1k", "--no-skfem", "--repeats", "1", "--threads", "1"],
    "amg_profile.py": ["--size", "1k"],
    "bench_voxel_assembly.py": ["--n", "4", "--repeats", "1", "--out", "{tmp}/K"],
    "bolus_placement.py": ["--states", "wedge", "--bmds", "100", "--sizes", "4", "--boluses", "bipedicular:4",
                           "--offsets", "0", "--spacing", "1", "--json", "{tmp}/placement.json"],
    "bench_simulate.py": ["--levels", "L1-L2", "--element-size", "6"],
    "amg_contrasts.py": ["--levels", "L1-L2", "--element-size", "6", "--variants", "base;fluid"],
    "amg_variants.py": ["--levels", "L1-L2", "--element-size", "6", "--variants", "baseline,schwarz:annulus+nucleus",
                        "--split"],
    "amg_subdomains.py": ["--levels", "L1-L2", "--element-size", "6", "--variants", "posterior"],
    "capsule_opening.py": ["--levels", "L1-L2", "--sizes", "6"],
    "bench_study_groups.py": ["--levels", "L1-L2", "--element-size", "6", "--presets", "1"],
    "convergence_anatomy.py": ["--sizes", "6", "--no-segment"],
    "convergence_cement.py": ["--sizes", "8", "--workers", "1", "--states", "intact,VP15", "--kinds",
                              "plate,in_situ,pressure"],
    "convergence_metrics.py": ["--sizes", "8", "--states", "NSM,VP"],
    "kyphoplasty_interface.py": ["--sizes", "8", "--restorations", "0", "--moduli", "500"],
    "prepressure_cost.py": ["--levels", "L4-L5", "--sizes", "8,6", "--presets", "relaxed_standing+standing_flexed",
                            "--prepressure", "0.1"],
    "remeasure_treated.py": ["--element-size", "8"],
    "strength_treated.py": ["--element-size", "8", "--cases", "intact,nsm"],
    "validation_anatomy.py": ["--sizes", "6"],
    "validation_fibres.py": ["--element-size", "8", "--no-plain", "--cases", "standing_flexed,flexion"],
    "validation_rom.py": ["--element-size", "8", "--modes", "axial_rotation", "--solver", "amg"],
    "validation_posterior.py": ["convergence", "--sizes", "8"],
    "image_round_trip.py": ["8", "--spacing", "4"],
    "inclusion_convergence.py": ["--n", "4,8", "--json", "{tmp}/inclusion.json"],
    "quadratic_bolus.py": ["--sizes", "6", "--elements", "hex8,tet10,hex8-split", "--solver", "direct", "--json",
                           "{tmp}/quadratic.json"],
    "solver_choice.py": ["box:1k", "--factor"],
    "verification_plots.py": ["--sizes", "2,4", "--beam-cells", "20", "--out", "{tmp}"],
}
#: Further modes of a script whose code paths the run above does not reach.
OTHER_MODES = [
    ("solver_choice.py", ["seg:L4-L5:6", "--solve", "direct,amg"]),
    ("image_round_trip.py", ["8", "--spacing", "4", "--convergence", "--json", "{tmp}/c.json"]),
    ("convergence_metrics.py", ["--sizes", "8", "--states", "BKP", "--edge-distances", "2"]),
    ("convergence_metrics.py", ["--sizes", "8", "--states", "VP", "--vp-bridge", "6", "--inner-distances", "2"]),
    ("convergence_metrics.py", ["--sizes", "8", "--states", "VP", "--vp-approach", "unipedicular", "--vp-volume",
                                "1.25", "--vp-extent", "1", "--vp-offset-z", "-1"]),
    ("convergence_metrics.py", ["--sizes", "8", "--states", "VP", "--vp-approach", "unipedicular", "--vp-volume",
                                "1.25", "--vp-extent", "1", "--vp-offset-z", "-1", "--vp-surface", "mixed",
                                "--inner-distances", "0,2"]),
    ("convergence_cement.py", ["--sizes", "8", "--workers", "1", "--states", "VP15", "--kinds", "plate", "--vp-bridge",
                               "6"]),
    ("validation_rom.py", ["--convergence", "8", "--solver", "direct", "--modes", "flexion"]),
    ("inclusion_convergence.py", ["--n", "4", "--reps", "snapped-tet10,staircase-tet10", "--formulations", "bbar"]),
    ("inclusion_convergence.py", ["--n", "4", "--reps", "pillowed,pillowed-snapped-inside,pillowed-tet10",
                                  "--formulations", "bbar"]),
    ("validation_rom.py", ["--convergence", "8", "--solver", "amg", "--modes", "extension", "--standing", "false"]),
    ("quadratic_bolus.py", ["--sizes", "3", "--elements", "hex8-pillowed", "--approach", "unipedicular",
                            "--volume", "1.25", "--extent", "1", "--offset-z", "-1", "--solver", "direct"]),
    ("quadratic_bolus.py", ["--sizes", "3", "--elements", "hex8-pillowed", "--solver", "direct"]),   # refused
]
RUNS = sorted(SMOKE.items()) + OTHER_MODES


def test_every_benchmark_has_a_smoke_run():
    assert {p.name for p in BENCH.glob("*.py")} == set(SMOKE)


@pytest.mark.benchmark_smoke
@pytest.mark.parametrize("script, args", RUNS, ids=[" ".join([script] + args) for script, args in RUNS])
def test_benchmark_smallest_option_runs(script, args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(sys, "argv", [str(BENCH / script)] + [a.format(tmp=tmp_path) for a in args])
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


def test_far_fraction_of_convergence_metrics():
    """convergence_metrics.far_fraction (the contact-edge diagnosis of docs/validation.md): the share of a
    cell's 27 sample points at least d from the tree's points. Closed forms on a cube [0, 2]^3, whose samples
    lie at 1/3, 1 and 5/3 along each axis."""
    import numpy as np
    from scipy.spatial import cKDTree

    from vertebrafe.mesh.box import box

    far = runpy.run_path(str(BENCH / "convergence_metrics.py"))["far_fraction"]
    mesh = box((2.0, 2.0, 2.0), (1, 1, 1))
    centre = cKDTree([[1.0, 1.0, 1.0]])
    assert far(mesh, [0], centre, 0.5)[0] == pytest.approx(26 / 27)          # only the centre sample is near
    assert far(mesh, [0], centre, 0.7)[0] == pytest.approx(20 / 27)          # and the 6 face samples (2/3)
    assert far(mesh, [0], centre, 0.0)[0] == 1.0
    assert far(mesh, [0], cKDTree([[50.0, 0, 0]]), 10.0)[0] == 1.0
    # a plane of points at x = 0: the samples at x = 1/3 (9 of 27) are nearer than 1/2
    plane = cKDTree(np.stack(np.meshgrid([0.0], np.linspace(-5, 7, 241), np.linspace(-5, 7, 241), indexing="ij"),
                             axis=-1).reshape(-1, 3))
    assert far(mesh, [0], plane, 0.5)[0] == pytest.approx(18 / 27)


def test_signed_distance_of_bolus_placement():
    """bolus_placement.signed_distance (the clearances of docs/validation.md "Where the default bolus sits"):
    exact distance to an ellipsoid, negative inside, the smaller over several. Closed forms: a sphere, an
    ellipsoid along and off its axes (inside, at the centre: the smallest semi-axis; at 1 mm along the longest:
    sqrt(7/8) to (9/8, 0, sqrt(55/64)), the Lagrange point of t = -1)."""
    import numpy as np

    sd = runpy.run_path(str(BENCH / "bolus_placement.py"))["signed_distance"]
    eye = np.eye(3)
    sphere = (np.zeros((1, 3)), eye[None], np.full((1, 3), 2.0))
    x = np.array([[3.0, 0, 0], [0, 0, 0.5], [1.0, 1.0, 1.0], [0, -7.0, 0]])
    np.testing.assert_allclose(sd(x, *sphere), np.linalg.norm(x, axis=1) - 2.0, atol=1e-7)
    c = np.array([[10.0, 0, 0]])
    turn = np.array([[[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]])              # axes (3, 2, 1) turned 90 deg about z
    ell = (c, turn, np.array([[3.0, 2.0, 1.0]]))
    x = c + np.array([[0, 0, 3.0], [0, 5.0, 0], [4.0, 0, 0], [0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_allclose(sd(x, *ell), [2.0, 2.0, 2.0, -1.0, -np.sqrt(7 / 8)], atol=1e-7)
    both = tuple(np.concatenate([a, b]) for a, b in zip(sphere, ell))
    np.testing.assert_allclose(sd(np.array([[7.0, 0, 0], [0, 0, 0]]), *both), [1.0, -2.0], atol=1e-7)


def test_continuum_average_of_convergence_metrics():
    """convergence_metrics.neighbourhood_mean (the continuum-scale stress of docs/validation.md): the
    weighted mean over the samples of the same group within the radius. Closed forms on a unit grid."""
    import numpy as np

    mean = runpy.run_path(str(BENCH / "convergence_metrics.py"))["neighbourhood_mean"]
    g = np.stack(np.meshgrid(*[np.arange(7.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    one, zero = np.ones(len(g)), np.zeros(len(g), dtype=int)
    lin = np.column_stack([2.0 + g @ [1.0, -0.5, 0.25], np.full(len(g), 3.0)])
    out = mean(g, lin, one, zero, 1.5)
    interior = np.all((g >= 2) & (g <= 4), axis=1)       # the whole sphere (19 samples) inside the grid
    # a linear field's mean over a neighbourhood symmetric about the centre is the centre value
    np.testing.assert_allclose(out[interior], lin[interior], rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], 3.0, rtol=1e-12)
    corner = np.flatnonzero(np.all(g == 0, axis=1))[0]   # itself and 3 + 3 neighbours at 1 and sqrt(2)
    assert out[corner, 0] == pytest.approx(2.0 + (1.0 - 0.5 + 0.25) * (3 + 3 * 2) / 7 / 3)
    np.testing.assert_allclose(mean(g, lin, one, zero, 0.5), lin, rtol=1e-12)    # radius below the spacing
    # groups do not mix; weights weigh
    half = (g[:, 0] >= 3).astype(int)
    np.testing.assert_allclose(mean(g, np.where(half, 10.0, 1.0)[:, None], one, half, 2.5)[:, 0],
                               np.where(half, 10.0, 1.0), rtol=1e-12)
    two = mean(np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.array([[1.0], [5.0]]), np.array([1.0, 3.0]),
               np.zeros(2, dtype=int), 1.0)
    np.testing.assert_allclose(two[:, 0], 4.0, rtol=1e-12)


@pytest.mark.benchmark_smoke
def test_simulate_convergence_reports_the_posterior_metrics_of_every_level(capsys):
    """bench_simulate --posterior --convergence (the T12-L2 posterior table of docs/validation.md): every disc
    level's rotation, both facet forces, the seven ligament forces and the posterior share are key metrics.
    Under 500 N + 7.5 N m extension both levels extend, both joints of a level carry the same force (the
    segment is symmetric about its midsagittal plane) and the interspinous ligament is slack (near zero)."""
    main = runpy.run_path(str(BENCH / "bench_simulate.py"))["main"]
    report = main(["--levels", "T12-L2", "--posterior", "--load", "extension_moment", "--convergence", "8,6"])
    out = capsys.readouterr().out
    for run in report["runs"]:
        m = run["metrics"]
        for disc in ("T12-L1", "L1-L2"):
            keys = [f"{disc}/disc/rotation_{r}" for r in ("flexion", "lateral_bending", "axial")]
            keys += [f"{disc}/facet_{side}/facet_force" for side in ("left", "right")]
            keys += [f"{disc}/{lig}/ligament_force" for lig in ("ALL", "PLL", "LF", "ISL", "SSL", "ITL", "CL")]
            keys += [f"{disc}/posterior/load_share"]
            assert set(keys) <= set(m), sorted(set(keys) - set(m))
            assert m[f"{disc}/disc/rotation_flexion"] < 0.0                         # extension
            assert m[f"{disc}/facet_left/facet_force"] > 1.0
            assert m[f"{disc}/facet_left/facet_force"] == pytest.approx(m[f"{disc}/facet_right/facet_force"],
                                                                       rel=1e-3)
            assert m[f"{disc}/ISL/ligament_force"] < 1.0
    assert set(report["relative_change"]) == set(report["runs"][-1]["metrics"])
    isl = [line for line in out.splitlines() if line.startswith("L1-L2/ISL/ligament_force")]
    assert len(isl) == 1 and isl[0].endswith("(near zero)")


def test_in_situ_stiffness_of_convergence_cement_is_measured_from_the_rest_state(monkeypatch):
    """convergence_cement's in-situ stiffness is the load's, from the rest state: the body-disc-body segment is
    linear, so with the default nucleus pre-pressure it equals the stress-free segment's (it was 1-2 % lower
    while it took the total displacement, the rest state's height change included)."""
    import vertebrafe as vf

    cc = runpy.run_path(str(BENCH / "convergence_cement.py"))
    k = cc["job"](8.0, 80.0, "NSM", "in_situ", solver="direct")["stiffness"]
    build = vf.segment
    monkeypatch.setattr(vf, "segment", lambda *a, **kw: build(*a, nucleus_prepressure=0.0, **kw))
    cc["_fractured"].cache_clear()
    assert cc["job"](8.0, 80.0, "NSM", "in_situ", solver="direct")["stiffness"] == pytest.approx(k, rel=1e-6)


def test_simulate_timing_runs_take_the_prepressure(monkeypatch):
    """bench_simulate's timing and convergence runs build the segment with ``--prepressure`` (the option reached
    only --validation before, so "--prepressure 0" timed the default rest state)."""
    import vertebrafe as vf

    bench = runpy.run_path(str(BENCH / "bench_simulate.py"))
    assert bench["timing_prepressure"]("0.1") is None
    assert bench["timing_prepressure"]("0") == 0.0
    with pytest.raises(SystemExit):
        bench["timing_prepressure"]("0,0.1")
    seen = []

    def segment(*args, **kwargs):
        seen.append(kwargs["nucleus_prepressure"])
        raise RuntimeError("stop")

    monkeypatch.setattr(vf, "segment", segment)
    for value in (0.0, None):
        with pytest.raises(RuntimeError, match="stop"):
            bench["run"]("L4-L5", 100.0, 8.0, None, "direct", prepressure=value)
    assert seen == [0.0, None]                     # None: the library's default pressure
