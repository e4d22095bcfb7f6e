"""``solver="auto"`` with PARDISO above ``ESTIMATE_MIN_DOFS``: the direct cost predicted from PARDISO's analysis of the
node-block graph matches its analysis of the matrix itself, slender models fill in far less than compact
ones, and the choice follows the predictions (memory budget, predicted times)."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.fem import solver_choice, solvers

pytestmark = pytest.mark.skipif(not solvers.pardiso_available(), reason="MKL PARDISO (pypardiso) not installed")


def _model(shape, lengths, E):
    """A box on a fixed base with a prescribed top; E (MPa) per cell from the cell centres' x."""
    mesh = vf.box(lengths, shape)
    x = mesh.cell_centers()[:, 0]
    model = vf.Model(mesh, E=np.where(x < 0.5 * lengths[0], E[0], E[1]), nu=0.3)
    model.fix(mesh.node_sets["zmin"])
    model.prescribe(mesh.node_sets["zmax"], "z", -0.1)
    return model


@pytest.fixture(scope="module")
def cube():
    """A compact two-material cube with a 30x contrast, 24 x 24 x 24 cells (46 875 unknowns)."""
    return _model((24, 24, 24), (20.0, 20.0, 20.0), (100.0, 3000.0))


@pytest.fixture(scope="module")
def bar():
    """A slender two-material bar with a 1e4 contrast, 4 x 4 x 624 cells (as many unknowns as the cube)."""
    return _model((4, 4, 624), (8.0, 8.0, 1248.0), (1.0, 10000.0))


def test_block_graph_predicts_the_analysis_of_the_matrix(cube):
    K = cube.stiffness()[0]
    cost = solver_choice.direct_cost(K.indptr, K.indices)
    exact = solvers.PardisoCholesky(K.tocsr(), factorize=False).statistics
    assert exact["factor_nonzeros"] > 0 and exact["flops"] > 0
    assert cost["factor_nonzeros"] == pytest.approx(exact["factor_nonzeros"], rel=0.1)
    assert cost["flops"] == pytest.approx(exact["flops"], rel=0.15)
    assert cost["memory_bytes"] == solver_choice.FACTOR_BYTES_PER_ENTRY * cost["factor_nonzeros"]
    assert cost["seconds"] == pytest.approx(cost["flops"] / solver_choice.FACTOR_FLOPS)


def test_a_slender_model_fills_in_far_less_than_a_compact_one(cube, bar):
    Kc, Kb = cube.stiffness()[0], bar.stiffness()[0]
    assert Kb.shape[0] == pytest.approx(Kc.shape[0], rel=0.1)
    cc = solver_choice.direct_cost(Kc.indptr, Kc.indices)
    cb = solver_choice.direct_cost(Kb.indptr, Kb.indices)
    assert cb["flops"] < cc["flops"] / 20
    assert cb["factor_nonzeros"] < cc["factor_nonzeros"] / 3


#: Measured ``Model.solve`` of both solvers, process CPU seconds on one thread: model, unknowns (those that
#: ``Model`` gives :func:`solver_choice.choose`), factorisation GFlop (predicted by :func:`direct_cost`),
#: stiffness contrast, springs, direct s, AMG-CG s. The calibration of ``FACTOR_FLOPS`` and
#: ``AMG_ITERATION_SECONDS_CONTRAST`` (benchmarks/README.md, "Re-fit of the cost model of 'auto' after the
#: cheaper AMG-CG iterations"): fitted on T12-L2 at 2 / 1.75 / 1.6 mm, checked on T12-L2 at 3 mm and on two
#: other segments, L1-L3 at 1.75 and 1.6 mm and L4-L5 at 1.5 mm (revision d8a5065, one process per model with
#: the solvers alternating, load 8-14). The calibration of ``ACTIVE_SET_SOLVES`` (benchmarks/README.md,
#: "Re-fit of the springs' term of 'auto' after the short CG steps"): fitted on the CG iterations of T12-L2 at
#: 2 / 1.75 / 1.6 mm, checked on the other segments. AMG-CG columns of the rows with springs: measured with
#: the active-set loop's short CG steps (revision abf28a0, ``--solve amg,direct --repeat 2`` or ``--solve
#: amg --repeat 2``, medians, load 4-7; T12-L2 with fibres
#: one run, ``--solve amg``, load 1). Direct columns:
#: T12-L2 at 2 / 1.75 / 1.6 mm and T10-L5 from the same runs, the others from d8a5065 (the direct code
#: unchanged since), the boxes (the fixtures above) and T12-L2 with fibres from 2817a11 (load 4-13).
#: T12-L2 at 1 mm: idle, two threads, wall seconds of the solve (PARDISO 151 s at 3ff9971, AMG-CG with the
#: short CG steps 24.3 s at 2d057a0).
MEASURED = [
    ("cube", 46_875, 45.6, 30.0, 0, 5.17, 1.02),
    ("bar", 46_875, 1.57, 1e4, 0, 0.75, 1.24),
    ("T12-L2 3 mm, posterior", 47_424, 25.65, 706.0, 474, 3.5, 5.1),
    ("T12-L2 2 mm, posterior", 127_227, 170.5, 706.0, 474, 11.9, 6.9),
    ("T12-L2 1.75 mm, posterior", 149_559, 182.5, 706.0, 474, 18.3, 12.4),
    ("T12-L2 1.6 mm, posterior", 189_477, 367.2, 706.0, 474, 23.6, 9.5),
    ("L1-L3 1.75 mm, posterior", 157_947, 219.5, 706.0, 498, 27.1, 8.4),
    ("L1-L3 1.6 mm, posterior", 256_467, 664.5, 706.0, 498, 64.4, 16.5),
    ("L4-L5 1.5 mm, posterior", 180_456, 310.6, 706.0, 249, 35.0, 10.8),
    ("T12-L2 1.75 mm, posterior and fibres", 146_097, 182.5, 2960.0, 54_474, 25.7, 58.3),
    ("T10-L5 2 mm, posterior", 361_353, 709.6, 706.0, 1695, 61.5, 43.7),
    ("T12-L2 1 mm, posterior", 828_012, 7560.0, 706.0, 474, 151.0, 24.3),
]


@pytest.mark.parametrize("name, n, gflop, contrast, springs, direct, amg", MEASURED,
                         ids=[m[0] for m in MEASURED])
def test_auto_picks_the_solver_measured_cheaper(name, n, gflop, contrast, springs, direct, amg, monkeypatch):
    monkeypatch.setattr(solver_choice, "memory_budget", lambda: 1e12)      # the time alone decides
    flops = 1e9 * gflop
    cost = {"flops": flops, "seconds": flops / solver_choice.FACTOR_FLOPS, "memory_bytes": 0.0,
            "analysis_seconds": 0.0}
    assert solver_choice.choose(n, cost, contrast, springs)[0] == ("direct" if direct < amg else "amg")


#: Measured ``Model.solve`` of both solvers on T12-L2 with posterior elements (revision 4e25827, one process
#: per model and thread count, the solvers alternating, ``benchmarks/solver_choice.py --solve direct,amg
#: --repeat 2``, medians; benchmarks/README.md, "The bound of 130,000 unknowns and the thread count"): model,
#: threads (numba and MKL), unknowns, factorisation GFlop, contrast, springs, direct s, AMG-CG s; process CPU
#: on one thread (load 2.7-4.2), wall on two (load 6.2-8.9). The rows at 2 mm (127 227 unknowns) were solved
#: directly by the bound of 130,000 unknowns before :data:`solver_choice.ESTIMATE_MIN_DOFS`, where AMG-CG was
#: measured cheaper on one thread and on two.
THREADS = [
    ("T12-L2 3 mm", 1, 47_424, 25.6, 706.0, 474, 2.12, 12.09),
    ("T12-L2 2.5 mm", 1, 55_839, 32.2, 706.0, 474, 2.74, 4.83),
    ("T12-L2 2 mm", 1, 127_227, 170.5, 706.0, 474, 14.21, 6.98),
    ("T12-L2 1.75 mm", 1, 149_559, 182.5, 706.0, 474, 17.73, 7.91),
    ("T12-L2 2 mm with fibres", 1, 127_227, 170.5, 2960.0, 47_274, 15.76, 68.75),
    ("T12-L2 3 mm", 2, 47_424, 25.6, 706.0, 474, 5.94, 10.29),
    ("T12-L2 2.5 mm", 2, 55_839, 32.2, 706.0, 474, 8.92, 12.13),
    ("T12-L2 2 mm", 2, 127_227, 170.5, 706.0, 474, 37.55, 16.75),
    ("T12-L2 1.75 mm", 2, 149_559, 182.5, 706.0, 474, 39.12, 18.93),
]


@pytest.mark.parametrize("name, threads, n, gflop, contrast, springs, direct, amg", THREADS,
                         ids=[f"{m[0]}, {m[1]} thread(s)" for m in THREADS])
def test_auto_with_its_bound_picks_the_solver_measured_faster(name, threads, n, gflop, contrast, springs, direct,
                                                              amg, monkeypatch):
    monkeypatch.setattr(solver_choice, "memory_budget", lambda: 1e12)      # the time alone decides
    flops = 1e9 * gflop
    cost = {"flops": flops, "seconds": flops / solver_choice.FACTOR_FLOPS, "memory_bytes": 0.0,
            "analysis_seconds": 0.0}
    # as Model.solve: direct without an estimate up to the bound, the predicted costs above
    pick = solver_choice.choose(n, cost, contrast, springs)[0] if n > solver_choice.ESTIMATE_MIN_DOFS else "direct"
    assert pick == ("direct" if direct < amg else "amg")


def test_auto_solves_a_slender_model_directly_above_the_dof_bound(bar, monkeypatch):
    monkeypatch.setattr(solver_choice, "ESTIMATE_MIN_DOFS", 6_000)
    sol = bar.solve()                                            # "auto"
    assert sol.info["solver"] == "direct"
    assert sol.info["choice_direct_seconds"] < sol.info["choice_amg_seconds"]
    assert sol.info["choice_direct_bytes"] <= sol.info["choice_memory_budget"]


def test_auto_takes_amg_when_the_factor_exceeds_the_memory_budget(bar, monkeypatch):
    monkeypatch.setattr(solver_choice, "ESTIMATE_MIN_DOFS", 6_000)
    monkeypatch.setattr(solver_choice, "memory_budget", lambda: 1e6)       # 1 MB
    sol = bar.solve()
    assert sol.info["solver"] == "amg"
    assert sol.info["choice_direct_bytes"] > 1e6


def test_auto_keeps_the_dof_bound_below_it(bar):
    sol = bar.solve()                                            # below ESTIMATE_MIN_DOFS: no estimate
    assert sol.info["solver"] == "direct"
    assert "choice_direct_seconds" not in sol.info


#: Measured with the nucleus pre-pressure (the default since 9d7601f): T12-L2 with posterior elements at 2 mm,
#: `python benchmarks/bench_simulate.py --posterior --solver direct|amg` on the idle machine (revision e4ece2a;
#: one thread: NUMBA_NUM_THREADS = MKL_NUM_THREADS = 1), wall seconds of the model (its rest state: 4 solves
#: on the load's set-up) and of the load's solve: model, threads, unknowns, GFlop, contrast, springs, direct s,
#: AMG-CG s. Each rest-state solve costs AMG-CG its CG iterations and the direct solver partial solves only.
#: Since d357c2d the rest state's steps start from the steps before: AMG-CG's costs about 2 solves of the load
#: (``swelling.EXPECTED_SOLVES``) instead of 4, and the run about half the CPU (36-37 s against 28-32 s direct,
#: under load; benchmarks/README.md, "The rest state's steps started from the steps before"): still slower.
PRESTRESSED = [
    ("T12-L2 2 mm, 0.1 MPa", 1, 127_227, 170.5, 706.0, 474, 18.56, 47.12),
    ("T12-L2 2 mm, 0.1 MPa", 2, 127_227, 170.5, 706.0, 474, 13.72, 37.42),
]


@pytest.mark.parametrize("name, threads, n, gflop, contrast, springs, direct, amg", PRESTRESSED,
                         ids=[f"{m[0]}, {m[1]} thread(s)" for m in PRESTRESSED])
def test_auto_counts_the_rest_states_solves(name, threads, n, gflop, contrast, springs, direct, amg, monkeypatch):
    """With the rest state's solves counted (``Setup.solves``, as :func:`vertebrafe.simulate` sets it) the pick
    is the solver measured faster; counting the load's solve alone picks AMG-CG, measured 2.5-2.7x slower."""
    from vertebrafe import swelling
    monkeypatch.setattr(solver_choice, "memory_budget", lambda: 1e12)
    flops = 1e9 * gflop
    cost = {"flops": flops, "seconds": flops / solver_choice.FACTOR_FLOPS, "memory_bytes": 0.0,
            "analysis_seconds": 0.0}
    measured = "direct" if direct < amg else "amg"
    assert solver_choice.choose(n, cost, contrast, springs, 1 + swelling.EXPECTED_SOLVES)[0] == measured
    assert solver_choice.choose(n, cost, contrast, springs)[0] != measured


def test_amg_cost_grows_with_the_solves_sharing_its_hierarchy():
    one, five = (solver_choice.amg_seconds(100_000, 706.0, 474, k) for k in (1, 5))
    setup = 100_000 * solver_choice.AMG_SETUP_SECONDS
    assert five - setup == pytest.approx(5 * (one - setup))


def test_simulate_tells_the_setup_how_many_solves_share_it():
    from vertebrafe import swelling
    seg = vf.segment("L4-L5", bmd=120, element_size=6, posterior=False, nucleus_prepressure=0.1)
    setup = vf.fem.Setup()
    vf.simulate(seg, "relaxed_standing", setup=setup, factor_of_risk=False)
    assert setup.solves == 1 + swelling.EXPECTED_SOLVES
    free = vf.segment("L4-L5", bmd=120, element_size=6, posterior=False, nucleus_prepressure=0)
    setup = vf.fem.Setup()
    vf.simulate(free, ["relaxed_standing", "standing_flexed", "lifting"], setup=setup, factor_of_risk=False)
    assert setup.solves == 3
    with pytest.raises(InputError, match="solves = 0"):
        vf.fem.Setup(solves=0)
