"""Membrane-shaped kyphoplasty cavity (``kyphoplasty(cavity="membrane")``).

* The shape against exact geometry between parallel plates: the threshold scales give the Minkowski sum of
  a stadium and a ball of the half-gap (Steiner's volume), flat faces on the plates exactly over the
  footprint and free sides whose section is a semicircle of the half-gap.
* In the model (L1 alone, 4 mm, grade-2 wedge restored by half): the cavity holds the requested volume, its
  contact face is the footprint, the rim reaches the endplates; inputs that cannot fit get errors naming the
  field and the allowed range.
"""
import math

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, kyphoplasty
from vertebrafe.clinical.augment import body_frame_sizes, bolus_geometry
from vertebrafe.clinical.membrane import minkowski_volume, stadium_distance, threshold_scale
from vertebrafe.errors import InputError

L, W, R = 3.0, 2.0, 4.0            # stadium half-length and radius at scale 1, half-gap (mm)


def _inside(across, along, v, s):
    """Direct test of the Minkowski sum at scale ``s``: horizontal distance from the footprint and height."""
    d = stadium_distance(across, along, s * L, s * W)
    return d * d + v * v <= R * R


def test_threshold_scale_is_the_minkowski_sum():
    rng = np.random.default_rng(3)
    p = rng.uniform(-14.0, 14.0, size=(3, 20000))
    p[2] *= R / 14.0 * 1.1                                          # heights across the gap and a little beyond
    thr = threshold_scale(p[0], p[1], p[2], R, L, W)
    for s in (0.0, 0.4, 1.0, 2.5):
        inside = _inside(p[0], p[1], p[2], s)
        assert np.array_equal(thr <= s, inside) and np.count_nonzero(inside) > 500
    assert np.all(np.isinf(thr[np.abs(p[2]) > R]))
    # monotone: a point inside at one scale stays inside at a larger one
    assert np.all(_inside(p[0], p[1], p[2], thr[np.isfinite(thr)].max() + 1e-9)[np.isfinite(thr)])


@pytest.mark.parametrize("s", [0.0, 1.0, 1.7])
def test_volume_is_steiners(s):
    h = 0.1                                                          # grid of cell centres, mm
    ext = s * (L + W) + R + h
    x = np.arange(-ext, ext, h) + 0.5 * h
    z = np.arange(-R, R, h) + 0.5 * h
    X, Y, Z = np.meshgrid(x, x, z, indexing="ij")
    inside = threshold_scale(X, Y, Z, R, L, W) <= s
    assert np.count_nonzero(inside) * h ** 3 == pytest.approx(minkowski_volume(s * L, s * W, R), rel=2e-3)
    # the exact closed form for a ball (s = 0)
    assert minkowski_volume(0.0, 0.0, R) == pytest.approx(4.0 / 3.0 * math.pi * R ** 3)


def test_flat_faces_and_semicircular_sides():
    s = 1.3
    # on the plates (v = +-R): inside exactly over the footprint
    rng = np.random.default_rng(5)
    a, b = rng.uniform(-8.0, 8.0, size=(2, 5000))
    on = threshold_scale(a, b, np.full(a.size, R), R, L, W) <= s
    assert np.array_equal(on, stadium_distance(a, b, s * L, s * W) == 0.0)
    # the side: points at distance R cos t beyond the footprint's rim at height R sin t lie on the surface
    t = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 181)
    for across, along in ((s * W, 0.0), (0.0, s * (L + W)), (s * W / math.sqrt(2), s * L + s * W / math.sqrt(2))):
        n = np.array([across, along - np.clip(along, -s * L, s * L)])
        n /= np.linalg.norm(n)                                       # outward normal of the footprint's rim
        pa, pb = across + R * np.cos(t) * n[0], along + R * np.cos(t) * n[1]
        assert threshold_scale(pa, pb, R * np.sin(t), R, L, W) == pytest.approx(np.full(t.size, s), abs=1e-9)
    # a disk footprint (no segment) as well
    assert threshold_scale(np.array([5.0]), np.array([0.0]), np.array([0.0]), R, 0.0, W) == pytest.approx([0.5])


@pytest.fixture(scope="module")
def fractured():
    return fracture(vf.segment("L1", bmd=80.0, element_size=4.0), "L1", kind="wedge", grade=2)


VOLUME = 14.0                      # mL: above the least volume of two balloons spanning this level's gap


@pytest.fixture(scope="module")
def membrane(fractured):
    return kyphoplasty(fractured, "L1", restoration=0.5, volume=VOLUME, cavity="membrane")


def test_cavity_holds_the_volume_and_its_faces_are_the_footprints(fractured, membrane):
    op = membrane.history[-1]
    res = op.results
    assert op.parameters["cavity"] == "membrane"
    assert abs(res["volume_error"]) < 0.05
    assert res["cement_volume_mL"] == pytest.approx(VOLUME, rel=0.05)
    s = res["balloon_scale"]
    sharp = kyphoplasty(fractured, "L1", restoration=0.5, volume=VOLUME)
    assert membrane.history[-1].results["heights_after_mm"] == sharp.history[-1].results["heights_after_mm"]
    _, _, axes = bolus_geometry("balloon2", *body_frame_sizes(membrane, "L1", membrane.mesh.points))
    l, w = axes[0, 1] - axes[0, 0], axes[0, 0]
    assert res["contact_area_mm2"] == pytest.approx(s * s * (4.0 * l * w + math.pi * w * w), rel=1e-12)
    assert math.isnan(res["balloon_vertical_factor"])
    fc = membrane.mesh.cell_data["cement_fraction"]
    fr = membrane.mesh.cell_data["compacted_fraction"]
    assert fc.max() > 0.99 and fr.max() > 0.5 and res["rim_volume_mL"] > 0.0
    assert np.all(fc + fr <= 1.0 + 1e-12)
    layered = kyphoplasty(fractured, "L1", restoration=0.5, volume=VOLUME, cavity="membrane", interface="layer")
    lr = layered.history[-1].results
    assert 0.0 < lr["layer_volume_mL"] < lr["cement_volume_mL"]
    assert lr["cement_volume_mL"] == pytest.approx(res["cement_volume_mL"], rel=1e-12)


def test_inputs_that_cannot_fit(fractured):
    with pytest.raises(InputError, match=r"volume = 4.8 mL is too small .* allowed volume >= "):
        kyphoplasty(fractured, "L1", restoration=0.5, volume=4.8, cavity="membrane")
    with pytest.raises(InputError, match="cavity = 'round'; allowed"):
        kyphoplasty(fractured, "L1", cavity="round")
    with pytest.raises(InputError, match="needs balloons that bear on both endplates"):
        kyphoplasty(fractured, "L1", restoration=0.0, volume=VOLUME, cavity="membrane")
    with pytest.raises(InputError, match="needs surface='mixed'"):
        kyphoplasty(fractured, "L1", volume=VOLUME, cavity="membrane", surface="fitted")
    with pytest.raises(InputError, match="lift_force = 200 N"):
        kyphoplasty(fractured, "L1", volume=VOLUME, cavity="membrane", lift_force=200)
