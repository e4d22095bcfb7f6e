"""Kyphoplasty with a body-fitted cavity and rim (``surface="fitted"``): cell faces follow the cavity and the
rim's outer surface, every cell is wholly PMMA, compacted rim or host bone; the rim's density conserves the
displaced bone; the volume, the restored heights, the endplate contact and the mirror symmetry are kept."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

import vertebrafe as vf
from vertebrafe.clinical import fracture, history, kyphoplasty
from vertebrafe.clinical._common import column_fraction, level_nodes, to_local
from vertebrafe.clinical.augment import body_frame_sizes, bolus_geometry
from vertebrafe.clinical.snap import MIN_SCALED_JACOBIAN, _corner_scaled_jacobian
from vertebrafe.errors import InputError


@pytest.fixture(scope="module")
def treated(kept_unchanged):
    f = fracture(vf.segment("L1", bmd=80.0, element_size=3.0), "L1", kind="wedge", grade=2)
    made = {s: kyphoplasty(f, "L1", restoration=0.5, surface=s) for s in ("mixed", "fitted")}
    checks = [kept_unchanged(s) for s in (f, *made.values())]
    yield f, made
    for check in checks:
        check()


def test_fitted_cavity_and_rim_are_whole_cells(treated):
    f, made = treated
    fitted, mixed = made["fitted"], made["mixed"]
    r, rm = history(fitted)[-1].results, history(mixed)[-1].results
    fc, fr = (np.asarray(fitted.mesh.cell_data[k]) for k in ("cement_fraction", "compacted_fraction"))
    assert np.all((fc == 0.0) | (fc == 1.0)) and np.all((fr == 0.0) | (fr == 1.0)) and not np.any(fc * fr)
    assert abs(r["volume_error"]) < 2e-3 and history(fitted)[-1].parameters["surface"] == "fitted"
    # mass conservation: the rim holds the bone of the cavity and of itself, over the rim cells' volume
    vol = fitted.mesh.cell_volumes()
    v_c, v_r = float(np.sum(fc * vol)), float(np.sum(fr * vol))
    assert r["rim_volume_mL"] == pytest.approx(v_r / 1000.0, rel=1e-12)
    assert r["rim_density_ratio"] == pytest.approx((v_r + v_c) / v_r, rel=1e-12)
    # the restoration is that of the mixed surface; only interior cancellous nodes of L1 move
    assert r["heights_after_mm"] == rm["heights_after_mm"]
    moved = np.flatnonzero(np.any(fitted.mesh.points != mixed.mesh.points, axis=1))
    assert moved.size == r["snapped_nodes"] > 50
    cells = f.mesh.cells
    level = f.mesh.cell_data["level"] == {v: k for k, v in f.mesh.tag_names["level"].items()}["L1"]
    assert not np.isin(moved, cells[~(level & f.mesh.cells_in("region", ["cancellous"]))]).any()
    # every moved node lies on the cavity surface (an ellipsoid at the final scale, or rim_thickness from an
    # endplate along its column) or on the rim's outer surface (the ellipsoids enlarged by rim_thickness)
    t = history(fitted)[-1].parameters["rim_thickness_mm"]
    W, D, H, zc, yc = body_frame_sizes(fitted, "L1", fitted.mesh.points)
    _, rots, axes = bolus_geometry("balloon2", W, D, H, zc, yc)
    axes = axes * np.array([1.0, 1.0, r["balloon_vertical_factor"]]) * r["balloon_scale"]
    x = to_local(fitted, "L1", fitted.mesh.points[moved])
    rad = [np.min([np.linalg.norm(((x - c) @ R) / (a + pad), axis=1)
                   for c, R, a in zip(np.asarray(r["balloon_centres_mm"]), rots, axes)], axis=0) for pad in (0.0, t)]
    nodes = level_nodes(fitted, "L1")
    pts = fitted.mesh.points
    zeta = column_fraction(pts, moved, nodes.inferior, nodes.superior, nodes.n2)
    length = np.linalg.norm(pts[nodes.superior] - pts[nodes.inferior], axis=1)[moved % nodes.n2]
    on_face = np.isclose(zeta * length, t, atol=1e-8) | np.isclose((1.0 - zeta) * length, t, atol=1e-8)
    on_cavity = np.isclose(rad[0], 1.0, atol=1e-9) | on_face
    on_rim = np.isclose(rad[1], 1.0, atol=1e-9)
    assert np.all(on_cavity | on_rim) and on_face.sum() > 10 and on_rim.sum() > 10
    # endplate contact kept: PMMA cells reach the faces rim_thickness short of both endplates
    cem = cells[fc == 1.0]
    z = column_fraction(pts, cem.ravel(), nodes.inferior, nodes.superior, nodes.n2).reshape(cem.shape)
    ln = np.linalg.norm(pts[nodes.superior] - pts[nodes.inferior], axis=1)[cem % nodes.n2]
    assert np.isclose(z * ln, t, atol=1e-8).any() and np.isclose((1.0 - z) * ln, t, atol=1e-8).any()
    assert r["contact_area_mm2"] > 0.0
    # guard: no cell below the scaled-Jacobian floor unless it started below it; none inverted
    touched = np.flatnonzero(np.isin(cells, moved).any(axis=1))
    before = _corner_scaled_jacobian(f.mesh.points, cells[touched])
    assert np.all(_corner_scaled_jacobian(pts, cells[touched]) >= np.minimum(MIN_SCALED_JACOBIAN, before) - 1e-12)
    assert fitted.mesh.quality().min_jacobian.min() > 0


def test_fitted_kyphoplasty_is_mirror_symmetric(treated):
    """Two balloons placed symmetrically stay symmetric: the snapped nodes mirror each other about the
    mid-sagittal plane (as the untreated mesh does, to about 1e-11 mm) and so do the PMMA and rim cells."""
    f, made = treated
    fitted = made["fitted"]
    x = to_local(fitted, "L1", fitted.mesh.points)
    d, _ = cKDTree(x).query(x * np.array([-1.0, 1.0, 1.0]))
    assert d.max() < 1e-8
    centre_x = to_local(fitted, "L1", fitted.mesh.cell_centers())[:, 0]
    vol = fitted.mesh.cell_volumes()
    for key in ("cement_fraction", "compacted_fraction"):
        v = np.asarray(fitted.mesh.cell_data[key]) * vol
        assert v[centre_x < 0].sum() == pytest.approx(v[centre_x > 0].sum(), rel=1e-9)
    with pytest.raises(InputError, match=r"surface = 'smooth'; allowed: \['fitted', 'mixed'\]"):
        kyphoplasty(f, "L1", restoration=0.5, surface="smooth")
