"""Range of motion of L4-L5 under pure moments against published in vitro data, and the nucleus pressure
under the published loading modes of standing and standing flexed against Wilke et al. 1999.

    python benchmarks/validation_rom.py --element-size 2            # the default segment model
    python benchmarks/validation_rom.py --element-size 3 --fibres true --annulus annulus_matrix
    python benchmarks/validation_rom.py --convergence 2,1          # key disc metrics, 2 -> 1 mm
    python benchmarks/validation_rom.py --convergence 2,1 --solver amg   # the same in less memory

Pure moments (no preload) of each mode at the moments of the references (vertebrafe.validation.
ROM_REFERENCES), rotation across the disc (``rotation_*`` of level L4-L5, region ``disc``); nucleus
pressure under ``relaxed_standing`` (500 N follower load) and ``standing_flexed`` (1175 N follower +
7.5 N m flexion). Prints one line per comparison: found, published, band, inside.

Convergence (``--convergence 2,1``): at each element size the key disc metrics -- nucleus pressure,
disc height change and segment axial stiffness under relaxed standing, and the four rotations at 7.5 N m
-- and their change against the finest size.

``--solver`` is passed to every solve (``simulate(..., solver=...)``, :meth:`vertebrafe.Model.solve`): ``auto``
(default) chooses by size, ``direct`` factorises (fast to 2 mm; at 1 mm the disc-only segment's factorisation
went past 4.9 GB resident), ``amg`` runs AMG-preconditioned CG to the default relative residual 1e-8 (about
2 GB at 1 mm).
"""
import argparse
import inspect
import time

import vertebrafe as vf
from vertebrafe.loads import Load
from vertebrafe.materials import MaterialSet
from vertebrafe.simulate import simulate
from vertebrafe.validation import ROM_MODES, ROM_REFERENCES, rom_rows

#: Wilke et al. 1999 (Spine 24:755), L4-L5 intradiscal pressure in vivo, MPa; +-20 % bands.
WILKE = {"relaxed_standing": 0.50, "standing_flexed": 1.10}


def _bool(text):
    return {"true": True, "false": False}[text.lower()]


def _materials(args):
    """The MaterialSet with ``--annulus`` as the annulus of the disc model asked for (``--fibres``)."""
    default = inspect.signature(vf.segment).parameters["fibres"].default not in (None, False)
    fibres = default if args.fibres is None else args.fibres
    return MaterialSet(bmd=args.bmd, **{"annulus_matrix" if fibres else "annulus": args.annulus})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--element-size", type=float, default=2.0)
    ap.add_argument("--bmd", type=float, default=120.0)
    ap.add_argument("--fibres", type=_bool, default=None, help="true/false (default: segment's default)")
    ap.add_argument("--nucleus", default=None, help="solid/fluid (default: segment's default)")
    ap.add_argument("--annulus", default=None, help="annulus material (a key of vertebrafe.materials.MATERIALS): the "
                    "ground substance (MaterialSet.annulus_matrix) with fibres, the homogenised annulus without")
    ap.add_argument("--modes", default=",".join(ROM_MODES), help="comma list of modes of the pure-moment cases "
                    "(also of --convergence)")
    ap.add_argument("--standing", type=_bool, default=True, help="--convergence: include the relaxed-standing "
                    "metrics (pressure, disc height change, stiffness); false to split a fine size over processes")
    ap.add_argument("--convergence", default="", help="comma list of element sizes (mm), coarse to fine")
    ap.add_argument("--posterior", type=_bool, default=False, help="posterior elements (where supported)")
    ap.add_argument("--solver", choices=("auto", "direct", "amg"), default="auto",
                    help="linear solver of every solve (simulate's solver=): auto chooses by size (default), direct "
                    "factorises, amg runs AMG-preconditioned CG (rtol 1e-8; far less memory at 1 mm)")
    args = ap.parse_args()
    kw = {k: v for k, v in (("fibres", args.fibres), ("nucleus", args.nucleus)) if v is not None}
    if "posterior" in inspect.signature(vf.segment).parameters:
        kw["posterior"] = args.posterior
    elif args.posterior:
        raise SystemExit("this version of vertebrafe.segment has no posterior elements")
    specimen = "intact" if args.posterior else "disc"
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(ROM_MODES))
    if unknown:
        raise SystemExit(f"--modes: {unknown} unknown; known: {list(ROM_MODES)}")
    if args.convergence:
        convergence([float(h) for h in args.convergence.split(",")], args, kw, solver=args.solver)
        return
    if args.annulus is not None:
        kw["materials"] = _materials(args)
    else:
        kw["bmd"] = args.bmd
    seg = vf.segment(["L4", "L5"], element_size=args.element_size, **kw)
    kw.pop("materials", None)
    annulus = seg.materials.annulus_matrix if seg.fibres is not None else seg.materials.annulus
    print(f"# {seg}; annulus {annulus.name}, fibres {seg.fibres is not None}, nucleus {seg.nucleus}, "
          f"solver {args.solver}",
          flush=True)

    moments = sorted({m for r in ROM_REFERENCES if r.specimen == specimen for m in r.moments if m is not None}) or [7.5]
    cases = [(mode, m) for mode in modes for m in moments]
    t = time.perf_counter()
    results = simulate(seg, [Load(**{ROM_MODES[mode][0]: m}) for mode, m in cases], factor_of_risk=False,
                       solver=args.solver)
    rot = {c: r.value(ROM_MODES[c[0]][1], level="L4-L5", region="disc") for c, r in zip(cases, results)}
    if seg.posterior is not None:                          # facet joint forces under the pure moments
        for (mode, m), r in zip(cases, results):
            f = [r.value("facet_force", level="L4-L5", region=f"facet_{side}") for side in ("left", "right")]
            print(f"facets           {mode:16s} {m:g} N m: facet force left {f[0]:.1f} N, right {f[1]:.1f} N",
                  flush=True)
    print(f"# {len(cases)} pure-moment cases in {time.perf_counter() - t:.1f} s", flush=True)
    if not any(r.specimen == specimen for r in ROM_REFERENCES):
        print(f"# no published {specimen} ranges in vertebrafe.validation.ROM_REFERENCES: rotations only")
        for (mode, m), a in rot.items():
            print(f"{specimen:16s} {mode:16s} rotation    found {abs(a):6.3f} deg at {m:g} N m", flush=True)
    for row in (rom_rows(rot, specimen) if any(r.specimen == specimen for r in ROM_REFERENCES) else []):
        band = "-" if row["band"] is None else f"{row['band'][0]:.2f}-{row['band'][1]:.2f}"
        inside = {None: "no band", True: "inside", False: "OUTSIDE"}[row["inside"]]
        print(f"{row['reference']:16s} {row['mode']:16s} {row['quantity']:11s} found {row['found']:6.3f} "
              f"published {row['published']:6.3f} band {band:11s} {row['unit']:9s} {inside}", flush=True)

    t = time.perf_counter()
    names = list(WILKE)
    for name, r in zip(names, simulate(seg, names, factor_of_risk=False, solver=args.solver)):
        p = r.value("pressure", level="L4-L5", region="nucleus")
        if name == "relaxed_standing" and seg.posterior is not None:
            print(f"# relaxed standing: posterior column share of the axial force "
                  f"{r.value('load_share', level='L4-L5', region='posterior'):.3f}", flush=True)
        if name == "relaxed_standing":
            print(f"# relaxed standing: segment axial stiffness {r.value('axial_stiffness'):.0f} N/mm, disc height "
                  f"change {r.value('height_change', level='L4-L5'):.4f} mm", flush=True)
        ref = WILKE[name]
        inside = "inside" if abs(p / ref - 1.0) <= 0.2 else "OUTSIDE"
        print(f"wilke1999        {name:16s} pressure    found {p:6.3f} published {ref:6.3f} band "
              f"{0.8 * ref:.2f}-{1.2 * ref:.2f} MPa       {inside} ({100 * (p / ref - 1):+.1f} %)", flush=True)
    print(f"# pressure cases in {time.perf_counter() - t:.1f} s", flush=True)


def key_metrics(seg, solver="auto", modes=tuple(ROM_MODES), standing=True):
    """Key disc metrics of L4-L5: relaxed standing (pressure, disc height change, segment stiffness; unless
    ``standing`` is false) and the rotation across the disc under 7.5 N m in each of ``modes``, solved with
    ``solver``."""
    loads = (["relaxed_standing"] if standing else []) + [Load(**{ROM_MODES[m][0]: 7.5}) for m in modes]
    res = simulate(seg, loads, factor_of_risk=False, solver=solver)
    out = {}
    if standing:
        out = {"pressure (MPa)": res[0].value("pressure", level="L4-L5", region="nucleus"),
               "disc height change (mm)": res[0].value("height_change", level="L4-L5"),
               "axial stiffness (N/mm)": res[0].value("axial_stiffness")}
    for mode, r in zip(modes, res[len(res) - len(modes):]):
        out[f"{mode} 7.5 N m (deg)"] = abs(r.value(ROM_MODES[mode][1], level="L4-L5", region="disc"))
    out["active-set steps (max)"] = max(r.info.get("active_set_iterations", 0) for r in res)
    return out


def convergence(sizes, args, kw, solver="auto"):
    rows = {}
    for h in sizes:
        t, cpu = time.perf_counter(), time.process_time()
        seg_kw = dict(kw)
        if args.annulus is not None:
            seg_kw["materials"] = _materials(args)
        else:
            seg_kw["bmd"] = args.bmd
        seg = vf.segment(["L4", "L5"], element_size=h, **seg_kw)
        rows[h] = key_metrics(seg, solver=solver, modes=args.modes.split(","), standing=args.standing)
        print(f"# {h:g} mm: {seg.mesh.n_cells} cells, {3 * seg.mesh.n_points} DOFs, {time.perf_counter() - t:.0f} s "
              f"({time.process_time() - cpu:.0f} s CPU), solver {solver}; "
              + ", ".join(f"{k} {v:.7g}" for k, v in rows[h].items()), flush=True)
    fine = rows[sizes[-1]]
    for h in sizes[:-1]:
        print(f"change {h:g} -> {sizes[-1]:g} mm: " + ", ".join(
            f"{k} {100 * abs(rows[h][k] / fine[k] - 1):.2f} %" for k in fine if "steps" not in k), flush=True)


if __name__ == "__main__":
    main()
