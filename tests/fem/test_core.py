"""Unit checks of the FE core internals: pattern, colouring, assembly, constraints, output."""
import numpy as np
import pytest
import scipy.sparse as sp

import vertebrafe as vf
from vertebrafe.elements import HEX8
from vertebrafe.errors import ConstraintError, InputError
from vertebrafe import elasticity
from vertebrafe.fem import assembly, solvers
from vertebrafe.fem.kernels import element_tables
from vertebrafe.fem.model import FORMULATIONS


def distorted_box(shape=(3, 2, 2), seed=0, amount=0.08):
    mesh = vf.box((3.0, 2.0, 2.0), shape)
    rng = np.random.default_rng(seed)
    pts = mesh.points + amount * rng.uniform(-1, 1, mesh.points.shape)
    return vf.Mesh(pts, mesh.cells, node_sets=mesh.node_sets, face_sets=mesh.face_sets)


def assembled(mesh, C, formulation="full", free=None, g=None):
    n, m = mesh.n_points, mesh.n_cells
    node_plate = np.full(n, -1, np.int64)
    indptr, indices = assembly.block_pattern(mesh.cells, node_plate, n, 0)
    color_ptr, chunk_ptr, order = assembly.color_cells(mesh.cells, n, np.ones(m, bool), 2)
    N = 3 * n
    free = np.ones(N, bool) if free is None else free
    g = np.zeros(N) if g is None else g
    data = np.zeros((indices.size, 3, 3))
    rhs = np.zeros(N)
    min_det = np.zeros(m)
    assembly.assemble(mesh.points, mesh.cells, C[None], np.zeros(m, np.int64), element_tables(HEX8),
                      np.full(m, FORMULATIONS[formulation], np.int64), assembly.no_reference(8), node_plate,
                      np.zeros((0, 3)), indptr, indices, color_ptr, chunk_ptr,
                      order, np.zeros(0, np.int64), free, g, data, rhs, min_det)
    return sp.bsr_matrix((data, indices, indptr), shape=(N, N)), rhs, min_det


def test_block_pattern_lists_the_coupled_blocks_of_each_row_sorted():
    """Rows of the block pattern are the blocks coupled through a cell, sorted (the plate's two blocks
    stand for its nodes, so their rows are long), with the self-block of every block; cells in random order."""
    mesh = vf.box((3.0, 2.0, 2.0), (7, 5, 4))
    cells = np.random.default_rng(1).permutation(mesh.cells)
    n = mesh.n_points
    node_plate = np.full(n, -1, np.int64)
    node_plate[mesh.node_sets["zmax"]] = 0
    indptr, indices = assembly.block_pattern(np.ascontiguousarray(cells, dtype=np.int64), node_plate, n, 1)
    rows = [{b} for b in range(n + 2)]
    for cell in cells:
        blocks = {b for v in cell for b in ([v] if node_plate[v] < 0 else [n, n + 1])}
        for b in blocks:
            rows[b] |= blocks
    assert indptr.tolist() == np.cumsum([0] + [len(r) for r in rows]).tolist()
    assert indices.tolist() == [b for r in rows for b in sorted(r)]


def test_colour_chunks_share_no_node():
    mesh = vf.box((1, 1, 1), (12, 10, 9))
    color_ptr, chunk_ptr, order = assembly.color_cells(mesh.cells, mesh.n_points, np.ones(mesh.n_cells, bool), 2)
    assert np.sort(order).tolist() == list(range(mesh.n_cells))
    for c in range(color_ptr.size - 1):
        owner = np.full(mesh.n_points, -1)
        for j in range(color_ptr[c], color_ptr[c + 1]):
            nodes = np.unique(mesh.cells[order[chunk_ptr[j]:chunk_ptr[j + 1]]])
            assert np.all(owner[nodes] == -1), "two chunks of one colour share a node"
            owner[nodes] = j


@pytest.mark.parametrize("formulation", ["full", "bbar", "incompatible"])
def test_stiffness_is_symmetric_with_rigid_body_nullspace(formulation):
    mesh = distorted_box()
    C = elasticity.orthotropic(100, 80, 200, 0.2, 0.3, 0.25, 30, 40, 50)
    K, _, min_det = assembled(mesh, C, formulation)
    K = K.tocsr()
    assert abs(K - K.T).max() <= 1e-12 * abs(K).max()
    modes = solvers.rigid_body_modes(mesh.points)
    assert np.abs(K @ modes).max() <= 1e-11 * abs(K).max()
    assert np.all(min_det > 0)
    # positive definite on the complement of the rigid modes: smallest 7th eigenvalue > 0
    eig = np.linalg.eigvalsh(K.toarray())
    assert np.sum(eig < 1e-9 * eig.max()) == 6


def test_stiffness_matches_scikit_fem():
    skfem = pytest.importorskip("skfem")
    import meshio
    from skfem.io.meshio import from_meshio
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    mesh = distorted_box()
    K, _, _ = assembled(mesh, elasticity.isotropic(100.0, 0.3))
    sk = from_meshio(meshio.Mesh(mesh.points, [("hexahedron", mesh.cells)]))
    basis = skfem.Basis(sk, skfem.ElementVector(skfem.ElementHex1()), intorder=3)
    Ks = skfem.asm(linear_elasticity(*lame_parameters(100.0, 0.3)), basis)
    perm = basis.nodal_dofs.T.ravel()
    assert abs(K.tocsr() - Ks[perm][:, perm]).max() <= 1e-12 * abs(Ks).max()


def test_elimination_moves_prescribed_columns_to_the_right_hand_side():
    mesh = distorted_box()
    C = elasticity.isotropic(50.0, 0.25)
    K, _, _ = assembled(mesh, C)
    K = K.toarray()
    rng = np.random.default_rng(3)
    free = rng.random(K.shape[0]) > 0.3
    g = np.where(free, 0.0, rng.standard_normal(K.shape[0]))
    Kr, rhs, _ = assembled(mesh, C, free=free, g=g)
    Kr = Kr.toarray()
    np.testing.assert_allclose(Kr[np.ix_(free, free)], K[np.ix_(free, free)], atol=1e-12)
    assert np.all(Kr[np.ix_(free, ~free)] == 0) and np.all(Kr[np.ix_(~free, free)] == 0)
    np.testing.assert_allclose(rhs[free], -K[np.ix_(free, ~free)] @ g[~free], atol=1e-10)


@pytest.mark.parametrize("formulation", ["bbar", "incompatible"])
def test_plate_equals_the_kinematic_tie_it_replaces(formulation):
    """A plate driven by a prescribed motion equals prescribing the rigid motion on its nodes."""
    mesh = distorted_box((4, 3, 3))
    top = mesh.node_sets["zmax"]
    t, th = np.array([0.01, -0.02, -0.05]), np.array([0.004, -0.003, 0.002])
    a = vf.Model(mesh, E=200.0, nu=0.3, formulation=formulation)
    a.fix(mesh.node_sets["zmin"])
    plate = a.rigid_plate(top, center=(1.5, 1.0, 2.0))
    plate.prescribe(translation=t, rotation=th)
    sa = a.solve(solver="direct")
    b = vf.Model(mesh, E=200.0, nu=0.3, formulation=formulation)
    b.fix(mesh.node_sets["zmin"])
    b.prescribe(top, "xyz", t + np.cross(th, mesh.points[top] - (1.5, 1.0, 2.0)))
    sb = b.solve(solver="direct")
    np.testing.assert_allclose(sa.displacement, sb.displacement, atol=1e-12)
    f, mom = sa.plate_reaction(plate)
    np.testing.assert_allclose(f, sb.reaction(top), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mom, sb.reaction_moment(top, (1.5, 1.0, 2.0)), rtol=1e-9, atol=1e-9)


def test_amg_and_direct_agree():
    mesh = vf.box((4, 3, 2), (12, 9, 6))
    model = vf.Model(mesh, E=np.where(mesh.cell_centers()[:, 0] < 2, 100.0, 3000.0), nu=0.3)
    model.fix(mesh.node_sets["zmin"])
    plate = model.rigid_plate(mesh.node_sets["zmax"])
    plate.load(force=(10.0, 0.0, -200.0), moment=(50.0, 0.0, 0.0))
    d = model.solve(solver="direct")
    a = model.solve(solver="amg", rtol=1e-10)
    assert a.info["solver"] == "amg" and a.info["iterations"] > 1
    assert a.info["residual"] <= 1e-10
    np.testing.assert_allclose(a.displacement, d.displacement, atol=1e-7 * np.abs(d.displacement).max())
    for phase in ("pattern_time", "assembly_time", "constraints_time", "setup_time", "solve_time"):
        assert a.info[phase] >= 0


def test_constraint_errors_name_the_problem():
    mesh = vf.box((1, 1, 1), (2, 2, 2))
    model = vf.Model(mesh, E=10.0, nu=0.3)
    with pytest.raises(InputError, match="dofs = 'w'"):
        model.fix(mesh.node_sets["zmin"], "w")
    with pytest.raises(InputError, match="node 99"):
        model.fix([0, 99])
    with pytest.raises(InputError, match="mask has shape"):
        model.fix(np.ones(3, bool))
    model.fix(mesh.node_sets["zmax"], "z")
    model.rigid_plate(mesh.node_sets["zmax"])
    with pytest.raises(ConstraintError, match="tied to rigid plate 0"):
        model.solve()
    with pytest.raises(ConstraintError, match="already belong to rigid plate 0"):
        model.rigid_plate(mesh.node_sets["zmax"][:2])
    with pytest.raises(InputError, match="solver = 'lu'"):
        vf.Model(mesh, E=10.0, nu=0.3).fix(mesh.node_sets["zmin"]).solve(solver="lu")


def test_solution_file_keeps_names_sets_and_fields(tmp_path):
    mesh = vf.box((2, 1, 1), (4, 2, 2))
    region = (mesh.cell_centers()[:, 0] > 1).astype(np.int64)
    mesh = vf.Mesh(mesh.points, mesh.cells, cell_data={"region": region},
                   tag_names={"region": {0: "cancellous", 1: "cement"}}, node_sets=mesh.node_sets,
                   face_sets=mesh.face_sets)
    model = vf.Model(mesh, E=np.where(region == 1, 3000.0, 100.0), nu=0.3)
    model.fix(mesh.node_sets["xmin"])
    model.add_pressure(mesh.face_sets["xmax"], 0.5)
    sol = model.solve()
    path = tmp_path / "result.vtu"
    sol.save(path)
    back = vf.Mesh.load(path)
    assert back.tag_names["region"] == {0: "cancellous", 1: "cement"}
    np.testing.assert_array_equal(back.node_sets["xmin"], mesh.node_sets["xmin"])
    import meshio
    m = meshio.read(path)
    np.testing.assert_allclose(m.point_data["displacement_mm"], sol.displacement)
    np.testing.assert_allclose(m.cell_data["von_mises_MPa"][0], sol.von_mises)
    # the pressure resultant (0.5 MPa on a 1 mm^2 face) comes back as the support reaction
    np.testing.assert_allclose(sol.reaction(mesh.node_sets["xmin"]), [0.5, 0, 0], atol=1e-9)


def test_material_table_equals_numpys_unique_rows():
    from vertebrafe.fem.model import _unique_rows

    rng = np.random.default_rng(3)
    table = rng.standard_normal((7, 36))
    table[2, 5] = -0.0                                   # equal to 0.0 elsewhere in the same row
    rows = table[rng.integers(0, 7, 500)]
    rows[rows == -0.0] = 0.0
    rows[::7, 5] = np.where(rows[::7, 5] == 0.0, -0.0, rows[::7, 5])
    collide = np.array([[1.0, 0.0, 2.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0]])   # equal weighted sums
    for case in (rows, collide, rows[:, :2]):
        ours, theirs = _unique_rows(case), np.unique(case, axis=0, return_index=True, return_inverse=True)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)
