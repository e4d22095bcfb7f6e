"""Ill-posed models fail loudly, with the error class and message the user needs.

- no constraints: UnderConstrainedError naming all six rigid motions;
- only the rotation about the z axis left free: the error names that rotation only;
- an iterative solve capped below what it needs: ConvergenceError with iterations and residual;
- invalid materials: MaterialError naming the cell;
- an inverted element: InvertedElementError naming the cell, raised before any solve.
"""
import re

import numpy as np
import pytest

from vertebrafe.errors import (ConvergenceError, InvertedElementError, MaterialError,
                               UnderConstrainedError, VertebrafeError)
from vertebrafe.elasticity import isotropic

from vf_helpers import Model, grid


def _block(shape=(2, 2, 2), lengths=(2.0, 2.0, 2.0), origin=(-1.0, -1.0, 0.0)):
    return grid(shape, lengths=lengths, origin=origin)


def test_free_body_names_all_six_rigid_motions():
    g = _block()
    model = Model(g.mesh(), E=100.0, nu=0.3)
    model.add_force(g.node_sets["zmax"], (0.0, 0.0, -1.0))
    with pytest.raises(UnderConstrainedError) as info:
        model.solve(solver="direct")
    err = info.value
    msg = str(err)
    print(msg, err.free_modes)
    assert len(err.free_modes) == 6
    for mode in err.free_modes:
        assert str(mode) in msg
    text = " ".join(map(str, err.free_modes)).lower()
    assert text.count("transl") == 3 and text.count("rot") == 3


def test_only_rotation_about_z_free_is_named():
    """All nodes on the z axis fixed: the body can still spin about that axis, and nothing else."""
    g = _block()
    axis = np.flatnonzero((np.abs(g.points[:, 0]) < 1e-12) & (np.abs(g.points[:, 1]) < 1e-12))
    assert len(axis) == 3
    model = Model(g.mesh(), E=100.0, nu=0.3)
    model.fix(axis, "xyz")
    model.add_force(g.node_sets["zmax"], (0.0, 0.0, -1.0))
    with pytest.raises(UnderConstrainedError) as info:
        model.solve(solver="direct")
    err = info.value
    print(str(err), err.free_modes)
    assert len(err.free_modes) == 1
    mode = str(err.free_modes[0]).lower()
    assert "rot" in mode and "z" in mode
    assert str(err.free_modes[0]) in str(err)


def test_diverging_iterative_solve_raises_convergence_error():
    # Over 1000 free DOFs, so that the AMG hierarchy has more than one level (a one-level hierarchy
    # is a direct solve and converges in one iteration).
    g = grid((10, 10, 10), lengths=(6.0, 6.0, 6.0))
    model = Model(g.mesh(), E=100.0, nu=0.3)
    model.fix(g.node_sets["zmin"], "xyz")
    model.add_pressure(g.face_sets["zmax"], 1.0)
    with pytest.raises(ConvergenceError) as info:
        model.solve(solver="amg", rtol=1e-14, maxiter=2)
    err = info.value
    print(str(err), err.iterations, err.residual)
    assert err.iterations is not None and err.iterations <= 2
    assert err.residual is not None and err.residual > 1e-14


def _solve(model, g):
    model.fix(g.node_sets["zmin"], "xyz")
    model.prescribe(g.node_sets["zmax"], "z", -0.01)
    return model.solve(solver="direct")


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan])
def test_nonpositive_or_nonfinite_E_names_the_cell(bad):
    g = _block()
    E = np.full(g.cells.shape[0], 100.0)
    E[5] = bad
    with pytest.raises(MaterialError, match=r"cell 5\b"):
        _solve(Model(g.mesh(), E=E, nu=0.3), g)


@pytest.mark.parametrize("bad", [0.5, 0.7, -1.0])
def test_nu_out_of_range_names_the_cell(bad):
    g = _block()
    nu = np.full(g.cells.shape[0], 0.3)
    nu[3] = bad
    with pytest.raises(MaterialError, match=r"cell 3\b"):
        _solve(Model(g.mesh(), E=100.0, nu=nu), g)


def test_scalar_nu_one_half_rejected():
    g = _block()
    with pytest.raises(MaterialError, match=r"nu"):
        _solve(Model(g.mesh(), E=100.0, nu=0.5), g)


def test_non_spd_matrix_names_the_cell():
    g = _block()
    C = np.repeat(isotropic(100.0, 0.3)[None], g.cells.shape[0], axis=0)
    C[6, 0, 0] = -10.0                      # symmetric but indefinite
    with pytest.raises(MaterialError, match=r"cell 6\b"):
        _solve(Model(g.mesh(), C=C), g)
    C = np.repeat(isotropic(100.0, 0.3)[None], g.cells.shape[0], axis=0)
    C[2, 0, 1] += 30.0                      # not symmetric
    with pytest.raises(MaterialError, match=r"cell 2\b"):
        _solve(Model(g.mesh(), C=C), g)


def test_inverted_element_raises_before_solving():
    g = _block()
    cells = g.cells.copy()
    cells[4] = cells[4][[4, 5, 6, 7, 0, 1, 2, 3]]   # top and bottom swapped: negative Jacobian
    from vf_helpers import Mesh
    with pytest.raises(InvertedElementError) as info:
        model = Model(Mesh(g.points, cells), E=100.0, nu=0.3)
        _solve(model, g)
    assert 4 in list(info.value.cells)
    assert re.search(r"\b4\b", str(info.value))
    # Checked before anything else about the system: with no constraints at all, the inverted cell is
    # still what is reported (not the free rigid-body motions).
    with pytest.raises(InvertedElementError):
        Model(Mesh(g.points, cells), E=100.0, nu=0.3).solve(solver="direct")


def test_all_errors_share_the_family():
    for cls in (ConvergenceError, InvertedElementError, MaterialError, UnderConstrainedError):
        assert issubclass(cls, VertebrafeError)
