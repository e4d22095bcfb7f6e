"""``overwrite`` replaces only files vertebrafe wrote: its .vtu, .inp and .feb files carry a signature, a
user's file of the same name never does and survives."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe import cli
from vertebrafe.errors import InputError
from vertebrafe.io.provenance import SIGNATURE, check_replaceable, written_by_vertebrafe


def _model():
    mesh = vf.box((1, 1, 1), (1, 1, 1))
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(np.flatnonzero(mesh.points[:, 2] == 0), "xyz")
    return model


@pytest.mark.parametrize("ext", ["inp", "feb"])
def test_export_replaces_its_own_file_and_never_a_users(tmp_path, ext):
    model = _model()
    ours, theirs = tmp_path / f"ours.{ext}", tmp_path / f"theirs.{ext}"
    model.export(ours)
    assert written_by_vertebrafe(ours)
    first = ours.read_text()
    model.export(ours, overwrite=True)                     # its own file: replaced
    assert ours.read_text() == first
    theirs.write_text("a user's deck\n")
    with pytest.raises(InputError, match="was not written by vertebrafe"):
        model.export(theirs, overwrite=True)
    assert theirs.read_text() == "a user's deck\n"


def test_mesh_file_signature_and_round_trip(tmp_path):
    mesh = vf.box((1, 2, 3), (2, 1, 1))
    mesh.save(tmp_path / "m.vtu")
    assert written_by_vertebrafe(tmp_path / "m.vtu")
    back = vf.Mesh.load(tmp_path / "m.vtu")                # the comment does not disturb the reader
    assert np.array_equal(back.cells, mesh.cells) and np.allclose(back.points, mesh.points)
    with pytest.warns(vf.errors.MeshWarning, match="does not keep name tables"):
        mesh.save(tmp_path / "m.vtk")
    assert not written_by_vertebrafe(tmp_path / "m.vtk")   # legacy VTK cannot carry it: never replaced
    with pytest.raises(InputError, match="formats other than .vtu, .inp and .feb cannot carry it"):
        check_replaceable(tmp_path / "m.vtk", True, "-o/--output")


def test_check_replaceable_messages(tmp_path):
    check_replaceable(tmp_path / "new.vtu", False)         # a new file is always fine
    (tmp_path / "x.vtu").write_text(f"<!-- {SIGNATURE} -->")
    with pytest.raises(InputError, match="exists; allowed: a new file, or overwrite"):
        check_replaceable(tmp_path / "x.vtu", False)
    check_replaceable(tmp_path / "x.vtu", True)
    with pytest.raises(InputError, match="is a folder"):
        check_replaceable(tmp_path, True)
    (tmp_path / "link.vtu").symlink_to(tmp_path / "x.vtu")
    with pytest.raises(InputError, match="was not written by vertebrafe"):
        check_replaceable(tmp_path / "link.vtu", True)      # a link is the user's, whatever it points to


def test_cli_mesh_overwrite_keeps_a_users_file(tmp_path, capsys):
    (tmp_path / "m.vtu").write_text("mine")
    code = cli.main(["mesh", "cases/healthy-intact.toml", "-o", str(tmp_path / "m.vtu"), "--overwrite"])
    assert code == 1
    assert "was not written by vertebrafe" in capsys.readouterr().err
    assert (tmp_path / "m.vtu").read_text() == "mine"
