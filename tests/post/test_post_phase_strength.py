"""Yield-volume strength of cells that hold several phases (vertebrafe.post.strength.bone_phases): each
bone phase counts with its own volume and its own yield strain, the cement with none (it is not bone).

Closed form: a column of four 10 mm cubes (cross-section A = 100 mm^2) whose phases are layers across the
load (normal z), nu = 0, compressed between plates: every cell and every phase carries the same uniaxial
stress sigma = F / A, so a phase of modulus E_p and yield strain y_p yields at F = E_p y_p A. Host
cancellous bone (E 100 MPa) yields at 0.77 MPa (77 N), the compacted rim (300 MPa) at 2.31 MPa (231 N).
Bone volume per phase: host 100 + 200 + 500 = 800 mm^3, rim 300 + 600 + 500 + 1000 = 2400 mm^3 (the cell
at least half cement is tagged cement but its bone phases count). With a yield-volume fraction of 20 %
the host bone (25 % of the bone) decides: 77 N; with 30 % the rim must yield too: 231 N. Counting the
cells whole under their tag with the first phase's yield, the three bone-tagged cells with host bone hold
2000 of 3000 mm^3 and would give 77 N for both fractions. The pushover of the same column yields its
three cut cells with their host bone at 77 N; only that phase's volume counts as yielded.
"""
import types

import numpy as np
import pytest

from vertebrafe.clinical.firstyield import phase_yield_field, treated_yield_factor
from vertebrafe.elasticity import isotropic, laminate
from vertebrafe.materials import CEMENT_STRENGTH, YIELD_STRAIN_COMPRESSION as YC, YIELD_STRAIN_TENSION as YT
from vertebrafe.mesh.box import box
from vertebrafe.post.metrics import BONE_REGIONS, cell_yield_strains, strain_ratio
from vertebrafe.post.plate import plate_test
from vertebrafe.post.strength import bone_phases, yield_scale

E_HOST, E_RIM, E_CEMENT, AREA = 100.0, 300.0, 3000.0, 100.0
#: per cell (bottom to top): cement and rim fractions, the host bone the rest; the top cell is uncut rim
FC = np.array([0.6, 0.2, 0.0, 0.0])
FR = np.array([0.3, 0.6, 0.5, 1.0])
CODES = {"cancellous": 0, "compacted_bone": 1, "cement": 2}


def tagged_column():
    """The column's mesh with its region tags (each cell the phase filling at least half of it) and level,
    and the mask of its cut cells (the bottom three; also used by test_post_phase_stress)."""
    mesh = box((10.0, 10.0, 40.0), (1, 1, 4))
    m = mesh.n_cells
    region = np.where(FC >= 0.5, CODES["cement"], np.where(FR >= 0.5, CODES["compacted_bone"], CODES["cancellous"]))
    mesh.set_cell_data("region", region.astype(np.int32), names={c: n for n, c in CODES.items()})
    mesh.set_cell_data("level", np.zeros(m, np.int32), names={0: "L1"})
    return mesh, np.arange(m) < 3


def _column():
    mesh, cut = tagged_column()
    m = mesh.n_cells
    mesh.set_cell_data("yield_factor", np.ones(m))
    zero = np.zeros(m)
    phases = np.stack([np.broadcast_to(isotropic(E, 0.0), (m, 6, 6)) for E in (E_HOST, E_RIM, E_CEMENT)])
    fractions = np.stack([1.0 - FC - FR, FR, FC])
    normals = np.tile([0.0, 0.0, 1.0], (m, 1))
    C = laminate(phases, fractions, normals)
    seg = types.SimpleNamespace(mesh=mesh, materials=None)
    k = np.flatnonzero(cut)
    yf, pyf = np.ones(m), phase_yield_field(mesh)
    yf[k], pyf[k] = treated_yield_factor(seg, k, phases[:, k], fractions[:, k], normals[k], ("host", "bone", "cement"),
                                         E_CEMENT, ("cancellous", "compacted_bone", "cement"))
    for name, v in (("cement_fraction", np.where(cut, FC, zero)), ("compacted_fraction", np.where(cut, FR, zero)),
                    ("yield_factor", yf), ("phase_yield_factor", pyf)):
        mesh.set_cell_data(name, v)
    return mesh, C


@pytest.fixture(scope="module")
def column():
    mesh, C = _column()
    test = plate_test(mesh, C, mesh.node_sets["zmin"], mesh.node_sets["zmax"], 0.01, solver="direct")
    return mesh, test


def test_phase_yield_factors_of_series_layers():
    """Layers in series: phase p yields when the cell strain sigma sum(f / E) reaches E_p y_p sum(f / E),
    i.e. at the factor E_p y_p sum(f / E) / y_bone of the bone yield strain; the cell with its first."""
    mesh, _ = _column()
    compliance = (1.0 - FC - FR) / E_HOST + FR / E_RIM + FC / E_CEMENT
    pyf = mesh.cell_data["phase_yield_factor"]
    np.testing.assert_allclose(pyf[:3, 0], (E_HOST * compliance)[:3], rtol=1e-12)
    np.testing.assert_allclose(pyf[:3, 1], (E_RIM * compliance)[:3], rtol=1e-12)
    np.testing.assert_allclose(pyf[:2, 2], (CEMENT_STRENGTH * compliance / YC)[:2], rtol=1e-12)
    np.testing.assert_allclose(mesh.cell_data["yield_factor"][:3], pyf[:3].min(axis=1), rtol=0)


@pytest.mark.parametrize("fraction, strength", [(0.2, E_HOST * YC * AREA), (0.3, E_RIM * YC * AREA)])
def test_yield_volume_strength_of_a_column_of_cut_cells(column, fraction, strength):
    mesh, test = column
    cells, ratio, vol = bone_phases(mesh, test.solution, YC, YT, BONE_REGIONS)
    assert vol.sum() == pytest.approx(3200.0, rel=1e-12)               # bone: every cell less its cement
    assert vol[np.isclose(ratio, ratio.max(), rtol=1e-9, atol=0)].sum() == pytest.approx(800.0, rel=1e-12)   # the host bone yields first
    assert test.force == pytest.approx(0.01 / 40.0 / (np.sum((1 - FC - FR) / E_HOST + FR / E_RIM + FC / E_CEMENT)
                                                       * 10.0 / 40.0) * AREA, rel=1e-9)
    assert yield_scale(ratio, vol, fraction) * test.force == pytest.approx(strength, rel=1e-9)
    # whole cells under their tag, each with its first phase's yield: the host bone decides either way
    tagged = np.isin(mesh.cell_data["region"], [CODES["cancellous"], CODES["compacted_bone"]])
    r_cell = strain_ratio(test.solution.principal_strains, *cell_yield_strains(mesh, YC, YT))
    assert yield_scale(r_cell[tagged], test.solution.cell_volume[tagged], fraction) * test.force == pytest.approx(
        E_HOST * YC * AREA, rel=1e-9)


def test_pushover_of_the_column_yields_the_host_phases_only():
    """Pushover (cells elastic-perfectly-plastic at their first phase's yield): the column in series is as
    strong as its weakest cells, the three cut cells whose host bone yields at 0.77 MPa (77 N); of those
    cells only the host phase (800 of 4 000 mm^3) counts as yielded, the rim and PMMA staying below their
    own yield under the capped stress; no cement yielded."""
    from vertebrafe.post.pushover import pushover

    mesh, C = _column()
    p = pushover(mesh, C, mesh.node_sets["zmin"], mesh.node_sets["zmax"], 40.0, YC, YT, solver="direct")
    assert p.strength == pytest.approx(E_HOST * YC * AREA, rel=5e-3)          # the secant iteration's tolerance
    assert p.yielded_fraction == pytest.approx(800.0 / 4000.0, rel=1e-12)
    assert not p.cement_yielded
