"""First yield of cut cells (vertebrafe.clinical.firstyield): closed forms of two-phase laminates and the
field the augmentations write.

* Layers across the load (normal along z, nu = 0): the stress is the same in both phases, the bone strains
  by sigma / E_b while the cell strains by sigma (f_b / E_b + f_c / E_c), so the cell yields with the bone at
  the fraction ``f_b + f_c E_b / E_c`` of the bone yield strain.
* Layers along the load (normal along x): the phases strain alike, the factor is 1 (bone yields first).
* One phase: that phase's yield strain over the bone's.
"""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, vertebroplasty
from vertebrafe.clinical.firstyield import cut_yield_factor, phase_strains
from vertebrafe.elasticity import isotropic, laminate
from vertebrafe.post.pushover import CEMENT_STRENGTH

EB, EC, YC, YT = 200.0, 3000.0, 0.0077, 0.0070


def _factor(f_c, normal, nu=0.0):
    phases = np.stack([isotropic(EB, nu)[None], isotropic(EC, nu)[None]])
    y_c = CEMENT_STRENGTH / EC
    return cut_yield_factor(phases, np.array([[1.0 - f_c], [f_c]]), np.array([normal], float),
                            np.array([[YC], [y_c]]), np.array([[YT], [y_c]]), (YC, YT))[0]


@pytest.mark.parametrize("f_c", [0.1, 0.5, 0.9])
def test_series_and_parallel_closed_forms(f_c):
    assert _factor(f_c, (0, 0, 1)) == pytest.approx((1.0 - f_c) + f_c * EB / EC, rel=1e-12)
    assert _factor(f_c, (1, 0, 0)) == pytest.approx(1.0, rel=1e-12)
    # any normal: between the two
    assert (1.0 - f_c) + f_c * EB / EC < _factor(f_c, (0.4, 0.3, 1.0), nu=0.3) < 1.0
    assert _factor(1.0, (0, 0, 1)) == pytest.approx(CEMENT_STRENGTH / EC / YC, rel=1e-12)


def test_phase_strains_average_to_the_cell_and_share_the_traction():
    rng = np.random.default_rng(3)
    n = rng.normal(size=(4, 3))
    f = np.array([[0.2, 0.5, 0.7, 0.9], [0.8, 0.5, 0.3, 0.1]])
    phases = np.stack([np.broadcast_to(isotropic(EB, 0.2), (4, 6, 6)), np.broadcast_to(isotropic(EC, 0.35), (4, 6, 6))])
    C = laminate(phases, f, n)
    e = rng.normal(size=(4, 6)) * 1e-3
    eps = phase_strains(phases, f, n, e)
    mean = np.einsum("pk,pkij->kij", f, eps)
    voigt = np.stack([mean[:, 0, 0], mean[:, 1, 1], mean[:, 2, 2], 2 * mean[:, 0, 1], 2 * mean[:, 1, 2],
                      2 * mean[:, 0, 2]], axis=1)
    np.testing.assert_allclose(voigt, e, atol=1e-15)
    # tractions on the layer plane agree, and the mean stress is the laminate's
    from vertebrafe.elasticity import stiffness_tensor
    sig = np.einsum("pkijml,pkml->pkij", stiffness_tensor(phases), eps)
    nn = n / np.linalg.norm(n, axis=1, keepdims=True)
    t = np.einsum("pkij,kj->pki", sig, nn)
    np.testing.assert_allclose(t[0], t[1], atol=1e-12)
    s_mean = np.einsum("pk,pkij->kij", f, sig)
    s_lam = np.einsum("kij,kj->ki", C, e)
    np.testing.assert_allclose(np.stack([s_mean[:, 0, 0], s_mean[:, 1, 1], s_mean[:, 2, 2], s_mean[:, 0, 1],
                                         s_mean[:, 1, 2], s_mean[:, 0, 2]], axis=1), s_lam, atol=1e-10)


@pytest.mark.parametrize("surface", ["mixed", "fitted"])
def test_vertebroplasty_writes_the_first_yield_of_its_cells(surface):
    seg = fracture(vf.segment("L1", bmd=80.0, element_size=6.0), "L1", kind="wedge", grade=2)
    vp = vertebroplasty(seg, "L1", fill=0.3, surface=surface)
    f = vp.mesh.cell_data["cement_fraction"]
    yf, yf0 = vp.mesh.cell_data["yield_factor"], seg.mesh.cell_data["yield_factor"]
    assert np.array_equal(yf[f == 0], yf0[f == 0])
    E_comp = vp.materials.cement_bone().E
    pure = f >= 1.0
    assert pure.any()
    np.testing.assert_allclose(yf[pure], CEMENT_STRENGTH / E_comp / vp.materials.yield_strain_compression, rtol=1e-9)
    cut = (f > 0) & (f < 1)
    if surface == "fitted":                   # no cut cell: every cell is bone (unchanged) or composite
        assert not cut.any()
        return
    # a cut cell yields with its bone: never later than its bone alone (yield factor of the host at most)
    assert cut.any() and np.all(yf[cut] <= yf0[cut] * (1 + 1e-9))
