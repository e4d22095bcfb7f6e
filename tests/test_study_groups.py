"""Studies group the cases that differ only in their load: one model and stiffness set-up per group, and
every case's result and status as if it had run alone."""
import json

import numpy as np
import pandas as pd

from vertebrafe import study as vs
from vertebrafe.case import model_key, run_case
from vertebrafe.study.run import _groups

RAW = {"study": {"name": "loads"},
       "base": {"segment": {"levels": "L1-L2", "element_size": 6.0}, "bone": {"bmd": 80.0},
                "load": {"preset": "relaxed_standing"}, "output": {"vtu": False}},
       "grid": {"bone.bmd": [70.0, 110.0], "load.preset": ["relaxed_standing", "flexion_moment"]}}


def test_cases_of_one_model_form_one_task():
    s = vs.parse_study(RAW)
    groups = _groups(s.cases, None)
    assert sorted(len(g) for g in groups) == [2, 2]
    for g in groups:
        bmds = {item["case"]["bone"]["bmd"] for item in g}
        presets = {item["case"]["load"]["preset"] for item in g}
        assert len(bmds) == 1 and len(presets) == 2
    assert len({model_key(sc.case) for sc in s.cases}) == 2
    assert len(_groups(s.cases, "some.module:runner")) == 4        # another runner: one task per case


def test_grouped_results_equal_separate_runs(tmp_path):
    s = vs.parse_study(RAW)
    out = tmp_path / "s"
    run = vs.run_study(s, out, workers=1, progress=False, summary=False)
    assert sorted(run.ok) == sorted(sc.id for sc in s.cases) and not run.failed
    reused = []
    for sc in s.cases:
        status = vs.case_status(out, sc.id)
        assert status["status"] == "ok"
        reused.append(status["info"]["setup_reused"])
        grouped = pd.read_csv(out / "cases" / sc.id / "metrics.csv")
        stages = []
        alone = run_case(sc.case, log=stages.append, before_solve=lambda: stages.append("before solve")).metrics
        assert stages[-2:] == [f"{sc.case.name or sc.case.id}: solve", "before solve"]   # after meshing
        assert list(grouped["metric"]) == list(alone["metric"])
        np.testing.assert_allclose(grouped["value"].to_numpy(float), alone["value"].to_numpy(float),
                                   rtol=1e-6, atol=1e-10 * np.abs(alone["value"]).max())
    assert sorted(reused) == [False, False, True, True]       # one set-up per model
    # resume: nothing left to do; a pool of two workers gives the same files
    again = vs.run_study(s, out, workers=1, progress=False, summary=False)
    assert sorted(again.skipped) == sorted(sc.id for sc in s.cases) and not again.ok
    pool = vs.run_study(s, tmp_path / "p", workers=2, progress=False, summary=False)
    assert sorted(pool.ok) == sorted(sc.id for sc in s.cases) and pool.backend == "2 worker processes"
    for sc in s.cases:
        a = pd.read_csv(out / "cases" / sc.id / "metrics.csv")["value"].to_numpy(float)
        b = pd.read_csv(tmp_path / "p" / "cases" / sc.id / "metrics.csv")["value"].to_numpy(float)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10 * np.abs(a).max())   # round-off of threads
        assert json.loads((tmp_path / "p" / "cases" / sc.id / "status.json").read_text())["status"] == "ok"


def dying_runner(case, workdir):
    """A runner for the pool test: writes a file, and kills its worker process on the vBMD 110 case."""
    if case.bone.bmd == 110.0:
        import os
        os._exit(3)
    with open(f"{workdir}/answer.txt", "w") as f:
        f.write(str(case.bone.bmd))
    return {}


def test_a_group_keeps_its_finished_cases_when_its_worker_dies():
    from vertebrafe.study.backends import run_pool

    base = RAW["base"]
    group = [{"id": cid, "case": dict(base, bone={"bmd": bmd})} for cid, bmd in (("a", 70.0), ("b", 110.0))]
    outcomes = {}
    run_pool(1, [group], {"a": "a", "b": "b"}, f"{__name__}:dying_runner",
             lambda cid, outcome: outcomes.setdefault(cid, outcome))
    assert outcomes["a"]["status"] == "ok" and outcomes["a"]["files"] == {"answer.txt": b"70.0"}
    assert outcomes["b"]["status"] == "error" and "worker process died" in outcomes["b"]["error"]


def stamping_runner(case, workdir):
    """A runner for the pool test: writes the time at which it ran."""
    import time
    with open(f"{workdir}/t.txt", "w") as f:
        f.write(repr(time.time()))
    return {}


def test_pool_workers_run_cases_once_the_kernels_are_compiled():
    """A study submits its cases before it compiles the numba kernels (the default pipeline builds the
    segment meanwhile and waits before the solve); another runner waits before it starts."""
    import time

    from vertebrafe.study.backends import run_pool

    outcomes, compiled = {}, []

    def compile_kernels():
        time.sleep(1.0)
        compiled.append(time.time())
    run_pool(1, [[{"id": "a", "case": dict(RAW["base"])}]], {"a": "a"}, f"{__name__}:stamping_runner",
             lambda cid, outcome: outcomes.setdefault(cid, outcome), compile_kernels=compile_kernels)
    assert outcomes["a"]["status"] == "ok" and float(outcomes["a"]["files"]["t.txt"]) >= compiled[0]


def sleeping_runner(case, workdir):
    """A runner for the pool test: takes as many tenths of a second as the case's vBMD has tens."""
    import time
    time.sleep(case.bone.bmd / 100.0)
    return {}


def test_pool_calls_on_idle_once_when_a_worker_runs_out_of_cases():
    """``on_idle`` (the study's plot warm-up) runs once, after the short case and before the long one ends."""
    from vertebrafe.study.backends import run_pool

    outcomes, idle = {}, []
    groups = [[{"id": cid, "case": dict(RAW["base"], bone={"bmd": bmd})}] for cid, bmd in (("a", 10.0), ("b", 300.0))]
    run_pool(2, groups, {"a": "a", "b": "b"}, f"{__name__}:sleeping_runner",
             lambda cid, outcome: outcomes.setdefault(cid, outcome), on_idle=lambda pool: idle.append(set(outcomes)))
    assert outcomes["a"]["status"] == "ok" and outcomes["b"]["status"] == "ok"
    assert idle == [{"a"}]
