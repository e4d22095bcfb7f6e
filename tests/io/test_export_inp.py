"""The .inp writer without running CalculiX: file structure, anisotropic constants, names, errors, CLI."""
import re

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.cli import main
from vertebrafe.errors import InputError
from vertebrafe.io.abaqus import ANISO_ORDER
from vertebrafe.io.export import ExportWarning, isotropic_constants


def keyword_blocks(text):
    """{keyword line: [data lines]} in file order (a keyword may repeat: lists of lists)."""
    blocks = []
    for line in text.splitlines():
        if line.startswith("**"):
            continue
        if line.startswith("*"):
            blocks.append((line, []))
        elif blocks:
            blocks[-1][1].append(line)
    return blocks


def test_anisotropic_constants_in_abaqus_order(tmp_path):
    """C[i, j] = 10 i + j + 100 (distinct, symmetric made by the lower index first): each D_ijkl lands at the
    Voigt position Abaqus defines (11, 22, 33, 12, 13, 23), e.g. D1213 = C[xy, xz], D2323 = C[yz, yz]."""
    mesh = vf.box((1, 1, 1), (1, 1, 1))
    i, j = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    C = 1000.0 * np.eye(6) + np.minimum(i, j) * 10.0 + np.maximum(i, j) + 1.0
    model = vf.Model(mesh, C=C, formulation="full")
    model.fix(np.arange(4), "xyz")
    model.export(tmp_path / "a.inp")
    blocks = keyword_blocks((tmp_path / "a.inp").read_text())
    data = next(lines for key, lines in blocks if key.startswith("*ELASTIC, TYPE=ANISO"))
    values = [float(v) for line in data for v in line.split(",")]
    assert [len(line.split(",")) for line in data] == [8, 8, 5]
    expected = dict(D1111=C[0, 0], D1122=C[0, 1], D2222=C[1, 1], D1133=C[0, 2], D2233=C[1, 2], D3333=C[2, 2],
                    D1112=C[0, 3], D2212=C[1, 3], D3312=C[2, 3], D1212=C[3, 3], D1113=C[0, 5], D2213=C[1, 5],
                    D3313=C[2, 5], D1213=C[3, 5], D1313=C[5, 5], D1123=C[0, 4], D2223=C[1, 4], D3323=C[2, 4],
                    D1223=C[3, 4], D1323=C[5, 4], D2323=C[4, 4])
    assert values == list(expected.values())
    assert len(set(ANISO_ORDER)) == 21


def test_isotropic_detection():
    from vertebrafe.elasticity import isotropic

    E, nu = isotropic_constants(isotropic(np.array([1234.5]), np.array([0.27]))[0])
    assert E == pytest.approx(1234.5, rel=1e-13) and nu == pytest.approx(0.27, rel=1e-13)
    C = isotropic(np.array([1000.0]), np.array([0.3]))[0]
    C[2, 2] *= 1.01
    assert isotropic_constants(C) is None


def test_segment_deck_has_sets_materials_plate_and_loads(tmp_path):
    seg = vf.segment(["L1"], bmd=100.0, element_size=8.0)
    model = vf.Model(seg.mesh, C=seg.elasticity, formulation="full")
    load = vf.Load(compression=500.0, flexion=2.0)
    applied = vf.loads.apply(model, seg, load)
    path = model.export(tmp_path / "l1.inp")
    text = open(path).read()
    blocks = keyword_blocks(text)
    keys = [k for k, _ in blocks]
    n, m = seg.mesh.n_points, seg.mesh.n_cells
    nodes = next(lines for k, lines in blocks if k.startswith("*NODE,"))
    assert len(nodes) == n + 2  # the mesh plus the plate's reference and rotation nodes
    assert sum(len(lines) for k, lines in blocks if k.startswith("*ELEMENT")) == m
    for region in seg.mesh.tag_names["region"].values():
        if np.any(seg.mesh.cells_in("region", [region])):
            assert f"*ELSET, ELSET=REGION_{region.upper()}" in [k.upper() for k in keys]
    assert "*NSET, NSET=SEGMENT_SUPERIOR" in keys
    # every element set named by a section exists, every material named by a section is defined
    esets = {k.split("=")[1] for k in keys if k.startswith("*ELSET")} | {"EALL"}
    mats = {k.split("=")[1] for k in keys if k.startswith("*MATERIAL")}
    for k in keys:
        if k.startswith("*SOLID SECTION"):
            fields = dict(f.strip().split("=") for f in k.split(",")[1:])
            assert fields["ELSET"] in esets and fields["MATERIAL"] in mats
    # three equations per tied node; the plate load on the reference and rotation nodes
    eq = next(lines for k, lines in blocks if k == "*EQUATION")
    assert len(eq) == 2 * 3 * applied.plate.nodes.size
    cload = np.array([[float(v) for v in line.split(",")] for line in
                      next(lines for k, lines in blocks if k == "*CLOAD")])
    ref = cload[cload[:, 0] == n + 1]
    rot = cload[cload[:, 0] == n + 2]
    assert ref[ref[:, 1] == 3, 2] == pytest.approx([-500.0])
    assert abs(load.moment[0]) == pytest.approx(2000.0)  # 2 N m flexion, in N mm
    assert rot[rot[:, 1] == 1, 2] == pytest.approx([load.moment[0]])
    bc = next(lines for k, lines in blocks if k == "*BOUNDARY")
    assert len(bc) == 3 * seg.mesh.node_sets["segment:inferior"].size


def test_bbar_warns_and_refusals(tmp_path):
    mesh = vf.box((1, 1, 1), (2, 1, 1))
    model = vf.Model(mesh, E=100.0, nu=0.3)  # default formulation: B-bar
    model.fix(np.flatnonzero(mesh.points[:, 2] == 0), "xyz")
    with pytest.warns(ExportWarning, match="no exact counterpart"):
        model.export(tmp_path / "b.inp")
    with pytest.raises(InputError, match="exists"):
        model.export(tmp_path / "b.inp")
    with pytest.raises(InputError, match="allowed: .inp"):
        model.export(tmp_path / "b.xyz")
    tied = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    tied.fix([0], "x")
    tied.rigid_plate([0, 1])
    with pytest.raises(vf.errors.ConstraintError, match="tied to rigid plate"):
        tied.export(tmp_path / "c.inp")
    assert not (tmp_path / "c.inp").exists()


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "sub" / "model.inp"
    # the default model: facet contact along the joint normal (coincident ends) and ligaments, one-sided
    default = tmp_path / "default.inp"
    assert main(["export", "cases/healthy-intact.toml", "-o", str(default), "--set", "segment.element_size=8"]) == 0
    assert "one-sided" in capsys.readouterr().err
    text = default.read_text()
    assert "*STEP, NLGEOM" in text and "** spring set facet_joints (compression)" in text
    assert "** spring set ligaments (tension)" in text
    code = main(["export", "cases/healthy-intact.toml", "-o", str(out), "--formulation", "full",
                 "--set", "segment.element_size=8", "--set", "segment.posterior=false"])
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert re.search(r"^\*ELEMENT, TYPE=C3D8, ELSET=EALL$", text, re.M)
    assert "*EQUATION" in text and "*STEP" in text and "*END STEP" in text
    assert main(["export", "cases/healthy-intact.toml", "-o", str(out), "--set", "segment.element_size=8",
                 "--set", "segment.posterior=false"]) == 1
    assert "exists" in capsys.readouterr().err
    feb = tmp_path / "model.feb"
    # FEBio discrete springs join two nodes: embedded annulus fibres cannot be written, and say so
    assert main(["export", "cases/healthy-intact.toml", "-o", str(feb), "--set", "segment.element_size=8",
                 "--set", "segment.fibres=true", "--set", "segment.posterior=false"]) == 1
    assert "annulus_fibres" in capsys.readouterr().err and not feb.exists()
    assert main(["export", "cases/healthy-intact.toml", "-o", str(feb), "--set", "segment.element_size=8",
                 "--set", "segment.posterior=false"]) == 0
    assert "no exact counterpart" in capsys.readouterr().err and feb.read_text().count("<febio_spec") == 1


def test_springs_acting_off_the_line_between_their_ends(tmp_path):
    """A spring along an explicit direction (here between coincident interpolated ends): an elongation node
    per spring, tied by one *EQUATION to n . (u_b - u_a), on a SPRINGA along x from a fixed ground node."""
    from vertebrafe.springs import spring_set

    mesh = vf.box((1, 1, 1), (1, 1, 1))
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(np.arange(4))
    n = np.array([0.6, 0.0, 0.8])
    model.add_springs(spring_set(mesh.points, [4], [6], 10.0, direction=n, name="contact"))
    text = open(model.export(tmp_path / "s.inp")).read()
    nn = mesh.n_points
    r, g = nn + 1, nn + 2                                  # elongation node, ground node
    eq = text[text.index("** interpolated ends of spring set contact"):].split("\n")
    assert eq[2] == "5"                                     # u_r1, then n_x and n_z for each end
    terms = [t.strip() for t in (eq[3] + eq[4]).split(",") if t.strip()]
    coef = {(int(terms[i]), int(terms[i + 1])): float(terms[i + 2]) for i in range(0, len(terms), 3)}
    assert coef[(r, 1)] == 1.0
    assert coef[(7, 1)] == pytest.approx(-0.6) and coef[(7, 3)] == pytest.approx(-0.8)      # end b: node 6
    assert coef[(5, 1)] == pytest.approx(0.6) and coef[(5, 3)] == pytest.approx(0.8)        # end a: node 4
    assert re.search(rf"^{r}, 2, 3, 0\.0+e\+00$", text, re.M) and re.search(rf"^{g}, 1, 3, 0\.0+e\+00$", text, re.M)
    assert re.search(rf"^\d+, {g}, {r}$", text, re.M)         # SPRINGA from the ground node


def test_print_set_and_field_output_options(tmp_path):
    mesh = vf.box((1, 1, 1), (1, 1, 1))
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(mesh.node_sets["zmin"])
    text = open(model.export(tmp_path / "p.inp", print_nodes="zmax", field_output=False)).read()
    assert text.count("*NODE PRINT, NSET=ZMAX") == 2 and "*NODE FILE" not in text and "*EL FILE" not in text
    with pytest.raises(InputError, match="print_nodes = 'top'.*zmax"):
        model.export(tmp_path / "q.inp", print_nodes="top")


def test_fluid_cavity_is_refused(tmp_path):
    from vertebrafe.cavity import FluidCavity

    mesh = vf.box((1, 1, 1), (1, 1, 1))
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(mesh.node_sets["zmin"])
    closed = np.concatenate([mesh.face_sets[k] for k in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")])
    model.add_springs(FluidCavity("nucleus_L1-L2", mesh.points, closed, volume=1.0))
    for ext in ("inp", "feb"):
        with pytest.raises(InputError, match=r"fluid cavities \['nucleus_L1-L2'\].*nucleus='solid'"):
            model.export(tmp_path / f"c.{ext}")
        assert not (tmp_path / f"c.{ext}").exists()


@pytest.mark.parametrize("cell_type, points", [("hexahedron", 8), ("tetra", 1), ("tetra10", 4)])
def test_initial_stress_rows_per_integration_point(tmp_path, cell_type, points):
    """One *INITIAL CONDITIONS row per integration point of every pre-stressed cell (C3D8 8, C3D4 1, C3D10 4),
    S11, S22, S33, S12, S13, S23: vertebrafe's yz and xz swapped; cells without an initial stress are left out."""
    mesh = vf.box((2, 1, 1), (2, 1, 1))
    if cell_type != "hexahedron":
        from vertebrafe.verification import tetra_mesh
        mesh = tetra_mesh(mesh, quadratic=cell_type == "tetra10")
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(np.flatnonzero(mesh.points[:, 0] == 0))
    stress = np.zeros((mesh.n_cells, 6))
    stress[1] = (-1.0, -2.0, -3.0, 0.4, 0.5, 0.6)
    model.initial_stress = stress
    text = open(model.export(tmp_path / "s.inp")).read()
    blocks = [rows for key, rows in keyword_blocks(text) if key == "*INITIAL CONDITIONS, TYPE=STRESS"]
    assert len(blocks) == 1 and len(blocks[0]) == points
    table = np.array([[float(v) for v in r.split(",")] for r in blocks[0]])
    np.testing.assert_array_equal(table[:, 0], 2)
    np.testing.assert_array_equal(table[:, 1], np.arange(1, points + 1))
    np.testing.assert_array_equal(table[:, 2:], np.tile([-1.0, -2.0, -3.0, 0.4, 0.6, 0.5], (points, 1)))
    assert text.index("*INITIAL CONDITIONS") < text.index("*STEP")
    model.initial_stress = np.zeros((mesh.n_cells, 6))                # a zero initial stress writes nothing
    assert "*INITIAL CONDITIONS" not in open(model.export(tmp_path / "z.inp")).read()


def test_cli_export_of_a_prestressed_case(tmp_path, capsys):
    """A case with a nucleus pre-pressure is exported with the rest state's swelling stress (the model
    ``vertebrafe run`` solves), not the stress-free disc."""
    out = tmp_path / "p.inp"
    assert main(["export", "cases/healthy-intact.toml", "-o", str(out), "--formulation", "full",
                 "--set", "segment.element_size=8", "--set", "segment.posterior=false",
                 "--set", "segment.nucleus_prepressure=0.1"]) == 0
    said = capsys.readouterr().out
    printed = {float(v) for v in re.findall(r"[A-Z]\d+-[A-Z]\d+ ([0-9.]+)", said.split("swelling stresses")[1])}
    rows = [r for key, rows in keyword_blocks(out.read_text()) if key.startswith("*INITIAL CONDITIONS") for r in rows]
    written = {round(-float(r.split(",")[2]), 3) for r in rows}
    assert rows and written == {round(v, 3) for v in printed} and len(written) == 2   # two discs, T12-L2
    assert all(1.0 < v < 3.0 for v in written)       # the swelling stress, far above the 0.1 MPa rest pressure
