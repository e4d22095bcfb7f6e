"""Validation targets 1, 2 and 4 of the project's reference list (docs/validation.md).

1. Homogeneous prism 40 x 30 x 25 mm, E = 100 MPa, nu = 0.2, between rigid platens that do not
   restrain lateral expansion, 500 N: axial stiffness E A / h = 4800 N/mm, uniform axial stress
   500 / 1200 = 0.417 MPa (tolerance 1 %).
2. Density-modulus law (Morgan et al. 2003, vertebra): tested in ``tests/test_materials.py``
   (``test_validation_target_2_morgan_vertebra``); here only its use by a meshed segment.
4. Cortical shell share of the axial load at mid-height of an osteoporotic L1 loaded through its discs:
   about 41 +/- 7 % (Fields et al. 2012). Computed by :func:`vertebrafe.validation.disc_loaded_body` on a
   coarse (4 mm) mesh; the study at 4, 3 and 2 mm is ``benchmarks/validation_anatomy.py``.
"""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.anatomy import segment
from vertebrafe.materials import MaterialSet, cancellous_modulus
from vertebrafe.validation import disc_loaded_body, shell_load_share

PRISM = (40.0, 30.0, 25.0)
E_PRISM, NU_PRISM, LOAD = 100.0, 0.2, 500.0
AREA = PRISM[0] * PRISM[1]
K_EXPECTED = E_PRISM * AREA / PRISM[2]                    # 4800 N/mm
S_EXPECTED = LOAD / AREA                                  # 0.4167 MPa


def _prism_model(shape=(4, 3, 3)):
    """Prism on a frictionless bottom platen: bottom nodes fixed in z only; the lateral rigid-body
    motions are removed by two bottom corners (x and y at the origin corner, y at the +x corner), which
    carry no force in a homogeneous solution."""
    mesh = vf.box(PRISM, shape)
    model = vf.Model(mesh, E=E_PRISM, nu=NU_PRISM)
    bottom = mesh.node_sets["zmin"]
    model.fix(bottom, "z")
    p = mesh.points
    corner0 = np.flatnonzero(np.all(np.isclose(p, [0.0, 0.0, 0.0]), axis=1))
    corner1 = np.flatnonzero(np.all(np.isclose(p, [PRISM[0], 0.0, 0.0]), axis=1))
    model.fix(corner0, "xy")
    model.fix(corner1, "y")
    return mesh, model


def test_target1_prism_stiffness_displacement_control():
    """Top platen: prescribed uz only (free laterally); stiffness from the total top reaction."""
    mesh, model = _prism_model()
    d = 0.1
    top = mesh.node_sets["zmax"]
    model.prescribe(top, "z", -d)
    sol = model.solve(solver="direct")
    F = sol.reaction(top)
    k = -F[2] / d
    assert k == pytest.approx(K_EXPECTED, rel=0.01)
    assert k == pytest.approx(K_EXPECTED, rel=1e-6)          # exact for a homogeneous field
    s = sol.cell_stress
    np.testing.assert_allclose(s[:, 2], -E_PRISM * d / PRISM[2], rtol=1e-6)
    assert np.abs(s[:, [0, 1, 3, 4, 5]]).max() < 1e-6 * E_PRISM * d / PRISM[2]
    # free lateral expansion: ux = nu * eps * x at the top
    u = sol.displacement[top]
    np.testing.assert_allclose(u[:, 0], NU_PRISM * d / PRISM[2] * mesh.points[top, 0], atol=1e-9)


def test_target1_prism_stress_force_control():
    """500 N as a uniform pressure on the top face: uniform stress 0.417 MPa, top displacement 500/4800."""
    mesh, model = _prism_model()
    model.add_pressure(mesh.face_sets["zmax"], S_EXPECTED)
    sol = model.solve(solver="direct")
    s = sol.cell_stress
    assert -s[:, 2].mean() == pytest.approx(0.417, rel=0.01)
    np.testing.assert_allclose(-s[:, 2], S_EXPECTED, rtol=1e-6)
    top = mesh.node_sets["zmax"]
    uz = -sol.displacement[top, 2]
    np.testing.assert_allclose(uz, LOAD / K_EXPECTED, rtol=1e-6)
    assert LOAD / uz.mean() == pytest.approx(4800.0, rel=0.01)
    np.testing.assert_allclose(sol.reaction(mesh.node_sets["zmin"])[2], LOAD, rtol=1e-9)


def test_target2_density_modulus_law_reaches_the_mesh():
    """Target 2 itself is ``tests/test_materials.py::test_validation_target_2_morgan_vertebra``; here: the
    cancellous cells of a segment carry exactly that modulus (rho_app 0.133 / 0.200 -> 204 / 384 MPa)."""
    assert cancellous_modulus(apparent_density=0.2) == pytest.approx(384.0, rel=0.01)
    seg = segment(["L1"], bmd=80.0, element_size=4.0)
    E = seg.mesh.cell_data["modulus"][seg.mesh.cells_in("region", "cancellous")]
    np.testing.assert_allclose(E, MaterialSet(bmd=80.0).cancellous_E, rtol=1e-9)
    assert E[0] == pytest.approx(204.0, rel=0.01)


@pytest.fixture(scope="module")
def disc_loaded():
    return disc_loaded_body("L1", bmd=70.0, element_size=4.0)


def test_target4_shell_share_at_mid_height(disc_loaded):
    share = disc_loaded["share"]
    # Fields et al. 2012: 41 +/- 7 % (documented band; see docs/validation.md)
    assert 0.34 <= share["shell_share"] <= 0.48, share
    # the section integral balances the applied axial force (1 % of it)
    assert share["total_force"] == pytest.approx(share["applied_force"], rel=0.01)


def test_shell_share_of_a_homogeneous_prism_is_its_area_fraction():
    """Plane-cut check of :func:`shell_load_share` on a case with a closed form: a uniform column whose
    outer ring of cells is tagged cortex carries that ring's area fraction of the load."""
    mesh = vf.box((10.0, 10.0, 10.0), (5, 5, 4))
    c = mesh.cell_centers()
    ring = (np.abs(c[:, 0] - 5) > 3.9) | (np.abs(c[:, 1] - 5) > 3.9)
    mesh.cell_data["region"] = np.where(ring, 1, 3)
    mesh.tag_names["region"] = {1: "cortex", 3: "cancellous"}
    model = vf.Model(mesh, E=50.0, nu=0.0)
    model.fix(mesh.node_sets["zmin"], "z")
    model.fix(np.array([0]), "xy")
    model.fix(np.array([5]), "y")
    model.prescribe(mesh.node_sets["zmax"], "z", -0.1)
    sol = model.solve(solver="direct")
    layer = (c[:, 2] > 5.0) & (c[:, 2] < 7.5)
    out = shell_load_share(mesh, sol.cell_stress, layer, ring)
    assert out["shell_share"] == pytest.approx(16 / 25, rel=1e-9)
    assert out["total_force"] == pytest.approx(50.0 * 0.01 * 100.0, rel=1e-9)
