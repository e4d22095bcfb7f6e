"""Resource guards, and requests that would otherwise be silently not honoured."""
import copy
import os

import pytest

import vertebrafe as vf
from vertebrafe import resources
from vertebrafe.case import build_segment, parse_case, save_result, tomllib
from vertebrafe.errors import InputError, ResourceError

BASE = {"segment": {"levels": "L1-L2", "element_size": 6.0}, "bone": {"bmd": 80.0},
        "load": {"preset": "relaxed_standing"}}


def with_treatment(**t):
    raw = copy.deepcopy(BASE)
    raw["fracture"] = {"level": "L1"}
    raw["treatment"] = t
    return parse_case(raw)


def test_size_estimate_is_within_fifteen_percent_of_the_mesh():
    for posterior in (False, True):
        seg = vf.segment("L1-L2", bmd=80.0, element_size=4.0, posterior=posterior)
        est = resources.estimate_segment(["L1", "L2"], 4.0, posterior=posterior)
        assert abs(est["nodes"] / seg.mesh.n_points - 1) < 0.15, (est, seg.mesh.n_points)


def test_size_estimate_of_the_uniform_grid_does_not_fall_short():
    """The guard's uniform-grid factor is an upper bound: the estimate is at least the mesh's nodes
    (and within the factor's 1.6 / 0.84 spread of it)."""
    seg = vf.segment("L4-L5", bmd=80.0, element_size=3.0, posterior=False, central_coarsening=1)
    est = resources.estimate_segment(["L4", "L5"], 3.0, posterior=False, central_coarsening=1)
    assert 1.0 <= est["nodes"] / seg.mesh.n_points < 1.15 * 1.6 / 0.84, (est, seg.mesh.n_points)


def test_size_estimate_of_doubled_annulus_rings_does_not_fall_short():
    """The guard's annulus-ring factor is an upper bound: doubling the rings raises the estimate by at least
    as much as the mesh's nodes grow."""
    kw = dict(posterior=False, central_coarsening=1)
    ratio = (vf.segment("L4-L5", bmd=80.0, element_size=3.0, annulus_refinement=2, **kw).mesh.n_points
             / vf.segment("L4-L5", bmd=80.0, element_size=3.0, **kw).mesh.n_points)
    est = (resources.estimate_segment(["L4", "L5"], 3.0, annulus_refinement=2, **kw)["nodes"]
           / resources.estimate_segment(["L4", "L5"], 3.0, **kw)["nodes"])
    assert 1.2 < ratio <= est <= 1.5 + 1e-9, (ratio, est)


def test_size_estimate_of_refined_articular_processes_does_not_fall_short():
    """The guard's articular-layer factor is an upper bound: quadrupling the processes' layers raises the
    estimate by at least as much as the mesh's nodes grow."""
    ratio = (vf.segment("L1-L2", bmd=80.0, element_size=4.0, articular_refinement=4).mesh.n_points
             / vf.segment("L1-L2", bmd=80.0, element_size=4.0).mesh.n_points)
    est = (resources.estimate_segment(["L1", "L2"], 4.0, articular_refinement=4)["nodes"]
           / resources.estimate_segment(["L1", "L2"], 4.0)["nodes"])
    assert 1.03 < ratio <= est <= 1.076, (ratio, est)


def test_memory_guard_refuses_before_meshing_and_force_overrides(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 1e8)
    calls = []
    monkeypatch.setattr("vertebrafe.anatomy.segment", lambda *a, **k: calls.append(1))
    c = parse_case(BASE)
    with pytest.raises(ResourceError, match=r"segment.element_size = 6 mm on L1-L2: about .* M unknowns, an "
                                            r"estimated .* GB of memory; available 0.1 GB; allowed: .* --force"):
        build_segment(c)
    assert calls == []
    assert build_segment(c, force=True) is None and calls == [1]     # forced: meshing starts (a fake mesher)


def test_a_study_that_does_not_fit_is_refused_before_any_case_runs(tmp_path, monkeypatch):
    from vertebrafe.study import parse_study, run_study

    monkeypatch.setattr(resources, "available_memory", lambda: 5e8)       # one case fits, two do not
    st = parse_study({"study": {"name": "s"}, "base": BASE, "grid": {"bone.bmd": [60.0, 80.0]}})
    with pytest.raises(ResourceError, match="x 2 workers; available 0.5 GB"):
        run_study(st, tmp_path / "s", workers=2, progress=False, runner=_never)
    assert os.listdir(tmp_path / "s" / "cases") == []


def _never(case, workdir):
    raise AssertionError("a case ran")


def test_resolved_case_toml_keeps_any_name_and_injects_nothing(tmp_path):
    raw = copy.deepcopy(BASE)
    raw["case"] = {"name": 'odd "name" \\ with 😀 and é', "description": "two\nlines\n[bone]\nbmd = 1"}
    c = parse_case(raw)

    class Fake:
        def save(self, d):
            for n in ("result.vtu", "metrics.csv", "metrics.json", "case.json"):
                open(os.path.join(d, n), "w").close()

    save_result(Fake(), c, tmp_path / "o")
    back = tomllib.loads((tmp_path / "o" / "case.toml").read_text())
    assert back["case"] == raw["case"] and back["bone"]["bmd"] == 80.0
    assert parse_case(back).id == c.id


def test_offset_that_leaves_the_body_is_an_error():
    with pytest.raises(InputError, match=r"offset = \(20.0, 20.0, 0.0\) mm puts a bolus centre outside the "
                                         r"vertebral body of L1; allowed \(mm\): dx in"):
        build_segment(with_treatment(kind="vertebroplasty", offset=[20.0, 20.0, 0.0]))
    seg = build_segment(with_treatment(kind="vertebroplasty", offset=[0.0, 3.0, 0.0]))   # inside: honoured
    assert abs(seg.history[-1].results["volume_error"]) < 0.01


def test_a_volume_the_mesh_cannot_resolve_is_an_error():
    with pytest.raises(InputError, match=r"treatment.volume = 1e-09 mL: the cement placed in L1 is .* off the "
                                         r"requested volume \(allowed within 5 %\)"):
        build_segment(with_treatment(kind="vertebroplasty", volume=1e-9))


def test_the_python_api_refuses_a_volume_placed_more_than_5_percent_off():
    """The same guard without a case file: vertebroplasty() itself refuses what the mesh cannot place."""
    from vertebrafe.clinical import vertebroplasty

    seg = build_segment(with_treatment(kind="none"))
    with pytest.raises(InputError, match=r"^volume = 1e-09 mL: the cement placed in L1 is .* off the requested "
                                         r"volume \(allowed within 5 %\)"):
        vertebroplasty(seg, "L1", volume=1e-9)


@pytest.mark.parametrize("kind", ["kyphoplasty", "vertebroplasty"])
def test_plot_names_checked_up_front_cover_every_metric_and_region_of_a_result(kind):
    from vertebrafe.case import run_case
    from vertebrafe.materials import REGIONS
    from vertebrafe.post.metrics import METRIC_NAMES, REFERENCE_REGIONS
    from vertebrafe.post.posterior import REGIONS as POSTERIOR_REGIONS

    raw = copy.deepcopy(BASE)
    raw.update(fracture={"level": "L1"}, treatment={"kind": kind})
    m = run_case(raw).metrics
    assert set(m["metric"]) <= METRIC_NAMES, set(m["metric"]) - METRIC_NAMES
    regions = set(REGIONS) | set(REFERENCE_REGIONS) | set(POSTERIOR_REGIONS) | {"bone", "vertebra", "disc", "segment"}
    assert set(m["region"]) <= regions, set(m["region"]) - regions
