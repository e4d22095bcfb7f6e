"""Image files in the patient frame: NIfTI and DICOM round trips and the errors for bad metadata."""
import os
import sys

import numpy as np
import pytest

from vertebrafe.errors import InputError
from vertebrafe.image import (Image, label_of, level_of, read_dicom, read_image, read_nifti, save_dicom_series,
                              save_nifti)


def _image(affine=None):
    rng = np.random.default_rng(1)
    a = np.rint(rng.normal(100.0, 300.0, (6, 5, 4)))
    A = np.diag([0.7, 0.8, 1.25, 1.0]) if affine is None else affine
    A[:3, 3] = (-10.0, 20.0, 5.0)
    return Image(a, A, "test")


def test_verse_labels():
    assert label_of("T12") == 19 and label_of("L1") == 20 and level_of(24) == "L5"
    with pytest.raises(InputError, match="no VerSe label"):
        label_of("S3")


def test_world_and_index_are_inverse_and_sampling_is_trilinear():
    im = _image()
    ijk = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(im.to_index(im.to_world(ijk)), ijk, atol=1e-12)
    # trilinear interpolation reproduces a linear field exactly
    i, j, k = np.meshgrid(*[np.arange(n) for n in im.shape], indexing="ij")
    lin = Image(2.0 * i - 3.0 * j + 0.5 * k + 7.0, im.affine)
    q = np.array([1.3, 2.6, 1.1])
    assert lin.sample(im.to_world(q)[None])[0] == pytest.approx(2 * 1.3 - 3 * 2.6 + 0.5 * 1.1 + 7.0)
    assert np.isnan(lin.sample(np.array([[1e3, 0, 0]]))[0])


def test_nifti_round_trip_keeps_values_and_frame(tmp_path):
    pytest.importorskip("nibabel")
    im = _image()
    p = save_nifti(im, tmp_path / "ct.nii.gz")
    back = read_image(p)
    np.testing.assert_array_equal(back.array, im.array)
    np.testing.assert_allclose(back.affine, im.affine, atol=1e-5)
    with pytest.raises(InputError, match="does not overwrite"):
        save_nifti(im, p)


def test_nifti_without_orientation_is_refused(tmp_path):
    nib = pytest.importorskip("nibabel")
    img = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), None)
    img.header["qform_code"] = 0
    img.header["sform_code"] = 0
    nib.save(img, tmp_path / "x.nii")
    with pytest.raises(InputError, match="no orientation"):
        read_nifti(tmp_path / "x.nii")


def test_dicom_series_round_trip_in_patient_frame(tmp_path):
    pytest.importorskip("pydicom")
    im = _image()
    d = save_dicom_series(im, tmp_path / "series")
    back = read_dicom(d)
    # the same physical image: values at the same patient points agree (the slice order may differ)
    pts = im.to_world(np.argwhere(np.ones(im.shape, bool)))
    np.testing.assert_allclose(back.sample(pts, order=0), im.array.ravel(), atol=0.5)
    np.testing.assert_allclose(sorted(back.spacing), sorted(im.spacing), rtol=1e-6)


def test_dicom_errors_name_the_problem(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    im = _image()
    d = save_dicom_series(im, tmp_path / "series")
    f = os.path.join(d, "slice0002.dcm")
    ds = pydicom.dcmread(f)
    del ds.ImagePositionPatient
    ds.save_as(f)
    with pytest.raises(InputError, match="has no ImagePositionPatient"):
        read_dicom(d)
    d2 = save_dicom_series(im, tmp_path / "gap")
    os.remove(os.path.join(d2, "slice0001.dcm"))
    with pytest.raises(InputError, match="slice spacing varies"):
        read_dicom(d2)


def test_anisotropic_and_sheared_grids_are_refused():
    with pytest.raises(InputError, match=r"anisotropic \(ratio 4"):
        Image(np.zeros((2, 2, 2)), np.diag([0.5, 0.5, 2.0, 1.0])).check_spacing(3.0)
    A = np.eye(4)
    A[0, 1] = 0.3
    with pytest.raises(InputError, match="not orthogonal"):
        Image(np.zeros((2, 2, 2)), A)


def test_missing_optional_package_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(InputError, match=r"vertebrafe\[image\]"):
        read_nifti(tmp_path / "x.nii")
