"""Explicit compliant interface layer around a cement bolus (vertebroplasty) and between the PMMA bolus and the
compacted rim (kyphoplasty): closed form, limits, monotone trends, layer volume, input."""
from types import SimpleNamespace

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, history, kyphoplasty, vertebroplasty
from vertebrafe.clinical.augment import Sampler, body_frame_sizes, bolus_geometry, layer_phases, mix_layered
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
    layered = vertebroplasty(fractured, "L1", fill=0.3, interface="layer")      # the default layer
    r, p = history(layered)[-1].results, history(layered)[-1].parameters
    assert p["layer_thickness_mm"] == 0.5 and p["layer_E_MPa"] == pytest.approx(500.0)
    k_b = _k(bonded)
    k = {(t, E): _k(vertebroplasty(fractured, "L1", fill=0.3, interface="layer", layer_thickness=t, layer_modulus=E))
         for t, E in ((0.5, 50.0), (1.0, 50.0), (1.0, 10.0))}
    k[0.5, 500.0] = _k(layered)
    assert k_b > k[0.5, 500.0] > k[0.5, 50.0] > k[1.0, 50.0] > k[1.0, 10.0]
    assert k[1.0, 10.0] > 0.5 * k_b
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


def test_kyphoplasty_layer_lowers_stiffness_monotonically(fractured):
    """Balloon kyphoplasty (default: restoration 0.5, 4.8 mL, endplate contact): the L1 plate stiffness falls
    monotonically as the layer gets softer (bonded, 500 MPa (the default), 100 MPa); the cavity, cement and
    rim volumes, the rim's modulus and the contact faces do not change."""
    bonded = kyphoplasty(fractured, "L1")
    rb = history(bonded)[-1]
    layered = kyphoplasty(fractured, "L1", interface="layer")
    r, p = history(layered)[-1].results, history(layered)[-1].parameters
    assert p["interface"] == "layer" and p["layer_thickness_mm"] == 0.5 and p["layer_E_MPa"] == pytest.approx(500.0)
    for key in ("cement_volume_mL", "rim_volume_mL", "rim_modulus_factor", "contact_area_mm2"):
        assert r[key] == pytest.approx(rb.results[key], rel=1e-12)
    assert rb.results["layer_volume_mL"] == 0.0 and 0.0 < r["layer_volume_mL"] < r["cement_volume_mL"]
    f_l = layered.mesh.cell_data["interface_fraction"]
    assert np.all(f_l <= layered.mesh.cell_data["cement_fraction"] + 1e-12)
    assert "interface_fraction" not in bonded.mesh.cell_data
    k_b, k_100 = _k(bonded), _k(kyphoplasty(fractured, "L1", interface="layer", layer_modulus=100.0))
    assert k_b > _k(layered) > k_100 > 0.5 * k_b


def test_kyphoplasty_layer_meets_the_bonded_limits(fractured):
    """Without restoration (cavity in the central 70 % of the height): a layer with the PMMA's own modulus is
    the bonded bolus (elasticity to round-off); as the layer thins the stiffness returns to the bonded one
    with a deficit proportional to the thickness (a thin layer in series adds compliance t / E, so
    k_b / k - 1 is linear in t and the deficit 1 - k / k_b of 0.05 mm is 0.10-0.11 of that of 0.5 mm;
    bound [0.07, 0.15] for the sampling of a 0.05 mm layer with 1 mm between samples)."""
    bonded = kyphoplasty(fractured, "L1", restoration=0.0)
    E_c = history(bonded)[-1].parameters["cement_E_MPa"]
    same = kyphoplasty(fractured, "L1", restoration=0.0, interface="layer", layer_modulus=E_c)
    np.testing.assert_allclose(same.elasticity, bonded.elasticity, rtol=1e-9, atol=1e-9 * E_c)
    k_b = _k(bonded)
    k = {t: _k(kyphoplasty(fractured, "L1", restoration=0.0, interface="layer", layer_thickness=t, layer_modulus=100.0))
         for t in (0.05, 0.5)}
    assert k_b > k[0.05] > k[0.5]
    assert 0.07 < (1.0 - k[0.05] / k_b) / (1.0 - k[0.5] / k_b) < 0.15


def _ellipsoid_area(a, n=64):
    """Surface area (mm^2) of the ellipsoid with semi-axes ``a (3,)`` (Gauss-Legendre in cos theta, the
    trapezoidal rule in phi; spectrally accurate: a unit sphere gives 4 pi to 1e-15)."""
    u, wu = np.polynomial.legendre.leggauss(n)
    phi = np.linspace(0.0, 2.0 * np.pi, 2 * n, endpoint=False)
    U, P = np.meshgrid(u, phi)
    s = np.sqrt(1.0 - U ** 2)
    g = np.sqrt((a[1] * a[2] * s * np.cos(P)) ** 2 + (a[0] * a[2] * s * np.sin(P)) ** 2 + (a[0] * a[1] * U) ** 2)
    return float(np.sum(g * wu) * np.pi / n)


@pytest.mark.parametrize("t", [0.5, 1.0])
def test_kyphoplasty_layer_volume_is_thickness_times_bolus_area(fractured, t):
    """Without restoration (no endplate contact) 2 mL in two balloons are two whole ellipsoids (checked:
    cavity = sum 4/3 pi abc to 0.5 %). The sampled layer volume V must be (i) the exact volume of the
    construction, sum 4/3 pi (abc - (a - t)(b - t)(c - t)), within 3 sigma of the sampling error of a
    volume counted by sub-cell samples of spacing d = h / samples (about d^2 sqrt(S), the samples' volume
    d^3 times the root of the number of samples in a d-thick band of the surface S; 0.5 mm spacing here),
    and (ii) thickness x bolus surface area t S up to the curvature term of a shell (V = t S - t^2 int H dA
    + ...; for these axes t (a + b + c) / (ab + bc + ca), 7 % at 0.5 mm) and the same sampling error."""
    seg = kyphoplasty(fractured, "L1", restoration=0.0, volume=2.0, interface="layer", layer_thickness=t,
                      samples=8)
    r = history(seg)[-1].results
    W, D, H, zc, yc = body_frame_sizes(seg, "L1", seg.mesh.points)
    axes = bolus_geometry("balloon2", W, D, H, zc, yc)[2] * r["balloon_scale"]
    cavity = r["cement_volume_mL"] * 1000.0
    assert cavity == pytest.approx(sum(4.0 / 3.0 * np.pi * np.prod(a) for a in axes), rel=5e-3)
    V = r["layer_volume_mL"] * 1000.0
    S = sum(_ellipsoid_area(a) for a in axes)
    sigma = (4.0 / 8) ** 2 * np.sqrt(S)
    shell = sum(4.0 / 3.0 * np.pi * (np.prod(a) - np.prod(a - t)) for a in axes)
    assert abs(V - shell) < 3.0 * sigma
    curvature = max(np.sum(a) / (a[0] * a[1] + a[1] * a[2] + a[2] * a[0]) for a in axes)
    assert abs(V - t * S) < t * t * S * curvature + 3.0 * sigma


@pytest.mark.parametrize("kwargs, match", [
    (dict(interface="layer", layer_thickness=6.0), r"layer_thickness = 6.0 mm is out of range; allowed \[0.05, 5\] mm"),
    (dict(interface="layer", layer_modulus=0.0), r"layer_modulus = 0.0 MPa is out of range; allowed \[1, 20000\] MPa"),
    (dict(layer_modulus=100.0), r"layer_modulus = 100.0 needs interface = 'layer' \(interface = 'bonded'\)"),
    (dict(interface="frictional"), r"interface = 'frictional'; allowed: \['bonded', 'layer'\]"),
])
def test_bad_kyphoplasty_layer_input(fractured, kwargs, match):
    with pytest.raises(InputError, match=match):
        kyphoplasty(fractured, "L1", **kwargs)
