"""Posterior column checks: facet forces of T12-L2 under pure moments and axial compression (compare with
docs/validation.md, "Posterior column"), and the mesh dependence of the L4-L5 posterior metrics.

    python benchmarks/validation_posterior.py facets                  # T12-L2, 3 mm, 5 loads
    python benchmarks/validation_posterior.py convergence --sizes 4,3,2   # L4-L5, 5 loads, change per metric
    python benchmarks/validation_posterior.py convergence --fibre-law exponential --sizes 3,2   # the fibre disc
    python benchmarks/validation_posterior.py convergence --prepressure 0 --articular-refinement 2   # stress-free, finer processes
    python benchmarks/validation_posterior.py intact --element-size 3 --moment 7.5   # L4-L5, fibre disc
    python benchmarks/validation_posterior.py intact --fibre-law linear [--disc-only]  # the former linear fibres
    python benchmarks/validation_posterior.py intact --prepressure 0     # without the nucleus swelling pressure
    python benchmarks/validation_posterior.py share [--fibre-law exponential]   # standing share vs extension
    python benchmarks/validation_posterior.py posture --angles free,0,2.2 --height-losses 0,0.91   # posture, creep
"""
import argparse
import json
import math
import time

import numpy as np

from vertebrafe.anatomy import segment
from vertebrafe.anatomy.segment import LYING_PREPRESSURE
from vertebrafe.anatomy.ligaments import FACET_SET, LIGAMENT_SET
from vertebrafe.fem import Setup
from vertebrafe.loads import Load
from vertebrafe.materials import MaterialSet
from vertebrafe.post.posterior import level_forces, level_moments
from vertebrafe.simulate import simulate


def _fibre_free(bmd):
    """The fibre-free disc of the documented numbers: no fibres, solid nucleus, 4.2 MPa homogenised annulus."""
    return dict(fibres=False, nucleus="solid", materials=MaterialSet(bmd=bmd))


def _disc(bmd, fibre_law):
    """The disc of the checks: ``fibre_law="none"`` the fibre-free disc, otherwise annulus fibres with that law
    on the validated ground substance ``annulus_matrix`` (solid nucleus)."""
    if fibre_law == "none":
        return _fibre_free(bmd)
    return dict(fibres=dict(law=fibre_law), materials=MaterialSet(bmd=bmd))


def facets(h):
    s = segment("T12-L2", element_size=h, posterior=True, **_fibre_free(100.0))
    loads = [Load(compression=0.0, flexion=7.5, name="F"), Load(compression=0.0, extension=7.5, name="E"),
             Load(compression=0.0, lateral_bending=7.5, name="LB"),
             Load(compression=0.0, axial_rotation=7.5, name="AR"), Load(compression=400.0, name="C400")]
    for r in simulate(s, loads, factor_of_risk=False):
        row = {d: {"facet_left_N": r.value("facet_force", d, "facet_left"),
                   "facet_right_N": r.value("facet_force", d, "facet_right"),
                   "load_share": r.value("load_share", d, "posterior")} for d in s.discs}
        print(r.load.name, json.dumps(row), flush=True)


CONVERGENCE_METRICS = (("rot_flex", "rotation_flexion", "disc"), ("rot_lat", "rotation_lateral_bending", "disc"),
                       ("rot_axial", "rotation_axial", "disc"), ("facet_L", "facet_force", "facet_left"),
                       ("facet_R", "facet_force", "facet_right"), ("share", "load_share", "posterior"),
                       ("pressure", "pressure", "nucleus")) + tuple(
    (lig, "ligament_force", lig) for lig in ("ALL", "PLL", "LF", "ISL", "SSL", "ITL", "CL"))


def convergence(sizes, solver="auto", names=None, fibre_law="none", prepressure=None, articular_refinement=1):
    """L4-L5 (vBMD 120, fibre-free disc; another ``fibre_law``: the fibre disc of :func:`_disc`) under 7.5 N m extension, axial rotation, flexion, lateral bending and
    the 500 N follower load at each element size: one JSON row per (size, load) as soon as it is solved (the
    loads share one set-up; under the moments also ``M%_<structure>``, the share of the applied moment that
    the disc, each facet joint and each ligament carry, :func:`~vertebrafe.post.posterior.level_moments`),
    then the relative change of every metric between the last two sizes. ``prepressure``: the nucleus swelling
    pressure at rest (MPa; None: the library's default, 0: stress-free discs); ``articular_refinement``: that
    option of :func:`~vertebrafe.anatomy.segment` (1: the default mesh)."""
    loads = [Load(compression=0.0, extension=7.5, name="EXT"), Load(compression=0.0, axial_rotation=7.5, name="AR"),
             Load(compression=0.0, flexion=7.5, name="FLEX"), Load(compression=0.0, lateral_bending=7.5, name="LB"),
             Load(compression=500.0, follower=True, name="STAND")]
    if names:
        known = {ld.name: ld for ld in loads}
        loads = [known[n] for n in names]
    rows = {}
    for h in sizes:
        t, c = time.perf_counter(), time.process_time()
        s = segment("L4-L5", element_size=h, posterior=True, nucleus_prepressure=prepressure,
                    articular_refinement=articular_refinement, **_disc(120.0, fibre_law))
        setup = Setup()
        for ld in loads:
            r = simulate(s, ld, factor_of_risk=False, setup=setup, solver=solver)
            row = {key: r.value(metric, "L4-L5", region) for key, metric, region in CONVERGENCE_METRICS}
            if ld.name != "STAND":          # share (%) of the applied moment each structure carries
                M = level_moments(s, r.solution, "L4-L5")
                applied = M.pop("applied")
                i = int(np.argmax(np.abs(applied)))
                row.update({f"M%_{k}": round(100.0 * float(v[i] / applied[i]), 2) for k, v in M.items()})
            row.update(steps=r.info.get("active_set_iterations"), solver=r.info.get("solver"),
                       cells=s.mesh.n_cells, wall_s=round(time.perf_counter() - t, 1),
                       cpu_s=round(time.process_time() - c, 1))
            rows[(h, ld.name)] = row
            print(h, ld.name, json.dumps(row), flush=True)
    if len(sizes) > 1:
        a, b = sizes[-2], sizes[-1]
        print(f"# relative change {a:g} -> {b:g} mm (|coarse - fine| / |fine|; metrics below 1 N / 0.01 deg skipped)")
        for ld in loads:
            ra, rb = rows[(a, ld.name)], rows[(b, ld.name)]
            for key, _, _ in CONVERGENCE_METRICS:
                floor = 0.01 if key.startswith("rot") else (1e-3 if key in ("share", "pressure") else 1.0)
                if abs(rb[key]) >= floor:
                    ch = abs(ra[key] - rb[key]) / abs(rb[key])
                    print(f"{ld.name:6s} {key:10s} {ra[key]:12.5g} {rb[key]:12.5g} {100 * ch:7.2f} % "
                          f"{'< 3 %' if ch < 0.03 else '>= 3 %'}")


def intact(h, moment, fibre_law="exponential", posterior=True, prepressure=LYING_PREPRESSURE):
    """L4-L5 with the fibre-reinforced disc (fibres, ``annulus_matrix``, solid nucleus; ``fibre_law="none"``: the
    fibre-free disc of the segment default) and posterior elements:
    rotation across the disc, facet and ligament forces under pure moments, and relaxed standing; the moment
    (N m, about the disc centre, along the main axis of the applied moment) that the disc, each facet joint
    and each ligament carry (``M_*_Nm``, ``post.posterior.level_moments``) and their balance error.
    ``prepressure``: the nucleus swelling pressure at rest (MPa, ``segment(..., nucleus_prepressure=)``); the
    rotations are then measured from the rest state and the rows add the nucleus's swelling stress."""
    t, c = time.perf_counter(), time.process_time()
    disc = _disc(120.0, fibre_law)
    s = segment("L4-L5", element_size=h, posterior=posterior, nucleus_prepressure=prepressure, **disc)
    loads = [Load(compression=0.0, **{m: moment}, name=m) for m in ("flexion", "extension", "lateral_bending",
                                                                     "axial_rotation")] + ["relaxed_standing",
                                                                                           "standing_flexed"]
    for r in simulate(s, loads, factor_of_risk=False):
        row = {k: r.value(metric, "L4-L5", "disc") for k, metric in (
            ("rotation_flexion", "rotation_flexion"), ("rotation_lateral_bending", "rotation_lateral_bending"),
            ("rotation_axial", "rotation_axial"))}
        row["pressure"] = r.value("pressure", "L4-L5", "nucleus")
        row["steps"] = r.info.get("active_set_iterations")
        if prepressure:
            row["rest_pressure"] = r.value("rest_pressure", "L4-L5", "nucleus")
            row["swelling_stress"] = r.value("swelling_stress", "L4-L5", "nucleus")
        if not posterior:
            print(r.load.name, json.dumps(row), flush=True)
            continue
        row.update({k: r.value(metric, "L4-L5", region) for k, metric, region in (
            ("facet_left", "facet_force", "facet_left"), ("facet_right", "facet_force", "facet_right"),
            ("load_share", "load_share", "posterior"))})
        row.update({lig: r.value("ligament_force", "L4-L5", lig) for lig in ("ALL", "PLL", "LF", "ISL", "SSL", "ITL", "CL")})
        M = level_moments(s, r.solution, "L4-L5")             # N mm about the disc centre, disc frame
        applied = M.pop("applied")
        i = int(np.argmax(np.abs(applied)))
        row["moment_axis"] = i
        row["moment_balance"] = float(np.abs(sum(M.values()) - applied).max() / np.abs(applied).max())
        row.update({f"M_{k}_Nm": float(v[i]) / 1000.0 for k, v in M.items()})
        print(r.load.name, json.dumps(row), flush=True)
    print(f"# {s.mesh.n_cells} cells, {time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} s CPU")


def share(h, fibre_law="none"):
    """Why the posterior column carries almost none of a standing load: L4-L5 under the 500 N follower load
    plus a growing extension moment (the erect, lordotic posture of Adams & Hutton 1980 is extended) and
    under a vertical (non-follower) 500 N: the rotation across the disc (deg, flexion positive), each facet's
    compression (N) and the posterior share of the axial force (``load_share``)."""
    t, c = time.perf_counter(), time.process_time()
    disc = _disc(120.0, fibre_law)
    s = segment("L4-L5", element_size=h, posterior=True, **disc)
    loads = [Load(compression=500.0, follower=True, extension=m, name=f"follower+E{m:g}")
             for m in (0.0, 1.0, 2.0, 4.0, 7.5)] + [Load(compression=500.0, name="vertical")]
    for r in simulate(s, loads, factor_of_risk=False):
        row = {"rotation_flexion": r.value("rotation_flexion", "L4-L5", "disc"),
               "facet_left": r.value("facet_force", "L4-L5", "facet_left"),
               "facet_right": r.value("facet_force", "L4-L5", "facet_right"),
               "load_share": r.value("load_share", "L4-L5", "posterior"),
               "pressure": r.value("pressure", "L4-L5", "nucleus"),
               **{f"axial_{k}": r.value("axial_force", "L4-L5", k)
                  for k in ("disc", "longitudinal_ligaments", "posterior")}}
        print(r.load.name, json.dumps(row), flush=True)
    print(f"# {s.mesh.n_cells} cells, {time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} s CPU")


def posture_hook(disc, extension=None, height_loss=0.0):
    """``user_loads`` for :func:`~vertebrafe.simulate.simulate` that imposes a posture on a segment whose
    lowest vertebra's base is fixed: ``extension`` (deg, None: free) the top plate's rotation about the
    flexion-extension axis (global x; extension positive, so that ``rotation_flexion`` reads about
    ``-extension``), and ``height_loss`` (mm, >= 0) a loss of disc height by creep at ``disc``: the disc's
    stress-free height shortens by ``height_loss`` along its axis ``a`` while the posterior column and the
    longitudinal ligaments keep theirs. Exactly equivalent (linear kinematics): every facet and ligament
    spring across ``disc`` (end a on the upper vertebra) starts pre-elongated by ``height_loss (n . a)``,
    i.e. its onset moves by ``-height_loss (n . a)``: a facet closing downward starts pre-compressed, a
    ligament along the axis starts slack by ``height_loss``. The annulus fibres creep with the disc (their
    reference is the disc's); the loss is uniform over the disc (no creep-induced rotation)."""
    if height_loss < 0.0:
        raise ValueError(f"height_loss = {height_loss!r} mm; allowed: >= 0")

    def hook(model, seg):
        if extension is not None:
            model.plates[0].prescribe(rotation=(math.radians(extension), None, None))
        if height_loss:
            up, lo = disc.split("-")
            a = seg.frames[up][0][:, 2] + seg.frames[lo][0][:, 2]
            a = a / np.linalg.norm(a)
            for s in model.springs:
                if s.name in (FACET_SET, LIGAMENT_SET):
                    codes = [g for g, label in s.group_names.items() if label.split(":", 1)[0] == disc]
                    sel = np.isin(s.group, codes)
                    s.onset[sel] = s.onset[sel] - height_loss * (s.direction[sel] @ a)
    return hook


def posture(h, angles, losses, fibre_law="none", compression=500.0):
    """The posterior share of a standing load in the posture of the in vitro studies: L4-L5 (vBMD 120) under
    the follower load ``compression`` (N, 500: relaxed standing) with the extension ``angles`` (deg) imposed on the top plate (None: free, the
    follower's own posture) and the creep height losses ``losses`` (mm) of :func:`posture_hook`: one JSON row
    per case with the rotation across the disc (deg, flexion positive), each facet's compression and the ALL's
    tension (N), the axial forces of the three paths (N, tension positive), the posterior share, the axial
    load on the part above the disc and the equilibrium error of the exact force split
    (:func:`~vertebrafe.post.posterior.level_forces`, relative)."""
    t, c = time.perf_counter(), time.process_time()
    s = segment("L4-L5", element_size=h, posterior=True, **_disc(120.0, fibre_law))
    for ang in angles:
        for dh in losses:
            ld = Load(compression=compression, follower=True, name=f"E{ang}/dh{dh:g}")
            r = simulate(s, ld, factor_of_risk=False, user_loads=posture_hook("L4-L5", ang, dh))
            F = level_forces(s, r.solution, "L4-L5")                       # exact split, disc frame
            applied = F.pop("applied")
            row = {"extension_deg": ang, "height_loss_mm": dh,
                   "rotation_flexion": r.value("rotation_flexion", "L4-L5", "disc"),
                   "facet_left": r.value("facet_force", "L4-L5", "facet_left"),
                   "facet_right": r.value("facet_force", "L4-L5", "facet_right"),
                   "ALL": r.value("ligament_force", "L4-L5", "ALL"),
                   "load_share": r.value("load_share", "L4-L5", "posterior"),
                   "pressure": r.value("pressure", "L4-L5", "nucleus"),
                   **{f"axial_{k}": r.value("axial_force", "L4-L5", k)
                      for k in ("disc", "longitudinal_ligaments", "posterior")},
                   "applied_axial": float(applied[2]),
                   "equilibrium": float(np.abs(sum(F.values()) - applied).max() / np.abs(applied).max()),
                   "steps": r.info.get("active_set_iterations")}
            print(ld.name, json.dumps(row), flush=True)
    print(f"# {s.mesh.n_cells} cells, {time.perf_counter() - t:.0f} s wall, {time.process_time() - c:.0f} s CPU")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=("facets", "convergence", "intact", "share", "posture"))
    ap.add_argument("--element-size", type=float, default=3.0, help="facets, intact: element size (mm)")
    ap.add_argument("--moment", type=float, default=7.5, help="intact: pure moment (N m)")
    ap.add_argument("--fibre-law", default=None, help="intact, share, convergence: annulus fibre law (exponential, the intact "
                    "default; linear; none: the fibre-free disc of the segment default, the share and convergence default)")
    ap.add_argument("--angles", default="free,0,1,2.2,3,4", help="posture: imposed extension (deg; free: the "
                    "follower's own posture)")
    ap.add_argument("--height-losses", default="0,0.91,1.82", help="posture: creep losses of disc height (mm)")
    ap.add_argument("--compression", type=float, default=500.0, help="posture: follower load (N)")
    ap.add_argument("--disc-only", action="store_true", help="intact: the same disc without posterior elements")
    ap.add_argument("--prepressure", type=float, default=LYING_PREPRESSURE,
                    help="intact, convergence: nucleus swelling pressure at rest (MPa; default the library's, 0.1 lying "
                         "prone; 0: none)")
    ap.add_argument("--articular-refinement", type=int, default=1,
                    help="convergence: segment(..., articular_refinement=k), the articular processes' cell layers x k")
    ap.add_argument("--sizes", default="4,3,2", help="convergence: element sizes (mm), coarse to fine")
    ap.add_argument("--solver", default="auto", help="convergence: linear solver (auto, direct, amg)")
    ap.add_argument("--loads", default="", help="convergence: some of EXT,AR,FLEX,LB,STAND, in this order")
    a = ap.parse_args()
    if a.check == "facets":
        facets(a.element_size)
    elif a.check == "intact":
        intact(a.element_size, a.moment, a.fibre_law or "exponential", not a.disc_only, a.prepressure)
    elif a.check == "share":
        share(a.element_size, a.fibre_law or "none")
    elif a.check == "posture":
        posture(a.element_size, [None if x == "free" else float(x) for x in a.angles.split(",")],
                [float(x) for x in a.height_losses.split(",")], a.fibre_law or "none", a.compression)
    else:
        convergence([float(x) for x in a.sizes.split(",")], a.solver, [n for n in a.loads.split(",") if n],
                    a.fibre_law or "none", a.prepressure, a.articular_refinement)
