"""Posterior elements, facet joints and ligaments: mesh conformity, the unchanged body-disc stack,
equilibrium with one-sided springs, left/right symmetry, slack and taut ligaments, facet contact."""
import numpy as np
import pytest

from vertebrafe.anatomy import segment
from vertebrafe.errors import InputError
from vertebrafe.loads import Load
from vertebrafe.simulate import simulate

H = 4.0


@pytest.fixture(scope="module")
def seg():
    """Without the nucleus swelling pre-pressure (its rest state costs several solves before the loads of each
    simulate call): the documented verdicts guarded here (docs/validation.md, intact range of motion and facet
    forces at L4-L5) were measured from stress-free discs (``--prepressure 0``), and equilibrium, symmetry, the
    ligament laws and the facet gap do not depend on the rest state. The rest state with posterior elements is
    solved in tests/test_swelling.py and tests/anatomy/test_posture_share.py."""
    return segment("L4-L5", bmd=120.0, element_size=H, posterior=True, fibres=False, nucleus="solid",
                   nucleus_prepressure=0.0)


@pytest.fixture(scope="module")
def results(seg):
    loads = [Load(compression=500.0, name="compression"), Load(compression=0.0, flexion=7.5, name="flexion"),
             Load(compression=0.0, extension=7.5, name="extension"),
             Load(compression=0.0, axial_rotation=7.5, name="rotation"),
             Load(compression=0.0, flexion=15.0, name="flexion 15")]
    out = simulate(seg, loads, factor_of_risk=False, solver="direct")
    return {r.load.name: r for r in out}


def test_stack_unchanged_and_arches_conform(seg):
    plain = segment("L4-L5", bmd=120.0, element_size=H, fibres=False, nucleus="solid", posterior=False)
    n, c = plain.mesh.n_points, plain.mesh.n_cells
    assert seg.stack_points == n and seg.stack_cells == c
    assert np.array_equal(seg.mesh.points[:n], plain.mesh.points)          # bit for bit
    assert np.array_equal(seg.mesh.cells[:c], plain.mesh.cells)
    assert np.array_equal(seg.elasticity[:c], plain.elasticity)
    arch = seg.mesh.cells[c:]
    assert arch.size and np.all(seg.mesh.cell_volumes()[c:] > 0)
    assert np.isin(arch, np.arange(n)).any()                              # pedicles share body nodes
    # no duplicated node positions: the arch is tied to the body through shared nodes only
    _, counts = np.unique(np.round(seg.mesh.points, 9), axis=0, return_counts=True)
    assert counts.max() == 1
    names = seg.mesh.tag_names["region"]
    assert {names[int(r)] for r in np.unique(seg.mesh.cell_data["region"][c:])} == {"posterior"}


def test_articular_processes_overlap_over_the_facet_height(seg):
    """The inferior process of L4 and the superior process of L5 overlap, along the disc axis, over the facet
    height sqrt(area) (13.5 mm at L4-L5; the joint band) to within one cell, and the joint's contact points
    spread over that height: behind the lordotic disc the former reach rule left them overlapping by about
    1 mm."""
    from vertebrafe.anatomy.ligaments import joint_pairs
    from vertebrafe.anatomy.posterior_levels import facet_dimensions

    P = seg.mesh.points
    a = seg.frames["L4"][0][:, 2] + seg.frames["L5"][0][:, 2]
    a /= np.linalg.norm(a)
    f = np.sqrt(facet_dimensions("L4-L5")["area"])
    for side in ("left", "right"):
        zi = P[seg.posterior.arches["L4"].iap[side]] @ a
        zs = P[seg.posterior.arches["L5"].sap[side]] @ a
        overlap = min(zi.max(), zs.max()) - max(zi.min(), zs.min())
        assert f - H <= overlap <= f + H
        na, wa, _, _, share = joint_pairs(seg, "L4-L5", side)
        zc = np.einsum("kp,kpi->ki", wa, P[na]) @ a
        # height of the contact area: sqrt(12 x its second moment along the axis), exact under the degree-2
        # quadrature (a band of uniform height f gives f)
        height = np.sqrt(12.0 * np.sum(share * (zc - share @ zc) ** 2))
        assert share.sum() == pytest.approx(1.0) and 0.8 * f <= height <= 1.2 * f


def test_bad_flag():
    with pytest.raises(InputError, match="posterior"):
        segment("L4-L5", element_size=H, posterior="yes")


def test_equilibrium_and_load_paths(results):
    r = results["compression"]
    # base reaction balances the applied load, springs included
    assert abs(r.value("reaction_force_z") - 500.0) < 1e-6 * 500.0 or abs(r.value("reaction_force_z") + 500.0) < 1e-6 * 500.0
    paths = [r.value("axial_force", "L4-L5", k) for k in ("disc", "longitudinal_ligaments", "posterior")]
    assert paths[0] < 0 and abs(sum(paths) + 500.0) < 0.03 * 500.0      # the three paths carry the level's load
    share = r.value("load_share", "L4-L5", "posterior")
    assert abs(share) < 0.3                                              # a minor path under pure compression
    for lig in ("PLL", "LF", "ISL", "SSL", "ITL"):                       # the segment shortens: slack
        assert r.value("ligament_force", "L4-L5", lig) == 0.0


def test_symmetry_and_ligament_states(results):
    fl, ex = results["flexion"], results["extension"]
    lf = fl.value("facet_force", "L4-L5", "facet_left")
    rf = fl.value("facet_force", "L4-L5", "facet_right")
    assert abs(lf - rf) <= 1e-6 * max(1.0, lf)
    for lig in ("ISL", "SSL", "LF"):
        assert fl.value("ligament_force", "L4-L5", lig) > 1.0             # taut in flexion
        assert ex.value("ligament_force", "L4-L5", lig) == 0.0            # slack in extension
    assert fl.value("ligament_force", "L4-L5", "ALL") == 0.0
    assert ex.value("ligament_force", "L4-L5", "ALL") > 1.0
    # the joints close in extension; in flexion at most their upper parts touch, with far less force
    assert ex.value("facet_force", "L4-L5", "facet_left") > 4.0 * max(lf, 1.0)


def test_axial_rotation_loads_one_facet(results):
    r = results["rotation"]
    f = [r.value("facet_force", "L4-L5", f"facet_{s}") for s in ("left", "right")]
    assert max(f) > 20.0 and min(f) < 0.05 * max(f)


def test_intact_rotations_and_facet_forces_inside_published_spreads(results):
    """The documented verdicts of docs/validation.md ("Intact range of motion against an in vitro spread",
    "Facet forces at L4-L5"), with bands from the literature only. At 7.5 N m without preload the intact
    L4-L5 with the fibre-free disc rotates in flexion, extension and axial rotation within one SD of the
    intact L3-L4 means of Niosi et al. 2006 (ROM_REFERENCES; its lateral bending, 0.07 deg below that band,
    is a documented miss and not run here), and its facet joint forces lie within one SD of the in vitro
    means of Jaumard et al. 2011 (FACET_FORCE_REFERENCE): each joint in extension, the loaded joint in axial
    rotation. Both references are of other levels (L3-L4, L1-L2); no L4-L5 spread was found."""
    from vertebrafe.validation import FACET_FORCE_REFERENCE, ROM_MODES, ROM_REFERENCES, rom_rows

    niosi = [r for r in ROM_REFERENCES if r.name == "niosi2006_L3-L4"]
    cases = {"flexion": "flexion", "extension": "extension", "axial_rotation": "rotation"}
    rot = {(mode, 7.5): results[name].value(ROM_MODES[mode][1], "L4-L5", "disc") for mode, name in cases.items()}
    rows = rom_rows(rot, specimen="intact", references=niosi)
    assert len(rows) == 3 and all(row["inside"] for row in rows), rows
    forces = {"extension": [results["extension"].value("facet_force", "L4-L5", f"facet_{s}") for s in ("left", "right")],
              "axial_rotation": [max(results["rotation"].value("facet_force", "L4-L5", f"facet_{s}")
                                     for s in ("left", "right"))]}
    for mode, (mean, sd) in FACET_FORCE_REFERENCE.items():
        assert all(mean - sd <= f <= mean + sd for f in forces[mode]), (mode, forces[mode])


def test_fracture_vp_bkp_keep_the_arches(seg):
    from vertebrafe.clinical import fracture, kyphoplasty, vertebroplasty

    s = segment("T12-L2", bmd=80.0, element_size=H, posterior=True, fibres=False)
    n = s.stack_cells
    v0 = s.mesh.cell_volumes()[n:]
    for kind in ("wedge", "crush"):
        f = fracture(s, "L1", kind=kind, grade=3)
        ratio = f.mesh.cell_volumes()[n:] / v0
        assert ratio.min() > 0.7 and ratio.max() < 1.05               # arches keep their shape
        # the arch of the level below is untouched
        l2 = s.posterior.arches["L2"].nodes
        assert np.array_equal(f.mesh.points[l2], s.mesh.points[l2])
    for treated in (vertebroplasty(f, "L1"), kyphoplasty(fracture(s, "L1", kind="wedge", grade=2), "L1")):
        assert treated.posterior is not None
        assert {x.name for x in treated.spring_sets()} >= {"facet_joints", "ligaments"}
        assert np.all(treated.mesh.cell_volumes() > 0)


def test_ligaments_follow_the_piecewise_linear_law(results):
    """Every ligament node pair carries exactly its share of the published piecewise-linear, tension-only
    whole-ligament law of its elongation (J Healthc Eng 2021 Table 2): the first spring from zero
    elongation, the parallel stiffening springs only beyond their transition elongations. 15 N m of flexion
    takes pairs past a transition (both regimes are exercised)."""
    from vertebrafe.anatomy.posterior_levels import LIGAMENT_STIFFENING, LIGAMENTS, ligament_law

    r = results["flexion 15"]
    s = next(x for x in r.solution.model.springs if x.name == "ligaments")
    u = r.solution.displacement
    d = s.elongation(u)
    F = r.solution.spring_forces("ligaments")
    names = np.array([s.group_names[g].split(":")[1] for g in s.group])
    beyond = 0
    for part in LIGAMENTS:
        sel = np.flatnonzero(names == part)
        pairs = {}
        for i in sel:                                     # the springs of each member (one attachment pair)
            pairs.setdefault(int(s.member[i]), []).append(i)
        steps = LIGAMENT_STIFFENING[part][0]
        for idx in pairs.values():
            assert all(np.array_equal(x[idx[0]], x[j]) for x in (s.nodes_a, s.weights_a, s.nodes_b, s.weights_b)
                       for j in idx)                      # one pair of end points
            assert len(idx) == 1 + len(steps)
            assert np.ptp(d[idx]) < 1e-12
            share = s.stiffness[min(idx)] / LIGAMENTS[part][0]         # the pair's share of its ligament
            expected = float(ligament_law(part, d[idx[0]])) * share
            assert F[idx].sum() == pytest.approx(expected, rel=1e-9, abs=1e-9)
            beyond += d[idx[0]] > steps[0][1]
    assert beyond > 0
    # the law itself: the published stiffness in each strain range (SSL 2.5 / 5.3 / 34 N/mm from 0 / 20 / 25 %
    # of its 27.49 mm)
    e1, e2 = 0.20 * 27.49, 0.25 * 27.49
    assert [s[1] for s in LIGAMENT_STIFFENING["SSL"][0]] == pytest.approx([e1, e2])
    for lo, hi, k in ((0.0, e1, 2.5), (e1, e2, 5.3), (e2, e2 + 1.0, 34.0)):
        assert float(ligament_law("SSL", hi) - ligament_law("SSL", lo)) == pytest.approx(k * (hi - lo))
    assert float(ligament_law("SSL", -1.0)) == 0.0


def test_ligament_member_totals_follow_the_law_at_several_strains(seg):
    """Each ligament attachment pair is one member of stacked springs; under a uniform dilation ``e`` (every
    pair with ends apart elongates by ``e`` times its length) the member totals equal the pair's share of the
    whole-ligament law (closed form of J Healthc Eng 2021 Table 2) at strains below, between and beyond its
    transitions, and zero in compression; the per-ligament sums count each pair once."""
    from vertebrafe.anatomy.ligaments import ligament_springs
    from vertebrafe.anatomy.posterior_levels import LIGAMENT_STIFFENING, LIGAMENTS, ligament_law

    s = ligament_springs(seg)
    first, _ = s.member_totals(np.zeros(s.size))
    assert np.array_equal(np.sort(first), np.arange(first.size))             # the first segment of each pair
    assert np.all(s.onset[first] == 0.0) and first.size < s.size
    part = np.array([s.group_names[g].split(":")[1] for g in s.group[first]])
    share = s.stiffness[first] / np.array([LIGAMENTS[p][0] for p in part])
    stretched = s.length[first] > 1.0                          # the capsules' ends coincide (contact points)
    x0 = seg.mesh.points.mean(axis=0)
    passed = set()
    for e in (-0.05, 0.05, 0.15, 0.3, 0.6, 1.2, 4.0):
        u = e * (seg.mesh.points - x0)
        d = s.elongation(u)
        _, total = s.member_totals(s.forces(u, s.wants_active(d)))
        dm = d[first]
        assert np.allclose(dm[stretched], e * s.length[first][stretched], rtol=1e-9)
        expected = np.array([float(ligament_law(p, x)) for p, x in zip(part, dm)]) * share
        assert np.allclose(total, expected, rtol=1e-10, atol=1e-9)
        if e < 0:
            assert np.all(total[stretched] == 0.0)
        for p, x in zip(part[stretched], dm[stretched]):
            passed |= {(p, i) for i, (_, onset) in enumerate(LIGAMENT_STIFFENING[p][0]) if x > onset}
    assert {(p, 1) for p in ("ALL", "PLL", "LF", "ISL", "SSL", "ITL")} <= passed    # beyond both transitions


def test_ligament_stiffness_totals_are_the_sourced_values(seg):
    """Closed-form bookkeeping: the first-segment stiffnesses of a ligament's node pairs add up to its sourced
    stiffness, whatever the number of pairs the mesh gives it: per ligament (ALL, PLL, LF, ISL, SSL), per side
    (intertransverse) and per joint (capsular); the facet springs add up to ``E A / (2 t)`` per joint."""
    from vertebrafe.anatomy.ligaments import facet_springs, ligament_springs
    from vertebrafe.anatomy.posterior_levels import FACET_CARTILAGE, LIGAMENTS, facet_dimensions

    s = ligament_springs(seg)
    x = np.einsum("kp,kp->k", s.weights_a, seg.mesh.points[s.nodes_a][..., 0])      # x of the upper end
    first = s.onset == 0.0
    for g, label in s.group_names.items():
        part = label.split(":")[1]
        sel = first & (s.group == g)
        if part in ("ITL", "CL"):
            for side in (x < 0, x > 0):
                assert s.stiffness[sel & side].sum() == pytest.approx(LIGAMENTS[part][0], rel=1e-12)
            assert sel.sum() >= 2
        else:
            assert s.stiffness[sel].sum() == pytest.approx(LIGAMENTS[part][0], rel=1e-12)
    f = facet_springs(seg)
    E, t = FACET_CARTILAGE["modulus"][0], FACET_CARTILAGE["thickness"][0]
    for g, label in f.group_names.items():
        assert f.stiffness[f.group == g].sum() == pytest.approx(E * facet_dimensions("L4-L5")["area"] / (2 * t), rel=1e-12)


def test_level_moments_balance_and_resisting_structures(results):
    """The moments that the disc, each facet joint and each ligament carry across L4-L5 add up to the applied
    moment (conservation, to 1e-6 of it), and the structures that resist each mode do: the posterior
    ligaments in flexion, the facets and the ALL in extension, the loaded facet in axial rotation."""
    from vertebrafe.post.posterior import level_moments

    axis = {"flexion": 0, "extension": 0, "rotation": 2}
    for name, r in results.items():
        M = level_moments(r.segment, r.solution, "L4-L5")
        applied = M.pop("applied")
        total = sum(M.values())
        scale = max(np.abs(applied).max(), 1.0)
        assert np.abs(total - applied).max() < 1e-6 * scale
        i = axis.get(name)
        if i is None:
            continue
        sign = np.sign(applied[i])
        assert abs(applied[i]) == pytest.approx(7500.0, rel=0.02)          # N mm, the applied pure moment
        assert sign * M["disc"][i] > 0.1 * abs(applied[i])                 # the disc always carries a part
        resist = {"flexion": ("ISL", "SSL", "LF"), "extension": ("facet_left", "facet_right", "ALL"),
                  "rotation": ("facet_left", "facet_right")}[name]
        assert all(sign * M[k][i] >= -1e-9 for k in resist)
        assert sum(sign * M[k][i] for k in resist) > 0.05 * abs(applied[i])


def test_facet_gap_delays_contact(seg):
    """A clearance between the facet layers: the joints carry nothing until they have closed by the gap,
    and the extension facet force falls as the gap grows (the trend of Sharma et al. 1998, J Biomech Eng
    120:118: facet loads increase as the initial gap decreases). Equilibrium holds to 1e-6 throughout."""
    from vertebrafe.anatomy.ligaments import facet_springs

    forces = []
    for gap in (0.0, 0.05, 0.2, 4.0):
        out = simulate(_with_facet_gap(seg, gap), [Load(compression=0.0, extension=7.5)], factor_of_risk=False,
                       solver="direct")[0]
        f = out.value("facet_force", "L4-L5", "facet_left")
        assert f == pytest.approx(out.value("facet_force", "L4-L5", "facet_right"), rel=1e-6, abs=1e-9)
        facets = next(x for x in out.solution.model.springs if x.name == "facet_joints")
        closure = -facets.elongation(out.solution.displacement)
        F = out.solution.spring_forces("facet_joints")
        assert np.all(F[closure <= gap] == 0.0) and np.all(F[closure > gap + 1e-9] < 0.0)
        forces.append(f)
        moment = np.linalg.norm([out.value(f"reaction_moment_{c}") for c in "xyz"])
        assert moment == pytest.approx(7.5, rel=1e-6)                   # the base carries the moment
    assert forces[0] > forces[1] > forces[2] >= forces[3] >= 0.0
    with pytest.raises(InputError, match="facet gap"):
        facet_springs(seg, gap=-0.1)


def _with_facet_gap(seg, gap):
    """``seg`` whose facet springs have clearance ``gap`` (mm)."""
    import copy

    from vertebrafe.anatomy import ligaments

    out = copy.copy(seg)
    sets = [ligaments.facet_springs(seg, gap=gap) if s.name == "facet_joints" else s for s in seg.spring_sets()]
    out.spring_sets = lambda: sets
    return out


def _process_layers_and_volume(seg, v):
    """Cell layers of ``v``'s articular processes below and above its body (distinct heights of the arch
    cells' centres there, local frame) and the volume of its arch (mm^3)."""
    m = seg.mesh
    R, o = seg.frames[v]
    body = m.cells_in("level", v) & ~m.cells_in("region", "posterior")
    zb = ((m.points[np.unique(m.cells[body])] - o) @ R)[:, 2]
    own = m.cells_in("level", v) & m.cells_in("region", "posterior")
    z = ((m.cell_centers()[own] - o) @ R)[:, 2]
    below, above = (len(np.unique(np.round(z[sel], 6))) for sel in (z < zb.min(), z > zb.max()))
    return below, above, float(m.cell_volumes()[own].sum())


def test_articular_refinement_multiplies_the_processes_layers():
    """``articular_refinement=2`` doubles the cell layers of the articular processes beyond the bodies and
    changes nothing else: the body-disc stack bit for bit, the arch conforming (no duplicated node, no inverted
    cell), each arch's volume within 2 % (the processes keep their extent); other values are rejected by name."""
    kw = dict(bmd=100.0, element_size=H, posterior=True, nucleus_prepressure=0.0)
    base = segment("T12-L2", **kw)
    fine = segment("T12-L2", articular_refinement=2, **kw)
    assert (base.posterior.articular_refinement, fine.posterior.articular_refinement) == (1, 2)
    n, c = base.stack_points, base.stack_cells
    assert (fine.stack_points, fine.stack_cells) == (n, c)
    assert np.array_equal(fine.mesh.points[:n], base.mesh.points[:n])
    assert np.array_equal(fine.mesh.cells[:c], base.mesh.cells[:c])
    assert np.all(fine.mesh.cell_volumes()[c:] > 0)
    _, counts = np.unique(np.round(fine.mesh.points, 9), axis=0, return_counts=True)
    assert counts.max() == 1
    for v in base.levels:
        b_lo, b_hi, b_vol = _process_layers_and_volume(base, v)
        f_lo, f_hi, f_vol = _process_layers_and_volume(fine, v)
        assert b_lo >= 2 and b_hi >= 2 and (f_lo, f_hi) == (2 * b_lo, 2 * b_hi)
        assert f_vol == pytest.approx(b_vol, rel=0.02)
    for bad in (0, 5, 1.5, True, "2"):
        with pytest.raises(InputError, match=r"articular_refinement = .*allowed an integer 1 .* to 4"):
            segment("L4-L5", element_size=H, articular_refinement=bad)
    with pytest.raises(InputError, match=r"articular_refinement = 2 needs the posterior elements"):
        segment("L4-L5", element_size=H, posterior=False, articular_refinement=2)
