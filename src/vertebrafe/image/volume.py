"""3D images in the patient frame: :class:`Image`, NIfTI and DICOM-series readers and writers.

An :class:`Image` is a voxel array ``(ni, nj, nk)`` with an affine ``(4, 4)`` that maps voxel indices
``(i, j, k, 1)`` to patient coordinates in mm, RAS+: the frame of every vertebrafe model (+x toward the
patient's right, +y anterior, +z superior). NIfTI files store that affine
(nibabel reports it in RAS+); DICOM stores LPS+ positions and directions, which the reader turns into
RAS+ by negating x and y.

Readers fail with :class:`~vertebrafe.errors.InputError` naming the file and the missing or bad
metadata: a NIfTI file without orientation (``qform_code = sform_code = 0``), a DICOM slice without
``PixelSpacing``, ``ImagePositionPatient``, ``ImageOrientationPatient`` or the rescale tags, slices of
several series, missing or unevenly spaced slices, and a sheared (non-orthogonal) voxel grid.
nibabel and pydicom are optional dependencies (``pip install vertebrafe[image]``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path

__all__ = ["Image", "read_image", "read_nifti", "read_dicom", "save_nifti", "save_dicom_series",
           "VERSE_LABELS", "label_of", "level_of"]

#: VerSe vertebra labels: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 28 T13 (Loeffler et al. 2020).
VERSE_LABELS = {**{f"C{i}": i for i in range(1, 8)}, **{f"T{i}": 7 + i for i in range(1, 13)},
                **{f"L{i}": 19 + i for i in range(1, 7)}, "T13": 28}
_LEVEL_OF = {v: k for k, v in VERSE_LABELS.items()}

_ORTHO_TOL = 1e-4          # |cos| between voxel axes regarded as orthogonal


def label_of(level):
    """VerSe label value of a vertebra name (``"L1"`` -> 20)."""
    try:
        return VERSE_LABELS[level]
    except KeyError:
        raise InputError(f"level = {level!r} has no VerSe label; known: {list(VERSE_LABELS)}") from None


def level_of(label):
    """Vertebra name of a VerSe label value (20 -> ``"L1"``), or None."""
    return _LEVEL_OF.get(int(label))


def _need(module, purpose):
    try:
        return __import__(module)
    except ImportError:
        raise InputError(f"{purpose} needs the optional package {module!r}: pip install 'vertebrafe[image]'") \
            from None


@dataclass
class Image:
    """A voxel array and its voxel -> patient (RAS+, mm) affine.

    Attributes
    ----------
    array : ndarray ``(ni, nj, nk)``
        Voxel values (HU for CT, integer labels for label maps).
    affine : ndarray ``(4, 4)``
        ``x_RAS = affine @ (i, j, k, 1)`` in mm; voxel axes orthogonal.
    source : str
        Where it came from (file or directory), for messages and records.
    """

    array: np.ndarray
    affine: np.ndarray
    source: str = ""

    def __post_init__(self):
        a = np.asarray(self.array)
        A = np.asarray(self.affine, dtype=float)
        if a.ndim != 3:
            raise InputError(f"image {self.source or ''}: array of shape {a.shape}; expected 3D (ni, nj, nk)")
        if A.shape != (4, 4) or not np.isfinite(A).all() or not np.allclose(A[3], [0, 0, 0, 1]):
            raise InputError(f"image {self.source or ''}: affine {A.tolist()}; expected a finite (4, 4) matrix "
                             f"with last row (0, 0, 0, 1)")
        M = A[:3, :3]
        sp = np.linalg.norm(M, axis=0)
        if np.any(sp <= 0):
            raise InputError(f"image {self.source or ''}: voxel spacing {sp.tolist()} mm; must be > 0")
        D = M / sp
        off = np.abs(D.T @ D - np.eye(3)).max()
        if off > _ORTHO_TOL:
            raise InputError(f"image {self.source or ''}: the voxel axes are not orthogonal (sheared grid, "
                             f"|cos| up to {off:.3g}); resample it onto an orthogonal grid first")
        self.array = a
        self.affine = A

    @property
    def shape(self):
        return self.array.shape

    @property
    def spacing(self):
        """Voxel edge lengths ``(3,)`` (mm) along i, j, k."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def voxel_volume(self):
        """mm^3."""
        return float(np.prod(self.spacing))

    def to_world(self, ijk):
        """Patient coordinates ``(..., 3)`` (mm) of (fractional) voxel indices ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def to_index(self, xyz):
        """Fractional voxel indices ``(..., 3)`` of patient points ``(..., 3)`` (mm)."""
        xyz = np.asarray(xyz, dtype=float)
        return (xyz - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T

    def sample(self, xyz, values=None, order=1, fill=np.nan):
        """Values of the image (or of ``values``, an array on the same grid) at points ``(..., 3)`` (mm).

        ``order`` 1: trilinear, 0: nearest voxel. Points outside the grid get ``fill``.
        """
        from scipy.ndimage import map_coordinates

        v = self.array if values is None else np.asarray(values)
        if v.shape != self.shape:
            raise InputError(f"values of shape {v.shape}; expected the image grid {self.shape}")
        xyz = np.asarray(xyz, dtype=float)
        idx = self.to_index(xyz.reshape(-1, 3)).T
        out = map_coordinates(np.asarray(v, dtype=float), idx, order=order, mode="constant", cval=np.nan)
        out[np.isnan(out)] = fill
        return out.reshape(xyz.shape[:-1])

    def check_spacing(self, max_anisotropy=3.0):
        """Raise InputError if the largest voxel edge exceeds ``max_anisotropy`` times the smallest."""
        sp = self.spacing
        ratio = float(sp.max() / sp.min())
        if not ratio <= float(max_anisotropy):
            raise InputError(f"image {self.source}: voxel spacing {np.round(sp, 4).tolist()} mm is anisotropic "
                             f"(ratio {ratio:.3g}); allowed ratio <= max_anisotropy = {max_anisotropy:g}. "
                             f"Resample to near-isotropic voxels or raise max_anisotropy")
        return sp

    def same_grid(self, other, tol=1e-3):
        """True if ``other`` has the same shape and affine (within ``tol`` mm)."""
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=tol)

    def on_grid_of(self, other, tol=1e-3):
        """This image re-indexed onto the grid of ``other`` when the two grids hold the same voxel centres in
        another axis order or direction (e.g. a DICOM series and a NIfTI file of the same scan): no
        interpolation. Returns ``self`` if the grids already match, None if they are not such a permutation."""
        if self.same_grid(other, tol):
            return self
        T = np.linalg.solve(self.affine, other.affine)          # other index -> self index
        P = np.rint(T[:3, :3])
        t = np.rint(T[:3, 3])
        if (not np.allclose(T[:3, :3], P, atol=1e-6) or not np.allclose(T[:3, 3], t, atol=tol)
                or sorted(np.abs(P).sum(axis=0).tolist()) != [1.0, 1.0, 1.0]
                or sorted(np.abs(P).sum(axis=1).tolist()) != [1.0, 1.0, 1.0]):
            return None
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in other.shape], indexing="ij"), axis=-1)
        src = np.rint(idx @ P.T + t).astype(np.int64)
        if (src < 0).any() or (src >= np.array(self.shape)).any():
            return None
        return Image(self.array[src[..., 0], src[..., 1], src[..., 2]], other.affine.copy(), self.source)


# ------------------------------------------------------------------------------------------------ files
def read_image(path, **kwargs):
    """Read a NIfTI file (``.nii``, ``.nii.gz``) or a DICOM series (a directory, or one ``.dcm`` file of it)."""
    p = os.fspath(path)
    if os.path.isdir(p) or p.lower().endswith(".dcm"):
        return read_dicom(os.path.dirname(p) if os.path.isfile(p) else p, **kwargs)
    if p.lower().endswith((".nii", ".nii.gz")):
        return read_nifti(p, **kwargs)
    raise InputError(f"image path {p!r}: unknown format; allowed: .nii, .nii.gz or a DICOM series directory")


def read_nifti(path):
    """A NIfTI file as :class:`Image` (data scaled by the header's ``scl_slope``/``scl_inter``)."""
    nib = _need("nibabel", "reading NIfTI")
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"image file {p!r} does not exist")
    img = nib.load(p)
    hdr = img.header
    if int(hdr["qform_code"]) == 0 and int(hdr["sform_code"]) == 0:
        raise InputError(f"NIfTI {p!r} has no orientation (qform_code = sform_code = 0): the patient frame is "
                         f"unknown; set the qform or sform (e.g. nibabel img.set_qform(affine, code=1))")
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"NIfTI {p!r}: data of shape {data.shape}; expected a 3D volume")
    return Image(np.asarray(data), np.asarray(img.affine, dtype=float), p)


_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def read_dicom(directory, series_uid=None):
    """A DICOM series (all ``*.dcm`` files, or files with a DICOM preamble, in ``directory``) as :class:`Image`.

    Slices are sorted along the slice normal; values are ``RescaleSlope * stored + RescaleIntercept``
    (HU for CT). With several series in the directory, ``series_uid`` selects one.
    """
    pydicom = _need("pydicom", "reading DICOM")
    d = os.fspath(directory)
    if not os.path.isdir(d):
        raise InputError(f"DICOM directory {d!r} does not exist")
    slices = []
    for name in sorted(os.listdir(d)):
        f = os.path.join(d, name)
        if not os.path.isfile(f):
            continue
        try:
            ds = pydicom.dcmread(f, force=name.lower().endswith(".dcm"))
        except Exception:                                         # not a DICOM file: skip it
            continue
        if "PixelData" in ds:
            slices.append((f, ds))
    if not slices:
        raise InputError(f"DICOM directory {d!r} has no image slices")
    uids = sorted({str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices})
    if series_uid is not None:
        slices = [(f, ds) for f, ds in slices if str(getattr(ds, "SeriesInstanceUID", "")) == series_uid]
        if not slices:
            raise InputError(f"series_uid = {series_uid!r} is not in {d!r}; series there: {uids}")
    elif len(uids) > 1:
        raise InputError(f"DICOM directory {d!r} holds {len(uids)} series {uids}; choose one with series_uid=")
    for tag in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "RescaleSlope",
                "RescaleIntercept"):
        lacking = [f for f, ds in slices if tag not in ds]
        if lacking:
            raise InputError(f"DICOM slice {lacking[0]!r} has no {tag} ({len(lacking)} of {len(slices)} slices "
                             f"lack it); the patient frame or the HU scale would be unknown")
    iop = np.array([float(v) for v in slices[0][1].ImageOrientationPatient])
    row, col = iop[:3], iop[3:]                      # direction of increasing column index, of increasing row
    normal = np.cross(row, col)
    for f, ds in slices:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], iop, atol=1e-4):
            raise InputError(f"DICOM slice {f!r}: ImageOrientationPatient differs from the first slice's")
    pos = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in slices])
    dist = pos @ normal
    order = np.argsort(dist)
    slices, pos, dist = [slices[i] for i in order], pos[order], dist[order]
    if len(slices) > 1:
        gaps = np.diff(dist)
        if np.any(gaps <= 1e-6):
            raise InputError(f"DICOM series in {d!r} has two slices at the same position "
                             f"({slices[int(np.argmin(gaps))][0]!r})")
        if np.ptp(gaps) > 0.01 * gaps.mean() + 1e-3:
            raise InputError(f"DICOM series in {d!r}: slice spacing varies from {gaps.min():.4g} to {gaps.max():.4g} "
                             f"mm (missing slices?); allowed: uniform within 1 %")
        dz = float(gaps.mean())
    else:
        dz = float(getattr(slices[0][1], "SliceThickness", 0.0) or 0.0)
        if dz <= 0:
            raise InputError(f"DICOM series in {d!r} has one slice and no SliceThickness")
    dr, dc = (float(v) for v in slices[0][1].PixelSpacing)    # row spacing (between rows), column spacing
    vol = np.stack([np.asarray(ds.pixel_array, dtype=np.float64) * float(ds.RescaleSlope)
                    + float(ds.RescaleIntercept) for _, ds in slices], axis=-1)   # (rows, cols, slices)
    # voxel (r, c, s) -> LPS: pos0 + c * dc * row + r * dr * col + s * dz * normal
    A = np.eye(4)
    A[:3, 0] = dr * col
    A[:3, 1] = dc * row
    A[:3, 2] = dz * normal
    A[:3, 3] = pos[0]
    return Image(vol, _LPS_TO_RAS @ A, d)


def _refuse_existing(path):
    if os.path.exists(path):
        raise InputError(f"{path!r} exists; vertebrafe does not overwrite files it did not write "
                         f"(choose another path or remove it)")


def save_nifti(image, path, dtype=None):
    """Write ``image`` to a NIfTI file (qform and sform code 1, scanner RAS). Refuses to overwrite."""
    nib = _need("nibabel", "writing NIfTI")
    p = os.fspath(path)
    _refuse_existing(p)
    data = image.array if dtype is None else image.array.astype(dtype)
    img = nib.Nifti1Image(data, image.affine)
    img.set_qform(image.affine, code=1)
    img.set_sform(image.affine, code=1)
    with atomic_path(p) as tmp:
        nib.save(img, tmp)
    return p


def save_dicom_series(image, directory, series_description="vertebrafe"):
    """Write ``image`` (HU) as a CT DICOM series, one file per k-slice, into the new ``directory``.

    Stored as int16 with ``RescaleIntercept`` -1024 and slope 1 (values rounded to whole HU). Only for
    synthetic data (phantoms, tests): patient tags are placeholders.
    """
    pydicom = _need("pydicom", "writing DICOM")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    d = os.fspath(directory)
    _refuse_existing(d)
    os.makedirs(d)
    A = _LPS_TO_RAS @ image.affine                       # voxel -> LPS
    sp = image.spacing
    col = A[:3, 0] / sp[0]                               # rows advance along i
    row = A[:3, 1] / sp[1]                               # columns advance along j
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    stored = np.clip(np.rint(image.array + 1024.0), 0, 65535).astype(np.uint16)
    for k in range(image.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        f = os.path.join(d, f"slice{k:04d}.dcm")
        ds = FileDataset(f, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Phantom^Synthetic", "PHANTOM"
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = series, study, frame
        ds.SeriesDescription, ds.InstanceNumber = series_description, k + 1
        ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
        ds.ImagePositionPatient = [float(v) for v in (A[:3, 3] + k * A[:3, 2])]
        ds.PixelSpacing = [float(sp[0]), float(sp[1])]
        ds.SliceThickness = float(sp[2])
        ds.Rows, ds.Columns = image.shape[0], image.shape[1]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024.0, 1.0
        ds.PixelData = np.ascontiguousarray(stored[:, :, k]).tobytes()
        ds.save_as(f, enforce_file_format=True)
    return d
