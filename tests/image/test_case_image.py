"""Case files: per-level vBMD in [bone] and image-based cases in [image], run from the command line."""
import json
import os

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe import cli
from vertebrafe.case import parse_case
from vertebrafe.errors import InputError


def _case(**sections):
    raw = {"segment": {"levels": "T12-L2", "element_size": 4.0}, "load": {"compression": 500.0}}
    raw.update(sections)
    return raw


def test_per_level_bmd_in_a_case():
    case = parse_case(_case(bone={"bmd": {"L2": 72.0, "T12": 70.0, "L1": 55.0}}))
    assert case.bone.bmd == {"T12": 70.0, "L1": 55.0, "L2": 72.0}
    seg = vf.case.build_segment(case)
    assert seg.materials.bmd == case.bone.bmd
    ref = vf.segment("T12-L2", bmd={"T12": 70, "L1": 55, "L2": 72}, element_size=4.0)
    np.testing.assert_array_equal(seg.elasticity, ref.elasticity)


@pytest.mark.parametrize("bmd, match", [
    ({"T12": 70.0, "L1": 55.0}, r"bone.bmd has no value for \['L2'\]"),
    ({"T12": 70.0, "L1": 55.0, "L2": 72.0, "L4": 60.0}, "bone.bmd.L4 is not a vertebra"),
    ({"T12": 70.0, "L1": -1.0, "L2": 72.0}, r"bone.bmd.L1 = -1 is out of range"),
    ("70", "bone.bmd = '70' is a string; expected a number"),
])
def test_per_level_bmd_errors(bmd, match):
    with pytest.raises(InputError, match=match):
        parse_case(_case(bone={"bmd": bmd}))


def test_image_section_errors(tmp_path):
    with pytest.raises(InputError, match=r"image.ct = 'nope.nii.gz': no such file"):
        parse_case(_case(image={"ct": "nope.nii.gz", "labels": "x", "calibration_slope": 0.8,
                                "calibration_intercept": 0.0}))
    (tmp_path / "ct.nii").write_bytes(b"")
    img = {"ct": str(tmp_path / "ct.nii"), "labels": str(tmp_path / "ct.nii")}
    with pytest.raises(InputError, match="needs one calibration"):
        parse_case(_case(image=img))
    with pytest.raises(InputError, match="vBMD comes from the CT"):
        parse_case(_case(image=dict(img, calibration_slope=0.8, calibration_intercept=0.0), bone={"bmd": 70.0}))
    with pytest.raises(InputError, match=r"image.density_scale = 12 is out of range; allowed \[0, 10\] mm"):
        parse_case(_case(image=dict(img, calibration_slope=0.8, calibration_intercept=0.0, density_scale=12.0)))
    with pytest.raises(InputError, match=r"\[bone\] is missing"):
        parse_case(_case())
    # posterior elements are the parametric segment's default; an image case has none and says so
    calibrated = dict(img, calibration_slope=0.8, calibration_intercept=0.0)
    assert parse_case(_case(image=calibrated)).segment.posterior is False
    assert parse_case(_case(image=calibrated)).to_dict()["segment"]["posterior"] is False
    with pytest.raises(InputError, match="segment.posterior = true needs the parametric segment"):
        parse_case(_case(image=calibrated, segment={"levels": "T12-L2", "posterior": True}))
    with pytest.raises(InputError, match="segment.central_coarsening = 1 needs the parametric segment"):
        parse_case(_case(image=calibrated, segment={"levels": "T12-L2", "central_coarsening": 1}))
    with pytest.raises(InputError, match="segment.annulus_refinement = 2 needs the parametric segment"):
        parse_case(_case(image=calibrated, segment={"levels": "T12-L2", "annulus_refinement": 2}))
    with pytest.raises(InputError, match="segment.articular_refinement = 2 needs the parametric segment"):
        parse_case(_case(image=calibrated, segment={"levels": "T12-L2", "articular_refinement": 2}))


def test_cli_runs_an_image_case(tmp_path, pair):
    pytest.importorskip("nibabel")
    from vertebrafe.image import save_nifti

    os.makedirs(tmp_path / "scan")
    for name in ("ct", "labels", "rods"):
        save_nifti(getattr(pair, name), tmp_path / "scan" / f"{name}.nii.gz")
    toml = tmp_path / "image.toml"
    toml.write_text('[segment]\nlevels = "L1-L2"\nelement_size = 4.0\n\n'
                    '[image]\nct = "scan/ct.nii.gz"\nlabels = "scan/labels.nii.gz"\nrods = "scan/rods.nii.gz"\n'
                    'rod_densities = {1 = 0.0, 2 = 50.0, 3 = 100.0, 4 = 200.0}\ndensity_scale = 2.0\n\n'
                    '[treatment]\nkind = "vertebroplasty"\nlevel = "L1"\nvolume = 2.0\n\n'
                    '[load]\ncompression = 500.0\n')
    out = tmp_path / "out"
    assert cli.main(["run", str(toml), "-o", str(out)]) == 0
    found = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f == "case.json"]
    record = json.load(open(found[0]))
    src = record["segment"]["source"]
    assert src["kind"] == "image" and src["calibration"]["n_rods"] == 4
    assert src["density_scale_mm"] == 2.0
    assert src["bmd"]["L1"] == pytest.approx(55.0, rel=0.03) and src["bmd"]["L2"] == pytest.approx(100.0, rel=0.03)
    assert [op["kind"] for op in record["history"]] == ["vertebroplasty"]


def test_study_sweeps_the_image_geometry(tmp_path, pair):
    """A study grid over [image] geometry expands into template and voxel cases; the voxel case builds a
    voxel segment (simulate takes it like any other, tests/image/test_voxel_segment.py)."""
    pytest.importorskip("nibabel")
    from vertebrafe import study as vs
    from vertebrafe.image import save_nifti

    for name in ("ct", "labels"):
        save_nifti(getattr(pair, name), tmp_path / f"{name}.nii.gz")
    image = {"ct": str(tmp_path / "ct.nii.gz"), "labels": str(tmp_path / "labels.nii.gz"),
             "calibration_slope": pair.calibration.slope, "calibration_intercept": pair.calibration.intercept}
    raw = {"study": {"name": "geometry"}, "base": _case(segment={"levels": "L1-L2", "element_size": 2.0}, image=image),
           "grid": {"image.geometry": ["template", "voxel"]}}
    cases = [c.case for c in vs.parse_study(raw).cases]
    assert sorted(c.image.geometry for c in cases) == ["template", "voxel"]
    seg = vf.case.build_segment(next(c for c in cases if c.image.geometry == "voxel"))
    assert seg.source["geometry"] == "voxel" and seg.source["identical_cells"] is False
    assert seg.materials.bmd["L2"] == pytest.approx(100.0, rel=0.03)


def test_converge_sweeps_the_element_size_of_an_image_case(tmp_path, pair, monkeypatch):
    """`vertebrafe converge` on an image case: segment.element_size is the swept key (it sets the image mesh's
    cell size, vertebrafe.image.image_segment), and the image paths stay relative to the case file whatever
    the working directory."""
    pytest.importorskip("nibabel")
    from vertebrafe.image import save_nifti
    from vertebrafe.study.converge import convergence_study

    os.makedirs(tmp_path / "scan")
    for name in ("ct", "labels"):
        save_nifti(getattr(pair, name), tmp_path / "scan" / f"{name}.nii.gz")
    toml = tmp_path / "image.toml"
    toml.write_text('[segment]\nlevels = "L1-L2"\n\n[image]\nct = "scan/ct.nii.gz"\nlabels = "scan/labels.nii.gz"\n'
                    f'calibration_slope = {pair.calibration.slope}\ncalibration_intercept = '
                    f'{pair.calibration.intercept}\n\n[load]\ncompression = 500.0\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    study = convergence_study(str(toml), [6.0, 5.0])
    assert [c.case.segment.element_size for c in study.cases] == [6.0, 5.0]
    assert {c.case.image.ct for c in study.cases} == {str(tmp_path / "scan" / "ct.nii.gz")}
    seg = vf.case.build_segment(study.cases[0].case)
    assert seg.source["kind"] == "image"
