"""Names that moved stay importable from their old module, with a DeprecationWarning, and are the same objects."""
import importlib

import pytest

from vertebrafe.deprecation import moved

ALIASES = [
    ("vertebrafe.fem.springs", "vertebrafe.springs", "SpringSet"),
    ("vertebrafe.fem.springs", "vertebrafe.springs", "spring_set"),
    ("vertebrafe.fem.cavity", "vertebrafe.cavity", "FluidCavity"),
    ("vertebrafe.fem.cavity", "vertebrafe.cavity", "cavity_faces"),
    ("vertebrafe.fem.elasticity", "vertebrafe.elasticity", "isotropic"),
    ("vertebrafe.anatomy.disc", "vertebrafe.anatomy.segment", "disc"),
    ("vertebrafe.anatomy.segment", "vertebrafe.anatomy.assignment", "cell_elasticity"),
]


@pytest.mark.parametrize("old, new, name", ALIASES)
def test_moved_name_warns_and_is_the_same_object(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} is deprecated; use {new}\.{name}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


def test_from_import_of_a_moved_name_warns():
    with pytest.warns(DeprecationWarning, match="vertebrafe.anatomy.disc.disc is deprecated"):
        from vertebrafe.anatomy.disc import disc
    assert disc is importlib.import_module("vertebrafe.anatomy.segment").disc


def test_unknown_name_is_an_attribute_error():
    getattr_ = moved("pkg.old", "vertebrafe.springs", ("SpringSet",))
    with pytest.raises(AttributeError, match="module 'pkg.old' has no attribute 'Spring'"):
        getattr_("Spring")


def test_new_home_is_imported_at_the_access_only(monkeypatch):
    imported = []
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name) or importlib)
    getattr_ = moved("pkg.old", "pkg.new", ("import_module",))
    assert imported == []
    with pytest.warns(DeprecationWarning):
        getattr_("import_module")
    assert imported == ["pkg.new"]


def test_attach_materials_warns_and_still_attaches_in_place():
    from vertebrafe.anatomy import segment
    from vertebrafe.materials import MaterialSet

    seg = segment(["L1", "L2"], element_size=6.0)
    mesh = seg.mesh
    with pytest.warns(DeprecationWarning, match="use seg = seg.with_materials"):
        assert seg.attach_materials(MaterialSet(bmd=80.0)) is seg
    assert seg.mesh is mesh and seg.elasticity.shape == (mesh.n_cells, 6, 6) and "modulus" in mesh.cell_data
