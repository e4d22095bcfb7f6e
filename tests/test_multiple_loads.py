"""Several load cases on one model share one set-up and give what separate solves give."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.fem import Setup, solvers
from vertebrafe.simulate import simulate

PRESETS = ["relaxed_standing", "standing_flexed", "lifting", "flexion_moment", "lateral_bending_moment"]


@pytest.fixture(scope="module")
def seg():
    return vf.segment(["L4", "L5"], bmd=120.0, element_size=6.0)


@pytest.mark.parametrize("solver, presets", [("direct", PRESETS), ("amg", PRESETS[:3:2])])
def test_list_of_loads_equals_separate_solves(seg, solver, presets):
    together = simulate(seg, presets, solver=solver, rtol=1e-10)
    assert [r.case for r in together] == presets
    assert [r.info["setup_reused"] for r in together] == [False] + [True] * (len(presets) - 1)
    assert all(r.info["setup_time"] == 0.0 and r.info["assembly_time"] == 0.0 for r in together[1:])
    for name, res in zip(presets, together):
        alone = simulate(seg, name, solver=solver, rtol=1e-10)
        scale = np.abs(alone.solution.displacement).max()
        np.testing.assert_allclose(res.solution.displacement, alone.solution.displacement, rtol=0,
                                   atol=1e-8 * scale)
        assert res.info["residual"] <= 1e-10
        a, b = res.metrics["value"].to_numpy(), alone.metrics["value"].to_numpy()
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.fixture(scope="module")
def spring_seg():
    """Posterior elements and annulus fibres, without the nucleus swelling pre-pressure: its rest state (four
    or more active-set solves before each load) is shared by a list of loads in
    test_list_of_loads_equals_separate_solves (``seg``, the default pre-pressure) and solved with fibres in
    tests/test_swelling.py; here the springs' active sets are the subject. At 8 mm, as at 6 mm, the five
    presets switch different sets of all three kinds of springs (direct solves: annulus fibres 170-354 active,
    ligaments 35-105, facet joints 0, 2 or 4); the two tests below take 31 s of CPU at 8 mm, 40 s at 6 mm
    (pytest -n 1, warm numba cache, load 8)."""
    return vf.segment(["L4", "L5"], bmd=120.0, element_size=8.0, posterior=True, fibres=True, nucleus_prepressure=0.0)


@pytest.fixture(scope="module")
def spring_alone(spring_seg):
    """Separate direct solves of ``spring_seg``, one per preset, each made once for both lists below."""
    cache = {}

    def alone(name):
        if name not in cache:
            cache[name] = simulate(spring_seg, name, solver="direct", rtol=1e-10, factor_of_risk=False)
        return cache[name]
    return alone


@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_spring_sets_share_the_setup_of_a_list_of_loads(spring_seg, spring_alone, solver):
    """Posterior elements and annulus fibres (one-sided springs): one assembly and one factorisation or
    hierarchy for the list, each answer that of a separate solve. The separate solve is a direct one for
    both lists: the exact answer of the same model and springs (a separate AMG solve to 1e-10 gives the
    same active set and agrees with it to 6e-10 of the largest displacement, and would cost 18 s of CPU
    for two loads against 3 s)."""
    presets = PRESETS[:2] if solver == "amg" else PRESETS[::2]
    together = simulate(spring_seg, presets, solver=solver, rtol=1e-10, factor_of_risk=False)
    assert [r.info["setup_reused"] for r in together] == [False] + [True] * (len(presets) - 1)
    assert all(r.info["setup_time"] == 0.0 and r.info["assembly_time"] == 0.0 for r in together[1:])
    for name, res in zip(presets, together):
        alone = spring_alone(name)
        assert res.info["springs_active"] == alone.info["springs_active"]
        scale = np.abs(alone.solution.displacement).max()
        np.testing.assert_allclose(res.solution.displacement, alone.solution.displacement, rtol=0,
                                   atol=(1e-8 if solver == "direct" else 1e-6) * scale)


def test_plate_strengths_are_solved_once_per_vertebra_for_a_list_of_loads(seg, monkeypatch):
    from vertebrafe.post import strength
    calls = []
    original = strength.vertebra_strength
    monkeypatch.setattr(strength, "vertebra_strength", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    together = simulate(seg, PRESETS[:3], solver="direct")
    assert sorted(calls) == sorted(seg.levels)                   # not once per load
    strengths = [r.value("plate_strength_yield", "L4") for r in together]
    assert strengths[0] == strengths[1] == strengths[2]
    forces = [r.load.compression for r in together]
    np.testing.assert_allclose([r.value("factor_of_risk", "L4") for r in together],
                               np.array(forces) / strengths[0], rtol=1e-12)


def test_setup_kept_by_the_caller_serves_one_segment_at_a_time(seg, monkeypatch):
    from vertebrafe.post import strength
    calls = []
    original = strength.vertebra_strength
    monkeypatch.setattr(strength, "vertebra_strength", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    setup = Setup()
    first = simulate(seg, "relaxed_standing", solver="direct", setup=setup)
    second = simulate(seg, "lifting", solver="direct", setup=setup)
    assert second.info["setup_reused"] and sorted(calls) == sorted(seg.levels)
    assert second.value("plate_strength_yield", "L4") == first.value("plate_strength_yield", "L4")
    other = vf.segment(["L4", "L5"], bmd=60.0, element_size=6.0)          # another model: nothing reused
    third = simulate(other, "lifting", solver="direct", setup=setup)
    assert not third.info["setup_reused"] and len(calls) == 2 * len(seg.levels)
    alone = simulate(other, "lifting", solver="direct")
    np.testing.assert_allclose(third.metrics["value"].to_numpy(), alone.metrics["value"].to_numpy(), rtol=1e-6,
                               atol=1e-9)
    with pytest.raises(InputError, match="setup"):
        simulate(seg, "lifting", setup="yes")


def test_setup_is_rebuilt_when_the_constraints_change():
    mesh = vf.box((2.0, 2.0, 6.0), (2, 2, 6))
    setup = Setup()

    def model(extra_fix=False, force=-100.0):
        m = vf.Model(mesh, E=1000.0, nu=0.3)
        m.fix(mesh.node_sets["zmin"])
        if extra_fix:
            m.fix(mesh.node_sets["xmin"], "x")
        m.add_force(mesh.node_sets["zmax"], (0.0, 0.0, force / len(mesh.node_sets["zmax"])))
        return m

    first = model().solve(solver="direct", setup=setup)
    second = model(force=-300.0).solve(solver="direct", setup=setup)
    assert not first.info["setup_reused"] and second.info["setup_reused"]
    np.testing.assert_allclose(second.displacement, 3.0 * first.displacement, rtol=1e-10, atol=1e-14)
    changed = model(extra_fix=True).solve(solver="direct", setup=setup)
    assert not changed.info["setup_reused"]
    np.testing.assert_allclose(changed.displacement, model(extra_fix=True).solve(solver="direct").displacement,
                               rtol=1e-12, atol=1e-15)
    assert np.allclose(changed.displacement[mesh.node_sets["xmin"], 0], 0.0)


def test_cholmod_and_superlu_agree(monkeypatch):
    if not solvers.cholmod_available():
        pytest.skip("scikit-sparse (CHOLMOD) not installed")
    monkeypatch.setattr(solvers, "pardiso_available", lambda: False)     # CHOLMOD where MKL is missing
    mesh = vf.box((10.0, 10.0, 10.0), (12, 12, 12))              # 6 591 unknowns: CHOLMOD
    model = vf.Model(mesh, E=np.where(mesh.cell_centers()[:, 2] < 5.0, 100.0, 3000.0), nu=0.45)
    model.fix(mesh.node_sets["zmin"])
    model.rigid_plate(mesh.node_sets["zmax"]).load(force=(5.0, 0.0, -100.0), moment=(50.0, 0.0, 0.0))
    chol = model.solve(solver="direct", rtol=1e-10)
    assert chol.info["factorization"] == "Cholesky (CHOLMOD)"
    old = solvers.CHOLESKY_MIN_DOFS
    solvers.CHOLESKY_MIN_DOFS = 10 ** 9
    try:
        lu = model.solve(solver="direct", rtol=1e-10)
    finally:
        solvers.CHOLESKY_MIN_DOFS = old
    assert lu.info["factorization"] == "LU (SuperLU)"
    scale = np.abs(lu.displacement).max()
    np.testing.assert_allclose(chol.displacement, lu.displacement, rtol=0, atol=1e-9 * scale)


def test_bad_case_labels(seg):
    with pytest.raises(InputError, match="one per load"):
        simulate(seg, PRESETS[:2], case=["a"])
    with pytest.raises(InputError, match="non-empty list"):
        simulate(seg, [])


def test_plate_strengths_of_untouched_vertebrae_carry_over_to_a_treated_segment(monkeypatch):
    from vertebrafe.clinical import fracture
    from vertebrafe.post import strength
    intact = vf.segment("L1-L2", bmd=80.0, element_size=6.0)
    broken = fracture(intact, "L1", kind="wedge", grade=2)
    assert strength.vertebra_key(broken, "L2") == strength.vertebra_key(intact, "L2")
    assert strength.vertebra_key(broken, "L1") != strength.vertebra_key(intact, "L1")
    calls = []
    original = strength.vertebra_strength
    monkeypatch.setattr(strength, "vertebra_strength", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    setup = Setup()
    simulate(intact, "relaxed_standing", solver="direct", setup=setup)
    shared = simulate(broken, "relaxed_standing", solver="direct", setup=setup)
    assert calls == ["L1", "L2", "L1"]                          # L2 is not solved again
    alone = simulate(broken, "relaxed_standing", solver="direct")
    np.testing.assert_allclose(shared.metrics["value"].to_numpy(), alone.metrics["value"].to_numpy(), rtol=1e-6,
                               atol=1e-9)


def test_cement_next_to_a_vertebra_leaves_its_plate_strength_key_and_numbers_as_they_were(monkeypatch):
    """Cement in L1 adds a tissue (``cement_bone``) to the region table; L2's plate test reads the names of its
    own cells' regions only, so its key stays the fracture's and the cached strength is the one a fresh solve
    gives, bit for bit. What changes L2's strength changes its key: bone density, element size, a material
    (yield strain, density-modulus law), and cement in L2 itself."""
    from vertebrafe.clinical import fracture, vertebroplasty
    from vertebrafe.materials import MaterialSet
    from vertebrafe.post import strength

    def nsm(element_size=6.0, **materials):
        seg = vf.segment("L1-L2", element_size=element_size, materials=MaterialSet(**{"bmd": 80.0, **materials}))
        return fracture(seg, "L1", kind="wedge", grade=2)

    broken = nsm()
    treated = vertebroplasty(broken, "L1", volume=4.0)
    assert "cement_bone" in treated.mesh.tag_names["region"].values()
    assert "cement_bone" not in broken.mesh.tag_names["region"].values()
    key = strength.vertebra_key(broken, "L2")
    assert strength.vertebra_key(treated, "L2") == key                        # a hit
    assert strength.vertebra_key(treated, "L1") != strength.vertebra_key(broken, "L1")
    fresh = strength.vertebra_strength(treated, "L2", solver="direct")
    calls = []
    original = strength.vertebra_strength
    monkeypatch.setattr(strength, "vertebra_strength", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    cache = {}
    strength.plate_rows(broken, vf.loads.preset("relaxed_standing"), cache=cache, solver="direct")
    rows = strength.plate_rows(treated, vf.loads.preset("relaxed_standing"), cache=cache, solver="direct")
    assert calls == ["L1", "L2", "L1"]                                         # L2 is not solved again
    got = {m: v for lev, _, m, v, _ in rows if lev == "L2"}
    assert (got["plate_stiffness"], got["plate_strength_yield"], got["plate_strength_apparent"]) == (
        fresh.stiffness, fresh.strength_yield, fresh.strength_apparent)
    misses = [nsm(bmd=100.0), nsm(element_size=5.0), nsm(yield_strain_compression=0.008),
              nsm(law="kopperdahl2002"), vertebroplasty(treated, "L2", volume=4.0)]
    assert all(strength.vertebra_key(s, "L2") != key for s in misses)
