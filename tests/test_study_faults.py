"""Faults of a study: damaged outputs, stale results, concurrent and different studies in one folder,
SIGTERM and SIGKILL of the process that runs it, a read-only folder and a full disk. In every case nothing
finished is lost and nothing is reported finished that is not."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import vertebrafe

from vertebrafe import study as vs
from vertebrafe.errors import InputError, OutputError
from vertebrafe.io import studydir

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = {"segment": {"levels": "L1-L2", "element_size": 6.0}, "bone": {"bmd": 80.0},
        "load": {"preset": "relaxed_standing"}}


def raw_study(name="faults", bmds=(60.0, 70.0, 80.0), output_vtu=True):
    return {"study": {"name": name}, "base": dict(BASE, output={"vtu": output_vtu}),
            "grid": {"bone.bmd": list(bmds)},
            "summary": {"plots": [{"metric": "von_mises_p95", "x": "bone.bmd", "y": "value"}]}}


def runner(case, workdir):
    """A fast stand-in for the pipeline: metrics.csv (two rows) and, unless output.vtu = false, a result.vtu;
    sleeps FAULT_SLEEP seconds first and appends the case name to FAULT_LOG."""
    if os.environ.get("FAULT_LOG"):
        with open(os.environ["FAULT_LOG"], "a") as f:
            f.write(case.name + "\n")
    time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))
    pd.DataFrame({"case": [case.name] * 2, "level": ["L1", "L2"], "region": ["bone"] * 2,
                  "metric": ["von_mises_p95"] * 2, "value": [case.bone.bmd / 10] * 2, "unit": ["MPa"] * 2}
                 ).to_csv(os.path.join(workdir, "metrics.csv"), index=False)
    if case.output.vtu:
        with open(os.path.join(workdir, "result.vtu"), "w") as f:
            f.write("<VTKFile>" + "x" * 1000 + "</VTKFile>\n")


def calls(path):
    return open(path).read().split() if os.path.exists(path) else []


@pytest.fixture
def log(tmp_path, monkeypatch):
    p = tmp_path / "calls.log"
    monkeypatch.setenv("FAULT_LOG", str(p))
    monkeypatch.setenv("FAULT_SLEEP", "0")
    return p


def run(out, **kw):
    return vs.run_study(vs.parse_study(raw_study(**kw)), out, workers=1, runner=runner, progress=False)


def test_truncated_and_deleted_outputs_are_reported_then_recomputed(tmp_path, log):
    out = tmp_path / "s"
    first = run(out)
    a, b, c = first.study.cases
    p = out / "cases" / a.id / "metrics.csv"
    p.write_text(p.read_text()[:40])                     # truncated
    os.remove(out / "cases" / b.id / "metrics.csv")      # deleted
    paths = vs.summarize(out)
    fails = pd.read_csv(paths["failures"])
    assert dict(zip(fails["id"], fails["status"])) == {a.id: "damaged", b.id: "damaged"}
    assert "metrics.csv: changed or truncated" in fails.set_index("id").loc[a.id, "error"]
    assert "metrics.csv: missing" in fails.set_index("id").loc[b.id, "error"]
    assert set(pd.read_csv(paths["summary"])["case_id"]) == {c.id}           # only the verified case
    n = len(calls(log))
    again = run(out)
    assert sorted(again.recomputed) == sorted([a.id, b.id]) and again.skipped == [c.id]
    assert "damaged: metrics.csv" in again.recomputed[a.id] and "2 of them recomputed" in again.describe()
    assert len(calls(log)) == n + 2
    s = pd.read_csv(out / "summary.csv")
    assert set(s["case_id"]) == {a.id, b.id, c.id} and len(s) == 6
    assert pd.read_csv(out / "failures.csv").empty


def test_truncated_result_vtu_gives_a_note_not_a_crash(tmp_path, log):
    from vertebrafe.viz import report_figures

    out = tmp_path / "s"
    first = run(out, bmds=(60.0,))
    vtu = out / "cases" / first.study.cases[0].id / "result.vtu"
    vtu.write_text(vtu.read_text()[:100])
    notes = []
    assert report_figures(out, notes=notes, check=False) == []
    assert any("result.vtu is damaged" in n for n in notes), notes


def test_a_result_of_another_version_is_recomputed(tmp_path, log):
    out = tmp_path / "s"
    first = run(out, bmds=(60.0, 70.0))
    victim = first.study.cases[0]
    p = out / "cases" / victim.id / "status.json"
    st = json.loads(p.read_text())
    assert st["vertebrafe"] == vertebrafe.__version__ and set(st["checksums"]) == {"metrics.csv", "result.vtu",
                                                                                "case.toml"}
    st["vertebrafe"] = "0.0.1"
    p.write_text(json.dumps(st))
    again = run(out, bmds=(60.0, 70.0))
    assert list(again.recomputed) == [victim.id] and "finished by vertebrafe 0.0.1" in again.recomputed[victim.id]


def test_output_settings_keep_the_id_and_missing_files_are_computed(tmp_path, log):
    out = tmp_path / "s"
    first = run(out, bmds=(60.0,), output_vtu=False)
    second = run(out, bmds=(60.0,), output_vtu=True)
    assert [c.id for c in first.study.cases] == [c.id for c in second.study.cases]
    assert "output.vtu now true" in second.recomputed[first.study.cases[0].id]
    assert (out / "cases" / first.study.cases[0].id / "result.vtu").exists()
    third = run(out, bmds=(60.0,), output_vtu=False)                   # fewer files asked: nothing to do
    assert third.skipped == [first.study.cases[0].id] and not third.recomputed


def test_a_second_process_on_the_folder_is_refused(tmp_path, log):
    out = tmp_path / "s"
    os.makedirs(out)
    with studydir.lock(str(out)):                   # another holder: a separate open file description
        with pytest.raises(InputError, match=r"is in use by another vertebrafe study \(pid \d+ on .* since"):
            run(out)
    assert calls(log) == []
    assert len(run(out).ok) == 3                    # released: runs


def test_a_different_study_in_the_folder_is_refused(tmp_path, log):
    out = tmp_path / "s"
    run(out)
    with pytest.raises(InputError, match="holds study 'faults' sweeping \\['bone.bmd'\\]; this is study 'other'"):
        run(out, name="other")
    extended = run(out, bmds=(60.0, 70.0, 80.0, 90.0))                  # the same study, one more value
    assert len(extended.ok) == 1 and len(extended.skipped) == 3


def test_disk_full_while_writing_a_case_reports_nothing_finished(tmp_path, log, monkeypatch):
    out = tmp_path / "s"
    first = run(out, bmds=(60.0, 70.0))
    before = {c.id: (out / "cases" / c.id / "metrics.csv").read_bytes() for c in first.study.cases}
    real = open

    def full(path, mode="r", *a, **k):
        if "w" in mode and os.path.basename(str(path)) == "metrics.csv":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, mode, *a, **k)

    monkeypatch.setattr(studydir, "open", full, raising=False)
    st = json.loads((out / "cases" / first.study.cases[0].id / "status.json").read_text())
    st["vertebrafe"] = "0.0.1"                      # force a recompute of the first case
    (out / "cases" / first.study.cases[0].id / "status.json").write_text(json.dumps(st))
    with pytest.raises(OutputError, match="cannot write case .*No space left on device .*not marked finished"):
        run(out, bmds=(60.0, 70.0))
    for cid, data in before.items():                # the earlier files are intact
        assert (out / "cases" / cid / "metrics.csv").read_bytes() == data
    assert not [n for n in os.listdir(out / "cases") if n.startswith(".")]        # no temporaries left
    monkeypatch.undo()
    assert studydir.case_status(out, first.study.cases[0].id)["vertebrafe"] == "0.0.1"   # not marked new


def test_read_only_folder_is_a_clear_error(tmp_path, log, monkeypatch):
    out = tmp_path / "s"
    run(out, bmds=(60.0,))

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(out / "cases"))

    monkeypatch.setattr(studydir, "atomic_dir", read_only)
    with pytest.raises(OutputError, match="Read-only file system"):
        run(out, bmds=(60.0, 70.0))
    monkeypatch.undo()
    assert vs.summarize(out)["summary"] and len(pd.read_csv(out / "summary.csv")) == 2   # first case intact


SCRIPT = """
import os, sys
sys.path.insert(0, {here!r})
import test_study_faults as t
from vertebrafe import study as vs
if __name__ == "__main__":          # spawned workers import this file again
    s = vs.parse_study(t.raw_study(bmds=(50.0, 60.0, 70.0, 80.0, 90.0, 100.0)))
    vs.run_study(s, {out!r}, workers=2, runner=t.runner, progress=False)
"""


def _children(pid):
    """Pids of the live processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(tmp_path, monkeypatch):
    out = tmp_path / "s"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("FAULT_SLEEP", "3")
    monkeypatch.setenv("TMPDIR", str(tmp))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(here=HERE, out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300             # the parent first loads (or compiles) the numba kernels
    workers = []
    while time.monotonic() < deadline and proc.poll() is None:        # both workers inside a case
        workers = [w for w in _children(proc.pid) if "spawn_main" in open(f"/proc/{w}/cmdline").read()]
        if len(workers) == 2 and len([d for d in os.listdir(tmp) if d.startswith("vertebrafe-")]) == 2:
            break
        time.sleep(0.1)
    assert len(workers) == 2, proc.stdout.read().decode() if proc.poll() is not None else "no workers"
    return out, tmp, proc, workers


def _gone(pids, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_workers_and_removes_temporaries(tmp_path, log, monkeypatch):
    out, tmp, proc, workers = _start(tmp_path, monkeypatch)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert _gone(workers), "workers still running after SIGTERM"
    assert [d for d in os.listdir(tmp) if d.startswith("vertebrafe-")] == []
    monkeypatch.setenv("FAULT_SLEEP", "0")
    s = vs.parse_study(raw_study(bmds=(50.0, 60.0, 70.0, 80.0, 90.0, 100.0)))
    again = vs.run_study(s, out, workers=1, runner=runner, progress=False)     # lock released; resumes
    assert len(again.ok) + len(again.skipped) == 6 and not again.failed and not again.recomputed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_parent_stops_its_workers_and_resume_completes(tmp_path, log, monkeypatch):
    out, tmp, proc, workers = _start(tmp_path, monkeypatch)
    os.kill(proc.pid, signal.SIGKILL)                # the parent only: its workers are orphaned
    proc.wait(timeout=30)
    assert _gone(workers), "orphaned workers still running after their parent was killed"
    assert [d for d in os.listdir(tmp) if d.startswith("vertebrafe-")] == []
    monkeypatch.setenv("FAULT_SLEEP", "0")
    s = vs.parse_study(raw_study(bmds=(50.0, 60.0, 70.0, 80.0, 90.0, 100.0)))
    finished = [c.id for c in s.cases if (vs.case_status(out, c.id) or {}).get("status") == "ok"]
    again = vs.run_study(s, out, workers=1, runner=runner, progress=False)
    assert sorted(again.skipped) == sorted(finished) and not again.recomputed
    assert len(again.ok) + len(again.skipped) == 6 and not again.failed
    assert len(pd.read_csv(out / "summary.csv")) == 12
