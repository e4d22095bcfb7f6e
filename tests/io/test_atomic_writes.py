"""The one atomic writer: a failed write leaves the old file as it was and no temporary behind; compound
extensions survive (the writers choose the format from them)."""
import os

import pytest

from vertebrafe.io import atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half a tab")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["metrics.csv"]


def test_success_replaces_the_file_and_keeps_compound_extensions(tmp_path):
    target = tmp_path / "ct.nii.gz"
    with atomic.atomic_path(target) as tmp:
        assert tmp.endswith(".nii.gz") and os.path.dirname(tmp) == str(tmp_path)
        assert atomic.is_temporary(os.path.basename(tmp))
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["ct.nii.gz"]


def test_atomic_dir_is_complete_or_absent(tmp_path):
    final = tmp_path / "cases" / "abc"
    final.parent.mkdir()
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(final, label="abc") as tmp:
            open(os.path.join(tmp, "status.json"), "w").close()
            raise RuntimeError
    assert os.listdir(final.parent) == []
    with atomic.atomic_dir(final) as tmp:
        open(os.path.join(tmp, "status.json"), "w").close()
    assert os.listdir(final) == ["status.json"] and os.listdir(final.parent) == ["abc"]
