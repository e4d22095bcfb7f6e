"""Where the capsular ligament's force comes from: the opening of each facet joint split into the vertebral
bodies' rigid relative motion and the arches' own deflection, per element size.

For each size: ``simulate`` of the segment (posterior elements, the rows' 4.2 MPa annulus ground substance, as
``bench_simulate.py``) under a preset; then, at every capsule spring of the right joint of each level (the left
one mirrors it under sagittal loads), its elongation along the joint normal (the opening), the part of it that
the rigid motions of the two vertebral bodies give (a rigid motion fitted by least squares to each body's
nodes, cortex, endplates and cancellous bone, evaluated at the contact point), and the rest, the deflection of
each articular process relative to its body. Printed: the capsule's force (first segment of the law), the
stiffness-weighted mean of each part (um) and its tilt along the joint's height (opening per mm of the segment's
vertical axis in the joint plane, 1e-3, a least-squares plane over the points), and the
number of cells across each articular process (node columns between the canal's edge and the joint plane).

    python benchmarks/capsule_opening.py --sizes 4,3,2,1.5,1 --load extension_moment
    python benchmarks/capsule_opening.py --sizes 2,1.5 --formulation incompatible
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import vertebrafe as vf                                   # noqa: E402
from vertebrafe import loads                              # noqa: E402
from vertebrafe.anatomy.posterior_levels import posterior_dimensions  # noqa: E402
from vertebrafe.materials import MaterialSet              # noqa: E402
from vertebrafe.simulate import simulate                  # noqa: E402


def rigid_fit(X, U):
    """The rigid motion ``x -> t + w x (x - c)`` nearest (least squares) to displacements ``U`` at points ``X``."""
    c = X.mean(axis=0)
    r = X - c
    A = np.zeros((3 * len(X), 6))
    A[0::3, 0] = A[1::3, 1] = A[2::3, 2] = 1.0
    A[0::3, 4], A[0::3, 5] = r[:, 2], -r[:, 1]
    A[1::3, 3], A[1::3, 5] = -r[:, 2], r[:, 0]
    A[2::3, 3], A[2::3, 4] = r[:, 1], -r[:, 0]
    p = np.linalg.lstsq(A, U.ravel(), rcond=None)[0]
    return lambda x: p[:3] + np.cross(p[3:], x - c)


def columns_across(seg, v):
    """Cells across the inferior and superior articular processes of ``v`` (x, its local frame), below and
    above its body."""
    m, P = seg.mesh, seg.mesh.points
    R, o = seg.frames[v]
    arch = seg.posterior.arches[v]
    body = m.cells_in("level", v) & ~m.cells_in("region", "posterior")
    zb = ((P[np.unique(m.cells[body])] - o) @ R)[:, 2]
    own = m.cells_in("level", v) & m.cells_in("region", "posterior")
    cc = (m.cell_centers()[own] - o) @ R
    cw = 0.5 * posterior_dimensions(v)["canal_width"]
    iap = (cc[:, 0] > cw) & (cc[:, 0] < arch.joint_x) & (cc[:, 2] < zb.min())
    sap = (cc[:, 0] > arch.joint_x) & (cc[:, 2] > zb.max())
    return tuple(len(np.unique(np.round(cc[sel, 0], 3))) for sel in (iap, sap))


def opening(seg, res):
    """``{disc: dict}`` of the capsule's force and the parts of its opening (see the module)."""
    m, P, sol = seg.mesh, seg.mesh.points, res.solution
    u = sol.displacement
    body = {}
    for v in seg.levels:
        nodes = np.unique(m.cells[m.cells_in("level", v) & m.cells_in("region", ["cortex", "endplate", "cancellous"])])
        body[v] = rigid_fit(P[nodes], u[nodes])
    L = {s.name: s for s in sol.model.springs}["ligaments"]
    out = {}
    for d in seg.discs:
        up, lo = d.split("-")
        g = [g for g, name in L.group_names.items() if name == f"{d}:CL"][0]
        sel = (L.group == g) & (L.onset == 0.0)
        k, n = L.stiffness[sel], L.direction[sel]
        x = np.einsum("kp,kpi->ki", L.weights_a[sel], P[L.nodes_a[sel]])
        ua = np.einsum("kp,kpi->ki", L.weights_a[sel], u[L.nodes_a[sel]])
        ub = np.einsum("kp,kpi->ki", L.weights_b[sel], u[L.nodes_b[sel]])
        total = np.einsum("ki,ki->k", n, ub - ua)
        rigid = np.einsum("ki,ki->k", n, body[lo](x) - body[up](x))
        upper = -np.einsum("ki,ki->k", n, ua - body[up](x))            # the inferior process pushed back
        lower = np.einsum("ki,ki->k", n, ub - body[lo](x))             # the superior process pushed forward
        right = ((x - seg.frames[lo][1]) @ seg.frames[lo][0][:, 0]) > 0
        w = k[right] / k[right].sum()
        c = w @ x[right]
        nn = n[right][0]
        ez = np.array([0.0, 0.0, 1.0]) - nn[2] * nn                     # the segment's vertical, in the joint plane
        ez /= np.linalg.norm(ez)
        et = np.cross(nn, ez)
        S = np.stack([np.ones(right.sum()), (x[right] - c) @ ez, (x[right] - c) @ et], axis=1) * np.sqrt(w)[:, None]

        def fit(f):
            return np.linalg.lstsq(S, f[right] * np.sqrt(w), rcond=None)[0]           # mean, tilt along z, t

        out[d] = {"force": float((k * np.maximum(total, 0.0)).sum()), "taut_stiffness": float(k[total > 0].sum()),
                  **{part: fit(f) for part, f in (("total", total), ("rigid", rigid), ("inferior", upper),
                                                   ("superior", lower))}}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--sizes", default="4,3,2,1.5", help="comma list of element sizes (mm)")
    ap.add_argument("--load", default="extension_moment", help="preset name")
    ap.add_argument("--solver", default="amg")
    ap.add_argument("--formulation", default="bbar", help="hex8 formulation: bbar (the default), full, incompatible")
    args = ap.parse_args(argv)
    for h in [float(s) for s in args.sizes.split(",")]:
        c0 = time.process_time()
        seg = vf.segment(args.levels, element_size=h, posterior=True,
                         materials=MaterialSet(bmd=args.bmd, annulus_matrix="annulus_ground"))
        res = simulate(seg, loads.preset(args.load), solver=args.solver, formulation=args.formulation)
        for d, r in opening(seg, res).items():
            up, lo = d.split("-")
            parts = "; ".join(f"{p} {1e3 * r[p][0]:.2f} um / {1e3 * r[p][1]:.2f}" for p in ("total", "rigid", "inferior", "superior"))
            print(f"{h:g} mm {d}: capsule {r['force']:.4f} N (taut {r['taut_stiffness']:.2f} N/mm), facet "
                  f"{res.value('facet_force', d, 'facet_right'):.3f} N, rotation {res.value('rotation_flexion', d, 'disc'):.4f} deg; "
                  f"mean opening / tilt (1e-3): {parts}; cells across {up}'s inferior / {lo}'s superior process "
                  f"{columns_across(seg, up)[0]} / {columns_across(seg, lo)[1]}", flush=True)
        print(f"{h:g} mm: {seg.mesh.n_cells} cells, {time.process_time() - c0:.1f} s CPU, peak "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
