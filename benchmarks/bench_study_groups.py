"""Benchmark: a study of several load presets on one model, run with the cases grouped (the default: one
segment, stiffness set-up and plate strengths for all of them) against the same cases run one by one
(a runner without a model cache, the behaviour before grouping). Same process, ``workers=1``; prints
wall and CPU seconds of both, their ratio, the peak memory, and checks that both give the same metrics.

    python benchmarks/bench_study_groups.py                       # T12-L2, 3 mm, five presets
    python benchmarks/bench_study_groups.py --element-size 2 --presets 3
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import vertebrafe as vf                                      # noqa: E402
from vertebrafe import study as vs                           # noqa: E402
from vertebrafe.study.backends import pipeline_runner       # noqa: E402

PRESETS = ["relaxed_standing", "standing_flexed", "lifting", "flexion_moment", "lateral_bending_moment"]


def one_by_one(case, workdir):
    """The default pipeline without a model cache: every case builds and solves its model alone."""
    return pipeline_runner(case, workdir)


def _revision():
    try:
        return subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:                                         # pragma: no cover
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--element-size", type=float, default=3.0)
    ap.add_argument("--presets", type=int, default=5, help="number of load presets (1-5)")
    ap.add_argument("--solver", default="auto")
    args = ap.parse_args(argv)
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | cpus {os.cpu_count()} "
          f"| load average {os.getloadavg()[0]:.2f}")
    raw = {"study": {"name": "loads"},
           "base": {"segment": {"levels": args.levels, "element_size": args.element_size}, "bone": {"bmd": args.bmd},
                    "load": {"preset": PRESETS[0]}, "solver": {"solver": args.solver}, "output": {"vtu": False}},
           "grid": {"load.preset": PRESETS[:args.presets]}}
    study = vs.parse_study(raw)
    vs.run_study(vs.parse_study(dict(raw, grid={"load.preset": PRESETS[:1]}, base=dict(
        raw["base"], segment={"levels": "L1-L2", "element_size": 6.0}))), tempfile.mkdtemp(), workers=1,
        progress=False, summary=False)                      # numba kernels compiled or loaded, not timed
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, runner in (("grouped", None), ("one by one", one_by_one)):
            t0, c0 = time.perf_counter(), time.process_time()
            run = vs.run_study(study, os.path.join(tmp, name.replace(" ", "_")), workers=1, runner=runner,
                               progress=False, summary=False)
            times[name] = (time.perf_counter() - t0, time.process_time() - c0)
            assert len(run.ok) == len(study.cases), run.failed
            print(f"{name}: {len(run.ok)} cases in {times[name][0]:.1f} s (CPU {times[name][1]:.1f} s); peak "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB so far", flush=True)
        for sc in study.cases:
            a, b = (pd.read_csv(os.path.join(tmp, d, "cases", sc.id, "metrics.csv"))["value"].to_numpy(float)
                    for d in ("grouped", "one_by_one"))
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    (gw, gc), (sw, sc_) = times["grouped"], times["one by one"]
    print(f"{len(study.cases)} presets on {args.levels} at {args.element_size:g} mm: grouped / one by one = "
          f"{gw / sw:.2f} wall, {gc / sc_:.2f} CPU; same metrics (rtol 1e-6)")


if __name__ == "__main__":
    main()
