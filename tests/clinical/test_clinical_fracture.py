"""Fracture geometry: requested heights and angles, conformity, rigid motion above, Jacobians, inputs."""
import math

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import GRADE_HEIGHT_LOSS, fracture, history, measure
from vertebrafe.errors import InputError


@pytest.fixture(scope="module")
def seg():
    return vf.segment("T12-L2", bmd=80.0, element_size=3.0)


def _affected(m, kind):
    return {"wedge": ("anterior",), "biconcave": ("middle",), "crush": ("anterior", "middle", "posterior")}[kind]


@pytest.mark.parametrize("kind", ["wedge", "biconcave", "crush"])
@pytest.mark.parametrize("grade", [1, 2, 3])
def test_heights_and_angles_match_request(seg, kind, grade):
    m0 = measure(seg, "L1")
    f = fracture(seg, "L1", kind=kind, grade=grade)
    m = measure(f, "L1")
    loss = GRADE_HEIGHT_LOSS[grade]
    body = m0.posterior_height_mm
    for name in ("anterior", "middle", "posterior"):
        h0 = getattr(m0, f"{name}_height_mm")
        h = getattr(m, f"{name}_height_mm")
        if name in _affected(m, kind):
            assert abs(h - (1 - loss) * h0) < 0.01 * body
        elif not (kind == "wedge" and name == "middle"):
            assert abs(h - h0) < 0.01 * body                     # unaffected heights are kept
    assert m.height_loss_ratio == pytest.approx(loss, abs=0.01)
    assert m.genant_grade == grade
    # wedge angle expected from the requested heights: the superior endplate chord (length L, corners at
    # y = +-D_sup / 2) keeps its length, the inferior rim line is the local y axis
    d = seg.dimensions["L1"]
    L = math.hypot(d.superior_depth, m0.anterior_height_mm - m0.posterior_height_mm)
    la = loss if kind in ("wedge", "crush") else 0.0
    lp = loss if kind == "crush" else 0.0
    ha, hp = (1 - la) * m0.anterior_height_mm, (1 - lp) * m0.posterior_height_mm
    expected = -math.degrees(math.asin((ha - hp) / L))
    assert abs(m.wedge_angle_deg - expected) < 0.5
    dw = m.wedge_angle_deg - m0.wedge_angle_deg
    # the segmental (kyphotic) angle changes by the wedge change: the levels above follow rigidly
    assert m.kyphotic_angle_deg - m0.kyphotic_angle_deg == pytest.approx(dw, abs=1e-6)
    if kind == "biconcave":
        assert abs(dw) < 1e-9


def test_wedge_keeps_posterior_height_and_moves_levels_above_rigidly(seg):
    f = fracture(seg, "L1", kind="wedge", height_loss=0.3)
    m0, m = measure(seg, "L1"), measure(f, "L1")
    assert m.posterior_height_mm == pytest.approx(m0.posterior_height_mm, abs=1e-9)
    assert m.anterior_height_loss == pytest.approx(0.3, abs=1e-9)
    # T12 (and the disc above's top layer) moved as a rigid body: pairwise distances unchanged
    ns = seg.mesh.node_sets
    up = np.arange(ns["T12:inferior"].min(), seg.stack_points)        # the body-disc stack
    rng = np.random.default_rng(0).choice(up, 200, replace=False)
    d0 = np.linalg.norm(seg.mesh.points[rng][:, None] - seg.mesh.points[rng][None], axis=-1)
    d1 = np.linalg.norm(f.mesh.points[rng][:, None] - f.mesh.points[rng][None], axis=-1)
    assert np.abs(d1 - d0).max() < 1e-9
    # frames of the levels above follow the same motion; L1 and L2 unchanged
    R, o = f.frames["T12"]
    R0, o0 = seg.frames["T12"]
    loc0 = (seg.mesh.points[rng] - o0) @ R0
    assert np.allclose((f.mesh.points[rng] - o) @ R, loc0, atol=1e-9)
    for v in ("L1", "L2"):
        assert np.array_equal(f.frames[v][0], seg.frames[v][0])
    # below the fractured body nothing moved
    low = np.arange(0, ns["L1:inferior"].min())
    assert np.array_equal(f.mesh.points[low], seg.mesh.points[low])
    # wedge change recorded
    op = history(f)[-1]
    assert op.kind == "fracture" and op.parameters["type"] == "wedge" and op.parameters["height_loss"] == 0.3
    assert op.results["wedge_change_deg"] == pytest.approx(m.wedge_angle_deg - m0.wedge_angle_deg, abs=1e-9)


@pytest.mark.parametrize("kind", ["wedge", "biconcave", "crush"])
def test_positive_jacobians_up_to_half_height(seg, kind):
    for loss in (0.2, 0.35, 0.5):
        f = fracture(seg, "L1", kind=kind, height_loss=loss)
        assert f.mesh.quality().min_jacobian.min() > 0.0
        f.mesh.check_inverted()
    assert measure(f, "L1").height_loss_ratio == pytest.approx(0.5, abs=1e-6)


def test_input_not_modified_and_damage(seg):
    pts, C = seg.mesh.points.copy(), seg.elasticity.copy()
    data = {k: v.copy() for k, v in seg.mesh.cell_data.items()}
    f = fracture(seg, "L1", kind="wedge", grade=2)
    assert np.array_equal(seg.mesh.points, pts) and np.array_equal(seg.elasticity, C)
    assert set(seg.mesh.cell_data) == set(data)
    assert all(np.array_equal(seg.mesh.cell_data[k], v) for k, v in data.items())
    assert f.mesh is not seg.mesh and f.mesh.points is not seg.mesh.points and f.elasticity is not seg.elasticity
    assert history(seg) == ()
    dmg = f.mesh.cell_data["damage"]
    zone = dmg > 0
    lvl = f.mesh.cells_in("level", ["L1"])
    assert zone.any() and not np.any(zone & ~lvl)
    assert np.allclose(dmg[zone], 0.75)
    assert np.allclose(f.elasticity[zone], 0.25 * seg.elasticity[zone])
    assert np.array_equal(f.elasticity[~zone], seg.elasticity[~zone])
    # wedge: the damaged zone is anterior
    y = (f.mesh.cell_centers() - f.frames["L1"][1]) @ f.frames["L1"][0]
    assert y[zone, 1].mean() > y[lvl & ~zone, 1].mean() + 5.0


def test_single_level_segment():
    s = vf.segment("L3", element_size=4.0)
    f = fracture(s, "L3", kind="crush", height_loss=0.25)
    m = measure(f, "L3")
    assert m.kyphotic_angle_endplates == ("L3:superior", "L3:inferior")
    assert m.kyphotic_angle_deg == pytest.approx(m.wedge_angle_deg)
    assert max(m.anterior_height_loss, m.middle_height_loss, m.posterior_height_loss) == pytest.approx(0.25, abs=1e-6)
    assert f.elasticity is None and "damage" in f.mesh.cell_data


@pytest.mark.parametrize("kwargs, match", [
    (dict(level="L4"), "not in this segment"),
    (dict(level="T12-L1"), "is a disc"),
    (dict(level="L1", grade=4), "grade"),
    (dict(level="L1", grade=0), "grade"),
    (dict(level="L1", height_loss=0.0), "height_loss"),
    (dict(level="L1", height_loss=0.65), "height_loss"),
    (dict(level="L1", grade=1, height_loss=0.2), "not both"),
    (dict(level="L1", kind="burst"), "kind"),
    (dict(level="L1", damage_factor=0.0), "damage_factor"),
    (dict(level="L1", damage_regions=("nucleus",)), "damage_regions"),
])
def test_invalid_inputs(seg, kwargs, match):
    with pytest.raises(InputError, match=match):
        fracture(seg, **kwargs)


def test_refracture_rejected(seg):
    f = fracture(seg, "L1", grade=1)
    with pytest.raises(InputError, match="already"):
        fracture(f, "L1", grade=2)
    # a second level may be fractured; both records kept
    g = fracture(f, "T12", kind="biconcave", grade=1)
    assert [op.level for op in history(g)] == ["L1", "T12"]
    assert measure(g, "L1").anterior_height_loss == pytest.approx(GRADE_HEIGHT_LOSS[1], abs=1e-9)
    assert measure(g, "T12").middle_height_loss == pytest.approx(GRADE_HEIGHT_LOSS[1], abs=1e-6)
