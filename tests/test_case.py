"""Case files: schema, strict validation (table of bad files, each with its message), resolution, ids."""
import glob
import os
import textwrap

import pytest

import vertebrafe
from vertebrafe import case as vc
from vertebrafe.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "cases")

GOOD = """
[segment]
levels = "T12-L2"
element_size = 4.0

[bone]
bmd = 80.0

[fracture]
level = "L1"
grade = 2

[treatment]
kind = "vertebroplasty"
volume = 3.0

[load]
compression = 800.0
flexion = 7.5
"""


def _replace(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


# (id, transform of GOOD, fragments that the message must contain)
BAD = [
    ("unknown-section", lambda t: t + "\n[materials]\nE = 1\n", ["[materials]", "not a known section", "allowed"]),
    ("unknown-key", lambda t: _replace(t, "bmd = 80.0", "bmd = 80.0\ndensity = 2"),
     ["bone.density", "not a known key", "bmd"]),
    ("typo-key", lambda t: _replace(t, "element_size", "elementsize"), ["segment.elementsize", "not a known key"]),
    ("missing-segment", lambda t: _replace(t, '[segment]\nlevels = "T12-L2"\nelement_size = 4.0\n', ""),
     ["[segment]", "missing"]),
    ("missing-levels", lambda t: _replace(t, 'levels = "T12-L2"\n', ""), ["segment.levels", "missing", "required"]),
    ("missing-load", lambda t: _replace(t, "[load]\ncompression = 800.0\nflexion = 7.5\n", ""),
     ["[load]", "missing"]),
    ("empty-load", lambda t: _replace(t, "compression = 800.0\nflexion = 7.5\n", ""),
     ["load", "no load", "preset"]),
    ("zero-load", lambda t: _replace(t, "compression = 800.0\nflexion = 7.5", "compression = 0.0"),
     ["load", "zero"]),
    ("fill-above-one", lambda t: _replace(t, "volume = 3.0", "fill = 1.5"),
     ["treatment.fill", "1.5", "out of range", "(0, 1]"]),
    ("negative-volume", lambda t: _replace(t, "volume = 3.0", "volume = -2.0"),
     ["treatment.volume", "-2", "out of range", "mL"]),
    ("zero-volume", lambda t: _replace(t, "volume = 3.0", "volume = 0"), ["treatment.volume", "= 0", "out of range"]),
    ("volume-and-fill", lambda t: _replace(t, "volume = 3.0", "volume = 3.0\nfill = 0.2"),
     ["treatment.volume", "treatment.fill", "at most one"]),
    ("grade-4", lambda t: _replace(t, "grade = 2", "grade = 4"), ["fracture.grade", "= 4", "not allowed", "1, 2, 3"]),
    ("grade-float", lambda t: _replace(t, "grade = 2", "grade = 2.5"), ["fracture.grade", "2.5", "expected an integer"]),
    ("grade-and-loss", lambda t: _replace(t, "grade = 2", "grade = 2\nheight_loss = 0.3"),
     ["fracture.grade", "height_loss", "at most one"]),
    ("height-loss-too-big", lambda t: _replace(t, "grade = 2", "height_loss = 0.8"),
     ["fracture.height_loss", "0.8", "(0, 0.6]"]),
    ("bmd-zero", lambda t: _replace(t, "bmd = 80.0", "bmd = 0"), ["bone.bmd", "= 0", "out of range", "(0, 400]"]),
    ("bmd-string", lambda t: _replace(t, "bmd = 80.0", 'bmd = "80"'), ["bone.bmd", "'80'", "a string", "expected a number"]),
    ("bmd-bool", lambda t: _replace(t, "bmd = 80.0", "bmd = true"), ["bone.bmd", "a boolean", "expected a number"]),
    ("bmd-and-tscore", lambda t: _replace(t, "bmd = 80.0", "bmd = 80.0\nt_score = -2.5"),
     ["bone.bmd", "t_score", "exactly one"]),
    ("no-bmd", lambda t: _replace(t, "bmd = 80.0", 'law = "kopperdahl2002"'), ["bone.bmd", "missing", "t_score"]),
    ("unknown-law", lambda t: _replace(t, "bmd = 80.0", 'bmd = 80.0\nlaw = "carter1977"'),
     ["bone.law", "'carter1977'", "morgan2003_vertebra"]),
    ("unknown-level", lambda t: _replace(t, '"T12-L2"', '"T12-X9"'), ["segment.levels", "unknown level 'X9'", "L5"]),
    ("level-list-gap", lambda t: _replace(t, '"T12-L2"', '["T12", "L2"]'), ["segment.levels", "T12", "L2"]),
    ("levels-number", lambda t: _replace(t, '"T12-L2"', "12"), ["segment.levels", "an integer", "range"]),
    ("fracture-level-outside", lambda t: _replace(t, 'level = "L1"\ngrade', 'level = "L4"\ngrade'),
     ["fracture.level", "'L4'", "not in segment.levels"]),
    ("fracture-kind", lambda t: _replace(t, "grade = 2", 'grade = 2\nkind = "burst"'),
     ["fracture.kind", "'burst'", "wedge", "biconcave", "crush"]),
    ("treatment-kind", lambda t: _replace(t, '"vertebroplasty"', '"cementoplasty"'),
     ["treatment.kind", "'cementoplasty'", "kyphoplasty"]),
    ("restoration-for-vp", lambda t: _replace(t, "volume = 3.0", "volume = 3.0\nrestoration = 0.5"),
     ["treatment.restoration", "does not apply", "kyphoplasty"]),
    ("balloons-3", lambda t: _replace(t, 'kind = "vertebroplasty"\nvolume = 3.0', 'kind = "kyphoplasty"\nballoons = 3'),
     ["treatment.balloons", "= 3", "1, 2"]),
    ("restore-unfractured", lambda t: _replace(
        _replace(t, "[fracture]\nlevel = \"L1\"\ngrade = 2\n", ""), 'kind = "vertebroplasty"\nvolume = 3.0',
        'kind = "kyphoplasty"\nlevel = "L1"\nrestoration = 0.5'),
     ["treatment.restoration", "not fractured"]),
    ("treatment-level-missing", lambda t: _replace(t, "[fracture]\nlevel = \"L1\"\ngrade = 2\n", ""),
     ["treatment.level", "missing", "intact"]),
    ("treatment-level-outside", lambda t: _replace(t, "volume = 3.0", 'volume = 3.0\nlevel = "T10"'),
     ["treatment.level", "'T10'", "not in segment.levels"]),
    ("bkp-surface", lambda t: _replace(t, 'kind = "vertebroplasty"\nvolume = 3.0', 'kind = "kyphoplasty"\nsurface = "smooth"'),
     ["treatment.surface", "'smooth'", "not allowed", "fitted", "mixed"]),
    ("approach", lambda t: _replace(t, "volume = 3.0", 'volume = 3.0\napproach = "transpedicular"'),
     ["treatment.approach", "bipedicular", "unipedicular"]),
    ("offset-shape", lambda t: _replace(t, "volume = 3.0", "volume = 3.0\noffset = [1.0, 2.0]"),
     ["treatment.offset", "wrong shape", "2 values", "three numbers"]),
    ("moment-vector", lambda t: _replace(t, "flexion = 7.5", "flexion = [7.5, 0.0, 0.0]"),
     ["load.flexion", "an array", "expected a number", "N m"]),
    ("flexion-and-extension", lambda t: _replace(t, "flexion = 7.5", "flexion = 7.5\nextension = 2.0"),
     ["load.flexion", "load.extension", "at most one"]),
    ("negative-compression", lambda t: _replace(t, "compression = 800.0", "compression = -800.0"),
     ["load.compression", "-800", "[0, 20000]", "N"]),
    ("unknown-preset", lambda t: _replace(t, "compression = 800.0", 'preset = "jogging"'),
     ["load.preset", "'jogging'", "relaxed_standing"]),
    ("reference-point-shape", lambda t: _replace(t, "flexion = 7.5", "reference_point = 5.0"),
     ["load.reference_point", "wrong shape", "three numbers"]),
    ("element-size-too-small", lambda t: _replace(t, "element_size = 4.0", "element_size = 0.1"),
     ["segment.element_size", "0.1", "[0.5, 10]", "mm"]),
    ("element-size-nan", lambda t: _replace(t, "element_size = 4.0", "element_size = nan"),
     ["segment.element_size", "not finite"]),
    ("solver-name", lambda t: t + '\n[solver]\nsolver = "cholesky"\n', ["solver.solver", "'cholesky'", "amg"]),
    ("rtol-range", lambda t: t + "\n[solver]\nrtol = 0.5\n", ["solver.rtol", "0.5", "out of range"]),
    ("output-type", lambda t: t + '\n[output]\nvtu = "yes"\n', ["output.vtu", "'yes'", "true or false"]),
    ("override-unknown-level", lambda t: t + "\n[segment.overrides.L4]\nanterior_height = 20.0\n",
     ["segment.overrides.L4", "not in this segment", "T12-L1"]),
    ("override-unknown-field", lambda t: t + "\n[segment.overrides.L1]\nheight = 20.0\n",
     ["segment.overrides.L1.height", "not a known vertebra dimension", "anterior_height"]),
    ("override-range", lambda t: t + "\n[segment.overrides.L1]\nanterior_height = 200.0\n",
     ["segment.overrides.L1.anterior_height", "200", "out of range"]),
    ("section-not-table", lambda t: "solver = 3\n" + t, ["[solver]", "an integer", "expected a table"]),
    ("level-load-outside", lambda t: t + '\n[[load.levels]]\nlevel = "L4"\nforce = [0, 0, -100]\n',
     ["load.levels[0].level", "'L4'", "not in segment.levels"]),
    ("level-load-magnitude", lambda t: t + '\n[[load.levels]]\nlevel = "L1"\nforce = [15000, 15000, 0]\n',
     ["load.levels[0].force", "magnitude 21213.2 N", "at most 20000 N"]),
    ("level-load-via", lambda t: t + '\n[[load.levels]]\nlevel = "L1"\nvia = "glue"\n',
     ["load.levels[0].via", "'glue'", "'distributed', 'plate'"]),
    ("level-load-key", lambda t: t + '\n[[load.levels]]\nlevel = "L1"\nforces = [0, 0, 1]\n',
     ["load.levels[0].forces", "not a known key", "force, moment, point, via, name"]),
    ("level-load-no-level", lambda t: t + '\n[[load.levels]]\nforce = [0, 0, -100]\n',
     ["load.levels[0].level", "missing"]),
    ("muscle-level", lambda t: t + "\n[load.muscles]\nrectus_abdominis = {T12 = 100.0}\n",
     ["load.muscles.rectus_abdominis.T12", "moment arm", "['L1', 'L2']"]),
    ("muscle-negative", lambda t: t + "\n[load.muscles]\nerector_spinae = {L1 = -100.0}\n",
     ["load.muscles.erector_spinae.L1", "-100", "[0, 20000] N"]),
    ("muscle-number", lambda t: t + "\n[load.muscles]\nerector_spinae = 300.0\n",
     ["load.muscles.erector_spinae", "a number", "{vertebra = number}"]),
    ("muscle-unknown", lambda t: t + "\n[load.muscles]\npsoas = {L1 = 100.0}\n",
     ["load.muscles.psoas", "not a known key", "erector_spinae, rectus_abdominis, balance"]),
    ("balance-no-moment", lambda t: _replace(t, "flexion = 7.5", "[load.muscles]\nbalance = true"),
     ["load.muscles.balance", "no flexion or extension moment"]),
    ("balance-extension-at-t12", lambda t: _replace(t, "flexion = 7.5", "extension = 7.5\n[load.muscles]\nbalance = true"),
     ["load.muscles.balance", "rectus abdominis", "T12", "'L1'"]),
    ("treatment-none-level", lambda t: _replace(t, 'kind = "vertebroplasty"\nvolume = 3.0', 'kind = "none"\nlevel = "L1"'),
     ["treatment.level", "kind = 'none'"]),
]


@pytest.mark.parametrize("name, transform, fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_case_file_is_rejected_with_its_message(tmp_path, name, transform, fragments):
    path = tmp_path / f"{name}.toml"
    path.write_text(transform(GOOD))
    with pytest.raises(InputError) as info:
        vc.load_case(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg                  # the message names the file first
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    assert "\n" not in msg


def test_at_least_25_bad_files():
    assert len(BAD) >= 25


def test_invalid_toml_syntax_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[segment\nlevels = 'T12-L2'\n")
    with pytest.raises(InputError, match=r"broken.toml: invalid TOML"):
        vc.load_case(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        vc.load_case(tmp_path / "nope.toml")


@pytest.mark.parametrize("treatment, fragments", [
    ({"kind": "vertebroplasty", "fill": 0.95}, ["treatment.fill = 0.95 does not fit in L1", "allowed fill (0, 0."]),
    ({"kind": "vertebroplasty", "volume": 19.0}, ["treatment.volume = 19.0 mL does not fit", "allowed volume (0, "]),
    ({"kind": "vertebroplasty", "volume": 2.0, "offset": [0.0, 19.0, 0.0]},
     ["treatment.offset = (0.0, 19.0, 0.0) mm", "outside the vertebral body of L1", "allowed (mm): dx in ["]),
    ({"kind": "kyphoplasty", "volume": 2.0, "offset": [15.0, 0.0, 0.0]},
     ["treatment.offset = (15.0, 0.0, 0.0) mm", "outside the vertebral body"]),
    ({"kind": "vertebroplasty", "volume": 2.0, "layer_modulus": 100.0},
     ["treatment.layer_modulus = 100.0 needs treatment.interface = 'layer'"]),
    ({"kind": "kyphoplasty", "volume": 2.0, "interface": "frictional"},
     ["treatment.interface = 'frictional'; allowed: ['bonded', 'layer']"]),
    ({"kind": "kyphoplasty", "volume": 2.0, "layer_thickness": 1.0},
     ["treatment.layer_thickness = 1.0 needs treatment.interface = 'layer'"]),
])
def test_treatment_refused_at_build_names_the_case_key(treatment, fragments):
    """Values the schema cannot check alone (they depend on the meshed vertebra) are refused by the
    treatment; the message names the key as the case file spells it, its value and the allowed range."""
    case = vc.parse_case({"segment": {"levels": "L1", "element_size": 4.0}, "bone": {"bmd": 80.0},
                          "fracture": {"level": "L1", "grade": 2}, "treatment": treatment,
                          "load": {"compression": 800.0}})
    with pytest.raises(vc.CaseError) as err:
        vc.build_segment(case)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_validation_happens_before_meshing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(vertebrafe.anatomy, "segment", lambda *a, **k: calls.append(1))
    path = tmp_path / "bad.toml"
    path.write_text(_replace(GOOD, "volume = 3.0", "fill = 1.5"))
    with pytest.raises(InputError):
        vc.run_case(path)
    assert calls == []


def test_good_case_resolves_defaults(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    case = vc.load_case(path)
    assert case.name == "good"
    assert case.segment.levels == ("T12", "L1", "L2")
    assert case.fracture.kind == "wedge" and case.fracture.grade == 2 and case.fracture.damage_factor == 0.25
    assert case.treatment.level == "L1" and case.treatment.approach == "bipedicular"
    assert case.solver.rtol == 1e-8 and case.output.vtu is True
    d = case.to_dict()
    assert "restoration" not in d["treatment"] and "balloons" not in d["treatment"]
    load = case.load.to_load()
    assert load.compression == 800.0 and load.flexion == 7.5


def test_defaults_of_treatments():
    base = {"segment": {"levels": "T12-L2"}, "bone": {"bmd": 80}, "load": {"preset": "relaxed_standing"},
            "fracture": {"level": "L1"}}
    vp = vc.parse_case({**base, "treatment": {"kind": "vertebroplasty"}})
    assert vp.treatment.volume == 2.8 and vp.fracture.grade == 2
    bkp = vc.parse_case({**base, "treatment": {"kind": "kyphoplasty", "balloons": 1}})
    assert bkp.treatment.restoration == 0.5 and bkp.treatment.volume == pytest.approx(2.4)
    intact = vc.parse_case({k: v for k, v in base.items() if k != "fracture"})
    assert intact.fracture is None and intact.treatment.kind == "none" and intact.treated_level is None


def test_t_score_resolves_to_bmd():
    case = vc.parse_case({"segment": {"levels": "L1"}, "bone": {"t_score": -3.0},
                          "load": {"compression": 500.0}})
    assert case.bone.bmd == pytest.approx(170.0 - 3 * 30.0)
    same = vc.parse_case({"segment": {"levels": "L1"}, "bone": {"bmd": 80.0}, "load": {"compression": 500.0}})
    assert case.id == same.id


def test_preset_with_explicit_override():
    case = vc.parse_case({"segment": {"levels": "L1-L2"}, "bone": {"bmd": 80},
                          "load": {"preset": "extension_moment", "flexion": 5.0}})
    load = case.load.to_load()
    assert load.flexion == 5.0 and load.extension == 0.0 and load.compression == 500.0


def test_ids_are_stable_and_content_based():
    a = vc.parse_case({"case": {"name": "a"}, "segment": {"levels": "T12-L2"}, "bone": {"bmd": 80},
                       "load": {"compression": 500}})
    b = vc.parse_case({"case": {"name": "b", "description": "x"}, "segment": {"levels": ["L2", "L1", "T12"]},
                       "bone": {"bmd": 80.0}, "load": {"compression": 500.0}})
    c = vc.parse_case({"segment": {"levels": "T12-L2"}, "bone": {"bmd": 81}, "load": {"compression": 500}})
    assert a.id == b.id                     # names, int/float and level order do not change the physics
    assert a.id != c.id
    assert len(a.id) == 12 and int(a.id, 16) >= 0


def test_resolved_toml_round_trip(tmp_path):
    case = vc.parse_case(vc.tomllib.loads(GOOD), source="x")
    text = vc.to_toml(case.to_dict())
    again = vc.parse_case(vc.tomllib.loads(text))
    assert again == case.with_name(case.name) and again.id == case.id


def test_overrides_apply_before_validation(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    case = vc.load_case(path, {"bone.bmd": 120.0, "treatment.approach": "unipedicular"})
    assert case.bone.bmd == 120.0 and case.treatment.approach == "unipedicular"
    with pytest.raises(InputError, match="bone.bmd"):
        vc.load_case(path, {"bone.bmd": -1})


@pytest.mark.parametrize("path", sorted(p for p in glob.glob(os.path.join(CASES, "*.toml"))
                                        if "adjacent-risk" not in p), ids=os.path.basename)
def test_canonical_cases_are_valid_and_documented(path):
    case = vc.load_case(path)
    assert case.name == os.path.splitext(os.path.basename(path))[0]
    text = open(path).read()
    assert text.lstrip().startswith("#")             # each file opens with its documentation
    assert case.segment.levels == ("T12", "L1", "L2")


def test_canonical_set_is_complete():
    names = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(CASES, "*.toml"))}
    assert {"healthy-intact", "osteoporotic-intact", "osteoporotic-wedge-nsm", "vp-bipedicular-fill15",
            "vp-bipedicular-fill30", "vp-unipedicular", "bkp-partial", "bkp-full", "adjacent-risk"} <= names
    fills = {vc.load_case(os.path.join(CASES, f"vp-bipedicular-fill{n}.toml")).treatment.fill for n in (15, 30)}
    assert fills == {0.15, 0.30}
    assert vc.load_case(os.path.join(CASES, "bkp-full.toml")).treatment.restoration == 1.0
    fitted = vc.load_case(os.path.join(CASES, "bkp-fitted.toml"))       # the fitted BKP on the converging grid
    assert (fitted.treatment.kind, fitted.treatment.surface) == ("kyphoplasty", "fitted")
    assert (fitted.segment.central_coarsening, fitted.segment.annulus_refinement) == (1, 2)
    pillowed = vc.load_case(os.path.join(CASES, "vp-pillowed.toml"))      # the converging cement surface
    assert (pillowed.treatment.kind, pillowed.treatment.surface) == ("vertebroplasty", "pillowed")


def test_schema_documented_in_docs():
    doc = open(os.path.join(ROOT, "docs", "cases.md")).read()
    for section, fields in vc.SCHEMA.items():
        assert f"[{section}]" in doc
        for f in fields:
            assert f"`{f.name}`" in doc, f"{section}.{f.name} missing from docs/cases.md"
            for sub in f.fields:                                  # [[load.levels]], [load.muscles]
                assert f"[{section}.{f.name}]" in doc and f"`{sub.name}`" in doc, f"{section}.{f.name}.{sub.name}"


def test_prepressure_on_a_single_vertebra_is_refused_by_its_key():
    base = {"segment": {"levels": "L1", "element_size": 8.0, "nucleus_prepressure": 0.1}, "bone": {"bmd": 80.0},
            "load": {"compression": 800.0}}
    with pytest.raises(vc.CaseError, match=r"segment.nucleus_prepressure = 0.1 MPa on the single vertebra L1"):
        vc.build_segment(vc.parse_case(base))


def test_prepressure_default_resolves_where_the_segment_is_built():
    """A case file without segment.nucleus_prepressure takes the library's default (None: the lying pressure where
    there is a nucleus): 0.10 MPa on two levels and 0 on a single vertebra, as ``segment()`` without it; an
    explicit 0 keeps stress-free discs."""
    from vertebrafe.anatomy.segment import LYING_PREPRESSURE

    for levels, expected in (("L4-L5", LYING_PREPRESSURE), ("L1", 0.0)):
        raw = {"segment": {"levels": levels, "element_size": 8.0, "posterior": False},
               "bone": {"bmd": 80.0}, "load": {"compression": 800.0}}
        case = vc.parse_case(raw)
        assert case.segment.nucleus_prepressure is None
        seg = vc.build_segment(case)
        assert seg.nucleus_prepressure == expected
        assert seg.nucleus_prepressure == vertebrafe.segment(levels, element_size=8.0, bmd=80.0,
                                                             posterior=False).nucleus_prepressure
        raw["segment"]["nucleus_prepressure"] = 0.0
        assert vc.build_segment(vc.parse_case(raw)).nucleus_prepressure == 0.0


def test_central_coarsening_reaches_the_library():
    """segment.central_coarsening = 1 builds the uniform O-grid; other values are rejected by name and range."""
    base = {"segment": {"levels": "L1", "element_size": 6.0}, "bone": {"bmd": 80.0}, "load": {"compression": 800.0}}
    assert vc.build_segment(vc.parse_case(base)).counts.coarsening == 3
    case = vc.parse_case(vc.apply_overrides(base, {"segment.central_coarsening": 1}))
    assert vc.build_segment(case).counts.coarsening == 1
    with pytest.raises(vc.CaseError, match=r"segment.central_coarsening = 2 is not allowed; allowed one of 1, 3"):
        vc.parse_case(vc.apply_overrides(base, {"segment.central_coarsening": 2}))


def test_annulus_refinement_reaches_the_library():
    """segment.annulus_refinement = 2 doubles the O-grid's annulus rings; values outside 1-4 are rejected by name
    and range."""
    base = {"segment": {"levels": "L1", "element_size": 6.0}, "bone": {"bmd": 80.0}, "load": {"compression": 800.0}}
    default = vc.build_segment(vc.parse_case(base)).counts
    fine = vc.build_segment(vc.parse_case(vc.apply_overrides(base, {"segment.annulus_refinement": 2}))).counts
    assert fine.n_annulus == 2 * default.n_annulus
    assert (fine.m, fine.n_transition, fine.n_cortex) == (default.m, default.n_transition, default.n_cortex)
    for bad in (0, 5):
        with pytest.raises(vc.CaseError, match=rf"segment.annulus_refinement = {bad} .*1.*4"):
            vc.parse_case(vc.apply_overrides(base, {"segment.annulus_refinement": bad}))


def test_articular_refinement_reaches_the_library():
    """segment.articular_refinement = 2 doubles the articular processes' cell layers; values outside 1-4, a
    segment without posterior elements and an [image] case are rejected by name."""
    base = {"segment": {"levels": "L4-L5", "element_size": 6.0}, "bone": {"bmd": 80.0}, "load": {"compression": 800.0}}
    default = vc.build_segment(vc.parse_case(base))
    fine = vc.build_segment(vc.parse_case(vc.apply_overrides(base, {"segment.articular_refinement": 2})))
    assert (default.posterior.articular_refinement, fine.posterior.articular_refinement) == (1, 2)
    assert fine.mesh.n_cells > default.mesh.n_cells and fine.stack_cells == default.stack_cells
    for bad in (0, 5):
        with pytest.raises(vc.CaseError, match=rf"segment.articular_refinement = {bad} .*1.*4"):
            vc.parse_case(vc.apply_overrides(base, {"segment.articular_refinement": bad}))
    with pytest.raises(vc.CaseError, match=r"segment.articular_refinement = 2 needs the posterior elements"):
        vc.parse_case(vc.apply_overrides(base, {"segment.articular_refinement": 2, "segment.posterior": False}))


def test_kyphoplasty_interface_layer_reaches_the_library():
    case = vc.parse_case({"segment": {"levels": "L1", "element_size": 6.0}, "bone": {"bmd": 80.0},
                          "treatment": {"kind": "kyphoplasty", "level": "L1", "volume": 2.0, "interface": "layer",
                                        "layer_thickness": 0.4, "layer_modulus": 200.0},
                          "load": {"compression": 800.0}})
    op = vc.build_segment(case).history[-1]
    assert op.kind == "kyphoplasty" and op.parameters["interface"] == "layer"
    assert op.parameters["layer_thickness_mm"] == 0.4 and op.parameters["layer_E_MPa"] == 200.0
    assert op.results["layer_volume_mL"] > 0.0


def test_kyphoplasty_surface_reaches_the_library(tmp_path):
    """treatment.surface of a kyphoplasty reaches kyphoplasty(surface=...): a fitted case runs and records its
    surface in the history of case.json; without the key the library's default is used."""
    import inspect
    import json

    from vertebrafe.clinical import kyphoplasty
    raw = {"segment": {"levels": "L1", "element_size": 6.0}, "bone": {"bmd": 80.0},
           "treatment": {"kind": "kyphoplasty", "level": "L1", "volume": 2.0, "surface": "fitted"},
           "load": {"compression": 800.0}, "output": {"vtu": False}}
    case = vc.parse_case(raw)
    assert case.treatment.surface == "fitted"
    result = vc.run_case(case, out=tmp_path / "out")
    op = json.loads((tmp_path / "out" / "case.json").read_text())["history"][-1]
    assert op["kind"] == "kyphoplasty" and op["parameters"]["surface"] == "fitted"
    assert op["results"]["snapped_nodes"] > 0
    assert result.metrics["value"].notna().all()
    default = vc.parse_case({**raw, "treatment": {k: v for k, v in raw["treatment"].items() if k != "surface"}})
    assert default.treatment.surface is None and "surface" not in default.to_dict()["treatment"]
    op = vc.build_segment(default).history[-1]
    assert op.parameters["surface"] == inspect.signature(kyphoplasty).parameters["surface"].default == "mixed"
    assert op.results["snapped_nodes"] == 0


def test_build_segment_runs_the_clinical_chain():
    case = vc.parse_case(vc.tomllib.loads(textwrap.dedent(GOOD)))
    case = vc.parse_case(vc.apply_overrides(case.to_dict(), {"segment.element_size": 6.0,
                                                             "segment.levels": "L1-L2"}))
    stages = []
    seg = vc.build_segment(case, progress=stages.append)
    assert stages == ["mesh", "fracture", "vertebroplasty"]
    assert [op.kind for op in seg.history] == ["fracture", "vertebroplasty"]


def test_load_ranges_are_one_table():
    """[load] keys and Load() accept the same ranges (loads.LOAD_RANGES); shear reaches the Load."""
    from vertebrafe.case import SCHEMA
    from vertebrafe.case.specs import LoadSpec
    from vertebrafe.loads import LOAD_RANGES, Load
    fields = {f.name: f for f in SCHEMA["load"]}
    for name in ("compression", "flexion", "extension", "lateral_bending", "axial_rotation", "anterior_shear",
                 "lateral_shear"):
        low, high, unit = LOAD_RANGES[name]
        assert (fields[name].low, fields[name].high, fields[name].unit) == (low, high, unit)
        with pytest.raises(InputError, match=name):
            Load(**{name: high + 1.0})
    load = LoadSpec(preset="relaxed_standing", anterior_shear=120.0).to_load()
    assert load.anterior_shear == 120.0 and load.compression == 500.0


LEVEL_LOADS = """
[segment]
levels = "L3-L4"
[bone]
bmd = 120.0
[[load.levels]]
level = "L4"
force = [0, 150, -400]
[[load.levels]]
level = "L3"
moment = [-2.0, 0, 0]
via = "plate"
name = "orthosis"
[load.muscles]
erector_spinae = {L3 = 200.0, L4 = 100}
"""


def test_level_loads_and_muscles_resolve_and_round_trip():
    """Level loads and muscles alone are a load; defaults are LevelLoad's; the resolved TOML reads back to
    the same case (same id); a zero level load alone is refused."""
    from vertebrafe.io.toml import to_toml
    from vertebrafe.loads import LevelLoad
    case = vc.parse_case(vc.tomllib.loads(LEVEL_LOADS))
    first, second = (LevelLoad(**x) for x in case.load.levels)
    assert first == LevelLoad("L4", force=(0.0, 150.0, -400.0))
    assert second.via == "plate" and second.moment == (-2.0, 0.0, 0.0) and second.name == "orthosis"
    assert case.load.muscles == {"erector_spinae": {"L3": 200.0, "L4": 100.0}, "balance": False}
    again = vc.parse_case(vc.tomllib.loads(to_toml(case.to_dict())))
    assert again == case and again.id == case.id
    with pytest.raises(InputError, match="muscles.*segment"):
        case.load.to_load()                                   # muscles are placed on a segment's vertebrae
    zero = LEVEL_LOADS.split("[[load.levels]]")[0] + "[[load.levels]]\nlevel = 'L4'\n"
    with pytest.raises(InputError, match="load is zero"):
        vc.parse_case(vc.tomllib.loads(zero))


def test_case_defaults_come_from_the_library():
    """One source of defaults: every concrete default of the case schema equals the library's (function
    signatures, MaterialSet fields, clinical constants), every *Spec field default equals the schema's, and
    the defaults parse_case fills in (grade, VP and BKP volumes, restoration) are the library's."""
    import dataclasses
    import inspect

    from vertebrafe.anatomy import segment
    from vertebrafe.case.specs import SPEC_CLASSES
    from vertebrafe.clinical import cement, fracture, kyphoplasty, vertebroplasty
    from vertebrafe.clinical.fracture import GRADE_HEIGHT_LOSS, resolve_height_loss
    from vertebrafe.clinical.kyphoplasty import DEFAULT_BALLOON_VOLUME_ML, DEFAULT_RESTORATION
    from vertebrafe.fem import Model
    from vertebrafe.materials import MaterialSet

    def sig(fn, key):
        return inspect.signature(fn).parameters[key].default

    ms = MaterialSet(bmd=100.0)
    library = {("segment", k): sig(segment, k) for k in ("element_size", "scale", "cortex_thickness",
                                                         "endplate_thickness", "n_cortex_layers", "disc_refinement",
                                                         "nucleus", "central_coarsening",
                                                         "annulus_refinement", "articular_refinement")}
    library["segment", "fibres"] = bool(sig(segment, "fibres"))
    library["segment", "posterior"] = bool(sig(segment, "posterior"))
    library.update({("bone", k): getattr(ms, k) for k in ("law", "anisotropic", "transverse_ratio")})
    library.update({("fracture", k): sig(fracture, k) for k in ("kind", "damage_factor", "damage_strength_factor")})
    library.update({("treatment", k): sig(vertebroplasty, k) for k in ("approach", "side", "material",
                                                                  "vertical_extent", "interface", "placement")})
    library.update({("treatment", k): sig(kyphoplasty, k) for k in ("balloons", "rim_thickness")})
    library.update({("solver", k): sig(Model.solve, k) for k in ("solver", "rtol")})
    from vertebrafe.simulate import simulate
    library["solver", "strength"] = sig(simulate, "strength")
    from vertebrafe.image import Calibration, image_segment
    library.update({("image", k): sig(image_segment, k) for k in ("bmd_margin", "pv_margin", "density_scale",
                                                                  "max_anisotropy", "geometry", "snap", "smoothing", "arch_radius")})
    library["image", "calibration_material"] = Calibration(1.0, 0.0).material
    schema = {(s, f.name): f.default for s, fields in vc.SCHEMA.items() for f in fields
              if f.default is not None and f.default is not vc.REQUIRED}
    case_only = {("case", "name"), ("case", "description"), ("treatment", "kind"), ("output", "vtu"),
                 ("output", "metrics")}                       # keys of case files alone, no library default
    assert set(schema) - case_only == set(library)
    assert {k: schema[k] for k in library} == library
    # None defaults (resolved where the segment is built) are the library's too
    none = {(s, f.name) for s, fields in vc.SCHEMA.items() for f in fields if f.default is None}
    assert ("segment", "nucleus_prepressure") in none and sig(segment, "nucleus_prepressure") is None
    for section, cls in SPEC_CLASSES.items():
        for f in dataclasses.fields(cls):
            if (section, f.name) in schema:
                assert f.default == schema[section, f.name], f"{cls.__name__}.{f.name}"

    base = {"segment": {"levels": "T12-L2"}, "bone": {"bmd": 80.0}, "load": {"preset": "relaxed_standing"},
            "fracture": {"level": "L1"}}
    vp = vc.parse_case({**base, "treatment": {"kind": "vertebroplasty"}})
    bkp = vc.parse_case({**base, "treatment": {"kind": "kyphoplasty", "balloons": 1}})
    assert GRADE_HEIGHT_LOSS[vp.fracture.grade] == resolve_height_loss(None, None)[1]
    assert vp.treatment.volume == cement.DEFAULT_VOLUME_ML
    # the bolus surface has no fixed default: the library resolves it from the placement
    assert sig(vertebroplasty, "surface") is None and vp.treatment.surface is None
    assert (cement.default_surface("centre"), cement.default_surface("fracture")) == ("fitted", "mixed")
    assert sig(kyphoplasty, "surface") == "mixed" and bkp.treatment.surface is None      # None: the library's
    assert bkp.treatment.volume == DEFAULT_BALLOON_VOLUME_ML and bkp.treatment.restoration == DEFAULT_RESTORATION
