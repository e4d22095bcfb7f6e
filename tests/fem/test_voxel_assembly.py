"""The voxel fast path of the assembly: a mesh of identical cells assembled from shared reference
stiffnesses gives the same matrix as integrating every cell."""
import numpy as np

import vertebrafe as vf
from vertebrafe import elasticity
from vertebrafe.fem import assembly
from vertebrafe.fem.kernels import element_tables


def _voxel_model(shape=(6, 5, 4), seed=1, perturb=0.0):
    mesh = vf.box((3.0, 2.5, 2.0), shape, origin=(-1.0, 2.0, 0.5))
    if perturb:
        mesh = vf.Mesh(mesh.points + perturb * np.random.default_rng(seed).uniform(-1, 1, mesh.points.shape),
                       mesh.cells, node_sets=mesh.node_sets, face_sets=mesh.face_sets)
    m = mesh.n_cells
    rng = np.random.default_rng(seed)
    E = rng.uniform(50.0, 2000.0, m)                            # per-cell moduli (density-mapped bone)
    nu = np.where(rng.random(m) < 0.3, 0.4999, 0.3)             # nucleus-like and bone-like cells
    C = elasticity.isotropic(E, nu)
    C[:5] = elasticity.transversely_isotropic(1200.0, 400.0, 0.3, 0.2, 300.0)[None]   # anisotropic cells
    form = np.where(nu > 0.45, "bbar", "incompatible")
    form[5:9] = "full"
    model = vf.Model(mesh, C=C, formulation=form)
    top = mesh.node_sets["zmax"]
    bottom = mesh.node_sets["zmin"]
    model.prescribe(bottom, "xyz", 0.01 * np.arange(3 * bottom.size).reshape(-1, 3) % 0.07)  # mm, nonzero
    plate = model.rigid_plate(top)
    plate.load(force=(30.0, -10.0, -500.0), moment=(200.0, 0.0, 50.0))
    return model


def _matrix(model, fast):
    model.voxel_fast_path = fast
    K, rhs, info = model.stiffness()
    return K.toarray(), rhs, info["reference_cells"]


def test_reference_stiffness_equals_integration_to_round_off():
    model = _voxel_model()
    K_fast, rhs_fast, used = _matrix(model, True)
    K_gen, rhs_gen, used_gen = _matrix(model, False)
    assert used and not used_gen
    scale = np.abs(K_gen).max()
    assert np.abs(K_fast - K_gen).max() <= 1e-12 * scale
    assert np.abs(rhs_fast - rhs_gen).max() <= 1e-12 * np.abs(rhs_gen).max()
    model.voxel_fast_path = True
    u_fast = model.solve(solver="direct").displacement
    model.voxel_fast_path = False
    u = model.solve(solver="direct").displacement
    assert np.abs(u_fast - u).max() <= 1e-10 * np.abs(u).max()


def test_one_reference_per_poisson_ratio_and_formulation():
    mesh = vf.box((2.0, 2.0, 2.0), (4, 4, 4))
    m = mesh.n_cells
    E = np.linspace(10.0, 5000.0, m)
    nu = np.where(np.arange(m) % 2, 0.25, 0.4)
    C = elasticity.isotropic(E, nu)
    mat = np.arange(m, dtype=np.int64)
    form = np.where(np.arange(m) % 3 == 0, 1, 2).astype(np.int64)
    K_ref, group, scale, det = assembly.reference_stiffness(mesh.points, np.asarray(mesh.cells, np.int64), C, mat,
                                                           form, element_tables(mesh.element))
    assert K_ref.shape[0] == 4                                   # 2 Poisson ratios x 2 formulations
    assert np.allclose(det, 0.25 ** 3, rtol=1e-14)               # 0.5 mm cubes: det J = (h / 2)^3
    # the scale is the mean normal stiffness: E (1 - nu) / ((1 + nu)(1 - 2 nu)) for isotropic cells
    assert np.allclose(scale, E * (1 - nu) / ((1 + nu) * (1 - 2 * nu)), rtol=1e-13)


def test_distorted_cells_are_integrated():
    model = _voxel_model(perturb=0.02)
    K_fast, _, used = _matrix(model, True)
    K_gen, _, _ = _matrix(model, False)
    assert not used
    assert np.array_equal(K_fast, K_gen)
