"""Initial (eigen-) stress of cells and the initial pressure of a fluid cavity: a pre-stressed layer between
elastic layers against the closed form, superposition with loads, one-sided springs taut under the pre-stress
alone, and reactions that sum to zero (a self-equilibrated state)."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.fem import Model, spring_set

E1, NU1 = 1.0, 0.49          # the pressurised layer (nucleus-like, MPa)
E2, NU2 = 20.0, 0.3          # the layers around it
P0 = 0.2                     # initial pressure, MPa: sigma_0 = -P0 I


def _moduli(E, nu):
    """Confined (oedometric) modulus M, Lame lambda and bulk modulus K (MPa)."""
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    return lam + 2 * mu, lam, lam + 2 * mu / 3


def _layers(formulation="bbar", top="fixed"):
    """A 2 x 2 x 6 mm column of 1 mm cells: elastic layers z < 2 and z > 4, the pressurised layer between (its
    cells carry -P0 I), rollers on the four sides, the base held in z; the top held in z (``"fixed"``), free,
    or tied to a plate free in z (``"plate"``)."""
    mesh = vf.box((2.0, 2.0, 6.0), (2, 2, 6))
    zc = mesh.cell_centers()[:, 2]
    inner = (zc > 2.0) & (zc < 4.0)
    form = np.where(inner, formulation, "incompatible")
    model = Model(mesh, E=np.where(inner, E1, E2), nu=np.where(inner, NU1, NU2), formulation=form)
    ns = {k: v for k, v in mesh.node_sets.items()}
    if top == "plate":                                  # the plate holds the top nodes laterally
        ns = {k: (np.setdiff1d(v, ns["zmax"]) if k[0] in "xy" else v) for k, v in ns.items()}
    model.fix(ns["xmin"], "x").fix(ns["xmax"], "x").fix(ns["ymin"], "y").fix(ns["ymax"], "y").fix(ns["zmin"], "z")
    plate = None
    if top == "fixed":
        model.fix(ns["zmax"], "z")
    elif top == "plate":
        plate = model.rigid_plate(ns["zmax"])
        plate.prescribe(translation=(0, 0, None), rotation=(0, 0, 0))
    stress = np.zeros((mesh.n_cells, 6))
    stress[inner, :3] = -P0
    return model, mesh, inner, stress, plate


@pytest.mark.parametrize("formulation", ["bbar", "full", "incompatible"])
def test_pressurised_layer_between_held_layers_matches_the_closed_form(formulation):
    """Between platens held apart, the pre-stressed layer expands by eps_1 = P0 / (M1 + M2 h1 / h2) and
    compresses the layers around it; its pressure is P0 minus the relief K1 eps_1 of the surrounding compliance.
    The state is self-equilibrated: the reactions sum to zero."""
    model, mesh, inner, stress, _ = _layers(formulation)
    model.initial_stress = stress
    sol = model.solve(solver="direct")
    M1, lam1, K1 = _moduli(E1, NU1)
    M2, lam2, _ = _moduli(E2, NU2)
    h1, h2 = 2.0, 4.0
    eps1 = P0 / (M1 + M2 * h1 / h2)
    eps2 = -h1 * eps1 / h2
    s = sol.cell_stress
    szz = M2 * eps2
    assert np.allclose(s[:, 2], szz, rtol=1e-9, atol=1e-12)
    assert np.allclose(s[inner, 0], lam1 * eps1 - P0, rtol=1e-9)
    assert np.allclose(s[~inner, 0], lam2 * eps2, rtol=1e-9)
    pressure = -s[inner, :3].mean(axis=1)
    assert np.allclose(pressure, P0 - K1 * eps1, rtol=1e-9)
    assert np.allclose(sol.cell_strain[inner, 2], eps1, rtol=1e-9)
    # a self-equilibrated state: every reaction sums to zero, the platens push with sigma_zz A
    assert np.abs(sol.nodal_reactions.sum(axis=0)).max() < 1e-10
    assert sol.reaction(mesh.node_sets["zmax"])[2] == pytest.approx(szz * 4.0, rel=1e-9)
    # the strain energy is of the elastic stress C eps only
    C_eps = s - np.where(inner[:, None], stress, 0.0)
    dens = 0.5 * (np.einsum("ci,ci->c", C_eps[:, :3], sol.cell_strain[:, :3]))
    assert np.allclose(sol.strain_energy_density, dens, rtol=1e-9)


def test_stiff_surroundings_keep_the_pressure_soft_ones_relieve_it():
    """The pressure left in the layer is P0 (M2 h1 / h2) / (M1 + M2 h1 / h2) of the confined moduli: a nearly
    incompressible layer (nu 0.499) in soft surroundings keeps almost none of it."""
    model, mesh, inner, stress, _ = _layers()
    model.initial_stress = stress
    p = -model.solve(solver="direct").cell_stress[inner, 2].mean()
    M1, _, _ = _moduli(E1, NU1)
    M2, _, _ = _moduli(E2, NU2)
    assert p == pytest.approx(P0 * (M2 / 2) / (M1 + M2 / 2), rel=1e-9)


def test_initial_stress_superposes_with_loads():
    """Linear model: the solution of pre-stress + load is the sum of the two solved apart (displacements,
    stresses and reactions)."""
    def solve(pre, load):
        model, mesh, inner, stress, _ = _layers(top="free")
        if pre:
            model.initial_stress = stress
        if load:
            model.add_pressure(mesh.face_sets["zmax"], 0.3)
        return model.solve(solver="direct")

    a, b, c = solve(True, False), solve(False, True), solve(True, True)
    assert np.allclose(c.displacement, a.displacement + b.displacement, rtol=1e-10, atol=1e-14)
    assert np.allclose(c.cell_stress, a.cell_stress + b.cell_stress, rtol=1e-10, atol=1e-12)
    assert np.allclose(c.nodal_reactions, a.nodal_reactions + b.nodal_reactions, atol=1e-10)
    # free top: the pre-stressed layer expands freely in z, sigma_zz = 0 everywhere
    assert np.abs(a.cell_stress[:, 2]).max() < 1e-10
    assert a.displacement[:, 2].max() == pytest.approx(2.0 * P0 / _moduli(E1, NU1)[0], rel=1e-9)


def test_tension_springs_are_taut_under_the_pre_stress_alone_and_slacken_under_compression():
    """Tension-only springs between base and top (in parallel with the column) are taut at rest: the pre-stress
    lengthens the column against them, in the same active-set solve. Closed form: top motion
    d = P0 h1 / (M1 (1 + h1 k_c / (M1 A))...) from sigma_zz A + k d = 0 and d = h1 eps1 + h2 eps2. A compressive
    load on the plate shortens the column and every spring goes slack."""
    k = 50.0                                            # N/mm per spring, four springs
    model, mesh, inner, stress, plate = _layers(top="plate")
    base, top = mesh.node_sets["zmin"], mesh.node_sets["zmax"]
    corners = [int(i) for i in base if np.all(np.isin(mesh.points[i, :2], (0.0, 2.0)))]
    above = [int(np.flatnonzero(np.all(np.isclose(mesh.points, mesh.points[i] + [0, 0, 6.0]), axis=1))[0])
             for i in corners]
    springs = model.add_springs(spring_set(mesh.points, corners, above, k, "tension", name="fibres"))
    model.initial_stress = stress
    sol = model.solve(solver="direct")
    M1, _, _ = _moduli(E1, NU1)
    M2, _, _ = _moduli(E2, NU2)
    h1, h2, A = 2.0, 4.0, 4.0
    # sigma = M1 eps1 - P0 = M2 eps2 (uniform along the column); sigma A + 4 k d = 0; d = h1 eps1 + h2 eps2
    Amat = np.array([[M1, -M2], [4 * k * h1, M2 * A + 4 * k * h2]])
    eps1, eps2 = np.linalg.solve(Amat, [P0, 0.0])
    d = h1 * eps1 + h2 * eps2
    assert d > 0 and springs.active.all()
    assert np.allclose(sol.spring_forces("fibres"), k * d, rtol=1e-9)
    assert plate_motion_z(sol, plate) == pytest.approx(d, rel=1e-9)
    assert np.allclose(sol.cell_stress[:, 2], M2 * eps2, rtol=1e-9)
    # equilibrium: the base reactions (cells and springs) sum to zero, to 1e-6 of the spring force
    assert abs(sol.reaction(base)[2]) < 1e-6 * k * d
    assert sol.info["residual"] < 1e-6
    # a compressive load larger than the springs' pre-tension slackens every one of them
    model.add_force(top, (0.0, 0.0, -2.0))
    sol2 = model.solve(solver="direct")
    assert not springs.active.any()
    assert np.allclose(sol2.spring_forces("fibres"), 0.0)
    assert abs(sol2.reaction(base)[2] - 2.0 * top.size) < 1e-6 * 2.0 * top.size


def plate_motion_z(sol, plate):
    return float(sol.plate_motion(plate)[0][2])


def test_fluid_cavity_initial_pressure_against_the_closed_form():
    """A box of cells that also holds a fluid with an initial pressure P0, rollers on its sides and base, top
    free: the fluid expands the box by eps = P0 / (M + K_f) and keeps p = M P0 / (M + K_f); the cells carry
    sigma_zz = M eps = p, so the top is free of traction."""
    from vertebrafe.cavity import FluidCavity, cavity_faces
    from vertebrafe.elements import HEX8_FACES

    E, nu, Kf = 10.0, 0.3, 50.0
    mesh = vf.box((2.0, 3.0, 4.0), (2, 2, 3))
    ns = mesh.node_sets
    model = Model(mesh, E=E, nu=nu, formulation="full")
    model.fix(ns["xmin"], "x").fix(ns["xmax"], "x").fix(ns["ymin"], "y").fix(ns["ymax"], "y").fix(ns["zmin"], "z")
    cav = model.add_springs(FluidCavity("fluid", mesh.points, cavity_faces(mesh.cells, HEX8_FACES), 24.0, Kf,
                                        initial_pressure=P0))
    sol = model.solve(solver="direct")
    M = _moduli(E, nu)[0]
    eps = P0 / (M + Kf)
    assert np.allclose(sol.displacement[ns["zmax"], 2], eps * 4.0, rtol=1e-9)
    assert cav.pressure(sol.displacement) == pytest.approx(M * P0 / (M + Kf), rel=1e-9)
    assert np.allclose(sol.cell_stress[:, 2], M * eps, rtol=1e-9)
    assert np.abs(sol.nodal_reactions.sum(axis=0)).max() < 1e-10
    with pytest.raises(InputError, match="initial_pressure"):
        FluidCavity("bad", mesh.points, cavity_faces(mesh.cells, HEX8_FACES), 24.0, Kf, initial_pressure=np.nan)


def test_initial_stress_input_errors():
    model = _layers()[0]
    with pytest.raises(InputError, match="initial_stress has shape"):
        model.initial_stress = np.zeros((3, 6))
    with pytest.raises(InputError, match="finite"):
        model.initial_stress = np.full((model.mesh.n_cells, 6), np.nan)
    model.initial_stress = None
    assert model.initial_stress is None


def test_initial_stress_load_follows_the_stress_and_the_nodes():
    """The pressurised layer's nodal forces push its faces apart with P0 times their area (0.8 N on the 2 x 2 mm
    faces at z = 4 and z = 2) and sum to zero; they scale with the stress, and after the nodes move they are those
    of a model built on the moved mesh (the gradient integrals kept between solves are not stale)."""
    model, mesh, inner, stress, _ = _layers()
    model.initial_stress = stress
    f = model.initial_stress_load()
    z = mesh.points[:, 2]
    assert f[np.isclose(z, 4.0), 2].sum() == pytest.approx(4.0 * P0, rel=1e-12)
    assert f[np.isclose(z, 2.0), 2].sum() == pytest.approx(-4.0 * P0, rel=1e-12)
    assert np.abs(f.sum(axis=0)).max() <= 1e-14
    model.initial_stress = 2.0 * stress
    np.testing.assert_array_equal(model.initial_stress_load(), 2.0 * f)
    mesh.points[:, 2] *= 1.5                               # every cell 1.5 mm high: the same forces (area-bound)
    mesh.points[:, 0] *= 2.0                               # 4 mm wide: twice the area
    moved = model.initial_stress_load()
    fresh = Model(mesh, E=1.0, nu=0.3)
    fresh.initial_stress = 2.0 * stress
    np.testing.assert_array_equal(moved, fresh.initial_stress_load())
    assert moved[np.isclose(mesh.points[:, 2], 6.0), 2].sum() == pytest.approx(16.0 * P0, rel=1e-12)


def test_model_copy_is_independent_and_solves_alike():
    """``Model.copy`` (the unloaded model of a rest state) shares the mesh; loads, supports, plates and initial
    stress of the copy change without changing the model, and an unchanged copy solves to the same displacements
    bit for bit."""
    model, mesh, inner, stress, plate = _layers(top="plate")
    model.initial_stress = stress
    twin = model.copy()
    assert twin.mesh is model.mesh
    np.testing.assert_array_equal(twin.solve(solver="direct").displacement,
                                  model.solve(solver="direct").displacement)
    fixed, prescribed = model._fixed.copy(), model.plates[0].prescribed.copy()
    twin.remove_loads()
    twin.initial_stress = None
    twin.plates[0].prescribe(translation=(0, 0, 0.1))
    twin.fix(np.setdiff1d(np.arange(mesh.n_points), mesh.node_sets["zmax"]), "y")
    assert model.initial_stress is not None
    np.testing.assert_array_equal(model._fixed, fixed)
    np.testing.assert_array_equal(model.plates[0].prescribed, prescribed)
    assert not np.array_equal(twin._fixed, fixed)
    u = model.solve(solver="direct").displacement
    assert np.abs(u).max() > 0 and not np.array_equal(u, twin.solve(solver="direct").displacement)
