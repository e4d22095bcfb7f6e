"""Segments: conformity at every bone-disc interface, placement, volumes, tags, materials, export."""
import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from anatomy_analytic import disc_volumes, hex_jacobians, vertebra_volumes
from vertebrafe.anatomy import (DEFAULT_CORTEX_THICKNESS, DEFAULT_ENDPLATE_THICKNESS, VertebraGeometry, disc,
                                segment)
from vertebrafe.anatomy.disc import rotation_x
from vertebrafe.errors import InputError


@pytest.fixture(scope="module")
def seg():
    return segment(["T12", "L1", "L2"], posterior=False)       # the body-disc stack


def test_order_tags_and_sets(seg):
    assert seg.levels == ("T12", "L1", "L2")
    assert seg.discs == ("T12-L1", "L1-L2")
    mesh = seg.mesh
    assert mesh.names("level") == ["T12", "T12-L1", "L1", "L1-L2", "L2"]
    assert set(mesh.names("region")) == {"cortex", "endplate", "cancellous", "annulus", "nucleus"}
    for v in seg.levels:
        for s in ("superior", "inferior"):
            assert f"{v}:{s}" in mesh.node_sets and f"{v}:{s}" in mesh.face_sets
        assert len(mesh.face_sets[f"{v}:posterior_wall"]) > 0
    # bone regions only in vertebrae, disc regions only in discs
    for name in seg.levels:
        regs = set(np.unique(mesh.cell_data["region"][mesh.cells_in("level", name)]))
        assert {mesh.tag_names["region"][int(r)] for r in regs} == {"cortex", "endplate", "cancellous"}
    for name in seg.discs:
        regs = set(np.unique(mesh.cell_data["region"][mesh.cells_in("level", name)]))
        assert {mesh.tag_names["region"][int(r)] for r in regs} == {"annulus", "nucleus"}


def test_no_duplicate_nodes_and_every_interface_node_shared(seg):
    mesh = seg.mesh
    assert len(cKDTree(mesh.points).query_pairs(1e-6)) == 0
    assert mesh.unused_nodes().size == 0
    for d in seg.discs:
        up, lo = d.split("-")
        disc_nodes = set(np.unique(mesh.cells[mesh.cells_in("level", d)]).tolist())
        for v, side in ((up, "inferior"), (lo, "superior")):
            bone_nodes = set(np.unique(mesh.cells[mesh.cells_in("level", v)]).tolist())
            shared = disc_nodes & bone_nodes
            assert shared == set(mesh.node_sets[f"{v}:{side}"].tolist())
    # interface faces are interior: the boundary is the two end endplates plus the lateral walls
    bfaces = {tuple(sorted(f)) for f in mesh.boundary_faces().tolist()}
    for d in seg.discs:
        up, lo = d.split("-")
        for name in (f"{up}:inferior", f"{lo}:superior"):
            faces = {tuple(sorted(f)) for f in mesh.face_sets[name].tolist()}
            assert not faces & bfaces
    for name in ("segment:superior", "segment:inferior"):
        faces = {tuple(sorted(f)) for f in mesh.face_sets[name].tolist()}
        assert faces <= bfaces


def test_jacobians_positive_and_scaled_jacobian_at_default_size(seg):
    det, scaled = hex_jacobians(seg.mesh.points, seg.mesh.cells)
    assert det.min() > 0
    assert scaled.min() >= 0.3


def test_segmental_angles_follow_the_level_table(seg):
    for d in seg.discs:
        up, lo = d.split("-")
        (Ru, _), (Rl, _) = seg.frames[up], seg.frames[lo]
        nu = Ru @ rotation_x(seg.dimensions[up].wedge) @ [0, 0, 1]    # superior rim plane normals
        nl = Rl @ rotation_x(seg.dimensions[lo].wedge) @ [0, 0, 1]
        # + lordosis: the upper normal is turned toward -y (posterior) about +x
        angle = math.degrees(math.atan2(nl[1] * nu[2] - nl[2] * nu[1], float(np.dot(nl, nu))))
        assert angle == pytest.approx(seg.dimensions[d].segmental_angle, abs=1e-9)
    # signed check on a lordotic lumbar pair: the upper body leans back (its +z tilts toward -y)
    s = segment(["L4", "L5"])
    R, _ = s.frames["L4"]
    total = s.dimensions["L5"].wedge + s.dimensions["L4-L5"].segmental_angle - s.dimensions["L4"].wedge
    assert (R @ [0, 0, 1])[1] == pytest.approx(-math.sin(math.radians(total)), abs=1e-12)


def test_disc_rim_heights_in_the_mesh(seg):
    # midsagittal anterior and posterior disc heights measured on the mesh nodes, perpendicular to the
    # lower rim plane, against rim_height +- D/2 tan(wedge)
    mesh = seg.mesh
    for row in seg.geometry():
        if row["kind"] != "disc":
            continue
        up, lo = row["name"].split("-")
        R, o = seg.frames[lo]
        G = R @ rotation_x(seg.dimensions[lo].wedge)
        top = (mesh.points[mesh.node_sets[f"{up}:inferior"]] - o) @ R       # lower-local coordinates
        bot = (mesh.points[mesh.node_sets[f"{lo}:superior"]] - o) @ R
        for y_sign, key in ((1, "anterior_height_mm"), (-1, "posterior_height_mm")):
            i_t = np.argmax(y_sign * top[:, 1] - 100 * np.abs(top[:, 0]))
            i_b = np.argmax(y_sign * bot[:, 1] - 100 * np.abs(bot[:, 0]))
            gap = (top[i_t] - bot[i_b]) @ (rotation_x(seg.dimensions[lo].wedge) @ [0, 0, 1])
            assert gap == pytest.approx(row[key], abs=0.15), (row["name"], key)


def test_volumes_per_level_and_region_match_the_parametric_shape(seg):
    summary = seg.summary().set_index(["level", "region"])["volume_mm3"]
    t_c, t_e = DEFAULT_CORTEX_THICKNESS, DEFAULT_ENDPLATE_THICKNESS
    geos = {v: VertebraGeometry.from_dimensions(seg.dimensions[v]) for v in seg.levels}
    for v in seg.levels:
        ref = vertebra_volumes(geos[v], t_c, t_e)
        for region in ("cortex", "endplate", "cancellous"):
            assert summary[(v, region)] == pytest.approx(ref[region], rel=0.02), (v, region)
    for d in seg.discs:
        up, lo = d.split("-")
        dd = seg.dimensions[d]
        ref = disc_volumes(geos[lo], geos[up], seg.frames[lo], seg.frames[up], t_c,
                           (dd.nucleus_fraction, dd.nucleus_offset))
        assert summary[(d, "annulus")] + summary[(d, "nucleus")] == pytest.approx(ref["total"], rel=0.01)
        for region in ("annulus", "nucleus"):
            assert summary[(d, region)] == pytest.approx(ref[region], rel=0.02), (d, region)


def test_overrides_scale_and_errors():
    base = segment(["L1", "L2"], posterior=False)
    s = segment(["L1", "L2"], overrides={"L1": {"anterior_height": 18.0}, "L1-L2": {"rim_height": 4.0}},
                posterior=False)
    assert s.dimensions["L1"].anterior_height == 18.0
    assert s.mesh.cell_volumes().sum() < base.mesh.cell_volumes().sum()
    small = segment(["L1", "L2"], scale=0.9, posterior=False)
    assert small.mesh.cell_volumes().sum() == pytest.approx(0.9 ** 3 * base.mesh.cell_volumes().sum(), rel=0.03)
    with pytest.raises(InputError, match="'L3'"):
        segment(["L1", "L2"], overrides={"L3": {"anterior_height": 20}})
    with pytest.raises(InputError, match="not consecutive"):
        segment(["L1", "L3"])


def test_standalone_disc_matches_the_segment_disc(seg):
    d = disc("T12-L1")
    assert set(d.names("region")) == {"annulus", "nucleus"}
    sel = seg.mesh.cells_in("level", "T12-L1")
    assert d.n_cells == sel.sum()
    assert d.cell_volumes().sum() == pytest.approx(seg.mesh.cell_volumes()[sel].sum(), rel=1e-12)
    with pytest.raises(InputError, match="L5-S1"):
        disc("L5-S1")


def test_materials_summary_and_save(tmp_path):
    s = segment("T12-L1", bmd=80.0)
    assert s.elasticity.shape == (s.mesh.n_cells, 6, 6)
    tab = s.summary()
    E = tab.set_index(["level", "region"])["mean_modulus_MPa"]
    assert E[("L1", "cortex")] > E[("L1", "endplate")] > E[("L1", "cancellous")] > E[("T12-L1", "annulus")]
    # the annulus cells carry the ground substance between the fibres (the fibres are springs), the
    # nucleus its own material
    ms = s.materials
    assert E[("T12-L1", "annulus")] == pytest.approx(ms.annulus.E, rel=1e-9)
    assert E[("T12-L1", "nucleus")] == pytest.approx(ms.nucleus.E, rel=1e-9)
    # a plain mapping works too
    s2 = segment(["L1"], posterior=False, materials={"cortex": (12000.0, 0.3), "endplate": (1000.0, 0.3),
                                    "cancellous": (100.0, 0.2)})
    assert s2.summary().set_index("region")["mean_modulus_MPa"]["cancellous"] == pytest.approx(100.0)
    with pytest.raises(InputError, match="cancellous"):
        segment(["L1"], materials={"cortex": (12000.0, 0.3)})
    path = tmp_path / "seg.vtu"
    s.save(path)
    from vertebrafe.mesh import Mesh

    back = Mesh.load(path)
    assert back.n_cells == s.mesh.n_cells
    assert back.names("level") == ["T12", "T12-L1", "L1"]
    np.testing.assert_array_equal(back.node_sets["L1:superior"], s.mesh.node_sets["L1:superior"])


def test_with_materials_returns_a_new_segment_and_leaves_the_geometry_unchanged():
    from vertebrafe.clinical import fracture
    from vertebrafe.materials import MaterialSet

    geo = segment(["L1", "L2"], element_size=6.0)
    assert geo.materials is None and geo.elasticity is None and "modulus" not in geo.mesh.cell_data
    soft, hard = geo.with_materials(MaterialSet(bmd=60.0)), geo.with_materials(MaterialSet(bmd=120.0))
    assert geo.elasticity is None and "modulus" not in geo.mesh.cell_data
    assert soft.mesh is not geo.mesh and soft.mesh is not hard.mesh
    np.testing.assert_array_equal(soft.mesh.points, geo.mesh.points)
    canc = geo.mesh.cells_in("region", "cancellous")
    # more bone, stiffer cancellous bone; the same answer as building with bmd= directly
    assert np.all(hard.mesh.cell_data["modulus"][canc] > soft.mesh.cell_data["modulus"][canc])
    np.testing.assert_array_equal(soft.elasticity, segment(["L1", "L2"], bmd=60.0, element_size=6.0).elasticity)
    with pytest.raises(InputError, match="clinical history"):
        fracture(soft, "L1", kind="wedge", grade=1).with_materials(MaterialSet(bmd=60.0))


def test_mesh_is_mirror_symmetric_about_the_midsagittal_plane(seg):
    p = seg.mesh.points
    dist, _ = cKDTree(p).query(p * [-1.0, 1.0, 1.0])
    assert dist.max() < 1e-9


def test_disc_refinement_sets_the_disc_layers_and_is_recorded():
    """Disc layers = max(2, round(disc_refinement x rim height / element size)): T12-L1 (rim 6.1 mm) and
    L1-L2 (6.9 mm) at 2 mm get 6 and 7 layers by default, 3 each with disc_refinement = 1."""
    from vertebrafe.anatomy.disc import disc_layer_count

    for r, expected in ((2.0, (6, 7)), (1.0, (3, 3))):
        s = segment(["T12", "L1", "L2"], element_size=2.0, disc_refinement=r)
        assert s.disc_refinement == r
        q = s.counts.n_cells                                        # cells per layer of the stack
        for name, n in zip(("T12-L1", "L1-L2"), expected):
            assert disc_layer_count(s.dimensions[name], 2.0, r) == n
            assert s.mesh.cells_in("level", name).sum() == n * q
    with pytest.raises(InputError, match="disc_refinement"):
        segment(["L1", "L2"], disc_refinement=0.0)


def test_segment_pickles_with_its_history():
    """Segments travel to worker processes and caches: pickle round trip keeps mesh, dimensions, history."""
    import pickle
    import vertebrafe as vf
    seg = vf.segment(["L3", "L4"], bmd=120.0, element_size=6.0)
    frac = vf.fracture(seg, "L3", kind="wedge", grade=1)
    for s in (seg, frac):
        t = pickle.loads(pickle.dumps(s))
        np.testing.assert_array_equal(t.mesh.points, s.mesh.points)
        np.testing.assert_array_equal(t.elasticity, s.elasticity)
        assert t.dimensions == s.dimensions and dict(t.dimensions["L3"].sources) == dict(s.dimensions["L3"].sources)
        assert [op.as_dict() for op in t.history] == [op.as_dict() for op in s.history]
    with pytest.raises(TypeError):                      # still read-only after the trip
        pickle.loads(pickle.dumps(frac)).history[0].parameters["grade"] = 3


def test_wedged_vertebra_keeps_the_disc_below():
    """Overriding L1's anterior height tilts L1 but leaves the L1-L2 disc's heights and wedge as in the table;
    geometry() and measure() report the wedge with one sign (+ kyphotic)."""
    import vertebrafe as vf
    from vertebrafe.clinical import measure
    ref = {r["name"]: r for r in vf.segment("T12-L2", element_size=6.0).geometry()}
    seg = vf.segment("T12-L2", element_size=6.0, overrides={"L1": {"anterior_height": 20.0}})
    geo = {r["name"]: r for r in seg.geometry()}
    for k in ("anterior_height_mm", "posterior_height_mm", "wedge_deg"):
        assert geo["L1-L2"][k] == pytest.approx(ref["L1-L2"][k], abs=1e-9)
    assert geo["L1"]["wedge_deg"] > ref["L1"]["wedge_deg"] + 3.0          # more kyphotic
    assert seg.dimensions["L1-L2"].sources["segmental_angle"] == "derived"
    assert measure(seg, "L1").wedge_angle_deg == pytest.approx(geo["L1"]["wedge_deg"], abs=0.3)
    # an explicit disc angle wins
    seg2 = vf.segment("T12-L2", element_size=6.0, overrides={"L1": {"anterior_height": 20.0},
                                                             "L1-L2": {"segmental_angle": 1.2}})
    assert seg2.dimensions["L1-L2"].segmental_angle == 1.2


def test_central_coarsening_one_gives_the_uniform_o_grid():
    """central_coarsening=1 keeps the outline's 4m cells around every ring down to the central block (m x m
    cells instead of m/3 x m/3): more cells per layer, the same layers, geometry and volume, no inverted
    cell (the uniform grid's scaled Jacobian floor is higher than the 3:1 template's); other values raise."""
    from vertebrafe.anatomy.vertebra import cross_section_topology

    base = segment(["L1", "L2"], element_size=3.0, posterior=False)
    fine = segment(["L1", "L2"], element_size=3.0, posterior=False, central_coarsening=1)
    b, f = base.counts, fine.counts
    assert (b.coarsening, f.coarsening) == (3, 1)
    assert (f.n_transition, f.n_annulus, f.n_cortex) == (b.n_transition, b.n_annulus, b.n_cortex)
    assert set(f.ring_sizes) == {4 * f.m}                         # no angular coarsening anywhere
    assert cross_section_topology(f)["block_ij"].shape == (f.m + 1, f.m + 1)
    assert cross_section_topology(b)["block_ij"].shape == (b.m // 3 + 1, b.m // 3 + 1)
    assert f.n_cells > 1.3 * b.n_cells
    assert fine.mesh.n_cells // f.n_cells == base.mesh.n_cells // b.n_cells     # same cell layers
    assert fine.mesh.cell_volumes().sum() == pytest.approx(base.mesh.cell_volumes().sum(), rel=2e-3)
    det, scaled = hex_jacobians(fine.mesh.points, fine.mesh.cells)
    assert det.min() > 0
    assert scaled.min() > hex_jacobians(base.mesh.points, base.mesh.cells)[1].min()
    for bad in (2, 0, True, "3"):
        with pytest.raises(InputError, match=r"central_coarsening = .*allowed 1 .* or 3"):
            segment(["L1", "L2"], element_size=3.0, posterior=False, central_coarsening=bad)


def test_annulus_refinement_multiplies_the_annulus_rings():
    """annulus_refinement=k gives k times the rings between the nucleus curve and the inner cortical curve and
    nothing else: same angular count, block, transition rings, cortex and cell layers, the same volume, no
    inverted cell; other values raise naming the field and the range."""
    base = segment(["L1", "L2"], element_size=3.0, posterior=False, central_coarsening=1)
    fine = segment(["L1", "L2"], element_size=3.0, posterior=False, central_coarsening=1, annulus_refinement=2)
    b, f = base.counts, fine.counts
    assert f.n_annulus == 2 * b.n_annulus
    assert (f.m, f.n_transition, f.n_cortex, f.coarsening) == (b.m, b.n_transition, b.n_cortex, b.coarsening)
    assert f.n_cells - b.n_cells == b.n_annulus * 4 * b.m                      # the added rings
    assert fine.mesh.n_cells // f.n_cells == base.mesh.n_cells // b.n_cells     # same cell layers
    assert fine.mesh.cell_volumes().sum() == pytest.approx(base.mesh.cell_volumes().sum(), rel=2e-3)
    assert hex_jacobians(fine.mesh.points, fine.mesh.cells)[0].min() > 0
    for bad in (0, 5, 1.5, True, "2"):
        with pytest.raises(InputError, match=r"annulus_refinement = .*allowed an integer 1 .* to 4"):
            segment(["L1", "L2"], element_size=3.0, posterior=False, annulus_refinement=bad)
