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
* ``hex8-pillowed`` (on request in ``--elements``): hex8 on the mesh of ``vertebroplasty(...,
  surface="pillowed")`` (:mod:`vertebrafe.clinical.pillowed`: the bolus's staircase pillowed on both sides,
  its surface on the ellipsoids, volume matched to the request; the composite's cells those inside it),
  whatever ``--surface`` says, B-bar. The library refuses a bolus within a cell of the cortex or an endplate,
  or one whose mesh folds (InputError, MeshError); the row is then reported not solved, with the message.
  ``--surface pillowed`` puts the other elements' rows on that mesh too;
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
    python benchmarks/quadratic_bolus.py --sizes 3,2,1.5,1 --elements hex8,hex8-pillowed --approach \
        unipedicular --volume 1.25 --extent 1 --offset-z -1 --json pillowed.json  # one bolus, fitted and pillowed
    python benchmarks/quadratic_bolus.py --sizes 2,1.5,1 --elements hex8-pillowed --bridge 4 --offset-y -4
        # the 4 mL bipedicular bolus 4 mm posterior, clear of the cortex, its two halves bridged

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inclusion_convergence import _revision, _weighted_quantile  # noqa: E402  (the same row statistics)
from vertebrafe.fem.solution import von_mises  # noqa: E402
from vertebrafe.verification import subdivide_hexes  # noqa: E402


def boundary_faces(mesh):
    """Faces (sorted corner tuples) that belong to one cell only."""
    from vertebrafe.elements import ELEMENT_TYPES

    k = 4 if mesh.cell_type == "hexahedron" else 3
    f = np.sort(np.concatenate([mesh.cells[:, list(lf)[:k]] for lf in ELEMENT_TYPES[mesh.cell_type].faces]), axis=1)
    _, c = np.unique(f, axis=0, return_counts=True)
    return int((c == 1).sum())


def fractured_segment(h, bmd):
    import vertebrafe as vf

    seg = vf.segment("T12-L2", bmd=bmd, element_size=h, posterior=False)
    return vf.fracture(seg, "L1", kind="wedge", grade=2)


def treated_l1(h, bmd, volume, vp=None):
    """L1 alone of the treated segment at element size ``h``: ``(mesh, C, height, results)``; ``vp``: further
    :func:`vertebrafe.vertebroplasty` arguments (``--approach``, ``--extent``, ``--offset-z``, ``--surface``,
    ...); ``results``: the vertebroplasty's recorded results (volume error, bolus scale; pillowed: the
    appended cells and the minimum corner scaled Jacobian)."""
    import vertebrafe as vf
    from vertebrafe.post.strength import vertebra_alone

    treated = vf.vertebroplasty(fractured_segment(h, bmd), "L1", volume=volume, **(vp or {}))
    return (*vertebra_alone(treated, "L1"), dict(treated.history[-1].results))


def run(h, element, bmd=80.0, volume=4.0, split="centre", tet_formulation="full", solver="amg", vp=None):
    """One row (module docstring); a pillowed bolus that ``vertebroplasty`` refuses (InputError, MeshError) is
    a row not solved, with the refusal's message."""
    from vertebrafe.errors import InputError, MeshError
    from vertebrafe.post.plate import plate_test
    from vertebrafe.verification import tetra_mesh

    t0 = time.process_time()
    vp = dict(vp or {}, **({"surface": "pillowed"} if element == "hex8-pillowed" else {}))
    pillowed = vp.get("surface") == "pillowed"
    try:
        sub, C, H, treated = treated_l1(h, bmd, volume, vp)
    except (InputError, MeshError) as exc:
        if not pillowed:
            raise
        nan = float("nan")
        return dict(h=h, element=element, split=None, formulation=None, stiffness=nan, height=nan, composite_mm3=nan,
                    axial=nan, vm_of_mean=nan, mean_vm=nan, p95=nan, cells=nan, dofs=nan, hex_cells=nan, hex_dofs=nan,
                    open_faces=nan, cpu=time.process_time() - t0, pillow=None, solved=False, refused=str(exc),
                    peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)
    info = {k: treated[k] for k in ("volume_error", "bolus_scale", "appended_cells", "min_scaled_jacobian")
            if pillowed}
    hex_cells, hex_dofs = sub.n_cells, 3 * sub.n_points
    open_faces = 0
    if element == "hex8-split":
        mesh, formulation = subdivide_hexes(sub, 2), "bbar"
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
    vm = von_mises(s)
    return dict(h=h, element=element, split=split if element == "tet10" else None, formulation=formulation,
                stiffness=abs(test.force) / delta, height=H, composite_mm3=float(w.sum()),
                axial=float(mean[2]), vm_of_mean=float(von_mises(mean)), mean_vm=float((w * vm).sum() / w.sum()),
                p95=_weighted_quantile(vm, w, 0.95), cells=int(mesh.n_cells), dofs=int(3 * mesh.n_points),
                hex_cells=int(hex_cells), hex_dofs=int(hex_dofs), open_faces=int(open_faces),
                cpu=time.process_time() - t0, pillow=info or None, solved=True,
                peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)


KEYS = (("stiffness", "stiffness N/mm"), ("axial", "axial of mean"), ("vm_of_mean", "vM of mean"),
        ("mean_vm", "mean vM"), ("p95", "p95 vM"))


def table(rows):
    def pick(el, h):
        return next((r for r in rows if r["element"] == el and r["h"] == h and r.get("solved", True)), None)

    def ch(a, b):
        return f"{100 * (b / a - 1):+6.1f} %" if a and b else "      -"

    out = []
    for el in ("hex8", "tet10", "hex8-pillowed"):
        a, b, c = pick(el, 2.0), pick(el, 1.5), pick(el, 1.0)
        if a is None or (b is None and c is None):
            continue
        for k, name in KEYS:
            out.append(f"{el:<14}{name:<16} 2 -> 1.5 mm {ch(a[k], b[k] if b else None)}   "
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
    ap.add_argument("--elements", default="hex8,tet10", help="hex8, tet10, hex8-split, hex8-pillowed")
    ap.add_argument("--split", default="centre", choices=("centre", "kuhn"))
    ap.add_argument("--tet-formulation", default="full", choices=("full", "bbar"))
    ap.add_argument("--bmd", type=float, default=80.0)
    ap.add_argument("--volume", type=float, default=4.0, help="cement volume (mL)")
    ap.add_argument("--solver", default="amg")
    ap.add_argument("--approach", default=None, choices=["bipedicular", "unipedicular"],
                    help="vertebroplasty approach (default bipedicular)")
    ap.add_argument("--extent", type=float, default=None, help="vertebroplasty vertical_extent (default 0.7)")
    ap.add_argument("--offset-z", type=float, default=None, metavar="MM", help="vertebroplasty offset (0, 0, MM)")
    ap.add_argument("--surface", default=None, choices=["fitted", "mixed", "pillowed"],
                    help="vertebroplasty surface of the hex8 / tet10 / hex8-split rows (default: the library's; "
                         "hex8-pillowed rows are pillowed whatever this says)")
    ap.add_argument("--offset-y", type=float, default=None, metavar="MM",
                    help="vertebroplasty offset's anterior component (with --offset-z: (0, Y, Z))")
    ap.add_argument("--bridge", type=float, default=None, metavar="MM",
                    help="vertebroplasty bridge (two boluses' smooth union)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import vertebrafe as vf

    off = (None if a.offset_z is None and a.offset_y is None else
           (0.0, a.offset_y or 0.0, a.offset_z or 0.0))
    vp = {k: v for k, v in (("approach", a.approach), ("vertical_extent", a.extent), ("offset", off),
                            ("surface", a.surface), ("bridge", a.bridge)) if v is not None}
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"{platform.processor() or platform.machine()} | NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    jobs = [(float(h), el) for h in a.sizes.split(",") for el in a.elements.split(",")]
    jobs += [(float(h), "hex8") for h in a.hex_sizes.split(",") if h]
    print(f"{'h':>5} {'element':<13}{'cells':>8}{'DOFs':>9}{'open':>6}{'k N/mm':>9}{'axial':>8}{'vM(mean)':>9}"
          f"{'mean vM':>8}{'p95':>7}{'cpu s':>8}{'GB':>6}")
    rows = []
    for h, el in jobs:
        r = run(h, el, a.bmd, a.volume, a.split, a.tet_formulation, a.solver, vp)
        rows.append(r)
        print(f"{h:>5} {el:<13}{r['cells']:>8}{r['dofs']:>9}{r['open_faces']:>6}{r['stiffness']:>9.1f}"
              f"{r['axial']:>8.4f}{r['vm_of_mean']:>9.4f}{r['mean_vm']:>8.4f}{r['p95']:>7.4f}{r['cpu']:>8.1f}"
              f"{r['peak_gb']:>6.2f}", flush=True)
        if not r["solved"]:
            print(f"      not solved: {r['refused']}")
        if r["pillow"]:
            print("      pillow: " + ", ".join(f"{k} {v:.4g}" for k, v in r["pillow"].items()), flush=True)
    for line in table(rows):
        print(line)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(revision=_revision(), args=vars(a), rows=rows), fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
