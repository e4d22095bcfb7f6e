"""Per-vertebra vBMD: segment(levels, bmd={level: vBMD}) and LevelMaterials."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.materials import LevelMaterials, MaterialSet, cancellous_modulus, cortical_modulus

LEVELS = ["T12", "L1", "L2"]
H = 4.0


@pytest.fixture(scope="module")
def per_level():
    return vf.segment(LEVELS, bmd={"T12": 70, "L1": 55, "L2": 130}, element_size=H)


def _mean_E(seg, level, region):
    rows = seg.summary()
    return float(rows[(rows.level == level) & (rows.region == region)].mean_modulus_MPa.iloc[0])


def test_each_vertebra_gets_its_own_law_value(per_level):
    for level, bmd in (("T12", 70), ("L1", 55), ("L2", 130)):
        assert _mean_E(per_level, level, "cancellous") == pytest.approx(cancellous_modulus(bmd), rel=1e-12)
        assert _mean_E(per_level, level, "cortex") == pytest.approx(cortical_modulus(bmd), rel=1e-12)
    # disc materials do not depend on the vBMD
    uniform = vf.segment(LEVELS, bmd=70.0, element_size=H)
    disc = per_level.mesh.cells_in("level", "T12-L1")
    np.testing.assert_array_equal(per_level.elasticity[disc], uniform.elasticity[disc])


def test_equal_values_give_the_scalar_model_exactly():
    a = vf.segment(LEVELS, bmd={"T12": 80, "L1": 80, "L2": 80}, element_size=H)
    b = vf.segment(LEVELS, bmd=80.0, element_size=H)
    np.testing.assert_array_equal(a.elasticity, b.elasticity)


def test_materials_choices_are_kept_with_a_dict():
    ms = MaterialSet(bmd=100.0, anisotropic=True)
    seg = vf.segment(LEVELS, bmd={"T12": 70, "L1": 55, "L2": 72}, materials=ms, element_size=H)
    assert isinstance(seg.materials, LevelMaterials) and seg.materials.anisotropic
    C = seg.elasticity[seg.mesh.cells_in("level", "L1") & seg.mesh.cells_in("region", "cancellous")][0]
    assert C[0, 0] < C[2, 2]                                  # transversely isotropic about z


@pytest.mark.parametrize("bmd, match", [
    ({"T12": 70, "L1": 55}, r"no vBMD for \['L2'\]"),
    ({"T12": 70, "L1": 55, "L2": 72, "L3": 60}, "'L3', which is not a vertebra"),
    ({"T12": 70, "L1": 0, "L2": 72}, r"bmd\['L1'\] = 0.0 mg/cm\^3; allowed range \(0, 400\]"),
    ({"T12": 70, "L1": "low", "L2": 72}, r"bmd\['L1'\] = 'low'"),
    ([70, 55, 72], "expected a number"),
])
def test_bad_per_level_bmd_names_the_field(bmd, match):
    with pytest.raises(InputError, match=match):
        vf.segment(LEVELS, bmd=bmd, element_size=H)


def test_softer_vertebra_carries_more_strain_and_vp_uses_its_density(per_level):
    res = vf.simulate(per_level, vf.Load(compression=800.0), factor_of_risk=False)     # no plate strength read
    mesh = per_level.mesh
    canc = mesh.cells_in("region", "cancellous")
    ezz = np.abs(res.solution.cell_strain[:, 2])
    s_l1 = ezz[canc & mesh.cells_in("level", "L1")].mean()
    s_l2 = ezz[canc & mesh.cells_in("level", "L2")].mean()
    # about the same stress in both bodies; the modulus ratio is (130/55)^1.56 = 3.8
    assert 2.5 < s_l1 / s_l2 < 5.0
    vp = vf.vertebroplasty(per_level, "L1")
    cement = vp.mesh.cells_in("region", "cement_bone")
    composite = per_level.materials.for_level("L1").cement_bone().E
    assert vp.mesh.cell_data["modulus"][cement].max() == pytest.approx(composite, rel=1e-9)
    record = res.record()
    assert record["materials"]["bmd"] == {"T12": 70.0, "L1": 55.0, "L2": 130.0}
