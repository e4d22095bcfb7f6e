"""Synthetic QCT phantoms drawn from the parametric model."""
import numpy as np
import pytest

from vertebrafe.errors import InputError
from vertebrafe.image import label_of, phantom
from vertebrafe.image.phantom import DISC_HU, TISSUE_HU


@pytest.fixture(scope="module")
def ph(pair):
    return pair


def test_labels_are_verse_codes_and_volumes_match_the_model(ph):
    vox = ph.labels.voxel_volume
    for v in ("L1", "L2"):
        n = np.count_nonzero(ph.labels.array == label_of(v))
        body = ph.segment.mesh.cells_in("level", v)
        V = ph.segment.mesh.cell_volumes()[body].sum()
        assert n * vox == pytest.approx(V, rel=0.03)               # half-voxel boundary: a few % at 1 mm
    assert set(np.unique(ph.labels.array)) == {0, 20, 21}


def test_ct_numbers_follow_the_calibration_noise_and_partial_volume(ph):
    from scipy.ndimage import distance_transform_edt

    for v, bmd in (("L1", 55.0), ("L2", 100.0)):
        m = ph.labels.array == label_of(v)
        deep = distance_transform_edt(m) >= 4
        hu = ph.ct.array[deep]
        assert hu.mean() == pytest.approx(ph.calibration.hu(bmd), abs=1.0)
        assert hu.std() == pytest.approx(15.0, rel=0.1)             # white noise of the requested SD
    # partial volume: the rim of the body holds values between the trabecular and the cortical CT numbers
    L1 = ph.labels.array == label_of("L1")
    rim = L1 & (distance_transform_edt(L1) <= 1)
    assert ph.calibration.hu(55.0) + 100 < np.median(ph.ct.array[rim]) < ph.calibration.hu(800.0) - 100
    far = (distance_transform_edt(ph.labels.array == 0) > 8) & (distance_transform_edt(ph.rods.array == 0) > 6)
    assert ph.ct.array[far].mean() == pytest.approx(TISSUE_HU, abs=2.0)
    assert DISC_HU != TISSUE_HU


def test_phantom_files_and_no_overwrite(tmp_path):
    pytest.importorskip("nibabel")
    ph = phantom("L1", bmd=80.0, spacing=2.0, margin=2.0, path=tmp_path / "ph")
    assert set(ph.paths) == {"ct", "labels", "rods"}
    with pytest.raises(InputError, match="exists"):
        phantom("L1", bmd=80.0, spacing=2.0, path=tmp_path / "ph")
    with pytest.raises(InputError, match="spacing"):
        phantom("L1", bmd=80.0, spacing=0.0)
