"""Rigid plates: end moment on a cantilever, equilibrium, prescribed rotation, rigid kinematics.

Cantilever L = 100 mm, b = h = 10 mm, E = 1000 MPa, nu = 0.3, root face fixed (x = 0), all nodes of
the tip face tied to a rigid plate at their centroid c = (L, b/2, h/2). A moment M about y gives pure
bending: beam theory end rotation theta_y = M L / (E I) (M positive about +y rotates the tip
positively about +y). The plate keeps the tip section plane, as beam theory assumes; the fixed root
adds a small 3D stiffening, and full integration hex8 a small shear-locking stiffening
~(G/E)(a/h)^2 for elements of length a; measured errors are in docs/verification.md.
"""
import numpy as np
import pytest

from vf_helpers import Model, grid, reaction_moment

L, B, H = 100.0, 10.0, 10.0
E, NU = 1000.0, 0.3
I = B * H**3 / 12.0
M = 2000.0          # N mm
SHAPE = (40, 4, 4)


def cantilever(formulation="bbar", shape=SHAPE):
    g = grid(shape, lengths=(L, B, H))
    model = Model(g.mesh(), E=E, nu=NU, formulation=formulation)
    clamp = g.node_sets["xmin"]
    model.fix(clamp, "xyz")
    plate = model.rigid_plate(g.node_sets["xmax"])
    return g, model, plate, clamp


@pytest.fixture(scope="module")
def moment_case():
    g, model, plate, clamp = cantilever()
    plate.load(moment=(0.0, M, 0.0))
    return g, model, plate, clamp, model.solve(solver="direct")


def test_end_rotation_matches_beam_theory(moment_case):
    g, model, plate, clamp, sol = moment_case
    t, rot = sol.plate_motion(plate)
    theta = M * L / (E * I)
    rel = abs(rot[1] - theta) / theta
    print(f"plate rotation {rot}, beam theory theta_y {theta:.6g}, rel err {rel:.2e}; translation {t}")
    assert rel < 0.02
    # Symmetry: no twist, no lateral bending.
    assert abs(rot[0]) < 1e-10 * theta and abs(rot[2]) < 1e-10 * theta
    # Pure bending about y: tip translation uz = -M L^2 / (2 E I) (rotation positive about +y
    # turns the +x axis towards -z) to the same accuracy.
    assert abs(t[2] + M * L**2 / (2 * E * I)) / (M * L**2 / (2 * E * I)) < 0.02


def test_plate_nodes_move_rigidly(moment_case):
    g, model, plate, clamp, sol = moment_case
    t, rot = sol.plate_motion(plate)
    nodes = g.node_sets["xmax"]
    c = g.points[nodes].mean(axis=0)
    expected = t + np.cross(rot, g.points[nodes] - c)
    u = sol.displacement[nodes]
    assert np.abs(u - expected).max() <= 1e-12 * max(np.abs(u).max(), 1.0)


def test_reactions_balance_force_and_moment():
    g, model, plate, clamp = cantilever()
    F_applied = np.array([3.0, -2.0, -50.0])
    M_applied = np.array([150.0, M, -400.0])
    plate.load(force=F_applied, moment=M_applied)
    sol = model.solve(solver="direct")
    c = g.points[g.node_sets["xmax"]].mean(axis=0)
    # Per-node clamp reactions, moments about the origin; applied force acts at the plate centre c.
    R, MR = reaction_moment(sol, clamp, g.points, about=np.zeros(3))
    np.testing.assert_allclose(R, sol.reaction(clamp), rtol=0, atol=1e-10 * np.abs(F_applied).max())
    f_res = R + F_applied
    m_res = MR + M_applied + np.cross(c, F_applied)
    scale_f = np.abs(F_applied).max()
    scale_m = np.abs(M_applied).max() + L * scale_f
    print(f"force residual {f_res}, moment residual {m_res}")
    assert np.abs(f_res).max() < 1e-8 * scale_f
    assert np.abs(m_res).max() < 1e-8 * scale_m


def test_fixed_plate_at_the_root_reports_the_same_reactions():
    """Root held by a fixed plate instead of node fixities: plate_reaction gives force and moment
    about the root centre that balance the applied load."""
    g = grid(SHAPE, lengths=(L, B, H))
    model = Model(g.mesh(), E=E, nu=NU)
    root = model.rigid_plate(g.node_sets["xmin"])
    root.fix()
    tip = model.rigid_plate(g.node_sets["xmax"])
    F_applied = np.array([0.0, 4.0, -30.0])
    M_applied = np.array([80.0, 500.0, 0.0])
    tip.load(force=F_applied, moment=M_applied)
    sol = model.solve(solver="direct")
    F_root, M_root = sol.plate_reaction(root)
    c_root = g.points[g.node_sets["xmin"]].mean(axis=0)
    c_tip = g.points[g.node_sets["xmax"]].mean(axis=0)
    np.testing.assert_allclose(F_root, -F_applied, rtol=0, atol=1e-8 * 30.0)
    expected_M = -(M_applied + np.cross(c_tip - c_root, F_applied))
    np.testing.assert_allclose(M_root, expected_M, rtol=0, atol=1e-8 * np.abs(expected_M).max())
    t, rot = sol.plate_motion(root)
    assert np.abs(t).max() == 0.0 and np.abs(rot).max() == 0.0


def test_prescribed_rotation_gives_the_moment_back(moment_case):
    g, model, plate, clamp, sol = moment_case
    t1, rot1 = sol.plate_motion(plate)
    g2, model2, plate2, clamp2 = cantilever()
    plate2.prescribe(translation=None, rotation=rot1)
    sol2 = model2.solve(solver="direct")
    F, Mr = sol2.plate_reaction(plate2)
    print(f"prescribed rotation {rot1}: plate reaction force {F}, moment {Mr}")
    # Reaction = what the constraint exerts on the body: the moment that was applied before.
    np.testing.assert_allclose(Mr, [0.0, M, 0.0], rtol=0, atol=1e-8 * M)
    np.testing.assert_allclose(F, 0.0, atol=1e-8 * M / L)
    t2, rot2 = sol2.plate_motion(plate2)
    np.testing.assert_allclose(rot2, rot1, rtol=0, atol=1e-14)
    np.testing.assert_allclose(t2, t1, rtol=0, atol=1e-10 * np.abs(t1).max())
    np.testing.assert_allclose(sol2.displacement, sol.displacement, rtol=0,
                               atol=1e-8 * np.abs(sol.displacement).max())


def test_rotation_converges_with_refinement():
    """Shear locking of the plate-loaded beam fades with element length: error falls with refinement."""
    theta = M * L / (E * I)
    errs = []
    for shape in [(10, 2, 2), (20, 2, 2), (40, 4, 4)]:
        g, model, plate, clamp = cantilever("full", shape)
        plate.load(moment=(0.0, M, 0.0))
        rot = model.solve(solver="direct").plate_motion(plate)[1][1]
        errs.append(abs(rot - theta) / theta)
    print("full-integration end-rotation errors", errs)
    assert errs[0] > errs[1] > errs[2]
