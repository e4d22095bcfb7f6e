"""simulate() and Result: equilibrium, symmetry, metrics table, files, comparison, validation targets 5-7."""
import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest

import vertebrafe as vf
from vertebrafe import loads
from vertebrafe.errors import InputError
from vertebrafe.loads import Load
from vertebrafe.post import vertebra_strength
from vertebrafe.simulate import Result, simulate


@pytest.fixture(scope="module")
def seg():
    """Intact lumbar L4-L5, normal bone, coarse (6 mm) mesh."""
    return vf.segment(["L4", "L5"], bmd=120.0, element_size=6.0)


@pytest.fixture(scope="module")
def standing(seg):
    return simulate(seg, "relaxed_standing")


def test_result_holds_everything(seg, standing):
    r = standing
    assert isinstance(r, Result) and r.segment is seg and r.load == loads.preset("relaxed_standing")
    assert r.case == "relaxed_standing"
    df = r.metrics
    assert list(df.columns) == ["case", "level", "region", "metric", "value", "unit"]
    assert set(df["level"]) == {"L4", "L4-L5", "L5", "segment"}
    assert {"cortex", "endplate", "cancellous", "bone", "annulus", "nucleus", "vertebra", "disc",
            "segment"} <= set(df["region"])
    assert not df.duplicated(["level", "region", "metric"]).any()
    # region volumes add up to the mesh volume (bone and reference-volume rows double count: skip them)
    vol = df[(df.metric == "volume") & ~df.region.isin(["bone", "body", "core"])]["value"].sum()
    assert vol == pytest.approx(seg.mesh.cell_volumes().sum(), rel=1e-9)
    for m in ("von_mises_mean", "von_mises_median", "von_mises_p95", "von_mises_max"):
        assert np.isfinite(r.value(m, "L4", "cancellous"))
    assert r.value("von_mises_median", "L4", "cancellous") <= r.value("von_mises_p95", "L4", "cancellous") \
        <= r.value("von_mises_max", "L4", "cancellous")
    assert r.value("min_principal_stress_p05", "L4", "cancellous") < 0
    assert r.value("height_change", "L4", "vertebra") < 0 and r.value("height_change", "L4-L5", "disc") < 0
    assert r.value("axial_stiffness") > 0
    assert r.info["solver"] in ("direct", "amg") and r.info["residual"] < 1e-6
    with pytest.raises(InputError, match="matches 0 rows"):
        r.value("no_such_metric")


def test_reactions_balance_the_applied_load(seg):
    """Base reaction force and moment (about the base centroid) balance the applied loads."""
    load = Load(compression=700.0, flexion=3.0, lateral_bending=-1.5, axial_rotation=0.8, follower=True)
    r = simulate(seg, load, factor_of_risk=False)              # reactions only: no plate strengths
    ap = r.applied
    F = np.array([r.value(f"reaction_force_{c}") for c in "xyz"])
    np.testing.assert_allclose(F, -ap.total_force, atol=1e-6 * 700)
    # moments: plate force at its centre, guide forces at the vertebral centroids, plus the couple
    base = seg.mesh.points[seg.node_sets["segment:inferior"]].mean(axis=0)
    M = ap.moment + np.cross(ap.plate.center - base, ap.force)
    cen = loads.level_centroids(seg)
    for v, g in ap.guide_forces.items():
        M = M + np.cross(cen[v] - base, g)
    Mr = 1000.0 * np.array([r.value(f"reaction_moment_{c}") for c in "xyz"])
    np.testing.assert_allclose(Mr, -M, atol=1e-6 * np.abs(M).max())


def test_symmetric_model_under_symmetric_load_gives_symmetric_metrics(seg, standing):
    r = standing
    scale = abs(r.value("translation_z"))
    assert abs(r.value("translation_x")) < 1e-6 * scale
    assert abs(r.value("rotation_lateral_bending")) < 1e-6 and abs(r.value("rotation_axial")) < 1e-6
    # mirrored cells (x -> -x) carry the same von Mises stress
    c = seg.mesh.cell_centers()
    key = np.round(c * [1, 1, 1], 6)
    mirror = np.round(c * [-1, 1, 1], 6)
    idx = {tuple(k): i for i, k in enumerate(key)}
    pair = np.array([idx.get(tuple(k), -1) for k in mirror])
    assert (pair >= 0).mean() > 0.99
    ok = pair >= 0
    vm = r.solution.von_mises
    np.testing.assert_allclose(vm[ok], vm[pair[ok]], rtol=1e-6, atol=1e-9 * vm.max())
    # left and right bending: mirrored rotations, equal nucleus pressure
    left = simulate(seg, Load(compression=500.0, lateral_bending=-4.0, follower=True), factor_of_risk=False)
    right = simulate(seg, Load(compression=500.0, lateral_bending=4.0, follower=True), factor_of_risk=False)
    assert right.value("rotation_lateral_bending") == pytest.approx(-left.value("rotation_lateral_bending"), rel=1e-6)
    assert right.value("pressure", "L4-L5", "nucleus") == pytest.approx(left.value("pressure", "L4-L5", "nucleus"),
                                                                          rel=1e-6)


def test_metrics_scale_linearly(seg):
    """From stress-free discs at rest (``nucleus_prepressure=0``) the metrics are proportional to the load; with the
    default pre-pressure the rest state adds a part that does not scale (tests/test_swelling.py)."""
    free = dataclasses.replace(seg, nucleus_prepressure=0.0)
    standing, double = (simulate(free, loads.preset("relaxed_standing").scaled(k)) for k in (1.0, 2.0))
    for metric, level, region in (("pressure", "L4-L5", "nucleus"), ("von_mises_p95", "L4", "cancellous"),
                                  ("height_change", "L5", "vertebra")):
        assert double.value(metric, level, region) == pytest.approx(2 * standing.value(metric, level, region),
                                                                    rel=1e-6)
    assert double.value("axial_stiffness") == pytest.approx(standing.value("axial_stiffness"), rel=1e-6)
    for m in ("overload_index_yield", "factor_of_risk"):
        assert double.value(m, "L4", "vertebra") == pytest.approx(2 * standing.value(m, "L4", "vertebra"), rel=1e-6)
    assert double.value("plate_strength_yield", "L4", "vertebra") == pytest.approx(
        standing.value("plate_strength_yield", "L4", "vertebra"), rel=1e-6)


def test_cortical_share_and_endplate_deflection(standing):
    # Fields et al. 2012: shell share 41 +/- 7 % (mean +/- SD) under disc loading (target 4); here normal
    # bone in a segment, so the published mean +/- 2 SD
    share = standing.value("cortical_share", "L4", "vertebra")
    assert 0.41 - 2 * 0.07 <= share <= 0.41 + 2 * 0.07
    # measured on the middle cell layer(s) of the stack: one cell per column, positive heights
    seg = standing.segment
    from vertebrafe.post.metrics import mid_height_layers
    for v in seg.levels:
        cross, h = mid_height_layers(seg, v, np.asarray(seg.frames[v][0])[:, 2])
        q = seg.counts.n_cells
        assert cross.size in (q, 2 * q) and np.unique(cross // q).size == cross.size // q
        assert np.all(seg.mesh.cells_in("level", v)[cross]) and np.all(h > 0)
    # the nucleus pushes the centre of the L5 superior endplate into the body
    assert standing.value("superior_endplate_deflection", "L5", "vertebra") > 0
    # the fixed base does not deflect
    assert standing.value("inferior_endplate_deflection", "L5", "vertebra") == pytest.approx(0.0, abs=1e-12)


def test_save_writes_vtu_csv_json_and_case_record(standing, tmp_path):
    paths = standing.save(tmp_path / "out")
    assert all(os.path.exists(p) for p in paths.values())
    mesh = vf.Mesh.load(paths["vtu"])
    assert mesh.n_cells == standing.segment.mesh.n_cells
    assert set(mesh.tag_names["region"].values()) == set(standing.segment.mesh.tag_names["region"].values())
    assert "segment:superior" in mesh.node_sets
    import meshio
    m = meshio.read(paths["vtu"])
    for name in ("displacement_mm",):
        assert name in m.point_data
    for name in ("von_mises_MPa", "stress_MPa", "yield_strain_ratio", "hydrostatic_pressure_MPa"):
        assert name in m.cell_data
    csv = pd.read_csv(paths["csv"])
    assert len(csv) == len(standing.metrics)
    with open(paths["json"]) as f:
        assert len(json.load(f)) == len(standing.metrics)
    with open(paths["case"]) as f:
        rec = json.load(f)
    assert rec["load"]["compression"] == 500.0 and rec["load"]["follower"] is True
    assert rec["segment"]["levels"] == ["L4", "L5"] and rec["segment"]["element_size"] == 6.0
    assert rec["segment"]["disc_refinement"] == 2.0 and rec["segment"]["n_cortex_layers"] == 1
    assert rec["materials"]["bmd"] == 120.0
    assert rec["materials"]["cortical"] is None and rec["materials_resolved"]["cortical"]["E"] == 12000.0
    assert Load.from_dict(rec["load"]) == standing.load


def test_input_errors(seg):
    with pytest.raises(InputError, match="known"):
        simulate(seg, "jumping")
    with pytest.raises(InputError, match="zero"):
        simulate(seg, Load())
    with pytest.raises(InputError, match="Load"):
        simulate(seg, 500.0)
    bare = vf.segment(["L4"], element_size=6.0)
    with pytest.raises(InputError, match="elasticity"):
        simulate(bare, Load(compression=100.0))
    with pytest.raises(InputError, match="fraction"):
        simulate(seg, Load(compression=100.0), fraction=0.0)


def test_compare_names_adjacent_levels_and_vp_stiffens_the_treated_level():
    clinical = pytest.importorskip("vertebrafe.clinical")
    seg = vf.segment(["L1", "L2"], bmd=70.0, element_size=6.0)
    frac = clinical.fracture(seg, "L1", kind="wedge", grade=2)
    vp = clinical.vertebroplasty(frac, "L1")
    load = Load(compression=500.0, follower=True)
    rf = simulate(frac, load, case="fracture", factor_of_risk=False)      # the rows read below need no plate
    rv = simulate(vp, load, case="vp", factor_of_risk=False)             # strengths
    assert rv.treated_level == "L1" and rf.treated_level == "L1"
    c = rv.compare(rf)
    assert {"case", "reference_case", "level", "relation", "region", "metric", "unit", "value", "reference",
            "ratio", "change"} == set(c.columns)
    rel = dict(zip(c["level"], c["relation"]))
    assert rel["L1"] == "treated" and rel["L2"] == "adjacent_inferior" and rel["L1-L2"] == "disc_inferior"
    assert rel["segment"] == "segment"
    row = c[(c.level == "L1") & (c.metric == "height_change")].iloc[0]
    # measured (6 mm): the cemented L1 shortens about half as much as the untreated fracture
    assert row.ratio < 0.8
    assert row.change == pytest.approx(row.value - row.reference)
    assert c[(c.metric == "axial_stiffness")]["ratio"].iloc[0] > 1.03


# -- validation targets (coarse meshes; the converged values are in docs/validation.md) ---------------
def test_target5_nucleus_pressure_under_standing(standing):
    """Wilke 1999: about 0.5 MPa at L4-L5 in relaxed standing; 500 N follower load here."""
    p = standing.value("pressure", "L4-L5", "nucleus")
    assert 0.35 <= p <= 0.65                      # 0.5 MPa +/- 30 %


def test_target6_7_osteoporotic_strength_and_factor_of_risk():
    """Osteoporotic L1 (vBMD 60 / 70 / 80) alone between rigid plates, 6 mm mesh.

    Published comparison (docs/validation.md, target 6): the VerSe19 linear-FE models of the 18 L1-L2
    vertebrae with vBMD 60-80 mg/cm^3 (Bonelab/spineFE-benchmark, results/verse19fem_AppendixA.csv) have
    stiffness 11.7-19.2 kN/mm (median 14.0), nonlinear failure load 0.88-3.98 kN (median 2.43), and the
    reported "R.Force (0.2 %)" equals stiffness x 0.2 mm (2.34-3.85 kN); their force at 0.2 % apparent
    strain (stiffness x 0.002 x height) is 0.70-1.31 kN. Measured here (6 mm; 2 mm within 0.3 %):
    stiffness 15.5 / 17.2 / 19.0 kN/mm, yield-volume strength 2.66 / 2.96 / 3.28 kN, force at 0.2 %
    strain 0.79 / 0.88 / 0.97 kN. Factor of risk at vBMD 70 with the yield-volume strength: standing 0.17,
    2300 N lift 0.78; at vBMD 60 the 2300 N lift gives 0.86.
    """
    res = {}
    for bmd in (60.0, 70.0, 80.0):
        vs = vertebra_strength(vf.segment(["L1"], bmd=bmd, element_size=6.0), "L1")
        assert vs.strength_apparent == pytest.approx(vs.stiffness * 0.002 * vs.height, rel=1e-9)
        assert 11_700.0 <= vs.stiffness <= 19_240.0           # VerSe19 L1-L2, vBMD 60-80
        assert 2000.0 <= vs.strength_yield <= 4000.0           # target 6: 2-4 kN
        assert 2000.0 <= 0.2 * vs.stiffness <= 4000.0          # VerSe19 "R.Force (0.2 %)" definition
        assert 700.0 <= vs.strength_apparent <= 1310.0         # VerSe19 force at 0.2 % apparent strain
        res[bmd] = vs
    assert res[60.0].strength_yield < res[70.0].strength_yield < res[80.0].strength_yield
    standing = loads.preset("relaxed_standing").compression
    assert 0.15 <= standing / res[70.0].strength_yield <= 0.35                   # target 7, standing
    # target 7: the heaviest lift reaches the 1 +/- 0.2 transition zone at vBMD 60 (at vBMD 70 it stays
    # 0.02 below it, a documented miss in docs/validation.md, not asserted here)
    assert 0.8 <= loads.preset("lifting").compression / res[60.0].strength_yield <= 1.2


def test_plate_strength_matches_vertebra_strength_and_gives_the_published_type_factor_of_risk(standing):
    plate = standing.plate_strength(levels=["L4"])
    vs = vertebra_strength(standing.segment, "L4")
    pick = lambda m: float(plate[plate.metric == m]["value"].iloc[0])  # noqa: E731
    assert pick("plate_stiffness") == pytest.approx(vs.stiffness, rel=1e-6)
    assert pick("plate_strength_yield") == pytest.approx(vs.strength_yield, rel=1e-6)
    assert pick("factor_of_risk") == pytest.approx(500.0 / vs.strength_yield, rel=1e-6)
    assert standing.value("factor_of_risk", "L4", "vertebra") == pytest.approx(pick("factor_of_risk"), rel=1e-9)
    # normal bone (vBMD 120) between plates is far stronger than in situ under disc loading
    assert pick("factor_of_risk") < standing.value("overload_index_yield", "L4", "vertebra")
    assert set(plate["unit"]) == {"N/mm", "N", "-"}


def test_strength_parameters_and_factor_of_risk_table(standing):
    fr = standing.overload_index
    assert set(fr["metric"]) == {"overload_index_yield", "overload_index_apparent"}
    assert set(fr["level"]) == {"L4", "L5"} and (fr["value"] > 0).all()
    risk = standing.factor_of_risk
    assert set(risk["metric"]) == {"factor_of_risk"} and set(risk["level"]) == {"L4", "L5"}
    base = standing.value("strength_yield", "L4", "vertebra")
    strict = standing.strength(fraction=0.005)
    lower_yield = standing.strength(yield_compression=0.005, yield_tension=0.005)
    pick = lambda df: float(df[(df.level == "L4") & (df.metric == "strength_yield")]["value"].iloc[0])  # noqa: E731
    assert pick(strict) < base and pick(lower_yield) < base
    half = standing.strength(apparent_yield=0.001)
    assert float(half[(half.level == "L4") & (half.metric == "strength_apparent")]["value"].iloc[0]) == pytest.approx(
        0.5 * standing.value("strength_apparent", "L4", "vertebra"), rel=1e-9)


def test_per_cell_formulation_is_solved_and_recorded(seg, standing, tmp_path):
    """Incompatible modes in bone and annulus, B-bar in the nearly incompressible nucleus (the per-region
    choice of docs/verification.md): solves, and the case record keeps the per-cell names. The reference is
    the module's B-bar solve of the same segment and load."""
    nucleus = {n: c for c, n in seg.mesh.tag_names["region"].items()}["nucleus"]
    form = np.where(seg.mesh.cell_data["region"] == nucleus, "bbar", "incompatible")
    res = simulate(seg, "relaxed_standing", formulation=form, factor_of_risk=False)
    ref = standing
    assert ref.formulation == "bbar"
    # the same physics: measured 0.6 % apart at 6 mm (docs/verification.md: <= 1 % at 3 mm)
    assert res.value("pressure", "L4-L5", "nucleus") == pytest.approx(ref.value("pressure", "L4-L5", "nucleus"),
                                                                      rel=0.02)
    res.save(tmp_path)
    with open(tmp_path / "case.json") as f:
        rec = json.load(f)
    assert rec["formulation"] == form.tolist()


def test_key_metrics_change_less_than_3_percent_from_3_to_2_mm():
    """Mesh convergence guard on L4-L5 (vBMD 100, 500 N follower + 2 N m flexion); the full study, 2 -> 1 mm on
    T12-L2, is in docs/validation.md. Measured 3 -> 2 mm: nucleus pressure 0.9 %, disc height change 1.2 %,
    stiffness 1.3 %, flexion rotation 0.5 %, yield-volume strength 0.2 %, endplate deflection 0.6 %, cortical
    share 0.02 %, cancellous von Mises p95 1.7 %; with one disc layer per element size (disc_refinement = 1)
    stiffness and disc height change moved by 5 %. The yield-volume strength is the in-situ one of the
    solved field; the plate strengths of the vertebrae alone (factor of risk, four more solves) are not
    among the metrics guarded here and are left out."""
    keys = [("pressure", "L4-L5", "nucleus"), ("height_change", "L4-L5", "disc"),
            ("axial_stiffness", "segment", "segment"), ("rotation_flexion", "segment", "segment"),
            ("strength_yield", "L4", "vertebra"), ("superior_endplate_deflection", "L5", "vertebra"),
            ("cortical_share", "L4", "vertebra"), ("von_mises_p95", "L4", "cancellous")]
    load = Load(compression=500.0, flexion=2.0, follower=True)
    coarse, fine = (simulate(vf.segment(["L4", "L5"], bmd=100.0, element_size=h), load, factor_of_risk=False)
                    for h in (3.0, 2.0))
    for key in keys:
        assert coarse.value(*key) == pytest.approx(fine.value(*key), rel=0.03), key
