"""Predicted against measured cost of the direct solver, the inputs of ``solver="auto"``
(``vertebrafe.fem.solver_choice``).

For each model, in a fresh process: the first matrix that the direct solver factorises (the segment's
reference matrix with its springs, the box's stiffness) is taken, and printed are the prediction of
``solver_choice.direct_cost`` (PARDISO's analysis of the node-block graph), PARDISO's own analysis of the
matrix (factor entries, GFlop, its memory figure) with the process time of each analysis, and, with
``--factor``, the measured factorisation (process time, resident-set growth, peak); the process then stops.

    python benchmarks/solver_choice.py box:100k seg:T12-L2:2 seg:T10-L5:2 --factor
    python benchmarks/solver_choice.py box:150k box:400k seg:T12-L2:1         # predictions only

With ``--solve direct,amg`` the same models are solved instead, each in one fresh process: after a small
model of the same kind has been solved by both (kernels compiled, MKL loaded), ``Model.solve`` (set-up,
factorisation or hierarchy, the active-set loop with the springs) is timed in process CPU seconds with each
solver ``--repeat`` times, the order alternating every round (direct, amg, amg, direct, ...) and every
solve starting from the springs' initial state, so that both solvers see the same load on a shared
machine. Printed next to what ``"auto"`` predicts for both (``solver_choice.choose``: its predicted seconds
and its pick): the median CPU of each solver (and its range), the CG iterations of all active-set steps,
AMG-CG's set-up CPU per unknown and the rest of its CPU per unknown and CG iteration, the direct solve's
factorisation flops per CPU second, the direct / AMG CPU ratio of each round, the load average, the
process's peak memory and the solver measured cheaper; then the mean of each rate over the models and
``solver_choice``'s constants. These are the calibration data of those constants (``--record FILE`` keeps
them as JSON lines).

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/solver_choice.py \
        seg:T12-L2:2 seg:T12-L2:1.6 seg:T12-L2:1.75 seg:T12-L2:3 --solve direct,amg --repeat 2

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


def _warm_up(spec):
    """A small model of the same kind as ``spec``, solved by both solvers before anything is timed (numba
    kernels compiled or loaded, MKL loaded)."""
    tiny = _model("box:1k" if spec.startswith("box") else "seg:L4-L5:6")
    tiny.solve(solver="amg")
    tiny.solve(solver="direct")


class _SetupClock:
    """Process CPU seconds spent in ``solvers.amg_hierarchy`` (AMG-CG's set-up: aggregation, prolongators,
    the nucleus's factorisation), by wrapping the library's function in this process."""

    def __init__(self):
        from vertebrafe.fem import solvers
        self.seconds = 0.0
        original = solvers.amg_hierarchy

        def timed(*args, **kwargs):
            c0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - c0
        solvers.amg_hierarchy = timed


def _solve(spec, solvers, repeat):
    """Solves ``spec`` ``repeat`` times with each solver in one process, alternating the order every round
    (a, b, b, a, a, b, ...) so that both see the same load; every solve starts from the springs' initial
    state. Prints the predictions of ``"auto"`` and each measured ``Model.solve`` as JSON."""
    import gc
    _warm_up(spec)
    clock = _SetupClock()
    model = _model(spec)
    initial = [s.active.copy() for s in model.springs]
    predicted = {}
    pat = model._pattern(model._check_ties())
    pick = model._choose(pat, predicted)
    runs = []
    for r in range(repeat):
        for solver in (solvers if r % 2 == 0 else solvers[::-1]):
            for s, a in zip(model.springs, initial):
                s.active = a.copy()
            gc.collect()
            clock.seconds = 0.0
            load, c0, t0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
            info = model.solve(solver=solver).info
            runs.append({"solver": solver, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
                         "load": load, "dofs": info["dofs"], "iterations": info.get("iterations"),
                         "steps": info.get("active_set_iterations"), "setup_cpu_s": clock.seconds,
                         "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
            del info
    print(json.dumps({"model": spec, "n": 3 * (pat["indptr"].size - 1), "pick": pick, "predicted": predicted,
                      "flops": pat["direct_cost"]["flops"], "runs": runs}), flush=True)


def _median(values):
    v = sorted(values)
    return 0.5 * (v[(len(v) - 1) // 2] + v[len(v) // 2])


def _row(record, solvers):
    """The Markdown cells of one model's record (see :func:`_solve`) and its derived rates: the direct
    solve's factorisation flops per process CPU second; AMG-CG's set-up CPU per unknown (``n``, the unknowns
    that ``solver_choice.amg_seconds`` is given) and the rest of its solve's CPU per unknown and CG iteration
    (``amg_seconds`` charges everything but the set-up to the iterations)."""
    runs, p, n = record["runs"], record["predicted"], record["n"]
    by = {s: [r for r in runs if r["solver"] == s] for s in solvers}
    cpu = {s: _median([r["cpu_s"] for r in by[s]]) for s in solvers if by[s]}
    rates = {}
    cells = [record["model"], f"{runs[0]['dofs']:,}", f"{p['choice_direct_seconds']:.1f}",
             f"{p['choice_amg_seconds']:.1f}", record["pick"]]
    for s in solvers:
        c = [r["cpu_s"] for r in by[s]]
        cells.append(f"{_median(c):.1f}" + (f" ({min(c):.1f}-{max(c):.1f})" if len(c) > 1 else "") if c else "-")
    if "direct" in cpu:
        rates["direct_flops_per_s"] = record["flops"] / cpu["direct"]
    amg = by.get("amg")
    if amg:
        its = amg[0]["iterations"]
        rates["amg_setup_s"] = _median([r["setup_cpu_s"] for r in amg]) / n
        rates["amg_iteration_s"] = _median([r["cpu_s"] - r["setup_cpu_s"] for r in amg]) / (n * its)
        cells += [f"{its} ({amg[0]['steps'] or 1})", f"{1e6 * rates['amg_setup_s']:.2f}",
                  f"{1e6 * rates['amg_iteration_s']:.3f}"]
    else:
        cells += ["-"] * 3
    cells.append(f"{rates['direct_flops_per_s'] / 1e9:.1f}" if "direct_flops_per_s" in rates else "-")
    pairs = [a["cpu_s"] / b["cpu_s"] for a, b in zip(by.get("direct", []), by.get("amg", []))]
    cells.append(f"{_median(pairs):.2f}" + (f" ({min(pairs):.2f}-{max(pairs):.2f})" if len(pairs) > 1 else "")
                 if pairs else "-")
    cells += [f"{min(r['load'] for r in runs):.1f}-{max(r['load'] for r in runs):.1f}",
              f"{runs[-1]['peak_rss'] / 1e9:.2f}", min(cpu, key=cpu.get) if len(cpu) > 1 else "-"]
    return cells, rates


def _solve_table(specs, solvers, repeat, record=None):
    """One fresh process per model (:func:`_solve`); a Markdown row per model, then the mean rates over
    the models next to the constants of ``solver_choice``."""
    from vertebrafe.fem import solver_choice
    head = (["model", "free DOFs", "predicted direct s", "predicted AMG-CG s", '"auto"']
            + [f"{s} CPU s" for s in solvers]
            + ["CG it (steps)", "AMG set-up us/unknown", "rest us/(unknown it)", "direct GFlop/s",
               "direct / AMG CPU", "load", "peak GB", "measured cheaper"])
    print("| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|", flush=True)
    failed, rates = 0, []
    for spec in specs:
        run = subprocess.run([sys.executable, __file__, spec, "--worker", "--solve", ",".join(solvers),
                              "--repeat", str(repeat)], capture_output=True, text=True)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"| {spec} | failed: {run.stderr.strip().splitlines()[-1:]} |")
            failed += 1
            continue
        if record:
            with open(record, "a") as fh:
                fh.write(lines[-1] + "\n")
        cells, r = _row(json.loads(lines[-1]), solvers)
        rates.append(r)
        print("| " + " | ".join(cells) + " |", flush=True)
    for key, name, scale, unit in (("direct_flops_per_s", "direct factorisation flops per CPU second", 1e-9, "G"),
                                   ("amg_setup_s", "AMG-CG set-up per unknown", 1e6, "us"),
                                   ("amg_iteration_s", "AMG-CG's rest per unknown and CG iteration", 1e6, "us")):
        values = [r[key] for r in rates if key in r]
        if values:
            print(f"{name}: {scale * sum(values) / len(values):.3g} {unit} on average over these models "
                  f"(range {scale * min(values):.3g}-{scale * max(values):.3g})", flush=True)
    print(f"solver_choice: FACTOR_FLOPS {solver_choice.FACTOR_FLOPS / 1e9:.3g} G, AMG_SETUP_SECONDS "
          f"{solver_choice.AMG_SETUP_SECONDS * 1e6:.3g} us, AMG_ITERATION_SECONDS "
          f"{solver_choice.AMG_ITERATION_SECONDS * 1e6:.3g} us (weak contrast) and "
          f"{solver_choice.AMG_ITERATION_SECONDS_CONTRAST * 1e6:.3g} us (strong)", flush=True)
    return failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="box:SIZE or seg:LEVELS:H")
    ap.add_argument("--factor", action="store_true", help="also factorise and measure")
    ap.add_argument("--solve", default="", help="comma list of solvers (direct, amg): solve the models with each")
    ap.add_argument("--repeat", type=int, default=1,
                    help="with --solve: solves per solver, alternating their order (default 1)")
    ap.add_argument("--record", help="with --solve: append each model's measurements (JSON lines) to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        if args.solve:
            _solve(args.models[0], args.solve.split(","), args.repeat)
        else:
            _measure(args.models[0], args.factor)
        return 0
    if args.solve:
        return 1 if _solve_table(args.models, args.solve.split(","), args.repeat, args.record) else 0
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
