"""Each tissue's own stress in cells that hold several phases (vertebrafe.clinical.phasestress,
vertebrafe.post.metrics.tissue_stresses), against closed forms of flat layers.

Uniaxial stress sigma across the layers (normal n along the load): every phase carries sigma along n
(traction continuity) and, with Poisson's ratios, the in-plane stress ``(E_p eps_t + nu_p sigma) / (1 - nu_p)``
with the common in-plane strain ``eps_t = -sigma <nu / (1 - nu)> / <E / (1 - nu)>`` (free sides: the in-plane
stresses average to zero). Uniaxial stress along the layers (n across the load): the phases share the
in-plane strains and carry no stress along n; each is in plane stress, and the two in-plane strains follow
from the mean stresses (0 across the load, sigma along it). With nu = 0 along the layers each phase carries
``E_p eps`` with the cell's strain ``eps = sigma / <E>``, so a PMMA layer carries ``E_PMMA / <E>`` times the cell's
(mixed) stress; that is what the per-tissue rows report for it.
"""
import types

import numpy as np
import pytest

from vertebrafe.clinical.phasestress import phase_stress_data, phase_stress_maps
from vertebrafe.elasticity import isotropic, laminate
from vertebrafe.fem.solution import von_mises
from vertebrafe.materials import PHASE_STRESS
from vertebrafe.post.metrics import tissue_stresses, tissue_volumes
from vertebrafe.post.plate import plate_test

from test_post_phase_strength import AREA, CODES, E_CEMENT as E_PMMA, E_HOST, E_RIM, FC, FR, tagged_column

TISSUES = ("cancellous", "compacted_bone", "cement")
SIGMA = np.array([0.0, 0.0, -2.0, 0.0, 0.0, 0.0])            # uniaxial compression along z (MPa)


def _phases(E, nu, k):
    return np.stack([np.broadcast_to(isotropic(e, v), (k, 6, 6)) for e, v in zip(E, nu)])


def _phase_stresses(E, nu, f, normal):
    """Stress ``(p, 6)`` of each phase of one laminate cell under :data:`SIGMA` (each phase its own tissue)."""
    phases = _phases(E, nu, 1)
    fr = np.asarray(f, dtype=float)[:, None]
    n = np.asarray([normal], dtype=float)
    strain = np.linalg.solve(laminate(phases, fr, n)[0], SIGMA)
    maps = phase_stress_maps(phases, fr, n, TISSUES[:len(E)])[0]
    return maps[:len(E)] @ strain


def test_uniaxial_stress_across_the_layers():
    E, nu, f = (100.0, 300.0, 3000.0), (0.2, 0.25, 0.3), (0.5, 0.2, 0.3)
    s = _phase_stresses(E, nu, f, (0.0, 0.0, 1.0))
    E, nu, f = map(np.asarray, (E, nu, f))
    eps_t = -SIGMA[2] * np.sum(f * nu / (1 - nu)) / np.sum(f * E / (1 - nu))
    inplane = (E * eps_t + nu * SIGMA[2]) / (1 - nu)
    hand = np.zeros((3, 6))
    hand[:, 0] = hand[:, 1] = inplane
    hand[:, 2] = SIGMA[2]
    np.testing.assert_allclose(s, hand, rtol=1e-12, atol=1e-12 * abs(SIGMA[2]))
    np.testing.assert_allclose(f @ s, SIGMA, atol=1e-12)          # the phases' mean stress is the cell's


def test_uniaxial_stress_along_the_layers():
    E, nu, f = np.array([100.0, 3000.0]), np.array([0.2, 0.3]), np.array([0.6, 0.4])
    s = _phase_stresses(E, nu, f, (1.0, 0.0, 0.0))
    k = E / (1 - nu ** 2)                                         # plane stress (sigma_xx = 0) in every phase
    A = np.array([[np.sum(f * k), np.sum(f * k * nu)], [np.sum(f * k * nu), np.sum(f * k)]])
    eyy, ezz = np.linalg.solve(A, [0.0, SIGMA[2]])                # mean sigma_yy = 0, mean sigma_zz = sigma
    hand = np.zeros((2, 6))
    hand[:, 1] = k * (eyy + nu * ezz)
    hand[:, 2] = k * (ezz + nu * eyy)
    np.testing.assert_allclose(s, hand, rtol=1e-12, atol=1e-12 * abs(SIGMA[2]))


def test_cell_of_one_phase_and_equal_strain_rule():
    """A cell entirely of one phase has that phase's elasticity as its map (its stress is the cell's); the
    Voigt rule (normals None) gives each phase its own elasticity times the cell's strain."""
    phases = _phases((100.0, 3000.0), (0.2, 0.3), 2)
    f = np.array([[1.0, 0.4], [0.0, 0.6]])
    maps = phase_stress_maps(phases, f, np.array([[0.3, -0.2, 0.9], [0.0, 0.0, 1.0]]), ("cancellous", "cement"))
    np.testing.assert_allclose(maps[0, 0], phases[0, 0], rtol=0, atol=1e-12 * phases[0, 0].max())
    np.testing.assert_array_equal(maps[:, 1], 0.0)                # no compacted bone in either cell
    voigt = phase_stress_maps(phases, f, None, ("cancellous", "cement"))
    np.testing.assert_allclose(voigt[1, 0], phases[0, 1], rtol=1e-15)
    np.testing.assert_allclose(voigt[1, 2], phases[1, 1], rtol=1e-15)
    data = phase_stress_data(np.array([7, 9]), phases, f, None, ("cancellous", "cement"))[PHASE_STRESS]
    np.testing.assert_array_equal(data[0], [9])                   # only the cell of two phases keeps a map


@pytest.fixture(scope="module")
def column():
    """The four 10 mm cubes of test_post_phase_strength (host 100, rim 300, PMMA 3000 MPa; per cell, bottom
    to top, the cement and rim fractions FC, FR, the host the rest; the top cell all rim, not cut), here
    with the layers along the load (normal x), nu = 0, compressed between plates: every cell carries
    sigma = F / A, cell i strains sigma / <E>_i and its phase p carries E_p sigma / <E>_i."""
    mesh, cut = tagged_column()
    m = mesh.n_cells
    mesh.set_cell_data("cement_fraction", np.where(cut, FC, 0.0))
    mesh.set_cell_data("compacted_fraction", np.where(cut, FR, 0.0))
    phases = _phases((E_HOST, E_RIM, E_PMMA), (0.0, 0.0, 0.0), m)
    fractions = np.stack([1.0 - FC - FR, FR, FC])
    normals = np.tile([1.0, 0.0, 0.0], (m, 1))
    C = laminate(phases, fractions, normals)
    k = np.flatnonzero(cut)
    op = types.SimpleNamespace(data=phase_stress_data(k, phases[:, k], fractions[:, k], normals[k], TISSUES))
    test = plate_test(mesh, C, mesh.node_sets["zmin"], mesh.node_sets["zmax"], 0.01, solver="direct")
    return types.SimpleNamespace(mesh=mesh, history=(op,)), test


def test_tissue_stresses_of_layers_along_the_load(column):
    seg, test = column
    sol = test.solution
    sigma = test.force / AREA
    cells, codes, w = tissue_volumes(seg.mesh, sol.cell_volume)
    vm, smin = tissue_stresses(seg, sol, cells, codes)
    E_mean = (1.0 - FC - FR) * E_HOST + FR * E_RIM + FC * E_PMMA
    E_phase = np.array([E_HOST, E_RIM, E_PMMA])[codes]
    hand = E_phase * sigma / E_mean[cells]
    np.testing.assert_allclose(vm, hand, rtol=1e-9)
    np.testing.assert_allclose(smin, -hand, rtol=1e-9)
    # the PMMA layer of the bottom cell: 3000 / 1650 of the cell's mixed stress
    pmma = (cells == 0) & (codes == CODES["cement"])
    assert vm[pmma][0] == pytest.approx(E_PMMA / E_mean[0] * sol.von_mises[0], rel=1e-9)
    # the uncut cell (all rim) keeps the cell's own stress, bit for bit
    top = cells == 3
    np.testing.assert_array_equal(vm[top], sol.von_mises[3])
    np.testing.assert_array_equal(smin[top], sol.principal_stresses[3, 2])


def test_untreated_entries_keep_the_cell_stress(column):
    """No operation data (an untreated segment): the entries are the cells with their own stresses, bit for
    bit (the statistics of untreated models do not change)."""
    seg, test = column
    sol = test.solution
    bare = types.SimpleNamespace(mesh=seg.mesh, history=())
    cells = np.arange(seg.mesh.n_cells)
    vm, smin = tissue_stresses(bare, sol, cells, seg.mesh.cell_data["region"])
    np.testing.assert_array_equal(vm, sol.von_mises)
    np.testing.assert_array_equal(smin, sol.principal_stresses[:, 2])
    assert vm[0] == pytest.approx(von_mises(sol.cell_stress[0]), rel=1e-15)
