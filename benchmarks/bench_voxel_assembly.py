"""Assembly of a voxel block: shared reference stiffnesses (the voxel fast path) against integrating every
cell, time and peak memory.

A block of ``n^3`` identical cubes (1 mm) with a per-cell modulus (a density-mapped bone, 50-2000 MPa),
Poisson ratio 0.3 and 0.4999 (nucleus-like cells, one in five) and the B-bar formulation, fixed at the
bottom and loaded through a rigid plate on top, is assembled by ``Model.stiffness`` with
``Model.voxel_fast_path`` True and False, each in its own process (peak resident memory is per process).
The two matrices are compared in the parent (largest entry difference relative to the largest entry).

    python benchmarks/bench_voxel_assembly.py --n 68        # 314 432 cells, 988 035 DOFs
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _model(n):
    import vertebrafe as vf

    mesh = vf.box((float(n), float(n), float(n)), (n, n, n))
    rng = np.random.default_rng(0)
    m = mesh.n_cells
    E = rng.uniform(50.0, 2000.0, m)
    nu = np.where(rng.random(m) < 0.2, 0.4999, 0.3)
    model = vf.Model(mesh, E=E, nu=nu, formulation="bbar")
    model.fix(mesh.node_sets["zmin"], "xyz")
    model.rigid_plate(mesh.node_sets["zmax"]).load(force=(0.0, 0.0, -1000.0))
    return model


def _assemble(model, fast):
    model.voxel_fast_path = fast
    K, _, info = model.stiffness()
    return K, info


def child(n, fast, repeats, out):
    model = _model(n)
    _assemble(_model(2), fast)                                   # compile / load the numba cache
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        K, info = _assemble(model, fast)
        times.append(time.perf_counter() - t0)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(out, K.data[:200000].ravel())
    print(json.dumps(dict(fast=fast, cells=model.mesh.n_cells, dofs=3 * model.mesh.n_points,
                          total_s=min(times),
                          median_s=float(np.median(times)), peak_rss_MB=rss1 / 1024.0,
                          before_MB=rss0 / 1024.0, reference=info["reference_cells"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=68)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=("fast", "generic"))
    ap.add_argument("--out", help=argparse.SUPPRESS)          # children: where to leave the matrix entries
    a = ap.parse_args()
    if a.child:
        child(a.n, a.child == "fast", a.repeats, f"{a.out}_{a.child}.npy")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/K"
        for mode in ("generic", "fast"):
            r = subprocess.run([sys.executable, __file__, "--n", str(a.n), "--repeats", str(a.repeats), "--child",
                                mode, "--out", out], check=True, capture_output=True, text=True)
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        g, f = (np.load(f"{out}_{m}.npy") for m in ("generic", "fast"))
    diff = float(np.abs(g - f).max() / np.abs(g).max())
    print("| path | cells | DOFs | assembly s (min of runs) | median s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {'reference (fast)' if r['fast'] else 'generic'} | {r['cells']} | {r['dofs']} | "
              f"{r['total_s']:.3f} | {r['median_s']:.3f} | {r['peak_rss_MB']:.0f} |")
    print(f"largest difference of the first 200 000 blocks, relative to the largest entry: {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
