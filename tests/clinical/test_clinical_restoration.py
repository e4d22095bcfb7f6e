"""Balloon kyphoplasty mechanics against their physics and cadaver trends (L1 alone between plates, 4 mm).

* Mass conservation: the bone the balloon displaces ends up in the compacted rim, whose density is
  ``(V_rim + V_cavity) / V_rim`` times the host's and whose modulus follows the MaterialSet's
  density-modulus law (Morgan et al. 2003, vertebra: ``E ~ rho^1.56``); the crushed trabeculae the
  balloon compacts are no longer damaged.
* Endplate contact: a restored level is lifted by balloons bearing on both endplates; their contact
  face carries the lift force at the inflation pressure (area = force / pressure per balloon).
* Belkoff et al. 2001 (Spine 26:151; 16 osteoporotic bodies): the tamp restored the initial stiffness,
  vertebroplasty did not; both treated bodies are stiffer than the fracture. "Restored" is read as
  within two standard deviations of the cadaver stiffness ratio (SD 0.18 of the fracture's stiffness
  change, Wegrzyn et al. 2011), i.e. 0.64-1.36 of initial. Converged values (2 / 1.5 mm) are in
  docs/validation.md (the model's BKP overshoots: 1.38); the contact face (about 46 mm^2 per balloon)
  needs cells of 2 mm or less, so this coarse test checks the trends only.
"""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import contact_face_grading, fracture, history, kyphoplasty, vertebroplasty
from vertebrafe.clinical.augment import body_frame_sizes, bolus_geometry
from vertebrafe.clinical.kyphoplasty import DEFAULT_INFLATION_PRESSURE, DEFAULT_LIFT_FORCE, _EndplateFaces
from vertebrafe.errors import InputError
from vertebrafe.materials import LAWS
from vertebrafe.post.strength import vertebra_strength

#: Cadaver scatter of a stiffness ratio (SD of the post-fracture stiffness change, Wegrzyn et al. 2011).
STIFFNESS_RATIO_SD = 0.18


@pytest.fixture(scope="module")
def states(kept_unchanged):
    intact = vf.segment("L1", bmd=80.0, element_size=4.0)
    pair = intact, fracture(intact, "L1", kind="wedge", grade=2)
    checks = [kept_unchanged(s) for s in pair]
    yield pair
    for check in checks:
        check()


@pytest.fixture(scope="module")
def restored(states, kept_unchanged):
    """The default kyphoplasty of the fracture at restoration 0.5 (rim 1 mm, balloons on both endplates), shared
    by the tests below that read it (its endplate contact is solved once, not once per test)."""
    k = kyphoplasty(states[1], "L1", restoration=0.5)
    check = kept_unchanged(k)
    yield k
    check()


@pytest.fixture(scope="module")
def plate_k():
    """``plate_k(seg)``: L1's plate stiffness of one of the module's states, solved once for the tests below."""
    cache = {}

    def k(seg):
        if id(seg) not in cache:
            cache[id(seg)] = seg, _k(seg)
        return cache[id(seg)][1]
    return k


def _k(seg):
    return vertebra_strength(seg, "L1", solver="direct").stiffness


def test_rim_density_from_mass_conservation_and_modulus_from_density_law(states, restored):
    intact, nsm = states
    k = kyphoplasty(nsm, "L1", restoration=0.5, rim_thickness=4.0)        # thick enough for whole rim cells
    r = history(k)[-1].results
    vol = k.mesh.cell_volumes()
    fc, fr = k.mesh.cell_data["cement_fraction"], k.mesh.cell_data["compacted_fraction"]
    v_c, v_r = float(np.sum(fc * vol)), float(np.sum(fr * vol))
    assert r["rim_density_ratio"] == pytest.approx((v_r + v_c) / v_r, rel=1e-9)
    assert LAWS["morgan2003_vertebra"].b == 1.56
    assert r["rim_modulus_factor"] == pytest.approx(r["rim_density_ratio"] ** 1.56, rel=1e-12)
    whole = fr > 1.0 - 1e-12
    assert whole.any()
    # a cell that is all rim: the undamaged host elasticity times the factor, although it was damaged
    assert nsm.mesh.cell_data["damage"][whole].max() > 0.5
    np.testing.assert_allclose(k.elasticity[whole], r["rim_modulus_factor"] * intact.elasticity[whole], rtol=1e-9,
                               atol=1e-9 * np.abs(intact.elasticity).max())
    # the balloon compacts the crushed trabeculae it sweeps: no damage; a cell of rim only has the bone
    # yield strain (the damaged zone's factor 0.9 / 0.25 is gone)
    swept = fc + fr >= 0.5
    assert nsm.mesh.cell_data["damage"][swept].max() > 0.5
    assert np.all(k.mesh.cell_data["damage"][swept] == 0.0)
    np.testing.assert_allclose(k.mesh.cell_data["yield_factor"][whole], 1.0, rtol=1e-9)
    # a thinner rim holds the same displaced bone: denser and stiffer
    assert history(restored)[-1].parameters["rim_thickness_mm"] == 1.0
    thin = history(restored)[-1].results
    assert thin["rim_density_ratio"] > r["rim_density_ratio"] and thin["rim_modulus_factor"] > r["rim_modulus_factor"]


def test_contact_face_carries_the_lift_force_at_the_inflation_pressure(states, restored):
    _, nsm = states
    k = restored
    op = history(k)[-1]
    assert op.parameters["endplate_contact"] is True
    # the curves to grade a mesh toward (contact_face_grading): the faces, centred on the balloons, turned
    # with them, enclosing the face area of the record
    curves = contact_face_grading(k, "L1", factor=0.5, width=1.5, reach=4.0)
    assert len(curves) == 2
    for c, centre in zip(curves, op.results["balloon_centres_mm"]):
        assert c.centre == pytest.approx(centre[:2], abs=1e-12)
        assert np.pi * c.axes[0] * c.axes[1] == pytest.approx(op.results["contact_area_mm2"], rel=1e-12)
        assert abs(c.angle) == pytest.approx(15.0) and np.sign(c.angle) == np.sign(centre[0])
        assert (c.factor, c.width, c.reach) == (0.5, 1.5, 4.0)
    with pytest.raises(InputError, match="no kyphoplasty"):
        contact_face_grading(nsm, "L1")
    assert op.results["contact_area_mm2"] == pytest.approx(DEFAULT_LIFT_FORCE / (2 * DEFAULT_INFLATION_PRESSURE),
                                                           rel=0.01)
    # each balloon is free between the endplates: equal forces on both at one pressure, so equal faces (checked
    # on a finer grid than the solve's); a wedge restored by half leaves the superior endplate tilted
    faces = _EndplateFaces(k, "L1", k.mesh.points, op.parameters["rim_thickness_mm"], grid=301)
    W, D, H, zc, yc = body_frame_sizes(k, "L1", k.mesh.points)
    _, rots, axes = bolus_geometry("balloon2", W, D, H, zc, yc)
    axes[:, 2] *= op.results["balloon_vertical_factor"]
    for c, R, a in zip(np.array(op.results["balloon_centres_mm"]), rots, axes * op.results["balloon_scale"]):
        top, bottom = faces.areas(c, R, a)
        assert top == pytest.approx(op.results["contact_area_mm2"], rel=0.02)
        assert bottom == pytest.approx(op.results["contact_area_mm2"], rel=0.02)
    hard = history(kyphoplasty(nsm, "L1", restoration=0.5, inflation_pressure=2 * DEFAULT_INFLATION_PRESSURE))[-1]
    assert hard.results["contact_area_mm2"] == pytest.approx(0.5 * op.results["contact_area_mm2"], rel=0.01)
    assert hard.results["balloon_vertical_factor"] < op.results["balloon_vertical_factor"]
    # no height regained: the balloon need not touch the endplates
    free = history(kyphoplasty(nsm, "L1", restoration=0.0))[-1]
    assert free.parameters["endplate_contact"] is False and free.results["contact_area_mm2"] == 0.0
    for kw, match in ((dict(inflation_pressure=0.0), "inflation_pressure"), (dict(lift_force=-1.0), "lift_force"),
                      (dict(endplate_contact="yes"), "endplate_contact"), (dict(rim_modulus_factor=0.0), "rim_modulus")):
        with pytest.raises(InputError, match=match):
            kyphoplasty(nsm, "L1", **kw)


def test_belkoff_tamp_restores_stiffness_vertebroplasty_does_not(states, plate_k):
    intact, nsm = states
    k0, k_nsm = plate_k(intact), plate_k(nsm)
    bkp = kyphoplasty(nsm, "L1", restoration=0.97)                  # Belkoff: 97 % of the lost height
    v = history(bkp)[-1].results["cement_volume_mL"]
    k_bkp = _k(bkp) / k0
    k_vp = _k(vertebroplasty(nsm, "L1", volume=v)) / k0              # same cement volume
    # restored at least (the model overshoots: 1.38 of initial at 1.5 mm, docs/validation.md; an upper bound
    # at this coarse size would pass only because 4 mm under-resolves the contact faces)
    assert k_bkp > 1.0 - 2 * STIFFNESS_RATIO_SD, k_bkp
    assert k_nsm / k0 < k_vp < 1.0 and k_vp < k_bkp, (k_vp, k_bkp)
    # without the balloons bearing on the endplates the restored body stays far below initial
    assert _k(kyphoplasty(nsm, "L1", restoration=0.97, endplate_contact=False)) / k0 < 1.0 - 2 * STIFFNESS_RATIO_SD


def test_vertebroplasty_cement_fills_the_fracture_zone_under_the_collapsed_endplate(states, plate_k):
    """``placement="fracture"``: the cement of a fractured body hangs from the collapsed (superior) endplate and
    stays clear of the other one; the crushed bone it fills is composite, not damaged. Cadaver trends
    (fractures created by compression, cement injected into them): stronger than the fracture (Belkoff et
    al. 2001), initial strength about restored at 16 % fill (Molloy et al. 2003: 16.2 % on average; read as
    within one SD, 0.19, of the cadaver strength ratio, Wegrzyn et al. 2011), stiffness not restored at
    moderate fill (Belkoff 2001)."""
    from vertebrafe.post.strength import vertebra_pushover

    intact, nsm = states
    centre = vertebroplasty(nsm, "L1", fill=0.16)
    frac = vertebroplasty(nsm, "L1", fill=0.16, placement="fracture")
    r = history(frac)[-1].results
    assert history(frac)[-1].parameters["placement"] == "fracture"
    # the default surface: body-fitted (no cut cell) for the centred bolus, mixed for the hanging one
    assert history(centre)[-1].parameters["surface"] == "fitted" and history(frac)[-1].parameters["surface"] == "mixed"
    assert np.all(np.isin(centre.mesh.cell_data["cement_fraction"], (0.0, 1.0)))
    assert abs(r["volume_error"]) < 1e-3
    # clearance from the (inferior, superior) endplate as fractions of the local height, over the cement samples
    lo, hi = r["endplate_clearance"]
    assert lo >= 0.15 - 1e-9 and hi < 0.05, (lo, hi)
    assert min(history(centre)[-1].results["endplate_clearance"]) >= 0.15 - 1e-9
    m = frac.mesh
    full = m.cell_data["cement_fraction"] >= 0.5
    assert nsm.mesh.cell_data["damage"][full].max() > 0.5 and np.all(m.cell_data["damage"][full] == 0.0)

    p0, p_nsm = (vertebra_pushover(x, "L1", solver="direct").strength for x in (intact, nsm))
    p_frac = vertebra_pushover(frac, "L1", solver="direct").strength
    assert p_frac > p_nsm and abs(p_frac / p0 - 1.0) < 0.19, (p_nsm / p0, p_frac / p0)
    assert _k(frac) < plate_k(intact)
    for kw, match in ((dict(placement="cleft"), "placement"), (dict(placement="fracture", surface="fitted"), "surface"),
                      (dict(placement="fracture", offset=(0.0, 0.0, 1.0)), "offset")):
        with pytest.raises(InputError, match=match):
            vertebroplasty(nsm, "L1", **kw)
    with pytest.raises(InputError, match="not fractured"):
        vertebroplasty(intact, "L1", placement="fracture")

