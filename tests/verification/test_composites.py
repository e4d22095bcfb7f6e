"""Two materials in series (Reuss) and in parallel (Voigt), exact with nu = 0.

Series: layers stacked along z (E1 over height h1, E2 over h2), bottom on rollers, top moved by
uz = -d, lateral faces free. The stress is uniaxial and equal in both layers, the strains are
sigma / E_i: the top reaction is F = A d / (h1 / E1 + h2 / E2) (Reuss).
Parallel: the two materials side by side along x (widths w1, w2), same loading: the strain is uniform,
the stresses are E_i d / h: F = (E1 w1 + E2 w2) ly d / h (Voigt).

Why nu = 0 makes these exact: with nu != 0 the layers want different lateral contractions
(nu_i sigma / E_i in series, nu_i eps in parallel) but are bonded at the interface, which adds
interface stresses and 3D fields, so the 1D formulas become bounds only. With nu = 0 the lateral
strains vanish, the exact field is piecewise linear in z (series) or linear (parallel), both lie in the
trilinear space of a mesh whose element faces follow the interface, so the FE answer equals the formula
to round-off — even with interior nodes moved, as long as the interface stays a plane.
"""
import numpy as np
import pytest

from vf_helpers import Model, grid, jacobian_dets, perturb

E1, E2 = 300.0, 1700.0
D = 0.02


def _support_bottom(model, g):
    """Rollers under the bottom plus the in-plane rigid motions removed at two bottom corners."""
    nx, ny, _ = g.shape
    model.fix(g.node_sets["zmin"], "z")
    model.fix(np.array([g.node(0, 0, 0)]), "xy")
    model.fix(np.array([g.node(nx, 0, 0)]), "y")


@pytest.mark.parametrize("formulation", ["full", "bbar", "incompatible"])
def test_series_reuss(formulation):
    lx, ly, h = 6.0, 5.0, 8.0
    nz1, nz2 = 3, 5                    # layer 1: 3 cells of 1 mm; layer 2: 5 cells of 1 mm
    h1, h2 = 3.0, 5.0
    g = grid((4, 3, nz1 + nz2), lengths=(lx, ly, h))
    perturb(g, 0.25, seed=5, axes=(1, 1, 0))   # in-plane only: the z-planes (and the interface) stay flat
    assert jacobian_dets(g.points, g.cells)[0].min() > 0
    E = np.where(g.cell_ijk[:, 2] < nz1, E1, E2)
    model = Model(g.mesh(), E=E, nu=0.0, formulation=formulation)
    _support_bottom(model, g)
    model.prescribe(g.node_sets["zmax"], "z", -D)
    sol = model.solve(solver="direct")

    F = lx * ly * D / (h1 / E1 + h2 / E2)
    R_top = sol.reaction(g.node_sets["zmax"])
    rel = abs(R_top[2] + F) / F
    print(f"series {formulation}: R {R_top[2]:.15g}, Reuss {-F:.15g}, rel err {rel:.2e}")
    assert rel < 1e-10
    sigma = -F / (lx * ly)
    assert np.abs(sol.stress[..., 2] - sigma).max() / abs(sigma) < 1e-10
    eps_zz = sol.cell_strain[:, 2]
    np.testing.assert_allclose(eps_zz, sigma / E, rtol=1e-10)
    # Conservation: bottom and top reactions cancel.
    R_bottom = sol.reaction(g.node_sets["zmin"])
    assert np.abs(R_top + R_bottom).max() / F < 1e-10


@pytest.mark.parametrize("formulation", ["full", "bbar", "incompatible"])
def test_parallel_voigt(formulation):
    lx, ly, h = 6.0, 5.0, 8.0
    nx1, nx2 = 2, 4                    # material 1 for x < 2 mm, material 2 for 2 < x < 6 mm
    w1, w2 = 2.0, 4.0
    g = grid((nx1 + nx2, 3, 4), lengths=(lx, ly, h))
    on_interface = g.ijk[:, 0] == nx1
    keep = np.zeros_like(g.points, dtype=bool)
    keep[on_interface, 0] = True       # interface nodes move only within the plane x = w1
    perturb(g, 0.25, seed=6, keep=keep)
    assert jacobian_dets(g.points, g.cells)[0].min() > 0
    E = np.where(g.cell_ijk[:, 0] < nx1, E1, E2)
    model = Model(g.mesh(), E=E, nu=0.0, formulation=formulation)
    _support_bottom(model, g)
    model.prescribe(g.node_sets["zmax"], "z", -D)
    sol = model.solve(solver="direct")

    F = (E1 * w1 + E2 * w2) * ly * D / h
    R_top = sol.reaction(g.node_sets["zmax"])
    rel = abs(R_top[2] + F) / F
    print(f"parallel {formulation}: R {R_top[2]:.15g}, Voigt {-F:.15g}, rel err {rel:.2e}")
    assert rel < 1e-10
    np.testing.assert_allclose(sol.cell_stress[:, 2], -E * D / h, rtol=1e-10)
    np.testing.assert_allclose(sol.strain[..., 2], -D / h, rtol=1e-10)
    R_bottom = sol.reaction(g.node_sets["zmin"])
    assert np.abs(R_top + R_bottom).max() / F < 1e-10


def test_nonzero_nu_is_bounded_not_exact():
    """With nu = 0.3 the series stack is stiffer than Reuss (interface constraint), so the formula is
    then a bound: the check above is exact only because nu = 0."""
    g = grid((4, 4, 8), lengths=(6.0, 6.0, 8.0))
    E = np.where(g.cell_ijk[:, 2] < 3, E1, E2)
    model = Model(g.mesh(), E=E, nu=0.3)
    _support_bottom(model, g)
    model.prescribe(g.node_sets["zmax"], "z", -D)
    R = -model.solve(solver="direct").reaction(g.node_sets["zmax"])[2]
    F_reuss = 36.0 * D / (3.0 / E1 + 5.0 / E2)
    print(f"nu = 0.3 series: R {R:.6g}, Reuss {F_reuss:.6g}, ratio {R / F_reuss:.5f}")
    assert R > F_reuss * (1 + 1e-4)
