"""The nucleus pre-pressure (vertebrafe.swelling) on a coarse L4-L5: the rest state carries the asked pressure
and is self-equilibrated, a linear disc superposes rest state and load exactly (motions from the rest state
unchanged), fibres are taut at rest and the loaded fibre disc is in equilibrium."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.simulate import build_model, simulate
from vertebrafe.swelling import PRESSURE_RTOL, nucleus_cells

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


@pytest.mark.parametrize("value", [-0.1, 0.8, "high", True, float("nan")])
def test_prepressure_out_of_range_is_an_error_naming_it(value):
    with pytest.raises(InputError, match=r"nucleus_prepressure = .* allowed range 0 to 0.5 MPa"):
        vf.segment(["L4", "L5"], element_size=8.0, bmd=120.0, posterior=False, nucleus_prepressure=value)


def test_pre_stressed_model_is_not_exported(tmp_path):
    seg = _segment(P_REST)
    model, _ = build_model(seg, vf.loads.preset("relaxed_standing"))
    stress = np.zeros((seg.mesh.n_cells, 6))
    stress[nucleus_cells(seg)["L4-L5"], :3] = -1.0
    model.initial_stress = stress
    with pytest.raises(InputError, match="initial stress"):
        model.export(tmp_path / "m.inp")
