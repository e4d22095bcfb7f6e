"""A study's plate strengths are shared by its processes through ``out/strengths`` (StrengthFiles): equal bit
for bit when read back, used by another process and by a later run that resumes the study, and nothing is
written outside the study folder."""
import os

import numpy as np
import pandas as pd

from vertebrafe import study as vs
from vertebrafe._version import __version__, source_digest
from vertebrafe.io.studydir import STRENGTHS_DIR, StrengthFiles, clean_temporaries
from vertebrafe.post import strength as _s

# two models that differ only in their discs' swelling pressure: the vertebrae, and so their plate
# strengths, are the same in both
RAW = {"study": {"name": "shared-strengths"},
       "base": {"segment": {"levels": "L1-L2", "element_size": 6.0}, "bone": {"bmd": 80.0},
                "load": {"preset": "relaxed_standing"}, "output": {"vtu": False}},
       "grid": {"segment.nucleus_prepressure": [0.1, 0.12]}}


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, n), folder) for d, _, names in os.walk(folder) for n in names)


def test_strength_files_round_trip_bit_for_bit_across_instances(tmp_path):
    key = ("digest", 0.05, None, 0.01, ("bone",), (("rtol", 1e-6), ("solver", "auto")))
    value = {"level": "L1", "height": 25.1 / 3, "stiffness": 1.0e5 + 1e-9, "strength_apparent": np.float64(2.0) / 3,
             "dofs": 1234, "solve_time": float("nan"), "cement_yielded": True,
             "curve": np.random.default_rng(1).random((7, 2))}
    one, two = StrengthFiles(tmp_path), StrengthFiles(tmp_path)   # as two worker processes would hold them
    assert two.get(key) is None
    one[key] = value
    got = two.get(key)
    assert set(got) == set(value) and got["level"] == "L1" and got["dofs"] == 1234 and got["cement_yielded"] is True
    for k in ("height", "stiffness", "strength_apparent"):
        assert np.float64(got[k]).tobytes() == np.float64(value[k]).tobytes()
    assert np.isnan(got["solve_time"]) and got["curve"].tobytes() == value["curve"].tobytes()
    assert two.get(key[:-1] + ((("rtol", 1e-8),),)) is None                # another key: a miss
    assert _files(tmp_path) == [os.path.join(STRENGTHS_DIR, os.path.basename(one._path(key)))]
    # a file of another version or source code (changed code of the same version), or a damaged one, is a miss
    np.savez(one._path(key), __key__=repr(key), __vertebrafe__=__version__, __source__=source_digest(), height=1.0)
    assert StrengthFiles(tmp_path).get(key) == {"height": 1.0}
    np.savez(one._path(key), __key__=repr(key), __vertebrafe__=__version__ + "-other", __source__=source_digest(),
             height=1.0)
    assert StrengthFiles(tmp_path).get(key) is None
    np.savez(one._path(key), __key__=repr(key), __vertebrafe__=__version__, __source__="0" * 32, height=1.0)
    assert StrengthFiles(tmp_path).get(key) is None
    with open(one._path(key), "wb") as f:
        f.write(b"PK\x03")
    assert StrengthFiles(tmp_path).get(key) is None
    # values that are not numbers, strings or numeric arrays stay in this process
    three = StrengthFiles(tmp_path / "other")
    three[key] = {"solution": object()}
    assert key in three and not os.path.exists(three.folder)
    # a folder that cannot be written (here a file in its place) keeps the value in this process
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / STRENGTHS_DIR).write_text("not a folder")
    four = StrengthFiles(tmp_path / "blocked")
    four[key] = value
    assert four.get(key) is value and (tmp_path / "blocked" / STRENGTHS_DIR).read_text() == "not a folder"
    # a temporary left by a killed run is removed at the next start
    leftover = os.path.join(one.folder, ".tmp-123-0-x.npz")
    open(leftover, "w").close()
    clean_temporaries(str(tmp_path))
    assert not os.path.exists(leftover)


def test_workers_share_plate_strengths_and_a_resumed_study_reads_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                        # anything written beside the study would show here
    s = vs.parse_study(RAW)
    out = tmp_path / "s"
    pool = vs.run_study(s, out, workers=2, progress=False, summary=False)
    assert sorted(pool.ok) == sorted(sc.id for sc in s.cases) and pool.backend == "2 worker processes"
    strengths = _files(out / STRENGTHS_DIR)
    assert len(strengths) == 2 and all(n.endswith(".npz") for n in strengths)      # L1 and L2, once each
    assert {p.name for p in tmp_path.iterdir()} == {"s"}
    assert set(os.listdir(out)) <= {"study.json", "cases", STRENGTHS_DIR, ".lock", "failures.csv"}
    # the workers' strengths are those of a plate test of the case's segment on one thread, as a worker runs it
    from vertebrafe.case.run import build_segment
    from vertebrafe.study.backends import _one_thread
    first = s.cases[0].case
    with _one_thread(True):
        seg = build_segment(first)
        rows = _s.plate_rows(seg, first.load.to_load(segment=seg))
    metrics = pd.read_csv(out / "cases" / s.cases[0].id / "metrics.csv")
    for level, region, metric, value, unit in rows:
        hit = metrics[(metrics["level"] == level) & (metrics["region"] == region) & (metrics["metric"] == metric)]
        np.testing.assert_allclose(hit["value"].to_numpy(float), [value], rtol=1e-12)
    # a case computed again (its result damaged) by another process reads the workers' strengths: no plate test
    victim = s.cases[1]
    before = pd.read_csv(out / "cases" / victim.id / "metrics.csv")
    os.remove(out / "cases" / victim.id / "metrics.csv")

    def no_plate_test(*args, **kwargs):
        raise AssertionError("a plate test was solved again")
    monkeypatch.setattr(_s, "vertebra_strength", no_plate_test)
    again = vs.run_study(s, out, workers=1, progress=False, summary=False)
    assert again.ok == [victim.id] and victim.id in again.recomputed and not again.failed
    assert _files(out / STRENGTHS_DIR) == strengths
    after = pd.read_csv(out / "cases" / victim.id / "metrics.csv")
    assert list(after["metric"]) == list(before["metric"])
    plate = after["metric"].str.startswith("plate_")
    assert after["value"][plate].tolist() == before["value"][plate].tolist()
    np.testing.assert_allclose(after["value"].to_numpy(float), before["value"].to_numpy(float), rtol=1e-6,
                               atol=1e-10 * np.abs(before["value"].to_numpy(float)).max())   # other thread count
