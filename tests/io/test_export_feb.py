"""The FEBio 4.0 writer, checked offline against the rules of the format that can be checked without FEBio:
well-formed XML, section order, every referenced material, part, node set, element set, rigid body, load
controller and data map exists, ids are consecutive and elements reference existing nodes, and the numbers
(materials, loads, prescribed values) are the model's."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe import elasticity
from vertebrafe.io.export import ExportWarning
from vertebrafe.io.febio import ANISO_KEYS
from vertebrafe.io.model_data import describe

ORDER = ["Module", "Globals", "Control", "Material", "Mesh", "MeshDomains", "MeshData", "MeshAdaptor", "Discrete",
         "LoadData", "Loads", "Rigid", "Initial", "Boundary", "Contact", "Constraints", "Step", "Output"]
NODES_PER = {"hex8": 8, "tet4": 4, "tet10": 10}


def check_feb(path):
    """Assert the structural rules; returns the parsed root."""
    root = ET.parse(path).getroot()
    assert root.tag == "febio_spec" and root.get("version") == "4.0"
    sections = [e.tag for e in root]
    assert len(sections) == len(set(sections)), sections
    assert [ORDER.index(t) for t in sections] == sorted(ORDER.index(t) for t in sections), sections
    mats = {m.get("name"): m for m in root.find("Material")}
    assert [int(m.get("id")) for m in root.find("Material")] == list(range(1, len(mats) + 1))
    mesh = root.find("Mesh")
    node_ids = [int(n.get("id")) for n in mesh.find("Nodes")]
    assert node_ids == list(range(1, len(node_ids) + 1))
    parts, elem_ids = {}, []
    for part in mesh.findall("Elements"):
        k = NODES_PER[part.get("type")]
        for e in part:
            conn = [int(v) for v in e.text.split(",")]
            assert len(conn) == k and min(conn) >= 1 and max(conn) <= len(node_ids)
            elem_ids.append(int(e.get("id")))
        parts[part.get("name")] = part
    assert sorted(elem_ids) == list(range(1, len(elem_ids) + 1))
    node_sets = {s.get("name"): [int(v) for v in s.text.split(",")] for s in mesh.findall("NodeSet")}
    for s in list(node_sets.values()) + [[int(v) for v in e.text.split(",")] for e in mesh.findall("ElementSet")]:
        assert len(s) == len(set(s)) and min(s) >= 1
    assert all(max(s) <= len(node_ids) for s in node_sets.values())
    assert all(max(int(v) for v in e.text.split(",")) <= len(elem_ids) for e in mesh.findall("ElementSet"))
    # every part is a domain of an existing material, every material is used
    domains = root.find("MeshDomains")
    assert sorted(d.get("name") for d in domains) == sorted(parts)
    assert {d.get("mat") for d in domains} == set(mats)
    rigid_bodies = {name for name, m in mats.items() if m.get("type") == "rigid body"}
    maps = {}
    if root.find("MeshData") is not None:
        for d in root.find("MeshData"):
            assert d.get("node_set") in node_sets
            lids = [int(v.get("lid")) for v in d]
            assert lids == list(range(1, len(node_sets[d.get("node_set")]) + 1))
            maps[d.get("name")] = d
    if root.find("Discrete") is not None:
        dsets = {d.get("name"): d for d in mesh.findall("DiscreteSet")}
        dmats = {m.get("id") for m in root.find("Discrete").findall("discrete_material")}
        for d in root.find("Discrete").findall("discrete"):
            assert d.get("dmat") in dmats and d.get("discrete_set") in dsets
        for d in dsets.values():
            for e in d:
                ends = [int(v) for v in e.text.split(",")]
                assert len(ends) == 2 and 1 <= min(ends) and max(ends) <= len(node_ids)
    curves = {c.get("id") for c in root.find("LoadData")}
    for e in root.iter():
        if e.get("node_set") is not None and e.tag != "NodeData":
            assert e.get("node_set") in node_sets, e.get("node_set")
        if e.tag == "rb":
            assert e.text in rigid_bodies
        if e.get("lc") is not None:
            assert e.get("lc") in curves
        if e.get("type") == "map":
            assert e.text in maps
    return root


def segment_model():
    seg = vf.segment(["T12", "L1"], bmd=80.0, element_size=8.0,
                     materials=vf.materials.MaterialSet(bmd=80.0, anisotropic=True))
    model = vf.Model(seg.mesh, C=seg.elasticity, formulation="full")
    applied = vf.loads.apply(model, seg, vf.Load(compression=600.0, flexion=3.0, follower=True))
    return seg, model, applied


def test_segment_feb_follows_the_format_and_carries_the_model(tmp_path):
    seg, model, applied = segment_model()
    root = check_feb(model.export(tmp_path / "seg.feb"))
    n, m = seg.mesh.n_points, seg.mesh.n_cells
    mesh = root.find("Mesh")
    assert len(mesh.find("Nodes")) == n + 8  # one rigid hex8 defines the plate's body
    sets = {e.get("name") for e in mesh.findall("ElementSet")}
    assert {"region_cortex", "region_cancellous", "level_T12", "level_L1"} <= sets
    data = describe(model)                               # the model as the writers see it
    # materials: every distinct matrix, anisotropic ones with their 21 constants in FEBio's Voigt order
    mats = [mt for mt in root.find("Material") if mt.get("type") != "rigid body"]
    aniso = [mt for mt in mats if mt.get("type") == "anisotropic elastic"]
    assert aniso, "the anisotropic bone must be written as anisotropic elastic"
    for mt in aniso:
        C = np.zeros((6, 6))
        for i, j in ANISO_KEYS:
            C[i, j] = C[j, i] = float(mt.find(f"c{i + 1}{j + 1}").text)
        k = int(mt.get("name")[1:]) - 1
        upper = np.triu(data.materials[k])
        np.testing.assert_array_equal(C, upper + np.triu(upper, 1).T)  # the upper triangle, as written
    # element counts per material match the model
    for part in mesh.findall("Elements"):
        if part.get("name").startswith("part_M"):
            k = int(part.get("name")[6:]) - 1
            assert len(part) == np.sum(data.material == k)
    # the plate: rigid body at the plate centre, tied nodes, its load; the follower guide forces as a map
    rb = next(mt for mt in root.find("Material") if mt.get("type") == "rigid body")
    np.testing.assert_allclose([float(v) for v in rb.find("center_of_mass").text.split(",")], applied.plate.center)
    tie = next(bc for bc in root.find("Boundary") if bc.get("type") == "rigid")
    nodes = next(s for s in mesh.findall("NodeSet") if s.get("name") == tie.get("node_set"))
    assert sorted(int(v) - 1 for v in nodes.text.split(",")) == applied.plate.nodes.tolist()
    loads = {ld.find("dof").text: float(ld.find("value").text) for ld in root.find("Rigid")}
    expected = data.plates[0].load
    for j, dof in enumerate(("Rx", "Ry", "Rz", "Ru", "Rv", "Rw")):
        assert loads.get(dof, 0.0) == pytest.approx(expected[j], abs=1e-9)
    forces = root.find("MeshData/NodeData[@name='nodal_forces']")
    total = np.sum([[float(v) for v in e.text.split(",")] for e in forces], axis=0)
    forces_n = model.nodal_loads
    np.testing.assert_allclose(total, forces_n.sum(axis=0) - forces_n[applied.plate.nodes].sum(axis=0),
                               atol=1e-9)
    assert np.linalg.norm(total) > 1.0
    fixed = [bc for bc in root.find("Boundary") if bc.get("type") == "zero displacement"]
    assert len(fixed) == 3


def test_prescribed_values_and_fixed_plate(tmp_path):
    mesh = vf.box((2.0, 2.0, 2.0), (2, 2, 2))
    x = mesh.points
    model = vf.Model(mesh, E=500.0, nu=0.25, formulation="full")
    side = np.flatnonzero((x[:, 0] == 0) & (x[:, 2] < 2))
    model.prescribe(side, "xz", np.column_stack([0.01 * x[side, 1], np.zeros(side.size)]))
    model.rigid_plate(np.flatnonzero(x[:, 2] == 2)).prescribe(translation=(0, 0, -0.02), rotation=(0, 0, None))
    root = check_feb(model.export(tmp_path / "box.feb"))
    moved = side[x[side, 1] != 0]  # zero values go to the zero-displacement condition
    values = root.find("MeshData/NodeData[@name='displacement_x']")
    assert [float(v.text) for v in values] == pytest.approx(0.01 * x[moved, 1])
    sets = {s.get("name"): [int(v) - 1 for v in s.text.split(",")] for s in root.find("Mesh").findall("NodeSet")}
    assert sets["prescribed_x"] == moved.tolist()
    assert sets["fixed_x"] == side[x[side, 1] == 0].tolist() and sets["fixed_z"] == side.tolist()
    rigid = {bc.get("type"): bc for bc in root.find("Rigid")}
    flags = [rigid["rigid_fixed"].find(f"{d}_dof").text for d in ("Rx", "Ry", "Rz", "Ru", "Rv", "Rw")]
    assert flags == ["1", "1", "0", "1", "1", "0"]
    assert float(rigid["rigid_displacement"].find("value").text) == -0.02


def test_formulations_without_counterpart_warn(tmp_path):
    mesh = vf.box((1, 1, 1), (1, 1, 1))
    for form in ("bbar", "incompatible"):
        model = vf.Model(mesh, C=elasticity.isotropic(np.array([10.0]), np.array([0.3]))[0], formulation=form)
        model.fix(np.arange(4))
        with pytest.warns(ExportWarning, match=form):
            check_feb(model.export(tmp_path / f"{form}.feb"))


def test_springs_as_discrete_elements(tmp_path):
    from vertebrafe.springs import spring_set

    mesh = vf.box((2.0, 2.0, 2.0), (1, 1, 1))
    x = mesh.points
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(mesh.node_sets["zmin"])
    model.add_springs(spring_set(x, [0, 1], [6, 7], [40.0, 60.0], kind="tension", name="lig"))
    model.add_springs(spring_set(x, [2], [4], 10.0, name="link"))
    root = check_feb(model.export(tmp_path / "s.feb"))
    mats = {m.get("name"): (m.get("type"), float(m.find("E").text))
            for m in root.find("Discrete").findall("discrete_material")}
    assert mats == {"springs_lig_1": ("tension-only linear spring", 40.0),
                    "springs_lig_2": ("tension-only linear spring", 60.0), "springs_link_1": ("linear spring", 10.0)}
    dsets = {d.get("name"): [e.text for e in d] for d in root.find("Mesh").findall("DiscreteSet")}
    assert dsets == {"springs_lig_1": ["1,7"], "springs_lig_2": ["2,8"], "springs_link_1": ["3,5"]}


@pytest.mark.parametrize("kwargs, reason", [
    (dict(kind="compression"), "kind 'compression'"),
    (dict(kind="tension", slack=0.1), "slack"),
    (dict(weights_a=np.full((1, 8), 0.125)), "interpolated"),
])
def test_springs_febio_cannot_express_are_refused(tmp_path, kwargs, reason):
    from vertebrafe.errors import InputError
    from vertebrafe.springs import spring_set

    mesh = vf.box((2.0, 2.0, 2.0), (1, 1, 1))
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(mesh.node_sets["zmin"])
    nodes_a = mesh.cells[[0]] if "weights_a" in kwargs else [0]
    model.add_springs(spring_set(mesh.points, nodes_a, [6], 10.0, name="odd", **kwargs))
    with pytest.raises(InputError, match=f"spring set 'odd' cannot be written for FEBio: .*{reason}"):
        model.export(tmp_path / "x.feb")
    assert not (tmp_path / "x.feb").exists()


def test_initial_stress_as_nodal_forces(tmp_path):
    """FEBio has no initial stress of a linear-elastic material: its nodal forces -int B^T sigma_0 dV join the
    nodal forces (and, on tied nodes, the plate's load), with a warning and a comment naming the stress."""
    mesh = vf.box((2.0, 2.0, 3.0), (2, 2, 3))
    model = vf.Model(mesh, E=10.0, nu=0.3, formulation="full")
    model.fix(mesh.node_sets["zmin"])
    plate = model.rigid_plate(mesh.node_sets["zmax"]).load(force=(0.0, 0.0, -1.0))
    stress = np.zeros((mesh.n_cells, 6))
    stress[mesh.cell_centers()[:, 2] > 1.0, :3] = -0.2                 # reaches the plate's nodes
    model.initial_stress = stress
    with pytest.warns(ExportWarning, match=r"initial stress of 8 cell\(s\).*\[-0.2, -0.2, -0.2, 0, 0, 0\] MPa"):
        path = model.export(tmp_path / "p.feb")
    root = check_feb(path)
    assert "lack S0" in open(path).read()
    f0 = model.initial_stress_load()
    free = np.setdiff1d(np.arange(mesh.n_points), plate.nodes)
    forces = root.find("MeshData/NodeData[@name='nodal_forces']")
    ids = next(s for s in root.find("Mesh").findall("NodeSet") if s.get("name") == forces.get("node_set"))
    written = np.zeros((mesh.n_points, 3))
    written[[int(v) - 1 for v in ids.text.split(",")]] = [[float(v) for v in e.text.split(",")] for e in forces]
    np.testing.assert_allclose(written[free], f0[free], atol=1e-12)
    assert np.abs(f0[free]).max() > 0.01 and not written[plate.nodes].any()
    rz = next(ld for ld in root.find("Rigid") if ld.find("dof").text == "Rz")
    assert float(rz.find("value").text) == pytest.approx(-1.0 + f0[plate.nodes, 2].sum(), abs=1e-12)
    assert describe(model).initial_stress_in_force is False          # the .inp writer keeps the stress
