"""Incompatible-modes hex8 (``formulation="incompatible"``): element properties and thin-layer bending.

Wilson's nine internal modes P = 1 - xi^2, 1 - eta^2, 1 - zeta^2 per component, with the Taylor,
Beresford & Wilson (1976) correction (mode gradients through the centre Jacobian, scaled by
det J0 / det J) and static condensation per cell. What is checked:

- the element matrix is symmetric positive semi-definite with exactly the six rigid-body modes as
  null space, on a slender rectangular cell and on a distorted one; the mapped mode gradients
  integrate to zero over a distorted cell (the property that makes the patch test pass; the patch
  tests themselves are in ``test_patch.py``);
- a cantilever with ONE cell through the thickness (and the width) at in-plane aspect ratios 5 and
  10 is within a few percent of Timoshenko, where full and B-bar hex8 are 10 to 40 times too stiff
  (shear locking), at nu = 0.3 and 0.45; the recovered stresses include the condensed modes: the
  Gauss-point shear is free of the parasitic bending term, the strain energy equals the work of the
  load, and the clamp reaction balances the load; trapezoidal cells (faces tilted across the
  thickness) lose much of the gain, the element's known limitation;
- a thin stiff layer (0.4 mm, E = 12 GPa, one cell through it, aspect 5) bonded on a soft block
  (E = 100 MPa) under a local pressure, plane strain: the surface deflection is within 3 % of a
  converged reference, where full and B-bar are 26-28 % too stiff;
- per-cell formulations (names, bool) assemble and solve, and bad input raises InputError.
"""
import dataclasses

import numpy as np
import pytest

from vertebrafe.elements import HEX8
from vertebrafe.errors import InputError
from vertebrafe.elasticity import isotropic
from vertebrafe.fem.kernels import MODES, element_stiffness, element_tables, gradients, mode_gradients

from vf_helpers import Model, grid, perturb

CORNERS = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                    [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=float)


def _cells():
    """A slender rectangular cell 5 x 2 x 1 mm and a distorted one (corners moved by up to 20 %)."""
    rect = 0.5 * CORNERS * [5.0, 2.0, 1.0]
    rng = np.random.default_rng(4)
    dist = rect + 0.2 * rng.uniform(-1, 1, rect.shape) * [2.5, 1.0, 0.5]
    return {"rectangular": rect, "distorted": dist}


def element_matrix(xe, C, code):
    tables = element_tables(HEX8)
    n = 8 + tables[3].shape[1]
    Ke = np.empty((3 * n, 3 * n))
    min_det = element_stiffness(xe, tables, C, code, np.empty((8, n, 3)), np.empty(8), np.empty((8, 3)),
                                np.empty((6, 3 * n)), Ke)
    assert min_det > 0
    return Ke[:24, :24].copy()


@pytest.mark.parametrize("nu", [0.3, 0.4999])
@pytest.mark.parametrize("cell", ["rectangular", "distorted"])
def test_element_matrix_symmetric_psd_with_six_rigid_modes(cell, nu):
    xe = _cells()[cell]
    K = element_matrix(xe, isotropic(100.0, nu), MODES)
    assert np.abs(K - K.T).max() <= 1e-14 * np.abs(K).max()
    ev = np.linalg.eigvalsh(K)
    tol = 1e-10 * ev.max()
    assert ev.min() > -tol
    assert np.sum(ev < tol) == 6
    # the zero-energy modes are the rigid motions
    rigid = np.zeros((24, 6))
    for a, x in enumerate(xe):
        rigid[3 * a:3 * a + 3, :3] = np.eye(3)
        rigid[3 * a:3 * a + 3, 3:] = [[0, x[2], -x[1]], [-x[2], 0, x[0]], [x[1], -x[0], 0]]
    assert np.abs(K @ rigid).max() <= 1e-11 * np.abs(K).max() * np.abs(xe).max()
    # condensation only removes energy: K_incompatible <= K_full (a softer element)
    ev_diff = np.linalg.eigvalsh(element_matrix(xe, isotropic(100.0, nu), 0) - K)
    assert ev_diff.min() > -1e-10 * ev.max()


def test_mapped_mode_gradients_integrate_to_zero_on_a_distorted_cell():
    """sum_g w_g det J_g grad P_i(x_g) = 0 for every mode (Taylor et al. 1976); without the det J0 / det J
    scaling the sum would be nonzero on this cell and constant strains would excite the modes."""
    xe = _cells()["distorted"]
    dN, w, dN0, dM = element_tables(HEX8)
    grad, detJ = np.empty((8, 11, 3)), np.empty(8)
    gradients(xe, dN, grad, detJ)
    mode_gradients(xe, dN0, dM, detJ, grad)
    scale = np.abs(grad[:, 8:]).max() * (w * detJ).sum()
    assert np.abs(np.einsum("g,g,gij->ij", w, detJ, grad[:, 8:])).max() < 1e-14 * scale
    # Wilson's original mapping with the Jacobian of each Gauss point does not integrate to zero here
    J = np.einsum("gak,aj->gkj", dN, xe)
    wilson = np.linalg.solve(J[:, None], dM[..., None])[..., 0]
    assert np.abs(np.einsum("g,g,gij->ij", w, detJ, wilson)).max() > 1e-3 * scale


# -- cantilever, one cell through the thickness ---------------------------------------------------

L, T, E, P = 100.0, 2.0, 1000.0, 1.0   # square section T x T; tip load P in -z


def timoshenko(nu):
    I, A = T ** 4 / 12.0, T * T
    return P * L ** 3 / (3 * E * I) + P * L / (5.0 / 6.0 * E / (2 * (1 + nu)) * A)


def cantilever(n_cells, formulation, nu):
    """Mean tip deflection (mm) and the solution of an n x 1 x 1 cantilever, root face clamped."""
    g = grid((n_cells, 1, 1), lengths=(L, T, T))
    model = Model(g.mesh(), E=E, nu=nu, formulation=formulation)
    model.fix(g.node_sets["xmin"], "xyz")
    model.add_traction(g.face_sets["xmax"], (0.0, 0.0, -P / T ** 2))
    sol = model.solve(solver="direct")
    return -sol.displacement[g.node_sets["xmax"], 2].mean(), sol, g


@pytest.mark.parametrize("nu", [0.3, 0.45])
@pytest.mark.parametrize("n_cells,tol", [(10, 0.04), (5, 0.08)])   # aspect ratio 5, 10
def test_cantilever_one_cell_through_thickness(n_cells, tol, nu):
    ref = timoshenko(nu)
    ratio = {f: cantilever(n_cells, f, nu)[0] / ref for f in ("full", "bbar", "incompatible")}
    print(f"aspect {L / n_cells / T:g}, nu {nu}: deflection / Timoshenko", ratio)
    assert abs(ratio["incompatible"] - 1.0) < tol
    # shear locking: full and B-bar hex8 are an order of magnitude too stiff
    assert ratio["full"] < 0.12 and ratio["bbar"] < 0.12


def test_cantilever_trapezoidal_cells_lose_accuracy():
    """Known limitation (MacNeal 1987): tilting the cell faces across the thickness (alternately, so the
    cells become trapezoids) brings back much of the locking; parallelogram cells are harmless. The
    tilt is the in-plane shift of the top against the bottom nodes over the thickness; the cortex of
    the anatomical meshes has tilts of about 0.05 (curved shell), the endplate about 0.002."""
    def deflection(tilt, formulation):
        g = grid((10, 1, 1), lengths=(L, T, T))
        inner = (g.ijk[:, 0] > 0) & (g.ijk[:, 0] < 10)
        sign = np.where(g.ijk[:, 0] % 2 == 0, 1.0, -1.0) * np.where(g.ijk[:, 2] == 1, 1.0, -1.0)
        g.points[:, 0] += np.where(inner, 0.5 * tilt * T * sign, 0.0)
        model = Model(g.mesh(), E=E, nu=0.3, formulation=formulation)
        model.fix(g.node_sets["xmin"], "xyz")
        model.add_traction(g.face_sets["xmax"], (0.0, 0.0, -P / T ** 2))
        return -model.solve(solver="direct").displacement[g.node_sets["xmax"], 2].mean() / timoshenko(0.3)

    r = {t: (deflection(t, "incompatible"), deflection(t, "bbar")) for t in (0.04, 0.2)}
    print("tilt: (incompatible, bbar) deflection / Timoshenko", r)
    assert 0.85 < r[0.04][0] < 0.95 and r[0.2][0] < 0.5
    assert all(inc > 3.0 * bbar for inc, bbar in r.values())


def test_cantilever_recovery_includes_the_modes():
    """Stresses from u_e alone would carry the parasitic shear of the bending mode, which varies over
    each cell (B-bar: up to 28 P/A at the Gauss points); with the condensed modes the Gauss-point shear
    is the transverse shear -P/A. The strain energy of the recovered stresses equals the work of the
    load, and the clamp carries the load."""
    delta, sol, g = cantilever(10, "incompatible", 0.3)
    A = T * T
    tip = g.node_sets["xmax"]
    work = 0.5 * (P / 4.0) * -sol.displacement[tip, 2].sum()
    assert abs(sol.strain_energy - work) / work < 1e-8
    np.testing.assert_allclose(sol.reaction(g.node_sets["xmin"]), [0.0, 0.0, P], atol=1e-9 * P)
    interior = g.cell_ijk[:, 0] > 0          # away from the clamped root face
    assert np.abs(sol.stress[interior, :, 5] + P / A).max() < 1e-6 * P / A
    # bending stress of a mid-span cell: the mean |sigma_xx| of its Gauss points is M z / I with the
    # moment M at the cell centre (the cell carries one curvature)
    pts = np.einsum("qa,mai->mqi", HEX8.shape, g.points[g.cells])
    c = np.flatnonzero(g.cell_ijk[:, 0] == 5)[0]
    M = P * (L - g.points[g.cells[c]].mean(axis=0)[0])
    expected = M * np.abs(pts[c, :, 2] - T / 2) / (T ** 4 / 12.0)
    assert abs(np.abs(sol.stress[c, :, 0]).mean() / expected.mean() - 1.0) < 1e-3


# -- thin stiff layer on a soft block -------------------------------------------------------------

LX, HL, HS, EL, ES = 20.0, 0.4, 4.0, 12000.0, 100.0


def layered_strip(nx, nl, ns, formulation):
    """Plane strain (uy = 0) strip: soft block HS over a clamped base, stiff layer HL on top, pressure
    1 MPa on the central 4 mm; returns the deflection (mm) of the top centre."""
    z = np.concatenate([np.linspace(0.0, HS, ns + 1), HS + np.linspace(0.0, HL, nl + 1)[1:]])
    g = grid((nx, 1, nl + ns), lengths=(LX, 1.0, 1.0))
    g.points[:, 2] = z[g.ijk[:, 2]]
    layer = g.cell_ijk[:, 2] >= ns
    model = Model(g.mesh(), E=np.where(layer, EL, ES), nu=0.3, formulation=formulation)
    model.fix(g.node_sets["zmin"], "xyz")
    model.fix(np.arange(len(g.points)), "y")
    top = g.face_sets["zmax"]
    model.add_pressure(top[np.abs(g.points[top].mean(axis=1)[:, 0] - LX / 2) < 2.0], 1.0)
    sol = model.solve(solver="direct")
    mid = np.flatnonzero((np.abs(g.points[:, 0] - LX / 2) < 1e-9) & (g.ijk[:, 2] == nl + ns))
    return -sol.displacement[mid, 2].mean()


def test_thin_stiff_layer_on_soft_block():
    ref = layered_strip(120, 4, 30, "bbar")        # 0.17 x 0.1 mm cells in the layer
    coarse = {f: layered_strip(10, 1, 4, f) / ref for f in ("full", "bbar", "incompatible")}
    print("layer one cell thick, aspect 5: deflection / reference", coarse)
    assert abs(coarse["incompatible"] - 1.0) < 0.03
    assert coarse["full"] < 0.8 and coarse["bbar"] < 0.8


# -- per-cell formulations --------------------------------------------------------------------------

def _block_model(formulation, nu=0.3):
    g = perturb(grid((4, 3, 3), lengths=(4.0, 3.0, 3.0)), 0.2, seed=2)
    model = Model(g.mesh(), E=np.where(g.cell_ijk[:, 0] < 2, 100.0, 2000.0), nu=nu, formulation=formulation)
    model.fix(g.node_sets["zmin"], "xyz")
    model.add_traction(g.face_sets["zmax"], (0.3, 0.0, -1.0))
    return g, model


def test_per_cell_formulations_assemble_and_solve():
    m = 36
    g, uniform = _block_model("incompatible")
    same = _block_model(np.full(m, "incompatible"))[1].solve(solver="direct")
    u_inc = uniform.solve(solver="direct").displacement
    np.testing.assert_array_equal(same.displacement, u_inc)
    # bool arrays keep their meaning (True = B-bar)
    u_bbar = _block_model("bbar")[1].solve(solver="direct").displacement
    np.testing.assert_array_equal(_block_model(np.ones(m, bool))[1].solve(solver="direct").displacement, u_bbar)
    # a mix: B-bar in the soft half, modes in the stiff half
    names = np.where(g.cell_ijk[:, 0] < 2, "bbar", "incompatible")
    model = _block_model(names)[1]
    assert model.formulation.tolist() == names.tolist()
    np.testing.assert_array_equal(model.bbar, g.cell_ijk[:, 0] < 2)
    sol = model.solve(solver="direct")
    np.testing.assert_allclose(sol.reaction(g.node_sets["zmin"]), [-0.3 * 12, 0.0, 12.0], atol=1e-9)
    # energy of the recovered fields (modes in the stiff half) equals the work of the load; the mix
    # differs from both pure models, so both kernels ran
    top = g.node_sets["zmax"]
    f_top = model.nodal_loads[top]
    assert abs(sol.strain_energy - 0.5 * (f_top * sol.displacement[top]).sum()) < 1e-9 * sol.strain_energy
    for u in (u_bbar, u_inc):
        assert np.abs(sol.displacement - u).max() > 1e-3 * np.abs(u).max()


def test_formulation_input_errors():
    g = grid((2, 2, 2), lengths=(1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="formulation = 'wilson'.*'incompatible'"):
        Model(g.mesh(), E=1.0, nu=0.3, formulation="wilson")
    with pytest.raises(InputError, match="formulation = 'eas'"):
        Model(g.mesh(), E=1.0, nu=0.3, formulation=["bbar"] * 7 + ["eas"])
    with pytest.raises(InputError, match=r"shape \(3,\)"):
        Model(g.mesh(), E=1.0, nu=0.3, formulation=np.ones(3, bool))
    with pytest.raises(InputError, match="shape"):
        Model(g.mesh(), E=1.0, nu=0.3, formulation=["bbar"] * 3)
    mesh = g.mesh()
    mesh.element = dataclasses.replace(HEX8, name="no-modes", mode_gradients=np.zeros((8, 0, 3)))
    with pytest.raises(InputError, match="'no-modes' does not define"):
        Model(mesh, E=1.0, nu=0.3, formulation="incompatible")
    Model(mesh, E=1.0, nu=0.3, formulation="bbar")
