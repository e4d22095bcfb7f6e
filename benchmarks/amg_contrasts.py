"""Which material contrast costs the CG iterations of a segment: the first linear system that ``simulate``
solves with ``solver="amg"`` (relaxed standing, vBMD 100) under variants that switch one contrast off,
solved to rtol 1e-8 by CG with the AMG preconditioner of the library (``solvers.amg_hierarchy``, the
material-aware strength graph and rigid-body modes of ``Model.solve``; one BLAS thread).

    python benchmarks/amg_contrasts.py --element-size 3
    python benchmarks/amg_contrasts.py --element-size 2 --variants base,nucleus-nu0.45,disc=canc

With springs (posterior elements, a fluid nucleus) the system is that of the first active-set step: the
cells plus the springs active at the start; the hierarchy is built as ``active_set`` builds it (springs
with ``precondition`` in it, dense terms corrected by ``solvers.low_rank_corrected``). "canc" is the
cancellous modulus of the segment (isotropic, nu 0.2). Prints iterations, true residual, AMG levels and
the process CPU seconds of the variant (meshing included).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import vertebrafe as vf                                   # noqa: E402
from vertebrafe.fem import active_set, solvers           # noqa: E402
from vertebrafe.materials import Material                 # noqa: E402
from vertebrafe.simulate import simulate                  # noqa: E402


class _Captured(Exception):
    pass


def capture(seg):
    """The first linear system of ``simulate(seg, "relaxed_standing", solver="amg")``: ``A`` (the matrix of
    the hierarchy), ``B``, ``S`` and, with springs, ``K``, ``rhs``, ``Gf``, ``k``, ``active``, ``in_amg``;
    without, ``f``."""
    seen = {}
    amg0, solve0, init0 = active_set._amg, solvers.Prepared.solve, solvers.Prepared.__init__

    def amg(K, rhs, Gf, k, onset, delta_c, active, in_amg, sets, bounds, rtol, maxiter, B, S, *a):
        A = (K + Gf.T @ sp.diags(k * active * in_amg) @ Gf).tobsr(blocksize=(3, 3))
        seen.update(A=A, B=B, S=S, K=K, rhs=rhs, Gf=Gf, k=k, active=active.copy(), in_amg=in_amg)
        raise _Captured

    def solve(self, f, *a, **kw):
        seen.update(f=f.copy())
        raise _Captured

    def init(self, K, method="auto", near_nullspace=None, strength=None):
        seen.update(A=K, B=near_nullspace, S=strength)

    active_set._amg, solvers.Prepared.solve, solvers.Prepared.__init__ = amg, solve, init
    try:
        simulate(seg, "relaxed_standing", solver="amg", factor_of_risk=False)
    except _Captured:
        pass
    finally:
        active_set._amg, solvers.Prepared.solve, solvers.Prepared.__init__ = amg0, solve0, init0
    return seen


def run(label, seg, t0):
    s = capture(seg)
    with threadpool_limits(limits=1):
        ml = solvers.amg_hierarchy(s["A"], s["B"], s["S"])
        M = solvers.amg_preconditioner(ml)
        if "Gf" in s:
            c = s["k"] * s["active"]
            A = (s["K"] + s["Gf"].T @ sp.diags(c) @ s["Gf"]).tocsr()
            f = s["rhs"]
            out = np.flatnonzero(s["active"] & ~s["in_amg"])
            if out.size:
                M = solvers.low_rank_corrected(M, s["Gf"][out].T, s["k"][out])
        else:
            A, f = s["A"].tocsr(), s["f"]
        count = [0]
        u, _ = spla.cg(A, f, rtol=1e-8, atol=0.0, maxiter=3000, M=M,
                       callback=lambda _: count.__setitem__(0, count[0] + 1))
    res = np.linalg.norm(A @ u - f) / np.linalg.norm(f)
    print(f"| {label} | {A.shape[0]} | {count[0]} | {res:.1e} | {len(ml.levels)} | {time.process_time() - t0:.1f} |",
          flush=True)


def variants(levels, bmd, h):
    """``{name: () -> Segment}``."""
    base = vf.segment(levels, bmd=bmd, element_size=h, posterior=False)
    ms = base.materials
    code = {v: k for k, v in base.mesh.tag_names["region"].items()}
    E = float(np.median(base.mesh.cell_data["modulus"][base.mesh.cell_data["region"] == code["cancellous"]]))
    canc = Material("cancellous_isotropic", E, 0.2, "the segment's cancellous modulus")

    def m(**repl):
        return lambda: base.with_materials(dataclasses.replace(ms, **repl))

    def nu(mat, value):
        return dataclasses.replace(mat, nu=value)

    def seg(**kw):
        return lambda: vf.segment(levels, bmd=bmd, element_size=h, **{"posterior": False, **kw})

    def posterior_canc():
        s = vf.segment(levels, bmd=bmd, element_size=h)
        return s.with_materials(dataclasses.replace(s.materials, posterior=canc))

    return {
        "base": lambda: base,
        "nucleus-nu0.45": m(nucleus=nu(ms.nucleus, 0.45)),
        "nucleus-nu0.4999": m(nucleus=nu(ms.nucleus, 0.4999)),
        "nucleus=annulus": m(nucleus=ms.annulus),
        "annulus-nu0.3": m(annulus=nu(ms.annulus, 0.3)),
        "disc-nu0.3": m(annulus=nu(ms.annulus, 0.3), nucleus=nu(ms.nucleus, 0.3)),
        "cortex=canc": m(cortical=canc),
        "endplate=canc": m(endplate=canc),
        "cortex+endplate=canc": m(cortical=canc, endplate=canc),
        "disc=canc": m(annulus=canc, nucleus=canc),
        "disc-E=canc": m(annulus=dataclasses.replace(ms.annulus, E=E), nucleus=dataclasses.replace(ms.nucleus, E=E)),
        "disc-Ex10": m(annulus=dataclasses.replace(ms.annulus, E=10 * ms.annulus.E),
                       nucleus=dataclasses.replace(ms.nucleus, E=10 * ms.nucleus.E)),
        "disc-Ex10,nucleus-nu0.45": m(annulus=dataclasses.replace(ms.annulus, E=10 * ms.annulus.E),
                                      nucleus=dataclasses.replace(ms.nucleus, E=10 * ms.nucleus.E, nu=0.45)),
        "disc=canc,nucleus-nu0.499": m(annulus=canc, nucleus=nu(canc, 0.499)),
        "all=canc": m(cortical=canc, endplate=canc, annulus=canc, nucleus=canc),
        "cortex-1mm": seg(cortex_thickness=1.0),
        "cortex+endplate-1mm": seg(cortex_thickness=1.0, endplate_thickness=1.0),
        "fluid": seg(nucleus="fluid"),
        "fluid,cells-nu0.45": lambda: seg(nucleus="fluid")().with_materials(
            dataclasses.replace(ms, nucleus=nu(ms.nucleus, 0.45))),
        "posterior": seg(posterior=True),
        "posterior,posterior=canc": posterior_canc,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="T12-L2")
    ap.add_argument("--bmd", type=float, default=100.0)
    ap.add_argument("--element-size", type=float, default=3.0)
    ap.add_argument("--variants", default="", help="';'-separated names (default: all)")
    args = ap.parse_args(argv)
    rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"vertebrafe rev {rev} | {args.levels} at {args.element_size:g} mm | load average {os.getloadavg()[0]:.2f}")
    table = variants(args.levels, args.bmd, args.element_size)
    names = args.variants.split(";") if args.variants else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; allowed: {'; '.join(table)}")
    print("| variant | unknowns | CG it | residual | AMG levels | CPU s |\n|---|---|---|---|---|---|")
    for name in names:
        run(name, table[name](), time.process_time())


if __name__ == "__main__":
    main()
