"""Explicit compliant interface layer around a cement bolus: closed form, limits, monotone trends, input."""
from types import SimpleNamespace

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, history, vertebroplasty
from vertebrafe.clinical.augment import Sampler, layer_phases, mix_layered
from vertebrafe.elasticity import isotropic
from vertebrafe.errors import InputError
from vertebrafe.mesh.box import box
from vertebrafe.post.plate import plate_test
from vertebrafe.post.strength import vertebra_strength


@pytest.mark.parametrize("rule", ["laminate", "voigt"])
def test_layered_column_between_plates_is_the_series_stiffness(rule):
    """A 4 x 4 x 12 mm column of 2 mm cells: cement core below z = 3.5, a 1 mm layer up to z = 4.5, bone
    above (planes cut cells at sample planes). With nu = 0 the stress is uniaxial and uniform, so the plate
    stiffness is A / (3.5 / E_c + 1 / E_l + 7.5 / E_b) exactly; the laminate rule gives it, the Voigt rule
    is stiffer."""
    E_b, E_l, E_c = 60.0, 15.0, 3000.0
    mesh = box(lengths=(4.0, 4.0, 12.0), shape=(2, 2, 6))
    seg = SimpleNamespace(mesh=mesh, frames={"col": (np.eye(3), np.zeros(3))})
    sampler = Sampler(seg, "col", mesh.points, np.ones(mesh.n_cells, dtype=bool), 4)
    inside = sampler.x[..., 2] < 4.5
    core = sampler.x[..., 2] < 3.5
    f_c = sampler.fraction(inside)
    f_l, f_core = layer_phases(sampler, inside, core, f_c)
    assert np.isclose(np.sum(f_l * sampler.volume), 16.0) and np.isclose(np.sum(f_core * sampler.volume), 56.0)
    C, _ = mix_layered(np.broadcast_to(isotropic(E_b, 0.0), (mesh.n_cells, 6, 6)), isotropic(E_l, 0.0),
                    isotropic(E_c, 0.0), f_l, f_core, sampler.x, sampler.w, inside, core, np.eye(3), rule)
    k = plate_test(mesh, C, mesh.node_sets["zmin"], mesh.node_sets["zmax"], 0.01, solver="direct").stiffness
    exact = 16.0 / (3.5 / E_c + 1.0 / E_l + 7.5 / E_b)
    if rule == "laminate":
        assert k == pytest.approx(exact, rel=1e-8)
    else:
        assert k > 1.2 * exact


@pytest.fixture(scope="module")
def fractured():
    return fracture(vf.segment("L1", bmd=80.0, element_size=4.0), "L1", kind="wedge", grade=2)


def _k(seg):
    return vertebra_strength(seg, "L1", solver="direct").stiffness


def test_layer_lowers_stiffness_monotonically_and_meets_the_bonded_limit(fractured):
    """Softer or thicker layers lower the treated L1 plate stiffness; a layer with the composite's own
    modulus is the bonded bolus (same elasticity to round-off); the cement volume does not change."""
    bonded = vertebroplasty(fractured, "L1", fill=0.3)
    E_c = history(bonded)[-1].parameters["cement_E_MPa"]
    same = vertebroplasty(fractured, "L1", fill=0.3, interface="layer", layer_modulus=E_c)
    np.testing.assert_allclose(same.elasticity, bonded.elasticity, rtol=1e-9, atol=1e-9 * E_c)
    k_b = _k(bonded)
    k = {(t, E): _k(vertebroplasty(fractured, "L1", fill=0.3, interface="layer", layer_thickness=t, layer_modulus=E))
         for t, E in ((0.5, 500.0), (0.5, 50.0), (1.0, 50.0), (1.0, 10.0))}
    assert k_b > k[0.5, 500.0] > k[0.5, 50.0] > k[1.0, 50.0] > k[1.0, 10.0]
    assert k[1.0, 10.0] > 0.5 * k_b
    layered = vertebroplasty(fractured, "L1", fill=0.3, interface="layer")
    r, p = history(layered)[-1].results, history(layered)[-1].parameters
    assert p["layer_thickness_mm"] == 0.5 and p["layer_E_MPa"] == pytest.approx(500.0)
    assert r["cement_volume_mL"] == pytest.approx(history(bonded)[-1].results["cement_volume_mL"], rel=1e-12)
    assert 0.0 < r["layer_volume_mL"] < r["cement_volume_mL"]
    f_l = layered.mesh.cell_data["interface_fraction"]
    assert np.all(f_l <= layered.mesh.cell_data["cement_fraction"] + 1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(interface="layer", layer_thickness=0.0), r"layer_thickness = 0.0 mm is out of range; allowed \[0.05, 5\] mm"),
    (dict(interface="layer", layer_modulus=0.5), r"layer_modulus = 0.5 MPa is out of range; allowed \[1, 20000\] MPa"),
    (dict(interface="layer", layer_modulus="soft"), r"layer_modulus = 'soft'; expected a number in \[1, 20000\] MPa"),
    (dict(layer_thickness=0.5), r"layer_thickness = 0.5 needs interface = 'layer' \(interface = 'bonded'\)"),
    (dict(interface="layer", mixing="hashin-shtrikman"), r"mixing = 'hashin-shtrikman' with interface = 'layer'"),
    (dict(interface="glue"), r"interface = 'glue'; allowed: \['bonded', 'frictional', 'layer'\]"),
])
def test_bad_layer_input(fractured, kwargs, match):
    with pytest.raises(InputError, match=match):
        vertebroplasty(fractured, "L1", fill=0.3, **kwargs)
