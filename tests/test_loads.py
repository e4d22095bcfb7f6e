"""Loads: Load validation, moment signs, follower load, presets, upper-body load."""
import math

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe import loads
from vertebrafe.errors import InputError
from vertebrafe.loads import Load
from vertebrafe.simulate import simulate


@pytest.fixture(scope="module")
def one_level():
    return vf.segment(["L4"], bmd=120.0, element_size=6.0)


@pytest.fixture(scope="module")
def lordotic():
    """L3-L4: L3 leans back by the segmental angle (lordosis)."""
    return vf.segment(["L3", "L4"], bmd=120.0, element_size=6.0)


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
