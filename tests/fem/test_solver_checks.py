"""The solvers are judged on the true residual, honour rtol, and never return non-finite results."""
import numpy as np
import pytest
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import vertebrafe as vf
from vertebrafe.errors import ConvergenceError, InputError
from vertebrafe.fem import solvers


def box_model(force=-200.0, shape=(6, 4, 3)):
    mesh = vf.box((4, 3, 2), shape)
    model = vf.Model(mesh, E=np.where(mesh.cell_centers()[:, 0] < 2, 100.0, 3000.0), nu=0.3)
    model.fix(mesh.node_sets["zmin"])
    model.add_force(mesh.node_sets["zmax"], (0.0, 0.0, force / len(mesh.node_sets["zmax"])))
    return model


def spd(n=30, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    return sp.csr_matrix(a @ a.T + n * np.eye(n)), rng.normal(size=n)


def test_non_finite_load_is_an_input_error():
    K, f = spd()
    f[3] = np.nan
    with pytest.raises(InputError, match="non-finite values"):
        solvers.solve(K, f, "direct")


def test_huge_load_gives_a_convergence_error_not_infinite_stresses():
    model = box_model(force=-1e300)
    solution = model.solve(solver="direct")
    with pytest.raises(ConvergenceError, match="not finite or above"):
        solution.von_mises


def test_direct_refines_an_inexact_factorisation_to_rtol(monkeypatch):
    K, f = spd()
    real = spla.splu
    # a factorisation of a 1e-4 perturbed matrix: the first solve is off by ~1e-5, refinement fixes it
    monkeypatch.setattr(solvers.spla, "splu", lambda A, **kw: real(sp.csc_matrix(A * (1 + 1e-4)), **kw))
    u, info = solvers.solve(K, f, "direct", rtol=1e-12)
    assert info["residual"] <= 1e-12 and info["iterations"] == 3
    np.testing.assert_allclose(K @ u, f, rtol=0, atol=1e-11 * np.linalg.norm(f))


def test_direct_honours_rtol_or_says_why_not():
    H = sp.csr_matrix(sl.hilbert(9))            # condition number 5e11
    u, info = solvers.solve(H, np.ones(9), "direct", rtol=1e-8)
    assert info["residual"] <= 1e-8
    with pytest.raises(ConvergenceError, match=r"requested rtol = 1e-12; LU with \d refinement step\(s\) cannot "
                                               "reach it: the matrix is nearly singular"):
        solvers.solve(H, np.ones(9), "direct", rtol=1e-12)


def _matrix(K):
    """The sparse matrix of CG's operator ``K`` (a matrix or a ``LinearOperator``)."""
    return sp.csc_matrix(K @ np.eye(K.shape[0]))


def _hair_above_then_real(monkeypatch, factor, calls):
    """Replace CG: the first call returns the exact solution spoiled to a true residual of ``factor`` rtol
    with status 0 (the recurrence said converged); later calls run the real CG."""
    real = spla.cg

    def fake(K, f, **kw):
        calls.append(kw.get("x0") is not None)
        if len(calls) > 1:
            return real(K, f, **kw)
        u = spla.spsolve(_matrix(K), f)
        r = np.zeros_like(f)
        r[0] = 1.0
        du = spla.spsolve(_matrix(K), r)
        du *= factor * kw["rtol"] * np.linalg.norm(f) / np.linalg.norm(K @ du)
        for _ in range(7):
            kw["callback"](u)
        return u + du, 0

    monkeypatch.setattr(solvers.spla, "cg", fake)


def test_cg_restarts_when_the_true_residual_is_a_hair_above(monkeypatch):
    calls = []
    _hair_above_then_real(monkeypatch, 1.02, calls)
    s = box_model().solve(solver="amg", rtol=1e-8)
    assert calls == [False, True] and s.info["restarts"] == 1
    assert s.info["residual"] <= 1e-8


def test_cg_stagnation_is_not_advised_as_an_iteration_limit(monkeypatch):
    def stuck(K, f, x0=None, **kw):
        u = spla.spsolve(_matrix(K), f) * (1 + 1e-4)
        kw["callback"](u)
        return u, 0

    monkeypatch.setattr(solvers.spla, "cg", stuck)
    with pytest.raises(ConvergenceError, match="CG stagnated .* raising maxiter will not help") as e:
        box_model().solve(solver="amg", rtol=1e-8)
    assert "raise solver.maxiter" not in str(e.value)


def test_cg_iteration_limit_advises_maxiter():
    with pytest.raises(ConvergenceError, match="iteration limit maxiter = 2 was reached: raise solver.maxiter"):
        box_model(shape=(12, 9, 6)).solve(solver="amg", rtol=1e-12, maxiter=2)


@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_a_start_that_solves_the_model_is_the_solution_and_a_near_one_saves_cg(solver):
    model = box_model(shape=(16, 12, 8))          # two AMG levels
    ref = model.solve(solver=solver)
    assert not ref.info["start_accepted"]
    same = model.solve(solver=solver, start=(ref.displacement, np.zeros((0, 6))))
    assert same.info["start_accepted"] and same.info["iterations"] == 0
    assert np.array_equal(same.displacement, ref.displacement)
    near = model.solve(solver=solver, start=(1.01 * ref.displacement, np.zeros((0, 6))))
    assert not near.info["start_accepted"]
    assert np.allclose(near.displacement, ref.displacement, rtol=0, atol=1e-6 * np.abs(ref.displacement).max())
    if solver == "amg":
        assert 0 < near.info["iterations"] < ref.info["iterations"]


@pytest.mark.parametrize("start", [(np.zeros((2, 3)), np.zeros((0, 6))), "u", (np.full((140, 3), np.nan), np.zeros((0, 6)))])
def test_a_start_of_another_shape_is_an_input_error_naming_it(start):
    with pytest.raises(InputError, match=r"start = .*expected None or \(displacement"):
        box_model().solve(start=start)
