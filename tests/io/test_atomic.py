"""Atomically written outputs follow the umask, as plain files would (group-readable with umask 022/027)."""
import os
import stat

import meshio
import numpy as np
import pytest

from vertebrafe import outputs
from vertebrafe.io import atomic, studydir, vtu


@pytest.fixture(params=[0o022, 0o027])
def mask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_umask_is_read_back(mask):
    assert atomic.umask() == mask


def test_outputs_follow_the_umask(tmp_path, mask):
    f, d = 0o666 & ~mask, 0o777 & ~mask
    atomic.write_text(tmp_path / "a.txt", "x")
    assert _mode(tmp_path / "a.txt") == f and _mode(atomic.temp_dir(tmp_path)) == d

    def write(tmp):
        with open(os.path.join(tmp, "a.txt"), "w") as fh:
            fh.write("x")
    out = outputs.publish(write, tmp_path / "run", "run")
    assert _mode(out) == d
    assert {n: _mode(os.path.join(out, n)) for n in os.listdir(out)} == {"a.txt": f, outputs.MARKER: f}

    atomic.write_text(tmp_path / "summary.csv", "a,b\n")
    assert _mode(tmp_path / "summary.csv") == f
    studydir.write_case(str(tmp_path / "study"), "c1", {"m.csv": b"1"}, "", {"status": "ok"})
    case = tmp_path / "study" / "cases" / "c1"
    assert _mode(case) == d and all(_mode(case / n) == f for n in os.listdir(case))

    m = meshio.Mesh(np.eye(3), [("triangle", np.array([[0, 1, 2]]))])
    vtu.write(tmp_path / "m.vtu", m)
    assert _mode(tmp_path / "m.vtu") == f
