#!/usr/bin/env python
"""Where the default vertebroplasty bolus sits: its clearance from the cortex and the endplates, and whether
``surface="pillowed"`` accepts it.

Meshes only (no solve). For L1 of T12-L2 (posterior elements: the default segment), intact or after a grade-2
wedge fracture (``--states``), at vBMD ``--bmds`` and element sizes ``--sizes``, each bolus of ``--boluses``
(``APPROACH:ML``; ``unipedicular:default`` is that approach's default volume) at the default place moved
posterior by each of ``--offsets`` (mm, the offset's anterior component negated):

* the bolus as :func:`vertebrafe.vertebroplasty` places it: the ellipsoids of
  :func:`vertebrafe.clinical.augment.bolus_geometry` (the body frame of
  :func:`~vertebrafe.clinical.augment.body_frame_sizes`) at the scale the library finds for the volume (the
  ``bolus_scale`` of ``surface="mixed"``, before any snapping), clipped to the central ``vertical_extent``
  (0.7) of the height along each node column;
* the walls: the faces between the level's cancellous cells and its other cells (the cancellous bone's
  boundary), ``endplate`` those against an endplate cell, ``cortex`` the others (the shell and, with posterior
  elements, the pedicle bases), each sampled on a grid about ``--spacing`` mm apart;
* the clearance of a wall (mm), signed:

  - where the clipped ellipsoid runs beyond the wall (a wall sample point lies inside an ellipsoid and, by the
    clip's signed distance interpolated from the nodes as the library's vertical mask is, inside the slab),
    minus the deepest such point's distance to the ellipsoid (exact, :func:`signed_distance`; the clip's
    along the column where that is smaller): the cement, made of cancellous cells, fills up to the wall, and
    the ellipsoid would go that much farther;
  - otherwise the Euclidean distance from the wall's sample points to the bolus's own sample points (a
    :class:`~vertebrafe.clinical.augment.Sampler` of the level's cancellous cells about ``--spacing`` mm apart,
    those inside an ellipsoid and the vertical mask, as ``vertebroplasty`` samples the bolus): an upper
    bound, above the true distance by at most the two samplings' half-diagonals (0.4 mm at 0.25 mm);

  ``where``: the nearest wall point's direction from the body's centre, degrees in the horizontal plane (0
  anterior, +-90 lateral, 180 posterior), with its height fraction (0 inferior, 1 superior endplate level at
  the middle point);
* ``pillowed`` at each of ``--pillow-sizes`` (those of ``--sizes`` by default): ``ok`` when
  ``vertebroplasty(..., surface="pillowed")`` accepts the bolus, else the refusal, abbreviated (``wall``:
  within a cell of the cortex or endplates; ``pair``: the two boluses within a cell of each other; ``tangle``
  (a corner's scaled Jacobian <= 0 left after the untangling), ``reach``: MeshError); the messages themselves
  are printed once each at the end.

vBMD changes the materials only; it is a loop here to show that. Usage::

    python benchmarks/bolus_placement.py --json out.json          # the full table at 2 and 1.5 mm (25 min of CPU)
    python benchmarks/bolus_placement.py --states wedge --bmds 60 --sizes 1 --offsets 0,1,2,3,4
    python benchmarks/bolus_placement.py --states wedge --bmds 100 --sizes 4 --boluses bipedicular:4 \\
        --offsets 0 --spacing 1                                   # a quick look

Units: mm, mL.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inclusion_convergence import _revision  # noqa: E402

LEVEL = "L1"


def walls(segment, level, extent, spacing):
    """Sample points of the level's cancellous boundary in its local frame: ``{"cortex" | "endplate": (x (k, 3),
    d_S (k,))}``, ``d_S`` the clip's signed distance (mm, negative inside the central ``extent``)."""
    from vertebrafe.clinical._common import column_fraction, level_nodes, to_local
    from vertebrafe.clinical.augment import level_cells
    from vertebrafe.elements import HEX8_FACES
    from vertebrafe.mesh.pillow import boundary_quads

    mesh = segment.mesh
    cells = np.asarray(mesh.cells, np.int64)
    region = np.asarray(mesh.cell_data["region"])
    names = {v: k for k, v in mesh.tag_names["region"].items()}
    here = level_cells(mesh, level)
    quads, _ = boundary_quads(cells, here & (region == names["cancellous"]))
    plate = cells[here & (region == names["endplate"])][:, HEX8_FACES].reshape(-1, 4)
    on_plate = _rows_in(np.sort(quads, axis=1), np.sort(plate, axis=1))

    nodes = level_nodes(segment, level)
    P = mesh.points
    col = nodes.body % nodes.n2
    zeta = column_fraction(P, nodes.body, nodes.inferior, nodes.superior, nodes.n2)
    length = np.linalg.norm(P[nodes.superior[col]] - P[nodes.inferior[col]], axis=1)
    c = 0.5 * (1.0 - extent)
    d_s = np.zeros(mesh.n_points)
    d_s[nodes.body] = np.maximum(c - zeta, zeta - (1.0 - c)) * length

    X = to_local(segment, level, P)
    n = max(2, math.ceil(float(segment.element_size) / spacing) + 1)
    u, v = (g.ravel() for g in np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n)))
    N = np.stack([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], axis=1)        # bilinear, (n^2, 4)
    out = {}
    for name, sel in (("cortex", ~on_plate), ("endplate", on_plate)):
        q = quads[sel]
        out[name] = (np.einsum("sa,fai->fsi", N, X[q]).reshape(-1, 3), np.einsum("sa,fa->fs", N, d_s[q]).ravel())
    return out


def _rows_in(a, b):
    """Bool ``(len(a),)``: which rows of the int array ``a`` are rows of ``b``."""
    view = np.dtype((np.void, a.dtype.itemsize * a.shape[1]))
    return np.isin(np.ascontiguousarray(a).view(view).ravel(), np.ascontiguousarray(b).view(view).ravel())


def signed_distance(x, centres, rots, axes):
    """Exact signed distance (mm) of local points ``x (k, 3)`` to the union of the ellipsoids (negative inside;
    the smaller over the ellipsoids; closest points by :func:`~vertebrafe.clinical.pillowed.closest_on_ellipsoid`)."""
    from vertebrafe.clinical.pillowed import closest_on_ellipsoid

    d = []
    for c, R, a in zip(centres, rots, axes):
        y = closest_on_ellipsoid(x, c, R, a)
        inside = np.sum((((x - c) @ R) / a) ** 2, axis=1) < 1.0
        d.append(np.where(inside, -1.0, 1.0) * np.linalg.norm(x - y, axis=1))
    return np.min(d, axis=0)


def place(segment, approach, volume, offset_y):
    """``(centres, rots, axes)`` of the bolus as placed (local frame, mm, at the library's scale), the scale,
    the body's ``(W, D, H, z_c, y_c)`` and the volume (mL)."""
    import vertebrafe as vf
    from vertebrafe.clinical.augment import body_frame_sizes, bolus_geometry

    off = (0.0, -float(offset_y), 0.0)
    treated = vf.vertebroplasty(segment, LEVEL, volume=volume, approach=approach, offset=off, surface="mixed")
    s = float(treated.history[-1].results["bolus_scale"])
    frame = body_frame_sizes(segment, LEVEL, segment.mesh.points)
    centres, rots, axes = bolus_geometry(approach, *frame, offset=off)
    return centres, rots, axes * s, s, frame, treated.history[-1].parameters["volume_mL"]


def bolus_samples(segment, level, extent, spacing):
    """Local sample points ``(k, 3)`` of the level's cancellous cells within the central ``extent`` of the
    height (the library's vertical mask), about ``spacing`` mm apart."""
    from vertebrafe.clinical.augment import Sampler, endplate_distances, level_cells, vertical_mask

    mesh = segment.mesh
    names = {v: k for k, v in mesh.tag_names["region"].items()}
    cancellous = level_cells(mesh, level) & (np.asarray(mesh.cell_data["region"]) == names["cancellous"])
    sampler = Sampler(segment, level, mesh.points, cancellous, max(2, math.ceil(float(segment.element_size) / spacing)))
    d_inf, d_sup, height = endplate_distances(segment, level, mesh.points, sampler)
    return sampler.x[vertical_mask(d_inf, d_sup, height, extent)]


def clearance(wall, samples, bolus, frame):
    """``(clearance mm, azimuth deg, height fraction)`` of one wall (module docstring) from its sample points and
    clip distances ``wall``, the cancellous samples within the clip ``samples`` and the ellipsoids ``bolus``."""
    from scipy.spatial import cKDTree

    x, d_s = wall
    d = np.maximum(signed_distance(x, *bolus), d_s)
    if d.min() >= 0.0:
        c, R, a = bolus
        r = np.min([np.sum((((samples - ci) @ Ri) / ai) ** 2, axis=1) for ci, Ri, ai in zip(c, R, a)], axis=0)
        d = cKDTree(samples[r <= 1.0]).query(x)[0]
    i = int(np.argmin(d))
    _, _, H, zc, yc = frame
    az = math.degrees(math.atan2(x[i, 0], x[i, 1] - yc))
    return float(d[i]), az, float((x[i, 2] - zc) / H + 0.5)


def pillowed(segment, approach, volume, offset_y):
    """``"ok"`` or the refusal (``(code, message)``) of ``surface="pillowed"``."""
    import vertebrafe as vf
    from vertebrafe.errors import InputError, MeshError

    try:
        vf.vertebroplasty(segment, LEVEL, volume=volume, approach=approach, offset=(0.0, -float(offset_y), 0.0),
                          surface="pillowed")
    except (InputError, MeshError) as exc:
        msg = str(exc)
        code = ("wall" if "clear of the cortex" in msg else "pair" if "connected cell sets" in msg else
                "tangle" if "tangled" in msg else "reach" if "lies up to" in msg else "other")
        return code, msg
    return "ok", ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--states", default="intact,wedge", help="intact, wedge (grade-2 wedge fracture of L1)")
    ap.add_argument("--bmds", default="60,100,140", help="vBMD (mg/cm^3)")
    ap.add_argument("--sizes", default="2,1.5", help="element sizes (mm)")
    ap.add_argument("--pillow-sizes", default=None,
                    help="sizes (mm) at which surface='pillowed' is tried (default: every size; '': none)")
    ap.add_argument("--boluses", default="bipedicular:2,bipedicular:4,bipedicular:6,unipedicular:default",
                    help="APPROACH:ML, comma separated ('default': the library's default volume)")
    ap.add_argument("--offsets", default="0,1,2,3,4", help="posterior offsets (mm)")
    ap.add_argument("--spacing", type=float, default=0.25, help="wall sample spacing (mm)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import vertebrafe as vf
    from vertebrafe.clinical.augment import DEFAULT_VERTICAL_EXTENT

    bad = sorted(set(a.states.split(",")) - {"intact", "wedge"})
    if bad:
        raise SystemExit(f"--states: {','.join(bad)!r}; allowed intact, wedge")
    sizes = [float(h) for h in a.sizes.split(",")]
    psizes = sizes if a.pillow_sizes is None else [float(h) for h in a.pillow_sizes.split(",") if h]
    boluses = [(b.split(":")[0], None if b.split(":")[1] == "default" else float(b.split(":")[1]))
               for b in a.boluses.split(",")]
    offsets = [float(o) for o in a.offsets.split(",")]
    print(f"vertebrafe {vf.__version__} rev {_revision()} | python {platform.python_version()} | "
          f"{platform.processor() or platform.machine()} | load {os.getloadavg()[0]:.1f}")
    print("clearance (mm) of the clipped bolus from the cancellous bone's boundary; where: azimuth deg (0 anterior), "
          "height fraction; pillowed at " + " / ".join(f"{h:g}" for h in psizes) + " mm")
    print(f"{'state':<7}{'vBMD':>5}{'h':>5} {'bolus':<17}{'post':>5}{'scale':>7}{'cortex':>8}{'where':>12}"
          f"{'endplate':>9}{'where':>12}  pillowed")
    rows, messages = [], {}
    t0 = time.process_time()
    for state in a.states.split(","):
        for bmd in (float(b) for b in a.bmds.split(",")):
            for h in sizes:
                seg = vf.segment("T12-L2", bmd=bmd, element_size=h)
                if state == "wedge":
                    seg = vf.fracture(seg, LEVEL, kind="wedge", grade=2)
                wl = walls(seg, LEVEL, DEFAULT_VERTICAL_EXTENT, a.spacing)
                inner = bolus_samples(seg, LEVEL, DEFAULT_VERTICAL_EXTENT, a.spacing)
                for approach, volume in boluses:
                    for off in offsets:
                        c, R, ax, s, frame, ml = place(seg, approach, volume, off)
                        cor = clearance(wl["cortex"], inner, (c, R, ax), frame)
                        ep = clearance(wl["endplate"], inner, (c, R, ax), frame)
                        pil = {}
                        for hp in psizes:
                            if hp == h:
                                code, msg = pillowed(seg, approach, volume, off)
                                pil[f"{hp:g}"] = code
                                if msg:
                                    messages.setdefault(code, msg)
                        name = f"{approach[:3]} {ml:g} mL"
                        print(f"{state:<7}{bmd:>5.0f}{h:>5g} {name:<17}{off:>5g}{s:>7.3f}{cor[0]:>8.2f}"
                              f"{cor[1]:>6.0f} {cor[2]:>5.2f}{ep[0]:>9.2f}{ep[1]:>6.0f} {ep[2]:>5.2f}  "
                              + " ".join(pil.values()), flush=True)
                        rows.append(dict(state=state, bmd=bmd, h=h, approach=approach, volume_mL=ml,
                                         posterior_mm=off, scale=s, cortex_mm=cor[0], cortex_azimuth=cor[1],
                                         cortex_height=cor[2], endplate_mm=ep[0], endplate_azimuth=ep[1],
                                         endplate_height=ep[2], pillowed=pil))
    for code, msg in messages.items():
        print(f"{code}: {msg}")
    print(f"CPU {time.process_time() - t0:.1f} s, load {os.getloadavg()[0]:.1f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(revision=_revision(), args=vars(a), rows=rows, messages=messages), fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
