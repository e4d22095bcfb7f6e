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

from vertebrafe.verification import (MANUFACTURED_CASES, MATERIALS, body_force, engineering, exact_grad,
                                     manufactured_errors, voigt_strain)


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


@pytest.mark.parametrize("material,formulation,mapped", MANUFACTURED_CASES)
def test_convergence_rates(material, formulation, mapped):
    C = MATERIALS[material]
    ns = [4, 8, 16]
    res = np.array([manufactured_errors(n, C, formulation, mapped) for n in ns])
    l2, en, cons = res.T
    rate_l2 = np.log2(l2[:-1] / l2[1:])
    rate_en = np.log2(en[:-1] / en[1:])
    print(f"{material} {formulation} mapped={mapped}: L2 {l2} rates {rate_l2}; "
          f"energy {en} rates {rate_en}; conservation {cons}")
    assert np.all(np.diff(l2) < 0) and np.all(np.diff(en) < 0)
    assert abs(rate_l2[-1] - 2.0) < 0.2, rate_l2
    assert abs(rate_en[-1] - 1.0) < 0.2, rate_en
    assert np.all(cons < 1e-8), cons
