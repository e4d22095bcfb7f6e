"""Phantom round trip: parametric segment -> synthetic QCT + labels -> image_segment -> simulate.

Compares the image-based model with the parametric model it was drawn from (same element size, same
load): axial stiffness, nucleus pressures and the recovered vBMD per level. Usage:

    python benchmarks/image_round_trip.py [element_size_mm ...] [--spacing MM] [--bmd MG_CM3]
                                          [--geometry template|voxel] [--no-snap] [--density-scale MM]

``--convergence``: mesh convergence of the image model itself (docs/validation.md, "Image-based models: mesh
convergence"). ONE phantom image (seed 0, ``--noise`` HU, default blur) is drawn in this process, and
``image_segment`` is built from that same image at each element size, one spawned process per size (one model
in memory at a time), and loaded by the same 1000 N compression; recorded: the segment's axial stiffness, per
disc the nucleus pressure and height change, per vertebra the von Mises p95 and mean of the body, cancellous
bone, cortex and endplate, the plate stiffness, plate strength (yield volume), factor of risk, in-situ overload
index (yield volume), vBMD and the volume-weighted standard deviation of the cancellous cells' own vBMD
(``bmd_sd``: the image noise the cells sample), and the worker's CPU time and peak memory. ``--json`` saves the rows,
``--table FILE ...`` prints the table of saved rows (sizes from several runs combined)::

    python benchmarks/image_round_trip.py 3 2 1.5 --convergence --json a.json
    python benchmarks/image_round_trip.py 1 --convergence --solver amg --json b.json
    python benchmarks/image_round_trip.py --convergence --table a.json b.json
"""
import argparse
import json
import multiprocessing
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import vertebrafe as vf

#: Metrics of the convergence table: (level kind, region, metric); level kind "segment", "disc" or "vertebra".
CONVERGENCE_ROWS = ([("segment", "segment", "axial_stiffness")]
                    + [("disc", r, m) for r, m in (("nucleus", "pressure"), ("disc", "height_change"))]
                    + [("vertebra", r, m) for r in ("body", "cancellous", "cortex", "endplate")
                       for m in ("von_mises_p95", "von_mises_mean")]
                    + [("vertebra", "vertebra", m) for m in ("plate_stiffness", "plate_strength_yield",
                                                             "factor_of_risk", "overload_index_yield")])


def _scale(density_scale):
    """``image_segment``'s keyword for ``--density-scale`` (none: its default)."""
    return {} if density_scale is None else dict(density_scale=density_scale)


def run(h, spacing, bmd, levels="T12-L2", compression=1000.0, geometry="template", snap=True, density_scale=None):
    t0 = time.perf_counter()
    ph = vf.phantom(levels, bmd=bmd, spacing=spacing, element_size=h)
    t1 = time.perf_counter()
    seg = vf.image_segment(ph.ct, ph.labels, calibration=ph.calibration, element_size=h, geometry=geometry,
                           snap=snap, **_scale(density_scale))
    t2 = time.perf_counter()
    load = vf.Load(compression=compression)
    ref, img = vf.simulate(vf.segment(levels, bmd=bmd, element_size=h, posterior=False), load), vf.simulate(seg, load)
    pick = lambda r, lv, rg, mt: float(r.metrics.query("level == @lv and region == @rg and metric == @mt").value.iloc[0])  # noqa: E731
    print(f"{geometry}{'' if snap or geometry == 'template' else ' (no snap)'}: "
          f"element size {h:g} mm, voxels {spacing:g} mm, vBMD {bmd:g} mg/cm^3, density scale "
          f"{seg.source['density_scale_mm']:g} mm; phantom {t1 - t0:.1f} s, "
          f"image_segment {t2 - t1:.1f} s, cells {seg.mesh.n_cells} (parametric {ref.segment.mesh.n_cells})")
    k0, k1 = pick(ref, "segment", "segment", "axial_stiffness"), pick(img, "segment", "segment", "axial_stiffness")
    print(f"  axial stiffness        {k0:9.2f} {k1:9.2f} N/mm   {100 * (k1 / k0 - 1):+6.2f} %")
    for d in seg.discs:
        p0, p1 = pick(ref, d, "nucleus", "pressure"), pick(img, d, "nucleus", "pressure")
        print(f"  {d:7s} nucleus p      {p0:9.4f} {p1:9.4f} MPa    {100 * (p1 / p0 - 1):+6.2f} %")
    for v, b in seg.materials.bmd.items():
        print(f"  {v:4s} vBMD             {bmd:9.2f} {b:9.2f} mg/cm^3 {100 * (b / bmd - 1):+6.2f} %")


def convergence_job(h, ct, labels, calibration, geometry="template", solver="auto", compression=1000.0,
                    density_scale=None):
    """Metrics ``{"metric|level|region": value}`` (:data:`CONVERGENCE_ROWS`) of the image model of ``ct`` and
    ``labels`` at element size ``h`` under ``compression`` N, with the worker's CPU time and peak memory."""
    c0, load0 = time.process_time(), os.getloadavg()[0]
    seg = vf.image_segment(ct, labels, calibration=calibration, element_size=h, geometry=geometry,
                           **_scale(density_scale))
    r = vf.simulate(seg, vf.Load(compression=compression), solver=solver, rtol=1e-8)
    levels = {"segment": ["segment"], "disc": list(seg.discs), "vertebra": list(seg.materials.bmd)}
    df = r.metrics.set_index(["level", "region", "metric"])["value"]
    values = {f"{m}|{lv}|{rg}": float(df[(lv, rg, m)]) for kind, rg, m in CONVERGENCE_ROWS for lv in levels[kind]
              if (lv, rg, m) in df.index}
    values.update({f"bmd|{v}|vertebra": float(b) for v, b in seg.materials.bmd.items()})
    mesh, vol = seg.mesh, r.solution.cell_volume
    for v in seg.materials.bmd:                     # spread of the cells' own vBMD: the image noise they sample
        cells = mesh.cells_in("region", "cancellous") & mesh.cells_in("level", v)
        b, w = mesh.cell_data["bmd"][cells], vol[cells]
        mean = np.average(b, weights=w)
        values[f"bmd_sd|{v}|cancellous"] = float(np.sqrt(np.average((b - mean) ** 2, weights=w)))
    return dict(h=h, geometry=geometry, density_scale=seg.source["density_scale_mm"], cells=int(seg.mesh.n_cells), dofs=int(r.solution.info["dofs"]),
                solver=r.solution.info.get("solver"), cpu=time.process_time() - c0,
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                load=(load0, os.getloadavg()[0]), values=values)


def convergence_table(rows):
    """Markdown table of convergence rows: value per size, change between consecutive sizes and from the size
    nearest 2 mm to the finest (the project's criterion: under 5 %)."""
    sizes = sorted({r["h"] for r in rows}, reverse=True)
    val = {r["h"]: r["values"] for r in rows}
    keys = list(dict.fromkeys(k for r in sorted(rows, key=lambda r: -r["h"]) for k in r["values"]))
    pairs = list(zip(sizes, sizes[1:]))
    if 2.0 in sizes and sizes[-1] < 2.0 and (2.0, sizes[-1]) not in pairs:
        pairs.append((2.0, sizes[-1]))
    out = ["| metric | level | region | " + " | ".join(f"{h:g} mm" for h in sizes) + " | "
           + " | ".join(f"{a:g} -> {b:g} mm" for a, b in pairs) + " |",
           "|---|---|---|" + "---|" * (len(sizes) + len(pairs))]
    for k in keys:
        got = {h: val[h].get(k) for h in sizes}
        cells = ["-" if got[h] is None else f"{got[h]:.4g}" for h in sizes]
        steps = ["-" if got[a] is None or got[b] is None or not got[a] else f"{got[b] / got[a] - 1:+.1%}"
                 for a, b in pairs]
        out.append("| " + " | ".join(k.split("|") + cells + steps) + " |")
    return "\n".join(out)


def convergence(sizes, spacing, bmd, noise, geometry, solver, path=None, density_scale=None):
    """Build the image model of one phantom at each size in its own process (module docstring)."""
    c0 = time.process_time()
    ph = vf.phantom("T12-L2", bmd=bmd, spacing=spacing, noise=noise, seed=0)
    print(f"phantom: {ph.ct.array.shape} voxels of {spacing:g} mm, noise {noise:g} HU, "
          f"{time.process_time() - c0:.1f} s CPU", flush=True)
    rows = []
    for h in sorted(sizes, reverse=True):
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as ex:
            r = ex.submit(convergence_job, h, ph.ct, ph.labels, ph.calibration, geometry, solver, 1000.0,
                          density_scale).result()
        r.update(noise=noise, spacing=spacing, bmd=bmd)
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "values"}), flush=True)
        if path:
            with open(path, "w") as fh:
                json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=float, default=[3.0])
    ap.add_argument("--spacing", type=float, default=1.0)
    ap.add_argument("--bmd", type=float, default=70.0)
    ap.add_argument("--geometry", choices=("template", "voxel"), default="template")
    ap.add_argument("--no-snap", action="store_true")
    ap.add_argument("--convergence", action="store_true", help="mesh convergence of the image model (docstring)")
    ap.add_argument("--noise", type=float, default=15.0, help="phantom noise (HU) of --convergence")
    ap.add_argument("--solver", default="auto", choices=("auto", "direct", "amg"))
    ap.add_argument("--density-scale", type=float, default=None,
                    help="image_segment's density_scale (mm; default its own; 0: the cells sample the image)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--table", nargs="*", default=None, help="with --convergence: table of saved --json files")
    a = ap.parse_args()
    if a.convergence:
        rows = ([r for p in a.table for r in json.load(open(p))] if a.table is not None else
                convergence(a.sizes, a.spacing, a.bmd, a.noise, a.geometry, a.solver, a.json, a.density_scale))
        print(convergence_table(rows))
        raise SystemExit(0)
    for h in a.sizes:
        run(h, a.spacing, a.bmd, geometry=a.geometry, snap=not a.no_snap, density_scale=a.density_scale)
