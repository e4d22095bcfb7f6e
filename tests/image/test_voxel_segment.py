"""Voxel geometry of image-based segments (``image_segment(..., geometry="voxel")``): the phantom round
trip against the parametric model, the cortical shell, the arch cut, measurement and the operations it
refuses."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.anatomy.segment import LYING_PREPRESSURE
from vertebrafe.elasticity import isotropic
from vertebrafe.errors import InputError
from vertebrafe.fem import assembly
from vertebrafe.fem.model import FORMULATIONS
from vertebrafe.fem.kernels import element_tables
from vertebrafe.image import Image, image_segment
from vertebrafe.image.body import vertebral_body
from vertebrafe.io.model_data import describe
from vertebrafe.materials import MATERIALS, MaterialSet, cancellous_elasticity, cancellous_modulus, cortical_modulus

H = 2.0
LOAD = vf.Load(compression=1000.0)
BMD = {"L1": 55.0, "L2": 100.0}


def _value(res, level, region, metric):
    m = res.metrics
    return float(m[(m.level == level) & (m.region == region) & (m.metric == metric)].value.iloc[0])


@pytest.fixture(scope="module")
def voxel(pair):
    return image_segment(pair.ct, pair.labels, calibration=pair.calibration, element_size=H, geometry="voxel")


def _with_arch(pair):
    """The pair's labels with a posterior arch on each vertebra: two pedicles (radius 4 mm, 14 mm long)
    from the posterior wall to a 20 mm block (a thick spinous process and laminae), all labelled."""
    lab = pair.labels
    arr = lab.array.copy()
    added = {}
    xyz = lab.to_world(np.argwhere(np.ones(lab.shape, bool))).reshape(lab.shape + (3,))
    for v in ("L1", "L2"):
        R, o = pair.segment.frames[v]
        p = (xyz - o) @ R                                   # local: x right, y anterior, z superior
        d = pair.segment.dimensions[v]
        y0, zc = -0.5 * d.inferior_depth, 0.5 * d.posterior_height
        code = int(arr[tuple(np.round(lab.to_index(o + R @ [0.0, 0.0, zc])).astype(int))])
        ped = ((np.abs(p[..., 0]) - 9.0) ** 2 + (p[..., 2] - zc) ** 2 <= 16.0) & (p[..., 1] < y0 + 1.0) & \
              (p[..., 1] > y0 - 14.0)
        block = (np.abs(p[..., 0]) <= 10.0) & (p[..., 1] <= y0 - 14.0) & (p[..., 1] > y0 - 34.0) & \
                (np.abs(p[..., 2] - zc) <= 10.0)
        new = (ped | block) & (arr == 0)
        arr[new] = code
        added[v] = np.count_nonzero(new) * lab.voxel_volume / 1000.0
    return Image(arr, lab.affine, lab.source), added


def test_round_trip_matches_the_parametric_model(pair, voxel):
    """Acceptance on the voxel path: axial stiffness and nucleus pressure within 10 % of the parametric
    model at the same element size, vBMD within 3 %."""
    for v, b in BMD.items():
        assert voxel.materials.bmd[v] == pytest.approx(b, rel=0.03)
    ref = vf.simulate(vf.segment("L1-L2", bmd=BMD, element_size=H), LOAD, factor_of_risk=False)
    img = vf.simulate(voxel, LOAD, factor_of_risk=False)
    for level, region, metric in (("segment", "segment", "axial_stiffness"), ("L1-L2", "nucleus", "pressure")):
        assert _value(img, level, region, metric) == pytest.approx(_value(ref, level, region, metric), rel=0.10)
    assert img.record()["segment"]["source"]["geometry"] == "voxel"
    # the voxel discs have nucleus cells: the default swelling pressure as in the parametric model, or none
    assert voxel.nucleus_prepressure == ref.segment.nucleus_prepressure == LYING_PREPRESSURE
    assert _value(img, "L1-L2", "nucleus", "rest_pressure") == pytest.approx(LYING_PREPRESSURE, rel=1e-6)
    none = image_segment(pair.ct, pair.labels, calibration=pair.calibration, element_size=H, geometry="voxel",
                         nucleus_prepressure=0)
    assert none.nucleus_prepressure == 0.0
    # the columns run along the image z axis; the spine axis (mean of L1 and L2) leans by half the lordosis
    assert 0.0 < voxel.source["column_tilt_deg"] < 5.0


def test_shell_volume_and_laminate_bounds(pair, voxel):
    """The shell (cortex 0.4 mm, endplates 0.35 mm) has the volume of the parametric model's shell cells
    (thickness times surface area) within 10 %; each shell cell's elasticity lies between the Reuss
    and Voigt mixtures of its two phases (Hill 1952)."""
    m, p = voxel.mesh, pair.segment.mesh
    vol, pvol = m.cell_volumes(), p.cell_volumes()
    shell = m.cells_in("region", ["cortex", "endplate"])
    f = m.cell_data["shell_fraction"]
    for v in BMD:
        got = np.sum((f * vol)[shell & m.cells_in("level", v)])
        want = pvol[p.cells_in("region", ["cortex", "endplate"]) & p.cells_in("level", v)].sum()
        assert got == pytest.approx(want, rel=0.10)
    # phases: the level's shell (cortex by vBMD, bony endplate) and the cell's own cancellous bone
    ms = MaterialSet(bmd=70.0)                                           # default choices
    lev = np.where(m.cells_in("level", "L1"), voxel.materials.bmd["L1"], voxel.materials.bmd["L2"])[shell]
    Es = np.where(m.cells_in("region", "cortex")[shell], cortical_modulus(lev), MATERIALS["bony_endplate"].E)
    nus = np.where(m.cells_in("region", "cortex")[shell], MATERIALS["cortical_shell"].nu,
                   MATERIALS["bony_endplate"].nu)
    Cs = isotropic(Es, nus)
    Ch = cancellous_elasticity(cancellous_modulus(m.cell_data["bmd"][shell]), ms.transverse_ratio, ms.cancellous_nu,
                               ms.anisotropic, ms.shear_rule)
    fs = f[shell][:, None, None]
    C = voxel.elasticity[shell]
    voigt = fs * Cs + (1 - fs) * Ch
    reuss = np.linalg.inv(fs * np.linalg.inv(Cs) + (1 - fs) * np.linalg.inv(Ch))
    scale = np.abs(C).max()
    assert np.linalg.eigvalsh(voigt - C).min() >= -1e-9 * scale           # Hill: Reuss <= laminate <= Voigt
    assert np.linalg.eigvalsh(C - reuss).min() >= -1e-9 * scale
    assert np.all(fs > 0.0) and np.all(fs < 1.0)


def test_arch_is_cut_and_plain_voxels_take_the_fast_path(pair, voxel):
    """Labels with a posterior arch give the same bodies as body-only labels; without snapping every
    cell is the same cube and the assembly shares reference stiffnesses."""
    labels, added = _with_arch(pair)
    plain = image_segment(pair.ct, labels, calibration=pair.calibration, element_size=H, geometry="voxel",
                          snap=False)
    stubs = 2 * np.pi * 4.0 ** 2 * (0.75 * 7.0 + 1.0) / 1000.0      # mL: pedicle stubs left, 1 mm margin
    for v in BMD:
        assert added[v] - stubs <= plain.source["arch_removed_mL"][v] <= added[v]
        assert voxel.source["arch_removed_mL"][v] == 0.0
        a = plain.mesh.cells_in("level", v).sum()
        assert a == pytest.approx(voxel.mesh.cells_in("level", v).sum(), rel=0.03)
    assert plain.source["identical_cells"] and not voxel.source["identical_cells"]
    mesh, model = plain.mesh, vf.Model(plain.mesh, C=plain.elasticity)
    data = describe(model)                                   # material table and per-cell rows, as exported
    codes = np.array([FORMULATIONS[f] for f in np.unique(data.formulation)])
    form = codes[np.unique(data.formulation, return_inverse=True)[1]].astype(np.int64)
    ref = assembly.reference_stiffness(mesh.points, np.asarray(mesh.cells, np.int64), data.materials,
                                       data.material.astype(np.int64), form, element_tables(mesh.element))
    assert ref[1].size == mesh.n_cells
    # cancellous, annulus and nucleus cells share one reference each; each laminated shell cell has its own
    shell = mesh.cells_in("region", ["cortex", "endplate"])
    assert np.unique(ref[1][~shell]).size == 3 and len(ref[0]) <= 3 + shell.sum()
    # the bodies fill their labels: cell volume = label volume within 3 % (cubes and snapped surfaces)
    for v, code in (("L1", 20), ("L2", 21)):
        label = np.count_nonzero(pair.labels.array == code) * pair.labels.voxel_volume
        assert voxel.mesh.cell_volumes()[voxel.mesh.cells_in("level", v)].sum() == pytest.approx(label, rel=0.03)


def test_vertebral_body_keeps_a_body_and_refuses_a_thin_label():
    i, j, k = np.meshgrid(np.arange(40), np.arange(40), np.arange(30), indexing="ij")
    body = ((i - 20) ** 2 / 15.0 ** 2 + (j - 18) ** 2 / 12.0 ** 2 <= 1.0) & (k >= 5) & (k < 25)
    box = (i >= 5) & (i < 35) & (j >= 5) & (j < 30) & (k >= 5) & (k < 25)
    spacing = np.ones(3)
    assert np.array_equal(vertebral_body(body, spacing), body)          # an elliptic cylinder: a body
    assert np.array_equal(vertebral_body(box, spacing), box)            # corners of three faces restored
    with pytest.raises(InputError, match="no ball of radius 7 mm fits"):
        vertebral_body(body & (k < 10), spacing, name="L1")
    with pytest.raises(InputError, match="arch_radius = 1"):
        vertebral_body(body, spacing, radius=1.0)


def test_measure_and_refused_operations(pair, voxel):
    for v in BMD:
        got, want = vf.measure(voxel, v), vf.measure(pair.segment, v)
        for k in ("anterior_height_mm", "middle_height_mm", "posterior_height_mm"):
            assert getattr(got, k) == pytest.approx(getattr(want, k), abs=H + 0.5)   # one cell
    for op, kw in ((vf.fracture, dict(kind="wedge", height_loss=0.25)), (vf.vertebroplasty, dict(volume=3.0)),
                   (vf.kyphoplasty, dict(volume=3.0))):
        with pytest.raises(InputError, match="geometry='template'"):
            op(voxel, "L1", **kw)


@pytest.mark.parametrize("kw, match", [
    (dict(geometry="mesh"), "geometry = 'mesh'; allowed: 'template', 'voxel'"),
    (dict(geometry="voxel", fibres=True), "geometry='template'"),
])
def test_errors(pair, kw, match):
    with pytest.raises(InputError, match=match):
        image_segment(pair.ct, pair.labels, calibration=pair.calibration, element_size=H, **kw)


def test_smoothing_is_guarded_and_keeps_the_volume(pair, voxel):
    smooth = image_segment(pair.ct, pair.labels, calibration=pair.calibration, element_size=H, geometry="voxel",
                           smoothing=3)
    q = smooth.mesh.quality().scaled_jacobian
    assert q.min() >= 0.3 and smooth.source["moved_nodes"] > voxel.source["moved_nodes"]
    # Taubin passes do not shrink the bodies: volume within 1 % of the unsmoothed mesh
    for v in BMD:
        a, b = (s.mesh.cell_volumes()[s.mesh.cells_in("level", v)].sum() for s in (smooth, voxel))
        assert a == pytest.approx(b, rel=0.01)
