"""Cement boluses and the cells across them (vertebrafe.clinical.bolus): known blocks and spheres of cement
cells in a box, and the number recorded by vertebroplasty and kyphoplasty."""
import math

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.clinical import fracture, kyphoplasty, vertebroplasty
from vertebrafe.clinical.bolus import find_boluses, level_boluses, resolution
from vertebrafe.mesh.box import box


def _tagged(mesh, cement):
    """``mesh`` as one level ``L1`` of cancellous cells, the ``cement`` cells tagged ``cement_bone``."""
    mesh.set_cell_data("level", np.zeros(mesh.n_cells, dtype=np.int32), names={0: "L1"})
    mesh.set_cell_data("region", np.where(cement, 1, 0).astype(np.int32), names={0: "cancellous", 1: "cement_bone"})
    return mesh


def test_block_of_cement_cells():
    """A 4 x 6 x 8 block of 1 mm cells: one bolus of 192 cells, 192 mm^3; narrowest extent sqrt(5/3) x 4 mm
    (the ellipsoid rule applied to a box), 5.16 cells across."""
    m = box((12.0, 12.0, 12.0), (12, 12, 12))
    c = m.cell_centers()
    block = (c[:, 0] > 2) & (c[:, 0] < 6) & (c[:, 1] > 2) & (c[:, 1] < 8) & (c[:, 2] > 2) & (c[:, 2] < 10)
    (b,) = level_boluses(_tagged(m, block), "L1")
    assert b.n_cells == 192 and b.volume_mm3 == pytest.approx(192.0)
    assert b.cell_size_mm == pytest.approx(1.0)
    assert b.narrowest_mm == pytest.approx(math.sqrt(5.0 / 3.0) * 4.0, rel=1e-12)
    assert b.cells_across == pytest.approx(b.narrowest_mm)


@pytest.mark.parametrize("n", [10, 20])
def test_sphere_of_cement_cells(n):
    """A sphere of diameter 10 mm as the cells whose centre lies inside, n cells across: its narrowest extent
    is the diameter within half a cell, and the cells across it are n within half a cell."""
    h = 10.0 / n
    k = int(round(16.0 / h))
    m = box((16.0, 16.0, 16.0), (k, k, k))
    c = m.cell_centers() - 8.0
    ball = np.einsum("ij,ij->i", c, c) <= 25.0
    (b,) = level_boluses(_tagged(m, ball), "L1")
    assert b.n_cells == int(ball.sum())
    assert abs(b.narrowest_mm - 10.0) < 0.5 * h
    assert abs(b.cells_across - n) < 0.5


def test_two_separate_blocks_are_two_boluses():
    """Two blocks one cell apart are two boluses (largest first); blocks touching at an edge are one."""
    m = box((10.0, 4.0, 4.0), (10, 4, 4))
    x = m.cell_centers()[:, 0]
    two = (x < 3) | ((x > 4) & (x < 9))
    found = find_boluses(m.cells, m.cell_centers(), m.cell_volumes(), two)
    assert [b.n_cells for b in found] == [80, 48]
    assert resolution(_tagged(m, two), "L1")["bolus_count"] == 2
    c = m.cell_centers()
    touching = ((c[:, 0] < 3) & (c[:, 1] < 2)) | ((c[:, 0] > 3) & (c[:, 0] < 6) & (c[:, 1] > 2))   # a shared edge
    assert len(find_boluses(m.cells, c, m.cell_volumes(), touching)) == 1
    assert find_boluses(m.cells, c, m.cell_volumes(), np.zeros(m.n_cells, bool)) == []


def test_cut_cells_count_by_cement_fraction():
    """A mixed surface's cells at least half cement count; less than half do not (tags aside)."""
    m = _tagged(box((6.0, 6.0, 6.0), (6, 6, 6)), np.zeros(216, bool))
    f = np.zeros(m.n_cells)
    f[:3] = (0.5, 0.9, 0.49)                    # the first three cells along x: a bolus of two
    m.set_cell_data("cement_fraction", f)
    (b,) = level_boluses(m, "L1")
    assert b.n_cells == 2
    assert resolution(_tagged(box(), np.zeros(1, bool)), "L1")["bolus_count"] == 0


@pytest.fixture(scope="module")
def coarse():
    return {h: vf.segment("T12-L2", bmd=80.0, element_size=h) for h in (4.0, 2.0)}


def test_recorded_cells_across_grows_with_refinement(coarse):
    """Vertebroplasty and kyphoplasty record the cells across the narrowest bolus; halving the element size
    (4 -> 2 mm) about doubles it (1.7 and 1.8: the mesher keeps 12 cells per block side from 4 to
    2.25 mm, 18 at 2 mm), the narrowest extent staying within 25 %."""
    rec = {}
    for h, seg in coarse.items():
        vp = vertebroplasty(seg, "L1", volume=4.0).history[-1].results
        bkp = kyphoplasty(fracture(seg, "L1", kind="wedge", grade=2), "L1", volume=4.8,
                          restoration=0.5).history[-1].results
        rec[h] = (vp, bkp)
        for r in (vp, bkp):
            assert r["bolus_count"] >= 1 and 2.0 < r["bolus_cells_across"] < 10.0
    for i in range(2):
        grow = rec[2.0][i]["bolus_cells_across"] / rec[4.0][i]["bolus_cells_across"]
        assert 1.5 < grow < 2.5, grow
        assert rec[2.0][i]["bolus_narrowest_mm"] == pytest.approx(rec[4.0][i]["bolus_narrowest_mm"], rel=0.25)
