"""Plausibility warnings: allowed but unphysiological inputs and results warn, are kept in the result and
its record, and physiological cases stay silent."""
import re
import warnings

import pytest

import vertebrafe as vf
from vertebrafe import plausibility
from vertebrafe.errors import PlausibilityWarning, ResolutionWarning, warning_class
from vertebrafe.loads import Load, LevelLoad
from vertebrafe.simulate import simulate


@pytest.fixture(scope="module")
def g_per_cm3():
    """vBMD typed in g/cm^3 (0.08 instead of 80 mg/cm^3); stress-free discs: the warnings are of the input and
    of the absurd bone strains under the load, with or without the nucleus swelling pre-pressure's rest state
    (several solves before the load). The physiological case below keeps the default pre-pressure."""
    return vf.segment(["L3", "L4"], bmd=0.08, element_size=6.0, nucleus_prepressure=0.0)


def test_bmd_in_g_per_cm3_warns_and_is_recorded(g_per_cm3):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = simulate(g_per_cm3, "relaxed_standing")
    issued = [str(w.message) for w in caught if issubclass(w.category, PlausibilityWarning)]
    assert any(re.search(r"g/cm\^3.*80 mg/cm\^3", m) for m in issued)
    assert issued == r.warnings                                                   # every warning is kept
    assert any("bmd = 0.08" in w for w in r.warnings)
    assert any("rotation" in w or "apparent strain" in w for w in r.warnings)   # the result is absurd too
    assert r.record()["warnings"] == r.warnings


def test_physiological_case_is_silent():
    seg = vf.segment(["L3", "L4"], bmd=100.0, element_size=6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlausibilityWarning)
        warnings.simplefilter("error", ResolutionWarning)           # untreated: no bolus, no resolution note
        r = simulate(seg, "lifting_kinematic")
    assert r.warnings == []


@pytest.mark.parametrize("load, word", [
    (Load(compression=9000.0), "compression"),
    (Load(compression=500.0, anterior_shear=1500.0), "anterior_shear"),
    (Load(compression=500.0, flexion=50.0), "flexion"),
    (Load(level_loads=[LevelLoad("L4", force=(0, 0, -8000.0))]), "on L4"),
])
def test_load_far_above_body_weight_multiples_warns(load, word):
    seg = vf.segment(["L3", "L4"], bmd=100.0, element_size=6.0)
    msgs = plausibility.check_inputs(seg, load)
    assert len(msgs) == 1 and word in msgs[0]
    assert plausibility.check_inputs(seg, Load(compression=500.0, flexion=7.5)) == []


def test_per_level_bmd_is_checked():
    seg = vf.segment(["L3", "L4"], bmd={"L3": 90.0, "L4": 0.1}, element_size=6.0)
    msgs = plausibility.check_inputs(seg, Load(compression=500.0))
    assert len(msgs) == 1 and "L4" in msgs[0] and "g/cm^3" in msgs[0]


def test_study_names_the_cases_that_warn(tmp_path):
    """A swept vBMD in g/cm^3: the study runs, and the warning names the case (also in status.json); stress-free
    discs, as the case's warnings do not read the rest state."""
    import json
    from vertebrafe import study
    spec = study.parse_study({
        "study": {"name": "units"},
        "base": {"segment": {"levels": "L1-L2", "element_size": 8.0, "nucleus_prepressure": 0.0},
                 "bone": {"bmd": 80.0},
                 "load": {"compression": 500.0}, "output": {"vtu": False}},
        "grid": {"bone.bmd": [80.0, 0.08]},
    })
    with pytest.warns(PlausibilityWarning, match=r"case .*\(.*\): bmd = 0.08"):
        run = study.run_study(spec, tmp_path / "s", workers=1, progress=False)
    assert len(run.ok) == 2 and len(run.warnings) == 1 and "2 with warnings" not in run.describe() \
        and "1 with warnings (cases/<id>/status.json)" in run.describe()
    (cid, messages), = run.warnings.items()
    status = json.loads((tmp_path / "s" / "cases" / cid / "status.json").read_text())
    assert status["info"]["warnings"] == messages


def test_study_prints_a_repeated_note_once_and_counts_the_others(tmp_path):
    """Two cases whose notes differ only in numbers (vBMD 0.08 and 0.09, g/cm^3 by mistake): the first is issued
    in full, the second as a count; both stay in their status.json."""
    from vertebrafe import study
    spec = study.parse_study({
        "study": {"name": "units"},
        "base": {"segment": {"levels": "L1-L2", "element_size": 8.0, "nucleus_prepressure": 0.0},
                 "bone": {"bmd": 80.0},
                 "load": {"compression": 500.0}, "output": {"vtu": False}},
        "grid": {"bone.bmd": [0.08, 0.09]},
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = study.run_study(spec, tmp_path / "s", workers=1, progress=False)
    issued = [str(w.message) for w in caught if issubclass(w.category, PlausibilityWarning)]
    assert len(run.ok) == 2 and len(run.warnings) == 2 and "2 with warnings" in run.describe()
    assert len(issued) == 2 and "bmd = 0.08" in issued[0]
    assert issued[1].startswith("1 more case(s) with the note of case") and "status.json" in issued[1]


def test_coarse_cement_bolus_warns_once_per_treated_level():
    """A vertebroplasty at 6 mm: its bolus is about 3 cells across, one ResolutionWarning (not a plausibility
    warning) names the level and the number, kept in the result and its record; the untreated level is silent."""
    from vertebrafe.clinical import vertebroplasty
    seg = vertebroplasty(vf.segment(["L1", "L2"], bmd=80.0, element_size=6.0), "L1", volume=3.0)
    n = seg.history[-1].results["bolus_cells_across"]
    assert 2.0 < n < 6.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = simulate(seg, "relaxed_standing")
    issued = [w for w in caught if issubclass(w.category, (PlausibilityWarning, ResolutionWarning))]
    assert [w.category for w in issued] == [ResolutionWarning]
    (m,) = r.warnings
    assert m == str(issued[0].message) and r.record()["warnings"] == [m]
    assert m.startswith("mesh resolution: L1's") and f"{n:.1f} cells across" in m and "L2" not in m
    assert "vertebrafe converge" in m and "Stiff spherical inclusion" in m and warning_class(m) is ResolutionWarning
    assert plausibility.inclusion_error(8.0) == pytest.approx(15.1) and plausibility.inclusion_error(40.0) is None


def test_fine_bolus_is_silent():
    """At or above 24 cells across there is no note (a recorded number stands in for a fine mesh)."""
    from types import SimpleNamespace as NS
    op = NS(kind="vertebroplasty", level="L1", parameters={"surface": "fitted"}, results={"bolus_cells_across": 24.0})
    assert plausibility.check_resolution(NS(history=(op,))) == []
    op.results["bolus_cells_across"] = 23.9
    assert len(plausibility.check_resolution(NS(history=(op,)))) == 1


def test_pieces_note_compares_the_cells_connected_sets_with_the_bolus_pieces():
    """A bipedicular bolus whose cells make more or fewer connected sets than its pieces (two apart, one where
    they overlap or a bridge's neck joins them) is named, also on a mesh fine enough for the cells-across rule,
    in one message per level; so are a kyphoplasty's two cavities (a gap, no bridge), after its own note; as many
    sets as pieces, a unipedicular bolus or a kyphoplasty without a gap (one balloon): not."""
    from types import SimpleNamespace as NS

    from vertebrafe.clinical.augment import bolus_pieces

    def vp(count, gap, neck=0.0, across=30.0):
        return NS(kind="vertebroplasty", level="L1", parameters={"surface": "fitted"},
                  results={"bolus_cells_across": across, "bolus_count": count, "bolus_gap_mm": gap,
                           "bridge_neck_mm": neck, "bolus_pieces": bolus_pieces(gap, neck)})

    seg = lambda op: NS(history=(op,), element_size=2.0)
    (m,) = plausibility.check_resolution(seg(vp(1, 2.48)))
    assert m == ("mesh resolution: L1's two cement boluses are 2.5 mm apart, but their cells at element size 2 mm "
                 "make one connected set (cells sharing nodes across the bone between them): the septum is not "
                 "resolved and the stresses near it are those of touching boluses; a finer mesh resolves it "
                 "(docs/clinical.md, \"Joined boluses\")")
    (m,) = plausibility.check_resolution(seg(vp(2, 1.0, neck=3.4)))
    assert "L1's cement bolus is one piece (a neck 3.4 mm across), but its cells at element size 2 mm make 2 " \
           "connected sets" in m
    (m,) = plausibility.check_resolution(seg(vp(2, -0.5)))
    assert "one piece, but its cells" in m
    for op in (vp(2, 2.48), vp(1, -0.1), vp(1, 1.0, neck=3.4)):
        assert plausibility.check_resolution(seg(op)) == []
    (m,) = plausibility.check_resolution(seg(vp(1, 2.48, across=8.0)))
    assert m.count("mesh resolution") == 1 and "8.0 cells across" in m and "; and L1's two cement boluses" in m
    uni = NS(kind="vertebroplasty", level="L1", parameters={}, results={"bolus_cells_across": 30.0, "bolus_count": 1})
    bkp = NS(kind="kyphoplasty", level="L1", parameters={}, results={"bolus_cells_across": 30.0, "bolus_count": 2})
    assert plausibility.check_resolution(seg(uni)) == [] and plausibility.check_resolution(seg(bkp)) == []
    bkp = NS(kind="kyphoplasty", level="L1", parameters={"surface": "mixed"},
             results={"bolus_cells_across": 7.0, "bolus_count": 1, "bolus_gap_mm": 2.42, "bolus_pieces": 2})
    (m,) = plausibility.check_resolution(seg(bkp))
    assert m.count("mesh resolution") == 1 and "balloons' contact-face edges" in m and m.endswith(
        "; and L1's two cement boluses are 2.4 mm apart, but their cells at element size 2 mm make one connected set "
        "(cells sharing nodes across the bone between them): the septum is not resolved and the stresses near it are "
        "those of touching boluses; a finer mesh resolves it (docs/clinical.md, \"Joined boluses\")")
    bkp.results.update(bolus_cells_across=30.0, bolus_count=2)
    assert plausibility.check_resolution(seg(bkp)) == []


def test_kyphoplasty_note_names_what_its_study_found_unconverged():
    """The kyphoplasty note names the rows its 2 -> 1 mm study found drifting (stresses, overload index, the
    stiffness in the segment) and those that converge, and leaves out the pillowed remedy of vertebroplasty."""
    from types import SimpleNamespace as NS
    op = NS(kind="kyphoplasty", level="L1", parameters={}, results={"bolus_cells_across": 5.0})
    (m,) = plausibility.check_resolution(NS(history=(op,)))
    assert "PMMA, body, core, endplate and cancellous stresses" in m and "overload index" in m
    assert "stiffness in the segment" in m and "lower endplate's, -5.5 %" in m and "pillowed" not in m
    vp = NS(kind="vertebroplasty", level="L1", parameters={"surface": "fitted"}, results={"bolus_cells_across": 5.0})
    (v,) = plausibility.check_resolution(NS(history=(vp,)))
    assert "surface='pillowed'" in v and "overload index" not in v
