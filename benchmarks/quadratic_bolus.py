#!/usr/bin/env python
"""Quadratic tetrahedra on the existing vertebra meshes: do they resolve the cement bolus at 2 mm?

Model: osteoporotic T12-L2 (vBMD ``--bmd`` 80, no posterior elements), grade-2 wedge fracture of L1, then the
default bipedicular vertebroplasty of ``--volume`` 4 mL (fitted bolus surface, the library default: whole
cells of cement-bone composite). L1 alone between rigid plates (the set-up of
:func:`vertebrafe.post.vertebra_strength`: :func:`vertebrafe.post.strength.vertebra_alone`, its inferior
endplate fixed, its superior endplate tied to a rigid plate pushed down by 0.2 % of the height, rotations
held, sideways free; :func:`vertebrafe.post.plate.plate_test`). Two discretisations of the same hex8 mesh:

* ``hex8``: the mesh as it is (B-bar, the library default);
* ``tet10``: every cell split into quadratic tetrahedra (:func:`vertebrafe.verification.tetra_mesh`,
  ``split="centre"`` by default: twelve per cell around its centre, conforming on the O-grid, where the
  six-tetrahedra Kuhn split does not; ``--split kuhn`` to see that), straight edges (the same geometry),
  each tetrahedron with its cell's elasticity, the endplate node sets with their mid-edge nodes; formulation
  ``--tet-formulation`` (default ``full``);
* ``hex8-split`` (on request in ``--elements``): every cell split into 8 by its own trilinear map (B-bar):
  the bolus and the vertebra of that size kept, cells half as large, so the change against ``hex8`` is the
  field's discretisation alone, not the surface the snapping makes at another size.

Per row: the plate stiffness (N/mm), and of the cement-bone composite (cells wholly cement, the fitted
bolus) the volume-mean stress tensor's axial component (local vertical, compression negative) and von
Mises stress, the volume-weighted mean of the cells' von Mises stress (the reported ``composite mean``
row) and their volume-weighted 95th percentile (``p95``), MPa; the faces of the split that no neighbour
shares (``open``: boundary faces of the tetrahedra less twice the hexahedra's, 0 when it conforms), DOFs,
the row's process CPU time (s) and the process's peak resident memory so far (GB). Then the changes from
2 to 1.5 mm and 2 to 1 mm per element, and tet10 against hex8 at the finest hex8 size and against hex8's
first-order extrapolation from its two finest sizes (``3 f(h2) - 2 f(h1)`` for 1.5 and 1 mm). Usage::

    python benchmarks/quadratic_bolus.py --sizes 3,2,1.5 --hex-sizes 1 --json out.json
    python benchmarks/quadratic_bolus.py --sizes 2 --elements hex8-split
    python benchmarks/quadratic_bolus.py --sizes 6 --elements hex8,tet10        # a quick look

Units: mm, N, MPa; AMG-CG to rtol 1e-8 (``--solver direct`` for small models).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np


def _revision():
    try:
        import subprocess

        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def boundary_faces(mesh):
    """Faces (sorted corner tuples) that belong to one cell only."""
    from vertebrafe.elements import ELEMENT_TYPES

    k = 4 if mesh.cell_type == "hexahedron" else 3
    f = np.sort(np.concatenate([mesh.cells[:, list(lf)[:k]] for lf in ELEMENT_TYPES[mesh.cell_type].faces]), axis=1)
    _, c = np.unique(f, axis=0, return_counts=True)
    return int((c == 1).sum())


def split_cells(mesh, k=2):
    """``mesh`` (hex8) with every cell split into ``k^3`` by its own trilinear map (the same geometry, finer
    cells), cell data repeated per cell, node sets holding the new nodes of the faces and edges whose corners
    all are in them."""
    import vertebrafe as vf
    from vertebrafe.elements import hex8_shape
    from vertebrafe.verification import _structured_cells

    t = np.linspace(-1, 1, k + 1)
    xi = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    N = hex8_shape(xi)                                                 # (q, 8)
    allp = np.einsum("qa,mai->mqi", N, mesh.points[mesh.cells]).reshape(-1, 3)
    scale = np.abs(mesh.points).max()
    _, first, inv = np.unique(np.round(allp / scale * 1e10).astype(np.int64), axis=0, return_index=True,
                              return_inverse=True)
    loc = _structured_cells(np.arange((k + 1) ** 3).reshape(k + 1, k + 1, k + 1))
    cells = inv.ravel().reshape(mesh.n_cells, -1)[:, loc].reshape(-1, 8)
    pts = allp[first]
    x = pts[cells]
    neg = np.einsum("mi,mi->m", np.cross(x[:, 1] - x[:, 0], x[:, 3] - x[:, 0]), x[:, 4] - x[:, 0]) < 0
    cells[neg] = cells[neg][:, [0, 3, 2, 1, 4, 7, 6, 5]]
    parent = np.abs(N) > 1e-12                                         # (q, 8): the corners a new node depends on
    sets = {}
    for name, nodes in mesh.node_sets.items():
        member = np.zeros(mesh.n_points, bool)
        member[nodes] = True
        inside = np.all(~parent[None] | member[mesh.cells][:, None, :], axis=2).ravel()     # (m q,)
        on = np.zeros(pts.shape[0], bool)
        on[inv.ravel()[inside]] = True
        sets[name] = np.flatnonzero(on)
    data = {key: np.repeat(v, k ** 3, axis=0) for key, v in mesh.cell_data.items()}
    return vf.Mesh(pts, cells, cell_data=data, tag_names=mesh.tag_names, node_sets=sets)


def treated_l1(h, bmd, volume):
    """L1 alone of the treated segment at element size ``h``: ``(mesh, C, height)``."""
    import vertebrafe as vf
    from vertebrafe.post.strength import vertebra_alone

    seg = vf.segment("T12-L2", bmd=bmd, element_size=h, posterior=False)
    nsm = vf.fracture(seg, "L1", kind="wedge", grade=2)
    return vertebra_alone(vf.vertebroplasty(nsm, "L1", volume=volume), "L1")


def _von_mises(s):
    return np.sqrt(0.5 * ((s[..., 0] - s[..., 1]) ** 2 + (s[..., 1] - s[..., 2]) ** 2 + (s[..., 2] - s[..., 0]) ** 2)
                   + 3 * (s[..., 3] ** 2 + s[..., 4] ** 2 + s[..., 5] ** 2))


def _weighted_quantile(v, w, q):
    o = np.argsort(v)
    c = np.cumsum(w[o]) / w.sum()
    return float(v[o][np.searchsorted(c, q)])


def run(h, element, bmd=80.0, volume=4.0, split="centre", tet_formulation="full", solver="amg"):
    """One row (module docstring)."""
    from vertebrafe.post.plate import plate_test
    from vertebrafe.verification import tetra_mesh

    t0 = time.process_time()
    sub, C, H = treated_l1(h, bmd, volume)
    hex_cells, hex_dofs = sub.n_cells, 3 * sub.n_points
    open_faces = 0
    if element == "hex8-split":
        mesh, formulation = split_cells(sub, 2), "bbar"
        C = np.repeat(C, 8, axis=0)
    elif element == "tet10":
        mesh = tetra_mesh(sub, quadratic=True, split=split)
        C = np.repeat(C, mesh.n_cells // sub.n_cells, axis=0)
        open_faces = boundary_faces(mesh) - 2 * boundary_faces(sub)
        formulation = tet_formulation
    else:
        mesh, formulation = sub, "bbar"
    opts = dict(solver="amg", rtol=1e-8) if solver == "amg" else dict(solver=solver)
    delta = 0.002 * H
    test = plate_test(mesh, C, mesh.node_sets["L1:inferior"], mesh.node_sets["L1:superior"], delta,
                      formulation=formulation, **opts)
    sol = test.solution
    comp = np.flatnonzero(np.asarray(mesh.cell_data["cement_fraction"]) >= 1.0)
    s, w = sol.cell_stress[comp], sol.cell_volume[comp]
    mean = (w[:, None] * s).sum(0) / w.sum()
    vm = _von_mises(s)
    return dict(h=h, element=element, split=split if element == "tet10" else None, formulation=formulation,
                stiffness=abs(test.force) / delta, height=H, composite_mm3=float(w.sum()),
                axial=float(mean[2]), vm_of_mean=float(_von_mises(mean)), mean_vm=float((w * vm).sum() / w.sum()),
                p95=_weighted_quantile(vm, w, 0.95), cells=int(mesh.n_cells), dofs=int(3 * mesh.n_points),
                hex_cells=int(hex_cells), hex_dofs=int(hex_dofs), open_faces=int(open_faces),
                cpu=time.process_time() - t0,
                peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)


KEYS = (("stiffness", "stiffness N/mm"), ("axial", "axial of mean"), ("vm_of_mean", "vM of mean"),
        ("mean_vm", "mean vM"), ("p95", "p95 vM"))


def table(rows):
    def pick(el, h):
        return next((r for r in rows if r["element"] == el and r["h"] == h), None)

    def ch(a, b):
        return f"{100 * (b / a - 1):+6.1f} %" if a and b else "      -"

    out = []
    for el in ("hex8", "tet10"):
        a, b, c = pick(el, 2.0), pick(el, 1.5), pick(el, 1.0)
        if a is None or (b is None and c is None):
            continue
        for k, name in KEYS:
            out.append(f"{el:<6}{name:<16} 2 -> 1.5 mm {ch(a[k], b[k] if b else None)}   "
                       f"2 -> 1 mm {ch(a[k], c[k] if c else None)}")
    hx = sorted((r for r in rows if r["element"] == "hex8"), key=lambda r: r["h"])
    for r in (r for r in rows if r["element"] == "tet10"):
        if hx:
            f = hx[0]
            out.append(f"tet10 {r['h']} mm vs hex8 {f['h']} mm: " + ", ".join(
                f"{name} {ch(f[k], r[k]).strip()}" for k, name in KEYS))
        if len(hx) >= 2:
            f1, f2 = hx[0], hx[1]
            q = f2["h"] / f1["h"]
            lim = {k: f1[k] + (f1[k] - f2[k]) / (q - 1) for k, _ in KEYS}     # first order
            out.append(f"tet10 {r['h']} mm vs hex8 extrapolated ({f2['h']}, {f1['h']} mm, order 1): " + ", ".join(
                f"{name} {ch(lim[k], r[k]).strip()}" for k, name in KEYS))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="3,2,1.5", help="element sizes (mm) of both elements")
    ap.add_argument("--hex-sizes", default="", help="further sizes (mm) of hex8 alone")
    ap.add_argument("--elements", default="hex8,tet10", help="hex8, tet10, hex8-split")
    ap.add_argument("--split", default="centre", choices=("centre", "kuhn"))
    ap.add_argument("--tet-formulation", default="full", choices=("full", "bbar"))
    ap.add_argument("--bmd", type=float, default=80.0)
    ap.add_argument("--volume", type=float, default=4.0, help="cement volume (mL)")
    ap.add_argument("--solver", default="amg")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import vertebrafe as vf

    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"{platform.processor() or platform.machine()} | NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    jobs = [(float(h), el) for h in a.sizes.split(",") for el in a.elements.split(",")]
    jobs += [(float(h), "hex8") for h in a.hex_sizes.split(",") if h]
    print(f"{'h':>5} {'element':<11}{'cells':>8}{'DOFs':>9}{'open':>6}{'k N/mm':>9}{'axial':>8}{'vM(mean)':>9}"
          f"{'mean vM':>8}{'p95':>7}{'cpu s':>8}{'GB':>6}")
    rows = []
    for h, el in jobs:
        r = run(h, el, a.bmd, a.volume, a.split, a.tet_formulation, a.solver)
        rows.append(r)
        print(f"{h:>5} {el:<11}{r['cells']:>8}{r['dofs']:>9}{r['open_faces']:>6}{r['stiffness']:>9.1f}"
              f"{r['axial']:>8.4f}{r['vm_of_mean']:>9.4f}{r['mean_vm']:>8.4f}{r['p95']:>7.4f}{r['cpu']:>8.1f}"
              f"{r['peak_gb']:>6.2f}", flush=True)
    for line in table(rows):
        print(line)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(revision=_revision(), args=vars(a), rows=rows), fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
