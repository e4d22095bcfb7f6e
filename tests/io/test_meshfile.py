"""Mesh file errors: every meshio failure is a MeshError naming the file and the format; formats that need
an optional package say which and how to install it."""
import builtins

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import MeshError


def test_missing_optional_package_is_named(tmp_path, monkeypatch):
    path = tmp_path / "m.med"
    path.write_bytes(b"\x89HDF\r\n")
    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py" or name.startswith("h5py."):
            raise ModuleNotFoundError("No module named 'h5py'", name="h5py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(MeshError, match=r"Reading .*m\.med' as med needs the Python package 'h5py'.*vertebrafe\[io\]"):
        vf.Mesh.load(path)
    with pytest.warns(vf.mesh.MeshWarning), pytest.raises(MeshError, match=r"Writing .*m\.xdmf' as xdmf needs the Python package 'h5py'"):
        vf.box((1, 1, 1), (1, 1, 1)).save(tmp_path / "m.xdmf")  # (a MeshWarning first: names are dropped)


def test_reader_failure_names_file_and_format(tmp_path):
    bad = tmp_path / "broken.nas"
    bad.write_text("CHEXA   1       1       1       2       3\n")  # truncated card
    with pytest.raises(MeshError, match=r"broken\.nas' as nastran: \w+"):
        vf.Mesh.load(bad)
    garbage = tmp_path / "garbage.vtu"
    garbage.write_bytes(b"\x00\x01 not xml")
    with pytest.raises(MeshError, match=r"garbage\.vtu' as vtu"):
        vf.Mesh.load(garbage)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(MeshError, match="does not exist"):
        vf.Mesh.load(tmp_path / "none.vtu")
    with pytest.raises(MeshError, match="cannot tell the mesh format.*file_format="):
        vf.Mesh.load(tmp_path / "mesh.unknownext")


def test_round_trip_still_works(tmp_path):
    mesh = vf.box((1.0, 2.0, 3.0), (2, 1, 1))
    mesh.save(tmp_path / "b.vtu")
    back = vf.Mesh.load(tmp_path / "b.vtu")
    np.testing.assert_array_equal(back.cells, mesh.cells)
