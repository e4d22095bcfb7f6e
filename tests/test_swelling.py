"""The nucleus pre-pressure (vertebrafe.swelling) on a coarse L4-L5: the rest state carries the asked pressure
and is self-equilibrated, a linear disc superposes rest state and load exactly (motions from the rest state
unchanged), fibres are taut at rest and the loaded fibre disc is in equilibrium."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.io.export import ExportWarning
from vertebrafe.simulate import build_model, simulate
from vertebrafe.swelling import PRESSURE_RTOL, nucleus_cells, nucleus_pressures, rest_state

P_REST = 0.10            # MPa, lying prone, Wilke et al. 1999


def _segment(p, **kw):
    return vf.segment(["L4", "L5"], element_size=6.0, bmd=120.0, posterior=False, nucleus_prepressure=p, **kw)


@pytest.fixture(scope="module")
def linear():
    """The fibre-free disc without and with the pre-pressure, relaxed standing and standing flexed."""
    loads = ["relaxed_standing", "standing_flexed"]
    return (simulate(_segment(0.0), loads, factor_of_risk=False),
            simulate(_segment(P_REST), loads, factor_of_risk=False))


def test_rest_state_carries_the_pressure_and_is_self_equilibrated(linear):
    _, pre = linear
    res = pre[0]
    rest = res.solution.rest
    assert res.value("rest_pressure", "L4-L5", "nucleus") == pytest.approx(P_REST, rel=PRESSURE_RTOL)
    # one disc, no springs: the second step's start, the first's displacements scaled, is its solution
    assert rest.info["swelling_steps"] == 2 and rest.info["start_accepted"] and rest.info["iterations"] == 0
    s = res.value("swelling_stress", "L4-L5", "nucleus")
    assert s > 5 * P_REST                 # the nearly incompressible nucleus relieves most of its eigen-stress
    # no load: the reactions of the fixed base sum to zero force and moment
    F = rest.nodal_reactions.sum(axis=0)
    nucleus = nucleus_cells(res.segment)["L4-L5"]
    push = P_REST * rest.cell_volume[nucleus].sum() ** (2 / 3)          # a force scale of the pressure (N)
    assert np.abs(F).max() < 1e-6 * push
    pts = res.segment.mesh.points
    M = np.cross(pts - pts.mean(axis=0), rest.nodal_reactions).sum(axis=0)
    assert np.abs(M).max() < 1e-6 * push * 50.0
    # the annulus is pre-tensioned around the nucleus: its hoop stress is tensile somewhere, the mean of its
    # cells' mean stress is tensile
    mesh = res.segment.mesh
    annulus = mesh.cell_data["region"] == {v: k for k, v in mesh.tag_names["region"].items()}["annulus"]
    mean = rest.cell_stress[annulus, :3].mean(axis=1)
    assert np.average(mean, weights=rest.cell_volume[annulus]) > 0


def test_linear_disc_superposes_rest_state_and_load(linear):
    """Without one-sided springs the model is linear: the loaded pressure is the load's plus the rest pressure,
    every cell's stress the sum, and the motions from the rest state are those without the pre-pressure."""
    base, pre = linear
    for b, r in zip(base, pre):
        assert r.value("pressure", "L4-L5", "nucleus") == pytest.approx(
            b.value("pressure", "L4-L5", "nucleus") + P_REST, rel=1e-6)
        assert np.allclose(r.solution.cell_stress, b.solution.cell_stress + r.solution.rest.cell_stress,
                           rtol=1e-6, atol=1e-7)
        for metric, region in (("height_change", "disc"), ("rotation_flexion", "disc")):
            assert r.value(metric, "L4-L5", region) == pytest.approx(b.value(metric, "L4-L5", region), rel=1e-6,
                                                                     abs=1e-9)
        assert r.value("axial_stiffness") == pytest.approx(b.value("axial_stiffness"), rel=1e-6)


def test_fibres_are_taut_at_rest_and_the_loaded_disc_is_in_equilibrium():
    seg = _segment(P_REST, fibres=True)
    res = simulate(seg, "relaxed_standing", factor_of_risk=False)
    rest = res.solution.rest
    fibres = rest.model.spring_set("annulus_fibres")
    taut = fibres.member_totals(rest.spring_active["annulus_fibres"])[1] > 0
    assert taut.mean() > 0.5                                        # the swollen disc stretches most fibres
    assert res.value("rest_pressure", "L4-L5", "nucleus") == pytest.approx(P_REST, rel=PRESSURE_RTOL)
    assert rest.spring_forces("annulus_fibres").max() > 0
    for sol in (rest, res.solution):
        assert sol.info["residual"] < 1e-6
        free = ~sol.model._fixed.any(axis=1)
        for p in sol.model.plates:
            free[p.nodes] = False
        scale = np.abs(sol.model.initial_stress_load()).max()         # the nodal forces of the eigen-stress
        assert np.abs(sol.nodal_reactions[free]).max() < 1e-6 * scale
    # the load's base reaction balances the applied 500 N
    assert np.linalg.norm(res.solution.reaction(seg.mesh.node_sets["segment:inferior"])) == pytest.approx(500.0,
                                                                                                         rel=1e-6)


def test_fluid_nucleus_takes_the_swelling_as_its_initial_pressure():
    """With nucleus="fluid" the swelling is the cavity's initial pressure: the unloaded nucleus (fluid plus cells)
    carries the rest pressure, the cells carry no eigen-stress, and the fluid's initial pressure is far above p
    (water's bulk modulus: the fluid relieves it by expanding)."""
    res = simulate(_segment(P_REST, nucleus="fluid"), "relaxed_standing", factor_of_risk=False)
    assert res.value("rest_pressure", "L4-L5", "nucleus") == pytest.approx(P_REST, rel=PRESSURE_RTOL)
    assert res.solution.model.initial_stress is None
    cavity = res.solution.model.spring_set("L4-L5:nucleus")
    assert cavity.initial_pressure == pytest.approx(res.value("swelling_stress", "L4-L5", "nucleus"))
    assert cavity.initial_pressure > 10 * P_REST
    assert res.value("pressure", "L4-L5", "nucleus") > P_REST


def test_strengths_between_plates_and_factor_of_risk_do_not_depend_on_the_rest_state(linear):
    """The rest state is self-equilibrated: no net force crosses the disc at rest, so the loaded vertebra carries
    the applied 500 N with or without it (exactly, in the linear model) and the factor of risk, load over the
    strength of the vertebra alone between plates (which holds no pre-stress), is the same; the in-situ apparent
    strength, measured from the rest state, is the same too."""
    from vertebrafe.post.posterior import level_forces

    base, pre = (r[0] for r in linear)
    rest = pre.solution.rest
    nucleus = nucleus_cells(pre.segment)["L4-L5"]
    push = P_REST * rest.cell_volume[nucleus].sum() ** (2 / 3)          # a force scale of the pressure (N)
    at_rest = level_forces(pre.segment, rest, "L4-L5")
    assert np.abs(at_rest["disc"]).max() < 1e-6 * push
    loaded, alone = level_forces(pre.segment, pre.solution, "L4-L5"), level_forces(base.segment, base.solution,
                                                                                   "L4-L5")
    assert np.allclose(loaded["disc"], alone["disc"], rtol=0, atol=1e-6 * 500.0)
    assert loaded["disc"][2] == pytest.approx(-500.0, rel=1e-3)           # the follower load along the disc axis
    rows = [r.plate_strength(levels=["L4"], strength="pushover").set_index("metric")["value"] for r in (base, pre)]
    for metric in ("plate_strength_yield", "plate_strength_pushover", "factor_of_risk"):
        assert rows[1][metric] == pytest.approx(rows[0][metric], rel=1e-9)
    assert rows[1]["factor_of_risk"] == pytest.approx(500.0 / rows[1]["plate_strength_pushover"], rel=1e-12)
    assert pre.value("strength_apparent", "L4", "vertebra") == pytest.approx(
        base.value("strength_apparent", "L4", "vertebra"), rel=1e-6)


def test_prepressure_without_a_disc_is_an_error_naming_it():
    with pytest.raises(InputError, match=r"nucleus_prepressure = 0.1 MPa on the single vertebra L1"):
        vf.segment(["L1"], element_size=8.0, bmd=120.0, nucleus_prepressure=0.1)
    import dataclasses
    seg = dataclasses.replace(vf.segment(["L1"], element_size=8.0, bmd=120.0), nucleus_prepressure=0.1)
    with pytest.raises(InputError, match=r"nucleus_prepressure = 0.1 MPa: the segment \(L1\) has no nucleus"):
        simulate(seg, "relaxed_standing", factor_of_risk=False)


def test_prepressure_none_is_the_lying_pressure_where_there_is_a_nucleus():
    """``nucleus_prepressure=None``, the default: Wilke's lying-prone 0.10 MPa on a segment with discs, 0 on a
    single vertebra (solved with no rest state) and on discs without nucleus cells; a number is kept (0: stress-free
    discs), and one above 0 where there is no nucleus is an error naming it."""
    import inspect
    import types

    from vertebrafe.anatomy.segment import LYING_PREPRESSURE, resolve_prepressure

    assert LYING_PREPRESSURE == P_REST
    assert inspect.signature(vf.segment).parameters["nucleus_prepressure"].default is None
    assert _segment(None).nucleus_prepressure == P_REST
    assert vf.segment(["L4", "L5"], element_size=8.0, bmd=120.0).nucleus_prepressure == P_REST   # the default
    assert _segment(0.0).nucleus_prepressure == 0.0
    single = vf.segment(["L1"], element_size=8.0, bmd=120.0)
    assert single.nucleus_prepressure == 0.0
    assert vf.segment(["L1"], element_size=8.0, bmd=120.0, nucleus_prepressure=0.0).nucleus_prepressure == 0.0
    assert simulate(single, "relaxed_standing", factor_of_risk=False).solution.rest is None
    seg = _segment(0.0)
    assert resolve_prepressure(seg, None) == P_REST and resolve_prepressure(seg, 0.12) == 0.12
    region = seg.mesh.cell_data["region"].copy()
    region[region == vf.anatomy.REGION_CODES["nucleus"]] = vf.anatomy.REGION_CODES["annulus"]
    no_nucleus = types.SimpleNamespace(mesh=types.SimpleNamespace(cell_data={"region": region}), discs=seg.discs,
                                       levels=seg.levels)
    assert resolve_prepressure(no_nucleus, None) == 0.0 and resolve_prepressure(no_nucleus, 0.0) == 0.0
    with pytest.raises(InputError, match=r"nucleus_prepressure = 0.1 MPa: the segment \(L4-L5\) has no nucleus"):
        resolve_prepressure(no_nucleus, 0.1)


def test_default_segment_carries_the_lying_pressure_in_its_nucleus():
    """A segment built without ``nucleus_prepressure`` is solved from the rest state whose nuclei carry 0.10 MPa
    (Wilke's lying prone); a single vertebra, which has no nucleus, from the stress-free state."""
    res = simulate(vf.segment(["L4", "L5"], element_size=8.0, bmd=120.0, posterior=False), "relaxed_standing",
                   factor_of_risk=False)
    assert res.solution.rest is not None
    assert res.value("rest_pressure", "L4-L5", "nucleus") == pytest.approx(P_REST, rel=PRESSURE_RTOL)
    single = simulate(vf.segment(["L1"], element_size=8.0, bmd=120.0), "relaxed_standing", factor_of_risk=False)
    assert single.segment.nucleus_prepressure == 0.0 and single.solution.rest is None
    assert single.solution.model.initial_stress is None


@pytest.mark.parametrize("value", [-0.1, 0.8, "high", True, float("nan")])
def test_prepressure_out_of_range_is_an_error_naming_it(value):
    with pytest.raises(InputError, match=r"nucleus_prepressure = .* allowed range 0 to 0.5 MPa"):
        vf.segment(["L4", "L5"], element_size=8.0, bmd=120.0, posterior=False, nucleus_prepressure=value)


def test_prestressed_model_is_the_model_simulate_solves(linear, tmp_path):
    """``prestressed_model`` (what ``vertebrafe export`` writes) carries the rest state's swelling stress -s I in
    the nucleus cells and nothing elsewhere, and its solve is simulate's loaded solution; the .inp deck writes
    that stress (CalculiX round trip: tests/io/test_abaqus_ccx.py)."""
    from vertebrafe.simulate import prestressed_model

    res = linear[1][0]
    model, _, rest = prestressed_model(res.segment, vf.loads.preset("relaxed_standing"), solver="direct")
    s = res.value("swelling_stress", "L4-L5", "nucleus")
    assert rest.info["swelling_stress"]["L4-L5"] == pytest.approx(s, rel=1e-9)
    cells = nucleus_cells(res.segment)["L4-L5"]
    expected = np.zeros((res.segment.mesh.n_cells, 6))
    expected[cells, :3] = -rest.info["swelling_stress"]["L4-L5"]
    np.testing.assert_array_equal(model.initial_stress, expected)
    u = model.solve(solver="direct").displacement
    ref = res.solution.displacement
    assert np.abs(u - ref).max() <= 1e-6 * np.abs(ref).max()
    with pytest.warns(ExportWarning, match="no exact counterpart"):     # B-bar, as simulate's
        text = open(model.export(tmp_path / "m.inp")).read()
    assert text.count("*INITIAL CONDITIONS, TYPE=STRESS") == 1
    assert build_model(res.segment, vf.loads.preset("relaxed_standing"))[0].initial_stress is None


def test_affine_yield_scale_against_the_proportional_one():
    """With no rest strain the affine load scale is the proportional one; with a rest strain c times the load's,
    the strain is (c + lambda) times it, so lambda* = lambda_proportional - c exactly."""
    from vertebrafe.post.metrics import strain_ratio
    from vertebrafe.post.strength import affine_yield_scale, yield_scale

    rng = np.random.default_rng(3)
    load = rng.normal(scale=1e-3, size=(400, 6))
    vol = rng.uniform(0.5, 2.0, 400)
    g = rng.uniform(0.8, 1.2, 400)
    yc, yt = 0.0077, 0.0070
    from vertebrafe.elasticity import voigt_to_tensor
    p = np.linalg.eigvalsh(voigt_to_tensor(load))[:, ::-1]
    lam = yield_scale(strain_ratio(p, yc * g, yt * g), vol)
    assert affine_yield_scale(np.zeros_like(load), load, g, vol, yc, yt) == pytest.approx(lam, rel=1e-9)
    assert affine_yield_scale(0.3 * load, load, g, vol, yc, yt) == pytest.approx(lam - 0.3, rel=1e-9)


def test_in_situ_strength_with_a_rest_state_yields_the_fraction(linear):
    """The in-situ yield-volume strength of a pre-pressured segment scales only the load's strain: at the load
    scale found, 2 % of the vertebra's bone volume exceeds its yield strain under rest + lambda * load."""
    from vertebrafe.post.metrics import strain_ratio
    from vertebrafe.elasticity import voigt_to_tensor

    res = linear[1][0]
    sol, rest = res.solution, res.solution.rest
    mesh = res.segment.mesh
    names = mesh.tag_names["region"]
    bone = np.isin(mesh.cell_data["region"], [c for c, n in names.items() if n in ("cortex", "endplate", "cancellous")])
    L4 = mesh.cell_data["level"] == {n: c for c, n in mesh.tag_names["level"].items()}["L4"]
    cells = np.flatnonzero(bone & L4)
    lam = res.value("load_scale_yield", "L4", "vertebra")
    g = mesh.cell_data["yield_factor"][cells] if "yield_factor" in mesh.cell_data else np.ones(cells.size)
    vol = sol.cell_volume[cells]

    def fraction(scale):
        e = rest.cell_strain[cells] + scale * (sol.cell_strain[cells] - rest.cell_strain[cells])
        p = np.linalg.eigvalsh(voigt_to_tensor(e))[:, ::-1]
        return vol[strain_ratio(p, 0.0077 * g, 0.0070 * g) >= 1.0].sum() / vol.sum()

    assert fraction(lam * (1 + 1e-6)) >= 0.02 > fraction(lam * (1 - 1e-3))


def test_result_file_holds_the_motion_from_the_rest_state(linear):
    sol = linear[1][0].solution
    point, _ = sol.fields()
    assert np.allclose(point["motion_mm"], sol.displacement - sol.rest.displacement)
    assert "motion_mm" not in linear[0][0].solution.fields()[0]


@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_started_steps_give_the_rest_state_of_steps_from_scratch(solver):
    """Each step of the rest state starts from the combination of the steps before (``swelling._start``): the
    swelling stresses and the rest state are those of steps solved from scratch, to the pressure tolerance, and
    once two steps span the two discs' stresses the later steps cost no solve (with its springs' states kept the
    unloaded model is linear in them); AMG-CG takes fewer CG iterations in all."""
    seg = vf.segment("T12-L2", element_size=6.0, bmd=100.0, posterior=True)
    runs = {}
    for started in (False, True):
        unloaded = build_model(seg, vf.loads.preset("relaxed_standing"))[0].remove_loads()
        setup, infos = vf.fem.Setup(), []

        def solve(model, start, started=started, setup=setup, infos=infos):
            sol = model.solve(solver=solver, setup=setup, start=start if started else None)
            infos.append(sol.info)
            return sol

        runs[started] = rest_state(seg, P_REST, unloaded, solve), infos
    ((s0, rest0), infos0), ((s1, rest1), infos1) = runs[False], runs[True]
    assert s1.keys() == s0.keys() == {"T12-L1", "L1-L2"} and len(infos1) == len(infos0) >= 3
    p1 = nucleus_pressures(seg, rest1)
    for d in s0:
        assert s1[d] == pytest.approx(s0[d], rel=PRESSURE_RTOL)
        assert p1[d] == pytest.approx(P_REST, rel=PRESSURE_RTOL)
    assert np.allclose(rest1.displacement, rest0.displacement, rtol=0,
                       atol=PRESSURE_RTOL * np.abs(rest0.displacement).max())
    assert np.allclose(rest1.cell_stress, rest0.cell_stress, rtol=0, atol=PRESSURE_RTOL * np.abs(rest0.cell_stress).max())
    assert not any(i["start_accepted"] for i in infos0)
    assert [i["start_accepted"] for i in infos1] == [False, False] + [True] * (len(infos1) - 2)
    assert all(i["iterations"] == 0 for i in infos1[2:])
    if solver == "amg":
        assert sum(i["iterations"] for i in infos1) < sum(i["iterations"] for i in infos0[:2])


def test_rest_state_from_slack_springs_is_the_one_from_active_springs():
    """The rest state's first step starts from every one-sided spring slack or open (``swelling.rest_state``): the
    swollen disc opens the facets and leaves most ligaments slack. Its rest state is the solve of its swelling
    stresses from every spring active (the springs' initial state) to the solver's tolerance, the same springs
    taut, in fewer CG iterations (AMG-CG, T12-L2 at 6 mm)."""
    from vertebrafe.swelling import pre_stress
    seg = vf.segment("T12-L2", element_size=6.0, bmd=100.0, posterior=True)
    unloaded = build_model(seg, vf.loads.preset("relaxed_standing"))[0].remove_loads()
    infos = []

    def solve(model, start):
        sol = model.solve(solver="amg", start=start)
        infos.append(sol.info)
        return sol

    s, rest = rest_state(seg, P_REST, unloaded, solve)
    active = pre_stress(build_model(seg, vf.loads.preset("relaxed_standing"))[0].remove_loads(), seg, s)
    assert all(springs.active.all() for springs in active.springs)
    sol = active.solve(solver="amg")
    assert sol.spring_active.keys() == rest.spring_active.keys()
    for name, state in rest.spring_active.items():
        assert np.array_equal(state, sol.spring_active[name])
    assert np.allclose(rest.displacement, sol.displacement, rtol=0, atol=1e-6 * np.abs(sol.displacement).max())
    p = nucleus_pressures(seg, sol)
    assert all(p[d] == pytest.approx(P_REST, rel=10 * PRESSURE_RTOL) for d in s)
    assert infos[0]["iterations"] < sol.info["iterations"]


@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_load_started_from_the_rest_state_gives_the_solve_from_scratch(solver):
    """``simulate`` starts the loaded solve from the rest state (its springs' states and displacements): the
    solution is the solve of the same model from every spring active and zero displacements, to the solver's
    tolerance, the same springs taut (direct: to round-off, its solves ignore the start); AMG-CG takes fewer CG
    iterations."""
    from vertebrafe.simulate import prestressed_model
    seg = vf.segment("T12-L2", element_size=6.0, bmd=100.0, posterior=True)
    res = simulate(seg, "relaxed_standing", solver=solver, factor_of_risk=False)
    model = prestressed_model(seg, vf.loads.preset("relaxed_standing"), solver=solver)[0]
    assert all(springs.active.all() for springs in model.springs)
    sol = model.solve(solver=solver)
    new = res.solution
    for name, state in sol.spring_active.items():
        assert np.array_equal(state, new.spring_active[name])
    atol = (1e-10 if solver == "direct" else 1e-6) * np.abs(sol.displacement).max()
    assert np.allclose(new.displacement, sol.displacement, rtol=0, atol=atol)
    if solver == "amg":
        assert new.info["iterations"] < sol.info["iterations"]
