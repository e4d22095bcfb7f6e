"""Manufactured solution with a body force: observed convergence rates of hex8.

Exact field: a sum of three plane waves u(x) = sum_w a_w sin(k_w . x + phi_w) on the box
[0, 1.2] x [0, 1] x [0, 0.9] mm. For any constant C the stress is
sigma_ij = sum_w C_ijkl a_k k_l cos(theta_w), so the body force that balances it is, exactly,
b = -div sigma = sum_w sin(theta_w) Gamma(k_w) a_w with the acoustic tensor
Gamma_ik(k) = C_ijkl k_j k_l. The exact u is prescribed at every boundary node; the body force is given
to the model as a callable. The derivation is checked against central differences of the stress in
``test_body_force_is_minus_div_sigma``.

Errors: L2 of the displacement (3x3x3 Gauss rule per cell, mesh shape functions) and the energy norm
of the strain error at the element Gauss points (where ``sol.strain`` lives), both relative to the
norms of the exact field. Expected rates for trilinear hex8: 2 and 1.
"""
import numpy as np
import pytest

from vertebrafe.elements import HEX8, gauss_legendre_hex, hex8_shape, hex8_shape_gradients
from vertebrafe.elasticity import isotropic, orthotropic

from vf_helpers import Model, engineering, grid, voigt_strain, voigt_to_tensor

LENGTHS = (1.2, 1.0, 0.9)
WAVES = [
    (np.pi * np.array([1.0, 0.5, 0.3]), np.array([0.010, -0.004, 0.006]), 0.3),
    (np.pi * np.array([-0.4, 0.8, 0.6]), np.array([0.003, 0.008, -0.005]), 1.1),
    (np.pi * np.array([0.2, -0.3, 0.9]), np.array([-0.004, 0.002, 0.009]), -0.7),
]

MATERIALS = {
    "isotropic": isotropic(1000.0, 0.3),
    "orthotropic": orthotropic(Ex=800.0, Ey=1200.0, Ez=2500.0, nu_xy=0.2, nu_yz=0.25, nu_xz=0.3,
                               Gxy=300.0, Gyz=500.0, Gxz=450.0),
}


def exact_u(x):
    """Displacement ``(p, 3)`` mm at points ``x (p, 3)``."""
    return sum(a[None, :] * np.sin(x @ k + phi)[:, None] for k, a, phi in WAVES)


def exact_grad(x):
    """Displacement gradient ``(p, 3, 3)``, [i, j] = du_i/dx_j."""
    return sum(np.cos(x @ k + phi)[:, None, None] * np.outer(a, k)[None] for k, a, phi in WAVES)


def body_force(C):
    """b(x) = -div(C : eps(u)) ``(p, 3)`` N/mm^3 for the stiffness C ``(6, 6)``."""
    T = voigt_to_tensor(C)
    terms = [(k, np.einsum("ijkl,j,l,k->i", T, k, k, a), phi) for k, a, phi in WAVES]

    def b(x):
        x = np.atleast_2d(x)
        return sum(ga[None, :] * np.sin(x @ k + phi)[:, None] for k, ga, phi in terms)

    return b


def _stress(C, x):
    eps = engineering(voigt_strain(exact_grad(x)))
    s = eps @ C.T
    S = np.empty((len(x), 3, 3))
    S[:, 0, 0], S[:, 1, 1], S[:, 2, 2] = s[:, 0], s[:, 1], s[:, 2]
    S[:, 0, 1] = S[:, 1, 0] = s[:, 3]
    S[:, 1, 2] = S[:, 2, 1] = s[:, 4]
    S[:, 0, 2] = S[:, 2, 0] = s[:, 5]
    return S


@pytest.mark.parametrize("material", list(MATERIALS))
def test_body_force_is_minus_div_sigma(material):
    """The analytic body force against a central-difference divergence of the exact stress."""
    C = MATERIALS[material]
    x = np.random.default_rng(0).uniform(0, 1, size=(20, 3))
    h = 1e-5
    div = np.zeros((len(x), 3))
    for j in range(3):
        d = np.zeros(3); d[j] = h
        div += (_stress(C, x + d)[:, :, j] - _stress(C, x - d)[:, :, j]) / (2 * h)
    np.testing.assert_allclose(body_force(C)(x), -div, rtol=0, atol=1e-6 * np.abs(div).max())


def mapped_grid(n, mapped):
    g = grid((n, n, n), lengths=LENGTHS)
    if mapped:  # a smooth, fixed mapping (not refined away): the asymptotic rates must survive it
        x, y, z = g.points.T
        g.points = np.stack([x + 0.06 * np.sin(np.pi * y) * np.sin(np.pi * z / 0.9),
                             y + 0.05 * np.sin(np.pi * x / 1.2) * np.sin(np.pi * z / 0.9),
                             z + 0.04 * np.sin(np.pi * x / 1.2) * np.sin(np.pi * y)], axis=1)
    return g


def solve_and_measure(n, C, formulation, mapped):
    g = mapped_grid(n, mapped)
    model = Model(g.mesh(), C=C, formulation=formulation)
    bnd = np.flatnonzero(g.boundary)
    ub = exact_u(g.points[bnd])
    for a, comp in enumerate("xyz"):
        model.prescribe(bnd, comp, ub[:, a])
    bf = body_force(C)
    model.add_body_force(bf)
    sol = model.solve(solver="direct")

    X = g.points[g.cells]                          # (m, 8, 3)
    # L2 displacement error, 3x3x3 Gauss per cell.
    xi, w = gauss_legendre_hex(3)
    N, dN = hex8_shape(xi), hex8_shape_gradients(xi)
    detJ = np.linalg.det(np.einsum("qak,mai->mqik", dN, X))
    xq = np.einsum("qa,mai->mqi", N, X).reshape(-1, 3)
    uh = np.einsum("qa,mai->mqi", N, sol.displacement[g.cells]).reshape(-1, 3)
    ue = exact_u(xq)
    dV = (detJ * w).ravel()
    l2 = np.sqrt((dV * ((uh - ue) ** 2).sum(1)).sum() / (dV * (ue ** 2).sum(1)).sum())

    # Energy norm of the strain error at the element's own Gauss points.
    el = HEX8
    detJ2 = np.linalg.det(np.einsum("qak,mai->mqik", el.gradients, X))
    xg = np.einsum("qa,mai->mqi", el.shape, X).reshape(-1, 3)
    eps_exact = voigt_strain(exact_grad(xg))
    eps_h = sol.strain.reshape(-1, 6)
    de = engineering(eps_h - eps_exact)
    ee = engineering(eps_exact)
    dV2 = (detJ2 * el.weights).ravel()
    energy = np.sqrt((dV2 * np.einsum("pi,ij,pj->p", de, C, de)).sum()
                     / (dV2 * np.einsum("pi,ij,pj->p", ee, C, ee)).sum())

    # Conservation: reactions balance the body force as integrated by the element rule.
    bq = bf(xg)
    b_total = (dV2[:, None] * bq).sum(axis=0)
    R = sol.reaction(bnd)
    cons = np.abs(R + b_total).max() / (dV2[:, None] * np.abs(bq)).sum(axis=0).max()
    return l2, energy, cons


CASES = [("isotropic", "bbar", False), ("isotropic", "full", True), ("orthotropic", "full", False),
         ("orthotropic", "bbar", True)]


@pytest.mark.parametrize("material,formulation,mapped", CASES)
def test_convergence_rates(material, formulation, mapped):
    C = MATERIALS[material]
    ns = [4, 8, 16]
    res = np.array([solve_and_measure(n, C, formulation, mapped) for n in ns])
    l2, en, cons = res.T
    rate_l2 = np.log2(l2[:-1] / l2[1:])
    rate_en = np.log2(en[:-1] / en[1:])
    print(f"{material} {formulation} mapped={mapped}: L2 {l2} rates {rate_l2}; "
          f"energy {en} rates {rate_en}; conservation {cons}")
    assert np.all(np.diff(l2) < 0) and np.all(np.diff(en) < 0)
    assert abs(rate_l2[-1] - 2.0) < 0.2, rate_l2
    assert abs(rate_en[-1] - 1.0) < 0.2, rate_en
    assert np.all(cons < 1e-8), cons
