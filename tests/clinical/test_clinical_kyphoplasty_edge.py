"""Rounded contact-face edges of the kyphoplasty cavity (``kyphoplasty(edge_radius=...)``).

* The fillet against closed forms: two half-spaces rounded to radius rho meet on a quarter circle of radius
  rho tangent to both planes; the ellipsoid distance estimate is exact for a sphere and vanishes on any
  ellipsoid; rho = 0 is the sharp intersection.
* In the model (L1 alone, 4 mm, grade-2 wedge restored by half): the cavity holds the requested volume, the
  flat faces carry the lift force at the inflation pressure, the restoration does not change, and the
  cavity's surface turns smoothly from the flat face into the side (a vertical section through the balloon
  has no corner, where the sharp cavity's turns by tens of degrees at one point).
"""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, history, kyphoplasty
from vertebrafe.clinical.augment import body_frame_sizes, bolus_geometry
from vertebrafe.clinical.fillet import ellipsoid_distance, flat_face, rounded_intersection
from vertebrafe.clinical.kyphoplasty import DEFAULT_INFLATION_PRESSURE, DEFAULT_LIFT_FORCE, _EndplateFaces
from vertebrafe.errors import InputError

RADIUS = 2.0


def test_two_half_spaces_meet_on_a_quarter_circle():
    rho = 1.5
    t = np.linspace(0.0, 0.5 * np.pi, 91)
    x, z = -rho + rho * np.cos(t), -rho + rho * np.sin(t)         # the arc tangent to x = 0 and z = 0
    assert np.abs(rounded_intersection(x, z, rho)).max() < 1e-12
    # away from the corner the planes themselves; inside the arc's centre the larger distance
    assert rounded_intersection(np.array([0.0, -3.0]), np.array([-3.0, 0.0]), rho) == pytest.approx([0.0, 0.0])
    assert rounded_intersection(-2.0, -1.6, rho) == pytest.approx(-1.6)
    # the corner point itself lies outside by rho (sqrt 2 - 1)
    assert rounded_intersection(0.0, 0.0, rho) == pytest.approx(rho * (np.sqrt(2.0) - 1.0))
    assert np.array_equal(rounded_intersection(x, z, 0.0), np.maximum(x, z))
    # the flat face of the plane z = 0 ends where the arc starts
    assert flat_face(np.array([-rho - 1e-9, -rho + 1e-9]), rho).tolist() == [True, False]


def test_ellipsoid_distance_exact_for_a_sphere_zero_on_an_ellipsoid():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(3, 200)) * 4.0
    r = np.linalg.norm(p, axis=0)
    assert ellipsoid_distance(tuple(p), (3.0, 3.0, 3.0)) == pytest.approx(r - 3.0, abs=1e-12)
    a = np.array([2.0, 5.0, 9.0])
    u = p / r                                                      # points on the ellipsoid
    on = tuple(u * a[:, None])
    assert np.abs(ellipsoid_distance(on, a)).max() < 1e-12
    # first order near the surface: moving 0.01 mm along the outer normal adds 0.01 mm
    n = u / a[:, None]
    n /= np.linalg.norm(n, axis=0)
    out = tuple(u * a[:, None] + 0.01 * n)
    assert ellipsoid_distance(out, a) == pytest.approx(np.full(200, 0.01), rel=0.05)
    assert ellipsoid_distance((0.0, 0.0, 0.0), a) == -2.0


@pytest.fixture(scope="module")
def treated(kept_unchanged):
    nsm = fracture(vf.segment("L1", bmd=80.0, element_size=4.0), "L1", kind="wedge", grade=2)
    sharp = kyphoplasty(nsm, "L1", restoration=0.5)
    round_ = kyphoplasty(nsm, "L1", restoration=0.5, edge_radius=RADIUS)
    checks = [kept_unchanged(s) for s in (nsm, sharp, round_)]
    yield nsm, sharp, round_
    for check in checks:
        check()


def test_rounded_cavity_keeps_volume_contact_and_restoration(treated):
    _, sharp, round_ = treated
    s, r = history(sharp)[-1], history(round_)[-1]
    assert r.parameters["edge_radius_mm"] == RADIUS and s.parameters["edge_radius_mm"] == 0.0
    assert abs(r.results["volume_error"]) < 1e-4                  # the sampled cavity volume, solved to 1e-6
    assert float(np.sum(round_.mesh.cell_data["cement_fraction"] * round_.mesh.cell_volumes())) == pytest.approx(
        4800.0, rel=1e-4)
    assert r.results["contact_area_mm2"] == pytest.approx(DEFAULT_LIFT_FORCE / (2 * DEFAULT_INFLATION_PRESSURE),
                                                          rel=0.01)
    assert r.results["heights_after_mm"] == s.results["heights_after_mm"]
    assert r.results["kyphotic_correction_deg"] == s.results["kyphotic_correction_deg"]
    # rounding takes volume from the corners, so the balloons grow taller to keep the contact faces
    assert r.results["balloon_vertical_factor"] > s.results["balloon_vertical_factor"]


def _profile(seg, radius, step=0.02):
    """Height (mm, above the balloon's centre) of the cavity's top surface of the first balloon along its lateral
    axis through its centre, every ``step`` mm, from the recorded geometry: the ellipsoid and the clip surface
    above it (``rim_thickness`` under the superior endplate, the faces' interpolant), with the vertical
    distance to the clip surface as the slab's distance (the clip surface is nearly level over a balloon);
    per column the surface is found by bisection between the centre's height (inside) and the top of the
    ellipsoid (outside)."""
    op = history(seg)[-1]
    faces = _EndplateFaces(seg, "L1", seg.mesh.points, op.parameters["rim_thickness_mm"])
    W, D, H, zc, yc = body_frame_sizes(seg, "L1", seg.mesh.points)
    _, rots, axes = bolus_geometry("balloon2", W, D, H, zc, yc)
    a = axes[0] * op.results["balloon_scale"] * np.array([1.0, 1.0, op.results["balloon_vertical_factor"]])
    c, R = np.array(op.results["balloon_centres_mm"][0]), rots[0]
    x = np.arange(0.0, 0.98 * a[0], step)
    top = faces.top(c[:2] + x[:, None] * R[:2, 0])

    def g(z):
        return rounded_intersection(ellipsoid_distance((x, 0.0 * x, z), a), c[2] + z - top, radius)

    lo, hi = np.zeros(x.size), np.full(x.size, a[2] * 1.01)
    assert np.all(g(lo) < 0.0) and np.all(g(hi) > 0.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        inside = g(mid) <= 0.0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return x, lo


def _largest_turn(x, z, arc):
    """Largest change of direction (deg) of the polyline ``(x, z)`` within any ``arc`` mm of its length."""
    angle = np.arctan2(np.diff(z), np.diff(x))
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(z)))])[:-1]     # start of each segment
    j = np.searchsorted(s, s + arc, side="right") - 1
    return float(np.degrees(np.abs(angle[j] - angle).max()))


def test_contact_edge_is_rounded(treated):
    _, sharp, round_ = treated
    turns = {name: _largest_turn(*_profile(seg, radius), arc=0.2)
             for name, seg, radius in (("sharp", sharp, 0.0), ("round", round_, RADIUS))}
    # within 0.2 mm of its section the sharp cavity turns by the face edge's angle (tens of degrees at one
    # point); the rounded one by at most 0.2 mm of arc on the fillet's radius (5.7 deg) or on the ellipsoid's
    # smallest curvature radius in that section near the face (about 1.6 mm: 7 deg), plus the kinks of the
    # clip surface (linear between the endplate's nodes, about 1 deg)
    assert turns["sharp"] > 30.0
    assert turns["round"] < 10.0


def test_edge_radius_input_errors(treated):
    nsm = treated[0]
    for v in (-1.0, 10.5, "x"):
        with pytest.raises(InputError, match="edge_radius"):
            kyphoplasty(nsm, "L1", restoration=0.5, edge_radius=v)
    with pytest.raises(InputError, match="edge_radius.*surface='mixed'"):
        kyphoplasty(nsm, "L1", restoration=0.5, edge_radius=1.0, surface="fitted")
    # too round a balloon cannot carry the lift force on a flat face at the inflation pressure
    with pytest.raises(InputError, match="edge_radius = 3 mm leaves contact faces"):
        kyphoplasty(nsm, "L1", restoration=0.5, edge_radius=3.0)
