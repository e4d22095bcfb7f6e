"""The direct active-set solve: one factorisation of a reference matrix, the springs that differ from it
by the Woodbury identity, shared by several loads; same answer as factorising every active set."""
import numpy as np
import pytest
import scipy.sparse as sp

import vertebrafe as vf
from vertebrafe.fem import Setup, active_set, solvers
from vertebrafe.loads import Load
from vertebrafe.simulate import build_model


@pytest.fixture(scope="module")
def seg():
    return vf.segment("L4-L5", bmd=120.0, element_size=6.0, posterior=True, fibres=False, nucleus="solid")


def _model(seg, load):
    return build_model(seg, load)[0]


@pytest.mark.parametrize("factor", ["pardiso", "superlu"])
def test_low_rank_solve_equals_a_factorisation_of_each_set(seg, factor, monkeypatch):
    """LowRank.solve on the model's own K and spring operator: springs switched on and off against the
    reference give the solution of the factorised matrix to round-off, with the columns of S from
    PARDISO's partial solves and from full solves of a factor without them (SuperLU)."""
    if factor == "pardiso" and not solvers.pardiso_available():
        pytest.skip("MKL PARDISO (pypardiso) not installed")
    if factor == "superlu":
        monkeypatch.setattr(solvers, "CHOLESKY_MIN_DOFS", 10 ** 9)
    model = _model(seg, Load(compression=500.0))
    K = model.stiffness()[0].tocsr()
    n = K.shape[0]
    rng = np.random.default_rng(1)
    rows = [s.gradient(model.mesh.n_points) for s in model.springs]
    G = sp.vstack(rows).tocsr()
    G = sp.hstack([G, sp.csr_matrix((G.shape[0], n - G.shape[1]))]).tocsr()
    k = np.concatenate([s.stiffness for s in model.springs])
    low = active_set.LowRank(K, G, k * (rng.random(k.size) < 0.5))
    assert low.backend == ("Cholesky (PARDISO)" if factor == "pardiso" else "LU (SuperLU)")
    for _ in range(3):
        d = k * (rng.random(k.size) < 0.5)
        b = K @ rng.standard_normal(n)
        x = low.solve(d, b)
        exact = solvers.factorize(K + G.T @ sp.diags(d) @ G)[0](b)
        assert np.abs(x - exact).max() <= 1e-8 * np.abs(exact).max()
    assert 0 < low.columns <= k.size                        # one column per spring that ever differed


@pytest.mark.parametrize("load", [Load(compression=0.0, flexion=7.5), Load(compression=500.0, extension=7.5)])
def test_same_answer_as_refactorising_every_step(seg, load, monkeypatch):
    """The low-rank loop against the loop that factorises each active set (no columns kept): same
    displacements to 1e-8 and the same final active set; base reactions balance the load to 1e-6."""
    model, applied = build_model(seg, load)
    fast = model.solve(solver="direct", rtol=1e-10)
    monkeypatch.setattr(active_set, "LOW_RANK_BYTES", 0)       # every set that differs is factorised
    slow = _model(seg, load).solve(solver="direct", rtol=1e-10)
    assert fast.info["spring_columns"] > 0 and slow.info["spring_columns"] <= 1
    for name in fast.spring_active:
        assert np.array_equal(fast.spring_active[name], slow.spring_active[name])
    scale = np.abs(slow.displacement).max()
    assert np.abs(fast.displacement - slow.displacement).max() <= 1e-8 * scale
    # equilibrium: the base reaction (cells and springs) balances the applied forces
    R = fast.reaction(applied.base)
    total = applied.total_force
    assert np.abs(R + total).max() <= 1e-6 * max(np.abs(total).max(), 1.0)
    assert fast.info["residual"] <= 1e-10


def test_reversed_loads_share_one_factorisation(seg):
    """Flexion then extension with one Setup: the second solve reuses the factorisation and its kept
    columns (no new set-up), the posterior ligaments taut in flexion go slack in extension, and both
    answers equal separate solves."""
    setup = Setup()
    flex = _model(seg, Load(compression=0.0, flexion=7.5)).solve(solver="direct", rtol=1e-10, setup=setup)
    ext = _model(seg, Load(compression=0.0, extension=7.5)).solve(solver="direct", rtol=1e-10, setup=setup)
    assert not flex.info["setup_reused"] and ext.info["setup_reused"]
    assert ext.info["setup_time"] == 0.0 and ext.info["assembly_time"] == 0.0
    lig = flex.model.spring_set("ligaments")
    names = {v: k for k, v in lig.group_names.items()}
    isl = (lig.group == names["L4-L5:ISL"]) & (lig.onset == 0.0)           # the first segment of the law
    assert flex.spring_active["ligaments"][isl].all() and not ext.spring_active["ligaments"][isl].any()
    assert (flex.spring_forces("ligaments")[isl] > 0).all()
    assert np.all(ext.spring_forces("ligaments")[isl] == 0.0)
    alone = _model(seg, Load(compression=0.0, extension=7.5)).solve(solver="direct", rtol=1e-10)
    scale = np.abs(alone.displacement).max()
    assert np.abs(ext.displacement - alone.displacement).max() <= 1e-8 * scale


def test_amg_reuses_its_hierarchy_for_a_second_load(seg):
    setup = Setup()
    first = _model(seg, Load(compression=0.0, flexion=7.5)).solve(solver="amg", rtol=1e-10, setup=setup)
    second = _model(seg, Load(compression=0.0, extension=7.5)).solve(solver="amg", rtol=1e-10, setup=setup)
    assert second.info["setup_reused"] and second.info["setup_time"] == 0.0
    direct = _model(seg, Load(compression=0.0, extension=7.5)).solve(solver="direct", rtol=1e-10)
    scale = np.abs(direct.displacement).max()
    assert np.abs(second.displacement - direct.displacement).max() <= 1e-6 * scale
    assert first.info["levels"] == second.info["levels"]
