"""Predicted against measured cost of the direct solver, the inputs of ``solver="auto"``
(``vertebrafe.fem.solver_choice``).

For each model, in a fresh process: the first matrix that the direct solver factorises (the segment's
reference matrix with its springs, the box's stiffness) is taken, and printed are the prediction of
``solver_choice.direct_cost`` (PARDISO's analysis of the node-block graph), PARDISO's own analysis of the
matrix (factor entries, GFlop, its memory figure) with the process time of each analysis, and, with
``--factor``, the measured factorisation (process time, resident-set growth, peak); the process then stops.

    python benchmarks/solver_choice.py box:100k seg:T12-L2:2 seg:T10-L5:2 --factor
    python benchmarks/solver_choice.py box:150k box:400k seg:T12-L2:1         # predictions only

With ``--solve direct,amg`` the same models are solved instead, once per solver, each in a fresh process:
``Model.solve`` (set-up, factorisation or hierarchy, the active-set loop with the springs) timed in process
CPU seconds next to what ``"auto"`` predicts for both (``solver_choice.choose``: its predicted seconds and
its pick), with the CG iterations of all active-set steps and the peak memory; the last column names the
solver that was measured cheaper. These are the calibration data of ``solver_choice``'s constants.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/solver_choice.py \
        seg:T12-L2:3 seg:T12-L2:2 seg:T12-L2:1.75 seg:T12-L2:1.6 seg:T12-L2:1.75:fibres --solve direct,amg

Models: ``box:SIZE`` (the block-with-inclusion box of bench_core.py, ``SIZE`` as there) and
``seg:LEVELS:H`` (``vertebrafe.segment`` with posterior elements, vBMD 100, element size H mm, relaxed
standing; ``seg:LEVELS:H:fibres`` with annulus fibres). One thread (set ``OMP_NUM_THREADS=1
MKL_NUM_THREADS=1``, and ``NUMBA_NUM_THREADS=1`` with ``--solve``).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure(spec, factor):
    from vertebrafe.fem import solver_choice, solvers

    import scipy.sparse as sp
    solvers.pardiso_available()                     # sets the path of MKL (as Model.solve does)
    solvers.PardisoCholesky(sp.identity(10, format="csr"), factorize=False)     # loads MKL: not timed
    original = solvers.factorize

    def intercept(K, selected=None):
        Kb = K.tobsr(blocksize=(3, 3))
        out = {"model": spec, "unknowns": K.shape[0], "predicted": solver_choice.direct_cost(Kb.indptr, Kb.indices)}
        c0 = time.process_time()
        out["analysis"] = solvers.PardisoCholesky(K.tocsc(), factorize=False).statistics
        out["analysis"]["seconds"] = time.process_time() - c0
        if factor:
            r0, c0 = _rss(), time.process_time()
            original(K, selected)
            out["factor"] = {"cpu_s": time.process_time() - c0, "rss_growth": _rss() - r0,
                             "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        print(json.dumps(out), flush=True)
        os._exit(0)

    solvers.factorize = intercept
    _model(spec).solve(solver="direct")


def _model(spec):
    """The FE model of ``box:SIZE`` or ``seg:LEVELS:H[:fibres]`` (as ``simulate`` builds it)."""
    kind, *rest = spec.split(":")
    if kind == "box":
        sys.path.insert(0, HERE)
        import bench_core
        return bench_core._vertebrafe_model(bench_core.grid_shape(bench_core.parse_size(rest[0])), "full")[1]
    import vertebrafe as vf
    from vertebrafe.loads import preset
    from vertebrafe.simulate import build_model
    seg = vf.segment(rest[0], bmd=100.0, element_size=float(rest[1]), posterior=True, fibres=rest[2:] == ["fibres"])
    return build_model(seg, preset("relaxed_standing"))[0]


def _solve(spec, solver):
    """Prints the predictions of ``"auto"`` and the measured ``Model.solve`` with ``solver`` as JSON."""
    tiny = _model("seg:L4-L5:6")                  # numba kernels and MKL loaded: not timed
    tiny.solve(solver="amg")
    tiny.solve(solver="direct")
    model = _model(spec)
    predicted = {}
    pick = model._choose(model._pattern(model._check_ties()), predicted)
    c0, t0 = time.process_time(), time.perf_counter()
    info = model.solve(solver=solver).info
    print(json.dumps({"model": spec, "unknowns": info["dofs"], "pick": pick, "predicted": predicted,
                      "solver": solver, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
                      "iterations": info.get("iterations"), "steps": info.get("active_set_iterations"),
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)


def _solve_table(specs, solvers):
    """One fresh process per (model, solver); a Markdown row per model."""
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| model | free DOFs | predicted direct s | predicted AMG-CG s | \"auto\" | "
          + " | ".join(f"{s} CPU s (peak GB)" for s in solvers) + " | CG it (steps) | measured cheaper |")
    print("|---" * (7 + len(solvers)) + "|")
    failed = 0
    for spec in specs:
        runs = {}
        for solver in solvers:
            run = subprocess.run([sys.executable, __file__, spec, "--worker", "--solve", solver],
                                 capture_output=True, text=True)
            lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
            if lines:
                runs[solver] = json.loads(lines[-1])
            else:
                print(f"| {spec} | {solver} failed: {run.stderr.strip().splitlines()[-1:]} |")
                failed += 1
        if not runs:
            continue
        r = next(iter(runs.values()))
        p = r["predicted"]
        cg = runs.get("amg")
        cells = [spec, f"{r['unknowns']:,}", f"{p['choice_direct_seconds']:.1f}", f"{p['choice_amg_seconds']:.1f}",
                 r["pick"]]
        cells += [f"{runs[s]['cpu_s']:.1f} ({runs[s]['peak_rss'] / 1e9:.2f})" if s in runs else "-" for s in solvers]
        cells += [f"{cg['iterations']} ({cg['steps'] or 1})" if cg else "-",
                  min(runs, key=lambda s: runs[s]["cpu_s"]) if len(runs) > 1 else "-"]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")
    return failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="box:SIZE or seg:LEVELS:H")
    ap.add_argument("--factor", action="store_true", help="also factorise and measure")
    ap.add_argument("--solve", default="", help="comma list of solvers (direct, amg): solve the models with each")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        if args.solve:
            _solve(args.models[0], args.solve)
        else:
            _measure(args.models[0], args.factor)
        return 0
    if args.solve:
        return 1 if _solve_table(args.models, args.solve.split(",")) else 0
    print("| model | unknowns | predicted entries of L | PARDISO's | predicted GFlop | PARDISO's | estimate CPU s "
          "| analysis of the matrix CPU s | predicted memory GB | factorisation CPU s | resident growth GB | peak GB |")
    print("|---" * 12 + "|")
    failed = 0
    for spec in args.models:
        run = subprocess.run([sys.executable, __file__, spec, "--worker"] + (["--factor"] if args.factor else []),
                             capture_output=True, text=True)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"| {spec} | failed: {run.stderr.strip().splitlines()[-1:]} |")
            failed += 1
            continue
        r = json.loads(lines[-1])
        p, a, f = r["predicted"], r["analysis"], r.get("factor", {})
        nnz = a["factor_nonzeros"] % 2 ** 32 if a["factor_nonzeros"] < 0 else a["factor_nonzeros"]   # int32 overflow
        cells = [spec, f"{r['unknowns']:,}", f"{p['factor_nonzeros'] / 1e6:.0f}M", f"{nnz / 1e6:.0f}M",
                 f"{p['flops'] / 1e9:.0f}", f"{a['flops'] / 1e9:.0f}", f"{p['analysis_seconds']:.2f}",
                 f"{a['seconds']:.2f}", f"{p['memory_bytes'] / 1e9:.2f}",
                 f"{f['cpu_s']:.1f}" if f else "-", f"{f['rss_growth'] / 1e9:.2f}" if f else "-",
                 f"{f['peak_rss'] / 1e9:.2f}" if f else "-"]
        print("| " + " | ".join(cells) + " |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
