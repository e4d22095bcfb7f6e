"""Studies: expansion and ids, resume, failure isolation, an interrupted study, the process pool with one
thread per worker, and the Dask path on a real LocalCluster. The machinery runs a fake runner (no FE) so
that these tests take seconds; tests/test_cli.py runs the real pipeline end to end."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from vertebrafe import study as vs
from vertebrafe.errors import InputError

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = {"segment": {"levels": "T12-L2", "element_size": 4.0}, "bone": {"bmd": 80.0},
        "fracture": {"level": "L1", "grade": 2}, "load": {"compression": 800.0, "flexion": 7.5}}


def study_raw(bmds=(60.0, 100.0), volumes=(2.0, 4.0), plots=True):
    raw = {
        "study": {"name": "fake"},
        "base": BASE,
        "grid": {"bone.bmd": list(bmds)},
        "variants": [
            {"name": "NSM", "set": {"treatment.kind": "none"}},
            {"name": "VP", "set": {"treatment": {"kind": "vertebroplasty"}}, "grid": {"treatment.volume": list(volumes)}},
        ],
        "summary": {"reference": "NSM"},
    }
    if plots:
        raw["summary"]["plots"] = [{"metric": "von_mises_p95", "x": "treatment.volume", "facet": "bone.bmd"}]
    return raw


# ---------------------------------------------------------------------------------------------- fake runner

def fake_runner(case, workdir):
    """Writes a metrics.csv like Result.save: value = bmd / 10 * (1 + volume / 10) per level; fails when
    bmd == 66.6; sleeps VF_FAKE_SLEEP seconds; appends the case name to VF_FAKE_LOG."""
    log = os.environ.get("VF_FAKE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(case.name + "\n")
    time.sleep(float(os.environ.get("VF_FAKE_SLEEP", "0")))
    if case.bone.bmd == 66.6:
        raise InputError("bone.bmd = 66.6 is unlucky (deliberate failure)")
    vol = case.treatment.volume or 0.0
    rows = []
    for level in case.segment.levels:
        rows.append((case.name, level, "body", "von_mises_p95", case.bone.bmd / 10 * (1 + vol / 10), "MPa"))
    rows.append((case.name, "segment", "segment", "axial_stiffness", 1000.0 + vol, "N/mm"))
    pd.DataFrame(rows, columns=["case", "level", "region", "metric", "value", "unit"]).to_csv(
        os.path.join(workdir, "metrics.csv"), index=False)
    return {"dofs": 0}


def thread_runner(case, workdir):
    """Records the numba and BLAS thread counts seen inside a worker."""
    import numba
    from threadpoolctl import threadpool_info
    fake_runner(case, workdir)
    with open(os.path.join(workdir, "threads.json"), "w") as f:
        json.dump({"numba": numba.get_num_threads(), "blas": [i["num_threads"] for i in threadpool_info()],
                   "env": os.environ.get("NUMBA_NUM_THREADS")}, f)


def calls(path):
    return open(path).read().split() if os.path.exists(path) else []


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VF_FAKE_LOG", str(log))
    monkeypatch.setenv("VF_FAKE_SLEEP", "0")
    return log


# ---------------------------------------------------------------------------------------------- expansion

def test_expansion_grid_variants_and_ids():
    s = vs.parse_study(study_raw())
    assert len(s.cases) == 2 + 2 * 2
    names = [c.name for c in s.cases]
    assert names[:2] == ["NSM-bmd60", "NSM-bmd100"] and "VP-bmd100-volume4" in names
    assert len({c.id for c in s.cases}) == len(s.cases)
    again = vs.parse_study(study_raw())
    assert [c.id for c in again.cases] == [c.id for c in s.cases]          # stable
    vp = [c for c in s.cases if c.variant == "VP"][0]
    assert vp.case.treatment.kind == "vertebroplasty" and vp.params["treatment.kind"] == "vertebroplasty"
    assert s.parameters == ["bone.bmd", "treatment.kind", "treatment.volume"]


def test_nested_grid_tables_equal_dotted_keys():
    dotted = vs.parse_study(study_raw())
    raw = study_raw()
    raw["grid"] = {"bone": {"bmd": raw["grid"].pop("bone.bmd")}, **raw["grid"]}   # [grid.bone] bmd = [...]
    nested = vs.parse_study(raw)
    assert [c.id for c in nested.cases] == [c.id for c in dotted.cases]
    assert nested.parameters == dotted.parameters


def test_muscle_forces_are_grid_keys():
    """A muscle force per vertebra is swept like any case key and labelled with its unit in figures."""
    from vertebrafe import report
    raw = {"study": {"name": "muscles"}, "base": BASE,
           "grid": {"load.muscles.erector_spinae.L1": [0.0, 300.0]}}
    s = vs.parse_study(raw)
    assert [c.case.load.muscles["erector_spinae"]["L1"] for c in s.cases] == [0.0, 300.0]
    assert [c.name for c in s.cases] == ["erector_spinae_L1_0", "erector_spinae_L1_300"]
    assert report._label("load.muscles.erector_spinae.L1") == "erector spinae force on L1 [N]"


def test_cement_surface_is_a_grid_key_of_both_treatments():
    """treatment.surface is swept for a kyphoplasty as for a vertebroplasty; each value is its own model."""
    from vertebrafe import report
    from vertebrafe.case import model_key
    raw = {"study": {"name": "surface"}, "base": BASE, "grid": {"treatment.surface": ["mixed", "fitted"]},
           "variants": [{"name": "VP", "set": {"treatment.kind": "vertebroplasty"}},
                        {"name": "BKP", "set": {"treatment.kind": "kyphoplasty"}}]}
    s = vs.parse_study(raw)
    assert [c.name for c in s.cases] == ["VP-surfacemixed", "VP-surfacefitted", "BKP-surfacemixed",
                                         "BKP-surfacefitted"]
    assert [(c.case.treatment.kind, c.case.treatment.surface) for c in s.cases][2:] == [
        ("kyphoplasty", "mixed"), ("kyphoplasty", "fitted")]
    assert len({model_key(c.case) for c in s.cases}) == 4
    assert report._label("treatment.surface") == "cement surface"


def test_duplicate_physics_is_run_once():
    raw = study_raw()
    raw["variants"].append({"name": "NSM2", "set": {"treatment.kind": "none"}})
    s = vs.parse_study(raw)
    assert len(s.cases) == 6


@pytest.mark.parametrize("change, fragments", [
    (lambda r: r["grid"].update({"bone.bmd": [60.0, 0.0]}), ["variant 'NSM'", "bone.bmd=0", "bone.bmd", "out of range"]),
    (lambda r: r["grid"].update({"bmd": [60.0]}), ["grid.bmd", "section.key"]),
    (lambda r: r["grid"].update({"bone.bmd": 60.0}), ["grid.bone.bmd", "array"]),
    (lambda r: r["variants"][1].update({"volume": 3}), ["variants[1].volume", "set = {"]),
    (lambda r: r["variants"][1].update({"name": "NSM"}), ["variants[1].name", "twice"]),
    (lambda r: r["summary"].update({"reference": "XX"}), ["summary.reference", "'XX'", "NSM"]),
    (lambda r: r["summary"]["plots"][0].update({"y": "log"}), ["summary.plots[0].y", "ratio"]),
    (lambda r: r.update({"segment": {}}), ["[segment]", "vertebrafe run"]),
    (lambda r: r["variants"][1]["grid"].update({"bone.bmd": [1.0]}), ["variants[1].grid.bone.bmd", "[grid]"]),
    (lambda r: r["variants"][1]["set"].update({"treatment": {"kind": "vertebroplasty", "fill": 2.0}}),
     ["variant 'VP'", "treatment.fill", "(0, 1]"]),
])
def test_bad_study_files(change, fragments):
    raw = study_raw()
    change(raw)
    with pytest.raises(InputError) as info:
        vs.parse_study(raw, source="s.toml")
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))


def test_study_file_with_base_file(tmp_path):
    (tmp_path / "base.toml").write_text(textwrap.dedent("""
        [segment]
        levels = "L1-L2"
        [bone]
        bmd = 80.0
        [load]
        preset = "relaxed_standing"
    """))
    (tmp_path / "s.toml").write_text(textwrap.dedent("""
        [study]
        base = "base.toml"
        [base]
        segment.element_size = 5.0
        [grid]
        "bone.bmd" = [50.0, 70.0]
    """))
    s = vs.load_study(tmp_path / "s.toml", overrides={"solver.rtol": 1e-6})
    assert s.name == "s" and len(s.cases) == 2
    assert all(c.case.segment.element_size == 5.0 and c.case.solver.rtol == 1e-6 for c in s.cases)


def test_adjacent_risk_study_is_valid():
    s = vs.load_study(os.path.join(os.path.dirname(HERE), "cases", "adjacent-risk.toml"))
    assert len(s.cases) == 21
    assert {c.variant for c in s.cases} == {"NSM", "VP", "BKP"}
    assert s.summary.reference == "NSM" and len(s.summary.plots) >= 1


# ---------------------------------------------------------------------------------------------- running

def test_serial_run_summary_and_plots(tmp_path, fake_env):
    out = tmp_path / "out"
    run = vs.run_study(vs.parse_study(study_raw()), out, workers=1, runner=fake_runner, progress=False)
    assert len(run.ok) == 6 and not run.failed and not run.skipped
    for c in run.study.cases:
        d = out / "cases" / c.id
        assert sorted(os.listdir(d)) == ["case.toml", "metrics.csv", "status.json"]
        assert json.loads((d / "status.json").read_text())["status"] == "ok"
    s = pd.read_csv(out / "summary.csv")
    for col in ("case_id", "variant", "case", "bone.bmd", "treatment.volume", "level", "relation", "region",
                "metric", "value", "unit", "reference", "ratio"):
        assert col in s.columns, col
    row = s[(s["case"] == "VP-bmd60-volume4") & (s["level"] == "T12")].iloc[0]
    assert row["relation"] == "adjacent_superior"
    assert row["ratio"] == pytest.approx(1.4) and row["reference"] == pytest.approx(6.0)
    nsm = s[s["variant"] == "NSM"]
    assert (nsm["ratio"] == 1.0).all()
    png = out / "plots" / "von_mises_p95_body_adjacent_vs_volume.png"
    assert png.exists() and png.stat().st_size > 5000
    table = pd.read_csv(out / "plots" / "von_mises_p95_body_adjacent_vs_volume.csv")
    assert len(table) == 2 * 2                       # (bmd, VP, level) rows: 2 bmd x 2 adjacent levels
    assert not (out / "failures.csv").read_text().strip().split("\n")[1:]


def test_a_sequence_parameter_is_one_summary_column(tmp_path, fake_env):
    """A variant that sets a three-number key (``treatment.offset``, mm) summarises: the column holds the
    numbers as text, one cell per row, and the ratios to the reference are computed."""
    raw = study_raw(bmds=(60.0,), volumes=(2.0,), plots=False)
    raw["variants"].append({"name": "VPback", "set": {"treatment.kind": "vertebroplasty", "treatment.volume": 2.0,
                                                      "treatment.offset": [0.0, -4.0, 0.0]}})
    out = tmp_path / "out"
    run = vs.run_study(vs.parse_study(raw), out, workers=1, runner=fake_runner, progress=False)
    assert len(run.ok) == 3 and not run.failed
    s = pd.read_csv(out / "summary.csv")
    back = s[s["variant"] == "VPback"]
    assert set(back["treatment.offset"]) == {"[0, -4, 0]"}
    assert back[back["level"] == "T12"]["ratio"].iloc[0] == pytest.approx(1.2)


def test_failure_isolation_and_retry(tmp_path, fake_env):
    out = tmp_path / "out"
    s = vs.parse_study(study_raw(bmds=(60.0, 66.6)))
    run = vs.run_study(s, out, workers=1, runner=fake_runner, progress=False)
    assert len(run.failed) == 3 and len(run.ok) == 3       # NSM + 2 VP at 66.6 fail; the others finish
    bad = [c for c in s.cases if c.case.bone.bmd == 66.6]
    st = vs.case_status(out, bad[0].id)
    assert st["status"] == "error" and "unlucky" in st["error"] and "Traceback" in st["traceback"]
    fails = pd.read_csv(out / "failures.csv")
    assert set(fails["id"]) == {c.id for c in bad} and (fails["status"] == "error").all()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["case_id"]) == {c.id for c in s.cases if c.case.bone.bmd == 60.0}

    n = len(calls(fake_env))
    again = vs.run_study(s, out, workers=1, runner=fake_runner, progress=False, retry_failed=False)
    assert len(calls(fake_env)) == n and len(again.skipped) == 6 and len(again.failed) == 3
    again = vs.run_study(s, out, workers=1, runner=fake_runner, progress=False)
    assert sorted(calls(fake_env)[n:]) == sorted(c.name for c in bad)      # only the failed ones rerun


def test_resume_skips_finished_and_redoes_unfinished(tmp_path, fake_env):
    out = tmp_path / "out"
    s = vs.parse_study(study_raw())
    vs.run_study(s, out, workers=1, runner=fake_runner, progress=False)
    assert len(calls(fake_env)) == 6
    again = vs.run_study(s, out, workers=1, runner=fake_runner, progress=False)
    assert len(calls(fake_env)) == 6 and len(again.skipped) == 6 and not again.ok
    # an unfinished case: its directory has no status (as if a copy was interrupted) / a leftover temp dir
    victim = s.cases[3]
    os.remove(out / "cases" / victim.id / "status.json")
    (out / "cases" / f".tmp-{victim.id}-xyz").mkdir()
    again = vs.run_study(s, out, workers=1, runner=fake_runner, progress=False)
    assert calls(fake_env)[6:] == [victim.name] and again.ok == [victim.id]
    assert not [n for n in os.listdir(out / "cases") if n.startswith(".")]
    # a larger study in the same directory reuses the finished cases
    bigger = vs.parse_study(study_raw(volumes=(2.0, 4.0, 6.0)))
    run = vs.run_study(bigger, out, workers=1, runner=fake_runner, progress=False)
    assert len(run.skipped) == 6 and len(run.ok) == 2


def test_process_pool_one_thread_per_worker(tmp_path, fake_env):
    out = tmp_path / "out"
    s = vs.parse_study(study_raw(bmds=(60.0,)))
    run = vs.run_study(s, out, workers=2, runner=thread_runner, progress=False)
    assert len(run.ok) == 3 and run.backend == "2 worker processes"
    pids = set()
    for c in s.cases:
        d = out / "cases" / c.id
        t = json.loads((d / "threads.json").read_text())
        assert t["numba"] == 1 and all(n == 1 for n in t["blas"]) and t["env"] == "1"
        pids.add(json.loads((d / "status.json").read_text())["pid"])
    assert os.getpid() not in pids


KILL_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import test_study
from vertebrafe import study as vs
if __name__ == "__main__":          # spawned workers import this file again
    s = vs.parse_study(test_study.study_raw(bmds=(50.0, 60.0, 70.0, 80.0), volumes=(1.0, 2.0)), source="kill")
    vs.run_study(s, {out!r}, workers=2, runner=test_study.fake_runner, progress=False)
"""


def test_killed_study_loses_no_finished_case(tmp_path, fake_env, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("VF_FAKE_SLEEP", "0.5")
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(here=HERE, out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    s = vs.parse_study(study_raw(bmds=(50.0, 60.0, 70.0, 80.0), volumes=(1.0, 2.0)), source="kill")
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            done = [c for c in s.cases if vs.case_status(out, c.id)]
            if len(done) >= 3 or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)      # the study and its workers, mid-study
        proc.wait(timeout=30)
    log = proc.stdout.read().decode()
    finished = [c for c in s.cases if vs.case_status(out, c.id)]
    assert 3 <= len(finished) < len(s.cases), log
    for c in finished:                           # every finished case is complete
        d = out / "cases" / c.id
        assert vs.case_status(out, c.id)["status"] == "ok"
        assert len(pd.read_csv(d / "metrics.csv")) == 4
    entries = [n for n in os.listdir(out / "cases") if not n.startswith(".")]
    assert sorted(entries) == sorted(c.id for c in finished)      # nothing half-written under a case id
    monkeypatch.setenv("VF_FAKE_SLEEP", "0")
    run = vs.run_study(s, out, workers=1, runner=fake_runner, progress=False)
    assert sorted(run.skipped) == sorted(c.id for c in finished)
    assert len(run.ok) + len(run.skipped) == len(s.cases) and not run.failed


def test_dask_local_cluster_on_loopback(tmp_path, fake_env):
    distributed = pytest.importorskip("dask.distributed")
    out = tmp_path / "out"
    s = vs.parse_study(study_raw(bmds=(60.0, 66.6)))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        run = vs.run_study(s, out, scheduler=address, runner=fake_runner, progress=False)
    assert run.backend == f"dask {address}"
    assert len(run.ok) == 3 and len(run.failed) == 3              # failures isolated on the cluster too
    assert "unlucky" in vs.case_status(out, [c for c in s.cases if c.case.bone.bmd == 66.6][0].id)["error"]
    assert pd.read_csv(out / "summary.csv")["case_id"].nunique() == 3


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    pytest.importorskip("dask.distributed")
    s = vs.parse_study(study_raw(bmds=(60.0,)))
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
        vs.run_study(s, tmp_path / "o", scheduler="tcp://127.0.0.1:9", runner=fake_runner, progress=False,
                     connect_timeout=2)
