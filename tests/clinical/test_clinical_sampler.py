"""The cavity / bolus volume search of :class:`~vertebrafe.clinical.augment.Sampler`: the partial sort and the
kept horizontal offsets give the whole sort's and the direct product's results bit for bit."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from vertebrafe.clinical.augment import Sampler
from vertebrafe.mesh.box import box


@pytest.fixture(scope="module")
def sampler():
    """A 24 x 20 x 16 mm block of 2 mm cells with every third inner node moved (unequal sample weights)."""
    mesh = box(lengths=(24.0, 20.0, 16.0), shape=(12, 10, 8))
    pts = mesh.points.copy()
    inner = np.flatnonzero(np.all((pts > pts.min(axis=0)) & (pts < pts.max(axis=0)), axis=1))[::3]
    pts[inner] += np.random.default_rng(0).uniform(-0.2, 0.2, (inner.size, 3))
    seg = SimpleNamespace(mesh=mesh, frames={"b": (np.eye(3), np.array([12.0, 10.0, 8.0]))})
    return Sampler(seg, "b", pts, np.ones(mesh.n_cells, dtype=bool), 4)


def _whole_sort(sampler, r2, target):
    """The scale by a stable sort of every sample (the definition)."""
    wv = (sampler.w * sampler.volume[:, None]).ravel()
    r = r2.ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(wv[order])
    k = min(int(np.searchsorted(cum, target)), len(cum) - 1)
    if k > 0 and abs(cum[k - 1] - target) < abs(cum[k] - target):
        k -= 1
    r_next = r[order[k + 1]] if k + 1 < len(r) else r[order[k]] * 1.0001 + 1e-12
    return math.sqrt(0.5 * (r[order[k]] + r_next) if np.isfinite(r_next) else r[order[k]]), float(cum[k])


def _rot_z(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_scale_for_volume_is_the_whole_sorts(sampler):
    """Ties (rounded radii), excluded samples (inf) and targets from empty to beyond the sampled volume:
    the same scale and volume bit for bit, and the volume within one sample of the target."""
    total = float(np.sum(sampler.w * sampler.volume[:, None]))
    assert total == pytest.approx(24.0 * 20.0 * 16.0, rel=1e-12)
    r2 = sampler.radius2(np.zeros((1, 3)), _rot_z(20.0)[None], np.array([[8.0, 6.0, 5.0]]))
    step = float(np.max(sampler.w * sampler.volume[:, None]))
    for field in (r2, np.round(r2, 1), np.where(sampler.x[..., 2] > 2.0, np.inf, r2)):
        for target in (0.0, 1.0, 0.02 * total, 0.3 * total, 0.9 * total, total, 1.5 * total):
            s, achieved = sampler.scale_for_volume(field, target)
            assert (s, achieved) == _whole_sort(sampler, field, target)
            if target <= float(np.sum((sampler.w * sampler.volume[:, None])[np.isfinite(field)])):
                assert abs(achieved - target) <= step


def test_radius2_of_moved_boluses_is_the_direct_products(sampler):
    """Balloons moved up and down (kept horizontal offsets), a tilted bolus (no shortcut) and a replaced
    vertical offset: the radii of ``(x - c) @ R`` bit for bit."""
    axes = np.array([[5.0, 7.0, 4.0], [5.0, 7.0, 4.0]])
    rots = np.array([_rot_z(15.0), _rot_z(-15.0)])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(0.3), -math.sin(0.3)], [0.0, math.sin(0.3), math.cos(0.3)]])
    vertical = sampler.x[..., 2] * 0.5
    for dz in (0.0, 0.37, -1.1, 0.0):
        centres = np.array([[4.0, 1.0, dz], [-4.0, 1.0, dz]])
        for R, vert, pad in ((rots, None, 0.0), (rots, vertical, 0.5), (np.array([tilt, tilt]), None, 0.0)):
            direct = np.full(sampler.x.shape[:2], np.inf)
            for c, Ri, a in zip(centres, R, axes):
                d = (sampler.x - c) @ Ri
                if vert is not None:
                    d[..., 2] = vert
                direct = np.minimum(direct, np.sum((d / (a + pad)) ** 2, axis=-1))
            assert np.array_equal(sampler.radius2(centres, R, axes, pad=pad, vertical=vert), direct)
