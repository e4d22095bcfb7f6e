#!/usr/bin/env python
"""Mesh convergence of the reported metrics of treated vertebrae: per-tissue and reference-volume stresses,
adjacent-level ratios, factor of risk and overload index (the numbers of example 3 and the bundled study).

Model: example 3 (docs/examples/03_compare_treatments.py): T12-L2 with the default posterior elements, vBMD
80, grade-2 wedge fracture of L1, then untreated (NSM), bipedicular vertebroplasty of 4 mL (the default
fitted bolus) or balloon kyphoplasty (4.8 mL, restoration 0.5, two balloons); 800 N compression with a
7.5 N m flexion moment; optional states ``VP15``, ``VP30``, ``VP50``: the same vertebroplasty at 15 / 30 / 50 %
fill of the cancellous volume, and ``BKPF``: the kyphoplasty with its cavity and rim fitted to cell faces
(``surface="fitted"``) (``--states``; default the first three). ``--central-coarsening 1`` and
``--annulus-refinement N`` mesh every state on the uniform O-grid with N times the annulus rings
(:func:`vertebrafe.segment`, the grid on which the BKP treated-level stiffness converges; rows record both).
Per element size and state one process (``--sizes`` run coarsest first, one at a time
so that only one model is in memory); solver ``--solver`` (default ``auto``) to ``rtol`` 1e-8.

Recorded per vertebra (T12, L1, L2) and region (reference volumes ``body`` and ``core``; tissues
``cortex``, ``endplate``, ``cancellous``, ``cement_bone``, ``cement``, ``compacted_bone``): the von Mises
95th percentile and mean (MPa); per vertebra the factor of risk (800 N over the yield-volume strength of
the vertebra alone between rigid plates), the plate stiffness (N/mm) and the in-situ overload index
(yield-volume). The tissue statistics are the reported ones (:func:`vertebrafe.post.metrics.region_rows`): each
cell counts in a tissue with the volume of that tissue it holds (:func:`vertebrafe.post.metrics.tissue_volumes`;
a cell that the cement or the compacted rim cuts counts in the cancellous bone, the rim and the cement with
each phase's volume and each phase's own stress, :func:`vertebrafe.post.metrics.tissue_stresses`; so do the
reference volumes). With ``--radii`` (mm, comma-separated; default none) also a continuum-scale 95th
percentile per region,
``von_mises_p95_r<R>mm``: the volume-weighted p95 over the region's cells of the von Mises stress of the stress
tensor averaged over a sphere of radius R around each cell centroid, over the cells of the same vertebra and
tissue (level and region tags) whose centroid lies in it (:func:`neighbourhood_mean`). Continuum stresses of
cancellous bone are meaningful over volumes spanning several trabeculae (Harrigan, Jasty, Mann & Harris 1988,
J Biomech 21:269: within three to five trabeculae of an interface a continuum result is suspect); this
statistic tests whether the treated-level percentiles fail to converge because they sample interface stress
concentrations (docs/validation.md, "Are these metrics mesh-converged?": they do not converge with it
either). It averages and takes the percentile over the cells tagged with each tissue (the phase filling
at least half of a cell), as when it was measured. With ``--edge-distances`` (mm, comma-separated; default
none) a state with a kyphoplasty bearing on the endplates (``BKP``, ``BKPF``) also records the contact-edge
diagnosis of L1 (docs/validation.md, "Why the fitted BKP's rows do not converge"): the edges of the balloons'
contact faces are taken from the kyphoplasty record (:func:`contact_edges`, not from the mesh) and each cell is
sampled at 27 points, so that the region at least d mm from every edge has a volume fixed in mm^3 (up to the
sampling; :func:`far_fraction`); ``von_mises_p95_far<d>mm`` is each L1 tissue's p95 over that region (the
tissue volumes and own stresses of the reported rows), ``yield_volume_near<d>mm`` the share of the 2 % yield
volume of the plate test behind the factor of risk that lies within d mm of an edge (a share, shown as its
value), ``factor_of_risk_far<d>mm`` the factor of risk when only the bone beyond d mm may make up the 2 % of
the whole bone volume (one more plate solve of L1). The table gives every value per size, its ratio to NSM at the same size (the reported
ratio; for the tissues a treatment adds, cement-bone composite, PMMA and compacted rim, the ratio to the NSM
cancellous bone they replaced) and the change of the ratio (or, for NSM, of the value) between consecutive
sizes. ``--vp-bridge MM`` joins the two boluses of every VP state across gaps up to MM
(``vertebroplasty(..., bridge=MM)``; rows record ``vp_bridge``; docs/validation.md, "Two boluses joined
across the midline"). ``--vp-approach``, ``--vp-volume``, ``--vp-extent`` and ``--vp-offset-z`` set the VP
states' approach, volume (``VP`` only), ``vertical_extent`` and vertical offset (rows record them as ``vp``;
docs/validation.md, "Is it the bolus's rim?"); ``--vp-surface`` their ``surface`` (``fitted`` or ``mixed``).
Every VP state also records the cement statistics of L1 (:func:`bolus_rows`; docs/validation.md, "Which
composite statistic does a 2 mm mesh resolve?"): per cement tissue the von Mises stress (``von_mises_of_mean``)
and the axial component (``axial_of_mean``, local vertical) of its volume-mean stress tensor (by the
average-stress theorem set by the tractions on the bolus surface) and, with ``--inner-distances`` (mm,
comma-separated; default none), the p95 and mean of the von Mises stress over the part at least d mm inside
the requested bolus surface (a region fixed in mm^3, ``von_mises_p95_in<d>mm``, ``von_mises_mean_in<d>mm``),
the axial component of its mean tensor and its volume (``volume_in<d>mm``, mm^3); the table shows these as
values, not as ratios to NSM. Usage::

    python benchmarks/convergence_metrics.py --sizes 3,2,1.5 --json out.json
    python benchmarks/convergence_metrics.py --sizes 1 --solver amg --json fine.json   # add a size later
    python benchmarks/convergence_metrics.py --table out.json fine.json                # table of saved runs
    python benchmarks/convergence_metrics.py --sizes 3,2 --radii 2,3,4 --json r.json  # several radii
    python benchmarks/convergence_metrics.py --sizes 2,1.5 --states NSM,BKP,BKPF --central-coarsening 1 \
        --annulus-refinement 2 --json grid.json                                       # the converging grid
    python benchmarks/convergence_metrics.py --sizes 3,2,1.5 --states BKPF --central-coarsening 1 \
        --annulus-refinement 2 --edge-distances 2,3,4 --json edge.json                # contact-edge diagnosis
    python benchmarks/convergence_metrics.py --sizes 3,2,1.5 --states NSM,VP --solver direct --vp-bridge 6 \
        --json bridge.json                                                            # joined VP boluses
    python benchmarks/convergence_metrics.py --sizes 3,2,1.5 --states VP --solver direct --vp-approach \
        unipedicular --vp-volume 1.25 --vp-extent 1 --vp-offset-z -1 --json free.json  # one unclipped bolus
    python benchmarks/convergence_metrics.py --sizes 2 --states VP --solver direct --vp-approach unipedicular \
        --vp-volume 1.25 --vp-extent 1 --vp-offset-z -1 --inner-distances 0,1,2,3 --json in.json  # inside the bolus

Units: mm, N, MPa, N/mm; times in s (``cpu``: the worker's process CPU time).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# Workers are spawned, not forked: a fork of a process whose MKL (PARDISO) or numba threads have run
# can deadlock in the child (the benchmark smoke tests run these scripts after others in one process).
SPAWN = multiprocessing.get_context("spawn")

STATES = ("NSM", "VP", "BKP", "VP15", "VP30", "VP50", "BKPF")
LEVELS = ("T12", "L1", "L2")
REGIONS = ("body", "core", "cortex", "endplate", "cancellous", "cement_bone", "cement", "compacted_bone")
STRESSES = ("von_mises_p95", "von_mises_mean")
ADDED = ("cement_bone", "cement", "compacted_bone")       # tissues a treatment adds
PER_LEVEL = ("factor_of_risk", "plate_stiffness", "overload_index_yield")
ABSOLUTE = ("yield_volume_near", "von_mises_of_mean", "axial_of_mean", "volume_in")   # shown as values (table)


def neighbourhood_mean(centres, values, weights, groups, radius):
    """Weighted mean ``(m, k)`` of ``values (m, k)`` (weights ``(m,)``) over the samples of the same group
    (``groups (m,)``) whose centre (``centres (m, 3)``, mm) lies within ``radius`` mm of each centre (itself
    included). One k-d tree query per group (a tissue of a vertebra), neighbours as a sparse matrix."""
    from scipy.sparse import csr_matrix
    from scipy.spatial import cKDTree

    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    out = np.empty_like(values)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        tree = cKDTree(centres[idx])
        pairs = tree.sparse_distance_matrix(tree, radius, output_type="ndarray")
        A = csr_matrix((np.ones(pairs.size), (pairs["i"], pairs["j"])), shape=(idx.size, idx.size))
        s = A @ np.column_stack([weights[idx], weights[idx, None] * values[idx]])
        out[idx] = s[:, 1:] / s[:, :1]
    return out


def continuum_rows(segment, solution, radius):
    """``{"von_mises_p95_r<R>mm|level|region": MPa}`` of the stress averaged over spheres of ``radius`` mm
    within each tissue of each vertebra (module docstring), for the regions of :data:`REGIONS`."""
    from vertebrafe.fem.solution import von_mises
    from vertebrafe.post.metrics import core_cells, stack_cells, weighted_quantile

    mesh = segment.mesh
    lev, reg = mesh.cell_data["level"], mesh.cell_data["region"]
    lcode = {n: c for c, n in mesh.tag_names["level"].items()}
    vert = np.flatnonzero(np.isin(lev, [lcode[v] for v in LEVELS]))
    stress = neighbourhood_mean(mesh.points[mesh.cells[vert]].mean(axis=1), solution.cell_stress[vert],
                                solution.cell_volume[vert], lev[vert].astype(np.int64) * (int(reg.max()) + 1)
                                + reg[vert], radius)
    vm = np.full(mesh.n_cells, np.nan)
    vm[vert] = von_mises(stress)
    vol = solution.cell_volume
    in_stack = np.arange(mesh.n_cells) < stack_cells(segment)
    out = {}
    for level in LEVELS:
        L = lev == lcode[level]
        sets = {"body": np.flatnonzero(L & in_stack), "core": core_cells(segment, level)}
        sets.update({n: np.flatnonzero(L & (reg == c)) for c, n in mesh.tag_names["region"].items()
                     if n in REGIONS})
        for region, cells in sets.items():
            if cells.size:
                out[f"von_mises_p95_r{radius:g}mm|{level}|{region}"] = float(weighted_quantile(vm[cells], vol[cells],
                                                                                            0.95))
    return out


#: Sample points of a cell (trilinear hexahedron, VTK node order): the 3 x 3 x 3 points at -2/3, 0, 2/3 of the
#: parametric cube, each standing for 1/27 of the cell's volume.
_XI = np.array(np.meshgrid(*[[-2 / 3, 0.0, 2 / 3]] * 3, indexing="ij")).reshape(3, -1).T
_CORNERS = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]])
_SHAPE = np.prod(1.0 + _XI[:, None, :] * _CORNERS[None], axis=2) / 8.0


def contact_edges(segment, level, samples=720):
    """Points ``(n, 3)`` (mm, global frame) along the edges of the balloons' endplate contact faces of the last
    kyphoplasty of ``level``: each face's edge ellipse (:func:`vertebrafe.clinical.kyphoplasty.contact_face_grading`,
    from the kyphoplasty record, not the mesh) on the clip surfaces ``rim_thickness`` inside the superior and
    inferior endplate node layers (local z interpolated linearly between their nodes)."""
    from scipy.interpolate import LinearNDInterpolator

    from vertebrafe.clinical._common import level_nodes, operations_of, to_local
    from vertebrafe.clinical.kyphoplasty import contact_face_grading

    t = operations_of(segment, level, "kyphoplasty")[-1].parameters["rim_thickness_mm"]
    nodes = level_nodes(segment, level)
    R, o = (np.asarray(x, dtype=float) for x in segment.frames[level])
    th = np.linspace(0.0, 2.0 * np.pi, samples, endpoint=False)
    out = []
    for c in contact_face_grading(segment, level):
        a = np.radians(c.angle)
        u, v = c.axes[0] * np.cos(th), c.axes[1] * np.sin(th)
        xy = np.column_stack([c.centre[0] + u * np.cos(a) - v * np.sin(a), c.centre[1] + u * np.sin(a) + v * np.cos(a)])
        for side, dz in (("superior", -t), ("inferior", t)):
            p = to_local(segment, level, segment.mesh.points[getattr(nodes, side)])
            z = LinearNDInterpolator(p[:, :2], p[:, 2] + dz)(xy)
            out.append(np.column_stack([xy, z])[np.isfinite(z)])
    return np.concatenate(out) @ R.T + o


def far_fraction(mesh, cells, tree, distance):
    """Share ``(k,)`` of each cell's volume (its 27 sample points) at least ``distance`` mm from the points of
    the k-d tree ``tree``: a region of fixed volume in mm^3, the same at every element size up to the sampling."""
    x = np.einsum("qa,kai->kqi", _SHAPE, mesh.points[mesh.cells[cells]])
    return (tree.query(x.reshape(-1, 3))[0].reshape(len(cells), -1) >= distance).mean(axis=1)


def edge_rows(segment, solution, distances, level="L1"):
    """Rows of the contact-edge diagnosis (module docstring) of a kyphoplasty with endplate contact at ``level``:
    ``{"von_mises_p95_far<d>mm|level|region": MPa, "factor_of_risk_far<d>mm|level|vertebra": -,
    "yield_volume_near<d>mm|level|vertebra": -}``; empty for a level without one."""
    from scipy.spatial import cKDTree

    from vertebrafe.clinical._common import operations_of
    from vertebrafe.post.metrics import BONE_REGIONS, stack_cells, tissue_stresses, tissue_volumes, weighted_quantile
    from vertebrafe.post.metrics import body_cells
    from vertebrafe.post.strength import DEFAULT_FRACTION, _yield_strains, bone_phases, vertebra_strength

    ops = operations_of(segment, level, "kyphoplasty")
    if not distances or not ops or not ops[-1].parameters["endplate_contact"]:
        return {}
    mesh = segment.mesh
    tree = cKDTree(contact_edges(segment, level))
    cells, codes, w = tissue_volumes(mesh, solution.cell_volume)
    vm, _ = tissue_stresses(segment, solution, cells, codes)
    lc = {n: c for c, n in mesh.tag_names["level"].items()}[level]
    on = (mesh.cell_data["level"][cells] == lc) & (cells < stack_cells(segment))
    vs = vertebra_strength(segment, level, solver="auto", rtol=1e-8)         # the plate test of factor_of_risk
    body = np.flatnonzero(body_cells(segment, level))
    pc, ratio, pv = bone_phases(mesh.extract(body_cells(segment, level)), vs.solution,
                                *_yield_strains(segment, None, None), BONE_REGIONS)
    order = np.argsort(-ratio, kind="stable")
    top = order[:int(np.searchsorted(np.cumsum(pv[order]) / pv.sum(), DEFAULT_FRACTION - 1e-12)) + 1]
    out = {}
    for d in distances:
        keep = far_fraction(mesh, cells[on], tree, d)
        for c, region in mesh.tag_names["region"].items():
            e = codes[on] == c
            if region in REGIONS and e.any() and (w[on][e] * keep[e]).sum() > 0:
                out[f"von_mises_p95_far{d:g}mm|{level}|{region}"] = float(weighted_quantile(vm[on][e], w[on][e] * keep[e],
                                                                                            0.95))
        far = far_fraction(mesh, body[pc], tree, d)
        out[f"yield_volume_near{d:g}mm|{level}|vertebra"] = float(np.dot(pv[top], 1.0 - far[top]) / pv[top].sum())
        c = np.cumsum((pv * far)[order]) / pv.sum()          # 2 % of the whole bone volume, from the far bone
        rf = ratio[order][min(int(np.searchsorted(c, DEFAULT_FRACTION - 1e-12)), ratio.size - 1)]
        out[f"factor_of_risk_far{d:g}mm|{level}|vertebra"] = 800.0 * rf / vs.strength_apparent
    return out


def bolus_rows(segment, solution, distances=(), level="L1", samples=4):
    """Rows of the cement statistics of the last vertebroplasty of ``level`` (module docstring; empty without
    one): ``von_mises_of_mean|level|tissue`` and ``axial_of_mean|level|tissue`` (MPa): the von Mises stress and
    the axial (local vertical, compression negative) component of the volume-mean stress tensor of each cement
    tissue (the tissue volumes and own stresses of the reported rows); per ``d`` in ``distances`` (mm)
    ``von_mises_p95_in<d>mm``, ``von_mises_mean_in<d>mm`` over the part of the tissue at least ``d`` mm inside
    the requested bolus surface (the placed ellipsoids at the recorded scale with semi-axes shortened by ``d``,
    within the central ``vertical_extent`` narrowed by ``d``: a region fixed in mm, sampled at ``samples^3``
    points a cell), ``axial_of_mean_in<d>mm`` and ``volume_in<d>mm`` (mm^3) of that part; ``d = 0`` is the
    requested bolus itself (its volume measures the sampling)."""
    from vertebrafe.clinical._common import operations_of
    from vertebrafe.clinical.augment import Sampler, body_frame_sizes, bolus_geometry, endplate_distances, vertical_mask
    from vertebrafe.fem.solution import von_mises
    from vertebrafe.post.metrics import (axial_stress, level_axis, tissue_stress_tensors, tissue_volumes,
                                         weighted_quantile)

    ops = operations_of(segment, level, "vertebroplasty")
    if not ops:
        return {}
    mesh = segment.mesh
    cells, codes, w = tissue_volumes(mesh, solution.cell_volume)
    name = mesh.tag_names["region"]
    on = (mesh.cell_data["level"][cells] == {n: c for c, n in mesh.tag_names["level"].items()}[level]) & np.isin(
        [name.get(int(c)) for c in codes], ("cement_bone", "cement"))
    cells, codes, w = cells[on], codes[on], w[on]
    stress, _ = tissue_stress_tensors(segment, solution, cells, codes)
    a = level_axis(segment, level)
    p = ops[-1].parameters
    keep = {}
    if distances and p["placement"] == "centre":
        mask = np.zeros(mesh.n_cells, dtype=bool)
        mask[cells] = True
        smp = Sampler(segment, level, mesh.points, mask, samples)
        W, D, H, zc, yc = body_frame_sizes(segment, level, mesh.points)
        centres, rots, axes = bolus_geometry(p["approach"], W, D, H, zc, yc, p["side"] or "left", p["offset_mm"])
        d_inf, d_sup, hloc = endplate_distances(segment, level, mesh.points, smp)
        where = np.searchsorted(smp.cells, cells)
        for d in distances:
            inner = (vertical_mask(d_inf, d_sup, hloc, p["vertical_extent"], pad=-d)
                     & (smp.radius2(centres, rots, axes * ops[-1].results["bolus_scale"], pad=-d,
                                    bridge=p["bridge_mm"] or 0.0) <= 1.0))
            keep[d] = np.minimum(w, smp.fraction(inner)[where] * smp.volume[where])
    out = {}
    for c in np.unique(codes):
        e = codes == c
        t = f"{level}|{name[int(c)]}"
        mean = np.average(stress[e], axis=0, weights=w[e])
        out[f"von_mises_of_mean|{t}"] = float(von_mises(mean))
        out[f"axial_of_mean|{t}"] = float(axial_stress(mean[None], a)[0])
        for d, k in keep.items():
            out[f"volume_in{d:g}mm|{t}"] = float(k[e].sum())
            if k[e].sum() > 0:
                vm = von_mises(stress[e])
                out[f"von_mises_p95_in{d:g}mm|{t}"] = float(weighted_quantile(vm, k[e], 0.95))
                out[f"von_mises_mean_in{d:g}mm|{t}"] = float(np.average(vm, weights=k[e]))
                out[f"axial_of_mean_in{d:g}mm|{t}"] = float(axial_stress(np.average(stress[e], axis=0,
                                                                                    weights=k[e])[None], a)[0])
    return out


def _state(h, name, grid=(3, 1), bridge=None, vp=None):
    """The state ``name`` at element size ``h``; ``vp``: further :func:`vertebrafe.vertebroplasty` arguments of
    the VP states (``--vp-approach``, ``--vp-volume``, ``--vp-extent``, ``--vp-offset-z``)."""
    import vertebrafe as vf
    seg = vf.segment("T12-L2", bmd=80.0, element_size=h, central_coarsening=grid[0], annulus_refinement=grid[1])
    nsm = vf.fracture(seg, "L1", kind="wedge", grade=2)
    if name == "NSM":
        return nsm
    kw = {"approach": "bipedicular", "bridge": bridge, **(vp or {})}
    if name == "VP":
        return vf.vertebroplasty(nsm, "L1", **{"volume": 4.0, **kw})
    if name.startswith("VP"):
        kw.pop("volume", None)
        return vf.vertebroplasty(nsm, "L1", fill=int(name[2:]) / 100.0, **kw)
    return vf.kyphoplasty(nsm, "L1", restoration=0.5, volume=4.8, balloons=2,
                          surface="fitted" if name == "BKPF" else "mixed")


def job(h, name, solver, radii=(), grid=(3, 1), edges=(), bridge=None, vp=None, inner=()):
    """Metrics of one state at element size ``h`` on the grid ``(central_coarsening, annulus_refinement)``
    (module docstring; ``bridge``: ``--vp-bridge``; ``vp``: :func:`_state`; ``inner``: ``--inner-distances``)."""
    from vertebrafe.loads import Load
    from vertebrafe.simulate import simulate

    t0, c0 = time.perf_counter(), time.process_time()
    r = simulate(_state(h, name, grid, bridge, vp), Load(compression=800.0, flexion=7.5, name="flexion_800N"), case=name,
                 solver=solver, rtol=1e-8)
    df = r.metrics
    keep = df["level"].isin(LEVELS) & ((df["metric"].isin(STRESSES) & df["region"].isin(REGIONS))
                                       | df["metric"].isin(PER_LEVEL))
    values = {f"{m}|{lv}|{rg}": float(v) for m, lv, rg, v in df[keep][["metric", "level", "region", "value"]]
              .itertuples(index=False)}
    for radius in radii:
        values.update(continuum_rows(r.segment, r.solution, radius))
    values.update(edge_rows(r.segment, r.solution, edges))
    values.update(bolus_rows(r.segment, r.solution, inner))
    from vertebrafe.clinical._common import operations_of
    ops = operations_of(r.segment, "L1", "vertebroplasty")
    bolus = ({k: ops[-1].results[k] for k in ("volume_error", "bolus_scale", "cement_cells", "unresolved_cells",
                                               "endplate_clearance")} if ops else None)
    return dict(bolus=bolus, h=h, state=name, dofs=int(r.solution.info["dofs"]), solver=r.solution.info.get("solver"),
                central_coarsening=grid[0], annulus_refinement=grid[1], vp_bridge=bridge, vp=vp or None, time=time.perf_counter() - t0, cpu=time.process_time() - c0, values=values)


def table(rows):
    """Markdown table of the rows (see the module docstring)."""
    sizes = sorted({r["h"] for r in rows}, reverse=True)
    val = {(r["h"], r["state"]): r["values"] for r in rows}
    keys = sorted({k for r in rows for k in r["values"]},
                  key=lambda k: (k.split("|")[0], LEVELS.index(k.split("|")[1]), k.split("|")[2]))
    out = ["| state | metric | level | region | " + " | ".join(f"{h:g} mm" for h in sizes) + " | "
           + " | ".join(f"{a:g} -> {b:g} mm" for a, b in zip(sizes, sizes[1:])) + " |",
           "|---|---|---|---|" + "---|" * (2 * len(sizes) - 1)]
    for state in STATES:
        for k in keys:
            got = [val.get((h, state), {}).get(k) for h in sizes]
            if all(g is None for g in got):
                continue
            if state != "NSM":
                m, lv, rg = k.split("|")
                m = m.split("_far")[0]                 # a far-field row: over the whole NSM tissue / vertebra
                ref_key = f"{m}|{lv}|cancellous" if rg in ADDED else f"{m}|{lv}|{rg}"   # the bone the cement replaced
                ref = [val.get((h, "NSM"), {}).get(ref_key) for h in sizes]
                if not m.startswith(ABSOLUTE) and not re.search(r"_in[\d.]+mm$", m):   # a share, cement statistic: value
                    got = [g / n if g is not None and n else None for g, n in zip(got, ref)]
            cells = ["-" if g is None else (f"{g:.3f}" if state != "NSM" or abs(g) < 100 else f"{g:,.0f}")
                     for g in got]
            steps = ["-" if a is None or b is None or not a else f"{b / a - 1:+.1%}" for a, b in zip(got, got[1:])]
            m, lv, rg = k.split("|")
            out.append(f"| {state if state == 'NSM' else state + ' / NSM'} | {m} | {lv} | {rg} | "
                       + " | ".join(cells + steps) + " |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3,2")
    ap.add_argument("--states", default=",".join(STATES[:3]))
    ap.add_argument("--solver", default="auto", choices=["auto", "direct", "amg"])
    ap.add_argument("--radii", default="", help="averaging radii (mm) of the continuum-scale p95, comma-separated "
                    "(default: none)")
    ap.add_argument("--edge-distances", default="", help="distances (mm, comma-separated) of the contact-edge "
                    "diagnosis of a kyphoplasty with endplate contact (default: none)")
    ap.add_argument("--central-coarsening", type=int, default=3, choices=[1, 3],
                    help="segment(central_coarsening=...) of every state (default 3)")
    ap.add_argument("--annulus-refinement", type=int, default=1,
                    help="segment(annulus_refinement=...) of every state (default 1)")
    ap.add_argument("--vp-bridge", type=float, default=None, metavar="MM",
                    help="vertebroplasty(..., bridge=MM) for the VP states: the two boluses joined across gaps up "
                    "to MM mm (default: none, two separate boluses)")
    ap.add_argument("--vp-approach", default=None, choices=["bipedicular", "unipedicular"],
                    help="vertebroplasty approach of the VP states (default bipedicular)")
    ap.add_argument("--vp-volume", type=float, default=None, metavar="ML",
                    help="cement volume (mL) of the VP state (default 4)")
    ap.add_argument("--vp-extent", type=float, default=None, metavar="F",
                    help="vertebroplasty(..., vertical_extent=F) of the VP states (default 0.7)")
    ap.add_argument("--vp-offset-z", type=float, default=None, metavar="MM",
                    help="vertical offset (mm, + superior) of the VP states' boluses (default 0)")
    ap.add_argument("--vp-surface", default=None, choices=["fitted", "mixed"],
                    help="vertebroplasty(..., surface=...) of the VP states (default: fitted)")
    ap.add_argument("--inner-distances", default="", help="distances (mm, comma-separated) inside the bolus surface "
                    "of the cement statistics of the VP states (default: none; the mean-tensor rows always)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--table", nargs="*", default=None, help="print the table of saved --json files and exit")
    a = ap.parse_args(argv)
    if a.table is not None:
        rows = [r for p in a.table for r in json.load(open(p))]
        print(table(rows))
        return 0
    vp = {k: v for k, v in (("approach", a.vp_approach), ("volume", a.vp_volume), ("vertical_extent", a.vp_extent),
                            ("offset", None if a.vp_offset_z is None else (0.0, 0.0, a.vp_offset_z)),
                            ("surface", a.vp_surface)) if v is not None}
    rows = []
    for h in sorted((float(s) for s in a.sizes.split(",")), reverse=True):
        for name in a.states.split(","):
            with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as ex:   # one model in memory at a time
                r = ex.submit(job, h, name, a.solver, [float(v) for v in a.radii.split(",") if v],
                              (a.central_coarsening, a.annulus_refinement),
                              [float(v) for v in a.edge_distances.split(",") if v], a.vp_bridge, vp,
                              [float(v) for v in a.inner_distances.split(",") if v]).result()
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "values"}), flush=True)
            if a.json:
                with open(a.json, "w") as fh:
                    json.dump(rows, fh, indent=1)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
