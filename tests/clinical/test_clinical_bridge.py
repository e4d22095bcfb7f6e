"""Vertebroplasty ``bridge``: the two bipedicular boluses joined by a smooth union across a thin gap."""
import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

import vertebrafe as vf
from vertebrafe.clinical import fracture, history, vertebroplasty
from vertebrafe.clinical.augment import (Sampler, bolus_geometry, bridge_blend, bridge_neck, level_cells,
                                        smooth_min)
from vertebrafe.clinical.snap import _ellipsoid_radius
from vertebrafe.errors import InputError


@pytest.fixture(scope="module")
def frac():
    return fracture(vf.segment("T12-L2", bmd=80.0, element_size=2.0), "L1", kind="wedge", grade=2)


def cement_regions(seg):
    """Number of face-connected regions of the cells at least half cement."""
    cem = np.flatnonzero(seg.mesh.cell_data["cement_fraction"] >= 0.5)
    k = seg.mesh.cells[cem]
    A = csr_matrix((np.ones(k.size), (np.repeat(np.arange(cem.size), 8), k.ravel())),
                   shape=(cem.size, seg.mesh.n_points))
    S = (A @ A.T).tocoo()
    face = S.data >= 4                                    # cells sharing a face (4 nodes)
    G = csr_matrix((np.ones(int(face.sum())), (S.row[face], S.col[face])), shape=(cem.size, cem.size))
    return connected_components(G, directed=False)[0]


def local_centroids(seg, level="L1"):
    cem = seg.mesh.cell_data["cement_fraction"] >= 0.5
    R, o = (np.asarray(v, dtype=float) for v in seg.frames[level])
    return (seg.mesh.points[seg.mesh.cells[cem]].mean(axis=1) - o) @ R


def test_bridge_joins_example_3s_boluses(frac):
    """Example 3's 4 mL: the default leaves two boluses with a septum of bone (one cell thick at 2 mm);
    a 6 mm bridge makes one connected, mirror-symmetric cement region of the requested volume."""
    sep = vertebroplasty(frac, "L1", volume=4.0)
    joined = vertebroplasty(frac, "L1", volume=4.0, bridge=6.0)
    assert cement_regions(sep) == 2 and cement_regions(joined) == 1
    op = history(joined)[-1]
    assert op.parameters["bridge_mm"] == 6.0 and history(sep)[-1].parameters["bridge_mm"] == 0.0
    assert abs(op.results["volume_error"]) < 1e-2
    assert op.results["unresolved_cells"] >= 0
    assert np.all(np.isin(joined.mesh.cell_data["cement_fraction"], (0.0, 1.0)))     # fitted: whole cells
    x = local_centroids(joined)
    mirrored = x * np.array([-1.0, 1.0, 1.0])
    a = x[np.lexsort(np.round(x, 6).T)]
    b = mirrored[np.lexsort(np.round(mirrored, 6).T)]
    assert np.allclose(a, b, atol=1e-6)                                            # mirror symmetric
    assert abs(op.results["cement_centroid_mm"][0]) < 1e-6
    # the joined cement reaches the midline; the separate boluses leave it bone
    assert np.abs(x[:, 0]).min() < 1.5 and np.abs(local_centroids(sep)[:, 0]).min() > 1.0
    # the mixed surface too holds the volume
    m = history(vertebroplasty(frac, "L1", volume=4.0, bridge=6.0, surface="mixed"))[-1].results
    assert abs(m["volume_error"]) < 1e-2


def test_bridge_leaves_distant_boluses_and_zero_unchanged(frac):
    small = vertebroplasty(frac, "L1", volume=1.0, bridge=3.0)
    assert cement_regions(small) == 2                      # 1 mL: the gap is wider than the bridge
    base = vertebroplasty(frac, "L1", volume=1.0)
    zero = vertebroplasty(frac, "L1", volume=1.0, bridge=0.0)
    assert np.array_equal(zero.mesh.points, base.mesh.points)
    assert np.array_equal(zero.mesh.cell_data["cement_fraction"], base.mesh.cell_data["cement_fraction"])
    assert np.array_equal(zero.elasticity, base.elasticity)


def test_bridged_field_is_homogeneous_and_shared_with_the_snapping(frac):
    """The blended radius at scale s is the scale-1 field over s (so the solved scale and the snapped
    surface agree), the sampler and the snapping compute the same field, and the smooth minimum is
    symmetric and equals the minimum away from the blend."""
    mesh = frac.mesh
    eligible = level_cells(mesh, "L1") & mesh.cells_in("region", ["cancellous"])
    sampler = Sampler(frac, "L1", mesh.points, eligible, 2)
    c, R, a = bolus_geometry("bipedicular", 42.0, 32.0, 20.0, sampler.x[..., 2].mean())
    r1 = sampler.radius2(c, R, a, bridge=5.0)
    s = 1.3
    assert np.allclose(sampler.radius2(c, R, a * s, bridge=5.0), r1 / s ** 2, rtol=1e-12)
    x = sampler.x.reshape(-1, 3)
    assert np.allclose(_ellipsoid_radius(x, c, R, a, 5.0) ** 2, np.where(r1.ravel() > 0, r1.ravel(), 0.0),
                       rtol=1e-12, atol=1e-12)
    assert np.array_equal(sampler.radius2(c, R, a, bridge=0.0), sampler.radius2(c, R, a))
    u, v = np.random.default_rng(0).uniform(0.0, 3.0, (2, 1000))
    k = bridge_blend(5.0, R, a)
    assert np.array_equal(smooth_min(u, v, k), smooth_min(v, u, k))
    far = np.abs(u - v) >= k
    assert np.array_equal(smooth_min(u, v, k)[far], np.minimum(u, v)[far])
    assert np.all(smooth_min(u, v, k) <= np.minimum(u, v))


def test_bridge_neck_is_the_unions_section_on_the_midline():
    """``bridge_neck``: the gap is the bone between the two mirror-image ellipsoids along x (sampled to 0.01
    mm), the union is joined exactly where it is at most the bridge (an empty section on the midline 0.01 mm
    beyond, a section of the predicted diameter, sampled to 0.02 mm, below), whatever the offset."""
    from vertebrafe.clinical.pillowed import _radii

    c, R, a = bolus_geometry("bipedicular", 42.0, 32.0, 20.0, 10.0, 1.0, offset=(1.5, -4.0, -1.0))
    xm = c[:, 0].mean()
    s = 0.9
    gap, neck = bridge_neck(c, R, a, s, 0.0)
    assert neck == 0.0
    Ainv = R[0] @ np.diag(a[0] ** 2) @ R[0].T                     # the support point toward the midline
    ts = c[0, 1:] + s * Ainv[1:, 0] / np.sqrt(Ainv[0, 0]) * np.sign(xm - c[0, 0])
    x = np.linspace(xm - 6.0, xm + 6.0, 1201)                       # along x through the nearest points
    inside = _radii(np.column_stack([x, np.tile(ts, (x.size, 1))]), c, R, a).min(axis=0) <= s
    assert x[inside & (x > xm)].min() - x[inside & (x < xm)].max() == pytest.approx(gap, abs=0.021)
    y, z = np.meshgrid(np.linspace(-15.0, 20.0, 1751), np.linspace(0.0, 20.0, 1001), indexing="ij")
    plane = np.column_stack([np.full(y.size, xm), y.ravel(), z.ravel()])
    r = _radii(plane, c, R, a)
    for bridge, joined in ((gap - 0.01, False), (gap + 0.01, True), (gap + 1.0, True), (gap + 4.0, True)):
        k = bridge_blend(bridge, R, a)
        g, n = bridge_neck(c, R, a, s, k)
        assert g == gap and (n > 0.0) == joined
        sec = (smooth_min(r[0], r[1], k) <= s).reshape(y.shape)
        assert sec.any() == joined
        if bridge > gap + 0.5:
            assert z[sec].max() - z[sec].min() == pytest.approx(n, abs=0.05)     # the smaller diameter: vertical


@pytest.mark.parametrize("kwargs, match", [
    (dict(bridge=-1.0), r"bridge = -1.0 mm is out of range; allowed \[0, 10\] mm"),
    (dict(bridge=12.0), r"allowed \[0, 10\] mm"),
    (dict(bridge="wide"), "bridge = 'wide'; expected mm"),
    (dict(bridge=3.0, approach="unipedicular"), "approach = 'unipedicular'"),
])
def test_bad_bridge(frac, kwargs, match):
    with pytest.raises(InputError, match=match):
        vertebroplasty(frac, "L1", volume=2.0, **kwargs)


def test_bridge_case_key():
    from vertebrafe import case as vc
    base = {"segment": {"levels": "L1", "element_size": 4.0}, "bone": {"bmd": 80.0},
            "fracture": {"level": "L1", "grade": 2}, "load": {"compression": 800.0}}
    case = vc.parse_case({**base, "treatment": {"kind": "vertebroplasty", "volume": 3.0, "bridge": 6.0}})
    assert case.treatment.bridge == 6.0
    assert vc.parse_case({**base, "treatment": {"kind": "vertebroplasty"}}).treatment.bridge is None
    seg = vc.build_segment(case)
    assert history(seg)[-1].parameters["bridge_mm"] == 6.0
    with pytest.raises(vc.CaseError, match="treatment.bridge"):
        vc.parse_case({**base, "treatment": {"kind": "vertebroplasty", "bridge": 12.0}})
    bad = vc.parse_case({**base, "treatment": {"kind": "vertebroplasty", "approach": "unipedicular", "bridge": 2.0}})
    with pytest.raises(vc.CaseError, match="treatment.bridge"):
        vc.build_segment(bad)
