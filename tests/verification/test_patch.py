"""Patch tests on randomly distorted hex8 meshes.

A linear displacement field u = A x + b lies in the trilinear space on any mesh, so prescribing it on
the boundary must reproduce it in the interior to round-off, with the constant strain sym(A) and the
stress C : sym(A) at every Gauss point, for both formulations and for any (anisotropic) C. The
force-driven variant loads the box faces with the tractions of a constant stress state and holds it by
three-two-one supports that remove the rigid motions only; the stress must come out uniform.
"""
import numpy as np
import pytest

from vertebrafe.elasticity import isotropic, orthotropic

from vf_helpers import Model, engineering, grid, jacobian_dets, perturb, voigt_strain

A = np.array([[0.011, -0.004, 0.007],
              [0.003, -0.008, 0.005],
              [-0.006, 0.009, 0.013]])
b = np.array([0.02, -0.03, 0.01])

MATERIALS = {
    "isotropic": isotropic(1500.0, 0.3),
    "orthotropic": orthotropic(Ex=800.0, Ey=1200.0, Ez=2500.0, nu_xy=0.2, nu_yz=0.25, nu_xz=0.3,
                               Gxy=300.0, Gyz=500.0, Gxz=450.0),
    "near_incompressible": isotropic(10.0, 0.4999),
}


def _general_anisotropic():
    """A fully populated symmetric positive-definite C (MPa), no material symmetry."""
    rng = np.random.default_rng(7)
    M = rng.normal(size=(6, 6))
    return 200.0 * (M @ M.T) + 500.0 * np.eye(6)


MATERIALS["anisotropic"] = _general_anisotropic()


def distorted_cube(n=4, amount=0.25, seed=1, boundary_too=True):
    """Unit-ish box 2 x 3 x 1.5 mm of n^3 cells with perturbed nodes (all nodes when boundary_too)."""
    g = grid((n, n, n), lengths=(2.0, 3.0, 1.5), origin=(-0.5, 0.2, 1.0))
    which = np.ones(len(g.points), bool) if boundary_too else None
    perturb(g, amount, seed=seed, which=which)
    detJ, *_ = jacobian_dets(g.points, g.cells)
    assert detJ.min() > 0.0
    return g


@pytest.mark.parametrize("formulation", ["full", "bbar", "incompatible"])
@pytest.mark.parametrize("material", list(MATERIALS))
def test_displacement_patch(formulation, material):
    g = distorted_cube()
    C = MATERIALS[material]
    model = Model(g.mesh(), C=C, formulation=formulation)
    u_exact = g.points @ A.T + b
    bnd = np.flatnonzero(g.boundary)
    for a, comp in enumerate("xyz"):
        model.prescribe(bnd, comp, u_exact[bnd, a])
    sol = model.solve(solver="direct")

    scale = np.abs(u_exact).max()
    interior = ~g.boundary
    assert interior.sum() == 27
    err = np.abs(sol.displacement - u_exact).max() / scale
    assert err < 1e-10, err

    eps = voigt_strain(A)
    sig = C @ engineering(eps)
    q = sol.strain.shape[1]
    assert sol.strain.shape == (g.cells.shape[0], q, 6) and sol.stress.shape == sol.strain.shape
    assert np.abs(sol.strain - eps).max() / np.abs(eps).max() < 1e-9
    assert np.abs(sol.stress - sig).max() / np.abs(sig).max() < 1e-9
    assert np.abs(sol.cell_stress - sig).max() / np.abs(sig).max() < 1e-9

    # Equilibrium: no applied loads, so the boundary reactions must sum to zero and their moment too.
    R = sol.reaction(bnd)
    F_scale = np.abs(sig).max() * 3.0 * 2.0  # stress times the largest face area
    assert np.abs(R).max() / F_scale < 1e-8


def _three_two_one(g):
    """Supports that remove the six rigid motions only: corner A (xyz), B along x (yz), C along y (z)."""
    nx, ny, _ = g.shape
    return [(g.node(0, 0, 0), "xyz"), (g.node(nx, 0, 0), "yz"), (g.node(0, ny, 0), "z")]


NORMALS = {"xmin": (-1, 0, 0), "xmax": (1, 0, 0), "ymin": (0, -1, 0), "ymax": (0, 1, 0),
           "zmin": (0, 0, -1), "zmax": (0, 0, 1)}


@pytest.mark.parametrize("formulation", ["full", "bbar", "incompatible"])
def test_pressure_patch(formulation):
    """Equal pressures on the top and bottom faces: sigma_zz = -p everywhere, all else zero."""
    g = perturb(grid((4, 4, 4), lengths=(2.0, 3.0, 1.5)), 0.25, seed=3)
    p = 2.5
    model = Model(g.mesh(), E=1500.0, nu=0.3, formulation=formulation)
    for node, dofs in _three_two_one(g):
        model.fix(np.array([node]), dofs)
    model.add_pressure(g.face_sets["zmax"], p)
    model.add_pressure(g.face_sets["zmin"], p)
    sol = model.solve(solver="direct")
    expected = np.array([0, 0, -p, 0, 0, 0.0])
    assert np.abs(sol.stress - expected).max() / p < 1e-9
    # The supports carry nothing: the load is self-equilibrated.
    supports = np.array([n for n, _ in _three_two_one(g)])
    assert np.abs(sol.reaction(supports)).max() / (p * 6.0) < 1e-9
    # The strain is uniaxial stress: eps_zz = -p/E, lateral = nu p / E.
    eps = sol.strain
    assert np.allclose(eps[..., 2], -p / 1500.0, rtol=1e-9, atol=0)
    assert np.allclose(eps[..., 0], 0.3 * p / 1500.0, rtol=1e-9, atol=0)


@pytest.mark.parametrize("formulation", ["full", "bbar", "incompatible"])
def test_traction_patch_general_stress(formulation):
    """Tractions t = sigma n of a full constant stress state on all six faces, anisotropic C."""
    g = perturb(grid((3, 4, 3), lengths=(2.0, 3.0, 1.5)), 0.25, seed=4)
    sigma = np.array([[3.0, 0.7, -1.1],
                      [0.7, -2.0, 0.4],
                      [-1.1, 0.4, 1.5]])
    C = MATERIALS["orthotropic"]
    model = Model(g.mesh(), C=C, formulation=formulation)
    for node, dofs in _three_two_one(g):
        model.fix(np.array([node]), dofs)
    for side, n in NORMALS.items():
        model.add_traction(g.face_sets[side], sigma @ np.asarray(n, float))
    sol = model.solve(solver="direct")
    s_voigt = np.array([sigma[0, 0], sigma[1, 1], sigma[2, 2], sigma[0, 1], sigma[1, 2], sigma[0, 2]])
    assert np.abs(sol.stress - s_voigt).max() / np.abs(s_voigt).max() < 1e-9
    eps = np.linalg.solve(C, s_voigt)   # engineering shear
    eps[3:] *= 0.5
    assert np.abs(sol.strain - eps).max() / np.abs(eps).max() < 1e-9
    supports = np.array([n for n, _ in _three_two_one(g)])
    assert np.abs(sol.reaction(supports)).max() / 3.0 < 1e-9
