"""Output folders never lose what vertebrafe did not write; names from input stay inside the output folder."""
import json
import os

import pytest

from vertebrafe import cli
from vertebrafe.case import parse_case, save_result
from vertebrafe.errors import InputError
from vertebrafe.outputs import MARKER, check_name, read_marker, safe_name, verify

CASE = {"case": {"name": "t"}, "segment": {"levels": "L1-L2", "element_size": 6.0}, "bone": {"bmd": 80.0},
        "load": {"preset": "relaxed_standing"}}
TINY = "[segment]\nlevels = 'L1-L2'\nelement_size = 6.0\n[bone]\nbmd = 80.0\n[load]\npreset = 'relaxed_standing'\n"


class FakeResult:
    """Stands in for a solved Result: ``save`` writes the files a result writes."""

    def __init__(self, tag="a"):
        self.tag = tag

    def save(self, directory):
        for n in ("result.vtu", "metrics.csv", "metrics.json", "case.json"):
            with open(os.path.join(directory, n), "w") as f:
                f.write(f"{n} {self.tag}\n")


@pytest.fixture
def case():
    return parse_case(CASE)


def test_new_folder_gets_files_and_marker(tmp_path, case):
    out = tmp_path / "new" / "run"
    save_result(FakeResult(), case, out)
    names = sorted(os.listdir(out))
    assert names == sorted([MARKER, "result.vtu", "metrics.csv", "metrics.json", "case.json", "case.toml"])
    m = read_marker(out)
    assert m["kind"] == "run" and m["complete"] and set(m["files"]) == set(names) - {MARKER}
    assert verify(out) == []


def test_existing_file_and_foreign_folder_are_refused_and_kept(tmp_path, case):
    f = tmp_path / "existing.csv"
    f.write_text("mine")
    with pytest.raises(InputError, match="existing.csv' is an existing file"):
        save_result(FakeResult(), case, f)
    assert f.read_text() == "mine"
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="not an earlier vertebrafe run output"):
            save_result(FakeResult(), case, d, overwrite=overwrite)
    assert os.listdir(d) == ["notes.txt"] and (d / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_only_own_files(tmp_path, case):
    out = tmp_path / "run"
    save_result(FakeResult("a"), case, out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds an earlier vertebrafe run output.*--overwrite"):
        save_result(FakeResult("b"), case, out)
    assert (out / "metrics.csv").read_text() == "metrics.csv a\n"
    no_vtu = parse_case({**CASE, "output": {"vtu": False}})
    save_result(FakeResult("b"), no_vtu, out, overwrite=True)
    assert (out / "metrics.csv").read_text() == "metrics.csv b\n"
    assert not (out / "result.vtu").exists()          # its own earlier file, not rewritten: removed
    assert (out / "notes.txt").read_text() == "mine"  # the user's file: kept
    assert verify(out) == [] and "result.vtu" not in read_marker(out)["files"]


def test_a_user_file_with_an_output_name_is_not_replaced(tmp_path, case):
    out = tmp_path / "run"
    save_result(FakeResult("a"), case, out)
    m = read_marker(out)
    del m["files"]["metrics.csv"]                    # as if the user had put their own metrics.csv there
    (out / MARKER).write_text(json.dumps(m))
    with pytest.raises(InputError, match="metrics.csv exist and were not written by vertebrafe"):
        save_result(FakeResult("b"), case, out, overwrite=True)
    assert (out / "metrics.csv").read_text() == "metrics.csv a\n"


def test_verify_reports_truncated_and_deleted_files(tmp_path, case):
    out = tmp_path / "run"
    save_result(FakeResult(), case, out)
    (out / "metrics.csv").write_text("metr")
    os.remove(out / "case.json")
    assert sorted(verify(out)) == ["case.json", "metrics.csv"]
    assert verify(tmp_path) is None


def test_cli_run_refuses_cwd_and_empty_path_before_solving(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "data.csv").write_text("mine")
    monkeypatch.chdir(tmp_path)

    def never(*a, **k):
        raise AssertionError("solved although the output path is refused")

    monkeypatch.setattr("vertebrafe.case.run_case", never)
    for argv, msg in ((["-o", "."], "'.' is a folder with 2 entries that is not an earlier vertebrafe run"),
                      (["-o", ".", "--overwrite"], "not an earlier vertebrafe run output"),
                      (["-o", ""], "-o/--output = '' is empty"),
                      (["-o", "data.csv", "--overwrite"], "'data.csv' is an existing file")):
        assert cli.main(["run", "tiny.toml", *argv]) == 1
        assert msg in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "tiny.toml"]
    assert (tmp_path / "data.csv").read_text() == "mine"


def test_cli_mesh_refuses_an_existing_file(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "m.vtu").write_text("mine")
    assert cli.main(["mesh", str(tmp_path / "tiny.toml"), "-o", str(tmp_path / "m.vtu")]) == 1
    assert "m.vtu' exists; allowed: a new file, or overwrite (--overwrite)" in capsys.readouterr().err
    assert (tmp_path / "m.vtu").read_text() == "mine"


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", ".hidden", "", "x" * 129, "a\nb", "..", "é"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(InputError, match="is not a safe file name; allowed: 1-128 characters"):
        check_name(name, "summary.plots[0].name")


def test_safe_name():
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"   # one name, no separator
    assert safe_name("von_mises_p95_bone_adjacent_vs_volume") == "von_mises_p95_bone_adjacent_vs_volume"
    assert check_name(safe_name("a/b c" * 100), "x")


def test_plot_name_from_a_study_file_stays_inside(tmp_path):
    from vertebrafe.study import parse_study

    raw = {"study": {"name": "s"}, "base": CASE, "grid": {"bone.bmd": [60.0, 80.0]},
           "summary": {"plots": [{"metric": "von_mises_p95", "x": "bone.bmd", "y": "value", "name": "../../x"}]}}
    with pytest.raises(InputError, match=r"summary.plots\[0\].name = '../../x' is not a safe file name"):
        parse_study(raw)


def test_received_study_json_with_unsafe_ids_is_refused(tmp_path):
    from vertebrafe.study import summarize

    (tmp_path / "study.json").write_text(json.dumps({"name": "s", "parameters": [], "grid_keys": [], "plots": [],
                                                     "cases": [{"id": "../../etc", "name": "x", "variant": "",
                                                                "params": {}, "case": {}}]}))
    with pytest.raises(InputError, match=r"cases\[0\].id = '../../etc' is not a safe file name"):
        summarize(tmp_path)
    meta = json.loads((tmp_path / "study.json").read_text())
    meta["cases"][0]["id"] = "abc"
    meta["plots"] = [{"name": "/tmp/evil", "metric": "m", "x": "k"}]
    (tmp_path / "study.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"plots\[0\].name = '/tmp/evil' is not a safe file name"):
        summarize(tmp_path)


def test_study_refuses_a_foreign_folder(tmp_path):
    from vertebrafe.study import parse_study, run_study

    (tmp_path / "mine.txt").write_text("mine")
    study = parse_study({"study": {"name": "s"}, "base": CASE, "grid": {"bone.bmd": [60.0]}})
    with pytest.raises(InputError, match="is a non-empty folder that is not a study folder"):
        run_study(study, tmp_path, workers=1, progress=False)
    assert os.listdir(tmp_path) == ["mine.txt"]
    with pytest.raises(InputError, match="is an existing file"):
        run_study(study, tmp_path / "mine.txt", workers=1, progress=False)


def test_disk_full_during_a_run_keeps_the_earlier_output(tmp_path, case):
    import errno

    from vertebrafe.errors import OutputError

    out = tmp_path / "run"
    save_result(FakeResult("a"), case, out)

    class Full(FakeResult):
        def save(self, directory):
            super().save(directory)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(directory, "result.vtu"))

    with pytest.raises(OutputError, match="No space left on device .* earlier files .* are kept"):
        save_result(Full("b"), case, out, overwrite=True)
    assert (out / "metrics.csv").read_text() == "metrics.csv a\n" and verify(out) == []
    assert not [n for n in os.listdir(out) if n.startswith(".vertebrafe-tmp")]


def test_a_killed_write_leaves_nothing_that_blocks_the_next(tmp_path, case):
    out = tmp_path / "run"
    (out / ".vertebrafe-tmp-abc").mkdir(parents=True)          # a run killed while writing its first output
    (out / ".vertebrafe-tmp-abc" / "result.vtu").write_text("half")
    save_result(FakeResult("a"), case, out)
    assert not (out / ".vertebrafe-tmp-abc").exists() and verify(out) == []
