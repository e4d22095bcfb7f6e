"""Facet contact spread over the joint area: the joint's stiffness, its force and moment under a rigid
relative motion of the two vertebrae do not depend on the mesh, and every contact pair balances in force
and moment."""
import numpy as np
import pytest

from vertebrafe.anatomy import segment
from vertebrafe.anatomy.ligaments import facet_normal, facet_springs, ligament_springs
from vertebrafe.anatomy.posterior_levels import (FACET_CARTILAGE, LIGAMENT_STIFFENING, LIGAMENTS, facet_dimensions,
                                               posterior_dimensions)

SIZES = (4.0, 3.0, 2.0)


@pytest.fixture(scope="module")
def segments():
    return {h: segment("L4-L5", bmd=120.0, element_size=h, posterior=True, fibres=False, nucleus="solid")
            for h in SIZES}


def _joint_response(seg):
    """Per joint: force (N) and moment about the axis (N mm) per radian of a rigid rotation of L5 about each
    axis through L5's origin, and per mm of a rigid translation of L5 along the joint normal (L4 fixed)."""
    fs = facet_springs(seg)
    fs.active[:] = True
    P = seg.mesh.points
    lower = np.unique(seg.mesh.cells[seg.mesh.cells_in("level", "L5")])
    c = seg.frames["L5"][1]
    x = np.einsum("kp,kpi->ki", fs.weights_a, P[fs.nodes_a])               # contact points
    out = {}
    for g, name in fs.group_names.items():
        sel = fs.group == g
        n = fs.direction[sel][0]
        rows = []
        for u_of in [lambda p, e=e: np.cross(e, p - c) for e in np.eye(3)] + [lambda p: np.broadcast_to(-n, p.shape)]:
            u = np.zeros_like(P)
            u[lower] = u_of(P[lower])
            F = fs.forces(u)[sel]
            moment = np.cross(x[sel] - c, -F[:, None] * fs.direction[sel]).sum(axis=0)
            rows.append((F.sum(), np.linalg.norm(moment)))
        out[name] = np.array(rows)
    return fs, out


def test_joint_stiffness_force_and_moment_do_not_depend_on_the_mesh(segments):
    E, t = FACET_CARTILAGE["modulus"][0], FACET_CARTILAGE["thickness"][0]
    k_joint = E * facet_dimensions("L4-L5")["area"] / (2.0 * t)
    resp = {}
    for h, seg in segments.items():
        fs, resp[h] = _joint_response(seg)
        for g in fs.group_names:
            assert fs.stiffness[fs.group == g].sum() == pytest.approx(k_joint, rel=1e-12)
        # closing the joint by 1 mm along its normal: the whole joint stiffness, exactly
        for name, r in resp[h].items():
            assert r[3, 0] == pytest.approx(-k_joint, rel=1e-9)
        # mirror symmetry: left and right joints respond alike
        assert np.allclose(np.abs(resp[h]["L4-L5:left"][[0, 3]]), np.abs(resp[h]["L4-L5:right"][[0, 3]]), rtol=1e-9)
    for name in resp[SIZES[0]]:
        ref = resp[SIZES[-1]][name]
        for h in SIZES[:-1]:
            # force and moment under rotations: within 1 % of the finest mesh (the old node-pair contact
            # moved by a few % with the pairs' number and place)
            assert np.allclose(resp[h][name][:3], ref[:3], rtol=0.01, atol=1e-3 * np.abs(ref[:3]).max()), (h, name)


def test_every_contact_pair_balances_in_force_and_moment(segments):
    seg = segments[SIZES[0]]
    fs = facet_springs(seg)
    rng = np.random.default_rng(3)
    F = rng.normal(size=fs.size) * 100.0                                      # any spring forces, N
    f = (fs.gradient(seg.mesh.n_points).T @ F).reshape(-1, 3)                # nodal forces
    assert np.abs(f.sum(axis=0)).max() < 1e-9 * np.abs(F).sum()
    moment = np.cross(seg.mesh.points, f).sum(axis=0)
    assert np.abs(moment).max() < 1e-9 * np.abs(F).sum() * np.abs(seg.mesh.points).max()


def test_joint_faces_and_ligament_attachments_do_not_depend_on_the_mesh(segments):
    """The meshed joint faces lie on the specified joint plane, the canal and the spinous process have their
    specified widths and the spinous base its height, and each broad ligament (ALL, PLL, LF, ISL)
    spreads its stiffness over the same width or length at every element size: its stiffness-weighted
    centroid and spread at each end agree across 4/3/2 mm (the former node-set attachments took the nodes
    that fell inside the width, a spread that moved by up to a third with the mesh)."""
    stats = {}
    for h, seg in segments.items():
        P = seg.mesh.points
        for v in ("L4", "L5"):
            R, o = seg.frames[v]
            arch = seg.posterior.arches[v]
            for side, s in (("right", 1.0), ("left", -1.0)):
                assert np.allclose((P[arch.iap[side]] - o) @ R[:, 0], s * arch.joint_x, atol=1e-9)
                assert np.allclose((P[arch.sap[side]] - o) @ R[:, 0], s * arch.joint_x, atol=1e-9)
            # the canal's width at the laminae, the spinous process's thickness and the height of its base
            pd = posterior_dimensions(v)
            assert np.abs((P[arch.lamina_bottom] - o) @ R[:, 0]).max() == pytest.approx(0.5 * pd["canal_width"], abs=1e-9)
            sp = (P[arch.spinous_bottom[1:]] - o) @ R
            assert np.allclose(sp[:, 2], ((P[arch.spinous_top] - o) @ R)[0, 2] - pd["spinous_height"], atol=1e-9)
            own = seg.mesh.cells_in("level", v) & seg.mesh.cells_in("region", "posterior")
            spin = (P[np.unique(seg.mesh.cells[own])] - o) @ R
            behind = spin[spin[:, 1] < sp[:, 1].max() - 1e-6]
            assert np.abs(behind[:, 0]).max() == pytest.approx(0.5 * pd["spinous_thickness"], abs=1e-9)
        ls = ligament_springs(seg)
        primary = ls.onset == 0.0
        for g, name in ls.group_names.items():
            lig = name.split(":")[1]
            if lig not in ("ALL", "PLL", "LF", "ISL"):
                continue
            sel = (ls.group == g) & primary
            k = ls.stiffness[sel] / ls.stiffness[sel].sum()
            for end, v, nodes, w in (("a", "L4", ls.nodes_a, ls.weights_a), ("b", "L5", ls.nodes_b, ls.weights_b)):
                R, o = seg.frames[v]
                x = (np.einsum("kp,kpi->ki", w[sel], P[nodes[sel]]) - o) @ R              # local frame, mm
                mean = k @ x
                stats.setdefault((lig, end), {})[h] = (mean, np.sqrt(k @ (x - mean) ** 2))
    for key, by_size in stats.items():
        axis = 1 if key[0] == "ISL" else 0                # along the spinous process / across the midline
        mean_ref, spread_ref = by_size[SIZES[-1]]
        for h in SIZES[:-1]:
            mean, spread = by_size[h]
            assert spread[axis] == pytest.approx(spread_ref[axis], rel=0.01), (key, h)
            assert np.abs(mean - mean_ref).max() < 0.6, (key, h)               # mm; the outline's chords


@pytest.fixture(scope="module")
def thoracolumbar():
    return {h: segment("T12-L2", bmd=100.0, element_size=h, posterior=True) for h in (4.0, 3.0, 2.0, 1.5)}


def _capsules(seg):
    """Per joint ``(disc, side)``: the mask of its capsule's first-segment springs, all of its springs, the contact
    points ``(k, 3)`` of the set, the lower vertebra's frame and nodes; and the ligament springs."""
    P = seg.mesh.points
    ls = ligament_springs(seg)
    x = np.einsum("kp,kpi->ki", ls.weights_a, P[ls.nodes_a])
    out = {}
    for disc in seg.discs:
        lower = disc.split("-")[1]
        R, o = seg.frames[lower]
        nodes = np.unique(seg.mesh.cells[seg.mesh.cells_in("level", lower)])
        g = [g for g, name in ls.group_names.items() if name == f"{disc}:CL"][0]
        for side, s in (("right", 1.0), ("left", -1.0)):
            sel = (ls.group == g) & (s * ((x - o) @ R[:, 0]) > 0)
            out[(disc, side)] = (sel & (ls.onset == 0.0), sel, x, R, nodes)
    return ls, out


def test_capsule_attachment_does_not_depend_on_the_mesh(thoracolumbar):
    """The capsule of each joint of T12-L2 (the segment whose capsular force under extension moves by about 7 %
    from 2 to 1 mm, docs/validation.md): its springs have zero rest length (both ends at the contact point),
    act along the joint normal and carry the published law in total (stiffness and stiffening, exactly); under
    one rigid rotation of the lower vertebra (the same displacement field on every mesh: 0.01 rad about its
    lateral and its anteroposterior axis through the joint's centroid on the finest mesh) their tension-only
    force and its moment agree within 1 % at 4 / 3 / 2 / 1.5 mm. Each rotation opens one part of the joint
    and closes the other, as extension does, so the force depends on where the opening ends, a nearly
    horizontal line (under extension the elongation varies 6x faster along the height than along the
    depth): on the joint's height band, which is specified (1 % of the opened part's first moment is
    about 0.03 mm of that line on a joint about 10 mm tall). Not tested: the rotation about the vertical
    axis, whose opening ends on a vertical line set by the joint's depth edges; those follow the meshed
    faces' rows (the centroid moves by 0.04 mm from 2 to 1.5 mm) and move that response by up to 4 %.
    The drift of the capsular force with the element size is not in the capsule's definition
    (docs/validation.md, "With posterior elements (the default segment)")."""
    sizes = sorted(thoracolumbar)                                                   # finest first
    capsules = {h: _capsules(thoracolumbar[h]) for h in sizes}
    for h in sizes:
        ls, joints = capsules[h]
        for (disc, side), (primary, sel, x, R, nodes) in joints.items():
            assert ls.length[sel].max() < 1e-9                                     # ends coincide
            assert np.allclose(ls.direction[sel], facet_normal(thoracolumbar[h], disc, side), atol=1e-12)
            assert ls.stiffness[primary].sum() == pytest.approx(LIGAMENTS["CL"][0], rel=1e-12)
            for inc, onset in LIGAMENT_STIFFENING["CL"][0]:
                step = sel & (np.abs(ls.onset - onset) < 1e-12)
                assert ls.stiffness[step].sum() == pytest.approx(inc, rel=1e-12)
    ls, joints = capsules[sizes[0]]
    pivots = {key: ls.stiffness[p] @ x[p] / ls.stiffness[p].sum() for key, (p, _, x, _, _) in joints.items()}
    for key, c in pivots.items():
        ref = None
        for h in sizes:
            ls, joints = capsules[h]
            primary, _, x, R, nodes = joints[key]
            P = thoracolumbar[h].mesh.points
            out = []
            for axis in (0, 1):                                            # lateral, anteroposterior
                u = np.zeros_like(P)
                u[nodes] = np.cross(0.01 * R[:, axis], P[nodes] - c)
                delta = ls.elongation(u)
                assert (delta[primary] > 0).any() and (delta[primary] < 0).any()   # partly open, partly closed
                F = np.where(primary, ls.stiffness * np.maximum(delta, 0.0), 0.0)
                out.append((F.sum(), np.linalg.norm(np.cross(x - c, F[:, None] * ls.direction).sum(axis=0))))
            out = np.array(out)
            if ref is None:
                ref = out
            assert np.allclose(out, ref, rtol=0.01, atol=1e-3 * np.abs(ref).max()), (key, h, out, ref)
