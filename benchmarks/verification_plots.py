"""Convergence plots of the FE core for docs/verification.md.

Runs the verification problems of :mod:`vertebrafe.verification` (those of tests/verification) on a
sequence of meshes and plots:

- ``docs/figures/convergence_manufactured.png``: relative L2 displacement error and energy-norm error of
  the manufactured solution (body force, all-Dirichlet boundary; isotropic and orthotropic, full and
  B-bar, regular and smoothly mapped meshes) against the cell size, with slopes 2 and 1 for reference;
- ``docs/figures/convergence_cantilever.png``: the relative error of the cantilever tip deflection
  against Timoshenko beam theory, full integration and B-bar, against the cell length.

The printed tables are the numbers behind the plots.

    python benchmarks/verification_plots.py                # 4, 8, 16, 24 cells per side (about a minute)
"""
import argparse
import os

import matplotlib
import numpy as np

from vertebrafe import verification as vv

matplotlib.use("Agg")
import matplotlib.pyplot as plt                            # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def manufactured_study(ns):
    rows = []
    for material, formulation, mapped in vv.MANUFACTURED_CASES:
        C = vv.MATERIALS[material]
        for n in ns:
            l2, energy, _ = vv.manufactured_errors(n, C, formulation, mapped)
            rows.append((material, formulation, mapped, n, l2, energy))
            print(f"{material:11s} {formulation:4s} mapped={mapped!s:5s} n={n:3d}  L2 {l2:.3e}  energy {energy:.3e}",
                  flush=True)
    return rows


def cantilever_study(meshes):
    rows = []
    for formulation in ("full", "bbar"):
        for shape in meshes:
            _, _, work = vv.cantilever_tip_deflection(shape, formulation)
            err = work / vv.DELTA_TIMOSHENKO - 1.0
            rows.append((formulation, vv.L / shape[0], err))
            print(f"cantilever {formulation:4s} {shape}: tip deflection error vs Timoshenko {err:+.3%}", flush=True)
    return rows


def plot_manufactured(rows, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True)
    for (material, formulation, mapped) in vv.MANUFACTURED_CASES:
        sel = [r for r in rows if r[:3] == (material, formulation, mapped)]
        h = np.array([max(vv.LENGTHS) / r[3] for r in sel])
        label = f"{material}, {formulation}{', mapped' if mapped else ''}"
        for ax, col in zip(axes, (4, 5)):
            ax.loglog(h, [r[col] for r in sel], "o-", label=label)
    h = np.array([max(vv.LENGTHS) / n for n in sorted({r[3] for r in rows})])
    for ax, rate, name in zip(axes, (2, 1), ("L2 displacement error", "energy-norm error")):
        ref = [r[4 if rate == 2 else 5] for r in rows][0] * (h / h[0]) ** rate
        ax.loglog(h, ref, "k--", lw=1, label=f"slope {rate}")
        ax.set_xlabel("cell size h (mm)")
        ax.set_ylabel(f"relative {name}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Manufactured solution, hex8: observed convergence")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_cantilever(rows, path):
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for formulation in ("full", "bbar"):
        sel = [r for r in rows if r[0] == formulation]
        ax.loglog([r[1] for r in sel], [abs(r[2]) for r in sel], "o-", label=formulation)
    a = np.array([r[1] for r in rows if r[0] == "full"])
    e0 = abs([r[2] for r in rows if r[0] == "full"][0])
    ax.loglog(a, e0 * (a / a[0]) ** 2, "k--", lw=1, label="slope 2")
    ax.set_xlabel("cell length along the beam (mm)")
    ax.set_ylabel("|tip deflection / Timoshenko - 1|")
    ax.set_title("Cantilever L/h = 10, tip shear load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4,8,16,24", help="cells per side of the manufactured-solution meshes")
    ap.add_argument("--beam-cells", default=",".join(str(s[0]) for s in vv.CANTILEVER_MESHES),
                    help="cells along the cantilever (multiples of 10; L/10 cells across)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "figures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    ns = [int(s) for s in args.sizes.split(",")]
    plot_manufactured(manufactured_study(ns), os.path.join(args.out, "convergence_manufactured.png"))
    beams = [(n, n // 10, n // 10) for n in (int(s) for s in args.beam_cells.split(","))]
    if any(n % 10 or n < 10 for n, _, _ in beams):
        ap.error(f"--beam-cells = {args.beam_cells!r}; allowed: multiples of 10 (cells along the beam)")
    plot_cantilever(cantilever_study(beams), os.path.join(args.out, "convergence_cantilever.png"))
    print(f"wrote {args.out}/convergence_manufactured.png and convergence_cantilever.png")


if __name__ == "__main__":
    main()
