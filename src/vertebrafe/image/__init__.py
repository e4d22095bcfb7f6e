"""Image-based models: CT volumes and vertebra label maps -> calibrated density -> :class:`~vertebrafe.Segment`.

Example (a synthetic scan; about half a minute, so run by ``tests/image`` rather than as a doctest)::

    import vertebrafe as vf
    ph = vf.phantom("T12-L2", bmd=70.0)
    seg = vf.image_segment(ph.ct, ph.labels, calibration=ph.calibration)

Modules: :mod:`~vertebrafe.image.volume` (:class:`Image`, NIfTI and DICOM readers and writers, VerSe
labels), :mod:`~vertebrafe.image.calibration` (HU -> equivalent mineral density),
:mod:`~vertebrafe.image.phantom` (synthetic scans from the parametric model), :mod:`~vertebrafe.image.body`
(whole-vertebra labels cut to the body), :mod:`~vertebrafe.image.fit` (template fit of one labelled body),
:mod:`~vertebrafe.image.voxel` (voxel meshes of the labels), :mod:`~vertebrafe.image.build`
(:func:`image_segment`).
"""
from .body import ARCH_RADIUS, vertebral_body
from .build import as_calibration, image_segment, level_bmd
from .calibration import PHANTOM_MATERIALS, Calibration, fit_from_rods
from .fit import VertebraFit, fit_vertebra
from .phantom import PHANTOM_CALIBRATION, Phantom, phantom
from .volume import (VERSE_LABELS, Image, label_of, level_of, read_dicom, read_image, read_nifti, save_dicom_series,
                     save_nifti)

__all__ = ["image_segment", "level_bmd", "as_calibration", "vertebral_body", "ARCH_RADIUS", "VertebraFit", "fit_vertebra", "Calibration", "PHANTOM_MATERIALS", "fit_from_rods", "Phantom", "phantom", "PHANTOM_CALIBRATION",
           "Image", "VERSE_LABELS", "label_of", "level_of", "read_dicom", "read_image", "read_nifti",
           "save_dicom_series", "save_nifti"]
