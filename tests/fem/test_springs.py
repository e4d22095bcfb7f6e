"""Springs and the active-set solve of one-sided springs: closed forms, slackness, equilibrium, symmetry."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import ConvergenceError, InputError
from vertebrafe.fem import Model, spring_set
from vertebrafe.springs import law_springs

E, L, A = 100.0, 4.0, 4.0          # MPa, mm, mm^2: column stiffness E A / L = 100 N/mm (nu = 0: exact)


def column(kind, k=60.0, slack=0.0, gap=0.0, law=None):
    """A 2 x 2 x 4 mm column fixed at z = 0, its top tied to a plate, and a spring from a base corner
    node to the top corner node above it (in parallel with the column); ``law = (increments, onsets)``: a
    stacked tension law (:func:`vertebrafe.springs.law_springs`) on those ends instead."""
    mesh = vf.box((2.0, 2.0, L), (1, 1, 2))
    model = Model(mesh, E=E, nu=0.0, formulation="full")
    base = mesh.node_sets["zmin"]
    model.fix(base)
    plate = model.rigid_plate(mesh.node_sets["zmax"])
    plate.prescribe(translation=(0, 0, None), rotation=(0, 0, 0))
    a = int(base[0])
    b = int(np.flatnonzero(np.all(np.isclose(mesh.points, mesh.points[a] + [0, 0, L]), axis=1))[0])
    if law is None:
        model.add_springs(spring_set(mesh.points, [a], [b], k, kind, slack=slack, gap=gap, name="s"))
    else:
        model.add_springs(law_springs(mesh.points, [a], [b], *law, name="s"))
    return model, plate


@pytest.mark.parametrize("kind, F, k_eff", [("linear", 30.0, 160.0), ("linear", -30.0, 160.0),
                                            ("tension", 30.0, 160.0), ("tension", -30.0, 100.0),
                                            ("compression", 30.0, 100.0), ("compression", -30.0, 160.0)])
def test_one_sided_spring_in_parallel_with_a_column(kind, F, k_eff):
    """A tension-only spring carries load in tension and goes slack when the load is reversed (and vice
    versa for compression-only): plate motion F / (EA/L + k) or F / (EA/L)."""
    model, plate = column(kind)
    plate.load(force=(0, 0, F))
    sol = model.solve(solver="direct")
    uz = sol.plate_motion(plate)[0][2]
    assert uz == pytest.approx(F / k_eff, rel=1e-9)
    force = sol.spring_forces("s")[0]
    assert force == pytest.approx(F * (k_eff - E * A / L) / k_eff, abs=1e-9)
    assert sol.spring_active["s"][0] == (k_eff > 100.0)
    assert sol.info["active_set_iterations"] <= 2
    # equilibrium: base reactions (cells + spring) balance the load to 1e-6
    R = sol.reaction(model.mesh.node_sets["zmin"])
    assert np.abs(R + [0, 0, F]).max() <= 1e-6 * abs(F)


def test_slack_and_gap_delay_the_spring():
    """A cable with 0.1 mm slack picks up load only past that elongation; contact across a 0.1 mm gap
    likewise: u = (F + k s) / (EA/L + k) once engaged."""
    k, s = 60.0, 0.1
    for kind, F, kw in (("tension", 30.0, dict(slack=s)), ("compression", -30.0, dict(gap=s))):
        model, plate = column(kind, k, **kw)
        plate.load(force=(0, 0, F))
        uz = model.solve(solver="direct").plate_motion(plate)[0][2]
        assert uz == pytest.approx((F + np.sign(F) * k * s) / (E * A / L + k), rel=1e-9)
        model, plate = column(kind, k, **kw)
        plate.load(force=(0, 0, F / 5))                     # 0.06 mm: not yet engaged
        assert model.solve(solver="direct").plate_motion(plate)[0][2] == pytest.approx(F / 5 / (E * A / L), rel=1e-9)


def test_prescribed_motion_engages_a_spring():
    """A spring whose end moves with a prescribed plate: the plate reaction is (EA/L + k) d or EA/L d."""
    for d, expect in ((0.2, 160.0 * 0.2), (-0.2, 100.0 * -0.2)):
        model, plate = column("tension")
        plate.prescribe(translation=(0, 0, d))
        sol = model.solve(solver="direct")
        assert sol.plate_reaction(plate)[0][2] == pytest.approx(expect, rel=1e-9)


def two_blocks(nx=6):
    """A fixed ground slab and a free block 1 mm above it, joined only by vertical compression-only
    springs between facing nodes (a Winkler foundation that can lift off)."""
    g = vf.box((6.0, 6.0, 1.0), (nx, nx, 1), origin=(0, 0, -1.0))
    b = vf.box((6.0, 6.0, 2.0), (nx, nx, 2), origin=(0, 0, 1.0))
    pts = np.concatenate([g.points, b.points])
    cells = np.concatenate([g.cells, b.cells + g.n_points])
    mesh = vf.Mesh(pts, cells)
    model = Model(mesh, E=1000.0, nu=0.3)
    model.fix(g.node_sets["zmin"])
    top_g = g.node_sets["zmax"]
    bottom_b = b.node_sets["zmin"] + g.n_points
    order_g = np.lexsort(g.points[top_g, :2].T)
    order_b = np.lexsort(b.points[b.node_sets["zmin"], :2].T)
    model.add_springs(spring_set(pts, top_g[order_g], bottom_b[order_b], 200.0, "compression", name="foundation"))
    plate = model.rigid_plate(b.node_sets["zmax"] + g.n_points)
    plate.prescribe(translation=(0, 0, None), rotation=(None, None, 0))     # no sliding or spinning
    return model, plate


def test_lift_off_converges_and_balances_for_both_solvers():
    """An eccentric load lifts one side of a block off compression-only springs: the active set
    settles in a handful of steps, the springs carry the load with its moment, the AMG and direct
    solves agree, and the lifted springs carry nothing."""
    out = {}
    for solver in ("direct", "amg"):
        model, plate = two_blocks()
        F, M = -100.0, 150.0                                              # N, N mm about +y
        plate.load(force=(0, 0, F), moment=(0, M, 0))
        sol = model.solve(solver=solver, rtol=1e-10)
        s = model.spring_set("foundation")
        f = sol.spring_forces("foundation")
        assert 2 <= sol.info["active_set_iterations"] <= 8
        assert 0 < s.active.sum() < s.size                                   # partial lift-off
        assert np.all(f <= 1e-12) and np.all(f[~s.active] == 0.0)
        delta = s.elongation(sol.displacement)
        assert np.all(delta[~s.active] >= 0.0) and np.all(delta[s.active] <= 0.0)
        # the springs carry the plate's force and moment (about the plate centre) to 1e-6
        xb = model.mesh.points[s.nodes_b[:, 0]]
        assert -f.sum() == pytest.approx(-F, rel=1e-6)
        My = np.sum((xb[:, 0] - plate.center[0]) * f)          # spring force -f e_z on the block, about y
        assert My == pytest.approx(-M, rel=1e-6)
        out[solver] = sol.displacement
    assert np.abs(out["amg"] - out["direct"]).max() <= 1e-6 * np.abs(out["direct"]).max()


def test_amg_loop_takes_short_steps_while_the_set_moves(monkeypatch):
    """The AMG loop's CG stops after LOOSE_MAXITER iterations while the set moves (the signs of the elongations
    need no more): on a finer lift-off the same final set and displacements (to the solver's tolerance) as with
    every step solved to LOOSE_RTOL, in fewer CG iterations. After the first step that changes no state, one CG
    to LOOSE_RTOL and one to rtol (no further short steps, which restart CG): at most three such steps."""
    from vertebrafe.fem import active_set
    out = {}
    for short in (active_set.LOOSE_MAXITER, None):
        monkeypatch.setattr(active_set, "LOOSE_MAXITER", short)
        model, plate = two_blocks(16)
        plate.load(force=(0, 0, -100.0), moment=(0, 150.0, 0))
        sol = model.solve(solver="amg", rtol=1e-10)
        out[short] = sol.info["iterations"], model.spring_set("foundation").active.copy(), sol.displacement
        assert sol.info["active_set_changes"].count(0) <= 3
    (short_its, short_set, short_u), (full_its, full_set, full_u) = out.values()
    assert np.array_equal(short_set, full_set) and 0 < short_set.sum() < short_set.size
    assert np.abs(short_u - full_u).max() <= 1e-8 * np.abs(full_u).max()
    assert short_its < full_its


def test_amg_loop_checks_the_set_inside_one_cg_per_trial_set(monkeypatch):
    """The AMG loop's steps that change no state are checkpoints of one CG per trial set (active_set._checked), not
    restarts: on the finer lift-off the same final set as the loop that restarts CG at every step
    (active_set._iterate, the same preconditioner and start), in no more CG iterations, and the direct solver's
    displacements and active set to a tolerance set by rtol; the spring forces balance the load."""
    from vertebrafe.fem import active_set
    seen = {}
    checked = active_set._checked

    def spy(*args):
        seen["args"] = args
        return checked(*args)

    monkeypatch.setattr(active_set, "_checked", spy)
    rtol = 1e-8
    out = {}
    for solver in ("amg", "direct"):
        model, plate = two_blocks(16)
        plate.load(force=(0, 0, -100.0), moment=(0, 150.0, 0))
        sol = model.solve(solver=solver, rtol=rtol)
        out[solver] = sol, model.spring_set("foundation").active.copy()
    (amg, amg_set), (direct, direct_set) = out["amg"], out["direct"]
    assert np.array_equal(amg_set, direct_set) and 0 < amg_set.sum() < amg_set.size
    assert amg.info["residual"] <= rtol
    assert np.abs(amg.displacement - direct.displacement).max() <= 100 * rtol * np.abs(direct.displacement).max()
    assert -amg.spring_forces("foundation").sum() == pytest.approx(100.0, rel=100 * rtol)
    K, rhs, Gf, k, free_length, delta_c, active, sets, bounds, rtol_, maxiter, steps, M, x0, short = seen["args"]
    x1, set1, changes1, res1, its1 = checked(*seen["args"])
    x2, set2, changes2, res2, its2 = active_set._iterate(K, rhs, Gf, k, free_length, delta_c, active, sets, bounds,
                                                         rtol_, maxiter, steps, lambda d: (M, None), x0, "amg",
                                                         short=short)
    assert np.array_equal(set1, set2) and res1 <= rtol and res2 <= rtol
    assert np.abs(x1 - x2).max() <= 100 * rtol * np.abs(x2).max()
    assert its1 <= its2 and its1 == amg.info["iterations"]


def test_mirror_symmetry_of_the_active_set():
    """Mirrored loads give mirrored displacements and active sets (the mesh is symmetric about x = 3)."""
    res = {}
    for sign in (1, -1):
        model, plate = two_blocks()
        plate.load(force=(0, 0, -100.0), moment=(0, sign * 150.0, 0))
        sol = model.solve(solver="direct")
        res[sign] = (sol.displacement, model.spring_set("foundation").active.copy())
    pts = model.mesh.points
    mirror = np.lexsort((pts[:, 2], pts[:, 1], 6.0 - pts[:, 0]))
    base = np.lexsort((pts[:, 2], pts[:, 1], pts[:, 0]))
    u1, u2 = res[1][0][base], res[-1][0][mirror]
    assert np.allclose(u1 * [-1, 1, 1], u2, atol=1e-9 * np.abs(u1).max())
    a1, a2 = res[1][1], res[-1][1]
    assert a1.sum() == a2.sum() and not np.array_equal(a1, a2)


def test_mechanism_is_reported():
    """A block held only by compression springs and pulled upward has nothing holding it."""
    model, plate = two_blocks(nx=3)
    plate.load(force=(0, 0, 50.0))
    with pytest.raises(ConvergenceError, match="mechanism"):
        model.solve(solver="direct")


def test_spring_input_errors():
    mesh = vf.box((1, 1, 1), (1, 1, 1))
    with pytest.raises(InputError, match="kind"):
        spring_set(mesh.points, [0], [7], 1.0, "cable")
    with pytest.raises(InputError, match="stiffness"):
        spring_set(mesh.points, [0], [7], -1.0)
    with pytest.raises(InputError, match="coincident"):
        spring_set(mesh.points, [0], [0], 1.0)
    with pytest.raises(InputError, match="sum to 1"):
        spring_set(mesh.points, [[0, 1]], [[6, 7]], 1.0, weights_a=[[0.5, 0.6]], weights_b=[[0.5, 0.5]])
    model = Model(mesh, E=1.0, nu=0.3)
    model.add_springs(spring_set(mesh.points, [0], [7], 1.0, name="a"))
    with pytest.raises(InputError, match="already"):
        model.add_springs(spring_set(mesh.points, [0], [7], 1.0, name="a"))


def _confined_box(E, nu, s):
    """A 2 x 3 x 4 mm box (2 x 2 x 3 cells) with rollers on its sides and base, pressure ``s`` on top."""
    mesh = vf.box((2.0, 3.0, 4.0), (2, 2, 3))
    ns = mesh.node_sets
    model = Model(mesh, E=E, nu=nu, formulation="full")
    model.fix(ns["xmin"], "x").fix(ns["xmax"], "x").fix(ns["ymin"], "y").fix(ns["ymax"], "y").fix(ns["zmin"], "z")
    model.add_pressure(mesh.face_sets["zmax"], s)
    return model, mesh, ns


def test_fluid_cavity_in_confined_compression():
    """A box under confined compression whose cells also hold a fluid (a cavity bounded by the box's
    surface): the fluid adds its bulk modulus to the confined modulus exactly, eps = -s / (M + K_f), and
    its pressure is K_f s / (M + K_f), uniform by construction."""
    from vertebrafe.elements import HEX8_FACES
    from vertebrafe.cavity import FluidCavity, cavity_faces

    E, nu, Kf, s = 10.0, 0.3, 50.0, 0.2
    model, mesh, ns = _confined_box(E, nu, s)
    cav = model.add_springs(FluidCavity("fluid", mesh.points, cavity_faces(mesh.cells, HEX8_FACES), 24.0, Kf))
    assert cav.faces.shape[0] == 2 * (2 * 2 + 2 * 3 + 2 * 3)
    sol = model.solve(solver="direct")
    M = E * (1 - nu) / ((1 + nu) * (1 - 2 * nu))
    uz = sol.displacement[ns["zmax"], 2]
    assert np.allclose(uz, -s / (M + Kf) * 4.0, rtol=1e-9)
    assert cav.pressure(sol.displacement) == pytest.approx(Kf * s / (M + Kf), rel=1e-9)
    assert sol.info["active_set_iterations"] == 1
    # the base reaction (cells + fluid) balances the applied load
    assert sol.reaction(ns["zmin"])[2] == pytest.approx(s * 6.0, rel=1e-9)


def test_fluid_cavity_amg_preconditioner_holds_the_cavity_exactly():
    """The cavity's dense rank-one stiffness stays out of the AMG hierarchy and enters the preconditioner by the
    Woodbury identity (solvers.low_rank_corrected): on a box small enough for an exact coarsest-level solve the
    preconditioner is the exact inverse, so CG converges in one iteration, to the closed form of
    test_fluid_cavity_in_confined_compression."""
    from vertebrafe.elements import HEX8_FACES
    from vertebrafe.cavity import FluidCavity, cavity_faces

    E, nu, Kf, s = 10.0, 0.3, 50.0, 0.2
    model, mesh, ns = _confined_box(E, nu, s)
    model.add_springs(FluidCavity("fluid", mesh.points, cavity_faces(mesh.cells, HEX8_FACES), 24.0, Kf))
    sol = model.solve(solver="amg", rtol=1e-10)
    M = E * (1 - nu) / ((1 + nu) * (1 - 2 * nu))
    assert np.allclose(sol.displacement[ns["zmax"], 2], -s / (M + Kf) * 4.0, rtol=1e-9)
    assert sol.info["levels"] == 1 and sol.info["iterations"] == 1


def test_low_rank_corrected_is_the_exact_inverse_with_an_exact_preconditioner():
    """(A^-1 given as M) corrected for U diag(c) U^T is (A + U diag(c) U^T)^-1 to round-off, for dense and
    sparse U; the corrected operator is symmetric."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    from vertebrafe.fem.solvers import low_rank_corrected

    rng = np.random.default_rng(3)
    n = 60
    A = sp.diags([-np.ones(n - 1), 2.5 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).toarray()
    U = rng.standard_normal((n, 3))
    U[rng.random((n, 3)) < 0.7] = 0.0
    c = np.array([1e-2, 1.0, 1e4])                          # a soft, a moderate and a nearly rigid term
    exact = np.linalg.inv(A + U @ np.diag(c) @ U.T)
    for given in (U, sp.csc_matrix(U)):
        W = low_rank_corrected(spla.aslinearoperator(np.linalg.inv(A)), given, c)
        X = np.column_stack([W @ e for e in np.eye(n)])
        assert np.abs(X - exact).max() <= 1e-10 * np.abs(exact).max()
        assert np.abs(X - X.T).max() <= 1e-12 * np.abs(X).max()


def test_open_cavity_is_rejected():
    from vertebrafe.elements import HEX8_FACES
    from vertebrafe.cavity import FluidCavity, cavity_faces

    mesh = vf.box((1, 1, 1), (2, 1, 1))
    faces = cavity_faces(mesh.cells, HEX8_FACES)[1:]
    with pytest.raises(InputError, match="close"):
        FluidCavity("open", mesh.points, faces, 1.0)


def test_law_springs_stack_a_stiffening_law_on_one_pair():
    """A piecewise-linear law (60 N/mm from 0, +40 N/mm from 0.1 mm) as one member of two stacked tension springs
    in parallel with the 100 N/mm column: u = F / 160 below the break, (F + 40 * 0.1) / 200 beyond it; the
    member total is the law; bad laws are refused with the field named."""
    law = ([[60.0], [40.0]], [[0.0], [0.1]])
    for F, u_exact in ((8.0, 8.0 / 160.0), (60.0, (60.0 + 4.0) / 200.0), (-30.0, -30.0 / 100.0)):
        model, plate = column("tension", law=law)
        s = model.spring_set("s")
        assert s.size == 2 and np.array_equal(s.member, [0, 0])
        plate.load(force=(0, 0, F))
        sol = model.solve(solver="direct")
        assert sol.plate_motion(plate)[0][2] == pytest.approx(u_exact, rel=1e-9)
        first, total = s.member_totals(sol.spring_forces("s"))
        assert first.tolist() == [0] and total[0] == pytest.approx(F - 100.0 * u_exact, rel=1e-9, abs=1e-9)
    points = model.mesh.points
    with pytest.raises(InputError, match="increments"):
        law_springs(points, [0], [1], [[60.0], [-1.0]], [[0.0], [0.1]])
    with pytest.raises(InputError, match="onsets"):
        law_springs(points, [0], [1], [[60.0], [1.0]], [[0.0], [-0.1]])
    with pytest.raises(InputError, match="positive"):
        law_springs(points, [0], [1], [[0.0]], [[0.0]])


def test_spring_product_runs_the_cells_on_the_block_kernels():
    """The active-set loops' product ``K v + Gf^T diag(d) Gf v`` (the cells' part on the parallel block kernels
    instead of SciPy's one-thread product) equals SciPy's to round-off, with springs on and off."""
    import scipy.sparse as sp

    from vertebrafe.fem.active_set import _with_springs

    rng = np.random.default_rng(3)
    n = 60
    A = sp.random(n, n, density=0.2, random_state=4)
    K = (A @ A.T + n * sp.identity(n)).tobsr(blocksize=(3, 3))
    Gf = sp.random(5, n, density=0.1, random_state=5, format="csr")
    v, d = rng.random(n), np.array([0.0, 2.0, 0.0, 7.5, 1.0])
    expected = K @ v + Gf.T @ (d * (Gf @ v))
    assert np.allclose(_with_springs(K, Gf)(v, d), expected, rtol=1e-13, atol=1e-12 * np.abs(expected).max())
