"""Loads: Load validation, moment signs, follower load, presets, upper-body load."""
import math
from functools import partial

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe import loads
from vertebrafe.errors import InputError
from vertebrafe.loads import Load
from vertebrafe.simulate import simulate as simulate_with_strengths

#: The tests here read motions, reactions and applied loads, not the factor of risk: the plate
#: strengths (one solve of each vertebra alone between plates, made when the metrics are first read)
#: are left out.
simulate = partial(simulate_with_strengths, factor_of_risk=False)
#: Nor do they read the disc's rest state: the segments here carry no nucleus swelling pre-pressure (its
#: rest state, about four more solves before each load, is checked in tests/test_swelling.py). Equilibrium,
#: the signs of the motions and the equality of two load paths do not depend on it.
NO_PREPRESSURE = dict(nucleus_prepressure=0.0)


@pytest.fixture(scope="module")
def one_level():
    return vf.segment(["L4"], bmd=120.0, element_size=6.0)


@pytest.fixture(scope="module")
def lordotic():
    """L3-L4: L3 leans back by the segmental angle (lordosis)."""
    return vf.segment(["L3", "L4"], bmd=120.0, element_size=6.0, **NO_PREPRESSURE)


# -- Load -------------------------------------------------------------------------------------------
def test_load_fields_and_moment_vector():
    L = Load(compression=500, flexion=7.5, lateral_bending=-2.0, axial_rotation=1.0)
    np.testing.assert_allclose(L.moment, [-7500.0, -2000.0, 1000.0])
    np.testing.assert_allclose(L.moment_Nm, [-7.5, -2.0, 1.0])
    np.testing.assert_allclose(L.vertical_force, [0, 0, -500.0])
    np.testing.assert_allclose(Load(extension=3).moment, [3000.0, 0, 0])
    assert Load.from_dict(L.as_dict()) == L
    s = L.scaled(2.0)
    assert s.compression == 1000 and s.flexion == 15 and s.lateral_bending == -4
    with pytest.raises(AttributeError):
        L.compression = 3.0                                   # frozen


@pytest.mark.parametrize("kwargs, word", [
    (dict(compression=-1.0), "compression"),
    (dict(compression=float("nan")), "compression"),
    (dict(flexion=-2.0), "flexion"),
    (dict(flexion=2.0, extension=1.0), "at most one"),
    (dict(lateral_bending="x"), "lateral_bending"),
    (dict(reference_point=(1.0, 2.0)), "reference_point"),
    (dict(follower="yes"), "follower"),
])
def test_load_validation(kwargs, word):
    with pytest.raises(InputError, match=word):
        Load(**kwargs)


def test_presets_have_sources_and_loads():
    assert {"relaxed_standing", "standing_flexed", "lifting"} <= set(loads.PRESETS)
    for p in loads.PRESETS.values():
        assert p.source and p.status in ("verified", "memory", "derived")
        assert isinstance(p.load, Load) and not p.load.is_zero
    assert loads.preset("relaxed_standing").compression == 500.0
    assert loads.preset("lifting").compression > loads.preset("standing_flexed").compression
    with pytest.raises(InputError, match="known"):
        loads.preset("jogging")


# -- signs (one vertebra, pure moments) --------------------------------------------------------------
def _top_motion(seg, load):
    r = simulate(seg, load)
    t, th = r.solution.plate_motion(r.applied.plate)
    return r, t, th


def test_flexion_moves_the_top_forward(one_level):
    r, t, th = _top_motion(one_level, Load(flexion=5.0))
    assert th[0] < 0 and t[1] > 0                     # rotation about -x, top plate to +y (anterior)
    assert r.value("rotation_flexion") > 0
    r2, t2, th2 = _top_motion(one_level, Load(extension=5.0))
    np.testing.assert_allclose(t2, -t, rtol=1e-6, atol=1e-12)
    assert r2.value("rotation_flexion") < 0


def test_right_lateral_bending_moves_the_top_right(one_level):
    r, t, th = _top_motion(one_level, Load(lateral_bending=5.0))
    assert th[1] > 0 and t[0] > 0                     # rotation about +y, top plate to +x (right)
    assert r.value("rotation_lateral_bending") > 0
    _, tl, thl = _top_motion(one_level, Load(lateral_bending=-5.0))
    assert thl[1] < 0 and tl[0] < 0


def test_axial_rotation_turns_the_front_to_the_left(one_level):
    r, t, th = _top_motion(one_level, Load(axial_rotation=5.0))
    assert th[2] > 0
    nodes = one_level.node_sets["segment:superior"]
    ant = nodes[np.argmax(one_level.mesh.points[nodes, 1])]
    assert r.solution.displacement[ant, 0] < 0        # anterior edge moves to the patient's left (-x)
    assert r.value("rotation_axial") > 0


def test_reference_point_offset_adds_the_moment(one_level):
    """500 N applied 10 mm anterior of the centroid = 500 N at the centroid + 5 N m flexion."""
    c = one_level.mesh.points[one_level.node_sets["segment:superior"]].mean(axis=0)
    a = simulate(one_level, Load(compression=500.0, reference_point=tuple(c + [0, 10.0, 0])))
    b = simulate(one_level, Load(compression=500.0, flexion=5.0))
    np.testing.assert_allclose(a.solution.displacement, b.solution.displacement, rtol=1e-6,
                               atol=1e-9 * np.abs(b.solution.displacement).max())


# -- follower load ---------------------------------------------------------------------------------
def test_follower_path_and_guide_forces_balance(lordotic):
    seg = lordotic
    path = loads.follower_path(seg)
    assert path.shape == (len(seg.levels) + 2, 3)
    model = vf.Model(seg.mesh, C=seg.elasticity)
    ap = loads.apply(model, seg, Load(compression=800.0, follower=True))
    d = np.diff(path, axis=0)
    d /= np.linalg.norm(d, axis=1)[:, None]
    np.testing.assert_allclose(ap.force, 800.0 * d[0])
    np.testing.assert_allclose(ap.total_force, 800.0 * d[-1], atol=1e-9)   # telescoping sum
    assert ap.force[2] < 0 and abs(np.linalg.norm(ap.force) - 800.0) < 1e-9


def test_follower_load_rotates_a_lordotic_segment_far_less(lordotic):
    vert = simulate(lordotic, Load(compression=500.0))
    foll = simulate(lordotic, Load(compression=500.0, follower=True))
    rv, rf = abs(vert.value("rotation_flexion")), abs(foll.value("rotation_flexion"))
    # measured (6 mm mesh): vertical 1.34 deg (extension), follower 0.16 deg
    assert rv > 0.5
    assert rf < 0.25 * rv
    # both transmit 500 N to the base
    Fv = np.array([vert.value(f"reaction_force_{c}") for c in "xyz"])
    Ff = np.array([foll.value(f"reaction_force_{c}") for c in "xyz"])
    np.testing.assert_allclose(np.linalg.norm(Fv), 500.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(Ff), 500.0, rtol=1e-6)


# -- upper body ------------------------------------------------------------------------------------
def test_body_weight_fraction_table():
    assert loads.body_weight_fraction("L1") == pytest.approx(0.37)
    assert loads.body_weight_fraction("L5") == pytest.approx(0.474)
    assert loads.body_weight_fraction("T10") < loads.body_weight_fraction("L1")
    with pytest.raises(InputError, match="level"):
        loads.body_weight_fraction("C5")


def test_upper_body_closed_form():
    L = loads.upper_body(70.0, "L4")
    W = 9.81 * 70 * 0.448
    assert L.compression == pytest.approx(W + W * 0.03 / 0.05)          # phi = 0
    assert L.follower and L.flexion == 0.0
    assert 450 < L.compression < 550                                    # ~ 500 N standing at L4
    # 10 deg of added kyphosis, no compensation
    K = loads.upper_body(70.0, "L4", added_kyphosis=10.0)
    phi = math.radians(10.0)
    M = W * (0.03 * math.cos(phi) + 0.25 * math.sin(phi))
    assert K.compression == pytest.approx(W * math.cos(phi) + M / 0.05)
    # full compensation removes the effect; half compensation is in between
    assert loads.upper_body(70.0, "L4", 1.0, added_kyphosis=10.0).compression == pytest.approx(L.compression)
    half = loads.upper_body(70.0, "L4", 0.5, added_kyphosis=10.0).compression
    assert L.compression < half < K.compression
    # passive share goes to the flexion moment
    P = loads.upper_body(70.0, "L4", passive_share=0.5, added_kyphosis=10.0)
    assert P.flexion == pytest.approx(0.5 * M) and P.compression < K.compression
    # the shear component of the weight on request
    assert K.anterior_shear == 0.0
    S = loads.upper_body(70.0, "L4", added_kyphosis=10.0, shear=True)
    assert S.anterior_shear == pytest.approx(W * math.sin(phi)) and S.compression == K.compression
    with pytest.raises(InputError, match="compensation"):
        loads.upper_body(70.0, "L4", compensation=1.5)
    with pytest.raises(InputError, match="body_mass"):
        loads.upper_body(-3.0, "L4")
    with pytest.raises(InputError, match="level"):
        loads.upper_body(70.0)


def test_sagittal_angle_sign_matches_the_anatomy(lordotic):
    # L3-L4 lordotic: negative (kyphotic positive)
    seg = lordotic
    a = loads.sagittal_angle(seg)
    R = seg.frames["L3"][0]
    expected = -math.degrees(math.atan2(-R[1, 2], R[2, 2]))
    assert a < 0
    assert a == pytest.approx(-abs(expected), abs=3.0)   # endplate shapes differ a little from the frames
    assert loads.alignment_change(seg) == 0.0


def test_upper_body_follows_fracture_and_kyphoplasty():
    pytest.importorskip("vertebrafe.clinical")
    from vertebrafe.clinical import fracture, kyphoplasty, measure

    seg = vf.segment(["T12", "L1", "L2"], bmd=70.0, element_size=6.0)
    frac = fracture(seg, "L1", kind="wedge", grade=2)
    dk = loads.alignment_change(frac)
    dm = measure(frac, "L1").kyphotic_angle_deg - measure(seg, "L1").kyphotic_angle_deg
    assert dk > 3.0                                         # a grade-2 wedge adds several degrees
    assert dk == pytest.approx(dm, abs=1.0)                 # agrees with the radiological measure
    intact = loads.upper_body(70.0, segment=seg)
    broken = loads.upper_body(70.0, segment=frac)
    assert broken.compression > 1.1 * intact.compression
    bkp = kyphoplasty(frac, "L1")
    restored = loads.upper_body(70.0, segment=bkp)
    assert intact.compression <= restored.compression + 1e-9 < broken.compression
    assert loads.upper_body(70.0, segment=frac, compensation=1.0).compression == pytest.approx(intact.compression)


# -- shear, level loads, muscles, user loads: equilibrium and signs ----------------------------------
def _balance(r):
    """Base reactions + everything applied = 0 (force and moment about the top plate centre)."""
    sol = r.solution
    c = r.applied.plate.center
    F, M = loads.resultant(sol.model, c)
    RF = sol.reaction(r.applied.base)
    RM = sol.reaction_moment(r.applied.base, c)
    scale_f = max(np.abs(F).max(), 1.0)
    pts = sol.mesh.points
    scale_m = max(np.abs(M).max(), scale_f * np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    np.testing.assert_allclose(RF + F, 0.0, atol=1e-6 * scale_f)
    np.testing.assert_allclose(RM + M, 0.0, atol=1e-6 * scale_m)
    return F, M


def test_shear_fields_range_and_dict():
    L = Load(compression=500, anterior_shear=230.0, lateral_shear=-40.0)
    np.testing.assert_allclose(L.vertical_force, [-40.0, 230.0, -500.0])
    assert Load.from_dict(L.as_dict()) == L and L.scaled(2).anterior_shear == 460
    assert not Load(anterior_shear=1.0).is_zero
    with pytest.raises(InputError, match="anterior_shear"):
        Load(anterior_shear=1e5)
    assert loads.preset("lifting_kinematic").anterior_shear == 230.0


def test_anterior_shear_moves_the_top_forward_and_balances(lordotic):
    r = simulate(lordotic, Load(anterior_shear=200.0))
    t, _ = r.solution.plate_motion(r.applied.plate)
    assert t[1] > 0 and abs(t[1]) > 5 * abs(t[0])         # + y = anterior
    F, _ = _balance(r)
    np.testing.assert_allclose(F, [0, 200.0, 0], atol=1e-9)
    np.testing.assert_allclose(r.value("reaction_force_y"), -200.0, rtol=1e-6)
    rl = simulate(lordotic, Load(lateral_shear=-150.0, compression=300.0, follower=True))
    assert rl.solution.plate_motion(rl.applied.plate)[0][0] < 0          # - x = left
    _balance(rl)


@pytest.mark.parametrize("via", ["distributed", "plate"])
def test_level_load_on_the_lower_vertebra(lordotic, via):
    """A force + moment on L4 (not the top): equilibrium to 1e-6 and the signs of the motion of L4."""
    ll = loads.LevelLoad("L4", force=(0.0, 150.0, -400.0), moment=(-3.0, 0.0, 0.0), via=via)
    r = simulate(lordotic, Load(level_loads=[ll]))
    F, _ = _balance(r)
    np.testing.assert_allclose(F, [0, 150.0, -400.0], atol=1e-8)
    u = r.solution.displacement[lordotic.node_sets["L4:superior"]].mean(axis=0)
    assert u[1] > 0 and u[2] < 0                          # forward and down
    rec = r.record()["load_applied"]
    assert rec["level_loads"][0]["via"] == via


def test_distributed_load_resultant_is_exact(lordotic):
    mesh = lordotic.mesh
    lev = mesh.cell_data["level"] == loads._level_code(mesh, "L3")
    p = np.array([3.0, -20.0, 5.0])
    nodes, f, c = loads.distributed_load(mesh, lev, [10.0, -20.0, 30.0], [1000.0, -500.0, 200.0], p)
    np.testing.assert_allclose(f.sum(axis=0), [10.0, -20.0, 30.0], atol=1e-10)
    M = np.cross(mesh.points[nodes] - p, f).sum(axis=0)                 # about the point of the force
    np.testing.assert_allclose(M, [1000.0, -500.0, 200.0], atol=1e-8)


def test_level_load_on_top_vertebra_equals_the_plate_load(lordotic):
    a = simulate(lordotic, Load(level_loads=[loads.LevelLoad("L3", force=(0, 0, -500.0), via="plate")]))
    b = simulate(lordotic, Load(compression=500.0))
    np.testing.assert_allclose(a.solution.displacement, b.solution.displacement, rtol=1e-9, atol=1e-12)


def test_muscles_signs_and_balance(lordotic):
    from vertebrafe import muscles
    es = muscles.muscle(lordotic, "erector_spinae", "L3", 100.0)      # 5 N m: inside the linear range
    ra = muscles.muscle(lordotic, "rectus_abdominis", "L3", 200.0)
    np.testing.assert_allclose(np.linalg.norm(es.force), 100.0)
    # moment about the body centroid = arm x force: 0.05 m x 100 N = 5 N m
    c = loads.level_centroids(lordotic)["L3"]
    m = np.cross(np.asarray(es.point) - c, es.force) / 1000.0
    np.testing.assert_allclose(np.linalg.norm(m), 0.050 * 100.0, rtol=1e-9)
    r_es = simulate(lordotic, Load(level_loads=[es]))
    r_ra = simulate(lordotic, Load(level_loads=[ra]))
    _balance(r_es)
    _balance(r_ra)
    assert r_es.value("rotation_flexion") < 0 < r_ra.value("rotation_flexion")   # extensors extend
    assert r_es.value("reaction_force_z") > 0                                     # compression at the base
    assert muscles.balancing_force("erector_spinae", "L3", 7.5) == pytest.approx(150.0)
    with pytest.raises(InputError, match="rectus_abdominis"):
        muscles.balancing_force("rectus_abdominis", "T12", 1.0)
    with pytest.raises(InputError, match="force"):
        muscles.muscle(lordotic, "erector_spinae", "L3", -1.0)


def test_user_loads_hook(lordotic):
    seen = {}

    def push(model, segment):
        seen["called"] = True
        model.add_force(segment.node_sets["L4:superior"], np.array([0.0, 0.0, -1.0]))

    r = simulate(lordotic, Load(compression=100.0), user_loads=push)
    assert seen["called"] and r.record()["load_applied"]["user_loads"].endswith("push")
    F, _ = _balance(r)
    n = lordotic.node_sets["L4:superior"].size
    np.testing.assert_allclose(F[2], -100.0 - n, rtol=1e-12)
    with pytest.raises(InputError, match="user_loads"):
        simulate(lordotic, Load(compression=100.0), user_loads=3)


# -- level loads and muscles through case files -------------------------------------------------------
def _case(load):
    return {"segment": {"levels": "L3-L4", "element_size": 6.0, **NO_PREPRESSURE}, "bone": {"bmd": 120.0},
            "load": load}


def test_case_level_loads_and_muscles_balance(lordotic):
    """[[load.levels]] and [load.muscles] reach the solve: the applied forces are the closed-form sum and
    the base reactions balance everything to 1e-6."""
    from vertebrafe.case import run_case
    load = {"compression": 500.0, "levels": [{"level": "L4", "force": [0.0, 150.0, -400.0], "moment": [-3.0, 0, 0]},
                                             {"level": "L3", "force": [0.0, 0.0, -100.0], "via": "plate"}],
            "muscles": {"rectus_abdominis": {"L4": 80.0}}}
    r = run_case(_case(load))
    F, _ = _balance(r)
    # the bottom vertebra's frame is the global frame: the rectus pulls L4 straight down
    np.testing.assert_allclose(F, [0.0, 150.0, -500.0 - 400.0 - 100.0 - 80.0], atol=1e-8)
    applied = r.record()["load_applied"]["level_loads"]
    assert [(x["level"], x["via"], x["name"]) for x in applied] == [
        ("L4", "distributed", ""), ("L3", "plate", ""), ("L4", "distributed", "rectus_abdominis")]


def test_case_muscle_balance_removes_the_flexion():
    """``balance = true``: the erector spinae on the top vertebra take M / 50 mm and cancel the flexion
    moment about its centroid; the flexion rotation of 7.5 N m (about 5 deg on L3-L4) drops more than
    five-fold (body-disc stack, no posterior elements)."""
    from vertebrafe.case import run_case
    load = {"compression": 500.0, "flexion": 7.5, "follower": True}

    def body_disc(raw):                     # disc-only: the flexion the muscles must remove is large
        raw["segment"]["posterior"] = False
        return raw
    free = run_case(body_disc(_case(load)))
    held = run_case(body_disc(_case({**load, "muscles": {"balance": True}})))
    _balance(held)
    es = held.record()["load_applied"]["level_loads"][-1]
    assert es["name"] == "erector_spinae" and es["level"] == "L3"
    np.testing.assert_allclose(np.linalg.norm(es["force_N"]), 7.5 / 0.050, rtol=1e-12)
    np.testing.assert_allclose(es["moment_Nmm"], [7500.0, 0.0, 0.0], atol=1e-6)   # about the centroid
    assert free.value("rotation_flexion") > 3.0
    assert abs(held.value("rotation_flexion")) < free.value("rotation_flexion") / 5


def test_body_centroids_leave_out_the_posterior_arch(lordotic):
    """With the posterior elements the follower guides, the muscles' moment arms and the distributed level
    loads still refer to the vertebral bodies: their centroids are those of the segment without arches
    (the arches, 13 mm behind, would otherwise pull them back), and a muscle keeps its published arm."""
    from vertebrafe import muscles
    arches = vf.segment(["L3", "L4"], bmd=120.0, element_size=6.0, posterior=True)
    with_arches, bodies = loads.level_centroids(arches), loads.level_centroids(lordotic)
    for v in ("L3", "L4"):
        np.testing.assert_allclose(with_arches[v], bodies[v], atol=1e-9)
    es = muscles.muscle(arches, "erector_spinae", "L3", 100.0)
    arm = np.cross(np.asarray(es.point) - with_arches["L3"], es.force) / 100.0
    np.testing.assert_allclose(np.linalg.norm(arm), 50.0, rtol=1e-12)
