#!/usr/bin/env python
"""Mesh convergence of cemented vertebrae (vertebroplasty and kyphoplasty) and their stiffness gain.

Model: osteoporotic T12-L2 (QCT vBMD 80 mg/cm^3, default MaterialSet), grade-2 wedge fracture of L1
(``fracture(kind="wedge", grade=2)``), then untreated (NSM), vertebroplasty (bipedicular, cement-bone
composite, fill 15 / 30 / 50 % of the cancellous volume) or balloon kyphoplasty (two balloons, 4.8 mL,
restoration 0.5). The intact L1 is solved too (reference of the stiffness gain).

Two treated-level stiffnesses (N/mm) per state and element size, and a diagnostic third:

* ``plate``: L1 alone between rigid plates (:func:`vertebrafe.post.vertebra_strength`, 0.2 % apparent
  strain; stiffness = plate force / displacement);
* ``in_situ``: the segment under 800 N compression on the top plate (base fixed):
  ``800 / |height change of L1|`` (:func:`vertebrafe.post.metrics.vertebra_geometry`) from the rest state
  (``Solution.motion``: with the default nucleus pre-pressure the swollen discs' rest state, without it
  the stress-free mesh);
* ``pressure`` (diagnostic, only with ``--kinds``): L1 alone, inferior endplate fixed, a uniform 1 MPa
  pressure on the superior endplate (:func:`pressure_stiffness`): the endplate loaded by a compliant
  medium as in situ, without the discs (docs/validation.md, "BKP in situ: what the drift needs").

Every (size, state, kind) is one job in a process pool (``--workers``, each with ``--threads`` numba
threads); AMG-CG to rtol 1e-8 (``--solver direct`` for small models). ``--surface`` picks the
vertebroplasty bolus surface (default ``fitted``, the library default: nodes snapped onto it, no cut
cell; ``mixed``: cut cells mixed), ``--bkp-surface`` the kyphoplasty's (default ``mixed``, the library default;
``fitted``: cavity and rim fitted to cell faces; rows record the surface, the rim volume ``rim_mL``, the contact face
``contact_mm2`` and the ``unresolved_cells``); ``--cut bone|cement`` gives the cells the cement surfaces cut (VP bolus; BKP
cavity and rim) the bone's or the cement's elasticity instead of the mixing rule (the bounds of their
error); ``--kinds``, ``--states``
select a part of the study. ``--edge`` adds to every in-situ kyphoplasty row where L1's height change comes
from (``edge_profile``): the change of length of L1's node columns (superior minus inferior endplate
node, mm, negative = shorter; rigid motion cancels) averaged with the endplate area in rings of the
horizontal distance from the nearest balloon axis (local frame, mm, the balloon section's axes scaled to
their geometric mean), with each ring's area (mm^2). ``--grading FACTOR,WIDTH,REACH`` grades the
in-plane grid of every state toward the edges of the BKP balloons' contact faces
(:func:`vertebrafe.clinical.contact_face_grading` on the ungraded 2 mm kyphoplasty, the same curves at
every size; docs/anatomy.md "In-plane grading"); each row then records ``grading`` and the stack's
``min_scaled_jacobian``. ``--central-coarsening 1`` and ``--annulus-refinement N`` mesh every
state on the uniform O-grid and with N times the annulus rings (:func:`vertebrafe.segment`); rows record
both. ``--vp-bridge MM`` joins the two boluses of every VP state across gaps up to MM
(``vertebroplasty(..., bridge=MM)``; rows record ``vp_bridge``). The
``time`` of a row is wall clock, ``cpu`` the worker's process CPU time. Prints a table (and writes ``--json``) with the change from 2 to 1 mm and
from 1.5 to 0.75 mm. Usage::

    python benchmarks/convergence_cement.py --sizes 2,1.5,1,0.75 --workers 8 --threads 2 --json out.json
    python benchmarks/convergence_cement.py --sizes 4,3 --workers 2        # a quick look
    python benchmarks/convergence_cement.py --sizes 2,1 --states BKP --kinds in_situ --edge --grading 0.5,1.5,4
    python benchmarks/convergence_cement.py --sizes 3,1.5 --states NSM,BKP --kinds pressure --solver direct
    python benchmarks/convergence_cement.py --sizes 2,1 --states BKP --kinds in_situ --workers 1 \
        --central-coarsening 1 --annulus-refinement 2
    python benchmarks/convergence_cement.py --sizes 2,1.5 --states BKP --kinds in_situ,plate --workers 1 \
        --bkp-surface fitted
    python benchmarks/convergence_cement.py --sizes 2,1 --states VP30 --kinds plate,in_situ --workers 1 --vp-bridge 6

Units: mm, N, N/mm; times in s.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache

# Workers are spawned, not forked: a fork of a process whose MKL (PARDISO) or numba threads have run
# can deadlock in the child (the benchmark smoke tests run these scripts after others in one process).
SPAWN = multiprocessing.get_context("spawn")

STATES = ("intact", "NSM", "VP15", "VP30", "VP50", "BKP")
KINDS = ("plate", "in_situ", "pressure")
#: Kinds of the study by default (``pressure`` is a diagnostic, asked for by ``--kinds``).
DEFAULT_KINDS = ("plate", "in_situ")


#: Element size (mm) of the mesh on which the graded curves are found once for every size (``--grading``).
GRADING_BASE = 2.0


@lru_cache(maxsize=2)
def grading(bmd, spec):
    """Graded curves of ``--grading FACTOR,WIDTH,REACH`` (None: none): the BKP contact-face edges of the
    study's kyphoplasty on the ungraded :data:`GRADING_BASE` mesh, the same curves at every size."""
    if spec is None:
        return None
    import vertebrafe as vf
    from vertebrafe.clinical import contact_face_grading
    factor, width, reach = spec
    _, nsm = _fractured(GRADING_BASE, bmd)
    bkp = vf.kyphoplasty(nsm, "L1", restoration=0.5, volume=4.8)
    return contact_face_grading(bkp, "L1", factor=factor, width=width, reach=reach)


@lru_cache(maxsize=2)
def _fractured(h, bmd, spec=None, grid=(3, 1)):
    import vertebrafe as vf
    seg = vf.segment("T12-L2", bmd=bmd, element_size=h, posterior=False, grading=grading(bmd, spec),
                     central_coarsening=grid[0], annulus_refinement=grid[1])
    return seg, vf.fracture(seg, "L1", kind="wedge", grade=2)


def _state(h, bmd, name, surface="fitted", cut="mixed", spec=None, grid=(3, 1), bkp_surface="mixed", bridge=None):
    import vertebrafe as vf
    seg, nsm = _fractured(h, bmd, spec, grid)
    if name == "intact":
        return seg
    if name == "NSM":
        return nsm
    if name.startswith("VP"):
        vp = vf.vertebroplasty(nsm, "L1", fill=int(name[2:]) / 100.0, surface=surface, bridge=bridge)
        return vp if cut == "mixed" else _cut_cells_as(vp, nsm, cut)
    bkp = vf.kyphoplasty(nsm, "L1", restoration=0.5, volume=4.8, surface=bkp_surface)
    return bkp if cut == "mixed" else _cut_cells_as(bkp, nsm, cut)


def _cut_cells_as(treated, untreated, phase):
    """``treated`` with the cells its cement surfaces cut (0 < cement fraction < 1, and for kyphoplasty
    the cells the compacted rim shares with the host) given the untreated bone's (``"bone"``) or a whole
    cement cell's (``"cement"``) elasticity: the two bounds between which any mixing rule of the cut cells
    lies."""
    import copy

    import numpy as np

    f = np.asarray(treated.mesh.cell_data["cement_fraction"])
    cut = (f > 0.0) & (f < 1.0)
    if "compacted_fraction" in treated.mesh.cell_data:
        r = np.asarray(treated.mesh.cell_data["compacted_fraction"])
        cut |= (r > 0.0) & (f + r < 1.0)
    C = treated.elasticity.copy()
    C[cut] = untreated.elasticity[cut] if phase == "bone" else treated.elasticity[np.flatnonzero(f >= 1.0)[0]]
    out = copy.copy(treated)
    out.elasticity = C
    return out


#: Ring edges (mm) of the edge profile: the contact faces reach about 4 mm from the balloon axes.
EDGE_RINGS = (0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, float("inf"))


def edge_profile(seg, u, level="L1"):
    """Rows ``(r_lo, r_hi, area mm^2, mean column length change mm)`` of a kyphoplasty of ``level``
    (module docstring, ``--edge``)."""
    import numpy as np

    from vertebrafe.clinical._common import level_nodes, to_local
    from vertebrafe.clinical.augment import body_frame_sizes, bolus_geometry

    m, res = seg.mesh, seg.history[-1].results
    n2 = seg.counts.n_nodes
    nodes = level_nodes(seg, level)
    sup, inf = np.asarray(nodes.superior), np.asarray(nodes.inferior)
    below = np.full(n2, -1)
    below[inf % n2] = inf
    sup = sup[below[sup % n2] >= 0]
    faces = m.face_sets[f"{level}:superior"]
    p = m.points[faces]
    quad = 0.5 * np.linalg.norm(np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]), axis=1)
    area = np.bincount(faces.ravel(), weights=np.repeat(quad / 4.0, 4), minlength=m.n_points)[sup]
    axis = (m.points[sup] - m.points[below[sup % n2]])
    axis /= np.linalg.norm(axis, axis=1)[:, None]
    dl = np.einsum("ij,ij->i", u[sup] - u[below[sup % n2]], axis)
    W, D, H, zc, yc = body_frame_sizes(seg, level, m.points)
    _, rots, axes = bolus_geometry("balloon2" if len(res["balloon_centres_mm"]) == 2 else "balloon1", W, D, H, zc, yc)
    loc = to_local(seg, level, m.points[sup])
    r = np.full(sup.size, np.inf)
    for c, R, a in zip(np.asarray(res["balloon_centres_mm"]), rots, axes * res["balloon_scale"]):
        d = (loc - c) @ R
        r = np.minimum(r, np.hypot(d[:, 0] / a[0], d[:, 1] / a[1]) * np.sqrt(a[0] * a[1]))
    rows = []
    for lo, hi in zip(EDGE_RINGS[:-1], EDGE_RINGS[1:]):
        k = (r >= lo) & (r < hi)
        rows.append((lo, hi, float(area[k].sum()), float(np.average(dl[k], weights=area[k])) if k.any() else None))
    return rows


def pressure_stiffness(seg, level, **solver_options):
    """``(stiffness N/mm, DOFs)`` of ``level`` alone (:func:`vertebrafe.post.strength.vertebra_alone`, local
    frame) with its inferior endplate fixed and a uniform 1 MPa pressure on its superior endplate: the
    pressure's axial resultant over the height change (:func:`vertebrafe.post.metrics.centroid_distance`)."""
    from vertebrafe.elements import face_integrals
    from vertebrafe.fem import Model
    from vertebrafe.post.metrics import centroid_distance
    from vertebrafe.post.strength import vertebra_alone

    sub, C, _ = vertebra_alone(seg, level)
    top, bottom = sub.face_sets[f"{level}:superior"], sub.face_sets[f"{level}:inferior"]
    model = Model(sub, C=C)
    model.fix(sub.node_sets[f"{level}:inferior"], "xyz")
    model.add_pressure(top, 1.0)
    sol = model.solve(**solver_options)
    _, dh = centroid_distance(sub.points, top, bottom, sol.displacement)
    force = abs(float(face_integrals(sub.points, top)[1][..., 2].sum()))
    return force / abs(dh), int(sol.info["dofs"])


def job(h, bmd, name, kind, surface="fitted", solver="amg", cut="mixed", edge=False, spec=None, grid=(3, 1),
        bkp_surface="mixed", bridge=None):
    from vertebrafe.loads import Load
    from vertebrafe.post.metrics import vertebra_geometry
    from vertebrafe.post.strength import vertebra_strength
    from vertebrafe.simulate import simulate

    t0 = time.perf_counter()
    t_cpu = time.process_time()
    seg = _state(h, bmd, name, surface, cut, spec, grid, bkp_surface, bridge)
    opts = dict(solver="amg", rtol=1e-8) if solver == "amg" else dict(solver=solver)
    hist = seg.history[-1].results if seg.history and seg.history[-1].kind != "fracture" else {}
    if kind == "plate":
        vs = vertebra_strength(seg, "L1", **opts)
        k, dofs = vs.stiffness, vs.dofs
    elif kind == "pressure":
        k, dofs = pressure_stiffness(seg, "L1", **opts)
    else:
        r = simulate(seg, Load(compression=800.0, name="c800"), factor_of_risk=False, **opts)
        _, dh = vertebra_geometry(seg, "L1", r.solution.motion)      # from the rest state
        k, dofs = 800.0 / abs(dh), r.solution.info["dofs"]
    extra = dict(edge_profile=edge_profile(seg, r.solution.motion)) if edge and kind == "in_situ" and \
        name == "BKP" else {}
    return dict(h=h, state=name, kind=kind, stiffness=k, dofs=int(dofs), cells=int(seg.mesh.n_cells),
                surface=surface if name.startswith("VP") else bkp_surface if name == "BKP" else None, solver=solver,
                cut=cut if name != "intact" and name != "NSM" else None,
                time=time.perf_counter() - t0, cpu=time.process_time() - t_cpu, volume_error=hist.get("volume_error"),
                cement_mL=hist.get("cement_volume_mL"), span=hist.get("cement_height_span"), grading=spec,
                rim_mL=hist.get("rim_volume_mL"), contact_mm2=hist.get("contact_area_mm2"),
                unresolved_cells=hist.get("unresolved_cells"),
                central_coarsening=grid[0], annulus_refinement=grid[1],
                vp_bridge=bridge if name.startswith("VP") else None, min_scaled_jacobian=float(seg.mesh.quality().scaled_jacobian[:seg.stack_cells].min()), **extra)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2,1.5,1,0.75")
    ap.add_argument("--bmd", type=float, default=80.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--states", default=",".join(STATES))
    ap.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help=f"any of {','.join(KINDS)}")
    ap.add_argument("--surface", default="fitted", choices=["fitted", "mixed"],
                    help="vertebroplasty bolus surface (fitted, the default: nodes snapped onto it; mixed: cut "
                         "cells mixed)")
    ap.add_argument("--bkp-surface", default="mixed", choices=["mixed", "fitted"],
                    help="kyphoplasty cavity and rim surfaces (mixed, the default: cut cells mixed; fitted: nodes "
                         "snapped onto both, no cut cell)")
    ap.add_argument("--solver", default="amg", choices=["amg", "direct"])
    ap.add_argument("--cut", default="mixed", choices=["mixed", "bone", "cement"],
                    help="cells the cement surfaces cut (VP bolus; BKP cavity and rim): mixed (the model) or, as "
                         "bounds of their error, the bone's or the cement's elasticity")
    ap.add_argument("--edge", action="store_true",
                    help="in-situ kyphoplasty rows: L1 column length change in rings about the balloon axes")
    ap.add_argument("--grading", default=None, metavar="FACTOR,WIDTH,REACH",
                    help="grade the in-plane grid of every state toward the BKP contact-face edges (found once on "
                         "the ungraded 2 mm mesh): cell size FACTOR of the ungraded one across the edges, refined "
                         "within WIDTH mm, no node moved beyond REACH mm (vertebrafe.anatomy.grading)")
    ap.add_argument("--central-coarsening", type=int, default=3, choices=[1, 3],
                    help="segment(central_coarsening=...): 1 for the uniform O-grid (default 3)")
    ap.add_argument("--annulus-refinement", type=int, default=1,
                    help="segment(annulus_refinement=...): multiple (1-4) of the annulus rings (default 1)")
    ap.add_argument("--vp-bridge", type=float, default=None, metavar="MM",
                    help="vertebroplasty(..., bridge=MM): the two boluses joined across gaps up to MM mm (default: "
                    "none)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(a.threads)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sizes = [float(s) for s in a.sizes.split(",")]
    states = a.states.split(",")
    kinds = a.kinds.split(",")
    if set(kinds) - set(KINDS):
        ap.error(f"--kinds {a.kinds}: allowed any of {','.join(KINDS)}")
    spec = tuple(float(v) for v in a.grading.split(",")) if a.grading else None
    grid = (a.central_coarsening, a.annulus_refinement)
    jobs = sorted(((h, s, k) for h in sizes for s in states for k in kinds), key=lambda j: j[0])   # finest first
    rows = []
    with ProcessPoolExecutor(max_workers=a.workers, mp_context=SPAWN) as ex:
        futs = {ex.submit(job, h, a.bmd, s, k, a.surface, a.solver, a.cut, a.edge, spec, grid, a.bkp_surface,
                          a.vp_bridge): (h, s, k)
                for h, s, k in jobs}
        for f in as_completed(futs):
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001 - report and go on
                h, s, k = futs[f]
                r = dict(h=h, state=s, kind=k, error=repr(e))
            rows.append(r)
            print(json.dumps(r), flush=True)
            if a.json:
                with open(a.json, "w") as fh:
                    json.dump(rows, fh, indent=1)
    table(rows, sizes)


def table(rows, sizes):
    k = {(r["h"], r["state"], r["kind"]): r.get("stiffness") for r in rows}
    print("\n| state | kind | " + " | ".join(f"{h:g} mm" for h in sizes) + " | 2 -> 1 mm | 1.5 -> 0.75 mm | gain vs NSM "
          "(finest) | vs intact (finest) |")
    print("|---|---|" + "---|" * (len(sizes) + 4))
    fine = min(sizes)
    for s in STATES:
        for kind in KINDS:
            v = [k.get((h, s, kind)) for h in sizes]
            if all(x is None for x in v):
                continue

            def ch(a, b):
                x, y = k.get((a, s, kind)), k.get((b, s, kind))
                return f"{y / x - 1:+.1%}" if x and y else "-"
            nsm, intact, here = k.get((fine, "NSM", kind)), k.get((fine, "intact", kind)), k.get((fine, s, kind))
            gain = f"{here / nsm:.2f}" if nsm and here else "-"
            rel = f"{here / intact:.2f}" if intact and here else "-"
            print(f"| {s} | {kind} | " + " | ".join("-" if x is None else f"{x:,.0f}" for x in v)
                  + f" | {ch(2.0, 1.0)} | {ch(1.5, 0.75)} | {gain} | {rel} |")


if __name__ == "__main__":
    sys.exit(main())
