"""Round trip vertebrafe -> .inp -> CalculiX (ccx) -> compare: the same elements with the same integration
must give the same displacements, nodal forces and plate reactions (to the 7 digits ccx prints).

In CI (CI=true) a missing ccx fails these tests instead of skipping them; .ci/run installs calculix-ccx.
"""
import os
import shutil
import subprocess
import warnings

import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe import elasticity
from vertebrafe.io.abaqus import read_dat, write_inp
from vertebrafe.io.export import ExportWarning

TOL = 1e-6  # relative to the largest value; ccx prints 7 significant digits (rounding <= 5e-7)


@pytest.fixture(scope="module")
def ccx():
    exe = shutil.which("ccx")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ccx (CalculiX) is not installed; .ci/run installs the Debian package calculix-ccx")
        pytest.skip("ccx (CalculiX) is not installed (Debian/Ubuntu: apt-get install calculix-ccx)")
    return exe


def run_ccx(exe, model, directory):
    write_inp(model, directory / "model.inp")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([exe, "-i", "model"], cwd=directory, capture_output=True, text=True, timeout=300, env=env)
    assert "Job finished" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
    return read_dat(directory / "model.dat")


def close(a, b):
    return np.max(np.abs(a - b)) <= TOL * np.max(np.abs(b))


def anisotropic_box(formulation):
    """A 4x3x3 box, every other cell fully anisotropic (21 distinct constants), the rest isotropic; the base
    tied to a fixed plate that is given a small rotation, the top to a free plate carrying a force and a
    moment; a prescribed side displacement and nodal forces on free and on tied nodes."""
    mesh = vf.box((10.0, 8.0, 6.0), (4, 3, 3))
    x = mesh.points
    A = np.random.default_rng(7).normal(size=(6, 6))
    C = np.repeat(elasticity.isotropic(np.array([1000.0]), np.array([0.3])), mesh.n_cells, axis=0)
    C[::2] = A @ A.T * 100.0 + 2000.0 * np.eye(6)
    model = vf.Model(mesh, C=C, formulation=formulation)
    bottom = np.flatnonzero(x[:, 2] < 1e-9)
    top = np.flatnonzero(x[:, 2] > 6.0 - 1e-9)
    base = model.rigid_plate(bottom).prescribe(translation=(0, 0, 0), rotation=(0.0, 0.0, 1e-4))
    plate = model.rigid_plate(top, center=(4.0, 3.0, 7.0)).load(force=(5.0, -3.0, -100.0),
                                                                  moment=(20.0, -10.0, 5.0))
    side = np.flatnonzero((x[:, 0] < 1e-9) & (x[:, 2] > 1.0) & (x[:, 2] < 5.0))
    model.prescribe(side, "y", 1e-3 * x[side, 2])
    model.add_force(np.flatnonzero(np.abs(x[:, 2] - 2.0) < 1e-9), (0.3, 0.2, 0.1))
    model.add_force(top[:3], (1.0, 2.0, 3.0))
    return model, base, plate


@pytest.mark.parametrize("formulation", ["full", "incompatible"])
def test_box_matches_calculix(ccx, tmp_path, formulation):
    """C3D8 = full integration; C3D8I = incompatible modes (identical on this box of parallelepiped cells)."""
    model, base, plate = anisotropic_box(formulation)
    sol = model.solve(solver="direct")
    res = run_ccx(ccx, model, tmp_path)
    n = model.mesh.n_points
    assert close(res["U"][:n], sol.displacement)
    # ccx's RF is the internal force K u at every node (vertebrafe's reaction subtracts applied loads)
    assert close(res["RF"][:n], sol.internal_forces)
    for k, p in enumerate((base, plate)):
        t, theta = sol.plate_motion(p)
        assert close(res["U"][n + 2 * k], t) and close(res["U"][n + 2 * k + 1], theta)
    # a plate's reaction from ccx: RF (internal forces) of its tied nodes minus the loads the plate carries
    force, moment = sol.plate_reaction(base)
    rf, r = res["RF"][base.nodes], model.mesh.points[base.nodes] - base.center
    applied = model.nodal_loads[base.nodes]
    assert close(rf.sum(axis=0) - applied.sum(axis=0) - base.force, force)
    assert close(np.cross(r, rf).sum(axis=0) - np.cross(r, applied).sum(axis=0) - base.moment, moment)
    assert np.linalg.norm(force) > 1.0 and np.linalg.norm(moment) > 1.0  # a real reaction was compared


def test_segment_with_rigid_plate_matches_calculix(ccx, tmp_path):
    """A coarse T12-L2 segment (anisotropic bone, disc) under a follower load with flexion: base fixed, top
    endplate on a rigid plate, follower guide forces as nodal forces."""
    seg = vf.segment(["T12", "L1", "L2"], bmd=100.0, element_size=8.0)
    model = vf.Model(seg.mesh, C=seg.elasticity, formulation="full")
    applied = vf.loads.apply(model, seg, vf.Load(compression=800.0, flexion=5.0, follower=True))
    sol = model.solve(solver="amg", rtol=1e-10)
    res = run_ccx(ccx, model, tmp_path)
    n = seg.mesh.n_points
    assert close(res["U"][:n], sol.displacement)
    assert close(res["RF"][:n], sol.internal_forces)
    t, theta = sol.plate_motion(applied.plate)
    assert close(res["U"][n], t) and close(res["U"][n + 1], theta)
    base = applied.base
    assert close(res["RF"][base].sum(axis=0), sol.internal_forces[base].sum(axis=0))
    assert abs(res["RF"][base, 2].sum()) > 700.0  # the base carries the compression


def spring_box(kind, fz, with_ligaments=True):
    """A 4 mm cube on a fixed base with four diagonal node-to-node springs ('lig', ``kind``) and one linear
    spring from an interpolated point (a cell centre, eight weights) to a base corner ('fib')."""
    from vertebrafe.springs import spring_set

    mesh = vf.box((4.0, 4.0, 4.0), (2, 2, 2))
    x = mesh.points
    model = vf.Model(mesh, E=100.0, nu=0.3, formulation="full")
    model.fix(mesh.node_sets["zmin"])
    top = mesh.node_sets["zmax"]
    if with_ligaments:
        model.add_springs(spring_set(x, np.array([0, 2, 6, 8]), top[[8, 6, 2, 0]], 50.0, kind=kind, name="lig"))
    model.add_springs(spring_set(x, mesh.cells[[7]], np.array([[0]]), 30.0, weights_a=np.full((1, 8), 0.125),
                                 name="fib"))
    model.add_force(top, (0.1 * abs(fz), 0.0, fz))
    return model


def test_linear_springs_match_calculix(ccx, tmp_path):
    """SPRINGA elements; the interpolated end is an extra node tied by *EQUATION: exact."""
    model = spring_box("linear", -5.0)
    sol = model.solve(solver="direct")
    res = run_ccx(ccx, model, tmp_path)
    n = model.mesh.n_points
    assert close(res["U"][:n], sol.displacement)
    without = spring_box("linear", -5.0, with_ligaments=False).solve(solver="direct")
    assert np.abs(without.displacement - sol.displacement).max() > 0.1 * np.abs(sol.displacement).max()


@pytest.mark.parametrize("kind, fz", [("tension", 0.005), ("tension", -0.005), ("compression", -0.005)])
def test_one_sided_springs_match_calculix_at_small_strain(ccx, tmp_path, kind, fz):
    """Nonlinear *SPRING tables need CalculiX's NLGEOM step (finite strain): at strains of 1e-4 it agrees with
    vertebrafe's small-strain active-set solution to 1e-3, far closer than the effect of the springs."""
    model = spring_box(kind, fz)
    with pytest.warns(ExportWarning, match="one-sided"):
        sol = model.solve(solver="direct")
        res = run_ccx(ccx, model, tmp_path)
    n = model.mesh.n_points
    u = sol.displacement
    assert np.abs(res["U"][:n] - u).max() <= 1e-3 * np.abs(u).max()
    active = sol.info["springs_active"]["lig"]
    assert active == (4 if (kind == "tension") == (fz > 0) else 0)
    without = spring_box(kind, fz, with_ligaments=False).solve(solver="direct").displacement
    if active:
        assert np.abs(without - u).max() > 0.1 * np.abs(u).max()
    else:
        assert close(u, without)


def two_blocks(kind, f_left, f_right, contact=True):
    """Two 4 mm cubes, one on the other, with separate coincident nodes at the interface: ``kind`` springs
    between them along a tilted normal (coincident ends: the line of action is not the line between the
    ends), soft linear springs along x, y and z in parallel, and a linear spring along an explicit
    direction between two cell centres (interpolated ends); the base fixed, the top held in x and y and
    pushed or pulled in z on its left and right edges."""
    from vertebrafe.springs import spring_set

    cube = vf.box((4.0, 4.0, 4.0), (2, 2, 2))
    x0 = cube.points
    pts = np.concatenate([x0, x0 + [0.0, 0.0, 4.0]])
    cells = np.concatenate([cube.cells, cube.cells + len(x0)])
    model = vf.Model(vf.Mesh(pts, cells), E=100.0, nu=0.3, formulation="full")
    model.fix(np.flatnonzero(pts[:, 2] < 1e-9))
    a = np.flatnonzero(np.abs(pts[:len(x0), 2] - 4.0) < 1e-9)
    b = len(x0) + np.flatnonzero(np.abs(x0[:, 2]) < 1e-9)
    a, b = a[np.lexsort(pts[a][:, :2].T)], b[np.lexsort(pts[b][:, :2].T)]
    n = np.array([0.3, 0.0, 1.0]) / np.hypot(0.3, 1.0)
    if contact:
        model.add_springs(spring_set(pts, a, b, 200.0, kind=kind, direction=np.tile(n, (len(a), 1)), name="contact"))
    for e, name in zip(np.eye(3), "xyz"):
        model.add_springs(spring_set(pts, a, b, 20.0, direction=np.tile(e, (len(a), 1)), name=f"soft_{name}"))
    model.add_springs(spring_set(pts, cells[[7]], cells[[8]], 40.0, weights_a=np.full((1, 8), 0.125),
                                 weights_b=np.full((1, 8), 0.125), direction=(0.0, 0.6, 0.8), name="embedded"))
    top = np.flatnonzero(pts[:, 2] > 8.0 - 1e-9)
    model.fix(top, "x")
    model.fix(top, "y")
    model.add_force(top[pts[top, 0] < 1.0], (0.0, 0.0, f_left))
    model.add_force(top[pts[top, 0] > 3.0], (0.0, 0.0, f_right))
    return model


@pytest.mark.parametrize("kind, f_left, f_right, active", [
    ("linear", -0.01, 0.002, 9), ("compression", -0.01, -0.002, 9), ("compression", -0.01, 0.01, 3),
    ("tension", 0.01, -0.005, 6)])
def test_springs_off_the_line_between_their_ends_match_calculix(ccx, tmp_path, kind, f_left, f_right, active):
    """Springs along an explicit direction (contact across an interface, as the facet joints): an elongation
    node per spring tied by *EQUATION, on a SPRINGA along x. Linear: exact; one-sided (NLGEOM step): to the
    order of the strains, with the contact partly open, far closer than the effect of the contact."""
    model = two_blocks(kind, f_left, f_right)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        sol = model.solve(solver="direct")
        res = run_ccx(ccx, model, tmp_path)
    n = model.mesh.n_points
    u = sol.displacement
    assert sol.info["springs_active"]["contact"] == active
    assert np.abs(res["U"][:n] - u).max() <= (TOL if kind == "linear" else 1e-3) * np.abs(u).max()
    without = two_blocks(kind, f_left, f_right, contact=False).solve(solver="direct").displacement
    assert np.abs(without - u).max() > 0.1 * np.abs(u).max()


def test_default_segment_with_posterior_elements_matches_calculix(ccx, tmp_path):
    """The default model (posterior elements: facet contact along the joint normal, tension-only ligaments)
    under a small extension moment: CalculiX's NLGEOM step agrees with the active-set solution to the order
    of the strains (the difference falls in proportion to the load: 10 % of the largest displacement at
    7.5 N m, 0.9 % at 0.75 N m, 0.09 % here), with the same joints closed and ligaments taut."""
    from vertebrafe.simulate import build_model

    seg = vf.segment("L4-L5", bmd=120.0, element_size=8.0, fibres=False, nucleus="solid")
    model = build_model(seg, vf.Load(compression=0.0, extension=0.075), formulation="full")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        sol = model.solve(solver="direct")
        res = run_ccx(ccx, model, tmp_path)
    n = seg.mesh.n_points
    u, uc = sol.displacement, res["U"][:n]
    assert np.abs(uc - u).max() <= 3e-3 * np.abs(u).max()
    for ss in model.springs:
        mine = ss.group_forces(u)
        theirs = ss.group_forces(uc, active=ss.wants_active(ss.elongation(uc)))
        assert theirs.keys() == mine.keys()
        for key, f in mine.items():
            assert abs(theirs[key] - f) <= 0.01 * max(abs(f), 0.01), (ss.name, key)
    facets = next(s for s in model.springs if s.name == "facet_joints").group_forces(u)
    assert min(facets.values()) < -0.1                      # both joints closed in extension


def prestressed_layer(formulation):
    """A 2 x 2 x 6 mm column on a fixed base, its middle third with a general initial stress (pressure and
    three distinct shears) and a softer material: a pre-stressed region inside elastic ones. ``formulation``
    ``"tetra"`` / ``"tetra10"``: the hex8 cells split into tetrahedra, full integration."""
    from vertebrafe.verification import tetra_mesh

    mesh = vf.box((2.0, 2.0, 6.0), (2, 2, 6))
    if formulation.startswith("tetra"):
        mesh, formulation = tetra_mesh(mesh, quadratic=formulation == "tetra10"), "full"
    inner = np.abs(mesh.cell_centers()[:, 2] - 3.0) < 1.0
    model = vf.Model(mesh, E=np.where(inner, 1.0, 20.0), nu=np.where(inner, 0.45, 0.3), formulation=formulation)
    model.fix(np.flatnonzero(mesh.points[:, 2] < 1e-9))
    stress = np.zeros((mesh.n_cells, 6))
    stress[inner] = (-0.2, -0.2, -0.2, 0.05, 0.03, -0.02)          # xx, yy, zz, xy, yz, xz
    model.initial_stress = stress
    return model


@pytest.mark.parametrize("formulation", ["full", "incompatible", "tetra", "tetra10"])
def test_initial_stress_matches_calculix(ccx, tmp_path, formulation):
    """*INITIAL CONDITIONS, TYPE=STRESS at every integration point (C3D8, C3D8I, C3D4, C3D10): CalculiX's stress is C eps + sigma_0 as
    vertebrafe's, so the displacements and the internal forces (those of sigma_0 included) agree to round-off.
    With the yz and xz shears written in vertebrafe's order instead of Abaqus's, U differs by more than 100 %."""
    model = prestressed_layer(formulation)
    sol = model.solve(solver="direct")
    res = run_ccx(ccx, model, tmp_path)
    n = model.mesh.n_points
    assert close(res["U"][:n], sol.displacement)
    assert close(res["RF"][:n], sol.internal_forces)
    assert np.abs(sol.displacement).max() > 0.1                    # the pre-stress moves the column


def test_prestressed_segment_matches_calculix(ccx, tmp_path):
    """L4-L5 body-disc-body (8 mm; no one-sided springs, so a linear step) with the nucleus pre-pressure
    0.1 MPa under a 500 N follower load: the model simulate solves (``prestressed_model``: the rest state's
    swelling stress -s I in the nucleus cells) gives CalculiX's displacements and internal forces to 1e-6, with
    s at the 8 points of every nucleus cell; without the pre-stress they would differ by more than 10 %."""
    from vertebrafe.simulate import build_model, prestressed_model
    from vertebrafe.swelling import nucleus_cells

    seg = vf.segment("L4-L5", bmd=120.0, element_size=8.0, posterior=False, nucleus_prepressure=0.1)
    load = vf.Load(compression=500.0, follower=True)
    model, _, rest = prestressed_model(seg, load, "full", solver="direct")
    sol = model.solve(solver="direct")
    res = run_ccx(ccx, model, tmp_path)
    n = seg.mesh.n_points
    assert close(res["U"][:n], sol.displacement)
    assert close(res["RF"][:n], sol.internal_forces)
    text = (tmp_path / "model.inp").read_text()
    rows = text.split("*INITIAL CONDITIONS, TYPE=STRESS\n")[1].split("*")[0].splitlines()
    cells = nucleus_cells(seg)["L4-L5"]
    assert len(rows) == 8 * cells.size
    s = rest.info["swelling_stress"]["L4-L5"]
    first = [float(v) for v in rows[0].split(",")]
    assert first[:2] == [cells[0] + 1, 1] and first[2:] == pytest.approx([-s, -s, -s, 0, 0, 0], rel=1e-12)
    plain = build_model(seg, load, "full")[0].solve(solver="direct").displacement
    assert np.abs(plain - sol.displacement).max() > 0.1 * np.abs(sol.displacement).max()
